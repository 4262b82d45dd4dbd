// Test support for hostile-front-end tests: a "raw" netfront that does the handshake itself and
// then owns everything a real guest shares with its netback (its sealed memfd region, its grant
// table, its ring pages, its eventfds), so a test can write anything there: raw requests, raw
// ring indices, raw grant entries. Nothing here validates anything: that is the point.
//
// Region layout (as netfront's, smaller): [0, table_pages) grant table, table_pages activity
// page, then per queue three pages (TX ring, RX ring, RX grants), then `data_pages` data pages.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <splitnet/detail/shared_access.hpp>
#include <splitnet/event/eventfd_channel.hpp>
#include <splitnet/grant/detail/entry_access.hpp>
#include <splitnet/grant/grant_table.hpp>
#include <splitnet/netif/backend.hpp>
#include <splitnet/netif/connection.hpp>
#include <splitnet/netif/control.hpp>
#include <splitnet/netif/rings.hpp>
#include <splitnet/ring/shared_region.hpp>

namespace splitnet::test {

struct raw_frontend_config {
    grant::domain_id self = 2;       ///< our domain id (the back end's name for us)
    grant::domain_id backend_id = 0; ///< the driver domain, to which we grant
    std::uint32_t table_pages = 1;
    std::uint32_t queues = 1;
    std::uint32_t data_pages = 64;
    bool split_event_channels = true;
    netif::copy_side rx_copy = netif::copy_side::backend;
    ring::ring_idx ring_start = 0; ///< where the rings' indices start (wrap-around tests)
};

class raw_frontend {
public:
    using layout = ring::xen_layout;

    explicit raw_frontend(const raw_frontend_config& cfg = {})
        : cfg_(cfg),
          region_(ring::shared_region::create("splitnet-raw-frontend",
                                              std::size_t{cfg.table_pages} + 1 +
                                                  3 * std::size_t{cfg.queues} + cfg.data_pages)),
          dom_{cfg.self, region_.bytes(), cfg.table_pages, std::max<std::uint32_t>(cfg.queues, 1),
               region_.fd()},
          table_(dom_) {
        for (std::uint32_t q = 0; q < cfg.queues; ++q) {
            queue_state& s = queues_.emplace_back();
            s.tx.emplace(tx_page(q), cfg.ring_start);
            s.rx.emplace(rx_page(q), cfg.ring_start);
            s.tx_ref = table_.grant_access(cfg.backend_id, ring_frame(q, 0), false);
            s.rx_ref = table_.grant_access(cfg.backend_id, ring_frame(q, 1), false);
            if (cfg.rx_copy == netif::copy_side::frontend) {
                s.grants_ref = table_.grant_access(cfg.backend_id, ring_frame(q, 2), false);
            }
            for (auto& e : s.events) {
                e = std::make_unique<event::eventfd_channel>();
            }
        }
    }

    // ---- what we share ---------------------------------------------------------------------

    [[nodiscard]] grant::grant_table& table() noexcept { return table_; }
    [[nodiscard]] const grant::memory_domain& domain() const noexcept { return dom_; }
    [[nodiscard]] const ring::shared_region& region() const noexcept { return region_; }
    [[nodiscard]] grant::domain_id id() const noexcept { return cfg_.self; }
    [[nodiscard]] grant::domain_id backend_id() const noexcept { return cfg_.backend_id; }

    [[nodiscard]] std::uint64_t ring_frame(std::uint32_t q, std::uint32_t which) const noexcept {
        return std::uint64_t{cfg_.table_pages} + 1 + 3 * std::uint64_t{q} + which;
    }
    [[nodiscard]] std::span<std::byte> tx_page(std::uint32_t q = 0) const noexcept {
        return region_.page(ring_frame(q, 0));
    }
    [[nodiscard]] std::span<std::byte> rx_page(std::uint32_t q = 0) const noexcept {
        return region_.page(ring_frame(q, 1));
    }
    [[nodiscard]] std::span<std::byte> rx_grants_page(std::uint32_t q = 0) const noexcept {
        return region_.page(ring_frame(q, 2));
    }
    /// Grant frame of data page i.
    [[nodiscard]] std::uint64_t data_frame(std::uint32_t i) const noexcept {
        return std::uint64_t{cfg_.table_pages} + 1 + 3 * std::uint64_t{cfg_.queues} + i;
    }
    [[nodiscard]] std::uint32_t data_pages() const noexcept { return cfg_.data_pages; }
    [[nodiscard]] std::uint8_t* data(std::uint32_t i) const noexcept {
        return reinterpret_cast<std::uint8_t*>(region_.page(data_frame(i)).data());
    }

    [[nodiscard]] grant::grant_ref tx_ring_ref(std::uint32_t q = 0) const noexcept {
        return queues_[q].tx_ref;
    }
    [[nodiscard]] grant::grant_ref rx_ring_ref(std::uint32_t q = 0) const noexcept {
        return queues_[q].rx_ref;
    }
    [[nodiscard]] netif::tx_front_ring<>& tx(std::uint32_t q = 0) noexcept {
        return *queues_[q].tx;
    }
    [[nodiscard]] netif::rx_front_ring<>& rx(std::uint32_t q = 0) noexcept {
        return *queues_[q].rx;
    }
    [[nodiscard]] event::eventfd_channel& event(std::uint32_t q, std::size_t dir) noexcept {
        return *queues_[q].events[dir];
    }

    /// Grants data page i to `to` (the back end unless said otherwise).
    grant::grant_ref grant_page(std::uint32_t i, bool readonly,
                                std::optional<grant::domain_id> to = std::nullopt) {
        return table_.grant_access(to.value_or(cfg_.backend_id), data_frame(i), readonly);
    }
    /// Writes a grant entry as it is (any flags, any domain, any frame).
    void write_entry(grant::grant_ref ref, const grant::grant_entry& e) const noexcept {
        grant::detail::publish_entry(dom_.entry(ref), e);
    }

    /// Stores a raw 32-bit value into a ring page (an index or part of a slot).
    static void poke(std::span<std::byte> page, std::size_t offset, std::uint32_t v) noexcept {
        splitnet::detail::store_release(*reinterpret_cast<std::uint32_t*>(page.data() + offset), v);
    }
    [[nodiscard]] static std::uint32_t peek(std::span<std::byte> page,
                                            std::size_t offset) noexcept {
        return splitnet::detail::load_acquire(
            *reinterpret_cast<const std::uint32_t*>(page.data() + offset));
    }

    // ---- traffic, the honest way (the bytes in the requests are the test's) -----------------

    /// Writes requests behind req_prod and publishes them; kicks the back end.
    std::size_t send_tx(std::span<const netif::tx_request> reqs, std::uint32_t q = 0) {
        const std::size_t n = tx(q).put_requests(reqs);
        (void)tx(q).push_requests();
        event(q, netif::event_dir::tx_to_back).notify();
        return n;
    }
    std::vector<netif::tx_response> tx_responses(std::uint32_t q = 0) {
        std::vector<netif::tx_response> out(tx(q).size());
        out.resize(tx(q).get_responses(out));
        return out;
    }
    std::size_t post_rx(std::span<const netif::rx_request> reqs, std::uint32_t q = 0) {
        const std::size_t n = rx(q).put_requests(reqs);
        (void)rx(q).push_requests();
        event(q, netif::event_dir::rx_to_back).notify();
        return n;
    }
    std::vector<netif::rx_response> rx_responses(std::uint32_t q = 0) {
        std::vector<netif::rx_response> out(rx(q).size());
        out.resize(rx(q).get_responses(out));
        return out;
    }

    // ---- the handshake ---------------------------------------------------------------------

    [[nodiscard]] netif::connect_info connect_info() const {
        netif::connect_info ci;
        ci.request.rx_copy = cfg_.rx_copy;
        ci.request.queues = cfg_.queues;
        ci.request.split_event_channels = cfg_.split_event_channels;
        ci.region = region_.fd();
        ci.table_pages = cfg_.table_pages;
        ci.activity_slots = dom_.activity_slots;
        ci.mac = packet::mac_address::from_u64(0x0200'0000'0000ULL | cfg_.self);
        ci.mtu = 1500;
        for (std::uint32_t q = 0; q < cfg_.queues; ++q) {
            netif::queue_info qi;
            qi.tx_ring_ref = queues_[q].tx_ref;
            qi.rx_ring_ref = queues_[q].rx_ref;
            qi.rx_grants_ref = queues_[q].grants_ref;
            for (std::size_t d = 0; d < 4; ++d) {
                qi.events[d] = queues_[q].events[d]->fd();
            }
            ci.queues.push_back(qi);
        }
        return ci;
    }

    /// The connect message this front end would send; `edit` may change anything in it.
    [[nodiscard]] netif::control::message
    connect_message(const std::function<void(netif::connect_info&)>& edit_info = {},
                    const std::function<void(netif::control::message&)>& edit = {}) const {
        netif::control::message m(netif::control::message_type::connect,
                                  netif::control::link_state::initialised);
        netif::connect_info ci = connect_info();
        if (edit_info) {
            edit_info(ci);
        }
        ci.write(m);
        if (edit) {
            edit(m);
        }
        return m;
    }

    /// Our end of the control channel once connected (tests read the back end's error from it).
    [[nodiscard]] netif::control::channel& control() noexcept { return control_; }
    void set_control(netif::control::channel ch) noexcept { control_ = std::move(ch); }

    /// The reason in the next error message the back end sent us, or "" if none within `wait`.
    [[nodiscard]] std::string
    backend_error(std::chrono::milliseconds wait = std::chrono::milliseconds(100)) const {
        for (;;) {
            netif::control::message m;
            const auto r = control_.receive(m, wait);
            if (r.status != netif::control::receive_status::ok) {
                return {};
            }
            if (m.type() == netif::control::message_type::error) {
                return std::string(m.get("reason").value_or("(no reason)"));
            }
        }
    }

private:
    struct queue_state {
        std::optional<netif::tx_front_ring<>> tx;
        std::optional<netif::rx_front_ring<>> rx;
        grant::grant_ref tx_ref = grant::invalid_ref;
        grant::grant_ref rx_ref = grant::invalid_ref;
        grant::grant_ref grants_ref = grant::invalid_ref;
        std::array<std::unique_ptr<event::eventfd_channel>, 4> events;
    };

    raw_frontend_config cfg_;
    ring::shared_region region_;
    grant::memory_domain dom_;
    grant::grant_table table_;
    std::vector<queue_state> queues_;
    netif::control::channel control_;
};

/// What a direct handshake produced: the back end, or why it refused.
template <coalesce::moderation_policy M>
struct raw_accept_result {
    std::unique_ptr<netif::backend<M>> back;
    std::string why;
};

/// Runs the handshake for `raw` against back-end parameters `p` without an acceptor: the raw
/// front end sends `m` over a fresh socket pair, the back end's side receives it and calls
/// backend::accept (refusing with the reason as the acceptor does). The raw front end keeps its
/// end of the channel.
template <coalesce::moderation_policy M>
raw_accept_result<M> accept_raw(const netif::backend_params<M>& p, raw_frontend& raw,
                                const netif::control::message& m) {
    auto [b, f] = netif::control::channel::pair();
    raw_accept_result<M> out;
    if (!f.send(m)) {
        out.why = "the test could not send its connect message";
        return out;
    }
    netif::control::message got;
    const auto r = b.receive(got, std::chrono::milliseconds(1000));
    if (r.status != netif::control::receive_status::ok) {
        out.why = "receive: " + r.reason;
    } else {
        out.back = netif::backend<M>::accept(b, got, p, raw.id(), out.why);
    }
    if (!out.back) {
        b.send_error(out.why, netif::control::link_state::closed);
    }
    raw.set_control(std::move(f));
    return out;
}

template <coalesce::moderation_policy M>
raw_accept_result<M> accept_raw(const netif::backend_params<M>& p, raw_frontend& raw) {
    return accept_raw(p, raw, raw.connect_message());
}

/// Descriptors open in this process, as /proc/self/fd lists them (for leak checks; the one the
/// listing itself uses is counted every time).
inline std::size_t open_fds() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
        ++n;
    }
    return n;
}

} // namespace splitnet::test
