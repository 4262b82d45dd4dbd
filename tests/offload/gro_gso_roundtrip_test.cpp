// Property tests over random traffic: many realistic flows (IPv4 and IPv6, VLAN or not, fixed
// or incrementing IP IDs, timestamps that tick, writes ending in PSH, a stray ACK, the odd
// reordering) interleaved at random and cut into random bursts.
//  - exact mode, chain storage: GRO then GSO gives back exactly the input segments, byte for byte,
//    each flow's segments in their original order;
//  - every mode (exact/local, chain/linear, lightweight/held): no flow is reordered and every
//    payload byte of every flow comes out exactly once.
#include <algorithm>
#include <map>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "offload/gro_fixture.hpp"

namespace so = splitnet::offload;
namespace sp = splitnet::packet;
using namespace splitnet::test;

namespace {

struct traffic {
    std::vector<bytes> packets;       ///< interleaved arrival order
    std::vector<std::size_t> flow_of; ///< flow index of each packet
};

traffic make_traffic(std::mt19937& rng, std::size_t flows, std::size_t per_flow) {
    std::vector<std::vector<bytes>> by_flow(flows);
    for (std::size_t f = 0; f < flows; ++f) {
        auto c = sp::tcp_flow(static_cast<std::uint32_t>(f), rng() % 3 == 0);
        c.write_size = static_cast<std::uint32_t>(1448 * (1 + rng() % 12) + rng() % 1448);
        c.segments_per_tick = static_cast<std::uint32_t>(1 + rng() % 20);
        c.ip_id_increment = rng() % 4 != 0;
        c.timestamps = rng() % 5 != 0;
        if (rng() % 4 == 0) {
            c.l2.vlan_count = 1;
            c.l2.vlan_tci = {static_cast<std::uint16_t>(1 + rng() % 4000), 0};
        }
        sp::tcp_stream s(c);
        for (std::size_t i = 0; i < per_flow; ++i) {
            bytes b(2048);
            if (rng() % 40 == 0) {
                b.resize(s.segment(b, {}, sp::tcp_flag::ack)); // a pure ACK in the stream
            } else {
                b.resize(s.next(b));
            }
            by_flow[f].push_back(std::move(b));
        }
        if (rng() % 3 == 0 && per_flow > 4) { // one local reordering
            const std::size_t i = 1 + rng() % (per_flow - 2);
            std::swap(by_flow[f][i], by_flow[f][i + 1]);
        }
    }
    traffic t;
    std::vector<std::size_t> next(flows, 0);
    std::size_t left = flows * per_flow;
    while (left != 0) {
        std::size_t f = rng() % flows;
        while (next[f] == per_flow) {
            f = (f + 1) % flows;
        }
        // Trains: often several consecutive packets of one flow, as a NIC queue sees them.
        const std::size_t run = 1 + rng() % 8;
        for (std::size_t k = 0; k < run && next[f] < per_flow; ++k, --left) {
            t.packets.push_back(by_flow[f][next[f]++]);
            t.flow_of.push_back(f);
        }
    }
    return t;
}

/// Per flow (by flow key), the sequence of packets' bytes.
std::map<std::vector<std::uint8_t>, std::vector<bytes>>
by_flow_key(const std::vector<bytes>& pkts) {
    std::map<std::vector<std::uint8_t>, std::vector<bytes>> m;
    for (const auto& b : pkts) {
        const auto p = sp::parse(b);
        const auto* k = reinterpret_cast<const std::uint8_t*>(&p.key);
        m[std::vector<std::uint8_t>(k, k + sizeof p.key)].push_back(b);
    }
    return m;
}

/// Per flow, the payload stream: (seq, bytes) of every TCP segment in output order.
std::map<std::vector<std::uint8_t>, std::vector<std::pair<std::uint32_t, bytes>>>
payloads(const std::vector<bytes>& pkts) {
    std::map<std::vector<std::uint8_t>, std::vector<std::pair<std::uint32_t, bytes>>> m;
    for (const auto& b : pkts) {
        const auto p = sp::parse(b);
        if (!p.is_tcp() || p.payload_len() == 0) {
            continue;
        }
        const auto* k = reinterpret_cast<const std::uint8_t*>(&p.key);
        m[std::vector<std::uint8_t>(k, k + sizeof p.key)].push_back(
            {sp::tcp_header{b.data() + p.l4_offset}.seq(),
             bytes(b.begin() + p.payload_offset,
                   b.begin() + static_cast<std::ptrdiff_t>(p.l3_end))});
    }
    return m;
}

template <class Engine>
std::vector<sp::frame> run_random_bursts(gro_harness& h, Engine& e, const traffic& t,
                                         std::mt19937& rng) {
    std::vector<sp::frame> in, out;
    for (const auto& p : t.packets) {
        in.push_back(h.frame_of(p));
    }
    std::vector<sp::frame> buf(64 + e.config().max_flows + 8);
    std::uint64_t now = 0;
    for (std::size_t i = 0; i < in.size();) {
        const std::size_t n = std::min<std::size_t>(1 + rng() % 64, in.size() - i);
        now += 1000;
        const auto r = e.receive_burst(std::span(in).subspan(i, n), buf, now);
        out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r.produced));
        i += r.consumed;
    }
    const std::size_t k = e.flush_all(buf);
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(k));
    return out;
}

} // namespace

TEST(GroGsoRoundTrip, ExactModeGivesBackTheInputSegmentsBitForBit) {
    std::mt19937 rng(2024);
    for (int round = 0; round < 40; ++round) {
        gro_harness h;
        const auto t = make_traffic(rng, 1 + rng() % 24, 40);
        so::gro_config cfg;
        cfg.max_flows = static_cast<std::uint32_t>(1 + rng() % 32);
        cfg.hold_across_bursts = rng() % 2 == 0;
        cfg.complete_checksum = rng() % 2 == 0;
        cfg.max_segments = static_cast<std::uint16_t>(2 + rng() % 64);
        so::gro_engine<> gro(cfg, so::storage::chain(*h.pool));
        const auto aggregated = run_random_bursts(h, gro, t, rng);
        so::gso_segmenter gso(*h.pool);
        std::vector<bytes> back;
        std::vector<sp::frame> segs(128);
        for (const auto& f : aggregated) {
            const auto r = gso.segment(f, segs);
            ASSERT_GT(r.segments, 0U);
            ASSERT_TRUE(r.consumed_input) << "a GRO chain splits in place";
            for (std::size_t i = 0; i < r.segments; ++i) {
                back.push_back(linear(segs[i]));
                h.pool->free(segs[i]);
            }
        }
        EXPECT_EQ(gso.stats().copied, 0U);
        ASSERT_EQ(back.size(), t.packets.size()) << "round " << round;
        // Same segments per flow, in the same order; across flows order may differ only where
        // GRO held one flow while another went by.
        const auto want = by_flow_key(t.packets);
        const auto got = by_flow_key(back);
        ASSERT_EQ(got.size(), want.size());
        for (const auto& [key, pkts] : want) {
            const auto& g = got.at(key);
            ASSERT_EQ(g.size(), pkts.size());
            for (std::size_t i = 0; i < pkts.size(); ++i) {
                ASSERT_EQ(g[i], pkts[i]) << "round " << round << " segment " << i;
            }
        }
        EXPECT_EQ(h.pool->available(), h.pool->capacity());
        EXPECT_GT(gro.stats().merged, 0U);
    }
}

template <class Merge, class Storage>
void check_streams_intact(bool hold) {
    std::mt19937 rng(77);
    for (int round = 0; round < 25; ++round) {
        gro_harness h;
        sp::buffer_pool large({.frame_count = 64, .frame_size = 131072});
        const auto t = make_traffic(rng, 1 + rng() % 16, 30);
        so::gro_config cfg;
        cfg.max_flows = static_cast<std::uint32_t>(1 + rng() % 16);
        cfg.hold_across_bursts = hold;
        Storage storage = [&] {
            if constexpr (std::is_same_v<Storage, so::storage::linear>) {
                return so::storage::linear(*h.pool, large);
            } else {
                return so::storage::chain(*h.pool);
            }
        }();
        so::gro_engine<Merge, Storage> gro(cfg, std::move(storage));
        const auto out = run_random_bursts(h, gro, t, rng);
        std::vector<bytes> linear_out;
        for (const auto& f : out) {
            linear_out.push_back(linear(f));
            const auto p = sp::parse(linear_out.back());
            ASSERT_TRUE(p.ok());
            if (f.offload.is_gso()) {
                ASSERT_TRUE(sp::ipv4_header_checksum_ok(linear_out.back(), p));
                ASSERT_LE(p.l3_end - p.l3_offset, 65535U);
            }
            (f.buffer < large.arena().size() && std::is_same_v<Storage, so::storage::linear> &&
                     f.data >= large.base() && f.data < large.base() + large.arena().size()
                 ? large
                 : *h.pool)
                .free(f);
        }
        // Every payload byte once, in order per flow.
        const auto want = payloads(t.packets);
        const auto got = payloads(linear_out);
        ASSERT_EQ(got.size(), want.size());
        for (const auto& [key, segs] : want) {
            bytes a, b;
            for (const auto& s : segs) {
                a.insert(a.end(), s.second.begin(), s.second.end());
            }
            for (const auto& s : got.at(key)) {
                b.insert(b.end(), s.second.begin(), s.second.end());
            }
            ASSERT_EQ(a, b) << "round " << round;
        }
        EXPECT_EQ(h.pool->available(), h.pool->capacity());
        EXPECT_EQ(large.available(), large.capacity());
    }
}

TEST(GroStreams, ExactChainLightweight) {
    check_streams_intact<so::merge::exact, so::storage::chain>(false);
}
TEST(GroStreams, ExactChainHeld) {
    check_streams_intact<so::merge::exact, so::storage::chain>(true);
}
TEST(GroStreams, LocalDeliveryChainHeld) {
    check_streams_intact<so::merge::local_delivery, so::storage::chain>(true);
}
TEST(GroStreams, ExactLinearHeld) {
    check_streams_intact<so::merge::exact, so::storage::linear>(true);
}
TEST(GroStreams, LocalDeliveryLinearLightweight) {
    check_streams_intact<so::merge::local_delivery, so::storage::linear>(false);
}
