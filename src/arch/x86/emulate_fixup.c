/* Emulation-failure fixups (see emulate_fixup.h): int3 -> #BP; XSAVE family
 * with CR4.OSXSAVE = 0 -> #UD (SDM vol. 2, XSAVE/XRSTOR/XGETBV "Protected Mode
 * Exceptions"). Everything else is reported with its bytes. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/emulate_fixup.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define CR4_OSXSAVE (1ull << 18)
#define VEC_UD 6
#define VEC_BP 3

enum fixup_action emulate_fixup_classify(const uint8_t *insn, size_t n, uint64_t cr4,
					 unsigned *len)
{
	size_t i = 0;

	if (n >= 1 && insn[0] == 0xcc) {
		*len = 1;
		return FIXUP_BP;
	}
	/* REX prefixes only: 66/F2/F3 turn 0F AE into different instructions. */
	while (i < n && (insn[i] & 0xf0) == 0x40)
		i++;
	if (cr4 & CR4_OSXSAVE)
		return FIXUP_NONE;
	if (i + 2 < n && insn[i] == 0x0f && insn[i + 1] == 0x01 &&
	    (insn[i + 2] == 0xd0 || insn[i + 2] == 0xd1)) {
		*len = 0;
		return FIXUP_UD; /* xgetbv / xsetbv */
	}
	if (i + 2 < n && insn[i] == 0x0f && (insn[i + 1] == 0xae || insn[i + 1] == 0xc7)) {
		uint8_t modrm = insn[i + 2];
		unsigned mod = modrm >> 6, reg = (modrm >> 3) & 7;
		if (mod == 3)
			return FIXUP_NONE; /* fences, rdrand, ... */
		/* 0F AE /4 xsave, /5 xrstor, /6 xsaveopt; 0F C7 /3 xrstors, /4 xsavec, /5 xsaves */
		if ((insn[i + 1] == 0xae && reg >= 4 && reg <= 6) ||
		    (insn[i + 1] == 0xc7 && reg >= 3 && reg <= 5)) {
			*len = 0;
			return FIXUP_UD;
		}
	}
	return FIXUP_NONE;
}

/* Fetch up to 15 instruction bytes at CS:RIP through the guest's page tables. */
static size_t emulate_fetch(struct vcpu *v, const struct kvm_sregs *sregs, uint64_t rip,
			    uint8_t *buf)
{
	size_t got = 0;
	uint64_t lin = sregs->cs.base + rip;

	while (got < 15) {
		struct kvm_translation tr = { .linear_address = lin + got };
		if (ioctl(v->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
			break;
		size_t in_page = 4096 - ((lin + got) & 4095);
		size_t want = 15 - got < in_page ? 15 - got : in_page;
		const uint8_t *p = gmem_ptr(&v->vm->mem, tr.physical_address, want);
		if (!p)
			break;
		memcpy(buf + got, p, want);
		got += want;
	}
	return got;
}

static int emulate_inject(struct vcpu *v, struct kvm_regs *regs, unsigned len, uint8_t vector)
{
	struct kvm_vcpu_events ev;

	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	if (ev.exception.injected || ev.exception.pending)
		return -EBUSY; /* a fault while delivering a fault is not ours to fold */
	regs->rip += len;
	if (ioctl(v->fd, KVM_SET_REGS, regs) < 0)
		return -errno;
	ev.exception.injected = 1;
	ev.exception.nr = vector;
	ev.exception.has_error_code = 0;
	ev.exception.error_code = 0;
	ev.flags = 0;
	if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	return 0;
}

int emulate_fixup_handle(struct vcpu *v, char *out, size_t outlen)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint8_t insn[15];
	unsigned len = 0;
	size_t n = 0;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
		snprintf(out, outlen, "vcpu %u: KVM internal error (suberror %u); registers unreadable: %s",
			 v->index, v->run->internal.suberror, strerror(errno));
		return 0;
	}
	if (v->run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
		n = emulate_fetch(v, &sregs, regs.rip, insn);
		enum fixup_action a = emulate_fixup_classify(insn, n, sregs.cr4, &len);
		uint8_t vec = a == FIXUP_BP ? VEC_BP : VEC_UD;
		if (a != FIXUP_NONE && emulate_inject(v, &regs, len, vec) == 0) {
			v->fixups++;
			return 1;
		}
	}

	int off = snprintf(out, outlen, "vcpu %u: KVM internal error (suberror %u%s) at RIP 0x%llx CS.base 0x%llx CR0 0x%llx, bytes:",
			   v->index, v->run->internal.suberror,
			   v->run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ? ": emulation failure" : "",
			   (unsigned long long)regs.rip, (unsigned long long)sregs.cs.base,
			   (unsigned long long)sregs.cr0);
	for (size_t i = 0; i < n && off > 0 && (size_t)off < outlen; i++)
		off += snprintf(out + off, outlen - (size_t)off, " %02x", insn[i]);
	if (n == 0 && off > 0 && (size_t)off < outlen)
		snprintf(out + off, outlen - (size_t)off, " (unreadable)");
	return 0;
}
