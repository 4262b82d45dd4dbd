// SPDX-License-Identifier: MIT
// splitnet/packet/packet_builder.hpp: builds valid packets for tests, benchmarks and tools.
//
// build_tcp()/build_udp() write one packet from explicit header fields (every field a test may
// want to vary: VLAN tags, TOS/ECN, TTL, IP ID, DF, IPv4 options, IPv6 extension headers, TCP
// flags, window and options), with correct lengths and checksums.
// tcp_stream and udp_stream generate realistic traffic on top: MSS-sized segments with advancing
// sequence numbers, timestamps that tick the way a Linux sender's do (one TSval for a run of
// segments), PSH on the last segment of each application write, ACKs that advance when the
// peer sends data, and a payload whose every byte is a function of its stream offset
// (stream_byte), so a receiver can check the stream it reassembles.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <span>

#include <splitnet/packet/checksum.hpp>
#include <splitnet/packet/ethernet.hpp>
#include <splitnet/packet/ipv4.hpp>
#include <splitnet/packet/ipv6.hpp>
#include <splitnet/packet/tcp.hpp>
#include <splitnet/packet/udp.hpp>

namespace splitnet::packet {

struct l2_spec {
    mac_address src{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
    mac_address dst{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
    std::uint8_t vlan_count = 0;                 ///< 0, 1 or 2 tags
    std::array<std::uint16_t, 2> vlan_tci{};     ///< outer first
    std::uint16_t outer_tpid = ether_type::vlan; ///< ether_type::qinq for an 802.1ad outer tag
};

struct ip_spec {
    bool ipv6 = false;
    std::array<std::uint8_t, 16> src{{10, 0, 0, 1}}; ///< IPv4 uses bytes 0..3
    std::array<std::uint8_t, 16> dst{{10, 0, 0, 2}};
    std::uint8_t tos = 0;  ///< IPv4 TOS or IPv6 traffic class (DSCP | ECN)
    std::uint8_t ttl = 64; ///< IPv4 TTL or IPv6 hop limit
    std::uint16_t id = 0;  ///< IPv4 identification
    bool dont_fragment = true;
    std::uint16_t frag_bits = 0; ///< extra IPv4 MF/offset bits (fragment tests)
    std::uint32_t flow_label = 0;
    std::span<const std::uint8_t> options;  ///< IPv4 options, a multiple of 4 bytes
    std::span<const std::uint8_t> ipv6_ext; ///< formatted IPv6 extension headers...
    std::uint8_t ipv6_ext_type = 0;         ///< ...and the type of the first one
};

struct tcp_spec {
    std::uint16_t src_port = 40000;
    std::uint16_t dst_port = 5201;
    std::uint32_t seq = 0;
    std::uint32_t ack = 0;
    std::uint8_t flags = tcp_flag::ack;
    std::uint16_t window = 502;
    std::uint16_t urgent = 0;
    std::span<const std::uint8_t> options; ///< a multiple of 4 bytes, at most 40
};

struct udp_spec {
    std::uint16_t src_port = 40000;
    std::uint16_t dst_port = 4789;
};

namespace detail {

/// Writes Ethernet + VLAN tags; returns the L3 offset, or 0 if `cap` is too small.
inline std::size_t put_l2(std::uint8_t* p, std::size_t cap, const l2_spec& l2,
                          std::uint16_t l3_type) noexcept {
    const std::size_t len = ethernet_header_len + vlan_tag_len * l2.vlan_count;
    if (cap < len || l2.vlan_count > 2) {
        return 0;
    }
    ethernet_header eh{p};
    eh.set_dst(l2.dst);
    eh.set_src(l2.src);
    std::size_t off = 12;
    for (std::size_t i = 0; i < l2.vlan_count; ++i) {
        store_be16(p + off, i == 0 && l2.vlan_count == 2 ? l2.outer_tpid : ether_type::vlan);
        store_be16(p + off + 2, l2.vlan_tci[i]);
        off += vlan_tag_len;
    }
    store_be16(p + off, l3_type);
    return len;
}

/// Writes the IP header(s) for an L4 segment of `l4_len` bytes; returns the L4 offset or 0.
inline std::size_t put_l3(std::uint8_t* p, std::size_t cap, std::size_t off, const ip_spec& ip,
                          std::uint8_t proto, std::size_t l4_len) noexcept {
    if (!ip.ipv6) {
        const std::size_t hl = ipv4_min_header_len + ip.options.size();
        if (ip.options.size() % 4 != 0 || hl > 60 || off + hl > cap || hl + l4_len > 0xffff) {
            return 0;
        }
        ipv4_header h{p + off};
        h.set_version_ihl(hl);
        h.set_tos(ip.tos);
        h.set_total_length(static_cast<std::uint16_t>(hl + l4_len));
        h.set_id(ip.id);
        h.set_frag_word(static_cast<std::uint16_t>(
            (ip.dont_fragment ? ipv4_frag::dont_fragment : 0) | ip.frag_bits));
        h.set_ttl(ip.ttl);
        h.set_protocol(proto);
        h.set_checksum_raw(0);
        std::memcpy(p + off + 12, ip.src.data(), 4);
        std::memcpy(p + off + 16, ip.dst.data(), 4);
        if (!ip.options.empty()) {
            std::memcpy(p + off + ipv4_min_header_len, ip.options.data(), ip.options.size());
        }
        h.set_checksum_raw(csum_fold(csum_partial(p + off, hl)));
        return off + hl;
    }
    const std::size_t hl = ipv6_header_len + ip.ipv6_ext.size();
    if (off + hl > cap || ip.ipv6_ext.size() + l4_len > 0xffff) {
        return 0;
    }
    ipv6_header h{p + off};
    h.set_first_word((6U << 28) | (std::uint32_t{ip.tos} << 20) | (ip.flow_label & 0xfffff));
    h.set_payload_length(static_cast<std::uint16_t>(ip.ipv6_ext.size() + l4_len));
    h.set_next_header(ip.ipv6_ext.empty() ? proto : ip.ipv6_ext_type);
    h.set_hop_limit(ip.ttl);
    std::memcpy(p + off + 8, ip.src.data(), 16);
    std::memcpy(p + off + 24, ip.dst.data(), 16);
    if (!ip.ipv6_ext.empty()) {
        std::memcpy(p + off + ipv6_header_len, ip.ipv6_ext.data(), ip.ipv6_ext.size());
    }
    return off + hl;
}

[[nodiscard]] inline std::uint32_t pseudo_sum(const ip_spec& ip, std::uint8_t proto,
                                              std::size_t l4_len) noexcept {
    const auto len = static_cast<std::uint32_t>(l4_len);
    return ip.ipv6 ? pseudo_header_sum_v6(ip.src.data(), ip.dst.data(), proto, len)
                   : pseudo_header_sum_v4(ip.src.data(), ip.dst.data(), proto, len);
}

} // namespace detail

/// Builds an Ethernet/[VLAN]/IP/TCP packet into `out`; returns its length, or 0 if it does not
/// fit or a field is inconsistent (options not a multiple of 4, over 64 KiB).
[[nodiscard]] inline std::size_t build_tcp(std::span<std::uint8_t> out, const l2_spec& l2,
                                           const ip_spec& ip, const tcp_spec& tcp,
                                           std::span<const std::uint8_t> payload) noexcept {
    std::uint8_t* p = out.data();
    const std::size_t cap = out.size();
    const std::size_t th_len = tcp_min_header_len + tcp.options.size();
    if (tcp.options.size() % 4 != 0 || th_len > tcp_max_header_len) {
        return 0;
    }
    const std::size_t l4_len = th_len + payload.size();
    const std::size_t l3 =
        detail::put_l2(p, cap, l2, ip.ipv6 ? ether_type::ipv6 : ether_type::ipv4);
    const std::size_t l4 = l3 == 0 ? 0 : detail::put_l3(p, cap, l3, ip, ip_proto::tcp, l4_len);
    if (l4 == 0 || l4 + l4_len > cap) {
        return 0;
    }
    tcp_header th{p + l4};
    th.set_src_port(tcp.src_port);
    th.set_dst_port(tcp.dst_port);
    th.set_seq(tcp.seq);
    th.set_ack_seq(tcp.ack);
    p[l4 + 12] = 0;
    th.set_header_len(th_len);
    th.set_flags(tcp.flags);
    th.set_window(tcp.window);
    th.set_checksum_raw(0);
    th.set_urgent_pointer(tcp.urgent);
    if (!tcp.options.empty()) {
        std::memcpy(p + l4 + tcp_min_header_len, tcp.options.data(), tcp.options.size());
    }
    if (!payload.empty()) {
        std::memcpy(p + l4 + th_len, payload.data(), payload.size());
    }
    th.set_checksum_raw(
        csum_fold(csum_partial(p + l4, l4_len, detail::pseudo_sum(ip, ip_proto::tcp, l4_len))));
    return l4 + l4_len;
}

/// Builds an Ethernet/[VLAN]/IP/UDP packet; returns its length or 0 (see build_tcp).
[[nodiscard]] inline std::size_t build_udp(std::span<std::uint8_t> out, const l2_spec& l2,
                                           const ip_spec& ip, const udp_spec& udp,
                                           std::span<const std::uint8_t> payload) noexcept {
    std::uint8_t* p = out.data();
    const std::size_t cap = out.size();
    const std::size_t l4_len = udp_header_len + payload.size();
    const std::size_t l3 =
        detail::put_l2(p, cap, l2, ip.ipv6 ? ether_type::ipv6 : ether_type::ipv4);
    const std::size_t l4 = l3 == 0 ? 0 : detail::put_l3(p, cap, l3, ip, ip_proto::udp, l4_len);
    if (l4 == 0 || l4 + l4_len > cap || l4_len > 0xffff) {
        return 0;
    }
    udp_header uh{p + l4};
    uh.set_src_port(udp.src_port);
    uh.set_dst_port(udp.dst_port);
    uh.set_length(static_cast<std::uint16_t>(l4_len));
    uh.set_checksum_raw(0);
    if (!payload.empty()) {
        std::memcpy(p + l4 + udp_header_len, payload.data(), payload.size());
    }
    std::uint16_t c =
        csum_fold(csum_partial(p + l4, l4_len, detail::pseudo_sum(ip, ip_proto::udp, l4_len)));
    uh.set_checksum_raw(c == 0 ? std::uint16_t{0xffff} : c);
    return l4 + l4_len;
}

/// The payload byte at offset `pos` of a stream with seed `seed`: a receiver that knows the seed
/// can check every byte it reassembles.
[[nodiscard]] constexpr std::uint8_t stream_byte(std::uint32_t seed, std::uint64_t pos) noexcept {
    std::uint64_t x = (pos >> 3) * 0x9e3779b97f4a7c15ULL + seed * 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 29;
    return static_cast<std::uint8_t>(x >> (8 * (pos & 7)));
}

/// Fills `out` with the stream bytes starting at offset `pos`.
inline void fill_stream_bytes(std::span<std::uint8_t> out, std::uint32_t seed,
                              std::uint64_t pos) noexcept {
    for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] = stream_byte(seed, pos + i);
    }
}

/// Linux's option block on data segments of a connection with timestamps: NOP, NOP, TS.
[[nodiscard]] constexpr std::array<std::uint8_t, 12>
timestamp_options(std::uint32_t ts_val, std::uint32_t ts_ecr) noexcept {
    return {tcp_option_kind::nop,
            tcp_option_kind::nop,
            tcp_option_kind::timestamp,
            10,
            static_cast<std::uint8_t>(ts_val >> 24),
            static_cast<std::uint8_t>(ts_val >> 16),
            static_cast<std::uint8_t>(ts_val >> 8),
            static_cast<std::uint8_t>(ts_val),
            static_cast<std::uint8_t>(ts_ecr >> 24),
            static_cast<std::uint8_t>(ts_ecr >> 16),
            static_cast<std::uint8_t>(ts_ecr >> 8),
            static_cast<std::uint8_t>(ts_ecr)};
}

struct tcp_stream_config {
    l2_spec l2{};
    ip_spec ip{};
    std::uint16_t src_port = 40000;
    std::uint16_t dst_port = 5201;
    std::uint32_t isn = 1000; ///< sequence number of the first payload byte
    std::uint32_t ack = 7000; ///< ACK number carried by data segments
    std::uint16_t window = 502;
    std::uint16_t mss = 1448; ///< payload bytes per full segment
    bool timestamps = true;
    std::uint32_t ts_val = 100000;
    std::uint32_t ts_ecr = 55555;
    std::uint32_t segments_per_tick = 16;    ///< segments sent per TSval increment
    std::uint32_t write_size = 65536;        ///< application write; its last segment carries PSH
    std::uint32_t ack_advance_per_write = 0; ///< peer bytes acknowledged after each write
    bool ip_id_increment = true; ///< false: DF with a fixed IP ID (Linux for TSO'd flows)
    std::uint32_t payload_seed = 1;
};

/// Generates the data segments of one direction of a TCP connection.
class tcp_stream {
public:
    explicit tcp_stream(const tcp_stream_config& c) noexcept : cfg_(c), ip_id_(c.ip.id) {}

    /// Writes the next data segment into `out`; returns its length (0: `out` too small).
    std::size_t next(std::span<std::uint8_t> out) noexcept {
        const std::uint32_t left_in_write = cfg_.write_size - write_pos_;
        const std::uint32_t len = left_in_write < cfg_.mss ? left_in_write : cfg_.mss;
        std::uint8_t payload[65536];
        fill_stream_bytes({payload, len}, cfg_.payload_seed, sent_);
        const bool end_of_write = len == left_in_write;
        const std::size_t n =
            segment(out, {payload, len},
                    static_cast<std::uint8_t>(tcp_flag::ack | (end_of_write ? tcp_flag::psh : 0)));
        if (n == 0) {
            return 0;
        }
        sent_ += len;
        write_pos_ += len;
        if (end_of_write) {
            write_pos_ = 0;
            ack_ += cfg_.ack_advance_per_write;
        }
        return n;
    }

    /// Writes a segment with the stream's current header state and the given payload and flags,
    /// without advancing the stream (for hand-made test cases).
    std::size_t segment(std::span<std::uint8_t> out, std::span<const std::uint8_t> payload,
                        std::uint8_t flags) noexcept {
        ip_spec ip = cfg_.ip;
        ip.id = ip_id_;
        tcp_spec t;
        t.src_port = cfg_.src_port;
        t.dst_port = cfg_.dst_port;
        t.seq = cfg_.isn + static_cast<std::uint32_t>(sent_);
        t.ack = ack_;
        t.flags = flags;
        t.window = cfg_.window;
        const auto ts = timestamp_options(
            cfg_.ts_val + static_cast<std::uint32_t>(segments_ / tick()), cfg_.ts_ecr);
        if (cfg_.timestamps) {
            t.options = ts;
        }
        const std::size_t n = build_tcp(out, cfg_.l2, ip, t, payload);
        if (n != 0) {
            ++segments_;
            if (cfg_.ip_id_increment) {
                ++ip_id_;
            }
        }
        return n;
    }

    [[nodiscard]] const tcp_stream_config& config() const noexcept { return cfg_; }
    /// Payload bytes sent so far (the stream offset of the next byte).
    [[nodiscard]] std::uint64_t bytes_sent() const noexcept { return sent_; }
    [[nodiscard]] std::uint32_t next_seq() const noexcept {
        return cfg_.isn + static_cast<std::uint32_t>(sent_);
    }

private:
    [[nodiscard]] std::uint32_t tick() const noexcept {
        return cfg_.segments_per_tick == 0 ? 1 : cfg_.segments_per_tick;
    }

    tcp_stream_config cfg_;
    std::uint64_t sent_ = 0;
    std::uint64_t segments_ = 0;
    std::uint32_t write_pos_ = 0;
    std::uint32_t ack_ = cfg_.ack;
    std::uint16_t ip_id_;
};

struct udp_stream_config {
    l2_spec l2{};
    ip_spec ip{};
    std::uint16_t src_port = 40000;
    std::uint16_t dst_port = 4789;
    std::uint16_t datagram_size = 1400; ///< UDP payload bytes per datagram
    bool ip_id_increment = true;
    std::uint32_t payload_seed = 2;
};

/// Generates same-size UDP datagrams whose payloads continue one byte stream.
class udp_stream {
public:
    explicit udp_stream(const udp_stream_config& c) noexcept : cfg_(c), ip_id_(c.ip.id) {}

    /// Writes the next datagram (payload `size` bytes, default the configured size).
    std::size_t next(std::span<std::uint8_t> out, std::uint16_t size = 0) noexcept {
        const std::uint16_t len = size != 0 ? size : cfg_.datagram_size;
        std::uint8_t payload[65536];
        fill_stream_bytes({payload, len}, cfg_.payload_seed, sent_);
        ip_spec ip = cfg_.ip;
        ip.id = ip_id_;
        const std::size_t n =
            build_udp(out, cfg_.l2, ip, {cfg_.src_port, cfg_.dst_port}, {payload, len});
        if (n != 0) {
            sent_ += len;
            if (cfg_.ip_id_increment) {
                ++ip_id_;
            }
        }
        return n;
    }

    [[nodiscard]] const udp_stream_config& config() const noexcept { return cfg_; }
    [[nodiscard]] std::uint64_t bytes_sent() const noexcept { return sent_; }

private:
    udp_stream_config cfg_;
    std::uint64_t sent_ = 0;
    std::uint16_t ip_id_;
};

/// A distinct IPv4 (or IPv6) TCP flow per index, for multi-flow tests and benchmarks.
[[nodiscard]] inline tcp_stream_config tcp_flow(std::uint32_t index, bool ipv6 = false) noexcept {
    tcp_stream_config c;
    c.ip.ipv6 = ipv6;
    if (ipv6) {
        c.ip.src = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        c.ip.dst = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
        c.ip.src[12] = static_cast<std::uint8_t>(index >> 8);
        c.ip.src[13] = static_cast<std::uint8_t>(index);
    } else {
        c.ip.src = {10, static_cast<std::uint8_t>(index >> 16),
                    static_cast<std::uint8_t>(index >> 8), static_cast<std::uint8_t>(index)};
        c.ip.dst = {10, 255, 0, 1};
    }
    c.src_port = static_cast<std::uint16_t>(10000 + (index % 50000));
    c.isn = 1000 + index * 7919;
    c.payload_seed = index + 1;
    c.ip.id = static_cast<std::uint16_t>(index * 31);
    return c;
}

} // namespace splitnet::packet
