// The GRO conformance matrix, modelled on Linux's tools/testing/selftests/net/gro.c: every merge
// and flush rule as its own test, in exact mode unless said otherwise, checking what comes out
// (how many frames, how many segments each, in what order) and the headers of aggregates.
#include <vector>

#include <gtest/gtest.h>

#include "offload/gro_fixture.hpp"

namespace so = splitnet::offload;
namespace sp = splitnet::packet;
using namespace splitnet::test;

namespace {

using exact_gro = so::gro_engine<so::merge::exact, so::storage::chain>;
using local_gro = so::gro_engine<so::merge::local_delivery, so::storage::chain>;

struct GroRules : ::testing::Test {
    gro_harness h;
    so::gro_config cfg{};

    template <class Engine = exact_gro>
    std::vector<sp::frame> run(const std::vector<bytes>& pkts) {
        Engine e(cfg, so::storage::chain(*h.pool));
        auto out = h.run(e, pkts);
        stats = e.stats();
        return out;
    }
    /// Segment counts of the outputs, in order (1 for a frame that was not merged).
    static std::vector<int> shape(const std::vector<sp::frame>& out) {
        std::vector<int> s;
        for (const auto& f : out) {
            s.push_back(f.offload.is_gso() ? f.offload.gso_segs : 1);
        }
        return s;
    }
    void TearDown() override {
        EXPECT_EQ(h.pool->available(), h.pool->capacity() - in_use) << "frames leaked";
    }
    so::gro_stats stats{};
    std::uint32_t in_use = 0;
    std::vector<sp::frame> keep(std::vector<sp::frame> out) {
        h.free_all(out);
        return out;
    }
};

using V = std::vector<int>;

} // namespace

TEST_F(GroRules, SameSizeSegmentsCoalesceWithCorrectHeaders) {
    const auto pkts = stream_segments(bulk_flow(), 10);
    const auto out = keep(run(pkts));
    ASSERT_EQ(shape(out), V({10}));
    const sp::frame& a = out[0];
    EXPECT_EQ(a.offload.gso, sp::gso_type::tcpv4);
    EXPECT_EQ(a.offload.gso_size, 1448);
    EXPECT_EQ(a.offload.hdr_len, 14 + 20 + 32);
    EXPECT_EQ(a.pkt_len, 66U + 10 * 1448);
    EXPECT_EQ(a.nb_segs, 10);
    auto b = linear(a);
    const auto p = sp::parse(b);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p.payload_len(), 14480U);
    EXPECT_TRUE(sp::ipv4_header_checksum_ok(b, p));
    EXPECT_EQ(a.offload.csum, sp::csum_state::partial);
    sp::offload_info o = a.offload;
    ASSERT_TRUE(sp::complete_partial_checksum(b, o));
    EXPECT_TRUE(sp::l4_checksum_ok(b, p)) << "the partial checksum completes to a valid one";
    EXPECT_EQ(stats.aggregates, 1U);
    EXPECT_EQ(stats.merged, 9U);
    EXPECT_EQ(stats.flushes(so::flush_reason::end_of_burst), 1U);
}

TEST_F(GroRules, CompleteChecksumFromSegmentSums) {
    cfg.complete_checksum = true;
    for (bool validate : {true, false}) {
        cfg.validate_checksums = validate;
        const auto out = keep(run(stream_segments(bulk_flow(), 7)));
        ASSERT_EQ(shape(out), V({7}));
        const auto b = linear(out[0]);
        EXPECT_EQ(out[0].offload.csum, sp::csum_state::verified);
        EXPECT_TRUE(sp::l4_checksum_ok(b, sp::parse(b))) << "validate " << validate;
    }
}

TEST_F(GroRules, ShorterLastSegmentMergesAndEndsTheTrain) {
    auto c = bulk_flow();
    c.write_size = 1448 * 4 + 100; // 4 full segments and a short one with PSH
    auto pkts = stream_segments(c, 10);
    const auto out = keep(run(pkts));
    EXPECT_EQ(shape(out), V({5, 5}));
    EXPECT_EQ(stats.flushes(so::flush_reason::final_segment), 2U);
}

TEST_F(GroRules, SegmentLargerThanTheFirstStartsANewAggregate) {
    auto c = bulk_flow();
    c.mss = 1000;
    auto pkts = stream_segments(c, 3);
    c.isn += 3000;
    c.mss = 1448;
    c.ip.id = static_cast<std::uint16_t>(c.ip.id + 3);
    const auto more = stream_segments(c, 3);
    pkts.insert(pkts.end(), more.begin(), more.end());
    const auto out = keep(run(pkts));
    EXPECT_EQ(shape(out), V({3, 3}));
    EXPECT_EQ(stats.flushes(so::flush_reason::larger_segment), 1U);
}

TEST_F(GroRules, PureAckIsNeverHeldAndFlushesItsFlowFirst) {
    auto pkts = stream_segments(bulk_flow(), 3);
    sp::tcp_stream s(bulk_flow());
    bytes ack(200);
    ack.resize(s.segment(ack, {}, sp::tcp_flag::ack));
    const auto mid = pkts.begin() + 2;
    pkts.insert(mid, ack);
    const auto out = keep(run(pkts));
    EXPECT_EQ(shape(out), V({2, 1, 1}));
    EXPECT_EQ(out[1].pkt_len, ack.size()) << "the ACK keeps its place after the data before it";
}

TEST_F(GroRules, PshMidStreamMergesEndsTheTrainAndNothingIsReordered) {
    auto c = bulk_flow();
    c.write_size = 1448 * 3;
    const auto pkts = stream_segments(c, 8);
    const auto out = keep(run(pkts));
    EXPECT_EQ(shape(out), V({3, 3, 2}));
    std::uint32_t last = 0;
    for (const auto& f : out) {
        const auto b = linear(f);
        EXPECT_GT(tcp_seq(b), last);
        last = tcp_seq(b);
    }
    const auto b0 = linear(out[0]);
    const auto p0 = sp::parse(b0);
    EXPECT_TRUE(sp::tcp_header{b0.data() + p0.l4_offset}.flags() & sp::tcp_flag::psh);
}

TEST_F(GroRules, SynRstUrgNeverMerge) {
    for (std::uint8_t flag : {sp::tcp_flag::syn, sp::tcp_flag::rst, sp::tcp_flag::urg}) {
        auto pkts = stream_segments(bulk_flow(), 4);
        edit_packet(pkts[2],
                    [&](bytes& b, const sp::parsed_packet& p) { b[p.l4_offset + 13] |= flag; });
        const auto out = keep(run(pkts));
        EXPECT_EQ(shape(out), V({2, 1, 1})) << int(flag);
    }
}

TEST_F(GroRules, CwrStartsANewAggregateMarkedEcn) {
    auto pkts = stream_segments(bulk_flow(), 6);
    edit_packet(pkts[2], [](bytes& b, const sp::parsed_packet& p) {
        b[p.l4_offset + 13] |= sp::tcp_flag::cwr;
    });
    const auto out = keep(run(pkts));
    ASSERT_EQ(shape(out), V({2, 4}));
    EXPECT_FALSE(out[0].offload.gso_ecn);
    EXPECT_TRUE(out[1].offload.gso_ecn);
}

TEST_F(GroRules, EcnCeOnAMiddleSegmentIsNotMergedAway) {
    auto pkts = stream_segments(bulk_flow(), 5);
    edit_packet(pkts[2], [](bytes& b, const sp::parsed_packet& p) { b[p.l3_offset + 1] |= 0x3; });
    const auto out = keep(run(pkts));
    EXPECT_EQ(shape(out), V({2, 1, 2}));
    const auto mid = linear(out[1]);
    EXPECT_EQ(mid[14 + 1] & 3, 3) << "the CE mark survives";
    EXPECT_EQ(stats.flushes(so::flush_reason::ip_mismatch), 2U);
}

TEST_F(GroRules, TtlChangeEndsTheTrain) {
    auto pkts = stream_segments(bulk_flow(), 4);
    edit_packet(pkts[2], [](bytes& b, const sp::parsed_packet& p) { b[p.l3_offset + 8] = 17; });
    EXPECT_EQ(shape(keep(run(pkts))), V({2, 1, 1}));
}

TEST_F(GroRules, IpIdIncrementingMergesFixedWithDfMergesOtherwiseNot) {
    auto c = bulk_flow();
    auto out = keep(run(stream_segments(c, 4)));
    ASSERT_EQ(shape(out), V({4}));
    EXPECT_FALSE(out[0].offload.gso_fixed_id);
    c.ip_id_increment = false; // DF set by default
    out = keep(run(stream_segments(c, 4)));
    ASSERT_EQ(shape(out), V({4}));
    EXPECT_TRUE(out[0].offload.gso_fixed_id);
    c.ip.dont_fragment = false;
    EXPECT_EQ(shape(keep(run(stream_segments(c, 3)))), V({1, 1, 1})) << "fixed ID needs DF";
    auto pkts = stream_segments(bulk_flow(), 4);
    edit_packet(pkts[2], [](bytes& b, const sp::parsed_packet& p) { b[p.l3_offset + 5] ^= 0x40; });
    EXPECT_EQ(shape(keep(run(pkts))), V({2, 1, 1})) << "an ID out of sequence";
}

TEST_F(GroRules, WindowUpdateAndAdvancingAckMergeOnlyInLocalMode) {
    auto pkts = stream_segments(bulk_flow(), 4);
    edit_packet(pkts[2], [](bytes& b, const sp::parsed_packet& p) { b[p.l4_offset + 15] ^= 0x10; });
    edit_packet(pkts[3], [](bytes& b, const sp::parsed_packet& p) {
        b[p.l4_offset + 15] ^= 0x10;
        b[p.l4_offset + 11] = static_cast<std::uint8_t>(b[p.l4_offset + 11] + 100); // ACK + 100
    });
    EXPECT_EQ(shape(keep(run(pkts))), V({2, 1, 1}));
    const auto out = keep(run<local_gro>(pkts));
    ASSERT_EQ(shape(out), V({4}));
    const auto b = linear(out[0]);
    const auto p = sp::parse(b);
    const sp::tcp_header th{b.data() + p.l4_offset};
    const auto last = sp::parse(pkts[3]);
    EXPECT_EQ(th.window(), sp::tcp_header{pkts[3].data() + last.l4_offset}.window())
        << "latest window";
    EXPECT_EQ(th.ack_seq(), sp::tcp_header{pkts[3].data() + last.l4_offset}.ack_seq())
        << "latest ACK";
}

TEST_F(GroRules, TimestampsEndTheTrainInExactModeAdvanceInLocalMode) {
    auto c = bulk_flow();
    c.segments_per_tick = 2; // TSval changes every second segment
    const auto pkts = stream_segments(c, 6);
    EXPECT_EQ(shape(keep(run(pkts))), V({2, 2, 2}));
    EXPECT_EQ(stats.flushes(so::flush_reason::options_mismatch), 2U);
    const auto out = keep(run<local_gro>(pkts));
    ASSERT_EQ(shape(out), V({6}));
    const auto b = linear(out[0]);
    const auto p = sp::parse(b);
    const auto o =
        sp::parse_tcp_options(std::span(b).subspan(p.l4_offset + 20U, p.l4_header_len() - 20U));
    EXPECT_EQ(o.ts_val, c.ts_val + 2) << "the latest TSval";
    // A TSval that goes backwards is never merged, even locally.
    auto back = pkts;
    std::swap(back[4], back[5]);
    edit_packet(back[4], [&](bytes& bb, const sp::parsed_packet& pp) {
        std::memcpy(bb.data() + pp.l4_offset + 4, pkts[4].data() + pp.l4_offset + 4,
                    4); // seq of #4
        bb[pp.l4_offset + 20 + 7] = static_cast<std::uint8_t>(bb[pp.l4_offset + 20 + 7] - 5);
    });
    EXPECT_NE(shape(keep(run<local_gro>(std::vector<bytes>(back.begin(), back.begin() + 5)))),
              V({5}));
}

TEST_F(GroRules, OutOfOrderArrivalIsNeverReordered) {
    auto pkts = stream_segments(bulk_flow(), 6);
    std::swap(pkts[2], pkts[3]); // 0 1 3 2 4 5
    const auto out = keep(run(pkts));
    std::vector<std::uint32_t> seqs;
    for (const auto& f : out) {
        seqs.push_back(tcp_seq(linear(f)));
    }
    // Out of sequence (and its IP ID out of sequence too, which Linux checks first): every
    // segment goes out in the order it arrived, and 4, 5 merge again afterwards.
    EXPECT_EQ(seqs, std::vector<std::uint32_t>(
                        {tcp_seq(pkts[0]), tcp_seq(pkts[2]), tcp_seq(pkts[3]), tcp_seq(pkts[4])}));
    EXPECT_EQ(shape(out), V({2, 1, 1, 2}));
    EXPECT_EQ(stats.flushes(so::flush_reason::ip_mismatch), 3U);
    // With fixed IP IDs the sequence check is what ends the trains.
    auto c = bulk_flow();
    c.ip_id_increment = false;
    pkts = stream_segments(c, 6);
    std::swap(pkts[2], pkts[3]);
    EXPECT_EQ(shape(keep(run(pkts))), V({2, 1, 1, 2}));
    EXPECT_EQ(stats.flushes(so::flush_reason::seq_gap), 3U);
}

TEST_F(GroRules, DuplicateSegmentIsKeptAndOrdered) {
    auto pkts = stream_segments(bulk_flow(), 4);
    pkts.insert(pkts.begin() + 2, pkts[1]); // retransmission of #1
    const auto out = keep(run(pkts));
    std::uint64_t payload = 0;
    for (const auto& f : out) {
        payload += sp::parse(linear(f)).payload_len();
    }
    EXPECT_EQ(payload, 5U * 1448) << "every byte given comes out, the duplicate too";
    EXPECT_EQ(shape(out), V({2, 3}));
}

TEST_F(GroRules, Ipv6WithAndWithoutExtensionHeaders) {
    EXPECT_EQ(shape(keep(run(stream_segments(bulk_flow(0, true), 5)))), V({5}));
    auto c = bulk_flow(0, true);
    std::array<std::uint8_t, 8> dst_opts{sp::ip_proto::tcp, 0, 1, 4, 0, 0, 0, 0};
    c.ip.ipv6_ext = dst_opts;
    c.ip.ipv6_ext_type = sp::ip_proto::ipv6_dest;
    auto pkts = stream_segments(c, 4);
    EXPECT_EQ(shape(keep(run(pkts))), V({4})) << "identical extension headers merge";
    edit_packet(pkts[2], [](bytes& b, const sp::parsed_packet& p) { b[p.l3_offset + 40 + 4] = 7; });
    EXPECT_EQ(shape(keep(run(pkts))), V({2, 1, 1})) << "differing ones do not";
    auto tc = stream_segments(bulk_flow(0, true), 3);
    edit_packet(tc[1], [](bytes& b, const sp::parsed_packet& p) { b[p.l3_offset + 1] |= 0x30; });
    EXPECT_EQ(shape(keep(run(tc))), V({1, 1, 1})) << "traffic class (ECN) differs";
}

TEST_F(GroRules, VlanTaggedFlowsMergeWithinTheirVlan) {
    auto c = bulk_flow();
    c.l2.vlan_count = 1;
    c.l2.vlan_tci = {100, 0};
    auto a = stream_segments(c, 4);
    c.l2.vlan_tci = {200, 0};
    auto b = stream_segments(c, 4);
    std::vector<bytes> mixed;
    for (int i = 0; i < 4; ++i) {
        mixed.push_back(a[static_cast<std::size_t>(i)]);
        mixed.push_back(b[static_cast<std::size_t>(i)]);
    }
    EXPECT_EQ(shape(keep(run(mixed))), V({4, 4}));
}

TEST_F(GroRules, InterleavedFlowsEachAggregateInOrder) {
    std::vector<std::vector<bytes>> flows;
    for (std::uint32_t f = 0; f < 5; ++f) {
        flows.push_back(stream_segments(bulk_flow(f), 7));
    }
    std::vector<bytes> mixed;
    for (int i = 0; i < 7; ++i) {
        for (auto& fl : flows) {
            mixed.push_back(fl[static_cast<std::size_t>(i)]);
        }
    }
    const auto out = keep(run(mixed));
    EXPECT_EQ(shape(out), V({7, 7, 7, 7, 7}));
}

TEST_F(GroRules, EverythingElsePassesThroughUntouchedAndInOrder) {
    std::vector<bytes> pkts;
    bytes arp(60, 0);
    arp[12] = 0x08;
    arp[13] = 0x06;
    pkts.push_back(arp);
    bytes udp(200);
    udp.resize(sp::build_udp(udp, {}, {}, {}, bytes(100, 1)));
    pkts.push_back(udp);
    std::array<std::uint8_t, 4> opt{1, 1, 1, 0};
    sp::ip_spec with_opts;
    with_opts.options = opt;
    bytes tcp_opts(300);
    tcp_opts.resize(sp::build_tcp(tcp_opts, {}, with_opts, {}, bytes(100, 2)));
    pkts.push_back(tcp_opts);
    sp::ip_spec frag;
    frag.dont_fragment = false;
    frag.frag_bits = sp::ipv4_frag::more_fragments;
    bytes tcp_frag(300);
    tcp_frag.resize(sp::build_tcp(tcp_frag, {}, frag, {}, bytes(100, 3)));
    pkts.push_back(tcp_frag);
    bytes runt(10, 0xee);
    pkts.push_back(runt);
    const auto out = keep(run(pkts));
    ASSERT_EQ(out.size(), pkts.size());
    for (std::size_t i = 0; i < pkts.size(); ++i) {
        EXPECT_EQ(linear(out[i]), pkts[i]) << i;
    }
    EXPECT_EQ(stats.pass_not_ip, 1U);
    EXPECT_EQ(stats.pass_protocol, 1U);
    EXPECT_EQ(stats.pass_ip_options, 1U);
    EXPECT_EQ(stats.pass_fragment, 1U);
    EXPECT_EQ(stats.pass_malformed, 1U);
}

TEST_F(GroRules, BadChecksumPassesThroughUnlessTheNicVerified) {
    auto pkts = stream_segments(bulk_flow(), 4);
    pkts[2][100] ^= 0xff; // corrupt payload of #2
    auto out = keep(run(pkts));
    EXPECT_EQ(shape(out), V({2, 1, 1}));
    EXPECT_EQ(linear(out[1]), pkts[2]) << "the corrupted segment goes out as it came";
    EXPECT_EQ(stats.pass_bad_checksum, 1U);
    cfg.validate_checksums = false;
    EXPECT_EQ(shape(keep(run(pkts))), V({4})) << "told to trust: merged (DPDK's behaviour)";
}

TEST_F(GroRules, SizeLimitGives45SegmentsOf1448In64KiB) {
    auto c = bulk_flow();
    c.segments_per_tick = 1000;    // one TSval for the whole run
    cfg.hold_across_bursts = true; // trains longer than a burst
    const auto out = keep(run(stream_segments(c, 100)));
    ASSERT_GE(out.size(), 3U);
    EXPECT_EQ(out[0].offload.gso_segs, 45) << "(65535 - 20 - 32) / 1448";
    EXPECT_LE(out[0].pkt_len - 14, 65535U);
    EXPECT_EQ(stats.flushes(so::flush_reason::size_limit), 2U);
    cfg.max_segments = 8;
    EXPECT_EQ(shape(keep(run(stream_segments(c, 20)))), V({8, 8, 4}));
}

TEST_F(GroRules, FullFlowTableEvictsTheOldestAggregate) {
    cfg.max_flows = 4;
    std::vector<bytes> pkts;
    for (std::uint32_t f = 0; f < 6; ++f) {
        auto s = stream_segments(bulk_flow(f), 2);
        pkts.insert(pkts.end(), s.begin(), s.end());
    }
    const auto out = keep(run(pkts));
    EXPECT_EQ(shape(out), V({2, 2, 2, 2, 2, 2}));
    EXPECT_EQ(stats.flushes(so::flush_reason::evicted), 2U) << "flows 4 and 5 evict 0 and 1";
    std::vector<bytes> interleaved;
    for (int i = 0; i < 2; ++i) {
        for (std::uint32_t f = 0; f < 6; ++f) {
            interleaved.push_back(stream_segments(bulk_flow(f), 2)[static_cast<std::size_t>(i)]);
        }
    }
    // Six flows through four slots, interleaved: every new segment evicts the oldest (thrashing,
    // counted), and nothing is lost or reordered.
    const auto out2 = keep(run(interleaved));
    EXPECT_EQ(stats.flushes(so::flush_reason::evicted), 8U);
    EXPECT_EQ(shape(out2), V(12, 1));
}

TEST_F(GroRules, HeldAcrossBurstsUntilTheTimeout) {
    cfg.hold_across_bursts = true;
    cfg.flush_timeout_ns = 1000;
    exact_gro e(cfg, so::storage::chain(*h.pool));
    const auto pkts = stream_segments(bulk_flow(), 6);
    std::vector<sp::frame> in, out(64);
    for (const auto& p : pkts) {
        in.push_back(h.frame_of(p));
    }
    auto r = e.receive_burst(std::span(in).first(3), out, 100);
    EXPECT_EQ(r.produced, 0U) << "held";
    EXPECT_EQ(e.next_deadline(), 1100U);
    r = e.receive_burst(std::span(in).subspan(3), out, 500);
    EXPECT_EQ(r.produced, 0U);
    EXPECT_EQ(e.flush_expired(1099, out), 0U);
    ASSERT_EQ(e.flush_expired(1100, out), 1U);
    EXPECT_EQ(out[0].offload.gso_segs, 6);
    EXPECT_EQ(e.stats().flushes(so::flush_reason::timeout), 1U);
    h.free_all({out[0]});
}

TEST_F(GroRules, UdpIsOptInSameSizeDatagramsShortLast) {
    sp::udp_stream u({});
    std::vector<bytes> pkts;
    for (int i = 0; i < 5; ++i) {
        bytes b(2048);
        b.resize(u.next(b, i == 4 ? 300 : 0));
        pkts.push_back(b);
    }
    EXPECT_EQ(shape(keep(run(pkts))), V({1, 1, 1, 1, 1})) << "off by default";
    cfg.udp = true;
    const auto out = keep(run(pkts));
    ASSERT_EQ(shape(out), V({5}));
    EXPECT_EQ(out[0].offload.gso, sp::gso_type::udp_l4);
    EXPECT_EQ(out[0].offload.gso_size, 1400);
    const auto b = linear(out[0]);
    const auto p = sp::parse(b);
    EXPECT_EQ(sp::udp_header{b.data() + p.l4_offset}.length(), 8U + 4 * 1400 + 300);
}

TEST_F(GroRules, OutputCapacityLimitsWhatIsConsumed) {
    exact_gro e(cfg, so::storage::chain(*h.pool));
    const auto pkts = stream_segments(bulk_flow(), 4);
    std::vector<sp::frame> in;
    for (const auto& p : pkts) {
        in.push_back(h.frame_of(p));
    }
    std::vector<sp::frame> out(2);
    const auto r = e.receive_burst(in, out, 0);
    EXPECT_EQ(r.consumed, 2U);
    EXPECT_EQ(r.produced, 1U);
    h.free_all({out[0]});
    h.free_all(std::vector<sp::frame>(in.begin() + 2, in.end()));
}

TEST_F(GroRules, LroStorageGivesTheSameBytesLinear) {
    sp::buffer_pool large({.frame_count = 16, .frame_size = 131072});
    so::gro_engine<so::merge::exact, so::storage::linear> lro(cfg,
                                                              so::storage::linear(*h.pool, large));
    const auto pkts = stream_segments(bulk_flow(), 12);
    const auto out = h.run(lro, pkts);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].nb_segs, 1) << "one linear buffer";
    EXPECT_EQ(out[0].data_len, out[0].pkt_len);
    const auto gro_out = run(pkts);
    EXPECT_EQ(linear(out[0]), linear(gro_out[0]));
    h.free_all(gro_out);
    large.free(out[0]);
    EXPECT_EQ(large.available(), 16U);
}
