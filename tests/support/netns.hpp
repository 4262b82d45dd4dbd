// Test support: run a function in a fresh network namespace (a forked child that unshares
// CLONE_NEWNET), and configure interfaces there with ioctls (no `ip` needed): IPv4 address, a
// static ARP entry, IPv6 off. Root only; callers skip with a message otherwise.
#pragma once

#include <cstring>
#include <functional>
#include <string>

#include <arpa/inet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <splitnet/packet/ethernet.hpp>

#include <sched.h>

namespace splitnet::test {

[[nodiscard]] inline bool is_root() {
    return ::geteuid() == 0;
}

/// Runs fn() in a child process inside a new network namespace; returns its result (0..255),
/// or -1 if the namespace could not be made.
inline int in_new_netns(const std::function<int()>& fn) {
    const pid_t pid = ::fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        if (::unshare(CLONE_NEWNET) != 0) {
            ::_exit(200);
        }
        ::_exit(fn());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

inline bool ioctl_on(const std::string& ifname, unsigned long req, ifreq& ifr) {
    const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    const bool ok = s >= 0 && ::ioctl(s, req, &ifr) == 0;
    if (s >= 0) {
        ::close(s);
    }
    return ok;
}

/// Assigns an IPv4 address/prefix to an interface.
inline bool set_ipv4(const std::string& ifname, const char* addr, const char* mask) {
    ifreq ifr{};
    auto* sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);
    sin->sin_family = AF_INET;
    ::inet_pton(AF_INET, addr, &sin->sin_addr);
    if (!ioctl_on(ifname, SIOCSIFADDR, ifr)) {
        return false;
    }
    ::inet_pton(AF_INET, mask, &sin->sin_addr);
    return ioctl_on(ifname, SIOCSIFNETMASK, ifr);
}

inline bool set_up(const std::string& ifname) {
    ifreq ifr{};
    if (!ioctl_on(ifname, SIOCGIFFLAGS, ifr)) {
        return false;
    }
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    return ioctl_on(ifname, SIOCSIFFLAGS, ifr);
}

inline packet::mac_address mac_of(const std::string& ifname) {
    ifreq ifr{};
    packet::mac_address m;
    if (ioctl_on(ifname, SIOCGIFHWADDR, ifr)) {
        std::memcpy(m.bytes.data(), ifr.ifr_hwaddr.sa_data, 6);
    }
    return m;
}

/// A permanent ARP entry: the kernel sends to `addr` at `mac` without asking.
inline bool static_arp(const std::string& ifname, const char* addr,
                       const packet::mac_address& mac) {
    arpreq r{};
    auto* sin = reinterpret_cast<sockaddr_in*>(&r.arp_pa);
    sin->sin_family = AF_INET;
    ::inet_pton(AF_INET, addr, &sin->sin_addr);
    r.arp_ha.sa_family = ARPHRD_ETHER;
    std::memcpy(r.arp_ha.sa_data, mac.bytes.data(), 6);
    r.arp_flags = ATF_PERM | ATF_COM;
    std::strncpy(r.arp_dev, ifname.c_str(), sizeof r.arp_dev - 1);
    const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const bool ok = s >= 0 && ::ioctl(s, SIOCSARP, &r) == 0;
    if (s >= 0) {
        ::close(s);
    }
    return ok;
}

inline void disable_ipv6(const std::string& ifname) {
    const std::string path = "/proc/sys/net/ipv6/conf/" + ifname + "/disable_ipv6";
    if (FILE* f = std::fopen(path.c_str(), "w")) {
        std::fputs("1", f);
        std::fclose(f);
    }
}

} // namespace splitnet::test
