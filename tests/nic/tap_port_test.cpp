// The TAP port against a real kernel stack in a fresh network namespace: the kernel's TCP sends
// TSO frames that arrive with their virtio-net header (GSO type and size, partial checksum) and
// carry the stream intact; frames the port writes (plain, with a partial checksum, and a 64 KiB
// GSO frame) reach kernel sockets; set-up errors say what to do. Root only; skipped otherwise.
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <splitnet/nic/tap_port.hpp>
#include <splitnet/packet/checksum_offload.hpp>
#include <splitnet/packet/packet_builder.hpp>

#include "support/netns.hpp"
#include "support/tap_tcp_peer.hpp"

namespace sp = splitnet::packet;
namespace sn = splitnet::nic;
using namespace splitnet::test;

namespace {

enum result : int {
    ok = 0,
    no_address = 10,
    no_socket,
    no_handshake,
    stream_failed,
    no_tso,
    udp_failed,
};

const sp::mac_address peer_mac{{0x02, 0x53, 0x50, 0x4c, 0x00, 0x09}};
constexpr const char* tap_name = "spltap1";

bool configure(sn::tap_port&) {
    disable_ipv6(tap_name);
    return set_ipv4(tap_name, "10.98.0.1", "255.255.255.0") && set_up("lo") &&
           static_arp(tap_name, "10.98.0.2", peer_mac);
}

int kernel_sends_tso() {
    sp::buffer_pool pool({.frame_count = 4096});
    sn::tap_port tap(pool, {.name = tap_name});
    if (!configure(tap)) {
        return no_address;
    }
    const int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(5002);
    ::inet_pton(AF_INET, "10.98.0.1", &a.sin_addr);
    if (ls < 0 || ::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(ls, 1) != 0) {
        return no_socket;
    }
    constexpr std::uint64_t total = 2 << 20;
    constexpr std::uint32_t seed = 77;
    // The accepted connection (-2: accept failed), so that a failed exchange can unblock the
    // writer instead of leaving it in accept() or write() until ctest's timeout.
    std::atomic<int> conn{-1};
    std::thread writer([&] {
        const int c = ::accept(ls, nullptr, nullptr);
        conn = c < 0 ? -2 : c;
        if (c < 0) {
            return;
        }
        std::vector<std::uint8_t> buf(1 << 16);
        for (std::uint64_t sent = 0; sent < total;) {
            const std::size_t n = std::min<std::uint64_t>(buf.size(), total - sent);
            sp::fill_stream_bytes({buf.data(), n}, seed, sent);
            const ssize_t w = ::write(c, buf.data(), n);
            if (w <= 0) {
                break;
            }
            sent += static_cast<std::uint64_t>(w);
        }
        ::shutdown(c, SHUT_WR);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    });
    auto send = [&](std::vector<sp::frame>& frames) {
        std::size_t done = 0;
        while (done < frames.size()) {
            done += tap.tx_burst(std::span(frames).subspan(done));
        }
    };
    tap_tcp_peer peer(tap, {peer_mac, {10, 98, 0, 2}, 40002},
                      {mac_of(tap_name), {10, 98, 0, 1}, 5002});
    int rc = ok;
    std::uint64_t tso_frames = 0;
    bool metadata_ok = true;
    if (!peer.connect(send)) {
        rc = no_handshake;
    } else if (!peer.receive_stream(total, seed, send, [&](const sp::frame& f) {
                   if (f.offload.is_gso()) {
                       ++tso_frames;
                       metadata_ok &= f.offload.gso == sp::gso_type::tcpv4 &&
                                      f.offload.gso_size > 500 && f.offload.gso_size <= 1460 &&
                                      f.offload.csum == sp::csum_state::partial &&
                                      f.offload.csum_start == 34 && f.offload.hdr_len >= 54 &&
                                      f.pkt_len > 1514 && f.nb_segs > 1;
                   }
               })) {
        rc = stream_failed;
    }
    if (rc != ok) {
        ::shutdown(ls, SHUT_RDWR); // wakes an accept() that nothing will answer
        while (conn.load() == -1) {
            std::this_thread::yield();
        }
        if (conn.load() >= 0) {
            ::shutdown(conn.load(), SHUT_RDWR); // wakes a write() that nothing will read
        }
    }
    writer.join();
    if (conn.load() >= 0) {
        ::close(conn.load()); // here, not in the writer: the shutdown above may still use it
    }
    ::close(ls);
    if (rc == ok && (tso_frames == 0 || !metadata_ok)) {
        rc = no_tso;
    }
    return rc;
}

int port_sends_to_kernel() {
    sp::buffer_pool pool({.frame_count = 1024});
    sn::tap_port tap(pool, {.name = tap_name});
    if (!configure(tap)) {
        return no_address;
    }
    const int us = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(6000);
    ::inet_pton(AF_INET, "10.98.0.1", &a.sin_addr);
    timeval tv{2, 0};
    ::setsockopt(us, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (us < 0 || ::bind(us, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        return no_socket;
    }
    sp::l2_spec l2{peer_mac, mac_of(tap_name), 0, {}, sp::ether_type::vlan};
    sp::ip_spec ip;
    ip.src = {10, 98, 0, 2};
    ip.dst = {10, 98, 0, 1};
    sp::udp_spec udp{40000, 6000};
    for (int partial = 0; partial < 2; ++partial) {
        std::vector<std::uint8_t> payload(1200);
        sp::fill_stream_bytes(payload, 5, static_cast<std::uint64_t>(partial));
        sp::frame f;
        if (pool.alloc_burst({&f, 1}) != 1) {
            return udp_failed;
        }
        f.data_len = f.pkt_len =
            static_cast<std::uint32_t>(sp::build_udp({f.data, 1792}, l2, ip, udp, payload));
        if (partial == 1) {
            // The kernel completes NEEDS_CSUM frames: give it the pseudo-header sum only.
            sp::set_partial_checksum(f.bytes(), sp::parse(f.bytes()), f.offload);
        }
        if (tap.tx_burst({&f, 1}) != 1) {
            return udp_failed;
        }
        std::vector<std::uint8_t> got(2048);
        const ssize_t r = ::recv(us, got.data(), got.size(), 0);
        if (r != static_cast<ssize_t>(payload.size()) ||
            std::memcmp(got.data(), payload.data(), payload.size()) != 0) {
            return udp_failed + partial * 10;
        }
    }
    ::close(us);
    return tap.stats().tx_packets == 2 && tap.stats().tx_errors == 0 ? ok : udp_failed;
}

TEST(TapPort, KernelTcpSendsTsoFramesThatArriveWithTheirVirtioHeader) {
    if (!is_root()) {
        GTEST_SKIP() << "needs root (a network namespace and a TAP device)";
    }
    EXPECT_EQ(in_new_netns(kernel_sends_tso), ok)
        << "10 no address, 11 no socket, 12 no handshake, 13 stream broken or timed out, "
           "14 no TSO frame or wrong metadata, 200 no netns";
}

TEST(TapPort, FramesItWritesReachKernelSocketsWithOrWithoutPartialChecksums) {
    if (!is_root()) {
        GTEST_SKIP() << "needs root (a network namespace and a TAP device)";
    }
    EXPECT_EQ(in_new_netns(port_sends_to_kernel), ok)
        << "10 no address, 11 no socket, 15 plain frame lost, 25 partial-checksum frame lost";
}

TEST(TapPort, SetUpErrorsSayWhatIsWrong) {
    sp::buffer_pool pool({.frame_count = 64});
    try {
        sn::tap_port t(pool, {.name = "a-name-much-too-long-for-linux"});
        ADD_FAILURE() << "a 29-character name was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("longer than 15"), std::string::npos) << e.what();
    } catch (const std::system_error& e) {
        ADD_FAILURE() << e.what();
    }
    if (is_root()) {
        sp::buffer_pool tiny({.frame_count = 64, .frame_size = 2048, .headroom = 2000});
        EXPECT_EQ(in_new_netns([&] {
                      try {
                          sn::tap_port t(tiny, {.name = "spltap2"});
                      } catch (const std::invalid_argument&) {
                          return 0;
                      }
                      return 1;
                  }),
                  0)
            << "48-byte buffers cannot hold 64 KiB frames in 64 pieces";
    }
}

} // namespace
