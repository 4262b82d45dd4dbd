// SPDX-License-Identifier: MIT
// splitnet/coalesce/timer_wheel.hpp: a hierarchical timer wheel (Varghese & Lauck; the layout
// of Linux's timer wheel before 4.8: 4 levels of 64 slots, each level 64 times coarser) for the
// many short deadlines of a driver domain: GRO flow flush timeouts, TX drain, notification
// deadlines, rate-limit refills.
//
// Timers are intrusive: a `timer` lives inside the caller's object (a GRO flow, a backend
// queue) and the wheel only links it, so nothing is allocated after construction.
//   arm / cancel: O(1) (a bit_width, a list link or unlink, a bitmap bit).
//   expire(now):  O(levels) per call plus O(1) per timer fired; a timer is moved down a level
//                 ("cascaded") at most levels-1 times in its life. Empty stretches of time are
//                 skipped with the slot bitmaps, so a wheel left alone for an hour costs one call
//                 of a few dozen instructions, not one step per tick.
// Unlike Linux since 4.8 (which never cascades and lets a timer fire up to 12.5% late), timers
// cascade here so each fires within one tick of its deadline: coalescing deadlines of 10-100 µs
// cannot afford a 12.5% error. A timer never fires early: it fires at the first expire(now)
// with now >= deadline (deadlines are rounded up to a tick). Deadlines beyond the wheel's range
// (64^4 ticks, 17 s at the default 1.024 µs tick) wait in the top level and are re-placed when
// reached, so any deadline works, far ones at the cost of an extra cascade every 64^3 ticks.
//
// Threading: a wheel and its timers belong to one thread (one wheel per worker); nothing is
// atomic. Set-up errors (a tick that is not a power of two) throw std::invalid_argument.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>

#include <splitnet/coalesce/clock.hpp>
#include <splitnet/config.hpp>

namespace splitnet::coalesce {

class timer_wheel;

namespace detail {
struct timer_link {
    timer_link* next = nullptr;
    timer_link* prev = nullptr;
};
} // namespace detail

/// An intrusive timer: embed it in the object it times. Not copyable or movable (the wheel
/// points at it), so containers of timers are sized once (std::vector<T>(n) or unique_ptr<T[]>).
/// Destroying an armed timer cancels it first.
class timer : private detail::timer_link {
public:
    timer() noexcept = default;
    explicit timer(std::uint64_t c) noexcept : cookie(c) {}
    timer(const timer&) = delete;
    timer& operator=(const timer&) = delete;
    ~timer();

    [[nodiscard]] bool armed() const noexcept { return wheel_ != nullptr; }
    /// The deadline it was last armed with.
    [[nodiscard]] time_point deadline() const noexcept { return deadline_; }

    std::uint64_t cookie = 0; ///< the caller's data (a flow index, a queue id); never read here

private:
    friend class timer_wheel;
    timer_wheel* wheel_ = nullptr;
    std::uint64_t tick_ = 0; ///< deadline in wheel ticks, rounded up
    time_point deadline_{};
    std::uint16_t slot_ = 0; ///< level * 64 + index of the list it is on; in_flight while firing
};

/// Counters since construction.
struct timer_wheel_stats {
    std::uint64_t armed = 0;     ///< arm() calls, re-arms included
    std::uint64_t cancelled = 0; ///< armed timers removed by cancel() or destruction
    std::uint64_t expired = 0;   ///< timers fired by expire()
    std::uint64_t cascaded = 0;  ///< timer moves from a coarse level to a finer one
};

class timer_wheel {
public:
    static constexpr unsigned levels = 4;
    static constexpr unsigned level_bits = 6;
    static constexpr unsigned slots = 1U << level_bits;
    /// Ticks a deadline may lie ahead and still be placed exactly: 64^4.
    static constexpr std::uint64_t range_ticks = std::uint64_t{1} << (levels * level_bits);

    /// A wheel whose clock starts at `start`; `tick` (the resolution) must be a power of two
    /// nanoseconds. The default, 1024 ns, suits deadlines from a few µs to seconds.
    explicit timer_wheel(time_point start = time_point{}, nanoseconds tick = nanoseconds{1024}) {
        const auto t = tick.count();
        if (t <= 0 || !std::has_single_bit(static_cast<std::uint64_t>(t))) {
            SPLITNET_THROW(std::invalid_argument(
                "timer_wheel: tick must be a power of two nanoseconds (e.g. 1024ns), got " +
                std::to_string(t) + "ns"));
        }
        shift_ = static_cast<unsigned>(std::countr_zero(static_cast<std::uint64_t>(t)));
        current_ = to_ns(start) >> shift_;
        for (auto& h : heads_) {
            h.next = h.prev = &h;
        }
    }

    timer_wheel(const timer_wheel&) = delete;
    timer_wheel& operator=(const timer_wheel&) = delete;

    /// Timers still armed are left disarmed, so destroying them later is safe.
    ~timer_wheel() {
        for (auto& h : heads_) {
            for (detail::timer_link* l = h.next; l != &h;) {
                timer& t = as_timer(l);
                l = l->next;
                t.next = t.prev = nullptr;
                t.wheel_ = nullptr;
            }
        }
    }

    [[nodiscard]] nanoseconds tick() const noexcept { return nanoseconds{1LL << shift_}; }
    /// Armed timers.
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] const timer_wheel_stats& stats() const noexcept { return stats_; }

    /// Arms `t` to fire at the first expire(now) with now >= deadline, moving it if it was
    /// armed already (Linux mod_timer). A deadline of `never` cancels it.
    void arm(timer& t, time_point deadline) noexcept {
        if (deadline == never) {
            cancel(t);
            return;
        }
        ++stats_.armed;
        const std::uint64_t ns = to_ns(deadline);
        const std::uint64_t tick = (ns >> shift_) + ((ns & mask()) != 0 ? 1 : 0);
        if (t.wheel_ == this) {
            if (t.tick_ == tick) {
                t.deadline_ = deadline;
                return;
            }
            unlink(t);
        } else {
            if (t.wheel_ != nullptr) {
                t.wheel_->cancel(t); // armed on another wheel: move it here
            }
            ++size_;
        }
        t.wheel_ = this;
        t.tick_ = tick;
        t.deadline_ = deadline;
        place(t);
    }

    /// Disarms `t`; returns whether it was armed here.
    bool cancel(timer& t) noexcept {
        if (t.wheel_ != this) {
            return false;
        }
        unlink(t);
        t.wheel_ = nullptr;
        --size_;
        ++stats_.cancelled;
        return true;
    }

    /// Fires every timer whose deadline is <= now, calling on_expired(timer&) for each, in
    /// deadline order (tick by tick; FIFO within a tick). The callback may arm or cancel any
    /// timer, the one it was given included; a timer it arms for <= now fires in this call only
    /// if its tick has not been passed yet, otherwise at the next call, so a callback that
    /// always re-arms cannot loop forever. Returns the number fired.
    template <class F>
    std::size_t expire(time_point now, F&& on_expired) noexcept {
        const std::uint64_t target = to_ns(now) >> shift_;
        std::size_t fired = 0;
        while (current_ <= target && size_ != 0) {
            cascade_at(current_);
            const unsigned idx = static_cast<unsigned>(current_ & (slots - 1));
            if ((occupied_[0] & (std::uint64_t{1} << idx)) == 0) {
                skip_to(target);
                continue;
            }
            // Detach the slot and advance first, so timers armed by callbacks land elsewhere.
            detail::timer_link local;
            detail::timer_link& head = heads_[idx];
            local.next = head.next;
            local.prev = head.prev;
            local.next->prev = &local;
            local.prev->next = &local;
            head.next = head.prev = &head;
            occupied_[0] &= ~(std::uint64_t{1} << idx);
            ++current_;
            while (local.next != &local) {
                timer& t = as_timer(local.next);
                unlink_node(t);
                t.wheel_ = nullptr;
                --size_;
                ++stats_.expired;
                ++fired;
                on_expired(t);
            }
        }
        if (current_ <= target) {
            current_ = target + 1; // empty wheel: jump
        }
        return fired;
    }

    /// Batch-out form: writes up to out.size() expired timers (deadline <= now) to `out`, in
    /// deadline order, and returns how many. Timers that did not fit stay armed for the next
    /// call, with no lateness added beyond the caller's own delay.
    std::size_t expire(time_point now, std::span<timer*> out) noexcept {
        const std::uint64_t target = to_ns(now) >> shift_;
        std::size_t n = 0;
        while (current_ <= target && size_ != 0 && n < out.size()) {
            cascade_at(current_); // idempotent: a second call at the same tick finds it empty
            const unsigned idx = static_cast<unsigned>(current_ & (slots - 1));
            if ((occupied_[0] & (std::uint64_t{1} << idx)) == 0) {
                skip_to(target);
                continue;
            }
            detail::timer_link& head = heads_[idx];
            while (head.next != &head && n < out.size()) {
                timer& t = as_timer(head.next);
                unlink_node(t);
                t.wheel_ = nullptr;
                --size_;
                ++stats_.expired;
                out[n++] = &t;
            }
            if (head.next == &head) {
                occupied_[0] &= ~(std::uint64_t{1} << idx);
                ++current_;
            }
        }
        if (size_ == 0 && current_ <= target) {
            current_ = target + 1;
        }
        return n;
    }

    /// The tick time at which the earliest armed timer fires (its deadline rounded up to the
    /// tick; earlier if it is overdue), `never` when none is armed. A worker sleeps until then
    /// (a timerfd, an epoll timeout) and calls expire(). O(levels) plus a walk of the first
    /// occupied slot of each coarse level (timers there are not sorted).
    [[nodiscard]] time_point next_expiry() const noexcept {
        if (size_ == 0) {
            return never;
        }
        std::uint64_t best = UINT64_MAX;
        if (occupied_[0] != 0) {
            const auto r = std::rotr(occupied_[0], static_cast<int>(current_ & (slots - 1)));
            best = current_ + static_cast<std::uint64_t>(std::countr_zero(r));
        }
        for (unsigned level = 1; level < levels; ++level) {
            if (occupied_[level] == 0) {
                continue;
            }
            // The first slot visited holds this level's earliest deadlines (slots map to
            // consecutive, disjoint blocks of ticks from current_ on).
            const unsigned sh = level * level_bits;
            const std::uint64_t first = (current_ + ((std::uint64_t{1} << sh) - 1)) >> sh;
            const auto r = std::rotr(occupied_[level], static_cast<int>(first & (slots - 1)));
            const std::uint64_t block = first + static_cast<std::uint64_t>(std::countr_zero(r));
            const detail::timer_link& head =
                heads_[level * slots + static_cast<unsigned>(block & (slots - 1))];
            for (const detail::timer_link* l = head.next; l != &head; l = l->next) {
                best = std::min(best, std::max(static_cast<const timer*>(l)->tick_, current_));
            }
        }
        return from_ns(best << shift_);
    }

private:
    static constexpr std::uint16_t in_flight = 0xffff;

    [[nodiscard]] std::uint64_t mask() const noexcept { return (std::uint64_t{1} << shift_) - 1; }

    static timer& as_timer(detail::timer_link* l) noexcept { return *static_cast<timer*>(l); }

    static void unlink_node(timer& t) noexcept {
        t.prev->next = t.next;
        t.next->prev = t.prev;
        t.next = t.prev = nullptr;
    }

    void unlink(timer& t) noexcept {
        const std::uint16_t s = t.slot_;
        unlink_node(t);
        if (s != in_flight && heads_[s].next == &heads_[s]) {
            occupied_[s >> level_bits] &= ~(std::uint64_t{1} << (s & (slots - 1)));
        }
    }

    // Puts an unlinked timer on the list its deadline selects relative to current_: level k
    // holds deadlines 64^k .. 64^(k+1)-1 ticks ahead, in the slot of their 64^k-tick block.
    void place(timer& t) noexcept {
        std::uint64_t delta = t.tick_ > current_ ? t.tick_ - current_ : 0;
        std::uint64_t at = t.tick_ > current_ ? t.tick_ : current_; // overdue: the next tick
        if (delta >= range_ticks) {
            delta = range_ticks - 1; // beyond the range: the farthest top-level block
            at = current_ + delta;
        }
        const unsigned level =
            delta == 0 ? 0U : static_cast<unsigned>(std::bit_width(delta) - 1) / level_bits;
        const unsigned idx = static_cast<unsigned>((at >> (level * level_bits)) & (slots - 1));
        const auto s = static_cast<std::uint16_t>(level * slots + idx);
        detail::timer_link& head = heads_[s];
        t.slot_ = s;
        t.next = &head;
        t.prev = head.prev;
        head.prev->next = &t;
        head.prev = &t;
        occupied_[level] |= std::uint64_t{1} << idx;
    }

    // At tick `now`, the coarse slots whose block starts at `now` move down. Top level first;
    // either order works because a cascaded timer always lands in a finer level.
    void cascade_at(std::uint64_t now) noexcept {
        if ((now & (slots - 1)) != 0) {
            return;
        }
        for (unsigned level = levels - 1; level >= 1; --level) {
            const unsigned sh = level * level_bits;
            if ((now & ((std::uint64_t{1} << sh) - 1)) != 0) {
                continue;
            }
            const unsigned idx = static_cast<unsigned>((now >> sh) & (slots - 1));
            if ((occupied_[level] & (std::uint64_t{1} << idx)) == 0) {
                continue;
            }
            detail::timer_link& head = heads_[level * slots + idx];
            detail::timer_link* l = head.next;
            head.next = head.prev = &head;
            occupied_[level] &= ~(std::uint64_t{1} << idx);
            while (l != &head) {
                timer& t = as_timer(l);
                l = l->next;
                ++stats_.cascaded;
                place(t);
            }
        }
    }

    // The first tick >= from at which something happens: a level-0 slot to fire, or a coarse
    // slot whose block starts (it must be cascaded then).
    [[nodiscard]] std::uint64_t next_event_tick(std::uint64_t from) const noexcept {
        std::uint64_t best = UINT64_MAX;
        if (occupied_[0] != 0) {
            const auto r = std::rotr(occupied_[0], static_cast<int>(from & (slots - 1)));
            best = from + static_cast<std::uint64_t>(std::countr_zero(r));
        }
        for (unsigned level = 1; level < levels; ++level) {
            if (occupied_[level] == 0) {
                continue;
            }
            const unsigned sh = level * level_bits;
            const std::uint64_t first = (from + ((std::uint64_t{1} << sh) - 1)) >> sh;
            const auto r = std::rotr(occupied_[level], static_cast<int>(first & (slots - 1)));
            const std::uint64_t block = first + static_cast<std::uint64_t>(std::countr_zero(r));
            best = std::min(best, block << sh);
        }
        return best;
    }

    // Nothing fires at current_ (its cascades are done): jump to the next event or past target.
    void skip_to(std::uint64_t target) noexcept {
        const std::uint64_t next = next_event_tick(current_ + 1);
        current_ = std::max(current_ + 1, std::min(next, target + 1));
    }

    unsigned shift_ = 10;
    std::uint64_t current_ = 0; ///< the next tick expire() will process
    std::size_t size_ = 0;
    std::array<std::uint64_t, levels> occupied_{};
    std::array<detail::timer_link, levels * slots> heads_{};
    timer_wheel_stats stats_{};
};

inline timer::~timer() {
    if (wheel_ != nullptr) {
        wheel_->cancel(*this);
    }
}

} // namespace splitnet::coalesce
