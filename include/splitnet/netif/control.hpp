// SPDX-License-Identifier: MIT
// splitnet/netif/control.hpp: the control channel between a netfront and its netback, in the
// role xenstore plays for Xen's split drivers: the two ends exchange link states (xenbus_state
// values) and key/value pairs named as netif's xenstore keys ("feature-sg", "tx-ring-ref",
// "event-channel-tx", ...), and pass the descriptors that stand for shared pages and event
// channels (memfds, eventfds) with SCM_RIGHTS.
//
// Transport: a Unix SOCK_SEQPACKET socket, so each message arrives whole or not at all, and the
// socket's end tells each side that the other has gone (a crashed frontend is noticed at once).
//
// Wire format of one message (all integers little-endian):
//   offset 0  u32 magic 0x4e4c5053 ("SPLN")
//          4  u16 version     protocol_version of the sender
//          6  u16 type        message_type
//          8  u8  state       link_state of the sender
//          9  u8  reserved[3]
//         12  u32 length      bytes of text that follow (<= max_text)
//         16  text            "key=value\n" lines: keys [a-z0-9/-], values printable, no '\n'
// Magic and version sit at fixed offsets in every version, so a receiver can always tell a peer
// that speaks another version and say so; it refuses the peer rather than guess.
//
// Errors: parsing never throws; receive() reports what was wrong in plain words. Set-up steps
// (listen, connect) throw std::system_error naming the path and what to do.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <splitnet/config.hpp>
#include <splitnet/ring/fd_passing.hpp>

namespace splitnet::netif::control {

inline constexpr std::uint32_t magic = 0x4e4c5053;
inline constexpr std::uint16_t protocol_version = 1;
inline constexpr std::size_t header_bytes = 16;
inline constexpr std::size_t max_text = 16384;

/// xenbus_state (xen/include/public/io/xenbus.h), with its numeric values.
enum class link_state : std::uint8_t {
    unknown = 0,
    initialising = 1,
    init_wait = 2,   ///< back end: features published, waiting for the front end's rings
    initialised = 3, ///< front end: rings and event channels published
    connected = 4,
    closing = 5,
    closed = 6,
};

[[nodiscard]] constexpr std::string_view to_string(link_state s) noexcept {
    switch (s) {
    case link_state::unknown:
        return "unknown";
    case link_state::initialising:
        return "initialising";
    case link_state::init_wait:
        return "init-wait";
    case link_state::initialised:
        return "initialised";
    case link_state::connected:
        return "connected";
    case link_state::closing:
        return "closing";
    case link_state::closed:
        return "closed";
    }
    return "invalid";
}

enum class message_type : std::uint16_t {
    hello = 1,     ///< back end -> front end: its features and limits (state init_wait)
    connect = 2,   ///< front end -> back end: chosen features, rings, grants, fds (initialised)
    connected = 3, ///< back end -> front end: everything mapped (connected)
    state = 4,     ///< either way: a state change only (closing, closed)
    error = 5,     ///< either way: "reason" says why; the sender closes the channel after it
};

/// A decimal number no larger than `max` (no sign, no spaces); nullopt otherwise.
[[nodiscard]] inline std::optional<std::uint64_t> parse_decimal(std::string_view v,
                                                                std::uint64_t max) noexcept {
    if (v.empty() || v.size() > 20) {
        return std::nullopt;
    }
    std::uint64_t x = 0;
    for (const char c : v) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (d > max || x > (max - d) / 10) { // x * 10 + d would exceed max
            return std::nullopt;
        }
        x = x * 10 + d;
    }
    return x;
}

/// One control message: a type, the sender's state, ordered key/value pairs and descriptors.
/// Descriptors received are owned by the message (closed by its destructor unless taken).
class message {
public:
    message() = default;
    message(message_type t, link_state s) : type_(t), state_(s) {}
    message(message&& o) noexcept
        : type_(o.type_), state_(o.state_), version_(o.version_), keys_(std::move(o.keys_)),
          fds_(std::exchange(o.fds_, {})), owns_fds_(o.owns_fds_) {}
    message& operator=(message&& o) noexcept {
        if (this != &o) {
            close_fds();
            type_ = o.type_;
            state_ = o.state_;
            version_ = o.version_;
            keys_ = std::move(o.keys_);
            fds_ = std::exchange(o.fds_, {});
            owns_fds_ = o.owns_fds_;
        }
        return *this;
    }
    message(const message&) = delete;
    message& operator=(const message&) = delete;
    ~message() { close_fds(); }

    [[nodiscard]] message_type type() const noexcept { return type_; }
    [[nodiscard]] link_state state() const noexcept { return state_; }
    [[nodiscard]] std::uint16_t version() const noexcept { return version_; }

    /// Sets a key (replacing an earlier value). Keys and values must be well formed.
    message& set(std::string_view key, std::string_view value) {
        if (!valid_key(key) || !valid_value(value)) {
            SPLITNET_THROW(std::invalid_argument("control message: malformed key or value '" +
                                                 std::string(key) + "'"));
        }
        for (auto& kv : keys_) {
            if (kv.first == key) {
                kv.second = value;
                return *this;
            }
        }
        keys_.emplace_back(key, value);
        return *this;
    }
    message& set(std::string_view key, std::uint64_t value) {
        return set(key, std::to_string(value));
    }

    [[nodiscard]] std::optional<std::string_view> get(std::string_view key) const noexcept {
        for (const auto& kv : keys_) {
            if (kv.first == key) {
                return kv.second;
            }
        }
        return std::nullopt;
    }
    /// A decimal value no larger than `max`; nullopt if absent, not a number, or too large.
    [[nodiscard]] std::optional<std::uint64_t> get_uint(std::string_view key,
                                                        std::uint64_t max = ~0ULL) const noexcept {
        const auto v = get(key);
        return v ? parse_decimal(*v, max) : std::nullopt;
    }
    /// Xen's boolean convention: "1" is on; absent or anything else is off.
    [[nodiscard]] bool get_flag(std::string_view key) const noexcept { return get(key) == "1"; }
    [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& keys() const noexcept {
        return keys_;
    }

    /// Attaches a descriptor to send (not owned: the caller keeps it); returns its index.
    std::size_t add_fd(int fd) {
        fds_.push_back(fd);
        return fds_.size() - 1;
    }
    [[nodiscard]] std::size_t fd_count() const noexcept { return fds_.size(); }
    [[nodiscard]] std::span<const int> fds() const noexcept { return fds_; }
    /// Takes ownership of received descriptor `i` (-1 if out of range or already taken).
    [[nodiscard]] int take_fd(std::size_t i) noexcept {
        return i < fds_.size() ? std::exchange(fds_[i], -1) : -1;
    }
    /// The descriptor index a key names; nullopt if absent, malformed or out of range.
    [[nodiscard]] std::optional<std::size_t> get_fd_index(std::string_view key) const noexcept {
        const auto i = get_uint(key, fds_.size());
        if (!i || *i >= fds_.size()) {
            return std::nullopt;
        }
        return static_cast<std::size_t>(*i);
    }

    /// The header and text as sent.
    [[nodiscard]] std::vector<std::byte> encode() const {
        std::string text;
        for (const auto& [k, v] : keys_) {
            text.append(k).append(1, '=').append(v).append(1, '\n');
        }
        if (text.size() > max_text) {
            SPLITNET_THROW(std::length_error("control message: text larger than " +
                                             std::to_string(max_text) + " bytes"));
        }
        std::vector<std::byte> out(header_bytes + text.size());
        put_le(out.data(), magic, 4);
        put_le(out.data() + 4, version_, 2);
        put_le(out.data() + 6, static_cast<std::uint16_t>(type_), 2);
        out[8] = static_cast<std::byte>(state_);
        put_le(out.data() + 12, static_cast<std::uint32_t>(text.size()), 4);
        std::memcpy(out.data() + header_bytes, text.data(), text.size());
        return out;
    }

    /// Parses bytes received from an untrusted peer. On failure returns why (the message is
    /// left empty); a version other than ours is reported as such before anything else is read.
    [[nodiscard]] std::optional<std::string> decode(std::span<const std::byte> in) {
        keys_.clear();
        if (in.size() < header_bytes || get_le(in.data(), 4) != magic) {
            return "not a splitnet control message (bad magic or short header)";
        }
        version_ = static_cast<std::uint16_t>(get_le(in.data() + 4, 2));
        if (version_ != protocol_version) {
            return "the peer speaks splitnet control protocol version " + std::to_string(version_) +
                   ", this side speaks version " + std::to_string(protocol_version) +
                   "; run matching versions of both ends";
        }
        const auto type = get_le(in.data() + 6, 2);
        if (type < 1 || type > 5) {
            return "unknown message type " + std::to_string(type);
        }
        const auto state = static_cast<std::uint8_t>(in[8]);
        if (state > static_cast<std::uint8_t>(link_state::closed)) {
            return "unknown link state " + std::to_string(state);
        }
        const auto len = get_le(in.data() + 12, 4);
        if (len > max_text || len != in.size() - header_bytes) {
            return "message length field " + std::to_string(len) + " does not match the " +
                   std::to_string(in.size() - header_bytes) + " bytes received";
        }
        type_ = static_cast<message_type>(type);
        state_ = static_cast<link_state>(state);
        const std::string_view text(reinterpret_cast<const char*>(in.data() + header_bytes), len);
        std::size_t pos = 0;
        while (pos < text.size()) {
            const std::size_t nl = text.find('\n', pos);
            if (nl == std::string_view::npos) {
                keys_.clear();
                return std::string("the last key/value line is not terminated");
            }
            const std::string_view line = text.substr(pos, nl - pos);
            const std::size_t eq = line.find('=');
            if (eq == std::string_view::npos || !valid_key(line.substr(0, eq)) ||
                !valid_value(line.substr(eq + 1)) || get(line.substr(0, eq))) {
                keys_.clear();
                return "malformed or repeated key/value line '" + std::string(line.substr(0, 64)) +
                       "'";
            }
            keys_.emplace_back(line.substr(0, eq), line.substr(eq + 1));
            pos = nl + 1;
        }
        return std::nullopt;
    }

    /// Hands over received descriptors (the message owns them from now on).
    void adopt_fds(std::span<const int> fds) {
        close_fds();
        fds_.assign(fds.begin(), fds.end());
        owns_fds_ = true;
    }

private:
    [[nodiscard]] static bool valid_key(std::string_view k) noexcept {
        if (k.empty() || k.size() > 64) {
            return false;
        }
        for (const char c : k) {
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '/')) {
                return false;
            }
        }
        return true;
    }
    [[nodiscard]] static bool valid_value(std::string_view v) noexcept {
        if (v.size() > 1024) {
            return false;
        }
        for (const char c : v) {
            if (c < 0x20 || c > 0x7e) {
                return false;
            }
        }
        return true;
    }
    static void put_le(std::byte* p, std::uint64_t v, int n) noexcept {
        for (int i = 0; i < n; ++i) {
            p[i] = static_cast<std::byte>(v >> (8 * i));
        }
    }
    [[nodiscard]] static std::uint64_t get_le(const std::byte* p, int n) noexcept {
        std::uint64_t v = 0;
        for (int i = 0; i < n; ++i) {
            v |= std::uint64_t{static_cast<std::uint8_t>(p[i])} << (8 * i);
        }
        return v;
    }
    void close_fds() noexcept {
        if (owns_fds_) {
            for (const int fd : fds_) {
                if (fd >= 0) {
                    ::close(fd);
                }
            }
        }
        fds_.clear();
        owns_fds_ = false;
    }

    message_type type_ = message_type::state;
    link_state state_ = link_state::unknown;
    std::uint16_t version_ = protocol_version;
    std::vector<std::pair<std::string, std::string>> keys_;
    std::vector<int> fds_;
    bool owns_fds_ = false;
};

enum class receive_status : std::uint8_t {
    ok = 0,
    closed,    ///< the peer closed the channel (or died)
    timeout,   ///< nothing arrived in time
    malformed, ///< a message arrived but is not one we accept (see the reason)
    error,     ///< the socket failed
};

struct receive_result {
    receive_status status = receive_status::ok;
    std::string reason; ///< for malformed and error
};

/// One end of a control channel: a connected SOCK_SEQPACKET Unix socket (owned).
class channel {
public:
    channel() = default;
    explicit channel(int fd) noexcept : fd_(fd) {}
    channel(channel&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    channel& operator=(channel&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    channel(const channel&) = delete;
    channel& operator=(const channel&) = delete;
    ~channel() { reset(); }

    /// Connects to a back end listening at `path`; throws std::system_error saying what to do.
    [[nodiscard]] static channel connect(const std::string& path) {
        sockaddr_un a = address(path);
        const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw_errno("socket(AF_UNIX, SOCK_SEQPACKET)");
        }
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            const int err = errno;
            ::close(fd);
            errno = err;
            throw_errno("cannot connect to the back end's control socket " + path +
                        "; is splitnet-netback running with --control " + path + "?");
        }
        return channel(fd);
    }

    /// A connected pair (tests, and a back end serving a front end in the same process).
    [[nodiscard]] static std::pair<channel, channel> pair() {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
            throw_errno("socketpair(AF_UNIX, SOCK_SEQPACKET)");
        }
        return {channel(sv[0]), channel(sv[1])};
    }

    [[nodiscard]] int fd() const noexcept { return fd_; }
    [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }

    /// Sends a message with its descriptors. False (with errno) if the peer is gone.
    bool send(const message& m) const {
        const std::vector<std::byte> bytes = m.encode();
        return ring::send_with_fds(fd_, bytes, m.fds()) == static_cast<long>(bytes.size());
    }

    /// Sends an error message saying `reason` (best effort: the peer may be gone already).
    void send_error(std::string_view reason, link_state s) const {
        message m(message_type::error, s);
        std::string r(reason.substr(0, 1000));
        for (char& c : r) {
            c = (c < 0x20 || c > 0x7e) ? '?' : c;
        }
        m.set("reason", r);
        send(m);
    }

    /// Waits up to `timeout` for one message. Descriptors that came with it belong to `out`.
    [[nodiscard]] receive_result receive(message& out, std::chrono::milliseconds timeout) const {
        pollfd p{fd_, POLLIN, 0};
        int r;
        do {
            r = ::poll(&p, 1, static_cast<int>(timeout.count()));
        } while (r < 0 && errno == EINTR);
        if (r == 0) {
            return {receive_status::timeout, {}};
        }
        if (r < 0) {
            return {receive_status::error, std::string("poll: ") + std::strerror(errno)};
        }
        return receive_now(out);
    }

    /// Reads one message that poll() said is there (or end of stream).
    [[nodiscard]] receive_result receive_now(message& out) const {
        std::vector<std::byte> buf(header_bytes + max_text + 1);
        int fds[ring::max_passed_fds];
        const ring::received got = ring::recv_with_fds(fd_, buf, fds);
        if (got.bytes == 0) {
            return {receive_status::closed, {}};
        }
        if (got.bytes < 0) {
            if (got.bytes == -ECONNRESET) {
                return {receive_status::closed, {}};
            }
            return {got.bytes == -EMSGSIZE ? receive_status::malformed : receive_status::error,
                    std::string("recvmsg: ") + std::strerror(static_cast<int>(-got.bytes))};
        }
        out.adopt_fds({fds, got.nfds});
        if (auto why = out.decode({buf.data(), static_cast<std::size_t>(got.bytes)})) {
            return {receive_status::malformed, std::move(*why)};
        }
        return {};
    }

private:
    friend class listener;

    [[nodiscard]] static sockaddr_un address(const std::string& path) {
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        if (path.empty() || path.size() >= sizeof a.sun_path) {
            SPLITNET_THROW(std::invalid_argument("control socket path '" + path +
                                                 "' is empty or longer than " +
                                                 std::to_string(sizeof a.sun_path - 1) + " bytes"));
        }
        std::memcpy(a.sun_path, path.c_str(), path.size());
        return a;
    }
    [[noreturn]] static void throw_errno(const std::string& what) {
        SPLITNET_THROW(std::system_error(errno, std::generic_category(), "control: " + what));
    }
    void reset() noexcept {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

    int fd_ = -1;
};

/// The back end's listening socket at a filesystem path (removed again on destruction).
class listener {
public:
    /// Listens at `path`. A stale socket file left by a crashed back end is replaced; a path
    /// that another live back end listens on is refused.
    explicit listener(const std::string& path) : path_(path) {
        sockaddr_un a = channel::address(path);
        fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd_ < 0) {
            channel::throw_errno("socket(AF_UNIX, SOCK_SEQPACKET)");
        }
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            if (errno != EADDRINUSE) {
                fail("cannot bind " + path + " (does the directory exist and is it writable?)");
            }
            const int probe = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
            const bool live =
                probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
            if (probe >= 0) {
                ::close(probe);
            }
            if (live) {
                ::close(fd_);
                fd_ = -1;
                SPLITNET_THROW(std::runtime_error("control: another back end is listening at " +
                                                  path + "; stop it or choose another --control"));
            }
            ::unlink(path.c_str()); // stale: its back end is gone
            if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
                fail("cannot bind " + path + " after removing a stale socket file");
            }
        }
        if (::listen(fd_, 16) != 0) {
            fail("listen on " + path);
        }
    }
    listener(const listener&) = delete;
    listener& operator=(const listener&) = delete;
    ~listener() {
        if (fd_ >= 0) {
            ::close(fd_);
            ::unlink(path_.c_str());
        }
    }

    [[nodiscard]] int fd() const noexcept { return fd_; }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

    /// Accepts one pending connection; an invalid channel if none is waiting.
    [[nodiscard]] channel accept() const noexcept {
        const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        return channel(c);
    }

private:
    [[noreturn]] void fail(const std::string& what) {
        const int err = errno;
        ::close(fd_);
        fd_ = -1;
        errno = err;
        channel::throw_errno(what);
    }

    std::string path_;
    int fd_ = -1;
};

} // namespace splitnet::netif::control
