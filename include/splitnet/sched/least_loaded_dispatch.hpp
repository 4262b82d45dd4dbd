// SPDX-License-Identifier: MIT
// splitnet/sched/least_loaded_dispatch.hpp: every event goes to the worker with the least work
// (load[w]), ties broken by a rotating start so equal loads spread round robin. Balances
// best (seed 004) but ignores the cache topology, so with several LLC domains most copies
// cross a domain; cache_aware_dispatch trades a little balance for locality.
#pragma once

#include <cstdint>
#include <span>

#include <splitnet/sched/dispatch.hpp>
#include <splitnet/sched/placement.hpp>
#include <splitnet/sched/types.hpp>

namespace splitnet::sched {

class least_loaded_dispatch {
public:
    explicit least_loaded_dispatch(const placement& p) noexcept
        : workers_(p.workers() == 0 ? 1 : p.workers()) {}
    explicit least_loaded_dispatch(std::uint32_t workers) noexcept
        : workers_(workers == 0 ? 1 : workers) {}

    /// O(workers): one pass over the load array (64 entries at most), in two straight runs
    /// (start..end, then 0..start) so the compiler can keep it branch-free.
    [[nodiscard]] worker_id dispatch(source_id, std::span<const std::uint32_t> load) noexcept {
        worker_id best = start_;
        std::uint32_t min = load[start_];
        for (std::uint32_t w = start_ + 1; w < workers_; ++w) {
            const bool less = load[w] < min;
            min = less ? load[w] : min;
            best = less ? w : best;
        }
        for (std::uint32_t w = 0; w < start_; ++w) {
            const bool less = load[w] < min;
            min = less ? load[w] : min;
            best = less ? w : best;
        }
        start_ = start_ + 1 == workers_ ? 0 : start_ + 1;
        return best;
    }

private:
    std::uint32_t workers_;
    std::uint32_t start_ = 0;
};
static_assert(dispatch_policy<least_loaded_dispatch>);

} // namespace splitnet::sched
