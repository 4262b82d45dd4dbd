// SPDX-License-Identifier: MIT
// splitnet/splitnet.hpp: umbrella header. Includes every public header that needs nothing
// beyond splitnet::splitnet (the AF_XDP port needs splitnet::afxdp and is included on its own).
#pragma once

#include <splitnet/config.hpp>
#include <splitnet/event/event_channel.hpp>
#include <splitnet/event/eventfd_channel.hpp>
#include <splitnet/event/inproc_channel.hpp>
#include <splitnet/grant/grant_cache.hpp>
#include <splitnet/grant/grant_copy.hpp>
#include <splitnet/grant/grant_entry.hpp>
#include <splitnet/grant/grant_map.hpp>
#include <splitnet/grant/grant_table.hpp>
#include <splitnet/grant/memory_domain.hpp>
#include <splitnet/netif/protocol.hpp>
#include <splitnet/netif/rings.hpp>
#include <splitnet/netif/rx_packet.hpp>
#include <splitnet/netif/tx_packet.hpp>
#include <splitnet/packet/buffer_pool.hpp>
#include <splitnet/packet/checksum.hpp>
#include <splitnet/packet/checksum_offload.hpp>
#include <splitnet/packet/ethernet.hpp>
#include <splitnet/packet/flow_key.hpp>
#include <splitnet/packet/frame.hpp>
#include <splitnet/packet/ipv4.hpp>
#include <splitnet/packet/ipv6.hpp>
#include <splitnet/packet/offload_info.hpp>
#include <splitnet/packet/packet_builder.hpp>
#include <splitnet/packet/parser.hpp>
#include <splitnet/packet/pcap.hpp>
#include <splitnet/packet/tcp.hpp>
#include <splitnet/packet/udp.hpp>
#include <splitnet/ring/burst_queue.hpp>
#include <splitnet/ring/fd_passing.hpp>
#include <splitnet/ring/lockfree_adapter.hpp>
#include <splitnet/ring/ring_layout.hpp>
#include <splitnet/ring/shared_region.hpp>
#include <splitnet/ring/split_ring.hpp>
#include <splitnet/ring/spsc_ring.hpp>
#include <splitnet/version.hpp>
