// shared_region and fd passing: a region created here is mapped by a forked child that received
// its fd over a Unix socket, both see the same bytes; unsealed memfds are refused; an overflow of
// passed descriptors closes them all instead of leaking.
#include <cstring>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <splitnet/ring/fd_passing.hpp>
#include <splitnet/ring/shared_region.hpp>

namespace sr = splitnet::ring;

TEST(SharedRegion, CreateMapAndAddressPages) {
    auto r = sr::shared_region::create("splitnet-test", 4);
    EXPECT_EQ(r.size(), 4U * 4096U);
    EXPECT_EQ(r.pages(), 4U);
    EXPECT_EQ(r.page(2).data(), r.bytes().data() + 8192);
    EXPECT_TRUE(r.page(4).empty()) << "out of range";
    EXPECT_TRUE(r.pages(3, 2).empty());
    EXPECT_EQ(r.bytes()[100], std::byte{0}) << "zero filled";
    const int seals = ::fcntl(r.fd(), F_GET_SEALS);
    EXPECT_EQ(seals & (F_SEAL_SHRINK | F_SEAL_GROW), F_SEAL_SHRINK | F_SEAL_GROW);
    EXPECT_NE(::ftruncate(r.fd(), 4096), 0) << "sealed against shrinking";
}

TEST(SharedRegion, ChildProcessSeesTheSameBytesThroughAPassedFd) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    auto r = sr::shared_region::create("splitnet-pass", 2);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::close(sv[0]);
        std::byte msg[8];
        int fds[2];
        const auto got = sr::recv_with_fds(sv[1], msg, fds);
        if (got.bytes != 1 || got.nfds != 1) {
            ::_exit(10);
        }
        auto mine = sr::shared_region::attach(fds[0]);
        if (std::memcmp(mine.page(1).data(), "hello", 5) != 0) {
            ::_exit(11);
        }
        std::memcpy(mine.page(0).data(), "world", 5);
        ::_exit(0);
    }
    ::close(sv[1]);
    std::memcpy(r.page(1).data(), "hello", 5);
    const std::byte one{1};
    const int fd = r.fd();
    ASSERT_EQ(sr::send_with_fds(sv[0], {&one, 1}, {&fd, 1}), 1);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_EQ(std::memcmp(r.page(0).data(), "world", 5), 0);
    ::close(sv[0]);
}

TEST(SharedRegion, AttachRefusesUnsealedOrOddRegions) {
    const int plain = ::memfd_create("unsealed", MFD_CLOEXEC);
    ASSERT_GE(plain, 0);
    ASSERT_EQ(::ftruncate(plain, 4096), 0);
    try {
        (void)sr::shared_region::attach(plain);
        FAIL() << "an unsealed region was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("not sealed"), std::string::npos);
    }
    const int odd = ::memfd_create("odd", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    ASSERT_EQ(::ftruncate(odd, 1000), 0);
    ASSERT_EQ(::fcntl(odd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
    EXPECT_THROW((void)sr::shared_region::attach(odd), std::invalid_argument);
}

TEST(FdPassing, TooManyDescriptorsAreClosedNotLeaked) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    int fds[3];
    for (int& f : fds) {
        f = ::dup(0);
    }
    const std::byte b{7};
    ASSERT_EQ(sr::send_with_fds(sv[0], {&b, 1}, fds), 1);
    std::byte msg[4];
    int got[2];
    const auto r = sr::recv_with_fds(sv[1], msg, got);
    EXPECT_EQ(r.bytes, -EMSGSIZE);
    EXPECT_EQ(r.nfds, 0U);
    for (int f : fds) {
        ::close(f);
    }
    ::close(sv[0]);
    ::close(sv[1]);
}
