/* i8042 keyboard controller, only as far as the platform needs it: the CPU
 * reset line (command 0xFE, or output-port bit 0 cleared via 0xD1), the
 * controller self-test and command byte so guest drivers probe cleanly. No
 * keyboard or mouse is attached. */
#include <errno.h>
#include <stdlib.h>

#include "arch/x86/layout.h"
#include "vmm/vm.h"

#define I8042_STS_OBF   0x01
#define I8042_STS_SYS   0x04
#define I8042_STS_CMD   0x08

struct i8042 {
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t status, cmd_byte, out, pending_cmd;
};

static void i8042_output(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->status |= I8042_STS_OBF;
}

static void i8042_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
	struct i8042 *k = opaque;
	(void)size;
	pthread_mutex_lock(&k->lock);
	if (offset == 0) { /* port 0x60 */
		data[0] = k->out;
		k->status &= (uint8_t)~I8042_STS_OBF;
	} else if (offset == 4) { /* port 0x64 */
		data[0] = k->status;
	}
	pthread_mutex_unlock(&k->lock);
}

static void i8042_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
	struct i8042 *k = opaque;
	uint8_t v = data[0];
	int reset = 0;
	(void)size;

	pthread_mutex_lock(&k->lock);
	if (offset == 4) {
		k->status |= I8042_STS_CMD;
		k->pending_cmd = 0;
		switch (v) {
		case 0x20: i8042_output(k, k->cmd_byte); break; /* read command byte */
		case 0x60: case 0xd1: case 0xd2: case 0xd3: case 0xd4:
			k->pending_cmd = v; /* next data byte is the argument */
			break;
		case 0xaa: i8042_output(k, 0x55); break;        /* controller self test */
		case 0xa9: case 0xab: i8042_output(k, 0x00); break; /* port tests pass */
		case 0xca: i8042_output(k, 0x00); break;
		case 0xfe: reset = 1; break;                    /* pulse reset line */
		default: break;                                 /* enable/disable ports etc. */
		}
	} else if (offset == 0) {
		k->status &= (uint8_t)~I8042_STS_CMD;
		switch (k->pending_cmd) {
		case 0x60: k->cmd_byte = v; break;
		case 0xd1: reset = !(v & 1); break;            /* output port bit 0 = reset */
		case 0xd2: case 0xd3: i8042_output(k, v); break; /* echo as if from a device */
		default: break;                                 /* no keyboard attached */
		}
		k->pending_cmd = 0;
	}
	pthread_mutex_unlock(&k->lock);
	if (reset)
		vm_request_stop(k->vm, VM_STOP_RESET, 0, "guest reset via i8042");
}

/* Ports 0x60 and 0x64 are separate ranges (0x61 belongs to the in-kernel
 * PIT's speaker port); the command port's ops add 4 to the offset. */
static void i8042_cmd_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
	i8042_read(opaque, offset + 4, data, size);
}

static void i8042_cmd_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
	i8042_write(opaque, offset + 4, data, size);
}

static const struct bus_ops i8042_data_ops = { .read = i8042_read, .write = i8042_write };
static const struct bus_ops i8042_cmd_ops = { .read = i8042_cmd_read, .write = i8042_cmd_write };

static struct i8042 *i8042_dev;

static int i8042_create(struct vm *vm)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->vm = vm;
	pthread_mutex_init(&k->lock, NULL);
	k->status = I8042_STS_SYS;
	k->cmd_byte = 0x01 | 0x04; /* kbd interrupt on, system flag */
	int rc = bus_register(&vm->pio, PORT_I8042_DATA, 1, &i8042_data_ops, k, "i8042");
	if (!rc)
		rc = bus_register(&vm->pio, PORT_I8042_CMD, 1, &i8042_cmd_ops, k, "i8042");
	if (rc) {
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

static const struct device_desc i8042_device = { "i8042", i8042_create, i8042_destroy };
DEVICE_REGISTER(i8042_device);
