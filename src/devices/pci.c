/* PCI bus 0 (PCI Local Bus 3.0: 3.2.2.3.2 configuration mechanism #1, 6.1-6.2
 * type-0 header, 6.2.5 BARs, 6.7 capabilities, 6.8.2 MSI-X; PCIe 7.2.2 ECAM
 * layout for the MMIO config window). Every VM gets the host bridge. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "devices/pci.h"
#include "state/devices.h"
#include "vmm/vm.h"

static uint16_t cfg_get16(const struct pci_dev *d, unsigned off)
{
	return (uint16_t)(d->cfg[off] | d->cfg[off + 1] << 8);
}

static uint32_t cfg_get32(const struct pci_dev *d, unsigned off)
{
	return (uint32_t)cfg_get16(d, off) | (uint32_t)cfg_get16(d, off + 2) << 16;
}

static void cfg_put16(uint8_t *p, unsigned off, uint16_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
}

static void cfg_put32(uint8_t *p, unsigned off, uint32_t v)
{
	cfg_put16(p, off, (uint16_t)v);
	cfg_put16(p, off + 2, (uint16_t)(v >> 16));
}

void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint8_t revision, uint32_t class, uint16_t subsys_vendor, uint16_t subsys_id)
{
	memset(d, 0, sizeof(*d));
	d->name = name;
	pthread_mutex_init(&d->lock, NULL);
	cfg_put16(d->cfg, PCI_VENDOR_ID, vendor);
	cfg_put16(d->cfg, PCI_DEVICE_ID, device);
	d->cfg[PCI_REVISION_ID] = revision;
	d->cfg[PCI_CLASS_PROG] = (uint8_t)class;
	d->cfg[PCI_CLASS_PROG + 1] = (uint8_t)(class >> 8);
	d->cfg[PCI_CLASS_PROG + 2] = (uint8_t)(class >> 16);
	d->cfg[PCI_HEADER_TYPE] = 0;            /* type 0, single function */
	cfg_put16(d->cfg, PCI_SUBSYSTEM_VENDOR_ID, subsys_vendor);
	cfg_put16(d->cfg, PCI_SUBSYSTEM_ID, subsys_id);
	/* Command: I/O, memory, bus master, parity response, SERR#, INTx
	 * disable. Status stays read-only: wafer never sets its error bits. */
	cfg_put16(d->wmask, PCI_COMMAND, 0x0547);
	d->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
	d->wmask[PCI_LATENCY_TIMER] = 0xff;
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
	d->cap_next = PCI_CAP_START;
}

int pci_bar_add(struct pci_dev *d, unsigned bar, uint32_t size, const struct bus_ops *ops,
		void *opaque)
{
	if (bar >= PCI_NUM_BARS || size < 16 || (size & (size - 1)) || !ops || d->bar[bar].size)
		return -EINVAL;
	d->bar[bar] = (struct pci_bar){ .size = size, .ops = ops, .opaque = opaque };
	/* Memory, 32-bit, not prefetchable: bits 3:0 read 0; the size shows
	 * as the read-only low address bits (the sizing protocol, 6.2.5.1). */
	cfg_put32(d->wmask, PCI_BASE_ADDRESS_0 + 4 * bar, ~(size - 1) & ~0xfu);
	return 0;
}

int pci_cap_add(struct pci_dev *d, uint8_t id, const void *cap, uint8_t len, uint8_t *off)
{
	unsigned at = d->cap_next;

	if (len < 2 || !cap)
		return -EINVAL;
	if (at + len > PCI_CFG_SIZE)
		return -ENOSPC;
	memcpy(d->cfg + at, cap, len);
	d->cfg[at] = id;
	d->cfg[at + 1] = 0;
	if (d->cap_last)
		d->cfg[d->cap_last + 1] = (uint8_t)at;
	else
		d->cfg[PCI_CAPABILITY_LIST] = (uint8_t)at;
	d->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	d->cap_last = (uint8_t)at;
	d->cap_next = (uint8_t)((at + len + 3) & ~3u);
	if (at + len + 3 >= PCI_CFG_SIZE)
		d->cap_next = 0xfc;     /* full: the next add fails the size check */
	if (off)
		*off = (uint8_t)at;
	return 0;
}

/* --- BAR mapping ------------------------------------------------------- */

/* Decode BAR i at addr (decode false: not at all), moving its bus range
 * and telling the owner. A placement outside the window or over another
 * range is refused: the old mapping stays, as a bridge would not route the
 * new one. Caller holds d->lock. */
static void pci_bar_map(struct pci_dev *d, unsigned i, bool decode, uint64_t addr)
{
	struct pci_bar *b = &d->bar[i];
	struct bus *mmio = d->bus->mmio;
	uint64_t old = b->mapped ? b->addr : 0;
	int rc;

	if (!b->size)
		return;
	if (!decode) {
		if (b->mapped && bus_unregister(mmio, b->addr, b->opaque) == 0) {
			b->mapped = false;
			if (d->bar_remap)
				d->bar_remap(d, i, old, 0);
		}
		return;
	}
	if (b->mapped && b->addr == addr)
		return;
	if (addr < PCI_MMIO_BASE || addr + b->size > PCI_MMIO_END) {
		/* The sizing pattern (all ones written) lands here on every
		 * boot with decoding left on; not worth a warning. */
		if (addr != (~(uint64_t)(b->size - 1) & 0xfffffff0u))
			log_ratelimited(&d->rl, LOG_WARN,
					"pci %s: BAR%u at 0x%llx outside the PCI window, ignored",
					d->name, i, (unsigned long long)addr);
		return;
	}
	if (b->mapped)
		rc = bus_move(mmio, b->addr, b->opaque, addr);
	else
		rc = bus_register(mmio, addr, b->size, b->ops, b->opaque, d->name);
	if (rc) {
		log_ratelimited(&d->rl, LOG_WARN, "pci %s: BAR%u at 0x%llx overlaps another device, ignored",
				d->name, i, (unsigned long long)addr);
		return;
	}
	b->mapped = true;
	b->addr = addr;
	if (d->bar_remap)
		d->bar_remap(d, i, old, addr);
}

/* Bring BAR i's bus registration in line with its register and the memory
 * enable bit. */
static void pci_bar_update(struct pci_dev *d, unsigned i)
{
	uint64_t addr = cfg_get32(d, PCI_BASE_ADDRESS_0 + 4 * i) & ~0xfull;
	bool decode = (cfg_get16(d, PCI_COMMAND) & PCI_COMMAND_MEMORY) && addr;

	pci_bar_map(d, i, decode, addr);
}

static void pci_bars_update(struct pci_dev *d)
{
	for (unsigned i = 0; i < PCI_NUM_BARS; i++)
		pci_bar_update(d, i);
}

/* --- INTx -------------------------------------------------------------- */

unsigned pci_intx_gsi(const struct pci_dev *d)
{
	return PCI_INTX_GSI_BASE + d->slot % PCI_INTX_GSIS;
}

/* Caller holds d->lock. */
static void pci_intx_sync(struct pci_dev *d)
{
	bool line = d->intx_level && !(cfg_get16(d, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE);

	/* Interrupt Status reflects the device's request even when disabled. */
	if (d->intx_level)
		d->cfg[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
	else
		d->cfg[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
	if (line == d->intx_asserted || !d->bus)
		return;
	int rc = irq_line(d->bus->irq, pci_intx_gsi(d), line);
	if (rc)
		log_ratelimited(&d->rl, LOG_WARN, "pci %s: INTx on GSI %u: %s", d->name,
				pci_intx_gsi(d), strerror(-rc));
	else
		d->intx_asserted = line;
}

void pci_intx_set(struct pci_dev *d, bool level)
{
	pthread_mutex_lock(&d->lock);
	d->intx_level = level;
	pci_intx_sync(d);
	pthread_mutex_unlock(&d->lock);
}

/* --- MSI-X ------------------------------------------------------------- */

static uint16_t pci_msix_ctrl(const struct pci_dev *d)
{
	return cfg_get16(d, d->msix.cap + PCI_MSIX_FLAGS);
}

/* Caller holds d->lock. */
static bool pci_msix_deliverable(const struct pci_dev *d, const struct pci_msix_entry *e)
{
	uint16_t ctrl = pci_msix_ctrl(d);
	return (ctrl & PCI_MSIX_FLAGS_ENABLE) && !(ctrl & PCI_MSIX_FLAGS_MASKALL) &&
	       !(e->ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

/* Point the entry's GSI at its message (commits only on a change). */
static int pci_msix_route(struct pci_dev *d, const struct pci_msix_entry *e)
{
	return irq_msi_set(d->bus->irq, e->gsi, (uint64_t)e->addr_hi << 32 | e->addr_lo, e->data);
}

/* Caller holds d->lock. The route follows the entry lazily: the table is
 * re-sent only when a message goes out with a changed address/data. */
static int pci_msix_fire(struct pci_dev *d, struct pci_msix_entry *e)
{
	uint64_t one = 1;
	int rc;

	rc = pci_msix_route(d, e);
	if (rc)
		goto out;
	if (write(e->efd, &one, sizeof(one)) != sizeof(one)) {
		rc = -errno;
		goto out;
	}
	d->msix.fired++;
out:
	if (rc)
		log_ratelimited(&d->rl, LOG_WARN, "pci %s: MSI-X message on GSI %u: %s", d->name,
				e->gsi, strerror(-rc));
	return rc;
}

/* Caller holds d->lock: send what became deliverable. */
static void pci_msix_flush(struct pci_dev *d)
{
	for (unsigned v = 0; v < d->msix.nvec; v++) {
		struct pci_msix_entry *e = &d->msix.e[v];
		if (e->pending && pci_msix_deliverable(d, e)) {
			e->pending = false;
			pci_msix_fire(d, e);
		}
	}
}

int pci_msix_init(struct pci_dev *d, unsigned nvec, unsigned bar, uint32_t table_off,
		  uint32_t pba_off)
{
	uint8_t cap[PCI_MSIX_CAP_LEN] = { 0 };
	int rc;

	if (!d->bus || d->msix.nvec || nvec == 0 || nvec > PCI_MSIX_MAX_VECTORS ||
	    bar >= PCI_NUM_BARS || !d->bar[bar].size || (table_off & 7) || (pba_off & 7) ||
	    table_off + nvec * PCI_MSIX_ENTRY_SIZE > d->bar[bar].size ||
	    pba_off + (nvec + 63) / 64 * 8 > d->bar[bar].size)
		return -EINVAL;
	d->msix.e = calloc(nvec, sizeof(*d->msix.e));
	if (!d->msix.e)
		return -ENOMEM;
	for (unsigned v = 0; v < nvec; v++) {
		d->msix.e[v].efd = -1;
		d->msix.e[v].ctrl = PCI_MSIX_ENTRY_CTRL_MASKBIT;  /* masked at reset */
	}
	d->msix.nvec = nvec;
	for (unsigned v = 0; v < nvec; v++) {
		struct pci_msix_entry *e = &d->msix.e[v];
		rc = irq_msi_alloc(d->bus->irq, &e->gsi);
		if (rc)
			goto out;
		e->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (e->efd < 0) {
			rc = -errno;
			irq_msi_free(d->bus->irq, e->gsi);
			goto out;
		}
		rc = irq_irqfd(d->bus->irq, e->efd, e->gsi, true);
		if (rc) {
			close(e->efd);
			e->efd = -1;
			irq_msi_free(d->bus->irq, e->gsi);
			goto out;
		}
	}
	cfg_put16(cap, PCI_MSIX_FLAGS, (uint16_t)(nvec - 1));
	cfg_put32(cap, PCI_MSIX_TABLE, table_off | bar);
	cfg_put32(cap, PCI_MSIX_PBA, pba_off | bar);
	pthread_mutex_lock(&d->lock);
	rc = pci_cap_add(d, PCI_CAP_ID_MSIX, cap, sizeof(cap), &d->msix.cap);
	if (!rc)
		d->wmask[d->msix.cap + PCI_MSIX_FLAGS + 1] =
			(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
	pthread_mutex_unlock(&d->lock);
out:
	if (rc) {
		for (unsigned v = 0; v < nvec; v++) {
			struct pci_msix_entry *e = &d->msix.e[v];
			if (e->efd < 0)
				continue;
			irq_irqfd(d->bus->irq, e->efd, e->gsi, false);
			close(e->efd);
			irq_msi_free(d->bus->irq, e->gsi);
		}
		free(d->msix.e);
		d->msix = (struct pci_msix){ 0 };
	}
	return rc;
}

bool pci_msix_enabled(struct pci_dev *d)
{
	pthread_mutex_lock(&d->lock);
	bool on = d->msix.nvec && (pci_msix_ctrl(d) & PCI_MSIX_FLAGS_ENABLE);
	pthread_mutex_unlock(&d->lock);
	return on;
}

int pci_msix_notify(struct pci_dev *d, unsigned vec)
{
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	if (vec >= d->msix.nvec) {
		rc = -EINVAL;
	} else if (!(pci_msix_ctrl(d) & PCI_MSIX_FLAGS_ENABLE)) {
		rc = -ENODEV;
	} else {
		struct pci_msix_entry *e = &d->msix.e[vec];
		if (pci_msix_deliverable(d, e))
			rc = pci_msix_fire(d, e);
		else
			e->pending = true;
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

static void pci_msix_table_write32(struct pci_dev *d, unsigned idx, unsigned field, uint32_t v)
{
	struct pci_msix_entry *e = &d->msix.e[idx];

	switch (field) {
	case 0:
		e->addr_lo = v & ~3u;   /* message address is dword aligned */
		break;
	case 4:
		e->addr_hi = v;
		break;
	case 8:
		e->data = v;
		break;
	default:
		e->ctrl = v & PCI_MSIX_ENTRY_CTRL_MASKBIT;
		if (e->pending && pci_msix_deliverable(d, e)) {
			e->pending = false;
			pci_msix_fire(d, e);
		}
		break;
	}
}

static uint32_t pci_msix_table_read32(struct pci_dev *d, unsigned idx, unsigned field)
{
	const struct pci_msix_entry *e = &d->msix.e[idx];
	return field == 0 ? e->addr_lo : field == 4 ? e->addr_hi : field == 8 ? e->data : e->ctrl;
}

void pci_msix_table_access(struct pci_dev *d, uint64_t off, uint8_t *data, unsigned size,
			   bool is_write)
{
	if ((size != 4 && size != 8) || (off & (size - 1)))
		return;
	pthread_mutex_lock(&d->lock);
	if (off / PCI_MSIX_ENTRY_SIZE < d->msix.nvec) {
		unsigned idx = (unsigned)(off / PCI_MSIX_ENTRY_SIZE);
		unsigned field = (unsigned)(off % PCI_MSIX_ENTRY_SIZE);
		for (unsigned i = 0; i < size; i += 4) {
			uint32_t v;
			if (is_write) {
				memcpy(&v, data + i, 4);
				pci_msix_table_write32(d, idx, field + i, v);
			} else {
				v = pci_msix_table_read32(d, idx, field + i);
				memcpy(data + i, &v, 4);
			}
		}
	}
	pthread_mutex_unlock(&d->lock);
}

void pci_msix_pba_read(struct pci_dev *d, uint64_t off, uint8_t *data, unsigned size)
{
	if ((size != 4 && size != 8) || (off & (size - 1)))
		return;
	pthread_mutex_lock(&d->lock);
	for (unsigned byte = 0; byte < size; byte++) {
		uint8_t v = 0;
		for (unsigned bit = 0; bit < 8; bit++) {
			uint64_t vec = (off + byte) * 8 + bit;
			if (vec < d->msix.nvec && d->msix.e[vec].pending)
				v |= (uint8_t)(1u << bit);
		}
		data[byte] = v;
	}
	pthread_mutex_unlock(&d->lock);
}

/* --- config space ------------------------------------------------------ */

static struct pci_dev *pci_lookup(struct pci_bus *pb, unsigned slot, unsigned fn)
{
	if (slot >= PCI_MAX_SLOTS || fn != 0)
		return NULL;
	pthread_mutex_lock(&pb->lock);
	struct pci_dev *d = pb->slots[slot];
	pthread_mutex_unlock(&pb->lock);
	return d;
}

static bool pci_touches(unsigned reg, unsigned size, unsigned start, unsigned len)
{
	return reg < start + len && start < reg + size;
}

uint32_t pci_cfg_read(struct pci_bus *pb, unsigned slot, unsigned fn, unsigned reg, unsigned size)
{
	struct pci_dev *d = pci_lookup(pb, slot, fn);
	uint32_t v = 0;

	if (!d)
		return size == 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
	if (reg >= PCI_CFG_SIZE || reg + size > PCI_CFG_SIZE)
		return 0;   /* no extended capabilities */
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)d->cfg[reg + i] << (8 * i);
	pthread_mutex_unlock(&d->lock);
	return v;
}

void pci_cfg_write(struct pci_bus *pb, unsigned slot, unsigned fn, unsigned reg, unsigned size,
		   uint32_t val)
{
	struct pci_dev *d = pci_lookup(pb, slot, fn);

	if (!d || reg >= PCI_CFG_SIZE || reg + size > PCI_CFG_SIZE)
		return;
	pthread_mutex_lock(&d->lock);
	uint16_t old_msix = d->msix.nvec ? pci_msix_ctrl(d) : 0;
	for (unsigned i = 0; i < size; i++) {
		uint8_t m = d->wmask[reg + i], b = (uint8_t)(val >> (8 * i));
		d->cfg[reg + i] = (uint8_t)((d->cfg[reg + i] & ~m) | (b & m));
	}
	if (pci_touches(reg, size, PCI_COMMAND, 2) ||
	    pci_touches(reg, size, PCI_BASE_ADDRESS_0, 4 * PCI_NUM_BARS))
		pci_bars_update(d);
	if (pci_touches(reg, size, PCI_COMMAND, 2))
		pci_intx_sync(d);
	if (d->msix.nvec && pci_touches(reg, size, d->msix.cap + PCI_MSIX_FLAGS, 2) &&
	    pci_msix_ctrl(d) != old_msix)
		pci_msix_flush(d);
	pthread_mutex_unlock(&d->lock);
}

/* Mechanism #1: CONFIG_ADDRESS at 0xCF8 (dword only), CONFIG_DATA at
 * 0xCFC-0xCFF in any width that stays inside the dword. */
static void pci_cf8_decode(struct pci_bus *pb, unsigned port_off, unsigned size, bool *ok,
			   unsigned *slot, unsigned *fn, unsigned *reg)
{
	uint32_t a = atomic_load(&pb->cf8);
	unsigned byte = port_off - 4;

	*ok = (a & 0x80000000u) && ((a >> 16) & 0xff) == 0 && byte + size <= 4;
	*slot = (a >> 11) & 0x1f;
	*fn = (a >> 8) & 7;
	*reg = (a & 0xfc) + byte;
}

static void pci_pio_read(void *opaque, uint64_t off, uint8_t *data, unsigned size)
{
	struct pci_bus *pb = opaque;
	unsigned slot, fn, reg;
	bool ok;
	uint32_t v = 0xffffffffu;

	if (off == 0 && size == 4) {
		v = atomic_load(&pb->cf8);
	} else if (off >= 4) {
		pci_cf8_decode(pb, (unsigned)off, size, &ok, &slot, &fn, &reg);
		if (ok)
			v = pci_cfg_read(pb, slot, fn, reg, size);
	}
	memcpy(data, &v, size < 4 ? size : 4);
}

static void pci_pio_write(void *opaque, uint64_t off, const uint8_t *data, unsigned size)
{
	struct pci_bus *pb = opaque;
	unsigned slot, fn, reg;
	bool ok;
	uint32_t v = 0;

	memcpy(&v, data, size < 4 ? size : 4);
	if (off == 0 && size == 4) {
		/* Bits 1:0 are reserved (type 0 vs 1 is for bridges). */
		atomic_store(&pb->cf8, v & 0x80fffffcu);
	} else if (off >= 4) {
		pci_cf8_decode(pb, (unsigned)off, size, &ok, &slot, &fn, &reg);
		if (ok)
			pci_cfg_write(pb, slot, fn, reg, size, v);
	}
}

static const struct bus_ops pci_pio_ops = { pci_pio_read, pci_pio_write };

/* ECAM: bus << 20 | device << 15 | function << 12 | register; naturally
 * aligned 1-, 2- and 4-byte accesses. */
static bool pci_ecam_decode(uint64_t off, unsigned size, unsigned *slot, unsigned *fn,
			    unsigned *reg)
{
	*slot = (unsigned)(off >> 15) & 0x1f;
	*fn = (unsigned)(off >> 12) & 7;
	*reg = (unsigned)off & 0xfff;
	return (size == 1 || size == 2 || size == 4) && !(off & (size - 1));
}

static void pci_ecam_read(void *opaque, uint64_t off, uint8_t *data, unsigned size)
{
	unsigned slot, fn, reg;
	uint32_t v = 0xffffffffu;

	if (pci_ecam_decode(off, size, &slot, &fn, &reg))
		v = pci_cfg_read(opaque, slot, fn, reg, size);
	memcpy(data, &v, size < 4 ? size : 4);
	if (size > 4)
		memset(data + 4, 0xff, size - 4);
}

static void pci_ecam_write(void *opaque, uint64_t off, const uint8_t *data, unsigned size)
{
	unsigned slot, fn, reg;
	uint32_t v = 0;

	if (!pci_ecam_decode(off, size, &slot, &fn, &reg))
		return;
	memcpy(&v, data, size);
	pci_cfg_write(opaque, slot, fn, reg, size, v);
}

static const struct bus_ops pci_ecam_ops = { pci_ecam_read, pci_ecam_write };

/* --- bus --------------------------------------------------------------- */

int pci_bus_add(struct pci_bus *pb, struct pci_dev *d)
{
	uint64_t next;
	int rc = -ENOSPC;

	pthread_mutex_lock(&pb->lock);
	for (unsigned s = 1; s < PCI_MAX_SLOTS; s++) {
		if (!pb->slots[s]) {
			d->slot = s;
			rc = 0;
			break;
		}
	}
	if (rc)
		goto unlock;
	/* Place BARs as firmware would, naturally aligned, and leave memory
	 * decoding on: guests keep valid assignments inside the window. */
	next = pb->mmio_next;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		uint32_t size = d->bar[i].size;
		if (!size)
			continue;
		uint64_t at = (next + size - 1) & ~(uint64_t)(size - 1);
		if (at + size > PCI_MMIO_END) {
			rc = -ENOSPC;
			goto unlock;
		}
		cfg_put32(d->cfg, PCI_BASE_ADDRESS_0 + 4 * i, (uint32_t)at);
		next = at + size;
	}
	d->bus = pb;
	pthread_mutex_lock(&d->lock);
	if (d != &pb->host) {
		d->cfg[PCI_INTERRUPT_PIN] = 1;  /* INTA# */
		d->cfg[PCI_INTERRUPT_LINE] = (uint8_t)pci_intx_gsi(d);
	}
	cfg_put16(d->cfg, PCI_COMMAND, cfg_get16(d, PCI_COMMAND) | PCI_COMMAND_MEMORY);
	pci_bars_update(d);
	for (unsigned i = 0; i < PCI_NUM_BARS; i++)
		if (d->bar[i].size && !d->bar[i].mapped)
			rc = -EEXIST;
	if (rc) {
		cfg_put16(d->cfg, PCI_COMMAND, 0);
		pci_bars_update(d);
	}
	pthread_mutex_unlock(&d->lock);
	if (rc) {
		d->bus = NULL;
		goto unlock;
	}
	pb->mmio_next = next;
	pb->slots[d->slot] = d;
unlock:
	pthread_mutex_unlock(&pb->lock);
	return rc;
}

void pci_dev_destroy(struct pci_dev *d)
{
	struct pci_bus *pb = d->bus;

	if (!pb)
		return;
	pthread_mutex_lock(&pb->lock);
	if (pb->slots[d->slot] == d)
		pb->slots[d->slot] = NULL;
	pthread_mutex_unlock(&pb->lock);
	pthread_mutex_lock(&d->lock);
	cfg_put16(d->cfg, PCI_COMMAND, 0);
	pci_bars_update(d);
	d->intx_level = false;
	pci_intx_sync(d);
	pthread_mutex_unlock(&d->lock);
	for (unsigned v = 0; v < d->msix.nvec; v++) {
		struct pci_msix_entry *e = &d->msix.e[v];
		irq_irqfd(pb->irq, e->efd, e->gsi, false);
		close(e->efd);
		irq_msi_free(pb->irq, e->gsi);
	}
	free(d->msix.e);
	d->msix = (struct pci_msix){ 0 };
	d->bus = NULL;
	pthread_mutex_destroy(&d->lock);
}

int pci_bus_init(struct pci_bus *pb, struct bus *pio, struct bus *mmio, struct irq_router *irq)
{
	int rc;

	memset(pb, 0, sizeof(*pb));
	pb->pio = pio;
	pb->mmio = mmio;
	pb->irq = irq;
	pb->mmio_next = PCI_MMIO_BASE;
	pthread_mutex_init(&pb->lock, NULL);
	rc = bus_register(pio, PORT_PCI_CONFIG, PORT_PCI_CONFIG_LEN, &pci_pio_ops, pb, "pci-cf8");
	if (rc)
		goto out;
	rc = bus_register(mmio, PCI_ECAM_BASE, PCI_ECAM_SIZE, &pci_ecam_ops, pb, "pci-ecam");
	if (rc) {
		bus_unregister(pio, PORT_PCI_CONFIG, pb);
		goto out;
	}
	pci_dev_init(&pb->host, "host-bridge", PCI_HOST_VENDOR, PCI_HOST_DEVICE, 0,
		     PCI_CLASS_HOST_BRIDGE, PCI_HOST_VENDOR, 0x1100);
	pb->host.bus = pb;
	pb->host.slot = 0;
	pb->slots[0] = &pb->host;
out:
	if (rc)
		pthread_mutex_destroy(&pb->lock);
	return rc;
}

void pci_bus_destroy(struct pci_bus *pb)
{
	for (unsigned s = 1; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *d = pb->slots[s];
		if (!d)
			continue;
		if (d->release)
			d->release(d);
		else
			pci_dev_destroy(d);
		pb->slots[s] = NULL;
	}
	bus_unregister(pb->mmio, PCI_ECAM_BASE, pb);
	bus_unregister(pb->pio, PORT_PCI_CONFIG, pb);
	pthread_mutex_destroy(&pb->host.lock);
	pthread_mutex_destroy(&pb->lock);
}

/* --- snapshots ---------------------------------------------------------- */

int pci_dev_save(struct pci_dev *d, struct snap_buf *b)
{
	pthread_mutex_lock(&d->lock);
	snap_buf_put(b, d->cfg, PCI_CFG_SIZE);
	/* Where each BAR decodes, which is the register's value unless the
	 * guest asked for a place that was refused. */
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		snap_buf_put_u8(b, d->bar[i].mapped);
		snap_buf_put_u64(b, d->bar[i].mapped ? d->bar[i].addr : 0);
	}
	snap_buf_put_u16(b, (uint16_t)d->msix.nvec);
	for (unsigned v = 0; v < d->msix.nvec; v++) {
		const struct pci_msix_entry *e = &d->msix.e[v];
		snap_buf_put_u32(b, e->addr_lo);
		snap_buf_put_u32(b, e->addr_hi);
		snap_buf_put_u32(b, e->data);
		snap_buf_put_u32(b, e->ctrl);
		snap_buf_put_u8(b, e->pending);
	}
	snap_buf_put_u8(b, d->intx_level);
	pthread_mutex_unlock(&d->lock);
	return b->err;
}

int pci_dev_load(struct pci_dev *d, struct snap_cur *c)
{
	uint8_t cfg[PCI_CFG_SIZE], mapped[PCI_NUM_BARS];
	uint64_t addr[PCI_NUM_BARS];
	struct pci_msix_entry e[PCI_MSIX_MAX_VECTORS];
	bool bad = !d->bus;

	snap_cur_get(c, cfg, sizeof(cfg));
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		mapped[i] = snap_cur_u8(c);
		addr[i] = snap_cur_u64(c);
		/* Decoded BARs are naturally aligned, as their registers force. */
		bad |= mapped[i] > 1 ||
		       (mapped[i] && (!d->bar[i].size || (addr[i] & (d->bar[i].size - 1))));
	}
	bad |= snap_cur_u16(c) != d->msix.nvec;
	for (unsigned v = 0; v < d->msix.nvec && !bad; v++) {
		e[v].addr_lo = snap_cur_u32(c);
		e[v].addr_hi = snap_cur_u32(c);
		e[v].data = snap_cur_u32(c);
		e[v].ctrl = snap_cur_u32(c);
		uint8_t pending = snap_cur_u8(c);
		bad |= pending > 1 || (e[v].addr_lo & 3) || (e[v].ctrl & ~PCI_MSIX_ENTRY_CTRL_MASKBIT);
		e[v].pending = pending;
	}
	uint8_t intx = snap_cur_u8(c);
	if (bad || intx > 1 || snap_cur_end(c))
		return -EINVAL;

	pthread_mutex_lock(&d->lock);
	/* The guest-writable bits, as a config write would set them; the rest
	 * (IDs, capabilities, BAR size bits) stay this device's. */
	for (unsigned i = 0; i < PCI_CFG_SIZE; i++)
		d->cfg[i] = (uint8_t)((d->cfg[i] & ~d->wmask[i]) | (cfg[i] & d->wmask[i]));
	for (unsigned i = 0; i < PCI_NUM_BARS; i++)
		pci_bar_map(d, i, mapped[i], addr[i]);
	for (unsigned v = 0; v < d->msix.nvec; v++) {
		struct pci_msix_entry *m = &d->msix.e[v];
		m->addr_lo = e[v].addr_lo;
		m->addr_hi = e[v].addr_hi;
		m->data = e[v].data;
		m->ctrl = e[v].ctrl;
		m->pending = e[v].pending;
		if ((m->addr_lo || m->addr_hi) && pci_msix_route(d, m))
			log_warn("pci %s: MSI-X vector %u: route not restored", d->name, v);
	}
	pci_msix_flush(d);
	d->intx_level = intx;
	pci_intx_sync(d);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* vendor | device << 16: what identifies a slot's occupant. */
static uint32_t pci_dev_ids(const struct pci_dev *d)
{
	return d ? cfg_get16(d, PCI_VENDOR_ID) | (uint32_t)cfg_get16(d, PCI_DEVICE_ID) << 16 : 0;
}

int pci_bus_save(struct pci_bus *pb, struct snap_buf *b)
{
	size_t tok = snap_section_begin(b, "pci", 0, PCI_STATE_VERSION);
	unsigned n = 0;
	int rc;

	snap_buf_put_u32(b, atomic_load(&pb->cf8));
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++)
		n += pci_lookup(pb, s, 0) != NULL;
	snap_buf_put_u8(b, (uint8_t)n);
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		uint32_t ids = pci_dev_ids(pci_lookup(pb, s, 0));
		if (!ids)
			continue;
		snap_buf_put_u8(b, (uint8_t)s);
		snap_buf_put_u32(b, ids);
	}
	snap_section_end(b, tok);
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *d = pci_lookup(pb, s, 0);
		if (!d)
			continue;
		tok = snap_section_begin(b, "pci-dev", s, PCI_STATE_VERSION);
		pci_dev_save(d, b);
		snap_section_end(b, tok);
		rc = d->save ? d->save(d, b) : 0;
		if (rc)
			return rc;
	}
	return b->err;
}

/* The snapshot's device list (ids per slot, 0 = empty) against pb's. */
static int pci_bus_match(struct pci_bus *pb, const uint32_t *ids, char *err, size_t errlen)
{
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *d = pci_lookup(pb, s, 0);
		uint32_t have = pci_dev_ids(d);
		if (have == ids[s])
			continue;
		if (!d)
			snprintf(err, errlen, "pci slot %u: the snapshot has device %04x:%04x, "
				 "this VM has none there", s, ids[s] & 0xffff, ids[s] >> 16);
		else if (!ids[s])
			snprintf(err, errlen, "pci slot %u: this VM has %s (%04x:%04x), the snapshot "
				 "has no device there", s, d->name, have & 0xffff, have >> 16);
		else
			snprintf(err, errlen, "pci slot %u: the snapshot has device %04x:%04x, this VM "
				 "has %s (%04x:%04x)", s, ids[s] & 0xffff, ids[s] >> 16, d->name,
				 have & 0xffff, have >> 16);
		return -ENODEV;
	}
	return 0;
}

int pci_bus_load(struct pci_bus *pb, const struct snap_reader *r, char *err, size_t errlen)
{
	uint32_t ids[PCI_MAX_SLOTS] = { 0 };
	struct snap_cur c;
	int rc = state_section_open(r, "pci", 0, PCI_STATE_VERSION, &c, err, errlen);

	if (rc)
		return rc;
	uint32_t cf8 = snap_cur_u32(&c);
	unsigned n = snap_cur_u8(&c);
	for (unsigned i = 0; i < n && !c.err && !rc; i++) {
		unsigned s = snap_cur_u8(&c);
		uint32_t id = snap_cur_u32(&c);
		if (s >= PCI_MAX_SLOTS || ids[s] || !id)
			rc = -EINVAL;
		else
			ids[s] = id;
	}
	rc = state_section_done(rc ? rc : snap_cur_end(&c), "pci", 0, err, errlen);
	if (!rc)
		rc = pci_bus_match(pb, ids, err, errlen);
	if (rc)
		return rc;
	atomic_store(&pb->cf8, cf8 & 0x80fffffcu);
	/* Nothing decodes until every device is back: a BAR moving to where
	 * another device's BAR is now must not collide with it. */
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *d = pci_lookup(pb, s, 0);
		if (!d)
			continue;
		pthread_mutex_lock(&d->lock);
		for (unsigned i = 0; i < PCI_NUM_BARS; i++)
			pci_bar_map(d, i, false, 0);
		pthread_mutex_unlock(&d->lock);
	}
	for (unsigned s = 0; s < PCI_MAX_SLOTS && !rc; s++) {
		struct pci_dev *d = pci_lookup(pb, s, 0);
		if (!d)
			continue;
		rc = state_section_open(r, "pci-dev", s, PCI_STATE_VERSION, &c, err, errlen);
		if (!rc)
			rc = state_section_done(pci_dev_load(d, &c), "pci-dev", s, err, errlen);
		if (!rc && d->load)
			rc = d->load(d, r, err, errlen);
	}
	return rc;
}

static int pci_platform_create(struct vm *vm)
{
	struct pci_bus *pb = calloc(1, sizeof(*pb));
	int rc;

	if (!pb)
		return -ENOMEM;
	rc = pci_bus_init(pb, &vm->pio, &vm->mmio, &vm->irq);
	if (rc) {
		free(pb);
		return rc;
	}
	vm->pci = pb;
	return 0;
}

static void pci_platform_destroy(struct vm *vm)
{
	if (!vm->pci)
		return;
	pci_bus_destroy(vm->pci);
	free(vm->pci);
	vm->pci = NULL;
}

static int pci_platform_save(struct vm *vm, struct snap_buf *b)
{
	return pci_bus_save(vm->pci, b);
}

static int pci_platform_load(struct vm *vm, const struct snap_reader *r, char *err, size_t errlen)
{
	return pci_bus_load(vm->pci, r, err, errlen);
}

static const struct device_desc pci_device = {
	.name = "pci",
	.create = pci_platform_create,
	.destroy = pci_platform_destroy,
	.save = pci_platform_save,
	.load = pci_platform_load,
};
DEVICE_REGISTER(pci_device);
