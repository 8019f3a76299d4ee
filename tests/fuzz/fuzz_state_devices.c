/* libFuzzer target: device state loaded from a snapshot (state/devices.c and
 * each device's loader). Every model-level loader gets the input as a section
 * payload, on a freshly built device: serial, i8042, rtc, acpi-pm, a PCI
 * function's generic state, the virtio-pci transport (queues checked against
 * guest RAM), virtio-net and virtio-blk. The last mode goes through the bus:
 * a real saved state of a PCI bus with a virtio-rng function in which one
 * section's payload is replaced by the input, loaded with pci_bus_load (device
 * list check, BAR moves, MSI-X routes, re-activation and the queue kick that
 * walks the rings). A loaded device is then exercised a little.
 * Input: mode u8, [mode BUS: section index u8], then the payload. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/i8042.h"
#include "devices/pci.h"
#include "devices/pm.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"
#include "devices/virtio/pci.h"
#include "devices/virtio/rng.h"
#include "fuzz.h"
#include "state/format.h"

#define RAM_SIZE  (64u << 10)
#define DISK_SIZE (64u << 10)

enum { M_SERIAL, M_I8042, M_RTC, M_PM, M_PCI_DEV, M_VIRTIO_PCI, M_NET, M_BLK, M_BUS, M_COUNT };

static char disk[64];

static void disk_remove(void)
{
	unlink(disk);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	log_threshold = LOG_ERROR;
	snprintf(disk, sizeof(disk), "/tmp/wafer-fuzz-state-XXXXXX");
	int fd = mkstemp(disk);
	if (fd < 0 || ftruncate(fd, DISK_SIZE)) {
		perror("fuzz_state_devices: disk image");
		exit(1);
	}
	close(fd);
	atexit(disk_remove);
	return 0;
}

static void nop(void *o) { (void)o; }
static void nop_tx(void *o, uint8_t b) { (void)o; (void)b; }
static void nop_irq(void *o, int l) { (void)o; (void)l; }

static void load_platform(unsigned mode, struct snap_cur *c)
{
	struct serial s;
	struct i8042 k;
	struct rtc r;
	struct pm p;

	switch (mode) {
	case M_SERIAL:
		serial_init(&s, nop_tx, nop_irq, NULL);
		if (serial_load(&s, c) == 0)
			for (unsigned i = 0; i < 8 * 70; i++)
				(void)serial_read(&s, i % 8);
		pthread_mutex_destroy(&s.lock);
		break;
	case M_I8042:
		i8042_init(&k, nop, nop, NULL);
		if (i8042_load(&k, c) == 0) {
			i8042_write_data(&k, 0xf2);
			for (unsigned i = 0; i < I8042_FIFO + 2; i++)
				(void)i8042_read_data(&k);
		}
		pthread_mutex_destroy(&k.lock);
		break;
	case M_RTC:
		rtc_init(&r);
		(void)rtc_load(&r, c);
		pthread_mutex_destroy(&r.lock);
		break;
	default:
		pm_init(&p, NULL);
		(void)pm_load(&p, c);
		pthread_mutex_destroy(&p.lock);
		break;
	}
}

/* A bus with a virtio-rng function whose driver got as far as a ready
 * queue, so saved states have something in them. */
struct rig {
	struct bus pio, mmio;
	struct irq_router irq;
	struct pci_bus pb;
	struct virtio_pci *vp;
};

static void rig_drive(struct rig *g)
{
	uint64_t bar = pci_cfg_read(&g->pb, g->vp->pci.slot, 0, PCI_BASE_ADDRESS_0, 4) & ~0xfull;
	static const struct { uint64_t off, v; unsigned size; } w[] = {
		{ VIRTIO_PCI_COMMON_STATUS, 3, 1 },
		{ VIRTIO_PCI_COMMON_GFSELECT, 1, 4 },
		{ VIRTIO_PCI_COMMON_GF, 1, 4 },
		{ VIRTIO_PCI_COMMON_STATUS, 11, 1 },
		{ VIRTIO_PCI_COMMON_Q_SIZE, 16, 2 },
		{ VIRTIO_PCI_COMMON_Q_DESC, 0x1000, 8 },
		{ VIRTIO_PCI_COMMON_Q_DRIVER, 0x2000, 8 },
		{ VIRTIO_PCI_COMMON_Q_DEVICE, 0x3000, 8 },
		{ VIRTIO_PCI_COMMON_Q_MSIX, 1, 2 },
		{ VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2 },
		{ VIRTIO_PCI_COMMON_STATUS, 15, 1 },
	};
	for (unsigned i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		uint64_t v = w[i].v;
		bus_access(&g->mmio, bar + w[i].off, (uint8_t *)&v, w[i].size, 1);
	}
}

static void rig_build(struct rig *g, struct guest_mem *mem)
{
	char err[256];

	memset(g, 0, sizeof(*g));
	irq_router_init(&g->irq, -1, &fuzz_kvm);
	if (pci_bus_init(&g->pb, &g->pio, &g->mmio, &g->irq))
		abort();
	struct virtio_dev *d = virtio_rng_create(mem, err, sizeof(err));
	if (!d || virtio_pci_attach(&g->pb, NULL, d, &g->vp, err, sizeof(err))) {
		fprintf(stderr, "fuzz_state_devices: %s\n", err);
		abort();
	}
	rig_drive(g);
}

static void rig_destroy(struct rig *g)
{
	pci_bus_destroy(&g->pb);
	irq_router_destroy(&g->irq);
}

/* The bus's saved state with section number `which` carrying payload. */
static void bus_load(struct rig *g, unsigned which, const uint8_t *payload, size_t len)
{
	struct snap_buf saved, out;
	struct snap_reader r;
	struct snap_section s;
	char err[256];
	size_t pos = 0;
	unsigned n = 0;

	snap_buf_init(&saved);
	snap_put_header(&saved);
	pci_bus_save(&g->pb, &saved);
	snap_put_end(&saved);
	if (snap_reader_open(&r, saved.p, saved.len, err, sizeof(err)))
		abort();   /* our own writer must produce what our reader takes */
	snap_buf_init(&out);
	snap_put_header(&out);
	while (snap_reader_next(&r, &pos, &s)) {
		size_t tok = snap_section_begin(&out, s.name, s.instance, s.version);
		if (n++ == which)
			snap_buf_put(&out, payload, len);
		else
			snap_buf_put(&out, s.data, s.len);
		snap_section_end(&out, tok);
	}
	snap_put_end(&out);
	if (!out.err && !snap_reader_open(&r, out.p, out.len, err, sizeof(err)))
		(void)pci_bus_load(&g->pb, &r, err, sizeof(err));
	snap_buf_free(&out);
	snap_buf_free(&saved);
}

static void load_virtio(unsigned mode, struct snap_cur *c, const uint8_t *p, size_t n)
{
	struct guest_mem mem;
	struct rig g;
	char err[256];
	int sv[2];

	uint8_t *ram = calloc(1, RAM_SIZE);
	if (!ram)
		return;
	gmem_init(&mem, ram, RAM_SIZE);
	switch (mode) {
	case M_PCI_DEV:
		rig_build(&g, &mem);
		if (pci_dev_load(&g.vp->pci, c) == 0)
			(void)pci_msix_notify(&g.vp->pci, 1);
		rig_destroy(&g);
		break;
	case M_VIRTIO_PCI:
		rig_build(&g, &mem);
		if (virtio_pci_load(g.vp, c, err, sizeof(err)) == 0) {
			uint64_t bar = g.vp->pci.bar[0].addr, v = 0;
			bus_access(&g.mmio, bar + VIRTIO_PCI_NOTIFY_OFF, (uint8_t *)&v, 2, 1);
			bus_access(&g.mmio, bar + VIRTIO_PCI_COMMON_Q_SIZE, (uint8_t *)&v, 2, 0);
		}
		rig_destroy(&g);
		break;
	case M_BUS:
		rig_build(&g, &mem);
		bus_load(&g, n ? p[0] % 8 : 0, n ? p + 1 : p, n ? n - 1 : 0);
		rig_destroy(&g);
		break;
	case M_NET: {
		struct net_config cfg = { .id = "n", .vm_name = "v", .ifname = "t" };
		if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv))
			break;
		struct virtio_dev *d = virtio_net_create_fd(&mem, NULL, &cfg, sv[0], err, sizeof(err));
		if (d) {
			uint8_t conf[10];
			if (d->ops->load(d, c, err, sizeof(err)) == 0)
				d->ops->config_read(d, 0, conf, sizeof(conf));
			d->ops->destroy(d);
		}
		close(sv[1]);
		break;
	}
	default: {
		struct blk_config cfg = { .path = disk, .id = "b" };
		struct virtio_dev *d = virtio_blk_create(&mem, NULL, &cfg, err, sizeof(err));
		if (!d) {
			fprintf(stderr, "fuzz_state_devices: %s\n", err);
			abort();
		}
		(void)d->ops->load(d, c, err, sizeof(err));
		d->ops->destroy(d);
		break;
	}
	}
	free(ram);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned mode = fuzz_u8(&in) % M_COUNT;
	/* An exact-size copy, so ASan sees any read past the payload. */
	uint8_t *payload = malloc(in.n ? in.n : 1);
	struct snap_cur c;

	if (!payload)
		return 0;
	memcpy(payload, in.p, in.n);
	snap_cur_init(&c, payload, in.n);
	if (mode <= M_PM)
		load_platform(mode, &c);
	else
		load_virtio(mode, &c, payload, in.n);
	free(payload);
	return 0;
}
