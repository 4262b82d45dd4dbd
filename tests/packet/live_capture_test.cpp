// The same checks on traffic captured now from this machine's kernel (namespaces, veth,
// iperf3, tcpdump), so a kernel change shows up. Needs root; skipped with the reason otherwise.
#include <cstdio>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>
#include <unistd.h>

#include "packet/capture_checks.hpp"

TEST(LiveKernelCapture, FreshCaptureParsesAndChecksumsAgree) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root to create network namespaces; run scripts/test.sh as root";
    }
    const std::string out = ::testing::TempDir() + "splitnet_live_capture.pcap";
    const std::string cmd =
        std::string(SPLITNET_SCRIPTS_DIR) + "/capture-kernel-traffic.sh " + out + " 300K";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    const auto s = splitnet::test::check_kernel_capture(out);
    splitnet::test::expect_full_mix(s);
    std::remove(out.c_str());
}
