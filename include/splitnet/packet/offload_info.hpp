// SPDX-License-Identifier: MIT
// splitnet/packet/offload_info.hpp: checksum and segmentation offload metadata carried by a
// frame, with the meaning of Linux's virtio_net_hdr (include/uapi/linux/virtio_net.h), and its
// exact conversions to and from virtio_net_hdr (what a TAP device with IFF_VNET_HDR reads and
// writes) and Xen netif's GSO extra-info plus checksum flags (xen/include/public/io/netif.h).
//
// What each wire form cannot express, and so loses on conversion:
//  - virtio_net_hdr: gso_fixed_id (the kernel re-numbers IPv4 IDs when it segments) and
//    gso_segs (the kernel derives the count from the length).
//  - Xen netif: UDP_L4 segmentation (not convertible: the sender must segment first), gso_ecn,
//    gso_fixed_id, gso_segs, hdr_len, and csum_start/csum_offset (netif's "checksum blank"
//    tells the peer to locate the L4 checksum by parsing the headers).
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>

namespace splitnet::packet {

enum class csum_state : std::uint8_t {
    none = 0,     ///< nothing known: the receiver must verify
    partial = 1,  ///< L4 checksum holds only the pseudo-header sum; complete it at
                  ///< csum_start + csum_offset (virtio NEEDS_CSUM, Linux CHECKSUM_PARTIAL)
    verified = 2, ///< checksums were verified (virtio DATA_VALID, CHECKSUM_UNNECESSARY)
};

enum class gso_type : std::uint8_t {
    none = 0,
    tcpv4 = 1,
    tcpv6 = 2,
    udp_l4 =
        3, ///< UDP datagram segmentation (every datagram gso_size bytes, the last may be short)
};

struct offload_info {
    csum_state csum = csum_state::none;
    gso_type gso = gso_type::none;
    bool gso_ecn = false;         ///< TCP CWR set on the aggregate: only the first segment keeps it
    bool gso_fixed_id = false;    ///< IPv4 ID equal on every segment instead of incrementing
    std::uint16_t gso_size = 0;   ///< L4 payload bytes per segment (the MSS); 0 without GSO
    std::uint16_t gso_segs = 0;   ///< segments in the aggregate; 0 = unknown
    std::uint16_t hdr_len = 0;    ///< bytes of L2+L3+L4 headers in front of the payload
    std::uint16_t csum_start = 0; ///< partial: offset of the first byte to checksum
    std::uint16_t csum_offset = 0; ///< partial: offset of the checksum field from csum_start

    [[nodiscard]] constexpr bool is_gso() const noexcept { return gso != gso_type::none; }
    friend constexpr bool operator==(const offload_info&, const offload_info&) noexcept = default;
};
static_assert(std::is_trivially_copyable_v<offload_info> && sizeof(offload_info) == 14);

// ---- virtio_net_hdr ---------------------------------------------------------------------------

/// struct virtio_net_hdr as a TAP device with IFF_VNET_HDR exchanges it (10 bytes, fields
/// little-endian as in virtio 1.0; a big-endian host must set TUNSETVNETLE).
struct virtio_net_hdr {
    std::uint8_t flags;
    std::uint8_t gso_type;
    std::uint16_t hdr_len;
    std::uint16_t gso_size;
    std::uint16_t csum_start;
    std::uint16_t csum_offset;
};
static_assert(sizeof(virtio_net_hdr) == 10 && std::is_trivially_copyable_v<virtio_net_hdr>);

namespace virtio_net {
inline constexpr std::uint8_t flag_needs_csum = 1;
inline constexpr std::uint8_t flag_data_valid = 2;
inline constexpr std::uint8_t flag_rsc_info = 4;
inline constexpr std::uint8_t gso_none = 0;
inline constexpr std::uint8_t gso_tcpv4 = 1;
inline constexpr std::uint8_t gso_udp = 3; ///< legacy UFO (IP fragmentation): not supported
inline constexpr std::uint8_t gso_tcpv6 = 4;
inline constexpr std::uint8_t gso_udp_l4 = 5;
inline constexpr std::uint8_t gso_ecn = 0x80;
} // namespace virtio_net

namespace detail {
[[nodiscard]] constexpr std::uint16_t to_le16(std::uint16_t v) noexcept {
    if constexpr (std::endian::native == std::endian::big) {
        return static_cast<std::uint16_t>((v << 8) | (v >> 8));
    } else {
        return v;
    }
}
} // namespace detail

[[nodiscard]] constexpr virtio_net_hdr to_virtio_net_hdr(const offload_info& o) noexcept {
    virtio_net_hdr h{};
    if (o.csum == csum_state::partial) {
        h.flags = virtio_net::flag_needs_csum;
        h.csum_start = detail::to_le16(o.csum_start);
        h.csum_offset = detail::to_le16(o.csum_offset);
    } else if (o.csum == csum_state::verified) {
        h.flags = virtio_net::flag_data_valid;
    }
    switch (o.gso) {
    case gso_type::none:
        h.gso_type = virtio_net::gso_none;
        return h;
    case gso_type::tcpv4:
        h.gso_type = virtio_net::gso_tcpv4;
        break;
    case gso_type::tcpv6:
        h.gso_type = virtio_net::gso_tcpv6;
        break;
    case gso_type::udp_l4:
        h.gso_type = virtio_net::gso_udp_l4;
        break;
    }
    if (o.gso_ecn) {
        h.gso_type |= virtio_net::gso_ecn;
    }
    h.hdr_len = detail::to_le16(o.hdr_len);
    h.gso_size = detail::to_le16(o.gso_size);
    return h;
}

enum class offload_error : std::uint8_t {
    none = 0,
    unknown_flags,    ///< flag bits outside NEEDS_CSUM | DATA_VALID
    both_csum_flags,  ///< NEEDS_CSUM and DATA_VALID together
    unsupported_gso,  ///< a gso_type this library does not segment (legacy UFO, unknown)
    gso_without_size, ///< a GSO type with gso_size 0
    gso_without_csum, ///< GSO without NEEDS_CSUM: segments could not get correct checksums
};

/// Decodes a virtio_net_hdr (from a TAP device or another untrusted source) into `out`.
/// gso_segs is left 0 (unknown) and gso_fixed_id false: virtio cannot say either.
[[nodiscard]] constexpr offload_error from_virtio_net_hdr(const virtio_net_hdr& h,
                                                          offload_info& out) noexcept {
    offload_info o{};
    if ((h.flags & ~(virtio_net::flag_needs_csum | virtio_net::flag_data_valid |
                     virtio_net::flag_rsc_info)) != 0) {
        return offload_error::unknown_flags;
    }
    const bool needs = (h.flags & virtio_net::flag_needs_csum) != 0;
    const bool valid = (h.flags & virtio_net::flag_data_valid) != 0;
    if (needs && valid) {
        return offload_error::both_csum_flags;
    }
    if (needs) {
        o.csum = csum_state::partial;
        o.csum_start = detail::to_le16(h.csum_start);
        o.csum_offset = detail::to_le16(h.csum_offset);
    } else if (valid) {
        o.csum = csum_state::verified;
    }
    switch (h.gso_type & static_cast<std::uint8_t>(~virtio_net::gso_ecn)) {
    case virtio_net::gso_none:
        out = o;
        return offload_error::none;
    case virtio_net::gso_tcpv4:
        o.gso = gso_type::tcpv4;
        break;
    case virtio_net::gso_tcpv6:
        o.gso = gso_type::tcpv6;
        break;
    case virtio_net::gso_udp_l4:
        o.gso = gso_type::udp_l4;
        break;
    default:
        return offload_error::unsupported_gso;
    }
    o.gso_ecn = (h.gso_type & virtio_net::gso_ecn) != 0;
    o.gso_size = detail::to_le16(h.gso_size);
    o.hdr_len = detail::to_le16(h.hdr_len);
    if (o.gso_size == 0) {
        return offload_error::gso_without_size;
    }
    if (!needs) {
        return offload_error::gso_without_csum;
    }
    out = o;
    return offload_error::none;
}

// ---- Xen netif ------------------------------------------------------------------------------

/// What Xen netif can carry of offload_info: the GSO extra-info slot
/// (XEN_NETIF_EXTRA_TYPE_GSO: size, type) and the checksum bits of a request's flags.
struct xen_offload {
    std::uint16_t gso_size = 0;  ///< netif_extra_info.u.gso.size
    std::uint8_t gso_type = 0;   ///< XEN_NETIF_GSO_TYPE_{NONE=0, TCPV4=1, TCPV6=2}
    bool csum_blank = false;     ///< NETTXF_csum_blank / NETRXF_csum_blank
    bool data_validated = false; ///< NETTXF_data_validated / NETRXF_data_validated

    [[nodiscard]] constexpr bool has_gso() const noexcept { return gso_type != 0; }
    friend constexpr bool operator==(const xen_offload&, const xen_offload&) noexcept = default;
};

namespace xen_gso {
inline constexpr std::uint8_t none = 0;
inline constexpr std::uint8_t tcpv4 = 1;
inline constexpr std::uint8_t tcpv6 = 2;
} // namespace xen_gso

/// Converts to netif's form. Returns false when netif cannot carry it (UDP_L4 GSO): segment
/// the frame first. Linux netback marks a partial checksum csum_blank and also data_validated.
[[nodiscard]] constexpr bool to_xen_offload(const offload_info& o, xen_offload& out) noexcept {
    xen_offload x{};
    switch (o.gso) {
    case gso_type::none:
        break;
    case gso_type::tcpv4:
        x.gso_type = xen_gso::tcpv4;
        x.gso_size = o.gso_size;
        break;
    case gso_type::tcpv6:
        x.gso_type = xen_gso::tcpv6;
        x.gso_size = o.gso_size;
        break;
    case gso_type::udp_l4:
        return false;
    }
    x.csum_blank = o.csum == csum_state::partial;
    x.data_validated = o.csum != csum_state::none;
    out = x;
    return true;
}

/// Decodes netif's form. A blank checksum becomes csum_state::partial with csum_start and
/// csum_offset 0: the caller fills them from the parsed headers (netif does not carry them).
[[nodiscard]] constexpr offload_error from_xen_offload(const xen_offload& x,
                                                       offload_info& out) noexcept {
    offload_info o{};
    if (x.csum_blank) {
        o.csum = csum_state::partial;
    } else if (x.data_validated) {
        o.csum = csum_state::verified;
    }
    switch (x.gso_type) {
    case xen_gso::none:
        break;
    case xen_gso::tcpv4:
        o.gso = gso_type::tcpv4;
        break;
    case xen_gso::tcpv6:
        o.gso = gso_type::tcpv6;
        break;
    default:
        return offload_error::unsupported_gso;
    }
    if (o.is_gso()) {
        o.gso_size = x.gso_size;
        if (o.gso_size == 0) {
            return offload_error::gso_without_size;
        }
        if (!x.csum_blank) {
            return offload_error::gso_without_csum;
        }
    }
    out = o;
    return offload_error::none;
}

} // namespace splitnet::packet
