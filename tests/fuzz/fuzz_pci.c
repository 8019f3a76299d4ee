/* libFuzzer target: the guest's view of PCI (PCI Local Bus 3.0 chapter 6) and
 * the virtio-pci modern transport (virtio 1.2 section 4.1): a bus with the
 * host bridge and a virtio-rng function, driven by a sequence of config
 * (0xCF8/0xCFC, ECAM) and BAR MMIO accesses -- BAR moves, MSI-X table
 * writes, queue setup against guest RAM, notifies, resets. KVM is a stub.
 * Input: nrec u8, then nrec records of 8 bytes
 *   op u8 (bit 0 write, bits 1-2 log2 size, bits 3-5 space), offset u24, value u32,
 * and the rest is the guest RAM image (the rings virtio-rng walks). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "devices/pci.h"
#include "devices/virtio/pci.h"
#include "devices/virtio/rng.h"
#include "fuzz.h"

#define RAM_SIZE (64u << 10)

enum { SP_CONFIG_PORTS, SP_ECAM, SP_VIRTIO_BAR, SP_MMIO_HOLE, SP_PIO, SP_CFG_DIRECT };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	log_threshold = LOG_ERROR;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	static struct bus pio, mmio;
	static struct irq_router irq;
	static struct pci_bus pb;
	struct guest_mem mem;
	struct virtio_pci *vp;
	char err[256];

	unsigned nrec = fuzz_u8(&in);
	if (nrec == 0 || in.n / 8 < nrec)
		nrec = (unsigned)(in.n / 8);
	struct fuzz_in recs = { in.p, 8u * nrec };
	in.p += 8u * nrec;
	in.n -= 8u * nrec;

	uint8_t *ram = malloc(RAM_SIZE);
	if (!ram)
		return 0;
	fuzz_fill(&in, ram, RAM_SIZE);
	gmem_init(&mem, ram, RAM_SIZE);
	memset(&pio, 0, sizeof(pio));
	memset(&mmio, 0, sizeof(mmio));
	irq_router_init(&irq, -1, &fuzz_kvm);
	if (pci_bus_init(&pb, &pio, &mmio, &irq))
		abort();
	struct virtio_dev *d = virtio_rng_create(&mem, err, sizeof(err));
	if (!d || virtio_pci_attach(&pb, NULL, d, &vp, err, sizeof(err))) {
		fprintf(stderr, "fuzz_pci: %s\n", err);
		abort();
	}

	while (recs.n) {
		uint8_t op = fuzz_u8(&recs);
		uint32_t off = (uint32_t)fuzz_uint(&recs, 3);
		uint32_t val = fuzz_u32(&recs);
		bool wr = op & 1;
		unsigned sz = 1u << ((op >> 1) & 3);
		uint64_t v = val | (uint64_t)val << 32;
		uint64_t addr;

		switch ((op >> 3) % 6) {
		case SP_CONFIG_PORTS:
			if (sz == 8)
				sz = 4;
			bus_access(&pio, PORT_PCI_CONFIG + off % PORT_PCI_CONFIG_LEN, (uint8_t *)&v, sz, wr);
			break;
		case SP_ECAM:
			bus_access(&mmio, PCI_ECAM_BASE + off % PCI_ECAM_SIZE, (uint8_t *)&v, sz, wr);
			break;
		case SP_VIRTIO_BAR:
			/* Wherever the guest put BAR 0 (its last programmed value). */
			addr = pci_cfg_read(&pb, vp->pci.slot, 0, PCI_BASE_ADDRESS_0, 4) & ~0xfull;
			bus_access(&mmio, addr + off % VIRTIO_PCI_BAR_SIZE, (uint8_t *)&v, sz, wr);
			break;
		case SP_MMIO_HOLE:
			bus_access(&mmio, PCI_MMIO_BASE + off, (uint8_t *)&v, sz, wr);
			break;
		case SP_PIO:
			if (sz == 8)
				sz = 4;
			bus_access(&pio, off & 0xffff, (uint8_t *)&v, sz, wr);
			break;
		case SP_CFG_DIRECT:
			if (sz == 8)
				sz = 4;
			if (wr)
				pci_cfg_write(&pb, (off >> 8) & 31, (off >> 13) & 7, off & 0xff, sz, val);
			else
				pci_cfg_read(&pb, (off >> 8) & 31, (off >> 13) & 7, off & 0xff, sz);
			break;
		}
	}

	pci_bus_destroy(&pb);   /* the transport destroys the device */
	irq_router_destroy(&irq);
	free(ram);
	return 0;
}
