/* 16550A UART on COM1 (PC16550D data sheet): the register model plus its glue
 * to the PIO bus, the in-kernel irqchip (IRQ 4) and the console backend. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/serial.h"
#include "arch/x86/layout.h"
#include "state/devices.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#define UART_IER_RDI   0x01
#define UART_IER_THRI  0x02
#define UART_IIR_NONE  0x01
#define UART_IIR_THRI  0x02
#define UART_IIR_RDI   0x04
#define UART_IIR_FIFO  0xc0
#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLEAR_RX 0x02
#define UART_LCR_DLAB  0x80
#define UART_MCR_LOOP  0x10
#define UART_LSR_DR    0x01
#define UART_LSR_OE    0x02
#define UART_LSR_THRE  0x20
#define UART_LSR_TEMT  0x40

static void serial_update_irq(struct serial *s)
{
	int level = ((s->ier & UART_IER_RDI) && s->rx_count) ||
		    ((s->ier & UART_IER_THRI) && s->thr_ipending);
	if (level != s->irq_level) {
		s->irq_level = level;
		if (s->set_irq)
			s->set_irq(s->opaque, level);
	}
}

static int serial_rx_push(struct serial *s, uint8_t b)
{
	if (s->rx_count == SERIAL_FIFO_SIZE) {
		s->lsr |= UART_LSR_OE;
		s->rx_dropped++;
		return 0;
	}
	s->rx[(s->rx_head + s->rx_count) % SERIAL_FIFO_SIZE] = b;
	s->rx_count++;
	s->rx_bytes++;
	return 1;
}

void serial_init(struct serial *s, void (*tx)(void *, uint8_t),
		 void (*set_irq)(void *, int), void *opaque)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->lsr = UART_LSR_THRE | UART_LSR_TEMT;
	s->msr = 0xb0; /* DCD, DSR, CTS: a connected terminal */
	s->tx = tx;
	s->set_irq = set_irq;
	s->opaque = opaque;
	s->mirror_fd = -1;
}

uint8_t serial_read(struct serial *s, unsigned offset)
{
	uint8_t v = 0;

	pthread_mutex_lock(&s->lock);
	switch (offset) {
	case 0:
		if (s->lcr & UART_LCR_DLAB) {
			v = s->dll;
		} else if (s->rx_count) {
			v = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_SIZE;
			s->rx_count--;
		}
		break;
	case 1:
		v = (s->lcr & UART_LCR_DLAB) ? s->dlm : s->ier;
		break;
	case 2:
		if ((s->ier & UART_IER_RDI) && s->rx_count) {
			v = UART_IIR_RDI;
		} else if ((s->ier & UART_IER_THRI) && s->thr_ipending) {
			v = UART_IIR_THRI;
			s->thr_ipending = 0; /* reading IIR acknowledges THR empty */
		} else {
			v = UART_IIR_NONE;
		}
		if (s->fcr & UART_FCR_ENABLE)
			v |= UART_IIR_FIFO;
		break;
	case 3:
		v = s->lcr;
		break;
	case 4:
		v = s->mcr;
		break;
	case 5:
		v = s->lsr | (s->rx_count ? UART_LSR_DR : 0);
		s->lsr &= (uint8_t)~UART_LSR_OE; /* error bits clear on read */
		break;
	case 6:
		if (s->mcr & UART_MCR_LOOP) {
			/* Loopback: modem outputs feed the modem inputs (DTR->DSR,
			 * RTS->CTS, OUT1->RI, OUT2->DCD). */
			v = (uint8_t)(((s->mcr & 0x01) << 5) | ((s->mcr & 0x02) << 3) |
				      ((s->mcr & 0x04) << 4) | ((s->mcr & 0x08) << 4));
		} else {
			v = s->msr;
		}
		break;
	case 7:
		v = s->scr;
		break;
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return v;
}

void serial_write(struct serial *s, unsigned offset, uint8_t value)
{
	pthread_mutex_lock(&s->lock);
	switch (offset) {
	case 0:
		if (s->lcr & UART_LCR_DLAB) {
			s->dll = value;
			break;
		}
		if (s->mcr & UART_MCR_LOOP) {
			serial_rx_push(s, value);
		} else {
			s->tx_bytes++;
			if (s->tx)
				s->tx(s->opaque, value);
		}
		/* Transmission is instantaneous: THR is empty again at once. */
		s->thr_ipending = 1;
		break;
	case 1:
		if (s->lcr & UART_LCR_DLAB) {
			s->dlm = value;
			break;
		}
		if ((value & UART_IER_THRI) && !(s->ier & UART_IER_THRI))
			s->thr_ipending = 1;
		s->ier = value & 0x0f;
		break;
	case 2:
		s->fcr = value & (UART_FCR_ENABLE | 0xc0);
		if (value & UART_FCR_CLEAR_RX) {
			s->rx_head = 0;
			s->rx_count = 0;
		}
		break;
	case 3:
		s->lcr = value;
		break;
	case 4:
		s->mcr = value & 0x1f;
		break;
	case 7:
		s->scr = value;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	while (n < len && s->rx_count < SERIAL_FIFO_SIZE)
		serial_rx_push(s, buf[n++]);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t serial_rx_space(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	size_t n = SERIAL_FIFO_SIZE - s->rx_count;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int serial_save(struct serial *s, struct snap_buf *b)
{
	pthread_mutex_lock(&s->lock);
	const uint8_t regs[] = { s->ier, s->lcr, s->mcr, s->lsr, s->msr, s->scr, s->dll, s->dlm,
				 s->fcr, (uint8_t)!!s->thr_ipending, (uint8_t)!!s->irq_level };
	snap_buf_put(b, regs, sizeof(regs));
	/* The FIFO oldest byte first, so the loader needs no head index. */
	snap_buf_put_u8(b, (uint8_t)s->rx_count);
	for (unsigned i = 0; i < s->rx_count; i++)
		snap_buf_put_u8(b, s->rx[(s->rx_head + i) % SERIAL_FIFO_SIZE]);
	pthread_mutex_unlock(&s->lock);
	return b->err;
}

int serial_load(struct serial *s, struct snap_cur *c)
{
	uint8_t regs[11], rx[SERIAL_FIFO_SIZE];

	snap_cur_get(c, regs, sizeof(regs));
	unsigned count = snap_cur_u8(c);
	if (count > SERIAL_FIFO_SIZE || regs[9] > 1 || regs[10] > 1)
		return -EINVAL;
	snap_cur_get(c, rx, count);
	if (snap_cur_end(c))
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->ier = regs[0] & 0x0f;
	s->lcr = regs[1];
	s->mcr = regs[2] & 0x1f;
	s->lsr = regs[3];
	s->msr = regs[4];
	s->scr = regs[5];
	s->dll = regs[6];
	s->dlm = regs[7];
	s->fcr = regs[8] & (UART_FCR_ENABLE | 0xc0);
	s->thr_ipending = regs[9];
	memcpy(s->rx, rx, count);
	s->rx_head = 0;
	s->rx_count = count;
	s->irq_level = regs[10];
	if (s->set_irq)
		s->set_irq(s->opaque, s->irq_level);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* --- glue: COM1 on the PIO bus, output to the console fd, IRQ 4 --- */

static int serial_out_fd = STDOUT_FILENO;

static void serial_tx_stdout(void *opaque, uint8_t byte)
{
	struct vm *vm = opaque;
	/* Guest output must not be lost to a short write; a closed stdout
	 * (EPIPE) only loses the console, never the VM. */
	while (write(serial_out_fd, &byte, 1) < 0 && errno == EINTR)
		;
	/* An attached API console client must never stall the vCPU: a full
	 * socket drops the byte for that client only. */
	int fd = vm->console ? atomic_load(&vm->console->mirror_fd) : -1;
	if (fd >= 0)
		(void)!send(fd, &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void serial_set_irq(void *opaque, int level)
{
	vm_set_irq(opaque, IRQ_COM1, level);
}

static void serial_pio_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
	(void)size;
	data[0] = serial_read(opaque, (unsigned)offset);
}

static void serial_pio_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
	(void)size;
	serial_write(opaque, (unsigned)offset, data[0]);
}

static const struct bus_ops serial_bus_ops = {
	.read = serial_pio_read,
	.write = serial_pio_write,
};

static int serial_create(struct vm *vm)
{
	struct serial *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	serial_init(s, serial_tx_stdout, serial_set_irq, vm);
	int rc = bus_register(&vm->pio, PORT_COM1, 8, &serial_bus_ops, s, "com1");
	if (rc) {
		free(s);
		return rc;
	}
	vm->console = s;
	return 0;
}

static void serial_destroy(struct vm *vm)
{
	if (vm->console)
		pthread_mutex_destroy(&vm->console->lock);
	free(vm->console);
	vm->console = NULL;
}

STATE_SECTION_HOOKS(serial, "serial", SERIAL_STATE_VERSION, vm->console)

static const struct device_desc serial_device = {
	.name = "serial",
	.create = serial_create,
	.destroy = serial_destroy,
	.save = serial_state_save,
	.load = serial_state_load,
};
DEVICE_REGISTER(serial_device);
