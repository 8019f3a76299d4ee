/* The seccomp roles, each in a forked child that installs the real filter:
 * what the role's code paths call must pass (the vCPU child drives the real
 * platform devices through the PIO bus, the I/O child runs the real event
 * loop and io_uring disk backend, the API child serves HTTP with the real
 * server, the main child tears down and rebuilds a VM up to opening KVM,
 * the main and API threads hand the console over, the state child writes
 * snapshot files and migrates to a slow receiver), a forbidden call must
 * end the process with the log line; glibc's lazy file reads; log and off
 * modes; the README's list matches the tables. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "api/api.h"
#include "backends/block.h"
#include "devices/serial.h"
#include "jail/seccomp.h"
#include "state/format.h"
#include "state/migrate.h"
#include "state/snapshot.h"
#include "vmm/eventloop.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

/* ---- running a child and reading what it says ---- */

struct child {
	int status;
	char err[8192];
};

/* In the child: no cmocka (its longjmp belongs to the parent). */
#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond))                                                     \
			child_fail(__LINE__, #cond);                             \
	} while (0)

static void child_fail(int line, const char *what)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "child check failed at line %d: %s (errno %d)\n", line,
			 what, errno);
	(void)!write(STDERR_FILENO, buf, (size_t)n);
	_exit(99);
}

static void run_child(void (*fn)(void *), void *arg, struct child *c)
{
	int p[2];
	size_t n = 0;
	ssize_t r;

	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		int null = open("/dev/null", O_WRONLY);
		dup2(null, STDOUT_FILENO);
		fn(arg);
		_exit(0);
	}
	close(p[1]);
	while (n < sizeof(c->err) - 1 && (r = read(p[0], c->err + n, sizeof(c->err) - 1 - n)) > 0)
		n += (size_t)r;
	c->err[n] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &c->status, 0), pid);
}

static void expect_exit0(const struct child *c)
{
	if (!WIFEXITED(c->status) || WEXITSTATUS(c->status) != 0)
		fprintf(stderr, "child status 0x%x, stderr:\n%s\n", c->status, c->err);
	assert_true(WIFEXITED(c->status));
	assert_int_equal(WEXITSTATUS(c->status), 0);
	assert_null(strstr(c->err, "seccomp"));
}

static void expect_killed(const struct child *c, const char *role, long nr, const char *name)
{
	char want[160];
	snprintf(want, sizeof(want), "wafer: seccomp: thread role '%s' made forbidden syscall %ld "
		 "(%s); stopping\n", role, nr, name);
	if (!WIFEXITED(c->status) || WEXITSTATUS(c->status) != WAFER_EXIT_SECCOMP || !strstr(c->err, want))
		fprintf(stderr, "child status 0x%x, wanted \"%s\", stderr:\n%s\n", c->status, want, c->err);
	assert_true(WIFEXITED(c->status));
	assert_int_equal(WEXITSTATUS(c->status), WAFER_EXIT_SECCOMP);
	assert_non_null(strstr(c->err, want));
}

static void *yield_thread(void *arg)
{
	(void)arg;
	sched_yield();
	return NULL;
}

static void confine(enum seccomp_mode mode, enum seccomp_role role)
{
	char err[256];
	CHECK(seccomp_prepare(mode) == 0);
	if (seccomp_install(role, err, sizeof(err))) {
		(void)!write(STDERR_FILENO, err, strlen(err));
		_exit(98);
	}
}

/* ---- vCPU ---- */

static struct vm vm;

extern const struct device_desc *const __start_wafer_devices[];
extern const struct device_desc *const __stop_wafer_devices[];

/* What vm_create sets up for the platform devices, without KVM. */
static void vcpu_world(void)
{
	memset(&vm, 0, sizeof(vm));
	vm.kvm_fd = vm.vm_fd = -1;
	pthread_mutex_init(&vm.stop_lock, NULL);
	pthread_mutex_init(&vm.pause_lock, NULL);
	pthread_cond_init(&vm.pause_cond, NULL);
	irq_router_init(&vm.irq, -1, NULL);
	vm.stop_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm.console_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(vm.stop_eventfd >= 0 && vm.console_wake_fd >= 0);
	for (const struct device_desc *const *d = __start_wafer_devices; d < __stop_wafer_devices; d++)
		CHECK((*d)->create(&vm) == 0);
	vcpu_signals_init();
}

static void outb(uint16_t port, uint8_t v)
{
	bus_access(&vm.pio, port, &v, 1, 1);
}

static uint8_t inb(uint16_t port)
{
	uint8_t v = 0;
	bus_access(&vm.pio, port, &v, 1, 0);
	return v;
}

static void vcpu_allowed(void *arg)
{
	static const unsigned long reqs[] = {
		KVM_RUN, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_TRANSLATE,
		KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, KVM_IRQ_LINE, KVM_IRQFD, KVM_IOEVENTFD,
		KVM_SET_GSI_ROUTING, TUNSETOFFLOAD,
	};
	int sv[2];
	(void)arg;

	vcpu_world();
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	int devnull = open("/dev/null", O_RDWR);
	CHECK(devnull >= 0);
	atomic_store(&vm.console->mirror_fd, sv[0]);
	log_format = LOG_FORMAT_JSON;
	confine(SECCOMP_ON, SECCOMP_ROLE_VCPU);

	/* KVM_RUN on something that is not a vCPU fails, it does not kill. */
	errno = 0;
	CHECK(ioctl(devnull, KVM_RUN, 0) < 0 && errno == ENOTTY);
	for (unsigned i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		errno = 0;
		CHECK(ioctl(-1, reqs[i], 0) < 0 && errno == EBADF);
	}
	/* The guest's side of the platform devices, as vCPU exits reach them. */
	outb(0x3f9, 0x02);               /* COM1 IER: THR empty -> IRQ line ioctl */
	outb(0x3f8, 'x');                /* THR: stdout and the console mirror */
	(void)inb(0x3fd);
	outb(0x70, 0x00);                /* RTC seconds: host time in UTC */
	(void)inb(0x71);
	for (uint32_t reg = 0; reg < 0x40; reg += 4) {   /* host bridge config space */
		uint32_t addr = 0x80000000u | reg, v = 0;
		bus_access(&vm.pio, 0xcf8, (uint8_t *)&addr, 4, 1);
		bus_access(&vm.pio, 0xcfc, (uint8_t *)&v, 4, 0);
	}
	irq_routing_commit(&vm.irq);     /* MSI-X route change: KVM_SET_GSI_ROUTING */
	irq_irqfd(&vm.irq, -1, 24, true);
	irq_ioeventfd(&vm.irq, 0xc0000000, 2, -1, true);
	uint64_t one = 1;
	CHECK(write(vm.stop_eventfd, &one, sizeof(one)) == sizeof(one));
	log_warn("a JSON log line from a confined vCPU");
	pthread_kill(pthread_self(), SIGUSR1);   /* the kick, and its rt_sigreturn */
	void *big = malloc(8 << 20);
	CHECK(big != NULL);
	memset(big, 1, 8 << 20);
	free(big);
	outb(0x64, 0xfe);                /* i8042 reset line: the VM stops */
	if (atomic_load(&vm.stop_reason) != VM_STOP_RESET) {
		char b[64]; int n = snprintf(b, sizeof(b), "stop %d: %s\n", atomic_load(&vm.stop_reason), vm.stop_detail);
		(void)!write(2, b, (size_t)n);
	}
	CHECK(atomic_load(&vm.stop_reason) == VM_STOP_RESET);
	sched_yield();
	struct timespec ts = { 0, 1000 };
	nanosleep(&ts, NULL);
}

static void test_vcpu_allowed(void **state)
{
	struct child c;
	(void)state;
	run_child(vcpu_allowed, NULL, &c);
	expect_exit0(&c);
}

/* ---- forbidden calls: a child confined to a role makes one ---- */

#define NEW_FILE "/tmp/wafer-seccomp-test-must-not-exist"

static void call_socket(void) { socket(AF_INET, SOCK_STREAM, 0); }
static void call_unix_socket(void) { socket(AF_UNIX, SOCK_STREAM, 0); }
static void call_open_new(void) { open(NEW_FILE, O_WRONLY | O_CREAT, 0600); }
static void call_open_read(void) { open("/etc/hostname", O_RDONLY); }
static void call_open_trunc(void) { open(NEW_FILE, O_WRONLY | O_CREAT | O_TRUNC, 0600); }
static void call_ptrace(void) { ptrace(PTRACE_TRACEME, 0, NULL, NULL); }
/* ioctl passes only with the listed request numbers */
static void call_kvm_create_vm(void) { ioctl(-1, KVM_CREATE_VM, 0); }
/* clone without CLONE_THREAD: a new process */
static void call_fork(void) { syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0); }

static void call_execve(void)
{
	char *argv[] = { (char *)"/bin/true", NULL };
	execve(argv[0], argv, argv + 1);
}

static void call_exec_mmap(void)
{
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

struct forbidden {
	enum seccomp_role role;
	void (*call)(void);
};

static void forbidden_child(void *arg)
{
	const struct forbidden *f = arg;
	confine(SECCOMP_ON, f->role);
	f->call();
}

static void expect_forbidden(enum seccomp_role role, void (*call)(void), long nr, const char *name)
{
	struct forbidden f = { role, call };
	struct child c;

	run_child(forbidden_child, &f, &c);
	expect_killed(&c, seccomp_role_name(role), nr, name);
}

static void test_vcpu_forbidden(void **state)
{
	(void)state;
	expect_forbidden(SECCOMP_ROLE_VCPU, call_socket, SYS_socket, "socket");
	expect_forbidden(SECCOMP_ROLE_VCPU, call_open_new, SYS_openat, "openat");
	assert_int_equal(access(NEW_FILE, F_OK), -1);
	expect_forbidden(SECCOMP_ROLE_VCPU, call_execve, SYS_execve, "execve");
	expect_forbidden(SECCOMP_ROLE_VCPU, call_kvm_create_vm, SYS_ioctl, "ioctl");
}

/* ---- I/O ---- */

struct io_world {
	struct eventloop loop;
	struct blk_backend *be;
	int kick, timer;
	int done;
};

static void io_confine(void *arg)
{
	(void)arg;
	char err[256];
	if (seccomp_install(SECCOMP_ROLE_IO, err, sizeof(err)))
		_exit(98);
}

static void io_done(void *opaque, int64_t res)
{
	struct io_world *w = opaque;
	CHECK(res >= 0);
	w->done++;
}

/* On the confined I/O thread: a disk's request path and the other
 * handlers' calls, then leave. */
static void io_on_kick(void *opaque, uint32_t events)
{
	struct io_world *w = opaque;
	char buf[4096];
	uint64_t v;
	struct iovec iov = { buf, sizeof(buf) };
	(void)events;

	CHECK(read(w->kick, &v, sizeof(v)) == sizeof(v));
	memset(buf, 0xab, sizeof(buf));
	CHECK(w->be->ops->writev(w->be, 4096, &iov, 1, io_done, w) == 0);
	CHECK(w->be->ops->flush(w->be, io_done, w) == 0);
	w->be->ops->kick(w->be);
	while (w->done < 2)
		CHECK(blk_backend_poll(w->be, true) >= 0);
	CHECK(w->be->ops->readv(w->be, 4096, &iov, 1, io_done, w) == 0);
	CHECK(w->be->ops->discard(w->be, 8192, 4096, io_done, w) == 0);
	w->be->ops->kick(w->be);
	while (w->done < 4)
		CHECK(blk_backend_poll(w->be, true) >= 0);
	CHECK(buf[0] == (char)0xab);
	_exit(0);   /* from the I/O thread: the process passed */
}

static void io_allowed(void *arg)
{
	static struct io_world w;
	char path[] = "/tmp/wafer-seccomp-XXXXXX", err[256];
	(void)arg;

	int fd = mkstemp(path);
	CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
	close(fd);
	CHECK(blk_raw_open(&w.be, path, false, false, 16, err, sizeof(err)) == 0);
	unlink(path);
	CHECK(eventloop_init(&w.loop) == 0);
	w.kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w.timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	CHECK(w.kick >= 0 && w.timer >= 0);
	CHECK(eventloop_add(&w.loop, w.kick, EPOLLIN, io_on_kick, &w) == 0);
	CHECK(seccomp_prepare(SECCOMP_ON) == 0);
	w.loop.thread_init = io_confine;
	CHECK(eventloop_start(&w.loop, "test-io") == 0);
	uint64_t one = 1;
	CHECK(write(w.kick, &one, sizeof(one)) == sizeof(one));
	pause();
}

/* The same thread's direct calls: readv/writev/preadv/pwritev, fdatasync,
 * fallocate, timers, block ioctls, the IRQ ioctls. */
static void io_direct(void *arg)
{
	char path[] = "/tmp/wafer-seccomp-XXXXXX", buf[512];
	struct iovec iov = { buf, sizeof(buf) };
	struct itimerspec its = { .it_value = { 0, 1000000 } };
	struct epoll_event ev;
	(void)arg;

	int fd = mkstemp(path);
	CHECK(fd >= 0);
	unlink(path);
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	CHECK(tfd >= 0 && ep >= 0);
	confine(SECCOMP_ON, SECCOMP_ROLE_IO);
	memset(buf, 7, sizeof(buf));
	CHECK(pwritev(fd, &iov, 1, 0) == sizeof(buf));
	CHECK(preadv(fd, &iov, 1, 0) == sizeof(buf));
	CHECK(writev(fd, &iov, 1) == sizeof(buf));
	CHECK(fdatasync(fd) == 0);
	CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 512) == 0);
	CHECK(timerfd_settime(tfd, 0, &its, NULL) == 0);
	CHECK(epoll_wait(ep, &ev, 1, 0) == 0);
	uint64_t range[2] = { 0, 512 };
	errno = 0;
	CHECK(ioctl(fd, BLKDISCARD, range) < 0 && errno == ENOTTY);
	CHECK(ioctl(fd, BLKZEROOUT, range) < 0 && errno == ENOTTY);
	CHECK(ioctl(-1, KVM_IRQ_LINE, 0) < 0 && errno == EBADF);
	CHECK(ioctl(-1, KVM_SET_GSI_ROUTING, 0) < 0 && errno == EBADF);
	CHECK(syscall(SYS_io_uring_enter, -1, 1, 0, 0, NULL, 0) < 0 && errno == EBADF);
	CHECK(getrandom(buf, 16, 0) == 16);
}

static void test_io_allowed(void **state)
{
	struct child c;
	(void)state;
	run_child(io_direct, NULL, &c);
	expect_exit0(&c);
	run_child(io_allowed, NULL, &c);
	expect_exit0(&c);
}

static void test_io_forbidden(void **state)
{
	(void)state;
	expect_forbidden(SECCOMP_ROLE_IO, call_unix_socket, SYS_socket, "socket");
	expect_forbidden(SECCOMP_ROLE_IO, call_ptrace, SYS_ptrace, "ptrace");
	expect_forbidden(SECCOMP_ROLE_IO, call_open_new, SYS_openat, "openat");
}

/* ---- API ---- */

static int api_fake_start(void *o, const struct api_config *cfg, char *err, size_t errlen)
{
	(void)o, (void)cfg, (void)err, (void)errlen;
	return 0;
}

static int api_fake_op(void *o, char *err, size_t errlen)
{
	(void)o, (void)err, (void)errlen;
	return 0;
}

static int api_fake_metrics(void *o, struct api_metrics *m)
{
	(void)o, (void)m;
	return 0;
}

static char api_metrics_path[128];

/* What run_ctl's FlushMetrics does: append a line to the metrics file. */
static int api_fake_flush(void *o, char *err, size_t errlen)
{
	(void)o, (void)err, (void)errlen;
	FILE *f = fopen(api_metrics_path, "a");
	if (!f)
		return -errno;
	fprintf(f, "{}\n");
	return fclose(f) ? -errno : 0;
}

/* What run_ctl's logger does with a log_path: stderr appends to it. */
static int api_fake_logger(void *o, const struct api_logger *l, char *err, size_t errlen)
{
	(void)o, (void)err, (void)errlen;
	FILE *f = fopen(l->log_path, "a");
	if (!f)
		return -errno;
	dup2(fileno(f), 100);
	fclose(f);
	return close(100) ? -errno : 0;
}

static const struct api_controller_ops api_fake_ops = {
	.start = api_fake_start, .pause = api_fake_op, .resume = api_fake_op,
	.send_ctrl_alt_del = api_fake_op, .flush_metrics = api_fake_flush,
	.get_metrics = api_fake_metrics, .set_logger = api_fake_logger,
};

static int api_confine(void *arg, char *err, size_t errlen)
{
	(void)arg;
	return seccomp_install_inherited(SECCOMP_ROLE_API, err, errlen);
}

/* One HTTP/1.0 request; returns the status code. */
static int http_call(const char *sock, const char *method, const char *path, const char *body)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char req[8192], resp[4096];
	size_t got = 0;
	ssize_t r;
	int code = -1;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(fd >= 0);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s",
			 method, path, body ? strlen(body) : 0, body ? body : "");
	CHECK(write(fd, req, (size_t)n) == n);
	while (got < sizeof(resp) - 1 && (r = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
		got += (size_t)r;
	resp[got] = '\0';
	close(fd);
	sscanf(resp, "HTTP/1.%*d %d", &code);
	return code;
}

static void api_allowed(void *arg)
{
	char dir[] = "/tmp/wafer-seccomp-XXXXXX", sock[128], kernel[128], body[512], err[256];
	struct api_controller ctrl = { .ops = &api_fake_ops };
	struct api_router *router;
	struct api_server *server;
	(void)arg;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(sock, sizeof(sock), "%s/api.sock", dir);
	snprintf(kernel, sizeof(kernel), "%s/kernel", dir);
	snprintf(api_metrics_path, sizeof(api_metrics_path), "%s/metrics", dir);
	CHECK(api_router_create(&router, &ctrl, "seccomp-test") == 0);
	CHECK(seccomp_prepare(SECCOMP_ON) == 0);
	CHECK(api_server_start(&server, sock, router, api_confine, NULL, err, sizeof(err)) == 0);
	/* This thread (unconfined) is the client; the server thread is confined. */
	CHECK(http_call(sock, "GET", "/", NULL) == 200);
	CHECK(http_call(sock, "GET", "/version", NULL) == 200);
	CHECK(http_call(sock, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 64}") == 204);
	CHECK(http_call(sock, "GET", "/machine-config", NULL) == 200);
	snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\"}", kernel);
	CHECK(http_call(sock, "PUT", "/boot-source", body) == 400);   /* stat: no such file */
	int fd = open(kernel, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0 && close(fd) == 0);
	CHECK(http_call(sock, "PUT", "/boot-source", body) == 204);
	snprintf(body, sizeof(body), "{\"metrics_path\": \"%s\"}", api_metrics_path);
	CHECK(http_call(sock, "PUT", "/metrics", body) == 204);
	CHECK(http_call(sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}") == 204);
	CHECK(http_call(sock, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}") == 204);
	CHECK(access(api_metrics_path, F_OK) == 0);                  /* appended by the API thread */
	snprintf(body, sizeof(body), "{\"log_path\": \"%s\", \"level\": \"Info\"}", api_metrics_path);
	CHECK(http_call(sock, "PUT", "/logger", body) == 204);
	CHECK(http_call(sock, "GET", "/metrics", NULL) == 200);
	CHECK(http_call(sock, "GET", "/vm/config", NULL) == 200);
	CHECK(http_call(sock, "PATCH", "/vm", "{\"state\": \"Paused\"}") == 204);
	CHECK(http_call(sock, "PATCH", "/vm", "{\"state\": \"Resumed\"}") == 204);
	CHECK(http_call(sock, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}") == 204);
	CHECK(http_call(sock, "GET", "/nowhere", NULL) == 400);
	api_server_stop(server);
	api_router_destroy(router);
	unlink(kernel);
	unlink(api_metrics_path);
	rmdir(dir);
}

/* The direct calls of the API role: sockets, files it may append to. */
static void api_direct(void *arg)
{
	char dir[] = "/tmp/wafer-seccomp-XXXXXX", path[128], buf[64];
	struct stat st;
	int sv[2];
	(void)arg;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/f", dir);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
	CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 1) == 0);
	confine(SECCOMP_ON, SECCOMP_ROLE_API);
	CHECK(accept4(lfd, NULL, NULL, SOCK_CLOEXEC) < 0 && errno == EAGAIN);
	CHECK(send(sv[0], "ab", 2, MSG_NOSIGNAL) == 2);
	CHECK(recv(sv[1], buf, sizeof(buf), 0) == 2);
	CHECK(shutdown(sv[0], SHUT_WR) == 0);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	CHECK(fd >= 0 && write(fd, "x", 1) == 1 && fstat(fd, &st) == 0 && st.st_size == 1);
	CHECK(pwrite(fd, "y", 1, 0) == 1);
	CHECK(dup2(fd, 100) == 100 && close(100) == 0 && close(fd) == 0);
	CHECK(stat(path, &st) == 0 && access(path, R_OK) == 0);
	int efd = eventfd(0, EFD_CLOEXEC);
	CHECK(efd >= 0 && fcntl(efd, F_SETFL, O_NONBLOCK) == 0);
	CHECK(ioctl(-1, KVM_IRQ_LINE, 0) < 0 && errno == EBADF);
	CHECK(prctl(PR_SET_NAME, "api-test") == 0);
	/* A thread started from here inherits the filter (clone3 -> clone). */
	pthread_t t;
	CHECK(pthread_create(&t, NULL, yield_thread, NULL) == 0);
	CHECK(pthread_join(t, NULL) == 0);
}

static void test_api_allowed(void **state)
{
	struct child c;
	(void)state;
	run_child(api_direct, NULL, &c);
	expect_exit0(&c);
	run_child(api_allowed, NULL, &c);
	expect_exit0(&c);
}

static void *api_thread_socket(void *arg)
{
	(void)arg;
	socket(AF_INET, SOCK_DGRAM, 0);
	return NULL;
}

/* Like libmicrohttpd's thread: created by a confined thread, runs no code
 * that names its role, and is still reported as the API. */
static void *api_starter(void *arg)
{
	pthread_t t;
	char err[256];
	(void)arg;
	CHECK(seccomp_install_inherited(SECCOMP_ROLE_API, err, sizeof(err)) == 0);
	CHECK(pthread_create(&t, NULL, api_thread_socket, NULL) == 0);
	pthread_join(t, NULL);
	return NULL;
}

static void api_inherited(void *arg)
{
	pthread_t t;
	(void)arg;
	CHECK(seccomp_prepare(SECCOMP_ON) == 0);
	CHECK(pthread_create(&t, NULL, api_starter, NULL) == 0);
	pthread_join(t, NULL);
}

static void test_api_forbidden(void **state)
{
	struct child c;
	(void)state;
	expect_forbidden(SECCOMP_ROLE_API, call_open_read, SYS_openat, "openat");  /* never read */
	expect_forbidden(SECCOMP_ROLE_API, call_open_trunc, SYS_openat, "openat");
	expect_forbidden(SECCOMP_ROLE_API, call_fork, SYS_clone, "clone");
	expect_forbidden(SECCOMP_ROLE_API, call_execve, SYS_execve, "execve");
	run_child(api_inherited, NULL, &c);
	expect_killed(&c, "api", SYS_socket, "socket");
}

/* ---- main ---- */

static void main_allowed(void *arg)
{
	char dir[] = "/tmp/wafer-seccomp-XXXXXX", path[128], err[256];
	struct termios t;
	struct stat st;
	sigset_t set;
	int p[2];
	(void)arg;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/disk", dir);
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
	close(fd);
	struct blk_backend *be;
	CHECK(blk_raw_open(&be, path, false, false, 16, err, sizeof(err)) == 0);
	CHECK(pipe(p) == 0);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	confine(SECCOMP_ON, SECCOMP_ROLE_MAIN);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	CHECK(sfd >= 0);
	struct pollfd pfd[2] = { { .fd = p[0], .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
	CHECK(write(p[1], "k", 1) == 1);
	CHECK(poll(pfd, 2, 0) == 1);
	char c;
	CHECK(read(p[0], &c, 1) == 1);
	errno = 0;
	CHECK(tcgetattr(p[0], &t) < 0 && errno == ENOTTY);
	CHECK(ioctl(-1, TCSETSF, &t) < 0 && errno == EBADF);
	struct timespec zero = { 0, 0 };
	CHECK(sigtimedwait(&set, NULL, &zero) < 0 && errno == EAGAIN);
	CHECK(ioctl(-1, KVM_IRQFD, 0) < 0 && errno == EBADF);
	CHECK(ioctl(-1, KVM_IOEVENTFD, 0) < 0 && errno == EBADF);
	/* Teardown: the disk backend's close (io_uring exit) and the files. */
	blk_backend_close(be);
	CHECK(lstat(path, &st) == 0 && unlink(path) == 0 && rmdir(dir) == 0);
	close(sfd);
}

/* A VM built as far as it goes without KVM (the KVM device is a path that
 * does not exist): boot image, guest RAM, the I/O event loop, a disk with
 * io_uring, virtio-rng. */
static struct vm built;
static char built_kernel[600], built_disk[64];

static void build_vm(bool rebuilds)
{
	char exe[512];

	if (!built_disk[0]) {   /* the test's own set-up, once, before any filter */
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		CHECK(n > 0);
		exe[n] = '\0';
		*strrchr(exe, '/') = '\0';
		snprintf(built_kernel, sizeof(built_kernel), "%s/../guests/hello.elf", exe);
		snprintf(built_disk, sizeof(built_disk), "/tmp/wafer-seccomp-XXXXXX");
		int fd = mkstemp(built_disk);
		CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0 && close(fd) == 0);
	}
	struct vm_config cfg = {
		.name = "built", .kernel = built_kernel, .cmdline = "", .cpu_template = "baseline",
		.kvm_path = "/nonexistent/kvm", .ncpus = 1, .mem_size = 64ull << 20, .rng = 1,
		.ndisks = 1, .disks = { { .path = built_disk, .id = "disk0" } }, .rebuilds = rebuilds,
	};
	CHECK(vm_create(&built, &cfg) == -ENOENT);
}

/* The restart itself: vm_destroy, then vm_create of the same VM on the
 * confined main thread. */
static void rebuild_vm(void *arg)
{
	(void)arg;
	build_vm(true);   /* the first build: no filter yet */
	vm_destroy(&built);
	confine(SECCOMP_ON, SECCOMP_ROLE_MAIN_REBUILD);
	build_vm(true);
	vm_destroy(&built);
	unlink(built_disk);
}

/* The main thread's teardown of what a build left (event loop, io_uring
 * disk, guest RAM) under the plain main filter. */
static void main_teardown(void *arg)
{
	(void)arg;
	build_vm(false);
	confine(SECCOMP_ON, SECCOMP_ROLE_MAIN);
	vm_destroy(&built);
	CHECK(unlink(built_disk) == 0);
}

static void test_main_allowed(void **state)
{
	struct child c;
	(void)state;
	run_child(main_allowed, NULL, &c);
	expect_exit0(&c);
	run_child(main_teardown, NULL, &c);
	expect_exit0(&c);
	assert_non_null(strstr(c.err, "/nonexistent/kvm: not present"));
}

static void main_thread(void *arg)
{
	struct rlimit none = { 0, 0 };
	pthread_t t;
	(void)arg;
	setrlimit(RLIMIT_CORE, &none);
	confine(SECCOMP_ON, SECCOMP_ROLE_MAIN);
	pthread_create(&t, NULL, yield_thread, NULL);
}

static void test_main_forbidden(void **state)
{
	struct child c;
	(void)state;
	expect_forbidden(SECCOMP_ROLE_MAIN, call_exec_mmap, SYS_mmap, "mmap");
	expect_forbidden(SECCOMP_ROLE_MAIN, call_unix_socket, SYS_socket, "socket");
	expect_forbidden(SECCOMP_ROLE_MAIN, call_open_read, SYS_openat, "openat");
	/* pthread_create blocks every signal around clone3, so the kernel
	 * delivers SIGSYS with its default action: no line, but dead. */
	run_child(main_thread, NULL, &c);
	assert_true(WIFSIGNALED(c.status));
	assert_int_equal(WTERMSIG(c.status), SIGSYS);
}

/* A vCPU thread of a rebuilt VM: born under the main thread's filter, it
 * names itself, installs its own and runs. */
static void *rebuilt_vcpu(void *arg)
{
	char err[256];
	int fd = *(int *)arg;

	pthread_setname_np(pthread_self(), "vcpu0");
	CHECK(seccomp_install(SECCOMP_ROLE_VCPU, err, sizeof(err)) == 0);
	CHECK(ioctl(fd, KVM_RUN, 0) < 0 && errno == ENOTTY);
	return NULL;
}

/* With a restart policy the main thread builds again and creates threads
 * that then confine themselves. */
static void rebuild_allowed(void *arg)
{
	(void)arg;
	vcpu_signals_init();   /* the first build, before any filter */
	confine(SECCOMP_ON, SECCOMP_ROLE_MAIN_REBUILD);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(ioctl(fd, KVM_CREATE_VM, 0) < 0 && errno == ENOTTY);
	CHECK(ioctl(fd, KVM_RUN, 0) < 0 && errno == ENOTTY);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(s >= 0 && close(s) == 0);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, rebuilt_vcpu, &fd) == 0);
	CHECK(pthread_join(t, NULL) == 0);
	vcpu_signals_init();   /* vm_create calls it again on every build */
}

static void test_main_rebuild(void **state)
{
	struct child c;
	(void)state;
	run_child(rebuild_allowed, NULL, &c);
	expect_exit0(&c);
	run_child(rebuild_vm, NULL, &c);
	expect_exit0(&c);
	assert_non_null(strstr(c.err, "/nonexistent/kvm: not present"));
	expect_forbidden(SECCOMP_ROLE_MAIN_REBUILD, call_execve, SYS_execve, "execve");
	expect_forbidden(SECCOMP_ROLE_MAIN_REBUILD, call_unix_socket, SYS_socket, "socket");
	expect_forbidden(SECCOMP_ROLE_MAIN_REBUILD, call_fork, SYS_clone, "clone");
}

/* ---- the console hand-over: GET /console on the API thread ---- */

/* `wafer console NAME` once hung: the attach (API thread) made the wake-up
 * eventfd the first time a client came, while console_run (main thread,
 * under its filter) already slept in poll without it, so it never saw the
 * client. Here the real console_run serves under the main filter and the
 * real console_attach runs under the API filter, in that order. */
static struct {
	pid_t main_tid;
	int go[2];          /* user -> API thread: attach now */
	int client[2];      /* [0]: the upgraded API socket, [1]: the user's end */
	atomic_int done;    /* the done callback ran: the client was let go */
} cons;

static void console_done(void *arg)
{
	(void)arg;
	atomic_store(&cons.done, 1);
}

static void *console_api_thread(void *arg)
{
	char err[256], c;
	(void)arg;
	CHECK(seccomp_install(SECCOMP_ROLE_API, err, sizeof(err)) == 0);
	CHECK(read(cons.go[0], &c, 1) == 1);
	CHECK(console_attach(&vm, cons.client[0], console_done, NULL) == 0);
	return NULL;
}

/* tid is blocked in poll (or ppoll): /proc's first field of .../syscall. */
static bool console_in_poll(pid_t tid)
{
	char path[64], buf[128] = "";
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	bool ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	long nr = ok ? strtol(buf, NULL, 10) : -1;
	return nr == SYS_poll || nr == SYS_ppoll;
}

/* The user (unconfined): once console_run sleeps without a client, attach,
 * type, see the keys reach COM1's receive FIFO and the guest's output
 * come back, then stop the VM. */
static void *console_user_thread(void *arg)
{
	struct pollfd pfd = { .fd = cons.client[1], .events = POLLIN };
	unsigned i;
	char c;
	(void)arg;

	for (i = 0; i < 500 && !console_in_poll(cons.main_tid); i++)
		usleep(10000);
	usleep(20000);
	CHECK(write(cons.go[1], "a", 1) == 1);
	CHECK(write(cons.client[1], "hi", 2) == 2);
	for (i = 0; i < 500 && !(inb(0x3fd) & 1); i++)     /* LSR: data ready */
		usleep(10000);
	CHECK((inb(0x3fd) & 1) && "the keys never reached COM1: console_run missed the client");
	CHECK(inb(0x3f8) == 'h' && inb(0x3f8) == 'i');
	outb(0x3f8, 'o');                                 /* the guest prints */
	CHECK(poll(&pfd, 1, 5000) == 1 && read(cons.client[1], &c, 1) == 1 && c == 'o');
	uint64_t one = 1;
	CHECK(write(vm.stop_eventfd, &one, sizeof(one)) == sizeof(one));
	return NULL;
}

static void console_handover(void *arg)
{
	pthread_t api, user;
	char err[256];
	int in[2];
	(void)arg;

	vcpu_world();
	/* stdin: a pipe nobody writes, so console_run sleeps in poll. */
	CHECK(pipe(in) == 0 && dup2(in[0], STDIN_FILENO) == STDIN_FILENO);
	CHECK(pipe(cons.go) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, cons.client) == 0);
	cons.main_tid = (pid_t)syscall(SYS_gettid);
	CHECK(seccomp_prepare(SECCOMP_ON) == 0);
	CHECK(pthread_create(&api, NULL, console_api_thread, NULL) == 0);
	CHECK(pthread_create(&user, NULL, console_user_thread, NULL) == 0);
	CHECK(seccomp_install(SECCOMP_ROLE_MAIN, err, sizeof(err)) == 0);
	console_run(&vm);
	CHECK(pthread_join(user, NULL) == 0 && pthread_join(api, NULL) == 0);
	CHECK(atomic_load(&cons.done));   /* the VM stopped: the client was let go */
}

static void test_console_handover(void **state)
{
	struct child c;
	(void)state;
	run_child(console_handover, NULL, &c);
	expect_exit0(&c);
}

/* ---- glibc's lazily read files ---- */

/* Twelve threads born confined (as libmicrohttpd's are), all alive at once,
 * each with its own malloc arena (glibc reads the CPU count from /sys when
 * it makes the ninth), grow and shrink their heaps (glibc reads
 * /proc/sys/vm/overcommit_memory on the first shrink). */
static pthread_barrier_t churn_barrier;

static void *churn_thread(void *arg)
{
	void *p[64];
	(void)arg;

	pthread_barrier_wait(&churn_barrier);
	for (unsigned round = 0; round < 4; round++) {
		for (unsigned i = 0; i < 64; i++) {
			p[i] = malloc(16 << 10 << (round & 1));
			CHECK(p[i] != NULL);
			memset(p[i], 1, 64);
		}
		for (unsigned i = 64; i-- > 0;)
			free(p[i]);
	}
	return NULL;
}

static void *churn_starter(void *arg)
{
	pthread_t t[12];
	char err[256];
	(void)arg;
	CHECK(seccomp_install_inherited(SECCOMP_ROLE_API, err, sizeof(err)) == 0);
	pthread_barrier_init(&churn_barrier, NULL, 12);
	for (unsigned i = 0; i < 12; i++)
		CHECK(pthread_create(&t[i], NULL, churn_thread, NULL) == 0);
	for (unsigned i = 0; i < 12; i++)
		pthread_join(t[i], NULL);
	return NULL;
}

static void malloc_churn(void *arg)
{
	pthread_t t;
	(void)arg;
	CHECK(seccomp_prepare(SECCOMP_ON) == 0);
	CHECK(pthread_create(&t, NULL, churn_starter, NULL) == 0);
	pthread_join(t, NULL);
}

static void test_malloc_in_thread_arenas(void **state)
{
	struct child c;
	(void)state;
	run_child(malloc_churn, NULL, &c);
	expect_exit0(&c);
}

/* ---- modes, and what the kernel reports ---- */

static void log_mode(void *arg)
{
	(void)arg;
	confine(SECCOMP_LOG, SECCOMP_ROLE_VCPU);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);   /* allowed, logged by the kernel */
	CHECK(s >= 0);
}

static void off_mode(void *arg)
{
	(void)arg;
	confine(SECCOMP_OFF, SECCOMP_ROLE_VCPU);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(s >= 0);
}

static void test_modes(void **state)
{
	struct child c;
	enum seccomp_mode m;
	(void)state;
	run_child(log_mode, NULL, &c);
	expect_exit0(&c);
	run_child(off_mode, NULL, &c);
	expect_exit0(&c);
	assert_int_equal(seccomp_mode_parse("on", &m), 0);
	assert_int_equal(m, SECCOMP_ON);
	assert_int_equal(seccomp_mode_parse("log", &m), 0);
	assert_int_equal(m, SECCOMP_LOG);
	assert_int_equal(seccomp_mode_parse("off", &m), 0);
	assert_int_equal(m, SECCOMP_OFF);
	assert_int_equal(seccomp_mode_parse("1", &m), -EINVAL);
}

/* The child confines itself (filters stack per thread: installing a role
 * twice is one filter) and waits; /proc says so from outside. */
static void proc_status(void *arg)
{
	int fd = *(int *)arg;
	char err[256];
	confine(SECCOMP_ON, SECCOMP_ROLE_VCPU);
	CHECK(seccomp_install(SECCOMP_ROLE_VCPU, err, sizeof(err)) == 0);
	CHECK(write(fd, "r", 1) == 1);
	for (;;) {
		struct timespec ts = { 1, 0 };
		nanosleep(&ts, NULL);
	}
}

static void test_proc_status(void **state)
{
	int p[2];
	char path[64], buf[4096], c;
	(void)state;

	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		proc_status(&p[1]);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(p[0]);
	assert_non_null(strstr(buf, "\nSeccomp:\t2\n"));
	assert_non_null(strstr(buf, "\nSeccomp_filters:\t1\n"));
	assert_non_null(strstr(buf, "\nNoNewPrivs:\t1\n"));
}

/* README's "System call filters" list is what seccomp_describe prints. */
static void test_readme_in_sync(void **state)
{
	static const char begin[] = "<!-- seccomp-roles: begin (generated by seccomp_describe; "
				    "tests/unit/test_seccomp.c checks it) -->\n";
	static const char end[] = "<!-- seccomp-roles: end -->";
	char *want = NULL, readme[1 << 16];
	size_t wlen = 0;
	(void)state;

	FILE *m = open_memstream(&want, &wlen);
	assert_non_null(m);
	seccomp_describe(m);
	fclose(m);
	FILE *f = fopen(WAFER_SOURCE_ROOT "/README.md", "r");
	assert_non_null(f);
	size_t n = fread(readme, 1, sizeof(readme) - 1, f);
	readme[n] = '\0';
	fclose(f);
	char *b = strstr(readme, begin), *e = b ? strstr(b, end) : NULL;
	if (!b || !e || (size_t)(e - b - (ptrdiff_t)strlen(begin)) != wlen ||
	    memcmp(b + strlen(begin), want, wlen)) {
		fprintf(stderr, "README.md's seccomp section is stale; between the markers it should read:\n"
			"%s%s%s\n", begin, want, end);
		free(want);
		fail();
	}
	free(want);
}

/* ---- state: snapshots and outgoing migrations ---- */

/* The receiving end, in the unconfined parent: one migration into its own
 * guest memory, which must then equal the sender's. */
struct state_recv {
	int lfd;
	atomic_bool accepting;   /* the thread is at migrate_accept: fork now */
	struct guest_mem mem;
	int rc;
	char err[256];
};

/* A real destination takes a while to build its VM and to load the state;
 * meanwhile the source sits in its poll loop, whose idle slices (100 ms) ask
 * the socket for its send queue (SIOCOUTQ). A receiver that answers at once
 * never lets that run: this one takes three slices for each. */
static void sr_busy(void)
{
	struct timespec ts = { 0, 350 * 1000000L };
	nanosleep(&ts, NULL);
}

static int sr_prepare(void *o, const void *hello, size_t len, uint64_t size, struct guest_mem **m,
		      char *err, size_t errlen)
{
	struct state_recv *r = o;
	(void)hello, (void)len, (void)err, (void)errlen;
	sr_busy();
	if (gmem_alloc(&r->mem, size))
		return -ENOMEM;
	*m = &r->mem;
	return 0;
}

static int sr_load(void *o, const struct snap_reader *rd, char *err, size_t errlen)
{
	struct snap_section s;
	(void)o, (void)err, (void)errlen;
	sr_busy();
	return snap_reader_find(rd, "test", 0, &s);
}

static void *state_receiver(void *arg)
{
	static const struct migrate_dest_ops ops = { sr_prepare, sr_load };
	struct state_recv *r = arg;
	int fd;
	atomic_store(&r->accepting, true);
	r->rc = migrate_accept(r->lfd, 20000, &fd, r->err, sizeof(r->err));
	if (!r->rc) {
		r->rc = migrate_receive(fd, &ops, r, NULL, NULL, r->err, sizeof(r->err));
		close(fd);
	}
	return NULL;
}

static struct guest_mem state_mem;
static char state_dir[64], state_url[128];

static int ss_ok(void *o) { (void)o; return 0; }
static void ss_stop(void *o) { (void)o; }
static int ss_harvest(void *o, uint64_t *b) { gmem_dirty_harvest(o, b); return 0; }
static int ss_save(void *o, struct snap_buf *b)
{
	(void)o;
	snap_section_end(b, snap_section_begin(b, "test", 0, 1));
	return b->err;
}

/* In the confined child: what a snapshot and an outgoing migration do,
 * minus KVM (its ioctls go to a closed descriptor: EBADF, not a kill). */
static void state_allowed(void *arg)
{
	static const struct migrate_source_ops ops = {
		.dirty_start = ss_ok, .dirty_stop = ss_stop, .dirty_harvest = ss_harvest,
		.pause = ss_ok, .resume = ss_ok, .save_state = ss_save,
	};
	struct snap_disk_identity id;
	struct kvm_dirty_log log = { .slot = 0 };
	struct kvm_regs regs;
	char err[256], path[128];
	(void)arg;

	confine(SECCOMP_ON, SECCOMP_ROLE_STATE);
	CHECK(ioctl(-1, KVM_GET_REGS, &regs) < 0 && errno == EBADF);
	CHECK(ioctl(-1, KVM_GET_DIRTY_LOG, &log) < 0 && errno == EBADF);
	uint32_t crc;
	CHECK(snap_write_atomic(state_dir, "memory", state_mem.host, state_mem.size, &crc, err,
				sizeof(err)) == 0);
	CHECK(crc == snap_crc32(state_mem.host, state_mem.size));
	CHECK(snap_write_atomic(state_dir, "memory", state_mem.host, 4096, NULL, err,
				sizeof(err)) == 0);
	snprintf(path, sizeof(path), "%s/memory", state_dir);
	CHECK(snapshot_disk_identity(path, &id) == 0 && id.size == 4096);
	CHECK(gmem_dirty_start(&state_mem) == 0);
	int fd, q = -1;
	CHECK(migrate_connect(state_url, 10000, &fd, err, sizeof(err)) == 0);
	CHECK(ioctl(fd, SIOCOUTQ, &q) == 0 && q == 0);
	CHECK(migrate_send(fd, &state_mem, "hi", 2, &ops, &state_mem, NULL, NULL, err,
			   sizeof(err)) == 0);
	close(fd);
}

/* One migration from the confined child to a receiver here, over url. */
static void state_migrate(const char *url)
{
	struct state_recv r = { .lfd = -1 };
	struct child c;
	pthread_t t;

	assert_int_equal(gmem_alloc(&state_mem, 8u << 20), 0);
	for (uint64_t i = 0; i < state_mem.size; i += 4096)
		state_mem.host[i] = (uint8_t)(i >> 12 | 1);
	assert_int_equal(migrate_listen(url, &r.lfd, r.err, sizeof(r.err)), 0);
	assert_int_equal(migrate_listen_url(r.lfd, state_url, sizeof(state_url)), 0);
	assert_int_equal(pthread_create(&t, NULL, state_receiver, &r), 0);
	/* Fork only once the thread has started and allocates nothing: the
	 * ASan allocator's locks are not made fork-safe, and a child forked
	 * while the thread held one waits for it forever. */
	while (!atomic_load(&r.accepting))
		usleep(1000);
	run_child(state_allowed, NULL, &c);
	pthread_join(t, NULL);
	close(r.lfd);
	expect_exit0(&c);
	if (r.rc)
		fail_msg("%s: the receiver says: %s", url, r.err);
	assert_memory_equal(r.mem.host, state_mem.host, state_mem.size);
	gmem_free(&r.mem);
	gmem_free(&state_mem);
}

/* Over TCP loopback, as `wafer migrate NAME tcp:HOST:PORT`, and a unix
 * socket, with a destination slow enough for the sender's idle polls. */
static void test_state_allowed(void **state)
{
	char path[128], unix_url[128];
	(void)state;

	snprintf(state_dir, sizeof(state_dir), "/tmp/wafer-sc-state.XXXXXX");
	assert_non_null(mkdtemp(state_dir));
	state_migrate("tcp:127.0.0.1:0");
	snprintf(unix_url, sizeof(unix_url), "unix:%s/mig.sock", state_dir);
	state_migrate(unix_url);
	snprintf(path, sizeof(path), "%s/memory", state_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/mig.sock", state_dir);
	unlink(path);
	rmdir(state_dir);
}

static void call_kvm_set_regs(void) { struct kvm_regs r = { 0 }; ioctl(-1, KVM_SET_REGS, &r); }
static void call_listen(void) { listen(-1, 1); }
/* Of the socket ioctls only SIOCOUTQ: not, say, its neighbour SIOCINQ. */
static void call_siocinq(void) { int q; ioctl(-1, SIOCINQ, &q); }

static void test_state_forbidden(void **state)
{
	(void)state;
	expect_forbidden(SECCOMP_ROLE_STATE, call_execve, SYS_execve, "execve");
	expect_forbidden(SECCOMP_ROLE_STATE, call_ptrace, SYS_ptrace, "ptrace");
	expect_forbidden(SECCOMP_ROLE_STATE, call_kvm_set_regs, SYS_ioctl, "ioctl");
	expect_forbidden(SECCOMP_ROLE_STATE, call_listen, SYS_listen, "listen");
	expect_forbidden(SECCOMP_ROLE_STATE, call_siocinq, SYS_ioctl, "ioctl");
	expect_forbidden(SECCOMP_ROLE_STATE, call_fork, SYS_clone, "clone");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vcpu_allowed),
		cmocka_unit_test(test_vcpu_forbidden),
		cmocka_unit_test(test_io_allowed),
		cmocka_unit_test(test_io_forbidden),
		cmocka_unit_test(test_api_allowed),
		cmocka_unit_test(test_api_forbidden),
		cmocka_unit_test(test_main_allowed),
		cmocka_unit_test(test_main_forbidden),
		cmocka_unit_test(test_main_rebuild),
		cmocka_unit_test(test_console_handover),
		cmocka_unit_test(test_state_allowed),
		cmocka_unit_test(test_state_forbidden),
		cmocka_unit_test(test_malloc_in_thread_arenas),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_proc_status),
		cmocka_unit_test(test_readme_in_sync),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
