/* virtio-net device model against a socketpair standing in for the tap:
 * transmit header checks and splitting, receive with and without mergeable
 * buffers, waiting for buffers, link status, MAC generation and parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio/net.h"

#define MEM_SIZE  (4u << 20)
#define QSZ       64
#define BUF_BASE  0x10000

#define F_CSUM       (1ull << 0)
#define F_GUEST_CSUM (1ull << 1)
#define F_MAC        (1ull << 5)
#define F_HOST_TSO4  (1ull << 11)
#define F_MRG_RXBUF  (1ull << 15)
#define F_STATUS     (1ull << 16)
#define F_VERSION_1  (1ull << 32)

struct hdr {
	uint8_t flags, gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers;
};

struct drvq {
	uint64_t desc, avail, used;
	uint16_t next_desc, avail_idx, used_seen;
};

struct env {
	uint8_t *ram;
	struct guest_mem mem;
	int peer, devfd;
	struct virtio_dev *d;
	struct drvq q[2];
	uint64_t next_buf;
	int notified[2], config_irqs;
};

static struct env *cur;

static void t_notify_queue(struct virtio_dev *d, unsigned q)
{
	(void)d;
	__atomic_fetch_add(&cur->notified[q], 1, __ATOMIC_SEQ_CST);
}

static void t_notify_config(struct virtio_dev *d)
{
	(void)d;
	cur->config_irqs++;
}

static const struct virtio_transport_ops t_transport = {
	.notify_queue = t_notify_queue,
	.notify_config = t_notify_config,
};

/* Queues at fixed GPAs; buffers from a bump allocator above BUF_BASE. */
static void env_start(struct env *t, uint64_t features, struct eventloop *loop)
{
	int sv[2];
	char err[256];
	struct net_config cfg = { .id = "net0", .vm_name = "vm1", .ifname = "test" };

	memset(t, 0, sizeof(*t));
	cur = t;
	t->ram = calloc(1, MEM_SIZE);
	assert_non_null(t->ram);
	gmem_init(&t->mem, t->ram, MEM_SIZE);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	int big = 1 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	t->devfd = sv[0];
	t->peer = sv[1];
	t->d = virtio_net_create_fd(&t->mem, loop, &cfg, sv[0], err, sizeof(err));
	assert_non_null(t->d);
	t->d->transport = &t_transport;
	t->d->device_features = t->d->ops->features(t->d) | F_VERSION_1;
	t->d->features = (features | F_VERSION_1) & t->d->device_features;
	for (unsigned i = 0; i < 2; i++) {
		struct drvq *dq = &t->q[i];
		dq->desc = 0x1000 + 0x3000 * i;
		dq->avail = dq->desc + 0x1000;
		dq->used = dq->desc + 0x2000;
		struct virtq *q = &t->d->vq[i];
		q->size = QSZ;
		q->desc_gpa = dq->desc;
		q->avail_gpa = dq->avail;
		q->used_gpa = dq->used;
		assert_int_equal(virtq_init(q, &t->mem), 0);
		q->ready = true;
	}
	t->next_buf = BUF_BASE;
	t->d->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	assert_int_equal(t->d->ops->activate(t->d), 0);
}

static void env_stop(struct env *t)
{
	t->d->ops->destroy(t->d);
	close(t->peer);
	free(t->ram);
}

struct seg {
	uint32_t len;
	bool write;
	const void *data;   /* copied into the buffer when not NULL */
	uint64_t gpa;       /* filled in */
};

/* Post one chain; returns its head. */
static uint16_t drv_post(struct env *t, unsigned qi, struct seg *s, unsigned n)
{
	struct drvq *dq = &t->q[qi];
	uint16_t head = dq->next_desc % QSZ;

	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % QSZ);
		s[i].gpa = s[i].gpa ? s[i].gpa : t->next_buf;
		if (s[i].gpa == t->next_buf)
			t->next_buf += (s[i].len + 15) & ~15u;
		assert_true(t->next_buf <= MEM_SIZE);
		if (s[i].data)
			assert_int_equal(gmem_write(&t->mem, s[i].gpa, s[i].data, s[i].len), 0);
		uint64_t addr = s[i].gpa;
		uint32_t len = s[i].len;
		uint16_t flags = (uint16_t)((i + 1 < n ? 1 : 0) | (s[i].write ? 2 : 0));
		uint16_t next = (uint16_t)((idx + 1) % QSZ);
		uint8_t d[16];
		memcpy(d, &addr, 8);
		memcpy(d + 8, &len, 4);
		memcpy(d + 12, &flags, 2);
		memcpy(d + 14, &next, 2);
		assert_int_equal(gmem_write(&t->mem, dq->desc + 16u * idx, d, 16), 0);
	}
	dq->next_desc = (uint16_t)(dq->next_desc + n);
	assert_int_equal(gmem_write(&t->mem, dq->avail + 4 + 2u * (dq->avail_idx % QSZ), &head, 2), 0);
	dq->avail_idx++;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	assert_int_equal(gmem_write(&t->mem, dq->avail + 2, &dq->avail_idx, 2), 0);
	return head;
}

static uint16_t used_idx(struct env *t, unsigned qi)
{
	uint16_t *p = gmem_ptr(&t->mem, t->q[qi].used + 2, 2);
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Next used entry: 1 and id/len, or 0 when none is new. */
static int drv_used(struct env *t, unsigned qi, uint32_t *id, uint32_t *len)
{
	struct drvq *dq = &t->q[qi];
	uint8_t e[8];

	if (used_idx(t, qi) == dq->used_seen)
		return 0;
	assert_int_equal(gmem_read(&t->mem, dq->used + 4 + 8u * (dq->used_seen % QSZ), e, 8), 0);
	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
	dq->used_seen++;
	return 1;
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static ssize_t peer_recv(struct env *t, void *buf, size_t len)
{
	return recv(t->peer, buf, len, MSG_DONTWAIT);
}

/* ---- transmit ---- */

static void test_tx_split_header(void **state)
{
	(void)state;
	struct env t;
	uint8_t pkt[12 + 100], got[200];
	struct hdr h = { .num_buffers = 7 }; /* tx num_buffers is ignored, sent as 0 */
	uint32_t id, len;

	env_start(&t, F_CSUM, NULL);
	memcpy(pkt, &h, 12);
	fill(pkt + 12, 100, 1);
	/* header over three segments, the third also carrying frame bytes */
	struct seg s[] = {
		{ .len = 5, .data = pkt }, { .len = 4, .data = pkt + 5 },
		{ .len = 43, .data = pkt + 9 }, { .len = 60, .data = pkt + 52 },
	};
	uint16_t head = drv_post(&t, 1, s, 4);
	t.d->ops->queue_notify(t.d, 1);

	ssize_t n = peer_recv(&t, got, sizeof(got));
	assert_int_equal(n, 112);
	struct hdr zero = { 0 };
	assert_memory_equal(got, &zero, 12);
	assert_memory_equal(got + 12, pkt + 12, 100);
	assert_int_equal(drv_used(&t, 1, &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 0);
	assert_int_equal(t.notified[1], 1);
	struct virtio_net_stats st;
	virtio_net_get_stats(t.d, &st);
	assert_int_equal(st.tx_packets, 1);
	assert_int_equal(st.tx_bytes, 100);
	env_stop(&t);
}

/* TX limited to 2 frames per second: the third frame waits in the ring (it
 * is not dropped) and goes out once the bucket has refilled; lifting the
 * limit is immediate. Real clock: the device reads CLOCK_MONOTONIC. */
static void test_tx_rate_limit(void **state)
{
	(void)state;
	struct env t;
	uint8_t pkt[12 + 60] = { 0 }, got[200];
	struct virtio_net_stats st;
	struct ratelimit_config none = { { 0, 0, 0 }, { 0, 0, 0 } };
	struct ratelimit_config two_pps = { .ops = { .size = 2, .refill_time_ms = 1000 } };

	env_start(&t, 0, NULL);
	virtio_net_set_rate_limit(t.d, &none, &two_pps);
	for (int i = 0; i < 3; i++) {
		fill(pkt + 12, 60, (uint8_t)i);
		struct seg s[] = { { .len = sizeof(pkt), .data = pkt } };
		drv_post(&t, 1, s, 1);
	}
	t.d->ops->queue_notify(t.d, 1);
	assert_int_equal(peer_recv(&t, got, sizeof(got)), 72);
	assert_int_equal(peer_recv(&t, got, sizeof(got)), 72);
	assert_int_equal(recv(t.peer, got, sizeof(got), MSG_DONTWAIT), -1);  /* third held */
	virtio_net_get_stats(t.d, &st);
	assert_int_equal(st.tx_packets, 2);
	assert_true(st.tx_throttled >= 1);
	assert_int_equal(st.tx_dropped, 0);

	usleep(600 * 1000);               /* > 500 ms: one token back */
	t.d->ops->queue_notify(t.d, 1);   /* no event loop here: the kick re-checks */
	assert_int_equal(peer_recv(&t, got, sizeof(got)), 72);
	assert_int_equal(got[12], 2);      /* the third frame (fill seed 2) */
	virtio_net_get_stats(t.d, &st);
	assert_int_equal(st.tx_packets, 3);

	/* at the limit again, then lifted: the next frame passes at once */
	struct seg s2[] = { { .len = sizeof(pkt), .data = pkt } };
	drv_post(&t, 1, s2, 1);
	drv_post(&t, 1, s2, 1);
	t.d->ops->queue_notify(t.d, 1);
	virtio_net_set_rate_limit(t.d, &none, &none);
	t.d->ops->queue_notify(t.d, 1);
	virtio_net_get_stats(t.d, &st);
	assert_int_equal(st.tx_packets, 5);
	env_stop(&t);
}

static void test_tx_offload_header_passthrough(void **state)
{
	(void)state;
	struct env t;
	uint8_t pkt[12 + 200], got[300];
	/* TCPv4 TSO with partial checksum at 34+16; unknown flag bit 0x40 is
	 * dropped, hdr_len/gso_size kept. */
	struct hdr h = { .flags = 1 | 0x40, .gso_type = 1, .hdr_len = 54, .gso_size = 100,
			 .csum_start = 34, .csum_offset = 16 };

	env_start(&t, F_CSUM | F_HOST_TSO4, NULL);
	memcpy(pkt, &h, 12);
	fill(pkt + 12, 200, 3);
	struct seg s[] = { { .len = sizeof(pkt), .data = pkt } };
	drv_post(&t, 1, s, 1);
	t.d->ops->queue_notify(t.d, 1);
	assert_int_equal(peer_recv(&t, got, sizeof(got)), sizeof(pkt));
	struct hdr out;
	memcpy(&out, got, 12);
	assert_int_equal(out.flags, 1);
	assert_int_equal(out.gso_type, 1);
	assert_int_equal(out.hdr_len, 54);
	assert_int_equal(out.gso_size, 100);
	assert_int_equal(out.csum_start, 34);
	assert_int_equal(out.csum_offset, 16);
	assert_int_equal(out.num_buffers, 0);
	env_stop(&t);
}

static void test_tx_too_big(void **state)
{
	(void)state;
	struct env t;
	size_t big = 12 + 65551;
	uint8_t *pkt = calloc(1, big);
	uint8_t got[64];
	uint32_t id, len;
	struct virtio_net_stats st;

	env_start(&t, F_CSUM, NULL);
	struct seg s[] = { { .len = (uint32_t)big, .data = pkt } };
	uint16_t head = drv_post(&t, 1, s, 1);
	t.d->ops->queue_notify(t.d, 1);
	assert_int_equal(peer_recv(&t, got, sizeof(got)), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(drv_used(&t, 1, &id, &len), 1); /* completed, not leaked */
	assert_int_equal(id, head);
	virtio_net_get_stats(t.d, &st);
	assert_int_equal(st.tx_errors, 1);
	assert_int_equal(st.tx_packets, 0);

	/* the largest legal frame still goes out; the device is not broken */
	struct seg s2[] = { { .len = 12 + 65550, .data = pkt } };
	drv_post(&t, 1, s2, 1);
	t.d->ops->queue_notify(t.d, 1);
	uint8_t *rx = malloc(big);
	assert_int_equal(peer_recv(&t, rx, big), 12 + 65550);
	assert_int_equal(t.d->status & VIRTIO_STATUS_NEEDS_RESET, 0);
	free(rx);
	free(pkt);
	env_stop(&t);
}

static void test_tx_malformed(void **state)
{
	(void)state;
	struct env t;
	uint8_t pkt[12 + 100], got[200];
	const struct { struct hdr h; uint32_t len; } bad[] = {
		{ { .flags = 1, .csum_start = 90, .csum_offset = 9 }, 12 + 100 },  /* csum past end */
		{ { .gso_type = 3, .flags = 1, .gso_size = 10 }, 12 + 100 },       /* UDP (UFO) */
		{ { .gso_type = 4, .flags = 1, .gso_size = 10 }, 12 + 100 },       /* TSO6 not negotiated */
		{ { .gso_type = 1, .gso_size = 10 }, 12 + 100 },                   /* GSO without NEEDS_CSUM */
		{ { .gso_type = 1, .flags = 1, .gso_size = 0 }, 12 + 100 },        /* gso_size 0 */
		{ { .gso_type = 1, .flags = 1, .gso_size = 10, .hdr_len = 101 }, 12 + 100 },
		{ { .gso_type = 0x80 }, 12 + 100 },                                /* ECN without GSO */
		{ { 0 }, 12 + 13 },                                                /* runt frame */
		{ { 0 }, 11 },                                                     /* no full header */
	};
	unsigned nbad = sizeof(bad) / sizeof(bad[0]);
	uint32_t id, len;
	struct virtio_net_stats st;

	env_start(&t, F_CSUM | F_HOST_TSO4, NULL);
	for (unsigned i = 0; i < nbad; i++) {
		memcpy(pkt, &bad[i].h, 12);
		struct seg s[] = { { .len = bad[i].len, .data = pkt } };
		drv_post(&t, 1, s, 1);
	}
	t.d->ops->queue_notify(t.d, 1);
	assert_int_equal(peer_recv(&t, got, sizeof(got)), -1);
	for (unsigned i = 0; i < nbad; i++)
		assert_int_equal(drv_used(&t, 1, &id, &len), 1);
	virtio_net_get_stats(t.d, &st);
	assert_int_equal(st.tx_errors, nbad);
	assert_int_equal(t.d->status & VIRTIO_STATUS_NEEDS_RESET, 0);
	env_stop(&t);
}

static void test_tx_csum_not_negotiated(void **state)
{
	(void)state;
	struct env t;
	uint8_t pkt[12 + 60] = { 1 }, got[100];
	struct virtio_net_stats st;

	env_start(&t, 0, NULL);
	struct seg s[] = { { .len = sizeof(pkt), .data = pkt } };
	drv_post(&t, 1, s, 1);
	t.d->ops->queue_notify(t.d, 1);
	assert_int_equal(peer_recv(&t, got, sizeof(got)), -1);
	virtio_net_get_stats(t.d, &st);
	assert_int_equal(st.tx_errors, 1);
	env_stop(&t);
}

static void test_tx_ring_error_needs_reset(void **state)
{
	(void)state;
	struct env t;

	env_start(&t, 0, NULL);
	struct seg s[] = { { .len = 100, .gpa = MEM_SIZE - 50 } }; /* runs past RAM */
	drv_post(&t, 1, s, 1);
	t.d->ops->queue_notify(t.d, 1);
	assert_true(t.d->status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(t.config_irqs, 1);
	assert_int_equal(used_idx(&t, 1), 0);
	env_stop(&t);
}

/* A full "tap" holds the chain back; it goes out once the fd is writable
 * again, nothing is dropped and the order is kept. */
static void test_tx_backpressure(void **state)
{
	(void)state;
	struct env t;
	struct eventloop loop;
	enum { N = 40 };
	uint8_t pkt[12 + 100] = { 0 }, got[200];
	struct virtio_net_stats st;
	struct timeval tv = { .tv_sec = 5 };

	assert_int_equal(eventloop_init(&loop), 0);
	env_start(&t, 0, &loop);
	int small = 4096;
	setsockopt(t.devfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	for (unsigned i = 0; i < N; i++) {
		pkt[12] = (uint8_t)i;
		struct seg s[] = { { .len = sizeof(pkt), .data = pkt } };
		drv_post(&t, 1, s, 1);
	}
	t.d->ops->queue_notify(t.d, 1);
	uint16_t first = used_idx(&t, 1);
	assert_true(first > 0 && first < N); /* the peer's queue filled up */

	assert_int_equal(eventloop_start(&loop, "test-io"), 0);
	setsockopt(t.peer, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(recv(t.peer, got, sizeof(got), 0), sizeof(pkt));
		assert_int_equal(got[12], i);
	}
	for (int i = 0; i < 2000 && used_idx(&t, 1) != N; i++)
		usleep(1000);
	eventloop_stop(&loop);
	assert_int_equal(used_idx(&t, 1), N);
	virtio_net_get_stats(t.d, &st);
	assert_int_equal(st.tx_packets, N);
	assert_int_equal(st.tx_dropped + st.tx_errors, 0);
	env_stop(&t);
	eventloop_destroy(&loop);
}

/* The header is read once: a chain the full "tap" held back goes out with
 * the header the device read at pop, even if the guest rewrites it while
 * the chain waits. */
static void test_tx_held_header_read_once(void **state)
{
	(void)state;
	struct env t;
	enum { N = 40 };
	uint8_t pkt[12 + 100] = { 0 }, got[200];
	uint64_t gpa[N];
	struct hdr h = { .flags = 1, .csum_start = 34, .csum_offset = 16 }, out;
	int small = 4096;
	unsigned seen = 0;

	env_start(&t, F_CSUM, NULL);
	setsockopt(t.devfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	memcpy(pkt, &h, 12);
	for (unsigned i = 0; i < N; i++) {
		pkt[12] = (uint8_t)i;
		struct seg s[] = { { .len = sizeof(pkt), .data = pkt } };
		drv_post(&t, 1, s, 1);
		gpa[i] = s[0].gpa;
	}
	t.d->ops->queue_notify(t.d, 1);
	uint16_t held = used_idx(&t, 1);
	assert_true(held > 0 && held < N); /* the peer's queue filled up */
	h.csum_start = 40;
	assert_int_equal(gmem_write(&t.mem, gpa[held], &h, 12), 0);
	for (int spins = 0; seen < N; spins++) {
		assert_true(spins < 1000);
		while (seen < N && peer_recv(&t, got, sizeof(got)) == sizeof(pkt)) {
			assert_int_equal(got[12], seen);
			memcpy(&out, got, 12);
			assert_int_equal(out.csum_start, 34);
			seen++;
		}
		t.d->ops->queue_notify(t.d, 1);
	}
	assert_int_equal(used_idx(&t, 1), N);
	env_stop(&t);
}

/* ---- receive ---- */

static void peer_send_frame(struct env *t, size_t frame_len, uint8_t seed, uint8_t flags)
{
	uint8_t *m = calloc(1, 12 + frame_len);
	struct hdr h = { .flags = flags, .num_buffers = 0xeeee };
	memcpy(m, &h, 12);
	fill(m + 12, frame_len, seed);
	assert_int_equal(send(t->peer, m, 12 + frame_len, 0), (ssize_t)(12 + frame_len));
	free(m);
}

static void check_frame(struct env *t, uint64_t gpa, size_t off, size_t len, uint8_t seed)
{
	uint8_t *want = malloc(off + len), *got = malloc(len);
	fill(want, off + len, seed);
	assert_int_equal(gmem_read(&t->mem, gpa, got, len), 0);
	assert_memory_equal(got, want + off, len);
	free(want);
	free(got);
}

static struct hdr read_hdr(struct env *t, uint64_t gpa)
{
	struct hdr h;
	assert_int_equal(gmem_read(&t->mem, gpa, &h, 12), 0);
	return h;
}

static void test_rx_single_buffer(void **state)
{
	(void)state;
	struct env t;
	uint32_t id, len;
	struct virtio_net_stats st;

	env_start(&t, 0, NULL);
	/* one 1500-byte chain split in two segments */
	struct seg s[] = { { .len = 700, .write = true }, { .len = 800, .write = true } };
	uint16_t head = drv_post(&t, 0, s, 2);

	peer_send_frame(&t, 3000, 9, 0);  /* too big for the chain: dropped */
	peer_send_frame(&t, 1000, 5, 2);  /* DATA_VALID cleared without GUEST_CSUM */
	t.d->ops->queue_notify(t.d, 0);

	assert_int_equal(drv_used(&t, 0, &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 1012);
	struct hdr h = read_hdr(&t, s[0].gpa);
	assert_int_equal(h.num_buffers, 1);
	assert_int_equal(h.flags, 0);
	check_frame(&t, s[0].gpa + 12, 0, 688, 5);
	check_frame(&t, s[1].gpa, 688, 312, 5);
	assert_true(t.notified[0] >= 1);
	virtio_net_get_stats(t.d, &st);
	assert_int_equal(st.rx_packets, 1);
	assert_int_equal(st.rx_bytes, 1000);
	assert_int_equal(st.rx_dropped, 1);
	env_stop(&t);
}

static void test_rx_mergeable(void **state)
{
	(void)state;
	struct env t;
	uint32_t id, len;
	struct seg s[3][1];
	uint16_t heads[3];

	env_start(&t, F_MRG_RXBUF, NULL);
	for (unsigned i = 0; i < 3; i++) {
		s[i][0] = (struct seg){ .len = 1500, .write = true };
		heads[i] = drv_post(&t, 0, s[i], 1);
	}
	/* 3000 bytes with the header: exactly two 1500-byte buffers */
	peer_send_frame(&t, 2988, 11, 0);
	t.d->ops->queue_notify(t.d, 0);

	assert_int_equal(drv_used(&t, 0, &id, &len), 1);
	assert_int_equal(id, heads[0]);
	assert_int_equal(len, 1500);
	assert_int_equal(drv_used(&t, 0, &id, &len), 1);
	assert_int_equal(id, heads[1]);
	assert_int_equal(len, 1500);
	assert_int_equal(drv_used(&t, 0, &id, &len), 0); /* third chain untouched */
	assert_int_equal(read_hdr(&t, s[0][0].gpa).num_buffers, 2);
	check_frame(&t, s[0][0].gpa + 12, 0, 1488, 11);
	check_frame(&t, s[1][0].gpa, 1488, 1500, 11);
	env_stop(&t);
}

static void test_rx_mergeable_waits_for_more(void **state)
{
	(void)state;
	struct env t;
	uint32_t id, len;
	struct seg a[] = { { .len = 1500, .write = true } };
	struct seg b[] = { { .len = 1500, .write = true } };

	env_start(&t, F_MRG_RXBUF, NULL);
	drv_post(&t, 0, a, 1);
	peer_send_frame(&t, 2000, 13, 0);
	t.d->ops->queue_notify(t.d, 0);
	assert_int_equal(used_idx(&t, 0), 0); /* half a frame is never published */

	drv_post(&t, 0, b, 1);
	t.d->ops->queue_notify(t.d, 0);
	assert_int_equal(used_idx(&t, 0), 2);
	assert_int_equal(drv_used(&t, 0, &id, &len), 1);
	assert_int_equal(len, 1500);
	assert_int_equal(drv_used(&t, 0, &id, &len), 1);
	assert_int_equal(len, 512);
	assert_int_equal(read_hdr(&t, a[0].gpa).num_buffers, 2);
	check_frame(&t, b[0].gpa, 1488, 512, 13);
	env_stop(&t);
}

static void test_rx_no_buffers_keeps_frame(void **state)
{
	(void)state;
	struct env t;
	uint8_t probe[64];
	uint32_t id, len;

	env_start(&t, F_MRG_RXBUF, NULL);
	peer_send_frame(&t, 100, 17, 0);
	t.d->ops->queue_notify(t.d, 0);
	assert_int_equal(used_idx(&t, 0), 0);
	/* still queued on the "tap" */
	assert_int_equal(recv(t.devfd, probe, sizeof(probe), MSG_PEEK | MSG_DONTWAIT), 64);

	struct seg s[] = { { .len = 1500, .write = true } };
	uint16_t head = drv_post(&t, 0, s, 1);
	t.d->ops->queue_notify(t.d, 0);
	assert_int_equal(drv_used(&t, 0, &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 112);
	check_frame(&t, s[0].gpa + 12, 0, 100, 17);
	env_stop(&t);
}

static void test_rx_offload_not_negotiated(void **state)
{
	(void)state;
	struct env t;
	struct virtio_net_stats st;

	env_start(&t, 0, NULL);
	struct seg s[] = { { .len = 1500, .write = true } };
	drv_post(&t, 0, s, 1);
	peer_send_frame(&t, 100, 1, 1); /* NEEDS_CSUM, but no GUEST_CSUM */
	t.d->ops->queue_notify(t.d, 0);
	assert_int_equal(used_idx(&t, 0), 0);
	virtio_net_get_stats(t.d, &st);
	assert_int_equal(st.rx_errors, 1);

	peer_send_frame(&t, 100, 1, 0); /* the chain was kept for the next one */
	t.d->ops->queue_notify(t.d, 0);
	assert_int_equal(used_idx(&t, 0), 1);
	env_stop(&t);
}

static void test_rx_event_loop(void **state)
{
	(void)state;
	struct env t;
	struct eventloop loop;
	uint32_t id, len;

	assert_int_equal(eventloop_init(&loop), 0);
	env_start(&t, F_MRG_RXBUF | F_GUEST_CSUM, &loop);
	struct seg s[] = { { .len = 2048, .write = true } };
	uint16_t head = drv_post(&t, 0, s, 1);
	assert_int_equal(eventloop_start(&loop, "test-io"), 0);
	peer_send_frame(&t, 600, 21, 2);   /* arrives while the loop watches */

	for (int i = 0; i < 2000 && used_idx(&t, 0) == 0; i++)
		usleep(1000);
	eventloop_stop(&loop);
	assert_int_equal(drv_used(&t, 0, &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 612);
	assert_int_equal(read_hdr(&t, s[0].gpa).flags, 2); /* DATA_VALID kept */
	assert_true(t.notified[0] >= 1);
	env_stop(&t);
	eventloop_destroy(&loop);
}

/* ---- config, link ---- */

static void test_config_and_link(void **state)
{
	(void)state;
	struct env t;
	uint8_t cfg[10], mac[6];
	uint8_t pkt[12 + 60] = { 0 }, got[100];
	struct virtio_net_stats st;

	env_start(&t, F_STATUS | F_MAC, NULL);
	uint64_t f = t.d->ops->features(t.d);
	assert_true(f & F_MRG_RXBUF);
	assert_false(f & (1ull << 17));  /* no control queue */
	assert_false(f & (1ull << 22));  /* no multiqueue */
	assert_int_equal(t.d->ops->config_size, 10);

	t.d->ops->config_read(t.d, 0, cfg, 10);
	net_mac_generate("vm1", "net0", mac);
	assert_memory_equal(cfg, mac, 6);
	assert_int_equal(cfg[6] | cfg[7] << 8, 1); /* LINK_UP */

	virtio_net_set_link(t.d, false);
	assert_int_equal(t.config_irqs, 1);
	t.d->ops->config_read(t.d, 6, cfg, 2);
	assert_int_equal(cfg[0] | cfg[1] << 8, 0);
	struct seg s[] = { { .len = sizeof(pkt), .data = pkt } };
	drv_post(&t, 1, s, 1);
	t.d->ops->queue_notify(t.d, 1);
	assert_int_equal(peer_recv(&t, got, sizeof(got)), -1);
	virtio_net_get_stats(t.d, &st);
	assert_int_equal(st.tx_dropped, 1);
	assert_int_equal(used_idx(&t, 1), 1);

	virtio_net_set_link(t.d, true);
	assert_int_equal(t.config_irqs, 2);
	virtio_net_set_link(t.d, true); /* no change, no interrupt */
	assert_int_equal(t.config_irqs, 2);
	env_stop(&t);
}

/* ---- MAC addresses ---- */

static void test_mac_generate(void **state)
{
	(void)state;
	uint8_t a[6], b[6], c[6], d[6];
	char name[32];

	net_mac_generate("web1", "net0", a);
	net_mac_generate("web1", "net0", b);
	assert_memory_equal(a, b, 6);
	net_mac_generate("web1", "net1", c);
	assert_memory_not_equal(a, c, 6);
	net_mac_generate("web2", "net0", c);
	assert_memory_not_equal(a, c, 6);
	net_mac_generate("ab", "c", c);
	net_mac_generate("a", "bc", d);
	assert_memory_not_equal(c, d, 6);
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "vm%d", i);
		net_mac_generate(name, "net0", a);
		assert_int_equal(a[0] & 3, 2); /* unicast, locally administered */
	}
}

static void test_mac_parse(void **state)
{
	(void)state;
	uint8_t mac[6];
	const uint8_t want[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
	char buf[18];

	assert_int_equal(net_mac_parse("52:54:00:ab:CD:ef", mac), 0);
	assert_memory_equal(mac, want, 6);
	net_mac_format(mac, buf);
	assert_string_equal(buf, "52:54:00:ab:cd:ef");

	const char *bad[] = {
		"", "52:54:00:ab:cd", "52:54:00:ab:cd:ef:01", "52-54-00-ab-cd-ef",
		"5:54:00:ab:cd:ef", "52:54:00:ab:cd:eg", "52:54:00:ab:cd:ef ", " 52:54:00:ab:cd:ef",
		"525400abcdef", "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(mac, 0x11, 6);
		assert_int_equal(net_mac_parse(bad[i], mac), -EINVAL);
		assert_int_equal(mac[0], 0x11); /* untouched on failure */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tx_split_header),
		cmocka_unit_test(test_tx_rate_limit),
		cmocka_unit_test(test_tx_offload_header_passthrough),
		cmocka_unit_test(test_tx_too_big),
		cmocka_unit_test(test_tx_malformed),
		cmocka_unit_test(test_tx_csum_not_negotiated),
		cmocka_unit_test(test_tx_ring_error_needs_reset),
		cmocka_unit_test(test_tx_backpressure),
		cmocka_unit_test(test_tx_held_header_read_once),
		cmocka_unit_test(test_rx_single_buffer),
		cmocka_unit_test(test_rx_mergeable),
		cmocka_unit_test(test_rx_mergeable_waits_for_more),
		cmocka_unit_test(test_rx_no_buffers_keeps_frame),
		cmocka_unit_test(test_rx_offload_not_negotiated),
		cmocka_unit_test(test_rx_event_loop),
		cmocka_unit_test(test_config_and_link),
		cmocka_unit_test(test_mac_generate),
		cmocka_unit_test(test_mac_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
