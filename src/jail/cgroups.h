/* Per-VM resource controls through cgroups (v1 here, v2 where mounted):
 * CPU weight and cap with Xen credit2 semantics, a memory limit. The VM's
 * process joins <mount>/wafer/<name> in each controller it needs (v1), or
 * <root>/wafer/<name> with cpu and memory handed down to it (v2); the
 * limits can change while it runs (PATCH /machine-config, `wafer set`). */
#ifndef WAFER_JAIL_CGROUPS_H
#define WAFER_JAIL_CGROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CG_ROOT "/sys/fs/cgroup"  /* v2's root, or the directory of v1's hierarchies */
#define CG_WEIGHT_DEFAULT 256

struct cg_config {
	unsigned weight;        /* 1..VM_CPU_WEIGHT_MAX, credit2 scale (256 = default) */
	unsigned cap_pct;       /* 0 = no cap; else % of one CPU (may exceed 100) */
	uint64_t mem_limit;     /* bytes; 0 = none */
};

/* Which fields of a cg_config cg_update applies. */
#define CG_SET_WEIGHT 1u
#define CG_SET_CAP    2u
#define CG_SET_MEM    4u

struct cg_state {
	bool applied;           /* cg_apply ran: the descriptors below are valid */
	char root[256];         /* CG_ROOT, or a test's fake tree */
	char dirs[4][512];      /* cgroup directories created, to remove at exit */
	unsigned ndirs;
	int v2;
	/* Opened by cg_apply and kept, so changes and the release open no
	 * file later (the seccomp filters forbid it; inside --jail the cgroup
	 * tree is not even visible). -1: that controller is not set up, and
	 * why_cpu / why_mem say why. */
	int fd_weight, fd_cap, fd_mem;   /* v1 cpu.shares, cpu.cfs_quota_us,
					  * memory.limit_in_bytes; v2 cpu.weight,
					  * cpu.max, memory.max */
	int fd_leave[4];        /* the root group's cgroup.procs, per dirs[i] */
	char why_cpu[160], why_mem[160];
	struct cg_config cur;   /* what the groups are set to now */
};

/* credit2 weight -> v1 cpu.shares (1024 per 256) and v2 cpu.weight (100 per 256). */
uint64_t cg_weight_to_shares(unsigned weight);
uint64_t cg_weight_to_v2(unsigned weight);

/* Join the groups cfg needs and set them: a failure there is -errno with err
 * naming the flag and the cgroup file at fault. for_updates (root with the
 * API on): also join the groups cfg leaves at their defaults, so that they
 * can change later; failing that is not an error (why_cpu/why_mem keep the
 * reason). Nothing at all when neither asks for anything. */
int cg_apply(struct cg_state *st, const char *name, const struct cg_config *cfg, bool for_updates,
	     char *err, size_t errlen);
/* The same under root instead of CG_ROOT: v2 when root/cgroup.controllers
 * exists (cpu and memory are then enabled in root's and root/wafer's
 * cgroup.subtree_control where they are not yet), else v1 with the
 * hierarchies at root/cpu and root/memory. */
int cg_apply_at(struct cg_state *st, const char *root, const char *name,
		const struct cg_config *cfg, bool for_updates, char *err, size_t errlen);
/* Apply the fields of cfg selected by what (CG_SET_*), in the order weight,
 * cap, memory, stopping at the first failure. 0, -EINVAL (out of range),
 * -ENOTSUP (no group for that controller) or the cgroup file's -errno, with
 * err saying which. */
int cg_update(struct cg_state *st, const struct cg_config *cfg, unsigned what,
	      char *err, size_t errlen);
/* Leave the cgroups (back to the root group) and remove them. */
void cg_release(struct cg_state *st);

#endif
