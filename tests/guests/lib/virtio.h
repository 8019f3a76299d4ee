/* Guest library: a minimal virtio 1.x driver, modern PCI transport only
 * (virtio 1.2: 3.1 initialization, 2.7 split virtqueues, 4.1 PCI transport).
 * Polling only: completions are found by reading the used ring. */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include <stdint.h>

#include "pci.h"

#define VIRTIO_PCI_VENDOR      0x1af4
#define VIRTIO_PCI_MODERN_BASE 0x1040   /* modern device ID = 0x1040 + type */

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLK 2
#define VIRTIO_ID_RNG 4

/* Device status (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER      2
#define VIRTIO_STATUS_DRIVER_OK   4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED      128

/* Transport feature bits (6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32
#define VIRTIO_F_RING_PACKED   34

#define VIRTIO_BIT(b) (1ull << (b))

/* Queue size this driver asks for (smaller when the device's maximum is). */
#define VIRTQ_SIZE 16

#define VIRTQ_DESC_F_NEXT  1
#define VIRTQ_DESC_F_WRITE 2

/* Wait bound for virtq_wait when the caller has no better number: TSC
 * cycles, i.e. some seconds on any host; only spent when a device fails. */
#define VIRTIO_WAIT_CYCLES 10000000000ull

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[VIRTQ_SIZE];
	uint16_t used_event;
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[VIRTQ_SIZE];
	uint16_t avail_event;
};

/* One split virtqueue with its ring memory inline (guests declare these
 * static: ~450 bytes of .bss each). Addresses are physical = virtual under
 * the guest's identity map. */
struct virtq {
	struct virtq_desc desc[VIRTQ_SIZE] __attribute__((aligned(16)));
	struct virtq_avail avail __attribute__((aligned(2)));
	struct virtq_used used __attribute__((aligned(4)));
	uint16_t size;
	uint16_t index;
	uint16_t free_head;
	uint16_t num_free;
	uint16_t last_used;
	uint16_t chain_len[VIRTQ_SIZE];  /* per head, for returning descriptors */
	uintptr_t notify;                /* this queue's notification address */
};

struct virtio_dev {
	struct pci_dev pci;
	uint16_t type;
	uintptr_t common;
	uintptr_t notify;
	uint32_t notify_len;
	uint32_t notify_mult;           /* notify_off_multiplier */
	uintptr_t isr;
	uintptr_t device_cfg;           /* 0 when the device has none */
	uint32_t device_cfg_len;
	uint16_t num_queues;
	uint64_t offered;               /* device features, read by virtio_start */
	uint64_t features;              /* negotiated */
};

/* A buffer of a descriptor chain; the driver reads `out` buffers' contents
 * to the device and receives `in` buffers from it. */
struct virtq_buf {
	void *addr;
	uint32_t len;
};

/* Find the index-th modern virtio device of this type on bus 0, map its BARs,
 * locate the common/notify/isr/device capabilities and enable memory decode
 * and bus mastering. 0 or -1 (reason printed). */
int virtio_find(uint16_t type, unsigned index, struct virtio_dev *vd);

/* Reset, ACKNOWLEDGE, DRIVER, then negotiate: the result is the device's
 * offer ANDed with `wanted` plus VERSION_1 (refused when not offered), minus
 * EVENT_IDX, INDIRECT_DESC and RING_PACKED, which this driver does not
 * implement. Sets FEATURES_OK and checks the device kept it. 0 or -1; on -1
 * the device is left FAILED. */
int virtio_start(struct virtio_dev *vd, uint64_t wanted);

/* Size and enable queue `index` with vq's inline rings. Call between
 * virtio_start and virtio_driver_ok. 0 or -1. */
int virtq_setup(struct virtio_dev *vd, struct virtq *vq, uint16_t index);

void virtio_driver_ok(struct virtio_dev *vd);
/* One line: "<name>: 1af4:DDDD at BB:DD.F common=... features=...". */
void virtio_print(const struct virtio_dev *vd, const char *name);
uint8_t virtio_status(const struct virtio_dev *vd);
/* Marks the device FAILED (3.1.1: the driver gave up). */
void virtio_fail(struct virtio_dev *vd);

/* Device-specific config. Out-of-range reads return 0 (and say so once);
 * virtio_cfg_read64 retries across config_generation changes (4.1.4.3.1). */
uint8_t virtio_cfg_read8(const struct virtio_dev *vd, uint32_t off);
uint16_t virtio_cfg_read16(const struct virtio_dev *vd, uint32_t off);
uint32_t virtio_cfg_read32(const struct virtio_dev *vd, uint32_t off);
uint64_t virtio_cfg_read64(const struct virtio_dev *vd, uint32_t off);

/* Put a chain of n_out device-readable then n_in device-writable buffers on
 * the available ring (not yet notified). The head descriptor index, or -1
 * when the queue lacks free descriptors or the chain is empty. */
int virtq_submit(struct virtq *vq, const struct virtq_buf *out, unsigned n_out,
		 const struct virtq_buf *in, unsigned n_in);
/* Notify the device that queue vq has new buffers. */
void virtq_kick(struct virtq *vq);
/* Poll the used ring for the next completion, for at most timeout_cycles TSC
 * cycles. The completed head (its descriptors are freed) with *len set to
 * the bytes the device wrote, or -1 on timeout or a bogus used entry. */
int virtq_wait(struct virtq *vq, uint32_t *len, uint64_t timeout_cycles);
/* submit + kick + wait for that same chain. Bytes written, or -1. */
int virtq_transfer(struct virtq *vq, const struct virtq_buf *out, unsigned n_out,
		   const struct virtq_buf *in, unsigned n_in);

#endif
