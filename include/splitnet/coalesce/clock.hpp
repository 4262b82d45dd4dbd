// SPDX-License-Identifier: MIT
// splitnet/coalesce/clock.hpp: the time types every coalescing and scheduling policy takes, the
// clock_source concept, and steady_clock (CLOCK_MONOTONIC). Policies never read a clock
// themselves: the caller passes `now`, read once per burst (DPDK l2fwd reads the TSC once per
// loop), so a test drives them with manual_clock and a pipeline with steady_clock or tsc_clock.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>

namespace splitnet::coalesce {

using nanoseconds = std::chrono::nanoseconds;

/// An instant: nanoseconds since the steady clock's epoch (boot, on Linux). Every splitnet clock
/// returns this one type, so a policy or a timer wheel does not depend on which clock drives it,
/// and values compare with std::chrono::steady_clock::now() directly.
using time_point = std::chrono::time_point<std::chrono::steady_clock, nanoseconds>;

/// A time that never comes: what deadline() returns when nothing is pending.
inline constexpr time_point never = time_point::max();

/// The clock concept: one noexcept now(). Kept this small on purpose: GRO, moderation, timers
/// and schedulers all take `now` as an argument, so the clock is only read where a burst starts.
template <typename C>
concept clock_source = requires(C& c) {
    { c.now() } noexcept -> std::same_as<time_point>;
};

/// Nanoseconds since the epoch, for code that packs times into integers (timer-wheel ticks).
[[nodiscard]] constexpr std::uint64_t to_ns(time_point t) noexcept {
    return static_cast<std::uint64_t>(t.time_since_epoch().count());
}

[[nodiscard]] constexpr time_point from_ns(std::uint64_t ns) noexcept {
    return time_point{nanoseconds{static_cast<nanoseconds::rep>(ns)}};
}

/// CLOCK_MONOTONIC through std::chrono::steady_clock: about 20 ns per read through the vDSO.
/// The default for a pipeline; use tsc_clock where a read per packet matters.
struct steady_clock {
    [[nodiscard]] static time_point now() noexcept {
        return std::chrono::time_point_cast<nanoseconds>(std::chrono::steady_clock::now());
    }
};
static_assert(clock_source<steady_clock>);

} // namespace splitnet::coalesce
