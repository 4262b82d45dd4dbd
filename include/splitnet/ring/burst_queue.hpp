// SPDX-License-Identifier: MIT
// splitnet/ring/burst_queue.hpp: the concept a queue between two stages of the driver domain
// satisfies: burst enqueue and dequeue of plain elements, as many as fit or are ready, never
// blocking, never allocating. spsc_ring, and Boost.Lockfree behind lockfree_adapter.hpp, model
// it; the pipeline takes any of them.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>

namespace splitnet::ring {

template <class Q>
concept burst_queue = requires(Q& q, std::span<const typename Q::value_type> in,
                               std::span<typename Q::value_type> out) {
    typename Q::value_type;
    { q.enqueue_burst(in) } noexcept -> std::same_as<std::size_t>;
    { q.dequeue_burst(out) } noexcept -> std::same_as<std::size_t>;
    { q.capacity() } noexcept -> std::convertible_to<std::size_t>;
};

} // namespace splitnet::ring
