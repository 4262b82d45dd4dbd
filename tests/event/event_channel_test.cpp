// Both event channel implementations through the same tests: notify then wait, coalescing,
// timeouts, the sent/suppressed/wake-up counts, and a ping-pong between threads in which a lost
// wake-up would show as a timeout.
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include <splitnet/event/eventfd_channel.hpp>
#include <splitnet/event/inproc_channel.hpp>

namespace se = splitnet::event;
using namespace std::chrono_literals;

namespace {
template <class E>
class EventChannel : public ::testing::Test {};
using channels = ::testing::Types<se::eventfd_channel, se::inproc_channel>;
TYPED_TEST_SUITE(EventChannel, channels);
} // namespace

TYPED_TEST(EventChannel, NotifyThenWaitAndCoalescing) {
    TypeParam ch;
    EXPECT_FALSE(ch.try_consume());
    ch.notify();
    ch.notify();
    ch.notify();
    EXPECT_TRUE(ch.wait(1s));
    EXPECT_FALSE(ch.try_consume()) << "three notifications, one wake-up";
    const auto s = ch.stats();
    EXPECT_EQ(s.notifications_sent, 3U);
    EXPECT_EQ(s.wakeups, 1U);
}

TYPED_TEST(EventChannel, WaitTimesOutWithoutNotification) {
    TypeParam ch;
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(ch.wait(20ms));
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 19ms);
    EXPECT_EQ(ch.stats().timeouts, 1U);
}

TYPED_TEST(EventChannel, NotifyIfCountsSuppressedNotifications) {
    TypeParam ch;
    ch.notify_if(false);
    ch.notify_if(false);
    ch.notify_if(true);
    const auto s = ch.stats();
    EXPECT_EQ(s.notifications_sent, 1U);
    EXPECT_EQ(s.notifications_suppressed, 2U);
    EXPECT_TRUE(ch.try_consume());
}

TYPED_TEST(EventChannel, PingPongBetweenThreadsLosesNoWakeup) {
    TypeParam ping, pong;
    constexpr int rounds = 20000;
    int timeouts = 0;
    std::thread peer([&] {
        for (int i = 0; i < rounds; ++i) {
            if (!ping.wait(2s)) {
                return;
            }
            pong.notify();
        }
    });
    for (int i = 0; i < rounds; ++i) {
        ping.notify();
        if (!pong.wait(2s)) {
            ++timeouts;
            break;
        }
    }
    peer.join();
    EXPECT_EQ(timeouts, 0);
}

TEST(EventfdChannel, AdoptsAReceivedDescriptor) {
    se::eventfd_channel a;
    se::eventfd_channel b(::dup(a.fd()));
    a.notify();
    EXPECT_TRUE(b.wait(1s)) << "same eventfd object seen through another descriptor";
}
