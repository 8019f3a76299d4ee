/* Emulation-failure classification: which refused instructions wafer turns
 * into the exception hardware would raise, and which it must report. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/x86/emulate_fixup.h"

#define OSXSAVE (1ull << 18)

static enum fixup_action classify(const uint8_t *b, size_t n, uint64_t cr4, unsigned *len)
{
	*len = 99;
	return emulate_fixup_classify(b, n, cr4, len);
}

static void test_int3(void **state)
{
	(void)state;
	unsigned len;
	const uint8_t int3[] = { 0xcc, 0x90 };
	assert_int_equal(classify(int3, sizeof(int3), 0, &len), FIXUP_BP);
	assert_int_equal(len, 1);
	assert_int_equal(classify(int3, sizeof(int3), OSXSAVE, &len), FIXUP_BP);
	const uint8_t int_n3[] = { 0xcd, 0x03 };       /* int $3 is not int3 */
	assert_int_equal(classify(int_n3, sizeof(int_n3), 0, &len), FIXUP_NONE);
	assert_int_equal(classify(int3, 0, 0, &len), FIXUP_NONE);  /* unreadable */
}

static void test_xsave_family(void **state)
{
	(void)state;
	unsigned len;
	const uint8_t xsave[] = { 0x0f, 0xae, 0x27 };          /* xsave (%rdi) */
	const uint8_t xrstor64[] = { 0x48, 0x0f, 0xae, 0x2f }; /* xrstor64 (%rdi) */
	const uint8_t xgetbv[] = { 0x0f, 0x01, 0xd0 };
	const uint8_t xsaves[] = { 0x0f, 0xc7, 0x2f };         /* xsaves (%rdi) */
	assert_int_equal(classify(xsave, 3, 0, &len), FIXUP_UD);
	assert_int_equal(len, 0);                               /* faults do not advance */
	assert_int_equal(classify(xrstor64, 4, 0, &len), FIXUP_UD);
	assert_int_equal(classify(xgetbv, 3, 0, &len), FIXUP_UD);
	assert_int_equal(classify(xsaves, 3, 0, &len), FIXUP_UD);
	/* With CR4.OSXSAVE set they are legal: nothing to fold, report instead. */
	assert_int_equal(classify(xsave, 3, OSXSAVE, &len), FIXUP_NONE);
	assert_int_equal(classify(xgetbv, 3, OSXSAVE, &len), FIXUP_NONE);
}

static void test_lookalikes(void **state)
{
	(void)state;
	unsigned len;
	const uint8_t mfence[] = { 0x0f, 0xae, 0xf0 };         /* mod=3: a fence */
	const uint8_t cx16[] = { 0x48, 0x0f, 0xc7, 0x0f };     /* cmpxchg16b (%rdi) */
	const uint8_t rdrand[] = { 0x0f, 0xc7, 0xf0 };
	const uint8_t fxsave[] = { 0x0f, 0xae, 0x07 };         /* /0 */
	const uint8_t rdfsbase[] = { 0xf3, 0x48, 0x0f, 0xae, 0xc0 };
	const uint8_t clflush_opt[] = { 0x66, 0x0f, 0xae, 0x3f }; /* clflushopt: prefix 66 */
	const uint8_t short_xsave[] = { 0x0f, 0xae };          /* truncated fetch */
	assert_int_equal(classify(mfence, 3, 0, &len), FIXUP_NONE);
	assert_int_equal(classify(cx16, 4, 0, &len), FIXUP_NONE);
	assert_int_equal(classify(rdrand, 3, 0, &len), FIXUP_NONE);
	assert_int_equal(classify(fxsave, 3, 0, &len), FIXUP_NONE);
	assert_int_equal(classify(rdfsbase, 5, 0, &len), FIXUP_NONE);
	assert_int_equal(classify(clflush_opt, 4, 0, &len), FIXUP_NONE);
	assert_int_equal(classify(short_xsave, 2, 0, &len), FIXUP_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_int3),
		cmocka_unit_test(test_xsave_family),
		cmocka_unit_test(test_lookalikes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
