/* Live migration of a wafer VM: the migrate.c engine bound to a real VM
 * (KVM dirty log plus the VMM's own dirty bitmap, vCPU pause, I/O thread
 * parked and devices quiesced at switch-over, vCPU throttling for
 * auto-converge), the hello the destination builds its VM from, and the
 * checks it applies to it. */
#ifndef WAFER_STATE_MIGRATE_VM_H
#define WAFER_STATE_MIGRATE_VM_H

#include "state/migrate.h"
#include "state/snapshot.h"
#include "vmm/vm.h"

/* Connect to url and migrate vm. On success the VM has been handed over and
 * is stopped with VM_STOP_MIGRATED (wafer exits 0); on failure it runs on as
 * before (resumed if it was running) and err says why. */
int vm_migrate_out(struct vm *vm, const char *url, const struct migrate_params *p,
		   struct migrate_progress *prog, char *err, size_t errlen);

/* The hello: a state container with the machine config sections. */
int vm_migrate_hello(struct vm *vm, struct snap_buf *b);
/* Parse and check a hello: the container, the config, and when want_template
 * is not NULL that the source ran the same CPU template. *vc is filled (free
 * with snapshot_config_free); 0 or -errno with err. */
int vm_migrate_parse_hello(const void *hello, size_t len, const char *want_template,
			   struct snap_vmconfig *vc, char *err, size_t errlen);

#endif
