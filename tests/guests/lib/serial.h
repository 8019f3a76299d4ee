/* Guest library: 16550 UART on COM1 (polled output, polled or interrupt-driven
 * input) and a small printf. Usable from ring 3 when IOPL is 3. */
#ifndef GUEST_SERIAL_H
#define GUEST_SERIAL_H

#include <stdarg.h>

#define COM1_BASE 0x3f8
#define COM1_IRQ  4

/* UART register offsets and bits we use. */
#define UART_RBR 0
#define UART_THR 0
#define UART_IER 1
#define UART_IIR 2
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_LSR_DR   0x01  /* receive data ready */
#define UART_LSR_THRE 0x20  /* transmit holding register empty */
#define UART_IER_RDI  0x01  /* receive data interrupt */
#define UART_MCR_OUT2 0x08  /* gates the IRQ line on PC UARTs */

void serial_init(void);
void serial_putc(char c);
void serial_puts(const char *s);
/* Blocks (polling LSR) until a byte arrives. */
int serial_getc(void);
/* Non-blocking: the byte, or -1 when none is waiting. */
int serial_trygetc(void);

/* printf subset: %d %i %u %x %lx %ld %lu %llu %llx %s %c %p %%, with an
 * optional '0' flag and field width. Output is serialized across CPUs. */
void printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vprintf(const char *fmt, va_list ap);

/* For fatal paths only (exception handlers): drop the output lock in case the
 * faulting code held it, so the report still gets out. */
void serial_break_lock(void);

#endif

