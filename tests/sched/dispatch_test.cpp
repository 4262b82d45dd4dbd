// SPDX-License-Identifier: MIT
// Event dispatch policies (round robin, least loaded, cache-aware) and the token bucket behind
// the per-guest rate limit.
#include <array>
#include <chrono>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/sched/cpu_topology.hpp>
#include <splitnet/sched/dispatch.hpp>
#include <splitnet/sched/least_loaded_dispatch.hpp>
#include <splitnet/sched/placement.hpp>
#include <splitnet/sched/round_robin_dispatch.hpp>
#include <splitnet/sched/token_bucket.hpp>

namespace ss = splitnet::sched;
using namespace std::chrono_literals;

static_assert(ss::dispatch_policy<ss::round_robin_dispatch>);
static_assert(ss::dispatch_policy<ss::least_loaded_dispatch>);
static_assert(ss::dispatch_policy<ss::cache_aware_dispatch>);

TEST(RoundRobinDispatch, CyclesThroughWorkers) {
    ss::round_robin_dispatch d(3U);
    const std::array<std::uint32_t, 3> load{9, 0, 0};
    std::vector<ss::worker_id> got;
    for (int i = 0; i < 7; ++i) {
        got.push_back(d.dispatch(5, load));
    }
    EXPECT_EQ(got, (std::vector<ss::worker_id>{0, 1, 2, 0, 1, 2, 0}));
}

TEST(LeastLoadedDispatch, PicksTheMinimumAndSpreadsTies) {
    ss::least_loaded_dispatch d(4U);
    const std::array<std::uint32_t, 4> load{3, 1, 2, 1};
    const auto a = d.dispatch(0, load);
    const auto b = d.dispatch(0, load);
    EXPECT_TRUE(a == 1 || a == 3);
    EXPECT_TRUE(b == 1 || b == 3);
    const std::array<std::uint32_t, 4> equal{2, 2, 2, 2};
    std::array<int, 4> hits{};
    for (int i = 0; i < 8; ++i) {
        ++hits[d.dispatch(0, equal)];
    }
    for (int h : hits) {
        EXPECT_EQ(h, 2) << "ties rotate";
    }
}

TEST(CacheAwareDispatch, StaysInTheGuestsDomain) {
    const auto topo = ss::cpu_topology::uniform(8, 2); // {0-3} {4-7}
    const std::uint32_t workers[] = {0, 1, 4, 5};
    const std::uint32_t guests[] = {2, 6, 3};
    const auto p = ss::placement::plan(topo, workers, guests);
    ss::cache_aware_dispatch d(p);
    std::array<std::uint32_t, 4> load{0, 0, 0, 0};
    EXPECT_EQ(d.dispatch(0, load), p.home[0]) << "idle home";
    EXPECT_EQ(d.dispatch(1, load), p.home[1]);
    EXPECT_EQ(topo.domain_of(workers[p.home[1]]), 1U);
    // Home busy, its domain peer idle: moves within the domain, never across.
    load = {5, 0, 0, 0};
    const ss::worker_id h = p.home[0];
    ASSERT_EQ(h, 0U);
    EXPECT_EQ(d.dispatch(0, load), 1U);
    load = {5, 5, 0, 0};
    EXPECT_EQ(d.dispatch(0, load), 0U) << "the other domain is idle, but that is the "
                                          "scheduler's load balancer's call";
    // Within slack the home is kept (cache warmth beats a one-item difference).
    load = {2, 1, 0, 0};
    EXPECT_EQ(d.dispatch(0, load), 0U);
    // Unknown sources fall back to round robin over workers.
    EXPECT_LT(d.dispatch(99, load), 4U);
}

TEST(TokenBucket, UnlimitedByDefault) {
    ss::token_bucket b;
    EXPECT_FALSE(b.limited());
    b.consume(1'000'000, ss::time_point{});
    EXPECT_GT(b.available(ss::time_point{}), 0);
    EXPECT_EQ(b.ready_at(ss::time_point{} + 1s), ss::time_point{} + 1s);
}

TEST(TokenBucket, StartsFullAndRefillsExactly) {
    ss::token_bucket b({.bytes_per_second = 1'000'000, .burst_bytes = 10'000}, ss::time_point{});
    EXPECT_EQ(b.available(ss::time_point{}), 10'000);
    b.consume(25'000, ss::time_point{});
    EXPECT_EQ(b.available(ss::time_point{}), -15'000) << "debt";
    EXPECT_EQ(b.ready_at(ss::time_point{}), ss::time_point{} + 15'001us);
    EXPECT_EQ(b.available(ss::time_point{} + 15ms), 0);
    EXPECT_EQ(b.available(ss::time_point{} + 20ms), 5'000);
    EXPECT_EQ(b.available(ss::time_point{} + 1s), 10'000) << "capped at the burst";
}

TEST(TokenBucket, FractionsOfABytePerRefillAreNotLost) {
    // 1000 bytes/s refilled every 100 µs: 0.1 byte each time. A bucket that rounded each
    // refill down would never fill.
    ss::token_bucket b({.bytes_per_second = 1000, .burst_bytes = 5000}, ss::time_point{});
    b.consume(5000, ss::time_point{});
    ss::time_point t{};
    for (int i = 0; i < 10'000; ++i) { // 1 s
        t += 100us;
        (void)b.available(t);
    }
    EXPECT_EQ(b.available(t), 1000);
}

TEST(TokenBucket, TimeSpentFullEarnsNothing) {
    ss::token_bucket b({.bytes_per_second = 1'000'000, .burst_bytes = 3000}, ss::time_point{});
    b.consume(4500, ss::time_point{} + 10us); // full until then
    EXPECT_EQ(b.available(ss::time_point{} + 10us), -1500);
}

TEST(TokenBucket, DefaultBurst) {
    const ss::token_bucket slow({.bytes_per_second = 1'000'000}, ss::time_point{});
    EXPECT_EQ(slow.burst(), 64U * 1024U);
    const ss::token_bucket fast({.bytes_per_second = 1'250'000'000}, ss::time_point{});
    EXPECT_EQ(fast.burst(), 12'500'000U) << "10 ms at 10 Gbit/s";
}
