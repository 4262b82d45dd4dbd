// netif RX rules: the back end's responses for a packet (one per slot, GSO extra in the second
// slot, flags on the right slots) decode back to the packet on the front end; bad responses are
// named.
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/netif/rx_packet.hpp>

namespace nf = splitnet::netif;

namespace {
std::vector<nf::rx_request> requests(std::size_t n) {
    std::vector<nf::rx_request> r(n);
    for (std::size_t i = 0; i < n; ++i) {
        r[i] = {static_cast<std::uint16_t>(100 + i), 0, static_cast<nf::grant_ref>(500 + i)};
    }
    return r;
}
} // namespace

TEST(RxPacket, ResponsesCarrySlotSizesFlagsAndGso) {
    const auto reqs = requests(4);
    const nf::rx_chunk chunks[] = {{64, 4000}, {0, 4096}, {0, 100}};
    const nf::extra_gso gso{1448, nf::gso_type_tcpv6, 0, 0};
    std::vector<nf::rx_response> out(8);
    nf::rx_encode_error err{};
    ASSERT_EQ(nf::encode_rx_packet(reqs, chunks, &gso,
                                   nf::rx_flag::csum_blank | nf::rx_flag::data_validated, out, err),
              4U);
    EXPECT_EQ(out[0].id, 100);
    EXPECT_EQ(out[0].offset, 64);
    EXPECT_EQ(out[0].status, 4000);
    EXPECT_EQ(out[0].flags, nf::rx_flag::csum_blank | nf::rx_flag::data_validated |
                                nf::rx_flag::more_data | nf::rx_flag::extra_info);
    EXPECT_EQ(nf::extra_from(out[1]).type, nf::extra_type_gso);
    EXPECT_EQ(out[2].id, 102) << "the extra used request 101";
    EXPECT_EQ(out[2].flags, nf::rx_flag::more_data);
    EXPECT_EQ(out[3].flags, 0);
    nf::rx_packet p;
    const auto r = nf::decode_rx_packet(std::span(out).first(4), p);
    ASSERT_EQ(r.verdict, nf::rx_verdict::ok);
    EXPECT_EQ(p.total_size, 8196U);
    EXPECT_EQ(p.nslots, 3U);
    EXPECT_EQ(p.responses, 4U);
    EXPECT_TRUE(p.has_gso);
    EXPECT_EQ(p.gso.type, nf::gso_type_tcpv6);
    EXPECT_EQ(p.slots[0].offset, 64);
}

TEST(RxPacket, EncoderChecksPagesSizesAndRequests) {
    std::vector<nf::rx_response> out(8);
    nf::rx_encode_error err{};
    const nf::rx_chunk crossing[] = {{100, 4000}};
    EXPECT_EQ(nf::encode_rx_packet(requests(1), crossing, nullptr, 0, out, err), 0U);
    EXPECT_EQ(err, nf::rx_encode_error::crosses_page);
    const nf::rx_chunk two[] = {{0, 100}, {0, 100}};
    const nf::extra_gso gso{1000, 1, 0, 0};
    EXPECT_EQ(nf::encode_rx_packet(requests(2), two, &gso, 0, out, err), 0U);
    EXPECT_EQ(err, nf::rx_encode_error::not_enough_requests);
    const nf::rx_chunk empty[] = {{0, 0}};
    EXPECT_EQ(nf::encode_rx_packet(requests(1), empty, nullptr, 0, out, err), 0U);
    EXPECT_EQ(err, nf::rx_encode_error::empty_chunk);
}

TEST(RxPacket, DecoderNamesBadResponses) {
    nf::rx_packet p;
    std::vector<nf::rx_response> rsps = {{1, 0, nf::rx_flag::more_data, 100},
                                         {2, 0, 0, nf::rsp_error}};
    auto r = nf::decode_rx_packet(rsps, p);
    EXPECT_EQ(r.verdict, nf::rx_verdict::error);
    EXPECT_EQ(r.fault, nf::rx_fault::backend_error);
    EXPECT_EQ(p.responses, 2U) << "the whole packet is consumed";
    rsps = {{1, 4000, 0, 200}};
    r = nf::decode_rx_packet(rsps, p);
    EXPECT_EQ(r.verdict, nf::rx_verdict::fatal);
    EXPECT_EQ(r.fault, nf::rx_fault::crosses_page);
    rsps = {{1, 0, nf::rx_flag::more_data, 100}};
    EXPECT_EQ(nf::decode_rx_packet(rsps, p).verdict, nf::rx_verdict::incomplete);
    nf::extra_info bad{};
    bad.type = 9;
    rsps = {{1, 0, nf::rx_flag::extra_info, 100}, nf::response_from(bad)};
    EXPECT_EQ(nf::decode_rx_packet(rsps, p).fault, nf::rx_fault::bad_extra_type);
    std::vector<nf::rx_response> many(30, nf::rx_response{1, 0, nf::rx_flag::more_data, 1000});
    many.back().flags = 0;
    EXPECT_EQ(nf::decode_rx_packet(many, p).fault, nf::rx_fault::too_many_slots);
}

TEST(RxPacket, RandomPacketsRoundTrip) {
    std::mt19937 rng(5);
    for (int round = 0; round < 20000; ++round) {
        std::vector<nf::rx_chunk> chunks(1 + rng() % 17);
        std::uint32_t total = 0;
        for (auto& c : chunks) {
            c.offset = static_cast<std::uint16_t>(rng() % 4000);
            c.size = static_cast<std::uint16_t>(1 + rng() % (4096 - c.offset));
            total += c.size;
        }
        if (total > 0xffff) {
            continue;
        }
        const bool with_gso = rng() % 2;
        const nf::extra_gso gso{static_cast<std::uint16_t>(500 + rng() % 1000), 1, 0, 0};
        const auto reqs = requests(chunks.size() + 1);
        std::vector<nf::rx_response> out(20);
        nf::rx_encode_error err{};
        const std::size_t n =
            nf::encode_rx_packet(reqs, chunks, with_gso ? &gso : nullptr, 0, out, err);
        ASSERT_EQ(n, chunks.size() + (with_gso ? 1 : 0));
        nf::rx_packet p;
        ASSERT_EQ(nf::decode_rx_packet(std::span(out).first(n), p).verdict, nf::rx_verdict::ok);
        ASSERT_EQ(p.total_size, total);
        ASSERT_EQ(p.nslots, chunks.size());
        ASSERT_EQ(p.has_gso, with_gso);
        for (std::size_t i = 0; i < chunks.size(); ++i) {
            ASSERT_EQ(p.slots[i].size, chunks[i].size);
            ASSERT_EQ(p.slots[i].offset, chunks[i].offset);
        }
    }
}
