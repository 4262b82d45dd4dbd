// SPDX-License-Identifier: MIT
// splitnet/nic/tap_port.hpp: a port over a Linux TAP device with virtio-net headers
// (IFF_VNET_HDR), so the kernel stack on the other side exchanges offload metadata with us: it
// hands us TSO frames with partial checksums (TUNSETOFFLOAD), and takes our 64 KiB aggregates
// whole (GSO frames with NEEDS_CSUM), exactly as a virtio-net device would (drivers/net/tun.c).
//
// Receive reads with readv into a standing scatter list of pool buffers: a small frame uses one,
// a 64 KiB TSO frame a chain of them; only the buffers a read consumed are replaced. Transmit
// writes each frame (all its segments) with writev behind its virtio_net_hdr; the kernel copies,
// so buffers go back to the pool at once. A full device (EAGAIN) ends the burst: the rest stays
// with the caller. Multi-queue devices (IFF_MULTI_QUEUE) are one tap_port per queue.
//
// Set-up errors throw std::system_error saying what failed and what to do (no /dev/net/tun, no
// CAP_NET_ADMIN, a name in use with other flags).
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <splitnet/config.hpp>
#include <splitnet/nic/port.hpp>
#include <splitnet/packet/checksum_offload.hpp>
#include <splitnet/packet/ethernet.hpp>
#include <splitnet/packet/offload_info.hpp>

namespace splitnet::nic {

struct tap_config {
    std::string name;         ///< interface name (created if it does not exist)
    bool multi_queue = false; ///< IFF_MULTI_QUEUE: open the same name again for more queues
    bool offloads = true;     ///< let the kernel send us TSO and partial-checksum frames
    std::uint32_t mtu = 1500;
    bool set_mac = false;
    packet::mac_address mac{};
    bool bring_up = true; ///< set IFF_UP (addresses are for `ip` to assign)
};

class tap_port {
public:
    /// Largest frame a TAP device hands over or takes: 64 KiB of IP plus headers.
    static constexpr std::uint32_t max_frame = 65536 + 256;

    tap_port(packet::buffer_pool& pool, const tap_config& cfg) : pool_(&pool), cfg_(cfg) {
        open_device();
        room_ = pool.frame_size() - pool.default_headroom();
        max_segs_ = (max_frame + room_ - 1) / room_;
        if (max_segs_ + 1 > max_iov) {
            close_fd();
            SPLITNET_THROW(std::invalid_argument(
                "tap_port: pool buffers of " + std::to_string(pool.frame_size()) +
                " bytes are too small for 64 KiB TAP frames; use 2048 or larger"));
        }
    }
    tap_port(tap_port&& o) noexcept
        : pool_(o.pool_), cfg_(std::move(o.cfg_)), fd_(std::exchange(o.fd_, -1)), room_(o.room_),
          max_segs_(o.max_segs_), nstash_(std::exchange(o.nstash_, 0)), stats_(o.stats_) {
        std::memcpy(stash_, o.stash_, sizeof stash_);
    }
    tap_port(const tap_port&) = delete;
    tap_port& operator=(const tap_port&) = delete;
    tap_port& operator=(tap_port&&) = delete;
    ~tap_port() {
        if (nstash_ != 0) {
            pool_->free_burst({stash_, nstash_});
        }
        close_fd();
    }

    [[nodiscard]] int fd() const noexcept { return fd_; }
    [[nodiscard]] const std::string& name() const noexcept { return cfg_.name; }
    [[nodiscard]] packet::buffer_pool& pool() noexcept { return *pool_; }
    [[nodiscard]] const port_stats& stats() const noexcept { return stats_; }
    [[nodiscard]] port_caps caps() const noexcept {
        return {true, true, true, cfg_.offloads, cfg_.mtu};
    }

    [[nodiscard]] std::size_t rx_burst(std::span<packet::frame> out) noexcept {
        std::size_t n = 0;
        while (n < out.size()) {
            if (!fill_stash()) {
                ++stats_.rx_no_buffers;
                break;
            }
            // The device's header is virtio_net_hdr_mrg_rxbuf: ours plus num_buffers (unused).
            packet::virtio_net_hdr vh{};
            std::uint16_t num_buffers = 0;
            iovec iov[max_iov + 2];
            iov[0] = {&vh, sizeof vh};
            iov[1] = {&num_buffers, sizeof num_buffers};
            for (std::uint32_t i = 0; i < max_segs_; ++i) {
                iov[i + 2] = {stash_[i].data, room_};
            }
            const ssize_t r = ::readv(fd_, iov, static_cast<int>(max_segs_ + 2));
            if (r < 0) {
                if (errno != EAGAIN && errno != EINTR) {
                    ++stats_.rx_errors;
                }
                break;
            }
            const auto len = static_cast<std::uint32_t>(r);
            if (len <= vnet_hdr_len) {
                ++stats_.rx_errors;
                continue;
            }
            packet::frame& f = out[n];
            take_chain(len - vnet_hdr_len, f);
            if (packet::from_virtio_net_hdr(vh, f.offload) != packet::offload_error::none) {
                ++stats_.rx_errors;
                pool_->free(f);
                continue;
            }
            if (f.offload.is_gso() && f.offload.gso_segs == 0) {
                const std::uint32_t payload =
                    f.pkt_len > f.offload.hdr_len ? f.pkt_len - f.offload.hdr_len : 0;
                f.offload.gso_segs = static_cast<std::uint16_t>((payload + f.offload.gso_size - 1) /
                                                                f.offload.gso_size);
            }
            ++stats_.rx_packets;
            stats_.rx_bytes += f.pkt_len;
            ++n;
        }
        return n;
    }

    [[nodiscard]] std::size_t tx_burst(std::span<packet::frame> in) noexcept {
        std::size_t n = 0;
        for (; n < in.size(); ++n) {
            packet::frame& f = in[n];
            if (f.offload.is_gso() && f.offload.csum != packet::csum_state::partial) {
                // virtio wants NEEDS_CSUM with GSO: leave the L4 checksum partial in the head.
                const auto p = packet::parse(f.bytes(), f.pkt_len);
                if (p.ok()) {
                    packet::set_partial_checksum(f.bytes(), p, f.offload);
                }
            }
            const packet::virtio_net_hdr vh = packet::to_virtio_net_hdr(f.offload);
            const std::uint16_t num_buffers = 0;
            iovec iov[max_iov + 2];
            iov[0] = {const_cast<packet::virtio_net_hdr*>(&vh), sizeof vh};
            iov[1] = {const_cast<std::uint16_t*>(&num_buffers), sizeof num_buffers};
            int k = 2;
            const packet::frame* s = &f;
            for (; s != nullptr && k < max_iov + 2; s = s->next) {
                iov[k++] = {s->data, s->data_len};
            }
            if (s != nullptr) { // more segments than one write takes: cannot be sent whole
                ++stats_.tx_errors;
                pool_->free(f);
                continue;
            }
            const ssize_t r = ::writev(fd_, iov, k);
            if (r < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    ++stats_.tx_full;
                    break;
                }
                ++stats_.tx_errors; // refused (bad GSO metadata, too large): counted and freed
            } else {
                ++stats_.tx_packets;
                stats_.tx_bytes += f.pkt_len;
            }
            pool_->free(f);
        }
        return n;
    }

private:
    static constexpr std::uint32_t vnet_hdr_len = 12;
    static constexpr int max_iov = 64;

    void open_device() {
        fd_ = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd_ < 0) {
            fail("cannot open /dev/net/tun; is the tun module loaded and the device present "
                 "(mknod /dev/net/tun c 10 200)?");
        }
        ifreq ifr{};
        ifr.ifr_flags = static_cast<short>(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR |
                                           (cfg_.multi_queue ? IFF_MULTI_QUEUE : 0));
        if (cfg_.name.size() >= IFNAMSIZ) {
            close_fd();
            SPLITNET_THROW(std::invalid_argument("tap_port: interface name '" + cfg_.name +
                                                 "' is longer than " +
                                                 std::to_string(IFNAMSIZ - 1)));
        }
        std::memcpy(ifr.ifr_name, cfg_.name.c_str(), cfg_.name.size());
        if (::ioctl(fd_, TUNSETIFF, &ifr) < 0) {
            fail("TUNSETIFF " + cfg_.name +
                 " failed; creating a TAP device needs CAP_NET_ADMIN, and an existing device must "
                 "have been made with the same flags (vnet_hdr, multi_queue)");
        }
        cfg_.name = ifr.ifr_name;
        int hdr = static_cast<int>(vnet_hdr_len);
        if (::ioctl(fd_, TUNSETVNETHDRSZ, &hdr) < 0) {
            fail("TUNSETVNETHDRSZ on " + cfg_.name);
        }
        if (cfg_.offloads) {
            // TSO both families with ECN, plus UDP segmentation (USO, Linux 6.2) when known.
            constexpr unsigned uso = 0x20 | 0x40; // TUN_F_USO4 | TUN_F_USO6
            const unsigned base = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
            if (::ioctl(fd_, TUNSETOFFLOAD, base | uso) < 0 &&
                ::ioctl(fd_, TUNSETOFFLOAD, base) < 0) {
                fail("TUNSETOFFLOAD on " + cfg_.name);
            }
        }
        configure_link();
    }

    void configure_link() {
        const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0) {
            fail("socket for configuring " + cfg_.name);
        }
        ifreq ifr{};
        std::memcpy(ifr.ifr_name, cfg_.name.c_str(), cfg_.name.size());
        ifr.ifr_mtu = static_cast<int>(cfg_.mtu);
        bool ok = ::ioctl(s, SIOCSIFMTU, &ifr) == 0;
        const char* step = "set the MTU of";
        if (ok && cfg_.set_mac) {
            ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
            std::memcpy(ifr.ifr_hwaddr.sa_data, cfg_.mac.bytes.data(), 6);
            ok = ::ioctl(s, SIOCSIFHWADDR, &ifr) == 0;
            step = "set the MAC address of";
        }
        if (ok && cfg_.bring_up) {
            ok = ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
            ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
            ok = ok && ::ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
            step = "bring up";
        }
        const int err = errno;
        ::close(s);
        if (!ok) {
            errno = err;
            fail(std::string("cannot ") + step + " " + cfg_.name);
        }
    }

    [[noreturn]] void fail(const std::string& what) {
        const int err = errno;
        close_fd();
        SPLITNET_THROW(std::system_error(err, std::generic_category(), "tap_port: " + what));
    }
    void close_fd() noexcept {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

    /// Keeps max_segs_ empty buffers standing for the next read.
    bool fill_stash() noexcept {
        if (nstash_ < max_segs_) {
            nstash_ += static_cast<std::uint32_t>(
                pool_->alloc_burst({stash_ + nstash_, max_segs_ - nstash_}));
        }
        return nstash_ == max_segs_;
    }

    /// Turns the first stash buffers holding `len` bytes into a chain in `f`; refills their places.
    void take_chain(std::uint32_t len, packet::frame& f) noexcept {
        const std::uint32_t used = (len + room_ - 1) / room_;
        f = stash_[0];
        f.pkt_len = len;
        f.data_len = len < room_ ? len : room_;
        f.nb_segs = static_cast<std::uint16_t>(used);
        packet::frame* tail = &f;
        for (std::uint32_t i = 1; i < used; ++i) {
            packet::frame& slot = pool_->chain_slot(stash_[i].buffer);
            slot = stash_[i];
            const std::uint32_t left = len - i * room_;
            slot.data_len = slot.pkt_len = left < room_ ? left : room_;
            tail->next = &slot;
            tail = &slot;
        }
        tail->next = nullptr;
        // Move the unused buffers to the front of the stash.
        std::memmove(stash_, stash_ + used, (nstash_ - used) * sizeof(packet::frame));
        nstash_ -= used;
    }

    packet::buffer_pool* pool_;
    tap_config cfg_;
    int fd_ = -1;
    std::uint32_t room_ = 0;
    std::uint32_t max_segs_ = 0;
    packet::frame stash_[max_iov];
    std::uint32_t nstash_ = 0;
    port_stats stats_{};
};
static_assert(port<tap_port>);

} // namespace splitnet::nic
