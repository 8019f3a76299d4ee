/* Guest library: 8254 PIT channels 0 and 2 and the legacy 8259 PIC pair, which test
 * guests only ever remap out of the exception range and mask (interrupts go
 * through the IOAPIC). */
#ifndef GUEST_PIT_H
#define GUEST_PIT_H

#include <stdint.h>

#define PIT_HZ 1193182u
#define PIT_IRQ 0

/* Channel 0, mode 2 (rate generator), 16-bit divisor (0 means 65536). */
void pit_periodic(uint16_t divisor);
/* Channel 0 one-shot with the longest count, i.e. effectively stopped. */
void pit_stop(void);
/* Channel 2 one-shot (mode 0) of count input ticks, gated through port
 * 0x61 with the speaker off; pit_ch2_done says when OUT2 rose (never where
 * port 0x61 is not emulated: callers bound their polls). */
void pit_ch2_start(uint16_t count);
int pit_ch2_done(void);
/* Remap the 8259s to vectors 0x20-0x2f and mask every line. */
void pic_disable(void);

#endif
