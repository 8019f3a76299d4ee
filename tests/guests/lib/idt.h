/* Guest library: the IDT. Vectors 0-31 get a reporting handler that prints
 * the exception and exits with GUEST_EXIT_EXCEPTION; guests hook any vector
 * with idt_set_handler(). */
#ifndef GUEST_IDT_H
#define GUEST_IDT_H

#include <stdint.h>

/* What isr_common (isr.S) pushed, lowest address first. */
struct irq_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;   /* pushed by the CPU */
};

typedef void (*irq_handler_fn)(struct irq_frame *f);

/* Installs gates 0-31 (~200 ring-0 instructions; guest_start calls it). */
void idt_init(void);
/* Points vector at the common stub and calls fn from it; dpl 3 lets ring 3
 * raise it with INT n. */
void idt_set_handler(unsigned vector, irq_handler_fn fn, unsigned dpl);
/* Raw gate to an assembly entry (used for the ring-3 return gate). */
void idt_set_gate(unsigned vector, void (*entry)(void), unsigned dpl);
/* Load the IDT on this CPU (APs call it; the BSP's idt_init does). */
void idt_load(void);

extern const char *const exception_names[32];

#endif
