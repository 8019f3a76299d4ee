/* Control-API routes and state machine, driven through api_router_handle with
 * a fake controller: status codes, pre/post-boot rules, what reaches the
 * controller (and what must not), GET /metrics, socket naming. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/json.h"

struct fake {
	int starts, pauses, resumes, cads, flushes, metrics_calls;
	int start_rc, pause_rc;
	const char *start_err;
	unsigned started_vcpus, started_drives;
	bool override_state;
	enum api_vm_state state;
	int drive_updates, net_updates, update_rc;
	int resource_updates;
	struct api_resources res;
	char updated_id[API_ID_MAX + 1];
	struct api_rate_limiter drive_rl, net_rx, net_tx;
	int snap_creates, snap_loads, load_rc;
	struct api_snapshot_create created;
	struct api_snapshot_load loaded;
};

static int fake_start(void *o, const struct api_config *cfg, char *err, size_t errlen)
{
	struct fake *f = o;
	f->starts++;
	if (f->start_rc) {
		if (f->start_err)
			snprintf(err, errlen, "%s", f->start_err);
		return f->start_rc;
	}
	f->started_vcpus = cfg->machine.vcpu_count;
	f->started_drives = cfg->ndrives;
	return 0;
}

static int fake_pause(void *o, char *err, size_t errlen)
{
	struct fake *f = o;
	f->pauses++;
	if (f->pause_rc)
		snprintf(err, errlen, "vcpu 1 did not stop");
	return f->pause_rc;
}

static int fake_resume(void *o, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	((struct fake *)o)->resumes++;
	return 0;
}

static int fake_cad(void *o, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	((struct fake *)o)->cads++;
	return 0;
}

static int fake_flush(void *o, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	((struct fake *)o)->flushes++;
	return 0;
}

static int fake_metrics(void *o, struct api_metrics *m)
{
	struct fake *f = o;
	f->metrics_calls++;
	m->uptime_ms = 12345;
	m->nvcpus = m->vcpu_cap + 5;   /* a buggy VMM overstating: the router clamps */
	for (unsigned v = 0; v < m->vcpu_cap; v++)
		m->vcpu_exits[v][API_EXIT_IO] = 100 + v;
	m->ndevices = 3;
	snprintf(m->devices[0].device, sizeof(m->devices[0].device), "rootfs");
	snprintf(m->devices[0].kind, sizeof(m->devices[0].kind), "block");
	snprintf(m->devices[0].name, sizeof(m->devices[0].name), "read_bytes");
	m->devices[0].value = 4096;
	snprintf(m->devices[1].device, sizeof(m->devices[1].device), "we\"ird\\");
	snprintf(m->devices[1].kind, sizeof(m->devices[1].kind), "block");
	snprintf(m->devices[1].name, sizeof(m->devices[1].name), "read_bytes");
	m->devices[1].value = 1;
	snprintf(m->devices[2].name, sizeof(m->devices[2].name), "Bad-Name");
	return 0;
}

static enum api_vm_state fake_get_state(void *o)
{
	return ((struct fake *)o)->state;
}

static int fake_update_drive(void *o, const char *id, const struct api_rate_limiter *rl,
			     char *err, size_t errlen)
{
	struct fake *f = o;
	f->drive_updates++;
	snprintf(f->updated_id, sizeof(f->updated_id), "%s", id);
	f->drive_rl = *rl;
	if (f->update_rc)
		snprintf(err, errlen, "device is gone");
	return f->update_rc;
}

static int fake_update_net(void *o, const char *id, const struct api_rate_limiter *rx,
			   const struct api_rate_limiter *tx, char *err, size_t errlen)
{
	struct fake *f = o;
	(void)err, (void)errlen;
	f->net_updates++;
	snprintf(f->updated_id, sizeof(f->updated_id), "%s", id);
	f->net_rx = *rx;
	f->net_tx = *tx;
	return 0;
}

static int fake_update_resources(void *o, const struct api_resources *res, char *err, size_t errlen)
{
	struct fake *f = o;
	f->resource_updates++;
	f->res = *res;
	if (f->update_rc)
		snprintf(err, errlen, "the VM has no CPU cgroup (not set up)");
	return f->update_rc;
}

/* The VM a snapshot load built: 4 vCPUs, 256 MiB, no boot source. */
static void fake_describe(void *o, struct api_config *out)
{
	(void)o;
	api_config_init(out);
	out->machine.vcpu_count = 4;
	out->machine.mem_size_mib = 256;
}

static struct api_controller_ops fake_ops = {
	.start = fake_start, .pause = fake_pause, .resume = fake_resume,
	.send_ctrl_alt_del = fake_cad, .flush_metrics = fake_flush, .get_metrics = fake_metrics,
	.update_drive_limiter = fake_update_drive, .update_net_limiter = fake_update_net,
	.describe = fake_describe,
	.update_resources = fake_update_resources,
};

static int fake_snap_create(void *o, const struct api_snapshot_create *p, char *err, size_t errlen)
{
	struct fake *f = o;
	(void)err, (void)errlen;
	f->snap_creates++;
	f->created = *p;
	return 0;
}

static int fake_snap_load(void *o, const struct api_snapshot_load *p, char *err, size_t errlen)
{
	struct fake *f = o;
	f->snap_loads++;
	f->loaded = *p;
	if (f->load_rc)
		snprintf(err, errlen, "disk /x: its size changed since the snapshot was taken");
	return f->load_rc;
}

static const struct api_snapshot_ops fake_snap_ops = { fake_snap_create, fake_snap_load };


struct ctx {
	struct fake fake;
	struct api_router *r;
	char dir[32], kernel[64], disk[64], disk2[64];
	struct api_response last;
};

static void touch(const char *p)
{
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs("x", f);
	fclose(f);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	struct api_controller ctrl = { .ops = &fake_ops, .opaque = &c->fake,
				       .snapshot = &fake_snap_ops };

	snprintf(c->dir, sizeof(c->dir), "/tmp/wafer-apirt.XXXXXX");
	if (!mkdtemp(c->dir))
		return -1;
	snprintf(c->kernel, sizeof(c->kernel), "%s/k", c->dir);
	snprintf(c->disk, sizeof(c->disk), "%s/d", c->dir);
	snprintf(c->disk2, sizeof(c->disk2), "%s/d2", c->dir);
	touch(c->kernel);
	touch(c->disk);
	touch(c->disk2);
	if (api_router_create(&c->r, &ctrl, "test-vm"))
		return -1;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	api_response_release(&c->last);
	api_router_destroy(c->r);
	unlink(c->kernel);
	unlink(c->disk);
	unlink(c->disk2);
	rmdir(c->dir);
	free(c);
	return 0;
}

/* One request; the response stays in c->last until the next one. */
static int req(struct ctx *c, const char *method, const char *path, const char *body)
{
	api_response_release(&c->last);
	api_router_handle(c->r, method, path, body, body ? strlen(body) : 0, &c->last);
	if (c->last.status == 204)
		assert_null(c->last.body);
	if (c->last.status >= 400) {
		/* Every error is a JSON object with a fault_message. */
		json_object *o = json_tokener_parse(c->last.body), *m;
		assert_non_null(o);
		assert_true(json_object_object_get_ex(o, "fault_message", &m));
		json_object_put(o);
	}
	return c->last.status;
}

static void expect_fault(struct ctx *c, const char *method, const char *path, const char *body,
			 int status, const char *want)
{
	int got = req(c, method, path, body);
	if (got != status || !c->last.body || !strstr(c->last.body, want))
		fail_msg("%s %s: status %d body %s; expected %d with \"%s\"", method, path, got,
			 c->last.body ? c->last.body : "(none)", status, want);
}

static const char *state_of(struct ctx *c)
{
	static char buf[32];
	assert_int_equal(req(c, "GET", "/", NULL), 200);
	json_object *o = json_tokener_parse(c->last.body), *v;
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "state", &v));
	snprintf(buf, sizeof(buf), "%s", json_object_get_string(v));
	json_object_put(o);
	return buf;
}

static void put_boot_ok(struct ctx *c)
{
	char body[256];
	snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\", \"boot_args\": \"quiet\"}",
		 c->kernel);
	assert_int_equal(req(c, "PUT", "/boot-source", body), 204);
}

static void start_ok(struct ctx *c)
{
	put_boot_ok(c);
	assert_int_equal(req(c, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 204);
	assert_string_equal(state_of(c), "Running");
}

static void test_info(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(req(c, "GET", "/", NULL), 200);
	assert_string_equal(c->last.content_type, "application/json");
	assert_non_null(strstr(c->last.body, "\"id\":\"test-vm\""));
	assert_non_null(strstr(c->last.body, "\"app_name\":\"wafer\""));
	assert_string_equal(state_of(c), "Not started");
	assert_int_equal(req(c, "GET", "/version", NULL), 200);
	assert_non_null(strstr(c->last.body, "firecracker_version"));
	assert_int_equal(req(c, "GET", "/machine-config", NULL), 200);
	assert_non_null(strstr(c->last.body, "\"vcpu_count\":1"));
	assert_non_null(strstr(c->last.body, "\"mem_size_mib\":128"));
	/* A GET with a body ignores it. */
	assert_int_equal(req(c, "GET", "/", "garbage"), 200);
}

static void test_unknown(void **state)
{
	struct ctx *c = *state;

	expect_fault(c, "GET", "/nope", NULL, 400, "no resource at /nope");
	expect_fault(c, "GET", "/machine-config/", NULL, 400, "no resource");
	expect_fault(c, "PUT", "/drives/", "{}", 400, "no resource");
	expect_fault(c, "PUT", "/drives/a/b", "{}", 400, "no resource");
	expect_fault(c, "DELETE", "/machine-config", NULL, 400, "DELETE is not allowed");
	expect_fault(c, "POST", "/actions", "{}", 400, "not allowed");
	expect_fault(c, "PUT", "/drives/a b", "{}", 400, "in the path (1..64 of letters");
	assert_int_equal(c->fake.starts, 0);
}

static void test_preboot_config(void **state)
{
	struct ctx *c = *state;
	char body[512];

	assert_int_equal(req(c, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}"),
			 204);
	assert_int_equal(req(c, "PATCH", "/machine-config", "{\"smt\": true}"), 204);
	assert_int_equal(req(c, "GET", "/machine-config", NULL), 200);
	assert_non_null(strstr(c->last.body, "\"vcpu_count\":2"));
	assert_non_null(strstr(c->last.body, "\"smt\":true"));
	/* A failed update leaves the config alone (all or nothing). */
	expect_fault(c, "PATCH", "/machine-config", "{\"vcpu_count\": 3}", 400, "1 or even");
	expect_fault(c, "PUT", "/machine-config", "{\"vcpu_count\": 0, \"mem_size_mib\": 256}",
		     400, "out of range");
	expect_fault(c, "PUT", "/machine-config", "", 400, "empty body");
	assert_int_equal(req(c, "GET", "/machine-config", NULL), 200);
	assert_non_null(strstr(c->last.body, "\"vcpu_count\":2"));

	expect_fault(c, "PUT", "/boot-source", "{\"kernel_image_path\": \"/nonexistent/k\"}",
		     400, "kernel_image_path /nonexistent/k: No such file or directory");
	snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\"}", c->dir);
	expect_fault(c, "PUT", "/boot-source", body, 400, "not a regular file");
	put_boot_ok(c);

	snprintf(body, sizeof(body), "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", "
		 "\"is_root_device\": true, \"is_read_only\": false}", c->disk);
	expect_fault(c, "PUT", "/drives/other", body, 400, "does not match the id in the path");
	assert_int_equal(req(c, "PUT", "/drives/rootfs", body), 204);
	/* Same id again replaces it, not a second drive. */
	assert_int_equal(req(c, "PUT", "/drives/rootfs", body), 204);
	snprintf(body, sizeof(body), "{\"drive_id\": \"data\", \"path_on_host\": \"%s\", "
		 "\"is_root_device\": true}", c->disk2);
	expect_fault(c, "PUT", "/drives/data", body, 400, "drive rootfs is already the root device");
	snprintf(body, sizeof(body), "{\"drive_id\": \"data\", \"path_on_host\": \"%s/missing\", "
		 "\"is_root_device\": false}", c->dir);
	expect_fault(c, "PUT", "/drives/data", body, 400, "No such file");
	snprintf(body, sizeof(body), "{\"drive_id\": \"data\", \"path_on_host\": \"%s\", "
		 "\"is_root_device\": false, \"is_read_only\": true}", c->disk2);
	assert_int_equal(req(c, "PUT", "/drives/data", body), 204);

	assert_int_equal(req(c, "PUT", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\", "
		"\"host_dev_name\": \"tap0\", \"guest_mac\": \"02:00:00:00:00:01\"}"), 204);
	expect_fault(c, "PUT", "/network-interfaces/eth1", "{\"iface_id\": \"eth1\", "
		     "\"host_dev_name\": \"tap0\"}", 400, "tap0 is already used by eth0");
	expect_fault(c, "PUT", "/network-interfaces/eth1", "{\"iface_id\": \"eth1\", "
		     "\"host_dev_name\": \"tap1\", \"guest_mac\": \"02:00:00:00:00:01\"}", 400,
		     "guest_mac is already used by eth0");
	assert_int_equal(req(c, "PUT", "/entropy", "{}"), 204);
	assert_int_equal(req(c, "PUT", "/logger", "{\"level\": \"Info\"}"), 204);

	assert_int_equal(req(c, "GET", "/vm/config", NULL), 200);
	json_object *o = json_tokener_parse(c->last.body), *v;
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "drives", &v));
	assert_int_equal(json_object_array_length(v), 2);
	assert_true(json_object_object_get_ex(o, "network-interfaces", &v));
	assert_int_equal(json_object_array_length(v), 1);
	assert_true(json_object_object_get_ex(o, "metrics", &v));
	assert_null(v);
	json_object_put(o);

	assert_int_equal(req(c, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"), 204);
	assert_int_equal(c->fake.starts, 1);
	assert_int_equal(c->fake.started_vcpus, 2);
	assert_int_equal(c->fake.started_drives, 2);
}

/* PUT n drives (all on c->disk2, read-only) and n interfaces, ids from `from`. */
static void put_drives(struct ctx *c, unsigned from, unsigned n)
{
	char path[32], body[512];
	for (unsigned i = from; i < from + n; i++) {
		snprintf(path, sizeof(path), "/drives/d%u", i);
		snprintf(body, sizeof(body), "{\"drive_id\": \"d%u\", \"path_on_host\": \"%s\", "
			 "\"is_root_device\": false, \"is_read_only\": true}", i, c->disk2);
		if (req(c, "PUT", path, body) != 204)
			fail_msg("PUT %s: %s", path, c->last.body ? c->last.body : "(none)");
	}
}

static void put_nets(struct ctx *c, unsigned from, unsigned n)
{
	char path[40], body[256];
	for (unsigned i = from; i < from + n; i++) {
		snprintf(path, sizeof(path), "/network-interfaces/eth%u", i);
		snprintf(body, sizeof(body), "{\"iface_id\": \"eth%u\", \"host_dev_name\": \"tap%u\"}",
			 i, i);
		if (req(c, "PUT", path, body) != 204)
			fail_msg("PUT %s: %s", path, c->last.body ? c->last.body : "(none)");
	}
}

/* The API takes as many interfaces as the VM builds (VM_MAX_NETS, 16), and
 * refuses one more by name; drives and interfaces together leave a PCI slot
 * for the rng. */
static void test_net_limits(void **state)
{
	struct ctx *c = *state;
	char body[512];

	assert_int_equal(VM_MAX_NETS, 16);
	put_nets(c, 0, VM_MAX_NETS);
	expect_fault(c, "PUT", "/network-interfaces/eth16", "{\"iface_id\": \"eth16\", "
		     "\"host_dev_name\": \"tap16\"}", 400, "interface eth16: at most 16 network interfaces");
	put_nets(c, 3, 1);   /* replacing one is not adding one */
	put_drives(c, 0, VM_MAX_VIRTIO - 1 - VM_MAX_NETS);
	snprintf(body, sizeof(body), "{\"drive_id\": \"last\", \"path_on_host\": \"%s\", "
		 "\"is_root_device\": false, \"is_read_only\": true}", c->disk2);
	expect_fault(c, "PUT", "/drives/last", body, 400,
		     "drive last: drives and network interfaces share 30 PCI slots");
	assert_int_equal(req(c, "GET", "/vm/config", NULL), 200);
	json_object *o = json_tokener_parse(c->last.body), *v;
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "network-interfaces", &v));
	assert_int_equal(json_object_array_length(v), 16);
	json_object_put(o);
}

static void test_drive_limits(void **state)
{
	struct ctx *c = *state;
	char body[512];

	put_drives(c, 0, VM_MAX_DISKS);
	snprintf(body, sizeof(body), "{\"drive_id\": \"d16\", \"path_on_host\": \"%s\", "
		 "\"is_root_device\": false, \"is_read_only\": true}", c->disk2);
	expect_fault(c, "PUT", "/drives/d16", body, 400, "drive d16: at most 16 drives");
	put_nets(c, 0, VM_MAX_VIRTIO - 1 - VM_MAX_DISKS);
	expect_fault(c, "PUT", "/network-interfaces/eth99", "{\"iface_id\": \"eth99\", "
		     "\"host_dev_name\": \"tap99\"}", 400,
		     "interface eth99: drives and network interfaces share 30 PCI slots");
}

static void test_start_rules(void **state)
{
	struct ctx *c = *state;

	expect_fault(c, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
		     "without a boot source");
	assert_int_equal(c->fake.starts, 0);
	put_boot_ok(c);

	/* A failed start reports the controller's reason and stays Not started. */
	c->fake.start_rc = -ENOEXEC;
	c->fake.start_err = "kernel: not a bzImage or ELF";
	expect_fault(c, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
		     "Failed to start the microVM: kernel: not a bzImage or ELF");
	assert_string_equal(state_of(c), "Not started");
	c->fake.start_err = NULL;
	expect_fault(c, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
		     "Exec format error");
	c->fake.start_rc = 0;

	start_ok(c);
	assert_int_equal(c->fake.starts, 3);
	expect_fault(c, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
		     "not supported after starting the microVM");
	assert_int_equal(c->fake.starts, 3);

	/* Pre-boot-only resources are refused after start, whatever the body. */
	expect_fault(c, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 128}",
		     400, "not supported after starting the microVM");
	expect_fault(c, "PATCH", "/machine-config", "{\"mem_size_mib\": 64}", 400,
		     "cannot change after the microVM started");
	expect_fault(c, "PUT", "/boot-source", "{}", 400, "after starting");
	expect_fault(c, "PUT", "/drives/rootfs", "{}", 400, "after starting");
	expect_fault(c, "PUT", "/network-interfaces/eth0", "{}", 400, "after starting");
	expect_fault(c, "PUT", "/entropy", "{}", 400, "after starting");
	expect_fault(c, "PUT", "/logger", "{}", 400, "after starting");  /* no set_logger op */
	expect_fault(c, "PATCH", "/drives/rootfs", "{}", 400, "drive_id");
	assert_int_equal(req(c, "GET", "/machine-config", NULL), 200);
	assert_int_equal(req(c, "GET", "/vm/config", NULL), 200);
}

static void test_snapshot_routes(void **state)
{
	struct ctx *c = *state;
	const char *create = "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"/s/state\", "
			     "\"mem_file_path\": \"/s/memory\"}";

	/* Create needs a started, paused VM. */
	expect_fault(c, "PUT", "/snapshot/create", create, 400, "before starting the microVM");
	start_ok(c);
	expect_fault(c, "PUT", "/snapshot/create", create, 400, "must be paused");
	assert_int_equal(req(c, "PATCH", "/vm", "{\"state\": \"Paused\"}"), 204);
	assert_int_equal(req(c, "PUT", "/snapshot/create", create), 204);
	assert_int_equal(c->fake.snap_creates, 1);
	assert_string_equal(c->fake.created.snapshot_path, "/s/state");
	assert_string_equal(c->fake.created.mem_file_path, "/s/memory");
	expect_fault(c, "PUT", "/snapshot/create", "{\"snapshot_type\": \"Diff\", "
		     "\"snapshot_path\": \"a\", \"mem_file_path\": \"b\"}", 400, "Diff");
	expect_fault(c, "PUT", "/snapshot/create", "{\"snapshot_path\": \"a\"}", 400,
		     "mem_file_path");
	expect_fault(c, "PUT", "/snapshot/create", "{\"snapshot_path\": \"a\", "
		     "\"mem_file_path\": \"b\", \"bogus\": 1}", 400, "unknown field");
	/* Load is for a VM that was not started. */
	expect_fault(c, "PUT", "/snapshot/load", "{\"snapshot_path\": \"a\", "
		     "\"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"b\"}}",
		     400, "after starting");
	assert_int_equal(c->fake.snap_loads, 0);
}

static void test_snapshot_load_route(void **state)
{
	struct ctx *c = *state;

	expect_fault(c, "PUT", "/snapshot/load", "{\"snapshot_path\": \"a\"}", 400,
		     "mem_backend");
	expect_fault(c, "PUT", "/snapshot/load", "{\"snapshot_path\": \"a\", "
		     "\"mem_file_path\": \"m\", \"mem_backend\": {\"backend_type\": \"File\", "
		     "\"backend_path\": \"b\"}}", 400, "not both");
	expect_fault(c, "PUT", "/snapshot/load", "{\"snapshot_path\": \"a\", "
		     "\"mem_backend\": {\"backend_type\": \"Uffd\", \"backend_path\": \"b\"}}",
		     400, "Uffd");
	expect_fault(c, "PUT", "/snapshot/load", "{\"snapshot_path\": \"a\", "
		     "\"mem_file_path\": \"m\", \"verify\": 0}", 400, "expected true or false, got an integer");
	/* A refusal (changed disk) leaves the VM unstarted: config can go on. */
	c->fake.load_rc = -ESTALE;
	expect_fault(c, "PUT", "/snapshot/load", "{\"snapshot_path\": \"a\", "
		     "\"mem_file_path\": \"m\"}", 400, "size changed");
	/* wafer's "verify": the memory file's CRC is checked unless false. */
	assert_true(c->fake.loaded.verify);
	assert_false(c->fake.loaded.force);
	expect_fault(c, "PUT", "/snapshot/load", "{\"snapshot_path\": \"a\", "
		     "\"mem_file_path\": \"m\", \"verify\": false, \"force\": true}", 400, "size changed");
	assert_false(c->fake.loaded.verify);
	assert_true(c->fake.loaded.force);
	assert_int_equal(req(c, "GET", "/", NULL), 200);
	assert_non_null(strstr(c->last.body, "Not started"));
	c->fake.load_rc = 0;
	assert_int_equal(req(c, "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s/state\", "
			     "\"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": "
			     "\"/s/memory\"}, \"resume_vm\": false}"), 204);
	assert_string_equal(c->fake.loaded.snapshot_path, "/s/state");
	assert_string_equal(c->fake.loaded.mem_path, "/s/memory");
	assert_false(c->fake.loaded.resume_vm);
	assert_int_equal(req(c, "GET", "/", NULL), 200);
	assert_non_null(strstr(c->last.body, "Paused"));
	/* The machine is the loaded one, not the router's defaults. */
	assert_int_equal(req(c, "GET", "/machine-config", NULL), 200);
	assert_non_null(strstr(c->last.body, "\"vcpu_count\":4"));
	assert_non_null(strstr(c->last.body, "\"mem_size_mib\":256"));
	/* Loaded means started: no second load, no InstanceStart, pre-boot PUTs refused. */
	expect_fault(c, "PUT", "/snapshot/load", "{\"snapshot_path\": \"a\", "
		     "\"mem_file_path\": \"m\"}", 400, "after starting");
	expect_fault(c, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
		     "after starting");
	assert_int_equal(c->fake.starts, 0);
}

static void test_patch_limiters(void **state)
{
	struct ctx *c = *state;
	char body[512];
	const char *rl = "{\"drive_id\": \"rootfs\", \"rate_limiter\": {\"ops\": "
			 "{\"size\": 100, \"refill_time\": 1000, \"one_time_burst\": 5}}}";

	snprintf(body, sizeof(body), "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", "
		 "\"is_root_device\": true}", c->disk);
	assert_int_equal(req(c, "PUT", "/drives/rootfs", body), 204);
	assert_int_equal(req(c, "PUT", "/network-interfaces/eth0",
			     "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}"), 204);
	/* Before start, as in Firecracker, PATCH is refused. */
	expect_fault(c, "PATCH", "/drives/rootfs", rl, 400, "before starting the microVM");
	expect_fault(c, "PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\"}", 400,
		     "before starting the microVM");
	assert_int_equal(c->fake.drive_updates + c->fake.net_updates, 0);
	start_ok(c);

	assert_int_equal(req(c, "PATCH", "/drives/rootfs", rl), 204);
	assert_int_equal(c->fake.drive_updates, 1);
	assert_string_equal(c->fake.updated_id, "rootfs");
	assert_true(c->fake.drive_rl.present && c->fake.drive_rl.ops.present);
	assert_false(c->fake.drive_rl.bandwidth.present);
	assert_int_equal(c->fake.drive_rl.ops.size, 100);
	assert_int_equal(c->fake.drive_rl.ops.one_time_burst, 5);
	assert_int_equal(c->fake.drive_rl.ops.refill_time_ms, 1000);
	/* The running config shows the new limiter. */
	assert_int_equal(req(c, "GET", "/vm/config", NULL), 200);
	assert_non_null(strstr(c->last.body, "\"one_time_burst\":5"));

	/* Same path is fine; another one is not; unknown ids and mismatches are 400. */
	snprintf(body, sizeof(body), "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\"}",
		 c->disk);
	assert_int_equal(req(c, "PATCH", "/drives/rootfs", body), 204);
	snprintf(body, sizeof(body), "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\"}",
		 c->disk2);
	expect_fault(c, "PATCH", "/drives/rootfs", body, 400, "path_on_host");
	expect_fault(c, "PATCH", "/drives/data", "{\"drive_id\": \"data\"}", 400,
		     "No drive with id");
	expect_fault(c, "PATCH", "/drives/rootfs", "{\"drive_id\": \"data\"}", 400,
		     "does not match");
	expect_fault(c, "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"is_read_only\": true}",
		     400, "unknown field");
	expect_fault(c, "PATCH", "/drives/rootfs",
		     "{\"drive_id\": \"rootfs\", \"rate_limiter\": {\"ops\": {\"size\": 1}}}",
		     400, "refill_time");
	assert_int_equal(c->fake.drive_updates, 2);
	/* The controller's refusal reaches the client. */
	c->fake.update_rc = -ENODEV;
	expect_fault(c, "PATCH", "/drives/rootfs", rl, 400, "device is gone");
	c->fake.update_rc = 0;

	assert_int_equal(req(c, "PATCH", "/network-interfaces/eth0",
			     "{\"iface_id\": \"eth0\", \"tx_rate_limiter\": {\"bandwidth\": "
			     "{\"size\": 1000000, \"refill_time\": 1000}}}"), 204);
	assert_int_equal(c->fake.net_updates, 1);
	assert_string_equal(c->fake.updated_id, "eth0");
	assert_false(c->fake.net_rx.present);
	assert_true(c->fake.net_tx.present && c->fake.net_tx.bandwidth.present);
	assert_int_equal(c->fake.net_tx.bandwidth.size, 1000000);
	expect_fault(c, "PATCH", "/network-interfaces/eth1", "{\"iface_id\": \"eth1\"}", 400,
		     "No network interface");
	expect_fault(c, "PATCH", "/network-interfaces/eth0",
		     "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap1\"}", 400, "unknown field");
	assert_int_equal(c->fake.net_updates, 1);
}

/* PATCH /machine-config: Firecracker's partial update before start; after
 * it, wafer's extension for the CPU weight, cap and memory limit. */
static void test_patch_resources(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(req(c, "PATCH", "/machine-config", "{\"vcpu_count\": 2}"), 204);
	assert_int_equal(req(c, "GET", "/machine-config", NULL), 200);
	assert_non_null(strstr(c->last.body, "\"vcpu_count\":2"));
	expect_fault(c, "PATCH", "/machine-config", "{\"cpu_weight\": 512}", 400,
		     "cpu_weight\\\": changes only on a running microVM");
	assert_int_equal(c->fake.resource_updates, 0);

	start_ok(c);
	assert_int_equal(req(c, "PATCH", "/machine-config",
			     "{\"cpu_weight\": 512, \"cpu_cap\": 50, \"memory_limit_mib\": 256}"), 204);
	assert_int_equal(c->fake.resource_updates, 1);
	assert_true(c->fake.res.has_cpu_weight && c->fake.res.has_cpu_cap && c->fake.res.has_memory_limit);
	assert_int_equal(c->fake.res.cpu_weight, 512);
	assert_int_equal(c->fake.res.cpu_cap, 50);
	assert_int_equal(c->fake.res.memory_limit_mib, 256);
	/* One field: the others are not marked (they stay as they are). */
	assert_int_equal(req(c, "PATCH", "/machine-config", "{\"memory_limit_mib\": 0}"), 204);
	assert_true(c->fake.res.has_memory_limit && !c->fake.res.has_cpu_weight && !c->fake.res.has_cpu_cap);
	assert_int_equal(c->fake.res.memory_limit_mib, 0);
	assert_int_equal(req(c, "PATCH", "/machine-config", "{\"cpu_weight\": 65535, \"cpu_cap\": 0}"), 204);
	assert_int_equal(c->fake.res.cpu_weight, 65535);

	/* Malformed values: 400 naming the field; the controller is not asked. */
	int before = c->fake.resource_updates;
	expect_fault(c, "PATCH", "/machine-config", "{\"cpu_weight\": 0}", 400,
		     "cpu_weight\\\": 0 is out of range (1..65535)");
	expect_fault(c, "PATCH", "/machine-config", "{\"cpu_weight\": 65536}", 400,
		     "cpu_weight\\\": 65536 is out of range");
	expect_fault(c, "PATCH", "/machine-config", "{\"cpu_weight\": \"high\"}", 400,
		     "cpu_weight\\\": expected an integer, got a string");
	expect_fault(c, "PATCH", "/machine-config", "{\"cpu_weight\": 2.5}", 400,
		     "cpu_weight\\\": expected an integer");
	expect_fault(c, "PATCH", "/machine-config", "{\"cpu_cap\": -1}", 400,
		     "cpu_cap\\\": must not be negative");
	expect_fault(c, "PATCH", "/machine-config", "{\"cpu_cap\": 409601}", 400,
		     "cpu_cap\\\": 409601 is out of range");
	expect_fault(c, "PATCH", "/machine-config", "{\"memory_limit_mib\": 8}", 400,
		     "memory_limit_mib\\\": 8 is below the minimum of 16");
	expect_fault(c, "PATCH", "/machine-config", "{\"vcpu_count\": 2}", 400,
		     "vcpu_count\\\": cannot change after the microVM started");
	expect_fault(c, "PATCH", "/machine-config", "{\"cpu_weight\": 300, \"bogus\": 1}", 400,
		     "unknown field \\\"bogus\\\"");
	expect_fault(c, "PATCH", "/machine-config", "{}", 400, "nothing to change");
	expect_fault(c, "PATCH", "/machine-config", "[512]", 400, "expected a JSON object");
	expect_fault(c, "PATCH", "/machine-config", "{\"cpu_weight\": ", 400, "malformed JSON");
	assert_int_equal(c->fake.resource_updates, before);

	/* The controller's refusal, and a VMM without the op. */
	c->fake.update_rc = -ENOTSUP;
	expect_fault(c, "PATCH", "/machine-config", "{\"cpu_cap\": 50}", 400,
		     "Cannot change the resource limits: the VM has no CPU cgroup");
	c->fake.update_rc = 0;
	fake_ops.update_resources = NULL;
	expect_fault(c, "PATCH", "/machine-config", "{\"cpu_cap\": 50}", 400, "not supported");
	fake_ops.update_resources = fake_update_resources;
	assert_int_equal(c->fake.resource_updates, before + 1);
}

static void test_pause_resume(void **state)
{
	struct ctx *c = *state;

	expect_fault(c, "PATCH", "/vm", "{\"state\": \"Paused\"}", 400,
		     "not supported before starting the microVM");
	expect_fault(c, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 400,
		     "before starting");
	assert_int_equal(c->fake.pauses, 0);
	assert_int_equal(c->fake.cads, 0);
	start_ok(c);

	assert_int_equal(req(c, "PATCH", "/vm", "{\"state\": \"Paused\"}"), 204);
	assert_string_equal(state_of(c), "Paused");
	assert_int_equal(req(c, "PATCH", "/vm", "{\"state\": \"Paused\"}"), 204);
	assert_int_equal(c->fake.pauses, 1);   /* already paused: no second call */
	assert_int_equal(req(c, "PATCH", "/vm", "{\"state\": \"Resumed\"}"), 204);
	assert_string_equal(state_of(c), "Running");
	assert_int_equal(c->fake.resumes, 1);
	expect_fault(c, "PATCH", "/vm", "{\"state\": \"Stopped\"}", 400, "unknown value");
	expect_fault(c, "PATCH", "/vm", "{", 400, "malformed JSON");

	c->fake.pause_rc = -ETIMEDOUT;
	expect_fault(c, "PATCH", "/vm", "{\"state\": \"Paused\"}", 400,
		     "Cannot pause the microVM: vcpu 1 did not stop");
	assert_string_equal(state_of(c), "Running");

	assert_int_equal(req(c, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}"), 204);
	assert_int_equal(c->fake.cads, 1);

	/* The VMM's own view wins once started. */
	fake_ops.get_state = fake_get_state;
	c->fake.state = API_STATE_PAUSED;
	assert_string_equal(state_of(c), "Paused");
	fake_ops.get_state = NULL;
}

static void test_metrics(void **state)
{
	struct ctx *c = *state;

	expect_fault(c, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 400,
		     "PUT /metrics first");
	assert_int_equal(req(c, "PUT", "/metrics", "{\"metrics_path\": \"/tmp/m.fifo\"}"), 204);
	expect_fault(c, "PUT", "/metrics", "{\"metrics_path\": \"/tmp/other\"}", 400,
		     "already configured");
	assert_int_equal(req(c, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}"), 204);
	assert_int_equal(c->fake.flushes, 0);   /* nothing to flush before start */

	assert_int_equal(req(c, "GET", "/metrics", NULL), 200);
	assert_string_equal(c->last.content_type, "text/plain; version=0.0.4; charset=utf-8");
	assert_non_null(strstr(c->last.body, "wafer_vm_state{state=\"Not started\"} 1\n"));
	assert_non_null(strstr(c->last.body, "wafer_vm_state{state=\"Running\"} 0\n"));
	assert_null(strstr(c->last.body, "wafer_vcpu_exits_total"));
	assert_int_equal(c->fake.metrics_calls, 0);

	assert_int_equal(req(c, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 64}"),
			 204);
	start_ok(c);
	assert_int_equal(req(c, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}"), 204);
	assert_int_equal(c->fake.flushes, 1);
	assert_int_equal(req(c, "GET", "/metrics", NULL), 200);
	const char *b = c->last.body;
	assert_non_null(strstr(b, "wafer_vm_state{state=\"Running\"} 1\n"));
	assert_non_null(strstr(b, "wafer_uptime_seconds 12.345\n"));
	assert_non_null(strstr(b, "# TYPE wafer_vcpu_exits_total counter\n"));
	assert_non_null(strstr(b, "wafer_vcpu_exits_total{vcpu=\"0\",reason=\"io\"} 100\n"));
	assert_non_null(strstr(b, "wafer_vcpu_exits_total{vcpu=\"1\",reason=\"io\"} 101\n"));
	assert_non_null(strstr(b, "wafer_vcpu_exits_total{vcpu=\"1\",reason=\"hlt\"} 0\n"));
	assert_null(strstr(b, "vcpu=\"2\""));   /* clamped to the vCPUs that exist */
	assert_non_null(strstr(b, "# TYPE wafer_device_read_bytes_total counter\n"
			       "wafer_device_read_bytes_total{device=\"rootfs\",kind=\"block\"} 4096\n"
			       "wafer_device_read_bytes_total{device=\"we\\\"ird\\\\\",kind=\"block\"} 1\n"));
	assert_null(strstr(b, "Bad-Name"));
	assert_int_equal(c->fake.metrics_calls, 1);
}

static void test_start_with(void **state)
{
	struct ctx *c = *state;
	struct api_config *cfg = malloc(sizeof(*cfg));
	char err[API_ERR_MAX];

	assert_non_null(cfg);
	api_config_init(cfg);
	assert_int_equal(api_router_start_with(c->r, cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "without a boot source"));
	snprintf(cfg->boot.kernel_image_path, sizeof(cfg->boot.kernel_image_path), "%s", c->kernel);
	cfg->boot.present = true;
	cfg->machine.vcpu_count = 3;
	assert_int_equal(api_router_start_with(c->r, cfg, err, sizeof(err)), 0);
	assert_int_equal(c->fake.started_vcpus, 3);
	assert_int_equal(api_router_state(c->r), API_STATE_RUNNING);
	assert_int_equal(api_router_start_with(c->r, cfg, err, sizeof(err)), -EALREADY);
	assert_int_equal(c->fake.starts, 1);
	/* The API then shows the file's config. */
	assert_int_equal(req(c, "GET", "/machine-config", NULL), 200);
	assert_non_null(strstr(c->last.body, "\"vcpu_count\":3"));
	free(cfg);
}

static void test_create_checks(void **state)
{
	(void)state;
	struct api_controller_ops ops = fake_ops;
	struct api_controller ctrl = { .ops = &ops };
	struct api_router *r;

	ops.start = NULL;
	assert_int_equal(api_router_create(&r, &ctrl, "x"), -EINVAL);
	assert_null(r);
	ops = fake_ops;
	char id[80];
	memset(id, 'a', sizeof(id) - 1);
	id[79] = '\0';
	assert_int_equal(api_router_create(&r, &ctrl, id), -EINVAL);
}

static void test_names(void **state)
{
	(void)state;
	char buf[128];

	assert_int_equal(api_name_validate("vm-1.test_x"), 0);
	assert_int_equal(api_name_validate(""), -EINVAL);
	assert_int_equal(api_name_validate("."), -EINVAL);
	assert_int_equal(api_name_validate(".."), -EINVAL);
	assert_int_equal(api_name_validate(".hidden"), -EINVAL);
	assert_int_equal(api_name_validate("a/b"), -EINVAL);
	assert_int_equal(api_name_validate("a b"), -EINVAL);
	memset(buf, 'n', 65);
	buf[65] = '\0';
	assert_int_equal(api_name_validate(buf), -EINVAL);
	buf[64] = '\0';
	assert_int_equal(api_name_validate(buf), 0);

	assert_int_equal(api_socket_default_path("a/b", buf, sizeof(buf)), -EINVAL);
	if (geteuid() == 0) {
		assert_int_equal(api_socket_default_path("vm1", buf, sizeof(buf)), 0);
		assert_string_equal(buf, "/run/wafer/vm1/api.sock");
	} else {
		setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
		assert_int_equal(api_socket_default_path("vm1", buf, sizeof(buf)), 0);
		assert_string_equal(buf, "/run/user/1000/wafer/vm1/api.sock");
		unsetenv("XDG_RUNTIME_DIR");
		assert_int_equal(api_socket_default_path("vm1", buf, sizeof(buf)), -ENOENT);
	}
	assert_int_equal(api_socket_default_path("vm1", buf, 10), -ENAMETOOLONG);
	/* sun_path holds 107 characters: a 64-character name under a long base is too long. */
	memset(buf, 'n', 64);
	buf[64] = '\0';
	char out[256];
	setenv("XDG_RUNTIME_DIR", "/run/user/1000/a/very/long/runtime/directory/path", 1);
	if (geteuid() != 0)
		assert_int_equal(api_socket_default_path(buf, out, sizeof(out)), -ENAMETOOLONG);
	unsetenv("XDG_RUNTIME_DIR");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_info, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preboot_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drive_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_with, setup, teardown),
		cmocka_unit_test_setup_teardown(test_patch_limiters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_load_route, setup, teardown),
		cmocka_unit_test_setup_teardown(test_patch_resources, setup, teardown),
		cmocka_unit_test(test_create_checks),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
