// SPDX-License-Identifier: MIT
// splitnet/sched/token_bucket.hpp: a byte-rate limiter with ns resolution and an explicit burst,
// the replacement for netback's `rate=` (drivers/net/xen-netback: credit_bytes per credit_usec,
// refilled by a jiffy timer, at least 128 KiB per interval, and applied per queue so a
// multi-queue vif gets N times the configured rate). Here refill is continuous and exact
// (fractions of a byte are carried, so 1 kB/s is as exact as 100 Gbit/s), the burst is what
// the user says, and the credit scheduler keeps one bucket per guest, shared by all its queues.
// Consumption may overshoot into debt by the packet that crosses the limit; the debt is repaid
// before the next grant, so the long-run rate is exact.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#include <splitnet/coalesce/clock.hpp>
#include <splitnet/coalesce/detail/muldiv.hpp>

namespace splitnet::sched {

struct rate_limit {
    std::uint64_t bytes_per_second = 0; ///< 0: unlimited
    /// Bucket depth: the most bytes that pass at line rate after an idle spell. 0 picks the
    /// larger of 10 ms of rate and 64 KiB.
    std::uint64_t burst_bytes = 0;
};

/// Single-writer (used under the scheduler's lock).
class token_bucket {
public:
    constexpr token_bucket() noexcept = default;
    explicit token_bucket(const rate_limit& r, coalesce::time_point now = {}) noexcept {
        set(r, now);
    }

    void set(const rate_limit& r, coalesce::time_point now) noexcept {
        rate_ = r.bytes_per_second;
        burst_ =
            r.burst_bytes != 0 ? r.burst_bytes : std::max<std::uint64_t>(rate_ / 100, 64 * 1024);
        tokens_ = static_cast<std::int64_t>(std::min<std::uint64_t>(burst_, INT64_MAX));
        frac_ = 0;
        last_ = now;
    }

    [[nodiscard]] bool limited() const noexcept { return rate_ != 0; }
    [[nodiscard]] std::uint64_t rate() const noexcept { return rate_; }
    [[nodiscard]] std::uint64_t burst() const noexcept { return burst_; }

    /// Tokens (bytes) available at `now`; negative while a debt is being repaid; INT64_MAX
    /// when unlimited.
    std::int64_t available(coalesce::time_point now) noexcept {
        if (rate_ == 0) {
            return INT64_MAX;
        }
        refill(now);
        return tokens_;
    }

    /// Takes `bytes` at `now` (refilling up to `now` first, so time spent full earns nothing).
    void consume(std::uint64_t bytes, coalesce::time_point now) noexcept {
        if (rate_ != 0) {
            refill(now);
            tokens_ -= static_cast<std::int64_t>(std::min<std::uint64_t>(bytes, INT64_MAX / 2));
        }
    }

    /// When tokens will be positive again (`now` if they are).
    [[nodiscard]] coalesce::time_point ready_at(coalesce::time_point now) noexcept {
        refill(now);
        if (rate_ == 0 || tokens_ > 0) {
            return now;
        }
        // need (1 - tokens) more bytes; frac_ already holds frac_/1e9 of the next byte.
        const std::uint64_t need = static_cast<std::uint64_t>(1 - tokens_) * 1'000'000'000ULL;
        const std::uint64_t have = frac_;
        const std::uint64_t ns = coalesce::detail::mul_div_up(need - have, 1, rate_);
        return now + coalesce::nanoseconds{static_cast<coalesce::nanoseconds::rep>(ns)};
    }

private:
    void refill(coalesce::time_point now) noexcept {
        if (rate_ == 0 || now <= last_) {
            return;
        }
        const auto dt = static_cast<std::uint64_t>((now - last_).count());
        last_ = now;
        const auto cap = static_cast<std::int64_t>(std::min<std::uint64_t>(burst_, INT64_MAX));
        if (tokens_ >= cap) {
            frac_ = 0;
            return;
        }
        // dt * rate + frac_ in units of byte-ns; whole bytes = that / 1e9, the rest carried.
        const coalesce::detail::u128 total =
            static_cast<coalesce::detail::u128>(dt) * rate_ + frac_;
        const coalesce::detail::u128 whole = total / 1'000'000'000U;
        const auto room = static_cast<std::uint64_t>(cap - tokens_);
        if (whole >= room) {
            tokens_ = cap;
            frac_ = 0;
        } else {
            tokens_ += static_cast<std::int64_t>(whole);
            frac_ = static_cast<std::uint64_t>(total % 1'000'000'000U);
        }
    }

    std::uint64_t rate_ = 0;
    std::uint64_t burst_ = 0;
    std::int64_t tokens_ = 0;
    std::uint64_t frac_ = 0; ///< byte-ns carried below one byte (< 1e9)
    coalesce::time_point last_{};
};

} // namespace splitnet::sched
