/* Split virtqueue walker against hostile rings: loops, bad indices, buffers
 * outside RAM, bad indirect tables, ordering; plus the good paths, 16-bit
 * index wraparound, used ring contents and notification suppression. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/layout.h"
#include "devices/virtio/queue.h"

#define RAM_SIZE   (8u << 20)
#define QSIZE      16
#define DESC_GPA   0x1000
#define AVAIL_GPA  0x2000
#define USED_GPA   0x3000
#define BUF_GPA    0x10000
#define ITABLE_GPA 0x20000

#define F_NEXT     1
#define F_WRITE    2
#define F_INDIRECT 4

struct fx {
	uint8_t *ram;
	struct guest_mem mem;
	struct virtq q;
	struct virtq_elem e;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->ram = calloc(1, RAM_SIZE);
	gmem_init(&f->mem, f->ram, RAM_SIZE);
	f->q.size = QSIZE;
	f->q.desc_gpa = DESC_GPA;
	f->q.avail_gpa = AVAIL_GPA;
	f->q.used_gpa = USED_GPA;
	assert_int_equal(virtq_init(&f->q, &f->mem), 0);
	f->q.ready = true;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	free(f->ram);
	free(f);
	return 0;
}

static void put_desc(struct fx *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint8_t *p = f->ram + table + 16 * i;
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static uint16_t *avail_idx(struct fx *f) { return (uint16_t *)(f->ram + AVAIL_GPA + 2); }
static uint16_t *avail_flags(struct fx *f) { return (uint16_t *)(f->ram + AVAIL_GPA); }
static uint16_t *used_event(struct fx *f) { return (uint16_t *)(f->ram + AVAIL_GPA + 4 + 2 * QSIZE); }
static uint16_t *used_idx(struct fx *f) { return (uint16_t *)(f->ram + USED_GPA + 2); }
static uint16_t *avail_event(struct fx *f) { return (uint16_t *)(f->ram + USED_GPA + 4 + 8 * QSIZE); }

/* Make head available at the next avail slot. */
static void offer(struct fx *f, uint16_t head)
{
	uint16_t idx = *avail_idx(f);
	uint16_t *ring = (uint16_t *)(f->ram + AVAIL_GPA + 4);
	ring[idx % QSIZE] = head;
	*avail_idx(f) = (uint16_t)(idx + 1);
}

static void expect_bad(struct fx *f, const char *why_part)
{
	const char *why = NULL;
	uint16_t before = f->q.last_avail;
	assert_int_equal(virtq_pop(&f->q, &f->e, &why), -EINVAL);
	assert_non_null(why);
	assert_non_null(strstr(why, why_part));
	assert_int_equal(f->q.last_avail, before); /* nothing consumed */
}

static void expect_good(struct fx *f)
{
	const char *why = NULL;
	int rc = virtq_pop(&f->q, &f->e, &why);
	if (rc != 1)
		fail_msg("pop failed: %d (%s)", rc, why ? why : "-");
}

/* ---- hostile rings ---- */

static void test_self_loop(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC_GPA, 0, BUF_GPA, 16, F_NEXT, 0);
	offer(f, 0);
	expect_bad(f, "loop");
}

static void test_two_cycle(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC_GPA, 0, BUF_GPA, 16, F_NEXT, 1);
	put_desc(f, DESC_GPA, 1, BUF_GPA, 16, F_NEXT, 0);
	offer(f, 0);
	expect_bad(f, "loop");
}

static void test_chain_whole_queue_then_longer(void **state)
{
	struct fx *f = *state;
	/* Every descriptor once: legal, exactly queue size. */
	for (unsigned i = 0; i < QSIZE; i++)
		put_desc(f, DESC_GPA, i, BUF_GPA, 16, i + 1 < QSIZE ? F_NEXT : 0, (uint16_t)(i + 1));
	offer(f, 0);
	expect_good(f);
	assert_int_equal(f->e.out_num, QSIZE);
	/* Now the last points back to the start: longer than the queue. */
	put_desc(f, DESC_GPA, QSIZE - 1, BUF_GPA, 16, F_NEXT, 0);
	offer(f, 0);
	expect_bad(f, "longer than the queue");
}

static void test_next_out_of_range(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC_GPA, 0, BUF_GPA, 16, F_NEXT, QSIZE);
	offer(f, 0);
	expect_bad(f, "next index out of range");
}

static void test_head_out_of_range(void **state)
{
	struct fx *f = *state;
	offer(f, QSIZE);
	expect_bad(f, "head out of range");
}

static void test_avail_idx_jump(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC_GPA, 0, BUF_GPA, 16, 0, 0);
	*avail_idx(f) = QSIZE + 1;
	expect_bad(f, "avail index jumped");
	/* Exactly size ahead is fine. */
	*avail_idx(f) = QSIZE;
	expect_good(f);
}

static void test_buffer_outside_ram(void **state)
{
	struct fx *f = *state;
	static const struct { uint64_t addr; uint32_t len; } bad[] = {
		{ RAM_SIZE, 1 },                  /* just past the end */
		{ RAM_SIZE - 8, 16 },             /* straddles the end */
		{ 0xC0000000ull, 16 },            /* in the MMIO hole */
		{ UINT64_MAX - 4, 16 },           /* addr + len wraps */
		{ UINT64_MAX, 1 },
		{ 0x1000, UINT32_MAX },           /* len bigger than RAM */
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put_desc(f, DESC_GPA, 0, bad[i].addr, bad[i].len, 0, 0);
		offer(f, 0);
		expect_bad(f, "outside guest RAM");
		f->q.last_avail++; /* skip the rejected entry for the next case */
	}
}

static void test_buffer_across_hole(void **state)
{
	struct fx *f = *state;
	/* Split RAM: 1 MiB low, the rest at 4 GiB. */
	f->mem.low_size = 1u << 20;
	f->mem.high_size = RAM_SIZE - f->mem.low_size;
	put_desc(f, DESC_GPA, 0, f->mem.low_size - 8, 16, 0, 0); /* straddles low end */
	offer(f, 0);
	expect_bad(f, "outside guest RAM");
	f->q.last_avail++;
	put_desc(f, DESC_GPA, 0, MEM_HIGH_START - 8, 16, 0, 0);  /* hole into high RAM */
	offer(f, 0);
	expect_bad(f, "outside guest RAM");
	f->q.last_avail++;
	put_desc(f, DESC_GPA, 0, MEM_HIGH_START + 16, 32, F_WRITE, 0); /* high RAM: fine */
	offer(f, 0);
	expect_good(f);
	assert_ptr_equal(f->e.iov[0].iov_base, f->ram + f->mem.low_size + 16);
}

static void test_zero_length_skipped(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC_GPA, 0, BUF_GPA, 0, F_NEXT, 1);
	put_desc(f, DESC_GPA, 1, BUF_GPA, 8, F_NEXT, 2);
	put_desc(f, DESC_GPA, 2, UINT64_MAX, 0, F_WRITE | F_NEXT, 3); /* len 0: address irrelevant */
	put_desc(f, DESC_GPA, 3, BUF_GPA + 8, 4, F_WRITE, 0);
	offer(f, 0);
	expect_good(f);
	assert_int_equal(f->e.out_num, 1);
	assert_int_equal(f->e.in_num, 1);
	assert_int_equal(f->e.out_len, 8);
	assert_int_equal(f->e.in_len, 4);
}

static void test_readable_after_writable(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC_GPA, 0, BUF_GPA, 8, F_WRITE | F_NEXT, 1);
	put_desc(f, DESC_GPA, 1, BUF_GPA, 8, 0, 0);
	offer(f, 0);
	expect_bad(f, "readable buffer after");
}

static void test_indirect_without_feature(void **state)
{
	struct fx *f = *state;
	f->q.indirect = false;
	put_desc(f, ITABLE_GPA, 0, BUF_GPA, 8, 0, 0);
	put_desc(f, DESC_GPA, 0, ITABLE_GPA, 16, F_INDIRECT, 0);
	offer(f, 0);
	expect_bad(f, "without VIRTIO_F_INDIRECT_DESC");
}

static void test_nested_indirect(void **state)
{
	struct fx *f = *state;
	f->q.indirect = true;
	put_desc(f, ITABLE_GPA, 0, ITABLE_GPA + 0x100, 16, F_INDIRECT, 0);
	put_desc(f, ITABLE_GPA + 0x100, 0, BUF_GPA, 8, 0, 0);
	put_desc(f, DESC_GPA, 0, ITABLE_GPA, 16, F_INDIRECT, 0);
	offer(f, 0);
	expect_bad(f, "nested indirect");
}

static void test_indirect_with_next(void **state)
{
	struct fx *f = *state;
	f->q.indirect = true;
	put_desc(f, ITABLE_GPA, 0, BUF_GPA, 8, 0, 0);
	put_desc(f, DESC_GPA, 0, ITABLE_GPA, 16, F_INDIRECT | F_NEXT, 1);
	put_desc(f, DESC_GPA, 1, BUF_GPA, 8, F_WRITE, 0);
	offer(f, 0);
	expect_bad(f, "indirect descriptor with NEXT");
}

static void test_indirect_bad_len(void **state)
{
	struct fx *f = *state;
	f->q.indirect = true;
	static const uint32_t lens[] = { 0, 15, 24, 16 * (VIRTQ_MAX_SEGS + 1) };
	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		put_desc(f, DESC_GPA, 0, ITABLE_GPA, lens[i], F_INDIRECT, 0);
		offer(f, 0);
		expect_bad(f, "bad indirect table length");
		f->q.last_avail++;
	}
}

static void test_indirect_table_outside_ram(void **state)
{
	struct fx *f = *state;
	f->q.indirect = true;
	put_desc(f, DESC_GPA, 0, RAM_SIZE - 16, 32, F_INDIRECT, 0);
	offer(f, 0);
	expect_bad(f, "indirect table outside guest RAM");
	f->q.last_avail++;
	put_desc(f, DESC_GPA, 0, UINT64_MAX - 15, 32, F_INDIRECT, 0);
	offer(f, 0);
	expect_bad(f, "indirect table outside guest RAM");
}

static void test_indirect_loop_and_next(void **state)
{
	struct fx *f = *state;
	f->q.indirect = true;
	put_desc(f, ITABLE_GPA, 0, BUF_GPA, 8, F_NEXT, 1);
	put_desc(f, ITABLE_GPA, 1, BUF_GPA, 8, F_NEXT, 0);
	put_desc(f, DESC_GPA, 0, ITABLE_GPA, 32, F_INDIRECT, 0);
	offer(f, 0);
	expect_bad(f, "loop in indirect");
	f->q.last_avail++;
	/* next pointing past the indirect table (into what would be the main
	 * table's index space) is out of range, not a jump to the main table */
	put_desc(f, ITABLE_GPA, 1, BUF_GPA, 8, F_NEXT, 5);
	offer(f, 0);
	expect_bad(f, "next index out of range");
}

static void test_too_many_segments(void **state)
{
	struct fx *f = *state;
	f->q.indirect = true;
	/* A full indirect table is fine on its own ... */
	for (unsigned i = 0; i < VIRTQ_MAX_SEGS; i++)
		put_desc(f, ITABLE_GPA, i, BUF_GPA, 8, i + 1 < VIRTQ_MAX_SEGS ? F_NEXT : 0,
			 (uint16_t)(i + 1));
	put_desc(f, DESC_GPA, 0, ITABLE_GPA, 16 * VIRTQ_MAX_SEGS, F_INDIRECT, 0);
	offer(f, 0);
	expect_good(f);
	assert_int_equal(f->e.out_num, VIRTQ_MAX_SEGS);
	/* ... but one direct buffer in front of it is one segment too many. */
	put_desc(f, DESC_GPA, 1, BUF_GPA, 8, F_NEXT, 0);
	offer(f, 1);
	expect_bad(f, "too many segments");
}

static void test_total_bytes_bounded(void **state)
{
	struct fx *f = *state;
	f->q.indirect = true;
	/* 1024 x 8 MiB (all the same RAM) = 8 GiB: more than used.len can say. */
	for (unsigned i = 0; i < VIRTQ_MAX_SEGS; i++)
		put_desc(f, ITABLE_GPA, i, 0, RAM_SIZE, F_WRITE | (i + 1 < VIRTQ_MAX_SEGS ? F_NEXT : 0),
			 (uint16_t)(i + 1));
	put_desc(f, DESC_GPA, 0, ITABLE_GPA, 16 * VIRTQ_MAX_SEGS, F_INDIRECT, 0);
	offer(f, 0);
	expect_bad(f, "larger than 4 GiB");
}

static void test_not_ready_or_empty(void **state)
{
	struct fx *f = *state;
	assert_int_equal(virtq_pop(&f->q, &f->e, NULL), 0);
	put_desc(f, DESC_GPA, 0, BUF_GPA, 8, 0, 0);
	offer(f, 0);
	f->q.ready = false;
	assert_int_equal(virtq_pop(&f->q, &f->e, NULL), 0);
	f->q.ready = true;
	assert_int_equal(virtq_pop(&f->q, &f->e, NULL), 1);
}

/* ---- good paths ---- */

static void test_single_and_multi(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC_GPA, 3, BUF_GPA, 100, 0, 0);
	offer(f, 3);
	put_desc(f, DESC_GPA, 5, BUF_GPA, 16, F_NEXT, 9);
	put_desc(f, DESC_GPA, 9, BUF_GPA + 16, 512, F_NEXT, 2);
	put_desc(f, DESC_GPA, 2, BUF_GPA + 1024, 1, F_WRITE, 0);
	offer(f, 5);

	expect_good(f);
	assert_int_equal(f->e.head, 3);
	assert_int_equal(f->e.out_num, 1);
	assert_int_equal(f->e.in_num, 0);
	assert_ptr_equal(f->e.iov[0].iov_base, f->ram + BUF_GPA);
	assert_int_equal(f->e.iov[0].iov_len, 100);

	expect_good(f);
	assert_int_equal(f->e.head, 5);
	assert_int_equal(f->e.out_num, 2);
	assert_int_equal(f->e.in_num, 1);
	assert_int_equal(f->e.out_len, 528);
	assert_int_equal(f->e.in_len, 1);
	assert_ptr_equal(f->e.iov[1].iov_base, f->ram + BUF_GPA + 16);
	assert_ptr_equal(f->e.iov[2].iov_base, f->ram + BUF_GPA + 1024);
	assert_int_equal(virtq_pop(&f->q, &f->e, NULL), 0);
}

static void test_indirect_good(void **state)
{
	struct fx *f = *state;
	f->q.indirect = true;
	/* Direct header, then an indirect table (WRITE on it is ignored). */
	put_desc(f, ITABLE_GPA, 0, BUF_GPA + 0x100, 512, F_NEXT, 2);
	put_desc(f, ITABLE_GPA, 2, BUF_GPA + 0x400, 1, F_WRITE, 0);
	put_desc(f, DESC_GPA, 7, BUF_GPA, 16, F_NEXT, 8);
	put_desc(f, DESC_GPA, 8, ITABLE_GPA, 48, F_INDIRECT | F_WRITE, 0);
	offer(f, 7);
	expect_good(f);
	assert_int_equal(f->e.head, 7);
	assert_int_equal(f->e.out_num, 2);
	assert_int_equal(f->e.in_num, 1);
	assert_ptr_equal(f->e.iov[1].iov_base, f->ram + BUF_GPA + 0x100);
	assert_ptr_equal(f->e.iov[2].iov_base, f->ram + BUF_GPA + 0x400);
}

static void test_index_wraparound(void **state)
{
	struct fx *f = *state;
	f->q.last_avail = 65534;
	f->q.used_idx = 65535;
	*avail_idx(f) = 65534;
	*used_idx(f) = 65535;
	for (unsigned i = 0; i < 4; i++) {
		put_desc(f, DESC_GPA, i, BUF_GPA + 64 * i, 64, F_WRITE, 0);
		offer(f, (uint16_t)i);
	}
	assert_int_equal(*avail_idx(f), 2); /* wrapped */
	for (unsigned i = 0; i < 4; i++) {
		expect_good(f);
		assert_int_equal(f->e.head, i);
		assert_int_equal(virtq_push(&f->q, f->e.head, 10 + i), 0);
	}
	assert_int_equal(f->q.last_avail, 2);
	assert_int_equal(virtq_pop(&f->q, &f->e, NULL), 0);
	assert_int_equal(*used_idx(f), 3); /* 65535 + 4 */
	/* used element for head 1 was the 2nd push: ring slot (65535+1) % 16 = 0 */
	uint32_t id, len;
	memcpy(&id, f->ram + USED_GPA + 4 + 8 * 0, 4);
	memcpy(&len, f->ram + USED_GPA + 4 + 8 * 0 + 4, 4);
	assert_int_equal(id, 1);
	assert_int_equal(len, 11);
	memcpy(&id, f->ram + USED_GPA + 4 + 8 * 15, 4);
	assert_int_equal(id, 0);
}

static void test_push_contents_and_bad_head(void **state)
{
	struct fx *f = *state;
	assert_int_equal(virtq_push(&f->q, 6, 4096), 0);
	assert_int_equal(*used_idx(f), 1);
	uint32_t id, len;
	memcpy(&id, f->ram + USED_GPA + 4, 4);
	memcpy(&len, f->ram + USED_GPA + 8, 4);
	assert_int_equal(id, 6);
	assert_int_equal(len, 4096);
	assert_int_equal(virtq_push(&f->q, QSIZE, 0), -EINVAL);
	assert_int_equal(*used_idx(f), 1);
}

static void test_fill_flush_publishes_once(void **state)
{
	struct fx *f = *state;
	/* A mergeable-rx frame over three chains: nothing visible until flush. */
	assert_int_equal(virtq_fill(&f->q, 0, 3, 1500), 0);
	assert_int_equal(virtq_fill(&f->q, 1, 4, 1500), 0);
	assert_int_equal(virtq_fill(&f->q, 2, 5, 100), 0);
	assert_int_equal(*used_idx(f), 0);
	assert_int_equal(virtq_fill(&f->q, QSIZE, 1, 0), -EINVAL);   /* offset past the ring */
	virtq_flush(&f->q, 3);
	assert_int_equal(*used_idx(f), 3);
	uint32_t id;
	memcpy(&id, f->ram + USED_GPA + 4 + 8 * 2, 4);
	assert_int_equal(id, 5);
}

static void test_no_interrupt_flag(void **state)
{
	struct fx *f = *state;
	virtq_push(&f->q, 0, 0);
	*avail_flags(f) = 1;
	assert_false(virtq_need_notify(&f->q));
	*avail_flags(f) = 0;
	virtq_push(&f->q, 0, 0);
	assert_true(virtq_need_notify(&f->q));
}

static void test_event_idx_notify(void **state)
{
	struct fx *f = *state;
	f->q.event_idx = true;
	*avail_flags(f) = 1; /* ignored with EVENT_IDX */
	*used_event(f) = 0;
	virtq_push(&f->q, 0, 0);                  /* used 1 */
	assert_true(virtq_need_notify(&f->q));    /* first signal always goes out */
	virtq_push(&f->q, 0, 0);                  /* used 2; driver wants event at 0: passed already */
	assert_false(virtq_need_notify(&f->q));
	*used_event(f) = 2;
	virtq_push(&f->q, 0, 0);                  /* used 3: crossed 2 */
	assert_true(virtq_need_notify(&f->q));
	*used_event(f) = 10;
	virtq_push(&f->q, 0, 0);                  /* used 4 */
	assert_false(virtq_need_notify(&f->q));
	for (unsigned i = 0; i < 7; i++)
		virtq_push(&f->q, 0, 0);          /* used 11: crossed 10 */
	assert_true(virtq_need_notify(&f->q));
	assert_false(virtq_need_notify(&f->q));   /* nothing new since */
}

static void test_event_idx_avail_event(void **state)
{
	struct fx *f = *state;
	f->q.event_idx = true;
	put_desc(f, DESC_GPA, 0, BUF_GPA, 8, 0, 0);
	offer(f, 0);
	offer(f, 0);
	expect_good(f);
	assert_int_equal(*avail_event(f), 1);
	expect_good(f);
	assert_int_equal(*avail_event(f), 2);
	assert_false(virtq_has_work(&f->q));
	offer(f, 0);
	assert_true(virtq_has_work(&f->q));
}

static void test_init_validation(void **state)
{
	struct fx *f = *state;
	struct virtq q = f->q;
	static const uint16_t sizes[] = { 0, 3, 100, VIRTQ_MAX_SIZE * 2 };
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		q = f->q;
		q.size = sizes[i];
		assert_int_equal(virtq_init(&q, &f->mem), -EINVAL);
	}
	q = f->q; q.desc_gpa = DESC_GPA + 8;
	assert_int_equal(virtq_init(&q, &f->mem), -EINVAL);
	q = f->q; q.avail_gpa = AVAIL_GPA + 1;
	assert_int_equal(virtq_init(&q, &f->mem), -EINVAL);
	q = f->q; q.used_gpa = USED_GPA + 2;
	assert_int_equal(virtq_init(&q, &f->mem), -EINVAL);
	q = f->q; q.desc_gpa = RAM_SIZE - 16 * QSIZE + 16;
	assert_int_equal(virtq_init(&q, &f->mem), -EINVAL);
	/* Used ring fits but its trailing avail_event does not. */
	q = f->q; q.used_gpa = RAM_SIZE - (4 + 8 * QSIZE);
	assert_int_equal(virtq_init(&q, &f->mem), -EINVAL);
	q.used_gpa = RAM_SIZE - (6 + 8 * QSIZE) - 2; /* 4-aligned, fits with avail_event */
	assert_int_equal(virtq_init(&q, &f->mem), 0);
	/* Avail ring whose used_event would be past RAM. */
	q = f->q; q.avail_gpa = RAM_SIZE - (4 + 2 * QSIZE);
	assert_int_equal(virtq_init(&q, &f->mem), -EINVAL);
	q = f->q; q.avail_gpa = UINT64_MAX - 1;
	assert_int_equal(virtq_init(&q, &f->mem), -EINVAL);
	q = f->q; q.size = VIRTQ_MAX_SIZE;
	assert_int_equal(virtq_init(&q, &f->mem), 0);
}

static void test_iov_copy_helpers(void **state)
{
	(void)state;
	uint8_t a[3] = { 1, 2, 3 }, b[5] = { 4, 5, 6, 7, 8 }, out[8] = { 0 };
	struct iovec iov[2] = { { a, 3 }, { b, 5 } };
	assert_int_equal(virtq_iov_to_buf(iov, 2, 2, out, sizeof(out)), 6);
	uint8_t want[6] = { 3, 4, 5, 6, 7, 8 };
	assert_memory_equal(out, want, 6);
	assert_int_equal(virtq_iov_to_buf(iov, 2, 9, out, 4), 0);
	uint8_t src[4] = { 9, 9, 9, 9 };
	assert_int_equal(virtq_buf_to_iov(iov, 2, 1, src, 4), 4);
	uint8_t wa[3] = { 1, 9, 9 }, wb[5] = { 9, 9, 6, 7, 8 };
	assert_memory_equal(a, wa, 3);
	assert_memory_equal(b, wb, 5);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_self_loop),
		T(test_two_cycle),
		T(test_chain_whole_queue_then_longer),
		T(test_next_out_of_range),
		T(test_head_out_of_range),
		T(test_avail_idx_jump),
		T(test_buffer_outside_ram),
		T(test_buffer_across_hole),
		T(test_zero_length_skipped),
		T(test_readable_after_writable),
		T(test_indirect_without_feature),
		T(test_nested_indirect),
		T(test_indirect_with_next),
		T(test_indirect_bad_len),
		T(test_indirect_table_outside_ram),
		T(test_indirect_loop_and_next),
		T(test_too_many_segments),
		T(test_total_bytes_bounded),
		T(test_not_ready_or_empty),
		T(test_single_and_multi),
		T(test_indirect_good),
		T(test_index_wraparound),
		T(test_push_contents_and_bad_head),
		T(test_fill_flush_publishes_once),
		T(test_no_interrupt_flag),
		T(test_event_idx_notify),
		T(test_event_idx_avail_event),
		T(test_init_validation),
		cmocka_unit_test(test_iov_copy_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
