// Header parsing cost per packet: splitnet's parse() on TCP/IPv4, TCP/IPv6 with a VLAN tag and
// TCP/IPv4 with timestamp-option decoding, against DPDK's software packet-type parser
// rte_net_get_ptype (which also returns L2/L3/L4 lengths) when DPDK is present.
#include <cstdint>
#include <vector>

#include <benchmark/benchmark.h>

#include <splitnet/packet/packet_builder.hpp>
#include <splitnet/packet/parser.hpp>

#if __has_include(<rte_net.h>)
#include <rte_mbuf.h>
#include <rte_net.h>
#define SPLITNET_BENCH_HAS_DPDK 1
#endif

namespace sp = splitnet::packet;

namespace {

// 32 different packets of a kind, parsed round robin so branch predictors see some variety.
std::vector<std::vector<std::uint8_t>> packets(bool v6, bool vlan) {
    std::vector<std::vector<std::uint8_t>> out;
    for (std::uint32_t i = 0; i < 32; ++i) {
        auto c = sp::tcp_flow(i, v6);
        if (vlan) {
            c.l2.vlan_count = 1;
            c.l2.vlan_tci = {static_cast<std::uint16_t>(100 + i), 0};
        }
        sp::tcp_stream s(c);
        std::vector<std::uint8_t> b(2048);
        b.resize(s.next(b));
        out.push_back(std::move(b));
    }
    return out;
}

// A burst of 32 packets per iteration, results into an array, as a data path uses the parser.
void run_parse(benchmark::State& s, bool v6, bool vlan, bool options) {
    const auto pk = packets(v6, vlan);
    std::vector<sp::parsed_packet> out(pk.size());
    std::vector<sp::tcp_options> opts(pk.size());
    for (auto _ : s) {
        for (std::size_t i = 0; i < pk.size(); ++i) {
            sp::parse_into(pk[i], pk[i].size(), out[i]);
            if (options) {
                opts[i] = sp::parse_tcp_options(
                    std::span(pk[i]).subspan(out[i].l4_offset + 20U, out[i].l4_header_len() - 20U));
            }
        }
        benchmark::DoNotOptimize(out.data());
        benchmark::DoNotOptimize(opts.data());
        benchmark::ClobberMemory();
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * pk.size()));
}

void BM_splitnet_parse_tcp4(benchmark::State& s) {
    run_parse(s, false, false, false);
}
void BM_splitnet_parse_tcp6_vlan(benchmark::State& s) {
    run_parse(s, true, true, false);
}
void BM_splitnet_parse_tcp4_options(benchmark::State& s) {
    run_parse(s, false, false, true);
}

#ifdef SPLITNET_BENCH_HAS_DPDK
void run_dpdk(benchmark::State& s, bool v6, bool vlan) {
    auto pk = packets(v6, vlan);
    // A bare mbuf per packet, enough for rte_net_get_ptype (single segment, no mempool).
    std::vector<rte_mbuf> m(32);
    for (std::size_t k = 0; k < 32; ++k) {
        m[k] = rte_mbuf{};
        m[k].buf_addr = pk[k].data();
        m[k].data_off = 0;
        m[k].data_len = static_cast<std::uint16_t>(pk[k].size());
        m[k].pkt_len = static_cast<std::uint32_t>(pk[k].size());
        m[k].nb_segs = 1;
    }
    std::vector<rte_net_hdr_lens> lens(32);
    std::vector<std::uint32_t> ptype(32);
    for (auto _ : s) {
        for (std::size_t k = 0; k < 32; ++k) {
            ptype[k] = rte_net_get_ptype(&m[k], &lens[k], RTE_PTYPE_ALL_MASK);
        }
        benchmark::DoNotOptimize(lens.data());
        benchmark::DoNotOptimize(ptype.data());
        benchmark::ClobberMemory();
    }
    s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations() * 32));
}
void BM_dpdk_get_ptype_tcp4(benchmark::State& s) {
    run_dpdk(s, false, false);
}
void BM_dpdk_get_ptype_tcp6_vlan(benchmark::State& s) {
    run_dpdk(s, true, true);
}
BENCHMARK(BM_dpdk_get_ptype_tcp4);
BENCHMARK(BM_dpdk_get_ptype_tcp6_vlan);
#endif

} // namespace

BENCHMARK(BM_splitnet_parse_tcp4);
BENCHMARK(BM_splitnet_parse_tcp6_vlan);
BENCHMARK(BM_splitnet_parse_tcp4_options);

BENCHMARK_MAIN();
