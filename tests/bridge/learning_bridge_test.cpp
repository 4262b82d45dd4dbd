// learning_bridge: unicast after learning, flooding rules (broadcast, multicast, unknown
// unicast, per-port flood flags, never back to the ingress port), drops by reason, port
// isolation, anti-spoofing, 802.1Q membership and tagging, LRO-aware egress (aggregates kept
// whole, marked for resegmentation only on ports that cannot take them), the ownership
// invariants of port_bursts, a differential test against a reference bridge written with
// std::unordered_map over random port configurations and traffic, and one of the specialised
// loop against the general loop (bridge_config::specialise off) over random traffic.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <set>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/bridge/learning_bridge.hpp>

namespace br = splitnet::bridge;
namespace sp = splitnet::packet;

namespace {

constexpr sp::mac_address bcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
constexpr sp::mac_address mcast{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}};
constexpr sp::mac_address stp{{0x01, 0x80, 0xc2, 0x00, 0x00, 0x00}};

sp::mac_address mac(std::uint8_t i) {
    return {{0x02, 0x00, 0x00, 0x00, 0x00, i}};
}

/// Frames over owned 64-byte buffers.
class traffic {
public:
    sp::frame& add(br::port_id in, const sp::mac_address& dst, const sp::mac_address& src,
                   int vlan_tag = -1, std::uint32_t pkt_len = 60) {
        auto& b = bufs_.emplace_back(std::make_unique<std::array<std::uint8_t, 64>>());
        std::uint8_t* p = b->data();
        std::memcpy(p, dst.bytes.data(), 6);
        std::memcpy(p + 6, src.bytes.data(), 6);
        std::size_t off = 12;
        if (vlan_tag >= 0) {
            p[12] = 0x81;
            p[13] = 0x00;
            p[14] = static_cast<std::uint8_t>(vlan_tag >> 8);
            p[15] = static_cast<std::uint8_t>(vlan_tag);
            off = 16;
        }
        p[off] = 0x08;
        p[off + 1] = 0x00;
        sp::frame f = sp::make_frame(p, 64, in);
        f.pkt_len = pkt_len;
        frames_.push_back(f);
        return frames_.back();
    }
    std::vector<sp::frame>& frames() { return frames_; }
    void clear() {
        frames_.clear();
        bufs_.clear();
    }

private:
    std::vector<std::unique_ptr<std::array<std::uint8_t, 64>>> bufs_;
    std::vector<sp::frame> frames_;
};

/// Ports a frame was emitted to, with the marks.
std::vector<br::port_id> egress_ports(const br::port_bursts& out, const sp::frame* f) {
    std::vector<br::port_id> ports;
    for (const br::port_id p : out.active_ports()) {
        for (const auto& e : out.port(p)) {
            if (e.frame == f) {
                ports.push_back(p);
            }
        }
    }
    std::sort(ports.begin(), ports.end());
    return ports;
}
const br::egress* entry(const br::port_bursts& out, br::port_id p, const sp::frame* f) {
    for (const auto& e : out.port(p)) {
        if (e.frame == f) {
            return &e;
        }
    }
    return nullptr;
}

/// The ownership rule: each frame has references() egress entries, and is in dropped() exactly
/// when it has none; no frame appears twice in one port's burst.
void check_ownership(const br::port_bursts& out, std::span<sp::frame> in) {
    ASSERT_EQ(out.references().size(), in.size());
    std::map<const sp::frame*, std::size_t> count;
    for (const br::port_id p : out.active_ports()) {
        std::set<const sp::frame*> seen;
        ASSERT_FALSE(out.port(p).empty());
        std::uint32_t seg = 0;
        for (const auto& e : out.port(p)) {
            ASSERT_TRUE(seen.insert(e.frame).second) << "frame twice in port " << p;
            ++count[e.frame];
            seg += e.segment ? 1U : 0U;
        }
        EXPECT_EQ(seg, out.segment_count(p));
    }
    const std::set<const sp::frame*> dropped(out.dropped().begin(), out.dropped().end());
    EXPECT_EQ(dropped.size(), out.dropped().size()) << "frame dropped twice";
    for (std::size_t i = 0; i < in.size(); ++i) {
        EXPECT_EQ(count[&in[i]], out.references()[i]) << "frame " << i;
        EXPECT_EQ(out.references()[i] == 0, dropped.count(&in[i]) == 1) << "frame " << i;
    }
}

br::bridge_config config(bool vlan = false) {
    br::bridge_config c;
    c.max_ports = 8;
    c.vlan_filtering = vlan;
    c.fdb.capacity = 1024;
    c.fdb.hash_seed = 17;
    return c;
}

} // namespace

TEST(LearningBridge, FloodsUnknownThenForwardsLearnedUnicast) {
    br::learning_bridge<> b(config());
    for (br::port_id p = 0; p < 4; ++p) {
        b.configure_port(p, {});
    }
    br::port_bursts out(8, 64);
    traffic t;
    t.add(0, mac(2), mac(1)); // mac(2) unknown: flood to 1, 2, 3
    ASSERT_EQ(b.forward_burst(t.frames(), out, 0), 1U);
    EXPECT_EQ(egress_ports(out, &t.frames()[0]), (std::vector<br::port_id>{1, 2, 3}));
    EXPECT_EQ(out.references()[0], 3);
    check_ownership(out, t.frames());
    EXPECT_EQ(b.stats().rx_unknown_unicast, 1U);
    EXPECT_EQ(b.stats().tx_flood_copies, 3U);
    EXPECT_EQ(b.stats().learned, 1U);

    t.clear();
    t.add(2, mac(1), mac(2)); // mac(1) learned on 0: unicast; mac(2) learned on 2
    t.add(0, mac(2), mac(1));
    t.add(0, mac(2), mac(1)); // a train to the same destination
    ASSERT_EQ(b.forward_burst(t.frames(), out, 0), 3U);
    EXPECT_EQ(egress_ports(out, &t.frames()[0]), (std::vector<br::port_id>{0}));
    EXPECT_EQ(egress_ports(out, &t.frames()[1]), (std::vector<br::port_id>{2}));
    EXPECT_EQ(egress_ports(out, &t.frames()[2]), (std::vector<br::port_id>{2}));
    ASSERT_EQ(out.port(2).size(), 2U);
    EXPECT_EQ(out.port(2)[0].frame, &t.frames()[1]) << "input order kept per port";
    EXPECT_EQ(b.stats().tx_unicast, 3U);
    check_ownership(out, t.frames());
    EXPECT_EQ(b.port_stats(2).tx_packets, 3U);
    EXPECT_EQ(b.port_stats(0).rx_packets, 3U);
}

TEST(LearningBridge, FloodFlagsBroadcastMulticastAndDrops) {
    br::learning_bridge<> b(config());
    br::port_config no_unknown;
    no_unknown.flags = br::port_flag::defaults & ~br::port_flag::flood_unknown;
    br::port_config no_mcast;
    no_mcast.flags = br::port_flag::defaults & ~br::port_flag::flood_multicast;
    br::port_config no_bcast;
    no_bcast.flags = br::port_flag::defaults & ~br::port_flag::flood_broadcast;
    b.configure_port(0, {});
    b.configure_port(1, no_unknown);
    b.configure_port(2, no_mcast);
    b.configure_port(3, no_bcast);
    br::port_bursts out(8, 64);
    traffic t;
    t.add(0, bcast, mac(1));
    t.add(0, mcast, mac(1));
    t.add(0, mac(9), mac(1));
    t.add(0, stp, mac(1));               // 802.1D reserved: never forwarded
    t.add(0, mac(9), mcast);             // multicast source
    t.add(0, mac(9), sp::mac_address{}); // zero source
    t.add(5, mac(9), mac(1));            // unconfigured port
    auto& runt = t.add(0, mac(9), mac(1));
    runt.data_len = 13;
    ASSERT_EQ(b.forward_burst(t.frames(), out, 0), 8U);
    auto& f = t.frames();
    EXPECT_EQ(egress_ports(out, &f[0]), (std::vector<br::port_id>{1, 2}));
    EXPECT_EQ(egress_ports(out, &f[1]), (std::vector<br::port_id>{1, 3}));
    EXPECT_EQ(egress_ports(out, &f[2]), (std::vector<br::port_id>{2, 3}));
    for (std::size_t i = 3; i < 8; ++i) {
        EXPECT_EQ(out.references()[i], 0) << i;
    }
    EXPECT_EQ(out.dropped().size(), 5U);
    const auto& s = b.stats();
    EXPECT_EQ(s.rx_broadcast, 1U);
    EXPECT_EQ(s.rx_multicast, 1U);
    EXPECT_EQ(s.rx_drop_link_local, 1U);
    EXPECT_EQ(s.rx_drop_invalid_src, 2U);
    EXPECT_EQ(s.rx_drop_bad_port, 1U);
    EXPECT_EQ(s.rx_drop_runt, 1U);
    EXPECT_EQ(b.port_stats(0).rx_dropped, 4U);
    check_ownership(out, t.frames());

    // A flood with nobody eligible is a drop, and a destination on the ingress port too.
    br::learning_bridge<> lone(config());
    lone.configure_port(0, {});
    t.clear();
    t.add(0, bcast, mac(1));
    t.add(0, mac(1), mac(2)); // mac(1) was learned on port 0 by the first frame
    ASSERT_EQ(lone.forward_burst(t.frames(), out, 0), 2U);
    EXPECT_EQ(out.dropped().size(), 2U);
    EXPECT_EQ(lone.stats().tx_drop_no_egress, 1U);
    EXPECT_EQ(lone.stats().tx_drop_same_port, 1U);
    check_ownership(out, t.frames());
}

TEST(LearningBridge, IsolatedPortsTalkOnlyToNonIsolatedOnes) {
    br::learning_bridge<> b(config());
    br::port_config guest;
    guest.flags |= br::port_flag::isolated;
    b.configure_port(0, {}); // uplink
    b.configure_port(1, guest);
    b.configure_port(2, guest);
    b.configure_port(3, guest);
    br::port_bursts out(8, 64);
    traffic t;
    t.add(1, bcast, mac(1));
    t.add(2, bcast, mac(2));
    t.add(0, bcast, mac(10));
    ASSERT_EQ(b.forward_burst(t.frames(), out, 0), 3U);
    EXPECT_EQ(egress_ports(out, &t.frames()[0]), (std::vector<br::port_id>{0}));
    EXPECT_EQ(egress_ports(out, &t.frames()[1]), (std::vector<br::port_id>{0}));
    EXPECT_EQ(egress_ports(out, &t.frames()[2]), (std::vector<br::port_id>{1, 2, 3}));
    t.clear();
    t.add(1, mac(2), mac(1));  // guest to guest: dropped
    t.add(1, mac(10), mac(1)); // guest to uplink: forwarded
    t.add(0, mac(2), mac(10)); // uplink to guest: forwarded
    ASSERT_EQ(b.forward_burst(t.frames(), out, 0), 3U);
    EXPECT_TRUE(egress_ports(out, &t.frames()[0]).empty());
    EXPECT_EQ(egress_ports(out, &t.frames()[1]), (std::vector<br::port_id>{0}));
    EXPECT_EQ(egress_ports(out, &t.frames()[2]), (std::vector<br::port_id>{2}));
    EXPECT_EQ(b.stats().tx_drop_isolated, 1U);
    check_ownership(out, t.frames());
}

TEST(LearningBridge, AntiSpoofingDropsAndDoesNotLearnForeignSources) {
    br::learning_bridge<> b(config());
    br::port_config guest;
    guest.allowed_src = {mac(1), mac(11)};
    b.configure_port(0, {});
    b.configure_port(1, guest);
    br::port_bursts out(8, 64);
    traffic t;
    t.add(1, bcast, mac(1));
    t.add(1, bcast, mac(11));
    t.add(1, bcast, mac(66)); // spoofed
    t.add(0, bcast, mac(66)); // the uplink may use any source
    ASSERT_EQ(b.forward_burst(t.frames(), out, 0), 4U);
    EXPECT_EQ(out.references()[0], 1);
    EXPECT_EQ(out.references()[1], 1);
    EXPECT_EQ(out.references()[2], 0);
    EXPECT_EQ(out.references()[3], 1);
    EXPECT_EQ(b.stats().rx_drop_spoofed, 1U);
    EXPECT_EQ(b.port_stats(1).rx_spoofed, 1U);
    EXPECT_EQ(b.fdb().lookup(br::mac_key::make(mac(66))).port, 0) << "learned from the uplink only";
    EXPECT_EQ(b.fdb().lookup(br::mac_key::make(mac(1))).port, 1);
    check_ownership(out, t.frames());
    br::port_config bad;
    bad.allowed_src = {mcast};
    EXPECT_THROW(b.configure_port(2, bad), std::invalid_argument);
}

TEST(LearningBridge, VlanMembershipPvidAndTagging) {
    br::learning_bridge<> b(config(true));
    br::port_config trunk;
    trunk.pvid = 0; // tagged frames only
    b.configure_port(0, trunk);
    b.vlan_add(0, 10, false);
    b.vlan_add(0, 20, false);
    br::port_config access10;
    access10.pvid = 10;
    b.configure_port(1, access10);
    b.configure_port(2, access10);
    br::port_config access20;
    access20.pvid = 20;
    b.configure_port(3, access20);
    br::port_bursts out(8, 64);
    traffic t;
    t.add(0, bcast, mac(100), (5 << 13) | 10); // VLAN 10, PCP 5, from the trunk
    t.add(0, bcast, mac(100), 30);             // VLAN 30: trunk is not a member
    t.add(0, bcast, mac(100));                 // untagged on a port without pvid
    t.add(1, bcast, mac(1));                   // access port, untagged: VLAN 10
    t.add(3, bcast, mac(3));                   // VLAN 20
    sp::frame& stripped = t.add(0, bcast, mac(101));
    stripped.flags |= sp::frame_flag::vlan_stripped; // tag in metadata, not in the bytes
    stripped.vlan_tci = 20;
    ASSERT_EQ(b.forward_burst(t.frames(), out, 0), 6U);
    auto& f = t.frames();
    EXPECT_EQ(egress_ports(out, &f[0]), (std::vector<br::port_id>{1, 2}));
    EXPECT_EQ(entry(out, 1, &f[0])->tag, br::egress_tag::untagged);
    EXPECT_EQ(out.references()[1], 0);
    EXPECT_EQ(out.references()[2], 0);
    EXPECT_EQ(b.stats().rx_drop_vlan, 2U);
    EXPECT_EQ(egress_ports(out, &f[3]), (std::vector<br::port_id>{0, 2}));
    const br::egress* up = entry(out, 0, &f[3]);
    ASSERT_NE(up, nullptr);
    EXPECT_EQ(up->tag, br::egress_tag::tagged);
    EXPECT_EQ(up->vlan_tci, 10);
    EXPECT_EQ(egress_ports(out, &f[4]), (std::vector<br::port_id>{0}));
    EXPECT_EQ(entry(out, 0, &f[4])->vlan_tci, 20);
    EXPECT_EQ(egress_ports(out, &f[5]), (std::vector<br::port_id>{3}));
    check_ownership(out, t.frames());

    // Learning is per VLAN: mac(100) is known in VLAN 10 only.
    EXPECT_EQ(b.fdb().lookup(br::mac_key::make(mac(100), 10)).port, 0);
    EXPECT_FALSE(b.fdb().lookup(br::mac_key::make(mac(100), 20)).found());
    t.clear();
    t.add(1, mac(100), mac(1));     // VLAN 10: unicast to the trunk, tagged, PCP 0
    t.add(3, mac(100), mac(3));     // VLAN 20: unknown there, flooded to VLAN 20 members
    t.add(0, mac(3), mac(100), 10); // mac(3) lives in VLAN 20: unknown in 10, flooded in 10
    ASSERT_EQ(b.forward_burst(t.frames(), out, 0), 3U);
    EXPECT_EQ(egress_ports(out, &f[0]), (std::vector<br::port_id>{0}));
    EXPECT_EQ(entry(out, 0, &f[0])->vlan_tci, 10);
    EXPECT_EQ(egress_ports(out, &f[1]), (std::vector<br::port_id>{0}));
    EXPECT_EQ(egress_ports(out, &f[2]), (std::vector<br::port_id>{1, 2}));
    check_ownership(out, t.frames());

    // Removing port 2 from VLAN 10 keeps unicast to it from leaking.
    ASSERT_TRUE(b.add_static(mac(2), 10, 2));
    b.vlan_remove(2, 10);
    t.clear();
    t.add(1, mac(2), mac(1));
    ASSERT_EQ(b.forward_burst(t.frames(), out, 0), 1U);
    EXPECT_EQ(out.references()[0], 0);
    EXPECT_EQ(b.stats().tx_drop_vlan, 1U);
    EXPECT_THROW(b.vlan_add(0, 4095, true), std::invalid_argument);
    br::learning_bridge<> plain(config(false));
    EXPECT_THROW(plain.vlan_add(0, 10, true), std::invalid_argument);
}

TEST(LearningBridge, AggregatesCrossWholeAndAreResegmentedOnlyWhereNeeded) {
    br::learning_bridge<> b(config());
    br::port_config nic; // the uplink: MTU 1500, TSO
    nic.flags |= br::port_flag::gso_tcpv4 | br::port_flag::gso_tcpv6;
    br::port_config gso_guest; // netfront with feature-gso-tcpv4
    gso_guest.flags |= br::port_flag::gso_tcpv4;
    br::port_config plain_guest; // no GSO: segments must be made for it
    br::port_config small_mtu;   // MTU below the aggregate's segments: cannot send
    small_mtu.mtu = 1000;
    b.configure_port(0, nic);
    b.configure_port(1, gso_guest);
    b.configure_port(2, plain_guest);
    b.configure_port(3, small_mtu);
    br::port_bursts out(8, 64);
    traffic t;
    // Learn mac(1..3) behind ports 1..3 first.
    for (std::uint8_t p = 1; p <= 3; ++p) {
        t.add(p, bcast, mac(p));
    }
    ASSERT_EQ(b.forward_burst(t.frames(), out, 0), 3U);
    t.clear();
    const auto aggregate = [&](br::port_id in, const sp::mac_address& dst) -> sp::frame& {
        sp::frame& a = t.add(in, dst, mac(static_cast<std::uint8_t>(in == 0 ? 50 : in)), -1,
                             14 + 20 + 20 + 20 * 1448);
        a.nb_segs = 20;
        a.offload.gso = sp::gso_type::tcpv4;
        a.offload.gso_size = 1448;
        a.offload.hdr_len = 54;
        a.offload.csum = sp::csum_state::partial;
        return a;
    };
    aggregate(0, mac(1));                // to a GSO guest: as it is
    aggregate(0, mac(2));                // to a plain guest: resegment there
    aggregate(0, mac(3));                // segments of 1488 bytes exceed MTU 1000: dropped
    aggregate(1, bcast);                 // flood: whole to 0, resegmented to 2, not to 3
    t.add(0, mac(2), mac(50), -1, 1514); // a plain frame of exactly MTU + header
    t.add(0, mac(2), mac(50), -1, 1515); // one byte over, not an aggregate: dropped
    t.add(0, mac(2), mac(50), 7, 1518);  // tagged: MTU + 18
    ASSERT_EQ(b.forward_burst(t.frames(), out, 0), 7U);
    auto& f = t.frames();
    EXPECT_EQ(egress_ports(out, &f[0]), (std::vector<br::port_id>{1}));
    EXPECT_FALSE(entry(out, 1, &f[0])->segment);
    EXPECT_EQ(egress_ports(out, &f[1]), (std::vector<br::port_id>{2}));
    EXPECT_TRUE(entry(out, 2, &f[1])->segment);
    EXPECT_EQ(out.references()[2], 0);
    EXPECT_EQ(egress_ports(out, &f[3]), (std::vector<br::port_id>{0, 2}));
    EXPECT_FALSE(entry(out, 0, &f[3])->segment);
    EXPECT_TRUE(entry(out, 2, &f[3])->segment);
    EXPECT_EQ(out.references()[4], 1);
    EXPECT_EQ(out.references()[5], 0);
    EXPECT_EQ(out.references()[6], 1);
    EXPECT_EQ(out.segment_count(2), 2U);
    ASSERT_EQ(out.port(2).size(), 4U);
    EXPECT_EQ(out.port(2)[0].frame, &f[1]) << "aggregates keep their place among plain frames";
    EXPECT_EQ(out.port(2)[2].frame, &f[4]);
    EXPECT_EQ(b.stats().tx_segment, 2U);
    EXPECT_EQ(b.stats().tx_drop_mtu, 3U); // f[2] to 3, f[3]'s copy to 3, f[5] to 2
    EXPECT_EQ(b.port_stats(3).tx_drop_mtu, 2U);
    // The bridge never touched the aggregates.
    EXPECT_EQ(f[0].offload.gso_size, 1448);
    EXPECT_EQ(f[0].nb_segs, 20);
    check_ownership(out, t.frames());
}

TEST(LearningBridge, RefusedLearnsAreCountedInBurstsThatLearnNothing) {
    // A source held by a static entry on another port is refused; the burst learns nothing
    // else, and the refusal still counts (it once did only beside a learn or a move).
    for (const bool specialise : {true, false}) {
        auto c = config();
        c.specialise = specialise;
        br::learning_bridge<> b(c);
        b.configure_port(0, {});
        b.configure_port(1, {});
        ASSERT_TRUE(b.add_static(mac(1), 0, 1));
        br::port_bursts out(8, 64);
        traffic t;
        t.add(0, mac(2), mac(1)); // mac(2) unknown: flooded to 1
        t.add(0, mac(2), mac(1));
        ASSERT_EQ(b.forward_burst(t.frames(), out, 0), 2U);
        EXPECT_EQ(b.stats().learn_refused, 1U) << "a repeat of the same source is learned once";
        EXPECT_EQ(b.stats().learned, 0U);
        EXPECT_EQ(b.fdb().stats().refused_static, 1U);
        EXPECT_EQ(b.fdb().lookup(br::mac_key::make(mac(1))).port, 1);
        check_ownership(out, t.frames());
    }
}

TEST(LearningBridge, BurstCapacityAndConfigurationErrors) {
    br::learning_bridge<> b(config());
    b.configure_port(0, {});
    b.configure_port(1, {});
    br::port_bursts out(8, 4);
    traffic t;
    for (int i = 0; i < 10; ++i) {
        t.add(0, bcast, mac(1));
    }
    EXPECT_EQ(b.forward_burst(t.frames(), out, 0), 4U);
    EXPECT_EQ(out.references().size(), 4U);
    br::port_config bad_mtu;
    bad_mtu.mtu = 10;
    EXPECT_THROW(b.configure_port(1, bad_mtu), std::invalid_argument);
    EXPECT_THROW(b.configure_port(8, {}), std::invalid_argument);
    EXPECT_THROW(br::port_bursts(0, 4), std::invalid_argument);
    b.remove_port(1);
    EXPECT_FALSE(b.port_configured(1));
    t.clear();
    t.add(1, bcast, mac(1));
    EXPECT_EQ(b.forward_burst(t.frames(), out, 0), 1U);
    EXPECT_EQ(b.stats().rx_drop_bad_port, 1U);
}

// ---- differential test against a reference bridge ------------------------------------------

namespace {

struct ref_port {
    bool up = false;
    std::uint32_t flags = 0;
    std::uint32_t mtu = 1500;
    std::vector<std::uint64_t> allowed;
    std::uint16_t pvid = 0;
    std::set<std::uint16_t> member;
    std::set<std::uint16_t> untagged;
};

/// The bridge's rules, one frame at a time, with std::unordered_map as the FDB (the table is
/// large enough that limits never bite: eviction is checked against fdb's own oracle).
/// Returns per frame the sorted (port, segment, tag, tci) emitted.
using emitted = std::vector<std::tuple<br::port_id, bool, br::egress_tag, std::uint16_t>>;

class ref_bridge {
public:
    ref_bridge(std::vector<ref_port> ports, bool vlan) : ports_(std::move(ports)), vlan_(vlan) {}

    std::vector<emitted> forward(const std::vector<sp::frame>& in) {
        struct cls {
            bool ok = false;
            std::uint64_t dst = 0;
            std::uint16_t tci = 0;
            std::uint32_t l2 = 14;
        };
        std::vector<cls> c(in.size());
        for (std::size_t i = 0; i < in.size(); ++i) {
            const sp::frame& f = in[i];
            if (f.port >= ports_.size() || !ports_[f.port].up || f.data_len < 14) {
                continue;
            }
            const ref_port& p = ports_[f.port];
            const auto dst = br::load_key(f.data, 0).mac48();
            const auto src = br::load_key(f.data + 6, 0).mac48();
            if ((src & 1) != 0 || src == 0) {
                continue;
            }
            if (!p.allowed.empty() &&
                std::find(p.allowed.begin(), p.allowed.end(), src) == p.allowed.end()) {
                continue;
            }
            const bool tagged = f.data[12] == 0x81 && f.data[13] == 0 && f.data_len >= 18;
            c[i].l2 = tagged ? 18 : 14;
            std::uint16_t tci = 0;
            if (vlan_) {
                if ((f.flags & sp::frame_flag::vlan_stripped) != 0) {
                    tci = f.vlan_tci;
                } else if (tagged) {
                    tci = static_cast<std::uint16_t>((f.data[14] << 8) | f.data[15]);
                }
                if ((tci & 0xfff) == 0) {
                    tci = static_cast<std::uint16_t>(tci | p.pvid);
                }
                const std::uint16_t vid = tci & 0xfff;
                if (vid == 0 || vid == 0xfff || p.member.count(vid) == 0) {
                    continue;
                }
            }
            if (br::mac48::is_link_local(dst)) {
                continue;
            }
            c[i] = {true, dst, tci, c[i].l2};
            if ((p.flags & br::port_flag::learning) != 0) {
                fdb_[br::mac_key::from_mac48(src, tci & 0xfff).value] = f.port;
            }
        }
        std::vector<emitted> out(in.size());
        for (std::size_t i = 0; i < in.size(); ++i) {
            if (!c[i].ok) {
                continue;
            }
            const sp::frame& f = in[i];
            const std::uint16_t vid = c[i].tci & 0xfff;
            const auto it = fdb_.find(br::mac_key::from_mac48(c[i].dst, vid).value);
            if ((c[i].dst & 1) == 0 && it != fdb_.end() && ports_[it->second].up) {
                const br::port_id to = it->second;
                const bool iso =
                    (ports_[f.port].flags & ports_[to].flags & br::port_flag::isolated) != 0;
                if (to != f.port && !iso && (!vlan_ || ports_[to].member.count(vid) != 0)) {
                    emit(out[i], to, f, c[i].l2, c[i].tci);
                }
                continue;
            }
            const std::uint32_t need = (c[i].dst & 1) == 0 ? br::port_flag::flood_unknown
                                       : c[i].dst == br::mac48::broadcast
                                           ? br::port_flag::flood_broadcast
                                           : br::port_flag::flood_multicast;
            for (br::port_id q = 0; q < ports_.size(); ++q) {
                const ref_port& qp = ports_[q];
                if (!qp.up || q == f.port || (qp.flags & need) == 0 ||
                    ((ports_[f.port].flags & qp.flags & br::port_flag::isolated) != 0) ||
                    (vlan_ && qp.member.count(vid) == 0)) {
                    continue;
                }
                emit(out[i], q, f, c[i].l2, c[i].tci);
            }
        }
        return out;
    }

private:
    void emit(emitted& e, br::port_id q, const sp::frame& f, std::uint32_t l2, std::uint16_t tci) {
        const ref_port& qp = ports_[q];
        bool segment = false;
        if (!f.offload.is_gso()) {
            if (f.pkt_len > qp.mtu + l2) {
                return;
            }
        } else {
            if (f.offload.hdr_len - l2 + f.offload.gso_size > qp.mtu) {
                return;
            }
            const std::uint32_t flag =
                f.offload.gso == sp::gso_type::tcpv4   ? br::port_flag::gso_tcpv4
                : f.offload.gso == sp::gso_type::tcpv6 ? br::port_flag::gso_tcpv6
                                                       : br::port_flag::gso_udp_l4;
            segment = (qp.flags & flag) == 0;
        }
        br::egress_tag tag = br::egress_tag::as_is;
        std::uint16_t out_tci = 0;
        if (vlan_) {
            tag = qp.untagged.count(tci & 0xfff) != 0 ? br::egress_tag::untagged
                                                      : br::egress_tag::tagged;
            out_tci = tci;
        }
        e.emplace_back(q, segment, tag, out_tci);
    }

    std::vector<ref_port> ports_;
    bool vlan_;
    std::unordered_map<std::uint64_t, br::port_id> fdb_;
};

} // namespace

class BridgeOracle : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(BridgeOracle, RandomConfigurationsAndTrafficMatchTheReference) {
    std::mt19937_64 rng(GetParam());
    const auto pick = [&](std::uint64_t n) {
        return rng() % n;
    };
    const bool vlan = pick(2) == 0;
    constexpr br::port_id n_ports = 6;
    br::learning_bridge<> b(config(vlan));
    std::vector<ref_port> rp(n_ports);
    const std::array<std::uint16_t, 3> vids{1, 10, 20};
    for (br::port_id p = 0; p < n_ports; ++p) {
        if (p == n_ports - 1) {
            continue; // an unconfigured port id
        }
        br::port_config pc;
        // Each capability on with probability 3/4 (isolation 1/3), so that traffic flows.
        pc.flags = 0;
        for (const std::uint32_t flag :
             {br::port_flag::learning, br::port_flag::flood_unknown, br::port_flag::flood_multicast,
              br::port_flag::flood_broadcast, br::port_flag::gso_tcpv4, br::port_flag::gso_tcpv6}) {
            pc.flags |= pick(4) != 0 ? flag : 0U;
        }
        pc.flags |= pick(3) == 0 ? br::port_flag::isolated : 0U;
        pc.mtu = pick(2) == 0 ? 1500 : 9000;
        if (pick(4) == 0) {
            pc.allowed_src = {mac(static_cast<std::uint8_t>(p)),
                              mac(static_cast<std::uint8_t>(p + 8))};
        }
        pc.pvid = vlan ? vids[pick(3)] : 1;
        if (vlan && pick(4) == 0) {
            pc.pvid = 0;
        }
        b.configure_port(p, pc);
        ref_port& r = rp[p];
        r.up = true;
        r.flags = pc.flags;
        r.mtu = pc.mtu;
        for (const auto& m : pc.allowed_src) {
            r.allowed.push_back(br::mac_key::make(m).mac48());
        }
        r.pvid = pc.pvid;
        if (vlan) {
            if (pc.pvid != 0) {
                r.member.insert(pc.pvid);
                r.untagged.insert(pc.pvid);
            }
            for (const std::uint16_t v : vids) {
                if (v != pc.pvid && pick(2) == 0) {
                    const bool untagged = pick(2) == 0;
                    b.vlan_add(p, v, untagged);
                    r.member.insert(v);
                    if (untagged) {
                        r.untagged.insert(v);
                    } else {
                        r.untagged.erase(v);
                    }
                }
            }
        }
    }
    ref_bridge ref(rp, vlan);
    br::port_bursts out(8, 64);
    traffic t;
    std::uint64_t frames_checked = 0;
    std::uint64_t forwarded = 0;
    for (int round = 0; round < 300; ++round) {
        t.clear();
        const std::size_t n = 1 + pick(64);
        for (std::size_t i = 0; i < n; ++i) {
            const auto in = static_cast<br::port_id>(pick(n_ports + 1));
            const std::uint64_t d = pick(20);
            const sp::mac_address dst = d < 16    ? mac(static_cast<std::uint8_t>(d))
                                        : d == 16 ? bcast
                                        : d == 17 ? mcast
                                        : d == 18 ? stp
                                                  : mac(99);
            // Mostly each host stays behind its port (mac(p), mac(p + 8)); sometimes it moves
            // or sends from a multicast address.
            const std::uint64_t s = pick(20);
            const sp::mac_address src = s == 0  ? mcast
                                        : s < 5 ? mac(static_cast<std::uint8_t>(pick(16)))
                                                : mac(static_cast<std::uint8_t>(in + 8 * pick(2)));
            const int tag = vlan && pick(2) == 0 ? static_cast<int>(vids[pick(3)] | (pick(8) << 13))
                            : pick(10) == 0      ? 0
                                                 : -1;
            const std::array<std::uint32_t, 8> lens{60, 60, 60, 60, 1514, 1518, 3000, 9018};
            sp::frame& f = t.add(in, dst, src, tag, lens[pick(8)]);
            if (pick(5) == 0) {
                f.offload.gso = pick(2) == 0 ? sp::gso_type::tcpv4 : sp::gso_type::tcpv6;
                f.offload.gso_size = static_cast<std::uint16_t>(pick(2) == 0 ? 1448 : 8948);
                f.offload.hdr_len = 66;
                f.pkt_len = 30000;
            }
            if (vlan && tag < 0 && pick(8) == 0) {
                f.flags |= sp::frame_flag::vlan_stripped;
                f.vlan_tci = vids[pick(3)];
            }
        }
        const auto expect = ref.forward(t.frames());
        ASSERT_EQ(b.forward_burst(t.frames(), out, static_cast<std::uint64_t>(round)), n);
        check_ownership(out, t.frames());
        for (std::size_t i = 0; i < n; ++i) {
            emitted got;
            for (const br::port_id p : out.active_ports()) {
                const br::egress* e = entry(out, p, &t.frames()[i]);
                if (e != nullptr) {
                    got.emplace_back(p, e->segment, e->tag, e->vlan_tci);
                }
            }
            std::sort(got.begin(), got.end());
            auto want = expect[i];
            std::sort(want.begin(), want.end());
            ASSERT_EQ(got, want) << "round " << round << " frame " << i;
            forwarded += got.empty() ? 0U : 1U;
            ++frames_checked;
        }
    }
    EXPECT_GT(forwarded, frames_checked / 10) << "the random configuration forwards too little";
}

INSTANTIATE_TEST_SUITE_P(Seeds, BridgeOracle, ::testing::Range<std::uint64_t>(1, 13));

// ---- the specialised loop against the general loop ------------------------------------------
// Two bridges configured alike, one with bridge_config::specialise off, forward the same random
// bursts: every output (bursts entry by entry and in order, active ports in order, drops,
// references, deferred learn requests), every counter and the FDB's contents must agree. The
// traffic is mostly what the specialised loop takes (bursts from one port, known hosts, small
// frames), with the rest mixed in at rates that put some in many bursts: floods, oversized
// frames and aggregates, moves, unknown hosts, drops of every kind, mixed-port bursts, bursts
// longer than a chunk, learning under tight limits (evictions change the table mid-burst),
// ports above 64 (no fast emission), isolation and anti-spoofing.

namespace {

struct fast_case {
    std::uint64_t seed;
    br::learn_mode mode;
    bool tight;          ///< a small FDB with port limits: learning evicts
    bool wide;           ///< ports above 64 configured too
    bool steady = false; ///< plain ports, settled hosts, clean bursts to other ports (the bench)
    bool large = false;  ///< a table too large for the cache: the loop prefetches buckets
};

std::ostream& operator<<(std::ostream& os, const fast_case& c) {
    return os << "seed " << c.seed << (c.mode == br::learn_mode::direct ? " direct" : " deferred")
              << (c.tight ? " tight" : "") << (c.wide ? " wide" : "") << (c.steady ? " steady" : "")
              << (c.large ? " large" : "");
}

/// Everything a burst produced, with frames named by their index in the input.
struct burst_result {
    std::vector<br::port_id> active;
    std::vector<std::vector<std::tuple<std::ptrdiff_t, std::uint16_t, br::egress_tag, bool>>>
        entries;
    std::vector<std::uint32_t> segments;
    std::vector<std::ptrdiff_t> dropped;
    std::vector<std::uint16_t> refs;
    std::vector<std::pair<std::uint64_t, br::port_id>> learn;
    bool operator==(const burst_result&) const = default;
};

void PrintTo(const burst_result& r, std::ostream* os) {
    *os << "active";
    for (std::size_t k = 0; k < r.active.size(); ++k) {
        *os << " " << r.active[k] << ":[";
        for (const auto& [i, tci, tag, seg] : r.entries[k]) {
            *os << " " << i << (seg ? "s" : "") << (tag != br::egress_tag::as_is ? "t" : "");
        }
        *os << " ]/" << r.segments[k];
    }
    *os << " dropped";
    for (const auto d : r.dropped) {
        *os << " " << d;
    }
    *os << " refs";
    for (const auto x : r.refs) {
        *os << " " << x;
    }
    *os << " learn " << r.learn.size();
}

burst_result result_of(const br::port_bursts& out, const sp::frame* base) {
    burst_result r;
    for (const br::port_id p : out.active_ports()) {
        r.active.push_back(p);
        auto& e = r.entries.emplace_back();
        for (const auto& x : out.port(p)) {
            e.emplace_back(x.frame - base, x.vlan_tci, x.tag, x.segment);
        }
        r.segments.push_back(out.segment_count(p));
    }
    for (const sp::frame* d : out.dropped()) {
        r.dropped.push_back(d - base);
    }
    r.refs.assign(out.references().begin(), out.references().end());
    for (const auto& l : out.learn_requests()) {
        r.learn.emplace_back(l.key.value, l.port);
    }
    return r;
}

/// Counter structs (all std::uint64_t) compared field by field; the message names the fields
/// (by index) that differ.
template <class T>
::testing::AssertionResult same_counters(const T& a, const T& b) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) % sizeof(std::uint64_t) == 0);
    std::array<std::uint64_t, sizeof(T) / sizeof(std::uint64_t)> x{};
    std::array<std::uint64_t, sizeof(T) / sizeof(std::uint64_t)> y{};
    std::memcpy(x.data(), &a, sizeof(T));
    std::memcpy(y.data(), &b, sizeof(T));
    if (x == y) {
        return ::testing::AssertionSuccess();
    }
    auto r = ::testing::AssertionFailure();
    for (std::size_t i = 0; i < x.size(); ++i) {
        if (x[i] != y[i]) {
            r << "field " << i << ": " << x[i] << " vs " << y[i] << "; ";
        }
    }
    return r;
}

using fdb_entries =
    std::vector<std::tuple<std::uint64_t, br::port_id, std::uint16_t, std::uint16_t>>;
fdb_entries entries_of(const br::fdb<>& f) {
    fdb_entries e;
    f.for_each([&](br::mac_key k, br::fdb_result r, std::uint16_t stamp) {
        e.emplace_back(k.value, r.port, r.flags, stamp);
    });
    std::sort(e.begin(), e.end());
    return e;
}

} // namespace

class SpecialisedLoop : public ::testing::TestWithParam<fast_case> {};

TEST_P(SpecialisedLoop, MatchesTheGeneralLoopOnRandomTraffic) {
    const fast_case c = GetParam();
    std::mt19937_64 rng(c.seed);
    const auto pick = [&](std::uint64_t n) {
        return rng() % n;
    };
    const br::port_id max_ports = c.wide ? 72 : 8;
    std::vector<br::port_id> ids{0, 1, 2, 3, 4, 5};
    if (c.wide) {
        ids.insert(ids.end(), {64, 65, 70});
    }
    br::fdb_config fc;
    fc.capacity = c.tight ? 24 : c.large ? 16384 : 1024;
    fc.port_limit = c.tight ? 6 : 0;
    fc.max_ports = max_ports;
    fc.hash_seed = c.seed * 7 + 3;
    fc.tick_ns = 1000;
    fc.ageing_time_ns = 50 * fc.tick_ns;
    br::bridge_config bc;
    bc.max_ports = max_ports;
    bc.learning = c.mode;
    bc.fdb = fc;
    // Deferred: each bridge over an FDB of its own, whose writer is this test.
    br::fdb<> shared_fast(fc);
    br::fdb<> shared_general(fc);
    std::unique_ptr<br::learning_bridge<>> fast;
    std::unique_ptr<br::learning_bridge<>> general;
    bc.specialise = true;
    fast = c.mode == br::learn_mode::direct
               ? std::make_unique<br::learning_bridge<>>(bc)
               : std::make_unique<br::learning_bridge<>>(bc, shared_fast);
    bc.specialise = false;
    general = c.mode == br::learn_mode::direct
                  ? std::make_unique<br::learning_bridge<>>(bc)
                  : std::make_unique<br::learning_bridge<>>(bc, shared_general);
    br::fdb<>& fast_fdb = fast->fdb();
    br::fdb<>& general_fdb = general->fdb();

    // 40 hosts, each behind a port; ports with anti-spoofing allow their own hosts only.
    constexpr std::size_t n_hosts = 40;
    std::vector<br::port_id> home(n_hosts);
    for (auto& h : home) {
        h = ids[pick(ids.size())];
    }
    const auto host_mac = [](std::size_t h) {
        return sp::mac_address{{0x02, 0x00, 0x5e, 0x10, static_cast<std::uint8_t>(h >> 8),
                                static_cast<std::uint8_t>(h)}};
    };
    for (const br::port_id p : ids) {
        br::port_config pc;
        pc.flags = br::port_flag::defaults;
        if (c.steady) {
            fast->configure_port(p, pc);
            general->configure_port(p, pc);
            continue;
        }
        if (pick(12) == 0) {
            pc.flags &= ~br::port_flag::learning;
        }
        if (pick(6) == 0) {
            pc.flags &= ~br::port_flag::flood_unknown;
        }
        pc.flags |= pick(4) == 0 ? br::port_flag::isolated : 0U;
        pc.flags |= pick(2) == 0 ? br::port_flag::gso_tcpv4 : 0U;
        pc.mtu = pick(4) == 0 ? 9000 : 1500;
        if (pick(5) == 0) {
            for (std::size_t h = 0; h < n_hosts && pc.allowed_src.size() < br::max_allowed_macs;
                 ++h) {
                if (home[h] == p) {
                    pc.allowed_src.push_back(host_mac(h));
                }
            }
        }
        fast->configure_port(p, pc);
        general->configure_port(p, pc);
    }

    br::port_bursts out_fast(max_ports, 96);
    br::port_bursts out_general(max_ports, 96);
    traffic t;
    std::uint64_t now = 0;
    std::vector<br::learn_status> st(96);
    std::uint64_t frames = 0;
    for (int round = 0; round < 400; ++round) {
        t.clear();
        const std::size_t n = pick(8) == 0 ? 65 + pick(32) : 1 + pick(64);
        const bool clean = c.steady || pick(2) == 0; // only what the specialised loop takes
        const bool pure = c.steady || (clean && pick(2) == 0); // to other ports only
        const bool mixed = !clean && pick(5) == 0;
        const br::port_id burst_port = ids[pick(ids.size())];
        for (std::size_t i = 0; i < n; ++i) {
            br::port_id in = mixed ? ids[pick(ids.size())] : burst_port;
            // The source: a host of this port, or (sometimes) one that moves here.
            std::size_t s = pick(n_hosts);
            for (int tries = 0; tries < (clean ? 64 : 8) && home[s] != in; ++tries) {
                s = pick(n_hosts);
            }
            if (home[s] != in && (c.steady ? true : pick(clean ? 1 : 4) == 0)) {
                home[s] = in; // the host moved
            }
            sp::mac_address src = host_mac(s);
            std::size_t d_host = pick(n_hosts);
            for (int tries = 0; pure && tries < 64 && home[d_host] == in; ++tries) {
                d_host = pick(n_hosts);
            }
            sp::mac_address dst = host_mac(d_host);
            int tag = -1;
            std::uint32_t len = 60;
            bool gso = false;
            if (!clean) {
                const std::uint64_t d = pick(100);
                if (d < 3) {
                    dst = bcast;
                } else if (d < 5) {
                    dst = mcast;
                } else if (d < 6) {
                    dst = stp;
                } else if (d < 12) {
                    dst = host_mac(100 + pick(50)); // unknown
                }
                const std::uint64_t x = pick(200);
                if (x < 2) {
                    src = mcast;
                } else if (x < 3) {
                    src = sp::mac_address{};
                } else if (x < 6) {
                    in = static_cast<br::port_id>(pick(2) == 0 ? 7 : max_ports + 1); // unset
                } else if (x < 9) {
                    src = host_mac(pick(n_hosts)); // maybe spoofed
                }
                const std::uint64_t l = pick(20);
                if (l == 0) {
                    len = 1514;
                } else if (l == 1) {
                    len = 3000;
                } else if (l == 2) {
                    gso = true;
                } else if (l == 3) {
                    tag = static_cast<int>(pick(4096));
                    len = 1518;
                }
            } else if (pick(3) == 0 && i > 0) {
                // Trains: repeat the previous frame's addresses.
                std::memcpy(dst.bytes.data(), t.frames()[i - 1].data, 6);
                std::memcpy(src.bytes.data(), t.frames()[i - 1].data + 6, 6);
                in = t.frames()[i - 1].port;
            }
            sp::frame& f = t.add(in, dst, src, tag, len);
            if (gso) {
                f.offload.gso = pick(2) == 0 ? sp::gso_type::tcpv4 : sp::gso_type::tcpv6;
                f.offload.gso_size = 1448;
                f.offload.hdr_len = 66;
                f.pkt_len = 20000;
            }
            if (!clean && pick(300) == 0) {
                f.data_len = 13; // runt
            }
        }
        const std::size_t done_f = fast->forward_burst(t.frames(), out_fast, now);
        const std::size_t done_g = general->forward_burst(t.frames(), out_general, now);
        ASSERT_EQ(done_f, done_g);
        ASSERT_EQ(result_of(out_fast, t.frames().data()), result_of(out_general, t.frames().data()))
            << c << " round " << round;
        check_ownership(out_fast, {t.frames().data(), done_f});
        frames += done_f;
        if (c.mode == br::learn_mode::deferred) {
            const auto req = out_fast.learn_requests();
            st.resize(req.size());
            (void)shared_fast.learn_burst(req, now, st);
            (void)shared_general.learn_burst(out_general.learn_requests(), now, st);
        }
        ASSERT_TRUE(same_counters(fast->stats(), general->stats())) << c << " round " << round;
        for (const br::port_id p : ids) {
            ASSERT_TRUE(same_counters(fast->port_stats(p), general->port_stats(p)))
                << c << " round " << round << " port " << p;
            ASSERT_TRUE(same_counters(fast_fdb.port_stats(p), general_fdb.port_stats(p)));
        }
        ASSERT_TRUE(same_counters(fast_fdb.stats(), general_fdb.stats()))
            << c << " round " << round;
        ASSERT_EQ(entries_of(fast_fdb), entries_of(general_fdb)) << c << " round " << round;
        now += pick(3) == 0 ? 900 : 50;
        if (round % 40 == 39 && !c.steady) {
            // The writer's housekeeping, alike on both: ageing, and a static entry that may
            // evict at capacity (its victim depends on the latest tick the writer saw).
            EXPECT_EQ(fast_fdb.age_all(now), general_fdb.age_all(now));
            const br::mac_key k = br::mac_key::make(host_mac(pick(n_hosts)));
            const br::port_id p = ids[pick(ids.size())];
            EXPECT_EQ(fast_fdb.add_static(k, p), general_fdb.add_static(k, p));
        }
    }
    EXPECT_GT(frames, 400U * 20);
    EXPECT_GT(fast->stats().tx_unicast, frames / 8) << "the traffic must be unicast mostly";
    if (c.tight) {
        EXPECT_GT(fast_fdb.stats().evicted_port_limit + fast_fdb.stats().evicted_table_full, 0U);
    }
    if (!c.steady) {
        EXPECT_GT(fast_fdb.stats().moved, 0U);
    }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SpecialisedLoop,
    ::testing::Values(fast_case{1, br::learn_mode::direct, false, false},
                      fast_case{2, br::learn_mode::direct, false, false},
                      fast_case{3, br::learn_mode::direct, true, false},
                      fast_case{4, br::learn_mode::direct, true, false},
                      fast_case{5, br::learn_mode::direct, false, true},
                      fast_case{6, br::learn_mode::direct, true, true},
                      fast_case{7, br::learn_mode::deferred, false, false},
                      fast_case{8, br::learn_mode::deferred, true, false},
                      fast_case{9, br::learn_mode::deferred, false, true},
                      fast_case{10, br::learn_mode::direct, false, false},
                      fast_case{11, br::learn_mode::direct, true, true},
                      fast_case{12, br::learn_mode::deferred, true, true},
                      fast_case{13, br::learn_mode::direct, false, false, true},
                      fast_case{14, br::learn_mode::deferred, false, false, true},
                      fast_case{15, br::learn_mode::direct, false, false, false, true},
                      fast_case{16, br::learn_mode::deferred, false, true, false, true},
                      fast_case{17, br::learn_mode::direct, false, false, true, true}));
