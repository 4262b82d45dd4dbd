// SPDX-License-Identifier: MIT
// splitnet/nic/port.hpp: the Port concept, the NIC side of the driver domain (an AF_XDP socket, a
// TAP device, an in-memory port), and the counters every port keeps.
//
// Ownership of buffers is explicit:
//  - rx_burst(frames) writes up to frames.size() received frames; the caller owns each (and every
//    buffer of its chain) and returns it to the port's pool (pool()) when done with it, or hands
//    it on (to tx_burst of this or another port sharing the pool).
//  - tx_burst(frames) takes the first n frames it returns: from then on the port owns them and
//    gives their buffers back to the pool when the device is done with them (at once for a copying
//    device such as TAP, at completion for AF_XDP). The frames from n on stay with the caller,
//    who retries or frees them: a full device is a partial send, never a silent drop.
// Frames carry offload metadata (packet::offload_info) both ways; a port that cannot honour
// GSO metadata on transmit says so in its capabilities, so the pipeline segments first.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>

#include <splitnet/packet/buffer_pool.hpp>
#include <splitnet/packet/frame.hpp>

namespace splitnet::nic {

/// What a port can take on transmit and gives on receive.
struct port_caps {
    bool tx_gso_tcp = false;  ///< accepts TCP GSO frames (the device segments)
    bool tx_gso_udp = false;  ///< accepts UDP_L4 GSO frames
    bool tx_csum = false;     ///< completes partial checksums
    bool rx_gso = false;      ///< may deliver aggregates (GSO frames)
    std::uint32_t mtu = 1500; ///< largest IP packet it sends as one frame
};

struct port_stats {
    std::uint64_t rx_packets = 0;
    std::uint64_t rx_bytes = 0;
    std::uint64_t tx_packets = 0;
    std::uint64_t tx_bytes = 0;
    std::uint64_t rx_no_buffers = 0; ///< receive stopped: the pool was empty
    std::uint64_t rx_errors = 0;     ///< frames dropped on receive (bad metadata, truncated)
    std::uint64_t tx_full = 0;       ///< transmits cut short by a full device (retried by caller)
    std::uint64_t tx_errors = 0;     ///< frames the device refused (counted, freed)
    std::uint64_t wakeups = 0;       ///< system calls made to kick the device
};

template <class P>
concept port = requires(P& p, const P& cp, std::span<packet::frame> frames) {
    { p.rx_burst(frames) } noexcept -> std::same_as<std::size_t>;
    { p.tx_burst(frames) } noexcept -> std::same_as<std::size_t>;
    { cp.caps() } noexcept -> std::same_as<port_caps>;
    { cp.stats() } noexcept -> std::same_as<const port_stats&>;
    { p.pool() } noexcept -> std::same_as<packet::buffer_pool&>;
};

} // namespace splitnet::nic
