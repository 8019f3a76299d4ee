/* Test guest (hostile): PCI abuse against a virtio-rng (the victim) with a
 * virtio-blk beside it (PCI 3.0 6.2.5 BARs, 6.8.2 MSI-X, 3.2.2.3.2
 * configuration mechanism #1; PCIe ECAM). The victim's BAR is moved over
 * guest RAM, over the guest's own image, over the other device's BAR, over
 * the ECAM window, the IOAPIC, the LAPIC and firmware below 4 GiB, sized with
 * decoding on, given garbage in its high dword, and finally moved to a free
 * place where the device must work, then back. MSI-X entries get garbage
 * addresses and data (and fire), the table is written past its end, with odd
 * widths and unaligned, the PBA is written. Configuration space is read and
 * written out of range: through 0xCF8 with the extended-register bits, a bus
 * that does not exist, the enable bit clear, missing functions and slots,
 * accesses that straddle CONFIG_DATA; through ECAM (when the ACPI MCFG table
 * names it) at offsets >= 256 and >= 4096, unaligned and 8 bytes wide.
 *
 * Whenever a BAR is somewhere it must not be used, the guest does not touch
 * it. After every trick the BAR is back and the victim (and, after the
 * overlap, the other device) must serve a request. What the VMM logs about
 * the refused placements is for the host side to check.
 *
 * cmdline: pace_ms=, watch_ms= (lib/hostile.h); ecam=ADDR when there is no
 * MCFG table to say where ECAM is (default: the table's, else none).
 * Output: "hostile-pci: <dev> #<n> <trick>" and "hostile-pci: <trick>: ..."
 * lines, then "hostile-pci ok <n> tricks, device still works" (exit 0). A
 * "FAIL" line is followed by exit 1. */
#include <stddef.h>
#include <stdint.h>

#include "exit.h"
#include "hostile.h"
#include "io.h"
#include "pci.h"
#include "pvh.h"
#include "serial.h"
#include "string.h"
#include "virtio.h"

#define GUEST "hostile-pci"

#define IOAPIC_BASE 0xfec00000ull
#define LAPIC_BASE  0xfee00000ull
#define RAM_TARGET  0x01000000ull      /* 16 MiB: RAM in any guest this runs in */
#define KERNEL_BASE 0x00100000ull      /* where this guest's image starts */
#define FREE_TARGET HOSTILE_HOLE_ADDR  /* free in the PCI window of wafer and QEMU */

#define PCI_MSIX_CTRL_ENABLE 0x8000
#define PCI_MSIX_CTRL_MASK   0x4000
#define PCI_MSIX_CTRL_SIZE   0x07ff
#define MSIX_ENTRY_CTRL_MASKBIT 1

struct bar {
	unsigned index;
	int is64;
	uint64_t base, size;
	uint32_t lo, hi;               /* the registers as found */
};

static struct virtio_dev rng, blk;
static struct virtq rq, bq;
static struct bar rbar, bbar;
static uint8_t rbuf[16];
static uint8_t bbuf[512], bstatus;
static struct { uint32_t type, reserved; uint64_t sector; } bhdr;
static volatile uint32_t msi_sink[4] __attribute__((aligned(16)));
static uint64_t ecam;

__attribute__((noreturn)) static void fail(const char *what)
{
	printf(GUEST ": FAIL: %s\n", what);
	guest_exit(1);
}

static void check(int ok, const char *what)
{
	if (!ok)
		fail(what);
}

/* --- the devices as a driver uses them ------------------------------------ */

static int rng_works(void)
{
	struct virtq_buf in = { rbuf, sizeof(rbuf) };
	uint8_t any = 0;
	int n;

	if (virtio_start(&rng, 0) || virtq_setup(&rng, &rq, 0))
		return 0;
	virtio_driver_ok(&rng);
	memset(rbuf, 0, sizeof(rbuf));
	n = virtq_transfer(&rq, NULL, 0, &in, 1);
	for (int i = 0; i < n && i < (int)sizeof(rbuf); i++)
		any |= rbuf[i];
	return n > 0 && any;
}

static int blk_works(void)
{
	struct virtq_buf out = { &bhdr, sizeof(bhdr) };
	struct virtq_buf in[2] = { { bbuf, sizeof(bbuf) }, { &bstatus, 1 } };

	if (virtio_start(&blk, 0) || virtq_setup(&blk, &bq, 0))
		return 0;
	virtio_driver_ok(&blk);
	bhdr.type = 0;          /* read sector 0 */
	bhdr.sector = 0;
	bstatus = 0xff;
	return virtq_transfer(&bq, &out, 1, in, 2) >= 0 && bstatus == 0;
}

static void victim_works(const char *after)
{
	if (!rng_works()) {
		printf(GUEST ": FAIL: rng does not work after %s\n", after);
		guest_exit(1);
	}
}

/* --- BARs ------------------------------------------------------------------ */

/* The memory BAR that holds vd's common configuration. */
static void bar_find(const struct virtio_dev *vd, struct bar *b)
{
	const struct pci_dev *d = &vd->pci;

	for (unsigned i = 0; i < 6; i++) {
		uint8_t off = (uint8_t)(PCI_BAR0 + 4 * i);
		uint32_t lo = pci_read32(d, off);
		uint64_t base, size;

		if (lo & 1)
			continue;
		if (pci_bar_map(d, i, &base, &size) == 0 && vd->common >= base &&
		    vd->common < base + size) {
			b->index = i;
			b->is64 = ((lo >> 1) & 3) == 2;
			b->base = base;
			b->size = size;
			b->lo = pci_read32(d, off);
			b->hi = b->is64 ? pci_read32(d, off + 4) : 0;
			return;
		}
		if (((lo >> 1) & 3) == 2)
			i++;
	}
	fail("no memory BAR holds the common configuration");
}

/* Writes the BAR registers as a guest that moves a BAR does: decoding stays
 * on, low dword first. */
static void bar_write(const struct pci_dev *d, const struct bar *b, uint64_t addr)
{
	uint8_t off = (uint8_t)(PCI_BAR0 + 4 * b->index);

	pci_write32(d, off, (uint32_t)addr | (b->lo & 0xf));
	if (b->is64)
		pci_write32(d, off + 4, (uint32_t)(addr >> 32));
}

static void bar_restore(const struct pci_dev *d, const struct bar *b)
{
	uint8_t off = (uint8_t)(PCI_BAR0 + 4 * b->index);

	pci_write32(d, off, b->lo);
	if (b->is64)
		pci_write32(d, off + 4, b->hi);
}

/* Move the victim's BAR to addr, leave it there (untouched) for a moment,
 * put it back; the victim must work again. */
static void bar_trick(const char *name, uint64_t addr)
{
	const struct pci_dev *d = &rng.pci;
	uint8_t off = (uint8_t)(PCI_BAR0 + 4 * rbar.index);

	addr &= ~(rbar.size - 1);
	bar_write(d, &rbar, addr);
	printf(GUEST ": %s: BAR%u written 0x%lx, reads 0x%08x\n", name, rbar.index,
	       (unsigned long)addr, pci_read32(d, off));
	hostile_delay_ms(1);
	bar_restore(d, &rbar);
	check(pci_read32(d, off) == rbar.lo, "BAR does not read back its original value");
	victim_works(name);
	printf(GUEST ": %s: moved back, rng works\n", name);
}

static void bar_over_ram(void)
{
	bar_trick("bar-over-ram", RAM_TARGET);
}

static void bar_over_own_image(void)
{
	bar_trick("bar-over-own-image", KERNEL_BASE);
}

static void bar_at_zero(void)
{
	bar_trick("bar-at-zero", 0);
}

static void bar_over_other_device(void)
{
	bar_trick("bar-over-other-device", bbar.base);
	if (!blk_works())
		fail("blk does not work after rng's BAR was moved over it and back");
}

static void bar_over_ecam(void)
{
	bar_trick("bar-over-ecam", ecam ? ecam : 0xe0000000ull);
}

static void bar_over_ioapic(void)
{
	bar_trick("bar-over-ioapic", IOAPIC_BASE);
}

static void bar_over_lapic(void)
{
	bar_trick("bar-over-lapic", LAPIC_BASE);
}

/* Just under 4 GiB (firmware ROM), one BAR-size below the very top: the
 * very top is what the sizing pattern looks like, done below. */
static void bar_near_top_of_4g(void)
{
	bar_trick("bar-near-top-of-4g", 0x100000000ull - 2 * rbar.size);
}

/* Garbage in the dword above the BAR: its high half when 64-bit, else the
 * next BAR register (absent on both VMMs we know). */
static void bar_high_dword_garbage(void)
{
	const struct pci_dev *d = &rng.pci;
	uint8_t off = (uint8_t)(PCI_BAR0 + 4 * rbar.index);

	if (rbar.index < 5) {
		uint32_t old = pci_read32(d, off + 4);

		pci_write32(d, off + 4, 0xdeadbeef);
		printf(GUEST ": bar-high-dword-garbage: reads 0x%08x\n", pci_read32(d, off + 4));
		pci_write32(d, off + 4, old);
	}
	bar_restore(d, &rbar);
	victim_works("bar-high-dword-garbage");
}

/* The sizing protocol without turning decoding off first. */
static void bar_sizing_with_decode_on(void)
{
	const struct pci_dev *d = &rng.pci;
	uint8_t off = (uint8_t)(PCI_BAR0 + 4 * rbar.index);

	pci_write32(d, off, 0xffffffffu);
	printf(GUEST ": bar-sizing-with-decode-on: mask 0x%08x\n", pci_read32(d, off));
	bar_restore(d, &rbar);
	victim_works("bar-sizing-with-decode-on");
}

static void command_all_ones(void)
{
	const struct pci_dev *d = &rng.pci;
	uint16_t cmd = pci_read16(d, PCI_COMMAND);

	pci_write16(d, PCI_COMMAND, 0xffff);
	printf(GUEST ": command-all-ones: reads 0x%04x\n", pci_read16(d, PCI_COMMAND));
	pci_write16(d, PCI_COMMAND, cmd);
	victim_works("command-all-ones");
}

/* A legal move to a free address: the device must work there (its
 * notifications follow it), then back home. */
static void bar_moved_and_used(void)
{
	const struct pci_dev *d = &rng.pci;
	uint64_t to = FREE_TARGET & ~(rbar.size - 1);

	bar_write(d, &rbar, to);
	if (virtio_find(VIRTIO_ID_RNG, 0, &rng))
		fail("rng lost after a legal BAR move");
	check(rng.common >= to && rng.common < to + rbar.size,
	      "rng's registers are not where its BAR was moved");
	victim_works("a legal BAR move");
	bar_restore(d, &rbar);
	if (virtio_find(VIRTIO_ID_RNG, 0, &rng))
		fail("rng lost after moving its BAR home");
	victim_works("moving the BAR home");
	printf(GUEST ": bar-moved-and-used: rng worked at 0x%lx and at home\n", (unsigned long)to);
}

/* --- MSI-X ---------------------------------------------------------------- */

struct msix {
	uint8_t cap;
	unsigned n;
	uintptr_t table, pba;
	uint64_t bar_base, bar_size;
	uint32_t table_off, pba_off;
	unsigned table_bir, pba_bir;
};

static struct msix mx;

/* Whether [a, a + len) lies inside mx.table's BAR clear of every structure
 * the device defines there (virtio regions, table, PBA). */
static int msix_free(uintptr_t a, uint64_t len)
{
	struct { uintptr_t at; uint64_t len; } used[] = {
		{ rng.common, 0x38 }, { rng.isr, 1 }, { rng.notify, rng.notify_len },
		{ rng.device_cfg, rng.device_cfg_len }, { mx.table, 16ull * mx.n },
		{ mx.pba, (mx.n + 63) / 64 * 8 },
	};

	if (a < mx.bar_base || a + len > mx.bar_base + mx.bar_size)
		return 0;
	for (unsigned i = 0; i < sizeof(used) / sizeof(used[0]); i++)
		if (used[i].at && a < used[i].at + used[i].len && used[i].at < a + len)
			return 0;
	return 1;
}

static void msix_find(void)
{
	const struct pci_dev *d = &rng.pci;
	uint64_t base, size;
	uint32_t t, p;

	mx.cap = pci_cap_find(d, PCI_CAP_ID_MSIX, 0);
	if (!mx.cap)
		fail("rng has no MSI-X capability");
	mx.n = (pci_read16(d, mx.cap + 2) & PCI_MSIX_CTRL_SIZE) + 1u;
	t = pci_read32(d, mx.cap + 4);
	p = pci_read32(d, mx.cap + 8);
	mx.table_bir = t & 7;
	mx.pba_bir = p & 7;
	mx.table_off = t & ~7u;
	mx.pba_off = p & ~7u;
	if (mx.table_bir != mx.pba_bir || pci_bar_map(d, mx.table_bir, &base, &size))
		fail("MSI-X table and PBA not in one usable memory BAR");
	mx.bar_base = base;
	mx.bar_size = size;
	mx.table = (uintptr_t)(base + mx.table_off);
	mx.pba = (uintptr_t)(base + mx.pba_off);
	printf(GUEST ": rng MSI-X: %u vectors, table 0x%lx, PBA 0x%lx (BAR%u)\n", mx.n,
	       (unsigned long)mx.table, (unsigned long)mx.pba, mx.table_bir);
}

static void entry_set(unsigned v, uint64_t addr, uint32_t data, uint32_t ctrl)
{
	uintptr_t e = mx.table + 16u * v;

	mmio_write32(e + 12, MSIX_ENTRY_CTRL_MASKBIT);   /* masked while it changes */
	mmio_write32(e, (uint32_t)addr);
	mmio_write32(e + 4, (uint32_t)(addr >> 32));
	mmio_write32(e + 8, data);
	mmio_write32(e + 12, ctrl);
}

static void msix_ctrl(uint16_t v)
{
	pci_write16(&rng.pci, mx.cap + 2, v);
}

/* One rng request with queue 0 on MSI-X vector 0 (MSI-X on, entry 0 as
 * the caller left it); completion by polling. */
static int rng_request_on_vector0(void)
{
	struct virtq_buf in = { rbuf, sizeof(rbuf) };

	if (virtio_start(&rng, 0) || virtq_setup(&rng, &rq, 0))
		return -1;
	hostile_cc_write16(&rng, HCC_Q_SELECT, 0);
	hostile_cc_write16(&rng, HCC_Q_MSIX, 0);
	rq.avail.flags = 0;     /* the library turns interrupts off; we want them */
	virtio_driver_ok(&rng);
	return virtq_transfer(&rq, NULL, 0, &in, 1) > 0 ? 0 : -1;
}

static uint16_t msix_ctrl0;

/* Every data word keeps delivery mode 000 (fixed) and the trigger bits
 * clear: the point is the VMM's handling of the table, not sending this CPU
 * an INIT or an SMI. */
static void msix_garbage_entries(void)
{
	for (unsigned i = 0; i < mx.n; i++)
		entry_set(i, 0xfffffffffffffffcull - i, 0xdead00ef, MSIX_ENTRY_CTRL_MASKBIT);
	printf(GUEST ": msix-garbage-entries: entry 0 reads %08x %08x %08x %08x\n",
	       mmio_read32(mx.table), mmio_read32(mx.table + 4), mmio_read32(mx.table + 8),
	       mmio_read32(mx.table + 12));
	victim_works("garbage MSI-X entries");
}

static void msix_write_past_table(void)
{
	unsigned past = 0;

	for (uintptr_t a = mx.table + 16u * mx.n; a < mx.table + 16u * mx.n + 0x100; a += 4) {
		if (!msix_free(a, 4))
			break;
		mmio_write32(a, 0xffffffffu);
		past++;
	}
	printf(GUEST ": msix-write-past-table: %u dwords written after the table\n", past);
	victim_works("writes past the MSI-X table");
}

static void msix_odd_accesses(void)
{
	mmio_write8(mx.table + 8, 0x5a);                       /* data, byte */
	mmio_write16(mx.table + 10, 0xa5a5);                   /* data, upper word */
	mmio_write32(mx.table + 2, 0x12345678);                /* unaligned */
	*(volatile uint64_t *)mx.table = 0xfffffff0fffffff0ull; /* address, 8 bytes */
	*(volatile uint64_t *)(mx.table + 8) = (uint64_t)MSIX_ENTRY_CTRL_MASKBIT << 32;
	printf(GUEST ": msix-odd-accesses: entry 0 reads %08x %08x %08x %08x, byte at +1 %02x\n",
	       mmio_read32(mx.table), mmio_read32(mx.table + 4), mmio_read32(mx.table + 8),
	       mmio_read32(mx.table + 12), mmio_read8(mx.table + 1));
	victim_works("odd-width MSI-X table accesses");
}

static void msix_pba_writes(void)
{
	uintptr_t end = mx.pba + (mx.n + 63) / 64 * 8;

	for (uintptr_t a = mx.pba; a < end; a += 4)
		mmio_write32(a, 0xffffffffu);
	if (msix_free(end, 4))
		mmio_write32(end, 0xffffffffu);
	printf(GUEST ": msix-pba-writes: PBA reads 0x%08x\n", mmio_read32(mx.pba));
	victim_works("PBA writes");
}

static void msix_control_all_ones(void)
{
	uint16_t v;

	msix_ctrl(0xffff);
	v = pci_read16(&rng.pci, mx.cap + 2);
	printf(GUEST ": msix-control-all-ones: reads 0x%04x\n", v);
	check((v & PCI_MSIX_CTRL_SIZE) == (msix_ctrl0 & PCI_MSIX_CTRL_SIZE),
	      "MSI-X table size changed by a write");
	msix_ctrl(msix_ctrl0);
	victim_works("an all-ones MSI-X control write");
}

/* Vectors the device does not have read back as NO_VECTOR (4.1.4.3). */
static void msix_bad_vectors(void)
{
	if (virtio_start(&rng, 0) || virtq_setup(&rng, &rq, 0))
		fail("rng does not start");
	msix_ctrl(msix_ctrl0 | PCI_MSIX_CTRL_ENABLE);
	hostile_cc_write16(&rng, HCC_MSIX, 0x7ff);
	hostile_cc_write16(&rng, HCC_Q_SELECT, 0);
	hostile_cc_write16(&rng, HCC_Q_MSIX, (uint16_t)(mx.n + 5));
	printf(GUEST ": msix-bad-vectors: config vector reads 0x%04x, queue vector 0x%04x\n",
	       hostile_cc_read16(&rng, HCC_MSIX), hostile_cc_read16(&rng, HCC_Q_MSIX));
	check(hostile_cc_read16(&rng, HCC_MSIX) == VIRTIO_NO_VECTOR &&
	      hostile_cc_read16(&rng, HCC_Q_MSIX) == VIRTIO_NO_VECTOR,
	      "a vector beyond the table did not read back as NO_VECTOR");
	msix_ctrl(msix_ctrl0);
	victim_works("out-of-range vectors");
}

/* Messages with garbage addresses actually sent: the request must still
 * complete (we poll), whatever the message does. */
static void msix_fire_garbage(void)
{
	msix_ctrl(msix_ctrl0 | PCI_MSIX_CTRL_ENABLE);
	msi_sink[0] = 0;
	entry_set(0, (uintptr_t)msi_sink, 0xdead00ef, 0);
	check(rng_request_on_vector0() == 0, "request with vector 0 -> RAM address");
	entry_set(0, 0xfffffffffffffffcull, 0, 0);
	check(rng_request_on_vector0() == 0, "request with vector 0 -> top of the address space");
	entry_set(0, LAPIC_BASE, 0x00000000, 0);    /* vector 0: never valid */
	check(rng_request_on_vector0() == 0, "request with vector 0 -> illegal vector 0");
	/* Masked: the event must wait in the PBA instead. */
	entry_set(0, LAPIC_BASE, 0x00000000, MSIX_ENTRY_CTRL_MASKBIT);
	check(rng_request_on_vector0() == 0, "request with vector 0 masked");
	printf(GUEST ": msix-fire-garbage: RAM target got 0x%08x, PBA 0x%08x\n", msi_sink[0],
	       mmio_read32(mx.pba));
	msix_ctrl(msix_ctrl0 | PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_MASK);
	msix_ctrl(msix_ctrl0);
	for (unsigned i = 0; i < mx.n; i++)
		entry_set(i, 0, 0, MSIX_ENTRY_CTRL_MASKBIT);
	victim_works("garbage MSI-X messages");
}

/* --- configuration space ---------------------------------------------------- */

static uint32_t cf8_read32(uint32_t addr)
{
	outl(PCI_CFG_ADDR, addr);
	return inl(PCI_CFG_DATA);
}

static uint32_t cf8_of(const struct pci_dev *d, uint8_t reg)
{
	return 0x80000000u | (uint32_t)d->bus << 16 | (uint32_t)d->dev << 11 |
	       (uint32_t)d->fn << 8 | (reg & 0xfc);
}

static void cfg_missing_bus(void)
{
	uint32_t v = cf8_read32(0x80ff0000u | (uint32_t)rng.pci.dev << 11);

	outl(PCI_CFG_DATA, 0);
	printf(GUEST ": cfg-missing-bus: bus 0xff reads 0x%08x\n", v);
	check(v == 0xffffffffu, "a missing bus does not read all-ones");
}

static void cfg_enable_bit_clear(void)
{
	uint32_t v = cf8_read32(cf8_of(&rng.pci, 0) & ~0x80000000u);

	outl(PCI_CFG_DATA, 0);
	printf(GUEST ": cfg-enable-bit-clear: reads 0x%08x\n", v);
	check(v == 0xffffffffu, "CONFIG_DATA without the enable bit does not read all-ones");
}

static void cfg_missing_function(void)
{
	uint32_t v = cf8_read32(cf8_of(&rng.pci, 0) | 7u << 8);

	outl(PCI_CFG_DATA, 0);
	check(v == 0xffffffffu, "function 7 of a single-function device does not read all-ones");
}

static void cfg_missing_slot(void)
{
	uint32_t v;
	unsigned empty = 0;

	for (unsigned s = 31; s > 0 && !empty; s--)
		if (cf8_read32(0x80000000u | s << 11) == 0xffffffffu)
			empty = s;
	if (!empty)
		return;
	outl(PCI_CFG_DATA, 0x12345678);
	v = cf8_read32(0x80000000u | empty << 11 | 0x04);
	printf(GUEST ": cfg-missing-slot: slot %u register 4 reads 0x%08x\n", empty, v);
	check(v == 0xffffffffu, "an empty slot does not read all-ones");
}

/* AMD's extended-register bits 27:24 (registers >= 256 through 0xCF8): a
 * VMM without them must not index past 256 bytes. The write lands on the
 * vendor/device ID alias, which is read-only anyway. */
static void cfg_extended_register_bits(void)
{
	const struct pci_dev *d = &rng.pci;
	uint32_t id = pci_read32(d, PCI_VENDOR_ID);
	uint32_t v = cf8_read32(cf8_of(d, 0xfc) | 0x0f000000u);

	outl(PCI_CFG_ADDR, cf8_of(d, 0) | 0x0f000000u);
	outl(PCI_CFG_DATA, 0xffffffffu);
	printf(GUEST ": cfg-extended-register-bits: register 0xffc reads 0x%08x\n", v);
	check(pci_read32(d, PCI_VENDOR_ID) == id, "vendor/device ID changed");
}

/* Widths and offsets that straddle CONFIG_DATA's dword; the writes cover
 * read-only bytes (0x3d..0x40) on VMMs that take them at all. */
static void cfg_straddling_data_port(void)
{
	const struct pci_dev *d = &rng.pci;
	uint32_t id = pci_read32(d, PCI_VENDOR_ID), v, w;
	uint8_t line = pci_read8(d, 0x3c);

	outl(PCI_CFG_ADDR, cf8_of(d, 0));
	v = inl(PCI_CFG_DATA + 1);
	w = inw(PCI_CFG_DATA + 3);
	printf(GUEST ": cfg-straddling-data-port: inl 0xcfd 0x%08x, inw 0xcff 0x%04x, inb 0xcfe 0x%02x\n",
	       v, w, inb(PCI_CFG_DATA + 2));
	outl(PCI_CFG_ADDR, cf8_of(d, 0x3c));
	outl(PCI_CFG_DATA + 1, 0xffffffffu);
	outw(PCI_CFG_DATA + 3, 0xffff);
	check(pci_read8(d, 0x3c) == line, "interrupt line changed by a straddling write");
	check(pci_read32(d, PCI_VENDOR_ID) == id, "vendor/device ID changed");
}

/* Byte and word writes to CONFIG_ADDRESS (0xCF9 is a reset control register
 * on PIIX chipsets: the value keeps its reset bit, bit 2, clear). */
static void cfg_address_port_odd_widths(void)
{
	uint32_t a = cf8_of(&rng.pci, 0x08), v;

	outl(PCI_CFG_ADDR, a);
	outb(PCI_CFG_ADDR, 0x40);
	outw(PCI_CFG_ADDR, 0x4040);
	v = inl(PCI_CFG_ADDR);
	printf(GUEST ": cfg-address-port-odd-widths: CONFIG_ADDRESS reads 0x%08x\n", v);
	check(v == a, "byte/word writes changed CONFIG_ADDRESS");
	victim_works("configuration space tricks");
}

/* --- ECAM ------------------------------------------------------------------ */

struct acpi_hdr {
	char sig[4];
	uint32_t len;
	uint8_t rev, sum;
	char oem[6], table[8];
	uint32_t oem_rev, creator, creator_rev;
} __attribute__((packed));

static int sig_is(const char *s, const char *want)
{
	return !memcmp(s, want, 4);
}

static const uint8_t *rsdp_find(const struct hvm_start_info *si)
{
	if (si && si->magic == HVM_START_MAGIC && si->rsdp_paddr && si->rsdp_paddr < 0x100000000ull)
		return (const uint8_t *)(uintptr_t)si->rsdp_paddr;
	for (uintptr_t p = 0xe0000; p < 0x100000; p += 16)
		if (!memcmp((const void *)p, "RSD PTR ", 8))
			return (const uint8_t *)p;
	return NULL;
}

/* ECAM base for bus 0 from the MCFG table, or 0. */
static uint64_t mcfg_ecam(const struct hvm_start_info *si)
{
	const uint8_t *rsdp = rsdp_find(si);
	const struct acpi_hdr *sdt;
	unsigned width, n;
	uint64_t at;

	if (!rsdp || memcmp(rsdp, "RSD PTR ", 8))
		return 0;
	if (rsdp[15] >= 2 && *(const uint64_t *)(rsdp + 24)) {
		at = *(const uint64_t *)(rsdp + 24);
		width = 8;
	} else {
		at = *(const uint32_t *)(rsdp + 16);
		width = 4;
	}
	if (!at || at >= 0x100000000ull)
		return 0;
	sdt = (const struct acpi_hdr *)(uintptr_t)at;
	n = (sdt->len - sizeof(*sdt)) / width;
	for (unsigned i = 0; i < n && i < 64; i++) {
		const uint8_t *e = (const uint8_t *)(sdt + 1) + i * width;
		uint64_t t = width == 8 ? *(const uint64_t *)e : *(const uint32_t *)e;
		const struct acpi_hdr *h = (const struct acpi_hdr *)(uintptr_t)t;

		if (!t || t >= 0x100000000ull || !sig_is(h->sig, "MCFG") || h->len < 44 + 16)
			continue;
		/* First allocation: base (8), segment (2), start bus, end bus. */
		const uint8_t *alloc = (const uint8_t *)h + 44;
		if (*(const uint16_t *)(alloc + 8) == 0 && alloc[10] == 0)
			return *(const uint64_t *)alloc;
	}
	return 0;
}

/* The victim's 4 KiB of ECAM. */
static uintptr_t ecam_fn(void)
{
	return (uintptr_t)(ecam + ((uint64_t)rng.pci.dev << 15 | (uint64_t)rng.pci.fn << 12));
}

static void ecam_extended_space(void)
{
	uintptr_t f = ecam_fn();

	printf(GUEST ": ecam-extended-space: 0x100 reads 0x%08x, 0xffc 0x%08x\n",
	       mmio_read32(f + 0x100), mmio_read32(f + 0xffc));
	for (unsigned r = 0x100; r < 0x1000; r += 0x40)
		mmio_write32(f + r, 0xffffffffu);
	mmio_write8(f + 0xfff, 0xff);
	victim_works("ECAM writes past 256 bytes");
}

static void ecam_next_function(void)
{
	uintptr_t f = ecam_fn();
	uint32_t v = mmio_read32(f + 0x1000);

	mmio_write32(f + 0x1000 + 0x04, 0xffffffffu);
	printf(GUEST ": ecam-next-function: offset 4096 reads 0x%08x\n", v);
	check(v == 0xffffffffu, "the function after a single-function device does not read all-ones");
}

static void ecam_bus_1(void)
{
	printf(GUEST ": ecam-bus-1: reads 0x%08x\n", mmio_read32((uintptr_t)ecam + 0x100000));
}

static void ecam_unaligned_and_wide(void)
{
	const struct pci_dev *d = &rng.pci;
	uintptr_t f = ecam_fn();
	uint32_t id = pci_read32(d, PCI_VENDOR_ID), bar = pci_read32(d, PCI_BAR0 + 4 * rbar.index);

	printf(GUEST ": ecam-unaligned-and-wide: 4 bytes at 0x02 read 0x%08x, 8 bytes at 0 0x%lx\n",
	       mmio_read32(f + 2), (unsigned long)*(volatile uint64_t *)f);
	mmio_write32(f + 0x09, 0);          /* class code bytes and cache line size */
	mmio_write16(f + 0x3d, 0xffff);     /* interrupt pin / min_gnt, read-only */
	check(pci_read32(d, PCI_VENDOR_ID) == id, "vendor/device ID changed through ECAM");
	check(pci_read32(d, PCI_BAR0 + 4 * rbar.index) == bar, "BAR changed through ECAM");
	victim_works("ECAM tricks");
}

#define NEEDS_ECAM 1

static const struct {
	const char *dev, *name;
	void (*run)(void);
	unsigned flags;
} tricks[] = {
	{ "rng", "bar-over-ram", bar_over_ram, 0 },
	{ "rng", "bar-over-own-image", bar_over_own_image, 0 },
	{ "rng", "bar-at-zero", bar_at_zero, 0 },
	{ "rng", "bar-over-other-device", bar_over_other_device, 0 },
	{ "rng", "bar-over-ecam", bar_over_ecam, 0 },
	{ "rng", "bar-over-ioapic", bar_over_ioapic, 0 },
	{ "rng", "bar-over-lapic", bar_over_lapic, 0 },
	{ "rng", "bar-near-top-of-4g", bar_near_top_of_4g, 0 },
	{ "rng", "bar-high-dword-garbage", bar_high_dword_garbage, 0 },
	{ "rng", "bar-sizing-with-decode-on", bar_sizing_with_decode_on, 0 },
	{ "rng", "command-all-ones", command_all_ones, 0 },
	{ "rng", "bar-moved-and-used", bar_moved_and_used, 0 },
	{ "rng", "msix-garbage-entries", msix_garbage_entries, 0 },
	{ "rng", "msix-write-past-table", msix_write_past_table, 0 },
	{ "rng", "msix-odd-accesses", msix_odd_accesses, 0 },
	{ "rng", "msix-pba-writes", msix_pba_writes, 0 },
	{ "rng", "msix-control-all-ones", msix_control_all_ones, 0 },
	{ "rng", "msix-bad-vectors", msix_bad_vectors, 0 },
	{ "rng", "msix-fire-garbage", msix_fire_garbage, 0 },
	{ "cf8", "cfg-missing-bus", cfg_missing_bus, 0 },
	{ "cf8", "cfg-enable-bit-clear", cfg_enable_bit_clear, 0 },
	{ "cf8", "cfg-missing-function", cfg_missing_function, 0 },
	{ "cf8", "cfg-missing-slot", cfg_missing_slot, 0 },
	{ "cf8", "cfg-extended-register-bits", cfg_extended_register_bits, 0 },
	{ "cf8", "cfg-straddling-data-port", cfg_straddling_data_port, 0 },
	{ "cf8", "cfg-address-port-odd-widths", cfg_address_port_odd_widths, 0 },
	{ "ecam", "ecam-extended-space", ecam_extended_space, NEEDS_ECAM },
	{ "ecam", "ecam-next-function", ecam_next_function, NEEDS_ECAM },
	{ "ecam", "ecam-bus-1", ecam_bus_1, NEEDS_ECAM },
	{ "ecam", "ecam-unaligned-and-wide", ecam_unaligned_and_wide, NEEDS_ECAM },
};

int guest_main(struct hvm_start_info *si)
{
	uint64_t ram_end = hostile_ram_end(si);

	hostile_init(GUEST);
	if (virtio_find(VIRTIO_ID_RNG, 0, &rng) || virtio_find(VIRTIO_ID_BLK, 0, &blk))
		fail("needs a virtio-rng and a virtio-blk");
	bar_find(&rng, &rbar);
	bar_find(&blk, &bbar);
	printf(GUEST ": rng BAR%u at 0x%lx size 0x%lx%s, blk BAR%u at 0x%lx\n", rbar.index,
	       (unsigned long)rbar.base, (unsigned long)rbar.size, rbar.is64 ? " (64-bit)" : "",
	       bbar.index, (unsigned long)bbar.base);
	if (ram_end && ram_end < RAM_TARGET + rbar.size)
		fail("less RAM than the over-RAM trick needs (16 MiB)");
	ecam = cmdline_get_u64("ecam", 0);
	if (!ecam)
		ecam = mcfg_ecam(si);
	if (ecam) {
		printf(GUEST ": ECAM at 0x%lx\n", (unsigned long)ecam);
		check(mmio_read32(ecam_fn()) == pci_read32(&rng.pci, PCI_VENDOR_ID),
		      "ECAM and 0xCF8 disagree about the vendor/device ID");
	} else {
		printf(GUEST ": no ECAM (no MCFG table, no ecam=): ECAM tricks left out\n");
	}
	if (!rng_works() || !blk_works())
		fail("the devices do not work to begin with");
	msix_find();
	msix_ctrl0 = pci_read16(&rng.pci, mx.cap + 2);

	for (unsigned i = 0; i < sizeof(tricks) / sizeof(tricks[0]); i++) {
		if ((tricks[i].flags & NEEDS_ECAM) && !ecam)
			continue;
		if (hostile_trick(tricks[i].dev, tricks[i].name))
			tricks[i].run();
	}

	if (!rng_works() || !blk_works())
		fail("final check");
	printf("hostile-pci ok %u tricks, device still works\n", hostile_tricks);
	return 0;
}
