// The README's embedding examples, compiled so they cannot drift from the headers.
#include <cstdint>
#include <cstdio>
#include <span>
#include <vector>

#include <splitnet/bridge/learning_bridge.hpp>
#include <splitnet/netif/rings.hpp>
#include <splitnet/offload/gro.hpp>
namespace sr = splitnet::ring;
namespace sn = splitnet::netif;
namespace sp = splitnet::packet;
namespace so = splitnet::offload;
namespace sb = splitnet::bridge;

void ring_example(std::span<std::byte> shared_page) {
    sn::tx_front_ring<> front(shared_page); // the guest initialises the page
    sn::tx_back_ring<> back(shared_page);   // the driver domain attaches to it
    (void)front.put_request({/*gref*/ 8, /*offset*/ 0, 0, /*id*/ 1, /*size*/ 60});
    const bool kick = front.push_requests(); // true: the back end asked to be notified
    sn::tx_request req;
    while (back.get_request(req)) { // copied out of shared memory, checked
        (void)back.put_response({req.id, sn::rsp_okay});
    }
    const bool notify = back.push_responses();
    (void)kick;
    (void)notify;
}

void gro_example(sp::buffer_pool& pool, std::span<sp::frame> received, std::uint64_t now_ns) {
    static so::gro_engine<> gro(so::gro_config{}, so::storage::chain(pool));
    std::vector<sp::frame> out(received.size() + gro.held());
    const so::gro_result r = gro.receive_burst(received, out, now_ns);
    // out[0 .. r.produced): aggregates (offload.gso_size/gso_segs set) and untouched frames
    pool.free_burst({out.data(), r.produced});
}

void bridge_example(std::span<sp::frame> burst, std::uint64_t now_ns) {
    sb::bridge_config cfg;
    cfg.max_ports = 4;
    sb::learning_bridge<> br(cfg);
    for (sb::port_id p = 0; p < 4; ++p) {
        br.configure_port(p, sb::port_config{});
    }
    sb::port_bursts out(cfg.max_ports, 256);
    (void)br.forward_burst(burst, out, now_ns); // frames carry their ingress port in frame::port
    for (const sb::port_id p : out.active_ports()) {
        for (const sb::egress& e : out.port(p)) {
            std::printf("frame of %u bytes to port %u%s\n", e.frame->pkt_len, p,
                        e.segment ? " (segment it first)" : "");
        }
    }
}
