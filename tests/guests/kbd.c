/* Test guest: the i8042 keyboard as the API's SendCtrlAltDel uses it. The
 * keyboard interrupt (IRQ 1, IOAPIC pin 1) feeds scan codes to a decoder;
 * when Ctrl and Alt are held and Del is pressed (scan code set 1, the
 * controller translates), the guest powers off through ACPI S5, which is a
 * clean exit (status 0) under wafer. Prints "kbd ready" once listening, so a
 * test can pause and resume it first; "kbd tick" lines show it still runs. */
#include <stdint.h>

#include "exit.h"
#include "idt.h"
#include "io.h"
#include "ioapic.h"
#include "lapic.h"
#include "pit.h"
#include "pvh.h"
#include "serial.h"

#define VEC_KBD 0x31
#define KBD_IRQ 1

static volatile int ctrl, alt, extended, got_cad;
static volatile unsigned codes;

static void on_kbd(struct irq_frame *f)
{
	(void)f;
	while (inb(0x64) & 1) {
		uint8_t sc = inb(0x60);
		codes++;
		if (sc == 0xe0) {
			extended = 1;
			continue;
		}
		int down = !(sc & 0x80);
		uint8_t key = sc & 0x7f;
		if (key == 0x1d)
			ctrl = down;
		else if (key == 0x38)
			alt = down;
		else if (key == 0x53 && extended && down && ctrl && alt)
			got_cad = 1;
		extended = 0;
	}
	lapic_eoi();
}

int guest_main(struct hvm_start_info *si)
{
	(void)si;
	pic_disable();
	lapic_enable();
	idt_set_handler(VEC_KBD, on_kbd, 0);
	ioapic_route(KBD_IRQ, VEC_KBD, lapic_id());
	serial_puts("kbd ready\n");
	while (!got_cad) {
		irq_disable();
		if (!got_cad)
			irq_enable_and_halt();
		irq_enable();
	}
	printf("kbd: ctrl-alt-del after %u scan codes; powering off\n", codes);
	guest_poweroff();
	printf("kbd: FAIL: still running after the S5 write\n");
	return 1;
}
