/* Guest library: PCI config space through 0xCF8/0xCFC, bus 0 scan, capability
 * walk and BAR sizing/assignment (PCI Local Bus spec 3.0 sections 3.2.2.3.2,
 * 6.2.5.1 and 6.7). */
#include "io.h"
#include "pci.h"

/* A standard capability list fits in 192 bytes at 4-byte granularity. */
#define PCI_CAP_MAX_HOPS 48

static uint64_t window_next = PCI_MMIO_WINDOW_BASE;

static void cfg_select(const struct pci_dev *d, uint8_t off)
{
	outl(PCI_CFG_ADDR, 0x80000000u | (uint32_t)d->bus << 16 |
	     (uint32_t)(d->dev & 31) << 11 | (uint32_t)(d->fn & 7) << 8 | (off & 0xfc));
}

uint32_t pci_read32(const struct pci_dev *d, uint8_t off)
{
	cfg_select(d, off);
	return inl(PCI_CFG_DATA);
}

uint16_t pci_read16(const struct pci_dev *d, uint8_t off)
{
	cfg_select(d, off);
	return inw(PCI_CFG_DATA + (off & 2));
}

uint8_t pci_read8(const struct pci_dev *d, uint8_t off)
{
	cfg_select(d, off);
	return inb(PCI_CFG_DATA + (off & 3));
}

void pci_write32(const struct pci_dev *d, uint8_t off, uint32_t v)
{
	cfg_select(d, off);
	outl(PCI_CFG_DATA, v);
}

void pci_write16(const struct pci_dev *d, uint8_t off, uint16_t v)
{
	cfg_select(d, off);
	outw(PCI_CFG_DATA + (off & 2), v);
}

int pci_find(uint16_t vendor, uint16_t device, unsigned index, struct pci_dev *out)
{
	for (unsigned dev = 0; dev < 32; dev++) {
		unsigned nfn = 1;

		for (unsigned fn = 0; fn < nfn; fn++) {
			struct pci_dev d = { .bus = 0, .dev = dev, .fn = fn };
			uint32_t id = pci_read32(&d, PCI_VENDOR_ID);

			if ((id & 0xffff) == 0xffff)
				continue;
			/* Only function 0 says whether functions 1-7 exist. */
			if (fn == 0 && (pci_read8(&d, PCI_HEADER_TYPE) & 0x80))
				nfn = 8;
			d.vendor = id & 0xffff;
			d.device = id >> 16;
			if (d.vendor != vendor || d.device != device)
				continue;
			if (index-- == 0) {
				*out = d;
				return 0;
			}
		}
	}
	return -1;
}

uint8_t pci_cap_find(const struct pci_dev *d, uint8_t cap_id, uint8_t after)
{
	uint8_t pos;

	if (!(pci_read16(d, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return 0;
	pos = after ? pci_read8(d, after + 1) : pci_read8(d, PCI_CAP_PTR);
	for (unsigned hops = 0; hops < PCI_CAP_MAX_HOPS; hops++) {
		pos &= 0xfc;
		/* Capabilities live after the 64-byte standard header. */
		if (pos < 0x40)
			return 0;
		if (pci_read8(d, pos) == cap_id)
			return pos;
		pos = pci_read8(d, pos + 1);
	}
	return 0;
}

int pci_bar_map(const struct pci_dev *d, unsigned bar, uint64_t *base, uint64_t *size)
{
	uint8_t off;
	uint16_t cmd;
	uint32_t lo, hi = 0, mask_lo, mask_hi = 0xffffffffu;
	uint64_t addr, mask, sz;
	int is64;

	if (bar > 5)
		return -1;
	off = PCI_BAR0 + 4 * bar;
	lo = pci_read32(d, off);
	if (lo & 1)
		return -1;                       /* I/O BAR */
	is64 = ((lo >> 1) & 3) == 2;
	if (is64 && bar == 5)
		return -1;
	if (is64)
		hi = pci_read32(d, off + 4);

	/* Sizing writes all-ones, which would move the BAR onto whatever
	 * lives at the top of the address space while decode is on. */
	cmd = pci_read16(d, PCI_COMMAND);
	pci_write16(d, PCI_COMMAND, cmd & ~(PCI_COMMAND_MEMORY | PCI_COMMAND_IO));
	pci_write32(d, off, 0xffffffffu);
	mask_lo = pci_read32(d, off);
	pci_write32(d, off, lo);
	if (is64) {
		pci_write32(d, off + 4, 0xffffffffu);
		mask_hi = pci_read32(d, off + 4);
		pci_write32(d, off + 4, hi);
	}
	mask = ((uint64_t)mask_hi << 32) | (mask_lo & ~0xfu);
	if (!is64)
		mask |= 0xffffffff00000000ull;
	sz = ~mask + 1;
	/* An absent BAR reads back 0; a real one has a power-of-two size. */
	if ((mask_lo & ~0xfu) == 0 || sz == 0 || (sz & (sz - 1))) {
		pci_write16(d, PCI_COMMAND, cmd);
		return -1;
	}

	addr = ((uint64_t)hi << 32) | (lo & ~0xfu);
	if (addr == 0 || addr + sz > 0x100000000ull || addr + sz < addr) {
		uint64_t a = (window_next + sz - 1) & ~(sz - 1);

		if (a + sz > PCI_MMIO_WINDOW_LIMIT) {
			pci_write16(d, PCI_COMMAND, cmd);
			return -1;
		}
		window_next = a + sz;
		addr = a;
		pci_write32(d, off, (uint32_t)addr | (lo & 0xf));
		if (is64)
			pci_write32(d, off + 4, 0);
	}
	pci_write16(d, PCI_COMMAND, cmd);
	*base = addr;
	*size = sz;
	return 0;
}

void pci_enable(const struct pci_dev *d)
{
	uint16_t cmd = pci_read16(d, PCI_COMMAND);

	pci_write16(d, PCI_COMMAND, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}
