// SPDX-License-Identifier: MIT
// splitnet/ring/detail/shared_access.hpp: every access to memory shared with another party
// goes through std::atomic_ref, so the orderings are explicit and a peer writing concurrently is
// a visible protocol event, not undefined behaviour (and ThreadSanitizer sees the same).
// Slots are copied word by word with relaxed atomics: as cheap as memcpy for 8..16-byte slots,
// and a copy is a snapshot the peer can no longer change (Xen's RING_COPY_REQUEST).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace splitnet::ring::detail {

using ring_idx = std::uint32_t;

static_assert(std::atomic_ref<std::uint32_t>::is_always_lock_free,
              "shared indices need lock-free 32-bit atomics");

[[nodiscard]] inline std::uint32_t load_acquire(const std::uint32_t& v) noexcept {
    return std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(v)).load(std::memory_order_acquire);
}
[[nodiscard]] inline std::uint32_t load_relaxed(const std::uint32_t& v) noexcept {
    return std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(v)).load(std::memory_order_relaxed);
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

/// True for types that can be copied to and from shared memory in 32-bit words, given that the
/// object is known to be aligned to `Align` (a slot may be more aligned than its type).
template <class T, std::size_t Align = alignof(T)>
inline constexpr bool word_copyable = std::is_trivially_copyable_v<T> && sizeof(T) % 4 == 0 &&
                                      (Align >= 4 || alignof(T) >= 4);

/// Copies a slot out of shared memory (a snapshot: later peer writes do not affect it).
template <std::size_t Align = 1, class T>
inline void copy_from_shared(T& dst, const T& src) noexcept {
    static_assert(std::is_trivially_copyable_v<T>);
    if constexpr (word_copyable<T, Align>) {
        std::uint32_t words[sizeof(T) / 4];
        auto* s = reinterpret_cast<std::uint32_t*>(const_cast<T*>(&src));
        for (std::size_t i = 0; i < sizeof(T) / 4; ++i) {
            words[i] = std::atomic_ref<std::uint32_t>(s[i]).load(std::memory_order_relaxed);
        }
        std::memcpy(&dst, words, sizeof(T));
    } else {
        // Byte-wise: any alignment, still one read of each byte.
        unsigned char bytes[sizeof(T)];
        auto* s = reinterpret_cast<unsigned char*>(const_cast<T*>(&src));
        for (std::size_t i = 0; i < sizeof(T); ++i) {
            bytes[i] = std::atomic_ref<unsigned char>(s[i]).load(std::memory_order_relaxed);
        }
        std::memcpy(&dst, bytes, sizeof(T));
    }
}

/// Copies a slot into shared memory; publication is the later release store of an index.
template <std::size_t Align = 1, class T>
inline void copy_to_shared(T& dst, const T& src) noexcept {
    static_assert(std::is_trivially_copyable_v<T>);
    if constexpr (word_copyable<T, Align>) {
        std::uint32_t words[sizeof(T) / 4];
        std::memcpy(words, &src, sizeof(T));
        auto* d = reinterpret_cast<std::uint32_t*>(&dst);
        for (std::size_t i = 0; i < sizeof(T) / 4; ++i) {
            std::atomic_ref<std::uint32_t>(d[i]).store(words[i], std::memory_order_relaxed);
        }
    } else {
        unsigned char bytes[sizeof(T)];
        std::memcpy(bytes, &src, sizeof(T));
        auto* d = reinterpret_cast<unsigned char*>(&dst);
        for (std::size_t i = 0; i < sizeof(T); ++i) {
            std::atomic_ref<unsigned char>(d[i]).store(bytes[i], std::memory_order_relaxed);
        }
    }
}

} // namespace splitnet::ring::detail
