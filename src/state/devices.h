/* Every device's state into and out of a snapshot: the platform devices
 * (through their device_desc hooks), the PCI bus and the virtio transports,
 * with the I/O thread parked and virtio devices quiesced while saving. Also
 * the two helpers each device's loader uses to find and check its section. */
#ifndef WAFER_STATE_DEVICES_H
#define WAFER_STATE_DEVICES_H

#include <stddef.h>
#include <stdint.h>

#include "state/format.h"

struct vm;

/* The VM is paused by the caller. Parks the I/O loop, quiesces the virtio
 * devices (in-flight backend requests complete, held chains go back to
 * their rings), appends one section per device state to b, resumes the
 * loop. 0 or -errno (b->err, a quiesce failure). */
int state_devices_save(struct vm *vm, struct snap_buf *b);
/* The quiescing part alone, the I/O loop parked by the caller: afterwards
 * no request of the guest's is in flight, so its disks hold what the saved
 * state expects. 0 or the first device's -errno. */
int state_devices_quiesce(struct vm *vm);
/* After vm_create built a fresh VM with the same devices, before any vCPU
 * runs: load every device state from r. 0 or -errno with one line in err
 * naming the section at fault. */
int state_devices_load(struct vm *vm, const struct snap_reader *r, char *err, size_t errlen);

/* Point c at the payload of section name/instance, whose version must be
 * version: 0; -ENOENT (missing) or -EINVAL (other version), err filled. */
int state_section_open(const struct snap_reader *r, const char *name, uint32_t instance,
		       uint32_t version, struct snap_cur *c, char *err, size_t errlen);
/* Pass a model loader's result through, filling err when it refused the
 * payload of name/instance. */
int state_section_done(int rc, const char *name, uint32_t instance, char *err, size_t errlen);

/* The device_desc save/load hooks (prefix_state_save, prefix_state_load)
 * of a platform device whose state is one section, instance 0, with
 * payload functions prefix_save(obj, b) and prefix_load(obj, c); obj is
 * an expression that may use the hooks' struct vm *vm. */
#define STATE_SECTION_HOOKS(prefix, section, version, obj)                          \
	static int prefix##_state_save(struct vm *vm, struct snap_buf *b)            \
	{                                                                           \
		size_t tok = snap_section_begin(b, section, 0, version);              \
		int rc = prefix##_save((obj), b);                                   \
		(void)vm;                                                           \
		snap_section_end(b, tok);                                           \
		return rc ? rc : b->err;                                            \
	}                                                                           \
	static int prefix##_state_load(struct vm *vm, const struct snap_reader *r,    \
				       char *err, size_t errlen)                    \
	{                                                                           \
		struct snap_cur c;                                                  \
		int rc = state_section_open(r, section, 0, version, &c, err, errlen); \
		(void)vm;                                                           \
		return rc ? rc : state_section_done(prefix##_load((obj), &c), section, 0, \
						    err, errlen);                   \
	}

#endif
