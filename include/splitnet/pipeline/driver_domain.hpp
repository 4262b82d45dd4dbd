// SPDX-License-Identifier: MIT
// splitnet/pipeline/driver_domain.hpp: the driver domain: a NIC port, the receive aggregator,
// the learning bridge and the back ends of every connected guest, served by W worker threads
// under a scheduling policy (DESIGN.md, "The data path"; seed 004's multi-tasklet netback).
//
// Entities. Every unit of work is an entity of the scheduler: each NIC queue, and each queue of
// each connected guest (a backend_queue). Serving an entity means:
//   NIC queue     receive a burst, aggregate it (GRO; aggregates are flushed when the ring runs
//                 dry, Linux's NAPI-complete rule), bridge it, hand each egress burst to its
//                 destination; then transmit what guests sent to the wire.
//   guest queue   deliver what waits for the guest (grant copies, moderated notifications),
//                 take what the guest sent (validated, grant-copied), bridge it.
// A destination is reached by enqueueing into its bounded queue (the guest's backend queue, the
// NIC's egress queue) and waking its entity; nothing else is shared between workers.
// Aggregates stay aggregates across the bridge: a guest that negotiated GSO gets them whole, the
// NIC port (no TSO through AF_XDP) gets them segmented to its MTU by the worker that bridged
// them. Flooded frames are copied for every port but the last.
//
// Workers. Each loops: pick an entity from the scheduler (sched::credit_policy), serve it within
// the grant's packet budget, account the time it took. With nothing to pick it polls for
// `busy_poll`, then sleeps in epoll on the entities' doorbells (the guests' event channels, the
// NIC's socket) and its own wake-up eventfd, until the earliest timer (moderation deadlines). A
// doorbell wakes its entity through the scheduler, whose dispatch policy picks the worker.
//
// Guests. A control thread runs the netif acceptor (handshakes), watches connected guests'
// control channels, and adds or removes a guest while the workers are paused at a quiescent
// point (bridge ports, FDB, scheduler entities and doorbells change only then). A guest that
// disconnects, crashes or breaks the protocol is removed; its buffers return to the pool.
//
// Counters: every component keeps its own; stats() pauses the workers for a consistent
// snapshot (microseconds; once a second is fine) and gathers them into one report.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <splitnet/bridge/learning_bridge.hpp>
#include <splitnet/coalesce/clock.hpp>
#include <splitnet/coalesce/tunable_moderation.hpp>
#include <splitnet/netif/backend.hpp>
#include <splitnet/netif/backend_memory.hpp>
#include <splitnet/nic/port.hpp>
#include <splitnet/offload/gro.hpp>
#include <splitnet/offload/gso.hpp>
#include <splitnet/packet/checksum_offload.hpp>
#include <splitnet/packet/detail/mpmc_ring.hpp>
#include <splitnet/packet/flow_key.hpp>
#include <splitnet/pipeline/report.hpp>
#include <splitnet/sched/credit.hpp>

#include <sched.h>

namespace splitnet::pipeline {

struct driver_domain_config {
    std::uint32_t workers = 1;
    std::vector<int> worker_cpus; ///< pin worker i to worker_cpus[i] (empty: no pinning); start()
                                  ///< fails when a pin fails
    std::uint32_t nic_queues = 1;
    std::uint32_t mtu = 1500; ///< the NIC link's MTU (and the most a guest may set)
    bool gro = true;
    offload::gro_config gro_config{.max_flows = 64, .hold_across_bursts = true};
    netif::backend_memory_config memory{};
    netif::backend_config queue{};       ///< guest queues: rx_queue_len (txqlen), burst
    netif::backend_offer offer{};        ///< what guests are offered
    std::string control_path;            ///< where guests connect
    std::uint32_t max_guests = 16;       ///< guest slots (each up to offer.max_queues queues)
    std::uint32_t burst = 64;            ///< frames per NIC receive
    std::uint32_t nic_egress_len = 4096; ///< frames waiting for the wire (after segmentation)
    std::chrono::microseconds busy_poll{50};
    sched::credit_config sched{}; ///< workers/entities/start are filled in
    bridge::fdb_config fdb{};
};

struct default_policies {
    using merge = offload::merge::exact;
    using moderation = coalesce::moderation::tunable;
    using scheduler = sched::credit;
    using fdb = bridge::fdb<>;
};

template <nic::port Nic, class Policies = default_policies>
class driver_domain {
public:
    using moderation_type = typename Policies::moderation;
    using scheduler_type = typename Policies::scheduler;
    using fdb_type = typename Policies::fdb;
    using backend_type = netif::backend<moderation_type>;
    using gro_type = offload::gro_engine<typename Policies::merge, offload::storage::chain>;
    using nic_factory = std::function<std::unique_ptr<Nic>(packet::buffer_pool&, std::uint32_t)>;
    using scheduler_factory =
        std::function<std::unique_ptr<scheduler_type>(const sched::credit_config&)>;

    static constexpr bridge::port_id nic_port = 0;

    driver_domain(const driver_domain_config& cfg, const nic_factory& make_nic,
                  moderation_type moderation = {}, scheduler_factory make_scheduler = {})
        : cfg_(check(cfg)), memory_(cfg.memory), fdb_(fdb_config(cfg)),
          entities_(cfg.nic_queues + cfg.max_guests * cfg.offer.max_queues) {
        for (std::uint32_t q = 0; q < cfg_.nic_queues; ++q) {
            nics_.push_back(make_nic(memory_.pool(), q));
            gro_.push_back(std::make_unique<gro_type>(cfg_.gro_config,
                                                      offload::storage::chain(memory_.pool())));
            nic_egress_.push_back(
                std::make_unique<packet::detail::mpmc_ring<packet::frame>>(cfg_.nic_egress_len));
        }
        nic_caps_ = nics_[0]->caps();
        sched::credit_config sc = cfg_.sched;
        sc.workers = cfg_.workers;
        sc.entities = entities_;
        sc.guests = entities_;
        sc.start = now();
        sc.layout = sched::placement::single_domain(cfg_.workers, entities_);
        if (make_scheduler) {
            scheduler_ = make_scheduler(sc);
        } else if constexpr (std::is_constructible_v<scheduler_type, const sched::credit_config&>) {
            scheduler_ = std::make_unique<scheduler_type>(sc);
        } else {
            SPLITNET_THROW(std::invalid_argument(
                "driver_domain: this scheduler type needs a scheduler factory"));
        }
        backend_params_.offer = cfg_.offer;
        backend_params_.mtu = cfg_.mtu;
        backend_params_.queue = cfg_.queue;
        backend_params_.pool = &memory_.pool();
        backend_params_.memory = &memory_;
        backend_params_.moderation = std::move(moderation);
        if (!cfg_.control_path.empty()) {
            acceptor_.emplace(cfg_.control_path, backend_params_);
        }
        guests_.resize(cfg_.max_guests);
        deadline_ = std::make_unique<std::atomic<std::int64_t>[]>(entities_);
        for (std::uint32_t e = 0; e < entities_; ++e) {
            deadline_[e].store(no_deadline, std::memory_order_relaxed);
        }
        for (std::uint32_t w = 0; w < cfg_.workers; ++w) {
            workers_.push_back(std::make_unique<worker>(*this, w));
        }
        for (std::uint32_t q = 0; q < cfg_.nic_queues; ++q) {
            watch(q, nic_fd(*nics_[q]));
        }
    }

    driver_domain(const driver_domain&) = delete;
    driver_domain& operator=(const driver_domain&) = delete;
    ~driver_domain() {
        stop();
        // Guests go first (their queues hold pool buffers); then what waits for the wire.
        for (auto& g : guests_) {
            g.backend.reset();
        }
        for (auto& ring : nic_egress_) {
            packet::frame f;
            while (ring->dequeue_burst(&f, 1) == 1) {
                memory_.pool().free(f);
            }
        }
        for (auto& g : gro_) {
            flush_gro_to_pool(*g);
        }
    }

    /// Starts the workers and the control thread.
    void start() {
        if (running_.exchange(true)) {
            return;
        }
        stop_.store(false);
        for (auto& w : workers_) {
            w->thread = std::thread([this, w = w.get()] { run_worker(*w); });
        }
        control_ = std::thread([this] { run_control(); });
        for (std::size_t i = 0; i < workers_.size() && i < cfg_.worker_cpus.size(); ++i) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cfg_.worker_cpus[i], &set);
            const int err =
                ::pthread_setaffinity_np(workers_[i]->thread.native_handle(), sizeof set, &set);
            if (err != 0) { // a CPU that is offline or outside this process's cpuset
                stop();
                SPLITNET_THROW(std::invalid_argument(
                    "driver_domain: cannot pin worker " + std::to_string(i) + " to CPU " +
                    std::to_string(cfg_.worker_cpus[i]) + ": " + std::strerror(err) +
                    " (is it online and in this process's allowed CPUs? see taskset -p $$)"));
            }
        }
        // Serve each NIC queue once: that arms its doorbell for what arrives next.
        for (std::uint32_t q = 0; q < cfg_.nic_queues; ++q) {
            wake_entity(q, sched::no_worker);
        }
    }

    /// Stops and joins every thread (idempotent). Guests stay connected until destruction.
    void stop() {
        if (!running_.exchange(false)) {
            return;
        }
        stop_.store(true);
        {
            const std::lock_guard lk(pause_mu_);
            pause_cv_.notify_all(); // parked workers see stop_
        }
        for (auto& w : workers_) {
            w->kick();
        }
        for (auto& w : workers_) {
            if (w->thread.joinable()) {
                w->thread.join();
            }
        }
        if (control_.joinable()) {
            control_.join();
        }
    }

    /// A consistent snapshot of every component's counters (pauses the workers briefly).
    [[nodiscard]] report stats() {
        const pause_guard p(*this);
        return gather();
    }

    [[nodiscard]] packet::buffer_pool& pool() noexcept { return memory_.pool(); }
    [[nodiscard]] Nic& nic(std::uint32_t q = 0) noexcept { return *nics_[q]; }
    [[nodiscard]] const driver_domain_config& config() const noexcept { return cfg_; }

    /// Connected guests now (the control thread's view; for tests and reports).
    [[nodiscard]] std::uint32_t guest_count() {
        const pause_guard p(*this);
        std::uint32_t n = 0;
        for (const auto& g : guests_) {
            n += g.backend ? 1U : 0U;
        }
        return n;
    }

    /// Runs fn(backend&) for every connected guest with the workers paused.
    template <class Fn>
    void for_each_guest(Fn&& fn) {
        const pause_guard p(*this);
        for (auto& g : guests_) {
            if (g.backend) {
                fn(*g.backend);
            }
        }
    }

    /// Adds a guest whose handshake completed elsewhere (tests; the control thread uses it too).
    void add_guest(std::unique_ptr<backend_type> b) {
        const pause_guard p(*this);
        attach(std::move(b));
    }

private:
    static constexpr std::int64_t no_deadline = INT64_MAX;
    static constexpr int spin_pauses = 64; ///< cpu_relax between picks while busy polling
    static constexpr std::uint64_t wake_cookie = ~0ULL;

    struct guest_slot {
        std::unique_ptr<backend_type> backend;
        bridge::port_id port = 0;
        std::uint32_t first_entity = 0;
    };

    /// What a worker owns: its bridge (deferred learning over the shared FDB), its egress
    /// scratch, its GSO segmenter, its doorbells.
    struct worker {
        worker(driver_domain& d, std::uint32_t i)
            : id(i), bridge(bridge_config(d), d.fdb_),
              bursts(static_cast<std::uint16_t>(d.cfg_.max_guests + 1), burst_capacity),
              gso(d.memory_.pool(), true), gso_partial(d.memory_.pool(), false),
              frames(std::make_unique<packet::frame[]>(burst_capacity)),
              aggregated(std::make_unique<packet::frame[]>(burst_capacity)),
              scratch(std::make_unique<packet::frame[]>(scratch_capacity)),
              frames_for_queue(std::make_unique<packet::frame[]>(scratch_capacity)),
              epfd(::epoll_create1(EPOLL_CLOEXEC)),
              wakefd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
            if (epfd < 0 || wakefd < 0) {
                SPLITNET_THROW(std::system_error(errno, std::generic_category(),
                                                 "driver_domain: epoll or eventfd for a worker"));
            }
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = wake_cookie;
            ::epoll_ctl(epfd, EPOLL_CTL_ADD, wakefd, &ev);
            bridge.configure_port(nic_port, nic_port_config(d));
        }
        worker(const worker&) = delete;
        worker& operator=(const worker&) = delete;
        ~worker() {
            ::close(epfd);
            ::close(wakefd);
        }
        void kick() const noexcept { (void)::eventfd_write(wakefd, 1); }

        std::uint32_t id;
        std::thread thread;
        bridge::learning_bridge<fdb_type> bridge;
        bridge::port_bursts bursts;
        offload::gso_segmenter gso;         ///< for the wire: full checksums
        offload::gso_segmenter gso_partial; ///< unused unless a port completes checksums
        std::unique_ptr<packet::frame[]> frames;
        std::unique_ptr<packet::frame[]> aggregated;
        std::unique_ptr<packet::frame[]> scratch;
        std::unique_ptr<packet::frame[]> frames_for_queue;
        int epfd;
        int wakefd;
        worker_counters counters{};
    };

    static constexpr std::uint32_t burst_capacity = 256;
    static constexpr std::uint32_t scratch_capacity = 256;

    // ---- set-up helpers ------------------------------------------------------------------

    static const driver_domain_config& check(const driver_domain_config& c) {
        if (c.workers == 0 || c.workers > sched::max_workers || c.nic_queues == 0 ||
            c.max_guests == 0 || c.burst == 0 || c.burst > 128 || c.offer.max_queues == 0) {
            SPLITNET_THROW(std::invalid_argument(
                "driver_domain: workers 1..64, nic_queues >= 1, max_guests >= 1, burst 1..128 "
                "and offer.max_queues >= 1 are required"));
        }
        if (c.max_guests + 1 > 0xfffe) {
            SPLITNET_THROW(std::invalid_argument("driver_domain: too many guests"));
        }
        for (const int cpu : c.worker_cpus) {
            if (cpu < 0 || cpu >= CPU_SETSIZE) {
                SPLITNET_THROW(std::invalid_argument("driver_domain: worker_cpus holds CPU " +
                                                     std::to_string(cpu) + ", outside 0.." +
                                                     std::to_string(CPU_SETSIZE - 1)));
            }
        }
        return c;
    }
    static bridge::fdb_config fdb_config(const driver_domain_config& c) {
        bridge::fdb_config f = c.fdb;
        f.max_ports = static_cast<std::uint16_t>(c.max_guests + 1);
        return f;
    }
    static bridge::bridge_config bridge_config(const driver_domain& d) {
        bridge::bridge_config b;
        b.max_ports = static_cast<std::uint16_t>(d.cfg_.max_guests + 1);
        b.learning = bridge::learn_mode::deferred;
        return b;
    }
    static bridge::port_config nic_port_config(const driver_domain& d) {
        bridge::port_config p;
        p.mtu = d.cfg_.mtu;
        if (d.nic_caps_.tx_gso_tcp) {
            p.flags |= bridge::port_flag::gso_tcpv4 | bridge::port_flag::gso_tcpv6;
        }
        return p;
    }
    static bridge::port_config guest_port_config(const backend_type& b) {
        bridge::port_config p;
        p.mtu = b.mtu();
        p.allowed_src = {b.mac()}; // anti-spoofing: a guest sends from its own MAC only
        if (b.features().rx_gso_tcpv4) {
            p.flags |= bridge::port_flag::gso_tcpv4;
        }
        if (b.features().rx_gso_tcpv6) {
            p.flags |= bridge::port_flag::gso_tcpv6;
        }
        return p;
    }

    template <class P>
    static int nic_fd(P& p) noexcept {
        if constexpr (requires { p.fd(); }) {
            return p.fd();
        } else {
            return -1;
        }
    }

    [[nodiscard]] static coalesce::time_point now() noexcept {
        return coalesce::time_point(std::chrono::steady_clock::now().time_since_epoch());
    }
    [[nodiscard]] static std::uint64_t ns(coalesce::time_point t) noexcept {
        return static_cast<std::uint64_t>(t.time_since_epoch().count());
    }

    /// Adds an entity's doorbell to every worker's epoll set, one worker woken per event.
    void watch(std::uint32_t entity, int fd) {
        if (fd < 0) {
            return;
        }
        for (auto& w : workers_) {
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLET | EPOLLEXCLUSIVE;
            ev.data.u64 = entity;
            if (::epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0 && errno != EEXIST) {
                SPLITNET_THROW(
                    std::system_error(errno, std::generic_category(), "driver_domain: epoll_ctl"));
            }
        }
    }
    void unwatch(int fd) noexcept {
        if (fd < 0) {
            return;
        }
        for (auto& w : workers_) {
            ::epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, nullptr);
        }
    }

    // ---- guests (under pause) --------------------------------------------------------------

    void attach(std::unique_ptr<backend_type> b) {
        std::uint32_t slot = 0;
        while (slot < guests_.size() && guests_[slot].backend) {
            ++slot;
        }
        if (slot == guests_.size() || b->queue_count() > cfg_.offer.max_queues) {
            b->disconnect("the driver domain has no room for another guest");
            return;
        }
        guest_slot& g = guests_[slot];
        g.port = static_cast<bridge::port_id>(slot + 1);
        g.first_entity = cfg_.nic_queues + slot * cfg_.offer.max_queues;
        const bridge::port_config pc = guest_port_config(*b);
        for (auto& w : workers_) {
            w->bridge.configure_port(g.port, pc);
        }
        for (std::uint32_t q = 0; q < b->queue_count(); ++q) {
            const std::uint32_t e = g.first_entity + q;
            b->queue(q).set_port_id(g.port);
            {
                const std::lock_guard lk(sched_mu_);
                scheduler_->assign(e, cfg_.nic_queues + slot);
            }
            watch(e, b->queue(q).tx_kick_fd());
            if (b->queue(q).rx_kick_fd() != b->queue(q).tx_kick_fd()) {
                watch(e, b->queue(q).rx_kick_fd());
            }
        }
        g.backend = std::move(b);
        // Whatever the guest posted before we watched its doorbells.
        for (std::uint32_t q = 0; q < g.backend->queue_count(); ++q) {
            wake_entity(g.first_entity + q, 0);
        }
    }

    void detach(guest_slot& g) {
        backend_type& b = *g.backend;
        for (std::uint32_t q = 0; q < b.queue_count(); ++q) {
            unwatch(b.queue(q).tx_kick_fd());
            unwatch(b.queue(q).rx_kick_fd());
            const std::uint32_t e = g.first_entity + q;
            deadline_[e].store(no_deadline, std::memory_order_relaxed);
            const std::lock_guard lk(sched_mu_);
            scheduler_->idle(e, now());
        }
        for (auto& w : workers_) {
            w->bridge.remove_port(g.port);
        }
        {
            const std::lock_guard lk(fdb_mu_);
            (void)fdb_.flush_port(g.port, true);
        }
        if (acceptor_) {
            acceptor_->release_id(b.frontend_id());
        }
        departed_.push_back(
            departed_guest{b.frontend_id(), packet::to_string(b.mac()), b.disconnect_reason()});
        g.backend.reset(); // reclaims its buffers and grants
    }

    // ---- pausing -----------------------------------------------------------------------------

    struct pause_guard {
        explicit pause_guard(driver_domain& d) : d_(d) { d_.pause_all(); }
        ~pause_guard() { d_.resume_all(); }
        pause_guard(const pause_guard&) = delete;
        pause_guard& operator=(const pause_guard&) = delete;
        driver_domain& d_;
    };

    /// Stops the workers at their next quiescent point and keeps other control-plane callers
    /// (the control thread, stats(), add_guest()) out until resume_all(): one at a time.
    void pause_all() {
        ctl_mu_.lock();
        std::unique_lock lk(pause_mu_);
        if (pause_depth_++ != 0 || !running_.load()) {
            return; // already paused by this thread, or nothing runs
        }
        pause_.store(true, std::memory_order_seq_cst);
        for (auto& w : workers_) {
            w->kick();
        }
        pause_cv_.wait(lk, [&] { return paused_ == workers_.size() || !running_.load(); });
    }
    void resume_all() {
        {
            const std::lock_guard lk(pause_mu_);
            if (pause_depth_ != 0 && --pause_depth_ == 0) {
                pause_.store(false, std::memory_order_seq_cst);
                pause_cv_.notify_all();
            }
        }
        ctl_mu_.unlock();
    }
    void park_if_paused() {
        if (!pause_.load(std::memory_order_acquire)) {
            return;
        }
        std::unique_lock lk(pause_mu_);
        ++paused_;
        pause_cv_.notify_all();
        pause_cv_.wait(lk, [&] { return !pause_.load() || stop_.load(); });
        --paused_;
    }

    // ---- the control thread ------------------------------------------------------------------

    void run_control() {
        std::vector<pollfd> fds;
        std::vector<guest_slot*> watched;
        while (!stop_.load()) {
            fds.clear();
            watched.clear();
            std::size_t nacc = 0;
            if (acceptor_) {
                for (const int fd : acceptor_->fds()) {
                    fds.push_back({fd, POLLIN, 0});
                }
                nacc = fds.size();
            }
            for (auto& g : guests_) {
                if (g.backend) {
                    fds.push_back({g.backend->control_fd(), POLLIN, 0});
                    watched.push_back(&g);
                }
            }
            ::poll(fds.data(), fds.size(), 20);
            if (stop_.load()) {
                break;
            }
            if (acceptor_) {
                acceptor_->step();
                while (auto b = acceptor_->take_connected()) {
                    const pause_guard p(*this);
                    attach(std::move(b));
                }
            }
            // A guest leaves when its channel says so (a message, or its end: the process is
            // gone) or a queue found it breaking the protocol. Only detected here; the backend
            // is read and changed with the workers paused.
            bool check = false;
            for (std::size_t i = 0; i < watched.size(); ++i) {
                bool broken = fds[nacc + i].revents != 0;
                for (std::uint32_t q = 0; q < watched[i]->backend->queue_count(); ++q) {
                    broken = broken || watched[i]->backend->queue(q).broken();
                }
                check = check || broken;
            }
            if (check) {
                const pause_guard p(*this);
                for (guest_slot* g : watched) {
                    if (g->backend && !g->backend->poll_control()) {
                        detach(*g);
                    }
                }
            }
            fdb_age();
        }
    }

    void fdb_age() {
        const auto t = ns(now());
        if (t - last_age_ns_ < 1'000'000'000ULL) {
            return;
        }
        last_age_ns_ = t;
        const std::lock_guard lk(fdb_mu_);
        (void)fdb_.age(t, 1U << 16);
    }

    // ---- the workers ---------------------------------------------------------------------------

    void run_worker(worker& w) {
        std::int64_t idle_since = -1;
        const std::int64_t poll_ns = std::chrono::nanoseconds(cfg_.busy_poll).count();
        while (!stop_.load(std::memory_order_relaxed)) {
            park_if_paused();
            const coalesce::time_point t = now(); // the one clock read of an idle iteration
            const auto tn = static_cast<std::int64_t>(ns(t));
            if (tn >= earliest_deadline_.load(std::memory_order_relaxed)) {
                fire_due_timers(t);
            }
            sched::grant g;
            {
                const std::lock_guard lk(sched_mu_);
                g = scheduler_->pick(w.id, t);
            }
            if (g.kick != sched::no_worker && g.kick < workers_.size()) {
                workers_[g.kick]->kick();
            }
            if (g) {
                idle_since = -1;
                serve(w, g, t);
                continue;
            }
            if (idle_since < 0) {
                idle_since = tn;
            }
            if (tn - idle_since < poll_ns) {
                // Busy poll, but lightly: the scheduler lock and the clock once per spin.
                for (int k = 0; k < spin_pauses; ++k) {
                    packet::detail::cpu_relax();
                }
                continue;
            }
            sleep(w, g.retry_at);
            idle_since = -1;
        }
    }

    /// Sleeps on the doorbells until an event, a kick, or the earliest deadline (to the ns).
    void sleep(worker& w, coalesce::time_point retry_at) {
        std::int64_t until = retry_at == coalesce::never ? no_deadline : ns(retry_at);
        until = std::min(until, earliest_deadline_.load(std::memory_order_relaxed));
        timespec ts{0, 100'000'000}; // stop and pause requests kick us anyway
        if (until != no_deadline) {
            const std::int64_t left = std::clamp<std::int64_t>(
                until - static_cast<std::int64_t>(ns(now())), 0, 100'000'000);
            ts = {0, static_cast<long>(left)};
        }
        ++w.counters.sleeps;
        epoll_event evs[32];
        const int n = ::epoll_pwait2(w.epfd, evs, 32, &ts, nullptr);
        const coalesce::time_point t = now();
        for (int i = 0; i < n; ++i) {
            if (evs[i].data.u64 == wake_cookie) {
                eventfd_t v;
                (void)::eventfd_read(w.wakefd, &v);
                continue;
            }
            wake_entity(static_cast<std::uint32_t>(evs[i].data.u64), w.id, t);
        }
    }

    /// Records entity e's next timer (no_deadline: none) and lowers the earliest one.
    void set_deadline(std::uint32_t e, std::int64_t d) noexcept {
        deadline_[e].store(d, std::memory_order_relaxed);
        std::int64_t cur = earliest_deadline_.load(std::memory_order_relaxed);
        while (d < cur && !earliest_deadline_.compare_exchange_weak(cur, d)) {
        }
    }

    /// An event for entity e: the scheduler queues it and names a sleeping worker to kick.
    void wake_entity(std::uint32_t e, std::uint32_t self, coalesce::time_point t = now()) {
        sched::worker_id k;
        {
            const std::lock_guard lk(sched_mu_);
            k = scheduler_->wake(e, t);
        }
        if (k != sched::no_worker && k != self && k < workers_.size()) {
            workers_[k]->kick();
        }
    }

    /// Wakes every entity whose timer is due. The earliest deadline is reset first and rebuilt
    /// from what remains, so a deadline set meanwhile (set_deadline lowers it) is never lost.
    void fire_due_timers(coalesce::time_point t) {
        const auto tn = static_cast<std::int64_t>(ns(t));
        earliest_deadline_.store(no_deadline, std::memory_order_seq_cst);
        for (std::uint32_t e = 0; e < entities_; ++e) {
            std::int64_t d = deadline_[e].load(std::memory_order_relaxed);
            if (d <= tn) {
                if (deadline_[e].compare_exchange_strong(d, no_deadline)) {
                    wake_entity(e, sched::no_worker, t);
                }
            } else if (d != no_deadline) {
                std::int64_t cur = earliest_deadline_.load(std::memory_order_relaxed);
                while (d < cur && !earliest_deadline_.compare_exchange_weak(cur, d)) {
                }
            }
        }
    }

    void serve(worker& w, const sched::grant& g, coalesce::time_point t) {
        sched::usage u;
        if (g.entity < cfg_.nic_queues) {
            u = serve_nic(w, g.entity, g, t);
        } else {
            u = serve_guest(w, g.entity, g, t);
        }
        const coalesce::time_point end = now();
        u.time = end - t;
        const std::lock_guard lk(sched_mu_);
        scheduler_->account(g.entity, w.id, u, end);
    }

    /// The NIC queue: receive, aggregate, bridge; then send what waits for the wire.
    sched::usage serve_nic(worker& w, std::uint32_t q, const sched::grant& g,
                           coalesce::time_point t) {
        Nic& nic = *nics_[q];
        sched::usage u;
        const std::uint32_t budget = std::max<std::uint32_t>(g.packets, cfg_.burst);
        bool more = false;
        while (u.packets < budget) {
            const std::size_t n = nic.rx_burst({w.frames.get(), cfg_.burst});
            u.packets += static_cast<std::uint32_t>(n);
            for (std::size_t i = 0; i < n; ++i) {
                u.bytes += w.frames[i].pkt_len;
            }
            const bool ring_dry = n < cfg_.burst;
            std::size_t out_n = n;
            packet::frame* out = w.frames.get();
            if (cfg_.gro) {
                gro_type& gro = *gro_[q];
                const offload::gro_result r = gro.receive_burst(
                    {w.frames.get(), n}, {w.aggregated.get(), burst_capacity}, ns(t));
                out_n = r.produced;
                if (ring_dry) { // NAPI complete: nothing held once the ring is empty
                    out_n += gro.flush_all({w.aggregated.get() + out_n, burst_capacity - out_n});
                }
                out = w.aggregated.get();
            }
            for (std::size_t i = 0; i < out_n; ++i) {
                out[i].port = nic_port;
            }
            forward(w, {out, out_n}, t);
            if (ring_dry) {
                break;
            }
            more = true;
        }
        more = transmit(w, q) || more;
        if (cfg_.gro && gro_[q]->held() != 0) {
            more = true;
        }
        if (!more) {
            // Going idle: re-arm the NIC's doorbell; if frames slipped in, stay runnable.
            if constexpr (requires { nic.prepare_to_sleep(); }) {
                more = nic.prepare_to_sleep();
            }
        }
        u.backlog = more || nic_egress_[q]->size() != 0;
        return u;
    }

    /// Frames waiting for the wire go out; returns true if some are left (the device was full).
    bool transmit(worker& w, std::uint32_t q) {
        auto& ring = *nic_egress_[q];
        Nic& nic = *nics_[q];
        bool left = false;
        for (int round = 0; round < 8; ++round) {
            const std::uint32_t n = ring.dequeue_burst(w.scratch.get(), scratch_capacity);
            if (n == 0) {
                break;
            }
            std::size_t sent = 0;
            for (int tries = 0; tries < 4 && sent < n; ++tries) {
                sent += nic.tx_burst({w.scratch.get() + sent, n - sent});
            }
            if (sent < n) {
                // The device stays full: what it did not take is dropped and counted, as a
                // qdisc would, rather than blocking every guest behind the wire.
                memory_.pool().free_burst({w.scratch.get() + sent, n - sent});
                w.counters.nic_tx_dropped += n - sent;
                left = true;
                break;
            }
        }
        return left;
    }

    /// A guest queue: deliver to it, take from it, bridge what it sent.
    sched::usage serve_guest(worker& w, std::uint32_t e, const sched::grant& g,
                             coalesce::time_point t) {
        const std::uint32_t rel = e - cfg_.nic_queues;
        guest_slot& slot = guests_[rel / cfg_.offer.max_queues];
        sched::usage u;
        if (!slot.backend || rel % cfg_.offer.max_queues >= slot.backend->queue_count()) {
            return u; // a stale wake for a guest that left
        }
        auto& q = slot.backend->queue(rel % cfg_.offer.max_queues);
        if (q.broken()) {
            return u; // the control thread removes the guest
        }
        q.consume_kicks();
        const std::uint32_t budget = std::max<std::uint32_t>(g.packets, 1);
        bool more = false;
        // Guest RX first: it frees the guest's ring slots and our pool buffers.
        const std::size_t delivered = q.deliver(t);
        q.on_timer(t);
        u.packets += static_cast<std::uint32_t>(delivered);
        // Guest TX.
        while (u.packets < budget) {
            const std::size_t n = q.rx_burst({w.frames.get(), cfg_.queue.burst});
            if (n == 0) {
                break;
            }
            u.packets += static_cast<std::uint32_t>(n);
            for (std::size_t i = 0; i < n; ++i) {
                u.bytes += w.frames[i].pkt_len;
            }
            forward(w, {w.frames.get(), n}, t);
            if (n < cfg_.queue.burst) {
                break;
            }
            more = true;
        }
        const auto d = q.next_deadline();
        set_deadline(e, d == coalesce::never ? no_deadline : static_cast<std::int64_t>(ns(d)));
        if (!more && q.has_rx_backlog()) {
            more = q.deliver(t) != 0;
        }
        if (!more) {
            more = q.prepare_to_sleep();
        }
        u.backlog = more;
        return u;
    }

    /// Bridges a burst and hands each egress burst to its port.
    void forward(worker& w, std::span<packet::frame> in, coalesce::time_point t) {
        if (in.empty()) {
            return;
        }
        w.bursts.clear();
        (void)w.bridge.forward_burst(in, w.bursts, ns(t));
        const auto reqs = w.bursts.learn_requests();
        if (!reqs.empty() && fdb_mu_.try_lock()) { // the FDB writer; a busy lock learns later
            std::array<bridge::learn_status, 256> st;
            (void)fdb_.learn_burst(reqs.first(std::min<std::size_t>(reqs.size(), st.size())), ns(t),
                                   {st.data(), st.size()});
            fdb_mu_.unlock();
        }
        for (packet::frame* f : w.bursts.dropped()) {
            memory_.pool().free(*f);
        }
        // Uses left per input frame: the last use takes the frame, earlier ones get copies.
        const auto refs = w.bursts.references();
        std::array<std::uint16_t, burst_capacity> left{};
        std::copy(refs.begin(), refs.end(), left.begin());
        for (const bridge::port_id p : w.bursts.active_ports()) {
            const auto entries = w.bursts.port(p);
            std::size_t n = 0;
            for (const bridge::egress& eg : entries) {
                const auto i = static_cast<std::size_t>(eg.frame - in.data());
                packet::frame f = *eg.frame;
                if (--left[i] != 0 && !clone(f)) {
                    ++w.counters.clone_failed;
                    continue;
                }
                if (eg.segment && p == nic_port) {
                    flush_to(w, p, n, t);
                    n = 0;
                    segment_for_wire(w, f);
                    continue;
                }
                w.scratch[n++] = f;
                if (n == scratch_capacity) {
                    flush_to(w, p, n, t);
                    n = 0;
                }
            }
            flush_to(w, p, n, t);
        }
    }

    /// Hands n frames from w.scratch to port p (the NIC's egress queue or a guest queue).
    void flush_to(worker& w, bridge::port_id p, std::size_t n, coalesce::time_point t) {
        if (n == 0) {
            return;
        }
        std::span<packet::frame> frames{w.scratch.get(), n};
        if (p == nic_port) {
            for (packet::frame& f : frames) {
                finish_for_wire(f);
            }
            const std::uint32_t q = 0;
            const std::uint32_t took =
                nic_egress_[q]->enqueue_burst(frames.data(), static_cast<std::uint32_t>(n));
            if (took < n) {
                memory_.pool().free_burst(frames.subspan(took));
                w.counters.nic_egress_full += n - took;
            }
            if (took != 0) {
                wake_entity(q, w.id, t);
            }
            return;
        }
        guest_slot& g = guests_[p - 1];
        if (!g.backend) {
            memory_.pool().free_burst(frames);
            return;
        }
        const std::uint32_t nq = g.backend->queue_count();
        if (nq == 1) {
            deliver_to(w, g, 0, frames, t);
            return;
        }
        // Several queues: keep each flow on one queue (the guest's RSS), in order.
        for (std::uint32_t q = 0; q < nq; ++q) {
            std::size_t m = 0;
            for (packet::frame& f : frames) {
                if (queue_of(f, nq) == q) {
                    w.frames_for_queue[m++] = f;
                }
            }
            deliver_to(w, g, q, {w.frames_for_queue.get(), m}, t);
        }
    }

    void deliver_to(worker& w, guest_slot& g, std::uint32_t q, std::span<packet::frame> frames,
                    coalesce::time_point t) {
        if (frames.empty()) {
            return;
        }
        const std::size_t took = g.backend->queue(q).tx_burst(frames);
        if (took < frames.size()) {
            memory_.pool().free_burst(frames.subspan(took)); // counted by the queue (txqlen)
        }
        if (took != 0) {
            wake_entity(g.first_entity + q, w.id, t);
        }
    }

    [[nodiscard]] static std::uint32_t queue_of(const packet::frame& f, std::uint32_t nq) noexcept {
        if (f.has_rx_hash()) {
            return f.rx_hash % nq;
        }
        const packet::parsed_packet p = packet::parse(f.bytes(), f.pkt_len);
        return static_cast<std::uint32_t>(packet::hash(p.key) % nq);
    }

    /// A frame for the wire carries complete checksums (an AF_XDP port does not offload them).
    void finish_for_wire(packet::frame& f) const noexcept {
        if (f.offload.csum == packet::csum_state::partial && !nic_caps_.tx_csum) {
            const packet::parsed_packet p = packet::parse(f.bytes(), f.pkt_len);
            if (p.ok()) {
                (void)packet::complete_partial_checksum(f, p.l3_end);
            }
        }
    }

    /// An aggregate for a port without segmentation offload: split it to the MTU here.
    void segment_for_wire(worker& w, packet::frame& f) {
        packet::frame segs[128];
        const offload::gso_result r = w.gso.segment(f, segs);
        if (r.segments == 0) {
            memory_.pool().free(f);
            ++w.counters.gso_failed;
            return;
        }
        if (!r.consumed_input) {
            memory_.pool().free(f);
        }
        const std::uint32_t took =
            nic_egress_[0]->enqueue_burst(segs, static_cast<std::uint32_t>(r.segments));
        if (took < r.segments) {
            memory_.pool().free_burst({segs + took, r.segments - took});
            w.counters.nic_egress_full += r.segments - took;
        }
        if (took != 0) {
            wake_entity(0, w.id, now());
        }
    }

    /// Replaces `f` by a copy of its bytes in fresh pool buffers (flooding).
    bool clone(packet::frame& f) {
        const std::uint32_t room = memory_.pool().frame_size() - memory_.pool().default_headroom();
        const std::uint32_t nbuf = (f.pkt_len + room - 1) / room;
        packet::frame bufs[64];
        if (nbuf == 0 || nbuf > 64 || memory_.pool().alloc_burst({bufs, nbuf}) != nbuf) {
            return false;
        }
        std::uint32_t b = 0, in_buf = 0;
        for (const packet::frame* s = &f; s != nullptr; s = s->next) {
            for (std::uint32_t done = 0; done < s->data_len;) {
                const std::uint32_t n = std::min(s->data_len - done, room - in_buf);
                std::memcpy(bufs[b].data + in_buf, s->data + done, n);
                done += n;
                in_buf += n;
                bufs[b].data_len = in_buf;
                if (in_buf == room) {
                    ++b;
                    in_buf = 0;
                }
            }
        }
        packet::frame copy = bufs[0];
        copy.pkt_len = f.pkt_len;
        copy.nb_segs = static_cast<std::uint16_t>(nbuf);
        copy.offload = f.offload;
        copy.port = f.port;
        packet::frame* tail = &copy;
        for (std::uint32_t i = 1; i < nbuf; ++i) {
            packet::frame& s = memory_.pool().chain_slot(bufs[i].buffer);
            s = bufs[i];
            s.pkt_len = s.data_len;
            tail->next = &s;
            tail = &s;
        }
        tail->next = nullptr;
        f = copy;
        return true;
    }

    void flush_gro_to_pool(gro_type& g) {
        packet::frame out[64];
        for (std::size_t n; (n = g.flush_all(out)) != 0;) {
            memory_.pool().free_burst({out, n});
        }
    }

    // ---- the report ----------------------------------------------------------------------------

    report gather() {
        report r;
        r.workers = cfg_.workers;
        for (auto& n : nics_) {
            add(r.nic, n->stats());
            if constexpr (requires { n->kernel_stats(); }) {
                // Not rx_fill_ring_empty: it counts empty fill-ring finds, and in copy mode such
                // a drop is already in rx_dropped.
                const auto k = n->kernel_stats();
                r.nic_missed += k.rx_ring_full + k.rx_dropped;
            }
        }
        for (auto& g : gro_) {
            add(r.gro, g->stats());
        }
        for (auto& w : workers_) {
            add(r.bridge, w->bridge.stats());
            r.counters += w->counters;
            add(r.gso, w->gso.stats());
        }
        {
            const std::lock_guard lk(sched_mu_);
            r.sched = scheduler_->stats();
        }
        for (auto& g : guests_) {
            if (!g.backend) {
                continue;
            }
            guest_report gr;
            gr.id = g.backend->frontend_id();
            gr.mac = packet::to_string(g.backend->mac());
            gr.queues = g.backend->queue_count();
            gr.copy = g.backend->features().rx_copy;
            gr.gso = g.backend->features().rx_gso_tcpv4;
            for (std::uint32_t q = 0; q < g.backend->queue_count(); ++q) {
                auto& bq = g.backend->queue(q);
                add(gr.queue, bq.queue_stats());
                gr.queue_drops += bq.queue_drops();
                gr.queued += bq.queued();
                add(gr.moderation, bq.moderation().stats());
                add(gr.copy_stats, bq.copy_stats());
            }
            r.guests.push_back(std::move(gr));
        }
        r.departed = departed_;
        r.pool_available = memory_.pool().available();
        r.pool_capacity = memory_.pool().capacity();
        return r;
    }

    driver_domain_config cfg_;
    netif::backend_memory memory_;
    fdb_type fdb_;
    std::mutex fdb_mu_; ///< the FDB's writer (learning, flushing, ageing)
    std::uint32_t entities_;
    nic::port_caps nic_caps_{};
    std::vector<std::unique_ptr<Nic>> nics_;
    std::vector<std::unique_ptr<gro_type>> gro_;
    std::vector<std::unique_ptr<packet::detail::mpmc_ring<packet::frame>>> nic_egress_;
    std::unique_ptr<scheduler_type> scheduler_;
    std::mutex sched_mu_;
    netif::backend_params<moderation_type> backend_params_;
    std::optional<netif::backend_acceptor<moderation_type>> acceptor_;
    std::vector<guest_slot> guests_;
    std::vector<departed_guest> departed_;
    std::unique_ptr<std::atomic<std::int64_t>[]> deadline_;
    std::atomic<std::int64_t> earliest_deadline_{no_deadline};
    std::vector<std::unique_ptr<worker>> workers_;
    std::thread control_;
    std::atomic<bool> running_{false};
    std::atomic<bool> stop_{false};
    std::atomic<bool> pause_{false};
    std::recursive_mutex ctl_mu_; ///< one control-plane caller at a time
    std::mutex pause_mu_;
    std::condition_variable pause_cv_;
    std::uint32_t paused_ = 0;
    std::uint32_t pause_depth_ = 0;
    std::uint64_t last_age_ns_ = 0;
};

} // namespace splitnet::pipeline
