// SPDX-License-Identifier: MIT
// splitnet/bridge/detail/seqlock.hpp: the per-bucket sequence counter that lets FDB readers run
// without locks or writes while one writer changes the bucket. Anchor: Linux seqcount_t
// (read_seqcount_begin / read_seqcount_retry), in the fence form of H.-J. Boehm, "Can seqlocks
// get along with programming language memory models?" (MSPC 2012): every field a reader loads
// is a relaxed atomic, so a torn read is never a data race, only a retry.
//
// Edges: W1 (writer fence after the odd store) pairs with A2 (reader fence before the re-check):
// a reader that saw any store of the write section sees the odd count on re-check. W2 (release
// store of the even count) pairs with A1 (acquire load at read begin): a reader that starts on
// the even count sees every store of the section.
#pragma once

#include <atomic>
#include <cstdint>

namespace splitnet::bridge::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

/// Reader: the count to compare against at the end; spins while a write is in progress.
[[nodiscard]] inline std::uint32_t read_begin(const std::atomic<std::uint32_t>& seq) noexcept {
    for (;;) {
        const std::uint32_t s = seq.load(std::memory_order_acquire); // A1, pairs with W2
        if ((s & 1U) == 0) {
            return s;
        }
        cpu_relax();
    }
}

/// Reader: true when the loads since read_begin(seq) == s saw no concurrent write (keep them).
[[nodiscard]] inline bool read_valid(const std::atomic<std::uint32_t>& seq,
                                     std::uint32_t s) noexcept {
    std::atomic_thread_fence(std::memory_order_acquire); // A2, pairs with W1
    return seq.load(std::memory_order_relaxed) == s;
}

/// Writer (the only one): opens a write section.
inline void write_begin(std::atomic<std::uint32_t>& seq) noexcept {
    seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release); // W1, pairs with A2
}

/// Writer: closes the section opened by write_begin.
inline void write_end(std::atomic<std::uint32_t>& seq) noexcept {
    seq.store(seq.load(std::memory_order_relaxed) + 1,
              std::memory_order_release); // W2, pairs with A1
}

} // namespace splitnet::bridge::detail
