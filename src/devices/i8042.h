/* i8042 keyboard controller model (the PC/AT 8042 as Linux drives it): the
 * reset line, controller commands, the command byte, and a keyboard that
 * answers the standard commands and can be made to type Ctrl-Alt-Del (the
 * API's SendCtrlAltDel). No mouse is attached. KVM-independent. */
#ifndef WAFER_DEVICES_I8042_H
#define WAFER_DEVICES_I8042_H

#include <pthread.h>
#include <stdint.h>

struct vm;

#define I8042_FIFO 16

struct i8042 {
	pthread_mutex_t lock;
	uint8_t status, cmd_byte, pending_cmd, kbd_pending;
	uint8_t fifo[I8042_FIFO];
	unsigned head, count;
	void (*pulse_irq)(void *opaque);   /* IRQ 1 edge: a byte became readable */
	void (*reset)(void *opaque);       /* the CPU reset line was pulsed */
	void *opaque;
};

void i8042_init(struct i8042 *k, void (*pulse_irq)(void *), void (*reset)(void *), void *opaque);
uint8_t i8042_read_data(struct i8042 *k);
uint8_t i8042_read_status(struct i8042 *k);
void i8042_write_data(struct i8042 *k, uint8_t v);
void i8042_write_cmd(struct i8042 *k, uint8_t v);
/* Queue the make and break codes of Ctrl-Alt-Del (scan code set 1 when the
 * controller translates, set 2 otherwise). 0 or -ENOSPC. */
int i8042_type_ctrl_alt_del(struct i8042 *k);

/* Snapshot payload (section "i8042"): status, command byte, the pending
 * controller and keyboard commands, and the output FIFO. IRQ 1 is an edge
 * already delivered, so there is no line to restore. */
#define I8042_STATE_VERSION 1
struct snap_buf;
struct snap_cur;
int i8042_save(struct i8042 *k, struct snap_buf *b);
/* All or nothing: -EINVAL leaves k unchanged. */
int i8042_load(struct i8042 *k, struct snap_cur *c);

/* The VM's controller: SendCtrlAltDel from the API. 0, -ENODEV, -ENOSPC. */
int i8042_send_ctrl_alt_del(struct vm *vm);

#endif
