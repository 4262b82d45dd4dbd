// SPDX-License-Identifier: MIT
// splitnet/grant/grant_map.hpp: mapping a granted page for direct access (Xen's
// GNTTABOP_map_grant_ref / unmap_grant_ref), behind a policy that decides what "map" costs:
//  - direct_map: a pointer into the granter's region, which this process already maps (the
//    userspace driver domain shares the frontend's memfd);
//  - mmap_map: a fresh mmap of that page from the granter's memfd, and munmap on unmap, which is
//    what a gntdev-based back end pays per mapping (page-table work and a TLB flush on unmap).
// While mapped, the grant carries GTF_reading (and GTF_writing for a writable mapping) in the
// granter's entry, set with one compare-and-swap that succeeds only if the entry still says what
// was validated; the granter cannot end it meanwhile (grant_table::end_access: busy). Sub-page
// and transitive grants cannot be mapped (as in Xen).
//
// Threading: one grant_mapper per worker; its map counts are private.
#pragma once

#include <cerrno>
#include <cstdint>
#include <memory>

#include <sys/mman.h>

#include <splitnet/config.hpp>
#include <splitnet/grant/detail/entry_access.hpp>
#include <splitnet/grant/memory_domain.hpp>

namespace splitnet::grant {

template <class P>
concept map_policy =
    requires(const memory_domain& d, std::uint64_t frame, bool ro, std::uint8_t* p) {
        { P::map_page(d, frame, ro) } noexcept -> std::same_as<std::uint8_t*>;
        { P::unmap_page(p) } noexcept;
    };

struct direct_map {
    static std::uint8_t* map_page(const memory_domain& d, std::uint64_t frame, bool) noexcept {
        return reinterpret_cast<std::uint8_t*>(d.page(frame));
    }
    static void unmap_page(std::uint8_t*) noexcept {}
};
static_assert(map_policy<direct_map>);

struct mmap_map {
    static std::uint8_t* map_page(const memory_domain& d, std::uint64_t frame, bool ro) noexcept {
        if (d.fd < 0) {
            return nullptr;
        }
        void* p = ::mmap(nullptr, grant_page_size, PROT_READ | (ro ? 0 : PROT_WRITE), MAP_SHARED,
                         d.fd, static_cast<off_t>(frame * grant_page_size));
        return p == MAP_FAILED ? nullptr : static_cast<std::uint8_t*>(p);
    }
    static void unmap_page(std::uint8_t* p) noexcept { ::munmap(p, grant_page_size); }
};
static_assert(map_policy<mmap_map>);

struct grant_mapping {
    std::uint8_t* page = nullptr;
    domain_id domid = invalid_domain;
    grant_ref ref = invalid_ref;
    bool writable = false;
};

struct grant_map_stats {
    std::uint64_t maps = 0;
    std::uint64_t unmaps = 0;
    std::uint64_t map_failed = 0;
};

template <map_policy Policy = direct_map>
class grant_mapper {
public:
    grant_mapper(const domain_registry& domains, domain_id self) noexcept
        : domains_(domains), self_(self) {}

    [[nodiscard]] const grant_map_stats& stats() const noexcept { return stats_; }
    [[nodiscard]] const domain_registry& domains() const noexcept { return domains_; }
    [[nodiscard]] domain_id self() const noexcept { return self_; }

    /// Maps grant `ref` of domain `domid`; on okay, `out` describes the mapping.
    [[nodiscard]] grant_status map(domain_id domid, grant_ref ref, bool writable,
                                   grant_mapping& out) noexcept {
        const grant_status s = try_map(domid, ref, writable, out);
        ++(s == grant_status::okay ? stats_.maps : stats_.map_failed);
        return s;
    }

    /// Unmaps and clears this mapping's in-use flags in the granter's entry.
    grant_status unmap(grant_mapping& m) noexcept {
        if (m.page == nullptr) {
            return grant_status::bad_handle;
        }
        Policy::unmap_page(m.page);
        if (const memory_domain* d = domains_.find(m.domid);
            d != nullptr && m.ref < d->table_entries()) {
            grant_entry& e = d->entry(m.ref);
            const std::uint32_t in_use = detail::make_combo(
                static_cast<std::uint16_t>(gtf::reading | (m.writable ? gtf::writing : 0)), 0);
            std::uint32_t c = detail::load_combo(e);
            while (!detail::cas_combo(e, c, c & ~in_use)) {
            }
        }
        ++stats_.unmaps;
        m = {};
        return grant_status::okay;
    }

private:
    grant_status try_map(domain_id domid, grant_ref ref, bool writable,
                         grant_mapping& out) noexcept {
        const memory_domain* d = domains_.find(domid);
        if (d == nullptr) {
            return grant_status::bad_domain;
        }
        if (ref < reserved_entries || ref >= d->table_entries()) {
            return grant_status::bad_gntref;
        }
        grant_entry& shared = d->entry(ref);
        std::uint32_t c = detail::load_combo(shared);
        const std::uint16_t f = detail::combo_flags(c);
        if ((f & gtf::type_mask) != gtf::permit_access || (f & gtf::sub_page) != 0) {
            return grant_status::bad_gntref;
        }
        if (detail::combo_domid(c) != self_) {
            return grant_status::permission_denied;
        }
        if (writable && (f & gtf::readonly) != 0) {
            return grant_status::permission_denied;
        }
        if ((f & gtf::revoke_request) != 0) {
            return grant_status::eagain;
        }
        // Claim it: the flags go in only if flags+domid are still what was just checked.
        const std::uint32_t in_use = detail::make_combo(
            static_cast<std::uint16_t>(gtf::reading | (writable ? gtf::writing : 0)), 0);
        if (!detail::cas_combo(shared, c, c | in_use)) {
            return grant_status::eagain;
        }
        // Once claimed, an honest granter leaves the frame alone; read it now and check it.
        const grant_entry e = detail::read_entry(shared);
        std::uint8_t* page =
            d->is_data_frame(e.frame()) ? Policy::map_page(*d, e.frame(), !writable) : nullptr;
        if (page == nullptr) {
            std::uint32_t now = detail::load_combo(shared);
            while (!detail::cas_combo(shared, now, now & ~in_use)) {
            }
            return d->is_data_frame(e.frame()) ? grant_status::general_error
                                               : grant_status::bad_page;
        }
        out = {page, domid, ref, writable};
        return grant_status::okay;
    }

    const domain_registry& domains_;
    domain_id self_;
    grant_map_stats stats_{};
};

} // namespace splitnet::grant
