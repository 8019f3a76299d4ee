/* Per-VM resource controls through cgroups (v1 here, v2 where mounted):
 * CPU weight and cap with Xen credit2 semantics, a memory limit. The VM's
 * process joins <mount>/wafer/<name> in each controller it needs. */
#ifndef WAFER_JAIL_CGROUPS_H
#define WAFER_JAIL_CGROUPS_H

#include <stddef.h>
#include <stdint.h>

#define CG_WEIGHT_DEFAULT 256

struct cg_config {
	unsigned weight;        /* 1..65535, credit2 scale (256 = default) */
	unsigned cap_pct;       /* 0 = no cap; else % of one CPU (may exceed 100) */
	uint64_t mem_limit;     /* bytes; 0 = none */
};

struct cg_state {
	char dirs[4][512];      /* cgroup directories created, to remove at exit */
	unsigned ndirs;
	int v2;
};

/* credit2 weight -> v1 cpu.shares (1024 per 256) and v2 cpu.weight (100 per 256). */
uint64_t cg_weight_to_shares(unsigned weight);
uint64_t cg_weight_to_v2(unsigned weight);

/* Nothing to do when cfg asks for nothing beyond the defaults. 0, or -errno
 * with err naming the flag and the cgroup file at fault. */
int cg_apply(struct cg_state *st, const char *name, const struct cg_config *cfg,
	     char *err, size_t errlen);
/* Leave the cgroups (back to the root group) and remove them. */
void cg_release(struct cg_state *st);

#endif
