/* virtio-pci modern transport against a dummy device: capability layout and
 * IDs, the driver init sequence, feature negotiation, queue setup (good and
 * bad), notifications, interrupts (MSI-X and INTx/ISR), reset, and hostile
 * register accesses. KVM calls go to a recorder. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "arch/x86/layout.h"
#include "devices/pci.h"
#include "devices/virtio/pci.h"
#include "vmm/bus.h"
#include "vmm/irq.h"

static struct { int line_level; unsigned line_gsi; unsigned ioeventfds; } kvm;

static int fake_routing(struct irq_router *r, const void *e, unsigned n)
{
	(void)r; (void)e; (void)n;
	return 0;
}
static int fake_irqfd(struct irq_router *r, int fd, uint32_t gsi, bool assign)
{
	(void)r; (void)fd; (void)gsi; (void)assign;
	return 0;
}
static int fake_ioeventfd(struct irq_router *r, uint64_t a, unsigned l, int fd, bool assign)
{
	(void)r; (void)a; (void)l; (void)fd;
	kvm.ioeventfds += assign ? 1 : -1;
	return 0;
}
static int fake_line(struct irq_router *r, uint32_t gsi, int level)
{
	(void)r;
	kvm.line_gsi = gsi;
	kvm.line_level = level;
	return 0;
}
static const struct irq_kvm_ops fake_kvm = { fake_routing, fake_irqfd, fake_ioeventfd, fake_line };

/* --- dummy device: 2 queues, 8 bytes of config, device feature bit 5 --- */
#define DUMMY_FEATURE 5
static struct {
	unsigned activates, resets, destroys, notifies[4];
	int activate_rc;
	uint8_t cfg[8];
	unsigned cfg_reads, cfg_writes;
} dummy;

static uint64_t d_features(struct virtio_dev *d)
{
	(void)d;
	return 1ull << DUMMY_FEATURE;
}
static int d_activate(struct virtio_dev *d)
{
	(void)d;
	dummy.activates++;
	return dummy.activate_rc;
}
static void d_reset(struct virtio_dev *d)
{
	(void)d;
	dummy.resets++;
}
static void d_cfg_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	(void)d;
	assert_true(off + len <= sizeof(dummy.cfg));
	memcpy(buf, dummy.cfg + off, len);
	dummy.cfg_reads++;
}
static void d_cfg_write(struct virtio_dev *d, uint32_t off, const void *buf, uint32_t len)
{
	(void)d;
	assert_true(off + len <= sizeof(dummy.cfg));
	memcpy(dummy.cfg + off, buf, len);
	dummy.cfg_writes++;
}
static void d_notify(struct virtio_dev *d, unsigned q)
{
	(void)d;
	assert_true(q < 2);
	dummy.notifies[q]++;
}
static void d_destroy(struct virtio_dev *d)
{
	(void)d;
	dummy.destroys++;
}

static const struct virtio_dev_ops dummy_ops = {
	.name = "dummy", .device_id = 4, .num_queues = 2, .queue_max_size = 256,
	.features = d_features, .activate = d_activate, .reset = d_reset,
	.config_size = sizeof(dummy.cfg), .config_read = d_cfg_read,
	.config_write = d_cfg_write, .queue_notify = d_notify, .destroy = d_destroy,
};

#define RAM (16u << 20)
static struct bus pio, mmio;
static struct irq_router irq;
static struct pci_bus pb;
static struct guest_mem mem;
static void *ram;
static struct virtio_dev vdev;
static struct virtio_pci *vp;
static uint64_t bar;

static uint32_t cfg_in(unsigned reg, unsigned size)
{
	return pci_cfg_read(&pb, vp->pci.slot, 0, reg, size);
}

static int setup(void **state)
{
	char err[128];
	(void)state;
	memset(&pio, 0, sizeof(pio));
	memset(&mmio, 0, sizeof(mmio));
	memset(&kvm, 0, sizeof(kvm));
	memset(&dummy, 0, sizeof(dummy));
	memcpy(dummy.cfg, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	ram = calloc(1, RAM);
	assert_non_null(ram);
	gmem_init(&mem, ram, RAM);
	irq_router_init(&irq, -1, &fake_kvm);
	assert_int_equal(pci_bus_init(&pb, &pio, &mmio, &irq), 0);
	memset(&vdev, 0, sizeof(vdev));
	vdev.ops = &dummy_ops;
	vdev.mem = &mem;
	assert_int_equal(virtio_pci_attach(&pb, NULL, &vdev, &vp, err, sizeof(err)), 0);
	bar = cfg_in(PCI_BASE_ADDRESS_0, 4) & ~0xfull;
	assert_true(bar >= PCI_MMIO_BASE && bar + VIRTIO_PCI_BAR_SIZE <= PCI_MMIO_END);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pci_bus_destroy(&pb);
	assert_int_equal(dummy.destroys, 1);
	irq_router_destroy(&irq);
	free(ram);
	return 0;
}

static uint64_t rd(uint64_t off, unsigned size)
{
	uint64_t v = 0;
	assert_int_equal(bus_access(&mmio, bar + off, (uint8_t *)&v, size, 0), 0);
	return v;
}
static void wr(uint64_t off, uint64_t v, unsigned size)
{
	assert_int_equal(bus_access(&mmio, bar + off, (uint8_t *)&v, size, 1), 0);
}
#define C(x) (VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_COMMON_##x)

static uint8_t status(void) { return (uint8_t)rd(C(STATUS), 1); }

static uint64_t offered(void)
{
	wr(C(DFSELECT), 0, 4);
	uint64_t lo = rd(C(DF), 4);
	wr(C(DFSELECT), 1, 4);
	return lo | rd(C(DF), 4) << 32;
}

static void set_driver_features(uint64_t f)
{
	wr(C(GFSELECT), 0, 4);
	wr(C(GF), (uint32_t)f, 4);
	wr(C(GFSELECT), 1, 4);
	wr(C(GF), f >> 32, 4);
}

/* Rings for queue q at 1 MiB + 64 KiB * q. */
static void setup_queue(unsigned q, uint16_t size, uint64_t base)
{
	wr(C(Q_SELECT), q, 2);
	wr(C(Q_SIZE), size, 2);
	wr(C(Q_DESC), (uint32_t)base, 4);
	wr(C(Q_DESC) + 4, base >> 32, 4);
	wr(C(Q_DRIVER), base + 0x4000, 8);
	wr(C(Q_DEVICE), base + 0x8000, 8);
}

static const uint64_t transport_bits = 1ull << VIRTIO_F_VERSION_1 |
	1ull << VIRTIO_F_EVENT_IDX | 1ull << VIRTIO_F_INDIRECT_DESC;

static void driver_init(void)
{
	wr(C(STATUS), 0, 1);
	wr(C(STATUS), VIRTIO_STATUS_ACKNOWLEDGE, 1);
	wr(C(STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	set_driver_features(offered());
	wr(C(STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
	assert_true(status() & VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < 2; q++) {
		setup_queue(q, 128, 0x100000 + 0x10000 * q);
		wr(C(Q_MSIX), q + 1, 2);
		wr(C(Q_ENABLE), 1, 2);
		assert_int_equal(rd(C(Q_ENABLE), 2), 1);
	}
	wr(C(MSIX), 0, 2);
	wr(C(STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			      VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK, 1);
}

static void test_ids_and_caps(void **state)
{
	(void)state;
	assert_int_equal(cfg_in(PCI_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(cfg_in(PCI_DEVICE_ID, 2), 0x1044);
	assert_int_equal(cfg_in(PCI_REVISION_ID, 1), 1);
	assert_true(cfg_in(PCI_SUBSYSTEM_ID, 2) >= 0x40);
	assert_int_equal(cfg_in(PCI_CLASS_PROG, 4) >> 0 & 0xffffff, 0xff0000);
	assert_int_equal(cfg_in(PCI_BASE_ADDRESS_0, 4) & 0xf, 0);    /* 32-bit memory */

	/* Walk the list: each virtio structure once, inside BAR 0. */
	unsigned at = cfg_in(PCI_CAPABILITY_LIST, 1), seen = 0, steps = 0;
	bool msix = false;
	while (at) {
		assert_true(++steps < 48);
		assert_true(at >= 0x40 && (at & 3) == 0);
		unsigned id = cfg_in(at, 1);
		if (id == PCI_CAP_ID_MSIX) {
			msix = true;
			assert_int_equal(cfg_in(at + 2, 2) & PCI_MSIX_FLAGS_QSIZE, 2);  /* 3 vectors */
		} else {
			assert_int_equal(id, PCI_CAP_ID_VNDR);
			unsigned type = cfg_in(at + 3, 1), len = cfg_in(at + 2, 1);
			uint32_t off = cfg_in(at + 8, 4), size = cfg_in(at + 12, 4);
			assert_int_equal(cfg_in(at + 4, 1), VIRTIO_PCI_BAR);
			assert_true(type >= 1 && type <= 4);
			assert_false(seen & (1u << type));
			seen |= 1u << type;
			assert_true(size > 0 && off + size <= VIRTIO_PCI_BAR_SIZE);
			switch (type) {
			case VIRTIO_PCI_CAP_COMMON_CFG:
				assert_int_equal(len, 16);
				assert_int_equal(off, VIRTIO_PCI_COMMON_OFF);
				assert_true(size >= 0x38);
				break;
			case VIRTIO_PCI_CAP_NOTIFY_CFG:
				assert_int_equal(len, 20);
				assert_int_equal(cfg_in(at + 16, 4), VIRTIO_PCI_NOTIFY_MULT);
				assert_int_equal(size, 2 * VIRTIO_PCI_NOTIFY_MULT);
				break;
			case VIRTIO_PCI_CAP_ISR_CFG:
				assert_true(size >= 1);
				break;
			case VIRTIO_PCI_CAP_DEVICE_CFG:
				assert_int_equal(size, sizeof(dummy.cfg));
				break;
			}
		}
		at = cfg_in(at + 1, 1);
	}
	assert_true(msix);
	assert_int_equal(seen, 0x1e);
}

static void test_init_sequence(void **state)
{
	(void)state;
	assert_int_equal(status(), 0);
	assert_int_equal(rd(C(NUMQ), 2), 2);
	uint64_t f = offered();
	assert_int_equal(f, transport_bits | 1ull << DUMMY_FEATURE);
	assert_int_equal(vdev.device_features, f);
	wr(C(Q_SELECT), 1, 2);
	assert_int_equal(rd(C(Q_SIZE), 2), 256);
	assert_int_equal(rd(C(Q_NOFF), 2), 1);
	assert_int_equal(rd(C(Q_MSIX), 2), VIRTIO_NO_VECTOR);

	driver_init();
	assert_int_equal(status() & 0xf, 0xf);
	assert_int_equal(dummy.activates, 1);
	assert_int_equal(vdev.features, f);
	assert_true(vdev.vq[0].ready && vdev.vq[1].ready);
	assert_int_equal(vdev.vq[0].size, 128);
	assert_int_equal(vdev.vq[1].desc_gpa, 0x110000);
	assert_int_equal(vdev.vq[1].avail_gpa, 0x114000);
	assert_int_equal(vdev.vq[1].used_gpa, 0x118000);
	assert_true(vdev.vq[0].event_idx && vdev.vq[0].indirect);
	/* 64-bit fields read back whole or in halves. */
	wr(C(Q_SELECT), 1, 2);
	assert_int_equal(rd(C(Q_DESC), 8), 0x110000);
	assert_int_equal(rd(C(Q_DEVICE), 4), 0x118000);
	assert_int_equal(rd(C(Q_DEVICE) + 4, 4), 0);
	/* Enabled queues are frozen. */
	wr(C(Q_SIZE), 64, 2);
	wr(C(Q_DESC), 0x200000, 8);
	assert_int_equal(vdev.vq[1].size, 128);
	assert_int_equal(vdev.vq[1].desc_gpa, 0x110000);

	/* Notify: by address, any value, 2 or 4 bytes. */
	wr(VIRTIO_PCI_NOTIFY_OFF + 1 * VIRTIO_PCI_NOTIFY_MULT, 1, 2);
	assert_int_equal(dummy.notifies[1], 1);
	wr(VIRTIO_PCI_NOTIFY_OFF, 0x7777, 4);
	assert_int_equal(dummy.notifies[0], 1);
	/* Features cannot change after FEATURES_OK. */
	set_driver_features(transport_bits);
	assert_int_equal(vdev.features, f);
}

static void test_feature_refusal(void **state)
{
	(void)state;
	/* No VERSION_1: FEATURES_OK does not stick. */
	wr(C(STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	set_driver_features(1ull << DUMMY_FEATURE);
	wr(C(STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
	assert_false(status() & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(vdev.features, 0);
	/* A bit the device never offered: refused too. */
	set_driver_features(transport_bits | 1ull << 40);
	wr(C(STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
	assert_false(status() & VIRTIO_STATUS_FEATURES_OK);
	/* DRIVER_OK without FEATURES_OK: no activation, needs reset. */
	wr(C(STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK, 1);
	assert_int_equal(dummy.activates, 0);
	assert_true(status() & VIRTIO_STATUS_NEEDS_RESET);
	/* A proper subset with VERSION_1 is accepted after a reset. */
	wr(C(STATUS), 0, 1);
	assert_int_equal(status(), 0);
	wr(C(STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	set_driver_features(1ull << VIRTIO_F_VERSION_1);
	wr(C(STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK, 1);
	assert_true(status() & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(vdev.features, 1ull << VIRTIO_F_VERSION_1);
	/* Activation failure: NEEDS_RESET. */
	dummy.activate_rc = -EIO;
	wr(C(STATUS), 0xf, 1);
	assert_int_equal(dummy.activates, 1);
	assert_true(status() & VIRTIO_STATUS_NEEDS_RESET);
}

static void bad_queue(uint16_t size, uint64_t base)
{
	wr(C(STATUS), 0, 1);
	wr(C(STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	set_driver_features(transport_bits);
	wr(C(STATUS), 0xb, 1);
	setup_queue(0, size, base);
	wr(C(Q_ENABLE), 1, 2);
	assert_int_equal(rd(C(Q_ENABLE), 2), 0);
	assert_true(status() & VIRTIO_STATUS_NEEDS_RESET);
	assert_false(vdev.vq[0].ready);
}

static void test_bad_queues(void **state)
{
	(void)state;
	bad_queue(100, 0x100000);             /* not a power of two */
	bad_queue(0, 0x100000);
	bad_queue(512, 0x100000);             /* above the maximum */
	bad_queue(128, RAM - 0x100);          /* rings past the end of RAM */
	bad_queue(128, 0xfffffffffffff000ull);
	bad_queue(128, 0x100008);             /* descriptors misaligned */
	/* A device in NEEDS_RESET dispatches no notifies. */
	wr(VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	assert_int_equal(dummy.notifies[0], 0);
	/* And a reset recovers. */
	driver_init();
	assert_false(status() & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(vdev.vq[0].ready);
}

static void test_reset(void **state)
{
	(void)state;
	driver_init();
	unsigned resets = dummy.resets;
	wr(C(STATUS), 0, 1);
	assert_int_equal(dummy.resets, resets + 1);
	assert_int_equal(status(), 0);
	assert_int_equal(vdev.features, 0);
	assert_int_equal(rd(C(MSIX), 2), VIRTIO_NO_VECTOR);
	assert_int_equal(rd(C(Q_SELECT), 2), 0);
	for (unsigned q = 0; q < 2; q++) {
		wr(C(Q_SELECT), q, 2);
		assert_int_equal(rd(C(Q_ENABLE), 2), 0);
		assert_int_equal(rd(C(Q_SIZE), 2), 256);
		assert_int_equal(rd(C(Q_MSIX), 2), VIRTIO_NO_VECTOR);
		assert_int_equal(rd(C(Q_DESC), 8), 0);
		assert_false(vdev.vq[q].ready);
	}
	wr(C(GFSELECT), 0, 4);
	assert_int_equal(rd(C(GF), 4), 0);
	/* No notifies reach a reset device. */
	wr(VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	assert_int_equal(dummy.notifies[0], 0);
}

static void test_interrupts(void **state)
{
	(void)state;
	driver_init();
	/* MSI-X off: INTx plus ISR bit 0 (queue) / bit 1 (config). */
	vdev.transport->notify_queue(&vdev, 0);
	assert_int_equal(kvm.line_level, 1);
	assert_int_equal(kvm.line_gsi, pci_intx_gsi(&vp->pci));
	uint8_t gen = (uint8_t)rd(C(CFGGEN), 1);
	vdev.transport->notify_config(&vdev);
	assert_int_equal(rd(C(CFGGEN), 1), (uint8_t)(gen + 1));
	assert_int_equal(rd(VIRTIO_PCI_ISR_OFF, 1), 3);       /* read clears ... */
	assert_int_equal(kvm.line_level, 0);                  /* ... and deasserts */
	assert_int_equal(rd(VIRTIO_PCI_ISR_OFF, 1), 0);

	/* MSI-X on, queue 1 on vector 2 (unmasked): an irqfd write. */
	unsigned cap = vp->pci.msix.cap;
	pci_cfg_write(&pb, vp->pci.slot, 0, cap + 2, 2, PCI_MSIX_FLAGS_ENABLE);
	wr(VIRTIO_PCI_MSIX_TABLE + 2 * 16, 0xfee00000u, 4);
	wr(VIRTIO_PCI_MSIX_TABLE + 2 * 16 + 8, 0x31, 4);
	wr(VIRTIO_PCI_MSIX_TABLE + 2 * 16 + 12, 0, 4);
	vdev.transport->notify_queue(&vdev, 1);
	uint64_t c = 0;
	assert_int_equal(read(vp->pci.msix.e[2].efd, &c, sizeof(c)), sizeof(c));
	assert_int_equal(c, 1);
	assert_int_equal(rd(VIRTIO_PCI_ISR_OFF, 1), 0);
	/* Queue 0 on vector 1, still masked: pending in the PBA. */
	vdev.transport->notify_queue(&vdev, 0);
	assert_int_equal(rd(VIRTIO_PCI_MSIX_PBA, 4), 1u << 1);
	/* NO_VECTOR with MSI-X on: nothing at all. */
	wr(C(MSIX), VIRTIO_NO_VECTOR, 2);
	vdev.transport->notify_config(&vdev);
	assert_int_equal(rd(VIRTIO_PCI_ISR_OFF, 1), 0);
	assert_int_equal(kvm.line_level, 0);
	/* A vector beyond the table reads back NO_VECTOR. */
	wr(C(MSIX), 3, 2);
	assert_int_equal(rd(C(MSIX), 2), VIRTIO_NO_VECTOR);
	wr(C(Q_SELECT), 0, 2);
	wr(C(Q_MSIX), 50, 2);
	assert_int_equal(rd(C(Q_MSIX), 2), VIRTIO_NO_VECTOR);
}

static void test_device_config(void **state)
{
	(void)state;
	assert_int_equal(rd(VIRTIO_PCI_DEVICE_OFF + 4, 4), 0x08070605);
	assert_int_equal(rd(VIRTIO_PCI_DEVICE_OFF, 8), 0x0807060504030201ull);
	assert_int_equal(rd(VIRTIO_PCI_DEVICE_OFF + 7, 1), 0x08);
	unsigned reads = dummy.cfg_reads;
	/* Crossing or past the end: 0, and the device is never asked. */
	assert_int_equal(rd(VIRTIO_PCI_DEVICE_OFF + 6, 4), 0);
	assert_int_equal(rd(VIRTIO_PCI_DEVICE_OFF + 8, 1), 0);
	assert_int_equal(rd(VIRTIO_PCI_DEVICE_OFF + 0xff8, 8), 0);
	assert_int_equal(dummy.cfg_reads, reads);
	wr(VIRTIO_PCI_DEVICE_OFF + 2, 0xaabb, 2);
	assert_int_equal(dummy.cfg[2], 0xbb);
	wr(VIRTIO_PCI_DEVICE_OFF + 7, 0xffff, 2);
	assert_int_equal(dummy.cfg_writes, 1);
}

static void test_hostile(void **state)
{
	(void)state;
	/* Wrong widths and holes in the common structure: read 0, no effect. */
	assert_int_equal(rd(C(NUMQ), 4), 0);
	assert_int_equal(rd(C(STATUS), 2), 0);
	assert_int_equal(rd(C(DF) + 1, 1), 0);
	wr(C(STATUS), 0xff0f, 2);
	assert_int_equal(status(), 0);
	wr(C(DF), 0, 4);                                      /* read-only */
	assert_int_equal(offered() >> 32 & 1, 1);
	wr(C(NUMQ), 9, 2);
	assert_int_equal(rd(C(NUMQ), 2), 2);
	wr(C(DFSELECT), 7, 4);
	assert_int_equal(rd(C(DF), 4), 0);
	/* queue_select out of range: reads 0, writes go nowhere. */
	wr(C(Q_SELECT), 99, 2);
	assert_int_equal(rd(C(Q_SELECT), 2), 99);
	assert_int_equal(rd(C(Q_SIZE), 2), 0);
	assert_int_equal(rd(C(Q_ENABLE), 2), 0);
	wr(C(Q_SIZE), 16, 2);
	wr(C(Q_DESC), 0x1000, 8);
	wr(C(Q_ENABLE), 1, 2);
	wr(C(Q_MSIX), 1, 2);
	assert_false(status() & VIRTIO_STATUS_NEEDS_RESET);
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		assert_false(vdev.vq[q].ready);
	/* Unaligned 64-bit halves. */
	wr(C(Q_SELECT), 0, 2);
	wr(C(Q_DESC) + 2, 0x1234, 4);
	assert_int_equal(rd(C(Q_DESC), 8), 0);
	/* Notify area: misaligned, past the last queue, odd widths. */
	driver_init();
	wr(VIRTIO_PCI_NOTIFY_OFF + 2, 0, 2);
	wr(VIRTIO_PCI_NOTIFY_OFF + 2 * VIRTIO_PCI_NOTIFY_MULT, 0, 2);
	wr(VIRTIO_PCI_NOTIFY_OFF, 0, 1);
	wr(VIRTIO_PCI_NOTIFY_OFF, 0, 8);
	assert_int_equal(dummy.notifies[0] + dummy.notifies[1], 0);
	/* Everywhere else in the BAR: reads 0, writes ignored. */
	static const uint64_t holes[] = { 0x38, 0x800, 0x1001, 0x1ffc, 0x2ff8, 0x3ffc,
					  0x4000 + 3 * 16, 0x5008, 0x7ff8 };
	for (unsigned i = 0; i < sizeof(holes) / sizeof(holes[0]); i++) {
		wr(holes[i], ~0ull, 4);
		assert_int_equal(rd(holes[i], 4), 0);
	}
	assert_int_equal(status() & 0xf, 0xf);
	assert_false(status() & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_bar_move_keeps_working(void **state)
{
	(void)state;
	uint64_t old = bar, moved = 0xd8000000u;
	pci_cfg_write(&pb, vp->pci.slot, 0, PCI_BASE_ADDRESS_0, 4, (uint32_t)moved);
	bar = moved;
	assert_int_equal(rd(C(NUMQ), 2), 2);
	uint64_t v = 0;
	assert_int_equal(bus_access(&mmio, old + VIRTIO_PCI_COMMON_NUMQ, (uint8_t *)&v, 2, 0), -ENOENT);
}

static void test_attach_rejects(void **state)
{
	(void)state;
	char err[128] = "";
	static struct virtio_dev bad;
	static struct virtio_dev_ops ops;
	ops = dummy_ops;
	ops.num_queues = 0;
	bad.ops = &ops;
	bad.mem = &mem;
	assert_int_equal(virtio_pci_attach(&pb, NULL, &bad, NULL, err, sizeof(err)), -EINVAL);
	assert_true(err[0]);
	ops = dummy_ops;
	ops.queue_max_size = 100;
	assert_int_equal(virtio_pci_attach(&pb, NULL, &bad, NULL, err, sizeof(err)), -EINVAL);
	ops = dummy_ops;
	ops.num_queues = VIRTIO_MAX_QUEUES + 1;
	assert_int_equal(virtio_pci_attach(&pb, NULL, &bad, NULL, err, sizeof(err)), -EINVAL);
	ops = dummy_ops;
	ops.config_size = VIRTIO_PCI_DEVICE_MAX + 1;
	assert_int_equal(virtio_pci_attach(&pb, NULL, &bad, NULL, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ids_and_caps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_sequence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_feature_refusal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_queues, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_move_keeps_working, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_rejects, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
