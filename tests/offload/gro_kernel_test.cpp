// GRO output is valid to a real kernel. Inside a fresh network namespace, a kernel TCP socket
// listens behind a TAP device; this test plays the remote host, builds MTU-sized segments of a
// 4 MB stream, runs them through the GRO engine, and writes the aggregates into the TAP with
// their virtio-net headers (GSO, partial checksum). The socket must receive every byte, intact.
// Also: real kernel traffic captured on a veth pair (committed pcap) through GRO and GSO gives
// back the capture exactly. Needs root for the first; skipped with the reason otherwise.
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <splitnet/nic/tap_port.hpp>
#include <splitnet/offload/gro.hpp>
#include <splitnet/offload/gso.hpp>
#include <splitnet/packet/pcap.hpp>

#include "offload/gro_fixture.hpp"
#include "support/netns.hpp"
#include "support/tap_tcp_peer.hpp"

namespace so = splitnet::offload;
namespace sp = splitnet::packet;
namespace sn = splitnet::nic;
using namespace splitnet::test;

namespace {

enum result : int {
    ok = 0,
    no_tap = 10,
    no_address,
    no_listen,
    no_handshake,
    send_timeout,
    bad_stream,
    nothing_aggregated,
};

constexpr std::uint64_t stream_bytes = 4 << 20;
constexpr std::uint32_t stream_seed = 31337;

int run_kernel_receiver() {
    sp::buffer_pool pool({.frame_count = 4096});
    sn::tap_port tap = [&]() -> sn::tap_port {
        return sn::tap_port(pool, {.name = "spltap0"});
    }();
    disable_ipv6("spltap0");
    if (!set_ipv4("spltap0", "10.99.0.1", "255.255.255.0") || !set_up("lo")) {
        return no_address;
    }
    const sp::mac_address peer_mac{{0x02, 0x53, 0x50, 0x4c, 0x00, 0x02}};
    if (!static_arp("spltap0", "10.99.0.2", peer_mac)) {
        return no_address;
    }
    const int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(5001);
    ::inet_pton(AF_INET, "10.99.0.1", &a.sin_addr);
    if (ls < 0 || ::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(ls, 1) != 0) {
        return no_listen;
    }
    std::atomic<int> server_result{-1};
    std::thread server([&] {
        const int c = ::accept(ls, nullptr, nullptr);
        // The peer sends its FIN once and never again: if it is lost, a read times out (and
        // the stream counts as broken) instead of blocking the join below until ctest's timeout.
        const timeval read_timeout{.tv_sec = 10, .tv_usec = 0};
        ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &read_timeout, sizeof read_timeout);
        std::vector<std::uint8_t> buf(1 << 16);
        std::uint64_t got = 0;
        bool intact = true;
        for (;;) {
            const ssize_t r = ::read(c, buf.data(), buf.size());
            if (r <= 0) {
                break;
            }
            for (ssize_t i = 0; i < r; ++i) {
                intact &= buf[static_cast<std::size_t>(i)] ==
                          sp::stream_byte(stream_seed, got + static_cast<std::uint64_t>(i));
            }
            got += static_cast<std::uint64_t>(r);
        }
        ::close(c);
        server_result = intact && got == stream_bytes ? ok : bad_stream;
    });

    so::gro_config cfg; // exact, lightweight, partial checksums: what a TAP wants
    so::gro_engine<> gro(cfg, so::storage::chain(pool));
    auto send = [&](std::vector<sp::frame>& frames) {
        std::vector<sp::frame> out(frames.size() + cfg.max_flows);
        const auto r = gro.receive_burst(frames, out, 0);
        std::size_t done = 0;
        while (done < r.produced) {
            done += tap.tx_burst(std::span(out).subspan(done, r.produced - done));
        }
    };
    tap_tcp_peer peer(tap, {peer_mac, {10, 99, 0, 2}, 40001},
                      {mac_of("spltap0"), {10, 99, 0, 1}, 5001});
    int rc = ok;
    if (!peer.connect(send)) {
        rc = no_handshake;
    } else if (!peer.send_stream(stream_bytes, stream_seed, 65536, send)) {
        rc = send_timeout;
    } else {
        peer.close(send);
    }
    if (rc != ok) {
        ::shutdown(ls, SHUT_RDWR);
        ::close(ls);
        server.detach();
        return rc;
    }
    server.join();
    ::close(ls);
    if (gro.stats().aggregates == 0) {
        return nothing_aggregated;
    }
    return server_result.load();
}

} // namespace

TEST(GroIntoKernel, AggregatesCarryAStreamIntactIntoARealTcpSocket) {
    if (!is_root()) {
        GTEST_SKIP()
            << "needs root (a network namespace and a TAP device); run scripts/test.sh as root";
    }
    const int rc = in_new_netns(run_kernel_receiver);
    EXPECT_EQ(rc, ok)
        << "10 no TAP, 11 no address, 12 no listen, 13 no handshake, 14 send "
           "timeout, 15 stream corrupted or short, 16 nothing aggregated, 200 no netns";
}

TEST(GroOnKernelCapture, CapturedKernelSegmentsAggregateAndSplitBackExactly) {
    gro_harness h;
    sp::pcap_reader r(SPLITNET_TEST_DATA_DIR "/kernel_traffic.pcap");
    std::vector<bytes> pkts;
    sp::pcap_record rec;
    while (r.next(rec)) {
        pkts.emplace_back(rec.data.begin(), rec.data.end());
    }
    so::gro_config cfg;
    cfg.hold_across_bursts = true;
    so::gro_engine<> gro(cfg, so::storage::chain(*h.pool));
    const auto out = h.run(gro, pkts, 32);
    EXPECT_GT(gro.stats().aggregates, 5U);
    EXPECT_GT(gro.stats().aggregated_segments, 100U);
    so::gso_segmenter gso(*h.pool);
    std::vector<bytes> back;
    std::vector<sp::frame> segs(64);
    for (const auto& f : out) {
        const auto res = gso.segment(f, segs);
        ASSERT_GT(res.segments, 0U);
        for (std::size_t i = 0; i < res.segments; ++i) {
            back.push_back(linear(segs[i]));
            h.pool->free(segs[i]);
        }
    }
    ASSERT_EQ(back.size(), pkts.size());
    auto a = pkts;
    auto b = back;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    EXPECT_TRUE(a == b) << "the kernel's own segments come back bit for bit";
}
