// A user of splitnet: builds a TCP segment, parses it and checks its checksums.
#include <array>
#include <cstdio>

#include <splitnet/splitnet.hpp>

int main() {
    namespace sp = splitnet::packet;
    std::array<std::uint8_t, 2048> buf{};
    sp::tcp_stream stream({});
    const std::size_t n = stream.next(buf);
    const auto p = sp::parse(std::span(buf).first(n));
    const bool ok = p.ok() && p.is_tcp() && sp::l4_checksum_ok(std::span(buf).first(n), p);
    std::printf("splitnet %d.%d.%d: %s\n", splitnet::version_major, splitnet::version_minor,
                splitnet::version_patch, ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
