/* Guest library: kvmclock and the PIT-calibrated TSC (see clock.h). */
#include "clock.h"
#include "io.h"
#include "pit.h"

#define CAL_COUNT  11932u           /* ~10 ms of PIT input clock */
/* A PIT that never reaches terminal count (port 0x61 not emulated) must not
 * hang the guest; real polls take a few thousand iterations. */
#define CAL_MAX_POLLS 10000000ul

volatile struct pvclock kvmclock_page;

static enum clock_source source;
static uint64_t tsc_hz, tsc_mult;   /* ns = (delta * tsc_mult) >> 32 */

static void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

uint32_t kvm_cpuid_features(void)
{
	uint32_t a, b, c, d;

	cpuid(KVM_CPUID_SIGNATURE, &a, &b, &c, &d);
	/* "KVMKVMKVM\0\0\0" in EBX, ECX, EDX. */
	if (b != 0x4b4d564b || c != 0x564b4d56 || d != 0x4d || a < KVM_CPUID_FEATURES)
		return 0;
	cpuid(KVM_CPUID_FEATURES, &a, &b, &c, &d);
	return a;
}

void kvmclock_enable(void)
{
	uint64_t pa = (uint64_t)(uintptr_t)&kvmclock_page;   /* identity-mapped */

	__asm__ volatile("wrmsr" : : "c"(MSR_KVM_SYSTEM_TIME_NEW), "a"((uint32_t)(pa | 1)),
			 "d"((uint32_t)(pa >> 32)));
}

uint64_t kvmclock_ns(void)
{
	uint32_t v;
	uint64_t ns;

	do {
		v = kvmclock_page.version;
		__asm__ volatile("" ::: "memory");
		uint64_t delta = tsc_read() - kvmclock_page.tsc_timestamp;
		if (kvmclock_page.tsc_shift >= 0)
			delta <<= kvmclock_page.tsc_shift;
		else
			delta >>= -kvmclock_page.tsc_shift;
		ns = kvmclock_page.system_time +
		     (uint64_t)(((unsigned __int128)delta * kvmclock_page.tsc_to_system_mul) >> 32);
		__asm__ volatile("" ::: "memory");
	} while ((v & 1) || v != kvmclock_page.version);
	return ns;
}

/* TSC ticks over CAL_COUNT PIT clocks: channel 2 in mode 0 counts down with
 * its gate held high and raises OUT at terminal count. 0 if it never does. */
static uint64_t tsc_calibrate(void)
{
	uint64_t t0, t1;
	unsigned long i;

	pit_ch2_start((uint16_t)CAL_COUNT);
	t0 = tsc_read();
	for (i = 0; i < CAL_MAX_POLLS; i++)
		if (pit_ch2_done())
			break;
	t1 = tsc_read();
	if (i == CAL_MAX_POLLS || t1 <= t0)
		return 0;
	return (t1 - t0) * PIT_HZ / CAL_COUNT;
}

enum clock_source clock_init(void)
{
	if (kvm_cpuid_features() & (1u << KVM_FEATURE_CLOCKSOURCE2)) {
		kvmclock_enable();
		if (kvmclock_page.tsc_to_system_mul) {
			source = CLOCK_KVM;
			return source;
		}
	}
	tsc_hz = tsc_calibrate();
	source = CLOCK_TSC;
	if (!tsc_hz) {
		tsc_hz = 1000000000ull;
		source = CLOCK_TSC_UNCALIBRATED;
	}
	tsc_mult = (1000000000ull << 32) / tsc_hz;
	return source;
}

const char *clock_name(void)
{
	switch (source) {
	case CLOCK_KVM: return "kvmclock";
	case CLOCK_TSC: return "tsc";
	case CLOCK_TSC_UNCALIBRATED: return "tsc-uncalibrated";
	default: return "none";
	}
}

uint64_t clock_ns(void)
{
	if (source == CLOCK_KVM)
		return kvmclock_ns();
	return (uint64_t)(((unsigned __int128)tsc_read() * tsc_mult) >> 32);
}

uint64_t clock_tsc_hz(void)
{
	return source == CLOCK_KVM ? 0 : tsc_hz;
}
