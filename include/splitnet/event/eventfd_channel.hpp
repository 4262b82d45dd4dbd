// SPDX-License-Identifier: MIT
// splitnet/event/eventfd_channel.hpp: an event channel over a Linux eventfd, so the doorbell
// crosses process boundaries (the fd is passed with SCM_RIGHTS, ring/fd_passing.hpp) and can sit
// in an epoll set with other descriptors. Non-blocking: notify() adds 1 to the counter (many
// notifications before a wait coalesce), a wait polls then reads the counter back to zero.
//
// A flood of notifications from a peer costs the waiter at most one read per wake-up: the
// counter absorbs them (Linux netback's "late EOI" protects against the same storm).
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <splitnet/config.hpp>
#include <splitnet/event/event_channel.hpp>

namespace splitnet::event {

class eventfd_channel {
public:
    /// Creates a new eventfd.
    eventfd_channel() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
        if (fd_ < 0) {
            SPLITNET_THROW(std::system_error(errno, std::generic_category(),
                                             "eventfd_channel: eventfd() failed"));
        }
    }
    /// Adopts an eventfd received from a peer (takes ownership; made non-blocking).
    explicit eventfd_channel(int fd) : fd_(fd) {
        const int flags = ::fcntl(fd_, F_GETFL);
        if (flags < 0 || ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK) < 0) {
            SPLITNET_THROW(std::system_error(errno, std::generic_category(),
                                             "eventfd_channel: received descriptor is unusable"));
        }
    }
    /// True when `fd` is an eventfd (a peer may send any descriptor in its place).
    [[nodiscard]] static bool is_eventfd(int fd) noexcept {
        char link[64] = {};
        const std::string path = "/proc/self/fd/" + std::to_string(fd);
        const ssize_t n = ::readlink(path.c_str(), link, sizeof link - 1);
        return n > 0 &&
               std::string_view(link, static_cast<std::size_t>(n)) == "anon_inode:[eventfd]";
    }

    eventfd_channel(eventfd_channel&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    eventfd_channel& operator=(eventfd_channel&&) = delete;
    eventfd_channel(const eventfd_channel&) = delete;
    eventfd_channel& operator=(const eventfd_channel&) = delete;
    ~eventfd_channel() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }

    /// The descriptor, for epoll or for passing to the peer.
    [[nodiscard]] int fd() const noexcept { return fd_; }

    void notify() noexcept {
        std::uint64_t one = 1;
        iovec iov{&one, sizeof one};
        // The peer shares the open file description and may have cleared O_NONBLOCK: RWF_NOWAIT
        // never blocks whatever the flag says. EAGAIN means a full counter: the waiter is
        // certainly woken already.
        ssize_t n;
        do {
            n = ::pwritev2(fd_, &iov, 1, -1, RWF_NOWAIT);
        } while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EOPNOTSUPP) { // kernels without nowait eventfd writes
            pollfd p{fd_, POLLOUT, 0};
            if (::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) != 0) {
                while (::write(fd_, &one, sizeof one) < 0 && errno == EINTR) {
                }
            }
        }
        detail::event_counters::bump(counters_.sent);
    }

    void notify_if(bool needed) noexcept {
        if (needed) {
            notify();
        } else {
            detail::event_counters::bump(counters_.suppressed);
        }
    }

    [[nodiscard]] bool try_consume() noexcept {
        std::uint64_t v = 0;
        iovec iov{&v, sizeof v};
        ssize_t n;
        // RWF_NOWAIT: never block, whatever the peer did to the shared O_NONBLOCK flag.
        do {
            n = ::preadv2(fd_, &iov, 1, -1, RWF_NOWAIT);
        } while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EOPNOTSUPP) { // kernels without nowait eventfd reads
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0) {
                n = ::read(fd_, &v, sizeof v);
            }
        }
        if (n == static_cast<ssize_t>(sizeof v)) {
            detail::event_counters::bump(counters_.wakeups);
            return true;
        }
        return false;
    }

    [[nodiscard]] bool wait(std::chrono::nanoseconds timeout) noexcept {
        if (try_consume()) {
            return true;
        }
        pollfd p{fd_, POLLIN, 0};
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
        int r;
        do {
            r = ::poll(&p, 1, static_cast<int>(ms > 0x7fffffff ? 0x7fffffff : ms));
        } while (r < 0 && errno == EINTR);
        if (r > 0 && try_consume()) {
            return true;
        }
        detail::event_counters::bump(counters_.timeouts);
        return false;
    }

    [[nodiscard]] event_stats stats() const noexcept { return counters_.snapshot(); }

private:
    int fd_;
    detail::event_counters counters_;
};
static_assert(event_channel<eventfd_channel>);

} // namespace splitnet::event
