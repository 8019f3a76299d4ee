/* Transport-independent virtio device model (virtio 1.2, sections 2 and 3):
 * feature negotiation, device status, queues and the ops a device implements.
 * Transports (virtio/pci.c) call the ops; devices call the transport's
 * interrupt hooks. Device work runs on the I/O thread. */
#ifndef WAFER_DEVICES_VIRTIO_VIRTIO_H
#define WAFER_DEVICES_VIRTIO_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/virtio/queue.h"
#include "vmm/log.h"
#include "vmm/memory.h"

/* Device status bits (2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE   1
#define VIRTIO_STATUS_DRIVER        2
#define VIRTIO_STATUS_DRIVER_OK     4
#define VIRTIO_STATUS_FEATURES_OK   8
#define VIRTIO_STATUS_NEEDS_RESET   64
#define VIRTIO_STATUS_FAILED        128

/* Transport/ring feature bits (6) */
#define VIRTIO_F_INDIRECT_DESC      28
#define VIRTIO_F_EVENT_IDX          29
#define VIRTIO_F_VERSION_1          32
#define VIRTIO_F_ACCESS_PLATFORM    33

#define VIRTIO_MAX_QUEUES 16

struct virtio_dev;
struct snap_buf;
struct snap_cur;

struct virtio_dev_ops {
	const char *name;          /* "virtio-blk", ... (logs, stats) */
	uint16_t device_id;        /* 1 net, 2 blk, 4 entropy (5) */
	unsigned num_queues;
	uint16_t queue_max_size;   /* power of two */
	/* Device-specific feature bits offered (transport adds VERSION_1,
	 * EVENT_IDX, INDIRECT_DESC). */
	uint64_t (*features)(struct virtio_dev *d);
	/* Driver set DRIVER_OK: d->features is final and queues are ready.
	 * 0, or -errno to put the device in NEEDS_RESET. */
	int (*activate)(struct virtio_dev *d);
	/* Driver wrote 0 to status: drop all in-flight state. */
	void (*reset)(struct virtio_dev *d);
	/* Device config space (the device-specific struct); bounds already
	 * checked against config_size. */
	uint32_t config_size;
	void (*config_read)(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len);
	void (*config_write)(struct virtio_dev *d, uint32_t off, const void *buf, uint32_t len);
	/* The driver notified queue q (I/O thread, via ioeventfd). */
	void (*queue_notify)(struct virtio_dev *d, unsigned q);
	void (*destroy)(struct virtio_dev *d);
	/* Snapshots, all optional. quiesce runs with the I/O thread parked:
	 * finish what is in flight and give back the chains the device holds
	 * (virtq_unpop), so the rings say everything; 0 or -errno. save/load
	 * carry the device-specific state in a section named ops->name
	 * (instance = PCI slot, version state_version); load is all or
	 * nothing (-EINVAL if it refuses the payload, err saying why unless
	 * it is merely malformed) and runs before the transport re-activates
	 * the device. */
	int (*quiesce)(struct virtio_dev *d);
	uint32_t state_version;
	int (*save)(struct virtio_dev *d, struct snap_buf *b);
	int (*load)(struct virtio_dev *d, struct snap_cur *c, char *err, size_t errlen);
};

/* Transport hooks, set by the transport when it adopts a device. */
struct virtio_transport_ops {
	/* Used-buffer notification for queue q (MSI-X vector or INTx + ISR bit 0). */
	void (*notify_queue)(struct virtio_dev *d, unsigned q);
	/* Configuration change notification (ISR bit 1). */
	void (*notify_config)(struct virtio_dev *d);
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	const struct virtio_transport_ops *transport;
	void *transport_priv;
	void *priv;                       /* the device's own state */
	const struct guest_mem *mem;
	uint64_t device_features;         /* offered (device | transport bits) */
	uint64_t features;                /* negotiated (driver & offered) */
	uint8_t status;
	struct virtq vq[VIRTIO_MAX_QUEUES];
	struct log_ratelimit rl;          /* guest-caused error messages */
	/* counters for stats/metrics */
	uint64_t stat_ops, stat_bytes_in, stat_bytes_out, stat_errors;
	uint64_t stat_throttled;          /* rate limiter said wait */
};

static inline bool virtio_has_feature(const struct virtio_dev *d, unsigned bit)
{
	return (d->features >> bit) & 1;
}

/* Mark the device broken because of guest input: sets NEEDS_RESET, sends a
 * config interrupt and logs why (rate-limited). Queues stop being processed
 * until the driver resets the device. */
void virtio_dev_needs_reset(struct virtio_dev *d, const char *why);

/* Tell the driver queue q has new used buffers, honouring EVENT_IDX /
 * NO_INTERRUPT suppression. */
void virtio_dev_signal_used(struct virtio_dev *d, unsigned q);

#endif
