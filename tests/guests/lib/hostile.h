/* Guest library: tools for hostile guests, which break the virtio and PCI
 * rules on purpose to see the VMM survive (virtio 1.2 sections 2.1, 2.7,
 * 4.1.4.3; PCI 3.0 6.8.2). Transport access that skips the driver's checks,
 * queues placed anywhere, a PIT-timed watch for the device's reaction, the
 * end of RAM from the PVH memmap, and trick bookkeeping with pacing (so a
 * VMM's rate-limited log can show every trick). */
#ifndef GUEST_HOSTILE_H
#define GUEST_HOSTILE_H

#include <stdint.h>

#include "pvh.h"
#include "virtio.h"

/* virtio_pci_common_cfg (4.1.4.3) field offsets. */
#define HCC_DFSELECT     0x00
#define HCC_DF           0x04
#define HCC_GFSELECT     0x08
#define HCC_GF           0x0c
#define HCC_MSIX         0x10
#define HCC_NUM_QUEUES   0x12
#define HCC_STATUS       0x14
#define HCC_Q_SELECT     0x16
#define HCC_Q_SIZE       0x18
#define HCC_Q_MSIX       0x1a
#define HCC_Q_ENABLE     0x1c
#define HCC_Q_NOTIFY_OFF 0x1e
#define HCC_Q_DESC       0x20
#define HCC_Q_DRIVER     0x28
#define HCC_Q_DEVICE     0x30

#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTIO_NO_VECTOR 0xffff

/* An address that no x86 VMM backs with RAM or a device: the middle of the
 * 32-bit PCI hole, below where firmware and wafer place BARs. */
#define HOSTILE_HOLE_ADDR 0xd0000000ull

/* What a device did after a trick. */
enum hostile_reaction {
	REACT_NONE,         /* nothing within the watch time */
	REACT_USED,         /* the used index moved: it completed something */
	REACT_NEEDS_RESET,  /* status has DEVICE_NEEDS_RESET */
};

/* Names the guest for trick lines and reads pace_ms= (delay before each
 * trick, default 0) and watch_ms= (how long to wait for a reaction, default
 * 200) from the cmdline. */
void hostile_init(const char *guest_name);
extern unsigned hostile_pace_ms, hostile_watch_ms;

/* Busy-waits ms milliseconds on PIT channel 2 (port 0x61 gate). */
void hostile_delay_ms(unsigned ms);

/* Announces trick number ++n ("<guest>: <dev> #n <name>") after the pace
 * delay and returns n; or, when the cmdline's skip= lists the trick, says
 * so and returns 0 (the caller leaves it out). */
unsigned hostile_trick(const char *dev, const char *name);
extern unsigned hostile_tricks;

/* Whether the cmdline's skip=NAME[,NAME...] lists this trick: for tricks a
 * particular VMM is known not to survive, so the rest can still run there. */
int hostile_skip(const char *name);

/* End of the RAM entry of the PVH memmap that holds 1 MiB (where the guest
 * runs), or 0 when the loader gave no memmap. */
uint64_t hostile_ram_end(const struct hvm_start_info *si);

/* Common configuration accesses of any width at any offset. */
uint8_t hostile_cc_read8(const struct virtio_dev *vd, uint32_t off);
uint16_t hostile_cc_read16(const struct virtio_dev *vd, uint32_t off);
void hostile_cc_write8(const struct virtio_dev *vd, uint32_t off, uint8_t v);
void hostile_cc_write16(const struct virtio_dev *vd, uint32_t off, uint16_t v);
void hostile_cc_write32(const struct virtio_dev *vd, uint32_t off, uint32_t v);
void hostile_cc_write64(const struct virtio_dev *vd, uint32_t off, uint64_t v);

/* Writes status 0 and waits for it to read back 0: 0, or -1 when it never
 * does. */
int hostile_reset(const struct virtio_dev *vd);
/* Reset, ACKNOWLEDGE, DRIVER, then offer exactly `features` (whatever the
 * device offered) and set FEATURES_OK. 0 when the device kept FEATURES_OK,
 * 1 when it refused it, -1 when it did not reset. */
int hostile_begin(struct virtio_dev *vd, uint64_t features);
/* Queue q: size, the three ring addresses as given, then enable. No checks. */
void hostile_queue_place(const struct virtio_dev *vd, uint16_t q, uint16_t size,
			 uint64_t desc, uint64_t avail, uint64_t used);
/* Largest size queue q offers (0: no such queue). */
uint16_t hostile_queue_max(const struct virtio_dev *vd, uint16_t q);
/* Sets DRIVER_OK on top of the current status. */
void hostile_driver_ok(const struct virtio_dev *vd);
/* Notifies queue q with value v at its notification address. */
void hostile_notify(const struct virtio_dev *vd, uint16_t q, uint16_t v);

/* Polls until the status has NEEDS_RESET or *used_idx differs from `old`,
 * for at most ms milliseconds (used_idx may be NULL). */
enum hostile_reaction hostile_watch(const struct virtio_dev *vd, const volatile uint16_t *used_idx,
				    uint16_t old, unsigned ms);
const char *hostile_reaction_name(enum hostile_reaction r);

#endif
