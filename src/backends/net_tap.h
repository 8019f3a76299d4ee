/* Host side of a virtio-net device: a Linux tap interface opened through
 * /dev/net/tun with a 12-byte virtio-net header (virtio 1.2 section 5.1.6)
 * in front of every frame read or written. */
#ifndef WAFER_BACKENDS_NET_TAP_H
#define WAFER_BACKENDS_NET_TAP_H

#include <stdbool.h>
#include <stddef.h>

/* Offloads the guest can take on receive (TUNSETOFFLOAD): the kernel may then
 * hand us frames with partial checksums / TSO super-frames. */
#define NET_TAP_OFFLOAD_CSUM    0x1
#define NET_TAP_OFFLOAD_TSO4    0x2
#define NET_TAP_OFFLOAD_TSO6    0x4
#define NET_TAP_OFFLOAD_TSO_ECN 0x8

/* Bytes of the per-frame header on the fd: struct virtio_net_hdr_v1,
 * num_buffers included. */
#define NET_TAP_VNET_HDR_LEN 12

/* Attach to tap `ifname`, creating it when it does not exist (needs
 * CAP_NET_ADMIN; a tap wafer creates is brought up and disappears when the fd
 * is closed; addresses, bridges and routes stay the operator's job). The fd is
 * non-blocking, close-on-exec, with the 12-byte vnet header and no offloads.
 * Returns the fd, or -errno with one line naming the interface in err. */
int net_tap_open(const char *ifname, char *err, size_t errlen);
/* Is fd a tap with a vnet header (e.g. handed over by a supervisor)? Fills
 * ifname (IFNAMSIZ bytes) when it is and ifname is not NULL. */
bool net_tap_fd_is_tap(int fd, char *ifname);
/* Set the receive offloads (NET_TAP_OFFLOAD_*). TSO bits without CSUM and
 * ECN without TSO are dropped, as the kernel requires. 0 or -errno. */
int net_tap_set_offload(int fd, unsigned offloads);

#endif
