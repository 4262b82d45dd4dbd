// SPDX-License-Identifier: MIT
// splitnet/packet/detail/mpmc_ring.hpp: bounded multi-producer multi-consumer ring with burst
// operations, the free list of buffer_pool. The algorithm is DPDK rte_ring's MP/MC mode
// (lib/ring/rte_ring_c11_pvt.h): each side has a head (claimed by CAS) and a tail (published in
// claim order), so one CAS moves a whole burst. The capacity is exact (not rounded up to the
// power of two the index mask needs), so the pool can detect a free of more buffers than it has.
//
// Ordering edges:
//   A0/R1: a producer acquires cons_.tail; consumers release it after reading their slots, so a
//          slot is never overwritten while a consumer still reads it.
//   A1/R0: a consumer acquires prod_.tail; producers release it after writing their slots.
//   W0:    the wait for earlier claimants to publish loads the tail with acquire, so a later
//          claimant's release also carries the earlier claimant's slot accesses.
// Not lock-free: a claimant preempted between its CAS and its tail store delays the claimants
// after it (as in rte_ring); waiters yield the CPU after a bounded spin.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <thread>

#include <splitnet/config.hpp>

namespace splitnet::packet::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

template <class T>
class mpmc_ring {
public:
    /// A ring that holds up to `capacity` elements.
    explicit mpmc_ring(std::uint32_t capacity)
        : mask_(std::bit_ceil(capacity < 2 ? 2U : capacity) - 1), capacity_(capacity),
          slots_(std::make_unique<T[]>(std::size_t{mask_} + 1)) {}

    [[nodiscard]] std::uint32_t capacity() const noexcept { return capacity_; }

    /// Elements in the ring (a snapshot; exact when no operation is in flight).
    [[nodiscard]] std::uint32_t size() const noexcept {
        const std::uint32_t t = prod_.tail.load(std::memory_order_acquire);
        const std::uint32_t c = cons_.tail.load(std::memory_order_acquire);
        const std::uint32_t n = t - c;
        return n > capacity_ ? capacity_ : n;
    }

    /// Enqueues up to n elements; returns how many (fewer only when the ring is full).
    std::uint32_t enqueue_burst(const T* src, std::uint32_t n) noexcept {
        std::uint32_t head = prod_.head.load(std::memory_order_relaxed);
        std::uint32_t next = 0;
        do {
            // Load the head before the tail, as rte_ring does, so the free count is never
            // computed from a tail newer than the head it is subtracted from.
            std::atomic_thread_fence(std::memory_order_acquire);
            const std::uint32_t cons_tail = cons_.tail.load(std::memory_order_acquire); // A0
            const std::uint32_t free = capacity_ + cons_tail - head;
            if (n > free) {
                n = free;
            }
            if (n == 0) {
                return 0;
            }
            next = head + n;
        } while (!prod_.head.compare_exchange_weak(head, next, std::memory_order_relaxed,
                                                   std::memory_order_relaxed));
        for (std::uint32_t i = 0; i < n; ++i) {
            slots_[(head + i) & mask_] = src[i];
        }
        wait_turn(prod_.tail, head);                       // W0
        prod_.tail.store(next, std::memory_order_release); // R0
        return n;
    }

    /// Dequeues up to n elements into dst; returns how many.
    std::uint32_t dequeue_burst(T* dst, std::uint32_t n) noexcept {
        std::uint32_t head = cons_.head.load(std::memory_order_relaxed);
        std::uint32_t next = 0;
        do {
            std::atomic_thread_fence(std::memory_order_acquire);
            const std::uint32_t prod_tail = prod_.tail.load(std::memory_order_acquire); // A1
            const std::uint32_t avail = prod_tail - head;
            if (n > avail) {
                n = avail;
            }
            if (n == 0) {
                return 0;
            }
            next = head + n;
        } while (!cons_.head.compare_exchange_weak(head, next, std::memory_order_relaxed,
                                                   std::memory_order_relaxed));
        for (std::uint32_t i = 0; i < n; ++i) {
            dst[i] = slots_[(head + i) & mask_];
        }
        wait_turn(cons_.tail, head);                       // W0
        cons_.tail.store(next, std::memory_order_release); // R1
        return n;
    }

private:
    struct alignas(cache_line_size) head_tail {
        std::atomic<std::uint32_t> head{0};
        std::atomic<std::uint32_t> tail{0};
    };

    static void wait_turn(const std::atomic<std::uint32_t>& tail, std::uint32_t mine) noexcept {
        for (unsigned spins = 0; tail.load(std::memory_order_acquire) != mine; ++spins) {
            if (spins < 128) {
                cpu_relax();
            } else {
                std::this_thread::yield(); // the claimant ahead of us was preempted
            }
        }
    }

    head_tail prod_;
    head_tail cons_;
    std::uint32_t mask_;
    std::uint32_t capacity_;
    std::unique_ptr<T[]> slots_;
};

} // namespace splitnet::packet::detail
