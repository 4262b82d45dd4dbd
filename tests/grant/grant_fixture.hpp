// Test domains: page-aligned regions in this process (or memfds), each with a grant table.
#pragma once

#include <cstdlib>
#include <cstring>
#include <memory>

#include <splitnet/grant/grant_table.hpp>
#include <splitnet/grant/memory_domain.hpp>

namespace splitnet::test {

struct page_region {
    explicit page_region(std::size_t pages)
        : mem(static_cast<std::byte*>(std::aligned_alloc(4096, pages * 4096))), n(pages) {
        std::memset(mem, 0, pages * 4096);
    }
    ~page_region() { std::free(mem); }
    page_region(const page_region&) = delete;
    page_region& operator=(const page_region&) = delete;
    std::byte* mem;
    std::size_t n;
};

/// A guest: 1 page of grant table, the activity page, and `data_pages` data frames.
struct test_domain {
    test_domain(grant::domain_id id, std::size_t data_pages)
        : region(data_pages + 2),
          dom{id, std::span<std::byte>(region.mem, region.n * 4096), 1, 4, -1}, table(dom) {}
    [[nodiscard]] std::uint8_t* frame(std::uint64_t f) const {
        return reinterpret_cast<std::uint8_t*>(dom.page(f));
    }
    page_region region;
    grant::memory_domain dom;
    grant::grant_table table;
};

} // namespace splitnet::test
