// SPDX-License-Identifier: MIT
// splitnet/sched/simulator.hpp: a discrete-event MODEL of a driver domain, for comparing
// scheduling, dispatch and moderation policies at sizes this machine cannot host (16-64 cores,
// hundreds of guests). It runs the library's own policy objects (credit_scheduler with each
// dispatch and stealing policy, moderation::none/tunable/adaptive, the timer wheel) against
// simulated time; everything else is a cost model whose parameters the user states. Its numbers
// are the model's consequences, not measurements: use it for directions and trade-offs.
//
// The model (all times simulated, in ns):
//   topology   C cores in L equal LLC domains (cpu_topology::uniform); guest g's vCPU on core
//              g mod C; W workers pinned to cores 0..W-1 ("packed", as a driver domain with its
//              vCPUs pinned from CPU 0) or spread over domains by guest count ("spread",
//              placement::spread_workers). Homes from placement::plan.
//   traffic    per guest, arrival events (Poisson or constant rate) of `burst` packets of
//              `packet_bytes`, optionally on/off; each event is one wake() of the guest's
//              backend queue (an event-channel kick or a NIC interrupt).
//   backend    one queue per guest (queue_len packets; overflow drops). A worker asks
//              sched.pick(), then copies min(queue, ring space, budget) packets into the
//              guest's RX ring: service_cost + n * (pkt_cost + copy_penalty if the worker's
//              LLC is not the guest's), then sched.account().
//   notify     after a service the guest's moderation policy decides: notify now (worker pays
//              notify_cost) or arm its deadline on a timer wheel; a timer notification is paid
//              by the worker that last served the guest, added to its next service. A full ring
//              forces the notification (nothing more can join the batch). Latency = arrival ->
//              the notification that makes the packet visible to the guest.
//   guest      a notification frees the ring slots of the notified packets guest_latency +
//              k * guest_pkt_cost later. A full ring stalls the queue (netback waits for the
//              frontend); drops while the ring is full are reported to moderation (on_drop),
//              since notifying sooner is what frees the ring; drops while the ring has room
//              are CPU overload and are not.
//   workers    a worker that finds nothing sleeps until kicked (pick's or wake's `kick`, after
//              wakeup_latency) or until the grant's retry_at.
// Not modelled: guest CPU contention, NIC and memory bandwidth, TX, lock contention between
// workers, interrupts on the workers' cores.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <queue>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include <splitnet/coalesce/adaptive_moderation.hpp>
#include <splitnet/coalesce/clock.hpp>
#include <splitnet/coalesce/no_moderation.hpp>
#include <splitnet/coalesce/timer_wheel.hpp>
#include <splitnet/coalesce/tunable_moderation.hpp>
#include <splitnet/config.hpp>
#include <splitnet/sched/cpu_topology.hpp>
#include <splitnet/sched/credit.hpp>
#include <splitnet/sched/detail/latency_histogram.hpp>
#include <splitnet/sched/dispatch.hpp>
#include <splitnet/sched/least_loaded_dispatch.hpp>
#include <splitnet/sched/placement.hpp>
#include <splitnet/sched/round_robin_dispatch.hpp>
#include <splitnet/sched/stealing.hpp>
#include <splitnet/sched/types.hpp>

namespace splitnet::sched::sim {

using namespace std::chrono_literals;

enum class sched_kind : std::uint8_t { credit, credit_steal };
enum class dispatch_kind : std::uint8_t { round_robin, least_loaded, cache_aware };
enum class pin_kind : std::uint8_t { packed, spread };
enum class moderation_kind : std::uint8_t { none, fixed, adaptive };
enum class arrival_kind : std::uint8_t { poisson, cbr };

inline const char* to_string(sched_kind k) noexcept {
    return k == sched_kind::credit ? "credit" : "credit-steal";
}
inline const char* to_string(dispatch_kind k) noexcept {
    return k == dispatch_kind::round_robin    ? "rr"
           : k == dispatch_kind::least_loaded ? "least"
                                              : "cache";
}
inline const char* to_string(pin_kind k) noexcept {
    return k == pin_kind::packed ? "packed" : "spread";
}
inline const char* to_string(moderation_kind k) noexcept {
    return k == moderation_kind::none ? "none" : k == moderation_kind::fixed ? "fixed" : "adaptive";
}

/// A group of identical guests.
struct traffic_class {
    std::string name = "guests";
    std::uint32_t guests = 64;
    std::uint64_t pps = 12'000;        ///< packets per second per guest while on
    std::uint32_t burst = 1;           ///< packets per arrival event (one wake per event)
    std::uint32_t packet_bytes = 1500; ///< bytes per packet
    nanoseconds on{0};                 ///< on period (0: always on)
    nanoseconds off{0};                ///< off period
    std::uint16_t weight = 256;        ///< credit weight of each guest
};

struct config {
    std::uint32_t cores = 16;
    std::uint32_t llc_domains = 4;
    std::uint32_t workers = 4;
    std::vector<traffic_class> classes{traffic_class{}};
    arrival_kind arrivals = arrival_kind::poisson;

    nanoseconds pkt_cost{800};        ///< backend work per packet (grant copy of the payload)
    nanoseconds copy_penalty{400};    ///< extra per packet when the copy crosses LLC domains
    nanoseconds notify_cost{2500};    ///< per notification (event channel send, virtual IRQ)
    nanoseconds service_cost{1500};   ///< per grant (scheduling, ring indices, batch hypercall)
    nanoseconds wakeup_latency{5000}; ///< kick of a sleeping worker until it runs
    nanoseconds guest_latency{10000}; ///< notification until the guest starts consuming
    nanoseconds guest_pkt_cost{100};  ///< guest per-packet consume time
    std::uint32_t queue_len = 512;    ///< backend queue (txqlen)
    std::uint32_t ring = 256;         ///< guest RX ring slots (netif: 256)

    sched_kind sched = sched_kind::credit;
    dispatch_kind dispatch = dispatch_kind::cache_aware;
    pin_kind pin = pin_kind::spread;
    moderation_kind moderation = moderation_kind::fixed;
    coalesce::coalesce_params fixed{32, std::chrono::microseconds(100)};
    coalesce::adaptive_params adaptive{};

    std::uint32_t budget_packets = 64;
    nanoseconds quantum = std::chrono::milliseconds(1);
    nanoseconds period = std::chrono::milliseconds(30);
    std::uint32_t io_event_threshold = 150;
    nanoseconds migration_delay{0};

    nanoseconds duration = std::chrono::milliseconds(1000); ///< measured time, after warm-up
    nanoseconds warmup = std::chrono::milliseconds(100);
    std::uint64_t seed = 1;

    [[nodiscard]] std::uint32_t guests() const noexcept {
        std::uint32_t n = 0;
        for (const auto& c : classes) {
            n += c.guests;
        }
        return n;
    }
};

struct guest_result {
    std::uint32_t cls = 0;       ///< index into config::classes
    std::uint32_t domain = 0;    ///< LLC domain of its vCPU
    std::uint64_t offered = 0;   ///< packets that arrived
    std::uint64_t delivered = 0; ///< packets notified to the guest
    std::uint64_t dropped = 0;   ///< packets lost at the backend queue
    std::uint64_t notifications = 0;
    std::uint64_t service_ns = 0; ///< worker time the scheduler accounted to it
    std::uint64_t p99_ns = 0;
};

struct class_result {
    std::uint64_t offered = 0;
    std::uint64_t delivered = 0;
    std::uint64_t dropped = 0;
    std::uint64_t service_ns = 0;
    double gbps = 0;
    double cpu_share = 0; ///< of all service time
    std::uint64_t p50_ns = 0;
    std::uint64_t p99_ns = 0;
};

struct result {
    double seconds = 0;
    std::uint64_t offered = 0;
    std::uint64_t delivered = 0;
    std::uint64_t dropped = 0;
    std::uint64_t notifications = 0;
    double gbps = 0;
    double mpps = 0;
    double offered_mpps = 0;
    std::uint64_t p50_ns = 0, p90_ns = 0, p99_ns = 0, p999_ns = 0, max_ns = 0;
    double mean_ns = 0;
    double packets_per_notification = 0;
    double cpu_ns_per_packet = 0;   ///< worker busy time per delivered packet
    double worker_utilization = 0;  ///< busy / (workers x time)
    double cross_llc_fraction = 0;  ///< packets copied by a worker outside the guest's LLC
    double jain_fairness = 0;       ///< over guests' delivered/offered
    double min_delivered_ratio = 0; ///< worst guest's delivered/offered
    std::vector<std::uint32_t> worker_cpus;
    std::vector<guest_result> guests;
    std::vector<class_result> classes;
    credit_stats sched{};
};

namespace detail {

struct splitmix64 {
    std::uint64_t s;
    std::uint64_t next() noexcept {
        std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    /// Uniform in (0, 1].
    double unit() noexcept { return static_cast<double>((next() >> 11) + 1) * 0x1.0p-53; }
};

enum class ev : std::uint8_t { arrival, done, run, guest_free, warmup };

struct event {
    time_point t;
    std::uint64_t seq;
    ev kind;
    std::uint32_t id;
    std::uint32_t aux;
    friend bool operator>(const event& a, const event& b) noexcept {
        return a.t != b.t ? a.t > b.t : a.seq > b.seq;
    }
};

/// A FIFO of timestamps with a fixed capacity.
class stamp_ring {
public:
    explicit stamp_ring(std::uint32_t cap = 0) : buf_(cap == 0 ? 1 : cap) {}
    [[nodiscard]] std::uint32_t size() const noexcept { return n_; }
    [[nodiscard]] bool full() const noexcept { return n_ == buf_.size(); }
    void push(time_point t) noexcept {
        buf_[(head_ + n_) % buf_.size()] = t;
        ++n_;
    }
    time_point pop() noexcept {
        const time_point t = buf_[head_];
        head_ = (head_ + 1) % static_cast<std::uint32_t>(buf_.size());
        --n_;
        return t;
    }

private:
    std::vector<time_point> buf_;
    std::uint32_t head_ = 0;
    std::uint32_t n_ = 0;
};

using any_moderation = std::variant<coalesce::moderation::none, coalesce::moderation::tunable,
                                    coalesce::moderation::adaptive>;

template <class Sched>
class engine {
public:
    explicit engine(const config& cfg) : cfg_(check(cfg)), G_(cfg_.guests()) {
        topo_ = cpu_topology::uniform(cfg_.cores, cfg_.llc_domains);
        std::vector<std::uint32_t> guest_cpus(G_);
        for (std::uint32_t g = 0; g < G_; ++g) {
            guest_cpus[g] = g % cfg_.cores;
        }
        if (cfg_.pin == pin_kind::packed) {
            for (std::uint32_t w = 0; w < cfg_.workers; ++w) {
                worker_cpus_.push_back(w);
            }
        } else {
            worker_cpus_ = placement::spread_workers(topo_, cfg_.workers, guest_cpus);
        }
        credit_config sc{.workers = cfg_.workers,
                         .entities = G_,
                         .period = cfg_.period,
                         .budget_packets = cfg_.budget_packets,
                         .quantum = cfg_.quantum,
                         .migration_delay = cfg_.migration_delay,
                         .io_event_threshold = cfg_.io_event_threshold};
        sc.layout = placement::plan(topo_, worker_cpus_, guest_cpus);
        sched_ = std::make_unique<Sched>(sc);

        guests_.resize(G_);
        timers_ = std::make_unique<coalesce::timer[]>(G_);
        std::uint32_t g = 0;
        rng_.s = cfg_.seed;
        for (std::uint32_t c = 0; c < cfg_.classes.size(); ++c) {
            const traffic_class& tc = cfg_.classes[c];
            for (std::uint32_t i = 0; i < tc.guests; ++i, ++g) {
                gs& s = guests_[g];
                s.cls = c;
                s.domain = topo_.domain_of(guest_cpus[g]);
                s.queue = stamp_ring(cfg_.queue_len);
                s.pending.reserve(cfg_.ring);
                s.mod = make_moderation();
                timers_[g].cookie = g;
                sched_->set_guest(g, {.weight = tc.weight});
                // Mean gap between events; the phase of on/off spreads guests over the cycle.
                s.gap_ns = 1e9 * tc.burst / static_cast<double>(tc.pps == 0 ? 1 : tc.pps);
                const auto cycle = (tc.on + tc.off).count();
                s.phase =
                    cycle > 0
                        ? static_cast<std::int64_t>(rng_.next() % static_cast<std::uint64_t>(cycle))
                        : 0;
                if (tc.pps != 0) {
                    push(first_arrival(s), ev::arrival, g);
                }
            }
        }
        workers_.resize(cfg_.workers);
        for (std::uint32_t w = 0; w < cfg_.workers; ++w) {
            workers_[w].domain = topo_.domain_of(worker_cpus_[w]);
            workers_[w].inflight.reserve(std::max<std::uint32_t>(cfg_.budget_packets, 1));
        }
        end_ = time_point{} + cfg_.warmup + cfg_.duration;
        push(time_point{} + cfg_.warmup, ev::warmup, 0);
    }

    result run() {
        for (;;) {
            const time_point tw = wheel_.next_expiry();
            const time_point te = events_.empty() ? never : events_.top().t;
            const time_point t = std::min(tw, te);
            if (t >= end_) {
                break;
            }
            if (tw <= te) {
                now_ = std::max(now_, tw);
                wheel_.expire(now_, [&](coalesce::timer& tm) noexcept {
                    on_deadline(static_cast<std::uint32_t>(tm.cookie));
                });
                continue;
            }
            const event e = events_.top();
            events_.pop();
            now_ = e.t;
            switch (e.kind) {
            case ev::arrival:
                on_arrival(e.id);
                break;
            case ev::done:
                on_done(e.id);
                break;
            case ev::run:
                on_run(e.id);
                break;
            case ev::guest_free:
                on_guest_free(e.id, e.aux);
                break;
            case ev::warmup:
                on_warmup();
                break;
            }
        }
        return collect();
    }

private:
    using latency_histogram_t = sched::detail::latency_histogram;

    struct gs {
        std::uint32_t cls = 0;
        std::uint32_t domain = 0;
        stamp_ring queue;
        std::vector<time_point> pending; // in the ring, not yet notified
        std::uint32_t ring_used = 0;     // slots taken (pending + notified, not consumed)
        bool blocked = false;            // work waits but the ring is full
        std::uint32_t last_worker = 0;
        any_moderation mod;
        double gap_ns = 0;
        std::int64_t phase = 0;
        latency_histogram_t hist{};
        std::uint64_t offered = 0, delivered = 0, dropped = 0, notifications = 0;
        std::uint64_t service_at_warmup = 0;
    };

    struct ws {
        std::uint32_t domain = 0;
        bool busy = false;         // serving, or finishing a notification until run_at
        time_point run_at = never; // the next pick scheduled; earlier RUN events are stale
        std::uint32_t entity = 0;
        std::vector<time_point> inflight;
        std::uint64_t busy_ns = 0; // after warm-up
        std::int64_t debt_ns = 0;  // timer notifications, paid (in time) at the next service
        time_point started{};
        std::uint64_t cost_ns = 0; // this service, debt included
        std::uint64_t debt_in_cost = 0;
    };

    static const config& check(const config& c) {
        auto fail = [](const std::string& m) {
            SPLITNET_THROW(std::invalid_argument("simulator: " + m));
        };
        if (c.guests() == 0) {
            fail("no guests: give at least one traffic class with guests > 0");
        }
        if (c.workers == 0 || c.workers > max_workers || c.workers > c.cores) {
            fail("need 1 <= workers <= min(cores, " + std::to_string(max_workers) + ")");
        }
        if (c.llc_domains == 0 || c.llc_domains > c.cores) {
            fail("need 1 <= llc domains <= cores");
        }
        if (c.queue_len == 0 || c.ring == 0 || c.budget_packets == 0) {
            fail("queue, ring and budget must be >= 1");
        }
        if (c.duration <= nanoseconds::zero() || c.warmup < nanoseconds::zero()) {
            fail("duration must be > 0 and warm-up >= 0");
        }
        for (const auto& tc : c.classes) {
            if (tc.burst == 0 || tc.packet_bytes == 0 || tc.weight == 0) {
                fail("class " + tc.name + ": burst, packet size and weight must be >= 1");
            }
            if ((tc.on == nanoseconds::zero()) != (tc.off == nanoseconds::zero())) {
                fail("class " + tc.name + ": give both on and off periods, or neither");
            }
        }
        return c;
    }

    any_moderation make_moderation() const {
        switch (cfg_.moderation) {
        case moderation_kind::none:
            return coalesce::moderation::none{};
        case moderation_kind::fixed:
            return coalesce::moderation::tunable{cfg_.fixed};
        case moderation_kind::adaptive:
            break;
        }
        coalesce::adaptive_params a = cfg_.adaptive;
        a.queue_capacity = cfg_.ring;
        return coalesce::moderation::adaptive{a};
    }

    void push(time_point t, ev kind, std::uint32_t id, std::uint32_t aux = 0) {
        events_.push(event{t, seq_++, kind, id, aux});
    }

    [[nodiscard]] bool measuring(time_point t) const noexcept {
        return t >= time_point{} + cfg_.warmup;
    }

    // --- traffic ------------------------------------------------------------------------------

    time_point next_arrival(const gs& s, time_point from) {
        const double gap =
            cfg_.arrivals == arrival_kind::cbr ? s.gap_ns : -std::log(rng_.unit()) * s.gap_ns;
        time_point t = from + nanoseconds{std::max<std::int64_t>(1, std::llround(gap))};
        const traffic_class& tc = cfg_.classes[s.cls];
        const std::int64_t cycle = (tc.on + tc.off).count();
        if (cycle > 0) { // skip the off part of the cycle
            const std::int64_t pos = (t.time_since_epoch().count() + s.phase) % cycle;
            if (pos >= tc.on.count()) {
                t += nanoseconds{cycle - pos};
            }
        }
        return t;
    }

    time_point first_arrival(gs& s) { return next_arrival(s, time_point{}); }

    void on_arrival(std::uint32_t g) {
        gs& s = guests_[g];
        const traffic_class& tc = cfg_.classes[s.cls];
        const bool m = measuring(now_);
        std::uint32_t dropped = 0;
        for (std::uint32_t i = 0; i < tc.burst; ++i) {
            if (m) {
                ++s.offered;
            }
            if (s.queue.full()) {
                ++dropped;
            } else {
                s.queue.push(now_);
            }
        }
        if (dropped != 0) {
            if (m) {
                s.dropped += dropped;
            }
            if (s.blocked) { // the consumer is behind: notifying sooner is what helps
                std::visit([&](auto& p) { p.on_drop(dropped); }, s.mod);
                maybe_notify_now(g);
            }
        }
        if (!s.blocked) {
            kick(sched_->wake(g, now_));
        }
        push(next_arrival(s, now_), ev::arrival, g);
    }

    // --- workers
    // ----------------------------------------------------------------------------------

    void schedule_run(std::uint32_t wid, time_point t) {
        ws& w = workers_[wid];
        if (t < w.run_at) {
            w.run_at = t;
            push(t, ev::run, wid);
        }
    }

    // A kick wakes a sleeping worker after wakeup_latency (sooner than a retry it sleeps for);
    // a busy worker picks anyway when it finishes.
    void kick(worker_id k) {
        if (k != no_worker && !workers_[k].busy) {
            schedule_run(k, now_ + cfg_.wakeup_latency);
        }
    }

    void on_run(std::uint32_t wid) {
        ws& w = workers_[wid];
        if (now_ != w.run_at) {
            return; // superseded by an earlier run
        }
        w.run_at = never;
        w.busy = false;
        const grant gr = sched_->pick(wid, now_);
        kick(gr.kick);
        if (!gr) {
            if (gr.retry_at != never) {
                schedule_run(wid, std::max(gr.retry_at, now_ + 1ns));
            }
            return;
        }
        gs& s = guests_[gr.entity];
        const traffic_class& tc = cfg_.classes[s.cls];
        const std::uint64_t per = static_cast<std::uint64_t>(
            (cfg_.pkt_cost + (w.domain != s.domain ? cfg_.copy_penalty : nanoseconds::zero()))
                .count());
        std::uint64_t n = std::min<std::uint64_t>(s.queue.size(), gr.packets);
        n = std::min<std::uint64_t>(n, cfg_.ring - s.ring_used);
        n = std::min<std::uint64_t>(n, std::max<std::uint64_t>(1, gr.bytes / tc.packet_bytes));
        const auto base = static_cast<std::uint64_t>(cfg_.service_cost.count());
        const auto budget_ns = static_cast<std::uint64_t>(gr.time.count());
        if (per != 0 && budget_ns > base) {
            n = std::min<std::uint64_t>(n, std::max<std::uint64_t>(1, (budget_ns - base) / per));
        }
        w.inflight.clear();
        for (std::uint64_t i = 0; i < n; ++i) {
            w.inflight.push_back(s.queue.pop());
        }
        s.ring_used += static_cast<std::uint32_t>(n);
        if (measuring(now_) && w.domain != s.domain) {
            cross_ += n;
        }
        if (measuring(now_)) {
            copied_ += n;
        }
        // A timer notification made since the last service delays this one; it was counted as
        // busy time when it happened and is not charged to this entity's credit.
        w.debt_in_cost = static_cast<std::uint64_t>(w.debt_ns);
        const std::uint64_t cost = base + n * per + w.debt_in_cost;
        w.debt_ns = 0;
        w.busy = true;
        w.entity = gr.entity;
        w.started = now_;
        w.cost_ns = cost;
        push(now_ + nanoseconds{static_cast<std::int64_t>(cost)}, ev::done, wid);
    }

    void on_done(std::uint32_t wid) {
        ws& w = workers_[wid];
        const std::uint32_t g = w.entity;
        gs& s = guests_[g];
        s.last_worker = wid;
        const auto n = static_cast<std::uint32_t>(w.inflight.size());
        for (const time_point t : w.inflight) {
            s.pending.push_back(t);
        }
        std::uint64_t total = w.cost_ns - w.debt_in_cost;
        bool fire = std::visit([&](auto& p) { return p.on_events(n, now_); }, s.mod);
        // A full ring cannot grow the batch any more: waiting for the timeout would only stall
        // the guest (a pipeline rule, not a policy's: flush when nothing more fits).
        fire = fire || (s.ring_used >= cfg_.ring && !s.pending.empty());
        time_point end = now_;
        if (fire) {
            end = now_ + cfg_.notify_cost;
            total += static_cast<std::uint64_t>(cfg_.notify_cost.count());
            notify(g, end);
        } else {
            arm(g);
        }
        if (measuring(w.started)) {
            w.busy_ns += total;
        }
        s.blocked = s.queue.size() != 0 && s.ring_used >= cfg_.ring;
        const bool backlog = s.queue.size() != 0 && !s.blocked;
        sched_->account(g, wid,
                        usage{.time = nanoseconds{static_cast<std::int64_t>(total)},
                              .bytes = std::uint64_t{n} * cfg_.classes[s.cls].packet_bytes,
                              .packets = n,
                              .backlog = backlog},
                        end);
        w.inflight.clear();
        w.run_at = never;
        schedule_run(wid, end); // still busy (notifying) until then
    }

    // --- notifications --------------------------------------------------------------------------

    void arm(std::uint32_t g) {
        const time_point d = std::visit([](auto& p) { return p.deadline(); }, guests_[g].mod);
        wheel_.arm(timers_[g], d); // `never` cancels
    }

    void maybe_notify_now(std::uint32_t g) {
        gs& s = guests_[g];
        if (!s.pending.empty() && std::visit([&](auto& p) { return p.should_fire(now_); }, s.mod)) {
            charge_timer_notification(g);
        } else {
            arm(g);
        }
    }

    // Every visible packet's latency is recorded, the ring slots are freed later by the guest.
    void notify(std::uint32_t g, time_point visible) {
        gs& s = guests_[g];
        std::visit([&](auto& p) { p.on_fired(now_); }, s.mod);
        wheel_.cancel(timers_[g]);
        const auto k = static_cast<std::uint32_t>(s.pending.size());
        for (const time_point a : s.pending) {
            if (measuring(a)) {
                const auto lat = static_cast<std::uint64_t>((visible - a).count());
                s.hist.add(lat);
                ++s.delivered;
            }
        }
        s.pending.clear();
        if (measuring(visible)) {
            ++s.notifications;
        }
        if (k != 0) {
            push(visible + cfg_.guest_latency + cfg_.guest_pkt_cost * k, ev::guest_free, g, k);
        }
    }

    void charge_timer_notification(std::uint32_t g) {
        gs& s = guests_[g];
        ws& w = workers_[s.last_worker];
        w.debt_ns += cfg_.notify_cost.count();
        if (measuring(now_)) {
            w.busy_ns += static_cast<std::uint64_t>(cfg_.notify_cost.count());
        }
        notify(g, now_ + cfg_.notify_cost);
    }

    void on_deadline(std::uint32_t g) {
        gs& s = guests_[g];
        if (s.pending.empty()) {
            return;
        }
        if (std::visit([&](auto& p) { return p.should_fire(now_); }, s.mod)) {
            charge_timer_notification(g);
        } else {
            arm(g);
        }
    }

    void on_guest_free(std::uint32_t g, std::uint32_t k) {
        gs& s = guests_[g];
        s.ring_used -= std::min(k, s.ring_used);
        if (s.blocked && s.ring_used < cfg_.ring) {
            s.blocked = false;
            if (s.queue.size() != 0) {
                kick(sched_->wake(g, now_));
            }
        }
    }

    void on_warmup() {
        for (std::uint32_t g = 0; g < G_; ++g) {
            guests_[g].service_at_warmup = sched_->stats(g).served_ns;
        }
        sched_at_warmup_ = sched_->stats();
    }

    // --- results
    // ----------------------------------------------------------------------------------

    result collect() const {
        result r;
        r.seconds = std::chrono::duration<double>(cfg_.duration).count();
        r.worker_cpus = worker_cpus_;
        latency_histogram_t all;
        std::uint64_t bytes = 0, service_total = 0;
        double sum_x = 0, sum_x2 = 0;
        r.min_delivered_ratio = 1.0;
        std::uint32_t counted = 0;
        r.classes.resize(cfg_.classes.size());
        std::vector<latency_histogram_t> per_class(cfg_.classes.size());
        for (std::uint32_t g = 0; g < G_; ++g) {
            const gs& s = guests_[g];
            guest_result gr;
            gr.cls = s.cls;
            gr.domain = s.domain;
            gr.offered = s.offered;
            gr.delivered = s.delivered;
            gr.dropped = s.dropped;
            gr.notifications = s.notifications;
            gr.service_ns = sched_->stats(g).served_ns - s.service_at_warmup;
            gr.p99_ns = s.hist.percentile(0.99);
            r.guests.push_back(gr);
            all.merge(s.hist);
            per_class[s.cls].merge(s.hist);
            r.offered += s.offered;
            r.delivered += s.delivered;
            r.dropped += s.dropped;
            r.notifications += s.notifications;
            bytes += s.delivered * cfg_.classes[s.cls].packet_bytes;
            service_total += gr.service_ns;
            class_result& c = r.classes[s.cls];
            c.offered += s.offered;
            c.delivered += s.delivered;
            c.dropped += s.dropped;
            c.service_ns += gr.service_ns;
            if (s.offered != 0) {
                const double x = static_cast<double>(s.delivered) / static_cast<double>(s.offered);
                sum_x += x;
                sum_x2 += x * x;
                ++counted;
                r.min_delivered_ratio = std::min(r.min_delivered_ratio, x);
            }
        }
        for (std::size_t c = 0; c < r.classes.size(); ++c) {
            class_result& cr = r.classes[c];
            cr.gbps = static_cast<double>(cr.delivered * cfg_.classes[c].packet_bytes) * 8 /
                      r.seconds / 1e9;
            cr.cpu_share = service_total == 0 ? 0
                                              : static_cast<double>(cr.service_ns) /
                                                    static_cast<double>(service_total);
            cr.p50_ns = per_class[c].percentile(0.5);
            cr.p99_ns = per_class[c].percentile(0.99);
        }
        r.gbps = static_cast<double>(bytes) * 8 / r.seconds / 1e9;
        r.mpps = static_cast<double>(r.delivered) / r.seconds / 1e6;
        r.offered_mpps = static_cast<double>(r.offered) / r.seconds / 1e6;
        r.p50_ns = all.percentile(0.5);
        r.p90_ns = all.percentile(0.9);
        r.p99_ns = all.percentile(0.99);
        r.p999_ns = all.percentile(0.999);
        r.max_ns = all.max();
        r.mean_ns = all.mean();
        r.packets_per_notification =
            r.notifications == 0
                ? 0
                : static_cast<double>(r.delivered) / static_cast<double>(r.notifications);
        std::uint64_t busy = 0;
        for (const ws& w : workers_) {
            busy += w.busy_ns;
        }
        r.cpu_ns_per_packet =
            r.delivered == 0 ? 0 : static_cast<double>(busy) / static_cast<double>(r.delivered);
        r.worker_utilization =
            static_cast<double>(busy) /
            (static_cast<double>(cfg_.workers) * static_cast<double>(cfg_.duration.count()));
        r.cross_llc_fraction =
            copied_ == 0 ? 0 : static_cast<double>(cross_) / static_cast<double>(copied_);
        r.jain_fairness = sum_x2 == 0 ? 1.0 : (sum_x * sum_x) / (counted * sum_x2);
        r.sched = sched_->stats();
        subtract(r.sched, sched_at_warmup_);
        return r;
    }

    static void subtract(credit_stats& a, const credit_stats& b) noexcept {
        a.picks -= b.picks;
        a.picks_idle -= b.picks_idle;
        a.steals_local -= b.steals_local;
        a.steals_remote -= b.steals_remote;
        a.wakes -= b.wakes;
        a.boosts -= b.boosts;
        a.kicks -= b.kicks;
        a.accountings -= b.accountings;
        a.parks -= b.parks;
        a.unparks -= b.unparks;
        a.throttles -= b.throttles;
        a.loan_rounds -= b.loan_rounds;
        a.credit_lent_ns -= b.credit_lent_ns;
        a.credit_returned_ns -= b.credit_returned_ns;
        a.credit_forgiven_ns -= b.credit_forgiven_ns;
        a.protocol_errors -= b.protocol_errors;
    }

    config cfg_;
    std::uint32_t G_;
    cpu_topology topo_;
    std::vector<std::uint32_t> worker_cpus_;
    std::unique_ptr<Sched> sched_;
    std::vector<gs> guests_;
    std::vector<ws> workers_;
    std::unique_ptr<coalesce::timer[]> timers_;
    coalesce::timer_wheel wheel_{time_point{}, nanoseconds{256}};
    std::priority_queue<event, std::vector<event>, std::greater<>> events_;
    std::uint64_t seq_ = 0;
    time_point now_{};
    time_point end_{};
    splitmix64 rng_{1};
    std::uint64_t cross_ = 0;
    std::uint64_t copied_ = 0;
    credit_stats sched_at_warmup_{};
};

template <class Dispatch>
result run_with(const config& c) {
    if (c.sched == sched_kind::credit_steal) {
        return engine<credit_scheduler<Dispatch, seed_stealing>>(c).run();
    }
    return engine<credit_scheduler<Dispatch, no_stealing>>(c).run();
}

} // namespace detail

/// Runs the model. Deterministic for a given config (seed included). Throws
/// std::invalid_argument for a configuration the model cannot run.
[[nodiscard]] inline result run(const config& c) {
    switch (c.dispatch) {
    case dispatch_kind::round_robin:
        return detail::run_with<round_robin_dispatch>(c);
    case dispatch_kind::least_loaded:
        return detail::run_with<least_loaded_dispatch>(c);
    case dispatch_kind::cache_aware:
        break;
    }
    return detail::run_with<cache_aware_dispatch>(c);
}

} // namespace splitnet::sched::sim
