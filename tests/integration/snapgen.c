/* snapgen [--mib N] [--sparse] DIR [DISK]: write a snapshot's config and
 * memory parts with the real snapshot code -- machine config, CPUID, disk
 * identity, memory section and an N MiB (default 32) memory file with a
 * pattern in every page (--sparse: in one page per MiB, the rest holes, as an
 * idle guest's) -- but no vCPU or device state, which only a KVM host can
 * produce. The integration cases corrupt, truncate and mismatch it to check
 * that `wafer run --restore` refuses each before touching KVM, and that an
 * intact one gets past validation; bench/snapshot.sh times that validation
 * for 128 MiB and 1 GiB.
 *
 * snapgen --send URL [TEMPLATE]: the same machine (CPU template TEMPLATE,
 * default host) as the source of a live migration, through the real engine
 * and hello, to a `wafer run --incoming URL`; prints the outcome and exits 0
 * only if the destination took it. Without KVM the destination can only
 * refuse -- which is what the cases check: its reason reaches the source. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/cpuid.h"
#include "state/migrate_vm.h"
#include "state/snapshot.h"
#include "vmm/log.h"

static int ok_start(void *o) { (void)o; return 0; }
static void nop(void *o) { (void)o; }
static int harvest(void *o, uint64_t *b) { gmem_dirty_harvest(o, b); return 0; }
static int save_none(void *o, struct snap_buf *b) { (void)o; (void)b; return 0; }
static void no_throttle(void *o, unsigned pct) { (void)o; (void)pct; }

static int send_main(struct vm *vm, const char *url)
{
	static const struct migrate_source_ops ops = {
		.dirty_start = ok_start, .dirty_stop = nop, .dirty_harvest = harvest,
		.pause = ok_start, .resume = ok_start, .save_state = save_none,
		.throttle = no_throttle,
	};
	struct migrate_params p = { .io_timeout_ms = 20000 };
	struct snap_buf hello;
	char err[512];
	int fd, rc;

	snap_buf_init(&hello);
	if (vm_migrate_hello(vm, &hello) ||
	    migrate_connect(url, 10000, &fd, err, sizeof(err))) {
		fprintf(stderr, "snapgen: %s\n", hello.err ? "hello" : err);
		return 1;
	}
	rc = migrate_send(fd, &vm->mem, hello.p, hello.len, &ops, &vm->mem, &p, NULL, err,
			  sizeof(err));
	close(fd);
	snap_buf_free(&hello);
	printf("%s\n", rc ? err : "migrated");
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	static struct vm vm;
	struct snap_buf b;
	char err[512], *end;
	unsigned long mib = 32;
	uint64_t stride = 4096;

	if (argc > 2 && !strcmp(argv[1], "--mib")) {
		mib = strtoul(argv[2], &end, 10);
		if (*end || mib < 1 || mib > 3072) {
			fprintf(stderr, "snapgen: --mib %s: expected 1..3072\n", argv[2]);
			return 2;
		}
		argv[2] = argv[0];
		argv += 2;
		argc -= 2;
	}
	if (argc > 1 && !strcmp(argv[1], "--sparse")) {
		stride = 1u << 20;
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	bool send = argc > 1 && !strcmp(argv[1], "--send");
	if (argc < 2 + send || argc > 3 + send) {
		fprintf(stderr, "usage: snapgen [--mib N] [--sparse] DIR [DISK] | "
			"snapgen [--mib N] --send URL [TEMPLATE]\n");
		return 2;
	}
	vm.cfg.name = "snapgen";
	vm.cfg.cpu_template = send && argc == 4 ? argv[3] : "host";
	vm.cfg.rng = 1;
	vm.ncpus = vm.cfg.ncpus = 1;
	if (argc == 3 && !send) {
		vm.cfg.disks[0] = (struct blk_config){ .path = argv[2], .id = "rootfs" };
		vm.cfg.ndisks = 1;
	}
	if (gmem_alloc(&vm.mem, (uint64_t)mib << 20))
		return 1;
	for (uint64_t i = 0; i < vm.mem.size; i += stride)
		vm.mem.host[i + 8] = (uint8_t)(i >> 12 | 1);
	vm.cpuid = cpuid_alloc(1);
	vm.cpuid->nent = 1;
	vm.cpuid->entries[0] = (struct kvm_cpuid_entry2){ .function = 0, .eax = 0xd,
							  .ebx = 0x756e6547 };
	if (send)
		return send_main(&vm, argv[2]);
	snap_buf_init(&b);
	snap_put_header(&b);
	if (snapshot_save_config(&vm, &b)) {
		fprintf(stderr, "snapgen: saving the config failed\n");
		return 1;
	}
	uint32_t crc;
	if (snap_write_atomic(argv[1], "memory", vm.mem.host, vm.mem.size, &crc, err, sizeof(err))) {
		fprintf(stderr, "snapgen: %s\n", err);
		return 1;
	}
	snapshot_save_memory_section(&b, vm.mem.size, crc, "memory");
	snap_put_end(&b);
	if (b.err || snap_write_atomic(argv[1], "state", b.p, b.len, NULL, err, sizeof(err))) {
		fprintf(stderr, "snapgen: %s\n", err);
		return 1;
	}
	snap_buf_free(&b);
	free(vm.cpuid);
	gmem_free(&vm.mem);
	return 0;
}
