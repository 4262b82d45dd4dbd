// SPDX-License-Identifier: MIT
// splitnet/detail/shared_access.hpp: every access to memory shared with another party
// goes through std::atomic_ref, so the orderings are explicit and a peer writing concurrently is
// a visible protocol event, not undefined behaviour (and ThreadSanitizer sees the same).
// Slots are copied in 8-, 4- or 1-byte units with relaxed atomics: as cheap as memcpy for small
// slots, and a copy is a snapshot the peer can no longer change (Xen's RING_COPY_REQUEST).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace splitnet::detail {

static_assert(std::atomic_ref<std::uint32_t>::is_always_lock_free,
              "shared indices need lock-free 32-bit atomics");

[[nodiscard]] inline std::uint32_t load_acquire(const std::uint32_t& v) noexcept {
    return std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(v))
        .load(std::memory_order_acquire);
}
[[nodiscard]] inline std::uint32_t load_relaxed(const std::uint32_t& v) noexcept {
    return std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(v))
        .load(std::memory_order_relaxed);
}
inline void store_release(std::uint32_t& v, std::uint32_t x) noexcept {
    std::atomic_ref<std::uint32_t>(v).store(x, std::memory_order_release);
}
inline void store_relaxed(std::uint32_t& v, std::uint32_t x) noexcept {
    std::atomic_ref<std::uint32_t>(v).store(x, std::memory_order_relaxed);
}
/// The full barrier of the Dekker pattern in the event-index protocol (Xen's xen_mb()).
inline void full_fence() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

/// The widest unit a slot of type T can be copied in with single atomic accesses, given that the
/// object is aligned to at least `Align` (a slot may be more aligned than its type): 8, 4 or 1.
template <class T, std::size_t Align>
[[nodiscard]] constexpr std::size_t copy_unit() noexcept {
    constexpr std::size_t align = Align > alignof(T) ? Align : alignof(T);
    if constexpr (sizeof(T) % 8 == 0 && align >= 8) {
        return 8;
    } else if constexpr (sizeof(T) % 4 == 0 && align >= 4) {
        return 4;
    } else {
        return 1;
    }
}

template <std::size_t Unit>
using copy_word = std::conditional_t<Unit == 8, std::uint64_t,
                                     std::conditional_t<Unit == 4, std::uint32_t, unsigned char>>;

// Units are read with single relaxed atomic loads and written straight into the destination
// object's bytes, in the same units: a copy assembled in a temporary and copied again with wider
// accesses would stall store forwarding (bench/packet taught this).

/// Copies a slot out of shared memory (a snapshot: later peer writes do not affect it).
template <std::size_t Align = 1, class T>
inline void copy_from_shared(T& dst, const T& src) noexcept {
    static_assert(std::is_trivially_copyable_v<T>);
    using word = copy_word<copy_unit<T, Align>()>;
    static_assert(std::atomic_ref<word>::is_always_lock_free);
    auto* s = reinterpret_cast<word*>(const_cast<T*>(&src));
    auto* d = reinterpret_cast<unsigned char*>(&dst);
    for (std::size_t i = 0; i < sizeof(T) / sizeof(word); ++i) {
        const word w = std::atomic_ref<word>(s[i]).load(std::memory_order_relaxed);
        std::memcpy(d + i * sizeof(word), &w, sizeof(word));
    }
}

/// Copies a slot into shared memory; publication is the later release store of an index.
template <std::size_t Align = 1, class T>
inline void copy_to_shared(T& dst, const T& src) noexcept {
    static_assert(std::is_trivially_copyable_v<T>);
    using word = copy_word<copy_unit<T, Align>()>;
    auto* d = reinterpret_cast<word*>(&dst);
    const auto* s = reinterpret_cast<const unsigned char*>(&src);
    for (std::size_t i = 0; i < sizeof(T) / sizeof(word); ++i) {
        word w;
        std::memcpy(&w, s + i * sizeof(word), sizeof(word));
        std::atomic_ref<word>(d[i]).store(w, std::memory_order_relaxed);
    }
}

} // namespace splitnet::detail
