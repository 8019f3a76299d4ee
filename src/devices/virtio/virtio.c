/* Transport-independent virtio device helpers (virtio 1.2 sections 2.1 and
 * 2.7.10): the "needs reset" error state and used-buffer notifications. */
#include "devices/virtio/virtio.h"

void virtio_dev_needs_reset(struct virtio_dev *d, const char *why)
{
	uint8_t old = __atomic_fetch_or(&d->status, VIRTIO_STATUS_NEEDS_RESET, __ATOMIC_SEQ_CST);

	d->stat_errors++;
	log_ratelimited(&d->rl, LOG_WARN, "%s: %s; device needs reset",
			d->ops && d->ops->name ? d->ops->name : "virtio", why ? why : "error");
	/* 2.1.2: a device entering NEEDS_RESET after DRIVER_OK must send a
	 * configuration change notification; once is enough. */
	if (!(old & VIRTIO_STATUS_NEEDS_RESET) && (old & VIRTIO_STATUS_DRIVER_OK) &&
	    d->transport && d->transport->notify_config)
		d->transport->notify_config(d);
}

void virtio_dev_signal_used(struct virtio_dev *d, unsigned q)
{
	if (q >= VIRTIO_MAX_QUEUES)
		return;
	if (virtq_need_notify(&d->vq[q]) && d->transport && d->transport->notify_queue)
		d->transport->notify_queue(d, q);
}
