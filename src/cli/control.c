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

int run_ctl_init(struct run_ctl *c, const struct vm_config *base, bool direct)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->start_cond, NULL);
	c->main_thread = pthread_self();
	c->base = *base;
	c->direct = direct;
	c->start_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return c->start_efd < 0 ? -errno : 0;
}

void run_ctl_destroy(struct run_ctl *c)
{
	if (c->built)
		vm_destroy(&c->vm);
	c->built = false;
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
	out->boot.present = true;
	snprintf(out->boot.kernel_image_path, sizeof(out->boot.kernel_image_path), "%s", b->kernel);
	snprintf(out->boot.initrd_path, sizeof(out->boot.initrd_path), "%s", b->initrd ? b->initrd : "");
	snprintf(out->boot.boot_args, sizeof(out->boot.boot_args), "%s", b->cmdline);
	out->boot.has_boot_args = true;
	for (unsigned i = 0; i < b->ndisks && i < API_MAX_DRIVES; i++, out->ndrives++) {
		struct api_drive *d = &out->drives[i];
		snprintf(d->drive_id, sizeof(d->drive_id), "%s", b->disks[i].id);
		snprintf(d->path_on_host, sizeof(d->path_on_host), "%s", b->disks[i].path);
		d->is_read_only = b->disks[i].read_only;
		ctl_limit_to_api(&b->disks[i].limit, &d->rate_limiter);
	}
	for (unsigned i = 0; i < b->nnets && i < API_MAX_NETS; i++, out->nnets++) {
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
	for (unsigned i = 0; i < a->ndrives && i < VM_MAX_DISKS; i++, v->ndisks++) {
		v->disks[i] = (struct blk_config){ .path = a->drives[i].path_on_host,
						   .read_only = a->drives[i].is_read_only,
						   .id = a->drives[i].drive_id };
		ctl_limit_from_api(&v->disks[i].limit, &a->drives[i].rate_limiter);
	}
	v->nnets = 0;
	for (unsigned i = 0; i < a->nnets && i < VM_MAX_NETS; i++, v->nnets++) {
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

/* Caller holds c->lock. */
static int ctl_build(struct run_ctl *c, const struct api_config *cfg, char *err, size_t errlen)
{
	int rc;

	if (c->built) {
		snprintf(err, errlen, "the VM is already built");
		return -EALREADY;
	}
	c->acfg = *cfg;
	if (c->direct)
		c->vcfg = c->base;
	else
		run_ctl_map(c);
	run_ctl_apply_logger(&cfg->logger);
	if (cfg->metrics.present)
		snprintf(c->metrics_path, sizeof(c->metrics_path), "%s", cfg->metrics.metrics_path);
	log_clear_last_error();
	rc = vm_create(&c->vm, &c->vcfg);
	if (rc) {
		snprintf(err, errlen, "%s", log_last_error()[0] ? log_last_error() : strerror(-rc));
		vm_destroy(&c->vm);
		return rc;
	}
	c->built = true;
	clock_gettime(CLOCK_MONOTONIC, &c->started_at);
	uint64_t one = 1;
	if (write(c->start_efd, &one, sizeof(one)) < 0)
		rc = -errno;
	return rc;
}

static int ctl_start(void *opaque, const struct api_config *cfg, char *err, size_t errlen)
{
	struct run_ctl *c = opaque;
	uint64_t one = 1;
	int rc;

	pthread_mutex_lock(&c->lock);
	if (pthread_equal(pthread_self(), c->main_thread) || c->built) {
		rc = ctl_build(c, cfg, err, errlen);
	} else if (c->main_gone) {
		rc = -ESHUTDOWN;
		snprintf(err, errlen, "wafer is stopping");
	} else {
		c->start_cfg = cfg;
		c->start_pending = true;
		if (write(c->start_efd, &one, sizeof(one)) < 0) {
			rc = -errno;
			c->start_pending = false;
			snprintf(err, errlen, "eventfd: %s", strerror(-rc));
			goto out;
		}
		while (c->start_pending)
			pthread_cond_wait(&c->start_cond, &c->lock);
		rc = c->start_rc;
		snprintf(err, errlen, "%s", c->start_err);
	}
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static int ctl_pause(void *opaque, char *err, size_t errlen)
{
	struct run_ctl *c = opaque;
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
};

/* Main thread: build what start() posted from the API thread. */
static bool run_ctl_serve_start(struct run_ctl *c)
{
	uint64_t v;

	(void)!read(c->start_efd, &v, sizeof(v));
	pthread_mutex_lock(&c->lock);
	if (c->start_pending) {
		c->start_err[0] = '\0';
		c->start_rc = ctl_build(c, c->start_cfg, c->start_err, sizeof(c->start_err));
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
