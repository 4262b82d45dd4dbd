// SPDX-License-Identifier: MIT
// The scheduling simulator (a model, not a measurement): determinism and conservation, then the
// seeds' directions written as assertions on its output, each comparing two runs that differ in
// one policy only:
//   002 interrupt throttling: more packets per notification lowers the per-packet cost (and
//       raises latency: the trade-off is asserted too);
//   003 credit stealing raises an I/O-bound guest's share; co-locating workers with guests'
//       LLC lowers the copy cost;
//   004 a multi-worker backend with balanced dispatch delivers more than one worker;
// plus the adaptive moderation's promise (no added delay at low rates, batching at high rates)
// and proportional shares by weight under overload.
#include <chrono>
#include <stdexcept>

#include <gtest/gtest.h>

#include <splitnet/sched/simulator.hpp>

namespace sim = splitnet::sched::sim;
using namespace std::chrono_literals;

namespace {

sim::config small() {
    sim::config c;
    c.cores = 8;
    c.llc_domains = 2;
    c.workers = 2;
    c.classes = {sim::traffic_class{.name = "g", .guests = 8, .pps = 100'000}};
    c.duration = 200ms;
    c.warmup = 50ms;
    return c;
}

} // namespace

TEST(Simulator, IsDeterministicForASeed) {
    const sim::config c = small();
    const sim::result a = sim::run(c);
    const sim::result b = sim::run(c);
    EXPECT_EQ(a.delivered, b.delivered);
    EXPECT_EQ(a.notifications, b.notifications);
    EXPECT_EQ(a.p99_ns, b.p99_ns);
    EXPECT_EQ(a.sched.picks, b.sched.picks);
    sim::config d = c;
    d.seed = 2;
    EXPECT_NE(sim::run(d).offered, a.offered) << "Poisson arrivals depend on the seed";
}

TEST(Simulator, ConservesPackets) {
    sim::config c = small();
    c.classes[0].pps = 400'000; // overloaded: drops happen
    const sim::result r = sim::run(c);
    EXPECT_GT(r.dropped, 0U);
    EXPECT_LE(r.delivered + r.dropped, r.offered);
    // What is neither delivered nor dropped sits in queues and rings at the end of the run.
    EXPECT_LE(r.offered - r.delivered - r.dropped, 8U * (c.queue_len + c.ring));
    std::uint64_t sum = 0;
    for (const auto& g : r.guests) {
        sum += g.delivered;
    }
    EXPECT_EQ(sum, r.delivered);
    EXPECT_EQ(r.sched.protocol_errors, 0U);
}

TEST(Simulator, RejectsConfigurationsItCannotRun) {
    sim::config c = small();
    c.workers = 0;
    EXPECT_THROW((void)sim::run(c), std::invalid_argument);
    c = small();
    c.workers = 9; // more than cores
    EXPECT_THROW((void)sim::run(c), std::invalid_argument);
    c = small();
    c.classes.clear();
    EXPECT_THROW((void)sim::run(c), std::invalid_argument);
    c = small();
    c.classes[0].on = 1ms; // no off period
    EXPECT_THROW((void)sim::run(c), std::invalid_argument);
}

// Seed 002: driver-domain overhead is proportional to the number of batches; more packets per
// interrupt (6 -> 64 in the paper) lowers it, at a latency cost bounded by the timeout.
TEST(SimulatorSeeds, MorePacketsPerNotificationLowersPerPacketCost) {
    sim::config c = small();
    c.moderation = sim::moderation_kind::none;
    const sim::result none = sim::run(c);
    c.moderation = sim::moderation_kind::fixed;
    c.fixed = {6, 100us};
    const sim::result six = sim::run(c);
    c.fixed = {64, 100us};
    const sim::result sixty_four = sim::run(c);

    EXPECT_LT(none.packets_per_notification, six.packets_per_notification);
    EXPECT_LT(six.packets_per_notification, sixty_four.packets_per_notification);
    EXPECT_GT(none.cpu_ns_per_packet, six.cpu_ns_per_packet);
    EXPECT_GT(six.cpu_ns_per_packet, sixty_four.cpu_ns_per_packet);
    EXPECT_GT(none.cpu_ns_per_packet, 1.10 * sixty_four.cpu_ns_per_packet)
        << "at least 10% cheaper per packet";
    // The price: packets wait for the batch (bounded by the 100 µs timeout).
    EXPECT_LT(none.p50_ns, six.p50_ns);
    EXPECT_LT(six.p50_ns, sixty_four.p50_ns);
    EXPECT_LT(sixty_four.p99_ns, 100'000U + 50'000U) << "timeout + service + notification";
    EXPECT_EQ(none.dropped + six.dropped + sixty_four.dropped, 0U) << "not overloaded";
}

// Seed 003: stealing idle entities' credit for an I/O-busy one raises its share. One worker;
// three bulk guests (few events: 64 packets each) stay under their share; the I/O guest (one
// packet per event) wants more than its share; four on/off guests are idle most of each period.
TEST(SimulatorSeeds, CreditStealingRaisesAnIoBoundGuestsShare) {
    sim::config c;
    c.cores = 2;
    c.llc_domains = 1;
    c.workers = 1;
    c.duration = 600ms;
    c.warmup = 100ms;
    c.classes = {
        sim::traffic_class{.name = "bulk", .guests = 3, .pps = 220'000, .burst = 64},
        sim::traffic_class{.name = "io", .guests = 1, .pps = 550'000, .burst = 1},
        sim::traffic_class{.name = "idle", .guests = 4, .pps = 20'000, .on = 2ms, .off = 58ms},
    };
    c.sched = sim::sched_kind::credit;
    const sim::result plain = sim::run(c);
    c.sched = sim::sched_kind::credit_steal;
    const sim::result steal = sim::run(c);

    EXPECT_EQ(plain.sched.loan_rounds, 0U);
    EXPECT_GT(steal.sched.loan_rounds, 10U);
    EXPECT_GT(steal.sched.credit_returned_ns, 0U) << "lenders woke and took their loans back";
    const auto& io_plain = plain.classes[1];
    const auto& io_steal = steal.classes[1];
    EXPECT_GT(io_steal.cpu_share, io_plain.cpu_share + 0.05);
    EXPECT_GT(io_steal.delivered, io_plain.delivered);
    EXPECT_LT(io_steal.p50_ns, io_plain.p50_ns / 2) << "it is served while it has events";
    EXPECT_LT(steal.classes[0].cpu_share, plain.classes[0].cpu_share) << "bulk pays for it";
}

// Seed 003: serving a guest from a worker that shares its LLC avoids the cross-LLC copy. Same
// topology and pinning; only the dispatch policy changes.
TEST(SimulatorSeeds, CoLocationLowersCopyCost) {
    sim::config c;
    c.cores = 16;
    c.llc_domains = 4;
    c.workers = 4;
    c.classes = {sim::traffic_class{.name = "g", .guests = 64, .pps = 12'000}};
    c.duration = 200ms;
    c.warmup = 50ms;
    c.dispatch = sim::dispatch_kind::round_robin;
    const sim::result rr = sim::run(c);
    c.dispatch = sim::dispatch_kind::cache_aware;
    const sim::result cache = sim::run(c);
    c.migration_delay = 20us;
    const sim::result patient = sim::run(c);

    EXPECT_GT(rr.cross_llc_fraction, 0.6) << "3 of 4 domains are remote for round robin";
    EXPECT_LT(cache.cross_llc_fraction, rr.cross_llc_fraction - 0.2);
    EXPECT_LT(cache.cpu_ns_per_packet, rr.cpu_ns_per_packet);
    // Idle workers steal across domains to keep work moving; a short migration delay keeps
    // almost every copy local.
    EXPECT_LT(patient.cross_llc_fraction, 0.1);
    EXPECT_LT(patient.cpu_ns_per_packet, cache.cpu_ns_per_packet);
    // Pinning all workers in one domain defeats cache-aware dispatch.
    c.migration_delay = 0us;
    c.pin = sim::pin_kind::packed;
    const sim::result packed = sim::run(c);
    EXPECT_GT(packed.cross_llc_fraction, 0.6);
}

// Seed 004: a multi-tasklet backend with balanced event dispatch (2.2 -> 3.7 Gbit/s for four
// guests). Four heavy guests overload one worker; two workers carry the load.
TEST(SimulatorSeeds, MoreWorkersWithBalancedDispatchDeliverMore) {
    sim::config c;
    c.cores = 8;
    c.llc_domains = 2;
    c.classes = {sim::traffic_class{.name = "g", .guests = 4, .pps = 400'000, .burst = 8}};
    c.duration = 200ms;
    c.warmup = 50ms;
    c.dispatch = sim::dispatch_kind::least_loaded;
    c.workers = 1;
    const sim::result one = sim::run(c);
    c.workers = 2;
    const sim::result two = sim::run(c);
    EXPECT_GT(one.dropped, one.offered / 10) << "one worker is overloaded";
    EXPECT_GT(two.gbps, 1.3 * one.gbps);
    EXPECT_GT(two.jain_fairness, 0.99);
}

TEST(SimulatorModeration, AdaptiveAddsNoDelayAtLowRatesAndBatchesAtHighRates) {
    sim::config c;
    c.cores = 8;
    c.llc_domains = 2;
    c.workers = 4;
    c.duration = 200ms;
    c.warmup = 50ms;
    c.adaptive.latency_bound = 50us;
    auto with = [&](std::uint64_t pps, sim::moderation_kind m) {
        c.classes = {sim::traffic_class{.name = "g", .guests = 4, .pps = pps}};
        c.moderation = m;
        c.fixed = {64, 50us};
        return sim::run(c);
    };
    const auto low_none = with(5'000, sim::moderation_kind::none);
    const auto low_adaptive = with(5'000, sim::moderation_kind::adaptive);
    const auto low_fixed = with(5'000, sim::moderation_kind::fixed);
    EXPECT_LE(low_adaptive.p99_ns, low_none.p99_ns + 1'000) << "N = 1 at 0.25 events per bound";
    EXPECT_GT(low_fixed.p50_ns, low_adaptive.p50_ns + 40'000) << "fixed waits for its timeout";

    const auto high_none = with(500'000, sim::moderation_kind::none);
    const auto high_adaptive = with(500'000, sim::moderation_kind::adaptive);
    EXPECT_GT(high_adaptive.packets_per_notification, 2 * high_none.packets_per_notification);
    EXPECT_LT(high_adaptive.cpu_ns_per_packet, high_none.cpu_ns_per_packet);
}

TEST(SimulatorFairness, EqualGuestsAreServedEqually) {
    sim::config c = small();
    c.classes[0].pps = 300'000; // overloaded
    const sim::result r = sim::run(c);
    EXPECT_GT(r.dropped, 0U);
    EXPECT_GT(r.jain_fairness, 0.99);
}

TEST(SimulatorFairness, WeightsShareAnOverloadedWorker) {
    sim::config c;
    c.cores = 2;
    c.llc_domains = 1;
    c.workers = 1;
    c.duration = 300ms;
    c.warmup = 60ms;
    c.classes = {sim::traffic_class{
                     .name = "heavy", .guests = 2, .pps = 600'000, .burst = 16, .weight = 512},
                 sim::traffic_class{
                     .name = "light", .guests = 2, .pps = 600'000, .burst = 16, .weight = 256}};
    const sim::result r = sim::run(c);
    const double ratio = r.classes[0].cpu_share / r.classes[1].cpu_share;
    EXPECT_NEAR(ratio, 2.0, 0.3) << "credit by weight, 512 : 256";
}
