/* Address-range dispatch for port I/O and MMIO exits. */
#include <errno.h>
#include <string.h>

#include "vmm/bus.h"

int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name)
{
	if (len == 0 || base + len < base)
		return -EINVAL;
	for (unsigned i = 0; i < b->n; i++) {
		const struct bus_range *r = &b->r[i];
		if (base < r->base + r->len && r->base < base + len)
			return -EEXIST;
	}
	if (b->n == BUS_MAX_RANGES)
		return -ENOSPC;
	b->r[b->n++] = (struct bus_range){ base, len, ops, opaque, name };
	return 0;
}

int bus_access(struct bus *b, uint64_t addr, uint8_t *data, unsigned size, int is_write)
{
	for (unsigned i = 0; i < b->n; i++) {
		const struct bus_range *r = &b->r[i];
		if (addr < r->base || addr - r->base >= r->len)
			continue;
		uint64_t off = addr - r->base;
		if (is_write) {
			if (r->ops->write)
				r->ops->write(r->opaque, off, data, size);
		} else {
			memset(data, 0, size);
			if (r->ops->read)
				r->ops->read(r->opaque, off, data, size);
		}
		return 0;
	}
	if (!is_write)
		memset(data, 0xff, size);
	return -ENOENT;
}
