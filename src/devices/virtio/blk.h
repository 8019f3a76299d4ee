/* virtio block device (virtio 1.2 section 5.2) over a raw disk backend. */
#ifndef WAFER_DEVICES_VIRTIO_BLK_H
#define WAFER_DEVICES_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>

#include "devices/virtio/virtio.h"

struct eventloop;

struct blk_config {
	const char *path;     /* image file or host block device */
	bool read_only;
	const char *id;       /* drive name for logs ("rootfs") */
	const char *serial;   /* GET_ID string, first 20 bytes; NULL: id */
};

/* Open the disk and build the device. loop: backend completions are handled
 * on this event loop's thread (NULL: the caller runs virtio_blk_poll).
 * NULL and one line in err ("PATH: ...") on failure. Freed through
 * ops->destroy. */
struct virtio_dev *virtio_blk_create(const struct guest_mem *mem, struct eventloop *loop,
				     const struct blk_config *cfg, char *err, size_t errlen);

/* Run finished backend requests (completing their chains) and resume the
 * queue; wait: block until one finishes if any is in flight. For devices
 * created without an event loop (tests). Completions run, or -errno. */
int virtio_blk_poll(struct virtio_dev *d, bool wait);

#endif
