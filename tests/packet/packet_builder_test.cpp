// The traffic generator behaves like a real sender: sequence numbers advance by the payload,
// PSH ends each write, TSval ticks once per run of segments, IP IDs increment (or stay fixed),
// every packet parses with valid checksums, and the payload bytes are the stream's bytes.
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/packet/checksum_offload.hpp>
#include <splitnet/packet/packet_builder.hpp>
#include <splitnet/packet/parser.hpp>

namespace sp = splitnet::packet;

TEST(TcpStream, SegmentsLikeARealSender) {
    sp::tcp_stream_config c;
    c.write_size = 10000; // 6 full segments + one of 1312
    c.segments_per_tick = 4;
    c.ack_advance_per_write = 100;
    sp::tcp_stream s(c);
    std::vector<std::uint8_t> buf(2048);
    std::uint32_t expect_seq = c.isn;
    std::uint64_t stream_pos = 0;
    for (int i = 0; i < 21; ++i) {
        const std::size_t n = s.next(buf);
        ASSERT_NE(n, 0U);
        const auto bytes = std::span(buf).first(n);
        const auto p = sp::parse(bytes);
        ASSERT_TRUE(p.ok());
        ASSERT_TRUE(p.is_tcp());
        EXPECT_TRUE(sp::ipv4_header_checksum_ok(bytes, p));
        EXPECT_TRUE(sp::l4_checksum_ok(bytes, p));
        const sp::tcp_header th{bytes.data() + p.l4_offset};
        const sp::ipv4_header ih{bytes.data() + p.l3_offset};
        EXPECT_EQ(th.seq(), expect_seq);
        const int in_write = i % 7;
        EXPECT_EQ(p.payload_len(), in_write == 6 ? 1312U : 1448U);
        EXPECT_EQ((th.flags() & sp::tcp_flag::psh) != 0, in_write == 6) << "PSH ends each write";
        EXPECT_EQ(th.ack_seq(), c.ack + 100U * static_cast<std::uint32_t>(i / 7));
        EXPECT_EQ(ih.id(), static_cast<std::uint16_t>(c.ip.id + i));
        EXPECT_TRUE(ih.dont_fragment());
        const auto o =
            sp::parse_tcp_options(bytes.subspan(p.l4_offset + 20, p.l4_header_len() - 20U));
        ASSERT_TRUE(o.has_timestamp);
        EXPECT_EQ(o.ts_val, c.ts_val + static_cast<std::uint32_t>(i / 4));
        for (std::uint32_t k = 0; k < p.payload_len(); ++k) {
            ASSERT_EQ(bytes[p.payload_offset + k], sp::stream_byte(c.payload_seed, stream_pos + k));
        }
        expect_seq += p.payload_len();
        stream_pos += p.payload_len();
    }
    EXPECT_EQ(s.bytes_sent(), stream_pos);
}

TEST(TcpStream, Ipv6VlanFixedIdNoTimestamps) {
    auto c = sp::tcp_flow(3, true);
    c.l2.vlan_count = 1;
    c.l2.vlan_tci = {42, 0};
    c.timestamps = false;
    c.ip_id_increment = false;
    sp::tcp_stream s(c);
    std::vector<std::uint8_t> buf(2048);
    for (int i = 0; i < 3; ++i) {
        const std::size_t n = s.next(buf);
        const auto p = sp::parse(std::span(buf).first(n));
        ASSERT_TRUE(p.ok());
        EXPECT_EQ(p.l3, sp::l3_type::ipv6);
        EXPECT_EQ(p.key.vlan, 42);
        EXPECT_EQ(p.l4_header_len(), 20);
        EXPECT_TRUE(sp::l4_checksum_ok(std::span(buf).first(n), p));
    }
}

TEST(TcpStream, DistinctFlowsHaveDistinctKeys) {
    std::vector<std::uint8_t> buf(2048);
    sp::flow_key prev{};
    for (std::uint32_t i = 0; i < 100; ++i) {
        sp::tcp_stream s(sp::tcp_flow(i));
        const std::size_t n = s.next(buf);
        const auto p = sp::parse(std::span(buf).first(n));
        ASSERT_TRUE(p.ok());
        EXPECT_FALSE(p.key == prev);
        prev = p.key;
    }
}

TEST(UdpStream, DatagramsAndShortLast) {
    sp::udp_stream s({});
    std::vector<std::uint8_t> buf(2048);
    std::size_t n = s.next(buf);
    auto p = sp::parse(std::span(buf).first(n));
    ASSERT_TRUE(p.ok());
    EXPECT_TRUE(p.is_udp());
    EXPECT_EQ(p.payload_len(), 1400U);
    EXPECT_TRUE(sp::l4_checksum_ok(std::span(buf).first(n), p));
    n = s.next(buf, 100);
    p = sp::parse(std::span(buf).first(n));
    EXPECT_EQ(p.payload_len(), 100U);
    EXPECT_EQ(buf[p.payload_offset], sp::stream_byte(2, 1400));
}

TEST(Builder, RefusesWhatDoesNotFit) {
    std::vector<std::uint8_t> small(40);
    EXPECT_EQ(sp::build_tcp(small, {}, {}, {}, {}), 0U);
    std::vector<std::uint8_t> buf(200);
    const std::uint8_t odd_opts[3] = {1, 1, 1};
    sp::tcp_spec t;
    t.options = odd_opts;
    EXPECT_EQ(sp::build_tcp(buf, {}, {}, t, {}), 0U);
}

TEST(ChecksumOffload, PartialThenCompleteEqualsFull) {
    sp::tcp_stream s({});
    std::vector<std::uint8_t> buf(2048);
    const std::size_t n = s.next(buf);
    auto bytes = std::span(buf).first(n);
    const auto p = sp::parse(bytes);
    const std::vector<std::uint8_t> full(bytes.begin(), bytes.end());
    sp::offload_info o;
    sp::set_partial_checksum(bytes, p, o);
    EXPECT_EQ(o.csum, sp::csum_state::partial);
    EXPECT_EQ(o.csum_start, p.l4_offset);
    EXPECT_EQ(o.csum_offset, 16);
    EXPECT_FALSE(sp::l4_checksum_ok(bytes, p));
    ASSERT_TRUE(sp::complete_partial_checksum(bytes, o));
    EXPECT_TRUE(sp::l4_checksum_ok(bytes, p));
    EXPECT_EQ(std::vector<std::uint8_t>(bytes.begin(), bytes.end()), full);
    sp::offload_info bad;
    bad.csum = sp::csum_state::partial;
    bad.csum_start = static_cast<std::uint16_t>(n - 1); // the field would end past the packet
    bad.csum_offset = 0;
    EXPECT_FALSE(sp::complete_partial_checksum(bytes, bad));
    bad.csum_start = 10;
    bad.csum_offset = static_cast<std::uint16_t>(n);
    EXPECT_FALSE(sp::complete_partial_checksum(bytes, bad));
}
