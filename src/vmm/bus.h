/* PIO and MMIO dispatch: devices register address ranges with an ops table;
 * vCPU exits are routed here. PCI BARs move while vCPUs run, so the table is
 * guarded by a small reader/writer lock that is held only for the lookup --
 * never across a device callback, which may itself move ranges. */
#ifndef WAFER_VMM_BUS_H
#define WAFER_VMM_BUS_H

#include <stdatomic.h>
#include <stdint.h>

struct bus_ops {
	/* offset is relative to the range base; size is 1, 2, 4 or 8. Reads fill
	 * data (pre-zeroed); unhandled reads return all ones by leaving it. */
	void (*read)(void *opaque, uint64_t offset, uint8_t *data, unsigned size);
	void (*write)(void *opaque, uint64_t offset, const uint8_t *data, unsigned size);
};

enum bus_space { BUS_PIO, BUS_MMIO };

#define BUS_MAX_RANGES 64

struct bus_range {
	uint64_t base, len;
	const struct bus_ops *ops;
	void *opaque;
	const char *name;
};

struct bus {
	/* Reader count, plus BUS_LOCK_WRITER while a writer holds it. Zero is
	 * unlocked, so a zeroed struct bus is ready to use. */
	_Atomic uint32_t lock;
	unsigned n;
	struct bus_range r[BUS_MAX_RANGES];
};

/* 0, -EEXIST on overlap, -ENOSPC when full. */
int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name);
/* Remove the range registered at base for opaque: 0 or -ENOENT. A vCPU that
 * looked the range up just before may still be inside its callback; callers
 * free opaque only after the vCPUs stopped. */
int bus_unregister(struct bus *b, uint64_t base, void *opaque);
/* Move the range at old_base (owned by opaque) to new_base, keeping its
 * length and ops: 0, -ENOENT, -EINVAL (wraps), -EEXIST (would overlap
 * another range; the range stays where it was). */
int bus_move(struct bus *b, uint64_t old_base, void *opaque, uint64_t new_base);
/* 0 if handled, -ENOENT when no device claims addr (reads then see 0xff..). */
int bus_access(struct bus *b, uint64_t addr, uint8_t *data, unsigned size, int is_write);

#endif
