// SPDX-License-Identifier: MIT
// splitnet/offload/gro.hpp: the receive-offload aggregator (GRO, and LRO with linear storage).
// Anchors: Linux GRO (net/core/gro.c, tcp_offload.c, udp_offload.c), DPDK librte_gro (the burst
// API shape), FreeBSD tcp_lro (local delivery), the LRO-in-Xen seed paper (000).
//
// gro_engine<Merge, Storage> takes bursts of frames and gives back frames: aggregates of merged
// TCP (and, opt-in, UDP) segments, and everything it did not merge, untouched. It never reorders
// a flow and never drops a frame: a frame that cannot join its flow's aggregate first flushes that
// aggregate, then goes out (or starts a new one). What is never merged goes straight out: non-IP,
// IPv4 with options, fragments, other protocols, parse errors, segments whose checksum fails,
// frames that already carry GSO metadata or trailing padding, segments without payload and those
// with SYN/RST/URG.
//
// Flow table: open addressing over a fixed number of flow slots, keyed by the flow key and hashed
// with XXH3 (or the NIC's RX hash when the frame has one), so lookup cost does not grow with the
// number of flows (DPDK librte_gro scans its flows linearly). At most max_flows aggregates are
// held; a new flow beyond that evicts the oldest. Held aggregates also form a list in arrival
// order, which is their deadline order (one timeout for all), so timeouts cost O(expired).
// A segment that continues a held aggregate skips the parser (join_held_flow): the flow the last
// segment joined, or the one whose key reads out of the frame at the newest flow's layout, is
// checked with one masked compare of the whole header against the aggregate's head. Trains and
// interleaved flows alike then cost about 300 and 500 instructions a segment, against ~700 for
// the full path (bench/offload/callgrind.sh).
//
// Flushing: in lightweight mode (hold_across_bursts false) every aggregate goes out at the end of
// the burst; otherwise aggregates stay across bursts until a rule ends them (final segment, size,
// segment count, mismatch, eviction) or flush_timeout_ns passes (flush_expired, next_deadline
// for the caller's timer). Each flush is counted by reason.
//
// Output: an aggregate has correct IP lengths (IPv4 header checksum updated incrementally), the
// union of PSH/FIN, and offload metadata (gso_type, gso_size = the first segment's payload,
// gso_segs, hdr_len, gso_ecn when the head has CWR, gso_fixed_id for fixed IPv4 IDs). Its L4
// checksum is left partial (pseudo-header sum, csum_start/csum_offset: the consumer finishes it,
// as virtio NEEDS_CSUM and Xen's csum_blank ask) or completed from the segments' payload sums
// without reading the payload again (complete_checksum).
//
// Checksums in: a segment whose frame says csum_state::verified (the NIC checked it) or partial
// (a local sender) is trusted; any other is verified in software when validate_checksums is set
// (the default: merging a corrupted segment and recomputing the aggregate's checksum would launder
// the corruption, FreeBSD's D13561 lesson), and a failing segment is passed through untouched.
//
// Capacity rule: receive_burst consumes at most out.size() - held() frames of `in`, so every frame
// it could emit (passed through, or an aggregate it flushes) fits in `out`.
//
// Threading: one engine per RX queue / worker (like a NAPI instance); not shared.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include <splitnet/config.hpp>
#include <splitnet/offload/gro_segment.hpp>
#include <splitnet/offload/gro_storage.hpp>
#include <splitnet/offload/merge_policy.hpp>
#include <splitnet/packet/checksum.hpp>
#include <splitnet/packet/checksum_offload.hpp>
#include <splitnet/packet/flow_key.hpp>
#include <splitnet/packet/frame.hpp>
#include <splitnet/packet/parser.hpp>

namespace splitnet::offload {

struct gro_config {
    std::uint32_t max_flows = 1024;     ///< aggregates held at once
    std::uint32_t max_ip_len = 65535;   ///< largest aggregate, as its IP length (Linux: 64 KiB)
    std::uint16_t max_segments = 64;    ///< segments per aggregate
    bool udp = false;                   ///< UDP datagram GRO (off: many consumers break on it)
    bool hold_across_bursts = false;    ///< false: lightweight, everything flushed per burst
    std::uint64_t flush_timeout_ns = 0; ///< held across bursts: flush after this long (0: never)
    bool complete_checksum = false;     ///< complete the aggregate's L4 checksum (else partial)
    bool validate_checksums = true;     ///< verify segments the NIC did not verify
    std::uint64_t hash_seed = 0x5eed5eed5eedULL; ///< flow hash seed (pick one at random per host)
};

/// Counters, ethtool -S style.
struct gro_stats {
    std::uint64_t rx_frames = 0;           ///< frames offered
    std::uint64_t rx_segments = 0;         ///< TCP/UDP segments considered for merging
    std::uint64_t merged = 0;              ///< segments that joined an aggregate
    std::uint64_t aggregates = 0;          ///< aggregates of two or more segments sent out
    std::uint64_t aggregated_segments = 0; ///< segments in those aggregates (ratio: / aggregates)
    std::uint64_t singles = 0;             ///< held segments that went out alone
    std::uint64_t flows_created = 0;
    std::uint64_t flush[static_cast<std::size_t>(flush_reason::count)] = {}; ///< by flush_reason
    std::uint64_t pass_not_ip = 0;       ///< neither IPv4 nor IPv6
    std::uint64_t pass_ip_options = 0;   ///< IPv4 with options
    std::uint64_t pass_fragment = 0;     ///< IP fragments
    std::uint64_t pass_protocol = 0;     ///< not TCP (nor UDP with udp on)
    std::uint64_t pass_malformed = 0;    ///< parse errors
    std::uint64_t pass_bad_checksum = 0; ///< segments whose L4 checksum failed
    std::uint64_t pass_gso = 0;          ///< frames already carrying GSO metadata
    std::uint64_t pass_padded = 0;       ///< bytes after the IP packet (Ethernet padding)
    std::uint64_t pass_unheld = 0;       ///< no payload, or SYN/RST/URG/PSH/FIN with nothing held
    std::uint64_t pass_unstorable = 0;   ///< frames the storage cannot hold (not pool frames)

    [[nodiscard]] std::uint64_t flushes(flush_reason r) const noexcept {
        return flush[static_cast<std::size_t>(r)];
    }
};

struct gro_result {
    std::size_t consumed = 0; ///< frames taken from `in`
    std::size_t produced = 0; ///< frames written to `out`
};

template <merge_policy Merge = merge::exact, storage_policy Storage = storage::chain>
class gro_engine {
public:
    static constexpr std::size_t chunk = 32; ///< frames parsed ahead of processing

    gro_engine(const gro_config& cfg, Storage storage)
        : cfg_(check(cfg)), storage_(std::move(storage)),
          flows_(std::make_unique<gro_flow[]>(cfg.max_flows)),
          index_mask_(std::bit_ceil(cfg.max_flows * 2U) - 1),
          index_(std::make_unique<std::uint32_t[]>(std::size_t{index_mask_} + 1)),
          seg_(std::make_unique<gro_segment[]>(chunk)) {
        for (std::uint32_t i = 0; i <= index_mask_; ++i) {
            index_[i] = none;
        }
        for (std::uint32_t i = 0; i < cfg_.max_flows; ++i) {
            flows_[i].next = i + 1 < cfg_.max_flows ? i + 1 : none;
        }
        free_ = 0;
    }
    gro_engine(const gro_engine&) = delete;
    gro_engine& operator=(const gro_engine&) = delete;

    [[nodiscard]] const gro_stats& stats() const noexcept { return stats_; }
    [[nodiscard]] const gro_config& config() const noexcept { return cfg_; }
    [[nodiscard]] Storage& storage() noexcept { return storage_; }
    /// Aggregates held now.
    [[nodiscard]] std::uint32_t held() const noexcept { return held_; }
    /// When the oldest held aggregate times out (max() if none, or no timeout).
    [[nodiscard]] std::uint64_t next_deadline() const noexcept {
        return oldest_ == none || cfg_.flush_timeout_ns == 0
                   ? std::numeric_limits<std::uint64_t>::max()
                   : flows_[oldest_].first_arrival + cfg_.flush_timeout_ns;
    }

    /// Feeds a burst (see the capacity rule above). The engine owns the frames it consumes: it
    /// hands each back in `out`, now or later, alone or inside an aggregate.
    [[nodiscard]] gro_result receive_burst(std::span<packet::frame> in,
                                           std::span<packet::frame> out,
                                           std::uint64_t now_ns) noexcept {
        out_ = out;
        produced_ = 0;
        const std::size_t room = out.size() > held_ ? out.size() - held_ : 0;
        const std::size_t n = in.size() < room ? in.size() : room;
        for (std::size_t base = 0; base < n; base += chunk) {
            const std::size_t m = n - base < chunk ? n - base : chunk;
            for (std::size_t i = 0; i < m; ++i) {
                SPLITNET_PREFETCH(in[base + i].data);
            }
            for (std::size_t i = 0; i < m; ++i) {
                // A segment that continues a held aggregate is checked against the head's headers
                // with one masked compare, without parse (join_held_flow).
                if (!join_held_flow(in[base + i])) {
                    classify(in[base + i], seg_[i]);
                    process(seg_[i], now_ns);
                }
            }
        }
        stats_.rx_frames += n;
        if (!cfg_.hold_across_bursts) {
            flush_all_held(flush_reason::end_of_burst);
        } else if (cfg_.flush_timeout_ns != 0) {
            expire(now_ns);
        }
        return {n, produced_};
    }

    /// Flushes aggregates held for flush_timeout_ns or longer; returns frames written to out
    /// (at most out.size(): the oldest go first).
    [[nodiscard]] std::size_t flush_expired(std::uint64_t now_ns,
                                            std::span<packet::frame> out) noexcept {
        out_ = out;
        produced_ = 0;
        expire(now_ns);
        return produced_;
    }

    /// Flushes every held aggregate (up to out.size(), oldest first).
    [[nodiscard]] std::size_t flush_all(std::span<packet::frame> out) noexcept {
        out_ = out;
        produced_ = 0;
        flush_all_held(flush_reason::timeout);
        return produced_;
    }

private:
    static constexpr std::uint32_t none = 0xffffffffU;
    static constexpr std::uint8_t final_flags = packet::tcp_flag::urg | packet::tcp_flag::psh |
                                                packet::tcp_flag::rst | packet::tcp_flag::syn |
                                                packet::tcp_flag::fin;
    enum class kind : std::uint8_t { candidate, pass, pass_flow };
    static constexpr std::uint8_t no_mask = 0xff;
    static constexpr std::size_t max_masks = 16;

    static const gro_config& check(const gro_config& c) {
        if (c.max_flows == 0 || c.max_flows > (1U << 24)) {
            SPLITNET_THROW(std::invalid_argument("gro_engine: max_flows must be 1..16777216, got " +
                                                 std::to_string(c.max_flows)));
        }
        if (c.max_ip_len < 576 || c.max_ip_len > 65535) {
            SPLITNET_THROW(std::invalid_argument("gro_engine: max_ip_len must be 576..65535, got " +
                                                 std::to_string(c.max_ip_len)));
        }
        if (c.max_segments < 2) {
            SPLITNET_THROW(std::invalid_argument("gro_engine: max_segments must be at least 2"));
        }
        return c;
    }

    // ---- classification -------------------------------------------------------------------

    /// Parses a frame and reads what the rules need. seg.payload == 0 with kind pass: not a
    /// candidate. The verdict goes in seg.p.flags' unused high bit... kept in kind_ instead.
    void classify(packet::frame& f, gro_segment& s) noexcept {
        s.f = &f;
        packet::parse_into(f.bytes(), f.pkt_len, s.p);
        kind_of(s) = kind::pass;
        const packet::parsed_packet& p = s.p;
        if (SPLITNET_UNLIKELY(!p.ok())) {
            ++stats_.pass_malformed;
            return;
        }
        if (p.l3 != packet::l3_type::ipv4 && p.l3 != packet::l3_type::ipv6) {
            ++stats_.pass_not_ip;
            return;
        }
        if ((p.flags & packet::parse_flag::ip_options) != 0) {
            ++stats_.pass_ip_options;
            return;
        }
        if ((p.flags & packet::parse_flag::ip_fragment) != 0) {
            ++stats_.pass_fragment;
            return;
        }
        s.is_udp = p.is_udp();
        if (!p.is_tcp() && !(s.is_udp && cfg_.udp)) {
            ++stats_.pass_protocol;
            return;
        }
        // From here the frame belongs to a flow we may hold: a pass must flush that flow first.
        kind_of(s) = kind::pass_flow;
        if (f.offload.is_gso() || f.nb_segs != 1) {
            ++stats_.pass_gso;
            return;
        }
        if ((p.flags & packet::parse_flag::padded) != 0) {
            ++stats_.pass_padded; // Linux: tot_len != length flushes; GSO could not restore it
            return;
        }
        const std::uint8_t* d = f.data;
        s.payload = p.payload_len();
        if (p.l3 == packet::l3_type::ipv4) {
            const packet::ipv4_header ih{d + p.l3_offset};
            s.ttl = ih.ttl();
            s.tos = ih.tos();
            s.df = ih.dont_fragment();
            s.ip_id = ih.id();
        } else {
            const packet::ipv6_header ih{d + p.l3_offset};
            s.ttl = ih.hop_limit();
            s.v6_word0 = ih.first_word();
            s.tos = ih.traffic_class();
        }
        if (!s.is_udp) {
            const packet::tcp_header th{d + p.l4_offset};
            s.seq = th.seq();
            s.ack = th.ack_seq();
            s.window = th.window();
            s.tcp_flags = th.flags();
        } else if (p.l3 == packet::l3_type::ipv4 &&
                   packet::udp_header{d + p.l4_offset}.checksum_raw() == 0) {
            ++stats_.pass_protocol; // no checksum: Linux does not coalesce these either
            return;
        }
        if (!checksum_in(f, s)) {
            ++stats_.pass_bad_checksum;
            return;
        }
        ++stats_.rx_segments;
        kind_of(s) = kind::candidate;
    }

    /// Establishes the segment's payload sum when the output needs it, and verifies the L4
    /// checksum of segments nobody verified. False: the checksum is wrong.
    bool checksum_in(const packet::frame& f, gro_segment& s) noexcept {
        const packet::parsed_packet& p = s.p;
        s.has_sum = false;
        const bool want = cfg_.complete_checksum;
        const std::uint8_t* l4 = f.data + p.l4_offset;
        const std::uint32_t l4_len = p.l3_end - p.l4_offset;
        const std::uint32_t hdr = p.l4_header_len();
        if (f.offload.csum == packet::csum_state::none && cfg_.validate_checksums) {
            const std::uint32_t pseudo = packet::l4_pseudo_header_sum(f.bytes(), p);
            s.payload_sum = packet::csum_partial(l4 + hdr, s.payload);
            const std::uint32_t all =
                packet::csum_partial(l4, hdr, csum_add_parts(pseudo, s.payload_sum, hdr));
            s.has_sum = true;
            return packet::csum_fold16(all) == 0xffffU;
        }
        if (!want) {
            return true;
        }
        if (f.offload.csum == packet::csum_state::partial) {
            s.payload_sum = packet::csum_partial(l4 + hdr, s.payload); // the field holds no sum
        } else {
            // A valid checksum field encodes the payload's sum: payload = ~(pseudo + header).
            const std::uint32_t pseudo = packet::l4_pseudo_header_sum(f.bytes(), p);
            s.payload_sum = static_cast<std::uint16_t>(
                ~packet::csum_fold16(packet::csum_partial(l4, hdr, pseudo)));
        }
        (void)l4_len;
        s.has_sum = true;
        return true;
    }

    static std::uint32_t csum_add_parts(std::uint32_t pseudo, std::uint32_t payload,
                                        std::uint32_t payload_offset) noexcept {
        return packet::csum_block_add(pseudo, payload, payload_offset);
    }

    // ---- per-segment processing -------------------------------------------------------------

    void process(gro_segment& s, std::uint64_t now) noexcept {
        const kind k = kind_of(s);
        if (k == kind::pass) {
            emit(*s.f);
            return;
        }
        const std::uint32_t at = lookup(s);
        if (k == kind::pass_flow) {
            if (at != none) {
                flush(at, flush_reason::flow_packet);
            }
            emit(*s.f);
            return;
        }
        const bool unheld = s.payload == 0 || (!s.is_udp && (s.tcp_flags & final_flags) != 0);
        if (at != none) {
            gro_flow& fl = flows_[at];
            flush_reason r = s.payload == 0
                                 ? flush_reason::flow_packet
                                 : Merge::check(fl, s, cfg_.max_ip_len, cfg_.max_segments);
            if (r == mergeable) {
                if (merge(fl, s)) {
                    after_merge(at, s);
                    return;
                }
                r = flush_reason::flow_packet; // storage refused (no large buffer): start over
            }
            flush(at, r);
        }
        if (unheld) {
            ++stats_.pass_unheld;
            emit(*s.f);
            return;
        }
        if (!storage_.can_hold(*s.f)) {
            ++stats_.pass_unstorable;
            emit(*s.f);
            return;
        }
        start(s, now);
    }

    bool merge(gro_flow& fl, const gro_segment& s) noexcept {
        if (fl.count == 1) {
            // The head becomes an aggregate: its own bytes end where its IP packet ends.
            fl.head.data_len = fl.head.pkt_len = fl.payload_offset + fl.total_payload;
        }
        if (!storage_.append(fl, s)) {
            return false;
        }
        if (fl.count == 1 && !fl.is_v6) {
            fl.fixed_id = s.ip_id == fl.ip_id ? 1 : 0;
        }
        if (cfg_.complete_checksum) {
            fl.payload_sum =
                packet::csum_block_add(fl.payload_sum, s.payload_sum, fl.total_payload);
            fl.sums_valid = fl.sums_valid && s.has_sum;
        }
        fl.total_payload += s.payload;
        fl.next_seq += s.payload;
        fl.or_flags |= s.tcp_flags & (packet::tcp_flag::psh | packet::tcp_flag::fin);
        ++fl.count;
        Merge::on_merge(fl, s);
        ++stats_.merged;
        return true;
    }

    void after_merge(std::uint32_t at, const gro_segment& s) noexcept {
        const gro_flow& fl = flows_[at];
        if ((!s.is_udp && (s.tcp_flags & final_flags) != 0) || s.payload < fl.mss) {
            flush(at, flush_reason::final_segment);
        } else if (fl.count >= cfg_.max_segments || (s.is_udp && fl.count >= 64)) {
            flush(at, flush_reason::segment_limit);
        } else if (fl.payload_offset - fl.l3_offset + fl.total_payload + fl.mss > cfg_.max_ip_len) {
            flush(at, flush_reason::size_limit);
        }
    }

    void start(const gro_segment& s, std::uint64_t now) noexcept {
        if (free_ == none) {
            flush(oldest_, flush_reason::evicted);
        }
        const std::uint32_t at = free_;
        gro_flow& fl = flows_[at];
        free_ = fl.next;
        fl.key = s.p.key;
        fl.hash = s.hash;
        fl.head = *s.f;
        fl.tail = nullptr;
        fl.first_arrival = now;
        fl.next_seq = s.seq + s.payload;
        fl.total_payload = s.payload;
        fl.payload_sum = s.payload_sum;
        fl.sums_valid = s.has_sum;
        fl.ack = s.ack;
        fl.window = s.window;
        fl.mss = static_cast<std::uint16_t>(s.payload);
        fl.count = 1;
        fl.ip_id = s.ip_id;
        fl.l3_offset = s.p.l3_offset;
        fl.l4_offset = s.p.l4_offset;
        fl.payload_offset = s.p.payload_offset;
        fl.or_flags = 0;
        fl.fixed_id = -1;
        fl.is_v6 = s.p.l3 == packet::l3_type::ipv6;
        fl.is_udp = s.is_udp;
        fl.ts_rewrite = false;
        fl.ts_offset = 0xff;
        if constexpr (Merge::rewrites_headers) {
            if (!s.is_udp) {
                const auto opts =
                    std::span<const std::uint8_t>(s.tcp() + packet::tcp_min_header_len,
                                                  s.p.l4_header_len() - packet::tcp_min_header_len);
                const packet::tcp_options o = packet::parse_tcp_options(opts);
                if (o.valid && o.has_timestamp) {
                    fl.ts_offset = o.timestamp_offset;
                    fl.ts_val = o.ts_val;
                    fl.ts_ecr = o.ts_ecr;
                }
            }
        }
        fl.mask_id = no_mask;
        if constexpr (Merge::header_template) {
            fl.mask_id = mask_for(fl);
            if (fl.mask_id != no_mask) {
                layout_ = fl.mask_id;
            }
        }
        insert(at);
        last_ = at;
        ++held_;
        ++stats_.flows_created;
    }

    // ---- fast path ------------------------------------------------------------------------------

    /// Merges `f` into a held aggregate without parsing it, when it continues that aggregate as
    /// the exact rules define (try_join). Two candidates: the flow the previous segment joined
    /// (trains, as a NIC queue delivers them), then the flow named by the key read from `f` at
    /// the layout of the newest flow (flows interleaved, as a busy link delivers them). A wrong
    /// guess only costs a failed compare and the full path: try_join's masked compare of the
    /// whole header against the candidate's head, not the guess, decides. The guessed key's hash
    /// is kept for the full path when the guess was right but the segment does not merge.
    bool join_held_flow(packet::frame& f) noexcept {
        if constexpr (!Merge::header_template) {
            return false;
        } else {
            guess_frame_ = nullptr;
            if (last_ != none && try_join(last_, f)) {
                return true;
            }
            if (layout_ == no_mask || f.nb_segs != 1 ||
                f.data_len <= masks_[layout_].payload_offset) {
                return false;
            }
            const header_mask& lay = masks_[layout_];
            packet::flow_key_at(f.data, lay.l3_offset, lay.l4_offset, lay.is_v6,
                                lay.is_udp ? packet::ip_proto::udp : packet::ip_proto::tcp,
                                guess_key_);
            guess_hash_ = flow_hash(f, guess_key_);
            guess_frame_ = &f;
            const std::uint32_t at = find(guess_key_, guess_hash_);
            if (at == none || at == last_) {
                return false;
            }
            last_ = at; // before the join: a flush at its end (after_merge) clears it again
            return try_join(at, f);
        }
    }

    /// Merges `f` into held flow `at` if it continues it, as the exact rules define: every header
    /// byte equal to the head's but the fields that change (masked compare), then the sequence, IP
    /// ID, length and checksum. Anything else, or any doubt, returns false and the frame takes
    /// the full path (which decides flushes and counts reasons).
    bool try_join(std::uint32_t at, packet::frame& f) noexcept {
        if constexpr (!Merge::header_template) {
            return false;
        } else {
            gro_flow& fl = flows_[at];
            if (fl.mask_id == no_mask) {
                return false;
            }
            const header_mask& hm = masks_[fl.mask_id];
            const std::uint32_t hdr = fl.payload_offset;
            if (f.data_len != f.pkt_len || f.data_len <= hdr || f.nb_segs != 1 ||
                f.offload.is_gso()) {
                return false;
            }
            const std::uint8_t* h = fl.head.data;
            const std::uint8_t* d = f.data;
            using packet::detail::load;
            // The ports first: interleaved flows usually differ there, and fail in one compare.
            if (load<std::uint32_t>(h + fl.l4_offset) != load<std::uint32_t>(d + fl.l4_offset)) {
                return false;
            }
            std::uint64_t diff = 0;
#pragma GCC unroll 16
            for (std::uint32_t w = 0; w < hm.words; ++w) {
                diff |= (load<std::uint64_t>(h + 8 * w) ^ load<std::uint64_t>(d + 8 * w)) & hm.m[w];
            }
            diff |= (load<std::uint64_t>(h + hdr - 8) ^ load<std::uint64_t>(d + hdr - 8)) & hm.tail;
            if (diff != 0) {
                return false;
            }
            const std::uint32_t l3_len = f.pkt_len - fl.l3_offset;
            const std::uint8_t* ip = d + fl.l3_offset;
            if ((fl.is_v6 ? packet::detail::load_be16(ip + 4) + packet::ipv6_header_len
                          : packet::detail::load_be16(ip + 2)) != l3_len) {
                return false; // padding or truncation: the full path decides
            }
            gro_segment& s = join_seg_;
            s.f = &f;
            s.payload = f.pkt_len - hdr;
            s.is_udp = fl.is_udp;
            if (s.payload == 0 || s.payload > fl.mss || fl.count >= cfg_.max_segments ||
                hdr - fl.l3_offset + fl.total_payload + s.payload > cfg_.max_ip_len) {
                return false;
            }
            const std::uint8_t* l4 = d + fl.l4_offset;
            if (!fl.is_udp) {
                s.tcp_flags = l4[13];
                if ((s.tcp_flags & packet::tcp_flag::cwr) != 0 ||
                    packet::detail::load_be32(l4 + 4) != fl.next_seq) {
                    return false;
                }
            } else if (packet::detail::load_be16(l4 + 4) != s.payload + packet::udp_header_len ||
                       (!fl.is_v6 && packet::detail::load<std::uint16_t>(l4 + 6) == 0) ||
                       fl.count >= 64) {
                return false;
            }
            if (!fl.is_v6) {
                s.ip_id = packet::detail::load_be16(ip + 4);
                const auto delta = static_cast<std::uint16_t>(s.ip_id - fl.ip_id);
                const bool df = (ip[6] & 0x40) != 0;
                if (fl.fixed_id < 0 ? !(delta == fl.count || (delta == 0 && df))
                                    : delta != (fl.fixed_id == 1 ? 0 : fl.count)) {
                    return false;
                }
            }
            s.p.l3 = fl.is_v6 ? packet::l3_type::ipv6 : packet::l3_type::ipv4;
            s.p.l3_offset = fl.l3_offset;
            s.p.l4_offset = fl.l4_offset;
            s.p.payload_offset = fl.payload_offset;
            s.p.l3_end = f.pkt_len;
            s.p.l4_proto = fl.is_udp ? packet::ip_proto::udp : packet::ip_proto::tcp;
            s.p.flags = fl.is_udp ? packet::parse_flag::l4_udp : packet::parse_flag::l4_tcp;
            // The common case needs no checksum work: verified by the NIC, partial output.
            const bool trusted =
                f.offload.csum != packet::csum_state::none || !cfg_.validate_checksums;
            s.has_sum = false;
            if ((!trusted || cfg_.complete_checksum) && !checksum_in(f, s)) {
                return false;
            }
            if (!merge(fl, s)) {
                return false;
            }
            ++stats_.rx_segments;
            after_merge(at, s);
            return true;
        }
    }

    /// The header template for a flow's layout (shared by flows of that layout), or no_mask.
    std::uint8_t mask_for(const gro_flow& fl) noexcept {
        const std::uint32_t hdr = fl.payload_offset;
        if (hdr > header_mask::max_bytes) {
            return no_mask;
        }
        for (std::uint8_t i = 0; i < n_masks_; ++i) {
            const header_mask& m = masks_[i];
            if (m.l3_offset == fl.l3_offset && m.l4_offset == fl.l4_offset &&
                m.payload_offset == fl.payload_offset && m.is_v6 == fl.is_v6 &&
                m.is_udp == fl.is_udp) {
                return i;
            }
        }
        if (n_masks_ == max_masks) {
            return no_mask;
        }
        std::uint8_t b[header_mask::max_bytes];
        std::memset(b, 0xff, sizeof b);
        auto clear = [&](std::uint32_t at, std::uint32_t len) {
            std::memset(b + at, 0, len);
        };
        const std::uint32_t l3 = fl.l3_offset;
        const std::uint32_t l4 = fl.l4_offset;
        if (!fl.is_v6) {
            clear(l3 + 2, 4);  // total length, ID
            clear(l3 + 10, 2); // header checksum
        } else {
            clear(l3 + 4, 2); // payload length
        }
        if (!fl.is_udp) {
            clear(l4 + 4, 4); // seq
            b[l4 + 13] =
                static_cast<std::uint8_t>(~(packet::tcp_flag::psh | packet::tcp_flag::fin));
            clear(l4 + 16, 2); // checksum
        } else {
            clear(l4 + 4, 4); // length, checksum
        }
        header_mask& m = masks_[n_masks_];
        m.l3_offset = fl.l3_offset;
        m.l4_offset = fl.l4_offset;
        m.payload_offset = fl.payload_offset;
        m.is_v6 = fl.is_v6;
        m.is_udp = fl.is_udp;
        m.words = static_cast<std::uint8_t>(hdr / 8);
        for (std::uint32_t w = 0; w < m.words; ++w) {
            std::memcpy(&m.m[w], b + 8 * w, 8);
        }
        std::memcpy(&m.tail, b + hdr - 8, 8);
        return n_masks_++;
    }

    // ---- flushing ------------------------------------------------------------------------------

    void flush(std::uint32_t at, flush_reason why) noexcept {
        gro_flow& fl = flows_[at];
        ++stats_.flush[static_cast<std::size_t>(why)];
        if (fl.count == 1) {
            ++stats_.singles;
        } else {
            finish(fl);
            ++stats_.aggregates;
            stats_.aggregated_segments += fl.count;
        }
        emit(fl.head);
        erase(at);
        if (last_ == at) {
            last_ = none;
        }
        --held_;
        fl.next = free_;
        free_ = at;
    }

    /// Rewrites the head's headers for the aggregate and sets its offload metadata.
    void finish(gro_flow& fl) noexcept {
        std::uint8_t* d = fl.head.data;
        const std::uint32_t l3_len = fl.payload_offset - fl.l3_offset + fl.total_payload;
        const std::uint32_t l4_len = fl.payload_offset - fl.l4_offset + fl.total_payload;
        if (!fl.is_v6) {
            packet::ipv4_header ih{d + fl.l3_offset};
            const std::uint16_t old_len = packet::detail::to_be(ih.total_length());
            ih.set_total_length(static_cast<std::uint16_t>(l3_len));
            ih.set_checksum_raw(
                packet::csum_replace16(ih.checksum_raw(), old_len,
                                       packet::detail::to_be(static_cast<std::uint16_t>(l3_len))));
        } else {
            packet::ipv6_header ih{d + fl.l3_offset};
            ih.set_payload_length(static_cast<std::uint16_t>(l3_len - packet::ipv6_header_len));
        }
        std::uint8_t* l4 = d + fl.l4_offset;
        std::uint16_t csum_field = 16;
        packet::offload_info& o = fl.head.offload;
        if (!fl.is_udp) {
            packet::tcp_header th{l4};
            o.gso_ecn = (th.flags() & packet::tcp_flag::cwr) != 0;
            th.set_flags(static_cast<std::uint8_t>(th.flags() | fl.or_flags));
            if constexpr (Merge::rewrites_headers) {
                if (fl.ts_rewrite) {
                    th.set_ack_seq(fl.ack);
                    th.set_window(fl.window);
                    if (fl.ts_offset != 0xff) {
                        std::uint8_t* ts = l4 + packet::tcp_min_header_len + fl.ts_offset + 2;
                        packet::detail::store_be32(ts, fl.ts_val);
                        packet::detail::store_be32(ts + 4, fl.ts_ecr);
                    }
                }
            }
            o.gso = fl.is_v6 ? packet::gso_type::tcpv6 : packet::gso_type::tcpv4;
        } else {
            packet::udp_header{l4}.set_length(static_cast<std::uint16_t>(l4_len));
            csum_field = 6;
            o.gso = packet::gso_type::udp_l4;
        }
        o.gso_size = fl.mss;
        o.gso_segs = fl.count;
        o.hdr_len = fl.payload_offset;
        o.gso_fixed_id = fl.fixed_id == 1;
        const std::uint8_t proto = fl.is_udp ? packet::ip_proto::udp : packet::ip_proto::tcp;
        const std::uint8_t* ip = d + fl.l3_offset;
        const std::uint32_t pseudo =
            fl.is_v6 ? packet::pseudo_header_sum_v6(ip + 8, ip + 24, proto, l4_len)
                     : packet::pseudo_header_sum_v4(ip + 12, ip + 16, proto, l4_len);
        packet::detail::store<std::uint16_t>(l4 + csum_field, 0);
        if (cfg_.complete_checksum && fl.sums_valid) {
            const std::uint32_t hdr = fl.payload_offset - fl.l4_offset;
            std::uint32_t sum = packet::csum_partial(l4, hdr, pseudo);
            sum = packet::csum_block_add(sum, fl.payload_sum, hdr);
            std::uint16_t c = packet::csum_fold(sum);
            if (c == 0 && fl.is_udp) {
                c = 0xffff;
            }
            packet::detail::store<std::uint16_t>(l4 + csum_field, c);
            o.csum = packet::csum_state::verified;
        } else {
            packet::detail::store<std::uint16_t>(l4 + csum_field, packet::csum_fold16(pseudo));
            o.csum = packet::csum_state::partial;
            o.csum_start = fl.l4_offset;
            o.csum_offset = csum_field;
        }
    }

    void expire(std::uint64_t now) noexcept {
        while (oldest_ != none && produced_ < out_.size() &&
               now - flows_[oldest_].first_arrival >= cfg_.flush_timeout_ns) {
            flush(oldest_, flush_reason::timeout);
        }
    }

    void flush_all_held(flush_reason why) noexcept {
        while (oldest_ != none && produced_ < out_.size()) {
            flush(oldest_, why);
        }
    }

    void emit(const packet::frame& f) noexcept { out_[produced_++] = f; }

    // ---- flow table

    /// Finds the segment's flow. Trains (consecutive segments of one flow, as a NIC queue delivers
    /// them) hit the one-entry cache and skip hashing; otherwise the hash is computed here, once.
    [[nodiscard]] std::uint32_t lookup(gro_segment& s) noexcept {
        if (last_ != none && flows_[last_].key == s.p.key) {
            s.hash = flows_[last_].hash;
            return last_;
        }
        s.hash =
            guess_frame_ == s.f && guess_key_ == s.p.key ? guess_hash_ : flow_hash(*s.f, s.p.key);
        const std::uint32_t at = find(s.p.key, s.hash);
        last_ = at;
        return at;
    }

    /// The NIC's RX hash when the frame has one (spread over 64 bits), else the key's.
    [[nodiscard]] std::uint64_t flow_hash(const packet::frame& f,
                                          const packet::flow_key& k) const noexcept {
        return f.has_rx_hash() ? (std::uint64_t{f.rx_hash} * 0x9e3779b97f4a7c15ULL)
                               : packet::hash(k, cfg_.hash_seed);
    }
    // ------------------------------------------------------------------------------

    [[nodiscard]] std::uint32_t find(const packet::flow_key& k, std::uint64_t h) const noexcept {
        for (std::uint32_t i = static_cast<std::uint32_t>(h) & index_mask_;;
             i = (i + 1) & index_mask_) {
            const std::uint32_t at = index_[i];
            if (at == none) {
                return none;
            }
            if (flows_[at].hash == h && flows_[at].key == k) {
                return at;
            }
        }
    }

    void insert(std::uint32_t at) noexcept {
        gro_flow& fl = flows_[at];
        std::uint32_t i = static_cast<std::uint32_t>(fl.hash) & index_mask_;
        while (index_[i] != none) {
            i = (i + 1) & index_mask_;
        }
        index_[i] = at;
        fl.prev = newest_;
        fl.next = none;
        (newest_ != none ? flows_[newest_].next : oldest_) = at;
        newest_ = at;
    }

    void erase(std::uint32_t at) noexcept {
        gro_flow& fl = flows_[at];
        std::uint32_t i = static_cast<std::uint32_t>(fl.hash) & index_mask_;
        while (index_[i] != at) {
            i = (i + 1) & index_mask_;
        }
        // Backward-shift deletion keeps probe chains whole without tombstones.
        for (std::uint32_t j = (i + 1) & index_mask_; index_[j] != none;
             j = (j + 1) & index_mask_) {
            const std::uint32_t home =
                static_cast<std::uint32_t>(flows_[index_[j]].hash) & index_mask_;
            if (((j - home) & index_mask_) >= ((j - i) & index_mask_)) {
                index_[i] = index_[j];
                i = j;
            }
        }
        index_[i] = none;
        (fl.prev != none ? flows_[fl.prev].next : oldest_) = fl.next;
        (fl.next != none ? flows_[fl.next].prev : newest_) = fl.prev;
    }

    [[nodiscard]] kind& kind_of(gro_segment& s) noexcept { return kinds_[&s - seg_.get()]; }

    gro_config cfg_;
    Storage storage_;
    std::unique_ptr<gro_flow[]> flows_;
    std::uint32_t index_mask_;
    std::unique_ptr<std::uint32_t[]> index_;
    std::unique_ptr<gro_segment[]> seg_;
    gro_segment join_seg_{};
    std::uint8_t layout_ = no_mask; ///< the newest flow's header template: join_held_flow's guess
    const packet::frame* guess_frame_ = nullptr; ///< the frame guess_key_ was read from
    packet::flow_key guess_key_{};
    std::uint64_t guess_hash_ = 0;
    kind kinds_[chunk] = {};
    header_mask masks_[max_masks] = {};
    std::uint8_t n_masks_ = 0;
    std::uint32_t free_ = none;
    std::uint32_t oldest_ = none;
    std::uint32_t newest_ = none;
    std::uint32_t held_ = 0;
    std::uint32_t last_ = none; ///< the flow found last (trains of one flow skip the hash)
    std::span<packet::frame> out_;
    std::size_t produced_ = 0;
    gro_stats stats_{};
};

} // namespace splitnet::offload
