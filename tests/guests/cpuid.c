/* Test guest: what CPUID the VMM presents. Prints the features the CPU
 * template decides (CX16, XSAVE, AVX, AVX2, SSE4.2), the APIC ID and logical
 * count from leaf 1, and the KVM paravirt signature; the host side compares
 * them with the template it asked for. */
#include <stdint.h>

#include "pvh.h"
#include "serial.h"

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(sub));
}

int guest_main(struct hvm_start_info *si)
{
	uint32_t l0[4], l1[4], l7[4] = { 0 }, hv[4];
	char sig[13];
	(void)si;

	cpuid(0, 0, l0);
	cpuid(1, 0, l1);
	if (l0[0] >= 7)
		cpuid(7, 0, l7);
	cpuid(0x40000000, 0, hv);
	for (int i = 0; i < 4; i++) {
		sig[i] = (char)(hv[1] >> (8 * i));
		sig[4 + i] = (char)(hv[2] >> (8 * i));
		sig[8 + i] = (char)(hv[3] >> (8 * i));
	}
	sig[12] = 0;
	printf("cpuid: apic=%u logical=%u hypervisor=%u sig=%s\n", l1[1] >> 24,
	       (l1[1] >> 16) & 0xff, (l1[2] >> 31) & 1, sig);
	printf("cpuid: cx16=%u xsave=%u avx=%u sse42=%u avx2=%u\n", (l1[2] >> 13) & 1,
	       (l1[2] >> 26) & 1, (l1[2] >> 28) & 1, (l1[2] >> 20) & 1, (l7[1] >> 5) & 1);
	return 0;
}
