// SPDX-License-Identifier: MIT
// splitnet/packet/udp.hpp: UDP header (RFC 768) as a view over packet bytes.
#pragma once

#include <cstdint>
#include <type_traits>

#include <splitnet/packet/detail/bytes.hpp>

namespace splitnet::packet {

inline constexpr std::size_t udp_header_len = 8;

template <class Byte>
class udp_header {
    static_assert(std::is_same_v<std::remove_const_t<Byte>, std::uint8_t>);
    static constexpr bool writable = !std::is_const_v<Byte>;

public:
    explicit constexpr udp_header(Byte* p) noexcept : p_(p) {}
    [[nodiscard]] Byte* data() const noexcept { return p_; }
    [[nodiscard]] std::uint16_t src_port() const noexcept { return detail::load_be16(p_); }
    [[nodiscard]] std::uint16_t dst_port() const noexcept { return detail::load_be16(p_ + 2); }
    [[nodiscard]] std::uint16_t length() const noexcept { return detail::load_be16(p_ + 4); }
    [[nodiscard]] std::uint16_t checksum_raw() const noexcept {
        return detail::load<std::uint16_t>(p_ + 6);
    }
    void set_src_port(std::uint16_t v) noexcept
        requires writable
    {
        detail::store_be16(p_, v);
    }
    void set_dst_port(std::uint16_t v) noexcept
        requires writable
    {
        detail::store_be16(p_ + 2, v);
    }
    void set_length(std::uint16_t v) noexcept
        requires writable
    {
        detail::store_be16(p_ + 4, v);
    }
    void set_checksum_raw(std::uint16_t v) noexcept
        requires writable
    {
        detail::store(p_ + 6, v);
    }

private:
    Byte* p_;
};
template <class Byte>
udp_header(Byte*) -> udp_header<Byte>;

} // namespace splitnet::packet
