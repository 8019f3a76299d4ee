/* Boot-time register state. LINUX64 follows Documentation/arch/x86/boot.rst
 * "64-bit Boot Protocol" (long mode, identity paging, __BOOT_CS/__BOOT_DS flat,
 * RSI = boot_params); PVH32 follows the Xen PVH ABI (flat 32-bit protected mode,
 * paging off, EBX = hvm_start_info). */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/layout.h"
#include "arch/x86/regs.h"
#include "vmm/log.h"

#define CR0_PE 0x1ull
#define CR0_ET 0x10ull
#define CR0_NE 0x20ull
#define CR0_PG 0x80000000ull
#define CR4_PAE 0x20ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull

#define BOOT_STACK    0x8ff0ull

void regs_segment_from_desc(uint64_t d, uint16_t selector, struct kvm_segment *seg)
{
	uint32_t limit = (uint32_t)((d & 0xffff) | (((d >> 48) & 0xf) << 16));
	memset(seg, 0, sizeof(*seg));
	seg->base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
	seg->g = (d >> 55) & 1;
	seg->limit = seg->g ? (limit << 12) | 0xfff : limit;
	seg->selector = selector;
	seg->type = (d >> 40) & 0xf;
	seg->s = (d >> 44) & 1;
	seg->dpl = (d >> 45) & 3;
	seg->present = (d >> 47) & 1;
	seg->avl = (d >> 52) & 1;
	seg->l = (d >> 53) & 1;
	seg->db = (d >> 54) & 1;
	/* A loaded code/data segment has its accessed bit set; VM entry checks it. */
	if (seg->s)
		seg->type |= 1;
}

int regs_boot_setup(const struct guest_mem *m, const struct boot_plan *plan,
		    struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	uint64_t code, data;
	struct kvm_segment cs, ds, tr;

	/* The loader wrote the GDT; decode it so the hidden segment state and
	 * the descriptors the guest may reload are the same thing. */
	if (gmem_read(m, BOOT_GDT_ADDR + BOOT_CS, &code, 8) ||
	    gmem_read(m, BOOT_GDT_ADDR + BOOT_DS, &data, 8))
		return -EFAULT;
	regs_segment_from_desc(code, BOOT_CS, &cs);
	regs_segment_from_desc(data, BOOT_DS, &ds);

	memset(&tr, 0, sizeof(tr));
	tr.limit = 0x67;
	tr.type = 11; /* busy 32/64-bit TSS */
	tr.present = 1;
	tr.selector = 0;

	sregs->cs = cs;
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = ds;
	sregs->tr = tr;
	sregs->ldt.present = 0;
	sregs->ldt.unusable = 1;
	sregs->gdt.base = BOOT_GDT_ADDR;
	sregs->gdt.limit = BOOT_GDT_ENTRIES * 8 - 1;
	sregs->idt.base = BOOT_IDT_ADDR;
	sregs->idt.limit = 0;

	memset(regs, 0, sizeof(*regs));
	regs->rflags = 2;
	regs->rip = plan->entry;

	switch (plan->mode) {
	case BOOT_MODE_LINUX64:
		sregs->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
		sregs->cr3 = BOOT_PML4_ADDR;
		sregs->cr4 = CR4_PAE;
		sregs->efer = EFER_LME | EFER_LMA;
		regs->rsi = plan->params_gpa;
		regs->rsp = regs->rbp = BOOT_STACK;
		break;
	case BOOT_MODE_PVH32:
		sregs->cr0 = CR0_PE | CR0_ET;
		sregs->cr3 = 0;
		sregs->cr4 = 0;
		sregs->efer = 0;
		regs->rbx = plan->params_gpa;
		break;
	default:
		return -EINVAL;
	}
	return 0;
}

#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MSR_STAR              0xc0000081
#define MSR_LSTAR             0xc0000082
#define MSR_CSTAR             0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_EXTINT (7u << 8)
#define APIC_MODE_NMI    (4u << 8)

static int regs_set_msrs(int fd, unsigned index)
{
	static const struct { uint32_t index; uint64_t value; } init[] = {
		{ MSR_IA32_SYSENTER_CS, 0 },
		{ MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 },
		{ MSR_STAR, 0 },
		{ MSR_LSTAR, 0 },
		{ MSR_CSTAR, 0 },
		{ MSR_SYSCALL_MASK, 0 },
		{ MSR_KERNEL_GS_BASE, 0 },
		{ MSR_IA32_MISC_ENABLE, 1 },              /* fast string operations */
		{ MSR_MTRR_DEF_TYPE, (1u << 11) | 6 },    /* MTRRs on, default write-back */
	};
	enum { N = sizeof(init) / sizeof(init[0]) };
	/* struct kvm_msrs ends in a flexible array: room for N entries after it. */
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + N * sizeof(struct kvm_msr_entry)];
	} msrs;

	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = N;
	for (unsigned i = 0; i < N; i++) {
		msrs.hdr.entries[i].index = init[i].index;
		msrs.hdr.entries[i].data = init[i].value;
	}
	int r = ioctl(fd, KVM_SET_MSRS, &msrs);
	if (r < 0)
		return -errno;
	/* KVM stops at the first MSR it refuses; the rest keep their reset
	 * values, which only costs the guest a default it can set itself. */
	if (r < N)
		log_warn("vcpu %u: KVM refused MSR 0x%x; continuing with its reset value",
			 index, init[r].index);
	return 0;
}

int regs_vcpu_init(int fd, unsigned index)
{
	struct kvm_fpu fpu;
	struct kvm_lapic_state lapic;
	int rc = regs_set_msrs(fd, index);
	if (rc)
		return rc;

	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;

	/* Virtual wire mode: PIC output through LINT0 (ExtINT), NMI on LINT1. */
	if (ioctl(fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;
	uint32_t lvt0, lvt1;
	memcpy(&lvt0, &lapic.regs[APIC_LVT0], 4);
	memcpy(&lvt1, &lapic.regs[APIC_LVT1], 4);
	lvt0 = (lvt0 & ~0x700u) | APIC_MODE_EXTINT;
	lvt1 = (lvt1 & ~0x700u) | APIC_MODE_NMI;
	memcpy(&lapic.regs[APIC_LVT0], &lvt0, 4);
	memcpy(&lapic.regs[APIC_LVT1], &lvt1, 4);
	if (ioctl(fd, KVM_SET_LAPIC, &lapic) < 0)
		return -errno;
	return 0;
}
