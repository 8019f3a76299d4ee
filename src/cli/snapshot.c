/* `wafer snapshot NAME DIR [--resume]`: pause the VM, have it write DIR/state
 * and DIR/memory (PUT /snapshot/create), then leave it paused or resume it.
 * `wafer run --restore DIR` brings it back. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api/api.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "vmm/log.h"

static const char snapshot_usage[] =
"Usage: wafer snapshot NAME DIR [--resume]\n"
"\n"
"Pause VM NAME and write its complete state to DIR/state (machine config,\n"
"CPUID, vCPU, interrupt controller, timer and device state, disk identities;\n"
"versioned, a CRC-32 per section) and its RAM to DIR/memory (sparse). Each\n"
"file is written to a temporary name and renamed, so DIR never holds half a\n"
"snapshot. DIR is created (mode 0700) if missing. The VM stays paused unless\n"
"--resume; if writing fails, a VM that was running is resumed.\n"
"Restore with: wafer run --restore DIR\n"
"\n"
"Options:\n"
"  --resume   resume the VM once the snapshot is written\n";

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int vm_state_is(const char *name, const char *want)
{
	struct client_reply r;
	json_object *o, *st;
	int is = -1;

	if (vmctl_call(name, "GET", "/", NULL, 200, &r))
		return -1;
	o = json_tokener_parse(r.body);
	if (o && json_object_object_get_ex(o, "state", &st))
		is = !strcmp(json_object_get_string(st), want);
	json_object_put(o);
	client_reply_free(&r);
	return is;
}

int cmd_snapshot(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "resume", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct client_reply r;
	char dir[PATH_MAX], body[3 * PATH_MAX], path[PATH_MAX + 16];
	bool resume = false, we_paused = false;
	json_object *o = NULL;
	int opt, status = 1;

	optind = 1;
	opterr = 0;
	/* Options may follow the positionals, as in `wafer set` (no '+':
	 * getopt permutes; "--" still ends the options). */
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r': resume = true; break;
		case 'h': fputs(snapshot_usage, stdout); return 0;
		default:
			log_error("%s: unknown option (see wafer snapshot --help)", argv[optind - 1]);
			return 1;
		}
	}
	if (optind != argc - 2) {
		log_error("expected NAME and DIR (see wafer snapshot --help)");
		return 1;
	}
	const char *name = argv[optind], *arg = argv[optind + 1];
	if (mkdir(arg, 0700) && errno != EEXIST) {
		log_error("%s: %s", arg, strerror(errno));
		return 1;
	}
	/* The VMM resolves paths against its own working directory. */
	if (!realpath(arg, dir)) {
		log_error("%s: %s", arg, strerror(errno));
		return 1;
	}
	int running = vm_state_is(name, "Running");
	if (running < 0)
		return 1;
	double t0 = now_ms();
	if (running) {
		if (vmctl_call(name, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, &r))
			return 1;
		client_reply_free(&r);
		we_paused = true;
	}
	double t1 = now_ms();
	o = json_object_new_object();
	json_object_object_add(o, "snapshot_type", json_object_new_string("Full"));
	snprintf(path, sizeof(path), "%s/state", dir);
	json_object_object_add(o, "snapshot_path", json_object_new_string(path));
	snprintf(path, sizeof(path), "%s/memory", dir);
	json_object_object_add(o, "mem_file_path", json_object_new_string(path));
	snprintf(body, sizeof(body), "%s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	if (vmctl_call(name, "PUT", "/snapshot/create", body, 204, &r))
		goto out;
	client_reply_free(&r);
	double t2 = now_ms();
	status = 0;
	printf("%s: snapshot in %s (pause %.1f ms, write %.1f ms)\n", name, dir, t1 - t0, t2 - t1);
out:
	if ((resume || (status && we_paused)) &&
	    !vmctl_call(name, "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204, &r))
		client_reply_free(&r);
	json_object_put(o);
	return status;
}
