/* mptable_build: floating pointer and config table parsed back from guest
 * memory (signatures, checksums, processors, IOAPIC, IRQ routing), and the
 * -E2BIG / -EFAULT refusals that leave guest memory untouched. */
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
#include "arch/x86/mptable.h"
#include "vmm/memory.h"

#define GUEST_SIZE (16ULL << 20)
/* (MPTABLE_MAX - fixed part) / 20-byte processor entries. */
#define MP_MAX_CPUS 40

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

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

static void assert_untouched(struct guest *g)
{
	for (uint64_t i = 0; i < g->m.size; i++)
		if (g->buf[i] != 0xa5)
			fail_msg("guest byte at 0x%llx written", (unsigned long long)i);
}

static void check_tables(struct guest *g, unsigned ncpus)
{
	const uint8_t *mpf = gmem_ptr(&g->m, MPTABLE_ADDR, 16);
	assert_non_null(mpf);
	assert_memory_equal(mpf, "_MP_", 4);
	assert_int_equal(mpf[8], 1);                      /* length, 16-byte units */
	assert_int_equal(mpf[9], 4);                      /* spec 1.4 */
	assert_int_equal(acpi_checksum(mpf, 16), 0);
	assert_int_equal(mpf[11], 0);                     /* config table present */

	uint32_t cfg_gpa = rd32(mpf + 4);
	assert_int_equal(cfg_gpa, MPTABLE_ADDR + 16);
	const uint8_t *c = gmem_ptr(&g->m, cfg_gpa, 44);
	assert_non_null(c);
	assert_memory_equal(c, "PCMP", 4);
	uint16_t len = rd16(c + 4);
	assert_int_equal(c[6], 4);
	assert_true(cfg_gpa + len <= MPTABLE_ADDR + MPTABLE_MAX);
	assert_int_equal(acpi_checksum(c, len), 0);
	assert_int_equal(rd32(c + 36), LAPIC_ADDR);
	uint16_t count = rd16(c + 34);

	unsigned cpus = 0, buses = 0, ioapics = 0, ioints = 0, extint = 0, nmi = 0;
	uint8_t ioapic_id = acpi_ioapic_id(ncpus);
	uint32_t irq_seen = 0;
	uint32_t off = 44;
	for (unsigned i = 0; i < count; i++) {
		assert_true(off < len);
		const uint8_t *e = c + off;
		switch (e[0]) {
		case 0:
			assert_true(len - off >= 20);
			assert_int_equal(e[1], cpus);          /* APIC ID = index */
			assert_int_equal(e[3] & 1, 1);         /* enabled */
			assert_int_equal(!!(e[3] & 2), cpus == 0); /* BSP only on 0 */
			cpus++;
			off += 20;
			break;
		case 1:
			assert_memory_equal(e + 2, "ISA   ", 6);
			buses++;
			off += 8;
			break;
		case 2:
			assert_int_equal(e[1], ioapic_id);
			assert_int_equal(e[3] & 1, 1);
			assert_int_equal(rd32(e + 4), IOAPIC_ADDR);
			ioapics++;
			off += 8;
			break;
		case 3:
			assert_int_equal(e[1], 0);             /* INT */
			assert_int_equal(e[6], ioapic_id);
			assert_true(e[5] < 16);
			assert_true(e[5] != 2);                /* cascade has no entry */
			assert_int_equal(e[7], e[5] == 0 ? 2 : e[5]);
			assert_false(irq_seen & (1u << e[5]));
			irq_seen |= 1u << e[5];
			ioints++;
			off += 8;
			break;
		case 4:
			assert_int_equal(e[6], 0xff);          /* all local APICs */
			if (e[1] == 3) {
				assert_int_equal(e[7], 0);     /* ExtINT on LINT0 */
				extint++;
			} else if (e[1] == 1) {
				assert_int_equal(e[7], 1);     /* NMI on LINT1 */
				nmi++;
			} else {
				fail_msg("unexpected local interrupt type %u", e[1]);
			}
			off += 8;
			break;
		default:
			fail_msg("unexpected MP entry type %u", e[0]);
		}
	}
	assert_int_equal(off, len);
	assert_int_equal(cpus, ncpus);
	assert_int_equal(buses, 1);
	assert_int_equal(ioapics, 1);
	assert_int_equal(ioints, 15);
	assert_int_equal(irq_seen, 0xffffu & ~(1u << 2));
	assert_int_equal(extint, 1);
	assert_int_equal(nmi, 1);
	assert_true(ioapic_id >= ncpus);                  /* no clash with a CPU */
}

static void test_counts(void **state)
{
	static const unsigned counts[] = { 1, 2, 8, MP_MAX_CPUS };
	(void)state;

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct guest g;
		guest_new(&g, GUEST_SIZE);
		assert_int_equal(mptable_build(&g.m, counts[i]), 0);
		check_tables(&g, counts[i]);
		guest_del(&g);
	}
}

static void test_too_many_cpus(void **state)
{
	static const unsigned counts[] = { MP_MAX_CPUS + 1, 255, 4096, UINT_MAX };
	struct guest g;
	(void)state;

	guest_new(&g, GUEST_SIZE);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		assert_int_equal(mptable_build(&g.m, counts[i]), -E2BIG);
	assert_int_equal(mptable_build(&g.m, 0), -EINVAL);
	assert_untouched(&g);
	guest_del(&g);
}

static void test_guest_too_small(void **state)
{
	/* RAM ends before, at, and inside the MP table. */
	static const uint64_t sizes[] = { 0x1000, MPTABLE_ADDR, MPTABLE_ADDR + 0x40 };
	(void)state;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct guest g;
		guest_new(&g, sizes[i]);
		assert_int_equal(mptable_build(&g.m, 1), -EFAULT);
		assert_untouched(&g);
		guest_del(&g);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_too_many_cpus),
		cmocka_unit_test(test_guest_too_small),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
