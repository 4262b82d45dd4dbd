// SPDX-License-Identifier: MIT
// The scheduling simulator at sizes this machine cannot host (64 cores, 8 LLC domains, 32
// workers, 512 guests): it runs, serves every guest, and cache-aware dispatch keeps more copies
// inside the guests' LLC than least-loaded dispatch. Heavy under sanitizers: label sched;stress.
#include <chrono>

#include <gtest/gtest.h>

#include <splitnet/sched/simulator.hpp>

namespace sim = splitnet::sched::sim;
using namespace std::chrono_literals;

// A scale this machine cannot host: 64 cores in 8 LLC domains, 32 workers, 512 guests.
TEST(SimulatorScale, SixtyFourCoresAndHundredsOfGuests) {
    sim::config c;
    c.cores = 64;
    c.llc_domains = 8;
    c.workers = 32;
    c.classes = {sim::traffic_class{.name = "g", .guests = 512, .pps = 8'000}};
    c.duration = 100ms;
    c.warmup = 30ms;
    c.dispatch = sim::dispatch_kind::least_loaded;
    const sim::result least = sim::run(c);
    c.dispatch = sim::dispatch_kind::cache_aware;
    const sim::result cache = sim::run(c);
    EXPECT_EQ(least.guests.size(), 512U);
    EXPECT_GT(least.delivered, least.offered * 99 / 100);
    EXPECT_LT(cache.cross_llc_fraction, least.cross_llc_fraction);
    EXPECT_GT(cache.jain_fairness, 0.99);
}
