/* Token-bucket rate limiter with a fake clock: continuous refill, one-time
 * burst, unlimited buckets, over-sized requests (debt), both buckets at once,
 * run-time updates and wait_ns. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "backends/ratelimit.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define T0 (5 * SEC)   /* not zero: the clock is arbitrary */

static struct ratelimit limiter(uint64_t bsize, uint64_t bburst, uint64_t osize, uint64_t oburst)
{
	struct ratelimit rl;
	struct ratelimit_config c = { .bytes = { bsize, bburst, 1000 }, .ops = { osize, oburst, 1000 } };
	ratelimit_init(&rl, &c, T0);
	return rl;
}

static void test_unlimited(void **state)
{
	(void)state;
	struct ratelimit rl = limiter(0, 0, 0, 0);
	assert_false(ratelimit_enabled(&rl));
	for (int i = 0; i < 1000; i++)
		assert_true(ratelimit_consume(&rl, 1ull << 40, 1000, T0));
	assert_int_equal(ratelimit_wait_ns(&rl, 1ull << 40, 1, T0), 0);
	/* refill_time 0 also means unlimited (Firecracker rejects such a bucket). */
	struct ratelimit_config c = { .ops = { 10, 0, 0 } };
	ratelimit_init(&rl, &c, T0);
	assert_false(ratelimit_enabled(&rl));
}

static void test_ops_refill(void **state)
{
	(void)state;
	struct ratelimit rl = limiter(0, 0, 10, 0);   /* 10 ops/s */
	assert_true(ratelimit_enabled(&rl));
	for (int i = 0; i < 10; i++)
		assert_true(ratelimit_consume(&rl, 4096, 1, T0));
	assert_false(ratelimit_consume(&rl, 4096, 1, T0));
	/* One op takes 100 ms to come back. */
	assert_int_equal(ratelimit_wait_ns(&rl, 0, 1, T0), 100 * MS);
	assert_false(ratelimit_consume(&rl, 0, 1, T0 + 99 * MS));
	assert_int_equal(ratelimit_wait_ns(&rl, 0, 1, T0 + 99 * MS), 1 * MS);
	assert_true(ratelimit_consume(&rl, 0, 1, T0 + 100 * MS));
	assert_false(ratelimit_consume(&rl, 0, 1, T0 + 100 * MS));
	/* Partial time is not lost: 150 ms + 50 ms make the next token. */
	assert_false(ratelimit_consume(&rl, 0, 1, T0 + 150 * MS));
	assert_true(ratelimit_consume(&rl, 0, 1, T0 + 200 * MS));
	/* A long idle period refills only up to size. */
	uint64_t t = T0 + 100 * SEC;
	for (int i = 0; i < 10; i++)
		assert_true(ratelimit_consume(&rl, 0, 1, t));
	assert_false(ratelimit_consume(&rl, 0, 1, t));
}

static void test_bytes_rate(void **state)
{
	(void)state;
	struct ratelimit rl = limiter(1000000, 0, 0, 0);   /* 1 MB/s */
	uint64_t t = T0, sent = 0;
	/* Drive it for 10 simulated seconds, waiting exactly as told. */
	while (t < T0 + 10 * SEC) {
		if (ratelimit_consume(&rl, 4096, 1, t)) {
			sent += 4096;
			continue;
		}
		uint64_t w = ratelimit_wait_ns(&rl, 4096, 1, t);
		assert_true(w > 0);
		t += w;
	}
	/* 1 MB initial bucket + 10 s of refill, give or take one request. */
	assert_true(sent >= 11000000 - 4096 && sent <= 11000000 + 4096);
}

static void test_burst(void **state)
{
	(void)state;
	struct ratelimit rl = limiter(0, 0, 5, 3);
	/* size + one_time_burst at first... */
	for (int i = 0; i < 8; i++)
		assert_true(ratelimit_consume(&rl, 0, 1, T0));
	assert_false(ratelimit_consume(&rl, 0, 1, T0));
	/* ...but the burst never comes back. */
	uint64_t t = T0 + 60 * SEC;
	for (int i = 0; i < 5; i++)
		assert_true(ratelimit_consume(&rl, 0, 1, t));
	assert_false(ratelimit_consume(&rl, 0, 1, t));
}

static void test_big_request(void **state)
{
	(void)state;
	struct ratelimit rl = limiter(1000, 0, 0, 0);
	/* 3000 bytes through a 1000-byte bucket: allowed when full, then the
	 * bucket is 2000 in debt and the next byte waits 2 s + 1 ms
	 * from then. */
	assert_true(ratelimit_consume(&rl, 3000, 1, T0));
	assert_false(ratelimit_consume(&rl, 1, 1, T0 + SEC));
	assert_int_equal(ratelimit_wait_ns(&rl, 1, 1, T0 + SEC), 1001 * MS);
	assert_false(ratelimit_consume(&rl, 1, 1, T0 + 2000 * MS));
	assert_true(ratelimit_consume(&rl, 1, 1, T0 + 2001 * MS));
	/* When not full, a big request waits for a full bucket, not forever. */
	uint64_t w = ratelimit_wait_ns(&rl, 5000, 1, T0 + 2001 * MS);
	assert_int_equal(w, 1000 * MS);
	assert_false(ratelimit_consume(&rl, 5000, 1, T0 + 2001 * MS + w - 1));
	assert_true(ratelimit_consume(&rl, 5000, 1, T0 + 2001 * MS + w));
}

static void test_both_buckets(void **state)
{
	(void)state;
	struct ratelimit rl = limiter(1000, 0, 2, 0);
	assert_true(ratelimit_consume(&rl, 600, 1, T0));
	/* Bytes refuse: the op bucket must not be charged for it. */
	assert_false(ratelimit_consume(&rl, 600, 1, T0));
	assert_true(ratelimit_consume(&rl, 400, 1, T0));
	/* Now ops refuse (2 used) though bytes would refill in time. */
	assert_int_equal(ratelimit_wait_ns(&rl, 100, 1, T0), 500 * MS);
	assert_int_equal(ratelimit_wait_ns(&rl, 500, 1, T0), 500 * MS);
	assert_int_equal(ratelimit_wait_ns(&rl, 800, 1, T0), 800 * MS);
}

static void test_update(void **state)
{
	(void)state;
	struct ratelimit rl = limiter(0, 0, 10, 0);
	for (int i = 0; i < 10; i++)
		assert_true(ratelimit_consume(&rl, 0, 1, T0));
	/* Same config: state kept (still empty). */
	struct ratelimit_config same = { .ops = { 10, 0, 1000 } };
	ratelimit_update(&rl, &same, T0);
	assert_false(ratelimit_consume(&rl, 0, 1, T0));
	/* Faster refill: the empty bucket stays empty but refills at 100/s. */
	struct ratelimit_config fast = { .ops = { 100, 0, 1000 } };
	ratelimit_update(&rl, &fast, T0);
	assert_false(ratelimit_consume(&rl, 0, 1, T0));
	assert_int_equal(ratelimit_wait_ns(&rl, 0, 1, T0), 10 * MS);
	assert_true(ratelimit_consume(&rl, 0, 1, T0 + 10 * MS));
	/* Disable: everything passes. */
	struct ratelimit_config off = { 0 };
	ratelimit_update(&rl, &off, T0 + 10 * MS);
	assert_false(ratelimit_enabled(&rl));
	assert_true(ratelimit_consume(&rl, 1ull << 30, 1000, T0 + 10 * MS));
	/* Enabling from unlimited starts full, with the new burst. */
	struct ratelimit_config on = { .ops = { 2, 1, 1000 } };
	ratelimit_update(&rl, &on, T0 + 10 * MS);
	for (int i = 0; i < 3; i++)
		assert_true(ratelimit_consume(&rl, 0, 1, T0 + 10 * MS));
	assert_false(ratelimit_consume(&rl, 0, 1, T0 + 10 * MS));
	/* Shrinking caps the budget at the new size. */
	struct ratelimit_config big = { .ops = { 100, 0, 1000 } };
	ratelimit_update(&rl, &big, T0 + 10 * MS);
	ratelimit_update(&rl, &big, T0 + 20 * SEC);    /* refill to full (100) */
	struct ratelimit_config small = { .ops = { 4, 0, 1000 } };
	ratelimit_update(&rl, &small, T0 + 20 * SEC);
	for (int i = 0; i < 4; i++)
		assert_true(ratelimit_consume(&rl, 0, 1, T0 + 20 * SEC));
	assert_false(ratelimit_consume(&rl, 0, 1, T0 + 20 * SEC));
}

static void test_clock_backwards(void **state)
{
	(void)state;
	struct ratelimit rl = limiter(0, 0, 1, 0);
	assert_true(ratelimit_consume(&rl, 0, 1, T0));
	assert_false(ratelimit_consume(&rl, 0, 1, T0 - SEC));
	assert_true(ratelimit_wait_ns(&rl, 0, 1, T0 - SEC) > 0);
	assert_true(ratelimit_consume(&rl, 0, 1, T0 + SEC));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unlimited),
		cmocka_unit_test(test_ops_refill),
		cmocka_unit_test(test_bytes_rate),
		cmocka_unit_test(test_burst),
		cmocka_unit_test(test_big_request),
		cmocka_unit_test(test_both_buckets),
		cmocka_unit_test(test_update),
		cmocka_unit_test(test_clock_backwards),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
