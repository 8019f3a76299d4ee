/* Guest library: xAPIC MMIO access (see lapic.h). */
#include "io.h"
#include "lapic.h"

#define SVR_ENABLE        0x100
#define LVT_MASKED        0x10000
#define LVT_TIMER_PERIODIC 0x20000
#define ICR_SEND_PENDING  0x1000
#define TIMER_DIV_16      0x3

uint32_t lapic_read(uint32_t reg)
{
	return mmio_read32(LAPIC_BASE + reg);
}

void lapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(LAPIC_BASE + reg, v);
}

unsigned lapic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

void lapic_enable(void)
{
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
	lapic_write(LAPIC_LVT_LINT1, LVT_MASKED);
	lapic_write(LAPIC_SVR, SVR_ENABLE | LAPIC_SPURIOUS_VECTOR);
}

void lapic_eoi(void)
{
	lapic_write(LAPIC_EOI, 0);
}

void lapic_timer_periodic(uint8_t vector, uint32_t count)
{
	lapic_write(LAPIC_TIMER_DIV, TIMER_DIV_16);
	lapic_write(LAPIC_LVT_TIMER, LVT_TIMER_PERIODIC | vector);
	lapic_write(LAPIC_TIMER_INIT, count);
}

void lapic_timer_stop(void)
{
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
	lapic_write(LAPIC_TIMER_INIT, 0);
}

int lapic_send_ipi(uint32_t dest_apic_id, uint32_t icr_lo)
{
	lapic_write(LAPIC_ICR_HI, dest_apic_id << 24);
	lapic_write(LAPIC_ICR_LO, icr_lo);
	for (unsigned i = 0; i < 100000; i++) {
		if (!(lapic_read(LAPIC_ICR_LO) & ICR_SEND_PENDING))
			return 0;
		cpu_relax();
	}
	return -1;
}
