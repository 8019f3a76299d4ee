/* `wafer ls | pause | resume | stop | stats | set`: act on running VMs by
 * name through their API sockets. Human tables by default, --json for scripts. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "vmm/log.h"
#include "vmm/parse.h"

/* --json / --help / one NAME argument, shared by the by-name commands. */
struct vmctl_args {
	const char *name;
	int json, force;
	unsigned timeout;
};

static int vmctl_parse(int argc, char **argv, const char *usage, int need_name, struct vmctl_args *a)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "force", no_argument, NULL, 'f' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int opt;

	*a = (struct vmctl_args){ .timeout = 30 };
	optind = 1;
	opterr = 0;
	/* No '+': options may follow NAME (wafer stop NAME --force), as users
	 * write them; "--" still ends them. */
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case 'j': a->json = 1; break;
		case 'f': a->force = 1; break;
		case 't':
			if (parse_uint(optarg, 1, 3600, &v)) {
				log_error("--timeout %s: expected 1..3600 seconds", optarg);
				return -1;
			}
			a->timeout = (unsigned)v;
			break;
		case 'h': fputs(usage, stdout); return 1;
		default:
			log_error("%s: unknown option (usage: %s)", argv[optind - 1], usage);
			return -1;
		}
	}
	if (need_name) {
		if (optind != argc - 1) {
			log_error("expected one VM name (usage: %s)", usage);
			return -1;
		}
		a->name = argv[optind];
	} else if (optind != argc) {
		log_error("%s: unexpected argument", argv[optind]);
		return -1;
	}
	return 0;
}

int vmctl_call(const char *name, const char *method, const char *path, const char *body,
		      long want, struct client_reply *r)
{
	char sock[API_PATH_MAX], err[512], fault[512];

	if (client_socket_for(name, sock, sizeof(sock), err, sizeof(err)) ||
	    client_request(sock, method, path, body, r, err, sizeof(err))) {
		log_error("%s", err);
		return -1;
	}
	if (r->status != want) {
		log_error("%s: %s %s: %s", name, method, path, client_fault(r, fault, sizeof(fault)));
		client_reply_free(r);
		return -1;
	}
	return 0;
}

static int vmctl_simple(int argc, char **argv, const char *usage, const char *method,
			const char *path, const char *body)
{
	struct vmctl_args a;
	struct client_reply r;
	int rc = vmctl_parse(argc, argv, usage, 1, &a);
	if (rc)
		return rc > 0 ? 0 : 1;
	if (vmctl_call(a.name, method, path, body, 204, &r))
		return 1;
	client_reply_free(&r);
	return 0;
}

int cmd_pause(int argc, char **argv)
{
	return vmctl_simple(argc, argv, "wafer pause NAME", "PATCH", "/vm", "{\"state\": \"Paused\"}");
}

int cmd_resume(int argc, char **argv)
{
	return vmctl_simple(argc, argv, "wafer resume NAME", "PATCH", "/vm", "{\"state\": \"Resumed\"}");
}

/* ---- set: resource limits of a running VM (PATCH /machine-config) ---- */

int cmd_set(int argc, char **argv)
{
#define SET_USAGE "wafer set NAME [--cpu-weight W] [--cpu-cap PCT] [--memory-limit SIZE]"
	static const char usage[] = SET_USAGE "\n"
		"  Change a running VM's resource limits (its cgroups; wafer run as root, or\n"
		"  started with the flag): --cpu-weight 1..65535 (Xen credit2 scale, 256 is\n"
		"  the default), --cpu-cap in percent of one host CPU (0: no cap),\n"
		"  --memory-limit for the VM process, guest RAM included (e.g. 512M; 0: none).\n";
	static const struct option opts[] = {
		{ "cpu-weight", required_argument, NULL, 'w' },
		{ "cpu-cap", required_argument, NULL, 'c' },
		{ "memory-limit", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	json_object *body = json_object_new_object();
	struct client_reply r;
	uint64_t v;
	int opt, status = 1;

	optind = 1;
	opterr = 0;
	/* Options may follow NAME (no '+': getopt permutes). */
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (opt) {
		case 'w':
			if (parse_uint(optarg, 1, VM_CPU_WEIGHT_MAX, &v)) {
				log_error("--cpu-weight %s: expected 1..%d", optarg, VM_CPU_WEIGHT_MAX);
				goto out;
			}
			json_object_object_add(body, "cpu_weight", json_object_new_int64((int64_t)v));
			break;
		case 'c':
			if (parse_uint(optarg, 0, VM_CPU_CAP_MAX, &v)) {
				log_error("--cpu-cap %s: expected a percentage of one CPU (0 = no cap)", optarg);
				goto out;
			}
			json_object_object_add(body, "cpu_cap", json_object_new_int64((int64_t)v));
			break;
		case 'm':
			if (parse_size(optarg, &v) || (v && (v < ((uint64_t)VM_MEM_LIMIT_MIN_MIB << 20) ||
							      v % (1u << 20)))) {
				log_error("--memory-limit %s: expected 0 (none) or whole MiB of at least %dM",
					  optarg, VM_MEM_LIMIT_MIN_MIB);
				goto out;
			}
			json_object_object_add(body, "memory_limit_mib", json_object_new_int64((int64_t)(v >> 20)));
			break;
		case 'h':
			fputs(usage, stdout);
			status = 0;
			goto out;
		case ':':
			log_error("%s: missing argument (usage: " SET_USAGE ")", argv[optind - 1]);
			goto out;
		default:
			log_error("%s: unknown option (usage: " SET_USAGE ")", argv[optind - 1]);
			goto out;
		}
	}
	if (optind != argc - 1) {
		log_error("expected one VM name (usage: " SET_USAGE ")");
		goto out;
	}
	if (json_object_object_length(body) == 0) {
		log_error("%s: nothing to change: give --cpu-weight, --cpu-cap or --memory-limit",
			  argv[optind]);
		goto out;
	}
	if (vmctl_call(argv[optind], "PATCH", "/machine-config",
		       json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN), 204, &r))
		goto out;
	client_reply_free(&r);
	status = 0;
out:
	json_object_put(body);
	return status;
}

/* The VM process's pid, from the pid file wafer run keeps by the socket. */
static pid_t vmctl_pid(const char *sock)
{
	char path[API_PATH_MAX + 8];
	long pid = 0;
	snprintf(path, sizeof(path), "%s", sock);
	char *slash = strrchr(path, '/');
	if (!slash)
		return 0;
	strcpy(slash + 1, "pid");
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 1)
		pid = 0;
	fclose(f);
	return (pid_t)pid;
}

int cmd_stop(int argc, char **argv)
{
	static const char usage[] =
		"wafer stop [--force] [--timeout SECONDS] NAME\n"
		"  Graceful: Ctrl-Alt-Del to the guest, then wait up to --timeout (30 s)\n"
		"  for the VM to end before stopping it hard. --force: stop at once.\n";
	struct vmctl_args a;
	struct client_reply r;
	char sock[API_PATH_MAX], err[512];
	int rc = vmctl_parse(argc, argv, usage, 1, &a);

	if (rc)
		return rc > 0 ? 0 : 1;
	if (client_socket_for(a.name, sock, sizeof(sock), err, sizeof(err))) {
		log_error("%s", err);
		return 1;
	}
	pid_t pid = vmctl_pid(sock);
	if (!a.force && vmctl_call(a.name, "PUT", "/actions",
				   "{\"action_type\": \"SendCtrlAltDel\"}", 204, &r) == 0) {
		client_reply_free(&r);
		for (unsigned i = 0; i < a.timeout * 10; i++) {
			if (access(sock, F_OK) != 0)
				return 0;  /* the VM ended and removed its socket */
			usleep(100000);
		}
		log_warn("%s: still running after %u s; stopping it", a.name, a.timeout);
	}
	if (pid <= 0 || kill(pid, SIGTERM) < 0) {
		log_error("%s: cannot signal the VM process%s", a.name, pid <= 0 ? " (no pid file)" : "");
		return 1;
	}
	for (unsigned i = 0; i < 100 && access(sock, F_OK) == 0; i++)
		usleep(50000);
	return 0;
}

/* ---- ls ---- */

static int json_int(json_object *o, const char *key, int64_t *out)
{
	json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v))
		return -1;
	*out = json_object_get_int64(v);
	return 0;
}

/* Uptime from the Prometheus text's wafer_uptime_seconds line. */
static double vmctl_uptime(const char *metrics)
{
	const char *p = metrics ? strstr(metrics, "\nwafer_uptime_seconds ") : NULL;
	return p ? strtod(p + strlen("\nwafer_uptime_seconds "), NULL) : 0;
}

int cmd_ls(int argc, char **argv)
{
	static const char usage[] = "wafer ls [--json]   list running VMs\n";
	struct vmctl_args a;
	char base[API_PATH_MAX], sock[API_PATH_MAX], err[512];
	int rc = vmctl_parse(argc, argv, usage, 0, &a);

	if (rc)
		return rc > 0 ? 0 : 1;
	/* The runtime directory is where any VM's default socket would be. */
	if (api_socket_default_path("x", base, sizeof(base))) {
		log_error("no runtime directory (set XDG_RUNTIME_DIR)");
		return 1;
	}
	base[strlen(base) - strlen("/x/api.sock")] = '\0';
	json_object *list = json_object_new_array();
	DIR *d = opendir(base);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		struct client_reply info, mc, met;
		if (e->d_name[0] == '.' || client_socket_for(e->d_name, sock, sizeof(sock), err, sizeof(err)))
			continue;
		if (client_request(sock, "GET", "/", NULL, &info, err, sizeof(err)))
			continue;  /* a socket nobody serves: a VM that was killed */
		json_object *o = json_tokener_parse(info.body), *st;
		client_reply_free(&info);
		if (!o)
			continue;
		json_object *row = json_object_new_object();
		json_object_object_add(row, "name", json_object_new_string(e->d_name));
		json_object_object_add(row, "state", json_object_new_string(
			json_object_object_get_ex(o, "state", &st) ? json_object_get_string(st) : "?"));
		json_object_put(o);
		if (!client_request(sock, "GET", "/machine-config", NULL, &mc, err, sizeof(err))) {
			json_object *m = json_tokener_parse(mc.body);
			int64_t v;
			if (!json_int(m, "vcpu_count", &v))
				json_object_object_add(row, "vcpus", json_object_new_int64(v));
			if (!json_int(m, "mem_size_mib", &v))
				json_object_object_add(row, "memory_mib", json_object_new_int64(v));
			json_object_put(m);
			client_reply_free(&mc);
		}
		if (!client_request(sock, "GET", "/metrics", NULL, &met, err, sizeof(err))) {
			json_object_object_add(row, "uptime_s", json_object_new_double(vmctl_uptime(met.body)));
			client_reply_free(&met);
		}
		json_object_object_add(row, "pid", json_object_new_int(vmctl_pid(sock)));
		json_object_array_add(list, row);
	}
	if (d)
		closedir(d);
	if (a.json) {
		printf("%s\n", json_object_to_json_string_ext(list, JSON_C_TO_STRING_PRETTY));
	} else {
		printf("%-24s %-12s %5s %9s %10s %8s\n", "NAME", "STATE", "VCPUS", "MEMORY", "UPTIME", "PID");
		for (size_t i = 0; i < json_object_array_length(list); i++) {
			json_object *r = json_object_array_get_idx(list, i), *v;
			char mem[32] = "-", up[32] = "-";
			if (json_object_object_get_ex(r, "memory_mib", &v))
				snprintf(mem, sizeof(mem), "%lldM", (long long)json_object_get_int64(v));
			if (json_object_object_get_ex(r, "uptime_s", &v))
				snprintf(up, sizeof(up), "%.0fs", json_object_get_double(v));
			printf("%-24s %-12s %5lld %9s %10s %8d\n",
			       json_object_get_string(json_object_object_get(r, "name")),
			       json_object_get_string(json_object_object_get(r, "state")),
			       (long long)json_object_get_int64(json_object_object_get(r, "vcpus")),
			       mem, up, json_object_get_int(json_object_object_get(r, "pid")));
		}
	}
	json_object_put(list);
	return 0;
}

/* ---- stats: the Prometheus text, regrouped ---- */

int cmd_stats(int argc, char **argv)
{
	static const char usage[] = "wafer stats [--json] NAME   exits per vCPU and reason, device counters\n";
	struct vmctl_args a;
	struct client_reply r;
	int rc = vmctl_parse(argc, argv, usage, 1, &a);

	if (rc)
		return rc > 0 ? 0 : 1;
	if (vmctl_call(a.name, "GET", "/metrics", NULL, 200, &r))
		return 1;
	json_object *out = json_object_new_object(), *vcpus = json_object_new_object(),
		    *devs = json_object_new_object();
	json_object_object_add(out, "name", json_object_new_string(a.name));
	json_object_object_add(out, "uptime_s", json_object_new_double(vmctl_uptime(r.body)));
	char *save = NULL;
	for (char *line = strtok_r(r.body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char k1[64], v1[64], k2[64], v2[64], metric[96];
		unsigned long long val;
		if (line[0] == '#')
			continue;
		/* name{k1="v1",k2="v2"} value  or  name{k1="v1"} value */
		int n = sscanf(line, "%95[^{]{%63[^=]=\"%63[^\"]\",%63[^=]=\"%63[^\"]\"} %llu",
			       metric, k1, v1, k2, v2, &val);
		if (n != 6) {
			n = sscanf(line, "%95[^{]{%63[^=]=\"%63[^\"]\"} %llu", metric, k1, v1, &val);
			if (n != 4)
				continue;
			k2[0] = v2[0] = '\0';
		}
		json_object *group, *entry;
		if (!strcmp(metric, "wafer_vcpu_exits_total")) {
			group = vcpus;
		} else if (!strncmp(metric, "wafer_device_", 13) && !strcmp(k1, "device")) {
			group = devs;
		} else {
			continue;
		}
		if (!json_object_object_get_ex(group, v1, &entry)) {
			entry = json_object_new_object();
			json_object_object_add(group, v1, entry);
		}
		char key[96];
		if (group == vcpus)
			snprintf(key, sizeof(key), "%s", v2);
		else
			snprintf(key, sizeof(key), "%.*s", (int)(strlen(metric) - 13 - 6), metric + 13);
		json_object_object_add(entry, key, json_object_new_int64((int64_t)val));
	}
	client_reply_free(&r);
	json_object_object_add(out, "vcpu_exits", vcpus);
	json_object_object_add(out, "devices", devs);
	if (a.json) {
		printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY));
	} else {
		printf("%s: up %.1f s\n", a.name, json_object_get_double(json_object_object_get(out, "uptime_s")));
		json_object_object_foreach(vcpus, cpu, reasons) {
			printf("  vcpu %s exits:", cpu);
			json_object_object_foreach(reasons, reason, count)
				printf(" %s=%lld", reason, (long long)json_object_get_int64(count));
			printf("\n");
		}
		json_object_object_foreach(devs, dev, counters) {
			printf("  %s:", dev);
			json_object_object_foreach(counters, cname, cval)
				printf(" %s=%lld", cname, (long long)json_object_get_int64(cval));
			printf("\n");
		}
	}
	json_object_put(out);
	return 0;
}

/* ---- console: COM1 over the API socket ---- */

#define CONSOLE_DETACH 0x1d  /* Ctrl-] */

/* Open the socket and switch GET /console to a raw stream. libcurl has no
 * generic HTTP/1.1 upgrade, so this one request is written by hand: a fixed
 * request line and a read of the reply's header block. */
static int vmctl_console_open(const char *name, const char *sock)
{
	static const char req[] = "GET /console HTTP/1.1\r\nHost: localhost\r\n"
				  "Connection: Upgrade\r\nUpgrade: wafer-console\r\n\r\n";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char hdr[4096];
	size_t got = 0;

	if (strlen(sock) >= sizeof(sa.sun_path)) {
		log_error("%s: socket path too long: %s", name, sock);
		return -1;
	}
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
		log_error("%s: %s: %s", name, sock, strerror(errno));
		close(fd);
		return -1;
	}
	/* Byte by byte up to the blank line, so no stream byte is consumed. */
	while (got < sizeof(hdr) - 1) {
		ssize_t r = read(fd, hdr + got, 1);
		if (r <= 0)
			break;
		got++;
		if (got >= 4 && !memcmp(hdr + got - 4, "\r\n\r\n", 4))
			break;
	}
	hdr[got] = '\0';
	if (strncmp(hdr, "HTTP/1.1 101", 12)) {
		char body[1024] = "";
		ssize_t r = read(fd, body, sizeof(body) - 1);
		body[r > 0 ? r : 0] = '\0';
		json_object *o = json_tokener_parse(body), *m;
		log_error("%s: console: %s", name, o && json_object_object_get_ex(o, "fault_message", &m) ?
			  json_object_get_string(m) : (got ? hdr : "no reply"));
		json_object_put(o);
		close(fd);
		return -1;
	}
	return fd;
}

int cmd_console(int argc, char **argv)
{
	static const char usage[] =
		"wafer console NAME   attach this terminal to the VM's serial console;\n"
		"                     Ctrl-] (or the end of non-terminal input) detaches; the VM\n"
		"                     keeps running. One client at a time.\n";
	struct vmctl_args a;
	char sock[API_PATH_MAX], err[512];
	struct termios saved, raw;
	int rc = vmctl_parse(argc, argv, usage, 1, &a), tty = 0;

	if (rc)
		return rc > 0 ? 0 : 1;
	if (client_socket_for(a.name, sock, sizeof(sock), err, sizeof(err))) {
		log_error("%s", err);
		return 1;
	}
	int fd = vmctl_console_open(a.name, sock);
	if (fd < 0)
		return 1;
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
		raw = saved;
		cfmakeraw(&raw);
		tty = tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0;
		fprintf(stderr, "[wafer] attached to %s; Ctrl-] detaches\r\n", a.name);
	}
	int in_open = 1;
	rc = 0;
	for (;;) {
		struct pollfd p[2] = { { .fd = in_open ? STDIN_FILENO : -1, .events = POLLIN },
				       { .fd = fd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		char buf[4096];
		if (p[1].revents) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				break;  /* the VM stopped or the server closed */
			(void)!write(STDOUT_FILENO, buf, (size_t)n);
		}
		if (p[0].revents) {
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0) {
				/* End of input detaches: tell the VMM, then show what
				 * it still sends until it closes. */
				in_open = 0;
				shutdown(fd, SHUT_WR);
				continue;
			}
			char *det = tty ? memchr(buf, CONSOLE_DETACH, (size_t)n) : NULL;
			size_t len = det ? (size_t)(det - buf) : (size_t)n;
			if (len && write(fd, buf, len) < 0)
				break;
			if (det)
				break;
		}
	}
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
		fprintf(stderr, "\n[wafer] detached from %s\n", a.name);
	}
	close(fd);
	return rc;
}
