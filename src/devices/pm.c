/* ACPI fixed-hardware PM1a event and control blocks (ACPI 6.x section 4.8),
 * at the ports the FADT declares: a write of SLP_EN with SLP_TYP = 5 (the
 * DSDT's \_S5 value) powers the VM off. SCI_EN always reads as set, so the
 * guest sees ACPI mode without an SMI command port. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "devices/pm.h"
#include "state/devices.h"
#include "vmm/vm.h"

#define PM1_SCI_EN       0x0001
#define PM1_SLP_TYP_MASK 0x1c00
#define PM1_SLP_TYP_S5   (5u << 10)
#define PM1_SLP_EN       0x2000

static uint16_t pm_reg(struct pm *p, uint64_t offset)
{
	switch (offset) {
	case 0: return p->evt_sts;
	case 2: return p->evt_en;
	case 4: return p->cnt | PM1_SCI_EN;
	default: return 0;
	}
}

static void pm_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
	struct pm *p = opaque;
	pthread_mutex_lock(&p->lock);
	/* Byte-granular reads of the 16-bit registers. */
	for (unsigned i = 0; i < size && i < 8; i++) {
		uint64_t o = offset + i;
		data[i] = (uint8_t)(pm_reg(p, o & ~1ull) >> ((o & 1) * 8));
	}
	pthread_mutex_unlock(&p->lock);
}

static void pm_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
	struct pm *p = opaque;
	int poweroff = 0;
	uint16_t v = data[0];
	if (size >= 2)
		v |= (uint16_t)(data[1] << 8);

	pthread_mutex_lock(&p->lock);
	switch (offset) {
	case 0: p->evt_sts &= (uint16_t)~v; break; /* write-1-to-clear */
	case 2: p->evt_en = v; break;
	case 4:
		p->cnt = v & (uint16_t)~PM1_SLP_EN;
		poweroff = (v & PM1_SLP_EN) && (v & PM1_SLP_TYP_MASK) == PM1_SLP_TYP_S5;
		break;
	default: break;
	}
	pthread_mutex_unlock(&p->lock);
	if (poweroff && p->vm)
		vm_request_stop(p->vm, VM_STOP_POWEROFF, 0, "guest powered off (ACPI S5)");
}

static const struct bus_ops pm_ops = { .read = pm_read, .write = pm_write };
static struct pm *pm_dev;

void pm_init(struct pm *p, struct vm *vm)
{
	memset(p, 0, sizeof(*p));
	p->vm = vm;
	pthread_mutex_init(&p->lock, NULL);
}

int pm_save(struct pm *p, struct snap_buf *b)
{
	pthread_mutex_lock(&p->lock);
	snap_buf_put_u16(b, p->evt_sts);
	snap_buf_put_u16(b, p->evt_en);
	snap_buf_put_u16(b, p->cnt);
	pthread_mutex_unlock(&p->lock);
	return b->err;
}

int pm_load(struct pm *p, struct snap_cur *c)
{
	uint16_t sts = snap_cur_u16(c), en = snap_cur_u16(c), cnt = snap_cur_u16(c);

	/* SLP_EN is write-only: a stored one would be a corrupt state. */
	if (snap_cur_end(c) || (cnt & PM1_SLP_EN))
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	p->evt_sts = sts;
	p->evt_en = en;
	p->cnt = cnt;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static int pm_create(struct vm *vm)
{
	struct pm *p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	pm_init(p, vm);
	/* PM1a_EVT (4 bytes) and PM1a_CNT (2 bytes) are contiguous. */
	int rc = bus_register(&vm->pio, PORT_ACPI_PM1A_EVT, 6, &pm_ops, p, "acpi-pm");
	if (rc) {
		free(p);
		return rc;
	}
	pm_dev = p;
	return 0;
}

static void pm_destroy(struct vm *vm)
{
	(void)vm;
	if (pm_dev)
		pthread_mutex_destroy(&pm_dev->lock);
	free(pm_dev);
	pm_dev = NULL;
}

STATE_SECTION_HOOKS(pm, "acpi-pm", PM_STATE_VERSION, pm_dev)

static const struct device_desc pm_device = {
	.name = "acpi-pm",
	.create = pm_create,
	.destroy = pm_destroy,
	.save = pm_state_save,
	.load = pm_state_load,
};
DEVICE_REGISTER(pm_device);
