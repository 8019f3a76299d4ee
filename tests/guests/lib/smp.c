/* Guest library: INIT-SIPI-SIPI bring-up of the APs (see smp.h). */
#include <stdint.h>

#include "idt.h"
#include "io.h"
#include "lapic.h"
#include "pvh.h"
#include "serial.h"
#include "smp.h"
#include "string.h"

#define ICR_INIT          0x00000500
#define ICR_STARTUP       0x00000600
#define ICR_LEVEL_ASSERT  0x00004000
#define ICR_ALL_BUT_SELF  0x000c0000

extern const char smp_trampoline_start[], smp_trampoline_end[];

/* Next AP stack slot; trampoline.S takes slots with LOCK XADD. */
int smp_next_index = 1;
static smp_ap_fn ap_fn;

void smp_ap_main(unsigned index);
void smp_ap_main(unsigned index)
{
	idt_load();
	ap_fn(index);
}

void smp_spin(unsigned long n)
{
	while (n--)
		cpu_relax();
}

int smp_start_aps(smp_ap_fn fn)
{
	uintptr_t cl = (uintptr_t)pvh_cmdline;
	size_t len = (size_t)(smp_trampoline_end - smp_trampoline_start);

	if (cl >= SMP_TRAMPOLINE_ADDR && cl < SMP_TRAMPOLINE_ADDR + 0x1000) {
		printf("smp: cmdline at 0x%lx overlaps the trampoline page\n", (unsigned long)cl);
		return -1;
	}
	memcpy((void *)SMP_TRAMPOLINE_ADDR, smp_trampoline_start, len);
	ap_fn = fn;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	lapic_enable();
	if (lapic_send_ipi(0, ICR_ALL_BUT_SELF | ICR_LEVEL_ASSERT | ICR_INIT))
		goto stuck;
	/* The SDM's 10 ms INIT-to-SIPI wait matters only on real hardware;
	 * virtual CPUs are ready at once, and spins are costly when ring 0 is
	 * emulated. */
	smp_spin(1000);
	for (int i = 0; i < 2; i++) {
		if (lapic_send_ipi(0, ICR_ALL_BUT_SELF | ICR_STARTUP |
				   (SMP_TRAMPOLINE_ADDR >> 12)))
			goto stuck;
		smp_spin(200);
	}
	return 0;
stuck:
	printf("smp: IPI stuck in the LAPIC (ICR=0x%x)\n", lapic_read(LAPIC_ICR_LO));
	return -1;
}
