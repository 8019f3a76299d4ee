/* Guest library: the Xen PVH start-of-day structure (hvm_start_info, ABI
 * version 1) that EBX points at on entry, and "key=value" cmdline lookups. */
#ifndef GUEST_PVH_H
#define GUEST_PVH_H

#include <stdint.h>

#define HVM_START_MAGIC 0x336ec578u

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;     /* version >= 1 */
	uint32_t memmap_entries;   /* version >= 1 */
	uint32_t reserved;
};

/* Set by guest_start() before guest_main() runs; "" when the VMM passed none. */
extern const char *pvh_cmdline;

/* Value of "key=N" in the cmdline (decimal or 0x-prefixed hex); def when the
 * key is absent or its value is not a number. */
uint64_t cmdline_get_u64(const char *key, uint64_t def);

/* Each guest's entry point, called in long mode, ring 0, interrupts off, with
 * serial ready and pvh_cmdline set. */
int guest_main(struct hvm_start_info *si);

#endif
