// AF_XDP port receive and send rates on a veth pair (copy mode: veth has no zero-copy), side by
// side in the same run with the kernel path on an identical veth pair: an AF_PACKET socket with
// recvmmsg/sendmmsg (PACKET_QDISC_BYPASS on send, as AF_XDP's generic transmit bypasses the
// qdisc too). 64- and 1500-byte frames. At the end the run prints afxdp/kernel ratios.
//
// Method: one thread, lockstep windows of 256 frames. veth delivers inside the sender's system
// call (the receive softirq runs when dev_queue_xmit re-enables bottom halves), so each receive
// iteration is "peer sendmmsg of 256 frames -> veth -> {XDP redirect + copy into the UMEM | stack
// + AF_PACKET queue} -> receive all 256 and free them": identical senders, so the ratio isolates
// the receive path (as one core sees it). Each send iteration is "256 frames into the device ->
// veth -> dropped by the peer's stack (unknown EtherType)": tx_burst by address (one kernel copy,
// UMEM -> skb) vs sendmmsg (one copy, user -> skb). Real time, not CPU time: most of the work is
// in the kernel. Needs root (a private network and mount namespace is made at start-up and goes
// with the process); without it every benchmark is skipped with the reason.
//
// Run with --benchmark_repetitions=5 on a noisy machine: the ratios use the medians.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <splitnet/nic/afxdp_port.hpp>
#include <splitnet/packet/buffer_pool.hpp>

#include "ring/bench_affinity.hpp"
#include "support/veth.hpp" // tests/support: the veth and AF_PACKET helpers the tests use
#include <sched.h>

namespace {

namespace sn = splitnet::nic;
namespace sp = splitnet::packet;
namespace st = splitnet::test;

constexpr std::uint32_t window = 256;
constexpr std::uint16_t ethertype = 0x88B5;
std::string env_error; // why the benchmarks cannot run (empty: they can)

/// Makes the private namespaces and the two veth pairs: xa/xb for AF_XDP, ka/kb for the kernel.
void make_environment() {
    if (::geteuid() != 0) {
        env_error = "needs root (network namespaces, veth, AF_XDP); run as root";
        return;
    }
    if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0) {
        env_error = std::string("cannot make private namespaces: ") + std::strerror(errno);
        return;
    }
    for (const auto& [a, b] : {std::pair{"xa", "xb"}, std::pair{"ka", "kb"}}) {
        if (std::string err = st::create_veth({.a = a, .b = b}); !err.empty()) {
            env_error = err;
            return;
        }
    }
}

std::vector<std::uint8_t> frame_bytes(std::uint32_t size) {
    std::vector<std::uint8_t> f(size, 0);
    const std::uint8_t macs[12] = {0x02, 0, 0, 0, 0, 0x0a, 0x02, 0, 0, 0, 0, 0x0b};
    std::memcpy(f.data(), macs, 12);
    f[12] = ethertype >> 8;
    f[13] = ethertype & 0xff;
    for (std::size_t i = 14; i < size; ++i) {
        f[i] = static_cast<std::uint8_t>(i);
    }
    return f;
}

sp::buffer_pool_config pool_config() {
    return {.frame_count = 16384, .frame_size = 2048, .headroom = 256, .populate = true};
}

bool skip_if_no_env(benchmark::State& state) {
    if (!env_error.empty()) {
        state.SkipWithError(env_error.c_str());
        return true;
    }
    splitnet::bench::pin_to_cpu(1);
    return false;
}

void finish(benchmark::State& state, std::uint32_t size) {
    const auto frames = static_cast<std::int64_t>(state.iterations()) * window;
    state.SetItemsProcessed(frames);
    state.SetBytesProcessed(frames * size);
}

// --- receive -----------------------------------------------------------------------------------

void rx_afxdp(benchmark::State& state, sn::afxdp_attach_mode attach) {
    if (skip_if_no_env(state)) {
        return;
    }
    const auto size = static_cast<std::uint32_t>(state.range(0));
    sp::buffer_pool pool(pool_config());
    std::optional<sn::afxdp_port> port;
    port.emplace(pool, sn::afxdp_config{.ifname = "xa", .attach = attach});
    st::packet_socket peer("xb", 0, 0, true);
    const std::vector<std::uint8_t> bytes = frame_bytes(size);
    const std::vector<std::span<const std::uint8_t>> spans(window, std::span(bytes));
    std::vector<sp::frame> burst(64);
    for (auto _ : state) {
        peer.send_burst(spans);
        std::uint32_t got = 0;
        for (std::uint32_t spins = 0; got < window && spins < 1000000; ++spins) {
            const std::size_t n = port->rx_burst(burst);
            pool.free_burst(std::span(burst).first(n));
            got += static_cast<std::uint32_t>(n);
        }
        if (got < window) {
            state.SkipWithError("frames lost between the peer and the AF_XDP socket");
            break;
        }
    }
    finish(state, size);
    state.counters["rx_wakeups"] = benchmark::Counter(
        static_cast<double>(port->xdp_stats().rx_wakeups), benchmark::Counter::kAvgIterations);
    state.SetLabel(port->describe().substr(0, port->describe().find(',')));
}

void rx_kernel(benchmark::State& state) {
    if (skip_if_no_env(state)) {
        return;
    }
    const auto size = static_cast<std::uint32_t>(state.range(0));
    st::packet_socket rx("ka", ethertype, 16 << 20);
    st::packet_socket peer("kb", 0, 0, true);
    const std::vector<std::uint8_t> bytes = frame_bytes(size);
    const std::vector<std::span<const std::uint8_t>> spans(window, std::span(bytes));
    constexpr unsigned batch = 64;
    std::vector<std::uint8_t> store(batch * 2048);
    iovec iov[batch];
    mmsghdr msgs[batch];
    for (auto _ : state) {
        peer.send_burst(spans);
        std::uint32_t got = 0;
        for (std::uint32_t spins = 0; got < window && spins < 1000000; ++spins) {
            for (unsigned i = 0; i < batch; ++i) {
                iov[i] = {store.data() + i * 2048, 2048};
                msgs[i] = {};
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            const int n = ::recvmmsg(rx.fd(), msgs, batch, MSG_DONTWAIT, nullptr);
            got += n > 0 ? static_cast<std::uint32_t>(n) : 0U;
        }
        if (got < window) {
            state.SkipWithError("frames lost between the peer and the AF_PACKET socket");
            break;
        }
    }
    finish(state, size);
    state.SetLabel("AF_PACKET recvmmsg");
}

// --- send --------------------------------------------------------------------------------------

enum class tx_frames { by_address, foreign };

void tx_afxdp(benchmark::State& state, tx_frames kind, std::uint32_t budget) {
    if (skip_if_no_env(state)) {
        return;
    }
    const auto size = static_cast<std::uint32_t>(state.range(0));
    sp::buffer_pool pool(pool_config());
    const std::vector<std::uint8_t> bytes = frame_bytes(size);
    {
        // Every buffer holds the frame already, so the loop measures the port, not the filling.
        std::vector<sp::frame> all(pool.capacity());
        const std::size_t n = pool.alloc_burst(all);
        for (std::size_t i = 0; i < n; ++i) {
            std::memcpy(all[i].data, bytes.data(), size);
        }
        pool.free_burst(std::span(all).first(n));
    }
    std::optional<sn::afxdp_port> port;
    port.emplace(pool, sn::afxdp_config{.ifname = "xa", .copy_tx_budget = budget});
    std::vector<sp::frame> frames(window);
    std::vector<std::uint8_t> user(bytes);
    for (auto _ : state) {
        if (kind == tx_frames::by_address) {
            if (pool.alloc_burst(frames) != window) {
                state.SkipWithError("pool exhausted");
                break;
            }
            for (sp::frame& f : frames) {
                f.data_len = f.pkt_len = size;
            }
        } else {
            std::fill(frames.begin(), frames.end(), sp::make_frame(user.data(), size));
        }
        std::size_t sent = 0;
        for (std::uint32_t spins = 0; sent < window && spins < 1000000; ++spins) {
            sent += port->tx_burst(std::span(frames).subspan(sent));
        }
        if (sent < window) {
            state.SkipWithError("TX made no progress");
            break;
        }
    }
    finish(state, size);
    const auto& x = port->xdp_stats();
    state.counters["kicks_per_frame"] = benchmark::Counter(
        static_cast<double>(x.tx_kicks) /
        static_cast<double>(std::max<std::uint64_t>(1, port->stats().tx_packets)));
    state.SetLabel(kind == tx_frames::by_address ? "by address" : "copied from user memory");
}

void tx_kernel(benchmark::State& state) {
    if (skip_if_no_env(state)) {
        return;
    }
    const auto size = static_cast<std::uint32_t>(state.range(0));
    st::packet_socket tx("ka", 0, 0, true);
    const std::vector<std::uint8_t> bytes = frame_bytes(size);
    const std::vector<std::span<const std::uint8_t>> spans(window, std::span(bytes));
    for (auto _ : state) {
        if (tx.send_burst(spans) != window) {
            state.SkipWithError("sendmmsg failed");
            break;
        }
    }
    finish(state, size);
    state.SetLabel("AF_PACKET sendmmsg, qdisc bypass");
}

/// Keeps the console output and remembers items/s per benchmark (median when repeated).
class ratio_reporter : public benchmark::ConsoleReporter {
public:
    ratio_reporter() : ConsoleReporter(::isatty(1) != 0 ? OO_ColorTabular : OO_Tabular) {}

    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& r : runs) {
            const auto it = r.counters.find("items_per_second");
            if (it == r.counters.end() || r.error_occurred) {
                continue;
            }
            if (r.run_type == Run::RT_Aggregate && r.aggregate_name != "median") {
                continue;
            }
            rate_[r.run_name.str()] = it->second.value; // a median overwrites the single runs
        }
    }
    void print_ratios() const {
        std::printf("\nafxdp / kernel (items per second, same run%s):\n",
                    rate_.empty() ? ": nothing measured" : "");
        for (const auto& [name, value] : rate_) {
            const std::size_t slash = name.find('/');
            const std::string dir = name.substr(0, name.find('_'));
            const std::string size = name.substr(slash);
            const auto peer = rate_.find(dir + "_kernel" + size);
            if (name.find("_kernel") != std::string::npos || peer == rate_.end()) {
                continue;
            }
            std::printf("  %-34s %8.2f Mpps  kernel %8.2f Mpps  ratio %.2f\n", name.c_str(),
                        value / 1e6, peer->second / 1e6, value / peer->second);
        }
    }

private:
    std::map<std::string, double> rate_;
};

} // namespace

int main(int argc, char** argv) {
    make_environment(); // before any thread exists: unshare(CLONE_NEWNS) needs that
    for (const std::int64_t size : {64, 1500}) {
        benchmark::RegisterBenchmark("rx_afxdp_skb", rx_afxdp, sn::afxdp_attach_mode::skb)
            ->Arg(size)
            ->UseRealTime();
        benchmark::RegisterBenchmark("rx_afxdp_native", rx_afxdp, sn::afxdp_attach_mode::native)
            ->Arg(size)
            ->UseRealTime();
        benchmark::RegisterBenchmark("rx_kernel", rx_kernel)->Arg(size)->UseRealTime();
        benchmark::RegisterBenchmark("tx_afxdp", tx_afxdp, tx_frames::by_address, 0U)
            ->Arg(size)
            ->UseRealTime();
        benchmark::RegisterBenchmark("tx_afxdp_budget256", tx_afxdp, tx_frames::by_address, 256U)
            ->Arg(size)
            ->UseRealTime();
        benchmark::RegisterBenchmark("tx_afxdp_foreign", tx_afxdp, tx_frames::foreign, 0U)
            ->Arg(size)
            ->UseRealTime();
        benchmark::RegisterBenchmark("tx_kernel", tx_kernel)->Arg(size)->UseRealTime();
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 1;
    }
    ratio_reporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.print_ratios();
    benchmark::Shutdown();
    return 0;
}
