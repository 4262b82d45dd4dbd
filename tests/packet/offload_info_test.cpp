// offload_info conversions: layouts and constants checked against the kernel's own
// <linux/virtio_net.h>, round trips through virtio_net_hdr and Xen netif, and what each loses.
#include <cstddef>

#include <gtest/gtest.h>

#include <splitnet/packet/offload_info.hpp>

namespace sp = splitnet::packet;

extern "C" const unsigned long splitnet_kernel_virtio_layout[15];

// Kernel values, as read by virtio_net_layout.c.
#define VIRTIO_NET_HDR_F_NEEDS_CSUM splitnet_kernel_virtio_layout[7]
#define VIRTIO_NET_HDR_F_DATA_VALID splitnet_kernel_virtio_layout[8]
#define VIRTIO_NET_HDR_GSO_NONE splitnet_kernel_virtio_layout[9]
#define VIRTIO_NET_HDR_GSO_TCPV4 splitnet_kernel_virtio_layout[10]
#define VIRTIO_NET_HDR_GSO_UDP splitnet_kernel_virtio_layout[11]
#define VIRTIO_NET_HDR_GSO_TCPV6 splitnet_kernel_virtio_layout[12]
#define VIRTIO_NET_HDR_GSO_ECN splitnet_kernel_virtio_layout[13]
#define VIRTIO_NET_HDR_GSO_UDP_L4 splitnet_kernel_virtio_layout[14]

TEST(OffloadInfo, VirtioLayoutMatchesTheKernel) {
    const unsigned long* k = splitnet_kernel_virtio_layout;
    EXPECT_EQ(sizeof(sp::virtio_net_hdr), k[0]);
    EXPECT_EQ(offsetof(sp::virtio_net_hdr, flags), k[1]);
    EXPECT_EQ(offsetof(sp::virtio_net_hdr, gso_type), k[2]);
    EXPECT_EQ(offsetof(sp::virtio_net_hdr, hdr_len), k[3]);
    EXPECT_EQ(offsetof(sp::virtio_net_hdr, gso_size), k[4]);
    EXPECT_EQ(offsetof(sp::virtio_net_hdr, csum_start), k[5]);
    EXPECT_EQ(offsetof(sp::virtio_net_hdr, csum_offset), k[6]);
    EXPECT_EQ(sp::virtio_net::flag_needs_csum, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    EXPECT_EQ(sp::virtio_net::flag_data_valid, VIRTIO_NET_HDR_F_DATA_VALID);
    EXPECT_EQ(sp::virtio_net::gso_none, VIRTIO_NET_HDR_GSO_NONE);
    EXPECT_EQ(sp::virtio_net::gso_tcpv4, VIRTIO_NET_HDR_GSO_TCPV4);
    EXPECT_EQ(sp::virtio_net::gso_udp, VIRTIO_NET_HDR_GSO_UDP);
    EXPECT_EQ(sp::virtio_net::gso_tcpv6, VIRTIO_NET_HDR_GSO_TCPV6);
    EXPECT_EQ(sp::virtio_net::gso_ecn, VIRTIO_NET_HDR_GSO_ECN);
    EXPECT_EQ(sp::virtio_net::gso_udp_l4, VIRTIO_NET_HDR_GSO_UDP_L4);
}

namespace {

sp::offload_info tso(sp::gso_type t) {
    sp::offload_info o;
    o.csum = sp::csum_state::partial;
    o.csum_start = 34;
    o.csum_offset = 16;
    o.gso = t;
    o.gso_size = 1448;
    o.hdr_len = 66;
    o.gso_segs = 45;
    o.gso_ecn = true;
    o.gso_fixed_id = true;
    return o;
}

} // namespace

TEST(OffloadInfo, VirtioRoundTripKeepsAllButFixedIdAndSegs) {
    for (auto t : {sp::gso_type::tcpv4, sp::gso_type::tcpv6, sp::gso_type::udp_l4}) {
        const auto o = tso(t);
        const auto h = sp::to_virtio_net_hdr(o);
        EXPECT_EQ(h.flags, sp::virtio_net::flag_needs_csum);
        EXPECT_TRUE(h.gso_type & sp::virtio_net::gso_ecn);
        sp::offload_info back;
        ASSERT_EQ(sp::from_virtio_net_hdr(h, back), sp::offload_error::none);
        auto expect = o;
        expect.gso_fixed_id = false; // lost: virtio has no such bit
        expect.gso_segs = 0;         // lost: the receiver derives it
        EXPECT_EQ(back, expect);
    }
}

TEST(OffloadInfo, VirtioChecksumOnlyStates) {
    sp::offload_info o;
    o.csum = sp::csum_state::verified;
    auto h = sp::to_virtio_net_hdr(o);
    EXPECT_EQ(h.flags, sp::virtio_net::flag_data_valid);
    EXPECT_EQ(h.gso_type, sp::virtio_net::gso_none);
    sp::offload_info back;
    ASSERT_EQ(sp::from_virtio_net_hdr(h, back), sp::offload_error::none);
    EXPECT_EQ(back, o);
    h = sp::to_virtio_net_hdr(sp::offload_info{});
    EXPECT_EQ(h.flags, 0);
    ASSERT_EQ(sp::from_virtio_net_hdr(h, back), sp::offload_error::none);
    EXPECT_EQ(back, sp::offload_info{});
}

TEST(OffloadInfo, VirtioRejectsWhatItCannotHonour) {
    sp::offload_info out;
    sp::virtio_net_hdr h{};
    h.flags = 0x40;
    EXPECT_EQ(sp::from_virtio_net_hdr(h, out), sp::offload_error::unknown_flags);
    h.flags = sp::virtio_net::flag_needs_csum | sp::virtio_net::flag_data_valid;
    EXPECT_EQ(sp::from_virtio_net_hdr(h, out), sp::offload_error::both_csum_flags);
    h.flags = sp::virtio_net::flag_needs_csum;
    h.gso_type = sp::virtio_net::gso_udp;
    h.gso_size = 1000;
    EXPECT_EQ(sp::from_virtio_net_hdr(h, out), sp::offload_error::unsupported_gso);
    h.gso_type = sp::virtio_net::gso_tcpv4;
    h.gso_size = 0;
    EXPECT_EQ(sp::from_virtio_net_hdr(h, out), sp::offload_error::gso_without_size);
    h.gso_size = 1000;
    h.flags = 0;
    EXPECT_EQ(sp::from_virtio_net_hdr(h, out), sp::offload_error::gso_without_csum);
}

TEST(OffloadInfo, XenKeepsTypeSizeAndChecksumOnly) {
    for (auto t : {sp::gso_type::tcpv4, sp::gso_type::tcpv6}) {
        const auto o = tso(t);
        sp::xen_offload x;
        ASSERT_TRUE(sp::to_xen_offload(o, x));
        EXPECT_EQ(x.gso_type, t == sp::gso_type::tcpv4 ? sp::xen_gso::tcpv4 : sp::xen_gso::tcpv6);
        EXPECT_EQ(x.gso_size, 1448);
        EXPECT_TRUE(x.csum_blank);
        EXPECT_TRUE(x.data_validated);
        sp::offload_info back;
        ASSERT_EQ(sp::from_xen_offload(x, back), sp::offload_error::none);
        EXPECT_EQ(back.gso, t);
        EXPECT_EQ(back.gso_size, 1448);
        EXPECT_EQ(back.csum, sp::csum_state::partial);
        EXPECT_EQ(back.csum_start, 0) << "netif does not carry the checksum position";
        EXPECT_FALSE(back.gso_ecn);
        EXPECT_EQ(back.hdr_len, 0);
    }
    sp::xen_offload x;
    EXPECT_FALSE(sp::to_xen_offload(tso(sp::gso_type::udp_l4), x)) << "netif has no UDP GSO";
    x = {};
    x.gso_type = 7;
    x.gso_size = 100;
    x.csum_blank = true;
    sp::offload_info out;
    EXPECT_EQ(sp::from_xen_offload(x, out), sp::offload_error::unsupported_gso);
}
