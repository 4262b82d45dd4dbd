// SPDX-License-Identifier: MIT
// splitnet/ring/shared_region.hpp: a memfd-backed memory region that a back end and a front end
// process both map: the memory the split rings and the grant table live in (the role the
// hypervisor's page sharing plays in Xen, or SET_MEM_TABLE's fds in vhost-user).
//
// The creator seals the size (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), and attach() refuses a
// region without those seals: a peer that could shrink the memfd would make every access past
// the new end a SIGBUS in the other process. Addressing is page-granular (4 KiB pages, the unit
// of rings and grants). The fd travels to the peer over a Unix socket (fd_passing.hpp).
//
// Errors: set-up only; thrown as std::system_error naming the step that failed.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <splitnet/config.hpp>

namespace splitnet::ring {

class shared_region {
public:
    static constexpr unsigned required_seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

    shared_region() = default;

    /// Creates a sealed region of `pages` zeroed 4 KiB pages, named `name` in /proc/PID/fd.
    [[nodiscard]] static shared_region create(const std::string& name, std::size_t pages) {
        if (pages == 0) {
            SPLITNET_THROW(std::invalid_argument("shared_region: size must be at least one page"));
        }
        const int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0) {
            fail("memfd_create(" + name + ")");
        }
        shared_region r;
        r.fd_ = fd;
        r.size_ = pages * page_size;
        if (::ftruncate(fd, static_cast<off_t>(r.size_)) != 0) {
            fail("ftruncate of " + name + " to " + std::to_string(r.size_) + " bytes");
        }
        if (::fcntl(fd, F_ADD_SEALS, required_seals) != 0) {
            fail("sealing " + name);
        }
        r.map();
        return r;
    }

    /// Maps a region received from a peer; takes ownership of `fd`. Refuses one whose size is not
    /// sealed or is not a whole number of pages (throws, saying which).
    [[nodiscard]] static shared_region attach(int fd) {
        std::string why;
        shared_region r = try_attach(fd, why);
        if (!r.valid()) {
            SPLITNET_THROW(std::invalid_argument("shared_region: " + why));
        }
        return r;
    }

    /// As attach(), without throwing: an invalid region and `why` on failure (the fd is closed).
    /// For a back end reading what an untrusted peer sent.
    [[nodiscard]] static shared_region try_attach(int fd, std::string& why, bool writable = true) {
        shared_region r;
        r.fd_ = fd;
        const int seals = ::fcntl(fd, F_GET_SEALS);
        struct stat st {};
        if (seals < 0) {
            why = "the peer's region is not a memfd (cannot read its seals)";
        } else if ((static_cast<unsigned>(seals) & (F_SEAL_SHRINK | F_SEAL_GROW)) !=
                   (F_SEAL_SHRINK | F_SEAL_GROW)) {
            why = "the peer's region is not sealed against resizing; refusing it (a peer that "
                  "can shrink it could crash this process)";
        } else if (::fstat(fd, &st) != 0) {
            why = "cannot fstat the peer's region";
        } else if (st.st_size <= 0 || static_cast<std::size_t>(st.st_size) % page_size != 0) {
            why = "the peer's region of " + std::to_string(st.st_size) +
                  " bytes is not a whole number of pages";
        } else {
            r.size_ = static_cast<std::size_t>(st.st_size);
            void* p = ::mmap(nullptr, r.size_, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED,
                             fd, 0);
            if (p != MAP_FAILED) {
                r.base_ = static_cast<std::byte*>(p);
                return r;
            }
            why = "cannot map the peer's region of " + std::to_string(r.size_) + " bytes";
        }
        r.reset();
        return r;
    }

    shared_region(shared_region&& o) noexcept
        : fd_(std::exchange(o.fd_, -1)), size_(std::exchange(o.size_, 0)),
          base_(std::exchange(o.base_, nullptr)) {}
    shared_region& operator=(shared_region&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
            size_ = std::exchange(o.size_, 0);
            base_ = std::exchange(o.base_, nullptr);
        }
        return *this;
    }
    shared_region(const shared_region&) = delete;
    shared_region& operator=(const shared_region&) = delete;
    ~shared_region() { reset(); }

    [[nodiscard]] int fd() const noexcept { return fd_; }

    /// A new descriptor of this region open for reading only (the caller owns it): a peer
    /// given it can map the region but never write it, not even by mapping it again.
    [[nodiscard]] int reopen_readonly() const {
        const std::string path = "/proc/self/fd/" + std::to_string(fd_);
        const int ro = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (ro < 0) {
            fail("reopening the region read-only through " + path);
        }
        return ro;
    }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::size_t pages() const noexcept { return size_ / page_size; }
    [[nodiscard]] std::span<std::byte> bytes() const noexcept { return {base_, size_}; }
    [[nodiscard]] bool valid() const noexcept { return base_ != nullptr; }

    /// Pages [first, first + count); empty if out of range.
    [[nodiscard]] std::span<std::byte> pages(std::size_t first, std::size_t count) const noexcept {
        if (first > pages() || count > pages() - first) {
            return {};
        }
        return {base_ + first * page_size, count * page_size};
    }
    [[nodiscard]] std::span<std::byte> page(std::size_t i) const noexcept { return pages(i, 1); }

private:
    [[noreturn]] static void fail(const std::string& what) {
        SPLITNET_THROW(std::system_error(errno, std::generic_category(), "shared_region: " + what));
    }

    void map() {
        void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
        if (p == MAP_FAILED) {
            fail("mmap of " + std::to_string(size_) + " bytes");
        }
        base_ = static_cast<std::byte*>(p);
    }

    void reset() noexcept {
        if (base_ != nullptr) {
            ::munmap(base_, size_);
        }
        if (fd_ >= 0) {
            ::close(fd_);
        }
        base_ = nullptr;
        fd_ = -1;
        size_ = 0;
    }

    int fd_ = -1;
    std::size_t size_ = 0;
    std::byte* base_ = nullptr;
};

} // namespace splitnet::ring
