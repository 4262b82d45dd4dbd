// SPDX-License-Identifier: MIT
// splitnet/nic/memory_port.hpp: a port with no device behind it, for unit tests and benchmarks:
// what is injected comes out of rx_burst, what tx_burst takes can be collected (or is freed, to
// measure a pipeline without a sink). Bounded queues make backpressure real: inject() and
// tx_burst() stop when full, exactly as a device ring would. fd() is an eventfd that inject()
// rings after prepare_to_sleep() armed it, as a device raises an interrupt once re-enabled, so a
// pipeline sleeps on it as on a real port (and pays no system call while it is busy).
#pragma once

#include <atomic>
#include <cstdint>
#include <span>

#include <sys/eventfd.h>
#include <unistd.h>

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
        : pool_(&pool), cfg_(cfg), rx_(cfg.rx_capacity), tx_(cfg.tx_capacity),
          event_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
    memory_port(const memory_port&) = delete;
    memory_port& operator=(const memory_port&) = delete;
    ~memory_port() {
        if (event_ >= 0) {
            ::close(event_);
        }
    }

    /// Becomes readable when frames are injected after prepare_to_sleep().
    [[nodiscard]] int fd() const noexcept { return event_; }

    /// The receiver is about to sleep: clears the doorbell and arms it. True if frames are
    /// already waiting (then do not sleep). Pairs with inject(): either this sees the frames or
    /// inject sees the arm and rings.
    [[nodiscard]] bool prepare_to_sleep() noexcept {
        eventfd_t v;
        (void)::eventfd_read(event_, &v);
        armed_.store(true, std::memory_order_seq_cst);
        return rx_.consumer().peek(1).size() != 0;
    }

    [[nodiscard]] packet::buffer_pool& pool() noexcept { return *pool_; }
    [[nodiscard]] const port_stats& stats() const noexcept { return stats_; }
    [[nodiscard]] port_caps caps() const noexcept { return cfg_.caps; }

    /// The test's side: frames for rx_burst to deliver (ownership passes). Returns how many fit.
    [[nodiscard]] std::size_t inject(std::span<const packet::frame> frames) noexcept {
        const std::size_t n = rx_.enqueue_burst(frames);
        if (n != 0 && armed_.exchange(false, std::memory_order_seq_cst)) {
            (void)::eventfd_write(event_, 1);
        }
        return n;
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
    int event_ = -1;
    std::atomic<bool> armed_{false};
};
static_assert(port<memory_port>);

} // namespace splitnet::nic
