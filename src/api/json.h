/* JSON glue for the control API: request bodies and config files into the
 * typed structs of api.h, and those structs into response bodies (Firecracker
 * swagger definitions). Parsing is strict: unknown fields are errors. */
#ifndef WAFER_API_JSON_H
#define WAFER_API_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "api/api.h"

enum api_action { API_ACTION_INSTANCE_START, API_ACTION_SEND_CTRL_ALT_DEL,
		  API_ACTION_FLUSH_METRICS };

/* Every parser: 0, or -EINVAL with a one-line reason in err naming the field.
 * out is only written on success. */

/* PUT (partial = false: vcpu_count and mem_size_mib required, other fields
 * reset to defaults) or PATCH (partial = true: fields merge into *base). */
int api_json_parse_machine(const char *body, size_t len, const struct api_machine *base,
			   bool partial, struct api_machine *out, char *err, size_t errlen);
/* PATCH /machine-config on a running VM (wafer extension): cpu_weight,
 * cpu_cap, memory_limit_mib, at least one; the other machine-config fields
 * are refused with a message saying they cannot change after start. */
int api_json_parse_resources(const char *body, size_t len, struct api_resources *out,
			     char *err, size_t errlen);
int api_json_parse_boot_source(const char *body, size_t len, struct api_boot_source *out,
			       char *err, size_t errlen);
/* path_id: the {drive_id} / {iface_id} of the URL, which the body must repeat. */
int api_json_parse_drive(const char *body, size_t len, const char *path_id,
			 struct api_drive *out, char *err, size_t errlen);
int api_json_parse_net(const char *body, size_t len, const char *path_id,
		       struct api_net *out, char *err, size_t errlen);
/* Firecracker's PartialDrive / PartialNetworkInterface (PATCH on a running
 * VM): the id, and only path_on_host ("" when absent) and rate_limiter, or
 * rx_rate_limiter and tx_rate_limiter. */
int api_json_parse_drive_patch(const char *body, size_t len, const char *path_id,
			       struct api_drive *out, char *err, size_t errlen);
int api_json_parse_net_patch(const char *body, size_t len, const char *path_id,
			     struct api_net *out, char *err, size_t errlen);
int api_json_parse_logger(const char *body, size_t len, struct api_logger *out,
			  char *err, size_t errlen);
int api_json_parse_metrics(const char *body, size_t len, struct api_metrics_config *out,
			   char *err, size_t errlen);
int api_json_parse_entropy(const char *body, size_t len, struct api_entropy *out,
			   char *err, size_t errlen);
int api_json_parse_action(const char *body, size_t len, enum api_action *out,
			  char *err, size_t errlen);
/* PATCH /vm: *pause = true for "Paused", false for "Resumed". */
int api_json_parse_vm_state(const char *body, size_t len, bool *pause, char *err, size_t errlen);
int api_json_parse_snapshot_create(const char *body, size_t len, struct api_snapshot_create *out,
				   char *err, size_t errlen);
int api_json_parse_snapshot_load(const char *body, size_t len, struct api_snapshot_load *out,
				 char *err, size_t errlen);
int api_json_parse_migrate(const char *body, size_t len, struct api_migrate_params *out,
			   char *err, size_t errlen);
int api_json_render_migrate(const struct api_migrate_status *st, char **out);
/* A whole config file (see api_config_load_file); cfg is reset first. */
int api_json_parse_config(const char *text, size_t len, struct api_config *cfg,
			  char *err, size_t errlen);

/* Drive / interface ids: 1..API_ID_MAX of [A-Za-z0-9_-]. */
bool api_id_valid(const char *id);

/* Response bodies: a malloc'd NUL-terminated string in *out. 0 or -ENOMEM. */
int api_json_render_instance(const char *id, enum api_vm_state state, char **out);
int api_json_render_version(char **out);
int api_json_render_machine(const struct api_machine *m, char **out);
int api_json_render_config(const struct api_config *cfg, char **out);
int api_json_render_fault(const char *msg, char **out);

#endif
