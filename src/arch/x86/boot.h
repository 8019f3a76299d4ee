/* Boot image loading: bzImage (Linux x86 boot protocol, 64-bit entry), vmlinux
 * ELF and PVH ELF. Loaders only parse and place; boot_regs.c sets the vCPU up
 * from the resulting plan. */
#ifndef WAFER_ARCH_X86_BOOT_H
#define WAFER_ARCH_X86_BOOT_H

#include <stddef.h>
#include <stdint.h>
#include "vmm/memory.h"

enum boot_mode {
	BOOT_MODE_LINUX64, /* long mode, paging on, RSI = zero page */
	BOOT_MODE_PVH32,   /* 32-bit protected mode, paging off, EBX = start_info */
};

enum boot_format {
	BOOT_FMT_BZIMAGE,      /* bzImage, payload decompressed on the host */
	BOOT_FMT_BZIMAGE_RAW,  /* bzImage entered at its own 64-bit entry (guest decompresses) */
	BOOT_FMT_ELF,          /* vmlinux ELF, 64-bit boot protocol */
	BOOT_FMT_PVH,          /* ELF with XEN_ELFNOTE_PHYS32_ENTRY */
};

struct boot_request {
	const char *kernel_path;
	const char *initrd_path;   /* NULL: none */
	const char *cmdline;       /* NULL: empty */
	unsigned ncpus;
	int prefer_pvh;            /* ELF has both a PVH note and a 64-bit entry: use PVH */
};

struct boot_plan {
	enum boot_mode mode;
	enum boot_format format;
	uint64_t entry;            /* guest-physical entry point */
	uint64_t params_gpa;       /* zero page (LINUX64) or hvm_start_info (PVH32) */
	uint64_t kernel_start, kernel_end;  /* loaded image range */
	uint64_t initrd_gpa, initrd_size;
	/* Set when BOOT_FMT_BZIMAGE_RAW was chosen; static storage, valid until
	 * the next boot_load_kernel call. */
	const char *fallback_reason;
};

/* Boot GDT (at BOOT_GDT_ADDR): null, null, code, data. Linux's 32/64-bit boot
 * protocols name the selectors __BOOT_CS and __BOOT_DS. */
#define BOOT_GDT_ENTRIES 4
#define BOOT_CS 0x10
#define BOOT_DS 0x18

/* The 8-byte descriptor boot_write_cpu_tables puts at selector (flat 4 GiB;
 * code is 64-bit for LINUX64, 32-bit for PVH32); 0 for the null selectors or
 * an unknown one. boot_regs.c builds KVM segments from the same values. */
uint64_t boot_gdt_desc(enum boot_mode mode, uint16_t selector);

/* In-memory image views so the parsers can be unit-tested without files. All
 * return 0 or -errno and write one human sentence into err on failure
 * (err names what is wrong with the image, the caller adds the file name). */

/* Load a kernel image (any supported format) from buf into m and fill plan
 * (entry, mode, format, kernel range). Does not write boot params. */
int boot_load_kernel(struct guest_mem *m, const uint8_t *buf, size_t len,
		     int prefer_pvh, struct boot_plan *plan, char *err, size_t errlen);

/* Place an initrd per the protocol's limits (below initrd_addr_max and the
 * hole, above the kernel, page aligned, as high as possible). */
int boot_place_initrd(struct guest_mem *m, const uint8_t *buf, size_t len,
		      uint64_t addr_max, struct boot_plan *plan, char *err, size_t errlen);

/* Write cmdline, e820, ACPI/MP pointers into the zero page (LINUX64) or the
 * hvm_start_info (PVH32); image is the original kernel buffer (for bzImage the
 * setup header is copied from it). Its err is complete as it stands (it names
 * --cmdline or the guest memory map, not the kernel file). */
int boot_write_params(struct guest_mem *m, const uint8_t *image, size_t image_len,
		      const char *cmdline, uint64_t rsdp_gpa,
		      struct boot_plan *plan, char *err, size_t errlen);

/* Whole sequence from files: read kernel/initrd, load, place, write params,
 * build ACPI + MP tables. err gets "PATH: reason". */
int boot_setup(struct guest_mem *m, const struct boot_request *req,
	       struct boot_plan *plan, char *err, size_t errlen);

/* Build the boot GDT, page tables (LINUX64) in guest memory. */
int boot_write_cpu_tables(struct guest_mem *m, enum boot_mode mode);

#endif
