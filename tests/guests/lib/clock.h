/* Guest library: a nanosecond clock for timestamps. kvmclock (KVM's pvclock
 * ABI, registered through MSR_KVM_SYSTEM_TIME_NEW) when the hypervisor
 * advertises it; otherwise the TSC, calibrated once against PIT channel 2
 * (the speaker-gate method, ports 0x42/0x43/0x61). Readable from ring 3:
 * the pvclock page is ordinary (user-accessible) memory. */
#ifndef GUEST_CLOCK_H
#define GUEST_CLOCK_H

#include <stdint.h>

#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define KVM_CPUID_SIGNATURE 0x40000000
#define KVM_CPUID_FEATURES  0x40000001
#define KVM_FEATURE_CLOCKSOURCE2 3

/* KVM's pvclock_vcpu_time_info (Documentation/virt/kvm/x86/msr.rst). */
struct pvclock {
	uint32_t version, pad0;
	uint64_t tsc_timestamp, system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags, pad[2];
} __attribute__((packed, aligned(64)));

extern volatile struct pvclock kvmclock_page;

/* The hypervisor leaf 0x40000001 value when CPUID says "KVMKVMKVM" and the
 * leaf exists, else 0. */
uint32_t kvm_cpuid_features(void);
/* Points MSR_KVM_SYSTEM_TIME_NEW at kvmclock_page (enable bit set). */
void kvmclock_enable(void);
/* Nanoseconds from kvmclock_page (retries while the host updates it). */
uint64_t kvmclock_ns(void);

enum clock_source { CLOCK_NONE, CLOCK_KVM, CLOCK_TSC, CLOCK_TSC_UNCALIBRATED };

/* Picks and starts a source: kvmclock if CLOCKSOURCE2 is advertised, else a
 * calibrated TSC (~10 ms of PIT polling), else the TSC taken as 1 GHz. */
enum clock_source clock_init(void);
/* "kvmclock", "tsc", "tsc-uncalibrated" (or "none" before clock_init). */
const char *clock_name(void);
/* Nanoseconds since an arbitrary origin, monotonic. */
uint64_t clock_ns(void);
/* TSC ticks per second as calibrated (0 when kvmclock is the source). */
uint64_t clock_tsc_hz(void);

#endif
