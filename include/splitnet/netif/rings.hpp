// SPDX-License-Identifier: MIT
// splitnet/netif/rings.hpp: the netif TX and RX rings as split-ring types. With xen_layout a
// 4 KiB page holds 256 slots of each, exactly as netif.h's DEFINE_RING_TYPES(netif_tx, ...) and
// DEFINE_RING_TYPES(netif_rx, ...) lay them out.
#pragma once

#include <cstdint>

#include <splitnet/netif/features.hpp>
#include <splitnet/netif/protocol.hpp>
#include <splitnet/ring/split_ring.hpp>

namespace splitnet::netif {

template <ring::ring_layout Layout = ring::xen_layout>
using tx_front_ring = ring::front_ring<tx_request, tx_response, Layout>;
template <ring::ring_layout Layout = ring::xen_layout>
using tx_back_ring = ring::back_ring<tx_request, tx_response, Layout>;
template <ring::ring_layout Layout = ring::xen_layout>
using rx_front_ring = ring::front_ring<rx_request, rx_response, Layout>;
template <ring::ring_layout Layout = ring::xen_layout>
using rx_back_ring = ring::back_ring<rx_request, rx_response, Layout>;

/// Slots of an RX ring of `pages` 4 KiB pages (a multi-page ring: features.hpp).
[[nodiscard]] constexpr std::uint32_t rx_ring_slots(std::uint32_t pages) noexcept {
    return ring::shared_ring<rx_request, rx_response>::entries_for(std::size_t{pages} * 4096);
}
static_assert(rx_ring_slots(2) == 512 && rx_ring_slots(4) == 1024);
static_assert(rx_ring_slots(max_rx_ring_pages) * sizeof(std::uint32_t) <= 4096,
              "frontend copy keeps one grant reference per RX slot in the one rx-grants page");

static_assert(ring::shared_ring<tx_request, tx_response>::entries_for(4096) == 256);
static_assert(ring::shared_ring<rx_request, rx_response>::entries_for(4096) == 256);
static_assert(ring::shared_ring<tx_request, tx_response>::entries_for(65536) == 4096);

} // namespace splitnet::netif
