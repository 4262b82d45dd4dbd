// SPDX-License-Identifier: MIT
// Moderation policies, driven by a manual clock: the properties every moderation_policy shares
// (typed over all of them), ethtool's rule in each form (frame threshold, time threshold, both,
// disabled by N = 1 or T = 0, no frame limit with N = 0), run-time retuning, and the adaptive
// loop: converging on steady rates, bounding the added delay, reacting at once to an overflow,
// backing off multiplicatively while drops continue and recovering additively after.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stdexcept>

#include <gtest/gtest.h>

#include <splitnet/coalesce/adaptive_moderation.hpp>
#include <splitnet/coalesce/manual_clock.hpp>
#include <splitnet/coalesce/moderation.hpp>
#include <splitnet/coalesce/no_moderation.hpp>
#include <splitnet/coalesce/tunable_moderation.hpp>

namespace sc = splitnet::coalesce;
namespace mod = splitnet::coalesce::moderation;
using namespace std::chrono_literals;

// --- properties of every policy ------------------------------------------------------------------

template <class P>
class ModerationPolicy : public ::testing::Test {};
using policies =
    ::testing::Types<mod::none, mod::fixed<>, mod::fixed<8, 20>, mod::tunable, mod::adaptive>;
TYPED_TEST_SUITE(ModerationPolicy, policies);

TYPED_TEST(ModerationPolicy, SatisfiesTheConceptWithNoexceptCalls) {
    static_assert(sc::moderation_policy<TypeParam>);
    TypeParam p;
    const sc::time_point t{};
    static_assert(noexcept(p.on_events(1, t)));
    static_assert(noexcept(p.on_fired(t)));
    static_assert(noexcept(p.on_drop(1)));
    static_assert(noexcept(p.deadline()));
    (void)p;
}

TYPED_TEST(ModerationPolicy, NothingPendingMeansNoFireAndNoDeadline) {
    TypeParam p;
    EXPECT_FALSE(p.should_fire(sc::time_point{} + 1s));
    EXPECT_EQ(p.deadline(), sc::never);
    EXPECT_FALSE(p.on_events(0, sc::time_point{} + 1s)) << "zero events start nothing";
    EXPECT_EQ(p.deadline(), sc::never);
}

// Whatever the policy, an event is never held past its deadline: a pipeline that fires when
// on_events says so and otherwise at deadline() notifies every event within the deadline.
TYPED_TEST(ModerationPolicy, EveryEventIsFiredByTheDeadlineItWasGiven) {
    TypeParam p;
    sc::manual_clock clk;
    std::uint64_t fired_events = 0, events = 0;
    sc::time_point oldest = sc::never;
    for (int i = 0; i < 5000; ++i) {
        // Bursty arrivals: gaps of 0.5 µs to 300 µs.
        clk.advance(std::chrono::nanoseconds{500 + (i * 7919) % 300'000});
        // A pending deadline that has passed fires first (the timer path).
        if (p.deadline() <= clk.now()) {
            ASSERT_TRUE(p.should_fire(clk.now()));
            p.on_fired(clk.now());
            fired_events = events;
            oldest = sc::never;
        }
        ++events;
        if (oldest == sc::never) {
            oldest = clk.now();
        }
        if (p.on_events(1, clk.now())) {
            p.on_fired(clk.now());
            fired_events = events;
            oldest = sc::never;
        } else {
            ASSERT_NE(p.deadline(), sc::never) << "a pending event needs a deadline";
            ASSERT_GE(p.deadline(), oldest);
            ASSERT_LE(p.deadline() - oldest, 1ms) << "every policy here bounds the delay";
        }
    }
    EXPECT_GE(events - fired_events, 0U);
    EXPECT_EQ(p.stats().events, events);
}

TYPED_TEST(ModerationPolicy, OnFiredEmptiesTheBatch) {
    TypeParam p;
    (void)p.on_events(3, sc::time_point{} + 1us);
    p.on_fired(sc::time_point{} + 2us);
    EXPECT_FALSE(p.should_fire(sc::time_point{} + 1s));
    EXPECT_EQ(p.deadline(), sc::never);
    EXPECT_EQ(p.stats().notify, 1U);
}

// --- ethtool's rule
// --------------------------------------------------------------------------------

TEST(FixedModeration, FrameThresholdFiresOnTheNthEvent) {
    mod::fixed<8, 1000> p;
    for (int i = 1; i < 8; ++i) {
        EXPECT_FALSE(p.on_events(1, sc::time_point{} + std::chrono::microseconds{i}))
            << "event " << i;
    }
    EXPECT_TRUE(p.on_events(1, sc::time_point{} + 8us));
    p.on_fired(sc::time_point{} + 8us);
    EXPECT_EQ(p.stats().notify_frames, 1U);
    EXPECT_EQ(p.stats().notify_timeout, 0U);
}

TEST(FixedModeration, BurstCrossingTheThresholdFiresAtOnce) {
    mod::fixed<8, 1000> p;
    EXPECT_FALSE(p.on_events(5, sc::time_point{}));
    EXPECT_TRUE(p.on_events(5, sc::time_point{})) << "10 >= 8";
    EXPECT_EQ(p.pending(), 10U);
}

TEST(FixedModeration, TimeThresholdCountsFromTheFirstPendingEvent) {
    mod::fixed<64, 50> p;
    const auto t0 = sc::time_point{} + 1ms;
    EXPECT_FALSE(p.on_events(1, t0));
    EXPECT_FALSE(p.on_events(1, t0 + 30us)) << "a later event does not restart the clock";
    EXPECT_EQ(p.deadline(), t0 + 50us);
    EXPECT_FALSE(p.should_fire(t0 + 50us - 1ns));
    EXPECT_TRUE(p.should_fire(t0 + 50us));
    p.on_fired(t0 + 50us);
    EXPECT_EQ(p.stats().notify_timeout, 1U);
    // The next batch starts its own clock.
    EXPECT_FALSE(p.on_events(1, t0 + 200us));
    EXPECT_EQ(p.deadline(), t0 + 250us);
}

TEST(FixedModeration, BothRulesWhicheverComesFirst) {
    mod::fixed<4, 10> p;
    // Slow events: the timeout wins.
    EXPECT_FALSE(p.on_events(1, sc::time_point{}));
    EXPECT_FALSE(p.on_events(1, sc::time_point{} + 6us));
    EXPECT_TRUE(p.on_events(1, sc::time_point{} + 10us)) << "on_events also checks the time";
    p.on_fired(sc::time_point{} + 10us);
    // Fast events: the frame count wins.
    for (int i = 0; i < 3; ++i) {
        EXPECT_FALSE(p.on_events(1, sc::time_point{} + 20us));
    }
    EXPECT_TRUE(p.on_events(1, sc::time_point{} + 21us));
    p.on_fired(sc::time_point{} + 21us);
    EXPECT_EQ(p.stats().notify_timeout, 1U);
    EXPECT_EQ(p.stats().notify_frames, 1U);
}

TEST(FixedModeration, OneFrameOrZeroTimeDisablesCoalescing) {
    mod::fixed<1, 100> by_frames;
    mod::fixed<64, 0> by_time;
    for (int i = 0; i < 5; ++i) {
        const auto t = sc::time_point{} + std::chrono::microseconds{i};
        EXPECT_TRUE(by_frames.on_events(1, t));
        by_frames.on_fired(t);
        EXPECT_TRUE(by_time.on_events(1, t));
        by_time.on_fired(t);
    }
    EXPECT_EQ(by_frames.stats().notify, 5U);
    EXPECT_EQ(by_time.stats().notify, 5U);
}

TEST(TunableModeration, ZeroFramesMeansTheTimeoutAlone) {
    mod::tunable p({.max_frames = 0, .timeout = 20us});
    EXPECT_FALSE(p.on_events(100000, sc::time_point{}));
    EXPECT_FALSE(p.should_fire(sc::time_point{} + 19us));
    EXPECT_TRUE(p.should_fire(sc::time_point{} + 20us));
}

TEST(TunableModeration, RetuningAppliesToThePendingBatch) {
    mod::tunable p({.max_frames = 32, .timeout = 100us});
    EXPECT_FALSE(p.on_events(10, sc::time_point{}));
    EXPECT_EQ(p.deadline(), sc::time_point{} + 100us);
    p.set({.max_frames = 8, .timeout = 100us}); // ethtool -C rx-frames 8
    EXPECT_TRUE(p.should_fire(sc::time_point{})) << "10 pending >= 8";
    p.set({.max_frames = 32, .timeout = 5us});
    EXPECT_EQ(p.deadline(), sc::time_point{} + 5us);
    EXPECT_EQ(p.params(), (sc::coalesce_params{32, 5us}));
}

TEST(NoModeration, FiresOnEveryEvent) {
    mod::none p;
    for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(p.on_events(1, sc::time_point{}));
        p.on_fired(sc::time_point{});
    }
    EXPECT_EQ(p.stats().notify_frames, 3U);
}

TEST(Moderation, DropsAreCounted) {
    mod::fixed<> f;
    f.on_drop(3);
    f.on_drop(2);
    EXPECT_EQ(f.stats().drops, 5U);
}

// --- adaptive -----------------------------------------------------------------------------------

namespace {

// Feeds `rate_pps` events per second (one event per arrival) for `duration`, firing when told,
// and checks every event is fired within the bound. Returns the params in force at the end.
sc::coalesce_params drive(mod::adaptive& p, sc::manual_clock& clk, std::uint64_t rate_pps,
                          std::chrono::nanoseconds duration, std::chrono::nanoseconds bound,
                          bool check_bound = true) {
    const auto gap =
        std::chrono::nanoseconds{1'000'000'000LL / static_cast<std::int64_t>(rate_pps)};
    const auto end = clk.now() + duration;
    sc::time_point oldest = sc::never;
    while (clk.now() < end) {
        const auto next = clk.now() + gap;
        if (p.deadline() < next) { // the timer fires before the next event
            clk.set(std::max(clk.now(), p.deadline()));
            EXPECT_TRUE(p.should_fire(clk.now()));
            if (check_bound) {
                EXPECT_LE(clk.now() - oldest, bound);
            }
            p.on_fired(clk.now());
            oldest = sc::never;
        }
        clk.set(next);
        if (oldest == sc::never) {
            oldest = clk.now();
        }
        if (p.on_events(1, clk.now())) {
            if (check_bound) {
                EXPECT_LE(clk.now() - oldest, bound);
            }
            p.on_fired(clk.now());
            oldest = sc::never;
        }
    }
    return p.params();
}

} // namespace

TEST(AdaptiveModeration, StartsWithCoalescingOff) {
    mod::adaptive p;
    EXPECT_EQ(p.params().max_frames, 1U);
    EXPECT_TRUE(p.on_events(1, sc::time_point{}));
}

TEST(AdaptiveModeration, ConvergesOnASteadyRate) {
    // 1 Mpps with a 50 µs bound and 50% fill: 50 events per bound, so N -> 25.
    mod::adaptive p({.latency_bound = 50us,
                     .max_frames = 64,
                     .queue_capacity = 256,
                     .sample_interval = 100us,
                     .fill_percent = 50});
    sc::manual_clock clk;
    const auto params = drive(p, clk, 1'000'000, 5ms, 50us);
    EXPECT_GE(params.max_frames, 22U);
    EXPECT_LE(params.max_frames, 28U);
    EXPECT_EQ(params.timeout, 50us) << "T stays at the bound without drops";
    EXPECT_NEAR(p.estimated_events_per_bound(), 50.0, 2.0);
    // Once converged it stays put (hysteresis): no more retunes over another 5 ms.
    const auto retunes = p.stats().retunes;
    (void)drive(p, clk, 1'000'000, 5ms, 50us);
    EXPECT_EQ(p.stats().retunes, retunes);
    // Most fires come from the frame rule, not the timer.
    EXPECT_GT(p.stats().notify_frames, 10 * p.stats().notify_timeout);
}

TEST(AdaptiveModeration, LowRatesGetNoAddedDelay) {
    mod::adaptive p({.latency_bound = 50us});
    sc::manual_clock clk;
    const auto params = drive(p, clk, 10'000, 20ms, 50us); // 0.5 events per bound
    EXPECT_EQ(params.max_frames, 1U);
    EXPECT_EQ(p.stats().notify_timeout, 0U);
}

TEST(AdaptiveModeration, HighRatesAreCappedByMaxFramesAndQueueCapacity) {
    mod::adaptive a({.latency_bound = 50us, .max_frames = 64, .queue_capacity = 1024});
    mod::adaptive b({.latency_bound = 50us, .max_frames = 64, .queue_capacity = 128});
    sc::manual_clock ca, cb;
    EXPECT_EQ(drive(a, ca, 20'000'000, 3ms, 50us).max_frames, 64U);
    EXPECT_EQ(drive(b, cb, 20'000'000, 3ms, 50us).max_frames, 32U) << "capacity / 4";
}

TEST(AdaptiveModeration, FollowsARateChangeBothWays) {
    mod::adaptive p({.latency_bound = 100us, .max_frames = 64});
    sc::manual_clock clk;
    EXPECT_GE(drive(p, clk, 1'000'000, 5ms, 100us).max_frames, 45U); // 100 per bound -> 50
    const auto low = drive(p, clk, 100'000, 10ms, 100us);            // 10 per bound -> 5
    EXPECT_GE(low.max_frames, 4U);
    EXPECT_LE(low.max_frames, 6U);
    EXPECT_GE(drive(p, clk, 1'000'000, 5ms, 100us).max_frames, 45U);
}

TEST(AdaptiveModeration, ASilenceRestartsTheEstimate) {
    mod::adaptive p({.latency_bound = 50us});
    sc::manual_clock clk;
    EXPECT_GT(drive(p, clk, 2'000'000, 3ms, 50us).max_frames, 40U);
    clk.advance(100ms); // traffic stops
    const auto t = clk.now();
    (void)p.on_events(1, t); // closes the long window: estimate reset to ~0, N -> 1
    p.on_fired(t);
    EXPECT_EQ(p.params().max_frames, 1U);
}

TEST(AdaptiveModeration, OverflowFiresAtOnceAndBacksOff) {
    mod::adaptive p({.latency_bound = 50us,
                     .max_frames = 64,
                     .queue_capacity = 1024,
                     .sample_interval = 100us});
    sc::manual_clock clk;
    ASSERT_EQ(drive(p, clk, 4'000'000, 3ms, 50us).max_frames, 64U);
    // An overflow while events are pending: the next check fires immediately.
    (void)p.on_events(3, clk.now());
    ASSERT_FALSE(p.should_fire(clk.now()));
    p.on_drop(10);
    EXPECT_TRUE(p.should_fire(clk.now()));
    EXPECT_LE(p.deadline(), clk.now()) << "due now: a timer armed from it fires at once";
    p.on_fired(clk.now());
    EXPECT_EQ(p.stats().notify_overflow, 1U);
    // Drops in every window: N halves each window down to 1, T to bound/64.
    std::uint32_t last = 64;
    for (int w = 0; w < 8; ++w) {
        p.on_drop(1);
        (void)drive(p, clk, 4'000'000, 100us, 50us, false);
        EXPECT_LE(p.params().max_frames, std::max<std::uint32_t>(1, last / 2 + 1))
            << "window " << w;
        last = p.params().max_frames;
    }
    EXPECT_EQ(p.params().max_frames, 1U);
    EXPECT_LE(p.params().timeout, 50us / 32);
    EXPECT_GE(p.stats().backoffs, 7U);
    // Drops stop: after the hold-off, additive increase (64/16 = 4 per window) back to 64.
    (void)drive(p, clk, 4'000'000, 600us, 50us, false);
    const auto early = p.params().max_frames;
    EXPECT_LT(early, 16U) << "recovery is additive, not a jump";
    (void)drive(p, clk, 4'000'000, 5ms, 50us);
    EXPECT_EQ(p.params().max_frames, 64U);
    EXPECT_EQ(p.params().timeout, 50us);
}

TEST(AdaptiveModeration, NetDimBlindSpotSteadyOverloadStillBacksOff) {
    // Same rate before and during the overload (net_dim sees "SAME" and never moves); the
    // drops alone must shrink the batch.
    mod::adaptive p({.latency_bound = 50us, .max_frames = 64, .queue_capacity = 1024});
    sc::manual_clock clk;
    const auto before = drive(p, clk, 2'000'000, 3ms, 50us);
    for (int w = 0; w < 3; ++w) {
        p.on_drop(50);
        (void)drive(p, clk, 2'000'000, 100us, 50us, false);
    }
    EXPECT_LT(p.params().max_frames, before.max_frames / 4);
}

TEST(AdaptiveModeration, RejectsParametersItCannotHonour) {
    EXPECT_THROW(mod::adaptive({.latency_bound = 0us}), std::invalid_argument);
    EXPECT_THROW(mod::adaptive({.latency_bound = 2s}), std::invalid_argument);
    EXPECT_THROW(mod::adaptive({.max_frames = 0}), std::invalid_argument);
    EXPECT_THROW(mod::adaptive({.sample_interval = 0us}), std::invalid_argument);
    EXPECT_THROW(mod::adaptive({.fill_percent = 0}), std::invalid_argument);
    EXPECT_THROW(mod::adaptive({.fill_percent = 101}), std::invalid_argument);
}
