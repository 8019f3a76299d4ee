/* PIO/MMIO bus: registration overlap rules and dispatch offsets. */
#include <errno.h>
#include <pthread.h>
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

static void test_move_unregister(void **state)
{
	(void)state;
	static struct bus b;
	struct dev d1 = { 0 }, d2 = { 0 };
	uint8_t v = 1;
	memset(&b, 0, sizeof(b));
	assert_int_equal(bus_register(&b, 0x1000, 0x100, &ops, &d1, "a"), 0);
	assert_int_equal(bus_register(&b, 0x2000, 0x100, &ops, &d2, "b"), 0);
	/* Moving onto another range is refused and changes nothing. */
	assert_int_equal(bus_move(&b, 0x1000, &d1, 0x1f80), -EEXIST);
	assert_int_equal(bus_access(&b, 0x1010, &v, 1, 1), 0);
	assert_int_equal(d1.last_off, 0x10);
	/* Wrong owner or base: -ENOENT. */
	assert_int_equal(bus_move(&b, 0x1000, &d2, 0x5000), -ENOENT);
	assert_int_equal(bus_move(&b, 0x1001, &d1, 0x5000), -ENOENT);
	assert_int_equal(bus_move(&b, 0x1000, &d1, UINT64_MAX - 0x10), -EINVAL);
	/* A real move: the old range is gone, offsets follow the new base. */
	assert_int_equal(bus_move(&b, 0x1000, &d1, 0x5000), 0);
	assert_int_equal(bus_access(&b, 0x1010, &v, 1, 1), -ENOENT);
	assert_int_equal(bus_access(&b, 0x5020, &v, 1, 1), 0);
	assert_int_equal(d1.last_off, 0x20);
	/* Moving onto an overlapping part of itself is fine. */
	assert_int_equal(bus_move(&b, 0x5000, &d1, 0x5080), 0);
	assert_int_equal(bus_access(&b, 0x5080, &v, 1, 1), 0);
	assert_int_equal(d1.last_off, 0);
	/* Unregister frees the space for someone else. */
	assert_int_equal(bus_unregister(&b, 0x2000, &d1), -ENOENT);
	assert_int_equal(bus_unregister(&b, 0x2000, &d2), 0);
	assert_int_equal(bus_unregister(&b, 0x2000, &d2), -ENOENT);
	assert_int_equal(bus_access(&b, 0x2000, &v, 1, 1), -ENOENT);
	assert_int_equal(b.n, 1);
	assert_int_equal(bus_register(&b, 0x2000, 0x100, &ops, &d2, "b"), 0);
}

/* A vCPU-like reader while another thread moves a range back and forth:
 * every access lands either at the old or the new place, never elsewhere. */
struct race { struct bus *b; _Atomic int stop; unsigned moves, bad; };

static void *race_mover(void *arg)
{
	struct race *r = arg;
	while (!atomic_load(&r->stop)) {
		uint64_t from = r->moves & 1 ? 0x9000 : 0x8000, to = r->moves & 1 ? 0x8000 : 0x9000;
		if (bus_move(r->b, from, r, to))
			r->bad++;
		r->moves++;
	}
	return NULL;
}

static void race_read(void *o, uint64_t off, uint8_t *d, unsigned size)
{
	(void)o; (void)size;
	d[0] = off < 0x100 ? 0x11 : 0xee;
}
static const struct bus_ops race_ops = { race_read, NULL };

static void test_concurrent_move(void **state)
{
	(void)state;
	static struct bus b;
	static struct race r;
	pthread_t t;
	memset(&b, 0, sizeof(b));
	memset(&r, 0, sizeof(r));
	r.b = &b;
	assert_int_equal(bus_register(&b, 0x8000, 0x100, &race_ops, &r, "r"), 0);
	assert_int_equal(pthread_create(&t, NULL, race_mover, &r), 0);
	for (unsigned i = 0; i < 200000; i++) {
		uint8_t v;
		if (bus_access(&b, 0x8010, &v, 1, 0) == 0) {
			assert_int_equal(v, 0x11);
		} else {
			assert_int_equal(v, 0xff);
		}
	}
	atomic_store(&r.stop, 1);
	pthread_join(t, NULL);
	assert_int_equal(r.bad, 0);
	assert_int_equal(b.n, 1);
	assert_int_equal(b.r[0].base, r.moves & 1 ? 0x9000 : 0x8000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register),
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_move_unregister),
		cmocka_unit_test(test_concurrent_move),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
