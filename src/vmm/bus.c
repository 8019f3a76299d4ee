/* Address-range dispatch for port I/O and MMIO exits. Ranges can be added,
 * moved and removed while vCPUs run (PCI BAR relocation). */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "vmm/bus.h"

/* A reader/writer lock rather than copy-and-swap: updates are rare (BAR
 * moves at boot), the table is a fixed array inside struct bus, and readers
 * hold it for a short scan only. A hand-rolled one because a zeroed struct
 * bus (static or memset) must be usable without an init call. */
#define BUS_LOCK_WRITER 0x80000000u

static void bus_read_lock(struct bus *b)
{
	for (;;) {
		uint32_t v = atomic_load_explicit(&b->lock, memory_order_relaxed);
		if (!(v & BUS_LOCK_WRITER) &&
		    atomic_compare_exchange_weak_explicit(&b->lock, &v, v + 1,
							  memory_order_acquire,
							  memory_order_relaxed))
			return;
		sched_yield();
	}
}

static void bus_read_unlock(struct bus *b)
{
	atomic_fetch_sub_explicit(&b->lock, 1, memory_order_release);
}

static void bus_write_lock(struct bus *b)
{
	/* Claim the writer bit first so no new reader gets in, then wait for
	 * the readers already inside to leave. */
	for (;;) {
		uint32_t v = atomic_load_explicit(&b->lock, memory_order_relaxed);
		if (!(v & BUS_LOCK_WRITER) &&
		    atomic_compare_exchange_weak_explicit(&b->lock, &v, v | BUS_LOCK_WRITER,
							  memory_order_acquire,
							  memory_order_relaxed))
			break;
		sched_yield();
	}
	while (atomic_load_explicit(&b->lock, memory_order_acquire) != BUS_LOCK_WRITER)
		sched_yield();
}

static void bus_write_unlock(struct bus *b)
{
	atomic_store_explicit(&b->lock, 0, memory_order_release);
}

/* Index of a range overlapping [base, base+len) other than skip, or -1. */
static int bus_find_overlap(const struct bus *b, uint64_t base, uint64_t len, int skip)
{
	for (unsigned i = 0; i < b->n; i++) {
		const struct bus_range *r = &b->r[i];
		if ((int)i != skip && base < r->base + r->len && r->base < base + len)
			return (int)i;
	}
	return -1;
}

static int bus_find(const struct bus *b, uint64_t base, const void *opaque)
{
	for (unsigned i = 0; i < b->n; i++)
		if (b->r[i].base == base && b->r[i].opaque == opaque)
			return (int)i;
	return -1;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name)
{
	int rc = 0;

	if (len == 0 || base + len < base)
		return -EINVAL;
	bus_write_lock(b);
	if (bus_find_overlap(b, base, len, -1) >= 0)
		rc = -EEXIST;
	else if (b->n == BUS_MAX_RANGES)
		rc = -ENOSPC;
	else
		b->r[b->n++] = (struct bus_range){ base, len, ops, opaque, name };
	bus_write_unlock(b);
	return rc;
}

int bus_unregister(struct bus *b, uint64_t base, void *opaque)
{
	int rc = -ENOENT;

	bus_write_lock(b);
	int i = bus_find(b, base, opaque);
	if (i >= 0) {
		memmove(&b->r[i], &b->r[i + 1], (b->n - (unsigned)i - 1) * sizeof(b->r[0]));
		b->n--;
		rc = 0;
	}
	bus_write_unlock(b);
	return rc;
}

int bus_move(struct bus *b, uint64_t old_base, void *opaque, uint64_t new_base)
{
	int rc = 0;

	bus_write_lock(b);
	int i = bus_find(b, old_base, opaque);
	if (i < 0)
		rc = -ENOENT;
	else if (new_base + b->r[i].len < new_base)
		rc = -EINVAL;
	else if (bus_find_overlap(b, new_base, b->r[i].len, i) >= 0)
		rc = -EEXIST;
	else
		b->r[i].base = new_base;
	bus_write_unlock(b);
	return rc;
}

int bus_access(struct bus *b, uint64_t addr, uint8_t *data, unsigned size, int is_write)
{
	struct bus_range hit;
	int found = 0;

	bus_read_lock(b);
	for (unsigned i = 0; i < b->n; i++) {
		const struct bus_range *r = &b->r[i];
		if (addr < r->base || addr - r->base >= r->len)
			continue;
		hit = *r;
		found = 1;
		break;
	}
	bus_read_unlock(b);

	if (!found) {
		if (!is_write)
			memset(data, 0xff, size);
		return -ENOENT;
	}
	uint64_t off = addr - hit.base;
	if (is_write) {
		if (hit.ops->write)
			hit.ops->write(hit.opaque, off, data, size);
	} else {
		memset(data, 0, size);
		if (hit.ops->read)
			hit.ops->read(hit.opaque, off, data, size);
	}
	return 0;
}
