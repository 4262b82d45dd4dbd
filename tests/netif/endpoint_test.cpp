// netback and netfront together in one process: frames of every size cross both ways intact and
// in order with either copy side; what each feature does when on and when off; the backend
// queue's bound; buffers all come back.
#include <chrono>
#include <random>
#include <vector>

#include <gtest/gtest.h>

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

class Endpoints : public ::testing::TestWithParam<sn::copy_side> {};

TEST_P(Endpoints, FramesOfEverySizeCrossBothWaysIntactAndInOrder) {
    splitnet::test::driver_domain_memory<none> dd;
    auto [back, front] = splitnet::test::connect_pair(dd.params, front_config(GetParam()));
    auto& bq = back->queue(0);
    auto& fq = front->queue(0);
    ASSERT_TRUE(back->features().tx_sg);
    ASSERT_TRUE(back->features().rx_sg);
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
        std::vector<sp::frame> down;
        for (int i = 0; i < 8 && sent_down + down.size() < total; ++i) {
            down.push_back(
                make_chain(dd.mem.pool(), numbered_frame(sent_down + down.size(), size(rng))));
        }
        const std::size_t queued = bq.tx_burst(down);
        dd.mem.pool().free_burst({down.data() + queued, down.size() - queued});
        sent_down += queued;
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

INSTANTIATE_TEST_SUITE_P(CopySide, Endpoints,
                         ::testing::Values(sn::copy_side::backend, sn::copy_side::frontend),
                         [](const auto& i) {
                             return i.param == sn::copy_side::backend ? std::string("Backend")
                                                                      : std::string("Frontend");
                         });

} // namespace
