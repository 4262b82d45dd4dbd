// fuzz-component: netif
// Fuzz target: a real netback queue (netif::backend_queue) against a fake front end whose TX and
// RX ring pages, grant table and data pages the fuzzer writes between the queue's steps (a
// hostile guest in another process), with rx_burst (guest TX: validation and grant copy) and
// deliver (guest RX: backend copy or frontend copy) in between, and frames from the driver
// domain queued for the guest (plain, partial checksum, TCP aggregates).
//
// Input: an 8-byte header (features, burst, queue length, ring start), then operations of a
// selector byte and operands (missing operand bytes read as 0).
//
// Invariants (std::abort on violation): no out-of-bounds access (ASan); every frame rx_burst
// returns respects netif's limits (pkt_len 14..65535, segment lengths adding up to pkt_len,
// nb_segs right, each segment inside a buffer of the pool, no buffer twice); what deliver
// publishes on the RX ring decodes as whole packets without a protocol violation; a broken queue
// stays broken and takes and returns nothing; after teardown every buffer is back in the pool
// with no double or foreign free.
//
// The two bugs this target found first (a guest-chosen MSS larger than a pool buffer made
// gso_segmenter write past it; a zero-length packet with a multicast extra became a frame aliasing
// another buffer) are fixed; hostile_frontend_test.cpp keeps a test for each.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include <splitnet/netif/backend_queue.hpp>
#include <splitnet/packet/packet_builder.hpp>

#include "support/chain.hpp"

namespace sn = splitnet::netif;
namespace sp = splitnet::packet;
namespace sg = splitnet::grant;
namespace sr = splitnet::ring;

namespace {

void check(bool ok, int line = __builtin_LINE()) {
    if (!ok) {
        std::fprintf(stderr, "netback_tx_fuzz: invariant at line %d broken\n", line);
        std::abort();
    }
}

// The guest's region: grant table, activity page, TX ring, RX ring (up to 4 pages: the input
// picks 1, 2 or 4), RX grants, data pages.
constexpr std::uint32_t data_pages = 8;
constexpr std::uint64_t tx_frame = 2, rx_frame = 3, grants_frame = 7, first_data = 8;
constexpr std::size_t guest_pages = first_data + data_pages;
constexpr sg::domain_id self_id = 0, guest_id = 1;
using layout = sr::xen_layout;

struct alignas(4096) guest_region {
    std::byte bytes[guest_pages * 4096];
};

/// What lives for the whole run: the driver domain's memory and pool, the doorbells.
struct world {
    world()
        : mem({.id = self_id,
               .table_pages = 1 + 8, // a 4-page RX ring's references (ref_pages_for)
               .activity_slots = 2,
               .pool = {.frame_count = 1024, .frame_size = 2048, .headroom = 256},
               .populate = false}) {
        for (auto& e : events) {
            e = std::make_unique<splitnet::event::eventfd_channel>();
        }
    }
    guest_region guest{};
    sn::backend_memory mem;
    std::array<std::unique_ptr<splitnet::event::eventfd_channel>, 4> events;
};

world& the_world() {
    static auto* w = new world(); // never destroyed: libFuzzer may exit from anywhere
    return *w;
}

/// Operand reader: missing bytes are 0.
struct reader {
    const std::uint8_t* p;
    const std::uint8_t* end;
    [[nodiscard]] bool more() const noexcept { return p < end; }
    std::uint8_t u8() noexcept { return p < end ? *p++ : 0; }
    std::uint16_t u16() noexcept {
        const std::uint16_t lo = u8();
        return static_cast<std::uint16_t>(lo | (u8() << 8));
    }
    std::uint32_t u32() noexcept {
        const std::uint32_t lo = u16();
        return lo | (std::uint32_t{u16()} << 16);
    }
};

std::uint32_t* index_at(std::span<std::byte> page, std::size_t off) {
    return reinterpret_cast<std::uint32_t*>(page.data() + off);
}
std::uint32_t load(std::span<std::byte> page, std::size_t off) {
    return splitnet::detail::load_acquire(*index_at(page, off));
}
void store(std::span<std::byte> page, std::size_t off, std::uint32_t v) {
    splitnet::detail::store_release(*index_at(page, off), v);
}

/// Slots of a ring laid out in `ring` (one or more pages) with `slot`-byte entries (12: TX).
std::uint32_t slots_in(std::span<std::byte> ring, std::size_t slot) {
    return slot == 12 ? sr::shared_ring<sn::tx_request, sn::tx_response>::entries_for(ring.size())
                      : sn::rx_ring_slots(static_cast<std::uint32_t>(ring.size() / 4096));
}

template <class T>
void put_slot(std::span<std::byte> page, std::uint32_t idx, const T& v) {
    static_assert(sizeof(T) == 8 || sizeof(T) == 12);
    constexpr std::size_t slot = sizeof(T) == 12 ? 12 : 8; // union of request and response
    std::memcpy(page.data() + layout::header_bytes + (idx % slots_in(page, slot)) * slot, &v,
                sizeof v);
}
template <class T>
T get_slot(std::span<std::byte> page, std::uint32_t idx) {
    constexpr std::size_t slot = std::is_same_v<T, sn::tx_request> ? 12 : 8;
    T v;
    std::memcpy(&v, page.data() + layout::header_bytes + (idx % slots_in(page, slot)) * slot,
                sizeof v);
    return v;
}

/// A frame the driver domain sends the guest: plain bytes, or TCP with a partial checksum or as
/// an aggregate (what GRO hands over).
bool driver_frame(sp::buffer_pool& pool, reader& in, sp::frame& f) {
    const std::uint8_t kind = in.u8();
    const std::size_t len = 14 + in.u16() % 20000;
    std::vector<std::uint8_t> bytes(len + 128);
    if (kind % 3 == 0) {
        sp::fill_stream_bytes(bytes, kind, 0);
        bytes.resize(len);
        return splitnet::test::try_make_chain(pool, bytes, f);
    }
    const bool v6 = (kind & 4) != 0;
    std::vector<std::uint8_t> payload(len);
    sp::fill_stream_bytes(payload, kind, 0);
    sp::ip_spec ip;
    ip.ipv6 = v6;
    const std::size_t n = sp::build_tcp(bytes, {}, ip, {}, payload);
    if (n == 0) {
        return false;
    }
    bytes.resize(n);
    const sp::parsed_packet p = sp::parse(bytes);
    sp::offload_info o;
    if (kind % 3 == 2) {
        sp::set_partial_checksum(bytes, p, o);
        const std::uint16_t mss = static_cast<std::uint16_t>(536 + in.u16() % 8500);
        if (len > mss) {
            o.gso = v6 ? sp::gso_type::tcpv6 : sp::gso_type::tcpv4;
            o.gso_size = mss;
            if (!sp::complete_offload_metadata(p, o)) {
                return false;
            }
        }
    } else {
        sp::set_partial_checksum(bytes, p, o);
    }
    if (!splitnet::test::try_make_chain(pool, bytes, f)) {
        return false;
    }
    f.offload = o;
    return true;
}

/// netif's limits and the pool's layout for a frame the queue handed out.
void check_frame(const sp::frame& f, const sp::buffer_pool& pool, std::set<std::uint64_t>& seen) {
    check(f.pkt_len >= 1 && f.pkt_len <= sn::max_packet_size);
    check(f.pkt_len >= sn::ethernet_header_bytes); // runts are dropped
    std::uint64_t sum = 0;
    std::uint32_t segs = 0;
    for (const sp::frame* s = &f; s != nullptr; s = s->next) {
        check(++segs <= 64);
        check(s->buffer != sp::no_buffer && pool.owns(s->buffer) &&
              s->buffer % pool.frame_size() == 0);
        check(seen.insert(s->buffer).second); // no buffer in two frames or twice in one
        const auto lo = reinterpret_cast<std::uintptr_t>(pool.base() + s->buffer);
        const auto at = reinterpret_cast<std::uintptr_t>(s->data);
        check(at >= lo && at + s->data_len <= lo + pool.frame_size());
        sum += s->data_len;
    }
    check(sum == f.pkt_len);
    check(segs == f.nb_segs);
}

/// Decodes the RX responses the queue just published, as a front end would.
void check_rx_responses(std::span<std::byte> rx, sr::ring_idx from, sr::ring_idx to) {
    const std::uint32_t n = to - from;
    check(n <= slots_in(rx, sizeof(sn::rx_response)));
    std::vector<sn::rx_response> rsps(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        rsps[i] = get_slot<sn::rx_response>(rx, from + i);
    }
    std::size_t pos = 0;
    auto pkt = std::make_unique<sn::rx_packet>();
    while (pos < rsps.size()) {
        const auto r =
            sn::decode_rx_packet(std::span(rsps).subspan(pos), *pkt, sn::rx_slot_capacity);
        check(r.verdict == sn::rx_verdict::ok || r.verdict == sn::rx_verdict::error);
        pos += pkt->responses;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    world& w = the_world();
    sp::buffer_pool& pool = w.mem.pool();
    check(pool.available() == pool.capacity());
    std::memset(&w.guest, 0, sizeof w.guest);
    const std::span<std::byte> region(w.guest.bytes);
    const auto page = [&](std::uint64_t f) {
        return region.subspan(f * 4096, 4096);
    };
    const sg::memory_domain guest{guest_id, region, 1, 2, -1};
    sg::domain_registry domains(4);
    domains.add(guest);

    reader in{data, data + size};
    const std::uint8_t feat = in.u8();
    const std::uint8_t feat2 = in.u8();
    const std::uint32_t rx_pages = 1U << ((feat2 >> 4) % 3);
    const std::span<std::byte> tx = page(tx_frame),
                               rx = region.subspan(rx_frame * 4096, std::size_t{rx_pages} * 4096),
                               grants = page(grants_frame);
    sn::backend_config cfg;
    cfg.burst = 1 + in.u8() % 64;
    cfg.rx_queue_len = 1 + in.u8() % 64;
    const sr::ring_idx start = in.u32();
    sr::shared_ring<sn::tx_request, sn::tx_response>(tx).initialise(start);
    sr::shared_ring<sn::rx_request, sn::rx_response>(rx).initialise(start);

    sn::negotiated f;
    f.tx_sg = (feat & 1) != 0;
    f.tx_gso_tcpv4 = f.tx_sg && (feat & 2) != 0;
    f.tx_gso_tcpv6 = f.tx_sg && (feat & 4) != 0;
    f.tx_csum_ipv6 = (feat & 8) != 0;
    f.rx_sg = (feat & 16) != 0;
    f.rx_csum_ipv4 = (feat & 32) != 0;
    f.rx_csum_ipv6 = (feat & 64) != 0;
    f.rx_gso_tcpv4 = f.rx_sg && f.rx_csum_ipv4 && (feat2 & 1) != 0;
    f.rx_gso_tcpv6 = f.rx_sg && f.rx_csum_ipv6 && (feat2 & 2) != 0;
    f.rx_notify = (feat2 & 4) != 0;
    f.split_event_channels = true;
    f.rx_copy = (feat & 128) != 0 ? sn::copy_side::frontend : sn::copy_side::backend;

    sn::backend_queue<>::resources r;
    r.tx_ring_page = tx;
    r.rx_ring_page = rx;
    r.rx_grants_page = grants;
    for (std::size_t d = 0; d < 4; ++d) {
        r.events[d] = w.events[d].get();
    }
    r.guest_domains = &domains;
    r.self = self_id;
    r.guest = guest_id;
    r.activity_slot = (feat2 >> 3) & 1;
    r.pool = &pool;
    r.memory = &w.mem;
    r.features = f;
    std::optional<sg::grant_ref> range;
    const std::uint32_t ref_pages = sn::backend_memory::ref_pages_for(sn::rx_ring_slots(rx_pages));
    if (f.rx_copy == sn::copy_side::frontend) {
        range = w.mem.take_ref_range(ref_pages);
        check(range.has_value());
        r.ref_range = *range;
    }
    std::uint32_t& backend_activity = w.mem.domain().activity(0);
    {
        sn::backend_queue<> q(r, cfg);
        sr::ring_idx tx_pvt = start;
        sr::ring_idx rx_pvt = start;
        bool was_broken = false;
        auto now = splitnet::coalesce::time_point{};
        std::vector<sp::frame> out(64);
        while (in.more()) {
            const std::uint8_t op = in.u8();
            switch (op % 16) {
            case 0: { // a raw TX slot anywhere
                sn::tx_request t;
                const std::uint8_t at = in.u8();
                t.gref = in.u32();
                t.offset = in.u16();
                t.flags = in.u16();
                t.id = in.u16();
                t.size = in.u16();
                put_slot(tx, tx_pvt + at, t);
                break;
            }
            case 1: { // a structured TX packet behind the private producer index
                const std::uint8_t shape = in.u8();
                // bits 0-4: fragments - 1 (mod 24), 5-6: extras (mod 3), 7: a raw total size
                const std::uint32_t nfrags = 1 + (shape & 0x1fU) % 24;
                const auto nextra = static_cast<std::uint8_t>(((shape >> 5) & 3U) % 3);
                std::vector<sn::tx_request> reqs;
                sn::tx_request first{};
                for (std::uint32_t k = 0; k < nfrags; ++k) {
                    const std::uint8_t g = in.u8();
                    sn::tx_request t;
                    t.gref = g < 240 ? 8 + g % 24 : in.u32();
                    const std::uint16_t o = in.u16();
                    t.offset = (o & 0x8000) != 0 ? o : static_cast<std::uint16_t>(o % 4096);
                    const std::uint16_t s = in.u16();
                    t.size = (s & 0x8000) != 0 ? s : static_cast<std::uint16_t>(s % 4096);
                    t.id = static_cast<std::uint16_t>(k);
                    t.flags = k + 1 < nfrags ? sn::tx_flag::more_data : 0;
                    if (k == 0) {
                        first = t;
                    } else {
                        reqs.push_back(t);
                    }
                }
                std::uint32_t total = first.size;
                for (const auto& t : reqs) {
                    total += t.size;
                }
                first.size = (shape & 0x80) != 0 ? in.u16() : static_cast<std::uint16_t>(total);
                first.flags = static_cast<std::uint16_t>(first.flags | (in.u8() & 3));
                if (nextra != 0) {
                    first.flags |= sn::tx_flag::extra_info;
                }
                put_slot(tx, tx_pvt++, first);
                for (std::uint8_t e = 0; e < nextra; ++e) {
                    sn::extra_info x{};
                    x.type = in.u8() % 6;
                    x.flags = e + 1 < nextra ? sn::extra_flag_more : 0;
                    x.u.pad[0] = in.u16();
                    x.u.pad[1] = in.u16();
                    x.u.pad[2] = in.u16();
                    put_slot(tx, tx_pvt++, sn::slot_from(x));
                }
                for (const auto& t : reqs) {
                    put_slot(tx, tx_pvt++, t);
                }
                break;
            }
            case 2: // publish the TX requests written, and kick
                store(tx, layout::req_prod, tx_pvt);
                w.events[sn::event_dir::tx_to_back]->notify();
                break;
            case 3: { // TX producer index games
                const std::uint8_t how = in.u8();
                const std::uint32_t v = in.u32();
                const std::uint32_t now_prod = load(tx, layout::req_prod);
                store(tx, layout::req_prod,
                      how % 3 == 0   ? v
                      : how % 3 == 1 ? now_prod + v % (2 * slots_in(rx, 8))
                                     : now_prod - v % 8);
                break;
            }
            case 4: { // packet bytes
                const std::uint32_t pg = in.u8() % data_pages;
                const std::uint32_t off = in.u16() % 4096;
                const std::uint32_t len = std::min<std::uint32_t>(in.u8(), 4096 - off);
                std::byte* dst = page(first_data + pg).data() + off;
                for (std::uint32_t i = 0; i < len; ++i) {
                    dst[i] = static_cast<std::byte>(in.u8());
                }
                break;
            }
            case 5: { // a grant entry, structured
                const sg::grant_ref ref = 8 + in.u8() % 48;
                const std::uint8_t kind = in.u8();
                sg::grant_entry e{};
                e.flags = static_cast<std::uint16_t>(
                    (kind % 4 == 3 ? sg::gtf::transitive : sg::gtf::permit_access) |
                    ((kind & 4) != 0 ? sg::gtf::readonly : 0) |
                    ((kind & 8) != 0 ? sg::gtf::sub_page : 0) |
                    ((kind & 16) != 0 ? sg::gtf::revoke_request : 0));
                e.domid = (kind & 32) != 0 ? in.u16() : self_id;
                e.word4 = in.u16();
                e.word6 = in.u16();
                const std::uint8_t fr = in.u8();
                e.word8 = (kind & 64) != 0 ? in.u32() : (fr % (guest_pages + 2));
                if (e.type() == sg::gtf::transitive && (kind & 128) == 0) {
                    e.word4 = guest_id; // a transitive grant through the guest itself
                    e.word8 = 8 + fr % 48;
                }
                sg::detail::publish_entry(guest.entry(ref), e);
                break;
            }
            case 6: { // a grant entry, raw
                const sg::grant_ref ref = in.u8();
                sg::grant_entry e;
                std::uint8_t raw[sizeof e];
                for (auto& b : raw) {
                    b = in.u8();
                }
                std::memcpy(&e, raw, sizeof e);
                sg::detail::publish_entry(guest.entry(ref), e);
                break;
            }
            case 7: { // guest TX: the back end reads the ring
                const std::size_t want = 1 + in.u8() % 64;
                const std::size_t n = q.rx_burst({out.data(), want});
                check(n <= want);
                check(!was_broken || n == 0);
                std::set<std::uint64_t> seen;
                for (std::size_t i = 0; i < n; ++i) {
                    check_frame(out[i], pool, seen);
                }
                // Half the time the guest's frames come back to it (a bridge hairpin): its
                // offload metadata then drives the RX side (partial checksums, aggregates).
                std::size_t back = 0;
                if ((want & 1) != 0) {
                    back = q.tx_burst({out.data(), n});
                }
                pool.free_burst({out.data() + back, n - back});
                break;
            }
            case 8: { // frames for the guest
                const std::uint32_t count = 1 + in.u8() % 6;
                std::vector<sp::frame> fr;
                for (std::uint32_t k = 0; k < count; ++k) {
                    sp::frame x;
                    if (driver_frame(pool, in, x)) {
                        fr.push_back(x);
                    }
                }
                const std::size_t took = q.tx_burst(fr);
                check(!was_broken || took == 0);
                pool.free_burst({fr.data() + took, fr.size() - took});
                break;
            }
            case 9: { // guest RX: the back end fills posted buffers
                now += std::chrono::microseconds(in.u8());
                const auto before = q.rx_ring_stats().produced;
                const std::size_t n = q.deliver(now);
                check(!was_broken || n == 0);
                const auto after = q.rx_ring_stats().produced;
                check_rx_responses(rx, start + static_cast<sr::ring_idx>(before),
                                   start + static_cast<sr::ring_idx>(after));
                break;
            }
            case 10: { // RX requests posted and published
                const std::uint32_t count = 1 + in.u8() % 32;
                for (std::uint32_t k = 0; k < count; ++k) {
                    const std::uint8_t g = in.u8();
                    sn::rx_request t{};
                    t.id = static_cast<std::uint16_t>(rx_pvt);
                    t.gref = g < 240 ? 8 + g % 48 : in.u32();
                    put_slot(rx, rx_pvt++, t);
                }
                store(rx, layout::req_prod, rx_pvt);
                w.events[sn::event_dir::rx_to_back]->notify();
                break;
            }
            case 11: { // RX producer index games
                const std::uint8_t how = in.u8();
                const std::uint32_t v = in.u32();
                const std::uint32_t now_prod = load(rx, layout::req_prod);
                store(rx, layout::req_prod,
                      how % 3 == 0   ? v
                      : how % 3 == 1 ? now_prod + v % 512
                                     : now_prod - v % 8);
                break;
            }
            case 12: { // any header word of either ring (event indices, padding)
                const std::uint8_t at = in.u8();
                store((at & 0x80) != 0 ? rx : tx, (at % 16) * 4U, in.u32());
                break;
            }
            case 13: { // the worker's other calls
                switch (in.u8() % 4) {
                case 0:
                    (void)q.prepare_to_sleep();
                    break;
                case 1:
                    q.on_timer(now);
                    break;
                case 2:
                    q.consume_kicks();
                    break;
                default:
                    (void)q.next_deadline();
                    (void)q.has_rx_backlog();
                    break;
                }
                break;
            }
            case 14: { // RX grants page scribble (frontend copy: refs the back end wrote)
                const std::uint32_t at = in.u8() % 1024;
                store(grants, at * 4U, in.u32());
                break;
            }
            case 15: // the guest's copier in the back end's region (frontend copy): in flight
                splitnet::detail::store_release(backend_activity, in.u8());
                break;
            }
            if (was_broken) {
                check(q.broken());
            }
            was_broken = q.broken();
        }
        if (was_broken) {
            std::array<sp::frame, 4> none;
            check(q.rx_burst(none) == 0);
            check(q.deliver(now) == 0);
        }
        if (std::getenv("NETBACK_TX_FUZZ_VERBOSE") != nullptr) { // what a seed reaches
            const auto& st = q.queue_stats();
            std::fprintf(stderr,
                         "tx %llu dropped %llu copy_failed %llu gso %llu | rx %llu slots %llu "
                         "dropped %llu copy_failed %llu segmented %llu | fault '%s'\n",
                         static_cast<unsigned long long>(st.tx_packets),
                         static_cast<unsigned long long>(st.tx_dropped),
                         static_cast<unsigned long long>(st.tx_copy_failed),
                         static_cast<unsigned long long>(st.tx_gso),
                         static_cast<unsigned long long>(st.rx_packets),
                         static_cast<unsigned long long>(st.rx_slots),
                         static_cast<unsigned long long>(st.rx_dropped),
                         static_cast<unsigned long long>(st.rx_copy_failed),
                         static_cast<unsigned long long>(st.rx_segmented), q.fault().c_str());
        }
        // Teardown as ~backend does it: the front end copies no more.
        splitnet::detail::store_release(backend_activity, 0U);
    }
    if (range) {
        w.mem.give_ref_range(*range, ref_pages);
    }
    for (auto& e : w.events) {
        (void)e->try_consume();
    }
    check(pool.available() == pool.capacity());
    check(pool.stats().double_free == 0 && pool.stats().foreign_free == 0);
    return 0;
}
