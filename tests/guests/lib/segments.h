/* Guest library: GDT layout (built in crt0.S) and the fixed low-memory and
 * stack sizes shared between assembly and C. Plain #defines: included by .S. */
#ifndef GUEST_SEGMENTS_H
#define GUEST_SEGMENTS_H

#define SEL_KCODE64  0x08
#define SEL_KDATA    0x10
#define SEL_KCODE32  0x18   /* PVH entry and AP trampoline, before long mode */
#define SEL_UDATA    0x20   /* DPL 3 */
#define SEL_UCODE64  0x28   /* DPL 3 */
#define SEL_TSS      0x30   /* 16-byte system descriptor, filled by user.c */
#define GDT_ENTRIES  8

#define BOOT_STACK_SIZE  16384
#define AP_STACK_SIZE    8192
#define SMP_MAX_CPUS     64        /* one bit each in a 64-bit check-in map */

/* Real-mode AP trampoline: copied here, started with SIPI vector 0x08. */
#define SMP_TRAMPOLINE_ADDR 0x8000

#endif
