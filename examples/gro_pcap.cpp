// SPDX-License-Identifier: MIT
// splitnet-gro-pcap: what GRO (or LRO) does to a capture. Reads a classic pcap (Ethernet), runs
// every frame through offload::gro_engine in bursts, and writes what comes out (aggregates up to
// 64 KiB with completed checksums, and every frame it did not merge, untouched) to another pcap,
// so a user can look at their own traffic after GRO and compare it with Linux's (tcpdump on a
// bridge port or behind a veth with GRO on). With --resegment the aggregates also go through
// offload::gso_segmenter; in exact mode that gives the input back frame for frame, and the tool
// checks it: per flow, the n-th frame out must equal the n-th frame in, byte for byte.
//
// Time is the capture's: a burst's frames arrive at the last one's timestamp, an aggregate held
// across bursts (--timeout-us) is flushed when the capture's clock passes its deadline, and an
// output record carries the timestamp of its last segment.
//
// Errors (unreadable, truncated or corrupt captures, unwritable outputs) name the file, the byte
// offset and the record, and exit with status 1; a failed exact round trip exits with status 3.
#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <sys/stat.h>

#include <splitnet/offload/gro.hpp>
#include <splitnet/offload/gso.hpp>
#include <splitnet/packet/buffer_pool.hpp>
#include <splitnet/packet/checksum_offload.hpp>
#include <splitnet/packet/parser.hpp>
#include <splitnet/packet/pcap.hpp>

namespace so = splitnet::offload;
namespace sp = splitnet::packet;

namespace {

constexpr const char* tool = "splitnet-gro-pcap";
constexpr int exit_error = 1;
constexpr int exit_usage = 2;
constexpr int exit_roundtrip = 3;

void usage(std::FILE* out) {
    std::fprintf(
        out,
        "usage: splitnet-gro-pcap IN.pcap OUT.pcap [--mode gro|lro] [--merge exact|local]\n"
        "                         [--flows N] [--burst N] [--timeout-us N]\n"
        "                         [--resegment FILE] [--stats]\n"
        "\n"
        "Runs every frame of IN.pcap (classic pcap, Ethernet link type) through splitnet's GRO\n"
        "engine and writes the result to OUT.pcap: aggregates as single records of up to 64 KiB\n"
        "(IP length rewritten, IPv4 header and TCP checksums complete, timestamp of their last\n"
        "segment) and every frame that was not merged, unchanged. Open both in Wireshark, or\n"
        "compare with what Linux makes of the same traffic (tcpdump behind a GRO-enabled port).\n"
        "\n"
        "  --mode gro        aggregates are chains of the original buffers (storage::chain,\n"
        "                    what Linux GRO does; nothing is copied). Default.\n"
        "  --mode lro        aggregates are copied into one 128 KiB buffer each\n"
        "                    (storage::linear, classic LRO).\n"
        "  --merge exact     merge only what GSO can split back bit for bit (Linux GRO rules:\n"
        "                    equal ACK, window, options, TTL, TOS; IP IDs in sequence). Default.\n"
        "  --merge local     for local delivery (FreeBSD tcp_lro): ACK, window and timestamps\n"
        "                    may advance; the aggregate carries the latest. Not reversible.\n"
        "  --flows N         aggregates held at once (max_flows, default 64: Linux holds at\n"
        "                    most 8 x 8 per NAPI instance); a new flow beyond it evicts the "
        "oldest.\n"
        "  --burst N         frames per receive_burst (default 32; Linux polls up to 64).\n"
        "  --timeout-us N    0 (default): flush everything at the end of every burst, like\n"
        "                    Linux with gro_flush_timeout 0. N > 0: hold aggregates across\n"
        "                    bursts and flush one N microseconds after its first segment arrived,\n"
        "                    measured on the capture's own timestamps.\n"
        "  --resegment FILE  also split every aggregate with software GSO and write the\n"
        "                    segments to FILE. With --merge exact the tool checks that this\n"
        "                    gives back IN.pcap frame for frame (per flow, in order; flows may\n"
        "                    interleave differently) and exits with status 3 if it does not.\n"
        "  --stats           print the engine's counters: merged segments, aggregates and\n"
        "                    segments per aggregate, flushes and pass-throughs by reason.\n"
        "  -h, --help        this text.\n"
        "\n"
        "IN.pcap is read twice: checked whole first, so a truncated or corrupt capture leaves\n"
        "no output behind (the error names the byte offset and the record).\n"
        "Segments whose TCP checksum does not verify are never merged (a capture taken on the\n"
        "sending host with TX checksum offload shows blank checksums: capture on the receiver).\n"
        "Exit status: 0 done, 1 a file could not be read or written, 2 bad usage, 3 the exact\n"
        "round trip failed.\n");
}

[[noreturn]] void bad_usage(const std::string& what) {
    std::fprintf(stderr, "%s: %s\n", tool, what.c_str());
    std::fprintf(stderr, "run %s --help for the options\n", tool);
    std::exit(exit_usage);
}

enum class mode { gro, lro };
enum class merge_kind { exact, local };

struct options {
    std::string in, out, resegment;
    mode storage = mode::gro;
    merge_kind merge = merge_kind::exact;
    std::uint32_t flows = 64;
    std::uint32_t burst = 32;
    std::uint64_t timeout_us = 0;
    bool stats = false;
};

std::uint64_t number(const char* opt, const char* text, std::uint64_t lo, std::uint64_t hi) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(text, &end, 10);
    if (text[0] == '\0' || text[0] == '-' || *end != '\0' || errno != 0 || v < lo || v > hi) {
        bad_usage(std::string(opt) + ": expected a whole number from " + std::to_string(lo) +
                  " to " + std::to_string(hi) + ", got '" + text + "'");
    }
    return v;
}

options parse_args(int argc, char** argv) {
    options o;
    std::vector<std::string> files;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto value = [&]() -> const char* {
            if (i + 1 >= argc) {
                bad_usage(a + " needs a value");
            }
            return argv[++i];
        };
        if (a == "-h" || a == "--help") {
            usage(stdout);
            std::exit(0);
        } else if (a == "--mode") {
            const std::string v = value();
            if (v != "gro" && v != "lro") {
                bad_usage("--mode: expected gro or lro, got '" + v + "'");
            }
            o.storage = v == "gro" ? mode::gro : mode::lro;
        } else if (a == "--merge") {
            const std::string v = value();
            if (v != "exact" && v != "local") {
                bad_usage("--merge: expected exact or local, got '" + v + "'");
            }
            o.merge = v == "exact" ? merge_kind::exact : merge_kind::local;
        } else if (a == "--flows") {
            o.flows = static_cast<std::uint32_t>(number("--flows", value(), 1, 65536));
        } else if (a == "--burst") {
            o.burst = static_cast<std::uint32_t>(number("--burst", value(), 1, 4096));
        } else if (a == "--timeout-us") {
            o.timeout_us = number("--timeout-us", value(), 0, 3600ULL * 1000000);
        } else if (a == "--resegment") {
            o.resegment = value();
        } else if (a == "--stats") {
            o.stats = true;
        } else if (a.size() > 1 && a[0] == '-') {
            bad_usage("unknown option " + a);
        } else {
            files.push_back(a);
        }
    }
    if (files.size() != 2) {
        bad_usage(files.size() < 2 ? "needs an input and an output file"
                                   : "too many file names: " + files[2]);
    }
    o.in = files[0];
    o.out = files[1];
    return o;
}

/// Refuses to overwrite the input (the output is written while the input is read).
void check_distinct(const std::string& in, const std::string& out) {
    struct stat a {
    }, b{};
    if (::stat(in.c_str(), &a) == 0 && ::stat(out.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
        bad_usage(out + " is the input file " + in + "; choose another output name");
    }
}

/// Runs the reader, adding the record number to any error (the reader names file and offset).
struct counted_reader {
    sp::pcap_reader reader;
    std::uint64_t records = 0; ///< records returned so far

    explicit counted_reader(const std::string& path) : reader(path) {}
    bool next(sp::pcap_record& rec) {
        try {
            if (!reader.next(rec)) {
                return false;
            }
        } catch (const sp::pcap_error& e) {
            throw sp::pcap_error(std::string(e.what()) + " (record " + std::to_string(records + 1) +
                                 ", after " + std::to_string(records) + " good records)");
        }
        ++records;
        return true;
    }
};

struct capture_facts {
    std::uint64_t records = 0;
    std::uint32_t largest = 0; ///< largest captured record
    bool nanosecond = false;
};

/// A first pass: the whole file is checked before any output is written, and the buffer pool
/// is sized from what the capture holds.
capture_facts scan(const std::string& path) {
    counted_reader r(path);
    if (r.reader.link_type() != sp::pcap_link::ethernet) {
        throw sp::pcap_error(path + ": link type " + std::to_string(r.reader.link_type()) +
                             " is not Ethernet (1); capture on one interface (tcpdump -i eth0), "
                             "not -i any");
    }
    capture_facts f;
    f.nanosecond = r.reader.nanosecond();
    sp::pcap_record rec;
    while (r.next(rec)) {
        f.largest = std::max(f.largest, static_cast<std::uint32_t>(rec.data.size()));
    }
    f.records = r.records;
    return f;
}

std::string address(const std::array<std::uint8_t, 16>& a, int version) {
    char buf[64];
    if (version == 4) {
        std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    } else {
        std::snprintf(buf, sizeof buf, "[%x:%x:%x:%x:%x:%x:%x:%x]", a[0] << 8 | a[1],
                      a[2] << 8 | a[3], a[4] << 8 | a[5], a[6] << 8 | a[7], a[8] << 8 | a[9],
                      a[10] << 8 | a[11], a[12] << 8 | a[13], a[14] << 8 | a[15]);
    }
    return buf;
}

std::string describe(const sp::flow_key& k) {
    if (k.ip_version == 0) {
        return "non-IP frames";
    }
    const char* proto = k.protocol == sp::ip_proto::tcp   ? "TCP"
                        : k.protocol == sp::ip_proto::udp ? "UDP"
                                                          : "IP";
    return std::string(proto) + " " + address(k.src_addr, k.ip_version) + ":" +
           std::to_string(k.src_port) + " > " + address(k.dst_addr, k.ip_version) + ":" +
           std::to_string(k.dst_port);
}

/// Flow of a frame for the round-trip check: its parsed key, or one class for what does not
/// parse as IP (GRO passes those straight through, in order).
sp::flow_key key_of(std::span<const std::uint8_t> bytes) {
    const sp::parsed_packet p = sp::parse(bytes);
    return p.ok() && (p.l3 == sp::l3_type::ipv4 || p.l3 == sp::l3_type::ipv6) ? p.key
                                                                              : sp::flow_key{};
}

/// The exact-round-trip oracle. GRO never reorders a flow, so the n-th frame of a flow that
/// comes out of GSO must be the n-th frame of that flow that went in. Only frames still inside
/// the engine are kept, so memory is bounded by what the engine holds.
class roundtrip_check {
public:
    struct original {
        std::vector<std::uint8_t> bytes;
        std::uint64_t record = 0; ///< 1-based record number in the input
        std::uint64_t timestamp_ns = 0;
        std::uint32_t orig_len = 0;
    };

    void expect(std::span<const std::uint8_t> bytes, std::uint64_t record, std::uint64_t ts,
                std::uint32_t orig_len) {
        pending_[key_of(bytes)].push_back({{bytes.begin(), bytes.end()}, record, ts, orig_len});
        ++expected_;
    }

    /// Checks one resegmented frame; returns the original it stands for (nullopt: none left).
    std::optional<original> verify(std::span<const std::uint8_t> bytes) {
        const sp::flow_key k = key_of(bytes);
        auto it = pending_.find(k);
        if (it == pending_.end() || it->second.empty()) {
            ++extra_;
            note("a frame of " + describe(k) + " (" + std::to_string(bytes.size()) +
                 " bytes) that is not in the input");
            return std::nullopt;
        }
        original o = std::move(it->second.front());
        it->second.pop_front();
        if (it->second.empty()) {
            pending_.erase(it);
        }
        if (o.bytes.size() == bytes.size() &&
            std::equal(o.bytes.begin(), o.bytes.end(), bytes.begin())) {
            ++identical_;
        } else {
            ++differ_;
            const std::size_t n = std::min(o.bytes.size(), bytes.size());
            const std::size_t at = static_cast<std::size_t>(
                std::mismatch(o.bytes.begin(), o.bytes.begin() + static_cast<std::ptrdiff_t>(n),
                              bytes.begin())
                    .first -
                o.bytes.begin());
            note("record " + std::to_string(o.record) + " (" + describe(k) +
                 "): resegmented frame differs from byte " + std::to_string(at) + " (" +
                 std::to_string(bytes.size()) + " bytes, the original " +
                 std::to_string(o.bytes.size()) + ")");
        }
        return o;
    }

    /// Frames that never came back.
    void finish() {
        for (const auto& [k, q] : pending_) {
            missing_ += q.size();
            if (!q.empty()) {
                note(std::to_string(q.size()) + " frame(s) of " + describe(k) +
                     " never came back, the first is record " + std::to_string(q.front().record));
            }
        }
        pending_.clear();
    }

    [[nodiscard]] bool exact() const noexcept {
        return differ_ == 0 && extra_ == 0 && missing_ == 0 && identical_ == expected_;
    }
    [[nodiscard]] std::uint64_t identical() const noexcept { return identical_; }
    [[nodiscard]] std::uint64_t expected() const noexcept { return expected_; }
    [[nodiscard]] std::uint64_t differ() const noexcept { return differ_; }
    [[nodiscard]] std::uint64_t extra() const noexcept { return extra_; }
    [[nodiscard]] std::uint64_t missing() const noexcept { return missing_; }
    [[nodiscard]] const std::vector<std::string>& notes() const noexcept { return notes_; }

private:
    void note(std::string s) {
        if (notes_.size() < 8) {
            notes_.push_back(std::move(s));
        }
    }

    std::unordered_map<sp::flow_key, std::deque<original>, sp::flow_key_hash> pending_;
    std::uint64_t expected_ = 0, identical_ = 0, differ_ = 0, extra_ = 0, missing_ = 0;
    std::vector<std::string> notes_;
};

/// What the engine does not carry: each input buffer's capture timestamp, wire length and
/// record number, indexed by buffer, and (LRO) each large buffer's last-segment timestamp.
struct frame_meta {
    std::vector<std::uint64_t> timestamp_ns;
    std::vector<std::uint32_t> orig_len;
    std::vector<std::uint64_t> large_timestamp_ns;
};

/// storage::linear that also remembers the timestamp of the last segment copied into each
/// aggregate: the segment's own buffer goes back to the pool, so it cannot be asked afterwards.
/// A storage policy sees every append, which is what makes this a small wrapper.
class timed_linear {
public:
    timed_linear(sp::buffer_pool& frames, sp::buffer_pool& large, frame_meta& meta) noexcept
        : inner_(frames, large), frames_(&frames), large_(&large), meta_(&meta) {}

    [[nodiscard]] bool append(so::gro_flow& fl, const so::gro_segment& s) noexcept {
        const std::uint64_t ts = meta_->timestamp_ns[frames_->index_of(s.f->buffer)];
        if (!inner_.append(fl, s)) {
            return false;
        }
        meta_->large_timestamp_ns[large_->index_of(fl.head.buffer)] = ts;
        return true;
    }
    [[nodiscard]] bool can_hold(const sp::frame& f) const noexcept { return inner_.can_hold(f); }
    [[nodiscard]] std::uint64_t alloc_failed() const noexcept { return inner_.alloc_failed(); }

private:
    so::storage::linear inner_;
    sp::buffer_pool* frames_;
    sp::buffer_pool* large_;
    frame_meta* meta_;
};
static_assert(so::storage_policy<timed_linear>);

const char* flush_name(so::flush_reason r) {
    switch (r) {
    case so::flush_reason::end_of_burst:
        return "end_of_burst";
    case so::flush_reason::timeout:
        return "timeout";
    case so::flush_reason::final_segment:
        return "final_segment (PSH/FIN or short)";
    case so::flush_reason::size_limit:
        return "size_limit (64 KiB)";
    case so::flush_reason::segment_limit:
        return "segment_limit";
    case so::flush_reason::seq_gap:
        return "seq_gap";
    case so::flush_reason::tcp_mismatch:
        return "tcp_mismatch (ACK/window/flags)";
    case so::flush_reason::options_mismatch:
        return "options_mismatch";
    case so::flush_reason::ip_mismatch:
        return "ip_mismatch (TTL/TOS/DF/ID/L2)";
    case so::flush_reason::larger_segment:
        return "larger_segment";
    case so::flush_reason::flow_packet:
        return "flow_packet (unmergeable packet)";
    case so::flush_reason::evicted:
        return "evicted (flow table full)";
    case so::flush_reason::count:
        break;
    }
    return "?";
}

unsigned long long ull(std::uint64_t v) {
    return static_cast<unsigned long long>(v);
}

/// The run: pools, engine, segmenter, writers, and the counters the summary prints.
template <class Merge, class Storage>
class gro_pcap_run {
public:
    gro_pcap_run(const options& opt, const capture_facts& facts, sp::buffer_pool& frames,
                 sp::buffer_pool* large, frame_meta& meta, Storage storage)
        : opt_(opt), frames_(frames), large_(large), meta_(meta),
          gro_(config(opt), std::move(storage)), gso_(frames),
          out_(opt.out, facts.nanosecond ? sp::pcap_resolution::nanosecond
                                         : sp::pcap_resolution::microsecond) {
        if (!opt.resegment.empty()) {
            reseg_.emplace(opt.resegment, facts.nanosecond ? sp::pcap_resolution::nanosecond
                                                           : sp::pcap_resolution::microsecond);
        }
        in_.reserve(opt.burst);
        emitted_.resize(std::size_t{opt.burst} + opt.flows + 8);
        segments_.resize(std::size_t{gro_.config().max_segments} + 1);
    }

    static so::gro_config config(const options& opt) {
        so::gro_config c;
        c.max_flows = opt.flows;
        c.hold_across_bursts = opt.timeout_us != 0;
        c.flush_timeout_ns = opt.timeout_us * 1000;
        c.complete_checksum = true; // Wireshark shows the aggregates' checksums as valid
        return c;
    }

    void run() {
        counted_reader r(opt_.in);
        sp::pcap_record rec;
        while (r.next(rec)) {
            const std::uint64_t ts = std::max(rec.timestamp_ns, now_); // the capture's clock
            if (gro_.held() != 0 && ts >= gro_.next_deadline()) {
                // Time passed a held aggregate's deadline before this frame arrived.
                submit();
                drain(gro_.flush_expired(ts, emitted_));
            }
            now_ = ts;
            add(rec, r.records);
            if (in_.size() == opt_.burst) {
                submit();
            }
        }
        submit();
        const std::uint64_t timeouts = gro_.stats().flushes(so::flush_reason::timeout);
        while (gro_.held() != 0) {
            drain(gro_.flush_all(emitted_));
        }
        end_flushes_ = gro_.stats().flushes(so::flush_reason::timeout) - timeouts;
        records_ = r.records;
        check_.finish();
        out_.flush();
        if (reseg_) {
            reseg_->flush();
        }
    }

    void summary() {
        const so::gro_stats& s = gro_.stats();
        const std::string hold = opt_.timeout_us == 0
                                     ? std::string("flushed every burst")
                                     : "held up to " + std::to_string(opt_.timeout_us) + " us";
        std::printf("%s: %llu frames in, %llu frames out to %s\n", opt_.in.c_str(), ull(records_),
                    ull(written_), opt_.out.c_str());
        std::printf("  %s mode, %s merge, %s; %llu aggregates of %.1f segments on average "
                    "(largest %llu bytes), %llu segments merged\n",
                    opt_.storage == mode::gro ? "gro (chain)" : "lro (linear)",
                    opt_.merge == merge_kind::exact ? "exact" : "local-delivery", hold.c_str(),
                    ull(s.aggregates),
                    s.aggregates == 0 ? 0.0
                                      : static_cast<double>(s.aggregated_segments) /
                                            static_cast<double>(s.aggregates),
                    ull(largest_), ull(s.merged));
        if (unsplittable_ != 0 || unfinished_ != 0) {
            std::printf("  warning: %llu aggregate(s) GSO could not split, %llu checksum(s) "
                        "could not be completed\n",
                        ull(unsplittable_), ull(unfinished_));
        }
        if (reseg_) {
            std::printf("resegmented: %llu frames to %s; round trip: %llu of %llu input frames "
                        "identical, %llu differ, %llu missing, %llu extra -> %s\n",
                        ull(reseg_written_), opt_.resegment.c_str(), ull(check_.identical()),
                        ull(check_.expected()), ull(check_.differ()), ull(check_.missing()),
                        ull(check_.extra()),
                        check_.exact() ? "exact"
                        : opt_.merge == merge_kind::exact
                            ? "NOT EXACT"
                            : "not exact (expected: local merge rewrites ACK/window/timestamps)");
            for (const std::string& n : check_.notes()) {
                std::printf("  %s\n", n.c_str());
            }
        }
        if (opt_.stats) {
            print_stats();
        }
    }

    /// Exact mode promises the round trip: anything else is a failure.
    [[nodiscard]] bool failed() const noexcept {
        return reseg_ && opt_.merge == merge_kind::exact && (!check_.exact() || unsplittable_ != 0);
    }

private:
    void add(const sp::pcap_record& rec, std::uint64_t record) {
        sp::frame f;
        if (frames_.alloc_burst({&f, 1}) != 1) {
            // The pool is sized for everything the engine can hold plus a burst: a bug if hit.
            throw std::runtime_error("buffer pool exhausted at record " + std::to_string(record));
        }
        std::memcpy(f.data, rec.data.data(), rec.data.size());
        f.data_len = f.pkt_len = static_cast<std::uint32_t>(rec.data.size());
        const std::uint32_t i = frames_.index_of(f.buffer);
        meta_.timestamp_ns[i] = now_;
        meta_.orig_len[i] = rec.orig_len;
        if (reseg_) {
            check_.expect(rec.data, record, rec.timestamp_ns, rec.orig_len);
        }
        in_.push_back(f);
    }

    void submit() {
        std::size_t done = 0;
        while (done < in_.size()) {
            const so::gro_result r =
                gro_.receive_burst(std::span(in_).subspan(done), emitted_, now_);
            done += r.consumed;
            drain(r.produced);
            if (r.consumed == 0) { // cannot happen (emitted_ has room for all held): be safe
                drain(gro_.flush_all(emitted_));
            }
        }
        in_.clear();
    }

    [[nodiscard]] bool in_large(const sp::frame& f) const noexcept {
        return large_ != nullptr && f.data >= large_->base() &&
               f.data < large_->base() + large_->arena().size();
    }

    /// A pass-through frame's wire length (a snapped record stays snapped).
    [[nodiscard]] std::uint32_t orig_len_of(const sp::frame& f) const noexcept {
        return in_large(f) || f.next != nullptr ? f.pkt_len
                                                : meta_.orig_len[frames_.index_of(f.buffer)];
    }

    /// The capture timestamp of a frame's last segment.
    [[nodiscard]] std::uint64_t timestamp_of(const sp::frame& f) const noexcept {
        if (in_large(f)) {
            return meta_.large_timestamp_ns[large_->index_of(f.buffer)];
        }
        const sp::frame* last = &f;
        while (last->next != nullptr) {
            last = last->next;
        }
        return meta_.timestamp_ns[frames_.index_of(last->buffer)];
    }

    void drain(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            emit(emitted_[i]);
        }
    }

    void emit(sp::frame& f) {
        const std::uint64_t ts = timestamp_of(f);
        if (f.offload.is_gso()) {
            // complete_checksum normally finishes it; a segment without a known payload sum
            // leaves it partial, so complete it here over the chain.
            if (!sp::complete_partial_checksum(f, f.pkt_len)) {
                ++unfinished_;
            }
            largest_ = std::max<std::uint64_t>(largest_, f.pkt_len);
            out_.write(f, ts);
        } else {
            // Untouched input: keep its wire length (a snapped record stays snapped).
            out_.write(f.bytes(), ts, orig_len_of(f));
        }
        ++written_;
        if (!reseg_) {
            release(f);
            return;
        }
        const sp::frame whole = f;
        const so::gso_result r = gso_.segment(whole, segments_);
        if (r.segments == 0) {
            ++unsplittable_;
            release(whole);
            return;
        }
        for (std::size_t i = 0; i < r.segments; ++i) {
            resegmented(segments_[i], ts);
        }
        frames_.free_burst(std::span(segments_).first(r.segments));
        if (!r.consumed_input) {
            release(whole);
        }
    }

    void resegmented(const sp::frame& seg, std::uint64_t fallback_ts) {
        std::span<const std::uint8_t> bytes = seg.bytes();
        if (seg.next != nullptr) { // GSO gives linear segments; a pass-through could be chained
            linear_.resize(seg.pkt_len);
            linear_.resize(sp::copy_out(seg, linear_));
            bytes = linear_;
        }
        const auto o = check_.verify(bytes);
        // A segment that matches its original is written as the original was (time, length).
        reseg_->write(
            bytes, o ? o->timestamp_ns : fallback_ts,
            o ? std::max<std::uint32_t>(o->orig_len, static_cast<std::uint32_t>(bytes.size())) : 0);
        ++reseg_written_;
    }

    void release(const sp::frame& f) {
        if (in_large(f)) {
            large_->free(f);
        } else {
            frames_.free(f);
        }
    }

    void print_stats() {
        const so::gro_stats& s = gro_.stats();
        const auto line = [](const char* name, std::uint64_t v) {
            std::printf("  %-40s %12llu\n", name, ull(v));
        };
        std::printf("\ngro_stats:\n");
        line("rx_frames", s.rx_frames);
        line("rx_segments (TCP considered)", s.rx_segments);
        line("merged", s.merged);
        line("aggregates", s.aggregates);
        line("aggregated_segments", s.aggregated_segments);
        std::printf("  %-40s %12.2f\n", "segments_per_aggregate",
                    s.aggregates == 0 ? 0.0
                                      : static_cast<double>(s.aggregated_segments) /
                                            static_cast<double>(s.aggregates));
        line("singles (held, went out alone)", s.singles);
        line("flows_created", s.flows_created);
        std::printf("flushes by reason:\n");
        for (std::size_t i = 0; i < static_cast<std::size_t>(so::flush_reason::count); ++i) {
            const auto r = static_cast<so::flush_reason>(i);
            std::uint64_t v = s.flushes(r);
            if (r == so::flush_reason::timeout) {
                v -= end_flushes_;
            }
            line(flush_name(r), v);
        }
        line("end_of_capture", end_flushes_);
        std::printf("passed through by reason:\n");
        line("not_ip", s.pass_not_ip);
        line("ip_options", s.pass_ip_options);
        line("fragment", s.pass_fragment);
        line("protocol (not TCP)", s.pass_protocol);
        line("malformed", s.pass_malformed);
        line("bad_checksum", s.pass_bad_checksum);
        line("gso (already an aggregate)", s.pass_gso);
        line("padded (Ethernet padding)", s.pass_padded);
        line("unheld (no payload, SYN/RST/URG/PSH/FIN)", s.pass_unheld);
        line("unstorable", s.pass_unstorable);
        if constexpr (std::is_same_v<Storage, timed_linear>) {
            line("lro_alloc_failed", gro_.storage().alloc_failed());
        }
        if (reseg_) {
            const so::gso_stats& g = gso_.stats();
            std::printf("gso_stats:\n");
            line("segmented", g.segmented);
            line("segments", g.segments);
            line("in_place", g.in_place);
            line("copied", g.copied);
            line("malformed", g.malformed);
            line("no_buffers", g.no_buffers);
        }
    }

    const options& opt_;
    sp::buffer_pool& frames_;
    sp::buffer_pool* large_;
    frame_meta& meta_;
    so::gro_engine<Merge, Storage> gro_;
    so::gso_segmenter gso_;
    sp::pcap_writer out_;
    std::optional<sp::pcap_writer> reseg_;
    roundtrip_check check_;
    std::vector<sp::frame> in_, emitted_, segments_;
    std::vector<std::uint8_t> linear_;
    std::uint64_t now_ = 0;
    std::uint64_t records_ = 0, written_ = 0, reseg_written_ = 0, largest_ = 0;
    std::uint64_t unsplittable_ = 0, unfinished_ = 0, end_flushes_ = 0;
};

template <class Merge>
int run(const options& opt, const capture_facts& facts) {
    // Buffers: a burst in flight, what the engine may hold (max_segments per held flow), one
    // aggregate's worth of GSO copies, never more than the capture has frames. Mapped lazily:
    // pages are touched only as buffers are used.
    constexpr std::uint32_t headroom = 256;
    constexpr std::uint32_t max_frame = 131072;
    if (facts.largest + headroom > max_frame) {
        throw sp::pcap_error(opt.in + ": a record of " + std::to_string(facts.largest) +
                             " bytes is larger than a 64 KiB IP packet plus headers");
    }
    const std::uint32_t frame_size = std::max(2048U, std::bit_ceil(facts.largest + headroom));
    const std::uint64_t held =
        opt.timeout_us == 0 ? opt.burst : std::uint64_t{opt.flows} * so::gro_config{}.max_segments;
    const std::uint64_t in_flight = std::min<std::uint64_t>(facts.records, opt.burst + held);
    const auto count = static_cast<std::uint32_t>(in_flight + so::gro_config{}.max_segments + 64);
    sp::buffer_pool frames(
        {.frame_count = count, .frame_size = frame_size, .headroom = headroom, .populate = false});
    frame_meta meta;
    meta.timestamp_ns.resize(count);
    meta.orig_len.resize(count);
    if (opt.storage == mode::gro) {
        gro_pcap_run<Merge, so::storage::chain> r(opt, facts, frames, nullptr, meta,
                                                  so::storage::chain(frames));
        r.run();
        r.summary();
        return r.failed() ? exit_roundtrip : 0;
    }
    // LRO: a large buffer per held aggregate, plus those a burst completes before they drain.
    const std::uint32_t large_count = (opt.timeout_us == 0 ? 0 : opt.flows) + opt.burst + 2;
    sp::buffer_pool large(
        {.frame_count = large_count, .frame_size = max_frame, .headroom = 0, .populate = false});
    meta.large_timestamp_ns.resize(large_count);
    gro_pcap_run<Merge, timed_linear> r(opt, facts, frames, &large, meta,
                                        timed_linear(frames, large, meta));
    r.run();
    r.summary();
    return r.failed() ? exit_roundtrip : 0;
}

} // namespace

int main(int argc, char** argv) {
    const options opt = parse_args(argc, argv);
    check_distinct(opt.in, opt.out);
    if (!opt.resegment.empty()) {
        check_distinct(opt.in, opt.resegment);
    }
    try {
        const capture_facts facts = scan(opt.in);
        return opt.merge == merge_kind::exact ? run<so::merge::exact>(opt, facts)
                                              : run<so::merge::local_delivery>(opt, facts);
    } catch (const sp::pcap_error& e) {
        std::fprintf(stderr, "%s: %s\n", tool, e.what());
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "%s: %s\n", tool, e.what());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", tool, e.what());
    }
    return exit_error;
}
