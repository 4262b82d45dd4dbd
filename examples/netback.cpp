// splitnet-netback: the reference back end. A driver domain in one process: it receives from a
// NIC through AF_XDP, aggregates (GRO), bridges, and serves the guests that connect to its
// control socket (splitnet-netfront, or any netif front end built on the library), each over
// shared-memory rings, grants and event channels. One stats line per second; a summary when it
// is told to stop (SIGINT, SIGTERM); SIGUSR1 writes the current report to the --json file.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <unistd.h>

#include <splitnet/nic/afxdp_port.hpp>
#include <splitnet/pipeline/driver_domain.hpp>
#include <splitnet/pipeline/runtime_policies.hpp>

namespace pl = splitnet::pipeline;
namespace sn = splitnet::nic;

namespace {

std::atomic<bool> stop_requested{false};
std::atomic<bool> dump_requested{false};

extern "C" void on_stop(int) {
    stop_requested.store(true);
}
extern "C" void on_dump(int) {
    dump_requested.store(true);
}

void usage(std::FILE* out) {
    std::fprintf(
        out,
        "usage: splitnet-netback --nic IF --control PATH [options]\n"
        "  A userspace driver domain: receives from IF through AF_XDP, aggregates, bridges,\n"
        "  and serves the guests (netfronts) that connect to the control socket PATH.\n"
        "\n"
        "  --nic IF              the NIC (or veth) to serve through AF_XDP (needs root)\n"
        "  --control PATH        Unix socket where front ends connect (created; removed at exit)\n"
        "  --workers N           worker threads (default 1)\n"
        "  --gro on|off          aggregate what the NIC receives (default on)\n"
        "  --merge exact|local   GRO merge rules: exact (Linux GRO: aggregates split back into\n"
        "                        the original segments) or local (FreeBSD LRO: also merges what\n"
        "                        only a local receiver accepts); default exact\n"
        "  --txqlen N            frames waiting per guest queue before drops (default 128;\n"
        "                        Xen's netback used 32, seed 003 raised it to 128)\n"
        "  --moderation M        guest notifications: none, fixed:FRAMES,USECS (e.g. fixed:32,50)\n"
        "                        or adaptive (default none)\n"
        "  --sched S             credit, cache-aware or stealing (default cache-aware)\n"
        "  --copy backend|frontend  who copies received data into the guest: the back end\n"
        "                        (netback's default) or the guest itself (Netchannel2); frontend\n"
        "                        lets guests map the driver domain's buffers read-only\n"
        "  --mtu N               link MTU (default: the NIC's, at most 3000 through AF_XDP)\n"
        "  --xdp-mode auto|native|skb   how the XDP program attaches (default auto)\n"
        "  --queues N            guest queues offered (multi-queue-max-queues, default 4)\n"
        "  --buffers N           pool buffers of 2 KiB (default 32768)\n"
        "  --busy-poll USECS     how long an idle worker polls before it sleeps (default 10)\n"
        "  --tx-kick-thread on|off  copy-mode AF_XDP: a thread of the NIC queue's own calls\n"
        "                        sendto, which transmits (and on a veth runs the peer's receive),\n"
        "                        instead of the worker (default off: no gain measured on veth)\n"
        "  --cpus LIST           pin worker i to the i-th CPU of LIST (e.g. 1 or 0,1; default:\n"
        "                        not pinned, the kernel places them)\n"
        "  --json FILE           write the report as JSON there at exit and on SIGUSR1\n"
        "  --quiet               no per-second line\n"
        "  --help                this text\n");
}

struct options {
    std::string nic;
    std::string control;
    std::uint32_t workers = 1;
    bool gro = true;
    bool local_merge = false;
    std::uint32_t txqlen = 128;
    pl::any_moderation moderation{splitnet::coalesce::moderation::none{}};
    pl::any_scheduler::kind sched = pl::any_scheduler::kind::cache_aware;
    bool frontend_copy = false;
    std::uint32_t mtu = 0;
    sn::afxdp_attach_mode xdp = sn::afxdp_attach_mode::automatic;
    std::uint32_t queues = 4;
    std::uint32_t buffers = 32768;
    std::uint32_t busy_poll = 10;
    bool tx_kick_thread = false;
    std::vector<int> cpus;
    std::string json;
    bool quiet = false;
};

[[noreturn]] void bad(const std::string& what) {
    std::fprintf(stderr, "splitnet-netback: %s (see --help)\n", what.c_str());
    std::exit(2);
}

std::uint32_t number(std::string_view v, const char* opt, std::uint32_t lo, std::uint32_t hi) {
    std::uint64_t x = 0;
    if (v.empty() || v.size() > 9) {
        bad(std::string(opt) + " needs a number");
    }
    for (const char c : v) {
        if (c < '0' || c > '9') {
            bad(std::string(opt) + " needs a number, got '" + std::string(v) + "'");
        }
        x = x * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (x < lo || x > hi) {
        bad(std::string(opt) + " must be " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    return static_cast<std::uint32_t>(x);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--help" || a == "-h") {
            usage(stdout);
            std::exit(0);
        }
        if (a == "--quiet") {
            o.quiet = true;
            continue;
        }
        if (i + 1 >= argc) {
            bad(std::string(a) + " needs a value");
        }
        const std::string_view v = argv[++i];
        std::string why;
        if (a == "--nic") {
            o.nic = v;
        } else if (a == "--control") {
            o.control = v;
        } else if (a == "--workers") {
            o.workers = number(v, "--workers", 1, 64);
        } else if (a == "--gro") {
            if (v != "on" && v != "off") {
                bad("--gro is on or off");
            }
            o.gro = v == "on";
        } else if (a == "--merge") {
            if (v != "exact" && v != "local") {
                bad("--merge is exact or local");
            }
            o.local_merge = v == "local";
        } else if (a == "--txqlen") {
            o.txqlen = number(v, "--txqlen", 1, 1 << 20);
        } else if (a == "--moderation") {
            if (!pl::any_moderation::parse(v, o.moderation, why)) {
                bad(why);
            }
        } else if (a == "--sched") {
            if (!pl::any_scheduler::parse(v, o.sched, why)) {
                bad(why);
            }
        } else if (a == "--copy") {
            if (v != "backend" && v != "frontend") {
                bad("--copy is backend or frontend");
            }
            o.frontend_copy = v == "frontend";
        } else if (a == "--mtu") {
            o.mtu = number(v, "--mtu", 68, 3000);
        } else if (a == "--xdp-mode") {
            if (v == "auto") {
                o.xdp = sn::afxdp_attach_mode::automatic;
            } else if (v == "native") {
                o.xdp = sn::afxdp_attach_mode::native;
            } else if (v == "skb") {
                o.xdp = sn::afxdp_attach_mode::skb;
            } else {
                bad("--xdp-mode is auto, native or skb");
            }
        } else if (a == "--queues") {
            o.queues = number(v, "--queues", 1, 16);
        } else if (a == "--buffers") {
            o.buffers = number(v, "--buffers", 4096, 1 << 22);
        } else if (a == "--busy-poll") {
            o.busy_poll = number(v, "--busy-poll", 0, 1000000);
        } else if (a == "--tx-kick-thread") {
            if (v != "on" && v != "off") {
                bad("--tx-kick-thread is on or off");
            }
            o.tx_kick_thread = v == "on";
        } else if (a == "--cpus") {
            const long n_cpus = ::sysconf(_SC_NPROCESSORS_CONF);
            for (std::string_view rest = v; !rest.empty();) {
                const std::size_t comma = rest.find(',');
                o.cpus.push_back(
                    static_cast<int>(number(rest.substr(0, comma), "--cpus", 0,
                                            static_cast<std::uint32_t>(std::max(n_cpus, 1L) - 1))));
                rest =
                    comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
            }
        } else if (a == "--json") {
            o.json = v;
        } else {
            bad("unknown option " + std::string(a));
        }
    }
    if (o.nic.empty() || o.control.empty()) {
        bad("--nic and --control are required");
    }
    return o;
}

/// The interface's MTU (ioctl), or 1500 if it cannot be read.
std::uint32_t link_mtu(const std::string& ifname) {
    const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    const bool ok = s >= 0 && ::ioctl(s, SIOCGIFMTU, &ifr) == 0;
    if (s >= 0) {
        ::close(s);
    }
    return ok ? static_cast<std::uint32_t>(ifr.ifr_mtu) : 1500;
}

template <class Merge>
struct policies : pl::default_policies {
    using merge = Merge;
    using moderation = pl::any_moderation;
    using scheduler = pl::any_scheduler;
};

void write_json(const std::string& path, const pl::report& r) {
    if (path.empty()) {
        return;
    }
    const std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp);
        f << r.json() << "\n";
    }
    std::rename(tmp.c_str(), path.c_str());
}

template <class Merge>
int run(const options& o) {
    using domain = pl::driver_domain<sn::afxdp_port, policies<Merge>>;
    pl::driver_domain_config cfg;
    cfg.workers = o.workers;
    cfg.mtu = o.mtu != 0 ? o.mtu : std::min<std::uint32_t>(link_mtu(o.nic), 3000);
    cfg.gro = o.gro;
    cfg.queue.rx_queue_len = o.txqlen;
    cfg.offer.frontend_copy = o.frontend_copy;
    cfg.offer.max_queues = o.queues;
    cfg.control_path = o.control;
    cfg.memory.pool.frame_count = o.buffers;
    cfg.busy_poll = std::chrono::microseconds(o.busy_poll);
    cfg.worker_cpus = o.cpus;
    const auto sched = o.sched;
    std::string mode;
    domain d(
        cfg,
        [&](splitnet::packet::buffer_pool& pool, std::uint32_t q) {
            sn::afxdp_config x;
            x.ifname = o.nic;
            x.queue_id = q;
            x.attach = o.xdp;
            x.tx_kick_thread = o.tx_kick_thread;
            auto p = std::make_unique<sn::afxdp_port>(pool, x);
            mode = p->describe();
            return p;
        },
        o.moderation,
        [sched](const splitnet::sched::credit_config& c) {
            return std::make_unique<pl::any_scheduler>(c, sched);
        });
    std::printf("splitnet-netback: %s; mtu %u; %u worker%s; gro %s (%s); txqlen %u; moderation "
                "%s; sched %s; copy %s; guests connect at %s\n",
                mode.c_str(), cfg.mtu, o.workers, o.workers == 1 ? "" : "s", o.gro ? "on" : "off",
                o.local_merge ? "local" : "exact", o.txqlen, o.moderation.name().c_str(),
                sched == pl::any_scheduler::kind::credit        ? "credit"
                : sched == pl::any_scheduler::kind::cache_aware ? "cache-aware"
                                                                : "stealing",
                o.frontend_copy ? "frontend" : "backend", o.control.c_str());
    std::fflush(stdout);
    d.start();
    pl::report last = d.stats();
    auto t_last = std::chrono::steady_clock::now();
    const auto t0 = t_last;
    while (!stop_requested.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (dump_requested.exchange(false)) {
            write_json(o.json, d.stats());
        }
        const auto t = std::chrono::steady_clock::now();
        if (o.quiet || t - t_last < std::chrono::seconds(1)) {
            continue;
        }
        const pl::report r = d.stats();
        const double dt = std::chrono::duration<double>(t - t_last).count();
        std::uint64_t rx = 0, tx = 0, rxb = 0, txb = 0, notes = 0, delivered = 0;
        for (const auto& g : r.guests) {
            rx += g.queue.rx_packets;
            rxb += g.queue.rx_bytes;
            tx += g.queue.tx_packets;
            txb += g.queue.tx_bytes;
            notes += g.queue.rx_notifications;
            delivered += g.queue.rx_packets;
        }
        for (const auto& g : last.guests) {
            rx -= std::min(rx, g.queue.rx_packets);
            rxb -= std::min(rxb, g.queue.rx_bytes);
            tx -= std::min(tx, g.queue.tx_packets);
            txb -= std::min(txb, g.queue.tx_bytes);
            notes -= std::min(notes, g.queue.rx_notifications);
            delivered -= std::min(delivered, g.queue.rx_packets);
        }
        const std::uint64_t aggs = r.gro.aggregates - last.gro.aggregates;
        const std::uint64_t segs = r.gro.aggregated_segments - last.gro.aggregated_segments;
        std::printf("[%5.0fs] nic rx %7.3f Mpps %6.2f Gbit/s tx %7.3f Mpps | to guests %6.2f "
                    "Gbit/s, from guests %6.2f Gbit/s | gro %4.1f segs/agg | %5.1f pkts/notify | "
                    "%u guest%s | drops %llu\n",
                    std::chrono::duration<double>(t - t0).count(),
                    static_cast<double>(r.nic.rx_packets - last.nic.rx_packets) / dt / 1e6,
                    static_cast<double>(r.nic.rx_bytes - last.nic.rx_bytes) * 8 / dt / 1e9,
                    static_cast<double>(r.nic.tx_packets - last.nic.tx_packets) / dt / 1e6,
                    static_cast<double>(rxb) * 8 / dt / 1e9,
                    static_cast<double>(txb) * 8 / dt / 1e9,
                    aggs == 0 ? 0.0 : static_cast<double>(segs) / static_cast<double>(aggs),
                    notes == 0 ? 0.0 : static_cast<double>(delivered) / static_cast<double>(notes),
                    static_cast<unsigned>(r.guests.size()), r.guests.size() == 1 ? "" : "s",
                    static_cast<unsigned long long>(r.drops()));
        std::fflush(stdout);
        (void)rx;
        (void)tx;
        last = r;
        t_last = t;
    }
    const pl::report r = d.stats();
    d.stop();
    write_json(o.json, r);
    std::printf("\nsplitnet-netback: summary after %.1f s\n%s",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                r.text().c_str());
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    struct sigaction sa {};
    sa.sa_handler = on_stop;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    sa.sa_handler = on_dump;
    ::sigaction(SIGUSR1, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    try {
        return o.local_merge ? run<splitnet::offload::merge::local_delivery>(o)
                             : run<splitnet::offload::merge::exact>(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "splitnet-netback: %s\n", e.what());
        return 1;
    }
}
