// SPDX-License-Identifier: MIT
// splitnet/netif/backend.hpp: netback for one connected front end, and the acceptor that runs
// the back end's side of the handshake for any number of front ends at once.
//
// Handshake (connection.hpp has the keys), as Xen's xenbus states go:
//   accept          -> send hello (init_wait): features, ids, mtu
//   connect arrives -> check it, map the front end's region (a sealed memfd) and its ring pages
//                      (grants it made to us, mapped for the connection's life), build one
//                      backend_queue per queue -> send connected (connected)
//   any failure     -> send error with the reason, close; nothing is kept
// A front end that stalls mid-handshake delays no one: the acceptor is driven by readiness and
// drops handshakes older than handshake_timeout.
//
// After connecting, the control channel is the front end's heartbeat: its end (the process
// died or closed it), a closing/closed state or an error message disconnects the front end,
// as does a queue that found the front end breaking the protocol. Disconnecting stops the
// queues; destroying the backend then reclaims everything the front end held: frames waiting
// for it and, with frontend copy, buffers granted to it (the grants ended; a dead front end's
// activity slot is cleared first, since no copy of its can still be running), and unmaps its
// ring pages.
//
// Threading: the acceptor and a backend's control methods run on the control thread; the
// queues are served by workers (backend_queue.hpp). Destroy a backend only when no worker
// serves its queues any more.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <splitnet/event/eventfd_channel.hpp>
#include <splitnet/grant/grant_map.hpp>
#include <splitnet/grant/memory_domain.hpp>
#include <splitnet/netif/backend_memory.hpp>
#include <splitnet/netif/backend_queue.hpp>
#include <splitnet/netif/connection.hpp>
#include <splitnet/netif/control.hpp>
#include <splitnet/ring/shared_region.hpp>

namespace splitnet::netif {

/// What a back end offers every front end and how it builds their queues.
template <coalesce::moderation_policy Moderation = coalesce::moderation::none>
struct backend_params {
    backend_offer offer{};
    grant::domain_id backend_id = 0;
    std::uint32_t mtu = 1500;
    backend_config queue{};
    packet::buffer_pool* pool = nullptr; ///< frames from guests are copied into this pool
    backend_memory* memory = nullptr;    ///< needed to offer frontend copy (offer.frontend_copy)
    Moderation moderation{};             ///< each queue starts with a copy of this policy
    /// backend_acceptor: handshakes in progress at once. A peer beyond it is refused at once
    /// (each pending handshake holds a descriptor for up to handshake_timeout: without a cap,
    /// a local process opening connections in a loop would exhaust the driver domain's).
    std::size_t max_pending_handshakes = 64;
};

template <coalesce::moderation_policy Moderation = coalesce::moderation::none>
class backend {
public:
    using queue_type = backend_queue<Moderation>;

    /// Builds the back end of a front end whose connect message is `m` and answers it over
    /// `ch`, which the backend then owns. Returns nullptr and `why` when the request cannot be
    /// served (`ch` is left to the caller, to send the refusal).
    [[nodiscard]] static std::unique_ptr<backend> accept(control::channel& ch, control::message& m,
                                                         const backend_params<Moderation>& p,
                                                         grant::domain_id frontend_id,
                                                         std::string& why) {
        auto info = connect_info::read(m, why);
        if (!info) {
            return nullptr;
        }
        auto feat = negotiate(p.offer, info->request, why);
        if (!feat) {
            return nullptr;
        }
        if (info->mtu > p.mtu) {
            why = "the front end's mtu " + std::to_string(info->mtu) + " exceeds the link's " +
                  std::to_string(p.mtu);
            return nullptr;
        }
        if (info->activity_slots < feat->queues) {
            why = "the front end reserved " + std::to_string(info->activity_slots) +
                  " grant activity slots; one per queue (" + std::to_string(feat->queues) +
                  ") is needed";
            return nullptr;
        }
        std::unique_ptr<backend> b(new backend(p, frontend_id, *info, *feat));
        if (!b->build(m, why)) {
            return nullptr;
        }
        control::message reply(control::message_type::connected, control::link_state::connected);
        connected_info ci;
        int readonly = -1;
        if (b->memory_slot_) {
            readonly = p.memory->readonly_fd();
            ci = {true,
                  readonly,
                  p.memory->activity_fd(*b->memory_slot_),
                  p.memory->domain().table_pages,
                  p.memory->domain().activity_slots,
                  *b->memory_slot_};
        }
        ci.write(reply);
        const bool sent = ch.send(reply);
        if (readonly >= 0) {
            ::close(readonly);
        }
        if (!sent) {
            why = "the front end went away during the handshake";
            return nullptr;
        }
        b->channel_ = std::move(ch);
        return b;
    }

    backend(const backend&) = delete;
    backend& operator=(const backend&) = delete;
    ~backend() {
        for (auto& q : queues_) {
            q->stop("front end released");
        }
        if (memory_slot_) {
            // A disconnected front end copies no more; a dead one left its count where it was.
            splitnet::detail::store_release(params_.memory->domain().activity(*memory_slot_), 0U);
        }
        queues_.clear(); // each queue returns its buffers and ends its grants
        for (auto& m : ring_maps_) {
            mapper_->unmap(m);
        }
        if (memory_slot_) {
            params_.memory->give_activity_slot(*memory_slot_);
        }
        for (const auto& [first, pages] : ref_ranges_) {
            params_.memory->give_ref_range(first, pages);
        }
    }

    [[nodiscard]] std::uint32_t queue_count() const noexcept {
        return static_cast<std::uint32_t>(queues_.size());
    }
    [[nodiscard]] queue_type& queue(std::uint32_t q) noexcept { return *queues_[q]; }
    [[nodiscard]] const negotiated& features() const noexcept { return features_; }
    /// The front end's activity slot in the back end's memory (frontend copy only).
    [[nodiscard]] std::optional<std::uint32_t> copy_slot() const noexcept { return memory_slot_; }
    [[nodiscard]] const packet::mac_address& mac() const noexcept { return mac_; }
    [[nodiscard]] std::uint32_t mtu() const noexcept { return mtu_; }
    [[nodiscard]] grant::domain_id frontend_id() const noexcept { return frontend_id_; }
    [[nodiscard]] int control_fd() const noexcept { return channel_.fd(); }

    [[nodiscard]] bool connected() const noexcept { return reason_.empty(); }
    /// Why the front end was disconnected (empty while connected).
    [[nodiscard]] const std::string& disconnect_reason() const noexcept { return reason_; }

    /// Reads what the control channel has (call when it is readable, or periodically); checks
    /// the queues for protocol faults. Returns connected().
    bool poll_control() {
        if (!connected()) {
            return false;
        }
        for (auto& q : queues_) {
            if (q->broken()) {
                disconnect("queue fault: " + q->fault());
                return false;
            }
        }
        for (;;) {
            message_ = control::message{};
            const control::receive_result r =
                channel_.receive(message_, std::chrono::milliseconds(0));
            if (r.status == control::receive_status::timeout) {
                return true;
            }
            if (r.status == control::receive_status::closed) {
                disconnect("the front end closed the control channel (it exited or crashed)");
                return false;
            }
            if (r.status != control::receive_status::ok) {
                disconnect("control channel: " + r.reason);
                return false;
            }
            if (message_.type() == control::message_type::error) {
                disconnect("the front end reported: " +
                           std::string(message_.get("reason").value_or("(no reason)")));
                return false;
            }
            const auto s = message_.state();
            if (s == control::link_state::closing || s == control::link_state::closed) {
                disconnect("the front end is " + std::string(control::to_string(s)));
                return false;
            }
        }
    }

    /// Stops every queue and tells the front end (best effort). Resources are reclaimed when
    /// the backend is destroyed, after the workers let go of its queues.
    void disconnect(const std::string& why) {
        if (!connected()) {
            return;
        }
        reason_ = why.empty() ? std::string("disconnected") : why;
        for (auto& q : queues_) {
            q->stop(reason_);
        }
        channel_.send_error(reason_, control::link_state::closed);
    }

private:
    backend(const backend_params<Moderation>& p, grant::domain_id id, const connect_info& info,
            const negotiated& f)
        : params_(p), frontend_id_(id), info_(info), features_(f), mac_(info.mac), mtu_(info.mtu) {}

    bool build(control::message& m, std::string& why) {
        region_ =
            ring::shared_region::try_attach(m.take_fd(static_cast<std::size_t>(info_.region)), why);
        if (!region_.valid()) {
            return false;
        }
        guest_ = grant::memory_domain{frontend_id_, region_.bytes(), info_.table_pages,
                                      info_.activity_slots, region_.fd()};
        if (auto bad = guest_.check()) {
            why = "the front end's grant region: " + *bad;
            return false;
        }
        registry_.add(guest_);
        mapper_.emplace(registry_, params_.backend_id);
        if (features_.rx_copy == copy_side::frontend) {
            if (params_.memory == nullptr) {
                why = "frontend copy needs the back end's shared memory";
                return false;
            }
            memory_slot_ = params_.memory->take_activity_slot(frontend_id_);
            if (!memory_slot_) {
                why = "too many front ends copy from the back end already; use backend copy";
                return false;
            }
        }
        for (std::uint32_t q = 0; q < features_.queues; ++q) {
            if (!build_queue(m, q, why)) {
                return false;
            }
        }
        return true;
    }

    bool build_queue(control::message& m, std::uint32_t q, std::string& why) {
        const queue_info& qi = info_.queues[q];
        const std::string name = "queue " + std::to_string(q) + ": ";
        const auto map_page = [&](grant::grant_ref ref) -> std::byte* {
            grant::grant_mapping map;
            const grant::grant_status s = mapper_->map(frontend_id_, ref, true, map);
            if (s != grant::grant_status::okay) {
                why = name + "cannot map ring grant " + std::to_string(ref) + ": " +
                      std::string(grant::to_string(s));
                return nullptr;
            }
            ring_maps_.push_back(map);
            return reinterpret_cast<std::byte*>(map.page);
        };
        std::byte* tx = map_page(qi.tx_ring_ref);
        std::byte* rx = tx != nullptr ? map_page(qi.rx_ring_ref) : nullptr;
        if (rx == nullptr) {
            return false;
        }
        // A multi-page RX ring: each page is its own grant, and (as our mapper maps each
        // grant where the page lies in the front end's region) they must follow each other.
        for (std::uint32_t k = 1; k < features_.rx_ring_pages; ++k) {
            std::byte* next = map_page(qi.rx_ring_next_refs[k - 1]);
            if (next == nullptr) {
                return false;
            }
            if (next != rx + std::size_t{k} * grant::grant_page_size) {
                why = name + "RX ring page " + std::to_string(k) + " (grant " +
                      std::to_string(qi.rx_ring_next_refs[k - 1]) + ") does not follow page " +
                      std::to_string(k - 1) + " in the region";
                return false;
            }
        }
        std::byte* grants_page = nullptr;
        if (features_.rx_copy == copy_side::frontend &&
            (grants_page = map_page(qi.rx_grants_ref)) == nullptr) {
            return false;
        }
        // Doorbells: one channel per distinct descriptor index (shared without split channels).
        std::array<event::eventfd_channel*, 4> ev{};
        for (std::size_t d = 0; d < 4; ++d) {
            const int idx = qi.events[d];
            for (std::size_t e = 0; e < d; ++e) {
                if (qi.events[e] == idx) {
                    ev[d] = ev[e];
                }
            }
            if (ev[d] == nullptr) {
                const int fd = m.take_fd(static_cast<std::size_t>(idx));
                if (fd < 0) {
                    why = name + "event channel descriptor " + std::to_string(idx) +
                          " is missing or used twice";
                    return false;
                }
                if (!event::eventfd_channel::is_eventfd(fd)) {
                    ::close(fd);
                    why = name + "event channel descriptor " + std::to_string(idx) +
                          " is not an eventfd";
                    return false;
                }
                channels_.push_back(std::make_unique<event::eventfd_channel>(fd));
                ev[d] = channels_.back().get();
            }
        }
        typename queue_type::resources r;
        r.tx_ring_page = {tx, grant::grant_page_size};
        r.rx_ring_page = {rx, std::size_t{features_.rx_ring_pages} * grant::grant_page_size};
        if (grants_page != nullptr) {
            r.rx_grants_page = {grants_page, grant::grant_page_size};
        }
        r.events = ev;
        r.guest_domains = &registry_;
        r.self = params_.backend_id;
        r.guest = frontend_id_;
        r.activity_slot = q;
        r.pool = params_.pool;
        r.memory = params_.memory;
        r.features = features_;
        r.mtu = mtu_;
        if (features_.rx_copy == copy_side::frontend) {
            const std::uint32_t pages =
                backend_memory::ref_pages_for(rx_ring_slots(features_.rx_ring_pages));
            const auto range = params_.memory->take_ref_range(pages);
            if (!range) {
                why = "the back end's grant table is full; use backend copy or a larger table";
                return false;
            }
            ref_ranges_.emplace_back(*range, pages);
            r.ref_range = *range;
        }
        queues_.push_back(std::make_unique<queue_type>(r, params_.queue, params_.moderation));
        return true;
    }

    control::channel channel_;
    backend_params<Moderation> params_;
    grant::domain_id frontend_id_;
    connect_info info_;
    negotiated features_;
    packet::mac_address mac_;
    std::uint32_t mtu_;
    ring::shared_region region_;
    grant::memory_domain guest_{};
    grant::domain_registry registry_{4};
    std::optional<grant::grant_mapper<grant::direct_map>> mapper_;
    std::vector<grant::grant_mapping> ring_maps_;
    std::vector<std::unique_ptr<event::eventfd_channel>> channels_;
    std::optional<std::uint32_t> memory_slot_;
    std::vector<std::pair<grant::grant_ref, std::uint32_t>> ref_ranges_; ///< first, pages
    std::vector<std::unique_ptr<queue_type>> queues_;                    // last: destroyed first
    control::message message_;
    std::string reason_;
};

/// Listens for front ends and runs the back end's side of each handshake without blocking.
/// Drive it from a poll loop: wait for any of fds() to be readable (or a timeout), then step().
template <coalesce::moderation_policy Moderation = coalesce::moderation::none>
class backend_acceptor {
public:
    static constexpr auto handshake_timeout = std::chrono::seconds(5);

    backend_acceptor(const std::string& path, const backend_params<Moderation>& p)
        : listener_(path), params_(p) {
        if (p.pool == nullptr) {
            SPLITNET_THROW(std::invalid_argument("backend_acceptor: params.pool is required"));
        }
        if (p.offer.frontend_copy && p.memory == nullptr) {
            params_.offer.frontend_copy = false; // nothing to grant from
        }
        params_.offer.activity_slots =
            std::max(params_.offer.activity_slots, params_.offer.max_queues);
    }

    /// Descriptors to wait on: the listener and every handshake in progress.
    [[nodiscard]] std::vector<int> fds() const {
        std::vector<int> v{listener_.fd()};
        for (const auto& h : pending_) {
            v.push_back(h.ch.fd());
        }
        return v;
    }

    /// Accepts new front ends (sending each a hello), advances handshakes whose messages have
    /// arrived, and expires stalled ones.
    void step() {
        for (;;) {
            control::channel c = listener_.accept();
            if (!c.valid()) {
                break;
            }
            if (pending_.size() >= params_.max_pending_handshakes) {
                refuse(c, std::to_string(pending_.size()) +
                              " handshakes are already in progress (the acceptor's "
                              "max_pending_handshakes); try again later");
                continue;
            }
            const std::optional<grant::domain_id> id = next_id();
            if (!id) {
                refuse(c, "every front-end id is in use; detach a front end first");
                continue;
            }
            control::message hello(control::message_type::hello, control::link_state::init_wait);
            hello_info{params_.offer, params_.backend_id, *id, params_.mtu}.write(hello);
            if (c.send(hello)) {
                pending_.push_back({std::move(c), *id, std::chrono::steady_clock::now()});
            }
        }
        const auto now = std::chrono::steady_clock::now();
        for (auto it = pending_.begin(); it != pending_.end();) {
            control::message m;
            const control::receive_result r = it->ch.receive(m, std::chrono::milliseconds(0));
            if (r.status == control::receive_status::timeout) {
                if (now - it->since > handshake_timeout) {
                    refuse(it->ch, "the front end did not send its connect message in time");
                    it = pending_.erase(it);
                } else {
                    ++it;
                }
                continue;
            }
            std::string why;
            if (r.status != control::receive_status::ok) {
                why = r.status == control::receive_status::closed ? "closed during the handshake"
                                                                  : r.reason;
            } else if (m.type() != control::message_type::connect) {
                why = "expected a connect message";
            } else if (auto b = backend<Moderation>::accept(it->ch, m, params_, it->id, why)) {
                ids_in_use_.push_back(it->id);
                connected_.push_back(std::move(b));
                it = pending_.erase(it);
                ++stats_.connected;
                continue;
            }
            refuse(it->ch, why);
            it = pending_.erase(it);
        }
    }

    /// The next front end whose handshake completed, or nullptr.
    [[nodiscard]] std::unique_ptr<backend<Moderation>> take_connected() {
        if (connected_.empty()) {
            return nullptr;
        }
        auto b = std::move(connected_.front());
        connected_.pop_front();
        return b;
    }

    /// Makes a front-end id free again (call when its backend is destroyed).
    void release_id(grant::domain_id id) { std::erase(ids_in_use_, id); }

    struct stats_type {
        std::uint64_t connected = 0;
        std::uint64_t refused = 0;
        std::string last_refusal;
    };
    [[nodiscard]] const stats_type& stats() const noexcept { return stats_; }
    [[nodiscard]] const std::string& path() const noexcept { return listener_.path(); }

private:
    struct pending {
        control::channel ch;
        grant::domain_id id;
        std::chrono::steady_clock::time_point since;
    };

    void refuse(control::channel& ch, const std::string& why) {
        if (ch.valid()) {
            ch.send_error(why, control::link_state::closed);
        }
        ++stats_.refused;
        stats_.last_refusal = why;
    }

    /// Front-end ids are 1 .. last_frontend_id (Xen's domain ids below DOMID_FIRST_RESERVED).
    static constexpr grant::domain_id last_frontend_id = 0x7fef;

    /// A front-end id neither the back end, a pending handshake nor a connected front end has;
    /// none when all are taken.
    std::optional<grant::domain_id> next_id() {
        for (std::uint32_t tries = 0; tries < last_frontend_id; ++tries) {
            next_ = next_ >= last_frontend_id || next_ == 0 ? 1 : next_ + 1;
            bool used = next_ == params_.backend_id;
            for (const auto& h : pending_) {
                used = used || h.id == next_;
            }
            for (const auto id : ids_in_use_) {
                used = used || id == next_;
            }
            if (!used) {
                return next_;
            }
        }
        return std::nullopt;
    }

    control::listener listener_;
    backend_params<Moderation> params_;
    std::vector<pending> pending_;
    std::deque<std::unique_ptr<backend<Moderation>>> connected_;
    std::vector<grant::domain_id> ids_in_use_;
    grant::domain_id next_ = 0;
    stats_type stats_;
};

} // namespace splitnet::netif
