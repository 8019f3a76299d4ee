/* Test guest: exception delivery. Executes UD2 in ring 0; the #UD handler
 * reports the faulting RIP, checks it is the UD2, and resumes after it, which
 * also proves IRETQ back to the interrupted code works. */
#include <stdint.h>

#include "idt.h"
#include "pvh.h"
#include "serial.h"

#define VEC_UD 6

extern const char fault_ud2[];
static volatile int caught;

static void on_ud(struct irq_frame *f)
{
	printf("caught %s at 0x%lx\n", exception_names[f->vector], f->rip);
	if (f->rip == (uintptr_t)fault_ud2)
		caught = 1;
	f->rip += 2;    /* UD2 is 0F 0B */
}

int guest_main(struct hvm_start_info *si)
{
	(void)si;
	serial_puts("fault: executing ud2 in ring 0\n");
	idt_set_handler(VEC_UD, on_ud, 0);
	__asm__ volatile(".globl fault_ud2\nfault_ud2: ud2" ::: "memory");
	if (!caught) {
		printf("fault: FAIL: #UD not reported at the ud2 (0x%lx)\n",
		       (unsigned long)(uintptr_t)fault_ud2);
		return 1;
	}
	serial_puts("fault: resumed after the handler\n");
	return 0;
}
