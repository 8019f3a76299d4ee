/* Fixed guest-physical layout of a wafer x86 machine. Everything the VMM places
 * in guest RAM before the first instruction has its address here. */
#ifndef WAFER_ARCH_X86_LAYOUT_H
#define WAFER_ARCH_X86_LAYOUT_H

#define MEM_HOLE_START    0xC0000000ULL  /* 32-bit MMIO hole: 3 GiB .. 4 GiB */
#define MEM_HIGH_START    0x100000000ULL /* RAM above the hole starts at 4 GiB */

#define BOOT_GDT_ADDR     0x500ULL      /* boot GDT, 4 entries */
#define BOOT_IDT_ADDR     0x520ULL      /* empty IDT (limit 0) */
#define PVH_START_INFO    0x6000ULL     /* struct hvm_start_info + memmap (<= 4 KiB) */
#define ZERO_PAGE_ADDR    0x7000ULL     /* struct boot_params (4 KiB) */
#define BOOT_PML4_ADDR    0x9000ULL     /* identity map of the first 4 GiB: */
#define BOOT_PDPT_ADDR    0xA000ULL     /*   1 PML4, 1 PDPT, 4 PDs of 2 MiB pages */
#define BOOT_PD_ADDR      0xB000ULL     /*   0xB000 .. 0xEFFF */
#define CMDLINE_ADDR      0x20000ULL    /* kernel command line */
#define CMDLINE_MAX       0x10000ULL    /* 64 KiB incl. NUL */
#define EBDA_START        0x9FC00ULL    /* low RAM ends here in the e820 map */
#define MPTABLE_ADDR      0x9FC00ULL    /* MP floating pointer + config table (in EBDA) */
#define MPTABLE_MAX       0x400ULL
#define BIOS_START        0xE0000ULL    /* reserved BIOS area 0xE0000 .. 0xFFFFF */
#define ACPI_ADDR         0xE0000ULL    /* RSDP first (legacy scan range), then tables */
#define ACPI_MAX          0x10000ULL
#define HIMEM_START       0x100000ULL   /* 1 MiB: kernels load at or above */

/* PCI (bus 0 only). BARs are placed in [PCI_MMIO_BASE, PCI_MMIO_END), the
 * window the DSDT's host bridge _CRS announces; ECAM follows it (MCFG, e820
 * reserved, PNP0C02 in the DSDT): 32 devices x 8 functions x 4 KiB. */
#define PCI_MMIO_BASE     MEM_HOLE_START
#define PCI_MMIO_END      0xE0000000ULL
#define PCI_ECAM_BASE     0xE0000000ULL
#define PCI_ECAM_SIZE     0x100000ULL
#define PCI_BUS_MIN       0
#define PCI_BUS_MAX       0
/* INTx: pin A of slot s raises GSI PCI_INTX_GSI_BASE + s % PCI_INTX_GSIS
 * (IOAPIC pins 16-23, level-triggered active-low, per the DSDT's _PRT). */
#define PCI_INTX_GSI_BASE 16
#define PCI_INTX_GSIS     8

#define IOAPIC_ADDR       0xFEC00000ULL
#define LAPIC_ADDR        0xFEE00000ULL

/* I/O ports */
#define PORT_COM1         0x3f8
#define IRQ_COM1          4
#define PORT_I8042_DATA   0x60
#define PORT_I8042_CMD    0x64
#define PORT_RTC_INDEX    0x70
#define PORT_RTC_DATA     0x71
#define PORT_ACPI_PM1A_EVT 0x600        /* PM1a event block, 4 bytes */
#define PORT_ACPI_PM1A_CNT 0x604        /* PM1a control block, 2 bytes */
#define ACPI_SCI_IRQ      9
#define PORT_PCI_CONFIG   0xcf8        /* type 1 address 0xCF8, data 0xCFC-0xCFF */
#define PORT_PCI_CONFIG_LEN 8
/* Test/exit port: a 4-byte write of V makes wafer exit with status V & 0xff
 * (guest library's exit; QEMU's isa-debug-exit sits at the same port, where the
 * status is (V << 1) | 1). */
#define PORT_EXIT         0xf4

#endif
