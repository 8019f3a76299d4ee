/* vCPU threads: creation, architectural reset state, and the KVM_RUN loop that
 * routes exits to the buses and turns fatal exits into a VM stop. */
#ifndef WAFER_VMM_VCPU_H
#define WAFER_VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdint.h>

struct vm;

#define VCPU_EXIT_REASONS 64

struct vcpu {
	struct vm *vm;
	unsigned index;          /* also the APIC ID */
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	int started;
	uint64_t exits[VCPU_EXIT_REASONS]; /* per KVM exit reason, for stats */
	uint64_t fixups;                   /* emulation failures turned into exceptions */
};

/* Create the KVM vCPU, set CPUID, MSRs, FPU and LAPIC LVTs; the BSP (index 0)
 * also gets the boot registers from vm->plan. 0 or -errno (message printed). */
int vcpu_create(struct vm *vm, struct vcpu *v, unsigned index);
int vcpu_start(struct vcpu *v);
/* Make KVM_RUN return promptly (from any thread). */
void vcpu_kick(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);
/* Install the no-op kick signal handler (once per process). */
void vcpu_signals_init(void);

#endif
