// SPDX-License-Identifier: MIT
// splitnet/grant/grant_entry.hpp: one entry of a grant table, status codes, and the ids that name
// grants and domains.
//
// Layout: Xen's grant_entry_v2 (public/grant_table.h), 16 bytes: flags@0, domid@2, then
//   full page:  frame@8
//   sub-page:   page_off@4, length@6, frame@8   (copy only: a grantee may not map it)
//   transitive: trans_domid@4, gref@8           (copy only)
// Flag bits are Xen's (GTF_*). Two departures, both stated where they matter:
//  - GTF_reading/GTF_writing live in the entry (Xen v1 style; v2 keeps them in status frames)
//    and are set only by mappings; copies use the batch activity protocol (grant_copy.hpp).
//  - revoke_request (bit 15, unused by Xen) is set by a granter whose end_access found the grant
//    mapped: grantees holding it in a cache drop it (grant_cache.hpp).
// `frame` is a page index within the granting domain's region.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace splitnet::grant {

using grant_ref = std::uint32_t;
using domain_id = std::uint16_t;

inline constexpr domain_id invalid_domain = 0x7ff4; ///< DOMID_INVALID
inline constexpr grant_ref invalid_ref = 0xffffffffU;
/// Xen reserves the first 8 entries (console, xenstore, ...); splitnet never hands them out.
inline constexpr grant_ref reserved_entries = 8;
inline constexpr std::size_t grant_page_size = 4096;

namespace gtf {
inline constexpr std::uint16_t invalid = 0;
inline constexpr std::uint16_t permit_access = 1;
inline constexpr std::uint16_t accept_transfer = 2; ///< page transfer: not supported by splitnet
inline constexpr std::uint16_t transitive = 3;
inline constexpr std::uint16_t type_mask = 3;
inline constexpr std::uint16_t readonly = 1U << 2;
inline constexpr std::uint16_t reading = 1U << 3;
inline constexpr std::uint16_t writing = 1U << 4;
inline constexpr std::uint16_t sub_page = 1U << 8;
inline constexpr std::uint16_t revoke_request = 1U << 15; ///< splitnet extension
} // namespace gtf

struct grant_entry {
    std::uint16_t flags;
    std::uint16_t domid; ///< the domain allowed to use the grant
    std::uint16_t word4; ///< sub_page: page_off; transitive: trans_domid
    std::uint16_t word6; ///< sub_page: length
    std::uint64_t word8; ///< full/sub page: frame; transitive: gref (low 32 bits)

    [[nodiscard]] constexpr std::uint16_t type() const noexcept { return flags & gtf::type_mask; }
    [[nodiscard]] constexpr std::uint64_t frame() const noexcept { return word8; }
    [[nodiscard]] constexpr std::uint16_t page_off() const noexcept { return word4; }
    [[nodiscard]] constexpr std::uint16_t length() const noexcept { return word6; }
    [[nodiscard]] constexpr domain_id trans_domid() const noexcept { return word4; }
    [[nodiscard]] constexpr grant_ref trans_gref() const noexcept {
        return static_cast<grant_ref>(word8);
    }
};
static_assert(sizeof(grant_entry) == 16 && alignof(grant_entry) == 8);
static_assert(std::is_trivially_copyable_v<grant_entry> && std::is_standard_layout_v<grant_entry>);
static_assert(offsetof(grant_entry, domid) == 2 && offsetof(grant_entry, word4) == 4 &&
              offsetof(grant_entry, word6) == 6 && offsetof(grant_entry, word8) == 8);

inline constexpr std::size_t entries_per_page = grant_page_size / sizeof(grant_entry);

/// Per-operation status, with Xen's GNTST_* values and meanings.
enum class grant_status : std::int16_t {
    okay = 0,
    general_error = -1,
    bad_domain = -2,        ///< no such domain (not registered with this grantee)
    bad_gntref = -3,        ///< reference out of range, reserved, or not a usable grant
    bad_handle = -4,        ///< unmap of something not mapped
    permission_denied = -8, ///< granted to another domain, or write to a read-only grant
    bad_page = -9,          ///< the granted frame lies outside the granter's memory
    bad_copy_arg = -10,     ///< the range crosses a page or leaves a sub-page grant's range
    eagain = -12,           ///< transient: the grant is being revoked; try again later
    no_space = -13,         ///< no room in the map table or cache
};

[[nodiscard]] constexpr std::string_view to_string(grant_status s) noexcept {
    switch (s) {
    case grant_status::okay:
        return "okay";
    case grant_status::general_error:
        return "general error";
    case grant_status::bad_domain:
        return "bad domain";
    case grant_status::bad_gntref:
        return "bad grant reference";
    case grant_status::bad_handle:
        return "bad handle";
    case grant_status::permission_denied:
        return "permission denied";
    case grant_status::bad_page:
        return "bad page";
    case grant_status::bad_copy_arg:
        return "bad copy argument";
    case grant_status::eagain:
        return "try again";
    case grant_status::no_space:
        return "no space";
    }
    return "unknown";
}

} // namespace splitnet::grant
