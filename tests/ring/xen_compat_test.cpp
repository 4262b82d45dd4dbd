// Compatibility with Xen's own public headers (Debian libxen-dev): netif structs, flags and the
// shared ring header match byte for byte, and Xen's ring.h macros driving one end of a page
// interoperate with splitnet driving the other, for the netif TX and RX rings, both ways, from
// index 0 and from just below 2^32.
#include <atomic>
#include <cstddef>
#include <cstring>
#include <vector>

// Xen's macros need the includer's barriers (xen_mb() is mb() at the default interface version).
#define mb() std::atomic_thread_fence(std::memory_order_seq_cst)
#define rmb() std::atomic_thread_fence(std::memory_order_acquire)
#define wmb() std::atomic_thread_fence(std::memory_order_release)
#include <gtest/gtest.h>
#include <xen/io/netif.h>
#include <xen/io/ring.h>
#include <xen/xen.h>

#include <splitnet/netif/rings.hpp>
#include <splitnet/netif/rx_packet.hpp>

// Xen's *_RING_ATTACH/INIT macros store a size_t ring size into an unsigned int; they expand in
// this file, so -Wconversion reports Xen's code as ours (GCC at -O1).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wconversion"
#endif

namespace nf = splitnet::netif;
namespace sr = splitnet::ring;

// ---- layout ------------------------------------------------------------------------------------
static_assert(sizeof(nf::tx_request) == sizeof(netif_tx_request_t));
static_assert(offsetof(nf::tx_request, gref) == offsetof(netif_tx_request_t, gref));
static_assert(offsetof(nf::tx_request, offset) == offsetof(netif_tx_request_t, offset));
static_assert(offsetof(nf::tx_request, flags) == offsetof(netif_tx_request_t, flags));
static_assert(offsetof(nf::tx_request, id) == offsetof(netif_tx_request_t, id));
static_assert(offsetof(nf::tx_request, size) == offsetof(netif_tx_request_t, size));
static_assert(sizeof(nf::tx_response) == sizeof(netif_tx_response_t));
static_assert(offsetof(nf::tx_response, status) == offsetof(netif_tx_response_t, status));
static_assert(sizeof(nf::rx_request) == sizeof(netif_rx_request_t));
static_assert(offsetof(nf::rx_request, gref) == offsetof(netif_rx_request_t, gref));
static_assert(sizeof(nf::rx_response) == sizeof(netif_rx_response_t));
static_assert(offsetof(nf::rx_response, offset) == offsetof(netif_rx_response_t, offset));
static_assert(offsetof(nf::rx_response, flags) == offsetof(netif_rx_response_t, flags));
static_assert(offsetof(nf::rx_response, status) == offsetof(netif_rx_response_t, status));
static_assert(sizeof(nf::extra_info) == sizeof(netif_extra_info_t));
static_assert(offsetof(nf::extra_info, u) == offsetof(netif_extra_info_t, u));
static_assert(offsetof(nf::extra_info, u.gso.size) == offsetof(netif_extra_info_t, u.gso.size));
static_assert(offsetof(nf::extra_info, u.gso.type) == offsetof(netif_extra_info_t, u.gso.type));
static_assert(offsetof(nf::extra_info, u.gso.features) ==
              offsetof(netif_extra_info_t, u.gso.features));
static_assert(offsetof(nf::extra_info, u.hash.value) == offsetof(netif_extra_info_t, u.hash.value));
static_assert(nf::tx_flag::csum_blank == NETTXF_csum_blank);
static_assert(nf::tx_flag::data_validated == NETTXF_data_validated);
static_assert(nf::tx_flag::more_data == NETTXF_more_data);
static_assert(nf::tx_flag::extra_info == NETTXF_extra_info);
static_assert(nf::rx_flag::data_validated == NETRXF_data_validated);
static_assert(nf::rx_flag::csum_blank == NETRXF_csum_blank);
static_assert(nf::rx_flag::more_data == NETRXF_more_data);
static_assert(nf::rx_flag::extra_info == NETRXF_extra_info);
static_assert(nf::rx_flag::gso_prefix == NETRXF_gso_prefix);
static_assert(nf::rsp_dropped == NETIF_RSP_DROPPED && nf::rsp_error == NETIF_RSP_ERROR &&
              nf::rsp_okay == NETIF_RSP_OKAY && nf::rsp_null == NETIF_RSP_NULL);
static_assert(nf::extra_type_gso == XEN_NETIF_EXTRA_TYPE_GSO &&
              nf::extra_type_mcast_add == XEN_NETIF_EXTRA_TYPE_MCAST_ADD &&
              nf::extra_type_mcast_del == XEN_NETIF_EXTRA_TYPE_MCAST_DEL &&
              nf::extra_type_hash == XEN_NETIF_EXTRA_TYPE_HASH &&
              nf::extra_type_max == XEN_NETIF_EXTRA_TYPE_MAX);
static_assert(nf::extra_flag_more == XEN_NETIF_EXTRA_FLAG_MORE);
static_assert(nf::gso_type_tcpv4 == XEN_NETIF_GSO_TYPE_TCPV4 &&
              nf::gso_type_tcpv6 == XEN_NETIF_GSO_TYPE_TCPV6);
static_assert(nf::max_packet_size == XEN_NETIF_MAX_TX_SIZE);
static_assert(nf::min_slots == XEN_NETIF_NR_SLOTS_MIN);
static_assert(sr::xen_layout::req_prod == offsetof(netif_tx_sring, req_prod));
static_assert(sr::xen_layout::req_event == offsetof(netif_tx_sring, req_event));
static_assert(sr::xen_layout::rsp_prod == offsetof(netif_tx_sring, rsp_prod));
static_assert(sr::xen_layout::rsp_event == offsetof(netif_tx_sring, rsp_event));
static_assert(sr::xen_layout::header_bytes == offsetof(netif_tx_sring, ring));
static_assert(sizeof(sr::shared_ring<nf::tx_request, nf::tx_response>::slot) ==
              sizeof(union netif_tx_sring_entry));
static_assert(sizeof(sr::shared_ring<nf::rx_request, nf::rx_response>::slot) ==
              sizeof(union netif_rx_sring_entry));
static_assert(sr::shared_ring<nf::tx_request, nf::tx_response>::entries_for(4096) ==
              __CONST_RING_SIZE(netif_tx, 4096));
static_assert(sr::shared_ring<nf::rx_request, nf::rx_response>::entries_for(4096) ==
              __CONST_RING_SIZE(netif_rx, 4096));

namespace {

struct alignas(4096) page {
    std::byte bytes[4096];
};

nf::tx_request tx_req(std::uint32_t i) {
    return {i * 7, static_cast<std::uint16_t>(i % 4000), 0, static_cast<std::uint16_t>(i),
            static_cast<std::uint16_t>(60 + i % 1000)};
}

class XenCompat : public ::testing::TestWithParam<RING_IDX> {};

} // namespace

INSTANTIATE_TEST_SUITE_P(StartIndex, XenCompat, ::testing::Values(0U, 0xffffff80U));

// splitnet front end, Xen back end, on the netif TX ring.
TEST_P(XenCompat, SplitnetFrontXenBackTx) {
    page mem{};
    nf::tx_front_ring<> front(mem.bytes, GetParam());
    auto* sring = reinterpret_cast<netif_tx_sring_t*>(mem.bytes);
    netif_tx_back_ring_t back;
    BACK_RING_ATTACH(&back, sring, GetParam(), 4096);
    EXPECT_EQ(RING_SIZE(&back), front.size());

    std::uint32_t sent = 0, got = 0, answered = 0;
    int missed_wakeups = 0;
    while (answered < 5000) {
        for (int i = 0; i < 37 && !front.full(); ++i) {
            ASSERT_TRUE(front.put_request(tx_req(sent++)));
        }
        (void)front.push_requests();
        // Xen's back end: consume everything, answer, then go idle with the final check.
        int more = 1;
        while (more) {
            while (RING_HAS_UNCONSUMED_REQUESTS(&back)) {
                netif_tx_request_t r;
                RING_COPY_REQUEST(&back, back.req_cons, &r);
                ++back.req_cons;
                const auto want = tx_req(got++);
                ASSERT_EQ(std::memcmp(&r, &want, sizeof r), 0);
                netif_tx_response_t* rsp = RING_GET_RESPONSE(&back, back.rsp_prod_pvt);
                rsp->id = r.id;
                rsp->status = NETIF_RSP_OKAY;
                ++back.rsp_prod_pvt;
            }
            int rsp_notify = 0;
            RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&back, rsp_notify);
            (void)rsp_notify;
            RING_FINAL_CHECK_FOR_REQUESTS(&back, more);
        }
        std::vector<nf::tx_response> out(300);
        const std::size_t n = front.get_responses(out);
        for (std::size_t i = 0; i < n; ++i) {
            ASSERT_EQ(out[i].id, static_cast<std::uint16_t>(answered++));
            ASSERT_EQ(out[i].status, nf::rsp_okay);
        }
        // Xen's back end armed req_event at req_cons + 1: splitnet must now notify.
        ASSERT_TRUE(front.put_request(tx_req(sent++)));
        if (!front.push_requests()) {
            ++missed_wakeups;
        }
    }
    EXPECT_EQ(missed_wakeups, 0);
    EXPECT_FALSE(front.broken());
}

// Xen front end, splitnet back end, on the netif TX ring.
TEST_P(XenCompat, XenFrontSplitnetBackTx) {
    page mem{};
    auto* sring = reinterpret_cast<netif_tx_sring_t*>(mem.bytes);
    SHARED_RING_INIT(sring);
    sring->req_prod = sring->rsp_prod = GetParam();
    sring->req_event = sring->rsp_event = GetParam() + 1;
    netif_tx_front_ring_t front;
    FRONT_RING_ATTACH(&front, sring, GetParam(), 4096);
    nf::tx_back_ring<> back(mem.bytes);
    ASSERT_FALSE(back.broken());
    EXPECT_EQ(back.req_cons(), GetParam());

    std::uint32_t sent = 0, got = 0, answered = 0;
    while (answered < 5000) {
        for (int i = 0; i < 29 && !RING_FULL(&front); ++i) {
            auto r = tx_req(sent++);
            std::memcpy(RING_GET_REQUEST(&front, front.req_prod_pvt), &r, sizeof r);
            ++front.req_prod_pvt;
        }
        int notify = 0;
        RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&front, notify);
        std::vector<nf::tx_request> in(256);
        do {
            const std::size_t n = back.get_requests(in);
            for (std::size_t i = 0; i < n; ++i) {
                const auto want = tx_req(got++);
                ASSERT_EQ(std::memcmp(&in[i], &want, sizeof want), 0);
                ASSERT_TRUE(back.put_response({in[i].id, nf::rsp_okay}));
            }
            (void)back.push_responses();
        } while (back.final_check_for_requests());
        int more = 1;
        while (more) {
            while (RING_HAS_UNCONSUMED_RESPONSES(&front)) {
                netif_tx_response_t rsp;
                RING_COPY_RESPONSE(&front, front.rsp_cons, &rsp);
                ++front.rsp_cons;
                ASSERT_EQ(rsp.id, static_cast<std::uint16_t>(answered++));
            }
            RING_FINAL_CHECK_FOR_RESPONSES(&front, more);
        }
        // splitnet's back end armed req_event: Xen's front end must see it must notify.
        auto r = tx_req(sent++);
        std::memcpy(RING_GET_REQUEST(&front, front.req_prod_pvt), &r, sizeof r);
        ++front.req_prod_pvt;
        RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&front, notify);
        ASSERT_TRUE(notify);
    }
    EXPECT_FALSE(back.broken());
}

// The RX ring both ways: requests offer pages, responses carry data sizes (and GSO extras).
TEST_P(XenCompat, RxRingBothWays) {
    {
        page mem{};
        nf::rx_front_ring<> front(mem.bytes, GetParam());
        auto* sring = reinterpret_cast<netif_rx_sring_t*>(mem.bytes);
        netif_rx_back_ring_t back;
        BACK_RING_ATTACH(&back, sring, GetParam(), 4096);
        for (std::uint16_t i = 0; i < 200; ++i) {
            ASSERT_TRUE(front.put_request({i, 0, 1000U + i}));
        }
        EXPECT_TRUE(front.push_requests());
        std::uint16_t n = 0;
        while (RING_HAS_UNCONSUMED_REQUESTS(&back)) {
            netif_rx_request_t r;
            RING_COPY_REQUEST(&back, back.req_cons, &r);
            ++back.req_cons;
            ASSERT_EQ(r.gref, 1000U + n);
            netif_rx_response_t* rsp = RING_GET_RESPONSE(&back, back.rsp_prod_pvt);
            rsp->id = r.id;
            rsp->offset = 0;
            rsp->flags = NETRXF_data_validated;
            rsp->status = static_cast<int16_t>(100 + n);
            ++back.rsp_prod_pvt;
            ++n;
        }
        int notify = 0;
        RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&back, notify);
        EXPECT_TRUE(notify);
        std::vector<nf::rx_response> out(256);
        ASSERT_EQ(front.get_responses(out), 200U);
        EXPECT_EQ(out[199].status, 299);
        EXPECT_EQ(out[199].flags, nf::rx_flag::data_validated);
    }
    {
        page mem{};
        auto* sring = reinterpret_cast<netif_rx_sring_t*>(mem.bytes);
        SHARED_RING_INIT(sring);
        sring->req_prod = sring->rsp_prod = GetParam();
        sring->req_event = sring->rsp_event = GetParam() + 1;
        netif_rx_front_ring_t front;
        FRONT_RING_ATTACH(&front, sring, GetParam(), 4096);
        nf::rx_back_ring<> back(mem.bytes);
        for (std::uint16_t i = 0; i < 3; ++i) {
            netif_rx_request_t* r = RING_GET_REQUEST(&front, front.req_prod_pvt);
            r->id = i;
            r->gref = 50U + i;
            ++front.req_prod_pvt;
        }
        RING_PUSH_REQUESTS(&front);
        std::vector<nf::rx_request> in(3);
        ASSERT_EQ(back.get_requests(in), 3U);
        // One packet: 1000 bytes in the first page, a GSO extra in the second slot, 500 in the
        // third.
        const nf::rx_chunk chunks[] = {{0, 1000}, {0, 500}};
        const nf::extra_gso gso{1448, nf::gso_type_tcpv4, 0, 0};
        std::vector<nf::rx_response> rsps(3);
        nf::rx_encode_error err{};
        ASSERT_EQ(nf::encode_rx_packet(in, chunks, &gso, nf::rx_flag::csum_blank, rsps, err), 3U);
        ASSERT_EQ(back.put_responses(rsps), 3U);
        EXPECT_TRUE(back.push_responses());
        netif_rx_response_t first;
        RING_COPY_RESPONSE(&front, front.rsp_cons, &first);
        EXPECT_EQ(first.status, 1000);
        EXPECT_EQ(first.flags, NETRXF_csum_blank | NETRXF_more_data | NETRXF_extra_info);
        netif_extra_info_t extra;
        std::memcpy(&extra, RING_GET_RESPONSE(&front, front.rsp_cons + 1), sizeof extra);
        EXPECT_EQ(extra.type, XEN_NETIF_EXTRA_TYPE_GSO);
        EXPECT_EQ(extra.u.gso.size, 1448);
        EXPECT_EQ(extra.u.gso.type, XEN_NETIF_GSO_TYPE_TCPV4);
        netif_rx_response_t last;
        RING_COPY_RESPONSE(&front, front.rsp_cons + 2, &last);
        EXPECT_EQ(last.status, 500);
        EXPECT_EQ(last.id, 2);
        EXPECT_EQ(last.flags, 0);
    }
}
