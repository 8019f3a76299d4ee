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

/* One entry of the memmap at memmap_paddr (types as in e820: 1 = RAM). */
struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};
#define HVM_MEMMAP_TYPE_RAM 1

/* Set by guest_start() before guest_main() runs; "" when the VMM passed none. */
extern const char *pvh_cmdline;

/* Value of "key=N" in the cmdline (decimal or 0x-prefixed hex); def when the
 * key is absent or its value is not a number. */
uint64_t cmdline_get_u64(const char *key, uint64_t def);

/* Whether one RAM entry of si's memmap covers [base, base + len): 1 yes,
 * 0 no, -1 when there is no memmap to ask (ABI version 0, or none given). */
int pvh_ram_covers(const struct hvm_start_info *si, uint64_t base, uint64_t len);

/* Each guest's entry point, called in long mode, ring 0, interrupts off, with
 * serial ready and pvh_cmdline set. */
int guest_main(struct hvm_start_info *si);

#endif
