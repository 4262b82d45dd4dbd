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
//    Where the domain knows which grantee holds each slot (memory_domain::activity_owners), only
//    the slots of the entry's grantee count: one grantee cannot stall the others' references.
// Ordering: clear (CAS) -> full fence F4 -> read activity; the grantee does the mirror
// (activity odd -> full fence F3 -> read entry). At least one side sees the other's store.
//
// Threading: a grant_table is used by one thread at a time. Threads (or queues served by
// different threads) that grant from one domain each take a shard: a grant_table owning a range
// of the domain's references (netfront's per-queue grant reference pools).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <memory>
#include <span>
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

/// Outcomes of an end_access_burst.
struct end_burst_counts {
    std::uint32_t done = 0;
    std::uint32_t deferred = 0;
    std::uint32_t busy = 0;
    std::uint32_t not_granted = 0;
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
        : grant_table(self, reserved_entries,
                      self.table_entries() > reserved_entries
                          ? self.table_entries() - reserved_entries
                          : 0) {
        for (grant_ref r = 0; r < reserved_entries && r < dom_.table_entries(); ++r) {
            detail::publish_entry(dom_.entry(r), grant_entry{});
        }
        for (std::uint32_t s = 0; s < dom_.activity_slots; ++s) {
            splitnet::detail::store_release(dom_.activity(s), 0);
        }
    }

    /// A shard: owns references [first, first + count) of `self`'s table only and clears just
    /// those entries, so several threads (or queues) can grant from one domain without sharing a
    /// free list. The activity page must already be clear (a whole-table grant_table did it, or
    /// the region is fresh: a new memfd is zeroed).
    grant_table(const memory_domain& self, grant_ref first, std::uint32_t count)
        : dom_(self), first_(first), count_(count), free_(std::make_unique<grant_ref[]>(count)),
          pending_(std::make_unique<pending_end[]>(count)) {
        self.validate();
        if (first < reserved_entries || count > self.table_entries() ||
            first > self.table_entries() - count) {
            SPLITNET_THROW(std::invalid_argument(
                "grant_table: references [" + std::to_string(first) + ", " +
                std::to_string(std::uint64_t{first} + count) + ") are not all in the " +
                std::to_string(self.table_entries()) + "-entry table above the " +
                std::to_string(reserved_entries) + " reserved ones"));
        }
        for (grant_ref r = first; r < first + count; ++r) {
            detail::publish_entry(dom_.entry(r), grant_entry{});
        }
        for (grant_ref r = first + count; r > first; --r) {
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
        end_result r = end_result::not_granted;
        end_access_burst({&ref, 1}, {&r, 1});
        return r;
    }

    /// Ends several grants with one fence and one look at the activity page (what a front end
    /// does with a burst of completed slots). `results`, if not empty, gets each outcome.
    end_burst_counts end_access_burst(std::span<const grant_ref> refs,
                                      std::span<end_result> results = {}) noexcept {
        end_burst_counts counts{};
        for (std::size_t base = 0; base < refs.size(); base += burst_chunk) {
            const std::size_t n = std::min(refs.size() - base, burst_chunk);
            grant_ref cleared[burst_chunk];
            domain_id grantee[burst_chunk];
            std::size_t at[burst_chunk]; // index in refs
            std::size_t ncleared = 0;
            for (std::size_t i = 0; i < n; ++i) {
                const end_result r = clear_entry(refs[base + i], grantee[ncleared]);
                if (r == end_result::done) {
                    at[ncleared] = base + i;
                    cleared[ncleared++] = refs[base + i];
                } else {
                    ++(r == end_result::busy ? counts.busy : counts.not_granted);
                }
                if (!results.empty()) {
                    results[base + i] = r; // done may become deferred below
                }
            }
            if (ncleared == 0) {
                continue;
            }
            splitnet::detail::full_fence(); // F4, pairs with the grantee's F3
            stats_.ended += ncleared;
            pending_end p{0, 0, {}};
            std::uint32_t odd = 0;
            for (std::uint32_t s = 0; s < dom_.activity_slots; ++s) {
                const std::uint32_t a = splitnet::detail::load_acquire(dom_.activity(s));
                if ((a & 1U) != 0) {
                    odd |= 1U << s;
                    p.seen[s] = a;
                }
            }
            std::uint32_t deferred = 0;
            domain_id last = invalid_domain;
            for (std::size_t i = 0; i < ncleared; ++i) {
                if (odd != 0 && (i == 0 || grantee[i] != last)) {
                    last = grantee[i];
                    p.busy = slots_serving(odd, last);
                }
                if (odd == 0 || p.busy == 0) {
                    free_[nfree_++] = cleared[i];
                    continue;
                }
                p.ref = cleared[i];
                pending_[npending_++] = p;
                ++deferred;
                if (!results.empty()) {
                    results[at[i]] = end_result::deferred;
                }
            }
            stats_.end_deferred += deferred;
            counts.deferred += deferred;
            counts.done += static_cast<std::uint32_t>(ncleared) - deferred;
        }
        return counts;
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
    static constexpr std::size_t burst_chunk = 64;

    /// The slots among `odd` whose copier may be copying for `grantee`.
    [[nodiscard]] std::uint32_t slots_serving(std::uint32_t odd, domain_id grantee) const noexcept {
        std::uint32_t mask = 0;
        for (std::uint32_t rest = odd; rest != 0; rest &= rest - 1) {
            const auto s = static_cast<std::uint32_t>(std::countr_zero(rest));
            if (dom_.slot_may_serve(s, grantee)) {
                mask |= 1U << s;
            }
        }
        return mask;
    }

    /// Clears an entry that is ours and not mapped (done, and says whose it was); asks a mapper
    /// to let go (busy).
    end_result clear_entry(grant_ref ref, domain_id& grantee) noexcept {
        if (ref < first_ || ref - first_ >= count_) {
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
                grantee = detail::combo_domid(c);
                return end_result::done;
            }
        }
    }

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
    grant_ref first_;
    std::uint32_t count_;
    std::unique_ptr<grant_ref[]> free_;
    std::uint32_t nfree_ = 0;
    std::unique_ptr<pending_end[]> pending_;
    std::uint32_t npending_ = 0;
    grant_table_stats stats_{};
};

} // namespace splitnet::grant
