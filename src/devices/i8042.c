/* i8042 keyboard controller at ports 0x60/0x64 (IBM PC/AT technical reference;
 * the command set Linux's i8042 and atkbd drivers use). Reset line: command
 * 0xFE or output-port bit 0 cleared via 0xD1. The keyboard ACKs commands so
 * atkbd binds, and can type Ctrl-Alt-Del for a graceful guest shutdown. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "devices/i8042.h"
#include "state/devices.h"
#include "vmm/vm.h"

#define STS_OBF     0x01
#define STS_SYS     0x04
#define STS_CMD     0x08
#define CB_KBD_INT  0x01
#define CB_SYS      0x04
#define CB_XLATE    0x40
#define KBD_ACK     0xfa
#define IRQ_KBD     1

/* Caller holds the lock. Returns 1 if the guest must be interrupted. */
static int i8042_push(struct i8042 *k, uint8_t v)
{
	if (k->count == I8042_FIFO)
		return 0;
	k->fifo[(k->head + k->count) % I8042_FIFO] = v;
	k->count++;
	k->status |= STS_OBF;
	return k->count == 1 && (k->cmd_byte & CB_KBD_INT);
}

void i8042_init(struct i8042 *k, void (*pulse_irq)(void *), void (*reset)(void *), void *opaque)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->status = STS_SYS;
	k->cmd_byte = CB_KBD_INT | CB_SYS | CB_XLATE;
	k->pulse_irq = pulse_irq;
	k->reset = reset;
	k->opaque = opaque;
}

uint8_t i8042_read_data(struct i8042 *k)
{
	uint8_t v = 0;
	int irq = 0;

	pthread_mutex_lock(&k->lock);
	if (k->count) {
		v = k->fifo[k->head];
		k->head = (k->head + 1) % I8042_FIFO;
		k->count--;
	}
	if (k->count)
		irq = (k->cmd_byte & CB_KBD_INT) != 0; /* next byte is waiting */
	else
		k->status &= (uint8_t)~STS_OBF;
	pthread_mutex_unlock(&k->lock);
	if (irq && k->pulse_irq)
		k->pulse_irq(k->opaque);
	return v;
}

uint8_t i8042_read_status(struct i8042 *k)
{
	pthread_mutex_lock(&k->lock);
	uint8_t v = k->status;
	pthread_mutex_unlock(&k->lock);
	return v;
}

void i8042_write_cmd(struct i8042 *k, uint8_t v)
{
	int irq = 0, reset = 0;

	pthread_mutex_lock(&k->lock);
	k->status |= STS_CMD;
	k->pending_cmd = 0;
	switch (v) {
	case 0x20: irq = i8042_push(k, k->cmd_byte); break;       /* read command byte */
	case 0x60: case 0xd1: case 0xd2: case 0xd3: case 0xd4:
		k->pending_cmd = v;                                /* argument follows */
		break;
	case 0xaa: irq = i8042_push(k, 0x55); break;              /* controller self test */
	case 0xab: irq = i8042_push(k, 0x00); break;              /* keyboard port test */
	case 0xa9: irq = i8042_push(k, 0xff); break;              /* aux port test: no mouse */
	case 0xa7: case 0xa8: case 0xad: case 0xae: break;        /* port enable/disable */
	case 0xd0: irq = i8042_push(k, 0x03); break;              /* output port: A20, no reset */
	case 0xfe: reset = 1; break;                               /* pulse reset line */
	default: break;
	}
	pthread_mutex_unlock(&k->lock);
	if (irq && k->pulse_irq)
		k->pulse_irq(k->opaque);
	if (reset && k->reset)
		k->reset(k->opaque);
}

/* A byte sent to the keyboard itself. */
static int i8042_kbd_command(struct i8042 *k, uint8_t v)
{
	int irq;

	if (k->kbd_pending) {              /* argument of LEDs/typematic/scan set */
		k->kbd_pending = 0;
		return i8042_push(k, KBD_ACK);
	}
	switch (v) {
	case 0xff:                         /* reset: ACK, self-test passed */
		irq = i8042_push(k, KBD_ACK);
		i8042_push(k, 0xaa);
		return irq;
	case 0xf2:                         /* identify: MF2 keyboard */
		irq = i8042_push(k, KBD_ACK);
		i8042_push(k, 0xab);
		i8042_push(k, (k->cmd_byte & CB_XLATE) ? 0x41 : 0x83);
		return irq;
	case 0xee:
		return i8042_push(k, 0xee);  /* echo */
	case 0xed: case 0xf0: case 0xf3:
		k->kbd_pending = v;
		return i8042_push(k, KBD_ACK);
	default:
		return i8042_push(k, KBD_ACK);
	}
}

void i8042_write_data(struct i8042 *k, uint8_t v)
{
	int irq = 0, reset = 0;

	pthread_mutex_lock(&k->lock);
	k->status &= (uint8_t)~STS_CMD;
	switch (k->pending_cmd) {
	case 0x60: k->cmd_byte = v; break;
	case 0xd1: reset = !(v & 1); break;                        /* output port bit 0 = reset */
	case 0xd2: irq = i8042_push(k, v); break;                  /* as if from the keyboard */
	case 0xd3: case 0xd4: break;                               /* no mouse attached */
	default: irq = i8042_kbd_command(k, v); break;
	}
	k->pending_cmd = 0;
	pthread_mutex_unlock(&k->lock);
	if (irq && k->pulse_irq)
		k->pulse_irq(k->opaque);
	if (reset && k->reset)
		k->reset(k->opaque);
}

int i8042_type_ctrl_alt_del(struct i8042 *k)
{
	/* make Ctrl, make Alt, make Del, break Del, break Alt, break Ctrl */
	static const uint8_t set1[] = { 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d };
	static const uint8_t set2[] = { 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71,
					0xf0, 0x11, 0xf0, 0x14 };
	int irq = 0, rc = 0;

	pthread_mutex_lock(&k->lock);
	const uint8_t *codes = (k->cmd_byte & CB_XLATE) ? set1 : set2;
	size_t n = (k->cmd_byte & CB_XLATE) ? sizeof(set1) : sizeof(set2);
	if (I8042_FIFO - k->count < n) {
		rc = -ENOSPC;
	} else {
		for (size_t i = 0; i < n; i++)
			irq |= i8042_push(k, codes[i]);
	}
	pthread_mutex_unlock(&k->lock);
	if (irq && k->pulse_irq)
		k->pulse_irq(k->opaque);
	return rc;
}

int i8042_save(struct i8042 *k, struct snap_buf *b)
{
	pthread_mutex_lock(&k->lock);
	snap_buf_put_u8(b, k->status);
	snap_buf_put_u8(b, k->cmd_byte);
	snap_buf_put_u8(b, k->pending_cmd);
	snap_buf_put_u8(b, k->kbd_pending);
	snap_buf_put_u8(b, (uint8_t)k->count);
	for (unsigned i = 0; i < k->count; i++)
		snap_buf_put_u8(b, k->fifo[(k->head + i) % I8042_FIFO]);
	pthread_mutex_unlock(&k->lock);
	return b->err;
}

int i8042_load(struct i8042 *k, struct snap_cur *c)
{
	uint8_t status = snap_cur_u8(c), cmd_byte = snap_cur_u8(c);
	uint8_t pending_cmd = snap_cur_u8(c), kbd_pending = snap_cur_u8(c);
	unsigned count = snap_cur_u8(c);
	uint8_t fifo[I8042_FIFO];

	if (count > I8042_FIFO)
		return -EINVAL;
	snap_cur_get(c, fifo, count);
	if (snap_cur_end(c))
		return -EINVAL;
	pthread_mutex_lock(&k->lock);
	k->status = status;
	k->cmd_byte = cmd_byte;
	k->pending_cmd = pending_cmd;
	k->kbd_pending = kbd_pending;
	memcpy(k->fifo, fifo, count);
	k->head = 0;
	k->count = count;
	pthread_mutex_unlock(&k->lock);
	return 0;
}

/* --- glue: ports 0x60 and 0x64, IRQ 1, the VM's reset --- */

static struct i8042 *i8042_dev;

static void i8042_pulse(void *opaque)
{
	vm_set_irq(opaque, IRQ_KBD, 1);
	vm_set_irq(opaque, IRQ_KBD, 0);
}

static void i8042_reset_vm(void *opaque)
{
	vm_request_stop(opaque, VM_STOP_RESET, 0, "guest reset via i8042");
}

static void i8042_data_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
	(void)offset;
	(void)size;
	data[0] = i8042_read_data(opaque);
}

static void i8042_data_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
	(void)offset;
	(void)size;
	i8042_write_data(opaque, data[0]);
}

static void i8042_cmd_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
	(void)offset;
	(void)size;
	data[0] = i8042_read_status(opaque);
}

static void i8042_cmd_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
	(void)offset;
	(void)size;
	i8042_write_cmd(opaque, data[0]);
}

/* Separate ranges: 0x61 belongs to the in-kernel PIT's speaker port. */
static const struct bus_ops i8042_data_ops = { .read = i8042_data_read, .write = i8042_data_write };
static const struct bus_ops i8042_cmd_ops = { .read = i8042_cmd_read, .write = i8042_cmd_write };

int i8042_send_ctrl_alt_del(struct vm *vm)
{
	(void)vm;
	if (!i8042_dev)
		return -ENODEV;
	return i8042_type_ctrl_alt_del(i8042_dev);
}

static int i8042_create(struct vm *vm)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	i8042_init(k, i8042_pulse, i8042_reset_vm, vm);
	int rc = bus_register(&vm->pio, PORT_I8042_DATA, 1, &i8042_data_ops, k, "i8042");
	if (!rc)
		rc = bus_register(&vm->pio, PORT_I8042_CMD, 1, &i8042_cmd_ops, k, "i8042");
	if (rc) {
		bus_unregister(&vm->pio, PORT_I8042_DATA, k);
		pthread_mutex_destroy(&k->lock);
		free(k);
		return rc;
	}
	i8042_dev = k;
	return 0;
}

static void i8042_destroy(struct vm *vm)
{
	(void)vm;
	if (i8042_dev)
		pthread_mutex_destroy(&i8042_dev->lock);
	free(i8042_dev);
	i8042_dev = NULL;
}

STATE_SECTION_HOOKS(i8042, "i8042", I8042_STATE_VERSION, i8042_dev)

static const struct device_desc i8042_device = {
	.name = "i8042",
	.create = i8042_create,
	.destroy = i8042_destroy,
	.save = i8042_state_save,
	.load = i8042_state_load,
};
DEVICE_REGISTER(i8042_device);
