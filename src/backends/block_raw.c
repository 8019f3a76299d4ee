/* Raw disk backend: an image file or host block device driven through
 * io_uring with a bounded queue depth; completions wake the I/O thread via an
 * eventfd registered with the ring. Synchronous syscalls stand in for
 * operations io_uring cannot do here (and for all I/O if io_uring is blocked). */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "backends/block.h"
#include "vmm/log.h"

enum raw_op { RAW_READ, RAW_WRITE, RAW_FLUSH, RAW_DISCARD, RAW_ZERO };

struct raw_req {
	blk_done_fn done;
	void *opaque;
	enum raw_op op;
	uint64_t off, len;      /* discard / write zeroes range */
	int mode;               /* fallocate mode submitted */
	int64_t res;            /* result of a synchronous operation */
	struct raw_req *next;   /* free list or finished-synchronously list */
};

struct blk_raw {
	struct blk_backend b;
	int fd;
	bool uring;                    /* ring initialised */
	bool uring_fallocate;          /* IORING_OP_FALLOCATE available */
	bool zero_range_broken;        /* FALLOC_FL_ZERO_RANGE gave EOPNOTSUPP */
	struct io_uring ring;
	struct raw_req *reqs, *free;
	struct raw_req *sync_head, *sync_tail;
	bool locked;                   /* holds the image's flock */
};

static struct raw_req *req_get(struct blk_raw *r, enum raw_op op, blk_done_fn done, void *opaque)
{
	struct raw_req *q = r->free;
	if (!q)
		return NULL;
	r->free = q->next;
	r->b.inflight++;
	*q = (struct raw_req){ .done = done, .opaque = opaque, .op = op };
	return q;
}

static void req_put(struct blk_raw *r, struct raw_req *q)
{
	q->next = r->free;
	r->free = q;
	r->b.inflight--;
}

/* Release the slot first so the callback may submit follow-up requests. */
static void req_finish(struct blk_raw *r, struct raw_req *q, int64_t res)
{
	blk_done_fn done = q->done;
	void *opaque = q->opaque;
	req_put(r, q);
	done(opaque, res);
}

/* Queue a synchronously finished request for the next poll and wake it. */
static void req_finish_later(struct blk_raw *r, struct raw_req *q, int64_t res)
{
	uint64_t one = 1;
	q->res = res;
	q->next = NULL;
	if (r->sync_tail)
		r->sync_tail->next = q;
	else
		r->sync_head = q;
	r->sync_tail = q;
	if (write(r->b.event_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("block: eventfd write: %s", strerror(errno));
}

static int64_t errno_res(ssize_t n)
{
	return n < 0 ? -(int64_t)errno : (int64_t)n;
}

static int64_t raw_sync_falloc(struct blk_raw *r, int mode, uint64_t off, uint64_t len)
{
	return fallocate(r->fd, mode, (off_t)off, (off_t)len) < 0 ? -(int64_t)errno : 0;
}

/* Block devices: discard and zeroing are ioctls with no io_uring opcode. */
static int64_t raw_sync_blkdev(struct blk_raw *r, unsigned long req, uint64_t off, uint64_t len)
{
	uint64_t range[2] = { off, len };
	return ioctl(r->fd, req, range) < 0 ? -(int64_t)errno : 0;
}

static struct io_uring_sqe *raw_sqe(struct blk_raw *r, struct raw_req *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
	if (!sqe) {
		/* Cannot happen while inflight <= depth <= SQ size; try to
		 * make room anyway. */
		io_uring_submit(&r->ring);
		sqe = io_uring_get_sqe(&r->ring);
	}
	if (sqe)
		io_uring_sqe_set_data(sqe, q);
	return sqe;
}

/* Reads, writes and flushes: one request slot, then the ring or, where
 * io_uring is refused, the synchronous call finished on the I/O thread. */
static int raw_rw(struct blk_backend *b, enum raw_op op, uint64_t off, const struct iovec *iov,
		  unsigned n, blk_done_fn done, void *opaque)
{
	struct blk_raw *r = (struct blk_raw *)b;
	struct raw_req *q = req_get(r, op, done, opaque);
	if (!q)
		return -EAGAIN;
	if (r->uring) {
		struct io_uring_sqe *sqe = raw_sqe(r, q);
		if (!sqe) {
			req_put(r, q);
			return -EAGAIN;
		}
		if (op == RAW_READ)
			io_uring_prep_readv(sqe, r->fd, iov, n, off);
		else if (op == RAW_WRITE)
			io_uring_prep_writev(sqe, r->fd, iov, n, off);
		else
			io_uring_prep_fsync(sqe, r->fd, IORING_FSYNC_DATASYNC);
		return 0;
	}
	int64_t res;
	if (op == RAW_FLUSH)
		res = fdatasync(r->fd) < 0 ? -(int64_t)errno : 0;
	else
		res = errno_res(op == RAW_READ ? preadv(r->fd, iov, (int)n, (off_t)off)
					       : pwritev(r->fd, iov, (int)n, (off_t)off));
	req_finish_later(r, q, res);
	return 0;
}

static int raw_readv(struct blk_backend *b, uint64_t off, const struct iovec *iov, unsigned n,
		     blk_done_fn done, void *opaque)
{
	return raw_rw(b, RAW_READ, off, iov, n, done, opaque);
}

static int raw_writev(struct blk_backend *b, uint64_t off, const struct iovec *iov, unsigned n,
		      blk_done_fn done, void *opaque)
{
	if (b->info.read_only)
		return -EROFS;
	return raw_rw(b, RAW_WRITE, off, iov, n, done, opaque);
}

static int raw_flush(struct blk_backend *b, blk_done_fn done, void *opaque)
{
	return raw_rw(b, RAW_FLUSH, 0, NULL, 0, done, opaque);
}

/* Submit a fallocate for q (files) through the ring when possible. */
static int raw_falloc(struct blk_raw *r, struct raw_req *q, int mode)
{
	q->mode = mode;
	if (r->uring && r->uring_fallocate) {
		struct io_uring_sqe *sqe = raw_sqe(r, q);
		if (!sqe)
			return -EAGAIN;
		io_uring_prep_fallocate(sqe, r->fd, mode, (off_t)q->off, (off_t)q->len);
		return 0;
	}
	int64_t res = raw_sync_falloc(r, mode, q->off, q->len);
	if (res == -EOPNOTSUPP && q->op == RAW_ZERO && (mode & FALLOC_FL_ZERO_RANGE) &&
	    r->b.info.write_zeroes_may_unmap) {
		r->zero_range_broken = true;
		q->mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		res = raw_sync_falloc(r, q->mode, q->off, q->len);
	}
	req_finish_later(r, q, res);
	return 0;
}

static int raw_zero_mode(const struct blk_raw *r, bool unmap)
{
	/* Punched holes read back as zeroes, so they satisfy write zeroes too. */
	if (unmap || r->zero_range_broken)
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
}

static int raw_range(struct blk_backend *b, enum raw_op op, uint64_t off, uint64_t len, bool unmap,
		     blk_done_fn done, void *opaque)
{
	struct blk_raw *r = (struct blk_raw *)b;
	bool ok = op == RAW_DISCARD ? b->info.can_discard : b->info.can_write_zeroes;
	if (b->info.read_only)
		return -EROFS;
	if (!ok)
		return -EOPNOTSUPP;
	struct raw_req *q = req_get(r, op, done, opaque);
	if (!q)
		return -EAGAIN;
	q->off = off;
	q->len = len;
	if (b->info.is_blockdev) {
		unsigned long ioc = op == RAW_DISCARD ? BLKDISCARD : BLKZEROOUT;
		req_finish_later(r, q, raw_sync_blkdev(r, ioc, off, len));
		return 0;
	}
	int mode = op == RAW_DISCARD ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
				     : raw_zero_mode(r, unmap);
	int rc = raw_falloc(r, q, mode);
	if (rc)
		req_put(r, q);
	return rc;
}

static int raw_discard(struct blk_backend *b, uint64_t off, uint64_t len, blk_done_fn done,
		       void *opaque)
{
	return raw_range(b, RAW_DISCARD, off, len, false, done, opaque);
}

static int raw_write_zeroes(struct blk_backend *b, uint64_t off, uint64_t len, bool unmap,
			    blk_done_fn done, void *opaque)
{
	return raw_range(b, RAW_ZERO, off, len, unmap, done, opaque);
}

static void raw_kick(struct blk_backend *b)
{
	struct blk_raw *r = (struct blk_raw *)b;
	if (r->uring && io_uring_sq_ready(&r->ring)) {
		int rc = io_uring_submit(&r->ring);
		if (rc < 0)
			log_warn("block: io_uring_submit: %s", strerror(-rc));
	}
}

static void raw_cqe(struct blk_raw *r, struct io_uring_cqe *cqe)
{
	struct raw_req *q = io_uring_cqe_get_data(cqe);
	int64_t res = cqe->res;

	if (q->op == RAW_ZERO && res == -EOPNOTSUPP && (q->mode & FALLOC_FL_ZERO_RANGE) &&
	    r->b.info.write_zeroes_may_unmap) {
		/* Filesystem without ZERO_RANGE (tmpfs): fall back to punching. */
		r->zero_range_broken = true;
		if (raw_falloc(r, q, raw_zero_mode(r, true)) == 0) {
			raw_kick(&r->b);
			return;
		}
	}
	req_finish(r, q, res);
}

static int raw_poll(struct blk_backend *b, bool wait)
{
	struct blk_raw *r = (struct blk_raw *)b;
	uint64_t cnt;
	int n = 0;

	/* Reset the wakeup counter before reaping so a completion that races
	 * with us re-arms the event instead of being lost. */
	if (read(b->event_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		return -errno;

	while (r->sync_head) {
		struct raw_req *q = r->sync_head;
		r->sync_head = q->next;
		if (!r->sync_head)
			r->sync_tail = NULL;
		req_finish(r, q, q->res);
		n++;
	}
	if (!r->uring)
		return n;

	struct io_uring_cqe *cqe;
	if (wait && n == 0 && b->inflight) {
		int rc = io_uring_submit_and_wait(&r->ring, 1);
		if (rc < 0 && rc != -EINTR)
			return rc;
	}
	while (io_uring_peek_cqe(&r->ring, &cqe) == 0) {
		struct io_uring_cqe copy = *cqe;
		io_uring_cqe_seen(&r->ring, cqe);
		raw_cqe(r, &copy);
		n++;
	}
	return n;
}

static void raw_close(struct blk_backend *b)
{
	struct blk_raw *r = (struct blk_raw *)b;
	/* Callers stop the device first; wait out anything still in the
	 * kernel so no completion writes into freed request slots. */
	while (b->inflight && raw_poll(b, true) >= 0)
		;
	if (r->uring)
		io_uring_queue_exit(&r->ring);
	if (b->event_fd >= 0)
		close(b->event_fd);
	if (r->fd >= 0)
		close(r->fd);
	free(r->reqs);
	free(r);
}

static int raw_lock(struct blk_backend *b, unsigned timeout_ms);

static const struct blk_backend_ops raw_ops = {
	.readv = raw_readv,
	.writev = raw_writev,
	.flush = raw_flush,
	.discard = raw_discard,
	.write_zeroes = raw_write_zeroes,
	.kick = raw_kick,
	.poll = raw_poll,
	.close = raw_close,
	.lock = raw_lock,
};

/* Does the device under fd advertise discard? (sysfs queue limits) */
static bool blkdev_can_discard(dev_t rdev)
{
	char path[96], buf[32];
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/discard_max_bytes",
		 major(rdev), minor(rdev));
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool ok = fgets(buf, sizeof(buf), f) && strtoull(buf, NULL, 10) > 0;
	fclose(f);
	return ok;
}

static int raw_probe(struct blk_raw *r, const char *path, const struct stat *st, char *err,
		     size_t errlen)
{
	struct blk_backend_info *in = &r->b.info;

	if (S_ISBLK(st->st_mode)) {
		uint64_t size;
		int lbs = 512;
		unsigned int pbs = 0;
		if (ioctl(r->fd, BLKGETSIZE64, &size) < 0) {
			snprintf(err, errlen, "%s: BLKGETSIZE64: %s", path, strerror(errno));
			return -errno;
		}
		if (ioctl(r->fd, BLKSSZGET, &lbs) < 0 || lbs < 512)
			lbs = 512;
		if (ioctl(r->fd, BLKPBSZGET, &pbs) < 0 || pbs < (unsigned)lbs)
			pbs = (unsigned)lbs;
		in->is_blockdev = true;
		in->size = size;
		in->logical_block = (uint32_t)lbs;
		in->physical_block = pbs;
		in->can_discard = !in->read_only && blkdev_can_discard(st->st_rdev);
		in->can_write_zeroes = !in->read_only;
		in->write_zeroes_may_unmap = false;
		return 0;
	}
	in->size = (uint64_t)st->st_size;
	in->logical_block = 512;
	in->physical_block = st->st_blksize >= 512 && st->st_blksize <= 65536 ?
			     (uint32_t)st->st_blksize : 512;
	if (!in->read_only) {
		/* Punching a hole past EOF changes nothing but tells us whether
		 * the filesystem supports it. */
		uint64_t probe_off = (in->size + 4095) & ~4095ull;
		bool punch = fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				       (off_t)probe_off, 4096) == 0;
		in->can_discard = punch;
		in->can_write_zeroes = punch;
		in->write_zeroes_may_unmap = punch;
	}
	return 0;
}

static void raw_setup_uring(struct blk_raw *r, const char *path)
{
	int rc = io_uring_queue_init(r->b.depth, &r->ring, 0);
	if (rc < 0) {
		log_warn("%s: io_uring unavailable (%s); falling back to synchronous I/O on the I/O thread",
			 path, strerror(-rc));
		return;
	}
	struct io_uring_probe *p = io_uring_get_probe_ring(&r->ring);
	bool ok = p && io_uring_opcode_supported(p, IORING_OP_READV) &&
		  io_uring_opcode_supported(p, IORING_OP_WRITEV) &&
		  io_uring_opcode_supported(p, IORING_OP_FSYNC);
	r->uring_fallocate = p && io_uring_opcode_supported(p, IORING_OP_FALLOCATE);
	if (p)
		io_uring_free_probe(p);
	if (!ok || (rc = io_uring_register_eventfd(&r->ring, r->b.event_fd)) < 0) {
		log_warn("%s: io_uring lacks readv/writev/fsync or eventfd (%s); "
			 "falling back to synchronous I/O on the I/O thread",
			 path, ok ? strerror(-rc) : "unsupported opcode");
		io_uring_queue_exit(&r->ring);
		return;
	}
	r->uring = true;
	r->b.info.async = true;
}

static int raw_try_lock(struct blk_raw *r)
{
	if (flock(r->fd, (r->b.info.read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0)
		return -errno;
	r->locked = true;
	return 0;
}

static int raw_lock(struct blk_backend *b, unsigned timeout_ms)
{
	struct blk_raw *r = (struct blk_raw *)b;
	int rc = 0;
	for (unsigned waited = 0; !r->locked; waited += 20) {
		rc = raw_try_lock(r);
		if (rc != -EWOULDBLOCK || waited >= timeout_ms)
			break;
		usleep(20000);
	}
	return r->locked ? 0 : rc;
}

int blk_raw_open(struct blk_backend **out, const char *path, bool read_only, bool defer_lock,
		 unsigned depth,
		 char *err, size_t errlen)
{
	struct blk_raw *r = calloc(1, sizeof(*r));
	struct stat st;
	int rc;

	*out = NULL;
	if (!r) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	r->fd = -1;
	r->b.event_fd = -1;
	r->b.ops = &raw_ops;
	r->b.depth = depth ? depth : 1;
	r->b.info.read_only = read_only;

	r->fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (r->fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(r->fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		snprintf(err, errlen, "%s: %s", path, strerror(EISDIR));
		goto out;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		rc = -EINVAL;
		snprintf(err, errlen, "%s: not a regular file or block device", path);
		goto out;
	}
	/* Two writers on one disk image corrupt it; readers may share. */
	rc = raw_try_lock(r);
	if (rc == -EWOULDBLOCK && defer_lock) {
		rc = 0;
	} else if (rc) {
		errno = -rc;
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen, "%s: locked by another process (another wafer using this disk?)",
				 path);
		else
			snprintf(err, errlen, "%s: flock: %s", path, strerror(errno));
		goto out;
	}
	rc = raw_probe(r, path, &st, err, errlen);
	if (rc)
		goto out;

	r->reqs = calloc(r->b.depth, sizeof(*r->reqs));
	r->b.event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!r->reqs || r->b.event_fd < 0) {
		rc = r->reqs ? -errno : -ENOMEM;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		goto out;
	}
	for (unsigned i = 0; i < r->b.depth; i++) {
		r->reqs[i].next = r->free;
		r->free = &r->reqs[i];
	}
	raw_setup_uring(r, path);
	*out = &r->b;
	return 0;
out:
	if (r->b.event_fd >= 0)
		close(r->b.event_fd);
	if (r->fd >= 0)
		close(r->fd);
	free(r->reqs);
	free(r);
	return rc;
}
