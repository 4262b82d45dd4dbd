// Every burst_queue implementation (splitnet's spsc_ring, Boost spsc_queue and queue behind the
// adapters) through the same behaviour tests; then what only spsc_ring offers: regions, bulk
// operations, wrap-around from near UINT32_MAX, and a shared-memory view.
#include <cstdint>
#include <numeric>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/ring/lockfree_adapter.hpp>
#include <splitnet/ring/spsc_ring.hpp>

namespace sr = splitnet::ring;

namespace {

constexpr std::size_t cap = 64;

template <class Q>
struct factory {
    static std::unique_ptr<Q> make() { return std::make_unique<Q>(); }
};
template <>
struct factory<sr::spsc_ring<std::uint64_t>> {
    static std::unique_ptr<sr::spsc_ring<std::uint64_t>> make() {
        return std::make_unique<sr::spsc_ring<std::uint64_t>>(cap);
    }
};

template <class Q>
class BurstQueue : public ::testing::Test {
protected:
    std::unique_ptr<Q> q_ = factory<Q>::make();
};

using queues =
    ::testing::Types<sr::spsc_ring<std::uint64_t>, sr::lockfree_spsc_queue<std::uint64_t, cap>,
                     sr::lockfree_mpmc_queue<std::uint64_t, cap>>;
TYPED_TEST_SUITE(BurstQueue, queues);

static_assert(noexcept(std::declval<sr::spsc_ring<int>&>().enqueue_burst(std::span<const int>{})));

} // namespace

TYPED_TEST(BurstQueue, FifoWithPartialBursts) {
    auto& q = *this->q_;
    EXPECT_EQ(q.capacity(), cap);
    std::vector<std::uint64_t> in(100);
    std::iota(in.begin(), in.end(), 1000);
    EXPECT_EQ(q.enqueue_burst(in), cap) << "as many as fit";
    EXPECT_EQ(q.enqueue_burst(std::span(in).first(1)), 0U) << "full";
    std::vector<std::uint64_t> out(10);
    EXPECT_EQ(q.dequeue_burst(out), 10U);
    for (std::size_t i = 0; i < 10; ++i) {
        EXPECT_EQ(out[i], 1000 + i);
    }
    EXPECT_EQ(q.enqueue_burst(std::span(in).subspan(cap, 20)), 10U);
    std::vector<std::uint64_t> rest(200);
    const std::size_t n = q.dequeue_burst(rest);
    ASSERT_EQ(n, cap);
    for (std::size_t i = 0; i < n; ++i) {
        EXPECT_EQ(rest[i], 1010 + i) << i;
    }
    EXPECT_EQ(q.dequeue_burst(rest), 0U) << "empty";
}

TYPED_TEST(BurstQueue, ProducerAndConsumerThreadsMoveEveryElementOnceInOrder) {
    auto& q = *this->q_;
    constexpr std::uint64_t total = 300000;
    std::thread producer([&] {
        std::uint64_t next = 0;
        std::vector<std::uint64_t> burst(17);
        while (next < total) {
            const std::size_t n = std::min<std::uint64_t>(burst.size(), total - next);
            for (std::size_t i = 0; i < n; ++i) {
                burst[i] = next + i;
            }
            next += q.enqueue_burst(std::span(burst).first(n));
        }
    });
    std::uint64_t expect = 0;
    std::vector<std::uint64_t> out(23);
    while (expect < total) {
        const std::size_t n = q.dequeue_burst(out);
        for (std::size_t i = 0; i < n; ++i) {
            ASSERT_EQ(out[i], expect++);
        }
    }
    producer.join();
}

TEST(SpscRing, RegionsWrapAndCommitPartially) {
    sr::spsc_ring<std::uint32_t> q(8);
    auto r = q.reserve(6);
    ASSERT_EQ(r.size(), 6U);
    for (std::uint32_t i = 0; i < 6; ++i) {
        r[i] = i;
    }
    q.commit(6);
    std::uint32_t out[5];
    ASSERT_EQ(q.dequeue_burst(out), 5U);
    r = q.reserve(7); // 7 free: 2 at the end, 5 wrapped to the front
    ASSERT_EQ(r.size(), 7U);
    EXPECT_EQ(r.first.size(), 2U);
    EXPECT_EQ(r.second.size(), 5U);
    for (std::uint32_t i = 0; i < 7; ++i) {
        r[i] = 100 + i;
    }
    q.commit(3); // publish only 3
    auto p = q.peek(10);
    ASSERT_EQ(p.size(), 4U);
    EXPECT_EQ(p[0], 5U);
    EXPECT_EQ(p[1], 100U);
    EXPECT_EQ(p[3], 102U);
    q.release(2);
    EXPECT_EQ(q.peek(10).size(), 2U);
}

TEST(SpscRing, BulkIsAllOrNothing) {
    sr::spsc_ring<std::uint32_t> q(4);
    const std::uint32_t five[5] = {1, 2, 3, 4, 5};
    EXPECT_FALSE(q.enqueue_bulk(five));
    EXPECT_TRUE(q.enqueue_bulk(std::span(five).first(3)));
    std::uint32_t out[4];
    EXPECT_FALSE(q.dequeue_bulk(out));
    EXPECT_TRUE(q.dequeue_bulk(std::span(out).first(3)));
    EXPECT_EQ(out[2], 3U);
}

TEST(SpscRing, WrapsAroundTheIndexSpace) {
    sr::spsc_ring<std::uint64_t> q(32, 0xfffffff0U);
    std::uint64_t next = 0, expect = 0;
    std::vector<std::uint64_t> in(13), out(7);
    while (expect < 100000) {
        for (std::size_t i = 0; i < in.size(); ++i) {
            in[i] = next + i;
        }
        next += q.enqueue_burst(in);
        const std::size_t got = q.dequeue_burst(out);
        for (std::size_t i = 0; i < got; ++i) {
            ASSERT_EQ(out[i], expect++);
        }
    }
}

TEST(SpscRing, HandlesOverSharedMemoryAndBadHeaders) {
    alignas(128) static std::byte mem[sr::spsc_bytes<std::uint32_t>(16)];
    sr::spsc_initialise<std::uint32_t>(mem, 16);
    sr::spsc_producer<std::uint32_t> p(mem);
    sr::spsc_consumer<std::uint32_t> c(mem);
    ASSERT_TRUE(p.try_push(7));
    std::uint32_t v = 0;
    ASSERT_TRUE(c.try_pop(v));
    EXPECT_EQ(v, 7U);
    // A capacity in the header that does not fit the area is refused.
    auto* h = reinterpret_cast<sr::spsc_shared*>(mem);
    h->capacity = 1024;
    EXPECT_THROW(sr::spsc_consumer<std::uint32_t>{mem}, std::invalid_argument);
    h->capacity = 12;
    EXPECT_THROW(sr::spsc_producer<std::uint32_t>{mem}, std::invalid_argument);
    EXPECT_THROW(sr::spsc_ring<int>(12), std::invalid_argument);
}
