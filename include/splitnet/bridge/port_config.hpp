// SPDX-License-Identifier: MIT
// splitnet/bridge/port_config.hpp: what a bridge port is allowed to do: learning and flooding
// flags, isolation, anti-spoofing, egress MTU and segmentation-offload capabilities, the port
// VLAN id. Anchors: Linux bridge port flags (BR_LEARNING, BR_FLOOD, BR_MCAST_FLOOD,
// BR_BCAST_FLOOD, BR_ISOLATED; `bridge link set`), Xen's vif-bridge / vif-common.sh scripts
// (a guest's vif may only send from the MAC it was assigned), netdev features NETIF_F_TSO,
// NETIF_F_TSO6, NETIF_F_GSO_UDP_L4 (what an egress device takes without software GSO).
#pragma once

#include <cstdint>
#include <vector>

#include <splitnet/packet/ethernet.hpp>

namespace splitnet::bridge {

namespace port_flag {
inline constexpr std::uint32_t learning = 1U << 0;        ///< learn source MACs (BR_LEARNING)
inline constexpr std::uint32_t flood_unknown = 1U << 1;   ///< receives unknown unicast (BR_FLOOD)
inline constexpr std::uint32_t flood_multicast = 1U << 2; ///< receives multicast (BR_MCAST_FLOOD)
inline constexpr std::uint32_t flood_broadcast = 1U << 3; ///< receives broadcast (BR_BCAST_FLOOD)
/// Isolated ports exchange no traffic with each other, only with non-isolated ports such as
/// the uplink (BR_ISOLATED): guest-to-guest switching off.
inline constexpr std::uint32_t isolated = 1U << 4;
inline constexpr std::uint32_t gso_tcpv4 = 1U << 5;  ///< egress takes TCP/IPv4 aggregates (TSO)
inline constexpr std::uint32_t gso_tcpv6 = 1U << 6;  ///< egress takes TCP/IPv6 aggregates (TSO6)
inline constexpr std::uint32_t gso_udp_l4 = 1U << 7; ///< egress takes UDP aggregates (GSO_UDP_L4)
inline constexpr std::uint32_t defaults =
    learning | flood_unknown | flood_multicast | flood_broadcast;
} // namespace port_flag

/// Most source MACs one port may be assigned for anti-spoofing (a vif usually has one).
inline constexpr std::size_t max_allowed_macs = 8;

struct port_config {
    std::uint32_t flags = port_flag::defaults;
    /// L3 MTU of the egress link: frames up to mtu plus their Ethernet (and VLAN) header pass;
    /// larger ones are resegmented when they are GSO aggregates, dropped otherwise.
    std::uint32_t mtu = 1500;
    /// Learned MACs this port may hold in the FDB; 0 = the FDB's default port limit.
    std::uint32_t learn_limit = 0;
    /// Non-empty: anti-spoofing. Frames from any other source MAC are dropped and counted
    /// (the guest's assigned MACs, as Xen's vif scripts enforce). Empty: any unicast source.
    std::vector<packet::mac_address> allowed_src;
    /// VLAN filtering only: VLAN of untagged and priority-tagged frames received on this port
    /// (and the port is made a member of it, egress untagged); 0 = drop them.
    std::uint16_t pvid = 1;
};

} // namespace splitnet::bridge
