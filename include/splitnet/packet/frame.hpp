// SPDX-License-Identifier: MIT
// splitnet/packet/frame.hpp: the frame descriptor every burst API passes around.
//
// A frame refers to packet bytes; it never owns a copy. `data` points at the first byte of this
// segment. When the bytes live in a buffer_pool (whose arena can be an AF_XDP UMEM), `buffer`
// is the buffer's address in that arena (the UMEM address the fill and completion rings use)
// and `headroom` is how far into the buffer `data` starts; frames over foreign memory set
// `buffer = no_buffer` and are never returned to a pool.
//
// Chains: GRO keeps the segments of an aggregate as they arrived. The head frame holds the
// rewritten headers and its own payload, `next` links the following segments (their `data`
// points past their headers at the payload), `pkt_len` is the length of the whole packet and
// `nb_segs` the number of frames in the chain. The descriptors of chained segments live in the
// buffer_pool's per-buffer slot (buffer_pool::chain_slot), so a chain stays valid while it
// travels through queues. DPDK readers: data_len/pkt_len/nb_segs mean what they do in rte_mbuf.
//
// Ownership rule: whoever holds a frame in a burst owns its buffers (all buffers of the chain)
// until it hands the frame on or returns it with buffer_pool::free_burst.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <type_traits>

#include <splitnet/packet/offload_info.hpp>

namespace splitnet::packet {

inline constexpr std::uint64_t no_buffer = std::numeric_limits<std::uint64_t>::max();

namespace frame_flag {
inline constexpr std::uint16_t rx_hash_valid = 0x0001; ///< rx_hash holds the NIC's flow hash
inline constexpr std::uint16_t vlan_stripped =
    0x0002; ///< vlan_tci holds a tag removed from the bytes
} // namespace frame_flag

struct frame {
    std::uint8_t* data = nullptr;     ///< first byte of this segment
    frame* next = nullptr;            ///< next segment of a chain, nullptr at the tail
    std::uint64_t buffer = no_buffer; ///< owning buffer's arena address, or no_buffer
    std::uint32_t data_len = 0;       ///< bytes at data (this segment)
    std::uint32_t pkt_len = 0;        ///< bytes of the whole packet (sum over the chain)
    std::uint32_t rx_hash = 0;  ///< flow hash from the NIC (valid with frame_flag::rx_hash_valid)
    std::uint16_t headroom = 0; ///< bytes between the buffer start and data
    std::uint16_t port = 0;     ///< ingress port id
    std::uint16_t nb_segs = 1;  ///< frames in the chain starting here
    std::uint16_t flags = 0;    ///< frame_flag bits
    std::uint16_t vlan_tci = 0; ///< with frame_flag::vlan_stripped
    offload_info offload{};

    [[nodiscard]] std::span<std::uint8_t> bytes() const noexcept { return {data, data_len}; }
    [[nodiscard]] bool is_chained() const noexcept { return next != nullptr; }
    [[nodiscard]] bool has_rx_hash() const noexcept {
        return (flags & frame_flag::rx_hash_valid) != 0;
    }
};
static_assert(std::is_trivially_copyable_v<frame>);
static_assert(sizeof(frame) <= 64, "a frame descriptor fits one cache line");

/// Makes a linear frame over memory that no pool owns (tests, tools, user buffers).
[[nodiscard]] inline frame make_frame(std::uint8_t* data, std::uint32_t len,
                                      std::uint16_t port = 0) noexcept {
    frame f;
    f.data = data;
    f.data_len = len;
    f.pkt_len = len;
    f.port = port;
    return f;
}

/// Visits each segment of a chain: fn(frame&) for the head and every linked segment.
template <class Fn>
void for_each_segment(frame& head, Fn&& fn) noexcept(noexcept(fn(head))) {
    for (frame* f = &head; f != nullptr; f = f->next) {
        fn(*f);
    }
}

template <class Fn>
void for_each_segment(const frame& head, Fn&& fn) noexcept(noexcept(fn(head))) {
    for (const frame* f = &head; f != nullptr; f = f->next) {
        fn(*f);
    }
}

/// Copies a frame's bytes (all segments) into `out`; returns the bytes copied (at most out.size()).
[[nodiscard]] inline std::size_t copy_out(const frame& head, std::span<std::uint8_t> out) noexcept {
    std::size_t done = 0;
    for_each_segment(head, [&](const frame& seg) {
        const std::size_t n = seg.data_len < out.size() - done ? seg.data_len : out.size() - done;
        if (n != 0) {
            std::memcpy(out.data() + done, seg.data, n);
        }
        done += n;
    });
    return done;
}

} // namespace splitnet::packet
