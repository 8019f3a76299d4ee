/* Every device's state in a snapshot: the platform devices through their
 * device_desc hooks (the PCI bus among them, which carries its virtio
 * transports), saved with the I/O thread parked and the virtio devices
 * quiesced so that the rings are final, and loaded into a freshly built VM. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "state/devices.h"
#include "vmm/log.h"
#include "vmm/vm.h"

extern const struct device_desc *const __start_wafer_devices[];
extern const struct device_desc *const __stop_wafer_devices[];

int state_section_open(const struct snap_reader *r, const char *name, uint32_t instance,
		       uint32_t version, struct snap_cur *c, char *err, size_t errlen)
{
	struct snap_section s;

	if (snap_reader_find(r, name, instance, &s)) {
		snprintf(err, errlen, "section %s/%u: missing from the snapshot", name, instance);
		return -ENOENT;
	}
	if (s.version != version) {
		snprintf(err, errlen, "section %s/%u: version %u; this wafer reads version %u", name,
			 instance, s.version, version);
		return -EINVAL;
	}
	snap_cur_init(c, s.data, s.len);
	return 0;
}

int state_section_done(int rc, const char *name, uint32_t instance, char *err, size_t errlen)
{
	if (rc)
		snprintf(err, errlen, "section %s/%u: %s", name, instance,
			 rc == -EINVAL ? "malformed (truncated, trailing bytes or a value out of range)"
				       : strerror(-rc));
	return rc;
}

int state_devices_quiesce(struct vm *vm)
{
	int rc = 0;

	for (unsigned i = 0; i < vm->nvirtio_attached && !rc; i++) {
		struct virtio_dev *d = vm->virtio[i];
		rc = d->ops->quiesce ? d->ops->quiesce(d) : 0;
		if (rc)
			log_error("%s: cannot quiesce for the snapshot: %s", d->ops->name,
				  strerror(-rc));
	}
	return rc;
}

int state_devices_save(struct vm *vm, struct snap_buf *b)
{
	int rc;

	/* No handler may run (and no io_uring completion be reaped) while the
	 * devices are read. */
	if (vm->io_ready)
		eventloop_pause(&vm->io);
	rc = state_devices_quiesce(vm);
	for (const struct device_desc *const *d = __start_wafer_devices;
	     d < __stop_wafer_devices && !rc; d++)
		rc = (*d)->save ? (*d)->save(vm, b) : 0;
	if (vm->io_ready)
		eventloop_resume(&vm->io);
	return rc ? rc : b->err;
}

int state_devices_load(struct vm *vm, const struct snap_reader *r, char *err, size_t errlen)
{
	int rc = 0;

	for (const struct device_desc *const *d = __start_wafer_devices;
	     d < __stop_wafer_devices && !rc; d++)
		rc = (*d)->load ? (*d)->load(vm, r, err, errlen) : 0;
	return rc;
}
