// SPDX-License-Identifier: MIT
// splitnet/ring/split_ring.hpp: the split request/response ring of Xen's I/O channel, as typed
// front and back halves over one shared area. With xen_layout the shared bytes are exactly
// those of public/io/ring.h's DEFINE_RING_TYPES, so a back end built on back_ring can serve a
// real Xen front end (tests/ring/xen_compat_test.cpp drives one end with Xen's own macros).
//
// Protocol (ring.h): one array of slots, each a union of a request and a response. The front end
// writes requests at req_prod and publishes req_prod; the back end consumes them, writes each
// response into the slot of a request it consumed, and publishes rsp_prod. Indices are
// free-running 32-bit counters masked by the (power-of-two) slot count. There is no flow
// control beyond "at most size() requests outstanding", which front_ring enforces.
//
// Ordering edges (named in the code):
//   R1/A1  a producer's slot writes happen before its index store (release, R1); the consumer
//          loads the index with acquire (A1) before it copies slots.
//   F1/F2  notification: the producer stores its index, then a full fence (F1), then loads the
//          peer's event index; the consumer stores its event index, then a full fence (F2), then
//          reloads the producer index. This is a Dekker pair: at least one side sees the other's
//          store, so either the producer notifies or the consumer finds the work (no lost wakeup).
//
// Event index: the consumer asks to be woken when the producer moves past `event - 1`
// (event = cons + 1: "wake me on the next message"; cons + k batches k messages). The producer
// notifies iff publishing (old, new] crossed the event. final_check_for_*(k) arms it.
//
// Hostile peer: each half reads the peer's producer index once per batch (poll_*), checks it
// against what is possible (at most size() slots of work, never backwards), and copies slots out
// of shared memory before anything looks at them (no double fetch). A violation marks the half
// broken with a fault that says what was seen; a broken half does nothing more. The back end
// never writes a response past the requests it consumed. Shared memory is only ever touched
// through std::atomic_ref (detail/shared_access.hpp).
//
// Threading: each half is used by one thread at a time (its owner); the two halves may live in
// different processes. Stats are plain counters owned by that thread.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <splitnet/config.hpp>
#include <splitnet/detail/shared_access.hpp>
#include <splitnet/ring/ring_layout.hpp>

namespace splitnet::ring {

using ring_idx = std::uint32_t;

enum class ring_fault_kind : std::uint8_t {
    none = 0,
    producer_overrun,   ///< the peer published more slots than the ring can hold for us
    producer_backwards, ///< the peer's producer index went back behind what we consumed
};

/// What a half saw when it stopped trusting its peer.
struct ring_fault {
    ring_fault_kind kind = ring_fault_kind::none;
    ring_idx seen_prod = 0; ///< the peer's producer index as read
    ring_idx cons = 0;      ///< our consumer index at that moment
    ring_idx limit = 0;     ///< the most work the peer could legitimately have published

    [[nodiscard]] std::string describe() const {
        switch (kind) {
        case ring_fault_kind::none:
            return "ring healthy";
        case ring_fault_kind::producer_overrun:
            return "peer producer index " + std::to_string(seen_prod) + " is " +
                   std::to_string(seen_prod - cons) + " slots ahead of consumer index " +
                   std::to_string(cons) + ", more than the " + std::to_string(limit) +
                   " it may have outstanding";
        case ring_fault_kind::producer_backwards:
            return "peer producer index " + std::to_string(seen_prod) +
                   " moved back behind consumer index " + std::to_string(cons);
        }
        return "unknown ring fault";
    }
};

/// Per-half counters (owned by the half's thread).
struct ring_stats {
    std::uint64_t produced = 0;          ///< slots written and published to the peer
    std::uint64_t consumed = 0;          ///< slots copied out and consumed
    std::uint64_t publications = 0;      ///< push_* calls that published at least one slot
    std::uint64_t notify_needed = 0;     ///< publications that crossed the peer's event index
    std::uint64_t notify_suppressed = 0; ///< publications the event index made silent
    std::uint64_t rearms = 0;            ///< final checks that found no work and armed the event
};

namespace detail {

/// ring.h's RING_PUSH_*_AND_CHECK_NOTIFY test: publishing (old, new] crossed `event`.
/// Equals "event lies in (old, new]" modulo 2^32.
[[nodiscard]] constexpr bool need_notify(ring_idx new_prod, ring_idx old_prod,
                                         ring_idx event) noexcept {
    return static_cast<ring_idx>(new_prod - event) < static_cast<ring_idx>(new_prod - old_prod);
}

/// ring.h's __RD32: the largest power of two <= n (0 for 0).
[[nodiscard]] constexpr std::uint32_t round_down_pow2(std::uint64_t n) noexcept {
    if (n == 0) {
        return 0;
    }
    const std::uint64_t capped = n > 0x80000000ULL ? 0x80000000ULL : n;
    return static_cast<std::uint32_t>(std::bit_floor(capped));
}

} // namespace detail

/// A view of the shared area of a split ring: its indices and slots. Both halves hold one.
template <class Req, class Rsp, ring_layout Layout = xen_layout>
class shared_ring {
    static_assert(std::is_trivially_copyable_v<Req> && std::is_trivially_copyable_v<Rsp>,
                  "ring slots live in shared memory: requests and responses must be plain data");
    static_assert(std::is_standard_layout_v<Req> && std::is_standard_layout_v<Rsp>);

public:
    union slot {
        Req req;
        Rsp rsp;
    };
    static constexpr std::size_t slot_align = alignof(slot);

    /// Slots a shared area of `bytes` holds (ring.h's __CONST_RING_SIZE: rounded down to a power
    /// of two).
    [[nodiscard]] static constexpr std::uint32_t entries_for(std::size_t bytes) noexcept {
        return bytes < Layout::header_bytes
                   ? 0
                   : detail::round_down_pow2((bytes - Layout::header_bytes) / sizeof(slot));
    }
    /// Bytes needed for `entries` slots.
    [[nodiscard]] static constexpr std::size_t bytes_for(std::uint32_t entries) noexcept {
        return Layout::header_bytes + std::size_t{entries} * sizeof(slot);
    }

    /// Views `mem` (not owned). Throws std::invalid_argument if it holds less than two slots or is
    /// not aligned for the indices and slots (share whole pages and this never happens).
    explicit shared_ring(std::span<std::byte> mem)
        : base_(mem.data()), size_(entries_for(mem.size())) {
        if (size_ < 2) {
            SPLITNET_THROW(std::invalid_argument(
                "split ring: a shared area of " + std::to_string(mem.size()) +
                " bytes holds fewer than 2 slots of " + std::to_string(sizeof(slot)) +
                " bytes after the " + std::to_string(Layout::header_bytes) + "-byte header"));
        }
        if (reinterpret_cast<std::uintptr_t>(base_) % 64 != 0) {
            SPLITNET_THROW(std::invalid_argument(
                "split ring: the shared area must be 64-byte aligned (use a page)"));
        }
    }

    [[nodiscard]] std::uint32_t size() const noexcept { return size_; }
    [[nodiscard]] std::byte* data() const noexcept { return base_; }

    [[nodiscard]] std::uint32_t& index(std::size_t offset) const noexcept {
        return *reinterpret_cast<std::uint32_t*>(base_ + offset);
    }
    [[nodiscard]] slot& at(ring_idx i) const noexcept {
        return reinterpret_cast<slot*>(base_ + Layout::header_bytes)[i & (size_ - 1)];
    }

    /// SHARED_RING_INIT: producers at `start`, events at start + 1 ("wake me on the next
    /// message"), the rest of the header zero. Only the front end initialises.
    void initialise(ring_idx start = 0) const noexcept {
        for (std::size_t off = 0; off < Layout::header_bytes; off += 4) {
            splitnet::detail::store_relaxed(index(off), 0);
        }
        splitnet::detail::store_relaxed(index(Layout::req_prod), start);
        splitnet::detail::store_relaxed(index(Layout::rsp_prod), start);
        splitnet::detail::store_relaxed(index(Layout::req_event), start + 1);
        splitnet::detail::store_release(index(Layout::rsp_event), start + 1);
    }

private:
    std::byte* base_;
    std::uint32_t size_;
};

namespace detail {

/// What both halves share: the view, the fault record, the counters, and the two protocol steps
/// each half performs on its own producer index (publish) and on its peer's (accept, arm).
template <class Shared>
class ring_end {
public:
    [[nodiscard]] std::uint32_t size() const noexcept { return ring_.size(); }
    [[nodiscard]] bool broken() const noexcept { return fault_.kind != ring_fault_kind::none; }
    [[nodiscard]] const ring_fault& fault() const noexcept { return fault_; }
    [[nodiscard]] const ring_stats& stats() const noexcept { return stats_; }

protected:
    explicit ring_end(std::span<std::byte> mem) : ring_(mem) {}

    /// Publishes our producer index `pvt` (previously published: `pub`) and reports whether the
    /// peer's event index asked for a notification (RING_PUSH_*_AND_CHECK_NOTIFY).
    bool publish(ring_idx& pub, ring_idx pvt, std::size_t prod_off,
                 std::size_t event_off) noexcept {
        const ring_idx old = pub;
        if (old == pvt || broken()) {
            return false;
        }
        splitnet::detail::store_release(ring_.index(prod_off), pvt); // R1, pairs with the peer's A1
        splitnet::detail::full_fence();                              // F1, pairs with the peer's F2
        const ring_idx event = splitnet::detail::load_relaxed(ring_.index(event_off));
        pub = pvt;
        stats_.produced += pvt - old;
        ++stats_.publications;
        const bool notify = need_notify(pvt, old, event);
        ++(notify ? stats_.notify_needed : stats_.notify_suppressed);
        return notify;
    }

    /// Reads the peer's producer index (A1) and accepts it into `seen` if it is possible: at most
    /// `limit` slots past our consumer index `cons`, and never behind what we saw before.
    /// Otherwise records the fault. Returns the slots ready to consume.
    std::uint32_t poll_peer(std::size_t prod_off, ring_idx cons, std::uint32_t limit,
                            ring_idx& seen) noexcept {
        if (broken()) {
            return 0;
        }
        const ring_idx prod =
            splitnet::detail::load_acquire(ring_.index(prod_off)); // A1, pairs with the peer's R1
        const std::uint32_t ahead = prod - cons;
        const std::uint32_t known = seen - cons;
        if (SPLITNET_LIKELY(ahead <= limit && ahead >= known)) {
            seen = prod;
            return ahead;
        }
        fault_ = {ahead > limit && ahead <= 0x80000000U ? ring_fault_kind::producer_overrun
                                                        : ring_fault_kind::producer_backwards,
                  prod, cons, limit};
        return 0;
    }

    /// RING_FINAL_CHECK_FOR_*: if `poll` finds nothing, write our event index so the peer
    /// notifies after `batch` more slots, then poll once more (F2 closes the lost-wakeup window).
    template <class Poll>
    bool final_check(std::uint32_t batch, ring_idx cons, std::size_t event_off,
                     Poll poll) noexcept {
        if (poll() != 0) {
            return true;
        }
        if (broken()) {
            return false;
        }
        splitnet::detail::store_relaxed(ring_.index(event_off), cons + (batch == 0 ? 1 : batch));
        splitnet::detail::full_fence(); // F2, pairs with the peer's F1
        ++stats_.rearms;
        return poll() != 0;
    }

    /// Writes up to `room` of `in` into our half (`Half`: &slot::req or &slot::rsp) of the slots
    /// from `prod` on, advancing it; returns how many. Nothing when broken.
    template <auto Half, class T>
    std::size_t write_slots(ring_idx& prod, std::uint32_t room, std::span<const T> in) noexcept {
        if (broken()) {
            return 0;
        }
        const std::size_t n = in.size() < room ? in.size() : room;
        for (std::size_t i = 0; i < n; ++i) {
            splitnet::detail::copy_to_shared<Shared::slot_align>(
                ring_.at(prod + static_cast<ring_idx>(i)).*Half, in[i]);
        }
        prod += static_cast<ring_idx>(n);
        return n;
    }

    /// Copies up to out.size() of the slots accepted by poll_peer (from `cons` to `seen`) out of
    /// the peer's half of shared memory, without consuming them. A broken ring gives nothing,
    /// not even slots accepted before the poll that found the fault.
    template <auto Half, class T>
    std::size_t read_slots(ring_idx cons, ring_idx seen, std::span<T> out) const noexcept {
        if (broken()) {
            return 0;
        }
        const std::uint32_t avail = seen - cons;
        const std::size_t n = out.size() < avail ? out.size() : avail;
        for (std::size_t i = 0; i < n; ++i) {
            splitnet::detail::copy_from_shared<Shared::slot_align>(
                out[i], ring_.at(cons + static_cast<ring_idx>(i)).*Half);
        }
        return n;
    }

    /// Consumes n slots read with read_slots (clamped to what was accepted).
    void consume_slots(ring_idx& cons, ring_idx seen, std::uint32_t n) noexcept {
        const std::uint32_t avail = seen - cons;
        n = n < avail ? n : avail;
        cons += n;
        stats_.consumed += n;
    }

    Shared ring_;
    ring_fault fault_{};
    ring_stats stats_{};
};

} // namespace detail

/// The front end (requester, the guest's side): produces requests, consumes responses.
template <class Req, class Rsp, ring_layout Layout = xen_layout>
class front_ring : public detail::ring_end<shared_ring<Req, Rsp, Layout>> {
    using base = detail::ring_end<shared_ring<Req, Rsp, Layout>>;
    using base::ring_;
    using base::stats_;

public:
    using request_type = Req;
    using response_type = Rsp;
    using layout_type = Layout;
    using shared_type = shared_ring<Req, Rsp, Layout>;
    using base::broken;
    using base::size;

    /// Initialises `mem` as a new ring (indices at `start`) and attaches to it.
    explicit front_ring(std::span<std::byte> mem, ring_idx start = 0)
        : base(mem), req_prod_pvt_(start), req_prod_pub_(start), rsp_cons_(start),
          rsp_seen_(start) {
        ring_.initialise(start);
    }

    /// Requests written but not yet answered (published or not).
    [[nodiscard]] std::uint32_t outstanding() const noexcept { return req_prod_pvt_ - rsp_cons_; }
    [[nodiscard]] std::uint32_t free_requests() const noexcept { return size() - outstanding(); }
    [[nodiscard]] bool full() const noexcept { return free_requests() == 0; }
    [[nodiscard]] ring_idx req_prod_pvt() const noexcept { return req_prod_pvt_; }
    [[nodiscard]] ring_idx rsp_cons() const noexcept { return rsp_cons_; }

    /// Writes one request behind the private producer index (not yet visible to the back end).
    /// Returns false, writing nothing, when size() requests are outstanding or the ring is broken.
    [[nodiscard]] bool put_request(const Req& r) noexcept { return put_requests({&r, 1}) == 1; }

    /// Writes as many of `rs` as fit; returns how many.
    [[nodiscard]] std::size_t put_requests(std::span<const Req> rs) noexcept {
        return this->template write_slots<&shared_type::slot::req>(req_prod_pvt_, free_requests(),
                                                                   rs);
    }

    /// Publishes the requests written so far (RING_PUSH_REQUESTS_AND_CHECK_NOTIFY). Returns true
    /// when the back end asked to be woken: its req_event lies in the range just published.
    [[nodiscard]] bool push_requests() noexcept {
        return this->publish(req_prod_pub_, req_prod_pvt_, Layout::req_prod, Layout::req_event);
    }

    /// Reads the back end's response producer index once, checks it (responses answer only
    /// requests it has seen, RING_RESPONSE_PROD_OVERFLOW), and returns how many are ready.
    std::uint32_t poll_responses() noexcept {
        return this->poll_peer(Layout::rsp_prod, rsp_cons_, req_prod_pub_ - rsp_cons_, rsp_seen_);
    }

    /// Copies up to out.size() ready responses out of shared memory without consuming them (a
    /// decoder looks at a whole multi-slot packet first). Polls the producer index once.
    [[nodiscard]] std::size_t peek_responses(std::span<Rsp> out) noexcept {
        poll_responses();
        return this->template read_slots<&shared_type::slot::rsp>(rsp_cons_, rsp_seen_, out);
    }

    /// Consumes n responses previously copied with peek_responses (clamped to what is ready).
    void consume_responses(std::uint32_t n) noexcept {
        this->consume_slots(rsp_cons_, rsp_seen_, n);
    }

    /// Copies out and consumes up to out.size() responses.
    [[nodiscard]] std::size_t get_responses(std::span<Rsp> out) noexcept {
        const std::size_t n = peek_responses(out);
        consume_responses(static_cast<std::uint32_t>(n));
        return n;
    }

    [[nodiscard]] bool get_response(Rsp& out) noexcept { return get_responses({&out, 1}) == 1; }

    /// RING_FINAL_CHECK_FOR_RESPONSES: true if responses are waiting; otherwise arms rsp_event
    /// so the back end notifies after `batch` more responses, and checks once more.
    [[nodiscard]] bool final_check_for_responses(std::uint32_t batch = 1) noexcept {
        return this->final_check(batch, rsp_cons_, Layout::rsp_event,
                                 [this] { return poll_responses(); });
    }

private:
    ring_idx req_prod_pvt_;
    ring_idx req_prod_pub_;
    ring_idx rsp_cons_;
    ring_idx rsp_seen_;
};

/// The back end (responder, the driver domain's side): consumes requests, produces responses.
template <class Req, class Rsp, ring_layout Layout = xen_layout>
class back_ring : public detail::ring_end<shared_ring<Req, Rsp, Layout>> {
    using base = detail::ring_end<shared_ring<Req, Rsp, Layout>>;
    using base::ring_;
    using base::stats_;

public:
    using request_type = Req;
    using response_type = Rsp;
    using layout_type = Layout;
    using shared_type = shared_ring<Req, Rsp, Layout>;
    using base::broken;
    using base::size;

    /// Attaches to a ring the front end initialised, at its current state (BACK_RING_ATTACH at
    /// rsp_prod). A request producer index already out of range marks the ring broken at once.
    explicit back_ring(std::span<std::byte> mem) : base(mem) {
        const ring_idx rsp = splitnet::detail::load_acquire(ring_.index(Layout::rsp_prod));
        rsp_prod_pvt_ = rsp_prod_pub_ = req_cons_ = req_seen_ = rsp;
        poll_requests();
    }

    [[nodiscard]] ring_idx req_cons() const noexcept { return req_cons_; }
    [[nodiscard]] ring_idx rsp_prod_pvt() const noexcept { return rsp_prod_pvt_; }
    /// Requests consumed that still await their response.
    [[nodiscard]] std::uint32_t unanswered() const noexcept { return req_cons_ - rsp_prod_pvt_; }

    /// Reads the front end's request producer index once, checks it (RING_REQUEST_PROD_OVERFLOW:
    /// slots of unanswered requests are not free for new ones; never backwards), and returns how
    /// many requests are ready. 0 when broken.
    std::uint32_t poll_requests() noexcept {
        return this->poll_peer(Layout::req_prod, req_cons_, size() - unanswered(), req_seen_);
    }

    /// Copies up to out.size() ready requests out of shared memory without consuming them (a
    /// decoder looks at a whole multi-slot packet first). Polls the producer index once, so a
    /// packet whose slots were published in two steps is seen whole.
    [[nodiscard]] std::size_t peek_requests(std::span<Req> out) noexcept {
        poll_requests();
        return this->template read_slots<&shared_type::slot::req>(req_cons_, req_seen_, out);
    }

    /// Consumes n requests previously copied with peek_requests (clamped to what is ready).
    void consume_requests(std::uint32_t n) noexcept {
        this->consume_slots(req_cons_, req_seen_, n);
    }

    /// Copies out and consumes up to out.size() requests.
    [[nodiscard]] std::size_t get_requests(std::span<Req> out) noexcept {
        const std::size_t n = peek_requests(out);
        consume_requests(static_cast<std::uint32_t>(n));
        return n;
    }

    [[nodiscard]] bool get_request(Req& out) noexcept { return get_requests({&out, 1}) == 1; }

    /// Writes one response into the slot of the oldest unanswered request. Returns false, writing
    /// nothing, when no consumed request awaits a response (or the ring is broken).
    [[nodiscard]] bool put_response(const Rsp& r) noexcept { return put_responses({&r, 1}) == 1; }

    /// Writes as many of `rs` as there are unanswered requests; returns how many.
    [[nodiscard]] std::size_t put_responses(std::span<const Rsp> rs) noexcept {
        return this->template write_slots<&shared_type::slot::rsp>(rsp_prod_pvt_, unanswered(), rs);
    }

    /// Publishes the responses written so far; true when the front end must be notified.
    [[nodiscard]] bool push_responses() noexcept {
        return this->publish(rsp_prod_pub_, rsp_prod_pvt_, Layout::rsp_prod, Layout::rsp_event);
    }

    /// RING_FINAL_CHECK_FOR_REQUESTS: true if requests are waiting; otherwise arms req_event so
    /// the front end notifies after `batch` more requests, and checks once more.
    [[nodiscard]] bool final_check_for_requests(std::uint32_t batch = 1) noexcept {
        return this->final_check(batch, req_cons_, Layout::req_event,
                                 [this] { return poll_requests(); });
    }

    /// For a consumer that can use no fewer than `need` requests at once (a packet that spans
    /// `need` slots): true once `need` are waiting; otherwise arms req_event at the `need`-th,
    /// so the front end's notification comes when there is enough, and checks once more. (The
    /// plain check returns true for any request, and such a consumer would spin on too few.)
    [[nodiscard]] bool final_check_for_requests_until(std::uint32_t need) noexcept {
        return this->final_check(need, req_cons_, Layout::req_event,
                                 [this, need] { return poll_requests() >= need ? 1U : 0U; });
    }

private:
    ring_idx rsp_prod_pvt_ = 0;
    ring_idx rsp_prod_pub_ = 0;
    ring_idx req_cons_ = 0;
    ring_idx req_seen_ = 0;
};

} // namespace splitnet::ring
