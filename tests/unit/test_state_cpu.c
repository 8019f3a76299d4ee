/* vCPU and VM KVM state <-> snapshot sections, against a fake KVM: ioctl()
 * is wrapped (-Wl,--wrap) and keeps one state store per fd, so a save from
 * one "vCPU" and a load into another can be compared byte for byte, and the
 * order of the SET calls checked. What real KVM does with the state cannot
 * be checked on a host without /dev/kvm; the integration cases do that. */
#include <errno.h>
#include <linux/kvm.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "state/cpu.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define KVM_FD 500
#define NMSR 5

struct store {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint8_t xsave[4096];
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dr;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp;
	struct kvm_vcpu_events ev;
	uint64_t msr[NMSR];
	struct kvm_irqchip chip[3];
	struct kvm_pit_state2 pit;
	uint64_t clock;
};

static const uint32_t msr_index[NMSR] = { 0x10, 0x174, 0x1a0, 0xc0000080, 0x4b564d01 };
static struct store st[2];          /* fd 100/300 -> st[0], fd 200/400 -> st[1] */
static unsigned long set_log[64];
static unsigned nset;
static uint32_t refuse_get_msr = 0x1a0;  /* KVM_GET_MSRS stops here */
static uint32_t refuse_set_msr;          /* KVM_SET_MSRS stops here (0: none) */

static struct store *store_of(int fd)
{
	return fd == 100 || fd == 300 ? &st[0] : &st[1];
}

int __real_ioctl(int fd, unsigned long req, ...);

#define COPY_GET(field) do { memcpy(arg, &s->field, sizeof(s->field)); return 0; } while (0)
#define COPY_SET(field) do { memcpy(&s->field, arg, sizeof(s->field)); return 0; } while (0)

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	struct store *s = store_of(fd);

	if (nset < 64 && (req == KVM_SET_REGS || req == KVM_SET_SREGS || req == KVM_SET_XSAVE ||
			  req == KVM_SET_XCRS || req == KVM_SET_DEBUGREGS || req == KVM_SET_LAPIC ||
			  req == KVM_SET_MSRS || req == KVM_SET_MP_STATE ||
			  req == KVM_SET_VCPU_EVENTS || req == KVM_SET_IRQCHIP ||
			  req == KVM_SET_PIT2 || req == KVM_SET_CLOCK || req == KVM_SET_FPU))
		set_log[nset++] = req;
	switch (req) {
	case KVM_CHECK_EXTENSION: {
		long cap = (long)arg;
		return cap == KVM_CAP_XSAVE || cap == KVM_CAP_XCRS || cap == KVM_CAP_DEBUGREGS;
	}
	case KVM_GET_MSR_INDEX_LIST: {
		struct kvm_msr_list *l = arg;
		uint32_t room = l->nmsrs;
		l->nmsrs = NMSR;
		if (room < NMSR) {
			errno = E2BIG;
			return -1;
		}
		memcpy(l->indices, msr_index, sizeof(msr_index));
		return 0;
	}
	case KVM_GET_MSRS: {
		struct kvm_msrs *m = arg;
		for (uint32_t i = 0; i < m->nmsrs; i++) {
			if (m->entries[i].index == refuse_get_msr)
				return (int)i;
			for (int j = 0; j < NMSR; j++)
				if (msr_index[j] == m->entries[i].index)
					m->entries[i].data = s->msr[j];
		}
		return (int)m->nmsrs;
	}
	case KVM_SET_MSRS: {
		struct kvm_msrs *m = arg;
		for (uint32_t i = 0; i < m->nmsrs; i++) {
			if (m->entries[i].index == refuse_set_msr)
				return (int)i;
			for (int j = 0; j < NMSR; j++)
				if (msr_index[j] == m->entries[i].index)
					s->msr[j] = m->entries[i].data;
		}
		return (int)m->nmsrs;
	}
	case KVM_GET_REGS: COPY_GET(regs);
	case KVM_SET_REGS: COPY_SET(regs);
	case KVM_GET_SREGS: COPY_GET(sregs);
	case KVM_SET_SREGS: COPY_SET(sregs);
	case KVM_GET_XSAVE: COPY_GET(xsave);
	case KVM_SET_XSAVE: COPY_SET(xsave);
	case KVM_GET_XCRS: COPY_GET(xcrs);
	case KVM_SET_XCRS: COPY_SET(xcrs);
	case KVM_GET_DEBUGREGS: COPY_GET(dr);
	case KVM_SET_DEBUGREGS: COPY_SET(dr);
	case KVM_GET_LAPIC: COPY_GET(lapic);
	case KVM_SET_LAPIC: COPY_SET(lapic);
	case KVM_GET_MP_STATE: COPY_GET(mp);
	case KVM_SET_MP_STATE: COPY_SET(mp);
	case KVM_GET_VCPU_EVENTS: COPY_GET(ev);
	case KVM_SET_VCPU_EVENTS: COPY_SET(ev);
	case KVM_GET_PIT2: COPY_GET(pit);
	case KVM_SET_PIT2: COPY_SET(pit);
	case KVM_GET_IRQCHIP: {
		struct kvm_irqchip *c = arg;
		memcpy(c, &s->chip[c->chip_id], sizeof(*c));
		c->chip_id = c->chip_id;
		return 0;
	}
	case KVM_SET_IRQCHIP: {
		struct kvm_irqchip *c = arg;
		if (c->chip_id > 2) {
			errno = EINVAL;
			return -1;
		}
		memcpy(&s->chip[c->chip_id], c, sizeof(*c));
		return 0;
	}
	case KVM_GET_CLOCK: {
		struct kvm_clock_data *c = arg;
		c->clock = s->clock;
		return 0;
	}
	case KVM_SET_CLOCK: {
		struct kvm_clock_data *c = arg;
		s->clock = c->clock;
		return 0;
	}
	default:
		errno = ENOTTY;
		return -1;
	}
}

static void fill(void *p, size_t n, unsigned seed)
{
	uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

static struct vm vm_src, vm_dst;
static struct vcpu cpu_src, cpu_dst;

static int setup(void **state)
{
	(void)state;
	memset(st, 0, sizeof(st));
	fill(&st[0], sizeof(st[0]), 3);
	for (unsigned i = 0; i < 3; i++)
		st[0].chip[i].chip_id = i;
	memset(&vm_src, 0, sizeof(vm_src));
	memset(&vm_dst, 0, sizeof(vm_dst));
	vm_src.kvm_fd = vm_dst.kvm_fd = KVM_FD;
	vm_src.vm_fd = 300;
	vm_dst.vm_fd = 400;
	cpu_src = (struct vcpu){ .vm = &vm_src, .index = 1, .fd = 100 };
	cpu_dst = (struct vcpu){ .vm = &vm_dst, .index = 1, .fd = 200 };
	nset = 0;
	refuse_get_msr = 0x1a0;
	refuse_set_msr = 0;
	return 0;
}

/* Save cpu_src (+ VM) into a complete state; the reader points into *b. */
static void save_all(struct snap_buf *b, struct snap_reader *r)
{
	char err[256];
	snap_buf_init(b);
	snap_put_header(b);
	assert_int_equal(state_vm_save(&vm_src, b), 0);
	assert_int_equal(state_vcpu_save(&cpu_src, b), 0);
	snap_put_end(b);
	assert_int_equal(b->err, 0);
	assert_int_equal(snap_reader_open(r, b->p, b->len, err, sizeof(err)), 0);
}

static int set_pos(unsigned long req)
{
	for (unsigned i = 0; i < nset; i++)
		if (set_log[i] == req)
			return (int)i;
	return -1;
}

static void test_vcpu_roundtrip(void **state)
{
	(void)state;
	struct snap_buf b;
	struct snap_reader r;
	char err[256] = "";

	save_all(&b, &r);
	assert_int_equal(state_vcpu_load(&cpu_dst, &r, err, sizeof(err)), 0);
	assert_memory_equal(&st[1].regs, &st[0].regs, sizeof(st[0].regs));
	assert_memory_equal(&st[1].sregs, &st[0].sregs, sizeof(st[0].sregs));
	assert_memory_equal(st[1].xsave, st[0].xsave, sizeof(st[0].xsave));
	assert_memory_equal(&st[1].xcrs, &st[0].xcrs, sizeof(st[0].xcrs));
	assert_memory_equal(&st[1].dr, &st[0].dr, sizeof(st[0].dr));
	assert_memory_equal(&st[1].lapic, &st[0].lapic, sizeof(st[0].lapic));
	assert_memory_equal(&st[1].mp, &st[0].mp, sizeof(st[0].mp));
	assert_memory_equal(&st[1].ev, &st[0].ev, sizeof(st[0].ev));
	/* Every MSR but the one KVM would not read came across. */
	for (int j = 0; j < NMSR; j++) {
		if (msr_index[j] == 0x1a0)
			assert_int_equal(st[1].msr[j], 0);
		else
			assert_int_equal(st[1].msr[j], st[0].msr[j]);
	}
	/* KVM's order: sregs before regs, LAPIC before MSRs (TSC deadline),
	 * pending events last. */
	assert_true(set_pos(KVM_SET_SREGS) >= 0 && set_pos(KVM_SET_SREGS) < set_pos(KVM_SET_REGS));
	assert_true(set_pos(KVM_SET_LAPIC) < set_pos(KVM_SET_MSRS));
	assert_int_equal(set_pos(KVM_SET_VCPU_EVENTS), (int)nset - 1);
	assert_int_equal(set_pos(KVM_SET_FPU), -1);
	snap_buf_free(&b);
}

static void test_vm_roundtrip(void **state)
{
	(void)state;
	struct snap_buf b;
	struct snap_reader r;
	char err[256] = "";

	save_all(&b, &r);
	assert_int_equal(state_vm_load(&vm_dst, &r, err, sizeof(err)), 0);
	for (unsigned i = 0; i < 3; i++)
		assert_memory_equal(&st[1].chip[i], &st[0].chip[i], sizeof(st[0].chip[i]));
	assert_memory_equal(&st[1].pit, &st[0].pit, sizeof(st[0].pit));
	assert_int_equal(st[1].clock, st[0].clock);
	snap_buf_free(&b);
}

/* Rebuild a state whose vcpu section is replaced by payload. */
static void state_with_vcpu(struct snap_buf *b, struct snap_reader *r, uint32_t version,
			    const void *payload, size_t len)
{
	char err[256];
	snap_buf_init(b);
	snap_put_header(b);
	size_t t = snap_section_begin(b, "vcpu", 1, version);
	snap_buf_put(b, payload, len);
	snap_section_end(b, t);
	snap_put_end(b);
	assert_int_equal(snap_reader_open(r, b->p, b->len, err, sizeof(err)), 0);
}

/* The saved vcpu section's payload, copied out. */
static uint8_t *saved_vcpu_payload(size_t *len)
{
	struct snap_buf b;
	struct snap_reader r;
	struct snap_section s;
	save_all(&b, &r);
	assert_int_equal(snap_reader_find(&r, "vcpu", 1, &s), 0);
	uint8_t *p = malloc(s.len);
	memcpy(p, s.data, s.len);
	*len = s.len;
	snap_buf_free(&b);
	return p;
}

static void expect_refused(const void *payload, size_t len, uint32_t version, const char *msg)
{
	struct snap_buf b;
	struct snap_reader r;
	char err[256] = "";
	nset = 0;
	state_with_vcpu(&b, &r, version, payload, len);
	assert_true(state_vcpu_load(&cpu_dst, &r, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, msg));
	assert_int_equal(nset, 0);   /* refused before anything was set */
	snap_buf_free(&b);
}

static void test_vcpu_refuses_bad_state(void **state)
{
	(void)state;
	size_t len;
	uint8_t *p = saved_vcpu_payload(&len);

	/* regs blob first: kind 1, size sizeof(kvm_regs). Claim a smaller size. */
	uint8_t *q = malloc(len);
	memcpy(q, p, len);
	uint32_t small = 16;
	memcpy(q + 4, &small, 4);
	expect_refused(q, len, 1, "truncated");             /* sizes no longer add up */

	memcpy(q, p, len);
	uint32_t kind = 99;
	memcpy(q, &kind, 4);
	expect_refused(q, len, 1, "unknown state kind 99");

	expect_refused(p, len - 3, 1, "truncated");
	expect_refused(p, len, 2, "state version 2");

	/* A regs blob of the wrong size that still parses: refused by size. */
	struct snap_buf b;
	snap_buf_init(&b);
	snap_buf_put_u32(&b, 1);
	snap_buf_put_u32(&b, 8);
	snap_buf_put_u64(&b, 0);
	snap_buf_put(&b, p + 8 + sizeof(struct kvm_regs), len - 8 - sizeof(struct kvm_regs));
	expect_refused(b.p, b.len, 1, "regs state is 8 bytes");
	snap_buf_free(&b);

	/* The same blob twice. */
	snap_buf_init(&b);
	snap_buf_put(&b, p, 8 + sizeof(struct kvm_regs));
	snap_buf_put(&b, p, len);
	expect_refused(b.p, b.len, 1, "regs twice");
	snap_buf_free(&b);
	free(q);
	free(p);
}

static void test_vcpu_missing_section(void **state)
{
	(void)state;
	struct snap_buf b;
	struct snap_reader r;
	char err[256] = "";
	snap_buf_init(&b);
	snap_put_header(&b);
	snap_put_end(&b);
	assert_int_equal(snap_reader_open(&r, b.p, b.len, err, sizeof(err)), 0);
	assert_int_equal(state_vcpu_load(&cpu_dst, &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "no state for vcpu 1");
	assert_int_equal(state_vm_load(&vm_dst, &r, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no irqchip"));
	snap_buf_free(&b);
}

static void test_msr_refused_on_load(void **state)
{
	(void)state;
	struct snap_buf b;
	struct snap_reader r;
	char err[256] = "";
	save_all(&b, &r);
	refuse_set_msr = 0xc0000080;
	assert_int_equal(state_vcpu_load(&cpu_dst, &r, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "KVM refused MSR 0xc0000080"));
	snap_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_vcpu_roundtrip, setup),
		cmocka_unit_test_setup(test_vm_roundtrip, setup),
		cmocka_unit_test_setup(test_vcpu_refuses_bad_state, setup),
		cmocka_unit_test_setup(test_vcpu_missing_section, setup),
		cmocka_unit_test_setup(test_msr_refused_on_load, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
