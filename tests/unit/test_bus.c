/* PIO/MMIO bus: registration overlap rules and dispatch offsets. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/bus.h"

struct dev { uint64_t last_off; uint8_t last_val; unsigned writes; };

static void dev_read(void *o, uint64_t off, uint8_t *d, unsigned size)
{
	(void)size;
	d[0] = (uint8_t)(0x40 + off);
	((struct dev *)o)->last_off = off;
}

static void dev_write(void *o, uint64_t off, const uint8_t *d, unsigned size)
{
	(void)size;
	struct dev *v = o;
	v->last_off = off;
	v->last_val = d[0];
	v->writes++;
}

static const struct bus_ops ops = { dev_read, dev_write };

static void test_register(void **state)
{
	(void)state;
	static struct bus b;
	struct dev d;
	memset(&b, 0, sizeof(b));
	assert_int_equal(bus_register(&b, 0x3f8, 8, &ops, &d, "a"), 0);
	assert_int_equal(bus_register(&b, 0x3ff, 1, &ops, &d, "b"), -EEXIST);
	assert_int_equal(bus_register(&b, 0x3f0, 9, &ops, &d, "c"), -EEXIST);
	assert_int_equal(bus_register(&b, 0x3f0, 8, &ops, &d, "d"), 0);  /* adjacent is fine */
	assert_int_equal(bus_register(&b, 0x400, 0, &ops, &d, "e"), -EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX, 2, &ops, &d, "f"), -EINVAL);
	for (unsigned i = b.n; i < BUS_MAX_RANGES; i++)
		assert_int_equal(bus_register(&b, 0x10000 + i * 16, 16, &ops, &d, "g"), 0);
	assert_int_equal(bus_register(&b, 0x90000, 1, &ops, &d, "h"), -ENOSPC);
}

static void test_dispatch(void **state)
{
	(void)state;
	static struct bus b;
	struct dev d = { 0 };
	uint8_t v = 0x77;
	memset(&b, 0, sizeof(b));
	assert_int_equal(bus_register(&b, 0x3f8, 8, &ops, &d, "a"), 0);
	assert_int_equal(bus_access(&b, 0x3fb, &v, 1, 1), 0);
	assert_int_equal(d.last_off, 3);
	assert_int_equal(d.last_val, 0x77);
	assert_int_equal(bus_access(&b, 0x3fd, &v, 1, 0), 0);
	assert_int_equal(v, 0x45);
	uint8_t w[4];
	assert_int_equal(bus_access(&b, 0x400, w, 4, 0), -ENOENT);
	assert_int_equal(w[0] & w[1] & w[2] & w[3], 0xff);          /* open bus */
	assert_int_equal(bus_access(&b, 0x3f7, &v, 1, 1), -ENOENT);
	assert_int_equal(d.writes, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register),
		cmocka_unit_test(test_dispatch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
