// SPDX-License-Identifier: MIT
// splitnet/packet/flow_key.hpp: the 5-tuple (plus VLAN) that names a flow, and its hash.
// One 40-byte layout for IPv4 and IPv6 (IPv4 addresses in the first 4 bytes, the rest zero),
// so lookups compare and hash a compile-time length: XXH3 with a constant length of 40 inlines
// to its 17..128-byte path, a handful of multiplies (bench/packet/flow_hash_bench.cpp).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <type_traits>

#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>

namespace splitnet::packet {

struct flow_key {
    std::array<std::uint8_t, 16> src_addr{}; ///< network order; IPv4 in bytes 0..3
    std::array<std::uint8_t, 16> dst_addr{};
    std::uint16_t src_port = 0; ///< host order; 0 when the protocol has no ports
    std::uint16_t dst_port = 0;
    std::uint16_t vlan = 0;      ///< VLAN id of the innermost tag, 0 when untagged
    std::uint8_t protocol = 0;   ///< IP protocol number (ip_proto)
    std::uint8_t ip_version = 0; ///< 4, 6, or 0 for non-IP

    friend bool operator==(const flow_key& a, const flow_key& b) noexcept {
        return std::memcmp(&a, &b, sizeof(flow_key)) == 0;
    }
};
static_assert(sizeof(flow_key) == 40 && std::has_unique_object_representations_v<flow_key>,
              "flow_key is hashed and compared as raw bytes: it must have no padding");

/// Seeded 64-bit hash of a flow key (XXH3). The seed keeps an attacker who picks addresses
/// and ports from aiming at one hash bucket; pick it at random per process.
[[nodiscard]] inline std::uint64_t hash(const flow_key& k, std::uint64_t seed = 0) noexcept {
    return XXH3_64bits_withSeed(&k, sizeof k, seed);
}

/// Functor for standard containers.
struct flow_key_hash {
    std::uint64_t seed = 0;
    std::size_t operator()(const flow_key& k) const noexcept { return hash(k, seed); }
};

} // namespace splitnet::packet
