// Test support: a minimal TCP endpoint that plays the remote host behind a TAP port, so a real
// kernel TCP socket on the other side of the TAP talks to frames this test builds (through GRO,
// GSO, a pipeline...). IPv4, no options but MSS, no window scaling, in-order only; it is a test
// peer, not a TCP implementation.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include <splitnet/nic/tap_port.hpp>
#include <splitnet/packet/packet_builder.hpp>
#include <splitnet/packet/parser.hpp>

namespace splitnet::test {

struct tcp_endpoint {
    packet::mac_address mac;
    packet::ipv4_address ip;
    std::uint16_t port;
};

class tap_tcp_peer {
public:
    /// `send` transmits a burst of frames built by the peer (a test may run them through GRO
    /// first); it owns them from then on.
    using sender = std::function<void(std::vector<packet::frame>&)>;

    tap_tcp_peer(nic::tap_port& tap, tcp_endpoint self, tcp_endpoint kernel)
        : tap_(tap), self_(self), kernel_(kernel) {}

    /// Active open to a listening kernel socket. False on timeout.
    bool connect(const sender& send) {
        std::vector<packet::frame> f{make(packet::tcp_flag::syn, {}, true)};
        snd_nxt_ = isn_ + 1;
        send(f);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (std::chrono::steady_clock::now() < deadline) {
            if (poll_once() && established_) {
                std::vector<packet::frame> ack{make(packet::tcp_flag::ack, {}, false)};
                send(ack);
                return true;
            }
        }
        return false;
    }

    /// Sends `total` stream bytes (stream_byte(seed, offset)) in MSS segments, `write` bytes per
    /// application write (PSH at each end), within the kernel's window. False on timeout.
    bool send_stream(std::uint64_t total, std::uint32_t seed, std::uint32_t write,
                     const sender& send, std::uint16_t mss = 1448) {
        std::uint64_t sent = 0;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        std::vector<std::uint8_t> payload(mss);
        while (snd_una_ != isn_ + 1 + static_cast<std::uint32_t>(total)) {
            if (std::chrono::steady_clock::now() > deadline) {
                return false;
            }
            std::vector<packet::frame> burst;
            while (sent < total && burst.size() < 64 &&
                   (snd_nxt_ - snd_una_) + mss <= std::min<std::uint32_t>(window_, 60000)) {
                const auto len =
                    static_cast<std::uint32_t>(std::min<std::uint64_t>(mss, total - sent));
                const std::uint64_t in_write = sent % write;
                const std::uint32_t take =
                    static_cast<std::uint32_t>(std::min<std::uint64_t>(len, write - in_write));
                packet::fill_stream_bytes({payload.data(), take}, seed, sent);
                const bool end = in_write + take == write || sent + take == total;
                burst.push_back(make(static_cast<std::uint8_t>(packet::tcp_flag::ack |
                                                               (end ? packet::tcp_flag::psh : 0)),
                                     {payload.data(), take}, false));
                snd_nxt_ += take;
                sent += take;
            }
            if (!burst.empty()) {
                send(burst);
            }
            poll_once();
        }
        return true;
    }

    /// Sends FIN (after all data).
    void close(const sender& send) {
        std::vector<packet::frame> f{
            make(packet::tcp_flag::fin | packet::tcp_flag::ack, {}, false)};
        ++snd_nxt_;
        send(f);
    }

    [[nodiscard]] std::uint32_t window() const noexcept { return window_; }

    /// Receives `total` stream bytes (stream_byte(seed, offset)) that the kernel sends on the
    /// connection, acking each in-order frame; `seen` is called with every data frame as the
    /// TAP delivered it (a TSO frame with its GSO metadata, say). False on timeout, or when a
    /// byte is not the stream's.
    bool receive_stream(std::uint64_t total, std::uint32_t seed, const sender& send,
                        const std::function<void(const packet::frame&)>& seen) {
        recv_seed_ = seed;
        recv_base_ = rcv_nxt_;
        on_data_ = seen;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        std::uint32_t acked = rcv_nxt_;
        while (rcv_nxt_ - recv_base_ < total && !recv_bad_) {
            if (std::chrono::steady_clock::now() > deadline) {
                return false;
            }
            poll_once();
            if (rcv_nxt_ != acked) {
                std::vector<packet::frame> f{make(packet::tcp_flag::ack, {}, false)};
                send(f);
                acked = rcv_nxt_;
            }
        }
        on_data_ = nullptr;
        return !recv_bad_;
    }

    /// Reads what the kernel sent (ACKs, SYN-ACK) for up to 10 ms; true if anything arrived.
    bool poll_once() {
        packet::frame rx[32];
        bool any = false;
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(10);
        do {
            const std::size_t n = tap_.rx_burst(rx);
            for (std::size_t i = 0; i < n; ++i) {
                handle(rx[i]);
                tap_.pool().free(rx[i]);
            }
            any |= n != 0;
            if (n == 0 && any) {
                break;
            }
        } while (std::chrono::steady_clock::now() < until);
        return any;
    }

private:
    void handle(const packet::frame& f) {
        std::vector<std::uint8_t> b(f.pkt_len);
        (void)packet::copy_out(f, b);
        const auto p = packet::parse(b);
        if (!p.ok() || !p.is_tcp() || p.key.src_port != kernel_.port ||
            p.key.dst_port != self_.port) {
            return;
        }
        const packet::tcp_header th{b.data() + p.l4_offset};
        if ((th.flags() & (packet::tcp_flag::syn | packet::tcp_flag::ack)) ==
            (packet::tcp_flag::syn | packet::tcp_flag::ack)) {
            rcv_nxt_ = th.seq() + 1;
            established_ = true;
        }
        if ((th.flags() & packet::tcp_flag::ack) != 0 &&
            static_cast<std::int32_t>(th.ack_seq() - snd_una_) > 0) {
            snd_una_ = th.ack_seq();
        }
        window_ = th.window();
        if (on_data_ && p.payload_len() != 0) {
            if (th.seq() != rcv_nxt_) {
                return; // out of order: the next ack repeats rcv_nxt
            }
            on_data_(f);
            const std::uint64_t at = rcv_nxt_ - recv_base_;
            for (std::uint32_t i = 0; i < p.payload_len(); ++i) {
                recv_bad_ |= b[p.payload_offset + i] != packet::stream_byte(recv_seed_, at + i);
            }
        }
        if (p.payload_len() != 0 || (th.flags() & packet::tcp_flag::fin) != 0) {
            rcv_nxt_ =
                th.seq() + p.payload_len() + ((th.flags() & packet::tcp_flag::fin) != 0 ? 1 : 0);
        }
    }

    packet::frame make(std::uint8_t flags, std::span<const std::uint8_t> payload, bool syn_mss) {
        packet::frame f;
        if (tap_.pool().alloc_burst({&f, 1}) != 1) {
            return f;
        }
        packet::l2_spec l2{self_.mac, kernel_.mac, 0, {}, packet::ether_type::vlan};
        packet::ip_spec ip;
        ip.src = {self_.ip[0], self_.ip[1], self_.ip[2], self_.ip[3]};
        ip.dst = {kernel_.ip[0], kernel_.ip[1], kernel_.ip[2], kernel_.ip[3]};
        ip.id = ip_id_++;
        packet::tcp_spec t;
        t.src_port = self_.port;
        t.dst_port = kernel_.port;
        t.seq = syn_mss ? isn_ : snd_nxt_;
        t.ack = (flags & packet::tcp_flag::ack) != 0 ? rcv_nxt_ : 0;
        t.flags = flags;
        t.window = 65535;
        const std::uint8_t mss_opt[4] = {2, 4, 0x05, 0xb4};
        if (syn_mss) {
            t.options = mss_opt;
        }
        const std::size_t n = packet::build_tcp({f.data, 2048 - 256}, l2, ip, t, payload);
        f.data_len = f.pkt_len = static_cast<std::uint32_t>(n);
        return f;
    }

    nic::tap_port& tap_;
    tcp_endpoint self_;
    tcp_endpoint kernel_;
    std::uint32_t isn_ = 1000;
    std::uint32_t snd_nxt_ = 1000;
    std::uint32_t snd_una_ = 1001;
    std::uint32_t rcv_nxt_ = 0;
    std::uint32_t window_ = 0;
    std::uint16_t ip_id_ = 1;
    bool established_ = false;
    std::uint32_t recv_seed_ = 0;
    std::uint32_t recv_base_ = 0;
    bool recv_bad_ = false;
    std::function<void(const packet::frame&)> on_data_;
};

} // namespace splitnet::test
