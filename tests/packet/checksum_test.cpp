// Checksums against a straightforward RFC 1071 reference, on random data of every length and
// alignment; RFC 1624 incremental updates against recomputation; pseudo-headers by hand.
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/packet/checksum.hpp>

namespace sp = splitnet::packet;

namespace {

// RFC 1071 reference: 16-bit big-endian words, 32-bit accumulator, end-around carry.
std::uint16_t reference_checksum(const std::uint8_t* p, std::size_t n) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i + 1 < n; i += 2) {
        sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
    }
    if (n % 2 != 0) {
        sum += static_cast<std::uint32_t>(p[n - 1] << 8);
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(~sum);
}

// The checksum as it would be stored on the wire, read back in network order.
std::uint16_t wire_value(std::uint16_t stored_native) {
    return sp::detail::to_be(stored_native);
}

std::vector<std::uint8_t> random_bytes(std::mt19937& rng, std::size_t n) {
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) {
        b = static_cast<std::uint8_t>(rng());
    }
    return v;
}

} // namespace

TEST(Checksum, MatchesReferenceForEveryLengthAndAlignment) {
    std::mt19937 rng(1);
    for (std::size_t len = 0; len < 300; ++len) {
        for (std::size_t align = 0; align < 8; ++align) {
            auto buf = random_bytes(rng, len + align);
            const std::uint8_t* p = buf.data() + align;
            EXPECT_EQ(wire_value(sp::csum_fold(sp::csum_partial(p, len))),
                      reference_checksum(p, len))
                << "len " << len << " align " << align;
        }
    }
}

TEST(Checksum, CopyWithSumCopiesExactlyAndSumsAsCsumPartial) {
    std::mt19937 rng(11);
    for (std::size_t len = 0; len < 300; ++len) {
        for (std::size_t align = 0; align < 8; ++align) {
            auto src = random_bytes(rng, len + align);
            std::vector<std::uint8_t> dst(len + 16, 0xa5);
            const auto init = static_cast<std::uint32_t>(rng());
            const std::uint8_t* from = src.data() + align;
            const std::uint32_t got =
                sp::csum_partial_copy(dst.data() + (7 - align), from, len, init);
            // Equal as one's-complement values (folded), whatever the unfolded representation.
            EXPECT_EQ(sp::csum_fold(got), sp::csum_fold(sp::csum_partial(from, len, init)))
                << "len " << len << " align " << align;
            EXPECT_TRUE(std::equal(from, from + len, dst.begin() + static_cast<long>(7 - align)));
            EXPECT_EQ(dst[7 - align + len], 0xa5) << "wrote past the end";
            if (align < 7) {
                EXPECT_EQ(dst[6 - align], 0xa5) << "wrote before the start";
            }
        }
    }
    std::vector<std::uint8_t> ff(65535, 0xff), out(65535);
    EXPECT_EQ(sp::csum_fold(sp::csum_partial_copy(out.data(), ff.data(), ff.size(), 0xffffffffU)),
              sp::csum_fold(sp::csum_partial(ff.data(), ff.size(), 0xffffffffU)));
    EXPECT_EQ(out, ff);
}

TEST(Checksum, AllOnesAndCarryHeavyInput) {
    // 0xff.. bytes maximise carries in every accumulator.
    std::vector<std::uint8_t> ff(65535, 0xff);
    EXPECT_EQ(wire_value(sp::csum_fold(sp::csum_partial(ff.data(), ff.size()))),
              reference_checksum(ff.data(), ff.size()));
    std::vector<std::uint8_t> zero(1500, 0);
    EXPECT_EQ(sp::csum_fold(sp::csum_partial(zero.data(), zero.size())), 0xffff);
}

TEST(Checksum, Rfc1071WorkedExample) {
    // RFC 1071 section 3: the words 0x0001 0xf203 0xf4f5 0xf6f7 sum to 0xddf2.
    const std::uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    EXPECT_EQ(sp::detail::to_be(sp::csum_fold16(sp::csum_partial(data, sizeof data))), 0xddf2);
}

TEST(Checksum, InitialValueChainsBlocks) {
    std::mt19937 rng(2);
    auto buf = random_bytes(rng, 1000);
    for (std::size_t cut = 0; cut <= 1000; cut += 2) {
        const std::uint32_t a = sp::csum_partial(buf.data(), cut);
        const std::uint32_t ab = sp::csum_partial(buf.data() + cut, 1000 - cut, a);
        EXPECT_EQ(sp::csum_fold(ab), sp::csum_fold(sp::csum_partial(buf.data(), 1000)));
    }
}

TEST(Checksum, BlockAddHandlesOddOffsets) {
    std::mt19937 rng(3);
    auto buf = random_bytes(rng, 777);
    const std::uint16_t whole = sp::csum_fold(sp::csum_partial(buf.data(), buf.size()));
    for (std::size_t cut = 0; cut <= buf.size(); ++cut) {
        const std::uint32_t head = sp::csum_partial(buf.data(), cut);
        const std::uint32_t tail = sp::csum_partial(buf.data() + cut, buf.size() - cut);
        EXPECT_EQ(sp::csum_fold(sp::csum_block_add(head, tail, cut)), whole) << "cut " << cut;
    }
}

TEST(Checksum, Rfc1624IncrementalUpdateMatchesRecompute) {
    std::mt19937 rng(4);
    for (int round = 0; round < 2000; ++round) {
        auto buf = random_bytes(rng, 40);
        buf[10] = buf[11] = 0;
        const std::uint16_t check = sp::csum_fold(sp::csum_partial(buf.data(), buf.size()));
        sp::detail::store(buf.data() + 10, check);
        // change a 16-bit field and a 32-bit field
        const std::size_t at16 = (rng() % 4) * 2; // 0..6, away from the checksum
        const std::uint16_t old16 = sp::detail::load<std::uint16_t>(buf.data() + at16);
        const auto new16 = static_cast<std::uint16_t>(rng());
        sp::detail::store(buf.data() + at16, new16);
        std::uint16_t updated = sp::csum_replace16(check, old16, new16);
        const std::size_t at32 = 12 + (rng() % 6) * 4;
        const std::uint32_t old32 = sp::detail::load<std::uint32_t>(buf.data() + at32);
        const auto new32 = static_cast<std::uint32_t>(rng());
        sp::detail::store(buf.data() + at32, new32);
        updated = sp::csum_replace32(updated, old32, new32);
        sp::detail::store(buf.data() + 10, updated);
        EXPECT_TRUE(sp::csum_verifies(buf)) << "round " << round;
    }
}

TEST(Checksum, PseudoHeaderV4ByHand) {
    const std::uint8_t src[4] = {192, 168, 1, 10};
    const std::uint8_t dst[4] = {10, 0, 0, 254};
    // Pseudo-header laid out in memory and summed as bytes must equal the helper.
    const std::uint8_t ph[12] = {192, 168, 1, 10, 10, 0, 0, 254, 0, 6, 0x05, 0xdc};
    EXPECT_EQ(sp::csum_fold(sp::pseudo_header_sum_v4(src, dst, 6, 1500)),
              sp::csum_fold(sp::csum_partial(ph, sizeof ph)));
}

TEST(Checksum, PseudoHeaderV6ByHand) {
    std::uint8_t ph[40] = {};
    for (int i = 0; i < 32; ++i) {
        ph[i] = static_cast<std::uint8_t>(i * 7 + 1);
    }
    ph[34] = 0x01;
    ph[35] = 0x02; // length 0x0102
    ph[39] = 17;
    EXPECT_EQ(sp::csum_fold(sp::pseudo_header_sum_v6(ph, ph + 16, 17, 0x0102)),
              sp::csum_fold(sp::csum_partial(ph, sizeof ph)));
}
