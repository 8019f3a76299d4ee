/* Test guest: timer interrupts. PIT channel 0 through IOAPIC pin 2 (where the
 * MADT's IRQ0 override points), then the LAPIC timer in periodic mode; each
 * must deliver 10 ticks within a bounded spin. Exit 0 on success, 1 if a
 * timer stays silent. */
#include <stdint.h>

#include "idt.h"
#include "io.h"
#include "ioapic.h"
#include "lapic.h"
#include "pit.h"
#include "pvh.h"
#include "serial.h"

#define TICKS 10u
#define VEC_PIT   0x30
#define VEC_LAPIC 0x31
#define PIT_GSI   2
#define PIT_DIVISOR 1193u       /* ~1 kHz */
#define LAPIC_COUNT 62500u      /* 1 ms at a 1 GHz APIC bus / 16 (KVM, QEMU) */
/* Loop bound instead of wall time (see smp.c): ~10 ms of ticks fit many times
 * over on hardware, and a dead timer still ends the wait. */
#define WAIT_SPINS 20000000ul

static volatile unsigned pit_ticks, lapic_ticks;

static void on_pit(struct irq_frame *f)
{
	(void)f;
	if (pit_ticks < TICKS)
		pit_ticks++;
	lapic_eoi();
}

static void on_lapic(struct irq_frame *f)
{
	(void)f;
	if (lapic_ticks < TICKS)
		lapic_ticks++;
	lapic_eoi();
}

static unsigned wait_ticks(volatile unsigned *ticks)
{
	unsigned long i;

	irq_enable();
	for (i = 0; i < WAIT_SPINS && *ticks < TICKS; i++)
		cpu_relax();
	irq_disable();
	return *ticks;
}

int guest_main(struct hvm_start_info *si)
{
	(void)si;
	serial_puts("timer: start\n");
	pic_disable();
	lapic_enable();
	idt_set_handler(VEC_PIT, on_pit, 0);
	idt_set_handler(VEC_LAPIC, on_lapic, 0);

	ioapic_route(PIT_GSI, VEC_PIT, lapic_id());
	pit_periodic(PIT_DIVISOR);
	wait_ticks(&pit_ticks);
	pit_stop();
	ioapic_mask(PIT_GSI);
	if (pit_ticks < TICKS) {
		printf("timer: FAIL: pit delivered %u of %u ticks on ioapic pin %u\n",
		       pit_ticks, TICKS, PIT_GSI);
		return 1;
	}

	lapic_timer_periodic(VEC_LAPIC, LAPIC_COUNT);
	wait_ticks(&lapic_ticks);
	lapic_timer_stop();
	if (lapic_ticks < TICKS) {
		printf("timer: FAIL: lapic timer delivered %u of %u ticks\n", lapic_ticks, TICKS);
		return 1;
	}
	printf("timer ok pit=%u lapic=%u\n", pit_ticks, lapic_ticks);
	return 0;
}
