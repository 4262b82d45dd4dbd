// SPDX-License-Identifier: MIT
// splitnet-sched-sim: compares scheduling, event-dispatch and notification-moderation policies
// for a driver domain at sizes one machine cannot host (16-64 cores, hundreds of guests). It runs
// splitnet's own policy objects inside a discrete-event model (include/splitnet/sched/
// simulator.hpp) whose costs are given on the command line, and prints throughput, latency
// percentiles and per-guest fairness. It is a model: its output says so.
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <splitnet/sched/simulator.hpp>

namespace sim = splitnet::sched::sim;
using namespace std::chrono_literals;

namespace {

void usage(std::FILE* out) {
    std::fprintf(
        out,
        "usage: splitnet-sched-sim [options]\n"
        "  A discrete-event MODEL of a driver domain (Xen split-driver backend): W workers on C\n"
        "  cores in L last-level-cache domains serve G guests' backend queues. It runs splitnet's\n"
        "  credit scheduler, dispatch and moderation policies against simulated time; all other\n"
        "  costs are the parameters below. Results are the model's, not a measurement.\n"
        "\n"
        "topology:\n"
        "  --cores N            cores (default 16)\n"
        "  --llc N              LLC domains, equal blocks of cores (default 4)\n"
        "  --workers N          driver-domain worker threads, <= 64 (default 4)\n"
        "  --pin packed|spread  workers on cores 0..W-1, or spread over domains by guests\n"
        "                       (default spread)\n"
        "traffic (guest g's vCPU runs on core g mod C):\n"
        "  --guests N           guests of the default class (default 64)\n"
        "  --rate PPS           packets/s per guest (default 12000)\n"
        "  --burst N            packets per arrival event; one event = one wake (default 1)\n"
        "  --size BYTES         packet size (default 1500)\n"
        "  --on-off ON_US:OFF_US  guests alternate on and off periods (default always on)\n"
        "  --class NAME:COUNT:PPS[:BURST[:SIZE[:ON_US:OFF_US[:WEIGHT]]]]\n"
        "                       a group of guests; repeat for several (replaces the default "
        "class)\n"
        "  --arrivals poisson|cbr  (default poisson)\n"
        "costs (ns):\n"
        "  --pkt-cost NS        backend work per packet (default 800)\n"
        "  --copy-penalty NS    extra per packet copied across LLC domains (default 400)\n"
        "  --notify-cost NS     per notification to a guest (default 2500)\n"
        "  --service-cost NS    per scheduling grant (default 1500)\n"
        "  --wakeup NS          kick to run of a sleeping worker (default 5000)\n"
        "  --guest-latency NS   notification to the guest consuming (default 10000)\n"
        "  --guest-pkt-cost NS  guest consume time per packet (default 100)\n"
        "  --queue N            backend queue length, txqlen (default 512)\n"
        "  --ring N             guest RX ring slots (default 256)\n"
        "policies:\n"
        "  --sched credit|credit-steal      Xen credit1, or with seed 003's credit stealing\n"
        "  --dispatch rr|least|cache        event dispatch (default cache)\n"
        "  --moderation none|fixed:FRAMES:USECS|adaptive:BOUND_US\n"
        "                                   notification moderation (default fixed:32:100)\n"
        "  --budget N           packets per grant (default 64)\n"
        "  --quantum US         time per grant (default 1000)\n"
        "  --period MS          credit accounting period (default 30)\n"
        "  --io-threshold N     events per period that make a queue I/O-busy (default 150)\n"
        "  --migration-delay US leave work in another LLC alone this long (default 0)\n"
        "run:\n"
        "  --duration MS        simulated time measured (default 1000)\n"
        "  --warmup MS          simulated time before measuring (default 100)\n"
        "  --seed N             random seed (default 1)\n"
        "  --per-guest          print one line per guest\n"
        "  --compare dispatch|sched|moderation|pin|all\n"
        "                       run the scenario under each policy of that kind and print a table\n"
        "example: splitnet-sched-sim --cores 32 --llc 4 --workers 8 --guests 256 --rate 4000 \\\n"
        "           --compare dispatch\n");
}

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "splitnet-sched-sim: %s\n", msg.c_str());
    std::exit(2);
}

std::uint64_t number(std::string_view opt, std::string_view s) {
    std::uint64_t v = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc{} || r.ptr != s.data() + s.size()) {
        die(std::string(opt) + ": \"" + std::string(s) + "\" is not a non-negative integer");
    }
    return v;
}

std::uint32_t number32(std::string_view opt, std::string_view s) {
    const std::uint64_t v = number(opt, s);
    if (v > UINT32_MAX) {
        die(std::string(opt) + ": " + std::string(s) + " is too large");
    }
    return static_cast<std::uint32_t>(v);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    for (;;) {
        const auto p = s.find(sep);
        out.push_back(s.substr(0, p));
        if (p == std::string_view::npos) {
            return out;
        }
        s.remove_prefix(p + 1);
    }
}

sim::traffic_class parse_class(std::string_view spec) {
    const auto f = split(spec, ':');
    if (f.size() < 3 || f.size() == 6 || f.size() > 8) {
        die("--class " + std::string(spec) +
            ": expected NAME:COUNT:PPS[:BURST[:SIZE[:ON_US:OFF_US[:WEIGHT]]]]");
    }
    sim::traffic_class c;
    c.name = std::string(f[0]);
    c.guests = number32("--class count", f[1]);
    c.pps = number("--class pps", f[2]);
    if (f.size() > 3) {
        c.burst = number32("--class burst", f[3]);
    }
    if (f.size() > 4) {
        c.packet_bytes = number32("--class size", f[4]);
    }
    if (f.size() > 6) {
        c.on = std::chrono::microseconds(number("--class on", f[5]));
        c.off = std::chrono::microseconds(number("--class off", f[6]));
    }
    if (f.size() > 7) {
        const auto w = number32("--class weight", f[7]);
        if (w == 0 || w > 65535) {
            die("--class weight must be 1..65535");
        }
        c.weight = static_cast<std::uint16_t>(w);
    }
    return c;
}

void parse_moderation(std::string_view s, sim::config& c) {
    const auto f = split(s, ':');
    if (f[0] == "none" && f.size() == 1) {
        c.moderation = sim::moderation_kind::none;
    } else if (f[0] == "fixed" && f.size() == 3) {
        c.moderation = sim::moderation_kind::fixed;
        c.fixed.max_frames = number32("--moderation frames", f[1]);
        c.fixed.timeout = std::chrono::microseconds(number("--moderation usecs", f[2]));
    } else if (f[0] == "adaptive" && f.size() == 2) {
        c.moderation = sim::moderation_kind::adaptive;
        c.adaptive.latency_bound = std::chrono::microseconds(number("--moderation bound", f[1]));
    } else {
        die("--moderation " + std::string(s) +
            ": expected none, fixed:FRAMES:USECS or adaptive:BOUND_US");
    }
}

std::string moderation_text(const sim::config& c) {
    char buf[96];
    switch (c.moderation) {
    case sim::moderation_kind::none:
        return "none (a notification per service)";
    case sim::moderation_kind::fixed:
        std::snprintf(buf, sizeof buf, "fixed (%u frames or %lld us)", c.fixed.max_frames,
                      static_cast<long long>(c.fixed.timeout.count() / 1000));
        return buf;
    case sim::moderation_kind::adaptive:
        break;
    }
    std::snprintf(buf, sizeof buf, "adaptive (latency bound %lld us)",
                  static_cast<long long>(c.adaptive.latency_bound.count() / 1000));
    return buf;
}

double us(std::uint64_t ns) {
    return static_cast<double>(ns) / 1000.0;
}

void print_header(const sim::config& c, const sim::result& r) {
    std::printf("MODEL: splitnet-sched-sim is a discrete-event model, not a measurement. Its\n"
                "numbers follow from the cost parameters below; use it to compare policies.\n\n");
    std::string cpus;
    for (std::size_t i = 0; i < r.worker_cpus.size(); ++i) {
        cpus += (i != 0 ? "," : "") + std::to_string(r.worker_cpus[i]);
    }
    std::printf("topology   %u cores in %u LLC domains; %u workers on CPUs %s (%s)\n", c.cores,
                c.llc_domains, c.workers, cpus.c_str(), sim::to_string(c.pin));
    std::printf("traffic    %u guests, %s arrivals:\n", c.guests(),
                c.arrivals == sim::arrival_kind::poisson ? "poisson" : "constant-rate");
    for (const auto& tc : c.classes) {
        std::printf("             %-10s %4u x %llu pps, %u packet%s/event, %u B", tc.name.c_str(),
                    tc.guests, static_cast<unsigned long long>(tc.pps), tc.burst,
                    tc.burst == 1 ? "" : "s", tc.packet_bytes);
        if (tc.on.count() != 0) {
            std::printf(", on %lld us / off %lld us", static_cast<long long>(tc.on.count() / 1000),
                        static_cast<long long>(tc.off.count() / 1000));
        }
        std::printf(", weight %u\n", tc.weight);
    }
    std::printf("costs      packet %lld ns, cross-LLC copy +%lld ns, notification %lld ns, grant "
                "%lld ns,\n           worker wake-up %lld ns, guest %lld ns + %lld ns/packet; "
                "queue %u, ring %u\n",
                static_cast<long long>(c.pkt_cost.count()),
                static_cast<long long>(c.copy_penalty.count()),
                static_cast<long long>(c.notify_cost.count()),
                static_cast<long long>(c.service_cost.count()),
                static_cast<long long>(c.wakeup_latency.count()),
                static_cast<long long>(c.guest_latency.count()),
                static_cast<long long>(c.guest_pkt_cost.count()), c.queue_len, c.ring);
    std::printf("policies   scheduler %s (period %lld ms, budget %u packets / %lld us), dispatch "
                "%s,\n           moderation %s\n",
                sim::to_string(c.sched), static_cast<long long>(c.period.count() / 1'000'000),
                c.budget_packets, static_cast<long long>(c.quantum.count() / 1000),
                sim::to_string(c.dispatch), moderation_text(c).c_str());
    std::printf("time       %lld ms measured after %lld ms warm-up, seed %llu\n\n",
                static_cast<long long>(c.duration.count() / 1'000'000),
                static_cast<long long>(c.warmup.count() / 1'000'000),
                static_cast<unsigned long long>(c.seed));
}

void print_report(const sim::config& c, const sim::result& r, bool per_guest) {
    print_header(c, r);
    const double drop =
        r.offered == 0 ? 0.0
                       : 100.0 * static_cast<double>(r.dropped) / static_cast<double>(r.offered);
    std::printf("throughput   %.2f Gbit/s, %.3f Mpps delivered of %.3f Mpps offered (%.2f%% "
                "dropped)\n",
                r.gbps, r.mpps, r.offered_mpps, drop);
    std::printf("latency      p50 %.1f us  p90 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us"
                "  (arrival -> guest notified)\n",
                us(r.p50_ns), us(r.p90_ns), us(r.p99_ns), us(r.p999_ns), us(r.max_ns));
    std::printf("batching     %.1f packets per notification, %.0f notifications/s\n",
                r.packets_per_notification, static_cast<double>(r.notifications) / r.seconds);
    std::printf("worker CPU   %.0f ns per packet; utilization %.1f%% of %u workers; cross-LLC "
                "copies %.1f%%\n",
                r.cpu_ns_per_packet, 100.0 * r.worker_utilization, c.workers,
                100.0 * r.cross_llc_fraction);
    std::printf("fairness     Jain index %.4f over guests' delivered/offered; worst guest %.3f\n",
                r.jain_fairness, r.min_delivered_ratio);
    std::printf("scheduler    %llu picks (%llu idle), steals %llu same-LLC / %llu cross-LLC, %llu "
                "boosts, %llu kicks,\n             %llu loan rounds lending %.1f ms (%.1f ms "
                "returned, %.1f ms forgiven)\n\n",
                static_cast<unsigned long long>(r.sched.picks),
                static_cast<unsigned long long>(r.sched.picks_idle),
                static_cast<unsigned long long>(r.sched.steals_local),
                static_cast<unsigned long long>(r.sched.steals_remote),
                static_cast<unsigned long long>(r.sched.boosts),
                static_cast<unsigned long long>(r.sched.kicks),
                static_cast<unsigned long long>(r.sched.loan_rounds),
                static_cast<double>(r.sched.credit_lent_ns) / 1e6,
                static_cast<double>(r.sched.credit_returned_ns) / 1e6,
                static_cast<double>(r.sched.credit_forgiven_ns) / 1e6);
    std::printf(
        "class       guests  offered Mpps  Gbit/s   drop %%   p50 us   p99 us  CPU share\n");
    for (std::size_t i = 0; i < r.classes.size(); ++i) {
        const auto& k = r.classes[i];
        std::printf("%-10s %7u  %12.4f  %6.2f  %7.2f  %7.1f  %7.1f  %8.1f%%\n",
                    c.classes[i].name.c_str(), c.classes[i].guests,
                    static_cast<double>(k.offered) / r.seconds / 1e6, k.gbps,
                    k.offered == 0
                        ? 0.0
                        : 100.0 * static_cast<double>(k.dropped) / static_cast<double>(k.offered),
                    us(k.p50_ns), us(k.p99_ns), 100.0 * k.cpu_share);
    }
    if (per_guest) {
        std::printf(
            "\nguest  class       LLC  offered  delivered  dropped  notif.   p99 us  CPU ms\n");
        for (std::size_t g = 0; g < r.guests.size(); ++g) {
            const auto& x = r.guests[g];
            std::printf("%5zu  %-10s %4u %8llu %10llu %8llu %7llu %8.1f %7.2f\n", g,
                        c.classes[x.cls].name.c_str(), x.domain,
                        static_cast<unsigned long long>(x.offered),
                        static_cast<unsigned long long>(x.delivered),
                        static_cast<unsigned long long>(x.dropped),
                        static_cast<unsigned long long>(x.notifications), us(x.p99_ns),
                        static_cast<double>(x.service_ns) / 1e6);
        }
    }
}

void compare(const sim::config& base, std::string_view what) {
    std::vector<std::pair<std::string, sim::config>> runs;
    auto add = [&](const std::string& name, const sim::config& c) {
        runs.emplace_back(name, c);
    };
    const bool all = what == "all";
    if (what == "dispatch" || all) {
        for (auto d : {sim::dispatch_kind::round_robin, sim::dispatch_kind::least_loaded,
                       sim::dispatch_kind::cache_aware}) {
            sim::config c = base;
            c.dispatch = d;
            add(std::string("dispatch=") + sim::to_string(d), c);
        }
    }
    if (what == "sched" || all) {
        for (auto s : {sim::sched_kind::credit, sim::sched_kind::credit_steal}) {
            sim::config c = base;
            c.sched = s;
            add(std::string("sched=") + sim::to_string(s), c);
        }
    }
    if (what == "moderation" || all) {
        sim::config c = base;
        c.moderation = sim::moderation_kind::none;
        add("moderation=none", c);
        for (std::uint32_t n : {8U, 64U}) {
            c.moderation = sim::moderation_kind::fixed;
            c.fixed = {n, 100us};
            add("moderation=fixed:" + std::to_string(n) + ":100", c);
        }
        c.moderation = sim::moderation_kind::adaptive;
        c.adaptive.latency_bound = 50us;
        add("moderation=adaptive:50", c);
    }
    if (what == "pin" || all) {
        for (auto p : {sim::pin_kind::packed, sim::pin_kind::spread}) {
            sim::config c = base;
            c.pin = p;
            add(std::string("pin=") + sim::to_string(p), c);
        }
    }
    if (runs.empty()) {
        die("--compare " + std::string(what) +
            ": expected dispatch, sched, moderation, pin or all");
    }
    bool first = true;
    for (const auto& [name, c] : runs) {
        const sim::result r = sim::run(c);
        if (first) {
            print_header(base, r);
            std::printf("(each line changes only the named policy)\n");
            std::printf("%-26s %7s %7s %6s %8s %8s %9s %7s %6s %6s %7s\n", "variant", "Gbit/s",
                        "Mpps", "drop%", "p50 us", "p99 us", "pkt/notif", "ns/pkt", "util%",
                        "xLLC%", "Jain");
            first = false;
        }
        const double drop = r.offered == 0 ? 0.0
                                           : 100.0 * static_cast<double>(r.dropped) /
                                                 static_cast<double>(r.offered);
        std::printf("%-26s %7.2f %7.3f %6.2f %8.1f %8.1f %9.1f %7.0f %6.1f %6.1f %7.4f\n",
                    name.c_str(), r.gbps, r.mpps, drop, us(r.p50_ns), us(r.p99_ns),
                    r.packets_per_notification, r.cpu_ns_per_packet, 100.0 * r.worker_utilization,
                    100.0 * r.cross_llc_fraction, r.jain_fairness);
    }
}

} // namespace

int main(int argc, char** argv) {
    sim::config c;
    sim::traffic_class def;
    std::vector<sim::traffic_class> classes;
    bool per_guest = false;
    std::string compare_what;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--help" || a == "-h") {
            usage(stdout);
            return 0;
        }
        if (a == "--per-guest") {
            per_guest = true;
            continue;
        }
        if (a.substr(0, 2) != "--") {
            std::fprintf(stderr, "splitnet-sched-sim: unexpected argument %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
        if (i + 1 >= argc) {
            die(std::string(a) + " needs a value (see --help)");
        }
        const std::string_view v = argv[++i];
        if (a == "--cores") {
            c.cores = number32(a, v);
        } else if (a == "--llc") {
            c.llc_domains = number32(a, v);
        } else if (a == "--workers") {
            c.workers = number32(a, v);
        } else if (a == "--pin") {
            if (v != "packed" && v != "spread") {
                die("--pin: expected packed or spread");
            }
            c.pin = v == "packed" ? sim::pin_kind::packed : sim::pin_kind::spread;
        } else if (a == "--guests") {
            def.guests = number32(a, v);
        } else if (a == "--rate") {
            def.pps = number(a, v);
        } else if (a == "--burst") {
            def.burst = number32(a, v);
        } else if (a == "--size") {
            def.packet_bytes = number32(a, v);
        } else if (a == "--on-off") {
            const auto f = split(v, ':');
            if (f.size() != 2) {
                die("--on-off: expected ON_US:OFF_US");
            }
            def.on = std::chrono::microseconds(number(a, f[0]));
            def.off = std::chrono::microseconds(number(a, f[1]));
        } else if (a == "--class") {
            classes.push_back(parse_class(v));
        } else if (a == "--arrivals") {
            if (v != "poisson" && v != "cbr") {
                die("--arrivals: expected poisson or cbr");
            }
            c.arrivals = v == "cbr" ? sim::arrival_kind::cbr : sim::arrival_kind::poisson;
        } else if (a == "--pkt-cost") {
            c.pkt_cost = std::chrono::nanoseconds(number(a, v));
        } else if (a == "--copy-penalty") {
            c.copy_penalty = std::chrono::nanoseconds(number(a, v));
        } else if (a == "--notify-cost") {
            c.notify_cost = std::chrono::nanoseconds(number(a, v));
        } else if (a == "--service-cost") {
            c.service_cost = std::chrono::nanoseconds(number(a, v));
        } else if (a == "--wakeup") {
            c.wakeup_latency = std::chrono::nanoseconds(number(a, v));
        } else if (a == "--guest-latency") {
            c.guest_latency = std::chrono::nanoseconds(number(a, v));
        } else if (a == "--guest-pkt-cost") {
            c.guest_pkt_cost = std::chrono::nanoseconds(number(a, v));
        } else if (a == "--queue") {
            c.queue_len = number32(a, v);
        } else if (a == "--ring") {
            c.ring = number32(a, v);
        } else if (a == "--sched") {
            if (v != "credit" && v != "credit-steal") {
                die("--sched: expected credit or credit-steal");
            }
            c.sched = v == "credit" ? sim::sched_kind::credit : sim::sched_kind::credit_steal;
        } else if (a == "--dispatch") {
            if (v == "rr") {
                c.dispatch = sim::dispatch_kind::round_robin;
            } else if (v == "least") {
                c.dispatch = sim::dispatch_kind::least_loaded;
            } else if (v == "cache") {
                c.dispatch = sim::dispatch_kind::cache_aware;
            } else {
                die("--dispatch: expected rr, least or cache");
            }
        } else if (a == "--moderation") {
            parse_moderation(v, c);
        } else if (a == "--budget") {
            c.budget_packets = number32(a, v);
        } else if (a == "--quantum") {
            c.quantum = std::chrono::microseconds(number(a, v));
        } else if (a == "--period") {
            c.period = std::chrono::milliseconds(number(a, v));
        } else if (a == "--io-threshold") {
            c.io_event_threshold = number32(a, v);
        } else if (a == "--migration-delay") {
            c.migration_delay = std::chrono::microseconds(number(a, v));
        } else if (a == "--duration") {
            c.duration = std::chrono::milliseconds(number(a, v));
        } else if (a == "--warmup") {
            c.warmup = std::chrono::milliseconds(number(a, v));
        } else if (a == "--seed") {
            c.seed = number(a, v);
        } else if (a == "--compare") {
            compare_what = std::string(v);
        } else {
            std::fprintf(stderr, "splitnet-sched-sim: unknown option %s\n", argv[i - 1]);
            usage(stderr);
            return 2;
        }
    }
    c.classes = classes.empty() ? std::vector<sim::traffic_class>{def} : classes;
    try {
        if (!compare_what.empty()) {
            compare(c, compare_what);
        } else {
            print_report(c, sim::run(c), per_guest);
        }
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "splitnet-sched-sim: %s\n", e.what());
        return 2;
    }
    return 0;
}
