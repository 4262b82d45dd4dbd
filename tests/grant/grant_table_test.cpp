// The granter's side: handing out and ending grants, what ends at once, what waits for copies in
// flight, what is refused while mapped.
#include <array>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/grant/grant_copy.hpp>
#include <splitnet/grant/grant_map.hpp>

#include "grant/grant_fixture.hpp"

namespace sg = splitnet::grant;
using splitnet::test::test_domain;

TEST(GrantTable, GrantsUseFreeNonReservedReferences) {
    test_domain a(1, 4);
    EXPECT_EQ(a.table.available(), 256U - sg::reserved_entries);
    const auto r = a.table.grant_access(2, a.dom.first_data_frame(), false);
    ASSERT_NE(r, sg::invalid_ref);
    EXPECT_GE(r, sg::reserved_entries);
    const auto e = a.table.entry(r);
    EXPECT_EQ(e.type(), sg::gtf::permit_access);
    EXPECT_EQ(e.domid, 2);
    EXPECT_EQ(e.frame(), a.dom.first_data_frame());
    EXPECT_EQ(a.table.end_access(r), sg::end_result::done);
    EXPECT_EQ(a.table.entry(r).flags, 0);
    EXPECT_EQ(a.table.end_access(r), sg::end_result::not_granted);
    EXPECT_EQ(a.table.end_access(3), sg::end_result::not_granted) << "reserved";
}

TEST(GrantTable, RefusesFramesOutsideItsDataAndRunsOutCleanly) {
    test_domain a(1, 2);
    EXPECT_EQ(a.table.grant_access(2, 0, false), sg::invalid_ref) << "the table's own page";
    EXPECT_EQ(a.table.grant_access(2, 1, false), sg::invalid_ref) << "the activity page";
    EXPECT_EQ(a.table.grant_access(2, 4, false), sg::invalid_ref) << "past the region";
    EXPECT_EQ(a.table.grant_subpage(2, 2, 4000, 200, true), sg::invalid_ref) << "crosses the page";
    for (std::uint32_t i = 0; i < 256 - sg::reserved_entries; ++i) {
        ASSERT_NE(a.table.grant_access(2, 2, true), sg::invalid_ref);
    }
    EXPECT_EQ(a.table.grant_access(2, 2, true), sg::invalid_ref);
    EXPECT_EQ(a.table.stats().grant_failed, 5U);
}

TEST(GrantTable, EndWhileMappedIsRefusedAndRequestsRevocation) {
    test_domain a(1, 2), b(2, 1);
    sg::domain_registry reg;
    reg.add(a.dom);
    sg::grant_mapper<> mapper(reg, 2);
    const auto r = a.table.grant_access(2, 2, false);
    sg::grant_mapping m;
    ASSERT_EQ(mapper.map(1, r, true, m), sg::grant_status::okay);
    EXPECT_TRUE(a.table.entry(r).flags & sg::gtf::writing);
    EXPECT_EQ(a.table.end_access(r), sg::end_result::busy);
    EXPECT_TRUE(a.table.entry(r).flags & sg::gtf::revoke_request);
    sg::grant_mapping again;
    EXPECT_EQ(mapper.map(1, r, false, again), sg::grant_status::eagain) << "no new mappings";
    mapper.unmap(m);
    EXPECT_EQ(a.table.end_access(r), sg::end_result::done);
}

TEST(GrantTable, EndDuringACopyBatchIsDeferredUntilTheBatchEnds) {
    test_domain a(1, 2);
    // A grantee worker in the middle of a batch: odd activity count in slot 1.
    splitnet::detail::store_release(a.dom.activity(1), 41);
    const auto r = a.table.grant_access(2, 2, true);
    EXPECT_EQ(a.table.end_access(r), sg::end_result::deferred);
    EXPECT_EQ(a.table.entry(r).flags, 0) << "new copies already fail";
    EXPECT_EQ(a.table.pending(), 1U);
    const auto before = a.table.available();
    EXPECT_EQ(a.table.reclaim(), 0U) << "the batch is still running";
    splitnet::detail::store_release(a.dom.activity(1), 42);
    EXPECT_EQ(a.table.reclaim(), 1U);
    EXPECT_EQ(a.table.available(), before + 1);
    EXPECT_EQ(a.table.stats().end_deferred, 1U);
}

// Where the granter knows which grantee copies under each activity slot, one grantee stuck
// inside a copy batch holds back only its own references; a slot of unknown owner still counts
// for every grantee.
TEST(GrantTable, KnownSlotOwnersDeferOnlyTheGranteesOwnEnds) {
    test_domain a(1, 2);
    std::array<sg::domain_id, sg::max_activity_slots> owners;
    owners.fill(sg::invalid_domain);
    owners[0] = 2;
    owners[1] = 3;
    a.dom.activity_owners = owners.data();
    sg::grant_table t(a.dom, 16, 200); // a table made after the owners were named
    splitnet::detail::store_release(a.dom.activity(1), 5); // grantee 3 inside a batch
    const auto to2 = t.grant_access(2, 2, true);
    const auto to3 = t.grant_access(3, 2, true);
    EXPECT_EQ(t.end_access(to2), sg::end_result::done) << "grantee 3's slot is not 2's";
    EXPECT_EQ(t.end_access(to3), sg::end_result::deferred);

    // A burst mixing the two grantees: each outcome in its place.
    std::vector<sg::grant_ref> refs;
    for (int i = 0; i < 150; ++i) { // more than one internal chunk
        refs.push_back(t.grant_access(i % 3 == 0 ? 3 : 2, 2, true));
    }
    std::vector<sg::end_result> out(refs.size());
    const auto c = t.end_access_burst(refs, out);
    EXPECT_EQ(c.deferred, 50U);
    EXPECT_EQ(c.done, 100U);
    for (std::size_t i = 0; i < refs.size(); ++i) {
        EXPECT_EQ(out[i], i % 3 == 0 ? sg::end_result::deferred : sg::end_result::done) << i;
    }
    EXPECT_EQ(t.pending(), 51U);
    EXPECT_EQ(t.reclaim(), 0U);

    // A slot nobody is known to hold counts for everyone.
    splitnet::detail::store_release(a.dom.activity(2), 9);
    EXPECT_EQ(t.end_access(t.grant_access(2, 2, true)), sg::end_result::deferred);
    splitnet::detail::store_release(a.dom.activity(1), 6);
    EXPECT_EQ(t.reclaim(), 51U) << "grantee 3's batch ended";
    splitnet::detail::store_release(a.dom.activity(2), 10);
    EXPECT_EQ(t.reclaim(), 1U);
    EXPECT_EQ(t.available(), 200U);
}

TEST(GrantTable, ShardsOwnDisjointReferenceRanges) {
    test_domain a(1, 2); // the whole-table owner cleared the activity page
    sg::grant_table s1(a.dom, 16, 8), s2(a.dom, 24, 8);
    EXPECT_EQ(s1.available(), 8U);
    const auto r1 = s1.grant_access(2, 2, true);
    const auto r2 = s2.grant_access(2, 2, true);
    EXPECT_GE(r1, 16U);
    EXPECT_LT(r1, 24U);
    EXPECT_GE(r2, 24U);
    EXPECT_LT(r2, 32U);
    EXPECT_EQ(s1.end_access(r2), sg::end_result::not_granted) << "another shard's reference";
    EXPECT_EQ(s2.entry(r2).domid, 2) << "and it is left alone";
    EXPECT_EQ(s2.end_access(r2), sg::end_result::done);
    for (int i = 0; i < 7; ++i) {
        ASSERT_NE(s1.grant_access(2, 2, true), sg::invalid_ref);
    }
    EXPECT_EQ(s1.grant_access(2, 2, true), sg::invalid_ref) << "a shard runs out alone";
    EXPECT_THROW(sg::grant_table(a.dom, 2, 8), std::invalid_argument) << "reserved references";
    EXPECT_THROW(sg::grant_table(a.dom, 250, 8), std::invalid_argument) << "past the table";
}

TEST(GrantTable, BurstEndSharesOneFenceAndReportsEachOutcome) {
    test_domain a(1, 2), b(2, 1);
    sg::domain_registry reg;
    reg.add(a.dom);
    sg::grant_mapper<> mapper(reg, 2);
    std::vector<sg::grant_ref> refs;
    for (int i = 0; i < 100; ++i) { // more than one internal chunk
        refs.push_back(a.table.grant_subpage(2, 2, static_cast<std::uint16_t>(i * 8), 8, true));
    }
    const auto mapped = a.table.grant_access(2, 3, false);
    sg::grant_mapping m;
    ASSERT_EQ(mapper.map(1, mapped, false, m), sg::grant_status::okay);
    refs.push_back(mapped);
    refs.push_back(5); // reserved: never granted
    std::vector<sg::end_result> out(refs.size());
    const auto before = a.table.available();
    auto c = a.table.end_access_burst(refs, out);
    EXPECT_EQ(c.done, 100U);
    EXPECT_EQ(c.busy, 1U);
    EXPECT_EQ(c.not_granted, 1U);
    EXPECT_EQ(out[0], sg::end_result::done);
    EXPECT_EQ(out[100], sg::end_result::busy);
    EXPECT_EQ(out[101], sg::end_result::not_granted);
    EXPECT_EQ(a.table.available(), before + 100);

    // With a copy batch in flight every cleared reference waits for it.
    std::vector<sg::grant_ref> more;
    for (int i = 0; i < 70; ++i) {
        more.push_back(a.table.grant_access(2, 2, true));
    }
    splitnet::detail::store_release(a.dom.activity(0), 7);
    c = a.table.end_access_burst(more);
    EXPECT_EQ(c.deferred, 70U);
    EXPECT_EQ(a.table.pending(), 70U);
    splitnet::detail::store_release(a.dom.activity(0), 8);
    EXPECT_EQ(a.table.reclaim(), 70U);
    mapper.unmap(m);
}
