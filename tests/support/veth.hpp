// Test support: veth pairs made over rtnetlink (no `ip` needed), an isolated child process to make
// them in (fresh network namespace and, by default, a private mount namespace with its own sysfs
// and an empty /sys/fs/bpf), and an AF_PACKET socket to play the peer on the other end.
// Everything a test creates lives in the child's namespaces and goes away with it, also when the
// test fails or crashes. Root only; callers skip with a message otherwise (netns.hpp is_root()).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/netns.hpp"
#include <sched.h>

namespace splitnet::test {

// --- an isolated child
// -----------------------------------------------------------------------------

struct isolated_result {
    int status = 0;      ///< the child's exit status, or 128 + signal
    std::string message; ///< what the child reported (empty: success)
    [[nodiscard]] bool ok() const { return status == 0 && message.empty(); }
};

struct isolation {
    /// Also a new mount namespace: / made private, sysfs mounted afresh for the new network
    /// namespace (so /sys/class/net shows its interfaces and /sys/fs/bpf starts unmounted), so
    /// mounts a test makes (bpffs) never reach the host.
    bool private_mounts = true;
};

/// Runs fn() in a forked child inside a new network namespace. fn returns "" on success or a
/// description of what failed, which the parent gets back in the result.
inline isolated_result run_isolated(const std::function<std::string()>& fn, isolation iso = {}) {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) {
        return {-1, std::string("pipe: ") + std::strerror(errno)};
    }
    std::fflush(nullptr); // or the child flushes the parent's buffered output a second time
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(pipefd[0]);
        ::close(pipefd[1]);
        return {-1, std::string("fork: ") + std::strerror(errno)};
    }
    if (pid == 0) {
        ::close(pipefd[0]);
        std::string msg;
        const int flags = CLONE_NEWNET | (iso.private_mounts ? CLONE_NEWNS : 0);
        if (::unshare(flags) != 0) {
            msg = std::string("unshare: ") + std::strerror(errno);
        } else if (iso.private_mounts &&
                   (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
                    ::mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0)) {
            msg = std::string("private mounts: ") + std::strerror(errno);
        } else {
            try {
                msg = fn();
            } catch (const std::exception& e) {
                msg = std::string("uncaught exception: ") + e.what();
            } catch (...) {
                msg = "uncaught exception";
            }
        }
        std::size_t off = 0;
        while (off < msg.size()) {
            const ssize_t w = ::write(pipefd[1], msg.data() + off, msg.size() - off);
            if (w <= 0) {
                break;
            }
            off += static_cast<std::size_t>(w);
        }
        std::fflush(nullptr);
        ::_exit(msg.empty() ? 0 : 1);
    }
    ::close(pipefd[1]);
    isolated_result r;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(pipefd[0], buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        r.message.append(buf, static_cast<std::size_t>(n));
    }
    ::close(pipefd[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r.status != 0 && r.message.empty()) {
        r.message = WIFSIGNALED(status)
                        ? "child killed by signal " + std::to_string(WTERMSIG(status))
                        : "child exited with status " + std::to_string(r.status);
    }
    return r;
}

// --- veth over rtnetlink
// ----------------------------------------------------------------------------

struct veth_pair_config {
    std::string a = "veth0";
    std::string b = "veth1";
    std::uint32_t queues = 1; ///< RX and TX queues on each end (numrxqueues/numtxqueues)
    bool up = true;           ///< bring both ends up
    bool disable_ipv6 = true; ///< no router solicitations or MLD reports in the captures
    std::uint32_t mtu = 0;    ///< 0: the default (1500)
};

namespace detail {

/// A netlink request under construction: nested attributes are written in place.
class nl_request {
public:
    nl_request(std::uint16_t type, std::uint16_t flags) {
        auto* nh = header();
        nh->nlmsg_len = NLMSG_LENGTH(0);
        nh->nlmsg_type = type;
        nh->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
        nh->nlmsg_seq = 1;
    }
    nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buf_); }
    void put(const void* data, std::size_t len) {
        std::memcpy(buf_ + header()->nlmsg_len, data, len);
        header()->nlmsg_len += static_cast<std::uint32_t>(NLMSG_ALIGN(len));
    }
    void attr(std::uint16_t type, const void* data, std::size_t len) {
        rtattr a{};
        a.rta_type = type;
        a.rta_len = static_cast<std::uint16_t>(RTA_LENGTH(len));
        std::memcpy(buf_ + header()->nlmsg_len, &a, sizeof a);
        if (len != 0) {
            std::memcpy(buf_ + header()->nlmsg_len + RTA_LENGTH(0), data, len);
        }
        header()->nlmsg_len += static_cast<std::uint32_t>(RTA_ALIGN(a.rta_len));
    }
    void attr_u32(std::uint16_t type, std::uint32_t v) { attr(type, &v, sizeof v); }
    void attr_str(std::uint16_t type, const std::string& s) { attr(type, s.c_str(), s.size() + 1); }
    /// Opens a nested attribute; returns its offset for end_nest.
    std::size_t begin_nest(std::uint16_t type) {
        const std::size_t at = header()->nlmsg_len;
        attr(type, nullptr, 0);
        return at;
    }
    void end_nest(std::size_t at) {
        auto* a = reinterpret_cast<rtattr*>(buf_ + at);
        a->rta_len = static_cast<std::uint16_t>(header()->nlmsg_len - at);
    }
    /// Sends the request and waits for the kernel's acknowledgement. Returns 0 or an errno.
    int transact() {
        const int s = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (s < 0) {
            return errno;
        }
        sockaddr_nl kernel{};
        kernel.nl_family = AF_NETLINK;
        int err = 0;
        if (::sendto(s, buf_, header()->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
                     sizeof kernel) < 0) {
            err = errno;
        } else {
            alignas(nlmsghdr) char reply[8192];
            const ssize_t n = ::recv(s, reply, sizeof reply, 0);
            const auto* rh = reinterpret_cast<const nlmsghdr*>(reply);
            if (n < 0) {
                err = errno;
            } else if (n >= static_cast<ssize_t>(NLMSG_LENGTH(sizeof(nlmsgerr))) &&
                       rh->nlmsg_type == NLMSG_ERROR) {
                nlmsgerr e{};
                std::memcpy(&e, reply + NLMSG_ALIGN(sizeof(nlmsghdr)), sizeof e);
                err = -e.error;
            }
        }
        ::close(s);
        return err;
    }

private:
    alignas(nlmsghdr) char buf_[4096]{};
};

inline void write_sysctl(const std::string& path, const char* value) {
    if (FILE* f = std::fopen(path.c_str(), "w")) {
        std::fputs(value, f);
        std::fclose(f);
    }
}

} // namespace detail

/// Creates a veth pair (RTM_NEWLINK, kind "veth", the peer in VETH_INFO_PEER). Returns "" or what
/// failed.
inline std::string create_veth(const veth_pair_config& c) {
    if (c.disable_ipv6) {
        // New interfaces copy "default": no IPv6 from birth, so not even one DAD probe leaks.
        detail::write_sysctl("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
    }
    detail::nl_request req(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    req.put(&ifi, sizeof ifi);
    req.attr_str(IFLA_IFNAME, c.a);
    req.attr_u32(IFLA_NUM_TX_QUEUES, c.queues);
    req.attr_u32(IFLA_NUM_RX_QUEUES, c.queues);
    if (c.mtu != 0) {
        req.attr_u32(IFLA_MTU, c.mtu);
    }
    const std::size_t linkinfo = req.begin_nest(IFLA_LINKINFO);
    req.attr_str(IFLA_INFO_KIND, "veth");
    const std::size_t data = req.begin_nest(IFLA_INFO_DATA);
    const std::size_t peer = req.begin_nest(VETH_INFO_PEER);
    req.put(&ifi, sizeof ifi); // the peer's own ifinfomsg, then its attributes
    req.attr_str(IFLA_IFNAME, c.b);
    req.attr_u32(IFLA_NUM_TX_QUEUES, c.queues);
    req.attr_u32(IFLA_NUM_RX_QUEUES, c.queues);
    if (c.mtu != 0) {
        req.attr_u32(IFLA_MTU, c.mtu);
    }
    req.end_nest(peer);
    req.end_nest(data);
    req.end_nest(linkinfo);
    if (const int err = req.transact(); err != 0) {
        return "creating veth " + c.a + "/" + c.b + ": " + std::strerror(err);
    }
    for (const std::string& name : {c.a, c.b}) {
        if (c.disable_ipv6) {
            disable_ipv6(name);
        }
        if (c.up && !set_up(name)) {
            return "bringing up " + name + ": " + std::strerror(errno);
        }
    }
    return {};
}

/// Deletes a link (and, for a veth, its peer). Returns "" or what failed.
inline std::string delete_link(const std::string& name) {
    detail::nl_request req(RTM_DELLINK, 0);
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    req.put(&ifi, sizeof ifi);
    req.attr_str(IFLA_IFNAME, name);
    if (const int err = req.transact(); err != 0) {
        return "deleting " + name + ": " + std::strerror(err);
    }
    return {};
}

/// Brings an interface down (set_up in netns.hpp brings it up).
inline bool set_down(const std::string& ifname) {
    ifreq ifr{};
    if (!ioctl_on(ifname, SIOCGIFFLAGS, ifr)) {
        return false;
    }
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags & ~IFF_UP);
    return ioctl_on(ifname, SIOCSIFFLAGS, ifr);
}

/// Output of a shell command (for `ip -d link show` checks).
inline std::string command_output(const std::string& cmd) {
    std::string out;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
        char buf[512];
        std::size_t n = 0;
        while ((n = std::fread(buf, 1, sizeof buf, p)) != 0) {
            out.append(buf, n);
        }
        ::pclose(p);
    }
    return out;
}

// --- the peer: an AF_PACKET socket ---------------------------------------------------------------

/// A raw AF_PACKET socket bound to one interface. Receives frames of `protocol` (host order;
/// 0: send only) that arrive on the interface (not the ones it sends itself).
class packet_socket {
public:
    packet_socket(const std::string& ifname, std::uint16_t protocol, int rcvbuf = 0,
                  bool qdisc_bypass = false) {
        fd_ = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(protocol));
        if (fd_ < 0) {
            error_ = std::string("socket(AF_PACKET): ") + std::strerror(errno);
            return;
        }
        const int one = 1;
        ::setsockopt(fd_, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
        if (qdisc_bypass) {
            ::setsockopt(fd_, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
        }
        if (rcvbuf != 0) {
            ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
        }
        const int sndbuf = 16 << 20;
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
        ifindex_ = static_cast<int>(::if_nametoindex(ifname.c_str()));
        sockaddr_ll sll{};
        sll.sll_family = AF_PACKET;
        sll.sll_protocol = htons(protocol);
        sll.sll_ifindex = ifindex_;
        if (ifindex_ == 0 ||
            ::bind(fd_, reinterpret_cast<const sockaddr*>(&sll), sizeof sll) != 0) {
            error_ = "binding AF_PACKET to " + ifname + ": " + std::strerror(errno);
        }
    }
    packet_socket(const packet_socket&) = delete;
    packet_socket& operator=(const packet_socket&) = delete;
    ~packet_socket() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }

    [[nodiscard]] const std::string& error() const { return error_; }
    [[nodiscard]] int fd() const { return fd_; }

    /// Sends frames with sendmmsg (blocking); returns how many were sent.
    std::size_t send_burst(std::span<const std::span<const std::uint8_t>> frames) {
        std::size_t done = 0;
        while (done < frames.size()) {
            mmsghdr msgs[64]{};
            iovec iov[64];
            const std::size_t n = std::min<std::size_t>(64, frames.size() - done);
            for (std::size_t i = 0; i < n; ++i) {
                iov[i] = {const_cast<std::uint8_t*>(frames[done + i].data()),
                          frames[done + i].size()};
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            const int r = ::sendmmsg(fd_, msgs, static_cast<unsigned>(n), 0);
            if (r <= 0) {
                if (r < 0 && (errno == ENOBUFS || errno == EAGAIN || errno == EINTR)) {
                    ::usleep(100);
                    continue;
                }
                break;
            }
            done += static_cast<std::size_t>(r);
        }
        return done;
    }

    /// Receives one frame into `buf`, waiting at most timeout_ms; returns its length or -1.
    int recv(std::span<std::uint8_t> buf, int timeout_ms) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) <= 0) {
            return -1;
        }
        const ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC);
        return n < 0 ? -1 : static_cast<int>(n);
    }

private:
    int fd_ = -1;
    int ifindex_ = 0;
    std::string error_;
};

} // namespace splitnet::test
