/* Guest physical memory: one anonymous host mapping split into a low and a high
 * region around the x86 32-bit MMIO hole, and the only bounds-checked accessor
 * through which the VMM reads or writes guest memory. */
#ifndef WAFER_VMM_MEMORY_H
#define WAFER_VMM_MEMORY_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdatomic.h>

struct guest_mem {
	uint8_t *host;      /* base of the host mapping (low region, then high) */
	uint64_t size;      /* total guest RAM in bytes */
	uint64_t low_size;  /* RAM mapped at GPA [0, low_size) */
	uint64_t high_size; /* RAM mapped at GPA [MEM_HIGH_START, +high_size) */
	int owned;          /* host mapping was created by gmem_alloc/gmem_map_file */
	/* While migrating (dirty_on): one bit per 4 KiB page of the host
	 * mapping (low RAM first, then high), set by VMM-side writes (device
	 * DMA, used rings). KVM's dirty log covers the vCPUs' writes; this
	 * covers ours. Allocated by the first gmem_dirty_start and kept until
	 * gmem_free, so a device thread marking while tracking stops never
	 * touches freed memory. */
	_Atomic uint64_t *dirty;
	atomic_bool dirty_on;
};

#define GMEM_PAGE_SHIFT 12
#define GMEM_PAGE_SIZE  (1ull << GMEM_PAGE_SHIFT)

static inline uint64_t gmem_pages(const struct guest_mem *m) { return m->size >> GMEM_PAGE_SHIFT; }
static inline size_t gmem_bitmap_words(const struct guest_mem *m)
{
	return (size_t)((gmem_pages(m) + 63) / 64);
}

/* Split size bytes of RAM around the MMIO hole, backed by an existing host
 * buffer of at least size bytes (unit tests use malloc'd buffers). */
void gmem_init(struct guest_mem *m, void *host, uint64_t size);
/* mmap anonymous RAM for a guest; returns 0 or -errno. */
int gmem_alloc(struct guest_mem *m, uint64_t size);
void gmem_free(struct guest_mem *m);
/* Map size bytes of fd (a snapshot's memory file) as guest RAM, copy-on-
 * write (MAP_PRIVATE): nothing is read until the guest touches a page. */
int gmem_map_file(struct guest_mem *m, int fd, uint64_t size);

/* VMM-side dirty tracking for migration. start: 0 or -ENOMEM (the bitmap
 * starts clear); marking is a no-op while tracking is off; stop may race
 * with marking threads. harvest ORs the pages dirtied since the last
 * harvest into out (gmem_bitmap_words words) and clears them. */
int gmem_dirty_start(struct guest_mem *m);
void gmem_dirty_stop(struct guest_mem *m);
void gmem_mark_dirty(const struct guest_mem *m, uint64_t gpa, uint64_t len);
/* The same for a host pointer range inside guest RAM (iovecs of a chain);
 * ranges outside RAM are ignored. */
void gmem_mark_dirty_host(const struct guest_mem *m, const void *p, size_t len);
void gmem_dirty_harvest(struct guest_mem *m, uint64_t *out);

/* Host pointer for [gpa, gpa+len) if the whole range is guest RAM inside one
 * region, else NULL. len 0 is valid for any gpa inside RAM. Overflow-safe. */
void *gmem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);
/* Copy to/from guest memory: 0 or -EFAULT. */
int gmem_read(const struct guest_mem *m, uint64_t gpa, void *buf, uint64_t len);
int gmem_write(const struct guest_mem *m, uint64_t gpa, const void *buf, uint64_t len);
/* Highest GPA + 1 of low RAM usable for boot data (below the hole). */
static inline uint64_t gmem_low_end(const struct guest_mem *m) { return m->low_size; }

#endif
