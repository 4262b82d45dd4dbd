// SPDX-License-Identifier: MIT
// splitnet/grant/grant_table.hpp: the granting domain's side of a grant table: hand out access to
// a page (read-write or read-only), to a sub-range of a page, or transitively to what another
// domain granted us, and end that access safely.
//
// Ending access (Xen's gnttab_end_foreign_access, public/grant_table.h):
//  - a grant a grantee has mapped cannot end: end_access() answers busy and sets revoke_request,
//    so a grantee that keeps it in a cache unmaps it (grant_cache.hpp); try again later;
//  - otherwise the entry is cleared at once with a compare-and-swap (so a concurrent map either
//    happened before, and the clear fails, or fails itself), and the reference is free as soon
//    as no grantee is inside a copy batch that began before the clear: each grantee worker
//    publishes an odd activity count while it copies (grant_copy.hpp). If one is, the reference
//    waits in a pending list and reclaim() frees it once that worker's count has moved on.
// Ordering: clear (CAS) -> full fence F4 -> read activity; the grantee does the mirror
// (activity odd -> full fence F3 -> read entry). At least one side sees the other's store.
//
// Threading: one grant_table per granting domain, used by one thread at a time (netfront's
// per-queue grant pools are separate tables or external locking).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include <splitnet/config.hpp>
#include <splitnet/detail/shared_access.hpp>
#include <splitnet/grant/detail/entry_access.hpp>
#include <splitnet/grant/memory_domain.hpp>

namespace splitnet::grant {

enum class end_result : std::uint8_t {
    done = 0,    ///< the reference is free again
    deferred,    ///< access ended; the reference is freed by reclaim() after in-flight copies
    busy,        ///< the grant is mapped: revoke requested, try again later
    not_granted, ///< the reference is not an active grant
};

struct grant_table_stats {
    std::uint64_t granted = 0;      ///< grants handed out
    std::uint64_t ended = 0;        ///< grants ended (done or deferred)
    std::uint64_t end_deferred = 0; ///< ends that waited for a copy batch in flight
    std::uint64_t end_busy = 0;     ///< ends refused because the grant was mapped
    std::uint64_t grant_failed = 0; ///< grants refused: table full or bad arguments
};

class grant_table {
public:
    /// Takes ownership of `self`'s table pages: clears every entry and the activity page.
    explicit grant_table(const memory_domain& self)
        : dom_(self), free_(std::make_unique<grant_ref[]>(self.table_entries())),
          pending_(std::make_unique<pending_end[]>(self.table_entries())) {
        self.validate();
        for (grant_ref r = 0; r < dom_.table_entries(); ++r) {
            detail::publish_entry(dom_.entry(r), grant_entry{});
        }
        for (std::uint32_t s = 0; s < dom_.activity_slots; ++s) {
            splitnet::detail::store_release(dom_.activity(s), 0);
        }
        for (grant_ref r = dom_.table_entries(); r > reserved_entries; --r) {
            free_[nfree_++] = r - 1; // lowest references handed out first
        }
    }

    [[nodiscard]] const memory_domain& domain() const noexcept { return dom_; }
    [[nodiscard]] std::uint32_t available() const noexcept { return nfree_; }
    [[nodiscard]] std::uint32_t pending() const noexcept { return npending_; }
    [[nodiscard]] const grant_table_stats& stats() const noexcept { return stats_; }

    /// Grants `to` access to data page `frame`. Returns invalid_ref if the table is full or the
    /// frame is not one of this domain's data pages.
    [[nodiscard]] grant_ref grant_access(domain_id to, std::uint64_t frame,
                                         bool readonly) noexcept {
        if (!dom_.is_data_frame(frame)) {
            return fail();
        }
        return publish(
            {static_cast<std::uint16_t>(gtf::permit_access | (readonly ? gtf::readonly : 0)), to, 0,
             0, frame});
    }

    /// Grants `to` access to bytes [offset, offset + length) of data page `frame` only: a peer
    /// cannot read the other packets sharing the page. Copy-only (not mappable).
    [[nodiscard]] grant_ref grant_subpage(domain_id to, std::uint64_t frame, std::uint16_t offset,
                                          std::uint16_t length, bool readonly) noexcept {
        if (!dom_.is_data_frame(frame) || length == 0 ||
            std::uint32_t{offset} + length > grant_page_size) {
            return fail();
        }
        return publish({static_cast<std::uint16_t>(gtf::permit_access | gtf::sub_page |
                                                   (readonly ? gtf::readonly : 0)),
                        to, offset, length, frame});
    }

    /// Re-grants to `to` what domain `via` granted us as `via_ref` (copy-only), so `to` can copy
    /// from `via`'s page without this domain touching the data.
    [[nodiscard]] grant_ref grant_transitive(domain_id to, domain_id via, grant_ref via_ref,
                                             bool readonly = true) noexcept {
        return publish(
            {static_cast<std::uint16_t>(gtf::transitive | (readonly ? gtf::readonly : 0)), to, via,
             0, via_ref});
    }

    /// Ends a grant (see the header comment for the busy and deferred cases).
    [[nodiscard]] end_result end_access(grant_ref ref) noexcept {
        if (ref < reserved_entries || ref >= dom_.table_entries()) {
            return end_result::not_granted;
        }
        grant_entry& e = dom_.entry(ref);
        std::uint32_t c = detail::load_combo(e);
        for (;;) {
            const std::uint16_t f = detail::combo_flags(c);
            if ((f & gtf::type_mask) == gtf::invalid) {
                return end_result::not_granted;
            }
            if ((f & (gtf::reading | gtf::writing)) != 0) {
                // Mapped: ask the grantee to let go (a failed CAS means the flags just changed).
                if ((f & gtf::revoke_request) != 0 ||
                    detail::cas_combo(e, c, c | detail::make_combo(gtf::revoke_request, 0))) {
                    ++stats_.end_busy;
                    return end_result::busy;
                }
                continue;
            }
            if (detail::cas_combo(e, c, 0)) {
                break;
            }
        }
        splitnet::detail::full_fence(); // F4, pairs with the grantee's F3
        ++stats_.ended;
        pending_end p{ref, 0, {}};
        for (std::uint32_t s = 0; s < dom_.activity_slots; ++s) {
            const std::uint32_t a = splitnet::detail::load_acquire(dom_.activity(s));
            if ((a & 1U) != 0) {
                p.busy |= 1U << s;
                p.seen[s] = a;
            }
        }
        if (p.busy == 0) {
            free_[nfree_++] = ref;
            return end_result::done;
        }
        ++stats_.end_deferred;
        pending_[npending_++] = p;
        return end_result::deferred;
    }

    /// Frees deferred references whose copy batches have finished. Returns how many it freed.
    std::uint32_t reclaim() noexcept {
        std::uint32_t freed = 0;
        for (std::uint32_t i = 0; i < npending_;) {
            pending_end& p = pending_[i];
            bool still = false;
            for (std::uint32_t s = 0; s < dom_.activity_slots; ++s) {
                still |= (p.busy & (1U << s)) != 0 &&
                         splitnet::detail::load_acquire(dom_.activity(s)) == p.seen[s];
            }
            if (still) {
                ++i;
                continue;
            }
            free_[nfree_++] = p.ref;
            p = pending_[--npending_];
            ++freed;
        }
        return freed;
    }

    /// The entry as this domain wrote it (and as grantees' flags changed it).
    [[nodiscard]] grant_entry entry(grant_ref ref) const noexcept {
        return detail::read_entry(dom_.entry(ref));
    }

private:
    /// A deferred end: the activity counts that were odd (a copy batch in flight) when it ended.
    struct pending_end {
        grant_ref ref;
        std::uint32_t busy; ///< bit per activity slot
        std::array<std::uint32_t, max_activity_slots> seen;
    };

    grant_ref publish(const grant_entry& e) noexcept {
        if (nfree_ == 0) {
            return fail();
        }
        const grant_ref ref = free_[--nfree_];
        detail::publish_entry(dom_.entry(ref), e);
        ++stats_.granted;
        return ref;
    }
    grant_ref fail() noexcept {
        ++stats_.grant_failed;
        return invalid_ref;
    }

    memory_domain dom_;
    std::unique_ptr<grant_ref[]> free_;
    std::uint32_t nfree_ = 0;
    std::unique_ptr<pending_end[]> pending_;
    std::uint32_t npending_ = 0;
    grant_table_stats stats_{};
};

} // namespace splitnet::grant
