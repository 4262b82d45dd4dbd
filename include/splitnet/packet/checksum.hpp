// SPDX-License-Identifier: MIT
// splitnet/packet/checksum.hpp: the Internet checksum (RFC 1071), its incremental update
// (RFC 1624) and the IPv4/IPv6 pseudo-header sums TCP and UDP need.
//
// Representation: sums are kept in native byte order over words read straight from memory
// (RFC 1071 section 2(B): the sum is byte-order independent as long as it is stored back the
// same way). So a value returned by csum_fold() is stored with a plain memcpy (the header views'
// set_checksum_raw), and field values given to the incremental update are "raw": the 16 or 32
// bits exactly as they sit in memory (detail::to_be(host_value) for a host-order field).
//
// Speed: csum_partial adds 8 bytes per step into two 64-bit accumulators with end-around carry,
// 32 bytes per loop iteration, so the adds of the two chains overlap (see bench/packet).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include <splitnet/packet/detail/bytes.hpp>

namespace splitnet::packet {

namespace detail {
/// One's-complement 64-bit add: the carry out of bit 63 wraps around to bit 0.
[[nodiscard]] constexpr std::uint64_t ones_add64(std::uint64_t a, std::uint64_t b) noexcept {
    const std::uint64_t s = a + b;
    return s + (s < b ? 1U : 0U);
}
[[nodiscard]] constexpr std::uint32_t fold64_to32(std::uint64_t s) noexcept {
    s = (s & 0xffffffffU) + (s >> 32); // at most 33 bits
    s = (s & 0xffffffffU) + (s >> 32);
    return static_cast<std::uint32_t>(s);
}
} // namespace detail

/// One's-complement add of two 32-bit partial sums.
[[nodiscard]] constexpr std::uint32_t csum_add(std::uint32_t a, std::uint32_t b) noexcept {
    const std::uint32_t s = a + b;
    return s + (s < b ? 1U : 0U);
}

/// One's-complement subtract (adds the complement).
[[nodiscard]] constexpr std::uint32_t csum_sub(std::uint32_t a, std::uint32_t b) noexcept {
    return csum_add(a, ~b);
}

/// Folds a 32-bit partial sum to 16 bits without complementing.
[[nodiscard]] constexpr std::uint16_t csum_fold16(std::uint32_t s) noexcept {
    s = (s & 0xffffU) + (s >> 16);
    s = (s & 0xffffU) + (s >> 16);
    return static_cast<std::uint16_t>(s);
}

/// Folds a partial sum and complements it: the value to store in a checksum field.
[[nodiscard]] constexpr std::uint16_t csum_fold(std::uint32_t s) noexcept {
    return static_cast<std::uint16_t>(~csum_fold16(s));
}

/// Unfolded one's-complement sum of `len` bytes at `p`, added to `initial`.
/// A trailing odd byte is padded with zero, as RFC 1071 does.
[[nodiscard]] inline std::uint32_t csum_partial(const std::uint8_t* p, std::size_t len,
                                                std::uint32_t initial = 0) noexcept {
    std::uint64_t s0 = initial;
    std::uint64_t s1 = 0;
    while (len >= 32) {
        s0 = detail::ones_add64(s0, detail::load<std::uint64_t>(p));
        s1 = detail::ones_add64(s1, detail::load<std::uint64_t>(p + 8));
        s0 = detail::ones_add64(s0, detail::load<std::uint64_t>(p + 16));
        s1 = detail::ones_add64(s1, detail::load<std::uint64_t>(p + 24));
        p += 32;
        len -= 32;
    }
    s0 = detail::ones_add64(s0, s1);
    while (len >= 8) {
        s0 = detail::ones_add64(s0, detail::load<std::uint64_t>(p));
        p += 8;
        len -= 8;
    }
    if (len != 0) {
        std::uint64_t tail = 0; // zero-padded in memory order, so byte order is preserved
        std::memcpy(&tail, p, len);
        s0 = detail::ones_add64(s0, tail);
    }
    return detail::fold64_to32(s0);
}

[[nodiscard]] inline std::uint32_t csum_partial(std::span<const std::uint8_t> bytes,
                                                std::uint32_t initial = 0) noexcept {
    return csum_partial(bytes.data(), bytes.size(), initial);
}

/// Copies `len` bytes from `src` to `dst` (not overlapping) and returns their partial sum added
/// to `initial`, equal to csum_partial(src, len, initial): one pass over the data where a copy
/// and a checksum would make two (software segmentation for a NIC that cannot checksum).
[[nodiscard]] inline std::uint32_t csum_partial_copy(std::uint8_t* dst, const std::uint8_t* src,
                                                     std::size_t len,
                                                     std::uint32_t initial = 0) noexcept {
    std::uint64_t s0 = initial;
    std::uint64_t s1 = 0;
    while (len >= 32) {
        const auto a = detail::load<std::uint64_t>(src);
        const auto b = detail::load<std::uint64_t>(src + 8);
        const auto c = detail::load<std::uint64_t>(src + 16);
        const auto d = detail::load<std::uint64_t>(src + 24);
        detail::store(dst, a);
        detail::store(dst + 8, b);
        detail::store(dst + 16, c);
        detail::store(dst + 24, d);
        s0 = detail::ones_add64(s0, a);
        s1 = detail::ones_add64(s1, b);
        s0 = detail::ones_add64(s0, c);
        s1 = detail::ones_add64(s1, d);
        src += 32;
        dst += 32;
        len -= 32;
    }
    s0 = detail::ones_add64(s0, s1);
    while (len >= 8) {
        const auto a = detail::load<std::uint64_t>(src);
        detail::store(dst, a);
        s0 = detail::ones_add64(s0, a);
        src += 8;
        dst += 8;
        len -= 8;
    }
    if (len != 0) {
        std::uint64_t tail = 0; // zero-padded in memory order, as in csum_partial
        std::memcpy(&tail, src, len);
        std::memcpy(dst, src, len);
        s0 = detail::ones_add64(s0, tail);
    }
    return detail::fold64_to32(s0);
}

/// Adds the partial sum of a block that starts at byte `offset` of the checksummed data: a
/// block at an odd offset has its bytes in the other halves of the 16-bit words, so its sum is
/// byte-swapped first (this is how payload sums of segments are combined).
[[nodiscard]] constexpr std::uint32_t csum_block_add(std::uint32_t sum, std::uint32_t block,
                                                     std::size_t offset) noexcept {
    if ((offset & 1U) != 0) {
        block = (block << 8) | (block >> 24); // rotate: swaps the bytes of both 16-bit halves
    }
    return csum_add(sum, block);
}

/// The checksum of `bytes`, ready to store.
[[nodiscard]] inline std::uint16_t internet_checksum(std::span<const std::uint8_t> bytes) noexcept {
    return csum_fold(csum_partial(bytes));
}

/// RFC 1624 eqn. 3: the new checksum after a 16-bit field changes from `old_raw` to `new_raw`.
/// All three values are raw (as stored in memory).
[[nodiscard]] constexpr std::uint16_t csum_replace16(std::uint16_t check, std::uint16_t old_raw,
                                                     std::uint16_t new_raw) noexcept {
    std::uint32_t s = static_cast<std::uint16_t>(~check);
    s += static_cast<std::uint16_t>(~old_raw);
    s += new_raw;
    return csum_fold(s);
}

/// RFC 1624 for a 32-bit field (for example an IPv4 address or a TCP sequence number).
[[nodiscard]] constexpr std::uint16_t csum_replace32(std::uint16_t check, std::uint32_t old_raw,
                                                     std::uint32_t new_raw) noexcept {
    std::uint32_t s = static_cast<std::uint16_t>(~check);
    s = csum_add(s, ~old_raw);
    s = csum_add(s, new_raw);
    return csum_fold(s);
}

/// Partial sum of the IPv4 pseudo-header (RFC 793/768): addresses, zero, protocol, L4 length.
[[nodiscard]] inline std::uint32_t pseudo_header_sum_v4(const std::uint8_t* src,
                                                        const std::uint8_t* dst,
                                                        std::uint8_t protocol,
                                                        std::uint32_t l4_len) noexcept {
    std::uint64_t s = detail::load<std::uint32_t>(src);
    s += detail::load<std::uint32_t>(dst);
    s += detail::to_be(static_cast<std::uint16_t>(protocol));
    s += detail::to_be(static_cast<std::uint32_t>(l4_len));
    return detail::fold64_to32(s);
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 section 8.1).
[[nodiscard]] inline std::uint32_t pseudo_header_sum_v6(const std::uint8_t* src,
                                                        const std::uint8_t* dst,
                                                        std::uint8_t protocol,
                                                        std::uint32_t l4_len) noexcept {
    std::uint32_t s = csum_partial(src, 16);
    s = csum_partial(dst, 16, s);
    s = csum_add(s, detail::to_be(static_cast<std::uint32_t>(l4_len)));
    return csum_add(s, detail::to_be(static_cast<std::uint32_t>(protocol)));
}

/// True when a block that carries its own checksum field (IPv4 header; L4 with the pseudo
/// header added as `initial`) sums to all ones, i.e. verifies.
[[nodiscard]] inline bool csum_verifies(std::span<const std::uint8_t> bytes,
                                        std::uint32_t initial = 0) noexcept {
    return csum_fold16(csum_partial(bytes, initial)) == 0xffffU;
}

} // namespace splitnet::packet
