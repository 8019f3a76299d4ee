/* The control API: Firecracker-compatible REST resources (swagger
 * src/firecracker/swagger/firecracker.yaml), the pre-boot config they build up,
 * the VM state machine, and the controller interface the VMM implements. */
#ifndef WAFER_API_API_H
#define WAFER_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/vm.h"   /* VM_MAX_*: the VM's limits are the API's */

/* Limits. Ids follow Firecracker's rule (letters, digits, '_', '-'). */
#define API_ID_MAX          64
#define API_PATH_MAX        4096      /* PATH_MAX, including the NUL */
#define API_BOOT_ARGS_MAX   4096      /* the boot protocol caps it lower; start() checks */
#define API_TEMPLATE_MAX    256
#define API_IFNAME_MAX      16        /* IFNAMSIZ, including the NUL */
#define API_BODY_MAX        (64 * 1024)    /* larger request bodies get 413 */
#define API_ERR_MAX         512

enum api_vm_state { API_STATE_NOT_STARTED, API_STATE_RUNNING, API_STATE_PAUSED };

/* Firecracker TokenBucket: size tokens, refilled over refill_time ms. */
struct api_token_bucket {
	bool present;
	uint64_t size, one_time_burst, refill_time_ms;
};

struct api_rate_limiter {
	bool present;
	struct api_token_bucket bandwidth, ops;
};

enum api_huge_pages { API_HUGE_NONE, API_HUGE_TRANSPARENT, API_HUGE_2M };

struct api_machine {
	unsigned vcpu_count;          /* 1..VM_MAX_VCPUS; 1 or even with smt */
	uint64_t mem_size_mib;        /* VM_MIN_MEM_MIB..VM_MAX_MEM_MIB */
	bool smt, track_dirty_pages;
	enum api_huge_pages huge_pages;
	char cpu_template[API_TEMPLATE_MAX]; /* "" = default (host), "host", "baseline" or a JSON path */
};

struct api_boot_source {
	bool present;
	char kernel_image_path[API_PATH_MAX];
	char initrd_path[API_PATH_MAX];     /* "" = none */
	char boot_args[API_BOOT_ARGS_MAX];
	bool has_boot_args;                 /* false: the VMM's default command line */
};

enum api_cache_type { API_CACHE_UNSAFE, API_CACHE_WRITEBACK };
enum api_io_engine { API_IO_SYNC, API_IO_ASYNC };

struct api_drive {
	char drive_id[API_ID_MAX + 1];
	char path_on_host[API_PATH_MAX];
	char partuuid[64];                  /* "" = none; used only for the root device */
	bool is_root_device, is_read_only;
	enum api_cache_type cache_type;
	enum api_io_engine io_engine;
	struct api_rate_limiter rate_limiter;
};

struct api_net {
	char iface_id[API_ID_MAX + 1];
	char host_dev_name[API_IFNAME_MAX];
	bool has_guest_mac;
	uint8_t guest_mac[6];
	unsigned mtu;                       /* 0 = not advertised */
	struct api_rate_limiter rx_rate_limiter, tx_rate_limiter;
};

enum api_log_level { API_LOG_OFF, API_LOG_ERROR, API_LOG_WARNING, API_LOG_INFO,
		     API_LOG_DEBUG, API_LOG_TRACE };

struct api_logger {
	bool present;
	char log_path[API_PATH_MAX];        /* "" = stderr */
	enum api_log_level level;
	bool show_level, show_log_origin;
	char module[128];
};

struct api_metrics_config {
	bool present;
	char metrics_path[API_PATH_MAX];
};

struct api_entropy {
	bool present;
	struct api_rate_limiter rate_limiter;
};

/* wafer extension: PATCH /machine-config on a running VM changes its CPU
 * weight (Xen credit2 scale), CPU cap and memory limit (its cgroups); the
 * ranges are VM_CPU_WEIGHT_MAX, VM_CPU_CAP_MAX and VM_MEM_LIMIT_MIN_MIB. */
struct api_resources {
	bool has_cpu_weight, has_cpu_cap, has_memory_limit;
	unsigned cpu_weight;           /* 1..VM_CPU_WEIGHT_MAX */
	unsigned cpu_cap;              /* percent of one CPU; 0 = no cap */
	uint64_t memory_limit_mib;     /* 0 = no limit, else >= VM_MEM_LIMIT_MIN_MIB */
};

/* Everything the API (or a config file) accumulates before InstanceStart. The
 * VMM maps it to its vm_config in start(); strings stay valid while the VM runs. */
struct api_config {
	struct api_machine machine;
	struct api_boot_source boot;
	unsigned ndrives, nnets;
	struct api_drive drives[VM_MAX_DISKS];
	struct api_net nets[VM_MAX_NETS];
	struct api_logger logger;
	struct api_metrics_config metrics;
	struct api_entropy entropy;
};

/* PUT /snapshot/create (Firecracker's SnapshotCreateParams; only "Full"). */
struct api_snapshot_create {
	char snapshot_path[API_PATH_MAX];
	char mem_file_path[API_PATH_MAX];
};

/* PUT /snapshot/load (SnapshotLoadParams: mem_backend File or the older
 * mem_file_path). force and verify are wafer's: load although a disk
 * changed; check the memory file's CRC first (default true). */
struct api_snapshot_load {
	char snapshot_path[API_PATH_MAX];
	char mem_path[API_PATH_MAX];
	bool resume_vm, force;
	bool verify;            /* "verify", default true; --restore-no-verify */
};

/* Firecracker's defaults: 1 vCPU, 128 MiB, no SMT, no template, nothing else. */
void api_config_init(struct api_config *cfg);
/* Add or replace (same id) a resource, enforcing the cross-resource rules:
 * one root drive, unique host_dev_name and guest_mac, the count limits, and
 * that the host files exist. 0 or -errno with err filled. */
int api_config_put_boot(struct api_config *cfg, const struct api_boot_source *b, char *err, size_t errlen);
int api_config_put_drive(struct api_config *cfg, const struct api_drive *d, char *err, size_t errlen);
int api_config_put_net(struct api_config *cfg, const struct api_net *n, char *err, size_t errlen);
/* Firecracker's --config-file JSON (keys boot-source, drives, machine-config,
 * network-interfaces, logger, metrics, entropy) into cfg: the whole file is
 * validated like the equivalent API calls. For `wafer run --config FILE`. */
int api_config_load_file(const char *path, struct api_config *cfg, char *err, size_t errlen);

/* Counters the VMM reports for GET /metrics (Prometheus text format 0.0.4). */
enum api_exit_reason {
	API_EXIT_IO, API_EXIT_MMIO, API_EXIT_HLT, API_EXIT_SHUTDOWN, API_EXIT_SYSTEM_EVENT,
	API_EXIT_INTR, API_EXIT_IRQ_WINDOW, API_EXIT_FAIL_ENTRY, API_EXIT_INTERNAL_ERROR,
	API_EXIT_OTHER, API_EXIT__COUNT
};

struct api_device_counter {
	char device[API_ID_MAX + 1];   /* drive_id / iface_id / "serial0" ... */
	char kind[16];                 /* "block", "net", "rng", "serial" ... */
	char name[48];                 /* [a-z0-9_]: becomes wafer_device_<name>_total */
	uint64_t value;
};

#define API_MAX_DEVICE_COUNTERS 512

struct api_metrics {
	enum api_vm_state state;
	uint64_t uptime_ms;
	unsigned nvcpus;               /* entries used in vcpu_exits (<= vcpu_cap) */
	unsigned vcpu_cap;             /* set by the caller: room in vcpu_exits */
	uint64_t (*vcpu_exits)[API_EXIT__COUNT];
	unsigned ndevices;             /* <= API_MAX_DEVICE_COUNTERS */
	struct api_device_counter devices[API_MAX_DEVICE_COUNTERS];
};

/* Prometheus text for m into a malloc'd NUL-terminated string. 0 or -ENOMEM. */
int api_metrics_render(const struct api_metrics *m, char **text, size_t *len);

/* The VMM side. Every op runs on the API thread with the router's lock held,
 * one at a time. err receives a one-line reason when an op fails; the router
 * returns it as the fault_message of a 400. */
struct api_controller_ops {
	/* Build and start the VM from cfg. On failure nothing may be left behind:
	 * the client can fix the config and send InstanceStart again. */
	int (*start)(void *opaque, const struct api_config *cfg, char *err, size_t errlen);
	int (*pause)(void *opaque, char *err, size_t errlen);
	int (*resume)(void *opaque, char *err, size_t errlen);
	int (*send_ctrl_alt_del)(void *opaque, char *err, size_t errlen);
	int (*flush_metrics)(void *opaque, char *err, size_t errlen);
	/* Fill m (state is prefilled by the router, vcpu_exits has vcpu_cap rows). */
	int (*get_metrics)(void *opaque, struct api_metrics *m);
	/* Optional: the VMM's view once started (a VM can pause itself for a
	 * snapshot); NULL = the router's own state machine is the truth. */
	enum api_vm_state (*get_state)(void *opaque);
	/* Optional: apply a logger/metrics config to a running VM. NULL = those
	 * PUTs are pre-boot only. */
	int (*set_logger)(void *opaque, const struct api_logger *l, char *err, size_t errlen);
	int (*set_metrics)(void *opaque, const struct api_metrics_config *m, char *err, size_t errlen);
	/* Optional: the serial console over the API socket (GET /console with
	 * an HTTP/1.1 upgrade). check: may a client attach now (0 or -errno
	 * with err)? attach: relay fd <-> COM1 until either side ends, then
	 * call done(arg) once; -EBUSY when another client holds the console. */
	int (*console_check)(void *opaque, char *err, size_t errlen);
	int (*console_attach)(void *opaque, int fd, void (*done)(void *arg), void *arg);
	/* Optional: change a running device's rate limiters (PATCH /drives/{id},
	 * PATCH /network-interfaces/{id}). Only buckets marked present change
	 * (size 0 turns one off); a limiter not present changes nothing. 0, or
	 * -errno with err. NULL = those PATCHes are refused. */
	int (*update_drive_limiter)(void *opaque, const char *drive_id,
				    const struct api_rate_limiter *rl, char *err, size_t errlen);
	int (*update_net_limiter)(void *opaque, const char *iface_id,
				  const struct api_rate_limiter *rx, const struct api_rate_limiter *tx,
				  char *err, size_t errlen);
	/* Optional: change the running VM's resource limits (PATCH
	 * /machine-config after InstanceStart, a wafer extension). Only the
	 * fields marked has_* change. 0, or -errno with err. NULL = such
	 * PATCHes are refused. */
	int (*update_resources)(void *opaque, const struct api_resources *res,
				char *err, size_t errlen);
	/* Optional: the running VM's config when the VMM built it without the
	 * router's (a snapshot load, an incoming migration), so GET /vm/config,
	 * GET /machine-config and the metrics' vCPU count describe it. */
	void (*describe)(void *opaque, struct api_config *out);
};

/* Snapshot ops (optional; NULL = the /snapshot paths answer 400). create:
 * the VM is paused. load: before start, builds the VM from the snapshot
 * (replacing InstanceStart); the router is then started, paused unless
 * resume_vm. */
struct api_snapshot_ops {
	int (*create)(void *opaque, const struct api_snapshot_create *p, char *err, size_t errlen);
	int (*load)(void *opaque, const struct api_snapshot_load *p, char *err, size_t errlen);
};

/* PUT /migrate (wafer's own resource; Firecracker has no live migration). */
struct api_migrate_params {
	char url[API_PATH_MAX];          /* tcp:HOST:PORT or unix:PATH */
	uint64_t downtime_ms;            /* 0: the engine's default (20 ms) */
	uint64_t timeout_s;              /* 0: the engine's default */
	bool auto_converge;              /* default true */
	uint64_t max_bandwidth;          /* bytes/s, 0: unlimited */
};

/* GET /migrate */
struct api_migrate_status {
	const char *state;               /* "none", "setup", "active", ... static */
	char url[API_PATH_MAX];
	unsigned round, throttle_pct;
	uint64_t bytes_transferred, bytes_remaining, dirty_rate, bandwidth;
	double expected_downtime_ms, downtime_ms, total_ms;
	char error[256];
};

/* Migration ops (optional; NULL = /migrate answers 400). start returns once
 * the migration runs in the background; cancel stops it (the VM goes on). */
struct api_migrate_ops {
	int (*start)(void *opaque, const struct api_migrate_params *p, char *err, size_t errlen);
	int (*status)(void *opaque, struct api_migrate_status *st);
	int (*cancel)(void *opaque, char *err, size_t errlen);
};

struct api_controller {
	const struct api_controller_ops *ops;
	void *opaque;
	const struct api_snapshot_ops *snapshot;   /* optional */
	const struct api_migrate_ops *migrate;     /* optional */
};

/* Router: HTTP-free request handling, so the state machine is testable alone. */
struct api_router;

struct api_response {
	int status;                 /* 200, 204, 400, 404, 405, 413, 500 */
	const char *content_type;   /* static string; NULL when there is no body */
	char *body;                 /* malloc'd, NUL-terminated, or NULL */
	size_t len;
};

/* instance_id: GET / "id" (the VM's name); copied. 0 or -errno. */
int api_router_create(struct api_router **out, const struct api_controller *ctrl,
		      const char *instance_id);
void api_router_destroy(struct api_router *r);
/* Thread-safe. method "GET"/"PUT"/"PATCH"...; path without the query string;
 * body may be NULL when len is 0. Always fills resp; free with api_response_release. */
void api_router_handle(struct api_router *r, const char *method, const char *path,
		       const char *body, size_t len, struct api_response *resp);
void api_response_release(struct api_response *resp);
/* Config-file mode: install cfg as if PUT one by one, then InstanceStart. */
/* GET /console: 0 if a console client may attach now, else -errno + err. */
int api_router_console_check(struct api_router *r, char *err, size_t errlen);
int api_router_console_attach(struct api_router *r, int fd, void (*done)(void *), void *arg);
int api_router_start_with(struct api_router *r, const struct api_config *cfg,
			  char *err, size_t errlen);
enum api_vm_state api_router_state(struct api_router *r);
/* The controller built the VM itself (--incoming): the router leaves the
 * pre-boot phase with this state. */
void api_router_mark_started(struct api_router *r, enum api_vm_state s);
/* --restore: load a snapshot as if PUT /snapshot/load. */
int api_router_load_with(struct api_router *r, const struct api_snapshot_load *p,
			 char *err, size_t errlen);
const char *api_state_name(enum api_vm_state s);   /* "Not started", "Running", "Paused" */

/* HTTP server (libmicrohttpd) on a UNIX socket. Requests are served on one
 * internal thread that MHD owns (epoll); the VMM's event loop needs no hook. */
struct api_server;

/* Create the socket at path (parent directories made 0700 if missing, socket
 * 0600; a stale socket nobody listens on is replaced, a live one is -EADDRINUSE)
 * and start serving. thread_init (optional) runs on a short-lived thread
 * that then starts libmicrohttpd, whose thread inherits what thread_init set
 * up (wafer: the API's seccomp filter, in force before the first request);
 * its failure (0 or -errno with err) fails the start. 0 or -errno with err. */
int api_server_start(struct api_server **out, const char *path, struct api_router *r,
		     int (*thread_init)(void *arg, char *err, size_t errlen), void *arg,
		     char *err, size_t errlen);
/* Stop serving, close connections, remove the socket file. */
void api_server_stop(struct api_server *s);

/* VM names: 1..64 of [A-Za-z0-9._-], not starting with '.'. 0 or -EINVAL. */
int api_name_validate(const char *name);
/* $XDG_RUNTIME_DIR/wafer/<name>/api.sock, or /run/wafer/<name>/api.sock as
 * root. 0, -EINVAL (bad name), -ENOENT (no runtime dir), -ENAMETOOLONG. */
int api_socket_default_path(const char *name, char *buf, size_t len);

#endif
