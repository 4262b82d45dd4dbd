// SPDX-License-Identifier: MIT
// splitnet/sched/detail/latency_histogram.hpp: a log-linear histogram of nanosecond values
// (HdrHistogram's idea with 16 sub-buckets per power of two: <= 1/16 relative bucket width),
// fixed size, no allocation per sample. Used by the scheduling simulator for percentiles.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace splitnet::sched::detail {

class latency_histogram {
public:
    static constexpr unsigned sub_bits = 4;
    static constexpr unsigned buckets = (64 - sub_bits + 1) << sub_bits;

    void add(std::uint64_t ns) noexcept {
        ++counts_[index(ns)];
        ++count_;
        max_ = ns > max_ ? ns : max_;
        sum_ += ns;
    }

    void merge(const latency_histogram& o) noexcept {
        for (unsigned i = 0; i < buckets; ++i) {
            counts_[i] += o.counts_[i];
        }
        count_ += o.count_;
        sum_ += o.sum_;
        max_ = o.max_ > max_ ? o.max_ : max_;
    }

    [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
    [[nodiscard]] std::uint64_t max() const noexcept { return max_; }
    [[nodiscard]] double mean() const noexcept {
        return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_);
    }

    /// The value below which a fraction q (0..1) of the samples fall: the midpoint of the
    /// bucket holding that rank (exact below 16 ns), never above the maximum.
    [[nodiscard]] std::uint64_t percentile(double q) const noexcept {
        if (count_ == 0) {
            return 0;
        }
        const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_ - 1)) + 1;
        std::uint64_t seen = 0;
        for (unsigned i = 0; i < buckets; ++i) {
            seen += counts_[i];
            if (seen >= rank) {
                const std::uint64_t lo = lower(i);
                const std::uint64_t mid = lo + (upper(i) - lo) / 2;
                return mid < max_ ? mid : max_;
            }
        }
        return max_;
    }

private:
    static unsigned index(std::uint64_t v) noexcept {
        if (v < (1U << sub_bits)) {
            return static_cast<unsigned>(v);
        }
        const auto msb = static_cast<unsigned>(std::bit_width(v)) - 1; // >= sub_bits
        const auto sub = static_cast<unsigned>((v >> (msb - sub_bits)) & ((1U << sub_bits) - 1));
        return ((msb - sub_bits + 1) << sub_bits) | sub;
    }
    static std::uint64_t lower(unsigned i) noexcept {
        const unsigned group = i >> sub_bits;
        const std::uint64_t sub = i & ((1U << sub_bits) - 1);
        if (group == 0) {
            return sub;
        }
        const unsigned msb = group + sub_bits - 1;
        return (std::uint64_t{1} << msb) | (sub << (msb - sub_bits));
    }
    static std::uint64_t upper(unsigned i) noexcept {
        const unsigned group = i >> sub_bits;
        if (group == 0) {
            return lower(i);
        }
        const unsigned msb = group + sub_bits - 1;
        return lower(i) + (std::uint64_t{1} << (msb - sub_bits)) - 1;
    }

    std::array<std::uint64_t, buckets> counts_{};
    std::uint64_t count_ = 0;
    std::uint64_t sum_ = 0;
    std::uint64_t max_ = 0;
};

} // namespace splitnet::sched::detail
