// SPDX-License-Identifier: MIT
// splitnet/coalesce/tunable_moderation.hpp: moderation::tunable, the fixed rule with its
// (frames, timeout) pair set at run time, as `ethtool -C dev rx-frames N rx-usecs T` does.
// Same rule and zero values as moderation::fixed (moderation.hpp).
#pragma once

#include <cstdint>

#include <splitnet/coalesce/clock.hpp>
#include <splitnet/coalesce/detail/pending_batch.hpp>
#include <splitnet/coalesce/moderation.hpp>
#include <splitnet/coalesce/moderation_stats.hpp>

namespace splitnet::coalesce::moderation {

class tunable {
public:
    constexpr tunable() noexcept = default;
    constexpr explicit tunable(const coalesce_params& p) noexcept : params_(p) {}

    bool on_events(std::uint32_t n, time_point now) noexcept {
        stats_.events += n;
        batch_.add(n, now);
        return batch_.due(params_.max_frames, params_.timeout, now);
    }
    [[nodiscard]] bool should_fire(time_point now) const noexcept {
        return batch_.due(params_.max_frames, params_.timeout, now);
    }
    [[nodiscard]] time_point deadline() const noexcept { return batch_.deadline(params_.timeout); }
    void on_fired(time_point now) noexcept {
        batch_.fired(params_.max_frames, params_.timeout, now, stats_);
    }
    void on_drop(std::uint32_t n) noexcept { stats_.drops += n; }

    /// New parameters apply to the pending batch too: a shorter timeout can make it due at once
    /// (the caller re-arms its timer from deadline()).
    void set(const coalesce_params& p) noexcept { params_ = p; }
    [[nodiscard]] const coalesce_params& params() const noexcept { return params_; }
    [[nodiscard]] std::uint32_t pending() const noexcept { return batch_.frames; }
    [[nodiscard]] const moderation_stats& stats() const noexcept { return stats_; }

private:
    coalesce_params params_{};
    detail::pending_batch batch_{};
    moderation_stats stats_{};
};
static_assert(moderation_policy<tunable>);

} // namespace splitnet::coalesce::moderation
