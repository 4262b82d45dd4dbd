// SPDX-License-Identifier: MIT
// splitnet/pipeline/runtime_policies.hpp: moderation and scheduling policies chosen at run time
// (a daemon's --moderation and --sched flags) behind the same concepts as the compile-time
// ones. Each wraps a std::variant of the real policies, so the choice costs one indirect branch
// per call, made once per burst or per grant, never per packet. An embedder who knows its
// policy at compile time names it directly instead.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include <splitnet/coalesce/adaptive_moderation.hpp>
#include <splitnet/coalesce/moderation.hpp>
#include <splitnet/coalesce/no_moderation.hpp>
#include <splitnet/coalesce/tunable_moderation.hpp>
#include <splitnet/sched/credit.hpp>
#include <splitnet/sched/round_robin_dispatch.hpp>

namespace splitnet::pipeline {

/// moderation: none, fixed (frames, timeout) or adaptive, picked at run time.
class any_moderation {
public:
    any_moderation() = default;
    explicit any_moderation(coalesce::moderation::none m) : v_(m) {}
    explicit any_moderation(coalesce::moderation::tunable m) : v_(m) {}
    explicit any_moderation(const coalesce::moderation::adaptive& m) : v_(m) {}

    bool on_events(std::uint32_t n, coalesce::time_point now) noexcept {
        return std::visit([&](auto& m) { return m.on_events(n, now); }, v_);
    }
    [[nodiscard]] bool should_fire(coalesce::time_point now) const noexcept {
        return std::visit([&](const auto& m) { return m.should_fire(now); }, v_);
    }
    [[nodiscard]] coalesce::time_point deadline() const noexcept {
        return std::visit([](const auto& m) { return m.deadline(); }, v_);
    }
    void on_fired(coalesce::time_point now) noexcept {
        std::visit([&](auto& m) { m.on_fired(now); }, v_);
    }
    void on_drop(std::uint32_t n) noexcept {
        std::visit([&](auto& m) { m.on_drop(n); }, v_);
    }
    [[nodiscard]] const coalesce::moderation_stats& stats() const noexcept {
        return std::visit(
            [](const auto& m) -> const coalesce::moderation_stats& { return m.stats(); }, v_);
    }
    /// "none", "fixed:N,T" (frames, microseconds) or "adaptive"; nullopt-like empty name on
    /// error, with `why` set.
    [[nodiscard]] static bool parse(std::string_view s, any_moderation& out, std::string& why) {
        if (s == "none") {
            out = any_moderation(coalesce::moderation::none{});
            return true;
        }
        if (s == "adaptive") {
            out = any_moderation(coalesce::moderation::adaptive{});
            return true;
        }
        if (s.substr(0, 6) == "fixed:") {
            const std::string_view rest = s.substr(6);
            const std::size_t comma = rest.find(',');
            std::uint64_t n = 0, t = 0;
            if (comma != std::string_view::npos && number(rest.substr(0, comma), n) &&
                number(rest.substr(comma + 1), t) && n <= 4096 && t <= 1'000'000) {
                out = any_moderation(coalesce::moderation::tunable(
                    {static_cast<std::uint32_t>(n), std::chrono::microseconds(t)}));
                return true;
            }
        }
        why = "moderation must be none, fixed:FRAMES,USECS (e.g. fixed:32,100) or adaptive, "
              "got '" +
              std::string(s) + "'";
        return false;
    }
    [[nodiscard]] std::string name() const {
        switch (v_.index()) {
        case 0:
            return "none";
        case 1: {
            const auto& p = std::get<1>(v_).params();
            return "fixed:" + std::to_string(p.max_frames) + "," +
                   std::to_string(
                       std::chrono::duration_cast<std::chrono::microseconds>(p.timeout).count());
        }
        default:
            return "adaptive";
        }
    }

private:
    static bool number(std::string_view s, std::uint64_t& out) {
        if (s.empty() || s.size() > 9) {
            return false;
        }
        out = 0;
        for (const char c : s) {
            if (c < '0' || c > '9') {
                return false;
            }
            out = out * 10 + static_cast<std::uint64_t>(c - '0');
        }
        return true;
    }

    std::variant<coalesce::moderation::none, coalesce::moderation::tunable,
                 coalesce::moderation::adaptive>
        v_{};
};
static_assert(coalesce::moderation_policy<any_moderation>);

/// The scheduler variants of seeds 003/004: credit1 with round-robin event dispatch ("credit"),
/// with cache-aware dispatch ("cache-aware"), and with credit stealing on top ("stealing").
class any_scheduler {
public:
    enum class kind : std::uint8_t { credit, cache_aware, stealing };

    any_scheduler(const sched::credit_config& cfg, kind k) : kind_(k) {
        switch (k) {
        case kind::credit:
            v_.template emplace<0>(cfg);
            break;
        case kind::cache_aware:
            v_.template emplace<1>(cfg);
            break;
        case kind::stealing:
            v_.template emplace<2>(cfg);
            break;
        }
    }

    [[nodiscard]] sched::grant pick(sched::worker_id w, sched::time_point now) noexcept {
        return std::visit([&](auto& s) { return s.pick(w, now); }, v_);
    }
    void account(sched::entity_id e, sched::worker_id w, const sched::usage& u,
                 sched::time_point now) noexcept {
        std::visit([&](auto& s) { s.account(e, w, u, now); }, v_);
    }
    [[nodiscard]] sched::worker_id wake(sched::entity_id e, sched::time_point now) noexcept {
        return std::visit([&](auto& s) { return s.wake(e, now); }, v_);
    }
    void idle(sched::entity_id e, sched::time_point now) noexcept {
        std::visit([&](auto& s) { s.idle(e, now); }, v_);
    }
    void assign(sched::entity_id e, sched::guest_id g) {
        std::visit([&](auto& s) { s.assign(e, g); }, v_);
    }
    [[nodiscard]] const sched::credit_stats& stats() const noexcept {
        return std::visit([](const auto& s) -> const sched::credit_stats& { return s.stats(); },
                          v_);
    }

    [[nodiscard]] static bool parse(std::string_view s, kind& out, std::string& why) {
        if (s == "credit") {
            out = kind::credit;
        } else if (s == "cache-aware") {
            out = kind::cache_aware;
        } else if (s == "stealing") {
            out = kind::stealing;
        } else {
            why = "sched must be credit, cache-aware or stealing, got '" + std::string(s) + "'";
            return false;
        }
        return true;
    }
    [[nodiscard]] kind which() const noexcept { return kind_; }

private:
    kind kind_;
    std::variant<sched::credit_scheduler<sched::round_robin_dispatch>,
                 sched::credit_scheduler<sched::cache_aware_dispatch>,
                 sched::credit_scheduler<sched::cache_aware_dispatch, sched::seed_stealing>>
        v_{std::in_place_index<0>, sched::credit_config{}};
};
static_assert(sched::credit_policy<any_scheduler>);

} // namespace splitnet::pipeline
