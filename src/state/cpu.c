/* KVM vCPU and VM state <-> snapshot sections.
 *
 * The KVM structures are kernel ABI (linux/kvm.h, asm/kvm.h): fixed layout
 * with explicit padding, the same for every compiler, which is why they are
 * stored as sized blobs. Every blob carries its kind and size; a loader
 * refuses an unknown kind or a size other than this build's struct (or this
 * host's XSAVE area) instead of guessing. MSRs are stored as index/value
 * pairs from KVM's own list of MSRs to save. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "state/cpu.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define VCPU_SECTION_VERSION 1
#define VM_SECTION_VERSION   1

enum cpu_blob {
	BLOB_REGS = 1, BLOB_SREGS, BLOB_FPU, BLOB_XSAVE, BLOB_XCRS, BLOB_DEBUGREGS,
	BLOB_LAPIC, BLOB_MSRS, BLOB_MP_STATE, BLOB_EVENTS, BLOB_TSC_KHZ,
	BLOB__MAX
};

static const char *const blob_names[BLOB__MAX] = {
	[BLOB_REGS] = "regs", [BLOB_SREGS] = "sregs", [BLOB_FPU] = "fpu",
	[BLOB_XSAVE] = "xsave", [BLOB_XCRS] = "xcrs", [BLOB_DEBUGREGS] = "debugregs",
	[BLOB_LAPIC] = "lapic", [BLOB_MSRS] = "msrs", [BLOB_MP_STATE] = "mp_state",
	[BLOB_EVENTS] = "events", [BLOB_TSC_KHZ] = "tsc_khz",
};

static void put_blob(struct snap_buf *b, enum cpu_blob kind, const void *p, size_t len)
{
	snap_buf_put_u32(b, kind);
	snap_buf_put_u32(b, (uint32_t)len);
	snap_buf_put(b, p, len);
}

static int kvm_cap(struct vm *vm, int cap)
{
	int r = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, cap);
	return r > 0 ? r : 0;
}

/* Bytes KVM moves for KVM_GET/SET_XSAVE on this host (>= 4096). */
static size_t xsave_size(struct vm *vm)
{
	int n = kvm_cap(vm, KVM_CAP_XSAVE2);
	return n > (int)sizeof(struct kvm_xsave) ? (size_t)n : sizeof(struct kvm_xsave);
}

/* KVM's list of MSRs to save/restore; malloc'd, NULL on failure. */
static struct kvm_msr_list *msr_index_list(struct vm *vm)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return NULL;
	if (probe.nmsrs == 0 || probe.nmsrs > 4096)
		return NULL;
	struct kvm_msr_list *l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
	if (!l)
		return NULL;
	l->nmsrs = probe.nmsrs;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		free(l);
		return NULL;
	}
	return l;
}

/* Read every listed MSR KVM will give; KVM_GET_MSRS stops at the first one it
 * refuses, which is then skipped. Appends count + index/value pairs. */
static int save_msrs(struct vcpu *v, struct snap_buf *b)
{
	struct kvm_msr_list *l = msr_index_list(v->vm);
	struct kvm_msrs *m = NULL;
	struct snap_buf pairs;
	uint32_t count = 0;
	int rc = 0;

	snap_buf_init(&pairs);
	if (!l) {
		rc = -ENOTSUP;
		goto out;
	}
	m = calloc(1, sizeof(*m) + l->nmsrs * sizeof(struct kvm_msr_entry));
	if (!m) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < l->nmsrs;) {
		uint32_t n = l->nmsrs - i;
		memset(m, 0, sizeof(*m) + n * sizeof(struct kvm_msr_entry));
		m->nmsrs = n;
		for (uint32_t j = 0; j < n; j++)
			m->entries[j].index = l->indices[i + j];
		int got = ioctl(v->fd, KVM_GET_MSRS, m);
		if (got < 0) {
			rc = -errno;
			goto out;
		}
		if ((uint32_t)got > n)
			got = (int)n;
		for (int j = 0; j < got; j++) {
			snap_buf_put_u32(&pairs, m->entries[j].index);
			snap_buf_put_u64(&pairs, m->entries[j].data);
			count++;
		}
		i += (uint32_t)got + ((uint32_t)got < n ? 1 : 0);
	}
	snap_buf_put_u32(b, BLOB_MSRS);
	snap_buf_put_u32(b, (uint32_t)(4 + pairs.len));
	snap_buf_put_u32(b, count);
	snap_buf_put(b, pairs.p, pairs.len);
	rc = pairs.err;
out:
	snap_buf_free(&pairs);
	free(m);
	free(l);
	return rc;
}

int state_vcpu_save(struct vcpu *v, struct snap_buf *b)
{
	struct vm *vm = v->vm;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp;
	struct kvm_vcpu_events ev;
	void *xs = NULL;
	int rc = 0;

	size_t tok = snap_section_begin(b, "vcpu", v->index, VCPU_SECTION_VERSION);
#define GET(req, obj, kind)                                      \
	do {                                                     \
		memset(&(obj), 0, sizeof(obj));                  \
		if (ioctl(v->fd, req, &(obj)) < 0) {             \
			rc = -errno;                             \
			goto out;                                \
		}                                                \
		put_blob(b, kind, &(obj), sizeof(obj));          \
	} while (0)
	GET(KVM_GET_REGS, regs, BLOB_REGS);
	GET(KVM_GET_SREGS, sregs, BLOB_SREGS);
	if (kvm_cap(vm, KVM_CAP_XSAVE)) {
		size_t n = xsave_size(vm);
		xs = calloc(1, n);
		if (!xs) {
			rc = -ENOMEM;
			goto out;
		}
		if (ioctl(v->fd, n > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xs) < 0) {
			rc = -errno;
			goto out;
		}
		put_blob(b, BLOB_XSAVE, xs, n);
	} else {
		struct kvm_fpu fpu;
		GET(KVM_GET_FPU, fpu, BLOB_FPU);
	}
	if (kvm_cap(vm, KVM_CAP_XCRS)) {
		struct kvm_xcrs xcrs;
		GET(KVM_GET_XCRS, xcrs, BLOB_XCRS);
	}
	if (kvm_cap(vm, KVM_CAP_DEBUGREGS)) {
		struct kvm_debugregs dr;
		GET(KVM_GET_DEBUGREGS, dr, BLOB_DEBUGREGS);
	}
	GET(KVM_GET_LAPIC, lapic, BLOB_LAPIC);
	rc = save_msrs(v, b);
	if (rc)
		goto out;
	GET(KVM_GET_MP_STATE, mp, BLOB_MP_STATE);
	GET(KVM_GET_VCPU_EVENTS, ev, BLOB_EVENTS);
#undef GET
	if (kvm_cap(vm, KVM_CAP_GET_TSC_KHZ)) {
		int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
		if (khz > 0) {
			uint32_t k = (uint32_t)khz;
			put_blob(b, BLOB_TSC_KHZ, &k, sizeof(k));
		}
	}
	snap_section_end(b, tok);
	rc = b->err;
out:
	free(xs);
	return rc;
}

struct vcpu_blobs {
	const uint8_t *p[BLOB__MAX];
	uint32_t len[BLOB__MAX];
};

static int blobs_parse(const struct snap_section *s, struct vcpu_blobs *out, char *err, size_t errlen)
{
	struct snap_cur c;

	memset(out, 0, sizeof(*out));
	snap_cur_init(&c, s->data, s->len);
	while (!c.err && snap_cur_left(&c)) {
		uint32_t kind = snap_cur_u32(&c), len = snap_cur_u32(&c);
		const uint8_t *p = snap_cur_take(&c, len);
		if (c.err)
			break;
		if (kind == 0 || kind >= BLOB__MAX) {
			snprintf(err, errlen, "%s %u: unknown state kind %u", s->name, s->instance, kind);
			return -EINVAL;
		}
		if (out->p[kind]) {
			snprintf(err, errlen, "%s %u: %s twice", s->name, s->instance, blob_names[kind]);
			return -EINVAL;
		}
		out->p[kind] = p;
		out->len[kind] = len;
	}
	if (snap_cur_end(&c)) {
		snprintf(err, errlen, "%s %u: truncated", s->name, s->instance);
		return -EINVAL;
	}
	return 0;
}

/* The blob of kind, which must be exactly size bytes (required or absent). */
static const void *blob_get(const struct vcpu_blobs *bl, enum cpu_blob kind, size_t size,
			    bool required, unsigned idx, char *err, size_t errlen, int *rc)
{
	if (!bl->p[kind]) {
		if (required) {
			snprintf(err, errlen, "vcpu %u: no %s state", idx, blob_names[kind]);
			*rc = -EINVAL;
		}
		return NULL;
	}
	if (bl->len[kind] != size) {
		snprintf(err, errlen, "vcpu %u: %s state is %u bytes, this host's is %zu "
			 "(different KVM or CPU)", idx, blob_names[kind], bl->len[kind], size);
		*rc = -EINVAL;
		return NULL;
	}
	return bl->p[kind];
}

static int load_msrs(struct vcpu *v, const uint8_t *p, uint32_t len, char *err, size_t errlen)
{
	struct snap_cur c;
	struct kvm_msrs *m = NULL;
	int rc = 0;

	snap_cur_init(&c, p, len);
	uint32_t n = snap_cur_u32(&c);
	if (c.err || n > 4096 || (uint64_t)n * 12 != snap_cur_left(&c)) {
		snprintf(err, errlen, "vcpu %u: malformed MSR list", v->index);
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m) + n * sizeof(struct kvm_msr_entry));
	if (!m)
		return -ENOMEM;
	m->nmsrs = n;
	for (uint32_t i = 0; i < n; i++) {
		m->entries[i].index = snap_cur_u32(&c);
		m->entries[i].data = snap_cur_u64(&c);
	}
	int set = ioctl(v->fd, KVM_SET_MSRS, m);
	if (set < 0) {
		rc = -errno;
		snprintf(err, errlen, "vcpu %u: KVM_SET_MSRS: %s", v->index, strerror(errno));
	} else if ((uint32_t)set != n) {
		rc = -EINVAL;
		snprintf(err, errlen, "vcpu %u: KVM refused MSR 0x%x (%d of %u set): different CPU?",
			 v->index, m->entries[set].index, set, n);
	}
	free(m);
	return rc;
}

int state_vcpu_load(struct vcpu *v, const struct snap_reader *r, char *err, size_t errlen)
{
	struct vm *vm = v->vm;
	struct snap_section s;
	struct vcpu_blobs bl;
	int rc = 0;

	if (snap_reader_find(r, "vcpu", v->index, &s)) {
		snprintf(err, errlen, "no state for vcpu %u", v->index);
		return -EINVAL;
	}
	if (s.version != VCPU_SECTION_VERSION) {
		snprintf(err, errlen, "vcpu %u: state version %u, this wafer reads %u", v->index,
			 s.version, VCPU_SECTION_VERSION);
		return -EPROTO;
	}
	rc = blobs_parse(&s, &bl, err, errlen);
	if (rc)
		return rc;
	/* Check every size before changing anything. */
	size_t xs = kvm_cap(vm, KVM_CAP_XSAVE) ? xsave_size(vm) : 0;
	const void *regs = blob_get(&bl, BLOB_REGS, sizeof(struct kvm_regs), true, v->index, err, errlen, &rc);
	const void *sregs = blob_get(&bl, BLOB_SREGS, sizeof(struct kvm_sregs), true, v->index, err, errlen, &rc);
	const void *fpu = xs ? NULL : blob_get(&bl, BLOB_FPU, sizeof(struct kvm_fpu), true, v->index, err, errlen, &rc);
	const void *xsave = xs ? blob_get(&bl, BLOB_XSAVE, xs, true, v->index, err, errlen, &rc) : NULL;
	const void *xcrs = blob_get(&bl, BLOB_XCRS, sizeof(struct kvm_xcrs), false, v->index, err, errlen, &rc);
	const void *dr = blob_get(&bl, BLOB_DEBUGREGS, sizeof(struct kvm_debugregs), false, v->index, err, errlen, &rc);
	const void *lapic = blob_get(&bl, BLOB_LAPIC, sizeof(struct kvm_lapic_state), true, v->index, err, errlen, &rc);
	const void *mp = blob_get(&bl, BLOB_MP_STATE, sizeof(struct kvm_mp_state), true, v->index, err, errlen, &rc);
	const void *ev = blob_get(&bl, BLOB_EVENTS, sizeof(struct kvm_vcpu_events), true, v->index, err, errlen, &rc);
	const void *khz = blob_get(&bl, BLOB_TSC_KHZ, sizeof(uint32_t), false, v->index, err, errlen, &rc);
	if (rc)
		return rc;
	if (!bl.p[BLOB_MSRS]) {
		snprintf(err, errlen, "vcpu %u: no msrs state", v->index);
		return -EINVAL;
	}
	if (xs && bl.p[BLOB_FPU]) {
		snprintf(err, errlen, "vcpu %u: saved without XSAVE, this host has it", v->index);
		return -EINVAL;
	}
	/* The guest's TSC rate goes with it; scale if this host's differs. */
	if (khz && kvm_cap(vm, KVM_CAP_TSC_CONTROL)) {
		uint32_t k;
		memcpy(&k, khz, sizeof(k));
		int cur = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
		if (cur > 0 && (uint32_t)cur != k && ioctl(v->fd, KVM_SET_TSC_KHZ, (unsigned long)k) < 0) {
			rc = -errno;
			snprintf(err, errlen, "vcpu %u: cannot set the saved TSC rate %u kHz: %s",
				 v->index, k, strerror(-rc));
			return rc;
		}
	}
#define SET(req, ptr, what)                                                           \
	do {                                                                          \
		if ((ptr) && ioctl(v->fd, req, ptr) < 0) {                             \
			rc = -errno;                                                  \
			snprintf(err, errlen, "vcpu %u: %s: %s", v->index, what, strerror(errno)); \
			return rc;                                                    \
		}                                                                     \
	} while (0)
	SET(KVM_SET_SREGS, sregs, "KVM_SET_SREGS");
	SET(KVM_SET_REGS, regs, "KVM_SET_REGS");
	SET(KVM_SET_XSAVE, xsave, "KVM_SET_XSAVE");
	SET(KVM_SET_FPU, fpu, "KVM_SET_FPU");
	SET(KVM_SET_XCRS, xcrs, "KVM_SET_XCRS");
	SET(KVM_SET_DEBUGREGS, dr, "KVM_SET_DEBUGREGS");
	SET(KVM_SET_LAPIC, lapic, "KVM_SET_LAPIC");
	rc = load_msrs(v, bl.p[BLOB_MSRS], bl.len[BLOB_MSRS], err, errlen);
	if (rc)
		return rc;
	SET(KVM_SET_MP_STATE, mp, "KVM_SET_MP_STATE");
	SET(KVM_SET_VCPU_EVENTS, ev, "KVM_SET_VCPU_EVENTS");
#undef SET
	return 0;
}

static const unsigned irqchip_ids[] = { KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
					KVM_IRQCHIP_IOAPIC };

int state_vm_save(struct vm *vm, struct snap_buf *b)
{
	struct kvm_irqchip chip;
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
	size_t tok;

	for (unsigned i = 0; i < 3; i++) {
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = irqchip_ids[i];
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
			return -errno;
		tok = snap_section_begin(b, "irqchip", irqchip_ids[i], VM_SECTION_VERSION);
		snap_buf_put(b, &chip, sizeof(chip));
		snap_section_end(b, tok);
	}
	memset(&pit, 0, sizeof(pit));
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
		return -errno;
	tok = snap_section_begin(b, "pit", 0, VM_SECTION_VERSION);
	snap_buf_put(b, &pit, sizeof(pit));
	snap_section_end(b, tok);
	memset(&clock, 0, sizeof(clock));
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return -errno;
	tok = snap_section_begin(b, "clock", 0, VM_SECTION_VERSION);
	snap_buf_put_u64(b, clock.clock);
	snap_buf_put_u32(b, clock.flags);
	snap_section_end(b, tok);
	return b->err;
}

/* The payload of section name/instance, which must be exactly size bytes. */
static const void *vm_section(const struct snap_reader *r, const char *name, uint32_t instance,
			      size_t size, char *err, size_t errlen)
{
	struct snap_section s;
	if (snap_reader_find(r, name, instance, &s)) {
		snprintf(err, errlen, "no %s/%u state", name, instance);
		return NULL;
	}
	if (s.version != VM_SECTION_VERSION) {
		snprintf(err, errlen, "%s/%u: state version %u, this wafer reads %u", name,
			 instance, s.version, VM_SECTION_VERSION);
		return NULL;
	}
	if (s.len != size) {
		snprintf(err, errlen, "%s/%u: %zu bytes, expected %zu", name, instance, s.len, size);
		return NULL;
	}
	return s.data;
}

static int vm_load_fail(const char *what, char *err, size_t errlen)
{
	int e = errno;
	snprintf(err, errlen, "%s: %s", what, strerror(e));
	return -e;
}

int state_vm_load(struct vm *vm, const struct snap_reader *r, char *err, size_t errlen)
{
	struct kvm_irqchip chip[3];
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
	struct snap_cur c;
	const void *p;

	/* Validate all, then apply. */
	for (unsigned i = 0; i < 3; i++) {
		p = vm_section(r, "irqchip", irqchip_ids[i], sizeof(chip[i]), err, errlen);
		if (!p)
			return -EINVAL;
		memcpy(&chip[i], p, sizeof(chip[i]));
		if (chip[i].chip_id != irqchip_ids[i]) {
			snprintf(err, errlen, "irqchip/%u: holds chip %u", irqchip_ids[i], chip[i].chip_id);
			return -EINVAL;
		}
	}
	p = vm_section(r, "pit", 0, sizeof(pit), err, errlen);
	if (!p)
		return -EINVAL;
	memcpy(&pit, p, sizeof(pit));
	p = vm_section(r, "clock", 0, 12, err, errlen);
	if (!p)
		return -EINVAL;
	snap_cur_init(&c, p, 12);
	memset(&clock, 0, sizeof(clock));
	clock.clock = snap_cur_u64(&c);
	(void)snap_cur_u32(&c);   /* flags: informational; SET_CLOCK takes none we use */

	for (unsigned i = 0; i < 3; i++) {
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip[i]) < 0)
			return vm_load_fail("KVM_SET_IRQCHIP", err, errlen);
	}
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
		return vm_load_fail("KVM_SET_PIT2", err, errlen);
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return vm_load_fail("KVM_SET_CLOCK", err, errlen);
	return 0;
}
