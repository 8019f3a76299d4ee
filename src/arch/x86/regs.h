/* Initial x86 register state for the boot vCPU and per-vCPU MSR/FPU/LAPIC
 * setup, derived from the boot plan and the GDT the loader wrote. */
#ifndef WAFER_ARCH_X86_REGS_H
#define WAFER_ARCH_X86_REGS_H

#include <linux/kvm.h>
#include <stdint.h>
#include "arch/x86/boot.h"
#include "vmm/memory.h"

/* Decode a GDT descriptor into KVM's segment form. */
void regs_segment_from_desc(uint64_t desc, uint16_t selector, struct kvm_segment *seg);
/* Fill regs/sregs (sregs must hold KVM's current values) for the boot mode. */
int regs_boot_setup(const struct guest_mem *m, const struct boot_plan *plan,
		    struct kvm_regs *regs, struct kvm_sregs *sregs);
/* Set the architectural MSRs, FPU and LAPIC LINT0/LINT1 of a vCPU fd. */
int regs_vcpu_init(int vcpu_fd, unsigned index);

#endif
