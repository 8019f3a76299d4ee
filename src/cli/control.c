/* `wafer run`'s VM controller: maps the API's configuration onto a vm_config,
 * builds the VM on InstanceStart, serves pause/resume/Ctrl-Alt-Del/metrics,
 * and runs the VM on the main thread under the restart policies
 * (--on-poweroff/--on-reboot/--on-crash, as in xl.cfg). */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/control.h"
#include "devices/i8042.h"
#include "devices/serial.h"
#include "state/migrate_vm.h"
#include "state/snapshot.h"
#include "jail/seccomp.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"

int run_policy_parse(const char *s, enum run_policy *out)
{
	if (!strcmp(s, "destroy"))
		*out = POLICY_DESTROY;
	else if (!strcmp(s, "restart"))
		*out = POLICY_RESTART;
	else if (!strcmp(s, "preserve"))
		*out = POLICY_PRESERVE;
	else
		return -EINVAL;
	return 0;
}

static void ctl_worker_stop(struct run_ctl *c);

int run_ctl_init(struct run_ctl *c, const struct vm_config *base, bool direct)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->start_cond, NULL);
	c->main_thread = pthread_self();
	c->base = *base;
	c->direct = direct;
	migrate_progress_init(&c->mig_prog);
	pthread_mutex_init(&c->wk_lock, NULL);
	pthread_cond_init(&c->wk_cond, NULL);

	c->start_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return c->start_efd < 0 ? -errno : 0;
}

void run_ctl_destroy(struct run_ctl *c)
{
	if (c->lock_joinable) {
		pthread_join(c->lock_thread, NULL);
		c->lock_joinable = false;
	}
	migrate_cancel(&c->mig_prog);
	ctl_worker_stop(c);
	pthread_mutex_destroy(&c->wk_lock);
	pthread_cond_destroy(&c->wk_cond);
	migrate_progress_destroy(&c->mig_prog);
	if (c->built)
		vm_destroy(&c->vm);
	c->built = false;
	if (c->snap) {
		snapshot_close(c->snap);
		free(c->snap);
		c->snap = NULL;
	}
	if (c->start_efd >= 0)
		close(c->start_efd);
	pthread_cond_destroy(&c->start_cond);
	pthread_mutex_destroy(&c->lock);
}

/* API limiter <-> device limiter. A bucket present in the API replaces the
 * device's (size 0 turns it off); an absent one is left as it is. */
static void ctl_limit_from_api(struct ratelimit_config *c, const struct api_rate_limiter *rl)
{
	if (!rl->present)
		return;
	if (rl->bandwidth.present)
		c->bytes = (struct tbucket_config){ rl->bandwidth.size, rl->bandwidth.one_time_burst,
						    rl->bandwidth.refill_time_ms };
	if (rl->ops.present)
		c->ops = (struct tbucket_config){ rl->ops.size, rl->ops.one_time_burst,
						  rl->ops.refill_time_ms };
}

static void ctl_limit_to_api(const struct ratelimit_config *c, struct api_rate_limiter *rl)
{
	*rl = (struct api_rate_limiter){ 0 };
	if (c->bytes.size)
		rl->bandwidth = (struct api_token_bucket){ true, c->bytes.size, c->bytes.one_time_burst,
							   c->bytes.refill_time_ms };
	if (c->ops.size)
		rl->ops = (struct api_token_bucket){ true, c->ops.size, c->ops.one_time_burst,
						     c->ops.refill_time_ms };
	rl->present = rl->bandwidth.present || rl->ops.present;
}

void run_ctl_describe(const struct vm_config *b, struct api_config *out)
{
	api_config_init(out);
	out->machine.vcpu_count = b->ncpus;
	out->machine.mem_size_mib = b->mem_size >> 20;
	snprintf(out->machine.cpu_template, sizeof(out->machine.cpu_template), "%s", b->cpu_template);
	/* A restored or migrated-in VM has no boot source. */
	out->boot.present = b->kernel != NULL;
	snprintf(out->boot.kernel_image_path, sizeof(out->boot.kernel_image_path), "%s",
		 b->kernel ? b->kernel : "");
	snprintf(out->boot.initrd_path, sizeof(out->boot.initrd_path), "%s", b->initrd ? b->initrd : "");
	snprintf(out->boot.boot_args, sizeof(out->boot.boot_args), "%s", b->cmdline ? b->cmdline : "");
	out->boot.has_boot_args = b->cmdline != NULL;
	for (unsigned i = 0; i < b->ndisks; i++, out->ndrives++) {
		struct api_drive *d = &out->drives[i];
		snprintf(d->drive_id, sizeof(d->drive_id), "%s", b->disks[i].id);
		snprintf(d->path_on_host, sizeof(d->path_on_host), "%s", b->disks[i].path);
		d->is_read_only = b->disks[i].read_only;
		ctl_limit_to_api(&b->disks[i].limit, &d->rate_limiter);
	}
	for (unsigned i = 0; i < b->nnets; i++, out->nnets++) {
		struct api_net *n = &out->nets[i];
		snprintf(n->iface_id, sizeof(n->iface_id), "%s", b->nets[i].id);
		snprintf(n->host_dev_name, sizeof(n->host_dev_name), "%s", b->nets[i].ifname);
		n->has_guest_mac = b->nets[i].has_mac;
		memcpy(n->guest_mac, b->nets[i].mac, 6);
		ctl_limit_to_api(&b->nets[i].rx_limit, &n->rx_rate_limiter);
		ctl_limit_to_api(&b->nets[i].tx_limit, &n->tx_rate_limiter);
	}
	out->entropy.present = b->rng;
}

/* vcfg from the API's config, on top of the flags (name, KVM path, ...).
 * Strings point into c->acfg, which lives as long as the VM. */
static void run_ctl_map(struct run_ctl *c)
{
	const struct api_config *a = &c->acfg;
	struct vm_config *v = &c->vcfg;

	*v = c->base;
	v->kernel = a->boot.kernel_image_path;
	v->initrd = a->boot.initrd_path[0] ? a->boot.initrd_path : NULL;
	if (a->boot.has_boot_args)
		v->cmdline = a->boot.boot_args;
	v->ncpus = a->machine.vcpu_count;
	v->mem_size = a->machine.mem_size_mib << 20;
	if (a->machine.cpu_template[0])
		v->cpu_template = a->machine.cpu_template;
	v->ndisks = 0;
	for (unsigned i = 0; i < a->ndrives; i++, v->ndisks++) {
		v->disks[i] = (struct blk_config){ .path = a->drives[i].path_on_host,
						   .read_only = a->drives[i].is_read_only,
						   .id = a->drives[i].drive_id };
		ctl_limit_from_api(&v->disks[i].limit, &a->drives[i].rate_limiter);
	}
	v->nnets = 0;
	for (unsigned i = 0; i < a->nnets; i++, v->nnets++) {
		struct net_config *n = &v->nets[i];
		*n = (struct net_config){ .id = a->nets[i].iface_id, .vm_name = c->base.name,
					  .ifname = a->nets[i].host_dev_name,
					  .has_mac = a->nets[i].has_guest_mac };
		memcpy(n->mac, a->nets[i].guest_mac, 6);
		ctl_limit_from_api(&n->rx_limit, &a->nets[i].rx_rate_limiter);
		ctl_limit_from_api(&n->tx_limit, &a->nets[i].tx_rate_limiter);
	}
	v->rng = c->base.rng || a->entropy.present;
}

static void run_ctl_apply_logger(const struct api_logger *l)
{
	static const enum log_level map[] = {
		[API_LOG_OFF] = LOG_ERROR, [API_LOG_ERROR] = LOG_ERROR, [API_LOG_WARNING] = LOG_WARN,
		[API_LOG_INFO] = LOG_INFO, [API_LOG_DEBUG] = LOG_DEBUG, [API_LOG_TRACE] = LOG_DEBUG,
	};
	if (!l->present)
		return;
	log_threshold = map[l->level];
	if (l->log_path[0]) {
		FILE *f = fopen(l->log_path, "a");
		if (f) {
			dup2(fileno(f), STDERR_FILENO);
			fclose(f);
		} else {
			log_warn("logger: %s: %s; logging stays on stderr", l->log_path, strerror(errno));
		}
	}
}

/* vm_create from c->vcfg; on failure nothing is left behind and err gets
 * the reason vm_create logged (or strerror). Caller holds c->lock. */
static int ctl_vm_create(struct run_ctl *c, char *err, size_t errlen)
{
	log_clear_last_error();
	int rc = vm_create(&c->vm, &c->vcfg);
	if (rc) {
		snprintf(err, errlen, "%s", log_last_error()[0] ? log_last_error() : strerror(-rc));
		vm_destroy(&c->vm);
	}
	return rc;
}

/* May start() or a snapshot load build a VM now? Caller holds c->lock. */
static int ctl_may_build(struct run_ctl *c, char *err, size_t errlen)
{
	if (!c->built && !c->incoming && !c->gone)
		return 0;
	snprintf(err, errlen, c->gone ? "the VM migrated away; this wafer is exiting" :
		 c->incoming ? "this wafer waits for an incoming migration" :
		 "the VM is already built");
	return -EALREADY;
}

/* The VM config of a snapshot or an incoming migration, with this
 * process's name, KVM path and CPU pinning. */
static void ctl_use_saved_config(struct run_ctl *c, const struct snap_vmconfig *vc)
{
	c->vcfg = vc->cfg;
	c->vcfg.name = c->base.name;
	c->vcfg.kvm_path = c->base.kvm_path;
	memcpy(c->vcfg.affinity, c->base.affinity, sizeof(c->vcfg.affinity));
	c->vcfg.naffinity = c->base.naffinity;
}

/* Caller holds c->lock. */
static int ctl_build(struct run_ctl *c, const struct api_config *cfg, char *err, size_t errlen)
{
	int rc;

	rc = ctl_may_build(c, err, errlen);
	if (rc)
		return rc;
	c->acfg = *cfg;
	if (c->direct)
		c->vcfg = c->base;
	else
		run_ctl_map(c);
	run_ctl_apply_logger(&cfg->logger);
	if (cfg->metrics.present)
		snprintf(c->metrics_path, sizeof(c->metrics_path), "%s", cfg->metrics.metrics_path);
	rc = ctl_vm_create(c, err, errlen);
	if (rc)
		return rc;
	c->built = true;
	clock_gettime(CLOCK_MONOTONIC, &c->started_at);
	uint64_t one = 1;
	if (write(c->start_efd, &one, sizeof(one)) < 0)
		rc = -errno;
	return rc;
}

static int ctl_build_job(struct run_ctl *c, const void *arg, char *err, size_t errlen)
{
	return ctl_build(c, arg, err, errlen);
}

/* Run fn (a VM build) on the main thread, whose seccomp filter allows it,
 * and wait for its result; on the main thread itself, or when fn can only
 * refuse, run it here. Caller holds c->lock. */
static int ctl_on_main(struct run_ctl *c, ctl_job_fn fn, const void *arg, char *err,
		       size_t errlen)
{
	uint64_t one = 1;
	int rc;

	if (pthread_equal(pthread_self(), c->main_thread) || c->built || c->incoming || c->gone)
		return fn(c, arg, err, errlen);
	if (c->main_gone) {
		snprintf(err, errlen, "wafer is stopping");
		return -ESHUTDOWN;
	}
	c->start_fn = fn;
	c->start_arg = arg;
	c->start_pending = true;
	if (write(c->start_efd, &one, sizeof(one)) < 0) {
		rc = -errno;
		c->start_pending = false;
		snprintf(err, errlen, "eventfd: %s", strerror(-rc));
		return rc;
	}
	while (c->start_pending)
		pthread_cond_wait(&c->start_cond, &c->lock);
	snprintf(err, errlen, "%s", c->start_err);
	return c->start_rc;
}

static int ctl_start(void *opaque, const struct api_config *cfg, char *err, size_t errlen)
{
	struct run_ctl *c = opaque;
	pthread_mutex_lock(&c->lock);
	int rc = ctl_on_main(c, ctl_build_job, cfg, err, errlen);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static bool ctl_migrating(struct run_ctl *c)
{
	struct migrate_status st;
	migrate_progress_read(&c->mig_prog, &st);
	return st.state == MIGRATE_SETUP || st.state == MIGRATE_ACTIVE ||
	       st.state == MIGRATE_SWITCHOVER;
}

static int ctl_pause(void *opaque, char *err, size_t errlen)
{
	struct run_ctl *c = opaque;
	if (ctl_migrating(c)) {
		snprintf(err, errlen, "a live migration is in progress");
		return -EBUSY;
	}
	pthread_mutex_lock(&c->lock);
	int rc = c->built ? vm_pause(&c->vm) : -ESRCH;
	pthread_mutex_unlock(&c->lock);
	if (rc == -EALREADY)
		snprintf(err, errlen, "the VM is already paused");
	else if (rc)
		snprintf(err, errlen, "the VM is not running");
	return rc == -EALREADY ? 0 : rc;  /* Firecracker: pausing a paused VM is fine */
}

static int ctl_resume(void *opaque, char *err, size_t errlen)
{
	struct run_ctl *c = opaque;
	if (ctl_migrating(c)) {
		snprintf(err, errlen, "a live migration is in progress");
		return -EBUSY;
	}
	pthread_mutex_lock(&c->lock);
	int rc = c->built ? vm_resume(&c->vm) : -ESRCH;
	pthread_mutex_unlock(&c->lock);
	if (rc && rc != -EALREADY)
		snprintf(err, errlen, "the VM is not running");
	return rc == -EALREADY ? 0 : rc;
}

static int ctl_ctrl_alt_del(void *opaque, char *err, size_t errlen)
{
	struct run_ctl *c = opaque;
	pthread_mutex_lock(&c->lock);
	int rc = c->built ? i8042_send_ctrl_alt_del(&c->vm) : -ESRCH;
	pthread_mutex_unlock(&c->lock);
	if (rc == -ENOSPC)
		snprintf(err, errlen, "the guest has not read the previous keystrokes yet");
	return rc;
}

static enum api_vm_state ctl_get_state(void *opaque)
{
	struct run_ctl *c = opaque;
	pthread_mutex_lock(&c->lock);
	enum api_vm_state s = !c->built ? API_STATE_NOT_STARTED :
			      vm_is_paused(&c->vm) ? API_STATE_PAUSED : API_STATE_RUNNING;
	pthread_mutex_unlock(&c->lock);
	return s;
}

static void ctl_add_counter(struct api_metrics *m, const char *dev, const char *kind,
			    const char *name, uint64_t v)
{
	if (m->ndevices >= API_MAX_DEVICE_COUNTERS)
		return;
	struct api_device_counter *d = &m->devices[m->ndevices++];
	snprintf(d->device, sizeof(d->device), "%s", dev);
	snprintf(d->kind, sizeof(d->kind), "%s", kind);
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->value = v;
}

static unsigned ctl_exit_index(unsigned kvm_reason)
{
	switch (kvm_reason) {
	case KVM_EXIT_IO: return API_EXIT_IO;
	case KVM_EXIT_MMIO: return API_EXIT_MMIO;
	case KVM_EXIT_HLT: return API_EXIT_HLT;
	case KVM_EXIT_SHUTDOWN: return API_EXIT_SHUTDOWN;
	case KVM_EXIT_SYSTEM_EVENT: return API_EXIT_SYSTEM_EVENT;
	case KVM_EXIT_INTR: return API_EXIT_INTR;
	case KVM_EXIT_IRQ_WINDOW_OPEN: return API_EXIT_IRQ_WINDOW;
	case KVM_EXIT_FAIL_ENTRY: return API_EXIT_FAIL_ENTRY;
	case KVM_EXIT_INTERNAL_ERROR: return API_EXIT_INTERNAL_ERROR;
	default: return API_EXIT_OTHER;
	}
}

/* Caller holds c->lock. */
static void ctl_collect(struct run_ctl *c, struct api_metrics *m)
{
	struct vm *vm = &c->vm;
	struct timespec now;

	if (!c->built)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	m->uptime_ms = (uint64_t)(now.tv_sec - c->started_at.tv_sec) * 1000 +
		       (uint64_t)((now.tv_nsec - c->started_at.tv_nsec) / 1000000);
	m->nvcpus = vm->ncpus < m->vcpu_cap ? vm->ncpus : m->vcpu_cap;
	for (unsigned i = 0; vm->vcpus && i < m->nvcpus; i++) {
		memset(m->vcpu_exits[i], 0, sizeof(m->vcpu_exits[i]));
		for (unsigned r = 0; r < VCPU_EXIT_REASONS; r++)
			m->vcpu_exits[i][ctl_exit_index(r)] += vm->vcpus[i].exits[r];
	}
	if (vm->console) {
		ctl_add_counter(m, "serial0", "serial", "tx_bytes", vm->console->tx_bytes);
		ctl_add_counter(m, "serial0", "serial", "rx_bytes", vm->console->rx_bytes);
		ctl_add_counter(m, "serial0", "serial", "rx_dropped", vm->console->rx_dropped);
	}
	for (unsigned i = 0; i < vm->nvirtio; i++) {
		struct virtio_dev *d = vm->virtio[i];
		const char *kind = d->ops->device_id == 2 ? "block" : d->ops->device_id == 1 ? "net" : "rng";
		char dev[API_ID_MAX + 1];
		snprintf(dev, sizeof(dev), "%s%u", kind, i);
		if (d->ops->device_id == 2 && i < c->vcfg.ndisks)
			snprintf(dev, sizeof(dev), "%s", c->vcfg.disks[i].id);
		else if (d->ops->device_id == 1 && i >= c->vcfg.ndisks && i - c->vcfg.ndisks < c->vcfg.nnets)
			snprintf(dev, sizeof(dev), "%s", c->vcfg.nets[i - c->vcfg.ndisks].id);
		ctl_add_counter(m, dev, kind, "ops", d->stat_ops);
		ctl_add_counter(m, dev, kind, "bytes_read", d->stat_bytes_in);
		ctl_add_counter(m, dev, kind, "bytes_written", d->stat_bytes_out);
		ctl_add_counter(m, dev, kind, "errors", d->stat_errors);
		ctl_add_counter(m, dev, kind, "throttled", d->stat_throttled);
	}
}

static int ctl_get_metrics(void *opaque, struct api_metrics *m)
{
	struct run_ctl *c = opaque;
	pthread_mutex_lock(&c->lock);
	ctl_collect(c, m);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static int ctl_set_metrics(void *opaque, const struct api_metrics_config *mc, char *err, size_t errlen)
{
	struct run_ctl *c = opaque;
	(void)err;
	(void)errlen;
	pthread_mutex_lock(&c->lock);
	snprintf(c->metrics_path, sizeof(c->metrics_path), "%s", mc->metrics_path);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static int ctl_set_logger(void *opaque, const struct api_logger *l, char *err, size_t errlen)
{
	(void)opaque;
	(void)err;
	(void)errlen;
	run_ctl_apply_logger(l);
	return 0;
}

/* FlushMetrics: one JSON object per line appended to the metrics file (or
 * FIFO), like Firecracker's metrics system; the shape is wafer's own. */
static int ctl_flush_metrics(void *opaque, char *err, size_t errlen)
{
	struct run_ctl *c = opaque;
	struct api_metrics *m = calloc(1, sizeof(*m));
	int rc = 0;

	if (!m)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	m->vcpu_cap = c->built ? c->vm.ncpus : 0;
	m->vcpu_exits = m->vcpu_cap ? calloc(m->vcpu_cap, sizeof(*m->vcpu_exits)) : NULL;
	ctl_collect(c, m);
	char path[API_PATH_MAX];
	snprintf(path, sizeof(path), "%s", c->metrics_path);
	pthread_mutex_unlock(&c->lock);

	json_object *o = json_object_new_object(), *vcpus = json_object_new_array(),
		    *devs = json_object_new_object();
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	json_object_object_add(o, "utc_timestamp_ms",
			       json_object_new_int64((int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000));
	json_object_object_add(o, "uptime_ms", json_object_new_int64((int64_t)m->uptime_ms));
	for (unsigned i = 0; i < m->nvcpus; i++) {
		json_object *v = json_object_new_object();
		static const char *const names[API_EXIT__COUNT] = {
			"io", "mmio", "hlt", "shutdown", "system_event", "intr", "irq_window",
			"fail_entry", "internal_error", "other" };
		for (unsigned r = 0; r < API_EXIT__COUNT; r++)
			json_object_object_add(v, names[r], json_object_new_int64((int64_t)m->vcpu_exits[i][r]));
		json_object_array_add(vcpus, v);
	}
	json_object_object_add(o, "vcpu_exits", vcpus);
	for (unsigned i = 0; i < m->ndevices; i++) {
		json_object *d;
		if (!json_object_object_get_ex(devs, m->devices[i].device, &d)) {
			d = json_object_new_object();
			json_object_object_add(devs, m->devices[i].device, d);
		}
		json_object_object_add(d, m->devices[i].name, json_object_new_int64((int64_t)m->devices[i].value));
	}
	json_object_object_add(o, "devices", devs);
	FILE *f = fopen(path, "a");
	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	} else {
		fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		if (fclose(f))
			rc = -errno;
	}
	json_object_put(o);
	free(m->vcpu_exits);
	free(m);
	return rc;
}

static int ctl_console_check(void *opaque, char *err, size_t errlen)
{
	struct run_ctl *c = opaque;
	pthread_mutex_lock(&c->lock);
	int rc = !c->built ? -ESRCH : console_attached() ? -EBUSY : 0;
	pthread_mutex_unlock(&c->lock);
	if (rc == -EBUSY)
		snprintf(err, errlen, "the console is already attached to another client");
	else if (rc)
		snprintf(err, errlen, "the VM is not running");
	return rc;
}

static int ctl_console_attach(void *opaque, int fd, void (*done)(void *), void *arg)
{
	struct run_ctl *c = opaque;
	pthread_mutex_lock(&c->lock);
	int rc = c->built ? console_attach(&c->vm, fd, done, arg) : -ESRCH;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* The running device behind a drive / interface id (vm.c adds the disks,
 * then the nets, in config order). Caller holds c->lock. */
static struct virtio_dev *ctl_find_dev(struct run_ctl *c, bool net, const char *id,
				       unsigned *index)
{
	unsigned n = net ? c->vcfg.nnets : c->vcfg.ndisks, base = net ? c->vcfg.ndisks : 0;

	if (!c->built)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		const char *have = net ? c->vcfg.nets[i].id : c->vcfg.disks[i].id;
		struct virtio_dev *d = base + i < c->vm.nvirtio ? c->vm.virtio[base + i] : NULL;
		if (have && !strcmp(have, id) && d && d->ops->device_id == (net ? 1 : 2)) {
			*index = i;
			return d;
		}
	}
	return NULL;
}

static int ctl_update_drive_limiter(void *opaque, const char *id, const struct api_rate_limiter *rl,
				    char *err, size_t errlen)
{
	struct run_ctl *c = opaque;
	struct virtio_dev *d;
	unsigned i;
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	d = ctl_find_dev(c, false, id, &i);
	if (!d) {
		rc = -ENOENT;
		snprintf(err, errlen, "no running drive \"%s\"", id);
		goto out;
	}
	ctl_limit_from_api(&c->vcfg.disks[i].limit, rl);
	virtio_blk_set_rate_limit(d, &c->vcfg.disks[i].limit);
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static int ctl_update_net_limiter(void *opaque, const char *id, const struct api_rate_limiter *rx,
				  const struct api_rate_limiter *tx, char *err, size_t errlen)
{
	struct run_ctl *c = opaque;
	struct virtio_dev *d;
	unsigned i;
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	d = ctl_find_dev(c, true, id, &i);
	if (!d) {
		rc = -ENOENT;
		snprintf(err, errlen, "no running network interface \"%s\"", id);
		goto out;
	}
	ctl_limit_from_api(&c->vcfg.nets[i].rx_limit, rx);
	ctl_limit_from_api(&c->vcfg.nets[i].tx_limit, tx);
	virtio_net_set_rate_limit(d, &c->vcfg.nets[i].rx_limit, &c->vcfg.nets[i].tx_limit);
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* PATCH /machine-config on a running VM: the cgroup limits. */
static int ctl_update_resources(void *opaque, const struct api_resources *res, char *err,
				size_t errlen)
{
	struct run_ctl *c = opaque;
	struct cg_config want;
	unsigned what = 0;
	int rc = -ENOTSUP;

	pthread_mutex_lock(&c->lock);
	if (!c->cg) {
		snprintf(err, errlen, "this VM has no resource controls");
		goto out;
	}
	want = c->cg->cur;
	if (res->has_cpu_weight) {
		want.weight = res->cpu_weight;
		what |= CG_SET_WEIGHT;
	}
	if (res->has_cpu_cap) {
		want.cap_pct = res->cpu_cap;
		what |= CG_SET_CAP;
	}
	if (res->has_memory_limit) {
		want.mem_limit = res->memory_limit_mib << 20;
		what |= CG_SET_MEM;
	}
	rc = cg_update(c->cg, &want, what, err, errlen);
	if (!rc)
		log_info("resources now: CPU weight %u, CPU cap %u%%, memory limit %llu MiB (0: none)",
			 c->cg->cur.weight, c->cg->cur.cap_pct,
			 (unsigned long long)(c->cg->cur.mem_limit >> 20));
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static void ctl_describe(void *opaque, struct api_config *out)
{
	struct run_ctl *c = opaque;
	pthread_mutex_lock(&c->lock);
	run_ctl_describe(&c->vcfg, out);
	pthread_mutex_unlock(&c->lock);
}

const struct api_controller_ops run_ctl_ops = {
	.start = ctl_start,
	.pause = ctl_pause,
	.resume = ctl_resume,
	.send_ctrl_alt_del = ctl_ctrl_alt_del,
	.flush_metrics = ctl_flush_metrics,
	.get_metrics = ctl_get_metrics,
	.get_state = ctl_get_state,
	.set_logger = ctl_set_logger,
	.set_metrics = ctl_set_metrics,
	.console_check = ctl_console_check,
	.console_attach = ctl_console_attach,
	.update_drive_limiter = ctl_update_drive_limiter,
	.update_net_limiter = ctl_update_net_limiter,
	.update_resources = ctl_update_resources,
	.describe = ctl_describe,
};

/* ---- the state worker: snapshots and outgoing migrations ----
 * They read and write files, talk to a socket and read KVM state, none of
 * which the API thread's seccomp filter allows; they run on this thread,
 * made at start-up, under the 'state' role. One job at a time. */

static void *ctl_worker(void *arg)
{
	struct run_ctl *c = arg;
	char err[256];

	pthread_setname_np(pthread_self(), "wafer-state");
	if (seccomp_install(SECCOMP_ROLE_STATE, err, sizeof(err)))
		log_error("state thread: %s", err);
	pthread_mutex_lock(&c->wk_lock);
	for (;;) {
		while (!c->wk_fn && !c->wk_stop)
			pthread_cond_wait(&c->wk_cond, &c->wk_lock);
		if (c->wk_stop)
			break;
		ctl_job_fn fn = c->wk_fn;
		const void *job = c->wk_arg;
		pthread_mutex_unlock(&c->wk_lock);
		err[0] = '\0';
		int rc = fn(c, job, err, sizeof(err));
		pthread_mutex_lock(&c->wk_lock);
		c->wk_rc = rc;
		snprintf(c->wk_err, sizeof(c->wk_err), "%s", err);
		c->wk_fn = NULL;
		pthread_cond_broadcast(&c->wk_cond);
	}
	pthread_mutex_unlock(&c->wk_lock);
	return NULL;
}

/* Hand fn to the state thread; wait: until it finished (its result), else
 * return once it took the job. -EBUSY while another job runs. */
static int ctl_worker_run(struct run_ctl *c, ctl_job_fn fn, const void *arg, bool wait,
			  char *err, size_t errlen)
{
	int rc = 0;

	pthread_mutex_lock(&c->wk_lock);
	if (!c->wk_running) {
		rc = -ENOSYS;
		snprintf(err, errlen, "the state thread is not running");
	} else if (c->wk_fn) {
		rc = -EBUSY;
		snprintf(err, errlen, "a snapshot or migration is in progress");
	} else {
		c->wk_fn = fn;
		c->wk_arg = arg;
		pthread_cond_broadcast(&c->wk_cond);
		while (wait && c->wk_fn)
			pthread_cond_wait(&c->wk_cond, &c->wk_lock);
		if (wait) {
			rc = c->wk_rc;
			snprintf(err, errlen, "%s", c->wk_err);
		}
	}
	pthread_mutex_unlock(&c->wk_lock);
	return rc;
}

static void ctl_worker_wait_idle(struct run_ctl *c)
{
	pthread_mutex_lock(&c->wk_lock);
	while (c->wk_fn)
		pthread_cond_wait(&c->wk_cond, &c->wk_lock);
	pthread_mutex_unlock(&c->wk_lock);
}

static void ctl_worker_stop(struct run_ctl *c)
{
	if (!c->wk_running)
		return;
	pthread_mutex_lock(&c->wk_lock);
	c->wk_stop = true;
	pthread_cond_broadcast(&c->wk_cond);
	pthread_mutex_unlock(&c->wk_lock);
	pthread_join(c->wk_thread, NULL);
	c->wk_running = false;
}

static int ctl_snapshot_create_job(struct run_ctl *c, const void *arg, char *err,
				   size_t errlen)
{
	const struct api_snapshot_create *p = arg;
	struct timespec t0, t1;
	int rc;

	pthread_mutex_lock(&c->lock);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = c->built ? snapshot_create(&c->vm, p->snapshot_path, p->mem_file_path, err, errlen)
		      : -ESRCH;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_mutex_unlock(&c->lock);
	if (!rc)
		log_info("snapshot written to %s and %s in %.1f ms", p->snapshot_path,
			 p->mem_file_path, (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
			 (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	return rc;
}

static int ctl_snapshot_create(void *opaque, const struct api_snapshot_create *p, char *err,
			       size_t errlen)
{
	return ctl_worker_run(opaque, ctl_snapshot_create_job, p, true, err, errlen);
}

/* Build the VM from a snapshot instead of a boot image (main thread, lock
 * held): the saved machine config with this process's name, KVM path and
 * CPU pinning. */
static int ctl_load_job(struct run_ctl *c, const void *arg, char *err, size_t errlen)
{
	const struct api_snapshot_load *p = arg;
	struct snapshot *s = NULL;
	struct timespec t0;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = ctl_may_build(c, err, errlen);
	if (rc)
		goto out;
	s = calloc(1, sizeof(*s));
	if (!s) {
		rc = -ENOMEM;
		goto out;
	}
	rc = snapshot_open(s, p->snapshot_path, p->mem_path, p->force, p->verify, err, errlen);
	if (rc)
		goto out;
	ctl_use_saved_config(c, &s->vc);
	rc = ctl_vm_create(c, err, errlen);
	if (rc)
		goto out;
	rc = snapshot_load_machine_state(&c->vm, &s->r, err, errlen);
	if (rc) {
		vm_destroy(&c->vm);
		goto out;
	}
	/* The vCPU threads park before their first KVM_RUN until resumed. */
	c->vm.pause_requested = !p->resume_vm;
	c->built = true;
	c->snap = s;
	s = NULL;
	clock_gettime(CLOCK_MONOTONIC, &c->started_at);
	log_info("restored from %s in %.2f ms (%s)", p->snapshot_path,
		 (double)(c->started_at.tv_sec - t0.tv_sec) * 1e3 +
		 (double)(c->started_at.tv_nsec - t0.tv_nsec) / 1e6,
		 p->resume_vm ? "running" : "paused");
	uint64_t one = 1;
	if (write(c->start_efd, &one, sizeof(one)) < 0)
		rc = -errno;
out:
	if (s) {
		snapshot_close(s);
		free(s);
	}
	return rc;
}

static int ctl_snapshot_load(void *opaque, const struct api_snapshot_load *p, char *err,
			     size_t errlen)
{
	struct run_ctl *c = opaque;
	pthread_mutex_lock(&c->lock);
	int rc = ctl_on_main(c, ctl_load_job, p, err, errlen);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

const struct api_snapshot_ops run_ctl_snapshot_ops = {
	.create = ctl_snapshot_create,
	.load = ctl_snapshot_load,
};

static int ctl_migrate_job(struct run_ctl *c, const void *arg, char *err, size_t errlen)
{
	int rc = vm_migrate_out(&c->vm, c->mig_url, arg, &c->mig_prog, err, errlen);
	if (rc)
		log_error("migration to %s failed, the VM runs on here: %s", c->mig_url, err);
	else
		log_info("migration to %s complete", c->mig_url);
	return rc;
}

static int ctl_migrate_start(void *opaque, const struct api_migrate_params *p, char *err,
			     size_t errlen)
{
	struct run_ctl *c = opaque;
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	if (!c->built) {
		rc = -ESRCH;
		snprintf(err, errlen, "the VM is not running");
		goto out;
	}
	if (ctl_migrating(c)) {
		rc = -EBUSY;
		snprintf(err, errlen, "a migration to %s is already in progress", c->mig_url);
		goto out;
	}
	c->mig_params = (struct migrate_params){ .downtime_max_ns = p->downtime_ms * 1000000ull,
					.timeout_ms = (unsigned)(p->timeout_s * 1000),
					.auto_converge = p->auto_converge,
					.max_bandwidth = p->max_bandwidth };
	snprintf(c->mig_url, sizeof(c->mig_url), "%s", p->url);
	migrate_progress_destroy(&c->mig_prog);
	migrate_progress_init(&c->mig_prog);
	/* Seen as in progress from the moment the request is answered. */
	pthread_mutex_lock(&c->mig_prog.lock);
	c->mig_prog.st.state = MIGRATE_SETUP;
	pthread_mutex_unlock(&c->mig_prog.lock);
	atomic_store(&c->mig_final_seen, false);
	rc = ctl_worker_run(c, ctl_migrate_job, &c->mig_params, false, err, errlen);
	if (rc) {
		pthread_mutex_lock(&c->mig_prog.lock);
		c->mig_prog.st.state = MIGRATE_NONE;
		pthread_mutex_unlock(&c->mig_prog.lock);
		goto out;
	}
	log_info("migrating to %s", p->url);
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static int ctl_migrate_status(void *opaque, struct api_migrate_status *out)
{
	struct run_ctl *c = opaque;
	struct migrate_status st;

	migrate_progress_read(&c->mig_prog, &st);
	out->state = migrate_state_name(st.state);
	snprintf(out->url, sizeof(out->url), "%s", c->mig_url);
	out->round = st.round;
	out->throttle_pct = st.throttle_pct;
	out->bytes_transferred = st.bytes_transferred;
	out->bytes_remaining = st.bytes_remaining;
	out->dirty_rate = st.dirty_rate;
	out->bandwidth = st.bandwidth;
	out->expected_downtime_ms = (double)st.expected_downtime_ns / 1e6;
	out->downtime_ms = (double)st.downtime_ns / 1e6;
	out->total_ms = (double)st.total_ns / 1e6;
	snprintf(out->error, sizeof(out->error), "%s", st.error);
	if (st.state == MIGRATE_COMPLETED)
		atomic_store(&c->mig_final_seen, true);
	return 0;
}

static int ctl_migrate_cancel(void *opaque, char *err, size_t errlen)
{
	struct run_ctl *c = opaque;
	if (!ctl_migrating(c)) {
		snprintf(err, errlen, "no migration in progress");
		return -ESRCH;
	}
	migrate_cancel(&c->mig_prog);
	return 0;
}

const struct api_migrate_ops run_ctl_migrate_ops = {
	.start = ctl_migrate_start,
	.status = ctl_migrate_status,
	.cancel = ctl_migrate_cancel,
};

/* ---- --incoming: the destination side ---- */

static int ctl_in_prepare(void *opaque, const void *hello, size_t len, uint64_t mem_size,
			  struct guest_mem **mem, char *err, size_t errlen)
{
	struct run_ctl *c = opaque;
	struct snapshot *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	s->vc.cfg.restore_mem_fd = -1;
	rc = vm_migrate_parse_hello(hello, len, c->incoming_template, &s->vc, err, errlen);
	if (rc)
		goto fail;
	if (mem_size != s->vc.cfg.mem_size) {
		rc = -EINVAL;
		snprintf(err, errlen, "memory size %llu does not match the config's %llu",
			 (unsigned long long)mem_size, (unsigned long long)s->vc.cfg.mem_size);
		goto fail;
	}
	ctl_use_saved_config(c, &s->vc);
	/* Shared disks: on the same host the source holds their locks until it
	 * hands over; they are taken once it has. */
	for (unsigned i = 0; i < c->vcfg.ndisks; i++)
		c->vcfg.disks[i].defer_lock = true;
	rc = ctl_vm_create(c, err, errlen);
	if (rc)
		goto fail;
	c->vm.pause_requested = 1;
	c->snap = s;
	*mem = &c->vm.mem;
	return 0;
fail:
	snapshot_config_free(&s->vc);
	free(s);
	return rc;
}

static int ctl_in_load(void *opaque, const struct snap_reader *r, char *err, size_t errlen)
{
	struct run_ctl *c = opaque;
	return snapshot_load_machine_state(&c->vm, r, err, errlen);
}

static void *ctl_take_disk_locks(void *arg)
{
	struct run_ctl *c = arg;
	char err[256];

	if (seccomp_install(SECCOMP_ROLE_STATE, err, sizeof(err)))
		log_warn("disk lock thread: %s", err);
	for (unsigned i = 0; i < c->vm.nvirtio; i++) {
		struct virtio_dev *d = c->vm.virtio[i];
		if (d->ops->device_id == 2 && virtio_blk_lock(d, 10000))
			log_warn("migration: %s %s: the source did not let go of the disk lock "
				 "within 10 s; running without it", d->ops->name,
				 i < c->vcfg.ndisks ? c->vcfg.disks[i].path : "");
	}
	return NULL;
}

static const struct migrate_dest_ops ctl_dest_ops = {
	.prepare = ctl_in_prepare,
	.load_state = ctl_in_load,
};

/* A terminating signal is pending (they are blocked: the console and the
 * controller take them through signalfds later). */
static bool ctl_signalled(void)
{
	sigset_t pend;
	sigpending(&pend);
	return sigismember(&pend, SIGINT) || sigismember(&pend, SIGTERM) ||
	       sigismember(&pend, SIGHUP);
}

int run_ctl_incoming(struct run_ctl *c, const char *url, char *err, size_t errlen)
{
	struct migrate_status st;
	char where[API_PATH_MAX];
	int lfd = -1, fd = -1, rc;

	rc = migrate_listen(url, &lfd, err, errlen);
	if (rc)
		return rc;
	if (migrate_listen_url(lfd, where, sizeof(where)) == 0)
		log_info("waiting for an incoming migration on %s", where);
	for (;;) {
		rc = migrate_accept(lfd, 500, &fd, err, errlen);
		if (rc == 0)
			break;
		if (rc != -ETIMEDOUT)
			goto out;
		if (ctl_signalled()) {
			rc = -EINTR;
			snprintf(err, errlen, "stopped by a signal while waiting");
			goto out;
		}
	}
	close(lfd);
	lfd = -1;
	rc = migrate_receive(fd, &ctl_dest_ops, c, NULL, &c->mig_prog, err, errlen);
	migrate_progress_read(&c->mig_prog, &st);
	if (rc && rc != -ENOTCONN) {
		if (c->snap) {
			vm_destroy(&c->vm);
			snapshot_close(c->snap);
			free(c->snap);
			c->snap = NULL;
		}
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	c->built = true;
	clock_gettime(CLOCK_MONOTONIC, &c->started_at);
	if (rc == -ENOTCONN) {
		log_warn("migration: the VM arrived but the source never confirmed the hand-over; "
			 "it stays paused (wafer resume NAME once the source is gone)");
	} else {
		/* The source stops right after the go-ahead (its I/O thread is
		 * parked already) and then lets go of its disk locks: take them
		 * in the background, so the guest does not wait for that. */
		c->lock_joinable = pthread_create(&c->lock_thread, NULL, ctl_take_disk_locks, c) == 0;
		c->vm.pause_requested = 0;
		log_info("migration received: %llu MiB in %llu pages; the VM runs here now",
			 (unsigned long long)(st.bytes_transferred >> 20),
			 (unsigned long long)st.pages_transferred);
	}
	uint64_t one = 1;
	if (write(c->start_efd, &one, sizeof(one)) < 0)
		rc = -errno;
	else
		rc = 0;
	pthread_mutex_unlock(&c->lock);
out:
	if (fd >= 0)
		close(fd);
	if (lfd >= 0)
		close(lfd);
	return rc;
}

/* Main thread: build what start() posted from the API thread. */
static bool run_ctl_serve_start(struct run_ctl *c)
{
	uint64_t v;

	(void)!read(c->start_efd, &v, sizeof(v));
	pthread_mutex_lock(&c->lock);
	if (c->start_pending) {
		c->start_err[0] = '\0';
		c->start_rc = c->start_fn(c, c->start_arg, c->start_err, sizeof(c->start_err));
		c->start_pending = false;
		pthread_cond_broadcast(&c->start_cond);
	}
	bool built = c->built;
	pthread_mutex_unlock(&c->lock);
	return built;
}

/* No more builds on the main thread: fail a start() that waits for one. */
static void run_ctl_stop_serving(struct run_ctl *c)
{
	pthread_mutex_lock(&c->lock);
	c->main_gone = true;
	if (c->start_pending) {
		c->start_rc = -ESHUTDOWN;
		snprintf(c->start_err, sizeof(c->start_err), "wafer is stopping");
		c->start_pending = false;
		pthread_cond_broadcast(&c->start_cond);
	}
	pthread_mutex_unlock(&c->lock);
}

/* Block until a VM is built (by the flags, or here for start()) or a
 * terminating signal arrives. */
static int run_ctl_wait_start(struct run_ctl *c)
{
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	int rc = 0;

	for (;;) {
		struct pollfd p[2] = { { .fd = c->start_efd, .events = POLLIN },
				       { .fd = sfd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (p[0].revents && run_ctl_serve_start(c))
			break;
		if (p[1].revents) {
			log_info("stopped by a signal before the VM was started");
			rc = -EINTR;
			break;
		}
	}
	if (sfd >= 0)
		close(sfd);
	run_ctl_stop_serving(c);
	return rc;
}

int run_ctl_main(struct run_ctl *c)
{
	/* The state thread is made here, on the main thread before its filter,
	 * so that it carries only its own (filters stack on the threads a
	 * filtered thread makes). */
	c->wk_running = pthread_create(&c->wk_thread, NULL, ctl_worker, c) == 0;
	struct timespec window = { 0, 0 };
	unsigned restarts = 0;
	int status;

	if (run_ctl_wait_start(c))
		return WAFER_EXIT_USER;
	for (;;) {
		status = vm_run(&c->vm);
		enum vm_stop_reason why = atomic_load(&c->vm.stop_reason);
		enum run_policy p = why == VM_STOP_POWEROFF || why == VM_STOP_EXIT_PORT ? c->on_poweroff :
				    why == VM_STOP_RESET ? c->on_reboot :
				    why == VM_STOP_CRASH ? c->on_crash : POLICY_DESTROY;
		if (why == VM_STOP_MIGRATED) {
			/* The destination runs the guest: let go of the disks
			 * (their locks) and RAM now, then let `wafer migrate`
			 * read the final status before the socket goes away
			 * (at most 3 s). */
			ctl_worker_wait_idle(c);
			pthread_mutex_lock(&c->lock);
			vm_destroy(&c->vm);
			c->built = false;
			c->gone = true;
			pthread_mutex_unlock(&c->lock);
			for (int i = 0; i < 300 && !atomic_load(&c->mig_final_seen); i++)
				usleep(10000);
			return status;
		}
		if (p == POLICY_DESTROY)
			return status;
		if (p == POLICY_PRESERVE) {
			/* Keep the stopped VM (memory, devices) for inspection
			 * until a signal; the API reports it as paused. */
			log_warn("VM stopped (%s); preserved until wafer is signalled", c->vm.stop_detail);
			pthread_mutex_lock(&c->lock);
			c->vm.pause_requested = 1;
			pthread_mutex_unlock(&c->lock);
			sigset_t sigs;
			int sig;
			sigemptyset(&sigs);
			sigaddset(&sigs, SIGINT);
			sigaddset(&sigs, SIGTERM);
			sigaddset(&sigs, SIGHUP);
			sigwait(&sigs, &sig);
			return status;
		}
		/* restart: at most 5 restarts within 10 s, then give up */
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - window.tv_sec > 10) {
			window = now;
			restarts = 0;
		}
		if (++restarts > 5) {
			log_error("guest restarted more than 5 times in 10 s; giving up");
			return status;
		}
		if (c->snap) {
			log_error("the VM stopped (%s); a VM restored from a snapshot has no boot "
				  "image to restart from", c->vm.stop_detail);
			return status;
		}
		log_info("restarting the VM (%s)", c->vm.stop_detail);
		pthread_mutex_lock(&c->lock);
		vm_destroy(&c->vm);
		c->built = false;
		int rc = vm_create(&c->vm, &c->vcfg);
		if (rc == 0) {
			c->built = true;
			clock_gettime(CLOCK_MONOTONIC, &c->started_at);
		}
		if (rc)
			vm_destroy(&c->vm);
		pthread_mutex_unlock(&c->lock);
		if (rc)
			return WAFER_EXIT_ERROR;
	}
}
