/* Test guest: dirties guest memory as fast as it can (or at rate= MiB/s), to
 * make live migration's pre-copy fall behind and its auto-converge throttle
 * kick in; idle=1 is the quiet counterpart (a timer and HLT, nothing dirtied).
 *
 * cmdline: mib=M region at 16 MiB (default 64, 1..3056: it ends below the
 * 3 GiB MMIO hole), rate=R MiB/s (0 = unlimited, the default), secs=S stop
 * after S seconds (0 = never), every_ms=E progress interval (default 1000),
 * idle=1.
 *
 * Output (COM1):
 *   dirtier: start mib=M rate=R idle=I clock=C
 *   dirtier: pass=N dirtied_mib=X mibps=Y t=NS     (every E ms)
 *   dirtier: idle ticks=N t=NS                      (idle=1, every E ms)
 *   dirtier done passes=N                           (after secs=S; exit 0)
 * The busy loop runs in ring 3 (see user.h: native on every target) and
 * writes one word per 4 KiB page: pass N stores (N << 32 | page), after
 * checking the page still holds pass N - 1's value, so a page that migration
 * lost or delivered stale prints "dirtier: FAIL" and exits 1. */
#include <stdint.h>

#include "clock.h"
#include "idt.h"
#include "io.h"
#include "lapic.h"
#include "pit.h"
#include "pvh.h"
#include "serial.h"
#include "user.h"

#define REGION_BASE 0x1000000ull       /* 16 MiB: above the image and its stacks */
#define PAGE_WORDS  512
#define PAGES_PER_MIB 256
#define VEC_TIMER   0x30
#define LAPIC_10HZ  6250000u           /* 1 GHz APIC bus / 16 / 10 */
#define NS_PER_S    1000000000ull

struct dirtier {
	uint64_t pages, rate, secs, every_ns;
	uint64_t passes;
};

static struct dirtier cfg;
static volatile uint64_t timer_ticks;
static char user_stack[16384] __attribute__((section(".stack.dirtier"), aligned(16)));

static void on_timer(struct irq_frame *f)
{
	(void)f;
	timer_ticks++;
	lapic_eoi();
}

/* Ring 3. 0 when secs= ran out, 1 on a page that lost its last value. */
static uint64_t dirty_loop(uint64_t arg)
{
	struct dirtier *d = (struct dirtier *)(uintptr_t)arg;
	volatile uint64_t *region = (volatile uint64_t *)(uintptr_t)REGION_BASE;
	uint64_t t0 = clock_ns(), last_t = t0, written = 0, last_written = 0;

	for (uint64_t pass = 0;; pass++) {
		d->passes = pass;
		for (uint64_t p = 0; p < d->pages; p++) {
			volatile uint64_t *w = region + p * PAGE_WORDS;
			uint64_t now;

			if (pass > 0 && *w != ((pass - 1) << 32 | p)) {
				printf("dirtier: FAIL: page %lu holds 0x%lx in pass %lu, expected 0x%lx\n",
				       (unsigned long)p, (unsigned long)*w, (unsigned long)pass,
				       (unsigned long)((pass - 1) << 32 | p));
				return 1;
			}
			*w = pass << 32 | p;
			written++;
			if ((written % PAGES_PER_MIB) && p + 1 < d->pages)
				continue;
			/* Once per MiB: the rate limit, progress and the deadline. */
			now = clock_ns();
			while (d->rate && written * NS_PER_S / 1000 >
			       (now - t0) / 1000 * d->rate * PAGES_PER_MIB) {
				cpu_relax();
				now = clock_ns();
			}
			if (now - last_t >= d->every_ns) {
				printf("dirtier: pass=%lu dirtied_mib=%lu mibps=%lu t=%lu\n",
				       (unsigned long)pass, (unsigned long)(written / PAGES_PER_MIB),
				       (unsigned long)((written - last_written) * NS_PER_S /
						       PAGES_PER_MIB / (now - last_t)),
				       (unsigned long)now);
				last_t = now;
				last_written = written;
			}
			if (d->secs && now - t0 >= d->secs * NS_PER_S) {
				d->passes = pass + 1;
				return 0;
			}
		}
	}
}

static int idle_loop(const struct dirtier *d)
{
	uint64_t t0 = clock_ns(), last_t = t0;

	pic_disable();
	lapic_enable();
	idt_set_handler(VEC_TIMER, on_timer, 0);
	lapic_timer_periodic(VEC_TIMER, LAPIC_10HZ);
	for (;;) {
		uint64_t seen = timer_ticks, now;

		while (timer_ticks == seen) {
			irq_enable_and_halt();
			irq_disable();
		}
		now = clock_ns();
		if (now - last_t >= d->every_ns) {
			printf("dirtier: idle ticks=%lu t=%lu\n", (unsigned long)timer_ticks,
			       (unsigned long)now);
			last_t = now;
		}
		if (d->secs && now - t0 >= d->secs * NS_PER_S)
			break;
	}
	lapic_timer_stop();
	return 0;
}

int guest_main(struct hvm_start_info *si)
{
	uint64_t mib = cmdline_get_u64("mib", 64), idle = cmdline_get_u64("idle", 0);

	cfg.rate = cmdline_get_u64("rate", 0);
	cfg.secs = cmdline_get_u64("secs", 0);
	cfg.every_ns = cmdline_get_u64("every_ms", 1000) * 1000000ull;
	cfg.pages = mib * PAGES_PER_MIB;
	if (mib < 1 || mib > 3056 || cfg.rate > 1000000 || !cfg.every_ns) {
		printf("dirtier: FAIL: mib=1..3056 rate=0..1000000 every_ms>0\n");
		return 1;
	}
	if (!idle && pvh_ram_covers(si, REGION_BASE, mib << 20) == 0) {
		printf("dirtier: FAIL: no RAM at 0x%lx..+%lu MiB (give the VM more memory)\n",
		       (unsigned long)REGION_BASE, (unsigned long)mib);
		return 1;
	}
	clock_init();
	printf("dirtier: start mib=%lu rate=%lu idle=%u clock=%s\n", (unsigned long)mib,
	       (unsigned long)cfg.rate, idle ? 1 : 0, clock_name());
	if (idle) {
		idle_loop(&cfg);
		serial_puts("dirtier done passes=0\n");
		return 0;
	}
	if (run_user(dirty_loop, (uint64_t)(uintptr_t)&cfg, user_stack + sizeof(user_stack)))
		return 1;
	printf("dirtier done passes=%lu\n", (unsigned long)cfg.passes);
	return 0;
}
