/* Disk backends for virtio-blk: an ops table of asynchronous requests whose
 * completion callbacks run from blk_backend_poll, which the device calls on
 * the I/O thread when event_fd becomes readable (tests call it directly). */
#ifndef WAFER_BACKENDS_BLOCK_H
#define WAFER_BACKENDS_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct blk_backend;

/* res: bytes transferred (readv/writev; may be short), 0 (others), or -errno. */
typedef void (*blk_done_fn)(void *opaque, int64_t res);

struct blk_backend_info {
	uint64_t size;              /* bytes */
	uint32_t logical_block;     /* 512 for files, BLKSSZGET for devices */
	uint32_t physical_block;    /* BLKPBSZGET, or st_blksize for files */
	bool read_only;
	bool is_blockdev;
	bool can_discard;           /* discard deallocates (punch hole / BLKDISCARD) */
	bool can_write_zeroes;      /* zero range / BLKZEROOUT */
	bool write_zeroes_may_unmap;
	bool async;                 /* io_uring; false: synchronous fallback */
};

/* Every submit returns 0 (done will be called exactly once, later, from
 * poll -- never from inside the submit call) or -errno (done not called;
 * -EAGAIN means the queue depth is exhausted). */
struct blk_backend_ops {
	int (*readv)(struct blk_backend *b, uint64_t off, const struct iovec *iov, unsigned n,
		     blk_done_fn done, void *opaque);
	int (*writev)(struct blk_backend *b, uint64_t off, const struct iovec *iov, unsigned n,
		      blk_done_fn done, void *opaque);
	int (*flush)(struct blk_backend *b, blk_done_fn done, void *opaque);
	int (*discard)(struct blk_backend *b, uint64_t off, uint64_t len, blk_done_fn done, void *opaque);
	int (*write_zeroes)(struct blk_backend *b, uint64_t off, uint64_t len, bool unmap,
			    blk_done_fn done, void *opaque);
	/* Hand queued requests to the kernel (batching point after a burst). */
	void (*kick)(struct blk_backend *b);
	/* Run completion callbacks; wait: block until at least one arrives if
	 * any request is in flight. Returns completions run or -errno. */
	int (*poll)(struct blk_backend *b, bool wait);
	void (*close)(struct blk_backend *b);
	/* Take the image lock an open with defer_lock could not get: retry
	 * until timeout_ms. 0 or -errno (-EWOULDBLOCK: still held). */
	int (*lock)(struct blk_backend *b, unsigned timeout_ms);
};

struct blk_backend {
	const struct blk_backend_ops *ops;
	struct blk_backend_info info;
	unsigned depth;     /* max requests in flight */
	unsigned inflight;
	/* Readable (EPOLLIN) when poll has completions to run: the device
	 * registers it with the I/O thread's event loop. */
	int event_fd;
};

/* Open a raw image file or host block device with at most depth requests
 * in flight. Errors are one line in err naming the path ("PATH: No such
 * file or directory", "PATH: locked by another process ..."). defer_lock:
 * a lock held by someone else is not an error yet (an incoming migration,
 * whose source holds it until the hand-over); ops->lock takes it later.
 * 0 or -errno. */
int blk_raw_open(struct blk_backend **out, const char *path, bool read_only, bool defer_lock,
		 unsigned depth, char *err, size_t errlen);

static inline int blk_backend_poll(struct blk_backend *b, bool wait)
{
	return b->ops->poll(b, wait);
}

static inline bool blk_backend_full(const struct blk_backend *b)
{
	return b->inflight >= b->depth;
}

static inline void blk_backend_close(struct blk_backend *b)
{
	if (b)
		b->ops->close(b);
}

#endif
