/* The real control-API HTTP server and router in front of a fake VMM, for
 * tests/integration/api.sh (no KVM needed). Serves until SIGTERM/SIGINT.
 * Usage: api_testserver SOCKET [--config FILE]
 * Env: FAKE_START_ERROR=text makes InstanceStart fail with that reason;
 * WAFER_SECCOMP=on|log puts the server's thread under wafer's API filter. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "jail/seccomp.h"

struct fake_vmm {
	unsigned vcpus;
	uint64_t pauses, resumes;
	struct timespec started;
};

static int fake_start(void *o, const struct api_config *cfg, char *err, size_t errlen)
{
	struct fake_vmm *f = o;
	const char *fail = getenv("FAKE_START_ERROR");

	if (fail && *fail) {
		snprintf(err, errlen, "%s", fail);
		return -EINVAL;
	}
	f->vcpus = cfg->machine.vcpu_count;
	clock_gettime(CLOCK_MONOTONIC, &f->started);
	return 0;
}

static int fake_pause(void *o, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	((struct fake_vmm *)o)->pauses++;
	return 0;
}

static int fake_resume(void *o, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	((struct fake_vmm *)o)->resumes++;
	return 0;
}

static int fake_noop(void *o, char *err, size_t errlen)
{
	(void)o, (void)err, (void)errlen;
	return 0;
}

static int fake_metrics(void *o, struct api_metrics *m)
{
	struct fake_vmm *f = o;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	m->uptime_ms = (uint64_t)(now.tv_sec - f->started.tv_sec) * 1000 +
		       (uint64_t)((now.tv_nsec - f->started.tv_nsec) / 1000000);
	m->nvcpus = f->vcpus < m->vcpu_cap ? f->vcpus : m->vcpu_cap;
	for (unsigned v = 0; v < m->nvcpus; v++)
		m->vcpu_exits[v][API_EXIT_HLT] = f->pauses + f->resumes;
	m->ndevices = 1;
	snprintf(m->devices[0].device, sizeof(m->devices[0].device), "serial0");
	snprintf(m->devices[0].kind, sizeof(m->devices[0].kind), "serial");
	snprintf(m->devices[0].name, sizeof(m->devices[0].name), "tx_bytes");
	m->devices[0].value = 42;
	return 0;
}

/* Fake serial console: upper-cases what the client types and echoes it, until
 * the client half-closes; one client at a time. */
static pthread_mutex_t console_lock = PTHREAD_MUTEX_INITIALIZER;
static int console_busy;

struct fake_console {
	int fd;
	void (*done)(void *);
	void *arg;
};

static void *fake_console_thread(void *p)
{
	struct fake_console *c = p;
	char buf[256];
	ssize_t n;

	/* MHD hands over a non-blocking socket; this thread wants to block. */
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
	while ((n = read(c->fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			buf[i] = (char)toupper((unsigned char)buf[i]);
		if (write(c->fd, buf, (size_t)n) < 0)
			break;
	}
	pthread_mutex_lock(&console_lock);
	console_busy = 0;
	pthread_mutex_unlock(&console_lock);
	c->done(c->arg);
	free(c);
	return NULL;
}

static int fake_console_check(void *o, char *err, size_t errlen)
{
	(void)o;
	pthread_mutex_lock(&console_lock);
	int busy = console_busy;
	pthread_mutex_unlock(&console_lock);
	if (busy)
		snprintf(err, errlen, "the console is already attached to another client");
	return busy ? -EBUSY : 0;
}

static int fake_console_attach(void *o, int fd, void (*done)(void *), void *arg)
{
	pthread_t t;
	struct fake_console *c = malloc(sizeof(*c));
	(void)o;
	if (!c)
		return -ENOMEM;
	pthread_mutex_lock(&console_lock);
	if (console_busy) {
		pthread_mutex_unlock(&console_lock);
		free(c);
		return -EBUSY;
	}
	console_busy = 1;
	pthread_mutex_unlock(&console_lock);
	*c = (struct fake_console){ fd, done, arg };
	if (pthread_create(&t, NULL, fake_console_thread, c)) {
		free(c);
		return -EAGAIN;
	}
	pthread_detach(t);
	return 0;
}

/* Prints what it was asked for; a CPU weight of 7 is refused. */
static int fake_update_resources(void *o, const struct api_resources *res, char *err, size_t errlen)
{
	(void)o;
	if (res->has_cpu_weight && res->cpu_weight == 7) {
		snprintf(err, errlen, "fake VMM refuses weight 7");
		return -EINVAL;
	}
	printf("resources:");
	if (res->has_cpu_weight)
		printf(" cpu_weight=%u", res->cpu_weight);
	if (res->has_cpu_cap)
		printf(" cpu_cap=%u", res->cpu_cap);
	if (res->has_memory_limit)
		printf(" memory_limit_mib=%llu", (unsigned long long)res->memory_limit_mib);
	printf("\n");
	fflush(stdout);
	return 0;
}

static int confine_api(void *arg, char *err, size_t errlen)
{
	(void)arg;
	return seccomp_install_inherited(SECCOMP_ROLE_API, err, errlen);
}

static const struct api_controller_ops fake_ops = {
	.start = fake_start, .pause = fake_pause, .resume = fake_resume,
	.send_ctrl_alt_del = fake_noop, .flush_metrics = fake_noop, .get_metrics = fake_metrics,
	.console_check = fake_console_check, .console_attach = fake_console_attach,
	.update_resources = fake_update_resources,
};

int main(int argc, char **argv)
{
	struct fake_vmm vmm = { 0 };
	struct api_controller ctrl = { .ops = &fake_ops, .opaque = &vmm };
	struct api_router *router = NULL;
	struct api_server *server = NULL;
	struct api_config *cfg = NULL;
	char err[API_ERR_MAX];
	sigset_t sigs;
	int sig, status = 1;

	if (argc != 2 && !(argc == 4 && !strcmp(argv[2], "--config"))) {
		fprintf(stderr, "usage: api_testserver SOCKET [--config FILE]\n");
		return 2;
	}
	/* Blocked before MHD's thread exists, so only sigwait sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (api_router_create(&router, &ctrl, "testserver")) {
		fprintf(stderr, "api_testserver: router: out of memory\n");
		goto out;
	}
	if (argc == 4) {
		cfg = malloc(sizeof(*cfg));
		if (!cfg || api_config_load_file(argv[3], cfg, err, sizeof(err)) ||
		    api_router_start_with(router, cfg, err, sizeof(err))) {
			fprintf(stderr, "api_testserver: %s\n", cfg ? err : "out of memory");
			goto out;
		}
	}
	enum seccomp_mode mode = SECCOMP_OFF;
	const char *sc = getenv("WAFER_SECCOMP");
	if (sc && (seccomp_mode_parse(sc, &mode) || seccomp_prepare(mode))) {
		fprintf(stderr, "api_testserver: WAFER_SECCOMP=%s: expected on, log or off\n", sc);
		goto out;
	}
	if (api_server_start(&server, argv[1], router, mode == SECCOMP_OFF ? NULL : confine_api, NULL,
			     err, sizeof(err))) {
		fprintf(stderr, "api_testserver: %s\n", err);
		goto out;
	}
	printf("listening on %s\n", argv[1]);
	fflush(stdout);
	if (sigwait(&sigs, &sig) == 0)
		status = 0;
out:
	api_server_stop(server);
	api_router_destroy(router);
	free(cfg);
	return status;
}
