// SPDX-License-Identifier: MIT
// splitnet/grant/memory_domain.hpp: a memory domain (a guest, the driver domain) as the grant
// machinery sees it: an id and a region of 4 KiB pages, in this process or a shared memfd
// (ring/shared_region.hpp) mapped from another process, and the registry a grantee keeps of the
// domains it serves.
//
// Region layout (agreed at connection time, as Xen's setup_table hands over table frames):
//   pages [0, table_pages)       the domain's grant table, 256 entries of 16 bytes per page
//   page  table_pages            activity words: one 64-byte slot per grantee worker, where it
//                                publishes its copy batches (grant_copy.hpp); read by the granter
//   pages [table_pages + 1, end) data frames: the only pages a grant may name
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>

#include <splitnet/config.hpp>
#include <splitnet/grant/grant_entry.hpp>

namespace splitnet::grant {

/// Grantee workers that may copy from one domain at once (each has a 64-byte activity slot).
inline constexpr std::uint32_t max_activity_slots = 16;

struct memory_domain {
    domain_id id = invalid_domain;
    std::span<std::byte> region;      ///< all pages of the domain, page aligned
    std::uint32_t table_pages = 1;    ///< pages holding grant entries
    std::uint32_t activity_slots = 4; ///< grantee workers that may copy from this domain
    int fd = -1;                      ///< the region's memfd when shared (for mmap mappings)

    /// Checks the layout; throws std::invalid_argument saying what is wrong.
    void validate() const {
        if (auto why = check()) {
            SPLITNET_THROW(std::invalid_argument(*why));
        }
    }

    /// What is wrong with the layout, if anything (for layouts an untrusted peer described).
    [[nodiscard]] std::optional<std::string> check() const {
        const std::string who = "memory_domain " + std::to_string(id) + ": ";
        if (id == invalid_domain) {
            return "memory_domain: id 0x7ff4 is DOMID_INVALID";
        }
        if (reinterpret_cast<std::uintptr_t>(region.data()) % grant_page_size != 0 ||
            region.size() % grant_page_size != 0) {
            return who + "region must be whole, page-aligned pages";
        }
        if (table_pages == 0 || std::size_t{table_pages} + 2 > pages()) {
            return who + std::to_string(pages()) + " pages cannot hold " +
                   std::to_string(table_pages) +
                   " grant-table pages, the activity page and at least one data page";
        }
        if (activity_slots == 0 || activity_slots > max_activity_slots) {
            return who + "activity_slots must be 1.." + std::to_string(max_activity_slots);
        }
        return std::nullopt;
    }

    [[nodiscard]] std::size_t pages() const noexcept { return region.size() / grant_page_size; }
    [[nodiscard]] std::uint32_t table_entries() const noexcept {
        return table_pages * static_cast<std::uint32_t>(entries_per_page);
    }
    [[nodiscard]] grant_entry& entry(grant_ref ref) const noexcept {
        return reinterpret_cast<grant_entry*>(region.data())[ref];
    }
    /// Activity words kept outside the region, by slot (nullptr: the word in the activity
    /// page). A granter that shares its region read-only gives each grantee a small writable
    /// page of its own for its slot (netif/backend_memory.hpp), so a grantee can neither write
    /// the granter's memory nor touch another grantee's slot.
    std::array<std::uint32_t*, max_activity_slots> activity_at{};

    /// Who copies under each activity slot, where the granter knows it (nullptr, or
    /// invalid_domain in a slot: unknown, any grantee). Known owners narrow what ending a grant
    /// waits for to the slots of the entry's grantee (and unknown ones), so a grantee that stays
    /// inside a copy batch, slowly or on purpose, holds back only the references granted to it.
    /// The price: a third party following one of these grants transitively would copy under a
    /// slot nobody waits for, so a copier whose slot here has a known owner follows only grants
    /// made to that owner (grant_copy.hpp). Changed only while the slot is free (its count even).
    domain_id* activity_owners = nullptr;

    [[nodiscard]] domain_id activity_owner(std::uint32_t slot) const noexcept {
        return activity_owners == nullptr ? invalid_domain
                                          : std::atomic_ref<domain_id>(activity_owners[slot])
                                                .load(std::memory_order_relaxed);
    }
    /// Whether the copier in `slot` may be copying what this domain granted to `grantee`.
    [[nodiscard]] bool slot_may_serve(std::uint32_t slot, domain_id grantee) const noexcept {
        const domain_id owner = activity_owner(slot);
        return owner == invalid_domain || owner == grantee;
    }

    /// The activity word of grantee slot `slot` (< activity_slots).
    [[nodiscard]] std::uint32_t& activity(std::uint32_t slot) const noexcept {
        if (activity_at[slot] != nullptr) {
            return *activity_at[slot];
        }
        return *reinterpret_cast<std::uint32_t*>(
            region.data() + std::size_t{table_pages} * grant_page_size + std::size_t{slot} * 64);
    }
    [[nodiscard]] std::uint64_t first_data_frame() const noexcept { return table_pages + 1U; }
    [[nodiscard]] bool is_data_frame(std::uint64_t frame) const noexcept {
        return frame >= first_data_frame() && frame < pages();
    }
    [[nodiscard]] std::byte* page(std::uint64_t frame) const noexcept {
        return region.data() + frame * grant_page_size;
    }
};

/// The domains a grantee serves, by id: a fixed-size open-addressing table (no allocation after
/// construction; lookups are per grant operation, memoised by the callers for runs).
class domain_registry {
public:
    explicit domain_registry(std::uint32_t capacity = 64)
        : mask_(std::bit_ceil(capacity * 2U) - 1),
          slots_(std::make_unique<memory_domain[]>(mask_ + 1)), capacity_(capacity) {}

    /// Adds or replaces a domain (validated). Throws if the registry is full.
    void add(const memory_domain& d) {
        d.validate();
        std::uint32_t i = d.id & mask_;
        while (slots_[i].id != invalid_domain && slots_[i].id != d.id) {
            i = (i + 1) & mask_;
        }
        if (slots_[i].id == invalid_domain) {
            if (size_ == capacity_) {
                SPLITNET_THROW(std::length_error("domain_registry: more than " +
                                                 std::to_string(capacity_) + " domains"));
            }
            ++size_;
        }
        slots_[i] = d;
    }

    /// Removes a domain (a disconnected peer); backward-shift keeps probes short.
    void remove(domain_id id) noexcept {
        std::uint32_t i = id & mask_;
        while (slots_[i].id != id) {
            if (slots_[i].id == invalid_domain) {
                return;
            }
            i = (i + 1) & mask_;
        }
        for (std::uint32_t j = (i + 1) & mask_; slots_[j].id != invalid_domain;
             j = (j + 1) & mask_) {
            const std::uint32_t home = slots_[j].id & mask_;
            if (((j - home) & mask_) >= ((j - i) & mask_)) {
                slots_[i] = slots_[j];
                i = j;
            }
        }
        slots_[i] = memory_domain{};
        --size_;
    }

    [[nodiscard]] const memory_domain* find(domain_id id) const noexcept {
        for (std::uint32_t i = id & mask_;; i = (i + 1) & mask_) {
            if (slots_[i].id == id) {
                return &slots_[i];
            }
            if (slots_[i].id == invalid_domain) {
                return nullptr;
            }
        }
    }

    [[nodiscard]] std::uint32_t size() const noexcept { return size_; }

private:
    std::uint32_t mask_;
    std::unique_ptr<memory_domain[]> slots_;
    std::uint32_t capacity_;
    std::uint32_t size_ = 0;
};

} // namespace splitnet::grant
