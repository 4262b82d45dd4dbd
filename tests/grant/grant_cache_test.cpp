// Mapping and the persistent-mapping cache: in-use flags while mapped, what cannot be mapped,
// LRU eviction, idle expiry, revocation on a hit and by sweep, invalidation, and mmap mappings
// of a shared memfd region.
#include <cstring>

#include <gtest/gtest.h>

#include <splitnet/grant/grant_cache.hpp>
#include <splitnet/ring/shared_region.hpp>

#include "grant/grant_fixture.hpp"

namespace sg = splitnet::grant;
using splitnet::test::test_domain;

namespace {
struct world {
    test_domain a{1, 16};
    sg::domain_registry reg;
    sg::grant_mapper<> mapper{reg, 2};
    world() { reg.add(a.dom); }
};
} // namespace

TEST(GrantMap, MappedGrantsCarryInUseFlagsUntilUnmapped) {
    world w;
    const auto r = w.a.table.grant_access(2, 5, true);
    sg::grant_mapping m;
    EXPECT_EQ(w.mapper.map(1, r, true, m), sg::grant_status::permission_denied) << "read-only";
    ASSERT_EQ(w.mapper.map(1, r, false, m), sg::grant_status::okay);
    EXPECT_EQ(m.page, w.a.frame(5));
    EXPECT_EQ(w.a.table.entry(r).flags & (sg::gtf::reading | sg::gtf::writing), sg::gtf::reading);
    EXPECT_EQ(w.mapper.unmap(m), sg::grant_status::okay);
    EXPECT_EQ(w.a.table.entry(r).flags & sg::gtf::reading, 0);
    EXPECT_EQ(w.mapper.unmap(m), sg::grant_status::bad_handle);
    const auto sub = w.a.table.grant_subpage(2, 5, 0, 100, true);
    EXPECT_EQ(w.mapper.map(1, sub, false, m), sg::grant_status::bad_gntref)
        << "sub-page: copy only";
    const auto tr = w.a.table.grant_transitive(2, 3, 9);
    EXPECT_EQ(w.mapper.map(1, tr, false, m), sg::grant_status::bad_gntref)
        << "transitive: copy only";
}

TEST(GrantCache, HitsMissesAndLruEviction) {
    world w;
    sg::grant_cache<> cache(w.mapper, 4, 0);
    sg::grant_ref refs[6];
    for (int i = 0; i < 6; ++i) {
        refs[i] = w.a.table.grant_access(2, static_cast<std::uint64_t>(2 + i), false);
    }
    std::uint8_t* page = nullptr;
    for (int i = 0; i < 4; ++i) {
        ASSERT_EQ(cache.acquire(1, refs[i], false, 0, page), sg::grant_status::okay);
    }
    EXPECT_EQ(cache.stats().misses, 4U);
    ASSERT_EQ(cache.acquire(1, refs[0], false, 1, page), sg::grant_status::okay); // refs[0] now MRU
    EXPECT_EQ(page, w.a.frame(2));
    EXPECT_EQ(cache.stats().hits, 1U);
    ASSERT_EQ(cache.acquire(1, refs[4], false, 2, page), sg::grant_status::okay); // evicts refs[1]
    EXPECT_EQ(cache.stats().evictions, 1U);
    EXPECT_EQ(w.a.table.entry(refs[1]).flags & sg::gtf::reading, 0) << "evicted: unmapped";
    EXPECT_TRUE(w.a.table.entry(refs[0]).flags & sg::gtf::reading);
    ASSERT_EQ(cache.acquire(1, refs[1], false, 3, page), sg::grant_status::okay);
    EXPECT_EQ(cache.stats().misses, 6U);
    EXPECT_EQ(cache.size(), 4U);
}

TEST(GrantCache, IdleMappingsExpire) {
    world w;
    sg::grant_cache<> cache(w.mapper, 8, 1000);
    const auto r1 = w.a.table.grant_access(2, 2, false);
    const auto r2 = w.a.table.grant_access(2, 3, false);
    std::uint8_t* page;
    ASSERT_EQ(cache.acquire(1, r1, false, 0, page), sg::grant_status::okay);
    ASSERT_EQ(cache.acquire(1, r2, false, 800, page), sg::grant_status::okay);
    EXPECT_EQ(cache.expire(1500), 1U) << "r1 idle for 1500 > 1000";
    EXPECT_EQ(cache.size(), 1U);
    EXPECT_EQ(cache.expire(1700), 0U);
    EXPECT_EQ(cache.expire(1801), 1U);
    EXPECT_EQ(cache.stats().expirations, 2U);
}

TEST(GrantCache, RevocationDropsTheMappingSoTheGranterCanEnd) {
    world w;
    sg::grant_cache<> cache(w.mapper, 8, 0);
    const auto r = w.a.table.grant_access(2, 2, false);
    std::uint8_t* page;
    ASSERT_EQ(cache.acquire(1, r, true, 0, page), sg::grant_status::okay);
    EXPECT_EQ(w.a.table.end_access(r), sg::end_result::busy);
    EXPECT_EQ(cache.acquire(1, r, true, 1, page), sg::grant_status::eagain) << "hit sees revoke";
    EXPECT_EQ(cache.stats().revocations, 1U);
    EXPECT_EQ(w.a.table.end_access(r), sg::end_result::done);

    const auto r2 = w.a.table.grant_access(2, 3, false);
    ASSERT_EQ(cache.acquire(1, r2, false, 2, page), sg::grant_status::okay);
    EXPECT_EQ(w.a.table.end_access(r2), sg::end_result::busy);
    EXPECT_EQ(cache.sweep_revoked(), 1U) << "swept without waiting for a lookup";
    EXPECT_EQ(w.a.table.end_access(r2), sg::end_result::done);
}

TEST(GrantCache, WriteRequestRemapsAReadOnlyMappingAndInvalidateDropsADomain) {
    world w;
    sg::grant_cache<> cache(w.mapper, 8, 0);
    const auto r = w.a.table.grant_access(2, 2, false);
    std::uint8_t* page;
    ASSERT_EQ(cache.acquire(1, r, false, 0, page), sg::grant_status::okay);
    EXPECT_EQ(w.a.table.entry(r).flags & sg::gtf::writing, 0);
    ASSERT_EQ(cache.acquire(1, r, true, 1, page), sg::grant_status::okay);
    EXPECT_TRUE(w.a.table.entry(r).flags & sg::gtf::writing);
    EXPECT_EQ(cache.size(), 1U);
    cache.invalidate(1);
    EXPECT_EQ(cache.size(), 0U);
    EXPECT_EQ(w.a.table.entry(r).flags & (sg::gtf::reading | sg::gtf::writing), 0);
}

TEST(GrantCache, MmapMappingsOfASharedRegion) {
    auto region = splitnet::ring::shared_region::create("grant-mmap", 6);
    sg::memory_domain dom{1, region.bytes(), 1, 4, region.fd()};
    sg::grant_table table(dom);
    sg::domain_registry reg;
    reg.add(dom);
    sg::grant_mapper<sg::mmap_map> mapper(reg, 2);
    sg::grant_cache<sg::mmap_map> cache(mapper, 4, 0);
    std::memcpy(dom.page(3) + 10, "shared", 6);
    const auto r = table.grant_access(2, 3, false);
    std::uint8_t* page;
    ASSERT_EQ(cache.acquire(1, r, true, 0, page), sg::grant_status::okay);
    EXPECT_NE(page, reinterpret_cast<std::uint8_t*>(dom.page(3))) << "a mapping of its own";
    EXPECT_EQ(std::memcmp(page + 10, "shared", 6), 0);
    page[20] = 'X';
    EXPECT_EQ(static_cast<char>(dom.page(3)[20]), 'X') << "same page underneath";
    cache.clear();
    EXPECT_EQ(mapper.stats().unmaps, 1U);
}
