// Test support: a frame of given bytes spread over as many buffers of a pool as it needs (the
// driver domain's side of a multi-slot packet).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include <splitnet/packet/buffer_pool.hpp>

namespace splitnet::test {

/// Builds `head` from `bytes`; false, holding no buffer, when empty or the pool runs short.
inline bool try_make_chain(packet::buffer_pool& pool, std::span<const std::uint8_t> bytes,
                           packet::frame& head) {
    const std::uint32_t room = pool.frame_size() - pool.default_headroom();
    const auto n = static_cast<std::uint32_t>((bytes.size() + room - 1) / room);
    std::vector<packet::frame> b(n);
    const std::size_t got = pool.alloc_burst(b);
    if (n == 0 || got != n) {
        pool.free_burst({b.data(), got});
        return false;
    }
    std::size_t off = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
        const std::size_t c = std::min<std::size_t>(room, bytes.size() - off);
        std::memcpy(b[i].data, bytes.data() + off, c);
        b[i].data_len = b[i].pkt_len = static_cast<std::uint32_t>(c);
        off += c;
    }
    head = b[0];
    head.pkt_len = static_cast<std::uint32_t>(bytes.size());
    head.nb_segs = static_cast<std::uint16_t>(n);
    packet::frame* tail = &head;
    for (std::uint32_t i = 1; i < n; ++i) {
        packet::frame& s = pool.chain_slot(b[i].buffer);
        s = b[i];
        tail->next = &s;
        tail = &s;
    }
    tail->next = nullptr;
    return true;
}

} // namespace splitnet::test
