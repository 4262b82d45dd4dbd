// netback and netfront in two processes, as deployed: the front end forks off, connects over the
// control socket, shares its memfd region and eventfds, and both sides sleep on their doorbells
// when idle. Millions of frames cross both ways with every byte checked; a front end killed
// mid-stream is noticed, everything it held comes back, and the next front end is served.
#include <chrono>
#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netif/endpoint_fixture.hpp"
#include <signal.h>

namespace sn = splitnet::netif;
namespace sp = splitnet::packet;
using splitnet::test::bytes_of;
using splitnet::test::check_numbered;
using splitnet::test::make_chain;
using splitnet::test::numbered_frame;

namespace {

using none = splitnet::coalesce::moderation::none;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::uint64_t frames_each_way = 100'000;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr std::uint64_t frames_each_way = 100'000;
#else
constexpr std::uint64_t frames_each_way = 1'000'000;
#endif
#else
constexpr std::uint64_t frames_each_way = 1'000'000;
#endif

splitnet::coalesce::time_point now() {
    return splitnet::coalesce::time_point(std::chrono::steady_clock::now().time_since_epoch());
}

std::size_t frame_size(std::mt19937& rng) {
    const auto r = rng() % 100;
    return r < 2 ? 9000 : r < 50 ? 60 + rng() % 200 : 1000 + rng() % 515;
}

void wait_readable(std::initializer_list<int> fds, int ms) {
    pollfd p[4];
    int n = 0;
    for (const int fd : fds) {
        p[n++] = {fd, POLLIN, 0};
    }
    ::poll(p, static_cast<nfds_t>(n), ms);
}

/// The child: a front end that sends `count` numbered frames and checks `count` coming back.
/// Exit codes: 0 ok, 2 connect failed, 3 a frame arrived damaged or out of order, 4 stuck.
[[noreturn]] void run_frontend(const std::string& path, std::uint64_t count, sn::copy_side side) {
    int code = 0;
    try {
        sn::frontend_config cfg;
        cfg.request.rx_copy = side;
        cfg.mtu = 9000;
        auto front = sn::frontend::connect(path, cfg);
        auto& q = front->queue(0);
        std::mt19937 rng(11);
        std::uint64_t sent = 0, got = 0;
        std::vector<sp::frame> burst(64);
        auto last_progress = std::chrono::steady_clock::now();
        // Done when everything went both ways and the back end has taken all we sent.
        while ((sent < count || got < count || q.tx_outstanding() != 0) && code == 0) {
            bool progress = false;
            if (sent < count) {
                std::vector<sp::frame> out;
                while (out.size() < 32 && sent + out.size() < count &&
                       front->pool().available() > 64) {
                    out.push_back(make_chain(front->pool(),
                                             numbered_frame(sent + out.size(), frame_size(rng))));
                }
                const std::size_t took = q.tx_burst(out);
                front->pool().free_burst({out.data() + took, out.size() - took});
                sent += took;
                progress = took != 0;
            }
            const std::size_t n = q.rx_burst(burst);
            for (std::size_t i = 0; i < n; ++i) {
                if (check_numbered(bytes_of(burst[i])) != static_cast<std::int64_t>(got++)) {
                    code = 3;
                }
            }
            front->pool().free_burst({burst.data(), n});
            progress = progress || n != 0;
            const auto t = std::chrono::steady_clock::now();
            if (progress) {
                last_progress = t;
            } else if (t - last_progress > std::chrono::seconds(20)) {
                code = 4;
            } else if (!q.prepare_to_sleep()) {
                wait_readable({q.rx_event_fd(), q.tx_event_fd()}, 5);
                q.consume_events();
            }
            if (!front->poll_control()) {
                code = 4;
            }
        }
    } catch (const std::exception&) {
        code = 2;
    }
    ::_exit(code);
}

struct served {
    std::uint64_t up = 0;   ///< frames received from the guest, checked
    std::uint64_t down = 0; ///< frames queued to the guest
    bool damaged = false;
};

/// The parent: serves one back end until `until` says stop or the front end goes away,
/// continuing the numbering in `s` from an earlier call.
template <class Until>
void serve(sn::backend<none>& back, sp::buffer_pool& pool, served& s, Until until) {
    auto& q = back.queue(0);
    std::mt19937 rng(11 + static_cast<unsigned>(s.down));
    std::vector<sp::frame> burst(64);
    while (!until(s) && back.poll_control()) {
        bool progress = false;
        const std::size_t n = q.rx_burst(burst);
        for (std::size_t i = 0; i < n; ++i) {
            s.damaged |= check_numbered(bytes_of(burst[i])) != static_cast<std::int64_t>(s.up++);
        }
        pool.free_burst({burst.data(), n});
        progress = n != 0;
        std::vector<sp::frame> out;
        while (out.size() < 32 && s.down + out.size() < frames_each_way && !q.has_rx_backlog()) {
            out.push_back(make_chain(pool, numbered_frame(s.down + out.size(), frame_size(rng))));
        }
        const std::size_t took = q.tx_burst(out);
        pool.free_burst({out.data() + took, out.size() - took});
        s.down += took;
        progress = q.deliver(now()) != 0 || progress || took != 0;
        if (!progress && !q.prepare_to_sleep()) {
            wait_readable({q.tx_kick_fd(), q.rx_kick_fd(), back.control_fd()}, 5);
            q.consume_kicks();
        }
    }
}

std::string socket_path(const char* name) {
    return "/tmp/splitnet-" + std::string(name) + "-" + std::to_string(::getpid());
}

std::unique_ptr<sn::backend<none>> accept_one(sn::backend_acceptor<none>& acc) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        acc.step();
        if (auto b = acc.take_connected()) {
            return b;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return nullptr;
}

class CrossProcess : public ::testing::TestWithParam<sn::copy_side> {};

TEST_P(CrossProcess, MillionsOfFramesBothWaysWithEveryByteChecked) {
    splitnet::test::driver_domain_memory<none> dd(16384);
    const std::string path = socket_path("xproc");
    sn::backend_acceptor<none> acc(path, dd.params);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        run_frontend(path, frames_each_way, GetParam());
    }
    auto back = accept_one(acc);
    ASSERT_TRUE(back) << acc.stats().last_refusal;
    served s;
    serve(*back, dd.mem.pool(), s,
          [](const served& x) { return x.up >= frames_each_way && x.down >= frames_each_way; });
    // Keep serving until the child has all its frames and exits (its channel closes).
    serve(*back, dd.mem.pool(), s, [](const served&) { return false; });
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_EQ(s.up, frames_each_way);
    EXPECT_FALSE(s.damaged);
    ASSERT_TRUE(WIFEXITED(status)) << "the front end did not finish";
    EXPECT_EQ(WEXITSTATUS(status), 0) << "front end: 3 = damaged frame, 4 = stuck";
    const auto& st = back->queue(0).queue_stats();
    EXPECT_EQ(st.tx_dropped + st.tx_copy_failed + st.rx_copy_failed + st.rx_dropped, 0U);
    RecordProperty("rx_notifications", std::to_string(st.rx_notifications));
    back.reset();
    EXPECT_EQ(dd.mem.pool().available(), dd.mem.pool().capacity());
}

INSTANTIATE_TEST_SUITE_P(CopySide, CrossProcess,
                         ::testing::Values(sn::copy_side::backend, sn::copy_side::frontend),
                         [](const auto& i) {
                             return i.param == sn::copy_side::backend ? std::string("Backend")
                                                                      : std::string("Frontend");
                         });

TEST(CrossProcessFailure, AFrontEndKilledMidStreamIsReclaimedAndTheNextIsServed) {
    for (const auto side : {sn::copy_side::backend, sn::copy_side::frontend}) {
        splitnet::test::driver_domain_memory<none> dd(16384);
        const std::string path = socket_path("kill");
        sn::backend_acceptor<none> acc(path, dd.params);
        const pid_t victim = ::fork();
        ASSERT_GE(victim, 0);
        if (victim == 0) {
            run_frontend(path, ~0ULL >> 1, side); // never finishes on its own
        }
        auto back = accept_one(acc);
        ASSERT_TRUE(back);
        served s;
        serve(*back, dd.mem.pool(), s, [](const served& x) { return x.up >= 20'000; });
        EXPECT_FALSE(s.damaged);
        ::kill(victim, SIGKILL);
        int status = 0;
        ::waitpid(victim, &status, 0);
        // Keep serving: the dead front end's channel end is seen, the backend disconnects.
        serve(*back, dd.mem.pool(), s, [](const served&) { return false; });
        EXPECT_FALSE(back->connected());
        EXPECT_NE(back->disconnect_reason().find("exited or crashed"), std::string::npos)
            << back->disconnect_reason();
        acc.release_id(back->frontend_id());
        back.reset();
        EXPECT_EQ(dd.mem.pool().available(), dd.mem.pool().capacity())
            << "frames queued for or granted to the dead front end came back";

        const pid_t next = ::fork();
        ASSERT_GE(next, 0);
        if (next == 0) {
            run_frontend(path, 5000, side);
        }
        auto again = accept_one(acc);
        ASSERT_TRUE(again);
        s = {};
        serve(*again, dd.mem.pool(), s,
              [](const served& x) { return x.up >= 5000 && x.down >= 5000; });
        EXPECT_FALSE(s.damaged);
        // The child exits once it has its 5000; serve until it does.
        serve(*again, dd.mem.pool(), s, [](const served&) { return false; });
        ::waitpid(next, &status, 0);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << "status " << status << " (exit code 2 connect, 3 damaged, 4 stuck)";
        again.reset();
        EXPECT_EQ(dd.mem.pool().available(), dd.mem.pool().capacity());
    }
}

} // namespace
