// Software GSO on its own: a TSO frame as a guest or a TAP device hands it over (one linear
// buffer with GSO metadata), UDP segmentation, partial checksums, flag placement, and failures
// that leave the input untouched.
#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "offload/gro_fixture.hpp"

namespace so = splitnet::offload;
namespace sp = splitnet::packet;
using namespace splitnet::test;

namespace {

/// A TSO super-frame: one TCP packet with `payload` bytes and PSH|FIN|CWR, in a large buffer.
sp::frame tso_frame(sp::buffer_pool& large, std::size_t payload, std::uint16_t mss,
                    bool v6 = false) {
    auto c = bulk_flow(0, v6);
    const auto ts = sp::timestamp_options(5, 6);
    sp::tcp_spec t;
    t.seq = 1000;
    t.ack = 5;
    t.flags = sp::tcp_flag::ack | sp::tcp_flag::psh | sp::tcp_flag::fin | sp::tcp_flag::cwr;
    t.options = ts;
    c.ip.id = 77;
    bytes data(payload);
    sp::fill_stream_bytes(data, 9, 0);
    sp::frame f;
    EXPECT_EQ(large.alloc_burst({&f, 1}), 1U);
    f.data_len = f.pkt_len =
        static_cast<std::uint32_t>(sp::build_tcp({f.data, 131072 - 256}, c.l2, c.ip, t, data));
    f.offload.gso = v6 ? sp::gso_type::tcpv6 : sp::gso_type::tcpv4;
    f.offload.gso_size = mss;
    f.offload.csum = sp::csum_state::partial;
    return f;
}

} // namespace

TEST(Gso, SplitsATsoFrameWithCorrectHeaders) {
    sp::buffer_pool pool({.frame_count = 256});
    sp::buffer_pool large({.frame_count = 2, .frame_size = 131072});
    for (bool v6 : {false, true}) {
        const sp::frame big = tso_frame(large, 10000, 1448, v6);
        so::gso_segmenter gso(pool);
        std::vector<sp::frame> out(16);
        const auto r = gso.segment(big, out);
        ASSERT_EQ(r.segments, 7U); // 6 x 1448 + 1312
        EXPECT_FALSE(r.consumed_input) << "copied: the caller still owns the TSO frame";
        std::uint32_t seq = 1000;
        for (std::size_t i = 0; i < r.segments; ++i) {
            const auto b = linear(out[i]);
            const auto p = sp::parse(b);
            ASSERT_TRUE(p.ok());
            EXPECT_EQ(p.payload_len(), i + 1 < r.segments ? 1448U : 1312U);
            EXPECT_TRUE(sp::l4_checksum_ok(b, p));
            EXPECT_TRUE(sp::ipv4_header_checksum_ok(b, p));
            const sp::tcp_header th{b.data() + p.l4_offset};
            EXPECT_EQ(th.seq(), seq);
            seq += p.payload_len();
            const bool last = i + 1 == r.segments;
            EXPECT_EQ((th.flags() & sp::tcp_flag::psh) != 0, last);
            EXPECT_EQ((th.flags() & sp::tcp_flag::fin) != 0, last);
            EXPECT_EQ((th.flags() & sp::tcp_flag::cwr) != 0, i == 0);
            if (!v6) {
                EXPECT_EQ(sp::ipv4_header{b.data() + p.l3_offset}.id(), 77 + i);
            }
            for (std::uint32_t k = 0; k < p.payload_len(); k += 97) {
                ASSERT_EQ(b[p.payload_offset + k], sp::stream_byte(9, i * 1448 + k));
            }
            EXPECT_EQ(out[i].offload.csum, sp::csum_state::verified);
            pool.free(out[i]);
        }
        large.free(big);
    }
    EXPECT_EQ(pool.available(), pool.capacity());
}

TEST(Gso, FixedIdAndPartialChecksums) {
    sp::buffer_pool pool({.frame_count = 64});
    sp::buffer_pool large({.frame_count = 1, .frame_size = 131072});
    sp::frame big = tso_frame(large, 3000, 1000);
    big.offload.gso_fixed_id = true;
    so::gso_segmenter gso(pool, false);
    std::vector<sp::frame> out(4);
    const auto r = gso.segment(big, out);
    ASSERT_EQ(r.segments, 3U);
    for (std::size_t i = 0; i < 3; ++i) {
        auto b = linear(out[i]);
        const auto p = sp::parse(b);
        EXPECT_EQ(sp::ipv4_header{b.data() + p.l3_offset}.id(), 77) << "fixed";
        EXPECT_EQ(out[i].offload.csum, sp::csum_state::partial);
        sp::offload_info o = out[i].offload;
        ASSERT_TRUE(sp::complete_partial_checksum(b, o));
        EXPECT_TRUE(sp::l4_checksum_ok(b, p));
        pool.free(out[i]);
    }
    large.free(big);
}

TEST(Gso, UdpSegmentation) {
    sp::buffer_pool pool({.frame_count = 64});
    sp::buffer_pool large({.frame_count = 1, .frame_size = 131072});
    sp::frame big;
    ASSERT_EQ(large.alloc_burst({&big, 1}), 1U);
    bytes data(5000, 0x42);
    big.data_len = big.pkt_len =
        static_cast<std::uint32_t>(sp::build_udp({big.data, 60000}, {}, {}, {}, data));
    big.offload.gso = sp::gso_type::udp_l4;
    big.offload.gso_size = 1400;
    so::gso_segmenter gso(pool);
    std::vector<sp::frame> out(8);
    const auto r = gso.segment(big, out);
    ASSERT_EQ(r.segments, 4U);
    for (std::size_t i = 0; i < 4; ++i) {
        const auto b = linear(out[i]);
        const auto p = sp::parse(b);
        ASSERT_TRUE(p.is_udp());
        EXPECT_EQ(sp::udp_header{b.data() + p.l4_offset}.length(), 8U + (i < 3 ? 1400 : 800));
        EXPECT_TRUE(sp::l4_checksum_ok(b, p));
        pool.free(out[i]);
    }
    large.free(big);
}

TEST(Gso, FailuresLeaveTheInputUntouched) {
    sp::buffer_pool pool({.frame_count = 3});
    sp::buffer_pool large({.frame_count = 1, .frame_size = 131072});
    const sp::frame big = tso_frame(large, 10000, 1448);
    const bytes before = linear(big);
    so::gso_segmenter gso(pool);
    std::vector<sp::frame> out(16);
    EXPECT_EQ(gso.segment(big, out).segments, 0U) << "7 segments, 3 buffers";
    EXPECT_EQ(gso.stats().no_buffers, 1U);
    EXPECT_EQ(pool.available(), 3U) << "partial allocations returned";
    EXPECT_EQ(gso.segment(big, std::span(out).first(2)).segments, 0U);
    EXPECT_EQ(gso.stats().no_room, 1U);
    sp::frame lying = big;
    lying.offload.gso = sp::gso_type::tcpv6; // says IPv6, is IPv4
    EXPECT_EQ(gso.segment(lying, out).segments, 0U);
    lying = big;
    lying.offload.gso_size = 0;
    EXPECT_EQ(gso.segment(lying, out).segments, 0U);
    EXPECT_EQ(gso.stats().malformed, 2U);
    EXPECT_EQ(linear(big), before);
    large.free(big);
}

TEST(Gso, NonGsoFramesPassAsOneSegment) {
    sp::buffer_pool pool({.frame_count = 4});
    gro_harness h;
    const auto pkts = stream_segments(bulk_flow(), 1);
    const sp::frame f = h.frame_of(pkts[0]);
    so::gso_segmenter gso(pool);
    sp::frame out[1];
    const auto r = gso.segment(f, out);
    EXPECT_EQ(r.segments, 1U);
    EXPECT_TRUE(r.consumed_input);
    EXPECT_EQ(out[0].data, f.data);
    h.pool->free(f);
}

// The driver domain hands software GSO a guest's TSO frame as a chain of buffers whose lengths
// have nothing to do with the MSS (odd ones included): copied segments must carry the right
// payload and complete checksums (summed while copying) whatever the piece boundaries.
TEST(Gso, CopiedSegmentsOfAChainOfOddPiecesCarryCorrectChecksums) {
    sp::buffer_pool pool({.frame_count = 1024});
    sp::buffer_pool large({.frame_count = 1, .frame_size = 131072});
    std::mt19937 rng(5);
    for (int round = 0; round < 200; ++round) {
        const bool v6 = round % 2 == 1;
        const auto mss = static_cast<std::uint16_t>(536 + rng() % 1000);
        const sp::frame big = tso_frame(large, 1 + rng() % 30000, mss, v6);
        const bytes whole = linear(big);
        const auto hdr = sp::parse(whole).payload_offset;
        // Re-chain the frame over pieces of random lengths (the first holds the headers).
        std::vector<sp::frame> pieces;
        for (std::size_t off = 0; off < whole.size();) {
            const std::size_t room = pool.frame_size() - pool.default_headroom();
            std::size_t k = off == 0 ? hdr + rng() % (room - hdr) : 1 + rng() % room;
            k = std::min(k, whole.size() - off);
            sp::frame b;
            ASSERT_EQ(pool.alloc_burst({&b, 1}), 1U);
            std::memcpy(b.data, whole.data() + off, k);
            b.data_len = static_cast<std::uint32_t>(k);
            pieces.push_back(b);
            off += k;
        }
        sp::frame head = pieces[0];
        head.pkt_len = static_cast<std::uint32_t>(whole.size());
        head.nb_segs = static_cast<std::uint16_t>(pieces.size());
        head.offload = big.offload;
        sp::frame* tail = &head;
        for (std::size_t i = 1; i < pieces.size(); ++i) {
            sp::frame& s = pool.chain_slot(pieces[i].buffer);
            s = pieces[i];
            tail->next = &s;
            tail = &s;
        }
        tail->next = nullptr;

        so::gso_segmenter gso(pool);
        std::vector<sp::frame> out(64);
        const auto r = gso.segment(head, out);
        const std::size_t payload = whole.size() - hdr;
        ASSERT_EQ(r.segments, (payload + mss - 1) / mss) << "round " << round;
        std::size_t at = 0;
        for (std::size_t i = 0; i < r.segments; ++i) {
            const auto b = linear(out[i]);
            const auto p = sp::parse(b);
            ASSERT_TRUE(p.ok());
            EXPECT_TRUE(sp::l4_checksum_ok(b, p)) << "round " << round << " segment " << i;
            EXPECT_TRUE(std::equal(b.begin() + p.payload_offset, b.end(),
                                   whole.begin() + static_cast<long>(hdr + at)))
                << "round " << round << " segment " << i;
            at += p.payload_len();
            pool.free(out[i]);
        }
        EXPECT_EQ(at, payload);
        pool.free(head);
        large.free(big);
    }
    EXPECT_EQ(pool.available(), pool.capacity());
}
