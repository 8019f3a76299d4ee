/* Intel MultiProcessor Specification 1.4 tables: floating pointer + config
 * table with one processor entry per vCPU, ISA bus, IOAPIC and IRQ entries. */
#ifndef WAFER_ARCH_X86_MPTABLE_H
#define WAFER_ARCH_X86_MPTABLE_H

#include <stdint.h>
#include "vmm/memory.h"

/* Write at MPTABLE_ADDR; 0 or -errno (-E2BIG when ncpus does not fit). */
int mptable_build(struct guest_mem *m, unsigned ncpus);

#endif
