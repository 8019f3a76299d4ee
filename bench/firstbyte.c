/* Benchmark helper: runs a command N times with its stdout on a pipe and
 * reports the median time from spawn to the first byte (VMM start to first
 * guest serial byte) and to exit (whole run), for bench/run.sh.
 *
 * usage: firstbyte [-n RUNS] [-t TIMEOUT_S] [-e STATUS] -- CMD [ARGS...]
 * Prints "first_byte_ns N" and "total_ns N" (medians). A run that prints
 * nothing, times out, or (with -e) exits with another status fails the whole
 * measurement: a VMM that dies early must not look fast. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_RUNS 1000

struct run_result {
	int64_t first_ns;
	int64_t total_ns;
	int status;            /* exit status, or 128 + signal */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int64_t median(int64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_i64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Returns 0 or -errno; on timeout -ETIMEDOUT (child killed). */
static int run_once(char **argv, int timeout_s, struct run_result *res)
{
	posix_spawn_file_actions_t fa;
	int pipefd[2] = { -1, -1 };
	int rc, r, wst;
	pid_t pid = -1;
	int64_t t0, deadline;
	char buf[4096];

	res->first_ns = -1;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	r = posix_spawn_file_actions_init(&fa);
	if (r) {
		rc = -r;
		goto out_pipe;
	}
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);

	t0 = now_ns();
	deadline = t0 + (int64_t)timeout_s * 1000000000;
	r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r) {
		fprintf(stderr, "firstbyte: %s: %s\n", argv[0], strerror(r));
		rc = -r;
		goto out_pipe;
	}
	close(pipefd[1]);
	pipefd[1] = -1;

	/* Drain stdout until EOF so the child never blocks on a full pipe. */
	rc = 0;
	for (;;) {
		struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
		int64_t left = deadline - now_ns();
		ssize_t n;

		if (left <= 0) {
			rc = -ETIMEDOUT;
			break;
		}
		r = poll(&p, 1, (int)(left / 1000000 + 1));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			break;
		}
		if (r == 0)
			continue;
		n = read(pipefd[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		if (res->first_ns < 0)
			res->first_ns = now_ns() - t0;
	}
	if (rc)
		kill(pid, SIGKILL);
	while (waitpid(pid, &wst, 0) < 0)
		if (errno != EINTR) {
			rc = rc ? rc : -errno;
			goto out_pipe;
		}
	res->total_ns = now_ns() - t0;
	res->status = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst);
out_pipe:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	return rc;
}

static int parse_int(const char *flag, const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "firstbyte: %s %s: expected a number in %d..%d\n", flag, s, lo, hi);
		return -EINVAL;
	}
	*out = (int)v;
	return 0;
}

int main(int argc, char **argv)
{
	int runs = 10, timeout_s = 60, expect = -1, opt;
	static int64_t first[MAX_RUNS], total[MAX_RUNS];

	while ((opt = getopt(argc, argv, "+n:t:e:")) != -1) {
		switch (opt) {
		case 'n':
			if (parse_int("-n", optarg, 1, MAX_RUNS, &runs))
				return 2;
			break;
		case 't':
			if (parse_int("-t", optarg, 1, 86400, &timeout_s))
				return 2;
			break;
		case 'e':
			if (parse_int("-e", optarg, 0, 255, &expect))
				return 2;
			break;
		default:
			fprintf(stderr, "usage: firstbyte [-n RUNS] [-t TIMEOUT_S] [-e STATUS] -- CMD [ARGS...]\n");
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "firstbyte: no command given\n");
		return 2;
	}

	for (int i = 0; i < runs; i++) {
		struct run_result res;
		int rc = run_once(argv + optind, timeout_s, &res);

		if (rc == -ETIMEDOUT) {
			fprintf(stderr, "firstbyte: run %d: %s timed out after %d s\n", i + 1,
				argv[optind], timeout_s);
			return 1;
		}
		if (rc) {
			fprintf(stderr, "firstbyte: run %d: %s\n", i + 1, strerror(-rc));
			return 1;
		}
		if (res.first_ns < 0) {
			fprintf(stderr, "firstbyte: run %d: %s printed nothing (status %d)\n", i + 1,
				argv[optind], res.status);
			return 1;
		}
		if (expect >= 0 && res.status != expect) {
			fprintf(stderr, "firstbyte: run %d: %s exited %d, expected %d\n", i + 1,
				argv[optind], res.status, expect);
			return 1;
		}
		first[i] = res.first_ns;
		total[i] = res.total_ns;
	}
	printf("first_byte_ns %lld\n", (long long)median(first, runs));
	printf("total_ns %lld\n", (long long)median(total, runs));
	return 0;
}
