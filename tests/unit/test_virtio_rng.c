/* virtio-rng through its ops: bytes delivered into writable buffers, the
 * per-request cap, chains with device-readable buffers returned unused, and
 * a malformed ring putting the device into NEEDS_RESET. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "devices/virtio/rng.h"

#define RAM_SIZE  (1u << 20)
#define QSIZE     16
#define DESC_GPA  0x1000
#define AVAIL_GPA 0x2000
#define USED_GPA  0x3000
#define BUF_GPA   0x10000

struct fx {
	uint8_t *ram;
	struct guest_mem mem;
	struct virtio_dev *d;
	int queue_irqs, config_irqs;
};

static struct fx *g_fx;

static void on_queue(struct virtio_dev *d, unsigned q) { (void)d; (void)q; g_fx->queue_irqs++; }
static void on_config(struct virtio_dev *d) { (void)d; g_fx->config_irqs++; }
static const struct virtio_transport_ops transport = { on_queue, on_config };

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[128];
	f->ram = calloc(1, RAM_SIZE);
	gmem_init(&f->mem, f->ram, RAM_SIZE);
	f->d = virtio_rng_create(&f->mem, err, sizeof(err));
	assert_non_null(f->d);
	f->d->transport = &transport;
	struct virtq *q = &f->d->vq[0];
	q->size = QSIZE;
	q->desc_gpa = DESC_GPA;
	q->avail_gpa = AVAIL_GPA;
	q->used_gpa = USED_GPA;
	assert_int_equal(virtq_init(q, &f->mem), 0);
	q->ready = true;
	f->d->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
		       VIRTIO_STATUS_DRIVER_OK;
	g_fx = f;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	f->d->ops->destroy(f->d);
	free(f->ram);
	free(f);
	return 0;
}

static void put_desc(struct fx *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *p = f->ram + DESC_GPA + 16 * i;
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static void offer(struct fx *f, uint16_t head)
{
	uint16_t *idx = (uint16_t *)(f->ram + AVAIL_GPA + 2);
	((uint16_t *)(f->ram + AVAIL_GPA + 4))[*idx % QSIZE] = head;
	(*idx)++;
}

static uint16_t used_idx(struct fx *f) { return *(uint16_t *)(f->ram + USED_GPA + 2); }

static void used_elem(struct fx *f, unsigned slot, uint32_t *id, uint32_t *len)
{
	memcpy(id, f->ram + USED_GPA + 4 + 8 * slot, 4);
	memcpy(len, f->ram + USED_GPA + 8 + 8 * slot, 4);
}

static bool all_equal(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static void test_bytes_delivered(void **state)
{
	struct fx *f = *state;
	memset(f->ram + BUF_GPA, 0, 48);
	put_desc(f, 0, BUF_GPA, 16, 2 | 1, 1);
	put_desc(f, 1, BUF_GPA + 16, 32, 2, 0);
	offer(f, 0);
	f->d->ops->queue_notify(f->d, 0);

	uint32_t id, len;
	assert_int_equal(used_idx(f), 1);
	used_elem(f, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 48);
	/* 16 and 32 random bytes both all-zero has probability 2^-128 / 2^-256 */
	assert_false(all_equal(f->ram + BUF_GPA, 16, 0));
	assert_false(all_equal(f->ram + BUF_GPA + 16, 32, 0));
	assert_int_equal(f->queue_irqs, 1);
	assert_int_equal(f->d->status & VIRTIO_STATUS_NEEDS_RESET, 0);
}

static void test_large_request_capped(void **state)
{
	struct fx *f = *state;
	put_desc(f, 0, BUF_GPA, 256 * 1024, 2, 0);
	offer(f, 0);
	f->d->ops->queue_notify(f->d, 0);
	uint32_t id, len;
	used_elem(f, 0, &id, &len);
	assert_int_equal(len, 64 * 1024);
}

static void test_readable_segments_returned_unused(void **state)
{
	struct fx *f = *state;
	memset(f->ram + BUF_GPA, 0xAA, 64);
	put_desc(f, 0, BUF_GPA, 8, 1, 1);          /* device-readable: driver bug */
	put_desc(f, 1, BUF_GPA + 8, 32, 2, 0);
	offer(f, 0);
	put_desc(f, 2, BUF_GPA + 40, 16, 2, 0);    /* a good one after it */
	offer(f, 2);
	f->d->ops->queue_notify(f->d, 0);

	uint32_t id, len;
	assert_int_equal(used_idx(f), 2);
	used_elem(f, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 0);
	assert_true(all_equal(f->ram + BUF_GPA, 40, 0xAA)); /* untouched */
	used_elem(f, 1, &id, &len);
	assert_int_equal(id, 2);
	assert_int_equal(len, 16);
	assert_int_equal(f->d->status & VIRTIO_STATUS_NEEDS_RESET, 0);
	assert_int_equal(f->d->stat_errors, 1);
}

static void test_malformed_ring_needs_reset(void **state)
{
	struct fx *f = *state;
	put_desc(f, 0, BUF_GPA, 16, 2 | 1, 0); /* self loop */
	offer(f, 0);
	f->d->ops->queue_notify(f->d, 0);
	assert_int_equal(used_idx(f), 0);
	assert_true(f->d->status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(f->config_irqs, 1);
	/* Further kicks do nothing, even with a now-valid ring. */
	put_desc(f, 0, BUF_GPA, 16, 2, 0);
	f->d->ops->queue_notify(f->d, 0);
	assert_int_equal(used_idx(f), 0);
	assert_int_equal(f->config_irqs, 1);
}

static void test_not_driver_ok(void **state)
{
	struct fx *f = *state;
	f->d->status &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
	put_desc(f, 0, BUF_GPA, 16, 2, 0);
	offer(f, 0);
	f->d->ops->queue_notify(f->d, 0);
	assert_int_equal(used_idx(f), 0);
	f->d->status |= VIRTIO_STATUS_DRIVER_OK;
	f->d->ops->queue_notify(f->d, 0);
	assert_int_equal(used_idx(f), 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_bytes_delivered),
		T(test_large_request_capped),
		T(test_readable_segments_returned_unused),
		T(test_malformed_ring_needs_reset),
		T(test_not_driver_ok),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
