// SPDX-License-Identifier: MIT
// splitnet/coalesce/adaptive_moderation.hpp: moderation::adaptive, a closed loop that picks the
// (frames, timeout) pair from the observed event rate under an explicit latency bound, and
// backs off when the queue overflows. Anchors: ethtool's adaptive-rx/pkt_rate_low/high (a
// two-threshold table most drivers ignore) and Linux net_dim (lib/dim/net_dim.c), which
// hill-climbs five profiles on bytes/ms and, because its comparator only reacts to >10% swings
// in throughput, never sees a steady overload or the drops it causes.
//
// Control law, evaluated once per sample window (>= sample_interval of event time):
//   rate   r = events / elapsed, smoothed by an EWMA of gain 1/4 (reset, not smoothed, after a
//          silence of 8 windows so a new burst is not judged by old traffic);
//   frames N = r * fill% * latency_bound, clamped to [1, min(max_frames, queue_capacity/4,
//          n_cap)] and changed only when it moves by more than 1/8 (hysteresis). So at a low
//          rate N = 1 (no added delay), and at a high rate the frame rule fires after about
//          fill% of the bound, before the timeout;
//   timeout T = t_cap <= latency_bound, so no event is held longer than the bound;
//   drops  (on_drop) are the queue overflowing because the consumer was told too late: the
//          next fire happens at once (notify_overflow), and at the window's end n_cap and t_cap
//          are halved (multiplicative decrease) and held for 4 windows, after which each
//          drop-free window adds max_frames/16 and bound/16 back (additive increase): AIMD, as
//          TCP does, so a persistent overflow drives N to 1 and T to bound/64 within 6 windows.
// The queue_capacity/4 ceiling keeps a batch from taking more than a quarter of the ring that
// the consumer must drain while further events arrive.
//
// Errors: the constructor throws std::invalid_argument for parameters it cannot honour; every
// other call is noexcept, O(1) and allocation-free. One object per queue, one owning thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stdexcept>

#include <splitnet/coalesce/clock.hpp>
#include <splitnet/coalesce/detail/muldiv.hpp>
#include <splitnet/coalesce/detail/pending_batch.hpp>
#include <splitnet/coalesce/moderation.hpp>
#include <splitnet/coalesce/moderation_stats.hpp>
#include <splitnet/config.hpp>

namespace splitnet::coalesce {

struct adaptive_params {
    /// The most delay the policy adds to an event (the timeout never exceeds it).
    nanoseconds latency_bound = std::chrono::microseconds(50);
    /// Ceiling for the frame threshold (seed 002: 64 packets per interrupt).
    std::uint32_t max_frames = 64;
    /// Slots of the ring or queue the batch occupies; the threshold stays <= capacity / 4.
    std::uint32_t queue_capacity = 256;
    /// The rate is re-estimated at the first event or fire after this much time.
    nanoseconds sample_interval = std::chrono::microseconds(100);
    /// The frame rule should fire after this share of the bound at the observed rate.
    std::uint32_t fill_percent = 50;
};

namespace moderation {

class adaptive {
public:
    static constexpr unsigned ewma_shift = 2;      // gain 1/4
    static constexpr unsigned silence_windows = 8; // longer gap: restart the estimate
    static constexpr unsigned holdoff_windows = 4; // no increase this long after a backoff

    explicit adaptive(const adaptive_params& p = {}) : p_(check(p)) {
        ceiling_ = std::max<std::uint32_t>(1, std::min(p_.max_frames, p_.queue_capacity / 4));
        n_cap_ = ceiling_;
        t_cap_ = p_.latency_bound;
        t_min_ = std::max(nanoseconds{1000}, p_.latency_bound / 64);
        timeout_ = p_.latency_bound;
    }

    bool on_events(std::uint32_t n, time_point now) noexcept {
        stats_.events += n;
        sample(now);
        window_events_ += n;
        batch_.add(n, now);
        return should_fire(now);
    }

    [[nodiscard]] bool should_fire(time_point now) const noexcept {
        return batch_.due(frames_, timeout_, now) || (urgent_ && batch_.frames != 0);
    }

    [[nodiscard]] time_point deadline() const noexcept {
        return urgent_ && batch_.frames != 0 ? batch_.first : batch_.deadline(timeout_);
    }

    void on_fired(time_point now) noexcept {
        sample(now);
        if (urgent_ && batch_.frames != 0 && !batch_.due(frames_, timeout_, now)) {
            ++stats_.notify;
            ++stats_.notify_overflow;
            batch_.frames = 0;
        } else {
            batch_.fired(frames_, timeout_, now, stats_);
        }
        urgent_ = false;
    }

    void on_drop(std::uint32_t n) noexcept {
        if (n == 0) {
            return;
        }
        stats_.drops += n;
        window_drops_ += n;
        urgent_ = true;
    }

    /// The pair in force now.
    [[nodiscard]] coalesce_params params() const noexcept { return {frames_, timeout_}; }
    [[nodiscard]] const adaptive_params& config() const noexcept { return p_; }
    /// Smoothed events per latency_bound, as the controller sees the rate.
    [[nodiscard]] double estimated_events_per_bound() const noexcept {
        return static_cast<double>(avg_q8_) / 256.0;
    }
    [[nodiscard]] std::uint32_t pending() const noexcept { return batch_.frames; }
    [[nodiscard]] const moderation_stats& stats() const noexcept { return stats_; }

private:
    static const adaptive_params& check(const adaptive_params& p) {
        if (p.latency_bound <= nanoseconds::zero() || p.latency_bound > std::chrono::seconds(1)) {
            SPLITNET_THROW(std::invalid_argument(
                "moderation::adaptive: latency_bound must be in (0, 1 s]; net_dim's profiles "
                "span 1-256 µs"));
        }
        if (p.max_frames == 0 || p.queue_capacity == 0) {
            SPLITNET_THROW(std::invalid_argument(
                "moderation::adaptive: max_frames and queue_capacity must be >= 1 (max_frames 1 "
                "turns coalescing off; use moderation::none for that)"));
        }
        if (p.sample_interval <= nanoseconds::zero()) {
            SPLITNET_THROW(std::invalid_argument(
                "moderation::adaptive: sample_interval must be > 0 (e.g. 2x latency_bound)"));
        }
        if (p.fill_percent == 0 || p.fill_percent > 100) {
            SPLITNET_THROW(std::invalid_argument(
                "moderation::adaptive: fill_percent must be in 1..100 (50 fires the frame rule "
                "halfway through the bound)"));
        }
        return p;
    }

    void sample(time_point now) noexcept {
        if (!started_) {
            started_ = true;
            window_start_ = now;
            return;
        }
        if (now - window_start_ >= p_.sample_interval) {
            close_window(now);
        }
    }

    void close_window(time_point now) noexcept {
        const auto elapsed = static_cast<std::uint64_t>((now - window_start_).count());
        const auto bound = static_cast<std::uint64_t>(p_.latency_bound.count());
        const auto x = static_cast<std::int64_t>(std::min<std::uint64_t>(
            detail::mul_div(window_events_, bound * 256, elapsed), std::uint64_t{1} << 40));
        if (now - window_start_ >= p_.sample_interval * silence_windows) {
            avg_q8_ = x;
        } else {
            avg_q8_ += (x - avg_q8_) / (1 << ewma_shift);
        }

        if (window_drops_ != 0) {
            n_cap_ = std::max<std::uint32_t>(1, std::min(n_cap_, frames_) / 2);
            t_cap_ = std::max(t_min_, t_cap_ / 2);
            holdoff_ = holdoff_windows;
            ++stats_.backoffs;
        } else if (holdoff_ != 0) {
            --holdoff_;
        } else {
            n_cap_ = std::min(ceiling_, n_cap_ + std::max<std::uint32_t>(1, ceiling_ / 16));
            t_cap_ = std::min(p_.latency_bound, t_cap_ + p_.latency_bound / 16);
        }

        const std::uint64_t want =
            static_cast<std::uint64_t>(avg_q8_) * p_.fill_percent / (100 * 256);
        const auto target = static_cast<std::uint32_t>(
            std::clamp<std::uint64_t>(want, 1, std::min(ceiling_, n_cap_)));
        // Hysteresis: ignore moves within 1/8 of N, except onto a limit (1 or the cap), so
        // N can reach the cap during recovery and drop under it at once after a backoff.
        const std::uint32_t band = frames_ / 8;
        const std::uint32_t limit = std::min(ceiling_, n_cap_);
        std::uint32_t next = frames_;
        if (target > frames_ + band || target + band < frames_ || frames_ > limit ||
            (target != frames_ && (target == limit || target == 1))) {
            next = target;
        }
        if (next != frames_ || t_cap_ != timeout_) {
            ++stats_.retunes;
        }
        frames_ = next;
        timeout_ = t_cap_;

        window_start_ = now;
        window_events_ = 0;
        window_drops_ = 0;
    }

    adaptive_params p_;
    std::uint32_t ceiling_ = 1;
    std::uint32_t frames_ = 1; ///< N in force: coalescing off until a rate is known
    nanoseconds timeout_{};    ///< T in force
    std::uint32_t n_cap_ = 1;  ///< AIMD limit on N
    nanoseconds t_cap_{};      ///< AIMD limit on T
    nanoseconds t_min_{};
    std::int64_t avg_q8_ = 0; ///< smoothed events per latency_bound, 8 fraction bits
    time_point window_start_{};
    std::uint64_t window_events_ = 0;
    std::uint64_t window_drops_ = 0;
    std::uint32_t holdoff_ = 0;
    bool started_ = false;
    bool urgent_ = false;
    detail::pending_batch batch_{};
    moderation_stats stats_{};
};
static_assert(moderation_policy<adaptive>);

} // namespace moderation
} // namespace splitnet::coalesce
