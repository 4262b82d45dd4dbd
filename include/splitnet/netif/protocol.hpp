// SPDX-License-Identifier: MIT
// splitnet/netif/protocol.hpp: the netfront/netback wire format of Xen's public/io/netif.h:
// TX and RX requests and responses, the extra-info slot (GSO, multicast, hash), flags, status
// codes and limits. Layouts are checked here with static_asserts and against Debian's
// <xen/io/netif.h> in tests/netif/xen_compat_test.cpp; flag values are spelled from Xen's bit
// numbers. Note that TX and RX swap the meaning of bits 0 and 1 (csum_blank/data_validated).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace splitnet::netif {

using grant_ref = std::uint32_t;

// ---- slots ----------------------------------------------------------------------------------

struct tx_request {
    grant_ref gref;       ///< page holding this slot's bytes
    std::uint16_t offset; ///< offset of the bytes within that page
    std::uint16_t flags;  ///< tx_flag bits
    std::uint16_t id;     ///< echoed in the response
    std::uint16_t size;   ///< first slot: the whole packet's size; later slots: this slot's
};

struct tx_response {
    std::uint16_t id;
    std::int16_t status; ///< rsp_* code
};

struct rx_request {
    std::uint16_t id;
    std::uint16_t pad;
    grant_ref gref; ///< a page the front end offers for one slot of received data
};

struct rx_response {
    std::uint16_t id;
    std::uint16_t offset; ///< where the data starts in the page
    std::uint16_t flags;  ///< rx_flag bits
    std::int16_t status;  ///< bytes in this slot (> 0), or an rsp_* error (< 0)
};

struct extra_gso {
    std::uint16_t size; ///< MSS
    std::uint8_t type;  ///< gso_type_tcpv4 / tcpv6
    std::uint8_t pad;
    std::uint16_t features; ///< none defined
};
struct extra_mcast {
    std::uint8_t addr[6];
};
struct extra_hash {
    std::uint8_t type;      ///< hash_type bit number
    std::uint8_t algorithm; ///< hash_algorithm_*
    std::uint8_t value[4];  ///< least significant byte first
};

/// An extra-info slot: follows the first slot of a packet when it has the extra_info flag, in a
/// request slot (TX) or a response slot (RX).
struct extra_info {
    std::uint8_t type;  ///< extra_type_*
    std::uint8_t flags; ///< extra_flag_more: another extra follows
    union {
        extra_gso gso;
        extra_mcast mcast;
        extra_hash hash;
        std::uint16_t pad[3];
    } u;
};

static_assert(sizeof(tx_request) == 12 && alignof(tx_request) == 4);
static_assert(offsetof(tx_request, gref) == 0 && offsetof(tx_request, offset) == 4 &&
              offsetof(tx_request, flags) == 6 && offsetof(tx_request, id) == 8 &&
              offsetof(tx_request, size) == 10);
static_assert(sizeof(tx_response) == 4 && offsetof(tx_response, status) == 2);
static_assert(sizeof(rx_request) == 8 && offsetof(rx_request, id) == 0 &&
              offsetof(rx_request, gref) == 4);
static_assert(sizeof(rx_response) == 8 && offsetof(rx_response, offset) == 2 &&
              offsetof(rx_response, flags) == 4 && offsetof(rx_response, status) == 6);
static_assert(sizeof(extra_info) == 8 && offsetof(extra_info, u) == 2);
static_assert(std::is_trivially_copyable_v<tx_request> && std::is_trivially_copyable_v<extra_info>);

// ---- flags, codes, limits ---------------------------------------------------------------------

namespace tx_flag {
inline constexpr std::uint16_t csum_blank = 1U << 0;     ///< _NETTXF_csum_blank
inline constexpr std::uint16_t data_validated = 1U << 1; ///< _NETTXF_data_validated
inline constexpr std::uint16_t more_data = 1U << 2;      ///< _NETTXF_more_data
inline constexpr std::uint16_t extra_info = 1U << 3;     ///< _NETTXF_extra_info
} // namespace tx_flag

namespace rx_flag {
inline constexpr std::uint16_t data_validated = 1U << 0; ///< _NETRXF_data_validated
inline constexpr std::uint16_t csum_blank = 1U << 1;     ///< _NETRXF_csum_blank
inline constexpr std::uint16_t more_data = 1U << 2;      ///< _NETRXF_more_data
inline constexpr std::uint16_t extra_info = 1U << 3;     ///< _NETRXF_extra_info
inline constexpr std::uint16_t gso_prefix = 1U << 4;     ///< _NETRXF_gso_prefix (deprecated)
} // namespace rx_flag

inline constexpr std::int16_t rsp_dropped = -2;
inline constexpr std::int16_t rsp_error = -1;
inline constexpr std::int16_t rsp_okay = 0;
inline constexpr std::int16_t rsp_null = 1; ///< status of a slot an extra-info used

inline constexpr std::uint8_t extra_type_none = 0;
inline constexpr std::uint8_t extra_type_gso = 1;
inline constexpr std::uint8_t extra_type_mcast_add = 2;
inline constexpr std::uint8_t extra_type_mcast_del = 3;
inline constexpr std::uint8_t extra_type_hash = 4;
inline constexpr std::uint8_t extra_type_max = 5; ///< upstream Xen: types are below this
inline constexpr std::uint8_t extra_flag_more = 1U << 0;

inline constexpr std::uint8_t gso_type_none = 0;
inline constexpr std::uint8_t gso_type_tcpv4 = 1;
inline constexpr std::uint8_t gso_type_tcpv6 = 2;

inline constexpr std::uint32_t max_packet_size = 0xffff; ///< XEN_NETIF_MAX_TX_SIZE
inline constexpr std::uint32_t min_slots = 18;           ///< XEN_NETIF_NR_SLOTS_MIN
inline constexpr std::uint32_t page_bytes = 4096;        ///< XEN_PAGE_SIZE: no slot crosses it
inline constexpr std::uint32_t ethernet_header_bytes = 14;

// ---- extra-info in request and response slots
// ----------------------------------------------------

/// The extra-info a TX request slot holds (its first 8 bytes).
[[nodiscard]] inline extra_info extra_from(const tx_request& r) noexcept {
    extra_info e;
    std::memcpy(&e, &r, sizeof e);
    return e;
}
/// A TX request slot carrying an extra-info (the rest of the slot zero).
[[nodiscard]] inline tx_request slot_from(const extra_info& e) noexcept {
    tx_request r{};
    std::memcpy(&r, &e, sizeof e);
    return r;
}
/// The extra-info an RX response slot holds.
[[nodiscard]] inline extra_info extra_from(const rx_response& r) noexcept {
    extra_info e;
    std::memcpy(&e, &r, sizeof e);
    return e;
}
/// An RX response slot carrying an extra-info.
[[nodiscard]] inline rx_response response_from(const extra_info& e) noexcept {
    rx_response r;
    std::memcpy(&r, &e, sizeof e);
    return r;
}

[[nodiscard]] inline extra_info make_gso_extra(std::uint8_t gso_type, std::uint16_t mss,
                                               bool more = false) noexcept {
    extra_info e{};
    e.type = extra_type_gso;
    e.flags = more ? extra_flag_more : 0;
    e.u.gso.size = mss;
    e.u.gso.type = gso_type;
    return e;
}

} // namespace splitnet::netif
