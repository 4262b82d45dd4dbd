// In-memory driver domain throughput: frames per second through the whole pipeline with one
// worker (NIC port -> GRO -> bridge -> backend queue -> grant copy -> netfront, and back), with
// 64-byte and 1500-byte frames. The benchmark thread plays the wire (an in-memory NIC port) and
// the guest (a real netfront in this process, connected over the control socket), so on this
// 2-core machine the figure is what one worker sustains with the guest's work on the other core.
// The peer in the same run is the bare netif path (backend and frontend queues driven directly,
// no bridge, no scheduler, no threads): the ratio is what the pipeline costs on top of the I/O
// channel.
#include <chrono>
#include <cstring>
#include <vector>

#include <benchmark/benchmark.h>

#include "pipeline/pipeline_fixture.hpp"

namespace sp = splitnet::packet;
namespace sn = splitnet::netif;
using namespace splitnet::test;

namespace {

constexpr std::uint64_t wire_mac = 0x02aa'0000'0001;
constexpr std::uint64_t guest_mac = 0x0200'0000'000a;
constexpr std::size_t window = 1024; ///< frames in flight
constexpr std::size_t per_iteration = 4096;

/// Writes an Ethernet header (EtherType 0x88b5) and sets the length; the payload is whatever
/// the buffer held (the channel copies it all the same).
void fill(sp::frame& f, std::uint32_t len, std::uint64_t dst, std::uint64_t src) {
    const auto d = sp::mac_address::from_u64(dst);
    const auto s = sp::mac_address::from_u64(src);
    std::memcpy(f.data, d.bytes.data(), 6);
    std::memcpy(f.data + 6, s.bytes.data(), 6);
    f.data[12] = 0x88;
    f.data[13] = 0xb5;
    f.data_len = f.pkt_len = len;
}

struct running_domain {
    explicit running_domain(const char* name) : path(pipeline_socket(name)) {
        pipeline_options o;
        o.workers = 1;
        o.gro = false; // plain frames: GRO would only pass them through
        o.rx_queue_len = 1024;
        o.pool_frames = 32768;
        d = make_domain(path, o);
        d->start();
        guest = connect_guest(path, guest_mac);
        eventually([&] { return d->guest_count() == 1; });
        // Teach the bridge both MACs.
        std::vector<sp::frame> f(1);
        (void)guest->pool().alloc_burst(f);
        fill(f[0], 64, wire_mac, guest_mac);
        (void)guest->queue(0).tx_burst(f);
        std::vector<sp::frame> in(1);
        (void)d->pool().alloc_burst(in);
        fill(in[0], 64, guest_mac, wire_mac);
        (void)d->nic().inject(in);
        std::vector<sp::frame> out(64);
        eventually([&] {
            const std::size_t n = guest->queue(0).rx_burst(out);
            guest->pool().free_burst({out.data(), n});
            const std::size_t m = d->nic().collect(out);
            d->pool().free_burst({out.data(), m});
            return n + m != 0;
        });
    }
    ~running_domain() {
        d->stop();
        guest.reset();
        d.reset();
    }
    std::string path;
    std::unique_ptr<test_domain> d;
    std::unique_ptr<sn::frontend> guest;
};

void wire_to_guest(benchmark::State& state) {
    const auto len = static_cast<std::uint32_t>(state.range(0));
    running_domain r("bench-in");
    std::vector<sp::frame> in(64), out(64);
    std::uint64_t sent = 0, got = 0;
    for (auto _ : state) {
        const std::uint64_t target = got + per_iteration;
        while (got < target) {
            if (sent - got < window) {
                const std::size_t n = r.d->pool().alloc_burst(in);
                for (std::size_t i = 0; i < n; ++i) {
                    fill(in[i], len, guest_mac, wire_mac);
                }
                const std::size_t took = r.d->nic().inject({in.data(), n});
                r.d->pool().free_burst({in.data() + took, n - took});
                sent += took;
            }
            const std::size_t k = r.guest->queue(0).rx_burst(out);
            r.guest->pool().free_burst({out.data(), k});
            got += k;
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(got));
    state.SetBytesProcessed(static_cast<std::int64_t>(got * len));
}

void guest_to_wire(benchmark::State& state) {
    const auto len = static_cast<std::uint32_t>(state.range(0));
    running_domain r("bench-out");
    std::vector<sp::frame> in(64), out(256);
    std::uint64_t sent = 0, got = 0;
    for (auto _ : state) {
        const std::uint64_t target = got + per_iteration;
        while (got < target) {
            if (sent - got < window) {
                const std::size_t n = r.guest->pool().alloc_burst(in);
                for (std::size_t i = 0; i < n; ++i) {
                    fill(in[i], len, wire_mac, guest_mac);
                }
                const std::size_t took = r.guest->queue(0).tx_burst({in.data(), n});
                r.guest->pool().free_burst({in.data() + took, n - took});
                sent += took;
            }
            const std::size_t k = r.d->nic().collect(out);
            r.d->pool().free_burst({out.data(), k});
            got += k;
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(got));
    state.SetBytesProcessed(static_cast<std::int64_t>(got * len));
}

/// The peer: the same frames through a backend and a frontend queue driven directly.
void bare_channel(benchmark::State& state) {
    const auto len = static_cast<std::uint32_t>(state.range(0));
    driver_domain_memory<splitnet::coalesce::moderation::none> dd(32768);
    sn::frontend_config c;
    c.buffers_per_queue = 2048;
    auto [back, front] = connect_pair(dd.params, c);
    std::vector<sp::frame> in(64), out(64);
    std::uint64_t got = 0;
    const auto now = splitnet::coalesce::time_point{};
    for (auto _ : state) {
        const std::uint64_t target = got + per_iteration;
        while (got < target) {
            const std::size_t n = dd.mem.pool().alloc_burst(in);
            for (std::size_t i = 0; i < n; ++i) {
                fill(in[i], len, guest_mac, wire_mac);
            }
            const std::size_t took = back->queue(0).tx_burst({in.data(), n});
            dd.mem.pool().free_burst({in.data() + took, n - took});
            back->queue(0).deliver(now);
            const std::size_t k = front->queue(0).rx_burst(out);
            front->pool().free_burst({out.data(), k});
            got += k;
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(got));
    state.SetBytesProcessed(static_cast<std::int64_t>(got * len));
}

} // namespace

BENCHMARK(wire_to_guest)->Arg(64)->Arg(1500)->UseRealTime();
BENCHMARK(guest_to_wire)->Arg(64)->Arg(1500)->UseRealTime();
BENCHMARK(bare_channel)->Arg(64)->Arg(1500)->UseRealTime();
BENCHMARK_MAIN();
