// SPDX-License-Identifier: MIT
// splitnet/event/inproc_channel.hpp: an event channel between threads of one process: a pending
// flag and a futex. notify() costs one atomic exchange and, only when the waiter is asleep, one
// FUTEX_WAKE; a wait spins on nothing and sleeps in the kernel with a timeout.
//
// Ordering: the waiter announces sleeping_ then checks pending_; the notifier sets pending_ then
// checks sleeping_ (both seq_cst: a Dekker pair), so either the waiter sees the flag or the
// notifier wakes it. FUTEX_WAIT re-checks pending_ == 0 in the kernel, closing the last gap.
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <splitnet/event/event_channel.hpp>

namespace splitnet::event {

class inproc_channel {
public:
    inproc_channel() = default;
    inproc_channel(const inproc_channel&) = delete;
    inproc_channel& operator=(const inproc_channel&) = delete;

    void notify() noexcept {
        detail::event_counters::bump(counters_.sent);
        if (pending_.exchange(1, std::memory_order_seq_cst) == 0 &&
            sleeping_.load(std::memory_order_seq_cst) != 0) {
            futex(FUTEX_WAKE_PRIVATE, INT_MAX, nullptr);
        }
    }

    void notify_if(bool needed) noexcept {
        if (needed) {
            notify();
        } else {
            detail::event_counters::bump(counters_.suppressed);
        }
    }

    [[nodiscard]] bool try_consume() noexcept {
        if (pending_.load(std::memory_order_relaxed) == 0) {
            return false;
        }
        if (pending_.exchange(0, std::memory_order_acquire) != 0) {
            detail::event_counters::bump(counters_.wakeups);
            return true;
        }
        return false;
    }

    [[nodiscard]] bool wait(std::chrono::nanoseconds timeout) noexcept {
        if (try_consume()) {
            return true;
        }
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        sleeping_.fetch_add(1, std::memory_order_seq_cst);
        for (;;) {
            if (pending_.load(std::memory_order_seq_cst) != 0) {
                break;
            }
            const auto left = deadline - std::chrono::steady_clock::now();
            if (left <= std::chrono::nanoseconds::zero()) {
                break;
            }
            const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
            timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
            futex(FUTEX_WAIT_PRIVATE, 0, &ts); // returns at once if pending_ != 0
        }
        sleeping_.fetch_sub(1, std::memory_order_relaxed);
        if (try_consume()) {
            return true;
        }
        detail::event_counters::bump(counters_.timeouts);
        return false;
    }

    [[nodiscard]] event_stats stats() const noexcept { return counters_.snapshot(); }

private:
    long futex(int op, int val, const timespec* ts) noexcept {
        return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&pending_), op, val, ts,
                         nullptr, 0);
    }

    static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
    std::atomic<std::uint32_t> pending_{0};
    std::atomic<std::uint32_t> sleeping_{0};
    detail::event_counters counters_;
};
static_assert(event_channel<inproc_channel>);

} // namespace splitnet::event
