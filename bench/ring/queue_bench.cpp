// Burst SPSC queues side by side, in one binary: splitnet's spsc_ring, Boost.Lockfree
// spsc_queue (through splitnet's adapter), and DPDK rte_ring in SP/SC mode when libdpdk-dev is
// present. Each moves 64-bit sequence numbers in bursts of 1, 8, 32 and 256, producer and
// consumer on different cores (cross_core) and interleaved on one core (same_core); the consumer
// checks the sequence. Run with --benchmark_enable_random_interleaving and repetitions: this
// machine's cross-core figures are noisy.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <span>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include <splitnet/ring/lockfree_adapter.hpp>
#include <splitnet/ring/spsc_ring.hpp>

#include "ring/bench_affinity.hpp"

#if __has_include(<rte_ring.h>)
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ring.h>
#define SPLITNET_BENCH_HAS_DPDK 1
#include "support/dpdk_eal.hpp"
#endif

namespace sr = splitnet::ring;
namespace sb = splitnet::bench;

namespace {

constexpr std::uint32_t ring_capacity = 4096;

struct splitnet_q {
    sr::spsc_ring<std::uint64_t> q{ring_capacity};
    std::size_t enqueue(std::span<const std::uint64_t> in) noexcept { return q.enqueue_burst(in); }
    std::size_t dequeue(std::span<std::uint64_t> out) noexcept { return q.dequeue_burst(out); }
};

struct boost_q {
    sr::lockfree_spsc_queue<std::uint64_t, ring_capacity> q;
    std::size_t enqueue(std::span<const std::uint64_t> in) noexcept { return q.enqueue_burst(in); }
    std::size_t dequeue(std::span<std::uint64_t> out) noexcept { return q.dequeue_burst(out); }
};

#ifdef SPLITNET_BENCH_HAS_DPDK
bool dpdk_ready() {
    return splitnet::bench::dpdk_eal_ready("the rte_ring benchmarks");
}

struct dpdk_q {
    rte_ring* r = nullptr;
    dpdk_q() {
        static int n = 0;
        const std::string name = "bench" + std::to_string(n++);
        r = rte_ring_create(name.c_str(), ring_capacity, 0,
                            RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
    }
    ~dpdk_q() { rte_ring_free(r); }
    std::size_t enqueue(std::span<const std::uint64_t> in) noexcept {
        return rte_ring_enqueue_burst_elem(r, in.data(), sizeof(std::uint64_t),
                                           static_cast<unsigned>(in.size()), nullptr);
    }
    std::size_t dequeue(std::span<std::uint64_t> out) noexcept {
        return rte_ring_dequeue_burst_elem(r, out.data(), sizeof(std::uint64_t),
                                           static_cast<unsigned>(out.size()), nullptr);
    }
};
#endif

template <class Q>
void cross_core(benchmark::State& state) {
#ifdef SPLITNET_BENCH_HAS_DPDK
    if constexpr (std::is_same_v<Q, dpdk_q>) {
        if (!dpdk_ready()) {
            state.SkipWithError("DPDK EAL unavailable");
            return;
        }
    }
#endif
    const auto burst = static_cast<std::size_t>(state.range(0));
    auto q = std::make_unique<Q>();
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> errors{0};
    std::thread consumer([&] {
        sb::pin_to_cpu(1);
        std::vector<std::uint64_t> buf(burst);
        std::uint64_t expect = 0;
        for (;;) {
            const std::size_t n = q->dequeue(buf);
            for (std::size_t i = 0; i < n; ++i) {
                if (buf[i] != expect++) {
                    errors.fetch_add(1, std::memory_order_relaxed);
                }
            }
            if (n == 0 && stop.load(std::memory_order_acquire)) {
                break;
            }
        }
    });
    sb::pin_to_cpu(0);
    std::vector<std::uint64_t> buf(burst);
    std::uint64_t next = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < burst; ++i) {
            buf[i] = next + i;
        }
        std::size_t done = 0;
        while (done < burst) {
            done += q->enqueue(std::span(buf).subspan(done));
        }
        next += burst;
    }
    stop.store(true, std::memory_order_release);
    consumer.join();
    sb::unpin();
    if (errors.load() != 0) {
        state.SkipWithError("consumer saw the sequence out of order");
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * burst));
}

template <class Q>
void same_core(benchmark::State& state) {
#ifdef SPLITNET_BENCH_HAS_DPDK
    if constexpr (std::is_same_v<Q, dpdk_q>) {
        if (!dpdk_ready()) {
            state.SkipWithError("DPDK EAL unavailable");
            return;
        }
    }
#endif
    const auto burst = static_cast<std::size_t>(state.range(0));
    auto q = std::make_unique<Q>();
    // Cache-line aligned buffers for every contender, so layout luck does not pick the winner.
    alignas(64) std::uint64_t in_buf[256];
    alignas(64) std::uint64_t out_buf[256];
    const std::span<std::uint64_t> in(in_buf, burst), out(out_buf, burst);
    std::uint64_t next = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < burst; ++i) {
            in[i] = next + i;
        }
        next += burst;
        benchmark::DoNotOptimize(q->enqueue(in));
        benchmark::DoNotOptimize(q->dequeue(out));
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * burst));
}

} // namespace

#define SPLITNET_QUEUE_BENCH(Q)                                                                    \
    BENCHMARK_TEMPLATE(cross_core, Q)->Arg(1)->Arg(8)->Arg(32)->Arg(256)->UseRealTime();           \
    BENCHMARK_TEMPLATE(same_core, Q)->Arg(1)->Arg(8)->Arg(32)->Arg(256)

SPLITNET_QUEUE_BENCH(splitnet_q);
SPLITNET_QUEUE_BENCH(boost_q);
#ifdef SPLITNET_BENCH_HAS_DPDK
SPLITNET_QUEUE_BENCH(dpdk_q);
#endif

BENCHMARK_MAIN();
