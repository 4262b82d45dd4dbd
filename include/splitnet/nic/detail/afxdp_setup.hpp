// SPDX-License-Identifier: MIT
// splitnet/nic/detail/afxdp_setup.hpp: the set-up side of the AF_XDP port that needs no libxdp:
// a fixed-size log that captures libbpf/libxdp messages during set-up, the capability check,
// interface facts (index, up, MTU, queue count, driver) by ioctl/ethtool, mounting bpffs, raising
// RLIMIT_MEMLOCK, and waiting until the kernel has let go of a queue.
//
// Nothing here is on the hot path. Kernel facts it relies on (Linux 6.1 unless noted):
//  - net/xdp/xdp_umem.c xdp_umem_account_pages: a UMEM is charged to RLIMIT_MEMLOCK unless the
//    caller has CAP_IPC_LOCK, and registration fails with ENOBUFS when over the limit.
//  - net/xdp/xsk_buff_pool.c xp_put_pool: a closed socket releases its (device, queue) from a
//    workqueue after an RCU grace period, so the queue stays EBUSY for tens of milliseconds
//    [measured here: 40-60 ms on a 2-vCPU VM], and a zero-copy driver keeps its RX descriptors
//    (buffers taken from the fill ring) until then.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include <linux/capability.h>
#include <linux/ethtool.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

namespace splitnet::nic::detail {

/// Messages libbpf and libxdp print while a port is set up or torn down, kept in a fixed buffer
/// (the print callbacks run inside C code: they must neither allocate nor throw).
class setup_log {
public:
    static constexpr std::size_t capacity = 8192;

    __attribute__((format(printf, 3, 0))) void vappend(const char* level, const char* fmt,
                                                       std::va_list ap) noexcept {
        put(level);
        put(": ");
        if (len_ < capacity - 1) {
            const int n = std::vsnprintf(buf_ + len_, capacity - len_, fmt, ap);
            if (n > 0) {
                const auto want = static_cast<std::size_t>(n);
                len_ = want < capacity - len_ ? len_ + want : capacity - 1;
            }
        }
        if (len_ != 0 && buf_[len_ - 1] != '\n') {
            put("\n");
        }
    }
    /// A line of our own (what splitnet did or decided).
    void note(std::string_view s) noexcept {
        put("note: ");
        put(s);
        put("\n");
    }
    [[nodiscard]] std::string_view view() const noexcept { return {buf_, len_}; }
    [[nodiscard]] std::size_t mark() const noexcept { return len_; }
    /// The warnings (not info lines) logged since `from`, one per line, for an error message.
    [[nodiscard]] std::string warnings_since(std::size_t from) const {
        std::string out;
        std::string_view rest = view().substr(from < len_ ? from : len_);
        while (!rest.empty()) {
            const std::size_t eol = rest.find('\n');
            const std::string_view line = rest.substr(0, eol);
            if (line.starts_with("warn: ")) {
                out += "\n    ";
                out += line.substr(6);
            }
            rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 1);
        }
        return out;
    }

private:
    void put(std::string_view s) noexcept {
        const std::size_t room = capacity - 1 - len_;
        const std::size_t n = s.size() < room ? s.size() : room;
        std::memcpy(buf_ + len_, s.data(), n);
        len_ += n;
        buf_[len_] = '\0';
    }

    char buf_[capacity]{};
    std::size_t len_ = 0;
};

/// The log that libbpf/libxdp messages printed on this thread go to (null: not ours to catch).
inline thread_local setup_log* capture_target = nullptr;

/// Routes libbpf/libxdp messages printed on this thread to `log` while alive.
class capture_scope {
public:
    explicit capture_scope(setup_log& log) noexcept : prev_(capture_target) {
        capture_target = &log;
    }
    capture_scope(const capture_scope&) = delete;
    capture_scope& operator=(const capture_scope&) = delete;
    ~capture_scope() { capture_target = prev_; }

private:
    setup_log* prev_;
};

/// "EBUSY (Device or resource busy)"
inline std::string errno_text(int err) {
    const char* name = ::strerrorname_np(err);
    return std::string(name != nullptr ? name : "errno " + std::to_string(err)) + " (" +
           std::strerror(err) + ")";
}

// --- privileges ---------------------------------------------------------------------------------

/// The capabilities AF_XDP set-up needs that the calling thread does not have in its effective
/// set, as "CAP_NET_RAW, CAP_BPF"; empty when all are there (or capget is unavailable).
/// CAP_NET_RAW: socket(AF_XDP). CAP_NET_ADMIN: attach XDP. CAP_BPF (or CAP_SYS_ADMIN): load the
/// program and create its maps.
inline std::string missing_capabilities() {
    __user_cap_header_struct hdr{};
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &hdr, data) != 0) {
        return {};
    }
    const std::uint64_t eff = data[0].effective | (std::uint64_t{data[1].effective} << 32);
    const auto has = [eff](int cap) {
        return (eff >> cap & 1U) != 0;
    };
    std::string missing;
    const auto add = [&missing](const char* name) {
        missing += missing.empty() ? "" : ", ";
        missing += name;
    };
    if (!has(CAP_NET_RAW)) {
        add("CAP_NET_RAW");
    }
    if (!has(CAP_NET_ADMIN)) {
        add("CAP_NET_ADMIN");
    }
    if (!has(CAP_BPF) && !has(CAP_SYS_ADMIN)) {
        add("CAP_BPF");
    }
    return missing;
}

[[nodiscard]] inline bool has_capability(int cap) noexcept {
    __user_cap_header_struct hdr{};
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &hdr, data) != 0) {
        return false;
    }
    const std::uint64_t eff = data[0].effective | (std::uint64_t{data[1].effective} << 32);
    return (eff >> cap & 1U) != 0;
}

/// Raises RLIMIT_MEMLOCK as far as this process may (to unlimited with CAP_SYS_RESOURCE, else the
/// soft limit to the hard one). Returns a note saying what changed, or empty when nothing could.
inline std::string raise_memlock() {
    rlimit old{};
    if (::getrlimit(RLIMIT_MEMLOCK, &old) != 0) {
        return {};
    }
    const auto show = [](rlim_t v) {
        return v == RLIM_INFINITY ? std::string("unlimited") : std::to_string(v / 1024) + " KiB";
    };
    rlimit want{RLIM_INFINITY, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_MEMLOCK, &want) != 0) {
        if (old.rlim_cur == old.rlim_max) {
            return {};
        }
        want = {old.rlim_max, old.rlim_max};
        if (::setrlimit(RLIMIT_MEMLOCK, &want) != 0) {
            return {};
        }
    }
    return "raised RLIMIT_MEMLOCK from " + show(old.rlim_cur) + " to " + show(want.rlim_cur);
}

// --- the interface
// --------------------------------------------------------------------------------

struct iface_info {
    unsigned index = 0;       ///< 0: no such interface in this network namespace
    bool up = false;          ///< IFF_UP
    std::uint32_t mtu = 0;    ///< L3 MTU
    std::uint32_t queues = 0; ///< queue ids the kernel accepts at bind (0: the driver won't say)
    std::string driver;       ///< ethtool driver name ("veth", "ice"...), empty if unknown
};

/// Reads what the set-up checks need about `name`. index == 0 when it does not exist.
inline iface_info query_iface(const std::string& name) {
    iface_info info;
    info.index = ::if_nametoindex(name.c_str());
    if (info.index == 0) {
        return info;
    }
    const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        return info;
    }
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, name.c_str(), name.size() < IFNAMSIZ ? name.size() : IFNAMSIZ - 1);
    if (::ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        info.up = (ifr.ifr_flags & IFF_UP) != 0;
    }
    if (::ioctl(s, SIOCGIFMTU, &ifr) == 0) {
        info.mtu = static_cast<std::uint32_t>(ifr.ifr_mtu);
    }
    // The bind check (net/xdp/xsk.c xsk_bind) accepts a queue id below the real number of RX or
    // TX queues; ethtool reports RX-only, TX-only and combined channels separately.
    ethtool_channels ch{};
    ch.cmd = ETHTOOL_GCHANNELS;
    ifr.ifr_data = reinterpret_cast<char*>(&ch);
    if (::ioctl(s, SIOCETHTOOL, &ifr) == 0) {
        const std::uint32_t rx = ch.rx_count + ch.combined_count;
        const std::uint32_t tx = ch.tx_count + ch.combined_count;
        info.queues = rx > tx ? rx : tx;
    }
    ethtool_drvinfo drv{};
    drv.cmd = ETHTOOL_GDRVINFO;
    ifr.ifr_data = reinterpret_cast<char*>(&drv);
    if (::ioctl(s, SIOCETHTOOL, &ifr) == 0) {
        info.driver.assign(drv.driver, ::strnlen(drv.driver, sizeof drv.driver));
    }
    ::close(s);
    return info;
}

// --- bpffs
// ----------------------------------------------------------------------------------------

/// Where libxdp looks for bpffs (it honours LIBXDP_BPFFS, as we do).
inline std::string bpffs_path() {
    const char* env = std::getenv("LIBXDP_BPFFS");
    return env != nullptr && *env != '\0' ? env : "/sys/fs/bpf";
}

[[nodiscard]] inline bool bpffs_mounted(const std::string& path) {
    FILE* f = std::fopen("/proc/mounts", "re");
    if (f == nullptr) {
        return false;
    }
    bool found = false;
    char dev[256];
    char dir[512];
    char type[64];
    while (!found && std::fscanf(f, "%255s %511s %63s %*[^\n]", dev, dir, type) == 3) {
        found = path == dir && std::strcmp(type, "bpf") == 0;
    }
    std::fclose(f);
    return found;
}

/// Mounts bpffs at `path` unless one is there (libxdp needs it for its multi-program
/// dispatcher and its lock; without it libxdp attaches the one program directly). Returns 0 when
/// bpffs is (now) mounted, else the errno of mount(2). Serialised: two ports set up at once must
/// not stack two mounts.
inline int ensure_bpffs(const std::string& path, setup_log& log) {
    static std::mutex mu;
    const std::lock_guard lock(mu);
    if (bpffs_mounted(path)) {
        return 0;
    }
    if (::mount("bpf", path.c_str(), "bpf", 0, "mode=0700") != 0) {
        const int err = errno;
        log.note("cannot mount bpffs at " + path + ": " + errno_text(err) +
                 "; libxdp attaches its program without the dispatcher");
        return err;
    }
    log.note("mounted bpffs at " + path);
    return 0;
}

// --- queue release
// --------------------------------------------------------------------------------

/// Waits until no AF_XDP socket holds (ifindex, queue): a probe socket with a one-page UMEM binds
/// there in copy mode (no XDP program involved) and is closed at once. This is how teardown knows
/// that a zero-copy driver has given back the fill buffers it had taken (xp_clear_dev runs before
/// the queue is freed). True when released; false on timeout or when the probe cannot tell.
inline bool wait_queue_released(unsigned ifindex, std::uint32_t queue,
                                std::chrono::milliseconds timeout) noexcept {
    void* area = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) {
        return false;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool released = false;
    for (;;) {
        const int s = ::socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
        if (s < 0) {
            break;
        }
        xdp_umem_reg mr;
        std::memset(&mr, 0, sizeof mr); // padding too: newer kernels read it as tx_metadata_len
        mr.addr = reinterpret_cast<std::uintptr_t>(area);
        mr.len = 4096;
        mr.chunk_size = 2048;
        const int two = 2;
        sockaddr_xdp sxdp{};
        sxdp.sxdp_family = AF_XDP;
        sxdp.sxdp_ifindex = ifindex;
        sxdp.sxdp_queue_id = queue;
        sxdp.sxdp_flags = XDP_COPY;
        const bool ok = ::setsockopt(s, SOL_XDP, XDP_UMEM_REG, &mr, sizeof mr) == 0 &&
                        ::setsockopt(s, SOL_XDP, XDP_UMEM_FILL_RING, &two, sizeof two) == 0 &&
                        ::setsockopt(s, SOL_XDP, XDP_UMEM_COMPLETION_RING, &two, sizeof two) == 0 &&
                        ::setsockopt(s, SOL_XDP, XDP_RX_RING, &two, sizeof two) == 0;
        const int rc = ok ? ::bind(s, reinterpret_cast<const sockaddr*>(&sxdp), sizeof sxdp) : -1;
        const int err = errno;
        ::close(s);
        if (rc == 0) {
            released = true;
            break;
        }
        if (!ok || err != EBUSY || std::chrono::steady_clock::now() >= deadline) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::munmap(area, 4096);
    return released;
}

} // namespace splitnet::nic::detail
