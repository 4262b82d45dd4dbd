/* The kernel's virtio_net_hdr layout and constants, read in C: Debian 12's <linux/virtio_net.h>
 * does not compile as C++ (a field is named "class"). offload_info_test.cpp compares them. */
#include <stddef.h>

#include <linux/virtio_net.h>

const unsigned long splitnet_kernel_virtio_layout[] = {
    sizeof(struct virtio_net_hdr),
    offsetof(struct virtio_net_hdr, flags),
    offsetof(struct virtio_net_hdr, gso_type),
    offsetof(struct virtio_net_hdr, hdr_len),
    offsetof(struct virtio_net_hdr, gso_size),
    offsetof(struct virtio_net_hdr, csum_start),
    offsetof(struct virtio_net_hdr, csum_offset),
    VIRTIO_NET_HDR_F_NEEDS_CSUM,
    VIRTIO_NET_HDR_F_DATA_VALID,
    VIRTIO_NET_HDR_GSO_NONE,
    VIRTIO_NET_HDR_GSO_TCPV4,
    VIRTIO_NET_HDR_GSO_UDP,
    VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_NET_HDR_GSO_ECN,
#ifdef VIRTIO_NET_HDR_GSO_UDP_L4
    VIRTIO_NET_HDR_GSO_UDP_L4,
#else
    5, /* added to the uapi header in Linux 6.2; the value is fixed by the virtio spec */
#endif
};
