/* libFuzzer target: CPU template JSON (docs/cpu-templates.md) through
 * cpuid_template_parse_json, and applying what parses to a synthetic
 * supported-CPUID table, then the per-vCPU topology fixups.
 * Input: the JSON text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/cpuid.h"
#include "vmm/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	log_threshold = LOG_ERROR;
	return 0;
}

/* A plausible host table: basic leaves 0-0xd (4, 7, 0xb, 0xd with
 * subleaves), extended 0x80000000-0x80000008, KVM leaves. */
static struct kvm_cpuid2 *table_new(void)
{
	static const struct { uint32_t leaf, sub; } leaves[] = {
		{ 0, 0 }, { 1, 0 }, { 2, 0 }, { 4, 0 }, { 4, 1 }, { 4, 2 }, { 4, 3 }, { 5, 0 },
		{ 6, 0 }, { 7, 0 }, { 7, 1 }, { 0xb, 0 }, { 0xb, 1 }, { 0xd, 0 }, { 0xd, 1 },
		{ 0xd, 2 }, { 0x1f, 0 }, { 0x40000000, 0 }, { 0x40000001, 0 },
		{ 0x80000000, 0 }, { 0x80000001, 0 }, { 0x80000007, 0 }, { 0x80000008, 0 },
	};
	unsigned n = sizeof(leaves) / sizeof(leaves[0]);
	struct kvm_cpuid2 *c = cpuid_alloc(n);
	if (!c)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		e->function = leaves[i].leaf;
		e->index = leaves[i].sub;
		e->flags = (e->function == 4 || e->function == 7 || e->function == 0xb ||
			    e->function == 0xd || e->function == 0x1f) ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
		e->eax = e->function == 0 ? 0x1f : e->function == 0x80000000 ? 0x80000008 : 0xffffffff;
		e->ebx = e->ecx = e->edx = 0xffffffff;
	}
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cpuid_template t;
	char err[512];

	char *json = malloc(size + 1);
	if (!json)
		return 0;
	memcpy(json, data, size);
	json[size] = 0;
	if (cpuid_template_parse_json(json, &t, err, sizeof(err)) == 0) {
		struct kvm_cpuid2 *c = table_new();
		if (c) {
			cpuid_template_apply(&t, c);
			cpuid_set_topology(c, 1, 4);
			free(c);
		}
	}
	free(json);
	return 0;
}
