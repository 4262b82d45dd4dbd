// SPDX-License-Identifier: MIT
// splitnet/netif/frontend.hpp: netfront: a guest's connection to a netback over the control
// channel, its grant region and its queues.
//
// The front end owns the memory it shares, as a Xen guest does: one sealed memfd holding
//   [0, table_pages)                 its grant table (twice the queue's TX and RX slots)
//   table_pages                      its activity page (the back end's copiers publish there)
//   then per queue q:                TX ring (1 page), RX ring (1, 2 or 4 pages: negotiated),
//                                    RX grant page (frontend copy)
//   then the buffer pool's arena     one 4 KiB page per buffer: RX buffers posted to the back
//                                    end, and TX frames (a TAP port reading into this pool
//                                    hands over frames that can be granted as they are)
// Ring pages reach the back end as grants (tx-ring-ref, rx-ring-ref); everything else it may
// touch is granted per packet, range-limited for TX.
//
// connect() runs the front end's side of the handshake (connection.hpp) and throws
// std::runtime_error with the back end's reason, or with what to check, when it fails.
//
// Threading: one thread drives a frontend and all its queues (they share its grant table).
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <splitnet/event/eventfd_channel.hpp>
#include <splitnet/grant/grant_copy.hpp>
#include <splitnet/grant/grant_table.hpp>
#include <splitnet/grant/memory_domain.hpp>
#include <splitnet/netif/connection.hpp>
#include <splitnet/netif/control.hpp>
#include <splitnet/netif/frontend_queue.hpp>
#include <splitnet/netif/rings.hpp>
#include <splitnet/packet/buffer_pool.hpp>
#include <splitnet/ring/shared_region.hpp>

namespace splitnet::netif {

struct frontend_config {
    frontend_request request{}; ///< features wanted, queues, copy side
    packet::mac_address mac{};  ///< zero: a random locally administered address
    std::uint32_t mtu = 1500;
    /// 4 KiB pages per queue in the pool with a one-page RX ring; a larger ring adds one per
    /// extra slot (backend copy posts a page in each).
    std::uint32_t buffers_per_queue = 1024;
    std::chrono::milliseconds handshake_timeout{5000};
};

class frontend {
public:
    /// Connects to the back end listening at `path`.
    [[nodiscard]] static std::unique_ptr<frontend> connect(const std::string& path,
                                                           const frontend_config& cfg) {
        return connect(control::channel::connect(path), cfg);
    }

    /// Runs the handshake over a connected channel.
    [[nodiscard]] static std::unique_ptr<frontend> connect(control::channel ch,
                                                           const frontend_config& cfg) {
        std::unique_ptr<frontend> f(new frontend(std::move(ch), cfg));
        f->handshake();
        return f;
    }

    frontend(const frontend&) = delete;
    frontend& operator=(const frontend&) = delete;
    ~frontend() {
        if (connected()) {
            control::message bye(control::message_type::state, control::link_state::closed);
            channel_.send(bye);
        }
        queues_.clear(); // grants ended, buffers back in the pool
    }

    [[nodiscard]] std::uint32_t queue_count() const noexcept {
        return static_cast<std::uint32_t>(queues_.size());
    }
    [[nodiscard]] frontend_queue& queue(std::uint32_t q) noexcept { return *queues_[q]; }
    [[nodiscard]] packet::buffer_pool& pool() noexcept { return *pool_; }
    [[nodiscard]] const negotiated& features() const noexcept { return features_; }
    [[nodiscard]] const hello_info& hello() const noexcept { return hello_; }
    [[nodiscard]] const packet::mac_address& mac() const noexcept { return cfg_.mac; }
    [[nodiscard]] std::uint32_t mtu() const noexcept { return cfg_.mtu; }
    [[nodiscard]] int control_fd() const noexcept { return channel_.fd(); }
    [[nodiscard]] const grant::grant_table& grants() const noexcept { return *grants_; }

    [[nodiscard]] bool connected() const noexcept { return reason_.empty(); }
    [[nodiscard]] const std::string& disconnect_reason() const noexcept { return reason_; }

    /// Reads the control channel without blocking and checks the queues; returns connected().
    bool poll_control() {
        if (!connected()) {
            return false;
        }
        for (auto& q : queues_) {
            if (q->broken()) {
                disconnect("the back end broke the protocol: " + q->fault());
                return false;
            }
        }
        for (;;) {
            control::message m;
            const control::receive_result r = channel_.receive(m, std::chrono::milliseconds(0));
            if (r.status == control::receive_status::timeout) {
                return true;
            }
            if (r.status == control::receive_status::closed) {
                reason_ = "the back end closed the control channel";
                return false;
            }
            if (r.status != control::receive_status::ok) {
                disconnect("control channel: " + r.reason);
                return false;
            }
            if (m.type() == control::message_type::error) {
                reason_ = "the back end disconnected us: " +
                          std::string(m.get("reason").value_or("(no reason)"));
                return false;
            }
            if (m.state() == control::link_state::closing ||
                m.state() == control::link_state::closed) {
                reason_ = "the back end is " + std::string(control::to_string(m.state()));
                return false;
            }
        }
    }

    /// Tells the back end we are leaving; the queues stop being usable.
    void disconnect(const std::string& why) {
        if (!connected()) {
            return;
        }
        reason_ = why.empty() ? std::string("closed") : why;
        channel_.send_error(reason_, control::link_state::closing);
    }

private:
    frontend(control::channel ch, const frontend_config& cfg) : channel_(std::move(ch)), cfg_(cfg) {
        if (cfg_.mac.is_zero()) {
            std::random_device rd;
            const std::uint64_t r = (std::uint64_t{rd()} << 32) | rd();
            cfg_.mac =
                packet::mac_address::from_u64((r & 0x0000'ffff'ffffULL) | 0x0200'0000'0000ULL);
        }
        if (cfg_.request.queues == 0 || cfg_.request.queues > max_queues_limit) {
            SPLITNET_THROW(std::invalid_argument("frontend: queues must be 1.." +
                                                 std::to_string(max_queues_limit)));
        }
    }

    [[noreturn]] void fail(const std::string& why) {
        channel_.send_error(why, control::link_state::closed);
        SPLITNET_THROW(std::runtime_error("netfront: " + why));
    }

    control::message expect(control::message_type t, const char* what) {
        control::message m;
        const control::receive_result r = channel_.receive(m, cfg_.handshake_timeout);
        if (r.status == control::receive_status::timeout) {
            fail(std::string("the back end sent no ") + what + " in time");
        }
        if (r.status == control::receive_status::closed) {
            SPLITNET_THROW(std::runtime_error(
                std::string("netfront: the back end closed the connection before its ") + what));
        }
        if (r.status != control::receive_status::ok) {
            fail(r.reason);
        }
        if (m.type() == control::message_type::error) {
            SPLITNET_THROW(std::runtime_error("netfront: the back end refused us: " +
                                              std::string(m.get("reason").value_or("?"))));
        }
        if (m.type() != t) {
            fail(std::string("expected the back end's ") + what);
        }
        return m;
    }

    void handshake() {
        control::message hm = expect(control::message_type::hello, "hello");
        std::string why;
        auto h = hello_info::read(hm, why);
        if (!h) {
            fail(why);
        }
        hello_ = *h;
        frontend_request& req = cfg_.request;
        req.split_event_channels = req.split_event_channels && hello_.offer.split_event_channels;
        if (req.rx_ring_order > max_rx_ring_page_order) {
            fail("an RX ring of " + std::to_string(1U << req.rx_ring_order) +
                 " pages was asked for; at most " + std::to_string(max_rx_ring_pages) +
                 " are supported");
        }
        // A larger RX ring is an optimisation: take what the back end offers (as blkfront).
        req.rx_ring_order = std::min(req.rx_ring_order, hello_.offer.max_rx_ring_order);
        if (req.queues > hello_.offer.max_queues) {
            fail("the back end offers at most " + std::to_string(hello_.offer.max_queues) +
                 " queues; " + std::to_string(req.queues) + " were asked for");
        }
        if (req.rx_copy == copy_side::frontend && !hello_.offer.frontend_copy) {
            fail("the back end does not offer frontend copy (start it with --copy frontend)");
        }
        if (cfg_.mtu > hello_.mtu) {
            fail("mtu " + std::to_string(cfg_.mtu) + " exceeds the back end's " +
                 std::to_string(hello_.mtu));
        }
        auto agreed = negotiate(hello_.offer, req, why);
        if (!agreed) {
            fail(why);
        }
        features_ = *agreed;
        build_region();

        control::message cm(control::message_type::connect, control::link_state::initialised);
        connect_info ci;
        ci.request = req;
        ci.region = region_.fd();
        ci.table_pages = domain_.table_pages;
        ci.activity_slots = domain_.activity_slots;
        ci.mac = cfg_.mac;
        ci.mtu = cfg_.mtu;
        ci.queues = queue_infos_;
        ci.write(cm);
        if (!channel_.send(cm)) {
            SPLITNET_THROW(std::runtime_error("netfront: the back end went away"));
        }
        control::message done = expect(control::message_type::connected, "connected message");
        auto cd = connected_info::read(done, features_.rx_copy == copy_side::frontend, why);
        if (!cd) {
            fail(why);
        }
        if (cd->frontend_copy) {
            // The back end's memory is ours to read only; our activity slot is ours to write.
            backend_region_ = ring::shared_region::try_attach(
                done.take_fd(static_cast<std::size_t>(cd->region)), why, false);
            if (!backend_region_.valid()) {
                fail(why);
            }
            activity_page_ = ring::shared_region::try_attach(
                done.take_fd(static_cast<std::size_t>(cd->activity)), why);
            if (!activity_page_.valid()) {
                fail(why);
            }
            grant::memory_domain bd{hello_.backend_id, backend_region_.bytes(), cd->table_pages,
                                    cd->activity_slots, backend_region_.fd()};
            if (auto bad = bd.check()) {
                fail("the back end's region: " + *bad);
            }
            bd.activity_at[cd->copy_slot] =
                reinterpret_cast<std::uint32_t*>(activity_page_.bytes().data());
            // The back end waits on this slot only for what it granted us (backend_memory.hpp).
            backend_slot_owners_.fill(grant::invalid_domain);
            backend_slot_owners_[cd->copy_slot] = hello_.frontend_id;
            bd.activity_owners = backend_slot_owners_.data();
            backend_domains_.add(bd);
            copier_.emplace(backend_domains_, hello_.frontend_id, cd->copy_slot);
            for (auto& q : queues_) {
                q->set_copier(&*copier_);
            }
        }
        control::message up(control::message_type::state, control::link_state::connected);
        channel_.send(up);
    }

    void build_region() {
        const std::uint32_t nq = features_.queues;
        const std::uint32_t rx_pages = features_.rx_ring_pages;
        const std::uint32_t per_queue = 2 + rx_pages; // TX ring, RX ring, RX grant page
        // References: every TX and RX slot's twice over (granted, and ended but waiting).
        const std::uint32_t table_pages = 2 * (1 + rx_pages) * nq;
        const std::uint32_t ring_pages = per_queue * nq;
        const std::uint32_t buffers =
            (cfg_.buffers_per_queue + rx_ring_slots(rx_pages) - rx_ring_slots(1)) * nq;
        region_ = ring::shared_region::create("splitnet-frontend",
                                              std::size_t{table_pages} + 1 + ring_pages + buffers);
        const std::uint32_t slots = std::clamp<std::uint32_t>(
            std::max(nq, hello_.offer.activity_slots), 1, grant::max_activity_slots);
        domain_ = {hello_.frontend_id, region_.bytes(), table_pages, slots, region_.fd()};
        grants_.emplace(domain_);
        const std::size_t first_ring = table_pages + 1;
        pool_.emplace(
            region_.pages(first_ring + ring_pages, buffers),
            packet::buffer_pool_config{
                .frame_count = buffers, .frame_size = 4096, .headroom = 256, .populate = false});
        for (std::uint32_t q = 0; q < nq; ++q) {
            const std::size_t p = first_ring + std::size_t{per_queue} * q;
            queue_info qi;
            qi.tx_ring_ref = grants_->grant_access(hello_.backend_id, p, false);
            qi.rx_ring_ref = grants_->grant_access(hello_.backend_id, p + 1, false);
            for (std::uint32_t k = 1; k < rx_pages; ++k) {
                qi.rx_ring_next_refs[k - 1] =
                    grants_->grant_access(hello_.backend_id, p + 1 + k, false);
            }
            const std::size_t grants_page = p + 1 + rx_pages;
            if (features_.rx_copy == copy_side::frontend) {
                qi.rx_grants_ref = grants_->grant_access(hello_.backend_id, grants_page, false);
            }
            const std::size_t nch = features_.split_event_channels ? 4 : 2;
            std::array<event::eventfd_channel*, 4> ev{};
            for (std::size_t d = 0; d < nch; ++d) {
                channels_.push_back(std::make_unique<event::eventfd_channel>());
                ev[d] = channels_.back().get();
            }
            if (!features_.split_event_channels) {
                ev[event_dir::rx_to_back] = ev[event_dir::tx_to_back];
                ev[event_dir::rx_to_front] = ev[event_dir::tx_to_front];
            }
            for (std::size_t d = 0; d < 4; ++d) {
                qi.events[d] = ev[d]->fd();
            }
            queue_infos_.push_back(qi);
            frontend_queue::resources r;
            r.tx_ring_page = region_.page(p);
            r.rx_ring_page = region_.pages(p + 1, rx_pages);
            if (features_.rx_copy == copy_side::frontend) {
                r.rx_grants_page = region_.page(grants_page);
            }
            r.events = ev;
            r.grants = &*grants_;
            r.self = &domain_;
            r.backend = hello_.backend_id;
            r.pool = &*pool_;
            r.features = features_;
            r.port_id = static_cast<std::uint16_t>(q);
            queues_.push_back(std::make_unique<frontend_queue>(r));
        }
    }

    control::channel channel_;
    frontend_config cfg_;
    hello_info hello_{};
    negotiated features_{};
    ring::shared_region region_;
    grant::memory_domain domain_{};
    std::optional<grant::grant_table> grants_;
    std::optional<packet::buffer_pool> pool_;
    std::vector<std::unique_ptr<event::eventfd_channel>> channels_;
    std::vector<queue_info> queue_infos_;
    ring::shared_region backend_region_;
    ring::shared_region activity_page_;
    std::array<grant::domain_id, grant::max_activity_slots> backend_slot_owners_{};
    grant::domain_registry backend_domains_{4};
    std::optional<grant::grant_copier> copier_;
    std::vector<std::unique_ptr<frontend_queue>> queues_; // last: destroyed first
    std::string reason_;
};

} // namespace splitnet::netif
