/* Guest library: TSS setup and run_user() (see user.h; Intel SDM vol. 3 7.7
 * for the 64-bit TSS, 5.8 for privilege checks on gates). */
#include "idt.h"
#include "segments.h"
#include "string.h"
#include "user.h"

struct tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

extern uint64_t gdt[GDT_ENTRIES];
uint64_t user_enter(user_fn fn, uint64_t arg, void *stack_top);
void user_return_gate(void);

static struct tss64 tss;
/* Where interrupts and the return gate land when they arrive from ring 3. */
static char ring0_stack[8192] __attribute__((section(".stack.user"), aligned(16)));
static int ready;

static void user_setup(void)
{
	uint64_t base = (uint64_t)(uintptr_t)&tss;
	uint64_t limit = sizeof(tss) - 1;

	tss.rsp[0] = (uint64_t)(uintptr_t)(ring0_stack + sizeof(ring0_stack));
	tss.iomap_base = sizeof(tss);       /* no I/O bitmap: IOPL 3 rules */
	gdt[SEL_TSS / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
			   (0x89ull << 40) |    /* present, available 64-bit TSS */
			   (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
	gdt[SEL_TSS / 8 + 1] = base >> 32;
	__asm__ volatile("ltr %w0" : : "r"(SEL_TSS));
	idt_set_gate(USER_RETURN_VECTOR, user_return_gate, 3);
	ready = 1;
}

uint64_t run_user(user_fn fn, uint64_t arg, void *stack_top)
{
	if (!ready)
		user_setup();
	return user_enter(fn, arg, stack_top);
}
