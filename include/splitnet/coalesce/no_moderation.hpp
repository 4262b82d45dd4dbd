// SPDX-License-Identifier: MIT
// splitnet/coalesce/no_moderation.hpp: moderation::none, a notification per event (ethtool's
// "usecs = 0, max_frames = 1"): the baseline seed 002 measured at about 6 packets per interrupt
// because that is how many arrive per hardware interrupt, and the lowest-latency choice.
#pragma once

#include <cstdint>

#include <splitnet/coalesce/clock.hpp>
#include <splitnet/coalesce/moderation.hpp>
#include <splitnet/coalesce/moderation_stats.hpp>

namespace splitnet::coalesce::moderation {

class none {
public:
    bool on_events(std::uint32_t n, time_point) noexcept {
        stats_.events += n;
        pending_ = pending_ || n != 0;
        return pending_;
    }
    [[nodiscard]] bool should_fire(time_point) const noexcept { return pending_; }
    [[nodiscard]] time_point deadline() const noexcept { return never; }
    void on_fired(time_point) noexcept {
        ++stats_.notify;
        ++(pending_ ? stats_.notify_frames : stats_.notify_idle);
        pending_ = false;
    }
    void on_drop(std::uint32_t n) noexcept { stats_.drops += n; }

    [[nodiscard]] static constexpr coalesce_params params() noexcept {
        return {1, nanoseconds::zero()};
    }
    [[nodiscard]] const moderation_stats& stats() const noexcept { return stats_; }

private:
    bool pending_ = false;
    moderation_stats stats_{};
};
static_assert(moderation_policy<none>);

} // namespace splitnet::coalesce::moderation
