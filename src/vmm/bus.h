/* PIO and MMIO dispatch: devices register address ranges with an ops table;
 * vCPU exits are routed here. Lookups are lock-free reads of a table that is
 * only written before the vCPUs start. */
#ifndef WAFER_VMM_BUS_H
#define WAFER_VMM_BUS_H

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
	unsigned n;
	struct bus_range r[BUS_MAX_RANGES];
};

/* 0, -EEXIST on overlap, -ENOSPC when full. */
int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name);
/* 0 if handled, -ENOENT when no device claims addr (reads then see 0xff..). */
int bus_access(struct bus *b, uint64_t addr, uint8_t *data, unsigned size, int is_write);

#endif
