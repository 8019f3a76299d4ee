/* virtio entropy device (virtio 1.2 section 5.4): one request queue whose
 * device-writable buffers are filled from the host kernel's CSPRNG. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "devices/virtio/rng.h"

/* Bytes served per chain: the spec lets the device use less than the whole
 * buffer, and a cap keeps one huge request from stalling the I/O thread. */
#define RNG_MAX_PER_REQUEST (64u * 1024)

struct rng {
	struct virtq_elem elem;
};

static bool rng_running(const struct virtio_dev *d)
{
	uint8_t st = __atomic_load_n(&d->status, __ATOMIC_ACQUIRE);
	return (st & VIRTIO_STATUS_DRIVER_OK) && !(st & VIRTIO_STATUS_NEEDS_RESET);
}

/* Fill buf from getrandom; returns bytes filled (0 only on a host error). */
static size_t rng_fill(void *buf, size_t len)
{
	size_t done = 0;
	int flags = GRND_NONBLOCK;

	while (done < len) {
		ssize_t r = getrandom((char *)buf + done, len - done, flags);
		if (r > 0) {
			done += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN && flags) {
			/* Host CRNG not seeded yet (early host boot only): waiting
			 * is better than handing the guest weak bytes. */
			log_warn("virtio-rng: host entropy pool not ready, blocking");
			flags = 0;
			continue;
		}
		log_warn("virtio-rng: getrandom: %s", r < 0 ? strerror(errno) : "no data");
		break;
	}
	return done;
}

/* 0, or the number of random bytes written into the chain's in-segments. */
static uint32_t rng_serve(struct virtio_dev *d, struct virtq_elem *e)
{
	/* 5.4.6.1: drivers never post device-readable buffers. Such a chain is
	 * returned unused (len 0) rather than resetting the whole device:
	 * nothing in it was touched and the driver's other requests proceed. */
	if (e->out_num) {
		d->stat_errors++;
		log_ratelimited(&d->rl, LOG_WARN,
				"%s: request with device-readable buffers; returned unused",
				d->ops->name);
		return 0;
	}
	size_t budget = RNG_MAX_PER_REQUEST, total = 0;
	for (unsigned i = 0; i < e->in_num && budget; i++) {
		size_t n = e->iov[i].iov_len < budget ? e->iov[i].iov_len : budget;
		size_t got = rng_fill(e->iov[i].iov_base, n);
		gmem_mark_dirty_host(d->mem, e->iov[i].iov_base, got);
		total += got;
		budget -= got;
		if (got < n)
			break;
	}
	d->stat_bytes_in += total;
	return (uint32_t)total;
}

static void rng_queue_notify(struct virtio_dev *d, unsigned qi)
{
	struct rng *r = d->priv;
	struct virtq *q = &d->vq[0];
	const char *why = NULL;
	bool pushed = false;

	if (qi != 0 || !rng_running(d) || !q->ready)
		return;
	/* At most a ring's worth per notification: that drains what was there
	 * when the driver notified, and anything it adds meanwhile comes with
	 * a notification of its own. Rings that overlap (the used index
	 * landing on the avail index) cannot keep the I/O thread here. */
	for (unsigned n = 0; n < q->size; n++) {
		int rc = virtq_pop(q, &r->elem, &why);
		if (rc < 0) {
			virtio_dev_needs_reset(d, why);
			break;
		}
		if (rc == 0) {
			if (virtq_has_work(q))
				continue;
			break;
		}
		uint32_t len = rng_serve(d, &r->elem);
		virtq_push(q, r->elem.head, len);
		d->stat_ops++;
		pushed = true;
	}
	if (pushed)
		virtio_dev_signal_used(d, 0);
}

static uint64_t rng_features(struct virtio_dev *d)
{
	(void)d;
	return 0; /* no device-specific features (5.4.3) */
}

static int rng_activate(struct virtio_dev *d)
{
	(void)d;
	return 0;
}

static void rng_reset(struct virtio_dev *d)
{
	(void)d; /* requests complete synchronously: nothing in flight */
}
/* Nor is anything held between notifications, so snapshots need no
 * quiesce and no state beyond the transport's. */

static void rng_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	(void)d; (void)off; (void)buf; (void)len; /* no config space (5.4.4) */
}

static void rng_config_write(struct virtio_dev *d, uint32_t off, const void *buf, uint32_t len)
{
	(void)d; (void)off; (void)buf; (void)len;
}

static void rng_destroy(struct virtio_dev *d)
{
	free(d->priv);
	free(d);
}

static const struct virtio_dev_ops rng_ops = {
	.name = "virtio-rng",
	.device_id = 4,
	.num_queues = 1,
	.queue_max_size = 256,
	.features = rng_features,
	.activate = rng_activate,
	.reset = rng_reset,
	.config_size = 0,
	.config_read = rng_config_read,
	.config_write = rng_config_write,
	.queue_notify = rng_queue_notify,
	.destroy = rng_destroy,
};

struct virtio_dev *virtio_rng_create(const struct guest_mem *mem, char *err, size_t errlen)
{
	struct virtio_dev *d = calloc(1, sizeof(*d));
	struct rng *r = calloc(1, sizeof(*r));

	if (!d || !r) {
		snprintf(err, errlen, "virtio-rng: out of memory");
		free(d);
		free(r);
		return NULL;
	}
	d->ops = &rng_ops;
	d->priv = r;
	d->mem = mem;
	return d;
}
