// SPDX-License-Identifier: MIT
// splitnet/bridge/key_hash.hpp: seeded hashes of a packed mac_key, as an FDB policy.
// Anchors: OVS hash_mac() (MAC+VLAN packed into a u64, CRC32C under SSE4.2, random basis), VPP
// l2fib (clib_crc32c of the u64 key, else xxhash), Linux rhashtable (jhash2 with a random seed,
// the 120-cycle hash the seed paper measured).
//
// The default is XXH3 with a per-table random seed. bench/bridge/key_hash_bench.cpp on this
// machine (AMD EPYC VM, g++ 12 -O2 -msse4.2, medians of 3): XXH3 1.5 ns/key throughput, 6.2 ns
// dependent latency; CRC32C 0.3 and 2.5 ns; fdb::lookup_burst at 1K MACs 4.6 ns/key with XXH3,
// 3.5 with CRC32C. CRC32C is faster, but CRC is linear: a seed does not stop an attacker who
// picks source MACs from aiming many of them at one bucket chain (crc(a ^ b) does not depend on
// the seed), and on a bridge the uplink's source MACs are attacker-chosen. So XXH3 (keyed, no
// memory access, two multiplies) is the default and CRC32C a policy for trusted segments.
#pragma once

#include <concepts>
#include <cstdint>

#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace splitnet::bridge {

/// A hash of a 64-bit key, constructed from a seed. The FDB indexes buckets with its low bits.
template <class H>
concept key_hasher =
    std::constructible_from<H, std::uint64_t> && requires(const H h, std::uint64_t k) {
        { h(k) } noexcept -> std::same_as<std::uint64_t>;
    };

/// XXH3-64 of the 8 key bytes (the 4..8-byte path: two 32-bit halves, a keyed xor, rrmxmx).
struct xxh3_key_hash {
    std::uint64_t seed = 0;
    explicit constexpr xxh3_key_hash(std::uint64_t s = 0) noexcept : seed(s) {}
    [[nodiscard]] std::uint64_t operator()(std::uint64_t key) const noexcept {
        return XXH3_64bits_withSeed(&key, sizeof key, seed);
    }
};
static_assert(key_hasher<xxh3_key_hash>);

#if defined(__SSE4_2__)
/// CRC32C of the key (one SSE4.2 crc32 instruction), the OVS and VPP choice. Only when the
/// build targets SSE4.2 (-msse4.2 or -march=x86-64-v2): not seed-resistant, see above.
struct crc32c_key_hash {
    std::uint32_t seed = 0;
    explicit constexpr crc32c_key_hash(std::uint64_t s = 0) noexcept
        : seed(static_cast<std::uint32_t>(s ^ (s >> 32))) {}
    [[nodiscard]] std::uint64_t operator()(std::uint64_t key) const noexcept {
        return _mm_crc32_u64(seed, key);
    }
};
static_assert(key_hasher<crc32c_key_hash>);
#endif

using default_key_hash = xxh3_key_hash;

} // namespace splitnet::bridge
