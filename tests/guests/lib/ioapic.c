/* Guest library: I/O APIC redirection table writes (see ioapic.h). */
#include "io.h"
#include "ioapic.h"

#define IOAPIC_REGSEL 0x00
#define IOAPIC_WIN    0x10
#define IOAPIC_VER    0x01
#define REDIR_MASKED  0x10000

static void ioapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(IOAPIC_BASE + IOAPIC_REGSEL, reg);
	mmio_write32(IOAPIC_BASE + IOAPIC_WIN, v);
}

static uint32_t ioapic_read(uint32_t reg)
{
	mmio_write32(IOAPIC_BASE + IOAPIC_REGSEL, reg);
	return mmio_read32(IOAPIC_BASE + IOAPIC_WIN);
}

unsigned ioapic_pins(void)
{
	return ((ioapic_read(IOAPIC_VER) >> 16) & 0xff) + 1;
}

void ioapic_route(unsigned pin, uint8_t vector, unsigned apic_id)
{
	/* Destination first, so the entry is never live with a stale one. */
	ioapic_write(0x11 + 2 * pin, apic_id << 24);
	ioapic_write(0x10 + 2 * pin, vector);
}

void ioapic_mask(unsigned pin)
{
	ioapic_write(0x10 + 2 * pin, REDIR_MASKED);
}
