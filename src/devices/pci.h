/* Conventional PCI (PCI Local Bus 3.0, chapter 6): bus 0 with a host bridge,
 * type-0 config space through ports 0xCF8/0xCFC and ECAM, 32-bit memory BARs
 * in the 32-bit MMIO window, capability lists, MSI-X (6.8.2) and INTx. */
#ifndef WAFER_DEVICES_PCI_H
#define WAFER_DEVICES_PCI_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/irq.h"
#include "vmm/log.h"

#define PCI_CFG_SIZE          256   /* conventional space; ECAM's 0x100+ reads 0 */
#define PCI_ECAM_FN_SIZE      4096
#define PCI_MAX_SLOTS         32
#define PCI_NUM_BARS          6
#define PCI_MSIX_MAX_VECTORS  64

/* Type-0 header offsets and bits (PCI 3.0, 6.2) */
#define PCI_VENDOR_ID         0x00
#define PCI_DEVICE_ID         0x02
#define PCI_COMMAND           0x04
#define  PCI_COMMAND_IO       0x0001
#define  PCI_COMMAND_MEMORY   0x0002
#define  PCI_COMMAND_MASTER   0x0004
#define  PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS            0x06
#define  PCI_STATUS_INTERRUPT 0x0008
#define  PCI_STATUS_CAP_LIST  0x0010
#define PCI_REVISION_ID       0x08
#define PCI_CLASS_PROG        0x09  /* class code: prog-if, sub-class, base class */
#define PCI_CACHE_LINE_SIZE   0x0c
#define PCI_LATENCY_TIMER     0x0d
#define PCI_HEADER_TYPE       0x0e
#define PCI_BASE_ADDRESS_0    0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID      0x2e
#define PCI_ROM_ADDRESS       0x30
#define PCI_CAPABILITY_LIST   0x34
#define PCI_INTERRUPT_LINE    0x3c
#define PCI_INTERRUPT_PIN     0x3d
#define PCI_CAP_START         0x40

#define PCI_CAP_ID_VNDR       0x09
#define PCI_CAP_ID_MSIX       0x11

/* MSI-X capability (6.8.2) */
#define PCI_MSIX_FLAGS        2     /* message control, from the cap start */
#define  PCI_MSIX_FLAGS_QSIZE 0x07ff
#define  PCI_MSIX_FLAGS_MASKALL 0x4000
#define  PCI_MSIX_FLAGS_ENABLE 0x8000
#define PCI_MSIX_TABLE        4     /* offset | BIR */
#define PCI_MSIX_PBA          8
#define PCI_MSIX_CAP_LEN      12
#define PCI_MSIX_ENTRY_SIZE   16
#define  PCI_MSIX_ENTRY_CTRL_MASKBIT 1

/* Host bridge IDs: Red Hat's "QEMU PCIe host bridge" (1b36:0008), an ID
 * assigned to virtual hardware, so guests apply no chipset quirks. */
#define PCI_HOST_VENDOR       0x1b36
#define PCI_HOST_DEVICE       0x0008
#define PCI_CLASS_HOST_BRIDGE 0x060000

struct pci_dev;
struct pci_bus;
struct snap_buf;
struct snap_cur;
struct snap_reader;

struct pci_bar {
	uint32_t size;                 /* power of two >= 16; 0 = BAR not implemented */
	const struct bus_ops *ops;
	void *opaque;
	bool mapped;                   /* registered on the MMIO bus at addr */
	uint64_t addr;
};

struct pci_msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
	int efd;                       /* irqfd bound to gsi */
	uint32_t gsi;
	bool pending;                  /* PBA bit */
};

struct pci_msix {
	unsigned nvec;                 /* 0: no MSI-X capability */
	uint8_t cap;                   /* config offset of the capability */
	struct pci_msix_entry *e;
	uint64_t fired;                /* messages sent (stats, tests) */
};

struct pci_dev {
	const char *name;
	struct pci_bus *bus;
	unsigned slot;
	void *opaque;                  /* the owner's state */
	/* A BAR started/stopped decoding or moved; new_addr 0 = no longer
	 * decoded. Called with the device lock held: must not touch config
	 * space (ioeventfds follow the BAR here). */
	void (*bar_remap)(struct pci_dev *d, unsigned bar, uint64_t old_addr, uint64_t new_addr);
	/* Optional: pci_bus_destroy calls this instead of pci_dev_destroy so
	 * the owner can tear down its state (and call pci_dev_destroy). */
	void (*release)(struct pci_dev *d);
	/* Optional: the owner's own snapshot sections (instance = slot),
	 * saved after and loaded after the generic PCI state. 0 or -errno. */
	int (*save)(struct pci_dev *d, struct snap_buf *b);
	int (*load)(struct pci_dev *d, const struct snap_reader *r, char *err, size_t errlen);
	pthread_mutex_t lock;          /* config space, BARs, MSI-X, INTx */
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];   /* 1 = guest-writable bit */
	uint8_t cap_next, cap_last;    /* capability list allocation */
	struct pci_bar bar[PCI_NUM_BARS];
	struct pci_msix msix;
	bool intx_level;               /* the device's view of its line */
	bool intx_asserted;            /* what the irqchip was told */
	struct log_ratelimit rl;
};

struct pci_bus {
	struct bus *pio, *mmio;
	struct irq_router *irq;
	_Atomic uint32_t cf8;          /* type-1 CONFIG_ADDRESS latch */
	pthread_mutex_t lock;          /* slots and the BAR allocator */
	struct pci_dev *slots[PCI_MAX_SLOTS];
	struct pci_dev host;           /* 00:00.0 */
	uint64_t mmio_next;            /* next free BAR address */
	struct log_ratelimit rl;
};

/* Register 0xCF8-0xCFF on pio and ECAM on mmio, and put the host bridge at
 * 00:00.0. 0 or -errno. */
int pci_bus_init(struct pci_bus *pb, struct bus *pio, struct bus *mmio, struct irq_router *irq);
void pci_bus_destroy(struct pci_bus *pb);

/* class is the 24-bit class code (base << 16 | sub << 8 | prog-if). */
void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint8_t revision, uint32_t class, uint16_t subsys_vendor, uint16_t subsys_id);
/* A 32-bit non-prefetchable memory BAR; mapped when the device is added. */
int pci_bar_add(struct pci_dev *d, unsigned bar, uint32_t size, const struct bus_ops *ops,
		void *opaque);
/* Append a capability of len bytes (id and next are filled in); its bytes
 * are read-only. *off receives its config offset. 0, -EINVAL, -ENOSPC. */
int pci_cap_add(struct pci_dev *d, uint8_t id, const void *cap, uint8_t len, uint8_t *off);
/* MSI-X with nvec vectors, table and PBA in BAR bar at the given offsets
 * (the BAR's handler forwards those ranges to pci_msix_table_access and
 * pci_msix_pba_read). Needs d->bus (call after pci_bus_add). */
int pci_msix_init(struct pci_dev *d, unsigned nvec, unsigned bar, uint32_t table_off,
		  uint32_t pba_off);
/* Give d a slot (1-31), place and map its BARs. 0, -ENOSPC, -EEXIST. */
int pci_bus_add(struct pci_bus *pb, struct pci_dev *d);
/* Unmap, release vectors and the slot. */
void pci_dev_destroy(struct pci_dev *d);

/* Config space as the guest sees it (fn 1-7 and empty slots: all ones). */
uint32_t pci_cfg_read(struct pci_bus *pb, unsigned slot, unsigned fn, unsigned reg, unsigned size);
void pci_cfg_write(struct pci_bus *pb, unsigned slot, unsigned fn, unsigned reg, unsigned size,
		   uint32_t val);

/* MSI-X table / PBA accesses (offsets relative to table / PBA start). Only
 * 4- and 8-byte aligned accesses do anything. */
void pci_msix_table_access(struct pci_dev *d, uint64_t off, uint8_t *data, unsigned size,
			   bool is_write);
void pci_msix_pba_read(struct pci_dev *d, uint64_t off, uint8_t *data, unsigned size);
bool pci_msix_enabled(struct pci_dev *d);
/* Send vector vec, or set its pending bit while masked. 0, -EINVAL (no such
 * vector), -ENODEV (MSI-X disabled: use INTx), or the irqfd error. */
int pci_msix_notify(struct pci_dev *d, unsigned vec);
/* Drive the device's INTx (pin A) line; INTx-disable gates it. */
void pci_intx_set(struct pci_dev *d, bool level);
unsigned pci_intx_gsi(const struct pci_dev *d);

/* Snapshots. A device's payload (section "pci-dev", instance = slot): config
 * space, where each BAR is decoded, the MSI-X table and pending bits, the
 * INTx level. Loading keeps the device's read-only config bits, maps the
 * BARs where they were (the owner's bar_remap follows), re-sends the MSI
 * routes and drives INTx as saved; all or nothing, -EINVAL if malformed. */
#define PCI_STATE_VERSION 1
int pci_dev_save(struct pci_dev *d, struct snap_buf *b);
int pci_dev_load(struct pci_dev *d, struct snap_cur *c);
/* The bus: section "pci" (the CONFIG_ADDRESS latch and the device list),
 * then every device with its owner's sections. Loading refuses a snapshot
 * whose device list (slot, vendor, device ID) differs from pb's, naming the
 * slot in err. 0 or -errno. */
int pci_bus_save(struct pci_bus *pb, struct snap_buf *b);
int pci_bus_load(struct pci_bus *pb, const struct snap_reader *r, char *err, size_t errlen);

#endif
