// SPDX-License-Identifier: MIT
// splitnet/sched/cpu_topology.hpp: which CPUs share a last-level cache, read from Linux sysfs
// (Documentation/ABI/testing/sysfs-devices-system-cpu: cpuN/cache/indexM/{level,type,
// shared_cpu_list} and the `online` list), or built by hand for a simulation or a test. Seed 003
// co-schedules the driver domain's I/O worker with the guest it serves on cores sharing the
// last-level cache; the placement (placement.hpp) and the cache-aware dispatcher use this map.
//
// The last-level cache of a CPU is its highest-level cache that is not an instruction cache
// (L3 on most x86 servers, L2 on the seed's Clovertown, one per CCX on AMD Zen). CPUs that list
// each other in that cache's shared_cpu_list form one domain; offline CPUs are left out.
//
// Errors (set-up only): std::system_error when a file cannot be read, std::invalid_argument when
// what it holds makes no sense; both name the file and say what to do instead.
#pragma once

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <splitnet/config.hpp>

namespace splitnet::sched {

/// Parses a kernel CPU list ("0-3,8,10-11", as in `online` and shared_cpu_list) into sorted,
/// de-duplicated CPU numbers. Throws std::invalid_argument naming `what` on a malformed list.
[[nodiscard]] inline std::vector<std::uint32_t> parse_cpu_list(std::string_view s,
                                                               std::string_view what = "cpu list") {
    std::vector<std::uint32_t> out;
    auto fail = [&](const char* why) {
        SPLITNET_THROW(std::invalid_argument(std::string(what) + ": \"" + std::string(s) +
                                             "\" is not a CPU list (" + why +
                                             "); expected e.g. 0-3,8,10-11"));
    };
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    if (s.empty()) {
        return out; // an empty list is legal (no CPU)
    }
    const char* p = s.data();
    const char* end = s.data() + s.size();
    while (p < end) {
        std::uint32_t lo = 0, hi = 0;
        auto r = std::from_chars(p, end, lo);
        if (r.ec != std::errc{}) {
            fail("a number was expected");
        }
        p = r.ptr;
        hi = lo;
        if (p < end && *p == '-') {
            r = std::from_chars(p + 1, end, hi);
            if (r.ec != std::errc{}) {
                fail("a number was expected after '-'");
            }
            p = r.ptr;
        }
        if (hi < lo) {
            fail("a range runs backwards");
        }
        if (hi - lo > 65535 || hi > 1U << 20) {
            fail("a range is implausibly large");
        }
        for (std::uint32_t c = lo; c <= hi; ++c) {
            out.push_back(c);
        }
        if (p < end) {
            if (*p != ',') {
                fail("',' or '-' was expected");
            }
            ++p;
            if (p == end) {
                fail("trailing ','");
            }
        }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

class cpu_topology {
public:
    static constexpr std::int32_t offline = -1;

    cpu_topology() = default;

    /// cpu_domain[c] is CPU c's LLC domain (0-based, dense), or `offline`.
    explicit cpu_topology(std::vector<std::int32_t> cpu_domain, unsigned llc_level = 0)
        : cpu_domain_(std::move(cpu_domain)), llc_level_(llc_level) {
        index();
    }

    /// `cpus` CPUs in `domains` equal blocks of consecutive CPUs (as a socket or a CCX
    /// numbers them); for simulations and machines whose sysfs lacks cache information.
    [[nodiscard]] static cpu_topology uniform(std::uint32_t cpus, std::uint32_t domains) {
        if (cpus == 0 || domains == 0 || domains > cpus) {
            SPLITNET_THROW(std::invalid_argument(
                "cpu_topology::uniform: need 1 <= domains <= cpus, got " + std::to_string(cpus) +
                " CPUs in " + std::to_string(domains) + " domains"));
        }
        std::vector<std::int32_t> d(cpus);
        for (std::uint32_t c = 0; c < cpus; ++c) {
            d[c] = static_cast<std::int32_t>(std::uint64_t{c} * domains / cpus);
        }
        return cpu_topology(std::move(d));
    }

    /// Reads the topology of the online CPUs under `root` (normally /sys/devices/system/cpu;
    /// tests point it at a fake tree).
    [[nodiscard]] static cpu_topology
    from_sysfs(const std::string& root = "/sys/devices/system/cpu") {
        const std::vector<std::uint32_t> online =
            parse_cpu_list(read_file(root + "/online"), root + "/online");
        if (online.empty()) {
            SPLITNET_THROW(std::invalid_argument(root + "/online lists no CPU; pass a topology "
                                                        "explicitly (cpu_topology::uniform)"));
        }
        std::vector<std::int32_t> dom(online.back() + 1, offline);
        std::map<std::vector<std::uint32_t>, std::int32_t> ids;
        std::vector<std::vector<std::uint32_t>> sharing(online.back() + 1);
        unsigned level_seen = 0;
        for (const std::uint32_t c : online) {
            const std::string cache = root + "/cpu" + std::to_string(c) + "/cache";
            unsigned best_level = 0;
            std::string best_list_path;
            for (unsigned i = 0;; ++i) {
                const std::string idx = cache + "/index" + std::to_string(i);
                std::string level_text;
                if (!try_read_file(idx + "/level", level_text)) {
                    if (i == 0) {
                        const int err = errno;
                        SPLITNET_THROW(std::system_error(
                            err, std::generic_category(),
                            "cannot read " + idx + "/level (no cache information for cpu" +
                                std::to_string(c) +
                                "); pass a topology explicitly "
                                "(cpu_topology::uniform)"));
                    }
                    break;
                }
                const std::string type = trim(read_file(idx + "/type"));
                if (type == "Instruction") {
                    continue;
                }
                const unsigned level = parse_uint(level_text, idx + "/level");
                if (level >= best_level) {
                    best_level = level;
                    best_list_path = idx + "/shared_cpu_list";
                }
            }
            if (best_level == 0) {
                SPLITNET_THROW(std::invalid_argument(
                    cache + " has no data or unified cache; pass a topology explicitly"));
            }
            std::vector<std::uint32_t> shared =
                parse_cpu_list(read_file(best_list_path), best_list_path);
            if (!std::binary_search(shared.begin(), shared.end(), c)) {
                SPLITNET_THROW(std::invalid_argument(
                    best_list_path + " does not list cpu" + std::to_string(c) +
                    " itself; the sysfs tree is inconsistent, pass a topology explicitly"));
            }
            // Offline CPUs may appear in the list; they belong to no domain.
            std::erase_if(shared, [&](std::uint32_t x) {
                return !std::binary_search(online.begin(), online.end(), x);
            });
            auto [it, fresh] = ids.emplace(shared, static_cast<std::int32_t>(ids.size()));
            dom[c] = it->second;
            sharing[c] = std::move(shared);
            level_seen = std::max(level_seen, best_level);
        }
        // Domains must partition the CPUs: two CPUs either list the same set or disjoint sets.
        for (const std::uint32_t c : online) {
            for (const std::uint32_t x : sharing[c]) {
                if (sharing[x] != sharing[c]) {
                    SPLITNET_THROW(std::invalid_argument(
                        "inconsistent last-level cache sharing under " + root + ": cpu" +
                        std::to_string(c) + " and cpu" + std::to_string(x) +
                        " list different shared_cpu_list sets; pass a topology explicitly"));
                }
            }
        }
        // Number domains in order of their first CPU, so the result does not depend on maps.
        std::vector<std::int32_t> renumber(ids.size(), -1);
        std::int32_t next = 0;
        for (const std::uint32_t c : online) {
            auto& r = renumber[static_cast<std::size_t>(dom[c])];
            if (r < 0) {
                r = next++;
            }
        }
        for (const std::uint32_t c : online) {
            dom[c] = renumber[static_cast<std::size_t>(dom[c])];
        }
        return cpu_topology(std::move(dom), level_seen);
    }

    /// Highest CPU number + 1 (offline CPUs included).
    [[nodiscard]] std::uint32_t cpu_count() const noexcept {
        return static_cast<std::uint32_t>(cpu_domain_.size());
    }
    [[nodiscard]] std::uint32_t online_count() const noexcept { return online_; }
    [[nodiscard]] std::uint32_t domain_count() const noexcept {
        return static_cast<std::uint32_t>(domain_cpus_.size());
    }
    /// The cache level the domains were read from (3 for an L3), 0 when built by hand.
    [[nodiscard]] unsigned llc_level() const noexcept { return llc_level_; }
    [[nodiscard]] bool online(std::uint32_t cpu) const noexcept {
        return cpu < cpu_domain_.size() && cpu_domain_[cpu] != offline;
    }
    /// CPU `cpu`'s domain; the CPU must be online.
    [[nodiscard]] std::uint32_t domain_of(std::uint32_t cpu) const noexcept {
        return static_cast<std::uint32_t>(cpu_domain_[cpu]);
    }
    [[nodiscard]] std::span<const std::uint32_t> cpus_of(std::uint32_t domain) const noexcept {
        return domain_cpus_[domain];
    }
    [[nodiscard]] bool share_llc(std::uint32_t a, std::uint32_t b) const noexcept {
        return online(a) && online(b) && cpu_domain_[a] == cpu_domain_[b];
    }

    /// "2 L3 domains: {0-3} {4-7}".
    [[nodiscard]] std::string describe() const {
        std::string s = std::to_string(domain_count()) + " " +
                        (llc_level_ != 0 ? "L" + std::to_string(llc_level_) + " " : "") + "domain" +
                        (domain_count() == 1 ? "" : "s") + ":";
        for (const auto& cpus : domain_cpus_) {
            s += " {";
            for (std::size_t i = 0; i < cpus.size();) {
                std::size_t j = i;
                while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) {
                    ++j;
                }
                s += (i != 0 ? "," : "") + std::to_string(cpus[i]);
                if (j > i) {
                    s += "-" + std::to_string(cpus[j]);
                }
                i = j + 1;
            }
            s += "}";
        }
        return s;
    }

private:
    void index() {
        online_ = 0;
        domain_cpus_.clear();
        for (std::uint32_t c = 0; c < cpu_domain_.size(); ++c) {
            const std::int32_t d = cpu_domain_[c];
            if (d == offline) {
                continue;
            }
            if (d < 0) {
                SPLITNET_THROW(std::invalid_argument(
                    "cpu_topology: cpu" + std::to_string(c) + " has domain " + std::to_string(d) +
                    "; domains are >= 0, or cpu_topology::offline"));
            }
            if (static_cast<std::size_t>(d) >= domain_cpus_.size()) {
                domain_cpus_.resize(static_cast<std::size_t>(d) + 1);
            }
            domain_cpus_[static_cast<std::size_t>(d)].push_back(c);
            ++online_;
        }
        for (std::size_t d = 0; d < domain_cpus_.size(); ++d) {
            if (domain_cpus_[d].empty()) {
                SPLITNET_THROW(std::invalid_argument("cpu_topology: domain " + std::to_string(d) +
                                                     " has no online CPU; number domains densely"));
            }
        }
    }

    static std::string trim(std::string s) {
        while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) {
            s.pop_back();
        }
        return s;
    }

    static bool try_read_file(const std::string& path, std::string& out) {
        std::FILE* f = std::fopen(path.c_str(), "r");
        if (f == nullptr) {
            return false;
        }
        char buf[4096];
        out.clear();
        std::size_t n = 0;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
            out.append(buf, n);
        }
        const bool ok = std::ferror(f) == 0;
        std::fclose(f);
        return ok;
    }

    static std::string read_file(const std::string& path) {
        std::string s;
        if (!try_read_file(path, s)) {
            const int err = errno;
            SPLITNET_THROW(std::system_error(err, std::generic_category(),
                                             "cannot read " + path +
                                                 "; pass a topology explicitly "
                                                 "(cpu_topology::uniform or the constructor)"));
        }
        return s;
    }

    static unsigned parse_uint(const std::string& text, const std::string& path) {
        const std::string t = trim(text);
        unsigned v = 0;
        const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
        if (r.ec != std::errc{} || r.ptr != t.data() + t.size()) {
            SPLITNET_THROW(std::invalid_argument(path + ": \"" + t + "\" is not a number"));
        }
        return v;
    }

    std::vector<std::int32_t> cpu_domain_;
    std::vector<std::vector<std::uint32_t>> domain_cpus_;
    std::uint32_t online_ = 0;
    unsigned llc_level_ = 0;
};

} // namespace splitnet::sched
