/* virtio block device (virtio 1.2 section 5.2) over a raw disk backend. */
#ifndef WAFER_DEVICES_VIRTIO_BLK_H
#define WAFER_DEVICES_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/ratelimit.h"
#include "devices/virtio/virtio.h"

struct eventloop;

struct blk_config {
	const char *path;     /* image file or host block device */
	bool read_only;
	const char *id;       /* drive name for logs ("rootfs") */
	const char *serial;   /* GET_ID string, first 20 bytes; NULL: id */
	struct ratelimit_config limit; /* bytes read/written and requests; zero: none */
	bool defer_lock;      /* incoming migration: the source holds the lock */
};

/* Open the disk and build the device. loop: backend completions are handled
 * on this event loop's thread (NULL: the caller runs virtio_blk_poll).
 * NULL and one line in err ("PATH: ...") on failure. Freed through
 * ops->destroy. */
struct virtio_dev *virtio_blk_create(const struct guest_mem *mem, struct eventloop *loop,
				     const struct blk_config *cfg, char *err, size_t errlen);

/* Take the image lock deferred at create (defer_lock), waiting up to
 * timeout_ms for the previous holder to let go: 0 or -errno. */
int virtio_blk_lock(struct virtio_dev *d, unsigned timeout_ms);

/* Run finished backend requests (completing their chains) and resume the
 * queue; wait: block until one finishes if any is in flight. For devices
 * created without an event loop (tests). Completions run, or -errno. */
int virtio_blk_poll(struct virtio_dev *d, bool wait);

/* Replace the rate limiter's configuration (PATCH /drives/{id}); any thread.
 * A request held by the old limit is re-checked on the event loop (or on the
 * next virtio_blk_poll without one). */
void virtio_blk_set_rate_limit(struct virtio_dev *d, const struct ratelimit_config *cfg);
/* Tests: the limiter's clock (default ratelimit_now_ns). Set it before
 * enabling a limit, since buckets start counting at the time they are set. */
void virtio_blk_set_clock(struct virtio_dev *d, uint64_t (*now_ns)(void));

#endif
