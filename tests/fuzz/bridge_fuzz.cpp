// fuzz-component: bridge
// Fuzz target: the FDB against an oracle (std::unordered_map) under operations decoded from the
// input, then the learning bridge on frames made of the remaining bytes. Invariants: every
// lookup agrees with the oracle (the FDB is sized so that no limit or eviction applies), the
// entry count matches, and forward_burst accounts for every frame exactly once (each one is
// in dropped() or has egress entries equal to references()); a twin bridge with the
// specialised loop off gives the same outputs and counters. ASan/UBSan catch the rest.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <vector>

#include <splitnet/bridge/learning_bridge.hpp>

namespace br = splitnet::bridge;
namespace sp = splitnet::packet;

namespace {

[[noreturn]] void fail(const char* what) {
    (void)what;
    std::abort();
}

br::mac_key key_of(std::uint8_t a, std::uint8_t b) {
    // A small key space (64 MACs x 4 VLANs) so that operations meet the same keys.
    return br::mac_key::from_mac48(0x020000000000ULL | (a & 0x3fU),
                                   static_cast<std::uint16_t>(b & 3U));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    // Part 1: FDB ops, 4 bytes each, as many as the first byte says.
    br::fdb_config c;
    c.capacity = 512; // > 64 * 4 keys: limits never bite, the oracle is a plain map
    c.max_ports = 8;
    c.hash_seed = 1 + data[1];
    c.ageing_time_ns = 8;
    c.tick_ns = 1;
    br::fdb<> f(c);
    std::unordered_map<std::uint64_t, std::pair<br::port_id, bool>> o; // port, static
    std::unordered_map<std::uint64_t, std::uint16_t> stamp;
    std::uint64_t now = 0;
    const std::size_t ops = std::min<std::size_t>(data[0], (size - 2) / 4);
    std::size_t at = 2;
    for (std::size_t i = 0; i < ops; ++i, at += 4) {
        const std::uint8_t op = data[at] & 7U;
        const br::mac_key k = key_of(data[at + 1], data[at + 2]);
        const auto port = static_cast<br::port_id>(data[at + 3] % 9); // 8 is invalid
        switch (op) {
        case 0:
        case 1:
        case 2: {
            const auto st = f.learn(k, port, now);
            auto it = o.find(k.value);
            if (port >= 8) {
                if (st != br::learn_status::refused_port) {
                    fail("bad port accepted");
                }
            } else if (it == o.end()) {
                if (st != br::learn_status::learned) {
                    fail("new key not learned");
                }
                o[k.value] = {port, false};
                stamp[k.value] = static_cast<std::uint16_t>(now);
            } else if (it->second.first == port) {
                if (st != br::learn_status::known) {
                    fail("known key");
                }
                stamp[k.value] = static_cast<std::uint16_t>(now);
            } else if (it->second.second) {
                if (st != br::learn_status::refused_static) {
                    fail("static moved");
                }
            } else {
                if (st != br::learn_status::moved) {
                    fail("move");
                }
                it->second.first = port;
                stamp[k.value] = static_cast<std::uint16_t>(now);
            }
            break;
        }
        case 3:
            if (f.add_static(k, port) != (port < 8)) {
                fail("add_static");
            }
            if (port < 8) {
                o[k.value] = {port, true};
            }
            break;
        case 4:
            if (f.remove(k) != (o.erase(k.value) == 1)) {
                fail("remove");
            }
            break;
        case 5:
            now += data[at + 3] & 7U;
            break;
        case 6: {
            const std::size_t aged = f.age_all(now);
            std::size_t want = 0;
            for (auto it = o.begin(); it != o.end();) {
                if (!it->second.second && static_cast<std::uint16_t>(now - stamp[it->first]) >= 8) {
                    it = o.erase(it);
                    ++want;
                } else {
                    ++it;
                }
            }
            if (aged != want) {
                fail("ageing");
            }
            break;
        }
        default: {
            const auto p = static_cast<br::port_id>(port % 8);
            std::size_t want = 0;
            for (auto it = o.begin(); it != o.end();) {
                if (it->second.first == p && !it->second.second) {
                    it = o.erase(it);
                    ++want;
                } else {
                    ++it;
                }
            }
            if (f.flush_port(p) != want) {
                fail("flush_port");
            }
            break;
        }
        }
        if (f.size() != o.size()) {
            fail("size");
        }
    }
    for (std::uint32_t a = 0; a < 64; ++a) {
        for (std::uint32_t v = 0; v < 4; ++v) {
            const br::mac_key k =
                key_of(static_cast<std::uint8_t>(a), static_cast<std::uint8_t>(v));
            const auto r = f.lookup(k);
            const auto it = o.find(k.value);
            if (r.found() != (it != o.end()) ||
                (r.found() && (r.port != it->second.first || r.is_static() != it->second.second))) {
                fail("lookup");
            }
        }
    }

    // Part 2: the rest of the input is frames, 20 bytes each: port, flags, then 18 header bytes
    // (a VLAN tag when bytes 12..13 say 0x8100). The bridge runs with VLAN filtering.
    std::vector<std::uint8_t> rest(data + at, data + size);
    const std::size_t n = std::min<std::size_t>(rest.size() / 20, 64);
    if (n == 0) {
        return 0;
    }
    br::bridge_config bc;
    bc.max_ports = 8;
    bc.vlan_filtering = (data[1] & 1U) != 0;
    bc.fdb.capacity = 256;
    bc.fdb.hash_seed = 7;
    br::learning_bridge<> b(bc);
    bc.specialise = false;
    br::learning_bridge<> twin(bc); // the general loop only
    for (br::port_id p = 0; p < 6; ++p) {
        br::port_config pc;
        pc.flags = data[1] | br::port_flag::learning;
        pc.mtu = p % 2 == 0 ? 1500 : 68;
        if (p == 3) {
            pc.allowed_src = {br::mac_key::from_mac48(0x030000000002ULL, 0).mac()}; // 02:..:03
        }
        b.configure_port(p, pc);
        twin.configure_port(p, pc);
        if (bc.vlan_filtering) {
            b.vlan_add(p, static_cast<std::uint16_t>(1 + p % 3), p % 2 == 0);
            twin.vlan_add(p, static_cast<std::uint16_t>(1 + p % 3), p % 2 == 0);
        }
    }
    std::vector<sp::frame> frames(n);
    for (std::size_t i = 0; i < n; ++i) {
        std::uint8_t* p = &rest[i * 20];
        frames[i] = sp::make_frame(p + 2, static_cast<std::uint32_t>(p[1] & 0x1fU), p[0] & 7U);
        frames[i].data_len = std::min<std::uint32_t>(frames[i].data_len, 18);
        frames[i].pkt_len = 60U + 400U * (p[1] >> 5);
        if ((p[1] & 0x80U) != 0) {
            frames[i].offload.gso = sp::gso_type::tcpv4;
            frames[i].offload.gso_size = static_cast<std::uint16_t>(p[1] * 8);
            frames[i].offload.hdr_len = 54;
        }
    }
    br::port_bursts out(8, 64);
    if (b.forward_burst(frames, out, 1) != n) {
        fail("consumed");
    }
    br::port_bursts twin_out(8, 64);
    if (twin.forward_burst(frames, twin_out, 1) != n) {
        fail("twin consumed");
    }
    if (!std::equal(out.active_ports().begin(), out.active_ports().end(),
                    twin_out.active_ports().begin(), twin_out.active_ports().end()) ||
        !std::equal(out.dropped().begin(), out.dropped().end(), twin_out.dropped().begin(),
                    twin_out.dropped().end()) ||
        !std::equal(out.references().begin(), out.references().end(), twin_out.references().begin(),
                    twin_out.references().end()) ||
        std::memcmp(&b.stats(), &twin.stats(), sizeof(br::bridge_stats)) != 0) {
        fail("specialised loop differs");
    }
    for (const br::port_id p : out.active_ports()) {
        const auto x = out.port(p);
        const auto y = twin_out.port(p);
        if (x.size() != y.size() || out.segment_count(p) != twin_out.segment_count(p) ||
            std::memcmp(&b.port_stats(p), &twin.port_stats(p), sizeof(br::bridge_port_stats)) !=
                0) {
            fail("specialised loop differs on a port");
        }
        for (std::size_t i = 0; i < x.size(); ++i) {
            if (x[i].frame != y[i].frame || x[i].vlan_tci != y[i].vlan_tci ||
                x[i].tag != y[i].tag || x[i].segment != y[i].segment) {
                fail("specialised loop differs on an entry");
            }
        }
    }
    std::vector<std::uint32_t> count(n, 0);
    for (const br::port_id p : out.active_ports()) {
        for (const auto& e : out.port(p)) {
            const auto idx = static_cast<std::size_t>(e.frame - frames.data());
            if (idx >= n || p == frames[idx].port) {
                fail("egress entry");
            }
            ++count[idx];
        }
    }
    std::vector<std::uint32_t> dropped(n, 0);
    for (const sp::frame* d : out.dropped()) {
        ++dropped[static_cast<std::size_t>(d - frames.data())];
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (count[i] != out.references()[i] || dropped[i] != (count[i] == 0 ? 1U : 0U)) {
            fail("accounting");
        }
    }
    return 0;
}
