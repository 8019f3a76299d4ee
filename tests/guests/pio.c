/* Test and benchmark guest: PIO exit cost. Prints first (it is also the
 * start-time guest), then runs "n=N" (default 100000) OUTB writes to "port=P"
 * (default 0x3000, claimed by no device in wafer or QEMU) in ring 3 with IOPL 3, so each write is one exit to the VMM
 * and nothing else runs in ring 0 during the loop. */
#include <stdint.h>

#include "pvh.h"
#include "serial.h"
#include "user.h"

static char user_stack[16384] __attribute__((section(".stack.user"), aligned(16)));
static uint16_t pio_port;
static volatile unsigned loop_cpl;

static uint64_t pio_loop(uint64_t n)
{
	uint16_t port = pio_port;

	loop_cpl = current_cpl();
	for (uint64_t i = 0; i < n; i++)
		__asm__ volatile("outb %b0, %w1" : : "a"((uint8_t)i), "Nd"(port));
	return n;
}

int guest_main(struct hvm_start_info *si)
{
	uint64_t n, done;

	(void)si;
	serial_puts("pio start\n");
	n = cmdline_get_u64("n", 100000);
	pio_port = (uint16_t)cmdline_get_u64("port", 0x3000);
	done = run_user(pio_loop, n, user_stack + sizeof(user_stack));
	if (done != n || loop_cpl != 3) {
		printf("pio: FAIL: loop ran %lu of %lu writes at cpl %u\n",
		       (unsigned long)done, (unsigned long)n, loop_cpl);
		return 1;
	}
	printf("pio done n=%lu port=0x%x\n", (unsigned long)n, pio_port);
	return 0;
}
