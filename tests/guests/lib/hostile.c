/* Guest library: tools for hostile guests (see hostile.h): raw virtio common
 * configuration access, queue placement, reaction watch, PIT channel 2
 * delays, the PVH memmap's end of RAM and trick pacing. */
#include "hostile.h"
#include "io.h"
#include "pit.h"
#include "serial.h"
#include "string.h"

#define PIT_TICKS_PER_MS 1193u
#define PIT_CHUNK_MS 50u        /* 50 * 1193 fits the 16-bit count */

/* A PIT whose OUT2 never rises (port 0x61 not emulated) must not hang the
 * guest: this many polls of one chunk, far more than 50 ms takes anywhere. */
#define PIT_MAX_POLLS 50000000u

#define RESET_POLLS 100000

unsigned hostile_pace_ms, hostile_watch_ms = 200, hostile_tricks;
static const char *guest_name = "hostile";

/* hvm_memmap_table_entry (PVH ABI version 1); type 1 is RAM as in e820. */
struct memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};
#define MEMMAP_RAM 1

void hostile_init(const char *name)
{
	guest_name = name;
	hostile_pace_ms = (unsigned)cmdline_get_u64("pace_ms", 0);
	hostile_watch_ms = (unsigned)cmdline_get_u64("watch_ms", 200);
}

/* One mode-0 countdown of ms (<= PIT_CHUNK_MS) on channel 2, speaker off. */
static void pit_chunk(unsigned ms)
{
	uint16_t count = (uint16_t)(ms * PIT_TICKS_PER_MS);

	pit_ch2_start(count);
	for (unsigned i = 0; i < PIT_MAX_POLLS && !pit_ch2_done(); i++)
		cpu_relax();
}

void hostile_delay_ms(unsigned ms)
{
	while (ms) {
		unsigned n = ms < PIT_CHUNK_MS ? ms : PIT_CHUNK_MS;

		pit_chunk(n);
		ms -= n;
	}
}

unsigned hostile_trick(const char *dev, const char *name)
{
	if (hostile_skip(name)) {
		printf("%s: %s %s: skipped (skip=)\n", guest_name, dev, name);
		return 0;
	}
	if (hostile_pace_ms)
		hostile_delay_ms(hostile_pace_ms);
	printf("%s: %s #%u %s\n", guest_name, dev, ++hostile_tricks, name);
	return hostile_tricks;
}

int hostile_skip(const char *name)
{
	size_t n = strlen(name);

	for (const char *p = pvh_cmdline; *p; p++) {
		if ((p != pvh_cmdline && p[-1] != ' ') || memcmp(p, "skip=", 5))
			continue;
		for (p += 5; *p && *p != ' '; p++) {
			if (!memcmp(p, name, n) && (p[n] == ',' || p[n] == ' ' || !p[n]))
				return 1;
			while (*p && *p != ',' && *p != ' ')
				p++;
			if (*p != ',')
				break;
		}
		if (!*p)
			break;
	}
	return 0;
}

uint64_t hostile_ram_end(const struct hvm_start_info *si)
{
	const struct memmap_entry *e;

	if (!si || si->magic != HVM_START_MAGIC || si->version < 1 || !si->memmap_paddr ||
	    si->memmap_paddr >= 0x100000000ull)
		return 0;
	e = (const struct memmap_entry *)(uintptr_t)si->memmap_paddr;
	for (uint32_t i = 0; i < si->memmap_entries; i++)
		if (e[i].type == MEMMAP_RAM && e[i].addr <= 0x100000 &&
		    e[i].addr + e[i].size > 0x100000)
			return e[i].addr + e[i].size;
	return 0;
}

uint8_t hostile_cc_read8(const struct virtio_dev *vd, uint32_t off)
{
	return mmio_read8(vd->common + off);
}

uint16_t hostile_cc_read16(const struct virtio_dev *vd, uint32_t off)
{
	return mmio_read16(vd->common + off);
}

void hostile_cc_write8(const struct virtio_dev *vd, uint32_t off, uint8_t v)
{
	mmio_write8(vd->common + off, v);
}

void hostile_cc_write16(const struct virtio_dev *vd, uint32_t off, uint16_t v)
{
	mmio_write16(vd->common + off, v);
}

void hostile_cc_write32(const struct virtio_dev *vd, uint32_t off, uint32_t v)
{
	mmio_write32(vd->common + off, v);
}

void hostile_cc_write64(const struct virtio_dev *vd, uint32_t off, uint64_t v)
{
	mmio_write32(vd->common + off, (uint32_t)v);
	mmio_write32(vd->common + off + 4, (uint32_t)(v >> 32));
}

int hostile_reset(const struct virtio_dev *vd)
{
	hostile_cc_write8(vd, HCC_STATUS, 0);
	for (unsigned i = 0; i < RESET_POLLS; i++) {
		if (!hostile_cc_read8(vd, HCC_STATUS))
			return 0;
		cpu_relax();
	}
	return -1;
}

int hostile_begin(struct virtio_dev *vd, uint64_t features)
{
	if (hostile_reset(vd))
		return -1;
	hostile_cc_write8(vd, HCC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	hostile_cc_write8(vd, HCC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	hostile_cc_write32(vd, HCC_GFSELECT, 0);
	hostile_cc_write32(vd, HCC_GF, (uint32_t)features);
	hostile_cc_write32(vd, HCC_GFSELECT, 1);
	hostile_cc_write32(vd, HCC_GF, (uint32_t)(features >> 32));
	hostile_cc_write8(vd, HCC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			  VIRTIO_STATUS_FEATURES_OK);
	return hostile_cc_read8(vd, HCC_STATUS) & VIRTIO_STATUS_FEATURES_OK ? 0 : 1;
}

uint16_t hostile_queue_max(const struct virtio_dev *vd, uint16_t q)
{
	hostile_cc_write16(vd, HCC_Q_SELECT, q);
	return hostile_cc_read16(vd, HCC_Q_SIZE);
}

void hostile_queue_place(const struct virtio_dev *vd, uint16_t q, uint16_t size,
			 uint64_t desc, uint64_t avail, uint64_t used)
{
	hostile_cc_write16(vd, HCC_Q_SELECT, q);
	hostile_cc_write16(vd, HCC_Q_SIZE, size);
	hostile_cc_write64(vd, HCC_Q_DESC, desc);
	hostile_cc_write64(vd, HCC_Q_DRIVER, avail);
	hostile_cc_write64(vd, HCC_Q_DEVICE, used);
	hostile_cc_write16(vd, HCC_Q_ENABLE, 1);
}

void hostile_driver_ok(const struct virtio_dev *vd)
{
	hostile_cc_write8(vd, HCC_STATUS,
			  hostile_cc_read8(vd, HCC_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

void hostile_notify(const struct virtio_dev *vd, uint16_t q, uint16_t v)
{
	uint64_t at;

	hostile_cc_write16(vd, HCC_Q_SELECT, q);
	at = (uint64_t)hostile_cc_read16(vd, HCC_Q_NOTIFY_OFF) * vd->notify_mult;
	/* The ring contents must be visible before the device looks. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (at + 2 <= vd->notify_len)
		mmio_write16(vd->notify + (uintptr_t)at, v);
}

enum hostile_reaction hostile_watch(const struct virtio_dev *vd, const volatile uint16_t *used_idx,
				    uint16_t old, unsigned ms)
{
	/* Checked between PIT chunks of 1 ms: a reaction is seen soon after
	 * it happens, and the bound holds even without a working PIT. */
	for (unsigned t = 0; t <= ms; t++) {
		if (hostile_cc_read8(vd, HCC_STATUS) & VIRTIO_STATUS_NEEDS_RESET)
			return REACT_NEEDS_RESET;
		if (used_idx && *used_idx != old)
			return REACT_USED;
		if (t < ms)
			pit_chunk(1);
	}
	return REACT_NONE;
}

const char *hostile_reaction_name(enum hostile_reaction r)
{
	switch (r) {
	case REACT_USED: return "completed";
	case REACT_NEEDS_RESET: return "needs-reset";
	default: return "no-reaction";
	}
}
