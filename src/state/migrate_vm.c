/* The migration engine's source ops over a real VM (see migrate_vm.h). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "state/migrate_vm.h"
#include "vmm/log.h"

#define THROTTLE_PERIOD_US 20000   /* one throttle cycle: run, then sleep pct% */

struct vm_mig {
	struct vm *vm;
	bool we_paused, loop_paused, tracking;
	pthread_t throttle;
	bool throttle_running;
	atomic_uint throttle_pct;
	atomic_bool throttle_stop;
};

static void *mig_throttle_thread(void *arg)
{
	struct vm_mig *m = arg;
	pthread_setname_np(pthread_self(), "wafer-throttle");
	while (!atomic_load(&m->throttle_stop)) {
		unsigned pct = atomic_load(&m->throttle_pct);
		if (pct && vm_pause(m->vm) == 0) {
			usleep(THROTTLE_PERIOD_US / 100 * pct);
			vm_resume(m->vm);
		}
		usleep(THROTTLE_PERIOD_US / 100 * (100 - (pct > 99 ? 99 : pct)));
	}
	return NULL;
}

static void mig_throttle_stop(struct vm_mig *m)
{
	atomic_store(&m->throttle_pct, 0);
	if (m->throttle_running) {
		atomic_store(&m->throttle_stop, true);
		pthread_join(m->throttle, NULL);
		m->throttle_running = false;
	}
}

static void mig_throttle(void *opaque, unsigned pct)
{
	struct vm_mig *m = opaque;
	if (!pct) {
		mig_throttle_stop(m);
		return;
	}
	atomic_store(&m->throttle_pct, pct > 99 ? 99 : pct);
	if (!m->throttle_running) {
		atomic_store(&m->throttle_stop, false);
		m->throttle_running = pthread_create(&m->throttle, NULL, mig_throttle_thread, m) == 0;
	}
	log_info("migration: guest dirties memory faster than the link; vCPUs throttled to "
		 "%u%%", 100 - pct);
}

static int mig_dirty_start(void *opaque)
{
	struct vm_mig *m = opaque;
	int rc = gmem_dirty_start(&m->vm->mem);
	if (!rc)
		rc = vm_dirty_log_start(m->vm);
	if (rc) {
		gmem_dirty_stop(&m->vm->mem);
		return rc;
	}
	m->tracking = true;
	return 0;
}

static void mig_dirty_stop(void *opaque)
{
	struct vm_mig *m = opaque;
	if (!m->tracking)
		return;
	vm_dirty_log_stop(m->vm);
	gmem_dirty_stop(&m->vm->mem);
	m->tracking = false;
}

static int mig_dirty_harvest(void *opaque, uint64_t *bitmap)
{
	struct vm_mig *m = opaque;
	int rc = vm_dirty_log_harvest(m->vm, bitmap);
	gmem_dirty_harvest(&m->vm->mem, bitmap);
	return rc;
}

/* vCPUs parked, the I/O thread parked, every device's in-flight work done:
 * nothing writes guest memory or disks until resume (or the stop). */
static int mig_pause(void *opaque)
{
	struct vm_mig *m = opaque;
	struct vm *vm = m->vm;

	mig_throttle_stop(m);
	if (!vm_is_paused(vm)) {
		int rc = vm_pause(vm);
		if (rc)
			return rc;
		m->we_paused = true;
	}
	eventloop_pause(&vm->io);
	m->loop_paused = true;
	for (unsigned i = 0; i < vm->nvirtio; i++) {
		struct virtio_dev *d = vm->virtio[i];
		int rc = d->ops->quiesce ? d->ops->quiesce(d) : 0;
		if (rc) {
			log_error("%s: cannot quiesce for migration: %s", d->ops->name, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int mig_resume(void *opaque)
{
	struct vm_mig *m = opaque;
	if (m->loop_paused) {
		eventloop_resume(&m->vm->io);
		m->loop_paused = false;
	}
	if (m->we_paused) {
		m->we_paused = false;
		return vm_resume(m->vm);
	}
	return 0;
}

static int mig_save_state(void *opaque, struct snap_buf *b)
{
	struct vm_mig *m = opaque;
	return snapshot_save_machine_state(m->vm, b);
}

static void mig_on_round(void *opaque, const struct migrate_status *st)
{
	(void)opaque;
	log_info("migration round %u: %llu MiB sent, %llu KiB left, dirty %llu KiB/s, link "
		 "%llu MiB/s, expected downtime %.1f ms", st->round,
		 (unsigned long long)(st->bytes_transferred >> 20),
		 (unsigned long long)(st->bytes_remaining >> 10),
		 (unsigned long long)(st->dirty_rate >> 10),
		 (unsigned long long)(st->bandwidth >> 20), (double)st->expected_downtime_ns / 1e6);
}

static const struct migrate_source_ops vm_source_ops = {
	.dirty_start = mig_dirty_start,
	.dirty_stop = mig_dirty_stop,
	.dirty_harvest = mig_dirty_harvest,
	.pause = mig_pause,
	.resume = mig_resume,
	.save_state = mig_save_state,
	.throttle = mig_throttle,
	.on_round = mig_on_round,
};

int vm_migrate_hello(struct vm *vm, struct snap_buf *b)
{
	snap_put_header(b);
	int rc = snapshot_save_config(vm, b);
	snap_put_end(b);
	return rc ? rc : b->err;
}

int vm_migrate_parse_hello(const void *hello, size_t len, const char *want_template,
			   struct snap_vmconfig *vc, char *err, size_t errlen)
{
	struct snap_reader r;
	char why[256];
	int rc;

	memset(vc, 0, sizeof(*vc));
	rc = snap_reader_open(&r, hello, len, why, sizeof(why));
	if (!rc)
		rc = snapshot_parse_config(&r, vc, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "the source's machine config: %s", why);
		return rc;
	}
	if (want_template && strcmp(want_template, vc->cpu_template)) {
		snprintf(err, errlen, "CPU template differs: the source runs '%s', this "
			 "destination was started with --cpu-template %s", vc->cpu_template,
			 want_template);
		snapshot_config_free(vc);
		return -EINVAL;
	}
	return 0;
}

int vm_migrate_out(struct vm *vm, const char *url, const struct migrate_params *p,
		   struct migrate_progress *prog, char *err, size_t errlen)
{
	struct vm_mig m = { .vm = vm };
	struct snap_buf hello;
	int fd = -1, rc;

	snap_buf_init(&hello);
	rc = vm_migrate_hello(vm, &hello);
	if (rc) {
		snprintf(err, errlen, "describing the VM: %s", strerror(-rc));
		goto out;
	}
	rc = migrate_connect(url, p && p->io_timeout_ms ? p->io_timeout_ms : 10000, &fd, err, errlen);
	if (rc)
		goto out;
	rc = migrate_send(fd, &vm->mem, hello.p, hello.len, &vm_source_ops, &m, p, prog, err,
			  errlen);
	mig_throttle_stop(&m);
	if (rc)
		goto out;
	/* Handed over: the destination runs the guest now. The I/O thread stays
	 * parked so no held request reaches the shared disk from here. */
	char detail[256];
	snprintf(detail, sizeof(detail), "migrated to %s", url);
	vm_request_stop(vm, VM_STOP_MIGRATED, 0, detail);
out:
	if (fd >= 0)
		close(fd);
	snap_buf_free(&hello);
	return rc;
}
