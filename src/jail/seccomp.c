/* System call allowlists per thread role (see seccomp.h). The lists come
 * from reading each role's code paths and from strace runs of the ones that
 * run without KVM (README "System call filters" says which). Filters are
 * per thread (no TSYNC): each thread installs its own before it serves, so
 * a vCPU thread never carries what the API needs and vice versa. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <linux/sockios.h>
#include <malloc.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "jail/seccomp.h"

/* One allowlist entry: a syscall by name, with at most one condition on one
 * argument (what says it in words for the docs; NULL = any arguments). */
struct sc_rule {
	const char *name;
	const char *what;
	unsigned arg;
	enum scmp_compare op;
	scmp_datum_t a, b;
	int errno_val;          /* 0: allow; else fail with this errno */
};

#define SC(n)                { #n, NULL, 0, _SCMP_CMP_MIN, 0, 0, 0 }
#define SC_EQ(n, i, v)       { #n, #v, i, SCMP_CMP_EQ, (scmp_datum_t)(v), 0, 0 }
#define SC_MASK(n, i, m, v, doc) { #n, doc, i, SCMP_CMP_MASKED_EQ, (scmp_datum_t)(m), (scmp_datum_t)(v), 0 }
#define SC_IOCTL(req)        { "ioctl", #req, 1, SCMP_CMP_EQ, (scmp_datum_t)(req), 0, 0 }
#define SC_FAIL(n, e)        { #n, "fails with " #e, 0, _SCMP_CMP_MIN, 0, 0, e }

struct sc_group {
	const char *name;
	const char *why;
	const struct sc_rule *rules;
	size_t n;
};

#define SC_GROUP(name, why, rules) { name, why, rules, sizeof(rules) / sizeof(rules[0]) }

/* Every thread: leaving, signals (the vCPU kick's handler returns through
 * rt_sigreturn), locks, clocks, malloc (never executable memory), log
 * lines on stderr, eventfd signals, json-c's hash seed. */
static const struct sc_rule sc_common[] = {
	SC(exit), SC(exit_group), SC(restart_syscall), SC(rt_sigreturn), SC(rt_sigprocmask),
	SC(futex), SC(sched_yield), SC(nanosleep), SC(clock_nanosleep),
	SC(clock_gettime), SC(gettimeofday), SC(time), SC(getpid), SC(gettid),
	SC_MASK(mmap, 2, PROT_EXEC, 0, "prot without PROT_EXEC"),
	SC_MASK(mprotect, 2, PROT_EXEC, 0, "prot without PROT_EXEC"),
	SC(munmap), SC(madvise), SC(brk), SC(mremap),
	SC(write), SC(getrandom),
	SC_EQ(tgkill, 2, SIGUSR1), SC_EQ(tgkill, 2, SIGABRT),
};

/* KVM_RUN and its exits: PIO/MMIO device models (serial output and its API
 * mirror, PCI config, MSI-X routes and irqfds, virtio-pci notify fallback,
 * BAR moves re-registering ioeventfds, virtio-net feature negotiation),
 * the crash diagnosis and the emulation-failure fixups. */
static const struct sc_rule sc_vcpu[] = {
	SC_IOCTL(KVM_RUN), SC_IOCTL(KVM_GET_REGS), SC_IOCTL(KVM_SET_REGS), SC_IOCTL(KVM_GET_SREGS),
	SC_IOCTL(KVM_TRANSLATE), SC_IOCTL(KVM_GET_VCPU_EVENTS), SC_IOCTL(KVM_SET_VCPU_EVENTS),
	SC_IOCTL(KVM_IRQ_LINE), SC_IOCTL(KVM_IRQFD), SC_IOCTL(KVM_IOEVENTFD),
	SC_IOCTL(KVM_SET_GSI_ROUTING), SC_IOCTL(TUNSETOFFLOAD),
	SC_EQ(sendto, 3, MSG_DONTWAIT | MSG_NOSIGNAL),
};

/* The event loop: queue notifications, io_uring submission and the
 * synchronous fallbacks, tap frames, rate-limit timers, interrupts. */
static const struct sc_rule sc_io[] = {
	SC(epoll_wait), SC(epoll_pwait), SC(read), SC(readv), SC(writev), SC(preadv), SC(pwritev),
	SC(fdatasync), SC(fallocate), SC(io_uring_enter), SC(timerfd_settime),
	SC_IOCTL(BLKDISCARD), SC_IOCTL(BLKZEROOUT), SC_IOCTL(KVM_IRQ_LINE),
	SC_IOCTL(KVM_SET_GSI_ROUTING),
};

/* Creating threads that inherit the filter: glibc tries clone3 first and
 * falls back to clone, whose flags a filter can check (a thread, never a
 * new process). */
static const struct sc_rule sc_threads[] = {
	SC_FAIL(clone3, ENOSYS),
	SC_MASK(clone, 0, CLONE_THREAD, CLONE_THREAD, "flags with CLONE_THREAD"),
	SC(set_robust_list), SC(rseq), SC_EQ(prctl, 0, PR_SET_NAME),
};

/* libmicrohttpd's thread (its start-up in the thread that starts it, then
 * every connection), the checks PUT /boot-source and PUT /drives make on
 * host files, PUT /logger and FlushMetrics appending to their files, the
 * console hand-over, run-time rate limits and cgroup limits (through
 * descriptors opened at start), pause kicks, Ctrl-Alt-Del's IRQ. */
static const struct sc_rule sc_api[] = {
	SC(epoll_create1), SC(epoll_ctl), SC(epoll_wait), SC(eventfd2), SC(getsockname),
	SC(getsockopt), SC(accept4), SC(recvfrom), SC(recvmsg), SC(sendto), SC(sendmsg),
	SC(shutdown), SC(close), SC(read), SC(fcntl), SC(newfstatat), SC(fstat), SC(access),
	SC_MASK(openat, 2, O_ACCMODE | O_TRUNC | O_PATH, O_WRONLY,
		"flags O_WRONLY without O_TRUNC: append or create, never read"),
	SC(lseek), SC(dup2), SC(dup3), SC(pwrite64), SC(timerfd_settime),
	SC_IOCTL(KVM_IRQ_LINE),
};

/* The serial console on the terminal, signals, the stop and teardown
 * (deassigning irqfds/ioeventfds, waiting out io_uring requests, the API
 * server, the pid file and socket, leaving the cgroups), the preserve
 * policy's wait. */
static const struct sc_rule sc_main[] = {
	SC(poll), SC(ppoll), SC(read), SC(signalfd4), SC(rt_sigtimedwait), SC(close),
	SC_IOCTL(TCGETS), SC_IOCTL(TCSETS), SC_IOCTL(TCSETSW), SC_IOCTL(TCSETSF),
	SC_IOCTL(KVM_IRQFD), SC_IOCTL(KVM_IOEVENTFD), SC_IOCTL(KVM_SET_GSI_ROUTING),
	SC_IOCTL(KVM_IRQ_LINE),
	SC(epoll_ctl), SC(io_uring_enter), SC(newfstatat), SC(unlink), SC(rmdir), SC(pwrite64),
};

/* Building a VM again (restart policy): the boot image, disks, taps
 * (recreated with a socket ioctl when they vanished with the old VM),
 * KVM setup, guest RAM, io_uring, the new threads, which then install
 * their own filters (a filter only ever narrows what is allowed). */
static const struct sc_rule sc_build[] = {
	SC_EQ(seccomp, 0, SECCOMP_SET_MODE_FILTER), SC_EQ(prctl, 0, PR_SET_NO_NEW_PRIVS),
	SC(openat), SC(pread64), SC(fstat), SC(lseek), SC(flock), SC(fcntl), SC(sysinfo),
	SC(eventfd2), SC(epoll_create1), SC(timerfd_create), SC(io_uring_setup),
	SC(io_uring_register), SC(sched_getaffinity), SC(sched_setaffinity),
	SC_EQ(socket, 0, AF_INET),
	SC_IOCTL(KVM_GET_API_VERSION), SC_IOCTL(KVM_CHECK_EXTENSION), SC_IOCTL(KVM_GET_VCPU_MMAP_SIZE),
	SC_IOCTL(KVM_GET_SUPPORTED_CPUID), SC_IOCTL(KVM_CREATE_VM), SC_IOCTL(KVM_SET_TSS_ADDR),
	SC_IOCTL(KVM_SET_IDENTITY_MAP_ADDR), SC_IOCTL(KVM_CREATE_IRQCHIP), SC_IOCTL(KVM_CREATE_PIT2),
	SC_IOCTL(KVM_SET_USER_MEMORY_REGION), SC_IOCTL(KVM_CREATE_VCPU), SC_IOCTL(KVM_SET_CPUID2),
	SC_IOCTL(KVM_SET_MSRS), SC_IOCTL(KVM_SET_FPU), SC_IOCTL(KVM_GET_LAPIC), SC_IOCTL(KVM_SET_LAPIC),
	SC_IOCTL(KVM_SET_SREGS), SC_IOCTL(TUNSETIFF), SC_IOCTL(TUNGETIFF), SC_IOCTL(TUNSETVNETHDRSZ),
	SC_IOCTL(SIOCGIFFLAGS), SC_IOCTL(SIOCSIFFLAGS), SC_IOCTL(BLKGETSIZE64), SC_IOCTL(BLKSSZGET),
	SC_IOCTL(BLKPBSZGET),
};

/* Snapshots and outgoing migrations (the state thread): reading every
 * vCPU's and the VM's KVM state, dirty logging on the memslots, parking the
 * I/O thread and completing in-flight disk requests, disk identities, the
 * state and memory files (temporary name, fsync, rename), the migration
 * socket (a name may need /etc files and the resolver's sockets; while the
 * peer is quiet, its send queue, SIOCOUTQ, tells a slow link from a silent
 * peer), the auto-converge throttle thread; the destination's disk locks. */
static const struct sc_rule sc_state[] = {
	SC_IOCTL(KVM_CHECK_EXTENSION), SC_IOCTL(KVM_GET_MSR_INDEX_LIST), SC_IOCTL(KVM_GET_REGS),
	SC_IOCTL(KVM_GET_SREGS), SC_IOCTL(KVM_GET_FPU), SC_IOCTL(KVM_GET_XSAVE),
	SC_IOCTL(KVM_GET_XSAVE2), SC_IOCTL(KVM_GET_XCRS), SC_IOCTL(KVM_GET_DEBUGREGS),
	SC_IOCTL(KVM_GET_LAPIC), SC_IOCTL(KVM_GET_MSRS), SC_IOCTL(KVM_GET_MP_STATE),
	SC_IOCTL(KVM_GET_VCPU_EVENTS), SC_IOCTL(KVM_GET_TSC_KHZ), SC_IOCTL(KVM_GET_IRQCHIP),
	SC_IOCTL(KVM_GET_PIT2), SC_IOCTL(KVM_GET_CLOCK), SC_IOCTL(KVM_SET_USER_MEMORY_REGION),
	SC_IOCTL(KVM_GET_DIRTY_LOG), SC_IOCTL(KVM_IRQ_LINE), SC_IOCTL(BLKGETSIZE64),
	SC_IOCTL(SIOCOUTQ),
	SC(openat), SC(close), SC(read), SC(pread64), SC(pwrite64), SC(ftruncate), SC(fsync),
	SC(fdatasync), SC(rename), SC(renameat), SC(renameat2), SC(unlink), SC(unlinkat),
	SC(newfstatat), SC(fstat), SC(lseek), SC(flock), SC(io_uring_enter), SC(fcntl),
	SC_EQ(socket, 0, AF_INET), SC_EQ(socket, 0, AF_INET6), SC_EQ(socket, 0, AF_UNIX),
	SC_EQ(socket, 0, AF_NETLINK), SC(connect), SC(bind), SC(poll), SC(ppoll),
	SC(setsockopt), SC(getsockopt), SC(getsockname), SC(getpeername), SC(sendto),
	SC(sendmsg), SC(sendmmsg), SC(recvfrom), SC(recvmsg), SC(shutdown), SC(uname),
};

/* The AddressSanitizer runtime, at every thread's start and end. */
static const struct sc_rule sc_sanitizer[] = {
	SC(sigaltstack), SC(sched_getaffinity),
};

#if defined(__SANITIZE_ADDRESS__)
#define SC_SANITIZER_BUILD 1
#else
#define SC_SANITIZER_BUILD 0
#endif

enum { G_COMMON, G_VCPU, G_IO, G_THREADS, G_API, G_MAIN, G_BUILD, G_STATE, G_SANITIZER,
       G__COUNT };

static const struct sc_group sc_groups[G__COUNT] = {
	[G_COMMON] = SC_GROUP("common", "every role", sc_common),
	[G_VCPU] = SC_GROUP("vcpu", "vCPU threads", sc_vcpu),
	[G_IO] = SC_GROUP("io", "the I/O thread", sc_io),
	[G_THREADS] = SC_GROUP("threads", "thread creation", sc_threads),
	[G_API] = SC_GROUP("api", "the API thread", sc_api),
	[G_MAIN] = SC_GROUP("main", "the main thread", sc_main),
	[G_BUILD] = SC_GROUP("build", "rebuilding the VM", sc_build),
	[G_STATE] = SC_GROUP("state", "snapshots and migrations", sc_state),
	[G_SANITIZER] = SC_GROUP("sanitizer", "added to every role in ASan builds only", sc_sanitizer),
};

#define SC_NO_GROUP G__COUNT

static const struct {
	const char *name;       /* as the SIGSYS line names the role */
	const char *doc;
	unsigned groups[8];     /* ended by SC_NO_GROUP */
} sc_roles[SECCOMP_ROLE__COUNT] = {
	[SECCOMP_ROLE_VCPU] = { "vcpu", "each vCPU thread, before its first KVM_RUN",
				{ G_COMMON, G_VCPU, SC_NO_GROUP } },
	[SECCOMP_ROLE_IO] = { "io", "the I/O thread (event loop), before its first event",
			      { G_COMMON, G_IO, SC_NO_GROUP } },
	[SECCOMP_ROLE_API] = { "api", "the API thread, inherited from the thread that starts "
			       "libmicrohttpd, before the socket is served",
			       { G_COMMON, G_THREADS, G_API, SC_NO_GROUP } },
	[SECCOMP_ROLE_MAIN] = { "main", "the main thread (console, controller), once the vCPU "
				"and I/O threads are confined and before the guest runs",
				{ G_COMMON, G_MAIN, SC_NO_GROUP } },
	[SECCOMP_ROLE_MAIN_REBUILD] = { "main", "the main thread instead of `main` when an "
					"--on-* policy is `restart`",
					{ G_COMMON, G_MAIN, G_BUILD, G_THREADS, G_VCPU, G_IO,
					  SC_NO_GROUP } },
	[SECCOMP_ROLE_STATE] = { "state", "the state thread (snapshots, outgoing migrations; "
				 "made before any filter), before its first job",
				 { G_COMMON, G_THREADS, G_STATE, SC_NO_GROUP } },
};

/* ---- the SIGSYS report (async-signal-safe: only write and _exit) ---- */

#define SC_NAMES 512
#define SC_NAME_LEN 28

static enum seccomp_mode sc_mode = SECCOMP_OFF;
static char sc_names[SC_NAMES][SC_NAME_LEN];
static __thread const char *sc_thread_role;        /* this thread's role name */
static __thread int sc_thread_role_id = -1;
static const char *volatile sc_inherited_role;     /* threads created by libraries */

static size_t sc_put(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		buf[at++] = *s++;
	return at;
}

static size_t sc_put_num(char *buf, size_t at, size_t cap, unsigned long v)
{
	char tmp[24];
	size_t n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < sizeof(tmp));
	while (n && at < cap)
		buf[at++] = tmp[--n];
	return at;
}

static void sc_sigsys(int sig, siginfo_t *si, void *uc)
{
	const char *role = sc_thread_role ? sc_thread_role : sc_inherited_role;
	unsigned long nr = si ? (unsigned long)(unsigned)si->si_syscall : ~0ul;
	char line[160];
	size_t n = 0;

	(void)sig, (void)uc;
	n = sc_put(line, n, sizeof(line), "wafer: seccomp: thread role '");
	n = sc_put(line, n, sizeof(line), role ? role : "unknown");
	n = sc_put(line, n, sizeof(line), "' made forbidden syscall ");
	n = sc_put_num(line, n, sizeof(line), nr);
	n = sc_put(line, n, sizeof(line), " (");
	n = sc_put(line, n, sizeof(line), nr < SC_NAMES && sc_names[nr][0] ? sc_names[nr] : "?");
	n = sc_put(line, n, sizeof(line), "); stopping\n");
	(void)!write(STDERR_FILENO, line, n);
	/* The raw call: a sanitizer's _exit interceptor makes calls of its own. */
	syscall(SYS_exit_group, WAFER_EXIT_SECCOMP);
}

/* ---- setup ---- */

int seccomp_mode_parse(const char *s, enum seccomp_mode *out)
{
	if (!strcmp(s, "on"))
		*out = SECCOMP_ON;
	else if (!strcmp(s, "log"))
		*out = SECCOMP_LOG;
	else if (!strcmp(s, "off"))
		*out = SECCOMP_OFF;
	else
		return -EINVAL;
	return 0;
}

const char *seccomp_role_name(enum seccomp_role role)
{
	return role < SECCOMP_ROLE__COUNT ? sc_roles[role].name : "unknown";
}

enum seccomp_mode seccomp_current_mode(void)
{
	return sc_mode;
}

/* glibc reads /proc/sys/vm/overcommit_memory the first time it shrinks a
 * thread arena's heap (free() on a confined thread, under load): grow this
 * thread's arena past the trim threshold and free it all, so that happens
 * here. */
static void *sc_warm_thread(void *arg)
{
	void *p[64];

	for (unsigned i = 0; i < 64; i++)
		p[i] = malloc(32 << 10);
	for (unsigned i = 64; i-- > 0;)
		free(p[i]);
	return arg;
}

int seccomp_prepare(enum seccomp_mode mode)
{
	struct sigaction sa;
	pthread_t t;
	int r;

	sc_mode = mode;
	if (mode == SECCOMP_OFF)
		return 0;
	/* glibc reads /etc/localtime on the first gmtime_r/localtime; the RTC
	 * and JSON log lines call it on confined threads. */
	tzset();
	/* glibc installs its cancellation signal handler (rt_sigaction) on
	 * the first pthread_create; confined threads create threads later. */
	if ((r = pthread_create(&t, NULL, sc_warm_thread, NULL)))
		return -r;
	pthread_join(t, NULL);
	/* malloc reads /sys/devices/system/cpu/online when a thread first
	 * needs a ninth arena (many vCPUs, API console threads); fixing the
	 * limit here, at glibc's own default of 8 per CPU, skips that. */
	mallopt(M_ARENA_MAX, 8 * get_nprocs());
	for (unsigned i = 0; i < SC_NAMES; i++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, (int)i);
		if (name) {
			snprintf(sc_names[i], sizeof(sc_names[i]), "%s", name);
			free(name);
		}
	}
	if (mode != SECCOMP_ON)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sc_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGSYS, &sa, NULL) ? -errno : 0;
}

static int sc_add(scmp_filter_ctx ctx, const struct sc_rule *r, char *err, size_t errlen)
{
	int nr = seccomp_syscall_resolve_name(r->name);
	uint32_t act = r->errno_val ? SCMP_ACT_ERRNO((uint32_t)r->errno_val) : SCMP_ACT_ALLOW;
	int rc;

	if (nr == __NR_SCMP_ERROR) {
		snprintf(err, errlen, "seccomp: libseccomp does not know syscall %s", r->name);
		return -EINVAL;
	}
	if (r->what && !r->errno_val) {
		struct scmp_arg_cmp cmp = { r->arg, r->op, r->a, r->b };
		rc = seccomp_rule_add(ctx, act, nr, 1, cmp);
	} else {
		rc = seccomp_rule_add(ctx, act, nr, 0);
	}
	if (rc)
		snprintf(err, errlen, "seccomp: rule for %s%s%s: %s", r->name, r->what ? " with " : "",
			 r->what ? r->what : "", strerror(-rc));
	return rc;
}

static int sc_install(enum seccomp_role role, bool inherited, char *err, size_t errlen)
{
	scmp_filter_ctx ctx = NULL;
	int rc = 0;

	if (sc_mode == SECCOMP_OFF || role >= SECCOMP_ROLE__COUNT || sc_thread_role_id == (int)role)
		return 0;
	uint32_t dflt = sc_mode == SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
	ctx = seccomp_init(dflt);
	if (!ctx) {
		snprintf(err, errlen, "seccomp: cannot create a filter (out of memory)");
		return -ENOMEM;
	}
	/* x32 and i386 calls from a 64-bit process are as forbidden as any. */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, dflt))) {
		snprintf(err, errlen, "seccomp: %s", strerror(-rc));
		goto out;
	}
	for (const unsigned *g = sc_roles[role].groups; *g != SC_NO_GROUP; g++)
		for (size_t i = 0; i < sc_groups[*g].n; i++)
			if ((rc = sc_add(ctx, &sc_groups[*g].rules[i], err, errlen)))
				goto out;
	for (size_t i = 0; SC_SANITIZER_BUILD && i < sc_groups[G_SANITIZER].n; i++)
		if ((rc = sc_add(ctx, &sc_groups[G_SANITIZER].rules[i], err, errlen)))
			goto out;
	rc = seccomp_load(ctx);
	if (rc) {
		snprintf(err, errlen, "seccomp: loading the '%s' filter: %s", sc_roles[role].name,
			 strerror(-rc));
		goto out;
	}
	sc_thread_role = sc_roles[role].name;
	sc_thread_role_id = (int)role;
	if (inherited)
		sc_inherited_role = sc_roles[role].name;
out:
	seccomp_release(ctx);
	return rc;
}

void seccomp_name_thread(enum seccomp_role role)
{
	if (role < SECCOMP_ROLE__COUNT && sc_thread_role_id < 0)
		sc_thread_role = sc_roles[role].name;
}

int seccomp_install(enum seccomp_role role, char *err, size_t errlen)
{
	return sc_install(role, false, err, errlen);
}

int seccomp_install_inherited(enum seccomp_role role, char *err, size_t errlen)
{
	return sc_install(role, true, err, errlen);
}

/* ---- docs ---- */

static void sc_describe_group(FILE *f, const struct sc_group *g)
{
	fprintf(f, "- `%s` (%s):", g->name, g->why);
	for (size_t i = 0; i < g->n; i++) {
		const struct sc_rule *r = &g->rules[i];
		bool first = i == 0 || strcmp(g->rules[i - 1].name, r->name);
		bool last = i + 1 == g->n || strcmp(g->rules[i + 1].name, r->name);
		if (first)
			fprintf(f, "%s %s", i ? "," : "", r->name);
		if (r->what)
			fprintf(f, "%s%s", first ? " (" : ", ", r->what);
		if (r->what && last)
			fputc(')', f);
	}
	fputs("\n", f);
}

void seccomp_describe(FILE *f)
{
	fputs("Roles (each is the union of the groups listed):\n\n", f);
	for (unsigned r = 0; r < SECCOMP_ROLE__COUNT; r++) {
		fprintf(f, "- `%s`%s: %s =", sc_roles[r].name,
			r == SECCOMP_ROLE_MAIN_REBUILD ? " (restart)" : "", sc_roles[r].doc);
		for (const unsigned *g = sc_roles[r].groups; *g != SC_NO_GROUP; g++)
			fprintf(f, "%s `%s`", g == sc_roles[r].groups ? "" : " +", sc_groups[*g].name);
		fputs("\n", f);
	}
	fputs("\nGroups (`ioctl` only with the request numbers listed):\n\n", f);
	for (unsigned g = 0; g < G__COUNT; g++)
		sc_describe_group(f, &sc_groups[g]);
}
