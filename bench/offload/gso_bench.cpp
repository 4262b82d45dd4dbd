// Software GSO and LRO copying, each against a peer in the same binary and run.
//  (a) offload::gso_segmenter on one 64 KiB TCP/IPv4 aggregate (45 segments of 1448 bytes with
//      timestamps, 65212-byte IP packet): in place, the aggregate being a GRO chain made by
//      gro_engine from the MSS segments (headers written back in front of each chained payload),
//      against copy, the same aggregate as one linear TSO frame (every segment copied into a
//      fresh pool buffer, freed again each iteration); each with complete checksums (every
//      segment summed) and partial ones (pseudo-header only, for an egress that completes it).
//      In place rewrites the head's headers, so each iteration first restores those 66 bytes;
//      gso_restore_only measures that alone.
//  (b) DPDK rte_gso_segment on the same aggregate, as a chain of mbufs (one per segment, like the
//      GRO chain) and as one linear mbuf: each output is a direct mbuf with a header copy plus an
//      indirect mbuf on the input's payload, freed again each iteration. DPDK computes no
//      checksum (the NIC does), so its peer is splitnet's partial variant. At start-up the DPDK
//      segments are compared with splitnet's byte for byte (checksum fields aside).
//  (c) LRO copy bandwidth: gro_engine with storage::linear over the same 45 segments (the
//      payloads copied into one 128 KiB buffer, the segment buffers freed as they are copied),
//      against a plain memcpy of the same bytes from the same buffers into the same destination;
//      gro_chain_same_segments is GRO without the copy, for reference.
// Counters: items/s = output segments (a, b) or input segments (c); bytes/s = output frame bytes
// (a, b) or bytes placed in the aggregate (c). Compare ratios within one run, never across runs.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include <splitnet/offload/gro.hpp>
#include <splitnet/offload/gso.hpp>
#include <splitnet/packet/buffer_pool.hpp>
#include <splitnet/packet/packet_builder.hpp>

#include <sched.h>

#if __has_include(<rte_gso.h>)
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_gso.h>
#include <rte_mbuf.h>
#define SPLITNET_BENCH_HAS_DPDK 1
#include "support/dpdk_eal.hpp"
#endif

namespace so = splitnet::offload;
namespace sp = splitnet::packet;

namespace {

constexpr std::uint32_t mss = 1448;
constexpr std::uint32_t segs = 45;          // 45 * 1448 = 65160 payload bytes: a 64 KiB packet
constexpr std::uint32_t hdr = 14 + 20 + 32; // Ethernet, IPv4, TCP with timestamps
constexpr std::uint32_t out_bytes = segs * (hdr + mss); // wire bytes of the segments
constexpr std::uint32_t agg_bytes = hdr + segs * mss;   // bytes of the aggregate

/// The 45 MSS segments of one bulk flow (no PSH, one TSval), as a Linux sender makes them.
const std::vector<std::vector<std::uint8_t>>& segments() {
    static const auto s = [] {
        auto c = sp::tcp_flow(0);
        c.write_size = 1U << 30;
        c.segments_per_tick = 1U << 30;
        sp::tcp_stream st(c);
        std::vector<std::vector<std::uint8_t>> v;
        for (std::uint32_t i = 0; i < segs; ++i) {
            std::vector<std::uint8_t> b(2048);
            b.resize(st.next(b));
            v.push_back(std::move(b));
        }
        return v;
    }();
    return s;
}

/// Pool frames holding the segments, marked checksum-verified (a NIC with RX checksum offload).
std::vector<sp::frame> load_segments(sp::buffer_pool& pool) {
    std::vector<sp::frame> f(segs);
    if (pool.alloc_burst(f) != segs) {
        return {};
    }
    for (std::uint32_t i = 0; i < segs; ++i) {
        const auto& b = segments()[i];
        std::memcpy(f[i].data, b.data(), b.size());
        f[i].data_len = f[i].pkt_len = static_cast<std::uint32_t>(b.size());
        f[i].offload.csum = sp::csum_state::verified;
    }
    return f;
}

/// The GRO chain of the 45 segments, made by gro_engine (lightweight mode, one burst).
struct gro_chain_aggregate {
    sp::buffer_pool pool{{.frame_count = 512, .frame_size = 2048}};
    sp::frame agg{};
    std::uint8_t head_headers[hdr] = {};
    bool ok = false;

    gro_chain_aggregate() {
        std::vector<sp::frame> in = load_segments(pool);
        std::vector<sp::frame> out(segs + 8);
        so::gro_engine<> gro(so::gro_config{}, so::storage::chain(pool));
        const so::gro_result r = gro.receive_burst(in, out, 0);
        if (r.consumed != segs || r.produced != 1 || out[0].nb_segs != segs ||
            out[0].pkt_len != agg_bytes || out[0].offload.gso_size != mss) {
            return;
        }
        agg = out[0];
        std::memcpy(head_headers, agg.data, hdr);
        ok = true;
    }
    void restore() noexcept { std::memcpy(agg.data, head_headers, hdr); }
};

/// The same aggregate as one linear frame (a TSO frame from a guest or a TAP device).
struct linear_aggregate {
    sp::buffer_pool big{{.frame_count = 1, .frame_size = 131072}};
    sp::frame agg{};
    explicit linear_aggregate(const sp::frame& chain) {
        if (big.alloc_burst({&agg, 1}) != 1) {
            return;
        }
        agg.data_len = agg.pkt_len = static_cast<std::uint32_t>(
            sp::copy_out(chain, {agg.data, big.frame_size() - agg.headroom}));
        agg.offload = chain.offload;
    }
};

void report_segments(benchmark::State& s) {
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()) * segs);
    s.SetBytesProcessed(static_cast<std::int64_t>(s.iterations()) * out_bytes);
}

// ---- (a) splitnet software GSO -------------------------------------------------------------

template <bool Complete>
void BM_gso_in_place(benchmark::State& s) {
    gro_chain_aggregate a;
    if (!a.ok) {
        s.SkipWithError("GRO did not make one 45-segment chain");
        return;
    }
    so::gso_segmenter gso(a.pool, Complete);
    std::vector<sp::frame> out(64);
    for (auto _ : s) {
        a.restore();
        const so::gso_result r = gso.segment(a.agg, out);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(out.data());
    }
    if (gso.stats().in_place != gso.stats().segmented || gso.stats().segments == 0) {
        s.SkipWithError("the chain was not split in place");
    }
    report_segments(s);
}

void BM_gso_restore_only(benchmark::State& s) {
    gro_chain_aggregate a;
    for (auto _ : s) {
        a.restore();
        benchmark::DoNotOptimize(a.agg.data);
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()) * segs);
}

template <bool Complete>
void BM_gso_copy(benchmark::State& s) {
    gro_chain_aggregate a;
    if (!a.ok) {
        s.SkipWithError("GRO did not make one 45-segment chain");
        return;
    }
    linear_aggregate l(a.agg);
    so::gso_segmenter gso(a.pool, Complete);
    std::vector<sp::frame> out(64);
    for (auto _ : s) {
        const so::gso_result r = gso.segment(l.agg, out);
        benchmark::DoNotOptimize(out.data());
        a.pool.free_burst(std::span(out).first(r.segments));
    }
    if (gso.stats().copied != gso.stats().segmented || gso.stats().segments == 0) {
        s.SkipWithError("the linear frame was not split by copying");
    }
    report_segments(s);
}

// ---- (b) DPDK rte_gso_segment --------------------------------------------------------------

#ifdef SPLITNET_BENCH_HAS_DPDK
/// EAL on the CPU this process may run on (taskset -c N pins both splitnet and DPDK runs).
bool dpdk_ready() {
    return splitnet::bench::dpdk_eal_ready("the DPDK GSO benchmarks");
}

/// The aggregate as DPDK's input: a chain of 45 mbufs (headers and first payload, then one
/// payload each) or one linear mbuf; TSO metadata as an application sets it for rte_gso.
struct dpdk_aggregate {
    rte_mempool* data_pool = nullptr;
    rte_mempool* direct = nullptr;
    rte_mempool* indirect = nullptr;
    rte_mbuf* pkt = nullptr;
    rte_gso_ctx ctx{};
    std::uint64_t ol_flags = 0;
    bool ok = false;

    dpdk_aggregate(const sp::frame& chain, bool linear) {
        static int n = 0;
        const std::string id = std::to_string(n++);
        const auto room = static_cast<std::uint16_t>(linear ? RTE_PKTMBUF_HEADROOM + agg_bytes + 64
                                                            : RTE_MBUF_DEFAULT_BUF_SIZE);
        data_pool = rte_pktmbuf_pool_create(("gsoin" + id).c_str(), 63, 0, 0, room, 0);
        direct =
            rte_pktmbuf_pool_create(("gsod" + id).c_str(), 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
        indirect = rte_pktmbuf_pool_create(("gsoi" + id).c_str(), 255, 0, 0, 0, 0);
        if (data_pool == nullptr || direct == nullptr || indirect == nullptr) {
            return;
        }
        for (const sp::frame* f = &chain; f != nullptr; f = f->next) {
            if (linear && pkt != nullptr) {
                char* d = rte_pktmbuf_append(pkt, static_cast<std::uint16_t>(f->data_len));
                if (d == nullptr) {
                    return;
                }
                std::memcpy(d, f->data, f->data_len);
                continue;
            }
            rte_mbuf* m = rte_pktmbuf_alloc(data_pool);
            if (m == nullptr) {
                return;
            }
            std::memcpy(rte_pktmbuf_append(m, static_cast<std::uint16_t>(f->data_len)), f->data,
                        f->data_len);
            if (pkt == nullptr) {
                pkt = m;
            } else if (rte_pktmbuf_chain(pkt, m) != 0) {
                rte_pktmbuf_free(m);
                return;
            }
        }
        pkt->l2_len = 14;
        pkt->l3_len = 20;
        pkt->l4_len = 32;
        pkt->tso_segsz = mss;
        ol_flags = RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM |
                   RTE_MBUF_F_TX_TCP_CKSUM;
        pkt->ol_flags = ol_flags;
        ctx.direct_pool = direct;
        ctx.indirect_pool = indirect;
        ctx.flag = 0; // incrementing IP IDs, as the capture's sender used
        ctx.gso_types = RTE_ETH_TX_OFFLOAD_TCP_TSO;
        ctx.gso_size = static_cast<std::uint16_t>(hdr + mss); // DPDK counts the headers
        ok = pkt->pkt_len == agg_bytes;
    }
    ~dpdk_aggregate() {
        rte_pktmbuf_free(pkt);
        rte_mempool_free(indirect);
        rte_mempool_free(direct);
        rte_mempool_free(data_pool);
    }
    dpdk_aggregate(const dpdk_aggregate&) = delete;
    dpdk_aggregate& operator=(const dpdk_aggregate&) = delete;
};

/// DPDK's segments must be splitnet's (but for the checksums DPDK leaves to the NIC).
bool same_segments(dpdk_aggregate& d, gro_chain_aggregate& a) {
    so::gso_segmenter gso(a.pool, false);
    std::vector<sp::frame> ours(64);
    a.restore();
    const so::gso_result r = gso.segment(a.agg, ours);
    rte_mbuf* theirs[64];
    d.pkt->ol_flags = d.ol_flags;
    const int n = rte_gso_segment(d.pkt, &d.ctx, theirs, 64);
    bool same = n == static_cast<int>(r.segments);
    for (int i = 0; i < n; ++i) {
        std::vector<std::uint8_t> x(rte_pktmbuf_pkt_len(theirs[i]));
        const void* p =
            rte_pktmbuf_read(theirs[i], 0, static_cast<std::uint32_t>(x.size()), x.data());
        if (p != x.data()) {
            std::memcpy(x.data(), p, x.size());
        }
        const auto& y = segments()[static_cast<std::size_t>(i)];
        if (same && x.size() == y.size()) {
            x[24] = y[24]; // IPv4 header checksum
            x[25] = y[25];
            x[50] = y[50]; // TCP checksum
            x[51] = y[51];
            same = x == y;
        } else {
            same = false;
        }
    }
    rte_pktmbuf_free_bulk(theirs, static_cast<unsigned>(n > 0 ? n : 0));
    a.restore();
    return same;
}

template <bool Linear>
void BM_dpdk_gso(benchmark::State& s) {
    if (!dpdk_ready()) {
        s.SkipWithError("DPDK EAL unavailable");
        return;
    }
    gro_chain_aggregate a;
    if (!a.ok) {
        s.SkipWithError("GRO did not make one 45-segment chain");
        return;
    }
    dpdk_aggregate d(a.agg, Linear);
    if (!d.ok) {
        s.SkipWithError("DPDK mbuf set-up failed");
        return;
    }
    if (!same_segments(d, a)) {
        s.SkipWithError("rte_gso_segment's segments differ from the original segments");
        return;
    }
    rte_mbuf* out[64];
    std::uint64_t produced = 0;
    for (auto _ : s) {
        d.pkt->ol_flags = d.ol_flags; // rte_gso_segment clears TCP_SEG on its input
        const int n = rte_gso_segment(d.pkt, &d.ctx, out, 64);
        benchmark::DoNotOptimize(out[0]);
        rte_pktmbuf_free_bulk(out, static_cast<unsigned>(n));
        produced += static_cast<std::uint64_t>(n);
    }
    if (produced != static_cast<std::uint64_t>(s.iterations()) * segs) {
        s.SkipWithError("rte_gso_segment did not give 45 segments every time");
    }
    report_segments(s);
}
#endif

// ---- (c) LRO copy bandwidth ----------------------------------------------------------------

/// The 45 segments in a pool of exactly 45 buffers, put back on its free list in segment order:
/// the free list is FIFO, so each iteration's allocation returns the same buffers, still holding
/// the segments (linear storage frees them as it copies; it never writes to them).
struct lro_input {
    sp::buffer_pool pool{{.frame_count = segs, .frame_size = 2048}};
    std::vector<sp::frame> tmpl, in;
    explicit lro_input() : tmpl(load_segments(pool)), in(segs) { pool.free_burst(tmpl); }
    /// Takes the buffers off the free list again; false if they did not come back in order.
    bool take() noexcept {
        if (pool.alloc_burst(in) != segs) {
            return false;
        }
        const bool same =
            in.front().buffer == tmpl.front().buffer && in.back().buffer == tmpl.back().buffer;
        std::memcpy(in.data(), tmpl.data(), segs * sizeof(sp::frame));
        return same;
    }
};

void report_lro(benchmark::State& s) {
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()) * segs);
    s.SetBytesProcessed(static_cast<std::int64_t>(s.iterations()) * agg_bytes);
}

void BM_lro_linear_copy(benchmark::State& s) {
    lro_input input;
    sp::buffer_pool large({.frame_count = 2, .frame_size = 131072});
    so::gro_engine<so::merge::exact, so::storage::linear> gro(
        so::gro_config{}, so::storage::linear(input.pool, large));
    std::vector<sp::frame> out(segs + 8);
    bool in_order = true;
    for (auto _ : s) {
        in_order &= input.take();
        const so::gro_result r = gro.receive_burst(input.in, out, 0);
        benchmark::DoNotOptimize(out[0].data);
        large.free_burst(std::span(out).first(r.produced));
    }
    if (!in_order || gro.stats().aggregates != static_cast<std::uint64_t>(s.iterations()) ||
        gro.stats().aggregated_segments != static_cast<std::uint64_t>(s.iterations()) * segs) {
        s.SkipWithError("LRO did not make one 45-segment aggregate per iteration from the "
                        "same buffers");
    }
    report_lro(s);
}

/// The peer: the same bytes (the head's headers and payload, then each payload) from the same
/// buffers into one large buffer, with memcpy.
void BM_memcpy_same_bytes(benchmark::State& s) {
    lro_input input;
    sp::buffer_pool large({.frame_count = 2, .frame_size = 131072});
    sp::frame dst;
    (void)large.alloc_burst({&dst, 1});
    if (!input.take()) {
        s.SkipWithError("buffer set-up failed");
        return;
    }
    for (auto _ : s) {
        std::uint8_t* d = dst.data;
        std::memcpy(d, input.in[0].data, input.in[0].data_len);
        d += input.in[0].data_len;
        for (std::uint32_t i = 1; i < segs; ++i) {
            std::memcpy(d, input.in[i].data + hdr, mss);
            d += mss;
        }
        benchmark::DoNotOptimize(dst.data);
        benchmark::ClobberMemory();
    }
    report_lro(s);
}

/// GRO (chain storage) on the same segments: the aggregation work without the copy.
void BM_gro_chain_same_segments(benchmark::State& s) {
    gro_chain_aggregate a; // its buffers hold the segments; the head's headers were rewritten
    if (!a.ok) {
        s.SkipWithError("GRO did not make one 45-segment chain");
        return;
    }
    std::vector<sp::frame> tmpl(segs), in(segs), out(segs + 8);
    std::uint32_t i = 0;
    for (const sp::frame* f = &a.agg; f != nullptr; f = f->next, ++i) {
        // Each segment as it arrived: data back at its headers, its own length.
        tmpl[i] = a.pool.frame_at(f->buffer + f->headroom - (i == 0 ? 0 : hdr), hdr + mss);
        tmpl[i].offload.csum = sp::csum_state::verified;
    }
    so::gro_engine<> gro(so::gro_config{}, so::storage::chain(a.pool));
    const std::uint8_t* first = segments()[0].data();
    for (auto _ : s) {
        std::memcpy(tmpl[0].data, first, hdr); // the first segment's own headers
        std::memcpy(in.data(), tmpl.data(), segs * sizeof(sp::frame));
        const so::gro_result r = gro.receive_burst(in, out, 0);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(out[0].data);
    }
    if (gro.stats().aggregated_segments != static_cast<std::uint64_t>(s.iterations()) * segs) {
        s.SkipWithError("GRO did not make one 45-segment aggregate per iteration");
    }
    report_lro(s);
}

} // namespace

BENCHMARK_TEMPLATE(BM_gso_in_place, true)->Name("gso_in_place/complete");
BENCHMARK_TEMPLATE(BM_gso_in_place, false)->Name("gso_in_place/partial");
BENCHMARK_TEMPLATE(BM_gso_copy, true)->Name("gso_copy/complete");
BENCHMARK_TEMPLATE(BM_gso_copy, false)->Name("gso_copy/partial");
BENCHMARK(BM_gso_restore_only)->Name("gso_restore_only");
#ifdef SPLITNET_BENCH_HAS_DPDK
BENCHMARK_TEMPLATE(BM_dpdk_gso, false)->Name("dpdk_gso/chain");
BENCHMARK_TEMPLATE(BM_dpdk_gso, true)->Name("dpdk_gso/linear");
#endif
BENCHMARK(BM_lro_linear_copy)->Name("lro_linear_copy");
BENCHMARK(BM_memcpy_same_bytes)->Name("memcpy_same_bytes");
BENCHMARK(BM_gro_chain_same_segments)->Name("gro_chain_same_segments");

BENCHMARK_MAIN();
