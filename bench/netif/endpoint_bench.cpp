// Frames per second through netfront and netback over shared memory (rings, grants, event
// index), one process, both ends on one core taking turns, so the figure is the CPU cost of the
// I/O channel per frame: guest -> driver domain (TX ring, back end grant-copies) and driver
// domain -> guest (RX ring, back end copies or the guest copies), 64 and 1500 bytes. The peer in
// the same run is a plain memcpy of the same bytes between two buffers: the copy every design
// pays, so the ratio shows what the channel adds on top of it.
#include <cstring>
#include <vector>

#include <benchmark/benchmark.h>

#include "netif/endpoint_fixture.hpp"

namespace sn = splitnet::netif;
namespace sp = splitnet::packet;

namespace {

using none = splitnet::coalesce::moderation::none;
constexpr std::size_t burst = 32;

sn::frontend_config config(sn::copy_side side) {
    sn::frontend_config c;
    c.request.rx_copy = side;
    c.buffers_per_queue = 2048;
    return c;
}

void prime(sp::buffer_pool& pool, std::size_t len) {
    // Write a frame header into every buffer once; payload bytes stay as they are.
    std::vector<sp::frame> all(pool.capacity());
    const std::size_t n = pool.alloc_burst(all);
    for (std::size_t i = 0; i < n; ++i) {
        const auto v = splitnet::test::numbered_frame(i, len);
        std::memcpy(all[i].data, v.data(), std::min<std::size_t>(v.size(), 64));
    }
    pool.free_burst({all.data(), n});
}

void guest_to_backend(benchmark::State& state) {
    const auto len = static_cast<std::uint32_t>(state.range(0));
    splitnet::test::driver_domain_memory<none> dd(16384);
    auto [back, front] = splitnet::test::connect_pair(dd.params, config(sn::copy_side::backend));
    prime(front->pool(), len);
    auto& fq = front->queue(0);
    auto& bq = back->queue(0);
    std::vector<sp::frame> tx(burst), rx(burst);
    std::uint64_t frames = 0;
    for (auto _ : state) {
        const std::size_t n = front->pool().alloc_burst(tx);
        for (std::size_t i = 0; i < n; ++i) {
            tx[i].data_len = tx[i].pkt_len = len;
        }
        const std::size_t took = fq.tx_burst({tx.data(), n});
        front->pool().free_burst({tx.data() + took, n - took});
        const std::size_t got = bq.rx_burst(rx);
        dd.mem.pool().free_burst({rx.data(), got});
        frames += got;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(frames));
    state.SetBytesProcessed(static_cast<std::int64_t>(frames * len));
}

void backend_to_guest(benchmark::State& state) {
    const auto len = static_cast<std::uint32_t>(state.range(0));
    // 0: the back end copies; 1: the guest copies out of its grants; 2: the guest reads them in
    // place (rx_views), as a front end that writes them to a device does (the device's write,
    // not measured here, is then the only copy).
    const auto side = state.range(1) == 0 ? sn::copy_side::backend : sn::copy_side::frontend;
    const bool in_place = state.range(1) == 2;
    splitnet::test::driver_domain_memory<none> dd(16384);
    auto [back, front] = splitnet::test::connect_pair(dd.params, config(side));
    prime(dd.mem.pool(), len);
    auto& fq = front->queue(0);
    auto& bq = back->queue(0);
    std::vector<sp::frame> tx(burst), rx(burst);
    std::uint64_t frames = 0;
    const auto now = splitnet::coalesce::time_point{};
    for (auto _ : state) {
        const std::size_t n = dd.mem.pool().alloc_burst(tx);
        for (std::size_t i = 0; i < n; ++i) {
            tx[i].data_len = tx[i].pkt_len = len;
        }
        const std::size_t took = bq.tx_burst({tx.data(), n});
        dd.mem.pool().free_burst({tx.data() + took, n - took});
        bq.deliver(now);
        if (in_place) {
            const std::size_t got = fq.rx_views(rx);
            for (std::size_t i = 0; i < got; ++i) {
                benchmark::DoNotOptimize(rx[i].data[0]);
            }
            fq.rx_views_done();
            frames += got;
            continue;
        }
        const std::size_t got = fq.rx_burst(rx);
        front->pool().free_burst({rx.data(), got});
        frames += got;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(frames));
    state.SetBytesProcessed(static_cast<std::int64_t>(frames * len));
    state.SetLabel(side == sn::copy_side::backend ? "backend copies"
                   : in_place                     ? "guest reads in place"
                                                  : "guest copies");
}

/// The peer: copying the same bytes between two pool buffers, burst by burst.
void memcpy_peer(benchmark::State& state) {
    const auto len = static_cast<std::size_t>(state.range(0));
    sp::buffer_pool a({.frame_count = 4096, .frame_size = 2048, .headroom = 256});
    sp::buffer_pool b({.frame_count = 4096, .frame_size = 4096, .headroom = 0});
    std::vector<sp::frame> fa(burst), fb(burst);
    std::uint64_t frames = 0;
    std::size_t i = 0;
    for (auto _ : state) {
        // Walk the whole pools, as the channel does, so caches see the same footprint.
        for (std::size_t k = 0; k < burst; ++k, ++i) {
            std::uint8_t* src = a.base() + (i % 4096) * 2048 + 256;
            std::uint8_t* dst = b.base() + (i % 4096) * 4096;
            std::memcpy(dst, src, len);
        }
        benchmark::ClobberMemory();
        frames += burst;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(frames));
    state.SetBytesProcessed(static_cast<std::int64_t>(frames * len));
}

} // namespace

BENCHMARK(guest_to_backend)->Arg(64)->Arg(1500);
BENCHMARK(backend_to_guest)
    ->Args({64, 0})
    ->Args({1500, 0})
    ->Args({64, 1})
    ->Args({1500, 1})
    ->Args({64, 2})
    ->Args({1500, 2});
BENCHMARK(memcpy_peer)->Arg(64)->Arg(1500);
BENCHMARK_MAIN();
