// fdb concurrency: lock-free readers (lookup_burst, refresh_burst) on several threads while one
// writer learns, moves, removes, flushes and ages in the same buckets. Readers must never see a
// stable entry missing or on a wrong port, nor a key paired with another entry's value. Then
// the deferred-learning model: worker bridges share one FDB and funnel learn requests to the
// writer. Meant to run under ThreadSanitizer (the tsan preset); quick in every build.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <splitnet/bridge/fdb.hpp>
#include <splitnet/bridge/learning_bridge.hpp>

namespace br = splitnet::bridge;
namespace sp = splitnet::packet;

namespace {

// 02:xx:xx:xx:xx:xx: unicast, locally administered (byte 0 is the low byte of mac48).
br::mac_key key(std::uint64_t i) {
    return br::mac_key::from_mac48(0x02 | (i << 8), 0);
}
// Stable keys never change while readers run; churn key k only ever lives on port k%4 or
// k%4 + 4, so a value read with the wrong key shows up as a port outside that pair.
constexpr std::uint64_t stable = 1500;
constexpr std::uint64_t churn_base = 100000;
constexpr std::uint64_t churn = 2000;
br::port_id stable_port(std::uint64_t i) {
    return static_cast<br::port_id>(i % 8);
}

} // namespace

TEST(FdbConcurrency, ReadersSeeConsistentEntriesWhileOneWriterChurns) {
    br::fdb_config c;
    c.capacity = 4096; // stable + churn fill the table: long probe chains, shared buckets
    c.max_ports = 8;
    c.hash_seed = 3;
    c.ageing_time_ns = 50;
    c.tick_ns = 1;
    br::fdb<> f(c);
    // Stable entries are static, so the writer's ageing (50 ticks of 1 ns, now = op count)
    // removes churn entries only.
    for (std::uint64_t i = 0; i < stable; ++i) {
        ASSERT_TRUE(f.add_static(key(i), stable_port(i)));
    }

    std::atomic<bool> done{false};
    std::atomic<std::uint64_t> bad{0};
    std::atomic<std::uint64_t> reads{0};
    std::atomic<unsigned> started{0}; // readers that have read once: the churn must race them
    const auto reader = [&](unsigned id) {
        std::mt19937_64 rng(id);
        std::vector<br::mac_key> keys(64);
        std::vector<br::fdb_result> res(64);
        std::vector<br::learn_request> req(32);
        std::vector<br::learn_status> st(32);
        std::uint64_t local_bad = 0;
        std::uint64_t n = 0;
        while (!done.load(std::memory_order_acquire)) {
            for (std::size_t i = 0; i < keys.size(); ++i) {
                keys[i] = i % 2 == 0 ? key(rng() % stable) : key(churn_base + rng() % churn);
            }
            (void)f.lookup_burst(keys, res);
            for (std::size_t i = 0; i < keys.size(); ++i) {
                const std::uint64_t k = keys[i].mac48() >> 8;
                if (k < stable) {
                    local_bad += res[i].port != stable_port(k) ? 1U : 0U;
                } else if (res[i].found()) {
                    const auto p = res[i].port;
                    local_bad += (p != k % 4 && p != k % 4 + 4) ? 1U : 0U;
                }
            }
            // Workers refresh the stamps of sources they see (stable ones, on their port).
            for (std::size_t i = 0; i < req.size(); ++i) {
                const std::uint64_t k = rng() % stable;
                req[i] = {key(k), stable_port(k)};
            }
            local_bad += f.refresh_burst(req, n, st);
            if (n == 0) {
                started.fetch_add(1);
            }
            n += keys.size();
        }
        bad.fetch_add(local_bad);
        reads.fetch_add(n);
    };
    std::vector<std::thread> readers;
    for (unsigned i = 0; i < 2; ++i) {
        readers.emplace_back(reader, i + 1);
    }

    while (started.load() != readers.size()) {
        std::this_thread::yield();
    }
    std::mt19937_64 rng(42);
    std::vector<br::learn_request> req(16);
    std::vector<br::learn_status> st(16);
    for (int op = 0; op < 30000; ++op) {
        const std::uint64_t r = rng() % 100;
        if (r < 70) {
            for (auto& q : req) {
                const std::uint64_t k = churn_base + rng() % churn;
                q = {key(k), static_cast<br::port_id>(k % 4 + 4 * (rng() % 2))};
            }
            (void)f.learn_burst(req, static_cast<std::uint64_t>(op), st);
        } else if (r < 95) {
            (void)f.remove(key(churn_base + rng() % churn));
        } else if (r < 99) {
            (void)f.age(static_cast<std::uint64_t>(op), 64);
        } else {
            // Churn ports are all ports: flush by removing each churn key of one residue.
            const std::uint64_t residue = rng() % 4;
            for (std::uint64_t k = residue; k < churn; k += 4) {
                (void)f.remove(key(churn_base + k));
            }
        }
    }
    done.store(true, std::memory_order_release);
    for (auto& t : readers) {
        t.join();
    }
    EXPECT_EQ(bad.load(), 0U);
    EXPECT_GT(reads.load(), 0U);
    for (std::uint64_t i = 0; i < stable; ++i) {
        ASSERT_EQ(f.lookup(key(i)).port, stable_port(i));
    }
}

TEST(FdbConcurrency, DeferredLearningWorkersFunnelToTheWriter) {
    // Two workers, each with its own bridge (deferred learning) over one shared FDB, forward
    // frames from their guest ports; the writer thread applies the learn requests they hand
    // over. Every source ends up learned on the port it was sent from.
    br::fdb_config fc;
    fc.capacity = 4096;
    fc.max_ports = 4;
    fc.hash_seed = 11;
    br::fdb<> shared(fc);
    br::bridge_config bc;
    bc.max_ports = 4;
    bc.learning = br::learn_mode::deferred;

    std::mutex mu;
    std::vector<br::learn_request> funnel;
    std::atomic<int> running{2};
    constexpr std::uint64_t sources_per_worker = 300;

    const auto worker = [&](br::port_id port) {
        br::learning_bridge<> b(bc, shared);
        for (br::port_id p = 0; p < 4; ++p) {
            b.configure_port(p, {});
        }
        br::port_bursts out(4, 32);
        std::vector<std::vector<std::uint8_t>> bytes(32, std::vector<std::uint8_t>(64, 0));
        std::vector<sp::frame> frames(32);
        std::mt19937_64 rng(port);
        for (int round = 0; round < 200; ++round) {
            for (std::size_t i = 0; i < frames.size(); ++i) {
                const auto src = key((std::uint64_t{port} << 16) + rng() % sources_per_worker);
                const auto dst = key((std::uint64_t{port ^ 1U} << 16) + rng() % sources_per_worker);
                const auto d = dst.mac();
                const auto s = src.mac();
                std::memcpy(bytes[i].data(), d.bytes.data(), 6);
                std::memcpy(bytes[i].data() + 6, s.bytes.data(), 6);
                bytes[i][12] = 0x08;
                frames[i] = sp::make_frame(bytes[i].data(), 64, port);
            }
            const std::size_t n = b.forward_burst(frames, out, static_cast<std::uint64_t>(round));
            EXPECT_EQ(n, frames.size());
            std::size_t refs = 0;
            for (const auto r : out.references()) {
                EXPECT_GE(r, 1U); // known: unicast to the other worker's port; else flooded
                refs += r;
            }
            std::size_t entries = 0;
            for (const auto p : out.active_ports()) {
                entries += out.port(p).size();
            }
            EXPECT_EQ(entries, refs);
            const auto lr = out.learn_requests();
            if (!lr.empty()) {
                const std::lock_guard<std::mutex> lock(mu);
                funnel.insert(funnel.end(), lr.begin(), lr.end());
            }
        }
        running.fetch_sub(1);
    };
    std::thread w0(worker, br::port_id{0});
    std::thread w1(worker, br::port_id{1});

    // The writer: drains the funnel into learn_burst until the workers are done.
    std::vector<br::learn_request> batch;
    std::vector<br::learn_status> st;
    std::uint64_t now = 0;
    for (;;) {
        const bool last = running.load() == 0;
        {
            const std::lock_guard<std::mutex> lock(mu);
            batch.swap(funnel);
        }
        st.resize(batch.size());
        (void)shared.learn_burst(batch, now++, st);
        batch.clear();
        if (last) {
            break;
        }
        std::this_thread::yield();
    }
    w0.join();
    w1.join();
    std::size_t learned = 0;
    for (br::port_id p = 0; p < 2; ++p) {
        for (std::uint64_t i = 0; i < sources_per_worker; ++i) {
            const auto r = shared.lookup(key((std::uint64_t{p} << 16) + i));
            if (r.found()) {
                EXPECT_EQ(r.port, p);
                ++learned;
            }
        }
    }
    // 6400 frames per worker over 300 sources: every source was seen.
    EXPECT_EQ(learned, 2 * sources_per_worker);
}
