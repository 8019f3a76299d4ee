/* GSI routing manager (KVM API: KVM_SET_GSI_ROUTING, KVM_IRQFD,
 * KVM_IOEVENTFD, KVM_IRQ_LINE). The ISA part reproduces a PC: IRQs 0-15 on
 * the two 8259s, GSIs 0-23 on IOAPIC pins, IRQ 0 on pin 2 (MADT override). */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/irq.h"

/* 15 PIC routes (no cascade) + 23 IOAPIC routes (GSI 2 has none: IRQ 0 goes
 * to pin 2 instead). */
#define IRQ_ISA_ROUTES (15 + 23)

static int irq_kvm_set_routing(struct irq_router *r, const void *entries, unsigned n)
{
	struct kvm_irq_routing *t;
	int rc = 0;

	t = calloc(1, sizeof(*t) + n * sizeof(struct kvm_irq_routing_entry));
	if (!t)
		return -ENOMEM;
	t->nr = n;
	memcpy(t->entries, entries, n * sizeof(struct kvm_irq_routing_entry));
	if (ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, t) < 0)
		rc = -errno;
	free(t);
	return rc;
}

static int irq_kvm_irqfd(struct irq_router *r, int fd, uint32_t gsi, bool assign)
{
	struct kvm_irqfd f = { .fd = (uint32_t)fd, .gsi = gsi,
			       .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN };
	return ioctl(r->vm_fd, KVM_IRQFD, &f) < 0 ? -errno : 0;
}

static int irq_kvm_ioeventfd(struct irq_router *r, uint64_t addr, unsigned len, int fd, bool assign)
{
	/* No datamatch: Linux writes the queue index, but the address alone
	 * says which queue. */
	struct kvm_ioeventfd e = { .addr = addr, .len = len, .fd = fd,
				   .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN };
	return ioctl(r->vm_fd, KVM_IOEVENTFD, &e) < 0 ? -errno : 0;
}

static int irq_kvm_line(struct irq_router *r, uint32_t gsi, int level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = (uint32_t)level };
	return ioctl(r->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

static const struct irq_kvm_ops irq_kvm_real = {
	.set_routing = irq_kvm_set_routing,
	.irqfd = irq_kvm_irqfd,
	.ioeventfd = irq_kvm_ioeventfd,
	.irq_line = irq_kvm_line,
};

void irq_router_init(struct irq_router *r, int vm_fd, const struct irq_kvm_ops *kvm)
{
	memset(r, 0, sizeof(*r));
	r->vm_fd = vm_fd;
	r->kvm = kvm ? kvm : &irq_kvm_real;
	pthread_mutex_init(&r->lock, NULL);
}

void irq_router_destroy(struct irq_router *r)
{
	pthread_mutex_destroy(&r->lock);
}

static unsigned irq_isa_routes(struct kvm_irq_routing_entry *e)
{
	unsigned n = 0;

	for (uint32_t gsi = 0; gsi < 16; gsi++) {
		if (gsi == 2)
			continue;
		e[n].gsi = gsi;
		e[n].type = KVM_IRQ_ROUTING_IRQCHIP;
		e[n].u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
		e[n].u.irqchip.pin = gsi % 8;
		n++;
	}
	for (uint32_t gsi = 0; gsi < IRQ_IOAPIC_PINS; gsi++) {
		if (gsi == 2)
			continue;
		e[n].gsi = gsi;
		e[n].type = KVM_IRQ_ROUTING_IRQCHIP;
		e[n].u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		e[n].u.irqchip.pin = gsi == 0 ? 2 : gsi;
		n++;
	}
	return n;
}

/* Caller holds r->lock. */
static int irq_commit_locked(struct irq_router *r)
{
	struct kvm_irq_routing_entry *e;
	unsigned n;
	int rc;

	e = calloc(IRQ_ISA_ROUTES + IRQ_MAX_MSI, sizeof(*e));
	if (!e)
		return -ENOMEM;
	n = irq_isa_routes(e);
	for (unsigned i = 0; i < IRQ_MAX_MSI; i++) {
		const struct irq_msi_route *m = &r->msi[i];
		if (!m->used || !m->valid)
			continue;
		e[n].gsi = IRQ_MSI_GSI_BASE + i;
		e[n].type = KVM_IRQ_ROUTING_MSI;
		e[n].u.msi.address_lo = (uint32_t)m->addr;
		e[n].u.msi.address_hi = (uint32_t)(m->addr >> 32);
		e[n].u.msi.data = m->data;
		n++;
	}
	rc = r->kvm->set_routing(r, e, n);
	if (!rc)
		r->commits++;
	free(e);
	return rc;
}

int irq_routing_commit(struct irq_router *r)
{
	pthread_mutex_lock(&r->lock);
	int rc = irq_commit_locked(r);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int irq_msi_alloc(struct irq_router *r, uint32_t *gsi)
{
	int rc = -ENOSPC;

	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < IRQ_MAX_MSI; i++) {
		if (r->msi[i].used)
			continue;
		r->msi[i] = (struct irq_msi_route){ .used = true };
		*gsi = IRQ_MSI_GSI_BASE + i;
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

static struct irq_msi_route *irq_msi_slot(struct irq_router *r, uint32_t gsi)
{
	if (gsi < IRQ_MSI_GSI_BASE || gsi - IRQ_MSI_GSI_BASE >= IRQ_MAX_MSI)
		return NULL;
	struct irq_msi_route *m = &r->msi[gsi - IRQ_MSI_GSI_BASE];
	return m->used ? m : NULL;
}

int irq_msi_set(struct irq_router *r, uint32_t gsi, uint64_t addr, uint32_t data)
{
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	struct irq_msi_route *m = irq_msi_slot(r, gsi);
	if (!m) {
		rc = -ENOENT;
	} else if (!m->valid || m->addr != addr || m->data != data) {
		struct irq_msi_route old = *m;
		*m = (struct irq_msi_route){ .used = true, .valid = true, .addr = addr, .data = data };
		rc = irq_commit_locked(r);
		if (rc)
			*m = old;
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void irq_msi_free(struct irq_router *r, uint32_t gsi)
{
	pthread_mutex_lock(&r->lock);
	struct irq_msi_route *m = irq_msi_slot(r, gsi);
	if (m) {
		bool was_valid = m->valid;
		*m = (struct irq_msi_route){ 0 };
		/* A stale route is harmless (no irqfd fires it); re-sending
		 * only keeps the table small. */
		if (was_valid)
			(void)irq_commit_locked(r);
	}
	pthread_mutex_unlock(&r->lock);
}

int irq_irqfd(struct irq_router *r, int fd, uint32_t gsi, bool assign)
{
	return r->kvm->irqfd(r, fd, gsi, assign);
}

int irq_ioeventfd(struct irq_router *r, uint64_t addr, unsigned len, int fd, bool assign)
{
	return r->kvm->ioeventfd(r, addr, len, fd, assign);
}

int irq_line(struct irq_router *r, uint32_t gsi, int level)
{
	return r->kvm->irq_line(r, gsi, level);
}
