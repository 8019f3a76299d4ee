/* boot_write_params, boot_write_cpu_tables and boot_setup: zero page fields
 * (e820, cmdline, ramdisk, RSDP, copied setup header), PVH start_info, the
 * boot GDT and identity page tables, and boot_setup's file errors. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <elf.h>
#include <zlib.h>

#include "arch/x86/boot.h"
#include "arch/x86/bootparam.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "vmm/memory.h"

#define GUEST_SIZE  (32ULL << 20)
#define POISON      0xCC
#define KERNEL_PA   0x1000000ULL
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define RSDP        0xE0000ULL

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* ---- images ------------------------------------------------------------- */

/* One-segment ELF64 at KERNEL_PA (0x2000 bytes, half bss); with_linux adds
 * a "Linux" note, with_pvh a Xen PHYS32_ENTRY note at KERNEL_PA + 0x40. */
static uint8_t *elf_build(int with_linux, int with_pvh, size_t *len)
{
	size_t note_off = sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr), n = note_off;
	size_t seg_off = 0x200, filesz = 0x1000;
	uint8_t *b = calloc(1, seg_off + filesz);
	Elf64_Ehdr eh = { 0 };
	Elf64_Phdr load = { 0 }, note = { 0 };

	assert_non_null(b);
	if (with_linux) {
		put32(b + n, 6); put32(b + n + 4, 4); put32(b + n + 8, 0x100);
		memcpy(b + n + 12, "Linux\0\0", 8);
		n += 24;
	}
	if (with_pvh) {
		put32(b + n, 4); put32(b + n + 4, 4); put32(b + n + 8, XEN_ELFNOTE_PHYS32_ENTRY);
		memcpy(b + n + 12, "Xen", 4);
		put32(b + n + 16, (uint32_t)KERNEL_PA + 0x40);
		n += 20;
	}
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_entry = KERNEL_PA;
	eh.e_phoff = sizeof(eh);
	eh.e_ehsize = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = n > note_off ? 2 : 1;
	load = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = seg_off, .p_vaddr = KERNEL_PA,
			     .p_paddr = KERNEL_PA, .p_filesz = filesz, .p_memsz = 0x2000 };
	note = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = note_off, .p_filesz = n - note_off,
			     .p_align = 4 };
	memcpy(b, &eh, sizeof(eh));
	memcpy(b + sizeof(eh), &load, sizeof(load));
	memcpy(b + sizeof(eh) + sizeof(load), &note, sizeof(note));
	memset(b + seg_off, 0x5A, filesz);
	*len = seg_off + filesz;
	return b;
}

static uint8_t *gzip(const uint8_t *in, size_t len, size_t *out_len)
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
	return out;
}

#define BZ_SETUP_SIZE (5 * 512)
#define BZ_HDR_END    0x26c

/* bzImage: 4 setup sectors; payload = gzip'd ELF (raw: a bzip2 stub). */
static uint8_t *bz_build(int raw, size_t *len)
{
	static const uint8_t bz2[] = { 'B', 'Z', 'h', '9', 0, 0, 0, 0, 0, 0x10, 0, 0 };
	size_t elf_len, plen;
	uint8_t *elf = elf_build(1, 0, &elf_len);
	uint8_t *payload = raw ? NULL : gzip(elf, elf_len, &plen);
	const uint8_t *p = raw ? bz2 : payload;
	uint8_t *b;

	if (raw)
		plen = sizeof(bz2);
	*len = BZ_SETUP_SIZE + 0x400 + plen;
	b = calloc(1, *len);
	assert_non_null(b);
	for (size_t i = 0; i < BZ_SETUP_SIZE; i++)
		b[i] = (uint8_t)(i * 13 + 1);     /* nonzero everywhere: copies show */
	b[0x1f1] = 4;
	put16(b + 0x1fe, 0xAA55);
	b[0x200] = 0xEB;
	b[0x201] = BZ_HDR_END - 0x202;
	put32(b + 0x202, 0x53726448);
	put16(b + 0x206, 0x020f);
	b[0x210] = 0;
	b[0x211] = LOADED_HIGH | KASLR_FLAG;   /* a stale KASLR bit must not survive */
	put32(b + 0x214, 0x100000);
	put32(b + 0x218, 0);
	put32(b + 0x21c, 0);
	put32(b + 0x228, 0);
	put32(b + 0x22c, 0x1FFFFFF);            /* initrd_addr_max: 32 MiB - 1 */
	put32(b + 0x230, 0x200000);
	b[0x234] = 1;
	put16(b + 0x236, XLF_KERNEL_64);
	put32(b + 0x238, 100);                  /* cmdline_size */
	put32(b + 0x248, 0x400);
	put32(b + 0x24c, (uint32_t)plen);
	put64(b + 0x250, 0);
	put64(b + 0x258, KERNEL_PA);
	put32(b + 0x260, 0x400000);
	memset(b + BZ_SETUP_SIZE, 0x90, 0x400);
	memcpy(b + BZ_SETUP_SIZE + 0x400, p, plen);
	free(elf);
	free(payload);
	return b;
}

/* ---- fixture -------------------------------------------------------------- */

struct ctx {
	struct guest_mem m;
	struct boot_plan plan;
	char err[512];
	char dir[64];
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	void *p;

	assert_non_null(c);
	p = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	memset(p, POISON, GUEST_SIZE);
	gmem_init(&c->m, p, GUEST_SIZE);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	munmap(c->m.host, c->m.size);
	free(c);
	return 0;
}

static void *at(struct ctx *c, uint64_t gpa, uint64_t len)
{
	void *p = gmem_ptr(&c->m, gpa, len);
	assert_non_null(p);
	return p;
}

static struct boot_params zero_page(struct ctx *c)
{
	struct boot_params bp;
	assert_int_equal(gmem_read(&c->m, ZERO_PAGE_ADDR, &bp, sizeof(bp)), 0);
	return bp;
}

static int all_poison(struct ctx *c, uint64_t gpa, uint64_t len)
{
	const uint8_t *p = at(c, gpa, len);
	for (uint64_t i = 0; i < len; i++)
		if (p[i] != POISON)
			return 0;
	return 1;
}

static void load(struct ctx *c, const uint8_t *img, size_t len, int prefer_pvh)
{
	assert_int_equal(boot_load_kernel(&c->m, img, len, prefer_pvh, &c->plan, c->err, sizeof(c->err)), 0);
}

static void check_e820(struct ctx *c, const struct boot_params *bp)
{
	struct e820_entry want[E820_MAX_ENTRIES_ZEROPAGE];
	int n = e820_build(&c->m, want, E820_MAX_ENTRIES_ZEROPAGE);

	assert_true(n > 0);
	assert_int_equal(bp->e820_entries, n);
	assert_memory_equal(bp->e820_table, want, (size_t)n * sizeof(want[0]));
	/* The zero page's table is what a Linux reader sees at 0x2d0. */
	const uint8_t *raw = (const uint8_t *)bp;
	uint64_t addr;
	uint32_t type;
	memcpy(&addr, raw + 0x2d0 + 20, 8);
	memcpy(&type, raw + 0x2d0 + 20 + 16, 4);
	assert_int_equal(addr, want[1].addr);
	assert_int_equal(type, want[1].type);
	assert_int_equal(raw[0x1e8], n);
}

/* ---- zero page ------------------------------------------------------------ */

static void test_zero_page_elf(void **state)
{
	struct ctx *c = *state;
	size_t len;
	uint8_t *img = elf_build(1, 1, &len), rd[3000];
	const char *cmd = "console=ttyS0 quiet";

	memset(rd, 0x42, sizeof(rd));
	load(c, img, len, 0);
	assert_int_equal(boot_place_initrd(&c->m, rd, sizeof(rd), INITRD_ADDR_MAX_DEFAULT, &c->plan,
					   c->err, sizeof(c->err)), 0);
	assert_int_equal(boot_write_params(&c->m, img, len, cmd, RSDP, &c->plan, c->err, sizeof(c->err)), 0);
	assert_int_equal(c->plan.params_gpa, ZERO_PAGE_ADDR);

	struct boot_params bp = zero_page(c);
	check_e820(c, &bp);
	assert_int_equal(bp.hdr.boot_flag, 0xAA55);
	assert_int_equal(bp.hdr.header, 0x53726448);
	assert_int_equal(bp.hdr.version, 0x020f);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_int_equal(bp.hdr.loadflags, LOADED_HIGH | CAN_USE_HEAP);
	assert_int_equal(bp.hdr.cmd_line_ptr, CMDLINE_ADDR);
	assert_int_equal(bp.hdr.cmdline_size, 2047);
	assert_int_equal(bp.hdr.ramdisk_image, c->plan.initrd_gpa);
	assert_int_equal(bp.hdr.ramdisk_size, sizeof(rd));
	assert_int_not_equal(bp.hdr.ramdisk_image, 0);
	assert_int_equal(bp.ext_ramdisk_image, 0);
	assert_int_equal(bp.ext_cmd_line_ptr, 0);
	assert_int_equal(bp.acpi_rsdp_addr, RSDP);
	assert_int_equal(bp.sentinel, 0);
	assert_string_equal((const char *)at(c, CMDLINE_ADDR, strlen(cmd) + 1), cmd);
	/* same bytes through the raw offsets boot.rst names */
	const uint8_t *raw = (const uint8_t *)&bp;
	uint32_t v32;
	uint64_t v64;
	memcpy(&v32, raw + 0x228, 4);
	assert_int_equal(v32, CMDLINE_ADDR);
	memcpy(&v32, raw + 0x218, 4);
	assert_int_equal(v32, c->plan.initrd_gpa);
	memcpy(&v64, raw + 0x070, 8);
	assert_int_equal(v64, RSDP);
	assert_int_equal(raw[0x210], 0xff);
	free(img);
}

static void test_zero_page_bzimage_header_copied(void **state)
{
	struct ctx *c = *state;
	size_t len;
	uint8_t *img = bz_build(0, &len);

	load(c, img, len, 0);
	assert_int_equal(c->plan.format, BOOT_FMT_BZIMAGE);
	assert_int_equal(boot_write_params(&c->m, img, len, "root=/dev/vda", RSDP, &c->plan,
					   c->err, sizeof(c->err)), 0);
	struct boot_params bp = zero_page(c);
	const uint8_t *raw = (const uint8_t *)&bp;

	check_e820(c, &bp);
	/* Every header byte the loader does not own is the image's. */
	for (size_t off = 0x1f1; off < BZ_HDR_END; off++) {
		int ours = off == 0x210 || off == 0x211 || (off >= 0x224 && off < 0x226) ||
			   (off >= 0x228 && off < 0x22c) || (off >= 0x218 && off < 0x220);
		if (!ours && raw[off] != img[off])
			fail_msg("zero page byte 0x%zx = 0x%02x, image has 0x%02x", off, raw[off], img[off]);
	}
	/* Nothing past the header's own length, nothing before it. */
	for (size_t off = BZ_HDR_END; off < 0x290; off++)
		assert_int_equal(raw[off], 0);
	for (size_t off = 0; off < 0x1f1; off++) {
		int ours = (off >= 0x70 && off < 0x78) || off == 0x1e8;   /* RSDP, e820 count */
		if (!ours && raw[off] != 0)
			fail_msg("zero page byte 0x%zx = 0x%02x, want 0", off, raw[off]);
	}
	assert_int_equal(bp.hdr.pref_address, KERNEL_PA);
	assert_int_equal(bp.hdr.init_size, 0x400000);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_int_equal(bp.hdr.loadflags, LOADED_HIGH | CAN_USE_HEAP);
	assert_int_equal(bp.hdr.heap_end_ptr, 0xe000 - 0x200);
	assert_int_equal(bp.hdr.cmd_line_ptr, CMDLINE_ADDR);
	assert_int_equal(bp.hdr.ramdisk_image, 0);
	assert_int_equal(bp.hdr.ramdisk_size, 0);
	assert_int_equal(bp.hdr.code32_start, 0x100000);   /* untouched: not entered there */
	assert_string_equal((const char *)at(c, CMDLINE_ADDR, 14), "root=/dev/vda");
	free(img);
}

static void test_zero_page_bzimage_raw(void **state)
{
	struct ctx *c = *state;
	size_t len;
	uint8_t *img = bz_build(1, &len);

	load(c, img, len, 0);
	assert_int_equal(c->plan.format, BOOT_FMT_BZIMAGE_RAW);
	assert_int_equal(boot_write_params(&c->m, img, len, NULL, 0, &c->plan, c->err, sizeof(c->err)), 0);
	struct boot_params bp = zero_page(c);
	assert_int_equal(bp.hdr.code32_start, c->plan.kernel_start);
	assert_int_equal(bp.hdr.code32_start, KERNEL_PA);
	assert_int_equal(bp.acpi_rsdp_addr, 0);
	/* NULL cmdline: an empty string, still pointed at */
	assert_int_equal(bp.hdr.cmd_line_ptr, CMDLINE_ADDR);
	assert_int_equal(*(const char *)at(c, CMDLINE_ADDR, 1), '\0');
	free(img);
}

static void expect_cmdline(struct ctx *c, const uint8_t *img, size_t len, size_t n, int ok, size_t max)
{
	char *cmd = malloc(n + 1), want[96];

	assert_non_null(cmd);
	memset(cmd, 'x', n);
	cmd[n] = '\0';
	memset(at(c, ZERO_PAGE_ADDR, 4096), POISON, 4096);
	memset(at(c, PVH_START_INFO, 4096), POISON, 4096);
	int rc = boot_write_params(&c->m, img, len, cmd, 0, &c->plan, c->err, sizeof(c->err));
	if (ok) {
		assert_int_equal(rc, 0);
		assert_memory_equal(at(c, CMDLINE_ADDR, n + 1), cmd, n + 1);
	} else {
		assert_int_equal(rc, -E2BIG);
		snprintf(want, sizeof(want), "--cmdline: too long (%zu bytes, max %zu)", n, max);
		assert_string_equal(c->err, want);
		/* nothing half-written */
		assert_true(all_poison(c, ZERO_PAGE_ADDR, 4096));
		assert_true(all_poison(c, PVH_START_INFO, 4096));
	}
	free(cmd);
}

static void test_cmdline_limits(void **state)
{
	struct ctx *c = *state;
	size_t len;
	uint8_t *img;

	img = bz_build(0, &len);                  /* kernel says cmdline_size 100 */
	load(c, img, len, 0);
	expect_cmdline(c, img, len, 100, 1, 100);
	expect_cmdline(c, img, len, 101, 0, 100);
	free(img);

	img = elf_build(1, 0, &len);              /* vmlinux: x86's 2047 */
	load(c, img, len, 0);
	expect_cmdline(c, img, len, 2047, 1, 2047);
	expect_cmdline(c, img, len, 2048, 0, 2047);
	free(img);

	img = elf_build(0, 1, &len);              /* PVH: the whole cmdline area */
	load(c, img, len, 0);
	assert_int_equal(c->plan.mode, BOOT_MODE_PVH32);
	expect_cmdline(c, img, len, CMDLINE_MAX - 1, 1, CMDLINE_MAX - 1);
	expect_cmdline(c, img, len, CMDLINE_MAX, 0, CMDLINE_MAX - 1);
	free(img);
}

/* ---- PVH start_info ------------------------------------------------------- */

static void test_start_info(void **state)
{
	struct ctx *c = *state;
	size_t len;
	uint8_t *img = elf_build(0, 1, &len), rd[5000];
	struct hvm_start_info si;
	struct hvm_modlist_entry mod;
	struct e820_entry want[64];
	int n;

	memset(rd, 0x24, sizeof(rd));
	load(c, img, len, 0);
	assert_int_equal(c->plan.mode, BOOT_MODE_PVH32);
	assert_int_equal(c->plan.entry, KERNEL_PA + 0x40);
	assert_int_equal(boot_place_initrd(&c->m, rd, sizeof(rd), INITRD_ADDR_MAX_DEFAULT, &c->plan,
					   c->err, sizeof(c->err)), 0);
	assert_int_equal(boot_write_params(&c->m, img, len, "pvh=1", RSDP, &c->plan, c->err, sizeof(c->err)), 0);
	assert_int_equal(c->plan.params_gpa, PVH_START_INFO);

	assert_int_equal(gmem_read(&c->m, PVH_START_INFO, &si, sizeof(si)), 0);
	assert_int_equal(si.magic, 0x336ec578);
	assert_int_equal(si.version, 1);
	assert_int_equal(si.flags, 0);
	assert_int_equal(si.reserved, 0);
	assert_int_equal(si.cmdline_paddr, CMDLINE_ADDR);
	assert_string_equal((const char *)at(c, CMDLINE_ADDR, 6), "pvh=1");
	assert_int_equal(si.rsdp_paddr, RSDP);
	assert_int_equal(si.nr_modules, 1);
	assert_true(si.modlist_paddr >= PVH_START_INFO + sizeof(si));
	assert_true(si.modlist_paddr + sizeof(mod) <= PVH_START_INFO + 4096);
	assert_int_equal(gmem_read(&c->m, si.modlist_paddr, &mod, sizeof(mod)), 0);
	assert_int_equal(mod.paddr, c->plan.initrd_gpa);
	assert_int_equal(mod.size, sizeof(rd));
	assert_int_equal(mod.cmdline_paddr, 0);
	assert_int_equal(mod.reserved, 0);

	n = e820_build(&c->m, want, 64);
	assert_true(n > 0);
	assert_int_equal(si.memmap_entries, n);
	assert_true(si.memmap_paddr >= si.modlist_paddr + sizeof(mod));
	assert_true(si.memmap_paddr + (uint64_t)n * sizeof(struct hvm_memmap_table_entry) <=
		    PVH_START_INFO + 4096);
	for (int i = 0; i < n; i++) {
		struct hvm_memmap_table_entry e;
		assert_int_equal(gmem_read(&c->m, si.memmap_paddr + (uint64_t)i * sizeof(e), &e, sizeof(e)), 0);
		assert_int_equal(e.addr, want[i].addr);
		assert_int_equal(e.size, want[i].size);
		assert_int_equal(e.type, want[i].type);
		assert_int_equal(e.reserved, 0);
	}
	/* PVH leaves the Linux zero page alone */
	assert_true(all_poison(c, ZERO_PAGE_ADDR, 4096));

	/* without an initrd: no modules */
	assert_int_equal(boot_place_initrd(&c->m, rd, 0, INITRD_ADDR_MAX_DEFAULT, &c->plan,
					   c->err, sizeof(c->err)), 0);
	assert_int_equal(boot_write_params(&c->m, img, len, NULL, RSDP, &c->plan, c->err, sizeof(c->err)), 0);
	assert_int_equal(gmem_read(&c->m, PVH_START_INFO, &si, sizeof(si)), 0);
	assert_int_equal(si.nr_modules, 0);
	assert_int_equal(si.modlist_paddr, 0);
	assert_int_equal(si.memmap_entries, n);
	free(img);
}

/* ---- CPU tables ----------------------------------------------------------- */

/* Walk the guest's 4-level tables: physical address for va, or ~0 if unmapped. */
static uint64_t walk(struct ctx *c, uint64_t va, int *large)
{
	uint64_t e, table = BOOT_PML4_ADDR;
	const int shifts[] = { 39, 30, 21 };

	*large = 0;
	for (int level = 0; level < 3; level++) {
		assert_int_equal(gmem_read(&c->m, table + ((va >> shifts[level]) & 511) * 8, &e, 8), 0);
		if (!(e & 1) || !(e & 2))
			return ~0ULL;
		if (level == 2) {
			if (!(e & 0x80))
				return ~0ULL;
			*large = 1;
			return (e & 0x000fffffffe00000ULL) | (va & 0x1fffff);
		}
		if (e & 0x80)
			return ~0ULL;    /* we never build 1 GiB pages */
		table = e & 0x000ffffffffff000ULL;
	}
	return ~0ULL;
}

static void test_cpu_tables_linux64(void **state)
{
	struct ctx *c = *state;
	uint64_t gdt[BOOT_GDT_ENTRIES];
	const uint64_t vas[] = { 0, ZERO_PAGE_ADDR, CMDLINE_ADDR + 5, KERNEL_PA + 0x1234,
				 0x12345678, MEM_HOLE_START - 1, IOAPIC_ADDR, 0xFFFFFFFFULL };
	int large;

	assert_int_equal(boot_write_cpu_tables(&c->m, BOOT_MODE_LINUX64), 0);
	assert_int_equal(gmem_read(&c->m, BOOT_GDT_ADDR, gdt, sizeof(gdt)), 0);
	assert_int_equal(gdt[0], 0);
	assert_int_equal(gdt[1], 0);
	assert_int_equal(gdt[BOOT_CS / 8], boot_gdt_desc(BOOT_MODE_LINUX64, BOOT_CS));
	assert_int_equal(gdt[BOOT_DS / 8], boot_gdt_desc(BOOT_MODE_LINUX64, BOOT_DS));
	/* code: present, S, execute/read, L=1, D=0, G=1; data: read/write, D=1 */
	uint64_t cs = gdt[BOOT_CS / 8], ds = gdt[BOOT_DS / 8];
	assert_int_equal((cs >> 47) & 1, 1);
	assert_int_equal((cs >> 44) & 1, 1);
	assert_int_equal((cs >> 43) & 1, 1);
	assert_int_equal((cs >> 53) & 1, 1);
	assert_int_equal((cs >> 54) & 1, 0);
	assert_int_equal((cs >> 55) & 1, 1);
	assert_int_equal((ds >> 43) & 1, 0);
	assert_int_equal((ds >> 41) & 1, 1);
	assert_int_equal((ds >> 54) & 1, 1);
	assert_int_equal((ds & 0xffff) | ((ds >> 32) & 0xf0000), 0xfffff);   /* limit */

	for (size_t i = 0; i < sizeof(vas) / sizeof(vas[0]); i++) {
		assert_int_equal(walk(c, vas[i], &large), vas[i]);
		assert_true(large);
	}
	assert_int_equal(walk(c, MEM_HIGH_START, &large), ~0ULL);
	assert_int_equal(walk(c, 0xffffffff81000000ULL, &large), ~0ULL);
}

static void test_cpu_tables_pvh32(void **state)
{
	struct ctx *c = *state;
	uint64_t gdt[BOOT_GDT_ENTRIES];

	assert_int_equal(boot_write_cpu_tables(&c->m, BOOT_MODE_PVH32), 0);
	assert_int_equal(gmem_read(&c->m, BOOT_GDT_ADDR, gdt, sizeof(gdt)), 0);
	uint64_t cs = gdt[BOOT_CS / 8];
	assert_int_equal(cs, boot_gdt_desc(BOOT_MODE_PVH32, BOOT_CS));
	assert_int_equal((cs >> 53) & 1, 0);   /* not long mode */
	assert_int_equal((cs >> 54) & 1, 1);   /* 32-bit */
	assert_int_equal((cs >> 43) & 1, 1);
	assert_int_equal(gdt[BOOT_DS / 8], boot_gdt_desc(BOOT_MODE_LINUX64, BOOT_DS));
	/* paging is off for PVH: no tables written */
	assert_true(all_poison(c, BOOT_PML4_ADDR, 6 * 4096));
	assert_int_equal(boot_write_cpu_tables(&c->m, (enum boot_mode)7), -EINVAL);
}

static void test_gdt_desc_selectors(void **state)
{
	(void)state;
	assert_int_equal(BOOT_CS, 0x10);
	assert_int_equal(BOOT_DS, 0x18);
	assert_int_equal(boot_gdt_desc(BOOT_MODE_LINUX64, 0), 0);
	assert_int_equal(boot_gdt_desc(BOOT_MODE_LINUX64, 0x8), 0);
	assert_int_equal(boot_gdt_desc(BOOT_MODE_PVH32, 0x20), 0);
	assert_int_not_equal(boot_gdt_desc(BOOT_MODE_LINUX64, BOOT_CS),
			     boot_gdt_desc(BOOT_MODE_PVH32, BOOT_CS));
}

/* ---- boot_setup from files -------------------------------------------------- */

static int fs_setup(void **state)
{
	struct ctx *c;

	setup(state);
	c = *state;
	strcpy(c->dir, "/tmp/wafer-boot-XXXXXX");
	assert_non_null(mkdtemp(c->dir));
	return 0;
}

static int fs_teardown(void **state)
{
	struct ctx *c = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
	assert_int_equal(system(cmd), 0);
	return teardown(state);
}

static char *path_in(struct ctx *c, const char *name)
{
	static char paths[8][128];
	static int next;
	char *p = paths[next++ % 8];
	snprintf(p, 128, "%s/%s", c->dir, name);
	return p;
}

static char *write_file(struct ctx *c, const char *name, const void *data, size_t len)
{
	char *p = path_in(c, name);
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return p;
}

static int run_setup(struct ctx *c, const char *kernel, const char *initrd, const char *cmdline,
		     unsigned ncpus)
{
	struct boot_request req = {
		.kernel_path = kernel, .initrd_path = initrd, .cmdline = cmdline, .ncpus = ncpus,
	};
	c->err[0] = '\0';
	return boot_setup(&c->m, &req, &c->plan, c->err, sizeof(c->err));
}

static void test_setup_elf_with_initrd(void **state)
{
	struct ctx *c = *state;
	size_t len;
	uint8_t *img = elf_build(1, 1, &len), rd[10000];
	uint64_t pml4;

	for (size_t i = 0; i < sizeof(rd); i++)
		rd[i] = (uint8_t)i;
	char *k = write_file(c, "vmlinux", img, len);
	char *r = write_file(c, "initrd", rd, sizeof(rd));
	assert_int_equal(run_setup(c, k, r, "console=ttyS0", 2), 0);
	assert_int_equal(c->plan.mode, BOOT_MODE_LINUX64);
	assert_int_equal(c->plan.format, BOOT_FMT_ELF);
	assert_int_equal(c->plan.entry, KERNEL_PA);

	struct boot_params bp = zero_page(c);
	check_e820(c, &bp);
	assert_int_equal(bp.hdr.ramdisk_image, c->plan.initrd_gpa);
	assert_int_equal(bp.hdr.ramdisk_size, sizeof(rd));
	assert_memory_equal(at(c, c->plan.initrd_gpa, sizeof(rd)), rd, sizeof(rd));
	assert_true(c->plan.initrd_gpa + sizeof(rd) - 1 <= INITRD_ADDR_MAX_DEFAULT);
	assert_string_equal((const char *)at(c, CMDLINE_ADDR, 14), "console=ttyS0");
	/* ACPI was built and its RSDP handed over */
	assert_int_equal(bp.acpi_rsdp_addr, ACPI_ADDR);
	assert_memory_equal(at(c, ACPI_ADDR, 8), "RSD PTR ", 8);
	/* CPU tables too */
	assert_int_equal(gmem_read(&c->m, BOOT_PML4_ADDR, &pml4, 8), 0);
	assert_int_equal(pml4 & ~0xfffULL, BOOT_PDPT_ADDR);
	free(img);
}

static void test_setup_pvh(void **state)
{
	struct ctx *c = *state;
	size_t len;
	uint8_t *img = elf_build(0, 1, &len);
	struct hvm_start_info si;

	char *k = write_file(c, "pvh.elf", img, len);
	assert_int_equal(run_setup(c, k, NULL, "a=b", 1), 0);
	assert_int_equal(c->plan.mode, BOOT_MODE_PVH32);
	assert_int_equal(gmem_read(&c->m, PVH_START_INFO, &si, sizeof(si)), 0);
	assert_int_equal(si.magic, 0x336ec578);
	assert_int_equal(si.rsdp_paddr, ACPI_ADDR);
	assert_int_equal(si.nr_modules, 0);
	free(img);
}

static void test_setup_bzimage_initrd_limit(void **state)
{
	struct ctx *c = *state;
	size_t len, rdlen = 3u << 20;
	uint8_t *img = bz_build(0, &len), *rd = calloc(1, rdlen);

	assert_non_null(rd);
	char *k = write_file(c, "bzImage", img, len);
	char *r = write_file(c, "initrd", rd, rdlen);
	/* header's initrd_addr_max is 32 MiB - 1 = the end of this guest's RAM */
	assert_int_equal(run_setup(c, k, r, "", 1), 0);
	assert_int_equal(c->plan.format, BOOT_FMT_BZIMAGE);
	assert_true(c->plan.initrd_gpa + rdlen - 1 <= 0x1FFFFFF);

	/* lower it: the initrd follows */
	put32(img + 0x22c, 0x17FFFFF);
	k = write_file(c, "bzImage2", img, len);
	assert_int_equal(run_setup(c, k, r, "", 1), 0);
	assert_int_equal(c->plan.initrd_gpa, (0x1800000 - rdlen) & ~0xfffULL);
	struct boot_params bp = zero_page(c);
	assert_int_equal(bp.hdr.ramdisk_image, c->plan.initrd_gpa);
	assert_int_equal(bp.hdr.initrd_addr_max, 0x17FFFFF);
	free(img);
	free(rd);
}

static void test_setup_many_cpus_without_mptable(void **state)
{
	struct ctx *c = *state;
	size_t len;
	uint8_t *img = elf_build(1, 0, &len);

	char *k = write_file(c, "vmlinux", img, len);
	/* 100 processor entries do not fit the MP table's area; ACPI does it */
	assert_int_equal(run_setup(c, k, NULL, NULL, 100), 0);
	assert_memory_equal(at(c, ACPI_ADDR, 8), "RSD PTR ", 8);
	free(img);
}

static void expect_err(struct ctx *c, int rc, const char *path, const char *reason)
{
	char want[512];

	assert_true(rc < 0);
	snprintf(want, sizeof(want), "%s: %s", path, reason);
	if (strncmp(c->err, want, strlen(want)))
		fail_msg("error \"%s\", want \"%s...\"", c->err, want);
}

static void test_setup_file_errors(void **state)
{
	struct ctx *c = *state;
	size_t len;
	uint8_t *img = elf_build(1, 0, &len);
	char *k = write_file(c, "vmlinux", img, len);
	char *missing = path_in(c, "nope");
	char *empty = write_file(c, "empty", "", 0);
	char *junk = write_file(c, "junk", "hello, world, this is not a kernel", 34);
	char *big = path_in(c, "big");
	int fd, rc;

	rc = run_setup(c, missing, NULL, NULL, 1);
	assert_int_equal(rc, -ENOENT);
	expect_err(c, rc, missing, "No such file or directory");
	assert_string_equal(strchr(c->err, ':'), ": No such file or directory");

	expect_err(c, run_setup(c, c->dir, NULL, NULL, 1), c->dir, "is a directory");
	expect_err(c, run_setup(c, empty, NULL, NULL, 1), empty, "empty file");
	expect_err(c, run_setup(c, junk, NULL, NULL, 1), junk, "not a bzImage or ELF kernel");

	fd = open(big, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)GUEST_SIZE + 1), 0);
	close(fd);
	expect_err(c, run_setup(c, big, NULL, NULL, 1), big, "too large for guest memory");

	expect_err(c, run_setup(c, k, missing, NULL, 1), missing, "No such file or directory");
	expect_err(c, run_setup(c, k, empty, NULL, 1), empty, "empty file");
	expect_err(c, run_setup(c, k, big, NULL, 1), big, "too large for guest memory");

	/* fits in RAM, but not between the kernel and the end of RAM */
	fd = open(big, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)(GUEST_SIZE - KERNEL_PA)), 0);
	close(fd);
	expect_err(c, run_setup(c, k, big, NULL, 1), big, "initrd of");
	assert_non_null(strstr(c->err, "does not fit"));

	char *longcmd = malloc(5000);
	assert_non_null(longcmd);
	memset(longcmd, 'y', 4999);
	longcmd[4999] = '\0';
	rc = run_setup(c, k, NULL, longcmd, 1);
	assert_int_equal(rc, -E2BIG);
	assert_string_equal(c->err, "--cmdline: too long (4999 bytes, max 2047)");
	free(longcmd);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_zero_page_elf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_page_bzimage_header_copied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_page_bzimage_raw, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmdline_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_info, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cpu_tables_linux64, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cpu_tables_pvh32, setup, teardown),
		cmocka_unit_test(test_gdt_desc_selectors),
		cmocka_unit_test_setup_teardown(test_setup_elf_with_initrd, fs_setup, fs_teardown),
		cmocka_unit_test_setup_teardown(test_setup_pvh, fs_setup, fs_teardown),
		cmocka_unit_test_setup_teardown(test_setup_bzimage_initrd_limit, fs_setup, fs_teardown),
		cmocka_unit_test_setup_teardown(test_setup_many_cpus_without_mptable, fs_setup, fs_teardown),
		cmocka_unit_test_setup_teardown(test_setup_file_errors, fs_setup, fs_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
