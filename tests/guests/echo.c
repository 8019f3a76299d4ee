/* Test guest: interrupt-driven serial input. COM1's receive interrupt (IER
 * bit 0) comes in on IOAPIC pin 4; the handler drains the UART into a ring,
 * the main loop sleeps in HLT and echoes what the handler queued, until 'q'.
 * Also the idle guest for the RSS benchmark (it waits with no exits). */
#include <stdint.h>

#include "idt.h"
#include "io.h"
#include "ioapic.h"
#include "lapic.h"
#include "pit.h"
#include "pvh.h"
#include "serial.h"

#define VEC_COM1 0x34
#define RING_SIZE 64u

static volatile uint8_t ring[RING_SIZE];
static volatile unsigned ring_head, ring_tail, irq_count, dropped;

static void on_com1(struct irq_frame *f)
{
	int c;

	(void)f;
	irq_count++;
	while ((c = serial_trygetc()) >= 0) {
		if (ring_head - ring_tail < RING_SIZE)
			ring[ring_head++ % RING_SIZE] = (uint8_t)c;
		else
			dropped++;
	}
	lapic_eoi();
}

int guest_main(struct hvm_start_info *si)
{
	unsigned echoed = 0;

	(void)si;
	pic_disable();
	lapic_enable();
	idt_set_handler(VEC_COM1, on_com1, 0);
	ioapic_route(COM1_IRQ, VEC_COM1, lapic_id());
	outb(COM1_BASE + UART_IER, UART_IER_RDI);
	serial_puts("echo ready\n");

	for (;;) {
		uint8_t c;

		irq_disable();
		if (ring_tail == ring_head) {
			irq_enable_and_halt();
			continue;
		}
		c = ring[ring_tail++ % RING_SIZE];
		irq_enable();
		serial_putc((char)c);
		echoed++;
		if (c == 'q')
			break;
	}
	outb(COM1_BASE + UART_IER, 0);
	printf("\necho done bytes=%u irqs=%u dropped=%u\n", echoed, irq_count, dropped);
	return irq_count ? 0 : 1;
}
