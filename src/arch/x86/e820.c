/* The guest's e820 memory map (ACPI 6.x section 15, "System Address Map
 * Interfaces"): low RAM below the EBDA, the reserved EBDA/BIOS area that holds
 * the MP and ACPI tables, RAM from 1 MiB to the MMIO hole, the PCI ECAM window
 * (reserved: Linux ignores an MCFG area the firmware map does not reserve) and
 * RAM above 4 GiB. */
#include <errno.h>

#include "arch/x86/e820.h"
#include "arch/x86/layout.h"

static int e820_add(struct e820_entry *out, int max, int *n,
		    uint64_t addr, uint64_t size, uint32_t type)
{
	if (*n >= max)
		return -ENOSPC;
	out[*n] = (struct e820_entry){ .addr = addr, .size = size, .type = type };
	(*n)++;
	return 0;
}

int e820_build(const struct guest_mem *m, struct e820_entry *out, int max)
{
	uint64_t low = m->low_size;
	int n = 0;
	int rc;

	if (!out || max < 0)
		return -EINVAL;

	/* A guest smaller than the EBDA start cannot happen (VM_MIN_MEM_MIB), but
	 * the map must still never claim RAM that is not backed. */
	if (low) {
		rc = e820_add(out, max, &n, 0, low < EBDA_START ? low : EBDA_START, E820_RAM);
		if (rc)
			goto out;
	}
	/* Reserved even where it is backed by RAM: the MP table lives in the
	 * EBDA and the RSDP/ACPI tables in the BIOS area, and the kernel must not
	 * reuse them before it has parsed them. */
	rc = e820_add(out, max, &n, EBDA_START, HIMEM_START - EBDA_START, E820_RESERVED);
	if (rc)
		goto out;
	if (low > HIMEM_START) {
		rc = e820_add(out, max, &n, HIMEM_START, low - HIMEM_START, E820_RAM);
		if (rc)
			goto out;
	}
	rc = e820_add(out, max, &n, PCI_ECAM_BASE, PCI_ECAM_SIZE, E820_RESERVED);
	if (rc)
		goto out;
	if (m->high_size) {
		rc = e820_add(out, max, &n, MEM_HIGH_START, m->high_size, E820_RAM);
		if (rc)
			goto out;
	}
	rc = n;
out:
	return rc;
}
