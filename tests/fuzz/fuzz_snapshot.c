/* The snapshot loader on arbitrary bytes: the container (header, section
 * headers, CRCs), the machine config (machine, cpuid, disk, net sections),
 * the memory section, and the vCPU and VM KVM-state parsers. There is no
 * KVM here: every ioctl fails with EBADF, so the loaders run their parsing
 * and validation and stop at the first SET. Nothing may crash, read out of
 * bounds or leak whatever the bytes.
 * Input byte 0 even: the rest is a raw state file. Odd: the rest is a list
 * of sections (name index, instance, version, u16 length, payload) that the
 * real writer assembles with correct CRCs, so mutations reach the section
 * parsers instead of dying at the checksum. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/cpu.h"
#include "state/snapshot.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	log_threshold = LOG_ERROR;
	return 0;
}

static const char *const names[] = { "machine", "cpuid", "disk", "net", "memory", "vcpu",
				     "irqchip", "pit", "clock", "end" };

/* Sections from the fuzzer's bytes, with real headers and CRCs. */
static void assemble(const uint8_t *p, size_t n, struct snap_buf *b)
{
	snap_put_header(b);
	while (n >= 5) {
		const char *name = names[p[0] % (sizeof(names) / sizeof(names[0]) - 1)];
		uint32_t inst = p[1] % 4, ver = p[2] % 3;
		size_t len = (size_t)p[3] | (size_t)p[4] << 8;
		p += 5, n -= 5;
		if (len > n)
			len = n;
		size_t t = snap_section_begin(b, name, inst, ver);
		snap_buf_put(b, p, len);
		snap_section_end(b, t);
		p += len, n -= len;
	}
	snap_put_end(b);
}

static void load(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_buf b;
	if (size == 0)
		return 0;
	if (!(data[0] & 1)) {
		load(data + 1, size - 1);
		return 0;
	}
	snap_buf_init(&b);
	assemble(data + 1, size - 1, &b);
	if (!b.err)
		load(b.p, b.len);
	snap_buf_free(&b);
	return 0;
}

static void load(const uint8_t *data, size_t size)
{
	struct snap_reader r;
	struct snap_vmconfig *vc = calloc(1, sizeof(*vc));
	struct vm *vm = calloc(1, sizeof(*vm));
	struct vcpu v = { .vm = vm, .index = 0, .fd = -1 };
	char err[512];

	if (!vc || !vm)
		goto out;
	if (snap_reader_open(&r, data, size, err, sizeof(err)) == 0) {
		if (snapshot_parse_config(&r, vc, err, sizeof(err)) == 0) {
			/* Parsed values are bounded: use them as the loader would. */
			vm->ncpus = vc->cfg.ncpus;
			for (unsigned i = 0; i < vc->cfg.ndisks; i++)
				(void)strlen(vc->cfg.disks[i].path);
		}
		snapshot_config_free(vc);
		vm->kvm_fd = vm->vm_fd = -1;
		for (uint32_t i = 0; i < 4; i++) {
			v.index = i;
			state_vcpu_load(&v, &r, err, sizeof(err));
		}
		state_vm_load(vm, &r, err, sizeof(err));
	}
out:
	free(vm);
	free(vc);
}
