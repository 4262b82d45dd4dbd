// pcap: write then read back in both timestamp resolutions, read files in the other byte
// order, and report damaged files with their name and the offset of the damage.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/packet/pcap.hpp>

namespace sp = splitnet::packet;

namespace {

std::string temp_path(const char* name) {
    return ::testing::TempDir() + "splitnet_" + name + ".pcap";
}

std::vector<std::uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

std::string error_of(std::span<const std::uint8_t> bytes) {
    try {
        sp::pcap_reader r(bytes, "damaged.pcap");
        sp::pcap_record rec;
        while (r.next(rec)) {
        }
    } catch (const sp::pcap_error& e) {
        return e.what();
    }
    return "";
}

} // namespace

TEST(Pcap, RoundTripMicroAndNano) {
    for (auto res : {sp::pcap_resolution::microsecond, sp::pcap_resolution::nanosecond}) {
        const auto path = temp_path(res == sp::pcap_resolution::nanosecond ? "ns" : "us");
        {
            sp::pcap_writer w(path, res);
            std::vector<std::uint8_t> a(60, 1), b(1514, 2);
            w.write(a, 1'700'000'000'123'456'789ULL);
            w.write(b, 1'700'000'001'000'000'001ULL, 9000); // truncated capture of a jumbo
        }
        sp::pcap_reader r(path);
        EXPECT_EQ(r.link_type(), sp::pcap_link::ethernet);
        EXPECT_EQ(r.nanosecond(), res == sp::pcap_resolution::nanosecond);
        sp::pcap_record rec;
        ASSERT_TRUE(r.next(rec));
        EXPECT_EQ(rec.data.size(), 60U);
        EXPECT_EQ(rec.data[0], 1);
        EXPECT_EQ(rec.timestamp_ns, res == sp::pcap_resolution::nanosecond
                                        ? 1'700'000'000'123'456'789ULL
                                        : 1'700'000'000'123'456'000ULL);
        ASSERT_TRUE(r.next(rec));
        EXPECT_EQ(rec.data.size(), 1514U);
        EXPECT_EQ(rec.orig_len, 9000U);
        EXPECT_FALSE(r.next(rec));
        std::remove(path.c_str());
    }
}

TEST(Pcap, WritesChainsAsOnePacket) {
    const auto path = temp_path("chain");
    std::vector<std::uint8_t> a(100, 0xaa), b(50, 0xbb);
    sp::frame head = sp::make_frame(a.data(), 100);
    sp::frame tail = sp::make_frame(b.data(), 50);
    head.next = &tail;
    head.pkt_len = 150;
    head.nb_segs = 2;
    {
        sp::pcap_writer w(path);
        w.write(head, 0);
    }
    sp::pcap_reader r(path);
    sp::pcap_record rec;
    ASSERT_TRUE(r.next(rec));
    ASSERT_EQ(rec.data.size(), 150U);
    EXPECT_EQ(rec.data[99], 0xaa);
    EXPECT_EQ(rec.data[100], 0xbb);
    std::remove(path.c_str());
}

TEST(Pcap, ReadsTheOtherByteOrder) {
    // A big-endian microsecond file with one 4-byte record, written by hand.
    const std::vector<std::uint8_t> be = {
        0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0,
        0,    1,    0,    0,    0, 5, 0, 0, 0, 7, 0, 0, 0, 4, 0, 0, 0, 4, 9,    8,    7, 6};
    sp::pcap_reader r(be, "be.pcap");
    EXPECT_EQ(r.link_type(), 1U);
    EXPECT_EQ(r.snaplen(), 65535U);
    sp::pcap_record rec;
    ASSERT_TRUE(r.next(rec));
    EXPECT_EQ(rec.timestamp_ns, 5'000'007'000ULL);
    ASSERT_EQ(rec.data.size(), 4U);
    EXPECT_EQ(rec.data[0], 9);
}

TEST(Pcap, DamageIsReportedWithFileAndOffset) {
    const auto path = temp_path("damage");
    {
        sp::pcap_writer w(path);
        std::vector<std::uint8_t> a(100, 1);
        w.write(a, 0);
        w.write(a, 0);
    }
    const auto good = read_file(path);
    std::remove(path.c_str());
    ASSERT_EQ(good.size(), 24U + 2 * (16 + 100));

    auto cut_body = std::vector<std::uint8_t>(good.begin(), good.end() - 10);
    EXPECT_EQ(error_of(cut_body), "damaged.pcap: offset 140: truncated record (90 of 100 bytes)");
    auto cut_header = std::vector<std::uint8_t>(good.begin(), good.begin() + 24 + 116 + 5);
    EXPECT_EQ(error_of(cut_header),
              "damaged.pcap: offset 140: truncated record header (5 of 16 bytes)");
    auto huge = good;
    huge[24 + 8 + 2] = 0x10; // incl_len ~ 1 MiB
    EXPECT_NE(error_of(huge).find("offset 24: record of"), std::string::npos);
    auto bad_magic = good;
    bad_magic[0] = 0x0a;
    EXPECT_NE(error_of(bad_magic).find("not a classic pcap file"), std::string::npos);
    EXPECT_NE(error_of(std::span(good).first(10)).find("24"), std::string::npos);
    try {
        sp::pcap_reader r("/nonexistent/dir/x.pcap");
        FAIL();
    } catch (const sp::pcap_error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/x.pcap: cannot open"),
                  std::string::npos);
    }
}
