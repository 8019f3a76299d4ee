/* ACPI PM1a event/control registers (devices/pm.c). KVM-independent model;
 * the VM is only told when the guest asks for S5. */
#ifndef WAFER_DEVICES_PM_H
#define WAFER_DEVICES_PM_H

#include <pthread.h>
#include <stdint.h>

struct vm;

struct pm {
	struct vm *vm;           /* gets the power-off request; may be NULL */
	pthread_mutex_t lock;
	uint16_t evt_sts, evt_en, cnt;
};

void pm_init(struct pm *p, struct vm *vm);

/* Snapshot payload (section "acpi-pm"): PM1 status, enable, control. */
#define PM_STATE_VERSION 1
struct snap_buf;
struct snap_cur;
int pm_save(struct pm *p, struct snap_buf *b);
/* All or nothing: -EINVAL leaves p unchanged. */
int pm_load(struct pm *p, struct snap_cur *c);

#endif
