/* What hardware would have done where KVM's instruction emulator gives up.
 * When KVM runs guest kernel code in its emulator (software KVMs such as PVM,
 * or real mode without unrestricted guest), some instructions are refused with
 * an emulation failure. Where the architectural outcome is certain and
 * independent of unemulated state, wafer produces it; otherwise it reports the
 * instruction bytes and stops the VM. */
#ifndef WAFER_ARCH_X86_EMULATE_FIXUP_H
#define WAFER_ARCH_X86_EMULATE_FIXUP_H

#include <stddef.h>
#include <stdint.h>

enum fixup_action {
	FIXUP_NONE,   /* cannot be handled: report and stop */
	FIXUP_BP,     /* int3: advance RIP by 1 and inject #BP (a trap) */
	FIXUP_UD,     /* instruction is invalid in the current state: inject #UD */
};

/* Classify the instruction at RIP: insn holds up to n bytes fetched from the
 * guest; cr4 is the guest's CR4 (XSAVE-family instructions fault with #UD
 * while CR4.OSXSAVE is clear). *len gets the bytes to skip for traps. */
enum fixup_action emulate_fixup_classify(const uint8_t *insn, size_t n, uint64_t cr4,
					 unsigned *len);

struct vcpu;
/* Handle an emulation failure on v: 1 if the guest may continue, 0 if not,
 * with a one-line diagnosis (exit reason, RIP, instruction bytes) in out. */
int emulate_fixup_handle(struct vcpu *v, char *out, size_t outlen);

#endif
