// fuzz-component: packet
// Fuzz target: the packet parser, TCP option decoder and checksum helpers on arbitrary bytes.
// Invariants checked: offsets are ordered and inside the frame, l3_end never passes the packet,
// and nothing reads outside the input (ASan). The first byte picks how much of the input is the
// contiguous first segment, to exercise chained-frame parsing too.
#include <cstdint>
#include <cstdlib>
#include <span>

#include <splitnet/packet/checksum_offload.hpp>
#include <splitnet/packet/parser.hpp>

namespace sp = splitnet::packet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::size_t head = data[0] == 0 ? size - 1 : (size - 1) * data[0] / 256;
    const std::span<const std::uint8_t> all(data + 1, size - 1);
    for (const auto& bytes : {all, all.first(head)}) {
        const auto p = sp::parse(bytes, all.size());
        if (!p.ok()) {
            continue;
        }
        if (!(p.l3_offset <= p.l4_offset && p.l4_offset <= p.payload_offset &&
              p.payload_offset <= p.l3_end && p.l3_end <= all.size() &&
              p.l4_offset <= bytes.size())) {
            std::abort();
        }
        if (p.is_tcp()) {
            if (p.payload_offset > bytes.size()) {
                std::abort(); // the whole TCP header must be in the contiguous part
            }
            (void)sp::parse_tcp_options(bytes.subspan(p.l4_offset + 20, p.l4_header_len() - 20U));
        }
        if (bytes.size() == all.size()) {
            (void)sp::ipv4_header_checksum_ok(bytes, p);
            (void)sp::l4_checksum_ok(bytes.first(p.l3_end), p);
        }
    }
    return 0;
}
