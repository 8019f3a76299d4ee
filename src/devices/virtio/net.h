/* virtio-net device (virtio 1.2 section 5.1) over a tap backend: one rx/tx
 * queue pair, no control queue, checksum/TSO offloads passed through to the
 * tap, mergeable receive buffers, link status. */
#ifndef WAFER_DEVICES_VIRTIO_NET_H
#define WAFER_DEVICES_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/ratelimit.h"
#include "devices/virtio/virtio.h"
#include "vmm/eventloop.h"
#include "vmm/memory.h"

struct net_config {
	const char *id;        /* device id ("net0"): stable part of the generated MAC */
	const char *vm_name;   /* VM name: the other part */
	const char *ifname;    /* host tap interface */
	bool has_mac;          /* mac was given (already checked by net_mac_parse) */
	uint8_t mac[6];
	/* Frames delivered to the guest (rx) and sent by it (tx); zero: none. */
	struct ratelimit_config rx_limit, tx_limit;
};

struct virtio_net_stats {
	uint64_t rx_packets, rx_bytes, rx_dropped, rx_errors;
	uint64_t tx_packets, tx_bytes, tx_dropped, tx_errors;
	uint64_t rx_throttled, tx_throttled;   /* rate limiter made a frame wait */
};

/* Open the tap cfg->ifname and build the device. The tap fd is watched on
 * loop (edge-triggered). NULL with one line in err on failure. The device's
 * destroy op must run after the loop has stopped: a handler already running
 * on the loop thread would otherwise touch freed state. */
struct virtio_dev *virtio_net_create(const struct guest_mem *mem, struct eventloop *loop,
				     const struct net_config *cfg, char *err, size_t errlen);
/* Same with an already-open fd that the device then owns: a tap with a vnet
 * header (offloads are programmed), or anything else that carries one frame
 * per read/write behind a 12-byte virtio-net header, such as the socketpair
 * the unit tests use (no offload ioctls then). loop may be NULL: nothing is
 * watched and work happens only on queue notifications. */
struct virtio_dev *virtio_net_create_fd(const struct guest_mem *mem, struct eventloop *loop,
					const struct net_config *cfg, int fd,
					char *err, size_t errlen);

/* Link state as the guest sees it (config status LINK_UP); a change sends a
 * configuration interrupt when the driver negotiated VIRTIO_NET_F_STATUS.
 * While the link is down the tap is not read and transmitted frames are
 * dropped (counted). */
void virtio_net_set_link(struct virtio_dev *d, bool up);
void virtio_net_get_stats(struct virtio_dev *d, struct virtio_net_stats *out);
/* Replace the rx and/or tx limiter configuration (NULL: unchanged), from any
 * thread (PATCH /network-interfaces/{id}). A frame held by the old limit is
 * re-checked on the event loop. */
void virtio_net_set_rate_limit(struct virtio_dev *d, const struct ratelimit_config *rx,
			       const struct ratelimit_config *tx);

/* "52:54:00:12:34:56" (hex digits, either case, ':' separated): 0, or -EINVAL
 * for bad syntax, a multicast/broadcast address or all zeros. */
int net_mac_parse(const char *s, uint8_t mac[6]);
/* Write "xx:xx:xx:xx:xx:xx" and a NUL into buf (at least 18 bytes). */
void net_mac_format(const uint8_t mac[6], char *buf);
/* The MAC a VM's interface gets when none is given: a hash of vm_name and
 * if_id, made unicast and locally administered (first byte has bit 1 set and
 * bit 0 clear). The same VM name and interface id give the same MAC on every
 * host and every run, so a guest's network configuration keyed on the MAC
 * survives restarts and migration; this hash must not change between wafer
 * versions. */
void net_mac_generate(const char *vm_name, const char *if_id, uint8_t mac[6]);

#endif
