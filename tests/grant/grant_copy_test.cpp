// Grant copy: every status code, sub-page limits to the byte, transitive grants and their
// refusal when a link ends, resolve-once for runs, and mixed batches.
#include <array>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/grant/grant_copy.hpp>

#include "grant/grant_fixture.hpp"

namespace sg = splitnet::grant;
using splitnet::test::test_domain;

namespace {

struct world {
    test_domain a{1, 4}; // a guest
    test_domain c{3, 4}; // another guest
    sg::domain_registry reg;
    sg::grant_copier copier{reg, 2, 0}; // the driver domain, id 2, worker slot 0
    world() {
        reg.add(a.dom);
        reg.add(c.dom);
    }
    sg::grant_status copy_one(sg::copy_side src, sg::copy_side dst, std::uint16_t len) {
        sg::grant_copy_op op{src, dst, len, sg::grant_status::general_error};
        copier.copy({&op, 1});
        return op.status;
    }
};

} // namespace

TEST(GrantCopy, CopiesInAndOutThroughFullPageGrants) {
    world w;
    std::memcpy(w.a.frame(2) + 100, "guest data", 10);
    const auto rd = w.a.table.grant_access(2, 2, true);
    const auto wr = w.a.table.grant_access(2, 3, false);
    std::uint8_t buf[16] = {};
    EXPECT_EQ(w.copy_one(sg::copy_side::granted(1, rd, 100), sg::copy_side::buffer(buf), 10),
              sg::grant_status::okay);
    EXPECT_EQ(std::memcmp(buf, "guest data", 10), 0);
    EXPECT_EQ(w.copy_one(sg::copy_side::buffer(buf), sg::copy_side::granted(1, wr, 4000), 10),
              sg::grant_status::okay);
    EXPECT_EQ(std::memcmp(w.a.frame(3) + 4000, "guest data", 10), 0);
    EXPECT_EQ(w.copier.stats().bytes, 20U);
}

TEST(GrantCopy, EveryStatusCodePath) {
    world w;
    std::uint8_t buf[4096];
    const auto ro = w.a.table.grant_access(2, 2, true);
    const auto other = w.a.table.grant_access(9, 2, false);
    using st = sg::grant_status;
    EXPECT_EQ(w.copy_one(sg::copy_side::granted(77, ro), sg::copy_side::buffer(buf), 1),
              st::bad_domain);
    EXPECT_EQ(w.copy_one(sg::copy_side::granted(1, 5000), sg::copy_side::buffer(buf), 1),
              st::bad_gntref);
    EXPECT_EQ(w.copy_one(sg::copy_side::granted(1, 3), sg::copy_side::buffer(buf), 1),
              st::bad_gntref)
        << "reserved entry";
    EXPECT_EQ(w.copy_one(sg::copy_side::granted(1, 100), sg::copy_side::buffer(buf), 1),
              st::bad_gntref)
        << "never granted";
    EXPECT_EQ(w.copy_one(sg::copy_side::granted(1, other), sg::copy_side::buffer(buf), 1),
              st::permission_denied)
        << "granted to domain 9, not us";
    EXPECT_EQ(w.copy_one(sg::copy_side::buffer(buf), sg::copy_side::granted(1, ro), 1),
              st::permission_denied)
        << "write to a read-only grant";
    EXPECT_EQ(w.copy_one(sg::copy_side::granted(1, ro, 4090), sg::copy_side::buffer(buf), 7),
              st::bad_copy_arg)
        << "crosses the page";
    // A granter that writes a frame outside its data pages into an entry by hand.
    auto& e = w.a.dom.entry(200);
    sg::grant_entry forged{sg::gtf::permit_access, 2, 0, 0, 0}; // frame 0: its own grant table
    sg::detail::publish_entry(e, forged);
    EXPECT_EQ(w.copy_one(sg::copy_side::granted(1, 200), sg::copy_side::buffer(buf), 1),
              st::bad_page);
    forged.word8 = 1 << 20;
    sg::detail::publish_entry(e, forged);
    EXPECT_EQ(w.copy_one(sg::copy_side::granted(1, 200), sg::copy_side::buffer(buf), 1),
              st::bad_page);
    forged = {sg::gtf::accept_transfer, 2, 0, 0, 2};
    sg::detail::publish_entry(e, forged);
    EXPECT_EQ(w.copy_one(sg::copy_side::granted(1, 200), sg::copy_side::buffer(buf), 1),
              st::bad_gntref);
    forged = {sg::gtf::permit_access | sg::gtf::revoke_request, 2, 0, 0, 2};
    sg::detail::publish_entry(e, forged);
    EXPECT_EQ(w.copy_one(sg::copy_side::granted(1, 200), sg::copy_side::buffer(buf), 1),
              st::eagain);
    EXPECT_EQ(w.copier.stats().failed, 11U);
}

TEST(GrantCopy, SubPageGrantsAllowTheirRangeToTheByte) {
    world w;
    const auto r = w.a.table.grant_subpage(2, 2, 1000, 500, true);
    std::uint8_t buf[600];
    using st = sg::grant_status;
    EXPECT_EQ(w.copy_one(sg::copy_side::granted(1, r, 1000), sg::copy_side::buffer(buf), 500),
              st::okay);
    EXPECT_EQ(w.copy_one(sg::copy_side::granted(1, r, 1000), sg::copy_side::buffer(buf), 501),
              st::bad_copy_arg)
        << "one byte past the range";
    EXPECT_EQ(w.copy_one(sg::copy_side::granted(1, r, 999), sg::copy_side::buffer(buf), 10),
              st::bad_copy_arg)
        << "one byte before";
    EXPECT_EQ(w.copy_one(sg::copy_side::granted(1, r, 1499), sg::copy_side::buffer(buf), 1),
              st::okay);
}

TEST(GrantCopy, TransitiveGrantCopiesGuestToGuestAndEndsWithItsLinks) {
    // Guest A grants the driver domain (2) a page; the driver domain re-grants it to guest C
    // (3), which copies straight from A's page. Here the driver domain's table is B's.
    test_domain a(1, 4), b(2, 4), c(3, 4);
    sg::domain_registry reg;
    reg.add(a.dom);
    reg.add(b.dom);
    reg.add(c.dom);
    std::memcpy(a.frame(2) + 64, "from A to C", 11);
    const auto ga = a.table.grant_subpage(2, 2, 64, 11, true); // A -> B
    const auto gb = b.table.grant_transitive(3, 1, ga);        // B -> C, via A's grant
    sg::grant_copier c_copier(reg, 3, 0);
    std::uint8_t buf[16] = {};
    sg::grant_copy_op op{sg::copy_side::granted(2, gb, 64), sg::copy_side::buffer(buf), 11, {}};
    c_copier.copy({&op, 1});
    ASSERT_EQ(op.status, sg::grant_status::okay);
    EXPECT_EQ(std::memcmp(buf, "from A to C", 11), 0);
    // A's sub-page range still applies through the transitive grant.
    op.len = 12;
    c_copier.copy({&op, 1});
    EXPECT_EQ(op.status, sg::grant_status::bad_copy_arg);
    // Writing through it: read-only.
    op = {sg::copy_side::buffer(buf), sg::copy_side::granted(2, gb, 64), 1, {}};
    c_copier.copy({&op, 1});
    EXPECT_EQ(op.status, sg::grant_status::permission_denied);
    // A domain other than C cannot use B's transitive grant.
    sg::grant_copier other(reg, 1, 0);
    op = {sg::copy_side::granted(2, gb, 64), sg::copy_side::buffer(buf), 1, {}};
    other.copy({&op, 1});
    EXPECT_EQ(op.status, sg::grant_status::permission_denied);
    // The middle link ends: refused.
    ASSERT_EQ(b.table.end_access(gb), sg::end_result::done);
    c_copier.copy({&op, 1});
    EXPECT_EQ(op.status, sg::grant_status::bad_gntref);
    // Re-granted, but A ends its grant: refused too.
    const auto gb2 = b.table.grant_transitive(3, 1, ga);
    ASSERT_EQ(a.table.end_access(ga), sg::end_result::done);
    op = {sg::copy_side::granted(2, gb2, 64), sg::copy_side::buffer(buf), 1, {}};
    c_copier.copy({&op, 1});
    EXPECT_EQ(op.status, sg::grant_status::bad_gntref);
}

// A granter that ties our activity slot to us waits on it only for what it granted us, so we
// must not copy what it granted someone else, not even through that one's transitive grant.
TEST(GrantCopy, TransitiveGrantsAreRefusedWhereOurSlotIsTiedToUs) {
    test_domain a(1, 4), b(2, 4), c(3, 4);
    std::array<sg::domain_id, sg::max_activity_slots> owners;
    owners.fill(sg::invalid_domain);
    owners[0] = 3; // C's view of A: slot 0 is C's
    a.dom.activity_owners = owners.data();
    sg::domain_registry reg;
    reg.add(a.dom);
    reg.add(b.dom);
    const auto ga = a.table.grant_access(2, 2, true);   // A -> B
    const auto gb = b.table.grant_transitive(3, 1, ga); // B -> C, via A's grant
    const auto gc = a.table.grant_access(3, 2, true);   // A -> C directly
    sg::grant_copier c_copier(reg, 3, 0);
    std::uint8_t buf[4];
    sg::grant_copy_op op{sg::copy_side::granted(2, gb), sg::copy_side::buffer(buf), 1, {}};
    c_copier.copy({&op, 1});
    EXPECT_EQ(op.status, sg::grant_status::permission_denied);
    op = {sg::copy_side::granted(1, gc), sg::copy_side::buffer(buf), 1, {}};
    c_copier.copy({&op, 1});
    EXPECT_EQ(op.status, sg::grant_status::okay) << "A's own grant to C";
    owners[0] = sg::invalid_domain; // owner unknown: the transitive grant works again
    op = {sg::copy_side::granted(2, gb), sg::copy_side::buffer(buf), 1, {}};
    c_copier.copy({&op, 1});
    EXPECT_EQ(op.status, sg::grant_status::okay);
}

TEST(GrantCopy, TransitiveChainsLongerThanOneLevelAreRefused) {
    test_domain a(1, 2), b(2, 2), c(3, 2), d(4, 2);
    sg::domain_registry reg;
    for (auto* x : {&a, &b, &c, &d}) {
        reg.add(x->dom);
    }
    const auto ga = a.table.grant_access(2, 2, true);
    const auto gb = b.table.grant_transitive(3, 1, ga);
    const auto gc = c.table.grant_transitive(4, 2, gb);
    sg::grant_copier d_copier(reg, 4, 0);
    std::uint8_t buf[4];
    sg::grant_copy_op op{sg::copy_side::granted(3, gc), sg::copy_side::buffer(buf), 1, {}};
    d_copier.copy({&op, 1});
    EXPECT_EQ(op.status, sg::grant_status::bad_gntref);
}

TEST(GrantCopy, ConsecutiveOpsOnOneGrantResolveItOnce) {
    world w;
    const auto r = w.a.table.grant_access(2, 2, false);
    std::vector<std::uint8_t> buf(4096, 7);
    std::vector<sg::grant_copy_op> ops;
    for (std::uint16_t i = 0; i < 8; ++i) {
        ops.push_back({sg::copy_side::buffer(buf.data() + i * 100),
                       sg::copy_side::granted(1, r, static_cast<std::uint16_t>(i * 500)),
                       100,
                       {}});
    }
    w.copier.copy(ops);
    for (const auto& op : ops) {
        EXPECT_EQ(op.status, sg::grant_status::okay);
    }
    EXPECT_EQ(w.copier.stats().resolved, 1U);
    EXPECT_EQ(w.copier.stats().resolve_reused, 7U);
    EXPECT_EQ(w.a.frame(2)[3500], 7);
}

TEST(GrantCopy, ABadOpFailsAloneInABatch) {
    world w;
    const auto r = w.a.table.grant_access(2, 2, true);
    std::uint8_t buf[64];
    std::vector<sg::grant_copy_op> ops = {
        {sg::copy_side::granted(1, r), sg::copy_side::buffer(buf), 8, {}},
        {sg::copy_side::granted(1, r, 4093), sg::copy_side::buffer(buf), 8, {}},
        {sg::copy_side::granted(5, r), sg::copy_side::buffer(buf), 8, {}},
        {sg::copy_side::granted(1, r, 8), sg::copy_side::buffer(buf + 8), 8, {}},
    };
    w.copier.copy(ops);
    EXPECT_EQ(ops[0].status, sg::grant_status::okay);
    EXPECT_EQ(ops[1].status, sg::grant_status::bad_copy_arg);
    EXPECT_EQ(ops[2].status, sg::grant_status::bad_domain);
    EXPECT_EQ(ops[3].status, sg::grant_status::okay);
}

TEST(GrantCopy, ActivityIsOddOnlyInsideABatch) {
    world w;
    const auto r = w.a.table.grant_access(2, 2, true);
    std::uint8_t buf[8];
    const auto before = splitnet::detail::load_acquire(w.a.dom.activity(0));
    EXPECT_EQ(before % 2, 0U);
    EXPECT_EQ(w.copy_one(sg::copy_side::granted(1, r), sg::copy_side::buffer(buf), 8),
              sg::grant_status::okay);
    const auto after = splitnet::detail::load_acquire(w.a.dom.activity(0));
    EXPECT_EQ(after, before + 2);
    EXPECT_EQ(splitnet::detail::load_acquire(w.c.dom.activity(0)), 0U) << "untouched domain";
}

// Both sides in one page (a granter granting a page twice): packet-sized copies take the string
// copy when the ranges are apart and memmove's semantics when they overlap, either direction.
TEST(GrantCopy, BothSidesInOnePageApartOrOverlapping) {
    for (const std::uint16_t from : {std::uint16_t{0}, std::uint16_t{1000}, std::uint16_t{2000}}) {
        for (const std::uint16_t to :
             {std::uint16_t{0}, std::uint16_t{100}, std::uint16_t{1000}, std::uint16_t{2596}}) {
            world w;
            std::uint8_t* page = w.a.frame(2);
            for (std::size_t i = 0; i < 4096; ++i) {
                page[i] = static_cast<std::uint8_t>(i * 7 + 3);
            }
            std::vector<std::uint8_t> expect(page, page + 4096);
            constexpr std::uint16_t len = 1500;
            std::memmove(expect.data() + to, expect.data() + from, len);
            const auto rd = w.a.table.grant_access(2, 2, true);
            const auto wr = w.a.table.grant_access(2, 2, false);
            ASSERT_EQ(w.copy_one(sg::copy_side::granted(1, rd, from),
                                 sg::copy_side::granted(1, wr, to), len),
                      sg::grant_status::okay);
            EXPECT_EQ(std::vector<std::uint8_t>(page, page + 4096), expect)
                << "from " << from << " to " << to;
        }
    }
}

// Reads in place: the same checks as a copy, a pointer to the granted bytes instead of a copy,
// and the granter's end of access held back until the reader is done.
TEST(GrantRead, ResolvesLikeACopyAndHoldsTheGrantUntilTheReadsEnd) {
    world w;
    std::memcpy(w.a.frame(2) + 1000, "granted bytes", 13);
    const auto sub = w.a.table.grant_subpage(2, 2, 1000, 13, true);
    const auto other = w.a.table.grant_access(9, 3, true);
    using st = sg::grant_status;
    sg::grant_read_op ops[5] = {
        {sg::copy_side::granted(1, sub, 1000), 13},
        {sg::copy_side::granted(1, sub, 1000), 14}, // one byte past the sub-page range
        {sg::copy_side::granted(1, other), 1},      // granted to domain 9
        {sg::copy_side::granted(1, 5000), 1},       // out of the table
        {sg::copy_side::granted(1, sub, 1005), 8},  // inside the range again
    };
    const auto before = splitnet::detail::load_acquire(w.a.dom.activity(0));
    w.copier.begin_reads(ops);
    EXPECT_EQ(ops[0].status, st::okay);
    ASSERT_NE(ops[0].data, nullptr);
    EXPECT_EQ(ops[0].data, w.a.frame(2) + 1000) << "the granter's own bytes, not a copy";
    EXPECT_EQ(std::memcmp(ops[0].data, "granted bytes", 13), 0);
    EXPECT_EQ(ops[1].status, st::bad_copy_arg);
    EXPECT_EQ(ops[1].data, nullptr);
    EXPECT_EQ(ops[2].status, st::permission_denied);
    EXPECT_EQ(ops[3].status, st::bad_gntref);
    EXPECT_EQ(ops[4].status, st::okay);
    EXPECT_EQ(ops[4].data, w.a.frame(2) + 1005);
    EXPECT_EQ(w.copier.stats().failed, 3U);
    EXPECT_EQ(w.copier.stats().bytes, 21U);

    // While the reads last, the granter's end of access is deferred (its page not reused).
    EXPECT_EQ(splitnet::detail::load_acquire(w.a.dom.activity(0)) % 2, 1U);
    EXPECT_EQ(w.a.table.end_access(sub), sg::end_result::deferred);
    EXPECT_EQ(w.a.table.reclaim(), 0U) << "still being read";
    w.copier.end_reads();
    EXPECT_EQ(splitnet::detail::load_acquire(w.a.dom.activity(0)), before + 2);
    EXPECT_EQ(w.a.table.reclaim(), 1U);
    // And a grant that has ended no longer resolves.
    sg::grant_read_op late{sg::copy_side::granted(1, sub, 1000), 13};
    w.copier.begin_reads({&late, 1});
    w.copier.end_reads();
    EXPECT_NE(late.status, st::okay);
}
