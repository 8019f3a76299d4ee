/* Shared by the libFuzzer targets: a cursor that hands out the fuzz input's
 * bytes as little-endian integers (zero once the input is used up, so every
 * input, however short, drives the target) and the compact split-ring layout
 * the seed corpora's ring inputs follow. */
#ifndef WAFER_TESTS_FUZZ_FUZZ_H
#define WAFER_TESTS_FUZZ_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "vmm/irq.h"

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint64_t fuzz_uint(struct fuzz_in *in, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++) {
		if (in->n) {
			v |= (uint64_t)in->p[0] << (8 * i);
			in->p++;
			in->n--;
		}
	}
	return v;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in) { return (uint8_t)fuzz_uint(in, 1); }
static inline uint16_t fuzz_u16(struct fuzz_in *in) { return (uint16_t)fuzz_uint(in, 2); }
static inline uint32_t fuzz_u32(struct fuzz_in *in) { return (uint32_t)fuzz_uint(in, 4); }

/* Copy what is left of the input to dst (at most cap bytes); the rest of dst
 * is zeroed. Returns the bytes copied. */
static inline size_t fuzz_fill(struct fuzz_in *in, void *dst, size_t cap)
{
	size_t n = in->n < cap ? in->n : cap;
	memcpy(dst, in->p, n);
	memset((uint8_t *)dst + n, 0, cap - n);
	in->p += n;
	in->n -= n;
	return n;
}

/* Negotiate as a driver would without the transport: the device's bits the
 * fuzz input picked (dev_mask) plus VERSION_1, and INDIRECT_DESC / EVENT_IDX
 * only when asked for. */
static inline void fuzz_negotiate(struct virtio_dev *d, uint64_t dev_mask, bool indirect,
				  bool event_idx)
{
	d->device_features = d->ops->features(d) | 1ull << VIRTIO_F_VERSION_1 |
			     1ull << VIRTIO_F_INDIRECT_DESC | 1ull << VIRTIO_F_EVENT_IDX;
	d->features = (d->device_features & (dev_mask | 1ull << VIRTIO_F_VERSION_1)) &
		      ~((indirect ? 0 : 1ull << VIRTIO_F_INDIRECT_DESC) |
			(event_idx ? 0 : 1ull << VIRTIO_F_EVENT_IDX));
}

/* A queue of size entries starting at base: descriptor table, then the
 * avail ring (2-aligned), then the used ring (4-aligned). Returns the first
 * byte after the used ring (with its avail_event). */
static inline uint64_t fuzz_ring_layout(uint64_t base, unsigned size, uint64_t *desc,
					uint64_t *avail, uint64_t *used)
{
	*desc = base;
	*avail = base + 16ull * size;
	*used = (*avail + 6 + 2ull * size + 3) & ~3ull;
	return *used + 6 + 8ull * size;
}

/* KVM for targets that build a PCI bus: every call succeeds, nothing runs. */
static inline int fuzz_kvm_routing(struct irq_router *r, const void *e, unsigned n)
{
	(void)r; (void)e; (void)n;
	return 0;
}
static inline int fuzz_kvm_irqfd(struct irq_router *r, int fd, uint32_t gsi, bool assign)
{
	(void)r; (void)fd; (void)gsi; (void)assign;
	return 0;
}
static inline int fuzz_kvm_ioeventfd(struct irq_router *r, uint64_t a, unsigned l, int fd,
				     bool assign)
{
	(void)r; (void)a; (void)l; (void)fd; (void)assign;
	return 0;
}
static inline int fuzz_kvm_line(struct irq_router *r, uint32_t gsi, int level)
{
	(void)r; (void)gsi; (void)level;
	return 0;
}
static const struct irq_kvm_ops fuzz_kvm = { fuzz_kvm_routing, fuzz_kvm_irqfd, fuzz_kvm_ioeventfd,
					     fuzz_kvm_line };

#endif
