// SPDX-License-Identifier: MIT
// splitnet/nic/afxdp_tx_kicker.hpp: a thread that drives an AF_XDP socket's copy-mode transmit,
// so that the thread owning the port does not.
//
// In copy mode sendto() is the transmit: the kernel copies every frame into an skb and hands it
// to the driver in the caller's context, and on a veth (any device whose peer receives in the
// sender's context) the peer's whole receive path, its TCP included, runs there as well. A
// worker kicking its own TX ring does all of that between two bursts. With a kicker the worker
// only publishes descriptors and, when the kicker sleeps, writes its eventfd; the kicker calls
// sendto while the kernel keeps taking descriptors. afxdp_config::tx_kick_thread turns it on.
// Measured guest -> wire through splitnet-netback on this project's 2-vCPU machine (veth, 11
// alternating runs): 3.02 against 3.06 Gbit/s, no gain where every vCPU is already busy; it is
// for machines with a core to spare for transmit.
//
// No lost wakeup: the kicker says it sleeps (idle), full fence, looks at the ring once more and
// only then blocks in read(); the worker publishes, full fence, and writes the eventfd only when
// it finds idle set (clearing it). Either the kicker sees the new producer or the worker sees
// idle. The kicker learns the producer index from notify(), not from the ring's shared word,
// which libxdp writes without an atomic the compiler knows of.
//
// Completions stay with the port's thread (they return buffers to its pool). A kicker whose
// sendto stops making progress (the completion ring is full) sleeps until the next notify, which
// the worker sends after its next reap finds the TX ring still busy.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <thread>

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace splitnet::nic {

class afxdp_tx_kicker {
public:
    /// Starts a kicker driving the TX ring of socket `fd` whose consumer index (the kernel's)
    /// is at `consumer`; nullptr with `err` set when no eventfd can be had.
    [[nodiscard]] static std::unique_ptr<afxdp_tx_kicker>
    start(int fd, const std::uint32_t* consumer, int& err) {
        const int efd = ::eventfd(0, EFD_CLOEXEC);
        if (efd < 0) {
            err = errno;
            return nullptr;
        }
        return std::unique_ptr<afxdp_tx_kicker>(new afxdp_tx_kicker(fd, consumer, efd));
    }
    afxdp_tx_kicker(const afxdp_tx_kicker&) = delete;
    afxdp_tx_kicker& operator=(const afxdp_tx_kicker&) = delete;
    ~afxdp_tx_kicker() { stop(); }

    /// From the port's thread, after publishing descriptors up to `producer` (or reaping
    /// completions with descriptors still on the ring).
    void notify(std::uint32_t producer) noexcept {
        published_.store(producer, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_seq_cst); // published_ before idle_
        if (idle_.load(std::memory_order_relaxed) &&
            idle_.exchange(false, std::memory_order_relaxed)) {
            ++wakes_;
            ring();
        }
    }

    /// Stops and joins the thread (idempotent). The caller kicks from then on.
    void stop() noexcept {
        if (!thread_.joinable()) {
            return;
        }
        stop_.store(true, std::memory_order_relaxed);
        ring();
        thread_.join();
        ::close(efd_);
    }

    /// Eventfd writes by the port's thread (one writer).
    [[nodiscard]] std::uint64_t wakes() const noexcept { return wakes_; }
    /// sendto calls, and failures other than EAGAIN/EBUSY/ENOBUFS/EINTR, by the kicker.
    [[nodiscard]] std::uint64_t kicks() const noexcept {
        return kicks_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint64_t errors() const noexcept {
        return errors_.load(std::memory_order_relaxed);
    }

private:
    afxdp_tx_kicker(int fd, const std::uint32_t* consumer, int efd)
        : fd_(fd), cons_(consumer), efd_(efd), thread_([this] { run(); }) {}

    void ring() noexcept {
        const std::uint64_t one = 1;
        (void)!::write(efd_, &one, sizeof one); // fails only if the counter would overflow
    }

    [[nodiscard]] std::uint32_t consumer() const noexcept {
        return __atomic_load_n(cons_, __ATOMIC_ACQUIRE);
    }
    [[nodiscard]] std::uint32_t producer() const noexcept {
        return published_.load(std::memory_order_relaxed);
    }

    /// sendto while the kernel takes descriptors. True: the ring is empty; false: no progress
    /// (completion ring full, or an error).
    bool drive() noexcept {
        for (;;) {
            const std::uint32_t before = consumer();
            if (before == producer()) {
                return true;
            }
            kicks_.fetch_add(1, std::memory_order_relaxed);
            if (::sendto(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0) < 0) {
                const int err = errno;
                if (err != EAGAIN && err != EBUSY && err != ENOBUFS && err != EINTR) {
                    errors_.fetch_add(1, std::memory_order_relaxed); // ENETDOWN...
                    return false;
                }
            }
            if (consumer() == before) {
                return false;
            }
        }
    }

    void run() noexcept {
        while (!stop_.load(std::memory_order_relaxed)) {
            const bool drained = drive();
            idle_.store(true, std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_seq_cst); // idle_ before published_
            if (drained && consumer() != producer()) {
                idle_.store(false, std::memory_order_relaxed); // published before we slept
                continue;
            }
            std::uint64_t v = 0;
            while (::read(efd_, &v, sizeof v) < 0 && errno == EINTR) {
            }
            idle_.store(false, std::memory_order_relaxed);
        }
    }

    int fd_;
    const std::uint32_t* cons_;
    int efd_;
    std::atomic<std::uint32_t> published_{0};
    std::atomic<bool> idle_{false};
    std::atomic<bool> stop_{false};
    std::uint64_t wakes_ = 0;
    std::atomic<std::uint64_t> kicks_{0};
    std::atomic<std::uint64_t> errors_{0};
    std::thread thread_;
};

} // namespace splitnet::nic
