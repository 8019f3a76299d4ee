/* x86 KVM state of a VM and its vCPUs for snapshots and migration: vCPU
 * registers, FPU/XSAVE, XCRs, debug registers, MSRs, LAPIC, MP state and
 * pending events; the in-kernel PIC/IOAPIC, PIT and kvmclock. */
#ifndef WAFER_STATE_CPU_H
#define WAFER_STATE_CPU_H

#include <stddef.h>

#include "state/format.h"

struct vm;
struct vcpu;

/* Sections "vcpu"/index. The vCPU must be outside KVM_RUN (VM paused). */
int state_vcpu_save(struct vcpu *v, struct snap_buf *b);
/* Set a freshly created vCPU to the saved state, in the order KVM needs
 * (sregs before regs, LAPIC before MSRs, pending events last). 0 or -errno
 * with err filled. */
int state_vcpu_load(struct vcpu *v, const struct snap_reader *r, char *err, size_t errlen);

/* Sections "irqchip" (PIC master, slave, IOAPIC), "pit", "clock". */
int state_vm_save(struct vm *vm, struct snap_buf *b);
int state_vm_load(struct vm *vm, const struct snap_reader *r, char *err, size_t errlen);

#endif
