// Test support for GRO/GSO: packets built into pool frames, an engine run over them, outputs
// read back as bytes.
#pragma once

#include <cstring>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/offload/gro.hpp>
#include <splitnet/offload/gso.hpp>
#include <splitnet/packet/buffer_pool.hpp>
#include <splitnet/packet/checksum_offload.hpp>
#include <splitnet/packet/packet_builder.hpp>

namespace splitnet::test {

namespace so = splitnet::offload;
namespace sp = splitnet::packet;

using bytes = std::vector<std::uint8_t>;

/// The bytes of a frame (all segments).
inline bytes linear(const sp::frame& f) {
    bytes b(f.pkt_len);
    EXPECT_EQ(sp::copy_out(f, b), f.pkt_len);
    return b;
}

struct gro_harness {
    std::unique_ptr<sp::buffer_pool> pool = std::make_unique<sp::buffer_pool>(
        sp::buffer_pool_config{.frame_count = 8192, .frame_size = 2048});

    /// A pool frame holding `b`.
    sp::frame frame_of(const bytes& b) {
        sp::frame f;
        EXPECT_EQ(pool->alloc_burst({&f, 1}), 1U);
        std::memcpy(f.data, b.data(), b.size());
        f.data_len = f.pkt_len = static_cast<std::uint32_t>(b.size());
        return f;
    }

    /// Runs `packets` through `engine` in bursts of `burst`, then flushes what is held.
    template <class Engine>
    std::vector<sp::frame> run(Engine& engine, const std::vector<bytes>& packets,
                               std::size_t burst = 64, std::uint64_t now = 0) {
        std::vector<sp::frame> in, out;
        for (const auto& p : packets) {
            in.push_back(frame_of(p));
        }
        std::vector<sp::frame> buf(burst + engine.config().max_flows + 8);
        for (std::size_t i = 0; i < in.size();) {
            const std::size_t n = std::min(burst, in.size() - i);
            const auto r = engine.receive_burst(std::span(in).subspan(i, n), buf, now);
            EXPECT_GT(r.consumed, 0U);
            out.insert(out.end(), buf.begin(),
                       buf.begin() + static_cast<std::ptrdiff_t>(r.produced));
            i += r.consumed;
        }
        const std::size_t k = engine.flush_all(buf);
        out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(k));
        return out;
    }

    void free_all(const std::vector<sp::frame>& frames) { pool->free_burst(frames); }
};

/// n segments of one stream (writes large enough that no PSH appears unless asked).
inline std::vector<bytes> stream_segments(sp::tcp_stream_config c, int n) {
    sp::tcp_stream s(c);
    std::vector<bytes> out;
    for (int i = 0; i < n; ++i) {
        bytes b(2048);
        b.resize(s.next(b));
        out.push_back(std::move(b));
    }
    return out;
}

inline sp::tcp_stream_config bulk_flow(std::uint32_t index = 0, bool v6 = false) {
    auto c = sp::tcp_flow(index, v6);
    c.write_size = 1U << 30; // no PSH in sight
    return c;
}

/// Rewrites packet b in place with `edit(bytes, parsed)`, then fixes its checksums.
template <class Edit>
void edit_packet(bytes& b, Edit edit) {
    auto p = sp::parse(b);
    edit(b, p);
    p = sp::parse(b);
    sp::fill_checksums(b, p);
}

inline std::uint32_t tcp_seq(const bytes& b) {
    const auto p = sp::parse(b);
    return sp::tcp_header{b.data() + p.l4_offset}.seq();
}

} // namespace splitnet::test
