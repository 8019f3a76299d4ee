/* Guest physical memory: one anonymous host mapping split into a low and a high
 * region around the x86 32-bit MMIO hole, and the only bounds-checked accessor
 * through which the VMM reads or writes guest memory. */
#ifndef WAFER_VMM_MEMORY_H
#define WAFER_VMM_MEMORY_H

#include <stddef.h>
#include <stdint.h>

struct guest_mem {
	uint8_t *host;      /* base of the host mapping (low region, then high) */
	uint64_t size;      /* total guest RAM in bytes */
	uint64_t low_size;  /* RAM mapped at GPA [0, low_size) */
	uint64_t high_size; /* RAM mapped at GPA [MEM_HIGH_START, +high_size) */
	int owned;          /* host mapping was created by gmem_alloc */
};

/* Split size bytes of RAM around the MMIO hole, backed by an existing host
 * buffer of at least size bytes (unit tests use malloc'd buffers). */
void gmem_init(struct guest_mem *m, void *host, uint64_t size);
/* mmap anonymous RAM for a guest; returns 0 or -errno. */
int gmem_alloc(struct guest_mem *m, uint64_t size);
void gmem_free(struct guest_mem *m);

/* Host pointer for [gpa, gpa+len) if the whole range is guest RAM inside one
 * region, else NULL. len 0 is valid for any gpa inside RAM. Overflow-safe. */
void *gmem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);
/* Copy to/from guest memory: 0 or -EFAULT. */
int gmem_read(const struct guest_mem *m, uint64_t gpa, void *buf, uint64_t len);
int gmem_write(const struct guest_mem *m, uint64_t gpa, const void *buf, uint64_t len);
/* Highest GPA + 1 of low RAM usable for boot data (below the hole). */
static inline uint64_t gmem_low_end(const struct guest_mem *m) { return m->low_size; }

#endif
