/* The guest's physical memory map (e820), shared by the Linux zero page, the
 * PVH start-info memmap and the unit tests. */
#ifndef WAFER_ARCH_X86_E820_H
#define WAFER_ARCH_X86_E820_H

#include <stdint.h>
#include "vmm/memory.h"

#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* Fill out[] (capacity max) with the sorted, non-overlapping map of m;
 * returns the number of entries or -ENOSPC. */
int e820_build(const struct guest_mem *m, struct e820_entry *out, int max);

#endif
