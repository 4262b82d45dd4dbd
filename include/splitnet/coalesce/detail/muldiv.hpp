// SPDX-License-Identifier: MIT
// splitnet/coalesce/detail/muldiv.hpp: 64x64 -> 128-bit multiply helpers for time arithmetic
// (TSC ticks to ns, bytes x ns / rate in token buckets) that must not overflow and must not use
// floating point on hot paths. The kernel's cyc2ns uses the same mult/shift form.
#pragma once

#include <cstdint>

namespace splitnet::coalesce::detail {

__extension__ typedef unsigned __int128 u128; // __extension__: -Wpedantic accepts it

/// (a * b) >> shift, exact for every 64-bit a and b.
[[nodiscard]] constexpr std::uint64_t mul_shift(std::uint64_t a, std::uint64_t b,
                                                unsigned shift) noexcept {
    return static_cast<std::uint64_t>((static_cast<u128>(a) * b) >> shift);
}

/// a * b / c rounded down, saturating at UINT64_MAX; c must not be 0.
[[nodiscard]] constexpr std::uint64_t mul_div(std::uint64_t a, std::uint64_t b,
                                              std::uint64_t c) noexcept {
    const u128 q = static_cast<u128>(a) * b / c;
    return q > UINT64_MAX ? UINT64_MAX : static_cast<std::uint64_t>(q);
}

/// a * b / c rounded up, saturating at UINT64_MAX; c must not be 0.
[[nodiscard]] constexpr std::uint64_t mul_div_up(std::uint64_t a, std::uint64_t b,
                                                 std::uint64_t c) noexcept {
    const u128 q = (static_cast<u128>(a) * b + (c - 1)) / c;
    return q > UINT64_MAX ? UINT64_MAX : static_cast<std::uint64_t>(q);
}

} // namespace splitnet::coalesce::detail
