// SPDX-License-Identifier: MIT
// splitnet/packet/ethernet.hpp: Ethernet II and 802.1Q/802.1ad VLAN tag layouts, MAC addresses.
// Header types here and in ipv4/ipv6/tcp/udp.hpp are views over packet bytes: they do not
// check bounds. The parser (parser.hpp) establishes that a header lies inside the frame;
// code that holds a parsed_packet may then use the views at its offsets.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include <splitnet/packet/detail/bytes.hpp>

namespace splitnet::packet {

/// A 48-bit MAC address in wire order.
struct mac_address {
    std::array<std::uint8_t, 6> bytes{};

    [[nodiscard]] constexpr bool is_multicast() const noexcept { return (bytes[0] & 0x01) != 0; }
    [[nodiscard]] constexpr bool is_broadcast() const noexcept {
        return bytes == std::array<std::uint8_t, 6>{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    }
    [[nodiscard]] constexpr bool is_zero() const noexcept {
        return bytes == std::array<std::uint8_t, 6>{};
    }
    /// The address as the low 48 bits of an integer, first wire byte most significant.
    [[nodiscard]] constexpr std::uint64_t to_u64() const noexcept {
        std::uint64_t v = 0;
        for (auto b : bytes) {
            v = (v << 8) | b;
        }
        return v;
    }
    [[nodiscard]] static constexpr mac_address from_u64(std::uint64_t v) noexcept {
        mac_address m;
        for (int i = 5; i >= 0; --i) {
            m.bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v);
            v >>= 8;
        }
        return m;
    }
    friend constexpr bool operator==(const mac_address&, const mac_address&) noexcept = default;
};
static_assert(sizeof(mac_address) == 6 && std::is_trivially_copyable_v<mac_address>);

/// "02:00:00:00:00:01" (lower case, colon separated).
[[nodiscard]] inline std::string to_string(const mac_address& m) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string s(17, ':');
    for (std::size_t i = 0; i < 6; ++i) {
        s[i * 3] = hex[m.bytes[i] >> 4];
        s[i * 3 + 1] = hex[m.bytes[i] & 0xf];
    }
    return s;
}

/// Parses six colon-separated hex bytes ("2:0:0:0:0:a1" too); nullopt if malformed.
[[nodiscard]] inline std::optional<mac_address> parse_mac(std::string_view s) noexcept {
    mac_address m;
    std::size_t pos = 0;
    for (std::size_t i = 0; i < 6; ++i) {
        unsigned v = 0;
        std::size_t digits = 0;
        for (; pos < s.size() && s[pos] != ':' && digits < 3; ++pos, ++digits) {
            const char c = s[pos];
            const int d = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                 : -1;
            if (d < 0) {
                return std::nullopt;
            }
            v = v * 16 + static_cast<unsigned>(d);
        }
        if (digits == 0 || digits > 2 || (i < 5 && (pos >= s.size() || s[pos] != ':'))) {
            return std::nullopt;
        }
        m.bytes[i] = static_cast<std::uint8_t>(v);
        pos += i < 5 ? 1 : 0;
    }
    if (pos != s.size()) {
        return std::nullopt;
    }
    return m;
}

namespace ether_type {
inline constexpr std::uint16_t ipv4 = 0x0800;
inline constexpr std::uint16_t arp = 0x0806;
inline constexpr std::uint16_t vlan = 0x8100; // 802.1Q C-tag
inline constexpr std::uint16_t qinq = 0x88a8; // 802.1ad S-tag
inline constexpr std::uint16_t ipv6 = 0x86dd;
} // namespace ether_type

inline constexpr std::size_t ethernet_header_len = 14;
inline constexpr std::size_t vlan_tag_len = 4;
inline constexpr std::size_t ethernet_min_frame_len = 60; // without FCS

/// View of a 14-byte Ethernet II header.
template <class Byte>
class ethernet_header {
    static_assert(std::is_same_v<std::remove_const_t<Byte>, std::uint8_t>);

public:
    explicit constexpr ethernet_header(Byte* p) noexcept : p_(p) {}

    [[nodiscard]] mac_address dst() const noexcept { return read_mac(p_); }
    [[nodiscard]] mac_address src() const noexcept { return read_mac(p_ + 6); }
    [[nodiscard]] std::uint16_t type() const noexcept { return detail::load_be16(p_ + 12); }

    void set_dst(const mac_address& m) noexcept
        requires(!std::is_const_v<Byte>)
    {
        std::memcpy(p_, m.bytes.data(), 6);
    }
    void set_src(const mac_address& m) noexcept
        requires(!std::is_const_v<Byte>)
    {
        std::memcpy(p_ + 6, m.bytes.data(), 6);
    }
    void set_type(std::uint16_t t) noexcept
        requires(!std::is_const_v<Byte>)
    {
        detail::store_be16(p_ + 12, t);
    }

private:
    static mac_address read_mac(const std::uint8_t* p) noexcept {
        mac_address m;
        std::memcpy(m.bytes.data(), p, 6);
        return m;
    }
    Byte* p_;
};
template <class Byte>
ethernet_header(Byte*) -> ethernet_header<Byte>;

/// View of a 4-byte VLAN tag (TCI then the encapsulated EtherType), as it follows a TPID.
template <class Byte>
class vlan_tag {
public:
    explicit constexpr vlan_tag(Byte* p) noexcept : p_(p) {}
    [[nodiscard]] std::uint16_t tci() const noexcept { return detail::load_be16(p_); }
    [[nodiscard]] std::uint16_t vid() const noexcept { return tci() & 0x0fff; }
    [[nodiscard]] std::uint8_t pcp() const noexcept {
        return static_cast<std::uint8_t>(tci() >> 13);
    }
    [[nodiscard]] std::uint16_t inner_type() const noexcept { return detail::load_be16(p_ + 2); }
    void set_tci(std::uint16_t v) noexcept
        requires(!std::is_const_v<Byte>)
    {
        detail::store_be16(p_, v);
    }

private:
    Byte* p_;
};
template <class Byte>
vlan_tag(Byte*) -> vlan_tag<Byte>;

} // namespace splitnet::packet
