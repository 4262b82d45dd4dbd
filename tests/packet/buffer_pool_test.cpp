// buffer_pool and pool_cache: layout (UMEM-compatible addresses), burst allocation and free,
// chains, the accounting that proves nothing leaks, double and foreign frees, set-up errors,
// and concurrent allocation and free from several threads (run under TSan in CI).
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/packet/buffer_pool.hpp>

namespace sp = splitnet::packet;

TEST(BufferPool, LayoutIsUmemCompatible) {
    sp::buffer_pool pool({.frame_count = 64, .frame_size = 2048, .headroom = 256});
    EXPECT_EQ(pool.capacity(), 64U);
    EXPECT_EQ(pool.available(), 64U);
    EXPECT_EQ(pool.arena().size(), 64U * 2048U);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(pool.base()) % 4096, 0U) << "page aligned";
    std::vector<sp::frame> f(64);
    ASSERT_EQ(pool.alloc_burst(f), 64U);
    std::set<std::uint64_t> addrs;
    for (const auto& x : f) {
        EXPECT_EQ(x.buffer % 2048, 0U);
        EXPECT_EQ(x.data, pool.base() + x.buffer + 256);
        EXPECT_EQ(x.headroom, 256);
        EXPECT_EQ(x.data_len, 0U);
        EXPECT_EQ(x.next, nullptr);
        addrs.insert(x.buffer);
    }
    EXPECT_EQ(addrs.size(), 64U) << "every buffer handed out once";
    EXPECT_EQ(pool.available(), 0U);
    pool.free_burst(f);
    EXPECT_EQ(pool.available(), 64U);
}

TEST(BufferPool, ExhaustionIsPartialAndCounted) {
    sp::buffer_pool pool({.frame_count = 100});
    std::vector<sp::frame> f(150);
    EXPECT_EQ(pool.alloc_burst(f), 100U);
    EXPECT_EQ(pool.stats().alloc_failed, 1U);
    std::vector<sp::frame> more(1);
    EXPECT_EQ(pool.alloc_burst(more), 0U);
    pool.free_burst(std::span(f).first(100));
    EXPECT_EQ(pool.available(), 100U);
}

TEST(BufferPool, FreeingAChainReturnsEverySegment) {
    sp::buffer_pool pool({.frame_count = 8});
    std::vector<sp::frame> f(4);
    ASSERT_EQ(pool.alloc_burst(f), 4U);
    // Chain f[1..3] behind f[0], descriptors in the pool's chain slots as GRO does.
    sp::frame* tail = &f[0];
    for (int i = 1; i < 4; ++i) {
        sp::frame& slot = pool.chain_slot(f[static_cast<std::size_t>(i)].buffer);
        slot = f[static_cast<std::size_t>(i)];
        tail->next = &slot;
        tail = &slot;
    }
    f[0].nb_segs = 4;
    EXPECT_EQ(pool.available(), 4U);
    pool.free(f[0]);
    EXPECT_EQ(pool.available(), 8U);
}

TEST(BufferPool, DoubleAndForeignFreesAreRefusedAndCounted) {
    sp::buffer_pool pool({.frame_count = 4});
    std::vector<sp::frame> f(2);
    ASSERT_EQ(pool.alloc_burst(f), 2U);
    pool.free_burst(f);
    pool.free_burst(f); // second time: the free list is already full
    EXPECT_EQ(pool.available(), 4U);
    EXPECT_EQ(pool.stats().double_free, 2U);
    const std::uint64_t outside[] = {pool.arena().size(), pool.arena().size() + 4096};
    pool.free_addresses(outside);
    EXPECT_EQ(pool.stats().foreign_free, 2U);
    sp::frame foreign = sp::make_frame(nullptr, 0); // no_buffer: skipped silently
    pool.free(foreign);
    EXPECT_EQ(pool.available(), 4U);
}

TEST(BufferPool, FrameAtMapsUmemDescriptorAddresses) {
    sp::buffer_pool pool({.frame_count = 4, .frame_size = 4096});
    const auto f = pool.frame_at(2 * 4096 + 256 + 10, 60);
    EXPECT_EQ(f.buffer, 2U * 4096U);
    EXPECT_EQ(f.headroom, 266);
    EXPECT_EQ(f.data, pool.base() + 2 * 4096 + 266);
    EXPECT_EQ(f.pkt_len, 60U);
}

TEST(BufferPool, BadConfigurationsSayWhatIsWrong) {
    auto message = [](sp::buffer_pool_config c) -> std::string {
        try {
            sp::buffer_pool p(c);
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "";
    };
    EXPECT_NE(message({.frame_count = 0}).find("frame_count"), std::string::npos);
    EXPECT_NE(message({.frame_count = 8, .frame_size = 3000}).find("power of two"),
              std::string::npos);
    EXPECT_NE(message({.frame_count = 8, .frame_size = 2048, .headroom = 2048}).find("headroom"),
              std::string::npos);
}

TEST(PoolCache, AllocFreeAndFlushKeepTheAccounting) {
    sp::buffer_pool pool({.frame_count = 1024});
    {
        sp::pool_cache cache(pool, 256);
        std::vector<sp::frame> f(300);
        ASSERT_EQ(cache.alloc_burst(f), 300U);
        EXPECT_EQ(pool.available() + cache.held() + 300, pool.capacity());
        cache.free_burst(f);
        EXPECT_EQ(pool.available() + cache.held(), pool.capacity());
        EXPECT_LE(cache.held(), 256U);
    }
    EXPECT_EQ(pool.available(), pool.capacity()) << "the cache returns what it holds";
}

TEST(PoolCache, DrainsThePoolCompletely) {
    sp::buffer_pool pool({.frame_count = 300});
    sp::pool_cache cache(pool, 128);
    std::vector<sp::frame> f(400);
    EXPECT_EQ(cache.alloc_burst(f), 300U);
    cache.free_burst(std::span(f).first(300));
    cache.flush();
    EXPECT_EQ(pool.available(), 300U);
}

// Several threads allocate bursts, write their buffers, and free them through their own
// caches or the pool directly; no buffer is ever held twice and none is lost.
TEST(BufferPoolConcurrent, ThreadsShareThePoolWithoutLossOrDuplication) {
    constexpr std::uint32_t count = 2048;
    sp::buffer_pool pool({.frame_count = count});
    std::vector<std::atomic<std::uint8_t>> owner(count);
    std::atomic<bool> duplicate{false};
    auto worker = [&](int id, bool use_cache) {
        sp::pool_cache cache(pool, 128);
        std::vector<sp::frame> f(48);
        for (int round = 0; round < 3000; ++round) {
            const std::size_t n = use_cache ? cache.alloc_burst(f) : pool.alloc_burst(f);
            for (std::size_t i = 0; i < n; ++i) {
                const auto idx = pool.index_of(f[i].buffer);
                if (owner[idx].exchange(static_cast<std::uint8_t>(id + 1)) != 0) {
                    duplicate = true;
                }
                f[i].data[0] = static_cast<std::uint8_t>(id); // touch the buffer
            }
            for (std::size_t i = 0; i < n; ++i) {
                owner[pool.index_of(f[i].buffer)].store(0);
            }
            if (use_cache) {
                cache.free_burst(std::span(f).first(n));
            } else {
                pool.free_burst(std::span(f).first(n));
            }
        }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back(worker, i, i % 2 == 0);
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_FALSE(duplicate.load());
    EXPECT_EQ(pool.available(), count);
    EXPECT_EQ(pool.stats().double_free, 0U);
}

TEST(BufferPool, OverCallerMemoryUsesItAndLeavesItMapped) {
    const sp::buffer_pool_config cfg{.frame_count = 8, .frame_size = 4096, .headroom = 128};
    const std::size_t bytes = sp::buffer_pool::arena_bytes_for(cfg);
    EXPECT_EQ(bytes, 8U * 4096U);
    auto* mem = static_cast<std::byte*>(std::aligned_alloc(4096, bytes + 4096));
    {
        sp::buffer_pool pool({mem + 4096, bytes}, cfg);
        EXPECT_EQ(static_cast<void*>(pool.base()), static_cast<void*>(mem + 4096));
        std::vector<sp::frame> f(8);
        ASSERT_EQ(pool.alloc_burst(f), 8U);
        for (const auto& x : f) {
            EXPECT_EQ(x.data, pool.base() + x.buffer + 128);
            x.data[0] = std::uint8_t{0xab};
        }
        pool.free_burst(f);
        EXPECT_THROW(sp::buffer_pool({mem + 4096, bytes - 1}, cfg), std::invalid_argument)
            << "too small";
        EXPECT_THROW(sp::buffer_pool({mem + 8, bytes}, cfg), std::invalid_argument)
            << "not page aligned";
    }
    EXPECT_EQ(mem[4096 + 128], std::byte{0xab}) << "the memory outlives the pool";
    std::free(mem);
}
