// fuzz-component: ring
// Fuzz target: a netif TX back end consuming a ring whose shared page the fuzzer controls, and
// rewrites between operations (a hostile front end in another process). The input is the initial
// page (up to 4096 bytes) followed by an operation script. Invariants: no access outside the page
// or the copies (ASan), never more responses than requests consumed, a broken ring stays broken
// and inert, decoded packets respect netif's limits.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <splitnet/netif/rings.hpp>
#include <splitnet/netif/tx_packet.hpp>

namespace nf = splitnet::netif;

namespace {
struct alignas(4096) page {
    std::byte bytes[4096];
};
void check(bool ok, int line = __builtin_LINE()) {
    if (!ok) {
        std::fprintf(stderr, "ring_consumer_fuzz: invariant at line %d broken\n", line);
        std::abort();
    }
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static page mem;
    const std::size_t head = size < 4096 ? size : 4096;
    std::memset(mem.bytes, 0, sizeof mem.bytes);
    std::memcpy(mem.bytes, data, head);
    const std::uint8_t* op = data + head;
    const std::uint8_t* end = data + size;

    nf::tx_back_ring<> back(mem.bytes);
    std::vector<nf::tx_request> reqs(64);
    std::vector<nf::tx_response> rsps(64);
    bool was_broken = back.broken();
    while (op < end) {
        switch (*op++ % 4) {
        case 0: { // consume and answer packets
            const std::size_t want = op < end ? 1 + *op++ % 64 : 64;
            const std::size_t n = back.peek_requests(std::span(reqs).first(want));
            if (n == 0) {
                break;
            }
            nf::tx_packet p;
            const auto res = nf::decode_tx_packet(std::span(reqs).first(n), p);
            if (res.verdict == nf::tx_verdict::ok || res.verdict == nf::tx_verdict::drop) {
                check(p.requests >= 1 && p.requests <= n);
                if (res.verdict == nf::tx_verdict::ok) {
                    std::uint32_t sum = 0;
                    for (std::uint32_t f = 0; f < p.nfrags; ++f) {
                        check(std::uint32_t{p.frags[f].offset} + p.frags[f].size <= 4096);
                        sum += p.frags[f].size;
                    }
                    check(sum == p.total_size);
                }
                back.consume_requests(p.requests);
                const std::size_t k = nf::make_tx_responses(p, nf::rsp_okay, rsps);
                check(back.put_responses(std::span(rsps).first(k)) == k);
            }
            break;
        }
        case 1: { // the peer rewrites 4 bytes anywhere in the page
            if (end - op < 6) {
                op = end;
                break;
            }
            std::size_t at = (std::size_t{op[0]} << 8 | op[1]) % (4096 - 3);
            at &= ~std::size_t{3};
            std::memcpy(mem.bytes + at, op + 2, 4);
            op += 6;
            break;
        }
        case 2:
            (void)back.push_responses();
            break;
        case 3:
            (void)back.final_check_for_requests(op < end ? *op++ : 1);
            break;
        }
        check(back.unanswered() <= back.size());
        // Answering more than was consumed is impossible: put_response refuses.
        const nf::tx_response extra{0, 0};
        if (back.unanswered() == 0) {
            check(!back.put_response(extra));
        }
        if (was_broken) {
            check(back.broken());
        }
        was_broken = back.broken();
    }
    return 0;
}
