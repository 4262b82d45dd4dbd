// splitnet-netfront: the reference front end. Started inside a guest's network namespace
// (ip netns exec GUEST splitnet-netfront --control PATH --tap eth0), it connects to a
// splitnet-netback, creates a TAP device with virtio-net headers there and brings it up: the
// namespace's kernel is the guest OS, and addresses are assigned with `ip` as on any NIC. It
// moves traffic between the TAP device and the rings until the back end goes away or it is told
// to stop. TSO frames from the guest kernel go to the back end whole when it offers GSO; received
// aggregates reach the guest kernel whole when we negotiated GSO.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <poll.h>

#include <splitnet/netif/frontend.hpp>
#include <splitnet/nic/tap_port.hpp>
#include <splitnet/offload/gro.hpp>
#include <splitnet/offload/gso.hpp>

namespace sn = splitnet::netif;
namespace sp = splitnet::packet;
namespace so = splitnet::offload;

namespace {

std::atomic<bool> stop_requested{false};
extern "C" void on_stop(int) {
    stop_requested.store(true);
}

void usage(std::FILE* out) {
    std::fprintf(
        out,
        "usage: splitnet-netfront --control PATH --tap NAME [options]\n"
        "  A guest's network front end: connects to splitnet-netback at PATH and links it to a\n"
        "  TAP device NAME (with virtio-net headers) in the current network namespace.\n"
        "\n"
        "  --control PATH        the back end's control socket\n"
        "  --tap NAME            the TAP device to create (or reuse) here\n"
        "  --mac MAC             this guest's MAC (default: random, locally administered)\n"
        "  --queues N            queues to ask for (default 1)\n"
        "  --copy backend|frontend  who copies received data: the back end (default) or this\n"
        "                        front end, from the back end's read-only grants (Netchannel2):\n"
        "                        the TAP write reads them in place (with --gro off)\n"
        "  --gro on|off          aggregate received segments before the guest kernel sees them\n"
        "                        (LRO in netfront; default off: the back end aggregates)\n"
        "  --gso on|off          offer/accept segmentation offload (default on)\n"
        "  --rx-ring-pages N     RX ring pages to ask for: 1, 2 or 4, 256 slots each (default 4\n"
        "                        with --copy frontend, which takes a slot per wire segment,\n"
        "                        else 1); the back end may offer fewer\n"
        "  --mtu N               the TAP device's MTU (default 1500)\n"
        "  --help                this text\n");
}

[[noreturn]] void bad(const std::string& what) {
    std::fprintf(stderr, "splitnet-netfront: %s (see --help)\n", what.c_str());
    std::exit(2);
}

struct options {
    std::string control;
    std::string tap;
    sp::mac_address mac{};
    std::uint32_t queues = 1;
    sn::copy_side copy = sn::copy_side::backend;
    bool gro = false;
    bool gso = true;
    std::uint32_t mtu = 1500;
    std::optional<std::uint32_t> rx_ring_order; ///< default: by copy side
};

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--help" || a == "-h") {
            usage(stdout);
            std::exit(0);
        }
        if (i + 1 >= argc) {
            bad(std::string(a) + " needs a value");
        }
        const std::string_view v = argv[++i];
        if (a == "--control") {
            o.control = v;
        } else if (a == "--tap") {
            o.tap = v;
        } else if (a == "--mac") {
            const auto m = sp::parse_mac(v);
            if (!m || m->is_multicast() || m->is_zero()) {
                bad("--mac needs a unicast address like 02:00:00:00:00:01");
            }
            o.mac = *m;
        } else if (a == "--queues") {
            o.queues = static_cast<std::uint32_t>(std::atoi(std::string(v).c_str()));
            if (o.queues < 1 || o.queues > 16) {
                bad("--queues must be 1..16");
            }
        } else if (a == "--copy") {
            if (v != "backend" && v != "frontend") {
                bad("--copy is backend or frontend");
            }
            o.copy = v == "frontend" ? sn::copy_side::frontend : sn::copy_side::backend;
        } else if (a == "--gro" || a == "--gso") {
            if (v != "on" && v != "off") {
                bad(std::string(a) + " is on or off");
            }
            (a == "--gro" ? o.gro : o.gso) = v == "on";
        } else if (a == "--rx-ring-pages") {
            if (v != "1" && v != "2" && v != "4") {
                bad("--rx-ring-pages is 1, 2 or 4");
            }
            o.rx_ring_order = v == "1" ? 0 : v == "2" ? 1 : 2;
        } else if (a == "--mtu") {
            o.mtu = static_cast<std::uint32_t>(std::atoi(std::string(v).c_str()));
            if (o.mtu < 68 || o.mtu > 65535) {
                bad("--mtu must be 68..65535");
            }
        } else {
            bad("unknown option " + std::string(a));
        }
    }
    if (o.control.empty() || o.tap.empty()) {
        bad("--control and --tap are required");
    }
    return o;
}

/// One queue's path: TAP queue <-> front-end queue.
struct lane {
    std::unique_ptr<splitnet::nic::tap_port> tap;
    sn::frontend_queue* queue = nullptr;
    std::unique_ptr<so::gro_engine<>> gro;
    std::vector<sp::frame> to_back; ///< TAP frames the ring did not take yet
    std::size_t tap_poll = 0;       ///< this TAP's entry in the sleep descriptors
};

int run(const options& o) {
    sn::frontend_config fc;
    fc.request.queues = o.queues;
    fc.request.rx_copy = o.copy;
    // Measured wire -> guest (README): 4 pages gave frontend copy ~9% more, backend copy and
    // guest -> guest nothing (its posted pages only grow colder).
    fc.request.rx_ring_order = o.rx_ring_order.value_or(
        o.copy == sn::copy_side::frontend ? sn::max_rx_ring_page_order : 0);
    fc.request.gso_tcpv4 = fc.request.gso_tcpv6 = o.gso;
    fc.mac = o.mac;
    fc.mtu = o.mtu;
    fc.buffers_per_queue = 2048;
    auto front = sn::frontend::connect(o.control, fc);
    const sn::negotiated& f = front->features();
    std::printf("splitnet-netfront: connected as guest %u (mac %s, %u queue%s, %s copy, RX ring "
                "%u slots, gso to us %s, gso from us %s)\n",
                front->hello().frontend_id, sp::to_string(front->mac()).c_str(), f.queues,
                f.queues == 1 ? "" : "s",
                f.rx_copy == sn::copy_side::backend ? "backend" : "frontend",
                sn::rx_ring_slots(f.rx_ring_pages), f.rx_gso_tcpv4 ? "on" : "off",
                f.tx_gso_tcpv4 ? "on" : "off");
    std::fflush(stdout);
    std::vector<lane> lanes(f.queues);
    for (std::uint32_t q = 0; q < f.queues; ++q) {
        splitnet::nic::tap_config tc;
        tc.name = o.tap;
        tc.multi_queue = f.queues > 1;
        tc.offloads = f.tx_gso_tcpv4 || f.tx_gso_tcpv6; // the kernel may send us TSO frames
        tc.mtu = o.mtu;
        tc.set_mac = true; // the guest kernel sends from the MAC the bridge knows us by
        tc.mac = front->mac();
        lanes[q].tap = std::make_unique<splitnet::nic::tap_port>(front->pool(), tc);
        lanes[q].queue = &front->queue(q);
        if (o.gro) {
            so::gro_config gc;
            gc.hold_across_bursts = false;
            lanes[q].gro =
                std::make_unique<so::gro_engine<>>(gc, so::storage::chain(front->pool()));
        }
    }
    so::gso_segmenter gso(front->pool(), false);
    std::vector<sp::frame> burst(64), out(64 + 64), segs(128);
    std::uint64_t tap_drops = 0; // to the guest kernel while its TAP queue was full
    std::uint64_t gso_drops = 0; // guest TSO frames that could not be segmented for the back end
    // What to sleep on: the same descriptors for the whole session.
    std::vector<pollfd> sleep_fds;
    for (lane& l : lanes) {
        l.tap_poll = sleep_fds.size();
        sleep_fds.push_back({l.tap->fd(), POLLIN, 0});
        sleep_fds.push_back({l.queue->rx_event_fd(), POLLIN, 0});
        if (l.queue->tx_event_fd() != l.queue->rx_event_fd()) {
            sleep_fds.push_back({l.queue->tx_event_fd(), POLLIN, 0});
        }
    }
    sleep_fds.push_back({front->control_fd(), POLLIN, 0});
    while (!stop_requested.load() && front->poll_control()) {
        bool busy = false;
        for (lane& l : lanes) {
            // Back end -> guest kernel first: it also re-posts the receive slots, which the
            // back end waits for (frames queued to a guest without slots are dropped). With
            // frontend copy the TAP write reads the back end's grants in place: the write is
            // the copy.
            const bool in_place = !l.gro && f.rx_copy == sn::copy_side::frontend;
            std::size_t n = in_place ? l.queue->rx_views(burst) : l.queue->rx_burst(burst);
            std::span<sp::frame> deliver{burst.data(), n};
            if (l.gro && n != 0) {
                const auto r = l.gro->receive_burst(deliver, out, 0);
                deliver = {out.data(), r.produced};
            }
            for (std::size_t done = 0; done < deliver.size();) {
                const std::size_t k = l.tap->tx_burst(deliver.subspan(done));
                done += k;
                if (k == 0) { // the guest kernel is not keeping up: drop, as a NIC would
                    front->pool().free_burst(deliver.subspan(done)); // views: nothing to free
                    tap_drops += deliver.size() - done;
                    break;
                }
            }
            if (in_place) {
                l.queue->rx_views_done();
            }
            busy = busy || n != 0;
            // Guest kernel -> back end.
            if (l.to_back.empty()) {
                const std::size_t from_guest = l.tap->rx_burst(burst);
                for (std::size_t i = 0; i < from_guest; ++i) {
                    if (!burst[i].offload.is_gso() || l.queue->caps().tx_gso_tcp) {
                        l.to_back.push_back(burst[i]);
                        continue;
                    }
                    const so::gso_result r = gso.segment(burst[i], segs);
                    if (!r.consumed_input) {
                        front->pool().free(burst[i]);
                    }
                    gso_drops += r.segments == 0 ? 1 : 0;
                    l.to_back.insert(l.to_back.end(), segs.begin(),
                                     segs.begin() + static_cast<std::ptrdiff_t>(r.segments));
                }
            }
            if (!l.to_back.empty()) {
                const std::size_t took = l.queue->tx_burst(l.to_back);
                l.to_back.erase(l.to_back.begin(),
                                l.to_back.begin() + static_cast<std::ptrdiff_t>(took));
                busy = busy || took != 0;
            }
        }
        if (busy) {
            continue;
        }
        // Idle: arm the rings' event indices, then sleep on the doorbells and the TAP. Frames
        // the full TX ring did not take wait for the back end's responses, which free slots and
        // wake us (prepare_to_sleep arms that event): polling the ring meanwhile only burns the
        // CPU the back end needs to make room.
        bool work = false;
        for (lane& l : lanes) {
            work = l.queue->prepare_to_sleep() || work;
            // While frames wait for the ring, more from the TAP could not be taken either.
            sleep_fds[l.tap_poll].events = l.to_back.empty() ? POLLIN : 0;
        }
        if (work) {
            continue;
        }
        ::poll(sleep_fds.data(), sleep_fds.size(), 100);
        for (lane& l : lanes) {
            l.queue->consume_events();
        }
    }
    const bool backend_gone = !front->connected();
    if (backend_gone) {
        std::printf("splitnet-netfront: %s\n", front->disconnect_reason().c_str());
    }
    for (lane& l : lanes) {
        front->pool().free_burst(l.to_back);
        l.to_back.clear();
        if (l.gro) {
            std::vector<sp::frame> rest(64);
            for (std::size_t k; (k = l.gro->flush_all(rest)) != 0;) {
                front->pool().free_burst({rest.data(), k});
            }
        }
        l.tap.reset();
    }
    std::uint64_t sent = 0;
    std::uint64_t received = 0;
    std::uint64_t unposted = 0;
    std::uint64_t ring_full = 0;
    for (std::uint32_t q = 0; q < front->queue_count(); ++q) {
        sent += front->queue(q).stats().tx_packets;
        received += front->queue(q).stats().rx_packets;
        unposted += front->queue(q).stats().rx_no_buffers;
        ring_full += front->queue(q).queue_stats().tx_ring_full;
    }
    std::printf(
        "splitnet-netfront: sent %llu packets, received %llu packets (%u queue%s), "
        "dropped %llu (guest kernel not keeping up) and %llu (TSO frames not "
        "segmentable); receive slots left unposted for want of buffers %llu times; "
        "transmits that found the ring full %llu\n",
        static_cast<unsigned long long>(sent), static_cast<unsigned long long>(received),
        front->queue_count(), front->queue_count() == 1 ? "" : "s",
        static_cast<unsigned long long>(tap_drops), static_cast<unsigned long long>(gso_drops),
        static_cast<unsigned long long>(unposted), static_cast<unsigned long long>(ring_full));
    return backend_gone ? 3 : 0;
}

} // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    struct sigaction sa {};
    sa.sa_handler = on_stop;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    try {
        return run(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "splitnet-netfront: %s\n", e.what());
        return 1;
    }
}
