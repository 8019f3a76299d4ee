/* Guest library: PVH entry (Xen PVH ABI: 32-bit protected mode, paging off,
 * EBX = hvm_start_info), the GDT, static identity page tables, and the switch
 * to long mode. Tables are assembled, not built at run time: ring-0
 * instructions are expensive on wafer's target, page-table bytes are not. */
#include "segments.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define CR0_PE  0x00000001
#define CR0_WP  0x00010000
#define CR0_PG  0x80000000
#define CR4_PAE 0x00000020
#define MSR_EFER 0xc0000080
#define EFER_LME 0x00000100
#define PTE_P   0x001
#define PTE_RW  0x002
#define PTE_US  0x004   /* every page is user-accessible: run_user() needs it */
#define PTE_PWT 0x008
#define PTE_PCD 0x010
#define PTE_PS  0x080

	/* 4-byte aligned with a 4-byte descriptor: the plain ELF note layout
	 * that both wafer's and QEMU's loaders read. */
	.section .note.Xen, "a", @note
	.p2align 2
	.long 4
	.long 4
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long pvh_entry32

	.section .text.boot, "ax", @progbits
	.code32
	.globl pvh_entry32
pvh_entry32:
	cli
	cld
	mov %ebx, %esi
	lgdt gdt_desc
	ljmp $SEL_KCODE32, $1f
1:	mov $SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %cr4, %eax
	or $CR4_PAE, %eax
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	rdmsr
	or $EFER_LME, %eax
	wrmsr
	mov %cr0, %eax
	or $(CR0_PG | CR0_WP | CR0_PE), %eax
	mov %eax, %cr0
	ljmp $SEL_KCODE64, $entry64

	.code64
entry64:
	mov $SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	mov $boot_stack + BOOT_STACK_SIZE, %rsp
	/* .bss is small by design (big buffers go in .stack, left dirty). */
	mov $__bss_start, %rdi
	mov $__bss_end, %rcx
	sub %rdi, %rcx
	shr $3, %rcx                    /* guest.ld 8-aligns both ends */
	rep stosq
	mov %esi, %edi
	call guest_start
2:	cli
	hlt
	jmp 2b

	.section .data.boot, "aw", @progbits
	.p2align 3
	.globl gdt
gdt:
	.quad 0
	.quad 0x00af9a000000ffff        /* SEL_KCODE64 */
	.quad 0x00cf92000000ffff        /* SEL_KDATA */
	.quad 0x00cf9a000000ffff        /* SEL_KCODE32 */
	.quad 0x00cff2000000ffff        /* SEL_UDATA */
	.quad 0x00affa000000ffff        /* SEL_UCODE64 */
	.quad 0, 0                      /* SEL_TSS */
gdt_end:
	.p2align 3
	.globl gdt_desc
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt

	/* 4 GiB identity map, 2 MiB pages; 3..4 GiB (MMIO hole: IOAPIC,
	 * LAPIC) uncached. */
	.section .data.pagetables, "aw", @progbits
	.p2align 12
	.globl pml4
pml4:
	.quad pdpt + (PTE_P | PTE_RW | PTE_US)
	.fill 511, 8, 0
pdpt:
	.set i, 0
	.rept 4
	.quad pd + i * 4096 + (PTE_P | PTE_RW | PTE_US)
	.set i, i + 1
	.endr
	.fill 508, 8, 0
pd:
	.set i, 0
	.rept 2048
	.if i >= 1536
	.quad (i << 21) | (PTE_P | PTE_RW | PTE_US | PTE_PS | PTE_PCD | PTE_PWT)
	.else
	.quad (i << 21) | (PTE_P | PTE_RW | PTE_US | PTE_PS)
	.endif
	.set i, i + 1
	.endr

	.section .stack, "aw", @nobits
	.p2align 4
boot_stack:
	.skip BOOT_STACK_SIZE
