/* `wafer migrate NAME URL`: start a live migration of VM NAME to a wafer
 * waiting with `wafer run --incoming URL` (PUT /migrate), follow it with a
 * progress line (GET /migrate), cancel it on Ctrl-C (PUT /migrate/cancel). */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "vmm/log.h"
#include "vmm/parse.h"

static const char migrate_usage[] =
"Usage: wafer migrate NAME URL [options]\n"
"\n"
"Move running VM NAME to the wafer waiting at URL (started there with\n"
"wafer run --incoming URL). Guest memory is copied while the guest runs, in\n"
"rounds that resend what it dirtied (KVM dirty logging), until the rest fits\n"
"in the downtime target at the measured bandwidth; then the VM pauses, the\n"
"last pages and the vCPU/device state go over, and the destination confirms\n"
"before this side stops. On any failure the VM runs on here. Disks must be\n"
"reachable at the same paths on the destination (shared storage); taps with\n"
"the same names must exist there.\n"
"\n"
"URL: tcp:HOST:PORT or unix:PATH\n"
"\n"
"Options:\n"
"  --downtime-ms N       downtime target (default 20)\n"
"  --timeout S           give up (and resume here) after S seconds of pre-copy\n"
"                        (default 600)\n"
"  --max-bandwidth SIZE  limit the link, bytes/s (e.g. 100M)\n"
"  --no-auto-converge    never throttle the vCPUs (a guest that dirties faster\n"
"                        than the link then times out instead)\n"
"  --json                print the final status as JSON\n";

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static json_object *migrate_status(const char *name)
{
	struct client_reply r;
	if (vmctl_call(name, "GET", "/migrate", NULL, 200, &r))
		return NULL;
	json_object *o = json_tokener_parse(r.body);
	client_reply_free(&r);
	return o;
}

static int64_t jint(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

static double jdbl(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0;
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

int cmd_migrate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "downtime-ms", required_argument, NULL, 'd' },
		{ "timeout", required_argument, NULL, 't' },
		{ "max-bandwidth", required_argument, NULL, 'b' },
		{ "no-auto-converge", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t downtime = 20, timeout = 600, bw = 0;
	bool converge = true, json = false, tty = isatty(STDOUT_FILENO);
	struct client_reply r;
	char last_state[32] = "";
	int opt, status = 1;

	optind = 1;
	opterr = 0;
	/* Options may follow the positionals, as in `wafer set` (no '+':
	 * getopt permutes; "--" still ends the options). */
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			if (parse_uint(optarg, 1, 60000, &downtime)) {
				log_error("--downtime-ms %s: expected 1..60000", optarg);
				return 1;
			}
			break;
		case 't':
			if (parse_uint(optarg, 1, 86400, &timeout)) {
				log_error("--timeout %s: expected 1..86400 seconds", optarg);
				return 1;
			}
			break;
		case 'b':
			if (parse_size(optarg, &bw) || bw == 0) {
				log_error("--max-bandwidth %s: expected a size such as 100M", optarg);
				return 1;
			}
			break;
		case 'n': converge = false; break;
		case 'j': json = true; break;
		case 'h': fputs(migrate_usage, stdout); return 0;
		case ':':
			log_error("%s: missing argument (see wafer migrate --help)", argv[optind - 1]);
			return 1;
		default:
			log_error("%s: unknown option (see wafer migrate --help)", argv[optind - 1]);
			return 1;
		}
	}
	if (optind != argc - 2) {
		log_error("expected NAME and URL (see wafer migrate --help)");
		return 1;
	}
	const char *name = argv[optind], *url = argv[optind + 1];
	json_object *req = json_object_new_object();
	json_object_object_add(req, "url", json_object_new_string(url));
	json_object_object_add(req, "downtime_ms", json_object_new_int64((int64_t)downtime));
	json_object_object_add(req, "timeout_s", json_object_new_int64((int64_t)timeout));
	json_object_object_add(req, "auto_converge", json_object_new_boolean(converge));
	if (bw)
		json_object_object_add(req, "max_bandwidth", json_object_new_int64((int64_t)bw));
	int rc = vmctl_call(name, "PUT", "/migrate",
			    json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN), 204, &r);
	json_object_put(req);
	if (rc)
		return 1;
	client_reply_free(&r);

	struct sigaction sa = { .sa_handler = on_sigint };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	bool cancelled = false;
	time_t last_print = 0;
	for (;;) {
		if (interrupted && !cancelled) {
			cancelled = true;
			if (!vmctl_call(name, "PUT", "/migrate/cancel", NULL, 204, &r))
				client_reply_free(&r);
		}
		json_object *o = migrate_status(name);
		if (!o) {
			/* The source exits right after a completed hand-over; if
			 * we missed the last status, say what we know. */
			log_error("%s: the VM's API went away during '%s'; check the destination",
				  name, last_state);
			return 1;
		}
		const char *state = jstr(o, "state");
		snprintf(last_state, sizeof(last_state), "%s", state);
		bool done = !strcmp(state, "completed") || !strcmp(state, "failed");
		time_t now = time(NULL);
		if (!json && (done || tty || now != last_print)) {
			last_print = now;
			printf("%s%-10s round %-3lld sent %6lld MiB  left %7lld KiB  dirty %7lld KiB/s  "
			       "link %5lld MiB/s  throttle %2lld%%  expected downtime %.1f ms%s",
			       tty ? "\r" : "", state, (long long)jint(o, "round"),
			       (long long)(jint(o, "bytes_transferred") >> 20),
			       (long long)(jint(o, "bytes_remaining") >> 10),
			       (long long)(jint(o, "dirty_rate") >> 10),
			       (long long)(jint(o, "bandwidth") >> 20),
			       (long long)jint(o, "throttle_pct"), jdbl(o, "expected_downtime_ms"),
			       tty ? "" : "\n");
			fflush(stdout);
		}
		if (done) {
			if (tty && !json)
				printf("\n");
			if (json)
				printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
			else if (!strcmp(state, "completed"))
				printf("%s: migrated to %s in %d rounds, %.1f MiB, downtime %.2f ms, "
				       "total %.0f ms\n", name, url, (int)jint(o, "round") + 1,
				       (double)jint(o, "bytes_transferred") / 1048576.0,
				       jdbl(o, "downtime_ms"), jdbl(o, "total_ms"));
			else
				log_error("%s: migration to %s failed (the VM runs on here): %s", name,
					  url, jstr(o, "error"));
			status = !strcmp(state, "completed") ? 0 : 1;
			json_object_put(o);
			break;
		}
		json_object_put(o);
		usleep(100000);
	}
	return status;
}
