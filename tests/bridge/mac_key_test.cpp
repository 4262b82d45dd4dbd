// mac_key: packing round trips, the two-load header reader, address classes, and the seeded
// key hashes (pure functions of key and seed, spread over buckets).
#include <array>
#include <cstdint>
#include <unordered_set>

#include <gtest/gtest.h>

#include <splitnet/bridge/key_hash.hpp>
#include <splitnet/bridge/mac_key.hpp>

namespace br = splitnet::bridge;
namespace sp = splitnet::packet;

TEST(MacKey, PacksMacAndVlanAndRoundTrips) {
    const sp::mac_address m{{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}};
    const auto k = br::mac_key::make(m, 100);
    EXPECT_TRUE(k.valid());
    EXPECT_EQ(k.vid(), 100);
    EXPECT_EQ(k.mac(), m);
    EXPECT_EQ(k.mac48(), 0x554433221102ULL); // byte i at bits 8i
    EXPECT_NE(k, br::mac_key::make(m, 101));
    EXPECT_EQ(br::mac_key::make(m, 0x1064).vid(), 0x064); // only 12 bits of VLAN
    EXPECT_FALSE(br::mac_key{}.valid());
}

TEST(MacKey, LoadsBothMacsFromTheHeader) {
    const std::array<std::uint8_t, 14> h{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0a,
                                         0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x08, 0x00};
    std::uint64_t dst = 0;
    std::uint64_t src = 0;
    br::load_macs(h.data(), dst, src);
    EXPECT_EQ(br::mac_key::from_mac48(dst, 0).mac(), (sp::mac_address{{1, 2, 3, 4, 5, 6}}));
    EXPECT_EQ(br::mac_key::from_mac48(src, 0).mac(),
              (sp::mac_address{{0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f}}));
    EXPECT_EQ(br::load_key(h.data() + 6, 7), br::mac_key::from_mac48(src, 7));
}

TEST(MacKey, AddressClasses) {
    const auto m48 = [](sp::mac_address m) {
        return br::mac_key::make(m).mac48();
    };
    EXPECT_TRUE(br::mac48::is_multicast(m48({{0x01, 0x00, 0x5e, 0, 0, 1}})));
    EXPECT_FALSE(br::mac48::is_multicast(m48({{0x02, 0, 0, 0, 0, 1}})));
    EXPECT_EQ(m48({{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}), br::mac48::broadcast);
    for (std::uint8_t last = 0; last < 16; ++last) {
        EXPECT_TRUE(br::mac48::is_link_local(m48({{0x01, 0x80, 0xc2, 0, 0, last}})));
    }
    EXPECT_FALSE(br::mac48::is_link_local(m48({{0x01, 0x80, 0xc2, 0, 0, 0x10}})));
    EXPECT_FALSE(br::mac48::is_link_local(m48({{0x01, 0x80, 0xc2, 0, 1, 0}})));
}

template <class H>
void check_hash() {
    const H a(7);
    const H b(8);
    const std::uint64_t k = br::mac_key::from_mac48(0x020000000001ULL, 1).value;
    EXPECT_EQ(a(k), H(7)(k));
    EXPECT_NE(a(k), b(k));
    // 4096 sequential MACs into 65536 buckets: a uniform hash collides about 125 times.
    std::unordered_set<std::uint64_t> low;
    for (std::uint64_t i = 0; i < 4096; ++i) {
        low.insert(a(br::mac_key::from_mac48(0x020000000000ULL + i, 0).value) & 0xffff);
    }
    EXPECT_GT(low.size(), 3900U);
}

TEST(KeyHash, Xxh3IsSeededAndSpreads) {
    check_hash<br::xxh3_key_hash>();
}
#if defined(__SSE4_2__)
TEST(KeyHash, Crc32cIsSeededAndSpreads) {
    check_hash<br::crc32c_key_hash>();
}
#endif
