// SPDX-License-Identifier: MIT
// splitnet/sched/credit.hpp: the credit_policy concept (which backend queue a driver-domain
// worker serves next, and for how long) and its default, credit_scheduler: Xen credit1
// (xen/common/sched/credit.c) with backend queues as its units, guests as its domains and
// worker threads as its pCPUs, plus seed 003's cache awareness and credit stealing and a
// per-guest byte-rate limit.
//
// Mapping of credit1 (constants are Xen's defaults; see xen-io-anchors.md 6.1):
//   credit        kept in ns of service: 1 Xen credit = 100 µs (CSCHED_CREDITS_PER_MSEC 10),
//                 so a 30 ms slice is 300 credits and burning is exact (Xen samples a 10 ms
//                 tick and carries the residue; account() reports the exact time used).
//   csched_acct   every `period` (30 ms): credits_per_tslice x workers shared among active
//                 guests by weight x active entities, ceil-rounded; a guest's peak is
//                 active x one slice (raised while the system balance is negative), clamped by
//                 its cap; what a guest cannot use goes to the guests after it in the active
//                 list, and guests left with extra move to the list head; per entity: credit
//                 < 0 is OVER (park if capped and below -cap share; floor at -one slice),
//                 credit >= 0 is UNDER (unpark; BOOST ends), credit > one slice leaves the
//                 active list with its credit halved.
//   active        an entity starts earning when it is first accounted (Xen: when a tick finds
//                 it running) and stops as above.
//   BOOST         wake() of an idle entity with credit >= 0 that is not parked (csched_unit_
//                 wake); it ends after the entity's next service (Xen: when the tick catches it
//                 running; a netback service is far shorter than a 10 ms tick, so "after one
//                 service" is the deterministic equivalent) or at accounting.
//   runqueues     one per worker, ordered BOOST > UNDER > OVER, FIFO within a priority. Which
//                 runqueue an entity joins, on wake and on requeue after a service, is the
//                 Dispatch policy's choice (credit1 keeps a unit on the pCPU it ran on; here a
//                 cache-aware policy sends a stolen entity back to its home domain).
//   load balance  a worker whose best local work is OVER or nothing takes the head of a
//                 strictly higher priority from another worker (csched_load_balance), workers
//                 of its own LLC domain first (Xen: its NUMA node first), rotating the start so
//                 no peer is always robbed first, never from a sleeping worker (it has been
//                 kicked and will run its own queue); `migration_delay` (Xen
//                 vcpu_migration_delay) leaves work younger than that in another domain alone.
//   tickle        wake() returns a sleeping worker to kick: the target if it sleeps, else one
//                 sleeping in the target's domain, else any (__runq_tickle), so no worker sleeps
//                 while work waits.
//   caps          as Xen (percent of one worker), enforced at accounting and also at every
//                 account() (Xen only parks at accounting), and a capped entity's time budget
//                 never exceeds its remaining allowance.
// Additions:
//   rate limit    one token bucket per guest (token_bucket.hpp), shared by its queues, ns
//                 resolution: netback's rate= without its per-queue multiplication and jiffy
//                 granularity. An empty bucket throttles the entity until the refill time, on
//                 the scheduler's own timer wheel.
//   stealing      the Steal policy (stealing.hpp). At each accounting, after credit1's
//                 distribution: lenders are active, idle (no work), unparked entities with
//                 credit > 0; borrowers are entities with work that received at least
//                 io_event_threshold events (wake() calls) in the period (seed: 150 boosts per
//                 slice) and whose guest is not capped. Each borrower receives
//                 min(Steal::share(idle credit, n_io), max_borrow); lenders give that total in
//                 proportion to their credit (the seed formula: each gives half). A lender that
//                 wakes gets its loan back at once, and the borrowers repay it equally (lazily,
//                 at their next account() or accounting). At the next accounting unreturned
//                 loans are forgiven (that credit would have gone unused) and a new round
//                 starts. Abuse limits: only active entities lend (an entity idle long enough
//                 to leave the active list earns nothing, so idle entities cannot be
//                 manufactured to mint credit); a lender recovers only what it lent, once;
//                 borrowing needs both backlog and events, stops at max_borrow per period, and
//                 never lifts a capped guest over its cap; loans last one period.
//
// Threading: one credit_scheduler per driver domain, not thread-safe: every call is made under
// one lock (the driver domain's scheduler lock, as credit1's runqueue and private locks
// serialize the same state). Each call is O(1) apart from the dispatch decision (O(workers of
// one domain) for cache-aware), load balancing (one bitmap scan per priority; with a migration
// delay, one look per remote peer) and the accounting pass, O(entities) once per period inside
// whichever pick finds it due (bench/sched: 1.3 µs for 1K entities, 3.6 µs with stealing;
// amortized over the period, but the pick that runs it pays it).
// Nothing is allocated after construction; hot-path calls are noexcept. Set-up errors
// (bad configuration, ids out of range in set-up calls) throw std::invalid_argument.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <splitnet/coalesce/clock.hpp>
#include <splitnet/coalesce/detail/muldiv.hpp>
#include <splitnet/coalesce/timer_wheel.hpp>
#include <splitnet/config.hpp>
#include <splitnet/sched/dispatch.hpp>
#include <splitnet/sched/placement.hpp>
#include <splitnet/sched/stealing.hpp>
#include <splitnet/sched/token_bucket.hpp>
#include <splitnet/sched/types.hpp>

namespace splitnet::sched {

/// What a pipeline's workers call. pick() -> serve up to the grant -> account(); wake() on every
/// event for an entity (returns a sleeping worker to kick, or no_worker); idle() when an
/// entity's queue empties outside a service.
template <typename S>
concept credit_policy = requires(S& s, worker_id w, entity_id e, const usage& u, time_point now) {
    { s.pick(w, now) } noexcept -> std::same_as<grant>;
    { s.account(e, w, u, now) } noexcept -> std::same_as<void>;
    { s.wake(e, now) } noexcept -> std::same_as<worker_id>;
    { s.idle(e, now) } noexcept -> std::same_as<void>;
};

/// Per guest (Xen: per domain; xl sched-credit -w -c).
struct guest_params {
    std::uint16_t weight = 256; ///< CSCHED_DEFAULT_WEIGHT; 1..65535
    std::uint16_t cap = 0;      ///< percent of one worker, 0 = none (Xen semantics)
    rate_limit rate{};          ///< bytes/s and burst shared by the guest's queues; 0 = none
};

struct credit_config {
    std::uint32_t workers = 1;
    std::uint32_t entities = 1;
    /// Guests (Xen domains); 0: one per entity. Entity e starts in guest e % guests.
    std::uint32_t guests = 0;
    /// Accounting period (Xen tslice, sched_credit_tslice_ms = 30).
    nanoseconds period = std::chrono::milliseconds(30);
    /// Xen credits per ms; only for reporting credits in Xen's units (credit()).
    std::uint32_t credits_per_ms = 10;
    /// Packet budget per grant (NAPI weight 64).
    std::uint32_t budget_packets = 64;
    /// Byte budget per grant (vhost-net VHOST_NET_WEIGHT, 512 KiB).
    std::uint64_t budget_bytes = 512 * 1024;
    /// Time budget per grant (Xen's context-switch ratelimit, 1 ms).
    nanoseconds quantum = std::chrono::milliseconds(1);
    /// Work queued in another LLC domain is left alone until it has waited this long (Xen
    /// vcpu_migration_delay, default 0: strictly work-conserving).
    nanoseconds migration_delay{0};
    /// Events in a period that make an entity with work I/O-busy (seed 003: 150 boosts).
    std::uint32_t io_event_threshold = 150;
    /// Most a borrower receives per period, in percent of one period's credit.
    std::uint32_t max_borrow_percent = 100;
    /// Worker and source domains and homes; empty: one domain (placement::single_domain).
    placement layout{};
    /// The time of construction on the clock that drives the scheduler (manual_clock: 0;
    /// steady_clock: its now()).
    time_point start{};
    /// Resolution of the rate limiter's refill timers.
    nanoseconds timer_tick{1024};
};

/// Scheduler-wide counters.
struct credit_stats {
    std::uint64_t picks = 0;              ///< pick() calls
    std::uint64_t picks_idle = 0;         ///< picks that found nothing to run
    std::uint64_t steals_local = 0;       ///< picks of work queued on a worker of the same domain
    std::uint64_t steals_remote = 0;      ///< picks of work queued in another LLC domain
    std::uint64_t wakes = 0;              ///< wake() calls (events)
    std::uint64_t boosts = 0;             ///< wakes that set BOOST
    std::uint64_t kicks = 0;              ///< sleeping workers returned to be woken
    std::uint64_t accountings = 0;        ///< accounting passes
    std::uint64_t parks = 0;              ///< entities parked for exceeding their guest's cap
    std::uint64_t unparks = 0;            ///< parked entities released at accounting
    std::uint64_t throttles = 0;          ///< entities held back by their guest's rate limit
    std::uint64_t loan_rounds = 0;        ///< accountings that lent idle credit
    std::uint64_t credit_lent_ns = 0;     ///< credit moved from idle entities to I/O-busy ones
    std::uint64_t credit_returned_ns = 0; ///< loans given back to lenders that woke
    std::uint64_t credit_forgiven_ns = 0; ///< loans never reclaimed (the lender stayed idle)
    std::uint64_t protocol_errors = 0;    ///< calls out of order or with unknown ids (ignored)
};

/// Per-entity counters.
struct entity_stats {
    std::uint64_t served_ns = 0;   ///< service time accounted
    std::uint64_t bytes = 0;       ///< bytes accounted
    std::uint64_t packets = 0;     ///< packets accounted
    std::uint64_t picks = 0;       ///< grants received
    std::uint64_t events = 0;      ///< wake() calls
    std::uint64_t boosts = 0;      ///< wakes that set BOOST
    std::uint64_t borrowed_ns = 0; ///< credit received from idle entities
    std::uint64_t lent_ns = 0;     ///< credit lent while idle
    std::uint64_t throttles = 0;   ///< times the rate limit held it back
    std::uint64_t parks = 0;       ///< times its cap parked it
};

enum class entity_state : std::uint8_t {
    idle,      ///< no work
    queued,    ///< on a worker's runqueue
    running,   ///< granted to a worker, not yet accounted
    parked,    ///< has work, but its guest overran its cap (until accounting releases it)
    throttled, ///< has work, but its guest's bucket is empty (until the refill timer)
};

template <dispatch_policy Dispatch = cache_aware_dispatch, steal_policy Steal = no_stealing>
    requires std::constructible_from<Dispatch, const placement&>
class credit_scheduler {
public:
    explicit credit_scheduler(const credit_config& cfg, Steal steal = Steal{})
        : cfg_(normalize(cfg)), W_(cfg_.workers), E_(cfg_.entities),
          G_(cfg_.guests == 0 ? cfg_.entities : cfg_.guests), dispatch_(cfg_.layout), steal_(steal),
          ents_(std::make_unique<ent[]>(E_)), guests_(G_), head_(std::size_t{W_} * 3, no_entity),
          tail_(std::size_t{W_} * 3, no_entity), qlen_(W_, 0), load_(W_, 0),
          running_(W_, no_entity), deferred_kick_(W_, no_worker), domain_mask_(W_, 0),
          steal_bias_(W_, 0), scratch_(Steal::enabled ? E_ : 0, no_entity),
          wheel_(cfg_.start, cfg_.timer_tick) {
        for (worker_id w = 0; w < W_; ++w) {
            domain_mask_[w] = cfg_.layout.domain_mask(cfg_.layout.worker_domain[w]);
        }
        idle_mask_ = W_ == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << W_) - 1;
        sleeping_mask_ = idle_mask_;
        period_ = cfg_.period.count();
        max_borrow_ = period_ * static_cast<std::int64_t>(cfg_.max_borrow_percent) / 100;
        for (entity_id e = 0; e < E_; ++e) {
            ents_[e].guest = e % G_;
            ents_[e].timer.cookie = e;
        }
        for (auto& g : guests_) {
            g.bucket.set({}, cfg_.start);
        }
        next_acct_ = cfg_.start + cfg_.period;
    }

    credit_scheduler(const credit_scheduler&) = delete;
    credit_scheduler& operator=(const credit_scheduler&) = delete;

    // --- set-up (under the same lock; may throw) ----------------------------------------------

    /// Weight, cap and rate limit of guest `g` (xl sched-credit -d g -w W -c C; vif rate=).
    void set_guest(guest_id g, const guest_params& p) {
        if (g >= G_) {
            SPLITNET_THROW(std::invalid_argument("credit_scheduler::set_guest: guest " +
                                                 std::to_string(g) + " >= guests (" +
                                                 std::to_string(G_) + ")"));
        }
        if (p.weight == 0) {
            SPLITNET_THROW(std::invalid_argument(
                "credit_scheduler::set_guest: weight must be 1..65535 (Xen's default is 256)"));
        }
        gst& gs = guests_[g];
        if (gs.active != 0) { // as csched_dom_cntl: keep the active weight total exact
            weight_total_ -= std::uint64_t{gs.p.weight} * gs.active;
            weight_total_ += std::uint64_t{p.weight} * gs.active;
        }
        gs.p = p;
        gs.bucket.set(p.rate, cfg_.start > last_now_ ? cfg_.start : last_now_);
        const std::int64_t cap_total = cap_credit_total(p.cap);
        for (entity_id e = gs.act_head; e != no_entity; e = ents_[e].act_next) {
            ents_[e].cap_credit = ceil_div(cap_total, gs.active);
        }
        for (entity_id e = 0; e < E_; ++e) {
            if (ents_[e].guest == g && !ents_[e].active) {
                ents_[e].cap_credit = cap_total;
            }
        }
    }

    /// Moves entity `e` to guest `g` (its active membership and credit move with it).
    void assign(entity_id e, guest_id g) {
        if (e >= E_ || g >= G_) {
            SPLITNET_THROW(std::invalid_argument("credit_scheduler::assign: entity " +
                                                 std::to_string(e) + " or guest " +
                                                 std::to_string(g) + " out of range"));
        }
        ent& en = ents_[e];
        const bool was_active = en.active;
        if (was_active) {
            deactivate(e);
        }
        en.guest = g;
        en.cap_credit = cap_credit_total(guests_[g].p.cap);
        if (was_active) {
            activate(e);
        }
    }

    // --- the policy (noexcept, allocation-free) -----------------------------------------------

    /// Worker `w` asks what to serve. Runs due accounting and rate-limit refills first.
    [[nodiscard]] grant pick(worker_id w, time_point now) noexcept {
        grant g;
        if (w >= W_) {
            ++stats_.protocol_errors;
            return g;
        }
        last_now_ = now;
        idle_mask_ &= ~bit(w);
        sleeping_mask_ &= ~bit(w);
        if (running_[w] != no_entity) { // a pick without account: requeue what it held
            ++stats_.protocol_errors;
            account(running_[w], w, usage{.backlog = true}, now);
        }
        run_due(w, now);
        ++stats_.picks;
        time_point hold = never;
        for (;;) {
            const entity_id e = select(w, now, hold);
            if (e == no_entity) {
                ++stats_.picks_idle;
                idle_mask_ |= bit(w);
                sleeping_mask_ |= bit(w);
                g.retry_at = std::min(hold, next_timer());
                g.kick = deferred_kick_[w];
                deferred_kick_[w] = no_worker;
                return g;
            }
            ent& en = ents_[e];
            gst& gs = guests_[en.guest];
            dequeue(e);
            std::int64_t tokens = INT64_MAX;
            if (gs.bucket.limited() && (tokens = gs.bucket.available(now)) <= 0) {
                en.denied = true; // a sibling queue of the guest spent the tokens: it goes
                throttle(e, now); // first at the refill, so siblings alternate
                continue;
            }
            std::int64_t allowance = cfg_.quantum.count();
            if (gs.p.cap != 0) {
                allowance = std::min(allowance, en.credit + en.cap_credit);
                if (allowance <= 0) { // repaid a loan while queued and fell below the cap
                    park(e);
                    continue;
                }
            }
            en.state = entity_state::running;
            en.where = w;
            running_[w] = e;
            ++load_[w];
            ++en.st.picks;
            g.entity = e;
            g.packets = cfg_.budget_packets;
            g.bytes =
                std::min<std::uint64_t>(cfg_.budget_bytes, static_cast<std::uint64_t>(tokens));
            g.time = nanoseconds{allowance};
            if (deferred_kick_[w] != no_worker) {
                g.kick = deferred_kick_[w];
                deferred_kick_[w] = no_worker;
            } else if (qlen_[w] != 0) {
                g.kick = kick_idle(domain_mask_[w]);
            }
            return g;
        }
    }

    /// Worker `w` reports what it did with its grant for `e`. Burns credit, charges the rate
    /// limiter, ends BOOST, and requeues `e` where the dispatch policy says if it still has
    /// work (or an event came in during the service), unless its cap or rate limit holds it
    /// back. If that wakes a sleeping worker, w's next pick() returns it in `kick`.
    void account(entity_id e, worker_id w, const usage& u, time_point now) noexcept {
        if (e >= E_ || w >= W_ || running_[w] != e || ents_[e].state != entity_state::running) {
            ++stats_.protocol_errors;
            return;
        }
        last_now_ = now;
        ent& en = ents_[e];
        gst& gs = guests_[en.guest];
        running_[w] = no_entity;
        --load_[w];
        settle(en);
        const std::int64_t used = std::max<std::int64_t>(0, u.time.count());
        en.credit -= used;
        en.st.served_ns += static_cast<std::uint64_t>(used);
        en.st.bytes += u.bytes;
        en.st.packets += u.packets;
        gs.bucket.consume(u.bytes, now);
        if (!en.active) {
            activate(e);
        }
        en.boost = false;
        const bool runnable = u.backlog || en.wake_pending;
        en.wake_pending = false;
        if (gs.p.cap != 0 && en.credit < -en.cap_credit) {
            en.state = entity_state::idle;
            if (runnable) {
                park(e);
            } else {
                en.parked = true;
                ++stats_.parks;
                ++en.st.parks;
            }
            return;
        }
        if (!runnable) {
            en.state = entity_state::idle;
            return;
        }
        if (gs.bucket.limited() && gs.bucket.available(now) <= 0) {
            throttle(e, now);
            return;
        }
        // Requeue where the dispatch policy says (cache-aware: back in its home domain after a
        // steal), not necessarily on `w`. A sleeping target is kicked through w's next pick().
        worker_id t = dispatch_.dispatch(e, std::span<const std::uint32_t>(load_));
        if (t >= W_ || (t != w && (idle_mask_ & bit(t)) != 0 && deferred_kick_[w] != no_worker)) {
            t = w; // one deferred kick per worker at a time
        }
        enqueue(e, t, now);
        if (t != w && (idle_mask_ & bit(t)) != 0) {
            idle_mask_ &= ~bit(t);
            ++stats_.kicks;
            deferred_kick_[w] = t;
        }
    }

    /// An event for entity `e` (a frontend kick, packets for its queue). Returns the sleeping
    /// worker the caller must wake, or no_worker.
    [[nodiscard]] worker_id wake(entity_id e, time_point now) noexcept {
        if (e >= E_) {
            ++stats_.protocol_errors;
            return no_worker;
        }
        last_now_ = now;
        ent& en = ents_[e];
        ++stats_.wakes;
        ++en.st.events;
        ++en.events;
        if constexpr (Steal::enabled) {
            if (en.lent > 0) {
                return_loan(en);
            }
        }
        switch (en.state) {
        case entity_state::running:
            en.wake_pending = true;
            return no_worker;
        case entity_state::queued:
        case entity_state::parked:
        case entity_state::throttled:
            return no_worker;
        case entity_state::idle:
            break;
        }
        if (en.parked) {
            en.state = entity_state::parked;
            ++parked_waiting_;
            return no_worker;
        }
        gst& gs = guests_[en.guest];
        if (gs.bucket.limited() && gs.bucket.available(now) <= 0) {
            throttle(e, now);
            return no_worker;
        }
        if (en.credit >= 0) { // csched_unit_wake: UNDER and not parked -> BOOST
            en.boost = true;
            ++stats_.boosts;
            ++en.st.boosts;
        }
        worker_id t = dispatch_.dispatch(e, std::span<const std::uint32_t>(load_));
        if (t >= W_) {
            t = e % W_;
        }
        enqueue(e, t, now);
        if ((idle_mask_ & bit(t)) != 0) {
            idle_mask_ &= ~bit(t);
            ++stats_.kicks;
            return t;
        }
        return kick_idle(domain_mask_[t]);
    }

    /// Entity `e` has no more work (its queue was emptied outside a service).
    void idle(entity_id e, time_point now) noexcept {
        if (e >= E_) {
            ++stats_.protocol_errors;
            return;
        }
        last_now_ = now;
        ent& en = ents_[e];
        switch (en.state) {
        case entity_state::queued:
            dequeue(e);
            en.state = entity_state::idle;
            break;
        case entity_state::throttled:
            wheel_.cancel(en.timer);
            en.state = entity_state::idle;
            en.denied = false;
            break;
        case entity_state::parked:
            --parked_waiting_;
            en.state = entity_state::idle;
            break;
        case entity_state::running:
            en.wake_pending = false;
            break;
        case entity_state::idle:
            break;
        }
    }

    // --- observers ----------------------------------------------------------------------------

    /// Credit in Xen's units (10 per ms of service).
    [[nodiscard]] std::int64_t credit(entity_id e) const noexcept {
        return ents_[e].credit * static_cast<std::int64_t>(cfg_.credits_per_ms) / 1'000'000;
    }
    [[nodiscard]] nanoseconds credit_time(entity_id e) const noexcept {
        return nanoseconds{ents_[e].credit};
    }
    [[nodiscard]] priority prio(entity_id e) const noexcept {
        const ent& en = ents_[e];
        return en.boost ? priority::boost : en.credit >= 0 ? priority::under : priority::over;
    }
    [[nodiscard]] entity_state state(entity_id e) const noexcept { return ents_[e].state; }
    [[nodiscard]] bool active(entity_id e) const noexcept { return ents_[e].active; }
    [[nodiscard]] bool parked(entity_id e) const noexcept { return ents_[e].parked; }
    [[nodiscard]] guest_id guest_of(entity_id e) const noexcept { return ents_[e].guest; }
    /// The worker whose runqueue holds `e`, or that runs it; no_worker otherwise.
    [[nodiscard]] worker_id where(entity_id e) const noexcept {
        const ent& en = ents_[e];
        return en.state == entity_state::queued || en.state == entity_state::running ? en.where
                                                                                     : no_worker;
    }
    /// Credit lent and not yet returned or forgiven, and credit borrowed this period.
    [[nodiscard]] nanoseconds lent(entity_id e) const noexcept {
        return nanoseconds{ents_[e].lent};
    }
    [[nodiscard]] nanoseconds borrowed(entity_id e) const noexcept {
        return nanoseconds{ents_[e].borrowed};
    }
    [[nodiscard]] const entity_stats& stats(entity_id e) const noexcept { return ents_[e].st; }
    [[nodiscard]] const credit_stats& stats() const noexcept { return stats_; }
    /// load[w]: entities queued on w plus the one it runs (what dispatch policies see).
    [[nodiscard]] std::span<const std::uint32_t> load() const noexcept { return load_; }
    [[nodiscard]] std::uint64_t idle_workers() const noexcept { return idle_mask_; }
    [[nodiscard]] time_point next_accounting() const noexcept { return next_acct_; }
    [[nodiscard]] const credit_config& config() const noexcept { return cfg_; }
    [[nodiscard]] std::uint32_t workers() const noexcept { return W_; }
    [[nodiscard]] std::uint32_t entities() const noexcept { return E_; }
    [[nodiscard]] std::uint32_t guests() const noexcept { return G_; }
    [[nodiscard]] const Dispatch& dispatcher() const noexcept { return dispatch_; }

private:
    struct ent {
        entity_id next = no_entity; // runqueue links
        entity_id prev = no_entity;
        entity_id act_next = no_entity; // the guest's active list
        entity_id act_prev = no_entity;
        guest_id guest = 0;
        worker_id where = no_worker;
        entity_state state = entity_state::idle;
        std::uint8_t list = 1; // runqueue list: 0 BOOST, 1 UNDER, 2 OVER
        bool boost = false;
        bool wake_pending = false;
        bool parked = false;
        bool active = false;
        bool borrower = false;
        bool denied = false;      // throttled at pick because a sibling queue spent the tokens
        std::uint32_t events = 0; // wakes this period (I/O classification)
        std::int64_t credit = 0;  // ns
        std::int64_t cap_credit = 0;
        std::int64_t lent = 0;
        std::int64_t borrowed = 0;
        std::int64_t clawback_paid = 0;
        time_point enqueued{};
        entity_stats st{};
        coalesce::timer timer; // the rate limiter's refill
    };

    struct gst {
        guest_params p{};
        std::uint32_t active = 0;
        entity_id act_head = no_entity;
        guest_id next = no_guest;
        guest_id prev = no_guest;
        bool listed = false;
        token_bucket bucket{};
    };

    static constexpr guest_id no_guest = UINT32_MAX;

    // Validates the configuration and fills in a single-domain layout when none was given.
    static credit_config normalize(credit_config c) {
        auto fail = [](const std::string& what) {
            SPLITNET_THROW(std::invalid_argument("credit_scheduler: " + what));
        };
        if (c.workers == 0 || c.workers > max_workers) {
            fail("workers must be 1.." + std::to_string(max_workers));
        }
        if (c.entities == 0) {
            fail("entities must be >= 1 (one per backend queue)");
        }
        if (c.period < std::chrono::microseconds(100) || c.period > std::chrono::seconds(1)) {
            fail("period must be 100 µs .. 1 s (Xen allows a 1-1000 ms tslice; default 30 ms)");
        }
        if (c.budget_packets == 0 || c.budget_bytes == 0 || c.quantum <= nanoseconds::zero()) {
            fail("budget_packets, budget_bytes and quantum must be > 0");
        }
        if (c.credits_per_ms == 0) {
            fail("credits_per_ms must be > 0 (Xen: 10)");
        }
        if (c.layout.workers() == 0) {
            c.layout = placement::single_domain(c.workers, c.entities);
        } else if (c.layout.workers() != c.workers) {
            fail("layout has " + std::to_string(c.layout.workers()) + " workers, config " +
                 std::to_string(c.workers) +
                 "; build it with placement::plan for the same workers");
        }
        return c;
    }

    static constexpr std::uint64_t bit(worker_id w) noexcept { return std::uint64_t{1} << w; }

    static std::int64_t ceil_div(std::int64_t a, std::int64_t b) noexcept {
        return b <= 0 ? a : (a + b - 1) / b;
    }

    [[nodiscard]] std::int64_t cap_credit_total(std::uint16_t cap) const noexcept {
        return cap == 0 ? 0 : ceil_div(std::int64_t{cap} * period_, 100);
    }

    // --- runqueues ----------------------------------------------------------------------------

    [[nodiscard]] std::uint8_t list_of(const ent& en) const noexcept {
        return en.boost ? 0 : en.credit >= 0 ? 1 : 2;
    }

    void link_front(entity_id e, worker_id w, std::uint8_t l) noexcept {
        ent& en = ents_[e];
        const std::size_t q = std::size_t{w} * 3 + l;
        en.list = l;
        en.prev = no_entity;
        en.next = head_[q];
        if (head_[q] == no_entity) {
            tail_[q] = e;
            nonempty_[l] |= bit(w);
        } else {
            ents_[head_[q]].prev = e;
        }
        head_[q] = e;
    }

    void link(entity_id e, worker_id w, std::uint8_t l) noexcept {
        ent& en = ents_[e];
        const std::size_t q = std::size_t{w} * 3 + l;
        en.list = l;
        en.next = no_entity;
        en.prev = tail_[q];
        if (tail_[q] == no_entity) {
            head_[q] = e;
            nonempty_[l] |= bit(w);
        } else {
            ents_[tail_[q]].next = e;
        }
        tail_[q] = e;
    }

    void unlink(entity_id e) noexcept {
        ent& en = ents_[e];
        const std::size_t q = std::size_t{en.where} * 3 + en.list;
        (en.prev == no_entity ? head_[q] : ents_[en.prev].next) = en.next;
        (en.next == no_entity ? tail_[q] : ents_[en.next].prev) = en.prev;
        if (head_[q] == no_entity) {
            nonempty_[en.list] &= ~bit(en.where);
        }
        en.next = en.prev = no_entity;
    }

    void enqueue(entity_id e, worker_id w, time_point now, bool front = false) noexcept {
        ent& en = ents_[e];
        en.state = entity_state::queued;
        en.where = w;
        en.enqueued = now;
        if (front) {
            link_front(e, w, list_of(en));
        } else {
            link(e, w, list_of(en));
        }
        ++qlen_[w];
        ++load_[w];
    }

    void dequeue(entity_id e) noexcept {
        ent& en = ents_[e];
        unlink(e);
        --qlen_[en.where];
        --load_[en.where];
    }

    // The runqueue must match the priority after credit changes (Xen's csched_runq_sort).
    void resort(entity_id e) noexcept {
        ent& en = ents_[e];
        const std::uint8_t l = list_of(en);
        if (en.state == entity_state::queued && en.list != l) {
            unlink(e);
            link(e, en.where, l);
        }
    }

    [[nodiscard]] worker_id pick_bit(std::uint64_t m, worker_id w) noexcept {
        const unsigned b = steal_bias_[w];
        const auto r = std::rotr(m, static_cast<int>(b));
        const auto v =
            static_cast<worker_id>((static_cast<unsigned>(std::countr_zero(r)) + b) & 63U);
        steal_bias_[w] = (v + 1) & 63U;
        return v;
    }

    // Xen's csched_schedule + csched_load_balance: local BOOST/UNDER first; otherwise the head of
    // a strictly higher priority elsewhere (own domain first); otherwise local OVER.
    [[nodiscard]] entity_id select(worker_id w, time_point now, time_point& hold) noexcept {
        const std::size_t q = std::size_t{w} * 3;
        std::uint8_t local = 3;
        for (std::uint8_t l = 0; l < 3; ++l) {
            if (head_[q + l] != no_entity) {
                local = l;
                break;
            }
        }
        if (local <= 1) {
            return head_[q + local];
        }
        const std::uint8_t upto = local == 3 ? 3 : 2;
        for (std::uint8_t l = 0; l < upto; ++l) {
            // Not from a sleeping worker: it has been kicked and is about to run its own queue
            // (csched_runq_steal skips peers running the idle unit for the same reason).
            const std::uint64_t peers = nonempty_[l] & ~bit(w) & ~sleeping_mask_;
            if (peers == 0) {
                continue;
            }
            if (const std::uint64_t same = peers & domain_mask_[w]; same != 0) {
                ++stats_.steals_local;
                return head_[std::size_t{pick_bit(same, w)} * 3 + l];
            }
            std::uint64_t remote = peers & ~domain_mask_[w];
            while (remote != 0) {
                const worker_id v = pick_bit(remote, w);
                const entity_id h = head_[std::size_t{v} * 3 + l];
                const time_point ok = ents_[h].enqueued + cfg_.migration_delay;
                if (ok <= now) {
                    ++stats_.steals_remote;
                    return h;
                }
                hold = std::min(hold, ok);
                remote &= ~bit(v);
            }
        }
        return local == 2 ? head_[q + 2] : no_entity;
    }

    [[nodiscard]] worker_id kick_idle(std::uint64_t prefer) noexcept {
        std::uint64_t m = idle_mask_ & prefer;
        if (m == 0) {
            m = idle_mask_;
        }
        if (m == 0) {
            return no_worker;
        }
        const auto v = static_cast<worker_id>(std::countr_zero(m));
        idle_mask_ &= ~bit(v);
        ++stats_.kicks;
        return v;
    }

    // --- caps and rate limits
    // ---------------------------------------------------------------------

    void park(entity_id e) noexcept {
        ent& en = ents_[e];
        if (!en.parked) {
            ++stats_.parks;
            ++en.st.parks;
        }
        en.parked = true;
        en.state = entity_state::parked;
        ++parked_waiting_;
    }

    void throttle(entity_id e, time_point now) noexcept {
        ent& en = ents_[e];
        en.state = entity_state::throttled;
        ++stats_.throttles;
        ++en.st.throttles;
        wheel_.arm(en.timer, guests_[en.guest].bucket.ready_at(now));
    }

    // Runs on the worker that called pick(): the released entity joins its runqueue, and a
    // sleeping worker is kicked by the rule in pick() if more work than it can take waits.
    void release(entity_id e, worker_id w, time_point now) noexcept {
        ent& en = ents_[e];
        gst& gs = guests_[en.guest];
        if (en.parked) { // parked by accounting while it waited for tokens
            park(e);
            return;
        }
        if (gs.bucket.limited() && gs.bucket.available(now) <= 0) {
            throttle(e, now);
            return;
        }
        enqueue(e, w, now, en.denied);
        en.denied = false;
    }

    [[nodiscard]] time_point next_timer() const noexcept {
        time_point t = wheel_.next_expiry();
        if (parked_waiting_ != 0) {
            t = std::min(t, next_acct_);
        }
        return t;
    }

    void run_due(worker_id w, time_point now) noexcept {
        if (now >= next_acct_) {
            const std::int64_t periods = (now - next_acct_).count() / period_ + 1;
            // After a long idle spell a few passes settle every credit (halving, leaving the
            // active list); replaying every missed period would only cost time.
            for (std::int64_t i = 0; i < std::min<std::int64_t>(periods, 4); ++i) {
                accounting(w, now);
            }
            next_acct_ += nanoseconds{periods * period_};
        }
        if (!wheel_.empty()) {
            wheel_.expire(now, [&](coalesce::timer& t) noexcept {
                const auto e = static_cast<entity_id>(t.cookie);
                if (ents_[e].state == entity_state::throttled) {
                    release(e, w, now);
                }
            });
        }
    }

    // --- credit1 accounting
    // -----------------------------------------------------------------------

    void activate(entity_id e) noexcept {
        ent& en = ents_[e];
        gst& gs = guests_[en.guest];
        en.active = true;
        en.act_prev = no_entity;
        en.act_next = gs.act_head;
        if (gs.act_head != no_entity) {
            ents_[gs.act_head].act_prev = e;
        }
        gs.act_head = e;
        ++gs.active;
        weight_total_ += gs.p.weight;
        if (!gs.listed) { // list_add: at the head of the active guests
            gs.listed = true;
            link_guest_head(en.guest);
        }
    }

    void deactivate(entity_id e) noexcept {
        ent& en = ents_[e];
        gst& gs = guests_[en.guest];
        en.active = false;
        (en.act_prev == no_entity ? gs.act_head : ents_[en.act_prev].act_next) = en.act_next;
        if (en.act_next != no_entity) {
            ents_[en.act_next].act_prev = en.act_prev;
        }
        en.act_next = en.act_prev = no_entity;
        --gs.active;
        weight_total_ -= gs.p.weight;
        if (gs.active == 0 && gs.listed) {
            unlink_guest(en.guest);
            gs.listed = false;
        }
    }

    void link_guest_head(guest_id g) noexcept {
        gst& gs = guests_[g];
        gs.prev = no_guest;
        gs.next = act_head_;
        if (act_head_ != no_guest) {
            guests_[act_head_].prev = g;
        }
        act_head_ = g;
    }

    void unlink_guest(guest_id g) noexcept {
        gst& gs = guests_[g];
        (gs.prev == no_guest ? act_head_ : guests_[gs.prev].next) = gs.next;
        if (gs.next != no_guest) {
            guests_[gs.next].prev = gs.prev;
        }
        gs.next = gs.prev = no_guest;
    }

    // csched_acct, in ns of credit. Unsigned 128-bit products where Xen uses uint32.
    void accounting(worker_id w, time_point now) noexcept {
        using coalesce::detail::mul_div_up;
        ++stats_.accountings;
        const auto weight_total = weight_total_;
        std::uint64_t credit_total = static_cast<std::uint64_t>(period_) * W_;
        if (balance_ < 0) { // converge balance towards 0 when it drops negative
            credit_total += static_cast<std::uint64_t>(-balance_);
        }
        if (weight_total == 0) {
            balance_ = 0;
        } else {
            std::uint64_t weight_left = weight_total;
            std::int64_t balance = 0;
            bool xtra = false;
            for (guest_id g = act_head_; g != no_guest;) {
                gst& gs = guests_[g];
                const guest_id next_g = gs.next;
                const std::uint64_t wa = std::uint64_t{gs.p.weight} * gs.active;
                weight_left -= wa;
                auto peak = static_cast<std::uint64_t>(period_) * gs.active;
                if (balance_ < 0) {
                    peak += mul_div_up(static_cast<std::uint64_t>(-balance_), wa, weight_total);
                }
                std::int64_t cap_credit = 0;
                if (gs.p.cap != 0) {
                    const auto c = static_cast<std::uint64_t>(cap_credit_total(gs.p.cap));
                    peak = std::min(peak, c);
                    cap_credit = ceil_div(static_cast<std::int64_t>(c), gs.active);
                }
                std::uint64_t fair = mul_div_up(credit_total, wa, weight_total);
                if (fair < peak) {
                    xtra = true;
                } else {
                    if (weight_left != 0) { // give other guests a chance at unused credit
                        credit_total += mul_div_up(fair - peak, weight_total, weight_left);
                    }
                    if (xtra) { // keep guests with extra credit at the head
                        unlink_guest(g);
                        link_guest_head(g);
                    }
                    fair = peak;
                }
                const auto per = static_cast<std::int64_t>((fair + gs.active - 1) / gs.active);
                for (entity_id e = gs.act_head; e != no_entity;) {
                    ent& en = ents_[e];
                    const entity_id next_e = en.act_next;
                    settle(en);
                    en.credit += per;
                    en.cap_credit = cap_credit;
                    en.boost = false; // the priority is recomputed: BOOST ends
                    if (en.credit < 0) {
                        if (gs.p.cap != 0 && en.credit < -cap_credit && !en.parked) {
                            if (en.state == entity_state::queued) {
                                dequeue(e);
                                park(e);
                            } else {
                                en.parked = true;
                                ++stats_.parks;
                                ++en.st.parks;
                            }
                        }
                        en.credit = std::max(en.credit, -period_);
                    } else {
                        if (en.parked) {
                            unpark(e, w, now);
                        }
                        if (en.credit > period_) { // stops earning; starts a little ahead
                            deactivate(e);
                            en.credit /= 2;
                        }
                    }
                    resort(e);
                    balance += en.credit;
                    e = next_e;
                }
                g = next_g;
            }
            balance_ = balance;
        }
        if constexpr (Steal::enabled) {
            lend(now); // also resets the per-period event counts
        } else {
            for (entity_id e = 0; e < E_; ++e) {
                ents_[e].events = 0;
            }
        }
    }

    void unpark(entity_id e, worker_id w, time_point now) noexcept {
        ent& en = ents_[e];
        en.parked = false;
        ++stats_.unparks;
        if (en.state == entity_state::parked) { // had work: back to a runqueue, not boosted
            --parked_waiting_;
            release(e, w, now);
        }
    }

    // --- credit stealing
    // --------------------------------------------------------------------------

    void return_loan(ent& en) noexcept {
        en.credit += en.lent;
        clawback_total_ += en.lent;
        stats_.credit_returned_ns += static_cast<std::uint64_t>(en.lent);
        en.lent = 0;
    }

    // A borrower repays its equal share of every loan returned so far in this round.
    void settle(ent& en) noexcept {
        if (!en.borrower || round_borrowers_ == 0) {
            return;
        }
        const std::int64_t owed = clawback_total_ / round_borrowers_ - en.clawback_paid;
        if (owed > 0) {
            en.credit -= owed;
            en.clawback_paid += owed;
        }
    }

    // One pass over all entities closes the previous round and classifies lenders and
    // borrowers (into lists sized at construction); then only those are touched.
    void lend(time_point) noexcept {
        std::int64_t idle_credit = 0;
        std::uint32_t n_lenders = 0;
        std::uint32_t n_io = 0;
        for (entity_id e = 0; e < E_; ++e) {
            ent& en = ents_[e];
            if (en.lent > 0) { // not reclaimed during its period: forgiven
                stats_.credit_forgiven_ns += static_cast<std::uint64_t>(en.lent);
                en.lent = 0;
            }
            if (en.borrower) { // repay what lenders took back, then the round is over
                settle(en);
                resort(e);
                en.borrower = false;
                en.borrowed = 0;
            }
            if (is_lender(en)) {
                idle_credit += en.credit;
                scratch_[n_lenders++] = e;
            } else if (is_borrower(en)) {
                scratch_[E_ - 1 - n_io++] = e; // borrowers fill the list from the other end
            }
            en.events = 0;
        }
        clawback_total_ = 0;
        round_borrowers_ = 0;
        if (n_io == 0 || idle_credit <= 0) {
            return;
        }
        const std::int64_t per = std::min(steal_.share(idle_credit, n_io), max_borrow_);
        if (per <= 0) {
            return;
        }
        const std::int64_t total = std::min(per * n_io, idle_credit);
        std::int64_t taken = 0;
        for (std::uint32_t i = 0; i < n_lenders; ++i) {
            ent& en = ents_[scratch_[i]];
            const auto x = static_cast<std::int64_t>(coalesce::detail::mul_div(
                static_cast<std::uint64_t>(en.credit), static_cast<std::uint64_t>(total),
                static_cast<std::uint64_t>(idle_credit)));
            en.credit -= x;
            en.lent = x;
            en.st.lent_ns += static_cast<std::uint64_t>(x);
            taken += x;
        }
        const std::int64_t give = taken / n_io;
        for (std::uint32_t i = 0; i < n_io; ++i) {
            const entity_id e = scratch_[E_ - 1 - i];
            ent& en = ents_[e];
            en.credit += give;
            en.borrower = true;
            en.borrowed = give;
            en.clawback_paid = 0;
            en.st.borrowed_ns += static_cast<std::uint64_t>(give);
            resort(e);
        }
        round_borrowers_ = n_io;
        ++stats_.loan_rounds;
        stats_.credit_lent_ns += static_cast<std::uint64_t>(taken);
    }

    [[nodiscard]] bool is_lender(const ent& en) const noexcept {
        return en.active && en.state == entity_state::idle && !en.parked && en.credit > 0 &&
               en.lent == 0;
    }
    [[nodiscard]] bool is_borrower(const ent& en) const noexcept {
        const bool has_work = en.state == entity_state::queued ||
                              en.state == entity_state::running ||
                              en.state == entity_state::throttled;
        return has_work && !en.borrower && !en.parked && en.events >= cfg_.io_event_threshold &&
               guests_[en.guest].p.cap == 0;
    }

    credit_config cfg_;
    std::uint32_t W_;
    std::uint32_t E_;
    std::uint32_t G_;
    Dispatch dispatch_;
    Steal steal_;
    std::unique_ptr<ent[]> ents_;
    std::vector<gst> guests_;
    std::vector<entity_id> head_; // [worker * 3 + list]
    std::vector<entity_id> tail_;
    std::array<std::uint64_t, 3> nonempty_{}; // workers with a non-empty list, per list
    std::vector<std::uint32_t> qlen_;
    std::vector<std::uint32_t> load_;
    std::vector<entity_id> running_;
    std::vector<worker_id> deferred_kick_; // a sleeper account() queued work for, returned by
                                           // the caller's next pick()
    std::vector<std::uint64_t> domain_mask_;
    std::vector<std::uint32_t> steal_bias_;
    std::vector<entity_id> scratch_;  // lenders from the front, borrowers from the back
    std::uint64_t idle_mask_ = 0;     // sleeping and not yet kicked: may be kicked
    std::uint64_t sleeping_mask_ = 0; // between an empty pick and the next pick (kicked or not)
    std::int64_t period_ = 0;
    std::int64_t max_borrow_ = 0;
    time_point next_acct_{};
    time_point last_now_{};
    std::int64_t balance_ = 0;
    std::uint64_t weight_total_ = 0;
    guest_id act_head_ = no_guest;
    std::uint32_t parked_waiting_ = 0;
    std::uint32_t round_borrowers_ = 0;
    std::int64_t clawback_total_ = 0;
    coalesce::timer_wheel wheel_;
    credit_stats stats_{};
};

/// Xen credit1 with cache-aware dispatch; no credit stealing.
using credit = credit_scheduler<>;
/// credit plus seed 003's credit stealing.
using credit_stealing = credit_scheduler<cache_aware_dispatch, seed_stealing>;
static_assert(credit_policy<credit>);
static_assert(credit_policy<credit_stealing>);

} // namespace splitnet::sched
