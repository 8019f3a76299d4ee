/* Guest library: PCI configuration mechanism #1 (ports 0xCF8/0xCFC, PCI Local
 * Bus spec 3.0 3.2.2.3.2), bus 0 device scan, capability list walk, and
 * memory BAR sizing/assignment for the virtio driver. */
#ifndef GUEST_PCI_H
#define GUEST_PCI_H

#include <stdint.h>

#define PCI_CFG_ADDR 0xcf8
#define PCI_CFG_DATA 0xcfc

#define PCI_VENDOR_ID   0x00
#define PCI_DEVICE_ID   0x02
#define PCI_COMMAND     0x04
#define PCI_STATUS      0x06
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0        0x10
#define PCI_SUBSYS_ID   0x2e
#define PCI_CAP_PTR     0x34

#define PCI_COMMAND_IO     0x0001
#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_MASTER 0x0004
#define PCI_STATUS_CAP_LIST 0x0010

#define PCI_CAP_ID_MSIX   0x11
#define PCI_CAP_ID_VENDOR 0x09

/* BARs left at 0 by the VMM (or placed where the identity map cannot reach,
 * i.e. at or above 4 GiB) are assigned from this window, bottom up. It sits
 * in the 3..4 GiB part of the map, which crt0.S marks uncached, and below
 * where SeaBIOS (0xE0000000+) and wafer put their own assignments. */
#define PCI_MMIO_WINDOW_BASE  0xc0000000u
#define PCI_MMIO_WINDOW_LIMIT 0xe0000000u

struct pci_dev {
	uint8_t bus, dev, fn;
	uint16_t vendor, device;
};

uint32_t pci_read32(const struct pci_dev *d, uint8_t off);
uint16_t pci_read16(const struct pci_dev *d, uint8_t off);
uint8_t pci_read8(const struct pci_dev *d, uint8_t off);
void pci_write32(const struct pci_dev *d, uint8_t off, uint32_t v);
void pci_write16(const struct pci_dev *d, uint8_t off, uint16_t v);

/* The index-th (0-based) function on bus 0 with this vendor and device ID.
 * 0 and *out filled, or -1 when there is none. Costs about two port exits
 * per device slot. */
int pci_find(uint16_t vendor, uint16_t device, unsigned index, struct pci_dev *out);

/* Offset of the first capability with this ID after offset `after` (0: from
 * the start of the list), or 0 when there is none. The walk is bounded, so a
 * looping list ends it rather than hanging the guest. */
uint8_t pci_cap_find(const struct pci_dev *d, uint8_t cap_id, uint8_t after);

/* Memory BAR `bar` (0-5): its base and size, after assigning it from the
 * window above when it was unassigned or out of reach. 32- and 64-bit memory
 * BARs only; -1 for I/O BARs, absent BARs or an exhausted window. Sizing
 * turns memory decode off for a moment and restores the command register. */
int pci_bar_map(const struct pci_dev *d, unsigned bar, uint64_t *base, uint64_t *size);

/* Memory decode and bus mastering (DMA) on. */
void pci_enable(const struct pci_dev *d);

#endif
