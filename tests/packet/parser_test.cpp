// Parser: every layer's offsets and fields on packets from the builder, every documented error
// on malformed packets, and every truncation of valid packets (in exact-size heap buffers, so
// ASan reports any read past the end).
#include <array>
#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/packet/checksum_offload.hpp>
#include <splitnet/packet/packet_builder.hpp>
#include <splitnet/packet/parser.hpp>

namespace sp = splitnet::packet;

namespace {

std::vector<std::uint8_t> tcp_packet(const sp::l2_spec& l2, const sp::ip_spec& ip,
                                     const sp::tcp_spec& t, std::size_t payload_len) {
    std::vector<std::uint8_t> payload(payload_len, 0xab);
    std::vector<std::uint8_t> buf(2048 + payload_len);
    const std::size_t n = sp::build_tcp(buf, l2, ip, t, payload);
    EXPECT_NE(n, 0U);
    buf.resize(n);
    return buf;
}

std::vector<std::uint8_t> udp_packet(const sp::l2_spec& l2, const sp::ip_spec& ip,
                                     std::size_t payload_len) {
    std::vector<std::uint8_t> payload(payload_len, 0x5a);
    std::vector<std::uint8_t> buf(2048 + payload_len);
    const std::size_t n = sp::build_udp(buf, l2, ip, {1234, 53}, payload);
    EXPECT_NE(n, 0U);
    buf.resize(n);
    return buf;
}

sp::ip_spec v6() {
    sp::ip_spec ip;
    ip.ipv6 = true;
    ip.src = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    ip.dst = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    return ip;
}

} // namespace

TEST(Parser, TcpOverIpv4) {
    const auto ts = sp::timestamp_options(1, 2);
    sp::tcp_spec t;
    t.options = ts;
    t.seq = 123456;
    const auto pkt = tcp_packet({}, {}, t, 1448);
    const auto p = sp::parse(pkt);
    ASSERT_TRUE(p.ok()) << sp::to_string(p.error);
    EXPECT_EQ(p.l3, sp::l3_type::ipv4);
    EXPECT_EQ(p.l3_offset, 14);
    EXPECT_EQ(p.l4_offset, 34);
    EXPECT_EQ(p.payload_offset, 34 + 32);
    EXPECT_EQ(p.l3_end, pkt.size());
    EXPECT_EQ(p.payload_len(), 1448U);
    EXPECT_TRUE(p.is_tcp());
    EXPECT_EQ(p.key.ip_version, 4);
    EXPECT_EQ(p.key.protocol, sp::ip_proto::tcp);
    EXPECT_EQ(p.key.src_port, 40000);
    EXPECT_EQ(p.key.dst_port, 5201);
    EXPECT_EQ(p.key.src_addr[0], 10);
    EXPECT_EQ(p.key.src_addr[3], 1);
    EXPECT_EQ(p.key.src_addr[4], 0) << "IPv4 key pads with zeros";
    EXPECT_EQ(sp::tcp_header{pkt.data() + p.l4_offset}.seq(), 123456U);
    EXPECT_TRUE(sp::ipv4_header_checksum_ok(pkt, p));
    EXPECT_TRUE(sp::l4_checksum_ok(pkt, p));
    const auto o =
        sp::parse_tcp_options(std::span(pkt).subspan(p.l4_offset + 20, p.l4_header_len() - 20U));
    EXPECT_TRUE(o.valid);
    EXPECT_TRUE(o.has_timestamp);
    EXPECT_EQ(o.ts_val, 1U);
    EXPECT_EQ(o.ts_ecr, 2U);
    EXPECT_EQ(o.timestamp_offset, 2);
}

TEST(Parser, TcpOverIpv6) {
    const auto pkt = tcp_packet({}, v6(), {}, 100);
    const auto p = sp::parse(pkt);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p.l3, sp::l3_type::ipv6);
    EXPECT_EQ(p.l4_offset, 14 + 40);
    EXPECT_EQ(p.payload_len(), 100U);
    EXPECT_EQ(p.key.ip_version, 6);
    EXPECT_EQ(p.key.src_addr[15], 1);
    EXPECT_TRUE(sp::l4_checksum_ok(pkt, p));
}

TEST(Parser, SingleAndDoubleVlan) {
    sp::l2_spec l2;
    l2.vlan_count = 1;
    l2.vlan_tci = {0x2064, 0}; // PCP 1, VID 100
    auto pkt = tcp_packet(l2, {}, {}, 10);
    auto p = sp::parse(pkt);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p.vlan_count, 1);
    EXPECT_EQ(p.key.vlan, 100);
    EXPECT_EQ(p.l3_offset, 18);

    l2.vlan_count = 2;
    l2.outer_tpid = sp::ether_type::qinq;
    l2.vlan_tci = {200, 300};
    pkt = tcp_packet(l2, v6(), {}, 10);
    p = sp::parse(pkt);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p.vlan_count, 2);
    EXPECT_EQ(p.vlan_tci[0], 200);
    EXPECT_EQ(p.key.vlan, 300) << "the key uses the innermost VID";
    EXPECT_EQ(p.l3_offset, 22);
}

TEST(Parser, ThreeVlanTagsRejected) {
    sp::l2_spec l2;
    l2.vlan_count = 2;
    auto pkt = tcp_packet(l2, {}, {}, 10);
    // Turn the encapsulated EtherType into a third TPID.
    pkt[20] = 0x81;
    pkt[21] = 0x00;
    EXPECT_EQ(sp::parse(pkt).error, sp::parse_error::too_many_vlan_tags);
}

TEST(Parser, Ipv4OptionsAndPadding) {
    const std::array<std::uint8_t, 8> opts = {0x94, 0x04, 0, 0,
                                              1,    1,    1, 0}; // router alert, NOPs, EOL
    sp::ip_spec ip;
    ip.options = opts;
    auto pkt = udp_packet({}, ip, 4);
    const std::size_t real = pkt.size();
    pkt.resize(60, 0); // Ethernet minimum with padding
    const auto p = sp::parse(pkt);
    ASSERT_TRUE(p.ok());
    EXPECT_TRUE(p.flags & sp::parse_flag::ip_options);
    EXPECT_TRUE(p.flags & sp::parse_flag::padded);
    EXPECT_EQ(p.l4_offset, 14 + 28);
    EXPECT_EQ(p.l3_end, real);
    EXPECT_EQ(p.payload_len(), 4U);
    EXPECT_TRUE(sp::l4_checksum_ok(pkt, p));
}

TEST(Parser, Ipv6ExtensionHeadersAreWalked) {
    // hop-by-hop (8 bytes, PadN) -> destination options (16 bytes) -> TCP
    std::array<std::uint8_t, 24> ext{};
    ext[0] = sp::ip_proto::ipv6_dest;
    ext[1] = 0;
    ext[2] = 1; // PadN
    ext[3] = 4;
    ext[8] = sp::ip_proto::tcp;
    ext[9] = 1; // 16 bytes
    ext[10] = 1;
    ext[11] = 12;
    sp::ip_spec ip = v6();
    ip.ipv6_ext = ext;
    ip.ipv6_ext_type = sp::ip_proto::hop_by_hop;
    const auto pkt = tcp_packet({}, ip, {}, 50);
    const auto p = sp::parse(pkt);
    ASSERT_TRUE(p.ok()) << sp::to_string(p.error);
    EXPECT_TRUE(p.flags & sp::parse_flag::ipv6_ext);
    EXPECT_EQ(p.l4_offset, 14 + 40 + 24);
    EXPECT_EQ(p.l4_proto, sp::ip_proto::tcp);
    EXPECT_TRUE(p.is_tcp());
    EXPECT_TRUE(sp::l4_checksum_ok(pkt, p));
}

TEST(Parser, Ipv6FragmentsAndTooManyExtensions) {
    std::array<std::uint8_t, 8> frag{};
    frag[0] = sp::ip_proto::tcp;
    frag[2] = 0x00;
    frag[3] = 0x08; // offset 1 (8 bytes): a later fragment
    sp::ip_spec ip = v6();
    ip.ipv6_ext = frag;
    ip.ipv6_ext_type = sp::ip_proto::ipv6_frag;
    auto pkt = tcp_packet({}, ip, {}, 50);
    auto p = sp::parse(pkt);
    ASSERT_TRUE(p.ok());
    EXPECT_TRUE(p.flags & sp::parse_flag::ip_later_fragment);
    EXPECT_FALSE(p.is_tcp()) << "no L4 header in a later fragment";
    EXPECT_EQ(p.key.src_port, 0);

    std::vector<std::uint8_t> chain(8 * 9, 0);
    for (std::size_t i = 0; i < 9; ++i) {
        chain[i * 8] = i == 8 ? sp::ip_proto::tcp : sp::ip_proto::ipv6_dest;
    }
    ip.ipv6_ext = chain;
    ip.ipv6_ext_type = sp::ip_proto::ipv6_dest;
    pkt = tcp_packet({}, ip, {}, 0);
    EXPECT_EQ(sp::parse(pkt).error, sp::parse_error::too_many_ipv6_extensions);
}

TEST(Parser, Ipv4Fragments) {
    sp::ip_spec ip;
    ip.dont_fragment = false;
    ip.frag_bits = sp::ipv4_frag::more_fragments;
    auto pkt = udp_packet({}, ip, 100);
    auto p = sp::parse(pkt);
    ASSERT_TRUE(p.ok());
    EXPECT_TRUE(p.flags & sp::parse_flag::ip_fragment);
    EXPECT_FALSE(p.flags & sp::parse_flag::ip_later_fragment);
    EXPECT_TRUE(p.is_udp());
    EXPECT_EQ(p.key.src_port, 0) << "fragments of one datagram share a key without ports";

    ip.frag_bits = 10; // offset 80 bytes
    pkt = udp_packet({}, ip, 100);
    p = sp::parse(pkt);
    ASSERT_TRUE(p.ok());
    EXPECT_TRUE(p.flags & sp::parse_flag::ip_later_fragment);
    EXPECT_EQ(p.payload_offset, 34);
}

TEST(Parser, NonIpFramesPassWithL2Only) {
    std::vector<std::uint8_t> arp(42, 0);
    arp[12] = 0x08;
    arp[13] = 0x06;
    const auto p = sp::parse(arp);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p.l3, sp::l3_type::arp);
    EXPECT_EQ(p.l3_offset, 14);
}

TEST(Parser, MalformedHeadersNameTheirFault) {
    const auto base = tcp_packet({}, {}, {}, 20);
    auto pkt = base;
    pkt[14] = 0x55; // version 5
    EXPECT_EQ(sp::parse(pkt).error, sp::parse_error::bad_ipv4_version);
    pkt = base;
    pkt[14] = 0x44; // IHL 4
    EXPECT_EQ(sp::parse(pkt).error, sp::parse_error::bad_ipv4_header_length);
    pkt = base;
    pkt[16] = 0xff; // total length past the frame
    EXPECT_EQ(sp::parse(pkt).error, sp::parse_error::bad_ipv4_total_length);
    pkt = base;
    pkt[16] = 0;
    pkt[17] = 10; // total length below the header length
    EXPECT_EQ(sp::parse(pkt).error, sp::parse_error::bad_ipv4_total_length);
    pkt = base;
    pkt[34 + 12] = 0x40; // data offset 4
    EXPECT_EQ(sp::parse(pkt).error, sp::parse_error::bad_tcp_header_length);
    pkt = base;
    pkt[34 + 12] = 0xf0; // data offset 15 = 60 bytes > what remains
    EXPECT_EQ(sp::parse(pkt).error, sp::parse_error::bad_tcp_header_length);

    auto u = udp_packet({}, {}, 20);
    u[34 + 4] = 0;
    u[34 + 5] = 7; // UDP length < 8
    EXPECT_EQ(sp::parse(u).error, sp::parse_error::bad_udp_length);

    auto six = tcp_packet({}, v6(), {}, 20);
    six[14] = 0x40;
    EXPECT_EQ(sp::parse(six).error, sp::parse_error::bad_ipv6_version);
    six = tcp_packet({}, v6(), {}, 20);
    six[18] = 0x10; // payload length 4096+
    EXPECT_EQ(sp::parse(six).error, sp::parse_error::bad_ipv6_payload_length);
}

TEST(Parser, EveryTruncationIsReportedNotOverread) {
    std::vector<std::vector<std::uint8_t>> samples;
    sp::l2_spec vlan;
    vlan.vlan_count = 2;
    const auto ts = sp::timestamp_options(5, 6);
    sp::tcp_spec t;
    t.options = ts;
    samples.push_back(tcp_packet({}, {}, t, 30));
    samples.push_back(tcp_packet(vlan, v6(), t, 30));
    samples.push_back(udp_packet(vlan, {}, 30));
    std::array<std::uint8_t, 8> hbh{};
    hbh[0] = sp::ip_proto::udp;
    sp::ip_spec ip = v6();
    ip.ipv6_ext = hbh;
    ip.ipv6_ext_type = sp::ip_proto::hop_by_hop;
    samples.push_back(udp_packet({}, ip, 30));
    for (const auto& full : samples) {
        ASSERT_TRUE(sp::parse(full).ok());
        const auto payload_at = sp::parse(full).payload_offset;
        for (std::size_t len = 0; len < full.size(); ++len) {
            // exact-size heap copy: any read past len is an ASan error
            std::vector<std::uint8_t> cut(full.begin(),
                                          full.begin() + static_cast<std::ptrdiff_t>(len));
            // Cut in the headers: a truncation error; cut in the payload: the IP length no
            // longer fits. Either way an error, never a read past len.
            const auto p = sp::parse(cut);
            EXPECT_FALSE(p.ok()) << "len " << len << " (payload at " << payload_at << ")";
        }
    }
}

TEST(Parser, HeadersInFirstSegmentLengthsFromTotal) {
    const auto pkt = tcp_packet({}, {}, {}, 1000);
    // Only the first 100 bytes are contiguous; the IP length is checked against the total.
    const auto p = sp::parse(std::span(pkt).first(100), pkt.size());
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p.payload_len(), 1000U);
    // Headers that do not fit the contiguous part are a truncation.
    EXPECT_FALSE(sp::parse(std::span(pkt).first(40), pkt.size()).ok());
}

// flow_key_at (GRO's guess of a frame's flow from a known layout) reads the same key as the
// parser, over random addresses, ports and VLAN tags, TCP and UDP, IPv4 and IPv6 with and without
// extension headers, 0..2 tags.
TEST(Parser, FlowKeyAtALayoutEqualsTheParsedKey) {
    std::mt19937_64 rng(11);
    std::array<std::uint8_t, 8> hop{};
    hop[0] = sp::ip_proto::tcp; // patched below to the L4 protocol
    hop[2] = 1;                 // PadN over the rest
    hop[3] = 4;
    for (int i = 0; i < 2000; ++i) {
        sp::l2_spec l2;
        l2.vlan_count = static_cast<std::uint8_t>(rng() % 3);
        l2.vlan_tci = {static_cast<std::uint16_t>(rng()), static_cast<std::uint16_t>(rng())};
        sp::ip_spec ip = rng() % 2 == 0 ? sp::ip_spec{} : v6();
        for (std::size_t b = 0; b < (ip.ipv6 ? 16U : 4U); ++b) {
            ip.src[b] = static_cast<std::uint8_t>(rng());
            ip.dst[b] = static_cast<std::uint8_t>(rng());
        }
        const bool udp = rng() % 2 == 0;
        hop[0] = udp ? sp::ip_proto::udp : sp::ip_proto::tcp;
        if (ip.ipv6 && rng() % 2 == 0) {
            ip.ipv6_ext = hop;
            ip.ipv6_ext_type = sp::ip_proto::hop_by_hop;
        }
        const auto sport = static_cast<std::uint16_t>(rng());
        const auto dport = static_cast<std::uint16_t>(rng());
        std::vector<std::uint8_t> buf(256);
        const std::array<std::uint8_t, 10> payload{};
        sp::tcp_spec tcp;
        tcp.src_port = sport;
        tcp.dst_port = dport;
        const std::size_t n = udp ? sp::build_udp(buf, l2, ip, {sport, dport}, payload)
                                  : sp::build_tcp(buf, l2, ip, tcp, payload);
        ASSERT_NE(n, 0U);
        buf.resize(n);
        const auto p = sp::parse(buf);
        ASSERT_TRUE(p.ok()) << sp::to_string(p.error);
        sp::flow_key k;
        k.src_addr.fill(0x5a); // every byte must be written
        k.dst_addr.fill(0x5a);
        k.src_port = k.dst_port = k.vlan = 0x5a5a;
        k.protocol = k.ip_version = 0x5a;
        sp::flow_key_at(buf.data(), p.l3_offset, p.l4_offset, ip.ipv6, p.l4_proto, k);
        ASSERT_EQ(k, p.key) << "case " << i << ": vlan tags " << int{l2.vlan_count}
                            << (ip.ipv6 ? " ipv6" : " ipv4") << (udp ? " udp" : " tcp");
    }
}

TEST(TcpOptions, DecodesAllKindsAndRejectsBadLengths) {
    const std::uint8_t opts[] = {2, 4,  0x05, 0xb4,                    // MSS 1460
                                 1, 3,  3,    7,                       // NOP, WS 7
                                 4, 2,                                 // SACK permitted
                                 5, 10, 0,    0,    0, 1, 0, 0, 0, 2,  // SACK 1..2
                                 8, 10, 0,    0,    0, 9, 0, 0, 0, 10, // TS 9 10
                                 0};                                   // EOL
    const auto o = sp::parse_tcp_options(opts);
    EXPECT_TRUE(o.valid);
    EXPECT_EQ(o.mss, 1460);
    EXPECT_EQ(o.window_scale, 7);
    EXPECT_TRUE(o.sack_permitted);
    EXPECT_EQ(o.sack_count, 1);
    EXPECT_EQ(o.sack[0].left, 1U);
    EXPECT_EQ(o.sack[0].right, 2U);
    EXPECT_EQ(o.ts_val, 9U);
    EXPECT_EQ(o.ts_ecr, 10U);

    const std::uint8_t overrun[] = {8, 10, 0, 0};
    EXPECT_FALSE(sp::parse_tcp_options(overrun).valid);
    const std::uint8_t bad_mss[] = {2, 3, 0};
    EXPECT_FALSE(sp::parse_tcp_options(bad_mss).valid);
    const std::uint8_t zero_len[] = {30, 0};
    EXPECT_FALSE(sp::parse_tcp_options(zero_len).valid);
    const std::uint8_t lone_kind[] = {1, 1, 30};
    EXPECT_FALSE(sp::parse_tcp_options(lone_kind).valid);
}
