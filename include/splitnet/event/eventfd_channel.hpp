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
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
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
        const std::uint64_t one = 1;
        // EAGAIN only if the counter would overflow 2^64-2: the waiter is then certainly woken.
        while (::write(fd_, &one, sizeof one) < 0 && errno == EINTR) {
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
        ssize_t n;
        do {
            n = ::read(fd_, &v, sizeof v);
        } while (n < 0 && errno == EINTR);
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
