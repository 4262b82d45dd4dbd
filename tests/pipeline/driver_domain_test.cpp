// The driver domain on an in-memory NIC with real netfronts connected over its control socket:
// every path (NIC to guest, guest to NIC, guest to guest, broadcast, unknown unicast), aggregates
// crossing the bridge whole and split only for the wire, backpressure with counted drops and no
// lost buffers, a guest leaving mid-stream while another keeps going, a guest that breaks the
// protocol removed without harm to the other, and every scheduler and moderation policy moving
// the same traffic.
#include <atomic>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "netif/raw_frontend.hpp"
#include "pipeline/pipeline_fixture.hpp"

namespace sp = splitnet::packet;
namespace sn = splitnet::netif;
namespace pl = splitnet::pipeline;
using namespace splitnet::test;

namespace {

constexpr std::uint64_t wire_mac = 0x02aa'0000'0001;
constexpr std::uint64_t guest_a = 0x0200'0000'000a;
constexpr std::uint64_t guest_b = 0x0200'0000'000b;

/// Receives from a guest queue into `got` (sequence numbers, -1 for a damaged frame).
std::size_t drain(sn::frontend& f, std::vector<std::int64_t>& got) {
    std::vector<sp::frame> burst(64);
    const std::size_t n = f.queue(0).rx_burst(burst);
    for (std::size_t i = 0; i < n; ++i) {
        got.push_back(check_numbered(bytes_of(burst[i])));
    }
    f.pool().free_burst({burst.data(), n});
    return n;
}

std::size_t collect(test_domain& d, std::vector<std::int64_t>& got) {
    std::vector<sp::frame> out(256);
    const std::size_t n = d.nic().collect(out);
    for (std::size_t i = 0; i < n; ++i) {
        got.push_back(check_numbered(bytes_of(out[i])));
    }
    d.pool().free_burst({out.data(), n});
    return n;
}

::testing::AssertionResult in_order(const std::vector<std::int64_t>& got, std::int64_t count) {
    if (static_cast<std::int64_t>(got.size()) != count) {
        return ::testing::AssertionFailure() << got.size() << " frames, not " << count;
    }
    for (std::int64_t i = 0; i < count; ++i) {
        if (got[static_cast<std::size_t>(i)] != i) {
            return ::testing::AssertionFailure()
                   << "frame " << i << " is " << got[static_cast<std::size_t>(i)]
                   << (got[static_cast<std::size_t>(i)] < 0 ? " (damaged)" : "");
        }
    }
    return ::testing::AssertionSuccess();
}

/// Lets the bridge learn a guest's MAC (a frame from it to the wire).
void announce(test_domain& d, sn::frontend& g, std::uint64_t mac) {
    std::vector<sp::frame> f{numbered(g.pool(), 999999, 64, wire_mac, mac)};
    ASSERT_EQ(g.queue(0).tx_burst(f), 1U);
    std::vector<std::int64_t> seen;
    ASSERT_TRUE(eventually([&] { return collect(d, seen) != 0; })) << "announce";
}

/// Injects `n` MSS segments of one TCP flow from the wire to `dst` as one burst (GRO merges
/// them); returns the payload bytes sent.
std::uint64_t inject_tcp_flow(test_domain& d, sp::mac_address dst, std::size_t n = 64) {
    sp::tcp_stream_config sc = sp::tcp_flow(0);
    sc.l2.dst = dst;
    sc.l2.src = sp::mac_address::from_u64(wire_mac);
    sp::tcp_stream stream(sc);
    std::vector<sp::frame> in(n);
    EXPECT_EQ(d.pool().alloc_burst(in), in.size());
    for (auto& f : in) {
        f.data_len = f.pkt_len = static_cast<std::uint32_t>(stream.next({f.data, 1792}));
    }
    EXPECT_EQ(d.nic().inject(in), in.size());
    return stream.bytes_sent();
}

/// A hand-made front end connected to the domain at `path`: the handshake done right, all
/// that follows up to the test.
void connect_raw(const std::string& path, std::unique_ptr<raw_frontend>& out) {
    auto ch = sn::control::channel::connect(path);
    sn::control::message hello;
    ASSERT_EQ(ch.receive(hello, std::chrono::seconds(5)).status, sn::control::receive_status::ok);
    std::string why;
    const auto h = sn::hello_info::read(hello, why);
    ASSERT_TRUE(h) << why;
    out = std::make_unique<raw_frontend>(
        raw_frontend_config{.self = h->frontend_id, .backend_id = h->backend_id});
    ASSERT_TRUE(ch.send(out->connect_message()));
    sn::control::message done;
    ASSERT_EQ(ch.receive(done, std::chrono::seconds(5)).status, sn::control::receive_status::ok);
    ASSERT_EQ(done.type(), sn::control::message_type::connected);
    out->set_control(std::move(ch));
}

class Paths : public ::testing::TestWithParam<std::tuple<pl::any_scheduler::kind, const char*>> {};

TEST_P(Paths, EveryPathCarriesNumberedFramesIntactAndInOrder) {
    pipeline_options o;
    o.sched = std::get<0>(GetParam());
    o.moderation = std::get<1>(GetParam());
    const std::string path = pipeline_socket("paths");
    auto d = make_domain(path, o);
    d->start();
    auto a = connect_guest(path, guest_a);
    auto b = connect_guest(path, guest_b, sn::copy_side::frontend);
    ASSERT_TRUE(eventually([&] { return d->guest_count() == 2; }));
    announce(*d, *a, guest_a);
    announce(*d, *b, guest_b);
    std::vector<std::int64_t> flooded; // B's announcement went to A too (the wire MAC is new)
    ASSERT_TRUE(eventually([&] { return drain(*a, flooded) != 0; }));

    constexpr std::int64_t n = 2000;
    // NIC -> guest A, at most a ring's worth in flight (the guest's TCP would pace the sender).
    std::vector<std::int64_t> at_a;
    std::int64_t injected = 0;
    EXPECT_TRUE(eventually([&] {
        drain(*a, at_a);
        if (injected < n && injected - static_cast<std::int64_t>(at_a.size()) < 128) {
            std::vector<sp::frame> in;
            for (std::int64_t k = injected; k < std::min(n, injected + 32); ++k) {
                in.push_back(numbered(d->pool(), static_cast<std::uint64_t>(k), 60 + k % 1400,
                                      guest_a, wire_mac));
            }
            const std::size_t took = d->nic().inject(in);
            d->pool().free_burst(std::span(in).subspan(took));
            injected += static_cast<std::int64_t>(took);
        }
        return at_a.size() >= static_cast<std::size_t>(n);
    })) << at_a.size()
        << "\n"
        << d->stats().text();
    EXPECT_TRUE(in_order(at_a, n));

    // Guest B -> NIC, and guest B -> guest A (A's MAC is known: no flood).
    std::vector<std::int64_t> at_wire, at_a2;
    std::int64_t sent = 0;
    EXPECT_TRUE(eventually([&] {
        if (sent < n) {
            std::vector<sp::frame> out;
            for (int k = 0; k < 16 && sent + static_cast<std::int64_t>(out.size()) < n; ++k) {
                const auto seq = static_cast<std::uint64_t>(sent) + out.size();
                out.push_back(numbered(b->pool(), seq, 100 + seq % 1300, wire_mac, guest_b));
            }
            const std::size_t took = b->queue(0).tx_burst(out);
            b->pool().free_burst(std::span(out).subspan(took));
            sent += static_cast<std::int64_t>(took);
        }
        collect(*d, at_wire);
        return at_wire.size() >= static_cast<std::size_t>(n);
    }));
    EXPECT_TRUE(in_order(at_wire, n));
    sent = 0;
    EXPECT_TRUE(eventually([&] {
        if (sent < n && sent - static_cast<std::int64_t>(at_a2.size()) < 128) {
            std::vector<sp::frame> out;
            for (int k = 0; k < 16 && sent + static_cast<std::int64_t>(out.size()) < n; ++k) {
                const auto seq = static_cast<std::uint64_t>(sent) + out.size();
                out.push_back(numbered(b->pool(), seq, 100 + seq % 1400, guest_a, guest_b));
            }
            const std::size_t took = b->queue(0).tx_burst(out);
            b->pool().free_burst(std::span(out).subspan(took));
            sent += static_cast<std::int64_t>(took);
        }
        drain(*a, at_a2);
        return at_a2.size() >= static_cast<std::size_t>(n);
    }));
    EXPECT_TRUE(in_order(at_a2, n));
    std::vector<std::int64_t> stray;
    collect(*d, stray);
    EXPECT_TRUE(stray.empty()) << "guest-to-guest traffic does not touch the NIC";

    const pl::report r = d->stats();
    EXPECT_EQ(r.guests.size(), 2U);
    EXPECT_EQ(r.drops(), 0U) << r.text();
    d->stop();
    a.reset();
    b.reset();
    d.reset();
}

std::string policy_name(
    const ::testing::TestParamInfo<std::tuple<pl::any_scheduler::kind, const char*>>& info) {
    static const char* const scheds[] = {"Credit", "CacheAware", "Stealing"};
    const std::string m = std::get<1>(info.param);
    return std::string(scheds[static_cast<int>(std::get<0>(info.param))]) +
           (m == "none"       ? "NoModeration"
            : m == "adaptive" ? "Adaptive"
                              : "Fixed");
}

INSTANTIATE_TEST_SUITE_P(Policies, Paths,
                         ::testing::Combine(::testing::Values(pl::any_scheduler::kind::credit,
                                                              pl::any_scheduler::kind::cache_aware,
                                                              pl::any_scheduler::kind::stealing),
                                            ::testing::Values("none", "fixed:32,50", "adaptive")),
                         policy_name);

TEST(Pipeline, BroadcastAndUnknownUnicastFloodToEveryOtherPort) {
    const std::string path = pipeline_socket("flood");
    auto d = make_domain(path);
    d->start();
    auto a = connect_guest(path, guest_a);
    auto b = connect_guest(path, guest_b);
    ASSERT_TRUE(eventually([&] { return d->guest_count() == 2; }));
    // From the wire: a broadcast reaches both guests.
    std::vector<sp::frame> in{numbered(d->pool(), 0, 200, 0xffff'ffff'ffff, wire_mac)};
    ASSERT_EQ(d->nic().inject(in), 1U);
    std::vector<std::int64_t> at_a, at_b;
    EXPECT_TRUE(eventually(
        [&] {
            drain(*a, at_a);
            drain(*b, at_b);
            return at_a.size() == 1 && at_b.size() == 1;
        },
        3))
        << d->stats().text();
    EXPECT_EQ(at_a, std::vector<std::int64_t>{0});
    EXPECT_EQ(at_b, std::vector<std::int64_t>{0});
    // From guest A to a MAC nobody announced: the wire and guest B both get it.
    std::vector<sp::frame> out{numbered(a->pool(), 1, 300, 0x0200'0000'00ee, guest_a)};
    ASSERT_EQ(a->queue(0).tx_burst(out), 1U);
    std::vector<std::int64_t> at_wire;
    at_b.clear();
    EXPECT_TRUE(eventually([&] {
        collect(*d, at_wire);
        drain(*b, at_b);
        return at_wire.size() == 1 && at_b.size() == 1;
    }));
    EXPECT_EQ(at_wire, std::vector<std::int64_t>{1});
    EXPECT_EQ(at_b, std::vector<std::int64_t>{1});
    at_a.clear();
    drain(*a, at_a);
    EXPECT_TRUE(at_a.empty()) << "never back to the ingress port";
    const auto r = d->stats();
    EXPECT_EQ(r.bridge.tx_flooded, 2U);
    d->stop();
}

TEST(Pipeline, AGuestCannotSendFromAnotherMac) {
    const std::string path = pipeline_socket("spoof");
    auto d = make_domain(path);
    d->start();
    auto a = connect_guest(path, guest_a);
    ASSERT_TRUE(eventually([&] { return d->guest_count() == 1; }));
    std::vector<sp::frame> out{numbered(a->pool(), 7, 300, wire_mac, guest_b)};
    ASSERT_EQ(a->queue(0).tx_burst(out), 1U);
    ASSERT_TRUE(eventually([&] { return d->stats().bridge.rx_drop_spoofed == 1; }));
    std::vector<std::int64_t> at_wire;
    collect(*d, at_wire);
    EXPECT_TRUE(at_wire.empty());
    d->stop();
}

TEST(Pipeline, AggregatesCrossWholeToAGsoGuestAndSplitForTheWire) {
    const std::string path = pipeline_socket("gro");
    auto d = make_domain(path);
    d->start();
    auto a = connect_guest(path, guest_a);
    ASSERT_TRUE(eventually([&] { return d->guest_count() == 1; }));
    announce(*d, *a, guest_a);
    // 64 MSS segments of one TCP flow from the wire, injected as one burst: GRO merges them.
    const std::uint64_t sent = inject_tcp_flow(*d, sp::mac_address::from_u64(guest_a));
    std::vector<sp::frame> burst(64);
    std::size_t frames = 0, gso = 0;
    std::uint64_t payload = 0;
    EXPECT_TRUE(eventually([&] {
        const std::size_t n = a->queue(0).rx_burst(burst);
        for (std::size_t i = 0; i < n; ++i) {
            ++frames;
            gso += burst[i].offload.is_gso() ? 1 : 0;
            const auto b = bytes_of(burst[i]);
            const auto p = sp::parse(b);
            payload += p.payload_len();
        }
        a->pool().free_burst({burst.data(), n});
        return payload == sent;
    }));
    EXPECT_LT(frames, 8U) << "aggregated";
    EXPECT_GE(gso, 1U);
    // Now the guest sends a 60 KB TSO frame to the wire: the NIC gets MTU-sized segments.
    sp::tcp_stream_config back = sp::tcp_flow(1);
    back.l2.src = sp::mac_address::from_u64(guest_a);
    back.l2.dst = sp::mac_address::from_u64(wire_mac);
    std::vector<std::uint8_t> payload_bytes(60000);
    sp::fill_stream_bytes(payload_bytes, 3, 0);
    std::vector<std::uint8_t> pkt(61000);
    sp::tcp_spec tcp;
    tcp.seq = 5;
    const std::size_t len = sp::build_tcp(pkt, back.l2, back.ip, tcp, payload_bytes);
    pkt.resize(len);
    sp::frame tso = make_chain(a->pool(), pkt);
    const auto parsed = sp::parse(tso.bytes(), tso.pkt_len);
    sp::set_partial_checksum(tso.bytes(), parsed, tso.offload);
    tso.offload.gso = sp::gso_type::tcpv4;
    tso.offload.gso_size = 1448;
    ASSERT_TRUE(sp::complete_offload_metadata(parsed, tso.offload));
    std::vector<sp::frame> out{tso};
    ASSERT_EQ(a->queue(0).tx_burst(out), 1U);
    std::vector<sp::frame> wire(256);
    std::size_t segs = 0;
    std::uint64_t wire_payload = 0;
    bool valid = true;
    EXPECT_TRUE(eventually([&] {
        const std::size_t n = d->nic().collect(wire);
        for (std::size_t i = 0; i < n; ++i) {
            const auto b = bytes_of(wire[i]);
            const auto p = sp::parse(b);
            valid &=
                b.size() <= 1514 && sp::l4_checksum_ok(b, p) && sp::ipv4_header_checksum_ok(b, p);
            wire_payload += p.payload_len();
            ++segs;
        }
        d->pool().free_burst({wire.data(), n});
        return wire_payload >= 60000;
    }));
    EXPECT_EQ(segs, (60000U + 1447U) / 1448U);
    EXPECT_TRUE(valid) << "MTU-sized, checksums complete";
    d->stop();
}

TEST(Pipeline, BackpressureDropsAreCountedAndEveryBufferComesBack) {
    pipeline_options o;
    o.rx_queue_len = 32;
    const std::string path = pipeline_socket("bp");
    auto d = make_domain(path, o);
    d->start();
    auto a = connect_guest(path, guest_a);
    ASSERT_TRUE(eventually([&] { return d->guest_count() == 1; }));
    announce(*d, *a, guest_a);
    // The guest does not read: its ring fills (256 slots), then the backend queue (32), then
    // the rest is dropped and counted.
    std::uint64_t injected = 0;
    for (int i = 0; i < 40; ++i) {
        std::vector<sp::frame> in;
        for (int k = 0; k < 32; ++k) {
            in.push_back(numbered(d->pool(), injected + static_cast<std::uint64_t>(k), 100, guest_a,
                                  wire_mac));
        }
        std::size_t done = 0;
        ASSERT_TRUE(eventually([&] {
            done += d->nic().inject(std::span(in).subspan(done));
            return done == in.size();
        }));
        injected += in.size();
    }
    ASSERT_TRUE(eventually([&] {
        const auto r = d->stats();
        return r.guests.size() == 1 &&
               r.guests[0].queue.rx_packets + r.guests[0].queue_drops + r.guests[0].queued ==
                   injected;
    }));
    const auto r = d->stats();
    EXPECT_GT(r.guests[0].queue_drops, 0U);
    std::vector<std::int64_t> got;
    while (drain(*a, got) != 0) {
    }
    EXPECT_TRUE(eventually([&] {
        drain(*a, got);
        return got.size() + d->stats().guests[0].queue_drops == injected;
    }));
    d->stop();
    a.reset();
    const auto cap = d->pool().capacity();
    auto* pool = &d->pool();
    d.reset(); // guests, queues, GRO, egress: everything returns its buffers before the pool goes
    (void)pool;
    (void)cap;
}

TEST(Pipeline, AGuestLeavingMidStreamLeavesTheOtherRunningAndTheDomainWhole) {
    const std::string path = pipeline_socket("leave");
    auto d = make_domain(path);
    d->start();
    auto a = connect_guest(path, guest_a);
    auto b = connect_guest(path, guest_b);
    ASSERT_TRUE(eventually([&] { return d->guest_count() == 2; }));
    announce(*d, *a, guest_a);
    announce(*d, *b, guest_b);
    std::uint64_t to_b = 0;
    std::vector<std::int64_t> at_b;
    // Once A is gone its MAC is unknown: frames for it flood to B, which ignores them.
    const auto own = [&] {
        std::vector<std::int64_t> v;
        for (const auto x : at_b) {
            if (x < 999'999) { // not A's frames, nor A's announcement flooded to B
                v.push_back(x);
            }
        }
        return v;
    };
    // Frames for both guests, at most 64 of B's in flight; A disappears halfway.
    for (int round = 0; round < 200; ++round) {
        std::vector<sp::frame> in;
        for (int k = 0; k < 16; ++k) {
            in.push_back(numbered(d->pool(), to_b++, 500, guest_b, wire_mac));
            in.push_back(numbered(d->pool(), 1'000'000, 500, guest_a, wire_mac));
        }
        std::size_t done = 0;
        ASSERT_TRUE(eventually([&] {
            drain(*b, at_b);
            if (a) {
                std::vector<std::int64_t> ignore;
                drain(*a, ignore);
            }
            if (to_b - own().size() > 64) {
                return false;
            }
            done += d->nic().inject(std::span(in).subspan(done));
            return done == in.size();
        }));
        if (round == 100) {
            a.reset(); // the guest exits
        }
    }
    EXPECT_TRUE(eventually([&] {
        drain(*b, at_b);
        return own().size() == to_b;
    }));
    EXPECT_TRUE(in_order(own(), static_cast<std::int64_t>(to_b)));
    ASSERT_TRUE(eventually([&] { return d->guest_count() == 1; }));
    const auto r = d->stats();
    ASSERT_EQ(r.departed.size(), 1U);
    EXPECT_NE(r.departed[0].reason.find("closed"), std::string::npos) << r.departed[0].reason;
    d->stop();
}

TEST(Pipeline, AGuestThatBreaksTheProtocolIsRemovedWithoutHarmToTheOther) {
    const std::string path = pipeline_socket("evil");
    auto d = make_domain(path);
    d->start();
    auto good = connect_guest(path, guest_b);
    ASSERT_TRUE(eventually([&] { return d->guest_count() == 1; }));
    announce(*d, *good, guest_b);
    // A hand-made front end: the handshake done right, then a TX request that crosses a page.
    std::unique_ptr<raw_frontend> evil;
    ASSERT_NO_FATAL_FAILURE(connect_raw(path, evil));
    ASSERT_TRUE(eventually([&] { return d->guest_count() == 2; }));
    const auto ref = evil->grant_page(0, true);
    const sn::tx_request bad{ref, 4000, 0, 1, 200}; // 4000 + 200 > 4096
    ASSERT_EQ(evil->send_tx({&bad, 1}), 1U);
    EXPECT_TRUE(eventually([&] { return d->guest_count() == 1; })) << "the evil guest is gone";
    EXPECT_NE(evil->backend_error(std::chrono::seconds(2)).find("crosses a page"),
              std::string::npos);
    // The good guest never noticed.
    std::uint64_t sent = 0;
    std::vector<std::int64_t> at_good;
    EXPECT_TRUE(eventually([&] {
        if (sent < 100 && sent - at_good.size() < 32) {
            std::vector<sp::frame> in{numbered(d->pool(), sent, 200, guest_b, wire_mac)};
            sent += d->nic().inject(in);
        }
        drain(*good, at_good);
        return at_good.size() >= 100;
    }));
    EXPECT_TRUE(in_order(at_good, 100));
    const auto r = d->stats();
    ASSERT_EQ(r.departed.size(), 1U);
    EXPECT_NE(r.departed[0].reason.find("crosses a page"), std::string::npos)
        << r.departed[0].reason;
    d->stop();
}

// A guest that keeps fewer RX slots posted than its next frame needs (one, against an
// aggregate's several) must not keep a worker busy re-polling them: that would be a guest
// taking CPU from every other one for free. The worker sleeps until the guest posts enough.
TEST(Pipeline, AGuestPostingTooFewSlotsDoesNotKeepAWorkerBusy) {
    const std::string path = pipeline_socket("fewslots");
    auto d = make_domain(path, {.workers = 1});
    d->start();
    std::unique_ptr<raw_frontend> stingy; // asks for sg and GSO: takes aggregates whole
    ASSERT_NO_FATAL_FAILURE(connect_raw(path, stingy));
    ASSERT_TRUE(eventually([&] { return d->guest_count() == 1; }));
    const sn::rx_request one{0, 0, stingy->grant_page(0, false)};
    ASSERT_EQ(stingy->post_rx({&one, 1}), 1U);
    // 64 segments of one TCP flow to the guest (flooded: its MAC is not learned): aggregates
    // of several pages each.
    (void)inject_tcp_flow(*d, stingy->connect_info().mac);
    ASSERT_TRUE(eventually([&] { return d->stats().guests.at(0).queue.rx_no_requests != 0; }))
        << "the aggregate waits for slots";
    // Settled: count what the worker does over a while with nothing it can do.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto before = d->stats().sched.picks;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto picks = d->stats().sched.picks - before;
    EXPECT_LT(picks, 1000U) << "the worker re-polls a guest that cannot take anything";
    const auto r = d->stats();
    EXPECT_EQ(r.guests.at(0).queue.rx_packets, 0U);
    EXPECT_NE(r.guests.at(0).queued, 0U) << "the frames wait, counted, until the guest posts";
    d->stop();
}

} // namespace

namespace {
/// An in-memory NIC that also reports drops of its own, as an AF_XDP socket does through
/// XDP_STATISTICS: the report must count them (the frames never reached the driver domain).
/// (The counters' names are afxdp_kernel_stats'; that header needs libxdp, this test does not.)
class dropping_port : public splitnet::nic::memory_port {
public:
    struct kernel_counters {
        std::uint64_t rx_ring_full = 0;
        std::uint64_t rx_dropped = 0;
        std::uint64_t rx_fill_ring_empty = 0;
    };
    using memory_port::memory_port;
    [[nodiscard]] kernel_counters kernel_stats() const noexcept {
        kernel_counters k;
        k.rx_ring_full = 3;
        k.rx_dropped = 2;
        k.rx_fill_ring_empty = 2; // the same drops as rx_dropped, seen from the fill ring
        return k;
    }
};
} // namespace

TEST(Pipeline, DropsTheNicReportsAreCountedInTheReport) {
    pl::driver_domain_config cfg;
    cfg.workers = 1;
    cfg.nic_queues = 2;
    cfg.control_path = pipeline_socket("nicmissed");
    cfg.memory.populate = false;
    cfg.memory.pool.frame_count = 1024;
    pl::driver_domain<dropping_port, runtime_policies> d(
        cfg,
        [](sp::buffer_pool& p, std::uint32_t) {
            return std::make_unique<dropping_port>(p, splitnet::nic::memory_port_config{});
        },
        pl::any_moderation{},
        [](const splitnet::sched::credit_config& c) {
            return std::make_unique<pl::any_scheduler>(c, pl::any_scheduler::kind::credit);
        });
    d.start();
    const pl::report r = d.stats();
    EXPECT_EQ(r.nic_missed, 2U * (3 + 2)) << "two queues, each 3 ring-full and 2 other drops";
    EXPECT_EQ(r.drops(), r.nic_missed) << r.text();
    EXPECT_NE(r.text().find("missed (dropped by the NIC) 10"), std::string::npos) << r.text();
    EXPECT_NE(r.json().find("\"missed\":10"), std::string::npos) << r.json();
    d.stop();
}

TEST(Pipeline, PinningAWorkerToACpuItCannotHaveFailsAndSaysWhich) {
    const std::string path = pipeline_socket("pin");
    EXPECT_THROW(make_domain(path, {.worker_cpus = {-1}}), std::invalid_argument);
    // No machine here has that CPU.
    auto d = make_domain(path, {.workers = 1, .worker_cpus = {CPU_SETSIZE - 1}});
    try {
        d->start();
        ADD_FAILURE() << "start() pinned a worker to CPU " << CPU_SETSIZE - 1;
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("cannot pin worker 0 to CPU"), std::string::npos)
            << e.what();
    }
    d.reset(); // stopped cleanly by the failed start
}
