// netif TX rules: encode then decode returns the packet, every drop and fatal case named as
// Linux netback treats it, responses land one per slot with rsp_null for extras, and random
// valid packets round-trip.
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/netif/tx_packet.hpp>

namespace nf = splitnet::netif;

namespace {

std::vector<nf::tx_request> encode(const std::vector<nf::tx_fragment>& frags,
                                   const std::vector<nf::extra_info>& extras = {},
                                   std::uint16_t csum = 0) {
    std::vector<nf::tx_request> out(64);
    nf::tx_encode_error err{};
    const std::size_t n = nf::encode_tx_packet(frags, extras, csum, out, err, 64);
    EXPECT_EQ(err, nf::tx_encode_error::none);
    out.resize(n);
    return out;
}

nf::tx_decode_result decode(const std::vector<nf::tx_request>& reqs, nf::tx_packet& p,
                            nf::tx_limits lim = {}) {
    return nf::decode_tx_packet(reqs, p, lim);
}

} // namespace

TEST(TxPacket, FirstSlotCarriesTheTotalAndFlagsChain) {
    const auto reqs = encode({{10, 0, 1000, 1}, {11, 2000, 500, 2}, {12, 4000, 96, 3}}, {},
                             nf::tx_flag::csum_blank | nf::tx_flag::data_validated);
    ASSERT_EQ(reqs.size(), 3U);
    EXPECT_EQ(reqs[0].size, 1596) << "first slot: whole packet";
    EXPECT_EQ(reqs[1].size, 500);
    EXPECT_EQ(reqs[0].flags,
              nf::tx_flag::csum_blank | nf::tx_flag::data_validated | nf::tx_flag::more_data);
    EXPECT_EQ(reqs[1].flags, nf::tx_flag::more_data);
    EXPECT_EQ(reqs[2].flags, 0);
    nf::tx_packet p;
    ASSERT_EQ(decode(reqs, p).verdict, nf::tx_verdict::ok);
    EXPECT_EQ(p.total_size, 1596U);
    ASSERT_EQ(p.nfrags, 3U);
    EXPECT_EQ(p.frags[0].size, 1000) << "first fragment: total minus the rest";
    EXPECT_EQ(p.frags[2].offset, 4000);
    EXPECT_EQ(p.requests, 3U);
}

TEST(TxPacket, ExtrasFollowTheFirstSlotAndAnswerWithNull) {
    const auto gso = nf::make_gso_extra(nf::gso_type_tcpv4, 1448);
    nf::extra_info hash{};
    hash.type = nf::extra_type_hash;
    hash.u.hash.type = 1;
    const auto reqs =
        encode({{1, 0, 3000, 7}, {2, 0, 1000, 8}}, {gso, hash}, nf::tx_flag::csum_blank);
    ASSERT_EQ(reqs.size(), 4U);
    EXPECT_TRUE(reqs[0].flags & nf::tx_flag::extra_info);
    EXPECT_EQ(nf::extra_from(reqs[1]).flags, nf::extra_flag_more);
    EXPECT_EQ(nf::extra_from(reqs[2]).flags, 0);
    nf::tx_packet p;
    ASSERT_EQ(decode(reqs, p).verdict, nf::tx_verdict::ok);
    EXPECT_TRUE(p.has_gso);
    EXPECT_EQ(p.gso.size, 1448);
    EXPECT_TRUE(p.has_hash);
    EXPECT_EQ(p.extras, 2U);
    EXPECT_EQ(p.requests, 4U);
    std::vector<nf::tx_response> rsps(8);
    ASSERT_EQ(nf::make_tx_responses(p, nf::rsp_okay, rsps), 4U);
    EXPECT_EQ(rsps[0].id, 7);
    EXPECT_EQ(rsps[0].status, nf::rsp_okay);
    EXPECT_EQ(rsps[1].status, nf::rsp_null);
    EXPECT_EQ(rsps[2].status, nf::rsp_null);
    EXPECT_EQ(rsps[3].id, 8);
}

TEST(TxPacket, DropsAreAnsweredWithErrorAndConsumed) {
    nf::tx_packet p;
    // 19 slots: above the 18 a back end must accept, below the fatal 20.
    std::vector<nf::tx_fragment> frags;
    for (std::uint16_t i = 0; i < 19; ++i) {
        frags.push_back({i, 0, 100, i});
    }
    auto r = decode(encode(frags), p);
    EXPECT_EQ(r.verdict, nf::tx_verdict::drop);
    EXPECT_EQ(r.fault, nf::tx_fault::too_many_slots);
    EXPECT_EQ(p.requests, 19U);
    std::vector<nf::tx_response> rsps(32);
    EXPECT_EQ(nf::make_tx_responses(p, nf::rsp_error, rsps), 19U);

    auto reqs = encode({{1, 0, 100, 1}, {2, 0, 100, 2}});
    reqs[1].size = 500; // larger than the packet
    r = decode(reqs, p);
    EXPECT_EQ(r.verdict, nf::tx_verdict::drop);
    EXPECT_EQ(r.fault, nf::tx_fault::fragment_too_large);

    r = decode(encode({{1, 0, 10, 1}}), p);
    EXPECT_EQ(r.fault, nf::tx_fault::runt);

    r = decode(encode({{1, 0, 100, 1}}, {nf::make_gso_extra(nf::gso_type_tcpv4, 0)}), p);
    EXPECT_EQ(r.fault, nf::tx_fault::bad_gso);
    r = decode(encode({{1, 0, 100, 1}}, {nf::make_gso_extra(9, 1000)}), p);
    EXPECT_EQ(r.fault, nf::tx_fault::bad_gso);
}

TEST(TxPacket, FatalFaultsMeanDisconnect) {
    nf::tx_packet p;
    std::vector<nf::tx_fragment> frags;
    for (std::uint16_t i = 0; i < 21; ++i) {
        frags.push_back({i, 0, 10, i});
    }
    auto r = decode(encode(frags), p);
    EXPECT_EQ(r.verdict, nf::tx_verdict::fatal);
    EXPECT_EQ(r.fault, nf::tx_fault::malicious_slot_count);

    auto reqs = encode({{1, 0, 100, 1}, {2, 0, 50, 2}});
    reqs[1].offset = 4090; // 4090 + 50 crosses the page
    EXPECT_EQ(decode(reqs, p).fault, nf::tx_fault::crosses_page);
    reqs = encode({{1, 0, 100, 1}});
    reqs[0].offset = 4000;
    EXPECT_EQ(decode(reqs, p).fault, nf::tx_fault::crosses_page);

    nf::extra_info bogus{};
    bogus.type = 7;
    reqs = encode({{1, 0, 100, 1}}, {bogus});
    r = decode(reqs, p);
    EXPECT_EQ(r.verdict, nf::tx_verdict::fatal);
    EXPECT_EQ(r.fault, nf::tx_fault::bad_extra_type);
}

TEST(TxPacket, PacketCutShortIsIncomplete) {
    nf::tx_packet p;
    auto reqs = encode({{1, 0, 100, 1}, {2, 0, 100, 2}, {3, 0, 100, 3}});
    reqs.pop_back();
    EXPECT_EQ(decode(reqs, p).verdict, nf::tx_verdict::incomplete);
    reqs = encode({{1, 0, 100, 1}}, {nf::make_gso_extra(1, 100)});
    auto extra = nf::extra_from(reqs[1]);
    extra.flags = nf::extra_flag_more; // the chain claims another extra that is not there
    reqs[1] = nf::slot_from(extra);
    EXPECT_EQ(decode(reqs, p).verdict, nf::tx_verdict::incomplete) << "extra chain says more";
    EXPECT_EQ(decode({}, p).verdict, nf::tx_verdict::incomplete);
}

TEST(TxPacket, EncoderRefusesWhatNetifCannotCarry) {
    std::vector<nf::tx_request> out(64);
    nf::tx_encode_error err{};
    EXPECT_EQ(nf::encode_tx_packet({}, {}, 0, out, err), 0U);
    EXPECT_EQ(err, nf::tx_encode_error::no_fragments);
    const nf::tx_fragment crossing[] = {{1, 4000, 200, 1}};
    EXPECT_EQ(nf::encode_tx_packet(crossing, {}, 0, out, err), 0U);
    EXPECT_EQ(err, nf::tx_encode_error::crosses_page);
    std::vector<nf::tx_fragment> big(17, nf::tx_fragment{1, 0, 4096, 1});
    EXPECT_EQ(nf::encode_tx_packet(big, {}, 0, out, err), 0U);
    EXPECT_EQ(err, nf::tx_encode_error::too_large);
    std::vector<nf::tx_fragment> many(19, nf::tx_fragment{1, 0, 10, 1});
    EXPECT_EQ(nf::encode_tx_packet(many, {}, 0, out, err), 0U);
    EXPECT_EQ(err, nf::tx_encode_error::too_many_slots);
    EXPECT_EQ(nf::encode_tx_packet(std::span(many).first(3), {}, 0, std::span(out).first(2), err),
              0U);
    EXPECT_EQ(err, nf::tx_encode_error::no_room);
}

TEST(TxPacket, RandomValidPacketsRoundTrip) {
    std::mt19937 rng(11);
    for (int round = 0; round < 20000; ++round) {
        std::vector<nf::tx_fragment> frags(1 + rng() % 18);
        std::uint32_t total = 0;
        for (std::size_t i = 0; i < frags.size(); ++i) {
            const auto off = static_cast<std::uint16_t>(rng() % 4096);
            const auto size = static_cast<std::uint16_t>(1 + rng() % (4096 - off));
            frags[i] = {static_cast<nf::grant_ref>(rng()), off, size,
                        static_cast<std::uint16_t>(i)};
            total += size;
        }
        if (total < 14 || total > 0xffff) {
            continue;
        }
        std::vector<nf::extra_info> extras;
        if (rng() % 2) {
            extras.push_back(nf::make_gso_extra(nf::gso_type_tcpv6, 1440));
        }
        const auto reqs = encode(frags, extras);
        nf::tx_packet p;
        ASSERT_EQ(decode(reqs, p).verdict, nf::tx_verdict::ok);
        ASSERT_EQ(p.nfrags, frags.size());
        for (std::size_t i = 0; i < frags.size(); ++i) {
            ASSERT_EQ(p.frags[i].gref, frags[i].gref);
            ASSERT_EQ(p.frags[i].offset, frags[i].offset);
            ASSERT_EQ(p.frags[i].size, frags[i].size);
            ASSERT_EQ(p.frags[i].id, frags[i].id);
        }
        ASSERT_EQ(p.has_gso, !extras.empty());
    }
}
