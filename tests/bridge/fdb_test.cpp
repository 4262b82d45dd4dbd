// fdb: learning, refresh, moves, static entries, ageing, per-port and global limits with fair
// eviction, flushing, configuration errors; a differential test against an oracle built on
// std::unordered_map and std::list, driven by random operation sequences with fixed seeds; and
// the MAC flooding attack (one port sends 1M random source MACs); the located entry points
// (hash once, then learn or look up) against the plain calls on a twin table.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <list>
#include <random>
#include <stdexcept>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/bridge/fdb.hpp>

namespace br = splitnet::bridge;

namespace {

constexpr std::uint64_t sec = 1'000'000'000ULL;

br::mac_key key(std::uint64_t i, std::uint16_t vid = 0) {
    return br::mac_key::from_mac48(0x020000000000ULL + i, vid);
}

br::fdb_config small(std::uint32_t capacity = 64) {
    br::fdb_config c;
    c.capacity = capacity;
    c.max_ports = 8;
    c.hash_seed = 0x5eed;
    return c;
}

} // namespace

TEST(Fdb, LearnLookupRefreshMove) {
    br::fdb<> f(small());
    EXPECT_FALSE(f.lookup(key(1)).found());
    EXPECT_EQ(f.learn(key(1), 3, 0), br::learn_status::learned);
    EXPECT_EQ(f.lookup(key(1)), (br::fdb_result{3, 0}));
    EXPECT_EQ(f.learn(key(1), 3, sec), br::learn_status::known);
    EXPECT_FALSE(f.lookup(key(1, 5)).found()) << "VLANs are separate keys";
    EXPECT_EQ(f.learn(key(1), 4, 2 * sec), br::learn_status::moved);
    EXPECT_EQ(f.lookup(key(1)).port, 4);
    EXPECT_EQ(f.stats().learned, 1U);
    EXPECT_EQ(f.stats().moved, 1U);
    EXPECT_EQ(f.port_stats(3).moved_out, 1U);
    EXPECT_EQ(f.port_stats(4).moved_in, 1U);
    EXPECT_EQ(f.port_entries(3), 0U);
    EXPECT_EQ(f.port_entries(4), 1U);
    EXPECT_EQ(f.learn(key(2), 8, 0), br::learn_status::refused_port);
    EXPECT_EQ(f.learn(br::mac_key{}, 1, 0), br::learn_status::refused_port);
}

TEST(Fdb, InvalidKeysMatchNothingNotEvenAnEmptySlot) {
    // An empty slot holds key 0: probing for mac_key{} must not find it (it once removed an
    // "entry" there and broke port 0's learn list).
    br::fdb<> f(small());
    ASSERT_EQ(f.learn(key(1), 0, 0), br::learn_status::learned);
    EXPECT_FALSE(f.lookup(br::mac_key{}).found());
    EXPECT_FALSE(f.lookup_at(br::mac_key{}, f.locate(br::mac_key{})).found());
    EXPECT_FALSE(f.writer_lookup_at(br::mac_key{}, f.locate(br::mac_key{})).found());
    EXPECT_FALSE(f.remove(br::mac_key{}));
    const br::learn_request r{br::mac_key{}, 0};
    br::learn_status st{};
    EXPECT_EQ(f.refresh_burst({&r, 1}, 0, {&st, 1}), 1U);
    EXPECT_EQ(st, br::learn_status::needs_writer);
    br::fdb_result res{};
    const br::mac_key none{};
    EXPECT_EQ(f.lookup_burst({&none, 1}, {&res, 1}), 0U);
    EXPECT_FALSE(res.found());
    EXPECT_EQ(f.size(), 1U);
    EXPECT_EQ(f.port_entries(0), 1U);
    EXPECT_EQ(f.flush_port(0), 1U);
}

static_assert(br::hashed_fdb_table<br::fdb<>>);

TEST(Fdb, LocatedEntryPointsMatchThePlainCalls) {
    // Two tables with the same seed, one driven through locate / get_locator and the *_at
    // calls, the other through learn / lookup / refresh_burst: every status, result, counter
    // and entry must agree, through learning, moves, statics, evictions at the limits (a
    // small table) and collision chains, and with keys that are not valid.
    auto c = small(48);
    c.port_limit = 10;
    c.tick_ns = 1;
    c.ageing_time_ns = 1000;
    br::fdb<> a(c);
    br::fdb<> b(c);
    std::mt19937_64 rng(11);
    const auto loc = a.get_locator();
    std::uint64_t now = 0;
    for (int i = 0; i < 20000; ++i) {
        const br::mac_key k = rng() % 97 == 0
                                  ? br::mac_key{}
                                  : key(rng() % 120, static_cast<std::uint16_t>(rng() % 2));
        const auto port = static_cast<br::port_id>(rng() % 9); // 8 is not a port
        now += rng() % 3;
        switch (rng() % 6) {
        case 0:
        case 1: {
            const std::uint16_t tick = a.writer_tick(now);
            ASSERT_EQ(tick, a.tick_of(now));
            const auto h = rng() % 2 == 0 ? a.locate(k) : loc(k);
            ASSERT_EQ(a.learn_at(k, h, port, tick), b.learn(k, port, now)) << i;
            break;
        }
        case 2:
            ASSERT_EQ(a.lookup_at(k, a.locate(k)), b.lookup(k)) << i;
            ASSERT_EQ(a.writer_lookup_at(k, loc(k)), b.lookup(k)) << i;
            break;
        case 3: {
            const br::learn_request r{k, port};
            br::learn_status st{};
            (void)b.refresh_burst({&r, 1}, now, {&st, 1});
            ASSERT_EQ(a.refresh_at(k, loc(k), port, a.tick_of(now)), st) << i;
            break;
        }
        case 4:
            if (rng() % 8 == 0) {
                ASSERT_EQ(a.add_static(k, port), b.add_static(k, port)) << i;
            }
            break;
        default:
            if (rng() % 16 == 0) {
                ASSERT_EQ(a.remove(k), b.remove(k)) << i;
            }
            break;
        }
    }
    EXPECT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(&a.stats(), &b.stats(), sizeof(br::fdb_stats)), 0);
    EXPECT_GT(a.stats().evicted_port_limit + a.stats().evicted_table_full, 0U);
    EXPECT_GT(a.stats().moved, 0U);
    std::vector<std::tuple<std::uint64_t, br::port_id, std::uint16_t, std::uint16_t>> ea;
    std::vector<std::tuple<std::uint64_t, br::port_id, std::uint16_t, std::uint16_t>> eb;
    a.for_each([&](br::mac_key k, br::fdb_result r, std::uint16_t st) {
        ea.emplace_back(k.value, r.port, r.flags, st);
    });
    b.for_each([&](br::mac_key k, br::fdb_result r, std::uint16_t st) {
        eb.emplace_back(k.value, r.port, r.flags, st);
    });
    std::sort(ea.begin(), ea.end());
    std::sort(eb.begin(), eb.end());
    EXPECT_EQ(ea, eb);
}

TEST(Fdb, StaticEntriesNeverAgeMoveOrGetEvicted) {
    auto c = small(4);
    c.ageing_time_ns = 10 * sec;
    br::fdb<> f(c);
    ASSERT_TRUE(f.add_static(key(1), 2));
    EXPECT_TRUE(f.lookup(key(1)).is_static());
    EXPECT_EQ(f.learn(key(1), 5, 0), br::learn_status::refused_static);
    EXPECT_EQ(f.lookup(key(1)).port, 2);
    EXPECT_EQ(f.learn(key(1), 2, 0), br::learn_status::known);
    EXPECT_EQ(f.age_all(1000 * sec), 0U);
    EXPECT_TRUE(f.lookup(key(1)).found());
    // Fill with statics: learning is refused, nothing is evictable.
    ASSERT_TRUE(f.add_static(key(2), 2));
    ASSERT_TRUE(f.add_static(key(3), 2));
    ASSERT_TRUE(f.add_static(key(4), 2));
    EXPECT_FALSE(f.add_static(key(5), 2));
    EXPECT_EQ(f.learn(key(6), 1, 0), br::learn_status::refused_full);
    EXPECT_EQ(f.stats().refused_full, 1U);
    EXPECT_EQ(f.static_count(), 4U);
    // A static entry takes over a learned one.
    EXPECT_TRUE(f.remove(key(4)));
    EXPECT_EQ(f.learn(key(7), 1, 0), br::learn_status::learned);
    ASSERT_TRUE(f.add_static(key(7), 6));
    EXPECT_EQ(f.lookup(key(7)), (br::fdb_result{6, br::fdb_flag::is_static}));
    EXPECT_EQ(f.learned_count(), 0U);
    EXPECT_EQ(f.port_entries(1), 0U);
}

TEST(Fdb, AgeingRemovesIdleEntriesOnlyAndCanBeOff) {
    auto c = small();
    c.ageing_time_ns = 300 * sec;
    br::fdb<> f(c);
    ASSERT_EQ(f.ageing_ticks(), 300U);
    ASSERT_EQ(f.learn(key(1), 1, 0), br::learn_status::learned);
    ASSERT_EQ(f.learn(key(2), 1, 0), br::learn_status::learned);
    EXPECT_EQ(f.learn(key(2), 1, 200 * sec), br::learn_status::known); // refreshed
    EXPECT_EQ(f.age_all(299 * sec), 0U);
    EXPECT_EQ(f.age_all(300 * sec), 1U);
    EXPECT_FALSE(f.lookup(key(1)).found());
    EXPECT_TRUE(f.lookup(key(2)).found());
    EXPECT_EQ(f.stats().aged, 1U);
    EXPECT_EQ(f.port_stats(1).aged, 1U);
    // Incremental: the scan is bounded per call and resumes where it stopped.
    std::size_t aged = 0;
    for (std::size_t i = 0; i < f.bucket_count(); ++i) {
        aged += f.age(600 * sec, 1);
    }
    EXPECT_EQ(aged, 1U);
    EXPECT_EQ(f.size(), 0U);
    // Off.
    f.set_ageing_time(0);
    ASSERT_EQ(f.learn(key(3), 1, 0), br::learn_status::learned);
    EXPECT_EQ(f.age_all(10000 * sec), 0U);
    EXPECT_TRUE(f.lookup(key(3)).found());
}

TEST(Fdb, PortLimitEvictsTheLeastRecentlySeenOfThatPortOnly) {
    br::fdb<> f(small());
    f.set_port_limit(1, 3);
    ASSERT_EQ(f.learn(key(100), 2, 0), br::learn_status::learned);
    for (std::uint64_t i = 0; i < 3; ++i) {
        ASSERT_EQ(f.learn(key(i), 1, i * sec), br::learn_status::learned);
    }
    EXPECT_EQ(f.learn(key(0), 1, 10 * sec), br::learn_status::known); // key 0 seen again
    ASSERT_EQ(f.learn(key(3), 1, 11 * sec), br::learn_status::learned);
    EXPECT_TRUE(f.lookup(key(0)).found()) << "recently seen: kept";
    EXPECT_FALSE(f.lookup(key(1)).found()) << "least recently seen: evicted";
    EXPECT_TRUE(f.lookup(key(100)).found()) << "another port is untouched";
    EXPECT_EQ(f.port_entries(1), 3U);
    EXPECT_EQ(f.stats().evicted_port_limit, 1U);
    // A move into a port at its limit evicts from that port first.
    ASSERT_EQ(f.learn(key(100), 1, 12 * sec), br::learn_status::moved);
    EXPECT_EQ(f.port_entries(1), 3U);
    EXPECT_EQ(f.port_entries(2), 0U);
}

TEST(Fdb, GlobalLimitEvictsFromTheLargestPort) {
    auto c = small(10);
    br::fdb<> f(c);
    for (std::uint64_t i = 0; i < 3; ++i) {
        ASSERT_EQ(f.learn(key(i), 1, 0), br::learn_status::learned);
    }
    for (std::uint64_t i = 10; i < 17; ++i) {
        ASSERT_EQ(f.learn(key(i), 2, 0), br::learn_status::learned);
    }
    ASSERT_EQ(f.size(), 10U);
    // Port 1 learns at the limit: port 2 holds more and gives one up.
    ASSERT_EQ(f.learn(key(3), 1, sec), br::learn_status::learned);
    EXPECT_EQ(f.port_entries(1), 4U);
    EXPECT_EQ(f.port_entries(2), 6U);
    EXPECT_EQ(f.stats().evicted_table_full, 1U);
    // Port 2 learns: it is the largest, so it evicts its own.
    ASSERT_EQ(f.learn(key(17), 2, sec), br::learn_status::learned);
    EXPECT_EQ(f.port_entries(1), 4U);
    EXPECT_EQ(f.port_entries(2), 6U);
}

TEST(Fdb, FlushPortAndFlushAll) {
    br::fdb<> f(small());
    for (std::uint64_t i = 0; i < 10; ++i) {
        ASSERT_EQ(f.learn(key(i), static_cast<br::port_id>(i % 3), 0), br::learn_status::learned);
    }
    ASSERT_TRUE(f.add_static(key(50), 1));
    EXPECT_EQ(f.flush_port(1), 3U);
    EXPECT_TRUE(f.lookup(key(50)).found());
    EXPECT_EQ(f.flush_port(1, true), 1U);
    EXPECT_FALSE(f.lookup(key(50)).found());
    EXPECT_EQ(f.flush(), 7U);
    EXPECT_EQ(f.size(), 0U);
    EXPECT_EQ(f.stats().flushed, 11U);
}

TEST(Fdb, LookupBurstMatchesSingleLookups) {
    br::fdb<> f(small(256));
    std::vector<br::mac_key> keys;
    for (std::uint64_t i = 0; i < 200; ++i) {
        if (i % 2 == 0) {
            ASSERT_EQ(f.learn(key(i), static_cast<br::port_id>(i % 7), 0),
                      br::learn_status::learned);
        }
        keys.push_back(key(i));
    }
    std::vector<br::fdb_result> res(keys.size());
    EXPECT_EQ(f.lookup_burst(keys, res), 100U);
    for (std::size_t i = 0; i < keys.size(); ++i) {
        EXPECT_EQ(res[i], f.lookup(keys[i]));
        EXPECT_EQ(res[i].found(), i % 2 == 0);
    }
}

TEST(Fdb, RefreshBurstDefersUnknownAndMovedSources) {
    br::fdb<> f(small());
    ASSERT_EQ(f.learn(key(1), 1, 0), br::learn_status::learned);
    const std::vector<br::learn_request> req{{key(1), 1}, {key(1), 2}, {key(2), 1}};
    std::vector<br::learn_status> st(req.size());
    EXPECT_EQ(f.refresh_burst(req, 5 * sec, st), 2U);
    EXPECT_EQ(st[0], br::learn_status::known);
    EXPECT_EQ(st[1], br::learn_status::needs_writer);
    EXPECT_EQ(st[2], br::learn_status::needs_writer);
    EXPECT_EQ(f.size(), 1U) << "refresh never changes the table";
    std::uint16_t stamp = 0;
    f.for_each([&](br::mac_key, br::fdb_result, std::uint16_t s) { stamp = s; });
    EXPECT_EQ(stamp, 5) << "the stamp of the known source was refreshed";
}

TEST(Fdb, CollisionChainsSurviveDeletes) {
    // A full table (load 3/4 of the slots) with many probe chains; delete half, look up all.
    br::fdb<> f(small(3000));
    for (std::uint64_t i = 0; i < 3000; ++i) {
        ASSERT_EQ(f.learn(key(i * 7919), 1, 0), br::learn_status::learned);
    }
    for (std::uint64_t i = 0; i < 3000; i += 2) {
        ASSERT_TRUE(f.remove(key(i * 7919)));
    }
    for (std::uint64_t i = 0; i < 3000; ++i) {
        EXPECT_EQ(f.lookup(key(i * 7919)).found(), i % 2 == 1) << i;
    }
    for (std::uint64_t i = 0; i < 3000; i += 2) {
        ASSERT_EQ(f.learn(key(i * 7919), 2, 0), br::learn_status::learned);
    }
    EXPECT_EQ(f.size(), 3000U);
}

TEST(Fdb, RejectsBadConfiguration) {
    auto c = small();
    c.capacity = 0;
    EXPECT_THROW(br::fdb<>{c}, std::invalid_argument);
    c = small();
    c.max_learned = c.capacity + 1;
    EXPECT_THROW(br::fdb<>{c}, std::invalid_argument);
    c = small();
    c.ageing_time_ns = 20000 * sec; // more ticks than 16-bit stamps can age safely
    EXPECT_THROW(br::fdb<>{c}, std::invalid_argument);
    c.tick_ns = 2 * sec;
    EXPECT_NO_THROW(br::fdb<>{c});
    c = small();
    c.max_ports = 0;
    EXPECT_THROW(br::fdb<>{c}, std::invalid_argument);
    br::fdb<> f(small());
    EXPECT_THROW(f.set_port_limit(8, 1), std::invalid_argument);
}

// ---- differential test against an oracle ---------------------------------------------------

namespace {

/// The FDB's specification written with standard containers: the same limits, the same
/// eviction rule (first eviction_window entries of a port's learn order, least recently seen,
/// earliest on a tie; at the global limit the learning port if it is among the largest, else
/// the largest port with the lowest id), the same ageing rule.
class oracle {
public:
    struct entry {
        br::port_id port;
        bool is_static;
        std::uint16_t stamp;
    };

    oracle(const br::fdb_config& c, std::uint32_t ageing_ticks)
        : cap_(c.capacity), max_learned_(c.max_learned == 0 ? c.capacity : c.max_learned),
          ports_(c.max_ports), limit_(c.max_ports, c.port_limit), order_(c.max_ports),
          ageing_(ageing_ticks) {}

    br::learn_status learn(br::mac_key k, br::port_id p, std::uint16_t tick) {
        last_tick_ = tick;
        if (p >= ports_) {
            return br::learn_status::refused_port;
        }
        auto it = map_.find(k.value);
        if (it != map_.end()) {
            entry& e = it->second;
            if (e.port == p) {
                e.stamp = tick;
                return br::learn_status::known;
            }
            if (e.is_static) {
                return br::learn_status::refused_static;
            }
            while (limit_[p] != 0 && order_[p].size() >= limit_[p]) {
                evict(p, tick);
            }
            order_[e.port].remove(k.value);
            e.port = p;
            e.stamp = tick;
            order_[p].push_back(k.value);
            ++moved;
            return br::learn_status::moved;
        }
        if (limit_[p] != 0 && order_[p].size() >= limit_[p]) {
            while (order_[p].size() >= limit_[p]) {
                evict(p, tick);
            }
        } else if (learned_count() >= max_learned_ || map_.size() >= cap_) {
            const br::port_id victim = order_[p].size() == max_size() ? p : largest();
            if (order_[victim].empty()) {
                return br::learn_status::refused_full;
            }
            evict(victim, tick);
        }
        map_[k.value] = {p, false, tick};
        order_[p].push_back(k.value);
        ++learned;
        return br::learn_status::learned;
    }

    bool add_static(br::mac_key k, br::port_id p) {
        auto it = map_.find(k.value);
        if (it != map_.end()) {
            if (!it->second.is_static) {
                order_[it->second.port].remove(k.value);
            }
            it->second = {p, true, 0};
            return true;
        }
        if (map_.size() >= cap_) {
            const br::port_id victim = largest();
            if (order_[victim].empty()) {
                return false;
            }
            evict(victim, last_tick_);
        }
        map_[k.value] = {p, true, 0};
        return true;
    }

    bool remove(br::mac_key k) {
        auto it = map_.find(k.value);
        if (it == map_.end()) {
            return false;
        }
        if (!it->second.is_static) {
            order_[it->second.port].remove(k.value);
        }
        map_.erase(it);
        return true;
    }

    std::size_t flush_port(br::port_id p, bool include_static) {
        std::size_t n = 0;
        for (auto it = map_.begin(); it != map_.end();) {
            if (it->second.port == p && (include_static || !it->second.is_static)) {
                it = map_.erase(it);
                ++n;
            } else {
                ++it;
            }
        }
        order_[p].clear();
        return n;
    }

    std::size_t age_all(std::uint16_t tick) {
        last_tick_ = tick;
        if (ageing_ == 0) {
            return 0;
        }
        std::size_t n = 0;
        for (auto it = map_.begin(); it != map_.end();) {
            if (!it->second.is_static && age(it->second.stamp, tick) >= ageing_) {
                order_[it->second.port].remove(it->first);
                it = map_.erase(it);
                ++n;
            } else {
                ++it;
            }
        }
        aged += n;
        return n;
    }

    void set_limit(br::port_id p, std::uint32_t l) { limit_[p] = l; }

    [[nodiscard]] br::fdb_result lookup(br::mac_key k) const {
        auto it = map_.find(k.value);
        if (it == map_.end()) {
            return {};
        }
        return {it->second.port,
                static_cast<std::uint16_t>(it->second.is_static ? br::fdb_flag::is_static : 0)};
    }
    [[nodiscard]] std::size_t size() const { return map_.size(); }
    [[nodiscard]] std::size_t learned_count() const {
        std::size_t n = 0;
        for (const auto& o : order_) {
            n += o.size();
        }
        return n;
    }
    [[nodiscard]] std::size_t port_entries(br::port_id p) const { return order_[p].size(); }

    std::uint64_t learned = 0;
    std::uint64_t moved = 0;
    std::uint64_t aged = 0;
    std::uint64_t evicted = 0;

private:
    static std::uint32_t age(std::uint16_t stamp, std::uint16_t tick) {
        const auto d = static_cast<std::int16_t>(static_cast<std::uint16_t>(tick - stamp));
        return d < 0 ? 0U : static_cast<std::uint32_t>(d);
    }
    [[nodiscard]] std::size_t max_size() const {
        std::size_t m = 0;
        for (const auto& o : order_) {
            m = std::max(m, o.size());
        }
        return m;
    }
    [[nodiscard]] br::port_id largest() const {
        br::port_id best = 0;
        for (br::port_id p = 1; p < ports_; ++p) {
            if (order_[p].size() > order_[best].size()) {
                best = p;
            }
        }
        return best;
    }
    void evict(br::port_id p, std::uint16_t tick) {
        auto victim = order_[p].begin();
        std::uint32_t oldest = 0;
        std::uint32_t seen = 0;
        for (auto it = order_[p].begin();
             it != order_[p].end() && seen < br::fdb<>::eviction_window; ++it, ++seen) {
            const std::uint32_t a = age(map_.at(*it).stamp, tick);
            if (a > oldest) {
                oldest = a;
                victim = it;
            }
        }
        map_.erase(*victim);
        order_[p].erase(victim);
        ++evicted;
    }

    std::size_t cap_;
    std::size_t max_learned_;
    br::port_id ports_;
    std::vector<std::uint32_t> limit_;
    std::vector<std::list<std::uint64_t>> order_;
    std::unordered_map<std::uint64_t, entry> map_;
    std::uint32_t ageing_;
    std::uint16_t last_tick_ = 0;
};

struct oracle_params {
    std::uint64_t seed;
    std::uint32_t capacity;
    std::uint32_t max_learned;
    std::uint32_t port_limit;
    std::uint32_t keys;
    std::uint64_t ageing_s;
};

class FdbOracle : public ::testing::TestWithParam<oracle_params> {};

} // namespace

TEST_P(FdbOracle, RandomOperationSequencesMatchTheOracle) {
    const oracle_params prm = GetParam();
    br::fdb_config c;
    c.capacity = prm.capacity;
    c.max_learned = prm.max_learned;
    c.port_limit = prm.port_limit;
    c.max_ports = 6;
    c.ageing_time_ns = prm.ageing_s * sec;
    c.hash_seed = prm.seed * 31 + 1;
    br::fdb<> f(c);
    oracle o(c, f.ageing_ticks());
    std::mt19937_64 rng(prm.seed);
    const auto pick = [&](std::uint64_t n) {
        return rng() % n;
    };
    // A small key pool (two VLANs) so refreshes, moves and limits happen all the time.
    const auto rand_key = [&] {
        return key(pick(prm.keys / 2), static_cast<std::uint16_t>(pick(2) * 10));
    };
    // Ports 0..5 plus an invalid one now and then.
    const auto rand_port = [&] {
        return static_cast<br::port_id>(pick(50) == 0 ? 6 : pick(5));
    };
    std::uint64_t tick = 1;
    for (int op = 0; op < 20000; ++op) {
        const std::uint64_t r = pick(100);
        const auto now = tick * sec;
        const auto t16 = static_cast<std::uint16_t>(tick);
        if (r < 55) {
            const auto k = rand_key();
            const auto p = rand_port();
            ASSERT_EQ(f.learn(k, p, now), o.learn(k, p, t16)) << "op " << op;
        } else if (r < 65) {
            std::vector<br::learn_request> req(1 + pick(20));
            for (auto& q : req) {
                q = {rand_key(), rand_port()};
            }
            std::vector<br::learn_status> st(req.size());
            (void)f.learn_burst(req, now, st);
            for (std::size_t i = 0; i < req.size(); ++i) {
                ASSERT_EQ(st[i], o.learn(req[i].key, req[i].port, t16)) << "op " << op;
            }
        } else if (r < 68) {
            const auto k = rand_key();
            const auto p = static_cast<br::port_id>(pick(5));
            ASSERT_EQ(f.add_static(k, p), o.add_static(k, p)) << "op " << op;
        } else if (r < 72) {
            const auto k = rand_key();
            ASSERT_EQ(f.remove(k), o.remove(k)) << "op " << op;
        } else if (r < 74) {
            const auto p = static_cast<br::port_id>(pick(5));
            const bool all = pick(4) == 0;
            ASSERT_EQ(f.flush_port(p, all), o.flush_port(p, all)) << "op " << op;
        } else if (r < 80) {
            ASSERT_EQ(f.age_all(now), o.age_all(t16)) << "op " << op;
        } else if (r < 82) {
            const auto p = static_cast<br::port_id>(pick(5));
            const auto l = static_cast<std::uint32_t>(pick(6));
            f.set_port_limit(p, l);
            o.set_limit(p, l);
        } else {
            tick += pick(4);
        }
        // The whole visible state after every operation.
        ASSERT_EQ(f.size(), o.size()) << "op " << op;
        ASSERT_EQ(f.learned_count(), o.learned_count()) << "op " << op;
        for (br::port_id p = 0; p < 6; ++p) {
            ASSERT_EQ(f.port_entries(p), o.port_entries(p)) << "op " << op << " port " << p;
        }
        if (op % 16 == 0) {
            for (std::uint64_t i = 0; i < prm.keys / 2; ++i) {
                for (const std::uint16_t v : {std::uint16_t{0}, std::uint16_t{10}}) {
                    ASSERT_EQ(f.lookup(key(i, v)), o.lookup(key(i, v))) << "op " << op;
                }
            }
        }
    }
    EXPECT_EQ(f.stats().learned, o.learned);
    EXPECT_EQ(f.stats().moved, o.moved);
    EXPECT_EQ(f.stats().aged, o.aged);
    EXPECT_EQ(f.stats().evicted_port_limit + f.stats().evicted_table_full, o.evicted);
    EXPECT_GT(o.learned, 100U);
    EXPECT_GT(o.moved, 100U);
    EXPECT_GT(o.evicted, 10U);
}

INSTANTIATE_TEST_SUITE_P(Seeds, FdbOracle,
                         ::testing::Values(oracle_params{1, 24, 0, 0, 64, 20},
                                           oracle_params{2, 24, 16, 5, 64, 8},
                                           oracle_params{3, 40, 0, 4, 96, 0},
                                           oracle_params{4, 200, 150, 0, 512, 30},
                                           oracle_params{5, 12, 0, 3, 48, 5}));

// ---- MAC flooding attack --------------------------------------------------------------------

TEST(Fdb, MacFloodOfOnePortDoesNotEvictOtherPortsBeyondItsShare) {
    // 8 ports share 8192 entries. Ports 1..7 hold 500 MACs each (below an even share of 1024);
    // port 0 sends 1M random source MACs. Every entry of ports 1..7 survives, and the
    // attacker holds the rest of the table.
    br::fdb_config c;
    c.capacity = 8192;
    c.max_ports = 8;
    c.hash_seed = 99;
    br::fdb<> f(c);
    for (br::port_id p = 1; p < 8; ++p) {
        for (std::uint64_t i = 0; i < 500; ++i) {
            ASSERT_EQ(f.learn(key((std::uint64_t{p} << 20) + i), p, 0), br::learn_status::learned);
        }
    }
    std::mt19937_64 rng(7);
    std::vector<br::learn_request> req(64);
    std::vector<br::learn_status> st(64);
    std::uint64_t now = 0;
    for (int burst = 0; burst < 1'000'000 / 64; ++burst) {
        for (auto& q : req) {
            q = {br::mac_key::from_mac48(rng() & ~std::uint64_t{1}, 0), 0}; // unicast sources
        }
        (void)f.learn_burst(req, now, st);
        now += 1'000'000; // 1M frames over ~16 s: the attacker's entries keep fresh stamps
    }
    for (br::port_id p = 1; p < 8; ++p) {
        EXPECT_EQ(f.port_entries(p), 500U) << "port " << p;
        for (std::uint64_t i = 0; i < 500; ++i) {
            ASSERT_EQ(f.lookup(key((std::uint64_t{p} << 20) + i)).port, p);
        }
    }
    EXPECT_EQ(f.port_entries(0), 8192U - 7 * 500);
    EXPECT_EQ(f.size(), 8192U);
    EXPECT_GT(f.stats().evicted_table_full, 900'000U);
    EXPECT_EQ(f.port_stats(0).evicted, f.stats().evicted_table_full);
}

TEST(Fdb, MacFloodWithPortLimitStaysInsideTheLimit) {
    br::fdb_config c;
    c.capacity = 4096;
    c.max_ports = 4;
    c.port_limit = 1024;
    c.hash_seed = 5;
    br::fdb<> f(c);
    for (std::uint64_t i = 0; i < 2000; ++i) {
        ASSERT_EQ(f.learn(key((1ULL << 30) + i), 1, 0), br::learn_status::learned);
    }
    EXPECT_EQ(f.port_entries(1), 1024U);
    std::mt19937_64 rng(8);
    for (int i = 0; i < 100'000; ++i) {
        (void)f.learn(br::mac_key::from_mac48(rng() & ~std::uint64_t{1}, 0), 0, 0);
    }
    EXPECT_EQ(f.port_entries(0), 1024U);
    EXPECT_EQ(f.port_entries(1), 1024U);
    EXPECT_EQ(f.size(), 2048U);
}
