// Test support for the driver domain: a pipeline over an in-memory NIC port, guests connected
// through its control socket (real netfronts in this process), and helpers that move numbered
// frames and wait, with a deadline, for what should arrive.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <splitnet/nic/memory_port.hpp>
#include <splitnet/pipeline/driver_domain.hpp>
#include <splitnet/pipeline/runtime_policies.hpp>

#include "netif/endpoint_fixture.hpp"

namespace splitnet::test {

struct runtime_policies : pipeline::default_policies {
    using moderation = pipeline::any_moderation;
    using scheduler = pipeline::any_scheduler;
};
using test_domain = pipeline::driver_domain<nic::memory_port, runtime_policies>;

inline std::string pipeline_socket(const char* name) {
    return "/tmp/splitnet-pl-" + std::string(name) + "-" + std::to_string(::getpid());
}

struct pipeline_options {
    std::uint32_t workers = 2;
    pipeline::any_scheduler::kind sched = pipeline::any_scheduler::kind::credit;
    std::string moderation = "none";
    std::uint32_t rx_queue_len = 256;
    bool gro = true;
    std::uint32_t pool_frames = 16384;
    std::vector<int> worker_cpus{};
};

inline std::unique_ptr<test_domain> make_domain(const std::string& path,
                                                const pipeline_options& o = {}) {
    pipeline::driver_domain_config cfg;
    cfg.workers = o.workers;
    cfg.control_path = path;
    cfg.gro = o.gro;
    cfg.mtu = 1500;
    cfg.max_guests = 4;
    cfg.queue.rx_queue_len = o.rx_queue_len;
    cfg.offer.frontend_copy = true;
    cfg.memory.populate = false;
    cfg.memory.pool.frame_count = o.pool_frames;
    cfg.busy_poll = std::chrono::microseconds(20);
    cfg.worker_cpus = o.worker_cpus;
    pipeline::any_moderation m;
    std::string why;
    if (!pipeline::any_moderation::parse(o.moderation, m, why)) {
        throw std::invalid_argument(why);
    }
    const auto kind = o.sched;
    return std::make_unique<test_domain>(
        cfg,
        [](packet::buffer_pool& p, std::uint32_t) {
            return std::make_unique<nic::memory_port>(
                p, nic::memory_port_config{.rx_capacity = 4096, .tx_capacity = 8192});
        },
        m,
        [kind](const sched::credit_config& c) {
            return std::make_unique<pipeline::any_scheduler>(c, kind);
        });
}

/// Connects a front end to the running domain at `path`.
inline std::unique_ptr<netif::frontend>
connect_guest(const std::string& path, std::uint64_t mac,
              netif::copy_side side = netif::copy_side::backend) {
    netif::frontend_config c;
    c.mac = packet::mac_address::from_u64(mac);
    c.request.rx_copy = side;
    c.buffers_per_queue = 2048;
    return netif::frontend::connect(path, c);
}

/// Polls `step` until it returns true or `seconds` pass; false on timeout.
inline bool eventually(const std::function<bool()>& step, double seconds = 10) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(seconds));
    while (std::chrono::steady_clock::now() < deadline) {
        if (step()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return false;
}

/// A numbered frame from `src` to `dst` in `pool`.
inline packet::frame numbered(packet::buffer_pool& pool, std::uint64_t seq, std::size_t len,
                              std::uint64_t dst, std::uint64_t src) {
    return make_chain(pool, numbered_frame(seq, len, packet::mac_address::from_u64(dst),
                                           packet::mac_address::from_u64(src)));
}

} // namespace splitnet::test
