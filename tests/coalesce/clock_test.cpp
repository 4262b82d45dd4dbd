// SPDX-License-Identifier: MIT
// Clocks: the concept, manual_clock's monotonic moves, tsc_clock's exact tick-to-ns arithmetic
// with a given calibration, a real calibration's plausibility (skipped when the TSC cannot be
// trusted), and concurrent first use of the process-wide calibration (run under TSan in CI).
// No wall-clock timing is asserted.
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/coalesce/clock.hpp>
#include <splitnet/coalesce/detail/muldiv.hpp>
#include <splitnet/coalesce/manual_clock.hpp>
#include <splitnet/coalesce/tsc_clock.hpp>

namespace sc = splitnet::coalesce;
using namespace std::chrono_literals;

static_assert(sc::clock_source<sc::steady_clock>);
static_assert(sc::clock_source<sc::manual_clock>);
static_assert(sc::clock_source<sc::tsc_clock>);
static_assert(!sc::clock_source<std::chrono::system_clock>, "another epoch: not a splitnet clock");

TEST(ManualClock, MovesOnlyForwardAndOnlyWhenTold) {
    sc::manual_clock c;
    EXPECT_EQ(c.now(), sc::time_point{});
    EXPECT_EQ(c.advance(5us), sc::time_point{} + 5us);
    EXPECT_EQ(c.advance(-3us), sc::time_point{} + 5us) << "monotonic";
    EXPECT_EQ(c.set(sc::time_point{} + 2us), sc::time_point{} + 5us) << "no going back";
    EXPECT_EQ(c.set(sc::time_point{} + 9us), sc::time_point{} + 9us);
    EXPECT_EQ(c.now(), c.now());
}

TEST(Clock, NsConversionsRoundTrip) {
    EXPECT_EQ(sc::to_ns(sc::from_ns(123'456'789)), 123'456'789U);
    EXPECT_EQ(sc::to_ns(sc::time_point{} + 1s), 1'000'000'000U);
}

TEST(Clock, SteadyClockShareTheStdEpoch) {
    const auto a = sc::steady_clock::now();
    const auto b = std::chrono::steady_clock::now();
    const auto c = sc::steady_clock::now();
    EXPECT_LE(a, b);
    EXPECT_LE(b, c);
}

TEST(MulDiv, ExactWhere64BitsWouldOverflow) {
    namespace d = sc::detail;
    EXPECT_EQ(d::mul_shift(UINT64_MAX, std::uint64_t{1} << 32, 32), UINT64_MAX);
    EXPECT_EQ(d::mul_div(10'000'000'000ULL, 3'000'000'000ULL, 1'000'000'000ULL), 30'000'000'000ULL);
    EXPECT_EQ(d::mul_div(UINT64_MAX, 4, 2), UINT64_MAX) << "saturates";
    EXPECT_EQ(d::mul_div_up(7, 1, 2), 4U);
    EXPECT_EQ(d::mul_div(7, 1, 2), 3U);
}

TEST(TscClock, ConvertsTicksWithTheGivenCalibration) {
    // A 2.5 GHz counter: 0.4 ns per tick = 0.4 * 2^32 in 32.32 fixed point.
    sc::tsc_calibration cal;
    cal.tsc0 = sc::tsc_clock::read();
    cal.ns0 = 1'000'000;
    cal.mult = (std::uint64_t{4} << 32) / 10;
    cal.hz = 2'500'000'000;
    const sc::tsc_clock c(cal);
    const auto t1 = c.now();
    const auto t2 = c.now();
    EXPECT_GE(sc::to_ns(t1), 1'000'000U);
    EXPECT_LE(t1, t2);
    // The arithmetic itself, independent of the real counter:
    EXPECT_EQ(sc::detail::mul_shift(2'500'000'000ULL, cal.mult, 32), 999'999'999U)
        << "one second of ticks, within the 32.32 rounding";
}

TEST(TscClock, RealCalibrationIsPlausibleAndMonotonic) {
    if (!sc::tsc_clock::invariant()) {
        GTEST_SKIP() << "TSC not invariant here and not the kernel clocksource";
    }
    const sc::tsc_clock c;
    EXPECT_GT(c.calibration().hz, 1'000'000U) << "a counter slower than 1 MHz is not a TSC";
    EXPECT_LT(c.calibration().hz, 20'000'000'000ULL);
    sc::time_point prev = c.now();
    for (int i = 0; i < 10000; ++i) {
        const sc::time_point t = c.now();
        EXPECT_GE(t, prev);
        prev = t;
    }
}

TEST(TscClock, RejectsAUselessCalibrationWindow) {
    if (!sc::tsc_clock::invariant()) {
        GTEST_SKIP() << "TSC not invariant here";
    }
    EXPECT_THROW((void)sc::tsc_clock::calibrate(100us), std::invalid_argument);
}

// Many threads race to the first use of the process-wide calibration; TSan checks the static
// initialization and the lock-free reads.
TEST(TscClock, ConcurrentFirstUseIsSafe) {
    if (!sc::tsc_clock::invariant()) {
        GTEST_SKIP() << "TSC not invariant here";
    }
    std::vector<std::thread> ts;
    std::vector<std::uint64_t> hz(4, 0);
    for (std::size_t i = 0; i < hz.size(); ++i) {
        ts.emplace_back([&hz, i] {
            const sc::tsc_clock c;
            (void)c.now();
            hz[i] = c.calibration().hz;
        });
    }
    for (auto& t : ts) {
        t.join();
    }
    for (std::uint64_t h : hz) {
        EXPECT_EQ(h, hz[0]) << "one calibration per process";
    }
}
