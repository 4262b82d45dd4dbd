// SPDX-License-Identifier: MIT
// splitnet/bridge/mac_key.hpp: the FDB key, a MAC address and a VLAN id packed into 64 bits.
// Anchors: Linux br_fdb's net_bridge_fdb_key {addr, vlan_id} (8 bytes, one entry per VLAN) and
// VPP's l2fib_entry_key_t (a u64 {mac, bd_index}). Keys are built from packet bytes with whole
// loads and shifts: assembling the u64 with memcpy(&zeroed_u64, mac, 6) costs a store-forwarding
// stall (2.6x on this machine, anchors note section 5.3).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include <splitnet/packet/ethernet.hpp>

namespace splitnet::bridge {

/// A bridge port number. Frames carry it in packet::frame::port (the ingress port).
using port_id = std::uint16_t;
inline constexpr port_id no_port = 0xffff;

/// Layout of the 64 bits: MAC byte i (wire order) at bits 8i..8i+7, VLAN id at bits 48..59,
/// bit 63 set in every valid key, so that 0 never names a key (it marks an empty FDB slot).
/// The layout is little-endian in the MAC bytes so that a key comes from two loads of the
/// Ethernet header and a shift, whatever the host byte order (big-endian hosts swap the loads).
struct mac_key {
    std::uint64_t value = 0;

    static constexpr std::uint64_t valid_bit = std::uint64_t{1} << 63;
    static constexpr std::uint64_t mac_mask = (std::uint64_t{1} << 48) - 1;
    static constexpr std::uint16_t vid_mask = 0x0fff;

    /// From 48 MAC bits in the layout above (bytes little-endian) and a VLAN id (masked to 12
    /// bits).
    [[nodiscard]] static constexpr mac_key from_mac48(std::uint64_t mac48,
                                                      std::uint16_t vid) noexcept {
        return mac_key{valid_bit |
                       (std::uint64_t{static_cast<std::uint16_t>(vid & vid_mask)} << 48) |
                       (mac48 & mac_mask)};
    }
    [[nodiscard]] static constexpr mac_key make(const packet::mac_address& m,
                                                std::uint16_t vid = 0) noexcept {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < 6; ++i) {
            v |= std::uint64_t{m.bytes[i]} << (8 * i);
        }
        return from_mac48(v, vid);
    }
    [[nodiscard]] constexpr std::uint64_t mac48() const noexcept { return value & mac_mask; }
    [[nodiscard]] constexpr std::uint16_t vid() const noexcept {
        return static_cast<std::uint16_t>((value >> 48) & vid_mask);
    }
    [[nodiscard]] constexpr packet::mac_address mac() const noexcept {
        packet::mac_address m;
        for (std::size_t i = 0; i < 6; ++i) {
            m.bytes[i] = static_cast<std::uint8_t>(value >> (8 * i));
        }
        return m;
    }
    [[nodiscard]] constexpr bool valid() const noexcept { return (value & valid_bit) != 0; }
    friend constexpr bool operator==(mac_key, mac_key) noexcept = default;
};
static_assert(sizeof(mac_key) == 8);

namespace mac48 {
inline constexpr std::uint64_t broadcast = mac_key::mac_mask;
/// The group bit (I/G) is the least significant bit of the first byte on the wire.
[[nodiscard]] constexpr bool is_multicast(std::uint64_t m) noexcept {
    return (m & 1) != 0;
}
/// 01:80:C2:00:00:00..0F: IEEE 802.1D reserved group addresses (STP, pause, LACP, LLDP...),
/// which a bridge must not forward (Linux passes them to the host, subject to group_fwd_mask).
[[nodiscard]] constexpr bool is_link_local(std::uint64_t m) noexcept {
    return (m & ~(std::uint64_t{0x0f} << 40)) == 0x00c28001ULL;
}
} // namespace mac48

namespace detail {
template <class T>
[[nodiscard]] inline T load_le(const std::uint8_t* p) noexcept {
    T v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::endian::native == std::endian::big) {
        if constexpr (sizeof(T) == 8) {
            v = __builtin_bswap64(v);
        } else if constexpr (sizeof(T) == 4) {
            v = __builtin_bswap32(v);
        } else {
            v = __builtin_bswap16(v);
        }
    }
    return v;
}
} // namespace detail

/// Reads both MAC addresses of an Ethernet header (12 readable bytes at p) with an 8-byte and a
/// 4-byte load: dst is bytes 0..5, src bytes 6..11, in mac_key's 48-bit layout.
inline void load_macs(const std::uint8_t* p, std::uint64_t& dst48, std::uint64_t& src48) noexcept {
    const auto w0 = detail::load_le<std::uint64_t>(p);
    const auto w1 = detail::load_le<std::uint32_t>(p + 8);
    dst48 = w0 & mac_key::mac_mask;
    src48 = (w0 >> 48) | (std::uint64_t{w1} << 16);
}

/// Key of the 6 MAC bytes at p, with one 4-byte and one 2-byte load.
[[nodiscard]] inline mac_key load_key(const std::uint8_t* p, std::uint16_t vid) noexcept {
    const std::uint64_t m = detail::load_le<std::uint32_t>(p) |
                            (std::uint64_t{detail::load_le<std::uint16_t>(p + 4)} << 32);
    return mac_key::from_mac48(m, vid);
}

} // namespace splitnet::bridge
