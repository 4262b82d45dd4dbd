// Flow-key hashing cost: XXH3 on the 40-byte flow_key (compile-time length) against CRC32C
// (SSE4.2, when the build enables it) and, when DPDK is present, rte_jhash and rte_hash_crc
// over the same bytes.
#include <cstdint>
#include <vector>

#include <benchmark/benchmark.h>

#include <splitnet/packet/flow_key.hpp>

#if __has_include(<rte_jhash.h>)
#include <rte_hash_crc.h>
#include <rte_jhash.h>
#define SPLITNET_BENCH_HAS_DPDK 1
#endif
#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace sp = splitnet::packet;

namespace {

std::vector<sp::flow_key> keys() {
    std::vector<sp::flow_key> k(1024);
    for (std::uint32_t i = 0; i < k.size(); ++i) {
        k[i].ip_version = 4;
        k[i].protocol = 6;
        k[i].src_addr = {10, 0, static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i)};
        k[i].dst_addr = {10, 255, 0, 1};
        k[i].src_port = static_cast<std::uint16_t>(10000 + i);
        k[i].dst_port = 5201;
    }
    return k;
}

void BM_xxh3_flow_key(benchmark::State& s) {
    const auto k = keys();
    std::size_t i = 0;
    for (auto _ : s) {
        benchmark::DoNotOptimize(sp::hash(k[i++ & 1023], 0x1234));
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()));
}
BENCHMARK(BM_xxh3_flow_key);

#if defined(__SSE4_2__)
void BM_crc32c_flow_key(benchmark::State& s) {
    const auto k = keys();
    std::size_t i = 0;
    for (auto _ : s) {
        const auto* p = reinterpret_cast<const std::uint64_t*>(&k[i++ & 1023]);
        std::uint64_t h = 0x1234;
        for (int w = 0; w < 5; ++w) {
            h = _mm_crc32_u64(h, p[w]);
        }
        benchmark::DoNotOptimize(h);
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()));
}
BENCHMARK(BM_crc32c_flow_key);
#endif

#ifdef SPLITNET_BENCH_HAS_DPDK
void BM_dpdk_jhash_flow_key(benchmark::State& s) {
    const auto k = keys();
    std::size_t i = 0;
    for (auto _ : s) {
        benchmark::DoNotOptimize(rte_jhash(&k[i++ & 1023], sizeof(sp::flow_key), 0x1234));
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()));
}
void BM_dpdk_hash_crc_flow_key(benchmark::State& s) {
    const auto k = keys();
    std::size_t i = 0;
    for (auto _ : s) {
        benchmark::DoNotOptimize(rte_hash_crc(&k[i++ & 1023], sizeof(sp::flow_key), 0x1234));
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()));
}
BENCHMARK(BM_dpdk_jhash_flow_key);
BENCHMARK(BM_dpdk_hash_crc_flow_key);
#endif

} // namespace

BENCHMARK_MAIN();
