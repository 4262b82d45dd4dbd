// SPDX-License-Identifier: MIT
// splitnet/packet/buffer_pool.hpp: a fixed arena of fixed-size packet buffers.
//
// Layout: one page-aligned arena of frame_count * frame_size bytes, mapped by the pool or given
// to it (pages of a shared_region that a peer process also maps); buffer i starts at arena
// address i * frame_size. frame_size is a power of two, so an AF_XDP UMEM in aligned mode can be
// this very arena (chunk size = frame_size, UMEM address = buffer address). Nothing is allocated
// after construction.
//
// Free list: a bounded MPMC ring of buffer indices with burst operations (detail/mpmc_ring.hpp,
// rte_ring's algorithm): one CAS per burst, any thread may allocate or free. bench/packet/
// buffer_pool_bench.cpp compares it with boost::lockfree::stack and boost::lockfree::queue,
// which pay one CAS per buffer. A worker that allocates and frees a lot keeps a pool_cache
// (DPDK's mempool cache): plain array operations, refilled and flushed in bursts.
//
// Accounting: available() (free list) + buffers held in caches + buffers in use == capacity().
// The ring's capacity equals frame_count exactly, so freeing more buffers than exist (a double
// free) is caught: the excess is refused and counted in stats().double_free.
//
// Errors: construction throws std::invalid_argument for a bad configuration and
// std::system_error when the arena cannot be mapped; the hot path never throws.
#pragma once

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <sys/mman.h>

#include <splitnet/config.hpp>
#include <splitnet/packet/detail/mpmc_ring.hpp>
#include <splitnet/packet/frame.hpp>

namespace splitnet::packet {

struct buffer_pool_config {
    std::uint32_t frame_count = 4096;
    std::uint32_t frame_size = 2048; ///< power of two, 2048..131072 (AF_XDP UMEM: 2048 or 4096;
                                     ///< 131072 holds a whole 64 KiB aggregate, for LRO)
    std::uint16_t headroom = 256;    ///< bytes before data in a fresh frame (XDP_PACKET_HEADROOM)
    bool populate = true;            ///< fault the arena in at construction (MAP_POPULATE)
};

/// Failure counters. They are rare events and updated with relaxed atomics, so any thread may
/// bump them; successful operations are not counted here (caches and callers count those).
struct buffer_pool_stats {
    std::uint64_t alloc_failed = 0; ///< allocation requests the free list could not fully serve
    std::uint64_t double_free = 0;  ///< buffers refused because the free list was already full
    std::uint64_t foreign_free = 0; ///< frees of addresses outside this pool's arena
};

class buffer_pool {
public:
    static constexpr std::uint32_t burst_chunk = 64;

    /// A pool over its own anonymous mapping.
    explicit buffer_pool(const buffer_pool_config& cfg) : cfg_(check(cfg)), free_(cfg.frame_count) {
        init_layout();
        // Map last: nothing after this can throw, so the mapping cannot leak.
        const int flags = MAP_PRIVATE | MAP_ANONYMOUS | (cfg_.populate ? MAP_POPULATE : 0);
        void* p = ::mmap(nullptr, arena_bytes_, PROT_READ | PROT_WRITE, flags, -1, 0);
        if (p == MAP_FAILED) {
            SPLITNET_THROW(
                std::system_error(errno, std::generic_category(),
                                  "buffer_pool: cannot map " + std::to_string(arena_bytes_) +
                                      " bytes for " + std::to_string(cfg_.frame_count) +
                                      " buffers; lower frame_count or raise the memory limit"));
        }
        base_ = static_cast<std::uint8_t*>(p);
        owns_mapping_ = true;
    }

    /// A pool over memory the caller owns and keeps mapped for the pool's life: pages of a
    /// shared_region, so the buffers can be granted to (or are granted by) another process.
    /// `arena` must be page aligned and hold frame_count * frame_size bytes (the rest is unused).
    buffer_pool(std::span<std::byte> arena, const buffer_pool_config& cfg)
        : cfg_(check(cfg)), free_(cfg.frame_count) {
        init_layout();
        if (reinterpret_cast<std::uintptr_t>(arena.data()) % 4096 != 0 ||
            arena.size() < arena_bytes_) {
            SPLITNET_THROW(std::invalid_argument(
                "buffer_pool: the given arena must be page aligned and hold " +
                std::to_string(arena_bytes_) + " bytes for " + std::to_string(cfg_.frame_count) +
                " buffers of " + std::to_string(cfg_.frame_size) + "; it has " +
                std::to_string(arena.size())));
        }
        base_ = reinterpret_cast<std::uint8_t*>(arena.data());
    }

    buffer_pool(const buffer_pool&) = delete;
    buffer_pool& operator=(const buffer_pool&) = delete;
    ~buffer_pool() {
        if (owns_mapping_) {
            ::munmap(base_, arena_bytes_);
        }
    }

    /// Arena bytes a pool of this configuration needs.
    [[nodiscard]] static std::size_t arena_bytes_for(const buffer_pool_config& cfg) noexcept {
        return std::size_t{cfg.frame_count} * cfg.frame_size;
    }

    [[nodiscard]] std::uint32_t capacity() const noexcept { return cfg_.frame_count; }
    [[nodiscard]] std::uint32_t frame_size() const noexcept { return cfg_.frame_size; }
    [[nodiscard]] std::uint16_t default_headroom() const noexcept { return cfg_.headroom; }
    /// Buffers on the shared free list now (buffers in pool_caches are not included).
    [[nodiscard]] std::uint32_t available() const noexcept { return free_.size(); }
    /// The whole arena, for registering it as an AF_XDP UMEM.
    [[nodiscard]] std::span<std::uint8_t> arena() const noexcept { return {base_, arena_bytes_}; }
    [[nodiscard]] std::uint8_t* base() const noexcept { return base_; }

    [[nodiscard]] buffer_pool_stats stats() const noexcept {
        return {alloc_failed_.load(std::memory_order_relaxed),
                double_free_.load(std::memory_order_relaxed),
                foreign_free_.load(std::memory_order_relaxed)};
    }

    /// True when `addr` (a buffer address, possibly plus an offset into the buffer) is inside
    /// the arena.
    [[nodiscard]] bool owns(std::uint64_t addr) const noexcept { return addr < arena_bytes_; }

    /// Buffer index of an arena address (the offset inside the buffer is dropped).
    [[nodiscard]] std::uint32_t index_of(std::uint64_t addr) const noexcept {
        return static_cast<std::uint32_t>(addr >> shift_);
    }
    [[nodiscard]] std::uint64_t address_of(std::uint32_t index) const noexcept {
        return std::uint64_t{index} << shift_;
    }

    /// A fresh frame over buffer `index`: data at the default headroom, length 0.
    [[nodiscard]] frame make_frame(std::uint32_t index) const noexcept {
        frame f;
        init_frame(f, index);
        return f;
    }

    /// Turns `f` into a fresh frame over buffer `index` (in place: no temporary to copy).
    void init_frame(frame& f, std::uint32_t index) const noexcept {
        f = fresh_; // the constant fields, copied as a block rather than field by field
        f.buffer = address_of(index);
        f.data = base_ + f.buffer + cfg_.headroom;
    }

    /// The frame over the buffer at arena address `addr` with data starting at that address
    /// (an AF_XDP RX descriptor's addr), holding `len` bytes.
    [[nodiscard]] frame frame_at(std::uint64_t addr, std::uint32_t len) const noexcept {
        frame f;
        f.buffer = addr & ~(std::uint64_t{cfg_.frame_size} - 1);
        f.headroom = static_cast<std::uint16_t>(addr - f.buffer);
        f.data = base_ + addr;
        f.data_len = f.pkt_len = len;
        return f;
    }

    /// Descriptor storage for a chained segment whose bytes are in buffer `addr` (one slot per
    /// buffer, so chains built from this pool's buffers never collide).
    [[nodiscard]] frame& chain_slot(std::uint64_t addr) noexcept {
        return chain_slots_[index_of(addr)];
    }

    /// Allocates up to out.size() buffers as fresh frames; returns how many.
    [[nodiscard]] std::size_t alloc_burst(std::span<frame> out) noexcept {
        std::uint32_t idx[burst_chunk];
        std::size_t done = 0;
        while (done < out.size()) {
            const auto want = static_cast<std::uint32_t>(
                out.size() - done < burst_chunk ? out.size() - done : burst_chunk);
            const std::uint32_t got = free_.dequeue_burst(idx, want);
            for (std::uint32_t i = 0; i < got; ++i) {
                init_frame(out[done + i], idx[i]);
            }
            done += got;
            if (got < want) {
                alloc_failed_.fetch_add(1, std::memory_order_relaxed);
                break;
            }
        }
        return done;
    }

    /// Takes up to n raw buffer indices from the free list (for caches and ports that manage
    /// their own descriptors, e.g. an AF_XDP fill ring); returns how many.
    [[nodiscard]] std::uint32_t take_indices(std::uint32_t* out, std::uint32_t n) noexcept {
        const std::uint32_t got = free_.dequeue_burst(out, n);
        if (got < n) {
            alloc_failed_.fetch_add(1, std::memory_order_relaxed);
        }
        return got;
    }

    /// Returns n raw buffer indices to the free list.
    void give_indices(const std::uint32_t* in, std::uint32_t n) noexcept {
        const std::uint32_t put = free_.enqueue_burst(in, n);
        if (put < n) {
            double_free_.fetch_add(n - put, std::memory_order_relaxed);
        }
    }

    /// Returns every buffer of every frame (whole chains) to the pool. Frames over foreign
    /// memory (buffer == no_buffer) are skipped.
    void free_burst(std::span<const frame> frames) noexcept {
        index_batch batch(*this);
        for (const frame& f : frames) {
            for_each_segment(f, [&](const frame& seg) { batch.add(seg.buffer); });
        }
    }

    void free(const frame& f) noexcept { free_burst({&f, 1}); }

    /// Returns buffers by arena address (an AF_XDP completion ring hands back addresses).
    void free_addresses(std::span<const std::uint64_t> addrs) noexcept {
        index_batch batch(*this);
        for (const std::uint64_t a : addrs) {
            batch.add(a);
        }
    }

private:
    /// Collects indices and gives them back in chunks.
    struct index_batch {
        explicit index_batch(buffer_pool& p) noexcept : pool(p) {}
        index_batch(const index_batch&) = delete;
        index_batch& operator=(const index_batch&) = delete;
        buffer_pool& pool;
        std::uint32_t idx[burst_chunk];
        std::uint32_t n = 0;
        void add(std::uint64_t addr) noexcept {
            if (addr == no_buffer) {
                return;
            }
            if (!pool.owns(addr)) {
                pool.foreign_free_.fetch_add(1, std::memory_order_relaxed);
                return;
            }
            idx[n++] = pool.index_of(addr);
            if (n == burst_chunk) {
                pool.give_indices(idx, n);
                n = 0;
            }
        }
        ~index_batch() {
            if (n != 0) {
                pool.give_indices(idx, n);
            }
        }
    };

    /// Everything but the arena: shift, sizes, chain slots, the full free list.
    void init_layout() {
        shift_ = static_cast<std::uint32_t>(std::countr_zero(cfg_.frame_size));
        arena_bytes_ = std::size_t{cfg_.frame_count} << shift_;
        chain_slots_ = std::make_unique<frame[]>(cfg_.frame_count);
        std::vector<std::uint32_t> all(cfg_.frame_count);
        for (std::uint32_t i = 0; i < cfg_.frame_count; ++i) {
            all[i] = i;
        }
        fresh_.headroom = cfg_.headroom;
        free_.enqueue_burst(all.data(), cfg_.frame_count);
    }

    static const buffer_pool_config& check(const buffer_pool_config& c) {
        if (c.frame_count == 0 || c.frame_count > (1U << 24)) {
            SPLITNET_THROW(
                std::invalid_argument("buffer_pool: frame_count must be 1..16777216, got " +
                                      std::to_string(c.frame_count)));
        }
        if (!std::has_single_bit(c.frame_size) || c.frame_size < 2048 || c.frame_size > 131072) {
            SPLITNET_THROW(std::invalid_argument(
                "buffer_pool: frame_size must be a power of two from 2048 to 131072, got " +
                std::to_string(c.frame_size)));
        }
        if (c.headroom >= c.frame_size) {
            SPLITNET_THROW(std::invalid_argument(
                "buffer_pool: headroom " + std::to_string(c.headroom) + " leaves no room in a " +
                std::to_string(c.frame_size) + "-byte buffer"));
        }
        return c;
    }

    buffer_pool_config cfg_;
    std::uint32_t shift_ = 0;
    std::size_t arena_bytes_ = 0;
    std::uint8_t* base_ = nullptr;
    bool owns_mapping_ = false;
    frame fresh_{};
    std::unique_ptr<frame[]> chain_slots_;
    detail::mpmc_ring<std::uint32_t> free_;
    alignas(cache_line_size) std::atomic<std::uint64_t> alloc_failed_{0};
    std::atomic<std::uint64_t> double_free_{0};
    std::atomic<std::uint64_t> foreign_free_{0};
};

/// A per-worker cache in front of a buffer_pool (single-threaded: one owner). Allocation and
/// free are array operations; the cache refills and flushes half its size at a time. Destroying
/// the cache returns what it holds.
class pool_cache {
public:
    explicit pool_cache(buffer_pool& pool, std::uint32_t size = 512)
        : pool_(pool),
          size_(size < 2 * buffer_pool::burst_chunk ? 2 * buffer_pool::burst_chunk : size),
          idx_(std::make_unique<std::uint32_t[]>(size_)) {}
    pool_cache(const pool_cache&) = delete;
    pool_cache& operator=(const pool_cache&) = delete;
    ~pool_cache() { flush(); }

    [[nodiscard]] buffer_pool& pool() const noexcept { return pool_; }
    /// Buffers held by this cache.
    [[nodiscard]] std::uint32_t held() const noexcept { return n_; }

    [[nodiscard]] std::size_t alloc_burst(std::span<frame> out) noexcept {
        std::size_t done = 0;
        while (done < out.size()) {
            if (n_ == 0 && refill() == 0) {
                break;
            }
            // Locals, not members, in the loop: stores to frames could alias them otherwise.
            const std::uint32_t take =
                static_cast<std::uint32_t>(out.size() - done < n_ ? out.size() - done : n_);
            const std::uint32_t* src = idx_.get() + (n_ - take);
            frame* dst = out.data() + done;
            const buffer_pool& pool = pool_;
            for (std::uint32_t i = 0; i < take; ++i) {
                pool.init_frame(dst[i], src[take - 1 - i]);
            }
            n_ -= take;
            done += take;
        }
        return done;
    }

    void free_burst(std::span<const frame> frames) noexcept {
        for (const frame& f : frames) {
            for (const frame* seg = &f; seg != nullptr; seg = seg->next) {
                put(seg->buffer);
            }
        }
    }

    void free_addresses(std::span<const std::uint64_t> addrs) noexcept {
        for (const std::uint64_t a : addrs) {
            put(a);
        }
    }

    /// Returns everything held to the pool.
    void flush() noexcept {
        if (n_ != 0) {
            pool_.give_indices(idx_.get(), n_);
            n_ = 0;
        }
    }

private:
    std::uint32_t refill() noexcept {
        n_ = pool_.take_indices(idx_.get(), size_ / 2);
        return n_;
    }

    void put(std::uint64_t addr) noexcept {
        if (SPLITNET_UNLIKELY(!pool_.owns(addr))) { // no_buffer is never owned
            if (addr != no_buffer) {
                pool_.free_addresses({&addr, 1}); // counted as foreign by the pool
            }
            return;
        }
        if (SPLITNET_UNLIKELY(n_ == size_)) {
            const std::uint32_t half = size_ / 2;
            pool_.give_indices(idx_.get() + half, size_ - half);
            n_ = half;
        }
        idx_[n_++] = pool_.index_of(addr);
    }

    buffer_pool& pool_;
    std::uint32_t size_;
    std::uint32_t n_ = 0;
    std::unique_ptr<std::uint32_t[]> idx_;
};

} // namespace splitnet::packet
