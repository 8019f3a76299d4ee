/* JSON glue for the control API (Firecracker swagger definitions: MachineConfiguration,
 * BootSource, Drive, NetworkInterface, RateLimiter/TokenBucket, Logger, Metrics,
 * EntropyDevice, InstanceActionInfo, Vm, FullVmConfiguration and --config-file). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/json.h"
#include "vmm/file.h"

#ifndef WAFER_VERSION
#define WAFER_VERSION "unknown"
#endif

#define JSON_MAX_DEPTH    16
#define CONFIG_FILE_MAX   (1024 * 1024)
#define TOKEN_MAX         ((uint64_t)INT64_MAX)   /* swagger: int64, minimum 0 */

/* Where in the document we are, so every error names its field. */
struct jctx {
	char *err;
	size_t errlen;
	const char *where;      /* "" at the top, "drives[1].rate_limiter" deeper */
};

__attribute__((format(printf, 2, 3)))
static int jfail(const struct jctx *c, const char *fmt, ...)
{
	char msg[API_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->err && c->errlen) {
		if (c->where && *c->where)
			snprintf(c->err, c->errlen, "%s: %s", c->where, msg);
		else
			snprintf(c->err, c->errlen, "%s", msg);
	}
	return -EINVAL;
}

static const char *jtype(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_double: return "a non-integer number";
	case json_type_int: return "an integer";
	case json_type_object: return "an object";
	case json_type_array: return "an array";
	case json_type_string: return "a string";
	}
	return "something else";
}

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

static int check_fields(const struct jctx *c, json_object *obj, const char *const *allowed)
{
	if (!json_object_is_type(obj, json_type_object))
		return jfail(c, "expected a JSON object, got %s", jtype(obj));
	json_object_object_foreach(obj, key, val) {
		(void)val;
		if (!in_list(key, allowed))
			return jfail(c, "unknown field \"%.64s\"", key);
	}
	return 0;
}

/* A JSON null counts as absent, as in Firecracker's (serde Option) parsing. */
static json_object *get_field(json_object *obj, const char *name)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(obj, name, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	return v;
}

static int get_string(const struct jctx *c, json_object *obj, const char *name, bool required,
		      char *buf, size_t cap, bool *present)
{
	json_object *v = get_field(obj, name);

	if (present)
		*present = false;
	if (!v)
		return required ? jfail(c, "missing required field \"%s\"", name) : 0;
	if (!json_object_is_type(v, json_type_string))
		return jfail(c, "\"%s\": expected a string, got %s", name, jtype(v));
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);
	if (memchr(s, '\0', n))
		return jfail(c, "\"%s\": contains a NUL character", name);
	if (n >= cap)
		return jfail(c, "\"%s\": longer than %zu bytes", name, cap - 1);
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (present)
		*present = true;
	return 0;
}

static int get_bool(const struct jctx *c, json_object *obj, const char *name, bool required,
		    bool *out)
{
	json_object *v = get_field(obj, name);

	if (!v)
		return required ? jfail(c, "missing required field \"%s\"", name) : 0;
	if (!json_object_is_type(v, json_type_boolean))
		return jfail(c, "\"%s\": expected true or false, got %s", name, jtype(v));
	*out = json_object_get_boolean(v);
	return 0;
}

/* json-c clamps integers beyond 64 bits to INT64_MIN/UINT64_MAX, so every max
 * here stays below UINT64_MAX and a clamped value reads as out of range. */
static int get_uint(const struct jctx *c, json_object *obj, const char *name, bool required,
		    uint64_t min, uint64_t max, uint64_t *out, bool *present)
{
	json_object *v = get_field(obj, name);

	if (present)
		*present = false;
	if (!v)
		return required ? jfail(c, "missing required field \"%s\"", name) : 0;
	if (!json_object_is_type(v, json_type_int))
		return jfail(c, "\"%s\": expected an integer, got %s", name, jtype(v));
	if (json_object_get_int64(v) < 0)
		return jfail(c, "\"%s\": must not be negative", name);
	uint64_t u = json_object_get_uint64(v);
	if (u < min || u > max)
		return jfail(c, "\"%s\": %llu is out of range (%llu..%llu)", name,
			     (unsigned long long)u, (unsigned long long)min,
			     (unsigned long long)max);
	*out = u;
	if (present)
		*present = true;
	return 0;
}

static int get_enum(const struct jctx *c, json_object *obj, const char *name, bool required,
		    const char *const *names, bool icase, int *out)
{
	char buf[32];
	bool have;
	int rc = get_string(c, obj, name, required, buf, sizeof(buf), &have);

	if (rc == -EINVAL && json_object_is_type(get_field(obj, name), json_type_string))
		have = true, buf[0] = '\0';   /* too long: cannot be one of names */
	else if (rc)
		return rc;
	if (!have)
		return 0;
	for (int i = 0; names[i]; i++) {
		if (icase ? !strcasecmp(buf, names[i]) : !strcmp(buf, names[i])) {
			*out = i;
			return 0;
		}
	}
	char list[160] = "";
	for (int i = 0; names[i]; i++) {
		size_t l = strlen(list);
		snprintf(list + l, sizeof(list) - l, "%s\"%s\"", i ? ", " : "", names[i]);
	}
	return jfail(c, "\"%s\": unknown value, expected one of %s", name, list);
}

bool api_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > API_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '_' && id[i] != '-')
			return false;
	return true;
}

static int get_id(const struct jctx *c, json_object *obj, const char *name, const char *path_id,
		  char *buf, size_t cap)
{
	char tmp[API_ID_MAX + 1];
	int rc = get_string(c, obj, name, true, tmp, sizeof(tmp), NULL);

	if (rc)
		return rc;
	if (!api_id_valid(tmp))
		return jfail(c, "\"%s\": invalid id \"%s\" (1..%d of letters, digits, '_' and '-')",
			     name, tmp, API_ID_MAX);
	if (path_id && strcmp(path_id, tmp))
		return jfail(c, "\"%s\": \"%s\" does not match the id in the path (\"%.64s\")",
			     name, tmp, path_id);
	snprintf(buf, cap, "%s", tmp);
	return 0;
}

static void ctx_child(char *buf, size_t len, const struct jctx *parent, const char *name,
		      struct jctx *child)
{
	snprintf(buf, len, "%s%s%s", parent->where ? parent->where : "",
		 parent->where && *parent->where ? "." : "", name);
	*child = (struct jctx){ .err = parent->err, .errlen = parent->errlen, .where = buf };
}

static int parse_bucket(const struct jctx *pc, json_object *obj, const char *name,
			struct api_token_bucket *b)
{
	static const char *const fields[] = { "size", "one_time_burst", "refill_time", NULL };
	json_object *v = get_field(obj, name);
	char where[160];
	struct jctx c;
	int rc;

	*b = (struct api_token_bucket){ 0 };
	if (!v)
		return 0;
	ctx_child(where, sizeof(where), pc, name, &c);
	if ((rc = check_fields(&c, v, fields)) ||
	    (rc = get_uint(&c, v, "size", true, 0, TOKEN_MAX, &b->size, NULL)) ||
	    (rc = get_uint(&c, v, "refill_time", true, 0, TOKEN_MAX, &b->refill_time_ms, NULL)) ||
	    (rc = get_uint(&c, v, "one_time_burst", false, 0, TOKEN_MAX, &b->one_time_burst, NULL)))
		return rc;
	b->present = true;
	return 0;
}

static int parse_rate_limiter(const struct jctx *pc, json_object *obj, const char *name,
			      struct api_rate_limiter *rl)
{
	static const char *const fields[] = { "bandwidth", "ops", NULL };
	json_object *v = get_field(obj, name);
	char where[128];
	struct jctx c;
	int rc;

	*rl = (struct api_rate_limiter){ 0 };
	if (!v)
		return 0;
	ctx_child(where, sizeof(where), pc, name, &c);
	if ((rc = check_fields(&c, v, fields)) ||
	    (rc = parse_bucket(&c, v, "bandwidth", &rl->bandwidth)) ||
	    (rc = parse_bucket(&c, v, "ops", &rl->ops)))
		return rc;
	rl->present = true;
	return 0;
}

/* wafer has its own CPUID templates; Firecracker's named ones do not exist here. */
static int check_cpu_template(const struct jctx *c, char *t)
{
	static const char *const firecracker_names[] = { "C3", "T2", "T2S", "T2CL", "T2A",
							 "V1N1", NULL };
	size_t n = strlen(t);

	if (!strcmp(t, "None")) {
		t[0] = '\0';
		return 0;
	}
	if (!strcmp(t, "host") || !strcmp(t, "baseline") || strchr(t, '/') ||
	    (n > 5 && !strcmp(t + n - 5, ".json")))
		return 0;
	if (in_list(t, firecracker_names))
		return jfail(c, "\"cpu_template\": %s is a Firecracker template that wafer does not "
			     "have (use None, host, baseline or a JSON template path)", t);
	return jfail(c, "\"cpu_template\": unknown template \"%s\" (use None, host, baseline or a "
		     "JSON template path)", t);
}

static const char *const machine_fields[] = { "vcpu_count", "mem_size_mib", "smt",
	"track_dirty_pages", "cpu_template", "huge_pages", NULL };
/* wafer's run-time extension of PATCH /machine-config */
static const char *const resource_fields[] = { "cpu_weight", "cpu_cap", "memory_limit_mib", NULL };

/* The first key of obj (an object) that is in list, or NULL. */
static const char *first_key_in(json_object *obj, const char *const *list)
{
	json_object_object_foreach(obj, key, val) {
		(void)val;
		if (in_list(key, list))
			return key;
	}
	return NULL;
}

static int parse_machine_obj(const struct jctx *c, json_object *obj, bool partial,
			     struct api_machine *m)
{
	static const char *const huge[] = { "None", "Transparent", "2M", NULL };
	const char *key;
	uint64_t v;
	bool have;
	int rc, e;

	if (partial && json_object_is_type(obj, json_type_object) &&
	    (key = first_key_in(obj, resource_fields)))
		return jfail(c, "\"%s\": changes only on a running microVM (a wafer extension); "
			     "before that, give --cpu-weight, --cpu-cap or --memory-limit to wafer run", key);
	if ((rc = check_fields(c, obj, machine_fields)))
		return rc;
	if ((rc = get_uint(c, obj, "vcpu_count", !partial, 1, VM_MAX_VCPUS, &v, &have)))
		return rc;
	if (have)
		m->vcpu_count = (unsigned)v;
	if ((rc = get_uint(c, obj, "mem_size_mib", !partial, VM_MIN_MEM_MIB, VM_MAX_MEM_MIB,
			   &v, &have)))
		return rc;
	if (have)
		m->mem_size_mib = v;
	if ((rc = get_bool(c, obj, "smt", false, &m->smt)) ||
	    (rc = get_bool(c, obj, "track_dirty_pages", false, &m->track_dirty_pages)))
		return rc;
	e = (int)m->huge_pages;
	if ((rc = get_enum(c, obj, "huge_pages", false, huge, false, &e)))
		return rc;
	m->huge_pages = (enum api_huge_pages)e;
	char tmpl[API_TEMPLATE_MAX];
	if ((rc = get_string(c, obj, "cpu_template", false, tmpl, sizeof(tmpl), &have)))
		return rc;
	if (have) {
		if ((rc = check_cpu_template(c, tmpl)))
			return rc;
		memcpy(m->cpu_template, tmpl, sizeof(tmpl));
	}
	if (m->smt && m->vcpu_count > 1 && m->vcpu_count % 2)
		return jfail(c, "\"vcpu_count\": must be 1 or even when smt is enabled");
	if (m->huge_pages == API_HUGE_2M && m->mem_size_mib % 2)
		return jfail(c, "\"mem_size_mib\": must be a multiple of 2 with 2M huge pages");
	return 0;
}

static int parse_resources_obj(const struct jctx *c, json_object *obj, struct api_resources *r)
{
	const char *key;
	uint64_t v;
	int rc;

	memset(r, 0, sizeof(*r));
	if (json_object_is_type(obj, json_type_object) && (key = first_key_in(obj, machine_fields)))
		return jfail(c, "\"%s\": cannot change after the microVM started (only cpu_weight, "
			     "cpu_cap and memory_limit_mib can)", key);
	if ((rc = check_fields(c, obj, resource_fields)))
		return rc;
	if ((rc = get_uint(c, obj, "cpu_weight", false, 1, VM_CPU_WEIGHT_MAX, &v, &r->has_cpu_weight)))
		return rc;
	if (r->has_cpu_weight)
		r->cpu_weight = (unsigned)v;
	if ((rc = get_uint(c, obj, "cpu_cap", false, 0, VM_CPU_CAP_MAX, &v, &r->has_cpu_cap)))
		return rc;
	if (r->has_cpu_cap)
		r->cpu_cap = (unsigned)v;
	if ((rc = get_uint(c, obj, "memory_limit_mib", false, 0, VM_MAX_MEM_MIB, &v,
			   &r->has_memory_limit)))
		return rc;
	if (r->has_memory_limit && v && v < VM_MEM_LIMIT_MIN_MIB)
		return jfail(c, "\"memory_limit_mib\": %llu is below the minimum of %d (0 = no limit)",
			     (unsigned long long)v, VM_MEM_LIMIT_MIN_MIB);
	if (r->has_memory_limit)
		r->memory_limit_mib = v;
	if (!r->has_cpu_weight && !r->has_cpu_cap && !r->has_memory_limit)
		return jfail(c, "nothing to change: give cpu_weight, cpu_cap or memory_limit_mib");
	return 0;
}

static int parse_boot_obj(const struct jctx *c, json_object *obj, struct api_boot_source *b)
{
	static const char *const fields[] = { "kernel_image_path", "initrd_path", "boot_args", NULL };
	int rc;

	memset(b, 0, sizeof(*b));
	if ((rc = check_fields(c, obj, fields)) ||
	    (rc = get_string(c, obj, "kernel_image_path", true, b->kernel_image_path,
			     sizeof(b->kernel_image_path), NULL)) ||
	    (rc = get_string(c, obj, "initrd_path", false, b->initrd_path,
			     sizeof(b->initrd_path), NULL)) ||
	    (rc = get_string(c, obj, "boot_args", false, b->boot_args, sizeof(b->boot_args),
			     &b->has_boot_args)))
		return rc;
	if (!b->kernel_image_path[0])
		return jfail(c, "\"kernel_image_path\": must not be empty");
	b->present = true;
	return 0;
}

/* partuuid lands on the kernel command line (root=PARTUUID=...), so only the
 * characters a GPT/MBR partition UUID can contain are allowed. */
static bool partuuid_valid(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s) && *s != '-')
			return false;
	return true;
}

static int parse_drive_obj(const struct jctx *c, json_object *obj, const char *path_id,
			   struct api_drive *d)
{
	static const char *const fields[] = { "drive_id", "path_on_host", "is_root_device",
		"is_read_only", "partuuid", "cache_type", "io_engine", "rate_limiter", "socket",
		NULL };
	static const char *const cache[] = { "Unsafe", "Writeback", NULL };
	static const char *const engine[] = { "Sync", "Async", NULL };
	bool have;
	int rc, e;

	memset(d, 0, sizeof(*d));
	if ((rc = check_fields(c, obj, fields)))
		return rc;
	if (get_field(obj, "socket"))
		return jfail(c, "\"socket\": vhost-user block devices are not supported by wafer");
	if ((rc = get_id(c, obj, "drive_id", path_id, d->drive_id, sizeof(d->drive_id))) ||
	    (rc = get_string(c, obj, "path_on_host", true, d->path_on_host,
			     sizeof(d->path_on_host), NULL)) ||
	    (rc = get_bool(c, obj, "is_root_device", true, &d->is_root_device)) ||
	    (rc = get_bool(c, obj, "is_read_only", false, &d->is_read_only)) ||
	    (rc = get_string(c, obj, "partuuid", false, d->partuuid, 37, &have)))
		return rc;
	if (have && !partuuid_valid(d->partuuid))
		return jfail(c, "\"partuuid\": only hex digits and '-' are allowed");
	if (!d->path_on_host[0])
		return jfail(c, "\"path_on_host\": must not be empty");
	e = API_CACHE_UNSAFE;
	if ((rc = get_enum(c, obj, "cache_type", false, cache, false, &e)))
		return rc;
	d->cache_type = (enum api_cache_type)e;
	e = API_IO_SYNC;
	if ((rc = get_enum(c, obj, "io_engine", false, engine, false, &e)))
		return rc;
	d->io_engine = (enum api_io_engine)e;
	return parse_rate_limiter(c, obj, "rate_limiter", &d->rate_limiter);
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	if (strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		const char *p = s + i * 3;
		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
		    (i < 5 && p[2] != ':'))
			return -EINVAL;
		char hex[3] = { p[0], p[1], 0 };
		mac[i] = (uint8_t)strtoul(hex, NULL, 16);
	}
	return 0;
}

/* Linux's rule for interface names (dev_valid_name). */
static bool ifname_valid(const char *s)
{
	if (!*s || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || isspace((unsigned char)*s))
			return false;
	return true;
}

static int parse_net_obj(const struct jctx *c, json_object *obj, const char *path_id,
			 struct api_net *n)
{
	static const char *const fields[] = { "iface_id", "host_dev_name", "guest_mac", "mtu",
		"rx_rate_limiter", "tx_rate_limiter", NULL };
	char mac[32];
	uint64_t mtu;
	bool have;
	int rc;

	memset(n, 0, sizeof(*n));
	if ((rc = check_fields(c, obj, fields)) ||
	    (rc = get_id(c, obj, "iface_id", path_id, n->iface_id, sizeof(n->iface_id))) ||
	    (rc = get_string(c, obj, "host_dev_name", true, n->host_dev_name,
			     sizeof(n->host_dev_name), NULL)))
		return rc;
	if (!ifname_valid(n->host_dev_name))
		return jfail(c, "\"host_dev_name\": \"%s\" is not a valid interface name",
			     n->host_dev_name);
	if ((rc = get_string(c, obj, "guest_mac", false, mac, sizeof(mac), &have)))
		return rc;
	if (have) {
		if (parse_mac(mac, n->guest_mac))
			return jfail(c, "\"guest_mac\": \"%s\" is not a MAC address "
				     "(xx:xx:xx:xx:xx:xx)", mac);
		if (n->guest_mac[0] & 1)
			return jfail(c, "\"guest_mac\": %s is a multicast address", mac);
		n->has_guest_mac = true;
	}
	if ((rc = get_uint(c, obj, "mtu", false, 68, 65535, &mtu, &have)))
		return rc;
	n->mtu = have ? (unsigned)mtu : 0;
	if ((rc = parse_rate_limiter(c, obj, "rx_rate_limiter", &n->rx_rate_limiter)) ||
	    (rc = parse_rate_limiter(c, obj, "tx_rate_limiter", &n->tx_rate_limiter)))
		return rc;
	return 0;
}

static int parse_drive_patch_obj(const struct jctx *c, json_object *obj, const char *path_id,
				 struct api_drive *d)
{
	static const char *const fields[] = { "drive_id", "path_on_host", "rate_limiter", NULL };
	int rc;

	memset(d, 0, sizeof(*d));
	if ((rc = check_fields(c, obj, fields)) ||
	    (rc = get_id(c, obj, "drive_id", path_id, d->drive_id, sizeof(d->drive_id))) ||
	    (rc = get_string(c, obj, "path_on_host", false, d->path_on_host,
			     sizeof(d->path_on_host), NULL)))
		return rc;
	return parse_rate_limiter(c, obj, "rate_limiter", &d->rate_limiter);
}

static int parse_net_patch_obj(const struct jctx *c, json_object *obj, const char *path_id,
			       struct api_net *n)
{
	static const char *const fields[] = { "iface_id", "rx_rate_limiter", "tx_rate_limiter",
		NULL };
	int rc;

	memset(n, 0, sizeof(*n));
	if ((rc = check_fields(c, obj, fields)) ||
	    (rc = get_id(c, obj, "iface_id", path_id, n->iface_id, sizeof(n->iface_id))) ||
	    (rc = parse_rate_limiter(c, obj, "rx_rate_limiter", &n->rx_rate_limiter)))
		return rc;
	return parse_rate_limiter(c, obj, "tx_rate_limiter", &n->tx_rate_limiter);
}

static const char *const log_levels[] = { "Off", "Error", "Warning", "Info", "Debug", "Trace",
					   NULL };

static int parse_logger_obj(const struct jctx *c, json_object *obj, struct api_logger *l)
{
	static const char *const fields[] = { "log_path", "level", "show_level",
		"show_log_origin", "module", NULL };
	int rc, e = API_LOG_INFO;

	memset(l, 0, sizeof(*l));
	if ((rc = check_fields(c, obj, fields)) ||
	    (rc = get_string(c, obj, "log_path", false, l->log_path, sizeof(l->log_path), NULL)) ||
	    (rc = get_enum(c, obj, "level", false, log_levels, true, &e)) ||
	    (rc = get_bool(c, obj, "show_level", false, &l->show_level)) ||
	    (rc = get_bool(c, obj, "show_log_origin", false, &l->show_log_origin)) ||
	    (rc = get_string(c, obj, "module", false, l->module, sizeof(l->module), NULL)))
		return rc;
	l->level = (enum api_log_level)e;
	l->present = true;
	return 0;
}

static int parse_metrics_obj(const struct jctx *c, json_object *obj, struct api_metrics_config *m)
{
	static const char *const fields[] = { "metrics_path", NULL };
	int rc;

	memset(m, 0, sizeof(*m));
	if ((rc = check_fields(c, obj, fields)) ||
	    (rc = get_string(c, obj, "metrics_path", true, m->metrics_path,
			     sizeof(m->metrics_path), NULL)))
		return rc;
	if (!m->metrics_path[0])
		return jfail(c, "\"metrics_path\": must not be empty");
	m->present = true;
	return 0;
}

static int parse_entropy_obj(const struct jctx *c, json_object *obj, struct api_entropy *e)
{
	static const char *const fields[] = { "rate_limiter", NULL };
	int rc;

	memset(e, 0, sizeof(*e));
	if ((rc = check_fields(c, obj, fields)) ||
	    (rc = parse_rate_limiter(c, obj, "rate_limiter", &e->rate_limiter)))
		return rc;
	e->present = true;
	return 0;
}

/* One JSON object from a request body or file: no trailing bytes, no NUL,
 * bounded nesting, valid UTF-8. */
static int parse_text(const char *text, size_t len, json_object **out, const struct jctx *c)
{
	json_tokener *tok = NULL;
	json_object *obj = NULL;
	size_t i;
	int rc = 0;

	*out = NULL;
	for (i = 0; i < len && isspace((unsigned char)text[i]); i++)
		;
	if (!text || i == len) {
		rc = jfail(c, "empty body: expected a JSON object");
		goto out;
	}
	if (len > INT_MAX || memchr(text, '\0', len)) {
		rc = jfail(c, "body contains a NUL byte or is too large");
		goto out;
	}
	tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	if (!tok) {
		rc = -ENOMEM;
		snprintf(c->err, c->errlen, "out of memory");
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error e = json_tokener_get_error(tok);
	if (e == json_tokener_continue) {
		rc = jfail(c, "malformed JSON: unexpected end of input");
		goto out;
	}
	if (e != json_tokener_success) {
		rc = jfail(c, "malformed JSON at byte %zu: %s", json_tokener_get_parse_end(tok),
			   json_tokener_error_desc(e));
		goto out;
	}
	for (i = json_tokener_get_parse_end(tok); i < len; i++) {
		if (!isspace((unsigned char)text[i])) {
			rc = jfail(c, "malformed JSON: unexpected data after the object at byte %zu", i);
			goto out;
		}
	}
	if (!json_object_is_type(obj, json_type_object)) {
		rc = jfail(c, "expected a JSON object, got %s", jtype(obj));
		goto out;
	}
	*out = obj;
	obj = NULL;
out:
	json_object_put(obj);
	if (tok)
		json_tokener_free(tok);
	return rc;
}

/* The common shape of every body parser: text -> object -> typed struct. */
#define PARSE_BODY(body, len, err, errlen, call)                                 \
	do {                                                                     \
		struct jctx c = { .err = (err), .errlen = (errlen), .where = "" };   \
		json_object *obj;                                                \
		int rc = parse_text((body), (len), &obj, &c);                    \
		if (rc)                                                          \
			return rc;                                               \
		rc = (call);                                                     \
		json_object_put(obj);                                            \
		return rc;                                                       \
	} while (0)

static int machine_into(const struct jctx *c, json_object *obj, const struct api_machine *base,
			bool partial, struct api_machine *out)
{
	struct api_machine m;
	int rc;

	if (partial) {
		m = *base;
	} else {
		struct api_config defaults;
		api_config_init(&defaults);   /* PUT resets what it omits */
		m = defaults.machine;
	}
	rc = parse_machine_obj(c, obj, partial, &m);
	if (!rc)
		*out = m;
	return rc;
}

int api_json_parse_machine(const char *body, size_t len, const struct api_machine *base,
			   bool partial, struct api_machine *out, char *err, size_t errlen)
{
	PARSE_BODY(body, len, err, errlen, machine_into(&c, obj, base, partial, out));
}

#define PARSE_INTO(type, fn, ...)                                                \
	({ type tmp_; int r_ = fn(&c, obj, ##__VA_ARGS__, &tmp_); if (!r_) *out = tmp_; r_; })

int api_json_parse_resources(const char *body, size_t len, struct api_resources *out,
			     char *err, size_t errlen)
{
	PARSE_BODY(body, len, err, errlen, PARSE_INTO(struct api_resources, parse_resources_obj));
}

int api_json_parse_boot_source(const char *body, size_t len, struct api_boot_source *out,
			       char *err, size_t errlen)
{
	PARSE_BODY(body, len, err, errlen, PARSE_INTO(struct api_boot_source, parse_boot_obj));
}

int api_json_parse_drive(const char *body, size_t len, const char *path_id,
			 struct api_drive *out, char *err, size_t errlen)
{
	PARSE_BODY(body, len, err, errlen, PARSE_INTO(struct api_drive, parse_drive_obj, path_id));
}

int api_json_parse_net(const char *body, size_t len, const char *path_id,
		       struct api_net *out, char *err, size_t errlen)
{
	PARSE_BODY(body, len, err, errlen, PARSE_INTO(struct api_net, parse_net_obj, path_id));
}

int api_json_parse_drive_patch(const char *body, size_t len, const char *path_id,
			       struct api_drive *out, char *err, size_t errlen)
{
	PARSE_BODY(body, len, err, errlen,
		   PARSE_INTO(struct api_drive, parse_drive_patch_obj, path_id));
}

int api_json_parse_net_patch(const char *body, size_t len, const char *path_id,
			     struct api_net *out, char *err, size_t errlen)
{
	PARSE_BODY(body, len, err, errlen, PARSE_INTO(struct api_net, parse_net_patch_obj, path_id));
}

int api_json_parse_logger(const char *body, size_t len, struct api_logger *out,
			  char *err, size_t errlen)
{
	PARSE_BODY(body, len, err, errlen, PARSE_INTO(struct api_logger, parse_logger_obj));
}

int api_json_parse_metrics(const char *body, size_t len, struct api_metrics_config *out,
			   char *err, size_t errlen)
{
	PARSE_BODY(body, len, err, errlen,
		   PARSE_INTO(struct api_metrics_config, parse_metrics_obj));
}

int api_json_parse_entropy(const char *body, size_t len, struct api_entropy *out,
			   char *err, size_t errlen)
{
	PARSE_BODY(body, len, err, errlen, PARSE_INTO(struct api_entropy, parse_entropy_obj));
}

static int parse_action_obj(const struct jctx *c, json_object *obj, enum api_action *a)
{
	static const char *const fields[] = { "action_type", NULL };
	static const char *const names[] = { "InstanceStart", "SendCtrlAltDel", "FlushMetrics",
					     NULL };
	int rc, e = -1;

	if ((rc = check_fields(c, obj, fields)) ||
	    (rc = get_enum(c, obj, "action_type", true, names, false, &e)))
		return rc;
	*a = (enum api_action)e;
	return 0;
}

int api_json_parse_action(const char *body, size_t len, enum api_action *out,
			  char *err, size_t errlen)
{
	PARSE_BODY(body, len, err, errlen, parse_action_obj(&c, obj, out));
}

static int parse_vm_obj(const struct jctx *c, json_object *obj, bool *pause)
{
	static const char *const fields[] = { "state", NULL };
	static const char *const names[] = { "Paused", "Resumed", NULL };
	int rc, e = -1;

	if ((rc = check_fields(c, obj, fields)) ||
	    (rc = get_enum(c, obj, "state", true, names, false, &e)))
		return rc;
	*pause = e == 0;
	return 0;
}

int api_json_parse_vm_state(const char *body, size_t len, bool *pause, char *err, size_t errlen)
{
	PARSE_BODY(body, len, err, errlen, parse_vm_obj(&c, obj, pause));
}

static int parse_snap_create_obj(const struct jctx *c, json_object *obj,
				 struct api_snapshot_create *out)
{
	static const char *const fields[] = { "snapshot_type", "snapshot_path", "mem_file_path",
					      "version", NULL };
	static const char *const types[] = { "Full", "Diff", NULL };
	int rc, type = 0;

	memset(out, 0, sizeof(*out));
	if ((rc = check_fields(c, obj, fields)) ||
	    (rc = get_enum(c, obj, "snapshot_type", false, types, false, &type)) ||
	    (rc = get_string(c, obj, "snapshot_path", true, out->snapshot_path,
			     sizeof(out->snapshot_path), NULL)) ||
	    (rc = get_string(c, obj, "mem_file_path", true, out->mem_file_path,
			     sizeof(out->mem_file_path), NULL)))
		return rc;
	if (type == 1)
		return jfail(c, "\"snapshot_type\": Diff snapshots are not supported by wafer (use Full)");
	if (!out->snapshot_path[0] || !out->mem_file_path[0])
		return jfail(c, "snapshot_path and mem_file_path must not be empty");
	return 0;
}

int api_json_parse_snapshot_create(const char *body, size_t len, struct api_snapshot_create *out,
				   char *err, size_t errlen)
{
	PARSE_BODY(body, len, err, errlen, parse_snap_create_obj(&c, obj, out));
}

static int parse_snap_load_obj(const struct jctx *c, json_object *obj, struct api_snapshot_load *out)
{
	static const char *const fields[] = { "snapshot_path", "mem_file_path", "mem_backend",
		"enable_diff_snapshots", "track_dirty_pages", "resume_vm", "force", "verify", NULL };
	static const char *const be_fields[] = { "backend_type", "backend_path", NULL };
	static const char *const be_types[] = { "File", "Uffd", NULL };
	char where[32] = "mem_backend";
	struct jctx bc = { c->err, c->errlen, where };
	bool has_file = false, diff = false;
	json_object *be;
	int rc, type = 0;

	memset(out, 0, sizeof(*out));
	out->verify = true;     /* a corrupt memory file is refused unless "verify": false */
	if ((rc = check_fields(c, obj, fields)) ||
	    (rc = get_string(c, obj, "snapshot_path", true, out->snapshot_path,
			     sizeof(out->snapshot_path), NULL)) ||
	    (rc = get_string(c, obj, "mem_file_path", false, out->mem_path, sizeof(out->mem_path),
			     &has_file)) ||
	    (rc = get_bool(c, obj, "enable_diff_snapshots", false, &diff)) ||
	    (rc = get_bool(c, obj, "resume_vm", false, &out->resume_vm)) ||
	    (rc = get_bool(c, obj, "force", false, &out->force)) ||
	    (rc = get_bool(c, obj, "verify", false, &out->verify)))
		return rc;
	if (diff)
		return jfail(c, "\"enable_diff_snapshots\": not supported by wafer");
	be = get_field(obj, "mem_backend");
	if (be && has_file)
		return jfail(c, "give either mem_backend or mem_file_path, not both");
	if (!be && !has_file)
		return jfail(c, "missing required field \"mem_backend\"");
	if (be) {
		if ((rc = check_fields(&bc, be, be_fields)) ||
		    (rc = get_enum(&bc, be, "backend_type", true, be_types, false, &type)) ||
		    (rc = get_string(&bc, be, "backend_path", true, out->mem_path,
				     sizeof(out->mem_path), NULL)))
			return rc;
		if (type == 1)
			return jfail(&bc, "\"backend_type\": Uffd is not supported by wafer (use File)");
	}
	if (!out->snapshot_path[0] || !out->mem_path[0])
		return jfail(c, "the snapshot and memory paths must not be empty");
	return 0;
}

int api_json_parse_snapshot_load(const char *body, size_t len, struct api_snapshot_load *out,
				 char *err, size_t errlen)
{
	PARSE_BODY(body, len, err, errlen, parse_snap_load_obj(&c, obj, out));
}

static int parse_migrate_obj(const struct jctx *c, json_object *obj, struct api_migrate_params *out)
{
	static const char *const fields[] = { "url", "downtime_ms", "timeout_s", "auto_converge",
					      "max_bandwidth", NULL };
	int rc;

	memset(out, 0, sizeof(*out));
	out->auto_converge = true;
	if ((rc = check_fields(c, obj, fields)) ||
	    (rc = get_string(c, obj, "url", true, out->url, sizeof(out->url), NULL)) ||
	    (rc = get_uint(c, obj, "downtime_ms", false, 1, 60000, &out->downtime_ms, NULL)) ||
	    (rc = get_uint(c, obj, "timeout_s", false, 1, 86400, &out->timeout_s, NULL)) ||
	    (rc = get_bool(c, obj, "auto_converge", false, &out->auto_converge)) ||
	    (rc = get_uint(c, obj, "max_bandwidth", false, 0, TOKEN_MAX, &out->max_bandwidth, NULL)))
		return rc;
	if (strncmp(out->url, "tcp:", 4) && strncmp(out->url, "unix:", 5))
		return jfail(c, "\"url\": expected tcp:HOST:PORT or unix:PATH, got \"%.200s\"",
			     out->url);
	return 0;
}

int api_json_parse_migrate(const char *body, size_t len, struct api_migrate_params *out,
			   char *err, size_t errlen)
{
	PARSE_BODY(body, len, err, errlen, parse_migrate_obj(&c, obj, out));
}

int api_json_render_migrate(const struct api_migrate_status *st, char **out)
{
	json_object *o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "state", json_object_new_string(st->state));
	json_object_object_add(o, "url", json_object_new_string(st->url));
	json_object_object_add(o, "round", json_object_new_int64(st->round));
	json_object_object_add(o, "bytes_transferred", json_object_new_int64((int64_t)st->bytes_transferred));
	json_object_object_add(o, "bytes_remaining", json_object_new_int64((int64_t)st->bytes_remaining));
	json_object_object_add(o, "dirty_rate", json_object_new_int64((int64_t)st->dirty_rate));
	json_object_object_add(o, "bandwidth", json_object_new_int64((int64_t)st->bandwidth));
	json_object_object_add(o, "throttle_pct", json_object_new_int64(st->throttle_pct));
	json_object_object_add(o, "expected_downtime_ms", json_object_new_double(st->expected_downtime_ms));
	json_object_object_add(o, "downtime_ms", json_object_new_double(st->downtime_ms));
	json_object_object_add(o, "total_ms", json_object_new_double(st->total_ms));
	json_object_object_add(o, "error", json_object_new_string(st->error));
	*out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return *out ? 0 : -ENOMEM;
}

/* Firecracker config-file sections wafer does not implement: an error when
 * given, but a null (as GET /vm/config prints them) is accepted. */
static const char *const unsupported_sections[] = { "balloon", "vsock", "mmds-config",
	"cpu-config", "pmem", "serial", "memory-hotplug", NULL };

static int parse_config_obj(const struct jctx *c, json_object *obj, struct api_config *cfg)
{
	static const char *const fields[] = { "boot-source", "drives", "machine-config",
		"network-interfaces", "logger", "metrics", "entropy", "balloon", "vsock",
		"mmds-config", "cpu-config", "pmem", "serial", "memory-hotplug", NULL };
	char where[64], msg[API_ERR_MAX];
	struct jctx sc;
	json_object *v;
	int rc;

	api_config_init(cfg);
	if ((rc = check_fields(c, obj, fields)))
		return rc;
	for (const char *const *s = unsupported_sections; *s; s++)
		if (get_field(obj, *s))
			return jfail(c, "\"%s\": not supported by wafer", *s);

	sc = (struct jctx){ c->err, c->errlen, where };
	if ((v = get_field(obj, "machine-config"))) {
		snprintf(where, sizeof(where), "machine-config");
		if ((rc = parse_machine_obj(&sc, v, false, &cfg->machine)))
			return rc;
	}
	if ((v = get_field(obj, "boot-source"))) {
		struct api_boot_source b;
		snprintf(where, sizeof(where), "boot-source");
		if ((rc = parse_boot_obj(&sc, v, &b)))
			return rc;
		if ((rc = api_config_put_boot(cfg, &b, msg, sizeof(msg)))) {
			jfail(&sc, "%s", msg);
			return rc;
		}
	}
	if ((v = get_field(obj, "drives"))) {
		snprintf(where, sizeof(where), "drives");
		if (!json_object_is_type(v, json_type_array))
			return jfail(&sc, "expected an array, got %s", jtype(v));
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			struct api_drive d;
			snprintf(where, sizeof(where), "drives[%zu]", i);
			if ((rc = parse_drive_obj(&sc, json_object_array_get_idx(v, i), NULL, &d)))
				return rc;
			for (unsigned j = 0; j < cfg->ndrives; j++)
				if (!strcmp(cfg->drives[j].drive_id, d.drive_id))
					return jfail(&sc, "duplicate drive_id \"%s\"", d.drive_id);
			if ((rc = api_config_put_drive(cfg, &d, msg, sizeof(msg)))) {
				jfail(&sc, "%s", msg);
				return rc;
			}
		}
	}
	if ((v = get_field(obj, "network-interfaces"))) {
		snprintf(where, sizeof(where), "network-interfaces");
		if (!json_object_is_type(v, json_type_array))
			return jfail(&sc, "expected an array, got %s", jtype(v));
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			struct api_net n;
			snprintf(where, sizeof(where), "network-interfaces[%zu]", i);
			if ((rc = parse_net_obj(&sc, json_object_array_get_idx(v, i), NULL, &n)))
				return rc;
			for (unsigned j = 0; j < cfg->nnets; j++)
				if (!strcmp(cfg->nets[j].iface_id, n.iface_id))
					return jfail(&sc, "duplicate iface_id \"%s\"", n.iface_id);
			if ((rc = api_config_put_net(cfg, &n, msg, sizeof(msg)))) {
				jfail(&sc, "%s", msg);
				return rc;
			}
		}
	}
	if ((v = get_field(obj, "logger"))) {
		snprintf(where, sizeof(where), "logger");
		if ((rc = parse_logger_obj(&sc, v, &cfg->logger)))
			return rc;
	}
	if ((v = get_field(obj, "metrics"))) {
		snprintf(where, sizeof(where), "metrics");
		if ((rc = parse_metrics_obj(&sc, v, &cfg->metrics)))
			return rc;
	}
	if ((v = get_field(obj, "entropy"))) {
		snprintf(where, sizeof(where), "entropy");
		if ((rc = parse_entropy_obj(&sc, v, &cfg->entropy)))
			return rc;
	}
	return 0;
}

int api_json_parse_config(const char *text, size_t len, struct api_config *cfg,
			  char *err, size_t errlen)
{
	PARSE_BODY(text, len, err, errlen, parse_config_obj(&c, obj, cfg));
}

int api_config_load_file(const char *path, struct api_config *cfg, char *err, size_t errlen)
{
	char msg[API_ERR_MAX];
	uint8_t *buf;
	size_t got;
	int rc = file_read_all(path, CONFIG_FILE_MAX, &buf, &got, msg, sizeof(msg));

	if (rc) {
		snprintf(err, errlen, "%s: %s", path, msg);
		return rc;
	}
	char *text = (char *)buf;
	rc = api_json_parse_config(text, got, cfg, msg, sizeof(msg));
	if (!rc && !cfg->boot.present) {
		rc = -EINVAL;
		snprintf(msg, sizeof(msg), "\"boot-source\": required to start the VM");
	}
	if (rc)
		snprintf(err, errlen, "%s: %s", path, msg);
	free(text);
	return rc;
}


/* ---- rendering ---- */

static int render(json_object *o, char **out)
{
	const char *s;

	*out = NULL;
	if (!o)
		return -ENOMEM;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s)
		*out = strdup(s);
	json_object_put(o);
	return *out ? 0 : -ENOMEM;
}

static void add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static void add_u64(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static void add_bool(json_object *o, const char *k, bool v)
{
	json_object_object_add(o, k, json_object_new_boolean(v));
}

int api_json_render_instance(const char *id, enum api_vm_state state, char **out)
{
	json_object *o = json_object_new_object();

	if (o) {
		add_str(o, "id", id);
		add_str(o, "state", api_state_name(state));
		add_str(o, "vmm_version", WAFER_VERSION);
		add_str(o, "app_name", "wafer");
	}
	return render(o, out);
}

/* Clients read firecracker_version; wafer reports its own version there. */
int api_json_render_version(char **out)
{
	json_object *o = json_object_new_object();

	if (o)
		add_str(o, "firecracker_version", WAFER_VERSION);
	return render(o, out);
}

static json_object *machine_obj(const struct api_machine *m)
{
	static const char *const huge[] = { "None", "Transparent", "2M" };
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	add_u64(o, "vcpu_count", m->vcpu_count);
	add_u64(o, "mem_size_mib", m->mem_size_mib);
	add_bool(o, "smt", m->smt);
	add_bool(o, "track_dirty_pages", m->track_dirty_pages);
	add_str(o, "huge_pages", huge[m->huge_pages]);
	if (m->cpu_template[0])
		add_str(o, "cpu_template", m->cpu_template);
	return o;
}

int api_json_render_machine(const struct api_machine *m, char **out)
{
	return render(machine_obj(m), out);
}

static json_object *bucket_obj(const struct api_token_bucket *b)
{
	json_object *o = json_object_new_object();

	if (o) {
		add_u64(o, "size", b->size);
		add_u64(o, "one_time_burst", b->one_time_burst);
		add_u64(o, "refill_time", b->refill_time_ms);
	}
	return o;
}

static void add_limiter(json_object *o, const char *k, const struct api_rate_limiter *rl)
{
	if (!rl->present)
		return;
	json_object *l = json_object_new_object();
	if (!l)
		return;
	if (rl->bandwidth.present)
		json_object_object_add(l, "bandwidth", bucket_obj(&rl->bandwidth));
	if (rl->ops.present)
		json_object_object_add(l, "ops", bucket_obj(&rl->ops));
	json_object_object_add(o, k, l);
}

static json_object *drive_obj(const struct api_drive *d)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	add_str(o, "drive_id", d->drive_id);
	add_str(o, "path_on_host", d->path_on_host);
	add_bool(o, "is_root_device", d->is_root_device);
	add_bool(o, "is_read_only", d->is_read_only);
	if (d->partuuid[0])
		add_str(o, "partuuid", d->partuuid);
	add_str(o, "cache_type", d->cache_type == API_CACHE_WRITEBACK ? "Writeback" : "Unsafe");
	add_str(o, "io_engine", d->io_engine == API_IO_ASYNC ? "Async" : "Sync");
	add_limiter(o, "rate_limiter", &d->rate_limiter);
	return o;
}

static json_object *net_obj(const struct api_net *n)
{
	json_object *o = json_object_new_object();
	char mac[18];

	if (!o)
		return NULL;
	add_str(o, "iface_id", n->iface_id);
	add_str(o, "host_dev_name", n->host_dev_name);
	if (n->has_guest_mac) {
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->guest_mac[0],
			 n->guest_mac[1], n->guest_mac[2], n->guest_mac[3], n->guest_mac[4],
			 n->guest_mac[5]);
		add_str(o, "guest_mac", mac);
	}
	if (n->mtu)
		add_u64(o, "mtu", n->mtu);
	add_limiter(o, "rx_rate_limiter", &n->rx_rate_limiter);
	add_limiter(o, "tx_rate_limiter", &n->tx_rate_limiter);
	return o;
}

int api_json_render_config(const struct api_config *cfg, char **out)
{
	json_object *o = json_object_new_object(), *a, *b;

	if (!o)
		return -ENOMEM;
	for (const char *const *s = unsupported_sections; *s; s++)
		json_object_object_add(o, *s, NULL);

	if (cfg->boot.present) {
		b = json_object_new_object();
		if (b) {
			add_str(b, "kernel_image_path", cfg->boot.kernel_image_path);
			if (cfg->boot.initrd_path[0])
				add_str(b, "initrd_path", cfg->boot.initrd_path);
			if (cfg->boot.has_boot_args)
				add_str(b, "boot_args", cfg->boot.boot_args);
		}
		json_object_object_add(o, "boot-source", b);
	} else {
		json_object_object_add(o, "boot-source", NULL);
	}
	json_object_object_add(o, "machine-config", machine_obj(&cfg->machine));

	a = json_object_new_array();
	for (unsigned i = 0; a && i < cfg->ndrives; i++)
		json_object_array_add(a, drive_obj(&cfg->drives[i]));
	json_object_object_add(o, "drives", a);
	a = json_object_new_array();
	for (unsigned i = 0; a && i < cfg->nnets; i++)
		json_object_array_add(a, net_obj(&cfg->nets[i]));
	json_object_object_add(o, "network-interfaces", a);

	b = NULL;
	if (cfg->logger.present && (b = json_object_new_object())) {
		if (cfg->logger.log_path[0])
			add_str(b, "log_path", cfg->logger.log_path);
		add_str(b, "level", log_levels[cfg->logger.level]);
		add_bool(b, "show_level", cfg->logger.show_level);
		add_bool(b, "show_log_origin", cfg->logger.show_log_origin);
		if (cfg->logger.module[0])
			add_str(b, "module", cfg->logger.module);
	}
	json_object_object_add(o, "logger", b);

	b = NULL;
	if (cfg->metrics.present && (b = json_object_new_object()))
		add_str(b, "metrics_path", cfg->metrics.metrics_path);
	json_object_object_add(o, "metrics", b);

	b = NULL;
	if (cfg->entropy.present && (b = json_object_new_object()))
		add_limiter(b, "rate_limiter", &cfg->entropy.rate_limiter);
	json_object_object_add(o, "entropy", b);
	return render(o, out);
}

int api_json_render_fault(const char *msg, char **out)
{
	json_object *o = json_object_new_object();

	if (o)
		add_str(o, "fault_message", msg);
	return render(o, out);
}
