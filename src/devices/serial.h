/* 16550A UART model (National Semiconductor PC16550D data sheet): register
 * file, 16-byte receive FIFO, THR-empty and RX-data interrupts, loopback. The
 * model is independent of KVM so it can be unit-tested. */
#ifndef WAFER_DEVICES_SERIAL_H
#define WAFER_DEVICES_SERIAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define SERIAL_FIFO_SIZE 64

struct serial {
	pthread_mutex_t lock;
	uint8_t ier, iir_fcr, lcr, mcr, lsr, msr, scr, dll, dlm;
	uint8_t fcr;
	int thr_ipending;      /* THR-empty interrupt pending until IIR read or THR write */
	uint8_t rx[SERIAL_FIFO_SIZE];
	unsigned rx_head, rx_count;
	int irq_level;         /* last level driven on the line */
	/* Backends, called with lock held: tx one byte to the host side; drive the IRQ line. */
	void (*tx)(void *opaque, uint8_t byte);
	void (*set_irq)(void *opaque, int level);
	void *opaque;
	uint64_t tx_bytes, rx_bytes, rx_dropped;
	_Atomic int mirror_fd;   /* an attached console client also gets the output; -1: none */
};

void serial_init(struct serial *s, void (*tx)(void *, uint8_t),
		 void (*set_irq)(void *, int), void *opaque);
/* Register access at offset 0..7. */
uint8_t serial_read(struct serial *s, unsigned offset);
void serial_write(struct serial *s, unsigned offset, uint8_t value);
/* Host -> guest bytes; returns how many fit in the receive FIFO. */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);
/* Free space in the receive FIFO. */
size_t serial_rx_space(struct serial *s);

/* Snapshot payload (state/devices.c frames it as section "serial"): the
 * register file, receive FIFO, pending THR interrupt and line level. */
#define SERIAL_STATE_VERSION 1
struct snap_buf;
struct snap_cur;
int serial_save(struct serial *s, struct snap_buf *b);
/* All or nothing: -EINVAL leaves s unchanged; 0 drives the line as saved. */
int serial_load(struct serial *s, struct snap_cur *c);

#endif
