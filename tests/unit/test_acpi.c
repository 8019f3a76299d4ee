/* acpi_build: tables parsed back out of guest memory the way a guest would
 * (RSDP -> XSDT -> FADT/MADT -> DSDT), with every checksum, pointer and bound
 * checked, for several vCPU counts and for requests that cannot fit. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "vmm/memory.h"

#define GUEST_SIZE (16ULL << 20)
#define HDR_LEN    36

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

struct guest {
	struct guest_mem m;
	uint8_t *buf;
};

static void guest_new(struct guest *g, uint64_t size)
{
	g->buf = malloc(size);
	assert_non_null(g->buf);
	memset(g->buf, 0xa5, size);
	gmem_init(&g->m, g->buf, size);
}

static void guest_del(struct guest *g)
{
	free(g->buf);
}

/* A table at gpa: inside the ACPI region, length sane, checksum valid. */
static const uint8_t *table_at(struct guest *g, uint64_t gpa, const char *sig)
{
	assert_true(gpa >= ACPI_ADDR && gpa + HDR_LEN <= ACPI_ADDR + ACPI_MAX);
	const uint8_t *t = gmem_ptr(&g->m, gpa, HDR_LEN);
	assert_non_null(t);
	uint32_t len = rd32(t + 4);
	assert_true(len >= HDR_LEN);
	assert_true(gpa + len <= ACPI_ADDR + ACPI_MAX);
	assert_non_null(gmem_ptr(&g->m, gpa, len));
	assert_int_equal(acpi_checksum(t, len), 0);
	assert_memory_equal(t + 10, "WAFER ", 6);
	if (sig)
		assert_memory_equal(t, sig, 4);
	return t;
}

struct parsed {
	const uint8_t *rsdp, *xsdt, *fadt, *madt, *dsdt, *facs, *mcfg;
	const uint8_t *extra;      /* first XSDT table that is not FACP, APIC, MCFG */
};

static void parse(struct guest *g, uint64_t rsdp_gpa, struct parsed *p)
{
	memset(p, 0, sizeof(*p));
	assert_int_equal(rsdp_gpa, ACPI_ADDR);
	p->rsdp = gmem_ptr(&g->m, rsdp_gpa, 36);
	assert_non_null(p->rsdp);
	assert_memory_equal(p->rsdp, "RSD PTR ", 8);
	assert_int_equal(p->rsdp[15], 2);
	assert_int_equal(rd32(p->rsdp + 20), 36);
	assert_int_equal(acpi_checksum(p->rsdp, 20), 0);
	assert_int_equal(acpi_checksum(p->rsdp, 36), 0);

	p->xsdt = table_at(g, rd64(p->rsdp + 24), "XSDT");
	uint32_t n = (rd32(p->xsdt + 4) - HDR_LEN) / 8;
	assert_int_equal((rd32(p->xsdt + 4) - HDR_LEN) % 8, 0);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *t = table_at(g, rd64(p->xsdt + HDR_LEN + 8 * i), NULL);
		if (!memcmp(t, "FACP", 4)) {
			assert_null(p->fadt);
			p->fadt = t;
		} else if (!memcmp(t, "APIC", 4)) {
			assert_null(p->madt);
			p->madt = t;
		} else if (!memcmp(t, "MCFG", 4)) {
			assert_null(p->mcfg);
			p->mcfg = t;
		} else if (!p->extra) {
			p->extra = t;
		}
	}
	assert_non_null(p->fadt);
	assert_non_null(p->madt);
	assert_non_null(p->mcfg);

	/* FADT -> DSDT through both pointers, FACS through FIRMWARE_CTRL. */
	uint32_t dsdt32 = rd32(p->fadt + 40);
	uint64_t dsdt64 = rd64(p->fadt + 140);
	assert_int_equal(dsdt32, dsdt64);
	p->dsdt = table_at(g, dsdt64, "DSDT");

	uint32_t facs = rd32(p->fadt + 36);
	assert_int_equal(facs % 64, 0);
	assert_true(facs >= ACPI_ADDR && facs + 64 <= ACPI_ADDR + ACPI_MAX);
	p->facs = gmem_ptr(&g->m, facs, 64);
	assert_non_null(p->facs);
	assert_memory_equal(p->facs, "FACS", 4);
	assert_int_equal(rd32(p->facs + 4), 64);
}

static void build_ok(struct guest *g, const struct acpi_config *cfg, struct parsed *p)
{
	uint64_t rsdp = 0;
	assert_int_equal(acpi_build(&g->m, cfg, &rsdp), 0);
	parse(g, rsdp, p);
}

static void test_fadt(void **state)
{
	struct guest g;
	struct parsed p;
	struct acpi_config cfg = { .ncpus = 1 };
	(void)state;

	guest_new(&g, GUEST_SIZE);
	build_ok(&g, &cfg, &p);
	const uint8_t *f = p.fadt;
	assert_int_equal(rd32(f + 4), 276);                 /* ACPI 6.x length */
	assert_int_equal(f[8], 6);                          /* revision */
	assert_int_equal(rd16(f + 46), ACPI_SCI_IRQ);
	assert_int_equal(rd32(f + 48), 0);                  /* no SMI_CMD */
	assert_int_equal(rd32(f + 56), PORT_ACPI_PM1A_EVT);
	assert_int_equal(rd32(f + 64), PORT_ACPI_PM1A_CNT);
	assert_int_equal(f[88], 4);                         /* PM1_EVT_LEN */
	assert_int_equal(f[89], 2);                         /* PM1_CNT_LEN */
	uint16_t boot_arch = rd16(f + 109);
	assert_true(boot_arch & (1u << 1));                 /* 8042 present */
	assert_true(boot_arch & (1u << 2));                 /* no VGA */
	assert_false(boot_arch & (1u << 5));                /* CMOS RTC present */
	uint32_t flags = rd32(f + 112);
	assert_false(flags & (1u << 4));                    /* fixed power button */
	assert_false(flags & (1u << 20));                   /* not HW-reduced */
	/* X_PM1a blocks: system I/O, widths matching the legacy lengths. */
	assert_int_equal(f[148], 1);
	assert_int_equal(f[149], 32);
	assert_int_equal(rd64(f + 152), PORT_ACPI_PM1A_EVT);
	assert_int_equal(f[172], 1);
	assert_int_equal(f[173], 16);
	assert_int_equal(rd64(f + 176), PORT_ACPI_PM1A_CNT);
	guest_del(&g);
}

/* Walk the MADT's entries; every entry's length must keep it in the table. */
static void check_madt(const uint8_t *madt, unsigned ncpus)
{
	uint32_t len = rd32(madt + 4);
	unsigned next_id = 0, ioapics = 0, iso0 = 0, iso9 = 0, nmi = 0;
	uint8_t ioapic_id = 0;

	assert_int_equal(rd32(madt + 36), LAPIC_ADDR);
	assert_int_equal(rd32(madt + 40) & 1, 1);           /* PCAT_COMPAT */
	for (uint32_t off = 44; off < len;) {
		assert_true(len - off >= 2);
		uint8_t type = madt[off], elen = madt[off + 1];
		assert_true(elen >= 2 && elen <= len - off);
		const uint8_t *e = madt + off;
		switch (type) {
		case 0:
			assert_int_equal(elen, 8);
			assert_int_equal(e[3], next_id);         /* APIC ID = index */
			assert_int_equal(e[2], next_id);         /* UID */
			assert_int_equal(rd32(e + 4) & 1, 1);    /* enabled */
			assert_true(next_id < 255);
			next_id++;
			break;
		case 9:
			assert_int_equal(elen, 16);
			assert_int_equal(rd32(e + 4), next_id);
			assert_int_equal(rd32(e + 8) & 1, 1);
			assert_true(next_id >= 255);
			next_id++;
			break;
		case 1:
			assert_int_equal(elen, 12);
			ioapic_id = e[2];
			assert_int_equal(rd32(e + 4), IOAPIC_ADDR);
			assert_int_equal(rd32(e + 8), 0);
			ioapics++;
			break;
		case 2:
			assert_int_equal(elen, 10);
			assert_int_equal(e[2], 0);               /* ISA */
			if (e[3] == 0) {
				assert_int_equal(rd32(e + 4), 2);
				iso0++;
			} else if (e[3] == ACPI_SCI_IRQ) {
				assert_int_equal(rd32(e + 4), ACPI_SCI_IRQ);
				assert_int_equal(rd16(e + 8), 0xd); /* level, active high */
				iso9++;
			} else {
				fail_msg("unexpected override for IRQ %u", e[3]);
			}
			break;
		case 4:
			assert_int_equal(elen, 6);
			assert_int_equal(e[5], 1);               /* LINT1 */
			nmi++;
			break;
		case 10:
			assert_int_equal(elen, 12);
			assert_int_equal(e[8], 1);
			break;
		default:
			fail_msg("unexpected MADT entry type %u", type);
		}
		off += elen;
	}
	assert_int_equal(next_id, ncpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(iso0, 1);
	assert_int_equal(iso9, 1);
	assert_int_equal(nmi, 1);
	assert_int_equal(ioapic_id, acpi_ioapic_id(ncpus));
	if (ncpus < 255)
		assert_true(ioapic_id >= ncpus);             /* no clash with a CPU */
}

static void test_madt_counts(void **state)
{
	static const unsigned counts[] = { 1, 2, 64, 254, 255, 256, 300, 4096 };
	(void)state;

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct guest g;
		struct parsed p;
		struct acpi_config cfg = { .ncpus = counts[i] };

		guest_new(&g, GUEST_SIZE);
		build_ok(&g, &cfg, &p);
		check_madt(p.madt, counts[i]);
		guest_del(&g);
	}
}

static const uint8_t *find(const uint8_t *hay, size_t len, const void *needle, size_t nlen)
{
	return memmem(hay, len, needle, nlen);
}

/* Decode an AML PkgLength at p: *len gets its value (which counts the
 * length bytes), the return value points past the length bytes. */
static const uint8_t *pkg(const uint8_t *p, size_t *len)
{
	unsigned extra = p[0] >> 6;
	size_t v = extra ? p[0] & 0x0f : p[0] & 0x3f;
	for (unsigned i = 0; i < extra; i++)
		v |= (size_t)p[1 + i] << (4 + 8 * i);
	*len = v;
	return p + 1 + extra;
}

/* The PCI host bridge, its resources and interrupt routing, and the ECAM
 * motherboard resource: found, well-formed, and matching layout.h. */
static void test_dsdt_pci(void **state)
{
	struct guest g;
	struct parsed p;
	struct acpi_config cfg = { .ncpus = 1 };
	static const uint8_t pnp0a08[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08 };
	static const uint8_t pnp0a03[] = { 0x08, '_', 'C', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03 };
	static const uint8_t pnp0c02[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0c, 0x02 };
	static const uint8_t seg[] = { 0x08, '_', 'S', 'E', 'G', 0x00 };
	static const uint8_t bbn[] = { 0x08, '_', 'B', 'B', 'N', 0x00 };
	/* WordBusNumber 0..0, length 1 */
	static const uint8_t busr[] = { 0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0, 0, 0, 0, 0, 0,
					0, 0, 0x01, 0x00 };
	static const uint8_t cf8[] = { 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08 };
	/* DWordMemory 0xC0000000..0xDFFFFFFF */
	static const uint8_t mem[] = { 0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0, 0, 0, 0,
				       0x00, 0x00, 0x00, 0xc0, 0xff, 0xff, 0xff, 0xdf,
				       0, 0, 0, 0, 0x00, 0x00, 0x00, 0x20 };
	/* Memory32Fixed ECAM */
	static const uint8_t ecam[] = { 0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xe0,
					0x00, 0x00, 0x10, 0x00 };
	(void)state;

	assert_int_equal(PCI_MMIO_BASE, 0xc0000000ull);
	assert_int_equal(PCI_MMIO_END, 0xe0000000ull);
	assert_int_equal(PCI_ECAM_BASE, 0xe0000000ull);
	assert_int_equal(PCI_ECAM_SIZE, 0x100000ull);
	guest_new(&g, GUEST_SIZE);
	build_ok(&g, &cfg, &p);
	const uint8_t *aml = p.dsdt + HDR_LEN;
	size_t aml_len = rd32(p.dsdt + 4) - HDR_LEN;

	const uint8_t *dev = find(aml, aml_len, "PCI0", 4);
	assert_non_null(dev);
	assert_int_equal(dev[-4], 0x5b);                   /* DeviceOp */
	assert_int_equal(dev[-3], 0x82);
	assert_int_equal(dev[-2] >> 6, 1);                 /* two-byte PkgLength */
	size_t dlen;
	pkg(dev - 2, &dlen);
	const uint8_t *dend = dev - 2 + dlen;
	assert_true(dend <= aml + aml_len);
	size_t n = (size_t)(dend - dev);
	assert_non_null(find(dev, n, pnp0a08, sizeof(pnp0a08)));
	assert_non_null(find(dev, n, pnp0a03, sizeof(pnp0a03)));
	assert_non_null(find(dev, n, seg, sizeof(seg)));
	assert_non_null(find(dev, n, bbn, sizeof(bbn)));
	assert_non_null(find(dev, n, busr, sizeof(busr)));
	assert_non_null(find(dev, n, cf8, sizeof(cf8)));
	assert_non_null(find(dev, n, mem, sizeof(mem)));

	/* _CRS buffer: its size byte matches the descriptors up to the end tag. */
	const uint8_t *crs = find(dev, n, "_CRS", 4);
	assert_non_null(crs);
	assert_int_equal(crs[4], 0x11);
	size_t blen;
	const uint8_t *b = pkg(crs + 5, &blen);
	assert_int_equal(b[0], 0x0a);
	assert_int_equal(b[1] + 2 + (size_t)(b - (crs + 5)), blen);
	assert_int_equal(b[2 + b[1] - 2], 0x79);

	/* _PRT: 31 entries, slot s pin A -> GSI 16 + s % 8. */
	const uint8_t *prt = find(dev, n, "_PRT", 4);
	assert_non_null(prt);
	assert_int_equal(prt[4], 0x12);
	size_t plen;
	const uint8_t *e = pkg(prt + 5, &plen);
	const uint8_t *pend = prt + 5 + plen;
	assert_true(pend <= dend);
	assert_int_equal(*e++, 31);
	for (unsigned slot = 1; slot < 32; slot++) {
		assert_int_equal(e[0], 0x12);
		assert_int_equal(e[1], 11);
		assert_int_equal(e[2], 4);
		assert_int_equal(e[3], 0x0c);
		assert_int_equal(rd32(e + 4), slot << 16 | 0xffff);
		assert_int_equal(e[8], 0);
		assert_int_equal(e[9], 0);
		assert_int_equal(e[10], 0x0a);
		assert_int_equal(e[11], PCI_INTX_GSI_BASE + slot % 8);
		e += 12;
	}
	assert_ptr_equal(e, pend);

	const uint8_t *mres = find(aml, aml_len, "MRES", 4);
	assert_non_null(mres);
	assert_non_null(find(mres, (size_t)(aml + aml_len - mres), pnp0c02, sizeof(pnp0c02)));
	assert_non_null(find(mres, (size_t)(aml + aml_len - mres), ecam, sizeof(ecam)));
	guest_del(&g);
}

static void test_mcfg(void **state)
{
	struct guest g;
	struct parsed p;
	struct acpi_config cfg = { .ncpus = 3 };
	(void)state;

	guest_new(&g, GUEST_SIZE);
	build_ok(&g, &cfg, &p);
	/* Header + 8 reserved + one 16-byte allocation; checksum checked by
	 * table_at. */
	assert_int_equal(rd32(p.mcfg + 4), HDR_LEN + 8 + 16);
	assert_int_equal(p.mcfg[8], 1);
	const uint8_t *a = p.mcfg + HDR_LEN + 8;
	assert_int_equal(rd64(a), PCI_ECAM_BASE);
	assert_int_equal(rd16(a + 8), 0);                  /* segment */
	assert_int_equal(a[10], 0);                        /* start bus */
	assert_int_equal(a[11], 0);                        /* end bus */
	/* ECAM covers exactly the decoded buses: 1 MiB per bus. */
	assert_int_equal(PCI_ECAM_SIZE, (uint64_t)(a[11] - a[10] + 1) << 20);
	guest_del(&g);
}

static void test_dsdt(void **state)
{
	struct guest g;
	struct parsed p;
	struct acpi_config cfg = { .ncpus = 2 };
	static const uint8_t pnp0501[] = { 0x0c, 0x41, 0xd0, 0x05, 0x01 };
	static const uint8_t com1_io[] = { 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08 };
	static const uint8_t irq4[] = { 0x22, 0x10, 0x00 };
	(void)state;

	guest_new(&g, GUEST_SIZE);
	build_ok(&g, &cfg, &p);
	uint32_t len = rd32(p.dsdt + 4);
	const uint8_t *aml = p.dsdt + HDR_LEN;
	size_t aml_len = len - HDR_LEN;

	/* \_S5_ = Package (4) { 5, ... }: SLP_TYPa is what pm.c acts on. */
	const uint8_t *s5 = find(aml, aml_len, "_S5_", 4);
	assert_non_null(s5);
	assert_int_equal(s5[-1], '\\');
	assert_int_equal(s5[-2], 0x08);                    /* NameOp */
	assert_int_equal(s5[4], 0x12);                     /* PackageOp */
	assert_int_equal(s5[6], 4);                        /* elements */
	assert_int_equal(s5[7], 0x0a);
	assert_int_equal(s5[8], ACPI_SLP_TYP_S5);
	assert_int_equal(ACPI_SLP_TYP_S5, 5);

	/* The package's PkgLength ends exactly where the first Scope begins;
	 * that one ends where the PCI Scope begins, which ends exactly at the
	 * end of the table. */
	const uint8_t *scope = s5 + 5 + s5[5];
	assert_true(scope < aml + aml_len);
	assert_int_equal(scope[0], 0x10);
	assert_int_equal(scope[1] & 0xc0, 0);              /* one-byte PkgLength */
	assert_memory_equal(scope + 2, "\\_SB_", 5);
	const uint8_t *pci = scope + 1 + scope[1];
	assert_true(pci < aml + aml_len);
	assert_int_equal(pci[0], 0x10);
	size_t plen;
	const uint8_t *pbody = pkg(pci + 1, &plen);
	assert_int_equal((size_t)(pci + 1 + plen - aml), aml_len);
	assert_memory_equal(pbody, "\\_SB_", 5);

	assert_non_null(find(aml, aml_len, pnp0501, sizeof(pnp0501)));
	assert_non_null(find(aml, aml_len, "COM1", 4));
	assert_non_null(find(aml, aml_len, com1_io, sizeof(com1_io)));
	assert_non_null(find(aml, aml_len, irq4, sizeof(irq4)));
	guest_del(&g);
}

static void test_extra_table(void **state)
{
	struct guest g;
	struct parsed p;
	static const uint8_t body[44] = { [8] = 0x42, [43] = 0x99 };
	struct acpi_table t = { .signature = { 'W', 'A', 'E', 'T' }, .revision = 1,
				.body = body, .body_len = sizeof(body) };
	struct acpi_config cfg = { .ncpus = 4, .extra = &t, .nextra = 1 };
	uint64_t rsdp;
	(void)state;

	guest_new(&g, GUEST_SIZE);
	build_ok(&g, &cfg, &p);
	assert_non_null(p.extra);
	assert_memory_equal(p.extra, "WAET", 4);
	assert_int_equal(rd32(p.extra + 4), HDR_LEN + sizeof(body));
	assert_memory_equal(p.extra + HDR_LEN, body, sizeof(body));

	struct acpi_table many[32];
	for (size_t i = 0; i < 32; i++)
		many[i] = t;
	cfg.extra = many;
	cfg.nextra = 32;
	assert_int_equal(acpi_build(&g.m, &cfg, &rsdp), -E2BIG);

	struct acpi_table bad = t;
	bad.body = NULL;
	cfg.extra = &bad;
	cfg.nextra = 1;
	assert_int_equal(acpi_build(&g.m, &cfg, &rsdp), -EINVAL);

	/* A body larger than the region must be refused, not copied. */
	struct acpi_table huge = t;
	huge.body_len = SIZE_MAX;
	cfg.extra = &huge;
	assert_int_equal(acpi_build(&g.m, &cfg, &rsdp), -E2BIG);
	guest_del(&g);
}

/* Guest memory must be byte-for-byte unchanged after a refused build. */
static void assert_untouched(struct guest *g)
{
	for (uint64_t i = 0; i < g->m.size; i++)
		if (g->buf[i] != 0xa5)
			fail_msg("guest byte at 0x%llx written", (unsigned long long)i);
}

static void test_too_many_cpus(void **state)
{
	static const unsigned counts[] = { 5000, 100000, UINT_MAX };
	struct guest g;
	uint64_t rsdp = 0x1234;
	(void)state;

	guest_new(&g, GUEST_SIZE);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct acpi_config cfg = { .ncpus = counts[i] };
		assert_int_equal(acpi_build(&g.m, &cfg, &rsdp), -E2BIG);
	}
	struct acpi_config zero = { .ncpus = 0 };
	assert_int_equal(acpi_build(&g.m, &zero, &rsdp), -EINVAL);
	assert_int_equal(rsdp, 0x1234);
	assert_untouched(&g);
	guest_del(&g);
}

/* Grow the vCPU count past what fits: every build up to the limit is fully
 * valid (all tables inside the region), the first one past it is refused. */
static void test_cpu_limit(void **state)
{
	struct guest g;
	unsigned n;
	(void)state;

	guest_new(&g, GUEST_SIZE);
	for (n = 4096; n < 8192; n++) {
		struct acpi_config cfg = { .ncpus = n };
		struct parsed p;
		uint64_t rsdp;
		int rc = acpi_build(&g.m, &cfg, &rsdp);
		if (rc) {
			assert_int_equal(rc, -E2BIG);
			break;
		}
		parse(&g, rsdp, &p);
		check_madt(p.madt, n);
	}
	assert_true(n > 4096 && n < 8192);
	guest_del(&g);
}

static void test_guest_too_small(void **state)
{
	/* RAM ends before, at, and inside the ACPI region. */
	static const uint64_t sizes[] = { 0x10000, ACPI_ADDR, ACPI_ADDR + 0x100 };
	struct acpi_config cfg = { .ncpus = 2 };
	(void)state;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct guest g;
		uint64_t rsdp = 0x1234;

		guest_new(&g, sizes[i]);
		assert_int_equal(acpi_build(&g.m, &cfg, &rsdp), -EFAULT);
		assert_int_equal(rsdp, 0x1234);
		assert_untouched(&g);
		guest_del(&g);
	}
}

static void test_checksum(void **state)
{
	static const uint8_t a[] = { 0x01, 0x02, 0xfd };
	static const uint8_t b[] = { 0xff, 0x02 };
	(void)state;

	assert_int_equal(acpi_checksum(a, sizeof(a)), 0);
	assert_int_equal(acpi_checksum(b, sizeof(b)), 1);
	assert_int_equal(acpi_checksum(b, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checksum),
		cmocka_unit_test(test_fadt),
		cmocka_unit_test(test_madt_counts),
		cmocka_unit_test(test_dsdt),
		cmocka_unit_test(test_dsdt_pci),
		cmocka_unit_test(test_mcfg),
		cmocka_unit_test(test_extra_table),
		cmocka_unit_test(test_too_many_cpus),
		cmocka_unit_test(test_cpu_limit),
		cmocka_unit_test(test_guest_too_small),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
