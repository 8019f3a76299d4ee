/* Test guest: a counter whose output a checker can verify line by line, for
 * snapshot/restore and live-migration tests. State lives in RAM (a region of
 * mib= MiB at 16 MiB, rewritten every report), in registers (the report
 * number sits in r12 and its complement in r13 across every HLT), in a
 * periodic timer (LAPIC, or PIT with pit=1) and, with blk=1, in a virtio-blk
 * read that is always in flight between two reports.
 *
 * cmdline: ticks=N (stop after N reports, 0 = never), every=E timer ticks per
 * report (default 10), hz=H timer rate (default 100, 20..1000), mib=M region
 * size (default 4, 1..64), blk=1, pit=1.
 *
 * Output (COM1), one header, then one line per report k = 1, 2, ...:
 *   counter: start pages=P blk=B hz=H every=E timer=lapic|pit clock=C
 *   tick=k sum=S t=NS
 *   counter done                       (after ticks=N reports; exit 0)
 * NS is the clock.h clock (kvmclock ns, else calibrated TSC) when report k
 * became due. Any "counter: FAIL" line is followed by exit 1.
 *
 * The sum (all arithmetic on non-negative integers; "mod" is the remainder):
 *   V(j, p) = ((j + 16) * 2654435761 + p * 40503) mod 2^32     for j >= -15
 *   D(s, w) = ((s * 64 + w) * 2246822519 + 374761393) mod 2^32
 *   S(k)    = sum over pages p = 0 .. P-1 of
 *               V(k, p) + V(k - 1, p) + V(k - 15, p)
 *           + (B = 1 and k >= 2 ? sum over w = 0 .. 63 of D((k - 1) mod 64, w) : 0)
 * Why: page p of the region (P = mib * 256 pages) keeps a ring of 16 64-bit
 * words; report j (and, at boot, j = -15 .. 0) stores V(j, p) in word j mod
 * 16. Report k writes its word, then adds words k, k - 1 and k + 1 (mod 16),
 * the last one written 15 reports earlier, so memory lost or stale across a
 * snapshot or migration changes the sum. With blk=1 the guest first writes
 * D(s, w) as the 64-bit word w of sector s, s = 0 .. 63, of the disk; report
 * k then collects the read of sector (k - 1) mod 64 that report k - 1 left
 * in flight, adds its 64 words, and submits the read of sector k mod 64.
 * Exact in double-precision arithmetic (awk) for k < 2^21 and P <= 16384. */
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "idt.h"
#include "io.h"
#include "ioapic.h"
#include "lapic.h"
#include "pit.h"
#include "pvh.h"
#include "serial.h"
#include "string.h"
#include "virtio.h"

#define REGION_BASE 0x1000000ull       /* 16 MiB: above the image and its stacks */
#define PAGE_WORDS  512
#define RING_WORDS  16
#define VEC_TIMER   0x30
#define PIT_GSI     2                  /* where the MADT's IRQ0 override points */
#define LAPIC_HZ_BASE 62500000u        /* 1 GHz APIC bus / 16 (KVM, QEMU) */

#define BLK_SECTORS 64
#define SECTOR_WORDS 64                /* 512 bytes */
#define VIRTIO_BLK_F_RO    5
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_T_IN    0
#define VIRTIO_BLK_T_OUT   1
#define VIRTIO_BLK_T_FLUSH 4

struct blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

static volatile uint64_t timer_ticks;
static volatile uint64_t ram_count;    /* RAM copy of the report number */

static struct virtio_dev blk;
static struct virtq vq;
static struct blk_req_hdr hdr;
static volatile uint8_t blk_status;
static volatile uint64_t sector_buf[SECTOR_WORDS];
static uint64_t disk_buf[BLK_SECTORS * SECTOR_WORDS] __attribute__((section(".stack.counter"), aligned(16)));
static int inflight = -1;              /* head of the read in flight, or -1 */

static uint64_t word_value(int64_t j, uint64_t p)
{
	return (uint32_t)((uint64_t)(j + 16) * 2654435761u + p * 40503u);
}

static uint64_t disk_value(uint64_t s, uint64_t w)
{
	return (uint32_t)((s * SECTOR_WORDS + w) * 2246822519u + 374761393u);
}

static void on_timer(struct irq_frame *f)
{
	(void)f;
	timer_ticks++;
	lapic_eoi();
}

static volatile uint64_t *page_words(uint64_t p)
{
	return (volatile uint64_t *)(uintptr_t)(REGION_BASE + p * PAGE_WORDS * 8);
}

static void region_init(uint64_t pages)
{
	for (uint64_t p = 0; p < pages; p++)
		for (int64_t j = 1 - RING_WORDS; j <= 0; j++)
			page_words(p)[(j + RING_WORDS) % RING_WORDS] = word_value(j, p);
}

static uint64_t region_step(uint64_t k, uint64_t pages)
{
	unsigned now = k % RING_WORDS, prev = (k + RING_WORDS - 1) % RING_WORDS;
	unsigned old = (k + 1) % RING_WORDS;
	uint64_t sum = 0;

	for (uint64_t p = 0; p < pages; p++) {
		volatile uint64_t *w = page_words(p);

		w[now] = word_value((int64_t)k, p);
		sum += w[now] + w[prev] + w[old];
	}
	return sum;
}

/* Find the disk, write the D(s, w) pattern to sectors 0..63. 0 or -1. */
static int blk_setup(void)
{
	struct virtq_buf out[2] = { { &hdr, sizeof(hdr) }, { disk_buf, sizeof(disk_buf) } };
	struct virtq_buf in[1] = { { (void *)&blk_status, 1 } };

	if (virtio_find(VIRTIO_ID_BLK, 0, &blk) ||
	    virtio_start(&blk, VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_RO)) ||
	    virtq_setup(&blk, &vq, 0))
		return -1;
	virtio_driver_ok(&blk);
	if (blk.features & VIRTIO_BIT(VIRTIO_BLK_F_RO)) {
		printf("counter: FAIL: the disk is read-only\n");
		return -1;
	}
	if (virtio_cfg_read64(&blk, 0) < BLK_SECTORS) {
		printf("counter: FAIL: the disk has fewer than %u sectors\n", BLK_SECTORS);
		return -1;
	}
	for (uint64_t s = 0; s < BLK_SECTORS; s++)
		for (uint64_t w = 0; w < SECTOR_WORDS; w++)
			disk_buf[s * SECTOR_WORDS + w] = disk_value(s, w);
	hdr = (struct blk_req_hdr){ .type = VIRTIO_BLK_T_OUT, .sector = 0 };
	blk_status = 0xff;
	if (virtq_transfer(&vq, out, 2, in, 1) < 0 || blk_status != 0) {
		printf("counter: FAIL: writing the disk pattern: status %u\n", blk_status);
		return -1;
	}
	if (blk.features & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH)) {
		hdr = (struct blk_req_hdr){ .type = VIRTIO_BLK_T_FLUSH };
		blk_status = 0xff;
		if (virtq_transfer(&vq, out, 1, in, 1) < 0 || blk_status != 0) {
			printf("counter: FAIL: flush: status %u\n", blk_status);
			return -1;
		}
	}
	return 0;
}

static void blk_submit_read(uint64_t sector)
{
	struct virtq_buf out[1] = { { &hdr, sizeof(hdr) } };
	struct virtq_buf in[2] = { { (void *)sector_buf, sizeof(sector_buf) },
				   { (void *)&blk_status, 1 } };

	for (unsigned w = 0; w < SECTOR_WORDS; w++)
		sector_buf[w] = 0;
	hdr = (struct blk_req_hdr){ .type = VIRTIO_BLK_T_IN, .sector = sector };
	blk_status = 0xff;
	inflight = virtq_submit(&vq, out, 1, in, 2);
	virtq_kick(&vq);
}

/* Completes the read in flight: the sum of its words, or -1 (reported). */
static int64_t blk_collect(void)
{
	uint32_t len;
	uint64_t sum = 0;
	int head;

	if (inflight < 0) {
		printf("counter: FAIL: no read in flight (queue full?)\n");
		return -1;
	}
	head = virtq_wait(&vq, &len, VIRTIO_WAIT_CYCLES);
	if (head != inflight || blk_status != 0) {
		printf("counter: FAIL: read of sector %lu: head %d (expected %d) status %u\n",
		       (unsigned long)hdr.sector, head, inflight, blk_status);
		return -1;
	}
	inflight = -1;
	for (unsigned w = 0; w < SECTOR_WORDS; w++)
		sum += sector_buf[w];
	return (int64_t)sum;
}

/* Sleeps until `target` timer ticks. The report number rides in r12 (and its
 * complement in r13) across every HLT, where a snapshot almost always finds
 * the vCPU; what comes back must still match. */
static uint64_t wait_ticks(uint64_t target, uint64_t k, int *regs_ok)
{
	register uint64_t r12 __asm__("r12") = k;
	register uint64_t r13 __asm__("r13") = ~k;

	while (timer_ticks < target)
		__asm__ volatile("sti; hlt; cli" : "+r"(r12), "+r"(r13) : : "memory");
	*regs_ok = r12 == k && r13 == ~k;
	return r12;
}

int guest_main(struct hvm_start_info *si)
{
	uint64_t ticks = cmdline_get_u64("ticks", 0);
	uint64_t every = cmdline_get_u64("every", 10);
	uint64_t hz = cmdline_get_u64("hz", 100);
	uint64_t mib = cmdline_get_u64("mib", 4);
	uint64_t use_blk = cmdline_get_u64("blk", 0), use_pit = cmdline_get_u64("pit", 0);
	uint64_t pages = mib * 256, k = 0;

	if (every < 1 || every > 1000 || hz < 20 || hz > 1000 || mib < 1 || mib > 64) {
		printf("counter: FAIL: every=1..1000 hz=20..1000 mib=1..64 (got %lu %lu %lu)\n",
		       (unsigned long)every, (unsigned long)hz, (unsigned long)mib);
		return 1;
	}
	if (pvh_ram_covers(si, REGION_BASE, mib << 20) == 0) {
		printf("counter: FAIL: no RAM at 0x%lx..+%lu MiB (give the VM more memory)\n",
		       (unsigned long)REGION_BASE, (unsigned long)mib);
		return 1;
	}
	clock_init();
	region_init(pages);
	if (use_blk && blk_setup())
		return 1;

	pic_disable();
	lapic_enable();
	idt_set_handler(VEC_TIMER, on_timer, 0);
	if (use_pit) {
		ioapic_route(PIT_GSI, VEC_TIMER, lapic_id());
		pit_periodic((uint16_t)(PIT_HZ / hz));
	} else {
		lapic_timer_periodic(VEC_TIMER, LAPIC_HZ_BASE / (uint32_t)hz);
	}
	printf("counter: start pages=%lu blk=%u hz=%lu every=%lu timer=%s clock=%s\n",
	       (unsigned long)pages, use_blk ? 1 : 0, (unsigned long)hz, (unsigned long)every,
	       use_pit ? "pit" : "lapic", clock_name());

	for (;;) {
		uint64_t sum, t;
		int regs_ok;
		uint64_t reg = wait_ticks((k + 1) * every, k, &regs_ok);

		t = clock_ns();
		if (!regs_ok || ram_count != k) {
			printf("counter: FAIL: report %lu: register copy %lu (ok %d), RAM copy %lu\n",
			       (unsigned long)k, (unsigned long)reg, regs_ok, (unsigned long)ram_count);
			return 1;
		}
		k++;
		ram_count = k;
		sum = region_step(k, pages);
		if (use_blk) {
			if (k >= 2) {
				int64_t b = blk_collect();

				if (b < 0)
					return 1;
				sum += (uint64_t)b;
			}
			if (!ticks || k < ticks)
				blk_submit_read(k % BLK_SECTORS);
		}
		printf("tick=%lu sum=%lu t=%lu\n", (unsigned long)k, (unsigned long)sum,
		       (unsigned long)t);
		if (ticks && k >= ticks)
			break;
	}
	if (use_pit) {
		pit_stop();
		ioapic_mask(PIT_GSI);
	} else {
		lapic_timer_stop();
	}
	serial_puts("counter done\n");
	return 0;
}
