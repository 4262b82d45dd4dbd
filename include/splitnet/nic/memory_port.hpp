// SPDX-License-Identifier: MIT
// splitnet/nic/memory_port.hpp: a port with no device behind it, for unit tests and benchmarks:
// what is injected comes out of rx_burst, what tx_burst takes can be collected (or is freed, to
// measure a pipeline without a sink). Bounded queues make backpressure real: inject() and
// tx_burst() stop when full, exactly as a device ring would.
#pragma once

#include <cstdint>
#include <span>

#include <splitnet/nic/port.hpp>
#include <splitnet/ring/spsc_ring.hpp>

namespace splitnet::nic {

struct memory_port_config {
    std::uint32_t rx_capacity = 1024; ///< frames waiting to be received (power of two)
    std::uint32_t tx_capacity = 1024; ///< frames sent and not yet collected (power of two)
    bool discard_tx = false;          ///< free sent frames at once instead of keeping them
    port_caps caps{};
};

class memory_port {
public:
    memory_port(packet::buffer_pool& pool, const memory_port_config& cfg = {})
        : pool_(&pool), cfg_(cfg), rx_(cfg.rx_capacity), tx_(cfg.tx_capacity) {}

    [[nodiscard]] packet::buffer_pool& pool() noexcept { return *pool_; }
    [[nodiscard]] const port_stats& stats() const noexcept { return stats_; }
    [[nodiscard]] port_caps caps() const noexcept { return cfg_.caps; }

    /// The test's side: frames for rx_burst to deliver (ownership passes). Returns how many fit.
    [[nodiscard]] std::size_t inject(std::span<const packet::frame> frames) noexcept {
        return rx_.enqueue_burst(frames);
    }
    /// The test's side: frames the port sent (ownership passes to the caller).
    [[nodiscard]] std::size_t collect(std::span<packet::frame> out) noexcept {
        return tx_.dequeue_burst(out);
    }

    [[nodiscard]] std::size_t rx_burst(std::span<packet::frame> out) noexcept {
        const std::size_t n = rx_.dequeue_burst(out);
        stats_.rx_packets += n;
        for (std::size_t i = 0; i < n; ++i) {
            stats_.rx_bytes += out[i].pkt_len;
        }
        return n;
    }

    [[nodiscard]] std::size_t tx_burst(std::span<packet::frame> in) noexcept {
        std::size_t n = in.size();
        if (cfg_.discard_tx) {
            pool_->free_burst(in);
        } else {
            n = tx_.enqueue_burst(in);
            if (n < in.size()) {
                ++stats_.tx_full;
            }
        }
        stats_.tx_packets += n;
        for (std::size_t i = 0; i < n; ++i) {
            stats_.tx_bytes += in[i].pkt_len;
        }
        return n;
    }

private:
    packet::buffer_pool* pool_;
    memory_port_config cfg_;
    ring::spsc_ring<packet::frame> rx_;
    ring::spsc_ring<packet::frame> tx_;
    port_stats stats_{};
};
static_assert(port<memory_port>);

} // namespace splitnet::nic
