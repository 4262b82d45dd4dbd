// SPDX-License-Identifier: MIT
// splitnet/packet/parser.hpp: one bounds-checked pass over a frame's headers.
//
// parse() walks Ethernet, up to two VLAN tags (802.1Q, 802.1ad), IPv4 (with options) or IPv6
// (with hop-by-hop, routing, fragment, destination-options, AH and mobility extension headers),
// then TCP or UDP, and returns the offset of each layer, the flow key and flags. Every read is
// checked against the frame: a short or inconsistent packet yields a parse_error naming what was
// wrong, and nothing past the end is read. The result is plain data (copy it freely).
//
// Lengths: the headers must lie in `bytes` (the first segment of a chain); the IP length fields
// are checked against `total_len` (the whole packet), so a GRO aggregate parses too. Ethernet
// padding after the IP packet is allowed: l3_end marks where the IP packet ends.
//
// TCP options are bounds-checked as part of the header length but decoded only on request
// (parse_tcp_options in tcp.hpp), since most consumers never look at them.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include <splitnet/config.hpp>
#include <splitnet/packet/ethernet.hpp>
#include <splitnet/packet/flow_key.hpp>
#include <splitnet/packet/ipv4.hpp>
#include <splitnet/packet/ipv6.hpp>
#include <splitnet/packet/tcp.hpp>
#include <splitnet/packet/udp.hpp>

namespace splitnet::packet {

enum class parse_error : std::uint8_t {
    none = 0,
    truncated_ethernet,       ///< fewer than 14 bytes
    truncated_vlan,           ///< a VLAN TPID without its 4-byte tag
    too_many_vlan_tags,       ///< more than two stacked tags
    truncated_ipv4,           ///< fewer than 20 bytes of IPv4 header
    bad_ipv4_version,         ///< EtherType IPv4 but version field != 4
    bad_ipv4_header_length,   ///< IHL < 5, or options past the end of the frame
    bad_ipv4_total_length,    ///< total length below the header length or past the frame
    truncated_ipv6,           ///< fewer than 40 bytes of IPv6 header
    bad_ipv6_version,         ///< EtherType IPv6 but version field != 6
    bad_ipv6_payload_length,  ///< payload length past the end of the frame (or a jumbogram)
    truncated_ipv6_extension, ///< an extension header runs past the packet
    too_many_ipv6_extensions, ///< more than max_ipv6_extensions extension headers
    truncated_tcp,            ///< fewer than 20 bytes of TCP header
    bad_tcp_header_length,    ///< data offset < 5, or options past the IP packet
    truncated_udp,            ///< fewer than 8 bytes of UDP header
    bad_udp_length,           ///< UDP length < 8 or past the IP packet
};

[[nodiscard]] constexpr std::string_view to_string(parse_error e) noexcept {
    switch (e) {
    case parse_error::none:
        return "none";
    case parse_error::truncated_ethernet:
        return "truncated Ethernet header";
    case parse_error::truncated_vlan:
        return "truncated VLAN tag";
    case parse_error::too_many_vlan_tags:
        return "more than two VLAN tags";
    case parse_error::truncated_ipv4:
        return "truncated IPv4 header";
    case parse_error::bad_ipv4_version:
        return "IPv4 version field is not 4";
    case parse_error::bad_ipv4_header_length:
        return "bad IPv4 header length";
    case parse_error::bad_ipv4_total_length:
        return "bad IPv4 total length";
    case parse_error::truncated_ipv6:
        return "truncated IPv6 header";
    case parse_error::bad_ipv6_version:
        return "IPv6 version field is not 6";
    case parse_error::bad_ipv6_payload_length:
        return "bad IPv6 payload length";
    case parse_error::truncated_ipv6_extension:
        return "truncated IPv6 extension header";
    case parse_error::too_many_ipv6_extensions:
        return "too many IPv6 extension headers";
    case parse_error::truncated_tcp:
        return "truncated TCP header";
    case parse_error::bad_tcp_header_length:
        return "bad TCP data offset";
    case parse_error::truncated_udp:
        return "truncated UDP header";
    case parse_error::bad_udp_length:
        return "bad UDP length";
    }
    return "unknown";
}

enum class l3_type : std::uint8_t { none = 0, ipv4, ipv6, arp, other };

namespace parse_flag {
inline constexpr std::uint16_t ip_options = 0x0001;        ///< IPv4 header longer than 20 bytes
inline constexpr std::uint16_t ipv6_ext = 0x0002;          ///< IPv6 extension headers present
inline constexpr std::uint16_t ip_fragment = 0x0004;       ///< any fragment (MF or offset != 0)
inline constexpr std::uint16_t ip_later_fragment = 0x0008; ///< offset != 0: no L4 header here
inline constexpr std::uint16_t l4_tcp = 0x0010;            ///< l4_offset.. is a checked TCP header
inline constexpr std::uint16_t l4_udp = 0x0020;            ///< l4_offset.. is a checked UDP header
inline constexpr std::uint16_t padded = 0x0040;            ///< bytes after the IP packet (padding)
} // namespace parse_flag

inline constexpr unsigned max_ipv6_extensions = 8;

struct parsed_packet {
    parse_error error = parse_error::none;
    l3_type l3 = l3_type::none;
    std::uint8_t l4_proto = 0; ///< IP protocol after extension headers
    std::uint8_t vlan_count = 0;
    std::uint16_t flags = 0;          ///< parse_flag bits
    std::uint16_t ether_type = 0;     ///< EtherType after the VLAN tags
    std::uint16_t vlan_tci[2] = {};   ///< tags in wire order (outer first)
    std::uint16_t l3_offset = 0;      ///< start of the IP header (= L2 header length)
    std::uint16_t l4_offset = 0;      ///< start of the L4 header
    std::uint16_t payload_offset = 0; ///< start of the L4 payload (after TCP/UDP header)
    std::uint32_t l3_end = 0;         ///< one past the IP packet's last byte (before padding)
    flow_key key{};

    [[nodiscard]] constexpr bool ok() const noexcept { return error == parse_error::none; }
    [[nodiscard]] constexpr bool is_tcp() const noexcept {
        return (flags & parse_flag::l4_tcp) != 0;
    }
    [[nodiscard]] constexpr bool is_udp() const noexcept {
        return (flags & parse_flag::l4_udp) != 0;
    }
    [[nodiscard]] constexpr std::uint32_t payload_len() const noexcept {
        return l3_end - payload_offset;
    }
    [[nodiscard]] constexpr std::uint16_t l4_header_len() const noexcept {
        return static_cast<std::uint16_t>(payload_offset - l4_offset);
    }
    [[nodiscard]] constexpr std::uint16_t l3_header_len() const noexcept {
        return static_cast<std::uint16_t>(l4_offset - l3_offset);
    }
};

namespace detail {

inline void parse_l4(const std::uint8_t* d, std::size_t limit, std::size_t l4,
                     parsed_packet& p) noexcept {
    p.l4_offset = static_cast<std::uint16_t>(l4);
    p.payload_offset = static_cast<std::uint16_t>(l4);
    const bool fragment = (p.flags & parse_flag::ip_fragment) != 0;
    if (p.l4_proto == ip_proto::tcp) {
        if (l4 + tcp_min_header_len > limit) {
            p.error = parse_error::truncated_tcp;
            return;
        }
        const tcp_header th{d + l4};
        const std::size_t hl = th.header_len();
        if (hl < tcp_min_header_len || l4 + hl > limit) {
            p.error = parse_error::bad_tcp_header_length;
            return;
        }
        p.payload_offset = static_cast<std::uint16_t>(l4 + hl);
        p.flags |= parse_flag::l4_tcp;
        if (!fragment) {
            p.key.src_port = th.src_port();
            p.key.dst_port = th.dst_port();
        }
    } else if (p.l4_proto == ip_proto::udp) {
        if (l4 + udp_header_len > limit) {
            p.error = parse_error::truncated_udp;
            return;
        }
        const udp_header uh{d + l4};
        // A first fragment carries the whole datagram's length; only whole datagrams are checked.
        if (!fragment && (uh.length() < udp_header_len || l4 + uh.length() > p.l3_end)) {
            p.error = parse_error::bad_udp_length;
            return;
        }
        p.payload_offset = static_cast<std::uint16_t>(l4 + udp_header_len);
        p.flags |= parse_flag::l4_udp;
        if (!fragment) {
            p.key.src_port = uh.src_port();
            p.key.dst_port = uh.dst_port();
        }
    }
}

inline void parse_ipv4(const std::uint8_t* d, std::size_t n, std::size_t total, std::size_t off,
                       parsed_packet& p) noexcept {
    if (off + ipv4_min_header_len > n) {
        p.error = parse_error::truncated_ipv4;
        return;
    }
    const ipv4_header ih{d + off};
    if (ih.version() != 4) {
        p.error = parse_error::bad_ipv4_version;
        return;
    }
    const std::size_t hl = ih.header_len();
    if (hl < ipv4_min_header_len || off + hl > n) {
        p.error = parse_error::bad_ipv4_header_length;
        return;
    }
    const std::size_t tl = ih.total_length();
    if (tl < hl || off + tl > total) {
        p.error = parse_error::bad_ipv4_total_length;
        return;
    }
    p.l3 = l3_type::ipv4;
    p.l3_end = static_cast<std::uint32_t>(off + tl);
    p.l4_proto = ih.protocol();
    p.key.ip_version = 4;
    p.key.protocol = p.l4_proto;
    std::memcpy(p.key.src_addr.data(), d + off + 12, 4);
    std::memcpy(p.key.dst_addr.data(), d + off + 16, 4);
    if (hl > ipv4_min_header_len) {
        p.flags |= parse_flag::ip_options;
    }
    const std::uint16_t frag = ih.frag_word();
    if ((frag & (ipv4_frag::more_fragments | ipv4_frag::offset_mask)) != 0) {
        p.flags |= parse_flag::ip_fragment;
        if ((frag & ipv4_frag::offset_mask) != 0) {
            p.flags |= parse_flag::ip_later_fragment;
            p.l4_offset = p.payload_offset = static_cast<std::uint16_t>(off + hl);
            return;
        }
    }
    parse_l4(d, n < p.l3_end ? n : p.l3_end, off + hl, p);
}

[[nodiscard]] constexpr bool is_ipv6_extension(std::uint8_t nh) noexcept {
    switch (nh) {
    case ip_proto::hop_by_hop:
    case ip_proto::ipv6_route:
    case ip_proto::ipv6_dest:
    case ip_proto::mobility:
    case ip_proto::ipv6_frag:
    case ip_proto::ah:
        return true;
    default:
        return false;
    }
}

/// Walks IPv6 extension headers from `l4` (updated past them), leaving the upper-layer protocol
/// in `nh`. Returns false when there is no L4 header to parse (an error, or a later fragment).
inline bool walk_ipv6_extensions(const std::uint8_t* d, std::size_t limit, std::uint8_t& nh,
                                 std::size_t& l4, parsed_packet& p) noexcept {
    p.flags |= parse_flag::ipv6_ext;
    for (unsigned count = 0; is_ipv6_extension(nh); ++count) {
        if (count == max_ipv6_extensions) {
            p.error = parse_error::too_many_ipv6_extensions;
            return false;
        }
        if (l4 + 8 > limit) {
            p.error = parse_error::truncated_ipv6_extension;
            return false;
        }
        std::size_t len = 0;
        bool later_fragment = false;
        if (nh == ip_proto::ipv6_frag) {
            const std::uint16_t w = packet::detail::load_be16(d + l4 + 2);
            p.flags |= parse_flag::ip_fragment;
            later_fragment = (w & 0xfff8) != 0;
            len = ipv6_frag_header_len;
        } else if (nh == ip_proto::ah) {
            len = (static_cast<std::size_t>(d[l4 + 1]) + 2) * 4;
        } else {
            len = (static_cast<std::size_t>(d[l4 + 1]) + 1) * 8;
        }
        if (l4 + len > limit) {
            p.error = parse_error::truncated_ipv6_extension;
            return false;
        }
        nh = d[l4];
        l4 += len;
        if (later_fragment) {
            p.flags |= parse_flag::ip_later_fragment;
            p.l4_proto = nh;
            p.key.protocol = nh;
            p.l4_offset = p.payload_offset = static_cast<std::uint16_t>(l4);
            return false;
        }
    }
    return true;
}

inline void parse_ipv6(const std::uint8_t* d, std::size_t n, std::size_t total, std::size_t off,
                       parsed_packet& p) noexcept {
    if (off + ipv6_header_len > n) {
        p.error = parse_error::truncated_ipv6;
        return;
    }
    const ipv6_header ih{d + off};
    if (ih.version() != 6) {
        p.error = parse_error::bad_ipv6_version;
        return;
    }
    const std::size_t end = off + ipv6_header_len + ih.payload_length();
    if (end > total || (ih.payload_length() == 0 && ih.next_header() == ip_proto::hop_by_hop)) {
        p.error = parse_error::bad_ipv6_payload_length; // includes RFC 2675 jumbograms
        return;
    }
    p.l3 = l3_type::ipv6;
    p.l3_end = static_cast<std::uint32_t>(end);
    p.key.ip_version = 6;
    std::memcpy(p.key.src_addr.data(), d + off + 8, 16);
    std::memcpy(p.key.dst_addr.data(), d + off + 24, 16);
    const std::size_t limit = n < end ? n : end;
    std::uint8_t nh = ih.next_header();
    std::size_t l4 = off + ipv6_header_len;
    if (SPLITNET_UNLIKELY(is_ipv6_extension(nh)) && !walk_ipv6_extensions(d, limit, nh, l4, p)) {
        return;
    }
    p.l4_proto = nh;
    p.key.protocol = nh;
    parse_l4(d, limit, l4, p);
}

} // namespace detail

/// Parses the headers of a packet whose first `bytes.size()` bytes are contiguous and whose
/// whole length is `total_len` (>= bytes.size(); equal for a linear frame), into `p`.
/// Hot paths parse into the burst's own array with this form: returning the 80-byte result by
/// value and copying it costs a store-forwarding stall per packet (bench/packet/parser_bench).
inline void parse_into(std::span<const std::uint8_t> bytes, std::size_t total_len,
                       parsed_packet& p) noexcept {
    p = parsed_packet{};
    const std::uint8_t* d = bytes.data();
    const std::size_t n = bytes.size() < total_len ? bytes.size() : total_len;
    if (n < ethernet_header_len) {
        p.error = parse_error::truncated_ethernet;
        return;
    }
    std::uint16_t type = packet::detail::load_be16(d + 12);
    std::size_t off = ethernet_header_len;
    while (type == ether_type::vlan || type == ether_type::qinq) {
        if (p.vlan_count == 2) {
            p.error = parse_error::too_many_vlan_tags;
            return;
        }
        if (off + vlan_tag_len > n) {
            p.error = parse_error::truncated_vlan;
            return;
        }
        p.vlan_tci[p.vlan_count++] = packet::detail::load_be16(d + off);
        type = packet::detail::load_be16(d + off + 2);
        off += vlan_tag_len;
    }
    if (p.vlan_count != 0) {
        p.key.vlan = p.vlan_tci[p.vlan_count - 1] & 0x0fff;
    }
    p.ether_type = type;
    p.l3_offset = static_cast<std::uint16_t>(off);
    if (type == ether_type::ipv4) {
        detail::parse_ipv4(d, n, total_len, off, p);
    } else if (type == ether_type::ipv6) {
        detail::parse_ipv6(d, n, total_len, off, p);
    } else {
        p.l3 = type == ether_type::arp ? l3_type::arp : l3_type::other;
        p.l4_offset = p.payload_offset = static_cast<std::uint16_t>(off);
        p.l3_end = static_cast<std::uint32_t>(total_len);
        return;
    }
    if (p.ok() && p.l3_end < total_len) {
        p.flags |= parse_flag::padded;
    }
}

/// The flow key parse_into would give a TCP or UDP frame (not a fragment) whose layout is already
/// known: L3 (IPv4 without options, or IPv6) at l3_offset after 0..2 VLAN tags, the L4 header of
/// protocol `proto` at l4_offset. Read straight from the bytes, without the walk: for a fast path
/// that guesses a frame's layout (GRO guesses its flows' layout) and then checks the guess by
/// other means; nothing here checks it. The bytes up to l4_offset + 4 must be readable.
/// The key is written as five 8-byte words (not field by field, as the parser does), so that a
/// hash that reads it back at once finds each word in one store (no store-forwarding stall).
inline void flow_key_at(const std::uint8_t* d, std::uint32_t l3_offset, std::uint32_t l4_offset,
                        bool is_v6, std::uint8_t proto, flow_key& k) noexcept {
    using packet::detail::load;
    const std::uint8_t* ip = d + l3_offset;
    auto* out = reinterpret_cast<unsigned char*>(&k);
    const auto put = [&](std::size_t word, std::uint64_t v) { // one 8-byte store each
        std::memcpy(out + 8 * word, &v, sizeof v);
    };
    if (!is_v6) { // the address in bytes 0..3 of its 16, the rest zero
        constexpr int at = std::endian::native == std::endian::little ? 0 : 32;
        put(0, std::uint64_t{load<std::uint32_t>(ip + 12)} << at);
        put(1, 0);
        put(2, std::uint64_t{load<std::uint32_t>(ip + 16)} << at);
        put(3, 0);
    } else {
        put(0, load<std::uint64_t>(ip + 8));
        put(1, load<std::uint64_t>(ip + 16));
        put(2, load<std::uint64_t>(ip + 24));
        put(3, load<std::uint64_t>(ip + 32));
    }
    struct tail {
        std::uint16_t src_port, dst_port, vlan;
        std::uint8_t protocol, ip_version;
    };
    static_assert(sizeof(tail) == 8 && offsetof(flow_key, src_port) == 32 &&
                  offsetof(flow_key, ip_version) == 39);
    const std::uint16_t vlan = l3_offset > ethernet_header_len // innermost tag: TCI, EtherType
                                   ? packet::detail::load_be16(ip - 4) & 0x0fff
                                   : 0;
    put(4, std::bit_cast<std::uint64_t>(tail{packet::detail::load_be16(d + l4_offset),
                                             packet::detail::load_be16(d + l4_offset + 2), vlan,
                                             proto, static_cast<std::uint8_t>(is_v6 ? 6 : 4)}));
}

/// Value-returning form of parse_into, for code that is not per-packet hot.
[[nodiscard]] inline parsed_packet parse(std::span<const std::uint8_t> bytes,
                                         std::size_t total_len) noexcept {
    parsed_packet p;
    parse_into(bytes, total_len, p);
    return p;
}

[[nodiscard]] inline parsed_packet parse(std::span<const std::uint8_t> bytes) noexcept {
    return parse(bytes, bytes.size());
}

} // namespace splitnet::packet
