// SPDX-License-Identifier: MIT
// splitnet/nic/afxdp_port.hpp: a port (nic/port.hpp) over one AF_XDP socket bound to one queue of a
// network interface, built on Debian 12's libxdp 1.3.1 <xdp/xsk.h> and libbpf 1.1 (no *_opts API).
// Anchors: kernel Documentation/networking/af_xdp.rst; xdp-tools lib/libxdp/xsk.c (v1.3.1);
// DPDK drivers/net/af_xdp (ring sizing, completion draining, retry on a full TX ring);
// bpf-examples AF_XDP-forwarding (shared UMEM across queues). Facts and measurements behind the
// choices are in shared/notes/xdp-bridge-coalesce-anchors.md section 1.
//
// Memory. The UMEM is the buffer_pool's whole arena (aligned mode, chunk = pool.frame_size(),
// 2048 or 4096), so a UMEM address is a pool address and frames move between the pool, the
// rings and the caller without translation. The kernel writes a received frame at
//   chunk + XDP_PACKET_HEADROOM (256) + umem frame_headroom
// and reports that address in the RX descriptor. frame_headroom is therefore
// max(0, pool.default_headroom() - 256): with the default pool headroom of 256 a received frame
// starts exactly where a fresh pool frame does, and buffer_pool::frame_at(addr, len) turns the
// descriptor into a frame either way (its headroom is then max(256, pool headroom)).
//
// Sharing. Ports over one pool share one UMEM registration: the first socket registers it
// (xsk_umem__create + the UMEM's own fd), later ones bind with XDP_SHARED_UMEM through
// xsk_socket__create_shared, each with its own fill and completion ring (kernel >= 5.10). Ports
// can serve different queues of one interface or different interfaces; one queue has one port.
// Later sockets inherit the first one's zero-copy/copy mode and need_wakeup (net/xdp/
// xsk_buff_pool.c xp_assign_dev_shared), and the fill/completion ring sizes of the UMEM.
//
// Buffer ownership (detail/afxdp_ledger.hpp). Every pool buffer this socket touches is either the
// user's, on the kernel's receive side (posted to fill, not yet seen on RX) or on its transmit side
// (posted to TX, not yet seen on completion). The port moves buffers only along those edges, so
// a buffer is never in two rings (af_xdp.rst FAQ), a descriptor naming a buffer the port did not
// post is counted and ignored, and teardown returns exactly the buffers the kernel still held.
//
// Receive: rx_burst peeks up to out.size() RX descriptors, turns them into frames, releases the
// ring, then tops the fill ring up from the pool in chunks of 64 once fill_batch slots are free.
// The fill ring is 2 x RX ring by default (DPDK a63d4fca68, xsk_fwd): with the RX ring full the
// kernel still has a fill ring's worth of buffers, so the fill ring only runs dry when the pool
// does (rx_no_buffers) or when rx_burst is not called for a fill ring's worth of frames.
// Transmit: tx_burst first drains the whole completion ring back to the pool, then posts frames
// in this pool's arena by address (no copy). Frames over other memory and chained frames (GRO
// chains) are copied into one fresh pool buffer when they fit, else counted in tx_errors and
// freed: this kernel's headers have no AF_XDP multi-buffer, so caps() says no GSO and the
// pipeline segments first. A full TX ring is reaped and kicked up to tx_retries times, then the
// burst returns short (tx_full); the caller keeps the rest.
// Wakeups: the socket is bound with XDP_USE_NEED_WAKEUP. TX is kicked with sendto(MSG_DONTWAIT)
// only when the TX ring's flag asks. setsockopt(XDP_TX_RING) sets that flag and only a
// need_wakeup-aware zero-copy driver clears it, so in copy mode (where sendto is the transmit:
// 32 frames a call, or copy_tx_budget with XDP_MAX_TX_SKB_BUDGET on Linux >= 6.17) every burst
// kicks, and a kick repeats while the kernel answers EAGAIN ("more left"); with tx_kick_thread
// a thread of the port's own makes those calls (afxdp_tx_kicker.hpp). RX is woken with
// recvfrom when the fill ring's flag asks (zero-copy drivers only). fd() can be poll()ed or
// epoll()ed to sleep when idle (wait() does that).
//
// Teardown drains TX, deletes the socket and, with the last port of a pool, the UMEM, then gives
// back what the ledger says the kernel held. libxdp makes the first socket of a UMEM the UMEM's
// own fd and keeps it open (bound) until xsk_umem__delete; if that port goes first, its buffers
// are parked until the UMEM goes. In zero-copy mode the port also waits until the kernel has
// released the queue (a driver keeps fill buffers in its RX descriptors until then).
//
// Limits. No multi-buffer (jumbo frames): the MTU must fit a chunk, checked at set-up. A TX
// descriptor the kernel refuses never comes back on the completion ring (net/xdp/xsk.c
// xsk_drop_skb cancels its completion): it stays on the transmit side of the ledger until
// teardown and is counted in kernel_stats().tx_invalid_descs. tx_burst validates every
// descriptor first (inside its chunk, 14..MTU+18 bytes), so none of the known causes reach
// the kernel. No busy polling (SO_PREFER_BUSY_POLL) yet.
//
// The XDP program is libxdp's default (xsk_def_prog): it redirects by rx_queue_index into its
// XSKMAP and passes everything else to the stack, so queues without a socket keep working.
// libxdp reference-counts it and detaches it when the last socket on the interface goes.
// libxdp's dispatcher needs bpffs, mounted at /sys/fs/bpf here if missing (mount_bpffs).
// libbpf/libxdp messages printed during set-up and teardown are captured (setup_log()), not
// printed; their warnings are quoted in the exception when set-up fails. Outside that, messages
// go to whatever print function was installed before.
//
// Errors: set-up throws std::system_error (std::invalid_argument for a bad configuration) naming
// the interface, the queue, the mode tried and what to do. The hot path (rx_burst, tx_burst,
// reap) is noexcept and allocation-, exception- and lock-free; failures there are counted.
// Threads: a port is used by one thread at a time (its rings are single-producer/single-consumer
// and its counters plain). Ports sharing a pool may run on different threads; their set-up and
// teardown are serialised on the shared UMEM.
#pragma once

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <poll.h>
#include <sys/socket.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#include <splitnet/config.hpp>
#include <splitnet/nic/afxdp_tx_kicker.hpp>
#include <splitnet/nic/detail/afxdp_ledger.hpp>
#include <splitnet/nic/detail/afxdp_setup.hpp>
#include <splitnet/nic/port.hpp>
#include <splitnet/packet/buffer_pool.hpp>
#include <splitnet/packet/frame.hpp>

#ifndef XDP_MAX_TX_SKB_BUDGET
#define XDP_MAX_TX_SKB_BUDGET 9 // Linux 6.17 uapi; older kernels answer ENOPROTOOPT
#endif

namespace splitnet::nic {

/// How the XDP program is attached. automatic: native, then skb.
enum class afxdp_attach_mode : std::uint8_t { automatic, native, skb };
/// How the socket is bound. automatic: zero-copy, then copy.
enum class afxdp_bind_mode : std::uint8_t { automatic, zero_copy, copy };

[[nodiscard]] constexpr std::string_view to_string(afxdp_attach_mode m) noexcept {
    switch (m) {
    case afxdp_attach_mode::native:
        return "native (XDP_DRV)";
    case afxdp_attach_mode::skb:
        return "skb (XDP_SKB)";
    case afxdp_attach_mode::automatic:
        break;
    }
    return "automatic";
}

[[nodiscard]] constexpr std::string_view to_string(afxdp_bind_mode m) noexcept {
    switch (m) {
    case afxdp_bind_mode::zero_copy:
        return "zero-copy";
    case afxdp_bind_mode::copy:
        return "copy";
    case afxdp_bind_mode::automatic:
        break;
    }
    return "automatic";
}

struct afxdp_config {
    std::string ifname;         ///< interface, in the calling thread's network namespace
    std::uint32_t queue_id = 0; ///< the NIC queue this socket serves (one port per queue)
    afxdp_attach_mode attach = afxdp_attach_mode::automatic;
    afxdp_bind_mode bind = afxdp_bind_mode::automatic;
    std::uint32_t rx_size = 2048;      ///< RX ring descriptors (power of two)
    std::uint32_t tx_size = 2048;      ///< TX ring descriptors (power of two)
    std::uint32_t fill_size = 0;       ///< fill ring (power of two); 0: 2 * rx_size
    std::uint32_t comp_size = 0;       ///< completion ring (power of two); 0: tx_size
    std::uint32_t fill_batch = 64;     ///< top the fill ring up once this many slots are free
    std::uint32_t tx_retries = 4;      ///< reap-and-kick rounds on a full TX ring before returning
    std::uint32_t tx_kick_rounds = 16; ///< sendto calls per kick while copy mode answers EAGAIN
    std::uint32_t copy_tx_budget = 0;  ///< XDP_MAX_TX_SKB_BUDGET in copy mode (32..tx_size,
                                       ///< Linux >= 6.17); 0 keeps the kernel's 32 per sendto
    bool tx_kick_thread = false; ///< copy mode: a thread of the port's own calls sendto, so the
                                 ///< caller's thread does not transmit (afxdp_tx_kicker.hpp)
    std::uint16_t port_id = 0;   ///< frame::port of received frames
    bool mount_bpffs = true;     ///< mount bpffs at /sys/fs/bpf if missing (libxdp)
    bool require_up = true;      ///< refuse an interface that is down
    bool wait_release = false; ///< teardown waits until the kernel has freed the queue also in copy
                               ///< mode (always done in zero-copy mode, see ~afxdp_port)
    std::chrono::milliseconds busy_timeout{2000}; ///< retry a bind answered EBUSY this long
    std::chrono::milliseconds drain_timeout{200}; ///< teardown: wait this long for TX completions
};

/// AF_XDP counters beyond port_stats (one writer: the port's thread).
struct afxdp_stats {
    std::uint64_t fill_posted = 0;  ///< buffers posted to the fill ring
    std::uint64_t fill_low = 0;     ///< refills that found the fill ring under 1/4 full
    std::uint64_t fill_empty = 0;   ///< refills that found it empty (the kernel had nothing to
                                    ///< receive into: frames were being dropped)
    std::uint64_t rx_wakeups = 0;   ///< recvfrom calls because the fill ring asked for a wakeup
    std::uint64_t rx_bad_desc = 0;  ///< RX descriptors naming a buffer not on this fill ring
    std::uint64_t tx_completed = 0; ///< completions reaped (buffers back to the pool)
    std::uint64_t tx_bad_completion = 0;    ///< completions naming a buffer not on this TX ring
    std::uint64_t tx_kicks = 0;             ///< sendto calls to drive TX
    std::uint64_t tx_kick_errors = 0;       ///< sendto failures other than EAGAIN/EBUSY/ENOBUFS
    std::uint64_t tx_ring_full_retries = 0; ///< reap-and-kick rounds on a full TX ring
    std::uint64_t tx_copied = 0;            ///< frames copied/linearised into a pool buffer
    std::uint64_t tx_no_buffers = 0;    ///< bursts cut short: no pool buffer to copy a frame into
    std::uint64_t tx_bad_length = 0;    ///< frames shorter than an Ethernet header, longer than
                                        ///< MTU + 18 or than a chunk (in tx_errors)
    std::uint64_t tx_ring_conflict = 0; ///< frames whose buffer was already in a ring of this
                                        ///< socket (a double send or use after free; in tx_errors)
    std::uint64_t pool_conflict = 0;    ///< buffers the pool handed out while still in one of
                                        ///< our rings (freed twice upstream): kept out of use
};

/// The kernel's own drop counters for the socket (getsockopt XDP_STATISTICS).
struct afxdp_kernel_stats {
    bool valid = false;
    std::uint64_t rx_dropped = 0;          ///< dropped for other reasons (e.g. frame > chunk)
    std::uint64_t rx_invalid_descs = 0;    ///< bad fill ring entries
    std::uint64_t tx_invalid_descs = 0;    ///< bad TX descriptors
    std::uint64_t rx_ring_full = 0;        ///< dropped: RX ring full (receiver too slow)
    std::uint64_t rx_fill_ring_empty = 0;  ///< dropped: no buffer on the fill ring
    std::uint64_t tx_ring_empty_descs = 0; ///< TX attempts that found the ring empty
};

/// What set-up chose. attach and bind are never `automatic` once a port exists.
struct afxdp_mode {
    afxdp_attach_mode attach = afxdp_attach_mode::automatic;
    afxdp_bind_mode bind = afxdp_bind_mode::automatic;
    bool need_wakeup = false; ///< the kernel asks for kicks (XDP_USE_NEED_WAKEUP in effect)
    bool shared_umem = false; ///< bound with XDP_SHARED_UMEM (another port registered the UMEM)
    bool dispatcher = false;  ///< the program runs under libxdp's multi-program dispatcher
    std::string driver;       ///< ethtool driver name
    std::string attempts;     ///< e.g. "native zero-copy: EOPNOTSUPP; native copy: ok"
    std::string description;  ///< e.g. "veth0 queue 0: native (XDP_DRV) copy mode, need_wakeup"
};

namespace detail {

/// The UMEM registration of one pool, shared by its ports (see "Sharing" above). Every field and
/// every libxdp call on `umem` is under `mu`; nothing here is touched on the hot path.
struct afxdp_umem_state {
    explicit afxdp_umem_state(packet::buffer_pool& p)
        : pool(&p), base(p.base()), parked(p.capacity()) {}
    afxdp_umem_state(const afxdp_umem_state&) = delete;
    afxdp_umem_state& operator=(const afxdp_umem_state&) = delete;
    ~afxdp_umem_state() {
        if (umem != nullptr) {
            xsk_umem__delete(umem);
        }
    }

    packet::buffer_pool* pool;
    const std::uint8_t* base;
    std::mutex mu;
    xsk_umem* umem = nullptr;    ///< live while sockets > 0 (and during a first bind)
    std::uint32_t sockets = 0;   ///< sockets bound on `umem`
    std::uint32_t fill_size = 0; ///< ring sizes of `umem`: later queues get these
    std::uint32_t comp_size = 0; ///<
    bool zero_copy = false;      ///< bind mode of `umem`: later sockets inherit it
    std::vector<std::pair<unsigned, std::uint32_t>> queues; ///< (ifindex, queue) with a port
    /// Buffers the UMEM's own socket may still hold after its port went (libxdp keeps that fd
    /// open, bound, until xsk_umem__delete): returned when the UMEM goes.
    buffer_ledger parked;
    std::uint32_t nparked = 0;
    unsigned parked_ifindex = 0;
    std::uint32_t parked_queue = 0;
    bool parked_wait = false; ///< wait for the parked queue's release before reusing them
};

/// The UMEM state of `pool`, created on first use; ports keep it alive.
inline std::shared_ptr<afxdp_umem_state> umem_of(packet::buffer_pool& pool) {
    static std::mutex mu;
    static std::vector<std::weak_ptr<afxdp_umem_state>> all;
    const std::lock_guard lock(mu);
    std::erase_if(all, [](const std::weak_ptr<afxdp_umem_state>& w) { return w.expired(); });
    for (const auto& w : all) {
        if (auto s = w.lock(); s && s->pool == &pool && s->base == pool.base()) {
            return s;
        }
    }
    auto s = std::make_shared<afxdp_umem_state>(pool);
    all.push_back(s);
    return s;
}

// libbpf/libxdp print routing: to the set-up log of the port being set up on this thread, else
// to the function installed before us (so we change nothing for other users of the libraries).
inline libbpf_print_fn_t previous_libbpf_print = nullptr;
inline libxdp_print_fn_t previous_libxdp_print = nullptr;

__attribute__((format(printf, 2, 0))) inline int libbpf_print_hook(enum libbpf_print_level level,
                                                                   const char* fmt, va_list ap) {
    if (setup_log* log = capture_target) {
        if (level != LIBBPF_DEBUG) {
            log->vappend(level == LIBBPF_WARN ? "warn" : "info", fmt, ap);
        }
        return 0;
    }
    return previous_libbpf_print != nullptr ? previous_libbpf_print(level, fmt, ap) : 0;
}

__attribute__((format(printf, 2, 0))) inline int libxdp_print_hook(enum libxdp_print_level level,
                                                                   const char* fmt, va_list ap) {
    if (setup_log* log = capture_target) {
        if (level != LIBXDP_DEBUG) {
            log->vappend(level == LIBXDP_WARN ? "warn" : "info", fmt, ap);
        }
        return 0;
    }
    return previous_libxdp_print != nullptr ? previous_libxdp_print(level, fmt, ap) : 0;
}

inline void install_print_hooks() {
    static std::once_flag once;
    std::call_once(once, [] {
        previous_libbpf_print = libbpf_set_print(&libbpf_print_hook);
        previous_libxdp_print = libxdp_set_print(&libxdp_print_hook);
    });
}

/// Everything one socket needs. Heap-allocated: libxdp keeps pointers to the ring structs.
struct afxdp_queue {
    // Hot, receive side.
    xsk_ring_cons rx{};
    xsk_ring_prod fill{};
    std::uint8_t* base = nullptr;
    packet::buffer_pool* pool = nullptr;
    buffer_ledger ledger;
    std::uint32_t shift = 0;
    std::uint32_t frame_size = 0;
    std::uint32_t rx_size = 0;
    std::uint32_t fill_size = 0;
    std::uint32_t fill_batch = 0;
    std::uint32_t fill_outstanding = 0; ///< buffers on the kernel's receive side
    std::uint16_t port_id = 0;
    int fd = -1;
    // Hot, transmit side.
    xsk_ring_prod tx{};
    xsk_ring_cons comp{};
    std::uint32_t comp_size = 0;
    std::uint32_t tx_outstanding = 0; ///< buffers on the kernel's transmit side
    std::uint32_t tx_retries = 0;
    std::uint32_t kick_rounds = 0;
    std::unique_ptr<afxdp_tx_kicker> kicker; ///< tx_kick_thread in copy mode
    std::uint32_t max_frame = 0;             ///< longest frame sent: MTU + Ethernet + one VLAN tag
    std::uint32_t copy_headroom = 0;         ///< where copied frames start in their buffer
    port_stats stats{};
    afxdp_stats xstats{};
    // Cold.
    xsk_socket* xsk = nullptr;
    std::shared_ptr<afxdp_umem_state> umem;
    afxdp_config cfg;
    iface_info iface;
    afxdp_mode mode;
    std::string where; ///< "afxdp_port: veth0 queue 0" for messages
    bool zero_copy = false;
    bool owns_umem_fd = false; ///< this socket is the UMEM's own fd (the first one bound)
    setup_log log;
};

} // namespace detail

class afxdp_port {
public:
    /// Opens an AF_XDP socket on cfg.ifname queue cfg.queue_id over `pool`'s arena. The pool must
    /// outlive the port. Throws std::system_error / std::invalid_argument (see the file comment).
    afxdp_port(packet::buffer_pool& pool, const afxdp_config& cfg)
        : q_(std::make_unique<detail::afxdp_queue>()) {
        detail::afxdp_queue& q = *q_;
        q.cfg = cfg;
        q.pool = &pool;
        q.where = "afxdp_port: " + cfg.ifname + " queue " + std::to_string(cfg.queue_id);
        check_config(q);
        check_interface(q);
        detail::install_print_hooks();
        const detail::capture_scope capture(q.log);
        if (cfg.mount_bpffs) {
            detail::ensure_bpffs(detail::bpffs_path(), q.log);
        }
        q.umem = detail::umem_of(pool);
        open_socket(q);
    }

    afxdp_port(afxdp_port&&) noexcept = default;
    afxdp_port(const afxdp_port&) = delete;
    afxdp_port& operator=(const afxdp_port&) = delete;
    afxdp_port& operator=(afxdp_port&&) = delete;

    /// Drains TX (up to drain_timeout), deletes the socket (libxdp detaches the program when this
    /// was the last socket on the interface) and the UMEM when this was its last port, and gives
    /// every buffer the kernel held back to the pool. In zero-copy mode (and with wait_release)
    /// it first waits until the kernel has released the queue, because a zero-copy driver keeps
    /// fill buffers in its RX descriptors until then (see detail/afxdp_setup.hpp).
    ~afxdp_port() {
        if (q_ != nullptr && q_->xsk != nullptr) {
            teardown(*q_);
        }
    }

    // --- port concept -------------------------------------------------------------------------

    [[nodiscard]] packet::buffer_pool& pool() noexcept { return *q_->pool; }
    [[nodiscard]] const port_stats& stats() const noexcept { return q_->stats; }
    [[nodiscard]] port_caps caps() const noexcept {
        return {false, false, false, false, q_->iface.mtu};
    }

    /// Receives up to out.size() frames; the caller owns them (return them to pool()).
    [[nodiscard]] std::size_t rx_burst(std::span<packet::frame> out) noexcept {
        detail::afxdp_queue& q = *q_;
        std::uint32_t idx = 0;
        const auto want = static_cast<std::uint32_t>(std::min<std::size_t>(out.size(), q.rx_size));
        const std::uint32_t n = want == 0 ? 0 : xsk_ring_cons__peek(&q.rx, want, &idx);
        std::size_t got = 0;
        std::uint64_t bytes = 0;
        std::uint32_t mine = 0;
        const std::uint64_t in_chunk = q.frame_size - 1;
        for (std::uint32_t i = 0; i < n; ++i) {
            if (i + prefetch_ahead < n) {
                SPLITNET_PREFETCH(q.base +
                                  xsk_ring_cons__rx_desc(&q.rx, idx + i + prefetch_ahead)->addr);
            }
            const xdp_desc* d = xsk_ring_cons__rx_desc(&q.rx, idx + i);
            const std::uint64_t addr = d->addr;
            const std::uint32_t len = d->len;
            const std::uint64_t buf = addr >> q.shift;
            if (SPLITNET_UNLIKELY(
                    !q.ledger.move(buf, detail::buffer_owner::fill, detail::buffer_owner::user))) {
                ++q.stats.rx_errors; // not a buffer we posted: leave it alone
                ++q.xstats.rx_bad_desc;
                continue;
            }
            ++mine;
            if (SPLITNET_UNLIKELY(len == 0 || (addr & in_chunk) + len > q.frame_size)) {
                ++q.stats.rx_errors;
                ++q.xstats.rx_bad_desc;
                const auto index = static_cast<std::uint32_t>(buf);
                q.pool->give_indices(&index, 1);
                continue;
            }
            packet::frame& f = out[got++];
            f = q.pool->frame_at(addr, len);
            f.port = q.port_id;
            bytes += len;
        }
        if (n != 0) {
            // Release edge: pairs with the kernel's acquire of the RX consumer before it reuses
            // these slots (we have copied the descriptors out).
            xsk_ring_cons__release(&q.rx, n);
        }
        q.fill_outstanding -= mine;
        q.stats.rx_packets += got;
        q.stats.rx_bytes += bytes;
        const std::uint32_t posted = refill(q, q.fill_batch);
        if ((n == 0 || posted != 0) && xsk_ring_prod__needs_wakeup(&q.fill)) {
            // A zero-copy driver stopped for lack of buffers: let it look at the fill ring again.
            ::recvfrom(q.fd, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
            ++q.stats.wakeups;
            ++q.xstats.rx_wakeups;
        }
        return got;
    }

    /// Sends frames in order; returns how many it took (from then on the port owns them). The
    /// rest stay with the caller: the TX ring stayed full after tx_retries rounds (tx_full), or
    /// the pool had no buffer to copy a foreign or chained frame into (afxdp_stats::tx_no_buffers).
    [[nodiscard]] std::size_t tx_burst(std::span<packet::frame> in) noexcept {
        detail::afxdp_queue& q = *q_;
        reap_completions(q);
        copy_stash stash(*q.pool);
        std::size_t done = 0;
        std::uint32_t retries = 0;
        bool submitted = false;
        bool out_of_buffers = false;
        while (done < in.size() && !out_of_buffers) {
            const auto left = static_cast<std::uint32_t>(
                std::min<std::size_t>(in.size() - done, std::uint32_t{1} << 30));
            // Never more in flight than the completion ring holds: the kernel reserves a
            // completion slot per frame and refuses to send (EAGAIN) without one.
            std::uint32_t room = std::min(left, q.comp_size - q.tx_outstanding);
            room = std::min(room, xsk_prod_nb_free(&q.tx, room));
            if (room == 0) {
                if (retries == q.tx_retries) {
                    ++q.stats.tx_full;
                    break;
                }
                ++retries;
                ++q.xstats.tx_ring_full_retries;
                kick_tx(q);
                reap_completions(q);
                continue;
            }
            std::uint32_t slot = 0;
            xsk_ring_prod__reserve(&q.tx, room, &slot); // cannot fail: nb_free >= room
            std::uint32_t used = 0;
            while (used < room && done < in.size()) {
                xdp_desc* d = xsk_ring_prod__tx_desc(&q.tx, slot + used);
                const tx_verdict v = prepare(q, in[done], *d, stash);
                if (v == tx_verdict::no_buffer) {
                    out_of_buffers = true;
                    break;
                }
                ++done;
                used += v == tx_verdict::post ? 1U : 0U;
            }
            // libxdp 1.3.1 has no producer-side cancel: hand back the slots reserved and not
            // used (only our cached producer moved; the kernel never saw them).
            q.tx.cached_prod -= room - used;
            if (used != 0) {
                // Release edge: the descriptors are written before the kernel can see the new
                // producer (pairs with the kernel's acquire in xskq_cons_peek_desc).
                xsk_ring_prod__submit(&q.tx, used);
                q.tx_outstanding += used;
                submitted = true;
            }
        }
        if (out_of_buffers) {
            ++q.xstats.tx_no_buffers;
        }
        stash.give_back();
        if (submitted || tx_ring_busy(q)) {
            kick_tx(q);
        }
        return done;
    }

    // --- AF_XDP ---------------------------------------------------------------------------------

    /// Drains the completion ring back to the pool, kicks TX if descriptors wait, tops the fill
    /// ring up completely. For idle loops and before reading buffers_in_kernel(). Returns the
    /// completions reaped.
    std::uint32_t reap() noexcept {
        detail::afxdp_queue& q = *q_;
        const std::uint32_t n = reap_completions(q);
        if (tx_ring_busy(q)) {
            kick_tx(q);
        }
        refill(q, 1);
        return n;
    }

    /// Sleeps in poll(2) until a frame can be received (or `events` happen), at most timeout_ms
    /// (-1: no limit). poll on an AF_XDP socket also performs the fill ring wakeup.
    int wait(int timeout_ms, short events = POLLIN) noexcept {
        pollfd p{q_->fd, events, 0};
        return ::poll(&p, 1, timeout_ms);
    }

    [[nodiscard]] int fd() const noexcept { return q_->fd; }
    [[nodiscard]] const afxdp_mode& mode() const noexcept { return q_->mode; }
    /// "veth0 queue 0: native (XDP_DRV) copy mode, need_wakeup, ..."
    [[nodiscard]] const std::string& describe() const noexcept { return q_->mode.description; }
    /// The thread that transmits for this port (afxdp_config::tx_kick_thread), or nullptr.
    [[nodiscard]] const afxdp_tx_kicker* tx_kicker() const noexcept { return q_->kicker.get(); }
    [[nodiscard]] const afxdp_stats& xdp_stats() const noexcept { return q_->xstats; }
    [[nodiscard]] const std::string& ifname() const noexcept { return q_->cfg.ifname; }
    [[nodiscard]] std::uint32_t queue_id() const noexcept { return q_->cfg.queue_id; }
    /// libbpf/libxdp messages and splitnet's notes from set-up (why a mode or fallback was used).
    [[nodiscard]] std::string_view setup_log() const noexcept { return q_->log.view(); }
    /// Buffers the kernel holds for this socket (fill side + transmit side).
    [[nodiscard]] std::uint32_t buffers_in_kernel() const noexcept {
        return q_->fill_outstanding + q_->tx_outstanding;
    }
    [[nodiscard]] std::uint32_t tx_in_flight() const noexcept { return q_->tx_outstanding; }

    [[nodiscard]] afxdp_kernel_stats kernel_stats() const noexcept {
        xdp_statistics st{};
        socklen_t len = sizeof st;
        afxdp_kernel_stats k;
        if (::getsockopt(q_->fd, SOL_XDP, XDP_STATISTICS, &st, &len) != 0) {
            return k;
        }
        k.valid = true;
        k.rx_dropped = st.rx_dropped;
        k.rx_invalid_descs = st.rx_invalid_descs;
        k.tx_invalid_descs = st.tx_invalid_descs;
        // Fields after the first three exist since Linux 5.9; older kernels return less.
        if (len >= sizeof st) {
            k.rx_ring_full = st.rx_ring_full;
            k.rx_fill_ring_empty = st.rx_fill_ring_empty_descs;
            k.tx_ring_empty_descs = st.tx_ring_empty_descs;
        }
        return k;
    }

private:
    static constexpr std::uint32_t prefetch_ahead = 4;
    static constexpr std::uint32_t chunk = 64; ///< buffers moved to/from the pool per call
    static constexpr std::uint32_t xdp_packet_headroom = 256; ///< XDP_PACKET_HEADROOM
    static constexpr std::uint32_t l2_overhead = 18;          ///< Ethernet header + one VLAN tag
    static constexpr std::uint32_t min_frame = 14;            ///< an Ethernet header

    enum class tx_verdict : std::uint8_t { post, dropped, no_buffer };

    /// Pool buffers taken for copies during one tx_burst; what is left goes back at the end.
    class copy_stash {
    public:
        explicit copy_stash(packet::buffer_pool& pool) noexcept : pool_(pool) {}
        copy_stash(const copy_stash&) = delete;
        copy_stash& operator=(const copy_stash&) = delete;
        ~copy_stash() { give_back(); }
        bool take(std::uint32_t& index) noexcept {
            if (n_ == 0) {
                n_ = pool_.take_indices(idx_, chunk);
                if (n_ == 0) {
                    return false;
                }
            }
            index = idx_[--n_];
            return true;
        }
        void give_back() noexcept {
            if (n_ != 0) {
                pool_.give_indices(idx_, n_);
                n_ = 0;
            }
        }

    private:
        packet::buffer_pool& pool_;
        std::uint32_t idx_[chunk];
        std::uint32_t n_ = 0;
    };

    // --- hot helpers ----------------------------------------------------------------------------

    /// Tops the fill ring up to fill_size buffers on the kernel's receive side, in chunks, once
    /// fill_batch are missing. Returns how many it posted.
    static std::uint32_t refill(detail::afxdp_queue& q, std::uint32_t batch) noexcept {
        std::uint32_t deficit = q.fill_size - q.fill_outstanding;
        if (deficit < batch) {
            return 0;
        }
        if (q.fill_outstanding != 0) {
            // How full the ring is (not how many buffers the kernel holds): one acquire load of
            // the kernel's consumer per refill, pairs with its release in __xskq_cons_release.
            const std::uint32_t level =
                q.fill.cached_prod - __atomic_load_n(q.fill.consumer, __ATOMIC_ACQUIRE);
            if (level == 0) {
                ++q.xstats.fill_empty;
            } else if (level < q.fill_size / 4) {
                ++q.xstats.fill_low;
            }
        }
        std::uint32_t posted = 0;
        while (deficit != 0) {
            std::uint32_t idx[chunk];
            const std::uint32_t want = std::min(deficit, chunk);
            const std::uint32_t got = q.pool->take_indices(idx, want);
            std::uint32_t ok = 0;
            for (std::uint32_t i = 0; i < got; ++i) {
                if (q.ledger.move(idx[i], detail::buffer_owner::user, detail::buffer_owner::fill)) {
                    idx[ok++] = idx[i];
                } else {
                    ++q.xstats.pool_conflict; // freed to the pool while still in one of our rings
                }
            }
            std::uint32_t slot = 0;
            // Reserve cannot fail: free slots >= fill_size - fill_outstanding >= ok.
            if (ok != 0 && xsk_ring_prod__reserve(&q.fill, ok, &slot) == ok) {
                for (std::uint32_t i = 0; i < ok; ++i) {
                    *xsk_ring_prod__fill_addr(&q.fill, slot + i) = q.pool->address_of(idx[i]);
                }
                // Release edge: addresses written before the producer (kernel acquires it).
                xsk_ring_prod__submit(&q.fill, ok);
                q.fill_outstanding += ok;
                posted += ok;
            }
            deficit -= std::min(deficit, got);
            if (got < want) {
                ++q.stats.rx_no_buffers;
                break;
            }
        }
        q.xstats.fill_posted += posted;
        return posted;
    }

    /// Moves every completion back to the pool. Returns the number reaped.
    static std::uint32_t reap_completions(detail::afxdp_queue& q) noexcept {
        std::uint32_t reaped = 0;
        for (;;) {
            std::uint32_t idx = 0;
            const std::uint32_t n = xsk_ring_cons__peek(&q.comp, q.comp_size, &idx);
            if (n == 0) {
                break;
            }
            std::uint32_t put[chunk];
            std::uint32_t np = 0;
            for (std::uint32_t i = 0; i < n; ++i) {
                const std::uint64_t buf = *xsk_ring_cons__comp_addr(&q.comp, idx + i) >> q.shift;
                if (!q.ledger.move(buf, detail::buffer_owner::tx, detail::buffer_owner::user)) {
                    ++q.xstats.tx_bad_completion;
                    continue;
                }
                put[np++] = static_cast<std::uint32_t>(buf);
                if (np == chunk) {
                    q.pool->give_indices(put, np);
                    reaped += np;
                    np = 0;
                }
            }
            xsk_ring_cons__release(&q.comp, n);
            if (np != 0) {
                q.pool->give_indices(put, np);
                reaped += np;
            }
        }
        q.tx_outstanding -= reaped;
        q.xstats.tx_completed += reaped;
        return reaped;
    }

    /// True when the kernel has not taken every descriptor we submitted.
    static bool tx_ring_busy(const detail::afxdp_queue& q) noexcept {
        return __atomic_load_n(q.tx.consumer, __ATOMIC_ACQUIRE) != *q.tx.producer;
    }

    /// sendto when the TX ring asks for it. In copy mode sendto transmits (up to the budget per
    /// call) and answers EAGAIN while descriptors remain or the completion ring is full; repeat
    /// then, reaping in between, up to tx_kick_rounds calls.
    static void kick_tx(detail::afxdp_queue& q) noexcept {
        if (!xsk_ring_prod__needs_wakeup(&q.tx)) {
            return;
        }
        if (q.kicker != nullptr) {
            q.kicker->notify(*q.tx.producer);
            return;
        }
        for (std::uint32_t round = 0; round < q.kick_rounds; ++round) {
            ++q.stats.wakeups;
            ++q.xstats.tx_kicks;
            if (::sendto(q.fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0) {
                return;
            }
            const int err = errno;
            if (err == EAGAIN) {
                reap_completions(q);
                if (!tx_ring_busy(q)) {
                    return;
                }
                continue;
            }
            if (err != EBUSY && err != ENOBUFS && err != EINTR) {
                ++q.xstats.tx_kick_errors; // ENETDOWN, ENXIO...: the next burst tries again
            }
            return;
        }
    }

    /// Writes the descriptor for `f` (taking its buffer, or a copy of it), or drops it.
    static tx_verdict prepare(detail::afxdp_queue& q, packet::frame& f, xdp_desc& d,
                              copy_stash& stash) noexcept {
        packet::buffer_pool& pool = *q.pool;
        if (f.next == nullptr && pool.owns(f.buffer)) {
            // In this pool's arena: send the buffer itself. data must lie in its own chunk.
            const auto addr = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(f.data) -
                                                         reinterpret_cast<std::uintptr_t>(q.base));
            const std::uint64_t buf = f.buffer >> q.shift;
            const bool in_chunk =
                addr >> q.shift == buf && (addr & (q.frame_size - 1)) + f.data_len <= q.frame_size;
            if (SPLITNET_UNLIKELY(!q.ledger.is(buf, detail::buffer_owner::user))) {
                ++q.stats.tx_errors; // already in one of our rings: never post it twice
                ++q.xstats.tx_ring_conflict;
                return tx_verdict::dropped;
            }
            if (SPLITNET_UNLIKELY(!in_chunk || f.data_len < min_frame ||
                                  f.data_len > q.max_frame)) {
                ++q.stats.tx_errors;
                ++q.xstats.tx_bad_length;
                pool.free(f);
                return tx_verdict::dropped;
            }
            (void)q.ledger.move(buf, detail::buffer_owner::user, detail::buffer_owner::tx);
            d.addr = addr;
            d.len = f.data_len;
            d.options = 0;
            ++q.stats.tx_packets;
            q.stats.tx_bytes += f.data_len;
            return tx_verdict::post;
        }
        // Foreign memory or a chain: linearise into one fresh buffer of this pool. The length
        // is what the segments hold (not pkt_len, which only the head's producer vouches for).
        std::uint64_t len = 0;
        packet::for_each_segment(
            f, [&len](const packet::frame& seg) noexcept { len += seg.data_len; });
        if (SPLITNET_UNLIKELY(len < min_frame || len > q.max_frame ||
                              len > q.frame_size - q.copy_headroom)) {
            ++q.stats.tx_errors;
            ++q.xstats.tx_bad_length;
            pool.free(f); // this pool's buffers of the chain; foreign memory is not ours
            return tx_verdict::dropped;
        }
        std::uint32_t index = 0;
        do {
            if (!stash.take(index)) {
                return tx_verdict::no_buffer;
            }
            if (q.ledger.move(index, detail::buffer_owner::user, detail::buffer_owner::tx)) {
                break;
            }
            ++q.xstats.pool_conflict; // still in one of our rings: keep it out of circulation
        } while (true);
        const std::uint64_t addr = pool.address_of(index) + q.copy_headroom;
        (void)packet::copy_out(f, {q.base + addr, static_cast<std::size_t>(len)});
        pool.free(f);
        d.addr = addr;
        d.len = static_cast<std::uint32_t>(len);
        d.options = 0;
        ++q.xstats.tx_copied;
        ++q.stats.tx_packets;
        q.stats.tx_bytes += len;
        return tx_verdict::post;
    }

    // --- set-up ---------------------------------------------------------------------------------

    [[noreturn]] static void fail(int err, const std::string& what) {
        SPLITNET_THROW(std::system_error(err, std::generic_category(), what));
    }
    [[noreturn]] static void bad_config(const std::string& what) {
        SPLITNET_THROW(std::invalid_argument(what));
    }

    static void check_config(detail::afxdp_queue& q) {
        afxdp_config& c = q.cfg;
        const packet::buffer_pool& pool = *q.pool;
        const auto pow2 = [](std::uint32_t v) {
            return v != 0 && (v & (v - 1)) == 0;
        };
        if (c.ifname.empty() || c.ifname.size() >= IFNAMSIZ) {
            bad_config("afxdp_port: interface name '" + c.ifname + "' must be 1.." +
                       std::to_string(IFNAMSIZ - 1) + " characters");
        }
        if (pool.frame_size() != 2048 && pool.frame_size() != 4096) {
            bad_config(q.where + ": pool frame_size " + std::to_string(pool.frame_size()) +
                       " cannot be an AF_XDP UMEM chunk: the kernel takes 2048 or 4096 bytes "
                       "(aligned mode, no multi-buffer); make the pool with frame_size 2048 "
                       "or 4096");
        }
        if (c.fill_size == 0) {
            c.fill_size = 2 * c.rx_size;
        }
        if (c.comp_size == 0) {
            c.comp_size = c.tx_size;
        }
        if (!pow2(c.rx_size) || !pow2(c.tx_size) || !pow2(c.fill_size) || !pow2(c.comp_size)) {
            bad_config(q.where + ": ring sizes must be powers of two (rx " +
                       std::to_string(c.rx_size) + ", tx " + std::to_string(c.tx_size) + ", fill " +
                       std::to_string(c.fill_size) + ", completion " + std::to_string(c.comp_size) +
                       ")");
        }
        if (c.fill_size >= pool.capacity()) {
            bad_config(q.where + ": the fill ring (" + std::to_string(c.fill_size) +
                       ") would hold every buffer of a pool of " + std::to_string(pool.capacity()) +
                       "; give the pool at least fill_size + tx_size + the buffers the caller "
                       "holds (e.g. 4 x fill_size)");
        }
        if (c.fill_batch == 0 || c.fill_batch > c.fill_size) {
            c.fill_batch = std::min<std::uint32_t>(chunk, c.fill_size);
        }
        if (c.tx_kick_rounds == 0) {
            c.tx_kick_rounds = 1;
        }
    }

    static void check_interface(detail::afxdp_queue& q) {
        const afxdp_config& c = q.cfg;
        if (const std::string missing = detail::missing_capabilities(); !missing.empty()) {
            fail(EPERM, q.where + ": missing " + missing +
                            ". AF_XDP needs CAP_NET_RAW (the socket), CAP_NET_ADMIN (attaching "
                            "XDP) and CAP_BPF or CAP_SYS_ADMIN (loading the program and its "
                            "maps): run as root, or `setcap "
                            "cap_net_raw,cap_net_admin,cap_bpf,cap_ipc_lock+ep <program>`");
        }
        q.iface = detail::query_iface(c.ifname);
        if (q.iface.index == 0) {
            fail(ENODEV, q.where + ": interface '" + c.ifname +
                             "' does not exist in this network namespace; check `ip link show` "
                             "(and which namespace the process runs in)");
        }
        if (!q.iface.up && c.require_up) {
            fail(ENETDOWN, q.where + ": interface is down; bring it up first: ip link set dev " +
                               c.ifname + " up");
        }
        if (q.iface.queues != 0 && c.queue_id >= q.iface.queues) {
            fail(EINVAL, q.where + ": queue id out of range: " + c.ifname + " has " +
                             std::to_string(q.iface.queues) + " queue(s) (ethtool -l " + c.ifname +
                             "); use queue_id 0.." + std::to_string(q.iface.queues - 1));
        }
        const std::uint32_t rx_room =
            q.pool->frame_size() -
            std::max<std::uint32_t>(xdp_packet_headroom, q.pool->default_headroom());
        if (q.iface.mtu + l2_overhead > rx_room) {
            bad_config(q.where + ": MTU " + std::to_string(q.iface.mtu) +
                       " does not fit a UMEM chunk of " + std::to_string(q.pool->frame_size()) +
                       " bytes (" + std::to_string(rx_room) +
                       " after the headroom; AF_XDP multi-buffer is not available): lower the "
                       "MTU to " +
                       std::to_string(rx_room - l2_overhead) +
                       " or less, or use a pool with 4096-byte frames");
        }
    }

    /// Sets the geometry the hot path uses; allocates the ledger.
    static void init_queue(detail::afxdp_queue& q) {
        const packet::buffer_pool& pool = *q.pool;
        const afxdp_config& c = q.cfg;
        q.base = pool.base();
        q.frame_size = pool.frame_size();
        q.shift = static_cast<std::uint32_t>(std::countr_zero(pool.frame_size()));
        q.ledger = detail::buffer_ledger(pool.capacity());
        q.rx_size = c.rx_size;
        q.fill_size = c.fill_size;
        q.fill_batch = c.fill_batch;
        q.comp_size = c.comp_size;
        q.tx_retries = c.tx_retries;
        q.kick_rounds = c.tx_kick_rounds;
        q.port_id = c.port_id;
        q.max_frame = q.iface.mtu + l2_overhead;
        q.copy_headroom = std::max<std::uint32_t>(xdp_packet_headroom, pool.default_headroom());
    }

    struct attempt {
        afxdp_attach_mode attach;
        afxdp_bind_mode bind;
    };

    static std::string attempt_name(const attempt& a) {
        return std::string(a.attach == afxdp_attach_mode::native ? "native" : "skb") + " " +
               std::string(to_string(a.bind));
    }

    /// Registers the UMEM (over the pool's arena) for the first socket of a pool. Raises
    /// RLIMIT_MEMLOCK once if the kernel says ENOBUFS (it charges the UMEM there unless the
    /// process has CAP_IPC_LOCK). Returns 0 or -errno.
    static int create_umem(detail::afxdp_queue& q, detail::afxdp_umem_state& u) {
        const packet::buffer_pool& pool = *q.pool;
        xsk_umem_config uc{};
        uc.fill_size = q.cfg.fill_size;
        uc.comp_size = q.cfg.comp_size;
        uc.frame_size = pool.frame_size();
        uc.frame_headroom = pool.default_headroom() > xdp_packet_headroom
                                ? pool.default_headroom() - xdp_packet_headroom
                                : 0;
        uc.flags = 0;
        q.fill = {};
        q.comp = {};
        const std::span<std::uint8_t> arena = pool.arena();
        int err = xsk_umem__create(&u.umem, arena.data(), arena.size(), &q.fill, &q.comp, &uc);
        if (err == -ENOBUFS && !detail::has_capability(CAP_IPC_LOCK)) {
            const std::string raised = detail::raise_memlock();
            if (!raised.empty()) {
                q.log.note(raised + " for a UMEM of " + std::to_string(arena.size() >> 10) +
                           " KiB");
                err = xsk_umem__create(&u.umem, arena.data(), arena.size(), &q.fill, &q.comp, &uc);
            }
        }
        if (err != 0) {
            u.umem = nullptr;
        }
        return err;
    }

    /// Posts the fill ring's worth of buffers (before the first bind, so the kernel never sees an
    /// empty fill ring; after it for later sockets, whose fill ring is made by the bind).
    static void prefill(detail::afxdp_queue& q) noexcept { refill(q, 1); }

    /// Gives every buffer the ledger says the kernel held back to the pool.
    static void reclaim(detail::afxdp_queue& q) noexcept {
        std::uint32_t idx[chunk];
        std::uint32_t n = 0;
        q.ledger.release_all([&](std::uint32_t i) noexcept {
            idx[n++] = i;
            if (n == chunk) {
                q.pool->give_indices(idx, n);
                n = 0;
            }
        });
        if (n != 0) {
            q.pool->give_indices(idx, n);
        }
        q.fill_outstanding = 0;
        q.tx_outstanding = 0;
    }

    /// A pool has one socket per queue, and its later sockets get the UMEM's ring sizes. Called
    /// with u.mu held.
    static void check_umem_sharing(const detail::afxdp_queue& q,
                                   const detail::afxdp_umem_state& u) {
        for (const auto& [ifindex, queue] : u.queues) {
            if (ifindex == q.iface.index && queue == q.cfg.queue_id) {
                bad_config(q.where + ": this pool already has a port on that queue (one "
                                     "AF_XDP socket per queue and pool)");
            }
        }
        if (u.sockets != 0 && (u.fill_size != q.cfg.fill_size || u.comp_size != q.cfg.comp_size)) {
            bad_config(q.where + ": the pool's UMEM has fill/completion rings of " +
                       std::to_string(u.fill_size) + "/" + std::to_string(u.comp_size) +
                       " (set by its first port); later ports must ask for the same sizes");
        }
    }

    /// One bind attempt in one mode, with EBUSY retried until busy_timeout. Returns 0 or -errno.
    static int try_open(detail::afxdp_queue& q, const attempt& a) {
        detail::afxdp_umem_state& u = *q.umem;
        xsk_socket_config sc{};
        sc.rx_size = q.cfg.rx_size;
        sc.tx_size = q.cfg.tx_size;
        sc.libxdp_flags = 0; // load libxdp's default program
        sc.xdp_flags =
            a.attach == afxdp_attach_mode::native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
        sc.bind_flags = static_cast<std::uint16_t>(
            XDP_USE_NEED_WAKEUP | (a.bind == afxdp_bind_mode::zero_copy ? XDP_ZEROCOPY : XDP_COPY));
        const auto deadline = std::chrono::steady_clock::now() + q.cfg.busy_timeout;
        std::chrono::milliseconds backoff{1};
        std::unique_lock lock(u.mu);
        for (;;) {
            check_umem_sharing(q, u);
            const bool first = u.sockets == 0;
            q.rx = {};
            q.tx = {};
            int err = 0;
            if (first) {
                // A fresh UMEM per attempt: when a first bind fails after binding (e.g. the
                // program cannot be attached in this mode), libxdp leaves the UMEM's fd bound.
                err = create_umem(q, u);
                if (err == 0) {
                    prefill(q);
                }
            } else {
                q.fill = {};
                q.comp = {};
            }
            if (err == 0) {
                err = xsk_socket__create_shared(&q.xsk, q.cfg.ifname.c_str(), q.cfg.queue_id,
                                                u.umem, &q.rx, &q.tx, &q.fill, &q.comp, &sc);
            }
            if (err == 0) {
                ++u.sockets;
                u.queues.emplace_back(q.iface.index, q.cfg.queue_id);
                q.owns_umem_fd = xsk_socket__fd(q.xsk) == xsk_umem__fd(u.umem);
                if (first) {
                    u.fill_size = q.cfg.fill_size;
                    u.comp_size = q.cfg.comp_size;
                } else {
                    prefill(q);
                }
                return 0;
            }
            q.xsk = nullptr;
            if (first && u.umem != nullptr) {
                xsk_umem__delete(u.umem); // closes the UMEM's fd (and unbinds it, if bound)
                u.umem = nullptr;
                if (a.bind == afxdp_bind_mode::zero_copy && err != -EOPNOTSUPP && err != -EINVAL) {
                    // A zero-copy bind may have succeeded before the failure: the driver can
                    // hold prefilled buffers until the kernel frees the queue.
                    detail::wait_queue_released(q.iface.index, q.cfg.queue_id, q.cfg.busy_timeout);
                }
                reclaim(q);
            }
            if (err != -EBUSY || std::chrono::steady_clock::now() >= deadline) {
                return err;
            }
            // The queue is still held, most likely by a socket closed moments ago (released
            // from a workqueue). Let go of the UMEM lock while waiting: that socket's teardown
            // may need it.
            lock.unlock();
            std::this_thread::sleep_for(backoff);
            backoff = std::min(backoff * 2, std::chrono::milliseconds(20));
            lock.lock();
        }
    }

    /// The attach mode the kernel reports for the interface, and whether libxdp's dispatcher is
    /// in use; falls back to `tried` when libxdp cannot tell.
    static void read_attach_mode(detail::afxdp_queue& q, afxdp_attach_mode tried) {
        q.mode.attach = tried;
        xdp_multiprog* mp = xdp_multiprog__get_from_ifindex(static_cast<int>(q.iface.index));
        if (mp == nullptr || libxdp_get_error(mp) != 0) {
            return;
        }
        switch (xdp_multiprog__attach_mode(mp)) {
        case XDP_MODE_NATIVE:
            q.mode.attach = afxdp_attach_mode::native;
            break;
        case XDP_MODE_SKB:
            q.mode.attach = afxdp_attach_mode::skb;
            break;
        default:
            break;
        }
        q.mode.dispatcher = !xdp_multiprog__is_legacy(mp);
        xdp_multiprog__close(mp);
    }

    /// Tries the modes the configuration allows, in order, and records what was chosen.
    static void open_socket(detail::afxdp_queue& q) {
        init_queue(q);
        std::vector<attempt> plan;
        const bool any_attach = q.cfg.attach == afxdp_attach_mode::automatic;
        const bool any_bind = q.cfg.bind == afxdp_bind_mode::automatic;
        for (const afxdp_attach_mode am : {afxdp_attach_mode::native, afxdp_attach_mode::skb}) {
            if (!any_attach && am != q.cfg.attach) {
                continue;
            }
            for (const afxdp_bind_mode bm : {afxdp_bind_mode::zero_copy, afxdp_bind_mode::copy}) {
                // Generic XDP hands the socket skbs: zero-copy is meaningless there.
                const bool pointless =
                    any_bind && am == afxdp_attach_mode::skb && bm == afxdp_bind_mode::zero_copy;
                if ((any_bind || bm == q.cfg.bind) && !pointless) {
                    plan.push_back({am, bm});
                }
            }
        }
        int err = 0;
        std::string warnings;
        attempt last{};
        for (const attempt& a : plan) {
            const std::size_t mark = q.log.mark();
            err = try_open(q, a);
            q.mode.attempts += (q.mode.attempts.empty() ? "" : "; ") + attempt_name(a) + ": " +
                               (err == 0 ? std::string("ok") : detail::errno_text(-err));
            last = a;
            if (err == 0) {
                break;
            }
            warnings = q.log.warnings_since(mark);
            q.log.note(attempt_name(a) + " failed: " + detail::errno_text(-err));
            if (err == -EPERM || err == -EACCES || err == -ENODEV || err == -ENOMEM ||
                err == -ENOBUFS || err == -EFAULT) {
                break; // no other mode will do better
            }
        }
        if (err != 0) {
            fail(-err, q.where + ": " + failure_hint(q, last, -err) + " (tried " + q.mode.attempts +
                           ")" + (warnings.empty() ? "" : "; libxdp/libbpf said:" + warnings));
        }
        finish_open(q, last);
    }

    static std::string failure_hint(const detail::afxdp_queue& q, const attempt& a, int err) {
        const std::string& ifn = q.cfg.ifname;
        const std::string mode =
            std::string(to_string(a.attach)) + " " + std::string(to_string(a.bind)) + " mode";
        const std::string head = "AF_XDP set-up in " + mode + " failed: " + detail::errno_text(err);
        switch (err) {
        case EOPNOTSUPP:
            if (q.umem->sockets != 0 && q.umem->zero_copy) {
                return head +
                       "; the pool's UMEM is in zero-copy mode (set by its first port) and " + ifn +
                       " cannot join it: use another pool, or bind the first port in copy mode";
            }
            if (a.bind == afxdp_bind_mode::zero_copy) {
                return head + "; the driver of " + ifn + " (" + q.iface.driver +
                       ") has no AF_XDP zero-copy support (veth never has): use bind mode copy "
                       "or automatic";
            }
            return head + "; the driver of " + ifn + " (" + q.iface.driver +
                   ") has no native XDP: use attach mode skb or automatic";
        case EBUSY:
        case EEXIST:
            return head + " (retried for " + std::to_string(q.cfg.busy_timeout.count()) +
                   " ms); another AF_XDP socket holds " + ifn + " queue " +
                   std::to_string(q.cfg.queue_id) +
                   ", or an XDP program is attached in another mode (`ip link show dev " + ifn +
                   "`; `xdp-loader unload " + ifn + " --all` or `ip link set dev " + ifn +
                   " xdp off` removes it)";
        case EINVAL:
            return head + "; the queue id is out of range for " + ifn +
                   " or the kernel refused the ring sizes (powers of two, at most 32768)";
        case ENOBUFS:
        case ENOMEM:
            return head + "; registering the " + std::to_string(q.pool->arena().size() >> 10) +
                   " KiB UMEM needs locked memory: raise RLIMIT_MEMLOCK (`ulimit -l unlimited`, "
                   "LimitMEMLOCK=infinity under systemd) or grant CAP_IPC_LOCK";
        case EPERM:
        case EACCES:
            return head + "; AF_XDP needs CAP_NET_RAW, CAP_NET_ADMIN and CAP_BPF (run as root)";
        default:
            return head;
        }
    }

    /// After a successful bind: what was chosen, the checks that need a socket, the initial state.
    static void finish_open(detail::afxdp_queue& q, const attempt& a) {
        q.fd = xsk_socket__fd(q.xsk);
        (void)::fcntl(q.fd, F_SETFD, FD_CLOEXEC); // libxdp opens it without SOCK_CLOEXEC
        // XDP_USE_NEED_WAKEUP was asked for at bind; a shared socket inherits the first one's
        // (Linux >= 6.0, "xsk: Inherit need_wakeup flag for shared sockets"). Kicking on the
        // ring flag is right either way: setsockopt(XDP_TX_RING) sets it, and only a
        // need_wakeup-aware driver clears it, so without need_wakeup every burst kicks.
        q.mode.need_wakeup = true;
        xdp_options opts{};
        socklen_t len = sizeof opts;
        q.zero_copy = ::getsockopt(q.fd, SOL_XDP, XDP_OPTIONS, &opts, &len) == 0 &&
                      (opts.flags & XDP_OPTIONS_ZEROCOPY) != 0;
        q.mode.bind = q.zero_copy ? afxdp_bind_mode::zero_copy : afxdp_bind_mode::copy;
        q.mode.shared_umem = !q.owns_umem_fd;
        q.mode.driver = q.iface.driver;
        read_attach_mode(q, a.attach);
        {
            const std::lock_guard lock(q.umem->mu);
            if (!q.mode.shared_umem) {
                q.umem->zero_copy = q.zero_copy;
            }
        }
        // A mode forced by the configuration but not obtained (later sockets inherit the
        // UMEM's bind mode and the interface's program) is a set-up error.
        std::string mismatch;
        if (q.cfg.attach != afxdp_attach_mode::automatic && q.cfg.attach != q.mode.attach) {
            mismatch = std::string("the XDP program on ") + q.cfg.ifname + " is attached in " +
                       std::string(to_string(q.mode.attach)) + " mode, not " +
                       std::string(to_string(q.cfg.attach));
        } else if (q.cfg.bind != afxdp_bind_mode::automatic && q.cfg.bind != q.mode.bind) {
            mismatch = "the socket was bound in " + std::string(to_string(q.mode.bind)) +
                       " mode (inherited from the pool's UMEM), not " +
                       std::string(to_string(q.cfg.bind));
        }
        if (!mismatch.empty()) {
            teardown(q);
            fail(EINVAL, q.where + ": " + mismatch + "; use mode automatic or a separate pool");
        }
        if (q.cfg.copy_tx_budget != 0 && !q.zero_copy) {
            const unsigned budget = q.cfg.copy_tx_budget;
            const int rc =
                ::setsockopt(q.fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget, sizeof budget);
            const int err = errno;
            if (rc == 0) {
                q.log.note("copy-mode TX budget " + std::to_string(budget) + " frames per sendto");
            } else {
                q.log.note("XDP_MAX_TX_SKB_BUDGET " + std::to_string(budget) + " not taken: " +
                           detail::errno_text(err) + " (needs Linux >= 6.17 and 32..tx_size)");
            }
        }
        if (q.cfg.tx_kick_thread && !q.zero_copy) {
            int err = 0;
            q.kicker = afxdp_tx_kicker::start(q.fd, q.tx.consumer, err);
            if (q.kicker == nullptr) {
                teardown(q);
                fail(err, q.where + ": no eventfd for the TX kick thread");
            }
        }
        q.mode.description =
            q.cfg.ifname + " queue " + std::to_string(q.cfg.queue_id) + ": " +
            std::string(to_string(q.mode.attach)) + " " + std::string(to_string(q.mode.bind)) +
            " mode" + (q.mode.need_wakeup ? ", need_wakeup" : ", no need_wakeup") +
            (q.mode.shared_umem ? ", shared UMEM" : ", own UMEM") + " (" +
            std::to_string(q.pool->capacity()) + " x " + std::to_string(q.frame_size) +
            " B chunks, data at +" + std::to_string(q.copy_headroom) + "), libxdp xsk_def_prog " +
            (q.mode.dispatcher ? "via the dispatcher" : "attached directly") + ", driver " +
            (q.iface.driver.empty() ? std::string("unknown") : q.iface.driver) +
            (q.kicker != nullptr ? ", TX kicked by a thread of its own" : "");
        q.log.note("chose " + q.mode.description);
    }

    /// Teardown (also after a set-up check failed once the socket existed).
    static void teardown(detail::afxdp_queue& q) noexcept {
        const detail::capture_scope capture(q.log);
        q.kicker.reset(); // joined: this thread kicks from here on
        // 1. Let the kernel finish what is on the TX ring, so those buffers come back by
        //    completion rather than by reclaim.
        const auto deadline = std::chrono::steady_clock::now() + q.cfg.drain_timeout;
        for (;;) {
            reap_completions(q);
            if (q.tx_outstanding == 0 || std::chrono::steady_clock::now() >= deadline) {
                break;
            }
            kick_tx(q);
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
        // 2. Frames received and never collected go straight back to the pool.
        std::uint32_t idx = 0;
        const std::uint32_t n = xsk_ring_cons__peek(&q.rx, q.rx_size, &idx);
        for (std::uint32_t i = 0; i < n; ++i) {
            const std::uint64_t buf = xsk_ring_cons__rx_desc(&q.rx, idx + i)->addr >> q.shift;
            if (q.ledger.move(buf, detail::buffer_owner::fill, detail::buffer_owner::user)) {
                const auto index = static_cast<std::uint32_t>(buf);
                q.pool->give_indices(&index, 1);
                --q.fill_outstanding;
            }
        }
        xsk_ring_cons__release(&q.rx, n);
        // 3. The socket: libxdp removes it from the XSKMAP, drops the program's reference
        //    (detaching it when this was the last socket) and closes the fd, unless it is the
        //    UMEM's own fd, which stays open and bound until the UMEM is deleted.
        detail::afxdp_umem_state& u = *q.umem;
        const std::lock_guard lock(u.mu);
        xsk_socket__delete(q.xsk);
        q.xsk = nullptr;
        --u.sockets;
        std::erase(u.queues, std::pair<unsigned, std::uint32_t>{q.iface.index, q.cfg.queue_id});
        const bool wait = q.zero_copy || q.cfg.wait_release;
        if (q.owns_umem_fd && u.sockets != 0) {
            // 4a. Still bound (other sockets use the UMEM): park what the kernel may hold until
            //     the UMEM goes.
            q.ledger.release_all([&](std::uint32_t i) noexcept {
                (void)u.parked.move(i, detail::buffer_owner::user, detail::buffer_owner::fill);
                ++u.nparked;
            });
            u.parked_ifindex = q.iface.index;
            u.parked_queue = q.cfg.queue_id;
            u.parked_wait = wait;
            q.fill_outstanding = 0;
            q.tx_outstanding = 0;
            return;
        }
        // 4b. The last socket deletes the UMEM, which closes the UMEM's fd (this socket's, or
        //     a parked one's).
        const bool umem_gone = u.sockets == 0 && u.umem != nullptr;
        if (umem_gone) {
            xsk_umem__delete(u.umem);
            u.umem = nullptr;
            u.zero_copy = false;
        }
        // 5. Unbound now (close ran xsk_release): the kernel no longer touches these buffers,
        //    except a zero-copy driver until the queue is freed.
        if (wait) {
            detail::wait_queue_released(q.iface.index, q.cfg.queue_id, q.cfg.busy_timeout);
        }
        reclaim(q);
        if (umem_gone && u.nparked != 0) {
            if (u.parked_wait) {
                detail::wait_queue_released(u.parked_ifindex, u.parked_queue, q.cfg.busy_timeout);
            }
            std::uint32_t put[chunk];
            std::uint32_t np = 0;
            u.parked.release_all([&](std::uint32_t i) noexcept {
                put[np++] = i;
                if (np == chunk) {
                    u.pool->give_indices(put, np);
                    np = 0;
                }
            });
            if (np != 0) {
                u.pool->give_indices(put, np);
            }
            u.nparked = 0;
        }
    }

    std::unique_ptr<detail::afxdp_queue> q_;
};
static_assert(port<afxdp_port>);
static_assert(std::is_nothrow_move_constructible_v<afxdp_port>);

} // namespace splitnet::nic
