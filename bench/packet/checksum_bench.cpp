// Internet checksum throughput (bytes/s) at packet sizes from 64 B to 64 KiB: splitnet's
// csum_partial against the RFC 1071 reference loop and, when DPDK is present, rte_raw_cksum;
// and a copy with its checksum in one pass (csum_partial_copy) against memcpy then csum_partial.
#include <cstdint>
#include <cstring>
#include <vector>

#include <benchmark/benchmark.h>

#include <splitnet/packet/checksum.hpp>

#if __has_include(<rte_ip.h>)
#include <rte_ip.h>
#define SPLITNET_BENCH_HAS_DPDK 1
#endif

namespace {

std::vector<std::uint8_t> data(std::size_t n) {
    std::vector<std::uint8_t> v(n + 8);
    for (std::size_t i = 0; i < v.size(); ++i) {
        v[i] = static_cast<std::uint8_t>(i * 131 + 7);
    }
    return v;
}

std::uint32_t reference_sum(const std::uint8_t* p, std::size_t n) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i + 1 < n; i += 2) {
        std::uint16_t w;
        __builtin_memcpy(&w, p + i, 2);
        sum += w;
    }
    if (n & 1) {
        sum += p[n - 1];
    }
    return sum;
}

void BM_splitnet_csum(benchmark::State& s) {
    const auto n = static_cast<std::size_t>(s.range(0));
    const auto v = data(n);
    for (auto _ : s) {
        benchmark::DoNotOptimize(
            splitnet::packet::csum_fold(splitnet::packet::csum_partial(v.data(), n)));
    }
    s.SetBytesProcessed(static_cast<std::int64_t>(s.iterations() * n));
}

void BM_reference_csum(benchmark::State& s) {
    const auto n = static_cast<std::size_t>(s.range(0));
    const auto v = data(n);
    for (auto _ : s) {
        benchmark::DoNotOptimize(splitnet::packet::csum_fold(reference_sum(v.data(), n)));
    }
    s.SetBytesProcessed(static_cast<std::int64_t>(s.iterations() * n));
}

#ifdef SPLITNET_BENCH_HAS_DPDK
void BM_dpdk_rte_raw_cksum(benchmark::State& s) {
    const auto n = static_cast<std::size_t>(s.range(0));
    const auto v = data(n);
    for (auto _ : s) {
        benchmark::DoNotOptimize(rte_raw_cksum(v.data(), n));
    }
    s.SetBytesProcessed(static_cast<std::int64_t>(s.iterations() * n));
}
BENCHMARK(BM_dpdk_rte_raw_cksum)->Arg(64)->Arg(256)->Arg(1500)->Arg(9000)->Arg(65535);
#endif

// Unaligned start (odd address): packet payloads rarely sit on 8-byte boundaries.
void BM_splitnet_csum_unaligned(benchmark::State& s) {
    const auto n = static_cast<std::size_t>(s.range(0));
    const auto v = data(n);
    for (auto _ : s) {
        benchmark::DoNotOptimize(splitnet::packet::csum_partial(v.data() + 1, n));
    }
    s.SetBytesProcessed(static_cast<std::int64_t>(s.iterations() * n));
}

// Copy and checksum, as software segmentation for a NIC without checksum offload does: a copy
// followed by a checksum of the copy (two passes) against csum_partial_copy (one).
void BM_memcpy_then_csum(benchmark::State& s) {
    const auto n = static_cast<std::size_t>(s.range(0));
    const auto v = data(n);
    std::vector<std::uint8_t> dst(n + 8);
    for (auto _ : s) {
        std::memcpy(dst.data() + 2, v.data() + 1, n);
        benchmark::DoNotOptimize(splitnet::packet::csum_partial(dst.data() + 2, n));
        benchmark::ClobberMemory();
    }
    s.SetBytesProcessed(static_cast<std::int64_t>(s.iterations() * n));
}

void BM_csum_partial_copy(benchmark::State& s) {
    const auto n = static_cast<std::size_t>(s.range(0));
    const auto v = data(n);
    std::vector<std::uint8_t> dst(n + 8);
    for (auto _ : s) {
        benchmark::DoNotOptimize(
            splitnet::packet::csum_partial_copy(dst.data() + 2, v.data() + 1, n));
        benchmark::ClobberMemory();
    }
    s.SetBytesProcessed(static_cast<std::int64_t>(s.iterations() * n));
}

} // namespace

BENCHMARK(BM_memcpy_then_csum)->Arg(64)->Arg(1448)->Arg(9000)->Arg(65535);
BENCHMARK(BM_csum_partial_copy)->Arg(64)->Arg(1448)->Arg(9000)->Arg(65535);
BENCHMARK(BM_splitnet_csum)->Arg(64)->Arg(256)->Arg(1500)->Arg(9000)->Arg(65535);
BENCHMARK(BM_reference_csum)->Arg(64)->Arg(256)->Arg(1500)->Arg(9000)->Arg(65535);
BENCHMARK(BM_splitnet_csum_unaligned)->Arg(1500);

BENCHMARK_MAIN();
