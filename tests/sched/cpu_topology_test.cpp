// SPDX-License-Identifier: MIT
// cpu_topology and placement: CPU-list parsing, LLC domains read from fake /sys trees
// (tests/data/sched: two sockets with L3s, the seed's Clovertown whose LLC is a shared L2 with
// non-contiguous pairs, an offline CPU), the error paths and their messages, and cache-aware
// placement (worker CPUs spread over domains by guest count; homes inside the guest's domain).
#include <algorithm>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/sched/cpu_topology.hpp>
#include <splitnet/sched/placement.hpp>

namespace ss = splitnet::sched;

namespace {
std::string tree(const char* name) {
    return std::string(SPLITNET_TEST_DATA_DIR) + "/sched/" + name;
}

template <class E, class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    return "<no exception>";
}
} // namespace

TEST(CpuList, ParsesKernelSyntax) {
    EXPECT_EQ(ss::parse_cpu_list("0-3,8,10-11\n"),
              (std::vector<std::uint32_t>{0, 1, 2, 3, 8, 10, 11}));
    EXPECT_EQ(ss::parse_cpu_list("5"), (std::vector<std::uint32_t>{5}));
    EXPECT_EQ(ss::parse_cpu_list("3,1,1-2"), (std::vector<std::uint32_t>{1, 2, 3}))
        << "sorted and de-duplicated";
    EXPECT_TRUE(ss::parse_cpu_list("\n").empty());
}

TEST(CpuList, RejectsMalformedLists) {
    for (const char* bad : {"0-", "-3", "a", "1,,2", "3-1", "1,", "0-3x"}) {
        EXPECT_THROW((void)ss::parse_cpu_list(bad), std::invalid_argument) << bad;
    }
    const std::string msg =
        error_of<std::invalid_argument>([] { (void)ss::parse_cpu_list("3-1", "/x/online"); });
    EXPECT_NE(msg.find("/x/online"), std::string::npos) << msg;
    EXPECT_NE(msg.find("backwards"), std::string::npos) << msg;
}

TEST(CpuTopology, TwoSocketsWithAnL3Each) {
    const auto t = ss::cpu_topology::from_sysfs(tree("two_socket_l3"));
    EXPECT_EQ(t.llc_level(), 3U);
    EXPECT_EQ(t.online_count(), 8U);
    ASSERT_EQ(t.domain_count(), 2U);
    EXPECT_EQ(std::vector<std::uint32_t>(t.cpus_of(0).begin(), t.cpus_of(0).end()),
              (std::vector<std::uint32_t>{0, 1, 4, 5}));
    EXPECT_EQ(std::vector<std::uint32_t>(t.cpus_of(1).begin(), t.cpus_of(1).end()),
              (std::vector<std::uint32_t>{2, 3, 6, 7}));
    EXPECT_TRUE(t.share_llc(0, 5));
    EXPECT_FALSE(t.share_llc(1, 2));
    EXPECT_EQ(t.describe(), "2 L3 domains: {0-1,4-5} {2-3,6-7}");
}

TEST(CpuTopology, SeedClovertownLlcIsASharedL2) {
    const auto t = ss::cpu_topology::from_sysfs(tree("clovertown"));
    EXPECT_EQ(t.llc_level(), 2U);
    ASSERT_EQ(t.domain_count(), 4U);
    for (std::uint32_t c = 0; c < 4; ++c) {
        EXPECT_TRUE(t.share_llc(c, c + 4)) << c;
        EXPECT_FALSE(t.share_llc(c, (c + 1) % 4)) << c;
    }
    EXPECT_EQ(t.domain_of(0), 0U);
    EXPECT_EQ(t.domain_of(6), 2U) << "numbered by first CPU";
}

TEST(CpuTopology, OfflineCpusBelongToNoDomain) {
    const auto t = ss::cpu_topology::from_sysfs(tree("offline_cpu"));
    EXPECT_EQ(t.cpu_count(), 6U);
    EXPECT_EQ(t.online_count(), 5U);
    EXPECT_FALSE(t.online(3));
    ASSERT_EQ(t.domain_count(), 1U);
    EXPECT_EQ(t.cpus_of(0).size(), 5U) << "cpu3 filtered out of the shared list";
}

TEST(CpuTopology, ErrorsNameTheFileAndTheWayOut) {
    const std::string missing = error_of<std::system_error>(
        [] { (void)ss::cpu_topology::from_sysfs(tree("missing_list")); });
    EXPECT_NE(missing.find("cpu2/cache/index3/shared_cpu_list"), std::string::npos) << missing;
    EXPECT_NE(missing.find("pass a topology explicitly"), std::string::npos) << missing;

    const std::string no_cache =
        error_of<std::system_error>([] { (void)ss::cpu_topology::from_sysfs(tree("no_cache")); });
    EXPECT_NE(no_cache.find("cpu1/cache/index0/level"), std::string::npos) << no_cache;

    const std::string overlap = error_of<std::invalid_argument>(
        [] { (void)ss::cpu_topology::from_sysfs(tree("inconsistent")); });
    EXPECT_NE(overlap.find("inconsistent"), std::string::npos) << overlap;

    EXPECT_THROW((void)ss::cpu_topology::from_sysfs(tree("bad_online")), std::invalid_argument);
    EXPECT_THROW((void)ss::cpu_topology::from_sysfs(tree("does_not_exist")), std::system_error);
}

TEST(CpuTopology, ThisMachineParsesOrSaysWhy) {
    try {
        const auto t = ss::cpu_topology::from_sysfs();
        EXPECT_GE(t.domain_count(), 1U);
        EXPECT_GE(t.online_count(), 1U);
    } catch (const std::system_error& e) {
        GTEST_SKIP() << "no cache information on this machine: " << e.what();
    }
}

TEST(CpuTopology, UniformBlocks) {
    const auto t = ss::cpu_topology::uniform(16, 4);
    ASSERT_EQ(t.domain_count(), 4U);
    EXPECT_EQ(t.domain_of(3), 0U);
    EXPECT_EQ(t.domain_of(4), 1U);
    EXPECT_EQ(t.domain_of(15), 3U);
    EXPECT_THROW((void)ss::cpu_topology::uniform(4, 8), std::invalid_argument);
    EXPECT_THROW((void)ss::cpu_topology::uniform(0, 1), std::invalid_argument);
}

TEST(Placement, HomesStayInTheGuestsDomainAndBalance) {
    const auto t = ss::cpu_topology::from_sysfs(tree("clovertown"));
    // Workers on 0 and 1 (domains 0 and 1), 4 (domain 0); guests on 4, 0, 5, 6, 4.
    const std::uint32_t workers[] = {0, 1, 4};
    const std::uint32_t guests[] = {4, 0, 5, 6, 4};
    const auto p = ss::placement::plan(t, workers, guests);
    EXPECT_EQ(p.home[0], 0U);
    EXPECT_EQ(p.home[1], 2U) << "balanced within domain 0";
    EXPECT_EQ(p.home[2], 1U);
    EXPECT_EQ(p.cross_domain_homes, 1U) << "domain 2 (cpu 6) has no worker";
    EXPECT_EQ(p.home[4], 2U) << "worker 0 already has two homes (one cross-domain)";
    EXPECT_EQ(p.domain_mask(0), 0b101U);
    EXPECT_THROW(
        (void)ss::placement::plan(t, std::vector<std::uint32_t>{9}, std::vector<std::uint32_t>{}),
        std::invalid_argument);
}

TEST(Placement, SpreadWorkersFollowsTheGuests) {
    const auto t = ss::cpu_topology::uniform(16, 4);
    // 12 guests in domain 0, 4 in domain 3: 4 workers -> 3 and 1.
    std::vector<std::uint32_t> guests;
    for (int i = 0; i < 12; ++i) {
        guests.push_back(static_cast<std::uint32_t>(i % 2)); // cpus 0,1
    }
    for (int i = 0; i < 4; ++i) {
        guests.push_back(12);
    }
    const auto w = ss::placement::spread_workers(t, 4, guests);
    ASSERT_EQ(w.size(), 4U);
    EXPECT_EQ(std::count_if(w.begin(), w.end(), [&](auto c) { return t.domain_of(c) == 0; }), 3);
    EXPECT_EQ(std::count_if(w.begin(), w.end(), [&](auto c) { return t.domain_of(c) == 3; }), 1);
    // CPUs without guest vCPUs first: 2 and 3, then one guest CPU of domain 0; 13 in domain 3.
    EXPECT_EQ(std::count(w.begin(), w.end(), 2U) + std::count(w.begin(), w.end(), 3U), 2);
    EXPECT_EQ(std::count(w.begin(), w.end(), 12U), 0);
    // No guests: even split; more workers than CPUs in the busy domain spill over.
    const auto even = ss::placement::spread_workers(t, 8, std::vector<std::uint32_t>{});
    for (std::uint32_t d = 0; d < 4; ++d) {
        EXPECT_EQ(
            std::count_if(even.begin(), even.end(), [&](auto c) { return t.domain_of(c) == d; }),
            2);
    }
    const auto spill = ss::placement::spread_workers(t, 6, std::vector<std::uint32_t>{0, 1});
    EXPECT_EQ(
        std::count_if(spill.begin(), spill.end(), [&](auto c) { return t.domain_of(c) == 0; }), 4)
        << "domain 0 has only 4 CPUs";
    EXPECT_THROW((void)ss::placement::spread_workers(t, 17, guests), std::invalid_argument);
}
