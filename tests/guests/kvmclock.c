/* Test guest: kvmclock. Checks the KVM paravirt leaf advertises
 * CLOCKSOURCE2, registers a pvclock page through MSR_KVM_SYSTEM_TIME_NEW, and
 * checks the clock reads consistently (even version, non-zero multiplier) and
 * moves forward across a short busy wait. */
#include <stdint.h>

#include "clock.h"
#include "io.h"
#include "pvh.h"
#include "serial.h"

int guest_main(struct hvm_start_info *si)
{
	uint32_t features = kvm_cpuid_features();
	(void)si;

	if (!(features & (1u << KVM_FEATURE_CLOCKSOURCE2))) {
		printf("kvmclock: FAIL: CLOCKSOURCE2 not advertised (0x40000001 eax=0x%x)\n", features);
		return 1;
	}
	kvmclock_enable();
	if (kvmclock_page.version == 0 || kvmclock_page.tsc_to_system_mul == 0) {
		printf("kvmclock: FAIL: pvclock page not filled (version %u mul %u)\n",
		       kvmclock_page.version, kvmclock_page.tsc_to_system_mul);
		return 1;
	}
	uint64_t t0 = kvmclock_ns();
	uint64_t tsc0 = tsc_read();
	while (tsc_read() - tsc0 < 10000000)  /* a few ms of TSC */
		;
	uint64_t t1 = kvmclock_ns();
	if (t1 <= t0) {
		printf("kvmclock: FAIL: clock did not advance (%llu -> %llu)\n",
		       (unsigned long long)t0, (unsigned long long)t1);
		return 1;
	}
	printf("kvmclock ok: advanced %llu ns\n", (unsigned long long)(t1 - t0));
	return 0;
}
