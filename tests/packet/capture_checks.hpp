// Checks shared by the committed-capture test and the live-capture test: every frame the real
// kernel sent must parse, and our checksum code must agree with the kernel's on every header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/packet/checksum_offload.hpp>
#include <splitnet/packet/parser.hpp>
#include <splitnet/packet/pcap.hpp>

namespace splitnet::test {

struct capture_summary {
    std::size_t frames = 0;
    std::size_t tcp_v4 = 0;
    std::size_t tcp_v6 = 0;
    std::size_t udp = 0;
    std::size_t icmp = 0;
    std::size_t tcp_with_timestamps = 0;
    std::size_t syn_with_mss = 0;
};

inline capture_summary check_kernel_capture(const std::string& path) {
    namespace sp = splitnet::packet;
    capture_summary s;
    sp::pcap_reader r(path);
    EXPECT_EQ(r.link_type(), sp::pcap_link::ethernet);
    sp::pcap_record rec;
    while (r.next(rec)) {
        ++s.frames;
        std::vector<std::uint8_t> bytes(rec.data.begin(), rec.data.end());
        const auto p = sp::parse(bytes);
        EXPECT_TRUE(p.ok()) << "frame " << s.frames << ": " << sp::to_string(p.error);
        if (!p.ok()) {
            continue;
        }
        EXPECT_TRUE(sp::ipv4_header_checksum_ok(bytes, p)) << "frame " << s.frames;
        EXPECT_TRUE(sp::l4_checksum_ok(bytes, p)) << "frame " << s.frames;
        // Recomputing must reproduce the kernel's bytes exactly, but for one thing: a TCP
        // checksum whose one's-complement value is zero has two encodings, 0x0000 and 0xffff,
        // both verify, and the kernel writes either (0xffff from skb_checksum_help when offloads
        // are off, 0x0000 from csum_fold): about one TCP frame in 65536.
        std::vector<std::uint8_t> mine = bytes;
        std::vector<std::uint8_t> theirs = bytes;
        sp::fill_checksums(mine, p);
        if (p.is_tcp()) {
            const std::size_t at = p.l4_offset + 16;
            for (std::vector<std::uint8_t>* v : {&mine, &theirs}) {
                if ((*v)[at] == 0xff && (*v)[at + 1] == 0xff) {
                    (*v)[at] = 0;
                    (*v)[at + 1] = 0;
                }
            }
        }
        EXPECT_EQ(mine, theirs) << "frame " << s.frames;
        if (p.is_tcp()) {
            (p.l3 == sp::l3_type::ipv4 ? s.tcp_v4 : s.tcp_v6)++;
            const sp::tcp_header th{bytes.data() + p.l4_offset};
            const auto o = sp::parse_tcp_options(
                std::span(bytes).subspan(p.l4_offset + 20, p.l4_header_len() - 20U));
            EXPECT_TRUE(o.valid) << "frame " << s.frames;
            s.tcp_with_timestamps += o.has_timestamp ? 1 : 0;
            if ((th.flags() & sp::tcp_flag::syn) != 0) {
                EXPECT_TRUE(o.has_mss);
                s.syn_with_mss += o.has_mss ? 1 : 0;
            }
        } else if (p.is_udp()) {
            ++s.udp;
        } else if (p.l4_proto == sp::ip_proto::icmp || p.l4_proto == sp::ip_proto::icmpv6) {
            ++s.icmp;
        }
    }
    return s;
}

inline void expect_full_mix(const capture_summary& s) {
    EXPECT_GT(s.tcp_v4, 50U);
    EXPECT_GT(s.tcp_v6, 50U);
    EXPECT_GT(s.udp, 10U);
    EXPECT_GE(s.icmp, 4U);
    EXPECT_GE(s.syn_with_mss, 4U);
    EXPECT_GT(s.tcp_with_timestamps, 100U);
}

} // namespace splitnet::test
