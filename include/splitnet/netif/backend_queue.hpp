// SPDX-License-Identifier: MIT
// splitnet/netif/backend_queue.hpp: one queue of a netback: the TX and RX rings one front-end
// queue shares with the driver domain, seen from the driver domain as a port.
//
//   rx_burst(frames)  packets the guest sent (its TX ring): each request read once into a local
//                     copy and validated (tx_packet.hpp, Linux netback's rules), the data grant-
//                     copied into pool buffers, the requests answered.
//   tx_burst(frames)  packets for the guest: they wait in a bounded queue of rx_queue_len frames
//                     (Xen's txqlen; seed 003 raised it from 32 to 128 for 10 GbE). Any thread
//                     may call it; frames that do not fit are not taken and counted as drops.
//   deliver(now)      moves waiting frames into buffers the guest posted on its RX ring, in
//                     order, packed into whole pages (Linux netback's layout), with the GSO
//                     extra-info when the guest negotiated GSO; or, with copy_side::frontend,
//                     grants the frames' buffers read-only and range-limited and lets the guest
//                     copy (the buffers come back when the guest reuses the ring slot). The
//                     guest is notified when the ring's event index asks for it, under the
//                     moderation policy (coalesce/moderation.hpp).
//
// What a guest that did not negotiate an offload gets: aggregates are segmented (gso.hpp) and
// partial checksums completed before delivery; a frame larger than a page for a guest without
// feature-sg is dropped and counted.
//
// A front end that breaks the protocol (a page-crossing slot, a packet over the fatal slot
// count, an invalid extra, a ring index out of range) breaks the queue: it does nothing more and
// fault() says why; the owning netback disconnects the front end. Bad grants fail their packet
// alone (rsp_error), as in Xen.
//
// Threading: tx_burst and broken() from any thread; everything else from the one worker serving
// the queue at a time (the pipeline hands a queue between workers with a happens-before edge),
// stop() included (a control thread calls it while no worker serves the queue).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include <splitnet/coalesce/clock.hpp>
#include <splitnet/coalesce/moderation.hpp>
#include <splitnet/coalesce/no_moderation.hpp>
#include <splitnet/detail/shared_access.hpp>
#include <splitnet/event/eventfd_channel.hpp>
#include <splitnet/grant/grant_copy.hpp>
#include <splitnet/grant/grant_table.hpp>
#include <splitnet/netif/backend_memory.hpp>
#include <splitnet/netif/connection.hpp>
#include <splitnet/netif/features.hpp>
#include <splitnet/netif/rings.hpp>
#include <splitnet/netif/rx_packet.hpp>
#include <splitnet/netif/tx_packet.hpp>
#include <splitnet/nic/port.hpp>
#include <splitnet/offload/gso.hpp>
#include <splitnet/packet/buffer_pool.hpp>
#include <splitnet/packet/checksum_offload.hpp>
#include <splitnet/packet/detail/mpmc_ring.hpp>
#include <splitnet/packet/parser.hpp>

namespace splitnet::netif {

struct backend_config {
    std::uint32_t rx_queue_len = 128; ///< frames waiting for the guest (txqlen)
    std::uint32_t burst = 64;         ///< packets per rx_burst / deliver step
    tx_limits limits{};               ///< slot limits for guest TX packets
};

struct backend_queue_stats {
    // from the guest (its TX ring)
    std::uint64_t tx_packets = 0;
    std::uint64_t tx_bytes = 0;
    std::uint64_t tx_gso = 0;           ///< of them, GSO packets
    std::uint64_t tx_dropped = 0;       ///< answered rsp_error: the packet broke a per-packet rule
    std::uint64_t tx_copy_failed = 0;   ///< answered rsp_error: a grant did not allow the copy
    std::uint64_t tx_no_buffers = 0;    ///< steps stopped short because the pool was empty
    std::uint64_t tx_notifications = 0; ///< TX responses the guest was notified of
    // to the guest (its RX ring)
    std::uint64_t rx_packets = 0;
    std::uint64_t rx_bytes = 0;
    std::uint64_t rx_segments = 0;    ///< wire packets delivered (an aggregate counts its segments)
    std::uint64_t rx_slots = 0;       ///< ring slots used (data and extras)
    std::uint64_t rx_segmented = 0;   ///< aggregates split for a guest without GSO
    std::uint64_t rx_dropped = 0;     ///< frames the guest cannot take (no sg, too large)
    std::uint64_t rx_copy_failed = 0; ///< packets a grant did not allow (the guest revoked)
    std::uint64_t rx_no_requests = 0; ///< deliver steps cut short: too few slots posted
    std::uint64_t rx_notifications = 0;    ///< RX notifications sent
    std::uint64_t rx_grants_exhausted = 0; ///< frontend copy: steps stopped for want of grants
};

template <coalesce::moderation_policy Moderation = coalesce::moderation::none>
class backend_queue {
public:
    /// What a netback hands a queue: the mapped ring pages, its doorbells (by event_dir), the
    /// guest's memory for copies, and, for frontend copy, the driver domain's memory and a
    /// reference range to grant from.
    struct resources {
        std::span<std::byte> tx_ring_page;
        std::span<std::byte> rx_ring_page;
        std::span<std::byte> rx_grants_page; ///< frontend copy only
        std::array<event::eventfd_channel*, 4> events{};
        const grant::domain_registry* guest_domains = nullptr; ///< holds the guest's domain
        grant::domain_id self = 0;
        grant::domain_id guest = 1;
        std::uint32_t activity_slot = 0; ///< this queue's copier slot in the guest's region
        packet::buffer_pool* pool = nullptr;
        backend_memory* memory = nullptr; ///< frontend copy only
        grant::grant_ref ref_range = 0;   ///< frontend copy only: first reference of our range
        negotiated features{};
        std::uint16_t port_id = 0; ///< stamped on frames from the guest
        std::uint32_t mtu = 1500;  ///< the guest's MTU: bounds its GSO segment size
    };

    backend_queue(const resources& r, const backend_config& cfg, Moderation moderation = {})
        : res_(r), cfg_(check(cfg)), tx_ring_(r.tx_ring_page), rx_ring_(r.rx_ring_page),
          copier_(*r.guest_domains, r.self, r.activity_slot), pool_(*r.pool),
          segment_partial_(*r.pool, false), segment_full_(*r.pool, true),
          waiting_(cfg.rx_queue_len), moderation_(std::move(moderation)),
          tx_reqs_(std::make_unique<tx_request[]>(tx_ring_.size())),
          tx_rsps_(std::make_unique<tx_response[]>(tx_ring_.size())),
          rx_reqs_(std::make_unique<rx_request[]>(rx_ring_.size())),
          staged_(std::make_unique<packet::frame[]>(staged_capacity())),
          ops_(std::make_unique<grant::grant_copy_op[]>(max_ops)),
          bufs_(std::make_unique<packet::frame[]>(max_tx_buffers)),
          tx_work_(std::make_unique<tx_work[]>(256)) {
        if (r.features.rx_copy == copy_side::frontend) {
            grants_.emplace(r.memory->domain(), r.ref_range,
                            backend_memory::ref_pages_for(rx_ring_.size()) *
                                static_cast<std::uint32_t>(grant::entries_per_page));
            inflight_ = std::make_unique<inflight_slot[]>(rx_ring_.size());
        }
        note_ring_faults();
    }
    backend_queue(const backend_queue&) = delete;
    backend_queue& operator=(const backend_queue&) = delete;
    ~backend_queue() { release_all(); }

    // ---- port ----------------------------------------------------------------------------

    [[nodiscard]] packet::buffer_pool& pool() noexcept { return pool_; }
    [[nodiscard]] const nic::port_stats& stats() const noexcept { return port_stats_; }
    [[nodiscard]] const backend_queue_stats& queue_stats() const noexcept { return stats_; }
    /// The guest takes aggregates on RX when it negotiated GSO; segments we cannot deliver whole
    /// are split here, so the pipeline may hand over anything.
    [[nodiscard]] nic::port_caps caps() const noexcept {
        const negotiated& f = res_.features;
        return {true, true, true, f.tx_gso_tcpv4 || f.tx_gso_tcpv6, 65535};
    }

    /// Packets the guest sent: at most out.size() and the configured burst. The burst is
    /// handled in four passes: decode and check every packet, take all the buffers they need
    /// from the pool at once, grant-copy every packet's bytes in one batch (one activity
    /// publication for the lot), then answer the requests in ring order.
    [[nodiscard]] std::size_t rx_burst(std::span<packet::frame> out) noexcept {
        if (broken()) {
            return 0;
        }
        const std::size_t avail = tx_ring_.peek_requests({tx_reqs_.get(), tx_ring_.size()});
        if (tx_ring_.broken()) {
            return fail(tx_ring_.fault().describe());
        }
        const std::size_t max_packets = std::min<std::size_t>(out.size(), cfg_.burst);
        const std::size_t npk = tx_decode(avail, max_packets);
        if (npk == 0) {
            return 0;
        }
        tx_copy(npk);
        return tx_answer(npk, out);
    }

    /// Frames for the guest; any thread. Returns how many were queued; the rest stay with the
    /// caller and count as drops (the pipeline frees them).
    [[nodiscard]] std::size_t tx_burst(std::span<packet::frame> in) noexcept {
        if (broken()) {
            return 0;
        }
        const std::uint32_t n =
            waiting_.enqueue_burst(in.data(), static_cast<std::uint32_t>(in.size()));
        if (n < in.size()) {
            queue_drops_.fetch_add(in.size() - n, std::memory_order_relaxed);
        }
        return n;
    }

    // ---- the worker's side -----------------------------------------------------------------

    /// Moves waiting frames to the guest; returns the packets delivered.
    std::size_t deliver(coalesce::time_point now) noexcept {
        if (broken()) {
            return 0;
        }
        if (rx_ring_.poll_requests() != 0) { // nothing is taken off the queue without buffers
            stage();
        }
        std::size_t delivered = 0;
        if (nstaged_ != 0) {
            delivered = res_.features.rx_copy == copy_side::backend ? deliver_by_copy()
                                                                    : deliver_by_grant();
        }
        if (grants_blocked_) {
            grants_retry_ = now + grants_retry_interval;
        }
        if (rx_ring_.broken()) {
            fail(rx_ring_.fault().describe());
            return delivered;
        }
        if (delivered != 0) {
            const bool need = rx_ring_.push_responses();
            if (need || notify_pending_) {
                notify_pending_ = true;
                if (moderation_.on_events(static_cast<std::uint32_t>(delivered), now)) {
                    fire(now);
                }
            }
        }
        return delivered;
    }

    /// The moderation timer: notifies the guest when a delayed notification is due.
    void on_timer(coalesce::time_point now) noexcept {
        if (notify_pending_ && moderation_.should_fire(now)) {
            fire(now);
        }
    }
    /// When on_timer should run next (coalesce::never when nothing is pending).
    [[nodiscard]] coalesce::time_point next_deadline() const noexcept {
        const coalesce::time_point n = notify_pending_ ? moderation_.deadline() : coalesce::never;
        return grants_blocked_ && grants_retry_ < n ? grants_retry_ : n;
    }

    /// Before the worker sleeps: arms the rings' event indices so the guest's next request
    /// notifies us, and reports whether work is already waiting (then do not sleep).
    [[nodiscard]] bool prepare_to_sleep() noexcept {
        if (broken()) {
            return false;
        }
        bool work = tx_ring_.final_check_for_requests(1);
        // Out of grants, slots are no help: the retry timer (next_deadline) brings us back.
        if (has_rx_backlog() && !grants_blocked_) {
            // Woken when the guest has posted the slots the next frame needs, not before.
            work = rx_ring_.final_check_for_requests_until(std::max(1U, rx_slots_wanted_)) || work;
        }
        return note_ring_faults() ? false : work;
    }

    /// Frames waiting for the guest (queued or staged).
    [[nodiscard]] bool has_rx_backlog() const noexcept {
        return nstaged_ != 0 || carry_pos_ != ncarry_ || waiting_.size() != 0;
    }
    /// Frames waiting for the guest: in the bounded queue, plus at most two bursts being
    /// prepared for delivery (taken off the queue only when the guest has posted buffers).
    [[nodiscard]] std::size_t queued() const noexcept {
        return waiting_.size() + (ncarry_ - carry_pos_) + nstaged_;
    }
    [[nodiscard]] std::uint64_t queue_drops() const noexcept {
        return queue_drops_.load(std::memory_order_relaxed);
    }

    /// Descriptors the worker waits on: the guest's TX and RX doorbells (the same fd without
    /// split event channels).
    [[nodiscard]] int tx_kick_fd() const noexcept {
        return res_.events[event_dir::tx_to_back]->fd();
    }
    [[nodiscard]] int rx_kick_fd() const noexcept {
        return res_.events[event_dir::rx_to_back]->fd();
    }
    /// Clears pending kicks (after a wake-up; the rings are polled next).
    void consume_kicks() noexcept {
        (void)res_.events[event_dir::tx_to_back]->try_consume();
        if (res_.events[event_dir::rx_to_back] != res_.events[event_dir::tx_to_back]) {
            (void)res_.events[event_dir::rx_to_back]->try_consume();
        }
    }

    /// True once the queue stopped (any thread may ask: a control thread watching for faults).
    [[nodiscard]] bool broken() const noexcept { return broken_.load(std::memory_order_acquire); }
    /// Why it stopped; read it after broken() said true (written once, before that flag).
    [[nodiscard]] const std::string& fault() const noexcept { return fault_; }
    /// Stops the queue (a disconnect): nothing more is read from or written to the rings.
    void stop(const std::string& why) { fail(why); }

    [[nodiscard]] const Moderation& moderation() const noexcept { return moderation_; }
    [[nodiscard]] const grant::grant_copy_stats& copy_stats() const noexcept {
        return copier_.stats();
    }
    [[nodiscard]] const ring::ring_stats& tx_ring_stats() const noexcept {
        return tx_ring_.stats();
    }
    [[nodiscard]] const ring::ring_stats& rx_ring_stats() const noexcept {
        return rx_ring_.stats();
    }
    [[nodiscard]] std::uint16_t port_id() const noexcept { return res_.port_id; }
    /// The port id stamped on frames from this guest (the pipeline's bridge port).
    void set_port_id(std::uint16_t p) noexcept { res_.port_id = p; }

    /// Returns every buffer the queue holds to the pool: frames waiting for the guest and, with
    /// frontend copy, buffers granted to it (their grants are ended). For teardown.
    void release_all() noexcept {
        packet::frame f;
        while (waiting_.dequeue_burst(&f, 1) == 1) {
            pool_.free(f);
        }
        pool_.free_burst({carry_ + carry_pos_, ncarry_ - carry_pos_});
        ncarry_ = carry_pos_ = 0;
        pool_.free_burst({staged_.get(), nstaged_});
        nstaged_ = 0;
        if (inflight_) {
            for (std::uint32_t s = 0; s < rx_ring_.size(); ++s) {
                recycle(s);
            }
            flush_recycled();
            grants_->reclaim();
        }
    }

private:
    static constexpr std::size_t max_ops = 1024;
    static constexpr std::size_t max_tx_buffers = 512; ///< pool buffers per rx_burst step
    static constexpr std::size_t max_segments = 64;    ///< segments of one aggregate we split
    static constexpr std::uint32_t page = page_bytes;
    static constexpr std::uint32_t tcp_ip_min_headers = 40; ///< IPv4 + TCP without options

    struct inflight_slot {
        grant::grant_ref ref = grant::invalid_ref;
        std::uint64_t buffer = packet::no_buffer; ///< freed when the slot is reused
    };

    static const backend_config& check(const backend_config& c) {
        if (c.rx_queue_len == 0 || c.burst == 0 || c.burst > 256) {
            SPLITNET_THROW(std::invalid_argument(
                "backend_queue: rx_queue_len must be at least 1 and burst 1..256"));
        }
        if (c.limits.max_slots == 0 || c.limits.max_slots > c.limits.fatal_slots ||
            c.limits.fatal_slots > max_tx_fragments) {
            SPLITNET_THROW(std::invalid_argument(
                "backend_queue: limits must satisfy 1 <= max_slots <= fatal_slots <= " +
                std::to_string(max_tx_fragments)));
        }
        return c;
    }
    [[nodiscard]] std::size_t staged_capacity() const noexcept {
        return std::size_t{cfg_.burst} + max_segments;
    }

    /// A ring half that stopped trusting the front end breaks the queue (true if one did).
    bool note_ring_faults() {
        if (tx_ring_.broken()) {
            fail(tx_ring_.fault().describe());
        } else if (rx_ring_.broken()) {
            fail(rx_ring_.fault().describe());
        }
        return broken();
    }

    std::size_t fail(const std::string& why) {
        if (!broken_.load(std::memory_order_relaxed)) {
            fault_ = why.empty() ? std::string("stopped") : why;
            broken_.store(true, std::memory_order_release);
        }
        return 0;
    }

    void fire(coalesce::time_point now) noexcept {
        res_.events[event_dir::rx_to_front]->notify();
        ++stats_.rx_notifications;
        moderation_.on_fired(now);
        notify_pending_ = false;
    }

    // ---- guest TX ------------------------------------------------------------------------

    /// A guest packet on its way through rx_burst.
    struct tx_work {
        tx_packet pkt;
        std::int16_t status = rsp_okay;
        std::uint32_t first_buf = 0; ///< index into bufs_
        std::uint32_t nbuf = 0;
        std::uint32_t first_op = 0; ///< index into ops_
        std::uint32_t nops = 0;
    };

    /// Pass 1 (and 2): decodes up to max_packets whole packets from the `avail` requests
    /// copied out, checks them, and takes the pool buffers the good ones need in one go.
    /// Returns how many packets to handle; a fatal packet breaks the queue (the packets before
    /// it are still handled).
    std::size_t tx_decode(std::size_t avail, std::size_t max_packets) noexcept {
        const std::uint32_t room = pool_.frame_size() - pool_.default_headroom();
        std::size_t pos = 0;
        std::size_t npk = 0;
        std::uint32_t nbuf = 0;
        std::uint32_t nops = 0;
        while (pos < avail && npk < max_packets) {
            tx_work& w = tx_work_[npk];
            const tx_decode_result r =
                decode_tx_packet({tx_reqs_.get() + pos, avail - pos}, w.pkt, cfg_.limits);
            if (r.verdict == tx_verdict::fatal || r.verdict == tx_verdict::incomplete) {
                // A published packet that does not end in what was published: Linux netback
                // treats it as fatal too (xenvif_count_requests).
                fail(std::string("guest TX: ") + std::string(to_string(r.fault)));
                break;
            }
            w.status = rsp_okay;
            w.nbuf = w.nops = 0;
            if (r.verdict == tx_verdict::drop || !tx_allowed(w.pkt)) {
                w.status = rsp_error;
                ++stats_.tx_dropped;
            } else {
                w.nbuf = (w.pkt.total_size + room - 1) / room;
                w.nops = w.pkt.nfrags + w.nbuf;
                if (nbuf + w.nbuf > max_tx_buffers || nops + w.nops > max_ops) {
                    break; // the next burst takes it
                }
                w.first_buf = nbuf;
                w.first_op = nops;
                nbuf += w.nbuf;
                nops += w.nops;
            }
            pos += w.pkt.requests;
            ++npk;
        }
        if (nbuf != 0) {
            const std::size_t got = pool_.alloc_burst({bufs_.get(), nbuf});
            if (got != nbuf) {
                // Keep the packets whose buffers all came; the rest wait for the next burst.
                ++stats_.tx_no_buffers;
                std::size_t keep = 0;
                std::uint32_t used = 0;
                for (; keep < npk; ++keep) {
                    const tx_work& w = tx_work_[keep];
                    if (w.nbuf != 0) {
                        if (w.first_buf + w.nbuf > got) {
                            break;
                        }
                        used = w.first_buf + w.nbuf;
                    }
                }
                pool_.free_burst({bufs_.get() + used, got - used});
                npk = keep;
            }
        }
        return npk;
    }

    /// Pass 3: plans every good packet's copies (fragments into its buffers, filled in order)
    /// and runs them as one batch.
    void tx_copy(std::size_t npk) noexcept {
        const std::uint32_t room = pool_.frame_size() - pool_.default_headroom();
        std::size_t nops = 0;
        for (std::size_t k = 0; k < npk; ++k) {
            tx_work& w = tx_work_[k];
            if (w.status != rsp_okay) {
                continue;
            }
            w.first_op = static_cast<std::uint32_t>(nops);
            std::uint32_t b = w.first_buf;
            std::uint32_t in_buf = 0;
            for (std::uint32_t i = 0; i < w.pkt.nfrags; ++i) {
                const tx_fragment& fr = w.pkt.frags[i];
                std::uint32_t done = 0;
                while (done < fr.size) {
                    const std::uint32_t n = std::min(fr.size - done, room - in_buf);
                    grant::grant_copy_op& op = ops_[nops++];
                    op.source = grant::copy_side::granted(
                        res_.guest, fr.gref, static_cast<std::uint16_t>(fr.offset + done));
                    op.dest = grant::copy_side::buffer(bufs_[b].data + in_buf);
                    op.len = static_cast<std::uint16_t>(n);
                    done += n;
                    in_buf += n;
                    if (in_buf == room) {
                        bufs_[b++].data_len = room;
                        in_buf = 0;
                    }
                }
            }
            if (in_buf != 0) {
                bufs_[b].data_len = in_buf;
            }
            w.nops = static_cast<std::uint32_t>(nops) - w.first_op;
        }
        if (nops != 0) {
            copier_.copy({ops_.get(), nops});
        }
    }

    /// Pass 4: in ring order, turns each copied packet into a frame (or frees it when a grant
    /// failed) and answers every request.
    std::size_t tx_answer(std::size_t npk, std::span<packet::frame> out) noexcept {
        std::size_t nout = 0;
        for (std::size_t k = 0; k < npk; ++k) {
            tx_work& w = tx_work_[k];
            if (w.status == rsp_okay) {
                bool copied = true;
                for (std::uint32_t i = 0; i < w.nops; ++i) {
                    copied = copied && ops_[w.first_op + i].status == grant::grant_status::okay;
                }
                packet::frame& f = out[nout];
                f = bufs_[w.first_buf];
                chain(f, w);
                if (!copied) {
                    pool_.free(f);
                    w.status = rsp_error;
                    ++stats_.tx_copy_failed;
                } else if (!finish_tx_frame(w.pkt, f)) {
                    pool_.free(f);
                    w.status = rsp_error;
                    ++stats_.tx_dropped;
                } else {
                    ++nout;
                    ++stats_.tx_packets;
                    stats_.tx_bytes += f.pkt_len;
                    ++port_stats_.rx_packets;
                    port_stats_.rx_bytes += f.pkt_len;
                }
            }
            const std::size_t n =
                make_tx_responses(w.pkt, w.status, {tx_rsps_.get(), w.pkt.requests});
            tx_ring_.consume_requests(w.pkt.requests);
            (void)tx_ring_.put_responses({tx_rsps_.get(), n});
        }
        if (tx_ring_.push_responses()) {
            res_.events[event_dir::tx_to_front]->notify();
            ++stats_.tx_notifications;
        }
        return nout;
    }

    /// Links a packet's buffers (bufs_[first_buf ...]) behind `head` (a copy of the first):
    /// the other descriptors live in the pool's chain slots.
    void chain(packet::frame& head, const tx_work& w) noexcept {
        head.pkt_len = w.pkt.total_size;
        head.nb_segs = static_cast<std::uint16_t>(w.nbuf);
        head.port = res_.port_id;
        packet::frame* tail = &head;
        for (std::uint32_t i = 1; i < w.nbuf; ++i) {
            const packet::frame& b = bufs_[w.first_buf + i];
            packet::frame& slot = pool_.chain_slot(b.buffer);
            slot = b;
            slot.pkt_len = slot.data_len;
            tail->next = &slot;
            tail = &slot;
        }
        tail->next = nullptr;
    }

    /// What the negotiation allows on the TX ring.
    [[nodiscard]] bool tx_allowed(const tx_packet& p) const noexcept {
        const negotiated& f = res_.features;
        // Multicast control (feature-multicast-control) is not offered, and the decoder lets a
        // packet with a multicast extra through at any size, 0 included: it is not a frame.
        if (p.has_mcast_add || p.has_mcast_del || p.total_size < ethernet_header_bytes) {
            return false;
        }
        if (p.nfrags > 1 && !f.tx_sg) {
            return false;
        }
        if (p.has_gso) {
            // A segment must fit the guest's MTU: an MSS a guest names freely would otherwise
            // make segments no buffer or link can carry.
            if (std::uint32_t{p.gso.size} + tcp_ip_min_headers > res_.mtu) {
                return false;
            }
            return p.gso.type == gso_type_tcpv4 ? f.tx_gso_tcpv4 : f.tx_gso_tcpv6;
        }
        return true;
    }

    /// Offload metadata from the first request's flags and the GSO extra, completed from the
    /// headers in our own copy (never from guest memory).
    bool finish_tx_frame(const tx_packet& p, packet::frame& f) noexcept {
        packet::xen_offload x;
        x.csum_blank = (p.flags & tx_flag::csum_blank) != 0;
        x.data_validated = (p.flags & tx_flag::data_validated) != 0;
        if (p.has_gso) {
            x.gso_type = p.gso.type;
            x.gso_size = p.gso.size;
            ++stats_.tx_gso;
        }
        f.offload = {};
        if (packet::from_xen_offload(x, f.offload) != packet::offload_error::none) {
            return false;
        }
        if (f.offload.csum != packet::csum_state::partial && !f.offload.is_gso()) {
            return true;
        }
        const packet::parsed_packet hp = packet::parse(f.bytes(), f.pkt_len);
        return packet::complete_offload_metadata(hp, f.offload);
    }

    // ---- guest RX ------------------------------------------------------------------------

    /// Refills the staging area from the waiting queue, making each frame deliverable. Frames
    /// are taken from the queue in bursts into a carry area and prepared one by one while the
    /// staging area is below a burst, which leaves room for a whole aggregate's segments.
    void stage() noexcept {
        while (nstaged_ < cfg_.burst) {
            if (carry_pos_ == ncarry_) {
                ncarry_ =
                    waiting_.dequeue_burst(carry_, static_cast<std::uint32_t>(std::min<std::size_t>(
                                                       std::size(carry_), cfg_.burst)));
                carry_pos_ = 0;
                if (ncarry_ == 0) {
                    return;
                }
            }
            prepare(carry_[carry_pos_++]);
        }
    }

    /// Appends `f` to the staged frames in a form the guest takes, or drops it (counted).
    void prepare(packet::frame& f) noexcept {
        const negotiated& g = res_.features;
        const auto& o = f.offload;
        bool gso_ok = false;
        if (o.gso == packet::gso_type::tcpv4) {
            gso_ok = g.rx_gso_tcpv4;
        } else if (o.gso == packet::gso_type::tcpv6) {
            gso_ok = g.rx_gso_tcpv6;
        }
        if (o.is_gso() && !gso_ok) {
            // The family's checksum offload decides whether segments may stay partial.
            const bool v6 = o.gso == packet::gso_type::tcpv6 ||
                            (f.data_len > 13 && f.data[12] == 0x86 && f.data[13] == 0xdd);
            offload::gso_segmenter& seg =
                (v6 ? g.rx_csum_ipv6 : g.rx_csum_ipv4) ? segment_partial_ : segment_full_;
            const offload::gso_result r =
                seg.segment(f, {staged_.get() + nstaged_, staged_capacity() - nstaged_});
            if (r.segments == 0) {
                pool_.free(f);
                ++stats_.rx_dropped;
                return;
            }
            if (!r.consumed_input) {
                pool_.free(f);
            }
            ++stats_.rx_segmented;
            nstaged_ += r.segments;
            return;
        }
        if (f.pkt_len > max_packet_size || (f.pkt_len > page && !g.rx_sg) || f.pkt_len == 0) {
            pool_.free(f);
            ++stats_.rx_dropped;
            return;
        }
        if (o.csum == packet::csum_state::partial && !o.is_gso()) {
            const packet::parsed_packet hp = packet::parse(f.bytes(), f.pkt_len);
            const bool v6 = hp.l3 == packet::l3_type::ipv6;
            if (!(v6 ? g.rx_csum_ipv6 : g.rx_csum_ipv4) &&
                !(hp.ok() && packet::complete_partial_checksum(f, hp.l3_end))) {
                pool_.free(f);
                ++stats_.rx_dropped;
                return;
            }
        }
        staged_[nstaged_++] = f;
    }

    /// RX flags and GSO extra for a staged frame.
    [[nodiscard]] static std::uint16_t rx_flags_of(const packet::frame& f) noexcept {
        packet::xen_offload x;
        if (!packet::to_xen_offload(f.offload, x)) {
            return 0;
        }
        return static_cast<std::uint16_t>((x.csum_blank ? rx_flag::csum_blank : 0) |
                                          (x.data_validated ? rx_flag::data_validated : 0));
    }

    /// Backend copy: packs each staged frame into whole guest pages, copies the burst in one
    /// batch, answers every request consumed.
    std::size_t deliver_by_copy() noexcept {
        rx_slots_wanted_ = 0;
        const std::size_t nreq = rx_ring_.peek_requests({rx_reqs_.get(), rx_ring_.size()});
        if (nreq == 0) {
            ++stats_.rx_no_requests;
            return 0;
        }
        struct plan {
            std::uint32_t first_req;
            std::uint32_t nchunks;
            std::uint32_t first_op;
            std::uint32_t nops;
            bool gso;
        };
        plan plans[256];
        std::size_t npk = 0;
        std::size_t used = 0;
        std::size_t nops = 0;
        for (; npk < nstaged_ && npk < std::size(plans); ++npk) {
            const packet::frame& f = staged_[npk];
            const auto nchunks = static_cast<std::uint32_t>((f.pkt_len + page - 1) / page);
            const bool gso = f.offload.is_gso();
            const std::size_t need = nchunks + (gso ? 1 : 0);
            if (used + need > nreq || nops + f.nb_segs + nchunks > max_ops) {
                if (used + need > nreq) {
                    ++stats_.rx_no_requests;
                    rx_slots_wanted_ = static_cast<std::uint32_t>(need);
                }
                break;
            }
            plan& pl = plans[npk];
            pl = {static_cast<std::uint32_t>(used), nchunks, static_cast<std::uint32_t>(nops), 0,
                  gso};
            // Chunk c goes to the request after the first when there is a GSO extra slot.
            std::uint32_t chunk = 0;
            std::uint32_t in_page = 0;
            for (const packet::frame* s = &f; s != nullptr; s = s->next) {
                std::uint32_t done = 0;
                while (done < s->data_len) {
                    const std::uint32_t n = std::min(s->data_len - done, page - in_page);
                    const std::size_t req = used + chunk + (gso && chunk > 0 ? 1 : 0);
                    grant::grant_copy_op& op = ops_[nops++];
                    op.source = grant::copy_side::buffer(s->data + done);
                    op.dest = grant::copy_side::granted(res_.guest, rx_reqs_[req].gref,
                                                        static_cast<std::uint16_t>(in_page));
                    op.len = static_cast<std::uint16_t>(n);
                    done += n;
                    in_page += n;
                    if (in_page == page) {
                        ++chunk;
                        in_page = 0;
                    }
                }
            }
            pl.nops = static_cast<std::uint32_t>(nops) - pl.first_op;
            used += need;
        }
        if (npk == 0) {
            return 0;
        }
        rx_ring_.consume_requests(static_cast<std::uint32_t>(used));
        copier_.copy({ops_.get(), nops});
        rx_response rsps[256 + 1];
        std::size_t nrsp = 0;
        for (std::size_t i = 0; i < npk; ++i) {
            const plan& pl = plans[i];
            const packet::frame& f = staged_[i];
            bool ok = true;
            for (std::uint32_t k = 0; k < pl.nops; ++k) {
                ok = ok && ops_[pl.first_op + k].status == grant::grant_status::okay;
            }
            const std::size_t slots = pl.nchunks + (pl.gso ? 1 : 0);
            std::size_t written = 0;
            if (ok) {
                rx_chunk chunks[max_rx_slots];
                for (std::uint32_t c = 0; c < pl.nchunks; ++c) {
                    const std::uint32_t left = f.pkt_len - c * page;
                    chunks[c] = {0, static_cast<std::uint16_t>(left < page ? left : page)};
                }
                extra_gso gso{};
                if (pl.gso) {
                    gso.size = f.offload.gso_size;
                    gso.type =
                        f.offload.gso == packet::gso_type::tcpv4 ? gso_type_tcpv4 : gso_type_tcpv6;
                }
                rx_encode_error err{};
                written = encode_rx_packet({rx_reqs_.get() + pl.first_req, slots},
                                           {chunks, pl.nchunks}, pl.gso ? &gso : nullptr,
                                           rx_flags_of(f), {rsps + nrsp, slots}, err);
            }
            if (written == 0) { // a grant failed: every slot answers rsp_error on its own
                for (std::size_t k = 0; k < slots; ++k) {
                    rsps[nrsp + k] = {rx_reqs_[pl.first_req + k].id, 0, 0, rsp_error};
                }
                written = slots;
                ++stats_.rx_copy_failed;
            } else {
                ++stats_.rx_packets;
                stats_.rx_segments += segments_of(f);
                stats_.rx_bytes += f.pkt_len;
                ++port_stats_.tx_packets;
                port_stats_.tx_bytes += f.pkt_len;
            }
            nrsp += written;
            stats_.rx_slots += written;
            if (nrsp > 256 - max_rx_slots - 1 || i + 1 == npk) {
                (void)rx_ring_.put_responses({rsps, nrsp});
                nrsp = 0;
            }
        }
        pool_.free_burst({staged_.get(), npk});
        drop_staged(npk);
        return npk;
    }

    /// Frontend copy: grants each piece of each staged frame read-only and range-limited; the
    /// guest copies. A slot's grant ends and its buffer returns when the guest reuses the slot.
    std::size_t deliver_by_grant() noexcept {
        rx_slots_wanted_ = 0;
        grants_blocked_ = false;
        const std::size_t nreq = rx_ring_.peek_requests({rx_reqs_.get(), rx_ring_.size()});
        if (nreq == 0) {
            ++stats_.rx_no_requests;
            return 0;
        }
        const std::uint32_t base = rx_ring_.req_cons();
        auto* grants = reinterpret_cast<std::uint32_t*>(res_.rx_grants_page.data());
        const std::uint32_t mask = rx_ring_.size() - 1;
        std::size_t used = 0;
        std::size_t npk = 0;
        rx_response rsps[64];
        std::size_t nrsp = 0;
        for (; npk < nstaged_; ++npk) {
            packet::frame& f = staged_[npk];
            const bool gso = f.offload.is_gso();
            std::uint32_t pieces = 0;
            for (const packet::frame* s = &f; s != nullptr; s = s->next) {
                pieces += pieces_of(*s);
            }
            const std::size_t need = pieces + (gso ? 1 : 0);
            if (pieces > 64 || used + need > nreq) {
                if (pieces > 64) { // more slots than a guest accepts: cannot be delivered
                    pool_.free(f);
                    ++stats_.rx_dropped;
                    continue;
                }
                ++stats_.rx_no_requests;
                rx_slots_wanted_ = static_cast<std::uint32_t>(need);
                break;
            }
            // Reusing a slot means the guest is done with what we granted in it before.
            for (std::size_t k = 0; k < need; ++k) {
                recycle((base + static_cast<std::uint32_t>(used + k)) & mask);
            }
            if (grants_->available() < pieces) {
                flush_recycled();
                grants_->reclaim();
                if (grants_->available() < pieces) {
                    // Ends of access the guest still holds back (its activity count odd):
                    // nothing it posts tells us when that stops, so retry on a timer.
                    ++stats_.rx_grants_exhausted;
                    grants_blocked_ = true;
                    break;
                }
            }
            rx_ring_.consume_requests(static_cast<std::uint32_t>(need));
            std::uint32_t req = static_cast<std::uint32_t>(used);
            std::uint32_t piece = 0;
            for (const packet::frame* s = &f; s != nullptr; s = s->next) {
                std::uint32_t done = 0;
                while (done < s->data_len) {
                    const std::uint8_t* at = s->data + done;
                    const auto off =
                        static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(at) % page);
                    const std::uint32_t n = std::min(s->data_len - done, page - off);
                    const grant::grant_ref ref = grants_->grant_subpage(
                        res_.guest, res_.memory->frame_of(at), static_cast<std::uint16_t>(off),
                        static_cast<std::uint16_t>(n), true);
                    const std::uint32_t slot = (base + req) & mask;
                    splitnet::detail::store_release(grants[slot], ref);
                    done += n;
                    // The buffer returns with the slot of its last piece.
                    inflight_[slot] = {ref, done == s->data_len ? s->buffer : packet::no_buffer};
                    const bool last = s->next == nullptr && done == s->data_len;
                    std::uint16_t flags = last ? 0 : rx_flag::more_data;
                    if (piece == 0) {
                        flags = static_cast<std::uint16_t>(flags | rx_flags_of(f) |
                                                           (gso ? rx_flag::extra_info : 0));
                    }
                    rsps[nrsp++] = {rx_reqs_[req].id, static_cast<std::uint16_t>(off), flags,
                                    static_cast<std::int16_t>(n)};
                    ++req;
                    if (piece == 0 && gso) {
                        extra_info e = make_gso_extra(f.offload.gso == packet::gso_type::tcpv4
                                                          ? gso_type_tcpv4
                                                          : gso_type_tcpv6,
                                                      f.offload.gso_size);
                        rsps[nrsp++] = response_from(e);
                        ++req;
                    }
                    ++piece;
                    if (nrsp + 2 > std::size(rsps)) {
                        (void)rx_ring_.put_responses({rsps, nrsp});
                        nrsp = 0;
                    }
                }
            }
            used += need;
            stats_.rx_slots += need;
            ++stats_.rx_packets;
            stats_.rx_segments += segments_of(f);
            stats_.rx_bytes += f.pkt_len;
            ++port_stats_.tx_packets;
            port_stats_.tx_bytes += f.pkt_len;
        }
        (void)rx_ring_.put_responses({rsps, nrsp});
        flush_recycled();
        drop_staged(npk);
        return npk;
    }

    /// Wire packets a delivered frame stands for (seed 002 counts packets per notification).
    [[nodiscard]] static std::uint32_t segments_of(const packet::frame& f) noexcept {
        return f.offload.is_gso() && f.offload.gso_segs > 1 ? f.offload.gso_segs : 1U;
    }

    /// Pieces a segment needs: one per page it touches (a buffer larger than a page).
    [[nodiscard]] static std::uint32_t pieces_of(const packet::frame& s) noexcept {
        if (s.data_len == 0) {
            return 0;
        }
        const auto first = reinterpret_cast<std::uintptr_t>(s.data) / page;
        const auto last = (reinterpret_cast<std::uintptr_t>(s.data) + s.data_len - 1) / page;
        return static_cast<std::uint32_t>(last - first + 1);
    }

    /// Collects what slot `s` held for ending in one burst.
    void recycle(std::uint32_t s) noexcept {
        inflight_slot& in = inflight_[s];
        if (in.ref == grant::invalid_ref) {
            return;
        }
        recycle_refs_[nrecycle_refs_++] = in.ref;
        if (in.buffer != packet::no_buffer) {
            recycle_bufs_[nrecycle_bufs_++] = in.buffer;
        }
        in = {};
        if (nrecycle_refs_ == std::size(recycle_refs_)) {
            flush_recycled();
        }
    }
    void flush_recycled() noexcept {
        if (nrecycle_refs_ != 0) {
            (void)grants_->end_access_burst({recycle_refs_, nrecycle_refs_});
            nrecycle_refs_ = 0;
        }
        if (nrecycle_bufs_ != 0) {
            pool_.free_addresses({recycle_bufs_, nrecycle_bufs_});
            nrecycle_bufs_ = 0;
        }
    }

    void drop_staged(std::size_t n) noexcept {
        std::copy(staged_.get() + n, staged_.get() + nstaged_, staged_.get());
        nstaged_ -= n;
    }

    resources res_;
    backend_config cfg_;
    tx_back_ring<> tx_ring_;
    rx_back_ring<> rx_ring_;
    grant::grant_copier copier_;
    packet::buffer_pool& pool_;
    offload::gso_segmenter segment_partial_;
    offload::gso_segmenter segment_full_;
    packet::detail::mpmc_ring<packet::frame> waiting_;
    Moderation moderation_;
    bool notify_pending_ = false;
    std::unique_ptr<tx_request[]> tx_reqs_;
    std::unique_ptr<tx_response[]> tx_rsps_;
    std::unique_ptr<rx_request[]> rx_reqs_;
    std::unique_ptr<packet::frame[]> staged_;
    std::size_t nstaged_ = 0;
    packet::frame carry_[64];
    std::uint32_t ncarry_ = 0;
    std::uint32_t carry_pos_ = 0;
    std::unique_ptr<grant::grant_copy_op[]> ops_;
    std::unique_ptr<packet::frame[]> bufs_;
    std::unique_ptr<tx_work[]> tx_work_;
    std::optional<grant::grant_table> grants_; ///< frontend copy: our reference range
    /// Slots the next staged frame needs when the last delivery stopped for want of them
    /// (0: it did not): the guest is asked to notify once that many are posted.
    std::uint32_t rx_slots_wanted_ = 0;
    /// Frontend copy: the last delivery ran out of grants; try again at grants_retry_.
    bool grants_blocked_ = false;
    coalesce::time_point grants_retry_ = coalesce::never;
    static constexpr auto grants_retry_interval = std::chrono::milliseconds(1);
    std::unique_ptr<inflight_slot[]> inflight_;
    grant::grant_ref recycle_refs_[64];
    std::size_t nrecycle_refs_ = 0;
    std::uint64_t recycle_bufs_[64];
    std::size_t nrecycle_bufs_ = 0;
    std::string fault_;
    std::atomic<bool> broken_{false};
    backend_queue_stats stats_{};
    nic::port_stats port_stats_{};
    alignas(cache_line_size) std::atomic<std::uint64_t> queue_drops_{0};
};

} // namespace splitnet::netif
