// SPDX-License-Identifier: MIT
// splitnet/pipeline/report.hpp: one report of a driver domain's counters, gathered from every
// component (NIC port, GRO, bridge, GSO, scheduler, each guest's back-end queues, moderation and
// grant copies), as text for a person and as JSON for a script. The derived figures the seeds
// reported are computed here: segments per aggregate, packets per notification, drops.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <splitnet/bridge/learning_bridge.hpp>
#include <splitnet/coalesce/moderation_stats.hpp>
#include <splitnet/grant/grant_copy.hpp>
#include <splitnet/netif/backend_queue.hpp>
#include <splitnet/nic/port.hpp>
#include <splitnet/offload/gro.hpp>
#include <splitnet/offload/gso.hpp>
#include <splitnet/sched/credit.hpp>

namespace splitnet::pipeline {

/// The pipeline's own counters, per worker.
struct worker_counters {
    std::uint64_t sleeps = 0;          ///< times the worker slept in epoll
    std::uint64_t nic_egress_full = 0; ///< frames for the wire dropped: its queue was full
    std::uint64_t nic_tx_dropped = 0;  ///< frames the NIC would not take after retries
    std::uint64_t clone_failed = 0;    ///< flood copies the pool could not supply
    std::uint64_t gso_failed = 0;      ///< aggregates that could not be segmented for the wire

    worker_counters& operator+=(const worker_counters& o) noexcept {
        sleeps += o.sleeps;
        nic_egress_full += o.nic_egress_full;
        nic_tx_dropped += o.nic_tx_dropped;
        clone_failed += o.clone_failed;
        gso_failed += o.gso_failed;
        return *this;
    }
};

struct guest_report {
    std::uint32_t id = 0;
    std::string mac;
    std::uint32_t queues = 0;
    netif::copy_side copy = netif::copy_side::backend;
    bool gso = false;
    netif::backend_queue_stats queue{};
    std::uint64_t queue_drops = 0; ///< frames refused by the full backend queue (txqlen)
    std::uint64_t queued = 0;      ///< frames waiting for the guest now
    coalesce::moderation_stats moderation{};
    grant::grant_copy_stats copy_stats{};

    /// Wire packets delivered per notification sent (seed 002's figure; an aggregate counts
    /// the segments it carries).
    [[nodiscard]] double packets_per_notification() const noexcept {
        return queue.rx_notifications == 0 ? 0.0
                                           : static_cast<double>(queue.rx_segments) /
                                                 static_cast<double>(queue.rx_notifications);
    }
};

struct departed_guest {
    std::uint32_t id = 0;
    std::string mac;
    std::string reason;
};

struct report {
    std::uint32_t workers = 0;
    nic::port_stats nic{};
    /// Frames the NIC dropped before the driver domain saw them (its receive ring full, no
    /// buffer posted), as the device reports them: for AF_XDP, the socket's XDP_STATISTICS.
    std::uint64_t nic_missed = 0;
    offload::gro_stats gro{};
    offload::gso_stats gso{};
    bridge::bridge_stats bridge{};
    sched::credit_stats sched{};
    worker_counters counters{};
    std::vector<guest_report> guests;
    std::vector<departed_guest> departed;
    std::uint32_t pool_available = 0;
    std::uint32_t pool_capacity = 0;

    [[nodiscard]] double segments_per_aggregate() const noexcept {
        return gro.aggregates == 0 ? 0.0
                                   : static_cast<double>(gro.aggregated_segments) /
                                         static_cast<double>(gro.aggregates);
    }
    /// Every packet the driver domain dropped, whatever the reason.
    [[nodiscard]] std::uint64_t drops() const noexcept {
        std::uint64_t d = counters.nic_egress_full + counters.nic_tx_dropped +
                          counters.clone_failed + counters.gso_failed + nic.rx_errors + nic_missed +
                          nic.tx_errors + bridge.rx_drop_runt + bridge.rx_drop_bad_port +
                          bridge.rx_drop_invalid_src + bridge.rx_drop_spoofed +
                          bridge.rx_drop_link_local + bridge.rx_drop_vlan + bridge.tx_drop_mtu +
                          bridge.tx_drop_no_egress;
        for (const auto& g : guests) {
            d += g.queue_drops + g.queue.tx_dropped + g.queue.tx_copy_failed + g.queue.rx_dropped +
                 g.queue.rx_copy_failed;
        }
        return d;
    }

    [[nodiscard]] std::string text() const {
        std::ostringstream o;
        o << "nic: rx " << nic.rx_packets << " pkts " << nic.rx_bytes << " B, tx " << nic.tx_packets
          << " pkts " << nic.tx_bytes << " B, tx full " << nic.tx_full << ", rx no buffers "
          << nic.rx_no_buffers << ", missed (dropped by the NIC) " << nic_missed << "\n";
        o << "gro: " << gro.rx_frames << " frames in, " << gro.aggregates << " aggregates of "
          << segments_per_aggregate() << " segments on average, " << gro.pass_bad_checksum
          << " bad checksums passed\n";
        o << "bridge: " << bridge.rx_packets << " in, " << bridge.tx_unicast << " unicast, "
          << bridge.tx_flooded << " flooded, " << bridge.tx_segment << " to segment, "
          << bridge.rx_drop_spoofed << " spoofed\n";
        o << "sched: " << sched.picks << " picks, " << sched.wakes << " wakes, " << sched.kicks
          << " kicks\n";
        for (const auto& g : guests) {
            o << "guest " << g.id << " " << g.mac << " (" << g.queues << " queue"
              << (g.queues == 1 ? "" : "s") << ", "
              << (g.copy == netif::copy_side::backend ? "backend" : "frontend") << " copy"
              << (g.gso ? ", gso" : "") << "): rx " << g.queue.rx_packets << " pkts "
              << g.queue.rx_bytes << " B in " << g.queue.rx_notifications << " notifications ("
              << g.packets_per_notification() << " pkts each), tx " << g.queue.tx_packets
              << " pkts " << g.queue.tx_bytes << " B, drops " << g.queue_drops << " queue-full "
              << g.queue.tx_dropped + g.queue.tx_copy_failed << " tx "
              << g.queue.rx_dropped + g.queue.rx_copy_failed << " rx; " << g.queue.rx_slots
              << " ring slots used, deliveries that waited for slots " << g.queue.rx_no_requests
              << ", for grants " << g.queue.rx_grants_exhausted << "\n";
        }
        for (const auto& d : departed) {
            o << "guest " << d.id << " " << d.mac << " left: " << d.reason << "\n";
        }
        o << "drops: " << drops() << "; pool " << pool_available << "/" << pool_capacity
          << " free\n";
        return o.str();
    }

    [[nodiscard]] std::string json() const {
        std::ostringstream o;
        o << "{\"workers\":" << workers << ",\"nic\":{\"rx_packets\":" << nic.rx_packets
          << ",\"rx_bytes\":" << nic.rx_bytes << ",\"tx_packets\":" << nic.tx_packets
          << ",\"tx_bytes\":" << nic.tx_bytes << ",\"tx_full\":" << nic.tx_full
          << ",\"rx_no_buffers\":" << nic.rx_no_buffers << ",\"missed\":" << nic_missed
          << "},\"gro\":{\"frames\":" << gro.rx_frames << ",\"aggregates\":" << gro.aggregates
          << ",\"aggregated_segments\":" << gro.aggregated_segments
          << ",\"segments_per_aggregate\":" << segments_per_aggregate()
          << ",\"bad_checksums\":" << gro.pass_bad_checksum
          << "},\"bridge\":{\"in\":" << bridge.rx_packets << ",\"unicast\":" << bridge.tx_unicast
          << ",\"flooded\":" << bridge.tx_flooded << ",\"segment\":" << bridge.tx_segment
          << ",\"spoofed\":" << bridge.rx_drop_spoofed << "},\"sched\":{\"picks\":" << sched.picks
          << ",\"wakes\":" << sched.wakes << ",\"kicks\":" << sched.kicks << "},\"guests\":[";
        for (std::size_t i = 0; i < guests.size(); ++i) {
            const auto& g = guests[i];
            o << (i == 0 ? "" : ",") << "{\"id\":" << g.id << ",\"mac\":\"" << g.mac
              << "\",\"queues\":" << g.queues << ",\"copy\":\""
              << (g.copy == netif::copy_side::backend ? "backend" : "frontend")
              << "\",\"rx_packets\":" << g.queue.rx_packets
              << ",\"rx_segments\":" << g.queue.rx_segments << ",\"rx_bytes\":" << g.queue.rx_bytes
              << ",\"tx_packets\":" << g.queue.tx_packets << ",\"tx_bytes\":" << g.queue.tx_bytes
              << ",\"notifications\":" << g.queue.rx_notifications
              << ",\"packets_per_notification\":" << g.packets_per_notification()
              << ",\"queue_drops\":" << g.queue_drops << ",\"queued\":" << g.queued
              << ",\"rx_slots\":" << g.queue.rx_slots
              << ",\"waits_for_slots\":" << g.queue.rx_no_requests
              << ",\"waits_for_grants\":" << g.queue.rx_grants_exhausted << "}";
        }
        o << "],\"drops\":" << drops() << ",\"pool_available\":" << pool_available
          << ",\"pool_capacity\":" << pool_capacity << "}";
        return o.str();
    }
};

/// Field-wise sum of two counter structs made only of std::uint64_t fields (every component's
/// stats struct is), through their object representations.
template <class T>
void add(T& into, const T& from) noexcept {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) % sizeof(std::uint64_t) == 0 &&
                  std::has_unique_object_representations_v<T>);
    constexpr std::size_t n = sizeof(T) / sizeof(std::uint64_t);
    std::array<std::uint64_t, n> a, b;
    std::memcpy(a.data(), static_cast<const void*>(&into), sizeof(T));
    std::memcpy(b.data(), static_cast<const void*>(&from), sizeof(T));
    for (std::size_t i = 0; i < n; ++i) {
        a[i] += b[i];
    }
    std::memcpy(static_cast<void*>(&into), a.data(), sizeof(T));
}

} // namespace splitnet::pipeline
