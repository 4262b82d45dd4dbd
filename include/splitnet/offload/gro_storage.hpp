// SPDX-License-Identifier: MIT
// splitnet/offload/gro_storage.hpp: how a held aggregate keeps its bytes.
//  - storage::chain (GRO): the segments stay where they arrived, linked as a frame chain; each
//    later segment's descriptor lives in the buffer pool's chain slot of its own buffer, with
//    `data` advanced past its headers to its payload. Nothing is copied; only the head's headers
//    are rewritten at flush. The original header bytes stay in each buffer's headroom, so GSO can
//    split the chain back in place (gso.hpp). Frames must come from the pool given here.
//  - storage::linear (LRO): on the first merge the head is copied into a buffer of a second pool
//    (large buffers: 131072 bytes hold a 64 KiB aggregate) and every payload is appended there;
//    the original buffers go back to their pool at once. For consumers that need linear frames.
#pragma once

#include <cstdint>
#include <cstring>

#include <splitnet/offload/gro_segment.hpp>
#include <splitnet/packet/buffer_pool.hpp>

namespace splitnet::offload {

namespace storage {

class chain {
public:
    explicit chain(packet::buffer_pool& pool) noexcept : pool_(&pool) {}

    /// Appends the payload of `s` to `fl`; false if its frame cannot be chained (not a pool frame).
    [[nodiscard]] bool append(gro_flow& fl, const gro_segment& s) noexcept {
        const packet::frame& f = *s.f;
        if (!pool_->owns(f.buffer)) {
            return false;
        }
        // Only what a chained segment needs (its bytes and its buffer): cheaper than a copy.
        packet::frame& slot = pool_->chain_slot(f.buffer);
        slot.data = f.data + s.p.payload_offset;
        slot.next = nullptr;
        slot.buffer = f.buffer;
        slot.data_len = slot.pkt_len = s.payload;
        slot.headroom = static_cast<std::uint16_t>(f.headroom + s.p.payload_offset);
        slot.nb_segs = 1;
        if (fl.tail == nullptr) {
            fl.tail = &fl.head;
        }
        fl.tail->next = &slot;
        fl.tail = &slot;
        fl.head.pkt_len += s.payload;
        ++fl.head.nb_segs;
        return true;
    }

    /// Whether frames of this storage can be merged at all (chain needs pool frames).
    [[nodiscard]] bool can_hold(const packet::frame& f) const noexcept {
        return pool_->owns(f.buffer);
    }

private:
    packet::buffer_pool* pool_;
};

class linear {
public:
    /// `frames`: the pool segments arrive in (their buffers are freed as they are copied);
    /// `large`: buffers for aggregates (frame_size >= 65536 + headers + headroom).
    linear(packet::buffer_pool& frames, packet::buffer_pool& large) noexcept
        : frames_(&frames), large_(&large) {}

    [[nodiscard]] bool append(gro_flow& fl, const gro_segment& s) noexcept {
        packet::frame& head = fl.head;
        if (fl.count == 1) {
            // First merge: move the head into a large buffer.
            packet::frame big;
            if (large_->alloc_burst({&big, 1}) != 1) {
                ++alloc_failed_;
                return false;
            }
            std::memcpy(big.data, head.data, head.data_len);
            big.data_len = big.pkt_len = head.data_len;
            big.port = head.port;
            big.rx_hash = head.rx_hash;
            big.flags = head.flags;
            big.vlan_tci = head.vlan_tci;
            big.offload = head.offload;
            frames_->free(head);
            head = big;
        }
        if (head.data_len + s.payload + head.headroom > large_->frame_size()) {
            return false;
        }
        std::memcpy(head.data + head.data_len, s.f->data + s.p.payload_offset, s.payload);
        head.data_len += s.payload;
        head.pkt_len += s.payload;
        frames_->free(*s.f);
        return true;
    }

    [[nodiscard]] bool can_hold(const packet::frame&) const noexcept { return true; }

    /// Aggregates that could not get a large buffer (they were flushed instead).
    [[nodiscard]] std::uint64_t alloc_failed() const noexcept { return alloc_failed_; }

private:
    packet::buffer_pool* frames_;
    packet::buffer_pool* large_;
    std::uint64_t alloc_failed_ = 0;
};

} // namespace storage

template <class S>
concept storage_policy =
    requires(S& s, gro_flow& fl, const gro_segment& seg, const packet::frame& f) {
        { s.append(fl, seg) } noexcept -> std::same_as<bool>;
        { s.can_hold(f) } noexcept -> std::same_as<bool>;
    };
static_assert(storage_policy<storage::chain>);
static_assert(storage_policy<storage::linear>);

} // namespace splitnet::offload
