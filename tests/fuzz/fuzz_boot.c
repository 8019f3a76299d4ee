/* libFuzzer target: the kernel image loaders (Linux x86 boot protocol
 * bzImage with its payload decompressors, vmlinux ELF, PVH ELF), initrd
 * placement and the zero page / hvm_start_info writer, into 64 MiB of guest
 * RAM. Input: flags u8, cmdline length u8, initrd length u16, initrd_addr_max
 * u32, the kernel image, then the initrd and the command line at the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "vmm/log.h"
#include "fuzz.h"

#define RAM_SIZE (64u << 20)
#define RSDP_GPA 0xe0000

static uint8_t *ram;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	log_threshold = LOG_ERROR;
	/* One allocation for the whole run: clearing 64 MiB per input would
	 * dominate. The loaders must not depend on RAM contents anyway. */
	ram = malloc(RAM_SIZE);
	if (!ram)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct guest_mem mem;
	struct boot_plan plan;
	char err[512], cmdline[256];

	uint8_t flags = fuzz_u8(&in);
	size_t cmd_len = fuzz_u8(&in);
	size_t initrd_len = fuzz_u16(&in);
	uint32_t addr_max = fuzz_u32(&in);
	if (cmd_len > in.n)
		cmd_len = in.n;
	memcpy(cmdline, in.p + in.n - cmd_len, cmd_len);
	cmdline[cmd_len] = 0;
	in.n -= cmd_len;
	if (initrd_len > in.n)
		initrd_len = in.n;
	const uint8_t *initrd = in.p + in.n - initrd_len;
	in.n -= initrd_len;

	gmem_init(&mem, ram, RAM_SIZE);
	memset(&plan, 0, sizeof(plan));
	if (boot_load_kernel(&mem, in.p, in.n, flags & 1, &plan, err, sizeof(err)))
		return 0;
	if ((flags & 2) &&
	    boot_place_initrd(&mem, initrd, initrd_len, addr_max, &plan, err, sizeof(err)))
		return 0;
	if (boot_write_params(&mem, in.p, in.n, (flags & 4) ? cmdline : NULL, RSDP_GPA, &plan,
			      err, sizeof(err)))
		return 0;
	boot_write_cpu_tables(&mem, plan.mode);
	return 0;
}
