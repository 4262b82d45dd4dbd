// The AF_XDP port's buffer ledger (nic/detail/afxdp_ledger.hpp): only the transitions AF_XDP
// allows (user -> fill -> user, user -> tx -> user) succeed, a buffer is never in two rings,
// and teardown finds exactly the buffers still held. Pure user space: no root needed.
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/nic/detail/afxdp_ledger.hpp>

namespace {

using splitnet::nic::detail::buffer_ledger;
using splitnet::nic::detail::buffer_owner;

TEST(BufferLedger, StartsWithEverythingAtTheUser) {
    buffer_ledger l(128);
    EXPECT_EQ(l.size(), 128U);
    EXPECT_EQ(l.count(buffer_owner::user), 128U);
    EXPECT_EQ(l.count(buffer_owner::fill), 0U);
    EXPECT_EQ(l.count(buffer_owner::tx), 0U);
}

TEST(BufferLedger, AllowsOnlyTheAfxdpEdges) {
    buffer_ledger l(8);
    EXPECT_TRUE(l.move(3, buffer_owner::user, buffer_owner::fill));
    // Already on the fill ring: it cannot also go to TX, nor be posted twice.
    EXPECT_FALSE(l.move(3, buffer_owner::user, buffer_owner::tx));
    EXPECT_FALSE(l.move(3, buffer_owner::user, buffer_owner::fill));
    // An RX descriptor for a buffer on the TX side is not ours to take.
    EXPECT_TRUE(l.move(4, buffer_owner::user, buffer_owner::tx));
    EXPECT_FALSE(l.move(4, buffer_owner::fill, buffer_owner::user));
    EXPECT_TRUE(l.is(4, buffer_owner::tx));
    EXPECT_TRUE(l.move(4, buffer_owner::tx, buffer_owner::user));
    EXPECT_TRUE(l.move(3, buffer_owner::fill, buffer_owner::user));
    EXPECT_EQ(l.count(buffer_owner::user), 8U);
}

TEST(BufferLedger, RefusesIndicesOutsideThePool) {
    buffer_ledger l(8);
    EXPECT_FALSE(l.move(8, buffer_owner::user, buffer_owner::fill));
    EXPECT_FALSE(l.move(~std::uint64_t{0}, buffer_owner::user, buffer_owner::fill));
    EXPECT_FALSE(l.is(8, buffer_owner::user));
}

TEST(BufferLedger, ReleaseAllNamesExactlyTheHeldBuffersOnce) {
    buffer_ledger l(64);
    for (std::uint32_t i = 0; i < 64; i += 3) {
        ASSERT_TRUE(
            l.move(i, buffer_owner::user, i % 2 == 0 ? buffer_owner::fill : buffer_owner::tx));
    }
    std::vector<std::uint32_t> seen;
    l.release_all([&](std::uint32_t i) noexcept { seen.push_back(i); });
    std::vector<std::uint32_t> want;
    for (std::uint32_t i = 0; i < 64; i += 3) {
        want.push_back(i);
    }
    EXPECT_EQ(seen, want);
    EXPECT_EQ(l.count(buffer_owner::user), 64U);
    seen.clear();
    l.release_all([&](std::uint32_t i) noexcept { seen.push_back(i); });
    EXPECT_TRUE(seen.empty()) << "a second release finds nothing";
}

} // namespace
