/* Guest library: local APIC in xAPIC mode (MMIO at 0xFEE00000; Intel SDM
 * vol. 3 ch. 10): ID, enable, EOI, timer and IPIs. */
#ifndef GUEST_LAPIC_H
#define GUEST_LAPIC_H

#include <stdint.h>

#define LAPIC_BASE 0xfee00000u

#define LAPIC_ID      0x020
#define LAPIC_VERSION 0x030
#define LAPIC_TPR     0x080
#define LAPIC_EOI     0x0b0
#define LAPIC_SVR     0x0f0
#define LAPIC_ICR_LO  0x300
#define LAPIC_ICR_HI  0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_TIMER_INIT  0x380
#define LAPIC_TIMER_CUR   0x390
#define LAPIC_TIMER_DIV   0x3e0

#define LAPIC_SPURIOUS_VECTOR 0xff

uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t v);
unsigned lapic_id(void);
/* Software-enable via SVR (spurious vector LAPIC_SPURIOUS_VECTOR), TPR 0,
 * LINT0/LINT1 masked so the legacy PIC cannot inject behind our back. */
void lapic_enable(void);
void lapic_eoi(void);
/* Periodic timer: vector, initial count, divide by 16. */
void lapic_timer_periodic(uint8_t vector, uint32_t count);
void lapic_timer_stop(void);
/* icr_lo is the full low ICR word (vector, delivery mode, level, shorthand);
 * waits (bounded) for the send to finish; 0 or -1 when it never did. */
int lapic_send_ipi(uint32_t dest_apic_id, uint32_t icr_lo);

#endif
