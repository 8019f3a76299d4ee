/* cgroup resource controls (see cgroups.h). v1: cpu.shares, cpu.cfs_quota_us/
 * cfs_period_us, memory.limit_in_bytes; v2: cpu.weight, cpu.max, memory.max,
 * with the controllers handed down root -> wafer -> NAME through each
 * parent's cgroup.subtree_control (Documentation/admin-guide/cgroup-v2.rst,
 * "Enabling and Disabling"). Credit2's weight is relative with 256 as the
 * default, like cpu.shares with 1024; its cap is a percentage of one
 * physical CPU, like a CFS quota. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jail/cgroups.h"
#include "vmm/vm.h"

#define CG_PERIOD_US 100000

uint64_t cg_weight_to_shares(unsigned weight)
{
	return (uint64_t)weight * 1024 / CG_WEIGHT_DEFAULT < 2 ? 2 : (uint64_t)weight * 1024 / CG_WEIGHT_DEFAULT;
}

uint64_t cg_weight_to_v2(unsigned weight)
{
	uint64_t w = (uint64_t)weight * 100 / CG_WEIGHT_DEFAULT;
	return w < 1 ? 1 : w > 10000 ? 10000 : w;
}

static int cg_open(const char *dir, const char *file, int *fd, char *err, size_t errlen)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	*fd = open(path, O_WRONLY | O_CLOEXEC);
	if (*fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

/* One value into an open cgroup file (name for the message). */
static int cg_put(int fd, const char *name, const char *value, char *err, size_t errlen)
{
	if (pwrite(fd, value, strlen(value), 0) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", name, strerror(e));
		return -e;
	}
	return 0;
}

static int cg_write(const char *dir, const char *file, const char *value, char *err, size_t errlen)
{
	int fd, rc = cg_open(dir, file, &fd, err, errlen);
	if (rc)
		return rc;
	rc = cg_put(fd, file, value, err, errlen);
	close(fd);
	return rc;
}

static int cg_mkdir(const char *dir, char *err, size_t errlen)
{
	if (mkdir(dir, 0755) && errno != EEXIST) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(e));
		return -e;
	}
	return 0;
}

/* mkdir <root>/wafer/<name>, remember it and how to leave it, move this
 * process in. */
static int cg_join(struct cg_state *st, const char *root, const char *name, char *dir, size_t len,
		   char *err, size_t errlen)
{
	char pid[32];
	int rc, leave;

	snprintf(dir, len, "%s/wafer", root);
	if ((rc = cg_mkdir(dir, err, errlen)))
		return rc;
	snprintf(dir, len, "%s/wafer/%s", root, name);
	if ((rc = cg_mkdir(dir, err, errlen)) ||
	    (rc = cg_open(root, "cgroup.procs", &leave, err, errlen)))
		return rc;
	if (st->ndirs < sizeof(st->dirs) / sizeof(st->dirs[0])) {
		snprintf(st->dirs[st->ndirs], sizeof(st->dirs[0]), "%s", dir);
		st->fd_leave[st->ndirs++] = leave;
	} else {
		close(leave);
	}
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	return cg_write(dir, "cgroup.procs", pid, err, errlen);
}

static void cg_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Is word one of the space-separated names in dir/file (cgroup.controllers,
 * cgroup.subtree_control)? 1 or 0; -errno with err naming the file. */
static int cg_list_has(const char *dir, const char *file, const char *word, char *err,
		       size_t errlen)
{
	char path[600], buf[1024], *save = NULL;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	close(fd);
	buf[n] = '\0';
	for (char *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
		if (!strcmp(t, word))
			return 1;
	return 0;
}

/* v2: let the children of dir use ctrl. dir must have it (its
 * cgroup.controllers: what its parent hands down or, at the root, what no
 * v1 hierarchy holds); it is added to dir's cgroup.subtree_control unless
 * it is there already (a systemd host delegates cpu and memory from the
 * root; a fresh cgroup2 mount delegates nothing). */
static int cg_v2_delegate(const char *dir, bool top, const char *ctrl, char *err, size_t errlen)
{
	char path[600], v[32];
	int fd, rc;

	rc = cg_list_has(dir, "cgroup.controllers", ctrl, err, errlen);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		snprintf(err, errlen, "%s/cgroup.controllers: no %s controller (%s)", dir, ctrl,
			 top ? "bound to a cgroup v1 hierarchy, or disabled on the kernel command line"
			     : "its parent group does not hand it down");
		return -ENOENT;
	}
	rc = cg_list_has(dir, "cgroup.subtree_control", ctrl, err, errlen);
	if (rc)
		return rc < 0 ? rc : 0;
	/* "+cpu" changes cpu alone; the others stay as they are. O_APPEND as
	 * in `echo +cpu >>`: the kernel ignores the offset, and a test's fake
	 * tree (a regular file) keeps every change asked for. */
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
	snprintf(v, sizeof(v), "+%s\n", ctrl);
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 || write(fd, v, strlen(v)) < 0) {
		int e = errno;
		/* v2's "no internal processes" rule: a group other than the root
		 * hands controllers down only while it has no processes itself. */
		snprintf(err, errlen, "%s: +%s: %s%s", path, ctrl, strerror(e),
			 e == EBUSY ? " (the group has processes of its own; cgroup v2 hands controllers "
				      "down only from a group without them)" : "");
		rc = -e;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* v2: ctrl handed down root -> wafer -> wafer/NAME. The root is checked
 * before anything is made, so an unusable controller leaves nothing. */
static int cg_v2_enable(const struct cg_state *st, const char *ctrl, char *err, size_t errlen)
{
	char dir[512];
	int rc = cg_v2_delegate(st->root, true, ctrl, err, errlen);

	snprintf(dir, sizeof(dir), "%s/wafer", st->root);
	if (!rc)
		rc = cg_mkdir(dir, err, errlen);
	return rc ? rc : cg_v2_delegate(dir, false, ctrl, err, errlen);
}

/* v2 keeps both controllers in one group: hand ctrl down to it, join it once.
 * wafer/NAME itself stays a leaf (it holds this process). */
static int cg_join_v2(struct cg_state *st, const char *ctrl, const char *name, char *dir,
		      size_t len, char *err, size_t errlen)
{
	int rc = cg_v2_enable(st, ctrl, err, errlen);
	if (rc)
		return rc;
	snprintf(dir, len, "%s/wafer/%s", st->root, name);
	for (unsigned i = 0; i < st->ndirs; i++)
		if (!strcmp(st->dirs[i], dir))
			return 0;
	return cg_join(st, st->root, name, dir, len, err, errlen);
}

static int cg_setup_cpu(struct cg_state *st, const char *name, const struct cg_config *cfg,
			char *err, size_t errlen)
{
	char dir[512], v1root[512], v[32];
	int rc;

	if (st->v2) {
		if ((rc = cg_join_v2(st, "cpu", name, dir, sizeof(dir), err, errlen)) ||
		    (rc = cg_open(dir, "cpu.weight", &st->fd_weight, err, errlen)) ||
		    (rc = cg_open(dir, "cpu.max", &st->fd_cap, err, errlen)))
			goto out;
	} else {
		snprintf(v, sizeof(v), "%d", CG_PERIOD_US);
		snprintf(v1root, sizeof(v1root), "%s/cpu", st->root);
		if ((rc = cg_join(st, v1root, name, dir, sizeof(dir), err, errlen)) ||
		    (rc = cg_write(dir, "cpu.cfs_period_us", v, err, errlen)) ||
		    (rc = cg_open(dir, "cpu.shares", &st->fd_weight, err, errlen)) ||
		    (rc = cg_open(dir, "cpu.cfs_quota_us", &st->fd_cap, err, errlen)))
			goto out;
	}
	rc = cg_update(st, cfg, CG_SET_WEIGHT | CG_SET_CAP, err, errlen);
out:
	if (rc) {
		cg_close(&st->fd_weight);
		cg_close(&st->fd_cap);
	}
	return rc;
}

static int cg_setup_mem(struct cg_state *st, const char *name, const struct cg_config *cfg,
			char *err, size_t errlen)
{
	char dir[512], v1root[512];
	int rc;

	snprintf(v1root, sizeof(v1root), "%s/memory", st->root);
	if (st->v2)
		rc = cg_join_v2(st, "memory", name, dir, sizeof(dir), err, errlen);
	else
		rc = cg_join(st, v1root, name, dir, sizeof(dir), err, errlen);
	if (!rc)
		rc = cg_open(dir, st->v2 ? "memory.max" : "memory.limit_in_bytes", &st->fd_mem,
			     err, errlen);
	if (!rc)
		rc = cg_update(st, cfg, CG_SET_MEM, err, errlen);
	if (rc)
		cg_close(&st->fd_mem);
	return rc;
}

int cg_apply(struct cg_state *st, const char *name, const struct cg_config *cfg, bool for_updates,
	     char *err, size_t errlen)
{
	return cg_apply_at(st, CG_ROOT, name, cfg, for_updates, err, errlen);
}

int cg_apply_at(struct cg_state *st, const char *root, const char *name,
		const struct cg_config *cfg, bool for_updates, char *err, size_t errlen)
{
	char probe[600];
	struct stat sb;
	int rc;

	memset(st, 0, sizeof(*st));
	st->applied = true;
	st->fd_weight = st->fd_cap = st->fd_mem = -1;
	for (unsigned i = 0; i < sizeof(st->fd_leave) / sizeof(st->fd_leave[0]); i++)
		st->fd_leave[i] = -1;
	st->cur = (struct cg_config){ .weight = CG_WEIGHT_DEFAULT };
	snprintf(st->why_cpu, sizeof(st->why_cpu), "started without --cpu-weight/--cpu-cap, not as root");
	snprintf(st->why_mem, sizeof(st->why_mem), "started without --memory-limit, not as root");
	bool want_cpu = cfg->weight != CG_WEIGHT_DEFAULT || cfg->cap_pct, want_mem = cfg->mem_limit;
	if (!want_cpu && !want_mem && !for_updates)
		return 0;
	snprintf(st->root, sizeof(st->root), "%s", root);
	snprintf(probe, sizeof(probe), "%s/cgroup.controllers", root);
	st->v2 = stat(probe, &sb) == 0;
	if (want_cpu || for_updates) {
		rc = cg_setup_cpu(st, name, cfg, err, errlen);
		if (rc && want_cpu)
			return rc;
		if (rc)
			snprintf(st->why_cpu, sizeof(st->why_cpu), "%s", err);
	}
	if (want_mem || for_updates) {
		rc = cg_setup_mem(st, name, cfg, err, errlen);
		if (rc && want_mem)
			return rc;
		if (rc)
			snprintf(st->why_mem, sizeof(st->why_mem), "%s", err);
	}
	return 0;
}

int cg_update(struct cg_state *st, const struct cg_config *cfg, unsigned what,
	      char *err, size_t errlen)
{
	char v[64];
	int rc;

	if ((what & CG_SET_WEIGHT) && (cfg->weight < 1 || cfg->weight > VM_CPU_WEIGHT_MAX)) {
		snprintf(err, errlen, "CPU weight %u: expected 1..%u", cfg->weight, VM_CPU_WEIGHT_MAX);
		return -EINVAL;
	}
	if ((what & CG_SET_CAP) && cfg->cap_pct > VM_CPU_CAP_MAX) {
		snprintf(err, errlen, "CPU cap %u%%: expected 0..%u", cfg->cap_pct, VM_CPU_CAP_MAX);
		return -EINVAL;
	}
	if ((what & CG_SET_MEM) && cfg->mem_limit &&
	    cfg->mem_limit < ((uint64_t)VM_MEM_LIMIT_MIN_MIB << 20)) {
		snprintf(err, errlen, "memory limit %llu bytes: expected 0 (none) or at least %d MiB",
			 (unsigned long long)cfg->mem_limit, VM_MEM_LIMIT_MIN_MIB);
		return -EINVAL;
	}
	if ((what & (CG_SET_WEIGHT | CG_SET_CAP)) && st->fd_weight < 0) {
		snprintf(err, errlen, "the VM has no CPU cgroup (%s)",
			 st->applied ? st->why_cpu : "no resource controls");
		return -ENOTSUP;
	}
	if ((what & CG_SET_MEM) && st->fd_mem < 0) {
		snprintf(err, errlen, "the VM has no memory cgroup (%s)",
			 st->applied ? st->why_mem : "no resource controls");
		return -ENOTSUP;
	}
	if (what & CG_SET_WEIGHT) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)(st->v2 ? cg_weight_to_v2(cfg->weight) :
								     cg_weight_to_shares(cfg->weight)));
		if ((rc = cg_put(st->fd_weight, st->v2 ? "cpu.weight" : "cpu.shares", v, err, errlen)))
			return rc;
		st->cur.weight = cfg->weight;
	}
	if (what & CG_SET_CAP) {
		long long quota = (long long)cfg->cap_pct * CG_PERIOD_US / 100;
		if (st->v2 && cfg->cap_pct)
			snprintf(v, sizeof(v), "%lld %d", quota, CG_PERIOD_US);
		else if (st->v2)
			snprintf(v, sizeof(v), "max %d", CG_PERIOD_US);
		else
			snprintf(v, sizeof(v), "%lld", cfg->cap_pct ? quota : -1LL);
		if ((rc = cg_put(st->fd_cap, st->v2 ? "cpu.max" : "cpu.cfs_quota_us", v, err, errlen)))
			return rc;
		st->cur.cap_pct = cfg->cap_pct;
	}
	if (what & CG_SET_MEM) {
		if (cfg->mem_limit)
			snprintf(v, sizeof(v), "%llu", (unsigned long long)cfg->mem_limit);
		else
			snprintf(v, sizeof(v), "%s", st->v2 ? "max" : "-1");
		if ((rc = cg_put(st->fd_mem, st->v2 ? "memory.max" : "memory.limit_in_bytes", v,
				 err, errlen)))
			return rc;
		st->cur.mem_limit = cfg->mem_limit;
	}
	return 0;
}

void cg_release(struct cg_state *st)
{
	char pid[32], err[128];

	if (!st->applied)
		return;
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	for (unsigned i = st->ndirs; i-- > 0;) {
		/* Back to the root group, then remove ours. */
		(void)cg_put(st->fd_leave[i], "cgroup.procs", pid, err, sizeof(err));
		rmdir(st->dirs[i]);
	}
	for (unsigned i = 0; i < sizeof(st->fd_leave) / sizeof(st->fd_leave[0]); i++)
		cg_close(&st->fd_leave[i]);
	cg_close(&st->fd_weight);
	cg_close(&st->fd_cap);
	cg_close(&st->fd_mem);
	st->ndirs = 0;
	st->applied = false;
}
