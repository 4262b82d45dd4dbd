// fuzz-component: packet
// Fuzz target: the pcap reader over arbitrary file contents. A damaged file must end in a
// pcap_error (or a clean end of file), never a crash, a hang or an oversized allocation.
#include <cstdint>
#include <span>

#include <splitnet/packet/pcap.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        splitnet::packet::pcap_reader r(std::span(data, size), "fuzz.pcap");
        splitnet::packet::pcap_record rec;
        while (r.next(rec)) {
        }
    } catch (const splitnet::packet::pcap_error&) {
    }
    return 0;
}
