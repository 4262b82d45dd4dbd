// Grant copy against plain memcpy of the same bytes, in batches of 32: 1500-byte packets read
// from a 128 MiB region (cold: larger than the last-level cache, walked page by page) and
// 64-byte copies (per-operation overhead, warm). The cold memcpy runs with a fixed length, which
// the compiler inlines as a string copy, and with a length known only at run time (the library
// call). This machine's figures move by 20% between runs: compare within one run of
// --benchmark_enable_random_interleaving=true --benchmark_repetitions=7 or more. Then mapping a
// grant through the persistent cache (hit) against a fresh map and unmap (miss), with direct and
// mmap mappings.
#include <cstdint>
#include <cstring>
#include <vector>

#include <benchmark/benchmark.h>

#include <splitnet/grant/grant_cache.hpp>
#include <splitnet/grant/grant_copy.hpp>
#include <splitnet/grant/grant_table.hpp>
#include <splitnet/ring/shared_region.hpp>

namespace sg = splitnet::grant;

namespace {

constexpr std::size_t batch = 32;
constexpr std::size_t data_pages = 32768; // 128 MiB

/// A guest with `data_pages` data frames in a memfd, every frame granted read-write to domain 2
/// (several table pages: 256 grants per page).
struct guest {
    static constexpr std::uint32_t table_pages = (data_pages + 8 + 255) / 256;
    splitnet::ring::shared_region region =
        splitnet::ring::shared_region::create("bench-guest", table_pages + 1 + data_pages);
    sg::memory_domain dom{1, region.bytes(), table_pages, 4, region.fd()};
    sg::grant_table table{dom};
    std::vector<sg::grant_ref> refs;
    sg::domain_registry reg;
    guest() {
        for (std::size_t i = 0; i < data_pages; ++i) {
            refs.push_back(table.grant_access(2, dom.first_data_frame() + i, false));
            std::memset(dom.page(dom.first_data_frame() + i), static_cast<int>(i), 64);
        }
        reg.add(dom);
    }
};

guest& the_guest() {
    static guest g;
    return g;
}

void BM_grant_copy_cold_1500(benchmark::State& s) {
    auto& g = the_guest();
    sg::grant_copier copier(g.reg, 2, 0);
    std::vector<std::uint8_t> dst(batch * 2048);
    std::vector<sg::grant_copy_op> ops(batch);
    std::size_t page = 0;
    for (auto _ : s) {
        for (std::size_t i = 0; i < batch; ++i) {
            ops[i] = {sg::copy_side::granted(1, g.refs[page]),
                      sg::copy_side::buffer(dst.data() + i * 2048),
                      1500,
                      {}};
            page = (page + 1) % data_pages;
        }
        copier.copy(ops);
        benchmark::DoNotOptimize(dst.data());
    }
    s.SetBytesProcessed(static_cast<std::int64_t>(s.iterations() * batch * 1500));
}

/// The same walk with memcpy. With a fixed length (RunTimeLength false) the compiler inlines a
/// string copy; with a length it cannot see, it calls the C library, as a back end copying
/// packets of varying sizes does.
template <bool RunTimeLength>
void BM_memcpy_cold_1500(benchmark::State& s) {
    auto& g = the_guest();
    std::vector<std::uint8_t> dst(batch * 2048);
    std::size_t page = 0;
    std::size_t len = 1500;
    for (auto _ : s) {
        for (std::size_t i = 0; i < batch; ++i) {
            if constexpr (RunTimeLength) {
                benchmark::DoNotOptimize(len);
                std::memcpy(dst.data() + i * 2048, g.dom.page(g.dom.first_data_frame() + page),
                            len);
            } else {
                std::memcpy(dst.data() + i * 2048, g.dom.page(g.dom.first_data_frame() + page),
                            1500);
            }
            page = (page + 1) % data_pages;
        }
        benchmark::DoNotOptimize(dst.data());
    }
    s.SetBytesProcessed(static_cast<std::int64_t>(s.iterations() * batch * 1500));
}

void BM_grant_copy_warm_64(benchmark::State& s) {
    auto& g = the_guest();
    sg::grant_copier copier(g.reg, 2, 0);
    std::vector<std::uint8_t> dst(batch * 64);
    std::vector<sg::grant_copy_op> ops(batch);
    for (auto _ : s) {
        for (std::size_t i = 0; i < batch; ++i) {
            ops[i] = {sg::copy_side::granted(1, g.refs[i]),
                      sg::copy_side::buffer(dst.data() + i * 64),
                      64,
                      {}};
        }
        copier.copy(ops);
        benchmark::DoNotOptimize(dst.data());
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * batch));
}

void BM_memcpy_warm_64(benchmark::State& s) {
    auto& g = the_guest();
    std::vector<std::uint8_t> dst(batch * 64);
    for (auto _ : s) {
        for (std::size_t i = 0; i < batch; ++i) {
            std::memcpy(dst.data() + i * 64, g.dom.page(g.dom.first_data_frame() + i), 64);
        }
        benchmark::DoNotOptimize(dst.data());
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * batch));
}

template <class Policy>
void BM_map_cache_hit(benchmark::State& s) {
    auto& g = the_guest();
    sg::grant_mapper<Policy> mapper(g.reg, 2);
    sg::grant_cache<Policy> cache(mapper, 1024, 0);
    std::uint8_t* page = nullptr;
    std::uint64_t now = 0;
    for (auto _ : s) {
        const auto st = cache.acquire(1, g.refs[now % 256], true, now, page);
        benchmark::DoNotOptimize(st);
        benchmark::DoNotOptimize(page);
        ++now;
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()));
}

template <class Policy>
void BM_map_fresh(benchmark::State& s) {
    auto& g = the_guest();
    sg::grant_mapper<Policy> mapper(g.reg, 2);
    std::size_t i = 0;
    for (auto _ : s) {
        sg::grant_mapping m;
        const auto st = mapper.map(1, g.refs[i++ % 256], true, m);
        benchmark::DoNotOptimize(st);
        benchmark::DoNotOptimize(*m.page);
        mapper.unmap(m);
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()));
}

} // namespace

BENCHMARK(BM_grant_copy_cold_1500);
BENCHMARK_TEMPLATE(BM_memcpy_cold_1500, false);
BENCHMARK_TEMPLATE(BM_memcpy_cold_1500, true);
BENCHMARK(BM_grant_copy_warm_64);
BENCHMARK(BM_memcpy_warm_64);
BENCHMARK_TEMPLATE(BM_map_cache_hit, sg::direct_map);
BENCHMARK_TEMPLATE(BM_map_fresh, sg::direct_map);
BENCHMARK_TEMPLATE(BM_map_cache_hit, sg::mmap_map);
BENCHMARK_TEMPLATE(BM_map_fresh, sg::mmap_map);

BENCHMARK_MAIN();
