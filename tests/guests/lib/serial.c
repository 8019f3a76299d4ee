/* Guest library: COM1 16550 driver and printf-lite. Output polls THRE so it
 * also works on a real 16550; a lock keeps lines from different CPUs whole. */
#include <stdint.h>

#include "io.h"
#include "serial.h"

static volatile int print_lock;

static void lock_take(void)
{
	while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&print_lock, __ATOMIC_RELAXED))
			cpu_relax();
}

static void lock_give(void)
{
	__atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE);
}

void serial_init(void)
{
	outb(COM1_BASE + UART_IER, 0);
	outb(COM1_BASE + UART_LCR, 0x80);       /* DLAB on */
	outb(COM1_BASE + UART_RBR, 1);          /* divisor 1: 115200 baud */
	outb(COM1_BASE + UART_IER, 0);
	outb(COM1_BASE + UART_LCR, 0x03);       /* 8N1, DLAB off */
	/* FIFOs on but not cleared: input the VMM queued before we got here
	 * (a test piping stdin) must survive. */
	outb(COM1_BASE + UART_FCR, 0x01);
	outb(COM1_BASE + UART_MCR, 0x03 | UART_MCR_OUT2);
}

static void putc_raw(char c)
{
	/* Emulated UARTs report THRE at once; the bound only matters on a
	 * broken one, where dropping output beats hanging the guest. */
	for (unsigned i = 0; i < 100000; i++)
		if (inb(COM1_BASE + UART_LSR) & UART_LSR_THRE)
			break;
	outb(COM1_BASE + UART_THR, (uint8_t)c);
}

void serial_putc(char c)
{
	if (c == '\n')
		putc_raw('\r');
	putc_raw(c);
}

void serial_puts(const char *s)
{
	lock_take();
	while (*s)
		serial_putc(*s++);
	lock_give();
}

int serial_trygetc(void)
{
	if (!(inb(COM1_BASE + UART_LSR) & UART_LSR_DR))
		return -1;
	return inb(COM1_BASE + UART_RBR);
}

int serial_getc(void)
{
	int c;

	while ((c = serial_trygetc()) < 0)
		cpu_relax();
	return c;
}

static void put_num(unsigned long long v, unsigned base, int neg, int width, char pad)
{
	char buf[24];
	int n = 0;

	do {
		unsigned d = v % base;

		buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v);
	if (neg)
		buf[n++] = '-';
	for (; width > n; width--)
		serial_putc(pad);
	while (n)
		serial_putc(buf[--n]);
}

void vprintf(const char *fmt, va_list ap)
{
	lock_take();
	for (; *fmt; fmt++) {
		int width = 0, lng = 0;
		char pad = ' ';
		unsigned long long u;
		long long s;

		if (*fmt != '%') {
			serial_putc(*fmt);
			continue;
		}
		fmt++;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd':
		case 'i':
			s = lng ? va_arg(ap, long long) : va_arg(ap, int);
			put_num(s < 0 ? -(unsigned long long)s : (unsigned long long)s,
				10, s < 0, width, pad);
			break;
		case 'u':
		case 'x':
			u = lng ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
			put_num(u, *fmt == 'u' ? 10 : 16, 0, width, pad);
			break;
		case 'p':
			serial_putc('0');
			serial_putc('x');
			put_num((uintptr_t)va_arg(ap, void *), 16, 0, width, pad);
			break;
		case 's': {
			const char *str = va_arg(ap, const char *);

			if (!str)
				str = "(null)";
			while (*str)
				serial_putc(*str++);
			break;
		}
		case 'c':
			serial_putc((char)va_arg(ap, int));
			break;
		case '%':
			serial_putc('%');
			break;
		case '\0':
			fmt--;
			break;
		default:
			serial_putc('%');
			serial_putc(*fmt);
			break;
		}
	}
	lock_give();
}

void printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

void serial_break_lock(void)
{
	lock_give();
}
