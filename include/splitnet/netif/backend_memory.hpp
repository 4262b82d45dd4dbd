// SPDX-License-Identifier: MIT
// splitnet/netif/backend_memory.hpp: the driver domain's own memory as a grant domain: one
// sealed memfd holding its grant table, its activity page and the buffer pool every port uses
// (the AF_XDP UMEM included). Front ends that copy received data themselves (copy_side::
// frontend) map this region and copy out of read-only, range-limited grants of its buffers.
//
// Region layout (page granular, as memory_domain.hpp describes):
//   [0, table_pages)        grant table: reference ranges are handed to back-end queues, which
//                           grant from their own range without locks (grant_table shards)
//   table_pages             activity page: one slot per front end that copies from us
//   [table_pages + 1, end)  the buffer pool's arena: buffer i at page table_pages + 1 + i *
//                           frame_size / 4096
//
// What a front end that copies gets: this region through a read-only descriptor (it cannot
// write a byte of it, not even by mapping it again), and one small writable page of its own
// that holds its activity slot (memory_domain::activity_at), so it cannot touch another front
// end's slot either. The slot is recorded as that front end's (memory_domain::activity_owners):
// one that stays inside a copy batch holds back only the grants made to it, not the others'.
// Isolation, stated plainly: in Xen the hypervisor executes a guest's grant copy, so a guest can
// read only what it was granted; here such a front end could read any buffer of the pool, other
// guests' packets included. The grants bound an honest front end, not a hostile one: use
// copy_side::backend (the default) between mutually distrusting guests.
//
// Threading: the reference-range and activity-slot allocators are for the control thread (the
// one connecting and disconnecting front ends); the pool is thread-safe as always.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <splitnet/config.hpp>
#include <splitnet/grant/grant_entry.hpp>
#include <splitnet/grant/memory_domain.hpp>
#include <splitnet/packet/buffer_pool.hpp>
#include <splitnet/ring/shared_region.hpp>

namespace splitnet::netif {

struct backend_memory_config {
    grant::domain_id id = 0; ///< the driver domain's id (Dom0 by tradition)
    /// 256 references each, page 0 reserved; a frontend-copy queue takes ref_pages_for() its
    /// RX slots: 8 for a 1024-slot ring, so the default serves 16 such queues.
    std::uint32_t table_pages = 1 + 16 * 8;
    std::uint32_t activity_slots = 16; ///< front ends that may copy from us at once
    packet::buffer_pool_config pool{.frame_count = 16384, .frame_size = 2048, .headroom = 256};
    bool populate = true; ///< fault every page in at start (no page faults on the data path)
};

class backend_memory {
public:
    /// Table pages a frontend-copy queue with `rx_slots` RX slots takes: a ring's worth of
    /// grants in flight plus as many ended but waiting for a copy batch to finish.
    [[nodiscard]] static constexpr std::uint32_t ref_pages_for(std::uint32_t rx_slots) noexcept {
        const auto per_page = static_cast<std::uint32_t>(grant::entries_per_page);
        return (2 * rx_slots + per_page - 1) / per_page;
    }

    explicit backend_memory(const backend_memory_config& cfg)
        : cfg_(cfg),
          region_(ring::shared_region::create(
              "splitnet-backend",
              std::size_t{cfg.table_pages} + 1 +
                  (packet::buffer_pool::arena_bytes_for(cfg.pool) + page_size - 1) / page_size)),
          domain_{cfg.id, region_.bytes(), cfg.table_pages, cfg.activity_slots, region_.fd()},
          pool_(region_.pages(domain_.first_data_frame(),
                              region_.pages() - domain_.first_data_frame()),
                cfg.pool),
          range_used_(cfg.table_pages, false), slot_used_(cfg.activity_slots, false) {
        domain_.validate();    // a fresh memfd is zero: the table and activity page start clear
        range_used_[0] = true; // page 0 holds the reserved references
        owners_.fill(cfg.id);  // free slots: see give_activity_slot
        domain_.activity_owners = owners_.data();
        for (std::uint32_t a = 0; a < cfg.activity_slots; ++a) {
            activity_.push_back(ring::shared_region::create("splitnet-activity", 1));
            domain_.activity_at[a] = reinterpret_cast<std::uint32_t*>(activity_[a].bytes().data());
        }
        if (cfg.populate) {
            for (std::size_t p = 0; p < region_.pages(); ++p) {
                region_.page(p)[0] = std::byte{0}; // allocates the memfd page now
            }
        }
    }
    backend_memory(const backend_memory&) = delete;
    backend_memory& operator=(const backend_memory&) = delete;

    [[nodiscard]] packet::buffer_pool& pool() noexcept { return pool_; }
    [[nodiscard]] const grant::memory_domain& domain() const noexcept { return domain_; }
    [[nodiscard]] int fd() const noexcept { return region_.fd(); }
    /// A read-only descriptor of the region for a front end (the caller closes it).
    [[nodiscard]] int readonly_fd() const { return region_.reopen_readonly(); }
    /// The writable page holding activity slot `s` (for the front end given that slot).
    [[nodiscard]] int activity_fd(std::uint32_t s) const noexcept { return activity_[s].fd(); }

    /// The grant frame (page of this domain) holding byte `p` of a pool buffer.
    [[nodiscard]] std::uint64_t frame_of(const std::uint8_t* p) const noexcept {
        return static_cast<std::uint64_t>(reinterpret_cast<const std::byte*>(p) -
                                          region_.bytes().data()) /
               page_size;
    }

    /// A free reference range of `pages` table pages; nullopt when the table has none.
    [[nodiscard]] std::optional<grant::grant_ref> take_ref_range(std::uint32_t pages) {
        for (std::uint32_t p = 1; p + pages <= cfg_.table_pages; ++p) {
            bool free = true;
            for (std::uint32_t k = 0; k < pages; ++k) {
                free = free && !range_used_[p + k];
            }
            if (free) {
                for (std::uint32_t k = 0; k < pages; ++k) {
                    range_used_[p + k] = true;
                }
                return static_cast<grant::grant_ref>(p * grant::entries_per_page);
            }
        }
        return std::nullopt;
    }
    void give_ref_range(grant::grant_ref first, std::uint32_t pages) noexcept {
        const std::uint32_t p = first / static_cast<std::uint32_t>(grant::entries_per_page);
        for (std::uint32_t k = 0; k < pages && p + k < cfg_.table_pages; ++k) {
            range_used_[p + k] = false;
        }
    }

    /// An activity slot for the copier of front end `owner`; nullopt when all are taken. The
    /// slot is recorded as `owner`'s, so ending grants to other front ends never waits for it.
    /// Slots go round: one comes back to a new front end as late as possible, since a departed
    /// front end may still map its page and write there (each slot keeps its page for good).
    [[nodiscard]] std::optional<std::uint32_t> take_activity_slot(grant::domain_id owner) {
        const auto n = static_cast<std::uint32_t>(slot_used_.size());
        for (std::uint32_t i = 0; i < n; ++i) {
            const std::uint32_t s = (next_slot_ + i) % n;
            if (!slot_used_[s]) {
                slot_used_[s] = true;
                next_slot_ = (s + 1) % n;
                set_owner(s, owner);
                return s;
            }
        }
        return std::nullopt;
    }
    /// Gives a slot back once its front end is gone. The slot is recorded as ours: we grant
    /// nothing to ourselves, so no end of access waits on it, whatever a departed front end that
    /// still maps its page writes there.
    void give_activity_slot(std::uint32_t s) noexcept {
        if (s < slot_used_.size()) {
            slot_used_[s] = false;
            set_owner(s, cfg_.id);
        }
    }

private:
    void set_owner(std::uint32_t s, grant::domain_id owner) noexcept {
        // Relaxed: a queue granting to `owner` is handed to its worker after this store.
        std::atomic_ref<grant::domain_id>(owners_[s]).store(owner, std::memory_order_relaxed);
    }

    backend_memory_config cfg_;
    ring::shared_region region_;
    std::vector<ring::shared_region> activity_; ///< one page per activity slot
    std::array<grant::domain_id, grant::max_activity_slots> owners_;
    grant::memory_domain domain_;
    packet::buffer_pool pool_;
    std::vector<bool> range_used_;
    std::vector<bool> slot_used_;
    std::uint32_t next_slot_ = 0;
};

} // namespace splitnet::netif
