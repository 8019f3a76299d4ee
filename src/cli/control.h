/* The VM controller behind `wafer run`: owns the vm, implements the API's
 * controller ops (start, pause, resume, Ctrl-Alt-Del, metrics), and runs the
 * VM on the main thread with the restart policies. */
#ifndef WAFER_CLI_CONTROL_H
#define WAFER_CLI_CONTROL_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "api/api.h"
#include "state/migrate.h"
#include "vmm/vm.h"

struct snapshot;

enum run_policy { POLICY_DESTROY, POLICY_RESTART, POLICY_PRESERVE };

struct run_ctl {
	pthread_mutex_t lock;
	struct vm vm;
	bool built;                 /* vm_create succeeded, vm_destroy owed */
	int start_efd;              /* readable once a VM was built by start() */
	struct vm_config base;      /* from the flags: name, KVM path, rng, ... */
	bool direct;                /* flags gave the whole config: use base as is */
	struct vm_config vcfg;      /* what the VM was built from */
	struct api_config acfg;     /* API config the strings of vcfg point into */
	enum run_policy on_poweroff, on_reboot, on_crash;
	struct timespec started_at;
	char metrics_path[API_PATH_MAX];
	struct snapshot *snap;      /* the VM was restored from it; vcfg points into it */
	/* Live migration out (PUT /migrate), on its own thread. */
	pthread_t mig_thread;
	bool mig_joinable;
	struct migrate_progress mig_prog;
	char mig_url[API_PATH_MAX];
	_Atomic bool mig_final_seen;   /* a client read the completed status */
	bool incoming;                 /* --incoming: only a migration builds the VM */
	pthread_t lock_thread;         /* takes the disk locks after the hand-over */
	bool lock_joinable;
	bool gone;                     /* migrated away: nothing may be built again */
	const char *incoming_template; /* --incoming with --cpu-template: must match */
};

extern const struct api_controller_ops run_ctl_ops;
extern const struct api_snapshot_ops run_ctl_snapshot_ops;
extern const struct api_migrate_ops run_ctl_migrate_ops;

/* --incoming URL: listen, receive one migration and build the VM from it
 * (started as if by InstanceStart). 0, or -errno with err (-EINTR: a signal
 * ended the wait). */
int run_ctl_incoming(struct run_ctl *c, const char *url, char *err, size_t errlen);

int run_ctl_init(struct run_ctl *c, const struct vm_config *base, bool direct);
void run_ctl_destroy(struct run_ctl *c);
/* An api_config describing base (for GET /vm/config in flag mode). */
void run_ctl_describe(const struct vm_config *base, struct api_config *out);
/* Wait for start() (API mode) or a terminating signal; run the VM and apply
 * the restart policies. Returns wafer's exit status. */
int run_ctl_main(struct run_ctl *c);
int run_policy_parse(const char *s, enum run_policy *out);

#endif
