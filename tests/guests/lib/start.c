/* Guest library: C side of the start path (crt0.S jumps here) and the cmdline
 * parser. Kept short: on wafer's real target every ring-0 instruction here is
 * emulated, and this code runs before each guest's first serial byte. */
#include <stddef.h>

#include "exit.h"
#include "idt.h"
#include "pvh.h"
#include "serial.h"

const char *pvh_cmdline = "";

/* No copy: copying costs ring-0 instructions before the first serial byte.
 * The cmdline stays in VMM-owned low memory, which the SMP trampoline page
 * (smp.h) must not overlap; smp_start_aps() checks that. */
static void cmdline_capture(const struct hvm_start_info *si)
{
	if (!si || si->magic != HVM_START_MAGIC || !si->cmdline_paddr ||
	    si->cmdline_paddr >= 0x100000000ull)
		return;
	pvh_cmdline = (const char *)(uintptr_t)si->cmdline_paddr;
}

static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	int base = 10, digits = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (;; s++, digits++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		v = v * base + d;
	}
	if (!digits || (*s && *s != ' '))
		return -1;
	*out = v;
	return 0;
}

uint64_t cmdline_get_u64(const char *key, uint64_t def)
{
	const char *p = pvh_cmdline;
	size_t klen = 0;

	while (key[klen])
		klen++;
	while (*p) {
		size_t i;
		uint64_t v;

		while (*p == ' ')
			p++;
		for (i = 0; i < klen && p[i] == key[i]; i++)
			;
		if (i == klen && p[i] == '=')
			return parse_u64(p + i + 1, &v) ? def : v;
		while (*p && *p != ' ')
			p++;
	}
	return def;
}

int pvh_ram_covers(const struct hvm_start_info *si, uint64_t base, uint64_t len)
{
	const struct hvm_memmap_table_entry *e;

	if (!si || si->magic != HVM_START_MAGIC || si->version < 1 || !si->memmap_paddr ||
	    si->memmap_paddr >= 0x100000000ull)
		return -1;
	e = (const struct hvm_memmap_table_entry *)(uintptr_t)si->memmap_paddr;
	for (uint32_t i = 0; i < si->memmap_entries; i++)
		if (e[i].type == HVM_MEMMAP_TYPE_RAM && e[i].addr <= base &&
		    base + len <= e[i].addr + e[i].size)
			return 1;
	return 0;
}

/* Called from crt0.S on the boot stack. */
void guest_start(struct hvm_start_info *si);
void guest_start(struct hvm_start_info *si)
{
	serial_init();
	cmdline_capture(si);
	idt_init();
	guest_exit(guest_main(si));
}
