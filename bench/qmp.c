/* A minimal QMP client for bench/snapshot.sh: connects to QEMU's QMP unix
 * socket, runs a list of steps and prints "name value" lines, timing the
 * waits with a 1 ms poll so the figures do not carry a shell's process
 * start-up. QMP: one JSON object per line; replies start {"return" or
 * {"error", asynchronous events (which are skipped) {"timestamp".
 *
 * usage: qmp SOCK [--t0 EPOCH] [--connect-timeout S] STEP...
 *   '{...}'                  send a command, wait for its reply; an error
 *                            reply ends the run (exit 1)
 *   mark                     restart the clock that wall_ms counts from
 *                            (initially: when the connection was made)
 *   wait-migrate SECS        poll query-migrate until completed or failed;
 *                            prints status, total_time_ms, downtime_ms,
 *                            setup_time_ms, dirty_sync_count,
 *                            transferred_bytes (QEMU's figures; -1 when
 *                            absent), max_throttle_pct (the largest
 *                            cpu-throttle-percentage seen), wall_ms; on
 *                            timeout sends migrate_cancel and exits 3
 *   wait-status LIST SECS    poll query-status until the status is one of
 *                            LIST (comma separated); prints status, wall_ms
 *   sleep MS
 * --t0 EPOCH: a CLOCK_REALTIME time in seconds (bash's $EPOCHREALTIME taken
 * before QEMU was started); every wall_ms is then followed by wall_t0_ms,
 * the time since EPOCH. Exit 0, 1 on an error, 2 on bad usage, 3 on timeout. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN 65536

struct qmp {
	int fd;
	char buf[LINE_MAX_LEN];
	size_t len;             /* bytes in buf */
	char line[LINE_MAX_LEN];
	double t0_real;         /* --t0, or 0 */
	double mark;            /* CLOCK_MONOTONIC seconds */
};

static double now(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(double ms)
{
	long long ns = (long long)(ms * 1e6);
	struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
	nanosleep(&ts, NULL);
}

static int qmp_connect(struct qmp *q, const char *path, double timeout_s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	double until = now(CLOCK_MONOTONIC) + timeout_s;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "qmp: %s: path too long\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	for (;;) {
		q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (q->fd < 0) {
			perror("qmp: socket");
			return -1;
		}
		if (!connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)))
			return 0;
		int e = errno;
		close(q->fd);
		q->fd = -1;
		if ((e != ENOENT && e != ECONNREFUSED) || now(CLOCK_MONOTONIC) > until) {
			fprintf(stderr, "qmp: %s: %s\n", path, strerror(e));
			return -1;
		}
		sleep_ms(1);
	}
}

/* Next line (without CR/LF) into q->line; -1 on EOF, error or timeout. */
static int qmp_read_line(struct qmp *q, double timeout_s)
{
	double until = now(CLOCK_MONOTONIC) + timeout_s;

	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);
		if (nl) {
			size_t n = (size_t)(nl - q->buf);
			memcpy(q->line, q->buf, n);
			q->line[n] = '\0';
			if (n && q->line[n - 1] == '\r')
				q->line[n - 1] = '\0';
			memmove(q->buf, nl + 1, q->len - n - 1);
			q->len -= n + 1;
			return 0;
		}
		if (q->len == sizeof(q->buf)) {
			fprintf(stderr, "qmp: a reply longer than %d bytes\n", LINE_MAX_LEN);
			return -1;
		}
		int left = (int)((until - now(CLOCK_MONOTONIC)) * 1e3);
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		int r = poll(&p, 1, left > 0 ? left : 0);
		if (r == 0) {
			fprintf(stderr, "qmp: no reply within %.0f s\n", timeout_s);
			return -1;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			perror("qmp: poll");
			return -1;
		}
		ssize_t got = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
		if (got <= 0) {
			fprintf(stderr, "qmp: connection closed by QEMU\n");
			return -1;
		}
		q->len += (size_t)got;
	}
}

/* Sends one command; leaves its reply in q->line. 0, or -1 (reported). */
static int qmp_cmd(struct qmp *q, const char *json)
{
	size_t n = strlen(json);
	if (write(q->fd, json, n) != (ssize_t)n || write(q->fd, "\n", 1) != 1) {
		perror("qmp: write");
		return -1;
	}
	for (;;) {
		if (qmp_read_line(q, 60))
			return -1;
		if (!strncmp(q->line, "{\"return\"", 9))
			return 0;
		if (!strncmp(q->line, "{\"error\"", 8)) {
			fprintf(stderr, "qmp: %s: %s\n", json, q->line);
			return -1;
		}
		/* an event: skip */
	}
}

/* The string value of "key" in q->line (first occurrence), or "". */
static const char *json_str(const char *line, const char *key, char *out, size_t outlen)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\": \"", key);
	const char *p = strstr(line, pat);
	out[0] = '\0';
	if (p) {
		p += strlen(pat);
		size_t n = strcspn(p, "\"");
		if (n >= outlen)
			n = outlen - 1;
		memcpy(out, p, n);
		out[n] = '\0';
	}
	return out;
}

/* The number after "key": in line, or -1 when absent. */
static double json_num(const char *line, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	const char *p = strstr(line, pat);
	return p ? strtod(p + strlen(pat), NULL) : -1;
}

static void print_wall(const struct qmp *q)
{
	printf("wall_ms %.3f\n", (now(CLOCK_MONOTONIC) - q->mark) * 1e3);
	if (q->t0_real > 0)
		printf("wall_t0_ms %.3f\n", (now(CLOCK_REALTIME) - q->t0_real) * 1e3);
}

static int wait_migrate(struct qmp *q, double secs)
{
	double until = now(CLOCK_MONOTONIC) + secs, throttle = 0;
	char st[64], desc[512];

	for (;;) {
		if (qmp_cmd(q, "{\"execute\": \"query-migrate\"}"))
			return 1;
		json_str(q->line, "status", st, sizeof(st));
		double t = json_num(q->line, "cpu-throttle-percentage");
		if (t > throttle)
			throttle = t;
		if (!strcmp(st, "completed") || !strcmp(st, "failed") || !strcmp(st, "cancelled")) {
			double end_mono = now(CLOCK_MONOTONIC), end_real = now(CLOCK_REALTIME);
			printf("status %s\n", st);
			printf("total_time_ms %.0f\ndowntime_ms %.0f\nsetup_time_ms %.0f\n"
			       "dirty_sync_count %.0f\ntransferred_bytes %.0f\n",
			       json_num(q->line, "total-time"), json_num(q->line, "downtime"),
			       json_num(q->line, "setup-time"), json_num(q->line, "dirty-sync-count"),
			       json_num(q->line, "transferred"));
			printf("max_throttle_pct %.0f\n", throttle);
			printf("wall_ms %.3f\n", (end_mono - q->mark) * 1e3);
			if (q->t0_real > 0)
				printf("wall_t0_ms %.3f\n", (end_real - q->t0_real) * 1e3);
			if (strcmp(st, "completed")) {
				fprintf(stderr, "qmp: migration %s: %s\n", st,
					json_str(q->line, "error-desc", desc, sizeof(desc)));
				return 1;
			}
			return 0;
		}
		if (now(CLOCK_MONOTONIC) > until) {
			printf("status timeout\n");
			qmp_cmd(q, "{\"execute\": \"migrate_cancel\"}");
			fprintf(stderr, "qmp: migration still '%s' after %.0f s: cancelled\n", st, secs);
			return 3;
		}
		sleep_ms(1);
	}
}

static int wait_status(struct qmp *q, const char *list, double secs)
{
	double until = now(CLOCK_MONOTONIC) + secs;
	char st[64], want[256];

	for (;;) {
		if (qmp_cmd(q, "{\"execute\": \"query-status\"}"))
			return 1;
		json_str(q->line, "status", st, sizeof(st));
		snprintf(want, sizeof(want), ",%s,", list);
		char needle[80];
		snprintf(needle, sizeof(needle), ",%s,", st);
		if (st[0] && strstr(want, needle)) {
			printf("status %s\n", st);
			print_wall(q);
			return 0;
		}
		if (now(CLOCK_MONOTONIC) > until) {
			printf("status timeout\n");
			fprintf(stderr, "qmp: status still '%s' after %.0f s (waiting for %s)\n", st,
				secs, list);
			return 3;
		}
		sleep_ms(1);
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: qmp SOCK [--t0 EPOCH] [--connect-timeout S] STEP...\n"
		"  STEP: '{json command}' | mark | wait-migrate SECS | wait-status LIST SECS | sleep MS\n");
	return 2;
}

int main(int argc, char **argv)
{
	static struct qmp q = { .fd = -1 };
	double connect_s = 30;
	int i = 2, rc = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		return usage();
	for (; i < argc && !strncmp(argv[i], "--", 2); i += 2) {
		if (i + 1 >= argc)
			return usage();
		if (!strcmp(argv[i], "--t0"))
			q.t0_real = strtod(argv[i + 1], NULL);
		else if (!strcmp(argv[i], "--connect-timeout"))
			connect_s = strtod(argv[i + 1], NULL);
		else
			return usage();
	}
	if (qmp_connect(&q, argv[1], connect_s))
		return 1;
	q.mark = now(CLOCK_MONOTONIC);
	/* The greeting, then capabilities negotiation. */
	if (qmp_read_line(&q, 30) || strncmp(q.line, "{\"QMP\"", 6)) {
		fprintf(stderr, "qmp: %s: no QMP greeting\n", argv[1]);
		return 1;
	}
	if (qmp_cmd(&q, "{\"execute\": \"qmp_capabilities\"}"))
		return 1;
	for (; i < argc && !rc; i++) {
		const char *s = argv[i];
		if (s[0] == '{') {
			rc = qmp_cmd(&q, s) ? 1 : 0;
		} else if (!strcmp(s, "mark")) {
			q.mark = now(CLOCK_MONOTONIC);
		} else if (!strcmp(s, "wait-migrate") && i + 1 < argc) {
			rc = wait_migrate(&q, strtod(argv[++i], NULL));
		} else if (!strcmp(s, "wait-status") && i + 2 < argc) {
			rc = wait_status(&q, argv[i + 1], strtod(argv[i + 2], NULL));
			i += 2;
		} else if (!strcmp(s, "sleep") && i + 1 < argc) {
			sleep_ms(strtod(argv[++i], NULL));
		} else {
			fprintf(stderr, "qmp: step '%s': unknown or missing its argument\n", s);
			rc = 2;
		}
	}
	close(q.fd);
	return rc;
}
