// SPDX-License-Identifier: MIT
// splitnet/coalesce/moderation_stats.hpp: the counters every moderation policy keeps, named
// the way ethtool -S users read notification counters.
#pragma once

#include <cstdint>

namespace splitnet::coalesce {

/// Single-writer (the worker that owns the queue); plain integers.
struct moderation_stats {
    std::uint64_t events = 0;          ///< events (frames) reported through on_events
    std::uint64_t notify = 0;          ///< fires: notifications sent, flushes done
    std::uint64_t notify_frames = 0;   ///< fires because the frame threshold was reached
    std::uint64_t notify_timeout = 0;  ///< fires because the oldest event waited the timeout
    std::uint64_t notify_overflow = 0; ///< fires forced at once by a reported drop (adaptive)
    std::uint64_t notify_early = 0;    ///< fires the caller made before either rule was met
    std::uint64_t notify_idle = 0;     ///< fires with nothing pending
    std::uint64_t drops = 0;           ///< events reported lost through on_drop
    std::uint64_t retunes = 0;         ///< changes of (frames, timeout) made by an adaptive policy
    std::uint64_t backoffs = 0;        ///< sample windows in which drops halved the limits
};

} // namespace splitnet::coalesce
