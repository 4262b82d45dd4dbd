// SPDX-License-Identifier: MIT
// splitnet/packet/detail/bytes.hpp: unaligned loads and stores in network and host byte order.
// Packet bytes are read through memcpy, never through a cast struct pointer: headers are
// unaligned in general (a 14-byte Ethernet header puts IP at offset 14) and a cast would break
// strict aliasing. Compilers turn these into single moves plus bswap.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace splitnet::packet::detail {

template <class T>
[[nodiscard]] inline T load(const std::uint8_t* p) noexcept {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

template <class T>
inline void store(std::uint8_t* p, T v) noexcept {
    std::memcpy(p, &v, sizeof v);
}

[[nodiscard]] constexpr std::uint16_t to_be(std::uint16_t v) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
        return __builtin_bswap16(v);
    } else {
        return v;
    }
}
[[nodiscard]] constexpr std::uint32_t to_be(std::uint32_t v) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
        return __builtin_bswap32(v);
    } else {
        return v;
    }
}
[[nodiscard]] constexpr std::uint64_t to_be(std::uint64_t v) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
        return __builtin_bswap64(v);
    } else {
        return v;
    }
}

[[nodiscard]] inline std::uint16_t load_be16(const std::uint8_t* p) noexcept {
    return to_be(load<std::uint16_t>(p));
}
[[nodiscard]] inline std::uint32_t load_be32(const std::uint8_t* p) noexcept {
    return to_be(load<std::uint32_t>(p));
}
inline void store_be16(std::uint8_t* p, std::uint16_t v) noexcept {
    store(p, to_be(v));
}
inline void store_be32(std::uint8_t* p, std::uint32_t v) noexcept {
    store(p, to_be(v));
}

} // namespace splitnet::packet::detail
