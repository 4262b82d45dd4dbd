// SPDX-License-Identifier: MIT
// splitnet/coalesce/tsc_clock.hpp: a clock read from the CPU's time-stamp counter (x86 RDTSC,
// aarch64 CNTVCT_EL0), converted to ns with a mult/shift pair as the kernel's cyc2ns does, and
// anchored to steady_clock so its time_points compare with steady_clock's at calibration.
// DPDK reads rte_get_tsc_cycles() once per loop for its TX drain timer for the same reason:
// a read costs a few ns against ~20 ns for clock_gettime.
//
// Calibration happens once per process (the first tsc_clock constructed), by timing the counter
// against CLOCK_MONOTONIC over a window (20 ms by default). Its error is about 1e-5, so over an
// hour tsc_clock and steady_clock drift apart by tens of ms: drive one timer wheel or one
// policy with one clock, never a mix.
//
// Errors: construction throws std::runtime_error when the counter cannot be trusted (x86 without
// invariant TSC and with a kernel that does not use the TSC as its clocksource). now() is
// noexcept and lock-free; any thread may call it.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

#include <splitnet/coalesce/clock.hpp>
#include <splitnet/coalesce/detail/muldiv.hpp>
#include <splitnet/config.hpp>

namespace splitnet::coalesce {

/// How counter ticks map to time_points: ns = ns0 + ((ticks - tsc0) * mult) >> 32.
struct tsc_calibration {
    std::uint64_t tsc0 = 0; ///< counter value at the anchor instant
    std::uint64_t ns0 = 0;  ///< steady_clock ns at the anchor instant
    std::uint64_t mult = 0; ///< ns per tick in 32.32 fixed point
    std::uint64_t hz = 0;   ///< counter frequency, for reports
};

class tsc_clock {
public:
    /// Uses the process-wide calibration (made on first use).
    tsc_clock() : cal_(process_calibration()) {}
    explicit tsc_clock(const tsc_calibration& cal) noexcept : cal_(cal) {}

    [[nodiscard]] time_point now() const noexcept {
        return from_ns(cal_.ns0 + detail::mul_shift(read() - cal_.tsc0, cal_.mult, 32));
    }

    [[nodiscard]] const tsc_calibration& calibration() const noexcept { return cal_; }

    /// The raw counter.
    [[nodiscard]] static std::uint64_t read() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        return __rdtsc();
#elif defined(__aarch64__)
        std::uint64_t v;
        asm volatile("isb; mrs %0, cntvct_el0" : "=r"(v)::"memory");
        return v;
#else
        return static_cast<std::uint64_t>(
            std::chrono::steady_clock::now().time_since_epoch().count());
#endif
    }

    /// True when the counter runs at a constant rate in every power state on every CPU.
    [[nodiscard]] static bool invariant() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        unsigned a = 0, b = 0, c = 0, d = 0;
        if (__get_cpuid(0x80000007U, &a, &b, &c, &d) != 0 && (d & (1U << 8)) != 0) {
            return true; // CPUID.80000007H:EDX[8], "invariant TSC"
        }
        // Hypervisors often hide the CPUID bit; the kernel still says whether it trusts the TSC.
        char buf[32] = {};
        if (std::FILE* f = std::fopen(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource", "r")) {
            const bool got = std::fgets(buf, sizeof buf, f) != nullptr;
            std::fclose(f);
            return got && std::strncmp(buf, "tsc", 3) == 0;
        }
        return false;
#else
        return true; // the aarch64 generic timer is architecturally constant-rate
#endif
    }

    /// Measures the counter against CLOCK_MONOTONIC over `window`.
    [[nodiscard]] static tsc_calibration
    calibrate(nanoseconds window = std::chrono::milliseconds(20)) {
        if (!invariant()) {
            SPLITNET_THROW(std::runtime_error(
                "tsc_clock: the TSC is not invariant on this CPU (CPUID.80000007H:EDX[8] clear) "
                "and the kernel does not use it as its clocksource; use coalesce::steady_clock"));
        }
        if (window < std::chrono::milliseconds(1)) {
            SPLITNET_THROW(std::invalid_argument("tsc_clock::calibrate: a window under 1 ms gives "
                                                 "a useless frequency; use >= 10 ms"));
        }
        std::uint64_t t0 = 0, n0 = 0, t1 = 0, n1 = 0;
        anchor(t0, n0);
        std::this_thread::sleep_for(window);
        anchor(t1, n1);
        if (t1 <= t0 || n1 <= n0) {
            SPLITNET_THROW(std::runtime_error(
                "tsc_clock: the counter did not advance during calibration; use steady_clock"));
        }
        tsc_calibration c;
        c.tsc0 = t1;
        c.ns0 = n1;
        c.mult = detail::mul_div(n1 - n0, std::uint64_t{1} << 32, t1 - t0);
        c.hz = detail::mul_div(t1 - t0, 1'000'000'000, n1 - n0);
        return c;
    }

    /// calibrate() once per process; thread-safe (a function-local static).
    [[nodiscard]] static const tsc_calibration& process_calibration() {
        static const tsc_calibration cal = calibrate();
        return cal;
    }

private:
    // Reads the counter on both sides of a steady_clock read and keeps the tightest of a few
    // tries, so an interrupt between the two reads does not skew the anchor.
    static void anchor(std::uint64_t& tsc, std::uint64_t& ns) noexcept {
        std::uint64_t best = UINT64_MAX;
        for (int i = 0; i < 8; ++i) {
            const std::uint64_t a = read();
            const std::uint64_t n = to_ns(steady_clock::now());
            const std::uint64_t b = read();
            if (b - a < best) {
                best = b - a;
                tsc = a + (b - a) / 2;
                ns = n;
            }
        }
    }

    tsc_calibration cal_;
};
static_assert(clock_source<tsc_clock>);

} // namespace splitnet::coalesce
