/* The virtio 1.x modern PCI transport (virtio 1.2 section 4.1): a virtio
 * device behind a PCI function with vendor capabilities, MSI-X and INTx. */
#ifndef WAFER_DEVICES_VIRTIO_PCI_H
#define WAFER_DEVICES_VIRTIO_PCI_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/pci.h"
#include "devices/virtio/virtio.h"
#include "vmm/eventloop.h"

struct vm;

#define VIRTIO_PCI_VENDOR        0x1af4
#define VIRTIO_PCI_DEVICE_BASE   0x1040   /* + virtio device ID (4.1.2.1) */
#define VIRTIO_PCI_SUBSYS_ID     0x1100   /* >= 0x40 for non-transitional */
#define VIRTIO_NO_VECTOR         0xffff

/* Capability cfg_type values (4.1.4) */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG    3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4

/* Everything lives in one 32-bit memory BAR 0 (a 64-bit BAR buys nothing
 * while BARs sit in the 32-bit hole): */
#define VIRTIO_PCI_BAR           0
#define VIRTIO_PCI_BAR_SIZE      0x8000
#define VIRTIO_PCI_COMMON_OFF    0x0000
#define VIRTIO_PCI_COMMON_LEN    0x38
#define VIRTIO_PCI_ISR_OFF       0x1000
#define VIRTIO_PCI_DEVICE_OFF    0x2000
#define VIRTIO_PCI_DEVICE_MAX    0x1000
#define VIRTIO_PCI_NOTIFY_OFF    0x3000
#define VIRTIO_PCI_NOTIFY_MULT   4        /* queue q notifies at NOTIFY_OFF + 4q */
#define VIRTIO_PCI_MSIX_TABLE    0x4000
#define VIRTIO_PCI_MSIX_PBA      0x5000

/* Common configuration structure offsets (4.1.4.3) */
#define VIRTIO_PCI_COMMON_DFSELECT  0x00
#define VIRTIO_PCI_COMMON_DF        0x04
#define VIRTIO_PCI_COMMON_GFSELECT  0x08
#define VIRTIO_PCI_COMMON_GF        0x0c
#define VIRTIO_PCI_COMMON_MSIX      0x10
#define VIRTIO_PCI_COMMON_NUMQ      0x12
#define VIRTIO_PCI_COMMON_STATUS    0x14
#define VIRTIO_PCI_COMMON_CFGGEN    0x15
#define VIRTIO_PCI_COMMON_Q_SELECT  0x16
#define VIRTIO_PCI_COMMON_Q_SIZE    0x18
#define VIRTIO_PCI_COMMON_Q_MSIX    0x1a
#define VIRTIO_PCI_COMMON_Q_ENABLE  0x1c
#define VIRTIO_PCI_COMMON_Q_NOFF    0x1e
#define VIRTIO_PCI_COMMON_Q_DESC    0x20
#define VIRTIO_PCI_COMMON_Q_DRIVER  0x28
#define VIRTIO_PCI_COMMON_Q_DEVICE  0x30

struct virtio_pci_notify {
	int efd;                     /* -1 without an event loop */
	uint64_t ioeventfd_gpa;      /* where KVM watches it; 0 = not bound */
	struct virtio_pci *vp;
	unsigned q;
};

struct virtio_pci {
	struct pci_dev pci;
	struct virtio_dev *vdev;
	struct eventloop *io;        /* NULL: notifies run on the writing vCPU */
	/* Serialises the driver's register accesses with notify handling on
	 * the I/O thread; never taken on the interrupt path, which devices
	 * reach from inside queue_notify. */
	pthread_mutex_t lock;
	pthread_mutex_t isr_lock;    /* ISR and the INTx line change together */
	uint8_t isr;
	uint8_t generation;          /* config_generation (atomic accesses) */
	uint16_t config_msix;        /* atomic accesses */
	uint32_t dfselect, gfselect;
	uint64_t driver_features;    /* as written, checked at FEATURES_OK */
	uint16_t queue_sel;
	unsigned nvec;               /* MSI-X vectors: one per queue + config */
	struct virtio_pci_notify notify[VIRTIO_MAX_QUEUES];
};

/* Put d on the VM's PCI bus: slot, BAR, capabilities, MSI-X, ioeventfds on
 * the VM's I/O loop. On success the transport owns d (ops->destroy runs when
 * the bus goes away). 0 or -errno with a one-line reason in err. */
int virtio_pci_add(struct vm *vm, struct virtio_dev *d, char *err, size_t errlen);
/* The same against a bare bus (unit tests); io may be NULL. */
int virtio_pci_attach(struct pci_bus *pb, struct eventloop *io, struct virtio_dev *d,
		      struct virtio_pci **out, char *err, size_t errlen);

/* Snapshot payload of the transport (section "virtio-pci", instance = PCI
 * slot; the transport's pci_dev save/load hooks frame it and add the
 * device's own section): feature words and selectors, status, config
 * generation, ISR, vectors, queue select and every queue. Loading checks
 * the queues against guest RAM as enabling them does and refuses anything
 * the device could not have reached: 0, or -EINVAL with err, vp unchanged. */
#define VIRTIO_PCI_STATE_VERSION 1
int virtio_pci_save(struct virtio_pci *vp, struct snap_buf *b);
int virtio_pci_load(struct virtio_pci *vp, struct snap_cur *c, char *err, size_t errlen);

#endif
