/* Kernel image loading: bzImage (Documentation/arch/x86/boot.rst, setup header
 * and "64-bit Boot Protocol"), vmlinux ELF64, and PVH ELF32/64 (Xen PVH ABI,
 * XEN_ELFNOTE_PHYS32_ENTRY). Images are hostile: every offset is checked. */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "arch/x86/bootparam.h"
#include "arch/x86/decompress.h"
#include "arch/x86/layout.h"

#define BOOT_PAGE          4096ULL
#define BZ_ENTRY64_OFFSET  0x200   /* boot.rst: 64-bit entry = load address + 0x200 */
#define BZ_HDR_MIN_END     0x268   /* protocol 2.12 fields end here */
#define ELF_MAX_PHDRS      128     /* vmlinux has ~5; bounds the work per image */
#define ELF_MAX_LOADS      32
#define XEN_ELFNOTE_GUEST_OS      6
#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* Detail for plan->fallback_reason (boot.h: valid until the next load). */
static char fallback_reason[256];

struct elf_phdr {       /* ELF32 and ELF64 program headers, widened */
	uint32_t type;
	uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

struct elf_image {
	int class64;
	uint64_t entry;
	struct elf_phdr load[ELF_MAX_LOADS];
	unsigned nload;
	int has_pvh;
	uint64_t pvh_entry;
	int is_linux;        /* carries a "Linux" note or Xen GUEST_OS "linux" */
};

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static void elf_read_phdr(const uint8_t *p, int class64, struct elf_phdr *ph)
{
	if (class64) {
		Elf64_Phdr h;
		memcpy(&h, p, sizeof(h));
		*ph = (struct elf_phdr){ h.p_type, h.p_offset, h.p_vaddr, h.p_paddr,
					 h.p_filesz, h.p_memsz, h.p_align };
	} else {
		Elf32_Phdr h;
		memcpy(&h, p, sizeof(h));
		*ph = (struct elf_phdr){ h.p_type, h.p_offset, h.p_vaddr, h.p_paddr,
					 h.p_filesz, h.p_memsz, h.p_align };
	}
}

/* Walk one PT_NOTE segment for the Xen PVH entry and Linux markers. */
static int elf_scan_notes(const uint8_t *buf, size_t len, const struct elf_phdr *ph,
			  unsigned idx, struct elf_image *img, char *err, size_t errlen)
{
	uint64_t a = ph->align == 8 ? 8 : 4;
	const uint8_t *p;
	uint64_t n, pos = 0;

	if (ph->offset > len || ph->filesz > len - ph->offset) {
		snprintf(err, errlen, "PT_NOTE %u (offset 0x%llx, size 0x%llx) runs past the end of the file",
			 idx, (unsigned long long)ph->offset, (unsigned long long)ph->filesz);
		return -ENOEXEC;
	}
	p = buf + ph->offset;
	n = ph->filesz;
	while (n - pos >= 12) {
		uint32_t namesz = rd32(p + pos), descsz = rd32(p + pos + 4), type = rd32(p + pos + 8);
		uint64_t nsz = align_up(namesz, a), dsz = align_up(descsz, a);
		const uint8_t *name, *desc;

		pos += 12;
		if (nsz > n - pos || dsz > n - pos - nsz) {
			snprintf(err, errlen, "PT_NOTE %u: note at offset 0x%llx (name %u, desc %u bytes) runs past its segment",
				 idx, (unsigned long long)(pos - 12), namesz, descsz);
			return -ENOEXEC;
		}
		name = p + pos;
		desc = p + pos + nsz;
		pos += nsz + dsz;
		if (namesz == 4 && !memcmp(name, "Xen", 4)) {
			if (type == XEN_ELFNOTE_PHYS32_ENTRY) {
				if (descsz == 4) {
					img->pvh_entry = rd32(desc);
				} else if (descsz == 8) {
					img->pvh_entry = rd64(desc);
				} else {
					snprintf(err, errlen, "Xen PHYS32_ENTRY note has a %u-byte value (want 4 or 8)",
						 descsz);
					return -ENOEXEC;
				}
				img->has_pvh = 1;
			} else if (type == XEN_ELFNOTE_GUEST_OS && descsz >= 5 &&
				   !memcmp(desc, "linux", 5)) {
				img->is_linux = 1;
			}
		} else if (namesz == 6 && !memcmp(name, "Linux", 6)) {
			img->is_linux = 1;
		}
	}
	return 0;
}

/* Validate an ELF kernel completely before anything is written: header,
 * program headers, and that every PT_LOAD lies in low guest RAM above the
 * boot data, inside the file, and clear of the others. */
static int elf_parse(const struct guest_mem *m, const uint8_t *buf, size_t len,
		     struct elf_image *img, char *err, size_t errlen)
{
	uint64_t phoff, low_end = gmem_low_end(m);
	unsigned phnum, phentsize, type, machine, version;
	size_t ehsize;

	memset(img, 0, sizeof(*img));
	if (len < EI_NIDENT) {
		snprintf(err, errlen, "truncated ELF header (%zu bytes)", len);
		return -ENOEXEC;
	}
	if (buf[EI_CLASS] != ELFCLASS64 && buf[EI_CLASS] != ELFCLASS32) {
		snprintf(err, errlen, "unsupported ELF class %u", buf[EI_CLASS]);
		return -ENOEXEC;
	}
	img->class64 = buf[EI_CLASS] == ELFCLASS64;
	ehsize = img->class64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	if (len < ehsize) {
		snprintf(err, errlen, "truncated ELF header (%zu of %zu bytes)", len, ehsize);
		return -ENOEXEC;
	}
	if (buf[EI_DATA] != ELFDATA2LSB) {
		snprintf(err, errlen, "ELF image is not little-endian");
		return -ENOEXEC;
	}
	if (img->class64) {
		Elf64_Ehdr eh;
		memcpy(&eh, buf, sizeof(eh));
		type = eh.e_type;
		machine = eh.e_machine;
		version = eh.e_version;
		img->entry = eh.e_entry;
		phoff = eh.e_phoff;
		phnum = eh.e_phnum;
		phentsize = eh.e_phentsize;
	} else {
		Elf32_Ehdr eh;
		memcpy(&eh, buf, sizeof(eh));
		type = eh.e_type;
		machine = eh.e_machine;
		version = eh.e_version;
		img->entry = eh.e_entry;
		phoff = eh.e_phoff;
		phnum = eh.e_phnum;
		phentsize = eh.e_phentsize;
	}
	if (machine != (img->class64 ? EM_X86_64 : EM_386)) {
		snprintf(err, errlen, "ELF%d machine %u is not %s", img->class64 ? 64 : 32, machine,
			 img->class64 ? "x86-64" : "i386");
		return -ENOEXEC;
	}
	if (type != ET_EXEC || version != EV_CURRENT) {
		snprintf(err, errlen, "ELF type %u version %u is not an executable (ET_EXEC, EV_CURRENT)",
			 type, version);
		return -ENOEXEC;
	}
	if (phentsize != (img->class64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr))) {
		snprintf(err, errlen, "ELF program header size %u is wrong", phentsize);
		return -ENOEXEC;
	}
	if (phnum == 0 || phnum > ELF_MAX_PHDRS) {
		snprintf(err, errlen, "ELF has %u program headers (want 1..%u)", phnum, ELF_MAX_PHDRS);
		return -ENOEXEC;
	}
	if (phoff > len || (uint64_t)phnum * phentsize > len - phoff) {
		snprintf(err, errlen, "ELF program headers (offset 0x%llx, %u entries) run past the end of the file (%zu bytes)",
			 (unsigned long long)phoff, phnum, len);
		return -ENOEXEC;
	}

	for (unsigned i = 0; i < phnum; i++) {
		struct elf_phdr ph;
		int rc;

		elf_read_phdr(buf + phoff + (uint64_t)i * phentsize, img->class64, &ph);
		if (ph.type == PT_NOTE) {
			rc = elf_scan_notes(buf, len, &ph, i, img, err, errlen);
			if (rc)
				return rc;
			continue;
		}
		if (ph.type != PT_LOAD)
			continue;
		if (ph.filesz > ph.memsz) {
			snprintf(err, errlen, "segment %u: file size 0x%llx exceeds memory size 0x%llx",
				 i, (unsigned long long)ph.filesz, (unsigned long long)ph.memsz);
			return -ENOEXEC;
		}
		if (ph.offset > len || ph.filesz > len - ph.offset) {
			snprintf(err, errlen, "segment %u: file bytes 0x%llx+0x%llx run past the end of the file (%zu bytes)",
				 i, (unsigned long long)ph.offset, (unsigned long long)ph.filesz, len);
			return -ENOEXEC;
		}
		if (ph.memsz == 0)
			continue;
		if (ph.paddr < HIMEM_START) {
			snprintf(err, errlen, "segment %u at 0x%llx overlaps the boot data below 1 MiB",
				 i, (unsigned long long)ph.paddr);
			return -ENOEXEC;
		}
		/* Low RAM only: LINUX64's page tables and PVH's 32-bit entry both
		 * stop below 4 GiB, and low RAM itself stops at the MMIO hole. */
		if (ph.paddr >= low_end || ph.memsz > low_end - ph.paddr ||
		    !gmem_ptr(m, ph.paddr, ph.memsz)) {
			snprintf(err, errlen, "segment %u (0x%llx, 0x%llx bytes) is outside guest RAM below 0x%llx",
				 i, (unsigned long long)ph.paddr, (unsigned long long)ph.memsz,
				 (unsigned long long)low_end);
			return -ENOEXEC;
		}
		for (unsigned j = 0; j < img->nload; j++) {
			const struct elf_phdr *o = &img->load[j];
			if (ph.paddr < o->paddr + o->memsz && o->paddr < ph.paddr + ph.memsz) {
				snprintf(err, errlen, "segments overlap: 0x%llx+0x%llx and 0x%llx+0x%llx",
					 (unsigned long long)o->paddr, (unsigned long long)o->memsz,
					 (unsigned long long)ph.paddr, (unsigned long long)ph.memsz);
				return -ENOEXEC;
			}
		}
		if (img->nload == ELF_MAX_LOADS) {
			snprintf(err, errlen, "more than %u PT_LOAD segments", ELF_MAX_LOADS);
			return -ENOEXEC;
		}
		img->load[img->nload++] = ph;
	}
	if (img->nload == 0) {
		snprintf(err, errlen, "ELF has no loadable segments");
		return -ENOEXEC;
	}
	return 0;
}

/* A physical entry inside a loaded segment; a virtual e_entry (ELF kernels
 * linked high with p_paddr != p_vaddr) is translated through its segment.
 * Linux's vmlinux already gives a physical e_entry (phys_startup_64). */
static int elf_entry_phys(const struct elf_image *img, uint64_t e, int allow_virt, uint64_t *pa)
{
	for (unsigned i = 0; i < img->nload; i++) {
		const struct elf_phdr *s = &img->load[i];
		if (e >= s->paddr && e - s->paddr < s->memsz) {
			*pa = e;
			return 0;
		}
	}
	for (unsigned i = 0; allow_virt && i < img->nload; i++) {
		const struct elf_phdr *s = &img->load[i];
		if (e >= s->vaddr && e - s->vaddr < s->memsz) {
			*pa = s->paddr + (e - s->vaddr);
			return 0;
		}
	}
	return -ENOEXEC;
}

/* from_bzimage: buf is the payload of a bzImage, so it is Linux whatever
 * notes it carries. */
static int boot_load_elf(struct guest_mem *m, const uint8_t *buf, size_t len, int prefer_pvh,
			 int from_bzimage, struct boot_plan *plan, char *err, size_t errlen)
{
	struct elf_image *img = malloc(sizeof(*img));
	uint64_t entry, lo = UINT64_MAX, hi = 0;
	int use_pvh, rc;

	if (!img) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = elf_parse(m, buf, len, img, err, errlen);
	if (rc)
		goto out;
	if (from_bzimage)
		img->is_linux = 1;

	/* A vmlinux carrying both entries boots through the Linux 64-bit protocol
	 * unless PVH is asked for; any other ELF with a PVH note is a PVH kernel
	 * (its e_entry is typically 32-bit code). ELF32 only boots PVH. */
	if (!img->class64) {
		if (!img->has_pvh) {
			snprintf(err, errlen, "32-bit ELF has no PVH entry note (Xen PHYS32_ENTRY)");
			rc = -ENOEXEC;
			goto out;
		}
		use_pvh = 1;
	} else {
		use_pvh = img->has_pvh && (prefer_pvh || !img->is_linux);
	}

	if (use_pvh) {
		entry = img->pvh_entry;
		if (entry >= MEM_HIGH_START || elf_entry_phys(img, entry, 0, &entry)) {
			snprintf(err, errlen, "PVH entry 0x%llx is not inside a loaded segment",
				 (unsigned long long)img->pvh_entry);
			rc = -ENOEXEC;
			goto out;
		}
	} else if (elf_entry_phys(img, img->entry, 1, &entry)) {
		snprintf(err, errlen, "ELF entry 0x%llx is not inside a loaded segment",
			 (unsigned long long)img->entry);
		rc = -ENOEXEC;
		goto out;
	}

	for (unsigned i = 0; i < img->nload; i++) {
		const struct elf_phdr *s = &img->load[i];
		uint8_t *dst = gmem_ptr(m, s->paddr, s->memsz);   /* checked in elf_parse */

		memcpy(dst, buf + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
		if (s->paddr < lo)
			lo = s->paddr;
		if (s->paddr + s->memsz > hi)
			hi = s->paddr + s->memsz;
	}
	plan->entry = entry;
	plan->kernel_start = lo & ~(BOOT_PAGE - 1);
	plan->kernel_end = align_up(hi, BOOT_PAGE);
	if (use_pvh) {
		plan->mode = BOOT_MODE_PVH32;
		plan->format = BOOT_FMT_PVH;
		plan->params_gpa = PVH_START_INFO;
	} else {
		plan->mode = BOOT_MODE_LINUX64;
		plan->format = from_bzimage ? BOOT_FMT_BZIMAGE : BOOT_FMT_ELF;
		plan->params_gpa = ZERO_PAGE_ADDR;
	}
out:
	free(img);
	return rc;
}

int bzimage_detect(const uint8_t *buf, size_t len)
{
	return len >= 0x206 && rd32(buf + 0x202) == SETUP_HDRS_MAGIC;
}

int bzimage_parse(const uint8_t *buf, size_t len, struct bzimage_info *bz,
		  char *err, size_t errlen)
{
	struct setup_header *h = &bz->hdr;
	unsigned sects;
	int8_t jump;

	memset(bz, 0, sizeof(*bz));
	if (len < SETUP_HDR_OFFSET + sizeof(*h)) {
		snprintf(err, errlen, "truncated bzImage: setup header cut at %zu bytes", len);
		return -ENOEXEC;
	}
	memcpy(h, buf + SETUP_HDR_OFFSET, sizeof(*h));
	if (h->boot_flag != SETUP_BOOT_FLAG || h->header != SETUP_HDRS_MAGIC) {
		snprintf(err, errlen, "bad bzImage setup header (boot_flag 0x%04x)", h->boot_flag);
		return -ENOEXEC;
	}
	/* The header's own length: a short jump over it, relative to 0x202. */
	jump = (int8_t)buf[0x201];
	if (buf[0x200] != SETUP_JUMP_OPCODE || 0x202 + jump < BZ_HDR_MIN_END) {
		snprintf(err, errlen, "bzImage setup header length (jump 0x%02x 0x%02x) is invalid",
			 buf[0x200], buf[0x201]);
		return -ENOEXEC;
	}
	bz->hdr_end = 0x202 + (size_t)jump;
	if (bz->hdr_end > len) {
		snprintf(err, errlen, "truncated bzImage: setup header cut at %zu bytes", len);
		return -ENOEXEC;
	}
	/* Fields past the header's end are not the kernel's: treat them as 0. */
	if (bz->hdr_end < SETUP_HDR_OFFSET + sizeof(*h))
		memset((uint8_t *)h + (bz->hdr_end - SETUP_HDR_OFFSET), 0,
		       SETUP_HDR_OFFSET + sizeof(*h) - bz->hdr_end);
	if (h->version < 0x020c || !(h->xloadflags & XLF_KERNEL_64)) {
		snprintf(err, errlen, "bzImage protocol %u.%02u has no 64-bit entry (need 2.12+ with XLF_KERNEL_64)",
			 h->version >> 8, h->version & 0xff);
		return -ENOEXEC;
	}
	if (!(h->loadflags & LOADED_HIGH)) {
		snprintf(err, errlen, "zImage kernels (not loaded high) are not supported");
		return -ENOEXEC;
	}
	sects = h->setup_sects ? h->setup_sects : 4;
	bz->setup_size = ((size_t)sects + 1) * SETUP_SECTOR;
	if (bz->setup_size >= len) {
		snprintf(err, errlen, "setup_sects %u: setup code (%zu bytes) runs past the end of the file (%zu bytes)",
			 h->setup_sects, bz->setup_size, len);
		return -ENOEXEC;
	}
	bz->pm_len = len - bz->setup_size;
	if (bz->pm_len <= BZ_ENTRY64_OFFSET) {
		snprintf(err, errlen, "protected-mode kernel of %zu bytes is too short for its 64-bit entry",
			 bz->pm_len);
		return -ENOEXEC;
	}
	return 0;
}

/* Host decompression of the payload into its vmlinux ELF. 0 on success; else
 * fallback_reason says why and the caller boots the image as it is. */
static int bzimage_load_payload(struct guest_mem *m, const uint8_t *pm, const struct bzimage_info *bz,
				int prefer_pvh, struct boot_plan *plan)
{
	uint64_t off = bz->hdr.payload_offset, plen = bz->hdr.payload_length;
	enum decompress_format fmt = DECOMPRESS_UNKNOWN;
	uint8_t *elf = NULL;
	size_t elf_len = 0, cap;
	char why[160];
	int rc;

	if (off == 0 || plen == 0 || off > bz->pm_len || plen > bz->pm_len - off) {
		snprintf(fallback_reason, sizeof(fallback_reason),
			 "payload_offset 0x%llx / payload_length 0x%llx outside the %zu-byte protected-mode kernel",
			 (unsigned long long)off, (unsigned long long)plen, bz->pm_len);
		return -ENOEXEC;
	}
	cap = gmem_low_end(m) < DECOMPRESS_CAP ? (size_t)gmem_low_end(m) : DECOMPRESS_CAP;
	rc = decompress_payload(pm + off, plen, cap, &elf, &elf_len, &fmt, why, sizeof(why));
	if (rc) {
		snprintf(fallback_reason, sizeof(fallback_reason), "%s", why);
		goto out;
	}
	rc = boot_load_elf(m, elf, elf_len, prefer_pvh, 1, plan, why, sizeof(why));
	if (rc) {
		snprintf(fallback_reason, sizeof(fallback_reason),
			 "decompressed %s payload is not a loadable kernel: %s",
			 decompress_format_name(fmt), why);
		goto out;
	}
	/* The running kernel uses memory past its last segment (brk, early page
	 * tables) up to init_size from its start: keep the initrd out of it. */
	uint64_t init_end = plan->kernel_start + bz->hdr.init_size;
	if (init_end > plan->kernel_end && init_end <= gmem_low_end(m))
		plan->kernel_end = init_end;
out:
	free(elf);
	return rc;
}

/* The image as it is: protected-mode part at the load address, entered at its
 * 64-bit entry; the kernel decompresses itself within init_size. */
static int bzimage_load_raw(struct guest_mem *m, const uint8_t *pm, const struct bzimage_info *bz,
			    struct boot_plan *plan, char *err, size_t errlen)
{
	const struct setup_header *h = &bz->hdr;
	uint64_t low_end = gmem_low_end(m), align = h->kernel_alignment;
	uint64_t pref = h->pref_address, load, runtime, end;

	if (low_end > MEM_HOLE_START)
		low_end = MEM_HOLE_START;
	if (h->relocatable_kernel) {
		if (align < BOOT_PAGE || align > (1ULL << 30) || (align & (align - 1))) {
			snprintf(err, errlen, "kernel_alignment 0x%llx is not a power of two from 4 KiB to 1 GiB",
				 (unsigned long long)align);
			return -ENOEXEC;
		}
		if (pref >= HIMEM_START && pref < low_end && !(pref & (align - 1)))
			load = pref;
		else
			load = align_up(HIMEM_START, align);
		/* boot.rst: runtime start = align_up(load, kernel_alignment); the
		 * decompressor also never runs below its LOAD_PHYSICAL_ADDR, which
		 * is what pref_address advertises. */
		runtime = load > pref ? load : pref;
	} else {
		load = HIMEM_START;
		runtime = pref ? pref : HIMEM_START;
	}
	end = load + bz->pm_len;
	if (runtime + h->init_size > end)
		end = runtime + h->init_size;
	if (runtime >= low_end || end > low_end || runtime + h->init_size < runtime) {
		snprintf(err, errlen, "kernel needs RAM up to 0x%llx (loaded at 0x%llx, init_size 0x%x) but low RAM ends at 0x%llx",
			 (unsigned long long)end, (unsigned long long)load, h->init_size,
			 (unsigned long long)low_end);
		return -E2BIG;
	}
	if (gmem_write(m, load, pm, bz->pm_len)) {
		snprintf(err, errlen, "kernel does not fit at 0x%llx", (unsigned long long)load);
		return -E2BIG;
	}
	plan->mode = BOOT_MODE_LINUX64;
	plan->format = BOOT_FMT_BZIMAGE_RAW;
	plan->entry = load + BZ_ENTRY64_OFFSET;
	plan->params_gpa = ZERO_PAGE_ADDR;
	plan->kernel_start = load;
	plan->kernel_end = align_up(end, BOOT_PAGE);
	plan->fallback_reason = fallback_reason;
	return 0;
}

static int boot_load_bzimage(struct guest_mem *m, const uint8_t *buf, size_t len, int prefer_pvh,
			     struct boot_plan *plan, char *err, size_t errlen)
{
	struct bzimage_info bz;
	const uint8_t *pm;
	int rc;

	rc = bzimage_parse(buf, len, &bz, err, errlen);
	if (rc)
		return rc;
	pm = buf + bz.setup_size;
	if (bzimage_load_payload(m, pm, &bz, prefer_pvh, plan) == 0)
		return 0;
	memset(plan, 0, sizeof(*plan));
	return bzimage_load_raw(m, pm, &bz, plan, err, errlen);
}

int boot_load_kernel(struct guest_mem *m, const uint8_t *buf, size_t len,
		     int prefer_pvh, struct boot_plan *plan, char *err, size_t errlen)
{
	static const uint8_t elfmag[4] = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3 };

	memset(plan, 0, sizeof(*plan));
	fallback_reason[0] = '\0';
	if (!buf)
		len = 0;
	if (len >= 4 && !memcmp(buf, elfmag, 4))
		return boot_load_elf(m, buf, len, prefer_pvh, 0, plan, err, errlen);
	if (bzimage_detect(buf, len))
		return boot_load_bzimage(m, buf, len, prefer_pvh, plan, err, errlen);
	if (len > 0 && len < 4 && !memcmp(buf, elfmag, len)) {
		snprintf(err, errlen, "truncated ELF header (%zu bytes)", len);
		return -ENOEXEC;
	}
	if (len >= 0x200 && buf[0x1fe] == 0x55 && buf[0x1ff] == 0xaa) {
		if (len < 0x206)
			snprintf(err, errlen, "truncated bzImage: setup header cut at %zu bytes", len);
		else
			snprintf(err, errlen, "boot sector without a HdrS setup header (protocol < 2.00)");
		return -ENOEXEC;
	}
	snprintf(err, errlen, "not a bzImage or ELF kernel");
	return -ENOEXEC;
}

int boot_place_initrd(struct guest_mem *m, const uint8_t *buf, size_t len,
		      uint64_t addr_max, struct boot_plan *plan, char *err, size_t errlen)
{
	uint64_t limit = gmem_low_end(m), lo, start;

	plan->initrd_gpa = 0;
	plan->initrd_size = 0;
	if (len == 0)
		return 0;
	if (limit > MEM_HOLE_START)
		limit = MEM_HOLE_START;
	/* addr_max is the highest byte the initrd may occupy. */
	if (limit && addr_max < limit - 1)
		limit = addr_max + 1;
	lo = align_up(plan->kernel_end > HIMEM_START ? plan->kernel_end : HIMEM_START, BOOT_PAGE);
	if (len > limit || ((limit - len) & ~(BOOT_PAGE - 1)) < lo) {
		snprintf(err, errlen, "initrd of %zu bytes does not fit: %llu bytes free between the kernel end 0x%llx and the limit 0x%llx",
			 len, (unsigned long long)(limit > lo ? limit - lo : 0),
			 (unsigned long long)lo, (unsigned long long)limit);
		return -E2BIG;
	}
	start = (limit - len) & ~(BOOT_PAGE - 1);
	if (gmem_write(m, start, buf, len)) {
		snprintf(err, errlen, "initrd does not fit at 0x%llx", (unsigned long long)start);
		return -E2BIG;
	}
	plan->initrd_gpa = start;
	plan->initrd_size = len;
	return 0;
}
