// The split request/response ring in both layouts, front end and back end on different cores
// (cross_core) and on one core (same_core), in bursts of 1, 8, 32 and 256 requests. The back end
// behaves as a real one would before sleeping: when it finds no requests it runs the final check
// (arming the event index) and then polls again. The "notify_per_1000" counter is how many of
// the front end's publications had to wake the back end, per 1000 requests: event-index
// suppression should keep it near 0 under sustained load.
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include <splitnet/ring/split_ring.hpp>

#include "ring/bench_affinity.hpp"

namespace sr = splitnet::ring;
namespace sb = splitnet::bench;

namespace {

struct req {
    std::uint64_t seq;
    std::uint32_t gref;
    std::uint32_t len;
};
struct rsp {
    std::uint64_t seq;
    std::int32_t status;
    std::uint32_t pad;
};

// 16 KiB of shared area: 512 slots in either layout.
struct alignas(4096) area {
    std::byte bytes[16384];
};

template <class Layout>
void cross_core(benchmark::State& state) {
    const auto burst = static_cast<std::size_t>(state.range(0));
    auto mem = std::make_unique<area>();
    sr::front_ring<req, rsp, Layout> front(mem->bytes);
    sr::back_ring<req, rsp, Layout> back(mem->bytes);
    std::atomic<bool> stop{false};
    std::thread back_end([&] {
        sb::pin_to_cpu(1);
        std::vector<req> in(256);
        std::vector<rsp> out(256);
        for (;;) {
            const std::size_t n = back.get_requests(in);
            for (std::size_t i = 0; i < n; ++i) {
                out[i] = {in[i].seq, 0, 0};
            }
            if (n != 0) {
                (void)back.put_responses(std::span(out).first(n));
                (void)back.push_responses();
                continue;
            }
            if (stop.load(std::memory_order_acquire)) {
                break;
            }
            (void)back.final_check_for_requests();
        }
    });
    sb::pin_to_cpu(0);
    std::vector<req> in(burst);
    std::vector<rsp> out(512);
    std::uint64_t next = 0, notifies = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < burst; ++i) {
            in[i] = {next + i, 7, 1500};
        }
        std::size_t done = 0;
        while (done < burst) {
            done += front.put_requests(std::span(in).subspan(done));
            notifies += front.push_requests() ? 1 : 0;
            (void)front.get_responses(out);
        }
        next += burst;
    }
    while (front.outstanding() != 0) {
        (void)front.get_responses(out);
    }
    stop.store(true, std::memory_order_release);
    back_end.join();
    sb::unpin();
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * burst));
    state.counters["notify_per_1000"] =
        benchmark::Counter(1000.0 * static_cast<double>(notifies) / static_cast<double>(next));
}

template <class Layout>
void same_core(benchmark::State& state) {
    const auto burst = static_cast<std::size_t>(state.range(0));
    auto mem = std::make_unique<area>();
    sr::front_ring<req, rsp, Layout> front(mem->bytes);
    sr::back_ring<req, rsp, Layout> back(mem->bytes);
    std::vector<req> in(burst), got(burst);
    std::vector<rsp> out(burst), done(burst);
    std::uint64_t next = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < burst; ++i) {
            in[i] = {next + i, 7, 1500};
        }
        next += burst;
        (void)front.put_requests(in);
        (void)front.push_requests();
        const std::size_t n = back.get_requests(got);
        for (std::size_t i = 0; i < n; ++i) {
            out[i] = {got[i].seq, 0, 0};
        }
        (void)back.put_responses(std::span(out).first(n));
        (void)back.push_responses();
        benchmark::DoNotOptimize(front.get_responses(done));
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * burst));
}

} // namespace

BENCHMARK_TEMPLATE(cross_core, sr::xen_layout)->Arg(1)->Arg(8)->Arg(32)->Arg(256)->UseRealTime();
BENCHMARK_TEMPLATE(cross_core, sr::padded_layout)->Arg(1)->Arg(8)->Arg(32)->Arg(256)->UseRealTime();
BENCHMARK_TEMPLATE(same_core, sr::xen_layout)->Arg(1)->Arg(8)->Arg(32)->Arg(256);
BENCHMARK_TEMPLATE(same_core, sr::padded_layout)->Arg(1)->Arg(8)->Arg(32)->Arg(256);

BENCHMARK_MAIN();
