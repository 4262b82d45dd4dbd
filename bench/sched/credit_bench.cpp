// SPDX-License-Identifier: MIT
// Credit scheduler decisions with 1K entities: pick + account for backlogged entities (one
// worker, and eight workers taking turns), the wake -> pick -> account path of I/O-bound
// entities (BOOST), the same with credit stealing, and one accounting pass (csched_acct over 1K
// active entities, which a pick pays once per 30 ms period). Times advance by the simulated
// service time, so the periodic accounting is amortized as in a pipeline. Also one dispatch
// decision for each dispatch policy over 64 workers.
#include <chrono>
#include <cstdint>
#include <vector>

#include <benchmark/benchmark.h>

#include <splitnet/sched/cpu_topology.hpp>
#include <splitnet/sched/credit.hpp>
#include <splitnet/sched/dispatch.hpp>
#include <splitnet/sched/least_loaded_dispatch.hpp>
#include <splitnet/sched/placement.hpp>
#include <splitnet/sched/round_robin_dispatch.hpp>

namespace ss = splitnet::sched;
using namespace std::chrono_literals;

namespace {

constexpr ss::entity_id entities = 1024;

ss::credit_config config(std::uint32_t workers) {
    ss::credit_config c{.workers = workers, .entities = entities};
    // 16 cores in 4 LLC domains; guests spread over all of them.
    const auto topo = ss::cpu_topology::uniform(16, 4);
    std::vector<std::uint32_t> guest_cpus(entities);
    for (ss::entity_id e = 0; e < entities; ++e) {
        guest_cpus[e] = e % 16;
    }
    const auto wcpus = ss::placement::spread_workers(topo, workers, guest_cpus);
    c.layout = ss::placement::plan(topo, wcpus, guest_cpus);
    return c;
}

// Every entity always has work: each iteration is one pick and one account of a 20 µs service.
template <class S>
void BM_pick_account_backlogged(benchmark::State& s) {
    const auto workers = static_cast<std::uint32_t>(s.range(0));
    S sched(config(workers));
    ss::time_point t{};
    for (ss::entity_id e = 0; e < entities; ++e) {
        (void)sched.wake(e, t);
    }
    ss::worker_id w = 0;
    for (auto _ : s) {
        const ss::grant g = sched.pick(w, t);
        t += 20us / workers; // W workers serve in parallel
        sched.account(g.entity, w, {.time = 20us, .bytes = 24'000, .packets = 16, .backlog = true},
                      t);
        w = w + 1 == workers ? 0 : w + 1;
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()));
    s.counters["accountings"] = static_cast<double>(sched.stats().accountings);
}

// I/O-bound entities: an event wakes one (BOOST), a worker picks it, serves 2 µs, it empties.
template <class S>
void BM_wake_pick_account(benchmark::State& s) {
    S sched(config(8));
    ss::time_point t{};
    ss::entity_id e = 0;
    ss::worker_id w = 0;
    for (auto _ : s) {
        (void)sched.wake(e, t);
        const ss::grant g = sched.pick(w, t);
        t += 2us;
        sched.account(g.entity, w, {.time = 2us, .bytes = 1500, .packets = 1, .backlog = false}, t);
        e = e + 1 == entities ? 0 : e + 1;
        w = (w + 1) & 7;
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()));
}

// One accounting pass over 1K active entities (half idle, so stealing has lenders).
template <class S>
void BM_accounting_pass(benchmark::State& s) {
    S sched(config(8));
    ss::time_point t{};
    for (ss::entity_id e = 0; e < entities; ++e) {
        (void)sched.wake(e, t);
        const ss::grant g = sched.pick(e % 8, t);
        sched.account(g.entity, e % 8, {.time = 1us, .backlog = (e & 1) != 0}, t);
    }
    for (auto _ : s) {
        t += 30ms;
        const ss::grant g = sched.pick(0, t); // runs the due accounting first
        s.PauseTiming();
        // Hand back what the pick took so every pass sees the same population.
        sched.account(g.entity, 0, {.time = 1us, .backlog = true}, t);
        s.ResumeTiming();
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()));
}

template <class D>
void BM_dispatch(benchmark::State& s) {
    const auto topo = ss::cpu_topology::uniform(64, 8);
    std::vector<std::uint32_t> wcpus(64);
    std::vector<std::uint32_t> scpus(entities);
    for (std::uint32_t i = 0; i < 64; ++i) {
        wcpus[i] = i;
    }
    for (ss::entity_id e = 0; e < entities; ++e) {
        scpus[e] = (e * 7) % 64;
    }
    D d(ss::placement::plan(topo, wcpus, scpus));
    std::vector<std::uint32_t> load(64);
    for (std::uint32_t i = 0; i < 64; ++i) {
        load[i] = (i * 37) % 5;
    }
    ss::source_id src = 0;
    for (auto _ : s) {
        const ss::worker_id w = d.dispatch(src, load);
        ++load[w];
        load[(w + 13) & 63] -= load[(w + 13) & 63] != 0 ? 1 : 0;
        src = src + 1 == entities ? 0 : src + 1;
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()));
}

} // namespace

BENCHMARK_TEMPLATE(BM_pick_account_backlogged, ss::credit)->Arg(1)->Arg(8);
BENCHMARK_TEMPLATE(BM_pick_account_backlogged, ss::credit_stealing)->Arg(8);
BENCHMARK_TEMPLATE(BM_wake_pick_account, ss::credit);
BENCHMARK_TEMPLATE(BM_wake_pick_account, ss::credit_stealing);
BENCHMARK_TEMPLATE(BM_accounting_pass, ss::credit);
BENCHMARK_TEMPLATE(BM_accounting_pass, ss::credit_stealing);
BENCHMARK_TEMPLATE(BM_dispatch, ss::round_robin_dispatch);
BENCHMARK_TEMPLATE(BM_dispatch, ss::least_loaded_dispatch);
BENCHMARK_TEMPLATE(BM_dispatch, ss::cache_aware_dispatch);

BENCHMARK_MAIN();
