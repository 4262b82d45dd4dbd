// splitnet-pcap-info: what is in a capture, as splitnet's parser sees it. Prints the protocol
// mix, the largest flows, checksum verification results and every parse error by reason, so a
// user can check the parser on their own traffic.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <splitnet/packet/checksum_offload.hpp>
#include <splitnet/packet/parser.hpp>
#include <splitnet/packet/pcap.hpp>

namespace sp = splitnet::packet;

namespace {

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: splitnet-pcap-info [--flows N] FILE.pcap\n"
                 "  Parses every frame of a classic pcap capture (Ethernet link type) and prints\n"
                 "  the protocol mix, the N largest flows (default 10), how many IPv4 header and\n"
                 "  TCP/UDP checksums verify, and parse errors by reason.\n"
                 "  Captures taken with offloads on (TSO/GSO, TX checksum) hold frames larger\n"
                 "  than the MTU and blank checksums: that is what the sender's NIC would fix.\n");
}

std::string address(const std::array<std::uint8_t, 16>& a, int version) {
    char buf[64];
    if (version == 4) {
        std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    } else {
        std::snprintf(buf, sizeof buf, "%x:%x:%x:%x:%x:%x:%x:%x", a[0] << 8 | a[1],
                      a[2] << 8 | a[3], a[4] << 8 | a[5], a[6] << 8 | a[7], a[8] << 8 | a[9],
                      a[10] << 8 | a[11], a[12] << 8 | a[13], a[14] << 8 | a[15]);
    }
    return buf;
}

struct flow_stats {
    std::uint64_t packets = 0;
    std::uint64_t bytes = 0;
};

} // namespace

int main(int argc, char** argv) {
    std::size_t top = 10;
    const char* path = nullptr;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!std::strcmp(argv[i], "--flows") && i + 1 < argc) {
            top = std::strtoul(argv[++i], nullptr, 10);
        } else if (argv[i][0] == '-') {
            std::fprintf(stderr, "splitnet-pcap-info: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (path == nullptr) {
        usage(stderr);
        return 2;
    }
    try {
        sp::pcap_reader r(path);
        if (r.link_type() != sp::pcap_link::ethernet) {
            std::fprintf(stderr,
                         "splitnet-pcap-info: %s: link type %u is not Ethernet (1); capture on one "
                         "interface (tcpdump -i eth0), not -i any\n",
                         path, r.link_type());
            return 1;
        }
        std::map<std::string, std::uint64_t> mix;
        std::map<std::string, std::uint64_t> errors;
        std::unordered_map<sp::flow_key, flow_stats, sp::flow_key_hash> flows;
        std::uint64_t frames = 0, ip_ok = 0, ip_bad = 0, l4_ok = 0, l4_bad = 0, truncated = 0;
        sp::pcap_record rec;
        while (r.next(rec)) {
            ++frames;
            if (rec.orig_len > rec.data.size()) {
                ++truncated;
                continue; // a snapped frame cannot be checked
            }
            const auto p = sp::parse(rec.data);
            if (!p.ok()) {
                errors[std::string(sp::to_string(p.error))]++;
                continue;
            }
            std::string kind = p.l3 == sp::l3_type::ipv4   ? "IPv4"
                               : p.l3 == sp::l3_type::ipv6 ? "IPv6"
                               : p.l3 == sp::l3_type::arp  ? "ARP"
                                                           : "other L2";
            if (p.is_tcp()) {
                kind += "/TCP";
            } else if (p.is_udp()) {
                kind += "/UDP";
            }
            if (p.vlan_count != 0) {
                kind += " (VLAN)";
            }
            mix[kind]++;
            if (p.l3 == sp::l3_type::ipv4) {
                (sp::ipv4_header_checksum_ok(rec.data, p) ? ip_ok : ip_bad)++;
            }
            if (p.is_tcp() || p.is_udp()) {
                (sp::l4_checksum_ok(rec.data.first(p.l3_end), p) ? l4_ok : l4_bad)++;
            }
            if (p.l3 == sp::l3_type::ipv4 || p.l3 == sp::l3_type::ipv6) {
                auto& f = flows[p.key];
                f.packets++;
                f.bytes += rec.data.size();
            }
        }
        std::printf("%s: %llu frames (%llu snapped short of their wire length)\n", path,
                    static_cast<unsigned long long>(frames),
                    static_cast<unsigned long long>(truncated));
        std::printf("\nprotocols:\n");
        for (const auto& [k, v] : mix) {
            std::printf("  %-20s %10llu\n", k.c_str(), static_cast<unsigned long long>(v));
        }
        std::printf("\nchecksums: IPv4 header %llu ok, %llu bad; TCP/UDP %llu ok, %llu bad\n",
                    static_cast<unsigned long long>(ip_ok), static_cast<unsigned long long>(ip_bad),
                    static_cast<unsigned long long>(l4_ok),
                    static_cast<unsigned long long>(l4_bad));
        std::printf("\nparse errors:%s\n", errors.empty() ? " none" : "");
        for (const auto& [k, v] : errors) {
            std::printf("  %-32s %10llu\n", k.c_str(), static_cast<unsigned long long>(v));
        }
        std::vector<std::pair<sp::flow_key, flow_stats>> sorted(flows.begin(), flows.end());
        std::sort(sorted.begin(), sorted.end(),
                  [](const auto& a, const auto& b) { return a.second.bytes > b.second.bytes; });
        std::printf("\n%zu flows; largest:\n", sorted.size());
        for (std::size_t i = 0; i < sorted.size() && i < top; ++i) {
            const auto& k = sorted[i].first;
            std::printf("  %s %s:%u > %s:%u  %llu packets, %llu bytes\n",
                        k.protocol == 6    ? "TCP"
                        : k.protocol == 17 ? "UDP"
                                           : "IP ",
                        address(k.src_addr, k.ip_version).c_str(), k.src_port,
                        address(k.dst_addr, k.ip_version).c_str(), k.dst_port,
                        static_cast<unsigned long long>(sorted[i].second.packets),
                        static_cast<unsigned long long>(sorted[i].second.bytes));
        }
        return l4_bad == 0 && ip_bad == 0 ? 0 : 3;
    } catch (const sp::pcap_error& e) {
        std::fprintf(stderr, "splitnet-pcap-info: %s\n", e.what());
        return 1;
    }
}
