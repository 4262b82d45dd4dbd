// SPDX-License-Identifier: MIT
// splitnet/sched/placement.hpp: cache-aware placement (seed 003, "cache-aware scheduler": the
// driver domain's I/O worker and the guest it copies packets to should run on cores that share
// the last-level cache, so the guest reads the packet from cache). Two decisions, both made at
// set-up from a cpu_topology:
//   spread_workers(): which CPUs to pin the W workers to: each LLC domain gets workers in
//     proportion to the guests whose vCPUs run there (largest remainder), preferring CPUs no
//     guest vCPU uses, so no domain with guests is left without a local worker while W allows;
//   plan(): each source (a backend queue) gets a home worker in its guest's domain, balancing
//     the number of homes per worker; a source whose domain has no worker gets the least
//     loaded worker anywhere (counted in cross_domain_homes).
// The home is a preference, not a pin: the dispatcher falls back to another worker of the
// domain when the home is busier, and the credit scheduler lets an idle worker take queued work
// from any domain, so no worker idles while work waits.
//
// Errors: std::invalid_argument for CPU numbers that are offline or out of range, or for more
// than max_workers workers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <splitnet/config.hpp>
#include <splitnet/sched/cpu_topology.hpp>
#include <splitnet/sched/types.hpp>

namespace splitnet::sched {

struct placement {
    std::uint32_t domains = 1;
    std::vector<std::uint32_t> worker_domain; ///< per worker: its CPU's LLC domain
    std::vector<std::uint32_t> worker_cpu;    ///< per worker: its CPU (empty when unknown)
    std::vector<std::uint32_t> source_domain; ///< per source: its guest's LLC domain
    std::vector<worker_id> home;              ///< per source: the preferred worker
    std::uint32_t cross_domain_homes = 0;     ///< sources homed outside their domain

    [[nodiscard]] std::uint32_t workers() const noexcept {
        return static_cast<std::uint32_t>(worker_domain.size());
    }
    [[nodiscard]] std::uint32_t sources() const noexcept {
        return static_cast<std::uint32_t>(home.size());
    }
    /// Workers of domain `d` as a bit mask.
    [[nodiscard]] std::uint64_t domain_mask(std::uint32_t d) const noexcept {
        std::uint64_t m = 0;
        for (std::uint32_t w = 0; w < worker_domain.size(); ++w) {
            if (worker_domain[w] == d) {
                m |= std::uint64_t{1} << w;
            }
        }
        return m;
    }

    /// Everything in one domain; homes round robin. What a machine without topology gets.
    [[nodiscard]] static placement single_domain(std::uint32_t workers, std::uint32_t sources) {
        check_workers(workers);
        placement p;
        p.worker_domain.assign(workers, 0);
        p.source_domain.assign(sources, 0);
        p.home.resize(sources);
        for (std::uint32_t s = 0; s < sources; ++s) {
            p.home[s] = s % workers;
        }
        return p;
    }

    /// Homes for sources whose guests run on source_cpus[s], served by workers pinned to
    /// worker_cpus[w].
    [[nodiscard]] static placement plan(const cpu_topology& topo,
                                        std::span<const std::uint32_t> worker_cpus,
                                        std::span<const std::uint32_t> source_cpus) {
        check_workers(static_cast<std::uint32_t>(worker_cpus.size()));
        placement p;
        p.domains = topo.domain_count();
        p.worker_cpu.assign(worker_cpus.begin(), worker_cpus.end());
        for (const std::uint32_t c : worker_cpus) {
            check_cpu(topo, c, "worker");
            p.worker_domain.push_back(topo.domain_of(c));
        }
        std::vector<std::uint32_t> homes(worker_cpus.size(), 0);
        p.home.resize(source_cpus.size());
        for (std::size_t s = 0; s < source_cpus.size(); ++s) {
            check_cpu(topo, source_cpus[s], "guest");
            const std::uint32_t d = topo.domain_of(source_cpus[s]);
            p.source_domain.push_back(d);
            worker_id best = no_worker;
            for (std::uint32_t w = 0; w < worker_cpus.size(); ++w) {
                if (p.worker_domain[w] == d && (best == no_worker || homes[w] < homes[best])) {
                    best = w;
                }
            }
            if (best == no_worker) {
                ++p.cross_domain_homes;
                best = static_cast<worker_id>(std::min_element(homes.begin(), homes.end()) -
                                              homes.begin());
            }
            p.home[s] = best;
            ++homes[best];
        }
        return p;
    }

    /// CPUs for `workers` workers given where the guests' vCPUs run (see the header comment).
    [[nodiscard]] static std::vector<std::uint32_t>
    spread_workers(const cpu_topology& topo, std::uint32_t workers,
                   std::span<const std::uint32_t> guest_cpus) {
        check_workers(workers);
        if (workers > topo.online_count()) {
            SPLITNET_THROW(std::invalid_argument(
                "placement::spread_workers: " + std::to_string(workers) + " workers but only " +
                std::to_string(topo.online_count()) + " online CPUs"));
        }
        const std::uint32_t nd = topo.domain_count();
        std::vector<std::uint64_t> guests(nd, 0);
        std::vector<std::uint32_t> used(topo.cpu_count(), 0);
        for (const std::uint32_t c : guest_cpus) {
            check_cpu(topo, c, "guest");
            ++guests[topo.domain_of(c)];
            ++used[c];
        }
        const std::uint64_t total = guest_cpus.empty() ? 0 : guest_cpus.size();
        // Largest remainder: quota_d = workers * guests_d / total, remainders by size; with no
        // guests, an even split. A domain never gets more workers than CPUs.
        std::vector<std::uint32_t> share(nd, 0);
        std::vector<std::pair<std::uint64_t, std::uint32_t>> rem;
        std::uint32_t given = 0;
        for (std::uint32_t d = 0; d < nd; ++d) {
            const std::uint64_t num =
                total != 0 ? std::uint64_t{workers} * guests[d] : std::uint64_t{workers};
            const std::uint64_t den = total != 0 ? total : nd;
            const auto cpus = static_cast<std::uint32_t>(topo.cpus_of(d).size());
            share[d] = std::min(static_cast<std::uint32_t>(num / den), cpus);
            given += share[d];
            rem.emplace_back(num % den, d);
        }
        std::stable_sort(rem.begin(), rem.end(),
                         [](const auto& a, const auto& b) { return a.first > b.first; });
        while (given < workers) {
            bool progress = false;
            for (const auto& [r, d] : rem) {
                if (given < workers && share[d] < topo.cpus_of(d).size() &&
                    (guests[d] != 0 || total == 0)) {
                    ++share[d];
                    ++given;
                    progress = true;
                }
            }
            if (!progress) { // only domains without guests have room left
                for (std::uint32_t d = 0; d < nd && given < workers; ++d) {
                    if (share[d] < topo.cpus_of(d).size()) {
                        ++share[d];
                        ++given;
                    }
                }
            }
        }
        std::vector<std::uint32_t> cpus;
        for (std::uint32_t d = 0; d < nd; ++d) {
            std::vector<std::uint32_t> c(topo.cpus_of(d).begin(), topo.cpus_of(d).end());
            std::stable_sort(c.begin(), c.end(), [&](std::uint32_t a, std::uint32_t b) {
                return used[a] < used[b]; // CPUs without guest vCPUs first
            });
            cpus.insert(cpus.end(), c.begin(), c.begin() + share[d]);
        }
        return cpus;
    }

private:
    static void check_workers(std::uint32_t workers) {
        if (workers == 0 || workers > max_workers) {
            SPLITNET_THROW(std::invalid_argument("placement: need 1.." +
                                                 std::to_string(max_workers) + " workers, got " +
                                                 std::to_string(workers)));
        }
    }
    static void check_cpu(const cpu_topology& topo, std::uint32_t cpu, const char* who) {
        if (!topo.online(cpu)) {
            SPLITNET_THROW(std::invalid_argument(
                std::string("placement: ") + who + " CPU " + std::to_string(cpu) +
                " is offline or out of range (" + topo.describe() + ")"));
        }
    }
};

} // namespace splitnet::sched
