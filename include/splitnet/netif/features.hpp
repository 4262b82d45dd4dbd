// SPDX-License-Identifier: MIT
// splitnet/netif/features.hpp: what a netback offers, what a netfront asks for, and what they
// agree on, under netif's xenstore key names (xen/include/public/io/netif.h and what Linux's
// xen-netback/xenbus.c reads and writes).
//
// Direction matters, as in Xen: the back end's feature-sg / feature-gso-* say what it accepts on
// the TX ring (guest to back end); the front end's say what it accepts on the RX ring (back end
// to guest). Checksum offload is on for IPv4 unless the front end writes feature-no-csum-offload
// and on for IPv6 when the receiving side wrote feature-ipv6-csum-offload. Page flipping is gone:
// request-rx-copy=1 is required (Linux netback refuses a front end without it).
//
// splitnet extensions, named in the same style:
//   feature-rx-frontend-copy / request-rx-frontend-copy: the receiving guest copies RX data out
//     of read-only, range-limited grants of the back end's buffers on its own CPU (Netchannel2's
//     receiver-side copy, seed 002), instead of the back end copying into guest pages;
//   grant-activity-slots: copy workers of the back end that may copy from one front end's
//     memory at once (each needs an activity slot in its grant region, grant_copy.hpp);
//   max-rx-ring-page-order / rx-ring-page-order: an RX ring of 2^order pages (blkif's
//     max-ring-page-order, for netif's RX ring only): 1024 slots at order 2 hold about 22
//     aggregates of 64 KiB when the guest copies (a slot per wire segment), against 5 in one
//     page. The TX ring stays one page.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include <splitnet/netif/control.hpp>

namespace splitnet::netif {

/// Who copies received data into the guest.
enum class copy_side : std::uint8_t {
    backend = 0,  ///< netback grant-copies into buffers the front end posted (Xen's default)
    frontend = 1, ///< netback grants its buffers read-only; netfront copies (Netchannel2)
};

/// Limits that hold whatever is negotiated.
inline constexpr std::uint32_t max_queues_limit = 16;
/// RX rings of up to 4 pages: 1024 slots, whose frontend-copy grant references (4 bytes each)
/// fill the one rx-grants page.
inline constexpr std::uint32_t max_rx_ring_page_order = 2;
inline constexpr std::uint32_t max_rx_ring_pages = 1U << max_rx_ring_page_order;

/// The back end's side of the negotiation (written in its hello).
struct backend_offer {
    bool sg = true;                   ///< feature-sg: accepts multi-slot TX packets
    bool gso_tcpv4 = true;            ///< feature-gso-tcpv4: accepts TCPv4 GSO on TX
    bool gso_tcpv6 = true;            ///< feature-gso-tcpv6
    bool ipv6_csum_offload = true;    ///< feature-ipv6-csum-offload: partial IPv6 checksums on TX
    bool split_event_channels = true; ///< feature-split-event-channels
    bool frontend_copy = false;       ///< feature-rx-frontend-copy (splitnet; see backend_memory)
    std::uint32_t max_queues = 4;     ///< multi-queue-max-queues
    std::uint32_t activity_slots = 1; ///< grant-activity-slots (splitnet)
    std::uint32_t max_rx_ring_order = max_rx_ring_page_order; ///< max-rx-ring-page-order

    void write(control::message& m) const {
        m.set("feature-rx-copy", 1).set("feature-rx-flip", std::uint64_t{0});
        m.set("feature-sg", flag(sg)).set("feature-gso-tcpv4", flag(gso_tcpv4));
        m.set("feature-gso-tcpv6", flag(gso_tcpv6));
        m.set("feature-ipv6-csum-offload", flag(ipv6_csum_offload));
        m.set("feature-split-event-channels", flag(split_event_channels));
        m.set("feature-rx-notify", 1);
        m.set("feature-rx-frontend-copy", flag(frontend_copy));
        m.set("multi-queue-max-queues", max_queues);
        m.set("grant-activity-slots", activity_slots);
        m.set("max-rx-ring-page-order", std::min(max_rx_ring_order, max_rx_ring_page_order));
    }
    [[nodiscard]] static backend_offer read(const control::message& m) {
        backend_offer o;
        o.sg = m.get_flag("feature-sg");
        o.gso_tcpv4 = m.get_flag("feature-gso-tcpv4");
        o.gso_tcpv6 = m.get_flag("feature-gso-tcpv6");
        o.ipv6_csum_offload = m.get_flag("feature-ipv6-csum-offload");
        o.split_event_channels = m.get_flag("feature-split-event-channels");
        o.frontend_copy = m.get_flag("feature-rx-frontend-copy");
        o.max_queues = static_cast<std::uint32_t>(
            m.get_uint("multi-queue-max-queues", max_queues_limit).value_or(1));
        o.activity_slots =
            static_cast<std::uint32_t>(m.get_uint("grant-activity-slots", 64).value_or(1));
        // A back end that does not say offers one page, as Xen's netback.
        o.max_rx_ring_order = static_cast<std::uint32_t>(
            m.get_uint("max-rx-ring-page-order", max_rx_ring_page_order).value_or(0));
        return o;
    }

private:
    static std::uint64_t flag(bool b) noexcept { return b ? 1 : 0; }
    friend struct frontend_request;
};

/// The front end's side (written in its connect message).
struct frontend_request {
    bool sg = true;                         ///< feature-sg: accepts multi-slot RX packets
    bool gso_tcpv4 = true;                  ///< feature-gso-tcpv4: accepts TCPv4 aggregates on RX
    bool gso_tcpv6 = true;                  ///< feature-gso-tcpv6
    bool no_csum_offload = false;           ///< feature-no-csum-offload: wants full IPv4 checksums
    bool ipv6_csum_offload = true;          ///< feature-ipv6-csum-offload: takes partial IPv6 ones
    bool rx_notify = true;                  ///< feature-rx-notify: kicks when it posts RX buffers
    bool split_event_channels = true;       ///< uses event-channel-tx/-rx if the back end offers it
    copy_side rx_copy = copy_side::backend; ///< request-rx-frontend-copy=1 for frontend
    std::uint32_t queues = 1;               ///< multi-queue-num-queues
    std::uint32_t rx_ring_order = 0;        ///< rx-ring-page-order: 2^order RX ring pages

    void write(control::message& m) const {
        using b = backend_offer;
        m.set("request-rx-copy", 1);
        m.set("feature-sg", b::flag(sg)).set("feature-gso-tcpv4", b::flag(gso_tcpv4));
        m.set("feature-gso-tcpv6", b::flag(gso_tcpv6));
        m.set("feature-no-csum-offload", b::flag(no_csum_offload));
        m.set("feature-ipv6-csum-offload", b::flag(ipv6_csum_offload));
        m.set("feature-rx-notify", b::flag(rx_notify));
        m.set("request-rx-frontend-copy", b::flag(rx_copy == copy_side::frontend));
        m.set("multi-queue-num-queues", queues);
        if (rx_ring_order != 0) {
            m.set("rx-ring-page-order", rx_ring_order); // a value beyond the limit is refused
        }
    }
    /// Reads a front end's request; nullopt with `why` set when it cannot be served at all.
    [[nodiscard]] static std::optional<frontend_request> read(const control::message& m,
                                                              std::string& why) {
        if (!m.get_flag("request-rx-copy")) {
            why = "request-rx-copy=1 is required (receive page flipping is not supported)";
            return std::nullopt;
        }
        frontend_request r;
        r.sg = m.get_flag("feature-sg");
        r.gso_tcpv4 = m.get_flag("feature-gso-tcpv4");
        r.gso_tcpv6 = m.get_flag("feature-gso-tcpv6");
        r.no_csum_offload = m.get_flag("feature-no-csum-offload");
        r.ipv6_csum_offload = m.get_flag("feature-ipv6-csum-offload");
        r.rx_notify = m.get_flag("feature-rx-notify");
        r.rx_copy =
            m.get_flag("request-rx-frontend-copy") ? copy_side::frontend : copy_side::backend;
        const auto q = m.get_uint("multi-queue-num-queues", max_queues_limit);
        if (m.get("multi-queue-num-queues") && (!q || *q == 0)) {
            why = "multi-queue-num-queues must be 1.." + std::to_string(max_queues_limit);
            return std::nullopt;
        }
        r.queues = static_cast<std::uint32_t>(q.value_or(1));
        const auto order = m.get_uint("rx-ring-page-order", max_rx_ring_page_order);
        if (m.get("rx-ring-page-order") && !order) {
            why = "rx-ring-page-order must be 0.." + std::to_string(max_rx_ring_page_order);
            return std::nullopt;
        }
        r.rx_ring_order = static_cast<std::uint32_t>(order.value_or(0));
        r.split_event_channels =
            m.get("event-channel-tx").has_value() || m.get("queue-0/event-channel-tx").has_value();
        return r;
    }
};

/// What both ends do on a connection.
struct negotiated {
    // guest -> back end (TX ring)
    bool tx_sg = false;
    bool tx_gso_tcpv4 = false;
    bool tx_gso_tcpv6 = false;
    bool tx_csum_ipv6 = false;
    // back end -> guest (RX ring)
    bool rx_sg = false;
    bool rx_gso_tcpv4 = false;
    bool rx_gso_tcpv6 = false;
    bool rx_csum_ipv4 = true; ///< partial IPv4 checksums may be delivered
    bool rx_csum_ipv6 = false;
    bool rx_notify = false;
    bool split_event_channels = false;
    copy_side rx_copy = copy_side::backend;
    std::uint32_t queues = 1;
    std::uint32_t rx_ring_pages = 1;
};

/// The rules above. A request the offer cannot meet (too many queues, frontend copy not
/// offered) is an error the back end reports rather than silently downgrades.
[[nodiscard]] inline std::optional<negotiated>
negotiate(const backend_offer& o, const frontend_request& r, std::string& why) {
    if (r.queues > o.max_queues) {
        why = "the front end asks for " + std::to_string(r.queues) +
              " queues; the back end offers at most " + std::to_string(o.max_queues);
        return std::nullopt;
    }
    if (r.rx_copy == copy_side::frontend && !o.frontend_copy) {
        why = "the front end asks to copy received data itself (request-rx-frontend-copy) and "
              "the back end does not offer it (start it with --copy frontend)";
        return std::nullopt;
    }
    if (r.rx_ring_order > std::min(o.max_rx_ring_order, max_rx_ring_page_order)) {
        why = "the front end asks for an RX ring of " + std::to_string(1U << r.rx_ring_order) +
              " pages; the back end offers at most " +
              std::to_string(1U << std::min(o.max_rx_ring_order, max_rx_ring_page_order));
        return std::nullopt;
    }
    if (r.split_event_channels && !o.split_event_channels) {
        why = "the front end uses split event channels the back end did not offer";
        return std::nullopt;
    }
    negotiated n;
    n.tx_sg = o.sg;
    n.tx_gso_tcpv4 = o.gso_tcpv4 && o.sg;
    n.tx_gso_tcpv6 = o.gso_tcpv6 && o.sg;
    n.tx_csum_ipv6 = o.ipv6_csum_offload;
    n.rx_sg = r.sg;
    n.rx_csum_ipv4 = !r.no_csum_offload;
    n.rx_csum_ipv6 = r.ipv6_csum_offload;
    // An aggregate is delivered with a partial checksum, so GSO needs checksum offload too.
    n.rx_gso_tcpv4 = r.gso_tcpv4 && r.sg && n.rx_csum_ipv4;
    n.rx_gso_tcpv6 = r.gso_tcpv6 && r.sg && n.rx_csum_ipv6;
    n.rx_notify = r.rx_notify;
    n.split_event_channels = r.split_event_channels;
    n.rx_copy = r.rx_copy;
    n.queues = std::max<std::uint32_t>(r.queues, 1);
    n.rx_ring_pages = 1U << r.rx_ring_order;
    return n;
}

} // namespace splitnet::netif
