// The in-memory port: what is injected comes out of rx_burst in order, what is sent can be
// collected; both queues are bounded like a device ring (a full one is a partial burst, never a
// silent drop); discard mode frees what is sent; counters add up.
#include <vector>

#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <splitnet/nic/memory_port.hpp>

namespace sp = splitnet::packet;
namespace sn = splitnet::nic;

TEST(MemoryPort, InjectedFramesComeOutInOrderAndSentOnesCanBeCollected) {
    sp::buffer_pool pool({.frame_count = 64});
    sn::memory_port port(pool, {.rx_capacity = 8, .tx_capacity = 4});
    static_assert(sn::port<sn::memory_port>);
    std::vector<sp::frame> f(10);
    ASSERT_EQ(pool.alloc_burst(f), 10U);
    for (std::size_t i = 0; i < f.size(); ++i) {
        f[i].data_len = f[i].pkt_len = static_cast<std::uint32_t>(60 + i);
    }
    EXPECT_EQ(port.inject(f), 8U) << "bounded";
    std::vector<sp::frame> rx(16);
    ASSERT_EQ(port.rx_burst(rx), 8U);
    for (std::size_t i = 0; i < 8; ++i) {
        EXPECT_EQ(rx[i].pkt_len, 60 + i);
    }
    EXPECT_EQ(port.stats().rx_packets, 8U);
    EXPECT_EQ(port.tx_burst({rx.data(), 8}), 4U) << "a full device takes part of a burst";
    EXPECT_EQ(port.stats().tx_full, 1U);
    std::vector<sp::frame> out(8);
    ASSERT_EQ(port.collect(out), 4U);
    EXPECT_EQ(out[3].pkt_len, 63U);
    pool.free_burst({out.data(), 4});
    pool.free_burst({rx.data() + 4, 4});
    pool.free_burst({f.data() + 8, 2});
    EXPECT_EQ(pool.available(), pool.capacity());
}

TEST(MemoryPort, DiscardModeFreesEverythingSent) {
    sp::buffer_pool pool({.frame_count = 64});
    sn::memory_port port(pool, {.discard_tx = true});
    std::vector<sp::frame> f(64);
    ASSERT_EQ(pool.alloc_burst(f), 64U);
    EXPECT_EQ(port.tx_burst(f), 64U);
    EXPECT_EQ(pool.available(), 64U);
    EXPECT_EQ(port.stats().tx_packets, 64U);
}

TEST(MemoryPort, TheDoorbellRingsOnlyAfterTheReceiverArmedIt) {
    sp::buffer_pool pool({.frame_count = 8});
    sn::memory_port port(pool);
    sp::frame f;
    ASSERT_EQ(pool.alloc_burst({&f, 1}), 1U);
    eventfd_t v = 0;
    ASSERT_EQ(port.inject({&f, 1}), 1U);
    EXPECT_NE(::eventfd_read(port.fd(), &v), 0) << "not armed: no system call on inject";
    EXPECT_TRUE(port.prepare_to_sleep()) << "a frame is waiting: do not sleep";
    ASSERT_EQ(port.rx_burst({&f, 1}), 1U);
    EXPECT_FALSE(port.prepare_to_sleep());
    ASSERT_EQ(port.inject({&f, 1}), 1U);
    EXPECT_EQ(::eventfd_read(port.fd(), &v), 0) << "armed: inject rings";
    ASSERT_EQ(port.rx_burst({&f, 1}), 1U);
    pool.free(f);
}
