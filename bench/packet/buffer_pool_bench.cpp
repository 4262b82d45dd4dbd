// Buffer allocation and free in bursts of 32: splitnet's buffer_pool (MPMC ring, one CAS per
// burst) and pool_cache (per-worker array) against a free list of buffer indices kept in
// boost::lockfree::stack and boost::lockfree::queue (one CAS per buffer), with 1 and 2 threads.
#include <cstdint>
#include <memory>
#include <vector>

#include <benchmark/benchmark.h>
#include <boost/lockfree/queue.hpp>
#include <boost/lockfree/stack.hpp>

#include <splitnet/packet/buffer_pool.hpp>

namespace sp = splitnet::packet;

namespace {

constexpr std::uint32_t pool_size = 8192;
constexpr std::size_t burst = 32;

sp::buffer_pool& shared_pool() {
    static sp::buffer_pool pool({.frame_count = pool_size, .frame_size = 2048});
    return pool;
}

void BM_splitnet_pool(benchmark::State& s) {
    auto& pool = shared_pool();
    sp::frame f[burst];
    for (auto _ : s) {
        const std::size_t n = pool.alloc_burst(f);
        benchmark::DoNotOptimize(f[0].data);
        pool.free_burst(std::span(f, n));
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * burst));
}

void BM_splitnet_pool_cache(benchmark::State& s) {
    sp::pool_cache cache(shared_pool(), 256);
    sp::frame f[burst];
    for (auto _ : s) {
        const std::size_t n = cache.alloc_burst(f);
        benchmark::DoNotOptimize(f[0].data);
        cache.free_burst(std::span(f, n));
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * burst));
}

template <class FreeList>
FreeList& shared_list() {
    static const std::unique_ptr<FreeList> list = [] {
        auto l = std::make_unique<FreeList>();
        for (std::uint32_t i = 0; i < pool_size; ++i) {
            l->push(i);
        }
        return l;
    }();
    return *list;
}

// The same work as the pool: pop indices, turn them into frames, push them back.
template <class FreeList>
void BM_boost_free_list(benchmark::State& s) {
    auto& list = shared_list<FreeList>();
    auto& pool = shared_pool();
    sp::frame f[burst];
    std::uint32_t idx[burst];
    for (auto _ : s) {
        std::size_t n = 0;
        while (n < burst && list.pop(idx[n])) {
            pool.init_frame(f[n], idx[n]);
            ++n;
        }
        benchmark::DoNotOptimize(f[0].data);
        for (std::size_t i = 0; i < n; ++i) {
            list.push(pool.index_of(f[i].buffer));
        }
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * burst));
}

using boost_stack = boost::lockfree::stack<std::uint32_t, boost::lockfree::capacity<pool_size>>;
using boost_queue = boost::lockfree::queue<std::uint32_t, boost::lockfree::capacity<pool_size>>;

} // namespace

BENCHMARK(BM_splitnet_pool)->Threads(1)->Threads(2);
BENCHMARK(BM_splitnet_pool_cache)->Threads(1)->Threads(2);
BENCHMARK_TEMPLATE(BM_boost_free_list, boost_stack)->Threads(1)->Threads(2);
BENCHMARK_TEMPLATE(BM_boost_free_list, boost_queue)->Threads(1)->Threads(2);

BENCHMARK_MAIN();
