// flow_key: the hash is a pure function of the key bytes and the seed, and differs across
// seeds; equality is bytewise.
#include <unordered_set>

#include <gtest/gtest.h>

#include <splitnet/packet/flow_key.hpp>

namespace sp = splitnet::packet;

TEST(FlowKey, HashDependsOnKeyAndSeed) {
    sp::flow_key a;
    a.ip_version = 4;
    a.protocol = 6;
    a.src_addr[0] = 10;
    a.src_port = 1;
    sp::flow_key b = a;
    EXPECT_EQ(a, b);
    EXPECT_EQ(sp::hash(a, 7), sp::hash(b, 7));
    EXPECT_NE(sp::hash(a, 7), sp::hash(a, 8));
    b.src_port = 2;
    EXPECT_FALSE(a == b);
    EXPECT_NE(sp::hash(a, 7), sp::hash(b, 7));
}

TEST(FlowKey, FewCollisionsOverManyFlows) {
    std::unordered_set<std::uint64_t> low_bits;
    sp::flow_key k;
    k.ip_version = 4;
    k.protocol = 6;
    for (std::uint32_t i = 0; i < 4096; ++i) {
        k.src_addr[2] = static_cast<std::uint8_t>(i >> 8);
        k.src_addr[3] = static_cast<std::uint8_t>(i);
        low_bits.insert(sp::hash(k, 42) & 0xffff);
    }
    // 4096 keys into 65536 buckets: about 125 expected collisions for a uniform hash.
    EXPECT_GT(low_bits.size(), 3900U);
}
