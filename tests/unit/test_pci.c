/* PCI bus 0: config space through 0xCF8/0xCFC and ECAM, read-only fields,
 * BAR sizing and relocation (the MMIO bus follows), capability list, MSI-X
 * table/PBA/masking and INTx, with the KVM calls replaced by a recorder. */
#include <errno.h>
#include <linux/kvm.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "arch/x86/layout.h"
#include "devices/pci.h"
#include "vmm/bus.h"
#include "vmm/irq.h"

/* --- KVM recorder --- */
static struct {
	unsigned routing_calls, nroutes;
	struct kvm_irq_routing_entry routes[IRQ_MAX_MSI + 64];
	unsigned irqfds;
	uint32_t line_gsi;
	int line_level, line_calls;
} kvm;

static int fake_routing(struct irq_router *r, const void *e, unsigned n)
{
	(void)r;
	kvm.routing_calls++;
	kvm.nroutes = n;
	memcpy(kvm.routes, e, n * sizeof(kvm.routes[0]));
	return 0;
}
static int fake_irqfd(struct irq_router *r, int fd, uint32_t gsi, bool assign)
{
	(void)r; (void)fd; (void)gsi;
	kvm.irqfds += assign ? 1 : -1;
	return 0;
}
static int fake_ioeventfd(struct irq_router *r, uint64_t a, unsigned l, int fd, bool assign)
{
	(void)r; (void)a; (void)l; (void)fd; (void)assign;
	return 0;
}
static int fake_line(struct irq_router *r, uint32_t gsi, int level)
{
	(void)r;
	kvm.line_gsi = gsi;
	kvm.line_level = level;
	kvm.line_calls++;
	return 0;
}
static const struct irq_kvm_ops fake_kvm = { fake_routing, fake_irqfd, fake_ioeventfd, fake_line };

/* --- a device with two BARs: BAR0 plain registers, BAR2 MSI-X --- */
struct tdev {
	struct pci_dev pci;
	uint64_t last_off;
	unsigned hits;
};

static void t_bar0_read(void *o, uint64_t off, uint8_t *d, unsigned size)
{
	struct tdev *t = o;
	t->last_off = off;
	t->hits++;
	memset(d, 0x5a, size);
}
static void t_bar0_write(void *o, uint64_t off, const uint8_t *d, unsigned size)
{
	(void)d; (void)size;
	struct tdev *t = o;
	t->last_off = off;
	t->hits++;
}
static const struct bus_ops t_bar0_ops = { t_bar0_read, t_bar0_write };

#define MSIX_PBA_OFF 0x800
static void t_bar2_read(void *o, uint64_t off, uint8_t *d, unsigned size)
{
	struct tdev *t = o;
	if (off >= MSIX_PBA_OFF)
		pci_msix_pba_read(&t->pci, off - MSIX_PBA_OFF, d, size);
	else
		pci_msix_table_access(&t->pci, off, d, size, false);
}
static void t_bar2_write(void *o, uint64_t off, const uint8_t *d, unsigned size)
{
	struct tdev *t = o;
	if (off < MSIX_PBA_OFF)
		pci_msix_table_access(&t->pci, off, (uint8_t *)d, size, true);
}
static const struct bus_ops t_bar2_ops = { t_bar2_read, t_bar2_write };

static struct bus pio, mmio;
static struct irq_router irq;
static struct pci_bus pb;
static struct tdev td, td2;

static int setup(void **state)
{
	(void)state;
	memset(&pio, 0, sizeof(pio));
	memset(&mmio, 0, sizeof(mmio));
	memset(&kvm, 0, sizeof(kvm));
	irq_router_init(&irq, -1, &fake_kvm);
	assert_int_equal(pci_bus_init(&pb, &pio, &mmio, &irq), 0);
	memset(&td, 0, sizeof(td));
	pci_dev_init(&td.pci, "tdev", 0x1234, 0x5678, 7, 0x0b4001, 0x1234, 0x0042);
	assert_int_equal(pci_bar_add(&td.pci, 0, 0x1000, &t_bar0_ops, &td), 0);
	assert_int_equal(pci_bar_add(&td.pci, 2, 0x1000, &t_bar2_ops, &td), 0);
	assert_int_equal(pci_bar_add(&td.pci, 3, 0x1000 + 1, &t_bar0_ops, &td), -EINVAL);
	assert_int_equal(pci_bus_add(&pb, &td.pci), 0);
	assert_int_equal(td.pci.slot, 1);
	assert_int_equal(pci_msix_init(&td.pci, 4, 2, 0, MSIX_PBA_OFF), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pci_bus_destroy(&pb);
	assert_int_equal(kvm.irqfds, 0);   /* every irqfd released */
	irq_router_destroy(&irq);
	return 0;
}

/* --- accessors the way a guest does them --- */
static uint32_t pio_in(uint16_t port, unsigned size)
{
	uint32_t v = 0;
	assert_int_equal(bus_access(&pio, port, (uint8_t *)&v, size, 0), 0);
	return v;
}
static void pio_out(uint16_t port, uint32_t v, unsigned size)
{
	assert_int_equal(bus_access(&pio, port, (uint8_t *)&v, size, 1), 0);
}
static uint32_t cf8_addr(unsigned bus, unsigned slot, unsigned fn, unsigned reg)
{
	return 0x80000000u | bus << 16 | slot << 11 | fn << 8 | (reg & 0xfc);
}
static uint32_t cfg_in(unsigned slot, unsigned reg, unsigned size)
{
	pio_out(0xcf8, cf8_addr(0, slot, 0, reg), 4);
	return pio_in((uint16_t)(0xcfc + (reg & 3)), size);
}
static void cfg_out(unsigned slot, unsigned reg, uint32_t v, unsigned size)
{
	pio_out(0xcf8, cf8_addr(0, slot, 0, reg), 4);
	pio_out((uint16_t)(0xcfc + (reg & 3)), v, size);
}
static uint64_t ecam(unsigned slot, unsigned fn, unsigned reg)
{
	return PCI_ECAM_BASE + ((uint64_t)slot << 15) + ((uint64_t)fn << 12) + reg;
}
static uint32_t mmio_rd(uint64_t a, unsigned size)
{
	uint32_t v = 0;
	bus_access(&mmio, a, (uint8_t *)&v, size, 0);
	return v;
}
static int mmio_wr(uint64_t a, uint32_t v, unsigned size)
{
	return bus_access(&mmio, a, (uint8_t *)&v, size, 1);
}

static void test_type1(void **state)
{
	(void)state;
	/* Host bridge at 00:00.0 */
	assert_int_equal(cfg_in(0, 0, 4), 0x00081b36);
	assert_int_equal(cfg_in(0, 0x08, 4) >> 8, PCI_CLASS_HOST_BRIDGE);
	assert_int_equal(cfg_in(0, PCI_HEADER_TYPE, 1), 0);
	/* Our device, in byte/word/dword widths */
	assert_int_equal(cfg_in(1, 0, 4), 0x56781234);
	assert_int_equal(cfg_in(1, 2, 2), 0x5678);
	assert_int_equal(cfg_in(1, 3, 1), 0x56);
	assert_int_equal(cfg_in(1, PCI_REVISION_ID, 1), 7);
	assert_int_equal(cfg_in(1, 0x08, 4) >> 8, 0x0b4001);
	assert_int_equal(cfg_in(1, PCI_SUBSYSTEM_ID, 2), 0x42);
	/* The address latch reads back (Linux's type-1 probe). */
	pio_out(0xcf8, 0x80000000u, 4);
	assert_int_equal(pio_in(0xcf8, 4), 0x80000000u);
	/* Absent slots, functions 1-7, other buses: all ones. */
	assert_int_equal(cfg_in(5, 0, 4), 0xffffffffu);
	assert_int_equal(cfg_in(31, 0, 2), 0xffff);
	pio_out(0xcf8, cf8_addr(0, 1, 1, 0), 4);
	assert_int_equal(pio_in(0xcfc, 4), 0xffffffffu);
	pio_out(0xcf8, cf8_addr(1, 1, 0, 0), 4);
	assert_int_equal(pio_in(0xcfc, 4), 0xffffffffu);
	/* Enable bit clear: no config cycle. */
	pio_out(0xcf8, cf8_addr(0, 1, 0, 0) & 0x7fffffffu, 4);
	assert_int_equal(pio_in(0xcfc, 4), 0xffffffffu);
	/* A word at 0xCFE stays in the dword; a dword at 0xCFD would not. */
	pio_out(0xcf8, cf8_addr(0, 1, 0, 0), 4);
	assert_int_equal(pio_in(0xcfe, 2), 0x5678);
	assert_int_equal(pio_in(0xcfd, 4), 0xffffffffu);
}

static void test_ecam(void **state)
{
	(void)state;
	assert_int_equal(mmio_rd(ecam(0, 0, 0), 4), 0x00081b36);
	assert_int_equal(mmio_rd(ecam(1, 0, 0), 4), 0x56781234);
	assert_int_equal(mmio_rd(ecam(1, 0, 2), 2), 0x5678);
	assert_int_equal(mmio_rd(ecam(1, 0, 1), 1), 0x12);
	assert_int_equal(mmio_rd(ecam(7, 0, 0), 4), 0xffffffffu);
	assert_int_equal(mmio_rd(ecam(1, 3, 0), 4), 0xffffffffu);
	/* No extended capabilities: 0x100-0xFFF reads 0. */
	assert_int_equal(mmio_rd(ecam(1, 0, 0x100), 4), 0);
	assert_int_equal(mmio_rd(ecam(1, 0, 0xffc), 4), 0);
	/* Unaligned: ignored. */
	assert_int_equal(mmio_rd(ecam(1, 0, 1), 2), 0xffff);
	/* Writes land in the same space the ports see. */
	mmio_wr(ecam(1, 0, PCI_INTERRUPT_LINE), 0x0b, 1);
	assert_int_equal(cfg_in(1, PCI_INTERRUPT_LINE, 1), 0x0b);
	mmio_wr(ecam(1, 0, 0x100), 0x12345678, 4);
	assert_int_equal(mmio_rd(ecam(1, 0, 0x100), 4), 0);
}

static void test_readonly(void **state)
{
	(void)state;
	uint8_t before[256], after[256];
	for (unsigned r = 0; r < 256; r += 4)
		memcpy(before + r, &(uint32_t){ cfg_in(1, r, 4) }, 4);
	/* Hammer every read-only register with ones and zeros. */
	static const unsigned ro[] = { 0x00, 0x08, 0x2c, 0x34, 0x38 };
	for (unsigned i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
		cfg_out(1, ro[i], 0xffffffffu, 4);
		cfg_out(1, ro[i], 0, 4);
	}
	cfg_out(1, PCI_STATUS, 0xffff, 2);
	cfg_out(1, PCI_HEADER_TYPE, 0xff, 1);
	cfg_out(1, PCI_INTERRUPT_PIN, 0x04, 1);
	cfg_out(1, PCI_ROM_ADDRESS, 0xffffffffu, 4);
	for (unsigned r = 0; r < 256; r += 4)
		memcpy(after + r, &(uint32_t){ cfg_in(1, r, 4) }, 4);
	assert_memory_equal(before, after, 0x0c);
	assert_memory_equal(before + 0x0e, after + 0x0e, 2);
	assert_memory_equal(before + 0x28, after + 0x28, 0x3c - 0x28);
	assert_int_equal(after[PCI_INTERRUPT_PIN], 1);
	assert_int_equal(cfg_in(1, PCI_ROM_ADDRESS, 4), 0);   /* no ROM */
	/* Writable ones are. */
	cfg_out(1, PCI_CACHE_LINE_SIZE, 0x10, 1);
	assert_int_equal(cfg_in(1, PCI_CACHE_LINE_SIZE, 1), 0x10);
	/* Unimplemented BARs read 0 even after the sizing write. */
	cfg_out(1, PCI_BASE_ADDRESS_0 + 4, 0xffffffffu, 4);
	assert_int_equal(cfg_in(1, PCI_BASE_ADDRESS_0 + 4, 4), 0);
}

static void test_command(void **state)
{
	(void)state;
	uint16_t cmd = (uint16_t)cfg_in(1, PCI_COMMAND, 2);
	assert_true(cmd & PCI_COMMAND_MEMORY);       /* firmware-style: decoding on */
	cfg_out(1, PCI_COMMAND, 0xffff, 2);
	/* Only I/O, memory, master, parity, SERR and INTx-disable stick. */
	assert_int_equal(cfg_in(1, PCI_COMMAND, 2), 0x0547);
	cfg_out(1, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	assert_int_equal(cfg_in(1, PCI_COMMAND, 2), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);

	/* Memory decoding off removes the BAR from the bus; on restores it. */
	uint32_t bar0 = cfg_in(1, PCI_BASE_ADDRESS_0, 4);
	td.hits = 0;
	mmio_rd(bar0 + 8, 4);
	assert_int_equal(td.hits, 1);
	cfg_out(1, PCI_COMMAND, 0, 2);
	assert_int_equal(mmio_wr(bar0 + 8, 1, 4), -ENOENT);
	assert_int_equal(mmio_rd(bar0, 4), 0xffffffffu);
	assert_int_equal(td.hits, 1);
	cfg_out(1, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	assert_int_equal(mmio_wr(bar0 + 8, 1, 4), 0);
	assert_int_equal(td.hits, 2);
}

static void test_bar_sizing_and_move(void **state)
{
	(void)state;
	uint32_t bar0 = cfg_in(1, PCI_BASE_ADDRESS_0, 4);
	uint32_t bar2 = cfg_in(1, PCI_BASE_ADDRESS_0 + 8, 4);
	/* Placed in the window, naturally aligned, 32-bit memory type. */
	assert_true(bar0 >= PCI_MMIO_BASE && bar0 + 0x1000 <= PCI_MMIO_END);
	assert_int_equal(bar0 & 0xfff, 0);
	assert_int_not_equal(bar0, bar2);

	/* Sizing: all ones reads back the size mask; the mapping stays. */
	cfg_out(1, PCI_BASE_ADDRESS_0, 0xffffffffu, 4);
	assert_int_equal(cfg_in(1, PCI_BASE_ADDRESS_0, 4), 0xfffff000u);
	td.hits = 0;
	assert_int_equal(mmio_rd(bar0 + 4, 4), 0x5a5a5a5a);
	assert_int_equal(td.hits, 1);
	cfg_out(1, PCI_BASE_ADDRESS_0, bar0, 4);
	assert_int_equal(cfg_in(1, PCI_BASE_ADDRESS_0, 4), bar0);

	/* Move: the bus follows, offsets are relative to the new base. */
	uint32_t moved = 0xd0000000u;
	cfg_out(1, PCI_BASE_ADDRESS_0, moved | 0xf, 4);       /* low bits read-only */
	assert_int_equal(cfg_in(1, PCI_BASE_ADDRESS_0, 4), moved);
	assert_int_equal(mmio_wr(bar0 + 4, 0, 4), -ENOENT);
	assert_int_equal(mmio_wr(moved + 0x44, 0, 4), 0);
	assert_int_equal(td.last_off, 0x44);

	/* Over RAM, over the ECAM/LAPIC, over the other BAR: refused, the
	 * old mapping stays. */
	static const uint32_t bad[] = { 0x00100000u, 0xe0000000u, 0xfee00000u };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg_out(1, PCI_BASE_ADDRESS_0, bad[i], 4);
		assert_int_equal(mmio_wr(moved + 8, 0, 4), 0);
		assert_int_equal(td.last_off, 8);
	}
	assert_int_equal(mmio_rd(ecam(1, 0, 0), 4), 0x56781234);   /* ECAM intact */
	cfg_out(1, PCI_BASE_ADDRESS_0, bar2, 4);
	td.last_off = 0;
	assert_int_equal(mmio_wr(moved + 0x10, 0, 4), 0);
	assert_int_equal(td.last_off, 0x10);
	/* bar2 still reaches the MSI-X table (entry 0 mask bit reads 1). */
	assert_int_equal(mmio_rd(bar2 + 12, 4), 1);
	/* And back into place works. */
	cfg_out(1, PCI_BASE_ADDRESS_0, bar0, 4);
	assert_int_equal(mmio_wr(bar0 + 0x20, 0, 4), 0);
	assert_int_equal(td.last_off, 0x20);
	assert_int_equal(mmio_wr(moved + 0x20, 0, 4), -ENOENT);

	/* A second device gets the next slot and non-overlapping BARs. */
	memset(&td2, 0, sizeof(td2));
	pci_dev_init(&td2.pci, "tdev2", 0x1234, 0x0001, 0, 0xff0000, 0, 0);
	assert_int_equal(pci_bar_add(&td2.pci, 0, 0x10000, &t_bar0_ops, &td2), 0);
	assert_int_equal(pci_bus_add(&pb, &td2.pci), 0);
	assert_int_equal(td2.pci.slot, 2);
	uint32_t b = cfg_in(2, PCI_BASE_ADDRESS_0, 4);
	assert_int_equal(b & 0xffff, 0);
	assert_true(b >= bar2 + 0x1000);
	cfg_out(2, PCI_BASE_ADDRESS_0, 0xffffffffu, 4);
	assert_int_equal(cfg_in(2, PCI_BASE_ADDRESS_0, 4), 0xffff0000u);
}

static void test_cap_list(void **state)
{
	(void)state;
	assert_true(cfg_in(1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	assert_false(cfg_in(0, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	unsigned at = cfg_in(1, PCI_CAPABILITY_LIST, 1), steps = 0, msix = 0;
	while (at) {
		assert_true(at >= 0x40 && at <= 0xfc);
		assert_int_equal(at & 3, 0);
		assert_true(++steps < 48);            /* no loop */
		if (cfg_in(1, at, 1) == PCI_CAP_ID_MSIX)
			msix = at;
		at = cfg_in(1, at + 1, 1);
	}
	assert_int_not_equal(msix, 0);
	assert_int_equal(msix, td.pci.msix.cap);
	uint16_t ctrl = (uint16_t)cfg_in(1, msix + 2, 2);
	assert_int_equal(ctrl & PCI_MSIX_FLAGS_QSIZE, 3);        /* 4 vectors */
	assert_int_equal(ctrl & 0xc000, 0);
	assert_int_equal(cfg_in(1, msix + 4, 4), 2);             /* table: BAR2 + 0 */
	assert_int_equal(cfg_in(1, msix + 8, 4), MSIX_PBA_OFF | 2);
	/* Capabilities are read-only except the two control bits. */
	cfg_out(1, msix, 0xffffffffu, 4);
	assert_int_equal(cfg_in(1, msix, 1), PCI_CAP_ID_MSIX);
	assert_int_equal(cfg_in(1, msix + 2, 2), 0xc003);
	cfg_out(1, msix + 2, 0, 2);

	/* Adding capabilities until config space is full fails cleanly. */
	uint8_t cap[32] = { 0 }, off;
	int rc, n = 0;
	pci_dev_init(&td2.pci, "caps", 0x1234, 0x0002, 0, 0xff0000, 0, 0);
	while ((rc = pci_cap_add(&td2.pci, PCI_CAP_ID_VNDR, cap, sizeof(cap), &off)) == 0)
		n++;
	assert_int_equal(rc, -ENOSPC);
	assert_true(n >= 5);
	assert_true(td2.pci.cap_last + 32 <= 256);
	pthread_mutex_destroy(&td2.pci.lock);
}

static uint32_t bar2_addr(void)
{
	return cfg_in(1, PCI_BASE_ADDRESS_0 + 8, 4);
}

static uint64_t efd_count(unsigned v)
{
	uint64_t c = 0;
	if (read(td.pci.msix.e[v].efd, &c, sizeof(c)) != sizeof(c))
		return 0;
	return c;
}

static const struct kvm_irq_routing_entry *route_for(uint32_t gsi)
{
	for (unsigned i = 0; i < kvm.nroutes; i++)
		if (kvm.routes[i].gsi == gsi)
			return &kvm.routes[i];
	return NULL;
}

static void test_msix(void **state)
{
	(void)state;
	uint32_t t = bar2_addr();
	unsigned cap = td.pci.msix.cap;

	/* Program vector 1 (still masked). Narrow or unaligned accesses do
	 * nothing. */
	mmio_wr(t + 16 + 0, 0xfee01000u, 4);
	mmio_wr(t + 16 + 4, 0, 4);
	mmio_wr(t + 16 + 8, 0x4041, 4);
	mmio_wr(t + 16 + 8, 0xffff, 2);
	mmio_wr(t + 16 + 10, 0xffff, 4);
	assert_int_equal(mmio_rd(t + 16, 4), 0xfee01000u);
	assert_int_equal(mmio_rd(t + 16 + 8, 4), 0x4041);
	assert_int_equal(mmio_rd(t + 16 + 8, 2), 0);
	assert_int_equal(mmio_rd(t + 16 + 12, 4), 1);

	/* MSI-X disabled: the caller must use INTx. */
	assert_int_equal(pci_msix_notify(&td.pci, 1), -ENODEV);
	cfg_out(1, cap + 2, PCI_MSIX_FLAGS_ENABLE, 2);
	assert_true(pci_msix_enabled(&td.pci));
	assert_int_equal(pci_msix_notify(&td.pci, 9), -EINVAL);

	/* Masked: pending bit, no message. */
	assert_int_equal(pci_msix_notify(&td.pci, 1), 0);
	assert_int_equal(mmio_rd(t + MSIX_PBA_OFF, 4), 1u << 1);
	assert_int_equal(efd_count(1), 0);
	/* Unmask: delivered through the vector's GSI with its message. */
	unsigned before = kvm.routing_calls;
	mmio_wr(t + 16 + 12, 0, 4);
	assert_int_equal(efd_count(1), 1);
	assert_int_equal(mmio_rd(t + MSIX_PBA_OFF, 4), 0);
	assert_int_equal(kvm.routing_calls, before + 1);
	const struct kvm_irq_routing_entry *r = route_for(td.pci.msix.e[1].gsi);
	assert_non_null(r);
	assert_true(r->gsi >= IRQ_MSI_GSI_BASE);
	assert_int_equal(r->type, KVM_IRQ_ROUTING_MSI);
	assert_int_equal(r->u.msi.address_lo, 0xfee01000u);
	assert_int_equal(r->u.msi.data, 0x4041);
	/* The ISA routes are still in the table. */
	assert_non_null(route_for(0));
	assert_non_null(route_for(23));

	/* Unchanged message: no new routing table. */
	assert_int_equal(pci_msix_notify(&td.pci, 1), 0);
	assert_int_equal(efd_count(1), 1);
	assert_int_equal(kvm.routing_calls, before + 1);
	/* Changed data (8-byte write of data + control): route re-sent. */
	uint64_t dc = 0x4042;
	assert_int_equal(bus_access(&mmio, t + 16 + 8, (uint8_t *)&dc, 8, 1), 0);
	assert_int_equal(pci_msix_notify(&td.pci, 1), 0);
	assert_int_equal(efd_count(1), 1);
	assert_int_equal(kvm.routing_calls, before + 2);
	assert_int_equal(route_for(td.pci.msix.e[1].gsi)->u.msi.data, 0x4042);

	/* Function mask: pending while set, delivered when cleared. */
	cfg_out(1, cap + 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 2);
	assert_int_equal(pci_msix_notify(&td.pci, 1), 0);
	assert_int_equal(efd_count(1), 0);
	assert_int_equal(mmio_rd(t + MSIX_PBA_OFF, 4), 1u << 1);
	mmio_wr(t + MSIX_PBA_OFF, 0, 4);                 /* PBA is read-only */
	assert_int_equal(mmio_rd(t + MSIX_PBA_OFF, 4), 1u << 1);
	cfg_out(1, cap + 2, PCI_MSIX_FLAGS_ENABLE, 2);
	assert_int_equal(efd_count(1), 1);
	assert_int_equal(mmio_rd(t + MSIX_PBA_OFF, 4), 0);

	/* Beyond the table: ignored. */
	mmio_wr(t + 4 * 16, 0x1234, 4);
	assert_int_equal(mmio_rd(t + 4 * 16, 4), 0);
	cfg_out(1, cap + 2, 0, 2);
	assert_false(pci_msix_enabled(&td.pci));
}

static void test_intx(void **state)
{
	(void)state;
	unsigned gsi = PCI_INTX_GSI_BASE + 1 % PCI_INTX_GSIS;
	assert_int_equal(cfg_in(1, PCI_INTERRUPT_PIN, 1), 1);
	assert_int_equal(cfg_in(1, PCI_INTERRUPT_LINE, 1), gsi);
	assert_int_equal(pci_intx_gsi(&td.pci), gsi);

	pci_intx_set(&td.pci, true);
	assert_int_equal(kvm.line_gsi, gsi);
	assert_int_equal(kvm.line_level, 1);
	assert_true(cfg_in(1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	/* INTx disable drops the line but not the status bit. */
	cfg_out(1, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_DISABLE, 2);
	assert_int_equal(kvm.line_level, 0);
	assert_true(cfg_in(1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	int calls = kvm.line_calls;
	pci_intx_set(&td.pci, true);
	assert_int_equal(kvm.line_calls, calls);
	cfg_out(1, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	assert_int_equal(kvm.line_level, 1);
	pci_intx_set(&td.pci, false);
	assert_int_equal(kvm.line_level, 0);
	assert_false(cfg_in(1, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
}

static void test_slots_full(void **state)
{
	(void)state;
	static struct tdev many[32];
	int rc = 0;
	unsigned added = 0;
	for (unsigned i = 0; i < 32 && !rc; i++) {
		pci_dev_init(&many[i].pci, "many", 0x1234, 0x9, 0, 0xff0000, 0, 0);
		rc = pci_bus_add(&pb, &many[i].pci);
		if (!rc)
			added++;
		else
			pthread_mutex_destroy(&many[i].pci.lock);
	}
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(added, 30);          /* slots 2..31 */
	assert_int_equal(cfg_in(31, 0, 4), 0x00091234);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_type1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ecam, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_sizing_and_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cap_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slots_full, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
