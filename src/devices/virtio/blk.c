/* virtio block device (virtio 1.2 section 5.2): request parsing and
 * validation, config space, and completion of chains when the disk backend
 * (backends/block_raw.c) finishes. Requests are parsed from one copy of the
 * guest's header; data moves directly between guest RAM and the disk. */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "backends/block.h"
#include "devices/virtio/blk.h"
#include "state/format.h"
#include "vmm/eventloop.h"

/* Feature bits (5.2.3) */
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_TOPOLOGY     10
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status (5.2.6) */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK           0
#define VIRTIO_BLK_S_IOERR        1
#define VIRTIO_BLK_S_UNSUPP       2

#define VIRTIO_BLK_DWZ_F_UNMAP    1u
#define VIRTIO_BLK_ID_BYTES       20

#define BLK_SECTOR        512ull
#define BLK_QUEUE_DEPTH   128     /* requests in flight in the backend */
#define BLK_MAX_DWZ_SEG   16      /* discard / write zeroes ranges per request */
#define BLK_MAX_DWZ_SECTORS (1u << 22) /* 2 GiB per range */
#define BLK_HDR_BYTES     16

/* Device configuration layout (5.2.4), the fields up to write_zeroes_may_unmap. */
struct blk_cfg_space {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads, sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp, alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback, unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap, unused1[3];
} __attribute__((packed));
_Static_assert(offsetof(struct blk_cfg_space, blk_size) == 20, "blk_size offset");
_Static_assert(offsetof(struct blk_cfg_space, max_discard_sectors) == 36, "discard offset");
_Static_assert(sizeof(struct blk_cfg_space) == 60, "config size");

struct blk_dwz_seg {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

/* 5.2.6: the request header at the start of the out-segments. */
struct blk_hdr {
	uint32_t type, reserved;
	uint64_t sector;
};

struct blk_dev {
	struct virtio_dev *vdev;
	struct blk_backend *be;
	struct eventloop *loop;
	struct blk_cfg_space cfg;
	uint64_t capacity;          /* sectors */
	char serial[VIRTIO_BLK_ID_BYTES];
	char *name;                 /* for logs */
	unsigned generation;        /* bumped by reset: stale completions are dropped */
	bool dying;
	bool need_signal;
	struct virtq_elem elem;     /* scratch for virtq_pop */
	/* elem's header, copied once when it is popped: the limiter charges
	 * and blk_handle executes this copy, so a guest that rewrites the
	 * header while the chain is held cannot be charged as one request
	 * and run as another. */
	struct blk_hdr hdr;
	/* Rate limiting. The API thread updates the limiter, so it sits under
	 * limit_lock. A chain the limiter refused stays in elem (held) until
	 * timer_fd fires or the driver kicks again. */
	pthread_mutex_t limit_lock;
	struct ratelimit limit;
	uint64_t (*now_ns)(void);
	int timer_fd;               /* -1 without an event loop */
	bool held;
	unsigned held_generation;
};

/* One request handed to the backend; lives until its last completion. */
struct blk_req {
	struct blk_dev *dev;
	unsigned generation;
	uint16_t head;
	uint32_t type;
	uint32_t used_len;          /* in-segment bytes (data + status) */
	uint8_t *status;            /* last byte of the last in-segment */
	uint64_t off;               /* next byte offset on disk (IN/OUT) */
	uint64_t left;              /* bytes still to transfer (IN/OUT) */
	unsigned iov_pos, iov_num;
	unsigned seg_pos, seg_num;  /* discard / write zeroes ranges */
	struct blk_dwz_seg segs[BLK_MAX_DWZ_SEG];
	struct iovec iov[];         /* data segments; adjusted on short I/O */
};

static bool blk_running(const struct virtio_dev *d)
{
	uint8_t st = __atomic_load_n(&d->status, __ATOMIC_ACQUIRE);
	return (st & VIRTIO_STATUS_DRIVER_OK) && !(st & VIRTIO_STATUS_NEEDS_RESET) && d->vq[0].ready;
}

static void blk_complete(struct blk_dev *b, uint16_t head, uint8_t *status, uint8_t st,
			 uint32_t used_len)
{
	struct virtio_dev *d = b->vdev;
	*status = st;
	gmem_mark_dirty_host(d->mem, status, 1);
	if (st != VIRTIO_BLK_S_OK)
		d->stat_errors++;
	d->stat_ops++;
	/* The status byte sits at the end of the writable area, so the used
	 * length always covers the whole device-writable part (2.7.8). */
	virtq_push(&d->vq[0], head, used_len);
	b->need_signal = true;
}

/* After a reset (or while tearing down) the chain no longer belongs to a
 * live ring: it is dropped without touching the rings. */
static bool blk_req_stale(const struct blk_req *r)
{
	return r->dev->dying || r->generation != r->dev->generation;
}

static void blk_req_finish(struct blk_req *r, uint8_t st)
{
	if (!blk_req_stale(r))
		blk_complete(r->dev, r->head, r->status, st, r->used_len);
	free(r);
}

static uint8_t blk_errno_status(int64_t res)
{
	return res == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
}

static void blk_iov_advance(struct blk_req *r, uint64_t n)
{
	while (n && r->iov_pos < r->iov_num) {
		struct iovec *v = &r->iov[r->iov_pos];
		if (n < v->iov_len) {
			v->iov_base = (uint8_t *)v->iov_base + n;
			v->iov_len -= n;
			return;
		}
		n -= v->iov_len;
		r->iov_pos++;
	}
}

static void blk_rw_done(void *opaque, int64_t res);

static int blk_rw_submit(struct blk_req *r)
{
	struct blk_backend *be = r->dev->be;
	const struct iovec *iov = &r->iov[r->iov_pos];
	unsigned n = r->iov_num - r->iov_pos;
	if (r->type == VIRTIO_BLK_T_IN)
		return be->ops->readv(be, r->off, iov, n, blk_rw_done, r);
	return be->ops->writev(be, r->off, iov, n, blk_rw_done, r);
}

static void blk_rw_done(void *opaque, int64_t res)
{
	struct blk_req *r = opaque;
	struct virtio_dev *d = r->dev->vdev;

	/* The backend wrote these into guest RAM, even for a request a reset
	 * abandoned: migration must copy them again either way. */
	if (r->type == VIRTIO_BLK_T_IN && res > 0)
		virtq_iov_mark_dirty(d->mem, &r->iov[r->iov_pos], r->iov_num - r->iov_pos,
				     (size_t)res);
	if (blk_req_stale(r)) {
		free(r);
		return;
	}
	if (res < 0 || (res == 0 && r->type == VIRTIO_BLK_T_OUT) || (uint64_t)res > r->left) {
		if (res < 0)
			log_ratelimited(&d->rl, LOG_WARN, "%s %s: %s at byte %llu: %s", d->ops->name,
					r->dev->name,
					r->type == VIRTIO_BLK_T_IN ? "read" : "write",
					(unsigned long long)r->off, strerror((int)-res));
		blk_req_finish(r, VIRTIO_BLK_S_IOERR);
		return;
	}
	if (r->type == VIRTIO_BLK_T_IN)
		d->stat_bytes_in += (uint64_t)res;
	else
		d->stat_bytes_out += (uint64_t)res;
	if (res == 0) {
		/* Read at end of file (the image shrank under us): the missing
		 * tail reads as zeroes, like a sparse hole. */
		for (unsigned i = r->iov_pos; i < r->iov_num; i++)
			memset(r->iov[i].iov_base, 0, r->iov[i].iov_len);
		virtq_iov_mark_dirty(d->mem, &r->iov[r->iov_pos], r->iov_num - r->iov_pos, r->left);
		blk_req_finish(r, VIRTIO_BLK_S_OK);
		return;
	}
	r->left -= (uint64_t)res;
	r->off += (uint64_t)res;
	blk_iov_advance(r, (uint64_t)res);
	if (r->left == 0) {
		blk_req_finish(r, VIRTIO_BLK_S_OK);
		return;
	}
	/* Short transfer: continue with the rest. The slot this completion
	 * used is free again, so the resubmit cannot hit the depth limit. */
	if (blk_rw_submit(r) < 0)
		blk_req_finish(r, VIRTIO_BLK_S_IOERR);
}

static void blk_simple_done(void *opaque, int64_t res)
{
	blk_req_finish(opaque, res < 0 ? blk_errno_status(res) : VIRTIO_BLK_S_OK);
}

static int blk_dwz_submit(struct blk_req *r);

static void blk_dwz_done(void *opaque, int64_t res)
{
	struct blk_req *r = opaque;
	if (blk_req_stale(r)) {
		free(r);
		return;
	}
	if (res < 0) {
		/* 5.2.6: on IOERR the state of the individual ranges is
		 * indeterminate, so stop at the first failure. */
		blk_req_finish(r, blk_errno_status(res));
		return;
	}
	if (++r->seg_pos == r->seg_num) {
		blk_req_finish(r, VIRTIO_BLK_S_OK);
		return;
	}
	if (blk_dwz_submit(r) < 0)
		blk_req_finish(r, VIRTIO_BLK_S_IOERR);
}

static int blk_dwz_submit(struct blk_req *r)
{
	struct blk_backend *be = r->dev->be;
	const struct blk_dwz_seg *s = &r->segs[r->seg_pos];
	uint64_t off = s->sector * BLK_SECTOR, len = (uint64_t)s->num_sectors * BLK_SECTOR;
	if (r->type == VIRTIO_BLK_T_DISCARD)
		return be->ops->discard(be, off, len, blk_dwz_done, r);
	return be->ops->write_zeroes(be, off, len, s->flags & VIRTIO_BLK_DWZ_F_UNMAP, blk_dwz_done, r);
}

static bool blk_range_ok(const struct blk_dev *b, uint64_t sector, uint64_t nsectors)
{
	return sector <= b->capacity && nsectors <= b->capacity - sector;
}

/* Validate the discard / write zeroes ranges in the out data: a status, or
 * 0xff when they are fine. */
static uint8_t blk_dwz_parse(struct blk_dev *b, const struct virtq_elem *e, struct blk_req *r)
{
	uint64_t bytes = e->out_len - BLK_HDR_BYTES;
	bool discard = r->type == VIRTIO_BLK_T_DISCARD;
	unsigned max = discard ? b->cfg.max_discard_seg : b->cfg.max_write_zeroes_seg;

	if (bytes == 0 || bytes % sizeof(struct blk_dwz_seg) || bytes / sizeof(struct blk_dwz_seg) > max)
		return VIRTIO_BLK_S_IOERR;
	r->seg_num = (unsigned)(bytes / sizeof(struct blk_dwz_seg));
	virtq_iov_to_buf(e->iov, e->out_num, BLK_HDR_BYTES, r->segs,
			 r->seg_num * sizeof(struct blk_dwz_seg));
	for (unsigned i = 0; i < r->seg_num; i++) {
		const struct blk_dwz_seg *s = &r->segs[i];
		/* 5.2.6.2: unknown flags, or unmap on a discard, are UNSUPP. */
		if ((s->flags & ~VIRTIO_BLK_DWZ_F_UNMAP) || (discard && (s->flags & VIRTIO_BLK_DWZ_F_UNMAP)))
			return VIRTIO_BLK_S_UNSUPP;
		if (s->num_sectors > BLK_MAX_DWZ_SECTORS || !blk_range_ok(b, s->sector, s->num_sectors))
			return VIRTIO_BLK_S_IOERR;
	}
	return 0xff;
}

/* Copy the data segments of the chain into r->iov: for reads the
 * in-segments minus the status byte, for writes the out-segments after the
 * header. */
static void blk_data_iov(const struct virtq_elem *e, struct blk_req *r, bool read)
{
	unsigned n = 0;
	if (read) {
		for (unsigned i = 0; i < e->in_num; i++)
			r->iov[n++] = e->iov[e->out_num + i];
		r->iov[n - 1].iov_len--;
		if (r->iov[n - 1].iov_len == 0)
			n--;
	} else {
		size_t skip = BLK_HDR_BYTES;
		for (unsigned i = 0; i < e->out_num; i++) {
			struct iovec v = e->iov[i];
			if (skip >= v.iov_len) {
				skip -= v.iov_len;
				continue;
			}
			v.iov_base = (uint8_t *)v.iov_base + skip;
			v.iov_len -= skip;
			skip = 0;
			r->iov[n++] = v;
		}
	}
	r->iov_num = n;
}

/* Start one popped chain. false: the chain is malformed and the device
 * needs a reset. */
static bool blk_handle(struct blk_dev *b, const struct virtq_elem *e, const struct blk_hdr *h)
{
	struct virtio_dev *d = b->vdev;
	const struct blk_hdr hdr = *h;

	/* Without a header or a status byte there is no way to answer the
	 * request at all; the driver broke 5.2.6.1, treat the ring as broken
	 * (as other devices treat a malformed ring). */
	if (e->out_len < BLK_HDR_BYTES || e->in_len < 1) {
		virtio_dev_needs_reset(d, e->in_len < 1 ? "request without a status byte"
						       : "request header shorter than 16 bytes");
		return false;
	}
	const struct iovec *last = &e->iov[e->out_num + e->in_num - 1];
	uint8_t *status = (uint8_t *)last->iov_base + last->iov_len - 1;
	uint32_t used_len = (uint32_t)e->in_len;
	uint64_t data_len = 0;
	bool read = hdr.type == VIRTIO_BLK_T_IN;
	uint8_t st = VIRTIO_BLK_S_IOERR;
	int rc;

	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		data_len = read ? e->in_len - 1 : e->out_len - BLK_HDR_BYTES;
		if (!read && b->be->info.read_only)
			goto done; /* 5.2.6.2: IOERR, and nothing is written */
		if (data_len % BLK_SECTOR || !blk_range_ok(b, hdr.sector, data_len / BLK_SECTOR))
			goto done;
		if (data_len == 0) {
			st = VIRTIO_BLK_S_OK;
			goto done;
		}
		break;
	case VIRTIO_BLK_T_FLUSH:
		break;
	case VIRTIO_BLK_T_GET_ID: {
		char id[VIRTIO_BLK_ID_BYTES];
		memcpy(id, b->serial, sizeof(id));
		size_t room = e->in_len - 1;
		/* NUL-pad the whole data area so every reported byte is written. */
		uint8_t zero[256] = { 0 };
		for (size_t at = sizeof(id); at < room; at += sizeof(zero))
			virtq_buf_to_iov(&e->iov[e->out_num], e->in_num, at, zero,
					 room - at < sizeof(zero) ? room - at : sizeof(zero));
		virtq_buf_to_iov(&e->iov[e->out_num], e->in_num, 0, id, room < sizeof(id) ? room : sizeof(id));
		virtq_iov_mark_dirty(d->mem, &e->iov[e->out_num], e->in_num, room);
		st = VIRTIO_BLK_S_OK;
		goto done;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		unsigned bit = hdr.type == VIRTIO_BLK_T_DISCARD ? VIRTIO_BLK_F_DISCARD
								: VIRTIO_BLK_F_WRITE_ZEROES;
		if (!virtio_has_feature(d, bit)) {
			st = VIRTIO_BLK_S_UNSUPP;
			goto done;
		}
		if (b->be->info.read_only)
			goto done;
		break;
	}
	default:
		st = VIRTIO_BLK_S_UNSUPP;
		goto done;
	}

	unsigned niov = read ? e->in_num : (hdr.type == VIRTIO_BLK_T_OUT ? e->out_num : 0);
	struct blk_req *r = calloc(1, sizeof(*r) + niov * sizeof(struct iovec));
	if (!r)
		goto done;
	*r = (struct blk_req){ .dev = b, .generation = b->generation, .head = e->head,
			       .type = hdr.type, .used_len = used_len, .status = status };
	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		blk_data_iov(e, r, read);
		r->off = hdr.sector * BLK_SECTOR;
		r->left = data_len;
		rc = blk_rw_submit(r);
		break;
	case VIRTIO_BLK_T_FLUSH:
		rc = b->be->ops->flush(b->be, blk_simple_done, r);
		break;
	default:
		st = blk_dwz_parse(b, e, r);
		if (st != 0xff) {
			free(r);
			goto done;
		}
		rc = blk_dwz_submit(r);
		break;
	}
	if (rc == 0)
		return true;
	free(r);
	st = blk_errno_status(rc);
done:
	blk_complete(b, e->head, status, st, used_len);
	return true;
}

static void blk_signal(struct blk_dev *b)
{
	if (b->need_signal) {
		b->need_signal = false;
		virtio_dev_signal_used(b->vdev, 0);
	}
}

static void blk_arm_timer(struct blk_dev *b, uint64_t ns)
{
	struct itimerspec its = { .it_value = { .tv_sec = (time_t)(ns / 1000000000u),
						.tv_nsec = (long)(ns % 1000000000u) } };
	if (b->timer_fd >= 0)
		timerfd_settime(b->timer_fd, 0, &its, NULL);
}

/* Copy a popped chain's header: the one read of it from guest memory. A
 * chain too short for one gets a zeroed copy; blk_handle refuses it. */
static void blk_read_hdr(const struct virtq_elem *e, struct blk_hdr *h)
{
	*h = (struct blk_hdr){ 0 };
	if (e->out_len >= BLK_HDR_BYTES)
		virtq_iov_to_buf(e->iov, e->out_num, 0, h, sizeof(*h));
}

/* Data bytes a chain moves (reads and writes only, as Firecracker counts). */
static uint64_t blk_cost_bytes(const struct virtq_elem *e, const struct blk_hdr *h)
{
	if (e->out_len < BLK_HDR_BYTES || e->in_len < 1)
		return 0;
	if (h->type == VIRTIO_BLK_T_IN)
		return e->in_len - 1;
	return h->type == VIRTIO_BLK_T_OUT ? e->out_len - BLK_HDR_BYTES : 0;
}

/* Charge one request to the limiter. false: throttled; the chain is held in
 * b->elem and the timer is armed for when it may pass. */
static bool blk_admit(struct blk_dev *b, const struct virtq_elem *e, const struct blk_hdr *h)
{
	uint64_t bytes = blk_cost_bytes(e, h), now = b->now_ns(), wait = 0;
	bool ok;

	pthread_mutex_lock(&b->limit_lock);
	ok = ratelimit_consume(&b->limit, bytes, 1, now);
	if (!ok)
		wait = ratelimit_wait_ns(&b->limit, bytes, 1, now);
	pthread_mutex_unlock(&b->limit_lock);
	b->held = !ok;
	if (ok)
		return true;
	b->held_generation = b->generation;
	b->vdev->stat_throttled++;
	blk_arm_timer(b, wait);
	return false;
}

/* Pop and start requests while the backend has room. When it is full we
 * stop; completions call this again, so requests the driver queued
 * meanwhile are not forgotten even though it will not kick again. */
static void blk_process(struct blk_dev *b)
{
	struct virtio_dev *d = b->vdev;
	struct virtq *q = &d->vq[0];
	const char *why = NULL;

	while (!b->dying && blk_running(d) && !blk_backend_full(b->be)) {
		if (!b->held || b->held_generation != b->generation) {
			b->held = false;
			int rc = virtq_pop(q, &b->elem, &why);
			if (rc < 0) {
				virtio_dev_needs_reset(d, why);
				break;
			}
			if (rc == 0) {
				if (virtq_has_work(q))
					continue;
				break;
			}
			blk_read_hdr(&b->elem, &b->hdr);
		}
		if (!blk_admit(b, &b->elem, &b->hdr))
			break;
		if (!blk_handle(b, &b->elem, &b->hdr))
			break;
	}
	b->be->ops->kick(b->be);
	blk_signal(b);
}

static void blk_queue_notify(struct virtio_dev *d, unsigned q)
{
	if (q == 0)
		blk_process(d->priv);
}

int virtio_blk_lock(struct virtio_dev *d, unsigned timeout_ms)
{
	struct blk_dev *b = d->priv;
	return b->be->ops->lock ? b->be->ops->lock(b->be, timeout_ms) : 0;
}

int virtio_blk_poll(struct virtio_dev *d, bool wait)
{
	struct blk_dev *b = d->priv;
	int n = blk_backend_poll(b->be, wait);
	if (n < 0)
		return n;
	blk_process(b);
	return n;
}

static void blk_on_backend_event(void *opaque, uint32_t events)
{
	(void)events;
	struct virtio_dev *d = opaque;
	int rc = virtio_blk_poll(d, false);
	if (rc < 0)
		log_ratelimited(&d->rl, LOG_WARN, "%s: completion poll: %s", d->ops->name, strerror(-rc));
}

static void blk_on_timer(void *opaque, uint32_t events)
{
	struct blk_dev *b = opaque;
	uint64_t expirations;
	(void)events;
	if (read(b->timer_fd, &expirations, sizeof(expirations)) < 0)
		return; /* spurious: nothing expired */
	blk_process(b);
}

void virtio_blk_set_rate_limit(struct virtio_dev *d, const struct ratelimit_config *cfg)
{
	struct blk_dev *b = d->priv;
	pthread_mutex_lock(&b->limit_lock);
	ratelimit_update(&b->limit, cfg, b->now_ns());
	pthread_mutex_unlock(&b->limit_lock);
	blk_arm_timer(b, 1); /* a held request may pass now: let the loop look */
}

void virtio_blk_set_clock(struct virtio_dev *d, uint64_t (*now_ns)(void))
{
	struct blk_dev *b = d->priv;
	pthread_mutex_lock(&b->limit_lock);
	b->now_ns = now_ns;
	pthread_mutex_unlock(&b->limit_lock);
}

static uint64_t blk_features(struct virtio_dev *d)
{
	struct blk_dev *b = d->priv;
	const struct blk_backend_info *in = &b->be->info;
	uint64_t f = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
		     1ull << VIRTIO_BLK_F_TOPOLOGY | 1ull << VIRTIO_BLK_F_FLUSH;
	if (in->read_only)
		f |= 1ull << VIRTIO_BLK_F_RO;
	if (!in->read_only && in->can_discard)
		f |= 1ull << VIRTIO_BLK_F_DISCARD;
	if (!in->read_only && in->can_write_zeroes)
		f |= 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	return f;
}

static int blk_activate(struct virtio_dev *d)
{
	(void)d;
	return 0;
}

static void blk_reset(struct virtio_dev *d)
{
	struct blk_dev *b = d->priv;
	/* Requests still in the backend finish later into guest RAM (which
	 * stays mapped) but their chains are no longer pushed. */
	b->generation++;
	b->need_signal = false;
	/* A held chain is dropped through held_generation. */
}

static void blk_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	struct blk_dev *b = d->priv;
	if (off <= sizeof(b->cfg) && len <= sizeof(b->cfg) - off)
		memcpy(buf, (const uint8_t *)&b->cfg + off, len);
}

static void blk_config_write(struct virtio_dev *d, uint32_t off, const void *buf, uint32_t len)
{
	/* Nothing is writable without VIRTIO_BLK_F_CONFIG_WCE. */
	(void)d; (void)off; (void)buf; (void)len;
}

/* Snapshots: every request the backend has is completed (completions may
 * start more that the driver queued; those are waited for too), and a
 * chain the rate limiter holds goes back to the ring. */
static int blk_quiesce(struct virtio_dev *d)
{
	struct blk_dev *b = d->priv;
	int rc = 0;

	while (b->be->inflight && rc >= 0)
		rc = virtio_blk_poll(d, true);
	if (b->held && b->held_generation == b->generation)
		virtq_unpop(&d->vq[0], 1);
	b->held = false;   /* the limiter's timer pops it again */
	return rc < 0 ? rc : 0;
}

/* The config space as the guest reads it (its layout is the spec's,
 * little-endian: blk_cfg_space is packed and its offsets asserted). The
 * guest keeps what it saw; the disk behind it must have the same size. */
static int blk_save(struct virtio_dev *d, struct snap_buf *b)
{
	struct blk_dev *bd = d->priv;
	snap_buf_put(b, &bd->cfg, sizeof(bd->cfg));
	return b->err;
}

static int blk_load(struct virtio_dev *d, struct snap_cur *c, char *err, size_t errlen)
{
	struct blk_dev *bd = d->priv;
	struct blk_cfg_space cfg;

	snap_cur_get(c, &cfg, sizeof(cfg));
	if (snap_cur_end(c))
		return -EINVAL;
	if (cfg.capacity != bd->capacity) {
		snprintf(err, errlen, "disk %s has %llu sectors, the snapshot's had %llu", bd->name,
			 (unsigned long long)bd->capacity, (unsigned long long)cfg.capacity);
		return -EINVAL;
	}
	/* blk_dwz_parse sizes its copy by these. */
	if (cfg.max_discard_seg > BLK_MAX_DWZ_SEG || cfg.max_write_zeroes_seg > BLK_MAX_DWZ_SEG)
		return -EINVAL;
	bd->cfg = cfg;
	return 0;
}

static void blk_destroy(struct virtio_dev *d)
{
	struct blk_dev *b = d->priv;
	b->dying = true;
	if (b->loop) {
		eventloop_del(b->loop, b->be->event_fd);
		eventloop_del(b->loop, b->timer_fd);
	}
	blk_backend_close(b->be); /* waits for in-flight requests, which are dropped */
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	pthread_mutex_destroy(&b->limit_lock);
	free(b->name);
	free(b);
	free(d);
}

static const struct virtio_dev_ops blk_ops = {
	.name = "virtio-blk",
	.device_id = 2,
	.num_queues = 1,
	.queue_max_size = 256,
	.features = blk_features,
	.activate = blk_activate,
	.reset = blk_reset,
	.config_size = sizeof(struct blk_cfg_space),
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.queue_notify = blk_queue_notify,
	.destroy = blk_destroy,
	.quiesce = blk_quiesce,
	.state_version = 1,
	.save = blk_save,
	.load = blk_load,
};

static void blk_fill_config(struct blk_dev *b)
{
	const struct blk_backend_info *in = &b->be->info;
	struct blk_cfg_space *c = &b->cfg;
	uint32_t exp = 0;

	while (exp < 15 && ((uint64_t)in->logical_block << (exp + 1)) <= in->physical_block)
		exp++;
	memset(c, 0, sizeof(*c));
	c->capacity = b->capacity;
	/* Two descriptors of every chain carry the header and the status. */
	c->seg_max = VIRTQ_MAX_SEGS - 2;
	c->blk_size = in->logical_block;
	c->physical_block_exp = (uint8_t)exp;
	c->min_io_size = 1;
	c->max_discard_sectors = BLK_MAX_DWZ_SECTORS;
	c->max_discard_seg = BLK_MAX_DWZ_SEG;
	c->discard_sector_alignment = in->logical_block / BLK_SECTOR;
	c->max_write_zeroes_sectors = BLK_MAX_DWZ_SECTORS;
	c->max_write_zeroes_seg = BLK_MAX_DWZ_SEG;
	c->write_zeroes_may_unmap = in->write_zeroes_may_unmap;
}

struct virtio_dev *virtio_blk_create(const struct guest_mem *mem, struct eventloop *loop,
				     const struct blk_config *cfg, char *err, size_t errlen)
{
	struct virtio_dev *d = calloc(1, sizeof(*d));
	struct blk_dev *b = calloc(1, sizeof(*b));
	const char *serial = cfg->serial ? cfg->serial : cfg->id;

	if (!d || !b) {
		snprintf(err, errlen, "%s: out of memory", cfg->path);
		goto fail;
	}
	pthread_mutex_init(&b->limit_lock, NULL);
	b->now_ns = ratelimit_now_ns;
	ratelimit_init(&b->limit, &cfg->limit, b->now_ns());
	b->timer_fd = -1;
	if (blk_raw_open(&b->be, cfg->path, cfg->read_only, cfg->defer_lock, BLK_QUEUE_DEPTH, err,
			 errlen) < 0)
		goto fail;
	b->vdev = d;
	b->loop = loop;
	b->capacity = b->be->info.size / BLK_SECTOR;
	b->name = strdup(cfg->id ? cfg->id : cfg->path);
	if (serial) /* NUL-padded; a 20-byte serial has no terminator (5.2.6) */
		memcpy(b->serial, serial, strnlen(serial, sizeof(b->serial)));
	blk_fill_config(b);
	d->ops = &blk_ops;
	d->priv = b;
	d->mem = mem;
	if (loop) {
		int rc = eventloop_add(loop, b->be->event_fd, EPOLLIN, blk_on_backend_event, d);
		if (rc < 0) {
			snprintf(err, errlen, "%s: event loop: %s", cfg->path, strerror(-rc));
			goto fail;
		}
		b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		rc = b->timer_fd < 0 ? -errno : eventloop_add(loop, b->timer_fd, EPOLLIN, blk_on_timer, b);
		if (rc < 0) {
			eventloop_del(loop, b->be->event_fd);
			snprintf(err, errlen, "%s: rate limit timer: %s", cfg->path, strerror(-rc));
			goto fail;
		}
	}
	return d;
fail:
	if (b && d) { /* both allocated: the limiter state was set up */
		if (b->timer_fd >= 0)
			close(b->timer_fd);
		pthread_mutex_destroy(&b->limit_lock);
	}
	if (b)
		blk_backend_close(b->be);
	if (b)
		free(b->name);
	free(b);
	free(d);
	return NULL;
}
