// SPDX-License-Identifier: MIT
// timer_wheel: exact firing (never early, at most one tick late), deadline order, cascades
// across all four levels and beyond the range, cancel and re-arm at any level, callbacks that
// re-arm or cancel, the batch-out form, next_expiry, lifetime rules, and a differential test
// against a std::multimap oracle under random arms, cancels and time jumps.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/coalesce/manual_clock.hpp>
#include <splitnet/coalesce/timer_wheel.hpp>

namespace sc = splitnet::coalesce;
using namespace std::chrono_literals;

namespace {

struct splitmix64 {
    std::uint64_t s;
    std::uint64_t operator()() noexcept {
        std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
};

std::vector<std::uint64_t> fire_all(sc::timer_wheel& w, sc::time_point now) {
    std::vector<std::uint64_t> out;
    w.expire(now, [&](sc::timer& t) noexcept { out.push_back(t.cookie); });
    return out;
}

} // namespace

static_assert(noexcept(std::declval<sc::timer_wheel&>().arm(std::declval<sc::timer&>(),
                                                            std::declval<sc::time_point>())));
static_assert(noexcept(std::declval<sc::timer_wheel&>().cancel(std::declval<sc::timer&>())));

TEST(TimerWheel, FiresAtItsDeadlineNeverEarly) {
    sc::timer_wheel w; // tick 1024 ns
    sc::timer t(7);
    const sc::time_point d = sc::time_point{} + 50 * 1024ns; // on a tick boundary
    w.arm(t, d);
    EXPECT_TRUE(t.armed());
    EXPECT_EQ(w.size(), 1U);
    EXPECT_TRUE(fire_all(w, d - 1ns).empty()) << "one ns before the deadline";
    EXPECT_EQ(fire_all(w, d), std::vector<std::uint64_t>{7});
    EXPECT_FALSE(t.armed());
    EXPECT_EQ(w.size(), 0U);
    EXPECT_EQ(w.stats().expired, 1U);
}

TEST(TimerWheel, DeadlinesBetweenTicksRoundUp) {
    sc::timer_wheel w; // tick 1024 ns
    sc::timer t(7);
    const sc::time_point d = sc::time_point{} + 50us; // 48.8 ticks: fires at tick 49
    w.arm(t, d);
    EXPECT_TRUE(fire_all(w, d).empty()) << "not yet at the tick that holds it";
    EXPECT_EQ(fire_all(w, sc::time_point{} + 49 * 1024ns), std::vector<std::uint64_t>{7});
}

TEST(TimerWheel, AtMostOneTickLateWhenPolledEveryTick) {
    sc::timer_wheel w(sc::time_point{}, 1024ns);
    std::vector<std::unique_ptr<sc::timer>> ts;
    // Deadlines on and off tick boundaries, across levels 0..3.
    const std::int64_t deadlines[] = {1,      1023,      1024,      1025,      65'535,     65'536,
                                      70'000, 4'194'303, 4'194'304, 4'200'000, 300'000'000};
    for (std::int64_t d : deadlines) {
        ts.push_back(std::make_unique<sc::timer>(static_cast<std::uint64_t>(d)));
        w.arm(*ts.back(), sc::time_point{} + std::chrono::nanoseconds{d});
    }
    std::size_t fired = 0;
    for (std::int64_t now = 0; fired < ts.size(); now += 1024) {
        w.expire(sc::time_point{} + std::chrono::nanoseconds{now}, [&](sc::timer& t) noexcept {
            const auto d = static_cast<std::int64_t>(t.cookie);
            EXPECT_GE(now, d) << "fired early";
            EXPECT_LT(now - d, 1024) << "fired more than one tick late: deadline " << d;
            ++fired;
        });
        ASSERT_LT(now, 400'000'000) << "timers lost";
    }
    EXPECT_GT(w.stats().cascaded, 0U);
}

TEST(TimerWheel, FiresInDeadlineOrderWithinOneCall) {
    sc::timer_wheel w;
    std::vector<std::unique_ptr<sc::timer>> ts;
    for (std::uint64_t i = 0; i < 200; ++i) {
        ts.push_back(std::make_unique<sc::timer>(i));
        // Reverse order of arming, several per tick, spanning three levels.
        w.arm(*ts.back(), sc::time_point{} + std::chrono::microseconds{(200 - i) * 97});
    }
    std::vector<std::uint64_t> got = fire_all(w, sc::time_point{} + 1s);
    ASSERT_EQ(got.size(), 200U);
    for (std::size_t i = 1; i < got.size(); ++i) {
        EXPECT_GE(ts[got[i - 1]]->deadline(), sc::time_point{}) << "sanity";
        EXPECT_LE(ts[got[i - 1]]->deadline(), ts[got[i]]->deadline()) << "at " << i;
    }
}

TEST(TimerWheel, CancelAndRearmAtEveryLevel) {
    sc::timer_wheel w;
    sc::timer a(1), b(2), c(3), d(4);
    w.arm(a, sc::time_point{} + 10us);  // level 0
    w.arm(b, sc::time_point{} + 500us); // level 1
    w.arm(c, sc::time_point{} + 100ms); // level 2
    w.arm(d, sc::time_point{} + 5s);    // level 3
    EXPECT_TRUE(w.cancel(b));
    EXPECT_FALSE(w.cancel(b)) << "second cancel is a no-op";
    w.arm(c, sc::time_point{} + 20us); // move from level 2 to level 0
    w.arm(a, sc::time_point{} + 3s);   // move from level 0 to level 3
    EXPECT_EQ(w.size(), 3U);
    EXPECT_EQ(fire_all(w, sc::time_point{} + 1ms), std::vector<std::uint64_t>{3});
    EXPECT_EQ(fire_all(w, sc::time_point{} + 4s), std::vector<std::uint64_t>{1});
    EXPECT_TRUE(w.cancel(d));
    EXPECT_TRUE(w.empty());
    EXPECT_TRUE(fire_all(w, sc::time_point{} + 10s).empty());
    EXPECT_EQ(w.stats().cancelled, 2U);
}

TEST(TimerWheel, DeadlinesBeyondTheRangeStillFireOnTime) {
    sc::timer_wheel w; // range 64^4 ticks ~ 17.2 s
    sc::timer far(1), farther(2);
    w.arm(far, sc::time_point{} + 60s);
    w.arm(farther, sc::time_point{} + 3600s);
    EXPECT_TRUE(fire_all(w, sc::time_point{} + 60s - 1ns).empty());
    EXPECT_EQ(fire_all(w, sc::time_point{} + 60s), std::vector<std::uint64_t>{1});
    EXPECT_TRUE(fire_all(w, sc::time_point{} + 3600s - 1ns).empty());
    EXPECT_EQ(fire_all(w, sc::time_point{} + 3600s), std::vector<std::uint64_t>{2});
}

TEST(TimerWheel, StartsAtAnyEpochAndJumpsOverIdleTime) {
    // A steady_clock-like epoch (a few days since boot): no walk from 0.
    const sc::time_point start = sc::time_point{} + 300'000s;
    sc::timer_wheel w(start);
    sc::timer t(9);
    w.arm(t, start + 40us);
    EXPECT_EQ(w.next_expiry(), start + 40'960ns) << "rounded up to the tick";
    EXPECT_EQ(fire_all(w, start + 1h), std::vector<std::uint64_t>{9});
    // After the jump, new deadlines are relative to the new position.
    w.arm(t, start + 1h + 5us);
    EXPECT_TRUE(fire_all(w, start + 1h + 4us).empty());
    EXPECT_EQ(fire_all(w, start + 1h + 6us).size(), 1U);
}

TEST(TimerWheel, OverdueArmsFireAtTheNextCall) {
    sc::manual_clock clk;
    sc::timer_wheel w;
    sc::timer t(5);
    clk.advance(1ms);
    (void)fire_all(w, clk.now());
    w.arm(t, clk.now() - 300us); // already past
    EXPECT_EQ(fire_all(w, clk.now() + 1024ns), std::vector<std::uint64_t>{5});
}

TEST(TimerWheel, NeverDeadlineCancels) {
    sc::timer_wheel w;
    sc::timer t(1);
    w.arm(t, sc::time_point{} + 1ms);
    w.arm(t, sc::never);
    EXPECT_FALSE(t.armed());
    EXPECT_TRUE(w.empty());
    EXPECT_EQ(w.next_expiry(), sc::never);
}

TEST(TimerWheel, CallbackMayRearmItselfWithoutLooping) {
    sc::timer_wheel w;
    sc::timer periodic(1);
    w.arm(periodic, sc::time_point{} + 100us);
    int fires = 0;
    auto cb = [&](sc::timer& t) noexcept {
        ++fires;
        w.arm(t, t.deadline() + 100us);
    };
    w.expire(sc::time_point{} + 1ms + 1024ns, cb);
    EXPECT_EQ(fires, 10) << "100, 200, ... 1000 µs";
    EXPECT_TRUE(periodic.armed());
    // A callback re-arming to "now" cannot spin: it fires again only at a later call.
    sc::timer now_again(2);
    w.cancel(periodic);
    w.arm(now_again, sc::time_point{} + 1ms);
    int n = 0;
    w.expire(sc::time_point{} + 1ms + 10us, [&](sc::timer& t) noexcept {
        ++n;
        w.arm(t, sc::time_point{} + 1ms + 10us);
    });
    EXPECT_LE(n, 12) << "bounded by the ticks between the calls";
}

TEST(TimerWheel, CallbackMayCancelATimerOfTheSameTick) {
    sc::timer_wheel w;
    sc::timer a(1), b(2), c(3);
    const auto d = sc::time_point{} + 64 * 1024ns;
    w.arm(a, d);
    w.arm(b, d);
    w.arm(c, d);
    std::vector<std::uint64_t> got;
    w.expire(d, [&](sc::timer& t) noexcept {
        got.push_back(t.cookie);
        if (t.cookie == 1) {
            EXPECT_TRUE(w.cancel(b));
        }
    });
    EXPECT_EQ(got, (std::vector<std::uint64_t>{1, 3}));
    EXPECT_TRUE(w.empty());
}

TEST(TimerWheel, BatchOutDeliversTheRestOnTheNextCall) {
    sc::timer_wheel w;
    std::vector<std::unique_ptr<sc::timer>> ts;
    for (std::uint64_t i = 0; i < 10; ++i) {
        ts.push_back(std::make_unique<sc::timer>(i));
        w.arm(*ts.back(), sc::time_point{} + std::chrono::microseconds{10 + i / 4});
    }
    sc::timer* out[4];
    std::vector<std::uint64_t> got;
    const auto now = sc::time_point{} + 1ms;
    for (int call = 0; call < 3; ++call) {
        const std::size_t n = w.expire(now, std::span<sc::timer*>(out));
        EXPECT_EQ(n, call < 2 ? 4U : 2U);
        for (std::size_t i = 0; i < n; ++i) {
            EXPECT_FALSE(out[i]->armed());
            got.push_back(out[i]->cookie);
        }
    }
    EXPECT_EQ(got, (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
    EXPECT_EQ(w.expire(now, std::span<sc::timer*>(out)), 0U);
}

TEST(TimerWheel, NextExpiryIsALowerBoundAndExactInLevelZero) {
    sc::timer_wheel w;
    EXPECT_EQ(w.next_expiry(), sc::never);
    sc::timer a(1), b(2);
    w.arm(a, sc::time_point{} + 30us);
    EXPECT_EQ(w.next_expiry(), sc::time_point{} + 30'720ns); // 30 ticks of 1024 ns
    w.arm(b, sc::time_point{} + 20ms);
    w.cancel(a);
    const auto n = w.next_expiry();
    EXPECT_LE(n, b.deadline() + 1024ns);
    // Following next_expiry() reaches the deadline in a few steps (cascade points first).
    int steps = 0;
    std::size_t fired = 0;
    while (fired == 0 && steps < 10) {
        fired = w.expire(w.next_expiry(), [](sc::timer&) noexcept {});
        ++steps;
    }
    EXPECT_EQ(fired, 1U);
    EXPECT_LE(steps, 4);
}

TEST(TimerWheel, DestroyingAnArmedTimerCancelsIt) {
    sc::timer_wheel w;
    {
        sc::timer t(1);
        w.arm(t, sc::time_point{} + 1ms);
        EXPECT_EQ(w.size(), 1U);
    }
    EXPECT_EQ(w.size(), 0U);
    EXPECT_TRUE(fire_all(w, sc::time_point{} + 2ms).empty());
}

TEST(TimerWheel, DestroyingTheWheelDisarmsItsTimers) {
    sc::timer t(1);
    {
        sc::timer_wheel w;
        w.arm(t, sc::time_point{} + 1ms);
    }
    EXPECT_FALSE(t.armed()); // and t's destructor is safe
}

TEST(TimerWheel, ArmingOnAnotherWheelMovesTheTimer) {
    sc::timer_wheel w1, w2;
    sc::timer t(1);
    w1.arm(t, sc::time_point{} + 1ms);
    w2.arm(t, sc::time_point{} + 2ms);
    EXPECT_TRUE(w1.empty());
    EXPECT_EQ(w2.size(), 1U);
    EXPECT_FALSE(w1.cancel(t));
    EXPECT_TRUE(w2.cancel(t));
}

TEST(TimerWheel, RejectsATickThatIsNotAPowerOfTwo) {
    EXPECT_THROW(sc::timer_wheel(sc::time_point{}, 1000ns), std::invalid_argument);
    EXPECT_THROW(sc::timer_wheel(sc::time_point{}, 0ns), std::invalid_argument);
    EXPECT_NO_THROW(sc::timer_wheel(sc::time_point{}, 1ns));
    EXPECT_NO_THROW(sc::timer_wheel(sc::time_point{}, 1'048'576ns));
}

// Differential: random arms (near and far), re-arms and cancels, random time steps (1 ns to
// minutes); every timer fires exactly once, in a call whose now >= its deadline, and no later
// than the first call with now >= deadline + tick.
TEST(TimerWheel, MatchesAnOracleUnderRandomOperations) {
    constexpr std::size_t n = 512;
    sc::timer_wheel w(sc::time_point{} + 1s, 1024ns);
    std::vector<std::unique_ptr<sc::timer>> ts;
    for (std::size_t i = 0; i < n; ++i) {
        ts.push_back(std::make_unique<sc::timer>(i));
    }
    std::multimap<sc::time_point, std::uint64_t> oracle; // deadline -> timer
    std::vector<sc::time_point> armed_at(n, sc::never);
    splitmix64 rng{42};
    sc::time_point now = sc::time_point{} + 1s;
    sc::time_point prev = now;
    auto erase = [&](std::uint64_t i) {
        auto [lo, hi] = oracle.equal_range(armed_at[i]);
        for (auto it = lo; it != hi; ++it) {
            if (it->second == i) {
                oracle.erase(it);
                break;
            }
        }
        armed_at[i] = sc::never;
    };
    const std::int64_t spans[] = {2'000, 100'000, 5'000'000, 300'000'000, 40'000'000'000};
    for (int round = 0; round < 4000; ++round) {
        for (int k = 0; k < 8; ++k) {
            const std::uint64_t i = rng() % n;
            const std::uint64_t op = rng() % 10;
            if (op < 7) {
                const std::int64_t span = spans[rng() % 5];
                const auto d = now + std::chrono::nanoseconds{static_cast<std::int64_t>(
                                         rng() % static_cast<std::uint64_t>(span))};
                if (armed_at[i] != sc::never) {
                    erase(i);
                }
                w.arm(*ts[i], d);
                armed_at[i] = d;
                oracle.emplace(d, i);
            } else if (armed_at[i] != sc::never) {
                EXPECT_TRUE(w.cancel(*ts[i]));
                erase(i);
            }
        }
        ASSERT_EQ(w.size(), oracle.size());
        const std::uint64_t step_kind = rng() % 16;
        const std::int64_t step = step_kind < 12 ? static_cast<std::int64_t>(rng() % 20'000)
                                  : step_kind < 15
                                      ? static_cast<std::int64_t>(rng() % 20'000'000)
                                      : static_cast<std::int64_t>(rng() % 60'000'000'000);
        prev = now;
        now += std::chrono::nanoseconds{step};
        std::set<std::uint64_t> fired;
        w.expire(now, [&](sc::timer& t) noexcept {
            EXPECT_LE(t.deadline(), now) << "early";
            EXPECT_TRUE(fired.insert(t.cookie).second) << "twice";
        });
        std::set<std::uint64_t> due;
        for (auto it = oracle.begin(); it != oracle.end() && it->first <= now;) {
            // Due by now; must have fired unless within the last tick's rounding window.
            if (it->first + 1024ns <= now || fired.count(it->second) != 0) {
                due.insert(it->second);
                armed_at[it->second] = sc::never;
                it = oracle.erase(it);
            } else {
                ++it;
            }
        }
        for (std::uint64_t f : fired) {
            EXPECT_EQ(due.count(f), 1U) << "fired but not due: " << f;
        }
        for (std::uint64_t d : due) {
            EXPECT_EQ(fired.count(d), 1U) << "due for a whole tick but not fired: " << d;
        }
        ASSERT_EQ(w.size(), oracle.size()) << "round " << round;
        (void)prev;
    }
    EXPECT_GT(w.stats().cascaded, 1000U);
}
