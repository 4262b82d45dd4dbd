// Hostile front ends against a real netback (DESIGN.md principle 6: the other side is untrusted).
//
// Every test runs a driver domain (one backend_memory pool) serving an honest netfront over its
// own backend, which keeps moving numbered frames both ways (content and order checked), while a
// raw front end (raw_frontend.hpp) connected to the same driver domain writes whatever it likes
// into its rings, its grant table and its descriptors. Each case checks what the back end does
// (a counted per-packet drop answered with rsp_error, or a fatal fault that breaks the queue and
// makes poll_control() disconnect the front end with a reason naming the fault), that the honest
// front end got all its frames intact, and, at teardown, that every buffer of the driver
// domain's pool came back (available() == capacity(), no double or foreign free).
//
// Tests named *KnownBug* show a defect of the library and fail until it is fixed (the report
// that came with this file has the analysis and a patch).
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netif/endpoint_fixture.hpp"
#include "netif/raw_frontend.hpp"

namespace sn = splitnet::netif;
namespace sp = splitnet::packet;
namespace sg = splitnet::grant;
namespace st = splitnet::test;
using st::bytes_of;
using st::check_numbered;
using st::numbered_frame;

namespace {

using none = splitnet::coalesce::moderation::none;
using driver_domain = st::driver_domain_memory<none>;
using backend = sn::backend<none>;
using backend_queue = sn::backend_queue<none>;
using raw_layout = st::raw_frontend::layout;

splitnet::coalesce::time_point now() {
    return splitnet::coalesce::time_point(std::chrono::steady_clock::now().time_since_epoch());
}

/// mt19937 with 32-bit results (its result_type is wider on LP64).
struct rng32 {
    explicit rng32(std::uint32_t seed) : g(seed) {}
    std::uint32_t operator()() { return static_cast<std::uint32_t>(g()); }
    std::mt19937 g;
};

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

/// A frame a back end handed out respects netif's limits and the pool's layout: 1..65535
/// bytes, segments whose lengths add up to pkt_len, each inside a buffer of `pool`.
::testing::AssertionResult frame_ok(const sp::frame& f, const sp::buffer_pool& pool) {
    if (f.pkt_len == 0 || f.pkt_len > sn::max_packet_size) {
        return ::testing::AssertionFailure() << "pkt_len " << f.pkt_len << " is outside 1..65535";
    }
    std::uint64_t sum = 0;
    std::uint32_t segs = 0;
    for (const sp::frame* s = &f; s != nullptr; s = s->next) {
        if (++segs > 64) {
            return ::testing::AssertionFailure() << "a chain of more than 64 segments (a loop?)";
        }
        if (s->buffer == sp::no_buffer || !pool.owns(s->buffer) ||
            s->buffer % pool.frame_size() != 0) {
            return ::testing::AssertionFailure()
                   << "segment " << segs << " names buffer " << s->buffer
                   << ", not a buffer of the driver domain's pool";
        }
        const auto lo = reinterpret_cast<std::uintptr_t>(pool.base() + s->buffer);
        const auto at = reinterpret_cast<std::uintptr_t>(s->data);
        if (at < lo || at + s->data_len > lo + pool.frame_size()) {
            return ::testing::AssertionFailure()
                   << "segment " << segs << " lies outside its buffer";
        }
        sum += s->data_len;
    }
    if (sum != f.pkt_len) {
        return ::testing::AssertionFailure()
               << "the segments hold " << sum << " bytes, pkt_len says " << f.pkt_len;
    }
    if (segs != f.nb_segs) {
        return ::testing::AssertionFailure()
               << "nb_segs says " << f.nb_segs << ", the chain has " << segs;
    }
    return ::testing::AssertionSuccess();
}

// ---- the honest front end ----------------------------------------------------------------------

/// An honest netfront on its own backend of the driver domain, moving `total` numbered frames
/// each way, a few per step, checking every one that arrives (content and order).
class honest_peer {
public:
    honest_peer(driver_domain& dd, std::uint64_t total)
        : dd_(dd), total_(total), pair_(st::connect_pair(dd.params, config(), 1)) {}

    static sn::frontend_config config() {
        sn::frontend_config c;
        c.request.rx_copy = sn::copy_side::backend;
        c.mtu = 9000;
        c.buffers_per_queue = 512;
        return c;
    }

    [[nodiscard]] bool done() const { return got_up_ == total_ && got_down_ == total_; }
    [[nodiscard]] backend& back() { return *pair_.back; }

    /// One round: up to 4 frames guest -> driver domain and 4 the other way.
    void step() {
        if (failed_ || done()) {
            return;
        }
        auto& bq = pair_.back->queue(0);
        auto& fq = pair_.front->queue(0);
        std::vector<sp::frame> up;
        for (int i = 0; i < 4 && sent_up_ + up.size() < total_; ++i) {
            up.push_back(st::make_chain(pair_.front->pool(),
                                        numbered_frame(sent_up_ + up.size(), size_(rng_))));
        }
        const std::size_t took = fq.tx_burst(up);
        pair_.front->pool().free_burst({up.data() + took, up.size() - took});
        sent_up_ += took;
        std::array<sp::frame, 32> burst;
        const std::size_t n = bq.rx_burst(burst);
        for (std::size_t i = 0; i < n; ++i) {
            check(burst[i], dd_.mem.pool(), got_up_++, "guest -> driver domain");
        }
        dd_.mem.pool().free_burst({burst.data(), n});

        std::vector<sp::frame> down;
        for (int i = 0; i < 4 && sent_down_ + down.size() < total_; ++i) {
            down.push_back(st::make_chain(dd_.mem.pool(),
                                          numbered_frame(sent_down_ + down.size(), size_(rng_))));
        }
        const std::size_t queued = bq.tx_burst(down);
        dd_.mem.pool().free_burst({down.data() + queued, down.size() - queued});
        sent_down_ += queued;
        bq.deliver(now());
        const std::size_t m = fq.rx_burst(burst);
        for (std::size_t i = 0; i < m; ++i) {
            check(burst[i], pair_.front->pool(), got_down_++, "driver domain -> guest");
        }
        pair_.front->pool().free_burst({burst.data(), m});
        if (!pair_.back->poll_control()) {
            fail("the honest front end was disconnected: " + pair_.back->disconnect_reason());
        }
    }

    /// Runs until every frame has arrived both ways (bounded), then leaves.
    void finish() {
        for (int i = 0; i < 20000 && !failed_ && !done(); ++i) {
            step();
        }
        EXPECT_TRUE(done()) << "the honest front end's traffic did not complete: up " << got_up_
                            << "/" << total_ << ", down " << got_down_ << "/" << total_ << "; "
                            << pair_.back->queue(0).fault() << " | "
                            << pair_.front->queue(0).fault();
        const auto& s = pair_.back->queue(0).queue_stats();
        EXPECT_EQ(s.tx_dropped + s.tx_copy_failed + s.rx_dropped + s.rx_copy_failed, 0U)
            << "the honest front end lost nothing to the hostile one";
        pair_.front.reset();
        pair_.back.reset();
    }

private:
    void check(const sp::frame& f, const sp::buffer_pool& pool, std::uint64_t want,
               const char* way) {
        if (const auto ok = frame_ok(f, pool); !ok) {
            fail(std::string(way) + ": " + ok.message());
        } else if (check_numbered(bytes_of(f)) != static_cast<std::int64_t>(want)) {
            fail(std::string(way) + ": frame " + std::to_string(want) +
                 " arrived damaged or out of order");
        }
    }
    void fail(const std::string& why) {
        failed_ = true;
        ADD_FAILURE() << "honest front end: " << why;
    }

    driver_domain& dd_;
    std::uint64_t total_;
    st::endpoint_pair<none> pair_;
    std::mt19937 rng_{11};
    std::uniform_int_distribution<std::size_t> size_{60, 6000};
    std::uint64_t sent_up_ = 0, got_up_ = 0, sent_down_ = 0, got_down_ = 0;
    bool failed_ = false;
};

// ---- the hostile front end -----------------------------------------------------------------

/// A raw front end and the backend the driver domain built for it.
struct session {
    explicit session(driver_domain& dd, const st::raw_frontend_config& cfg = {}) : raw(cfg) {
        auto r = st::accept_raw(dd.params, raw);
        back = std::move(r.back);
        why = r.why;
    }
    [[nodiscard]] backend_queue& q() { return back->queue(0); }

    st::raw_frontend raw; // declared first: the backend goes first
    std::unique_ptr<backend> back;
    std::string why;
};

/// Writes numbered frame `seq` (`len` bytes) at the start of data page `page`, grants the page
/// read-only to the back end and returns the one request that sends it.
sn::tx_request numbered_request(st::raw_frontend& raw, std::uint32_t page, std::uint64_t seq,
                                std::uint16_t len, std::uint16_t id) {
    const auto bytes = numbered_frame(seq, len);
    std::memcpy(raw.data(page), bytes.data(), bytes.size());
    return {raw.grant_page(page, true), 0, 0, id, static_cast<std::uint16_t>(bytes.size())};
}

/// Numbered frame `seq` in `n` fragments of 50 bytes laid end to end in data page `page`.
std::vector<sn::tx_request> fragmented(st::raw_frontend& raw, std::uint32_t page, std::uint64_t seq,
                                       std::uint32_t n, std::uint16_t id0) {
    const auto bytes = numbered_frame(seq, std::size_t{n} * 50);
    std::memcpy(raw.data(page), bytes.data(), bytes.size());
    const sg::grant_ref ref = raw.grant_page(page, true);
    std::vector<sn::tx_fragment> frags;
    for (std::uint32_t i = 0; i < n; ++i) {
        frags.push_back(
            {ref, static_cast<std::uint16_t>(i * 50), 50, static_cast<std::uint16_t>(id0 + i)});
    }
    std::vector<sn::tx_request> out(n);
    sn::tx_encode_error err{};
    out.resize(sn::encode_tx_packet(frags, {}, 0, out, err, 64));
    return out;
}

/// rx_burst on a queue; every frame is checked against netif's limits (the caller frees them).
std::vector<sp::frame> pull(backend_queue& q, const sp::buffer_pool& pool, std::size_t max = 64) {
    std::vector<sp::frame> out(max);
    out.resize(q.rx_burst(out));
    for (const auto& f : out) {
        EXPECT_TRUE(frame_ok(f, pool));
    }
    return out;
}

/// How long a call that does not block may take before it counts as hung: microseconds of work,
/// with room for a descheduled thread on a loaded two-vCPU machine under a sanitizer (a passing
/// call returns at once; only a hung one waits this long).
constexpr std::chrono::milliseconds hang_limit{2000};

/// Runs `work` on a thread; if it has not finished after `limit`, calls `unblock` until it
/// does and returns false (the work hung on something the front end controls).
bool finishes_within(const std::function<void()>& work, std::chrono::milliseconds limit,
                     const std::function<void()>& unblock) {
    std::atomic<bool> done{false};
    std::thread t([&] {
        work();
        done = true;
    });
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    const bool in_time = done;
    for (int i = 0; i < 500 && !done; ++i) {
        unblock();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    t.join();
    return in_time;
}

class HostileFrontend : public ::testing::Test {
protected:
    static constexpr std::uint64_t honest_frames = 150;

    void SetUp() override { honest_.emplace(dd_, honest_frames); }
    void TearDown() override {
        if (honest_) {
            honest_->finish();
            honest_.reset();
        }
        auto& pool = dd_.mem.pool();
        EXPECT_EQ(pool.available(), pool.capacity()) << "every driver-domain buffer came back";
        EXPECT_EQ(pool.stats().double_free, 0U);
        EXPECT_EQ(pool.stats().foreign_free, 0U);
    }
    void honest(int steps) {
        for (int i = 0; i < steps; ++i) {
            honest_->step();
        }
    }
    [[nodiscard]] sp::buffer_pool& pool() { return dd_.mem.pool(); }

    /// Queues `n` numbered frames of `len` bytes for a hostile queue (all must fit).
    void queue_frames(backend_queue& q, std::uint64_t first_seq, std::size_t n, std::size_t len) {
        std::vector<sp::frame> in;
        for (std::size_t i = 0; i < n; ++i) {
            in.push_back(st::make_chain(pool(), numbered_frame(first_seq + i, len)));
        }
        const std::size_t took = q.tx_burst(in);
        EXPECT_EQ(took, n);
        pool().free_burst({in.data() + took, in.size() - took});
    }

    driver_domain dd_{4096};
    std::optional<honest_peer> honest_;
};

// ---- bad grants: one packet fails, nothing else ---------------------------------------------

TEST_F(HostileFrontend, BadTxGrantsFailTheirPacketAloneWithRspError) {
    session s(dd_);
    ASSERT_TRUE(s.back) << s.why;
    honest(10);
    st::raw_frontend& raw = s.raw;
    const sg::domain_id be = raw.backend_id();
    std::vector<sn::tx_request> reqs;
    reqs.push_back(numbered_request(raw, 0, 1000, 200, 0));     // good
    reqs.push_back({100000, 0, 0, 1, 200});                     // beyond the grant table
    reqs.push_back({3, 0, 0, 2, 200});                          // a reserved reference
    reqs.push_back({200, 0, 0, 3, 200});                        // never granted
    reqs.push_back({raw.grant_page(2, true, 7), 0, 0, 4, 200}); // granted to domain 7
    reqs.push_back({raw.table().grant_subpage(be, raw.data_frame(3), 0, 64, true), 0, 0, 5,
                    200}); // sub-page range too short
    reqs.push_back(
        {raw.table().grant_transitive(be, 9, 20), 0, 0, 6, 200}); // via an unknown domain
    raw.write_entry(210, {sg::gtf::permit_access, be, 0, 0, std::uint64_t{1} << 40});
    reqs.push_back({210, 0, 0, 7, 200}); // a frame far outside the front end's region
    raw.write_entry(211, {sg::gtf::permit_access, be, 0, 0, 0});
    reqs.push_back({211, 0, 0, 8, 200}); // the grant table page itself
    {
        // Two fragments; the second's grant is bad: the whole packet fails.
        const auto bytes = numbered_frame(1001, 500);
        std::memcpy(raw.data(4), bytes.data(), bytes.size());
        const sn::tx_fragment frags[] = {{raw.grant_page(4, true), 0, 300, 9}, {201, 300, 200, 10}};
        sn::tx_request two[2];
        sn::tx_encode_error err{};
        ASSERT_EQ(sn::encode_tx_packet(frags, {}, 0, two, err), 2U);
        reqs.insert(reqs.end(), std::begin(two), std::end(two));
    }
    reqs.push_back(numbered_request(raw, 5, 1002, 300, 11)); // good
    // And a grant the front end ends before the back end gets to it.
    const sg::grant_ref ended = raw.grant_page(6, true);
    reqs.push_back({ended, 0, 0, 12, 200});
    ASSERT_EQ(raw.table().end_access(ended), sg::end_result::done);
    ASSERT_EQ(raw.send_tx(reqs), reqs.size());

    auto& q = s.q();
    auto got = pull(q, pool());
    ASSERT_EQ(got.size(), 2U);
    EXPECT_EQ(check_numbered(bytes_of(got[0])), 1000);
    EXPECT_EQ(check_numbered(bytes_of(got[1])), 1002);
    pool().free_burst(got);
    EXPECT_EQ(q.queue_stats().tx_copy_failed, 10U);
    EXPECT_EQ(q.queue_stats().tx_dropped, 0U);
    EXPECT_FALSE(q.broken()) << q.fault();
    EXPECT_TRUE(s.back->poll_control()) << s.back->disconnect_reason();
    const auto rsps = raw.tx_responses();
    ASSERT_EQ(rsps.size(), reqs.size()) << "every request is answered";
    for (const auto& r : rsps) {
        EXPECT_EQ(r.status, r.id == 0 || r.id == 11 ? sn::rsp_okay : sn::rsp_error)
            << "request " << r.id;
    }
    honest(10);
    // The front end is still served afterwards.
    const sn::tx_request again = numbered_request(raw, 7, 1003, 100, 13);
    ASSERT_EQ(raw.send_tx({&again, 1}), 1U);
    got = pull(q, pool());
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(check_numbered(bytes_of(got[0])), 1003);
    pool().free_burst(got);
}

TEST_F(HostileFrontend, BadRxBuffersFailTheirPacketAloneWithRspError) {
    session s(dd_);
    ASSERT_TRUE(s.back) << s.why;
    st::raw_frontend& raw = s.raw;
    const sg::domain_id be = raw.backend_id();
    const sg::grant_ref good0 = raw.grant_page(10, false);
    const sg::grant_ref good1 = raw.grant_page(13, false);
    const sg::grant_ref ro = raw.grant_page(11, true);
    const sg::grant_ref other = raw.grant_page(12, false, 7);
    const sg::grant_ref sub = raw.table().grant_subpage(be, raw.data_frame(14), 0, 100, false);
    const sg::grant_ref ended = raw.grant_page(15, false);
    ASSERT_EQ(raw.table().end_access(ended), sg::end_result::done);
    const std::vector<sn::rx_request> posted = {
        {0, 0, good0}, {1, 0, ro},  {2, 0, other}, {3, 0, 100000}, {4, 0, 2},
        {5, 0, 250},   {6, 0, sub}, {7, 0, ended}, {8, 0, good1},
    };
    ASSERT_EQ(raw.post_rx(posted), posted.size());
    honest(5);
    auto& q = s.q();
    queue_frames(q, 500, posted.size(), 200);
    q.deliver(now());
    const auto rsps = raw.rx_responses();
    ASSERT_EQ(rsps.size(), posted.size()) << "every posted buffer is answered, in order";
    for (std::size_t i = 0; i < rsps.size(); ++i) {
        const bool good = i == 0 || i == 8;
        EXPECT_EQ(rsps[i].id, posted[i].id);
        EXPECT_EQ(rsps[i].status, good ? 200 : sn::rsp_error) << "slot " << i;
        if (good) {
            const std::uint32_t page = i == 0 ? 10 : 13;
            const std::vector<std::uint8_t> seen(raw.data(page), raw.data(page) + 200);
            EXPECT_EQ(check_numbered(seen), static_cast<std::int64_t>(500 + i));
        }
    }
    EXPECT_EQ(q.queue_stats().rx_copy_failed, 7U);
    EXPECT_EQ(q.queue_stats().rx_packets, 2U);
    EXPECT_FALSE(q.broken()) << q.fault();
    EXPECT_TRUE(s.back->poll_control());
    std::vector<std::uint8_t> untouched(raw.data(11), raw.data(11) + 200);
    EXPECT_EQ(std::count(untouched.begin(), untouched.end(), 0), 200)
        << "nothing was written into the read-only page";
    honest(10);
}

TEST_F(HostileFrontend, RxBuffersRevokedBeforeTheCopyAnswerErrorsAndNothingBreaks) {
    session s(dd_);
    ASSERT_TRUE(s.back) << s.why;
    st::raw_frontend& raw = s.raw;
    auto& q = s.q();
    constexpr std::uint32_t n = 16;
    std::vector<sg::grant_ref> refs;
    std::vector<sn::rx_request> posted;
    for (std::uint32_t i = 0; i < n; ++i) {
        refs.push_back(raw.grant_page(20 + i, false));
        posted.push_back({static_cast<std::uint16_t>(i), 0, refs.back()});
    }
    ASSERT_EQ(raw.post_rx(posted), n);
    // The front end takes back every other buffer after posting it.
    for (std::uint32_t i = 0; i < n; i += 2) {
        ASSERT_EQ(raw.table().end_access(refs[i]), sg::end_result::done);
    }
    queue_frames(q, 900, n, 300);
    q.deliver(now());
    auto rsps = raw.rx_responses();
    ASSERT_EQ(rsps.size(), n);
    for (std::uint32_t i = 0; i < n; ++i) {
        EXPECT_EQ(rsps[i].status, i % 2 == 0 ? sn::rsp_error : 300) << "slot " << i;
    }
    EXPECT_EQ(q.queue_stats().rx_copy_failed, n / 2);
    honest(10);

    // Now the grants come and go while the back end copies: each buffer either gets its packet
    // whole or an error, never anything else.
    for (std::uint32_t i = 0; i < n; i += 2) {
        refs[i] = raw.grant_page(20 + i, false);
    }
    std::atomic<bool> stop{false};
    std::thread revoker([&] {
        rng32 rng(5);
        while (!stop.load(std::memory_order_relaxed)) {
            const std::uint32_t i = rng() % n;
            const bool on = (rng() & 1) != 0;
            raw.write_entry(refs[i], on ? sg::grant_entry{sg::gtf::permit_access, raw.backend_id(),
                                                          0, 0, raw.data_frame(20 + i)}
                                        : sg::grant_entry{});
        }
    });
    std::uint64_t ok = 0, errors = 0;
    for (std::uint64_t round = 0; round < 40; ++round) {
        for (std::uint32_t i = 0; i < n; ++i) {
            posted[i].gref = refs[i]; // the ends above shuffled the references
        }
        ASSERT_EQ(raw.post_rx(posted), n);
        queue_frames(q, round * n, n, 300);
        q.deliver(now());
        rsps = raw.rx_responses();
        ASSERT_EQ(rsps.size(), n);
        for (std::uint32_t i = 0; i < n; ++i) {
            if (rsps[i].status == sn::rsp_error) {
                ++errors;
                continue;
            }
            ASSERT_EQ(rsps[i].status, 300);
            const std::vector<std::uint8_t> seen(raw.data(20 + i), raw.data(20 + i) + 300);
            EXPECT_EQ(check_numbered(seen), static_cast<std::int64_t>(round * n + i));
            ++ok;
        }
        honest_->step();
    }
    stop = true;
    revoker.join();
    EXPECT_EQ(ok + errors, 40U * n);
    EXPECT_FALSE(q.broken()) << q.fault();
    EXPECT_TRUE(s.back->poll_control());
}

// ---- slot counts ------------------------------------------------------------------------------

TEST_F(HostileFrontend, SlotCountsUpToTheLimitPassAndAboveItAreDropped) {
    session s(dd_);
    ASSERT_TRUE(s.back) << s.why;
    st::raw_frontend& raw = s.raw;
    auto& q = s.q();
    std::vector<sn::tx_request> reqs;
    for (std::uint32_t n : {18U, 19U, 20U, 1U}) {
        const auto p = fragmented(raw, n, 2000 + n, n, static_cast<std::uint16_t>(reqs.size()));
        ASSERT_EQ(p.size(), n);
        reqs.insert(reqs.end(), p.begin(), p.end());
    }
    ASSERT_EQ(raw.send_tx(reqs), reqs.size());
    auto got = pull(q, pool());
    ASSERT_EQ(got.size(), 2U) << "the 18-slot packet and the 1-slot one";
    EXPECT_EQ(check_numbered(bytes_of(got[0])), 2018);
    EXPECT_EQ(got[0].pkt_len, 900U);
    EXPECT_EQ(check_numbered(bytes_of(got[1])), 2001);
    pool().free_burst(got);
    EXPECT_EQ(q.queue_stats().tx_dropped, 2U) << "19 and 20 slots: above max_slots (18)";
    EXPECT_FALSE(q.broken()) << "20 slots is not above fatal_slots (20): " << q.fault();
    const auto rsps = raw.tx_responses();
    ASSERT_EQ(rsps.size(), reqs.size());
    for (std::size_t i = 0; i < rsps.size(); ++i) {
        const bool dropped = i >= 18 && i < 18 + 19 + 20;
        EXPECT_EQ(rsps[i].status, dropped ? sn::rsp_error : sn::rsp_okay) << "response " << i;
    }
    EXPECT_TRUE(s.back->poll_control());
    honest(10);
}

// ---- fatal faults: the queue breaks, the front end is disconnected with the reason ------------

struct fatal_case {
    const char* name;
    /// Publishes the violation (may drive the queue itself); returns the good frames that must
    /// still come out of the next rx_burst (packets published before the bad one).
    std::function<std::size_t(st::raw_frontend&, backend_queue&, sp::buffer_pool&)> attack;
    const char* fault; ///< in q.fault(), the disconnect reason and the front end's error
    std::function<void(st::raw_frontend&)> before_connect = {};
};

std::size_t send_after_good(st::raw_frontend& raw, std::vector<sn::tx_request> bad) {
    std::vector<sn::tx_request> reqs{numbered_request(raw, 1, 7001, 150, 1000)};
    reqs.insert(reqs.end(), bad.begin(), bad.end());
    EXPECT_EQ(raw.send_tx(reqs), reqs.size());
    return 1;
}

sn::tx_request extra_slot(std::uint8_t type, std::uint8_t flags) {
    sn::extra_info e{};
    e.type = type;
    e.flags = flags;
    return sn::slot_from(e);
}

const fatal_case fatal_cases[] = {
    {"SlotCountAboveTheFatalLimit",
     [](auto& raw, auto&, auto&) { return send_after_good(raw, fragmented(raw, 2, 1, 21, 0)); },
     "slot count above the fatal limit"},
    {"LaterFragmentCrossesAPage",
     [](auto& raw, auto&, auto&) {
         const sg::grant_ref r = raw.grant_page(2, true);
         return send_after_good(raw,
                                {{r, 0, sn::tx_flag::more_data, 1, 300}, {r, 4000, 0, 2, 200}});
     },
     "fragment crosses a page boundary"},
    {"FirstFragmentCrossesAPage",
     [](auto& raw, auto&, auto&) {
         return send_after_good(raw, {{raw.grant_page(2, true), 4000, 0, 1, 200}});
     },
     "fragment crosses a page boundary"},
    {"ExtraInfoTypeNone",
     [](auto& raw, auto&, auto&) {
         return send_after_good(raw, {{raw.grant_page(2, true), 0, sn::tx_flag::extra_info, 1, 100},
                                      extra_slot(sn::extra_type_none, 0)});
     },
     "invalid extra-info type"},
    {"ExtraInfoTypeUnknownInAChain",
     [](auto& raw, auto&, auto&) {
         return send_after_good(raw, {{raw.grant_page(2, true), 0, sn::tx_flag::extra_info, 1, 100},
                                      extra_slot(sn::extra_type_hash, sn::extra_flag_more),
                                      extra_slot(200, 0)});
     },
     "invalid extra-info type"},
    {"PacketContinuesPastThePublishedRequests",
     [](auto& raw, auto&, auto&) {
         return send_after_good(raw,
                                {{raw.grant_page(2, true), 0, sn::tx_flag::more_data, 1, 300}});
     },
     "packet continues past the published requests"},
    {"ExtraInfoPastThePublishedRequests",
     [](auto& raw, auto&, auto&) {
         return send_after_good(raw,
                                {{raw.grant_page(2, true), 0, sn::tx_flag::extra_info, 1, 300}});
     },
     "packet continues past the published requests"},
    {"TxRequestIndexJumpsPastTheRing",
     [](auto& raw, auto&, auto&) -> std::size_t {
         const auto page = raw.tx_page();
         st::raw_frontend::poke(page, raw_layout::req_prod,
                                st::raw_frontend::peek(page, raw_layout::rsp_prod) + 257);
         return 0;
     },
     "slots ahead of consumer index"},
    {"TxRequestIndexJumpsHalfTheIndexSpace",
     [](auto& raw, auto&, auto&) -> std::size_t {
         const auto page = raw.tx_page();
         st::raw_frontend::poke(page, raw_layout::req_prod,
                                st::raw_frontend::peek(page, raw_layout::req_prod) + 0x7fffffffU);
         return 0;
     },
     "slots ahead of consumer index"},
    {"TxRequestIndexGoesBackwards",
     [](auto& raw, auto&, auto&) -> std::size_t {
         const auto page = raw.tx_page();
         st::raw_frontend::poke(page, raw_layout::req_prod,
                                st::raw_frontend::peek(page, raw_layout::req_prod) - 1);
         return 0;
     },
     "moved back behind consumer index"},
    {"TxRequestIndexRetractsRequestsSeenButNotConsumed",
     [](auto& raw, auto& q, auto& pool) -> std::size_t {
         std::vector<sn::tx_request> three;
         for (std::uint16_t i = 0; i < 3; ++i) {
             three.push_back(numbered_request(raw, 3U + i, 7100U + i, 100, i));
         }
         EXPECT_EQ(raw.send_tx(three), 3U);
         std::array<sp::frame, 1> one;
         EXPECT_EQ(q.rx_burst(one), 1U) << "one consumed, three seen";
         pool.free_burst(one);
         const auto page = raw.tx_page();
         st::raw_frontend::poke(page, raw_layout::req_prod,
                                st::raw_frontend::peek(page, raw_layout::req_prod) - 1);
         return 0;
     },
     "moved back behind consumer index"},
    {"RxRequestIndexJumpsPastTheRing",
     [](auto& raw, auto& q, auto& pool) -> std::size_t {
         std::vector<sp::frame> f{st::make_chain(pool, numbered_frame(1, 100))};
         EXPECT_EQ(q.tx_burst(f), 1U);
         const auto page = raw.rx_page();
         st::raw_frontend::poke(page, raw_layout::req_prod,
                                st::raw_frontend::peek(page, raw_layout::rsp_prod) + 300);
         return 0;
     },
     "slots ahead of consumer index"},
    {"RxRequestIndexGoesBackwards",
     [](auto& raw, auto& q, auto& pool) -> std::size_t {
         std::vector<sn::rx_request> four;
         for (std::uint16_t i = 0; i < 4; ++i) {
             four.push_back({i, 0, raw.grant_page(10U + i, false)});
         }
         EXPECT_EQ(raw.post_rx(four), 4U);
         std::vector<sp::frame> f{st::make_chain(pool, numbered_frame(1, 100))};
         EXPECT_EQ(q.tx_burst(f), 1U);
         EXPECT_EQ(q.deliver(now()), 1U);
         const auto page = raw.rx_page();
         st::raw_frontend::poke(page, raw_layout::req_prod,
                                st::raw_frontend::peek(page, raw_layout::req_prod) - 2);
         f = {st::make_chain(pool, numbered_frame(2, 100))};
         EXPECT_EQ(q.tx_burst(f), 1U);
         return 0;
     },
     "moved back behind consumer index"},
    {"RequestIndexOutOfRangeBeforeConnecting", [](auto&, auto&, auto&) -> std::size_t { return 0; },
     "slots ahead of consumer index",
     [](st::raw_frontend& raw) {
         st::raw_frontend::poke(raw.tx_page(), raw_layout::req_prod, 0x80000000U);
     }},
};

class FatalFault : public HostileFrontend, public ::testing::WithParamInterface<fatal_case> {};

TEST_P(FatalFault, BreaksTheQueueAndDisconnectsWithTheReason) {
    const fatal_case& c = GetParam();
    if (c.before_connect) {
        st::raw_frontend raw;
        c.before_connect(raw);
        auto r = st::accept_raw(dd_.params, raw);
        ASSERT_TRUE(r.back) << r.why;
        auto& q = r.back->queue(0);
        std::array<sp::frame, 4> first;
        EXPECT_EQ(q.rx_burst(first), 0U); // the queue notices on first use (see KnownBug below)
        EXPECT_TRUE(q.broken()) << "an index out of range when the back end attaches";
        EXPECT_TRUE(contains(q.fault(), c.fault)) << q.fault();
        EXPECT_FALSE(r.back->poll_control());
        EXPECT_TRUE(contains(r.back->disconnect_reason(), c.fault)) << r.back->disconnect_reason();
        EXPECT_TRUE(contains(raw.backend_error(), c.fault));
        EXPECT_EQ(q.rx_burst(first), 0U);
        honest(10);
        return;
    }
    session s(dd_);
    ASSERT_TRUE(s.back) << s.why;
    st::raw_frontend& raw = s.raw;
    auto& q = s.q();
    honest(5);
    // A good packet first: served as usual.
    const sn::tx_request good = numbered_request(raw, 0, 7000, 120, 999);
    ASSERT_EQ(raw.send_tx({&good, 1}), 1U);
    auto got = pull(q, pool());
    ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(check_numbered(bytes_of(got[0])), 7000);
    pool().free_burst(got);

    const std::size_t before_bad = c.attack(raw, q, pool());
    got = pull(q, pool());
    EXPECT_EQ(got.size(), before_bad) << "packets published before the bad one are still served";
    for (const auto& f : got) {
        EXPECT_EQ(check_numbered(bytes_of(f)), 7001);
    }
    pool().free_burst(got);
    for (int i = 0; i < 3; ++i) {
        got = pull(q, pool());
        EXPECT_TRUE(got.empty());
        pool().free_burst(got);
        (void)q.deliver(now());
    }
    EXPECT_TRUE(q.broken());
    EXPECT_TRUE(contains(q.fault(), c.fault)) << q.fault();
    EXPECT_FALSE(s.back->poll_control());
    EXPECT_TRUE(contains(s.back->disconnect_reason(), "queue fault"))
        << s.back->disconnect_reason();
    EXPECT_TRUE(contains(s.back->disconnect_reason(), c.fault)) << s.back->disconnect_reason();
    const std::string told = raw.backend_error();
    EXPECT_TRUE(contains(told, c.fault)) << "the front end is told why: '" << told << "'";

    // A broken queue stays broken: nothing more is read or taken.
    const sn::tx_request later = numbered_request(raw, 30, 7002, 100, 998);
    (void)raw.send_tx({&later, 1});
    std::array<sp::frame, 8> out;
    EXPECT_EQ(q.rx_burst(out), 0U);
    std::vector<sp::frame> down{st::make_chain(pool(), numbered_frame(3, 100))};
    EXPECT_EQ(q.tx_burst(down), 0U);
    pool().free_burst(down);
    EXPECT_EQ(q.deliver(now()), 0U);
    EXPECT_FALSE(q.prepare_to_sleep());
    honest(10);
}

INSTANTIATE_TEST_SUITE_P(Cases, FatalFault, ::testing::ValuesIn(fatal_cases),
                         [](const auto& i) { return std::string(i.param.name); });

// ---- ring indices the back end does not own ----------------------------------------------

TEST_F(HostileFrontend, GarbageEventIndicesAndWrappingIndicesChangeNothingButNotifications) {
    st::raw_frontend_config cfg;
    cfg.ring_start = 0xffffff00U; // indices wrap after 256 requests
    session s(dd_, cfg);
    ASSERT_TRUE(s.back) << s.why;
    st::raw_frontend& raw = s.raw;
    auto& q = s.q();
    rng32 rng(3);
    const auto scribble = [&] {
        for (auto page : {raw.tx_page(), raw.rx_page()}) {
            st::raw_frontend::poke(page, raw_layout::rsp_event, rng());
            st::raw_frontend::poke(page, raw_layout::req_event, rng());
            for (std::size_t off = 16; off < raw_layout::header_bytes; off += 4) {
                st::raw_frontend::poke(page, off, rng());
            }
        }
    };
    std::vector<sg::grant_ref> rx_refs, tx_refs;
    for (std::uint32_t i = 0; i < 30; ++i) {
        rx_refs.push_back(raw.grant_page(i, false));
        tx_refs.push_back(raw.grant_page(32 + i, true));
    }
    std::uint64_t up = 0, down = 0;
    for (int round = 0; round < 12; ++round) {
        scribble();
        std::vector<sn::tx_request> reqs;
        for (std::uint16_t i = 0; i < 30; ++i) {
            const auto bytes = numbered_frame(up + i, 100);
            std::memcpy(raw.data(32U + i), bytes.data(), bytes.size());
            reqs.push_back({tx_refs[i], 0, 0, i, 100});
        }
        ASSERT_EQ(raw.send_tx(reqs), reqs.size());
        scribble();
        auto got = pull(q, pool());
        ASSERT_EQ(got.size(), 30U) << q.fault();
        for (const auto& f : got) {
            EXPECT_EQ(check_numbered(bytes_of(f)), static_cast<std::int64_t>(up++));
        }
        pool().free_burst(got);
        EXPECT_EQ(raw.tx_responses().size(), 30U);

        std::vector<sn::rx_request> posted;
        for (std::uint16_t i = 0; i < 30; ++i) {
            posted.push_back({i, 0, rx_refs[i]});
        }
        ASSERT_EQ(raw.post_rx(posted), posted.size());
        scribble();
        queue_frames(q, down, 30, 200);
        q.deliver(now());
        const auto rsps = raw.rx_responses();
        ASSERT_EQ(rsps.size(), 30U) << q.fault();
        for (std::uint16_t i = 0; i < 30; ++i) {
            ASSERT_EQ(rsps[i].status, 200);
            const std::vector<std::uint8_t> seen(raw.data(i), raw.data(i) + 200);
            EXPECT_EQ(check_numbered(seen), static_cast<std::int64_t>(down++));
        }
        (void)q.prepare_to_sleep(); // arms req_event over the garbage
        honest_->step();
    }
    EXPECT_LT(raw.tx().rsp_cons(), cfg.ring_start) << "the TX indices wrapped";
    EXPECT_LT(raw.rx().rsp_cons(), cfg.ring_start) << "the RX indices wrapped";
    EXPECT_FALSE(q.broken()) << q.fault();
    EXPECT_TRUE(s.back->poll_control());
}

// ---- a front end that rewrites everything while the back end works --------------------------

/// The hostile thread of the race test: publishes well-formed packets and RX buffers and keeps
/// rewriting what it published (requests the back end may be copying right now), its grant
/// entries and its packet bytes. `chaos` is the share (per mille) of writes that may be fatal:
/// any word anywhere, flag flips, indices out of range.
class rewriter {
public:
    rewriter(st::raw_frontend& raw, std::uint32_t seed, std::uint32_t chaos)
        : raw_(raw), rng_(seed), chaos_(chaos), tx_(raw.tx_page()), rx_(raw.rx_page()) {}

    void run(const std::atomic<bool>& stop) {
        tx_pvt_ = peek(tx_, raw_layout::req_prod);
        rx_pvt_ = peek(rx_, raw_layout::req_prod);
        while (!stop.load(std::memory_order_relaxed)) {
            const std::uint32_t what = rng_() % 1000;
            if (what < chaos_) {
                chaos();
            } else if (what < 300) {
                publish_packet();
            } else if (what < 650) {
                mutate_published();
            } else if (what < 800) {
                regrant();
            } else if (what < 950) {
                post_rx();
            } else {
                auto* p = reinterpret_cast<std::uint32_t*>(raw_.data(rng_() % 60));
                std::atomic_ref<std::uint32_t>(p[rng_() % 1024])
                    .store(rng_(), std::memory_order_relaxed);
            }
        }
    }

private:
    static constexpr auto peek = st::raw_frontend::peek;
    static constexpr auto poke = st::raw_frontend::poke;
    static std::size_t slot(splitnet::ring::ring_idx i, std::size_t size, std::size_t word) {
        return raw_layout::header_bytes + (i % 256) * size + word * 4;
    }
    [[nodiscard]] sg::grant_ref any_ref() { return 10 + rng_() % 60; } // the data pages' grants

    void write_tx(splitnet::ring::ring_idx i, const sn::tx_request& r) {
        std::uint32_t w[3];
        std::memcpy(w, &r, sizeof w);
        for (std::size_t k = 0; k < 3; ++k) {
            poke(tx_, slot(i, 12, k), w[k]);
        }
    }

    /// One to three fragments, maybe a GSO extra, sizes consistent and inside the page. Offsets
    /// below 64 and totals below 4000 keep every later rewrite inside the page too.
    void publish_packet() {
        const std::uint32_t nfrags = 1 + rng_() % 3;
        const bool gso = rng_() % 8 == 0;
        const std::uint32_t need = nfrags + (gso ? 1 : 0);
        if (tx_pvt_ + need - peek(tx_, raw_layout::rsp_prod) > 256) {
            return;
        }
        std::uint16_t sizes[3];
        std::uint32_t total = 0;
        for (std::uint32_t k = 0; k < nfrags; ++k) {
            sizes[k] = static_cast<std::uint16_t>(k == 0 ? 60 + rng_() % 1000 : 1 + rng_() % 1400);
            total += sizes[k];
        }
        const auto flags =
            static_cast<std::uint16_t>((rng_() % 4) | (nfrags > 1 ? sn::tx_flag::more_data : 0) |
                                       (gso ? sn::tx_flag::extra_info : 0));
        put(false, {any_ref(), static_cast<std::uint16_t>(rng_() % 64), flags,
                    static_cast<std::uint16_t>(rng_()), static_cast<std::uint16_t>(total)});
        if (gso) {
            put(true, sn::slot_from(sn::make_gso_extra(
                          static_cast<std::uint8_t>(1 + rng_() % 2),
                          static_cast<std::uint16_t>(rng_() % 3 == 0 ? 0 : 536 + rng_() % 1000))));
        }
        for (std::uint32_t k = 1; k < nfrags; ++k) {
            put(false, {any_ref(), static_cast<std::uint16_t>(rng_() % 64),
                        static_cast<std::uint16_t>(k + 1 < nfrags ? sn::tx_flag::more_data : 0),
                        static_cast<std::uint16_t>(rng_()), sizes[k]});
        }
        poke(tx_, raw_layout::req_prod, tx_pvt_);
    }
    void put(bool extra, const sn::tx_request& r) {
        extra_[tx_pvt_ % 256] = extra;
        write_tx(tx_pvt_++, r);
    }

    /// Rewrites one field of a published request, keeping its shape (flags and extras stay).
    void mutate_published() {
        const splitnet::ring::ring_idx i = tx_pvt_ - 1 - rng_() % 16;
        if (extra_[i % 256]) {
            return;
        }
        switch (rng_() % 4) {
        case 0: // another grant, or none at all
            poke(tx_, slot(i, 12, 0), rng_() % 16 == 0 ? rng_() : any_ref());
            break;
        case 1: { // another offset, flags kept
            const std::uint32_t w = peek(tx_, slot(i, 12, 1));
            poke(tx_, slot(i, 12, 1), (w & 0xffff0000U) | (rng_() % 64));
            break;
        }
        case 2: { // another size, id kept
            const std::uint32_t w = peek(tx_, slot(i, 12, 2));
            poke(tx_, slot(i, 12, 2), (w & 0xffffU) | ((rng_() % 4000) << 16));
            break;
        }
        default: // the RX buffer of a posted request
            poke(rx_, slot(rx_pvt_ - 1 - rng_() % 16, 8, 1), any_ref());
            break;
        }
    }

    /// A grant entry rewritten: valid (another page, read-only or not), ended, or anything.
    void regrant() {
        const sg::grant_ref ref = any_ref();
        switch (rng_() % 4) {
        case 0:
            raw_.write_entry(ref, {});
            break;
        case 1:
            raw_.write_entry(
                ref, {static_cast<std::uint16_t>(sg::gtf::permit_access | sg::gtf::sub_page |
                                                 (rng_() % 2 ? sg::gtf::readonly : 0)),
                      raw_.backend_id(), static_cast<std::uint16_t>(rng_() % 4096),
                      static_cast<std::uint16_t>(rng_() % 4200), raw_.data_frame(rng_() % 60)});
            break;
        case 2:
            raw_.write_entry(ref, {static_cast<std::uint16_t>(rng_()),
                                   static_cast<std::uint16_t>(rng_()),
                                   static_cast<std::uint16_t>(rng_()),
                                   static_cast<std::uint16_t>(rng_()), rng_() % 100});
            break;
        default:
            raw_.write_entry(ref, {static_cast<std::uint16_t>(sg::gtf::permit_access |
                                                              (rng_() % 2 ? sg::gtf::readonly : 0)),
                                   raw_.backend_id(), 0, 0, raw_.data_frame(rng_() % 60)});
            break;
        }
    }

    void post_rx() {
        if (rx_pvt_ - peek(rx_, raw_layout::rsp_prod) >= 256) {
            return;
        }
        poke(rx_, slot(rx_pvt_, 8, 0), rng_() % 65536);
        poke(rx_, slot(rx_pvt_, 8, 1), any_ref());
        poke(rx_, raw_layout::req_prod, ++rx_pvt_);
    }

    void chaos() {
        switch (rng_() % 4) {
        case 0: { // any word of a TX slot: never a multicast extra type in a slot's first byte,
                  // which hits a known bug (its own test) and would fail this one at random
            std::uint32_t v = rng_();
            if ((v & 0xffU) == sn::extra_type_mcast_add ||
                (v & 0xffU) == sn::extra_type_mcast_del) {
                v |= 0x80U;
            }
            poke(tx_, raw_layout::header_bytes + 4 * (rng_() % ((4096 - 64) / 4)), v);
            break;
        }
        case 1: { // flip more_data or extra_info of a published request
            const std::size_t at = slot(tx_pvt_ - 1 - rng_() % 8, 12, 1);
            const std::uint32_t bit = rng_() % 2 ? sn::tx_flag::more_data : sn::tx_flag::extra_info;
            poke(tx_, at, peek(tx_, at) ^ (bit << 16U));
            break;
        }
        case 2: // a producer index anywhere
            poke(rng_() % 2 ? tx_ : rx_, raw_layout::req_prod, rng_());
            break;
        default: // the event indices and padding
            poke(rng_() % 2 ? tx_ : rx_, 4 * (1 + rng_() % 15), rng_());
            break;
        }
    }

    st::raw_frontend& raw_;
    rng32 rng_;
    std::uint32_t chaos_;
    std::span<std::byte> tx_, rx_;
    splitnet::ring::ring_idx tx_pvt_ = 0, rx_pvt_ = 0;
    bool extra_[256] = {};
};

TEST_F(HostileFrontend, RewritingRingsAndGrantsDuringBurstsNeverCrashesOrLeaks) {
    std::uint64_t frames_out = 0, bursts = 0, broken_rounds = 0;
    for (std::uint32_t round = 0; round < 4; ++round) {
        st::raw_frontend_config cfg;
        cfg.self = static_cast<sg::domain_id>(10 + round);
        session s(dd_, cfg);
        ASSERT_TRUE(s.back) << s.why;
        st::raw_frontend& raw = s.raw;
        auto& q = s.q();
        for (std::uint32_t i = 0; i < 60; ++i) {
            ASSERT_EQ(raw.grant_page(i, (i & 1) != 0), 10 + i);
        }
        // Rounds 0-2 mostly rewrite within the rules (per-packet errors); round 3 also breaks
        // them (a fatal fault ends the round).
        rewriter hostile(raw, 100 + round, round == 3 ? 20 : 0);
        std::atomic<bool> stop{false};
        std::thread flipper([&] { hostile.run(stop); });
        for (int i = 0; i < 300 && !q.broken(); ++i) {
            auto got = pull(q, pool());
            frames_out += got.size();
            ++bursts;
            pool().free_burst(got);
            if (!q.broken()) {
                std::vector<sp::frame> down;
                for (std::uint32_t k = 0; k < 2; ++k) {
                    down.push_back(st::make_chain(
                        pool(),
                        numbered_frame(k, 60 + (700U * static_cast<std::uint32_t>(i)) % 5000)));
                }
                const std::size_t took = q.tx_burst(down);
                pool().free_burst({down.data() + took, down.size() - took});
                (void)q.deliver(now());
            }
            honest_->step();
        }
        stop = true;
        flipper.join();
        if (q.broken()) {
            ++broken_rounds;
            EXPECT_FALSE(s.back->poll_control());
            EXPECT_TRUE(contains(s.back->disconnect_reason(), q.fault()));
            continue;
        }
        // Still alive: what is published is served, then a packet written now arrives intact.
        for (int i = 0; i < 10; ++i) {
            auto got = pull(q, pool());
            pool().free_burst(got);
        }
        if (q.broken()) { // the last rewrites may have been fatal
            continue;
        }
        const auto page = raw.tx_page();
        const splitnet::ring::ring_idx at = st::raw_frontend::peek(page, raw_layout::req_prod);
        const auto bytes = numbered_frame(4242, 300);
        std::memcpy(raw.data(60), bytes.data(), bytes.size());
        raw.write_entry(200, {sg::gtf::permit_access | sg::gtf::readonly, raw.backend_id(), 0, 0,
                              raw.data_frame(60)});
        const sn::tx_request good{200, 0, 0, 1, 300};
        std::uint32_t w[3];
        std::memcpy(w, &good, sizeof w);
        for (std::size_t k = 0; k < 3; ++k) {
            st::raw_frontend::poke(page, raw_layout::header_bytes + (at % 256) * 12 + 4 * k, w[k]);
        }
        st::raw_frontend::poke(page, raw_layout::req_prod, at + 1);
        auto got = pull(q, pool());
        ASSERT_EQ(got.size(), 1U) << q.fault();
        EXPECT_EQ(check_numbered(bytes_of(got[0])), 4242);
        pool().free_burst(got);
        EXPECT_TRUE(s.back->poll_control());
    }
    RecordProperty("frames_out", std::to_string(frames_out));
    RecordProperty("bursts", std::to_string(bursts));
    RecordProperty("broken_rounds", std::to_string(broken_rounds));
}

// ---- notification storm -----------------------------------------------------------------------

TEST_F(HostileFrontend, ANotificationStormDoesNotStopTheHonestFrontEnd) {
    session s(dd_);
    ASSERT_TRUE(s.back) << s.why;
    auto& q = s.q();
    auto& hq = honest_->back().queue(0);
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> kicks{0};
    std::atomic<bool> storming{false}; // the worker below starts once the storm has begun
    std::thread storm([&] {
        const int fds[] = {s.raw.event(0, sn::event_dir::tx_to_back).fd(),
                           s.raw.event(0, sn::event_dir::rx_to_back).fd()};
        std::uint64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            for (const int fd : fds) {
                // Mostly single kicks; now and then the largest value the counter takes.
                const std::uint64_t v = n % 1024 == 0 ? 0xfffffffffffffffeULL : 1;
                if (::write(fd, &v, sizeof v) == static_cast<ssize_t>(sizeof v)) {
                    ++n;
                    storming.store(true, std::memory_order_relaxed);
                }
            }
        }
        kicks = n;
    });
    // A worker serving both front ends from their doorbells, as a driver domain would.
    std::uint64_t wakeups = 0;
    while (!storming.load()) {
        std::this_thread::yield();
    }
    for (int i = 0; i < 20000 && !honest_->done(); ++i) {
        pollfd p[] = {{q.tx_kick_fd(), POLLIN, 0},
                      {q.rx_kick_fd(), POLLIN, 0},
                      {hq.tx_kick_fd(), POLLIN, 0},
                      {hq.rx_kick_fd(), POLLIN, 0}};
        (void)::poll(p, 4, 1);
        if ((p[0].revents | p[1].revents) != 0) {
            ++wakeups;
            q.consume_kicks();
            auto got = pull(q, pool());
            EXPECT_TRUE(got.empty());
            pool().free_burst(got);
            (void)q.deliver(now());
        }
        if ((p[2].revents | p[3].revents) != 0) {
            hq.consume_kicks();
        }
        honest_->step();
    }
    stop = true;
    storm.join();
    EXPECT_TRUE(honest_->done()) << "the honest front end's frames got through the storm";
    EXPECT_GT(kicks.load(), 0U);
    EXPECT_GT(wakeups, 0U);
    EXPECT_FALSE(q.broken()) << "kicks are not a protocol violation: " << q.fault();
    EXPECT_TRUE(s.back->poll_control());
    RecordProperty("storm_kicks", std::to_string(kicks.load()));
}

// ---- the handshake ----------------------------------------------------------------------------

struct handshake_case {
    const char* name;
    /// Edits the connect message's contents; may open descriptors (put them in `keep`).
    std::function<void(st::raw_frontend&, sn::connect_info&, std::vector<int>& keep)> edit_info;
    std::function<void(st::raw_frontend&, sn::control::message&)> edit = {};
    const char* refusal = "";
    st::raw_frontend_config cfg = {};
};

int sealed_memfd(std::size_t bytes, unsigned seals) {
    const int fd = ::memfd_create("hostile-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(bytes)), 0);
    if (seals != 0) {
        EXPECT_EQ(::fcntl(fd, F_ADD_SEALS, seals), 0);
    }
    return fd;
}

const auto no_info = [](st::raw_frontend&, sn::connect_info&, std::vector<int>&) {
};

st::raw_frontend_config queues(std::uint32_t n) {
    st::raw_frontend_config c;
    c.queues = n;
    return c;
}

const handshake_case handshake_cases[] = {
    {"UnsealedRegion",
     [](auto& raw, auto& ci, auto& keep) {
         keep.push_back(ci.region = sealed_memfd(raw.region().size(), 0));
     },
     {},
     "not sealed against resizing"},
    {"RegionIsNotAMemfd",
     [](auto&, auto& ci, auto& keep) { keep.push_back(ci.region = ::eventfd(0, EFD_CLOEXEC)); },
     {},
     "not a memfd"},
    {"RegionSealedAgainstWrites",
     [](auto& raw, auto& ci, auto& keep) {
         keep.push_back(ci.region = sealed_memfd(raw.region().size(),
                                                 F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE));
     },
     {},
     "cannot map the peer's region"},
    {"RegionNotWholePages",
     [](auto&, auto& ci, auto& keep) {
         keep.push_back(ci.region = sealed_memfd(5000, F_SEAL_SHRINK | F_SEAL_GROW));
     },
     {},
     "not a whole number of pages"},
    {"RegionTooSmallForTheDeclaredTable",
     [](auto&, auto& ci, auto&) { ci.table_pages = 200; },
     {},
     "cannot hold 200 grant-table pages"},
    {"ZeroTablePages", no_info, [](auto&, auto& m) { m.set("grant-table-pages", "0"); },
     "grant-table-pages"},
    {"TooManyActivitySlots", no_info, [](auto&, auto& m) { m.set("grant-activity-slots", "17"); },
     "grant-activity-slots"},
    {"FewerActivitySlotsThanQueues", no_info,
     [](auto&, auto& m) { m.set("grant-activity-slots", "1"); }, "one per queue", queues(2)},
    {"TxRingRefNotGranted",
     [](auto&, auto& ci, auto&) { ci.queues[0].tx_ring_ref = 200; },
     {},
     "cannot map ring grant 200: bad grant reference"},
    {"TxRingRefReserved",
     [](auto&, auto& ci, auto&) { ci.queues[0].tx_ring_ref = 2; },
     {},
     "cannot map ring grant 2: bad grant reference"},
    {"TxRingRefBeyondTheTable",
     [](auto&, auto& ci, auto&) { ci.queues[0].tx_ring_ref = 0xfffffff0U; },
     {},
     "bad grant reference"},
    {"RxRingRefReadOnly",
     [](auto& raw, auto& ci, auto&) {
         ci.queues[0].rx_ring_ref =
             raw.table().grant_access(raw.backend_id(), raw.ring_frame(0, 1), true);
     },
     {},
     "permission denied"},
    {"RxRingRefGrantedToAnotherDomain",
     [](auto& raw, auto& ci, auto&) {
         ci.queues[0].rx_ring_ref = raw.table().grant_access(7, raw.ring_frame(0, 1), false);
     },
     {},
     "permission denied"},
    {"RxRingRefSubPage",
     [](auto& raw, auto& ci, auto&) {
         ci.queues[0].rx_ring_ref =
             raw.table().grant_subpage(raw.backend_id(), raw.ring_frame(0, 1), 0, 4096, false);
     },
     {},
     "bad grant reference"},
    {"RxRingOrderBeyondTheLimit", no_info, [](auto&, auto& m) { m.set("rx-ring-page-order", "3"); },
     "rx-ring-page-order must be 0..2"},
    {"RxRingLacksItsSecondPage", no_info, [](auto&, auto& m) { m.set("rx-ring-page-order", "1"); },
     "lacks rx-ring-ref1 of its 2-page RX ring"},
    {"RxRingPagesNotConsecutive", no_info,
     [](auto& raw, auto& m) {
         m.set("rx-ring-page-order", "1");
         m.set("rx-ring-ref1",
               raw.table().grant_access(raw.backend_id(), raw.ring_frame(0, 0), false));
     },
     "RX ring page 1"},
    {"RingRefNamesTheGrantTablePage",
     [](auto& raw, auto& ci, auto&) {
         raw.write_entry(100, {sg::gtf::permit_access, raw.backend_id(), 0, 0, 0});
         ci.queues[0].tx_ring_ref = 100;
     },
     {},
     "bad page"},
    {"EventChannelIndexMissing", no_info, [](auto&, auto& m) { m.set("event-channel-tx", "1,9"); },
     "lacks valid event channel descriptors"},
    {"EventChannelIndicesDuplicated", no_info,
     [](auto&, auto& m) { m.set("event-channel-rx", "3,3"); },
     "lacks valid event channel descriptors"},
    {"EventChannelMalformed", no_info, [](auto&, auto& m) { m.set("event-channel-rx", "3;4"); },
     "lacks valid event channel descriptors"},
    {"EventChannelIsTheRegionDescriptor", no_info,
     [](auto&, auto& m) { m.set("event-channel-tx", "0,2"); }, "is missing or used twice"},
    {"QueuesShareDescriptors", no_info,
     [](auto&, auto& m) {
         m.set("queue-1/event-channel-tx", std::string(*m.get("queue-0/event-channel-tx")));
     },
     "is missing or used twice", queues(2)},
    {"NoRequestRxCopy", no_info, [](auto&, auto& m) { m.set("request-rx-copy", "0"); },
     "request-rx-copy=1 is required"},
    {"ZeroQueues", no_info, [](auto&, auto& m) { m.set("multi-queue-num-queues", "0"); },
     "multi-queue-num-queues must be"},
    {"MoreQueuesThanOffered", no_info, {}, "the back end offers at most 4", queues(5)},
    {"FrontendCopyWithoutGrantPage", no_info,
     [](auto&, auto& m) { m.set("request-rx-frontend-copy", "1"); }, "without rx-grants-ref"},
    {"MulticastMac", no_info, [](auto&, auto& m) { m.set("mac", "01:00:5e:00:00:01"); },
     "not a unicast address"},
    {"MtuAboveTheLink", no_info, [](auto&, auto& m) { m.set("mtu", "9001"); },
     "exceeds the link's"},
};

class HandshakeAbuse : public HostileFrontend,
                       public ::testing::WithParamInterface<handshake_case> {};

TEST_P(HandshakeAbuse, IsRefusedWithAClearReasonAndLeaksNothing) {
    const handshake_case& c = GetParam();
    honest(3);
    const std::size_t fds_before = st::open_fds();
    {
        st::raw_frontend raw(c.cfg);
        std::vector<int> keep;
        auto m = raw.connect_message([&](sn::connect_info& ci) { c.edit_info(raw, ci, keep); },
                                     [&](sn::control::message& msg) {
                                         if (c.edit) {
                                             c.edit(raw, msg);
                                         }
                                     });
        auto r = st::accept_raw(dd_.params, raw, m);
        EXPECT_FALSE(r.back) << "accepted";
        EXPECT_TRUE(contains(r.why, c.refusal)) << "reason: '" << r.why << "'";
        const std::string told = raw.backend_error();
        EXPECT_TRUE(contains(told, c.refusal)) << "the front end was told: '" << told << "'";
        for (const int fd : keep) {
            ::close(fd);
        }
    }
    EXPECT_EQ(st::open_fds(), fds_before) << "descriptors leaked by a refused handshake";
    honest(10);
}

INSTANTIATE_TEST_SUITE_P(Cases, HandshakeAbuse, ::testing::ValuesIn(handshake_cases),
                         [](const auto& i) { return std::string(i.param.name); });

TEST_F(HostileFrontend, ARefusedBackendReleasesTheRingGrantsItMapped) {
    // Queue 0 maps fine, queue 1's ring grant is bad: the mapping of queue 0 must be undone.
    st::raw_frontend raw(queues(2));
    auto m = raw.connect_message([](sn::connect_info& ci) { ci.queues[1].rx_ring_ref = 200; });
    auto r = st::accept_raw(dd_.params, raw, m);
    ASSERT_FALSE(r.back);
    EXPECT_TRUE(contains(r.why, "queue 1: cannot map ring grant 200")) << r.why;
    for (const sg::grant_ref ref : {raw.tx_ring_ref(0), raw.rx_ring_ref(0), raw.tx_ring_ref(1)}) {
        EXPECT_EQ(raw.table().entry(ref).flags & (sg::gtf::reading | sg::gtf::writing), 0)
            << "ring grant " << ref << " is still marked mapped";
        EXPECT_EQ(raw.table().end_access(ref), sg::end_result::done);
    }
}

TEST_F(HostileFrontend, TheAcceptorRefusesBadPeersAndSilentOnesHoldNobodyUp) {
    honest(3);
    const std::size_t fds_before = st::open_fds();
    {
        const std::string path = "/tmp/splitnet-hostile-" + std::to_string(::getpid());
        sn::backend_acceptor<none> acceptor(path, dd_.params);
        std::vector<std::unique_ptr<backend>> backs;
        const auto step = [&] {
            acceptor.step();
            while (auto b = acceptor.take_connected()) {
                backs.push_back(std::move(b));
            }
        };
        const auto read_hello = [](const sn::control::channel& ch) {
            sn::control::message h;
            EXPECT_EQ(ch.receive(h, std::chrono::milliseconds(1000)).status,
                      sn::control::receive_status::ok);
            std::string why;
            auto info = sn::hello_info::read(h, why);
            EXPECT_TRUE(info) << why;
            return info.value_or(sn::hello_info{});
        };
        const auto refusal = [](const sn::control::channel& ch) {
            sn::control::message e;
            if (ch.receive(e, std::chrono::milliseconds(1000)).status !=
                    sn::control::receive_status::ok ||
                e.type() != sn::control::message_type::error) {
                return std::string("(no error message)");
            }
            return std::string(e.get("reason").value_or(""));
        };

        // A peer that connects and says nothing.
        auto silent = sn::control::channel::connect(path);
        step();
        step();
        EXPECT_EQ(acceptor.stats().refused, 0U) << "well inside the handshake timeout";
        EXPECT_EQ(acceptor.fds().size(), 2U) << "listener and the silent handshake";

        // A peer that speaks another version of the control protocol.
        {
            auto ch = sn::control::channel::connect(path);
            step();
            (void)read_hello(ch);
            sn::control::message m(sn::control::message_type::connect,
                                   sn::control::link_state::initialised);
            m.set("request-rx-copy", 1);
            auto bytes = m.encode();
            bytes[4] = std::byte{2};
            ASSERT_GT(splitnet::ring::send_with_fds(ch.fd(), bytes, {}), 0);
            step();
            EXPECT_TRUE(contains(acceptor.stats().last_refusal, "version 2"))
                << acceptor.stats().last_refusal;
            EXPECT_TRUE(contains(refusal(ch), "version 2"));
        }
        // Bytes that are no control message at all.
        {
            auto ch = sn::control::channel::connect(path);
            step();
            (void)read_hello(ch);
            const std::byte junk[] = {std::byte{'G'}, std::byte{'E'}, std::byte{'T'},
                                      std::byte{' '}};
            ASSERT_GT(splitnet::ring::send_with_fds(ch.fd(), junk, {}), 0);
            step();
            EXPECT_TRUE(contains(acceptor.stats().last_refusal, "not a splitnet control message"))
                << acceptor.stats().last_refusal;
            EXPECT_TRUE(contains(refusal(ch), "not a splitnet control message"));
        }
        // A message of the wrong type, with descriptors attached (they must not leak).
        {
            auto ch = sn::control::channel::connect(path);
            step();
            (void)read_hello(ch);
            sn::control::message m(sn::control::message_type::hello,
                                   sn::control::link_state::init_wait);
            const int e1 = ::eventfd(0, EFD_CLOEXEC), e2 = ::eventfd(0, EFD_CLOEXEC);
            m.set("x", m.add_fd(e1)).set("y", m.add_fd(e2));
            ASSERT_TRUE(ch.send(m));
            ::close(e1);
            ::close(e2);
            step();
            EXPECT_TRUE(contains(acceptor.stats().last_refusal, "expected a connect message"));
            EXPECT_TRUE(contains(refusal(ch), "expected a connect message"));
        }
        // A connect message whose ring grant was never made, from a raw front end that read
        // its id from the hello.
        {
            auto ch = sn::control::channel::connect(path);
            step();
            const sn::hello_info h = read_hello(ch);
            st::raw_frontend_config cfg;
            cfg.self = h.frontend_id;
            cfg.backend_id = h.backend_id;
            st::raw_frontend raw(cfg);
            ASSERT_TRUE(ch.send(
                raw.connect_message([](sn::connect_info& ci) { ci.queues[0].tx_ring_ref = 77; })));
            step();
            EXPECT_TRUE(contains(acceptor.stats().last_refusal, "cannot map ring grant 77"))
                << acceptor.stats().last_refusal;
            EXPECT_TRUE(contains(refusal(ch), "cannot map ring grant 77"));
        }
        // A peer that leaves in the middle of the handshake.
        {
            auto ch = sn::control::channel::connect(path);
            step();
            (void)read_hello(ch);
        }
        step();
        EXPECT_TRUE(contains(acceptor.stats().last_refusal, "closed during the handshake"));
        EXPECT_EQ(acceptor.stats().refused, 5U);
        EXPECT_TRUE(backs.empty());

        // While the silent peer still waits, an honest front end connects and is served.
        std::atomic<bool> stop{false};
        std::thread control([&] {
            while (!stop.load()) {
                step();
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
        });
        std::unique_ptr<sn::frontend> front;
        try {
            front = sn::frontend::connect(path, honest_peer::config());
        } catch (const std::exception& e) {
            ADD_FAILURE() << "an honest front end could not connect: " << e.what();
        }
        stop = true;
        control.join();
        ASSERT_TRUE(front);
        ASSERT_EQ(backs.size(), 1U);
        EXPECT_EQ(acceptor.fds().size(), 2U) << "the silent handshake is still pending";
        std::vector<sp::frame> one{st::make_chain(front->pool(), numbered_frame(42, 300))};
        ASSERT_EQ(front->queue(0).tx_burst(one), 1U);
        auto got = pull(backs[0]->queue(0), pool());
        ASSERT_EQ(got.size(), 1U);
        EXPECT_EQ(check_numbered(bytes_of(got[0])), 42);
        pool().free_burst(got);

        // The silent peer gives up.
        silent = sn::control::channel();
        step();
        EXPECT_TRUE(contains(acceptor.stats().last_refusal, "closed during the handshake"));
        EXPECT_EQ(acceptor.fds().size(), 1U);
        front.reset();
        EXPECT_FALSE(backs[0]->poll_control());
        backs.clear();
    }
    EXPECT_EQ(st::open_fds(), fds_before) << "descriptors leaked by the acceptor";
    honest(10);
}

// Peers that open connections and never speak hold a descriptor each until the handshake
// timeout: beyond max_pending_handshakes the acceptor refuses at once, with a reason, and takes
// new peers again as soon as one of those pending leaves.
TEST_F(HostileFrontend, HandshakesBeyondTheCapAreRefusedNotQueued) {
    const std::size_t fds_before = st::open_fds();
    {
        const std::string path = "/tmp/splitnet-hostile-cap-" + std::to_string(::getpid());
        auto params = dd_.params;
        params.max_pending_handshakes = 2;
        sn::backend_acceptor<none> acceptor(path, params);
        const auto first_message = [](const sn::control::channel& ch) {
            sn::control::message m;
            EXPECT_EQ(ch.receive(m, std::chrono::milliseconds(1000)).status,
                      sn::control::receive_status::ok);
            return m;
        };
        std::vector<sn::control::channel> silent;
        for (int i = 0; i < 2; ++i) {
            silent.push_back(sn::control::channel::connect(path));
            acceptor.step();
            EXPECT_EQ(first_message(silent.back()).type(), sn::control::message_type::hello);
        }
        EXPECT_EQ(acceptor.fds().size(), 3U) << "listener and two pending handshakes";
        auto over = sn::control::channel::connect(path);
        acceptor.step();
        const sn::control::message e = first_message(over);
        EXPECT_EQ(e.type(), sn::control::message_type::error);
        EXPECT_TRUE(contains(std::string(e.get("reason").value_or("")), "max_pending_handshakes"))
            << e.get("reason").value_or("(no reason)");
        EXPECT_EQ(acceptor.stats().refused, 1U);
        EXPECT_EQ(acceptor.fds().size(), 3U) << "the refused peer is not held";

        silent.pop_back(); // one pending peer leaves: room for the next
        acceptor.step();
        EXPECT_EQ(acceptor.fds().size(), 2U);
        auto next = sn::control::channel::connect(path);
        acceptor.step();
        EXPECT_EQ(first_message(next).type(), sn::control::message_type::hello);
        EXPECT_EQ(acceptor.fds().size(), 3U);
    }
    EXPECT_EQ(st::open_fds(), fds_before) << "descriptors leaked by the acceptor";
}

// ---- bugs found by these tests, fixed in the library (81d1a5a); kept as regression tests ------

// A front end could hang the worker that serves it (and every other front end on that worker):
// its doorbells are eventfds whose open file description it shares, so it can clear the
// O_NONBLOCK the back end set, after which the back end's read of an empty doorbell
// (consume_kicks) or write to a saturated one (notify) would block.
TEST_F(HostileFrontend, ClearingNonBlockOnADoorbellCannotHangTheWorker) {
    session s(dd_);
    ASSERT_TRUE(s.back) << s.why;
    auto& q = s.q();
    const int kick = s.raw.event(0, sn::event_dir::tx_to_back).fd();
    ASSERT_EQ(::fcntl(kick, F_SETFL, ::fcntl(kick, F_GETFL) & ~O_NONBLOCK), 0);
    const bool consumed = finishes_within([&] { q.consume_kicks(); }, hang_limit,
                                          [&] { (void)::eventfd_write(kick, 1); });
    EXPECT_TRUE(consumed) << "consume_kicks() blocked on a doorbell the front end made blocking";

    const int answer = s.raw.event(0, sn::event_dir::tx_to_front).fd();
    ASSERT_EQ(::eventfd_write(answer, 0xfffffffffffffffeULL), 0); // the counter is full
    ASSERT_EQ(::fcntl(answer, F_SETFL, ::fcntl(answer, F_GETFL) & ~O_NONBLOCK), 0);
    const sn::tx_request r = numbered_request(s.raw, 0, 1, 100, 0);
    ASSERT_EQ(s.raw.tx().put_requests({&r, 1}), 1U);
    (void)s.raw.tx().push_requests();
    std::vector<sp::frame> got(8);
    const bool answered = finishes_within([&] { got.resize(q.rx_burst(got)); }, hang_limit,
                                          [&] {
                                              eventfd_t v;
                                              (void)::eventfd_read(answer, &v);
                                          });
    EXPECT_TRUE(answered) << "rx_burst() blocked notifying a doorbell the front end saturated";
    pool().free_burst(got);
    honest(10);
}

// The back end adopted any descriptor as an event channel: a pipe (or socket, or file) the front
// end kept the other end of was accepted, and a full pipe made blocking hung notify(). Now
// anything but an eventfd is refused (and if one were accepted, the rest shows what it costs).
TEST_F(HostileFrontend, EventChannelDescriptorsMustBeEventfds) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    {
        st::raw_frontend raw;
        auto m = raw.connect_message(
            [&](sn::connect_info& ci) { ci.queues[0].events[sn::event_dir::tx_to_front] = p[1]; });
        auto r = st::accept_raw(dd_.params, raw, m);
        EXPECT_FALSE(r.back) << "a pipe was accepted as an event channel";
        if (r.back) {
            // Show what it costs: fill the pipe, make it blocking, send one packet.
            const char fill[4096] = {};
            while (::write(p[1], fill, sizeof fill) > 0) {
            }
            ASSERT_EQ(::fcntl(p[1], F_SETFL, ::fcntl(p[1], F_GETFL) & ~O_NONBLOCK), 0);
            const sn::tx_request req = numbered_request(raw, 0, 1, 100, 0);
            ASSERT_EQ(raw.tx().put_requests({&req, 1}), 1U);
            (void)raw.tx().push_requests();
            std::vector<sp::frame> got(8);
            auto& q = r.back->queue(0);
            const bool answered = finishes_within([&] { got.resize(q.rx_burst(got)); }, hang_limit,
                                                  [&] {
                                                      char sink[4096];
                                                      (void)!::read(p[0], sink, sizeof sink);
                                                  });
            EXPECT_TRUE(answered) << "rx_burst() blocked writing to the front end's full pipe";
            pool().free_burst(got);
        }
    }
    ::close(p[0]);
    ::close(p[1]);
    honest(10);
}

// A packet with a multicast extra and a total size of 0 passes the decoder (the runt check
// exempts multicast packets), needs no buffer, and still becomes a frame: a copy of whichever
// descriptor sits in the buffer array at its position, i.e. the next packet's buffer or a stale
// one the queue already handed out.
TEST_F(HostileFrontend, AZeroLengthMulticastPacketNeverBecomesAFrame) {
    session s(dd_);
    ASSERT_TRUE(s.back) << s.why;
    st::raw_frontend& raw = s.raw;
    auto& q = s.q();
    sn::extra_info mc{};
    mc.type = sn::extra_type_mcast_add;
    mc.u.mcast = {{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}};
    const sg::grant_ref any = raw.grant_page(9, true);
    const sn::tx_request mcast_zero = {any, 0, sn::tx_flag::extra_info, 50, 0};

    // 1. Burst 1: a good packet; the caller keeps its frame.
    const sn::tx_request good = numbered_request(raw, 0, 3000, 200, 1);
    ASSERT_EQ(raw.send_tx({&good, 1}), 1U);
    auto kept = pull(q, pool());
    ASSERT_EQ(kept.size(), 1U);
    // 2. Burst 2: only the zero-length multicast packet.
    const sn::tx_request alone[] = {mcast_zero, sn::slot_from(mc)};
    ASSERT_EQ(raw.send_tx(alone), 2U);
    std::vector<sp::frame> out(8);
    out.resize(q.rx_burst(out));
    std::set<std::uint64_t> owned{kept[0].buffer};
    for (const auto& f : out) {
        EXPECT_TRUE(frame_ok(f, pool())) << "a frame of a zero-length packet";
        EXPECT_FALSE(owned.contains(f.buffer))
            << "rx_burst handed out buffer " << f.buffer << " that the caller still owns";
    }
    // 3. Burst 3: the multicast packet, then a good one: both frames name one buffer.
    const sn::tx_request second = numbered_request(raw, 1, 3001, 200, 2);
    const sn::tx_request both[] = {mcast_zero, sn::slot_from(mc), second};
    ASSERT_EQ(raw.send_tx(both), 3U);
    std::vector<sp::frame> out2(8);
    out2.resize(q.rx_burst(out2));
    std::set<std::uint64_t> seen;
    bool aliased = false;
    for (const auto& f : out2) {
        EXPECT_TRUE(frame_ok(f, pool()));
        aliased = aliased || (f.buffer != sp::no_buffer && !seen.insert(f.buffer).second);
    }
    EXPECT_FALSE(aliased) << "two frames of one burst share a buffer";
    EXPECT_TRUE(std::none_of(out2.begin(), out2.end(), [](const sp::frame& f) {
        return f.pkt_len < sn::ethernet_header_bytes;
    })) << "a runt frame left the back end";
    // Free every buffer exactly once, whatever the queue handed out, so the pool stays sound.
    std::set<std::uint64_t> freed;
    for (auto* v : {&kept, &out, &out2}) {
        for (const auto& f : *v) {
            if (f.pkt_len != 0 && f.buffer != sp::no_buffer && freed.insert(f.buffer).second) {
                pool().free(f);
            }
        }
    }
    honest(10);
}

// The same zero-length multicast packet, with csum_blank, followed by a packet whose grant is
// bad: the first "frame" (the second packet's buffer) fails finish_tx_frame and is freed, then
// the second packet's failed copy frees the same buffer again (found by netback_tx_fuzz).
TEST_F(HostileFrontend, AZeroLengthMulticastPacketFreesNoBufferTwice) {
    driver_domain dd2(64);
    session s(dd2);
    ASSERT_TRUE(s.back) << s.why;
    sn::extra_info mc{};
    mc.type = sn::extra_type_mcast_add;
    const sn::tx_request reqs[] = {
        {s.raw.grant_page(9, true), 0, sn::tx_flag::extra_info | sn::tx_flag::csum_blank, 50, 0},
        sn::slot_from(mc),
        {200 /* never granted */, 0, 0, 51, 200},
    };
    ASSERT_EQ(s.raw.send_tx(reqs), 3U);
    std::vector<sp::frame> got(8);
    got.resize(s.q().rx_burst(got));
    EXPECT_TRUE(got.empty());
    EXPECT_EQ(dd2.mem.pool().stats().double_free, 0U) << "a buffer was freed twice";
    EXPECT_EQ(s.q().queue_stats().tx_copy_failed, 1U);
    honest(5);
}

// backend_config::limits is not checked against what the decoder can hold (max_tx_fragments =
// 32): with fatal_slots above 32 a packet of 33..fatal_slots slots is accepted, only 32 of its
// fragments are copied, and the frame's pkt_len claims bytes its chain does not hold.
TEST_F(HostileFrontend, SlotLimitsBeyondTheDecodersCapacityAreRefused) {
    driver_domain dd2(1024);
    dd2.params.queue.limits = {40, 48};
    st::raw_frontend raw;
    st::raw_accept_result<none> r;
    try {
        r = st::accept_raw(dd2.params, raw);
    } catch (const std::invalid_argument&) {
        return; // refusing the configuration is a fix
    }
    if (!r.back) {
        return; // so is refusing the connection
    }
    auto& q = r.back->queue(0);
    const auto p = fragmented(raw, 0, 4000, 34, 0);
    ASSERT_EQ(raw.send_tx(p), 34U);
    std::vector<sp::frame> got(4);
    got.resize(q.rx_burst(got));
    for (const auto& f : got) {
        EXPECT_TRUE(frame_ok(f, dd2.mem.pool()));
        EXPECT_EQ(check_numbered(bytes_of(f)), 4000);
    }
    const auto rsps = raw.tx_responses();
    std::set<std::uint16_t> ids;
    for (const auto& x : rsps) {
        ids.insert(x.id);
    }
    EXPECT_EQ(ids.size(), 34U) << "each request is answered under its own id";
    dd2.mem.pool().free_burst(got);
    r.back.reset();
    EXPECT_EQ(dd2.mem.pool().available(), dd2.mem.pool().capacity());
    honest(5);
}

// A ring half the back end finds broken outside rx_burst/deliver (at attach, or in the final
// check before the worker sleeps) does not break the queue: fault() stays empty, poll_control()
// keeps the front end connected, and nothing happens until the front end kicks.
TEST_F(HostileFrontend, ARingFaultFoundWhilePreparingToSleepIsReported) {
    session s(dd_);
    ASSERT_TRUE(s.back) << s.why;
    auto& q = s.q();
    const auto page = s.raw.tx_page();
    st::raw_frontend::poke(page, raw_layout::req_prod,
                           st::raw_frontend::peek(page, raw_layout::rsp_prod) + 1000);
    EXPECT_FALSE(q.prepare_to_sleep()) << "no work: the worker would sleep";
    EXPECT_TRUE(q.broken()) << "the final check found the index out of range; the queue says '"
                            << q.fault() << "'";
    EXPECT_FALSE(s.back->poll_control()) << "the front end stays connected";

    st::raw_frontend raw2(st::raw_frontend_config{.self = 3});
    st::raw_frontend::poke(raw2.tx_page(), raw_layout::req_prod, 5000);
    auto r = st::accept_raw(dd_.params, raw2);
    ASSERT_TRUE(r.back) << r.why;
    EXPECT_TRUE(r.back->queue(0).broken()) << "broken at attach, but not until the first rx_burst";
    EXPECT_FALSE(r.back->poll_control());
    honest(10);
}

// With frontend copy the back end hands a front end its region through a read-only descriptor
// (and its own activity slot in a separate page): mapping it writable must fail, so a guest
// cannot rewrite another guest's packets, the grant table or the activity page.
TEST_F(HostileFrontend, FrontendCopyGivesNoWriteAccessToTheDriverDomainsMemory) {
    dd_.params.offer.frontend_copy = true;
    st::raw_frontend_config cfg;
    cfg.rx_copy = sn::copy_side::frontend;
    session s(dd_, cfg);
    ASSERT_TRUE(s.back) << s.why;
    sn::control::message m;
    ASSERT_EQ(s.raw.control().receive(m, std::chrono::milliseconds(1000)).status,
              sn::control::receive_status::ok);
    ASSERT_EQ(m.type(), sn::control::message_type::connected);
    std::string why;
    const auto ci = sn::connected_info::read(m, true, why);
    ASSERT_TRUE(ci) << why;
    const int fd = m.take_fd(static_cast<std::size_t>(ci->region));
    ASSERT_GE(fd, 0);
    struct stat st {};
    ASSERT_EQ(::fstat(fd, &st), 0);
    const auto size = static_cast<std::size_t>(st.st_size);
    void* map = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    ASSERT_EQ(map, MAP_FAILED) << "the driver domain's memory must not be writable by a guest";
    EXPECT_EQ(errno, EACCES);
    honest(10);
}

// A guest's GSO extra may name any MSS. The back end refuses one its MTU cannot carry (the
// packet is dropped with rsp_error), and gso_segmenter itself never writes a segment larger than
// a pool buffer: an aggregate whose headers + MSS do not fit is refused, not written past the
// buffer into other frames (both found by netback_tx_fuzz).
TEST_F(HostileFrontend, AGuestChosenMssIsBoundedAndSegmentingNeverOverflowsABuffer) {
    driver_domain dd2(64);
    auto& pool2 = dd2.mem.pool();
    auto cfg = honest_peer::config();
    cfg.request.gso_tcpv4 = cfg.request.gso_tcpv6 = false; // the victim takes no aggregates
    auto victim = st::connect_pair(dd2.params, cfg, 3);
    ASSERT_FALSE(victim.back->features().rx_gso_tcpv4);
    session s(dd2);
    ASSERT_TRUE(s.back) << s.why;

    // Every other buffer of the pool holds a frame of someone else's, with a known pattern.
    std::vector<sp::frame> all(pool2.capacity());
    ASSERT_EQ(pool2.alloc_burst(all), all.size());
    std::vector<sp::frame> held;
    for (auto& f : all) {
        if (pool2.index_of(f.buffer) % 2 == 1) {
            std::memset(pool2.base() + f.buffer, 0xc3, pool2.frame_size());
            held.push_back(f);
        } else {
            pool2.free(f);
        }
    }

    // The hostile guest sends a 12000-byte TCP payload as one TSO packet with MSS 4000.
    std::vector<std::uint8_t> payload(12000);
    sp::fill_stream_bytes(payload, 5, 0);
    std::vector<std::uint8_t> pkt(payload.size() + 100);
    pkt.resize(sp::build_tcp(pkt, {}, {}, {}, payload));
    ASSERT_GT(pkt.size(), 12000U);
    std::vector<sn::tx_fragment> frags;
    for (std::size_t off = 0, page = 0; off < pkt.size(); off += 4096, ++page) {
        const std::size_t n = std::min<std::size_t>(4096, pkt.size() - off);
        std::memcpy(s.raw.data(static_cast<std::uint32_t>(page)), pkt.data() + off, n);
        frags.push_back({s.raw.grant_page(static_cast<std::uint32_t>(page), true), 0,
                         static_cast<std::uint16_t>(n), static_cast<std::uint16_t>(page)});
    }
    const sn::extra_info gso[] = {sn::make_gso_extra(sn::gso_type_tcpv4, 4000)};
    std::vector<sn::tx_request> reqs(8);
    sn::tx_encode_error err{};
    reqs.resize(sn::encode_tx_packet(frags, gso, sn::tx_flag::csum_blank, reqs, err));
    ASSERT_EQ(s.raw.send_tx(reqs), reqs.size());
    auto got = pull(s.q(), pool2);
    EXPECT_TRUE(got.empty()) << "an MSS above the guest's MTU is refused";
    EXPECT_EQ(s.q().queue_stats().tx_dropped, 1U);
    EXPECT_FALSE(s.q().broken()) << "a per-packet drop, not a protocol fault";
    pool2.free_burst(got);

    // The same aggregate from anywhere else (it cannot come from a guest any more) reaches a guest
    // without GSO: segmenting it must not write past a buffer.
    sp::frame agg = st::make_chain(pool2, pkt);
    const auto parsed = sp::parse(agg.bytes(), agg.pkt_len);
    sp::set_partial_checksum(agg.bytes(), parsed, agg.offload);
    agg.offload.gso = sp::gso_type::tcpv4;
    agg.offload.gso_size = 4000;
    ASSERT_TRUE(sp::complete_offload_metadata(parsed, agg.offload));
    ASSERT_EQ(victim.back->queue(0).tx_burst({&agg, 1}), 1U);
    (void)victim.back->queue(0).deliver(now());
    EXPECT_EQ(victim.back->queue(0).queue_stats().rx_dropped, 1U);
    std::size_t overwritten = 0;
    for (const auto& f : held) {
        const std::uint8_t* b = pool2.base() + f.buffer;
        overwritten +=
            std::any_of(b, b + pool2.frame_size(), [](std::uint8_t x) { return x != 0xc3; }) ? 1
                                                                                             : 0;
    }
    EXPECT_EQ(overwritten, 0U) << "segmenting the guest's frame wrote into " << overwritten
                               << " buffers that belong to other frames";
    std::array<sp::frame, 8> in;
    const std::size_t n = victim.front->queue(0).rx_burst(in);
    victim.front->pool().free_burst({in.data(), n});
    pool2.free_burst(held);
}

} // namespace
