// SPDX-License-Identifier: MIT
// splitnet/netif/connection.hpp: what the three handshake messages carry besides features, and
// their keys, shared by both ends so the names live in one place.
//
//   back end  -> hello      (init_wait)    offer, backend-id, frontend-id, mtu
//   front end -> connect    (initialised)  request, grant region, mac, mtu, per queue:
//                                          tx-ring-ref, rx-ring-ref, [rx-ring-ref1..3],
//                                          [rx-grants-ref], event-channel or
//                                          event-channel-tx/-rx
//   back end  -> connected  (connected)    [its own grant region, for frontend copy]
//
// As in Xen, per-queue keys sit under "queue-N/" when there are two or more queues and at the
// top level otherwise. A ring reference is a grant reference to a page of the front end's
// region; an RX ring of 2^rx-ring-page-order pages names page k in rx-ring-refK (page 0 in
// rx-ring-ref), and its pages must follow each other in that region. An event channel is a pair of
// eventfds "to-back,to-front" given as indices into the message's descriptors (one eventfd per
// direction: an eventfd has one counter).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <splitnet/grant/grant_entry.hpp>
#include <splitnet/grant/memory_domain.hpp>
#include <splitnet/netif/control.hpp>
#include <splitnet/netif/features.hpp>
#include <splitnet/packet/ethernet.hpp>

namespace splitnet::netif {

/// Which doorbell: indices into queue_info::events.
namespace event_dir {
inline constexpr std::size_t tx_to_back = 0;  ///< front end posted TX requests
inline constexpr std::size_t tx_to_front = 1; ///< back end posted TX responses
inline constexpr std::size_t rx_to_back = 2;  ///< front end posted RX requests (rx-notify)
inline constexpr std::size_t rx_to_front = 3; ///< back end posted RX responses
} // namespace event_dir

[[nodiscard]] inline std::string queue_prefix(std::uint32_t q, std::uint32_t queues) {
    return queues > 1 ? "queue-" + std::to_string(q) + "/" : std::string();
}

struct hello_info {
    backend_offer offer;
    grant::domain_id backend_id = 0;
    grant::domain_id frontend_id = 1;
    std::uint32_t mtu = 1500;

    void write(control::message& m) const {
        offer.write(m);
        m.set("backend-id", backend_id).set("frontend-id", frontend_id).set("mtu", mtu);
    }
    [[nodiscard]] static std::optional<hello_info> read(const control::message& m,
                                                        std::string& why) {
        hello_info h;
        h.offer = backend_offer::read(m);
        const auto be = m.get_uint("backend-id", grant::invalid_domain - 1);
        const auto fe = m.get_uint("frontend-id", grant::invalid_domain - 1);
        const auto mtu = m.get_uint("mtu", 65535);
        if (!be || !fe || *be == *fe || !mtu || *mtu < 68) {
            why = "the back end's hello lacks valid backend-id, frontend-id or mtu";
            return std::nullopt;
        }
        h.backend_id = static_cast<grant::domain_id>(*be);
        h.frontend_id = static_cast<grant::domain_id>(*fe);
        h.mtu = static_cast<std::uint32_t>(*mtu);
        return h;
    }
};

/// One queue's rings and doorbells.
struct queue_info {
    grant::grant_ref tx_ring_ref = grant::invalid_ref;
    grant::grant_ref rx_ring_ref = grant::invalid_ref; ///< the RX ring's first page
    std::array<grant::grant_ref, max_rx_ring_pages - 1> rx_ring_next_refs{}; ///< its others
    grant::grant_ref rx_grants_ref = grant::invalid_ref; ///< frontend copy: grant refs per slot
    /// Event descriptors by event_dir: the fds themselves when writing; after read(), indices
    /// into the message's descriptors. Without split event channels the TX pair serves both.
    std::array<int, 4> events{-1, -1, -1, -1};
};

struct connect_info {
    frontend_request request;
    int region = -1; ///< memfd of the front end's grant region (an index after read())
    std::uint32_t table_pages = 1;
    std::uint32_t activity_slots = 1;
    packet::mac_address mac{};
    std::uint32_t mtu = 1500;
    std::vector<queue_info> queues;

    /// Adds the keys and the descriptors to `m`.
    void write(control::message& m) const {
        request.write(m);
        m.set("grant-region", m.add_fd(region));
        m.set("grant-table-pages", table_pages).set("grant-activity-slots", activity_slots);
        m.set("mac", packet::to_string(mac)).set("mtu", mtu);
        const auto n = static_cast<std::uint32_t>(queues.size());
        for (std::uint32_t q = 0; q < n; ++q) {
            const queue_info& qi = queues[q];
            const std::string p = queue_prefix(q, n);
            m.set(p + "tx-ring-ref", qi.tx_ring_ref).set(p + "rx-ring-ref", qi.rx_ring_ref);
            for (std::uint32_t k = 1;
                 k < (1U << std::min(request.rx_ring_order, max_rx_ring_page_order)); ++k) {
                m.set(p + "rx-ring-ref" + std::to_string(k), qi.rx_ring_next_refs[k - 1]);
            }
            if (qi.rx_grants_ref != grant::invalid_ref) {
                m.set(p + "rx-grants-ref", qi.rx_grants_ref);
            }
            const auto pair = [&](std::size_t a, std::size_t b) {
                return std::to_string(m.add_fd(qi.events[a])) + "," +
                       std::to_string(m.add_fd(qi.events[b]));
            };
            if (request.split_event_channels) {
                m.set(p + "event-channel-tx", pair(event_dir::tx_to_back, event_dir::tx_to_front));
                m.set(p + "event-channel-rx", pair(event_dir::rx_to_back, event_dir::rx_to_front));
            } else {
                m.set(p + "event-channel", pair(event_dir::tx_to_back, event_dir::tx_to_front));
            }
        }
    }

    /// Reads and checks a connect message; descriptors stay in `m` (take them by index).
    [[nodiscard]] static std::optional<connect_info> read(const control::message& m,
                                                          std::string& why) {
        auto req = frontend_request::read(m, why);
        if (!req) {
            return std::nullopt;
        }
        connect_info c;
        c.request = *req;
        const auto region = m.get_fd_index("grant-region");
        const auto pages = m.get_uint("grant-table-pages", 1024);
        const auto slots = m.get_uint("grant-activity-slots", grant::max_activity_slots);
        const auto mac = m.get("mac") ? packet::parse_mac(*m.get("mac")) : std::nullopt;
        const auto mtu = m.get_uint("mtu", 65535);
        if (!region || !pages || *pages == 0 || !slots || *slots == 0 || !mac || !mtu ||
            *mtu < 68) {
            why = "the connect message lacks a valid grant-region descriptor, "
                  "grant-table-pages, grant-activity-slots, mac or mtu";
            return std::nullopt;
        }
        if (mac->is_multicast() || mac->is_zero()) {
            why = "the front end's mac " + packet::to_string(*mac) + " is not a unicast address";
            return std::nullopt;
        }
        c.region = static_cast<int>(*region);
        c.table_pages = static_cast<std::uint32_t>(*pages);
        c.activity_slots = static_cast<std::uint32_t>(*slots);
        c.mac = *mac;
        c.mtu = static_cast<std::uint32_t>(*mtu);
        for (std::uint32_t q = 0; q < c.request.queues; ++q) {
            const std::string p = queue_prefix(q, c.request.queues);
            queue_info qi;
            const auto tx = m.get_uint(p + "tx-ring-ref", grant::invalid_ref - 1);
            const auto rx = m.get_uint(p + "rx-ring-ref", grant::invalid_ref - 1);
            if (!tx || !rx) {
                why = "queue " + std::to_string(q) + " lacks " + p + "tx-ring-ref or " + p +
                      "rx-ring-ref";
                return std::nullopt;
            }
            qi.tx_ring_ref = static_cast<grant::grant_ref>(*tx);
            qi.rx_ring_ref = static_cast<grant::grant_ref>(*rx);
            for (std::uint32_t k = 1; k < (1U << c.request.rx_ring_order); ++k) {
                const std::string key = p + "rx-ring-ref" + std::to_string(k);
                const auto more = m.get_uint(key, grant::invalid_ref - 1);
                if (!more) {
                    why = "queue " + std::to_string(q) + " lacks " + key + " of its " +
                          std::to_string(1U << c.request.rx_ring_order) + "-page RX ring";
                    return std::nullopt;
                }
                qi.rx_ring_next_refs[k - 1] = static_cast<grant::grant_ref>(*more);
            }
            if (c.request.rx_copy == copy_side::frontend) {
                const auto g = m.get_uint(p + "rx-grants-ref", grant::invalid_ref - 1);
                if (!g) {
                    why = "queue " + std::to_string(q) + " asks for frontend copy without " + p +
                          "rx-grants-ref";
                    return std::nullopt;
                }
                qi.rx_grants_ref = static_cast<grant::grant_ref>(*g);
            }
            const bool ok =
                c.request.split_event_channels
                    ? read_pair(m, p + "event-channel-tx", qi.events[event_dir::tx_to_back],
                                qi.events[event_dir::tx_to_front]) &&
                          read_pair(m, p + "event-channel-rx", qi.events[event_dir::rx_to_back],
                                    qi.events[event_dir::rx_to_front])
                    : read_pair(m, p + "event-channel", qi.events[event_dir::tx_to_back],
                                qi.events[event_dir::tx_to_front]);
            if (!ok) {
                why = "queue " + std::to_string(q) + " lacks valid event channel descriptors";
                return std::nullopt;
            }
            if (!c.request.split_event_channels) {
                qi.events[event_dir::rx_to_back] = qi.events[event_dir::tx_to_back];
                qi.events[event_dir::rx_to_front] = qi.events[event_dir::tx_to_front];
            }
            c.queues.push_back(qi);
        }
        return c;
    }

private:
    /// "a,b": two distinct descriptor indices present in the message.
    static bool read_pair(const control::message& m, const std::string& key, int& a, int& b) {
        const auto v = m.get(key);
        if (!v) {
            return false;
        }
        const std::size_t comma = v->find(',');
        if (comma == std::string_view::npos) {
            return false;
        }
        const auto x = control::parse_decimal(v->substr(0, comma), m.fd_count());
        const auto y = control::parse_decimal(v->substr(comma + 1), m.fd_count());
        if (!x || !y || *x >= m.fd_count() || *y >= m.fd_count() || *x == *y) {
            return false;
        }
        a = static_cast<int>(*x);
        b = static_cast<int>(*y);
        return true;
    }
};

/// The back end's answer; with frontend copy it hands over its own grant region (read-only)
/// and the page holding the front end's activity slot (writable).
struct connected_info {
    bool frontend_copy = false;
    int region = -1;   ///< the back end's region, a read-only memfd (an index after read())
    int activity = -1; ///< the page of the front end's activity slot (an index after read())
    std::uint32_t table_pages = 0;
    std::uint32_t activity_slots = 0;
    std::uint32_t copy_slot = 0; ///< the front end's activity slot in that region

    void write(control::message& m) const {
        if (!frontend_copy) {
            return;
        }
        m.set("backend-grant-region", m.add_fd(region));
        m.set("backend-grant-activity", m.add_fd(activity));
        m.set("backend-grant-table-pages", table_pages);
        m.set("backend-grant-activity-slots", activity_slots);
        m.set("copy-activity-slot", copy_slot);
    }
    [[nodiscard]] static std::optional<connected_info> read(const control::message& m,
                                                            bool frontend_copy, std::string& why) {
        connected_info c;
        c.frontend_copy = frontend_copy;
        if (!frontend_copy) {
            return c;
        }
        const auto region = m.get_fd_index("backend-grant-region");
        const auto activity = m.get_fd_index("backend-grant-activity");
        const auto pages = m.get_uint("backend-grant-table-pages", 1024);
        const auto slots = m.get_uint("backend-grant-activity-slots", grant::max_activity_slots);
        const auto slot = m.get_uint("copy-activity-slot", grant::max_activity_slots);
        if (!region || !activity || *activity == *region || !pages || !slots || !slot ||
            *slot >= *slots) {
            why = "the back end's connected message lacks its grant region for frontend copy";
            return std::nullopt;
        }
        c.region = static_cast<int>(*region);
        c.activity = static_cast<int>(*activity);
        c.table_pages = static_cast<std::uint32_t>(*pages);
        c.activity_slots = static_cast<std::uint32_t>(*slots);
        c.copy_slot = static_cast<std::uint32_t>(*slot);
        return c;
    }
};

} // namespace splitnet::netif
