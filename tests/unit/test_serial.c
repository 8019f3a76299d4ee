/* 16550A register model: THR output, RX FIFO and overflow, interrupt
 * identification and line level, DLAB, loopback, LSR/MSR bits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/serial.h"

struct sink {
	uint8_t out[256];
	size_t n;
	int irq;
	int irq_changes;
};

static void sink_tx(void *opaque, uint8_t b)
{
	struct sink *s = opaque;
	if (s->n < sizeof(s->out))
		s->out[s->n++] = b;
}

static void sink_irq(void *opaque, int level)
{
	struct sink *s = opaque;
	s->irq = level;
	s->irq_changes++;
}

static void setup(struct serial *u, struct sink *k)
{
	memset(k, 0, sizeof(*k));
	serial_init(u, sink_tx, sink_irq, k);
}

static void test_thr_output(void **state)
{
	(void)state;
	struct serial u;
	struct sink k;
	setup(&u, &k);
	serial_write(&u, 0, 'h');
	serial_write(&u, 0, 'i');
	assert_int_equal(k.n, 2);
	assert_memory_equal(k.out, "hi", 2);
	/* THR empty and transmitter empty after every write */
	assert_int_equal(serial_read(&u, 5) & 0x60, 0x60);
	assert_int_equal(k.irq, 0); /* no interrupts enabled */
}

static void test_dlab(void **state)
{
	(void)state;
	struct serial u;
	struct sink k;
	setup(&u, &k);
	serial_write(&u, 3, 0x80);       /* DLAB on */
	serial_write(&u, 0, 0x01);       /* DLL */
	serial_write(&u, 1, 0x02);       /* DLM */
	assert_int_equal(k.n, 0);        /* divisor writes are not output */
	assert_int_equal(serial_read(&u, 0), 0x01);
	assert_int_equal(serial_read(&u, 1), 0x02);
	serial_write(&u, 3, 0x03);       /* DLAB off, 8N1 */
	assert_int_equal(serial_read(&u, 3), 0x03);
	assert_int_equal(serial_read(&u, 1), 0x00); /* IER, not DLM */
}

static void test_rx_fifo_and_irq(void **state)
{
	(void)state;
	struct serial u;
	struct sink k;
	setup(&u, &k);
	assert_int_equal(serial_read(&u, 5) & 0x01, 0);       /* no data */
	assert_int_equal(serial_receive(&u, (const uint8_t *)"ab", 2), 2);
	assert_int_equal(serial_read(&u, 5) & 0x01, 0x01);    /* data ready */
	assert_int_equal(k.irq, 0);                           /* RDI not enabled yet */
	serial_write(&u, 1, 0x01);                            /* IER: RDI */
	assert_int_equal(k.irq, 1);
	assert_int_equal(serial_read(&u, 2) & 0x0f, 0x04);    /* IIR: RX data */
	assert_int_equal(serial_read(&u, 0), 'a');
	assert_int_equal(k.irq, 1);
	assert_int_equal(serial_read(&u, 0), 'b');
	assert_int_equal(k.irq, 0);                           /* drained: line drops */
	assert_int_equal(serial_read(&u, 2) & 0x0f, 0x01);    /* no interrupt pending */
	assert_int_equal(serial_read(&u, 0), 0);              /* empty FIFO reads 0 */
}

static void test_rx_overflow(void **state)
{
	(void)state;
	struct serial u;
	struct sink k;
	uint8_t buf[SERIAL_FIFO_SIZE + 10];
	setup(&u, &k);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(serial_receive(&u, buf, sizeof(buf)), SERIAL_FIFO_SIZE);
	assert_int_equal(serial_rx_space(&u), 0);
	assert_int_equal(serial_receive(&u, buf, 1), 0);
	for (unsigned i = 0; i < SERIAL_FIFO_SIZE; i++)
		assert_int_equal(serial_read(&u, 0), (uint8_t)i);  /* order kept */
	assert_int_equal(serial_rx_space(&u), SERIAL_FIFO_SIZE);
}

static void test_thri(void **state)
{
	(void)state;
	struct serial u;
	struct sink k;
	setup(&u, &k);
	serial_write(&u, 1, 0x02);                            /* enable THRI */
	assert_int_equal(k.irq, 1);                           /* THR already empty */
	assert_int_equal(serial_read(&u, 2) & 0x0f, 0x02);    /* IIR: THR empty */
	assert_int_equal(k.irq, 0);                           /* IIR read acknowledged it */
	assert_int_equal(serial_read(&u, 2) & 0x0f, 0x01);
	serial_write(&u, 0, 'x');
	assert_int_equal(k.irq, 1);                           /* empty again after TX */
	/* RX data has priority over THR empty */
	serial_write(&u, 1, 0x03);
	serial_receive(&u, (const uint8_t *)"z", 1);
	assert_int_equal(serial_read(&u, 2) & 0x0f, 0x04);
	serial_write(&u, 1, 0x00);
	assert_int_equal(k.irq, 0);                           /* IER cleared: line low */
}

static void test_loopback(void **state)
{
	(void)state;
	struct serial u;
	struct sink k;
	setup(&u, &k);
	serial_write(&u, 4, 0x10 | 0x0a);                     /* LOOP | RTS | OUT2 */
	uint8_t msr = serial_read(&u, 6);
	assert_int_equal(msr & 0xf0, 0x10 | 0x80);            /* CTS from RTS, DCD from OUT2 */
	serial_write(&u, 0, 0x5a);
	assert_int_equal(k.n, 0);                             /* not sent to the host */
	assert_int_equal(serial_read(&u, 0), 0x5a);           /* came back in */
	serial_write(&u, 4, 0x00);
	assert_int_equal(serial_read(&u, 6) & 0xb0, 0xb0);    /* normal modem status */
}

static void test_fifo_iir_and_scratch(void **state)
{
	(void)state;
	struct serial u;
	struct sink k;
	setup(&u, &k);
	serial_write(&u, 2, 0x07);                            /* enable + clear FIFOs */
	assert_int_equal(serial_read(&u, 2) & 0xc0, 0xc0);    /* 16550A: FIFOs enabled */
	serial_write(&u, 7, 0xa5);
	assert_int_equal(serial_read(&u, 7), 0xa5);
	serial_receive(&u, (const uint8_t *)"abc", 3);
	serial_write(&u, 2, 0x03);                            /* clear RX FIFO */
	assert_int_equal(serial_read(&u, 5) & 0x01, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thr_output),
		cmocka_unit_test(test_dlab),
		cmocka_unit_test(test_rx_fifo_and_irq),
		cmocka_unit_test(test_rx_overflow),
		cmocka_unit_test(test_thri),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_fifo_iir_and_scratch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
