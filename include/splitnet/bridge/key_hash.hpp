// SPDX-License-Identifier: MIT
// splitnet/bridge/key_hash.hpp: seeded hashes of a packed mac_key, as an FDB policy.
// Anchors: OVS hash_mac() (MAC+VLAN packed into a u64, CRC32C under SSE4.2, random basis), VPP
// l2fib (clib_crc32c of the u64 key, else xxhash), Linux rhashtable (jhash2 with a random seed,
// the 120-cycle hash the seed paper measured).
//
// The default is a keyed mixer (mix_key_hash: the key xored with a per-table random seed, then
// two multiplies each preceded by a 32-bit xor-shift fold, 12 instructions); XXH3 and, on AES-NI
// targets, three AES rounds (aes_key_hash: fewer instructions, longer latency) are policies
// beside it. bench/bridge/key_hash_bench.cpp on this machine (AMD EPYC VM, g++ 12 -O2 -msse4.2,
// one run, medians of 3, 1024 keys): throughput (independent keys) mixer 1.3 ns/key, XXH3 2.0,
// CRC32C 0.9 (mixer 1.55x XXH3's rate); dependent latency 5.2, 6.4, 2.6 ns; fdb::lookup_burst
// at 1K MACs about 5.6 ns/key with any of them (the probe, not the hash, sets it). CRC32C is
// fast but linear: a seed does not stop an attacker who picks source MACs from aiming many of
// them at one bucket chain (crc(a ^ b) does not depend on the seed), and on a bridge the uplink's
// source MACs are attacker-chosen. So CRC32C is only a policy for trusted segments.
//
// Why a mixer of this shape. The bridge hashes two keys a frame (learning_bridge.hpp), so the
// hash's instructions count twice in the bridge's per-frame budget. Cheaper keyed hashes were
// measured: multiply-shift, multiply-add-shift (a 128-bit multiplier: strongly universal, 8
// instructions), wyhash's multiply-fold, and one multiply before the fold. All put sequential
// MACs (00:16:3e:00:00:01, :02, ..., how Xen numbers vifs) into probe chains of hundreds of
// buckets for some seeds (about 1 seed in 12 at 3/4 load), because their hash of i is linear
// (or nearly) in i and linear probing clusters such sequences. A second multiply behind a
// xor-shift breaks that: over 2048 seeds at 3/4 load, sequential, strided, per-VLAN and random
// MAC sets alike, mix_key_hash's worst mean displacement was 0.36-0.38 buckets and worst chain
// 48-67, as XXH3's (0.37-0.40, 48-55) and as random keys should. It is XXH3's 8-byte path
// (xor with a seed-derived word, then rrmxmx) without the rotate-xor and length steps: the same
// construction, a bijection after a keyed xor, so no two keys ever share a full hash and which
// keys share a bucket depends on the seed through the carries of two multiplies. Neither is a
// PRF; an attacker who can measure probe times could learn about the seed, and the per-port
// learning limits (fdb.hpp) are what bounds a flood. tests/bridge/mac_key_test.cpp
// (SequentialMacsSpreadOverBucketsForEverySeed) keeps the property for the default.
#pragma once

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>

#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif
#if defined(__AES__)
#include <wmmintrin.h>
#endif

namespace splitnet::bridge {

/// A hash of a 64-bit key, constructed from a seed. The FDB indexes buckets with its bits 6 and
/// up (as many as it has buckets: at most 25).
template <class H>
concept key_hasher =
    std::constructible_from<H, std::uint64_t> && requires(const H h, std::uint64_t k) {
        { h(k) } noexcept -> std::same_as<std::uint64_t>;
    };

/// The default: the key xored with the seed, then (fold, multiply) twice and a last fold. The
/// constant is an odd 64-bit multiplier with good avalanche for this xor-shift-multiply shape
/// (from the published searches for such mixers); the folds bring the high half's bits, which
/// alone feel the carries, down to the bits the FDB indexes with.
class mix_key_hash {
public:
    explicit constexpr mix_key_hash(std::uint64_t s = 0) noexcept : seed_(s) {}
    [[nodiscard]] constexpr std::uint64_t operator()(std::uint64_t key) const noexcept {
        std::uint64_t h = key ^ seed_;
        h ^= h >> 32;
        h *= multiplier;
        h ^= h >> 32;
        h *= multiplier;
        return h ^ (h >> 32);
    }
    [[nodiscard]] constexpr std::uint64_t seed() const noexcept { return seed_; }

private:
    static constexpr std::uint64_t multiplier = 0xd6e8feb86659fd93ULL;
    std::uint64_t seed_;
};
static_assert(key_hasher<mix_key_hash>);

/// XXH3-64 of the 8 key bytes (the 4..8-byte path: two 32-bit halves, a keyed xor, rrmxmx), with
/// the seed-dependent constant of that path (secret bytes 8..23 folded with the seed) computed
/// once at construction instead of per key, and the halves swapped with one rotate: the same
/// value as XXH3_64bits_withSeed(&key, 8, seed) (tests/bridge/mac_key_test.cpp checks it) in
/// 18 instructions instead of 25.
class xxh3_key_hash {
public:
    explicit xxh3_key_hash(std::uint64_t s = 0) noexcept
        : seed_(s),
          bitflip_((read64(XXH3_kSecret + 8) ^ read64(XXH3_kSecret + 16)) -
                   (s ^ (std::uint64_t{XXH_swap32(static_cast<std::uint32_t>(s))} << 32))) {}
    [[nodiscard]] std::uint64_t operator()(std::uint64_t key) const noexcept {
        // XXH3_len_4to8_64b: input1 = bytes 0..3, input2 = bytes 4..7 (little-endian reads of
        // the key as stored), input64 = input2 + (input1 << 32): on a little-endian host the key
        // rotated by 32 bits, one instruction.
        std::uint64_t h = 0;
        if constexpr (std::endian::native == std::endian::little) {
            h = std::rotl(key, 32);
        } else {
            h = (std::uint64_t{half(key, 0)} << 32) + half(key, 4);
        }
        h ^= bitflip_;
        // XXH3_rrmxmx(h, 8)
        h ^= std::rotl(h, 49) ^ std::rotl(h, 24);
        h *= 0x9FB21C651E98DF25ULL;
        h ^= (h >> 35) + 8;
        h *= 0x9FB21C651E98DF25ULL;
        return h ^ (h >> 28);
    }
    [[nodiscard]] std::uint64_t seed() const noexcept { return seed_; }

private:
    static std::uint64_t read64(const std::uint8_t* p) noexcept { return XXH_readLE64(p); }
    /// XXH_readLE32 of the key's bytes at offset `at`, as XXH3 reads them from memory.
    static std::uint32_t half(std::uint64_t key, std::size_t at) noexcept {
        unsigned char b[sizeof key];
        std::memcpy(b, &key, sizeof key);
        return XXH_readLE32(b + at);
    }

    std::uint64_t seed_;
    std::uint64_t bitflip_;
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

#if defined(__AES__)
/// Three AES rounds of the key under secret round keys drawn from the seed: the key in the low
/// half of a 128-bit state xored with the first round key, then aesenc with three more, the
/// result's low half. Only when the build targets AES-NI (-maes, -march=x86-64-v3 or newer).
///
/// A policy, not the default. On the bridge it is 6 instructions a key against the mixer's 12
/// and keeps its round keys in vector registers, where the mixer's multiplier and seed take two
/// of the general registers the forwarding loop runs short of: 118 -> 99.5 instructions a frame
/// at 1K MACs (bench/bridge/callgrind.sh). But its latency is longer (three aesenc and two
/// moves between register files, about 19 cycles against about 13), and after each mispredicted
/// probe branch the next key's hash is on the critical path: forward_burst took 1.0-1.32x the
/// mixer's time at 16 and 1K MACs over four interleaved runs, most often about 1.1x (equal at
/// 64K, where the loop hashes a chunk ahead). Why three rounds: AES spreads a byte over its column
/// per round, so after two the index bits of an 8-byte key depend on few key bytes through a
/// structured map (mean displacement 0.6 for sequential Xen MACs and 3.0 for MACs counting in steps
/// of 64, against 0.37 for random keys); with three, over 2048 seeds at 3/4 load, sequential,
/// strided, per-VLAN and random sets alike: worst mean displacement 0.36-0.39 buckets, worst chain
/// 47-75 (8192 seeds: the mixer's tail is the same, 76). Each round is a keyed bijection with a
/// non-linear S-box, so unlike CRC32C which keys share a bucket depends on the secret; three
/// rounds are no PRF either (see the mixer's note on floods).
class aes_key_hash {
public:
    explicit aes_key_hash(std::uint64_t s = 0) noexcept : seed_(s) {
        std::uint64_t state = s;
        for (__m128i& k : round_keys_) {
            const std::uint64_t lo = splitmix64(state);
            const std::uint64_t hi = splitmix64(state);
            k = _mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo));
        }
    }
    [[nodiscard]] std::uint64_t operator()(std::uint64_t key) const noexcept {
        __m128i x = _mm_xor_si128(_mm_cvtsi64_si128(static_cast<long long>(key)), round_keys_[0]);
        x = _mm_aesenc_si128(x, round_keys_[1]);
        x = _mm_aesenc_si128(x, round_keys_[2]);
        x = _mm_aesenc_si128(x, round_keys_[3]);
        return static_cast<std::uint64_t>(_mm_cvtsi128_si64(x));
    }
    [[nodiscard]] std::uint64_t seed() const noexcept { return seed_; }

private:
    /// The round keys: splitmix64's sequence from the seed (any seed gives distinct keys).
    static std::uint64_t splitmix64(std::uint64_t& state) noexcept {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }

    __m128i round_keys_[4];
    std::uint64_t seed_;
};
static_assert(key_hasher<aes_key_hash>);
#endif

using default_key_hash = mix_key_hash;

} // namespace splitnet::bridge
