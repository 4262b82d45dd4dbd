// SPDX-License-Identifier: MIT
// splitnet/nic/detail/afxdp_ledger.hpp: who holds each buffer of a pool, as seen by one AF_XDP
// socket: the caller (or the pool), the kernel's receive side (fill ring, driver, RX ring) or the
// kernel's transmit side (TX ring, device, completion ring).
//
// The AF_XDP rule this enforces is Documentation/networking/af_xdp.rst, FAQ "corrupted packets":
// a UMEM buffer is in at most one ring at a time. libxdp has no check for it; a buffer handed to
// the fill ring and the TX ring at once is received into while it is being sent. The ledger makes
// every transition explicit (user -> fill -> user, user -> tx -> user), refuses the others, and at
// teardown names the buffers the kernel still held, so they go back to the pool exactly once.
// One byte per buffer (4 KiB for a 4096-buffer pool, cache resident); one owner thread.
#pragma once

#include <cstdint>
#include <memory>

namespace splitnet::nic::detail {

enum class buffer_owner : std::uint8_t {
    user = 0, ///< the caller or the pool: not in any ring of this socket
    fill = 1, ///< posted to the fill ring; the kernel owns it until it shows up on the RX ring
    tx = 2, ///< posted to the TX ring; the kernel owns it until it shows up on the completion ring
};

class buffer_ledger {
public:
    buffer_ledger() = default;
    explicit buffer_ledger(std::uint32_t buffers)
        : owner_(std::make_unique<buffer_owner[]>(buffers)), size_(buffers) {}

    [[nodiscard]] std::uint32_t size() const noexcept { return size_; }

    [[nodiscard]] bool is(std::uint64_t index, buffer_owner o) const noexcept {
        return index < size_ && owner_[index] == o;
    }

    /// Moves buffer `index` from `from` to `to`; false (and no change) when it was not at `from`.
    [[nodiscard]] bool move(std::uint64_t index, buffer_owner from, buffer_owner to) noexcept {
        if (index >= size_ || owner_[index] != from) {
            return false;
        }
        owner_[index] = to;
        return true;
    }

    /// Calls fn(index) for every buffer not held by the user, and marks it as the user's.
    template <class Fn>
    void release_all(Fn&& fn) noexcept(noexcept(fn(std::uint32_t{}))) {
        for (std::uint32_t i = 0; i < size_; ++i) {
            if (owner_[i] != buffer_owner::user) {
                owner_[i] = buffer_owner::user;
                fn(i);
            }
        }
    }

    [[nodiscard]] std::uint32_t count(buffer_owner o) const noexcept {
        std::uint32_t n = 0;
        for (std::uint32_t i = 0; i < size_; ++i) {
            n += owner_[i] == o ? 1U : 0U;
        }
        return n;
    }

private:
    std::unique_ptr<buffer_owner[]> owner_;
    std::uint32_t size_ = 0;
};

} // namespace splitnet::nic::detail
