// netback and netfront together in one process: frames of every size cross both ways intact and
// in order with either copy side; what each feature does when on and when off; the backend
// queue's bound; buffers all come back.
#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "netif/endpoint_fixture.hpp"

namespace sn = splitnet::netif;
namespace sp = splitnet::packet;
using splitnet::test::bytes_of;
using splitnet::test::check_numbered;
using splitnet::test::make_chain;
using splitnet::test::numbered_frame;

namespace {

using none = splitnet::coalesce::moderation::none;

sn::frontend_config front_config(sn::copy_side side, std::uint32_t queues = 1) {
    sn::frontend_config c;
    c.request.rx_copy = side;
    c.request.queues = queues;
    c.mtu = 9000;
    c.buffers_per_queue = 1024;
    return c;
}

splitnet::coalesce::time_point now() {
    return splitnet::coalesce::time_point(std::chrono::steady_clock::now().time_since_epoch());
}

/// Hands the back end queue `count` numbered frames from `first` on, each `size_of()` bytes
/// long, and frees what it refuses; returns how many it took.
template <class BackQueue, class SizeOf>
std::uint64_t queue_numbered(BackQueue& bq, sp::buffer_pool& pool, std::uint64_t first,
                             std::uint64_t count, SizeOf size_of) {
    std::vector<sp::frame> down;
    for (std::uint64_t i = 0; i < count; ++i) {
        down.push_back(make_chain(pool, numbered_frame(first + i, size_of())));
    }
    const std::size_t queued = bq.tx_burst(down);
    pool.free_burst({down.data() + queued, down.size() - queued});
    return queued;
}

/// Copy side and RX ring page order.
class Endpoints : public ::testing::TestWithParam<std::tuple<sn::copy_side, std::uint32_t>> {};

TEST_P(Endpoints, FramesOfEverySizeCrossBothWaysIntactAndInOrder) {
    splitnet::test::driver_domain_memory<none> dd;
    auto cfg = front_config(std::get<0>(GetParam()));
    cfg.request.rx_ring_order = std::get<1>(GetParam());
    auto [back, front] = splitnet::test::connect_pair(dd.params, cfg);
    auto& bq = back->queue(0);
    auto& fq = front->queue(0);
    ASSERT_TRUE(back->features().tx_sg);
    ASSERT_TRUE(back->features().rx_sg);
    ASSERT_EQ(back->features().rx_ring_pages, 1U << cfg.request.rx_ring_order);
    ASSERT_EQ(fq.rx_ring_size(), sn::rx_ring_slots(1U << cfg.request.rx_ring_order));
    std::mt19937 rng(7);
    std::uniform_int_distribution<std::size_t> size(60, 9014);
    constexpr std::uint64_t total = 3000;
    std::uint64_t sent_up = 0, got_up = 0, sent_down = 0, got_down = 0;
    std::vector<sp::frame> burst(32);
    for (int round = 0;
         round < 20000 && (got_up < total || got_down < total) && !bq.broken() && !fq.broken();
         ++round) {
        // guest -> driver domain
        std::vector<sp::frame> out;
        for (int i = 0; i < 8 && sent_up + out.size() < total; ++i) {
            out.push_back(
                make_chain(front->pool(), numbered_frame(sent_up + out.size(), size(rng))));
        }
        const std::size_t took = fq.tx_burst(out);
        front->pool().free_burst({out.data() + took, out.size() - took});
        sent_up += took;
        const std::size_t n = bq.rx_burst(burst);
        for (std::size_t i = 0; i < n; ++i) {
            ASSERT_EQ(check_numbered(bytes_of(burst[i])), static_cast<std::int64_t>(got_up));
            ++got_up;
        }
        dd.mem.pool().free_burst({burst.data(), n});
        // driver domain -> guest
        sent_down += queue_numbered(bq, dd.mem.pool(), sent_down,
                                    std::min<std::uint64_t>(8, total - sent_down),
                                    [&] { return size(rng); });
        bq.deliver(now());
        const std::size_t m = fq.rx_burst(burst);
        for (std::size_t i = 0; i < m; ++i) {
            ASSERT_EQ(check_numbered(bytes_of(burst[i])), static_cast<std::int64_t>(got_down));
            ++got_down;
        }
        front->pool().free_burst({burst.data(), m});
    }
    EXPECT_EQ(got_up, total) << bq.fault() << " | " << fq.fault();
    EXPECT_EQ(got_down, total) << "no_req " << bq.queue_stats().rx_no_requests << " drops "
                               << bq.queue_drops() << " rx_dropped " << bq.queue_stats().rx_dropped
                               << " posted " << fq.queue_stats().rx_posted << " nobuf "
                               << fq.queue_stats().rx_no_buffers << " fq errors "
                               << fq.queue_stats().rx_errors << " slots "
                               << bq.queue_stats().rx_slots << " sent_down " << sent_down
                               << " pool " << front->pool().available() << " grants "
                               << front->grants().available();
    EXPECT_EQ(bq.queue_stats().tx_dropped + bq.queue_stats().tx_copy_failed, 0U);
    EXPECT_EQ(bq.queue_stats().rx_copy_failed + bq.queue_stats().rx_dropped, 0U);
    EXPECT_EQ(fq.queue_stats().rx_errors + fq.queue_stats().tx_errors, 0U);
    EXPECT_TRUE(back->poll_control());
    EXPECT_TRUE(front->poll_control());
    front.reset();
    EXPECT_FALSE(back->poll_control()) << "the front end's exit is seen at once";
    back.reset();
    EXPECT_EQ(dd.mem.pool().available(), dd.mem.pool().capacity()) << "every buffer came back";
}

INSTANTIATE_TEST_SUITE_P(CopySideAndRingPages, Endpoints,
                         ::testing::Combine(::testing::Values(sn::copy_side::backend,
                                                              sn::copy_side::frontend),
                                            ::testing::Values(0U, 1U, 2U)),
                         [](const auto& i) {
                             return std::string(std::get<0>(i.param) == sn::copy_side::backend
                                                    ? "Backend"
                                                    : "Frontend") +
                                    "RxRingPages" + std::to_string(1U << std::get<1>(i.param));
                         });

// A larger RX ring is an optimisation: a front end asking for more pages than the back end
// offers takes what is offered, and both ends agree on it.
TEST(EndpointRings, AFrontEndTakesTheRxRingTheBackEndOffers) {
    splitnet::test::driver_domain_memory<none> dd;
    dd.params.offer.max_rx_ring_order = 1;
    auto cfg = front_config(sn::copy_side::backend);
    cfg.request.rx_ring_order = 2;
    auto [back, front] = splitnet::test::connect_pair(dd.params, cfg);
    EXPECT_EQ(back->features().rx_ring_pages, 2U);
    EXPECT_EQ(front->queue(0).rx_ring_size(), 512U);
    cfg.request.rx_ring_order = 3;
    try {
        (void)splitnet::test::connect_pair(dd.params, cfg, 2);
        ADD_FAILURE() << "an 8-page ring was accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("at most 4 are supported"), std::string::npos)
            << e.what();
    }
}

// Frontend copy read in place (rx_views): the packets a device would be handed carry the same
// bytes as copies would, their headers in the queue's own writable scratch, the rest read-only
// views of the back end's buffers, which stay lent until rx_views_done().
class EndpointViews : public ::testing::TestWithParam<std::uint32_t> {}; // RX ring page order

TEST_P(EndpointViews, FramesOfEverySizeArriveIntactAndTheBuffersComeBackWhenDone) {
    splitnet::test::driver_domain_memory<none> dd;
    auto cfg = front_config(sn::copy_side::frontend);
    cfg.request.rx_ring_order = GetParam();
    auto [back, front] = splitnet::test::connect_pair(dd.params, cfg);
    auto& bq = back->queue(0);
    auto& fq = front->queue(0);
    ASSERT_EQ(fq.rx_ring_size(), sn::rx_ring_slots(1U << GetParam()));
    std::mt19937 rng(9);
    std::uniform_int_distribution<std::size_t> size(60, 9014);
    constexpr std::uint64_t total = 2000;
    std::uint64_t sent = 0, got = 0;
    std::vector<sp::frame> burst(32);
    std::vector<sp::frame> copied(32);
    auto queue_more = [&] {
        sent += queue_numbered(bq, dd.mem.pool(), sent, std::min<std::uint64_t>(8, total - sent),
                               [&] { return size(rng); });
    };
    for (int round = 0; round < 20000 && got < total && !bq.broken() && !fq.broken(); ++round) {
        queue_more();
        bq.deliver(now());
        const std::uint64_t posted = fq.queue_stats().rx_posted;
        const std::size_t m = fq.rx_views(burst);
        EXPECT_EQ(fq.queue_stats().rx_posted, posted) << "the slots read stay unposted";
        EXPECT_EQ(fq.rx_burst(copied), 0U) << "no other receive while views are out";
        for (std::size_t i = 0; i < m; ++i) {
            const sp::frame& f = burst[i];
            ASSERT_EQ(check_numbered(bytes_of(f)), static_cast<std::int64_t>(got));
            EXPECT_EQ(f.buffer, sp::no_buffer) << "the headers are in the queue's scratch";
            EXPECT_EQ(f.data_len, std::min<std::uint32_t>(f.pkt_len, 256));
            // The rest is read where the back end put it (its region, as this front end maps
            // it), not copied into our pool.
            const sp::buffer_pool& own = front->pool();
            const std::size_t arena = std::size_t{own.capacity()} * own.frame_size();
            for (const sp::frame* s = f.next; s != nullptr; s = s->next) {
                EXPECT_TRUE(s->data < own.base() || s->data >= own.base() + arena);
                EXPECT_EQ(s->buffer, sp::no_buffer);
            }
            ++got;
        }
        // More deliveries while the views are out (new slots, fresh buffers from the back
        // end's pool): none of them lands in a buffer still being read.
        queue_more();
        bq.deliver(now());
        queue_more();
        for (std::size_t i = 0; i < m; ++i) {
            ASSERT_EQ(check_numbered(bytes_of(burst[i])), static_cast<std::int64_t>(got - m + i))
                << "a buffer under a view was reused, round " << round;
        }
        front->pool().free_burst({burst.data(), m}); // frames of no pool: a no-op
        EXPECT_EQ(fq.queue_stats().rx_posted, posted);
        fq.rx_views_done();
        EXPECT_GE(fq.queue_stats().rx_posted, posted + m) << "and are posted again when done";
    }
    EXPECT_EQ(got, total) << bq.fault() << " | " << fq.fault();
    EXPECT_EQ(fq.queue_stats().rx_errors, 0U);
    EXPECT_EQ(front->pool().available(), front->pool().capacity());
    front.reset();
    EXPECT_FALSE(back->poll_control());
    back.reset();
    EXPECT_EQ(dd.mem.pool().available(), dd.mem.pool().capacity()) << "every buffer came back";
}

INSTANTIATE_TEST_SUITE_P(RxRingPages, EndpointViews, ::testing::Values(0U, 2U),
                         [](const auto& i) { return std::to_string(1U << i.param); });

// ---- offloads ---------------------------------------------------------------------------

/// A TCP/IPv4 packet with `payload` bytes of a pattern, as one frame of `pool` (a chain).
sp::frame tcp_aggregate(sp::buffer_pool& pool, std::size_t payload, std::uint16_t mss,
                        bool partial) {
    std::vector<std::uint8_t> pl(payload);
    sp::fill_stream_bytes(pl, 99, 0);
    std::vector<std::uint8_t> pkt(payload + 100);
    sp::tcp_spec tcp;
    tcp.seq = 1000;
    const std::size_t len = sp::build_tcp(pkt, {}, {}, tcp, pl);
    pkt.resize(len);
    sp::frame f = make_chain(pool, pkt);
    const auto parsed = sp::parse(f.bytes(), f.pkt_len);
    if (partial) {
        sp::set_partial_checksum(f.bytes(), parsed, f.offload);
    } else {
        f.offload.csum = sp::csum_state::verified;
    }
    if (payload > mss) {
        f.offload.gso = sp::gso_type::tcpv4;
        f.offload.gso_size = mss;
        (void)sp::complete_offload_metadata(parsed, f.offload);
    }
    return f;
}

/// The TCP payload carried by a linear or chained frame.
std::vector<std::uint8_t> tcp_payload(const sp::frame& f) {
    const auto b = bytes_of(f);
    const auto p = sp::parse(b);
    return {b.begin() + p.payload_offset, b.begin() + static_cast<std::ptrdiff_t>(p.l3_end)};
}

std::vector<sp::frame> deliver_all(sn::backend<none>& back, sn::frontend& front,
                                   std::vector<sp::frame> in) {
    auto& bq = back.queue(0);
    EXPECT_EQ(bq.tx_burst(in), in.size());
    std::vector<sp::frame> got;
    std::vector<sp::frame> burst(64);
    for (int i = 0; i < 100 && bq.has_rx_backlog(); ++i) {
        bq.deliver(now());
        const std::size_t n = front.queue(0).rx_burst(burst);
        got.insert(got.end(), burst.begin(), burst.begin() + static_cast<std::ptrdiff_t>(n));
    }
    const std::size_t n = front.queue(0).rx_burst(burst);
    got.insert(got.end(), burst.begin(), burst.begin() + static_cast<std::ptrdiff_t>(n));
    return got;
}

TEST(EndpointOffloads, AnAggregateReachesAGsoGuestWholeWithItsMetadata) {
    splitnet::test::driver_domain_memory<none> dd;
    auto [back, front] =
        splitnet::test::connect_pair(dd.params, front_config(sn::copy_side::backend));
    ASSERT_TRUE(back->features().rx_gso_tcpv4);
    sp::frame agg = tcp_aggregate(dd.mem.pool(), 30000, 1448, true);
    const auto want = tcp_payload(agg);
    const auto got = deliver_all(*back, *front, {agg});
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(got[0].offload.gso, sp::gso_type::tcpv4);
    EXPECT_EQ(got[0].offload.gso_size, 1448);
    EXPECT_EQ(got[0].offload.csum, sp::csum_state::partial);
    EXPECT_EQ(got[0].offload.csum_start, 34) << "located from the headers";
    EXPECT_EQ(got[0].offload.gso_segs, (30000 + 1447) / 1448);
    EXPECT_EQ(tcp_payload(got[0]), want);
    EXPECT_EQ(back->queue(0).queue_stats().rx_slots, 8U + 1U) << "8 whole pages plus the extra";
    front->pool().free_burst(got);
}

// A back end whose next frame needs more ring slots than the guest has posted waits for the
// guest to post them (its request event armed at that many) instead of finding "work" in the
// few that are there and polling them again and again.
TEST(EndpointOffloads, ABackEndShortOfSlotsSleepsUntilTheGuestPostsEnough) {
    for (const auto side : {sn::copy_side::backend, sn::copy_side::frontend}) {
        splitnet::test::driver_domain_memory<none> dd;
        auto [back, front] = splitnet::test::connect_pair(dd.params, front_config(side));
        auto& bq = back->queue(0);
        // Backend copy: 9 slots an aggregate (8 guest pages and the GSO extra); frontend copy:
        // one per piece of the chain, more. 40 of them do not fit the 256 slots posted.
        std::vector<sp::frame> aggs;
        for (int i = 0; i < 40; ++i) {
            aggs.push_back(tcp_aggregate(dd.mem.pool(), 30000, 1448, true));
        }
        ASSERT_EQ(bq.tx_burst(aggs), aggs.size());
        for (int i = 0; i < 4; ++i) {
            bq.deliver(now());
        }
        ASSERT_TRUE(bq.has_rx_backlog());
        const auto waits = bq.queue_stats().rx_no_requests;
        EXPECT_GT(waits, 0U);
        EXPECT_FALSE(bq.prepare_to_sleep()) << "too few slots posted is no work: sleep";
        // The guest takes what it got, which posts its slots again: now there is work.
        std::vector<sp::frame> burst(64);
        std::size_t got = 0;
        for (std::size_t n; (n = front->queue(0).rx_burst(burst)) != 0;) {
            got += n;
            front->pool().free_burst({burst.data(), n});
        }
        EXPECT_GT(got, 0U);
        EXPECT_TRUE(bq.prepare_to_sleep())
            << (side == sn::copy_side::backend ? "backend" : "frontend");
        // And the rest gets through.
        for (int i = 0; i < 200 && bq.has_rx_backlog(); ++i) {
            bq.deliver(now());
            for (std::size_t n; (n = front->queue(0).rx_burst(burst)) != 0;) {
                got += n;
                front->pool().free_burst({burst.data(), n});
            }
        }
        EXPECT_EQ(got, aggs.size());
    }
}

// Frontend copy out of grants: a front end that keeps its activity count odd (here: writes the
// same odd count back after every batch, as a hostile one may) holds back the ends of access of
// the grants made to it. Its queue runs out of references; posted slots are no help then, so the
// queue does not report work for them but retries on a timer, and delivers again once the
// references come back. Another front end copying from the same back end is not held back.
TEST(EndpointOffloads, AFrontEndHoldingItsGrantsBackStallsOnlyItselfAndOnATimer) {
    splitnet::test::driver_domain_memory<none> dd;
    auto [back, front] =
        splitnet::test::connect_pair(dd.params, front_config(sn::copy_side::frontend), 1);
    auto [back2, front2] =
        splitnet::test::connect_pair(dd.params, front_config(sn::copy_side::frontend), 2);
    auto& bq = back->queue(0);
    auto& fq = front->queue(0);
    auto& bq2 = back2->queue(0);
    auto& fq2 = front2->queue(0);
    ASSERT_TRUE(back->copy_slot().has_value());
    std::uint32_t& count = dd.mem.domain().activity(*back->copy_slot());
    std::vector<sp::frame> burst(64);
    std::uint64_t sent = 0, got = 0, sent2 = 0, got2 = 0;
    auto receive = [&burst](auto& q, auto& fe) {
        const std::size_t n = q.rx_burst(burst); // copies and re-posts the slots
        fe.pool().free_burst({burst.data(), n});
        return n;
    };
    for (int round = 0; round < 5000 && bq.queue_stats().rx_grants_exhausted == 0; ++round) {
        sent += queue_numbered(bq, dd.mem.pool(), sent, 16, [] { return std::size_t{200}; });
        sent2 += queue_numbered(bq2, dd.mem.pool(), sent2, 16, [] { return std::size_t{200}; });
        splitnet::detail::store_release(count, 1001U);
        bq.deliver(now());
        bq2.deliver(now());
        got += receive(fq, *front);
        splitnet::detail::store_release(count, 1001U);
        got2 += receive(fq2, *front2);
        ASSERT_EQ(got2, sent2) << "the other front end is served in full every round";
    }
    ASSERT_GT(bq.queue_stats().rx_grants_exhausted, 0U) << "the references ran out";
    EXPECT_EQ(bq2.queue_stats().rx_grants_exhausted, 0U);
    ASSERT_TRUE(bq.has_rx_backlog());
    EXPECT_FALSE(bq.prepare_to_sleep()) << "posted slots are no work without grants";
    EXPECT_NE(bq.next_deadline(), splitnet::coalesce::never) << "a retry is due instead";
    // The front end's count moves on: the deferred ends complete and deliveries resume.
    splitnet::detail::store_release(count, 1002U);
    for (int i = 0; i < 2000 && got < sent; ++i) {
        bq.deliver(now());
        got += receive(fq, *front);
    }
    EXPECT_EQ(got, sent);
    EXPECT_EQ(bq.next_deadline(), splitnet::coalesce::never);
}

// A front end that has gone but still maps its activity page can write it whatever it likes:
// its slot, given back, no longer holds anyone's ends of access.
TEST(EndpointOffloads, ADepartedFrontEndsSlotHoldsNothingBack) {
    splitnet::test::driver_domain_memory<none> dd;
    auto gone = splitnet::test::connect_pair(dd.params, front_config(sn::copy_side::frontend), 1);
    auto [back, front] =
        splitnet::test::connect_pair(dd.params, front_config(sn::copy_side::frontend), 2);
    const std::uint32_t slot = *gone.back->copy_slot();
    gone.front.reset();
    gone.back.reset();
    std::uint32_t& count = dd.mem.domain().activity(slot);
    auto& bq = back->queue(0);
    auto& fq = front->queue(0);
    std::vector<sp::frame> burst(64);
    std::uint64_t sent = 0, got = 0;
    for (int round = 0; round < 200; ++round) {
        splitnet::detail::store_release(count, 77U); // odd, and never moving on
        sent += queue_numbered(bq, dd.mem.pool(), sent, 16, [] { return std::size_t{200}; });
        bq.deliver(now());
        const std::size_t n = fq.rx_burst(burst);
        got += n;
        front->pool().free_burst({burst.data(), n});
        ASSERT_EQ(got, sent) << "round " << round;
    }
    EXPECT_EQ(bq.queue_stats().rx_grants_exhausted, 0U);
    const auto again = dd.mem.take_activity_slot(3);
    ASSERT_TRUE(again.has_value());
    EXPECT_NE(*again, slot) << "a given-back slot returns as late as possible";
    dd.mem.give_activity_slot(*again);
}

TEST(EndpointOffloads, AGuestWithoutGsoGetsValidSegmentsWithFullChecksums) {
    splitnet::test::driver_domain_memory<none> dd;
    auto cfg = front_config(sn::copy_side::backend);
    cfg.request.gso_tcpv4 = cfg.request.gso_tcpv6 = false;
    cfg.request.no_csum_offload = true;
    auto [back, front] = splitnet::test::connect_pair(dd.params, cfg);
    ASSERT_FALSE(back->features().rx_gso_tcpv4);
    ASSERT_FALSE(back->features().rx_csum_ipv4);
    sp::frame agg = tcp_aggregate(dd.mem.pool(), 30000, 1448, true);
    const auto want = tcp_payload(agg);
    auto got = deliver_all(*back, *front, {agg});
    ASSERT_EQ(got.size(), (30000U + 1447U) / 1448U);
    std::vector<std::uint8_t> joined;
    for (const auto& f : got) {
        EXPECT_FALSE(f.offload.is_gso());
        EXPECT_NE(f.offload.csum, sp::csum_state::partial);
        const auto b = bytes_of(f);
        const auto p = sp::parse(b);
        ASSERT_TRUE(p.ok());
        EXPECT_TRUE(sp::ipv4_header_checksum_ok(b, p));
        EXPECT_TRUE(sp::l4_checksum_ok(b, p)) << "completed in software for this guest";
        const auto pl = tcp_payload(f);
        joined.insert(joined.end(), pl.begin(), pl.end());
    }
    EXPECT_EQ(joined, want);
    EXPECT_EQ(back->queue(0).queue_stats().rx_segmented, 1U);
    // A partial checksum on a plain packet is completed too.
    sp::frame small = tcp_aggregate(dd.mem.pool(), 500, 1448, true);
    auto one = deliver_all(*back, *front, {small});
    ASSERT_EQ(one.size(), 1U);
    const auto b = bytes_of(one[0]);
    EXPECT_TRUE(sp::l4_checksum_ok(b, sp::parse(b)));
    front->pool().free_burst(got);
    front->pool().free_burst(one);
}

TEST(EndpointOffloads, GuestTsoFramesArriveAsAggregatesOnlyWhenTheBackEndOffersGso) {
    for (bool offered : {true, false}) {
        splitnet::test::driver_domain_memory<none> dd;
        dd.params.offer.gso_tcpv4 = dd.params.offer.gso_tcpv6 = offered;
        auto [back, front] =
            splitnet::test::connect_pair(dd.params, front_config(sn::copy_side::backend));
        EXPECT_EQ(front->queue(0).caps().tx_gso_tcp, offered);
        sp::frame tso = tcp_aggregate(front->pool(), 20000, 1448, true);
        const auto want = tcp_payload(tso);
        std::vector<sp::frame> in{tso};
        EXPECT_EQ(front->queue(0).tx_burst(in), 1U);
        std::vector<sp::frame> out(8);
        const std::size_t n = back->queue(0).rx_burst(out);
        if (offered) {
            ASSERT_EQ(n, 1U);
            EXPECT_EQ(out[0].offload.gso, sp::gso_type::tcpv4);
            EXPECT_EQ(out[0].offload.gso_size, 1448);
            EXPECT_EQ(out[0].offload.hdr_len, 54);
            EXPECT_EQ(tcp_payload(out[0]), want);
            dd.mem.pool().free_burst({out.data(), n});
        } else {
            EXPECT_EQ(n, 0U) << "the front end refuses what it did not negotiate";
            EXPECT_EQ(front->queue(0).queue_stats().tx_errors, 1U);
        }
        front.reset();
        back.reset();
        EXPECT_EQ(dd.mem.pool().available(), dd.mem.pool().capacity());
    }
}

// ---- the backend queue's bound ---------------------------------------------------------------

TEST(EndpointQueue, AFullBackendQueueTakesWhatFitsAndCountsTheRest) {
    splitnet::test::driver_domain_memory<none> dd;
    dd.params.queue.rx_queue_len = 8;
    auto [back, front] =
        splitnet::test::connect_pair(dd.params, front_config(sn::copy_side::backend));
    auto& bq = back->queue(0);
    std::vector<sp::frame> in;
    for (int i = 0; i < 100; ++i) {
        in.push_back(make_chain(dd.mem.pool(), numbered_frame(static_cast<std::uint64_t>(i), 200)));
    }
    const std::size_t took = bq.tx_burst(in);
    EXPECT_EQ(took, 8U);
    EXPECT_EQ(bq.queue_drops(), 92U);
    dd.mem.pool().free_burst({in.data() + took, in.size() - took});
    std::vector<sp::frame> burst(64);
    bq.deliver(now());
    const std::size_t n = front->queue(0).rx_burst(burst);
    ASSERT_EQ(n, 8U);
    for (std::size_t i = 0; i < n; ++i) {
        EXPECT_EQ(check_numbered(bytes_of(burst[i])), static_cast<std::int64_t>(i));
    }
    front->pool().free_burst({burst.data(), n});
    // Frames still queued when the front end leaves are reclaimed with the backend.
    for (int i = 0; i < 8; ++i) {
        sp::frame f = make_chain(dd.mem.pool(), numbered_frame(0, 3000));
        EXPECT_EQ(bq.tx_burst({&f, 1}), 1U);
    }
    front.reset();
    back.reset();
    EXPECT_EQ(dd.mem.pool().available(), dd.mem.pool().capacity());
}

// ---- notifications -----------------------------------------------------------------------------

TEST(EndpointNotify, ModerationBatchesRxNotificationsAndTheTimerFlushesTheRest) {
    using fixed = splitnet::coalesce::moderation::fixed<16, 50>;
    splitnet::test::driver_domain_memory<fixed> dd;
    auto [back, front] =
        splitnet::test::connect_pair(dd.params, front_config(sn::copy_side::backend));
    auto& bq = back->queue(0);
    auto& fq = front->queue(0);
    const auto t0 = now();
    EXPECT_FALSE(fq.prepare_to_sleep()) << "nothing yet: the front end arms its event index";
    std::vector<sp::frame> burst(64);
    std::size_t received = 0;
    for (int round = 0; round < 20; ++round) {
        std::vector<sp::frame> in;
        for (int i = 0; i < 8; ++i) {
            in.push_back(make_chain(dd.mem.pool(), numbered_frame(0, 100)));
        }
        ASSERT_EQ(bq.tx_burst(in), in.size());
        bq.deliver(t0);
        // The front end only looks when notified (it would sleep otherwise).
        eventfd_t kicks = 0;
        if (::eventfd_read(fq.rx_event_fd(), &kicks) == 0) {
            const std::size_t n = fq.rx_burst(burst);
            received += n;
            front->pool().free_burst({burst.data(), n});
            EXPECT_FALSE(fq.prepare_to_sleep());
        }
    }
    EXPECT_EQ(received, 160U);
    EXPECT_EQ(bq.queue_stats().rx_notifications, 10U) << "160 packets, one kick per 16";
    // Fewer than 16 waiting: only the timer notifies, once the timeout has passed.
    std::vector<sp::frame> few{make_chain(dd.mem.pool(), numbered_frame(0, 100))};
    ASSERT_EQ(bq.tx_burst(few), 1U);
    const auto before = bq.queue_stats().rx_notifications;
    bq.deliver(t0);
    bq.on_timer(t0 + std::chrono::microseconds(10));
    EXPECT_EQ(bq.queue_stats().rx_notifications, before) << "not due yet";
    EXPECT_NE(bq.next_deadline(), splitnet::coalesce::never);
    bq.on_timer(t0 + std::chrono::microseconds(60));
    EXPECT_EQ(bq.queue_stats().rx_notifications, before + 1);
    EXPECT_EQ(bq.next_deadline(), splitnet::coalesce::never);
}

// ---- several queues, several front ends ------------------------------------------------------

TEST(EndpointQueues, EachQueueCarriesItsOwnTrafficAndDoorbells) {
    splitnet::test::driver_domain_memory<none> dd;
    auto cfg = front_config(sn::copy_side::backend, 3);
    auto [back, front] = splitnet::test::connect_pair(dd.params, cfg);
    ASSERT_EQ(back->queue_count(), 3U);
    ASSERT_EQ(front->queue_count(), 3U);
    for (std::uint32_t q = 0; q < 3; ++q) {
        EXPECT_NE(back->queue(q).tx_kick_fd(), back->queue(q).rx_kick_fd()) << "split channels";
        std::vector<sp::frame> in{make_chain(front->pool(), numbered_frame(q, 300))};
        ASSERT_EQ(front->queue(q).tx_burst(in), 1U);
        std::uint64_t kicks = 0;
        EXPECT_EQ(::eventfd_read(back->queue(q).tx_kick_fd(), &kicks), 0) << "queue " << q;
        for (std::uint32_t other = 0; other < 3; ++other) {
            std::vector<sp::frame> out(4);
            const std::size_t n = back->queue(other).rx_burst(out);
            EXPECT_EQ(n, other == q ? 1U : 0U);
            if (n == 1) {
                EXPECT_EQ(check_numbered(bytes_of(out[0])), q);
            }
            dd.mem.pool().free_burst({out.data(), n});
        }
    }
}

TEST(EndpointQueues, WithoutSplitChannelsOneDoorbellServesBothRings) {
    splitnet::test::driver_domain_memory<none> dd;
    dd.params.offer.split_event_channels = false;
    auto [back, front] =
        splitnet::test::connect_pair(dd.params, front_config(sn::copy_side::backend));
    EXPECT_FALSE(back->features().split_event_channels);
    EXPECT_EQ(back->queue(0).tx_kick_fd(), back->queue(0).rx_kick_fd());
    EXPECT_EQ(front->queue(0).rx_event_fd(), front->queue(0).tx_event_fd());
    std::vector<sp::frame> in{make_chain(front->pool(), numbered_frame(5, 300))};
    ASSERT_EQ(front->queue(0).tx_burst(in), 1U);
    std::vector<sp::frame> out(4);
    ASSERT_EQ(back->queue(0).rx_burst(out), 1U);
    dd.mem.pool().free_burst({out.data(), 1});
}

TEST(EndpointAcceptor, ServesSeveralFrontEndsAndRefusesWhatItCannotServe) {
    splitnet::test::driver_domain_memory<none> dd;
    const std::string path = "/tmp/splitnet-acceptor-" + std::to_string(::getpid());
    sn::backend_acceptor<none> acceptor(path, dd.params);
    std::vector<std::unique_ptr<sn::backend<none>>> backs;
    std::atomic<bool> stop{false};
    std::thread control([&] {
        while (!stop.load()) {
            acceptor.step();
            while (auto b = acceptor.take_connected()) {
                backs.push_back(std::move(b));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    });
    auto f1 = sn::frontend::connect(path, front_config(sn::copy_side::backend));
    auto f2 = sn::frontend::connect(path, front_config(sn::copy_side::frontend));
    auto too_many = front_config(sn::copy_side::backend, 9);
    try {
        (void)sn::frontend::connect(path, too_many);
        ADD_FAILURE() << "9 queues were accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("at most"), std::string::npos) << e.what();
    }
    stop = true;
    control.join();
    ASSERT_EQ(backs.size(), 2U);
    EXPECT_NE(f1->hello().frontend_id, f2->hello().frontend_id) << "each gets its own id";
    EXPECT_EQ(backs[0]->frontend_id(), f1->hello().frontend_id);
    EXPECT_EQ(backs[1]->features().rx_copy, sn::copy_side::frontend);
    EXPECT_EQ(backs[0]->mac(), f1->mac());
    f1.reset();
    EXPECT_FALSE(backs[0]->poll_control());
    EXPECT_NE(backs[0]->disconnect_reason().find("closed"), std::string::npos);
    EXPECT_TRUE(backs[1]->poll_control());
}

} // namespace
