// SPDX-License-Identifier: MIT
// splitnet/sched/round_robin_dispatch.hpp: every event goes to the next worker in turn, the
// "balanced event dispatch" of seed 004 in its simplest form. Ignores load and cache topology:
// the baseline the other policies are compared with in the simulator.
#pragma once

#include <cstdint>
#include <span>

#include <splitnet/sched/dispatch.hpp>
#include <splitnet/sched/placement.hpp>
#include <splitnet/sched/types.hpp>

namespace splitnet::sched {

class round_robin_dispatch {
public:
    explicit round_robin_dispatch(const placement& p) noexcept
        : workers_(p.workers() == 0 ? 1 : p.workers()) {}
    explicit round_robin_dispatch(std::uint32_t workers) noexcept
        : workers_(workers == 0 ? 1 : workers) {}

    [[nodiscard]] worker_id dispatch(source_id, std::span<const std::uint32_t>) noexcept {
        const worker_id w = next_;
        next_ = next_ + 1 == workers_ ? 0 : next_ + 1;
        return w;
    }

private:
    std::uint32_t workers_;
    std::uint32_t next_ = 0;
};
static_assert(dispatch_policy<round_robin_dispatch>);

} // namespace splitnet::sched
