/* Private layouts for the x86 boot loaders: the Linux setup header and zero
 * page (Documentation/arch/x86/boot.rst, zero-page.rst) and the Xen PVH
 * hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h). */
#ifndef WAFER_ARCH_X86_BOOTPARAM_H
#define WAFER_ARCH_X86_BOOTPARAM_H

#include <stddef.h>
#include <stdint.h>
#include "arch/x86/e820.h"

#define SETUP_HDR_OFFSET   0x1f1
#define SETUP_BOOT_FLAG    0xAA55
#define SETUP_HDRS_MAGIC   0x53726448u  /* "HdrS" */
#define SETUP_JUMP_OPCODE  0xEB
#define SETUP_SECTOR       512

/* loadflags */
#define LOADED_HIGH        0x01
#define KASLR_FLAG         0x02  /* kernel-internal: set by the decompressor */
#define CAN_USE_HEAP       0x80
/* xloadflags */
#define XLF_KERNEL_64      0x0001

#define BOOT_LOADER_UNDEFINED 0xff
/* Protocol default when a header does not give initrd_addr_max (<= 2.02)
 * and what we use for kernels without a setup header (ELF, PVH). */
#define INITRD_ADDR_MAX_DEFAULT 0x37FFFFFFu
/* x86 COMMAND_LINE_SIZE is 2048, so kernels advertise cmdline_size 2047;
 * used when the image carries no setup header of its own. */
#define CMDLINE_SIZE_DEFAULT 2047u
/* Pre-2.06 kernels take at most 255 characters. */
#define CMDLINE_SIZE_OLD     255u

struct setup_header {
	uint8_t  setup_sects;
	uint16_t root_flags;
	uint32_t syssize;
	uint16_t ram_size;
	uint16_t vid_mode;
	uint16_t root_dev;
	uint16_t boot_flag;
	uint16_t jump;
	uint32_t header;
	uint16_t version;
	uint32_t realmode_swtch;
	uint16_t start_sys_seg;
	uint16_t kernel_version;
	uint8_t  type_of_loader;
	uint8_t  loadflags;
	uint16_t setup_move_size;
	uint32_t code32_start;
	uint32_t ramdisk_image;
	uint32_t ramdisk_size;
	uint32_t bootsect_kludge;
	uint16_t heap_end_ptr;
	uint8_t  ext_loader_ver;
	uint8_t  ext_loader_type;
	uint32_t cmd_line_ptr;
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	uint8_t  relocatable_kernel;
	uint8_t  min_alignment;
	uint16_t xloadflags;
	uint32_t cmdline_size;
	uint32_t hardware_subarch;
	uint64_t hardware_subarch_data;
	uint32_t payload_offset;
	uint32_t payload_length;
	uint64_t setup_data;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t handover_offset;
	uint32_t kernel_info_offset;
} __attribute__((packed));

#define E820_MAX_ENTRIES_ZEROPAGE 128

struct boot_params {
	uint8_t  screen_info[0x40];
	uint8_t  apm_bios_info[0x14];
	uint8_t  _pad2[4];
	uint64_t tboot_addr;
	uint8_t  ist_info[0x10];
	uint64_t acpi_rsdp_addr;
	uint8_t  _pad3[8];
	uint8_t  hd0_info[16];
	uint8_t  hd1_info[16];
	uint8_t  sys_desc_table[16];
	uint8_t  olpc_ofw_header[16];
	uint32_t ext_ramdisk_image;
	uint32_t ext_ramdisk_size;
	uint32_t ext_cmd_line_ptr;
	uint8_t  _pad4[0x140 - 0xcc];
	uint8_t  edid_info[0x80];
	uint8_t  efi_info[0x20];
	uint32_t alt_mem_k;
	uint32_t scratch;
	uint8_t  e820_entries;
	uint8_t  eddbuf_entries;
	uint8_t  edd_mbr_sig_buf_entries;
	uint8_t  kbd_status;
	uint8_t  secure_boot;
	uint8_t  _pad5[2];
	uint8_t  sentinel;
	uint8_t  _pad6[1];
	struct setup_header hdr;
	uint8_t  _pad7[0x290 - 0x1f1 - sizeof(struct setup_header)];
	uint32_t edd_mbr_sig_buffer[16];
	struct e820_entry e820_table[E820_MAX_ENTRIES_ZEROPAGE];
	uint8_t  _pad8[48];
	uint8_t  eddbuf[0x1ec];
	uint8_t  _pad9[276];
} __attribute__((packed));

_Static_assert(sizeof(struct e820_entry) == 20, "e820 entry is 20 bytes");
_Static_assert(sizeof(struct setup_header) == 0x26c - 0x1f1, "setup header ends at 0x26c");
_Static_assert(sizeof(struct boot_params) == 4096, "zero page is one page");
_Static_assert(offsetof(struct boot_params, acpi_rsdp_addr) == 0x070, "acpi_rsdp_addr");
_Static_assert(offsetof(struct boot_params, ext_ramdisk_image) == 0x0c0, "ext_ramdisk_image");
_Static_assert(offsetof(struct boot_params, ext_ramdisk_size) == 0x0c4, "ext_ramdisk_size");
_Static_assert(offsetof(struct boot_params, ext_cmd_line_ptr) == 0x0c8, "ext_cmd_line_ptr");
_Static_assert(offsetof(struct boot_params, e820_entries) == 0x1e8, "e820_entries");
_Static_assert(offsetof(struct boot_params, sentinel) == 0x1ef, "sentinel");
_Static_assert(offsetof(struct boot_params, hdr) == SETUP_HDR_OFFSET, "setup header");
_Static_assert(offsetof(struct boot_params, edd_mbr_sig_buffer) == 0x290, "edd_mbr_sig_buffer");
_Static_assert(offsetof(struct boot_params, e820_table) == 0x2d0, "e820_table");
_Static_assert(offsetof(struct boot_params, eddbuf) == 0xd00, "eddbuf");
_Static_assert(SETUP_HDR_OFFSET + offsetof(struct setup_header, boot_flag) == 0x1fe, "boot_flag");
_Static_assert(SETUP_HDR_OFFSET + offsetof(struct setup_header, jump) == 0x200, "jump");
_Static_assert(SETUP_HDR_OFFSET + offsetof(struct setup_header, header) == 0x202, "HdrS");
_Static_assert(SETUP_HDR_OFFSET + offsetof(struct setup_header, type_of_loader) == 0x210, "type_of_loader");
_Static_assert(SETUP_HDR_OFFSET + offsetof(struct setup_header, code32_start) == 0x214, "code32_start");
_Static_assert(SETUP_HDR_OFFSET + offsetof(struct setup_header, heap_end_ptr) == 0x224, "heap_end_ptr");
_Static_assert(SETUP_HDR_OFFSET + offsetof(struct setup_header, cmd_line_ptr) == 0x228, "cmd_line_ptr");
_Static_assert(SETUP_HDR_OFFSET + offsetof(struct setup_header, initrd_addr_max) == 0x22c, "initrd_addr_max");
_Static_assert(SETUP_HDR_OFFSET + offsetof(struct setup_header, xloadflags) == 0x236, "xloadflags");
_Static_assert(SETUP_HDR_OFFSET + offsetof(struct setup_header, cmdline_size) == 0x238, "cmdline_size");
_Static_assert(SETUP_HDR_OFFSET + offsetof(struct setup_header, payload_offset) == 0x248, "payload_offset");
_Static_assert(SETUP_HDR_OFFSET + offsetof(struct setup_header, pref_address) == 0x258, "pref_address");
_Static_assert(SETUP_HDR_OFFSET + offsetof(struct setup_header, init_size) == 0x260, "init_size");

/* PVH start of day (version 1: with memmap). */
#define XEN_HVM_START_MAGIC 0x336ec578u

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

_Static_assert(sizeof(struct hvm_start_info) == 0x38, "hvm_start_info v1 size");
_Static_assert(offsetof(struct hvm_start_info, memmap_paddr) == 0x28, "memmap_paddr");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry");

/* Validated view of a bzImage's setup header (boot_image.c). */
struct bzimage_info {
	struct setup_header hdr;   /* copy of the image's header */
	size_t hdr_end;            /* image offset just past the header (0x202 + jump) */
	size_t setup_size;         /* (setup_sects + 1) * 512 */
	size_t pm_len;             /* protected-mode part: image bytes after setup */
};

/* 1 if buf starts like a bzImage ("HdrS" at 0x202), else 0. */
int bzimage_detect(const uint8_t *buf, size_t len);
/* Validate the setup header; 0 or -ENOEXEC with a sentence in err. */
int bzimage_parse(const uint8_t *buf, size_t len, struct bzimage_info *bz,
		  char *err, size_t errlen);

#endif
