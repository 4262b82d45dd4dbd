// Test support for netback/netfront: a driver domain's memory, a connected back end and front
// end in this process (the back end's half of the handshake runs on a thread), and frames whose
// bytes say who they are (a sequence number and a pattern derived from it), so a test can check
// every frame that arrives.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <splitnet/netif/backend.hpp>
#include <splitnet/netif/frontend.hpp>
#include <splitnet/packet/packet_builder.hpp>

#include "support/chain.hpp"

namespace splitnet::test {

/// A frame of `bytes` spread over as many buffers of `pool` as it needs.
inline packet::frame make_chain(packet::buffer_pool& pool, std::span<const std::uint8_t> bytes) {
    packet::frame head;
    if (!try_make_chain(pool, bytes, head)) {
        throw std::runtime_error("make_chain: pool empty");
    }
    return head;
}

inline std::vector<std::uint8_t> bytes_of(const packet::frame& f) {
    std::vector<std::uint8_t> v(f.pkt_len);
    const std::size_t n = packet::copy_out(f, v);
    v.resize(n);
    return v;
}

/// An Ethernet frame (EtherType 0x88b5, local experimental) whose payload starts with `seq`
/// and continues with a pattern derived from it.
inline std::vector<std::uint8_t> numbered_frame(std::uint64_t seq, std::size_t len,
                                                const packet::mac_address& dst = {},
                                                const packet::mac_address& src = {}) {
    std::vector<std::uint8_t> v(std::max<std::size_t>(len, 22));
    std::memcpy(v.data(), dst.bytes.data(), 6);
    std::memcpy(v.data() + 6, src.bytes.data(), 6);
    v[12] = 0x88;
    v[13] = 0xb5;
    std::memcpy(v.data() + 14, &seq, 8);
    packet::fill_stream_bytes({v.data() + 22, v.size() - 22}, static_cast<std::uint32_t>(seq), 0);
    return v;
}

/// The sequence number of a numbered frame whose bytes are all as made; -1 if any differs.
inline std::int64_t check_numbered(const std::vector<std::uint8_t>& v) {
    if (v.size() < 22 || v[12] != 0x88 || v[13] != 0xb5) {
        return -1;
    }
    std::uint64_t seq;
    std::memcpy(&seq, v.data() + 14, 8);
    const auto want = numbered_frame(seq, v.size(), {}, {});
    return std::memcmp(want.data() + 12, v.data() + 12, v.size() - 12) == 0
               ? static_cast<std::int64_t>(seq)
               : -1;
}

/// The driver domain's side: its shared memory and pool, and the parameters its back ends use.
template <coalesce::moderation_policy M = coalesce::moderation::none>
struct driver_domain_memory {
    explicit driver_domain_memory(std::uint32_t frames = 8192, bool frontend_copy = true)
        : mem({.table_pages = 32,
               .activity_slots = 16,
               .pool = {.frame_count = frames, .frame_size = 2048, .headroom = 256},
               .populate = false}) {
        params.pool = &mem.pool();
        params.memory = &mem;
        params.offer.frontend_copy = frontend_copy;
        params.mtu = 9000;
    }
    netif::backend_memory mem;
    netif::backend_params<M> params;
};

template <coalesce::moderation_policy M>
struct endpoint_pair {
    std::unique_ptr<netif::backend<M>> back;
    std::unique_ptr<netif::frontend> front;
};

/// Connects a front end to a back end over a socket pair: the back end's half runs on a thread
/// (send hello, read connect, accept). Throws with the reason on failure.
template <coalesce::moderation_policy M>
endpoint_pair<M> connect_pair(const netif::backend_params<M>& params,
                              const netif::frontend_config& cfg, grant::domain_id id = 1) {
    auto [b, f] = netif::control::channel::pair();
    endpoint_pair<M> out;
    std::string why;
    std::thread backend_side([&, ch = std::move(b)]() mutable {
        netif::control::message hello(netif::control::message_type::hello,
                                      netif::control::link_state::init_wait);
        netif::backend_params<M> p = params;
        p.offer.activity_slots = std::max(p.offer.activity_slots, p.offer.max_queues);
        netif::hello_info{p.offer, p.backend_id, id, p.mtu}.write(hello);
        ch.send(hello);
        netif::control::message m;
        if (ch.receive(m, std::chrono::seconds(5)).status != netif::control::receive_status::ok) {
            why = "no connect message";
            return;
        }
        out.back = netif::backend<M>::accept(ch, m, p, id, why);
        if (!out.back) {
            ch.send_error(why, netif::control::link_state::closed);
        }
    });
    std::string front_error;
    try {
        out.front = netif::frontend::connect(std::move(f), cfg);
    } catch (const std::exception& e) {
        front_error = e.what();
    }
    backend_side.join();
    if (!out.back || !out.front) {
        throw std::runtime_error("connect_pair: back end: " + why + "; front end: " + front_error);
    }
    return out;
}

} // namespace splitnet::test
