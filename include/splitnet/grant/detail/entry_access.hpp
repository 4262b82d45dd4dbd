// SPDX-License-Identifier: MIT
// splitnet/grant/detail/entry_access.hpp: atomic access to grant entries in shared memory.
// flags and domid form one 32-bit word (Xen's "scombo"), so a mapper can set its in-use flags
// only if the grant still says what it validated, and a granter can revoke only an unused grant,
// each with one compare-and-swap.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>

#include <splitnet/detail/shared_access.hpp>
#include <splitnet/grant/grant_entry.hpp>

namespace splitnet::grant::detail {

[[nodiscard]] constexpr std::uint32_t make_combo(std::uint16_t flags, domain_id domid) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
        return flags | (std::uint32_t{domid} << 16);
    } else {
        return domid | (std::uint32_t{flags} << 16);
    }
}
[[nodiscard]] constexpr std::uint16_t combo_flags(std::uint32_t c) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
        return static_cast<std::uint16_t>(c);
    } else {
        return static_cast<std::uint16_t>(c >> 16);
    }
}
[[nodiscard]] constexpr domain_id combo_domid(std::uint32_t c) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
        return static_cast<domain_id>(c >> 16);
    } else {
        return static_cast<domain_id>(c);
    }
}

[[nodiscard]] inline std::uint32_t& combo_word(grant_entry& e) noexcept {
    return *reinterpret_cast<std::uint32_t*>(&e);
}

/// A1g: acquire pairs with the granter's release of flags (R1g): the fields it wrote before
/// publishing the grant are visible.
[[nodiscard]] inline std::uint32_t load_combo(grant_entry& e) noexcept {
    return splitnet::detail::load_acquire(combo_word(e));
}

[[nodiscard]] inline bool cas_combo(grant_entry& e, std::uint32_t& expected,
                                    std::uint32_t desired) noexcept {
    return std::atomic_ref<std::uint32_t>(combo_word(e))
        .compare_exchange_strong(expected, desired, std::memory_order_acq_rel,
                                 std::memory_order_acquire);
}

/// Reads an entry once into a local copy: the combo word with acquire, then the rest. A granter
/// changing the entry meanwhile yields a torn copy, which validation treats like any other.
[[nodiscard]] inline grant_entry read_entry(grant_entry& shared) noexcept {
    const std::uint32_t c = load_combo(shared);
    grant_entry e{};
    e.flags = combo_flags(c);
    e.domid = combo_domid(c);
    auto* words = reinterpret_cast<std::uint16_t*>(&shared);
    e.word4 = std::atomic_ref<std::uint16_t>(words[2]).load(std::memory_order_relaxed);
    e.word6 = std::atomic_ref<std::uint16_t>(words[3]).load(std::memory_order_relaxed);
    e.word8 = std::atomic_ref<std::uint64_t>(shared.word8).load(std::memory_order_relaxed);
    return e;
}

/// The granter's publication: body first, then flags+domid with release (R1g), as Xen's
/// protocol requires ("write domid and frame, wmb, write flags").
inline void publish_entry(grant_entry& shared, const grant_entry& e) noexcept {
    auto* words = reinterpret_cast<std::uint16_t*>(&shared);
    std::atomic_ref<std::uint16_t>(words[2]).store(e.word4, std::memory_order_relaxed);
    std::atomic_ref<std::uint16_t>(words[3]).store(e.word6, std::memory_order_relaxed);
    std::atomic_ref<std::uint64_t>(shared.word8).store(e.word8, std::memory_order_relaxed);
    splitnet::detail::store_release(combo_word(shared), make_combo(e.flags, e.domid));
}

} // namespace splitnet::grant::detail
