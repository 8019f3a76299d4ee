/* Guest library: AP bring-up with INIT-SIPI-SIPI (Intel SDM vol. 3 8.4.4 /
 * MP spec B.4). APs run a trampoline copied to SMP_TRAMPOLINE_ADDR (real mode
 * -> protected mode -> long mode), take a stack slot with an atomic counter,
 * load the shared IDT and call the guest's function. */
#ifndef GUEST_SMP_H
#define GUEST_SMP_H

#include "segments.h"

/* Called on each AP with its boot order index (1, 2, ...; the BSP is 0).
 * When it returns, the AP halts with interrupts off. */
typedef void (*smp_ap_fn)(unsigned index);

/* Broadcast INIT-SIPI-SIPI to all CPUs but this one. Does not wait for them:
 * callers count check-ins themselves. 0, or -1 when an IPI never left the
 * LAPIC or low memory is unusable (message printed). */
int smp_start_aps(smp_ap_fn fn);

/* Spin about n iterations (a rough delay: only its order matters). */
void smp_spin(unsigned long n);

#endif
