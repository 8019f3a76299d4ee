/* Test guest: a triple fault. With an empty IDT a #UD cannot be delivered,
 * nor can the #DF that follows: the CPU shuts down, which wafer must report as
 * a crash (exit status 2) with the exit reason and RIP. */
#include <stdint.h>

#include "pvh.h"
#include "serial.h"

int guest_main(struct hvm_start_info *si)
{
	struct __attribute__((packed)) { uint16_t limit; uint64_t base; } empty = { 0, 0 };
	(void)si;
	serial_puts("triplefault: loading an empty IDT and executing ud2\n");
	__asm__ volatile("lidt %0; ud2" : : "m"(empty) : "memory");
	serial_puts("triplefault: FAIL: still running\n");
	return 1;
}
