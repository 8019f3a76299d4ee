/* Device state in snapshots: every model saved in a non-trivial state and
 * loaded into a fresh instance behaves the same (registers, FIFOs, IRQ
 * lines, BARs at moved addresses, MSI-X, queues continuing where they
 * were); truncated, trailing, wrong-version and hostile payloads are
 * refused; the I/O loop pauses; devices quiesce; VMM writes to guest RAM
 * reach the migration dirty log. KVM is a recorder, the VM a fake built
 * from the real device_desc list. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "arch/x86/layout.h"
#include "devices/i8042.h"
#include "devices/pci.h"
#include "devices/pm.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"
#include "devices/virtio/pci.h"
#include "devices/virtio/rng.h"
#include "state/devices.h"
#include "vmm/eventloop.h"
#include "vmm/vm.h"

extern const struct device_desc *const __start_wafer_devices[];
extern const struct device_desc *const __stop_wafer_devices[];

/* --- KVM recorder --- */
static struct { int line[64]; unsigned ioeventfds; } kvm;

static int k_routing(struct irq_router *r, const void *e, unsigned n)
{
	(void)r; (void)e; (void)n;
	return 0;
}
static int k_irqfd(struct irq_router *r, int fd, uint32_t gsi, bool assign)
{
	(void)r; (void)fd; (void)gsi; (void)assign;
	return 0;
}
static int k_ioeventfd(struct irq_router *r, uint64_t a, unsigned l, int fd, bool assign)
{
	(void)r; (void)a; (void)l; (void)fd;
	__atomic_fetch_add(&kvm.ioeventfds, assign ? 1u : -1u, __ATOMIC_SEQ_CST);
	return 0;
}
static int k_line(struct irq_router *r, uint32_t gsi, int level)
{
	(void)r;
	if (gsi < 64)
		kvm.line[gsi] = level;
	return 0;
}
static const struct irq_kvm_ops fake_kvm = { k_routing, k_irqfd, k_ioeventfd, k_line };

/* --- the driver side of a split ring --- */
struct ring {
	const struct guest_mem *mem;
	uint64_t desc, avail, used;
	uint16_t size, next_desc, avail_idx;
};

struct seg { uint64_t gpa; uint32_t len; bool write; };

static uint16_t ring_post(struct ring *r, const struct seg *s, unsigned n, bool publish)
{
	uint16_t head = r->next_desc % r->size;

	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % r->size);
		uint16_t flags = (uint16_t)((i + 1 < n ? 1 : 0) | (s[i].write ? 2 : 0));
		uint16_t next = (uint16_t)((idx + 1) % r->size);
		uint8_t d[16];
		memcpy(d, &s[i].gpa, 8);
		memcpy(d + 8, &s[i].len, 4);
		memcpy(d + 12, &flags, 2);
		memcpy(d + 14, &next, 2);
		assert_int_equal(gmem_write(r->mem, r->desc + 16u * idx, d, 16), 0);
	}
	r->next_desc = (uint16_t)(r->next_desc + n);
	assert_int_equal(gmem_write(r->mem, r->avail + 4 + 2u * (r->avail_idx % r->size), &head, 2), 0);
	r->avail_idx++;
	if (publish)
		assert_int_equal(gmem_write(r->mem, r->avail + 2, &r->avail_idx, 2), 0);
	return head;
}

static uint16_t ring_used_idx(const struct ring *r)
{
	uint16_t *p = gmem_ptr(r->mem, r->used + 2, 2);
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void ring_used(const struct ring *r, uint16_t i, uint32_t *id, uint32_t *len)
{
	uint8_t e[8];
	assert_int_equal(gmem_read(r->mem, r->used + 4 + 8u * (i % r->size), e, 8), 0);
	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
}

static bool wait_used(const struct ring *r, uint16_t want)
{
	for (int i = 0; i < 2000 && ring_used_idx(r) != want; i++)
		usleep(1000);
	return ring_used_idx(r) == want;
}

/* --- model-level round trips and refusals --- */

/* Save with save(obj), then: exact payload loads into fresh; one byte short
 * and one byte more are -EINVAL and leave fresh as it was (its own save
 * is unchanged). */
typedef int (*save_fn)(void *obj, struct snap_buf *b);
typedef int (*load_fn)(void *obj, struct snap_cur *c);

static void roundtrip(save_fn save, load_fn load, void *obj, void *fresh)
{
	struct snap_buf b, before, after;
	struct snap_cur c;

	snap_buf_init(&b);
	snap_buf_init(&before);
	snap_buf_init(&after);
	assert_int_equal(save(obj, &b), 0);
	assert_true(b.len > 0);
	assert_int_equal(save(fresh, &before), 0);
	uint8_t *longer = calloc(1, b.len + 1);
	memcpy(longer, b.p, b.len);
	snap_cur_init(&c, b.p, b.len - 1);
	assert_int_equal(load(fresh, &c), -EINVAL);
	snap_cur_init(&c, longer, b.len + 1);
	assert_int_equal(load(fresh, &c), -EINVAL);
	assert_int_equal(save(fresh, &after), 0);
	assert_int_equal(after.len, before.len);
	assert_memory_equal(after.p, before.p, before.len);
	snap_cur_init(&c, b.p, b.len);
	assert_int_equal(load(fresh, &c), 0);
	/* And what was loaded saves back byte for byte. */
	snap_buf_free(&after);
	assert_int_equal(save(fresh, &after), 0);
	assert_int_equal(after.len, b.len);
	assert_memory_equal(after.p, b.p, b.len);
	free(longer);
	snap_buf_free(&b);
	snap_buf_free(&before);
	snap_buf_free(&after);
}

static int sv_serial(void *o, struct snap_buf *b) { return serial_save(o, b); }
static int ld_serial(void *o, struct snap_cur *c) { return serial_load(o, c); }
static int sv_i8042(void *o, struct snap_buf *b) { return i8042_save(o, b); }
static int ld_i8042(void *o, struct snap_cur *c) { return i8042_load(o, c); }
static int sv_rtc(void *o, struct snap_buf *b) { return rtc_save(o, b); }
static int ld_rtc(void *o, struct snap_cur *c) { return rtc_load(o, c); }
static int sv_pm(void *o, struct snap_buf *b) { return pm_save(o, b); }
static int ld_pm(void *o, struct snap_cur *c) { return pm_load(o, c); }

struct sink { uint8_t out[64]; size_t n; int irq, irq_calls; };
static void sink_tx(void *o, uint8_t b)
{
	struct sink *s = o;
	if (s->n < sizeof(s->out))
		s->out[s->n++] = b;
}
static void sink_irq(void *o, int level)
{
	struct sink *s = o;
	s->irq = level;
	s->irq_calls++;
}

static void test_serial(void **state)
{
	struct serial a, b;
	struct sink ka = { 0 }, kb = { 0 };
	(void)state;

	serial_init(&a, sink_tx, sink_irq, &ka);
	serial_init(&b, sink_tx, sink_irq, &kb);
	serial_write(&a, 3, 0x80);          /* DLAB: divisor 12 */
	serial_write(&a, 0, 0x0c);
	serial_write(&a, 1, 0x00);
	serial_write(&a, 3, 0x1b);          /* 8E1 */
	serial_write(&a, 2, 0xc1);          /* FIFO on */
	serial_write(&a, 7, 0x5a);
	serial_write(&a, 4, 0x0b);
	serial_write(&a, 1, 0x03);          /* RDI + THRI */
	(void)serial_read(&a, 2);           /* acknowledges THR empty */
	/* A FIFO that wrapped: 60 in, 58 out, 40 in. */
	uint8_t bytes[60];
	for (unsigned i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)i;
	assert_int_equal(serial_receive(&a, bytes, 60), 60);
	for (unsigned i = 0; i < 58; i++)
		assert_int_equal(serial_read(&a, 0), i);
	for (unsigned i = 0; i < 40; i++)
		bytes[i] = (uint8_t)(100 + i);
	assert_int_equal(serial_receive(&a, bytes, 40), 40);
	assert_int_equal(ka.irq, 1);

	roundtrip(sv_serial, ld_serial, &a, &b);
	assert_int_equal(kb.irq, 1);        /* the line is driven as saved */
	assert_int_equal(serial_read(&b, 3), 0x1b);
	assert_int_equal(serial_read(&b, 1), 0x03);
	assert_int_equal(serial_read(&b, 4), 0x0b);
	assert_int_equal(serial_read(&b, 7), 0x5a);
	assert_int_equal(serial_read(&b, 2), 0xc4);   /* RX data, FIFOs on */
	serial_write(&b, 3, 0x9b);
	assert_int_equal(serial_read(&b, 0), 0x0c);
	serial_write(&b, 3, 0x1b);
	for (unsigned i = 0; i < 42; i++) {
		uint8_t want = i < 2 ? (uint8_t)(58 + i) : (uint8_t)(100 + i - 2);
		assert_int_equal(serial_read(&b, 5) & 1, 1);
		assert_int_equal(serial_read(&b, 0), want);
	}
	assert_int_equal(serial_read(&b, 5) & 1, 0);
	assert_int_equal(kb.irq, 0);        /* FIFO empty, THRI acknowledged */

	/* A FIFO count beyond the FIFO is refused. */
	struct snap_buf sb;
	struct snap_cur c;
	snap_buf_init(&sb);
	assert_int_equal(serial_save(&a, &sb), 0);
	sb.p[11] = SERIAL_FIFO_SIZE + 1;
	snap_cur_init(&c, sb.p, sb.len);
	assert_int_equal(serial_load(&b, &c), -EINVAL);
	snap_buf_free(&sb);
	pthread_mutex_destroy(&a.lock);
	pthread_mutex_destroy(&b.lock);
}

static void no_irq(void *o) { (void)o; }

static void test_i8042(void **state)
{
	struct i8042 a, b;
	(void)state;

	i8042_init(&a, no_irq, no_irq, NULL);
	i8042_init(&b, no_irq, no_irq, NULL);
	i8042_write_cmd(&a, 0x60);          /* command byte: no translation */
	i8042_write_data(&a, 0x05);
	assert_int_equal(i8042_type_ctrl_alt_del(&a), 0);
	(void)i8042_read_data(&a);          /* the FIFO's head moves */
	i8042_write_data(&a, 0xed);         /* LEDs: argument pending */
	i8042_write_cmd(&a, 0xd1);          /* output port write pending */

	roundtrip(sv_i8042, ld_i8042, &a, &b);
	assert_int_equal(i8042_read_status(&b), i8042_read_status(&a));
	i8042_write_data(&a, 0x01);         /* both: output port, no reset */
	i8042_write_data(&b, 0x01);
	i8042_write_data(&a, 0x02);         /* both: the LED argument, ACKed */
	i8042_write_data(&b, 0x02);
	for (unsigned i = 0; i < I8042_FIFO; i++)
		assert_int_equal(i8042_read_data(&b), i8042_read_data(&a));
	pthread_mutex_destroy(&a.lock);
	pthread_mutex_destroy(&b.lock);
}

static void test_rtc_pm(void **state)
{
	struct rtc ra, rb;
	struct pm pa, pb;
	(void)state;

	rtc_init(&ra);
	rtc_init(&rb);
	for (unsigned i = 0; i < 128; i++)
		ra.cmos[i] = (uint8_t)(i * 3);
	ra.index = 0x42;
	roundtrip(sv_rtc, ld_rtc, &ra, &rb);
	assert_int_equal(rb.index, 0x42);
	assert_memory_equal(rb.cmos, ra.cmos, 128);

	pm_init(&pa, NULL);
	pm_init(&pb, NULL);
	pa.evt_sts = 0x0001;
	pa.evt_en = 0x0120;
	pa.cnt = 0x1401;
	roundtrip(sv_pm, ld_pm, &pa, &pb);
	assert_int_equal(pb.evt_en, 0x0120);
	assert_int_equal(pb.cnt, 0x1401);
	pthread_mutex_destroy(&ra.lock);
	pthread_mutex_destroy(&rb.lock);
	pthread_mutex_destroy(&pa.lock);
	pthread_mutex_destroy(&pb.lock);
}

/* --- a fake VM built from the real device_desc list --- */

#define RAM_SIZE   (16u << 20)
#define RNG_SLOT   3                 /* blk, net, rng attach in this order */
#define RNG_RINGS  0x100000
#define RNG_BUFS   0x200000
#define BAR_MOVED  (PCI_MMIO_BASE + 0x80000)

struct fvm {
	struct vm vm;
	int peer;
};

static char disk_path[64];

static void fvm_add(struct vm *vm, struct virtio_dev *d, const char *err)
{
	char e2[256];
	if (!d)
		fail_msg("create: %s", err);
	vm->virtio[vm->nvirtio++] = d;
	if (virtio_pci_add(vm, d, e2, sizeof(e2)))
		fail_msg("attach: %s", e2);
	vm->nvirtio_attached++;
}

static void fvm_build(struct fvm *f, uint8_t *ram, bool rng, const char *net_id)
{
	struct vm *vm = &f->vm;
	char err[256];
	int sv[2];

	memset(f, 0, sizeof(*f));
	gmem_init(&vm->mem, ram, RAM_SIZE);
	irq_router_init(&vm->irq, -1, &fake_kvm);
	assert_int_equal(eventloop_init(&vm->io), 0);
	vm->io_ready = 1;
	pthread_mutex_init(&vm->stop_lock, NULL);
	for (const struct device_desc *const *d = __start_wafer_devices; d < __stop_wafer_devices; d++)
		assert_int_equal((*d)->create(vm), 0);
	struct blk_config bc = { .path = disk_path, .id = "disk0" };
	fvm_add(vm, virtio_blk_create(&vm->mem, &vm->io, &bc, err, sizeof(err)), err);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	f->peer = sv[1];
	struct net_config nc = { .id = net_id, .vm_name = "vm", .ifname = "t" };
	fvm_add(vm, virtio_net_create_fd(&vm->mem, &vm->io, &nc, sv[0], err, sizeof(err)), err);
	if (rng)
		fvm_add(vm, virtio_rng_create(&vm->mem, err, sizeof(err)), err);
}

static void fvm_destroy(struct fvm *f)
{
	struct vm *vm = &f->vm;
	size_t n = (size_t)(__stop_wafer_devices - __start_wafer_devices);

	eventloop_stop(&vm->io);
	for (size_t i = n; i-- > 0;)
		if (__start_wafer_devices[i]->destroy)
			__start_wafer_devices[i]->destroy(vm);
	eventloop_destroy(&vm->io);
	irq_router_destroy(&vm->irq);
	pthread_mutex_destroy(&vm->stop_lock);
	close(f->peer);
}

static uint64_t pio(struct vm *vm, uint16_t port, unsigned size, bool write, uint64_t v)
{
	assert_int_equal(bus_access(&vm->pio, port, (uint8_t *)&v, size, write), 0);
	return v;
}

static uint64_t mmio_rd(struct vm *vm, uint64_t addr, unsigned size)
{
	uint64_t v = 0;
	assert_int_equal(bus_access(&vm->mmio, addr, (uint8_t *)&v, size, 0), 0);
	return v;
}

static void mmio_wr(struct vm *vm, uint64_t addr, uint64_t v, unsigned size)
{
	assert_int_equal(bus_access(&vm->mmio, addr, (uint8_t *)&v, size, 1), 0);
}

#define COMMON(x) (VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_COMMON_##x)

/* The rng driver: BAR moved, MSI-X vector 1 for the queue, EVENT_IDX off. */
static void rng_driver_init(struct vm *vm, struct ring *r)
{
	struct pci_dev *pd = vm->pci->slots[RNG_SLOT];
	uint64_t bar = BAR_MOVED;

	pci_cfg_write(vm->pci, RNG_SLOT, 0, PCI_BASE_ADDRESS_0, 4, (uint32_t)bar);
	assert_int_equal(pci_cfg_read(vm->pci, RNG_SLOT, 0, PCI_BASE_ADDRESS_0, 4), bar);
	mmio_wr(vm, bar + COMMON(STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	mmio_wr(vm, bar + COMMON(GFSELECT), 1, 4);
	mmio_wr(vm, bar + COMMON(GF), 1, 4);                  /* VERSION_1 */
	mmio_wr(vm, bar + COMMON(STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		VIRTIO_STATUS_FEATURES_OK, 1);
	*r = (struct ring){ &vm->mem, RNG_RINGS, RNG_RINGS + 0x1000, RNG_RINGS + 0x2000, 16, 0, 0 };
	mmio_wr(vm, bar + COMMON(Q_SELECT), 0, 2);
	mmio_wr(vm, bar + COMMON(Q_SIZE), r->size, 2);
	mmio_wr(vm, bar + COMMON(Q_DESC), r->desc, 8);
	mmio_wr(vm, bar + COMMON(Q_DRIVER), r->avail, 8);
	mmio_wr(vm, bar + COMMON(Q_DEVICE), r->used, 8);
	mmio_wr(vm, bar + COMMON(Q_MSIX), 1, 2);
	mmio_wr(vm, bar + COMMON(Q_ENABLE), 1, 2);
	/* MSI-X entry 1: an address and data, unmasked; MSI-X on. */
	mmio_wr(vm, bar + VIRTIO_PCI_MSIX_TABLE + 16, 0xfee00000, 4);
	mmio_wr(vm, bar + VIRTIO_PCI_MSIX_TABLE + 24, 0x41, 4);
	mmio_wr(vm, bar + VIRTIO_PCI_MSIX_TABLE + 28, 0, 4);
	pci_cfg_write(vm->pci, RNG_SLOT, 0, pd->msix.cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
	mmio_wr(vm, bar + COMMON(STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK, 1);
}

static void rng_request(struct ring *r, unsigned i, bool publish)
{
	struct seg s = { RNG_BUFS + 0x100 * i, 16, true };
	ring_post(r, &s, 1, publish);
}

/* The platform devices and the rng put in a state worth saving. */
static void fvm_dirty_up(struct vm *vm, struct ring *r)
{
	pio(vm, PORT_COM1 + 3, 1, true, 0x80);
	pio(vm, PORT_COM1 + 0, 1, true, 0x0c);
	pio(vm, PORT_COM1 + 3, 1, true, 0x03);
	pio(vm, PORT_COM1 + 7, 1, true, 0x5a);
	pio(vm, PORT_COM1 + 1, 1, true, 0x01);
	assert_int_equal(serial_receive(vm->console, (const uint8_t *)"hey", 3), 3);
	assert_int_equal(kvm.line[IRQ_COM1], 1);
	pio(vm, PORT_RTC_INDEX, 1, true, 0x30);
	pio(vm, PORT_RTC_DATA, 1, true, 0x77);
	pio(vm, PORT_RTC_INDEX, 1, true, 0x40);
	pio(vm, PORT_RTC_DATA, 1, true, 0x99);
	pio(vm, PORT_ACPI_PM1A_EVT + 2, 2, true, 0x0120);
	pio(vm, PORT_I8042_CMD, 1, true, 0x60);
	pio(vm, PORT_I8042_DATA, 1, true, 0x47);
	pio(vm, PORT_I8042_CMD, 1, true, 0x20);    /* command byte into the FIFO */

	rng_driver_init(vm, r);
	rng_request(r, 0, true);
	mmio_wr(vm, BAR_MOVED + VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	assert_true(wait_used(r, 1));
	rng_request(r, 1, false);   /* queued, published later, never notified */
}

static void snapshot_of(struct vm *vm, struct snap_buf *b)
{
	snap_buf_init(b);
	snap_put_header(b);
	assert_int_equal(state_devices_save(vm, b), 0);
	snap_put_end(b);
	assert_int_equal(b->err, 0);
}

static struct fvm fa, fb;
static uint8_t *ram_a, *ram_b;

static int vm_setup(void **state)
{
	(void)state;
	memset(&kvm, 0, sizeof(kvm));
	ram_a = calloc(1, RAM_SIZE);
	ram_b = calloc(1, RAM_SIZE);
	snprintf(disk_path, sizeof(disk_path), "/tmp/wafer-state-XXXXXX");
	int fd = mkstemp(disk_path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	return 0;
}

static int vm_teardown(void **state)
{
	(void)state;
	unlink(disk_path);
	free(ram_a);
	free(ram_b);
	return 0;
}

static void test_vm_roundtrip(void **state)
{
	struct snap_buf b;
	struct snap_reader r;
	struct ring ring;
	char err[256] = "";
	uint32_t id, len;
	(void)state;

	memset(ram_a, 0, RAM_SIZE);
	fvm_build(&fa, ram_a, true, "net0");
	assert_int_equal(eventloop_start(&fa.vm.io, "io-a"), 0);
	fvm_dirty_up(&fa.vm, &ring);
	uint8_t mac_a[6];
	struct virtio_dev *net_a = fa.vm.virtio[1];
	net_a->ops->config_read(net_a, 0, mac_a, 6);
	snapshot_of(&fa.vm, &b);     /* pauses the running loop */
	/* The source goes on after its snapshot. */
	assert_int_equal(fa.vm.io.pause_count, 0);
	memcpy(ram_b, ram_a, RAM_SIZE);
	fvm_destroy(&fa);

	memset(&kvm, 0, sizeof(kvm));
	fvm_build(&fb, ram_b, true, "other-id");    /* another MAC until loaded */
	struct vm *vm = &fb.vm;
	assert_int_equal(snap_reader_open(&r, b.p, b.len, err, sizeof(err)), 0);
	if (state_devices_load(vm, &r, err, sizeof(err)))
		fail_msg("load: %s", err);

	/* serial: registers, FIFO, and IRQ 4 driven as saved */
	assert_int_equal(kvm.line[IRQ_COM1], 1);
	assert_int_equal(pio(vm, PORT_COM1 + 3, 1, false, 0) & 0xff, 0x03);
	assert_int_equal(pio(vm, PORT_COM1 + 7, 1, false, 0) & 0xff, 0x5a);
	assert_int_equal(pio(vm, PORT_COM1 + 1, 1, false, 0) & 0xff, 0x01);
	for (const char *p = "hey"; *p; p++)
		assert_int_equal(pio(vm, PORT_COM1, 1, false, 0) & 0xff, *p);
	assert_int_equal(kvm.line[IRQ_COM1], 0);
	/* rtc: the index register, then CMOS */
	assert_int_equal(pio(vm, PORT_RTC_DATA, 1, false, 0) & 0xff, 0x99);
	pio(vm, PORT_RTC_INDEX, 1, true, 0x30);
	assert_int_equal(pio(vm, PORT_RTC_DATA, 1, false, 0) & 0xff, 0x77);
	/* acpi-pm and i8042 */
	assert_int_equal(pio(vm, PORT_ACPI_PM1A_EVT + 2, 2, false, 0) & 0xffff, 0x0120);
	assert_true(pio(vm, PORT_I8042_CMD, 1, false, 0) & 1);
	assert_int_equal(pio(vm, PORT_I8042_DATA, 1, false, 0) & 0xff, 0x47);

	/* PCI: BAR 0 answers at the moved address only, MSI-X as programmed */
	struct pci_dev *pd = vm->pci->slots[RNG_SLOT];
	assert_int_equal(pci_cfg_read(vm->pci, RNG_SLOT, 0, PCI_BASE_ADDRESS_0, 4), BAR_MOVED);
	uint64_t v = 0;
	assert_int_equal(bus_access(&vm->mmio, PCI_MMIO_BASE + 2 * VIRTIO_PCI_BAR_SIZE, (uint8_t *)&v,
				    1, 0), -ENOENT);
	assert_int_equal(mmio_rd(vm, BAR_MOVED + COMMON(STATUS), 1), 0x0f);
	assert_int_equal(mmio_rd(vm, BAR_MOVED + VIRTIO_PCI_MSIX_TABLE + 16, 4), 0xfee00000);
	assert_int_equal(mmio_rd(vm, BAR_MOVED + VIRTIO_PCI_MSIX_TABLE + 24, 4), 0x41);
	assert_true(pci_cfg_read(vm->pci, RNG_SLOT, 0, pd->msix.cap + PCI_MSIX_FLAGS, 2) &
		    PCI_MSIX_FLAGS_ENABLE);
	assert_true(kvm.ioeventfds > 0);   /* the notify ioeventfds followed the BAR */
	/* net: the source's MAC */
	uint8_t mac_b[6];
	vm->virtio[1]->ops->config_read(vm->virtio[1], 0, mac_b, 6);
	assert_memory_equal(mac_b, mac_a, 6);

	/* The queue continues: the chain queued before the snapshot is picked
	 * up without a notify, the next one by a notify at the new address. */
	ring.mem = &vm->mem;        /* the driver's rings, now in B's RAM */
	uint16_t avail = ring.avail_idx;
	assert_int_equal(gmem_write(&vm->mem, ring.avail + 2, &avail, 2), 0);
	assert_int_equal(eventloop_start(&vm->io, "io-b"), 0);
	assert_true(wait_used(&ring, 2));
	ring_used(&ring, 1, &id, &len);
	assert_int_equal(id, 1);
	assert_int_equal(len, 16);
	rng_request(&ring, 2, true);
	mmio_wr(vm, BAR_MOVED + VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	assert_true(wait_used(&ring, 3));
	assert_true(pd->msix.fired >= 1);
	fvm_destroy(&fb);
	snap_buf_free(&b);
}

/* The same state with the version of section name changed (written anew,
 * so every checksum is right). */
static void set_version(struct snap_buf *b, const char *name, uint32_t version)
{
	struct snap_reader r;
	struct snap_section s;
	struct snap_buf out;
	char err[128];
	size_t pos = 0;

	assert_int_equal(snap_reader_open(&r, b->p, b->len, err, sizeof(err)), 0);
	snap_buf_init(&out);
	snap_put_header(&out);
	while (snap_reader_next(&r, &pos, &s)) {
		size_t tok = snap_section_begin(&out, s.name, s.instance,
						strcmp(s.name, name) ? s.version : version);
		snap_buf_put(&out, s.data, s.len);
		snap_section_end(&out, tok);
	}
	snap_put_end(&out);
	assert_int_equal(out.err, 0);
	snap_buf_free(b);
	*b = out;
}

static void load_expect(struct snap_buf *b, bool rng, int want, const char *msg)
{
	struct snap_reader r;
	char err[256] = "";

	fvm_build(&fb, ram_b, rng, "net0");
	if (snap_reader_open(&r, b->p, b->len, err, sizeof(err)))
		fail_msg("open: %s", err);
	assert_int_equal(state_devices_load(&fb.vm, &r, err, sizeof(err)), want);
	if (!strstr(err, msg))
		fail_msg("error '%s' does not say '%s'", err, msg);
	fvm_destroy(&fb);
}

static void test_vm_refusals(void **state)
{
	struct snap_buf b;
	struct ring ring;
	(void)state;

	memset(ram_a, 0, RAM_SIZE);
	fvm_build(&fa, ram_a, true, "net0");
	rng_driver_init(&fa.vm, &ring);
	snapshot_of(&fa.vm, &b);
	fvm_destroy(&fa);
	memcpy(ram_b, ram_a, RAM_SIZE);

	/* A VM without the rng: the device list differs at slot 3. */
	load_expect(&b, false, -ENODEV, "pci slot 3");
	/* A section version this wafer does not read. */
	set_version(&b, "rtc", 2);
	load_expect(&b, true, -EINVAL, "rtc/0: version 2");
	set_version(&b, "rtc", RTC_STATE_VERSION);
	set_version(&b, "virtio-net", 7);
	load_expect(&b, true, -EINVAL, "virtio-net/2: version 7");
	snap_buf_free(&b);
}

/* The transport payload of the rng, with one queue field overwritten. */
#define VP_HDR      43   /* ids, feature words, selectors, status..queue_sel */
#define VQ_SIZE_OFF 0
#define VQ_DESC_OFF 5
#define VQ_USED_IDX_OFF 31
static void test_hostile_queue(void **state)
{
	struct ring ring;
	struct snap_buf b, again;
	struct snap_cur c;
	char err[256];
	(void)state;

	fvm_build(&fa, ram_a, true, "net0");
	rng_driver_init(&fa.vm, &ring);
	struct virtio_pci *vp = fa.vm.pci->slots[RNG_SLOT]->opaque;
	snap_buf_init(&b);
	assert_int_equal(virtio_pci_save(vp, &b), 0);
	assert_int_equal(b.len, VP_HDR + 36);

	static const struct { unsigned off, len; uint64_t v; const char *why; } bad[] = {
		{ VQ_SIZE_OFF, 2, 3, "power of two" },
		{ VQ_SIZE_OFF, 2, 0, "power of two" },
		{ VQ_SIZE_OFF, 2, 512, "power of two" },           /* above the device's 256 */
		{ VQ_DESC_OFF, 8, RAM_SIZE - 16, "outside guest RAM" },
		{ VQ_DESC_OFF, 8, 0xfffffffffffff000ull, "outside guest RAM" },
		{ VQ_DESC_OFF, 8, RNG_RINGS + 8, "misaligned" },
		{ VQ_USED_IDX_OFF, 2, 1, "used index ahead" },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t *p = malloc(b.len);
		memcpy(p, b.p, b.len);
		memcpy(p + VP_HDR + bad[i].off, &bad[i].v, bad[i].len);
		snap_cur_init(&c, p, b.len);
		err[0] = '\0';
		assert_int_equal(virtio_pci_load(vp, &c, err, sizeof(err)), -EINVAL);
		if (!strstr(err, "queue 0") || !strstr(err, bad[i].why))
			fail_msg("case %u: '%s'", i, err);
		free(p);
	}
	/* Truncated and trailing: refused, state untouched. */
	snap_cur_init(&c, b.p, b.len - 1);
	assert_int_equal(virtio_pci_load(vp, &c, err, sizeof(err)), -EINVAL);
	uint8_t *longer = calloc(1, b.len + 1);
	memcpy(longer, b.p, b.len);
	snap_cur_init(&c, longer, b.len + 1);
	assert_int_equal(virtio_pci_load(vp, &c, err, sizeof(err)), -EINVAL);
	free(longer);
	snap_buf_init(&again);
	assert_int_equal(virtio_pci_save(vp, &again), 0);
	assert_int_equal(again.len, b.len);
	assert_memory_equal(again.p, b.p, b.len);
	/* A vector beyond the device's: refused too. */
	uint16_t vec = 9;
	memcpy(b.p + VP_HDR + 3, &vec, 2);
	snap_cur_init(&c, b.p, b.len);
	assert_int_equal(virtio_pci_load(vp, &c, err, sizeof(err)), -EINVAL);
	snap_buf_free(&again);
	snap_buf_free(&b);
	fvm_destroy(&fa);
}

/* pci-dev payloads: a BAR placement that is not aligned, an MSI-X count
 * that is not the device's, truncation. */
static void test_pci_dev_refusals(void **state)
{
	struct ring ring;
	struct snap_buf b;
	struct snap_cur c;
	(void)state;

	fvm_build(&fa, ram_a, true, "net0");
	rng_driver_init(&fa.vm, &ring);
	struct pci_dev *pd = fa.vm.pci->slots[RNG_SLOT];
	snap_buf_init(&b);
	assert_int_equal(pci_dev_save(pd, &b), 0);
	const size_t bar0_addr = PCI_CFG_SIZE + 1, nvec = PCI_CFG_SIZE + 9 * PCI_NUM_BARS;
	uint64_t a;
	memcpy(&a, b.p + bar0_addr, 8);
	assert_int_equal(a, BAR_MOVED);
	a += 0x1000;
	memcpy(b.p + bar0_addr, &a, 8);
	snap_cur_init(&c, b.p, b.len);
	assert_int_equal(pci_dev_load(pd, &c), -EINVAL);
	a -= 0x1000;
	memcpy(b.p + bar0_addr, &a, 8);
	b.p[nvec] = 7;
	snap_cur_init(&c, b.p, b.len);
	assert_int_equal(pci_dev_load(pd, &c), -EINVAL);
	b.p[nvec] = (uint8_t)pd->msix.nvec;
	snap_cur_init(&c, b.p, b.len - 1);
	assert_int_equal(pci_dev_load(pd, &c), -EINVAL);
	snap_cur_init(&c, b.p, b.len);
	assert_int_equal(pci_dev_load(pd, &c), 0);
	assert_int_equal(mmio_rd(&fa.vm, BAR_MOVED + COMMON(STATUS), 1), 0x0f);
	snap_buf_free(&b);
	fvm_destroy(&fa);
}

/* --- quiescing and the rings --- */

#define BLK_RINGS 0x10000
#define BLK_HDRS  0x20000
#define BLK_DATA  0x40000

/* A blk device without an event loop on its own RAM, queue 0 running. */
struct blkfx {
	uint8_t *ram;
	struct guest_mem mem;
	struct ring r;
	struct virtio_dev *d;
};

static void blkfx_open(struct blkfx *f)
{
	char err[256];
	struct blk_config cfg = { .path = disk_path, .id = "d" };

	memset(f, 0, sizeof(*f));
	f->ram = calloc(1, RAM_SIZE);
	gmem_init(&f->mem, f->ram, RAM_SIZE);
	f->d = virtio_blk_create(&f->mem, NULL, &cfg, err, sizeof(err));
	if (!f->d)
		fail_msg("%s", err);
	f->d->features = 1ull << VIRTIO_F_VERSION_1;
	f->r = (struct ring){ &f->mem, BLK_RINGS, BLK_RINGS + 0x1000, BLK_RINGS + 0x2000, 64, 0, 0 };
	struct virtq *q = &f->d->vq[0];
	q->size = f->r.size;
	q->desc_gpa = f->r.desc;
	q->avail_gpa = f->r.avail;
	q->used_gpa = f->r.used;
	assert_int_equal(virtq_init(q, &f->mem), 0);
	q->ready = true;
	f->d->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
}

static void blkfx_close(struct blkfx *f)
{
	f->d->ops->destroy(f->d);
	gmem_free(&f->mem);   /* the dirty bitmap; ram is ours */
	free(f->ram);
}

/* A read of len bytes at sector 0 into BLK_DATA + i * 0x10000. */
static void blk_read_req(struct ring *r, unsigned i, uint32_t len)
{
	struct { uint32_t type, reserved; uint64_t sector; } hdr = { 0, 0, 0 };
	uint64_t h = BLK_HDRS + 64u * i;
	assert_int_equal(gmem_write(r->mem, h, &hdr, sizeof(hdr)), 0);
	struct seg s[3] = {
		{ h, 16, false },
		{ BLK_DATA + 0x10000u * i, len, true },
		{ h + 32, 1, true },
	};
	ring_post(r, s, 3, true);
}

static void test_blk_quiesce(void **state)
{
	struct blkfx f;
	(void)state;

	blkfx_open(&f);
	struct virtio_dev *d = f.d;
	for (unsigned i = 0; i < 4; i++)
		blk_read_req(&f.r, i, 4096);
	d->ops->queue_notify(d, 0);     /* submitted; nobody polls the backend */
	assert_int_equal(ring_used_idx(&f.r), 0);
	assert_int_equal(d->ops->quiesce(d), 0);
	assert_int_equal(ring_used_idx(&f.r), 4);
	assert_int_equal(d->vq[0].last_avail, 4);
	/* blk config: a disk of another size is refused, naming the disk. */
	struct snap_buf b;
	struct snap_cur c;
	char err[128] = "";
	snap_buf_init(&b);
	assert_int_equal(d->ops->save(d, &b), 0);
	uint64_t cap = 4096;
	memcpy(b.p, &cap, 8);
	snap_cur_init(&c, b.p, b.len);
	assert_int_equal(d->ops->load(d, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "disk d"));
	snap_buf_free(&b);
	blkfx_close(&f);
}

/* --- virtio-net: a frame half-placed at snapshot time arrives whole --- */

#define NET_RX_RINGS 0x10000
#define NET_TX_RINGS 0x14000
#define NET_BUFS     0x30000
#define F_MRG_RXBUF  (1ull << 15)

static struct virtio_dev *net_standalone(struct guest_mem *mem, const char *id, int *peer,
					 struct ring *rx)
{
	char err[256];
	int sv[2];
	struct net_config cfg = { .id = id, .vm_name = "vm", .ifname = "t" };

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	*peer = sv[1];
	struct virtio_dev *d = virtio_net_create_fd(mem, NULL, &cfg, sv[0], err, sizeof(err));
	if (!d)
		fail_msg("%s", err);
	d->device_features = d->ops->features(d) | 1ull << VIRTIO_F_VERSION_1;
	d->features = F_MRG_RXBUF | 1ull << VIRTIO_F_VERSION_1;
	*rx = (struct ring){ mem, NET_RX_RINGS, NET_RX_RINGS + 0x1000, NET_RX_RINGS + 0x2000, 16, 0, 0 };
	for (unsigned i = 0; i < 2; i++) {
		struct virtq *q = &d->vq[i];
		uint64_t base = i ? NET_TX_RINGS : NET_RX_RINGS;
		*q = (struct virtq){ .size = 16, .desc_gpa = base, .avail_gpa = base + 0x1000,
				     .used_gpa = base + 0x2000, .msix_vector = VIRTIO_NO_VECTOR };
		assert_int_equal(virtq_init(q, mem), 0);
		q->ready = true;
	}
	d->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
		    VIRTIO_STATUS_DRIVER_OK;
	return d;
}

static void net_rx_buf(struct ring *r, unsigned i)
{
	struct seg s = { NET_BUFS + 0x100u * i, 64, true };
	ring_post(r, &s, 1, true);
}

static void test_net_pending_frame(void **state)
{
	struct guest_mem mem = { 0 };
	struct ring rx;
	int peer_a, peer_b;
	uint8_t frame[12 + 188], got[200];
	(void)state;

	uint8_t *ram = calloc(1, RAM_SIZE);
	gmem_init(&mem, ram, RAM_SIZE);
	struct virtio_dev *a = net_standalone(&mem, "a", &peer_a, &rx);
	assert_int_equal(a->ops->activate(a), 0);
	net_rx_buf(&rx, 0);
	memset(frame, 0, 12);
	for (unsigned i = 12; i < sizeof(frame); i++)
		frame[i] = (uint8_t)i;
	assert_int_equal(send(peer_a, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
	a->ops->queue_notify(a, 0);     /* 64 bytes placed, waiting for more chains */
	assert_int_equal(ring_used_idx(&rx), 0);
	assert_int_equal(a->vq[0].last_avail, 1);
	virtio_net_set_link(a, false);
	assert_int_equal(a->ops->quiesce(a), 0);
	assert_int_equal(a->vq[0].last_avail, 0);     /* the chain went back */

	struct snap_buf b;
	struct snap_cur c;
	char err[64];
	uint8_t mac_a[6], mac_b[6], cfg[8];
	snap_buf_init(&b);
	assert_int_equal(a->ops->save(a, &b), 0);
	a->ops->config_read(a, 0, mac_a, 6);
	struct virtq q0 = a->vq[0], q1 = a->vq[1];
	a->ops->destroy(a);
	close(peer_a);

	struct virtio_dev *nb = net_standalone(&mem, "b", &peer_b, &rx);
	nb->vq[0] = q0;
	nb->vq[1] = q1;
	snap_cur_init(&c, b.p, b.len - 1);
	assert_int_equal(nb->ops->load(nb, &c, err, sizeof(err)), -EINVAL);
	snap_cur_init(&c, b.p, b.len);
	assert_int_equal(nb->ops->load(nb, &c, err, sizeof(err)), 0);
	nb->ops->config_read(nb, 0, cfg, 8);
	memcpy(mac_b, cfg, 6);
	assert_memory_equal(mac_b, mac_a, 6);
	assert_int_equal(cfg[6] | cfg[7] << 8, 0);     /* link down, as saved */
	assert_int_equal(nb->ops->activate(nb), 0);
	virtio_net_set_link(nb, true);
	rx.next_desc = 1;          /* the driver's view: chain 0 is still out */
	rx.avail_idx = 1;
	for (unsigned i = 1; i < 4; i++)
		net_rx_buf(&rx, i);
	nb->ops->queue_notify(nb, 0);
	assert_int_equal(ring_used_idx(&rx), 4);     /* 64 + 64 + 64 + 8 */
	uint32_t id, len;
	ring_used(&rx, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 64);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(gmem_read(&mem, NET_BUFS + 0x100u * i, got + 64 * i,
					   i < 3 ? 64 : 8), 0);
	assert_int_equal(got[10], 4);                   /* num_buffers */
	assert_memory_equal(got + 12, frame + 12, sizeof(frame) - 12);
	nb->ops->destroy(nb);
	close(peer_b);
	snap_buf_free(&b);
	free(ram);
}

/* Found by fuzz_state_devices: rings where the used index lands on the
 * avail index, with used_idx ahead of last_avail, kept rng's loop going
 * forever (each push published another chain). Now a notification does at
 * most a ring's worth, and such a state is refused at load
 * (test_hostile_queue). */
static void test_rng_overlapping_rings(void **state)
{
	struct guest_mem mem = { 0 };
	char err[64];
	(void)state;

	uint8_t *ram = calloc(1, RAM_SIZE);
	gmem_init(&mem, ram, RAM_SIZE);
	struct virtio_dev *d = virtio_rng_create(&mem, err, sizeof(err));
	assert_non_null(d);
	struct virtq *q = &d->vq[0];
	*q = (struct virtq){ .size = 16, .desc_gpa = 0x1000, .avail_gpa = 0x2000, .used_gpa = 0x2000,
			     .last_avail = 0, .used_idx = 1 };
	assert_int_equal(virtq_init(q, &mem), 0);
	q->ready = true;
	d->status = VIRTIO_STATUS_DRIVER_OK;
	uint16_t one = 1;
	assert_int_equal(gmem_write(&mem, 0x2002, &one, 2), 0);
	d->ops->queue_notify(d, 0);     /* returns */
	assert_true(q->last_avail <= 16);
	d->ops->destroy(d);
	free(ram);
}

/* --- migration's dirty log --- */

static bool page_dirty(const uint64_t *bm, uint64_t gpa)
{
	uint64_t pg = gpa >> GMEM_PAGE_SHIFT;
	return (bm[pg / 64] >> (pg % 64)) & 1;
}

static void test_dirty_used_ring(void **state)
{
	struct guest_mem mem = { 0 };
	(void)state;

	uint8_t *ram = calloc(1, RAM_SIZE);
	gmem_init(&mem, ram, RAM_SIZE);
	assert_int_equal(gmem_dirty_start(&mem), 0);
	struct virtq q = { .size = 256, .desc_gpa = 0x10000, .avail_gpa = 0x20000,
			   .used_gpa = 0x30000 + 0xc00 };
	assert_int_equal(virtq_init(&q, &mem), 0);
	q.ready = true;
	q.used_idx = 200;   /* slot 200 is on the used ring's second page */
	uint64_t *bm = calloc(gmem_bitmap_words(&mem), 8);
	assert_int_equal(virtq_push(&q, 3, 16), 0);
	gmem_dirty_harvest(&mem, bm);
	assert_true(page_dirty(bm, 0x30000));      /* used idx */
	assert_true(page_dirty(bm, 0x31000));      /* the entry */
	assert_false(page_dirty(bm, 0x10000));
	assert_false(page_dirty(bm, 0x20000));
	free(bm);
	gmem_free(&mem);
	free(ram);
}

static void test_dirty_blk_read(void **state)
{
	struct blkfx f;
	(void)state;

	blkfx_open(&f);
	blk_read_req(&f.r, 0, 3 * 4096);
	uint64_t *bm = calloc(gmem_bitmap_words(&f.mem), 8);
	assert_int_equal(gmem_dirty_start(&f.mem), 0);
	f.d->ops->queue_notify(f.d, 0);
	gmem_dirty_harvest(&f.mem, bm);
	/* Popped and submitted, not completed: no data written yet. */
	for (unsigned i = 0; i < 3; i++)
		assert_false(page_dirty(bm, BLK_DATA + 4096u * i));
	while (ring_used_idx(&f.r) != 1)
		assert_true(virtio_blk_poll(f.d, true) >= 0);
	gmem_dirty_harvest(&f.mem, bm);
	for (unsigned i = 0; i < 3; i++)
		assert_true(page_dirty(bm, BLK_DATA + 4096u * i));
	assert_false(page_dirty(bm, BLK_DATA + 4096u * 3));
	assert_true(page_dirty(bm, BLK_HDRS));          /* the status byte's page */
	assert_true(page_dirty(bm, f.r.used));
	assert_false(page_dirty(bm, f.r.desc));
	free(bm);
	blkfx_close(&f);
}

/* --- the I/O loop parks --- */

static void count_event(void *opaque, uint32_t events)
{
	int *fd_count = opaque;
	uint64_t v;
	(void)events;
	if (read(fd_count[0], &v, sizeof(v)) == sizeof(v))
		__atomic_fetch_add(&fd_count[1], 1, __ATOMIC_SEQ_CST);
}

static void test_eventloop_pause(void **state)
{
	struct eventloop l;
	int fc[2];
	uint64_t one = 1;
	(void)state;

	assert_int_equal(eventloop_init(&l), 0);
	fc[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	fc[1] = 0;
	assert_int_equal(eventloop_add(&l, fc[0], EPOLLIN, count_event, fc), 0);
	eventloop_pause(&l);            /* not started: returns at once */
	eventloop_resume(&l);
	assert_int_equal(eventloop_start(&l, "t-io"), 0);
	eventloop_pause(&l);
	eventloop_pause(&l);            /* nests */
	assert_true(l.parked);
	assert_int_equal(write(fc[0], &one, 8), 8);
	usleep(50 * 1000);
	assert_int_equal(__atomic_load_n(&fc[1], __ATOMIC_SEQ_CST), 0);
	eventloop_resume(&l);
	usleep(20 * 1000);
	assert_int_equal(__atomic_load_n(&fc[1], __ATOMIC_SEQ_CST), 0);
	eventloop_resume(&l);
	for (int i = 0; i < 2000 && !__atomic_load_n(&fc[1], __ATOMIC_SEQ_CST); i++)
		usleep(1000);
	assert_int_equal(__atomic_load_n(&fc[1], __ATOMIC_SEQ_CST), 1);
	/* Stopping a paused loop does not hang. */
	eventloop_pause(&l);
	eventloop_stop(&l);
	eventloop_resume(&l);
	eventloop_destroy(&l);
	close(fc[0]);
}

int main(void)
{
	log_threshold = LOG_ERROR;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_serial),
		cmocka_unit_test(test_i8042),
		cmocka_unit_test(test_rtc_pm),
		cmocka_unit_test(test_vm_roundtrip),
		cmocka_unit_test(test_vm_refusals),
		cmocka_unit_test(test_hostile_queue),
		cmocka_unit_test(test_pci_dev_refusals),
		cmocka_unit_test(test_blk_quiesce),
		cmocka_unit_test(test_net_pending_frame),
		cmocka_unit_test(test_rng_overlapping_rings),
		cmocka_unit_test(test_dirty_used_ring),
		cmocka_unit_test(test_dirty_blk_read),
		cmocka_unit_test(test_eventloop_pause),
	};
	return cmocka_run_group_tests(tests, vm_setup, vm_teardown);
}
