// SPDX-License-Identifier: MIT
// splitnet/coalesce/detail/pending_batch.hpp: the state every moderation policy keeps (events
// since the last fire and when the first of them arrived) and ethtool's firing rule over it
// (include/uapi/linux/ethtool.h, struct ethtool_coalesce), with splitnet's reading of the zero
// values documented in moderation.hpp.
#pragma once

#include <cstdint>

#include <splitnet/coalesce/clock.hpp>
#include <splitnet/coalesce/moderation_stats.hpp>

namespace splitnet::coalesce::detail {

struct pending_batch {
    std::uint32_t frames = 0; ///< events since the last fire (saturates at UINT32_MAX)
    time_point first{};       ///< arrival of the oldest of them

    void add(std::uint32_t n, time_point now) noexcept {
        if (n == 0) {
            return;
        }
        if (frames == 0) {
            first = now;
        }
        frames = n > UINT32_MAX - frames ? UINT32_MAX : frames + n;
    }

    /// ethtool: fire when frames >= max_frames (max_frames 0: no frame limit) or when the oldest
    /// pending event has waited `timeout` (0: at once).
    [[nodiscard]] bool due(std::uint32_t max_frames, nanoseconds timeout,
                           time_point now) const noexcept {
        if (frames == 0) {
            return false;
        }
        if (max_frames != 0 && frames >= max_frames) {
            return true;
        }
        return now - first >= timeout;
    }

    [[nodiscard]] time_point deadline(nanoseconds timeout) const noexcept {
        return frames == 0 ? never : first + timeout;
    }

    /// Counts a fire in `s` under the rule that caused it, and empties the batch.
    void fired(std::uint32_t max_frames, nanoseconds timeout, time_point now,
               moderation_stats& s) noexcept {
        ++s.notify;
        if (frames == 0) {
            ++s.notify_idle;
        } else if (max_frames != 0 && frames >= max_frames) {
            ++s.notify_frames;
        } else if (now - first >= timeout) {
            ++s.notify_timeout;
        } else {
            ++s.notify_early;
        }
        frames = 0;
    }
};

} // namespace splitnet::coalesce::detail
