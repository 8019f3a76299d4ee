/* Test guest: virtio-rng (virtio 1.2 section 5.4). Fills 64 bytes from the
 * request queue and checks they are not all zero. "unassign=1" first clears
 * the device's BARs so the library has to place them itself. */
#include <stddef.h>
#include <stdint.h>

#include "pvh.h"
#include "serial.h"
#include "virtio.h"

#define RNG_BYTES 64
/* A device may return fewer bytes than asked; bound the refills. */
#define RNG_MAX_REQUESTS 16

static struct virtio_dev rng;
static struct virtq rq;
static uint8_t buf[RNG_BYTES];

static void bars_clear(void)
{
	struct pci_dev d;

	if (pci_find(VIRTIO_PCI_VENDOR, VIRTIO_PCI_MODERN_BASE + VIRTIO_ID_RNG, 0, &d))
		return;
	pci_write16(&d, PCI_COMMAND, pci_read16(&d, PCI_COMMAND) &
		    ~(PCI_COMMAND_MEMORY | PCI_COMMAND_IO));
	for (unsigned bar = 0; bar < 6; bar++)
		pci_write32(&d, PCI_BAR0 + 4 * bar, 0);
	printf("rng: BARs cleared\n");
}

int guest_main(struct hvm_start_info *si)
{
	unsigned got = 0, requests = 0, nonzero = 0;

	(void)si;
	if (cmdline_get_u64("unassign", 0))
		bars_clear();
	if (virtio_find(VIRTIO_ID_RNG, 0, &rng) || virtio_start(&rng, 0) ||
	    virtq_setup(&rng, &rq, 0))
		return 1;
	virtio_driver_ok(&rng);
	virtio_print(&rng, "rng");

	while (got < RNG_BYTES && requests++ < RNG_MAX_REQUESTS) {
		struct virtq_buf in = { buf + got, RNG_BYTES - got };
		int n = virtq_transfer(&rq, NULL, 0, &in, 1);

		if (n < 0 || (unsigned)n > RNG_BYTES - got) {
			printf("rng: FAIL: request returned %d\n", n);
			return 1;
		}
		got += n;
	}
	if (got < RNG_BYTES) {
		printf("rng: FAIL: only %u bytes after %u requests\n", got, requests - 1);
		return 1;
	}
	for (unsigned i = 0; i < RNG_BYTES; i++)
		nonzero |= buf[i];
	if (!nonzero) {
		printf("rng: FAIL: %u bytes, all zero\n", got);
		return 1;
	}
	printf("rng: first bytes %02x%02x%02x%02x%02x%02x%02x%02x\n", buf[0], buf[1],
	       buf[2], buf[3], buf[4], buf[5], buf[6], buf[7]);
	printf("rng ok %u bytes\n", got);
	return 0;
}
