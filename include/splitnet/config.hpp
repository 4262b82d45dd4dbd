// SPDX-License-Identifier: MIT
// splitnet/config.hpp: platform constants every component shares.
// The cache-line size is a constant here rather than std::hardware_destructive_interference_size:
// g++ 12 warns (-Winterference-size) when that is used in a header, and clang 14 with
// libstdc++ 12 does not declare it.
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>

#if !defined(__x86_64__) && !defined(__aarch64__)
#warning "splitnet is developed and tested on x86_64 and aarch64 only"
#endif

namespace splitnet {

#if defined(__APPLE__) && defined(__aarch64__) || defined(__powerpc64__)
inline constexpr std::size_t cache_line_size = 128;
#else
inline constexpr std::size_t cache_line_size = 64;
#endif

/// Page size of every shared-memory protocol (Xen: "always 4K" for rings and grants).
inline constexpr std::size_t page_size = 4096;

} // namespace splitnet

#if defined(__GNUC__)
#define SPLITNET_LIKELY(x) __builtin_expect(!!(x), 1)
#define SPLITNET_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define SPLITNET_PREFETCH(p) __builtin_prefetch(p)
#define SPLITNET_PREFETCH_W(p) __builtin_prefetch(p, 1)
#else
#define SPLITNET_LIKELY(x) (x)
#define SPLITNET_UNLIKELY(x) (x)
#define SPLITNET_PREFETCH(p) ((void)(p))
#define SPLITNET_PREFETCH_W(p) ((void)(p))
#endif

// Sanitizers check the memory accesses of C and C++ code, not those of inline assembly: a fast
// path written in assembly gives way to the plain one in sanitized builds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SPLITNET_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define SPLITNET_SANITIZED 1
#endif
#endif

namespace splitnet::detail {
/// Reports a set-up error in a build without exceptions: there is no one to catch it.
[[noreturn]] inline void fatal(const char* what) noexcept {
    std::fprintf(stderr, "splitnet: fatal: %s\n", what);
    std::abort();
}
} // namespace splitnet::detail

// Set-up errors are thrown (DESIGN.md principle 4). Code built with -fno-exceptions gets the
// same message on stderr and an abort instead, so every header still compiles there.
#if defined(__cpp_exceptions)
#define SPLITNET_THROW(...) throw __VA_ARGS__
#else
#define SPLITNET_THROW(...) ::splitnet::detail::fatal((__VA_ARGS__).what())
#endif
