/* Unit tests for CPU templates (src/arch/x86/cpuid.c): host/baseline masking,
 * the dependency pass, leaf caps, per-vCPU topology, the JSON template
 * parser and loader, and the check of a saved (restored) table against this
 * host (docs/cpu-templates.md). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/x86/cpuid.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BIT(n) (1u << (n))
#define IDX KVM_CPUID_FLAG_SIGNIFCANT_INDEX

/* Leaf 1 ECX */
#define SSE3 BIT(0)
#define PCLMULQDQ BIT(1)
#define VMX BIT(5)
#define SSSE3 BIT(9)
#define FMA BIT(12)
#define CX16 BIT(13)
#define PCID BIT(17)
#define SSE4_1 BIT(19)
#define SSE4_2 BIT(20)
#define X2APIC BIT(21)
#define MOVBE BIT(22)
#define POPCNT BIT(23)
#define TSC_DEADLINE BIT(24)
#define AES BIT(25)
#define XSAVE BIT(26)
#define OSXSAVE BIT(27)
#define AVX BIT(28)
#define F16C BIT(29)
#define RDRAND BIT(30)
#define HYPERVISOR BIT(31)
/* Leaf 1 EDX */
#define HTT BIT(28)
/* Leaf 7.0 EBX */
#define FSGSBASE BIT(0)
#define BMI1 BIT(3)
#define HLE BIT(4)
#define AVX2 BIT(5)
#define SMEP BIT(7)
#define BMI2 BIT(8)
#define ERMS BIT(9)
#define INVPCID BIT(10)
#define RTM BIT(11)
#define AVX512F BIT(16)
#define AVX512DQ BIT(17)
#define RDSEED BIT(18)
#define ADX BIT(19)
#define SMAP BIT(20)
#define AVX512BW BIT(30)
#define AVX512VL BIT(31)
/* Leaf 7.0 ECX */
#define UMIP BIT(2)
#define PKU BIT(3)
#define OSPKE BIT(4)
#define GFNI BIT(8)
#define VAES BIT(9)
#define LA57 BIT(16)
/* Leaf 7.0 EDX */
#define MD_CLEAR BIT(10)
#define AMX_BF16 BIT(22)
#define AVX512_FP16 BIT(23)
#define AMX_TILE BIT(24)
#define AMX_INT8 BIT(25)
#define SPEC_CTRL BIT(26)
#define SSBD BIT(31)
/* Leaf 7.1 EAX */
#define AVX_VNNI BIT(4)
#define AVX512_BF16 BIT(5)
/* 0x80000001 */
#define LAHF_LM BIT(0)
#define ABM BIT(5)
#define PREFETCHW BIT(8)
#define SYSCALL BIT(11)
#define NX BIT(20)
#define PDPE1GB BIT(26)
#define RDTSCP BIT(27)
#define LM BIT(29)
/* 0x80000007 EDX */
#define INVTSC BIT(8)
/* KVM paravirt features (0x40000001 EAX) */
#define KVM_CLOCKSOURCE2 BIT(3)

static const struct kvm_cpuid_entry2 modern_entries[] = {
	/* function, index, flags, eax, ebx, ecx, edx */
	{ 0x0, 0, 0, 0x20, 0x756e6547, 0x6c65746e, 0x49656e69, {0} },  /* GenuineIntel */
	{ 0x1, 0, 0, 0x000806f8, 0x00000800,
	  SSE3 | PCLMULQDQ | VMX | SSSE3 | FMA | CX16 | PCID | SSE4_1 | SSE4_2 | X2APIC |
	  MOVBE | POPCNT | TSC_DEADLINE | AES | XSAVE | AVX | F16C | RDRAND,
	  0x0f8bfbff, {0} },
	/* Deterministic cache parameters: L1d, L1i, L2, L3, end. */
	{ 0x4, 0, IDX, 0xfc004121, 0x02c0003f, 0x0000003f, 0, {0} },
	{ 0x4, 1, IDX, 0xfc004122, 0x01c0003f, 0x0000003f, 0, {0} },
	{ 0x4, 2, IDX, 0xfc01c143, 0x03c0003f, 0x000007ff, 0, {0} },
	{ 0x4, 3, IDX, 0xfc3fc163, 0x0380003f, 0x0001ffff, 0x4, {0} },
	{ 0x4, 4, IDX, 0, 0, 0, 0, {0} },
	{ 0x6, 0, 0, 0x4, 0, 0, 0, {0} },
	{ 0x7, 0, IDX, 2,
	  FSGSBASE | BMI1 | HLE | AVX2 | SMEP | BMI2 | ERMS | INVPCID | RTM | AVX512F |
	  AVX512DQ | RDSEED | ADX | SMAP | AVX512BW | AVX512VL,
	  UMIP | PKU | GFNI | VAES | LA57,
	  MD_CLEAR | AMX_BF16 | AVX512_FP16 | AMX_TILE | AMX_INT8 | SPEC_CTRL | SSBD, {0} },
	{ 0x7, 1, IDX, AVX_VNNI | AVX512_BF16, 0, 0, 0, {0} },
	{ 0x7, 2, IDX, 0, 0, 0, 0x1f, {0} },
	{ 0xb, 0, IDX, 1, 2, 0x100, 0, {0} },
	{ 0xb, 1, IDX, 7, 0x70, 0x201, 0, {0} },
	{ 0xb, 2, IDX, 0, 0, 0x2, 0, {0} },
	/* XSAVE: x87|SSE|AVX|opmask|ZMM_Hi256|Hi16_ZMM|XTILECFG|XTILEDATA */
	{ 0xd, 0, IDX, 0x000600e7, 0x00002b00, 0x00002b00, 0, {0} },
	{ 0xd, 1, IDX, 0x1f, 0x2b00, 0, 0, {0} },
	{ 0xd, 2, IDX, 0x100, 0x240, 0, 0, {0} },
	{ 0xd, 5, IDX, 0x40, 0x440, 0, 0, {0} },
	{ 0xd, 6, IDX, 0x200, 0x480, 0, 0, {0} },
	{ 0xd, 7, IDX, 0x400, 0x680, 0, 0, {0} },
	{ 0xd, 17, IDX, 0x40, 0xac0, 0x2, 0, {0} },
	{ 0xd, 18, IDX, 0x2000, 0xb00, 0x6, 0, {0} },
	{ 0x1d, 0, IDX, 1, 0, 0, 0, {0} },
	{ 0x1d, 1, IDX, 0x04002000, 0x00080040, 0x10, 0, {0} },
	{ 0x1e, 0, IDX, 0, 0x4010, 0, 0, {0} },
	/* Signature left zero so the topology pass is seen to write it. */
	{ 0x40000000, 0, 0, 0x40000001, 0, 0, 0, {0} },
	{ 0x40000001, 0, 0, 0x01007afb, 0, 0, 0, {0} },
	{ 0x80000000, 0, 0, 0x80000008, 0, 0, 0, {0} },
	{ 0x80000001, 0, 0, 0, 0, LAHF_LM | ABM | PREFETCHW,
	  SYSCALL | NX | PDPE1GB | RDTSCP | LM, {0} },
	{ 0x80000007, 0, 0, 0, 0, 0, INVTSC, {0} },
	{ 0x80000008, 0, 0, 0x0000302e, 0x200, 0, 0, {0} },
};

static struct kvm_cpuid2 *table_from(const struct kvm_cpuid_entry2 *e, unsigned n)
{
	struct kvm_cpuid2 *c = cpuid_alloc(n);

	assert_non_null(c);
	memcpy(c->entries, e, n * sizeof(*e));
	return c;
}

static struct kvm_cpuid2 *modern_table(void)
{
	return table_from(modern_entries, ARRAY_SIZE(modern_entries));
}

static struct kvm_cpuid_entry2 *must_find(struct kvm_cpuid2 *c, uint32_t leaf, uint32_t sub)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(c, leaf, sub);

	if (!e)
		fail_msg("leaf 0x%x.%u missing", leaf, sub);
	return e;
}

static int has_leaf(struct kvm_cpuid2 *c, uint32_t leaf)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == leaf)
			return 1;
	return 0;
}

static void load_ok(const char *name, struct cpuid_template *t)
{
	char err[256] = "";
	int rc = cpuid_template_load(name, t, err, sizeof(err));

	if (rc)
		fail_msg("load %s: %d %s", name, rc, err);
}

static void parse_ok(const char *json, struct cpuid_template *t)
{
	char err[256] = "";
	int rc = cpuid_template_parse_json(json, t, err, sizeof(err));

	if (rc)
		fail_msg("parse %s: %d %s", json, rc, err);
}

static struct kvm_cpuid2 *apply_json(const char *json)
{
	struct cpuid_template t;
	struct kvm_cpuid2 *c = modern_table();

	parse_ok(json, &t);
	cpuid_template_apply(&t, c);
	return c;
}

static void test_alloc_find(void **state)
{
	struct kvm_cpuid2 *c = cpuid_alloc(3);
	(void)state;

	assert_non_null(c);
	assert_int_equal(c->nent, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(c->entries[i].eax | c->entries[i].function | c->entries[i].flags, 0);
	free(c);

	c = modern_table();
	/* Non-indexed leaf answers for any subleaf, as KVM does. */
	assert_ptr_equal(cpuid_find(c, 0x1, 5), cpuid_find(c, 0x1, 0));
	assert_int_equal(must_find(c, 0x4, 3)->index, 3);
	assert_int_equal(must_find(c, 0xd, 17)->ebx, 0xac0);
	assert_null(cpuid_find(c, 0x4, 9));
	assert_null(cpuid_find(c, 0x3, 0));
	free(c);
}

static void test_host_unchanged(void **state)
{
	struct cpuid_template t;
	struct kvm_cpuid2 *c = modern_table();
	(void)state;

	load_ok("host", &t);
	assert_string_equal(t.name, "host");
	assert_int_equal(t.nrules, 0);
	cpuid_template_apply(&t, c);
	assert_int_equal(c->nent, ARRAY_SIZE(modern_entries));
	assert_memory_equal(c->entries, modern_entries, sizeof(modern_entries));
	free(c);
}

static void test_baseline(void **state)
{
	struct cpuid_template t;
	struct kvm_cpuid2 *c = modern_table();
	struct kvm_cpuid_entry2 *e;
	(void)state;

	load_ok("baseline", &t);
	assert_string_equal(t.name, "baseline");
	cpuid_template_apply(&t, c);

	e = must_find(c, 0x1, 0);
	assert_int_equal(e->ecx & (CX16 | XSAVE | OSXSAVE | AVX | FMA | F16C | MOVBE | VMX), 0);
	assert_int_equal(e->ecx & (SSE3 | SSSE3 | SSE4_1 | SSE4_2 | POPCNT | PCLMULQDQ | AES |
				   PCID | X2APIC | TSC_DEADLINE | RDRAND | HYPERVISOR),
			 SSE3 | SSSE3 | SSE4_1 | SSE4_2 | POPCNT | PCLMULQDQ | AES | PCID | X2APIC |
			 TSC_DEADLINE | RDRAND | HYPERVISOR);
	assert_int_equal(e->edx, 0x0f8bfbff);   /* nothing of this host's EDX dropped */

	e = must_find(c, 0x7, 0);
	assert_int_equal(e->eax, 2);
	assert_int_equal(e->ebx & (AVX2 | AVX512F | AVX512DQ | AVX512BW | AVX512VL | BMI1 | BMI2 |
				   HLE | RTM | ADX), 0);
	assert_int_equal(e->ebx, FSGSBASE | SMEP | ERMS | INVPCID | RDSEED | SMAP);
	assert_int_equal(e->ecx, UMIP);
	assert_int_equal(e->edx, MD_CLEAR | SPEC_CTRL | SSBD);
	e = must_find(c, 0x7, 1);
	assert_int_equal(e->eax | e->ebx | e->ecx | e->edx, 0);
	assert_int_equal(must_find(c, 0x7, 2)->edx, 0x1f);   /* speculation controls kept */

	/* Leaf 0xD describes no state; AMX's leaves likewise. */
	for (uint32_t i = 0; i < c->nent; i++) {
		e = &c->entries[i];
		if (e->function == 0xd || e->function == 0x1d || e->function == 0x1e)
			assert_int_equal(e->eax | e->ebx | e->ecx | e->edx, 0);
	}

	e = must_find(c, 0x80000001, 0);
	assert_int_equal(e->ecx, LAHF_LM);
	assert_int_equal(e->edx, SYSCALL | NX | RDTSCP | LM);
	assert_int_equal(must_find(c, 0x80000007, 0)->edx, 0);
	assert_int_equal(must_find(c, 0x80000008, 0)->eax, 0x302e);
	/* Untouched: cache leaves, paravirt features. */
	assert_memory_equal(must_find(c, 0x4, 3), &modern_entries[5], sizeof(modern_entries[5]));
	assert_int_equal(must_find(c, 0x40000001, 0)->eax, 0x01007afb);
	assert_int_equal(c->nent, ARRAY_SIZE(modern_entries));
	free(c);
}

/* A raw rule that hides XSAVE alone must not leave AVX & co. visible. */
static void test_dependencies_raw_rule(void **state)
{
	struct kvm_cpuid2 *c = apply_json(
		"{\"rules\": [{\"leaf\": 1, \"register\": \"ecx\", \"clear\": \"0x04000000\"}]}");
	struct kvm_cpuid_entry2 *e;
	(void)state;

	e = must_find(c, 0x1, 0);
	assert_int_equal(e->ecx & (XSAVE | AVX | FMA | F16C), 0);
	assert_int_equal(e->ecx & (CX16 | MOVBE), CX16 | MOVBE);
	e = must_find(c, 0x7, 0);
	assert_int_equal(e->ebx & (AVX2 | AVX512F | AVX512BW | AVX512VL | AVX512DQ), 0);
	assert_int_equal(e->ebx & (BMI1 | BMI2 | RTM), BMI1 | BMI2 | RTM);
	assert_int_equal(e->ecx & (PKU | VAES), 0);
	assert_int_equal(e->ecx & (GFNI | LA57), GFNI | LA57);
	assert_int_equal(e->edx & (AMX_TILE | AMX_BF16 | AMX_INT8 | AVX512_FP16), 0);
	assert_int_equal(must_find(c, 0x7, 1)->eax & (AVX_VNNI | AVX512_BF16), 0);
	assert_int_equal(must_find(c, 0xd, 0)->eax, 0);
	assert_int_equal(must_find(c, 0xd, 18)->ebx, 0);
	assert_int_equal(must_find(c, 0x1d, 1)->eax, 0);
	free(c);
}

static void test_disable_names(void **state)
{
	struct cpuid_template t;
	struct kvm_cpuid2 *c;
	struct kvm_cpuid_entry2 *e;
	(void)state;

	/* Mixed case, '-' and '.' spellings; avx512f's family goes with it. */
	parse_ok("{\"name\": \"x\", \"disable\": [\"AVX512F\", \"cx16\", \"SSE4.2\", \"tsc-deadline\","
		 " \"rtm\", \"hle\", \"lm\"]}", &t);
	assert_string_equal(t.name, "x");
	/* leaf1 ecx, leaf7 ebx, 0x80000001 edx: merged per register. */
	assert_int_equal(t.nrules, 3);
	c = modern_table();
	cpuid_template_apply(&t, c);
	e = must_find(c, 0x1, 0);
	assert_int_equal(e->ecx & (CX16 | SSE4_2 | TSC_DEADLINE), 0);
	assert_int_equal(e->ecx & (XSAVE | AVX | SSE4_1), XSAVE | AVX | SSE4_1);
	e = must_find(c, 0x7, 0);
	assert_int_equal(e->ebx & (AVX512F | AVX512DQ | AVX512BW | AVX512VL | RTM | HLE), 0);
	assert_int_equal(e->ebx & AVX2, AVX2);
	assert_int_equal(e->edx & AVX512_FP16, 0);
	assert_int_equal(e->edx & AMX_TILE, AMX_TILE);
	assert_int_equal(must_find(c, 0x7, 1)->eax, AVX_VNNI);
	assert_int_equal(must_find(c, 0x80000001, 0)->edx & LM, 0);
	assert_int_equal(must_find(c, 0xd, 0)->eax, 0x000600e7);   /* XSAVE stays, so 0xD does */
	free(c);

	/* Disabling by name is the same as the raw rule. */
	{
		struct kvm_cpuid2 *a = apply_json("{\"disable\": [\"xsave\"]}");
		struct kvm_cpuid2 *b = apply_json(
			"{\"rules\": [{\"leaf\": \"0x1\", \"subleaf\": 0, \"register\": \"ECX\","
			" \"clear\": 67108864}]}");

		assert_int_equal(a->nent, b->nent);
		assert_memory_equal(a->entries, b->entries, a->nent * sizeof(a->entries[0]));
		free(a);
		free(b);
	}
}

/* Every feature name docs/cpu-templates.md lists is accepted. */
static void test_documented_names(void **state)
{
	static const char *const names[] = {
		"sse3", "pclmulqdq", "monitor", "vmx", "smx", "ssse3", "fma", "cx16", "pdcm", "pcid",
		"sse4_1", "sse4_2", "x2apic", "movbe", "popcnt", "tsc_deadline", "aes", "xsave",
		"osxsave", "avx", "f16c", "rdrand", "fsgsbase", "tsc_adjust", "sgx", "bmi1", "hle",
		"avx2", "smep", "bmi2", "erms", "invpcid", "rtm", "mpx", "avx512f", "avx512dq",
		"rdseed", "adx", "smap", "avx512ifma", "clflushopt", "clwb", "intel_pt", "avx512pf",
		"avx512er", "avx512cd", "sha", "avx512bw", "avx512vl", "avx512vbmi", "umip", "pku",
		"ospke", "waitpkg", "avx512vbmi2", "shstk", "gfni", "vaes", "vpclmulqdq",
		"avx512vnni", "avx512bitalg", "avx512vpopcntdq", "la57", "rdpid", "movdiri",
		"movdir64b", "sgx_lc", "avx512_4vnniw", "avx512_4fmaps", "fsrm",
		"avx512_vp2intersect", "serialize", "tsxldtrk", "ibt", "amx_tile", "amx_bf16",
		"amx_int8", "avx512_fp16", "avx_vnni", "avx512_bf16", "lahf_lm", "svm", "abm",
		"sse4a", "misalignsse", "3dnowprefetch", "xop", "lwp", "fma4", "tbm", "topoext",
		"syscall", "nx", "mmxext", "pdpe1gb", "rdtscp", "lm", "invtsc",
	};
	char json[4096], err[256];
	struct cpuid_template t;
	size_t off;
	(void)state;

	off = (size_t)snprintf(json, sizeof(json), "{\"disable\": [");
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		int rc;
		char one[128];

		snprintf(one, sizeof(one), "{\"disable\": [\"%s\"]}", names[i]);
		rc = cpuid_template_parse_json(one, &t, err, sizeof(err));
		if (rc)
			fail_msg("%s: %s", names[i], err);
		assert_int_equal(t.nrules, 1);
		assert_int_equal(__builtin_popcount(t.rules[0].clear), 1);
		off += (size_t)snprintf(json + off, sizeof(json) - off, "%s\"%s\"", i ? ", " : "",
					names[i]);
		assert_true(off < sizeof(json));
	}
	snprintf(json + off, sizeof(json) - off, "]}");
	parse_ok(json, &t);
	/* 1 ECX, 7.0 EBX/ECX/EDX, 7.1 EAX, 0x80000001 ECX/EDX, 0x80000007 EDX. */
	assert_int_equal(t.nrules, 8);
}

static void test_base_and_rules(void **state)
{
	struct cpuid_template t, b;
	struct kvm_cpuid2 *c;
	(void)state;

	load_ok("baseline", &b);
	parse_ok("{\"name\": \"pool-a\", \"description\": \"d\", \"base\": \"baseline\","
		 " \"rules\": [{\"leaf\": \"0x80000001\", \"register\": \"edx\","
		 " \"clear\": \"0x08000000\", \"comment\": \"no rdtscp\"},"
		 " {\"leaf\": 7, \"subleaf\": \"*\", \"register\": \"ebx\", \"set\": \"0x0\","
		 " \"clear\": \"0x1\"}],"
		 " \"disable\": [\"rdrand\"]}", &t);
	assert_string_equal(t.name, "pool-a");
	assert_int_equal(t.nrules, b.nrules + 3);
	assert_memory_equal(t.rules, b.rules, b.nrules * sizeof(b.rules[0]));
	assert_int_equal(t.rules[b.nrules].leaf, 0x80000001);
	assert_int_equal(t.rules[b.nrules].subleaf, 0);
	assert_int_equal(t.rules[b.nrules].reg, CPUID_EDX);
	assert_int_equal(t.rules[b.nrules].clear, RDTSCP);
	assert_int_equal(t.rules[b.nrules + 1].subleaf, CPUID_SUBLEAF_ANY);
	assert_int_equal(t.rules[b.nrules + 1].clear, FSGSBASE);

	c = modern_table();
	cpuid_template_apply(&t, c);
	assert_int_equal(must_find(c, 0x80000001, 0)->edx, SYSCALL | NX | LM);
	assert_int_equal(must_find(c, 0x7, 0)->ebx, SMEP | ERMS | INVPCID | RDSEED | SMAP);
	assert_int_equal(must_find(c, 0x1, 0)->ecx & (RDRAND | CX16 | XSAVE), 0);
	free(c);

	/* "set" forces bits; "host" as base is no rules at all; no name = "custom". */
	parse_ok("{\"base\": \"host\", \"rules\": [{\"leaf\": \"0x6\", \"register\": \"eax\","
		 " \"set\": \"0x2\"}]}", &t);
	assert_string_equal(t.name, "custom");
	assert_int_equal(t.nrules, 1);
	c = modern_table();
	cpuid_template_apply(&t, c);
	assert_int_equal(must_find(c, 0x6, 0)->eax, 0x6);
	free(c);
}

static void test_leaf_caps(void **state)
{
	struct kvm_cpuid_entry2 ents[ARRAY_SIZE(modern_entries) + 1];
	struct cpuid_template t;
	struct kvm_cpuid2 *c;
	(void)state;

	/* Capping below 0xD takes XSAVE (and AVX...) with it. */
	c = apply_json("{\"max_basic_leaf\": \"0xb\"}");
	assert_int_equal(must_find(c, 0x0, 0)->eax, 0xb);
	assert_false(has_leaf(c, 0xd));
	assert_false(has_leaf(c, 0x1d));
	assert_false(has_leaf(c, 0x1e));
	assert_true(has_leaf(c, 0xb));
	assert_true(has_leaf(c, 0x40000000));
	assert_true(has_leaf(c, 0x80000008));
	assert_int_equal(c->nent, ARRAY_SIZE(modern_entries) - 11);   /* 8 + 2 + 1 */
	assert_int_equal(must_find(c, 0x1, 0)->ecx & (XSAVE | AVX), 0);
	assert_int_equal(must_find(c, 0x7, 0)->ebx & AVX2, 0);
	/* Compact: no hole left where 0xD was. */
	for (uint32_t i = 0; i < c->nent; i++)
		assert_int_not_equal(c->entries[i].function, 0xd);
	free(c);

	/* A cap above what the host has never raises it. */
	c = apply_json("{\"max_basic_leaf\": 4096, \"max_ext_leaf\": \"0x8fffffff\"}");
	assert_int_equal(must_find(c, 0x0, 0)->eax, 0x20);
	assert_int_equal(must_find(c, 0x80000000, 0)->eax, 0x80000008);
	assert_int_equal(c->nent, ARRAY_SIZE(modern_entries));
	free(c);

	/* Caps set by code outside their range are ignored, not applied
	 * across ranges. */
	memset(&t, 0, sizeof(t));
	t.max_ext_leaf = 5;
	t.max_basic_leaf = 0x80000001;
	c = modern_table();
	cpuid_template_apply(&t, c);
	assert_int_equal(c->nent, ARRAY_SIZE(modern_entries));
	assert_memory_equal(c->entries, modern_entries, sizeof(modern_entries));
	free(c);

	/* Extended cap drops leaves above it. */
	memcpy(ents, modern_entries, sizeof(modern_entries));
	ents[ARRAY_SIZE(modern_entries)] = (struct kvm_cpuid_entry2){ .function = 0x80000021,
								     .eax = 0x45 };
	c = table_from(ents, ARRAY_SIZE(ents));
	must_find(c, 0x80000000, 0)->eax = 0x80000021;
	parse_ok("{\"max_ext_leaf\": \"0x80000008\"}", &t);
	cpuid_template_apply(&t, c);
	assert_int_equal(must_find(c, 0x80000000, 0)->eax, 0x80000008);
	assert_false(has_leaf(c, 0x80000021));
	assert_true(has_leaf(c, 0x80000008));
	assert_int_equal(c->nent, ARRAY_SIZE(modern_entries));
	free(c);
}

static void check_topology(unsigned ncpus, unsigned apic, unsigned shift, unsigned ids)
{
	struct kvm_cpuid2 *c = modern_table();
	struct kvm_cpuid_entry2 *e;
	char sig[13];

	cpuid_set_topology(c, apic, ncpus);

	e = must_find(c, 0x1, 0);
	assert_int_equal(e->ebx >> 24, apic & 0xff);
	assert_int_equal((e->ebx >> 16) & 0xff, ids > 255 ? 255 : ids);
	assert_int_equal(e->ebx & 0xffff, 0x0800);        /* CLFLUSH size kept */
	assert_int_equal(!!(e->edx & HTT), ncpus > 1);
	assert_int_equal(e->edx & ~HTT, 0x0f8bfbff & ~HTT);
	assert_true(e->ecx & HYPERVISOR);

	e = must_find(c, 0xb, 0);
	assert_int_equal(e->eax, 0);
	assert_int_equal(e->ebx, 1);
	assert_int_equal(e->ecx, 0x100);
	assert_int_equal(e->edx, apic);
	e = must_find(c, 0xb, 1);
	assert_int_equal(e->eax, shift);
	assert_int_equal(e->ebx, ncpus);
	assert_int_equal(e->ecx, 0x201);
	assert_int_equal(e->edx, apic);
	e = must_find(c, 0xb, 2);
	assert_int_equal(e->eax | e->ebx, 0);
	assert_int_equal(e->ecx, 2);
	assert_int_equal(e->edx, apic);

	for (unsigned sub = 0; sub < 4; sub++) {
		e = must_find(c, 0x4, sub);
		assert_int_equal(e->eax >> 26, (ids - 1) > 63 ? 63 : ids - 1);
		assert_int_equal((e->eax >> 14) & 0xfff, sub == 3 ? ids - 1 : 0);
		assert_int_equal(e->eax & 0x3fff, modern_entries[2 + sub].eax & 0x3fff);
	}
	assert_int_equal(must_find(c, 0x4, 4)->eax, 0);    /* terminator untouched */

	e = must_find(c, 0x80000008, 0);
	assert_int_equal(e->ecx & 0xff, ncpus - 1);
	assert_int_equal((e->ecx >> 12) & 0xf, shift);
	assert_int_equal(e->eax, 0x302e);

	e = must_find(c, 0x40000000, 0);
	assert_int_equal(e->eax, 0x40000001);
	memcpy(sig, &e->ebx, 4);
	memcpy(sig + 4, &e->ecx, 4);
	memcpy(sig + 8, &e->edx, 4);
	sig[12] = '\0';
	assert_memory_equal(sig, "KVMKVMKVM\0\0\0", 12);
	assert_int_equal(must_find(c, 0x40000001, 0)->eax & KVM_CLOCKSOURCE2, KVM_CLOCKSOURCE2);
	assert_int_equal(must_find(c, 0x40000001, 0)->eax, 0x01007afb);
	free(c);
}

static void test_topology(void **state)
{
	(void)state;
	check_topology(1, 0, 0, 1);
	check_topology(2, 0, 1, 2);
	check_topology(2, 1, 1, 2);
	check_topology(4, 3, 2, 4);
	check_topology(3, 2, 2, 4);      /* addressable IDs round up */
	check_topology(255, 0, 8, 256);
	check_topology(255, 254, 8, 256);

	/* A nonsense count of 0 is taken as one CPU. */
	{
		struct kvm_cpuid2 *a = modern_table(), *b = modern_table();

		cpuid_set_topology(a, 0, 0);
		cpuid_set_topology(b, 0, 1);
		assert_memory_equal(a->entries, b->entries, a->nent * sizeof(a->entries[0]));
		free(a);
		free(b);
	}
}

static void test_topology_amd(void **state)
{
	static const struct kvm_cpuid_entry2 amd[] = {
		{ 0x1, 0, 0, 0x00a00f11, 0x00000800, 0, 0x178bfbff, {0} },
		{ 0x80000008, 0, 0, 0x3030, 0, 0x0001703f, 0, {0} },
		{ 0x8000001d, 0, IDX, 0x00004121, 0x01c0003f, 0x3f, 0, {0} },
		{ 0x8000001d, 3, IDX, 0x0003c163, 0x03c0003f, 0x7fff, 0x1, {0} },
		{ 0x8000001e, 0, 0, 0x2, 0x0101, 0x0300, 0, {0} },
	};
	struct kvm_cpuid2 *c = table_from(amd, ARRAY_SIZE(amd));
	struct kvm_cpuid_entry2 *e;
	(void)state;

	cpuid_set_topology(c, 5, 6);
	e = must_find(c, 0x80000008, 0);
	assert_int_equal(e->ecx, 0x00013005);            /* PerfTscSize kept, size 3, NC 5 */
	assert_int_equal((must_find(c, 0x8000001d, 0)->eax >> 14) & 0xfff, 0);
	assert_int_equal((must_find(c, 0x8000001d, 3)->eax >> 14) & 0xfff, 5);
	assert_int_equal(must_find(c, 0x8000001d, 3)->eax & 0x3fff, 0x0163);
	e = must_find(c, 0x8000001e, 0);
	assert_int_equal(e->eax, 5);
	assert_int_equal(e->ebx, 5);
	assert_int_equal(e->ecx, 0);
	e = must_find(c, 0x1, 0);
	assert_int_equal(e->ebx >> 16, (5u << 8) | 8);
	free(c);
}

struct bad_case {
	const char *json;
	const char *msg;
};

static void test_json_malformed(void **state)
{
	static char many[8192], many_base[8192];
	static const char rule[] = "{\"leaf\": 1, \"register\": \"ecx\", \"clear\": 1}";
	const struct bad_case cases[] = {
		{ "", "empty template" },
		{ " \n\t ", "empty template" },
		{ "not json", "not JSON" },
		{ "{\"name\": \"x\"", "not JSON: unexpected end" },
		{ "{} x", "not JSON" },
		{ "{\"a\": 1,}", "not JSON" },
		{ "{\"rules\": [[[[[[[[[[1]]]]]]]]]]}", "not JSON" },
		{ "[]", "expected a JSON object at the top level" },
		{ "42", "expected a JSON object" },
		{ "{\"bogus\": 1}", "bogus: unknown key" },
		{ "{\"name\": 5}", "name: expected a string" },
		{ "{\"name\": \"\"}", "name: must be 1..63 characters" },
		{ "{\"name\": \"0123456789012345678901234567890123456789012345678901234567890123\"}",
		  "name: must be 1..63" },
		{ "{\"name\": \"a\\u0001b\"}", "name: contains a non-printable" },
		{ "{\"name\": \"a\\u0000b\"}", "name: contains a NUL" },
		{ "{\"description\": []}", "description: expected a string" },
		{ "{\"base\": \"foo\"}", "base: unknown template \"foo\"" },
		{ "{\"base\": \"baseline.json\"}", "base: unknown template" },
		{ "{\"base\": 1}", "base: expected a string" },
		{ "{\"max_basic_leaf\": 0}", "max_basic_leaf: 0x0 out of range" },
		{ "{\"max_basic_leaf\": \"0x40000000\"}", "max_basic_leaf: 0x40000000 out of range" },
		{ "{\"max_basic_leaf\": true}", "max_basic_leaf: expected an integer or a hex string" },
		{ "{\"max_ext_leaf\": \"0x80000001\"}", "max_ext_leaf: 0x80000001 out of range" },
		{ "{\"max_ext_leaf\": 7}", "max_ext_leaf: 0x7 out of range" },
		{ "{\"rules\": {}}", "rules: expected an array" },
		{ "{\"rules\": [5]}", "rules[0]: expected an object" },
		{ "{\"rules\": [{\"register\": \"ecx\", \"clear\": 1}]}", "rules[0].leaf: missing" },
		{ "{\"rules\": [{\"leaf\": 1, \"clear\": 1}]}", "rules[0].register: missing" },
		{ "{\"rules\": [{\"leaf\": 1, \"register\": \"exx\", \"clear\": 1}]}",
		  "rules[0].register: expected one of eax/ebx/ecx/edx" },
		{ "{\"rules\": [{\"leaf\": 1, \"register\": 2, \"clear\": 1}]}",
		  "rules[0].register: expected a string" },
		{ "{\"rules\": [{\"leaf\": 1, \"register\": \"ecx\", \"clear\": 1},"
		  " {\"leaf\": 1, \"register\": \"ecx\", \"clear\": 1},"
		  " {\"leaf\": 1, \"register\": \"ecx\", \"clear\": 1},"
		  " {\"leaf\": 1, \"register\": \"r8\", \"clear\": 1}]}",
		  "rules[3].register: expected one of eax/ebx/ecx/edx" },
		{ "{\"rules\": [{\"leaf\": 1, \"register\": \"ecx\", \"mask\": 1}]}",
		  "rules[0].mask: unknown key" },
		{ "{\"rules\": [{\"leaf\": false, \"register\": \"ecx\", \"clear\": 1}]}",
		  "rules[0].leaf: expected an integer or a hex string" },
		{ "{\"rules\": [{\"leaf\": 1.5, \"register\": \"ecx\", \"clear\": 1}]}",
		  "rules[0].leaf: expected an integer" },
		{ "{\"rules\": [{\"leaf\": 1, \"register\": \"ecx\", \"clear\": \"0xZZ\"}]}",
		  "rules[0].clear: bad hex string \"0xZZ\"" },
		{ "{\"rules\": [{\"leaf\": 1, \"register\": \"ecx\", \"clear\": \"12\"}]}",
		  "rules[0].clear: bad hex string" },
		{ "{\"rules\": [{\"leaf\": 1, \"register\": \"ecx\", \"clear\": \"0x\"}]}",
		  "rules[0].clear: bad hex string" },
		{ "{\"rules\": [{\"leaf\": 1, \"register\": \"ecx\", \"clear\": \"-0x1\"}]}",
		  "rules[0].clear: bad hex string" },
		{ "{\"rules\": [{\"leaf\": 1, \"register\": \"ecx\", \"clear\": \"0x100000000\"}]}",
		  "rules[0].clear: \"0x100000000\" out of range" },
		{ "{\"rules\": [{\"leaf\": 1, \"register\": \"ecx\", \"set\": \"0xffffffffffffffffffff1\"}]}",
		  "rules[0].set: \"0xffffffffffffffffffff1\" out of range" },
		{ "{\"rules\": [{\"leaf\": 4294967296, \"register\": \"ecx\", \"clear\": 1}]}",
		  "rules[0].leaf: 4294967296 out of range" },
		{ "{\"rules\": [{\"leaf\": 99999999999999999999999, \"register\": \"ecx\", \"clear\": 1}]}",
		  "rules[0].leaf: " },
		{ "{\"rules\": [{\"leaf\": -1, \"register\": \"ecx\", \"clear\": 1}]}",
		  "rules[0].leaf: -1 out of range" },
		{ "{\"rules\": [{\"leaf\": 7, \"subleaf\": \"**\", \"register\": \"ecx\", \"clear\": 1}]}",
		  "rules[0].subleaf: bad hex string" },
		{ "{\"rules\": [{\"leaf\": 7, \"subleaf\": \"0xffffffff\", \"register\": \"ecx\", \"clear\": 1}]}",
		  "rules[0].subleaf: 0xffffffff is reserved" },
		{ "{\"rules\": [{\"leaf\": 7, \"register\": \"ecx\"}]}", "rules[0]: clear and set are both 0" },
		{ "{\"rules\": [{\"leaf\": 7, \"register\": \"ecx\", \"comment\": 3, \"clear\": 1}]}",
		  "rules[0].comment: expected a string" },
		{ "{\"disable\": \"avx\"}", "disable: expected an array" },
		{ "{\"disable\": [\"avx\", 1]}", "disable[1]: expected a string" },
		{ "{\"disable\": [\"avx\", \"nosuch\"]}", "disable[1]: unknown feature \"nosuch\"" },
		{ "{\"disable\": [\"hypervisor\"]}", "disable[0]: unknown feature" },
		{ "{\"disable\": [\"avxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"]}",
		  "disable[0]: unknown feature" },
		{ many, "rules: too many rules (65" },
		{ many_base, "rules: too many rules (50, plus 17 from base" },
	};
	struct cpuid_template t, sentinel;
	char err[256];
	size_t off;
	(void)state;

	off = (size_t)snprintf(many, sizeof(many), "{\"rules\": [");
	for (int i = 0; i < CPUID_TEMPLATE_MAX_RULES + 1; i++)
		off += (size_t)snprintf(many + off, sizeof(many) - off, "%s%s", i ? "," : "", rule);
	snprintf(many + off, sizeof(many) - off, "]}");
	assert_true(strlen(many) < sizeof(many) - 1);
	off = (size_t)snprintf(many_base, sizeof(many_base), "{\"base\": \"baseline\", \"rules\": [");
	for (int i = 0; i < 50; i++)
		off += (size_t)snprintf(many_base + off, sizeof(many_base) - off, "%s%s", i ? "," : "", rule);
	snprintf(many_base + off, sizeof(many_base) - off, "]}");

	memset(&sentinel, 0xa5, sizeof(sentinel));
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int rc;

		t = sentinel;
		err[0] = '\0';
		rc = cpuid_template_parse_json(cases[i].json, &t, err, sizeof(err));
		if (rc != -EINVAL || !strstr(err, cases[i].msg))
			fail_msg("case %zu (%.60s): rc %d err \"%s\", wanted \"%s\"", i, cases[i].json,
				 rc, err, cases[i].msg);
		/* A failed parse leaves the caller's template alone. */
		assert_memory_equal(&t, &sentinel, sizeof(t));
	}
}

/* Disable rules that push the total past the limit. */
static void test_json_too_many_with_disable(void **state)
{
	char json[8192], err[256];
	struct cpuid_template t;
	size_t off;
	int rc;
	(void)state;

	off = (size_t)snprintf(json, sizeof(json), "{\"rules\": [");
	for (int i = 0; i < CPUID_TEMPLATE_MAX_RULES; i++)
		off += (size_t)snprintf(json + off, sizeof(json) - off,
					"%s{\"leaf\": %d, \"register\": \"eax\", \"clear\": 1}",
					i ? "," : "", i);
	snprintf(json + off, sizeof(json) - off, "], \"disable\": [\"cx16\"]}");
	rc = cpuid_template_parse_json(json, &t, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err, "disable[0]: too many rules"));
	/* Exactly at the limit is fine. */
	snprintf(json + off, sizeof(json) - off, "]}");
	parse_ok(json, &t);
	assert_int_equal(t.nrules, CPUID_TEMPLATE_MAX_RULES);
}

static char *write_tmp_len(const char *suffix, const char *text, size_t len)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/wafer-cpuid-XXXXXX%s", suffix);
	fd = mkstemps(path, (int)strlen(suffix));
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

static char *write_tmp(const char *suffix, const char *text)
{
	return write_tmp_len(suffix, text, strlen(text));
}

static void test_load_files(void **state)
{
	static const char good[] =
		"{\"disable\": [\"avx512f\"], \"rules\": [{\"leaf\": 1, \"register\": \"ecx\","
		" \"clear\": \"0x2000\"}]}\n";
	struct cpuid_template t, sentinel;
	char err[512], want[512], *path;
	int rc;
	(void)state;

	/* Missing file: -errno and "PATH: strerror". */
	rc = cpuid_template_load("/tmp/wafer-no-such-dir/none.json", &t, err, sizeof(err));
	assert_int_equal(rc, -ENOENT);
	snprintf(want, sizeof(want), "/tmp/wafer-no-such-dir/none.json: %s", strerror(ENOENT));
	assert_string_equal(err, want);

	/* Not a name and not a path. */
	rc = cpuid_template_load("skylake", &t, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err, "skylake: unknown CPU template"));

	rc = cpuid_template_load("/tmp", &t, err, sizeof(err));
	assert_int_equal(rc, -EISDIR);
	assert_string_equal(err, "/tmp: is a directory");

	/* A real file: no "name", so it is named after the file. */
	path = write_tmp(".json", good);
	load_ok(path, &t);
	assert_int_equal(t.nrules, 2);
	assert_int_equal(t.rules[0].clear, CX16);
	assert_int_equal(t.rules[1].leaf, 7);
	assert_int_equal(t.rules[1].clear, AVX512F);
	assert_int_equal(strncmp(t.name, "wafer-cpuid-", 12), 0);
	assert_null(strchr(t.name, '.'));
	unlink(path);

	/* Errors inside a file name the file first. */
	memset(&sentinel, 0x5a, sizeof(sentinel));
	t = sentinel;
	path = write_tmp(".json", "{\"rules\": [{\"leaf\": 1, \"register\": \"xmm0\", \"clear\": 1}]}");
	rc = cpuid_template_load(path, &t, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	snprintf(want, sizeof(want), "%s: rules[0].register: expected one of", path);
	assert_int_equal(strncmp(err, want, strlen(want)), 0);
	assert_memory_equal(&t, &sentinel, sizeof(t));
	unlink(path);

	path = write_tmp(".json", "");
	rc = cpuid_template_load(path, &t, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err, "empty file"));
	unlink(path);

	path = write_tmp_len(".json", "{}\0{\"x\": 1}", 11);
	rc = cpuid_template_load(path, &t, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err, "contains a NUL byte"));
	unlink(path);

	/* A path without ".json" is still a path when it has a '/'. */
	path = write_tmp(".tmpl", "{\"name\": \"n\", \"disable\": [\"rtm\"]}");
	load_ok(path, &t);
	assert_string_equal(t.name, "n");
	assert_int_equal(t.nrules, 1);
	unlink(path);
}

/* templates/cpu/baseline.json is the built-in baseline, rule for rule. The
 * path is found from this file's own, as the build passes it to the compiler. */
static void test_baseline_json_file(void **state)
{
	struct cpuid_template file, builtin;
	struct kvm_cpuid2 *a, *b;
	char path[4096];
	(void)state;

	/* The build passes the source tree's absolute path: the test works from
	 * any directory. */
	snprintf(path, sizeof(path), "%s/templates/cpu/baseline.json", WAFER_SOURCE_ROOT);
	load_ok(path, &file);
	load_ok("baseline", &builtin);
	assert_string_equal(file.name, "baseline-json");
	assert_int_equal(file.nrules, builtin.nrules);
	assert_int_equal(file.max_basic_leaf, builtin.max_basic_leaf);
	assert_int_equal(file.max_ext_leaf, builtin.max_ext_leaf);
	assert_memory_equal(file.rules, builtin.rules, builtin.nrules * sizeof(builtin.rules[0]));

	a = modern_table();
	b = modern_table();
	cpuid_template_apply(&file, a);
	cpuid_template_apply(&builtin, b);
	assert_int_equal(a->nent, b->nent);
	assert_memory_equal(a->entries, b->entries, a->nent * sizeof(a->entries[0]));
	free(a);
	free(b);

	snprintf(path, sizeof(path), "%s/templates/cpu/no-avx512.json", WAFER_SOURCE_ROOT);
	load_ok(path, &file);
	a = modern_table();
	cpuid_template_apply(&file, a);
	assert_int_equal(must_find(a, 0x7, 0)->ebx & (AVX512F | AVX512VL | HLE | RTM), 0);
	assert_int_equal(must_find(a, 0x7, 0)->ebx & AVX2, AVX2);
	free(a);
}

/* What wafer would build for a guest on a host whose KVM reports `host`:
 * the template applied, as vm_create does before a snapshot saves it. */
static struct kvm_cpuid2 *built_with(const char *template, const struct kvm_cpuid_entry2 *host,
				     unsigned n)
{
	struct cpuid_template t;
	struct kvm_cpuid2 *c = table_from(host, n);

	load_ok(template, &t);
	cpuid_template_apply(&t, c);
	return c;
}

static void check_saved_ok(const struct kvm_cpuid2 *saved, const struct kvm_cpuid2 *here,
			   unsigned ncpus, const char *what)
{
	char err[512] = "";
	int rc = cpuid_check_saved(saved, here, ncpus, err, sizeof(err));

	if (rc)
		fail_msg("%s: refused (%d): %s", what, rc, err);
}

static void check_saved_refused(const struct kvm_cpuid2 *saved, const struct kvm_cpuid2 *here,
				const char *expect1, const char *expect2)
{
	char err[512] = "";

	assert_int_equal(cpuid_check_saved(saved, here, 2, err, sizeof(err)), -ENOTSUP);
	if (!strstr(err, expect1) || !strstr(err, expect2))
		fail_msg("refusal \"%s\" lacks \"%s\" or \"%s\"", err, expect1, expect2);
}

/* A table wafer built on host X is accepted when restored on host X. A
 * restore or an incoming migration builds with "host" (snapshot_parse_config);
 * the same template as the source is checked too. The baseline template and
 * the per-vCPU pass set the hypervisor bit, which KVM never reports as
 * supported: the check once compared with KVM's table alone and refused
 * every baseline snapshot. */
static void test_saved_own_table_accepted(void **state)
{
	char nox[4096];
	const char *templates[] = { "host", "baseline", nox };
	struct kvm_cpuid2 *restore_here = built_with("host", modern_entries, ARRAY_SIZE(modern_entries));
	(void)state;

	snprintf(nox, sizeof(nox), "%s/templates/cpu/no-avx512.json", WAFER_SOURCE_ROOT);
	assert_int_equal(modern_entries[1].ecx & HYPERVISOR, 0);   /* as KVM reports it */
	for (size_t i = 0; i < ARRAY_SIZE(templates); i++) {
		struct kvm_cpuid2 *saved = built_with(templates[i], modern_entries,
						      ARRAY_SIZE(modern_entries));
		struct kvm_cpuid2 *same = built_with(templates[i], modern_entries,
						     ARRAY_SIZE(modern_entries));

		if (!strcmp(templates[i], "baseline"))
			assert_int_equal(must_find(saved, 0x1, 0)->ecx & HYPERVISOR, HYPERVISOR);
		for (unsigned ncpus = 1; ncpus <= 4; ncpus += 3) {
			check_saved_ok(saved, restore_here, ncpus, templates[i]);
			check_saved_ok(saved, same, ncpus, templates[i]);
			/* A vCPU's own table (topology applied) passes too. */
			struct kvm_cpuid2 *vcpu = table_from(saved->entries, saved->nent);
			cpuid_set_topology(vcpu, ncpus - 1, ncpus);
			check_saved_ok(vcpu, restore_here, ncpus, templates[i]);
			free(vcpu);
		}
		free(saved);
		free(same);
	}
	free(restore_here);
}

/* A feature the guest saw and this host's KVM does not offer is refused, by
 * leaf, register, bits and name. */
static void test_saved_missing_feature_refused(void **state)
{
	struct kvm_cpuid_entry2 older[ARRAY_SIZE(modern_entries)];
	struct kvm_cpuid2 *saved = built_with("host", modern_entries, ARRAY_SIZE(modern_entries));
	struct kvm_cpuid2 *base = built_with("baseline", modern_entries, ARRAY_SIZE(modern_entries));
	struct kvm_cpuid2 *here;
	(void)state;

	memcpy(older, modern_entries, sizeof(older));
	older[8].ebx &= ~AVX2;                 /* leaf 7.0 */
	assert_int_equal(older[8].function, 0x7);
	here = built_with("host", older, ARRAY_SIZE(older));
	check_saved_refused(saved, here, "leaf 0x7.0 ebx has features 0xc0030020", "(avx2 avx512f");
	check_saved_ok(base, here, 2, "baseline without avx2");   /* baseline hides AVX2 */
	free(here);

	memcpy(older, modern_entries, sizeof(older));
	older[1].ecx &= ~(AES | RDRAND);       /* leaf 1 */
	here = built_with("host", older, ARRAY_SIZE(older));
	check_saved_refused(saved, here, "leaf 0x1.0 ecx has features 0x42000000", "(aes rdrand)");
	check_saved_refused(base, here, "leaf 0x1.0 ecx", "(aes rdrand)");
	free(here);

	memcpy(older, modern_entries, sizeof(older));
	older[9].eax &= ~AVX_VNNI;             /* leaf 7.1 EAX holds features too */
	assert_int_equal(older[9].index, 1);
	here = built_with("host", older, ARRAY_SIZE(older));
	check_saved_refused(saved, here, "leaf 0x7.1 eax", "(avx_vnni)");
	free(here);

	/* A leaf this host does not have at all. */
	here = built_with("host", modern_entries, ARRAY_SIZE(modern_entries) - 2);
	assert_int_equal(must_find(saved, 0x80000007, 0)->edx, INVTSC);
	check_saved_refused(saved, here, "leaf 0x80000007.0 edx", "(invtsc)");
	free(here);
	free(saved);
	free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_find),
		cmocka_unit_test(test_host_unchanged),
		cmocka_unit_test(test_baseline),
		cmocka_unit_test(test_dependencies_raw_rule),
		cmocka_unit_test(test_disable_names),
		cmocka_unit_test(test_documented_names),
		cmocka_unit_test(test_base_and_rules),
		cmocka_unit_test(test_leaf_caps),
		cmocka_unit_test(test_topology),
		cmocka_unit_test(test_topology_amd),
		cmocka_unit_test(test_json_malformed),
		cmocka_unit_test(test_json_too_many_with_disable),
		cmocka_unit_test(test_load_files),
		cmocka_unit_test(test_baseline_json_file),
		cmocka_unit_test(test_saved_own_table_accepted),
		cmocka_unit_test(test_saved_missing_feature_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
