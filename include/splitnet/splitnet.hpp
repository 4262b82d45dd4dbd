// SPDX-License-Identifier: MIT
// splitnet/splitnet.hpp: umbrella header. Includes every public header that needs nothing
// beyond splitnet::splitnet (the AF_XDP port needs splitnet::afxdp and is included on its own).
#pragma once

#include <splitnet/config.hpp>
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
#include <splitnet/version.hpp>
