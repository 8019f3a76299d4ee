/* Virtio over PCI, modern interface only (virtio 1.2 section 4.1): common,
 * notify, ISR and device configuration structures in BAR 0 located by vendor
 * capabilities, MSI-X per queue, INTx with the ISR status fallback. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/virtio/pci.h"
#include "state/devices.h"
#include "vmm/vm.h"

/* struct virtio_pci_cap (4.1.4) plus the notify multiplier (4.1.4.4). */
struct virtio_pci_cap {
	uint8_t cap_vndr, cap_next, cap_len, cfg_type;
	uint8_t bar, id, padding[2];
	uint32_t offset, length;
	uint32_t notify_off_multiplier;   /* notify cap only */
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_pci_cap) == 20, "virtio_pci_notify_cap");

static uint32_t virtio_pci_class(uint16_t device_id)
{
	switch (device_id) {
	case 1: return 0x020000;   /* network, Ethernet */
	case 2: return 0x010000;   /* mass storage, SCSI */
	case 3: return 0x078000;   /* communication, other */
	default: return 0xff0000;  /* no better class (entropy, ...) */
	}
}

static uint8_t vp_status(const struct virtio_dev *d)
{
	return __atomic_load_n(&d->status, __ATOMIC_SEQ_CST);
}

/* --- interrupts (device -> driver); no vp->lock here --------------------- */

static void vp_intx_raise(struct virtio_pci *vp, uint8_t bit)
{
	pthread_mutex_lock(&vp->isr_lock);
	vp->isr |= bit;
	pci_intx_set(&vp->pci, true);
	pthread_mutex_unlock(&vp->isr_lock);
}

static void vp_send(struct virtio_pci *vp, uint16_t vec, uint8_t isr_bit)
{
	/* A vector goes out by MSI-X unless MSI-X is off (-ENODEV); with MSI-X
	 * on, NO_VECTOR means the driver wants no interrupt at all. */
	if (vec != VIRTIO_NO_VECTOR) {
		if (pci_msix_notify(&vp->pci, vec) != -ENODEV)
			return;
	} else if (pci_msix_enabled(&vp->pci)) {
		return;
	}
	vp_intx_raise(vp, isr_bit);
}

static void vp_notify_queue(struct virtio_dev *d, unsigned q)
{
	struct virtio_pci *vp = d->transport_priv;

	if (q >= d->ops->num_queues)
		return;
	vp_send(vp, __atomic_load_n(&d->vq[q].msix_vector, __ATOMIC_SEQ_CST), 1);
}

static void vp_notify_config(struct virtio_dev *d)
{
	struct virtio_pci *vp = d->transport_priv;

	__atomic_fetch_add(&vp->generation, 1, __ATOMIC_SEQ_CST);
	vp_send(vp, __atomic_load_n(&vp->config_msix, __ATOMIC_SEQ_CST), 2);
}

static const struct virtio_transport_ops vp_transport = {
	.notify_queue = vp_notify_queue,
	.notify_config = vp_notify_config,
};

/* --- driver notifications ------------------------------------------------ */

/* Caller holds vp->lock. */
static void vp_dispatch_notify(struct virtio_pci *vp, unsigned q)
{
	struct virtio_dev *d = vp->vdev;
	uint8_t s = vp_status(d);

	if (!(s & VIRTIO_STATUS_DRIVER_OK) || (s & VIRTIO_STATUS_NEEDS_RESET) || !d->vq[q].ready)
		return;
	if (d->ops->queue_notify)
		d->ops->queue_notify(d, q);
}

static void vp_notify_event(void *opaque, uint32_t events)
{
	struct virtio_pci_notify *n = opaque;
	uint64_t cnt;

	(void)events;
	if (read(n->efd, &cnt, sizeof(cnt)) != sizeof(cnt))
		return;
	pthread_mutex_lock(&n->vp->lock);
	vp_dispatch_notify(n->vp, n->q);
	pthread_mutex_unlock(&n->vp->lock);
}

/* A notify write KVM did not turn into an eventfd signal (no ioeventfd, or a
 * width other than 2): hand it to the I/O thread the same way. */
static void vp_notify_write(struct virtio_pci *vp, uint64_t off, unsigned size)
{
	uint64_t one = 1;
	unsigned q;

	if (off % VIRTIO_PCI_NOTIFY_MULT || (size != 2 && size != 4))
		return;
	q = (unsigned)(off / VIRTIO_PCI_NOTIFY_MULT);
	if (q >= vp->vdev->ops->num_queues)
		return;
	if (vp->notify[q].efd >= 0) {
		if (write(vp->notify[q].efd, &one, sizeof(one)) != sizeof(one))
			log_ratelimited(&vp->vdev->rl, LOG_WARN, "%s: notify eventfd: %s",
					vp->vdev->ops->name, strerror(errno));
		return;
	}
	pthread_mutex_lock(&vp->lock);
	vp_dispatch_notify(vp, q);
	pthread_mutex_unlock(&vp->lock);
}

/* BAR 0 moved: the ioeventfds follow it. Runs under the PCI device lock. */
static void vp_bar_remap(struct pci_dev *pd, unsigned bar, uint64_t old_addr, uint64_t new_addr)
{
	struct virtio_pci *vp = pd->opaque;
	struct irq_router *irq = pd->bus->irq;

	(void)old_addr;
	if (bar != VIRTIO_PCI_BAR)
		return;
	for (unsigned q = 0; q < vp->vdev->ops->num_queues; q++) {
		struct virtio_pci_notify *n = &vp->notify[q];
		if (n->efd < 0)
			continue;
		if (n->ioeventfd_gpa) {
			irq_ioeventfd(irq, n->ioeventfd_gpa, 2, n->efd, false);
			n->ioeventfd_gpa = 0;
		}
		if (!new_addr)
			continue;
		uint64_t gpa = new_addr + VIRTIO_PCI_NOTIFY_OFF + (uint64_t)q * VIRTIO_PCI_NOTIFY_MULT;
		/* Linux writes the 16-bit queue index; other widths still exit
		 * and reach vp_notify_write. */
		int rc = irq_ioeventfd(irq, gpa, 2, n->efd, true);
		if (rc)
			log_debug("%s: no ioeventfd for queue %u (%s); notifies exit to wafer",
				  vp->vdev->ops->name, q, strerror(-rc));
		else
			n->ioeventfd_gpa = gpa;
	}
}

/* --- common configuration ------------------------------------------------ */

/* Caller holds vp->lock. The device's own reset is for a driver-initiated
 * reset, not for the initial state. */
static void vp_reset(struct virtio_pci *vp, bool device_too)
{
	struct virtio_dev *d = vp->vdev;

	if (device_too && d->ops->reset)
		d->ops->reset(d);
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		virtq_reset(&d->vq[q]);
		d->vq[q].mem = d->mem;
		d->vq[q].size = q < d->ops->num_queues ? d->ops->queue_max_size : 0;
		__atomic_store_n(&d->vq[q].msix_vector, VIRTIO_NO_VECTOR, __ATOMIC_SEQ_CST);
	}
	d->features = 0;
	vp->driver_features = 0;
	vp->dfselect = vp->gfselect = 0;
	vp->queue_sel = 0;
	__atomic_store_n(&vp->config_msix, VIRTIO_NO_VECTOR, __ATOMIC_SEQ_CST);
	__atomic_store_n(&d->status, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&vp->isr_lock);
	vp->isr = 0;
	pci_intx_set(&vp->pci, false);
	pthread_mutex_unlock(&vp->isr_lock);
}

/* Caller holds vp->lock. 3.1.1: the device accepts FEATURES_OK only for a
 * subset of what it offered that includes VERSION_1 (no legacy here). */
static void vp_write_status(struct virtio_pci *vp, uint8_t v)
{
	struct virtio_dev *d = vp->vdev;
	uint8_t old = vp_status(d);

	if (v == 0) {
		vp_reset(vp, true);
		return;
	}
	v |= old & VIRTIO_STATUS_NEEDS_RESET;
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		uint64_t f = vp->driver_features;
		if ((f & ~d->device_features) || !(f & (1ull << VIRTIO_F_VERSION_1)))
			v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		else
			d->features = f;
	}
	__atomic_store_n(&d->status, v, __ATOMIC_SEQ_CST);
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (!(v & VIRTIO_STATUS_FEATURES_OK))
			virtio_dev_needs_reset(d, "DRIVER_OK without FEATURES_OK");
		else if (d->ops->activate && d->ops->activate(d))
			virtio_dev_needs_reset(d, "activation failed");
	}
}

/* Why q cannot run with d under the negotiated features, or NULL; sets
 * the queue's ring feature flags. */
static const char *vp_queue_check(const struct virtio_dev *d, uint64_t features, struct virtq *q)
{
	uint16_t max = d->ops->queue_max_size;

	if (q->size == 0 || q->size > max || (q->size & (q->size - 1)))
		return "queue size not a power of two within the maximum";
	q->event_idx = (features >> VIRTIO_F_EVENT_IDX) & 1;
	q->indirect = (features >> VIRTIO_F_INDIRECT_DESC) & 1;
	if (virtq_init(q, d->mem))
		return "queue rings outside guest RAM or misaligned";
	return NULL;
}

/* Caller holds vp->lock. */
static void vp_enable_queue(struct virtio_pci *vp, struct virtq *q)
{
	struct virtio_dev *d = vp->vdev;
	const char *why = vp_queue_check(d, d->features, q);

	if (why) {
		virtio_dev_needs_reset(d, why);
		return;
	}
	q->ready = true;
}

static struct virtq *vp_selected(struct virtio_pci *vp)
{
	if (vp->queue_sel >= vp->vdev->ops->num_queues)
		return NULL;
	return &vp->vdev->vq[vp->queue_sel];
}

/* 64-bit queue addresses: one 8-byte or two 4-byte accesses (4.1.3.1). */
static uint64_t *vp_queue_addr(struct virtq *q, uint64_t off)
{
	switch (off & ~7ull) {
	case VIRTIO_PCI_COMMON_Q_DESC: return &q->desc_gpa;
	case VIRTIO_PCI_COMMON_Q_DRIVER: return &q->avail_gpa;
	default: return &q->used_gpa;
	}
}

/* Caller holds vp->lock. Accesses must match a field's width; anything
 * else reads 0 and writes nothing. */
static uint64_t vp_common_read(struct virtio_pci *vp, uint64_t off, unsigned size)
{
	struct virtio_dev *d = vp->vdev;
	struct virtq *q = vp_selected(vp);

	if (off >= VIRTIO_PCI_COMMON_Q_DESC && off < VIRTIO_PCI_COMMON_LEN) {
		if (!q || !(size == 8 || size == 4) || off % size)
			return 0;
		uint64_t v = *vp_queue_addr(q, off);
		return size == 8 ? v : (uint32_t)(v >> (off & 4 ? 32 : 0));
	}
	switch (off | (uint64_t)size << 32) {
	case VIRTIO_PCI_COMMON_DFSELECT | 4ull << 32:
		return vp->dfselect;
	case VIRTIO_PCI_COMMON_DF | 4ull << 32:
		return vp->dfselect < 2 ? (uint32_t)(d->device_features >> (32 * vp->dfselect)) : 0;
	case VIRTIO_PCI_COMMON_GFSELECT | 4ull << 32:
		return vp->gfselect;
	case VIRTIO_PCI_COMMON_GF | 4ull << 32:
		return vp->gfselect < 2 ? (uint32_t)(vp->driver_features >> (32 * vp->gfselect)) : 0;
	case VIRTIO_PCI_COMMON_MSIX | 2ull << 32:
		return __atomic_load_n(&vp->config_msix, __ATOMIC_SEQ_CST);
	case VIRTIO_PCI_COMMON_NUMQ | 2ull << 32:
		return d->ops->num_queues;
	case VIRTIO_PCI_COMMON_STATUS | 1ull << 32:
		return vp_status(d);
	case VIRTIO_PCI_COMMON_CFGGEN | 1ull << 32:
		return __atomic_load_n(&vp->generation, __ATOMIC_SEQ_CST);
	case VIRTIO_PCI_COMMON_Q_SELECT | 2ull << 32:
		return vp->queue_sel;
	case VIRTIO_PCI_COMMON_Q_SIZE | 2ull << 32:
		return q ? q->size : 0;
	case VIRTIO_PCI_COMMON_Q_MSIX | 2ull << 32:
		return q ? __atomic_load_n(&q->msix_vector, __ATOMIC_SEQ_CST) : VIRTIO_NO_VECTOR;
	case VIRTIO_PCI_COMMON_Q_ENABLE | 2ull << 32:
		return q ? q->ready : 0;
	case VIRTIO_PCI_COMMON_Q_NOFF | 2ull << 32:
		return q ? vp->queue_sel : 0;
	default:
		return 0;
	}
}

static uint16_t vp_vector(struct virtio_pci *vp, uint64_t v)
{
	/* 4.1.4.3.2: a vector the device cannot map reads back NO_VECTOR. */
	return v < vp->nvec ? (uint16_t)v : VIRTIO_NO_VECTOR;
}

/* Caller holds vp->lock. */
static void vp_common_write(struct virtio_pci *vp, uint64_t off, unsigned size, uint64_t v)
{
	struct virtio_dev *d = vp->vdev;
	struct virtq *q = vp_selected(vp);
	bool setup = q && !q->ready;   /* queue fields are frozen once enabled */

	if (off >= VIRTIO_PCI_COMMON_Q_DESC && off < VIRTIO_PCI_COMMON_LEN) {
		if (!setup || !(size == 8 || size == 4) || off % size)
			return;
		uint64_t *a = vp_queue_addr(q, off);
		if (size == 8)
			*a = v;
		else if (off & 4)
			*a = (*a & 0xffffffffull) | v << 32;
		else
			*a = (*a & ~0xffffffffull) | (uint32_t)v;
		return;
	}
	switch (off | (uint64_t)size << 32) {
	case VIRTIO_PCI_COMMON_DFSELECT | 4ull << 32:
		vp->dfselect = (uint32_t)v;
		break;
	case VIRTIO_PCI_COMMON_GFSELECT | 4ull << 32:
		vp->gfselect = (uint32_t)v;
		break;
	case VIRTIO_PCI_COMMON_GF | 4ull << 32:
		if (vp->gfselect < 2 && !(vp_status(d) & VIRTIO_STATUS_FEATURES_OK)) {
			unsigned sh = 32 * vp->gfselect;
			vp->driver_features = (vp->driver_features & ~(0xffffffffull << sh)) |
					      (v & 0xffffffffull) << sh;
		}
		break;
	case VIRTIO_PCI_COMMON_MSIX | 2ull << 32:
		__atomic_store_n(&vp->config_msix, vp_vector(vp, v), __ATOMIC_SEQ_CST);
		break;
	case VIRTIO_PCI_COMMON_STATUS | 1ull << 32:
		vp_write_status(vp, (uint8_t)v);
		break;
	case VIRTIO_PCI_COMMON_Q_SELECT | 2ull << 32:
		vp->queue_sel = (uint16_t)v;
		break;
	case VIRTIO_PCI_COMMON_Q_SIZE | 2ull << 32:
		if (setup)
			q->size = (uint16_t)v;
		break;
	case VIRTIO_PCI_COMMON_Q_MSIX | 2ull << 32:
		if (q)
			__atomic_store_n(&q->msix_vector, vp_vector(vp, v), __ATOMIC_SEQ_CST);
		break;
	case VIRTIO_PCI_COMMON_Q_ENABLE | 2ull << 32:
		/* Writing 0 is not allowed without VIRTIO_F_RING_RESET. */
		if (setup && v == 1)
			vp_enable_queue(vp, q);
		break;
	default:
		break;   /* read-only field or wrong width */
	}
}

/* --- BAR 0 --------------------------------------------------------------- */

static bool vp_in(uint64_t off, unsigned size, uint64_t start, uint64_t len)
{
	return off >= start && off - start < len && size <= len - (off - start);
}

static uint64_t vp_load(const uint8_t *data, unsigned size)
{
	uint64_t v = 0;
	memcpy(&v, data, size <= 8 ? size : 8);
	return v;
}

static void vp_bar_read(void *opaque, uint64_t off, uint8_t *data, unsigned size)
{
	struct virtio_pci *vp = opaque;
	struct virtio_dev *d = vp->vdev;
	uint64_t v;

	if (size > 8)
		return;
	if (vp_in(off, size, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_LEN)) {
		pthread_mutex_lock(&vp->lock);
		v = vp_common_read(vp, off - VIRTIO_PCI_COMMON_OFF, size);
		pthread_mutex_unlock(&vp->lock);
		memcpy(data, &v, size);
	} else if (off == VIRTIO_PCI_ISR_OFF) {
		/* Reading ISR acknowledges it and drops INTx (4.1.4.5). */
		pthread_mutex_lock(&vp->isr_lock);
		data[0] = vp->isr;
		vp->isr = 0;
		pci_intx_set(&vp->pci, false);
		pthread_mutex_unlock(&vp->isr_lock);
	} else if (vp_in(off, size, VIRTIO_PCI_DEVICE_OFF, d->ops->config_size)) {
		if (d->ops->config_read) {
			pthread_mutex_lock(&vp->lock);
			d->ops->config_read(d, (uint32_t)(off - VIRTIO_PCI_DEVICE_OFF), data, size);
			pthread_mutex_unlock(&vp->lock);
		}
	} else if (vp_in(off, size, VIRTIO_PCI_MSIX_TABLE, vp->nvec * PCI_MSIX_ENTRY_SIZE)) {
		pci_msix_table_access(&vp->pci, off - VIRTIO_PCI_MSIX_TABLE, data, size, false);
	} else if (vp_in(off, size, VIRTIO_PCI_MSIX_PBA, (vp->nvec + 63) / 64 * 8)) {
		pci_msix_pba_read(&vp->pci, off - VIRTIO_PCI_MSIX_PBA, data, size);
	}
}

static void vp_bar_write(void *opaque, uint64_t off, const uint8_t *data, unsigned size)
{
	struct virtio_pci *vp = opaque;
	struct virtio_dev *d = vp->vdev;

	if (size > 8)
		return;
	if (vp_in(off, size, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_LEN)) {
		pthread_mutex_lock(&vp->lock);
		vp_common_write(vp, off - VIRTIO_PCI_COMMON_OFF, size, vp_load(data, size));
		pthread_mutex_unlock(&vp->lock);
	} else if (vp_in(off, size, VIRTIO_PCI_NOTIFY_OFF,
			 (uint64_t)d->ops->num_queues * VIRTIO_PCI_NOTIFY_MULT)) {
		vp_notify_write(vp, off - VIRTIO_PCI_NOTIFY_OFF, size);
	} else if (vp_in(off, size, VIRTIO_PCI_DEVICE_OFF, d->ops->config_size)) {
		if (d->ops->config_write) {
			pthread_mutex_lock(&vp->lock);
			d->ops->config_write(d, (uint32_t)(off - VIRTIO_PCI_DEVICE_OFF), data, size);
			pthread_mutex_unlock(&vp->lock);
		}
	} else if (vp_in(off, size, VIRTIO_PCI_MSIX_TABLE, vp->nvec * PCI_MSIX_ENTRY_SIZE)) {
		pci_msix_table_access(&vp->pci, off - VIRTIO_PCI_MSIX_TABLE, (uint8_t *)data, size,
				      true);
	}
}

static const struct bus_ops vp_bar_ops = { vp_bar_read, vp_bar_write };

/* --- snapshots ------------------------------------------------------------ */

int virtio_pci_save(struct virtio_pci *vp, struct snap_buf *b)
{
	struct virtio_dev *d = vp->vdev;

	pthread_mutex_lock(&vp->lock);
	snap_buf_put_u16(b, d->ops->device_id);
	snap_buf_put_u16(b, (uint16_t)d->ops->num_queues);
	snap_buf_put_u64(b, d->device_features);
	snap_buf_put_u64(b, vp->driver_features);
	snap_buf_put_u64(b, d->features);
	snap_buf_put_u32(b, vp->dfselect);
	snap_buf_put_u32(b, vp->gfselect);
	snap_buf_put_u8(b, vp_status(d));
	snap_buf_put_u8(b, __atomic_load_n(&vp->generation, __ATOMIC_SEQ_CST));
	pthread_mutex_lock(&vp->isr_lock);
	snap_buf_put_u8(b, vp->isr);
	pthread_mutex_unlock(&vp->isr_lock);
	snap_buf_put_u16(b, __atomic_load_n(&vp->config_msix, __ATOMIC_SEQ_CST));
	snap_buf_put_u16(b, vp->queue_sel);
	for (unsigned q = 0; q < d->ops->num_queues; q++)
		virtq_save(&d->vq[q], b);
	pthread_mutex_unlock(&vp->lock);
	return b->err;
}

static bool vp_vector_ok(const struct virtio_pci *vp, uint16_t v)
{
	return v < vp->nvec || v == VIRTIO_NO_VECTOR;
}

/* Parse and check the transport payload into vp's device: 0, or -EINVAL
 * with the reason in err and nothing changed. */
int virtio_pci_load(struct virtio_pci *vp, struct snap_cur *c, char *err, size_t errlen)
{
	struct virtio_dev *d = vp->vdev;
	const struct virtio_dev_ops *ops = d->ops;
	struct virtq vq[VIRTIO_MAX_QUEUES];
	const char *why = NULL;
	int bad_q = -1;

	uint16_t device_id = snap_cur_u16(c), nq = snap_cur_u16(c);
	(void)snap_cur_u64(c);   /* what the source offered: only what was taken matters */
	uint64_t driver_features = snap_cur_u64(c), features = snap_cur_u64(c);
	uint32_t dfselect = snap_cur_u32(c), gfselect = snap_cur_u32(c);
	uint8_t status = snap_cur_u8(c), generation = snap_cur_u8(c), isr = snap_cur_u8(c);
	uint16_t config_msix = snap_cur_u16(c), queue_sel = snap_cur_u16(c);

	if (device_id != ops->device_id || nq != ops->num_queues)
		why = "another device type or queue count";
	else if (features & ~d->device_features)
		why = "the guest uses features this device does not offer";
	else if ((status & VIRTIO_STATUS_FEATURES_OK) && !(features & (1ull << VIRTIO_F_VERSION_1)))
		why = "FEATURES_OK without VIRTIO_F_VERSION_1";
	else if (!vp_vector_ok(vp, config_msix))
		why = "config MSI-X vector out of range";
	for (unsigned q = 0; q < nq && !why; q++) {
		vq[q] = d->vq[q];
		if (virtq_load(&vq[q], c, d->mem))
			why = "truncated or malformed";
		else if (vq[q].ready)
			why = vp_queue_check(d, features, &vq[q]);
		/* Chains in flight are at most a ring's worth, and a device
		 * never returns more than it took. */
		if (!why && vq[q].ready && (uint16_t)(vq[q].last_avail - vq[q].used_idx) > vq[q].size)
			why = "used index ahead of the chains taken";
		if (!why && !vp_vector_ok(vp, vq[q].msix_vector))
			why = "MSI-X vector out of range";
		if (why)
			bad_q = (int)q;
	}
	if (!why && snap_cur_end(c))
		why = "truncated or trailing bytes";
	if (why) {
		if (bad_q >= 0)
			snprintf(err, errlen, "%s queue %d: %s", ops->name, bad_q, why);
		else
			snprintf(err, errlen, "%s: %s", ops->name, why);
		return -EINVAL;
	}

	pthread_mutex_lock(&vp->lock);
	d->features = features;
	vp->driver_features = driver_features;
	vp->dfselect = dfselect;
	vp->gfselect = gfselect;
	vp->queue_sel = queue_sel;
	__atomic_store_n(&vp->generation, generation, __ATOMIC_SEQ_CST);
	__atomic_store_n(&vp->config_msix, config_msix, __ATOMIC_SEQ_CST);
	for (unsigned q = 0; q < nq; q++)
		d->vq[q] = vq[q];
	__atomic_store_n(&d->status, status, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&vp->isr_lock);
	vp->isr = isr;      /* the INTx line itself is the PCI layer's state */
	pthread_mutex_unlock(&vp->isr_lock);
	pthread_mutex_unlock(&vp->lock);
	return 0;
}

/* After a load: a running device is activated as on DRIVER_OK, and every
 * ready queue is looked at once -- the driver may have notified before the
 * snapshot about buffers the device never saw, and will not do so again. */
static int vp_restart(struct virtio_pci *vp, char *err, size_t errlen)
{
	struct virtio_dev *d = vp->vdev;
	uint8_t st = vp_status(d);

	if ((st & VIRTIO_STATUS_DRIVER_OK) && !(st & VIRTIO_STATUS_NEEDS_RESET) &&
	    d->ops->activate) {
		int rc = d->ops->activate(d);
		if (rc) {
			snprintf(err, errlen, "%s in pci slot %u: cannot activate: %s", d->ops->name,
				 vp->pci.slot, strerror(-rc));
			return rc;
		}
	}
	for (unsigned q = 0; q < d->ops->num_queues; q++)
		if (d->vq[q].ready)
			vp_notify_write(vp, (uint64_t)q * VIRTIO_PCI_NOTIFY_MULT, 2);
	return 0;
}

static int vp_state_save(struct pci_dev *pd, struct snap_buf *b)
{
	struct virtio_pci *vp = pd->opaque;
	struct virtio_dev *d = vp->vdev;
	size_t tok = snap_section_begin(b, "virtio-pci", pd->slot, VIRTIO_PCI_STATE_VERSION);
	int rc = 0;

	virtio_pci_save(vp, b);
	snap_section_end(b, tok);
	if (d->ops->save) {
		tok = snap_section_begin(b, d->ops->name, pd->slot, d->ops->state_version);
		rc = d->ops->save(d, b);
		snap_section_end(b, tok);
	}
	return rc ? rc : b->err;
}

static int vp_state_load(struct pci_dev *pd, const struct snap_reader *r, char *err, size_t errlen)
{
	struct virtio_pci *vp = pd->opaque;
	struct virtio_dev *d = vp->vdev;
	struct snap_cur c;
	char why[192];
	int rc;

	rc = state_section_open(r, "virtio-pci", pd->slot, VIRTIO_PCI_STATE_VERSION, &c, err, errlen);
	if (rc)
		return rc;
	rc = virtio_pci_load(vp, &c, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "section virtio-pci/%u: %s", pd->slot, why);
		return rc;
	}
	if (d->ops->load) {
		rc = state_section_open(r, d->ops->name, pd->slot, d->ops->state_version, &c, err,
					errlen);
		if (rc)
			return rc;
		why[0] = '\0';
		rc = d->ops->load(d, &c, why, sizeof(why));
		if (rc && why[0]) {
			snprintf(err, errlen, "section %s/%u: %s", d->ops->name, pd->slot, why);
			return rc;
		}
		if (rc)
			return state_section_done(rc, d->ops->name, pd->slot, err, errlen);
	}
	return vp_restart(vp, err, errlen);
}

/* --- setup ---------------------------------------------------------------- */

static int vp_add_cap(struct virtio_pci *vp, uint8_t type, uint32_t off, uint32_t len)
{
	struct virtio_pci_cap c = {
		.cap_len = type == VIRTIO_PCI_CAP_NOTIFY_CFG ? 20 : 16,
		.cfg_type = type,
		.bar = VIRTIO_PCI_BAR,
		.offset = off,
		.length = len,
		.notify_off_multiplier = VIRTIO_PCI_NOTIFY_MULT,
	};
	return pci_cap_add(&vp->pci, PCI_CAP_ID_VNDR, &c, c.cap_len, NULL);
}

static void vp_free(struct virtio_pci *vp)
{
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		struct virtio_pci_notify *n = &vp->notify[q];
		if (n->efd < 0)
			continue;
		if (vp->io)
			eventloop_del(vp->io, n->efd);
		close(n->efd);
	}
	pthread_mutex_destroy(&vp->isr_lock);
	pthread_mutex_destroy(&vp->lock);
	free(vp);
}

static void vp_release(struct pci_dev *pd)
{
	struct virtio_pci *vp = pd->opaque;
	struct virtio_dev *d = vp->vdev;

	pci_dev_destroy(pd);   /* unmaps BAR 0, so the ioeventfds go too */
	if (d->ops->destroy)
		d->ops->destroy(d);
	vp_free(vp);
}

int virtio_pci_attach(struct pci_bus *pb, struct eventloop *io, struct virtio_dev *d,
		      struct virtio_pci **out, char *err, size_t errlen)
{
	const struct virtio_dev_ops *ops = d ? d->ops : NULL;
	struct virtio_pci *vp;
	int rc;

	if (!ops || !d->mem || ops->num_queues == 0 || ops->num_queues > VIRTIO_MAX_QUEUES ||
	    ops->queue_max_size == 0 || ops->queue_max_size > VIRTQ_MAX_SIZE ||
	    (ops->queue_max_size & (ops->queue_max_size - 1)) ||
	    ops->config_size > VIRTIO_PCI_DEVICE_MAX || ops->device_id >= 0x40) {
		snprintf(err, errlen, "%s: invalid virtio device description",
			 ops && ops->name ? ops->name : "virtio");
		return -EINVAL;
	}
	vp = calloc(1, sizeof(*vp));
	if (!vp)
		return -ENOMEM;
	pthread_mutex_init(&vp->lock, NULL);
	pthread_mutex_init(&vp->isr_lock, NULL);
	vp->vdev = d;
	vp->io = io;
	vp->nvec = ops->num_queues + 1;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vp->notify[q] = (struct virtio_pci_notify){ .efd = -1, .vp = vp, .q = q };

	d->transport = &vp_transport;
	d->transport_priv = vp;
	d->device_features = (ops->features ? ops->features(d) : 0) |
			     1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT_IDX |
			     1ull << VIRTIO_F_INDIRECT_DESC;

	for (unsigned q = 0; io && q < ops->num_queues; q++) {
		struct virtio_pci_notify *n = &vp->notify[q];
		n->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (n->efd < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s: eventfd: %s", ops->name, strerror(-rc));
			goto out;
		}
		rc = eventloop_add(io, n->efd, EPOLLIN, vp_notify_event, n);
		if (rc) {
			close(n->efd);
			n->efd = -1;
			snprintf(err, errlen, "%s: event loop: %s", ops->name, strerror(-rc));
			goto out;
		}
	}

	pci_dev_init(&vp->pci, ops->name, VIRTIO_PCI_VENDOR,
		     (uint16_t)(VIRTIO_PCI_DEVICE_BASE + ops->device_id), 1,
		     virtio_pci_class(ops->device_id), VIRTIO_PCI_VENDOR, VIRTIO_PCI_SUBSYS_ID);
	vp->pci.opaque = vp;
	vp->pci.bar_remap = vp_bar_remap;
	vp->pci.save = vp_state_save;
	vp->pci.load = vp_state_load;
	vp_reset(vp, false);
	rc = pci_bar_add(&vp->pci, VIRTIO_PCI_BAR, VIRTIO_PCI_BAR_SIZE, &vp_bar_ops, vp);
	if (!rc)
		rc = vp_add_cap(vp, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF,
				VIRTIO_PCI_COMMON_LEN);
	if (!rc)
		rc = vp_add_cap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
				ops->num_queues * VIRTIO_PCI_NOTIFY_MULT);
	if (!rc)
		rc = vp_add_cap(vp, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1);
	if (!rc && ops->config_size)
		rc = vp_add_cap(vp, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF,
				ops->config_size);
	if (rc) {
		snprintf(err, errlen, "%s: PCI capabilities: %s", ops->name, strerror(-rc));
		pthread_mutex_destroy(&vp->pci.lock);
		goto out;
	}
	rc = pci_bus_add(pb, &vp->pci);
	if (rc) {
		snprintf(err, errlen, "%s: no PCI slot or BAR space: %s", ops->name, strerror(-rc));
		pthread_mutex_destroy(&vp->pci.lock);
		goto out;
	}
	rc = pci_msix_init(&vp->pci, vp->nvec, VIRTIO_PCI_BAR, VIRTIO_PCI_MSIX_TABLE,
			   VIRTIO_PCI_MSIX_PBA);
	if (rc) {
		snprintf(err, errlen, "%s: MSI-X: %s", ops->name, strerror(-rc));
		pci_dev_destroy(&vp->pci);
		goto out;
	}
	vp->pci.release = vp_release;
	if (out)
		*out = vp;
out:
	if (rc) {
		d->transport = NULL;
		d->transport_priv = NULL;
		vp_free(vp);
	}
	return rc;
}

int virtio_pci_add(struct vm *vm, struct virtio_dev *d, char *err, size_t errlen)
{
	if (!vm->pci) {
		snprintf(err, errlen, "no PCI bus");
		return -ENODEV;
	}
	return virtio_pci_attach(vm->pci, vm->io_ready ? &vm->io : NULL, d, NULL, err, errlen);
}
