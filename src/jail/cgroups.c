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

static int cg_write(const char *dir, const char *file, const char *value, char *err, size_t errlen)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, strlen(value)) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	close(fd);
	return 0;
}

/* mkdir <root>/wafer/<name>, remember it, move this process in. */
static int cg_join(struct cg_state *st, const char *root, const char *name, char *dir, size_t len,
		   char *err, size_t errlen)
{
	char pid[32];
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
	if (st->ndirs < sizeof(st->dirs) / sizeof(st->dirs[0]))
		snprintf(st->dirs[st->ndirs++], sizeof(st->dirs[0]), "%s", dir);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	return cg_write(dir, "cgroup.procs", pid, err, errlen);
}

int cg_apply(struct cg_state *st, const char *name, const struct cg_config *cfg,
	     char *err, size_t errlen)
{
	char dir[512], v[64];
	struct stat sb;
	int rc;

	memset(st, 0, sizeof(*st));
	int want_cpu = cfg->weight != CG_WEIGHT_DEFAULT || cfg->cap_pct;
	if (!want_cpu && !cfg->mem_limit)
		return 0;
	st->v2 = stat(CG_ROOT "/cgroup.controllers", &sb) == 0;
	if (st->v2) {
		if ((rc = cg_join(st, CG_ROOT, name, dir, sizeof(dir), err, errlen)))
			return rc;
		if (want_cpu) {
			snprintf(v, sizeof(v), "%llu", (unsigned long long)cg_weight_to_v2(cfg->weight));
			if ((rc = cg_write(dir, "cpu.weight", v, err, errlen)))
				return rc;
			if (cfg->cap_pct)
				snprintf(v, sizeof(v), "%llu %d",
					 (unsigned long long)cfg->cap_pct * CG_PERIOD_US / 100, CG_PERIOD_US);
			else
				snprintf(v, sizeof(v), "max %d", CG_PERIOD_US);
			if ((rc = cg_write(dir, "cpu.max", v, err, errlen)))
				return rc;
		}
		if (cfg->mem_limit) {
			snprintf(v, sizeof(v), "%llu", (unsigned long long)cfg->mem_limit);
			if ((rc = cg_write(dir, "memory.max", v, err, errlen)))
				return rc;
		}
		return 0;
	}
	if (want_cpu) {
		if ((rc = cg_join(st, CG_ROOT "/cpu", name, dir, sizeof(dir), err, errlen)))
			return rc;
		snprintf(v, sizeof(v), "%llu", (unsigned long long)cg_weight_to_shares(cfg->weight));
		if ((rc = cg_write(dir, "cpu.shares", v, err, errlen)))
			return rc;
		snprintf(v, sizeof(v), "%d", CG_PERIOD_US);
		if ((rc = cg_write(dir, "cpu.cfs_period_us", v, err, errlen)))
			return rc;
		snprintf(v, sizeof(v), "%lld", cfg->cap_pct ?
			 (long long)cfg->cap_pct * CG_PERIOD_US / 100 : -1LL);
		if ((rc = cg_write(dir, "cpu.cfs_quota_us", v, err, errlen)))
			return rc;
	}
	if (cfg->mem_limit) {
		if ((rc = cg_join(st, CG_ROOT "/memory", name, dir, sizeof(dir), err, errlen)))
			return rc;
		snprintf(v, sizeof(v), "%llu", (unsigned long long)cfg->mem_limit);
		if ((rc = cg_write(dir, "memory.limit_in_bytes", v, err, errlen)))
			return rc;
	}
	return 0;
}

void cg_release(struct cg_state *st)
{
	char pid[32], parent[600], err[128];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	for (unsigned i = st->ndirs; i-- > 0;) {
		/* <root>/wafer/<name> -> back to <root>, then remove ours. */
		snprintf(parent, sizeof(parent), "%s", st->dirs[i]);
		char *w = strstr(parent, "/wafer/");
		if (!w)
			continue;
		*w = '\0';
		(void)cg_write(parent, "cgroup.procs", pid, err, sizeof(err));
		rmdir(st->dirs[i]);
	}
	st->ndirs = 0;
}
