// SPDX-License-Identifier: MIT
// Cost of one moderation decision per event (on_events, plus on_fired when it says so) for
// none, fixed<32, 100>, tunable and adaptive, with time advanced by the caller as a pipeline
// does (one clock read per burst, not per event). Also the cost of reading each clock, since a
// pipeline pays one read per burst: steady_clock (vDSO clock_gettime) and tsc_clock.
#include <chrono>
#include <cstdint>

#include <benchmark/benchmark.h>

#include <splitnet/coalesce/adaptive_moderation.hpp>
#include <splitnet/coalesce/clock.hpp>
#include <splitnet/coalesce/moderation.hpp>
#include <splitnet/coalesce/no_moderation.hpp>
#include <splitnet/coalesce/tsc_clock.hpp>
#include <splitnet/coalesce/tunable_moderation.hpp>

namespace sc = splitnet::coalesce;
namespace mod = splitnet::coalesce::moderation;
using namespace std::chrono_literals;

namespace {

// One event per iteration, 700 ns apart (about 1.4 Mpps): the frame rule and the timer both
// come into play. The policy object lives in the benchmark frame, written in place.
template <class P>
void BM_decision(benchmark::State& s) {
    P p;
    sc::time_point t{};
    std::uint64_t fires = 0;
    for (auto _ : s) {
        t += 700ns;
        if (p.on_events(1, t)) {
            p.on_fired(t);
            ++fires;
        }
        benchmark::DoNotOptimize(p);
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()));
    s.counters["events_per_fire"] =
        fires == 0 ? 0.0 : static_cast<double>(s.iterations()) / static_cast<double>(fires);
}

// The timer path: deadline() to arm a timer after each non-firing event.
template <class P>
void BM_decision_with_deadline(benchmark::State& s) {
    P p;
    sc::time_point t{};
    sc::time_point d{};
    for (auto _ : s) {
        t += 700ns;
        if (p.on_events(1, t)) {
            p.on_fired(t);
        } else {
            d = p.deadline();
        }
        benchmark::DoNotOptimize(d);
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()));
}

void BM_clock_steady(benchmark::State& s) {
    for (auto _ : s) {
        benchmark::DoNotOptimize(sc::steady_clock::now());
    }
}

void BM_clock_tsc(benchmark::State& s) {
    if (!sc::tsc_clock::invariant()) {
        s.SkipWithError("TSC not invariant here");
        return;
    }
    const sc::tsc_clock c;
    for (auto _ : s) {
        benchmark::DoNotOptimize(c.now());
    }
}

} // namespace

BENCHMARK_TEMPLATE(BM_decision, mod::none);
BENCHMARK_TEMPLATE(BM_decision, mod::fixed<32, 100>);
BENCHMARK_TEMPLATE(BM_decision, mod::tunable);
BENCHMARK_TEMPLATE(BM_decision, mod::adaptive);
BENCHMARK_TEMPLATE(BM_decision_with_deadline, mod::fixed<32, 100>);
BENCHMARK_TEMPLATE(BM_decision_with_deadline, mod::adaptive);
BENCHMARK(BM_clock_steady);
BENCHMARK(BM_clock_tsc);

BENCHMARK_MAIN();
