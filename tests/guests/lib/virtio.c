/* Guest library: virtio 1.x modern PCI driver core (virtio 1.2 sections 3.1
 * device initialization, 4.1.4 PCI capabilities, 2.7 split virtqueues),
 * polling for completions. See virtio.h. */
#include "io.h"
#include "serial.h"
#include "virtio.h"

/* virtio_pci_cap (4.1.4) field offsets, relative to the capability. */
#define VCAP_CFG_TYPE 3
#define VCAP_BAR      4
#define VCAP_OFFSET   8
#define VCAP_LENGTH   12
#define VCAP_NOTIFY_MULT 16
#define VCAP_NOTIFY_LEN  20    /* cap_len of virtio_pci_notify_cap */

#define VIRTIO_PCI_CAP_COMMON 1
#define VIRTIO_PCI_CAP_NOTIFY 2
#define VIRTIO_PCI_CAP_ISR    3
#define VIRTIO_PCI_CAP_DEVICE 4

/* virtio_pci_common_cfg (4.1.4.3) field offsets. */
#define CC_DFSELECT     0x00
#define CC_DF           0x04
#define CC_GFSELECT     0x08
#define CC_GF           0x0c
#define CC_NUM_QUEUES   0x12
#define CC_STATUS       0x14
#define CC_CFG_GEN      0x15
#define CC_Q_SELECT     0x16
#define CC_Q_SIZE       0x18
#define CC_Q_ENABLE     0x1c
#define CC_Q_NOTIFY_OFF 0x1e
#define CC_Q_DESC       0x20
#define CC_Q_DRIVER     0x28
#define CC_Q_DEVICE     0x30
#define CC_MIN_LEN      0x38   /* everything up to queue_device */

#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

/* Reset completes synchronously in every VMM we know; the bound only keeps a
 * broken device from hanging the guest. */
#define RESET_POLLS 100000

static void common_write64(const struct virtio_dev *vd, uint32_t off, uint64_t v)
{
	/* Two 32-bit halves: 4.1.3.1 lets the driver split 64-bit fields. */
	mmio_write32(vd->common + off, (uint32_t)v);
	mmio_write32(vd->common + off + 4, (uint32_t)(v >> 32));
}

static void status_set(struct virtio_dev *vd, uint8_t s)
{
	mmio_write8(vd->common + CC_STATUS, s);
}

uint8_t virtio_status(const struct virtio_dev *vd)
{
	return mmio_read8(vd->common + CC_STATUS);
}

void virtio_fail(struct virtio_dev *vd)
{
	status_set(vd, virtio_status(vd) | VIRTIO_STATUS_FAILED);
}

int virtio_find(uint16_t type, unsigned index, struct virtio_dev *vd)
{
	const struct pci_dev *d = &vd->pci;
	uint64_t bar_base[6] = { 0 }, bar_size[6] = { 0 };
	uint8_t pos = 0;

	*vd = (struct virtio_dev){ .type = type };
	if (pci_find(VIRTIO_PCI_VENDOR, VIRTIO_PCI_MODERN_BASE + type, index, &vd->pci)) {
		printf("virtio: no modern device of type %u (1af4:%x)\n", type,
		       VIRTIO_PCI_MODERN_BASE + type);
		return -1;
	}
	while ((pos = pci_cap_find(d, PCI_CAP_ID_VENDOR, pos))) {
		uint8_t cfg_type = pci_read8(d, pos + VCAP_CFG_TYPE);
		uint8_t bar = pci_read8(d, pos + VCAP_BAR);
		uint32_t off, len;
		uintptr_t addr;

		if (cfg_type < VIRTIO_PCI_CAP_COMMON || cfg_type > VIRTIO_PCI_CAP_DEVICE)
			continue;
		/* 4.1.4: use the first capability of each type; later ones are
		 * alternatives for drivers that cannot use it. */
		if ((cfg_type == VIRTIO_PCI_CAP_COMMON && vd->common) ||
		    (cfg_type == VIRTIO_PCI_CAP_NOTIFY && vd->notify) ||
		    (cfg_type == VIRTIO_PCI_CAP_ISR && vd->isr) ||
		    (cfg_type == VIRTIO_PCI_CAP_DEVICE && vd->device_cfg))
			continue;
		if (bar > 5)
			continue;
		if (!bar_size[bar] && pci_bar_map(d, bar, &bar_base[bar], &bar_size[bar])) {
			printf("virtio: %02x:%02x.%x: BAR%u unusable\n", d->bus, d->dev, d->fn, bar);
			return -1;
		}
		off = pci_read32(d, pos + VCAP_OFFSET);
		len = pci_read32(d, pos + VCAP_LENGTH);
		if ((uint64_t)off + len > bar_size[bar]) {
			printf("virtio: cap type %u overruns BAR%u\n", cfg_type, bar);
			return -1;
		}
		addr = (uintptr_t)(bar_base[bar] + off);
		switch (cfg_type) {
		case VIRTIO_PCI_CAP_COMMON:
			if (len < CC_MIN_LEN)
				continue;
			vd->common = addr;
			break;
		case VIRTIO_PCI_CAP_NOTIFY:
			if (len < 2 || pci_read8(d, pos + 2) < VCAP_NOTIFY_LEN)
				continue;
			vd->notify = addr;
			vd->notify_len = len;
			vd->notify_mult = pci_read32(d, pos + VCAP_NOTIFY_MULT);
			break;
		case VIRTIO_PCI_CAP_ISR:
			if (len < 1)
				continue;
			vd->isr = addr;
			break;
		case VIRTIO_PCI_CAP_DEVICE:
			vd->device_cfg = addr;
			vd->device_cfg_len = len;
			break;
		}
	}
	if (!vd->common || !vd->notify || !vd->isr) {
		printf("virtio: %02x:%02x.%x lacks a common, notify or isr capability\n",
		       d->bus, d->dev, d->fn);
		return -1;
	}
	pci_enable(d);
	vd->num_queues = mmio_read16(vd->common + CC_NUM_QUEUES);
	return 0;
}

int virtio_start(struct virtio_dev *vd, uint64_t wanted)
{
	const uint64_t unsupported = VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
		VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_RING_PACKED);
	unsigned i;

	status_set(vd, 0);
	for (i = 0; i < RESET_POLLS && virtio_status(vd) != 0; i++)
		cpu_relax();
	if (i == RESET_POLLS) {
		printf("virtio: device did not reset\n");
		return -1;
	}
	status_set(vd, VIRTIO_STATUS_ACKNOWLEDGE);
	status_set(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);

	mmio_write32(vd->common + CC_DFSELECT, 0);
	vd->offered = mmio_read32(vd->common + CC_DF);
	mmio_write32(vd->common + CC_DFSELECT, 1);
	vd->offered |= (uint64_t)mmio_read32(vd->common + CC_DF) << 32;
	if (!(vd->offered & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		printf("virtio: device does not offer VERSION_1 (features 0x%lx)\n",
		       (unsigned long)vd->offered);
		goto fail;
	}
	vd->features = vd->offered & (wanted | VIRTIO_BIT(VIRTIO_F_VERSION_1)) & ~unsupported;
	mmio_write32(vd->common + CC_GFSELECT, 0);
	mmio_write32(vd->common + CC_GF, (uint32_t)vd->features);
	mmio_write32(vd->common + CC_GFSELECT, 1);
	mmio_write32(vd->common + CC_GF, (uint32_t)(vd->features >> 32));

	status_set(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		   VIRTIO_STATUS_FEATURES_OK);
	if (!(virtio_status(vd) & VIRTIO_STATUS_FEATURES_OK)) {
		printf("virtio: device refused features 0x%lx\n", (unsigned long)vd->features);
		goto fail;
	}
	return 0;
fail:
	virtio_fail(vd);
	return -1;
}

int virtq_setup(struct virtio_dev *vd, struct virtq *vq, uint16_t index)
{
	uint16_t max, n, notify_off;
	uint64_t notify_at;

	if (index >= vd->num_queues) {
		printf("virtio: queue %u does not exist (%u queues)\n", index, vd->num_queues);
		return -1;
	}
	mmio_write16(vd->common + CC_Q_SELECT, index);
	max = mmio_read16(vd->common + CC_Q_SIZE);
	if (max == 0) {
		printf("virtio: queue %u is unavailable\n", index);
		return -1;
	}
	/* The largest power of two that fits both the device and our rings. */
	for (n = VIRTQ_SIZE; n > max; n >>= 1)
		;
	notify_off = mmio_read16(vd->common + CC_Q_NOTIFY_OFF);
	notify_at = (uint64_t)notify_off * vd->notify_mult;
	if (notify_at + 2 > vd->notify_len) {
		printf("virtio: queue %u notify offset %u is outside the notify region\n",
		       index, notify_off);
		return -1;
	}

	vq->size = n;
	vq->index = index;
	vq->notify = vd->notify + (uintptr_t)notify_at;
	for (uint16_t i = 0; i < n; i++) {
		vq->desc[i].next = i + 1;
		vq->chain_len[i] = 0;
	}
	vq->free_head = 0;
	vq->num_free = n;
	vq->last_used = 0;
	/* We poll the used ring, so interrupts would only be wasted work. */
	vq->avail.flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	vq->avail.idx = 0;
	vq->used.idx = 0;

	mmio_write16(vd->common + CC_Q_SIZE, n);
	common_write64(vd, CC_Q_DESC, (uintptr_t)vq->desc);
	common_write64(vd, CC_Q_DRIVER, (uintptr_t)&vq->avail);
	common_write64(vd, CC_Q_DEVICE, (uintptr_t)&vq->used);
	mmio_write16(vd->common + CC_Q_ENABLE, 1);
	return 0;
}

void virtio_driver_ok(struct virtio_dev *vd)
{
	status_set(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		   VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

void virtio_print(const struct virtio_dev *vd, const char *name)
{
	printf("%s: %04x:%04x at %02x:%02x.%x common=0x%lx notify=0x%lx*%u queues=%u "
	       "features=0x%lx of 0x%lx\n", name, vd->pci.vendor, vd->pci.device,
	       vd->pci.bus, vd->pci.dev, vd->pci.fn, (unsigned long)vd->common,
	       (unsigned long)vd->notify, vd->notify_mult, vd->num_queues,
	       (unsigned long)vd->features, (unsigned long)vd->offered);
}

static int cfg_check(const struct virtio_dev *vd, uint32_t off, uint32_t width)
{
	static int warned;

	if (vd->device_cfg && (uint64_t)off + width <= vd->device_cfg_len)
		return 0;
	if (!warned++)
		printf("virtio: config read at %u+%u is outside the device config (%u bytes)\n",
		       off, width, vd->device_cfg_len);
	return -1;
}

uint8_t virtio_cfg_read8(const struct virtio_dev *vd, uint32_t off)
{
	return cfg_check(vd, off, 1) ? 0 : mmio_read8(vd->device_cfg + off);
}

uint16_t virtio_cfg_read16(const struct virtio_dev *vd, uint32_t off)
{
	return cfg_check(vd, off, 2) ? 0 : mmio_read16(vd->device_cfg + off);
}

uint32_t virtio_cfg_read32(const struct virtio_dev *vd, uint32_t off)
{
	return cfg_check(vd, off, 4) ? 0 : mmio_read32(vd->device_cfg + off);
}

uint64_t virtio_cfg_read64(const struct virtio_dev *vd, uint32_t off)
{
	uint8_t gen;
	uint64_t v;

	if (cfg_check(vd, off, 8))
		return 0;
	/* The two halves must come from one config generation. The bound
	 * only matters against a device that changes config forever. */
	for (unsigned tries = 0; tries < 100; tries++) {
		gen = mmio_read8(vd->common + CC_CFG_GEN);
		v = mmio_read32(vd->device_cfg + off);
		v |= (uint64_t)mmio_read32(vd->device_cfg + off + 4) << 32;
		if (mmio_read8(vd->common + CC_CFG_GEN) == gen)
			break;
	}
	return v;
}

int virtq_submit(struct virtq *vq, const struct virtq_buf *out, unsigned n_out,
		 const struct virtq_buf *in, unsigned n_in)
{
	unsigned n = n_out + n_in;
	uint16_t head = vq->free_head, i = head;

	if (n == 0 || n > vq->num_free)
		return -1;
	for (unsigned k = 0; k < n; k++) {
		const struct virtq_buf *b = k < n_out ? &out[k] : &in[k - n_out];

		vq->desc[i].addr = (uintptr_t)b->addr;
		vq->desc[i].len = b->len;
		vq->desc[i].flags = (k >= n_out ? VIRTQ_DESC_F_WRITE : 0) |
				    (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
		i = vq->desc[i].next;
	}
	/* The tail's .next still holds its free-list link, which the device
	 * ignores without F_NEXT; virtq_wait overwrites it when freeing. */
	vq->free_head = i;
	vq->num_free -= n;
	vq->chain_len[head] = n;
	vq->avail.ring[vq->avail.idx % vq->size] = head;
	/* Descriptors and ring slot must be visible before the index moves. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	*(volatile uint16_t *)&vq->avail.idx = vq->avail.idx + 1;
	return head;
}

void virtq_kick(struct virtq *vq)
{
	/* The device may read avail.idx as soon as the notify lands. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	mmio_write16(vq->notify, vq->index);
}

int virtq_wait(struct virtq *vq, uint32_t *len, uint64_t timeout_cycles)
{
	volatile struct virtq_used *u = &vq->used;
	uint64_t start = tsc_read();
	uint32_t id;
	uint16_t n, tail;

	while (u->idx == vq->last_used) {
		if (tsc_read() - start > timeout_cycles)
			return -1;
		cpu_relax();
	}
	/* Read the element only after seeing the index that covers it. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	id = u->ring[vq->last_used % vq->size].id;
	*len = u->ring[vq->last_used % vq->size].len;
	vq->last_used++;
	if (id >= vq->size || vq->chain_len[id] == 0) {
		printf("virtio: queue %u: device returned bogus head %u\n", vq->index, id);
		return -1;
	}
	n = vq->chain_len[id];
	tail = id;
	for (uint16_t k = 1; k < n; k++)
		tail = vq->desc[tail].next;
	vq->desc[tail].next = vq->free_head;
	vq->free_head = id;
	vq->num_free += n;
	vq->chain_len[id] = 0;
	return (int)id;
}

int virtq_transfer(struct virtq *vq, const struct virtq_buf *out, unsigned n_out,
		   const struct virtq_buf *in, unsigned n_in)
{
	uint32_t len;
	int head = virtq_submit(vq, out, n_out, in, n_in), done;

	if (head < 0)
		return -1;
	virtq_kick(vq);
	done = virtq_wait(vq, &len, VIRTIO_WAIT_CYCLES);
	if (done < 0) {
		printf("virtio: queue %u: no completion\n", vq->index);
		return -1;
	}
	if (done != head) {
		printf("virtio: queue %u: completion for head %d, expected %d\n",
		       vq->index, done, head);
		return -1;
	}
	return (int)len;
}
