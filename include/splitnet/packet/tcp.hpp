// SPDX-License-Identifier: MIT
// splitnet/packet/tcp.hpp: TCP header (RFC 9293) as a view over packet bytes, and a
// bounds-checked parser for its options (MSS, window scale, SACK, timestamps: RFC 7323, 2018).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <type_traits>

#include <splitnet/packet/detail/bytes.hpp>

namespace splitnet::packet {

inline constexpr std::size_t tcp_min_header_len = 20;
inline constexpr std::size_t tcp_max_header_len = 60;

/// TCP flag bits as they sit in byte 13 of the header.
namespace tcp_flag {
inline constexpr std::uint8_t fin = 0x01;
inline constexpr std::uint8_t syn = 0x02;
inline constexpr std::uint8_t rst = 0x04;
inline constexpr std::uint8_t psh = 0x08;
inline constexpr std::uint8_t ack = 0x10;
inline constexpr std::uint8_t urg = 0x20;
inline constexpr std::uint8_t ece = 0x40;
inline constexpr std::uint8_t cwr = 0x80;
} // namespace tcp_flag

template <class Byte>
class tcp_header {
    static_assert(std::is_same_v<std::remove_const_t<Byte>, std::uint8_t>);
    static constexpr bool writable = !std::is_const_v<Byte>;

public:
    explicit constexpr tcp_header(Byte* p) noexcept : p_(p) {}

    [[nodiscard]] Byte* data() const noexcept { return p_; }
    [[nodiscard]] std::uint16_t src_port() const noexcept { return detail::load_be16(p_); }
    [[nodiscard]] std::uint16_t dst_port() const noexcept { return detail::load_be16(p_ + 2); }
    [[nodiscard]] std::uint32_t seq() const noexcept { return detail::load_be32(p_ + 4); }
    [[nodiscard]] std::uint32_t ack_seq() const noexcept { return detail::load_be32(p_ + 8); }
    /// Header length in bytes (data offset * 4).
    [[nodiscard]] std::size_t header_len() const noexcept {
        return static_cast<std::size_t>(p_[12] >> 4) * 4;
    }
    /// The AccECN "AE" bit (formerly NS), bit 0 of byte 12.
    [[nodiscard]] bool ae() const noexcept { return (p_[12] & 0x01) != 0; }
    [[nodiscard]] std::uint8_t flags() const noexcept { return p_[13]; }
    [[nodiscard]] std::uint16_t window() const noexcept { return detail::load_be16(p_ + 14); }
    [[nodiscard]] std::uint16_t checksum_raw() const noexcept {
        return detail::load<std::uint16_t>(p_ + 16);
    }
    [[nodiscard]] std::uint16_t urgent_pointer() const noexcept {
        return detail::load_be16(p_ + 18);
    }
    /// Data offset, reserved bits, flags and window as one word (Linux GRO's "word 3").
    [[nodiscard]] std::uint32_t word3() const noexcept { return detail::load_be32(p_ + 12); }

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
    void set_seq(std::uint32_t v) noexcept
        requires writable
    {
        detail::store_be32(p_ + 4, v);
    }
    void set_ack_seq(std::uint32_t v) noexcept
        requires writable
    {
        detail::store_be32(p_ + 8, v);
    }
    void set_header_len(std::size_t bytes) noexcept
        requires writable
    {
        p_[12] = static_cast<std::uint8_t>((p_[12] & 0x0f) | ((bytes / 4) << 4));
    }
    void set_flags(std::uint8_t v) noexcept
        requires writable
    {
        p_[13] = v;
    }
    void set_window(std::uint16_t v) noexcept
        requires writable
    {
        detail::store_be16(p_ + 14, v);
    }
    void set_checksum_raw(std::uint16_t v) noexcept
        requires writable
    {
        detail::store(p_ + 16, v);
    }
    void set_urgent_pointer(std::uint16_t v) noexcept
        requires writable
    {
        detail::store_be16(p_ + 18, v);
    }

private:
    Byte* p_;
};
template <class Byte>
tcp_header(Byte*) -> tcp_header<Byte>;

namespace tcp_option_kind {
inline constexpr std::uint8_t eol = 0;
inline constexpr std::uint8_t nop = 1;
inline constexpr std::uint8_t mss = 2;
inline constexpr std::uint8_t window_scale = 3;
inline constexpr std::uint8_t sack_permitted = 4;
inline constexpr std::uint8_t sack = 5;
inline constexpr std::uint8_t timestamp = 8;
} // namespace tcp_option_kind

struct sack_block {
    std::uint32_t left;
    std::uint32_t right;
};

/// The options of one TCP header, decoded. Absent options have their has_* flag false.
struct tcp_options {
    bool valid = true; ///< false: an option overran the header or had a wrong length
    bool has_mss = false;
    bool has_window_scale = false;
    bool sack_permitted = false;
    bool has_timestamp = false;
    std::uint8_t window_scale = 0;
    std::uint8_t sack_count = 0;       ///< SACK blocks decoded into sack[] (at most 4 fit)
    std::uint8_t timestamp_offset = 0; ///< offset of the timestamp option within the options
    std::uint16_t mss = 0;
    std::uint32_t ts_val = 0;
    std::uint32_t ts_ecr = 0;
    std::array<sack_block, 4> sack{};
};

/// Decodes TCP option bytes (the header bytes after the first 20). Never reads outside
/// `opts`; a malformed list yields valid == false with the options decoded up to the fault.
[[nodiscard]] inline tcp_options parse_tcp_options(std::span<const std::uint8_t> opts) noexcept {
    tcp_options o;
    std::size_t i = 0;
    while (i < opts.size()) {
        const std::uint8_t kind = opts[i];
        if (kind == tcp_option_kind::eol) {
            break;
        }
        if (kind == tcp_option_kind::nop) {
            ++i;
            continue;
        }
        if (i + 1 >= opts.size()) {
            o.valid = false;
            break;
        }
        const std::size_t len = opts[i + 1];
        if (len < 2 || i + len > opts.size()) {
            o.valid = false;
            break;
        }
        const std::uint8_t* v = opts.data() + i + 2;
        switch (kind) {
        case tcp_option_kind::mss:
            if (len != 4) {
                o.valid = false;
                return o;
            }
            o.has_mss = true;
            o.mss = detail::load_be16(v);
            break;
        case tcp_option_kind::window_scale:
            if (len != 3) {
                o.valid = false;
                return o;
            }
            o.has_window_scale = true;
            o.window_scale = v[0];
            break;
        case tcp_option_kind::sack_permitted:
            if (len != 2) {
                o.valid = false;
                return o;
            }
            o.sack_permitted = true;
            break;
        case tcp_option_kind::sack: {
            if ((len - 2) % 8 != 0 || len == 2) {
                o.valid = false;
                return o;
            }
            const std::size_t n = (len - 2) / 8;
            for (std::size_t b = 0; b < n && b < o.sack.size(); ++b) {
                o.sack[b] = {detail::load_be32(v + 8 * b), detail::load_be32(v + 8 * b + 4)};
            }
            o.sack_count = static_cast<std::uint8_t>(n < o.sack.size() ? n : o.sack.size());
            break;
        }
        case tcp_option_kind::timestamp:
            if (len != 10) {
                o.valid = false;
                return o;
            }
            o.has_timestamp = true;
            o.timestamp_offset = static_cast<std::uint8_t>(i);
            o.ts_val = detail::load_be32(v);
            o.ts_ecr = detail::load_be32(v + 4);
            break;
        default:
            break; // unknown options are skipped by their length
        }
        i += len;
    }
    return o;
}

} // namespace splitnet::packet
