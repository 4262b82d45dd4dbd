// SPDX-License-Identifier: MIT
// splitnet/coalesce/manual_clock.hpp: a clock that moves only when told to, for deterministic
// tests of timers, moderation and schedulers (none of the kernel, DPDK or Xen implementations
// can be driven this way: they read jiffies, hrtimers or the TSC directly).
#pragma once

#include <splitnet/coalesce/clock.hpp>

namespace splitnet::coalesce {

/// Single-threaded: a test owns it and advances it between calls.
class manual_clock {
public:
    constexpr manual_clock() noexcept = default;
    constexpr explicit manual_clock(time_point start) noexcept : now_(start) {}

    [[nodiscard]] constexpr time_point now() const noexcept { return now_; }

    /// Moves the clock forward by `d` (a negative `d` is ignored: the clock is monotonic).
    constexpr time_point advance(nanoseconds d) noexcept {
        if (d > nanoseconds::zero()) {
            now_ += d;
        }
        return now_;
    }

    /// Sets the clock to `t` if that is not in the past.
    constexpr time_point set(time_point t) noexcept {
        if (t > now_) {
            now_ = t;
        }
        return now_;
    }

private:
    time_point now_{};
};
static_assert(clock_source<manual_clock>);

} // namespace splitnet::coalesce
