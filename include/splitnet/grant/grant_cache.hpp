// SPDX-License-Identifier: MIT
// splitnet/grant/grant_cache.hpp: persistent grant mappings (Netchannel 2's grant caching, blkif's
// feature-persistent as Linux blkback implements it): a bounded cache of mapped grants keyed by
// (domain, reference), so a grant used again is not mapped and unmapped again.
//
//  - Bounded: at most `capacity` mappings; inserting into a full cache unmaps the least recently
//    used one. Lookups and inserts are O(1): an open-addressing index over fixed slots and an
//    intrusive LRU list; nothing is allocated after construction.
//  - Idle timeout: expire(now) unmaps mappings unused for longer than the timeout (blkback purges
//    grants unused for 60 s).
//  - Revocation: a hit re-reads the entry's flags+domid word (one load); if the granter asked to
//    revoke (its end_access found the grant mapped) or the entry no longer grants this domain,
//    the mapping is dropped and the lookup fails with that status. sweep_revoked() does the same
//    for every entry, off the per-packet path, so a granter's retry succeeds promptly.
//  - One mapping per grant: a write request for a grant cached read-only remaps it writable (a
//    mapper tracks no per-grant counts: mappings of one grant must not overlap).
//
// Threading: one cache per worker, like its mapper.
#pragma once

#include <bit>
#include <cstdint>
#include <memory>
#include <stdexcept>

#include <splitnet/config.hpp>
#include <splitnet/grant/grant_map.hpp>

namespace splitnet::grant {

struct grant_cache_stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;      ///< lookups that had to map
    std::uint64_t evictions = 0;   ///< mappings dropped to make room (LRU)
    std::uint64_t expirations = 0; ///< mappings dropped after the idle timeout
    std::uint64_t revocations = 0; ///< mappings dropped because the granter revoked the grant
    std::uint64_t failed = 0;      ///< lookups whose mapping failed
};

template <map_policy Policy = direct_map>
class grant_cache {
public:
    /// A cache of up to `capacity` mappings made with `mapper`; mappings idle for more than
    /// `idle_timeout_ns` go at the next expire() (0: never).
    grant_cache(grant_mapper<Policy>& mapper, std::uint32_t capacity, std::uint64_t idle_timeout_ns)
        : mapper_(mapper), capacity_(capacity), idle_ns_(idle_timeout_ns),
          slots_(std::make_unique<slot[]>(capacity)), index_mask_(std::bit_ceil(capacity * 2U) - 1),
          index_(std::make_unique<std::uint32_t[]>(index_mask_ + 1)) {
        if (capacity == 0) {
            SPLITNET_THROW(std::invalid_argument("grant_cache: capacity must be at least 1"));
        }
        for (std::uint32_t i = 0; i <= index_mask_; ++i) {
            index_[i] = none;
        }
        for (std::uint32_t i = 0; i < capacity; ++i) {
            slots_[i].next = i + 1 < capacity ? i + 1 : none; // all on the free list
        }
        free_ = 0;
    }
    grant_cache(const grant_cache&) = delete;
    grant_cache& operator=(const grant_cache&) = delete;
    ~grant_cache() { clear(); }

    [[nodiscard]] const grant_cache_stats& stats() const noexcept { return stats_; }
    [[nodiscard]] std::uint32_t size() const noexcept { return size_; }

    /// The page of grant `ref` of domain `domid`, mapped (writable if asked). On a miss it maps,
    /// evicting the least recently used mapping if the cache is full.
    [[nodiscard]] grant_status acquire(domain_id domid, grant_ref ref, bool writable,
                                       std::uint64_t now_ns, std::uint8_t*& page) noexcept {
        const std::uint64_t k = key(domid, ref);
        std::uint32_t at = find(k);
        if (at != none) {
            slot& s = slots_[at];
            const grant_status live = still_granted(s);
            if (live == grant_status::okay && (!writable || s.map.writable)) {
                ++stats_.hits;
                s.last_used = now_ns;
                touch(at);
                page = s.map.page;
                return grant_status::okay;
            }
            if (live != grant_status::okay) {
                ++stats_.revocations;
                drop(at);
                ++stats_.failed;
                return live;
            }
            drop(at); // cached read-only, wanted writable: remap below
        }
        ++stats_.misses;
        if (free_ == none) {
            ++stats_.evictions;
            drop(lru_tail_);
        }
        grant_mapping m;
        const grant_status s = mapper_.map(domid, ref, writable, m);
        if (s != grant_status::okay) {
            ++stats_.failed;
            return s;
        }
        at = free_;
        free_ = slots_[at].next;
        slots_[at].map = m;
        slots_[at].k = k;
        slots_[at].last_used = now_ns;
        link_front(at);
        insert_index(k, at);
        ++size_;
        page = m.page;
        return grant_status::okay;
    }

    /// Unmaps mappings idle for longer than the timeout. Returns how many.
    std::uint32_t expire(std::uint64_t now_ns) noexcept {
        std::uint32_t n = 0;
        while (idle_ns_ != 0 && lru_tail_ != none &&
               now_ns - slots_[lru_tail_].last_used > idle_ns_) {
            drop(lru_tail_);
            ++stats_.expirations;
            ++n;
        }
        return n;
    }

    /// Unmaps every mapping whose grant was revoked or changed. Returns how many.
    std::uint32_t sweep_revoked() noexcept {
        std::uint32_t n = 0;
        for (std::uint32_t at = lru_head_; at != none;) {
            const std::uint32_t next = slots_[at].next;
            if (still_granted(slots_[at]) != grant_status::okay) {
                drop(at);
                ++stats_.revocations;
                ++n;
            }
            at = next;
        }
        return n;
    }

    /// Unmaps every mapping of `domid` (the domain disconnects).
    void invalidate(domain_id domid) noexcept {
        for (std::uint32_t at = lru_head_; at != none;) {
            const std::uint32_t next = slots_[at].next;
            if (slots_[at].map.domid == domid) {
                drop(at);
            }
            at = next;
        }
    }

    void clear() noexcept {
        while (lru_head_ != none) {
            drop(lru_head_);
        }
    }

private:
    static constexpr std::uint32_t none = 0xffffffffU;

    struct slot {
        grant_mapping map{};
        std::uint64_t k = 0;
        std::uint64_t last_used = 0;
        std::uint32_t prev = none;
        std::uint32_t next = none; ///< LRU list, or the free list when unused
    };

    static constexpr std::uint64_t key(domain_id d, grant_ref r) noexcept {
        return (std::uint64_t{d} << 32) | r;
    }
    [[nodiscard]] std::uint32_t home(std::uint64_t k) const noexcept {
        return static_cast<std::uint32_t>((k * 0x9e3779b97f4a7c15ULL) >> 40) & index_mask_;
    }

    [[nodiscard]] std::uint32_t find(std::uint64_t k) const noexcept {
        for (std::uint32_t i = home(k);; i = (i + 1) & index_mask_) {
            const std::uint32_t at = index_[i];
            if (at == none) {
                return none;
            }
            if (slots_[at].k == k) {
                return at;
            }
        }
    }
    void insert_index(std::uint64_t k, std::uint32_t at) noexcept {
        std::uint32_t i = home(k);
        while (index_[i] != none) {
            i = (i + 1) & index_mask_;
        }
        index_[i] = at;
    }
    void erase_index(std::uint64_t k) noexcept {
        std::uint32_t i = home(k);
        while (slots_[index_[i]].k != k) {
            i = (i + 1) & index_mask_;
        }
        // Backward-shift deletion: keeps every probe chain unbroken without tombstones.
        for (std::uint32_t j = (i + 1) & index_mask_; index_[j] != none;
             j = (j + 1) & index_mask_) {
            const std::uint32_t h = home(slots_[index_[j]].k);
            if (((j - h) & index_mask_) >= ((j - i) & index_mask_)) {
                index_[i] = index_[j];
                i = j;
            }
        }
        index_[i] = none;
    }

    /// Is the cached grant still granted to us as it was when mapped? (One atomic load.)
    [[nodiscard]] grant_status still_granted(const slot& s) const noexcept {
        const memory_domain* d = domains().find(s.map.domid);
        if (d == nullptr) {
            return grant_status::bad_domain;
        }
        const std::uint32_t c = detail::load_combo(d->entry(s.map.ref));
        const std::uint16_t f = detail::combo_flags(c);
        if ((f & gtf::revoke_request) != 0) {
            return grant_status::eagain;
        }
        if ((f & gtf::type_mask) != gtf::permit_access || detail::combo_domid(c) != self()) {
            return grant_status::permission_denied;
        }
        return grant_status::okay;
    }

    void link_front(std::uint32_t at) noexcept {
        slots_[at].prev = none;
        slots_[at].next = lru_head_;
        if (lru_head_ != none) {
            slots_[lru_head_].prev = at;
        }
        lru_head_ = at;
        if (lru_tail_ == none) {
            lru_tail_ = at;
        }
    }
    void unlink(std::uint32_t at) noexcept {
        slot& s = slots_[at];
        (s.prev != none ? slots_[s.prev].next : lru_head_) = s.next;
        (s.next != none ? slots_[s.next].prev : lru_tail_) = s.prev;
    }
    void touch(std::uint32_t at) noexcept {
        if (lru_head_ != at) {
            unlink(at);
            link_front(at);
        }
    }
    void drop(std::uint32_t at) noexcept {
        unlink(at);
        erase_index(slots_[at].k);
        mapper_.unmap(slots_[at].map);
        slots_[at].next = free_;
        free_ = at;
        --size_;
    }

    [[nodiscard]] const domain_registry& domains() const noexcept { return mapper_.domains(); }
    [[nodiscard]] domain_id self() const noexcept { return mapper_.self(); }

    grant_mapper<Policy>& mapper_;
    std::uint32_t capacity_;
    std::uint64_t idle_ns_;
    std::unique_ptr<slot[]> slots_;
    std::uint32_t index_mask_;
    std::unique_ptr<std::uint32_t[]> index_;
    std::uint32_t free_ = none;
    std::uint32_t lru_head_ = none;
    std::uint32_t lru_tail_ = none;
    std::uint32_t size_ = 0;
    grant_cache_stats stats_{};
};

} // namespace splitnet::grant
