/* Guest library: I/O APIC redirection (82093AA datasheet: IOREGSEL at +0,
 * IOWIN at +0x10, redirection entry n at registers 0x10 + 2n). */
#ifndef GUEST_IOAPIC_H
#define GUEST_IOAPIC_H

#include <stdint.h>

#define IOAPIC_BASE 0xfec00000u

/* ISA-style: edge triggered, active high, fixed delivery, physical
 * destination apic_id, unmasked. */
void ioapic_route(unsigned pin, uint8_t vector, unsigned apic_id);
void ioapic_mask(unsigned pin);
/* Number of redirection entries the IOAPIC reports. */
unsigned ioapic_pins(void);

#endif
