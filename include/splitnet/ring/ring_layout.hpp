// SPDX-License-Identifier: MIT
// splitnet/ring/ring_layout.hpp: where a split request/response ring keeps its four shared
// indices. Two layouts:
//  - xen_layout: byte-compatible with Xen public/io/ring.h (DEFINE_RING_TYPES): a 64-byte header
//    {req_prod, req_event, rsp_prod, rsp_event, pvt[4], pad[44]}, slots from byte 64. All four
//    indices share one cache line, which both ends write (the ABI's built-in false sharing).
//  - padded_layout: the indices each end writes on their own cache line, 128 bytes apart so the
//    adjacent-line prefetcher does not pair them (as AF_XDP and rte_ring do); slots from byte
//    256. For deployments that need no Xen compatibility. bench/ring/split_ring_bench.cpp says
//    whether it pays on a given machine.
#pragma once

#include <concepts>
#include <cstddef>

namespace splitnet::ring {

/// Offsets, in bytes from the start of the shared area, of the four indices, and where the
/// slots start. The front end writes req_prod and rsp_event; the back end rsp_prod and req_event.
template <class L>
concept ring_layout = requires {
    { L::header_bytes } -> std::convertible_to<std::size_t>;
    { L::req_prod } -> std::convertible_to<std::size_t>;
    { L::req_event } -> std::convertible_to<std::size_t>;
    { L::rsp_prod } -> std::convertible_to<std::size_t>;
    { L::rsp_event } -> std::convertible_to<std::size_t>;
    { L::name } -> std::convertible_to<const char*>;
};

struct xen_layout {
    static constexpr std::size_t header_bytes = 64;
    static constexpr std::size_t req_prod = 0;
    static constexpr std::size_t req_event = 4;
    static constexpr std::size_t rsp_prod = 8;
    static constexpr std::size_t rsp_event = 12;
    static constexpr const char* name = "xen";
};
static_assert(ring_layout<xen_layout>);

struct padded_layout {
    static constexpr std::size_t header_bytes = 256;
    static constexpr std::size_t req_prod = 0;    // front end's line
    static constexpr std::size_t rsp_event = 4;   // front end's line
    static constexpr std::size_t rsp_prod = 128;  // back end's line
    static constexpr std::size_t req_event = 132; // back end's line
    static constexpr const char* name = "padded";
};
static_assert(ring_layout<padded_layout>);

} // namespace splitnet::ring
