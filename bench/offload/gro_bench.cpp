// GRO against DPDK librte_gro on the same traffic, same core: in-order TCP/IPv4, 1448-byte
// payloads, F concurrent flows arriving round robin (one segment of each flow in turn: the
// hardest order for an aggregator), bursts of 32, with and without TCP timestamps.
//  - burst: splitnet lightweight mode (flush at the end of every burst) against
//    rte_gro_reassemble_burst;
//  - held: aggregates held across bursts (splitnet hold_across_bursts, DPDK's context mode with
//    rte_gro_reassemble and rte_gro_timeout_flush), over a window of packets that gives every flow
//    several segments, flushed at the end of the window.
// Each iteration restores the packets' headers (GRO rewrote them) and descriptors first, the same
// work for both; "restore_only" and "dpdk_restore_only" measure it alone, to subtract. Counters: ns
// per input segment (items/s) and segs_per_agg, the merge ratio. Input frames are marked
// checksum-verified, as a NIC with RX checksum offload delivers them (DPDK's GRO never checks
// checksums); "_validated" variants make splitnet verify every checksum in software too.
// Instructions per segment for both engines, stable where these times are not:
//   bench/offload/callgrind.sh BUILD_DIR/bench/offload/offload_gro_bench
// (DPDK's burst mode zeroes its tables on every call: half its instructions under valgrind, which
// runs glibc's AVX2 memset, fewer on hardware with wider stores; compare burst mode by time).
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include <benchmark/benchmark.h>

#include <splitnet/offload/gro.hpp>
#include <splitnet/packet/buffer_pool.hpp>
#include <splitnet/packet/packet_builder.hpp>

#if __has_include(<rte_gro.h>)
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_gro.h>
#include <rte_mbuf.h>
#define SPLITNET_BENCH_HAS_DPDK 1
#include "support/dpdk_eal.hpp"
#endif

namespace so = splitnet::offload;
namespace sp = splitnet::packet;

namespace {

constexpr std::size_t burst = 32;
constexpr std::size_t hdr_bytes = 14 + 20 + 32; // with timestamps; 20 less without

struct workload {
    std::vector<std::vector<std::uint8_t>> packets;
};

/// `flows` flows, round robin, `per_flow` segments each (at least 4096 packets in all).
const workload& traffic(std::size_t flows, bool timestamps, bool held) {
    static std::vector<std::unique_ptr<workload>> cache(64);
    const std::size_t slot = (flows == 1      ? 0
                              : flows == 16   ? 1
                              : flows == 256  ? 2
                              : flows == 1024 ? 3
                                              : 4) *
                                 4 +
                             (timestamps ? 2 : 0) + (held ? 1 : 0);
    if (cache[slot]) {
        return *cache[slot];
    }
    auto w = std::make_unique<workload>();
    const std::size_t total = held ? std::max<std::size_t>(4096, flows * 8) : 4096;
    std::vector<sp::tcp_stream> streams;
    for (std::size_t f = 0; f < flows; ++f) {
        auto c = sp::tcp_flow(static_cast<std::uint32_t>(f));
        c.write_size = 1U << 30;
        c.timestamps = timestamps;
        c.segments_per_tick = 1U << 30;
        streams.emplace_back(c);
    }
    for (std::size_t i = 0; i < total; ++i) {
        std::vector<std::uint8_t> b(2048);
        b.resize(streams[i % flows].next(b));
        w->packets.push_back(std::move(b));
    }
    cache[slot] = std::move(w);
    return *cache[slot];
}

struct splitnet_side {
    sp::buffer_pool pool;
    std::vector<sp::frame> tmpl, frames, out;
    std::vector<std::vector<std::uint8_t>> headers;
    explicit splitnet_side(const workload& w, bool verified)
        : pool({.frame_count = static_cast<std::uint32_t>(w.packets.size() + 64),
                .frame_size = 2048}) {
        tmpl.resize(w.packets.size());
        (void)pool.alloc_burst(tmpl);
        for (std::size_t i = 0; i < tmpl.size(); ++i) {
            std::memcpy(tmpl[i].data, w.packets[i].data(), w.packets[i].size());
            tmpl[i].data_len = tmpl[i].pkt_len = static_cast<std::uint32_t>(w.packets[i].size());
            tmpl[i].offload.csum = verified ? sp::csum_state::verified : sp::csum_state::none;
            headers.emplace_back(w.packets[i].begin(), w.packets[i].begin() + hdr_bytes);
        }
        frames = tmpl;
        out.resize(w.packets.size() + 64);
    }
    void restore() {
        for (std::size_t i = 0; i < tmpl.size(); ++i) {
            std::memcpy(tmpl[i].data, headers[i].data(), headers[i].size());
        }
        std::memcpy(frames.data(), tmpl.data(), tmpl.size() * sizeof(sp::frame));
    }
};

void report(benchmark::State& s, std::size_t packets, std::uint64_t outputs) {
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * packets));
    s.counters["segs_per_agg"] = static_cast<double>(packets) *
                                 static_cast<double>(s.iterations()) /
                                 static_cast<double>(outputs == 0 ? 1 : outputs);
}

template <bool Held, bool Validated = false>
void BM_splitnet_gro(benchmark::State& s) {
    const auto flows = static_cast<std::size_t>(s.range(0));
    const workload& w = traffic(flows, s.range(1) != 0, Held);
    splitnet_side side(w, !Validated);
    so::gro_config cfg;
    cfg.max_flows = static_cast<std::uint32_t>(Held ? flows : burst);
    cfg.hold_across_bursts = Held;
    so::gro_engine<> gro(cfg, so::storage::chain(side.pool));
    std::uint64_t outputs = 0;
    for (auto _ : s) {
        side.restore();
        std::size_t o = 0;
        for (std::size_t i = 0; i < side.frames.size(); i += burst) {
            const std::size_t n = std::min(burst, side.frames.size() - i);
            const auto r = gro.receive_burst(std::span(side.frames).subspan(i, n),
                                             std::span(side.out).subspan(o), 0);
            o += r.produced;
        }
        o += gro.flush_all(std::span(side.out).subspan(o));
        outputs += o;
        benchmark::DoNotOptimize(side.out.data());
    }
    report(s, side.frames.size(), outputs);
}

template <bool Held>
void BM_restore_only(benchmark::State& s) {
    const workload& w = traffic(static_cast<std::size_t>(s.range(0)), s.range(1) != 0, Held);
    splitnet_side side(w, true);
    for (auto _ : s) {
        side.restore();
        benchmark::DoNotOptimize(side.frames.data());
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * side.frames.size()));
}

#ifdef SPLITNET_BENCH_HAS_DPDK
bool dpdk_ready() {
    return splitnet::bench::dpdk_eal_ready("the DPDK GRO benchmarks");
}

struct dpdk_side {
    rte_mempool* mp = nullptr;
    std::vector<rte_mbuf*> m, ptrs, out;
    std::vector<rte_mbuf> tmpl;
    std::vector<std::vector<std::uint8_t>> headers;
    explicit dpdk_side(const workload& w, bool ts) {
        static int n = 0;
        const std::string name = "gro" + std::to_string(n++);
        mp = rte_pktmbuf_pool_create(name.c_str(), static_cast<unsigned>(w.packets.size() + 64), 0,
                                     0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
        m.resize(w.packets.size());
        if (mp == nullptr ||
            rte_pktmbuf_alloc_bulk(mp, m.data(), static_cast<unsigned>(m.size())) != 0) {
            m.clear();
            return;
        }
        for (std::size_t i = 0; i < m.size(); ++i) {
            char* d = rte_pktmbuf_append(m[i], static_cast<std::uint16_t>(w.packets[i].size()));
            std::memcpy(d, w.packets[i].data(), w.packets[i].size());
            m[i]->l2_len = 14;
            m[i]->l3_len = 20;
            m[i]->l4_len = ts ? 32 : 20;
            m[i]->packet_type = RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV4 | RTE_PTYPE_L4_TCP;
            tmpl.push_back(*m[i]);
            headers.emplace_back(w.packets[i].begin(), w.packets[i].begin() + hdr_bytes);
        }
        ptrs = m;
        out.resize(m.size());
    }
    ~dpdk_side() {
        restore();
        if (!m.empty()) {
            rte_pktmbuf_free_bulk(m.data(), static_cast<unsigned>(m.size()));
        }
        rte_mempool_free(mp);
    }
    void restore() {
        for (std::size_t i = 0; i < m.size(); ++i) {
            rte_mbuf& b = *m[i];
            b.data_off = tmpl[i].data_off;
            b.data_len = tmpl[i].data_len;
            b.pkt_len = tmpl[i].pkt_len;
            b.nb_segs = 1;
            b.next = nullptr;
            std::memcpy(rte_pktmbuf_mtod(m[i], std::uint8_t*), headers[i].data(),
                        headers[i].size());
        }
        std::memcpy(ptrs.data(), m.data(), m.size() * sizeof(rte_mbuf*));
    }
};

/// The DPDK side's restore alone, as BM_restore_only for splitnet: subtract it for GRO's own cost.
template <bool Held>
void BM_dpdk_restore_only(benchmark::State& s) {
    if (!dpdk_ready()) {
        s.SkipWithError("DPDK EAL unavailable");
        return;
    }
    const bool ts = s.range(1) != 0;
    dpdk_side side(traffic(static_cast<std::size_t>(s.range(0)), ts, Held), ts);
    if (side.m.empty()) {
        s.SkipWithError("DPDK mempool allocation failed");
        return;
    }
    for (auto _ : s) {
        side.restore();
        benchmark::DoNotOptimize(side.ptrs.data());
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * side.ptrs.size()));
}

template <bool Held>
void BM_dpdk_gro(benchmark::State& s) {
    if (!dpdk_ready()) {
        s.SkipWithError("DPDK EAL unavailable");
        return;
    }
    const auto flows = static_cast<std::size_t>(s.range(0));
    const bool ts = s.range(1) != 0;
    const workload& w = traffic(flows, ts, Held);
    dpdk_side side(w, ts);
    if (side.m.empty()) {
        s.SkipWithError("DPDK mempool allocation failed");
        return;
    }
    rte_gro_param param{};
    param.gro_types = RTE_GRO_TCP_IPV4;
    param.max_flow_num = static_cast<std::uint16_t>(Held ? flows : burst);
    param.max_item_per_flow = Held ? 64 : burst;
    void* ctx = Held ? rte_gro_ctx_create(&param) : nullptr;
    std::uint64_t outputs = 0;
    for (auto _ : s) {
        side.restore();
        std::size_t o = 0;
        for (std::size_t i = 0; i < side.ptrs.size(); i += burst) {
            const auto n = static_cast<std::uint16_t>(std::min(burst, side.ptrs.size() - i));
            if constexpr (Held) {
                o += rte_gro_reassemble(side.ptrs.data() + i, n, ctx); // left unprocessed
            } else {
                o += rte_gro_reassemble_burst(side.ptrs.data() + i, n, &param);
            }
        }
        if constexpr (Held) {
            o += rte_gro_timeout_flush(
                ctx, 0, RTE_GRO_TCP_IPV4, side.out.data(),
                static_cast<std::uint16_t>(std::min<std::size_t>(side.out.size(), 65535)));
        }
        outputs += o;
        benchmark::DoNotOptimize(side.ptrs.data());
    }
    if (ctx != nullptr) {
        rte_gro_ctx_destroy(ctx);
    }
    report(s, side.ptrs.size(), outputs);
}
#endif

void burst_args(benchmark::internal::Benchmark* b) {
    for (int ts : {0, 1}) {
        for (int f : {1, 16}) {
            b->Args({f, ts});
        }
    }
}
void held_args(benchmark::internal::Benchmark* b) {
    for (int ts : {0, 1}) {
        for (int f : {1, 16, 256, 1024, 4096}) {
            b->Args({f, ts});
        }
    }
}

} // namespace

BENCHMARK_TEMPLATE(BM_splitnet_gro, false)->Apply(burst_args)->ArgNames({"flows", "ts"});
BENCHMARK_TEMPLATE(BM_splitnet_gro, false, true)->Apply(burst_args)->ArgNames({"flows", "ts"});
BENCHMARK_TEMPLATE(BM_restore_only, false)->Args({1, 1});
BENCHMARK_TEMPLATE(BM_splitnet_gro, true)->Apply(held_args)->ArgNames({"flows", "ts"});
BENCHMARK_TEMPLATE(BM_restore_only, true)->Args({4096, 1});
#ifdef SPLITNET_BENCH_HAS_DPDK
BENCHMARK_TEMPLATE(BM_dpdk_gro, false)->Apply(burst_args)->ArgNames({"flows", "ts"});
BENCHMARK_TEMPLATE(BM_dpdk_restore_only, false)->Args({1, 1});
BENCHMARK_TEMPLATE(BM_dpdk_gro, true)->Apply(held_args)->ArgNames({"flows", "ts"});
BENCHMARK_TEMPLATE(BM_dpdk_restore_only, true)->Args({4096, 1});
#endif

BENCHMARK_MAIN();
