// The FDB's hash choice, measured: the keyed two-multiply mixer (the default), XXH3 (seeded),
// CRC32C (SSE4.2 crc32, OVS's and VPP's choice) and three AES rounds (aes_key_hash) on packed
// MAC+VLAN keys: throughput (independent keys), latency (the next key depends on the previous
// hash), and what decides it, fdb::lookup_burst over 1K and 64K learned MACs with each hash.
// Built with -msse4.2 -maes (bench/bridge/CMakeLists.txt) so all contenders see the same
// instruction set.
#include <cstdint>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include <splitnet/bridge/fdb.hpp>
#include <splitnet/bridge/key_hash.hpp>

namespace br = splitnet::bridge;

namespace {

std::vector<std::uint64_t> random_keys(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::uint64_t> k(n);
    for (auto& v : k) {
        v = br::mac_key::from_mac48(rng() & 0xfefffffffffeULL, 0).value;
    }
    return k;
}

template <class H>
void BM_hash_throughput(benchmark::State& s) {
    const auto keys = random_keys(1024, 1);
    const H h(0x1234);
    for (auto _ : s) {
        std::uint64_t acc = 0;
        for (const auto k : keys) {
            acc += h(k);
        }
        benchmark::DoNotOptimize(acc);
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * keys.size()));
}

template <class H>
void BM_hash_latency(benchmark::State& s) {
    const auto keys = random_keys(1024, 2);
    const H h(0x1234);
    std::uint64_t x = 0;
    for (auto _ : s) {
        for (int i = 0; i < 1024; ++i) {
            x = h(keys[x & 1023]); // each key's address comes from the previous hash
        }
        benchmark::DoNotOptimize(x);
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * 1024));
}

template <class H>
void BM_fdb_lookup(benchmark::State& s) {
    const auto n = static_cast<std::size_t>(s.range(0));
    br::fdb_config c;
    c.capacity = static_cast<std::uint32_t>(n + n / 4 + 16);
    c.max_ports = 8;
    c.hash_seed = 0x1234;
    br::fdb<H> f(c);
    const auto raw = random_keys(n, 3);
    std::vector<br::learn_request> req;
    for (std::size_t i = 0; i < n; ++i) {
        req.push_back({br::mac_key{raw[i]}, static_cast<br::port_id>(i % 8)});
    }
    std::vector<br::learn_status> st(n);
    (void)f.learn_burst(req, 0, st);
    std::mt19937_64 rng(4);
    std::vector<br::mac_key> probe(8192);
    for (auto& k : probe) {
        k = br::mac_key{raw[rng() % n]};
    }
    std::vector<br::fdb_result> res(32);
    std::size_t at = 0;
    for (auto _ : s) {
        benchmark::DoNotOptimize(f.lookup_burst({&probe[at], 32}, res));
        benchmark::DoNotOptimize(res.data());
        at = (at + 32) % probe.size();
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * 32));
}

BENCHMARK(BM_hash_throughput<br::mix_key_hash>);
BENCHMARK(BM_hash_latency<br::mix_key_hash>);
BENCHMARK(BM_fdb_lookup<br::mix_key_hash>)->Arg(1024)->Arg(65536);
BENCHMARK(BM_hash_throughput<br::xxh3_key_hash>);
BENCHMARK(BM_hash_latency<br::xxh3_key_hash>);
BENCHMARK(BM_fdb_lookup<br::xxh3_key_hash>)->Arg(1024)->Arg(65536);
#if defined(__SSE4_2__)
BENCHMARK(BM_hash_throughput<br::crc32c_key_hash>);
BENCHMARK(BM_hash_latency<br::crc32c_key_hash>);
BENCHMARK(BM_fdb_lookup<br::crc32c_key_hash>)->Arg(1024)->Arg(65536);
#endif
#if defined(__AES__)
BENCHMARK(BM_hash_throughput<br::aes_key_hash>);
BENCHMARK(BM_hash_latency<br::aes_key_hash>);
BENCHMARK(BM_fdb_lookup<br::aes_key_hash>)->Arg(1024)->Arg(65536);
#endif

} // namespace

BENCHMARK_MAIN();
