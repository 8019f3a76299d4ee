/* libFuzzer target: the control API's request handling (Firecracker swagger
 * resources, pre/post-boot state machine) through api_router_handle with a
 * fake controller, as a client on the API socket drives it.
 * Input: requests separated by NUL bytes (at most 16); each is
 * "METHOD PATH\n" followed by the body. A fresh router per input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "vmm/log.h"

#define MAX_REQUESTS 16

static enum api_vm_state fake_state = API_STATE_NOT_STARTED;

static int c_start(void *o, const struct api_config *cfg, char *err, size_t errlen)
{
	(void)o; (void)err; (void)errlen;
	/* Touch what the VMM would read. */
	for (unsigned i = 0; i < cfg->ndrives; i++)
		if (!memchr(cfg->drives[i].path_on_host, 0, sizeof(cfg->drives[i].path_on_host)))
			abort();
	fake_state = API_STATE_RUNNING;
	return 0;
}
static int c_pause(void *o, char *err, size_t errlen)
{
	(void)o; (void)err; (void)errlen;
	fake_state = API_STATE_PAUSED;
	return 0;
}
static int c_resume(void *o, char *err, size_t errlen)
{
	(void)o; (void)err; (void)errlen;
	fake_state = API_STATE_RUNNING;
	return 0;
}
static int c_ok(void *o, char *err, size_t errlen)
{
	(void)o; (void)err; (void)errlen;
	return 0;
}
static int c_metrics(void *o, struct api_metrics *m)
{
	(void)o;
	m->uptime_ms = 1;
	m->nvcpus = m->vcpu_cap;
	for (unsigned v = 0; v < m->vcpu_cap; v++)
		m->vcpu_exits[v][API_EXIT_IO] = v;
	m->ndevices = 1;
	strcpy(m->devices[0].device, "rootfs");
	strcpy(m->devices[0].kind, "block");
	strcpy(m->devices[0].name, "read_bytes");
	return 0;
}
static int c_set_logger(void *o, const struct api_logger *l, char *err, size_t errlen)
{
	(void)o; (void)l; (void)err; (void)errlen;
	return 0;
}
static int c_set_metrics(void *o, const struct api_metrics_config *m, char *err, size_t errlen)
{
	(void)o; (void)m; (void)err; (void)errlen;
	return 0;
}

static const struct api_controller_ops ops = {
	.start = c_start, .pause = c_pause, .resume = c_resume, .send_ctrl_alt_del = c_ok,
	.flush_metrics = c_ok, .get_metrics = c_metrics, .set_logger = c_set_logger,
	.set_metrics = c_set_metrics,
};

static int c_snap_create(void *o, const struct api_snapshot_create *p, char *err, size_t errlen)
{
	(void)o; (void)p; (void)err; (void)errlen;
	return 0;
}

static int c_snap_load(void *o, const struct api_snapshot_load *p, char *err, size_t errlen)
{
	(void)o; (void)err; (void)errlen;
	fake_state = p->resume_vm ? API_STATE_RUNNING : API_STATE_PAUSED;
	return 0;
}

static const struct api_snapshot_ops snap_ops = { c_snap_create, c_snap_load };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	log_threshold = LOG_ERROR;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_controller ctrl = { .ops = &ops, .snapshot = &snap_ops };
	struct api_router *r;

	fake_state = API_STATE_NOT_STARTED;
	if (api_router_create(&r, &ctrl, "fuzz-vm"))
		return 0;
	const uint8_t *p = data, *end = data + size;
	for (unsigned n = 0; n < MAX_REQUESTS && p < end; n++) {
		const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
		const uint8_t *req_end = nul ? nul : end;
		const uint8_t *nl = memchr(p, '\n', (size_t)(req_end - p));
		const uint8_t *line_end = nl ? nl : req_end;
		const uint8_t *sp = memchr(p, ' ', (size_t)(line_end - p));
		const uint8_t *method_end = sp ? sp : line_end;
		const uint8_t *path = sp ? sp + 1 : line_end;

		char *method = strndup((const char *)p, (size_t)(method_end - p));
		char *path_s = strndup((const char *)path, (size_t)(line_end - path));
		const uint8_t *body = nl ? nl + 1 : req_end;
		size_t body_len = (size_t)(req_end - body);
		/* The HTTP layer hands over an exact-size copy (no NUL inside). */
		char *body_s = body_len ? malloc(body_len) : NULL;
		if (method && path_s && (body_s || !body_len)) {
			struct api_response resp;
			if (body_len)
				memcpy(body_s, body, body_len);
			api_router_handle(r, method, path_s, body_s, body_len, &resp);
			if (resp.status < 200 || resp.status > 599)
				abort();
			api_response_release(&resp);
		}
		free(method);
		free(path_s);
		free(body_s);
		p = nul ? nul + 1 : end;
	}
	api_router_destroy(r);
	return 0;
}
