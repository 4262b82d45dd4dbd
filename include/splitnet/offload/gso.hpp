// SPDX-License-Identifier: MIT
// splitnet/offload/gso.hpp: generic segmentation offload in software: splits an aggregate (a GRO
// chain, an LRO frame, a TSO frame from a guest or a TAP device) into gso_size segments, as Linux
// tcp_gso_segment / udp4_ufo... (__udp_gso_segment) and inet_gso_segment do.
//
// Each segment gets the head's headers with: IP total/payload length; IPv4 ID head+i (or the
// head's for gso_fixed_id) and a fresh header checksum; TCP seq advanced by the bytes before it,
// FIN and PSH on the last segment only, CWR on the first only; UDP length per datagram; and its
// L4 checksum completed (or left partial for an egress that completes it). For an aggregate made
// by gro_engine in exact mode the result equals the original segments byte for byte.
//
// In place: a GRO chain whose segments are exactly gso_size each (the last may be shorter) and
// whose buffers kept room for headers before each payload (they held the originals) is split
// without copying a payload byte: headers are written back in front of each chained payload and
// the chain's own buffers become the segments. Anything else is copied into fresh buffers of the
// segmenter's pool; then the input is left to the caller (gso_result::consumed_input false).
// The input's headers are parsed, not taken from its metadata: a frame from a guest is untrusted.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

#include <splitnet/packet/buffer_pool.hpp>
#include <splitnet/packet/checksum.hpp>
#include <splitnet/packet/frame.hpp>
#include <splitnet/packet/ipv4.hpp>
#include <splitnet/packet/ipv6.hpp>
#include <splitnet/packet/parser.hpp>
#include <splitnet/packet/tcp.hpp>
#include <splitnet/packet/udp.hpp>

namespace splitnet::offload {

struct gso_stats {
    std::uint64_t frames = 0;     ///< frames offered
    std::uint64_t segmented = 0;  ///< aggregates split
    std::uint64_t segments = 0;   ///< segments produced from them
    std::uint64_t in_place = 0;   ///< aggregates split without copying payload
    std::uint64_t copied = 0;     ///< aggregates split by copying into new buffers
    std::uint64_t no_room = 0;    ///< output span too small for the segments
    std::uint64_t no_buffers = 0; ///< the pool could not supply the copies
    std::uint64_t malformed = 0;  ///< headers that do not parse or match the GSO metadata
};

struct gso_result {
    std::size_t segments = 0;    ///< frames written to out (0: failed, input untouched)
    bool consumed_input = false; ///< the input's buffers are now (some of) the outputs
};

class gso_segmenter {
public:
    /// `pool` supplies buffers for copied segments. `complete_checksums` false leaves each
    /// segment's L4 checksum partial (csum_start/csum_offset) for an egress that completes it.
    explicit gso_segmenter(packet::buffer_pool& pool, bool complete_checksums = true) noexcept
        : pool_(pool), complete_(complete_checksums) {}

    [[nodiscard]] const gso_stats& stats() const noexcept { return stats_; }

    /// Splits `f` into out. A frame without GSO metadata is passed through as one segment
    /// (consumed_input true).
    [[nodiscard]] gso_result segment(const packet::frame& input,
                                     std::span<packet::frame> out) noexcept {
        const packet::frame f = input; // `input` may live in `out`
        ++stats_.frames;
        if (!f.offload.is_gso()) {
            if (out.empty()) {
                ++stats_.no_room;
                return {};
            }
            out[0] = f;
            return {1, true};
        }
        layout l;
        if (!read_layout(f, l)) {
            ++stats_.malformed;
            return {};
        }
        const std::uint32_t n = (l.payload + l.mss - 1) / l.mss;
        if (n > out.size()) {
            ++stats_.no_room;
            return {};
        }
        ++stats_.segmented;
        stats_.segments += n;
        if (splittable_in_place(f, l, n)) {
            split_in_place(f, l, n, out);
            ++stats_.in_place;
            return {n, true};
        }
        if (l.hdr + l.mss > pool_.frame_size() - pool_.default_headroom()) {
            // Each copied segment is one buffer: headers and one MSS must fit in it (an MSS
            // comes from a guest's GSO extra, which may name any size).
            ++stats_.malformed;
            stats_.segmented -= 1;
            stats_.segments -= n;
            return {};
        }
        if (pool_.alloc_burst(out.first(n)) != n) {
            for (std::uint32_t i = 0; i < n; ++i) {
                if (out[i].data != nullptr) {
                    pool_.free(out[i]);
                }
            }
            ++stats_.no_buffers;
            stats_.segmented -= 1;
            stats_.segments -= n;
            return {};
        }
        split_copy(f, l, n, out);
        ++stats_.copied;
        return {n, false};
    }

private:
    struct layout {
        packet::parsed_packet p;
        std::uint32_t hdr = 0;     ///< bytes of headers in front of the payload
        std::uint32_t payload = 0; ///< total payload
        std::uint32_t mss = 0;
        bool udp = false;
    };

    bool read_layout(const packet::frame& f, layout& l) const noexcept {
        packet::parse_into(f.bytes(), f.pkt_len, l.p);
        const packet::parsed_packet& p = l.p;
        if (!p.ok() || (p.flags & packet::parse_flag::ip_fragment) != 0) {
            return false;
        }
        const packet::gso_type t = f.offload.gso;
        l.udp = t == packet::gso_type::udp_l4;
        const bool v6 = p.l3 == packet::l3_type::ipv6;
        if ((l.udp && !p.is_udp()) || (!l.udp && !p.is_tcp()) ||
            (t == packet::gso_type::tcpv4 && v6) || (t == packet::gso_type::tcpv6 && !v6)) {
            return false;
        }
        l.hdr = p.payload_offset;
        l.payload = p.payload_len();
        l.mss = f.offload.gso_size;
        return l.mss != 0 && l.payload != 0 && l.hdr <= f.data_len;
    }

    /// A chain of exactly mss-sized payloads, each with room for the headers before it.
    static bool splittable_in_place(const packet::frame& f, const layout& l,
                                    std::uint32_t n) noexcept {
        if (f.nb_segs != n || f.data_len != l.hdr + l.mss) {
            return n == 1 && f.next == nullptr;
        }
        std::uint32_t i = 1;
        for (const packet::frame* s = f.next; s != nullptr; s = s->next, ++i) {
            const bool last = s->next == nullptr;
            if ((last ? s->data_len > l.mss : s->data_len != l.mss) || s->headroom < l.hdr) {
                return false;
            }
        }
        return i == n;
    }

    void split_in_place(const packet::frame& f, const layout& l, std::uint32_t n,
                        std::span<packet::frame> out) noexcept {
        // Segments 1..n-1 first: they copy the head's headers, which segment 0 then rewrites.
        const packet::frame* s = f.next;
        for (std::uint32_t i = 1; i < n; ++i, s = s->next) {
            packet::frame& o = out[i];
            o = *s;
            o.data -= l.hdr;
            o.headroom = static_cast<std::uint16_t>(o.headroom - l.hdr);
            o.data_len += l.hdr;
            std::memcpy(o.data, f.data, l.hdr);
            finish_segment(f, l, i, n, o);
        }
        packet::frame& o = out[0];
        o = f;
        o.data_len = l.hdr + (n == 1 ? l.payload : l.mss);
        finish_segment(f, l, 0, n, o);
    }

    /// `payload_sum`: the partial sum of the segment's payload when the copy computed it.
    void finish_segment(const packet::frame& f, const layout& l, std::uint32_t i, std::uint32_t n,
                        packet::frame& o,
                        const std::uint32_t* payload_sum = nullptr) const noexcept {
        o.pkt_len = o.data_len;
        o.next = nullptr;
        o.nb_segs = 1;
        o.port = f.port;
        o.flags = f.flags;
        o.rx_hash = f.rx_hash;
        fix_headers(f, l, i, n, o, payload_sum);
    }

    void split_copy(const packet::frame& f, const layout& l, std::uint32_t n,
                    std::span<packet::frame> out) noexcept {
        // Walk the payload across the input's segments.
        const packet::frame* seg = &f;
        std::uint32_t seg_off = l.hdr; // offset in the current input segment
        for (std::uint32_t i = 0; i < n; ++i) {
            packet::frame& o = out[i];
            const std::uint32_t len = i + 1 < n ? l.mss : l.payload - l.mss * (n - 1);
            std::memcpy(o.data, f.data, l.hdr);
            std::uint32_t done = 0;
            std::uint32_t sum = 0; // the payload's partial sum, when checksums are completed
            while (done < len && seg != nullptr) {
                if (seg_off == seg->data_len) {
                    seg = seg->next;
                    seg_off = 0;
                    continue;
                }
                const std::uint32_t k =
                    seg->data_len - seg_off < len - done ? seg->data_len - seg_off : len - done;
                std::uint8_t* to = o.data + l.hdr + done;
                if (complete_) { // copy and sum in one pass over the payload
                    sum = packet::csum_block_add(
                        sum, packet::csum_partial_copy(to, seg->data + seg_off, k), done);
                } else {
                    std::memcpy(to, seg->data + seg_off, k);
                }
                done += k;
                seg_off += k;
            }
            o.data_len = l.hdr + len;
            finish_segment(f, l, i, n, o, complete_ ? &sum : nullptr);
        }
    }

    /// Writes segment i of n's header fields and checksums (its bytes are in place in o).
    void fix_headers(const packet::frame& f, const layout& l, std::uint32_t i, std::uint32_t n,
                     packet::frame& o, const std::uint32_t* payload_sum) const noexcept {
        const packet::parsed_packet& p = l.p;
        std::uint8_t* d = o.data;
        const std::uint32_t len = o.data_len - l.hdr;
        const std::uint32_t l4_len = l.hdr - p.l4_offset + len;
        if (p.l3 == packet::l3_type::ipv4) {
            packet::ipv4_header ih{d + p.l3_offset};
            ih.set_total_length(static_cast<std::uint16_t>(l.hdr - p.l3_offset + len));
            if (!f.offload.gso_fixed_id) {
                ih.set_id(
                    static_cast<std::uint16_t>(packet::ipv4_header{f.data + p.l3_offset}.id() + i));
            }
            ih.set_checksum_raw(0);
            ih.set_checksum_raw(
                packet::csum_fold(packet::csum_partial(d + p.l3_offset, p.l3_header_len())));
        } else {
            packet::ipv6_header{d + p.l3_offset}.set_payload_length(
                static_cast<std::uint16_t>(l.hdr - p.l3_offset - packet::ipv6_header_len + len));
        }
        std::uint8_t* l4 = d + p.l4_offset;
        std::uint16_t field = 16;
        if (!l.udp) {
            packet::tcp_header th{l4};
            th.set_seq(packet::tcp_header{f.data + p.l4_offset}.seq() + i * l.mss);
            std::uint8_t flags = th.flags();
            if (i + 1 != n) {
                flags = static_cast<std::uint8_t>(flags &
                                                  ~(packet::tcp_flag::fin | packet::tcp_flag::psh));
            }
            if (i != 0) {
                flags = static_cast<std::uint8_t>(flags & ~packet::tcp_flag::cwr);
            }
            th.set_flags(flags);
        } else {
            packet::udp_header{l4}.set_length(static_cast<std::uint16_t>(l4_len));
            field = 6;
        }
        const std::uint8_t proto = l.udp ? packet::ip_proto::udp : packet::ip_proto::tcp;
        const std::uint8_t* ip = d + p.l3_offset;
        const std::uint32_t pseudo =
            p.l3 == packet::l3_type::ipv4
                ? packet::pseudo_header_sum_v4(ip + 12, ip + 16, proto, l4_len)
                : packet::pseudo_header_sum_v6(ip + 8, ip + 24, proto, l4_len);
        packet::detail::store<std::uint16_t>(l4 + field, 0);
        o.offload = {};
        if (complete_) {
            std::uint32_t sum = 0;
            if (payload_sum != nullptr) { // only the headers are left to add
                const std::uint32_t hdr_len = l.hdr - p.l4_offset;
                sum = packet::csum_block_add(packet::csum_partial(l4, hdr_len, pseudo),
                                             *payload_sum, hdr_len);
            } else {
                sum = packet::csum_partial(l4, l4_len, pseudo);
            }
            std::uint16_t c = packet::csum_fold(sum);
            if (c == 0 && l.udp) {
                c = 0xffff;
            }
            packet::detail::store<std::uint16_t>(l4 + field, c);
            o.offload.csum = packet::csum_state::verified;
        } else {
            packet::detail::store<std::uint16_t>(l4 + field, packet::csum_fold16(pseudo));
            o.offload.csum = packet::csum_state::partial;
            o.offload.csum_start = p.l4_offset;
            o.offload.csum_offset = field;
        }
    }

    packet::buffer_pool& pool_;
    bool complete_;
    gso_stats stats_{};
};

} // namespace splitnet::offload
