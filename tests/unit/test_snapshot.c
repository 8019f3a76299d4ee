/* Snapshot checks that need no KVM, on real files: a disk's identity
 * survives what wafer itself does to an unchanged disk (its discard probe
 * punching past the end, a discard of zeros) and catches a disk whose
 * bytes, size or file changed; an older identity layout is refused by
 * version; --restore-force (force) skips the disk check; a corrupt memory
 * file is refused when verifying and loads when not. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <cmocka.h>

#include "arch/x86/cpuid.h"
#include "backends/block.h"
#include "state/snapshot.h"
#include "vmm/file.h"
#include "vmm/log.h"

#define DISK_SIZE (8ull << 20)

static char dir[256], disk[300], state_path[300], mem_path[300];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "%s/wafer-snap.XXXXXX", getenv("TMPDIR") ?: "/tmp");
	if (!mkdtemp(dir))
		return -1;
	snprintf(disk, sizeof(disk), "%s/d.img", dir);
	snprintf(state_path, sizeof(state_path), "%s/state", dir);
	snprintf(mem_path, sizeof(mem_path), "%s/memory", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof(cmd), "/dev/shm/wafer-snap-%d.img", (int)getpid());
	unlink(cmd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void put(const char *path, uint64_t off, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, len, (off_t)off), (ssize_t)len);
	close(fd);
}

/* An 8 MiB sparse disk with a boot sector, data here and there and a
 * backup header at its end -- what a guest leaves. */
static void make_disk(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, DISK_SIZE), 0);
	close(fd);
	put(path, 510, "\x55\xaa", 2);
	put(path, 1 << 20, "data", 4);
	put(path, DISK_SIZE - 512, "EFI PART", 8);
}

/* A config holding one disk, identified as it is now. */
static void identify(struct snap_vmconfig *vc)
{
	memset(vc, 0, sizeof(*vc));
	vc->cfg.ndisks = 1;
	snprintf(vc->disk_path[0], sizeof(vc->disk_path[0]), "%s", disk);
	assert_int_equal(snapshot_disk_identity(disk, &vc->disk_ident[0]), 0);
	assert_int_equal(vc->disk_ident[0].size, DISK_SIZE);
}

static int check(const struct snap_vmconfig *vc, char *err, size_t errlen)
{
	err[0] = '\0';
	return snapshot_check_disks(vc, err, errlen);
}

static int64_t mtime_ns(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

/* What wafer itself does to a disk whose bytes stay the same. */
static void own_writes_accepted(void)
{
	struct snap_vmconfig vc;
	struct blk_backend *be;
	char err[512];

	make_disk(disk);
	identify(&vc);
	int64_t m0 = mtime_ns(disk);
	usleep(10000);
	/* The backend's discard probe at open (a hole punched past the end):
	 * what made every restore after the first one fail -- tmpfs, and ext4
	 * on recent kernels, count it as a modification. */
	assert_int_equal(blk_raw_open(&be, disk, false, false, 4, err, sizeof(err)), 0);
	blk_backend_close(be);
	print_message("mtime %s by the backend's open\n", mtime_ns(disk) == m0 ? "kept" : "changed");
	assert_int_equal(check(&vc, err, sizeof(err)), 0);
	/* A guest's discard of blocks that hold zeros, at the start, in the
	 * middle (sampled blocks) and at the end. */
	int fd = open(disk, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 60 << 10), 0);
	assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2 << 20, 4 << 20), 0);
	assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				   DISK_SIZE - (64 << 10), 32 << 10), 0);
	assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, DISK_SIZE, 4096), 0);
	close(fd);
	assert_int_equal(check(&vc, err, sizeof(err)), 0);
}

static void test_own_writes_accepted(void **state)
{
	(void)state;
	own_writes_accepted();
}

/* The same on tmpfs, where the bug was seen (the KVM lane's /tmp). */
static void test_own_writes_accepted_tmpfs(void **state)
{
	struct statfs sf;
	char keep[300];
	(void)state;

	if (statfs("/dev/shm", &sf) || sf.f_type != TMPFS_MAGIC || access("/dev/shm", W_OK))
		skip();
	snprintf(keep, sizeof(keep), "%s", disk);
	snprintf(disk, sizeof(disk), "/dev/shm/wafer-snap-%d.img", (int)getpid());
	own_writes_accepted();
	unlink(disk);
	snprintf(disk, sizeof(disk), "%s", keep);
}

/* Bytes changed where the identity looks: refused naming the disk. */
static void test_changed_refused(void **state)
{
	static const struct { uint64_t off; const char *what; } where[] = {
		{ 510, "its first 64 KiB changed" },
		{ DISK_SIZE - 512, "its last 64 KiB changed" },
		{ DISK_SIZE / 128 * 9 + 100, "blocks sampled across it changed" },
	};
	struct snap_vmconfig vc;
	char err[512], want[400];
	(void)state;

	make_disk(disk);
	identify(&vc);
	for (unsigned i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		uint8_t was;
		int fd = open(disk, O_RDWR);
		assert_int_equal(pread(fd, &was, 1, (off_t)where[i].off), 1);
		close(fd);
		put(disk, where[i].off, "X", 1);
		assert_int_equal(check(&vc, err, sizeof(err)), -ESTALE);
		snprintf(want, sizeof(want), "disk %s: %s since the snapshot was taken", disk,
			 where[i].what);
		assert_non_null(strstr(err, want));
		assert_non_null(strstr(err, "--restore-force"));
		put(disk, where[i].off, &was, 1);
		assert_int_equal(check(&vc, err, sizeof(err)), 0);
	}
	assert_int_equal(truncate(disk, DISK_SIZE + 4096), 0);
	assert_int_equal(check(&vc, err, sizeof(err)), -ESTALE);
	assert_non_null(strstr(err, "its size changed"));
}

/* Another file at the disk's path: refused even with the same bytes (a
 * copy wafer cannot read whole); on another filesystem (another device
 * number: the directory was moved, the host rebooted with other numbers)
 * the inode says nothing and the bytes decide. */
static void test_replaced(void **state)
{
	struct snap_vmconfig vc;
	char err[512], other[320];
	(void)state;

	make_disk(disk);
	identify(&vc);
	snprintf(other, sizeof(other), "%s/other.img", dir);
	make_disk(other);
	assert_int_equal(rename(other, disk), 0);
	assert_int_equal(check(&vc, err, sizeof(err)), -ESTALE);
	assert_non_null(strstr(err, "it is another file than at the snapshot"));
	assert_non_null(strstr(err, disk));
	vc.disk_ident[0].dev ^= 1;
	assert_int_equal(check(&vc, err, sizeof(err)), 0);
	put(disk, 0, "X", 1);
	assert_int_equal(check(&vc, err, sizeof(err)), -ESTALE);
	assert_non_null(strstr(err, "first 64 KiB"));
	unlink(disk);
	assert_int_equal(check(&vc, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "No such file"));
}

/* A small disk is covered whole; an empty one has an identity too. */
static void test_small_disks(void **state)
{
	struct snap_disk_identity a, b;
	(void)state;

	put(disk, 0, "", 0);
	assert_int_equal(snapshot_disk_identity(disk, &a), 0);
	assert_int_equal(a.size, 0);
	put(disk, 100, "abc", 3);
	assert_int_equal(snapshot_disk_identity(disk, &a), 0);
	put(disk, 101, "X", 1);
	assert_int_equal(snapshot_disk_identity(disk, &b), 0);
	assert_int_not_equal(a.head_crc, b.head_crc);
	assert_int_not_equal(a.tail_crc, b.tail_crc);
}

/* ---- whole snapshots: a config with a disk, a memory file ---- */

static struct vm vm;

static void write_snapshot(void)
{
	struct snap_buf b;
	char err[256];
	uint32_t crc;

	memset(&vm, 0, sizeof(vm));
	vm.cfg.name = "t";
	vm.cfg.cpu_template = "host";
	vm.ncpus = vm.cfg.ncpus = 1;
	vm.cfg.disks[0] = (struct blk_config){ .path = disk, .id = "rootfs" };
	vm.cfg.ndisks = 1;
	assert_int_equal(gmem_alloc(&vm.mem, 4 << 20), 0);
	for (uint64_t i = 0; i < vm.mem.size; i += 8192)
		vm.mem.host[i] = (uint8_t)(i >> 13);
	vm.cpuid = cpuid_alloc(1);
	vm.cpuid->nent = 1;
	vm.cpuid->entries[0] = (struct kvm_cpuid_entry2){ .function = 0, .eax = 0xd };
	snap_buf_init(&b);
	snap_put_header(&b);
	assert_int_equal(snapshot_save_config(&vm, &b), 0);
	assert_int_equal(snap_write_atomic(dir, "memory", vm.mem.host, vm.mem.size, &crc, err,
					   sizeof(err)), 0);
	snapshot_save_memory_section(&b, vm.mem.size, crc, "memory");
	snap_put_end(&b);
	assert_int_equal(snap_write_atomic(dir, "state", b.p, b.len, NULL, err, sizeof(err)), 0);
	snap_buf_free(&b);
	free(vm.cpuid);
	gmem_free(&vm.mem);
}

static int open_snapshot(bool force, bool verify, char *err, size_t errlen)
{
	struct snapshot s;
	err[0] = '\0';
	int rc = snapshot_open(&s, state_path, mem_path, force, verify, err, errlen);
	snapshot_close(&s);
	return rc;
}

static void test_force(void **state)
{
	char err[512];
	(void)state;

	make_disk(disk);
	write_snapshot();
	assert_int_equal(open_snapshot(false, false, err, sizeof(err)), 0);
	put(disk, 1000, "changed", 7);
	assert_int_equal(open_snapshot(false, false, err, sizeof(err)), -ESTALE);
	assert_non_null(strstr(err, "first 64 KiB changed"));
	assert_int_equal(open_snapshot(true, false, err, sizeof(err)), 0);
}

/* The memory file's CRC: a corrupt file is refused naming it when
 * verifying (the CLI's and the API's default), loaded when told not to. */
static void test_memory_verify(void **state)
{
	char err[512], want[400];
	(void)state;

	make_disk(disk);
	write_snapshot();
	assert_int_equal(open_snapshot(false, true, err, sizeof(err)), 0);
	/* A flipped byte in a page of data, then a page of data gone to a
	 * hole (zeros, as a sparse copy might lose it). */
	put(mem_path, 12345, "\x5a", 1);
	assert_int_equal(open_snapshot(false, true, err, sizeof(err)), -EBADMSG);
	snprintf(want, sizeof(want), "%s: contents do not match the checksum in the state file",
		 mem_path);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "--restore-no-verify"));
	assert_int_equal(open_snapshot(false, false, err, sizeof(err)), 0);
	write_snapshot();
	int fd = open(mem_path, O_RDWR);
	assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 8192, 4096), 0);
	close(fd);
	assert_int_equal(open_snapshot(false, true, err, sizeof(err)), -EBADMSG);
	assert_int_equal(open_snapshot(false, false, err, sizeof(err)), 0);
}

/* A state whose disk section carries an older layout (version 1: the
 * modification time) is refused by version, with the reason. */
static void test_old_disk_version(void **state)
{
	struct snap_buf nb;
	struct snap_section s;
	size_t pos = 0;
	char err[512];
	(void)state;

	make_disk(disk);
	write_snapshot();
	uint8_t *data;
	size_t len;
	assert_int_equal(file_read_all(state_path, SNAP_STATE_MAX, &data, &len, err, sizeof(err)), 0);
	struct snap_reader r;
	assert_int_equal(snap_reader_open(&r, data, len, err, sizeof(err)), 0);
	snap_buf_init(&nb);
	snap_put_header(&nb);
	while (snap_reader_next(&r, &pos, &s) == 1) {
		if (!strcmp(s.name, "end"))
			break;
		size_t t = snap_section_begin(&nb, s.name, s.instance,
					      strcmp(s.name, "disk") ? s.version : 1);
		snap_buf_put(&nb, s.data, s.len);
		snap_section_end(&nb, t);
	}
	snap_put_end(&nb);
	assert_int_equal(snap_write_atomic(dir, "state", nb.p, nb.len, NULL, err, sizeof(err)), 0);
	assert_int_equal(open_snapshot(true, false, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "disk/0: version 1, this wafer reads 2"));
	assert_non_null(strstr(err, "take the snapshot again"));
	snap_buf_free(&nb);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_own_writes_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_own_writes_accepted_tmpfs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changed_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_small_disks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_force, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_disk_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_verify, setup, teardown),
	};
	log_threshold = LOG_ERROR;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
