/* The control API's resources and state machine (Firecracker swagger paths):
 * which method/path does what, what is allowed before and after InstanceStart,
 * the pre-boot config model, and GET /metrics in Prometheus text format 0.0.4. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/json.h"

#define MSG_POST_BOOT "The requested operation is not supported after starting the microVM."
#define MSG_PRE_BOOT  "The requested operation is not supported before starting the microVM."

struct api_router {
	pthread_mutex_t lock;
	struct api_controller ctrl;
	char id[API_ID_MAX + 1];
	enum api_vm_state state;
	struct api_config cfg;
};

const char *api_state_name(enum api_vm_state s)
{
	switch (s) {
	case API_STATE_NOT_STARTED: return "Not started";
	case API_STATE_RUNNING: return "Running";
	case API_STATE_PAUSED: return "Paused";
	}
	return "Unknown";
}

/* ---- the pre-boot config model ---- */

void api_config_init(struct api_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->machine.vcpu_count = 1;
	cfg->machine.mem_size_mib = 128;
}

/* Catch a typo'd path at PUT time, as Firecracker does, rather than at start. */
static int check_host_file(const char *what, const char *path, bool block_ok, bool writable,
			   char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st)) {
		int rc = -errno;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(-rc));
		return rc;
	}
	if (!S_ISREG(st.st_mode) && !(block_ok && S_ISBLK(st.st_mode))) {
		snprintf(err, errlen, "%s %s: not a regular file%s", what, path,
			 block_ok ? " or block device" : "");
		return -EINVAL;
	}
	if (access(path, writable ? R_OK | W_OK : R_OK)) {
		int rc = -errno;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(-rc));
		return rc;
	}
	return 0;
}

int api_config_put_boot(struct api_config *cfg, const struct api_boot_source *b, char *err,
			size_t errlen)
{
	int rc = check_host_file("kernel_image_path", b->kernel_image_path, false, false,
				 err, errlen);
	if (rc)
		return rc;
	if (b->initrd_path[0] &&
	    (rc = check_host_file("initrd_path", b->initrd_path, false, false, err, errlen)))
		return rc;
	cfg->boot = *b;
	cfg->boot.present = true;
	return 0;
}

/* Each drive and interface is a PCI function; one of the bus's
 * VM_MAX_VIRTIO slots stays free for the entropy device. */
static bool api_config_pci_room(const struct api_config *cfg)
{
	return cfg->ndrives + cfg->nnets + 1 < VM_MAX_VIRTIO;
}

int api_config_put_drive(struct api_config *cfg, const struct api_drive *d, char *err,
			 size_t errlen)
{
	unsigned slot = cfg->ndrives;
	int rc;

	for (unsigned i = 0; i < cfg->ndrives; i++) {
		const struct api_drive *o = &cfg->drives[i];
		if (!strcmp(o->drive_id, d->drive_id))
			slot = i;
		else if (d->is_root_device && o->is_root_device) {
			snprintf(err, errlen, "drive %s: drive %s is already the root device",
				 d->drive_id, o->drive_id);
			return -EEXIST;
		}
	}
	if (slot == VM_MAX_DISKS) {
		snprintf(err, errlen, "drive %s: at most %d drives", d->drive_id, VM_MAX_DISKS);
		return -ENOSPC;
	}
	if (slot == cfg->ndrives && !api_config_pci_room(cfg)) {
		snprintf(err, errlen, "drive %s: drives and network interfaces share %d PCI slots",
			 d->drive_id, VM_MAX_VIRTIO - 1);
		return -ENOSPC;
	}
	rc = check_host_file("path_on_host", d->path_on_host, true, !d->is_read_only, err, errlen);
	if (rc)
		return rc;
	cfg->drives[slot] = *d;
	if (slot == cfg->ndrives)
		cfg->ndrives++;
	return 0;
}

int api_config_put_net(struct api_config *cfg, const struct api_net *n, char *err, size_t errlen)
{
	unsigned slot = cfg->nnets;

	for (unsigned i = 0; i < cfg->nnets; i++) {
		const struct api_net *o = &cfg->nets[i];
		if (!strcmp(o->iface_id, n->iface_id)) {
			slot = i;
			continue;
		}
		if (!strcmp(o->host_dev_name, n->host_dev_name)) {
			snprintf(err, errlen, "interface %s: host_dev_name %s is already used by %s",
				 n->iface_id, n->host_dev_name, o->iface_id);
			return -EEXIST;
		}
		if (n->has_guest_mac && o->has_guest_mac &&
		    !memcmp(n->guest_mac, o->guest_mac, sizeof(n->guest_mac))) {
			snprintf(err, errlen, "interface %s: guest_mac is already used by %s",
				 n->iface_id, o->iface_id);
			return -EEXIST;
		}
	}
	if (slot == VM_MAX_NETS) {
		snprintf(err, errlen, "interface %s: at most %d network interfaces", n->iface_id,
			 VM_MAX_NETS);
		return -ENOSPC;
	}
	if (slot == cfg->nnets && !api_config_pci_room(cfg)) {
		snprintf(err, errlen, "interface %s: drives and network interfaces share %d PCI slots",
			 n->iface_id, VM_MAX_VIRTIO - 1);
		return -ENOSPC;
	}
	cfg->nets[slot] = *n;
	if (slot == cfg->nnets)
		cfg->nnets++;
	return 0;
}

/* ---- responses ---- */

void api_response_release(struct api_response *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->len = 0;
}

static void reply_body(struct api_response *resp, int status, const char *type, char *body)
{
	if (!body) {
		*resp = (struct api_response){ .status = 500 };
		return;
	}
	*resp = (struct api_response){ .status = status, .content_type = type, .body = body,
				       .len = strlen(body) };
}

static void reply_json(struct api_response *resp, int status, int rc, char *body)
{
	reply_body(resp, status, "application/json", rc ? NULL : body);
}

static void reply_none(struct api_response *resp)
{
	*resp = (struct api_response){ .status = 204 };
}

__attribute__((format(printf, 3, 4)))
static void reply_fault(struct api_response *resp, int status, const char *fmt, ...)
{
	char msg[API_ERR_MAX], *body = NULL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	int rc = api_json_render_fault(msg, &body);
	reply_json(resp, status, rc, body);
}

/* ---- state ---- */

static enum api_vm_state current_state(struct api_router *r)
{
	if (r->state != API_STATE_NOT_STARTED && r->ctrl.ops->get_state)
		r->state = r->ctrl.ops->get_state(r->ctrl.opaque);
	return r->state;
}

static bool started(struct api_router *r)
{
	return current_state(r) != API_STATE_NOT_STARTED;
}

/* The controller's text, or strerror when it gave none. */
static const char *op_reason(int rc, const char *err)
{
	return err[0] ? err : strerror(rc < 0 ? -rc : rc);
}

static int start_locked(struct api_router *r, char *err, size_t errlen)
{
	int rc;

	if (started(r)) {
		snprintf(err, errlen, MSG_POST_BOOT);
		return -EALREADY;
	}
	if (!r->cfg.boot.present) {
		snprintf(err, errlen, "Cannot start the microVM without a boot source "
			 "(PUT /boot-source first).");
		return -EINVAL;
	}
	err[0] = '\0';
	rc = r->ctrl.ops->start(r->ctrl.opaque, &r->cfg, err, errlen);
	if (rc) {
		char why[API_ERR_MAX];
		snprintf(why, sizeof(why), "%s", op_reason(rc, err));
		snprintf(err, errlen, "Failed to start the microVM: %s", why);
		return rc < 0 ? rc : -EIO;
	}
	r->state = API_STATE_RUNNING;
	return 0;
}

/* ---- handlers ---- */

typedef void (*route_fn)(struct api_router *r, const char *id, const char *body, size_t len,
			 struct api_response *resp);

enum route_phase { PHASE_ANY, PHASE_PRE_BOOT, PHASE_POST_BOOT };

static void get_instance(struct api_router *r, const char *id, const char *body, size_t len,
			 struct api_response *resp)
{
	char *out;
	(void)id, (void)body, (void)len;
	int rc = api_json_render_instance(r->id, current_state(r), &out);
	reply_json(resp, 200, rc, out);
}

static void get_version(struct api_router *r, const char *id, const char *body, size_t len,
			struct api_response *resp)
{
	char *out;
	(void)r, (void)id, (void)body, (void)len;
	int rc = api_json_render_version(&out);
	reply_json(resp, 200, rc, out);
}

static void get_machine(struct api_router *r, const char *id, const char *body, size_t len,
			struct api_response *resp)
{
	char *out;
	(void)id, (void)body, (void)len;
	int rc = api_json_render_machine(&r->cfg.machine, &out);
	reply_json(resp, 200, rc, out);
}

static void put_machine_common(struct api_router *r, bool partial, const char *body, size_t len,
			       struct api_response *resp)
{
	char err[API_ERR_MAX];
	struct api_machine m;

	if (api_json_parse_machine(body, len, &r->cfg.machine, partial, &m, err, sizeof(err))) {
		reply_fault(resp, 400, "%s", err);
		return;
	}
	r->cfg.machine = m;
	reply_none(resp);
}

static void put_machine(struct api_router *r, const char *id, const char *body, size_t len,
			struct api_response *resp)
{
	(void)id;
	put_machine_common(r, false, body, len, resp);
}

/* Before InstanceStart: Firecracker's partial machine-config. After it: a
 * wafer extension changing the VM's CPU weight, cap and memory limit. */
static void patch_machine(struct api_router *r, const char *id, const char *body, size_t len,
			  struct api_response *resp)
{
	char err[API_ERR_MAX] = "";
	struct api_resources res;
	int rc;

	(void)id;
	if (!started(r)) {
		put_machine_common(r, true, body, len, resp);
		return;
	}
	if (api_json_parse_resources(body, len, &res, err, sizeof(err))) {
		reply_fault(resp, 400, "%s", err);
		return;
	}
	if (!r->ctrl.ops->update_resources) {
		reply_fault(resp, 400, "Changing resource limits of a running microVM is not "
			    "supported by this VMM.");
		return;
	}
	rc = r->ctrl.ops->update_resources(r->ctrl.opaque, &res, err, sizeof(err));
	if (rc) {
		reply_fault(resp, 400, "Cannot change the resource limits: %s", op_reason(rc, err));
		return;
	}
	reply_none(resp);
}

static void put_boot(struct api_router *r, const char *id, const char *body, size_t len,
		     struct api_response *resp)
{
	char err[API_ERR_MAX];
	struct api_boot_source *b = malloc(sizeof(*b));   /* 12 KiB: keep it off the stack */

	(void)id;
	if (!b) {
		reply_fault(resp, 500, "out of memory");
		return;
	}
	if (api_json_parse_boot_source(body, len, b, err, sizeof(err)) ||
	    api_config_put_boot(&r->cfg, b, err, sizeof(err)))
		reply_fault(resp, 400, "%s", err);
	else
		reply_none(resp);
	free(b);
}

static void put_drive(struct api_router *r, const char *id, const char *body, size_t len,
		      struct api_response *resp)
{
	char err[API_ERR_MAX];
	struct api_drive d;

	if (api_json_parse_drive(body, len, id, &d, err, sizeof(err)) ||
	    api_config_put_drive(&r->cfg, &d, err, sizeof(err)))
		reply_fault(resp, 400, "%s", err);
	else
		reply_none(resp);
}

static void put_net(struct api_router *r, const char *id, const char *body, size_t len,
		    struct api_response *resp)
{
	char err[API_ERR_MAX];
	struct api_net n;

	if (api_json_parse_net(body, len, id, &n, err, sizeof(err)) ||
	    api_config_put_net(&r->cfg, &n, err, sizeof(err)))
		reply_fault(resp, 400, "%s", err);
	else
		reply_none(resp);
}

/* A PATCHed limiter as the config now stands: present buckets replace
 * the old ones, absent ones stay (Firecracker's BucketUpdate). */
static void limiter_merge(struct api_rate_limiter *cur, const struct api_rate_limiter *upd)
{
	if (!upd->present)
		return;
	cur->present = true;
	if (upd->bandwidth.present)
		cur->bandwidth = upd->bandwidth;
	if (upd->ops.present)
		cur->ops = upd->ops;
}

/* Firecracker's PATCH /drives/{id} on a running VM: new rate limits. A new
 * backing file (path_on_host) is refused; wafer cannot swap it live. */
static void patch_drive(struct api_router *r, const char *id, const char *body, size_t len,
			struct api_response *resp)
{
	char err[API_ERR_MAX] = "";
	struct api_drive *d = malloc(sizeof(*d)), *cur = NULL;   /* 4 KiB path: off the stack */
	int rc;

	if (!d) {
		reply_fault(resp, 500, "out of memory");
		return;
	}
	if (api_json_parse_drive_patch(body, len, id, d, err, sizeof(err))) {
		reply_fault(resp, 400, "%s", err);
		goto out;
	}
	for (unsigned i = 0; i < r->cfg.ndrives; i++)
		if (!strcmp(r->cfg.drives[i].drive_id, id))
			cur = &r->cfg.drives[i];
	if (!cur) {
		reply_fault(resp, 400, "No drive with id \"%s\".", id);
		goto out;
	}
	if (d->path_on_host[0] && strcmp(d->path_on_host, cur->path_on_host)) {
		reply_fault(resp, 400, "Changing path_on_host of a running drive is not supported "
			    "by wafer.");
		goto out;
	}
	if (!r->ctrl.ops->update_drive_limiter) {
		reply_fault(resp, 400, "Updating drives of a running microVM is not supported by "
			    "this VMM.");
		goto out;
	}
	rc = r->ctrl.ops->update_drive_limiter(r->ctrl.opaque, id, &d->rate_limiter, err,
					       sizeof(err));
	if (rc) {
		reply_fault(resp, 400, "Cannot update drive \"%s\": %s", id, op_reason(rc, err));
		goto out;
	}
	limiter_merge(&cur->rate_limiter, &d->rate_limiter);
	reply_none(resp);
out:
	free(d);
}

/* Firecracker's PATCH /network-interfaces/{id}: new rx/tx rate limits. */
static void patch_net(struct api_router *r, const char *id, const char *body, size_t len,
		      struct api_response *resp)
{
	char err[API_ERR_MAX] = "";
	struct api_net n, *cur = NULL;
	int rc;

	if (api_json_parse_net_patch(body, len, id, &n, err, sizeof(err))) {
		reply_fault(resp, 400, "%s", err);
		return;
	}
	for (unsigned i = 0; i < r->cfg.nnets; i++)
		if (!strcmp(r->cfg.nets[i].iface_id, id))
			cur = &r->cfg.nets[i];
	if (!cur) {
		reply_fault(resp, 400, "No network interface with id \"%s\".", id);
		return;
	}
	if (!r->ctrl.ops->update_net_limiter) {
		reply_fault(resp, 400, "Updating network interfaces of a running microVM is not "
			    "supported by this VMM.");
		return;
	}
	rc = r->ctrl.ops->update_net_limiter(r->ctrl.opaque, id, &n.rx_rate_limiter,
					     &n.tx_rate_limiter, err, sizeof(err));
	if (rc) {
		reply_fault(resp, 400, "Cannot update network interface \"%s\": %s", id,
			    op_reason(rc, err));
		return;
	}
	limiter_merge(&cur->rx_rate_limiter, &n.rx_rate_limiter);
	limiter_merge(&cur->tx_rate_limiter, &n.tx_rate_limiter);
	reply_none(resp);
}

static void put_entropy(struct api_router *r, const char *id, const char *body, size_t len,
			struct api_response *resp)
{
	char err[API_ERR_MAX];
	struct api_entropy e;

	(void)id;
	if (api_json_parse_entropy(body, len, &e, err, sizeof(err))) {
		reply_fault(resp, 400, "%s", err);
		return;
	}
	r->cfg.entropy = e;
	reply_none(resp);
}

static void put_logger(struct api_router *r, const char *id, const char *body, size_t len,
		       struct api_response *resp)
{
	char err[API_ERR_MAX];
	struct api_logger l;
	int rc;

	(void)id;
	if (api_json_parse_logger(body, len, &l, err, sizeof(err))) {
		reply_fault(resp, 400, "%s", err);
		return;
	}
	if (started(r)) {
		if (!r->ctrl.ops->set_logger) {
			reply_fault(resp, 400, MSG_POST_BOOT);
			return;
		}
		err[0] = '\0';
		if ((rc = r->ctrl.ops->set_logger(r->ctrl.opaque, &l, err, sizeof(err)))) {
			reply_fault(resp, 400, "Cannot configure the logger: %s",
				    op_reason(rc, err));
			return;
		}
	}
	r->cfg.logger = l;
	reply_none(resp);
}

static void put_metrics(struct api_router *r, const char *id, const char *body, size_t len,
			struct api_response *resp)
{
	char err[API_ERR_MAX];
	struct api_metrics_config m;
	int rc;

	(void)id;
	if (api_json_parse_metrics(body, len, &m, err, sizeof(err))) {
		reply_fault(resp, 400, "%s", err);
		return;
	}
	if (r->cfg.metrics.present) {
		reply_fault(resp, 400, "The metrics system is already configured "
			    "(%s); it cannot be reconfigured.", r->cfg.metrics.metrics_path);
		return;
	}
	if (started(r)) {
		if (!r->ctrl.ops->set_metrics) {
			reply_fault(resp, 400, MSG_POST_BOOT);
			return;
		}
		err[0] = '\0';
		if ((rc = r->ctrl.ops->set_metrics(r->ctrl.opaque, &m, err, sizeof(err)))) {
			reply_fault(resp, 400, "Cannot configure metrics: %s",
				    op_reason(rc, err));
			return;
		}
	}
	r->cfg.metrics = m;
	reply_none(resp);
}

static void put_actions(struct api_router *r, const char *id, const char *body, size_t len,
			struct api_response *resp)
{
	char err[API_ERR_MAX];
	enum api_action a;
	int rc;

	(void)id;
	if (api_json_parse_action(body, len, &a, err, sizeof(err))) {
		reply_fault(resp, 400, "%s", err);
		return;
	}
	err[0] = '\0';
	switch (a) {
	case API_ACTION_INSTANCE_START:
		if (start_locked(r, err, sizeof(err))) {
			reply_fault(resp, 400, "%s", err);
			return;
		}
		break;
	case API_ACTION_SEND_CTRL_ALT_DEL:
		if (!started(r)) {
			reply_fault(resp, 400, MSG_PRE_BOOT);
			return;
		}
		if ((rc = r->ctrl.ops->send_ctrl_alt_del(r->ctrl.opaque, err, sizeof(err)))) {
			reply_fault(resp, 400, "SendCtrlAltDel failed: %s",
				    op_reason(rc, err));
			return;
		}
		break;
	case API_ACTION_FLUSH_METRICS:
		if (!r->cfg.metrics.present) {
			reply_fault(resp, 400, "FlushMetrics: the metrics system is not "
				    "configured (PUT /metrics first).");
			return;
		}
		if (!started(r))
			break;   /* nothing counted yet */
		if ((rc = r->ctrl.ops->flush_metrics(r->ctrl.opaque, err, sizeof(err)))) {
			reply_fault(resp, 400, "FlushMetrics failed: %s", op_reason(rc, err));
			return;
		}
		break;
	}
	reply_none(resp);
}

static void patch_vm(struct api_router *r, const char *id, const char *body, size_t len,
		     struct api_response *resp)
{
	char err[API_ERR_MAX];
	bool pause;
	int rc;

	(void)id;
	if (api_json_parse_vm_state(body, len, &pause, err, sizeof(err))) {
		reply_fault(resp, 400, "%s", err);
		return;
	}
	enum api_vm_state want = pause ? API_STATE_PAUSED : API_STATE_RUNNING;
	if (current_state(r) == want) {
		reply_none(resp);   /* pausing a paused VM is not an error */
	err[0] = '\0';
		return;
	}
	rc = pause ? r->ctrl.ops->pause(r->ctrl.opaque, err, sizeof(err))
		   : r->ctrl.ops->resume(r->ctrl.opaque, err, sizeof(err));
	if (rc) {
		reply_fault(resp, 400, "Cannot %s the microVM: %s",
			    pause ? "pause" : "resume", op_reason(rc, err));
		return;
	}
	r->state = want;
	reply_none(resp);
}

static void put_snapshot_create(struct api_router *r, const char *id, const char *body,
				size_t len, struct api_response *resp)
{
	struct api_snapshot_create p;
	char err[API_ERR_MAX];
	int rc;

	(void)id;
	if (!r->ctrl.snapshot) {
		reply_fault(resp, 400, "Snapshots are not supported by this VMM.");
		return;
	}
	if (api_json_parse_snapshot_create(body, len, &p, err, sizeof(err))) {
		reply_fault(resp, 400, "%s", err);
		return;
	}
	if (current_state(r) != API_STATE_PAUSED) {
		reply_fault(resp, 400, "Cannot create a snapshot: the microVM must be paused "
			    "(PATCH /vm {\"state\": \"Paused\"} first).");
		return;
	}
	err[0] = '\0';
	if ((rc = r->ctrl.snapshot->create(r->ctrl.opaque, &p, err, sizeof(err)))) {
		reply_fault(resp, 400, "Cannot create a snapshot: %s", op_reason(rc, err));
		return;
	}
	reply_none(resp);
}

static int load_locked(struct api_router *r, const struct api_snapshot_load *p, char *err,
		       size_t errlen)
{
	char why[API_ERR_MAX];
	int rc;

	if (!r->ctrl.snapshot) {
		snprintf(err, errlen, "Snapshots are not supported by this VMM.");
		return -ENOTSUP;
	}
	if (started(r)) {
		snprintf(err, errlen, MSG_POST_BOOT);
		return -EALREADY;
	}
	why[0] = '\0';
	rc = r->ctrl.snapshot->load(r->ctrl.opaque, p, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "Cannot load the snapshot: %s", op_reason(rc, why));
		return rc < 0 ? rc : -EIO;
	}
	r->state = p->resume_vm ? API_STATE_RUNNING : API_STATE_PAUSED;
	if (r->ctrl.ops->describe)
		r->ctrl.ops->describe(r->ctrl.opaque, &r->cfg);
	return 0;
}

static void put_snapshot_load(struct api_router *r, const char *id, const char *body,
			      size_t len, struct api_response *resp)
{
	struct api_snapshot_load p;
	char err[API_ERR_MAX];

	(void)id;
	if (api_json_parse_snapshot_load(body, len, &p, err, sizeof(err)) ||
	    load_locked(r, &p, err, sizeof(err))) {
		reply_fault(resp, 400, "%s", err);
		return;
	}
	reply_none(resp);
}

static void put_migrate(struct api_router *r, const char *id, const char *body, size_t len,
			struct api_response *resp)
{
	struct api_migrate_params p;
	char err[API_ERR_MAX];
	int rc;

	(void)id;
	if (!r->ctrl.migrate) {
		reply_fault(resp, 400, "Live migration is not supported by this VMM.");
		return;
	}
	if (api_json_parse_migrate(body, len, &p, err, sizeof(err))) {
		reply_fault(resp, 400, "%s", err);
		return;
	}
	err[0] = '\0';
	if ((rc = r->ctrl.migrate->start(r->ctrl.opaque, &p, err, sizeof(err)))) {
		reply_fault(resp, 400, "Cannot migrate: %s", op_reason(rc, err));
		return;
	}
	reply_none(resp);
}

static void get_migrate(struct api_router *r, const char *id, const char *body, size_t len,
			struct api_response *resp)
{
	struct api_migrate_status st = { .state = "none" };
	char *out;

	(void)id, (void)body, (void)len;
	if (!r->ctrl.migrate) {
		reply_fault(resp, 400, "Live migration is not supported by this VMM.");
		return;
	}
	r->ctrl.migrate->status(r->ctrl.opaque, &st);
	int rc = api_json_render_migrate(&st, &out);
	reply_json(resp, 200, rc, out);
}

static void put_migrate_cancel(struct api_router *r, const char *id, const char *body,
			       size_t len, struct api_response *resp)
{
	char err[API_ERR_MAX] = "";
	int rc;

	(void)id, (void)body, (void)len;
	if (!r->ctrl.migrate) {
		reply_fault(resp, 400, "Live migration is not supported by this VMM.");
		return;
	}
	if ((rc = r->ctrl.migrate->cancel(r->ctrl.opaque, err, sizeof(err)))) {
		reply_fault(resp, 400, "Cannot cancel: %s", op_reason(rc, err));
		return;
	}
	reply_none(resp);
}

void api_router_mark_started(struct api_router *r, enum api_vm_state s)
{
	pthread_mutex_lock(&r->lock);
	r->state = s;
	if (r->ctrl.ops->describe)
		r->ctrl.ops->describe(r->ctrl.opaque, &r->cfg);
	pthread_mutex_unlock(&r->lock);
}

int api_router_load_with(struct api_router *r, const struct api_snapshot_load *p,
			 char *err, size_t errlen)
{
	pthread_mutex_lock(&r->lock);
	int rc = load_locked(r, p, err, errlen);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

static void get_vm_config(struct api_router *r, const char *id, const char *body, size_t len,
			  struct api_response *resp)
{
	char *out;
	(void)id, (void)body, (void)len;
	int rc = api_json_render_config(&r->cfg, &out);
	reply_json(resp, 200, rc, out);
}

static void get_metrics(struct api_router *r, const char *id, const char *body, size_t len,
			struct api_response *resp)
{
	struct api_metrics *m = calloc(1, sizeof(*m));
	char *text = NULL;
	size_t tlen;

	(void)id, (void)body, (void)len;
	if (!m) {
		reply_fault(resp, 500, "out of memory");
		return;
	}
	m->state = current_state(r);
	if (m->state != API_STATE_NOT_STARTED) {
		m->vcpu_cap = r->cfg.machine.vcpu_count;
		m->vcpu_exits = calloc(m->vcpu_cap, sizeof(*m->vcpu_exits));
		if (!m->vcpu_exits) {
			reply_fault(resp, 500, "out of memory");
			goto out;
		}
		if (r->ctrl.ops->get_metrics(r->ctrl.opaque, m)) {
			reply_fault(resp, 500, "collecting metrics failed");
			goto out;
		}
	}
	/* Never trust counts beyond the room we gave. */
	if (m->nvcpus > m->vcpu_cap)
		m->nvcpus = m->vcpu_cap;
	if (m->ndevices > API_MAX_DEVICE_COUNTERS)
		m->ndevices = API_MAX_DEVICE_COUNTERS;
	if (api_metrics_render(m, &text, &tlen))
		reply_fault(resp, 500, "out of memory");
	else
		*resp = (struct api_response){ .status = 200, .body = text, .len = tlen,
			.content_type = "text/plain; version=0.0.4; charset=utf-8" };
out:
	free(m->vcpu_exits);
	free(m);
}

struct route {
	const char *method;
	const char *path;       /* a trailing '/' means "followed by one {id} segment" */
	enum route_phase phase;
	route_fn fn;
};

static const struct route routes[] = {
	{ "GET", "/", PHASE_ANY, get_instance },
	{ "GET", "/version", PHASE_ANY, get_version },
	{ "GET", "/machine-config", PHASE_ANY, get_machine },
	{ "PUT", "/machine-config", PHASE_PRE_BOOT, put_machine },
	{ "PATCH", "/machine-config", PHASE_ANY, patch_machine },
	{ "PUT", "/boot-source", PHASE_PRE_BOOT, put_boot },
	{ "PUT", "/drives/", PHASE_PRE_BOOT, put_drive },
	{ "PATCH", "/drives/", PHASE_POST_BOOT, patch_drive },
	{ "PUT", "/network-interfaces/", PHASE_PRE_BOOT, put_net },
	{ "PATCH", "/network-interfaces/", PHASE_POST_BOOT, patch_net },
	{ "PUT", "/entropy", PHASE_PRE_BOOT, put_entropy },
	{ "PUT", "/logger", PHASE_ANY, put_logger },
	{ "PUT", "/metrics", PHASE_ANY, put_metrics },
	{ "GET", "/metrics", PHASE_ANY, get_metrics },
	{ "PUT", "/actions", PHASE_ANY, put_actions },
	{ "PATCH", "/vm", PHASE_POST_BOOT, patch_vm },
	{ "GET", "/vm/config", PHASE_ANY, get_vm_config },
	{ "PUT", "/snapshot/create", PHASE_POST_BOOT, put_snapshot_create },
	{ "PUT", "/snapshot/load", PHASE_PRE_BOOT, put_snapshot_load },
	{ "PUT", "/migrate", PHASE_POST_BOOT, put_migrate },
	{ "GET", "/migrate", PHASE_ANY, get_migrate },
	{ "PUT", "/migrate/cancel", PHASE_ANY, put_migrate_cancel },
};

/* Does path match the route's pattern? For "/drives/" patterns *id gets the segment. */
static bool route_match(const char *pattern, const char *path, const char **id)
{
	size_t n = strlen(pattern);

	*id = NULL;
	if (n > 1 && pattern[n - 1] == '/') {
		if (strncmp(path, pattern, n) || !path[n] || strchr(path + n, '/'))
			return false;
		*id = path + n;
		return true;
	}
	return !strcmp(pattern, path);
}

void api_router_handle(struct api_router *r, const char *method, const char *path,
		       const char *body, size_t len, struct api_response *resp)
{
	const struct route *rt = NULL;
	bool path_known = false;
	const char *id = NULL;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!route_match(routes[i].path, path, &id))
			continue;
		path_known = true;
		if (!strcmp(routes[i].method, method)) {
			rt = &routes[i];
			break;
		}
	}
	/* Firecracker answers both with 400 Bad Request; clients rely on it. */
	if (!rt) {
		if (path_known)
			reply_fault(resp, 400, "Invalid request method: %.16s is not allowed on %.200s",
				    method, path);
		else
			reply_fault(resp, 400, "Invalid request path: no resource at %.200s", path);
		return;
	}
	if (id && !api_id_valid(id)) {
		reply_fault(resp, 400, "Invalid id \"%.64s\" in the path (1..%d of letters, "
			    "digits, '_' and '-')", id, API_ID_MAX);
		return;
	}

	pthread_mutex_lock(&r->lock);
	if (rt->phase == PHASE_PRE_BOOT && started(r))
		reply_fault(resp, 400, MSG_POST_BOOT);
	else if (rt->phase == PHASE_POST_BOOT && !started(r))
		reply_fault(resp, 400, MSG_PRE_BOOT);
	else
		rt->fn(r, id, body, len, resp);
	pthread_mutex_unlock(&r->lock);
}

int api_router_console_check(struct api_router *r, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&r->lock);
	if (!started(r)) {
		snprintf(err, errlen, MSG_PRE_BOOT);
		rc = -ESRCH;
	} else if (!r->ctrl.ops->console_check) {
		snprintf(err, errlen, "this VMM has no console on the API socket");
		rc = -ENOTSUP;
	} else {
		err[0] = '\0';
		rc = r->ctrl.ops->console_check(r->ctrl.opaque, err, errlen);
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int api_router_console_attach(struct api_router *r, int fd, void (*done)(void *), void *arg)
{
	pthread_mutex_lock(&r->lock);
	int rc = r->ctrl.ops->console_attach ?
		 r->ctrl.ops->console_attach(r->ctrl.opaque, fd, done, arg) : -ENOTSUP;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int api_router_start_with(struct api_router *r, const struct api_config *cfg,
			  char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&r->lock);
	if (started(r)) {
		snprintf(err, errlen, MSG_POST_BOOT);
		rc = -EALREADY;
		goto out;
	}
	r->cfg = *cfg;
	rc = start_locked(r, err, errlen);
out:
	pthread_mutex_unlock(&r->lock);
	return rc;
}

enum api_vm_state api_router_state(struct api_router *r)
{
	pthread_mutex_lock(&r->lock);
	enum api_vm_state s = current_state(r);
	pthread_mutex_unlock(&r->lock);
	return s;
}

int api_router_create(struct api_router **out, const struct api_controller *ctrl,
		      const char *instance_id)
{
	struct api_router *r;
	const struct api_controller_ops *o = ctrl->ops;

	*out = NULL;
	if (!o || !o->start || !o->pause || !o->resume || !o->send_ctrl_alt_del ||
	    !o->flush_metrics || !o->get_metrics || strlen(instance_id) > API_ID_MAX)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	r->ctrl = *ctrl;
	snprintf(r->id, sizeof(r->id), "%s", instance_id);
	api_config_init(&r->cfg);
	*out = r;
	return 0;
}

void api_router_destroy(struct api_router *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* ---- Prometheus text format 0.0.4 ---- */

static const char *const exit_names[API_EXIT__COUNT] = {
	[API_EXIT_IO] = "io", [API_EXIT_MMIO] = "mmio", [API_EXIT_HLT] = "hlt",
	[API_EXIT_SHUTDOWN] = "shutdown", [API_EXIT_SYSTEM_EVENT] = "system_event",
	[API_EXIT_INTR] = "intr", [API_EXIT_IRQ_WINDOW] = "irq_window",
	[API_EXIT_FAIL_ENTRY] = "fail_entry", [API_EXIT_INTERNAL_ERROR] = "internal_error",
	[API_EXIT_OTHER] = "other",
};

/* Label values escape backslash, double quote and newline. */
static void prom_label(FILE *f, const char *s, size_t max)
{
	for (size_t i = 0; i < max && s[i]; i++) {
		if (s[i] == '\\' || s[i] == '"')
			fprintf(f, "\\%c", s[i]);
		else if (s[i] == '\n')
			fputs("\\n", f);
		else
			fputc(s[i], f);
	}
}

static bool prom_name_valid(const char *s, size_t max)
{
	size_t i;

	for (i = 0; i < max && s[i]; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return i > 0 && i < max;
}

int api_metrics_render(const struct api_metrics *m, char **text, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	*text = NULL;
	*len = 0;
	if (!f)
		return -ENOMEM;
	fputs("# HELP wafer_vm_state 1 for the VM's current state.\n"
	      "# TYPE wafer_vm_state gauge\n", f);
	for (int s = API_STATE_NOT_STARTED; s <= API_STATE_PAUSED; s++)
		fprintf(f, "wafer_vm_state{state=\"%s\"} %d\n", api_state_name(s), (int)m->state == s);
	fprintf(f, "# HELP wafer_uptime_seconds Time since the VM started.\n"
		"# TYPE wafer_uptime_seconds gauge\n"
		"wafer_uptime_seconds %llu.%03llu\n",
		(unsigned long long)(m->uptime_ms / 1000), (unsigned long long)(m->uptime_ms % 1000));
	if (m->nvcpus) {
		fputs("# HELP wafer_vcpu_exits_total VM exits by vCPU and reason.\n"
		      "# TYPE wafer_vcpu_exits_total counter\n", f);
		for (unsigned v = 0; v < m->nvcpus; v++)
			for (int e = 0; e < API_EXIT__COUNT; e++)
				fprintf(f, "wafer_vcpu_exits_total{vcpu=\"%u\",reason=\"%s\"} %llu\n",
					v, exit_names[e], (unsigned long long)m->vcpu_exits[v][e]);
	}
	/* One family per counter name, its samples together, in first-seen order. */
	for (unsigned i = 0; i < m->ndevices; i++) {
		const struct api_device_counter *d = &m->devices[i];
		bool seen = false;
		if (!prom_name_valid(d->name, sizeof(d->name)))
			continue;
		for (unsigned j = 0; j < i && !seen; j++)
			seen = !strncmp(m->devices[j].name, d->name, sizeof(d->name));
		if (seen)
			continue;
		fprintf(f, "# TYPE wafer_device_%s_total counter\n", d->name);
		for (unsigned j = i; j < m->ndevices; j++) {
			const struct api_device_counter *e = &m->devices[j];
			if (strncmp(e->name, d->name, sizeof(d->name)))
				continue;
			fprintf(f, "wafer_device_%s_total{device=\"", d->name);
			prom_label(f, e->device, sizeof(e->device));
			fputs("\",kind=\"", f);
			prom_label(f, e->kind, sizeof(e->kind));
			fprintf(f, "\"} %llu\n", (unsigned long long)e->value);
		}
	}
	if (fclose(f) || !buf) {
		free(buf);
		return -ENOMEM;
	}
	*text = buf;
	*len = n;
	return 0;
}
