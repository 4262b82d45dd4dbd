// SPDX-License-Identifier: MIT
// splitnet/coalesce/moderation.hpp: the moderation_policy concept (when to notify a frontend,
// flush GRO, drain a TX buffer) and its default, moderation::fixed<N, T>. The rule is ethtool's
// interrupt coalescing (struct ethtool_coalesce: fire when frames >= max_frames or when the
// first pending completion has waited usecs), done in software as DPDK l2fwd's TX drain does
// (32 packets or 100 µs). Seed 002 (Netchannel2, interrupt throttling): driver-domain overhead
// is proportional to the number of batches, and 64 packets per interrupt instead of 6 brought
// Xen within 23% of native.
//
// The zero values, as drivers read them (ethtool.h's literal formula would never fire with
// usecs = 0 and frames > 1, stranding packets):
//   max_frames = 0  no frame limit: the timeout alone decides;
//   max_frames = 1  fire on every event (coalescing off);
//   timeout    = 0  fire on every event (coalescing off), as rx-usecs 0 does on Intel NICs.
// So a timeout always bounds the delay a policy adds.
//
// How a pipeline drives any policy (one object per queue, owned by the worker serving it):
//   if (m.on_events(n, now)) { notify(); m.on_fired(now); wheel.cancel(t); }
//   else                     { wheel.arm(t, m.deadline()); }          // deadline moves only
//   timer callback:          if (m.should_fire(now)) { notify(); m.on_fired(now); }
//   queue overflow:          m.on_drop(k);  then as on_events         // adaptive reacts
// Every call is noexcept, allocation-free and O(1); no policy reads a clock.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>

#include <splitnet/coalesce/clock.hpp>
#include <splitnet/coalesce/detail/pending_batch.hpp>
#include <splitnet/coalesce/moderation_stats.hpp>

namespace splitnet::coalesce {

/// What the pipeline calls: report events, ask whether to fire now or when, report the fire
/// and report losses.
template <typename P>
concept moderation_policy = requires(P& p, const P& cp, std::uint32_t n, time_point now) {
    { p.on_events(n, now) } noexcept -> std::same_as<bool>; // true: fire now
    { cp.should_fire(now) } noexcept -> std::same_as<bool>; // a rule is met (timer path)
    { cp.deadline() } noexcept -> std::same_as<time_point>; // when the timeout fires; or never
    { p.on_fired(now) } noexcept -> std::same_as<void>;     // the caller notified / flushed
    { p.on_drop(n) } noexcept -> std::same_as<void>;        // n events were lost (overflow)
};

/// ethtool's pair: rx-frames and rx-usecs (or tx-…), in ns.
struct coalesce_params {
    std::uint32_t max_frames = 32;
    nanoseconds timeout = std::chrono::microseconds(100);

    friend constexpr bool operator==(const coalesce_params&, const coalesce_params&) = default;
};

namespace moderation {

/// Fire after MaxFrames events or Usecs after the first pending one, whichever comes first.
/// The parameters are compile-time constants, so the checks fold to two compares. The default,
/// 32 frames or 100 µs, is DPDK l2fwd's TX drain (MAX_PKT_BURST, BURST_TX_DRAIN_US).
template <std::uint32_t MaxFrames = 32, std::uint32_t Usecs = 100>
class fixed {
public:
    static constexpr std::uint32_t max_frames = MaxFrames;
    static constexpr nanoseconds timeout = std::chrono::microseconds(Usecs);

    bool on_events(std::uint32_t n, time_point now) noexcept {
        stats_.events += n;
        batch_.add(n, now);
        return batch_.due(max_frames, timeout, now);
    }
    [[nodiscard]] bool should_fire(time_point now) const noexcept {
        return batch_.due(max_frames, timeout, now);
    }
    [[nodiscard]] time_point deadline() const noexcept { return batch_.deadline(timeout); }
    void on_fired(time_point now) noexcept { batch_.fired(max_frames, timeout, now, stats_); }
    void on_drop(std::uint32_t n) noexcept { stats_.drops += n; }

    [[nodiscard]] std::uint32_t pending() const noexcept { return batch_.frames; }
    [[nodiscard]] static constexpr coalesce_params params() noexcept {
        return {max_frames, timeout};
    }
    [[nodiscard]] const moderation_stats& stats() const noexcept { return stats_; }

private:
    detail::pending_batch batch_{};
    moderation_stats stats_{};
};
static_assert(moderation_policy<fixed<>>);
static_assert(moderation_policy<fixed<1, 0>>);

} // namespace moderation
} // namespace splitnet::coalesce
