// SPDX-License-Identifier: MIT
// splitnet/grant/grant_copy.hpp: batched grant copy, the grantee's way of moving bytes in and out
// of another domain's memory (Xen's GNTTABOP_copy, struct gnttab_copy).
//
// Each operation copies `len` bytes between two sides, each either a grant reference of some
// domain (plus an offset in the granted page) or a buffer of the caller's own. Every operation
// gets its own status with Xen's meaning; a bad one fails alone.
//
// Validation (the granter is untrusted): a grant entry is read once into a local copy
// (detail::read_entry) and checked before any byte moves: the domain is known, the reference in
// range and not reserved, the grant is for us, its type usable, write access allowed, the frame
// one of the granter's data pages, and [offset, offset + len) inside the page and inside a
// sub-page grant's range. A transitive grant is followed one level to the original granter,
// whose entry must name the intermediate domain; permissions and ranges of both apply (and the
// original granter must not have tied our activity slot to ourselves: memory_domain.hpp). An entry
// the granter changes concurrently can fail that one operation or copy from another of the
// granter's own pages; it cannot make the copier touch memory outside the granter's region.
//
// Resolve once: consecutive operations naming the same grant reuse the validated result, as Xen
// keeps its mapping across consecutive ops on one gref; group operations by grant to profit.
//
// Revocation safety without a per-operation atomic (what keeps a 1500-byte copy near memcpy
// speed): a copier publishes, in each granter domain it touches, an odd activity count for the
// duration of the batch (store, full fence F3, then read entries) and an even one at the end
// (release). A granter clears an entry, fences (F4) and only reuses the page after every odd
// count it saw has moved (grant_table::end_access/reclaim).
//
// A real Xen back end plugs in here: the same grant_copy_op batches become struct gnttab_copy
// arrays issued with xengnttab_grant_copy() (libxengnttab) or IOCTL_GNTDEV_GRANT_COPY, the status
// values are already GNTST_*, and memory_domain/registry give way to the hypervisor's own tables;
// mapping goes through xengnttab_map_grant_ref() behind the MapPolicy of grant_map.hpp.
// splitnet does not link Xen libraries: the interface stays the same, the executor changes.
//
// Reading in place (begin_reads/end_reads) validates the same way and keeps the activity count
// odd until the reader is done, so a TAP write can be the only copy of a granted packet.
//
// Threading: one grant_copier per worker thread, each with its own activity slot.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

#include <splitnet/config.hpp>
#include <splitnet/detail/shared_access.hpp>
#include <splitnet/grant/detail/entry_access.hpp>
#include <splitnet/grant/memory_domain.hpp>

namespace splitnet::grant {

/// One side of a copy: a local buffer (local != nullptr) or `offset` in the page granted by
/// domain `domid` as reference `ref`.
struct copy_side {
    std::uint8_t* local = nullptr;
    grant_ref ref = 0;
    domain_id domid = 0;
    std::uint16_t offset = 0;

    [[nodiscard]] static constexpr copy_side buffer(std::uint8_t* p) noexcept {
        return {p, 0, 0, 0};
    }
    [[nodiscard]] static constexpr copy_side granted(domain_id d, grant_ref r,
                                                     std::uint16_t off = 0) noexcept {
        return {nullptr, r, d, off};
    }
};

struct grant_copy_op {
    copy_side source;
    copy_side dest;
    std::uint16_t len = 0;
    grant_status status = grant_status::general_error; ///< written by copy()
};

/// A read in place: `source` as for a copy; begin_reads() says where its `len` bytes are.
struct grant_read_op {
    copy_side source;
    std::uint16_t len = 0;
    const std::uint8_t* data = nullptr;                ///< written by begin_reads()
    grant_status status = grant_status::general_error; ///< written by begin_reads()
};

struct grant_copy_stats {
    std::uint64_t batches = 0;
    std::uint64_t ops = 0;            ///< operations attempted
    std::uint64_t bytes = 0;          ///< bytes copied (or read in place) by successful operations
    std::uint64_t failed = 0;         ///< operations with a status other than okay
    std::uint64_t resolved = 0;       ///< grant entries read and validated
    std::uint64_t resolve_reused = 0; ///< sides served by the previous operation's resolution
};

class grant_copier {
public:
    static constexpr std::uint32_t max_domains_per_batch = 16;
    static constexpr std::size_t chunk = 64; ///< operations resolved ahead of their copies

    /// `self` is this grantee's domain id; `activity_slot` its slot in every granter's activity
    /// page (distinct per worker copying from the same granter).
    grant_copier(const domain_registry& domains, domain_id self,
                 std::uint32_t activity_slot) noexcept
        : domains_(domains), self_(self), slot_(activity_slot) {}

    [[nodiscard]] const grant_copy_stats& stats() const noexcept { return stats_; }

    /// Executes a batch; every op's status is set. Overlapping ranges (a hostile granter may make
    /// source and destination the same page) are moved as memmove would (move_bytes).
    void copy(std::span<grant_copy_op> ops) noexcept {
        ++stats_.batches;
        resolution src_memo{}, dst_memo{};
        // Two passes per chunk: resolve every op (entry reads, prefetching the data they name),
        // then move the bytes, so the cache misses of entries and data overlap.
        std::uint8_t* src[chunk];
        std::uint8_t* dst[chunk];
        for (std::size_t base = 0; base < ops.size(); base += chunk) {
            const std::size_t n = ops.size() - base < chunk ? ops.size() - base : chunk;
            for (std::size_t i = 0; i < n; ++i) {
                grant_copy_op& op = ops[base + i];
                if (base + i + lookahead < ops.size()) {
                    prefetch_entry(ops[base + i + lookahead].source, src_memo);
                }
                grant_status st = resolve(op.source, false, op.len, src_memo, src[i]);
                if (st == grant_status::okay) {
                    st = resolve(op.dest, true, op.len, dst_memo, dst[i]);
                }
                op.status = st;
                if (st == grant_status::okay) {
                    SPLITNET_PREFETCH(src[i]); // the first line's miss; the rest streams
                }
            }
            for (std::size_t i = 0; i < n; ++i) {
                grant_copy_op& op = ops[base + i];
                ++stats_.ops;
                if (op.status != grant_status::okay) {
                    ++stats_.failed;
                    continue;
                }
                move_bytes(dst[i], src[i], op.len);
                stats_.bytes += op.len;
            }
        }
        end_batch();
    }

    /// Reads in place, for a grantee that hands granted bytes straight to a device (a TAP
    /// write, say) rather than copying them out first: resolves every op's source with the
    /// checks and statuses of copy() and sets `data`. The bytes stay readable until end_reads();
    /// until then the granters' end_access/reclaim hold the pages back, as during a copy. A
    /// granter can still change the bytes under the reader (its own data), never what memory
    /// they are. One batch at a time: no copy() between begin_reads() and end_reads().
    void begin_reads(std::span<grant_read_op> ops) noexcept {
        ++stats_.batches;
        resolution memo{};
        for (grant_read_op& op : ops) {
            ++stats_.ops;
            std::uint8_t* p = nullptr;
            op.status = resolve(op.source, false, op.len, memo, p);
            op.data = op.status == grant_status::okay ? p : nullptr;
            if (op.status == grant_status::okay) {
                stats_.bytes += op.len;
            } else {
                ++stats_.failed;
            }
        }
    }
    void end_reads() noexcept { end_batch(); }

private:
    /// A validated grant: the page and the byte range [lo, hi) of it the grant allows.
    struct resolution {
        const memory_domain* dom = nullptr;
        grant_ref ref = invalid_ref;
        bool writable = false;
        std::uint8_t* page = nullptr;
        std::uint16_t lo = 0;
        std::uint16_t hi = 0;
    };

    static constexpr std::size_t lookahead = 8;

    /// Moves one operation's bytes. The two ranges overlap only when a granter names one page
    /// for both sides (it harms only itself): memmove then. Otherwise, on x86-64, packet-sized
    /// copies use `rep movsb`, as compilers inline a fixed-size memcpy. Measured with
    /// bench/grant/grant_copy_bench.cpp (1500-byte copies from a 128 MiB region, interleaved
    /// repetitions, 3 runs each): the batch reached 0.80-1.0x the inlined memcpy's rate this way
    /// against 0.72-0.83x through glibc's memmove (AVX-512 loop). Small copies stay with the
    /// library, whose start-up is cheaper. Sanitized builds take memmove, which they can check.
    static void move_bytes(std::uint8_t* dst, const std::uint8_t* src, std::size_t len) noexcept {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(SPLITNET_SANITIZED) // clang too
        const auto d = reinterpret_cast<std::uintptr_t>(dst);
        const auto s = reinterpret_cast<std::uintptr_t>(src);
        const bool apart = d + len <= s || s + len <= d;
        if (len >= string_copy_min && apart) {
            asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(len) : : "memory");
            return;
        }
#endif
        std::memmove(dst, src, len);
    }
    static constexpr std::size_t string_copy_min = 512;

    /// Starts loading the grant entry a later op will read (same domain as the memo: the
    /// common case of a batch from one guest).
    static void prefetch_entry(const copy_side& side, const resolution& memo) noexcept {
        if (side.local == nullptr && memo.dom != nullptr && memo.dom->id == side.domid &&
            side.ref < memo.dom->table_entries()) {
            SPLITNET_PREFETCH(&memo.dom->entry(side.ref));
        }
    }

    grant_status resolve(const copy_side& side, bool write, std::uint16_t len, resolution& memo,
                         std::uint8_t*& out) noexcept {
        if (side.local != nullptr) {
            out = side.local;
            return grant_status::okay;
        }
        if (std::uint32_t{side.offset} + len > grant_page_size) {
            return grant_status::bad_copy_arg;
        }
        if (memo.dom == nullptr || memo.dom->id != side.domid || memo.ref != side.ref ||
            (write && !memo.writable)) {
            // The previous resolution's domain is known and already marked active.
            const memory_domain* known =
                memo.dom != nullptr && memo.dom->id == side.domid ? memo.dom : nullptr;
            const grant_status s = resolve_grant(side.domid, side.ref, write, known, memo);
            if (s != grant_status::okay) {
                memo = {};
                return s;
            }
            ++stats_.resolved;
        } else {
            ++stats_.resolve_reused;
        }
        if (side.offset < memo.lo || std::uint32_t{side.offset} + len > memo.hi) {
            return grant_status::bad_copy_arg;
        }
        out = memo.page + side.offset;
        return grant_status::okay;
    }

    grant_status resolve_grant(domain_id domid, grant_ref ref, bool write,
                               const memory_domain* known, resolution& r) noexcept {
        const memory_domain* d = known != nullptr ? known : domains_.find(domid);
        if (d == nullptr) {
            return grant_status::bad_domain;
        }
        const memory_domain* granter = d;
        grant_entry e{};
        if (const grant_status s = read_grant(*d, ref, self_, e, known != nullptr);
            s != grant_status::okay) {
            return s;
        }
        bool readonly = (e.flags & gtf::readonly) != 0;
        if (e.type() == gtf::transitive) {
            // One level: what domain trans_domid granted to `domid`, re-granted to us.
            const memory_domain* orig = domains_.find(e.trans_domid());
            if (orig == nullptr) {
                return grant_status::bad_domain;
            }
            const domain_id via = domid;
            if (const grant_status s = read_grant(*orig, e.trans_gref(), via, e, false);
                s != grant_status::okay) {
                return s;
            }
            if (e.type() != gtf::permit_access) {
                return grant_status::bad_gntref; // no transitive chains beyond one level
            }
            readonly = readonly || (e.flags & gtf::readonly) != 0;
            d = orig;
        }
        if (write && readonly) {
            return grant_status::permission_denied;
        }
        if (!d->is_data_frame(e.frame())) {
            return grant_status::bad_page;
        }
        r.dom = granter;
        r.ref = ref;
        r.writable = !readonly;
        r.page = reinterpret_cast<std::uint8_t*>(d->page(e.frame()));
        if ((e.flags & gtf::sub_page) != 0) {
            if (std::uint32_t{e.page_off()} + e.length() > grant_page_size) {
                return grant_status::bad_copy_arg;
            }
            r.lo = e.page_off();
            r.hi = static_cast<std::uint16_t>(e.page_off() + e.length());
        } else {
            r.lo = 0;
            r.hi = static_cast<std::uint16_t>(grant_page_size);
        }
        return grant_status::okay;
    }

    /// Reads and checks one entry of `d` granted to `grantee`; marks this copier active in `d`
    /// first (unless `active`: marked earlier in this batch), so a granter's end_access cannot
    /// miss the copy about to happen.
    grant_status read_grant(const memory_domain& d, grant_ref ref, domain_id grantee,
                            grant_entry& e, bool active) noexcept {
        if (ref < reserved_entries || ref >= d.table_entries()) {
            return grant_status::bad_gntref;
        }
        if (!active && !mark_active(d)) {
            return grant_status::no_space;
        }
        if (!d.slot_may_serve(slot_, grantee)) {
            return grant_status::permission_denied; // the granter waits only for our own grants
        }
        e = detail::read_entry(d.entry(ref));
        const std::uint16_t type = e.type();
        if (type != gtf::permit_access && type != gtf::transitive) {
            return grant_status::bad_gntref;
        }
        if ((e.flags & gtf::revoke_request) != 0) {
            return grant_status::eagain;
        }
        if (e.domid != grantee) {
            return grant_status::permission_denied;
        }
        return grant_status::okay;
    }

    bool mark_active(const memory_domain& d) noexcept {
        for (std::uint32_t i = 0; i < nactive_; ++i) {
            if (active_[i] == &d) {
                return true;
            }
        }
        if (nactive_ == max_domains_per_batch || slot_ >= d.activity_slots) {
            return false;
        }
        std::uint32_t& a = d.activity(slot_);
        // Only this copier writes its slot; from odd to even and back. (A granter that scribbles
        // on it only confuses its own reclaim.)
        const std::uint32_t v = splitnet::detail::load_relaxed(a) | 1U;
        splitnet::detail::store_relaxed(a, v);
        splitnet::detail::full_fence(); // F3, pairs with the granter's F4
        active_[nactive_++] = &d;
        return true;
    }

    void end_batch() noexcept {
        for (std::uint32_t i = 0; i < nactive_; ++i) {
            std::uint32_t& a = active_[i]->activity(slot_);
            // R3: the copies of this batch happen before the granter sees the even count.
            splitnet::detail::store_release(a, (splitnet::detail::load_relaxed(a) | 1U) + 1U);
        }
        nactive_ = 0;
    }

    const domain_registry& domains_;
    domain_id self_;
    std::uint32_t slot_;
    const memory_domain* active_[max_domains_per_batch] = {};
    std::uint32_t nactive_ = 0;
    grant_copy_stats stats_{};
};

} // namespace splitnet::grant
