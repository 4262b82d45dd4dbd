// A malicious front end against a netif TX back end: it moves the producer index at random
// (backwards, past the ring), rewrites requests while the back end reads them, and floods
// notifications. The back end must stay memory-safe (ASan), keep every copy it validated, never
// answer more than it consumed, report the broken ring with a reason, and a second, honest
// front end served by the same thread must be unaffected.
#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/event/eventfd_channel.hpp>
#include <splitnet/netif/rings.hpp>
#include <splitnet/netif/tx_packet.hpp>

namespace nf = splitnet::netif;
namespace sr = splitnet::ring;
namespace se = splitnet::event;

namespace {

struct alignas(4096) page {
    std::byte bytes[4096];
};

/// One netback-like service pass: decode packets from copies, answer each, push. Returns false
/// once the ring is broken or the front end committed a fatal protocol error (disconnect).
bool serve_tx(nf::tx_back_ring<>& back, std::uint64_t& packets, std::uint64_t& drops) {
    std::vector<nf::tx_request> reqs(64);
    std::vector<nf::tx_response> rsps(64);
    for (;;) {
        const std::size_t n = back.peek_requests(reqs);
        if (back.broken()) {
            return false;
        }
        if (n == 0) {
            return true;
        }
        nf::tx_packet pkt;
        const auto res = nf::decode_tx_packet(std::span(reqs).first(n), pkt);
        if (res.verdict == nf::tx_verdict::fatal ||
            (res.verdict == nf::tx_verdict::incomplete && n == reqs.size())) {
            return false;
        }
        if (res.verdict == nf::tx_verdict::incomplete) {
            // The rest may not be published yet; an honest front end publishes whole packets.
            if (back.poll_requests() == n) {
                return false; // cut-off packet: fatal (netback: "exceeds this limit")
            }
            continue;
        }
        back.consume_requests(pkt.requests);
        const auto status = res.verdict == nf::tx_verdict::ok ? nf::rsp_okay : nf::rsp_error;
        (res.verdict == nf::tx_verdict::ok ? packets : drops)++;
        const std::size_t k = nf::make_tx_responses(pkt, status, rsps);
        const std::size_t put = back.put_responses(std::span(rsps).first(k));
        EXPECT_EQ(put, k);
        EXPECT_LE(back.unanswered(), back.size());
        (void)back.push_responses();
    }
}

void send_packet(nf::tx_front_ring<>& front, std::uint16_t id) {
    const nf::tx_fragment frags[] = {{id, 0, 600, id},
                                     {id + 1U, 100, 400, static_cast<std::uint16_t>(id + 1)}};
    nf::tx_request out[4];
    nf::tx_encode_error err{};
    const std::size_t n = nf::encode_tx_packet(frags, {}, 0, out, err);
    ASSERT_EQ(n, 2U);
    ASSERT_EQ(front.put_requests(std::span(out).first(n)), n);
    (void)front.push_requests();
}

} // namespace

TEST(HostilePeer, ScribblingFrontEndBreaksOnlyItsOwnRing) {
    page evil_mem{}, good_mem{};
    nf::tx_front_ring<> evil_front(evil_mem.bytes);
    nf::tx_back_ring<> evil_back(evil_mem.bytes);
    nf::tx_front_ring<> good_front(good_mem.bytes);
    nf::tx_back_ring<> good_back(good_mem.bytes);

    std::atomic<bool> stop{false};
    std::thread attacker([&] {
        std::mt19937 rng(1);
        auto* words = reinterpret_cast<std::uint32_t*>(evil_mem.bytes);
        while (!stop.load(std::memory_order_relaxed)) {
            // Rewrite a request slot or an index, as another process could at any moment.
            const std::size_t w = rng() % 32 == 0 ? 0 : 16 + rng() % (4096 / 4 - 16);
            std::atomic_ref<std::uint32_t>(words[w]).store(static_cast<std::uint32_t>(rng()),
                                                           std::memory_order_relaxed);
        }
    });
    std::uint64_t good_packets = 0, good_drops = 0, evil_packets = 0, evil_drops = 0;
    bool evil_alive = true;
    std::vector<nf::tx_response> rsps(64);
    for (std::uint16_t i = 0; i < 2000; ++i) {
        send_packet(good_front, static_cast<std::uint16_t>(i * 2));
        ASSERT_TRUE(serve_tx(good_back, good_packets, good_drops));
        (void)good_front.get_responses(rsps);
        if (i % 64 == 63) {
            // Besides the racing attacker, a deterministic one: the request producer index jumps
            // (the scheduler may starve the attacker thread on a busy machine).
            std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(evil_mem.bytes))
                .store(0x80000000U + i, std::memory_order_relaxed);
        }
        if (evil_alive) {
            evil_alive = serve_tx(evil_back, evil_packets, evil_drops);
        }
    }
    stop = true;
    attacker.join();
    EXPECT_EQ(good_packets, 2000U);
    EXPECT_EQ(good_drops, 0U);
    EXPECT_FALSE(good_back.broken());
    EXPECT_FALSE(evil_alive) << "random scribbling should have broken the protocol";
    if (evil_back.broken()) {
        EXPECT_FALSE(evil_back.fault().describe().empty());
    }
}

TEST(HostilePeer, NotificationStormCostsOneWakeup) {
    se::eventfd_channel ch;
    std::thread storm([&] {
        for (int i = 0; i < 200000; ++i) {
            ch.notify();
        }
    });
    storm.join();
    EXPECT_TRUE(ch.wait(std::chrono::milliseconds(100)));
    EXPECT_FALSE(ch.try_consume()) << "the whole storm was absorbed by one read";
    EXPECT_EQ(ch.stats().wakeups, 1U);
}

TEST(HostilePeer, EveryDecodedPacketRespectsTheLimits) {
    // Random request streams: the decoder must never report more fragments than slots it used,
    // never a fragment crossing a page in an ok packet, never a total above 65535.
    std::mt19937 rng(3);
    std::vector<nf::tx_request> reqs(40);
    for (int round = 0; round < 200000; ++round) {
        const std::size_t n = 1 + rng() % reqs.size();
        for (std::size_t i = 0; i < n; ++i) {
            reqs[i] = {static_cast<nf::grant_ref>(rng()), static_cast<std::uint16_t>(rng() % 4200),
                       static_cast<std::uint16_t>(rng() & 0xf), static_cast<std::uint16_t>(rng()),
                       static_cast<std::uint16_t>(rng() % 5000)};
        }
        nf::tx_packet p;
        const auto res = nf::decode_tx_packet(std::span(reqs).first(n), p);
        if (res.verdict == nf::tx_verdict::incomplete) {
            continue;
        }
        ASSERT_LE(p.requests, n);
        if (res.verdict == nf::tx_verdict::ok) {
            ASSERT_LE(p.nfrags, p.requests);
            std::uint32_t sum = 0;
            for (std::uint32_t f = 0; f < p.nfrags; ++f) {
                ASSERT_LE(p.frags[f].offset + p.frags[f].size, 4096U);
                sum += p.frags[f].size;
            }
            ASSERT_EQ(sum, p.total_size);
            ASSERT_LE(p.nfrags, 18U);
        }
    }
}
