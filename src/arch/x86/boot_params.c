/* Boot parameters and CPU tables: the Linux zero page (boot.rst "64-bit Boot
 * Protocol", zero-page.rst), the PVH hvm_start_info (Xen PVH ABI v1), the boot
 * GDT and identity page tables, and boot_setup, the whole sequence from files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/boot.h"
#include "arch/x86/bootparam.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "vmm/file.h"
#include "arch/x86/mptable.h"
#include "vmm/log.h"

/* Flat 4 GiB descriptors, accessed bit set (VM entry wants it on loaded
 * segments): 64-bit code (L=1, D=0), 32-bit code (D=1), read/write data. */
#define GDT_CODE64 0x00af9b000000ffffULL
#define GDT_CODE32 0x00cf9b000000ffffULL
#define GDT_DATA   0x00cf93000000ffffULL

#define PTE_P  0x1ULL
#define PTE_RW 0x2ULL
#define PTE_PS 0x80ULL
#define PT_ENTRIES 512
#define IDENTITY_PDS 4            /* 4 x 1 GiB of 2 MiB pages */

/* Real-mode heap end the setup code would use; unused on the 64-bit entry,
 * but boot.rst makes heap_end_ptr obligatory. */
#define SETUP_HEAP_END 0xe000

/* hvm_start_info, one module and the memmap share the PVH_START_INFO page. */
#define PVH_MODLIST_OFF sizeof(struct hvm_start_info)
#define PVH_MEMMAP_OFF  (PVH_MODLIST_OFF + sizeof(struct hvm_modlist_entry))
#define PVH_MEMMAP_MAX  ((4096 - PVH_MEMMAP_OFF) / sizeof(struct hvm_memmap_table_entry))

_Static_assert(PVH_START_INFO + 4096 <= ZERO_PAGE_ADDR, "start_info page overlaps the zero page");
_Static_assert(BOOT_PD_ADDR + IDENTITY_PDS * 4096 <= CMDLINE_ADDR, "page tables overlap the cmdline");
_Static_assert(BOOT_GDT_ADDR + BOOT_GDT_ENTRIES * 8 <= BOOT_IDT_ADDR, "GDT overlaps the IDT");

uint64_t boot_gdt_desc(enum boot_mode mode, uint16_t selector)
{
	switch (selector) {
	case BOOT_CS:
		return mode == BOOT_MODE_LINUX64 ? GDT_CODE64 : GDT_CODE32;
	case BOOT_DS:
		return GDT_DATA;
	default:
		return 0;
	}
}

int boot_write_cpu_tables(struct guest_mem *m, enum boot_mode mode)
{
	uint64_t gdt[BOOT_GDT_ENTRIES] = { 0 };
	uint64_t *t = NULL;
	int rc;

	if (mode != BOOT_MODE_LINUX64 && mode != BOOT_MODE_PVH32)
		return -EINVAL;
	gdt[BOOT_CS / 8] = boot_gdt_desc(mode, BOOT_CS);
	gdt[BOOT_DS / 8] = boot_gdt_desc(mode, BOOT_DS);
	rc = gmem_write(m, BOOT_GDT_ADDR, gdt, sizeof(gdt));
	if (rc || mode != BOOT_MODE_LINUX64)
		goto out;

	/* The 64-bit protocol needs paging on with the kernel, boot_params and
	 * cmdline identity-mapped: map all of the first 4 GiB. */
	t = calloc(PT_ENTRIES, sizeof(*t));
	if (!t) {
		rc = -ENOMEM;
		goto out;
	}
	t[0] = BOOT_PDPT_ADDR | PTE_P | PTE_RW;
	rc = gmem_write(m, BOOT_PML4_ADDR, t, PT_ENTRIES * sizeof(*t));
	if (rc)
		goto out;
	memset(t, 0, PT_ENTRIES * sizeof(*t));
	for (unsigned i = 0; i < IDENTITY_PDS; i++)
		t[i] = (BOOT_PD_ADDR + i * 4096ULL) | PTE_P | PTE_RW;
	rc = gmem_write(m, BOOT_PDPT_ADDR, t, PT_ENTRIES * sizeof(*t));
	for (unsigned i = 0; !rc && i < IDENTITY_PDS; i++) {
		for (unsigned j = 0; j < PT_ENTRIES; j++)
			t[j] = (((uint64_t)i << 30) | ((uint64_t)j << 21)) | PTE_P | PTE_RW | PTE_PS;
		rc = gmem_write(m, BOOT_PD_ADDR + i * 4096ULL, t, PT_ENTRIES * sizeof(*t));
	}
out:
	free(t);
	return rc;
}

static int boot_write_cmdline(struct guest_mem *m, const char *cmdline, size_t max,
			      char *err, size_t errlen)
{
	size_t len = strlen(cmdline);

	if (max > CMDLINE_MAX - 1)
		max = CMDLINE_MAX - 1;
	if (len > max) {
		snprintf(err, errlen, "--cmdline: too long (%zu bytes, max %zu)", len, max);
		return -E2BIG;
	}
	if (gmem_write(m, CMDLINE_ADDR, cmdline, len + 1)) {
		snprintf(err, errlen, "guest memory: no RAM for the command line at 0x%llx",
			 (unsigned long long)CMDLINE_ADDR);
		return -EFAULT;
	}
	return 0;
}

static int boot_write_zero_page(struct guest_mem *m, const uint8_t *image, size_t image_len,
				const char *cmdline, uint64_t rsdp_gpa,
				struct boot_plan *plan, char *err, size_t errlen)
{
	struct boot_params *bp = calloc(1, sizeof(*bp));
	struct e820_entry map[E820_MAX_ENTRIES_ZEROPAGE];
	size_t cmdline_max;
	int n, rc;

	if (!bp) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (plan->format == BOOT_FMT_BZIMAGE || plan->format == BOOT_FMT_BZIMAGE_RAW) {
		struct bzimage_info bz;
		char why[160];

		if (bzimage_parse(image, image_len, &bz, why, sizeof(why))) {
			snprintf(err, errlen, "kernel image changed after loading: %s", why);
			rc = -EINVAL;
			goto out;
		}
		/* The kernel's own header, exactly as long as it says it is. */
		memcpy((uint8_t *)bp + SETUP_HDR_OFFSET, image + SETUP_HDR_OFFSET,
		       bz.hdr_end - SETUP_HDR_OFFSET);
		cmdline_max = bp->hdr.version >= 0x0206 ? bp->hdr.cmdline_size : CMDLINE_SIZE_OLD;
		if (plan->format == BOOT_FMT_BZIMAGE_RAW)
			bp->hdr.code32_start = (uint32_t)plan->kernel_start;
	} else {
		/* vmlinux ELF: no header of its own, so describe a current one. */
		bp->hdr.boot_flag = SETUP_BOOT_FLAG;
		bp->hdr.header = SETUP_HDRS_MAGIC;
		bp->hdr.version = 0x020f;
		bp->hdr.loadflags = LOADED_HIGH;
		bp->hdr.cmdline_size = CMDLINE_SIZE_DEFAULT;
		bp->hdr.initrd_addr_max = INITRD_ADDR_MAX_DEFAULT;
		bp->hdr.kernel_alignment = 0x200000;
		cmdline_max = CMDLINE_SIZE_DEFAULT;
	}
	bp->hdr.type_of_loader = BOOT_LOADER_UNDEFINED;
	/* KASLR_FLAG is the decompressor's to set; a host-decompressed kernel
	 * was not randomised. */
	bp->hdr.loadflags = (bp->hdr.loadflags | CAN_USE_HEAP) & ~KASLR_FLAG;
	bp->hdr.heap_end_ptr = SETUP_HEAP_END - 0x200;
	bp->hdr.cmd_line_ptr = (uint32_t)CMDLINE_ADDR;
	if (plan->initrd_size) {
		if (plan->initrd_gpa + plan->initrd_size > UINT32_MAX) {
			snprintf(err, errlen, "guest memory: initrd at 0x%llx is above 4 GiB",
				 (unsigned long long)plan->initrd_gpa);
			rc = -ERANGE;
			goto out;
		}
		bp->hdr.ramdisk_image = (uint32_t)plan->initrd_gpa;
		bp->hdr.ramdisk_size = (uint32_t)plan->initrd_size;
	}
	bp->acpi_rsdp_addr = rsdp_gpa;

	n = e820_build(m, map, E820_MAX_ENTRIES_ZEROPAGE);
	if (n < 0) {
		snprintf(err, errlen, "guest memory map: more than %d e820 entries",
			 E820_MAX_ENTRIES_ZEROPAGE);
		rc = n;
		goto out;
	}
	memcpy(bp->e820_table, map, (size_t)n * sizeof(map[0]));
	bp->e820_entries = (uint8_t)n;

	rc = boot_write_cmdline(m, cmdline, cmdline_max, err, errlen);
	if (rc)
		goto out;
	if (gmem_write(m, ZERO_PAGE_ADDR, bp, sizeof(*bp))) {
		snprintf(err, errlen, "guest memory: no RAM for the zero page");
		rc = -EFAULT;
		goto out;
	}
	plan->params_gpa = ZERO_PAGE_ADDR;
out:
	free(bp);
	return rc;
}

static int boot_write_start_info(struct guest_mem *m, const char *cmdline, uint64_t rsdp_gpa,
				 struct boot_plan *plan, char *err, size_t errlen)
{
	uint8_t *page = calloc(1, 4096);
	struct e820_entry map[PVH_MEMMAP_MAX];
	struct hvm_start_info si = {
		.magic = XEN_HVM_START_MAGIC,
		.version = 1,
		.cmdline_paddr = CMDLINE_ADDR,
		.rsdp_paddr = rsdp_gpa,
		.memmap_paddr = PVH_START_INFO + PVH_MEMMAP_OFF,
	};
	int n, rc;

	if (!page) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (plan->initrd_size) {
		struct hvm_modlist_entry mod = {
			.paddr = plan->initrd_gpa,
			.size = plan->initrd_size,
		};
		memcpy(page + PVH_MODLIST_OFF, &mod, sizeof(mod));
		si.nr_modules = 1;
		si.modlist_paddr = PVH_START_INFO + PVH_MODLIST_OFF;
	}
	n = e820_build(m, map, (int)PVH_MEMMAP_MAX);
	if (n < 0) {
		snprintf(err, errlen, "guest memory map: more than %zu entries", PVH_MEMMAP_MAX);
		rc = n;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		/* PVH memmap types are the e820 types. */
		struct hvm_memmap_table_entry e = {
			.addr = map[i].addr, .size = map[i].size, .type = map[i].type,
		};
		memcpy(page + PVH_MEMMAP_OFF + (size_t)i * sizeof(e), &e, sizeof(e));
	}
	si.memmap_entries = (uint32_t)n;
	memcpy(page, &si, sizeof(si));

	rc = boot_write_cmdline(m, cmdline, CMDLINE_MAX - 1, err, errlen);
	if (rc)
		goto out;
	if (gmem_write(m, PVH_START_INFO, page, 4096)) {
		snprintf(err, errlen, "guest memory: no RAM for the PVH start info");
		rc = -EFAULT;
		goto out;
	}
	plan->params_gpa = PVH_START_INFO;
out:
	free(page);
	return rc;
}

int boot_write_params(struct guest_mem *m, const uint8_t *image, size_t image_len,
		      const char *cmdline, uint64_t rsdp_gpa,
		      struct boot_plan *plan, char *err, size_t errlen)
{
	if (!cmdline)
		cmdline = "";
	switch (plan->mode) {
	case BOOT_MODE_LINUX64:
		return boot_write_zero_page(m, image, image_len, cmdline, rsdp_gpa, plan, err, errlen);
	case BOOT_MODE_PVH32:
		return boot_write_start_info(m, cmdline, rsdp_gpa, plan, err, errlen);
	}
	snprintf(err, errlen, "unknown boot mode %d", (int)plan->mode);
	return -EINVAL;
}

/* Kernel and initrd must fit below the MMIO hole: say so in those terms. */
static int boot_read_file(const char *path, uint64_t max, uint8_t **out, size_t *out_len,
			  char *why, size_t whylen)
{
	int rc = file_read_all(path, max, out, out_len, why, whylen);
	if (rc == -EFBIG)
		snprintf(why, whylen, "too large for guest memory (%llu bytes of RAM below the MMIO hole)",
			 (unsigned long long)max);
	return rc;
}

/* initrd_addr_max from a bzImage header (2.03+), else the protocol default. */
static uint64_t boot_initrd_addr_max(const uint8_t *image, size_t len, const struct boot_plan *plan)
{
	struct bzimage_info bz;
	char why[160];

	if ((plan->format == BOOT_FMT_BZIMAGE || plan->format == BOOT_FMT_BZIMAGE_RAW) &&
	    !bzimage_parse(image, len, &bz, why, sizeof(why)) && bz.hdr.initrd_addr_max)
		return bz.hdr.initrd_addr_max;
	return INITRD_ADDR_MAX_DEFAULT;
}

int boot_setup(struct guest_mem *m, const struct boot_request *req,
	       struct boot_plan *plan, char *err, size_t errlen)
{
	struct acpi_config acpi = { .ncpus = req->ncpus };
	uint8_t *kernel = NULL, *initrd = NULL;
	size_t kernel_len = 0, initrd_len = 0;
	uint64_t rsdp = 0;
	char why[256];
	int rc;

	rc = boot_read_file(req->kernel_path, gmem_low_end(m), &kernel, &kernel_len, why, sizeof(why));
	if (!rc)
		rc = boot_load_kernel(m, kernel, kernel_len, req->prefer_pvh, plan, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "%s: %s", req->kernel_path, why);
		goto out;
	}
	if (req->initrd_path) {
		rc = boot_read_file(req->initrd_path, gmem_low_end(m), &initrd, &initrd_len,
				    why, sizeof(why));
		if (!rc)
			rc = boot_place_initrd(m, initrd, initrd_len,
					       boot_initrd_addr_max(kernel, kernel_len, plan),
					       plan, why, sizeof(why));
		if (rc) {
			snprintf(err, errlen, "%s: %s", req->initrd_path, why);
			goto out;
		}
	}
	rc = acpi_build(m, &acpi, &rsdp);
	if (rc) {
		snprintf(err, errlen, "ACPI tables for %u vCPUs: %s", req->ncpus, strerror(-rc));
		goto out;
	}
	rc = mptable_build(m, req->ncpus);
	if (rc == -E2BIG) {
		/* ACPI's MADT still describes every CPU; the MP table is a fallback. */
		log_warn("MP table: %u vCPUs do not fit, booting without one", req->ncpus);
		rc = 0;
	} else if (rc) {
		snprintf(err, errlen, "MP table for %u vCPUs: %s", req->ncpus, strerror(-rc));
		goto out;
	}
	rc = boot_write_params(m, kernel, kernel_len, req->cmdline, rsdp, plan, err, errlen);
	if (rc)
		goto out;
	rc = boot_write_cpu_tables(m, plan->mode);
	if (rc)
		snprintf(err, errlen, "guest memory: cannot write the boot GDT/page tables: %s",
			 strerror(-rc));
out:
	free(kernel);
	free(initrd);
	return rc;
}
