// SPDX-License-Identifier: MIT
// splitnet/sched/dispatch.hpp: the dispatch_policy concept (which worker an incoming event
// wakes: a frontend's kick, a NIC queue's interrupt) and its default, cache_aware_dispatch.
// Seed 004 (multi-tasklet netback): balancing event-channel dispatch over the driver domain's
// VCPUs took four guests from 2.2 to 3.7 Gbit/s; seed 003: serving a guest from a core that
// shares its last-level cache cuts the copy cost. The other policies are in
// round_robin_dispatch.hpp and least_loaded_dispatch.hpp.
//
// A policy sees the current load of every worker (`load[w]`: work queued on w plus the item it
// is running; the credit scheduler maintains it) and returns a worker. Decisions are O(workers
// of one domain) at most, noexcept and allocation-free. Not thread-safe: called under the
// scheduler's lock, or owned by one thread.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <vector>

#include <splitnet/sched/placement.hpp>
#include <splitnet/sched/types.hpp>

namespace splitnet::sched {

template <typename D>
concept dispatch_policy = requires(D& d, source_id s, std::span<const std::uint32_t> load) {
    { d.dispatch(s, load) } noexcept -> std::same_as<worker_id>;
};

/// The source's home worker (placement::plan: a worker sharing the guest's LLC) unless another
/// worker of the same domain has less work by more than `slack`, in which case that one. Never
/// leaves the domain (the credit scheduler's idle workers take queued work across domains).
/// Sources unknown to the placement are homed round robin.
class cache_aware_dispatch {
public:
    static constexpr std::uint32_t slack = 1;

    explicit cache_aware_dispatch(const placement& p) : home_(p.home) {
        const std::uint32_t nd = p.domains == 0 ? 1 : p.domains;
        domain_workers_.resize(nd);
        for (std::uint32_t w = 0; w < p.workers(); ++w) {
            domain_workers_[p.worker_domain[w]].push_back(w);
        }
        for (const std::uint32_t d : p.source_domain) {
            source_domain_.push_back(domain_workers_[d].empty() ? no_domain : d);
        }
        workers_ = p.workers();
    }

    [[nodiscard]] worker_id dispatch(source_id s, std::span<const std::uint32_t> load) noexcept {
        if (s >= home_.size()) {
            return s % workers_;
        }
        const worker_id h = home_[s];
        if (load[h] == 0 || source_domain_[s] == no_domain) {
            return h;
        }
        worker_id best = h;
        for (const worker_id w : domain_workers_[source_domain_[s]]) {
            if (load[w] < load[best]) {
                best = w;
            }
        }
        return load[best] + slack < load[h] ? best : h;
    }

private:
    static constexpr std::uint32_t no_domain = UINT32_MAX;
    std::vector<worker_id> home_;
    std::vector<std::uint32_t> source_domain_;
    std::vector<std::vector<worker_id>> domain_workers_;
    std::uint32_t workers_ = 1;
};
static_assert(dispatch_policy<cache_aware_dispatch>);

} // namespace splitnet::sched
