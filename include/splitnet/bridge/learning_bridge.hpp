// SPDX-License-Identifier: MIT
// splitnet/bridge/learning_bridge.hpp: the MAC-learning bridge of the driver domain: a burst of
// frames in, one burst per destination port out (port_bursts.hpp), learning, flooding, port
// isolation, anti-spoofing, optional 802.1Q filtering and LRO-aware egress. Anchors: Linux
// net/bridge (br_handle_frame_finish, br_flood, br_fdb_update, nbp_vlan), VPP l2-learn /
// l2-fwd / l2-flood (learn a vector then forward it, one-entry lookup cache), the seed paper's
// simplified bridge (003: 1.2K cycles, 700 instructions per packet).
//
// Per burst (up to `chunk` frames at a time):
//  1. classify: ingress port checks, Ethernet header (both MACs from two loads), anti-spoofing,
//     link-local destinations, VLAN (802.1Q filtering on: tag from the bytes or the stripped
//     metadata, pvid for untagged frames, ingress membership);
//  2. learn every source (consecutive duplicates skipped) with one fdb learn_burst: hashes and
//     prefetches first, then probes (VPP: all learning first, then all forwarding, so a frame
//     may be forwarded by an entry that a later frame of the same burst taught);
//  3. look up every unicast destination with one lookup_burst; a train of frames to the same
//     destination costs one lookup (the one-entry cache of VPP's l2fib_lookup);
//  4. egress: unicast to the learned port, or flood (broadcast, multicast, unknown unicast) to
//     every eligible port but the ingress one; per-port MTU and GSO capability decide whether
//     an aggregate goes as it is, is marked for resegmentation, or is dropped.
// That is the general loop (process). Without VLAN filtering, over an FDB that takes hashed
// keys (hashed_fdb_table), a chunk goes first through a specialised loop (process_fast) that
// does the same in one pass, with a third of the instructions, and hands the chunk to the
// general loop at the first frame it cannot take (any drop); the two give the same outputs and
// counters (see "the specialised loop" below).
// Frames are never copied or modified: see port_bursts.hpp for the ownership rule.
//
// LRO-aware egress. GRO aggregates (frame::offload.gso != none) are forwarded as one frame.
// For each egress port: a port whose flags accept the aggregate's gso_type (port_flag::gso_*,
// e.g. a netfront with feature-gso-tcpv4, a NIC with TSO) gets it as it is; a port that does
// not gets it marked egress::segment, and the pipeline runs software GSO for that port only;
// an aggregate whose segments (hdr_len - L2 header + gso_size) would not fit the port's MTU, or
// a plain frame larger than the MTU, is dropped for that port (Linux is_skb_forwardable). This
// is why Linux must disable LRO on bridged devices and what the LRO-in-Xen paper left as future
// work: here the aggregate crosses the bridge and is split only where it has to be.
//
// Learning and threads. learn_mode::direct: this bridge's thread is the FDB writer (one worker,
// or the worker that owns the table). learn_mode::deferred: several workers share one FDB; each
// worker's bridge only refreshes stamps of known sources and returns the rest in
// port_bursts::learn_requests(), which the pipeline passes to the writer's fdb.learn_burst().
// A bridge object itself is used by one thread; configure it between bursts.
//
// Errors: configuration calls throw std::invalid_argument (SPLITNET_THROW) with the reason;
// forward_burst is noexcept, allocation-free and counts every frame it does not forward.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <splitnet/bridge/fdb.hpp>
#include <splitnet/bridge/mac_key.hpp>
#include <splitnet/bridge/port_bursts.hpp>
#include <splitnet/bridge/port_config.hpp>
#include <splitnet/config.hpp>
#include <splitnet/packet/ethernet.hpp>
#include <splitnet/packet/frame.hpp>

namespace splitnet::bridge {

enum class learn_mode : std::uint8_t {
    direct,   ///< this bridge's thread is the FDB writer: learn_burst in the data path
    deferred, ///< refresh known sources only; the rest go to port_bursts::learn_requests()
};

struct bridge_config {
    std::uint16_t max_ports = 64; ///< port ids 0 .. max_ports-1
    bool vlan_filtering = false;  ///< 802.1Q: per-port membership, pvid, tagged/untagged egress
    learn_mode learning = learn_mode::direct;
    fdb_config fdb{}; ///< for a bridge that owns its FDB (max_ports is set from above)
    /// Take bursts through the specialised loop where it applies (no VLAN filtering, an FDB with
    /// hashed entry points): the same results as the general loop, faster. Off: the general
    /// loop only, which the tests and the fuzz target compare it with.
    bool specialise = true;
};

/// Bridge counters, ethtool -S style. rx_* are ingress events, tx_* egress decisions.
struct bridge_stats {
    std::uint64_t rx_packets = 0;          ///< frames offered to forward_burst
    std::uint64_t rx_broadcast = 0;        ///< broadcast destinations
    std::uint64_t rx_multicast = 0;        ///< multicast destinations (not broadcast)
    std::uint64_t rx_unknown_unicast = 0;  ///< unicast destinations the FDB did not know
    std::uint64_t tx_unicast = 0;          ///< frames sent to the one port the FDB named
    std::uint64_t tx_flooded = 0;          ///< frames flooded to at least one port
    std::uint64_t tx_flood_copies = 0;     ///< egress entries made by flooding (sum of fan-outs)
    std::uint64_t tx_segment = 0;          ///< egress entries marked for resegmentation (GSO)
    std::uint64_t learned = 0;             ///< sources learned (direct mode)
    std::uint64_t moved = 0;               ///< sources moved to another port (direct mode)
    std::uint64_t learn_deferred = 0;      ///< sources handed to the FDB writer (deferred mode)
    std::uint64_t learn_refused = 0;       ///< learns the FDB refused (static conflict, full)
    std::uint64_t rx_drop_runt = 0;        ///< shorter than an Ethernet header
    std::uint64_t rx_drop_bad_port = 0;    ///< ingress port id not configured
    std::uint64_t rx_drop_invalid_src = 0; ///< multicast or all-zero source MAC
    std::uint64_t rx_drop_spoofed = 0;     ///< source MAC not assigned to the port (anti-spoofing)
    std::uint64_t rx_drop_link_local = 0;  ///< 802.1D reserved destination 01:80:c2:00:00:0x
    std::uint64_t rx_drop_vlan = 0;        ///< VLAN filtering: ingress port not in the VLAN
    std::uint64_t tx_drop_same_port = 0;   ///< destination learned on the ingress port
    std::uint64_t tx_drop_isolated = 0;    ///< isolated port to isolated port
    std::uint64_t tx_drop_vlan = 0;        ///< VLAN filtering: destination port not in the VLAN
    std::uint64_t tx_drop_mtu = 0;       ///< egress entries refused: over the MTU, not segmentable
    std::uint64_t tx_drop_no_egress = 0; ///< flooded frames left with no egress entry at all
};

/// Per-port counters.
struct bridge_port_stats {
    std::uint64_t rx_packets = 0;  ///< frames received on this port
    std::uint64_t rx_bytes = 0;    ///< their bytes (pkt_len)
    std::uint64_t rx_dropped = 0;  ///< received frames dropped (any reason)
    std::uint64_t rx_spoofed = 0;  ///< of which anti-spoofing drops
    std::uint64_t tx_packets = 0;  ///< egress entries for this port (unicast and flood)
    std::uint64_t tx_flooded = 0;  ///< of which flood copies
    std::uint64_t tx_segment = 0;  ///< of which marked for resegmentation
    std::uint64_t tx_drop_mtu = 0; ///< egress entries refused for the MTU
};

/// What the pipeline calls on its bridge slot.
template <class B>
concept frame_forwarder =
    requires(B& b, std::span<packet::frame> in, port_bursts& out, std::uint64_t now_ns) {
        { b.forward_burst(in, out, now_ns) } noexcept -> std::same_as<std::size_t>;
    };

namespace detail {
/// The homes of each frame's keys, for the specialised loop over a large hashed table.
template <class Fdb, std::size_t N, bool = hashed_fdb_table<Fdb>>
struct fast_homes {};
template <class Fdb, std::size_t N>
struct fast_homes<Fdb, N, true> {
    std::array<typename Fdb::home, N> src_home{};
    std::array<typename Fdb::home, N> dst_home{};
};
} // namespace detail

template <fdb_table Fdb = fdb<>>
class learning_bridge {
public:
    using fdb_type = Fdb;
    /// Frames classified, learned and looked up together (the scratch arrays are on the stack).
    static constexpr std::size_t chunk = 64;

    /// A bridge that owns its FDB (built from cfg.fdb, with cfg.max_ports).
    explicit learning_bridge(const bridge_config& cfg)
        requires std::constructible_from<Fdb, const fdb_config&>
        : learning_bridge(cfg, nullptr) {
        fdb_config fc = cfg.fdb;
        fc.max_ports = cfg.max_ports;
        owned_ = std::make_unique<Fdb>(fc);
        fdb_ = owned_.get();
        prefetch_ = large_table(*fdb_);
    }

    /// A bridge over an FDB shared with other workers' bridges (see learn_mode).
    learning_bridge(const bridge_config& cfg, Fdb& shared) : learning_bridge(cfg, &shared) {
        prefetch_ = large_table(shared);
        if constexpr (requires { shared.max_ports(); }) {
            if (shared.max_ports() < cfg.max_ports) {
                SPLITNET_THROW(std::invalid_argument(
                    "learning_bridge: the shared FDB has max_ports " +
                    std::to_string(shared.max_ports()) + ", fewer than the bridge's " +
                    std::to_string(cfg.max_ports)));
            }
        }
    }

    learning_bridge(const learning_bridge&) = delete;
    learning_bridge& operator=(const learning_bridge&) = delete;

    // ---- configuration (the bridge's thread, between bursts) ---------------------------------

    /// Adds or reconfigures a port.
    void configure_port(port_id p, const port_config& c) {
        check_port(p, "configure_port");
        if (c.mtu < 68 || c.mtu > 65535) {
            SPLITNET_THROW(
                std::invalid_argument("learning_bridge::configure_port: port " + std::to_string(p) +
                                      " mtu " + std::to_string(c.mtu) + " is outside 68 .. 65535"));
        }
        if (c.allowed_src.size() > max_allowed_macs) {
            SPLITNET_THROW(std::invalid_argument(
                "learning_bridge::configure_port: port " + std::to_string(p) + " lists " +
                std::to_string(c.allowed_src.size()) + " allowed source MACs; at most " +
                std::to_string(max_allowed_macs)));
        }
        for (const auto& m : c.allowed_src) {
            if (m.is_multicast() || m.is_zero()) {
                SPLITNET_THROW(std::invalid_argument(
                    "learning_bridge::configure_port: port " + std::to_string(p) +
                    ": an allowed source MAC must be unicast and non-zero"));
            }
        }
        if (c.pvid > 4094) {
            SPLITNET_THROW(std::invalid_argument("learning_bridge::configure_port: pvid " +
                                                 std::to_string(c.pvid) +
                                                 " is not a VLAN id (0 = none, 1 .. 4094)"));
        }
        port_state& ps = ports_[p];
        ps.flags = (c.flags & ~configured_flag) | configured_flag;
        ps.mtu = c.mtu;
        ps.pvid = c.pvid;
        ps.n_allowed = static_cast<std::uint8_t>(c.allowed_src.size());
        for (std::size_t i = 0; i < c.allowed_src.size(); ++i) {
            ps.allowed[i] = mac_key::make(c.allowed_src[i]).mac48();
        }
        if (vlan_ && c.pvid != 0) {
            set_vlan(p, c.pvid, true, true);
        }
        if constexpr (requires { fdb_->set_port_limit(p, c.learn_limit); }) {
            if (mode_ == learn_mode::direct && c.learn_limit != 0) {
                fdb_->set_port_limit(p, c.learn_limit);
            }
        }
        rebuild_port_list();
    }

    /// Removes a port; in direct mode also its FDB entries (learned and static).
    void remove_port(port_id p) {
        check_port(p, "remove_port");
        ports_[p] = port_state{};
        if (vlan_) {
            std::fill_n(&member_[std::size_t{p} * vlan_words], vlan_words, 0);
            std::fill_n(&untagged_[std::size_t{p} * vlan_words], vlan_words, 0);
        }
        if (mode_ == learn_mode::direct) {
            if constexpr (requires { fdb_->flush_port(p, true); }) {
                fdb_->flush_port(p, true);
            } else {
                fdb_->flush_port(p);
            }
        }
        rebuild_port_list();
    }

    /// VLAN filtering: makes p a member of vid, egress untagged or tagged.
    void vlan_add(port_id p, std::uint16_t vid, bool untagged) {
        check_vlan(p, vid, "vlan_add");
        set_vlan(p, vid, true, untagged);
    }
    void vlan_remove(port_id p, std::uint16_t vid) {
        check_vlan(p, vid, "vlan_remove");
        set_vlan(p, vid, false, false);
    }
    [[nodiscard]] bool vlan_member(port_id p, std::uint16_t vid) const noexcept {
        return vlan_ && p < max_ports_ && vid < 4096 && member(p, vid);
    }

    /// Installs a static FDB entry (direct mode: this thread is the writer).
    [[nodiscard]] bool add_static(const packet::mac_address& mac, std::uint16_t vid, port_id p) {
        if (mode_ != learn_mode::direct) {
            SPLITNET_THROW(std::invalid_argument(
                "learning_bridge::add_static: only the FDB writer's bridge (learn_mode::direct) "
                "may change the table; call fdb.add_static on the writer's thread"));
        }
        return fdb_->add_static(mac_key::make(mac, vlan_ ? vid : 0), p);
    }

    // ---- data path ---------------------------------------------------------------------------

    /// Forwards up to out.burst_capacity() frames of `in` into `out` (cleared first). now_ns is
    /// the caller's clock, used for FDB stamps only. Returns the number of frames consumed; each
    /// is in out's port bursts or in out.dropped().
    [[nodiscard]] std::size_t forward_burst(std::span<packet::frame> in, port_bursts& out,
                                            std::uint64_t now_ns) noexcept {
        out.clear();
        const std::size_t n = std::min<std::size_t>(in.size(), out.burst_capacity());
        out.n_in_ = static_cast<std::uint32_t>(n);
        stats_.rx_packets += n;
        for (std::size_t base = 0; base < n; base += chunk) {
            packet::frame* const f = in.data() + base;
            const std::size_t m = std::min(chunk, n - base);
            std::size_t learned = 0;
            if constexpr (hashed_fdb_table<Fdb>) {
                if (specialise_) {
                    if (mode_ == learn_mode::direct) {
                        learned =
                            prefetch_
                                ? process_fast<learn_mode::direct, true>(f, m, base, out, now_ns)
                                : process_fast<learn_mode::direct, false>(f, m, base, out, now_ns);
                    } else {
                        learned =
                            prefetch_
                                ? process_fast<learn_mode::deferred, true>(f, m, base, out, now_ns)
                                : process_fast<learn_mode::deferred, false>(f, m, base, out,
                                                                            now_ns);
                    }
                    if (learned == m) {
                        continue;
                    }
                }
            }
            process(f, m, base, out, now_ns, learned);
        }
        // Egress counters once per burst from the burst lengths, not per entry.
        for (const port_id p : out.active_ports()) {
            port_stats_[p].tx_packets += out.count(p);
        }
        return n;
    }

    /// Housekeeping off the packet path (writer): ages at most max_buckets FDB buckets.
    std::size_t age(std::uint64_t now_ns, std::size_t max_buckets) noexcept {
        return fdb_->age(now_ns, max_buckets);
    }

    [[nodiscard]] Fdb& fdb() noexcept { return *fdb_; }
    [[nodiscard]] const Fdb& fdb() const noexcept { return *fdb_; }
    [[nodiscard]] const bridge_stats& stats() const noexcept { return stats_; }
    [[nodiscard]] const bridge_port_stats& port_stats(port_id p) const noexcept {
        return port_stats_[p];
    }
    [[nodiscard]] std::uint16_t max_ports() const noexcept { return max_ports_; }
    [[nodiscard]] bool vlan_filtering() const noexcept { return vlan_; }
    [[nodiscard]] learn_mode mode() const noexcept { return mode_; }
    [[nodiscard]] bool port_configured(port_id p) const noexcept {
        return p < max_ports_ && (ports_[p].flags & configured_flag) != 0;
    }

private:
    static constexpr std::uint32_t configured_flag = 1U << 31;
    static constexpr std::size_t vlan_words = 4096 / 64;

    enum class verdict : std::uint8_t {
        ok = 0,
        runt,
        bad_port,
        invalid_src,
        spoofed,
        link_local,
        vlan_ingress,
    };
    enum class egress_check : std::uint8_t { send, segment, drop };

    struct port_state {
        std::uint32_t flags = 0; ///< port_flag bits | configured_flag
        std::uint32_t mtu = 0;
        std::uint16_t pvid = 0;
        std::uint8_t n_allowed = 0;
        std::array<std::uint64_t, max_allowed_macs> allowed{}; ///< mac48 of the allowed sources
        /// Ports below 64 that may receive unicast from this one (configured, not this port,
        /// not both isolated), for the specialised loop; higher ports take the general check.
        std::uint64_t unicast_to = 0;
    };

    learning_bridge(const bridge_config& cfg, Fdb* f)
        : fdb_(f), max_ports_(cfg.max_ports), vlan_(cfg.vlan_filtering), mode_(cfg.learning),
          specialise_(cfg.specialise && !cfg.vlan_filtering) {
        if (cfg.max_ports == 0 || cfg.max_ports == no_port) {
            SPLITNET_THROW(
                std::invalid_argument("learning_bridge: max_ports must be 1 .. 65534, got " +
                                      std::to_string(cfg.max_ports)));
        }
        ports_.resize(max_ports_);
        port_stats_.resize(max_ports_);
        if (vlan_) {
            member_.assign(std::size_t{max_ports_} * vlan_words, 0);
            untagged_.assign(std::size_t{max_ports_} * vlan_words, 0);
        }
    }

    /// Whether the table is too large to stay in the cache, so that the specialised loop
    /// hashes every key and prefetches its bucket ahead (about 20 instructions a frame) rather
    /// than probing at once. 384 KiB of table (4096 buckets, about 6K MACs) is about the L2 of
    /// the machines measured (bench/bridge/learning_bridge_bench.cpp: 1K MACs fit, 64K do not).
    static bool large_table(const Fdb& f) noexcept {
        if constexpr (requires { f.memory_bytes(); }) {
            return f.memory_bytes() > (std::size_t{384} << 10);
        } else {
            return true;
        }
    }

    void check_port(port_id p, const char* what) const {
        if (p >= max_ports_) {
            SPLITNET_THROW(std::invalid_argument(
                std::string("learning_bridge::") + what + ": port " + std::to_string(p) +
                " is not below max_ports " + std::to_string(max_ports_)));
        }
    }
    void check_vlan(port_id p, std::uint16_t vid, const char* what) const {
        check_port(p, what);
        if (!vlan_) {
            SPLITNET_THROW(std::invalid_argument(std::string("learning_bridge::") + what +
                                                 ": VLAN filtering is off; set "
                                                 "bridge_config::vlan_filtering"));
        }
        if (vid == 0 || vid > 4094) {
            SPLITNET_THROW(std::invalid_argument(std::string("learning_bridge::") + what + ": " +
                                                 std::to_string(vid) +
                                                 " is not a VLAN id (1 .. 4094)"));
        }
    }
    void set_vlan(port_id p, std::uint16_t vid, bool is_member, bool untagged) noexcept {
        const std::size_t w = std::size_t{p} * vlan_words + vid / 64;
        const std::uint64_t bit = std::uint64_t{1} << (vid % 64);
        member_[w] = is_member ? (member_[w] | bit) : (member_[w] & ~bit);
        untagged_[w] = untagged ? (untagged_[w] | bit) : (untagged_[w] & ~bit);
    }
    [[nodiscard]] bool member(port_id p, std::uint16_t vid) const noexcept {
        return ((member_[std::size_t{p} * vlan_words + vid / 64] >> (vid % 64)) & 1U) != 0;
    }
    [[nodiscard]] bool untagged(port_id p, std::uint16_t vid) const noexcept {
        return ((untagged_[std::size_t{p} * vlan_words + vid / 64] >> (vid % 64)) & 1U) != 0;
    }
    void rebuild_port_list() {
        port_list_.clear();
        small_len_ = 0;
        bool first = true;
        for (port_id p = 0; p < max_ports_; ++p) {
            if ((ports_[p].flags & configured_flag) != 0) {
                port_list_.push_back(p);
                const auto len =
                    static_cast<std::uint32_t>(ports_[p].mtu + packet::ethernet_header_len);
                small_len_ = first ? len : std::min(small_len_, len);
                first = false;
            }
        }
        for (const port_id p : port_list_) {
            std::uint64_t mask = 0;
            for (const port_id q : port_list_) {
                const bool both_isolated =
                    (ports_[p].flags & ports_[q].flags & port_flag::isolated) != 0;
                if (q < 64 && q != p && !both_isolated) {
                    mask |= std::uint64_t{1} << q;
                }
            }
            ports_[p].unicast_to = mask;
        }
    }

    [[nodiscard]] static bool gso_accepted(std::uint32_t flags, packet::gso_type t) noexcept {
        switch (t) {
        case packet::gso_type::tcpv4:
            return (flags & port_flag::gso_tcpv4) != 0;
        case packet::gso_type::tcpv6:
            return (flags & port_flag::gso_tcpv6) != 0;
        case packet::gso_type::udp_l4:
            return (flags & port_flag::gso_udp_l4) != 0;
        case packet::gso_type::none:
            break;
        }
        return false;
    }

    /// Whether port ps can send the frame as it is, must resegment it, or cannot send it.
    [[nodiscard]] static egress_check check_egress(const port_state& ps, const packet::frame& f,
                                                   std::uint32_t l2_len) noexcept {
        if (SPLITNET_LIKELY(!f.offload.is_gso())) {
            return f.pkt_len <= ps.mtu + l2_len ? egress_check::send : egress_check::drop;
        }
        // Each segment carries the headers (hdr_len counts L2, as virtio's) and gso_size bytes.
        const std::uint32_t hdr = f.offload.hdr_len > l2_len ? f.offload.hdr_len - l2_len : 0;
        if (hdr + f.offload.gso_size > ps.mtu) {
            return egress_check::drop;
        }
        return gso_accepted(ps.flags, f.offload.gso) ? egress_check::send : egress_check::segment;
    }

    /// Appends frame f to port q's burst; false when the MTU refuses it.
    [[gnu::always_inline]] bool emit(port_id q, packet::frame& f, std::uint32_t l2_len,
                                     std::uint16_t tci, port_bursts& out) noexcept {
        const port_state& qs = ports_[q];
        const egress_check c = check_egress(qs, f, l2_len);
        bridge_port_stats& qst = port_stats_[q];
        if (SPLITNET_UNLIKELY(c == egress_check::drop)) {
            ++stats_.tx_drop_mtu;
            ++qst.tx_drop_mtu;
            return false;
        }
        egress& e = out.push(q);
        e.frame = &f;
        if (vlan_) {
            const std::uint16_t vid = tci & mac_key::vid_mask;
            e.tag = untagged(q, vid) ? egress_tag::untagged : egress_tag::tagged;
            e.vlan_tci = tci;
        } else {
            e.tag = egress_tag::as_is;
            e.vlan_tci = 0;
        }
        e.segment = c == egress_check::segment;
        if (SPLITNET_UNLIKELY(e.segment)) {
            ++out.segments_[q];
            ++stats_.tx_segment;
            ++qst.tx_segment;
        }
        return true;
    }

    void drop_rx(packet::frame& f, verdict v, port_bursts& out) noexcept {
        out.dropped_[out.n_dropped_++] = &f;
        switch (v) {
        case verdict::runt:
            ++stats_.rx_drop_runt;
            break;
        case verdict::bad_port:
            ++stats_.rx_drop_bad_port;
            return; // no port to count against
        case verdict::invalid_src:
            ++stats_.rx_drop_invalid_src;
            break;
        case verdict::spoofed:
            ++stats_.rx_drop_spoofed;
            ++port_stats_[f.port].rx_spoofed;
            break;
        case verdict::link_local:
            ++stats_.rx_drop_link_local;
            break;
        case verdict::vlan_ingress:
            ++stats_.rx_drop_vlan;
            break;
        case verdict::ok:
            break;
        }
        ++port_stats_[f.port].rx_dropped;
    }

    /// The general loop over one chunk. Sources of frames before `learned` were already learned
    /// by the specialised loop, which gave up at that frame.
    void process(packet::frame* f, std::size_t m, std::size_t first, port_bursts& out,
                 std::uint64_t now_ns, std::size_t learned) noexcept {
        // Scratch lives in the object: arrays of types with member initializers on the stack
        // would be re-initialized on every call (measured: 12 instructions per packet).
        auto& dst48 = scratch_.dst48;
        auto& tci = scratch_.tci;
        auto& l2len = scratch_.l2len;
        auto& vd = scratch_.vd;
        auto& lreq = scratch_.lreq;
        auto& lst = scratch_.lst;
        auto& lkey = scratch_.lkey;
        auto& lres = scratch_.lres;
        auto& lidx = scratch_.lidx;
        port_state* const ports = ports_.data();
        bridge_port_stats* const pstats = port_stats_.data();
        std::size_t n_learn = 0;
        std::size_t n_lookup = 0;
        // The last source learned, to skip a repeat by the next frame that learns: the one
        // before `learned` when the specialised loop learned the sources up to there (it learns
        // every frame's source, without VLAN filtering).
        learn_request last_learned{};
        if (learned != 0) {
            last_learned = {load_key(f[learned - 1].data + 6, 0), f[learned - 1].port};
        }
        std::uint64_t last_dst = 0;

        // 1. classify, collect sources to learn and destinations to look up.
        for (std::size_t i = 0; i < m; ++i) {
            if (i + 4 < m) {
                SPLITNET_PREFETCH(f[i + 4].data);
            }
            packet::frame& fr = f[i];
            const port_id in = fr.port;
            vd[i] = verdict::ok;
            if (SPLITNET_UNLIKELY(in >= max_ports_ || (ports[in].flags & configured_flag) == 0)) {
                vd[i] = verdict::bad_port;
                continue;
            }
            const port_state& ps = ports[in];
            bridge_port_stats& pst = pstats[in];
            ++pst.rx_packets;
            pst.rx_bytes += fr.pkt_len;
            if (SPLITNET_UNLIKELY(fr.data_len < packet::ethernet_header_len)) {
                vd[i] = verdict::runt;
                continue;
            }
            std::uint64_t dst = 0;
            std::uint64_t src = 0;
            load_macs(fr.data, dst, src);
            if (SPLITNET_UNLIKELY(mac48::is_multicast(src) || src == 0)) {
                vd[i] = verdict::invalid_src;
                continue;
            }
            if (ps.n_allowed != 0 && !allowed(ps, src)) {
                vd[i] = verdict::spoofed;
                continue;
            }
            const bool tagged_bytes =
                fr.data[12] == 0x81 && fr.data[13] == 0x00 && fr.data_len >= 18;
            l2len[i] = static_cast<std::uint8_t>(tagged_bytes ? 18 : 14);
            std::uint16_t t = 0;
            if (vlan_) {
                if ((fr.flags & packet::frame_flag::vlan_stripped) != 0) {
                    t = fr.vlan_tci;
                } else if (tagged_bytes) {
                    t = static_cast<std::uint16_t>((fr.data[14] << 8) | fr.data[15]);
                }
                if ((t & mac_key::vid_mask) == 0) { // untagged or priority-tagged: the pvid
                    t = static_cast<std::uint16_t>(t | ps.pvid);
                }
                const std::uint16_t vid = t & mac_key::vid_mask;
                if (vid == 0 || vid == mac_key::vid_mask || !member(in, vid)) {
                    vd[i] = verdict::vlan_ingress;
                    continue;
                }
            }
            tci[i] = t;
            if (SPLITNET_UNLIKELY(mac48::is_multicast(dst) && mac48::is_link_local(dst))) {
                vd[i] = verdict::link_local;
                continue;
            }
            dst48[i] = dst;
            const std::uint16_t vid = t & mac_key::vid_mask;
            if ((ps.flags & port_flag::learning) != 0 && i >= learned) {
                const mac_key sk = mac_key::from_mac48(src, vid);
                if (sk != last_learned.key || in != last_learned.port) {
                    lreq[n_learn].key = sk;
                    lreq[n_learn].port = in;
                    ++n_learn;
                    last_learned = {sk, in};
                }
            }
            if (!mac48::is_multicast(dst)) {
                const mac_key dk = mac_key::from_mac48(dst, vid);
                if (n_lookup == 0 || dk.value != last_dst) {
                    lkey[n_lookup++] = dk;
                    last_dst = dk.value;
                }
                lidx[i] = static_cast<std::uint8_t>(n_lookup - 1);
            }
        }

        // 2. learn sources.
        if (n_learn != 0) {
            learn_sources({lreq.data(), n_learn}, {lst.data(), n_learn}, out, now_ns);
        }
        // 3. look up destinations.
        if (n_lookup != 0) {
            (void)fdb_->lookup_burst({lkey.data(), n_lookup}, {lres.data(), n_lookup});
        }

        // 4. egress.
        for (std::size_t i = 0; i < m; ++i) {
            packet::frame& fr = f[i];
            std::uint16_t& refs = out.refs_[first + i];
            if (SPLITNET_UNLIKELY(vd[i] != verdict::ok)) {
                refs = 0;
                drop_rx(fr, vd[i], out);
                continue;
            }
            const port_id in = fr.port;
            const std::uint64_t dst = dst48[i];
            std::uint32_t flood_flag = port_flag::flood_unknown;
            if (SPLITNET_LIKELY(!mac48::is_multicast(dst))) {
                const fdb_result r = lres[lidx[i]];
                if (SPLITNET_LIKELY(r.port < max_ports_ &&
                                    (ports[r.port].flags & configured_flag) != 0)) {
                    const bool sent = unicast(fr, r.port, l2len[i], tci[i], out);
                    refs = sent ? std::uint16_t{1} : std::uint16_t{0};
                    if (!sent) { // counted under the reason unicast() found
                        out.dropped_[out.n_dropped_++] = &fr;
                    }
                    continue;
                }
                ++stats_.rx_unknown_unicast;
            } else if (dst == mac48::broadcast) {
                ++stats_.rx_broadcast;
                flood_flag = port_flag::flood_broadcast;
            } else {
                ++stats_.rx_multicast;
                flood_flag = port_flag::flood_multicast;
            }
            refs = flood(fr, in, flood_flag, l2len[i], tci[i], out);
            if (refs == 0) {
                out.dropped_[out.n_dropped_++] = &fr;
                ++stats_.tx_drop_no_egress;
            }
        }
    }

    // ---- the specialised loop ----------------------------------------------------------------
    // For a bridge without VLAN filtering over a hashed_fdb_table (fdb<> is one); the general
    // loop above stays for everything else and is what this loop must equal, output for output
    // and counter for counter (tests/bridge/learning_bridge_test.cpp, SpecialisedLoop; the
    // fuzz target runs both). Per frame, in one pass:
    //  - classify: the ingress port is checked once per run of frames from the same port, both
    //    MACs come from two overlapping loads, anti-spoofing as in the general loop;
    //  - learn the source and look up the destination, each key hashed once (get_locator), both
    //    probes as the writer's in direct mode (no seqlock); a repeat of the previous frame's
    //    source or destination (a train) costs a compare;
    //  - a plain unicast (destination allowed by port_state::unicast_to, a frame every port's
    //    MTU takes as it is: small_len_, no aggregate) gets its egress entry written in place
    //    (port_bursts::writer): a bit test and two stores. The first frame that is not one
    //    stops that; the rest of the chunk is emitted after the pass (emit_rest), plain frames
    //    the same way, the others by egress_other with the general loop's rules.
    // What keeps it equal to the general loop:
    //  - the general loop learns every source of a chunk before it looks up any destination.
    //    Only a source learned or moved changes what a lookup finds (a known source changes
    //    nothing), so when one does after the first frame, the entries written are taken back
    //    and every destination looked up again before emitting (relookup);
    //  - a frame the pass cannot take (any drop, a port with learning off) hands the chunk to
    //    the general loop: the entries written are taken back (discard), and the general loop
    //    does not learn again the sources the pass learned (nor, deduplicating, the next one).
    //    The bridge's counters are only written once the pass has taken every frame;
    //  - counters are summed per chunk (rx, tx_unicast) or per burst (tx_packets), and the FDB
    //    records the burst's time (writer_tick) only if a source was learned, as learn_burst.
    // Over a table too large for the cache (large_table) a first loop hashes every key and
    // prefetches its bucket, and the pass uses those homes. The frame headers are not
    // prefetched: the GRO stage before the bridge has just read them.
    // Measured with callgrind (bench/bridge/callgrind.sh, bursts of 32, 8 ports, 1K MACs):
    // 117 instructions a frame on random destinations (374 before), 59 on trains (204); the
    // two key hashes are 26 of them (key_hash.hpp says why not a cheaper one).

    /// Runs the chunk; returns m, or the first frame it could not take (the general loop then
    /// runs the chunk, without learning the sources before that frame again).
    template <learn_mode Mode, bool Prefetched>
    std::size_t process_fast(packet::frame* f, std::size_t m, std::size_t first, port_bursts& out,
                             std::uint64_t now_ns) noexcept {
        if constexpr (Prefetched) {
            prefetch_homes(f, m);
        }
        Fdb& fdb = *fdb_;
        const auto locate = fdb.get_locator();
        const std::uint16_t tick = fdb.tick_of(now_ns);
        const port_state* const ports = ports_.data();
        const std::uint16_t max_ports = max_ports_;
        const std::uint32_t small_len = small_len_;
        port_id* const to = scratch_.to.data();
        std::uint16_t* const refs = &out.refs_[first];
        // Allowed: cur's unicast_to until a frame is not emitted; undoable back to here.
        port_bursts::writer w(out, 0, f, f + m);
        port_id cur = no_port;    // ingress port of the current run of frames
        bool spoof_check = false; // cur has anti-spoofing
        bool mixed = false;       // frames from more than one port
        std::size_t emitted = m;  // frames [0, emitted) have their entries written
        std::uint64_t slow = 0;   // bit i: frame i is not a plain unicast
        std::uint64_t bytes = 0;
        std::uint64_t prev_src = 0; // consecutive repeats: one learn, one lookup
        std::uint64_t prev_dst = 0;
        std::size_t r = no_port; // the destination's port (a size_t: it indexes)
        std::size_t changed = 0; // 1 + the last frame whose source changed the table
        constexpr std::uint64_t group_bits = 1U | (std::uint64_t{1} << 48); // dst, src I/G bits
        const auto stop_emitting = [&](std::size_t i) {
            if (emitted == m) {
                emitted = i;
            }
            w.allow(0);
        };
        packet::frame* const end = f + m;
        for (packet::frame* p = f; p != end; ++p) {
            // The frame's index: only the rare paths need it, so the loop counts by pointer.
            const auto index = [&] {
                return static_cast<std::size_t>(p - f);
            };
            packet::frame& fr = *p;
            if (SPLITNET_UNLIKELY(fr.port != cur)) {
                const port_id in = fr.port;
                if (in >= max_ports || (ports[in].flags & fast_port_mask) != fast_port_mask) {
                    return give_up<Mode>(w, index(), now_ns);
                }
                mixed = cur != no_port;
                w.allow(emitted == m ? ports[in].unicast_to : 0);
                cur = in;
                spoof_check = ports[in].n_allowed != 0;
                prev_src = 0; // a source is learned again on another port
            }
            if (SPLITNET_UNLIKELY(fr.data_len < packet::ethernet_header_len)) {
                return give_up<Mode>(w, index(), now_ns);
            }
            bytes += fr.pkt_len;
            if (SPLITNET_UNLIKELY(fr.pkt_len > small_len || fr.offload.is_gso())) {
                // It needs the egress check: emitted after the pass.
                slow |= std::uint64_t{1} << index();
                stop_emitting(index());
            }
            // Both MACs with two overlapping loads (the header has 14 bytes): bytes 0..7 hold
            // dst and the first byte of src, bytes 6..13 src.
            const std::uint64_t w0 = detail::load_le<std::uint64_t>(fr.data);
            const std::uint64_t dst = w0 & mac_key::mac_mask;
            const std::uint64_t src =
                detail::load_le<std::uint64_t>(fr.data + 6) & mac_key::mac_mask;
            if (SPLITNET_UNLIKELY((w0 & group_bits) != 0)) {
                if (mac48::is_multicast(src) || mac48::is_link_local(dst)) {
                    return give_up<Mode>(w, index(), now_ns);
                }
                slow |= std::uint64_t{1} << index(); // a flood: emitted after the pass
                stop_emitting(index());
                if (mac48::is_multicast(dst)) { // not looked up: the dedupe below skips it
                    prev_dst = dst | mac_key::valid_bit;
                    r = no_port;
                }
            }
            if (SPLITNET_UNLIKELY(src == 0 || (spoof_check && !allowed(ports[cur], src)))) {
                return give_up<Mode>(w, index(), now_ns);
            }
            const mac_key sk{src | mac_key::valid_bit}; // VLAN 0: no filtering
            if (sk.value != prev_src) {
                prev_src = sk.value;
                const auto home = Prefetched ? homes_.src_home[index()] : locate(sk);
                if constexpr (Mode == learn_mode::direct) {
                    const learn_status s = fdb.learn_at(sk, home, cur, tick);
                    if (SPLITNET_UNLIKELY(s != learn_status::known)) {
                        count_learn(s);
                        if (s == learn_status::learned || s == learn_status::moved) {
                            changed = index() + 1;
                        }
                    }
                } else {
                    if (SPLITNET_UNLIKELY(fdb.refresh_at(sk, home, cur, tick) ==
                                          learn_status::needs_writer)) {
                        defer_learn(sk, cur, out);
                    }
                }
            }
            const mac_key dk{dst | mac_key::valid_bit};
            if (dk.value != prev_dst) {
                prev_dst = dk.value;
                const auto home = Prefetched ? homes_.dst_home[index()] : locate(dk);
                r = Mode == learn_mode::direct ? fdb.writer_lookup_at(dk, home).port
                                               : fdb.lookup_at(dk, home).port;
            }
            if (SPLITNET_UNLIKELY(!w.try_push(r, fr))) {
                stop_emitting(index()); // this frame and the rest are emitted after the pass
                to[index()] = static_cast<port_id>(r);
            }
        }

        // Committed: the chunk is this loop's.
        if constexpr (Mode == learn_mode::direct) {
            (void)fdb.writer_tick(now_ns);        // as learn_burst: the writer was given this time
            if (SPLITNET_UNLIKELY(changed > 1)) { // destinations [0, changed) may be stale
                w.discard();
                emitted = 0;
                relookup(f, m);
            }
        }
        fill_ones(refs, emitted);
        bridge_port_stats* const pstats = port_stats_.data();
        if (SPLITNET_LIKELY(!mixed)) {
            pstats[cur].rx_packets += m;
            pstats[cur].rx_bytes += bytes;
        } else {
            for (std::size_t i = 0; i < m; ++i) {
                ++pstats[f[i].port].rx_packets;
                pstats[f[i].port].rx_bytes += f[i].pkt_len;
            }
        }
        std::size_t others = 0;
        if (SPLITNET_UNLIKELY(emitted != m)) {
            others = emit_rest(f, emitted, m, slow, refs, out);
        }
        stats_.tx_unicast += m - others;
        return m;
    }

    /// For a table too large for the cache: the homes of every frame's keys, their buckets
    /// prefetched, so that the pass's probes find them loaded (DPDK's bulk lookup does the
    /// same). A runt's homes are left unset: the pass stops before it uses them.
    [[gnu::noinline]] void prefetch_homes(const packet::frame* f, std::size_t m) noexcept {
        const auto locate = fdb_->get_locator();
        for (std::size_t i = 0; i < m; ++i) {
            if (SPLITNET_UNLIKELY(f[i].data_len < packet::ethernet_header_len)) {
                continue;
            }
            const std::uint64_t w0 = detail::load_le<std::uint64_t>(f[i].data);
            const std::uint64_t w1 = detail::load_le<std::uint64_t>(f[i].data + 6);
            homes_.src_home[i] = locate(mac_key{(w1 & mac_key::mac_mask) | mac_key::valid_bit});
            fdb_->prefetch(homes_.src_home[i]);
            homes_.dst_home[i] = locate(mac_key{(w0 & mac_key::mac_mask) | mac_key::valid_bit});
            fdb_->prefetch(homes_.dst_home[i]);
        }
    }

    /// The pass stops at frame i: its entries are undone, and (direct mode) the FDB records
    /// the burst's time if the pass learned a source, as learn_burst would have.
    template <learn_mode Mode>
    [[gnu::noinline]] std::size_t give_up(port_bursts::writer& w, std::size_t i,
                                          std::uint64_t now_ns) noexcept {
        w.discard();
        if constexpr (Mode == learn_mode::direct) {
            if (i != 0) {
                (void)fdb_->writer_tick(now_ns);
            }
        }
        return i;
    }

    /// refs[0, n) = 1, four at a time.
    static void fill_ones(std::uint16_t* refs, std::size_t n) noexcept {
        constexpr std::uint64_t ones = 0x0001000100010001ULL;
        std::size_t i = 0;
        for (; i + 4 <= n; i += 4) {
            std::memcpy(refs + i, &ones, sizeof ones);
        }
        for (; i < n; ++i) {
            refs[i] = 1;
        }
    }

    /// Looks up the destinations of frames [0, n) again into scratch_.to (the pass learned a
    /// source after some of them, and stored only those of the frames it did not emit).
    void relookup(const packet::frame* f, std::size_t n) noexcept {
        const auto locate = fdb_->get_locator();
        for (std::size_t i = 0; i < n; ++i) {
            const mac_key dk = load_key(f[i].data, 0);
            scratch_.to[i] = mac48::is_multicast(dk.mac48())
                                 ? no_port
                                 : fdb_->writer_lookup_at(dk, locate(dk)).port;
        }
    }

    /// Emits frames [from, m) of a chunk the pass took (scratch_.to: their destination ports;
    /// slow: the frames that are not plain unicast). Returns how many went out of line.
    std::size_t emit_rest(packet::frame* f, std::size_t from, std::size_t m, std::uint64_t slow,
                          std::uint16_t* refs, port_bursts& out) noexcept {
        const port_id* const to = scratch_.to.data();
        std::size_t others = 0;
        port_bursts::writer w(out, 0);
        for (std::size_t i = from; i < m; ++i) {
            const port_id q = to[i];
            if (((slow >> i) & 1U) == 0) {
                w.allow(ports_[f[i].port].unicast_to);
                if (w.try_push(q, f[i])) {
                    refs[i] = 1;
                    continue;
                }
            }
            w.keep();
            ++others;
            refs[i] = egress_other(f[i], i, out);
        }
        return others;
    }

    /// The specialised loop's frames other than plain unicast: a unicast that needs the egress
    /// check or is refused, and floods (scratch_.to[i] is the destination's port). Returns the
    /// frame's references (0: dropped, and counted).
    [[gnu::noinline]] std::uint16_t egress_other(packet::frame& fr, std::size_t i,
                                                 port_bursts& out) noexcept {
        const port_id in = fr.port;
        const std::uint64_t dst = detail::load_le<std::uint64_t>(fr.data) & mac_key::mac_mask;
        const std::uint32_t l2 =
            fr.data[12] == 0x81 && fr.data[13] == 0x00 && fr.data_len >= 18 ? 18U : 14U;
        const port_id q = scratch_.to[i];
        std::uint32_t flood_flag = port_flag::flood_unknown;
        if (!mac48::is_multicast(dst)) {
            if (q < max_ports_ && (ports_[q].flags & configured_flag) != 0) {
                if (unicast(fr, q, l2, 0, out)) {
                    return 1;
                }
                out.dropped_[out.n_dropped_++] = &fr;
                return 0;
            }
            ++stats_.rx_unknown_unicast;
        } else if (dst == mac48::broadcast) {
            ++stats_.rx_broadcast;
            flood_flag = port_flag::flood_broadcast;
        } else {
            ++stats_.rx_multicast;
            flood_flag = port_flag::flood_multicast;
        }
        const std::uint16_t copies = flood(fr, in, flood_flag, l2, 0, out);
        if (copies == 0) {
            out.dropped_[out.n_dropped_++] = &fr;
            ++stats_.tx_drop_no_egress;
        }
        return copies;
    }

    void defer_learn(mac_key key, port_id in, port_bursts& out) noexcept {
        learn_request& r = out.learn_[out.n_learn_++];
        r.key = key;
        r.port = in;
        ++stats_.learn_deferred;
    }

    void count_learn(learn_status s) noexcept {
        switch (s) {
        case learn_status::learned:
            ++stats_.learned;
            break;
        case learn_status::moved:
            ++stats_.moved;
            break;
        case learn_status::refused_static:
        case learn_status::refused_full:
        case learn_status::refused_port:
            ++stats_.learn_refused;
            break;
        case learn_status::known:
        case learn_status::needs_writer:
            break;
        }
    }

    [[nodiscard]] static bool allowed(const port_state& ps, std::uint64_t src) noexcept {
        for (std::uint8_t k = 0; k < ps.n_allowed; ++k) {
            if (ps.allowed[k] == src) {
                return true;
            }
        }
        return false;
    }

    void learn_sources(std::span<const learn_request> req, std::span<learn_status> st,
                       port_bursts& out, std::uint64_t now_ns) noexcept {
        if (mode_ == learn_mode::direct) {
            // Every status counts: a burst of known sources may still hold a refused one.
            (void)fdb_->learn_burst(req, now_ns, st);
            for (const learn_status s : st) {
                count_learn(s);
            }
            return;
        }
        if (fdb_->refresh_burst(req, now_ns, st) == 0) {
            return;
        }
        for (std::size_t i = 0; i < req.size(); ++i) {
            if (st[i] == learn_status::needs_writer) {
                out.learn_[out.n_learn_++] = req[i];
                ++stats_.learn_deferred;
            }
        }
    }

    [[gnu::always_inline]] bool unicast(packet::frame& fr, port_id to, std::uint32_t l2_len,
                                        std::uint16_t tci, port_bursts& out) noexcept {
        const port_id in = fr.port;
        if (SPLITNET_UNLIKELY(to == in)) {
            ++stats_.tx_drop_same_port;
            return false;
        }
        const std::uint32_t both = ports_[in].flags & ports_[to].flags;
        if (SPLITNET_UNLIKELY((both & port_flag::isolated) != 0)) {
            ++stats_.tx_drop_isolated;
            return false;
        }
        if (vlan_ && !member(to, tci & mac_key::vid_mask)) {
            ++stats_.tx_drop_vlan;
            return false;
        }
        if (!emit(to, fr, l2_len, tci, out)) {
            return false;
        }
        ++stats_.tx_unicast;
        return true;
    }

    std::uint16_t flood(packet::frame& fr, port_id in, std::uint32_t flood_flag,
                        std::uint32_t l2_len, std::uint16_t tci, port_bursts& out) noexcept {
        const bool iso_in = (ports_[in].flags & port_flag::isolated) != 0;
        const std::uint16_t vid = tci & mac_key::vid_mask;
        std::uint16_t copies = 0;
        for (const port_id q : port_list_) {
            const std::uint32_t qf = ports_[q].flags;
            if (q == in || (qf & flood_flag) == 0 || (iso_in && (qf & port_flag::isolated) != 0) ||
                (vlan_ && !member(q, vid))) {
                continue;
            }
            if (emit(q, fr, l2_len, tci, out)) {
                ++copies;
                ++port_stats_[q].tx_flooded;
            }
        }
        if (copies != 0) {
            ++stats_.tx_flooded;
            stats_.tx_flood_copies += copies;
        }
        return copies;
    }

    struct scratch {
        std::array<std::uint64_t, chunk> dst48{};
        std::array<std::uint16_t, chunk> tci{};
        std::array<std::uint8_t, chunk> l2len{};
        std::array<verdict, chunk> vd{};
        std::array<learn_request, chunk> lreq{};
        std::array<learn_status, chunk> lst{};
        std::array<mac_key, chunk> lkey{};
        std::array<fdb_result, chunk> lres{};
        std::array<std::uint8_t, chunk> lidx{};
        std::array<port_id, chunk> to{}; ///< specialised loop: destination port per frame
    };

    /// Port flags the specialised loop needs on every ingress port.
    static constexpr std::uint32_t fast_port_mask = configured_flag | port_flag::learning;

    std::unique_ptr<Fdb> owned_;
    Fdb* fdb_;
    scratch scratch_;
    [[no_unique_address]] detail::fast_homes<Fdb, chunk> homes_;
    std::uint16_t max_ports_;
    bool vlan_;
    learn_mode mode_;
    bool specialise_;
    bool prefetch_ = true; ///< the specialised loop prefetches buckets (large_table)
    /// Smallest mtu + Ethernet header over the configured ports: a frame no longer than this
    /// (and not an aggregate) passes every port's egress check.
    std::uint32_t small_len_ = 0;
    std::vector<port_state> ports_;
    std::vector<port_id> port_list_;      ///< configured ports, ascending: the flood candidates
    std::vector<std::uint64_t> member_;   ///< VLAN membership bitmaps, vlan_words per port
    std::vector<std::uint64_t> untagged_; ///< egress-untagged bitmaps, vlan_words per port
    bridge_stats stats_;
    std::vector<bridge_port_stats> port_stats_;
};
static_assert(frame_forwarder<learning_bridge<>>);

} // namespace splitnet::bridge
