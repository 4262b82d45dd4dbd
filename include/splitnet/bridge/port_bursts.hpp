// SPDX-License-Identifier: MIT
// splitnet/bridge/port_bursts.hpp: what learning_bridge::forward_burst produces: one burst of
// egress entries per destination port, the frames it dropped, how many egress entries each
// input frame got, and (deferred learning) the sources to hand to the FDB writer. Caller-owned,
// capacity fixed at construction, cleared by each forward_burst; nothing is allocated after.
// Anchors: DPDK l2fwd's per-port rte_eth_tx_buffer, VPP's l2flood (one buffer, a clone per
// egress interface, the last interface gets the original).
//
// Ownership (the rule the pipeline follows). The bridge never copies packet bytes and never
// frees. Every input frame i ends in exactly one of:
//  - one or more port bursts: references()[i] = number of egress entries that point at it
//    (1 for a unicast, the fan-out for a flood);
//  - dropped(): references()[i] = 0; the caller returns its buffers (buffer_pool::free_burst).
// The caller keeps ownership of the frames (the input span must outlive the bursts) and frees
// each one after its references()[i] uses are done: for example copy to all ports but the last
// and hand the buffer itself to the last one (VPP's clone-then-original), or start a reference
// count at references()[i]. A frame that appears in several bursts is shared: egress must treat
// its bytes as read-only (VLAN tag changes and GSO write new headers elsewhere or on a copy);
// Xen netback grant-copies into the guest's buffers anyway.
//
// Egress entries keep the input order per port, including aggregates marked for resegmentation
// (a separate "to segment" burst would reorder a TCP flow's aggregate against its next frames).
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include <splitnet/bridge/fdb.hpp>
#include <splitnet/bridge/mac_key.hpp>
#include <splitnet/config.hpp>
#include <splitnet/packet/frame.hpp>

namespace splitnet::bridge {

template <fdb_table Fdb>
class learning_bridge;

/// VLAN action on egress (802.1Q filtering on): what the port transmits.
enum class egress_tag : std::uint8_t {
    as_is = 0, ///< VLAN filtering off: the frame as received (its tag, in bytes or metadata)
    untagged,  ///< without a VLAN tag: remove one from the bytes, ignore frame::vlan_tci
    tagged,    ///< with the tag egress::vlan_tci: insert it, or rewrite the one in the bytes
};

/// One frame for one port, written in place by the bridge.
struct egress {
    packet::frame* frame = nullptr;
    std::uint16_t vlan_tci = 0; ///< the TCI to send with egress_tag::tagged (PCP kept)
    egress_tag tag = egress_tag::as_is;
    /// LRO-aware egress: a GSO aggregate this port cannot take as one frame (no offload flag for
    /// its gso_type): run software GSO (offload/) on it for this port only, then send.
    bool segment = false;
};
static_assert(sizeof(egress) == 16);

class port_bursts {
public:
    /// max_ports: port ids the bridge may emit (its bridge_config::max_ports); burst_capacity:
    /// most frames one forward_burst call consumes.
    port_bursts(std::uint16_t max_ports, std::uint32_t burst_capacity)
        : max_ports_(max_ports), cap_(burst_capacity) {
        if (max_ports == 0 || max_ports == no_port || burst_capacity == 0 ||
            burst_capacity > 65535) {
            SPLITNET_THROW(std::invalid_argument(
                "port_bursts: need 1 .. 65534 ports and a burst capacity of 1 .. 65535, got " +
                std::to_string(max_ports) + " ports and " + std::to_string(burst_capacity)));
        }
        entries_ = std::make_unique<egress[]>(std::size_t{max_ports} * cap_);
        base_ = std::make_unique<egress*[]>(max_ports);
        next_ = std::make_unique<egress*[]>(max_ports);
        for (port_id p = 0; p < max_ports; ++p) {
            base_[p] = &entries_[std::size_t{p} * cap_];
            next_[p] = base_[p];
        }
        segments_ = std::make_unique<std::uint32_t[]>(max_ports);
        active_ = std::make_unique<port_id[]>(max_ports);
        dropped_ = std::make_unique<packet::frame*[]>(cap_);
        refs_ = std::make_unique<std::uint16_t[]>(cap_);
        learn_ = std::make_unique<learn_request[]>(cap_);
    }

    [[nodiscard]] std::uint16_t max_ports() const noexcept { return max_ports_; }
    [[nodiscard]] std::uint32_t burst_capacity() const noexcept { return cap_; }

    /// Ports with at least one egress entry, in the order they first received one.
    [[nodiscard]] std::span<const port_id> active_ports() const noexcept {
        return {active_.get(), n_active_};
    }
    /// The burst for port p, in input order.
    [[nodiscard]] std::span<const egress> port(port_id p) const noexcept {
        return p < max_ports_ ? std::span<const egress>{base(p), next_[p]}
                              : std::span<const egress>{};
    }
    /// Entries of port p's burst marked egress::segment.
    [[nodiscard]] std::uint32_t segment_count(port_id p) const noexcept {
        return p < max_ports_ ? segments_[p] : 0;
    }
    /// Frames not forwarded anywhere; the caller frees them.
    [[nodiscard]] std::span<packet::frame* const> dropped() const noexcept {
        return {dropped_.get(), n_dropped_};
    }
    /// For input frame i of the last forward_burst: egress entries pointing at it (0 = dropped).
    [[nodiscard]] std::span<const std::uint16_t> references() const noexcept {
        return {refs_.get(), n_in_};
    }
    /// learn_mode::deferred: sources this worker saw that the FDB writer must learn.
    [[nodiscard]] std::span<const learn_request> learn_requests() const noexcept {
        return {learn_.get(), n_learn_};
    }

    /// Empties every burst; O(active ports). forward_burst calls it first.
    void clear() noexcept {
        for (std::uint32_t i = 0; i < n_active_; ++i) {
            next_[active_[i]] = base(active_[i]);
            segments_[active_[i]] = 0;
        }
        n_active_ = 0;
        n_dropped_ = 0;
        n_in_ = 0;
        n_learn_ = 0;
    }

private:
    template <fdb_table Fdb>
    friend class learning_bridge;

    [[nodiscard]] egress* base(port_id p) const noexcept { return base_[p]; }
    /// Entries in port p's burst.
    [[nodiscard]] std::uint32_t count(port_id p) const noexcept {
        return static_cast<std::uint32_t>(next_[p] - base(p));
    }

    /// The next entry of port p's burst, to be written in place. The bridge emits each input
    /// frame at most once per port, so a burst never exceeds the capacity.
    [[nodiscard]] egress& push(port_id p) noexcept {
        egress* const e = next_[p];
        if (e == base(p)) {
            active_[n_active_++] = p;
        }
        next_[p] = e + 1;
        return *e;
    }

    /// push() for the specialised loop: plain entries (as_is, no segmentation) to the ports
    /// allowed (a mask of ports below 64), undoable. A port's first push makes it ready (and
    /// active if its burst is empty); a push to a ready port is a bit test, two stores and the
    /// cursor update. discard() takes back the entries pushed since the undo point (the
    /// writer's creation or the last keep()): they are the ones at the end of each port's
    /// burst that point into the writer's input frames [lo, hi), which no earlier entry of the
    /// burst does. Nothing else may push between a push and keep() or discard().
    class writer {
    public:
        writer(port_bursts& b, std::uint64_t allowed, const packet::frame* lo = nullptr,
               const packet::frame* hi = nullptr) noexcept
            : b_(b), next_(b.next_.get()), base_(b.base_.get()), lo_(lo), hi_(hi),
              n_active_(b.n_active_), allowed_(allowed), ever_(allowed) {}
        writer(const writer&) = delete;
        writer& operator=(const writer&) = delete;
        ~writer() = default;

        /// Appends f to port p's burst if p is allowed; false otherwise.
        [[nodiscard]] bool try_push(std::size_t p, packet::frame& f) noexcept {
            if (SPLITNET_UNLIKELY(p >= 64 || ((ready_ >> p) & 1U) == 0)) {
                if (p >= 64 || ((allowed_ >> p) & 1U) == 0) {
                    return false;
                }
                ready_ |= std::uint64_t{1} << p;
                if (next_[p] == base_[p]) {
                    b_.active_[b_.n_active_++] = static_cast<port_id>(p);
                }
            }
            egress* const e = next_[p];
            e->frame = &f;
            e->vlan_tci = 0;
            e->tag = egress_tag::as_is;
            e->segment = false;
            next_[p] = e + 1;
            return true;
        }
        /// Changes the ports allowed (0: none).
        void allow(std::uint64_t allowed) noexcept {
            allowed_ = allowed;
            ever_ |= allowed;
            ready_ = 0; // a port's next push checks again whether its burst is empty
        }
        /// Keeps the pushes so far (later pushes start a new undo point).
        void keep() noexcept {
            ready_ = 0;
            ever_ = allowed_;
            n_active_ = b_.n_active_;
        }
        /// Takes back the pushes since the undo point.
        void discard() noexcept {
            for (std::uint64_t t = ever_; t != 0; t &= t - 1) {
                const auto p = static_cast<std::size_t>(std::countr_zero(t));
                egress* e = next_[p];
                while (e != base_[p] && !std::less<>{}(e[-1].frame, lo_) &&
                       std::less<>{}(e[-1].frame, hi_)) {
                    --e;
                }
                next_[p] = e;
            }
            b_.n_active_ = n_active_;
            ready_ = 0;
        }

    private:
        port_bursts& b_;
        egress** next_;
        egress* const* base_;
        const packet::frame* lo_;
        const packet::frame* hi_;
        std::uint32_t n_active_;  ///< the active list's length at the undo point
        std::uint64_t allowed_;   ///< ports a push may go to
        std::uint64_t ever_;      ///< ports allowed since the undo point (discard's scan)
        std::uint64_t ready_ = 0; ///< allowed ports known to be active
    };

    std::uint16_t max_ports_;
    std::uint32_t cap_;
    std::unique_ptr<egress[]> entries_;
    std::unique_ptr<egress*[]> base_; ///< first entry of each port's burst
    std::unique_ptr<egress*[]> next_; ///< write cursor per port: its burst is [base(p), next_[p])
    std::unique_ptr<std::uint32_t[]> segments_;
    std::unique_ptr<port_id[]> active_;
    std::unique_ptr<packet::frame*[]> dropped_;
    std::unique_ptr<std::uint16_t[]> refs_;
    std::unique_ptr<learn_request[]> learn_;
    std::uint32_t n_active_ = 0;
    std::uint32_t n_dropped_ = 0;
    std::uint32_t n_in_ = 0;
    std::uint32_t n_learn_ = 0;
};

} // namespace splitnet::bridge
