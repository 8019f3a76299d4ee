/* Intel MultiProcessor Specification 1.4 tables for guests booted without
 * ACPI: MP floating pointer (section 4.1), configuration table header (4.2)
 * and base entries (4.3), built in a host buffer and written in one go. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "arch/x86/mptable.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "tables are laid out with host structs; MP tables are little-endian");

struct mpf {                 /* floating pointer structure */
	char signature[4];
	uint32_t config_address;
	uint8_t length;          /* in 16-byte units */
	uint8_t spec_rev;
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc_header {          /* configuration table header */
	char signature[4];
	uint16_t base_length;
	uint8_t spec_rev;
	uint8_t checksum;
	char oem_id[8];
	char product_id[12];
	uint32_t oem_table;
	uint16_t oem_table_size;
	uint16_t entry_count;
	uint32_t lapic_address;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mpc_processor {
	uint8_t type;
	uint8_t apic_id;
	uint8_t apic_version;
	uint8_t cpu_flags;
	uint32_t signature;
	uint32_t feature_flags;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type;
	uint8_t bus_id;
	char bus_type[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type;
	uint8_t apic_id;
	uint8_t apic_version;
	uint8_t flags;
	uint32_t address;
} __attribute__((packed));

struct mpc_intsrc {          /* I/O and local interrupt assignment entries */
	uint8_t type;
	uint8_t irq_type;
	uint16_t flags;
	uint8_t src_bus;
	uint8_t src_irq;
	uint8_t dst_apic;
	uint8_t dst_pin;
} __attribute__((packed));

_Static_assert(sizeof(struct mpf) == 16, "MP floating pointer");
_Static_assert(sizeof(struct mpc_header) == 44, "MP config header");
_Static_assert(sizeof(struct mpc_processor) == 20, "MP processor entry");
_Static_assert(sizeof(struct mpc_bus) == 8, "MP bus entry");
_Static_assert(sizeof(struct mpc_ioapic) == 8, "MP IOAPIC entry");
_Static_assert(sizeof(struct mpc_intsrc) == 8, "MP interrupt entry");

#define MP_SPEC_REV          4     /* MP spec 1.4 */
#define MP_ENTRY_PROCESSOR   0
#define MP_ENTRY_BUS         1
#define MP_ENTRY_IOAPIC      2
#define MP_ENTRY_IOINT       3
#define MP_ENTRY_LOCALINT    4
#define MP_CPU_ENABLED       0x01
#define MP_CPU_BSP           0x02
#define MP_IOAPIC_ENABLED    0x01
#define MP_INT_INT           0
#define MP_INT_NMI           1
#define MP_INT_EXTINT        3
#define MP_ALL_LAPICS        0xff
#define MP_ISA_BUS           0
#define MP_ISA_IRQS          16

/* Integrated local APIC and the IOAPIC version KVM's in-kernel irqchip
 * reports; the guest reads the real registers anyway. */
#define MP_LAPIC_VERSION     0x14
#define MP_IOAPIC_VERSION    0x11
/* Family 6 model 15 stepping 1, FPU and APIC present: informational only,
 * CPUID is what the kernel trusts. */
#define MP_CPU_SIGNATURE     0x000006f1u
#define MP_CPU_FEATURES      ((1u << 0) | (1u << 9))

/* IRQ 2 is the 8259 cascade and has no entry; IRQ 0 is routed to pin 2. */
#define MP_NUM_IOINTS        (MP_ISA_IRQS - 1)
#define MP_NUM_LOCALINTS     2
#define MP_FIXED_SIZE        (sizeof(struct mpf) + sizeof(struct mpc_header) + \
			      sizeof(struct mpc_bus) + sizeof(struct mpc_ioapic) + \
			      (MP_NUM_IOINTS + MP_NUM_LOCALINTS) * sizeof(struct mpc_intsrc))

_Static_assert(MPTABLE_ADDR % 16 == 0, "the floating pointer must be paragraph aligned");
_Static_assert(MP_FIXED_SIZE < MPTABLE_MAX, "MP table without processors must fit");

static uint8_t *mp_put(uint8_t *p, const void *entry, size_t len)
{
	memcpy(p, entry, len);
	return p + len;
}

int mptable_build(struct guest_mem *m, unsigned ncpus)
{
	uint8_t buf[MPTABLE_MAX];
	uint8_t *p = buf;
	uint8_t ioapic_id = acpi_ioapic_id(ncpus);
	struct mpc_header hdr;

	if (ncpus == 0)
		return -EINVAL;
	/* ncpus is capped before multiplying, so this cannot overflow. */
	if (ncpus > (MPTABLE_MAX - MP_FIXED_SIZE) / sizeof(struct mpc_processor))
		return -E2BIG;
	memset(buf, 0, sizeof(buf));

	/* The config table follows the floating pointer directly. */
	struct mpf mpf = {
		.signature = { '_', 'M', 'P', '_' },
		.config_address = (uint32_t)(MPTABLE_ADDR + sizeof(struct mpf)),
		.length = 1,
		.spec_rev = MP_SPEC_REV,
		/* feature[0] = 0: a config table is present, no default config;
		 * feature[1] bit 7 (IMCRP) clear: virtual wire mode, no IMCR. */
	};
	mpf.checksum = (uint8_t)-acpi_checksum(&mpf, sizeof(mpf));
	p = mp_put(p, &mpf, sizeof(mpf));

	uint8_t *table = p;
	p += sizeof(hdr);

	for (unsigned i = 0; i < ncpus; i++) {
		struct mpc_processor cpu = {
			.type = MP_ENTRY_PROCESSOR,
			.apic_id = (uint8_t)i,
			.apic_version = MP_LAPIC_VERSION,
			.cpu_flags = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
			.signature = MP_CPU_SIGNATURE,
			.feature_flags = MP_CPU_FEATURES,
		};
		p = mp_put(p, &cpu, sizeof(cpu));
	}

	struct mpc_bus bus = { .type = MP_ENTRY_BUS, .bus_id = MP_ISA_BUS,
			       .bus_type = { 'I', 'S', 'A', ' ', ' ', ' ' } };
	p = mp_put(p, &bus, sizeof(bus));

	struct mpc_ioapic ioapic = { .type = MP_ENTRY_IOAPIC, .apic_id = ioapic_id,
				     .apic_version = MP_IOAPIC_VERSION,
				     .flags = MP_IOAPIC_ENABLED,
				     .address = (uint32_t)IOAPIC_ADDR };
	p = mp_put(p, &ioapic, sizeof(ioapic));

	/* Same routing as the MADT's overrides: IRQ0 -> pin 2, others identity.
	 * Flags 0 = conforms to the ISA bus (edge, active high). */
	for (unsigned irq = 0; irq < MP_ISA_IRQS; irq++) {
		if (irq == 2)
			continue;
		struct mpc_intsrc e = { .type = MP_ENTRY_IOINT, .irq_type = MP_INT_INT,
					.flags = 0, .src_bus = MP_ISA_BUS,
					.src_irq = (uint8_t)irq, .dst_apic = ioapic_id,
					.dst_pin = (uint8_t)(irq == 0 ? 2 : irq) };
		p = mp_put(p, &e, sizeof(e));
	}

	/* The 8259 reaches the BSP as ExtINT on LINT0; NMI on LINT1 of all. */
	struct mpc_intsrc lint[MP_NUM_LOCALINTS] = {
		{ .type = MP_ENTRY_LOCALINT, .irq_type = MP_INT_EXTINT, .src_bus = MP_ISA_BUS,
		  .src_irq = 0, .dst_apic = MP_ALL_LAPICS, .dst_pin = 0 },
		{ .type = MP_ENTRY_LOCALINT, .irq_type = MP_INT_NMI, .src_bus = MP_ISA_BUS,
		  .src_irq = 0, .dst_apic = MP_ALL_LAPICS, .dst_pin = 1 },
	};
	p = mp_put(p, lint, sizeof(lint));

	memset(&hdr, 0, sizeof(hdr));
	memcpy(hdr.signature, "PCMP", 4);
	hdr.base_length = (uint16_t)(p - table);
	hdr.spec_rev = MP_SPEC_REV;
	memcpy(hdr.oem_id, "WAFER   ", sizeof(hdr.oem_id));
	memcpy(hdr.product_id, "WAFERVMM    ", sizeof(hdr.product_id));
	hdr.entry_count = (uint16_t)(ncpus + 1 + 1 + MP_NUM_IOINTS + MP_NUM_LOCALINTS);
	hdr.lapic_address = (uint32_t)LAPIC_ADDR;
	memcpy(table, &hdr, sizeof(hdr));
	/* The checksum covers the base table: header plus every entry. */
	table[offsetof(struct mpc_header, checksum)] =
		(uint8_t)-acpi_checksum(table, hdr.base_length);

	return gmem_write(m, MPTABLE_ADDR, buf, (uint64_t)(p - buf));
}
