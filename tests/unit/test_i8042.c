/* i8042 model: controller commands, reset line, keyboard ACKs and IDs,
 * Ctrl-Alt-Del scan codes in both translation modes, IRQ pulses. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/i8042.h"

static int pulses, resets;
static void on_pulse(void *o) { (void)o; pulses++; }
static void on_reset(void *o) { (void)o; resets++; }

static void setup(struct i8042 *k)
{
	pulses = resets = 0;
	i8042_init(k, on_pulse, on_reset, NULL);
}

static void test_controller_commands(void **state)
{
	(void)state;
	struct i8042 k;
	setup(&k);
	assert_int_equal(i8042_read_status(&k) & 0x01, 0);     /* output buffer empty */
	i8042_write_cmd(&k, 0xaa);
	assert_int_equal(i8042_read_status(&k) & 0x01, 1);
	assert_int_equal(i8042_read_data(&k), 0x55);            /* self test passed */
	assert_int_equal(i8042_read_status(&k) & 0x01, 0);
	i8042_write_cmd(&k, 0x60);                              /* write command byte */
	i8042_write_data(&k, 0x45);
	i8042_write_cmd(&k, 0x20);
	assert_int_equal(i8042_read_data(&k), 0x45);
	i8042_write_cmd(&k, 0xa9);                              /* no aux port */
	assert_int_equal(i8042_read_data(&k), 0xff);
	assert_int_equal(resets, 0);
}

static void test_reset_line(void **state)
{
	(void)state;
	struct i8042 k;
	setup(&k);
	i8042_write_cmd(&k, 0xfe);
	assert_int_equal(resets, 1);
	i8042_write_cmd(&k, 0xd1);                              /* write output port */
	i8042_write_data(&k, 0x03);                             /* bit 0 set: no reset */
	assert_int_equal(resets, 1);
	i8042_write_cmd(&k, 0xd1);
	i8042_write_data(&k, 0x02);                             /* bit 0 clear: reset */
	assert_int_equal(resets, 2);
}

static void test_keyboard(void **state)
{
	(void)state;
	struct i8042 k;
	setup(&k);
	i8042_write_data(&k, 0xff);                             /* keyboard reset */
	assert_int_equal(i8042_read_data(&k), 0xfa);
	assert_int_equal(i8042_read_data(&k), 0xaa);
	i8042_write_data(&k, 0xf2);                             /* identify (translated) */
	assert_int_equal(i8042_read_data(&k), 0xfa);
	assert_int_equal(i8042_read_data(&k), 0xab);
	assert_int_equal(i8042_read_data(&k), 0x41);
	i8042_write_data(&k, 0xed);                             /* set LEDs + argument */
	assert_int_equal(i8042_read_data(&k), 0xfa);
	i8042_write_data(&k, 0x07);
	assert_int_equal(i8042_read_data(&k), 0xfa);
	assert_int_equal(i8042_read_status(&k) & 0x01, 0);
	assert_true(pulses >= 4);                               /* interrupts enabled */
}

static void drain(struct i8042 *k, uint8_t *out, unsigned *n)
{
	*n = 0;
	while (i8042_read_status(k) & 0x01)
		out[(*n)++] = i8042_read_data(k);
}

static void test_ctrl_alt_del(void **state)
{
	(void)state;
	struct i8042 k;
	uint8_t got[32];
	unsigned n;
	static const uint8_t set1[] = { 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d };
	static const uint8_t set2[] = { 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14 };

	setup(&k);
	assert_int_equal(i8042_type_ctrl_alt_del(&k), 0);
	assert_int_equal(pulses, 1);
	drain(&k, got, &n);
	assert_int_equal(n, sizeof(set1));
	assert_memory_equal(got, set1, sizeof(set1));
	assert_int_equal(pulses, (int)sizeof(set1));           /* one edge per byte */

	i8042_write_cmd(&k, 0x60);
	i8042_write_data(&k, 0x01);                             /* translation off */
	assert_int_equal(i8042_type_ctrl_alt_del(&k), 0);
	drain(&k, got, &n);
	assert_int_equal(n, sizeof(set2));
	assert_memory_equal(got, set2, sizeof(set2));

	/* a full buffer refuses rather than sending half a key sequence */
	assert_int_equal(i8042_type_ctrl_alt_del(&k), 0);
	assert_int_equal(i8042_type_ctrl_alt_del(&k), -ENOSPC);
	drain(&k, got, &n);
	assert_int_equal(n, sizeof(set2));
}

static void test_no_irq_when_disabled(void **state)
{
	(void)state;
	struct i8042 k;
	setup(&k);
	i8042_write_cmd(&k, 0x60);
	i8042_write_data(&k, 0x00);                             /* keyboard interrupt off */
	pulses = 0;
	i8042_type_ctrl_alt_del(&k);
	assert_int_equal(pulses, 0);
	assert_int_equal(i8042_read_status(&k) & 0x01, 1);      /* still pollable */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_controller_commands),
		cmocka_unit_test(test_reset_line),
		cmocka_unit_test(test_keyboard),
		cmocka_unit_test(test_ctrl_alt_del),
		cmocka_unit_test(test_no_irq_when_disabled),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
