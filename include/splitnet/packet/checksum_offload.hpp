// SPDX-License-Identifier: MIT
// splitnet/packet/checksum_offload.hpp: verify, fill and complete the checksums of a parsed,
// linear packet: the IPv4 header checksum and the TCP/UDP checksum over pseudo-header and
// segment, plus the CHECKSUM_PARTIAL convention (pseudo-header sum in the field, completed by
// whoever sends the packet on: csum_start/csum_offset in offload_info).
#pragma once

#include <cstdint>
#include <span>

#include <splitnet/packet/checksum.hpp>
#include <splitnet/packet/frame.hpp>
#include <splitnet/packet/offload_info.hpp>
#include <splitnet/packet/parser.hpp>

namespace splitnet::packet {

/// Offset of the L4 checksum field within the L4 header (TCP 16, UDP 6), or 0 if none.
[[nodiscard]] constexpr std::uint16_t l4_checksum_field(const parsed_packet& p) noexcept {
    return p.is_tcp() ? 16 : p.is_udp() ? 6 : 0;
}

/// Pseudo-header partial sum for the packet's L4 segment ([l4_offset, l3_end)).
[[nodiscard]] inline std::uint32_t l4_pseudo_header_sum(std::span<const std::uint8_t> bytes,
                                                        const parsed_packet& p) noexcept {
    const std::uint32_t l4_len = p.l3_end - p.l4_offset;
    if (p.l3 == l3_type::ipv4) {
        return pseudo_header_sum_v4(bytes.data() + p.l3_offset + 12,
                                    bytes.data() + p.l3_offset + 16, p.l4_proto, l4_len);
    }
    return pseudo_header_sum_v6(bytes.data() + p.l3_offset + 8, bytes.data() + p.l3_offset + 24,
                                p.l4_proto, l4_len);
}

[[nodiscard]] inline bool ipv4_header_checksum_ok(std::span<const std::uint8_t> bytes,
                                                  const parsed_packet& p) noexcept {
    return p.l3 != l3_type::ipv4 || csum_verifies(bytes.subspan(p.l3_offset, p.l3_header_len()));
}

/// True when the TCP or UDP checksum verifies, or when there is none to check (not TCP/UDP, a
/// fragment, or IPv4 UDP with checksum 0). IPv6 UDP with checksum 0 is invalid (RFC 8200).
[[nodiscard]] inline bool l4_checksum_ok(std::span<const std::uint8_t> bytes,
                                         const parsed_packet& p) noexcept {
    if ((!p.is_tcp() && !p.is_udp()) || (p.flags & parse_flag::ip_fragment) != 0) {
        return true;
    }
    const auto seg = bytes.subspan(p.l4_offset, p.l3_end - p.l4_offset);
    if (p.is_udp() && udp_header{seg.data()}.checksum_raw() == 0) {
        return p.l3 == l3_type::ipv4;
    }
    return csum_verifies(seg, l4_pseudo_header_sum(bytes, p));
}

inline void fill_ipv4_header_checksum(std::span<std::uint8_t> bytes,
                                      const parsed_packet& p) noexcept {
    if (p.l3 != l3_type::ipv4) {
        return;
    }
    ipv4_header ih{bytes.data() + p.l3_offset};
    ih.set_checksum_raw(0);
    ih.set_checksum_raw(csum_fold(csum_partial(bytes.data() + p.l3_offset, p.l3_header_len())));
}

/// Computes and stores the full TCP/UDP checksum (a UDP result of 0 is sent as 0xffff).
inline void fill_l4_checksum(std::span<std::uint8_t> bytes, const parsed_packet& p) noexcept {
    const std::uint16_t field = l4_checksum_field(p);
    if (field == 0 || (p.flags & parse_flag::ip_fragment) != 0) {
        return;
    }
    std::uint8_t* l4 = bytes.data() + p.l4_offset;
    detail::store<std::uint16_t>(l4 + field, 0);
    std::uint16_t c =
        csum_fold(csum_partial(l4, p.l3_end - p.l4_offset, l4_pseudo_header_sum(bytes, p)));
    if (c == 0 && p.is_udp()) {
        c = 0xffff;
    }
    detail::store<std::uint16_t>(l4 + field, c);
}

inline void fill_checksums(std::span<std::uint8_t> bytes, const parsed_packet& p) noexcept {
    fill_ipv4_header_checksum(bytes, p);
    fill_l4_checksum(bytes, p);
}

/// Leaves the L4 checksum partial: stores the folded (uncomplemented) pseudo-header sum and
/// records where the sender completes it, as Linux's CHECKSUM_PARTIAL and virtio NEEDS_CSUM do.
inline void set_partial_checksum(std::span<std::uint8_t> bytes, const parsed_packet& p,
                                 offload_info& o) noexcept {
    const std::uint16_t field = l4_checksum_field(p);
    if (field == 0) {
        return;
    }
    detail::store<std::uint16_t>(bytes.data() + p.l4_offset + field,
                                 csum_fold16(l4_pseudo_header_sum(bytes, p)));
    o.csum = csum_state::partial;
    o.csum_start = p.l4_offset;
    o.csum_offset = field;
}

/// Completes a partial checksum in a linear packet: sums from csum_start to the end of `bytes`
/// (pass the packet without Ethernet padding) and stores the result at csum_start + csum_offset,
/// 0 sent as 0xffff as Linux does. Returns false if those offsets do not fit the packet.
[[nodiscard]] inline bool complete_partial_checksum(std::span<std::uint8_t> bytes,
                                                    offload_info& o) noexcept {
    if (o.csum != csum_state::partial) {
        return true;
    }
    const std::size_t at = std::size_t{o.csum_start} + o.csum_offset;
    if (o.csum_start >= bytes.size() || at + 2 > bytes.size()) {
        return false;
    }
    std::uint8_t* field = bytes.data() + at;
    const std::uint16_t seed = detail::load<std::uint16_t>(field); // the pseudo-header sum
    detail::store<std::uint16_t>(field, 0);
    const std::uint32_t s =
        csum_partial(bytes.data() + o.csum_start, bytes.size() - o.csum_start, seed);
    const std::uint16_t c = csum_fold(s);
    detail::store<std::uint16_t>(field, c == 0 ? std::uint16_t{0xffff} : c);
    o.csum = csum_state::verified;
    return true;
}

/// Completes a partial checksum in a frame of one or more segments: sums bytes [csum_start,
/// len) of the packet (len: the end of its IP packet, so Ethernet padding is left out). The
/// checksum field must lie in the head segment. Returns false if the offsets do not fit.
[[nodiscard]] inline bool complete_partial_checksum(frame& f, std::uint32_t len) noexcept {
    offload_info& o = f.offload;
    if (o.csum != csum_state::partial) {
        return true;
    }
    const std::size_t at = std::size_t{o.csum_start} + o.csum_offset;
    if (len > f.pkt_len || o.csum_start >= len || at + 2 > f.data_len || at + 2 > len) {
        return false;
    }
    std::uint8_t* field = f.data + at;
    const std::uint16_t seed = detail::load<std::uint16_t>(field); // the pseudo-header sum
    detail::store<std::uint16_t>(field, 0);
    std::uint32_t sum = seed;
    std::size_t pos = 0;  // packet offset of the current segment
    std::size_t done = 0; // bytes summed so far, from csum_start
    for (const frame* seg = &f; seg != nullptr && pos < len; seg = seg->next) {
        const std::size_t end = pos + seg->data_len < len ? pos + seg->data_len : len;
        const std::size_t from = pos > o.csum_start ? pos : o.csum_start;
        if (end > from) {
            sum = csum_block_add(sum, csum_partial(seg->data + (from - pos), end - from), done);
            done += end - from;
        }
        pos += seg->data_len;
    }
    const std::uint16_t c = csum_fold(sum);
    detail::store<std::uint16_t>(field, c == 0 ? std::uint16_t{0xffff} : c);
    o.csum = csum_state::verified;
    return true;
}

/// Fills from the parsed headers what a wire form leaves out of the offload metadata (netif
/// carries neither csum_start/csum_offset nor hdr_len): where a partial checksum is completed,
/// and a GSO frame's header length and segment count. False when the headers cannot carry the
/// metadata (a partial checksum without TCP/UDP, TCP GSO on a packet that is not TCP).
[[nodiscard]] inline bool complete_offload_metadata(const parsed_packet& p,
                                                    offload_info& o) noexcept {
    if (!p.ok()) {
        return false;
    }
    if (o.csum == csum_state::partial) {
        const std::uint16_t field = l4_checksum_field(p);
        if (field == 0 || (p.flags & parse_flag::ip_fragment) != 0) {
            return false;
        }
        o.csum_start = p.l4_offset;
        o.csum_offset = field;
    }
    if (o.is_gso()) {
        const bool tcp = o.gso == gso_type::tcpv4 || o.gso == gso_type::tcpv6;
        const bool v4 = p.l3 == l3_type::ipv4;
        if ((tcp && !p.is_tcp()) || (o.gso == gso_type::udp_l4 && !p.is_udp()) ||
            (o.gso == gso_type::tcpv4 && !v4) || (o.gso == gso_type::tcpv6 && v4) ||
            o.gso_size == 0) {
            return false;
        }
        o.hdr_len = p.payload_offset;
        const std::uint32_t payload = p.payload_len();
        o.gso_segs = static_cast<std::uint16_t>((payload + o.gso_size - 1) / o.gso_size);
    }
    return true;
}

} // namespace splitnet::packet
