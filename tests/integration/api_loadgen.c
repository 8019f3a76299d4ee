/* Load generator for the control API over its UNIX socket (wrk cannot dial
 * UNIX sockets): THREADS keep-alive clients each send REQUESTS requests,
 * alternating GET / and PATCH /vm {"state":"Resumed"}; prints throughput and
 * latency percentiles as "name value unit" lines. Exit 1 on any failed request.
 * Usage: api_loadgen SOCKET THREADS REQUESTS */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct client {
	pthread_t thread;
	const char *path;
	unsigned nreq;
	double *lat_us;     /* nreq entries */
	unsigned failures;
};

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int dial(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t r = send(fd, buf, len, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		buf += r;
		len -= (size_t)r;
	}
	return 0;
}

/* Read one response; returns its status code or -1. */
static int read_response(int fd, char *buf, size_t cap)
{
	size_t have = 0;
	char *end;

	for (;;) {
		if (have == cap - 1)
			return -1;
		ssize_t r = recv(fd, buf + have, cap - 1 - have, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		have += (size_t)r;
		buf[have] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")))
			break;
	}
	int status = 0;
	if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
		return -1;
	size_t body = 0;
	for (char *h = strstr(buf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n"))
		if (!strncasecmp(h + 2, "Content-Length:", 15))
			body = strtoul(h + 17, NULL, 10);
	size_t want = (size_t)(end + 4 - buf) + body;
	while (have < want) {
		if (want >= cap)
			return -1;
		ssize_t r = recv(fd, buf + have, want - have, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		have += (size_t)r;
	}
	return status;
}

static void *client_run(void *arg)
{
	static const char get[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
	static const char body[] = "{\"state\":\"Resumed\"}";
	char patch[256];
	snprintf(patch, sizeof(patch), "PATCH /vm HTTP/1.1\r\nHost: localhost\r\n"
		 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		 sizeof(body) - 1, body);
	struct client *c = arg;
	char buf[8192];
	int fd = dial(c->path);

	for (unsigned i = 0; i < c->nreq; i++) {
		bool is_get = i % 2 == 0;
		double t0 = now_us();
		if (fd < 0 || send_all(fd, is_get ? get : patch, is_get ? sizeof(get) - 1 :
				       strlen(patch))) {
			c->failures++;
			c->lat_us[i] = 0;
			continue;
		}
		int st = read_response(fd, buf, sizeof(buf));
		c->lat_us[i] = now_us() - t0;
		if (st != (is_get ? 200 : 204)) {
			c->failures++;
			if (st < 0) {        /* connection broke: reconnect and go on */
				close(fd);
				fd = dial(c->path);
			}
		}
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: api_loadgen SOCKET THREADS REQUESTS\n");
		return 2;
	}
	unsigned nthreads = (unsigned)strtoul(argv[2], NULL, 10);
	unsigned nreq = (unsigned)strtoul(argv[3], NULL, 10);
	if (!nthreads || nthreads > 1024 || !nreq || nreq > 1000000) {
		fprintf(stderr, "api_loadgen: THREADS 1..1024, REQUESTS 1..1000000\n");
		return 2;
	}
	struct client *cl = calloc(nthreads, sizeof(*cl));
	double *all = calloc((size_t)nthreads * nreq, sizeof(*all));
	if (!cl || !all)
		return 2;

	double t0 = now_us();
	for (unsigned t = 0; t < nthreads; t++) {
		cl[t] = (struct client){ .path = argv[1], .nreq = nreq,
					 .lat_us = all + (size_t)t * nreq };
		if (pthread_create(&cl[t].thread, NULL, client_run, &cl[t]))
			return 2;
	}
	unsigned failures = 0;
	for (unsigned t = 0; t < nthreads; t++) {
		pthread_join(cl[t].thread, NULL);
		failures += cl[t].failures;
	}
	double elapsed = now_us() - t0;
	size_t n = (size_t)nthreads * nreq;
	qsort(all, n, sizeof(*all), cmp_double);

	printf("api_requests %zu requests\n", n);
	printf("api_failures %u requests\n", failures);
	printf("api_throughput %.0f req/s\n", (double)n / (elapsed / 1e6));
	printf("api_latency_p50 %.1f us\n", all[n / 2]);
	printf("api_latency_p99 %.1f us\n", all[(size_t)((double)n * 0.99)]);
	printf("api_latency_max %.1f us\n", all[n - 1]);
	free(all);
	free(cl);
	return failures ? 1 : 0;
}
