/* `wafer run --jail`: Firecracker-jailer-style confinement of the VMM process:
 * a per-VM root holding only the files the VM needs, new mount and PID
 * namespaces, pivot_root, rlimits, no_new_privs and an unprivileged uid/gid. */
#ifndef WAFER_JAIL_NAMESPACES_H
#define WAFER_JAIL_NAMESPACES_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "vmm/vm.h"

#define JAIL_BASE_DEFAULT "/srv/wafer"
#define JAIL_ID_DEFAULT 65534u      /* nobody / nogroup */
#define JAIL_SOCK "/api.sock"       /* the API socket's in-jail path */

struct jail_config {
	bool enabled;
	uid_t uid;
	gid_t gid;
	const char *base;           /* chroot base: the jail is <base>/<name>/root */
	const char *netns;          /* optional network namespace to join (setns) */
};

struct jail_state {
	char dir[3072];             /* <base>/<name> */
	char root[3200];            /* <base>/<name>/root */
	char kvm_dev[32];           /* in-jail names cfg is rewritten to point at */
	char disk_names[VM_MAX_DISKS][24];
	bool made_dir;
	pid_t child;                /* the VMM (PID 1 of the new PID namespace) */
};

/* Build the jail for cfg (host paths), fork the VMM into it and rewrite cfg
 * to the in-jail paths. Returns 0 in the jailed child (privileges dropped),
 * 1 in the parent once the child exited with *status its exit status (the
 * jail is already removed), or -errno with err naming the flag or file at
 * fault (nothing left behind). */
int jail_enter(struct jail_state *st, const struct jail_config *jc, struct vm_config *cfg,
	       int *status, char *err, size_t errlen);

#endif
