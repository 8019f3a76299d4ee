/* Split virtqueues (virtio 1.2 section 2.7): the bounds-checked descriptor
 * walker (direct and indirect chains) and used-ring updates. Every guest
 * address goes through gmem_ptr; a malformed ring makes virtq_pop fail and
 * the device needs a reset -- the VMM never reads outside guest RAM. */
#ifndef WAFER_DEVICES_VIRTIO_QUEUE_H
#define WAFER_DEVICES_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/memory.h"

struct snap_buf;
struct snap_cur;

#define VIRTQ_MAX_SIZE 1024   /* largest queue size wafer offers */
#define VIRTQ_MAX_SEGS 1024   /* buffers in one chain (direct + indirect) */

struct virtq {
	uint16_t size;            /* negotiated, power of two, <= VIRTQ_MAX_SIZE */
	bool ready;
	bool event_idx;           /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;            /* VIRTIO_F_INDIRECT_DESC negotiated */
	uint16_t msix_vector;     /* transport's business, kept here for state */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t last_avail;      /* next avail ring index to consume */
	uint16_t used_idx;        /* next used ring index to fill */
	uint16_t signalled_used;  /* used_idx at the last interrupt (EVENT_IDX) */
	bool signalled_valid;
	const struct guest_mem *mem;
};

/* One popped descriptor chain: out (driver->device, readable) segments come
 * first, then in (device->writable) segments, as the spec requires. */
struct virtq_elem {
	uint16_t head;
	unsigned out_num, in_num;
	uint64_t out_len, in_len;           /* total bytes each way */
	struct iovec iov[VIRTQ_MAX_SEGS];   /* [0, out_num) out, then in */
};

/* Validate ring addresses/size when the driver enables the queue:
 * 0 or -EINVAL (areas not in guest RAM, misaligned, bad size). */
int virtq_init(struct virtq *q, const struct guest_mem *mem);
void virtq_reset(struct virtq *q);
/* 1 and *e filled: a chain was taken; 0: ring empty; -EINVAL: the ring is
 * malformed (loop, chain too long, address outside RAM, length overflow,
 * in-before-out, bad index, nested indirect, ...): the caller marks the
 * device NEEDS_RESET. why gets a short reason for the log. */
int virtq_pop(struct virtq *q, struct virtq_elem *e, const char **why);
/* Return a chain with len bytes written into its in-segments. */
int virtq_push(struct virtq *q, uint16_t head, uint32_t len);
/* Several chains that form one unit (a mergeable-rx frame) become visible to
 * the driver together: fill used slots used_idx + offset, then flush count. */
int virtq_fill(struct virtq *q, unsigned offset, uint16_t head, uint32_t len);
void virtq_flush(struct virtq *q, unsigned count);
/* Should the device interrupt the driver now? (EVENT_IDX used_event or
 * VRING_AVAIL_F_NO_INTERRUPT.) Updates signalled_used when it says yes. */
bool virtq_need_notify(struct virtq *q);
/* Publish avail_event (EVENT_IDX) / check for more work after re-enabling. */
bool virtq_has_work(struct virtq *q);

/* Give back the last n chains popped and not yet returned: the next pops
 * take them again (a device quiescing for a snapshot). */
void virtq_unpop(struct virtq *q, unsigned n);

/* Snapshot payload of one queue: size, ready, MSI-X vector, ring addresses,
 * ring indexes, notification state. load parses it into q (mem set), 0 or
 * -EINVAL (malformed); the caller then checks a ready queue's rings with
 * virtq_init before trusting it, and sets event_idx/indirect from the
 * features. */
void virtq_save(const struct virtq *q, struct snap_buf *b);
int virtq_load(struct virtq *q, struct snap_cur *c, const struct guest_mem *mem);

/* Migration's dirty log: the device wrote the first len bytes of these
 * segments (call after writing, before returning the chain). */
void virtq_iov_mark_dirty(const struct guest_mem *m, const struct iovec *iov, unsigned n,
			  size_t len);

/* Copy helpers over a chain's segments (bounded by the segments' lengths). */
size_t virtq_iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len);
size_t virtq_buf_to_iov(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len);

#endif
