// Bridge forwarding cost per packet: learning_bridge::forward_burst on bursts of 32 frames
// (classify + learn every source + look up every destination + per-port output), with 16, 1K
// and 64K learned MACs, random and train-shaped destinations, with the FDB's default hash and
// (on x86, BM_bridge_forward_aes) with aes_key_hash; next to it, in the same binary and on the
// same keys, splitnet's fdb::lookup_burst alone and DPDK's rte_hash_lookup_bulk (when
// libdpdk-dev is present: CRC hash, 8-byte keys, as DPDK l2/l3 examples configure it).
//
// Times: compare within one run, on medians:
//   bridge_learning_bridge_bench --benchmark_enable_random_interleaving=true
//       --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// (forward_burst against rte_hash_lookup_bulk on the same keys is the ratio that survives a
// busy machine). Instructions per packet, for every shape:
//   bench/bridge/callgrind.sh BUILD_DIR/bench/bridge/bridge_learning_bridge_bench
// which runs valgrind --tool=callgrind --toggle-collect='*run_burst*' on the fixed-length runs
// below (exactly 10000 bursts, 320000 packets, through run_burst) and divides.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include <splitnet/bridge/learning_bridge.hpp>

#if __has_include(<rte_hash.h>)
#include <rte_eal.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#define SPLITNET_BENCH_HAS_DPDK 1
#include "support/dpdk_eal.hpp"
#endif

namespace br = splitnet::bridge;
namespace sp = splitnet::packet;

namespace {

constexpr std::size_t burst = 32;
constexpr br::port_id n_ports = 8; // port 0: the uplink; 1..7: guests
constexpr std::size_t pool_frames = 8192;

/// A bridge with `macs` learned MACs (half behind the uplink, half behind the guests) and a
/// pool of frames from the uplink to the guests, sources and destinations drawn from them.
template <class Hash = br::default_key_hash>
struct scenario {
    using bridge_type = br::learning_bridge<br::fdb<Hash>>;
    std::unique_ptr<bridge_type> bridge;
    std::vector<std::uint8_t> bytes;
    std::vector<sp::frame> frames;
    std::vector<br::mac_key> dst_keys; // the destinations of `frames`, in order
    std::vector<br::mac_key> all_keys; // every learned key
    br::port_bursts out{n_ports, burst};

    scenario(std::size_t macs, std::size_t train) : bytes(pool_frames * 64), frames(pool_frames) {
        br::bridge_config c;
        c.max_ports = n_ports;
        c.fdb.capacity = static_cast<std::uint32_t>(macs + macs / 4 + 16);
        c.fdb.max_ports = n_ports;
        c.fdb.hash_seed = 0x9e3779b97f4a7c15ULL;
        bridge = std::make_unique<bridge_type>(c);
        for (br::port_id p = 0; p < n_ports; ++p) {
            br::port_config pc;
            pc.flags |= br::port_flag::gso_tcpv4;
            bridge->configure_port(p, pc);
        }
        std::mt19937_64 rng(macs * 31 + train);
        const std::size_t half = macs / 2;
        std::vector<std::uint64_t> up(half);
        std::vector<std::uint64_t> guest(macs - half);
        for (auto& m : up) {
            m = (rng() & 0xfefffffffffeULL) | 0x02; // unicast, locally administered
        }
        for (auto& m : guest) {
            m = (rng() & 0xfefffffffffeULL) | 0x02;
        }
        std::vector<br::learn_request> req;
        for (const auto m : up) {
            req.push_back({br::mac_key::from_mac48(m, 0), 0});
        }
        for (std::size_t i = 0; i < guest.size(); ++i) {
            req.push_back({br::mac_key::from_mac48(guest[i], 0),
                           static_cast<br::port_id>(1 + i % (n_ports - 1))});
        }
        std::vector<br::learn_status> st(req.size());
        (void)bridge->fdb().learn_burst(req, 0, st);
        for (const auto& r : req) {
            all_keys.push_back(r.key);
        }
        std::uint64_t src = 0;
        std::uint64_t dst = 0;
        for (std::size_t i = 0; i < pool_frames; ++i) {
            if (train == 0 || i % train == 0) {
                src = up[rng() % up.size()];
                dst = guest[rng() % guest.size()];
            }
            std::uint8_t* p = &bytes[i * 64];
            const auto d = br::mac_key::from_mac48(dst, 0).mac();
            const auto s = br::mac_key::from_mac48(src, 0).mac();
            std::memcpy(p, d.bytes.data(), 6);
            std::memcpy(p + 6, s.bytes.data(), 6);
            p[12] = 0x08;
            p[13] = 0x00;
            frames[i] = sp::make_frame(p, 60, 0);
            dst_keys.push_back(br::mac_key::from_mac48(dst, 0));
        }
    }
};

// Out of line so that callgrind can count exactly this call (--toggle-collect='*run_burst*').
template <class Bridge>
[[gnu::noinline]] std::size_t run_burst(Bridge& b, std::span<sp::frame> in, br::port_bursts& out,
                                        std::uint64_t now) {
    return b.forward_burst(in, out, now);
}

template <class Hash>
void bridge_forward(benchmark::State& s) {
    scenario<Hash> sc(static_cast<std::size_t>(s.range(0)), static_cast<std::size_t>(s.range(1)));
    std::size_t at = 0;
    std::uint64_t now = 0;
    for (auto _ : s) {
        const std::size_t n = run_burst(*sc.bridge, {&sc.frames[at], burst}, sc.out, now);
        benchmark::DoNotOptimize(n);
        benchmark::DoNotOptimize(sc.out.active_ports().data());
        at = (at + burst) % pool_frames;
        now += 1000; // 1 µs per burst: the tick changes every 2^20 packets or so
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * burst));
    const auto& st = sc.bridge->stats();
    s.counters["unicast_share"] = static_cast<double>(st.tx_unicast) /
                                  static_cast<double>(std::max<std::uint64_t>(st.rx_packets, 1));
}
/// The FDB's default hash, mix_key_hash.
void BM_bridge_forward(benchmark::State& s) {
    bridge_forward<br::default_key_hash>(s);
}
#if defined(__AES__)
/// aes_key_hash in the same binary: fewer instructions a key, more cycles of latency
/// (key_hash.hpp).
void BM_bridge_forward_aes(benchmark::State& s) {
    bridge_forward<br::aes_key_hash>(s);
}
#endif

void BM_fdb_lookup_burst(benchmark::State& s) {
    scenario<> sc(static_cast<std::size_t>(s.range(0)), static_cast<std::size_t>(s.range(1)));
    std::vector<br::fdb_result> res(burst);
    std::size_t at = 0;
    const auto& f = sc.bridge->fdb();
    for (auto _ : s) {
        benchmark::DoNotOptimize(f.lookup_burst({&sc.dst_keys[at], burst}, res));
        benchmark::DoNotOptimize(res.data());
        at = (at + burst) % pool_frames;
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * burst));
}

#ifdef SPLITNET_BENCH_HAS_DPDK
bool eal_ready = false;

void BM_dpdk_rte_hash_lookup_bulk(benchmark::State& s) {
    if (!eal_ready) {
        s.SkipWithError("DPDK EAL did not initialise (see stderr); rte_hash skipped");
        return;
    }
    scenario<> sc(static_cast<std::size_t>(s.range(0)), static_cast<std::size_t>(s.range(1)));
    static int instance = 0;
    const std::string name = "bench_l2_" + std::to_string(instance++);
    rte_hash_parameters p{};
    p.name = name.c_str();
    p.entries = static_cast<std::uint32_t>(sc.all_keys.size() * 2 + 64);
    p.key_len = sizeof(std::uint64_t);
    p.hash_func = rte_hash_crc;
    p.hash_func_init_val = 0;
    p.socket_id = 0;
    rte_hash* h = rte_hash_create(&p);
    if (h == nullptr) {
        s.SkipWithError("rte_hash_create failed");
        return;
    }
    for (std::size_t i = 0; i < sc.all_keys.size(); ++i) {
        if (rte_hash_add_key_data(h, &sc.all_keys[i].value, reinterpret_cast<void*>(i + 1)) != 0) {
            s.SkipWithError("rte_hash_add_key_data failed");
            rte_hash_free(h);
            return;
        }
    }
    std::vector<const void*> keys(pool_frames);
    for (std::size_t i = 0; i < pool_frames; ++i) {
        keys[i] = &sc.dst_keys[i].value;
    }
    std::vector<std::int32_t> pos(burst);
    std::size_t at = 0;
    for (auto _ : s) {
        benchmark::DoNotOptimize(rte_hash_lookup_bulk(h, &keys[at], burst, pos.data()));
        benchmark::DoNotOptimize(pos.data());
        at = (at + burst) % pool_frames;
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * burst));
    rte_hash_free(h);
}
#endif

// {learned MACs, train length (0 = random destinations)}
void shapes(benchmark::internal::Benchmark* b) {
    for (const std::int64_t macs : {16, 1024, 65536}) {
        for (const std::int64_t train : {0, 16}) {
            b->Args({macs, train});
        }
    }
    b->ArgNames({"macs", "train"});
}

BENCHMARK(BM_bridge_forward)->Apply(shapes);
// Fixed-length runs for callgrind (callgrind.sh): exactly 10000 bursts (320000 packets) go
// through run_burst, for every shape.
BENCHMARK(BM_bridge_forward)->Apply(shapes)->Iterations(10000);
#if defined(__AES__)
BENCHMARK(BM_bridge_forward_aes)->Apply(shapes);
BENCHMARK(BM_bridge_forward_aes)->Apply(shapes)->Iterations(10000);
#endif
BENCHMARK(BM_fdb_lookup_burst)->Apply(shapes);
#ifdef SPLITNET_BENCH_HAS_DPDK
BENCHMARK(BM_dpdk_rte_hash_lookup_bulk)->Apply(shapes);
#endif

} // namespace

int main(int argc, char** argv) {
#ifdef SPLITNET_BENCH_HAS_DPDK
    eal_ready = splitnet::bench::dpdk_eal_ready("the DPDK hash benchmarks");
#endif
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 1;
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
#ifdef SPLITNET_BENCH_HAS_DPDK
    if (eal_ready) {
        rte_eal_cleanup();
    }
#endif
    return 0;
}
