// SPDX-License-Identifier: MIT
// splitnet/offload/merge_policy.hpp: which segments may join a held aggregate.
//
// merge::exact (default) follows Linux GRO (net/ipv4/tcp_offload.c tcp_gro_receive,
// include/net/gro.h inet_gro_flush, net/ipv6/ip6_offload.c): only what GSO can split back into
// the original segments bit for bit. Against the held aggregate's head, a new segment must have:
// the same L2 header (MACs, VLAN tags); IPv4: same TTL, TOS (so ECN CE on one segment ends the
// train), DF, no options, and an IP ID that is head+count (incrementing) or, with DF, equal to
// the head's (fixed, decided on the second segment); IPv6: same traffic class, flow label, hop
// limit and byte-identical extension headers; TCP: the same header length, reserved bits, flags
// other than PSH/FIN, window, ACK and option bytes, no CWR, seq == the next expected byte, a
// payload no larger than the first segment's. PSH/FIN merge and end the train; RST/SYN/URG,
// like CWR, never merge. UDP (opt-in): same IP rules, every datagram as long as the first, the
// last may be shorter.
//
// merge::local_delivery is for aggregates that end in a local stack (a guest), as FreeBSD's
// tcp_lro does: ACK may advance, the window may change, TCP timestamps may advance (TSval never
// backwards) and the IP ID is not checked; the aggregate carries the latest ACK, window and
// timestamps. Still never across a TOS/ECN change (CE), never across a sequence gap, never
// reordering. Its output is valid for the receiver but is not an exact inverse for GSO.
#pragma once

#include <cstdint>
#include <cstring>

#include <splitnet/offload/gro_segment.hpp>
#include <splitnet/packet/detail/bytes.hpp>

namespace splitnet::offload {

/// Returned by a merge policy when the segment may merge.
inline constexpr flush_reason mergeable = flush_reason::count;

namespace merge_detail {

/// Byte equality for the short runs the rules compare (L2 headers, TCP options: up to 60 bytes)
/// with 8-byte loads and an overlapping tail, instead of a memcmp call.
[[nodiscard]] inline bool same_bytes(const std::uint8_t* a, const std::uint8_t* b,
                                     std::size_t n) noexcept {
    using packet::detail::load;
    if (n >= 8) {
        std::size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            if (load<std::uint64_t>(a + i) != load<std::uint64_t>(b + i)) {
                return false;
            }
        }
        return i == n || load<std::uint64_t>(a + n - 8) == load<std::uint64_t>(b + n - 8);
    }
    if (n >= 4) {
        return load<std::uint32_t>(a) == load<std::uint32_t>(b) &&
               load<std::uint32_t>(a + n - 4) == load<std::uint32_t>(b + n - 4);
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (a[i] != b[i]) {
            return false;
        }
    }
    return true;
}

[[nodiscard]] inline flush_reason check_l2_l3(const gro_flow& fl, const gro_segment& s,
                                              bool check_ip_id) noexcept {
    const std::uint8_t* h = fl.head.data;
    const std::uint8_t* d = s.bytes();
    if (s.p.l3_offset != fl.l3_offset || s.p.l4_offset != fl.l4_offset ||
        !same_bytes(h, d, fl.l3_offset)) {
        return flush_reason::ip_mismatch;
    }
    if (!fl.is_v6) {
        const packet::ipv4_header hi{h + fl.l3_offset};
        if (s.ttl != hi.ttl() || s.tos != hi.tos() || s.df != hi.dont_fragment()) {
            return flush_reason::ip_mismatch;
        }
        if (check_ip_id) {
            const auto delta = static_cast<std::uint16_t>(s.ip_id - fl.ip_id);
            if (fl.fixed_id < 0) {
                if (!(delta == fl.count || (delta == 0 && s.df))) {
                    return flush_reason::ip_mismatch;
                }
            } else if (delta != (fl.fixed_id == 1 ? 0 : fl.count)) {
                return flush_reason::ip_mismatch;
            }
        }
        return mergeable;
    }
    const packet::ipv6_header hi{h + fl.l3_offset};
    if (s.v6_word0 != hi.first_word() || s.ttl != hi.hop_limit()) {
        return flush_reason::ip_mismatch;
    }
    const std::size_t ext = fl.l4_offset - fl.l3_offset - packet::ipv6_header_len;
    if (ext != 0 && !same_bytes(h + fl.l3_offset + packet::ipv6_header_len,
                                d + fl.l3_offset + packet::ipv6_header_len, ext)) {
        return flush_reason::ip_mismatch;
    }
    return mergeable;
}

[[nodiscard]] inline flush_reason check_sizes(const gro_flow& fl, const gro_segment& s,
                                              std::uint32_t max_ip_len,
                                              std::uint16_t max_segments) noexcept {
    if (s.payload > fl.mss) {
        return flush_reason::larger_segment;
    }
    if (fl.count >= max_segments) {
        return flush_reason::segment_limit;
    }
    const std::uint32_t ip_len = fl.payload_offset - fl.l3_offset + fl.total_payload + s.payload;
    if (ip_len > max_ip_len) {
        return flush_reason::size_limit;
    }
    return mergeable;
}

/// Value of the TCP timestamp option at `off` within the options (TSval, TSecr).
inline void read_ts(const std::uint8_t* opts, std::uint8_t off, std::uint32_t& val,
                    std::uint32_t& ecr) noexcept {
    val = packet::detail::load_be32(opts + off + 2);
    ecr = packet::detail::load_be32(opts + off + 6);
}

} // namespace merge_detail

namespace merge {

struct exact {
    static constexpr bool rewrites_headers = false;
    /// A masked compare of whole headers decides (gro_engine's train fast path).
    static constexpr bool header_template = true;

    [[nodiscard]] static flush_reason check(const gro_flow& fl, const gro_segment& s,
                                            std::uint32_t max_ip_len,
                                            std::uint16_t max_segments) noexcept {
        if (const flush_reason r = merge_detail::check_l2_l3(fl, s, true); r != mergeable) {
            return r;
        }
        if (!s.is_udp) {
            const std::uint8_t* th = fl.head.data + fl.l4_offset;
            const std::uint8_t* sh = s.tcp();
            const packet::tcp_header h{th};
            const packet::tcp_header n{sh};
            // Linux: CWR never merges; word 3 (offset, reserved, flags, window) must match
            // but for CWR, FIN and PSH; ACK and every option byte must match.
            constexpr std::uint32_t ignore =
                packet::tcp_flag::cwr | packet::tcp_flag::fin | packet::tcp_flag::psh;
            if ((s.tcp_flags & packet::tcp_flag::cwr) != 0 ||
                ((n.word3() ^ h.word3()) & ~(ignore << 16)) != 0 || s.ack != fl.ack) {
                return flush_reason::tcp_mismatch;
            }
            const std::size_t hl = h.header_len();
            if (hl > packet::tcp_min_header_len &&
                !merge_detail::same_bytes(th + packet::tcp_min_header_len,
                                          sh + packet::tcp_min_header_len,
                                          hl - packet::tcp_min_header_len)) {
                return flush_reason::options_mismatch;
            }
            if (s.seq != fl.next_seq) {
                return flush_reason::seq_gap;
            }
        }
        return merge_detail::check_sizes(fl, s, max_ip_len, max_segments);
    }

    static void on_merge(gro_flow&, const gro_segment&) noexcept {}
};

struct local_delivery {
    static constexpr bool rewrites_headers = true;
    static constexpr bool header_template = false;

    [[nodiscard]] static flush_reason check(const gro_flow& fl, const gro_segment& s,
                                            std::uint32_t max_ip_len,
                                            std::uint16_t max_segments) noexcept {
        if (const flush_reason r = merge_detail::check_l2_l3(fl, s, s.is_udp); r != mergeable) {
            return r;
        }
        if (!s.is_udp) {
            const std::uint8_t* th = fl.head.data + fl.l4_offset;
            const std::uint8_t* sh = s.tcp();
            const packet::tcp_header h{th};
            const packet::tcp_header n{sh};
            constexpr std::uint32_t ignore =
                packet::tcp_flag::cwr | packet::tcp_flag::fin | packet::tcp_flag::psh;
            // The window (low 16 bits of word 3) may change; offset, reserved bits, flags may not.
            if ((s.tcp_flags & packet::tcp_flag::cwr) != 0 ||
                ((n.word3() ^ h.word3()) & ~((ignore << 16) | 0xffffU)) != 0) {
                return flush_reason::tcp_mismatch;
            }
            // ACK may advance, never go back.
            if (static_cast<std::int32_t>(s.ack - fl.ack) < 0) {
                return flush_reason::tcp_mismatch;
            }
            const std::size_t hl = h.header_len();
            const std::size_t olen = hl - packet::tcp_min_header_len;
            const std::uint8_t* ho = th + packet::tcp_min_header_len;
            const std::uint8_t* so = sh + packet::tcp_min_header_len;
            if (olen != 0) {
                const std::uint8_t ts = fl.ts_offset;
                if (ts == no_ts) {
                    if (!merge_detail::same_bytes(ho, so, olen)) {
                        return flush_reason::options_mismatch;
                    }
                } else {
                    // Same bytes outside the timestamp values; TSval never backwards.
                    if (std::memcmp(ho, so, ts + 2U) != 0 ||
                        std::memcmp(ho + ts + 10, so + ts + 10, olen - ts - 10U) != 0) {
                        return flush_reason::options_mismatch;
                    }
                    std::uint32_t val = 0, ecr = 0;
                    merge_detail::read_ts(so, ts, val, ecr);
                    if (static_cast<std::int32_t>(val - fl.ts_val) < 0) {
                        return flush_reason::options_mismatch;
                    }
                }
            }
            if (s.seq != fl.next_seq) {
                return flush_reason::seq_gap;
            }
        }
        return merge_detail::check_sizes(fl, s, max_ip_len, max_segments);
    }

    static void on_merge(gro_flow& fl, const gro_segment& s) noexcept {
        if (s.is_udp) {
            return;
        }
        if (s.ack != fl.ack || s.window != fl.window) {
            fl.ts_rewrite = true;
        }
        fl.ack = s.ack;
        fl.window = s.window;
        if (fl.ts_offset != no_ts) {
            std::uint32_t val = 0, ecr = 0;
            merge_detail::read_ts(s.tcp() + packet::tcp_min_header_len, fl.ts_offset, val, ecr);
            fl.ts_rewrite |= val != fl.ts_val || ecr != fl.ts_ecr;
            fl.ts_val = val;
            fl.ts_ecr = ecr;
        }
    }

    static constexpr std::uint8_t no_ts = 0xff;
};

} // namespace merge

template <class M>
concept merge_policy = requires(const gro_flow& fl, gro_flow& mfl, const gro_segment& s) {
    { M::rewrites_headers } -> std::convertible_to<bool>;
    { M::header_template } -> std::convertible_to<bool>;
    { M::check(fl, s, 65535U, std::uint16_t{64}) } noexcept -> std::same_as<flush_reason>;
    { M::on_merge(mfl, s) } noexcept;
};
static_assert(merge_policy<merge::exact>);
static_assert(merge_policy<merge::local_delivery>);

} // namespace splitnet::offload
