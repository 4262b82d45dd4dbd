// The two ends of a split ring moving a numbered request stream, each sleeping on its event
// channel when idle: shared by the cross-process test (fork) and its threads variant (TSan).
// A wait that times out while work was in fact pending is a lost wake-up, and is counted.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include <splitnet/ring/split_ring.hpp>

namespace splitnet::test {

struct stream_req {
    std::uint64_t seq;
};
struct stream_rsp {
    std::uint64_t seq;
    std::uint64_t check;
};

inline constexpr std::uint64_t quit_seq = ~0ULL;
inline constexpr auto wait_timeout = std::chrono::seconds(2);

struct peer_result {
    std::uint64_t moved = 0;
    std::uint64_t out_of_order = 0;
    std::uint64_t lost_wakeups = 0;
    std::uint64_t notifications = 0;
    bool broken = false;
};

/// The back end: answers every request with its sequence number and a check value, until the
/// quit request.
template <class BackRing, class Channel>
peer_result serve_stream(BackRing& back, Channel& kick_in, Channel& kick_out) {
    peer_result r;
    std::vector<stream_req> in(64);
    std::vector<stream_rsp> out(64);
    bool quit = false;
    while (!quit) {
        const std::size_t n = back.get_requests(in);
        for (std::size_t i = 0; i < n; ++i) {
            if (in[i].seq == quit_seq) {
                quit = true;
            } else if (in[i].seq != r.moved++) {
                ++r.out_of_order;
            }
            out[i] = {in[i].seq, in[i].seq * 2654435761ULL};
        }
        if (n != 0) {
            (void)back.put_responses(std::span(out).first(n));
            if (back.push_responses()) {
                kick_out.notify();
                ++r.notifications;
            }
            continue;
        }
        if (back.broken()) {
            r.broken = true;
            break;
        }
        if (!back.final_check_for_requests() && !kick_in.wait(wait_timeout) &&
            back.poll_requests() != 0) {
            ++r.lost_wakeups;
        }
    }
    return r;
}

/// The front end: sends `count` numbered requests (then quit) in bursts, checks every response.
template <class FrontRing, class Channel>
peer_result drive_stream(FrontRing& front, Channel& kick_out, Channel& kick_in,
                         std::uint64_t count) {
    peer_result r;
    std::uint64_t sent = 0;
    bool quit_sent = false, quit_answered = false;
    std::vector<stream_rsp> out(64);
    while (!quit_answered) {
        for (int i = 0; i < 32 && !front.full() && !quit_sent; ++i) {
            const std::uint64_t seq = sent < count ? sent++ : quit_seq;
            quit_sent = seq == quit_seq;
            (void)front.put_request({seq});
        }
        if (front.push_requests()) {
            kick_out.notify();
            ++r.notifications;
        }
        const std::size_t m = front.get_responses(out);
        for (std::size_t i = 0; i < m; ++i) {
            if (out[i].seq == quit_seq) {
                quit_answered = true;
                continue;
            }
            if (out[i].seq != r.moved++ || out[i].check != out[i].seq * 2654435761ULL) {
                ++r.out_of_order;
            }
        }
        if (front.broken()) {
            r.broken = true;
            break;
        }
        const bool can_send = !quit_sent && !front.full();
        if (m == 0 && !can_send && !front.final_check_for_responses() &&
            !kick_in.wait(wait_timeout) && front.poll_responses() != 0) {
            ++r.lost_wakeups;
        }
    }
    return r;
}

} // namespace splitnet::test
