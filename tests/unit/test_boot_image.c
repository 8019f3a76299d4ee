/* boot_load_kernel, boot_place_initrd and decompress_payload on synthetic ELF64,
 * PVH ELF64/ELF32 and bzImage (every host payload format) images, and on hostile
 * ones: truncation, overflowing offsets, bad segments, lying sizes, huge notes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>
#include <lz4.h>
#include <elf.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "arch/x86/boot.h"
#include "arch/x86/bootparam.h"
#include "arch/x86/decompress.h"
#include "arch/x86/layout.h"
#include "vmm/memory.h"

#define GUEST_SIZE   (32ULL << 20)
#define POISON       0xCC
#define KERNEL_PA    0x1000000ULL    /* where Linux links vmlinux (LOAD_PHYSICAL_ADDR) */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* ---- guest memory ------------------------------------------------------ */

static void guest_new(struct guest_mem *m, uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(p != MAP_FAILED);
	gmem_init(m, p, size);
}

static void guest_poison(struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	memset(gmem_ptr(m, gpa, len), POISON, len);
}

static void guest_free(struct guest_mem *m)
{
	munmap(m->host, m->size);
}

static int guest_all(const struct guest_mem *m, uint64_t gpa, uint64_t len, uint8_t v)
{
	const uint8_t *p = gmem_ptr(m, gpa, len);
	assert_non_null(p);
	for (uint64_t i = 0; i < len; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/* ---- ELF builder ------------------------------------------------------- */

struct seg {
	uint64_t paddr, vaddr;
	uint32_t filesz, memsz;
	uint8_t fill;
};

struct note {
	const char *name;
	uint32_t type;
	const void *desc;
	uint32_t descsz;
};

struct elf_spec {
	int class32;            /* 0: ELF64/x86-64, 1: ELF32/i386 */
	uint16_t machine;       /* 0: the class's default */
	uint16_t type;          /* 0: ET_EXEC */
	uint64_t entry;
	int nsegs, nnotes;
	struct seg segs[4];
	struct note notes[4];
};

struct elf_layout {
	size_t len, phoff, phentsize;
	size_t note_off, note_len;
	size_t seg_off[4];
};

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Headers, phdrs (PT_NOTE first if any notes, then the PT_LOADs), the notes,
 * then segment file bytes, last: every truncation breaks something. */
static uint8_t *elf_build(const struct elf_spec *s, struct elf_layout *l)
{
	int c64 = !s->class32;
	size_t ehsize = c64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	size_t phentsize = c64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	unsigned nph = (unsigned)s->nsegs + (s->nnotes ? 1 : 0);
	size_t off, note_len = 0;
	uint8_t *b;

	for (int i = 0; i < s->nnotes; i++)
		note_len += 12 + ((strlen(s->notes[i].name) + 1 + 3) & ~3u) +
			    ((s->notes[i].descsz + 3) & ~3u);
	memset(l, 0, sizeof(*l));
	l->phoff = ehsize;
	l->phentsize = phentsize;
	l->note_off = ehsize + nph * phentsize;
	l->note_len = note_len;
	off = (l->note_off + note_len + 15) & ~(size_t)15;
	for (int i = 0; i < s->nsegs; i++) {
		l->seg_off[i] = off;
		off += s->segs[i].filesz;
	}
	l->len = off;
	b = calloc(1, l->len);
	assert_non_null(b);

	memcpy(b, ELFMAG, SELFMAG);
	b[EI_CLASS] = c64 ? ELFCLASS64 : ELFCLASS32;
	b[EI_DATA] = ELFDATA2LSB;
	b[EI_VERSION] = EV_CURRENT;
	if (c64) {
		Elf64_Ehdr eh = { 0 };
		memcpy(eh.e_ident, b, EI_NIDENT);
		eh.e_type = s->type ? s->type : ET_EXEC;
		eh.e_machine = s->machine ? s->machine : EM_X86_64;
		eh.e_version = EV_CURRENT;
		eh.e_entry = s->entry;
		eh.e_phoff = l->phoff;
		eh.e_ehsize = (uint16_t)ehsize;
		eh.e_phentsize = (uint16_t)phentsize;
		eh.e_phnum = (uint16_t)nph;
		memcpy(b, &eh, sizeof(eh));
	} else {
		Elf32_Ehdr eh = { 0 };
		memcpy(eh.e_ident, b, EI_NIDENT);
		eh.e_type = s->type ? s->type : ET_EXEC;
		eh.e_machine = s->machine ? s->machine : EM_386;
		eh.e_version = EV_CURRENT;
		eh.e_entry = (uint32_t)s->entry;
		eh.e_phoff = (uint32_t)l->phoff;
		eh.e_ehsize = (uint16_t)ehsize;
		eh.e_phentsize = (uint16_t)phentsize;
		eh.e_phnum = (uint16_t)nph;
		memcpy(b, &eh, sizeof(eh));
	}

	unsigned ph = 0;
	if (s->nnotes) {
		if (c64) {
			Elf64_Phdr p = { .p_type = PT_NOTE, .p_offset = l->note_off,
					 .p_filesz = note_len, .p_memsz = note_len, .p_align = 4 };
			memcpy(b + l->phoff + ph * phentsize, &p, sizeof(p));
		} else {
			Elf32_Phdr p = { .p_type = PT_NOTE, .p_offset = (uint32_t)l->note_off,
					 .p_filesz = (uint32_t)note_len, .p_memsz = (uint32_t)note_len,
					 .p_align = 4 };
			memcpy(b + l->phoff + ph * phentsize, &p, sizeof(p));
		}
		ph++;
		size_t n = l->note_off;
		for (int i = 0; i < s->nnotes; i++) {
			const struct note *nt = &s->notes[i];
			uint32_t namesz = (uint32_t)strlen(nt->name) + 1;
			put32(b + n, namesz);
			put32(b + n + 4, nt->descsz);
			put32(b + n + 8, nt->type);
			memcpy(b + n + 12, nt->name, namesz);
			n += 12 + ((namesz + 3) & ~3u);
			memcpy(b + n, nt->desc, nt->descsz);
			n += (nt->descsz + 3) & ~3u;
		}
	}
	for (int i = 0; i < s->nsegs; i++, ph++) {
		const struct seg *sg = &s->segs[i];
		uint64_t vaddr = sg->vaddr ? sg->vaddr : sg->paddr;
		if (c64) {
			Elf64_Phdr p = { .p_type = PT_LOAD, .p_offset = l->seg_off[i],
					 .p_vaddr = vaddr, .p_paddr = sg->paddr, .p_filesz = sg->filesz,
					 .p_memsz = sg->memsz, .p_align = 0x1000, .p_flags = PF_R | PF_X };
			memcpy(b + l->phoff + ph * phentsize, &p, sizeof(p));
		} else {
			Elf32_Phdr p = { .p_type = PT_LOAD, .p_offset = (uint32_t)l->seg_off[i],
					 .p_vaddr = (uint32_t)vaddr, .p_paddr = (uint32_t)sg->paddr,
					 .p_filesz = sg->filesz, .p_memsz = sg->memsz, .p_align = 0x1000,
					 .p_flags = PF_R | PF_X };
			memcpy(b + l->phoff + ph * phentsize, &p, sizeof(p));
		}
		memset(b + l->seg_off[i], sg->fill, sg->filesz);
	}
	return b;
}

/* Offset of PT_LOAD i's phdr (after the PT_NOTE if there is one). */
static size_t elf_load_phdr(const struct elf_spec *s, const struct elf_layout *l, int i)
{
	return l->phoff + (size_t)(i + (s->nnotes ? 1 : 0)) * l->phentsize;
}

static const uint32_t pvh_entry32 = 0x100040;
static const uint64_t pvh_entry64 = 0x100080;
static const char linux_salt[] = "6.1.0-test";

/* A two-segment vmlinux-like ELF64: text with bss, and data. */
static struct elf_spec spec_two_loads(void)
{
	struct elf_spec s = {
		.entry = 0x100010,
		.nsegs = 2,
		.segs = {
			{ .paddr = 0x100000, .filesz = 0x100, .memsz = 0x2000, .fill = 0xAA },
			{ .paddr = 0x200000, .filesz = 0x80, .memsz = 0x80, .fill = 0xBB },
		},
	};
	return s;
}

static struct elf_spec spec_pvh(int desc8)
{
	struct elf_spec s = spec_two_loads();
	s.nnotes = 1;
	s.notes[0] = (struct note){ "Xen", XEN_ELFNOTE_PHYS32_ENTRY,
				    desc8 ? (const void *)&pvh_entry64 : (const void *)&pvh_entry32,
				    desc8 ? 8 : 4 };
	return s;
}

/* vmlinux shape: linked at 16 MiB, Linux build-salt note and a PVH note. */
static struct elf_spec spec_vmlinux(void)
{
	static const uint64_t pvh = KERNEL_PA + 0x850;
	struct elf_spec s = {
		.entry = KERNEL_PA,
		.nsegs = 2,
		.segs = {
			{ .paddr = KERNEL_PA, .vaddr = 0xffffffff81000000ULL, .filesz = 0x1000,
			  .memsz = 0x3000, .fill = 0x5A },
			{ .paddr = KERNEL_PA + 0x200000, .vaddr = 0xffffffff81200000ULL,
			  .filesz = 0x100, .memsz = 0x100, .fill = 0x6B },
		},
		.nnotes = 2,
		.notes = {
			{ "Linux", 0x100, linux_salt, sizeof(linux_salt) },
			{ "Xen", XEN_ELFNOTE_PHYS32_ENTRY, &pvh, 8 },
		},
	};
	return s;
}

/* ---- helpers ------------------------------------------------------------ */

struct ctx {
	struct guest_mem m;
	struct boot_plan plan;
	char err[512];
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	guest_new(&c->m, GUEST_SIZE);
	guest_poison(&c->m, 0, GUEST_SIZE);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	guest_free(&c->m);
	free(c);
	return 0;
}

/* Load from an exact-size heap copy so any over-read trips ASan. */
static int load_exact(struct ctx *c, const uint8_t *img, size_t len, int prefer_pvh)
{
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, img, len);
	c->err[0] = '\0';
	rc = boot_load_kernel(&c->m, copy, len, prefer_pvh, &c->plan, c->err, sizeof(c->err));
	free(copy);
	return rc;
}

static int load_spec(struct ctx *c, const struct elf_spec *s, int prefer_pvh)
{
	struct elf_layout l;
	uint8_t *img = elf_build(s, &l);
	int rc = load_exact(c, img, l.len, prefer_pvh);
	free(img);
	return rc;
}

#define assert_err_has(c, s) do { \
	if (!strstr((c)->err, (s))) \
		fail_msg("error \"%s\" does not mention \"%s\"", (c)->err, (s)); \
} while (0)

/* ---- ELF ---------------------------------------------------------------- */

static void test_elf64_two_loads(void **state)
{
	struct ctx *c = *state;
	struct elf_spec s = spec_two_loads();

	assert_int_equal(load_spec(c, &s, 0), 0);
	assert_int_equal(c->plan.mode, BOOT_MODE_LINUX64);
	assert_int_equal(c->plan.format, BOOT_FMT_ELF);
	assert_int_equal(c->plan.entry, 0x100010);
	assert_int_equal(c->plan.params_gpa, ZERO_PAGE_ADDR);
	assert_int_equal(c->plan.kernel_start, 0x100000);
	assert_int_equal(c->plan.kernel_end, 0x201000);
	assert_null(c->plan.fallback_reason);
	assert_true(guest_all(&c->m, 0x100000, 0x100, 0xAA));
	assert_true(guest_all(&c->m, 0x100100, 0x2000 - 0x100, 0));   /* bss zeroed */
	assert_true(guest_all(&c->m, 0x102000, 0x1000, POISON));      /* nothing past memsz */
	assert_true(guest_all(&c->m, 0x200000, 0x80, 0xBB));
	assert_true(guest_all(&c->m, 0x200080, 0x80, POISON));
	assert_true(guest_all(&c->m, 0, HIMEM_START, POISON));         /* boot data untouched */
}

static void test_elf64_virtual_entry(void **state)
{
	struct ctx *c = *state;
	struct elf_spec s = spec_two_loads();

	s.segs[0].vaddr = 0xffffffff80100000ULL;
	s.entry = 0xffffffff80100020ULL;
	assert_int_equal(load_spec(c, &s, 0), 0);
	assert_int_equal(c->plan.entry, 0x100020);
}

static void test_elf64_entry_outside(void **state)
{
	struct ctx *c = *state;
	struct elf_spec s = spec_two_loads();

	s.entry = 0x300000;
	assert_int_equal(load_spec(c, &s, 0), -ENOEXEC);
	assert_err_has(c, "entry");
}

static void test_pvh_note_4byte(void **state)
{
	struct ctx *c = *state;
	struct elf_spec s = spec_pvh(0);

	assert_int_equal(load_spec(c, &s, 0), 0);
	assert_int_equal(c->plan.mode, BOOT_MODE_PVH32);
	assert_int_equal(c->plan.format, BOOT_FMT_PVH);
	assert_int_equal(c->plan.entry, pvh_entry32);
	assert_int_equal(c->plan.params_gpa, PVH_START_INFO);
}

static void test_pvh_note_8byte(void **state)
{
	struct ctx *c = *state;
	struct elf_spec s = spec_pvh(1);

	assert_int_equal(load_spec(c, &s, 0), 0);
	assert_int_equal(c->plan.mode, BOOT_MODE_PVH32);
	assert_int_equal(c->plan.entry, pvh_entry64);
}

static void test_pvh_note_bad_size(void **state)
{
	struct ctx *c = *state;
	struct elf_spec s = spec_pvh(0);
	static const uint8_t six[6] = { 0x40, 0, 0x10, 0, 0, 0 };

	s.notes[0].desc = six;
	s.notes[0].descsz = 6;
	assert_int_equal(load_spec(c, &s, 0), -ENOEXEC);
	assert_err_has(c, "6-byte");
}

static void test_pvh_entry_outside(void **state)
{
	struct ctx *c = *state;
	struct elf_spec s = spec_pvh(1);
	static const uint64_t high = 0x100000000ULL + 0x100040;

	s.notes[0].desc = &high;
	assert_int_equal(load_spec(c, &s, 0), -ENOEXEC);
	assert_err_has(c, "PVH entry");
}

static void test_vmlinux_prefers_linux64(void **state)
{
	struct ctx *c = *state;
	struct elf_spec s = spec_vmlinux();

	assert_int_equal(load_spec(c, &s, 0), 0);
	assert_int_equal(c->plan.mode, BOOT_MODE_LINUX64);
	assert_int_equal(c->plan.format, BOOT_FMT_ELF);
	assert_int_equal(c->plan.entry, KERNEL_PA);
	assert_true(guest_all(&c->m, KERNEL_PA, 0x1000, 0x5A));
	assert_true(guest_all(&c->m, KERNEL_PA + 0x1000, 0x2000, 0));

	assert_int_equal(load_spec(c, &s, 1), 0);
	assert_int_equal(c->plan.mode, BOOT_MODE_PVH32);
	assert_int_equal(c->plan.format, BOOT_FMT_PVH);
	assert_int_equal(c->plan.entry, KERNEL_PA + 0x850);
}

static void test_xen_guest_os_linux_is_linux(void **state)
{
	struct ctx *c = *state;
	struct elf_spec s = spec_vmlinux();

	s.notes[0] = (struct note){ "Xen", 6 /* GUEST_OS */, "linux", 6 };
	assert_int_equal(load_spec(c, &s, 0), 0);
	assert_int_equal(c->plan.mode, BOOT_MODE_LINUX64);
	/* Without any Linux marker the same image is a PVH kernel. */
	s.notes[0] = (struct note){ "Xen", 6, "mini-os", 8 };
	assert_int_equal(load_spec(c, &s, 0), 0);
	assert_int_equal(c->plan.mode, BOOT_MODE_PVH32);
}

static void test_elf32_pvh(void **state)
{
	struct ctx *c = *state;
	struct elf_spec s = spec_pvh(0);

	s.class32 = 1;
	assert_int_equal(load_spec(c, &s, 0), 0);
	assert_int_equal(c->plan.mode, BOOT_MODE_PVH32);
	assert_int_equal(c->plan.entry, pvh_entry32);
	assert_true(guest_all(&c->m, 0x100000, 0x100, 0xAA));
	assert_true(guest_all(&c->m, 0x100100, 0x2000 - 0x100, 0));

	s.nnotes = 0;
	assert_int_equal(load_spec(c, &s, 0), -ENOEXEC);
	assert_err_has(c, "PVH");
}

static void test_elf_wrong_machine_or_type(void **state)
{
	struct ctx *c = *state;
	struct elf_spec s = spec_two_loads();

	s.machine = EM_386;
	assert_int_equal(load_spec(c, &s, 0), -ENOEXEC);
	assert_err_has(c, "machine");
	s.machine = 0;
	s.type = ET_DYN;
	assert_int_equal(load_spec(c, &s, 0), -ENOEXEC);
	assert_err_has(c, "ET_EXEC");
	s = spec_pvh(0);
	s.class32 = 1;
	s.machine = EM_X86_64;
	assert_int_equal(load_spec(c, &s, 0), -ENOEXEC);
}

static void test_elf_truncated_everywhere(void **state)
{
	struct ctx *c = *state;
	struct elf_spec specs[] = { spec_vmlinux(), spec_pvh(0), spec_pvh(1) };

	specs[2].class32 = 1;
	for (size_t k = 0; k < sizeof(specs) / sizeof(specs[0]); k++) {
		struct elf_layout l;
		uint8_t *img = elf_build(&specs[k], &l);

		for (size_t len = 0; len < l.len; len++) {
			int rc = load_exact(c, img, len, 0);
			if (rc != -ENOEXEC)
				fail_msg("spec %zu truncated to %zu of %zu bytes: rc %d", k, len, l.len, rc);
			if (len >= 4 && len < sizeof(Elf32_Ehdr))
				assert_err_has(c, "truncated ELF header");
		}
		assert_int_equal(load_exact(c, img, l.len, 0), 0);
		free(img);
	}
}

static void test_elf_phdrs_out_of_file(void **state)
{
	struct ctx *c = *state;
	struct elf_spec s = spec_two_loads();
	struct elf_layout l;
	uint8_t *img = elf_build(&s, &l);
	const uint64_t bad_off[] = { l.len, l.len - 1, UINT64_MAX - 8, UINT64_MAX, 1ULL << 63 };

	for (size_t i = 0; i < sizeof(bad_off) / sizeof(bad_off[0]); i++) {
		put64(img + offsetof(Elf64_Ehdr, e_phoff), bad_off[i]);
		assert_int_equal(load_exact(c, img, l.len, 0), -ENOEXEC);
	}
	put64(img + offsetof(Elf64_Ehdr, e_phoff), l.phoff);
	assert_int_equal(load_exact(c, img, l.len, 0), 0);

	put16(img + offsetof(Elf64_Ehdr, e_phnum), 0xffff);      /* PN_XNUM / huge */
	assert_int_equal(load_exact(c, img, l.len, 0), -ENOEXEC);
	put16(img + offsetof(Elf64_Ehdr, e_phnum), 0);
	assert_int_equal(load_exact(c, img, l.len, 0), -ENOEXEC);
	put16(img + offsetof(Elf64_Ehdr, e_phnum), 100);          /* plausible count, past EOF */
	assert_int_equal(load_exact(c, img, l.len, 0), -ENOEXEC);
	put16(img + offsetof(Elf64_Ehdr, e_phnum), 2);
	put16(img + offsetof(Elf64_Ehdr, e_phentsize), 32);
	assert_int_equal(load_exact(c, img, l.len, 0), -ENOEXEC);
	free(img);
}

/* Patch PT_LOAD i's field at offset field and expect -ENOEXEC mentioning what. */
static void expect_seg_reject(struct ctx *c, const struct elf_spec *s, int i, size_t field,
			      uint64_t value, const char *what)
{
	struct elf_layout l;
	uint8_t *img = elf_build(s, &l);

	put64(img + elf_load_phdr(s, &l, i) + field, value);
	guest_poison(&c->m, 0x100000, 0x200000);
	assert_int_equal(load_exact(c, img, l.len, 0), -ENOEXEC);
	assert_err_has(c, what);
	/* Everything is validated before the first byte is written. */
	assert_true(guest_all(&c->m, 0x100000, 0x200000, POISON));
	free(img);
}

static void test_elf_segment_hostile(void **state)
{
	struct ctx *c = *state;
	struct elf_spec s = spec_two_loads();

	/* second segment is the bad one, so the first was already accepted */
	expect_seg_reject(c, &s, 1, offsetof(Elf64_Phdr, p_offset), UINT64_MAX - 0x10, "past the end");
	expect_seg_reject(c, &s, 1, offsetof(Elf64_Phdr, p_filesz), UINT64_MAX, "exceeds");
	expect_seg_reject(c, &s, 1, offsetof(Elf64_Phdr, p_filesz), 0x81, "exceeds");
	expect_seg_reject(c, &s, 1, offsetof(Elf64_Phdr, p_paddr), GUEST_SIZE - 0x40, "outside guest RAM");
	expect_seg_reject(c, &s, 1, offsetof(Elf64_Phdr, p_paddr), UINT64_MAX - 0x3f, "outside guest RAM");
	expect_seg_reject(c, &s, 1, offsetof(Elf64_Phdr, p_paddr), 0x101000, "overlap");
	expect_seg_reject(c, &s, 1, offsetof(Elf64_Phdr, p_paddr), 0x101ff0, "overlap");
	expect_seg_reject(c, &s, 1, offsetof(Elf64_Phdr, p_paddr), 0x100000, "overlap");
	expect_seg_reject(c, &s, 1, offsetof(Elf64_Phdr, p_paddr), ZERO_PAGE_ADDR, "boot data");
	expect_seg_reject(c, &s, 1, offsetof(Elf64_Phdr, p_paddr), 0xFFF00, "boot data");
	expect_seg_reject(c, &s, 1, offsetof(Elf64_Phdr, p_memsz), UINT64_MAX, "outside guest RAM");
	/* p_offset + p_filesz wrapping to a small value */
	expect_seg_reject(c, &s, 0, offsetof(Elf64_Phdr, p_offset), UINT64_MAX - 0x7f, "past the end");
}

static void test_elf_segment_in_hole_or_high(void **state)
{
	(void)state;
	struct ctx c;
	struct elf_spec s = spec_two_loads();
	const uint64_t bad[] = { MEM_HOLE_START, MEM_HOLE_START - 0x40, MEM_HIGH_START,
				 MEM_HIGH_START + 0x100000 };

	memset(&c, 0, sizeof(c));
	guest_new(&c.m, 5ULL << 30);       /* low RAM to 3 GiB, 2 GiB above 4 GiB */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s.segs[1].paddr = bad[i];
		assert_int_equal(load_spec(&c, &s, 0), -ENOEXEC);
		assert_err_has(&c, "outside guest RAM");
	}
	s.segs[1].paddr = MEM_HOLE_START - 0x80;   /* ends exactly at the hole */
	assert_int_equal(load_spec(&c, &s, 0), 0);
	assert_int_equal(c.plan.kernel_end, MEM_HOLE_START);
	guest_free(&c.m);
}

static void test_elf_hostile_notes(void **state)
{
	struct ctx *c = *state;
	struct elf_spec s = spec_pvh(0);
	struct elf_layout l;
	uint8_t *img = elf_build(&s, &l);
	const uint32_t bad[] = { 0xffffffffu, 0xfffffffdu, 0x80000000u, 0x1000 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put32(img + l.note_off, bad[i]);          /* namesz */
		assert_int_equal(load_exact(c, img, l.len, 0), -ENOEXEC);
		assert_err_has(c, "runs past");
		put32(img + l.note_off, 4);
		put32(img + l.note_off + 4, bad[i]);      /* descsz */
		assert_int_equal(load_exact(c, img, l.len, 0), -ENOEXEC);
		put32(img + l.note_off + 4, 4);
	}
	assert_int_equal(load_exact(c, img, l.len, 0), 0);

	/* PT_NOTE segment itself pointing outside the file */
	put64(img + l.phoff + offsetof(Elf64_Phdr, p_offset), UINT64_MAX - 4);
	assert_int_equal(load_exact(c, img, l.len, 0), -ENOEXEC);
	put64(img + l.phoff + offsetof(Elf64_Phdr, p_offset), l.note_off);
	put64(img + l.phoff + offsetof(Elf64_Phdr, p_filesz), UINT64_MAX);
	assert_int_equal(load_exact(c, img, l.len, 0), -ENOEXEC);
	free(img);
}

static void test_unknown_and_empty(void **state)
{
	struct ctx *c = *state;
	uint8_t junk[4096];

	memset(junk, 0x41, sizeof(junk));
	assert_int_equal(load_exact(c, junk, sizeof(junk), 0), -ENOEXEC);
	assert_string_equal(c->err, "not a bzImage or ELF kernel");
	assert_int_equal(load_exact(c, junk, 0, 0), -ENOEXEC);
	assert_string_equal(c->err, "not a bzImage or ELF kernel");
	assert_int_equal(boot_load_kernel(&c->m, NULL, 0, 0, &c->plan, c->err, sizeof(c->err)), -ENOEXEC);
	assert_int_equal(load_exact(c, (const uint8_t *)"\x7f" "EL", 3, 0), -ENOEXEC);
	assert_err_has(c, "truncated ELF");
}

/* ---- compressed payloads ---------------------------------------------- */

static void append_size(uint8_t **buf, size_t *len, uint32_t size)
{
	*buf = realloc(*buf, *len + 4);
	assert_non_null(*buf);
	put32(*buf + *len, size);
	*len += 4;
}

static uint8_t *compress_gzip(const uint8_t *in, size_t len, size_t *out_len)
{
	z_stream zs = { 0 };
	size_t cap = compressBound(len) + 64;
	uint8_t *out = malloc(cap);

	assert_non_null(out);
	assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*out_len = zs.total_out;
	deflateEnd(&zs);
	return out;     /* gzip's own ISIZE trailer is the size field */
}

static uint8_t *compress_xz(const uint8_t *in, size_t len, size_t *out_len)
{
	size_t cap = lzma_stream_buffer_bound(len), pos = 0;
	uint8_t *out = malloc(cap);

	assert_non_null(out);
	assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in, len, out, &pos, cap),
			 LZMA_OK);
	*out_len = pos;
	append_size(&out, out_len, (uint32_t)len);
	return out;
}

static uint8_t *compress_lzma_alone(const uint8_t *in, size_t len, size_t *out_len)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_options_lzma opt;
	size_t cap = len + len / 2 + 4096;
	uint8_t *out = malloc(cap);

	assert_non_null(out);
	assert_false(lzma_lzma_preset(&opt, 6));
	assert_int_equal(lzma_alone_encoder(&s, &opt), LZMA_OK);
	s.next_in = in;
	s.avail_in = len;
	s.next_out = out;
	s.avail_out = cap;
	lzma_ret r;
	while ((r = lzma_code(&s, LZMA_FINISH)) == LZMA_OK)
		;
	assert_int_equal(r, LZMA_STREAM_END);
	*out_len = cap - s.avail_out;
	lzma_end(&s);
	append_size(&out, out_len, (uint32_t)len);
	return out;
}

static uint8_t *compress_zstd(const uint8_t *in, size_t len, size_t *out_len)
{
	size_t cap = ZSTD_compressBound(len);
	uint8_t *out = malloc(cap);
	size_t n;

	assert_non_null(out);
	n = ZSTD_compress(out, cap, in, len, 19);
	assert_false(ZSTD_isError(n));
	*out_len = n;
	append_size(&out, out_len, (uint32_t)len);
	return out;
}

/* lz4 legacy frame holding literal-only blocks of at most 4 KiB: valid lz4
 * that exercises the framing and literal lengths past 15. */
/* LZ4 legacy frame as the kernel's build makes it (lz4 -l): magic, then
 * (le32 size, block)* with blocks of up to 8 MiB input, then the size field.
 * Small blocks here so the tests cross block boundaries. */
static uint8_t *compress_lz4_legacy(const uint8_t *in, size_t len, size_t *out_len)
{
	const size_t blk = 8192;
	size_t cap = 4 + (len / blk + 1) * (4 + (size_t)LZ4_compressBound((int)blk)) + 8, o = 4;
	uint8_t *out = malloc(cap);

	assert_non_null(out);
	put32(out, 0x184C2102);
	for (size_t done = 0; done < len;) {
		size_t n = len - done > blk ? blk : len - done;
		int c = LZ4_compress_default((const char *)in + done, (char *)out + o + 4, (int)n,
					     (int)(cap - o - 4));
		assert_true(c > 0);
		put32(out + o, (uint32_t)c);
		o += 4 + (size_t)c;
		done += n;
	}
	*out_len = o;
	append_size(&out, out_len, (uint32_t)len);
	return out;
}

typedef uint8_t *(*compress_fn)(const uint8_t *, size_t, size_t *);

static int decompress_all(const uint8_t *p, size_t len, size_t cap, uint8_t **out, size_t *out_len,
			  enum decompress_format *fmt, char *err, size_t errlen)
{
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, p, len);
	rc = decompress_payload(copy, len, cap, out, out_len, fmt, err, errlen);
	free(copy);
	return rc;
}

static void test_decompress_roundtrip(void **state)
{
	(void)state;
	static const struct { compress_fn fn; enum decompress_format fmt; } cases[] = {
		{ compress_gzip, DECOMPRESS_GZIP },
		{ compress_xz, DECOMPRESS_XZ },
		{ compress_lzma_alone, DECOMPRESS_LZMA },
		{ compress_zstd, DECOMPRESS_ZSTD },
		{ compress_lz4_legacy, DECOMPRESS_LZ4 },
	};
	size_t n = 30000;
	uint8_t *data = malloc(n);

	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)((i * 2654435761u) >> 13) ^ (uint8_t)(i / 1000);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		size_t clen, olen;
		uint8_t *cbuf = cases[k].fn(data, n, &clen), *out;
		enum decompress_format fmt;
		char err[256];

		assert_int_equal(decompress_all(cbuf, clen, DECOMPRESS_CAP, &out, &olen, &fmt,
						err, sizeof(err)), 0);
		assert_int_equal(fmt, cases[k].fmt);
		assert_int_equal(olen, n);
		assert_memory_equal(out, data, n);
		free(out);

		/* Cap below the size field: refused before decoding. */
		assert_int_equal(decompress_all(cbuf, clen, n - 1, &out, &olen, &fmt, err, sizeof(err)),
				 -E2BIG);
		assert_null(out);
		/* Size field lies low: decoding stops at the claimed size. */
		put32(cbuf + clen - 4, (uint32_t)(n / 2));
		assert_int_equal(decompress_all(cbuf, clen, DECOMPRESS_CAP, &out, &olen, &fmt,
						err, sizeof(err)), -E2BIG);
		assert_null(out);
		put32(cbuf + clen - 4, (uint32_t)(n - 1));   /* one byte over */
		assert_int_equal(decompress_all(cbuf, clen, DECOMPRESS_CAP, &out, &olen, &fmt,
						err, sizeof(err)), -E2BIG);
		assert_null(out);
		/* Size field lies high: the stream ends early. */
		put32(cbuf + clen - 4, (uint32_t)(n * 2));
		assert_int_equal(decompress_all(cbuf, clen, DECOMPRESS_CAP, &out, &olen, &fmt,
						err, sizeof(err)), -EINVAL);
		put32(cbuf + clen - 4, (uint32_t)n);
		/* Stream cut anywhere, honest size field re-appended: the decoder
		 * sees truncated input and must fail without over-reading. */
		uint8_t *cut_buf = malloc(clen);
		assert_non_null(cut_buf);
		for (size_t cut = 0; cut < clen - 4; cut += (cut < 64 ? 1 : 97)) {
			memcpy(cut_buf, cbuf, cut);
			put32(cut_buf + cut, (uint32_t)n);
			int rc = decompress_all(cut_buf, cut + 4, DECOMPRESS_CAP, &out, &olen, &fmt,
						err, sizeof(err));
			if (rc == 0)
				fail_msg("format %zu cut at %zu of %zu bytes decoded", k, cut, clen);
			assert_null(out);
		}
		free(cut_buf);
		free(cbuf);
	}
	free(data);
}

static void test_decompress_bomb(void **state)
{
	(void)state;
	size_t n = 32u << 20, clen, olen;
	uint8_t *zeros = calloc(1, n), *cbuf, *out;
	enum decompress_format fmt;
	char err[256];

	assert_non_null(zeros);
	cbuf = compress_gzip(zeros, n, &clen);
	free(zeros);
	assert_true(clen < 64 * 1024);
	/* honest size field, over the cap */
	assert_int_equal(decompress_payload(cbuf, clen, 1u << 20, &out, &olen, &fmt, err, sizeof(err)),
			 -E2BIG);
	assert_non_null(strstr(err, "limit"));
	/* lying size field: 4 KiB claimed, 32 MiB inside */
	put32(cbuf + clen - 4, 4096);
	assert_int_equal(decompress_payload(cbuf, clen, DECOMPRESS_CAP, &out, &olen, &fmt, err, sizeof(err)),
			 -E2BIG);
	assert_non_null(strstr(err, "more than"));
	/* size field over the absolute cap, whatever cap the caller passes */
	put32(cbuf + clen - 4, DECOMPRESS_CAP + 1);
	assert_int_equal(decompress_payload(cbuf, clen, SIZE_MAX, &out, &olen, &fmt, err, sizeof(err)),
			 -E2BIG);
	free(cbuf);
}

static void test_decompress_lz4_hostile(void **state)
{
	(void)state;
	/* Repetitive data compresses to long overlapping matches. */
	size_t n = 50000, clen, olen;
	uint8_t *data = malloc(n), *cbuf, *bad, *out;
	enum decompress_format fmt;
	char err[256];

	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)"wafer-lz4-"[i % 10] ^ (uint8_t)(i / 7000);
	cbuf = compress_lz4_legacy(data, n, &clen);
	assert_true(clen < n / 4);
	assert_int_equal(decompress_all(cbuf, clen, DECOMPRESS_CAP, &out, &olen, &fmt,
					err, sizeof(err)), 0);
	assert_int_equal(olen, n);
	assert_memory_equal(out, data, n);
	free(out);

	bad = malloc(clen);
	assert_non_null(bad);
	/* block size past the payload */
	memcpy(bad, cbuf, clen);
	put32(bad + 4, (uint32_t)clen);
	assert_int_equal(decompress_all(bad, clen, DECOMPRESS_CAP, &out, &olen, &fmt,
					err, sizeof(err)), -EINVAL);
	/* block size larger than any legacy block can be */
	put32(bad + 4, 0x7fffffff);
	assert_int_equal(decompress_all(bad, clen, DECOMPRESS_CAP, &out, &olen, &fmt,
					err, sizeof(err)), -EINVAL);
	/* Every single-byte corruption of the block data: an error or wrong
	 * output, never a read or write out of bounds (ASan watches). */
	for (size_t i = 8; i < clen - 4; i += 3) {
		memcpy(bad, cbuf, clen);
		bad[i] ^= 0xa5;
		int rc = decompress_all(bad, clen, DECOMPRESS_CAP, &out, &olen, &fmt, err, sizeof(err));
		if (rc == 0)
			free(out);
		else
			assert_null(out);
	}
	free(bad);
	free(cbuf);
	free(data);
}

static void test_decompress_unsupported(void **state)
{
	(void)state;
	static const uint8_t bz2[] = { 'B', 'Z', 'h', '9', 1, 2, 3, 4, 0x10, 0, 0, 0 };
	static const uint8_t lzo[] = { 0x89, 'L', 'Z', 'O', 0, 0x0d, 0x0a, 0x1a, 0x0a, 0x10, 0, 0, 0 };
	static const uint8_t unk[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	uint8_t *out;
	size_t olen;
	enum decompress_format fmt;
	char err[256];

	assert_int_equal(decompress_payload(bz2, sizeof(bz2), DECOMPRESS_CAP, &out, &olen, &fmt, err, sizeof(err)), -ENOTSUP);
	assert_int_equal(fmt, DECOMPRESS_BZIP2);
	assert_int_equal(decompress_payload(lzo, sizeof(lzo), DECOMPRESS_CAP, &out, &olen, &fmt, err, sizeof(err)), -ENOTSUP);
	assert_int_equal(fmt, DECOMPRESS_LZO);
	assert_int_equal(decompress_payload(unk, sizeof(unk), DECOMPRESS_CAP, &out, &olen, &fmt, err, sizeof(err)), -ENOTSUP);
	assert_int_equal(fmt, DECOMPRESS_UNKNOWN);
	assert_null(out);
}

/* ---- bzImage ------------------------------------------------------------ */

#define BZ_SETUP_SECTS 4
#define BZ_SETUP_SIZE  ((BZ_SETUP_SECTS + 1) * 512)
#define BZ_PAYLOAD_OFF 0x400
#define BZ_INIT_SIZE   0x400000

struct bz_layout {
	size_t len, payload_len;
};

/* A bzImage around payload: 4 setup sectors, a protected-mode part with a
 * marker at its 64-bit entry (0x200) and the payload at 0x400. */
static uint8_t *bz_build(const uint8_t *payload, size_t plen, struct bz_layout *l)
{
	size_t len = BZ_SETUP_SIZE + BZ_PAYLOAD_OFF + plen;
	uint8_t *b = calloc(1, len);
	uint8_t *pm = b + BZ_SETUP_SIZE;

	assert_non_null(b);
	b[0x1f1] = BZ_SETUP_SECTS;
	put16(b + 0x1fe, 0xAA55);
	b[0x200] = 0xEB;
	b[0x201] = 0x6A;                 /* header ends at 0x26c */
	put32(b + 0x202, 0x53726448);
	put16(b + 0x206, 0x020f);
	b[0x211] = LOADED_HIGH;
	put32(b + 0x214, 0x100000);
	put32(b + 0x22c, 0x7fffffff);    /* initrd_addr_max */
	put32(b + 0x230, 0x200000);      /* kernel_alignment */
	b[0x234] = 1;                    /* relocatable */
	b[0x235] = 21;
	put16(b + 0x236, XLF_KERNEL_64);
	put32(b + 0x238, 2047);          /* cmdline_size */
	put32(b + 0x248, BZ_PAYLOAD_OFF);
	put32(b + 0x24c, (uint32_t)plen);
	put64(b + 0x258, KERNEL_PA);     /* pref_address */
	put32(b + 0x260, BZ_INIT_SIZE);
	memset(b + 0x26c, 0xEE, 0x290 - 0x26c);   /* code after the header */
	memset(pm, 0x90, BZ_PAYLOAD_OFF);
	memcpy(pm + 0x200, "ENTRY64!", 8);
	memcpy(pm + BZ_PAYLOAD_OFF, payload, plen);
	l->len = len;
	l->payload_len = plen;
	return b;
}

static uint8_t *vmlinux_build(struct elf_layout *l)
{
	struct elf_spec s = spec_vmlinux();
	return elf_build(&s, l);
}

static uint8_t *bz_with(compress_fn fn, struct bz_layout *l)
{
	struct elf_layout el;
	uint8_t *elf = vmlinux_build(&el), *payload, *bz;
	size_t plen;

	payload = fn(elf, el.len, &plen);
	bz = bz_build(payload, plen, l);
	free(elf);
	free(payload);
	return bz;
}

static void assert_vmlinux_loaded(struct ctx *c)
{
	assert_int_equal(c->plan.mode, BOOT_MODE_LINUX64);
	assert_int_equal(c->plan.format, BOOT_FMT_BZIMAGE);
	assert_int_equal(c->plan.entry, KERNEL_PA);
	assert_int_equal(c->plan.kernel_start, KERNEL_PA);
	/* The ELF ends at +0x201000, but the kernel owns init_size from its
	 * start (brk, early page tables): the initrd must stay above that. */
	assert_int_equal(c->plan.kernel_end, KERNEL_PA + BZ_INIT_SIZE);
	assert_int_equal(c->plan.params_gpa, ZERO_PAGE_ADDR);
	assert_null(c->plan.fallback_reason);
	assert_true(guest_all(&c->m, KERNEL_PA, 0x1000, 0x5A));
	assert_true(guest_all(&c->m, KERNEL_PA + 0x1000, 0x2000, 0));
	assert_true(guest_all(&c->m, KERNEL_PA + 0x200000, 0x100, 0x6B));
}

static void test_bzimage_host_decompress(void **state)
{
	struct ctx *c = *state;
	compress_fn fns[] = { compress_gzip, compress_xz, compress_lzma_alone, compress_zstd,
			      compress_lz4_legacy };

	for (size_t k = 0; k < sizeof(fns) / sizeof(fns[0]); k++) {
		struct bz_layout l;
		uint8_t *bz = bz_with(fns[k], &l);

		guest_poison(&c->m, KERNEL_PA, 0x400000);
		assert_int_equal(load_exact(c, bz, l.len, 0), 0);
		assert_vmlinux_loaded(c);
		free(bz);
	}
}

static void test_bzimage_prefer_pvh(void **state)
{
	struct ctx *c = *state;
	struct bz_layout l;
	uint8_t *bz = bz_with(compress_gzip, &l);

	assert_int_equal(load_exact(c, bz, l.len, 1), 0);
	assert_int_equal(c->plan.mode, BOOT_MODE_PVH32);
	assert_int_equal(c->plan.entry, KERNEL_PA + 0x850);
	free(bz);
}

static void assert_raw_loaded(struct ctx *c, const struct bz_layout *l, uint64_t load, const char *why)
{
	assert_int_equal(c->plan.mode, BOOT_MODE_LINUX64);
	assert_int_equal(c->plan.format, BOOT_FMT_BZIMAGE_RAW);
	assert_int_equal(c->plan.entry, load + 0x200);
	assert_int_equal(c->plan.kernel_start, load);
	assert_non_null(c->plan.fallback_reason);
	if (!strstr(c->plan.fallback_reason, why))
		fail_msg("fallback reason \"%s\" does not mention \"%s\"", c->plan.fallback_reason, why);
	assert_memory_equal(gmem_ptr(&c->m, load + 0x200, 8), "ENTRY64!", 8);
	assert_true(guest_all(&c->m, load, 0x200, 0x90));
	assert_true(c->plan.kernel_end >= load + l->len - BZ_SETUP_SIZE);
	assert_true(c->plan.kernel_end % 4096 == 0);
}

static void test_bzimage_bzip2_falls_back(void **state)
{
	struct ctx *c = *state;
	static const uint8_t bz2[] = { 'B', 'Z', 'h', '9', 0x31, 0x41, 0x59, 0x26, 0, 0x10, 0, 0 };
	struct bz_layout l;
	uint8_t *bz = bz_build(bz2, sizeof(bz2), &l);

	assert_int_equal(load_exact(c, bz, l.len, 0), 0);
	assert_raw_loaded(c, &l, KERNEL_PA, "bzip2");
	assert_int_equal(c->plan.kernel_end, KERNEL_PA + BZ_INIT_SIZE);
	free(bz);
}

static void test_bzimage_not_elf_payload_falls_back(void **state)
{
	struct ctx *c = *state;
	static const char text[] = "this is not an ELF file, it is just some text to compress";
	size_t plen;
	uint8_t *payload = compress_gzip((const uint8_t *)text, sizeof(text), &plen);
	struct bz_layout l;
	uint8_t *bz = bz_build(payload, plen, &l);

	assert_int_equal(load_exact(c, bz, l.len, 0), 0);
	assert_raw_loaded(c, &l, KERNEL_PA, "not a loadable kernel");
	free(payload);
	free(bz);
}

static void test_bzimage_payload_outside(void **state)
{
	struct ctx *c = *state;
	struct bz_layout l;
	uint8_t *bz = bz_with(compress_gzip, &l);
	const uint32_t offs[][2] = {
		{ (uint32_t)(l.len - BZ_SETUP_SIZE + 1), 16 },    /* offset beyond the file */
		{ BZ_PAYLOAD_OFF, 0xffffffffu },                  /* length beyond the file */
		{ 0xffffffffu, 0xffffffffu },
		{ 0, (uint32_t)l.payload_len },                   /* no payload */
	};

	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		put32(bz + 0x248, offs[i][0]);
		put32(bz + 0x24c, offs[i][1]);
		assert_int_equal(load_exact(c, bz, l.len, 0), 0);
		assert_raw_loaded(c, &l, KERNEL_PA, "payload_offset");
	}
	free(bz);
}

static void test_bzimage_bomb_falls_back(void **state)
{
	(void)state;
	struct ctx c;
	size_t n = 48u << 20, plen;
	uint8_t *zeros = calloc(1, n), *payload, *bz;
	struct bz_layout l;

	assert_non_null(zeros);
	payload = compress_gzip(zeros, n, &plen);
	free(zeros);
	bz = bz_build(payload, plen, &l);
	memset(&c, 0, sizeof(c));
	guest_new(&c.m, 32ULL << 20);     /* cap = low RAM = 32 MiB < 48 MiB */
	assert_int_equal(load_exact(&c, bz, l.len, 0), 0);
	assert_raw_loaded(&c, &l, KERNEL_PA, "limit");
	/* A size field that lies low stops the decoder at the claim. */
	put32(bz + l.len - 4, 1u << 20);
	assert_int_equal(load_exact(&c, bz, l.len, 0), 0);
	assert_raw_loaded(&c, &l, KERNEL_PA, "more than");
	guest_free(&c.m);
	free(payload);
	free(bz);
}

static void test_bzimage_truncated_everywhere(void **state)
{
	struct ctx *c = *state;
	struct bz_layout l;
	uint8_t *bz = bz_with(compress_gzip, &l);

	for (size_t len = 0; len <= l.len; len++) {
		int rc = load_exact(c, bz, len, 0);

		if (len <= BZ_SETUP_SIZE + 0x200) {
			if (rc != -ENOEXEC)
				fail_msg("bzImage cut at %zu: rc %d", len, rc);
			if (len >= 0x200 && len < 0x26c)
				assert_err_has(c, "truncated bzImage");
			if (len < 0x1ff)
				assert_string_equal(c->err, "not a bzImage or ELF kernel");
		} else if (len < l.len) {
			/* the payload is cut: boot the image as it is */
			if (rc != 0 || c->plan.format != BOOT_FMT_BZIMAGE_RAW)
				fail_msg("bzImage cut at %zu: rc %d format %d", len, rc, c->plan.format);
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(c->plan.format, BOOT_FMT_BZIMAGE);
		}
	}
	free(bz);
}

static void test_bzimage_bad_headers(void **state)
{
	struct ctx *c = *state;
	struct bz_layout l;
	uint8_t *bz = bz_with(compress_gzip, &l);
	uint8_t *b = malloc(l.len);

	assert_non_null(b);
#define PATCH(stmt, what) do { \
		memcpy(b, bz, l.len); stmt; \
		assert_int_equal(load_exact(c, b, l.len, 0), -ENOEXEC); \
		assert_err_has(c, what); \
	} while (0)
	PATCH(b[0x1f1] = 255, "setup_sects 255");
	PATCH(put16(b + 0x1fe, 0x1234), "boot_flag");
	PATCH(put16(b + 0x206, 0x020b), "protocol 2.11");
	PATCH(put16(b + 0x236, 0), "XLF_KERNEL_64");
	PATCH(b[0x211] = 0, "zImage");
	PATCH(b[0x201] = 0x80, "header length");          /* jump backwards */
	PATCH(b[0x201] = 0x10, "header length");          /* header shorter than 2.12's */
	PATCH(b[0x200] = 0xE9, "header length");
#undef PATCH
	/* raw path only: kernel_alignment must be a sane power of two */
	memcpy(b, bz, l.len);
	put32(b + 0x248, 0);
	put32(b + 0x230, 0x300000);
	assert_int_equal(load_exact(c, b, l.len, 0), -ENOEXEC);
	assert_err_has(c, "kernel_alignment");
	free(b);
	free(bz);
}

static void test_bzimage_raw_placement(void **state)
{
	struct ctx *c = *state;
	static const uint8_t bz2[] = { 'B', 'Z', 'h', '9', 0, 0, 0, 0, 0, 0x10, 0, 0 };
	struct bz_layout l;
	uint8_t *bz = bz_build(bz2, sizeof(bz2), &l);

	/* pref_address misaligned: load at 1 MiB rounded to the alignment;
	 * the decompressor still runs at pref_address. */
	put64(bz + 0x258, KERNEL_PA + 0x1000);
	assert_int_equal(load_exact(c, bz, l.len, 0), 0);
	assert_raw_loaded(c, &l, 0x200000, "bzip2");
	assert_int_equal(c->plan.kernel_end, KERNEL_PA + 0x1000 + BZ_INIT_SIZE);

	/* not relocatable: protected-mode code at 1 MiB */
	put64(bz + 0x258, KERNEL_PA);
	bz[0x234] = 0;
	assert_int_equal(load_exact(c, bz, l.len, 0), 0);
	assert_raw_loaded(c, &l, HIMEM_START, "bzip2");
	assert_int_equal(c->plan.kernel_end, KERNEL_PA + BZ_INIT_SIZE);

	/* init_size beyond RAM */
	bz[0x234] = 1;
	put32(bz + 0x260, (uint32_t)GUEST_SIZE);
	assert_int_equal(load_exact(c, bz, l.len, 0), -E2BIG);
	assert_err_has(c, "init_size");
	free(bz);
}

/* ---- initrd --------------------------------------------------------------- */

static void test_initrd_placement(void **state)
{
	struct ctx *c = *state;
	struct elf_spec s = spec_two_loads();
	size_t n = (1u << 20) + 123;
	uint8_t *rd = malloc(n);

	assert_non_null(rd);
	for (size_t i = 0; i < n; i++)
		rd[i] = (uint8_t)(i * 7);
	assert_int_equal(load_spec(c, &s, 0), 0);

	assert_int_equal(boot_place_initrd(&c->m, rd, n, INITRD_ADDR_MAX_DEFAULT, &c->plan,
					   c->err, sizeof(c->err)), 0);
	assert_int_equal(c->plan.initrd_gpa, (GUEST_SIZE - n) & ~0xfffULL);
	assert_int_equal(c->plan.initrd_size, n);
	assert_int_equal(c->plan.initrd_gpa % 4096, 0);
	assert_true(c->plan.initrd_gpa + n <= GUEST_SIZE);
	assert_true(c->plan.initrd_gpa >= c->plan.kernel_end);
	assert_memory_equal(gmem_ptr(&c->m, c->plan.initrd_gpa, n), rd, n);

	/* initrd_addr_max below the end of RAM: the last byte stays at or under it */
	assert_int_equal(boot_place_initrd(&c->m, rd, n, 0x17FFFFF, &c->plan, c->err, sizeof(c->err)), 0);
	assert_int_equal(c->plan.initrd_gpa, (0x1800000 - n) & ~0xfffULL);
	assert_true(c->plan.initrd_gpa + n - 1 <= 0x17FFFFF);

	/* len 0: no initrd */
	assert_int_equal(boot_place_initrd(&c->m, rd, 0, INITRD_ADDR_MAX_DEFAULT, &c->plan,
					   c->err, sizeof(c->err)), 0);
	assert_int_equal(c->plan.initrd_gpa, 0);
	assert_int_equal(c->plan.initrd_size, 0);
	free(rd);
}

static void test_initrd_exact_fit_and_too_big(void **state)
{
	struct ctx *c = *state;
	struct elf_spec s = spec_two_loads();
	size_t room, big = GUEST_SIZE;
	uint8_t *rd;

	assert_int_equal(load_spec(c, &s, 0), 0);
	room = GUEST_SIZE - c->plan.kernel_end;
	rd = calloc(1, big);
	assert_non_null(rd);

	assert_int_equal(boot_place_initrd(&c->m, rd, room, UINT64_MAX, &c->plan, c->err, sizeof(c->err)), 0);
	assert_int_equal(c->plan.initrd_gpa, c->plan.kernel_end);

	assert_int_equal(boot_place_initrd(&c->m, rd, room + 1, UINT64_MAX, &c->plan,
					   c->err, sizeof(c->err)), -E2BIG);
	assert_err_has(c, "does not fit");
	assert_int_equal(c->plan.initrd_size, 0);
	assert_int_equal(boot_place_initrd(&c->m, rd, big, UINT64_MAX, &c->plan, c->err, sizeof(c->err)),
			 -E2BIG);
	char want[64];
	snprintf(want, sizeof(want), "%zu bytes", big);
	assert_err_has(c, want);
	free(rd);
}

static void test_initrd_below_hole(void **state)
{
	(void)state;
	struct ctx c;
	struct elf_spec s = spec_two_loads();
	uint8_t rd[5000];

	memset(&c, 0, sizeof(c));
	memset(rd, 0x77, sizeof(rd));
	guest_new(&c.m, 5ULL << 30);
	assert_int_equal(load_spec(&c, &s, 0), 0);
	assert_int_equal(boot_place_initrd(&c.m, rd, sizeof(rd), UINT64_MAX, &c.plan, c.err, sizeof(c.err)), 0);
	assert_int_equal(c.plan.initrd_gpa, (MEM_HOLE_START - sizeof(rd)) & ~0xfffULL);
	assert_true(guest_all(&c.m, c.plan.initrd_gpa, sizeof(rd), 0x77));
	guest_free(&c.m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_elf64_two_loads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elf64_virtual_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elf64_entry_outside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pvh_note_4byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pvh_note_8byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pvh_note_bad_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pvh_entry_outside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vmlinux_prefers_linux64, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xen_guest_os_linux_is_linux, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elf32_pvh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elf_wrong_machine_or_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elf_truncated_everywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elf_phdrs_out_of_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elf_segment_hostile, setup, teardown),
		cmocka_unit_test(test_elf_segment_in_hole_or_high),
		cmocka_unit_test_setup_teardown(test_elf_hostile_notes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_and_empty, setup, teardown),
		cmocka_unit_test(test_decompress_roundtrip),
		cmocka_unit_test(test_decompress_bomb),
		cmocka_unit_test(test_decompress_lz4_hostile),
		cmocka_unit_test(test_decompress_unsupported),
		cmocka_unit_test_setup_teardown(test_bzimage_host_decompress, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_prefer_pvh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_bzip2_falls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_not_elf_payload_falls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_payload_outside, setup, teardown),
		cmocka_unit_test(test_bzimage_bomb_falls_back),
		cmocka_unit_test_setup_teardown(test_bzimage_truncated_everywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_bad_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_raw_placement, setup, teardown),
		cmocka_unit_test_setup_teardown(test_initrd_placement, setup, teardown),
		cmocka_unit_test_setup_teardown(test_initrd_exact_fit_and_too_big, setup, teardown),
		cmocka_unit_test(test_initrd_below_hole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
