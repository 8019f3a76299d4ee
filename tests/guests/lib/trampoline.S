/* Guest library: AP start-up trampoline. Assembled here, copied to
 * SMP_TRAMPOLINE_ADDR by smp.c; a SIPI with vector SMP_TRAMPOLINE_ADDR >> 12
 * starts an AP at CS:IP = (vector << 8):0 in real mode. */
#include "segments.h"

/* Address of a trampoline label after the copy. */
#define T(x) ((x) - smp_trampoline_start + SMP_TRAMPOLINE_ADDR)

	.section .rodata.trampoline, "a", @progbits
	.code16
	.globl smp_trampoline_start
smp_trampoline_start:
	cli
	cld
	xor %ax, %ax
	mov %ax, %ds
	lgdtl T(tramp_gdt_desc)
	mov %cr0, %eax
	orl $1, %eax
	mov %eax, %cr0
	ljmpl $SEL_KCODE32, $T(tramp32)

	.code32
tramp32:
	mov $SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %cr4, %eax
	or $0x20, %eax                  /* PAE */
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx           /* EFER.LME */
	rdmsr
	or $0x100, %eax
	wrmsr
	mov %cr0, %eax
	or $0x80010001, %eax            /* PG | WP | PE */
	mov %eax, %cr0
	ljmp $SEL_KCODE64, $ap_entry64

	.p2align 2
tramp_gdt_desc:
	.word GDT_ENTRIES * 8 - 1
	.long gdt
	.globl smp_trampoline_end
smp_trampoline_end:

	.text
	.code64
ap_entry64:
	mov $SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	/* Stack slot by arrival order; APs beyond the slots just park. */
	mov $1, %eax
	lock xaddl %eax, smp_next_index(%rip)
	cmp $SMP_MAX_CPUS, %eax
	jae 1f
	mov %eax, %edi
	imul $AP_STACK_SIZE, %rax, %rcx
	add $ap_stacks, %rcx
	mov %rcx, %rsp
	call smp_ap_main
1:	cli
	hlt
	jmp 1b

	.section .stack, "aw", @nobits
	.p2align 4
	/* Slot i (1-based) is the AP_STACK_SIZE bytes below ap_stacks + i * size. */
ap_stacks:
	.skip (SMP_MAX_CPUS - 1) * AP_STACK_SIZE
