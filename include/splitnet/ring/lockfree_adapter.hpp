// SPDX-License-Identifier: MIT
// splitnet/ring/lockfree_adapter.hpp: Boost.Lockfree queues behind the burst_queue concept, so
// a user can pick Boost's implementation where splitnet's spsc_ring would go.
//  - lockfree_spsc_queue: boost::lockfree::spsc_queue with a compile-time capacity. Debian 12
//    ships Boost 1.74, whose bulk calls take a pointer and a count (no span overloads).
//  - lockfree_mpmc_queue: boost::lockfree::queue (fixed-size node pool), for several producers
//    or consumers; it has no bulk calls, so a burst is a loop of single operations.
#pragma once

#include <cstddef>
#include <span>

#include <boost/lockfree/policies.hpp>
#include <boost/lockfree/queue.hpp>
#include <boost/lockfree/spsc_queue.hpp>

#include <splitnet/ring/burst_queue.hpp>

namespace splitnet::ring {

template <class T, std::size_t Capacity>
class lockfree_spsc_queue {
public:
    using value_type = T;

    [[nodiscard]] std::size_t enqueue_burst(std::span<const T> in) noexcept {
        return q_.push(in.data(), in.size());
    }
    [[nodiscard]] std::size_t dequeue_burst(std::span<T> out) noexcept {
        return q_.pop(out.data(), out.size());
    }
    [[nodiscard]] static constexpr std::size_t capacity() noexcept { return Capacity; }

private:
    boost::lockfree::spsc_queue<T, boost::lockfree::capacity<Capacity>> q_;
};

template <class T, std::size_t Capacity>
class lockfree_mpmc_queue {
    static_assert(Capacity < 65535, "boost::lockfree::queue indexes its fixed pool with 16 bits");

public:
    using value_type = T;

    [[nodiscard]] std::size_t enqueue_burst(std::span<const T> in) noexcept {
        std::size_t n = 0;
        while (n < in.size() && q_.bounded_push(in[n])) {
            ++n;
        }
        return n;
    }
    [[nodiscard]] std::size_t dequeue_burst(std::span<T> out) noexcept {
        std::size_t n = 0;
        while (n < out.size() && q_.pop(out[n])) {
            ++n;
        }
        return n;
    }
    [[nodiscard]] static constexpr std::size_t capacity() noexcept { return Capacity; }

private:
    boost::lockfree::queue<T, boost::lockfree::capacity<Capacity>> q_;
};

static_assert(burst_queue<lockfree_spsc_queue<int, 64>>);
static_assert(burst_queue<lockfree_mpmc_queue<int, 64>>);

} // namespace splitnet::ring
