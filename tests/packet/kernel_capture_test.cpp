// The parser and checksums against packets the real Linux stack sent: a capture committed in
// tests/data (made by scripts/capture-kernel-traffic.sh), so this runs everywhere.
#include <gtest/gtest.h>

#include "packet/capture_checks.hpp"

TEST(KernelCapture, CommittedCaptureParsesAndChecksumsAgree) {
    const auto s =
        splitnet::test::check_kernel_capture(SPLITNET_TEST_DATA_DIR "/kernel_traffic.pcap");
    EXPECT_EQ(s.frames, 479U);
    splitnet::test::expect_full_mix(s);
}
