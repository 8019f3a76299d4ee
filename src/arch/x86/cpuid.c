/* CPU templates: KVM_GET_SUPPORTED_CPUID filtered through masking rules (built
 * in or from JSON, docs/cpu-templates.md), then per-vCPU topology and the KVM
 * paravirt leaves; and the check that a saved table can run on this host.
 * Bit positions: Intel SDM vol. 2A "CPUID", AMD APM vol. 3. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "arch/x86/cpuid.h"
#include "vmm/file.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BIT(n) (1u << (n))
#define ANY CPUID_SUBLEAF_ANY

#define CPUID_FILE_MAX (1u << 20)  /* a template is a few KiB; refuse anything silly */
#define CPUID_JSON_DEPTH 8         /* object > rules array > rule object, with room */

/* Leaf 1 ECX */
#define F1C_SSE3 BIT(0)
#define F1C_PCLMULQDQ BIT(1)
#define F1C_MONITOR BIT(3)
#define F1C_VMX BIT(5)
#define F1C_SMX BIT(6)
#define F1C_SSSE3 BIT(9)
#define F1C_FMA BIT(12)
#define F1C_CX16 BIT(13)
#define F1C_PDCM BIT(15)
#define F1C_PCID BIT(17)
#define F1C_SSE4_1 BIT(19)
#define F1C_SSE4_2 BIT(20)
#define F1C_X2APIC BIT(21)
#define F1C_MOVBE BIT(22)
#define F1C_POPCNT BIT(23)
#define F1C_TSC_DEADLINE BIT(24)
#define F1C_AES BIT(25)
#define F1C_XSAVE BIT(26)
#define F1C_OSXSAVE BIT(27)
#define F1C_AVX BIT(28)
#define F1C_F16C BIT(29)
#define F1C_RDRAND BIT(30)
#define F1C_HYPERVISOR BIT(31)
/* Leaf 1 EDX */
#define F1D_HTT BIT(28)
/* Leaf 7 subleaf 0 EBX */
#define F7B_FSGSBASE BIT(0)
#define F7B_TSC_ADJUST BIT(1)
#define F7B_SGX BIT(2)
#define F7B_BMI1 BIT(3)
#define F7B_HLE BIT(4)
#define F7B_AVX2 BIT(5)
#define F7B_FDP_EXCPTN_ONLY BIT(6)
#define F7B_SMEP BIT(7)
#define F7B_BMI2 BIT(8)
#define F7B_ERMS BIT(9)
#define F7B_INVPCID BIT(10)
#define F7B_RTM BIT(11)
#define F7B_ZERO_FCS_FDS BIT(13)
#define F7B_MPX BIT(14)
#define F7B_AVX512F BIT(16)
#define F7B_AVX512DQ BIT(17)
#define F7B_RDSEED BIT(18)
#define F7B_ADX BIT(19)
#define F7B_SMAP BIT(20)
#define F7B_AVX512IFMA BIT(21)
#define F7B_CLFLUSHOPT BIT(23)
#define F7B_CLWB BIT(24)
#define F7B_INTEL_PT BIT(25)
#define F7B_AVX512PF BIT(26)
#define F7B_AVX512ER BIT(27)
#define F7B_AVX512CD BIT(28)
#define F7B_SHA BIT(29)
#define F7B_AVX512BW BIT(30)
#define F7B_AVX512VL BIT(31)
/* Leaf 7 subleaf 0 ECX */
#define F7C_AVX512VBMI BIT(1)
#define F7C_UMIP BIT(2)
#define F7C_PKU BIT(3)
#define F7C_OSPKE BIT(4)
#define F7C_WAITPKG BIT(5)
#define F7C_AVX512VBMI2 BIT(6)
#define F7C_SHSTK BIT(7)
#define F7C_GFNI BIT(8)
#define F7C_VAES BIT(9)
#define F7C_VPCLMULQDQ BIT(10)
#define F7C_AVX512VNNI BIT(11)
#define F7C_AVX512BITALG BIT(12)
#define F7C_AVX512VPOPCNTDQ BIT(14)
#define F7C_LA57 BIT(16)
#define F7C_RDPID BIT(22)
#define F7C_MOVDIRI BIT(27)
#define F7C_MOVDIR64B BIT(28)
#define F7C_SGX_LC BIT(30)
/* Leaf 7 subleaf 0 EDX */
#define F7D_AVX512_4VNNIW BIT(2)
#define F7D_AVX512_4FMAPS BIT(3)
#define F7D_FSRM BIT(4)
#define F7D_AVX512_VP2INTERSECT BIT(8)
#define F7D_MD_CLEAR BIT(10)
#define F7D_SERIALIZE BIT(14)
#define F7D_TSXLDTRK BIT(16)
#define F7D_IBT BIT(20)
#define F7D_AMX_BF16 BIT(22)
#define F7D_AVX512_FP16 BIT(23)
#define F7D_AMX_TILE BIT(24)
#define F7D_AMX_INT8 BIT(25)
#define F7D_SPEC_CTRL BIT(26)
#define F7D_STIBP BIT(27)
#define F7D_FLUSH_L1D BIT(28)
#define F7D_ARCH_CAPABILITIES BIT(29)
#define F7D_SSBD BIT(31)
/* Leaf 7 subleaf 1 EAX */
#define F71A_AVX_VNNI BIT(4)
#define F71A_AVX512_BF16 BIT(5)
/* Leaf 0x80000001 ECX */
#define F81C_LAHF_LM BIT(0)
#define F81C_SVM BIT(2)
#define F81C_ABM BIT(5)
#define F81C_SSE4A BIT(6)
#define F81C_MISALIGNSSE BIT(7)
#define F81C_3DNOWPREFETCH BIT(8)
#define F81C_XOP BIT(11)
#define F81C_LWP BIT(15)
#define F81C_FMA4 BIT(16)
#define F81C_TBM BIT(21)
#define F81C_TOPOEXT BIT(22)
/* Leaf 0x80000001 EDX */
#define F81D_SYSCALL BIT(11)
#define F81D_NX BIT(20)
#define F81D_MMXEXT BIT(22)
#define F81D_PDPE1GB BIT(26)
#define F81D_RDTSCP BIT(27)
#define F81D_LM BIT(29)
/* Leaf 0x80000007 EDX */
#define F87D_INVTSC BIT(8)
/* Leaf 0x80000008 EBX */
#define F88B_CLZERO BIT(0)
#define F88B_WBNOINVD BIT(9)

/*
 * The "baseline" template: x86-64-v2 minus CMPXCHG16B, no XSAVE-managed state
 * at all, plus the system features a current kernel leans on (PCID, SMEP, ...)
 * and the speculation-control bits a guest needs to protect itself. Whole
 * registers are whitelisted (clear = ~keep) so bits that future hosts add
 * stay hidden. docs/cpu-templates.md says why each kept bit is kept;
 * templates/cpu/baseline.json is the same table as JSON.
 */
#define BASE_1C_KEEP (F1C_SSE3 | F1C_PCLMULQDQ | F1C_SSSE3 | F1C_PCID | F1C_SSE4_1 | \
		      F1C_SSE4_2 | F1C_X2APIC | F1C_POPCNT | F1C_TSC_DEADLINE | F1C_AES | \
		      F1C_RDRAND | F1C_HYPERVISOR)
/* FPU VME DE PSE TSC MSR PAE MCE CX8 APIC | SEP MTRR PGE MCA CMOV PAT PSE36 |
 * CLFLUSH | MMX FXSR SSE SSE2 SS HTT (HTT is the topology code's to decide). */
#define BASE_1D_KEEP (0x000003ffu | 0x0003f800u | BIT(19) | 0x1f800000u)
#define BASE_7B_KEEP (F7B_FSGSBASE | F7B_TSC_ADJUST | F7B_FDP_EXCPTN_ONLY | F7B_SMEP | \
		      F7B_ERMS | F7B_INVPCID | F7B_ZERO_FCS_FDS | F7B_RDSEED | F7B_SMAP)
#define BASE_7C_KEEP (F7C_UMIP)
#define BASE_7D_KEEP (F7D_MD_CLEAR | F7D_SPEC_CTRL | F7D_STIBP | F7D_FLUSH_L1D | \
		      F7D_ARCH_CAPABILITIES | F7D_SSBD)
#define BASE_81C_KEEP (F81C_LAHF_LM)
/* 0x80000001 EDX on AMD repeats leaf 1 EDX bits 0-9, 12-17, 23, 24. */
#define BASE_81D_KEEP (0x000003ffu | 0x0003f000u | BIT(23) | BIT(24) | F81D_SYSCALL | \
		       F81D_NX | F81D_RDTSCP | F81D_LM)

static const struct cpuid_rule baseline_rules[] = {
	{ 0x1, 0, CPUID_ECX, ~BASE_1C_KEEP, F1C_HYPERVISOR },
	{ 0x1, 0, CPUID_EDX, ~BASE_1D_KEEP, 0 },
	{ 0x7, 0, CPUID_EBX, ~BASE_7B_KEEP, 0 },
	{ 0x7, 0, CPUID_ECX, ~BASE_7C_KEEP, 0 },
	{ 0x7, 0, CPUID_EDX, ~BASE_7D_KEEP, 0 },
	/* Subleaf 1 is all new vector/AMX/LAM extensions. */
	{ 0x7, 1, CPUID_EAX, ~0u, 0 },
	{ 0x7, 1, CPUID_EBX, ~0u, 0 },
	{ 0x7, 1, CPUID_ECX, ~0u, 0 },
	{ 0x7, 1, CPUID_EDX, ~0u, 0 },
	/* No XSAVE: the state-component leaf must not describe any. */
	{ 0xd, ANY, CPUID_EAX, ~0u, 0 },
	{ 0xd, ANY, CPUID_EBX, ~0u, 0 },
	{ 0xd, ANY, CPUID_ECX, ~0u, 0 },
	{ 0xd, ANY, CPUID_EDX, ~0u, 0 },
	{ 0x80000001, 0, CPUID_ECX, ~BASE_81C_KEEP, 0 },
	{ 0x80000001, 0, CPUID_EDX, ~BASE_81D_KEEP, 0 },
	/* An invariant TSC cannot be promised across hosts; kvmclock covers it. */
	{ 0x80000007, 0, CPUID_EDX, F87D_INVTSC, 0 },
	{ 0x80000008, 0, CPUID_EBX, F88B_CLZERO | F88B_WBNOINVD, 0 },
};
_Static_assert(ARRAY_SIZE(baseline_rules) <= CPUID_TEMPLATE_MAX_RULES / 2,
	       "baseline must leave room for a JSON template's own rules");

struct cpuid_builtin {
	const char *name;
	const struct cpuid_rule *rules;
	unsigned nrules;
};

static const struct cpuid_builtin cpuid_builtins[] = {
	{ "host", NULL, 0 },
	{ "baseline", baseline_rules, ARRAY_SIZE(baseline_rules) },
};

/*
 * Named feature bits, for "disable" in JSON templates and for the dependency
 * pass in cpuid_template_apply. A row without a name is state that belongs to
 * a feature (its description leaves) and is only ever cleared through
 * `requires`. A row is cleared when the feature named in `requires` is absent
 * or when leaf `needs_leaf` (if non-zero) is missing from the table.
 */
struct cpuid_feature {
	const char *name;
	uint32_t leaf, subleaf;
	enum cpuid_reg reg;
	uint32_t mask;
	const char *requires;
	uint32_t needs_leaf;
};

#define L1C(n, m, req) { n, 0x1, 0, CPUID_ECX, m, req, 0 }
#define L7B(n, m, req) { n, 0x7, 0, CPUID_EBX, m, req, 0 }
#define L7C(n, m, req) { n, 0x7, 0, CPUID_ECX, m, req, 0 }
#define L7D(n, m, req) { n, 0x7, 0, CPUID_EDX, m, req, 0 }
#define L71A(n, m, req) { n, 0x7, 1, CPUID_EAX, m, req, 0 }
#define L81C(n, m, req) { n, 0x80000001, 0, CPUID_ECX, m, req, 0 }
#define L81D(n, m, req) { n, 0x80000001, 0, CPUID_EDX, m, req, 0 }
#define LEAF_STATE(leaf, req) \
	{ NULL, leaf, ANY, CPUID_EAX, ~0u, req, 0 }, \
	{ NULL, leaf, ANY, CPUID_EBX, ~0u, req, 0 }, \
	{ NULL, leaf, ANY, CPUID_ECX, ~0u, req, 0 }, \
	{ NULL, leaf, ANY, CPUID_EDX, ~0u, req, 0 }

static const struct cpuid_feature cpuid_features[] = {
	L1C("sse3", F1C_SSE3, NULL),
	L1C("pclmulqdq", F1C_PCLMULQDQ, NULL),
	L1C("monitor", F1C_MONITOR, NULL),
	L1C("vmx", F1C_VMX, NULL),
	L1C("smx", F1C_SMX, NULL),
	L1C("ssse3", F1C_SSSE3, NULL),
	L1C("fma", F1C_FMA, "avx"),
	L1C("cx16", F1C_CX16, NULL),
	L1C("pdcm", F1C_PDCM, NULL),
	L1C("pcid", F1C_PCID, NULL),
	L1C("sse4_1", F1C_SSE4_1, NULL),
	L1C("sse4_2", F1C_SSE4_2, NULL),
	L1C("x2apic", F1C_X2APIC, NULL),
	L1C("movbe", F1C_MOVBE, NULL),
	L1C("popcnt", F1C_POPCNT, NULL),
	L1C("tsc_deadline", F1C_TSC_DEADLINE, NULL),
	L1C("aes", F1C_AES, NULL),
	/* XSAVE without leaf 0xD is a lie the guest would act on. */
	{ "xsave", 0x1, 0, CPUID_ECX, F1C_XSAVE, NULL, 0xd },
	L1C("osxsave", F1C_OSXSAVE, "xsave"),
	L1C("avx", F1C_AVX, "xsave"),
	L1C("f16c", F1C_F16C, "avx"),
	L1C("rdrand", F1C_RDRAND, NULL),

	L7B("fsgsbase", F7B_FSGSBASE, NULL),
	L7B("tsc_adjust", F7B_TSC_ADJUST, NULL),
	{ "sgx", 0x7, 0, CPUID_EBX, F7B_SGX, NULL, 0x12 },
	L7B("bmi1", F7B_BMI1, NULL),
	L7B("hle", F7B_HLE, NULL),
	L7B("avx2", F7B_AVX2, "avx"),
	L7B("smep", F7B_SMEP, NULL),
	L7B("bmi2", F7B_BMI2, NULL),
	L7B("erms", F7B_ERMS, NULL),
	L7B("invpcid", F7B_INVPCID, NULL),
	L7B("rtm", F7B_RTM, NULL),
	L7B("mpx", F7B_MPX, "xsave"),
	L7B("avx512f", F7B_AVX512F, "avx2"),
	L7B("avx512dq", F7B_AVX512DQ, "avx512f"),
	L7B("rdseed", F7B_RDSEED, NULL),
	L7B("adx", F7B_ADX, NULL),
	L7B("smap", F7B_SMAP, NULL),
	L7B("avx512ifma", F7B_AVX512IFMA, "avx512f"),
	L7B("clflushopt", F7B_CLFLUSHOPT, NULL),
	L7B("clwb", F7B_CLWB, NULL),
	{ "intel_pt", 0x7, 0, CPUID_EBX, F7B_INTEL_PT, NULL, 0x14 },
	L7B("avx512pf", F7B_AVX512PF, "avx512f"),
	L7B("avx512er", F7B_AVX512ER, "avx512f"),
	L7B("avx512cd", F7B_AVX512CD, "avx512f"),
	L7B("sha", F7B_SHA, NULL),
	L7B("avx512bw", F7B_AVX512BW, "avx512f"),
	L7B("avx512vl", F7B_AVX512VL, "avx512f"),

	L7C("avx512vbmi", F7C_AVX512VBMI, "avx512f"),
	L7C("umip", F7C_UMIP, NULL),
	L7C("pku", F7C_PKU, "xsave"),
	L7C("ospke", F7C_OSPKE, "pku"),
	L7C("waitpkg", F7C_WAITPKG, NULL),
	L7C("avx512vbmi2", F7C_AVX512VBMI2, "avx512f"),
	L7C("shstk", F7C_SHSTK, "xsave"),
	L7C("gfni", F7C_GFNI, NULL),
	L7C("vaes", F7C_VAES, "avx"),
	L7C("vpclmulqdq", F7C_VPCLMULQDQ, "avx"),
	L7C("avx512vnni", F7C_AVX512VNNI, "avx512f"),
	L7C("avx512bitalg", F7C_AVX512BITALG, "avx512f"),
	L7C("avx512vpopcntdq", F7C_AVX512VPOPCNTDQ, "avx512f"),
	L7C("la57", F7C_LA57, NULL),
	L7C("rdpid", F7C_RDPID, NULL),
	L7C("movdiri", F7C_MOVDIRI, NULL),
	L7C("movdir64b", F7C_MOVDIR64B, NULL),
	L7C("sgx_lc", F7C_SGX_LC, "sgx"),

	L7D("avx512_4vnniw", F7D_AVX512_4VNNIW, "avx512f"),
	L7D("avx512_4fmaps", F7D_AVX512_4FMAPS, "avx512f"),
	L7D("fsrm", F7D_FSRM, NULL),
	L7D("avx512_vp2intersect", F7D_AVX512_VP2INTERSECT, "avx512f"),
	L7D("serialize", F7D_SERIALIZE, NULL),
	L7D("tsxldtrk", F7D_TSXLDTRK, NULL),
	L7D("ibt", F7D_IBT, "xsave"),
	{ "amx_tile", 0x7, 0, CPUID_EDX, F7D_AMX_TILE, "xsave", 0x1d },
	L7D("amx_bf16", F7D_AMX_BF16, "amx_tile"),
	L7D("amx_int8", F7D_AMX_INT8, "amx_tile"),
	L7D("avx512_fp16", F7D_AVX512_FP16, "avx512f"),

	L71A("avx_vnni", F71A_AVX_VNNI, "avx2"),
	L71A("avx512_bf16", F71A_AVX512_BF16, "avx512f"),

	L81C("lahf_lm", F81C_LAHF_LM, NULL),
	L81C("svm", F81C_SVM, NULL),
	L81C("abm", F81C_ABM, NULL),
	L81C("sse4a", F81C_SSE4A, NULL),
	L81C("misalignsse", F81C_MISALIGNSSE, NULL),
	L81C("3dnowprefetch", F81C_3DNOWPREFETCH, NULL),
	L81C("xop", F81C_XOP, "avx"),
	L81C("lwp", F81C_LWP, "xsave"),
	L81C("fma4", F81C_FMA4, "avx"),
	L81C("tbm", F81C_TBM, NULL),
	L81C("topoext", F81C_TOPOEXT, NULL),

	L81D("syscall", F81D_SYSCALL, NULL),
	L81D("nx", F81D_NX, NULL),
	L81D("mmxext", F81D_MMXEXT, NULL),
	L81D("pdpe1gb", F81D_PDPE1GB, NULL),
	L81D("rdtscp", F81D_RDTSCP, NULL),
	L81D("lm", F81D_LM, NULL),

	{ "invtsc", 0x80000007, 0, CPUID_EDX, F87D_INVTSC, NULL, 0 },

	LEAF_STATE(0xd, "xsave"),
	LEAF_STATE(0x12, "sgx"),
	LEAF_STATE(0x14, "intel_pt"),
	LEAF_STATE(0x1d, "amx_tile"),
	LEAF_STATE(0x1e, "amx_tile"),
};

static int cpuid_errf(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int cpuid_errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* File-supplied text in an error message: bounded and printable. */
static const char *cpuid_quote(const char *s, char *buf, size_t buflen)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < buflen; i++)
		buf[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	buf[i] = '\0';
	if (s[i] && buflen > 4)
		memcpy(buf + buflen - 4, "...", 4);
	return buf;
}

static uint32_t *cpuid_reg_ptr(struct kvm_cpuid_entry2 *e, enum cpuid_reg r)
{
	switch (r) {
	case CPUID_EAX: return &e->eax;
	case CPUID_EBX: return &e->ebx;
	case CPUID_ECX: return &e->ecx;
	case CPUID_EDX: return &e->edx;
	}
	return NULL;
}

/* KVM's own lookup rule: an entry without a significant index answers for
 * every subleaf of its leaf. */
static bool cpuid_entry_matches(const struct kvm_cpuid_entry2 *e, uint32_t leaf,
				uint32_t subleaf)
{
	return e->function == leaf &&
	       (subleaf == ANY || !(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ||
		e->index == subleaf);
}

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t leaf, uint32_t subleaf)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (cpuid_entry_matches(&c->entries[i], leaf, subleaf))
			return &c->entries[i];
	return NULL;
}

struct kvm_cpuid2 *cpuid_alloc(unsigned n)
{
	struct kvm_cpuid2 *c;

	/* n is 32-bit and size_t 64-bit: the size below cannot overflow. */
	_Static_assert(sizeof(size_t) >= 8, "wafer is x86-64 only");
	c = calloc(1, sizeof(*c) + (size_t)n * sizeof(c->entries[0]));
	if (c)
		c->nent = n;
	return c;
}

/* Clear `clear` then set `set` in reg of every entry matching leaf/subleaf;
 * true if some bit changed. */
static bool cpuid_mask(struct kvm_cpuid2 *c, uint32_t leaf, uint32_t subleaf,
		       enum cpuid_reg reg, uint32_t clear, uint32_t set)
{
	bool changed = false;

	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		uint32_t *r, v;

		if (!cpuid_entry_matches(e, leaf, subleaf))
			continue;
		r = cpuid_reg_ptr(e, reg);
		if (!r)
			continue;
		v = (*r & ~clear) | set;
		changed |= v != *r;
		*r = v;
	}
	return changed;
}

/* Lower the range's maximum (never raise it) and drop the leaves above it,
 * keeping the array compact. */
static void cpuid_cap_range(struct kvm_cpuid2 *c, uint32_t base, uint32_t cap, uint32_t end)
{
	struct kvm_cpuid_entry2 *e0 = cpuid_find(c, base, 0);
	uint32_t j = 0;

	if (e0 && e0->eax < cap)
		cap = e0->eax;
	if (e0)
		e0->eax = cap;
	for (uint32_t i = 0; i < c->nent; i++) {
		uint32_t f = c->entries[i].function;

		if (f > cap && f < end)
			continue;
		if (j != i)
			c->entries[j] = c->entries[i];
		j++;
	}
	c->nent = j;
}

static const struct cpuid_feature *cpuid_feature_by_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(cpuid_features); i++)
		if (cpuid_features[i].name && !strcmp(cpuid_features[i].name, name))
			return &cpuid_features[i];
	return NULL;
}

static bool cpuid_has_feature(struct kvm_cpuid2 *c, const struct cpuid_feature *f)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(c, f->leaf, f->subleaf == ANY ? 0 : f->subleaf);
	uint32_t *r = e ? cpuid_reg_ptr(e, f->reg) : NULL;

	return r && (*r & f->mask) == f->mask;
}

/* Rules can hide a feature and leave what depends on it visible (a raw rule
 * clearing XSAVE but not AVX, or a leaf cap cutting off leaf 0xD); a guest
 * that trusts such a table faults. Clear dependents until nothing changes;
 * chains are short, the bound only guards against a cycle in the table. */
static void cpuid_enforce_deps(struct kvm_cpuid2 *c)
{
	bool changed = true;

	for (size_t pass = 0; changed && pass <= ARRAY_SIZE(cpuid_features); pass++) {
		changed = false;
		for (size_t i = 0; i < ARRAY_SIZE(cpuid_features); i++) {
			const struct cpuid_feature *f = &cpuid_features[i];
			const struct cpuid_feature *req = f->requires ? cpuid_feature_by_name(f->requires) : NULL;
			bool ok = true;

			if (req && !cpuid_has_feature(c, req))
				ok = false;
			if (f->needs_leaf && !cpuid_find(c, f->needs_leaf, 0))
				ok = false;
			if (!ok)
				changed |= cpuid_mask(c, f->leaf, f->subleaf, f->reg, f->mask, 0);
		}
	}
}

void cpuid_template_apply(const struct cpuid_template *t, struct kvm_cpuid2 *c)
{
	unsigned n = t->nrules < CPUID_TEMPLATE_MAX_RULES ? t->nrules : CPUID_TEMPLATE_MAX_RULES;

	for (unsigned i = 0; i < n; i++) {
		const struct cpuid_rule *r = &t->rules[i];

		cpuid_mask(c, r->leaf, r->subleaf, r->reg, r->clear, r->set);
	}
	/* Caps outside their own range (a template built by code, not parsed)
	 * would cut into the other ranges: ignore them. */
	if (t->max_basic_leaf && t->max_basic_leaf < 0x40000000)
		cpuid_cap_range(c, 0x0, t->max_basic_leaf, 0x40000000);
	if (t->max_ext_leaf >= 0x80000000 && t->max_ext_leaf < 0x90000000)
		cpuid_cap_range(c, 0x80000000, t->max_ext_leaf, 0x90000000);
	cpuid_enforce_deps(c);
}

/* ceil(log2(n)) for n >= 1: the APIC-ID bits that n logical CPUs occupy. */
static unsigned cpuid_order(unsigned n)
{
	unsigned s = 0;

	while (s < 32 && (1ull << s) < n)
		s++;
	return s;
}

static uint32_t cpuid_min(uint64_t a, uint32_t b)
{
	return a < b ? (uint32_t)a : b;
}

void cpuid_set_topology(struct kvm_cpuid2 *c, unsigned apic_id, unsigned ncpus)
{
	unsigned shift;
	uint64_t ids;   /* addressable APIC IDs in the package: a power of two */
	struct kvm_cpuid_entry2 *e;

	if (!ncpus)
		ncpus = 1;
	shift = cpuid_order(ncpus);
	ids = 1ull << shift;

	e = cpuid_find(c, 0x1, 0);
	if (e) {
		/* SDM: EBX[23:16] counts addressable IDs, not CPUs (4 for 3 vCPUs). */
		e->ebx = (e->ebx & 0x0000ffffu) | (cpuid_min(ids, 0xff) << 16) |
			 ((apic_id & 0xffu) << 24);
		if (ncpus > 1)
			e->edx |= F1D_HTT;
		else
			e->edx &= ~F1D_HTT;
		e->ecx |= F1C_HYPERVISOR;
	}

	for (uint32_t i = 0; i < c->nent; i++) {
		e = &c->entries[i];
		switch (e->function) {
		case 0x4:
		case 0x8000001d: {
			uint32_t type = e->eax & 0x1f, level = (e->eax >> 5) & 0x7, sharing;

			if (!type)
				break;
			/* One thread per core: L1/L2 are private, L3 spans the package.
			 * Intel counts addressable IDs, AMD counts logical CPUs. */
			if (level < 3)
				sharing = 0;
			else if (e->function == 0x4)
				sharing = cpuid_min(ids - 1, 0xfff);
			else
				sharing = cpuid_min(ncpus - 1, 0xfff);
			e->eax = (e->eax & ~(0xfffu << 14)) | (sharing << 14);
			if (e->function == 0x4)
				e->eax = (e->eax & ~(0x3fu << 26)) | (cpuid_min(ids - 1, 0x3f) << 26);
			break;
		}
		case 0xb:
		case 0x1f:
			if (e->index == 0) {            /* SMT level: one thread */
				e->eax = 0;
				e->ebx = 1;
				e->ecx = (1u << 8) | 0;
			} else if (e->index == 1) {     /* core level: the package */
				e->eax = shift;
				e->ebx = cpuid_min(ncpus, 0xffff);
				e->ecx = (2u << 8) | 1;
			} else {                        /* no further levels */
				e->eax = 0;
				e->ebx = 0;
				e->ecx = e->index & 0xff;
			}
			e->edx = apic_id;
			break;
		case 0x80000008:
			e->ecx = (e->ecx & ~0xf0ffu) | (cpuid_min(shift, 0xf) << 12) |
				 cpuid_min(ncpus - 1, 0xff);
			break;
		case 0x8000001e:
			e->eax = apic_id;
			e->ebx = apic_id & 0xff;        /* core ID; threads per core - 1 = 0 */
			e->ecx = 0;                     /* node 0 of one node */
			e->edx = 0;
			break;
		case 0x40000000:
			e->eax = 0x40000001;
			memcpy(&e->ebx, "KVMK", 4);
			memcpy(&e->ecx, "VMKV", 4);
			memcpy(&e->edx, "M\0\0\0", 4);
			break;
		default:
			break;
		}
	}
}

/* The registers of a leaf that hold feature flags (bit set = the guest may
 * use it), as a mask of 1 << enum cpuid_reg. Counts, sizes, APIC IDs and
 * address widths are not features: a guest does not "use" a cache size. */
static unsigned cpuid_feature_regs(uint32_t leaf, uint32_t subleaf)
{
	switch (leaf) {
	case 0x1:
	case 0x80000001:
		return BIT(CPUID_ECX) | BIT(CPUID_EDX);
	case 0x7:   /* 7.0 EAX is the subleaf count; 7.1 EAX holds AVX-VNNI & co */
		return (subleaf == 1 ? BIT(CPUID_EAX) : 0) | BIT(CPUID_EBX) | BIT(CPUID_ECX) |
		       BIT(CPUID_EDX);
	case 0x80000007:
		return BIT(CPUID_EDX);
	default:
		return 0;
	}
}

static uint32_t cpuid_reg_get(const struct kvm_cpuid_entry2 *e, enum cpuid_reg r)
{
	return r == CPUID_EAX ? e->eax : r == CPUID_EBX ? e->ebx : r == CPUID_ECX ? e->ecx : e->edx;
}

/* What wafer can offer a guest here: the host table with the template
 * applied, plus every bit the per-vCPU pass sets on top of it (the
 * hypervisor bit, HTT). Built with the real cpuid_set_topology, not a copy
 * of its list, so a bit wafer starts adding later is accepted here too; the
 * union keeps a bit the topology pass clears for some vCPU counts (HTT). */
static struct kvm_cpuid2 *cpuid_offerable(const struct kvm_cpuid2 *guest, unsigned ncpus)
{
	struct kvm_cpuid2 *c = cpuid_alloc(guest->nent);

	if (!c)
		return NULL;
	memcpy(c->entries, guest->entries, guest->nent * sizeof(guest->entries[0]));
	cpuid_set_topology(c, 0, ncpus);
	for (uint32_t i = 0; i < c->nent; i++) {
		c->entries[i].eax |= guest->entries[i].eax;
		c->entries[i].ebx |= guest->entries[i].ebx;
		c->entries[i].ecx |= guest->entries[i].ecx;
		c->entries[i].edx |= guest->entries[i].edx;
	}
	return c;
}

/* " (avx2 avx512f)" for the named features among `bits`, "" if none. */
static void cpuid_bit_names(uint32_t leaf, uint32_t subleaf, enum cpuid_reg reg, uint32_t bits,
			    char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(cpuid_features) && n < len; i++) {
		const struct cpuid_feature *f = &cpuid_features[i];

		if (!f->name || f->leaf != leaf || f->reg != reg || !(f->mask & bits) ||
		    (f->subleaf != ANY && f->subleaf != subleaf))
			continue;
		n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? " " : " (", f->name);
	}
	if (n && n < len)
		snprintf(buf + n, len - n, ")");
}

int cpuid_check_saved(const struct kvm_cpuid2 *saved, const struct kvm_cpuid2 *guest,
		      unsigned ncpus, char *err, size_t errlen)
{
	static const char *const reg_name[] = { "eax", "ebx", "ecx", "edx" };
	struct kvm_cpuid2 *have = cpuid_offerable(guest, ncpus);
	int rc = 0;

	if (!have)
		return cpuid_errf(err, errlen, -ENOMEM, "out of memory");
	for (uint32_t i = 0; i < saved->nent && !rc; i++) {
		const struct kvm_cpuid_entry2 *s = &saved->entries[i];
		const struct kvm_cpuid_entry2 *h = cpuid_find(have, s->function, s->index);
		unsigned regs = cpuid_feature_regs(s->function, s->index);

		for (enum cpuid_reg r = CPUID_EAX; r <= CPUID_EDX && !rc; r++) {
			uint32_t missing = cpuid_reg_get(s, r) & ~(h ? cpuid_reg_get(h, r) : 0);
			char names[256];

			if (!(regs & BIT(r)) || !missing)
				continue;
			cpuid_bit_names(s->function, s->index, r, missing, names, sizeof(names));
			rc = cpuid_errf(err, errlen, -ENOTSUP, "leaf 0x%x.%u %s has features 0x%08x%s "
					"that this host lacks", s->function, s->index, reg_name[r],
					missing, names);
		}
	}
	free(have);
	return rc;
}

static const struct cpuid_builtin *cpuid_builtin_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(cpuid_builtins); i++)
		if (!strcmp(cpuid_builtins[i].name, name))
			return &cpuid_builtins[i];
	return NULL;
}

static void cpuid_builtin_copy(const struct cpuid_builtin *b, struct cpuid_template *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", b->name);
	t->nrules = b->nrules;
	if (b->nrules)
		memcpy(t->rules, b->rules, b->nrules * sizeof(b->rules[0]));
}

/* ---- JSON ---- */

struct cpuid_parse {
	char *err;
	size_t errlen;
};

static int cpuid_json_string(struct cpuid_parse *p, struct json_object *v, const char *what,
			     const char **out)
{
	if (!json_object_is_type(v, json_type_string))
		return cpuid_errf(p->err, p->errlen, -EINVAL, "%s: expected a string", what);
	*out = json_object_get_string(v);
	if (strlen(*out) != (size_t)json_object_get_string_len(v))
		return cpuid_errf(p->err, p->errlen, -EINVAL, "%s: contains a NUL character", what);
	return 0;
}

/* "0x" and hex digits; values past 32 bits saturate to UINT64_MAX. */
static bool cpuid_parse_hex(const char *s, uint64_t *val)
{
	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || !s[2])
		return false;
	*val = 0;
	for (size_t i = 2; s[i]; i++) {
		int d = isdigit((unsigned char)s[i]) ? s[i] - '0' :
			isxdigit((unsigned char)s[i]) ? tolower((unsigned char)s[i]) - 'a' + 10 : -1;

		if (d < 0)
			return false;
		if (*val <= 0xffffffffu)
			*val = *val * 16 + (uint64_t)d;
		else
			*val = UINT64_MAX;
	}
	return true;
}

/* A 32-bit value: a JSON integer, or a string "0x" + hex digits. */
static int cpuid_json_u32(struct cpuid_parse *p, struct json_object *v, const char *what,
			  uint32_t *out)
{
	const char *s;
	uint64_t val;
	char q[40];

	if (json_object_is_type(v, json_type_int)) {
		if (json_object_get_int64(v) < 0 || json_object_get_uint64(v) > 0xffffffffu)
			return cpuid_errf(p->err, p->errlen, -EINVAL,
					  "%s: %s out of range (0..0xffffffff)", what,
					  cpuid_quote(json_object_to_json_string(v), q, sizeof(q)));
		*out = (uint32_t)json_object_get_uint64(v);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return cpuid_errf(p->err, p->errlen, -EINVAL,
				  "%s: expected an integer or a hex string like \"0x1f\"", what);
	s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(s) || !cpuid_parse_hex(s, &val))
		return cpuid_errf(p->err, p->errlen, -EINVAL,
				  "%s: bad hex string \"%s\" (expected 0x followed by hex digits)",
				  what, cpuid_quote(s, q, sizeof(q)));
	if (val > 0xffffffffu)
		return cpuid_errf(p->err, p->errlen, -EINVAL,
				  "%s: \"%s\" out of range (0..0xffffffff)", what,
				  cpuid_quote(s, q, sizeof(q)));
	*out = (uint32_t)val;
	return 0;
}

/* Every key of obj must be in the NULL-terminated list. */
static int cpuid_json_keys(struct cpuid_parse *p, struct json_object *obj, const char *prefix,
			   const char *const *known, const char *expected)
{
	char q[40];

	json_object_object_foreach(obj, key, val) {
		size_t i;

		(void)val;
		for (i = 0; known[i]; i++)
			if (!strcmp(key, known[i]))
				break;
		if (!known[i])
			return cpuid_errf(p->err, p->errlen, -EINVAL,
					  "%s%s: unknown key (expected %s)", prefix,
					  cpuid_quote(key, q, sizeof(q)), expected);
	}
	return 0;
}

static int cpuid_parse_rule(struct cpuid_parse *p, struct json_object *o, size_t idx,
			    struct cpuid_rule *r)
{
	static const char *const keys[] = { "leaf", "subleaf", "register", "clear", "set",
					    "comment", NULL };
	static const char *const regs[] = { [CPUID_EAX] = "eax", [CPUID_EBX] = "ebx",
					    [CPUID_ECX] = "ecx", [CPUID_EDX] = "edx" };
	struct json_object *v;
	char what[64], q[40];
	const char *s;
	size_t i;
	int rc;

	snprintf(what, sizeof(what), "rules[%zu]", idx);
	if (!json_object_is_type(o, json_type_object))
		return cpuid_errf(p->err, p->errlen, -EINVAL, "%s: expected an object", what);
	snprintf(what, sizeof(what), "rules[%zu].", idx);
	rc = cpuid_json_keys(p, o, what, keys, "leaf, subleaf, register, clear, set, comment");
	if (rc)
		return rc;
	memset(r, 0, sizeof(*r));

	snprintf(what, sizeof(what), "rules[%zu].leaf", idx);
	if (!json_object_object_get_ex(o, "leaf", &v))
		return cpuid_errf(p->err, p->errlen, -EINVAL, "%s: missing", what);
	rc = cpuid_json_u32(p, v, what, &r->leaf);
	if (rc)
		return rc;

	snprintf(what, sizeof(what), "rules[%zu].subleaf", idx);
	if (json_object_object_get_ex(o, "subleaf", &v)) {
		if (json_object_is_type(v, json_type_string) && !strcmp(json_object_get_string(v), "*")) {
			r->subleaf = ANY;
		} else {
			rc = cpuid_json_u32(p, v, what, &r->subleaf);
			if (rc)
				return rc;
			if (r->subleaf == ANY)
				return cpuid_errf(p->err, p->errlen, -EINVAL,
						  "%s: 0xffffffff is reserved; use \"*\" for every subleaf",
						  what);
		}
	}

	snprintf(what, sizeof(what), "rules[%zu].register", idx);
	if (!json_object_object_get_ex(o, "register", &v))
		return cpuid_errf(p->err, p->errlen, -EINVAL, "%s: missing", what);
	rc = cpuid_json_string(p, v, what, &s);
	if (rc)
		return rc;
	for (i = 0; i < ARRAY_SIZE(regs); i++)
		if (!strcasecmp(s, regs[i]))
			break;
	if (i == ARRAY_SIZE(regs))
		return cpuid_errf(p->err, p->errlen, -EINVAL,
				  "%s: expected one of eax/ebx/ecx/edx, not \"%s\"", what,
				  cpuid_quote(s, q, sizeof(q)));
	r->reg = (enum cpuid_reg)i;

	snprintf(what, sizeof(what), "rules[%zu].clear", idx);
	if (json_object_object_get_ex(o, "clear", &v)) {
		rc = cpuid_json_u32(p, v, what, &r->clear);
		if (rc)
			return rc;
	}
	snprintf(what, sizeof(what), "rules[%zu].set", idx);
	if (json_object_object_get_ex(o, "set", &v)) {
		rc = cpuid_json_u32(p, v, what, &r->set);
		if (rc)
			return rc;
	}
	snprintf(what, sizeof(what), "rules[%zu].comment", idx);
	if (json_object_object_get_ex(o, "comment", &v)) {
		rc = cpuid_json_string(p, v, what, &s);
		if (rc)
			return rc;
	}
	if (!r->clear && !r->set)
		return cpuid_errf(p->err, p->errlen, -EINVAL,
				  "rules[%zu]: clear and set are both 0, the rule would do nothing", idx);
	return 0;
}

/* Feature names are matched ignoring case, with '-' and '.' taken as '_'
 * ("SSE4.2" = "sse4_2"). */
static const struct cpuid_feature *cpuid_feature_lookup(const char *s)
{
	char norm[32];
	size_t i;

	for (i = 0; s[i]; i++) {
		if (i + 1 >= sizeof(norm))
			return NULL;
		norm[i] = (s[i] == '-' || s[i] == '.') ? '_' : (char)tolower((unsigned char)s[i]);
	}
	norm[i] = '\0';
	return cpuid_feature_by_name(norm);
}

static int cpuid_parse_disable(struct cpuid_parse *p, struct json_object *arr,
			       struct cpuid_template *t)
{
	unsigned first = t->nrules;   /* disable rules are merged per register */
	char what[32], q[40];
	size_t n;

	if (!json_object_is_type(arr, json_type_array))
		return cpuid_errf(p->err, p->errlen, -EINVAL,
				  "disable: expected an array of feature names");
	n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		const struct cpuid_feature *f;
		const char *s;
		unsigned j;
		int rc;

		snprintf(what, sizeof(what), "disable[%zu]", i);
		rc = cpuid_json_string(p, json_object_array_get_idx(arr, i), what, &s);
		if (rc)
			return rc;
		f = cpuid_feature_lookup(s);
		if (!f)
			return cpuid_errf(p->err, p->errlen, -EINVAL,
					  "%s: unknown feature \"%s\" (docs/cpu-templates.md lists the names)",
					  what, cpuid_quote(s, q, sizeof(q)));
		for (j = first; j < t->nrules; j++) {
			struct cpuid_rule *r = &t->rules[j];

			if (r->leaf == f->leaf && r->subleaf == f->subleaf && r->reg == f->reg)
				break;
		}
		if (j == t->nrules) {
			if (t->nrules == CPUID_TEMPLATE_MAX_RULES)
				return cpuid_errf(p->err, p->errlen, -EINVAL,
						  "%s: too many rules (at most %d, counting base and rules)",
						  what, CPUID_TEMPLATE_MAX_RULES);
			t->rules[j] = (struct cpuid_rule){ f->leaf, f->subleaf, f->reg, 0, 0 };
			t->nrules++;
		}
		t->rules[j].clear |= f->mask;
	}
	return 0;
}

static int cpuid_parse_leaf_cap(struct cpuid_parse *p, struct json_object *root, const char *key,
				uint32_t lo, uint32_t hi, const char *why, uint32_t *out)
{
	struct json_object *v;
	int rc;

	if (!json_object_object_get_ex(root, key, &v))
		return 0;
	rc = cpuid_json_u32(p, v, key, out);
	if (rc)
		return rc;
	if (*out < lo || *out > hi)
		return cpuid_errf(p->err, p->errlen, -EINVAL, "%s: 0x%x out of range (0x%x..0x%x%s)",
				  key, *out, lo, hi, why);
	return 0;
}

static int cpuid_parse_root(struct cpuid_parse *p, struct json_object *root,
			    const char *default_name, struct cpuid_template *t)
{
	static const char *const keys[] = { "name", "description", "base", "max_basic_leaf",
					    "max_ext_leaf", "rules", "disable", NULL };
	struct json_object *v;
	const char *s;
	char q[40];
	int rc;

	if (!json_object_is_type(root, json_type_object))
		return cpuid_errf(p->err, p->errlen, -EINVAL, "expected a JSON object at the top level");
	rc = cpuid_json_keys(p, root, "", keys,
			     "name, description, base, max_basic_leaf, max_ext_leaf, rules, disable");
	if (rc)
		return rc;

	memset(t, 0, sizeof(*t));
	/* The base goes first so that the file's rules refine it. */
	if (json_object_object_get_ex(root, "base", &v)) {
		const struct cpuid_builtin *b;

		rc = cpuid_json_string(p, v, "base", &s);
		if (rc)
			return rc;
		b = cpuid_builtin_find(s);
		if (!b)
			return cpuid_errf(p->err, p->errlen, -EINVAL,
					  "base: unknown template \"%s\" (expected host or baseline)",
					  cpuid_quote(s, q, sizeof(q)));
		cpuid_builtin_copy(b, t);
	}

	snprintf(t->name, sizeof(t->name), "%s", default_name);
	if (json_object_object_get_ex(root, "name", &v)) {
		rc = cpuid_json_string(p, v, "name", &s);
		if (rc)
			return rc;
		if (!*s || strlen(s) >= sizeof(t->name))
			return cpuid_errf(p->err, p->errlen, -EINVAL, "name: must be 1..%zu characters",
					  sizeof(t->name) - 1);
		for (const char *c = s; *c; c++)
			if (!isprint((unsigned char)*c))
				return cpuid_errf(p->err, p->errlen, -EINVAL,
						  "name: contains a non-printable character");
		snprintf(t->name, sizeof(t->name), "%s", s);
	}
	if (json_object_object_get_ex(root, "description", &v)) {
		rc = cpuid_json_string(p, v, "description", &s);
		if (rc)
			return rc;
	}

	rc = cpuid_parse_leaf_cap(p, root, "max_basic_leaf", 0x1, 0x3fffffff, "", &t->max_basic_leaf);
	if (rc)
		return rc;
	rc = cpuid_parse_leaf_cap(p, root, "max_ext_leaf", 0x80000008, 0x8fffffff,
				  "; a 64-bit guest needs 0x80000008 for its address widths",
				  &t->max_ext_leaf);
	if (rc)
		return rc;

	if (json_object_object_get_ex(root, "rules", &v)) {
		size_t n;

		if (!json_object_is_type(v, json_type_array))
			return cpuid_errf(p->err, p->errlen, -EINVAL, "rules: expected an array");
		n = json_object_array_length(v);
		if (n > CPUID_TEMPLATE_MAX_RULES - t->nrules)
			return cpuid_errf(p->err, p->errlen, -EINVAL,
					  "rules: too many rules (%zu, plus %u from base; at most %d)",
					  n, t->nrules, CPUID_TEMPLATE_MAX_RULES);
		for (size_t i = 0; i < n; i++) {
			rc = cpuid_parse_rule(p, json_object_array_get_idx(v, i), i,
					      &t->rules[t->nrules]);
			if (rc)
				return rc;
			t->nrules++;
		}
	}
	if (json_object_object_get_ex(root, "disable", &v)) {
		rc = cpuid_parse_disable(p, v, t);
		if (rc)
			return rc;
	}
	return 0;
}

static int cpuid_parse_named(const char *json, const char *default_name,
			     struct cpuid_template *t, char *err, size_t errlen)
{
	struct cpuid_parse p = { err, errlen };
	struct cpuid_template nt;
	struct json_tokener *tok = NULL;
	struct json_object *root = NULL;
	enum json_tokener_error jerr;
	size_t len, end;
	int rc;

	if (!json)
		return cpuid_errf(err, errlen, -EINVAL, "no template text");
	len = strlen(json);
	if (len >= INT32_MAX)
		return cpuid_errf(err, errlen, -EINVAL, "template too large");
	if (strspn(json, " \t\r\n") == len)
		return cpuid_errf(err, errlen, -EINVAL, "empty template, expected a JSON object");
	tok = json_tokener_new_ex(CPUID_JSON_DEPTH);
	if (!tok)
		return cpuid_errf(err, errlen, -ENOMEM, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	/* The terminating NUL is passed too: it tells json-c that a document
	 * ending in a number ("42") has ended. */
	root = json_tokener_parse_ex(tok, json, (int)len + 1);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		rc = cpuid_errf(err, errlen, -EINVAL, "not JSON: unexpected end of input");
		goto out;
	}
	if (jerr != json_tokener_success || !root) {
		rc = cpuid_errf(err, errlen, -EINVAL, "not JSON: %s at byte %zu",
				json_tokener_error_desc(jerr), end);
		goto out;
	}
	rc = cpuid_parse_root(&p, root, default_name, &nt);
	if (rc)
		goto out;
	*t = nt;
out:
	json_object_put(root);
	json_tokener_free(tok);
	return rc;
}

int cpuid_template_parse_json(const char *json, struct cpuid_template *t,
			      char *err, size_t errlen)
{
	return cpuid_parse_named(json, "custom", t, err, errlen);
}

/* Whole file into a NUL-terminated buffer; JSON text has no NUL bytes. */
static int cpuid_read_file(const char *path, char **out, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t n;
	char why[160];
	int rc = file_read_all(path, CPUID_FILE_MAX, &buf, &n, why, sizeof(why));

	if (rc)
		return cpuid_errf(err, errlen, rc, "%s: %s", path, why);
	if (strlen((char *)buf) != n) {
		free(buf);
		return cpuid_errf(err, errlen, -EINVAL, "%s: contains a NUL byte, not a JSON text", path);
	}
	*out = (char *)buf;
	return 0;
}

int cpuid_template_load(const char *name_or_path, struct cpuid_template *t,
			char *err, size_t errlen)
{
	const struct cpuid_builtin *b = cpuid_builtin_find(name_or_path);
	const char *base, *dot;
	char *text = NULL, name[sizeof(t->name)], perr[256];
	size_t len = strlen(name_or_path);
	int rc;

	if (b) {
		cpuid_builtin_copy(b, t);
		return 0;
	}
	if (!strchr(name_or_path, '/') && (len < 5 || strcmp(name_or_path + len - 5, ".json")))
		return cpuid_errf(err, errlen, -EINVAL,
				  "%s: unknown CPU template (expected host, baseline or a path to a .json file)",
				  name_or_path);
	rc = cpuid_read_file(name_or_path, &text, err, errlen);
	if (rc)
		return rc;
	/* Unnamed templates are called after their file ("amd-pool.json" -> "amd-pool"). */
	base = strrchr(name_or_path, '/');
	base = base ? base + 1 : name_or_path;
	dot = strrchr(base, '.');
	snprintf(name, sizeof(name), "%.*s", (int)(dot && dot != base ? dot - base : (long)strlen(base)),
		 base);
	if (!name[0])
		snprintf(name, sizeof(name), "custom");
	rc = cpuid_parse_named(text, name, t, perr, sizeof(perr));
	if (rc)
		cpuid_errf(err, errlen, rc, "%s: %s", name_or_path, perr);
	free(text);
	return rc;
}
