/* Flag value parsing: sizes and bounded integers, including overflow. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/parse.h"

static void test_sizes(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(parse_size("512M", &v), 0);
	assert_true(v == 512ull << 20);
	assert_int_equal(parse_size("2G", &v), 0);
	assert_true(v == 2ull << 30);
	assert_int_equal(parse_size("64k", &v), 0);
	assert_true(v == 65536);
	assert_int_equal(parse_size("1GiB", &v), 0);
	assert_true(v == 1ull << 30);
	assert_int_equal(parse_size("4096", &v), 0);
	assert_true(v == 4096);
	assert_int_equal(parse_size("", &v), -EINVAL);
	assert_int_equal(parse_size("M", &v), -EINVAL);
	assert_int_equal(parse_size("12Q", &v), -EINVAL);
	assert_int_equal(parse_size("12MX", &v), -EINVAL);
	assert_int_equal(parse_size("-1G", &v), -EINVAL);
	assert_int_equal(parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(parse_size("17179869184G", &v), -ERANGE);  /* 2^34 GiB = 2^64 */
	assert_int_equal(parse_size("16777215T", &v), 0);
}

static void test_uints(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(parse_uint("4", 1, 8, &v), 0);
	assert_true(v == 4);
	assert_int_equal(parse_uint("0", 1, 8, &v), -ERANGE);
	assert_int_equal(parse_uint("9", 1, 8, &v), -ERANGE);
	assert_int_equal(parse_uint("4x", 1, 8, &v), -EINVAL);
	assert_int_equal(parse_uint("", 1, 8, &v), -EINVAL);
	assert_int_equal(parse_uint("+4", 1, 8, &v), -EINVAL);
	assert_int_equal(parse_uint("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
}

static void test_format(void **state)
{
	(void)state;
	char b[32];
	assert_string_equal(format_size(512ull << 20, b, sizeof(b)), "512 MiB");
	assert_string_equal(format_size(1536ull << 20, b, sizeof(b)), "1.5 GiB");
	assert_string_equal(format_size(100, b, sizeof(b)), "100 B");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_uints),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
