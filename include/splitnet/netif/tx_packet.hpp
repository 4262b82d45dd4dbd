// SPDX-License-Identifier: MIT
// splitnet/netif/tx_packet.hpp: the netif rules for a packet on the TX ring (guest to back end),
// as an encoder for the front end and a validating decoder for the back end.
//
// A packet is: a first request whose `size` is the whole packet's size, then (if the first has
// tx_flag::extra_info) extra-info slots chained by extra_flag_more, then one request per further
// fragment while the previous one has tx_flag::more_data; each later request's size is that
// fragment's, and the first fragment's own bytes are the total minus the rest. No fragment may
// cross a 4 KiB page. Every request gets a response in its slot: data slots their status, extra
// slots rsp_null.
//
// The decoder follows Linux netback (xenvif_count_requests, xenvif_get_extras, xenvif_tx_build_
// gops): what a well-behaved front end can do wrong is a per-packet drop answered with
// rsp_error (more than `max_slots` slots, a fragment larger than what remains, a runt packet,
// a bad GSO extra); what only a malicious or broken one does is fatal and should disconnect it
// (a page-crossing fragment, more than `fatal_slots` slots, an invalid extra type, a packet cut
// off at the end of what it published).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <splitnet/netif/protocol.hpp>

namespace splitnet::netif {

struct tx_limits {
    std::uint32_t max_slots = min_slots; ///< more slots: the packet is dropped (netback: 18)
    std::uint32_t fatal_slots = 20;      ///< more slots: the front end is malicious (netback: 20)
};

/// One data fragment of a TX packet: `size` bytes at `offset` in granted page `gref`.
struct tx_fragment {
    grant_ref gref = 0;
    std::uint16_t offset = 0;
    std::uint16_t size = 0;
    std::uint16_t id = 0; ///< the request id (the front end's buffer tag)
};

inline constexpr std::size_t max_tx_fragments = 32; ///< decoder capacity (above fatal_slots)

/// A decoded TX packet: its fragments with their real sizes, and its extras.
struct tx_packet {
    std::array<tx_fragment, max_tx_fragments> frags{};
    std::uint32_t nfrags = 0;
    std::uint32_t total_size = 0; ///< the first request's size
    std::uint16_t flags = 0;      ///< the first request's tx_flag bits (checksum state)
    std::uint32_t requests = 0;   ///< ring slots the packet used (fragments + extras)
    std::uint32_t extras = 0;     ///< extra-info slots among them
    bool has_gso = false;
    extra_gso gso{};
    bool has_mcast_add = false;
    bool has_mcast_del = false;
    extra_mcast mcast{};
    bool has_hash = false;
    extra_hash hash{};
};

enum class tx_verdict : std::uint8_t {
    ok = 0,     ///< a packet to deliver
    drop,       ///< consume `requests` slots, answer rsp_error, carry on
    fatal,      ///< the front end broke the protocol: disconnect it
    incomplete, ///< the packet continues past the requests given: peek more and decode again
};

enum class tx_fault : std::uint8_t {
    none = 0,
    too_many_slots,       ///< drop: more than max_slots
    fragment_too_large,   ///< drop: a fragment larger than what remains of the total
    runt,                 ///< drop: smaller than an Ethernet header
    bad_gso,              ///< drop: GSO extra with size 0 or an unknown type
    malicious_slot_count, ///< fatal: more than fatal_slots
    crosses_page,         ///< fatal: offset + size > 4096
    bad_extra_type,       ///< fatal: an extra-info of type none or unknown
    truncated,            ///< fatal when nothing more can arrive: the packet never ends
};

[[nodiscard]] constexpr std::string_view to_string(tx_fault f) noexcept {
    switch (f) {
    case tx_fault::none:
        return "none";
    case tx_fault::too_many_slots:
        return "too many slots";
    case tx_fault::fragment_too_large:
        return "fragment larger than the remaining packet size";
    case tx_fault::runt:
        return "packet smaller than an Ethernet header";
    case tx_fault::bad_gso:
        return "bad GSO extra-info";
    case tx_fault::malicious_slot_count:
        return "slot count above the fatal limit";
    case tx_fault::crosses_page:
        return "fragment crosses a page boundary";
    case tx_fault::bad_extra_type:
        return "invalid extra-info type";
    case tx_fault::truncated:
        return "packet continues past the published requests";
    }
    return "unknown";
}

struct tx_decode_result {
    tx_verdict verdict = tx_verdict::ok;
    tx_fault fault = tx_fault::none;
};

/// Decodes the packet at the start of `reqs` (copies of ring requests: never shared memory).
/// On ok and drop, out.requests says how many requests it used and out.frags lists the data
/// slots (so each can be answered). Never reads past reqs.
[[nodiscard]] inline tx_decode_result decode_tx_packet(std::span<const tx_request> reqs,
                                                       tx_packet& out,
                                                       const tx_limits& lim = {}) noexcept {
    out.nfrags = 0;
    out.extras = 0;
    out.has_gso = out.has_mcast_add = out.has_mcast_del = out.has_hash = false;
    if (reqs.empty()) {
        return {tx_verdict::incomplete, tx_fault::truncated};
    }
    const tx_request& first = reqs[0];
    out.total_size = first.size;
    out.flags = first.flags;
    std::size_t i = 1;
    // Extras: chained after the first request.
    if ((first.flags & tx_flag::extra_info) != 0) {
        for (;;) {
            if (i == reqs.size()) {
                return {tx_verdict::incomplete, tx_fault::truncated};
            }
            const extra_info e = extra_from(reqs[i++]);
            ++out.extras;
            switch (e.type) {
            case extra_type_gso:
                out.has_gso = true;
                out.gso = e.u.gso;
                break;
            case extra_type_mcast_add:
                out.has_mcast_add = true;
                out.mcast = e.u.mcast;
                break;
            case extra_type_mcast_del:
                out.has_mcast_del = true;
                out.mcast = e.u.mcast;
                break;
            case extra_type_hash:
                out.has_hash = true;
                out.hash = e.u.hash;
                break;
            default:
                out.requests = static_cast<std::uint32_t>(i);
                return {tx_verdict::fatal, tx_fault::bad_extra_type};
            }
            if ((e.flags & extra_flag_more) == 0) {
                break;
            }
        }
    }
    // Data slots: the first, then one per more_data.
    tx_fault drop = tx_fault::none;
    std::uint32_t remaining = first.size;
    std::uint16_t more = first.flags & tx_flag::more_data;
    std::uint32_t slots = 1;
    out.frags[0] = {first.gref, first.offset, 0, first.id};
    out.nfrags = 1;
    while (more != 0) {
        if (i == reqs.size()) {
            return {tx_verdict::incomplete, tx_fault::truncated};
        }
        if (slots >= lim.fatal_slots) {
            out.requests = static_cast<std::uint32_t>(i);
            return {tx_verdict::fatal, tx_fault::malicious_slot_count};
        }
        const tx_request& r = reqs[i++];
        if (slots >= lim.max_slots && drop == tx_fault::none) {
            drop = tx_fault::too_many_slots;
        }
        if (r.size > remaining && drop == tx_fault::none) {
            drop = tx_fault::fragment_too_large;
        }
        remaining -= r.size < remaining ? r.size : remaining;
        if (std::uint32_t{r.offset} + r.size > page_bytes) {
            out.requests = static_cast<std::uint32_t>(i);
            return {tx_verdict::fatal, tx_fault::crosses_page};
        }
        if (out.nfrags < out.frags.size()) {
            out.frags[out.nfrags++] = {r.gref, r.offset, r.size, r.id};
        }
        more = r.flags & tx_flag::more_data;
        ++slots;
    }
    out.requests = static_cast<std::uint32_t>(i);
    // The first fragment holds what the others do not.
    out.frags[0].size = static_cast<std::uint16_t>(remaining);
    if (std::uint32_t{first.offset} + remaining > page_bytes) {
        return {tx_verdict::fatal, tx_fault::crosses_page};
    }
    if (drop == tx_fault::none && first.size < ethernet_header_bytes && !out.has_mcast_add &&
        !out.has_mcast_del) {
        drop = tx_fault::runt;
    }
    if (drop == tx_fault::none && out.has_gso &&
        (out.gso.size == 0 || (out.gso.type != gso_type_tcpv4 && out.gso.type != gso_type_tcpv6))) {
        drop = tx_fault::bad_gso;
    }
    if (drop != tx_fault::none) {
        return {tx_verdict::drop, drop};
    }
    return {};
}

/// The responses for a decoded packet, in ring order: the first request's, rsp_null for each
/// extra, then one per further fragment. Returns how many were written (0 if `out` is short).
[[nodiscard]] inline std::size_t make_tx_responses(const tx_packet& p, std::int16_t status,
                                                   std::span<tx_response> out) noexcept {
    if (out.size() < p.requests || p.nfrags == 0) {
        return 0;
    }
    std::size_t n = 0;
    out[n++] = {p.frags[0].id, status};
    for (std::uint32_t e = 0; e < p.extras; ++e) {
        out[n++] = {p.frags[0].id, rsp_null};
    }
    for (std::uint32_t f = 1; f < p.nfrags && n < p.requests; ++f) {
        out[n++] = {p.frags[f].id, status};
    }
    // Slots beyond the decoder's fragment capacity (a dropped oversized packet) still need answers.
    while (n < p.requests) {
        out[n++] = {p.frags[0].id, status};
    }
    return n;
}

enum class tx_encode_error : std::uint8_t {
    none = 0,
    no_fragments,
    crosses_page,   ///< a fragment's offset + size exceeds 4096
    too_large,      ///< total above 65535
    too_many_slots, ///< more fragments than `max_slots`
    no_room,        ///< the output span is too small
};

/// Encodes one packet for the TX ring: fragments (their real sizes), optional extras placed
/// after the first request, and checksum flags for the first request. Returns the number of
/// requests written to `out`, or 0 with `err` set.
[[nodiscard]] inline std::size_t encode_tx_packet(std::span<const tx_fragment> frags,
                                                  std::span<const extra_info> extras,
                                                  std::uint16_t csum_flags,
                                                  std::span<tx_request> out, tx_encode_error& err,
                                                  std::uint32_t max_slots = min_slots) noexcept {
    err = tx_encode_error::none;
    if (frags.empty()) {
        err = tx_encode_error::no_fragments;
        return 0;
    }
    if (frags.size() > max_slots) {
        err = tx_encode_error::too_many_slots;
        return 0;
    }
    if (out.size() < frags.size() + extras.size()) {
        err = tx_encode_error::no_room;
        return 0;
    }
    std::uint32_t total = 0;
    for (const tx_fragment& f : frags) {
        if (std::uint32_t{f.offset} + f.size > page_bytes) {
            err = tx_encode_error::crosses_page;
            return 0;
        }
        total += f.size;
    }
    if (total > max_packet_size) {
        err = tx_encode_error::too_large;
        return 0;
    }
    std::size_t n = 0;
    const std::uint16_t more = frags.size() > 1 ? tx_flag::more_data : 0;
    out[n++] = {
        frags[0].gref, frags[0].offset,
        static_cast<std::uint16_t>((csum_flags & (tx_flag::csum_blank | tx_flag::data_validated)) |
                                   more | (extras.empty() ? 0 : tx_flag::extra_info)),
        frags[0].id, static_cast<std::uint16_t>(total)};
    for (std::size_t e = 0; e < extras.size(); ++e) {
        extra_info x = extras[e];
        x.flags = e + 1 < extras.size() ? extra_flag_more : 0;
        out[n++] = slot_from(x);
    }
    for (std::size_t f = 1; f < frags.size(); ++f) {
        out[n++] = {frags[f].gref, frags[f].offset,
                    static_cast<std::uint16_t>(f + 1 < frags.size() ? tx_flag::more_data : 0),
                    frags[f].id, frags[f].size};
    }
    return n;
}

} // namespace splitnet::netif
