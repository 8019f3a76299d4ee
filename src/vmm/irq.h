/* GSI routing and KVM's eventfd bindings: the PC's ISA/IOAPIC routes plus MSI
 * routes allocated for MSI-X vectors (KVM_SET_GSI_ROUTING replaces the whole
 * table, so this module owns it), irqfds, ioeventfds and INTx lines. */
#ifndef WAFER_VMM_IRQ_H
#define WAFER_VMM_IRQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define IRQ_IOAPIC_PINS  24    /* GSIs 0-23 are IOAPIC pins (0-15 also PIC) */
#define IRQ_MSI_GSI_BASE 24    /* MSI routes get GSIs from here */
#define IRQ_MAX_MSI      512

struct irq_router;

/* The KVM calls, as a table so unit tests can run the models without
 * /dev/kvm. Each returns 0 or -errno. */
struct irq_kvm_ops {
	/* entries/n: struct kvm_irq_routing_entry[] (opaque here). */
	int (*set_routing)(struct irq_router *r, const void *entries, unsigned n);
	int (*irqfd)(struct irq_router *r, int fd, uint32_t gsi, bool assign);
	int (*ioeventfd)(struct irq_router *r, uint64_t addr, unsigned len, int fd, bool assign);
	int (*irq_line)(struct irq_router *r, uint32_t gsi, int level);
};

struct irq_msi_route {
	bool used;         /* GSI allocated */
	bool valid;        /* address/data set: part of the routing table */
	uint64_t addr;
	uint32_t data;
};

struct irq_router {
	int vm_fd;
	const struct irq_kvm_ops *kvm;
	void *test_priv;   /* for test doubles of kvm */
	pthread_mutex_t lock;
	struct irq_msi_route msi[IRQ_MAX_MSI];   /* msi[i] is GSI IRQ_MSI_GSI_BASE + i */
	uint64_t commits;  /* routing tables sent (stats, tests) */
};

/* kvm NULL selects the real KVM ioctls on vm_fd. Does not touch KVM. */
void irq_router_init(struct irq_router *r, int vm_fd, const struct irq_kvm_ops *kvm);
void irq_router_destroy(struct irq_router *r);
/* Send the routing table (ISA routes + valid MSI routes) to KVM. */
int irq_routing_commit(struct irq_router *r);

/* Reserve an MSI GSI (no route until irq_msi_set): 0 or -ENOSPC. */
int irq_msi_alloc(struct irq_router *r, uint32_t *gsi);
/* Point gsi at the MSI (addr, data) and commit if that changed. */
int irq_msi_set(struct irq_router *r, uint32_t gsi, uint64_t addr, uint32_t data);
void irq_msi_free(struct irq_router *r, uint32_t gsi);

int irq_irqfd(struct irq_router *r, int fd, uint32_t gsi, bool assign);
/* Any write of len bytes at MMIO addr signals fd instead of exiting. */
int irq_ioeventfd(struct irq_router *r, uint64_t addr, unsigned len, int fd, bool assign);
int irq_line(struct irq_router *r, uint32_t gsi, int level);

#endif
