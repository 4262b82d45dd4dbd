// SPDX-License-Identifier: MIT
// Timer wheel: arm + cancel of a pending timer, re-arm of an armed timer (Linux mod_timer, what
// a GRO flow does on every merge), and arm + expire (the cost per fired timer, cascades
// included), with 4096 timers armed, deadlines spread over 1 ms (levels 0 and 1) or 1 s
// (levels 0-3). Side by side in the same binary: the same operations on a std::multimap keyed
// by deadline, the usual O(log n) cancellable timer set.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include <benchmark/benchmark.h>

#include <splitnet/coalesce/timer_wheel.hpp>

namespace sc = splitnet::coalesce;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t timers = 4096;

struct lcg {
    std::uint64_t s = 88172645463325252ULL;
    std::uint64_t next() noexcept {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
};

std::vector<std::int64_t> offsets(std::int64_t span_ns) {
    std::vector<std::int64_t> v(timers * 4);
    lcg r;
    for (auto& x : v) {
        x = 1 + static_cast<std::int64_t>(r.next() % static_cast<std::uint64_t>(span_ns));
    }
    return v;
}

// A background of `timers` armed timers, then arm + cancel one more per iteration.
void BM_wheel_arm_cancel(benchmark::State& s) {
    const auto span = s.range(0);
    sc::timer_wheel w;
    const auto off = offsets(span);
    auto bg = std::make_unique<sc::timer[]>(timers);
    for (std::size_t i = 0; i < timers; ++i) {
        w.arm(bg[i], sc::time_point{} + std::chrono::nanoseconds{off[i]});
    }
    sc::timer t;
    std::size_t i = 0;
    for (auto _ : s) {
        w.arm(t, sc::time_point{} + std::chrono::nanoseconds{off[i++ & (off.size() - 1)]});
        w.cancel(t);
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()));
}

void BM_multimap_arm_cancel(benchmark::State& s) {
    const auto span = s.range(0);
    std::multimap<std::int64_t, std::uint64_t> m;
    const auto off = offsets(span);
    for (std::size_t i = 0; i < timers; ++i) {
        m.emplace(off[i], i);
    }
    std::size_t i = 0;
    for (auto _ : s) {
        auto it = m.emplace(off[i++ & (off.size() - 1)], 7);
        m.erase(it);
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()));
}

// Re-arming an armed timer to a later deadline (a flow that keeps merging pushes its flush).
void BM_wheel_rearm(benchmark::State& s) {
    const auto span = s.range(0);
    sc::timer_wheel w;
    const auto off = offsets(span);
    auto ts = std::make_unique<sc::timer[]>(timers);
    for (std::size_t i = 0; i < timers; ++i) {
        w.arm(ts[i], sc::time_point{} + std::chrono::nanoseconds{off[i]});
    }
    std::size_t i = 0;
    for (auto _ : s) {
        const std::size_t k = i & (timers - 1);
        w.arm(ts[k], sc::time_point{} + std::chrono::nanoseconds{off[i & (off.size() - 1)]});
        ++i;
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()));
}

// Arm `timers` timers over `span` from now, advance time past them in 64 steps, expire all.
// Reported per timer: one arm, its share of cascades, and its firing.
void BM_wheel_arm_expire(benchmark::State& s) {
    const auto span = s.range(0);
    const auto off = offsets(span);
    auto ts = std::make_unique<sc::timer[]>(timers);
    sc::timer_wheel w;
    sc::time_point now{};
    std::uint64_t fired = 0;
    for (auto _ : s) {
        for (std::size_t i = 0; i < timers; ++i) {
            w.arm(ts[i], now + std::chrono::nanoseconds{off[i]});
        }
        const auto step = std::chrono::nanoseconds{span / 64 + 1};
        for (int k = 0; k < 65; ++k) {
            now += step;
            fired += w.expire(now, [](sc::timer& t) noexcept { benchmark::DoNotOptimize(&t); });
        }
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * timers));
    s.counters["cascades_per_timer"] =
        static_cast<double>(w.stats().cascaded) / static_cast<double>(fired == 0 ? 1 : fired);
}

void BM_multimap_arm_expire(benchmark::State& s) {
    const auto span = s.range(0);
    const auto off = offsets(span);
    std::multimap<std::int64_t, std::uint64_t> m;
    std::int64_t now = 0;
    for (auto _ : s) {
        for (std::size_t i = 0; i < timers; ++i) {
            m.emplace(now + off[i], i);
        }
        const std::int64_t step = span / 64 + 1;
        for (int k = 0; k < 65; ++k) {
            now += step;
            auto end = m.upper_bound(now);
            for (auto it = m.begin(); it != end; ++it) {
                benchmark::DoNotOptimize(it->second);
            }
            m.erase(m.begin(), end);
        }
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * timers));
}

} // namespace

BENCHMARK(BM_wheel_arm_cancel)->Arg(1'000'000)->Arg(1'000'000'000);
BENCHMARK(BM_multimap_arm_cancel)->Arg(1'000'000)->Arg(1'000'000'000);
BENCHMARK(BM_wheel_rearm)->Arg(1'000'000)->Arg(1'000'000'000);
BENCHMARK(BM_wheel_arm_expire)->Arg(1'000'000)->Arg(1'000'000'000);
BENCHMARK(BM_multimap_arm_expire)->Arg(1'000'000)->Arg(1'000'000'000);

BENCHMARK_MAIN();
