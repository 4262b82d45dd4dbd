// SPDX-License-Identifier: MIT
// splitnet/offload/gro_segment.hpp: what the GRO engine reads from one TCP or UDP segment, once,
// and the state it keeps for a held aggregate. The merge policies (merge_policy.hpp) compare the
// two; the storage policies (gro_storage.hpp) hold the bytes.
#pragma once

#include <cstdint>

#include <splitnet/packet/checksum.hpp>
#include <splitnet/packet/frame.hpp>
#include <splitnet/packet/ipv4.hpp>
#include <splitnet/packet/ipv6.hpp>
#include <splitnet/packet/parser.hpp>
#include <splitnet/packet/tcp.hpp>
#include <splitnet/packet/udp.hpp>

namespace splitnet::offload {

/// One segment's fields, read from its headers after parse_into.
struct gro_segment {
    packet::frame* f = nullptr;
    packet::parsed_packet p{};
    std::uint64_t hash = 0;
    std::uint32_t payload = 0;     ///< L4 payload bytes (padding excluded)
    std::uint32_t seq = 0;         ///< TCP
    std::uint32_t ack = 0;         ///< TCP
    std::uint32_t payload_sum = 0; ///< one's-complement sum of the payload (valid if has_sum)
    std::uint32_t v6_word0 = 0;    ///< IPv6 version | traffic class | flow label
    std::uint16_t window = 0;      ///< TCP
    std::uint16_t ip_id = 0;       ///< IPv4
    std::uint8_t tcp_flags = 0;
    std::uint8_t ttl = 0; ///< IPv4 TTL or IPv6 hop limit
    std::uint8_t tos = 0; ///< IPv4 TOS or IPv6 traffic class
    bool df = false;
    bool has_sum = false;
    bool is_udp = false;

    [[nodiscard]] const std::uint8_t* bytes() const noexcept { return f->data; }
    [[nodiscard]] const std::uint8_t* tcp() const noexcept { return f->data + p.l4_offset; }
};

/// Why a held aggregate was flushed (each counted in gro_stats).
enum class flush_reason : std::uint8_t {
    end_of_burst = 0, ///< lightweight mode: every burst ends with a flush
    timeout,          ///< held longer than the flush timeout
    final_segment,    ///< merged a segment with PSH or FIN, or shorter than the first (train ends)
    size_limit,       ///< no room for another full segment under the size limit
    segment_limit,    ///< the segment limit
    seq_gap,          ///< next segment not contiguous (gap, overlap, retransmission, reordering)
    tcp_mismatch,     ///< ACK, window, header length or flags differ (exact rules)
    options_mismatch, ///< TCP option bytes differ (a changed TSval ends the train)
    ip_mismatch,      ///< TTL/hop limit, TOS/traffic class incl. ECN, DF, IP ID sequence, L2
    larger_segment,   ///< payload larger than the first segment's
    flow_packet,      ///< a packet of the flow that cannot be merged (ordering)
    evicted,          ///< the flow table was full: the oldest aggregate made room
    count             ///< number of reasons
};

/// Which header bytes of a flow's segments must equal the head's for exact merging: all but the
/// fields that legitimately change from segment to segment (IP length, ID and checksum, TCP seq,
/// PSH/FIN and checksum, UDP length and checksum). One per header layout, shared by flows.
struct header_mask {
    static constexpr std::size_t max_bytes = 128;
    std::uint16_t l3_offset = 0;
    std::uint16_t l4_offset = 0;
    std::uint16_t payload_offset = 0;
    bool is_v6 = false;
    bool is_udp = false;
    std::uint8_t words = 0; ///< full 8-byte words compared from offset 0
    std::uint64_t m[max_bytes / 8] = {};
    std::uint64_t tail = 0; ///< mask of the 8 bytes ending at payload_offset
};

/// A held aggregate. `head` is the first segment's frame (its descriptor, by value); the policies
/// compare new segments against the head's headers in head.data.
struct gro_flow {
    packet::flow_key key{};
    std::uint64_t hash = 0;
    packet::frame head{};
    packet::frame* tail = nullptr;   ///< chain storage: the last descriptor of the chain
    std::uint64_t first_arrival = 0; ///< now_ns when the head arrived (timeouts)
    std::uint32_t next_seq = 0;      ///< TCP: seq the next segment must carry
    std::uint32_t total_payload = 0; ///< payload bytes held
    std::uint32_t payload_sum = 0;   ///< running sum of the payloads, as one block
    std::uint32_t ack = 0;           ///< latest ACK (local-delivery rewrites it)
    std::uint32_t ts_val = 0;        ///< latest TSval (local-delivery)
    std::uint32_t ts_ecr = 0;        ///< latest TSecr (local-delivery)
    std::uint16_t window = 0;        ///< latest window (local-delivery)
    std::uint16_t mss = 0;           ///< first segment's payload: gso_size
    std::uint16_t count = 0;         ///< segments held
    std::uint16_t ip_id = 0;         ///< head's IPv4 ID
    std::uint16_t l3_offset = 0;
    std::uint16_t l4_offset = 0;
    std::uint16_t payload_offset = 0;
    std::uint8_t or_flags = 0;     ///< PSH/FIN merged from later segments
    std::int8_t fixed_id = -1;     ///< -1 unknown (one segment), 0 incrementing, 1 fixed
    std::uint8_t ts_offset = 0xff; ///< local-delivery: TS option offset in the options, or none
    std::uint8_t mask_id = 0xff;   ///< header template for the train fast path, or none
    bool sums_valid = true;        ///< every payload sum is known (complete output possible)
    bool is_v6 = false;
    bool is_udp = false;
    bool ts_rewrite = false;          ///< local-delivery merged newer timestamps/acks/windows
    std::uint32_t prev = 0xffffffffU; ///< arrival-order list
    std::uint32_t next = 0xffffffffU;
};

} // namespace splitnet::offload
