/* Test guest (hostile): malformed split virtqueues against virtio-blk and
 * virtio-rng (virtio 1.2 section 2.7 and the rules it sets for drivers).
 * Each trick resets the device, builds one broken queue (buffers outside RAM
 * or in the MMIO hole, lengths near 2^32, descriptor loops, chains longer
 * than the queue, indirect tables inside indirect tables, avail index games,
 * rings outside RAM, queue sizes that are not a power of two, ...),
 * notifies, and reports what the device did. The device is then reset and
 * must serve well-formed requests again: blk reads sector 0 and gets the
 * bytes it read at the start, rng returns bytes that are not all zero.
 *
 * What the VMM should log and which tricks must end in "needs-reset" is for
 * the host side to check; this guest only proves the device survived each
 * trick and recovered. blk only ever writes sectors >= 2, and only through
 * tricks a VMM must refuse: the host can check those sectors stay as they were.
 *
 * cmdline: pace_ms=, watch_ms=, skip= (lib/hostile.h); storm=N (default 200): N
 * loops in a burst at the end, then one more trick after 1.1 s, so a VMM's
 * rate-limited log has to say how many messages it dropped.
 *
 * Output (COM1), per trick:
 *   hostile-virtq: <blk|rng> #<n> <trick>
 *   hostile-virtq: <blk|rng> <trick>: <needs-reset|completed|no-reaction>[ status=S], recovered
 * and at the end "hostile-virtq ok <n> tricks, device still works" (exit 0).
 * A "FAIL" line is followed by exit 1. */
#include <stddef.h>
#include <stdint.h>

#include "exit.h"
#include "hostile.h"
#include "io.h"
#include "pvh.h"
#include "serial.h"
#include "string.h"
#include "virtio.h"

#define GUEST "hostile-virtq"

#define BLK_T_IN  0
#define BLK_T_OUT 1
#define BLK_S_OK     0
#define BLK_S_IOERR  1
#define BLK_S_UNSUPP 2
#define SECTOR 512

#define F_NEXT     VIRTQ_DESC_F_NEXT
#define F_WRITE    VIRTQ_DESC_F_WRITE
#define F_INDIRECT VIRTQ_DESC_F_INDIRECT

#define TRICK_QSIZE 16            /* queue size of the tricks (smaller if the device says so) */
#define MAX_SEGS_PROBE 1024       /* indirect entries in the too-many-segments trick */

/* Trick memory: rings for queue sizes up to 1024 and indirect tables.
 * Offsets into the arena; everything is zeroed before each trick. */
#define A_DESC   0x0000           /* 16 KiB: 1024 descriptors */
#define A_AVAIL  0x4000           /* 2 KiB + 6 */
#define A_USED   0x5000           /* 8 KiB + 6 */
#define A_IND    0x8000           /* 16 KiB: 1024 indirect descriptors */
#define A_IND2   0xc000           /* a second, small indirect table */
#define A_DATA   0xd000           /* header, status, data */
#define ARENA_SIZE 0xe000

#define HDR_ADDR    (arena_base + A_DATA)
#define STATUS_ADDR (arena_base + A_DATA + 16)
#define DATA_ADDR   (arena_base + A_DATA + SECTOR)
#define DATA_LEN    SECTOR

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct target {
	const char *name;
	uint16_t type;
	struct virtio_dev vd;
	struct virtq vq;              /* the well-formed queue used to recover */
	uint16_t qmax, qsize;
};

static uint8_t arena[ARENA_SIZE] __attribute__((section(".stack.hostile"), aligned(4096)));
static uint64_t arena_base;
static uint64_t past_ram;         /* an address just beyond guest RAM */

static struct target blk = { .name = "blk", .type = VIRTIO_ID_BLK };
static struct target rng = { .name = "rng", .type = VIRTIO_ID_RNG };

static uint8_t sector0[SECTOR], rbuf[SECTOR];
static uint32_t sector0_fnv;
static uint8_t ok_status;
static struct blk_hdr ok_hdr;

static struct virtq_desc *table(uint32_t off)
{
	return (struct virtq_desc *)(arena + off);
}

static void desc_set(struct virtq_desc *t, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	t[i] = (struct virtq_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static volatile uint16_t *avail_ring(void)
{
	return (volatile uint16_t *)(arena + A_AVAIL);   /* flags, idx, ring[] */
}

static volatile uint16_t *used_idx(void)
{
	return (volatile uint16_t *)(arena + A_USED + 2);
}

static struct blk_hdr *hdr(void)
{
	return (struct blk_hdr *)(arena + A_DATA);
}

static uint8_t status_byte(void)
{
	return *(volatile uint8_t *)(arena + A_DATA + 16);
}

/* Head `head` made available as entry 0; avail.idx = 1, interrupts off. */
static void avail_put(uint16_t head)
{
	volatile uint16_t *a = avail_ring();

	a[0] = 1;                     /* VIRTQ_AVAIL_F_NO_INTERRUPT */
	a[2] = head;
	a[1] = 1;
}

/* The device's ordinary request as descriptors 0..n-1 of table t, linked,
 * with the data buffer at addr/len/flags: for blk a header, the data and a
 * status byte (a read of sector 0 when the data is device-writable, a write
 * of sector 2 when it is device-readable); for rng the buffer alone. n. */
static unsigned std_chain(const struct target *x, struct virtq_desc *t, uint64_t addr, uint32_t len,
			  uint16_t flags)
{
	if (x->type == VIRTIO_ID_RNG) {
		desc_set(t, 0, addr, len, flags, 0);
		return 1;
	}
	hdr()->type = (flags & F_WRITE) ? BLK_T_IN : BLK_T_OUT;
	hdr()->sector = (flags & F_WRITE) ? 0 : 2;
	desc_set(t, 0, HDR_ADDR, sizeof(struct blk_hdr), F_NEXT, 1);
	desc_set(t, 1, addr, len, flags | F_NEXT, 2);
	desc_set(t, 2, STATUS_ADDR, 1, F_WRITE, 0);
	return 3;
}

static unsigned std_chain_ok(const struct target *x, struct virtq_desc *t)
{
	return std_chain(x, t, DATA_ADDR, DATA_LEN, F_WRITE);
}

__attribute__((noreturn)) static void fail(const struct target *x, const char *what)
{
	printf(GUEST ": FAIL: %s: %s\n", x->name, what);
	guest_exit(1);
}

/* Reset and negotiate VERSION_1 plus `extra`; the device must take it. */
static void begin(struct target *x, uint64_t extra)
{
	int rc = hostile_begin(&x->vd, VIRTIO_BIT(VIRTIO_F_VERSION_1) | (x->vd.offered & extra));

	if (rc < 0)
		fail(x, "device did not reset");
	if (rc > 0)
		fail(x, "device refused features it offered");
}

static void place(struct target *x, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	hostile_queue_place(&x->vd, 0, size, desc, avail, used);
}

static void place_default(struct target *x)
{
	place(x, x->qsize, arena_base + A_DESC, arena_base + A_AVAIL, arena_base + A_USED);
}

/* DRIVER_OK, notify queue 0, watch. */
static enum hostile_reaction go(struct target *x)
{
	hostile_driver_ok(&x->vd);
	hostile_notify(&x->vd, 0, 0);
	return hostile_watch(&x->vd, used_idx(), 0, hostile_watch_ms);
}

/* The standard chain with its data buffer replaced; queue at the arena. */
static enum hostile_reaction bad_buffer(struct target *x, uint64_t addr, uint32_t len, uint16_t flags)
{
	begin(x, 0);
	std_chain(x, table(A_DESC), addr, len, flags);
	avail_put(0);
	place_default(x);
	return go(x);
}

/* --- the tricks ----------------------------------------------------------- */

static enum hostile_reaction t_desc_past_ram(struct target *x)
{
	return bad_buffer(x, past_ram, DATA_LEN, F_WRITE);
}

static enum hostile_reaction t_desc_mmio_hole(struct target *x)
{
	return bad_buffer(x, HOSTILE_HOLE_ADDR, DATA_LEN, F_WRITE);
}

/* Device-readable data in the device's own registers (a write of sector 2
 * whose payload would be the common configuration). blk only: a device
 * writing into its own registers is a different experiment. */
static enum hostile_reaction t_desc_own_bar(struct target *x)
{
	return bad_buffer(x, x->vd.common, DATA_LEN, 0);
}

static enum hostile_reaction t_len_near_4g(struct target *x)
{
	return bad_buffer(x, DATA_ADDR, 0xfffff000u, F_WRITE);
}

static enum hostile_reaction t_addr_wraps(struct target *x)
{
	return bad_buffer(x, 0xfffffffffffff000ull, 0x2000, F_WRITE);
}

/* The chain's last (device-writable) descriptor points at itself. */
static enum hostile_reaction t_desc_self_loop(struct target *x)
{
	struct virtq_desc *t = table(A_DESC);
	unsigned n;

	begin(x, 0);
	n = std_chain_ok(x, t);
	t[n - 1].flags |= F_NEXT;
	t[n - 1].next = (uint16_t)(n - 1);
	avail_put(0);
	place_default(x);
	return go(x);
}

/* Every descriptor of the table in one chain that wraps around to the first
 * device-writable one: longer than the queue without ending. */
static enum hostile_reaction t_chain_longer_than_queue(struct target *x)
{
	struct virtq_desc *t = table(A_DESC);
	unsigned first_w = x->type == VIRTIO_ID_BLK ? 1 : 0;

	begin(x, 0);
	std_chain_ok(x, t);
	for (unsigned i = first_w; i < x->qsize; i++)
		desc_set(t, i, DATA_ADDR + 8 * i, 8, F_WRITE | F_NEXT,
			 (uint16_t)(i + 1 < x->qsize ? i + 1 : first_w));
	avail_put(0);
	place_default(x);
	return go(x);
}

static enum hostile_reaction t_next_out_of_range(struct target *x)
{
	struct virtq_desc *t = table(A_DESC);
	unsigned n;

	begin(x, 0);
	n = std_chain_ok(x, t);
	t[n - 1].flags |= F_NEXT;
	t[n - 1].next = 0xfff0;
	avail_put(0);
	place_default(x);
	return go(x);
}

static enum hostile_reaction t_head_out_of_range(struct target *x)
{
	begin(x, 0);
	std_chain_ok(x, table(A_DESC));
	avail_put((uint16_t)(x->qsize + 3));
	place_default(x);
	return go(x);
}

/* avail.idx 0x8000 ahead of what the device consumed: far more buffers than
 * the ring can hold (every entry names the valid chain at 0). */
static enum hostile_reaction t_avail_idx_jump(struct target *x)
{
	begin(x, 0);
	std_chain_ok(x, table(A_DESC));
	avail_put(0);
	avail_ring()[1] = 0x8000;
	place_default(x);
	return go(x);
}

/* Descriptor 0 is an indirect table holding the standard chain. */
static void indirect_head(const struct target *x, uint16_t flags, uint32_t len)
{
	std_chain_ok(x, table(A_IND));
	desc_set(table(A_DESC), 0, arena_base + A_IND, len, F_INDIRECT | flags, 1);
	avail_put(0);
}

static uint32_t std_table_len(const struct target *x)
{
	return x->type == VIRTIO_ID_BLK ? 3 * 16 : 16;
}

static enum hostile_reaction t_indirect_unnegotiated(struct target *x)
{
	begin(x, 0);
	indirect_head(x, 0, std_table_len(x));
	place_default(x);
	return go(x);
}

/* The indirect table's first entry is itself an indirect table. */
static enum hostile_reaction t_indirect_nested(struct target *x)
{
	begin(x, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
	std_chain_ok(x, table(A_IND2));
	desc_set(table(A_IND), 0, arena_base + A_IND2, std_table_len(x), F_INDIRECT, 0);
	desc_set(table(A_DESC), 0, arena_base + A_IND, 16, F_INDIRECT, 0);
	avail_put(0);
	place_default(x);
	return go(x);
}

static enum hostile_reaction t_indirect_with_next(struct target *x)
{
	begin(x, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
	indirect_head(x, F_NEXT, std_table_len(x));
	desc_set(table(A_DESC), 1, DATA_ADDR, 8, F_WRITE, 0);
	place_default(x);
	return go(x);
}

static enum hostile_reaction t_indirect_odd_len(struct target *x)
{
	begin(x, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
	indirect_head(x, 0, 24);
	place_default(x);
	return go(x);
}

static enum hostile_reaction t_indirect_empty(struct target *x)
{
	begin(x, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
	indirect_head(x, 0, 0);
	place_default(x);
	return go(x);
}

static enum hostile_reaction t_indirect_in_hole(struct target *x)
{
	begin(x, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
	indirect_head(x, 0, std_table_len(x));
	table(A_DESC)[0].addr = HOSTILE_HOLE_ADDR;
	place_default(x);
	return go(x);
}

/* A loop inside the indirect table (its last entry points at itself). */
static enum hostile_reaction t_indirect_loop(struct target *x)
{
	struct virtq_desc *t = table(A_IND);
	unsigned n = x->type == VIRTIO_ID_BLK ? 3 : 1;

	begin(x, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
	indirect_head(x, 0, std_table_len(x));
	t[n - 1].flags |= F_NEXT;
	t[n - 1].next = (uint16_t)(n - 1);
	place_default(x);
	return go(x);
}

/* One descriptor in the ring, then an indirect table of 1024 one-byte
 * device-writable buffers: one segment more than a chain may have. */
static enum hostile_reaction t_too_many_segments(struct target *x)
{
	struct virtq_desc *t = table(A_DESC), *ind = table(A_IND);

	begin(x, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
	if (x->type == VIRTIO_ID_BLK) {
		hdr()->type = BLK_T_IN;
		desc_set(t, 0, HDR_ADDR, sizeof(struct blk_hdr), F_NEXT, 1);
	} else {
		desc_set(t, 0, DATA_ADDR, 1, F_WRITE | F_NEXT, 1);
	}
	for (unsigned i = 0; i < MAX_SEGS_PROBE; i++)
		desc_set(ind, i, DATA_ADDR + i % DATA_LEN, 1,
			 F_WRITE | (i + 1 < MAX_SEGS_PROBE ? F_NEXT : 0), (uint16_t)(i + 1));
	desc_set(t, 1, arena_base + A_IND, MAX_SEGS_PROBE * 16, F_INDIRECT, 0);
	avail_put(0);
	place_default(x);
	return go(x);
}

/* A device-readable buffer after the device-writable ones. */
static enum hostile_reaction t_readable_after_writable(struct target *x)
{
	struct virtq_desc *t = table(A_DESC);
	unsigned n;

	begin(x, 0);
	n = std_chain_ok(x, t);
	t[n - 1].flags |= F_NEXT;
	t[n - 1].next = (uint16_t)n;
	desc_set(t, n, DATA_ADDR, 16, 0, 0);
	avail_put(0);
	place_default(x);
	return go(x);
}

static enum hostile_reaction t_used_ring_past_ram(struct target *x)
{
	begin(x, 0);
	std_chain_ok(x, table(A_DESC));
	avail_put(0);
	place(x, x->qsize, arena_base + A_DESC, arena_base + A_AVAIL, past_ram);
	return go(x);
}

static enum hostile_reaction t_desc_table_in_hole(struct target *x)
{
	begin(x, 0);
	avail_put(0);
	place(x, x->qsize, HOSTILE_HOLE_ADDR, arena_base + A_AVAIL, arena_base + A_USED);
	return go(x);
}

/* The descriptor table 8 bytes off its required 16-byte alignment. */
static enum hostile_reaction t_ring_misaligned(struct target *x)
{
	begin(x, 0);
	std_chain_ok(x, table(A_DESC + 8));
	avail_put(0);
	place(x, x->qsize, arena_base + A_DESC + 8, arena_base + A_AVAIL, arena_base + A_USED);
	return go(x);
}

static enum hostile_reaction queue_size(struct target *x, uint16_t size)
{
	begin(x, 0);
	std_chain_ok(x, table(A_DESC));
	avail_put(0);
	place(x, size, arena_base + A_DESC, arena_base + A_AVAIL, arena_base + A_USED);
	return go(x);
}

static enum hostile_reaction t_queue_size_3(struct target *x)
{
	return queue_size(x, 3);
}

static enum hostile_reaction t_queue_size_0(struct target *x)
{
	return queue_size(x, 0);
}

/* A power of two, but above what the device offers (the rings above have
 * room for 1024 entries). */
static enum hostile_reaction t_queue_size_over_max(struct target *x)
{
	return queue_size(x, x->qmax < 1024 ? (uint16_t)(x->qmax * 2) : 0x8000);
}

/* The available and used rings at the same address. */
static enum hostile_reaction t_rings_overlap(struct target *x)
{
	begin(x, 0);
	std_chain_ok(x, table(A_DESC));
	avail_put(0);
	place(x, x->qsize, arena_base + A_DESC, arena_base + A_AVAIL, arena_base + A_AVAIL);
	hostile_driver_ok(&x->vd);
	hostile_notify(&x->vd, 0, 0);
	/* used.idx is avail.idx here: only the status says anything. */
	return hostile_watch(&x->vd, NULL, 0, hostile_watch_ms);
}

static enum hostile_reaction t_driver_ok_without_features_ok(struct target *x)
{
	if (hostile_reset(&x->vd))
		fail(x, "device did not reset");
	hostile_cc_write8(&x->vd, HCC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	hostile_cc_write8(&x->vd, HCC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	hostile_cc_write8(&x->vd, HCC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			  VIRTIO_STATUS_DRIVER_OK);
	return hostile_watch(&x->vd, NULL, 0, hostile_watch_ms);
}

/* Notifications of the wrong width and with a queue index that does not
 * exist, then a 16-bit one; the request itself is well-formed. */
static enum hostile_reaction t_odd_notifies(struct target *x)
{
	uint64_t at;

	begin(x, 0);
	std_chain_ok(x, table(A_DESC));
	avail_put(0);
	place_default(x);
	hostile_driver_ok(&x->vd);
	hostile_cc_write16(&x->vd, HCC_Q_SELECT, 0);
	at = x->vd.notify + (uint64_t)hostile_cc_read16(&x->vd, HCC_Q_NOTIFY_OFF) * x->vd.notify_mult;
	mmio_write8((uintptr_t)at, 0xff);
	mmio_write32((uintptr_t)at, 0xffffffffu);
	hostile_notify(&x->vd, 0, 0x7fff);
	hostile_notify(&x->vd, 0, 0);
	return hostile_watch(&x->vd, used_idx(), 0, hostile_watch_ms);
}

/* queue_select far beyond the queues, then writes to the selected queue's
 * fields and an enable. */
static enum hostile_reaction t_select_missing_queue(struct target *x)
{
	begin(x, 0);
	hostile_cc_write16(&x->vd, HCC_Q_SELECT, 0x7fff);
	hostile_cc_write16(&x->vd, HCC_Q_SIZE, 4);
	hostile_cc_write16(&x->vd, HCC_Q_MSIX, 0x1234);
	hostile_cc_write64(&x->vd, HCC_Q_DESC, HOSTILE_HOLE_ADDR);
	hostile_cc_write16(&x->vd, HCC_Q_ENABLE, 1);
	printf(GUEST ": %s: queue 0x7fff reads size %u enable %u\n", x->name,
	       hostile_cc_read16(&x->vd, HCC_Q_SIZE), hostile_cc_read16(&x->vd, HCC_Q_ENABLE));
	return hostile_watch(&x->vd, NULL, 0, hostile_watch_ms);
}

/* Every feature bit, in more feature words than exist. */
static enum hostile_reaction t_features_garbage(struct target *x)
{
	int rc;

	hostile_cc_write32(&x->vd, HCC_GFSELECT, 0xffffffffu);
	hostile_cc_write32(&x->vd, HCC_GF, 0xffffffffu);
	hostile_cc_write32(&x->vd, HCC_DFSELECT, 0xffffffffu);
	(void)mmio_read32(x->vd.common + HCC_DF);
	rc = hostile_begin(&x->vd, ~0ull);
	if (rc < 0)
		fail(x, "device did not reset");
	printf(GUEST ": %s: FEATURES_OK with every bit %s\n", x->name, rc ? "refused" : "accepted");
	return hostile_watch(&x->vd, NULL, 0, 0);
}

/* --- requests that are well-formed on the ring but wrong as blk requests -- */

static enum hostile_reaction blk_hdr_trick(struct target *x, uint32_t type, uint64_t sector,
					   uint32_t data_len, uint32_t hdr_len, int with_status)
{
	struct virtq_desc *t = table(A_DESC);

	begin(x, 0);
	std_chain(x, t, DATA_ADDR, data_len, F_WRITE);
	hdr()->type = type;
	hdr()->sector = sector;
	t[0].len = hdr_len;
	if (!with_status)
		t[0].flags = 0;         /* the header alone */
	*(volatile uint8_t *)(arena + A_DATA + 16) = 0xee;
	avail_put(0);
	place_default(x);
	return go(x);
}

static enum hostile_reaction t_blk_no_status(struct target *x)
{
	return blk_hdr_trick(x, BLK_T_IN, 0, DATA_LEN, sizeof(struct blk_hdr), 0);
}

static enum hostile_reaction t_blk_short_header(struct target *x)
{
	return blk_hdr_trick(x, BLK_T_IN, 0, DATA_LEN, 8, 1);
}

/* These three must complete with an error status, in any VMM. */
static enum hostile_reaction t_blk_sector_past_end(struct target *x)
{
	return blk_hdr_trick(x, BLK_T_IN, 1ull << 62, DATA_LEN, sizeof(struct blk_hdr), 1);
}

static enum hostile_reaction t_blk_odd_length(struct target *x)
{
	return blk_hdr_trick(x, BLK_T_IN, 0, DATA_LEN - 1, sizeof(struct blk_hdr), 1);
}

static enum hostile_reaction t_blk_bad_type(struct target *x)
{
	return blk_hdr_trick(x, 0x7fff0000u, 0, DATA_LEN, sizeof(struct blk_hdr), 1);
}

static enum hostile_reaction t_rng_zero_length(struct target *x)
{
	return bad_buffer(x, DATA_ADDR, 0, F_WRITE);
}

static enum hostile_reaction t_rng_readable(struct target *x)
{
	return bad_buffer(x, DATA_ADDR, 64, 0);
}

/* --- the list -------------------------------------------------------------- */

#define BLK (1u << 0)
#define RNG (1u << 1)

struct trick {
	const char *name;
	unsigned devs;
	enum hostile_reaction (*run)(struct target *x);
	uint8_t want_status;          /* blk: with REACT_USED, this status (0xff: any) */
};

static const struct trick tricks[] = {
	{ "desc-past-ram", BLK | RNG, t_desc_past_ram, 0xff },
	{ "desc-mmio-hole", BLK | RNG, t_desc_mmio_hole, 0xff },
	{ "desc-own-bar", BLK, t_desc_own_bar, 0xff },
	{ "len-near-4g", BLK | RNG, t_len_near_4g, 0xff },
	{ "addr-wraps", BLK | RNG, t_addr_wraps, 0xff },
	{ "desc-self-loop", BLK | RNG, t_desc_self_loop, 0xff },
	{ "chain-longer-than-queue", BLK | RNG, t_chain_longer_than_queue, 0xff },
	{ "next-out-of-range", BLK | RNG, t_next_out_of_range, 0xff },
	{ "head-out-of-range", BLK | RNG, t_head_out_of_range, 0xff },
	{ "avail-idx-jump", BLK | RNG, t_avail_idx_jump, 0xff },
	{ "indirect-unnegotiated", BLK | RNG, t_indirect_unnegotiated, 0xff },
	{ "indirect-nested", BLK | RNG, t_indirect_nested, 0xff },
	{ "indirect-with-next", BLK | RNG, t_indirect_with_next, 0xff },
	{ "indirect-odd-len", BLK | RNG, t_indirect_odd_len, 0xff },
	{ "indirect-empty", BLK | RNG, t_indirect_empty, 0xff },
	{ "indirect-in-hole", BLK | RNG, t_indirect_in_hole, 0xff },
	{ "indirect-loop", BLK | RNG, t_indirect_loop, 0xff },
	{ "too-many-segments", BLK | RNG, t_too_many_segments, 0xff },
	{ "readable-after-writable", BLK | RNG, t_readable_after_writable, 0xff },
	{ "used-ring-past-ram", BLK | RNG, t_used_ring_past_ram, 0xff },
	{ "desc-table-in-hole", BLK | RNG, t_desc_table_in_hole, 0xff },
	{ "ring-misaligned", BLK | RNG, t_ring_misaligned, 0xff },
	{ "queue-size-3", BLK | RNG, t_queue_size_3, 0xff },
	{ "queue-size-0", BLK | RNG, t_queue_size_0, 0xff },
	{ "queue-size-over-max", BLK | RNG, t_queue_size_over_max, 0xff },
	{ "rings-overlap", BLK | RNG, t_rings_overlap, 0xff },
	{ "driver-ok-without-features-ok", BLK | RNG, t_driver_ok_without_features_ok, 0xff },
	{ "odd-notifies", BLK | RNG, t_odd_notifies, 0xff },
	{ "select-missing-queue", BLK | RNG, t_select_missing_queue, 0xff },
	{ "features-garbage", BLK | RNG, t_features_garbage, 0xff },
	{ "blk-no-status", BLK, t_blk_no_status, 0xff },
	{ "blk-short-header", BLK, t_blk_short_header, 0xff },
	{ "blk-sector-past-end", BLK, t_blk_sector_past_end, BLK_S_IOERR },
	{ "blk-odd-length", BLK, t_blk_odd_length, BLK_S_IOERR },
	{ "blk-bad-type", BLK, t_blk_bad_type, BLK_S_UNSUPP },
	{ "rng-zero-length", RNG, t_rng_zero_length, 0xff },
	{ "rng-readable", RNG, t_rng_readable, 0xff },
};

/* --- recovery -------------------------------------------------------------- */

static uint32_t fnv1a(const uint8_t *p, unsigned n)
{
	uint32_t h = 2166136261u;

	for (unsigned i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static int blk_read0(struct target *x, uint8_t *buf)
{
	struct virtq_buf out = { &ok_hdr, sizeof(ok_hdr) };
	struct virtq_buf in[2] = { { buf, SECTOR }, { &ok_status, 1 } };
	int n;

	ok_hdr = (struct blk_hdr){ .type = BLK_T_IN, .sector = 0 };
	ok_status = 0xff;
	n = virtq_transfer(&x->vq, &out, 1, in, 2);
	if (n < 0 || ok_status != BLK_S_OK) {
		printf(GUEST ": blk read of sector 0: used len %d status %u\n", n, ok_status);
		return -1;
	}
	return 0;
}

static int rng_read(struct target *x)
{
	uint8_t any = 0;
	struct virtq_buf in = { rbuf, 16 };
	int n;

	memset(rbuf, 0, 16);
	n = virtq_transfer(&x->vq, NULL, 0, &in, 1);
	if (n <= 0 || n > 16) {
		printf(GUEST ": rng request returned %d\n", n);
		return -1;
	}
	for (int i = 0; i < n; i++)
		any |= rbuf[i];
	if (!any) {
		printf(GUEST ": rng returned %d zero bytes\n", n);
		return -1;
	}
	return 0;
}

/* Reset, set the device up as a driver would and serve one request. */
static int device_works(struct target *x)
{
	if (virtio_start(&x->vd, 0) || virtq_setup(&x->vd, &x->vq, 0))
		return -1;
	virtio_driver_ok(&x->vd);
	if (x->type == VIRTIO_ID_RNG)
		return rng_read(x);
	if (blk_read0(x, rbuf))
		return -1;
	if (fnv1a(rbuf, SECTOR) != sector0_fnv) {
		printf(GUEST ": blk sector 0 reads differently now (fnv1a 0x%08x, was 0x%08x)\n",
		       fnv1a(rbuf, SECTOR), sector0_fnv);
		return -1;
	}
	return 0;
}

static void run(struct target *x, const struct trick *tr)
{
	enum hostile_reaction r;

	if (!hostile_trick(x->name, tr->name))
		return;
	memset(arena, 0, sizeof(arena));
	r = tr->run(x);
	printf(GUEST ": %s %s: %s", x->name, tr->name, hostile_reaction_name(r));
	if (x->type == VIRTIO_ID_BLK && r == REACT_USED)
		printf(" status=%u", status_byte());
	if (tr->want_status != 0xff && (r != REACT_USED || status_byte() != tr->want_status)) {
		printf("\n");
		printf(GUEST ": FAIL: %s %s: expected completion with status %u\n", x->name, tr->name,
		       tr->want_status);
		guest_exit(1);
	}
	if (device_works(x)) {
		printf("\n");
		fail(x, "device does not work after the trick");
	}
	printf(", recovered\n");
}

static void setup(struct target *x)
{
	if (virtio_find(x->type, 0, &x->vd))
		fail(x, "no such device");
	if (virtio_start(&x->vd, 0))
		fail(x, "cannot start");
	x->qmax = hostile_queue_max(&x->vd, 0);
	if (!x->qmax)
		fail(x, "queue 0 does not exist");
	x->qsize = x->qmax < TRICK_QSIZE ? x->qmax : TRICK_QSIZE;
	/* A power of two no bigger than the maximum. */
	while (x->qsize & (x->qsize - 1))
		x->qsize &= (uint16_t)(x->qsize - 1);
	if (virtq_setup(&x->vd, &x->vq, 0))
		fail(x, "cannot set up queue 0");
	virtio_driver_ok(&x->vd);
	virtio_print(&x->vd, x->name);
	printf(GUEST ": %s queue max %u, tricks use %u\n", x->name, x->qmax, x->qsize);
}

int guest_main(struct hvm_start_info *si)
{
	unsigned storm = (unsigned)cmdline_get_u64("storm", 200), watch;
	uint64_t ram_end = hostile_ram_end(si);

	hostile_init(GUEST);
	arena_base = (uintptr_t)arena;
	/* 16 MiB past the end, clear of firmware areas a memmap may leave out
	 * of the RAM entry; without a memmap, just below the 3 GiB hole. */
	past_ram = ram_end ? ram_end + 0x1000000 : 0xbfff0000ull;
	printf(GUEST ": ram ends at 0x%lx, past-ram buffer at 0x%lx, pace %u ms, watch %u ms\n",
	       (unsigned long)ram_end, (unsigned long)past_ram, hostile_pace_ms, hostile_watch_ms);

	setup(&blk);
	setup(&rng);
	if (blk_read0(&blk, sector0))
		fail(&blk, "first read of sector 0");
	sector0_fnv = fnv1a(sector0, SECTOR);
	printf(GUEST ": blk sector0 fnv1a=0x%08x\n", sector0_fnv);
	if (rng_read(&rng))
		fail(&rng, "first request");

	for (unsigned i = 0; i < sizeof(tricks) / sizeof(tricks[0]); i++) {
		if (tricks[i].devs & BLK)
			run(&blk, &tricks[i]);
		if (tricks[i].devs & RNG)
			run(&rng, &tricks[i]);
	}

	/* The same broken chain many times in a row, as fast as possible: a
	 * short look for the reaction, then the next reset. */
	watch = hostile_watch_ms;
	hostile_watch_ms = 20;
	for (struct target *x = &blk; x; x = x == &blk ? &rng : NULL) {
		unsigned reset = 0;

		if (!hostile_trick(x->name, "storm"))
			continue;
		for (unsigned i = 0; i < storm; i++) {
			memset(arena, 0, A_DATA + SECTOR);
			reset += t_desc_self_loop(x) == REACT_NEEDS_RESET;
		}
		printf(GUEST ": %s storm: %u loops, %u needs-reset\n", x->name, storm, reset);
	}
	hostile_watch_ms = watch;
	/* Past the log rate limit's window: the next message comes with the
	 * count of those it dropped. */
	hostile_delay_ms(1100);
	run(&blk, &(struct trick){ "after-storm", BLK, t_desc_self_loop, 0xff });
	run(&rng, &(struct trick){ "after-storm", RNG, t_desc_self_loop, 0xff });

	if (device_works(&blk) || device_works(&rng))
		fail(&blk, "final check");
	printf("hostile-virtq ok %u tricks, device still works\n", hostile_tricks);
	return 0;
}
