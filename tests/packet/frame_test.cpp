// frame: chain traversal and copy_out over segments.
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/packet/frame.hpp>

namespace sp = splitnet::packet;

TEST(Frame, ChainTraversalAndCopyOut) {
    std::vector<std::uint8_t> a(10, 1), b(20, 2), c(5, 3);
    sp::frame fa = sp::make_frame(a.data(), 10);
    sp::frame fb = sp::make_frame(b.data(), 20);
    sp::frame fc = sp::make_frame(c.data(), 5);
    fa.next = &fb;
    fb.next = &fc;
    fa.pkt_len = 35;
    fa.nb_segs = 3;
    std::uint32_t total = 0;
    int segs = 0;
    sp::for_each_segment(fa, [&](const sp::frame& s) {
        total += s.data_len;
        ++segs;
    });
    EXPECT_EQ(total, 35U);
    EXPECT_EQ(segs, 3);
    std::vector<std::uint8_t> out(35);
    EXPECT_EQ(sp::copy_out(fa, out), 35U);
    EXPECT_EQ(out[9], 1);
    EXPECT_EQ(out[10], 2);
    EXPECT_EQ(out[34], 3);
    std::vector<std::uint8_t> small(12);
    EXPECT_EQ(sp::copy_out(fa, small), 12U);
    EXPECT_EQ(small[11], 2);
}
