/* virtio-blk through its ops on a real temporary image: I/O round trips
 * checked against the file, flush, GET_ID, range/alignment/read-only/type
 * errors, split headers, discard and write zeroes (sparseness), more
 * requests than the backend queue depth, reset, open-time errors, and the
 * rate limiter (ops and bytes, with a fake clock). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/virtio/blk.h"
#include "vmm/eventloop.h"

#define RAM_SIZE   (16u << 20)
#define QSIZE      256
#define DESC_GPA   0x1000
#define AVAIL_GPA  0x3000
#define USED_GPA   0x4000
#define HDR_GPA    0x10000   /* per-request headers, 64 bytes apart */
#define ITAB_GPA   0x20000   /* per-request indirect tables, 64 bytes apart */
#define STATUS_GPA 0x30000   /* per-request status bytes */
#define DATA_GPA   0x100000  /* data buffers */
#define DISK_SIZE  (1u << 20)

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

struct fx {
	uint8_t *ram;
	struct guest_mem mem;
	struct virtio_dev *d;
	char path[64];
	int irqs, config_irqs;
	unsigned next_desc;
};

static struct fx *g_fx;
static void on_queue(struct virtio_dev *d, unsigned q) { (void)d; (void)q; g_fx->irqs++; }
static void on_config(struct virtio_dev *d) { (void)d; g_fx->config_irqs++; }
static const struct virtio_transport_ops transport = { on_queue, on_config };

static void file_fill(const char *path, size_t size)
{
	int fd = open(path, O_RDWR | O_TRUNC);
	assert_true(fd >= 0);
	uint8_t *buf = malloc(size);
	for (size_t i = 0; i < size; i++)
		buf[i] = (uint8_t)(i * 7 + (i >> 9));
	assert_int_equal(pwrite(fd, buf, size, 0), (ssize_t)size);
	fsync(fd);
	close(fd);
	free(buf);
}

static struct virtio_dev *dev_open(struct fx *f, bool ro, const char *serial)
{
	char err[256];
	struct blk_config cfg = { .path = f->path, .read_only = ro, .id = "disk0", .serial = serial };
	struct virtio_dev *d = virtio_blk_create(&f->mem, NULL, &cfg, err, sizeof(err));
	if (!d)
		fail_msg("create: %s", err);
	d->transport = &transport;
	d->features = d->ops->features(d) | 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_INDIRECT_DESC;
	struct virtq *q = &d->vq[0];
	q->size = QSIZE;
	q->desc_gpa = DESC_GPA;
	q->avail_gpa = AVAIL_GPA;
	q->used_gpa = USED_GPA;
	q->indirect = true;
	assert_int_equal(virtq_init(q, &f->mem), 0);
	q->ready = true;
	d->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
		    VIRTIO_STATUS_DRIVER_OK;
	return d;
}

static int fx_setup_common(void **state, bool ro)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->ram = calloc(1, RAM_SIZE);
	gmem_init(&f->mem, f->ram, RAM_SIZE);
	snprintf(f->path, sizeof(f->path), "/tmp/wafer-blk-XXXXXX");
	int fd = mkstemp(f->path);
	assert_true(fd >= 0);
	close(fd);
	file_fill(f->path, DISK_SIZE);
	f->d = dev_open(f, ro, "wafer-test");
	g_fx = f;
	*state = f;
	return 0;
}

static int fx_setup(void **state) { return fx_setup_common(state, false); }
static int fx_setup_ro(void **state) { return fx_setup_common(state, true); }

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	if (f->d)
		f->d->ops->destroy(f->d);
	unlink(f->path);
	free(f->ram);
	free(f);
	return 0;
}

/* ---- building requests ---- */

struct seg { uint64_t gpa; uint32_t len; bool write; };

static void put_desc(struct fx *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint8_t *p = f->ram + table + 16 * i;
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

static uint32_t used_len(struct fx *f, uint16_t n)
{
	uint32_t len;
	memcpy(&len, f->ram + USED_GPA + 8 + 8 * (n % QSIZE), 4);
	return len;
}

/* Queue a direct chain from segs; returns the head. */
static uint16_t queue_chain(struct fx *f, const struct seg *s, unsigned n)
{
	uint16_t head = (uint16_t)(f->next_desc % QSIZE);
	for (unsigned i = 0; i < n; i++) {
		unsigned me = (f->next_desc + i) % QSIZE, nx = (f->next_desc + i + 1) % QSIZE;
		put_desc(f, DESC_GPA, me, s[i].gpa, s[i].len,
			 (uint16_t)((s[i].write ? F_WRITE : 0) | (i + 1 < n ? F_NEXT : 0)), (uint16_t)nx);
	}
	f->next_desc += n;
	offer(f, head);
	return head;
}

static void put_hdr(struct fx *f, uint64_t gpa, uint32_t type, uint64_t sector)
{
	uint32_t reserved = 0;
	memcpy(f->ram + gpa, &type, 4);
	memcpy(f->ram + gpa + 4, &reserved, 4);
	memcpy(f->ram + gpa + 8, &sector, 8);
}

/* Kick and wait until `want` chains have been used in total. */
static void run_until(struct fx *f, uint16_t want)
{
	f->d->ops->queue_notify(f->d, 0);
	for (int spins = 0; used_idx(f) != want; spins++) {
		assert_true(spins < 100000);
		assert_true(virtio_blk_poll(f->d, true) >= 0);
	}
}

/* One simple request: header, optional data, status. Returns the status. */
static uint8_t do_req(struct fx *f, uint32_t type, uint64_t sector, uint64_t data_gpa, uint32_t data_len,
		      bool data_write)
{
	struct seg s[3];
	unsigned n = 0;
	uint16_t want = (uint16_t)(used_idx(f) + 1);
	put_hdr(f, HDR_GPA, type, sector);
	f->ram[STATUS_GPA] = 0xEE;
	s[n++] = (struct seg){ HDR_GPA, 16, false };
	if (data_len)
		s[n++] = (struct seg){ data_gpa, data_len, data_write };
	s[n++] = (struct seg){ STATUS_GPA, 1, true };
	queue_chain(f, s, n);
	run_until(f, want);
	return f->ram[STATUS_GPA];
}

static void file_read(struct fx *f, uint64_t off, void *buf, size_t len)
{
	int fd = open(f->path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static uint64_t capacity(struct fx *f)
{
	uint64_t cap;
	f->d->ops->config_read(f->d, 0, &cap, 8);
	return cap;
}

/* ---- tests ---- */

static void test_config(void **state)
{
	struct fx *f = *state;
	uint32_t seg_max, blk_size;
	assert_int_equal(capacity(f), DISK_SIZE / 512);
	f->d->ops->config_read(f->d, 12, &seg_max, 4);
	f->d->ops->config_read(f->d, 20, &blk_size, 4);
	assert_true(seg_max >= 1 && seg_max <= VIRTQ_MAX_SEGS - 2);
	assert_int_equal(blk_size, 512);
	assert_true(f->d->features & (1u << 9));   /* FLUSH */
	assert_false(f->d->features & (1u << 5));  /* not RO */
}

static void test_write_read_roundtrip(void **state)
{
	struct fx *f = *state;
	uint8_t *w = f->ram + DATA_GPA, *r = f->ram + DATA_GPA + 0x10000, back[1024];
	for (int i = 0; i < 1024; i++)
		w[i] = (uint8_t)(0x5A ^ i);
	assert_int_equal(do_req(f, T_OUT, 3, DATA_GPA, 1024, false), S_OK);
	assert_int_equal(used_len(f, 0), 1);
	file_read(f, 3 * 512, back, sizeof(back));
	assert_memory_equal(back, w, 1024);

	memset(r, 0, 1024);
	assert_int_equal(do_req(f, T_IN, 3, DATA_GPA + 0x10000, 1024, true), S_OK);
	assert_int_equal(used_len(f, 1), 1025);
	assert_memory_equal(r, w, 1024);
	assert_int_equal(f->d->stat_bytes_out, 1024);
	assert_int_equal(f->d->stat_bytes_in, 1024);
	assert_true(f->irqs >= 2);
}

static void test_read_scattered_with_status_in_data_segment(void **state)
{
	struct fx *f = *state;
	uint8_t want[1536];
	file_read(f, 10 * 512, want, sizeof(want));
	/* data split 100 + 1000 + (436 + status) with the status byte as the
	 * last byte of the last writable segment */
	put_hdr(f, HDR_GPA, T_IN, 10);
	struct seg s[] = {
		{ HDR_GPA, 16, false },
		{ DATA_GPA, 100, true },
		{ DATA_GPA + 0x1000, 1000, true },
		{ DATA_GPA + 0x2000, 437, true },
	};
	queue_chain(f, s, 4);
	run_until(f, 1);
	assert_memory_equal(f->ram + DATA_GPA, want, 100);
	assert_memory_equal(f->ram + DATA_GPA + 0x1000, want + 100, 1000);
	assert_memory_equal(f->ram + DATA_GPA + 0x2000, want + 1100, 436);
	assert_int_equal(f->ram[DATA_GPA + 0x2000 + 436], S_OK);
	assert_int_equal(used_len(f, 0), 1537);
}

static void test_header_split(void **state)
{
	struct fx *f = *state;
	uint8_t back[512];
	memset(f->ram + DATA_GPA, 0xC3, 512);
	put_hdr(f, HDR_GPA, T_OUT, 7);
	/* header in two pieces (5 + 11 bytes), then data glued to the tail
	 * of the second piece's buffer */
	memcpy(f->ram + HDR_GPA + 0x100, f->ram + HDR_GPA + 5, 11);
	struct seg s[] = {
		{ HDR_GPA, 5, false },
		{ HDR_GPA + 0x100, 11, false },
		{ DATA_GPA, 512, false },
		{ STATUS_GPA, 1, true },
	};
	f->ram[STATUS_GPA] = 0xEE;
	queue_chain(f, s, 4);
	run_until(f, 1);
	assert_int_equal(f->ram[STATUS_GPA], S_OK);
	file_read(f, 7 * 512, back, 512);
	assert_memory_equal(back, f->ram + DATA_GPA, 512);
}

static void test_flush(void **state)
{
	struct fx *f = *state;
	assert_int_equal(do_req(f, T_FLUSH, 0, 0, 0, false), S_OK);
}

static void test_get_id(void **state)
{
	struct fx *f = *state;
	memset(f->ram + DATA_GPA, 0xFF, 64);
	assert_int_equal(do_req(f, T_GET_ID, 0, DATA_GPA, 20, true), S_OK);
	uint8_t want[20] = "wafer-test";
	assert_memory_equal(f->ram + DATA_GPA, want, 20); /* NUL padded */
	f->d->ops->destroy(f->d);
	f->d = dev_open(f, false, "0123456789abcdefghijKLMN");
	f->next_desc = 0;
	memset(f->ram + AVAIL_GPA, 0, 0x2000);
	assert_int_equal(do_req(f, T_GET_ID, 0, DATA_GPA, 20, true), S_OK);
	assert_memory_equal(f->ram + DATA_GPA, "0123456789abcdefghij", 20); /* no terminator */
}

static void test_out_of_range(void **state)
{
	struct fx *f = *state;
	uint64_t cap = capacity(f);
	uint8_t before[1024], after[1024];
	file_read(f, DISK_SIZE - 1024, before, sizeof(before));
	memset(f->ram + DATA_GPA, 0, 1024);
	assert_int_equal(do_req(f, T_OUT, cap - 1, DATA_GPA, 1024, false), S_IOERR);
	assert_int_equal(do_req(f, T_OUT, UINT64_MAX, DATA_GPA, 512, false), S_IOERR);
	assert_int_equal(do_req(f, T_IN, cap, DATA_GPA, 512, true), S_IOERR);
	assert_int_equal(do_req(f, T_IN, (UINT64_MAX / 512) + 1, DATA_GPA, 512, true), S_IOERR);
	assert_int_equal(do_req(f, T_IN, cap - 1, DATA_GPA, 512, true), S_OK); /* last sector ok */
	file_read(f, DISK_SIZE - 1024, after, sizeof(after));
	assert_memory_equal(before, after, sizeof(before));
}

static void test_unaligned_length(void **state)
{
	struct fx *f = *state;
	assert_int_equal(do_req(f, T_OUT, 0, DATA_GPA, 100, false), S_IOERR);
	assert_int_equal(do_req(f, T_IN, 0, DATA_GPA, 513, true), S_IOERR);
}

static void test_unknown_type(void **state)
{
	struct fx *f = *state;
	assert_int_equal(do_req(f, 0x42, 0, 0, 0, false), S_UNSUPP);
	assert_int_equal(do_req(f, 10 /* GET_LIFETIME */, 0, DATA_GPA, 8, true), S_UNSUPP);
}

static void test_read_only(void **state)
{
	struct fx *f = *state;
	uint8_t before[512], after[512];
	assert_true(f->d->features & (1u << 5));            /* RO offered */
	assert_false(f->d->features & (1u << 13));          /* no discard */
	file_read(f, 0, before, 512);
	memset(f->ram + DATA_GPA, 0x11, 512);
	assert_int_equal(do_req(f, T_OUT, 0, DATA_GPA, 512, false), S_IOERR);
	file_read(f, 0, after, 512);
	assert_memory_equal(before, after, 512);
	assert_int_equal(do_req(f, T_IN, 0, DATA_GPA, 512, true), S_OK);
	assert_memory_equal(f->ram + DATA_GPA, before, 512);
}

static uint64_t file_blocks(struct fx *f)
{
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	return (uint64_t)st.st_blocks;
}

static uint8_t do_dwz(struct fx *f, uint32_t type, uint64_t sector, uint32_t num, uint32_t flags)
{
	uint8_t *p = f->ram + DATA_GPA;
	memcpy(p, &sector, 8);
	memcpy(p + 8, &num, 4);
	memcpy(p + 12, &flags, 4);
	return do_req(f, type, 0, DATA_GPA, 16, false);
}

static bool file_zero(struct fx *f, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);
	file_read(f, off, buf, len);
	bool z = true;
	for (size_t i = 0; i < len; i++)
		z &= buf[i] == 0;
	free(buf);
	return z;
}

static void test_discard_sparse(void **state)
{
	struct fx *f = *state;
	if (!(f->d->features & (1u << 13)))
		skip(); /* filesystem without hole punching */
	uint64_t blocks = file_blocks(f);
	assert_int_equal(do_dwz(f, T_DISCARD, 256, 1024, 0), S_OK);       /* 512 KiB */
	assert_true(file_blocks(f) + 512 * 1024 / 512 / 2 <= blocks);       /* freed >= 256 KiB */
	assert_true(file_zero(f, 256 * 512, 512 * 1024));
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, DISK_SIZE);                           /* size kept */
	/* unmap on a discard and unknown flags are UNSUPP; ranges are checked */
	assert_int_equal(do_dwz(f, T_DISCARD, 0, 8, 1), S_UNSUPP);
	assert_int_equal(do_dwz(f, T_DISCARD, 0, 8, 2), S_UNSUPP);
	assert_int_equal(do_dwz(f, T_DISCARD, capacity(f) - 4, 8, 0), S_IOERR);
	assert_int_equal(do_dwz(f, T_DISCARD, UINT64_MAX - 2, 8, 0), S_IOERR);
	/* no segment at all */
	assert_int_equal(do_req(f, T_DISCARD, 0, 0, 0, false), S_IOERR);
}

static void test_write_zeroes(void **state)
{
	struct fx *f = *state;
	if (!(f->d->features & (1u << 14)))
		skip();
	assert_false(file_zero(f, 8 * 512, 4096));
	assert_int_equal(do_dwz(f, T_WRITE_ZEROES, 8, 8, 0), S_OK);
	assert_true(file_zero(f, 8 * 512, 4096));
	assert_false(file_zero(f, 16 * 512, 512));                      /* neighbours kept */
	uint64_t blocks = file_blocks(f);
	assert_int_equal(do_dwz(f, T_WRITE_ZEROES, 512, 512, 1), S_OK); /* unmap allowed */
	assert_true(file_zero(f, 512 * 512, 512 * 512));
	assert_true(file_blocks(f) < blocks);
	assert_int_equal(do_dwz(f, T_WRITE_ZEROES, 0, 8, 4), S_UNSUPP);
}

static void test_missing_header_or_status(void **state)
{
	struct fx *f = *state;
	put_hdr(f, HDR_GPA, T_IN, 0);
	struct seg s[] = { { HDR_GPA, 16, false }, { DATA_GPA, 512, false } };
	queue_chain(f, s, 2); /* no writable status byte */
	f->d->ops->queue_notify(f->d, 0);
	assert_true(f->d->status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(f->config_irqs, 1);
	assert_int_equal(used_idx(f), 0);
}

static void test_short_header(void **state)
{
	struct fx *f = *state;
	struct seg s[] = { { HDR_GPA, 8, false }, { STATUS_GPA, 1, true } };
	queue_chain(f, s, 2);
	f->d->ops->queue_notify(f->d, 0);
	assert_true(f->d->status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(used_idx(f), 0);
}

static void test_more_requests_than_depth(void **state)
{
	struct fx *f = *state;
	enum { N = 200 };
	uint8_t disk[DISK_SIZE / 8];
	file_read(f, 0, disk, sizeof(disk));
	/* N indirect chains, each reading 512 bytes of sector i */
	for (unsigned i = 0; i < N; i++) {
		uint64_t hdr = HDR_GPA + 64 * i, tab = ITAB_GPA + 64 * i;
		put_hdr(f, hdr, T_IN, i);
		put_desc(f, tab, 0, hdr, 16, F_NEXT, 1);
		put_desc(f, tab, 1, DATA_GPA + 1024 * i, 513, F_WRITE, 0); /* data + status */
		put_desc(f, DESC_GPA, i, tab, 32, F_INDIRECT, 0);
		offer(f, (uint16_t)i);
	}
	run_until(f, N);
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(f->ram[DATA_GPA + 1024 * i + 512], S_OK);
		assert_memory_equal(f->ram + DATA_GPA + 1024 * i, disk + 512 * i, 512);
	}
}

static void test_reset_drops_inflight(void **state)
{
	struct fx *f = *state;
	put_hdr(f, HDR_GPA, T_IN, 0);
	struct seg s[] = { { HDR_GPA, 16, false }, { DATA_GPA, 4096, true }, { STATUS_GPA, 1, true } };
	queue_chain(f, s, 3);
	f->d->ops->queue_notify(f->d, 0);
	f->d->ops->reset(f->d);
	while (virtio_blk_poll(f->d, true) > 0)
		;
	assert_int_equal(used_idx(f), 0);
}

static void test_file_shrunk_reads_zero(void **state)
{
	struct fx *f = *state;
	assert_int_equal(truncate(f->path, DISK_SIZE / 2), 0);
	memset(f->ram + DATA_GPA, 0x77, 1024);
	/* straddles the new end: first half real data, second half zeroes */
	assert_int_equal(do_req(f, T_IN, DISK_SIZE / 1024 - 1, DATA_GPA, 1024, true), S_OK);
	uint8_t want[512];
	file_read(f, DISK_SIZE / 2 - 512, want, 512);
	assert_memory_equal(f->ram + DATA_GPA, want, 512);
	for (int i = 512; i < 1024; i++)
		assert_int_equal(f->ram[DATA_GPA + i], 0);
}

static void test_lock_conflict(void **state)
{
	struct fx *f = *state;
	char err[256];
	struct blk_config cfg = { .path = f->path, .id = "again" };
	assert_null(virtio_blk_create(&f->mem, NULL, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "locked by another process"));
	assert_non_null(strstr(err, f->path));
	cfg.read_only = true; /* a reader must not share with a writer either */
	assert_null(virtio_blk_create(&f->mem, NULL, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "locked by another process"));
}

static void test_shared_read_only(void **state)
{
	struct fx *f = *state; /* opened read-only */
	char err[256];
	struct blk_config cfg = { .path = f->path, .read_only = true, .id = "ro2" };
	struct virtio_dev *d2 = virtio_blk_create(&f->mem, NULL, &cfg, err, sizeof(err));
	assert_non_null(d2);
	d2->ops->destroy(d2);
	cfg.read_only = false;
	assert_null(virtio_blk_create(&f->mem, NULL, &cfg, err, sizeof(err)));
}

static void test_open_errors(void **state)
{
	(void)state;
	char err[256];
	struct guest_mem mem = { 0 };
	struct blk_config cfg = { .path = "/nonexistent/wafer/disk.img", .id = "x" };
	assert_null(virtio_blk_create(&mem, NULL, &cfg, err, sizeof(err)));
	assert_string_equal(err, "/nonexistent/wafer/disk.img: No such file or directory");
	cfg.path = "/tmp";
	assert_null(virtio_blk_create(&mem, NULL, &cfg, err, sizeof(err)));
	assert_string_equal(err, "/tmp: Is a directory");
	cfg.read_only = true;
	assert_null(virtio_blk_create(&mem, NULL, &cfg, err, sizeof(err)));
	assert_string_equal(err, "/tmp: Is a directory");
	cfg.path = "/dev/null";
	assert_null(virtio_blk_create(&mem, NULL, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "not a regular file or block device"));
}


static int kick_fd = -1;

/* The production wiring: kicks arrive on the I/O thread (an eventfd standing
 * in for the ioeventfd) and backend completions are handled there too. */
static void on_kick(void *opaque, uint32_t events)
{
	(void)events;
	struct virtio_dev *d = opaque;
	uint64_t v;
	if (read(kick_fd, &v, sizeof(v)) == sizeof(v))
		d->ops->queue_notify(d, 0);
}

static void test_eventloop_completion(void **state)
{
	struct fx *f = *state;
	struct eventloop loop;
	char err[256];

	f->d->ops->destroy(f->d); /* reopen with an event loop */
	assert_int_equal(eventloop_init(&loop), 0);
	struct blk_config cfg = { .path = f->path, .id = "looped" };
	f->d = virtio_blk_create(&f->mem, &loop, &cfg, err, sizeof(err));
	assert_non_null(f->d);
	struct virtio_dev *d = f->d;
	d->transport = &transport;
	d->features = d->ops->features(d) | 1ull << VIRTIO_F_VERSION_1;
	struct virtq *q = &d->vq[0];
	q->size = QSIZE;
	q->desc_gpa = DESC_GPA;
	q->avail_gpa = AVAIL_GPA;
	q->used_gpa = USED_GPA;
	assert_int_equal(virtq_init(q, &f->mem), 0);
	q->ready = true;
	d->status = VIRTIO_STATUS_DRIVER_OK;
	kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(kick_fd >= 0);
	assert_int_equal(eventloop_add(&loop, kick_fd, EPOLLIN, on_kick, d), 0);
	assert_int_equal(eventloop_start(&loop, "test-io"), 0);

	uint8_t want[2048];
	file_read(f, 40 * 512, want, sizeof(want));
	put_hdr(f, HDR_GPA, T_IN, 40);
	f->ram[STATUS_GPA] = 0xEE;
	struct seg s[] = { { HDR_GPA, 16, false }, { DATA_GPA, 2048, true }, { STATUS_GPA, 1, true } };
	queue_chain(f, s, 3);
	uint64_t one = 1;
	assert_int_equal(write(kick_fd, &one, 8), 8);

	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (__atomic_load_n((uint16_t *)(f->ram + USED_GPA + 2), __ATOMIC_ACQUIRE) != 1) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		assert_true(now.tv_sec - t0.tv_sec < 10);
		usleep(1000);
	}
	eventloop_stop(&loop);
	assert_int_equal(f->ram[STATUS_GPA], S_OK);
	assert_memory_equal(f->ram + DATA_GPA, want, sizeof(want));
	assert_true(f->irqs >= 1);

	f->d->ops->destroy(f->d); /* unregisters its eventfd from the loop */
	f->d = NULL;
	eventloop_destroy(&loop);
	close(kick_fd);
}

/* ---- rate limiting ---- */

static uint64_t fake_now;
static uint64_t fake_clock(void) { return fake_now; }

/* Queue request i (own header and status byte) without running it. */
static void queue_req(struct fx *f, unsigned i, uint32_t type, uint64_t data_gpa, uint32_t data_len)
{
	struct seg s[3];
	unsigned n = 0;
	put_hdr(f, HDR_GPA + 64 * i, type, 0);
	f->ram[STATUS_GPA + i] = 0xEE;
	s[n++] = (struct seg){ HDR_GPA + 64 * i, 16, false };
	if (data_len)
		s[n++] = (struct seg){ data_gpa, data_len, type == T_IN };
	s[n++] = (struct seg){ STATUS_GPA + i, 1, true };
	queue_chain(f, s, n);
}

/* Let the device finish whatever it may without waiting on the limiter. */
static void settle(struct fx *f)
{
	for (int i = 0; i < 200; i++)
		assert_true(virtio_blk_poll(f->d, false) >= 0);
}

static void test_rate_limit_ops(void **state)
{
	struct fx *f = *state;
	struct ratelimit_config two_per_s = { .ops = { 2, 0, 1000 } };

	fake_now = 7000000000ull;
	virtio_blk_set_clock(f->d, fake_clock);
	virtio_blk_set_rate_limit(f->d, &two_per_s);
	for (unsigned i = 0; i < 3; i++)
		queue_req(f, i, T_FLUSH, 0, 0);
	run_until(f, 2);
	settle(f);
	/* The third request waits for the limiter, not for the disk. */
	assert_int_equal(used_idx(f), 2);
	assert_int_equal(f->ram[STATUS_GPA + 2], 0xEE);
	assert_true(f->d->stat_throttled >= 1);
	fake_now += 499000000ull;   /* one op refills in 500 ms */
	f->d->ops->queue_notify(f->d, 0);
	settle(f);
	assert_int_equal(used_idx(f), 2);
	fake_now += 1000000ull;
	assert_true(virtio_blk_poll(f->d, false) >= 0);
	run_until(f, 3);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(f->ram[STATUS_GPA + i], S_OK);
}

static void test_rate_limit_bytes_and_update(void **state)
{
	struct fx *f = *state;
	struct ratelimit_config kib_per_s = { .bytes = { 1024, 0, 1000 } }, off = { 0 };

	fake_now = 1000000000ull;
	virtio_blk_set_clock(f->d, fake_clock);
	virtio_blk_set_rate_limit(f->d, &kib_per_s);
	/* Only data counts: a flush passes an empty byte bucket. */
	queue_req(f, 0, T_IN, DATA_GPA, 1024);
	queue_req(f, 1, T_FLUSH, 0, 0);
	queue_req(f, 2, T_IN, DATA_GPA + 0x1000, 512);
	run_until(f, 2);
	settle(f);
	assert_int_equal(used_idx(f), 2);
	uint64_t throttled = f->d->stat_throttled;
	assert_true(throttled >= 1);
	fake_now += 499000000ull;   /* 512 bytes take 500 ms */
	settle(f);
	assert_int_equal(used_idx(f), 2);
	fake_now += 1000000ull;
	settle(f);
	run_until(f, 3);
	assert_int_equal(f->ram[STATUS_GPA + 2], S_OK);

	/* A held request is released when the limit is lifted at run time. */
	queue_req(f, 3, T_IN, DATA_GPA, 1024);
	f->d->ops->queue_notify(f->d, 0);
	settle(f);
	assert_int_equal(used_idx(f), 3);
	assert_true(f->d->stat_throttled > throttled);
	virtio_blk_set_rate_limit(f->d, &off);
	settle(f);
	run_until(f, 4);
	assert_int_equal(f->ram[STATUS_GPA + 3], S_OK);
}

/* The header is read once: a held request is charged and run as the type
 * the device first read, even if the guest rewrites it while it waits (a
 * write re-typed as a 0-byte flush would pass an empty byte bucket). */
static void test_rate_limit_header_read_once(void **state)
{
	struct fx *f = *state;
	struct ratelimit_config kib_per_s = { .bytes = { 1024, 0, 1000 } };
	uint8_t *w = f->ram + DATA_GPA + 0x2000, back[512];

	fake_now = 3000000000ull;
	virtio_blk_set_clock(f->d, fake_clock);
	virtio_blk_set_rate_limit(f->d, &kib_per_s);
	for (int i = 0; i < 512; i++)
		w[i] = (uint8_t)(0xC3 ^ i);
	queue_req(f, 0, T_IN, DATA_GPA, 1024);          /* empties the bucket */
	queue_req(f, 1, T_OUT, DATA_GPA + 0x2000, 512);
	run_until(f, 1);
	settle(f);
	assert_int_equal(used_idx(f), 1);               /* the write is held */
	put_hdr(f, HDR_GPA + 64, T_FLUSH, 0);
	f->d->ops->queue_notify(f->d, 0);
	settle(f);
	assert_int_equal(used_idx(f), 1);               /* still charged as 512 bytes */
	fake_now += 500000000ull;
	assert_true(virtio_blk_poll(f->d, false) >= 0);
	run_until(f, 2);
	assert_int_equal(f->ram[STATUS_GPA + 1], S_OK);
	file_read(f, 0, back, sizeof(back));
	assert_memory_equal(back, w, sizeof(back));     /* and run as the write */
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
#define TRO(fn) cmocka_unit_test_setup_teardown(fn, fx_setup_ro, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_config),
		T(test_write_read_roundtrip),
		T(test_read_scattered_with_status_in_data_segment),
		T(test_header_split),
		T(test_flush),
		T(test_get_id),
		T(test_out_of_range),
		T(test_unaligned_length),
		T(test_unknown_type),
		TRO(test_read_only),
		T(test_discard_sparse),
		T(test_write_zeroes),
		T(test_missing_header_or_status),
		T(test_short_header),
		T(test_more_requests_than_depth),
		T(test_reset_drops_inflight),
		T(test_file_shrunk_reads_zero),
		T(test_lock_conflict),
		T(test_eventloop_completion),
		TRO(test_shared_read_only),
		cmocka_unit_test(test_open_errors),
		T(test_rate_limit_ops),
		T(test_rate_limit_bytes_and_update),
		T(test_rate_limit_header_read_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
