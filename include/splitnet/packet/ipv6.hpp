// SPDX-License-Identifier: MIT
// splitnet/packet/ipv6.hpp: IPv6 fixed header (RFC 8200) as a view over packet bytes.
// Extension headers are walked by the parser (parser.hpp). No bounds checks: see ethernet.hpp.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <splitnet/packet/detail/bytes.hpp>

namespace splitnet::packet {

inline constexpr std::size_t ipv6_header_len = 40;
inline constexpr std::size_t ipv6_frag_header_len = 8;

using ipv6_address = std::array<std::uint8_t, 16>;

template <class Byte>
class ipv6_header {
    static_assert(std::is_same_v<std::remove_const_t<Byte>, std::uint8_t>);
    static constexpr bool writable = !std::is_const_v<Byte>;

public:
    explicit constexpr ipv6_header(Byte* p) noexcept : p_(p) {}

    [[nodiscard]] Byte* data() const noexcept { return p_; }
    [[nodiscard]] std::uint8_t version() const noexcept { return p_[0] >> 4; }
    /// Version, traffic class and flow label as one word.
    [[nodiscard]] std::uint32_t first_word() const noexcept { return detail::load_be32(p_); }
    [[nodiscard]] std::uint8_t traffic_class() const noexcept {
        return static_cast<std::uint8_t>(first_word() >> 20);
    }
    [[nodiscard]] std::uint32_t flow_label() const noexcept { return first_word() & 0x000fffff; }
    [[nodiscard]] std::uint16_t payload_length() const noexcept {
        return detail::load_be16(p_ + 4);
    }
    [[nodiscard]] std::uint8_t next_header() const noexcept { return p_[6]; }
    [[nodiscard]] std::uint8_t hop_limit() const noexcept { return p_[7]; }
    [[nodiscard]] ipv6_address src() const noexcept { return read_addr(p_ + 8); }
    [[nodiscard]] ipv6_address dst() const noexcept { return read_addr(p_ + 24); }

    void set_first_word(std::uint32_t v) noexcept
        requires writable
    {
        detail::store_be32(p_, v);
    }
    void set_payload_length(std::uint16_t v) noexcept
        requires writable
    {
        detail::store_be16(p_ + 4, v);
    }
    void set_next_header(std::uint8_t v) noexcept
        requires writable
    {
        p_[6] = v;
    }
    void set_hop_limit(std::uint8_t v) noexcept
        requires writable
    {
        p_[7] = v;
    }
    void set_src(const ipv6_address& a) noexcept
        requires writable
    {
        std::memcpy(p_ + 8, a.data(), 16);
    }
    void set_dst(const ipv6_address& a) noexcept
        requires writable
    {
        std::memcpy(p_ + 24, a.data(), 16);
    }

private:
    static ipv6_address read_addr(const std::uint8_t* p) noexcept {
        ipv6_address a;
        std::memcpy(a.data(), p, 16);
        return a;
    }
    Byte* p_;
};
template <class Byte>
ipv6_header(Byte*) -> ipv6_header<Byte>;

} // namespace splitnet::packet
