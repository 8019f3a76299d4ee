/* e820_build: the map is sorted, non-overlapping, covers exactly the guest's
 * RAM, leaves the MMIO hole alone, and respects the caller's capacity. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "vmm/memory.h"

#define MAX_ENTRIES 16

/* Host backing for size bytes; sparse, so 5 GiB costs nothing. */
static void guest_map(struct guest_mem *m, uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(p != MAP_FAILED);
	gmem_init(m, p, size);
}

static void guest_unmap(struct guest_mem *m)
{
	munmap(m->host, m->size);
}

static uint64_t overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	uint64_t lo = a > b ? a : b;
	uint64_t hi = (a + alen) < (b + blen) ? (a + alen) : (b + blen);
	return hi > lo ? hi - lo : 0;
}

static void check_map(uint64_t size)
{
	struct guest_mem m;
	struct e820_entry e[MAX_ENTRIES];
	uint64_t ram = 0, covered = 0;
	int n, ecam = 0;

	guest_map(&m, size);
	n = e820_build(&m, e, MAX_ENTRIES);
	assert_true(n > 0);

	for (int i = 0; i < n; i++) {
		assert_true(e[i].size > 0);
		assert_true(e[i].type == E820_RAM || e[i].type == E820_RESERVED);
		if (i > 0)
			assert_true(e[i - 1].addr + e[i - 1].size <= e[i].addr);
		/* Nothing may claim the 32-bit MMIO hole but the reserved
		 * PCI ECAM window, exactly. */
		if (e[i].addr == PCI_ECAM_BASE) {
			assert_int_equal(e[i].size, PCI_ECAM_SIZE);
			assert_int_equal(e[i].type, E820_RESERVED);
			ecam++;
		} else {
			assert_int_equal(overlap(e[i].addr, e[i].size, MEM_HOLE_START,
						 MEM_HIGH_START - MEM_HOLE_START), 0);
		}
		if (e[i].type == E820_RAM) {
			/* RAM entries must be backed by guest memory. */
			assert_non_null(gmem_ptr(&m, e[i].addr, e[i].size));
			ram += e[i].size;
		}
		covered += overlap(e[i].addr, e[i].size, 0, m.low_size);
		covered += overlap(e[i].addr, e[i].size, MEM_HIGH_START, m.high_size);
	}
	/* Every byte of RAM is described, and only the EBDA/BIOS area is
	 * withheld from the guest as reserved. */
	assert_int_equal(covered, size);
	assert_int_equal(ram, size - (HIMEM_START - EBDA_START));

	/* The MP table and the ACPI region are inside a reserved entry. */
	int found = 0;
	for (int i = 0; i < n; i++) {
		if (e[i].type == E820_RESERVED && e[i].addr <= MPTABLE_ADDR &&
		    e[i].addr + e[i].size >= ACPI_ADDR + ACPI_MAX)
			found = 1;
	}
	assert_true(found);
	/* Linux uses an MCFG area only if the map reserves it. */
	assert_int_equal(ecam, 1);

	/* The last RAM entry ends exactly where RAM ends. */
	uint64_t end = m.high_size ? MEM_HIGH_START + m.high_size : m.low_size;
	int last = n - 1;
	while (last > 0 && e[last].type != E820_RAM)
		last--;
	assert_int_equal(e[last].addr + e[last].size, end);
	assert_int_equal(e[last].type, E820_RAM);

	guest_unmap(&m);
}

static void test_16m(void **state)
{
	(void)state;
	check_map(16ULL << 20);
}

static void test_1g(void **state)
{
	(void)state;
	check_map(1ULL << 30);
}

static void test_3g_exact(void **state)
{
	struct guest_mem m;
	struct e820_entry e[MAX_ENTRIES];
	(void)state;

	check_map(3ULL << 30);
	/* Exactly at the hole: no high RAM entry. */
	guest_map(&m, 3ULL << 30);
	int n = e820_build(&m, e, MAX_ENTRIES);
	assert_int_equal(n, 4);
	assert_int_equal(e[2].addr + e[2].size, MEM_HOLE_START);
	assert_int_equal(e[3].addr, PCI_ECAM_BASE);
	assert_int_equal(e[3].type, E820_RESERVED);
	guest_unmap(&m);
}

static void test_5g(void **state)
{
	struct guest_mem m;
	struct e820_entry e[MAX_ENTRIES];
	(void)state;

	check_map(5ULL << 30);
	guest_map(&m, 5ULL << 30);
	int n = e820_build(&m, e, MAX_ENTRIES);
	assert_int_equal(n, 5);
	assert_int_equal(e[3].addr, PCI_ECAM_BASE);
	assert_int_equal(e[4].addr, MEM_HIGH_START);
	assert_int_equal(e[4].size, 2ULL << 30);
	guest_unmap(&m);
}

static void test_capacity(void **state)
{
	struct guest_mem m;
	struct e820_entry e[MAX_ENTRIES];
	const uint8_t poison = 0xa5;
	(void)state;

	guest_map(&m, 5ULL << 30);
	int n = e820_build(&m, e, MAX_ENTRIES);
	assert_int_equal(n, 5);
	for (int max = 0; max < n; max++) {
		memset(e, poison, sizeof(e));
		assert_int_equal(e820_build(&m, e, max), -ENOSPC);
		/* Nothing written past the capacity. */
		const uint8_t *tail = (const uint8_t *)&e[max];
		for (size_t i = 0; i < sizeof(e) - (size_t)max * sizeof(e[0]); i++)
			assert_int_equal(tail[i], poison);
	}
	assert_int_equal(e820_build(&m, e, n), n);
	assert_int_equal(e820_build(&m, e, -1), -EINVAL);
	assert_int_equal(e820_build(&m, NULL, 4), -EINVAL);
	guest_unmap(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_16m),
		cmocka_unit_test(test_1g),
		cmocka_unit_test(test_3g_exact),
		cmocka_unit_test(test_5g),
		cmocka_unit_test(test_capacity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
