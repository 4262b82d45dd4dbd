// SPDX-License-Identifier: MIT
// splitnet/ring/fd_passing.hpp: send and receive a message with file descriptors attached
// (SCM_RIGHTS) over a Unix stream or seqpacket socket: how memfd regions and eventfds reach the
// peer process (vhost-user's SET_MEM_TABLE and SET_VRING_KICK do the same).
//
// recv_with_fds never leaks a descriptor: if the kernel truncated the control data (more fds
// than the caller has room for, MSG_CTRUNC) every received fd is closed and an error returned.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <span>

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace splitnet::ring {

inline constexpr std::size_t max_passed_fds = 64;

/// Sends `payload` (at least one byte) with `fds`; returns bytes sent or -errno.
[[nodiscard]] inline long send_with_fds(int sock, std::span<const std::byte> payload,
                                        std::span<const int> fds) noexcept {
    if (payload.empty() || fds.size() > max_passed_fds) {
        return -EINVAL;
    }
    iovec iov{const_cast<std::byte*>(payload.data()), payload.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_passed_fds)] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (!fds.empty()) {
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    for (;;) {
        const ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n >= 0) {
            return n;
        }
        if (errno != EINTR) {
            return -errno;
        }
    }
}

struct received {
    long bytes = 0;       ///< payload bytes, 0 at end of stream, or -errno
    std::size_t nfds = 0; ///< descriptors stored in the caller's array (owned by the caller)
};

/// Receives one message into `payload` and up to fds.size() descriptors (close-on-exec).
[[nodiscard]] inline received recv_with_fds(int sock, std::span<std::byte> payload,
                                            std::span<int> fds) noexcept {
    iovec iov{payload.data(), payload.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_passed_fds)] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return {-errno, 0};
    }
    received r{n, 0};
    bool overflow = (msg.msg_flags & MSG_CTRUNC) != 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (r.nfds < fds.size()) {
                fds[r.nfds++] = fd;
            } else {
                ::close(fd);
                overflow = true;
            }
        }
    }
    if (overflow) {
        for (std::size_t i = 0; i < r.nfds; ++i) {
            ::close(fds[i]);
        }
        return {-EMSGSIZE, 0};
    }
    return r;
}

} // namespace splitnet::ring
