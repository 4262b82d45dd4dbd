// The granter's side: handing out and ending grants, what ends at once, what waits for copies in
// flight, what is refused while mapped.
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
