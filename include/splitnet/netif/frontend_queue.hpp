// SPDX-License-Identifier: MIT
// splitnet/netif/frontend_queue.hpp: one queue of a netfront, seen from the guest as a port.
//
//   tx_burst(frames)  sends: each segment of a frame (a buffer of the front end's pool, which
//                     lives in its grant region) is granted read-only and range-limited to the
//                     back end and becomes one TX request; a GSO frame gets a GSO extra-info.
//                     The buffers stay with the ring until their responses come back; then
//                     the grants end and the buffers return to the pool.
//   rx_burst(frames)  receives: responses become frames. With backend copy the data is already
//                     in pages we posted (granted writable, one page per request, kept posted
//                     so the ring stays full); with frontend copy we copy it out of the back
//                     end's read-only grants ourselves, on this CPU (Netchannel2), and re-post
//                     the slots, which tells the back end we are done with them.
//
// The back end is checked too (Linux netfront with trusted=0): response producer indices out of
// range, slots that cross a page or name no request break the queue instead of being followed.
//
// Threading: one thread per queue at a time, and the grant table is the front end's, so all
// queues of a frontend run on one thread (as the example netfront does).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include <splitnet/detail/shared_access.hpp>
#include <splitnet/event/eventfd_channel.hpp>
#include <splitnet/grant/grant_copy.hpp>
#include <splitnet/grant/grant_table.hpp>
#include <splitnet/netif/connection.hpp>
#include <splitnet/netif/features.hpp>
#include <splitnet/netif/rings.hpp>
#include <splitnet/netif/rx_packet.hpp>
#include <splitnet/netif/tx_packet.hpp>
#include <splitnet/nic/port.hpp>
#include <splitnet/packet/buffer_pool.hpp>
#include <splitnet/packet/checksum_offload.hpp>
#include <splitnet/packet/parser.hpp>

namespace splitnet::netif {

struct frontend_queue_stats {
    std::uint64_t tx_requests = 0;    ///< TX slots used (data and extras)
    std::uint64_t tx_ring_full = 0;   ///< tx_burst calls cut short by a full ring
    std::uint64_t tx_errors = 0;      ///< frames refused: not in our pool, too many segments,
                                      ///< GSO not negotiated, or answered with an error
    std::uint64_t rx_errors = 0;      ///< packets the back end answered with an error
    std::uint64_t rx_copy_failed = 0; ///< frontend copy: a grant did not allow the copy
    std::uint64_t rx_no_buffers = 0;  ///< RX slots left unposted for want of buffers
    std::uint64_t rx_posted = 0;      ///< RX requests posted
    std::uint64_t notifications = 0;  ///< kicks sent to the back end
};

class frontend_queue {
public:
    struct resources {
        std::span<std::byte> tx_ring_page; ///< initialised here (the front end owns the rings)
        std::span<std::byte> rx_ring_page;
        std::span<std::byte> rx_grants_page; ///< frontend copy: grant refs per RX slot
        std::array<event::eventfd_channel*, 4> events{};
        grant::grant_table* grants = nullptr; ///< our table (shared by all queues: one thread)
        const grant::memory_domain* self = nullptr;
        grant::domain_id backend = 0;
        packet::buffer_pool* pool = nullptr;   ///< in our region
        grant::grant_copier* copier = nullptr; ///< frontend copy: copies from the back end
        negotiated features{};
        std::uint16_t port_id = 0;
    };

    explicit frontend_queue(const resources& r)
        : res_(r), tx_ring_(r.tx_ring_page), rx_ring_(r.rx_ring_page), pool_(*r.pool),
          tx_slots_(std::make_unique<tx_slot[]>(tx_ring_.size())),
          tx_free_ids_(std::make_unique<std::uint16_t[]>(tx_ring_.size())),
          rx_slots_(std::make_unique<rx_slot[]>(rx_ring_.size())),
          rx_rsps_(std::make_unique<rx_response[]>(rx_ring_.size())),
          ops_(std::make_unique<grant::grant_copy_op[]>(2 * std::size_t{rx_ring_.size()} +
                                                        rx_batch_buffers)) {
        for (std::uint32_t i = 0; i < tx_ring_.size(); ++i) {
            tx_free_ids_[i] = static_cast<std::uint16_t>(i);
        }
        ntx_free_ = tx_ring_.size();
        if (!r.rx_grants_page.empty()) {
            std::memset(r.rx_grants_page.data(), 0xff, r.rx_grants_page.size());
        }
        refill();
    }
    frontend_queue(const frontend_queue&) = delete;
    frontend_queue& operator=(const frontend_queue&) = delete;
    ~frontend_queue() { release_all(); }

    // ---- port ----------------------------------------------------------------------------

    [[nodiscard]] packet::buffer_pool& pool() noexcept { return pool_; }
    [[nodiscard]] const nic::port_stats& stats() const noexcept { return port_stats_; }
    [[nodiscard]] const frontend_queue_stats& queue_stats() const noexcept { return stats_; }
    /// RX slots: 256 per negotiated ring page.
    [[nodiscard]] std::uint32_t rx_ring_size() const noexcept { return rx_ring_.size(); }
    [[nodiscard]] nic::port_caps caps() const noexcept {
        const negotiated& f = res_.features;
        return {f.tx_gso_tcpv4 && f.tx_gso_tcpv6, false, true, f.rx_gso_tcpv4 || f.rx_gso_tcpv6,
                65535};
    }

    /// Sends frames of our pool. Returns how many the ring took; the rest stay with the caller.
    [[nodiscard]] std::size_t tx_burst(std::span<packet::frame> in) noexcept {
        if (broken()) {
            return 0;
        }
        collect_tx();
        std::size_t n = 0;
        for (; n < in.size(); ++n) {
            packet::frame& f = in[n];
            const std::uint32_t need = f.nb_segs + (f.offload.is_gso() ? 1U : 0U);
            if (!sendable(f)) {
                pool_.free(f);
                ++stats_.tx_errors;
                ++port_stats_.tx_errors;
                continue;
            }
            if (need > tx_ring_.free_requests() || need > ntx_free_ ||
                res_.grants->available() < f.nb_segs) {
                ++stats_.tx_ring_full;
                ++port_stats_.tx_full;
                break;
            }
            put_tx(f);
        }
        if (n != 0) {
            if (tx_ring_.push_requests()) {
                res_.events[event_dir::tx_to_back]->notify();
                ++stats_.notifications;
                ++port_stats_.wakeups;
            }
        }
        return n;
    }

    /// Received packets: at most out.size().
    [[nodiscard]] std::size_t rx_burst(std::span<packet::frame> out) noexcept {
        if (broken() || reading_) { // rx_views_done() first
            return 0;
        }
        collect_tx();
        const std::size_t n =
            res_.features.rx_copy == copy_side::backend ? receive_posted(out) : receive_copied(out);
        if (rx_ring_.broken() && fault_.empty()) {
            fault_ = "back end RX ring: " + rx_ring_.fault().describe();
        }
        refill();
        return n;
    }

    /// Frontend copy without the copy, for a caller that hands packets straight to a device
    /// (a TAP write is then the only copy, as a guest kernel copying out of the back end's
    /// grants would make it): received packets whose first segment is a writable copy of their
    /// first `view_header_bytes` bytes (the headers, which a device may need to fix up: a TAP
    /// wants GSO checksums partial), in this queue's scratch, followed by read-only views of
    /// the back end's grants. The frames belong to no pool (freeing them is a no-op) and stay
    /// valid until rx_views_done(), which must come before the next RX call: it ends the reads
    /// and re-posts the slots, which hands the back end its buffers again. With backend copy
    /// (or a broken queue) it returns 0: use rx_burst.
    [[nodiscard]] std::size_t rx_views(std::span<packet::frame> out) noexcept {
        if (broken() || res_.features.rx_copy != copy_side::frontend || reading_) {
            return 0;
        }
        collect_tx();
        const std::uint32_t mask = rx_ring_.size() - 1;
        const auto* grants = reinterpret_cast<std::uint32_t*>(res_.rx_grants_page.data());
        const std::size_t npk =
            decode_published(std::min(out.size(), view_batch), rx_slot_capacity);
        std::size_t nreads = 0;
        std::uint32_t at = rx_ring_.rsp_cons();
        for (std::size_t i = 0; i < npk; ++i) {
            const rx_packet& p = rx_pkts_[i];
            rx_first_op_[i] = static_cast<std::uint32_t>(nreads);
            std::uint32_t data_i = 0;
            for (std::uint32_t k = 0; rx_ok_[i] && k < p.responses && data_i < p.nslots; ++k) {
                if (is_extra_slot(k, p)) {
                    continue;
                }
                const rx_slot_data& sl = p.slots[data_i++];
                reads_[nreads++] = {grant::copy_side::granted(
                                        res_.backend,
                                        splitnet::detail::load_acquire(grants[(at + k) & mask]),
                                        sl.offset),
                                    sl.size};
            }
            rx_nops_[i] = static_cast<std::uint32_t>(nreads) - rx_first_op_[i];
            at += p.responses;
        }
        if (npk == 0) {
            return 0;
        }
        res_.copier->begin_reads({reads_.get(), nreads});
        reading_ = true;
        rx_ring_.consume_responses(at - rx_ring_.rsp_cons());
        std::size_t nout = 0;
        std::size_t nseg = 0;
        for (std::size_t i = 0; i < npk; ++i) {
            const grant::grant_read_op* r = reads_.get() + rx_first_op_[i];
            bool ok = rx_ok_[i] && rx_nops_[i] != 0;
            for (std::uint32_t k = 0; k < rx_nops_[i]; ++k) {
                ok = ok && r[k].status == grant::grant_status::okay;
            }
            if (!ok) {
                stats_.rx_copy_failed += rx_ok_[i] ? 1 : 0;
                ++stats_.rx_errors;
                ++port_stats_.rx_errors;
                continue;
            }
            // The headers into our scratch (from as many slots as they span), then views of
            // the rest.
            std::uint8_t* hdr = view_headers_.get() + nout * view_header_bytes;
            std::uint32_t h = 0;
            std::uint32_t k = 0;
            std::uint32_t skip = 0; // bytes of slot k already in the header copy
            while (k < rx_nops_[i] && h < view_header_bytes) {
                const std::uint32_t c =
                    std::min<std::uint32_t>(r[k].len - skip, view_header_bytes - h);
                std::memcpy(hdr + h, r[k].data + skip, c);
                h += c;
                skip += c;
                if (skip == r[k].len) {
                    ++k;
                    skip = 0;
                }
            }
            packet::frame& f = out[nout];
            f = packet::make_frame(hdr, h);
            packet::frame* tail = &f;
            for (; k < rx_nops_[i]; ++k, skip = 0) {
                packet::frame& seg = view_segs_[nseg++];
                // Read-only in fact: the frame type has no const view, and no one writes here.
                seg = packet::make_frame(const_cast<std::uint8_t*>(r[k].data) + skip,
                                         r[k].len - skip);
                tail->next = &seg;
                tail = &seg;
                ++f.nb_segs;
            }
            finish_rx(f, rx_pkts_[i]);
            ++nout;
        }
        return nout;
    }

    /// Ends what rx_views() handed out: the reads end and the slots are posted again.
    void rx_views_done() noexcept {
        if (reading_) {
            res_.copier->end_reads();
            reading_ = false;
        }
        if (broken()) {
            return;
        }
        if (rx_ring_.broken() && fault_.empty()) {
            fault_ = "back end RX ring: " + rx_ring_.fault().describe();
        }
        refill();
    }

    /// Before the thread sleeps: arms the response event indices; true if work is waiting.
    [[nodiscard]] bool prepare_to_sleep() noexcept {
        if (broken()) {
            return false;
        }
        bool work = rx_ring_.final_check_for_responses(1);
        if (tx_ring_.outstanding() != 0) {
            // Buffers are reclaimed when TX responses arrive: ask for a kick after half of them.
            work = tx_ring_.final_check_for_responses(std::max(1U, tx_ring_.outstanding() / 2)) ||
                   work;
        }
        return work;
    }

    [[nodiscard]] int rx_event_fd() const noexcept {
        return res_.events[event_dir::rx_to_front]->fd();
    }
    [[nodiscard]] int tx_event_fd() const noexcept {
        return res_.events[event_dir::tx_to_front]->fd();
    }
    void consume_events() noexcept {
        (void)res_.events[event_dir::rx_to_front]->try_consume();
        if (res_.events[event_dir::tx_to_front] != res_.events[event_dir::rx_to_front]) {
            (void)res_.events[event_dir::tx_to_front]->try_consume();
        }
    }

    /// Frontend copy: the copier (with the back end's region) received at connect time.
    void set_copier(grant::grant_copier* c) noexcept { res_.copier = c; }

    [[nodiscard]] bool broken() const noexcept { return !fault_.empty(); }
    [[nodiscard]] const std::string& fault() const noexcept { return fault_; }
    [[nodiscard]] std::uint32_t tx_outstanding() const noexcept { return tx_ring_.outstanding(); }

    /// Takes back every buffer: TX ones in flight and posted RX ones (grants ended). Call after
    /// the back end is gone (or will not touch the rings again).
    void release_all() noexcept {
        if (reading_) {
            res_.copier->end_reads();
            reading_ = false;
        }
        for (std::uint32_t i = 0; i < tx_ring_.size(); ++i) {
            tx_slot& t = tx_slots_[i];
            if (t.ref != grant::invalid_ref) {
                (void)res_.grants->end_access(t.ref);
                if (t.buffer != packet::no_buffer) {
                    pool_.free_addresses({&t.buffer, 1});
                }
                t = {};
            }
        }
        for (std::uint32_t i = 0; i < rx_ring_.size(); ++i) {
            rx_slot& s = rx_slots_[i];
            if (s.ref != grant::invalid_ref) {
                (void)res_.grants->end_access(s.ref);
            }
            if (s.buffer != packet::no_buffer) {
                pool_.free_addresses({&s.buffer, 1});
            }
            s = {};
        }
        res_.grants->reclaim();
    }

private:
    static constexpr std::uint32_t page = page_bytes;
    static constexpr std::uint32_t reclaim_threshold = 32;

    struct tx_slot {
        grant::grant_ref ref = grant::invalid_ref;
        std::uint64_t buffer = packet::no_buffer; ///< freed with the last segment's response
    };
    struct rx_slot {
        grant::grant_ref ref = grant::invalid_ref; ///< backend copy: our page granted writable
        std::uint64_t buffer = packet::no_buffer;
    };

    [[nodiscard]] bool sendable(packet::frame& f) noexcept {
        if (f.nb_segs > min_slots || f.pkt_len > max_packet_size || f.pkt_len == 0) {
            return false;
        }
        for (const packet::frame* s = &f; s != nullptr; s = s->next) {
            // Only bytes inside the segment's own buffer (one page) may be granted.
            const std::uint8_t* buf = pool_.base() + s->buffer;
            if (s->buffer == packet::no_buffer || !pool_.owns(s->buffer) || s->data_len == 0 ||
                s->data < buf || s->data + s->data_len > buf + pool_.frame_size()) {
                return false;
            }
        }
        const negotiated& g = res_.features;
        if (f.offload.gso == packet::gso_type::udp_l4 ||
            (f.offload.gso == packet::gso_type::tcpv4 && !g.tx_gso_tcpv4) ||
            (f.offload.gso == packet::gso_type::tcpv6 && !g.tx_gso_tcpv6)) {
            return false;
        }
        if (f.offload.csum == packet::csum_state::partial && !f.offload.is_gso()) {
            const packet::parsed_packet p = packet::parse(f.bytes(), f.pkt_len);
            if (p.l3 == packet::l3_type::ipv6 && !g.tx_csum_ipv6) {
                return p.ok() && packet::complete_partial_checksum(f, p.l3_end);
            }
        }
        return true;
    }

    void put_tx(packet::frame& f) noexcept {
        tx_fragment frags[min_slots];
        std::uint32_t nf = 0;
        for (const packet::frame* s = &f; s != nullptr; s = s->next) {
            const auto off =
                static_cast<std::uint16_t>(reinterpret_cast<std::uintptr_t>(s->data) % page);
            const std::uint64_t frame_no =
                data_frame0_ + static_cast<std::uint64_t>(s->data - pool_.base()) / page;
            const grant::grant_ref ref = res_.grants->grant_subpage(
                res_.backend, frame_no, off, static_cast<std::uint16_t>(s->data_len), true);
            const std::uint16_t id = tx_free_ids_[--ntx_free_];
            tx_slots_[id] = {ref, s->buffer};
            frags[nf++] = {ref, off, static_cast<std::uint16_t>(s->data_len), id};
        }
        packet::xen_offload x;
        (void)packet::to_xen_offload(f.offload, x);
        extra_info gso[1];
        std::size_t nextra = 0;
        if (x.has_gso()) {
            gso[nextra++] = make_gso_extra(x.gso_type, x.gso_size);
        }
        const auto flags =
            static_cast<std::uint16_t>((x.csum_blank ? tx_flag::csum_blank : 0) |
                                       (x.data_validated ? tx_flag::data_validated : 0));
        tx_request reqs[min_slots + 1];
        tx_encode_error err{};
        const std::size_t nreq = encode_tx_packet({frags, nf}, {gso, nextra}, flags, reqs, err);
        (void)tx_ring_.put_requests({reqs, nreq});
        stats_.tx_requests += nreq;
        ++port_stats_.tx_packets;
        port_stats_.tx_bytes += f.pkt_len;
    }

    /// TX responses: end each fragment's grant and free its buffer.
    void collect_tx() noexcept {
        tx_response rsps[64];
        for (;;) {
            const std::size_t n = tx_ring_.get_responses(rsps);
            for (std::size_t i = 0; i < n; ++i) {
                const tx_response& r = rsps[i];
                if (r.status == rsp_null) {
                    continue;
                }
                if (r.id >= tx_ring_.size() || tx_slots_[r.id].ref == grant::invalid_ref) {
                    fault_ = "back end TX response names request id " + std::to_string(r.id) +
                             " that is not in flight";
                    return;
                }
                tx_slot& t = tx_slots_[r.id];
                end_refs_[nend_++] = t.ref;
                free_bufs_[nfree_++] = t.buffer;
                t = {};
                tx_free_ids_[ntx_free_++] = r.id;
                if (r.status != rsp_okay) {
                    ++stats_.tx_errors;
                    ++port_stats_.tx_errors;
                }
                if (nend_ == std::size(end_refs_)) {
                    flush_ended();
                }
            }
            if (n < std::size(rsps)) {
                break;
            }
        }
        flush_ended();
        if (tx_ring_.broken() && fault_.empty()) {
            fault_ = "back end TX ring: " + tx_ring_.fault().describe();
        }
    }

    void flush_ended() noexcept {
        if (nend_ != 0) {
            (void)res_.grants->end_access_burst({end_refs_, nend_});
            nend_ = 0;
            // Ends that waited for a copy batch of the back end's: free them once it moved on.
            if (res_.grants->pending() >= reclaim_threshold) {
                res_.grants->reclaim();
            }
        }
        if (nfree_ != 0) {
            pool_.free_addresses({free_bufs_, nfree_});
            nfree_ = 0;
        }
    }

    /// Decodes the whole packets published now (one copy of the responses per burst) into
    /// rx_pkts_; returns how many, at most `max`. A protocol violation breaks the queue after
    /// the packets before it.
    std::size_t decode_published(std::size_t max, std::uint32_t max_slots) noexcept {
        const std::size_t n = rx_ring_.peek_responses({rx_rsps_.get(), rx_ring_.size()});
        std::size_t pos = 0;
        std::size_t k = 0;
        max = std::min(max, rx_batch);
        while (pos < n && k < max) {
            const rx_decode_result r =
                decode_rx_packet({rx_rsps_.get() + pos, n - pos}, rx_pkts_[k], max_slots);
            if (r.verdict == rx_verdict::incomplete) {
                break; // the rest is not published yet
            }
            if (r.verdict == rx_verdict::fatal) {
                fault_ = "back end RX: " + std::string(to_string(r.fault));
                break;
            }
            rx_ok_[k] = r.verdict == rx_verdict::ok;
            pos += rx_pkts_[k].responses;
            ++k;
        }
        return k;
    }

    /// Backend copy: each data slot's bytes are in the page we posted in that slot.
    std::size_t receive_posted(std::span<packet::frame> out) noexcept {
        const std::uint32_t mask = rx_ring_.size() - 1;
        const std::size_t npk = decode_published(out.size(), max_rx_slots);
        std::uint32_t at = rx_ring_.rsp_cons();
        std::size_t nout = 0;
        for (std::size_t i = 0; i < npk; ++i) {
            const rx_packet& p = rx_pkts_[i];
            // Walk the slots the packet used: data slots hold its bytes, extras nothing.
            packet::frame* head = nullptr;
            packet::frame* tail = nullptr;
            std::uint32_t data_i = 0;
            for (std::uint32_t k = 0; k < p.responses; ++k) {
                rx_slot& s = rx_slots_[(at + k) & mask];
                end_refs_[nend_++] = s.ref;
                if (!rx_ok_[i] || is_extra_slot(k, p) || data_i >= p.nslots) {
                    free_bufs_[nfree_++] = s.buffer;
                } else {
                    append(head, tail, out[nout], {p.slots[data_i++], s.buffer});
                }
                s = {};
                if (nend_ == std::size(end_refs_) || nfree_ == std::size(free_bufs_)) {
                    flush_ended();
                }
            }
            at += p.responses;
            if (!rx_ok_[i]) {
                ++stats_.rx_errors;
                ++port_stats_.rx_errors;
                if (head != nullptr) {
                    pool_.free(*head);
                }
                continue;
            }
            finish_rx(out[nout], p);
            ++nout;
        }
        rx_ring_.consume_responses(at - rx_ring_.rsp_cons());
        flush_ended();
        return nout;
    }

    /// Frontend copy: copy each data slot out of the back end's grant into our buffers, for
    /// the whole burst in one batch.
    std::size_t receive_copied(std::span<packet::frame> out) noexcept {
        const std::uint32_t mask = rx_ring_.size() - 1;
        const auto* grants = reinterpret_cast<std::uint32_t*>(res_.rx_grants_page.data());
        const std::uint32_t room = pool_.frame_size() - pool_.default_headroom();
        std::size_t npk = decode_published(out.size(), rx_slot_capacity);
        // Buffers for every good packet, packed full from the default headroom: one allocation.
        std::uint32_t nbuf = 0;
        for (std::size_t i = 0; i < npk; ++i) {
            const std::uint32_t need = rx_ok_[i] ? (rx_pkts_[i].total_size + room - 1) / room : 0;
            if (nbuf + need > rx_batch_buffers) {
                npk = i; // the rest waits for the next call
                break;
            }
            rx_first_buf_[i] = nbuf;
            rx_nbuf_[i] = need;
            nbuf += need;
        }
        if (nbuf != 0) {
            const std::size_t got = pool_.alloc_burst({rx_bufs_.get(), nbuf});
            if (got != nbuf) {
                pool_.free_burst({rx_bufs_.get(), got});
                ++stats_.rx_no_buffers;
                return 0; // leave the packets on the ring; try again later
            }
        }
        // Plan the copies of every slot of every good packet, then copy once.
        std::size_t nops = 0;
        std::uint32_t at = rx_ring_.rsp_cons();
        for (std::size_t i = 0; i < npk; ++i) {
            const rx_packet& p = rx_pkts_[i];
            rx_first_op_[i] = static_cast<std::uint32_t>(nops);
            if (rx_ok_[i]) {
                std::uint32_t b = rx_first_buf_[i];
                std::uint32_t in_buf = 0;
                std::uint32_t data_i = 0;
                for (std::uint32_t k = 0; k < p.responses && data_i < p.nslots; ++k) {
                    if (is_extra_slot(k, p)) {
                        continue;
                    }
                    const rx_slot_data& sl = p.slots[data_i++];
                    const grant::grant_ref ref =
                        splitnet::detail::load_acquire(grants[(at + k) & mask]);
                    for (std::uint32_t done = 0; done < sl.size;) {
                        const std::uint32_t c =
                            std::min<std::uint32_t>(sl.size - done, room - in_buf);
                        grant::grant_copy_op& op = ops_[nops++];
                        op.source = grant::copy_side::granted(
                            res_.backend, ref, static_cast<std::uint16_t>(sl.offset + done));
                        op.dest = grant::copy_side::buffer(rx_bufs_[b].data + in_buf);
                        op.len = static_cast<std::uint16_t>(c);
                        done += c;
                        in_buf += c;
                        rx_bufs_[b].data_len = in_buf;
                        if (in_buf == room) {
                            ++b;
                            in_buf = 0;
                        }
                    }
                }
            }
            rx_nops_[i] = static_cast<std::uint32_t>(nops) - rx_first_op_[i];
            at += p.responses;
        }
        if (nops != 0) {
            res_.copier->copy({ops_.get(), nops});
        }
        rx_ring_.consume_responses(at - rx_ring_.rsp_cons());
        std::size_t nout = 0;
        for (std::size_t i = 0; i < npk; ++i) {
            bool ok = rx_ok_[i];
            for (std::uint32_t k = 0; k < rx_nops_[i]; ++k) {
                ok = ok && ops_[rx_first_op_[i] + k].status == grant::grant_status::okay;
            }
            packet::frame* bufs = rx_bufs_.get() + rx_first_buf_[i];
            if (!ok) {
                stats_.rx_copy_failed += rx_ok_[i] ? 1 : 0;
                ++stats_.rx_errors;
                ++port_stats_.rx_errors;
                pool_.free_burst({bufs, rx_nbuf_[i]});
                continue;
            }
            packet::frame& f = out[nout];
            f = bufs[0];
            f.nb_segs = static_cast<std::uint16_t>(rx_nbuf_[i]);
            packet::frame* tail = &f;
            for (std::uint32_t k = 1; k < rx_nbuf_[i]; ++k) {
                packet::frame& slot = pool_.chain_slot(bufs[k].buffer);
                slot = bufs[k];
                slot.pkt_len = slot.data_len;
                tail->next = &slot;
                tail = &slot;
            }
            tail->next = nullptr;
            finish_rx(f, rx_pkts_[i]);
            ++nout;
        }
        return nout;
    }

    using rx_slot_data = netif::rx_slot;
    /// A data slot of a received packet and the buffer we posted in it.
    struct rx_slot_view {
        const rx_slot_data& data;
        std::uint64_t buffer;
    };

    /// True when response k of a packet is an extra-info slot (they follow the first).
    [[nodiscard]] static bool is_extra_slot(std::uint32_t k, const rx_packet& p) noexcept {
        const std::uint32_t extras = p.responses - p.nslots;
        return k >= 1 && k <= extras && (p.flags & rx_flag::extra_info) != 0;
    }

    void append(packet::frame*& head, packet::frame*& tail, packet::frame& out,
                const rx_slot_view& v) noexcept {
        packet::frame* seg = head == nullptr ? &out : &pool_.chain_slot(v.buffer);
        *seg = pool_.frame_at(v.buffer + v.data.offset, v.data.size);
        if (head == nullptr) {
            head = seg;
        } else {
            tail->next = seg;
            ++head->nb_segs;
        }
        tail = seg;
    }

    void finish_rx(packet::frame& f, const rx_packet& p) noexcept {
        f.port = res_.port_id;
        f.pkt_len = p.total_size;
        packet::xen_offload x;
        x.csum_blank = (p.flags & rx_flag::csum_blank) != 0;
        x.data_validated = (p.flags & rx_flag::data_validated) != 0;
        if (p.has_gso) {
            x.gso_type = p.gso.type;
            x.gso_size = p.gso.size;
        }
        f.offload = {};
        if (packet::from_xen_offload(x, f.offload) == packet::offload_error::none &&
            (f.offload.csum == packet::csum_state::partial || f.offload.is_gso())) {
            const packet::parsed_packet hp = packet::parse(f.bytes(), f.pkt_len);
            if (!packet::complete_offload_metadata(hp, f.offload)) {
                f.offload = {};
            }
        }
        ++port_stats_.rx_packets;
        port_stats_.rx_bytes += f.pkt_len;
    }

    /// Keeps the RX ring full of requests (with pages, for backend copy), in bursts: one pool
    /// allocation and one ring write per 64 slots.
    void refill() noexcept {
        const std::uint32_t mask = rx_ring_.size() - 1;
        const bool copy_here = res_.features.rx_copy == copy_side::frontend;
        std::uint32_t posted = 0;
        for (std::uint32_t want = rx_ring_.free_requests(); want != 0;) {
            const std::uint32_t chunk = std::min<std::uint32_t>(want, 64);
            packet::frame bufs[64];
            std::size_t n = chunk;
            if (!copy_here) {
                n = pool_.alloc_burst({bufs, chunk});
                if (n < chunk) {
                    stats_.rx_no_buffers += chunk - n;
                    port_stats_.rx_no_buffers += chunk - n;
                }
            }
            rx_request reqs[64];
            const std::uint32_t at = rx_ring_.req_prod_pvt();
            std::size_t k = 0;
            for (; k < n; ++k) {
                const std::uint32_t slot = (at + static_cast<std::uint32_t>(k)) & mask;
                grant::grant_ref ref = 0;
                if (!copy_here) {
                    ref = res_.grants->grant_access(res_.backend, frame_of(bufs[k].buffer), false);
                    if (ref == grant::invalid_ref) {
                        pool_.free_burst({bufs + k, n - k});
                        ++stats_.rx_no_buffers;
                        break;
                    }
                    rx_slots_[slot] = {ref, bufs[k].buffer};
                }
                reqs[k] = {static_cast<std::uint16_t>(slot), 0, ref};
            }
            (void)rx_ring_.put_requests({reqs, k});
            posted += static_cast<std::uint32_t>(k);
            if (k < chunk) {
                break;
            }
            want -= chunk;
        }
        if (posted != 0) {
            stats_.rx_posted += posted;
            const bool need = rx_ring_.push_requests();
            if (need && res_.features.rx_notify) {
                res_.events[event_dir::rx_to_back]->notify();
                ++stats_.notifications;
            }
        }
    }

    /// Our grant frame number of a pool buffer address.
    [[nodiscard]] std::uint64_t frame_of(std::uint64_t buffer) const noexcept {
        return data_frame0_ + buffer / page;
    }

    resources res_;
    tx_front_ring<> tx_ring_;
    rx_front_ring<> rx_ring_;
    packet::buffer_pool& pool_;
    /// The grant frame of the pool's first byte (the pool lives in our region).
    std::uint64_t data_frame0_ =
        static_cast<std::uint64_t>(reinterpret_cast<std::byte*>(res_.pool->base()) -
                                   res_.self->region.data()) /
        page;
    std::unique_ptr<tx_slot[]> tx_slots_;
    std::unique_ptr<std::uint16_t[]> tx_free_ids_;
    std::uint32_t ntx_free_ = 0;
    std::unique_ptr<rx_slot[]> rx_slots_;
    std::unique_ptr<rx_response[]> rx_rsps_;
    std::unique_ptr<grant::grant_copy_op[]> ops_;
    static constexpr std::size_t rx_batch = 64;            ///< packets decoded per rx_burst
    static constexpr std::uint32_t rx_batch_buffers = 256; ///< frontend copy: buffers per burst
    std::unique_ptr<rx_packet[]> rx_pkts_ = std::make_unique<rx_packet[]>(rx_batch);
    bool rx_ok_[rx_batch] = {};
    std::uint32_t rx_first_buf_[rx_batch] = {};
    std::uint32_t rx_nbuf_[rx_batch] = {};
    std::uint32_t rx_first_op_[rx_batch] = {};
    std::uint32_t rx_nops_[rx_batch] = {};
    std::unique_ptr<packet::frame[]> rx_bufs_ = std::make_unique<packet::frame[]>(rx_batch_buffers);
    /// rx_views: the leading bytes copied per packet (headers up to here; 256 covers Ethernet,
    /// two VLAN tags, IPv6 with extension headers and TCP with options), and the read-only
    /// segments after them, at most one per ring slot.
    static constexpr std::uint32_t view_header_bytes = 256;
    static constexpr std::size_t view_batch = rx_batch;
    std::unique_ptr<std::uint8_t[]> view_headers_ =
        std::make_unique<std::uint8_t[]>(view_batch * view_header_bytes);
    std::unique_ptr<grant::grant_read_op[]> reads_ =
        std::make_unique<grant::grant_read_op[]>(rx_ring_.size());
    std::unique_ptr<packet::frame[]> view_segs_ =
        std::make_unique<packet::frame[]>(rx_ring_.size());
    bool reading_ = false; ///< rx_views() handed out frames not yet done
    grant::grant_ref end_refs_[64];
    std::size_t nend_ = 0;
    std::uint64_t free_bufs_[64];
    std::size_t nfree_ = 0;
    std::string fault_;
    frontend_queue_stats stats_{};
    nic::port_stats port_stats_{};
};
static_assert(nic::port<frontend_queue>);

} // namespace splitnet::netif
