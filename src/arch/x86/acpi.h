/* ACPI tables for the guest: RSDP, XSDT, FADT (hardware-reduced off: PM1a
 * event/control blocks at fixed ports), FACS, DSDT (\_S5, COM1, PCI host
 * bridge + _PRT, ECAM motherboard resource), MADT (LAPIC or x2APIC per vCPU,
 * IOAPIC, ISA overrides), MCFG (PCI ECAM). ACPI 6.x, checksums valid. */
#ifndef WAFER_ARCH_X86_ACPI_H
#define WAFER_ARCH_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>
#include "vmm/memory.h"

/* SLP_TYP the DSDT's \_S5 package gives for soft-off; the PM1a control block
 * powers the VM off on a write of SLP_EN with this SLP_TYP. */
#define ACPI_SLP_TYP_S5 5

/* A table a later subsystem hands to acpi_build (at most 13):
 * body is everything after the 36-byte common header, which acpi_build
 * fills in (length, OEM ids, checksum) before listing the table in the XSDT. */
struct acpi_table {
	char signature[4];
	uint8_t revision;
	const void *body;
	size_t body_len;
};

struct acpi_config {
	unsigned ncpus;                  /* APIC IDs 0 .. ncpus-1 */
	const struct acpi_table *extra;  /* nextra tables appended to the XSDT */
	unsigned nextra;
};

/* Write all tables into [ACPI_ADDR, ACPI_ADDR + ACPI_MAX); RSDP at ACPI_ADDR.
 * Returns 0 or -errno: -EINVAL for 0 vCPUs, -E2BIG when the tables (vCPUs,
 * extras) do not fit in ACPI_MAX, -EFAULT when the region is not guest RAM.
 * Guest memory is untouched on error. *rsdp_gpa receives the RSDP address. */
int acpi_build(struct guest_mem *m, const struct acpi_config *cfg, uint64_t *rsdp_gpa);

/* Sum of bytes mod 256 (0 for a valid ACPI/MP checksum region). */
uint8_t acpi_checksum(const void *p, size_t len);

/* IOAPIC ID shared by the MADT and the MP table: the first ID after the
 * vCPUs' APIC IDs. With 255+ vCPUs every 8-bit ID is taken (255 is the
 * broadcast ID); those guests run x2APIC, where the IOAPIC ID is only a name,
 * so 0 is used. */
static inline uint8_t acpi_ioapic_id(unsigned ncpus)
{
	return ncpus < 255 ? (uint8_t)ncpus : 0;
}

#endif
