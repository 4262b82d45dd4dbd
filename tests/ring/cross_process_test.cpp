// The I/O channel end to end: a front end and a back end move millions of numbered requests and
// responses over a split ring in shared memory, each sleeping on an eventfd when idle. Every
// request must arrive once and in order, every response likewise, and no wait may time out while
// work was pending (a lost wake-up). Once across fork() over a memfd (the real deployment), once
// with two threads (so ThreadSanitizer, blind across processes, checks the orderings).
#include <cstdint>
#include <thread>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <splitnet/event/eventfd_channel.hpp>
#include <splitnet/event/inproc_channel.hpp>
#include <splitnet/ring/shared_region.hpp>

#include "ring/ring_peers.hpp"

namespace sr = splitnet::ring;
namespace se = splitnet::event;
namespace st = splitnet::test;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::uint64_t stream_length = 300000;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr std::uint64_t stream_length = 300000;
#else
constexpr std::uint64_t stream_length = 3000000;
#endif
#else
constexpr std::uint64_t stream_length = 3000000;
#endif

using front_t = sr::front_ring<st::stream_req, st::stream_rsp>;
using back_t = sr::back_ring<st::stream_req, st::stream_rsp>;

} // namespace

TEST(CrossProcess, MillionsOfRequestsOverMemfdAndEventfd) {
    auto region = sr::shared_region::create("splitnet-xproc", 1);
    se::eventfd_channel to_back, to_front;
    front_t front(region.bytes()); // the front end initialises the ring before the fork
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        back_t back(region.bytes());
        const auto r = st::serve_stream(back, to_back, to_front);
        const bool ok =
            !r.broken && r.out_of_order == 0 && r.lost_wakeups == 0 && r.moved == stream_length;
        ::_exit(ok ? 0 : 1);
    }
    const auto r = st::drive_stream(front, to_back, to_front, stream_length);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "the back end saw a fault, a gap or a lost wake-up";
    EXPECT_FALSE(r.broken);
    EXPECT_EQ(r.moved, stream_length);
    EXPECT_EQ(r.out_of_order, 0U);
    EXPECT_EQ(r.lost_wakeups, 0U);
    RecordProperty("front_notifications_per_1000",
                   std::to_string(r.notifications * 1000 / stream_length));
}

template <class Channel>
void run_threads() {
    alignas(4096) static std::byte page[4096];
    Channel to_back, to_front;
    front_t front(page);
    back_t back(page);
    st::peer_result back_result;
    std::thread t([&] { back_result = st::serve_stream(back, to_back, to_front); });
    const auto r = st::drive_stream(front, to_back, to_front, stream_length / 4);
    t.join();
    EXPECT_FALSE(r.broken);
    EXPECT_FALSE(back_result.broken);
    EXPECT_EQ(r.moved, stream_length / 4);
    EXPECT_EQ(back_result.moved, stream_length / 4);
    EXPECT_EQ(r.out_of_order + back_result.out_of_order, 0U);
    EXPECT_EQ(r.lost_wakeups + back_result.lost_wakeups, 0U);
}

TEST(CrossThread, StreamOverEventfdChannels) {
    run_threads<se::eventfd_channel>();
}

TEST(CrossThread, StreamOverInprocChannels) {
    run_threads<se::inproc_channel>();
}
