// SPDX-License-Identifier: MIT
// splitnet/ring/spsc_ring.hpp: the burst single-producer single-consumer ring for queues inside
// the driver domain (bridge to backend queue, hand-offs between workers), usable in shared
// memory between two processes as well.
//
// Layout of the shared part (spsc_shared): the producer's index on one cache line, the
// consumer's on another, 128 bytes apart (adjacent-line prefetch pairs lines), the read-only
// capacity on a third, then the slots. Each side keeps its own index privately and a cached copy
// of the other side's (SPSCQueue's readIdxCache_, libxdp's cached_cons): it re-reads the shared
// line only when the cached value says the ring looks full (or empty), so in steady state the two
// cores exchange one cache line per burst rather than per element.
//
// Ordering edges:
//   R1/A1  the producer writes slots, then stores head with release (R1); the consumer loads
//          head with acquire (A1) before reading those slots.
//   R2/A2  the consumer reads slots, then stores tail with release (R2); the producer loads
//          tail with acquire (A2) before overwriting those slots.
//
// API (DPDK naming, B3 of the style guide): reserve(n) -> region (two spans when it wraps) then
// commit(k); peek(n) -> region then release(k); enqueue_burst/dequeue_burst copy as many as fit;
// enqueue_bulk/dequeue_bulk are all-or-nothing. Capacity is a power of two, all of it usable
// (free-running 32-bit indices tell full from empty). Elements are plain data (trivially
// copyable), because the ring may sit in shared memory and regions hand out raw slots.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <splitnet/config.hpp>
#include <splitnet/detail/shared_access.hpp>
#include <splitnet/ring/burst_queue.hpp>

namespace splitnet::ring {

/// Up to two contiguous spans of slots (the second is empty unless the range wraps), as DPDK's
/// rte_ring_zc_data: a burst can land straight in ring slots.
template <class T>
struct region {
    std::span<T> first;
    std::span<T> second;
    [[nodiscard]] std::size_t size() const noexcept { return first.size() + second.size(); }
    [[nodiscard]] T& operator[](std::size_t i) const noexcept {
        return i < first.size() ? first[i] : second[i - first.size()];
    }
};

/// The shared part of an spsc ring: indices and capacity; the slots follow at `slots_offset`.
struct spsc_shared {
    alignas(128) std::uint32_t head; ///< written by the producer only
    alignas(128) std::uint32_t tail; ///< written by the consumer only
    alignas(128) std::uint32_t capacity;
    static constexpr std::size_t slots_offset = 384;
};
static_assert(sizeof(spsc_shared) == spsc_shared::slots_offset);
static_assert(offsetof(spsc_shared, tail) - offsetof(spsc_shared, head) == 128);

/// Bytes of shared memory an spsc ring of `capacity` elements of T needs.
template <class T>
[[nodiscard]] constexpr std::size_t spsc_bytes(std::uint32_t capacity) noexcept {
    return spsc_shared::slots_offset + std::size_t{capacity} * sizeof(T);
}

namespace detail {

template <class T>
class spsc_end {
    static_assert(std::is_trivially_copyable_v<T>,
                  "spsc_ring elements must be trivially copyable (plain data, shareable)");

public:
    [[nodiscard]] std::uint32_t capacity() const noexcept { return mask_ + 1; }

protected:
    spsc_end() = default;
    /// Views an initialised shared area. The capacity is read once and checked against the size
    /// of the area, so a peer cannot make us index outside it.
    explicit spsc_end(std::span<std::byte> mem) {
        if (reinterpret_cast<std::uintptr_t>(mem.data()) % 128 != 0 ||
            mem.size() < spsc_shared::slots_offset) {
            SPLITNET_THROW(std::invalid_argument(
                "spsc ring: the shared area must be 128-byte aligned and hold the header"));
        }
        shared_ = reinterpret_cast<spsc_shared*>(mem.data());
        const std::uint32_t cap = splitnet::detail::load_acquire(shared_->capacity);
        if (!std::has_single_bit(cap) || spsc_bytes<T>(cap) > mem.size()) {
            SPLITNET_THROW(std::invalid_argument(
                "spsc ring: capacity " + std::to_string(cap) + " in the shared header is not a " +
                "power of two that fits the " + std::to_string(mem.size()) + "-byte area"));
        }
        mask_ = cap - 1;
        slots_ = reinterpret_cast<T*>(mem.data() + spsc_shared::slots_offset);
    }

    // Direct copies for the burst calls: no region to build, one copy unless the range wraps.
    void copy_to_slots(std::uint32_t idx, const T* src, std::uint32_t n) const noexcept {
        const std::uint32_t at = idx & mask_;
        const std::uint32_t first = n < capacity() - at ? n : capacity() - at;
        copy_elems(slots_ + at, src, first);
        if (first != n) {
            copy_elems(slots_, src + first, n - first);
        }
    }
    void copy_from_slots(std::uint32_t idx, T* dst, std::uint32_t n) const noexcept {
        const std::uint32_t at = idx & mask_;
        const std::uint32_t first = n < capacity() - at ? n : capacity() - at;
        copy_elems(dst, slots_ + at, first);
        if (first != n) {
            copy_elems(dst + first, slots_, n - first);
        }
    }
    /// Small bursts are copied four elements per step, the compiler keeping them in vector
    /// registers (a memcpy call and its size dispatch cost more; DPDK copies its ring elements
    /// likewise); large ones with memcpy.
    static void copy_elems(T* dst, const T* src, std::uint32_t n) noexcept {
        if (n > 32) {
            // GCC 12 checks this call against buffers it can see are small (n never exceeds
            // the caller's span, but value ranges lose that): a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Wstringop-overread"
#endif
            std::memcpy(dst, src, std::size_t{n} * sizeof(T));
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
            return;
        }
        if (n == 1) { // single-element pushes and pops: no loop at all
            dst[0] = src[0];
            return;
        }
        std::uint32_t i = 0;
        for (; i + 4 <= n; i += 4) {
            dst[i] = src[i];
            dst[i + 1] = src[i + 1];
            dst[i + 2] = src[i + 2];
            dst[i + 3] = src[i + 3];
        }
        for (; i < n; ++i) {
            dst[i] = src[i];
        }
    }

    [[nodiscard]] region<T> span_at(std::uint32_t idx, std::uint32_t n) const noexcept {
        const std::uint32_t at = idx & mask_;
        const std::uint32_t first = n < capacity() - at ? n : capacity() - at;
        return {{slots_ + at, first}, {slots_, n - first}};
    }

    spsc_shared* shared_ = nullptr;
    T* slots_ = nullptr;
    std::uint32_t mask_ = 0;
};

} // namespace detail

/// Writes the header of a new ring of `capacity` (a power of two) elements of T into `mem`
/// (128-byte aligned, at least spsc_bytes<T>(capacity)), with both indices at `start`.
template <class T>
void spsc_initialise(std::span<std::byte> mem, std::uint32_t capacity, std::uint32_t start = 0) {
    if (!std::has_single_bit(capacity) || capacity > (1U << 30) ||
        spsc_bytes<T>(capacity) > mem.size() ||
        reinterpret_cast<std::uintptr_t>(mem.data()) % 128 != 0) {
        SPLITNET_THROW(std::invalid_argument(
            "spsc ring: capacity " + std::to_string(capacity) +
            " must be a power of two up to 2^30 and fit a 128-byte aligned area of " +
            std::to_string(mem.size()) + " bytes"));
    }
    auto* h = reinterpret_cast<spsc_shared*>(mem.data());
    splitnet::detail::store_relaxed(h->head, start);
    splitnet::detail::store_relaxed(h->tail, start);
    splitnet::detail::store_release(h->capacity, capacity);
}

/// The producer's handle: one thread (or process) at a time.
template <class T>
class spsc_producer : public detail::spsc_end<T> {
    using base = detail::spsc_end<T>;
    using base::mask_;
    using base::shared_;

public:
    spsc_producer() = default;
    explicit spsc_producer(std::span<std::byte> mem)
        : base(mem), head_(splitnet::detail::load_relaxed(shared_->head)),
          tail_cache_(splitnet::detail::load_acquire(shared_->tail)) {}

    /// Free slots: the cached count, refreshed from the consumer's index only when it is below
    /// `want` (may be more than this after the consumer advances).
    [[nodiscard]] std::uint32_t free_slots(std::size_t want = 1) noexcept {
        std::uint32_t free = this->capacity() - (head_ - tail_cache_);
        if (free < want) {
            tail_cache_ = splitnet::detail::load_acquire(shared_->tail); // A2, pairs with R2
            free = this->capacity() - (head_ - tail_cache_);
        }
        return free;
    }

    /// Up to n free slots to write in place; then commit(k) publishes the first k of them.
    [[nodiscard]] region<T> reserve(std::uint32_t n) noexcept {
        const std::uint32_t free = free_slots(n);
        return this->span_at(head_, n < free ? n : free);
    }

    /// Publishes k slots written through reserve().
    void commit(std::uint32_t k) noexcept {
        head_ += k;
        splitnet::detail::store_release(shared_->head, head_); // R1, pairs with A1
    }

    /// Copies as many of `in` as fit and publishes them; returns how many.
    [[nodiscard]] std::size_t enqueue_burst(std::span<const T> in) noexcept {
        const std::uint32_t free = free_slots(in.size());
        const std::uint32_t n = in.size() < free ? static_cast<std::uint32_t>(in.size()) : free;
        if (n != 0) {
            this->copy_to_slots(head_, in.data(), n);
            commit(n);
        }
        return n;
    }

    /// All of `in` or nothing.
    [[nodiscard]] bool enqueue_bulk(std::span<const T> in) noexcept {
        if (free_slots(in.size()) < in.size()) {
            return false;
        }
        return enqueue_burst(in) == in.size();
    }

    [[nodiscard]] bool try_push(const T& v) noexcept { return enqueue_burst({&v, 1}) == 1; }

private:
    std::uint32_t head_ = 0;       // private producer index
    std::uint32_t tail_cache_ = 0; // last consumer index seen (saves reading the consumer's line)
};

/// The consumer's handle: one thread (or process) at a time.
template <class T>
class spsc_consumer : public detail::spsc_end<T> {
    using base = detail::spsc_end<T>;
    using base::shared_;

public:
    spsc_consumer() = default;
    explicit spsc_consumer(std::span<std::byte> mem)
        : base(mem), tail_(splitnet::detail::load_relaxed(shared_->tail)),
          head_cache_(splitnet::detail::load_acquire(shared_->head)) {}

    /// Elements ready: the cached count, refreshed from the producer's index only when it is
    /// below `want` (may be more than this after the producer advances).
    [[nodiscard]] std::uint32_t size(std::size_t want = 1) noexcept {
        std::uint32_t avail = head_cache_ - tail_;
        if (avail < want) {
            head_cache_ = splitnet::detail::load_acquire(shared_->head); // A1, pairs with R1
            avail = head_cache_ - tail_;
        }
        return avail;
    }

    /// Up to n ready slots to read in place; then release(k) frees the first k of them.
    [[nodiscard]] region<const T> peek(std::uint32_t n) noexcept {
        const std::uint32_t avail = size(n);
        const region<T> r = this->span_at(tail_, n < avail ? n : avail);
        return {r.first, r.second};
    }

    /// Frees k slots read through peek().
    void release(std::uint32_t k) noexcept {
        tail_ += k;
        splitnet::detail::store_release(shared_->tail, tail_); // R2, pairs with A2
    }

    /// Copies out as many as are ready, up to out.size(); returns how many.
    [[nodiscard]] std::size_t dequeue_burst(std::span<T> out) noexcept {
        const std::uint32_t avail = size(out.size());
        const std::uint32_t n = out.size() < avail ? static_cast<std::uint32_t>(out.size()) : avail;
        if (n != 0) {
            this->copy_from_slots(tail_, out.data(), n);
            release(n);
        }
        return n;
    }

    /// Exactly out.size() elements or nothing.
    [[nodiscard]] bool dequeue_bulk(std::span<T> out) noexcept {
        if (size(out.size()) < out.size()) {
            return false;
        }
        return dequeue_burst(out) == out.size();
    }

    [[nodiscard]] bool try_pop(T& v) noexcept { return dequeue_burst({&v, 1}) == 1; }

private:
    std::uint32_t tail_ = 0;       // private consumer index
    std::uint32_t head_cache_ = 0; // last producer index seen
};

/// An spsc ring in this process's memory: owns the storage and one handle per side. The
/// producer thread uses enqueue_*/reserve/commit (or producer()), the consumer thread
/// dequeue_*/peek/release (or consumer()).
template <class T>
class spsc_ring {
public:
    using value_type = T;

    /// A ring of `capacity` elements (a power of two). `start` sets the initial indices (tests
    /// start near UINT32_MAX to exercise wrap-around).
    explicit spsc_ring(std::uint32_t capacity, std::uint32_t start = 0)
        : bytes_(spsc_bytes<T>(capacity)), mem_(allocate(bytes_)) {
        spsc_initialise<T>({mem_.get(), bytes_}, capacity, start);
        producer_ = spsc_producer<T>({mem_.get(), bytes_});
        consumer_ = spsc_consumer<T>({mem_.get(), bytes_});
    }

    [[nodiscard]] std::uint32_t capacity() const noexcept { return producer_.capacity(); }
    [[nodiscard]] spsc_producer<T>& producer() noexcept { return producer_; }
    [[nodiscard]] spsc_consumer<T>& consumer() noexcept { return consumer_; }

    [[nodiscard]] std::size_t enqueue_burst(std::span<const T> in) noexcept {
        return producer_.enqueue_burst(in);
    }
    [[nodiscard]] bool enqueue_bulk(std::span<const T> in) noexcept {
        return producer_.enqueue_bulk(in);
    }
    [[nodiscard]] region<T> reserve(std::uint32_t n) noexcept { return producer_.reserve(n); }
    void commit(std::uint32_t k) noexcept { producer_.commit(k); }
    [[nodiscard]] std::size_t dequeue_burst(std::span<T> out) noexcept {
        return consumer_.dequeue_burst(out);
    }
    [[nodiscard]] bool dequeue_bulk(std::span<T> out) noexcept {
        return consumer_.dequeue_bulk(out);
    }
    [[nodiscard]] region<const T> peek(std::uint32_t n) noexcept { return consumer_.peek(n); }
    void release(std::uint32_t k) noexcept { consumer_.release(k); }

private:
    struct free_deleter {
        void operator()(std::byte* p) const noexcept { std::free(p); }
    };
    static std::unique_ptr<std::byte, free_deleter> allocate(std::size_t bytes) {
        void* p = std::aligned_alloc(128, (bytes + 127) / 128 * 128);
        if (p == nullptr) {
            SPLITNET_THROW(std::bad_alloc());
        }
        return std::unique_ptr<std::byte, free_deleter>(static_cast<std::byte*>(p));
    }

    std::size_t bytes_;
    std::unique_ptr<std::byte, free_deleter> mem_;
    // Each handle on its own lines: the producer's private state must not share a line with the
    // consumer's, or the private indices would bounce between cores after all.
    alignas(cache_line_size * 2) spsc_producer<T> producer_;
    alignas(cache_line_size * 2) spsc_consumer<T> consumer_;
};

static_assert(burst_queue<spsc_ring<std::uint64_t>>);

} // namespace splitnet::ring
