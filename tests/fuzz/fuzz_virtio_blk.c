/* libFuzzer target: virtio-blk request handling (virtio 1.2 section 5.2) on a
 * real temporary disk image, driven like a guest driver would: the fuzzer
 * writes guest RAM (rings, request headers, data and status buffers), the
 * queue is kicked and the backend polled until nothing is in flight.
 * Input: size_log2 u8, flags u8, device feature mask u32, then the RAM image
 * (queue 0 in the fuzz_ring_layout at GPA 0). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "devices/virtio/blk.h"
#include "fuzz.h"

#define RAM_SIZE  (64u << 10)
#define DISK_SIZE (64u << 10)

enum {
	FL_INDIRECT = 1, FL_EVENT_IDX = 2, FL_READ_ONLY = 4, FL_KICK_TWICE = 8,
	FL_RESET_IN_FLIGHT = 16, FL_NO_POLL = 32,
};

static char disk[64];

static void on_queue(struct virtio_dev *d, unsigned q) { (void)d; (void)q; }
static void on_config(struct virtio_dev *d) { (void)d; }
static const struct virtio_transport_ops transport = { on_queue, on_config };

static void disk_remove(void)
{
	unlink(disk);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	log_threshold = LOG_ERROR;
	snprintf(disk, sizeof(disk), "/tmp/wafer-fuzz-blk-XXXXXX");
	int fd = mkstemp(disk);
	if (fd < 0 || ftruncate(fd, DISK_SIZE)) {
		perror("fuzz_virtio_blk: disk image");
		exit(1);
	}
	close(fd);
	atexit(disk_remove);
	return 0;
}

/* Complete everything the backend still holds (bounded: a request that
 * never completes is a bug the fuzzer reports as a timeout). */
static void drain(struct virtio_dev *d)
{
	for (int i = 0; i < 10000; i++)
		if (virtio_blk_poll(d, true) <= 0)
			break;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct guest_mem mem;
	char err[256];

	uint16_t qsize = (uint16_t)(1u << (fuzz_u8(&in) % 9));
	uint8_t flags = fuzz_u8(&in);
	uint32_t dev_mask = fuzz_u32(&in);

	uint8_t *ram = malloc(RAM_SIZE);
	if (!ram)
		return 0;
	fuzz_fill(&in, ram, RAM_SIZE);
	gmem_init(&mem, ram, RAM_SIZE);

	struct blk_config cfg = { .path = disk, .read_only = flags & FL_READ_ONLY, .id = "fuzz0",
				  .serial = "wafer-fuzz" };
	struct virtio_dev *d = virtio_blk_create(&mem, NULL, &cfg, err, sizeof(err));
	if (!d) {
		fprintf(stderr, "fuzz_virtio_blk: %s\n", err);
		abort();
	}
	d->transport = &transport;
	fuzz_negotiate(d, dev_mask, flags & FL_INDIRECT, flags & FL_EVENT_IDX);
	struct virtq *q = &d->vq[0];
	q->size = qsize;
	q->indirect = virtio_has_feature(d, VIRTIO_F_INDIRECT_DESC);
	q->event_idx = virtio_has_feature(d, VIRTIO_F_EVENT_IDX);
	fuzz_ring_layout(0, qsize, &q->desc_gpa, &q->avail_gpa, &q->used_gpa);
	if (virtq_init(q, &mem))
		abort();   /* the layout always fits in RAM */
	q->ready = true;
	d->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
		    VIRTIO_STATUS_DRIVER_OK;
	if (d->ops->activate(d))
		goto out;

	d->ops->queue_notify(d, 0);
	if (flags & FL_RESET_IN_FLIGHT) {
		d->ops->reset(d);
		virtq_reset(q);
		d->status = 0;
	}
	if (!(flags & FL_NO_POLL))
		drain(d);
	if (flags & FL_KICK_TWICE) {
		d->ops->queue_notify(d, 0);
		drain(d);
	}
	uint8_t cfgbuf[64];
	uint32_t off = dev_mask & 63, len = (dev_mask >> 8) & 63;
	if (off + len <= d->ops->config_size)   /* the transport's bounds check */
		d->ops->config_read(d, off, cfgbuf, len);
out:
	d->ops->destroy(d);   /* waits for anything still in flight */
	free(ram);
	return 0;
}
