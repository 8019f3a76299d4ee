/* cgroup resource controls (see cgroups.h). v1: cpu.shares, cpu.cfs_quota_us/
 * cfs_period_us, memory.limit_in_bytes; v2: cpu.weight, cpu.max, memory.max.
 * Credit2's weight is relative with 256 as the default, like cpu.shares with
 * 1024; its cap is a percentage of one physical CPU, like a CFS quota. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jail/cgroups.h"

#define CG_ROOT "/sys/fs/cgroup"
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

/* mkdir <root>/wafer/<name>, remember it and how to leave it, move this
 * process in. */
static int cg_join(struct cg_state *st, const char *root, const char *name, char *dir, size_t len,
		   char *err, size_t errlen)
{
	char pid[32];
	int rc, leave;

	snprintf(dir, len, "%s/wafer", root);
	if (mkdir(dir, 0755) && errno != EEXIST) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(e));
		return -e;
	}
	snprintf(dir, len, "%s/wafer/%s", root, name);
	if (mkdir(dir, 0755) && errno != EEXIST) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(e));
		return -e;
	}
	if ((rc = cg_open(root, "cgroup.procs", &leave, err, errlen)))
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

/* v2 keeps both controllers in one group: join it once. */
static int cg_join_v2(struct cg_state *st, const char *name, char *dir, size_t len,
		      char *err, size_t errlen)
{
	snprintf(dir, len, "%s/wafer/%s", CG_ROOT, name);
	for (unsigned i = 0; i < st->ndirs; i++)
		if (!strcmp(st->dirs[i], dir))
			return 0;
	return cg_join(st, CG_ROOT, name, dir, len, err, errlen);
}

static int cg_setup_cpu(struct cg_state *st, const char *name, const struct cg_config *cfg,
			char *err, size_t errlen)
{
	char dir[512], v[32];
	int rc;

	if (st->v2) {
		if ((rc = cg_join_v2(st, name, dir, sizeof(dir), err, errlen)) ||
		    (rc = cg_open(dir, "cpu.weight", &st->fd_weight, err, errlen)) ||
		    (rc = cg_open(dir, "cpu.max", &st->fd_cap, err, errlen)))
			goto out;
	} else {
		snprintf(v, sizeof(v), "%d", CG_PERIOD_US);
		if ((rc = cg_join(st, CG_ROOT "/cpu", name, dir, sizeof(dir), err, errlen)) ||
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
	char dir[512];
	int rc;

	if (st->v2)
		rc = cg_join_v2(st, name, dir, sizeof(dir), err, errlen);
	else
		rc = cg_join(st, CG_ROOT "/memory", name, dir, sizeof(dir), err, errlen);
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
	st->v2 = stat(CG_ROOT "/cgroup.controllers", &sb) == 0;
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

	if ((what & CG_SET_WEIGHT) && (cfg->weight < 1 || cfg->weight > CG_WEIGHT_MAX)) {
		snprintf(err, errlen, "CPU weight %u: expected 1..%u", cfg->weight, CG_WEIGHT_MAX);
		return -EINVAL;
	}
	if ((what & CG_SET_CAP) && cfg->cap_pct > CG_CAP_MAX) {
		snprintf(err, errlen, "CPU cap %u%%: expected 0..%u", cfg->cap_pct, CG_CAP_MAX);
		return -EINVAL;
	}
	if ((what & CG_SET_MEM) && cfg->mem_limit && cfg->mem_limit < CG_MEM_MIN) {
		snprintf(err, errlen, "memory limit %llu bytes: expected 0 (none) or at least 16 MiB",
			 (unsigned long long)cfg->mem_limit);
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
