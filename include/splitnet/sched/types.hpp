// SPDX-License-Identifier: MIT
// splitnet/sched/types.hpp: the vocabulary shared by the scheduling policies: who is scheduled
// (entities: backend queues, each a guest's work; Xen's units), who serves (workers: the driver
// domain's threads, its "VCPUs"; Xen's pCPUs), what a worker is granted, and what it reports
// back. Priorities carry Xen credit1's values (xen/common/sched/credit.c, CSCHED_PRI_*).
#pragma once

#include <cstdint>

#include <splitnet/coalesce/clock.hpp>

namespace splitnet::sched {

using coalesce::nanoseconds;
using coalesce::never;
using coalesce::time_point;

using entity_id = std::uint32_t; ///< a schedulable backend queue, 0 .. entities-1
using worker_id = std::uint32_t; ///< a driver-domain worker thread, 0 .. workers-1
using guest_id = std::uint32_t;  ///< the guest (Xen: domain) an entity belongs to
using source_id = std::uint32_t; ///< an event source (a frontend's kick, a NIC queue)

inline constexpr entity_id no_entity = UINT32_MAX;
inline constexpr worker_id no_worker = UINT32_MAX;

/// Workers are tracked in 64-bit masks (idle workers, workers with queued work per priority).
inline constexpr std::uint32_t max_workers = 64;

/// Xen credit1 priorities, highest first; FIFO within a priority.
enum class priority : std::int8_t {
    boost = 0,  ///< CSCHED_PRI_TS_BOOST: woken by an event while UNDER
    under = -1, ///< CSCHED_PRI_TS_UNDER: has credit left this period
    over = -2,  ///< CSCHED_PRI_TS_OVER: credit < 0
    idle = -64, ///< CSCHED_PRI_IDLE: nothing to run
};

/// What pick() hands a worker: the entity to serve and how much it may serve before asking
/// again. The worker stops at whichever limit comes first or when the queue empties. `bytes` is
/// a soft limit: the packet that crosses it completes (vhost's weight works the same way).
struct grant {
    entity_id entity = no_entity;
    std::uint32_t packets = 0;   ///< NAPI-style packet budget
    std::uint64_t bytes = 0;     ///< byte budget (the rate limiter's tokens, if lower)
    nanoseconds time{};          ///< time budget (a capped guest's allowance, if lower)
    worker_id kick = no_worker;  ///< a sleeping worker the caller must wake: work is waiting
    time_point retry_at = never; ///< with no entity: call pick() again by then (a throttled or
                                 ///< parked entity becomes runnable, or a steal is allowed)

    [[nodiscard]] explicit operator bool() const noexcept { return entity != no_entity; }
};

/// What a worker reports after serving a grant.
struct usage {
    nanoseconds time{};        ///< CPU time spent on the entity (burns credit)
    std::uint64_t bytes = 0;   ///< bytes moved (charged to the rate limiter)
    std::uint32_t packets = 0; ///< packets moved (statistics)
    bool backlog = false;      ///< the entity still has work (queue not empty, ring not full)
};

} // namespace splitnet::sched
