// SPDX-License-Identifier: MIT
// credit_scheduler against Xen credit1's rules (credit.c: csched_acct, csched_unit_wake,
// csched_load_balance), driven by a manual clock: credit distribution by weight, the active
// list and halving above one slice, the -1 slice floor, BOOST/UNDER/OVER transitions and
// runqueue order, proportional service by weight, caps, the per-guest rate limit, load
// balancing (own domain first, strictly higher priority, migration delay), tickles, credit
// stealing (seed 003's formula, return on wake, forgiveness, abuse limits), protocol errors, and
// a multi-threaded run under one lock for TSan.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <numeric>
#include <span>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/coalesce/manual_clock.hpp>
#include <splitnet/sched/credit.hpp>
#include <splitnet/sched/least_loaded_dispatch.hpp>
#include <splitnet/sched/round_robin_dispatch.hpp>

namespace ss = splitnet::sched;
using namespace std::chrono_literals;
using ss::time_point;

static_assert(ss::credit_policy<ss::credit>);
static_assert(ss::credit_policy<ss::credit_stealing>);
static_assert(ss::credit_policy<ss::credit_scheduler<ss::round_robin_dispatch>>);
static_assert(
    ss::credit_policy<ss::credit_scheduler<ss::least_loaded_dispatch, ss::seed_stealing>>);

namespace {

constexpr time_point at(std::chrono::nanoseconds d) {
    return time_point{} + d;
}

// A deterministic stand-in for a pipeline: W workers serve entities whose backlog is given
// (UINT64_MAX: never empties), one packet costing `per_packet`, until `end`.
template <class S>
struct rig {
    S& s;
    std::chrono::nanoseconds per_packet{1us};
    std::uint64_t packet_bytes = 1500;
    std::vector<std::uint64_t> backlog;
    std::vector<time_point> free_at;
    time_point now{};

    rig(S& sched, std::vector<std::uint64_t> b) : s(sched), backlog(std::move(b)) {
        free_at.assign(s.workers(), time_point::max());
        for (ss::entity_id e = 0; e < backlog.size(); ++e) {
            if (backlog[e] != 0) {
                kick(s.wake(e, now), now);
            }
        }
    }

    void kick(ss::worker_id k, time_point t) {
        if (k != ss::no_worker) {
            free_at[k] = std::min(free_at[k], t);
        }
    }

    void run_until(time_point end) {
        for (;;) {
            const auto w = static_cast<ss::worker_id>(
                std::min_element(free_at.begin(), free_at.end()) - free_at.begin());
            const time_point t = free_at[w];
            if (t >= end) {
                now = end;
                return;
            }
            now = t;
            const ss::grant g = s.pick(w, t);
            kick(g.kick, t);
            if (!g) {
                free_at[w] =
                    g.retry_at == ss::never ? time_point::max() : std::max(g.retry_at, t + 1ns);
                continue;
            }
            std::uint64_t& b = backlog[g.entity];
            std::uint64_t n = std::min<std::uint64_t>(g.packets, b);
            n = std::min<std::uint64_t>(n, std::max<std::int64_t>(1, g.time / per_packet));
            n = std::min<std::uint64_t>(
                n, std::max<std::uint64_t>(1, (g.bytes + packet_bytes - 1) / packet_bytes));
            n = std::max<std::uint64_t>(n, 1);
            if (b != UINT64_MAX) {
                b -= n;
            }
            const auto used = per_packet * static_cast<std::int64_t>(n);
            s.account(g.entity, w,
                      ss::usage{.time = used,
                                .bytes = n * packet_bytes,
                                .packets = static_cast<std::uint32_t>(n),
                                .backlog = b != 0},
                      t + used);
            free_at[w] = t + used;
        }
    }

    double share(ss::entity_id e, std::chrono::nanoseconds total) const {
        return static_cast<double>(s.stats(e).served_ns) / static_cast<double>(total.count());
    }
};

// Activates entity e (Xen: the tick finds it running): wake, serve for `used`, report backlog.
template <class S>
void serve_once(S& s, ss::worker_id w, ss::entity_id e, time_point t, std::chrono::nanoseconds used,
                bool backlog) {
    (void)s.wake(e, t);
    const ss::grant g = s.pick(w, t);
    ASSERT_EQ(g.entity, e);
    s.account(e, w, ss::usage{.time = used, .backlog = backlog}, t + used);
}

} // namespace

TEST(Credit, DefaultsAreXenCredit1) {
    const ss::credit_config c;
    EXPECT_EQ(c.period, 30ms) << "sched_credit_tslice_ms";
    EXPECT_EQ(c.credits_per_ms, 10U) << "CSCHED_CREDITS_PER_MSEC";
    EXPECT_EQ(ss::guest_params{}.weight, 256) << "CSCHED_DEFAULT_WEIGHT";
    EXPECT_EQ(ss::guest_params{}.cap, 0);
    EXPECT_EQ(c.quantum, 1ms) << "SCHED_DEFAULT_RATELIMIT_US";
    EXPECT_EQ(c.io_event_threshold, 150U) << "seed 003";
}

TEST(Credit, RejectsBadConfigurations) {
    EXPECT_THROW(ss::credit({.workers = 0}), std::invalid_argument);
    EXPECT_THROW(ss::credit({.workers = 65}), std::invalid_argument);
    EXPECT_THROW(ss::credit({.entities = 0}), std::invalid_argument);
    EXPECT_THROW(ss::credit({.period = 10us}), std::invalid_argument);
    ss::credit s({.workers = 1, .entities = 2});
    EXPECT_THROW(s.set_guest(5, {}), std::invalid_argument);
    EXPECT_THROW(s.set_guest(0, {.weight = 0}), std::invalid_argument);
    ss::credit_config c{.workers = 2, .entities = 2};
    c.layout = ss::placement::single_domain(3, 2);
    EXPECT_THROW(ss::credit{c}, std::invalid_argument);
}

TEST(Credit, AccountingSharesCreditByWeight) {
    ss::credit s({.workers = 1, .entities = 3});
    s.set_guest(1, {.weight = 512});
    for (ss::entity_id e = 0; e < 3; ++e) {
        serve_once(s, 0, e, at(1ms), 0ns, false);
        EXPECT_TRUE(s.active(e));
        EXPECT_EQ(s.credit(e), 0);
    }
    EXPECT_FALSE(s.pick(0, at(30ms))) << "nothing to run, but the period's accounting ran";
    EXPECT_EQ(s.stats().accountings, 1U);
    // 300 credits for one worker, weights 256:512:256.
    EXPECT_EQ(s.credit(0), 75);
    EXPECT_EQ(s.credit(1), 150);
    EXPECT_EQ(s.credit(2), 75);
}

TEST(Credit, IdleEntityLeavesTheActiveListWithItsCreditHalved) {
    ss::credit s({.workers = 1, .entities = 1});
    serve_once(s, 0, 0, at(0ns), 0ns, false);
    (void)s.pick(0, at(30ms));
    EXPECT_EQ(s.credit(0), 300) << "one slice: not above the limit yet";
    EXPECT_TRUE(s.active(0));
    (void)s.pick(0, at(60ms));
    EXPECT_FALSE(s.active(0)) << "credit 600 > 300: stops earning";
    EXPECT_EQ(s.credit(0), 300) << "halved";
    (void)s.pick(0, at(90ms));
    EXPECT_EQ(s.credit(0), 300) << "inactive entities earn nothing";
}

TEST(Credit, CreditFloorIsMinusOneSlice) {
    ss::credit s({.workers = 1, .entities = 1});
    serve_once(s, 0, 0, at(0ns), 100ms, true); // one long service reported at once
    EXPECT_EQ(s.credit(0), -1000);
    EXPECT_EQ(s.prio(0), ss::priority::over);
    (void)s.pick(0, at(100ms)); // three periods due: -1000+300 -> clamp -300 -> 0 -> 300
    EXPECT_EQ(s.stats().accountings, 3U);
    EXPECT_EQ(s.credit(0), 300);
    ss::credit t({.workers = 1, .entities = 1});
    serve_once(t, 0, 0, at(0ns), 100ms, true);
    t.account(0, 0, {}, at(29ms)); // a protocol error, ignored
    EXPECT_EQ(t.stats().protocol_errors, 1U);
}

TEST(Credit, OnePeriodAfterALongOverrunIsClampedAtMinusOneSlice) {
    ss::credit s({.workers = 1, .entities = 2});
    serve_once(s, 0, 1, at(0ns), 0ns, false); // a second active entity shares the credit
    (void)s.wake(0, at(0ns));
    const auto g = s.pick(0, at(0ns));
    ASSERT_EQ(g.entity, 0U);
    s.account(0, 0, {.time = 100ms, .backlog = true}, at(29ms));
    (void)s.pick(0, at(30ms)); // one accounting: -1000 + 150 -> clamped to -300
    EXPECT_EQ(s.stats().accountings, 1U);
    EXPECT_EQ(s.credit(0), -300);
}

TEST(Credit, PriorityTransitionsFollowXen) {
    ss::credit s({.workers = 1, .entities = 2});
    EXPECT_EQ(s.prio(0), ss::priority::under) << "new units start UNDER with 0 credit";
    EXPECT_FALSE(s.active(0));
    EXPECT_EQ(s.wake(0, at(0ns)), 0U) << "the sleeping worker is kicked";
    EXPECT_EQ(s.prio(0), ss::priority::boost) << "woken while UNDER";
    ASSERT_EQ(s.pick(0, at(0ns)).entity, 0U);
    s.account(0, 0, {.time = 1ms, .backlog = true}, at(1ms));
    EXPECT_EQ(s.prio(0), ss::priority::over) << "BOOST ends after the service; credit -10";
    EXPECT_EQ(s.state(0), ss::entity_state::queued);
    ASSERT_EQ(s.pick(0, at(1ms)).entity, 0U);
    s.account(0, 0, {.time = 0ns, .backlog = false}, at(1ms));
    EXPECT_EQ(s.state(0), ss::entity_state::idle);
    (void)s.wake(0, at(2ms));
    EXPECT_EQ(s.prio(0), ss::priority::over) << "an OVER unit is not boosted";
    EXPECT_EQ(s.stats().boosts, 1U);
    // BOOST also ends at accounting.
    serve_once(s, 0, 1, at(3ms), 0ns, false);
    (void)s.wake(1, at(4ms));
    EXPECT_EQ(s.prio(1), ss::priority::boost);
    (void)s.pick(0, at(30ms)); // accounting, then entity 1 (it is UNDER now) is picked
    EXPECT_EQ(s.prio(0), ss::priority::under) << "-10 + 150 >= 0";
    EXPECT_EQ(s.credit(1), 150);
}

TEST(Credit, RunqueueOrderIsBoostUnderOverFifoWithin) {
    ss::credit s({.workers = 1, .entities = 4});
    for (ss::entity_id e : {0U, 1U, 3U}) {
        (void)s.wake(e, at(0ns));
    }
    ASSERT_EQ(s.pick(0, at(0ns)).entity, 0U);
    s.account(0, 0, {.time = 0ns, .backlog = true}, at(0ns)); // UNDER, queued
    ASSERT_EQ(s.pick(0, at(0ns)).entity, 1U);
    s.account(1, 0, {.time = 0ns, .backlog = true}, at(0ns)); // UNDER, behind 0
    ASSERT_EQ(s.pick(0, at(0ns)).entity, 3U);
    s.account(3, 0, {.time = 5ms, .backlog = true}, at(5ms)); // OVER
    (void)s.wake(2, at(5ms));                                 // BOOST
    std::vector<ss::entity_id> order;
    for (int i = 0; i < 4; ++i) {
        const auto g = s.pick(0, at(5ms));
        ASSERT_TRUE(g);
        order.push_back(g.entity);
        s.account(g.entity, 0, {.time = 0ns, .backlog = false}, at(5ms));
    }
    EXPECT_EQ(order, (std::vector<ss::entity_id>{2, 0, 1, 3}));
    EXPECT_FALSE(s.pick(0, at(5ms)));
}

TEST(Credit, WeightsGiveProportionalService) {
    ss::credit s({.workers = 1, .entities = 3});
    s.set_guest(0, {.weight = 256});
    s.set_guest(1, {.weight = 512});
    s.set_guest(2, {.weight = 1024});
    rig r(s, {UINT64_MAX, UINT64_MAX, UINT64_MAX});
    r.run_until(at(3s));
    const double total = 3e9;
    const double w[] = {1.0 / 7, 2.0 / 7, 4.0 / 7};
    for (ss::entity_id e = 0; e < 3; ++e) {
        const double got = static_cast<double>(s.stats(e).served_ns) / total;
        EXPECT_NEAR(got, w[e], 0.02) << "entity " << e;
    }
}

TEST(Credit, WeightsAcrossTwoWorkers) {
    // Weights 1:1:2:4 over two workers: 0.25, 0.25, 0.5 and 1.0 worker; an entity can never
    // use more than one worker (credit1's peak of one slice per unit).
    ss::credit s({.workers = 2, .entities = 4});
    const std::uint16_t weights[] = {128, 128, 256, 512};
    for (ss::guest_id g = 0; g < 4; ++g) {
        s.set_guest(g, {.weight = weights[g]});
    }
    rig r(s, {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX});
    r.run_until(at(3s));
    const double expect[] = {0.25, 0.25, 0.5, 1.0};
    for (ss::entity_id e = 0; e < 4; ++e) {
        EXPECT_NEAR(r.share(e, 3s), expect[e], 0.04) << "entity " << e;
    }
}

TEST(Credit, CapLimitsAGuestEvenWithSpareCapacity) {
    ss::credit s({.workers = 1, .entities = 1});
    s.set_guest(0, {.cap = 25});
    rig r(s, {UINT64_MAX});
    r.run_until(at(3s));
    EXPECT_NEAR(r.share(0, 3s), 0.25, 0.01);
    EXPECT_GT(s.stats().parks, 50U);
    EXPECT_GT(s.stats().unparks, 50U);
}

TEST(Credit, CapAlongsideAnUncappedGuest) {
    ss::credit s({.workers = 1, .entities = 2});
    s.set_guest(0, {.cap = 25});
    rig r(s, {UINT64_MAX, UINT64_MAX});
    r.run_until(at(3s));
    EXPECT_LE(r.share(0, 3s), 0.26);
    EXPECT_GE(r.share(0, 3s), 0.22);
    EXPECT_NEAR(r.share(1, 3s), 0.75, 0.03) << "work-conserving for the uncapped guest";
}

TEST(Credit, RateLimitIsExactAndSharedByAGuestsQueues) {
    // Guest 0 owns both queues: netback's rate= would give each queue the rate (2x).
    ss::credit s({.workers = 1, .entities = 2, .guests = 1});
    s.set_guest(0, {.rate = {.bytes_per_second = 10'000'000, .burst_bytes = 65'536}});
    rig r(s, {UINT64_MAX, UINT64_MAX});
    r.run_until(at(1s));
    const std::uint64_t bytes = s.stats(0).bytes + s.stats(1).bytes;
    EXPECT_GE(bytes, 10'000'000U);
    EXPECT_LE(bytes, 10'000'000U + 65'536U + 2 * 1500U) << "rate x time + burst + one packet";
    EXPECT_GT(s.stats().throttles, 100U);
    const double a = static_cast<double>(s.stats(0).bytes);
    const double b = static_cast<double>(s.stats(1).bytes);
    EXPECT_NEAR(a / (a + b), 0.5, 0.05) << "the two queues share the bucket fairly";
}

TEST(Credit, ThrottledWorkerIsToldWhenToRetry) {
    ss::credit s({.workers = 1, .entities = 1});
    s.set_guest(0, {.rate = {.bytes_per_second = 1'000'000, .burst_bytes = 3000}});
    (void)s.wake(0, at(0ns));
    auto g = s.pick(0, at(0ns));
    ASSERT_TRUE(g);
    EXPECT_EQ(g.bytes, 3000U) << "the byte budget is the tokens left";
    s.account(0, 0, {.time = 10us, .bytes = 4500, .packets = 3, .backlog = true}, at(10us));
    EXPECT_EQ(s.state(0), ss::entity_state::throttled);
    g = s.pick(0, at(10us));
    EXPECT_FALSE(g);
    // 1500 bytes of debt at 1 MB/s, refilled from 10 µs: positive again 1.501 ms later
    // (rounded up to the 1.024 µs timer tick).
    EXPECT_GE(g.retry_at, at(1511us));
    EXPECT_LE(g.retry_at, at(1511us) + 1024ns);
    g = s.pick(0, g.retry_at);
    EXPECT_EQ(g.entity, 0U);
}

namespace {
// Every event to worker 0, so the test sees the scheduler's load balancing alone.
struct to_worker_zero {
    explicit to_worker_zero(const ss::placement&) noexcept {}
    ss::worker_id dispatch(ss::source_id, std::span<const std::uint32_t>) noexcept { return 0; }
};
static_assert(ss::dispatch_policy<to_worker_zero>);
} // namespace

TEST(Credit, IdleWorkersStealOwnDomainFirst) {
    // Workers 0,1 share an LLC; worker 2 does not. Every event goes to worker 0.
    const auto topo = ss::cpu_topology::uniform(4, 2);
    const std::uint32_t wcpus[] = {0, 1, 2};
    const std::uint32_t scpus[] = {0, 0, 0, 0};
    ss::credit_config c{.workers = 3, .entities = 4};
    c.layout = ss::placement::plan(topo, wcpus, scpus);
    ss::credit_scheduler<to_worker_zero> s(c);
    EXPECT_EQ(s.wake(0, at(0ns)), 0U) << "home sleeps: kick it";
    EXPECT_EQ(s.wake(1, at(0ns)), 1U) << "home busy: kick a sleeper of its domain";
    EXPECT_EQ(s.wake(2, at(0ns)), 2U) << "then one of another domain";
    EXPECT_EQ(s.wake(3, at(0ns)), ss::no_worker) << "nobody left asleep";
    // Worker 0 was kicked but has not run yet: its queue is its own (Xen does not steal from
    // a pCPU still running the idle unit).
    const auto g1 = s.pick(1, at(0ns));
    EXPECT_FALSE(g1);
    EXPECT_EQ(s.stats().steals_local, 0U);
    const auto g0 = s.pick(0, at(1us));
    EXPECT_EQ(g0.entity, 0U);
    EXPECT_EQ(g0.kick, 1U) << "three entities wait on worker 0; worker 1 sleeps again";
    EXPECT_EQ(s.pick(1, at(6us)).entity, 1U);
    EXPECT_EQ(s.stats().steals_local, 1U);
    EXPECT_EQ(s.pick(2, at(6us)).entity, 2U) << "nothing left in its own domain: remote";
    EXPECT_EQ(s.stats().steals_remote, 1U);
    s.account(0, 0, {.time = 5us, .backlog = false}, at(6us));
    const auto g = s.pick(0, at(6us));
    EXPECT_EQ(g.entity, 3U);
    EXPECT_EQ(g.kick, ss::no_worker);
}

TEST(Credit, MigrationDelayKeepsFreshWorkInItsDomain) {
    const auto topo = ss::cpu_topology::uniform(2, 2);
    const std::uint32_t wcpus[] = {0, 1};
    const std::uint32_t scpus[] = {0, 0};
    ss::credit_config c{.workers = 2, .entities = 2, .migration_delay = 500us};
    c.layout = ss::placement::plan(topo, wcpus, scpus);
    ss::credit s(c);
    EXPECT_EQ(s.wake(0, at(0ns)), 0U);
    EXPECT_EQ(s.pick(0, at(0ns)).entity, 0U);
    EXPECT_EQ(s.wake(1, at(0ns)), 1U) << "home busy, a remote sleeper is kicked";
    auto g = s.pick(1, at(100us));
    EXPECT_FALSE(g) << "younger than the migration delay";
    EXPECT_EQ(g.retry_at, at(500us));
    g = s.pick(1, g.retry_at);
    EXPECT_EQ(g.entity, 1U);
    EXPECT_EQ(s.stats().steals_remote, 1U);
}

TEST(Credit, LoadBalanceTakesOnlyStrictlyHigherPriority) {
    ss::credit s({.workers = 2, .entities = 3});
    // Entity 0 (home 0) becomes OVER and waits on worker 0... no: on the worker that served it.
    serve_once(s, 1, 1, at(0ns), 5ms, true); // entity 1 OVER, queued on worker 1
    EXPECT_EQ(s.where(1), 1U);
    serve_once(s, 0, 0, at(5ms), 0ns, true); // entity 0 UNDER, queued on worker 0
    // Worker 1's best local is OVER: it takes worker 0's UNDER entity first.
    EXPECT_EQ(s.pick(1, at(6ms)).entity, 0U);
    EXPECT_EQ(s.stats().steals_local, 1U);
}

TEST(Credit, WakeDuringServiceRequeuesAndIdleDequeues) {
    ss::credit s({.workers = 1, .entities = 2});
    (void)s.wake(0, at(0ns));
    ASSERT_EQ(s.pick(0, at(0ns)).entity, 0U);
    EXPECT_EQ(s.wake(0, at(1us)), ss::no_worker) << "running: remembered, nobody to kick";
    s.account(0, 0, {.time = 2us, .backlog = false}, at(2us));
    EXPECT_EQ(s.state(0), ss::entity_state::queued) << "the event during service keeps it runnable";
    s.idle(0, at(3us));
    EXPECT_EQ(s.state(0), ss::entity_state::idle);
    EXPECT_FALSE(s.pick(0, at(3us)));
    EXPECT_EQ(s.idle_workers(), 1U);
}

TEST(Credit, ProtocolErrorsAreCountedAndIgnored) {
    ss::credit s({.workers = 1, .entities = 1});
    s.account(0, 0, {}, at(0ns));
    (void)s.wake(7, at(0ns));
    s.idle(7, at(0ns));
    EXPECT_FALSE(s.pick(3, at(0ns)));
    EXPECT_EQ(s.stats().protocol_errors, 4U);
    (void)s.wake(0, at(0ns));
    ASSERT_TRUE(s.pick(0, at(0ns)));
    EXPECT_EQ(s.pick(0, at(0ns)).entity, 0U) << "a pick without account requeues, re-picks";
    EXPECT_EQ(s.stats().protocol_errors, 5U);
}

// --- credit stealing
// ------------------------------------------------------------------------------

namespace {
// Entity 0 is I/O-busy (queued, `events` wakes); entities 1.. are active and idle.
template <class S>
void setup_round(S& s, std::uint32_t lenders, std::uint32_t events) {
    serve_once(s, 0, 0, at(0ns), 0ns, true);
    for (ss::entity_id e = 1; e <= lenders; ++e) {
        const auto g = s.pick(0, at(0ns)); // entity 0 is queued; serve it, then the lender
        s.account(g.entity, 0, {.time = 0ns, .backlog = true}, at(0ns));
        serve_once(s, 0, e, at(0ns), 0ns, false);
    }
    for (std::uint32_t i = 1; i < events; ++i) { // serve_once woke it once already
        (void)s.wake(0, at(1ms));
    }
}
} // namespace

TEST(CreditStealing, FollowsTheSeedFormula) {
    ss::credit_stealing s({.workers = 1, .entities = 3});
    setup_round(s, 2, 200);
    const auto g = s.pick(0, at(30ms)); // accounting: 100 credits each, then the loan round
    EXPECT_EQ(g.entity, 0U);
    // Steal = Credit(idle) / (2 * n_io) = (100 + 100) / (2 * 1) = 100 credits (10 ms).
    EXPECT_EQ(s.borrowed(0), 10ms);
    EXPECT_EQ(s.credit(0), 200);
    for (ss::entity_id e : {1U, 2U}) {
        EXPECT_EQ(s.lent(e), 5ms) << "each idle entity lends half";
        EXPECT_EQ(s.credit(e), 50);
    }
    EXPECT_EQ(s.stats().credit_lent_ns, 10'000'000U);
    EXPECT_EQ(s.stats().loan_rounds, 1U);
}

TEST(CreditStealing, TwoBorrowersSplitTheLoan) {
    ss::credit_stealing s({.workers = 1, .entities = 4});
    // Entities 0 and 1 busy, 2 and 3 idle.
    serve_once(s, 0, 0, at(0ns), 0ns, true);
    (void)s.wake(1, at(0ns));
    for (ss::entity_id e : {1U, 0U}) {
        const auto g = s.pick(0, at(0ns));
        ASSERT_EQ(g.entity, e);
        s.account(e, 0, {.time = 0ns, .backlog = true}, at(0ns));
    }
    serve_once(s, 0, 2, at(0ns), 0ns, false); // 2 is BOOSTed, picked before the queued ones
    serve_once(s, 0, 3, at(0ns), 0ns, false);
    for (int i = 0; i < 150; ++i) {
        (void)s.wake(0, at(1ms));
        (void)s.wake(1, at(1ms));
    }
    (void)s.pick(0, at(30ms)); // 75 credits each; idle 150 -> 150 / (2*2) = 37.5 each
    EXPECT_EQ(s.borrowed(0), 3750us);
    EXPECT_EQ(s.borrowed(1), 3750us);
    EXPECT_EQ(s.lent(2) + s.lent(3), 7500us);
}

TEST(CreditStealing, LoanReturnsWhenTheLenderWakesAndBorrowersRepay) {
    ss::credit_stealing s({.workers = 1, .entities = 3});
    setup_round(s, 2, 200);
    auto g = s.pick(0, at(30ms));
    ASSERT_EQ(g.entity, 0U);
    s.account(0, 0, {.time = 0ns, .backlog = true}, at(30ms));
    EXPECT_EQ(s.credit(1), 50);
    EXPECT_EQ(s.wake(1, at(31ms)), ss::no_worker);
    EXPECT_EQ(s.credit(1), 100) << "its credit is back the moment it has work";
    EXPECT_EQ(s.prio(1), ss::priority::boost);
    EXPECT_EQ(s.lent(1), 0ns);
    EXPECT_EQ(s.stats().credit_returned_ns, 5'000'000U);
    (void)s.wake(1, at(31ms)); // a second wake returns nothing more
    EXPECT_EQ(s.credit(1), 100);
    g = s.pick(0, at(31ms));
    ASSERT_EQ(g.entity, 1U);
    s.account(1, 0, {.time = 0ns, .backlog = false}, at(31ms));
    g = s.pick(0, at(31ms));
    ASSERT_EQ(g.entity, 0U);
    s.account(0, 0, {.time = 0ns, .backlog = true}, at(31ms));
    EXPECT_EQ(s.credit(0), 150) << "the borrower repaid what the lender took back";
    // The other loan was never reclaimed: forgiven at the next accounting.
    (void)s.pick(0, at(60ms));
    EXPECT_EQ(s.stats().credit_forgiven_ns, 5'000'000U);
    EXPECT_EQ(s.lent(2), 0ns);
}

TEST(CreditStealing, AbuseLimits) {
    { // too few events: not I/O-busy
        ss::credit_stealing s({.workers = 1, .entities = 3});
        setup_round(s, 2, 149);
        (void)s.pick(0, at(30ms));
        EXPECT_EQ(s.borrowed(0), 0ns);
        EXPECT_EQ(s.stats().loan_rounds, 0U);
    }
    { // a capped guest never borrows
        ss::credit_stealing s({.workers = 1, .entities = 3});
        s.set_guest(0, {.cap = 90});
        setup_round(s, 2, 200);
        (void)s.pick(0, at(30ms));
        EXPECT_EQ(s.borrowed(0), 0ns);
    }
    { // an entity that never ran is not active and lends nothing
        ss::credit_stealing s({.workers = 1, .entities = 3});
        setup_round(s, 1, 200); // entity 2 never woken
        (void)s.pick(0, at(30ms));
        EXPECT_EQ(s.lent(2), 0ns);
        EXPECT_EQ(s.lent(1), 7500us) << "two active: 150 credits each; half of entity 1's";
        EXPECT_EQ(s.borrowed(0), 7500us);
    }
    { // the per-period ceiling
        ss::credit_stealing s({.workers = 1, .entities = 3, .max_borrow_percent = 10});
        setup_round(s, 2, 200);
        (void)s.pick(0, at(30ms));
        EXPECT_EQ(s.borrowed(0), 3ms);
        EXPECT_EQ(s.lent(1) + s.lent(2), 3ms) << "lenders give only what is borrowed";
    }
    { // plain credit1 moves nothing
        ss::credit s({.workers = 1, .entities = 3});
        setup_round(s, 2, 200);
        (void)s.pick(0, at(30ms));
        EXPECT_EQ(s.borrowed(0), 0ns);
        EXPECT_EQ(s.credit(1), 100);
    }
}

// --- threading rule ---------------------------------------------------------------------------

// Four worker threads and one event thread share the scheduler under one mutex, as a pipeline
// does; TSan (CI) checks there is no access outside it. Every packet produced is served once.
TEST(Credit, WorkersUnderOneLock) {
    constexpr ss::entity_id entities = 32;
    ss::credit_stealing s({.workers = 4, .entities = entities});
    std::mutex m;
    std::vector<std::uint64_t> backlog(entities, 0);
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> served{0};
    std::uint64_t produced = 0;
    std::atomic<std::int64_t> clock_ns{0};
    auto now = [&] {
        return time_point{} + std::chrono::nanoseconds{clock_ns.fetch_add(100)};
    };
    std::vector<std::thread> workers;
    for (ss::worker_id w = 0; w < 4; ++w) {
        workers.emplace_back([&, w] {
            while (!stop.load(std::memory_order_relaxed)) {
                std::unique_lock lk(m);
                const ss::grant g = s.pick(w, now());
                if (!g) {
                    lk.unlock();
                    std::this_thread::yield();
                    continue;
                }
                const std::uint64_t n = std::min<std::uint64_t>(g.packets, backlog[g.entity]);
                backlog[g.entity] -= n;
                lk.unlock();
                served.fetch_add(n, std::memory_order_relaxed); // "serving", outside the lock
                lk.lock();
                s.account(g.entity, w,
                          {.time = std::chrono::microseconds{static_cast<std::int64_t>(n)},
                           .bytes = n * 1500,
                           .packets = static_cast<std::uint32_t>(n),
                           .backlog = backlog[g.entity] != 0},
                          now());
            }
        });
    }
    std::uint64_t rng = 1;
    for (int i = 0; i < 20000; ++i) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        const auto e = static_cast<ss::entity_id>((rng >> 33) % entities);
        const std::uint64_t k = 1 + (rng >> 40) % 16;
        std::lock_guard lk(m);
        backlog[e] += k;
        produced += k;
        (void)s.wake(e, now());
    }
    for (;;) {
        {
            std::lock_guard lk(m);
            if (std::accumulate(backlog.begin(), backlog.end(), std::uint64_t{0}) == 0) {
                break;
            }
        }
        std::this_thread::yield();
    }
    stop = true;
    for (auto& t : workers) {
        t.join();
    }
    EXPECT_EQ(served.load(), produced);
    std::lock_guard lk(m);
    EXPECT_EQ(s.stats().protocol_errors, 0U);
    std::uint64_t packets = 0;
    for (ss::entity_id e = 0; e < entities; ++e) {
        packets += s.stats(e).packets;
    }
    EXPECT_EQ(packets, produced);
}
