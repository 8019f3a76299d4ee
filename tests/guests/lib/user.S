/* Guest library: ring-3 entry (IRETQ) and the INT 0x80 return gate. See
 * user.h for the protocol. */
#include "segments.h"

#define RFLAGS_IF   0x200
#define RFLAGS_IOPL3 0x3000
#define RFLAGS_FIXED 0x2

	.text
	.code64
	/* uint64_t user_enter(fn, arg, stack_top) */
	.globl user_enter
user_enter:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	pushfq
	mov %rsp, user_saved_rsp(%rip)

	pushfq
	pop %rax
	and $RFLAGS_IF, %eax
	or $(RFLAGS_IOPL3 | RFLAGS_FIXED), %eax

	mov %rdi, %r12                  /* fn, survives into ring 3 */
	mov %rsi, %rdi                  /* arg */
	pushq $(SEL_UDATA | 3)          /* SS */
	push %rdx                       /* RSP */
	push %rax                       /* RFLAGS */
	pushq $(SEL_UCODE64 | 3)        /* CS */
	pushq $user_trampoline          /* RIP */
	iretq

	/* Ring 3 from here. */
user_trampoline:
	call *%r12
	mov %rax, %rdi
	int $0x80
	ud2                             /* not reached: the gate never returns here */

	/* INT 0x80 gate target: ring 0 on the TSS RSP0 stack, IF clear. */
	.globl user_return_gate
user_return_gate:
	mov %rdi, %rax
	mov user_saved_rsp(%rip), %rsp
	mov $SEL_KDATA, %ecx
	mov %ecx, %ss
	mov %ecx, %ds                   /* IRETQ to ring 3 nulled DS and ES */
	mov %ecx, %es
	popfq
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret

	.bss
	.p2align 3
user_saved_rsp:
	.quad 0
