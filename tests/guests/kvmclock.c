/* Test guest: kvmclock. Checks the KVM paravirt leaf advertises
 * CLOCKSOURCE2, registers a pvclock page through MSR_KVM_SYSTEM_TIME_NEW, and
 * checks the clock reads consistently (even version, non-zero multiplier) and
 * moves forward across a short busy wait. */
#include <stdint.h>

#include "pvh.h"
#include "serial.h"

#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define KVM_FEATURE_CLOCKSOURCE2 3

struct pvclock {
	uint32_t version, pad0;
	uint64_t tsc_timestamp, system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags, pad[2];
} __attribute__((packed, aligned(64)));

static volatile struct pvclock clk;

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static uint64_t kvmclock_read_ns(void)
{
	uint32_t v;
	uint64_t ns;
	do {
		v = clk.version;
		__asm__ volatile("" ::: "memory");
		uint64_t delta = rdtsc() - clk.tsc_timestamp;
		if (clk.tsc_shift >= 0)
			delta <<= clk.tsc_shift;
		else
			delta >>= -clk.tsc_shift;
		ns = clk.system_time + (uint64_t)(((unsigned __int128)delta * clk.tsc_to_system_mul) >> 32);
		__asm__ volatile("" ::: "memory");
	} while ((v & 1) || v != clk.version);
	return ns;
}

int guest_main(struct hvm_start_info *si)
{
	uint32_t a, b, c, d;
	(void)si;

	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x40000001), "c"(0));
	if (!(a & (1u << KVM_FEATURE_CLOCKSOURCE2))) {
		printf("kvmclock: FAIL: CLOCKSOURCE2 not advertised (0x40000001 eax=0x%x)\n", a);
		return 1;
	}
	uint64_t pa = (uint64_t)(uintptr_t)&clk; /* identity-mapped */
	__asm__ volatile("wrmsr" : : "c"(MSR_KVM_SYSTEM_TIME_NEW), "a"((uint32_t)(pa | 1)),
			 "d"((uint32_t)(pa >> 32)));
	if (clk.version == 0 || clk.tsc_to_system_mul == 0) {
		printf("kvmclock: FAIL: pvclock page not filled (version %u mul %u)\n",
		       clk.version, clk.tsc_to_system_mul);
		return 1;
	}
	uint64_t t0 = kvmclock_read_ns();
	uint64_t tsc0 = rdtsc();
	while (rdtsc() - tsc0 < 10000000)  /* a few ms of TSC */
		;
	uint64_t t1 = kvmclock_read_ns();
	if (t1 <= t0) {
		printf("kvmclock: FAIL: clock did not advance (%llu -> %llu)\n",
		       (unsigned long long)t0, (unsigned long long)t1);
		return 1;
	}
	printf("kvmclock ok: advanced %llu ns\n", (unsigned long long)(t1 - t0));
	return 0;
}
