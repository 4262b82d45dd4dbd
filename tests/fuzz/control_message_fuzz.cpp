// fuzz-component: netif
// Fuzz target: the control channel's message parser and the handshake readers on bytes a hostile
// peer sends. Invariants: no crash or out-of-bounds read (ASan); a message either parses into
// well-formed keys or is refused with a reason and keeps nothing; what parses re-encodes to the
// same keys; the hello/connect readers either accept values inside their limits or say why.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include <splitnet/netif/connection.hpp>
#include <splitnet/netif/control.hpp>

namespace sc = splitnet::netif::control;
namespace sn = splitnet::netif;

namespace {
void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    sc::message m;
    // Pretend descriptors came along (placeholders: never closed), so indices can be valid.
    static constexpr int placeholders[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                             -1, -1, -1, -1, -1, -1, -1, -1};
    m.adopt_fds(placeholders);
    const auto why = m.decode({reinterpret_cast<const std::byte*>(data), size});
    if (why) {
        check(!why->empty() && m.keys().empty());
        return 0;
    }
    sc::message again;
    check(!again.decode(m.encode()).has_value());
    check(again.keys() == m.keys() && again.type() == m.type() && again.state() == m.state());
    std::string err;
    if (auto h = sn::hello_info::read(m, err)) {
        check(h->backend_id != h->frontend_id && h->mtu >= 68 && h->mtu <= 65535);
        check(h->offer.max_queues <= sn::max_queues_limit);
    }
    if (auto c = sn::connect_info::read(m, err)) {
        check(c->queues.size() == c->request.queues && c->request.queues >= 1);
        check(c->region >= 0 && static_cast<std::size_t>(c->region) < m.fd_count());
        check(!c->mac.is_multicast() && !c->mac.is_zero());
    } else {
        check(!err.empty());
    }
    return 0;
}
