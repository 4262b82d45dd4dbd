// fuzz-component: offload
// Fuzz target: the GRO engine on arbitrary frames, burst boundaries and flush timings, checked
// differentially: in exact mode, GRO then GSO must give back exactly the frames that went in
// (as a multiset: only flows are ordered), nothing lost, nothing invented, no buffer leaked, and
// every aggregate must parse with valid IP lengths and header checksum.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <splitnet/offload/gro.hpp>
#include <splitnet/offload/gso.hpp>
#include <splitnet/packet/checksum_offload.hpp>

namespace so = splitnet::offload;
namespace sp = splitnet::packet;

namespace {
void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}
std::vector<std::uint8_t> bytes_of(const sp::frame& f) {
    std::vector<std::uint8_t> b(f.pkt_len);
    check(sp::copy_out(f, b) == f.pkt_len);
    return b;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 4) {
        return 0;
    }
    static sp::buffer_pool pool({.frame_count = 1024, .frame_size = 2048, .populate = false});
    so::gro_config cfg;
    cfg.max_flows = 1U + data[0] % 8;
    cfg.hold_across_bursts = (data[1] & 1) != 0;
    cfg.flush_timeout_ns = (data[1] & 2) != 0 ? 1000 : 0;
    cfg.udp = (data[1] & 4) != 0;
    cfg.complete_checksum = (data[1] & 8) != 0;
    cfg.max_segments = static_cast<std::uint16_t>(2 + data[2] % 64);
    so::gro_engine<> gro(cfg, so::storage::chain(pool));
    std::vector<std::vector<std::uint8_t>> in_bytes;
    std::vector<sp::frame> burst, out(64 + 8 + 16), aggregated;
    std::uint64_t now = 0;
    auto feed = [&] {
        std::size_t i = 0;
        while (i < burst.size()) {
            const auto r = gro.receive_burst(std::span(burst).subspan(i), out, now);
            aggregated.insert(aggregated.end(), out.begin(),
                              out.begin() + static_cast<std::ptrdiff_t>(r.produced));
            i += r.consumed;
            if (r.consumed == 0) {
                const std::size_t k = gro.flush_all(out);
                aggregated.insert(aggregated.end(), out.begin(),
                                  out.begin() + static_cast<std::ptrdiff_t>(k));
            }
        }
        burst.clear();
    };
    std::size_t pos = 3;
    while (pos + 2 <= size) {
        const std::uint8_t op = data[pos];
        const std::size_t len =
            std::min<std::size_t>({data[pos + 1] * 8U, size - pos - 2, 2048 - 256});
        pos += 2;
        if (op < 8) { // control: end the burst, advance time, flush what expired
            feed();
            now += std::uint64_t{op} * 400;
            const std::size_t k = gro.flush_expired(now, out);
            aggregated.insert(aggregated.end(), out.begin(),
                              out.begin() + static_cast<std::ptrdiff_t>(k));
            continue;
        }
        sp::frame f;
        if (len == 0 || pool.alloc_burst({&f, 1}) != 1) {
            break;
        }
        std::memcpy(f.data, data + pos, len);
        f.data_len = f.pkt_len = static_cast<std::uint32_t>(len);
        if ((op & 0x30) == 0x30) {
            f.offload.csum = sp::csum_state::verified;
        }
        in_bytes.emplace_back(data + pos, data + pos + len);
        burst.push_back(f);
        pos += len;
        if (burst.size() == 64) {
            feed();
        }
    }
    feed();
    const std::size_t k = gro.flush_all(out);
    aggregated.insert(aggregated.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(k));
    check(gro.held() == 0);

    so::gso_segmenter gso(pool);
    std::vector<std::vector<std::uint8_t>> back;
    std::vector<sp::frame> segs(80);
    for (const auto& f : aggregated) {
        if (f.offload.is_gso()) {
            const auto b = bytes_of(f);
            const auto p = sp::parse(b);
            check(p.ok() && sp::ipv4_header_checksum_ok(b, p) && p.l3_end - p.l3_offset <= 65535U);
        }
        const auto r = gso.segment(f, segs);
        check(r.segments != 0 && r.consumed_input);
        for (std::size_t i = 0; i < r.segments; ++i) {
            auto b = bytes_of(segs[i]);
            if (cfg.complete_checksum == false && segs[i].offload.csum == sp::csum_state::partial) {
                check(false); // GSO completes checksums by default
            }
            back.push_back(std::move(b));
            pool.free(segs[i]);
        }
    }
    std::sort(in_bytes.begin(), in_bytes.end());
    std::sort(back.begin(), back.end());
    check(in_bytes == back);
    check(pool.available() == pool.capacity());
    return 0;
}
