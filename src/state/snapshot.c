/* Snapshot create/restore (see snapshot.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/cpuid.h"
#include "state/cpu.h"
#include "state/devices.h"
#include "state/snapshot.h"
#include "vmm/file.h"
#include "vmm/vcpu.h"

#define CONFIG_VERSION 1
/* 2: the identity is dev, ino, size and CRCs of sampled bytes; 1 had the
 * modification time, which wafer itself changes (see snapshot.h). */
#define DISK_VERSION 2
#define DISK_HEAD_BYTES (64u << 10)

static void put_limit(struct snap_buf *b, const struct ratelimit_config *l)
{
	const struct tbucket_config *t[2] = { &l->bytes, &l->ops };
	for (unsigned i = 0; i < 2; i++) {
		snap_buf_put_u64(b, t[i]->size);
		snap_buf_put_u64(b, t[i]->one_time_burst);
		snap_buf_put_u64(b, t[i]->refill_time_ms);
	}
}

static void get_limit(struct snap_cur *c, struct ratelimit_config *l)
{
	struct tbucket_config *t[2] = { &l->bytes, &l->ops };
	for (unsigned i = 0; i < 2; i++) {
		t[i]->size = snap_cur_u64(c);
		t[i]->one_time_burst = snap_cur_u64(c);
		t[i]->refill_time_ms = snap_cur_u64(c);
	}
}

/* CRC-32 of len bytes at off (fewer at the end of the file). */
static int disk_crc(int fd, uint8_t *buf, uint64_t off, size_t len, uint32_t *crc)
{
	ssize_t n = pread(fd, buf, len, (off_t)off);
	if (n < 0)
		return -errno;
	*crc = snap_crc32_extend(*crc, buf, (size_t)n);
	return 0;
}

/* The bytes an identity covers: the first and last 64 KiB (partition
 * tables, boot sectors, filesystem superblocks and their backups at the
 * end) and SNAP_DISK_SAMPLES blocks at the middles of equal slices. Bounded
 * (384 KiB, ~1 ms from the page cache) because it runs with the VM paused
 * and on every restore: a multi-GiB disk cannot be read whole there. */
static int disk_sample(int fd, uint64_t size, struct snap_disk_identity *id)
{
	uint8_t *buf = malloc(DISK_HEAD_BYTES);
	uint64_t edge = size < DISK_HEAD_BYTES ? size : DISK_HEAD_BYTES;
	int rc;

	if (!buf)
		return -ENOMEM;
	id->head_crc = id->tail_crc = id->sample_crc = snap_crc32(NULL, 0);
	rc = disk_crc(fd, buf, 0, edge, &id->head_crc);
	if (!rc)
		rc = disk_crc(fd, buf, size - edge, edge, &id->tail_crc);
	for (unsigned i = 0; !rc && i < SNAP_DISK_SAMPLES; i++) {
		uint64_t off = (size / (2 * SNAP_DISK_SAMPLES) * (2 * i + 1)) & ~(uint64_t)4095;
		rc = disk_crc(fd, buf, off, 4096, &id->sample_crc);
	}
	free(buf);
	return rc;
}

int snapshot_disk_identity(const char *path, struct snap_disk_identity *id)
{
	struct stat st;
	int fd, rc = 0;

	memset(id, 0, sizeof(*id));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	id->size = (uint64_t)st.st_size;
	id->dev = (uint64_t)st.st_dev;
	id->ino = (uint64_t)st.st_ino;
	if (S_ISBLK(st.st_mode)) {
		/* The node's inode is devtmpfs's, made anew at each boot. */
		off_t end = lseek(fd, 0, SEEK_END);
		id->size = end > 0 ? (uint64_t)end : 0;
		id->dev = (uint64_t)st.st_rdev;
		id->ino = 0;
	}
	rc = disk_sample(fd, id->size, id);
out:
	close(fd);
	return rc;
}

int snapshot_save_config(struct vm *vm, struct snap_buf *b)
{
	const struct vm_config *cfg = &vm->cfg;
	const struct kvm_cpuid2 *cp = vm->cpuid;
	size_t t;

	t = snap_section_begin(b, "machine", 0, CONFIG_VERSION);
	snap_buf_put_str(b, WAFER_VERSION);
	snap_buf_put_str(b, cfg->name);
	snap_buf_put_u32(b, vm->ncpus);
	snap_buf_put_u64(b, vm->mem.size);
	snap_buf_put_u64(b, vm->mem.low_size);
	snap_buf_put_str(b, cfg->cpu_template);
	snap_buf_put_u8(b, cfg->rng ? 1 : 0);
	snap_buf_put_u32(b, cfg->ndisks);
	snap_buf_put_u32(b, cfg->nnets);
	snap_section_end(b, t);

	t = snap_section_begin(b, "cpuid", 0, CONFIG_VERSION);
	snap_buf_put_u32(b, cp ? cp->nent : 0);
	for (uint32_t i = 0; cp && i < cp->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &cp->entries[i];
		snap_buf_put_u32(b, e->function);
		snap_buf_put_u32(b, e->index);
		snap_buf_put_u32(b, e->flags);
		snap_buf_put_u32(b, e->eax);
		snap_buf_put_u32(b, e->ebx);
		snap_buf_put_u32(b, e->ecx);
		snap_buf_put_u32(b, e->edx);
	}
	snap_section_end(b, t);

	for (unsigned i = 0; i < cfg->ndisks; i++) {
		const struct blk_config *d = &cfg->disks[i];
		struct snap_disk_identity id;
		int rc = snapshot_disk_identity(d->path, &id);
		if (rc)
			return rc;
		t = snap_section_begin(b, "disk", i, DISK_VERSION);
		snap_buf_put_str(b, d->path);
		snap_buf_put_str(b, d->id);
		snap_buf_put_str(b, d->serial);
		snap_buf_put_u8(b, d->read_only ? 1 : 0);
		put_limit(b, &d->limit);
		snap_buf_put_u64(b, id.size);
		snap_buf_put_u64(b, id.dev);
		snap_buf_put_u64(b, id.ino);
		snap_buf_put_u32(b, id.head_crc);
		snap_buf_put_u32(b, id.tail_crc);
		snap_buf_put_u32(b, id.sample_crc);
		snap_section_end(b, t);
	}
	for (unsigned i = 0; i < cfg->nnets; i++) {
		const struct net_config *n = &cfg->nets[i];
		t = snap_section_begin(b, "net", i, CONFIG_VERSION);
		snap_buf_put_str(b, n->id);
		snap_buf_put_str(b, n->ifname);
		snap_buf_put_u8(b, n->has_mac ? 1 : 0);
		snap_buf_put(b, n->mac, 6);
		put_limit(b, &n->rx_limit);
		put_limit(b, &n->tx_limit);
		snap_section_end(b, t);
	}
	return b->err;
}

void snapshot_config_free(struct snap_vmconfig *c)
{
	free(c->cpuid);
	c->cpuid = NULL;
}

static int config_section(const struct snap_reader *r, const char *name, uint32_t inst,
			  struct snap_cur *c, char *err, size_t errlen)
{
	uint32_t want = strcmp(name, "disk") ? CONFIG_VERSION : DISK_VERSION;
	struct snap_section s;
	if (snap_reader_find(r, name, inst, &s)) {
		snprintf(err, errlen, "no %s/%u section", name, inst);
		return -EINVAL;
	}
	if (s.version != want) {
		snprintf(err, errlen, "%s/%u: version %u, this wafer reads %u%s", name, inst,
			 s.version, want, !strcmp(name, "disk") && s.version == 1 ?
			 " (an older wafer's disk identity, by modification time, which wafer's own "
			 "discard probe changes; take the snapshot again with this wafer)" : "");
		return -EPROTO;
	}
	snap_cur_init(c, s.data, s.len);
	return 0;
}

static int config_done(const struct snap_cur *c, const char *name, uint32_t inst, char *err,
		       size_t errlen)
{
	if (snap_cur_end(c)) {
		snprintf(err, errlen, "%s/%u: malformed", name, inst);
		return -EINVAL;
	}
	return 0;
}

int snapshot_parse_config(const struct snap_reader *r, struct snap_vmconfig *out,
			  char *err, size_t errlen)
{
	struct vm_config *cfg = &out->cfg;
	struct snap_cur c;
	char version[64];
	int rc;

	memset(out, 0, sizeof(*out));
	rc = config_section(r, "machine", 0, &c, err, errlen);
	if (rc)
		return rc;
	snap_cur_str(&c, version, sizeof(version));
	snap_cur_str(&c, out->name, sizeof(out->name));
	cfg->ncpus = snap_cur_u32(&c);
	cfg->mem_size = snap_cur_u64(&c);
	uint64_t low = snap_cur_u64(&c);
	snap_cur_str(&c, out->cpu_template, sizeof(out->cpu_template));
	cfg->rng = snap_cur_u8(&c);
	cfg->ndisks = snap_cur_u32(&c);
	cfg->nnets = snap_cur_u32(&c);
	rc = config_done(&c, "machine", 0, err, errlen);
	if (rc)
		return rc;
	if (cfg->ncpus == 0 || cfg->ncpus > VM_MAX_VCPUS || cfg->mem_size == 0 || cfg->mem_size & 0xfff ||
	    low > cfg->mem_size || cfg->ndisks > VM_MAX_DISKS || cfg->nnets > VM_MAX_NETS ||
	    cfg->rng > 1) {
		snprintf(err, errlen, "machine: impossible values (%u vCPUs, %llu bytes, %u disks, "
			 "%u nets)", cfg->ncpus, (unsigned long long)cfg->mem_size, cfg->ndisks,
			 cfg->nnets);
		return -EINVAL;
	}

	rc = config_section(r, "cpuid", 0, &c, err, errlen);
	if (rc)
		return rc;
	uint32_t nent = snap_cur_u32(&c);
	if (nent == 0 || nent > 4096 || (uint64_t)nent * 28 != snap_cur_left(&c)) {
		snprintf(err, errlen, "cpuid: malformed (%u entries)", nent);
		return -EINVAL;
	}
	out->cpuid = cpuid_alloc(nent);
	if (!out->cpuid)
		return -ENOMEM;
	out->cpuid->nent = nent;
	for (uint32_t i = 0; i < nent; i++) {
		struct kvm_cpuid_entry2 *e = &out->cpuid->entries[i];
		e->function = snap_cur_u32(&c);
		e->index = snap_cur_u32(&c);
		e->flags = snap_cur_u32(&c);
		e->eax = snap_cur_u32(&c);
		e->ebx = snap_cur_u32(&c);
		e->ecx = snap_cur_u32(&c);
		e->edx = snap_cur_u32(&c);
	}
	rc = config_done(&c, "cpuid", 0, err, errlen);
	if (rc)
		return rc;

	for (unsigned i = 0; i < cfg->ndisks; i++) {
		struct blk_config *d = &cfg->disks[i];
		struct snap_disk_identity *id = &out->disk_ident[i];
		rc = config_section(r, "disk", i, &c, err, errlen);
		if (rc)
			return rc;
		snap_cur_str(&c, out->disk_path[i], sizeof(out->disk_path[i]));
		snap_cur_str(&c, out->disk_id[i], sizeof(out->disk_id[i]));
		snap_cur_str(&c, out->disk_serial[i], sizeof(out->disk_serial[i]));
		d->read_only = snap_cur_u8(&c) != 0;
		get_limit(&c, &d->limit);
		id->size = snap_cur_u64(&c);
		id->dev = snap_cur_u64(&c);
		id->ino = snap_cur_u64(&c);
		id->head_crc = snap_cur_u32(&c);
		id->tail_crc = snap_cur_u32(&c);
		id->sample_crc = snap_cur_u32(&c);
		rc = config_done(&c, "disk", i, err, errlen);
		if (rc)
			return rc;
		d->path = out->disk_path[i];
		d->id = out->disk_id[i][0] ? out->disk_id[i] : NULL;
		d->serial = out->disk_serial[i][0] ? out->disk_serial[i] : NULL;
	}
	for (unsigned i = 0; i < cfg->nnets; i++) {
		struct net_config *n = &cfg->nets[i];
		rc = config_section(r, "net", i, &c, err, errlen);
		if (rc)
			return rc;
		snap_cur_str(&c, out->net_id[i], sizeof(out->net_id[i]));
		snap_cur_str(&c, out->net_ifname[i], sizeof(out->net_ifname[i]));
		n->has_mac = snap_cur_u8(&c) != 0;
		snap_cur_get(&c, n->mac, 6);
		get_limit(&c, &n->rx_limit);
		get_limit(&c, &n->tx_limit);
		rc = config_done(&c, "net", i, err, errlen);
		if (rc)
			return rc;
		n->id = out->net_id[i][0] ? out->net_id[i] : NULL;
		n->ifname = out->net_ifname[i];
		n->vm_name = out->name;   /* generated MACs stay what the guest saw */
	}
	cfg->cpu_template = "host";       /* saved table checked against the host */
	cfg->restore = true;
	cfg->restore_mem_fd = -1;
	cfg->restore_cpuid = out->cpuid;
	return 0;
}

/* What differs between two identities of the disk at one path, or NULL.
 * An inode number means something only on the filesystem it came from:
 * compared when the path is on the same one (a file renamed over the disk,
 * or the disk deleted and copied back), not after the filesystem's device
 * number changed (another host, a remount) -- size and bytes decide then. */
static const char *disk_difference(const struct snap_disk_identity *was,
				   const struct snap_disk_identity *now, char *buf, size_t len)
{
	if (now->dev == was->dev && now->ino != was->ino) {
		snprintf(buf, len, "it is another file than at the snapshot (inode %llu, was %llu): "
			 "replaced", (unsigned long long)now->ino, (unsigned long long)was->ino);
		return buf;
	}
	if (now->size != was->size) {
		snprintf(buf, len, "its size changed (%llu bytes, was %llu)",
			 (unsigned long long)now->size, (unsigned long long)was->size);
		return buf;
	}
	return now->head_crc != was->head_crc ? "its first 64 KiB changed" :
	       now->tail_crc != was->tail_crc ? "its last 64 KiB changed" :
	       now->sample_crc != was->sample_crc ? "blocks sampled across it changed" : NULL;
}

int snapshot_check_disks(const struct snap_vmconfig *c, char *err, size_t errlen)
{
	char buf[160];

	for (unsigned i = 0; i < c->cfg.ndisks; i++) {
		struct snap_disk_identity have;
		int rc = snapshot_disk_identity(c->disk_path[i], &have);
		if (rc) {
			snprintf(err, errlen, "disk %s: %s", c->disk_path[i], strerror(-rc));
			return rc;
		}
		const char *what = disk_difference(&c->disk_ident[i], &have, buf, sizeof(buf));
		if (what) {
			snprintf(err, errlen, "disk %s: %s since the snapshot was taken (the guest's "
				 "view of it would be inconsistent; --restore-force to load anyway)",
				 c->disk_path[i], what);
			return -ESTALE;
		}
	}
	return 0;
}

int snapshot_save_machine_state(struct vm *vm, struct snap_buf *b)
{
	int rc = state_vm_save(vm, b);
	for (unsigned i = 0; !rc && i < vm->ncpus; i++)
		rc = state_vcpu_save(&vm->vcpus[i], b);
	if (!rc)
		rc = state_devices_save(vm, b);
	return rc ? rc : b->err;
}

int snapshot_load_machine_state(struct vm *vm, const struct snap_reader *r, char *err,
				size_t errlen)
{
	/* Devices first (PCI routes, irqfds), then the irqchip they feed, then
	 * the vCPUs whose LAPICs take interrupts from it. */
	int rc = state_devices_load(vm, r, err, errlen);
	if (!rc)
		rc = state_vm_load(vm, r, err, errlen);
	for (unsigned i = 0; !rc && i < vm->ncpus; i++)
		rc = state_vcpu_load(&vm->vcpus[i], r, err, errlen);
	return rc;
}

void snapshot_save_memory_section(struct snap_buf *b, uint64_t size, uint32_t crc,
				  const char *mem_name)
{
	size_t t = snap_section_begin(b, "memory", 0, CONFIG_VERSION);
	snap_buf_put_u64(b, size);
	snap_buf_put_u64(b, crc);
	snap_buf_put_str(b, mem_name);
	snap_section_end(b, t);
}

/* dir and base name of path into d and n. */
static int split_path(const char *path, char *d, char *n, size_t len)
{
	char a[4096], b[4096];
	if (snprintf(a, sizeof(a), "%s", path) >= (int)sizeof(a) || !path[0])
		return -ENAMETOOLONG;
	memcpy(b, a, sizeof(b));
	if ((size_t)snprintf(d, len, "%s", dirname(a)) >= len ||
	    (size_t)snprintf(n, len, "%s", basename(b)) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int snapshot_create(struct vm *vm, const char *state_path, const char *mem_path,
		    char *err, size_t errlen)
{
	char sdir[4096], sname[4096], mdir[4096], mname[4096];
	struct snap_buf b;
	int rc;

	snap_buf_init(&b);
	if (!vm_is_paused(vm)) {
		snprintf(err, errlen, "the VM must be paused to take a snapshot");
		return -EBUSY;
	}
	if (split_path(state_path, sdir, sname, sizeof(sdir)) ||
	    split_path(mem_path, mdir, mname, sizeof(mdir))) {
		snprintf(err, errlen, "snapshot path too long");
		return -ENAMETOOLONG;
	}
	if (!strcmp(sdir, mdir) && !strcmp(sname, mname)) {
		snprintf(err, errlen, "%s: the state and memory files must differ", state_path);
		return -EINVAL;
	}
	/* Quiesced from here to the end: the disks' identities (in the config)
	 * are taken after the requests the guest had issued have completed --
	 * before, a write or discard still in flight could land after its
	 * disk was identified -- and nothing reaches the disks or RAM while
	 * the files are written. */
	if (vm->io_ready)
		eventloop_pause(&vm->io);
	rc = state_devices_quiesce(vm);
	if (rc) {
		snprintf(err, errlen, "completing the devices' requests: %s", strerror(-rc));
		goto out;
	}
	snap_put_header(&b);
	rc = snapshot_save_config(vm, &b);
	if (rc) {
		snprintf(err, errlen, "saving the machine config: %s", strerror(-rc));
		goto out;
	}
	rc = snapshot_save_machine_state(vm, &b);
	if (rc) {
		snprintf(err, errlen, "saving the VM state: %s", strerror(-rc));
		goto out;
	}
	/* Memory first: a state file never names a memory file that is not
	 * complete. Its CRC comes from the same pass over RAM as the write. */
	uint32_t crc;
	rc = snap_write_atomic(mdir, mname, vm->mem.host, vm->mem.size, &crc, err, errlen);
	if (rc)
		goto out;
	snapshot_save_memory_section(&b, vm->mem.size, crc, mname);
	snap_put_end(&b);
	if (b.err) {
		rc = b.err;
		snprintf(err, errlen, "building the state: %s", strerror(-rc));
		goto out;
	}
	rc = snap_write_atomic(sdir, sname, b.p, b.len, NULL, err, errlen);
out:
	if (vm->io_ready)
		eventloop_resume(&vm->io);
	snap_buf_free(&b);
	return rc;
}

/* CRC-32 of the whole memory file against the saved one: 0, -EBADMSG.
 * Only the pages the file holds are read (a snapshot writes zero pages as
 * holes), so an idle guest's RAM costs little more than its data. */
static int snapshot_verify_memory(int fd, uint64_t size, uint32_t want)
{
	uint32_t crc;
	int rc = snap_crc32_file(fd, size, &crc);
	return rc ? rc : crc == want ? 0 : -EBADMSG;
}

int snapshot_open(struct snapshot *s, const char *state_path, const char *mem_path,
		  bool force, bool verify, char *err, size_t errlen)
{
	char why[256], e2[512];
	struct snap_section sec;
	struct snap_cur c;
	struct stat st;
	int fd = -1, rc;

	memset(s, 0, sizeof(*s));
	s->vc.cfg.restore_mem_fd = -1;
	rc = file_read_all(state_path, SNAP_STATE_MAX, &s->data, &s->len, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "%s: %s", state_path, why);
		goto out;
	}
	rc = snap_reader_open(&s->r, s->data, s->len, e2, sizeof(e2));
	if (!rc)
		rc = snapshot_parse_config(&s->r, &s->vc, e2, sizeof(e2));
	if (rc) {
		snprintf(err, errlen, "%s: %s", state_path, e2);
		goto out;
	}
	if (snap_reader_find(&s->r, "memory", 0, &sec)) {
		rc = -EINVAL;
		snprintf(err, errlen, "%s: no memory section", state_path);
		goto out;
	}
	snap_cur_init(&c, sec.data, sec.len);
	uint64_t size = snap_cur_u64(&c), crc = snap_cur_u64(&c);
	snap_cur_str(&c, why, sizeof(why));
	if (snap_cur_end(&c) || sec.version != CONFIG_VERSION || size != s->vc.cfg.mem_size) {
		rc = -EINVAL;
		snprintf(err, errlen, "%s: malformed memory section", state_path);
		goto out;
	}
	s->vc.mem_crc = crc;
	fd = open(mem_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", mem_path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
		rc = -EINVAL;
		snprintf(err, errlen, "%s: %s (the snapshot's RAM is %llu bytes)", mem_path,
			 S_ISREG(st.st_mode) ? "wrong size" : "not a regular file",
			 (unsigned long long)size);
		goto out;
	}
	if (verify) {
		rc = snapshot_verify_memory(fd, size, (uint32_t)crc);
		if (rc) {
			snprintf(err, errlen, "%s: %s", mem_path, rc == -EBADMSG ?
				 "contents do not match the checksum in the state file (corrupt; "
				 "--restore-no-verify, or \"verify\": false, to load it anyway)" :
				 strerror(-rc));
			goto out;
		}
	}
	if (!force) {
		rc = snapshot_check_disks(&s->vc, e2, sizeof(e2));
		if (rc) {
			snprintf(err, errlen, "%s", e2);
			goto out;
		}
	}
	s->vc.cfg.restore_mem_fd = fd;
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

void snapshot_close(struct snapshot *s)
{
	if (s->vc.cfg.restore_mem_fd >= 0)
		close(s->vc.cfg.restore_mem_fd);
	s->vc.cfg.restore_mem_fd = -1;
	snapshot_config_free(&s->vc);
	free(s->data);
	s->data = NULL;
}
