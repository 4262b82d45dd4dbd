// SPDX-License-Identifier: MIT
// splitnet/netif/rx_packet.hpp: the netif rules for a packet on the RX ring (back end to guest):
// an encoder for the back end and a validating decoder for the front end.
//
// The front end posts requests, each offering one granted page. The back end answers in order,
// each response in the slot of the request it consumes: one response per slot of data
// (status = bytes in that slot, offset = where they start, more_data on all but the last), and,
// when the packet carries GSO metadata, an extra-info (type GSO) in the slot right after the
// first response, which has rx_flag::extra_info. Checksum state rides on the first response
// (csum_blank: the L4 checksum is partial; data_validated). Linux netback and netfront behave so.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <splitnet/netif/protocol.hpp>

namespace splitnet::netif {

/// `size` bytes of a packet placed at `offset` in the page of one RX request.
struct rx_chunk {
    std::uint16_t offset = 0;
    std::uint16_t size = 0;
};

/// Data slots a front end accepts in one packet by default (netfront: MAX_SKB_FRAGS + 1 pages
/// of a 64 KiB packet, plus slack), and the most a decoder can hold: with frontend copy a slot
/// is one back-end buffer, so an aggregate of 1448-byte segments takes about 46.
inline constexpr std::uint32_t max_rx_slots = 20;
inline constexpr std::uint32_t rx_slot_capacity = 64;

enum class rx_encode_error : std::uint8_t {
    none = 0,
    no_chunks,
    crosses_page,        ///< offset + size > 4096
    empty_chunk,         ///< a data slot must carry at least one byte (status 0 means okay/empty)
    too_large,           ///< total above 65535
    not_enough_requests, ///< fewer requests than chunks (+1 for the GSO extra)
    no_room,
};

/// Encodes the responses for one packet: `reqs` are the requests consumed for it (copies), one
/// per chunk plus one for the GSO extra when `gso` is given. `csum_flags` are rx_flag bits for
/// the first response. Returns the responses written, or 0 with `err` set.
[[nodiscard]] inline std::size_t encode_rx_packet(std::span<const rx_request> reqs,
                                                  std::span<const rx_chunk> chunks,
                                                  const extra_gso* gso, std::uint16_t csum_flags,
                                                  std::span<rx_response> out,
                                                  rx_encode_error& err) noexcept {
    err = rx_encode_error::none;
    const std::size_t need = chunks.size() + (gso != nullptr ? 1 : 0);
    if (chunks.empty()) {
        err = rx_encode_error::no_chunks;
        return 0;
    }
    if (reqs.size() < need) {
        err = rx_encode_error::not_enough_requests;
        return 0;
    }
    if (out.size() < need) {
        err = rx_encode_error::no_room;
        return 0;
    }
    std::uint32_t total = 0;
    for (const rx_chunk& c : chunks) {
        if (c.size == 0) {
            err = rx_encode_error::empty_chunk;
            return 0;
        }
        if (std::uint32_t{c.offset} + c.size > page_bytes) {
            err = rx_encode_error::crosses_page;
            return 0;
        }
        total += c.size;
    }
    if (total > max_packet_size) {
        err = rx_encode_error::too_large;
        return 0;
    }
    std::size_t n = 0;
    std::size_t r = 0;
    const auto more = [&](std::size_t chunk) -> std::uint16_t {
        return chunk + 1 < chunks.size() ? rx_flag::more_data : 0;
    };
    out[n++] = {
        reqs[r++].id, chunks[0].offset,
        static_cast<std::uint16_t>((csum_flags & (rx_flag::csum_blank | rx_flag::data_validated)) |
                                   more(0) | (gso != nullptr ? rx_flag::extra_info : 0)),
        static_cast<std::int16_t>(chunks[0].size)};
    if (gso != nullptr) {
        extra_info e{};
        e.type = extra_type_gso;
        e.u.gso = *gso;
        out[n++] = response_from(e);
        ++r;
    }
    for (std::size_t c = 1; c < chunks.size(); ++c) {
        out[n++] = {reqs[r++].id, chunks[c].offset, more(c),
                    static_cast<std::int16_t>(chunks[c].size)};
    }
    return n;
}

/// One slot of data in a received packet: which request (id) it answered and where its bytes are.
struct rx_slot {
    std::uint16_t id = 0;
    std::uint16_t offset = 0;
    std::uint16_t size = 0;
};

struct rx_packet {
    std::array<rx_slot, rx_slot_capacity> slots{};
    std::uint32_t nslots = 0;
    std::uint32_t total_size = 0;
    std::uint16_t flags = 0;     ///< the first response's rx_flag bits
    std::uint32_t responses = 0; ///< ring slots the packet used (data + extras)
    bool has_gso = false;
    extra_gso gso{};
};

enum class rx_verdict : std::uint8_t {
    ok = 0,
    error,      ///< the back end reported an error or the slots are inconsistent: drop, consume
    fatal,      ///< the back end broke the protocol (an untrusted back end: stop using it)
    incomplete, ///< continues past the responses given
};

enum class rx_fault : std::uint8_t {
    none = 0,
    backend_error,  ///< a slot carried rsp_error or rsp_dropped
    crosses_page,   ///< offset + status > 4096
    too_many_slots, ///< more than max_rx_slots data slots
    too_large,      ///< total above 65535
    bad_extra_type, ///< extra-info of type none or unknown
    truncated,
};

[[nodiscard]] constexpr std::string_view to_string(rx_fault f) noexcept {
    switch (f) {
    case rx_fault::none:
        return "none";
    case rx_fault::backend_error:
        return "back end reported an error";
    case rx_fault::crosses_page:
        return "slot data crosses a page boundary";
    case rx_fault::too_many_slots:
        return "too many slots";
    case rx_fault::too_large:
        return "packet larger than 65535 bytes";
    case rx_fault::bad_extra_type:
        return "invalid extra-info type";
    case rx_fault::truncated:
        return "packet continues past the published responses";
    }
    return "unknown";
}

struct rx_decode_result {
    rx_verdict verdict = rx_verdict::ok;
    rx_fault fault = rx_fault::none;
};

/// Decodes the packet at the start of `rsps` (copies of ring responses). On ok and error,
/// out.responses is the number of ring slots it used. More than `max_slots` data slots
/// (at most rx_slot_capacity) is an error.
[[nodiscard]] inline rx_decode_result
decode_rx_packet(std::span<const rx_response> rsps, rx_packet& out,
                 std::uint32_t max_slots = max_rx_slots) noexcept {
    max_slots = max_slots < rx_slot_capacity ? max_slots : rx_slot_capacity;
    out.nslots = 0;
    out.total_size = 0;
    out.has_gso = false;
    if (rsps.empty()) {
        return {rx_verdict::incomplete, rx_fault::truncated};
    }
    out.flags = rsps[0].flags;
    rx_fault err = rx_fault::none;
    std::size_t i = 0;
    bool more = true;
    bool first = true;
    while (more) {
        if (i == rsps.size()) {
            return {rx_verdict::incomplete, rx_fault::truncated};
        }
        const rx_response& r = rsps[i++];
        more = (r.flags & rx_flag::more_data) != 0;
        if (r.status < 0) {
            err = err == rx_fault::none ? rx_fault::backend_error : err;
        } else if (std::uint32_t{r.offset} + static_cast<std::uint32_t>(r.status) > page_bytes) {
            out.responses = static_cast<std::uint32_t>(i);
            return {rx_verdict::fatal, rx_fault::crosses_page};
        } else if (out.nslots == max_slots) {
            err = err == rx_fault::none ? rx_fault::too_many_slots : err;
        } else {
            out.slots[out.nslots++] = {r.id, r.offset, static_cast<std::uint16_t>(r.status)};
            out.total_size += static_cast<std::uint32_t>(r.status);
        }
        if (first && (r.flags & rx_flag::extra_info) != 0) {
            // Extras follow the first response, chained by extra_flag_more.
            for (;;) {
                if (i == rsps.size()) {
                    return {rx_verdict::incomplete, rx_fault::truncated};
                }
                const extra_info e = extra_from(rsps[i++]);
                if (e.type == extra_type_gso) {
                    out.has_gso = true;
                    out.gso = e.u.gso;
                } else if (e.type == extra_type_none || e.type >= extra_type_max) {
                    out.responses = static_cast<std::uint32_t>(i);
                    return {rx_verdict::fatal, rx_fault::bad_extra_type};
                }
                if ((e.flags & extra_flag_more) == 0) {
                    break;
                }
            }
        }
        first = false;
    }
    out.responses = static_cast<std::uint32_t>(i);
    if (err == rx_fault::none && out.total_size > max_packet_size) {
        err = rx_fault::too_large;
    }
    if (err != rx_fault::none) {
        return {rx_verdict::error, err};
    }
    return {};
}

} // namespace splitnet::netif
