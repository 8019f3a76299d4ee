/* libFuzzer target: virtio-net transmit and receive (virtio 1.2 section 5.1)
 * with a socketpair standing in for the tap. The fuzzer writes guest RAM (rx
 * queue 0 and tx queue 1, headers, frames, receive buffers) and the frames the
 * "tap" delivers (each a 12-byte virtio-net header plus payload).
 * Input: size_log2 u8, flags u8, device feature mask u32, nframes u8,
 * 4 x frame length u16, the RAM image, and the frames' bytes at the very end. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/virtio/net.h"
#include "fuzz.h"

#define RAM_SIZE   (64u << 10)
#define MAX_FRAMES 4

enum { FL_LINK_DOWN = 1, FL_EVENT_IDX = 2, FL_INDIRECT = 4, FL_TX_FIRST = 8, FL_RESET = 16 };

static void on_queue(struct virtio_dev *d, unsigned q) { (void)d; (void)q; }
static void on_config(struct virtio_dev *d) { (void)d; }
static const struct virtio_transport_ops transport = { on_queue, on_config };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	log_threshold = LOG_ERROR;
	return 0;
}

static void drain_peer(int fd)
{
	static uint8_t buf[1 << 17];
	for (int i = 0; i < 4096; i++)
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) < 0)
			break;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct guest_mem mem;
	char err[256];
	int sv[2];

	uint16_t qsize = (uint16_t)(1u << (fuzz_u8(&in) % 8));
	uint8_t flags = fuzz_u8(&in);
	uint32_t dev_mask = fuzz_u32(&in);
	unsigned nframes = fuzz_u8(&in) % (MAX_FRAMES + 1);
	size_t flen[MAX_FRAMES], total = 0;
	for (unsigned i = 0; i < MAX_FRAMES; i++)
		flen[i] = i < nframes ? fuzz_u16(&in) : (fuzz_u16(&in), 0);
	for (unsigned i = 0; i < MAX_FRAMES; i++) {
		if (flen[i] > in.n - total)
			flen[i] = in.n - total;
		total += flen[i];
	}
	const uint8_t *frames = in.p + (in.n - total);
	in.n -= total;

	uint8_t *ram = malloc(RAM_SIZE);
	if (!ram)
		return 0;
	fuzz_fill(&in, ram, RAM_SIZE);
	gmem_init(&mem, ram, RAM_SIZE);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv)) {
		perror("fuzz_virtio_net: socketpair");
		abort();
	}

	struct net_config cfg = { .id = "net0", .vm_name = "fuzz", .ifname = "fuzz0" };
	struct virtio_dev *d = virtio_net_create_fd(&mem, NULL, &cfg, sv[0], err, sizeof(err));
	if (!d) {
		fprintf(stderr, "fuzz_virtio_net: %s\n", err);
		abort();
	}
	d->transport = &transport;
	fuzz_negotiate(d, dev_mask, flags & FL_INDIRECT, flags & FL_EVENT_IDX);
	uint64_t next = 0;
	for (unsigned i = 0; i < 2; i++) {
		struct virtq *q = &d->vq[i];
		q->size = qsize;
		q->indirect = virtio_has_feature(d, VIRTIO_F_INDIRECT_DESC);
		q->event_idx = virtio_has_feature(d, VIRTIO_F_EVENT_IDX);
		next = (fuzz_ring_layout(next, qsize, &q->desc_gpa, &q->avail_gpa, &q->used_gpa) + 15) & ~15ull;
		if (virtq_init(q, &mem))
			abort();   /* the layout always fits in RAM */
		q->ready = true;
	}
	d->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
		    VIRTIO_STATUS_DRIVER_OK;
	if (flags & FL_LINK_DOWN)
		virtio_net_set_link(d, false);
	if (d->ops->activate(d))
		goto out;

	for (unsigned i = 0; i < nframes; i++) {
		if (send(sv[1], frames, flen[i], MSG_DONTWAIT) < 0)
			break;
		frames += flen[i];
	}
	if (flags & FL_TX_FIRST)
		d->ops->queue_notify(d, 1);
	d->ops->queue_notify(d, 0);
	d->ops->queue_notify(d, 1);
	drain_peer(sv[1]);
	if (flags & FL_RESET) {
		/* What the transport does when the driver writes status 0. */
		d->ops->reset(d);
		virtq_reset(&d->vq[0]);
		virtq_reset(&d->vq[1]);
		d->status = 0;
		virtio_net_set_link(d, true);
		d->ops->queue_notify(d, 0);
	}
	struct virtio_net_stats st;
	virtio_net_get_stats(d, &st);
out:
	d->ops->destroy(d);   /* closes sv[0] */
	close(sv[1]);
	free(ram);
	return 0;
}
