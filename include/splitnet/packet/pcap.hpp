// SPDX-License-Identifier: MIT
// splitnet/packet/pcap.hpp: read and write classic libpcap capture files (not pcapng), with
// microsecond or nanosecond timestamps, in either byte order, so real captures can be fed
// through the library and results opened in Wireshark or tcpdump.
//
// Errors are thrown as pcap_error, whose message names the file, the byte offset and what was
// wrong ("in.pcap: offset 4120: record of 70000 bytes exceeds the snapshot length 65535").
// These are tool and test paths, not hot paths.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <splitnet/config.hpp>
#include <splitnet/packet/frame.hpp>

namespace splitnet::packet {

namespace pcap_link {
inline constexpr std::uint32_t ethernet = 1;
inline constexpr std::uint32_t linux_sll = 113;
} // namespace pcap_link

class pcap_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct pcap_record {
    std::uint64_t timestamp_ns = 0;
    std::uint32_t orig_len = 0;         ///< length on the wire (may exceed data.size())
    std::span<const std::uint8_t> data; ///< captured bytes; valid until the next read
};

namespace detail {
struct file_closer {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;

inline constexpr std::uint32_t pcap_magic_us = 0xa1b2c3d4;
inline constexpr std::uint32_t pcap_magic_ns = 0xa1b23c4d;
inline constexpr std::uint32_t pcap_max_record = 256 * 1024; // tcpdump's MAXIMUM_SNAPLEN
} // namespace detail

class pcap_reader {
public:
    /// Opens `path`; throws pcap_error if it cannot be opened or is not a classic pcap file.
    explicit pcap_reader(const std::string& path) : name_(path) {
        file_.reset(std::fopen(path.c_str(), "rb"));
        if (!file_) {
            SPLITNET_THROW(pcap_error(path + ": cannot open: " + std::strerror(errno)));
        }
        read_header();
    }

    /// Reads from memory (a copy is not made: `bytes` must outlive the reader). For fuzzing and
    /// for tests that build a capture in memory.
    pcap_reader(std::span<const std::uint8_t> bytes, std::string name)
        : name_(std::move(name)), mem_(bytes), use_mem_(true) {
        read_header();
    }

    [[nodiscard]] std::uint32_t link_type() const noexcept { return link_type_; }
    [[nodiscard]] bool nanosecond() const noexcept { return nanos_; }
    [[nodiscard]] std::uint32_t snaplen() const noexcept { return snaplen_; }
    /// Byte offset of the next record.
    [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }

    /// Reads the next record into `out`. Returns false at the end of the file; throws
    /// pcap_error for a truncated or inconsistent record.
    bool next(pcap_record& out) {
        std::uint8_t h[16];
        const std::size_t got = read(h, sizeof h);
        if (got == 0) {
            return false;
        }
        if (got != sizeof h) {
            fail("truncated record header (" + std::to_string(got) + " of 16 bytes)");
        }
        const std::uint32_t sec = field(h);
        const std::uint32_t frac = field(h + 4);
        const std::uint32_t incl = field(h + 8);
        const std::uint32_t orig = field(h + 12);
        if (incl > detail::pcap_max_record) {
            fail("record of " + std::to_string(incl) + " bytes exceeds the largest snapshot " +
                 "length readers accept (" + std::to_string(detail::pcap_max_record) + ")");
        }
        buf_.resize(incl);
        const std::size_t body = read(buf_.data(), incl);
        if (body != incl) {
            fail("truncated record (" + std::to_string(body) + " of " + std::to_string(incl) +
                 " bytes)");
        }
        out.timestamp_ns = std::uint64_t{sec} * 1000000000U +
                           (nanos_ ? std::uint64_t{frac} : std::uint64_t{frac} * 1000U);
        out.orig_len = orig;
        out.data = {buf_.data(), incl};
        record_offset_ = offset_;
        offset_ += sizeof h + incl;
        return true;
    }

    /// Offset of the record last returned by next().
    [[nodiscard]] std::uint64_t record_offset() const noexcept { return record_offset_; }

private:
    std::size_t read(std::uint8_t* dst, std::size_t n) {
        if (use_mem_) {
            const std::size_t left = mem_.size() - mem_pos_;
            const std::size_t k = n < left ? n : left;
            if (k != 0) {
                std::memcpy(dst, mem_.data() + mem_pos_, k);
            }
            mem_pos_ += k;
            return k;
        }
        return std::fread(dst, 1, n, file_.get());
    }

    [[noreturn]] void fail(const std::string& what) const {
        SPLITNET_THROW(pcap_error(name_ + ": offset " + std::to_string(offset_) + ": " + what));
    }

    [[nodiscard]] std::uint32_t field(const std::uint8_t* p) const noexcept {
        std::uint32_t v;
        std::memcpy(&v, p, 4);
        return swapped_ ? __builtin_bswap32(v) : v;
    }

    void read_header() {
        std::uint8_t h[24];
        const std::size_t got = read(h, sizeof h);
        if (got != sizeof h) {
            fail("not a pcap file: " + std::to_string(got) + "-byte file header, need 24");
        }
        std::uint32_t magic;
        std::memcpy(&magic, h, 4);
        if (magic == detail::pcap_magic_us || magic == detail::pcap_magic_ns) {
            swapped_ = false;
        } else if (__builtin_bswap32(magic) == detail::pcap_magic_us ||
                   __builtin_bswap32(magic) == detail::pcap_magic_ns) {
            swapped_ = true;
            magic = __builtin_bswap32(magic);
        } else {
            char hex[16];
            std::snprintf(hex, sizeof hex, "0x%08x", magic);
            fail(std::string("not a classic pcap file (magic ") + hex +
                 "); pcapng is not supported: convert with editcap -F pcap");
        }
        nanos_ = magic == detail::pcap_magic_ns;
        snaplen_ = field(h + 16);
        link_type_ = field(h + 20) & 0x0fffffff; // upper bits: FCS length, not the link type
        offset_ = sizeof h;
    }

    std::string name_;
    detail::file_ptr file_;
    std::span<const std::uint8_t> mem_;
    std::size_t mem_pos_ = 0;
    bool use_mem_ = false;
    bool swapped_ = false;
    bool nanos_ = false;
    std::uint32_t snaplen_ = 0;
    std::uint32_t link_type_ = 0;
    std::uint64_t offset_ = 0;
    std::uint64_t record_offset_ = 0;
    std::vector<std::uint8_t> buf_;
};

enum class pcap_resolution : std::uint8_t { microsecond, nanosecond };

class pcap_writer {
public:
    /// Creates (truncates) `path`; throws pcap_error if it cannot be written.
    explicit pcap_writer(const std::string& path,
                         pcap_resolution res = pcap_resolution::microsecond,
                         std::uint32_t link_type = pcap_link::ethernet,
                         std::uint32_t snaplen = 262144)
        : name_(path), nanos_(res == pcap_resolution::nanosecond), snaplen_(snaplen) {
        file_.reset(std::fopen(path.c_str(), "wb"));
        if (!file_) {
            SPLITNET_THROW(pcap_error(path + ": cannot create: " + std::strerror(errno)));
        }
        // struct pcap_file_header: magic, version 2.4 (two u16), thiszone, sigfigs, snaplen,
        // linktype, all in the writer's byte order (readers detect it from the magic).
        std::uint8_t bytes[24] = {};
        const std::uint32_t magic = nanos_ ? detail::pcap_magic_ns : detail::pcap_magic_us;
        const std::uint16_t version[2] = {2, 4};
        std::memcpy(bytes, &magic, 4);
        std::memcpy(bytes + 4, version, 4);
        std::memcpy(bytes + 16, &snaplen, 4);
        std::memcpy(bytes + 20, &link_type, 4);
        put(bytes, sizeof bytes);
    }

    /// Appends one record. `orig_len` 0 means the packet was captured whole.
    void write(std::span<const std::uint8_t> data, std::uint64_t timestamp_ns,
               std::uint32_t orig_len = 0) {
        const auto incl =
            static_cast<std::uint32_t>(data.size() < snaplen_ ? data.size() : snaplen_);
        write_header(incl, timestamp_ns,
                     orig_len != 0 ? orig_len : static_cast<std::uint32_t>(data.size()));
        put(data.data(), incl);
    }

    /// Appends a frame (all segments of a chain, as one packet).
    void write(const frame& f, std::uint64_t timestamp_ns) {
        const std::uint32_t incl = f.pkt_len < snaplen_ ? f.pkt_len : snaplen_;
        write_header(incl, timestamp_ns, f.pkt_len);
        std::uint32_t left = incl;
        for_each_segment(f, [&](const frame& seg) {
            const std::uint32_t n = seg.data_len < left ? seg.data_len : left;
            put(seg.data, n);
            left -= n;
        });
    }

    /// Flushes buffered records; throws pcap_error on a write error (disk full).
    void flush() {
        if (std::fflush(file_.get()) != 0) {
            SPLITNET_THROW(pcap_error(name_ + ": write failed: " + std::strerror(errno)));
        }
    }

    ~pcap_writer() = default;

private:
    void write_header(std::uint32_t incl, std::uint64_t ts, std::uint32_t orig) {
        const std::uint32_t sec = static_cast<std::uint32_t>(ts / 1000000000U);
        const std::uint32_t sub =
            static_cast<std::uint32_t>(nanos_ ? ts % 1000000000U : (ts % 1000000000U) / 1000U);
        const std::uint32_t h[4] = {sec, sub, incl, orig};
        put(h, sizeof h);
    }
    void put(const void* p, std::size_t n) {
        if (n != 0 && std::fwrite(p, 1, n, file_.get()) != n) {
            SPLITNET_THROW(pcap_error(name_ + ": write failed: " + std::strerror(errno)));
        }
    }

    std::string name_;
    detail::file_ptr file_;
    bool nanos_;
    std::uint32_t snaplen_;
};

} // namespace splitnet::packet
