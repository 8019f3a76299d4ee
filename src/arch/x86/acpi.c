/* ACPI 6.5 tables for the guest: RSDP (5.2.5), XSDT (5.2.8), FADT (5.2.9),
 * FACS (5.2.10), DSDT (5.2.11.1, AML per chapter 20), MADT (5.2.12), MCFG
 * (PCI Firmware 3.3, 4.1.2). Built in a host buffer and copied into the BIOS
 * area in one checked write. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "tables are laid out with host structs; ACPI is little-endian");

#define ACPI_OEM_ID        "WAFER "  /* exactly 6 bytes, no NUL in the table */
#define ACPI_OEM_TABLE_PFX "WAFR"    /* OEM table id = prefix + signature */
#define ACPI_OEM_REVISION  1
#define ACPI_CREATOR_ID    "WAFR"
#define ACPI_CREATOR_REV   1
#define ACPI_XSDT_MAX      16        /* FADT, MADT, MCFG and the caller's extras */

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

struct acpi_rsdp {
	char signature[8];
	uint8_t checksum;          /* over the ACPI 1.0 part (first 20 bytes) */
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* over all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));

struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));

struct acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	char hypervisor_vendor[8];
} __attribute__((packed));

struct acpi_facs {
	char signature[4];
	uint32_t length;
	uint32_t hardware_signature;
	uint32_t firmware_waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_firmware_waking_vector;
	uint8_t version;
	uint8_t reserved0[3];
	uint32_t ospm_flags;
	uint8_t reserved1[24];
} __attribute__((packed));

/* MADT: fixed part after the header, then variable-length entries (5.2.12.x). */
struct madt_fixed {
	uint32_t lapic_address;
	uint32_t flags;
} __attribute__((packed));

struct madt_lapic {          /* type 0 */
	uint8_t type, length;
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags;
} __attribute__((packed));

struct madt_ioapic {         /* type 1 */
	uint8_t type, length;
	uint8_t id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));

struct madt_iso {            /* type 2 */
	uint8_t type, length;
	uint8_t bus;
	uint8_t source;
	uint32_t gsi;
	uint16_t flags;
} __attribute__((packed));

struct madt_lapic_nmi {      /* type 4 */
	uint8_t type, length;
	uint8_t processor_uid;
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));

struct madt_x2apic {         /* type 9 */
	uint8_t type, length;
	uint16_t reserved;
	uint32_t x2apic_id;
	uint32_t flags;
	uint32_t processor_uid;
} __attribute__((packed));

struct madt_x2apic_nmi {     /* type 10 */
	uint8_t type, length;
	uint16_t flags;
	uint32_t processor_uid;
	uint8_t lint;
	uint8_t reserved[3];
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_header) == 36, "SDT header");
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP");
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT 6.x");
_Static_assert(sizeof(struct acpi_facs) == 64, "FACS");
_Static_assert(sizeof(struct madt_lapic) == 8, "MADT LAPIC");
_Static_assert(sizeof(struct madt_ioapic) == 12, "MADT IOAPIC");
_Static_assert(sizeof(struct madt_iso) == 10, "MADT ISO");
_Static_assert(sizeof(struct madt_lapic_nmi) == 6, "MADT LAPIC NMI");
_Static_assert(sizeof(struct madt_x2apic) == 16, "MADT x2APIC");
_Static_assert(sizeof(struct madt_x2apic_nmi) == 12, "MADT x2APIC NMI");

#define GAS_SYSTEM_IO        1
#define GAS_ACCESS_WORD      2

#define FADT_WBINVD          (1u << 0)
#define FADT_PROC_C1         (1u << 2)
#define FADT_PWR_BUTTON      (1u << 4)  /* set = no fixed-feature power button */
#define FADT_SLP_BUTTON      (1u << 5)  /* set = no fixed-feature sleep button */
#define FADT_FIX_RTC         (1u << 6)  /* set = no RTC wake status in PM1 */

#define IAPC_LEGACY_DEVICES  (1u << 0)
#define IAPC_8042            (1u << 1)
#define IAPC_VGA_NOT_PRESENT (1u << 2)

#define MADT_PCAT_COMPAT     (1u << 0)
#define MADT_ENABLED         (1u << 0)
#define MADT_TYPE_LAPIC      0
#define MADT_TYPE_IOAPIC     1
#define MADT_TYPE_ISO        2
#define MADT_TYPE_LAPIC_NMI  4
#define MADT_TYPE_X2APIC     9
#define MADT_TYPE_X2APIC_NMI 10
/* MPS INTI flags: polarity bits 1:0, trigger mode bits 3:2. */
#define MPS_ACTIVE_HIGH      0x1
#define MPS_LEVEL            0xc

/* The highest APIC ID a type-0 MADT entry may carry; 0xFF means broadcast,
 * so vCPUs from 255 up are described with x2APIC entries (5.2.12.12). */
#define XAPIC_ID_LIMIT       255

/* Hand-assembled AML (ACPI 6.5 chapter 20). Equivalent ASL:
 *   Name (\_S5, Package (4) { 5, 5, 0, 0 })
 *   Scope (\_SB) {
 *     Device (COM1) {
 *       Name (_HID, EisaId ("PNP0501"))
 *       Name (_UID, One)
 *       Name (_CRS, ResourceTemplate () {
 *         IO (Decode16, 0x3F8, 0x3F8, 0x01, 0x08)
 *         IRQNoFlags () { 4 } })
 *     }
 *   }
 * Each PkgLength is one byte (< 64) and counts itself plus what follows it
 * up to the end of its object; a unit test checks the outer one reaches the
 * end of the table. SLP_TYPb repeats SLP_TYPa: there is no PM1b block. */
static const uint8_t dsdt_aml[] = {
	0x08, '\\', '_', 'S', '5', '_',          /* NameOp \_S5_ */
	0x12, 0x08, 0x04,                        /* PackageOp, PkgLength 8, 4 elements */
	0x0a, ACPI_SLP_TYP_S5,                   /*   BytePrefix SLP_TYPa */
	0x0a, ACPI_SLP_TYP_S5,                   /*   BytePrefix SLP_TYPb */
	0x00, 0x00,                              /*   ZeroOp, ZeroOp (reserved) */
	0x10, 0x33, '\\', '_', 'S', 'B', '_',    /* ScopeOp, PkgLength 51, \_SB_ */
	0x5b, 0x82, 0x2b, 'C', 'O', 'M', '1',    /* DeviceOp, PkgLength 43, COM1 */
	0x08, '_', 'H', 'I', 'D',                /* NameOp _HID */
	0x0c, 0x41, 0xd0, 0x05, 0x01,            /*   DWordPrefix, EISA id "PNP0501" */
	0x08, '_', 'U', 'I', 'D', 0x01,          /* NameOp _UID, OneOp */
	0x08, '_', 'C', 'R', 'S',                /* NameOp _CRS */
	0x11, 0x10, 0x0a, 0x0d,                  /*   BufferOp, PkgLength 16, 13 bytes */
	0x47, 0x01,                              /*   I/O port descriptor, 16-bit decode */
	PORT_COM1 & 0xff, PORT_COM1 >> 8,        /*     minimum base */
	PORT_COM1 & 0xff, PORT_COM1 >> 8,        /*     maximum base */
	0x01, 0x08,                              /*     alignment, length */
	0x22,                                    /*   IRQ descriptor, no flags */
	(1u << IRQ_COM1) & 0xff, (1u << IRQ_COM1) >> 8,
	0x79, 0x00,                              /*   end tag, checksum not used */
};

/* The PCI part of the DSDT, a second Scope (\_SB), built at run time
 * because the _PRT has one entry per slot. Equivalent ASL:
 *   Scope (\_SB) {
 *     Device (PCI0) {
 *       Name (_HID, EisaId ("PNP0A08"))       // PCI Express root bridge ...
 *       Name (_CID, EisaId ("PNP0A03"))       // ... compatible with PCI
 *       Name (_SEG, Zero)
 *       Name (_BBN, Zero)
 *       Name (_UID, Zero)
 *       Name (_CRS, ResourceTemplate () {
 *         WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
 *                        0, 0, 0, 0, 1)
 *         IO (Decode16, 0xCF8, 0xCF8, 1, 8)
 *         WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
 *                 0, 0x0000, 0x0CF7, 0, 0x0CF8)
 *         WordIO (..., 0, 0x0D00, 0xFFFF, 0, 0xF300)
 *         DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
 *                      NonCacheable, ReadWrite, 0, PCI_MMIO_BASE,
 *                      PCI_MMIO_END - 1, 0, PCI_MMIO_END - PCI_MMIO_BASE) })
 *       Name (_PRT, Package () {      // slot s, pin A -> GSI 16 + s % 8
 *         Package (4) { 0x0001FFFF, 0, 0, 17 }, ... slot 31 })
 *     }
 *     Device (MRES) {                 // ECAM, so Linux trusts the MCFG
 *       Name (_HID, EisaId ("PNP0C02"))
 *       Name (_UID, Zero)
 *       Name (_CRS, ResourceTemplate () {
 *         Memory32Fixed (ReadWrite, PCI_ECAM_BASE, PCI_ECAM_SIZE) })
 *     }
 *   }
 */
#define AML_NAME_OP    0x08
#define AML_BYTE_PFX   0x0a
#define AML_DWORD_PFX  0x0c
#define AML_SCOPE_OP   0x10
#define AML_BUFFER_OP  0x11
#define AML_PACKAGE_OP 0x12
#define AML_EXT_PFX    0x5b
#define AML_DEVICE_OP  0x82
#define AML_MAX        4096   /* any one AML object we build */

struct aml {
	uint8_t b[AML_MAX];
	size_t n;
	int err;                  /* -E2BIG once something did not fit */
};

static void aml_put(struct aml *a, const void *p, size_t len)
{
	if (a->err || len > AML_MAX - a->n) {
		a->err = -E2BIG;
		return;
	}
	memcpy(a->b + a->n, p, len);
	a->n += len;
}

static void aml_byte(struct aml *a, uint8_t v)
{
	aml_put(a, &v, 1);
}

static void aml_le(struct aml *a, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		aml_byte(a, (uint8_t)(v >> (8 * i)));
}

/* op, PkgLength, then inner (20.2.4: the length counts its own bytes;
 * lead byte bits 7:6 give the number of extra bytes). */
static void aml_wrap(struct aml *out, const uint8_t *op, size_t oplen, const struct aml *inner)
{
	size_t n = inner->n, total;
	unsigned extra;

	if (inner->err) {
		out->err = inner->err;
		return;
	}
	for (extra = 0; extra < 4; extra++) {
		total = n + 1 + extra;
		if (extra == 0 ? total < 64 : total < (1ul << (4 + 8 * extra)))
			break;
	}
	aml_put(out, op, oplen);
	if (extra == 0) {
		aml_byte(out, (uint8_t)total);
	} else {
		aml_byte(out, (uint8_t)(extra << 6 | (total & 0x0f)));
		aml_le(out, total >> 4, extra);
	}
	aml_put(out, inner->b, n);
}

static void aml_name_eisa(struct aml *a, const char name[4], uint16_t product)
{
	aml_byte(a, AML_NAME_OP);
	aml_put(a, name, 4);
	/* "PNP" compresses to 0x41d0; the product number is big-endian. */
	const uint8_t id[] = { AML_DWORD_PFX, 0x41, 0xd0, (uint8_t)(product >> 8), (uint8_t)product };
	aml_put(a, id, sizeof(id));
}

static void aml_name_zero(struct aml *a, const char name[4])
{
	aml_byte(a, AML_NAME_OP);
	aml_put(a, name, 4);
	aml_byte(a, 0x00);   /* ZeroOp */
}

/* Name (_CRS, Buffer () { descriptors, end tag }) */
static void aml_name_crs(struct aml *a, const struct aml *desc)
{
	struct aml *buf = calloc(1, sizeof(*buf));
	static const uint8_t op = AML_BUFFER_OP;

	if (!buf) {
		a->err = -ENOMEM;
		return;
	}
	aml_byte(buf, AML_BYTE_PFX);            /* BufferSize */
	aml_byte(buf, (uint8_t)(desc->n + 2));
	aml_put(buf, desc->b, desc->n);
	aml_byte(buf, 0x79);                    /* end tag, checksum not used */
	aml_byte(buf, 0x00);
	if (desc->n + 2 > 0xff)
		buf->err = -E2BIG;
	aml_byte(a, AML_NAME_OP);
	aml_put(a, "_CRS", 4);
	aml_wrap(a, &op, 1, buf);
	free(buf);
}

/* Word/DWord address space descriptor (6.4.3.5.2/3), producer, fixed range. */
static void aml_addr_space(struct aml *a, unsigned width, uint8_t type, uint8_t type_flags,
			   uint64_t min, uint64_t max)
{
	aml_byte(a, width == 2 ? 0x88 : 0x87);
	aml_le(a, 3 + 5 * width, 2);
	aml_byte(a, type);
	aml_byte(a, 0x0c);                      /* _MIF, _MAF; producer, positive */
	aml_byte(a, type_flags);
	aml_le(a, 0, width);                    /* granularity */
	aml_le(a, min, width);
	aml_le(a, max, width);
	aml_le(a, 0, width);                    /* translation */
	aml_le(a, max - min + 1, width);
}

static void aml_pci_host(struct aml *dev)
{
	struct aml *crs = calloc(1, sizeof(*crs)), *prt = calloc(1, sizeof(*prt));
	static const uint8_t pkg = AML_PACKAGE_OP;

	if (!crs || !prt) {
		dev->err = -ENOMEM;
		goto out;
	}
	dev->n = 0;
	aml_put(dev, "PCI0", 4);
	aml_name_eisa(dev, "_HID", 0x0a08);
	aml_name_eisa(dev, "_CID", 0x0a03);
	aml_name_zero(dev, "_SEG");
	aml_name_zero(dev, "_BBN");
	aml_name_zero(dev, "_UID");

	aml_addr_space(crs, 2, 0x02, 0x00, PCI_BUS_MIN, PCI_BUS_MAX);
	const uint8_t cf8[] = { 0x47, 0x01, PORT_PCI_CONFIG & 0xff, PORT_PCI_CONFIG >> 8,
				PORT_PCI_CONFIG & 0xff, PORT_PCI_CONFIG >> 8, 0x01,
				PORT_PCI_CONFIG_LEN };
	aml_put(crs, cf8, sizeof(cf8));
	aml_addr_space(crs, 2, 0x01, 0x03, 0x0000, PORT_PCI_CONFIG - 1);
	aml_addr_space(crs, 2, 0x01, 0x03, 0x0d00, 0xffff);
	aml_addr_space(crs, 4, 0x00, 0x01, PCI_MMIO_BASE, PCI_MMIO_END - 1);
	aml_name_crs(dev, crs);

	aml_byte(prt, 31);                      /* NumElements: slots 1-31 */
	for (unsigned slot = 1; slot < 32; slot++) {
		struct aml e = { .n = 0 };
		aml_byte(&e, 4);
		aml_byte(&e, AML_DWORD_PFX);
		aml_le(&e, (uint64_t)slot << 16 | 0xffff, 4);  /* any function */
		aml_byte(&e, 0x00);                 /* pin A */
		aml_byte(&e, 0x00);                 /* source 0: GSI, level, active low */
		aml_byte(&e, AML_BYTE_PFX);
		aml_byte(&e, (uint8_t)(PCI_INTX_GSI_BASE + slot % PCI_INTX_GSIS));
		aml_wrap(prt, &pkg, 1, &e);
	}
	aml_byte(dev, AML_NAME_OP);
	aml_put(dev, "_PRT", 4);
	aml_wrap(dev, &pkg, 1, prt);
out:
	free(crs);
	free(prt);
}

static void aml_ecam_resource(struct aml *dev)
{
	struct aml crs = { .n = 0 };

	dev->n = 0;
	aml_put(dev, "MRES", 4);
	aml_name_eisa(dev, "_HID", 0x0c02);
	aml_name_zero(dev, "_UID");
	aml_byte(&crs, 0x86);                   /* Memory32Fixed */
	aml_le(&crs, 9, 2);
	aml_byte(&crs, 0x01);                   /* read/write */
	aml_le(&crs, PCI_ECAM_BASE, 4);
	aml_le(&crs, PCI_ECAM_SIZE, 4);
	aml_name_crs(dev, &crs);
}

/* Append the PCI scope to out. 0 or -errno. */
static int aml_pci_scope(struct aml *out)
{
	static const uint8_t dev_op[] = { AML_EXT_PFX, AML_DEVICE_OP };
	static const uint8_t scope_op = AML_SCOPE_OP;
	struct aml *scope = calloc(1, sizeof(*scope)), *dev = calloc(1, sizeof(*dev));
	int rc;

	if (!scope || !dev) {
		rc = -ENOMEM;
		goto out;
	}
	aml_put(scope, "\\_SB_", 5);
	aml_pci_host(dev);
	aml_wrap(scope, dev_op, sizeof(dev_op), dev);
	aml_ecam_resource(dev);
	aml_wrap(scope, dev_op, sizeof(dev_op), dev);
	aml_wrap(out, &scope_op, 1, scope);
	rc = out->err;
out:
	free(scope);
	free(dev);
	return rc;
}

/* MCFG body after the header: 8 reserved bytes, one allocation (4.1.2). */
struct mcfg_body {
	uint8_t reserved[8];
	uint64_t base;
	uint16_t segment;
	uint8_t bus_start, bus_end;
	uint32_t reserved2;
} __attribute__((packed));

_Static_assert(sizeof(struct mcfg_body) == 24, "MCFG");

struct acpi_builder {
	uint8_t *buf;              /* host image of [ACPI_ADDR, ACPI_ADDR + ACPI_MAX) */
	size_t used;
	uint64_t xsdt[ACPI_XSDT_MAX];
	unsigned nxsdt;
};

uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + b[i]);
	return sum;
}

static uint64_t acpi_gpa(size_t off)
{
	return ACPI_ADDR + off;
}

/* Reserve len zeroed bytes at an offset aligned to align (a power of two). */
static int acpi_reserve(struct acpi_builder *b, size_t len, size_t align, size_t *off)
{
	/* b->used never exceeds ACPI_MAX, so rounding it up cannot overflow. */
	size_t start = (b->used + align - 1) & ~(align - 1);

	if (start > ACPI_MAX || len > ACPI_MAX - start)
		return -E2BIG;
	*off = start;
	b->used = start + len;
	return 0;
}

/* Reserve a table with body_len bytes after the common header and fill the
 * header; the caller writes the body, then acpi_table_seal fixes the checksum. */
static int acpi_table_begin(struct acpi_builder *b, const char sig[4], uint8_t revision,
			    size_t body_len, size_t *off)
{
	struct acpi_header h;
	int rc;

	if (body_len > ACPI_MAX - sizeof(h))
		return -E2BIG;
	rc = acpi_reserve(b, sizeof(h) + body_len, 8, off);
	if (rc)
		return rc;
	memset(&h, 0, sizeof(h));
	memcpy(h.signature, sig, 4);
	h.length = (uint32_t)(sizeof(h) + body_len);
	h.revision = revision;
	memcpy(h.oem_id, ACPI_OEM_ID, sizeof(h.oem_id));
	memcpy(h.oem_table_id, ACPI_OEM_TABLE_PFX, 4);
	memcpy(h.oem_table_id + 4, sig, 4);
	h.oem_revision = ACPI_OEM_REVISION;
	memcpy(h.creator_id, ACPI_CREATOR_ID, sizeof(h.creator_id));
	h.creator_revision = ACPI_CREATOR_REV;
	memcpy(b->buf + *off, &h, sizeof(h));
	return 0;
}

static void acpi_table_seal(struct acpi_builder *b, size_t off)
{
	struct acpi_header *h = (struct acpi_header *)(b->buf + off);

	h->checksum = 0;
	h->checksum = (uint8_t)-acpi_checksum(h, h->length);
}

static int acpi_xsdt_add(struct acpi_builder *b, size_t off)
{
	if (b->nxsdt >= ACPI_XSDT_MAX)
		return -E2BIG;
	b->xsdt[b->nxsdt++] = acpi_gpa(off);
	return 0;
}

/* Append a complete table (header + body); listing it in the XSDT is the
 * caller's choice (the DSDT is reached through the FADT instead). */
static int acpi_add_table(struct acpi_builder *b, const char sig[4], uint8_t revision,
			  const void *body, size_t body_len, size_t *off)
{
	int rc;

	rc = acpi_table_begin(b, sig, revision, body_len, off);
	if (rc)
		return rc;
	if (body_len)
		memcpy(b->buf + *off + sizeof(struct acpi_header), body, body_len);
	acpi_table_seal(b, *off);
	return 0;
}

static int acpi_build_facs(struct acpi_builder *b, size_t *off)
{
	struct acpi_facs facs;
	int rc;

	/* The FACS is 64-byte aligned and has no checksum (5.2.10). */
	rc = acpi_reserve(b, sizeof(facs), 64, off);
	if (rc)
		return rc;
	memset(&facs, 0, sizeof(facs));
	memcpy(facs.signature, "FACS", 4);
	facs.length = sizeof(facs);
	facs.version = 2;
	memcpy(b->buf + *off, &facs, sizeof(facs));
	return 0;
}

static int acpi_build_fadt(struct acpi_builder *b, size_t facs_off, size_t dsdt_off)
{
	struct acpi_fadt f;
	size_t off;
	int rc;

	rc = acpi_table_begin(b, "FACP", 6, sizeof(f) - sizeof(f.h), &off);
	if (rc)
		return rc;
	memcpy(&f, b->buf + off, sizeof(f.h));
	memset((uint8_t *)&f + sizeof(f.h), 0, sizeof(f) - sizeof(f.h));

	f.firmware_ctrl = (uint32_t)acpi_gpa(facs_off);
	f.dsdt = (uint32_t)acpi_gpa(dsdt_off);
	f.x_dsdt = acpi_gpa(dsdt_off);
	f.sci_int = ACPI_SCI_IRQ;
	/* SMI_CMD = 0: the platform is always in ACPI mode (SCI_EN reads 1). */
	f.pm1a_evt_blk = PORT_ACPI_PM1A_EVT;
	f.pm1a_cnt_blk = PORT_ACPI_PM1A_CNT;
	f.pm1_evt_len = 4;
	f.pm1_cnt_len = 2;
	f.x_pm1a_evt_blk = (struct acpi_gas){ GAS_SYSTEM_IO, 32, 0, GAS_ACCESS_WORD,
					      PORT_ACPI_PM1A_EVT };
	f.x_pm1a_cnt_blk = (struct acpi_gas){ GAS_SYSTEM_IO, 16, 0, GAS_ACCESS_WORD,
					      PORT_ACPI_PM1A_CNT };
	/* Latencies above 100 / 1000 us mean C2 / C3 are not supported. */
	f.p_lvl2_lat = 101;
	f.p_lvl3_lat = 1001;
	/* COM1, the RTC and the i8042 sit on the (virtual) ISA bus; no VGA,
	 * so the kernel does not poke at legacy VGA ports. */
	f.iapc_boot_arch = IAPC_LEGACY_DEVICES | IAPC_8042 | IAPC_VGA_NOT_PRESENT;
	/* FADT_PWR_BUTTON clear: the PM1 block has the fixed-feature power
	 * button, which the VMM uses for a graceful shutdown request. */
	f.flags = FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_FIX_RTC;
	f.minor_version = 5;
	memcpy(f.hypervisor_vendor, "WAFERVMM", sizeof(f.hypervisor_vendor));

	memcpy(b->buf + off, &f, sizeof(f));
	acpi_table_seal(b, off);
	return acpi_xsdt_add(b, off);
}

static int acpi_build_madt(struct acpi_builder *b, unsigned ncpus)
{
	uint64_t nx2 = ncpus > XAPIC_ID_LIMIT ? ncpus - XAPIC_ID_LIMIT : 0;
	uint64_t nxa = ncpus - nx2;
	uint64_t body_len = sizeof(struct madt_fixed) +
			    nxa * sizeof(struct madt_lapic) +
			    nx2 * sizeof(struct madt_x2apic) +
			    sizeof(struct madt_ioapic) +
			    2 * sizeof(struct madt_iso) +
			    sizeof(struct madt_lapic_nmi) +
			    (nx2 ? sizeof(struct madt_x2apic_nmi) : 0);
	uint8_t *p;
	size_t off;
	int rc;

	/* ncpus < 2^32 keeps body_len far from uint64 overflow. */
	if (body_len > ACPI_MAX)
		return -E2BIG;
	/* Revision 5 (ACPI 6.3+): processors are either enabled or not
	 * online-capable; all of ours are enabled. */
	rc = acpi_table_begin(b, "APIC", 5, (size_t)body_len, &off);
	if (rc)
		return rc;
	p = b->buf + off + sizeof(struct acpi_header);

	struct madt_fixed fixed = { .lapic_address = (uint32_t)LAPIC_ADDR,
				    .flags = MADT_PCAT_COMPAT };
	memcpy(p, &fixed, sizeof(fixed));
	p += sizeof(fixed);

	for (unsigned i = 0; i < ncpus; i++) {
		if (i < XAPIC_ID_LIMIT) {
			struct madt_lapic e = {
				.type = MADT_TYPE_LAPIC, .length = sizeof(e),
				.processor_uid = (uint8_t)i, .apic_id = (uint8_t)i,
				.flags = MADT_ENABLED,
			};
			memcpy(p, &e, sizeof(e));
			p += sizeof(e);
		} else {
			struct madt_x2apic e = {
				.type = MADT_TYPE_X2APIC, .length = sizeof(e),
				.x2apic_id = i, .flags = MADT_ENABLED, .processor_uid = i,
			};
			memcpy(p, &e, sizeof(e));
			p += sizeof(e);
		}
	}

	struct madt_ioapic io = {
		.type = MADT_TYPE_IOAPIC, .length = sizeof(io),
		.id = acpi_ioapic_id(ncpus), .address = (uint32_t)IOAPIC_ADDR, .gsi_base = 0,
	};
	memcpy(p, &io, sizeof(io));
	p += sizeof(io);

	/* The PIT's IRQ0 arrives on IOAPIC pin 2 (pin 0 carries the 8259's
	 * ExtINT on PC hardware); flags 0 = ISA defaults (edge, active high). */
	struct madt_iso iso[2] = {
		{ .type = MADT_TYPE_ISO, .length = sizeof(iso[0]), .bus = 0,
		  .source = 0, .gsi = 2, .flags = 0 },
		/* The SCI is level-triggered; active high because that is how
		 * the VMM drives the line (the ACPI default would be low). */
		{ .type = MADT_TYPE_ISO, .length = sizeof(iso[0]), .bus = 0,
		  .source = ACPI_SCI_IRQ, .gsi = ACPI_SCI_IRQ,
		  .flags = MPS_LEVEL | MPS_ACTIVE_HIGH },
	};
	memcpy(p, iso, sizeof(iso));
	p += sizeof(iso);

	/* NMI arrives on LINT1 of every processor (UID 0xFF / ~0 = all). */
	struct madt_lapic_nmi nmi = {
		.type = MADT_TYPE_LAPIC_NMI, .length = sizeof(nmi),
		.processor_uid = 0xff, .flags = 0, .lint = 1,
	};
	memcpy(p, &nmi, sizeof(nmi));
	p += sizeof(nmi);
	if (nx2) {
		struct madt_x2apic_nmi x2nmi = {
			.type = MADT_TYPE_X2APIC_NMI, .length = sizeof(x2nmi),
			.flags = 0, .processor_uid = 0xffffffffu, .lint = 1,
		};
		memcpy(p, &x2nmi, sizeof(x2nmi));
		p += sizeof(x2nmi);
	}

	acpi_table_seal(b, off);
	return acpi_xsdt_add(b, off);
}

static int acpi_build_xsdt(struct acpi_builder *b, size_t *off)
{
	int rc;

	rc = acpi_table_begin(b, "XSDT", 1, b->nxsdt * sizeof(uint64_t), off);
	if (rc)
		return rc;
	/* Entries are 8 bytes at offset 36, so not naturally aligned. */
	memcpy(b->buf + *off + sizeof(struct acpi_header), b->xsdt,
	       b->nxsdt * sizeof(uint64_t));
	acpi_table_seal(b, *off);
	return 0;
}

int acpi_build(struct guest_mem *m, const struct acpi_config *cfg, uint64_t *rsdp_gpa)
{
	struct acpi_builder b = { 0 };
	struct acpi_rsdp rsdp;
	size_t rsdp_off, facs_off, dsdt_off, xsdt_off, mcfg_off;
	struct aml *dsdt = NULL;
	int rc;

	if (!cfg || cfg->ncpus == 0 || (cfg->nextra && !cfg->extra))
		return -EINVAL;
	if (cfg->nextra > ACPI_XSDT_MAX - 3)
		return -E2BIG;

	b.buf = calloc(1, ACPI_MAX);
	if (!b.buf)
		return -ENOMEM;

	/* The RSDP goes first so it sits at ACPI_ADDR, which is 16-byte aligned
	 * inside the legacy 0xE0000-0xFFFFF scan range (5.2.5.1). */
	rc = acpi_reserve(&b, sizeof(rsdp), 16, &rsdp_off);
	if (rc)
		goto out;
	rc = acpi_build_facs(&b, &facs_off);
	if (rc)
		goto out;
	/* Revision 2: AML integers are 64-bit. The FADT, not the XSDT, points
	 * at the DSDT. */
	dsdt = calloc(1, sizeof(*dsdt));
	if (!dsdt) {
		rc = -ENOMEM;
		goto out;
	}
	aml_put(dsdt, dsdt_aml, sizeof(dsdt_aml));
	rc = aml_pci_scope(dsdt);
	if (rc)
		goto out;
	rc = acpi_add_table(&b, "DSDT", 2, dsdt->b, dsdt->n, &dsdt_off);
	if (rc)
		goto out;
	rc = acpi_build_fadt(&b, facs_off, dsdt_off);
	if (rc)
		goto out;
	rc = acpi_build_madt(&b, cfg->ncpus);
	if (rc)
		goto out;
	/* Every VM has PCI bus 0 with ECAM (devices/pci.c). */
	struct mcfg_body mcfg = { .base = PCI_ECAM_BASE, .segment = 0,
				  .bus_start = PCI_BUS_MIN, .bus_end = PCI_BUS_MAX };
	rc = acpi_add_table(&b, "MCFG", 1, &mcfg, sizeof(mcfg), &mcfg_off);
	if (!rc)
		rc = acpi_xsdt_add(&b, mcfg_off);
	if (rc)
		goto out;
	for (unsigned i = 0; i < cfg->nextra; i++) {
		const struct acpi_table *t = &cfg->extra[i];
		size_t off;

		if (t->body_len && !t->body) {
			rc = -EINVAL;
			goto out;
		}
		rc = acpi_add_table(&b, t->signature, t->revision, t->body, t->body_len, &off);
		if (rc)
			goto out;
		rc = acpi_xsdt_add(&b, off);
		if (rc)
			goto out;
	}
	rc = acpi_build_xsdt(&b, &xsdt_off);
	if (rc)
		goto out;

	memset(&rsdp, 0, sizeof(rsdp));
	memcpy(rsdp.signature, "RSD PTR ", sizeof(rsdp.signature));
	memcpy(rsdp.oem_id, ACPI_OEM_ID, sizeof(rsdp.oem_id));
	rsdp.revision = 2;
	/* No RSDT: ACPI 2.0+ guests use the XSDT. */
	rsdp.rsdt_address = 0;
	rsdp.length = sizeof(rsdp);
	rsdp.xsdt_address = acpi_gpa(xsdt_off);
	rsdp.checksum = (uint8_t)-acpi_checksum(&rsdp, 20);
	rsdp.extended_checksum = (uint8_t)-acpi_checksum(&rsdp, sizeof(rsdp));
	memcpy(b.buf + rsdp_off, &rsdp, sizeof(rsdp));

	rc = gmem_write(m, ACPI_ADDR, b.buf, b.used);
	if (rc)
		goto out;
	if (rsdp_gpa)
		*rsdp_gpa = acpi_gpa(rsdp_off);
out:
	free(dsdt);
	free(b.buf);
	return rc;
}
