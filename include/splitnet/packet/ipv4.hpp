// SPDX-License-Identifier: MIT
// splitnet/packet/ipv4.hpp: IPv4 header layout (RFC 791) as a view over packet bytes.
// No bounds checks: see ethernet.hpp.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <splitnet/packet/detail/bytes.hpp>

namespace splitnet::packet {

namespace ip_proto {
inline constexpr std::uint8_t hop_by_hop = 0;
inline constexpr std::uint8_t icmp = 1;
inline constexpr std::uint8_t tcp = 6;
inline constexpr std::uint8_t udp = 17;
inline constexpr std::uint8_t ipv6_route = 43;
inline constexpr std::uint8_t ipv6_frag = 44;
inline constexpr std::uint8_t esp = 50;
inline constexpr std::uint8_t ah = 51;
inline constexpr std::uint8_t icmpv6 = 58;
inline constexpr std::uint8_t ipv6_none = 59;
inline constexpr std::uint8_t ipv6_dest = 60;
inline constexpr std::uint8_t mobility = 135;
} // namespace ip_proto

inline constexpr std::size_t ipv4_min_header_len = 20;

/// IPv4 flags and fragment offset as they sit in the 16-bit word at offset 6.
namespace ipv4_frag {
inline constexpr std::uint16_t reserved = 0x8000;
inline constexpr std::uint16_t dont_fragment = 0x4000;
inline constexpr std::uint16_t more_fragments = 0x2000;
inline constexpr std::uint16_t offset_mask = 0x1fff;
} // namespace ipv4_frag

using ipv4_address = std::array<std::uint8_t, 4>;

template <class Byte>
class ipv4_header {
    static_assert(std::is_same_v<std::remove_const_t<Byte>, std::uint8_t>);
    static constexpr bool writable = !std::is_const_v<Byte>;

public:
    explicit constexpr ipv4_header(Byte* p) noexcept : p_(p) {}

    [[nodiscard]] Byte* data() const noexcept { return p_; }
    [[nodiscard]] std::uint8_t version() const noexcept { return p_[0] >> 4; }
    /// Header length in bytes (IHL * 4).
    [[nodiscard]] std::size_t header_len() const noexcept {
        return static_cast<std::size_t>(p_[0] & 0x0f) * 4;
    }
    [[nodiscard]] std::uint8_t tos() const noexcept { return p_[1]; }
    [[nodiscard]] std::uint8_t ecn() const noexcept { return p_[1] & 0x03; }
    [[nodiscard]] std::uint16_t total_length() const noexcept { return detail::load_be16(p_ + 2); }
    [[nodiscard]] std::uint16_t id() const noexcept { return detail::load_be16(p_ + 4); }
    [[nodiscard]] std::uint16_t frag_word() const noexcept { return detail::load_be16(p_ + 6); }
    [[nodiscard]] bool dont_fragment() const noexcept {
        return (frag_word() & ipv4_frag::dont_fragment) != 0;
    }
    [[nodiscard]] bool is_fragment() const noexcept {
        return (frag_word() & (ipv4_frag::more_fragments | ipv4_frag::offset_mask)) != 0;
    }
    [[nodiscard]] std::uint8_t ttl() const noexcept { return p_[8]; }
    [[nodiscard]] std::uint8_t protocol() const noexcept { return p_[9]; }
    /// Header checksum exactly as stored (network order bytes loaded as a native integer).
    [[nodiscard]] std::uint16_t checksum_raw() const noexcept {
        return detail::load<std::uint16_t>(p_ + 10);
    }
    [[nodiscard]] ipv4_address src() const noexcept { return read_addr(p_ + 12); }
    [[nodiscard]] ipv4_address dst() const noexcept { return read_addr(p_ + 16); }

    void set_version_ihl(std::size_t header_bytes) noexcept
        requires writable
    {
        p_[0] = static_cast<std::uint8_t>(0x40 | (header_bytes / 4));
    }
    void set_tos(std::uint8_t v) noexcept
        requires writable
    {
        p_[1] = v;
    }
    void set_total_length(std::uint16_t v) noexcept
        requires writable
    {
        detail::store_be16(p_ + 2, v);
    }
    void set_id(std::uint16_t v) noexcept
        requires writable
    {
        detail::store_be16(p_ + 4, v);
    }
    void set_frag_word(std::uint16_t v) noexcept
        requires writable
    {
        detail::store_be16(p_ + 6, v);
    }
    void set_ttl(std::uint8_t v) noexcept
        requires writable
    {
        p_[8] = v;
    }
    void set_protocol(std::uint8_t v) noexcept
        requires writable
    {
        p_[9] = v;
    }
    void set_checksum_raw(std::uint16_t v) noexcept
        requires writable
    {
        detail::store(p_ + 10, v);
    }
    void set_src(const ipv4_address& a) noexcept
        requires writable
    {
        std::memcpy(p_ + 12, a.data(), 4);
    }
    void set_dst(const ipv4_address& a) noexcept
        requires writable
    {
        std::memcpy(p_ + 16, a.data(), 4);
    }

private:
    static ipv4_address read_addr(const std::uint8_t* p) noexcept {
        ipv4_address a;
        std::memcpy(a.data(), p, 4);
        return a;
    }
    Byte* p_;
};
template <class Byte>
ipv4_header(Byte*) -> ipv4_header<Byte>;

} // namespace splitnet::packet
