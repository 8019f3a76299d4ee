/* CPUID for the guest: KVM_GET_SUPPORTED_CPUID filtered through a CPU template
 * (named: host, baseline; or a JSON file), plus per-vCPU topology (APIC ID in
 * leaf 1/0xB/0x1F, core counts in leaf 4) and the KVM paravirt leaves. */
#ifndef WAFER_ARCH_X86_CPUID_H
#define WAFER_ARCH_X86_CPUID_H

#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

enum cpuid_reg { CPUID_EAX, CPUID_EBX, CPUID_ECX, CPUID_EDX };

/* One masking rule: for leaf/subleaf (subleaf ~0u = every subleaf), clear the
 * bits in `clear` and then set the bits in `set` in register reg. */
#define CPUID_SUBLEAF_ANY 0xffffffffu

struct cpuid_rule {
	uint32_t leaf, subleaf;
	enum cpuid_reg reg;
	uint32_t clear, set;
};

#define CPUID_TEMPLATE_MAX_RULES 64

struct cpuid_template {
	char name[64];
	uint32_t max_basic_leaf;    /* 0 = keep; else cap leaf 0 EAX (and drop leaves above) */
	uint32_t max_ext_leaf;      /* 0 = keep; else cap 0x80000000 EAX */
	unsigned nrules;
	struct cpuid_rule rules[CPUID_TEMPLATE_MAX_RULES];
};

/* Named template ("host", "baseline") or, when name contains '/' or ends in
 * .json, a JSON file. 0 or -errno; err says what is wrong (file, key). */
int cpuid_template_load(const char *name_or_path, struct cpuid_template *t,
			char *err, size_t errlen);
/* Parse a JSON template from a string (used by the loader and the tests). */
int cpuid_template_parse_json(const char *json, struct cpuid_template *t,
			      char *err, size_t errlen);

/* Apply template rules to a supported-CPUID table in place, cap the leaf
 * ranges, then clear every feature whose prerequisite is now missing (AVX
 * without XSAVE, leaf 0xD without XSAVE, ...). */
void cpuid_template_apply(const struct cpuid_template *t, struct kvm_cpuid2 *c);

/* Per-vCPU fixups: APIC ID, logical CPU counts, hypervisor bit, KVM signature
 * leaves. apic_id = vCPU index; ncpus = total vCPUs (one core per vCPU,
 * one thread per core, one socket). */
void cpuid_set_topology(struct kvm_cpuid2 *c, unsigned apic_id, unsigned ncpus);

/* Can a guest that runs with `saved` (a snapshot's or a migration source's
 * table) run here? `guest` is this host's table as wafer builds it for a
 * guest (KVM_GET_SUPPORTED_CPUID with the template applied), ncpus the VM's
 * vCPU count. Every feature bit in `saved` must be one KVM supports here or
 * one wafer sets itself (cpuid_set_topology). 0, or -ENOTSUP with err naming
 * the leaf, register, bits and feature names missing (-ENOMEM). */
int cpuid_check_saved(const struct kvm_cpuid2 *saved, const struct kvm_cpuid2 *guest,
		      unsigned ncpus, char *err, size_t errlen);

/* Look up an entry (NULL if absent). */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t leaf, uint32_t subleaf);

/* Allocate a kvm_cpuid2 with room for n entries (free with free()). */
struct kvm_cpuid2 *cpuid_alloc(unsigned n);

#endif
