// SPDX-License-Identifier: MIT
// splitnet/event/event_channel.hpp: the doorbell between the two ends of an I/O channel (Xen's
// event channel). One side notify()s, the other wait()s or polls; a notification carries no data
// and several may coalesce into one wake-up. Implementations: eventfd_channel (crosses
// processes, pollable with epoll) and inproc_channel (futex, one process).
//
// Counting: notify_if(needed) is how a ring publication reports its event-index decision, so
// every channel counts both the notifications it sent and the ones the ring made unnecessary.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>

namespace splitnet::event {

/// Counters, readable from any thread (relaxed atomics: notify and wait run on different
/// threads, and a notification costs a system call anyway).
struct event_stats {
    std::uint64_t notifications_sent = 0;       ///< notify() calls that rang the doorbell
    std::uint64_t notifications_suppressed = 0; ///< notify_if(false): the ring said no need
    std::uint64_t wakeups = 0;                  ///< waits or polls that found the doorbell rung
    std::uint64_t timeouts = 0;                 ///< waits that ended without a notification
};

namespace detail {
struct event_counters {
    std::atomic<std::uint64_t> sent{0};
    std::atomic<std::uint64_t> suppressed{0};
    std::atomic<std::uint64_t> wakeups{0};
    std::atomic<std::uint64_t> timeouts{0};
    static void bump(std::atomic<std::uint64_t>& c) noexcept {
        c.fetch_add(1, std::memory_order_relaxed);
    }
    [[nodiscard]] event_stats snapshot() const noexcept {
        return {sent.load(std::memory_order_relaxed), suppressed.load(std::memory_order_relaxed),
                wakeups.load(std::memory_order_relaxed), timeouts.load(std::memory_order_relaxed)};
    }
};
} // namespace detail

template <class E>
concept event_channel = requires(E& e, const E& ce, std::chrono::nanoseconds timeout) {
    { e.notify() } noexcept;
    { e.notify_if(true) } noexcept;
    /// Consumes pending notifications without blocking; true if there were any.
    { e.try_consume() } noexcept -> std::same_as<bool>;
    /// Blocks until notified or `timeout` passes; true if notified (and consumes it).
    { e.wait(timeout) } noexcept -> std::same_as<bool>;
    { ce.stats() } noexcept -> std::same_as<event_stats>;
};

} // namespace splitnet::event
