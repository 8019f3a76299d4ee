/* Guest library: IDT gates and the C dispatcher behind isr.S (Intel SDM vol. 3
 * ch. 6: 64-bit interrupt gates). */
#include "exit.h"
#include "idt.h"
#include "segments.h"
#include "serial.h"

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t zero;
} __attribute__((packed));

struct idt_desc {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

#define STUB_SIZE 16

extern char isr_stubs[];

static struct idt_gate idt[256] __attribute__((aligned(16)));
static irq_handler_fn handlers[256];
static const struct idt_desc idt_desc = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };

const char *const exception_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
	"#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "#15",
	"#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23",
	"#24", "#25", "#26", "#27", "#HV", "#VC", "#SX", "#31",
};

void idt_set_gate(unsigned vector, void (*entry)(void), unsigned dpl)
{
	uint64_t a = (uint64_t)(uintptr_t)entry;
	struct idt_gate *g = &idt[vector & 0xff];

	g->off_lo = (uint16_t)a;
	g->sel = SEL_KCODE64;
	g->ist = 0;
	g->type_attr = (uint8_t)(0x8e | ((dpl & 3) << 5)); /* present, interrupt gate */
	g->off_mid = (uint16_t)(a >> 16);
	g->off_hi = (uint32_t)(a >> 32);
	g->zero = 0;
}

static void set_stub(unsigned vector, unsigned dpl)
{
	idt_set_gate(vector, (void (*)(void))(isr_stubs + vector * STUB_SIZE), dpl);
}

void idt_set_handler(unsigned vector, irq_handler_fn fn, unsigned dpl)
{
	handlers[vector & 0xff] = fn;
	set_stub(vector & 0xff, dpl);
}

void idt_load(void)
{
	__asm__ volatile("lidt %0" : : "m"(idt_desc));
}

void idt_init(void)
{
	for (unsigned v = 0; v < 32; v++)
		set_stub(v, 0);
	idt_load();
}

static void report_fatal(struct irq_frame *f)
{
	uint64_t cr2;

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	serial_break_lock();
	if (f->vector < 32)
		printf("\nguest: unhandled exception %s (vector %lu) at rip=0x%lx err=0x%lx cr2=0x%lx cs=0x%lx\n",
		       exception_names[f->vector], f->vector, f->rip, f->error, cr2, f->cs);
	else
		printf("\nguest: unexpected interrupt vector %lu at rip=0x%lx\n", f->vector, f->rip);
	guest_exit(GUEST_EXIT_EXCEPTION);
}

void isr_dispatch(struct irq_frame *f);
void isr_dispatch(struct irq_frame *f)
{
	irq_handler_fn fn = handlers[f->vector & 0xff];

	if (fn)
		fn(f);
	else
		report_fatal(f);
}
