// A front end process grants pages of its memfd region and a back end process copies through
// the grants in both directions, then the front end ends every grant; and a front end ending
// grants while a back end thread copies (TSan) never loses a deferred reference.
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <splitnet/grant/grant_copy.hpp>
#include <splitnet/grant/grant_table.hpp>
#include <splitnet/ring/fd_passing.hpp>
#include <splitnet/ring/shared_region.hpp>

#include "grant/grant_fixture.hpp"

namespace sg = splitnet::grant;
namespace sr = splitnet::ring;

TEST(GrantCrossProcess, BackEndCopiesOnlyThroughGrants) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    auto region = sr::shared_region::create("frontend", 2 + 64);
    sg::memory_domain dom{1, region.bytes(), 1, 4, region.fd()};
    sg::grant_table table(dom);
    // 64 packets: each in its own page; even ones for the back end to read, odd ones to fill.
    std::vector<sg::grant_ref> refs;
    for (std::uint64_t i = 0; i < 64; ++i) {
        const auto f = dom.first_data_frame() + i;
        std::memset(dom.page(f), static_cast<int>(i), 1500);
        refs.push_back(table.grant_access(2, f, i % 2 == 0));
    }
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::close(sv[0]);
        std::byte msg[512];
        int fd = -1;
        const auto got = sr::recv_with_fds(sv[1], msg, {&fd, 1});
        if (got.nfds != 1) {
            ::_exit(10);
        }
        auto mine = sr::shared_region::attach(fd);
        sg::domain_registry reg;
        reg.add({1, mine.bytes(), 1, 4, mine.fd()});
        sg::grant_copier copier(reg, 2, 0);
        std::vector<sg::grant_ref> r(64);
        std::memcpy(r.data(), msg, 64 * sizeof(sg::grant_ref));
        std::vector<std::uint8_t> pkt(1500);
        for (std::size_t i = 0; i + 1 < 64; i += 2) {
            // read the even packet, write it (+1) into the odd page
            sg::grant_copy_op ops[2] = {
                {sg::copy_side::granted(1, r[i]), sg::copy_side::buffer(pkt.data()), 1500, {}},
                {sg::copy_side::buffer(pkt.data()), sg::copy_side::granted(1, r[i + 1]), 1500, {}}};
            copier.copy({ops, 1});
            for (auto& b : pkt) {
                ++b;
            }
            copier.copy({ops + 1, 1});
            if (ops[0].status != sg::grant_status::okay ||
                ops[1].status != sg::grant_status::okay) {
                ::_exit(11);
            }
            // writing into a read-only grant must fail
            sg::grant_copy_op bad{
                sg::copy_side::buffer(pkt.data()), sg::copy_side::granted(1, r[i]), 1, {}};
            copier.copy({&bad, 1});
            if (bad.status != sg::grant_status::permission_denied) {
                ::_exit(12);
            }
        }
        ::_exit(0);
    }
    ::close(sv[1]);
    const int fd = region.fd();
    ASSERT_GT(sr::send_with_fds(sv[0], std::as_bytes(std::span(refs)), {&fd, 1}), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
    for (std::uint64_t i = 1; i < 64; i += 2) {
        const auto* p = reinterpret_cast<const std::uint8_t*>(dom.page(dom.first_data_frame() + i));
        EXPECT_EQ(p[0], static_cast<std::uint8_t>(i))
            << "page " << i << " holds packet " << i - 1 << " + 1";
        EXPECT_EQ(p[1499], static_cast<std::uint8_t>(i));
        EXPECT_EQ(p[1500], 0) << "nothing past the copy";
    }
    for (const auto r : refs) {
        EXPECT_EQ(table.end_access(r), sg::end_result::done);
    }
    ::close(sv[0]);
}

// The granter ends and re-grants while a copier thread copies: every end completes (at once or
// by reclaim), every copy is okay or fails cleanly with a status, and no byte lands outside the
// copier's own buffer or the granted page.
TEST(GrantConcurrent, EndingGrantsWhileCopiesRunLosesNoReference) {
    splitnet::test::test_domain a(1, 8);
    sg::domain_registry reg;
    reg.add(a.dom);
    std::atomic<sg::grant_ref> current{a.table.grant_access(2, 2, true)};
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> okay{0}, failed{0};
    std::thread copier_thread([&] {
        sg::grant_copier copier(reg, 2, 1);
        std::uint8_t buf[256];
        while (!stop.load(std::memory_order_relaxed)) {
            sg::grant_copy_op op{sg::copy_side::granted(1, current.load(std::memory_order_relaxed)),
                                 sg::copy_side::buffer(buf),
                                 256,
                                 {}};
            copier.copy({&op, 1});
            (op.status == sg::grant_status::okay ? okay : failed)
                .fetch_add(1, std::memory_order_relaxed);
        }
    });
    // On a loaded machine the copier may not run for a while: start churning once it copies,
    // and churn until it has copied many times during the churn (bounded in time).
    while (okay.load() == 0) {
        std::this_thread::yield();
    }
    const std::uint64_t copies_before = okay.load() + failed.load();
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    std::uint64_t deferred = 0, bad_ends = 0, waits = 0;
    for (int i = 0; i < 20000 || (okay.load() + failed.load() - copies_before < 2000 &&
                                  std::chrono::steady_clock::now() < give_up);
         ++i) {
        const auto old = current.load();
        auto next = a.table.grant_access(2, 2 + static_cast<std::uint64_t>(i % 8), true);
        // Every reference may be waiting for a batch of a descheduled copier: wait for it.
        while (next == sg::invalid_ref && waits < 1000000) {
            ++waits;
            std::this_thread::yield();
            a.table.reclaim();
            next = a.table.grant_access(2, 2 + static_cast<std::uint64_t>(i % 8), true);
        }
        current.store(next);
        const auto res = a.table.end_access(old);
        bad_ends += res == sg::end_result::done || res == sg::end_result::deferred ? 0 : 1;
        deferred += res == sg::end_result::deferred ? 1 : 0;
        a.table.reclaim();
    }
    stop = true;
    copier_thread.join();
    EXPECT_EQ(bad_ends, 0U);
    ASSERT_NE(current.load(), sg::invalid_ref) << "references never came back";
    ASSERT_EQ(a.table.end_access(current.load()), sg::end_result::done);
    a.table.reclaim();
    EXPECT_EQ(a.table.pending(), 0U);
    EXPECT_EQ(a.table.available(), 256U - sg::reserved_entries) << "every reference came back";
    EXPECT_GE(okay.load() + failed.load() - copies_before, 2000U) << "copies raced the churn";
    EXPECT_GT(okay.load(), 0U);
    RecordProperty("deferred_ends", std::to_string(deferred));
}
