// SPDX-License-Identifier: MIT
// splitnet/bridge/detail/port_heap.hpp: ports ordered by how many learned FDB entries they hold,
// for fair eviction. Anchor: OVS lib/mac-learning.c (ports_by_usage, a heap keyed by the
// number of MACs a port owns: when the table is full the port with the most entries loses one).
// An indexed binary max-heap: counts change by one per learn or removal, O(log ports) each.
// Ties go to the lower port id, so the choice is deterministic (and an oracle can model it).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace splitnet::bridge::detail {

class port_heap {
public:
    explicit port_heap(std::uint16_t ports) : heap_(ports), pos_(ports), count_(ports, 0) {
        for (std::uint16_t p = 0; p < ports; ++p) {
            heap_[p] = p;
            pos_[p] = p;
        }
    }

    [[nodiscard]] std::uint32_t count(std::uint16_t p) const noexcept { return count_[p]; }
    [[nodiscard]] std::uint16_t max_port() const noexcept { return heap_.front(); }
    [[nodiscard]] std::uint32_t max_count() const noexcept { return count_[heap_.front()]; }

    void increment(std::uint16_t p) noexcept {
        ++count_[p];
        sift_up(pos_[p]);
    }
    void decrement(std::uint16_t p) noexcept {
        --count_[p];
        sift_down(pos_[p]);
    }

private:
    /// Heap order: more entries first, then the lower port id.
    [[nodiscard]] bool above(std::size_t a, std::size_t b) const noexcept {
        const std::uint32_t ca = count_[heap_[a]];
        const std::uint32_t cb = count_[heap_[b]];
        return ca > cb || (ca == cb && heap_[a] < heap_[b]);
    }
    void swap_at(std::size_t a, std::size_t b) noexcept {
        std::swap(heap_[a], heap_[b]);
        pos_[heap_[a]] = static_cast<std::uint16_t>(a);
        pos_[heap_[b]] = static_cast<std::uint16_t>(b);
    }
    void sift_up(std::size_t i) noexcept {
        while (i > 0) {
            const std::size_t parent = (i - 1) / 2;
            if (!above(i, parent)) {
                return;
            }
            swap_at(parent, i);
            i = parent;
        }
    }
    void sift_down(std::size_t i) noexcept {
        const std::size_t n = heap_.size();
        for (;;) {
            std::size_t best = i;
            const std::size_t l = 2 * i + 1;
            const std::size_t r = l + 1;
            if (l < n && above(l, best)) {
                best = l;
            }
            if (r < n && above(r, best)) {
                best = r;
            }
            if (best == i) {
                return;
            }
            swap_at(i, best);
            i = best;
        }
    }

    std::vector<std::uint16_t> heap_; // port ids, heap-ordered by count_
    std::vector<std::uint16_t> pos_;  // index of each port in heap_
    std::vector<std::uint32_t> count_;
};

} // namespace splitnet::bridge::detail
