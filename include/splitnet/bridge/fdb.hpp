// SPDX-License-Identifier: MIT
// splitnet/bridge/fdb.hpp: the forwarding database of the learning bridge (MAC + VLAN -> port),
// and the fdb_table concept the pipeline calls. Anchors: Linux net/bridge/br_fdb.c (static
// entries, MAC moves, 300 s ageing off the packet path, "updated" written at most once per
// jiffy), OVS lib/mac-learning.c (fair eviction by port usage), VPP l2fib on bihash_8_8 (u64
// key, bucketized open addressing, coarse timestamps), DPDK rte_hash (bulk lookup + prefetch).
//
// Layout. A power-of-two array of 64-byte buckets, one cache line each, VPP-bihash style:
//
//   | seq u32 | overflow u16 | pad | key[4] u64 | value[4] u32 | stamp[4] u16 |
//
// A key is the packed mac_key (bit 63 set, so 0 marks an empty slot); a value is the port and
// the entry flags; a stamp is the coarse tick the source was last seen. A lookup hashes the key,
// reads one line and compares four full keys: with 8-byte keys a full compare costs what a tag
// compare costs, so there is no control-byte array (a Swiss table would touch two lines: the
// control group and then the slot). bench/bridge/learning_bridge_bench.cpp measures lookups against
// DPDK's rte_hash_lookup_bulk (two candidate buckets of 8 signatures, then the key array).
//
// Collisions. A key lives in its home bucket (hash bits 6 and up, masked: the bucket's byte
// offset is one `and`) or, when that is full, in a following
// bucket (linear probing over buckets). Entries never move once placed, so deletion needs no
// tombstones and no backward shift: each bucket counts the entries that probed past it
// ("overflow", as Folly F14's outbound overflow count), and a lookup stops at the first bucket
// whose count is 0. The table has 4/3 of `capacity` slots or more, so probes are short and an
// insert always finds a free slot.
//
// Concurrency: one writer, any number of lock-free readers.
//  - Writer (one thread at a time; the caller serializes): learn, learn_burst, learn_at,
//    writer_lookup_at, add_static, remove, flush*, age, set_*. It is the only thread that
//    changes keys, values and overflow counts; each bucket change is a seqlock write section
//    (detail/seqlock.hpp) whose key and value stores are atomic_ref stores. Its own reads of
//    keys and values are plain loads (no other thread writes them, and reads do not race with
//    reads), which lets the compiler fold each into its compare.
//  - Readers (any thread, concurrently with the writer): lookup, lookup_burst, lookup_at,
//    refresh_burst, refresh_at. They load keys and values with atomic_ref, never write the
//    bucket except the stamp, never block the writer, and retry a bucket whose count changed
//    under them.
//  - Stamps are relaxed atomics outside the seqlock, written by whoever sees the source (writer
//    or reader), only when the tick changed: at most one store per entry per tick, so the line
//    is not bounced by every packet (Linux "write to used and updated at most once per jiffy").
//    A reader whose slot was reused by the writer in between refreshes the new entry's stamp:
//    harmless, a new entry is fresh anyway.
// A worker that is not the writer calls refresh_burst for its source MACs and hands the misses
// and moves (status needs_writer) to the writer, which calls learn_burst: "per-worker learning
// funnelled to the writer" (learning_bridge's learn_mode::deferred does this).
//
// Hashing once. The bulk calls hash every key in a first loop (and prefetch its bucket), then
// probe. A caller with a pass of its own over the keys (learning_bridge's specialised loop)
// uses the same steps one key at a time: locate() or get_locator() gives a key's home, and the
// *_at calls (hashed_fdb_table) learn or look it up from there without hashing again.
//
// Limits and fairness. `capacity` bounds all entries, `max_learned` the learned ones, and each
// port may have a learn limit. A port at its limit evicts its own oldest entry; when the table
// is at its global limit the port with the most learned entries loses one (OVS): a port flooding
// random source MACs evicts its own entries first, and never takes another port below its share.
// Which entry: each port keeps its entries in learn order; the victim is the least recently seen
// (smallest stamp) of the first eviction_window entries in that order, the earliest on a tie.
// A move re-appends the entry to its new port; a refresh does not reorder (that would be a
// writer operation per packet).
//
// Ageing: stamps are u16 ticks (tick_ns, default 1 s). age() scans a bounded number of buckets
// per call from a cursor, off the packet path; a full sweep must complete at least once per
// ageing time for entries to go in time (and, because stamps wrap, at least every 16384 ticks).
// Static entries never age, never move, and are never evicted.
//
// Errors: construction and set_* throw std::invalid_argument (SPLITNET_THROW) on a bad
// configuration; every data-path call is noexcept, allocation-free and returns a status.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <concepts>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <splitnet/bridge/detail/port_heap.hpp>
#include <splitnet/bridge/detail/seqlock.hpp>
#include <splitnet/bridge/key_hash.hpp>
#include <splitnet/bridge/mac_key.hpp>
#include <splitnet/config.hpp>

namespace splitnet::bridge {

namespace fdb_flag {
inline constexpr std::uint16_t is_static = 0x0001; ///< configured: never ages, moves or is evicted
} // namespace fdb_flag

/// What a lookup found: the port, or no_port on a miss.
struct fdb_result {
    port_id port = no_port;
    std::uint16_t flags = 0; ///< fdb_flag bits

    [[nodiscard]] constexpr bool found() const noexcept { return port != no_port; }
    [[nodiscard]] constexpr bool is_static() const noexcept {
        return (flags & fdb_flag::is_static) != 0;
    }
    friend constexpr bool operator==(const fdb_result&, const fdb_result&) noexcept = default;
};

/// A source seen on a port: what learning consumes.
struct learn_request {
    mac_key key;
    port_id port = no_port;
};

enum class learn_status : std::uint8_t {
    known = 0,      ///< already on this port (stamp refreshed if the tick changed)
    learned,        ///< new entry (possibly after an eviction)
    moved,          ///< entry moved from another port
    refused_static, ///< a static entry holds this key on another port: not moved
    refused_full,   ///< no room and nothing evictable (the table is full of static entries)
    refused_port,   ///< port id not below max_ports, or learning off for it (limit 0 ports)
    needs_writer,   ///< refresh_burst only: unknown or on another port, give it to the writer
};

struct fdb_config {
    std::uint32_t capacity = 8192; ///< entries, static and learned (OVS MAC_DEFAULT_MAX)
    std::uint32_t max_learned = 0; ///< global limit on learned entries; 0 = capacity
    std::uint32_t port_limit = 0;  ///< default per-port learned limit; 0 = none
    std::uint16_t max_ports = 256; ///< port ids are 0 .. max_ports-1
    std::uint64_t ageing_time_ns = 300'000'000'000ULL; ///< Linux BR_DEFAULT_AGEING_TIME; 0 = off
    std::uint64_t tick_ns = 1'000'000'000ULL;          ///< stamp resolution
    std::uint64_t hash_seed = 0; ///< 0 = random per table (std::random_device)
};

/// Table counters (writer-side events; per-packet refreshes are not counted).
struct fdb_stats {
    std::uint64_t learned = 0;            ///< dynamic entries created
    std::uint64_t moved = 0;              ///< dynamic entries moved to another port
    std::uint64_t aged = 0;               ///< dynamic entries removed by age()
    std::uint64_t evicted_port_limit = 0; ///< removed to learn on a port at its limit
    std::uint64_t evicted_table_full = 0; ///< removed by fair eviction at the global limit
    std::uint64_t flushed = 0;            ///< removed by flush, flush_port or remove
    std::uint64_t static_added = 0;       ///< static entries installed
    std::uint64_t refused_static = 0;     ///< moves refused because the entry is static
    std::uint64_t refused_full = 0;       ///< learns refused: no evictable entry
    std::uint64_t refused_port = 0;       ///< learns refused: bad port id
};

/// Per-port counters.
struct fdb_port_stats {
    std::uint64_t learned = 0;   ///< entries created on this port
    std::uint64_t moved_in = 0;  ///< entries that moved to this port
    std::uint64_t moved_out = 0; ///< entries that moved away from this port
    std::uint64_t evicted = 0;   ///< entries of this port removed to make room
    std::uint64_t aged = 0;      ///< entries of this port aged out
};

/// What the pipeline calls on its MAC table: bulk lookups from any worker, learning by the
/// writer, refresh-or-defer by the other workers, ageing and flushing off the packet path.
template <class T>
concept fdb_table =
    requires(T& t, const T& ct, std::span<const mac_key> keys, std::span<fdb_result> res,
             std::span<const learn_request> reqs, std::span<learn_status> st, std::uint64_t now_ns,
             std::size_t budget, port_id port) {
        { ct.lookup_burst(keys, res) } noexcept -> std::same_as<std::uint32_t>;
        { t.learn_burst(reqs, now_ns, st) } noexcept -> std::same_as<std::uint32_t>;
        { t.refresh_burst(reqs, now_ns, st) } noexcept -> std::same_as<std::uint32_t>;
        { t.age(now_ns, budget) } noexcept -> std::same_as<std::size_t>;
        { t.flush_port(port) } noexcept -> std::same_as<std::size_t>;
    };

/// An fdb_table whose per-key operations can be split: locate(key) (or get_locator(), the same
/// as a value) hashes the key and prefetches its bucket, and the *_at calls then learn or look
/// it up without hashing again. A caller that builds its keys in a pass of its own
/// (learning_bridge's specialised loop) hashes each key once there; learning_bridge uses these
/// when its table has them. tick is writer_tick(now_ns) for the writer's learn_at,
/// tick_of(now_ns) for the others, computed once per burst.
template <class T>
concept hashed_fdb_table =
    fdb_table<T> && requires(T& t, const T& ct, mac_key k, typename T::home h, port_id port,
                             std::uint16_t tick, std::uint64_t now_ns) {
        { ct.locate(k) } noexcept -> std::same_as<typename T::home>;
        { ct.get_locator()(k) } noexcept -> std::same_as<typename T::home>;
        { ct.prefetch(h) } noexcept;
        { ct.tick_of(now_ns) } noexcept -> std::same_as<std::uint16_t>;
        { t.writer_tick(now_ns) } noexcept -> std::same_as<std::uint16_t>;
        { ct.lookup_at(k, h) } noexcept -> std::same_as<fdb_result>;
        { ct.writer_lookup_at(k, h) } noexcept -> std::same_as<fdb_result>;
        { t.refresh_at(k, h, port, tick) } noexcept -> std::same_as<learn_status>;
        { t.learn_at(k, h, port, tick) } noexcept -> std::same_as<learn_status>;
    };

namespace detail {

inline constexpr std::uint32_t fdb_slots_per_bucket = 4;

/// The bucket a hash names: hash bits 6 and up, so that the byte offset of the bucket is
/// hash & (mask << 6), one instruction (every hasher's bits are equally good; CRC32C's 32 bits
/// cover the 2^25 buckets of the largest table).
[[nodiscard]] constexpr std::size_t bucket_bits(std::uint64_t h, std::size_t mask) noexcept {
    return static_cast<std::size_t>((h & (std::uint64_t{mask} << 6)) >> 6);
}
inline constexpr std::uint32_t no_slot = std::numeric_limits<std::uint32_t>::max();

struct alignas(64) fdb_bucket {
    std::atomic<std::uint32_t> seq{0};
    std::atomic<std::uint16_t> overflow{0}; ///< entries whose home is here or before, stored after
    std::uint16_t pad_ = 0;
    // Keys and values change only in the writer's seqlock sections, as atomic_ref stores.
    // Readers load them with atomic_ref (a write may be under way); the writer reads them
    // plainly: nothing else writes them, and reads do not race with reads. Plain reads let the
    // compiler fold the load into the compare (one instruction a slot on the probe, about 5 a
    // frame on the bridge). The standard's rule that an object be accessed only through
    // atomic_ref while one refers to it is there for types whose atomic_ref takes a lock; these
    // are lock-free (asserted below), and TSan checks the pattern in fdb_concurrency_test.
    std::array<std::uint64_t, fdb_slots_per_bucket> keys{};
    std::array<std::uint32_t, fdb_slots_per_bucket> values{};
    /// Written by any thread that sees the source (touch), so atomic for everyone.
    std::array<std::atomic<std::uint16_t>, fdb_slots_per_bucket> stamps{};
};
static_assert(sizeof(fdb_bucket) == 64, "one bucket is one cache line");
static_assert(std::atomic<std::uint16_t>::is_always_lock_free &&
              std::atomic_ref<std::uint64_t>::is_always_lock_free &&
              std::atomic_ref<std::uint32_t>::is_always_lock_free);
static_assert(alignof(std::uint64_t) >= std::atomic_ref<std::uint64_t>::required_alignment &&
              alignof(std::uint32_t) >= std::atomic_ref<std::uint32_t>::required_alignment);

/// A reader's load of a key or value (relaxed: the seqlock orders it).
template <class T>
[[nodiscard]] inline T shared_load(T& x) noexcept {
    return std::atomic_ref<T>(x).load(std::memory_order_relaxed);
}
/// The writer's store of a key or value (relaxed, inside a seqlock write section).
template <class T>
inline void shared_store(T& x, T v) noexcept {
    std::atomic_ref<T>(x).store(v, std::memory_order_relaxed);
}

[[nodiscard]] constexpr std::uint32_t encode(port_id p, std::uint16_t flags) noexcept {
    return std::uint32_t{p} | (std::uint32_t{flags} << 16);
}
[[nodiscard]] constexpr fdb_result decode(std::uint32_t v) noexcept {
    return {static_cast<port_id>(v), static_cast<std::uint16_t>(v >> 16)};
}

} // namespace detail

template <key_hasher Hash = default_key_hash>
class fdb {
public:
    using hasher = Hash;
    /// Keys hashed and prefetched ahead in one pass of the bulk calls (DPDK's lookup_bulk max).
    static constexpr std::size_t burst_chunk = 64;
    /// Candidates examined from the head of a port's learn order to pick an eviction victim.
    static constexpr std::uint32_t eviction_window = 4;
    /// Largest ageing time, in ticks, that the 16-bit stamps can measure safely.
    static constexpr std::uint64_t max_ageing_ticks = 16384;

    explicit fdb(const fdb_config& cfg = {})
        : cfg_(check(cfg)), hash_(pick_seed(cfg.hash_seed)), heap_(cfg.max_ports) {
        const std::uint64_t want_slots = std::uint64_t{cfg_.capacity} + cfg_.capacity / 3 + 1;
        n_buckets_ = std::max<std::uint64_t>(
            2, std::bit_ceil((want_slots + detail::fdb_slots_per_bucket - 1) /
                             detail::fdb_slots_per_bucket));
        mask_ = n_buckets_ - 1;
        buckets_ = std::make_unique<detail::fdb_bucket[]>(n_buckets_);
        links_ = std::make_unique<link[]>(n_buckets_ * detail::fdb_slots_per_bucket);
        ports_.assign(cfg_.max_ports, port_list{});
        for (auto& p : ports_) {
            p.limit = cfg_.port_limit;
        }
        port_stats_.assign(cfg_.max_ports, fdb_port_stats{});
        max_learned_ = cfg_.max_learned == 0 ? cfg_.capacity : cfg_.max_learned;
        set_ageing_time(cfg_.ageing_time_ns);
    }

    fdb(const fdb&) = delete;
    fdb& operator=(const fdb&) = delete;

    /// Where a key's probe starts: its home bucket, found by hashing the key once (locate).
    /// Valid for the table's lifetime (the bucket array never moves); the *_at calls take it.
    /// Trivial, so that arrays of it cost nothing to declare.
    class home {
    public:
        home() noexcept = default;

    private:
        friend class fdb;
        explicit home(detail::fdb_bucket* b) noexcept : bucket_(b) {}
        detail::fdb_bucket* bucket_;
    };

    // ---- readers: any thread, concurrently with the writer -------------------------------

    /// Looks up every key; writes out[i] (no_port on a miss). Returns the number of hits.
    [[nodiscard]] std::uint32_t lookup_burst(std::span<const mac_key> keys,
                                             std::span<fdb_result> out) const noexcept {
        const std::size_t n = std::min(keys.size(), out.size());
        std::uint32_t hits = 0;
        std::array<home, burst_chunk> h;
        for (std::size_t base = 0; base < n; base += burst_chunk) {
            const std::size_t m = std::min(burst_chunk, n - base);
            for (std::size_t i = 0; i < m; ++i) {
                h[i] = locate(keys[base + i]);
            }
            for (std::size_t i = 0; i < m; ++i) {
                const found f = find_concurrent(keys[base + i].value, index_of(h[i]));
                out[base + i] = detail::decode(f.value);
                hits += f.slot != detail::no_slot ? 1U : 0U;
            }
        }
        return hits;
    }

    [[nodiscard]] fdb_result lookup(mac_key key) const noexcept {
        return detail::decode(find_concurrent(key.value, home_index(key.value)).value);
    }

    /// For a worker that is not the writer: refreshes the stamp of each source already known on
    /// its port (status known) and marks the others needs_writer, to be passed to learn_burst by
    /// the writer. Returns the number marked needs_writer.
    [[nodiscard]] std::uint32_t refresh_burst(std::span<const learn_request> req,
                                              std::uint64_t now_ns,
                                              std::span<learn_status> st) noexcept {
        const std::uint16_t tick = tick_of(now_ns);
        const std::size_t n = std::min(req.size(), st.size());
        std::uint32_t deferred = 0;
        std::array<home, burst_chunk> h;
        for (std::size_t base = 0; base < n; base += burst_chunk) {
            const std::size_t m = std::min(burst_chunk, n - base);
            for (std::size_t i = 0; i < m; ++i) {
                h[i] = locate(req[base + i].key);
            }
            for (std::size_t i = 0; i < m; ++i) {
                const learn_request& r = req[base + i];
                const learn_status s = refresh_at(r.key, h[i], r.port, tick);
                st[base + i] = s;
                deferred += s == learn_status::needs_writer ? 1U : 0U;
            }
        }
        return deferred;
    }

    // ---- located entry points (hashed_fdb_table) ---------------------------------------------
    // The per-key steps of the bulk calls, for a caller that hashes its keys in a pass of its
    // own (locate, which also prefetches the bucket) and learns or looks them up later, one key
    // at a time. Each takes locate(key) of the same key.

    /// The key's home bucket: hashes the key and starts loading the bucket. Any thread.
    [[nodiscard]] home locate(mac_key key) const noexcept {
        const home h = get_locator()(key);
        prefetch(h);
        return h;
    }

    /// locate() as a small value (the hasher, the bucket array, the mask): a loop that locates
    /// many keys keeps it in registers whatever else the loop stores.
    class locator {
    public:
        /// The home of key, without prefetching (for a probe that follows at once).
        [[gnu::always_inline]] [[nodiscard]] home operator()(mac_key key) const noexcept {
            return home(buckets_ + detail::bucket_bits(hash_(key.value), mask_));
        }

    private:
        friend class fdb;
        locator(const Hash& h, detail::fdb_bucket* b, std::size_t mask) noexcept
            : hash_(h), buckets_(b), mask_(mask) {}
        Hash hash_;
        detail::fdb_bucket* buckets_;
        std::size_t mask_;
    };
    [[nodiscard]] locator get_locator() const noexcept {
        return locator(hash_, buckets_.get(), mask_);
    }
    /// Starts loading h's bucket into the cache (for a probe some work later). Any thread.
    static void prefetch(home h) noexcept { SPLITNET_PREFETCH(h.bucket_); }
    /// lookup(key). Any thread, concurrently with the writer.
    [[gnu::always_inline]] [[nodiscard]] fdb_result lookup_at(mac_key key, home h) const noexcept {
        return detail::decode(find_concurrent(key.value, index_of(h)).value);
    }
    /// lookup(key) on the writer's own thread: nothing changes under the writer, so no seqlock
    /// (learning_bridge in learn_mode::direct). Writer thread only.
    [[gnu::always_inline]] [[nodiscard]] fdb_result writer_lookup_at(mac_key key,
                                                                     home h) const noexcept {
        if (SPLITNET_UNLIKELY(!key.valid())) {
            return {}; // 0 would match an empty slot
        }
        detail::fdb_bucket& bk = *h.bucket_;
        return in_bucket(
            bk, key.value, [&](auto j) { return detail::decode(bk.values[j]); },
            [&] { return writer_lookup_beyond(key.value, h); });
    }
    /// One source of refresh_burst, with tick == tick_of(now_ns): known (stamp refreshed) or
    /// needs_writer. Any thread.
    [[gnu::always_inline]] [[nodiscard]] learn_status refresh_at(mac_key key, home h, port_id port,
                                                                 std::uint16_t tick) noexcept {
        const found f = find_concurrent(key.value, index_of(h));
        if (SPLITNET_LIKELY(f.slot != detail::no_slot && detail::decode(f.value).port == port)) {
            touch(f.slot, tick);
            return learn_status::known;
        }
        return learn_status::needs_writer;
    }
    /// tick_of(now_ns), recorded as the latest time the writer was given (add_static compares
    /// stamps with it to pick an eviction victim). Writer thread, once per burst of learn_at.
    [[nodiscard]] std::uint16_t writer_tick(std::uint64_t now_ns) noexcept {
        last_tick_ = tick_of(now_ns);
        return last_tick_;
    }
    /// One source of learn_burst, with tick == writer_tick(now_ns). Writer thread. The common case,
    /// a source known on its port, stays inline: a probe and at most one stamp store; learning,
    /// moves and refusals are out of line.
    [[gnu::always_inline]] [[nodiscard]] learn_status learn_at(mac_key key, home h, port_id port,
                                                               std::uint16_t tick) noexcept {
        // An invalid key must not probe (0 would match an empty slot); a bad port cannot match a
        // stored entry. learn_change refuses both.
        if (SPLITNET_UNLIKELY(!key.valid())) {
            return learn_change(key, index_of(h), port, tick, detail::no_slot);
        }
        detail::fdb_bucket& bk = *h.bucket_;
        return in_bucket(
            bk, key.value,
            [&](auto j) {
                if (SPLITNET_LIKELY(detail::decode(bk.values[j]).port == port)) {
                    touch(bk.stamps[j], tick);
                    return learn_status::known;
                }
                return learn_change(key, index_of(h), port, tick, slot_of({&bk, j}));
            },
            [&] { return learn_beyond(key, h, port, tick); });
    }

    // ---- writer: one thread at a time ----------------------------------------------------

    /// Learns each (source, port): refreshes known entries, creates new ones (evicting as the
    /// limits say), moves entries that changed port. Returns how many were learned or moved.
    [[nodiscard]] std::uint32_t learn_burst(std::span<const learn_request> req,
                                            std::uint64_t now_ns,
                                            std::span<learn_status> st) noexcept {
        const std::uint16_t tick = writer_tick(now_ns);
        const std::size_t n = std::min(req.size(), st.size());
        std::uint32_t changed = 0;
        std::array<home, burst_chunk> h;
        for (std::size_t base = 0; base < n; base += burst_chunk) {
            const std::size_t m = std::min(burst_chunk, n - base);
            for (std::size_t i = 0; i < m; ++i) {
                h[i] = locate(req[base + i].key);
            }
            for (std::size_t i = 0; i < m; ++i) {
                const learn_status s = learn_at(req[base + i].key, h[i], req[base + i].port, tick);
                st[base + i] = s;
                changed += (s == learn_status::learned || s == learn_status::moved) ? 1U : 0U;
            }
        }
        return changed;
    }

    [[nodiscard]] learn_status learn(mac_key key, port_id port, std::uint64_t now_ns) noexcept {
        return learn_at(key, locate(key), port, writer_tick(now_ns));
    }

    /// Installs or replaces a static entry (it takes over a dynamic entry of the same key). At
    /// capacity a learned entry of the largest port is evicted (stamps compared with the latest
    /// tick the writer saw). Returns false for a bad port or key, or a table full of statics.
    [[nodiscard]] bool add_static(mac_key key, port_id port) noexcept {
        if (port >= cfg_.max_ports || !key.valid()) {
            return false;
        }
        const std::size_t h = home_index(key.value);
        std::uint32_t slot = find_writer(key.value, h);
        const std::uint32_t value = detail::encode(port, fdb_flag::is_static);
        if (slot != detail::no_slot) {
            const fdb_result old = detail::decode(value_at(slot));
            if (!old.is_static()) {
                unlink(slot, old.port);
                --n_learned_;
                ++n_static_;
            }
            write_value(slot, value, 0);
        } else {
            if (size() >= cfg_.capacity) {
                const port_id victim = heap_.max_port();
                if (heap_.count(victim) == 0) {
                    return false;
                }
                evict(victim, last_tick_, stats_.evicted_table_full);
            }
            slot = insert_slot(key.value, h, value, 0);
            ++n_static_;
        }
        ++stats_.static_added;
        return true;
    }

    /// Removes the entry for key (static or learned). Returns whether there was one.
    bool remove(mac_key key) noexcept {
        const std::uint32_t slot = find_writer(key.value, home_index(key.value));
        if (slot == detail::no_slot) {
            return false;
        }
        drop(slot);
        ++stats_.flushed;
        return true;
    }

    /// Removes the learned entries of a port (and its static ones with include_static, which
    /// scans the table). Returns the number removed.
    std::size_t flush_port(port_id port, bool include_static) noexcept {
        if (port >= cfg_.max_ports) {
            return 0;
        }
        std::size_t n = 0;
        while (ports_[port].head != detail::no_slot) {
            drop(ports_[port].head);
            ++n;
        }
        if (include_static) {
            for (std::uint32_t s = 0; s < n_slots(); ++s) {
                const std::uint64_t k = key_at(s);
                if (k != 0 && detail::decode(value_at(s)).port == port) {
                    drop(s);
                    ++n;
                }
            }
        }
        stats_.flushed += n;
        return n;
    }
    std::size_t flush_port(port_id port) noexcept { return flush_port(port, false); }

    /// Removes every learned entry. Returns the number removed.
    std::size_t flush() noexcept {
        std::size_t n = 0;
        for (port_id p = 0; p < cfg_.max_ports; ++p) {
            n += flush_port(p, false);
        }
        return n;
    }

    /// Ages out learned entries not seen for the ageing time, scanning at most max_buckets
    /// buckets from where the previous call stopped. Returns the number removed.
    std::size_t age(std::uint64_t now_ns, std::size_t max_buckets) noexcept {
        if (ageing_ticks_ == 0) {
            return 0;
        }
        const std::uint16_t tick = tick_of(now_ns);
        last_tick_ = tick;
        const std::size_t n = std::min<std::size_t>(max_buckets, n_buckets_);
        std::size_t aged = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t b = age_cursor_;
            age_cursor_ = (age_cursor_ + 1) & mask_;
            for (std::uint32_t j = 0; j < detail::fdb_slots_per_bucket; ++j) {
                const auto slot = static_cast<std::uint32_t>(b * detail::fdb_slots_per_bucket + j);
                if (key_at(slot) == 0) {
                    continue;
                }
                const fdb_result r = detail::decode(value_at(slot));
                if (r.is_static() || age_of(slot, tick) < ageing_ticks_) {
                    continue;
                }
                ++port_stats_[r.port].aged;
                drop(slot);
                ++aged;
            }
        }
        stats_.aged += aged;
        return aged;
    }
    /// One full sweep.
    std::size_t age_all(std::uint64_t now_ns) noexcept { return age(now_ns, n_buckets_); }

    /// Sets the learned-entry limit of a port (0 = none). Lowering it below the port's current
    /// count does not evict at once: the next learn on that port evicts down to the limit.
    void set_port_limit(port_id port, std::uint32_t limit) {
        if (port >= cfg_.max_ports) {
            SPLITNET_THROW(std::invalid_argument(
                "fdb::set_port_limit: port " + std::to_string(port) + " is not below max_ports " +
                std::to_string(cfg_.max_ports) + "; raise fdb_config::max_ports"));
        }
        ports_[port].limit = limit;
    }

    /// Changes the ageing time (0 = off).
    void set_ageing_time(std::uint64_t ns) {
        const std::uint64_t ticks = (ns + cfg_.tick_ns - 1) / cfg_.tick_ns;
        if (ticks > max_ageing_ticks) {
            SPLITNET_THROW(std::invalid_argument(
                "fdb: ageing time " + std::to_string(ns) + " ns is " + std::to_string(ticks) +
                " ticks of " + std::to_string(cfg_.tick_ns) + " ns; at most " +
                std::to_string(max_ageing_ticks) + " ticks fit the 16-bit stamps: raise tick_ns"));
        }
        cfg_.ageing_time_ns = ns;
        ageing_ticks_ = static_cast<std::uint32_t>(ticks);
    }

    /// Visits every entry: fn(mac_key, fdb_result, std::uint16_t stamp). Writer thread.
    template <class Fn>
    void for_each(Fn&& fn) const {
        for (std::uint32_t s = 0; s < n_slots(); ++s) {
            const std::uint64_t k = key_at(s);
            if (k != 0) {
                fn(mac_key{k}, detail::decode(value_at(s)), stamp_at(s));
            }
        }
    }

    // ---- observers -------------------------------------------------------------------------

    [[nodiscard]] std::uint16_t tick_of(std::uint64_t now_ns) const noexcept {
        return static_cast<std::uint16_t>(now_ns / cfg_.tick_ns);
    }
    [[nodiscard]] std::uint32_t ageing_ticks() const noexcept { return ageing_ticks_; }
    [[nodiscard]] std::uint32_t capacity() const noexcept { return cfg_.capacity; }
    [[nodiscard]] std::uint32_t max_learned() const noexcept { return max_learned_; }
    [[nodiscard]] std::uint16_t max_ports() const noexcept { return cfg_.max_ports; }
    [[nodiscard]] std::uint32_t size() const noexcept { return n_learned_ + n_static_; }
    [[nodiscard]] std::uint32_t learned_count() const noexcept { return n_learned_; }
    [[nodiscard]] std::uint32_t static_count() const noexcept { return n_static_; }
    [[nodiscard]] std::uint32_t port_entries(port_id p) const noexcept {
        return p < cfg_.max_ports ? heap_.count(p) : 0;
    }
    [[nodiscard]] std::uint32_t port_limit(port_id p) const noexcept {
        return p < cfg_.max_ports ? ports_[p].limit : 0;
    }
    [[nodiscard]] std::size_t bucket_count() const noexcept { return n_buckets_; }
    [[nodiscard]] std::size_t memory_bytes() const noexcept {
        return n_buckets_ *
               (sizeof(detail::fdb_bucket) + detail::fdb_slots_per_bucket * sizeof(link));
    }
    [[nodiscard]] const fdb_stats& stats() const noexcept { return stats_; }
    [[nodiscard]] const fdb_port_stats& port_stats(port_id p) const noexcept {
        return port_stats_[p];
    }
    [[nodiscard]] const hasher& hash_function() const noexcept { return hash_; }

private:
    struct found {
        std::uint32_t slot = detail::no_slot;
        std::uint32_t value = detail::encode(no_port, 0);
    };
    struct link {
        std::uint32_t prev = detail::no_slot;
        std::uint32_t next = detail::no_slot;
    };
    struct port_list {
        std::uint32_t head = detail::no_slot; ///< oldest learned
        std::uint32_t tail = detail::no_slot; ///< newest learned
        std::uint32_t limit = 0;
    };

    static const fdb_config& check(const fdb_config& c) {
        if (c.capacity == 0 || c.capacity > (1U << 26)) {
            SPLITNET_THROW(std::invalid_argument(
                "fdb: capacity " + std::to_string(c.capacity) +
                " is outside 1 .. 67108864 entries; size it for the MACs the bridge must hold"));
        }
        if (c.max_learned > c.capacity) {
            SPLITNET_THROW(
                std::invalid_argument("fdb: max_learned " + std::to_string(c.max_learned) +
                                      " exceeds capacity " + std::to_string(c.capacity)));
        }
        if (c.max_ports == 0 || c.max_ports == no_port) {
            SPLITNET_THROW(std::invalid_argument("fdb: max_ports must be 1 .. 65534, got " +
                                                 std::to_string(c.max_ports)));
        }
        if (c.tick_ns == 0) {
            SPLITNET_THROW(std::invalid_argument("fdb: tick_ns must not be 0 (default 1 s)"));
        }
        return c;
    }
    static std::uint64_t pick_seed(std::uint64_t seed) {
        if (seed != 0) {
            return seed;
        }
        std::random_device rd;
        return (std::uint64_t{rd()} << 32) | rd();
    }

    [[nodiscard]] std::uint32_t n_slots() const noexcept {
        return static_cast<std::uint32_t>(n_buckets_ * detail::fdb_slots_per_bucket);
    }
    [[nodiscard]] detail::fdb_bucket& bucket_of(std::uint32_t slot) const noexcept {
        return buckets_[slot / detail::fdb_slots_per_bucket];
    }
    [[nodiscard]] std::uint64_t key_at(std::uint32_t slot) const noexcept {
        return bucket_of(slot).keys[slot % detail::fdb_slots_per_bucket];
    }
    [[nodiscard]] std::uint32_t value_at(std::uint32_t slot) const noexcept {
        return bucket_of(slot).values[slot % detail::fdb_slots_per_bucket];
    }
    [[nodiscard]] std::uint16_t stamp_at(std::uint32_t slot) const noexcept {
        return bucket_of(slot).stamps[slot % detail::fdb_slots_per_bucket].load(
            std::memory_order_relaxed);
    }
    /// Ticks since the entry was last seen; a stamp ahead of `tick` (a worker whose clock runs
    /// slightly ahead) counts as 0.
    [[nodiscard]] std::uint32_t age_of(std::uint32_t slot, std::uint16_t tick) const noexcept {
        const auto d = static_cast<std::int16_t>(static_cast<std::uint16_t>(tick - stamp_at(slot)));
        return d < 0 ? 0U : static_cast<std::uint32_t>(d);
    }
    /// Stamp refresh: a store only when the tick changed (any thread).
    void touch(std::uint32_t slot, std::uint16_t tick) const noexcept {
        touch(bucket_of(slot).stamps[slot % detail::fdb_slots_per_bucket], tick);
    }
    static void touch(std::atomic<std::uint16_t>& st, std::uint16_t tick) noexcept {
        if (st.load(std::memory_order_relaxed) != tick) {
            st.store(tick, std::memory_order_relaxed);
        }
    }

    /// Where key sits in bucket bk: 0 .. 3, or fdb_slots_per_bucket when it is not there. Four
    /// compares written out: entries fill a bucket from slot 0, so most hits take one or two.
    /// Shared: a reader's (atomic loads); otherwise the writer's (plain loads).
    template <bool Shared>
    [[gnu::always_inline]] [[nodiscard]] static std::uint32_t slot_in(detail::fdb_bucket& bk,
                                                                      std::uint64_t key) noexcept {
        static_assert(detail::fdb_slots_per_bucket == 4);
        const auto at = [&](std::size_t j) {
            return Shared ? detail::shared_load(bk.keys[j]) : bk.keys[j];
        };
        if (at(0) == key) {
            return 0;
        }
        if (at(1) == key) {
            return 1;
        }
        if (at(2) == key) {
            return 2;
        }
        if (at(3) == key) {
            return 3;
        }
        return detail::fdb_slots_per_bucket;
    }

    [[nodiscard]] std::size_t home_index(std::uint64_t key) const noexcept {
        return detail::bucket_bits(hash_(key), mask_);
    }
    [[nodiscard]] std::size_t index_of(home h) const noexcept {
        return static_cast<std::size_t>(h.bucket_ - buckets_.get());
    }

    /// Where key sits in bucket bk, for the writer: returns hit(J), J the slot as a
    /// std::integral_constant (so that each slot's code uses constant offsets), or miss() when
    /// it is in none of the four.
    template <class Hit, class Miss>
    [[gnu::always_inline]] static auto in_bucket(const detail::fdb_bucket& bk, std::uint64_t key,
                                                 Hit&& hit, Miss&& miss) noexcept {
        static_assert(detail::fdb_slots_per_bucket == 4);
        if (bk.keys[0] == key) {
            return hit(std::integral_constant<std::uint32_t, 0>{});
        }
        if (bk.keys[1] == key) {
            return hit(std::integral_constant<std::uint32_t, 1>{});
        }
        if (bk.keys[2] == key) {
            return hit(std::integral_constant<std::uint32_t, 2>{});
        }
        if (bk.keys[3] == key) {
            return hit(std::integral_constant<std::uint32_t, 3>{});
        }
        return miss();
    }

    /// writer_lookup_at past the home bucket: the overflow walk.
    [[gnu::noinline]] fdb_result writer_lookup_beyond(std::uint64_t key, home h) const noexcept {
        std::size_t b = index_of(h);
        for (std::size_t probes = 1; probes < n_buckets_; ++probes) {
            if (buckets_[b].overflow.load(std::memory_order_relaxed) == 0) {
                return {};
            }
            b = (b + 1) & mask_;
            detail::fdb_bucket& bk = buckets_[b];
            const std::uint32_t j = slot_in<false>(bk, key);
            if (j < detail::fdb_slots_per_bucket) {
                return detail::decode(bk.values[j]);
            }
        }
        return {};
    }
    /// learn_at past the home bucket: the overflow walk, then learn_change.
    [[gnu::noinline]] learn_status learn_beyond(mac_key key, home h, port_id port,
                                                std::uint16_t tick) noexcept {
        const entry_ref e = h.bucket_->overflow.load(std::memory_order_relaxed) == 0
                                ? entry_ref{}
                                : find_overflow(key.value, index_of(h));
        if (e.bucket != nullptr && detail::decode(e.bucket->values[e.j]).port == port) {
            touch(e.bucket->stamps[e.j], tick);
            return learn_status::known;
        }
        return learn_change(key, index_of(h), port, tick, slot_of(e));
    }

    /// Reader-side probe from bucket b: the seqlock makes the key and value a consistent pair.
    [[gnu::always_inline]] [[nodiscard]] found find_concurrent(std::uint64_t key,
                                                               std::size_t b) const noexcept {
        if (SPLITNET_UNLIKELY((key & mac_key::valid_bit) == 0)) {
            return {}; // not a key: 0 would match an empty slot
        }
        std::size_t probes = 0;
        do {
            detail::fdb_bucket& bk = buckets_[b];
            for (;;) {
                const std::uint32_t s = detail::read_begin(bk.seq);
                const std::uint32_t j = slot_in<true>(bk, key);
                const std::uint32_t v =
                    j < detail::fdb_slots_per_bucket ? detail::shared_load(bk.values[j]) : 0;
                // Overflow is read before A2 (inside read_valid): a count the writer raised
                // with release after placing an entry further on makes that entry visible.
                const std::uint16_t overflow = bk.overflow.load(std::memory_order_relaxed);
                if (SPLITNET_UNLIKELY(!detail::read_valid(bk.seq, s))) {
                    continue;
                }
                if (j < detail::fdb_slots_per_bucket) {
                    return {static_cast<std::uint32_t>(b * detail::fdb_slots_per_bucket + j), v};
                }
                if (overflow == 0) {
                    return {};
                }
                break;
            }
            b = (b + 1) & mask_;
        } while (++probes < n_buckets_);
        return {};
    }

    /// An entry found by the writer's probe: its bucket and index there (bucket null: absent).
    struct entry_ref {
        detail::fdb_bucket* bucket = nullptr;
        std::uint32_t j = 0;
    };

    /// Writer-side probe from the home bucket bk: nothing changes under the writer, so no
    /// seqlock. The home bucket is the common case; the overflow walk is a loop of its own.
    [[gnu::always_inline]] [[nodiscard]] entry_ref find_ref(std::uint64_t key,
                                                            detail::fdb_bucket* bk) const noexcept {
        const std::uint32_t j = slot_in<false>(*bk, key);
        if (SPLITNET_LIKELY(j < detail::fdb_slots_per_bucket)) {
            return {bk, j};
        }
        if (SPLITNET_LIKELY(bk->overflow.load(std::memory_order_relaxed) == 0)) {
            return {};
        }
        return find_overflow(key, static_cast<std::size_t>(bk - buckets_.get()));
    }
    [[gnu::noinline]] entry_ref find_overflow(std::uint64_t key, std::size_t b) const noexcept {
        for (std::size_t probes = 1; probes < n_buckets_; ++probes) {
            b = (b + 1) & mask_;
            detail::fdb_bucket& bk = buckets_[b];
            const std::uint32_t j = slot_in<false>(bk, key);
            if (j < detail::fdb_slots_per_bucket) {
                return {&bk, j};
            }
            if (bk.overflow.load(std::memory_order_relaxed) == 0) {
                return {};
            }
        }
        return {};
    }
    [[nodiscard]] std::uint32_t find_writer(std::uint64_t key, std::size_t b) const noexcept {
        if ((key & mac_key::valid_bit) == 0) {
            return detail::no_slot; // not a key: 0 would match an empty slot
        }
        return slot_of(find_ref(key, &buckets_[b]));
    }
    [[nodiscard]] std::uint32_t slot_of(entry_ref e) const noexcept {
        return e.bucket == nullptr ? detail::no_slot
                                   : static_cast<std::uint32_t>(e.bucket - buckets_.get()) *
                                             detail::fdb_slots_per_bucket +
                                         e.j;
    }

    /// learn_at's other outcomes: slot is where find_ref found the key (no_slot: new); h is the
    /// key's home bucket.
    [[gnu::noinline]] learn_status learn_change(mac_key key, std::size_t h, port_id port,
                                                std::uint16_t tick, std::uint32_t slot) noexcept {
        if (SPLITNET_UNLIKELY(port >= cfg_.max_ports || !key.valid())) {
            ++stats_.refused_port;
            return learn_status::refused_port;
        }
        if (slot == detail::no_slot) {
            return insert_learned(key, h, port, tick);
        }
        const fdb_result r = detail::decode(value_at(slot));
        if (r.is_static()) {
            ++stats_.refused_static;
            return learn_status::refused_static;
        }
        return move(slot, r.port, port, tick);
    }

    learn_status insert_learned(mac_key key, std::size_t h, port_id port,
                                std::uint16_t tick) noexcept {
        if (!make_room(port, tick)) {
            ++stats_.refused_full;
            return learn_status::refused_full;
        }
        const std::uint32_t slot = insert_slot(key.value, h, detail::encode(port, 0), tick);
        append(slot, port);
        ++n_learned_;
        ++stats_.learned;
        ++port_stats_[port].learned;
        return learn_status::learned;
    }

    /// Evicts as the limits require before `port` gains a learned entry.
    bool make_room(port_id port, std::uint16_t tick) noexcept {
        const port_list& pl = ports_[port];
        if (pl.limit != 0 && heap_.count(port) >= pl.limit) {
            while (heap_.count(port) >= pl.limit) { // a lowered limit evicts down to it
                evict(port, tick, stats_.evicted_port_limit);
            }
            return true;
        }
        if (n_learned_ >= max_learned_ || size() >= cfg_.capacity) {
            // OVS fairness: the port holding the most entries gives one up; the learning port
            // itself when it is among the largest.
            const port_id victim = heap_.count(port) == heap_.max_count() ? port : heap_.max_port();
            if (heap_.count(victim) == 0) {
                return false;
            }
            evict(victim, tick, stats_.evicted_table_full);
        }
        return true;
    }

    learn_status move(std::uint32_t slot, port_id from, port_id to, std::uint16_t tick) noexcept {
        const port_list& pl = ports_[to];
        while (pl.limit != 0 && heap_.count(to) >= pl.limit) {
            evict(to, tick, stats_.evicted_port_limit);
        }
        unlink(slot, from);
        write_value(slot, detail::encode(to, 0), tick);
        append(slot, to);
        ++stats_.moved;
        ++port_stats_[from].moved_out;
        ++port_stats_[to].moved_in;
        return learn_status::moved;
    }

    /// Removes the least recently seen of the first eviction_window entries of a port.
    void evict(port_id port, std::uint16_t tick, std::uint64_t& counter) noexcept {
        std::uint32_t victim = ports_[port].head;
        std::uint32_t oldest = 0;
        std::uint32_t s = victim;
        for (std::uint32_t i = 0; i < eviction_window && s != detail::no_slot; ++i) {
            const std::uint32_t a = age_of(s, tick);
            if (a > oldest) {
                oldest = a;
                victim = s;
            }
            s = links_[s].next;
        }
        ++counter;
        ++port_stats_[port].evicted;
        drop(victim);
    }

    /// Places a new entry whose home bucket is h; the caller has checked that there is room.
    std::uint32_t insert_slot(std::uint64_t key, std::size_t h, std::uint32_t value,
                              std::uint16_t tick) noexcept {
        std::size_t b = h;
        for (std::size_t probes = 0; probes < n_buckets_; ++probes) {
            detail::fdb_bucket& bk = buckets_[b];
            for (std::uint32_t j = 0; j < detail::fdb_slots_per_bucket; ++j) {
                if (bk.keys[j] != 0) {
                    continue;
                }
                detail::write_begin(bk.seq);
                detail::shared_store(bk.keys[j], key);
                detail::shared_store(bk.values[j], value);
                bk.stamps[j].store(tick, std::memory_order_relaxed);
                detail::write_end(bk.seq);
                // The entry is complete before the overflow counts that lead readers to it
                // rise (release; readers load them before their A2 fence).
                for (std::size_t o = h; o != b; o = (o + 1) & mask_) {
                    auto& c = buckets_[o].overflow;
                    const std::uint16_t v = c.load(std::memory_order_relaxed);
                    if (v != std::numeric_limits<std::uint16_t>::max()) { // saturated: stays
                        c.store(static_cast<std::uint16_t>(v + 1), std::memory_order_release);
                    }
                }
                return static_cast<std::uint32_t>(b * detail::fdb_slots_per_bucket + j);
            }
            b = (b + 1) & mask_;
        }
        return detail::no_slot; // unreachable: the table has more slots than capacity
    }

    /// Removes an entry (static or learned) and its bookkeeping.
    void drop(std::uint32_t slot) noexcept {
        const fdb_result r = detail::decode(value_at(slot));
        if (r.is_static()) {
            --n_static_;
        } else {
            unlink(slot, r.port);
            --n_learned_;
        }
        detail::fdb_bucket& bk = bucket_of(slot);
        const std::uint32_t j = slot % detail::fdb_slots_per_bucket;
        const std::uint64_t key = bk.keys[j];
        detail::write_begin(bk.seq);
        detail::shared_store(bk.keys[j], std::uint64_t{0});
        detail::shared_store(bk.values[j], std::uint32_t{0});
        detail::write_end(bk.seq);
        const std::size_t b = slot / detail::fdb_slots_per_bucket;
        for (std::size_t o = home_index(key); o != b; o = (o + 1) & mask_) {
            auto& c = buckets_[o].overflow;
            const std::uint16_t v = c.load(std::memory_order_relaxed);
            if (v != std::numeric_limits<std::uint16_t>::max()) {
                c.store(static_cast<std::uint16_t>(v - 1), std::memory_order_relaxed);
            }
        }
    }

    void write_value(std::uint32_t slot, std::uint32_t value, std::uint16_t tick) noexcept {
        detail::fdb_bucket& bk = bucket_of(slot);
        const std::uint32_t j = slot % detail::fdb_slots_per_bucket;
        detail::write_begin(bk.seq);
        detail::shared_store(bk.values[j], value);
        bk.stamps[j].store(tick, std::memory_order_relaxed);
        detail::write_end(bk.seq);
    }

    void append(std::uint32_t slot, port_id port) noexcept {
        port_list& pl = ports_[port];
        links_[slot] = {pl.tail, detail::no_slot};
        if (pl.tail != detail::no_slot) {
            links_[pl.tail].next = slot;
        } else {
            pl.head = slot;
        }
        pl.tail = slot;
        heap_.increment(port);
    }
    void unlink(std::uint32_t slot, port_id port) noexcept {
        port_list& pl = ports_[port];
        const link l = links_[slot];
        (l.prev != detail::no_slot ? links_[l.prev].next : pl.head) = l.next;
        (l.next != detail::no_slot ? links_[l.next].prev : pl.tail) = l.prev;
        heap_.decrement(port);
    }

    fdb_config cfg_;
    Hash hash_;
    std::size_t n_buckets_ = 0;
    std::size_t mask_ = 0;
    std::unique_ptr<detail::fdb_bucket[]> buckets_;
    // Writer-only state, kept off the bucket lines that readers share.
    std::unique_ptr<link[]> links_;
    std::vector<port_list> ports_;
    std::vector<fdb_port_stats> port_stats_;
    detail::port_heap heap_;
    std::uint32_t n_learned_ = 0;
    std::uint32_t n_static_ = 0;
    std::uint32_t max_learned_ = 0;
    std::uint32_t ageing_ticks_ = 0;
    std::size_t age_cursor_ = 0;
    std::uint16_t last_tick_ = 0; ///< latest tick the writer was given (add_static's evictions)
    fdb_stats stats_;
};
static_assert(hashed_fdb_table<fdb<>>);

} // namespace splitnet::bridge
