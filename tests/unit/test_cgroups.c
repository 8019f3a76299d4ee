/* Run-time resource limits on real cgroup v1 groups (as root; exit 77
 * where the cpu or memory controller is not writable): a child process
 * joins its groups with cg_apply and changes them with cg_update -- also
 * after dropping to an unprivileged uid, as the jailed VMM does -- or
 * through the controller's PATCH /machine-config op under the API thread's
 * seccomp filter; the parent reads
 * cpu.shares, cpu.cfs_quota_us and memory.limit_in_bytes back from outside. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli/control.h"
#include "jail/cgroups.h"
#include "jail/seccomp.h"

#define CPU "/sys/fs/cgroup/cpu"
#define MEM "/sys/fs/cgroup/memory"

/* ---- a child in its own groups, stepped by the parent ---- */

struct kid {
	pid_t pid;
	int to, from;         /* pipes: parent -> child, child -> parent */
	char name[64];
};

typedef int (*kid_step)(struct cg_state *st, unsigned step, char *err, size_t errlen);

/* Child: apply, report; then for each byte from the parent run the next
 * step and report its result ('0' ok, else 'f' and the error on stderr). */
static void kid_main(struct kid *k, bool for_updates, bool confined, kid_step fn)
{
	struct cg_state st;
	struct cg_config cfg = { .weight = CG_WEIGHT_DEFAULT };
	char err[256], c;
	unsigned step = 0;

	int rc = cg_apply(&st, k->name, &cfg, for_updates, err, sizeof(err));
	if (rc)
		fprintf(stderr, "cg_apply: %s\n", err);
	if (!rc && confined && (seccomp_prepare(SECCOMP_ON) ||
				seccomp_install(SECCOMP_ROLE_API, err, sizeof(err))))
		rc = -EPERM;
	c = rc ? 'f' : '0';
	(void)!write(k->from, &c, 1);
	while (read(k->to, &c, 1) == 1) {
		rc = fn(&st, ++step, err, sizeof(err));
		if (rc)
			fprintf(stderr, "step %u: %s\n", step, err);
		c = rc ? 'f' : '0';
		(void)!write(k->from, &c, 1);
	}
	_exit(0);
}

static void kid_start(struct kid *k, bool for_updates, bool confined, kid_step fn)
{
	int a[2], b[2];
	char c;

	snprintf(k->name, sizeof(k->name), "wafer-cgtest-%d", (int)getpid());
	assert_int_equal(pipe(a), 0);
	assert_int_equal(pipe(b), 0);
	fflush(NULL);
	k->pid = fork();
	assert_true(k->pid >= 0);
	if (k->pid == 0) {
		close(a[1]);
		close(b[0]);
		k->to = a[0];
		k->from = b[1];
		kid_main(k, for_updates, confined, fn);
	}
	close(a[0]);
	close(b[1]);
	k->to = a[1];
	k->from = b[0];
	assert_int_equal(read(k->from, &c, 1), 1);
	assert_int_equal(c, '0');
}

/* Run the child's next step; its result ('0' or 'f'). */
static char kid_step_once(struct kid *k)
{
	char c = 's';
	assert_int_equal(write(k->to, &c, 1), 1);
	assert_int_equal(read(k->from, &c, 1), 1);
	return c;
}

/* End the child and remove what it left (steps may have dropped root). */
static void kid_end(struct kid *k)
{
	char dir[256];
	close(k->to);
	waitpid(k->pid, NULL, 0);
	close(k->from);
	snprintf(dir, sizeof(dir), CPU "/wafer/%s", k->name);
	rmdir(dir);
	snprintf(dir, sizeof(dir), MEM "/wafer/%s", k->name);
	rmdir(dir);
}

/* ---- reading the groups from outside ---- */

static long long cg_read(const char *ctrl, const struct kid *k, const char *file)
{
	char path[256], buf[64] = "";
	snprintf(path, sizeof(path), "%s/wafer/%s/%s", ctrl, k->name, file);
	FILE *f = fopen(path, "r");
	if (!f)
		fail_msg("%s: %s", path, strerror(errno));
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return atoll(buf);
}

/* Is pid in <ctrl>:/wafer/<name> (or in the root group when name is NULL)? */
static bool in_group(pid_t pid, const char *ctrl, const char *name)
{
	char path[64], line[512], want[160];
	bool found = false;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	snprintf(want, sizeof(want), ":%s:%s%s\n", ctrl, name ? "/wafer/" : "/", name ? name : "");
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, want))
			found = true;
	fclose(f);
	return found;
}

#define UNLIMITED (1ll << 62)   /* memory.limit_in_bytes reads back near 2^63 */

/* ---- cg_update on the groups, root and after dropping root ---- */

static int update_steps(struct cg_state *st, unsigned step, char *err, size_t errlen)
{
	struct cg_config c = st->cur;

	switch (step) {
	case 1:
		c = (struct cg_config){ .weight = 512, .cap_pct = 50, .mem_limit = 256ull << 20 };
		return cg_update(st, &c, CG_SET_WEIGHT | CG_SET_CAP | CG_SET_MEM, err, errlen);
	case 2:
		/* As the jailed VMM: no privileges, descriptors from cg_apply. */
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) {
			snprintf(err, errlen, "setuid: %s", strerror(errno));
			return -errno;
		}
		c = (struct cg_config){ .weight = 1, .cap_pct = 250, .mem_limit = 0 };
		return cg_update(st, &c, CG_SET_WEIGHT | CG_SET_CAP | CG_SET_MEM, err, errlen);
	case 3:
		c.weight = 65535;
		return cg_update(st, &c, CG_SET_WEIGHT, err, errlen);
	case 4: {
		/* Out of range: refused, nothing written. */
		c.weight = 0;
		int rc = cg_update(st, &c, CG_SET_WEIGHT, err, errlen);
		c.weight = 65536;
		int rc2 = cg_update(st, &c, CG_SET_WEIGHT, err, errlen);
		c = st->cur;
		c.mem_limit = 1 << 20;
		int rc3 = cg_update(st, &c, CG_SET_MEM, err, errlen);
		return rc == -EINVAL && rc2 == -EINVAL && rc3 == -EINVAL ? 0 : -EIO;
	}
	default:
		return -EINVAL;
	}
}

static void test_update(void **state)
{
	struct kid k;
	(void)state;

	kid_start(&k, true, false, update_steps);
	/* Joined with the defaults: credit2 256 = 1024 shares, no cap, no limit. */
	assert_true(in_group(k.pid, "cpu,cpuacct", k.name) || in_group(k.pid, "cpu", k.name));
	assert_true(in_group(k.pid, "memory", k.name));
	assert_int_equal(cg_read(CPU, &k, "cpu.shares"), 1024);
	assert_int_equal(cg_read(CPU, &k, "cpu.cfs_period_us"), 100000);
	assert_int_equal(cg_read(CPU, &k, "cpu.cfs_quota_us"), -1);
	assert_true(cg_read(MEM, &k, "memory.limit_in_bytes") >= UNLIMITED);

	assert_int_equal(kid_step_once(&k), '0');
	assert_int_equal(cg_read(CPU, &k, "cpu.shares"), 2048);
	assert_int_equal(cg_read(CPU, &k, "cpu.cfs_quota_us"), 50000);
	assert_int_equal(cg_read(MEM, &k, "memory.limit_in_bytes"), 256ll << 20);

	assert_int_equal(kid_step_once(&k), '0');
	assert_int_equal(cg_read(CPU, &k, "cpu.shares"), 4);
	assert_int_equal(cg_read(CPU, &k, "cpu.cfs_quota_us"), 250000);
	assert_true(cg_read(MEM, &k, "memory.limit_in_bytes") >= UNLIMITED);

	assert_int_equal(kid_step_once(&k), '0');
	assert_int_equal(cg_read(CPU, &k, "cpu.shares"), 65535 * 4);
	assert_int_equal(kid_step_once(&k), '0');
	assert_int_equal(cg_read(CPU, &k, "cpu.shares"), 65535 * 4);
	kid_end(&k);
}

/* ---- the controller's op (PATCH /machine-config on a running VM), on a
 * thread confined like the API's ---- */

static int ctl_steps(struct cg_state *st, unsigned step, char *err, size_t errlen)
{
	static struct run_ctl ctl;
	struct vm_config base = { .name = "cgtest" };
	struct api_resources res = { 0 };
	int rc;

	if (run_ctl_init(&ctl, &base, true))
		return -ENOMEM;
	ctl.cg = st;
	switch (step) {
	case 1:
		res = (struct api_resources){ .has_cpu_weight = true, .cpu_weight = 768,
					      .has_memory_limit = true, .memory_limit_mib = 128 };
		break;
	case 2:
		res = (struct api_resources){ .has_cpu_cap = true, .cpu_cap = 100 };
		break;
	default:
		res = (struct api_resources){ .has_memory_limit = true, .memory_limit_mib = 0 };
		break;
	}
	rc = run_ctl_ops.update_resources(&ctl, &res, err, errlen);
	run_ctl_destroy(&ctl);
	return rc;
}

static void test_controller(void **state)
{
	struct kid k;
	(void)state;

	kid_start(&k, true, true, ctl_steps);
	assert_int_equal(kid_step_once(&k), '0');
	assert_int_equal(cg_read(CPU, &k, "cpu.shares"), 3072);
	assert_int_equal(cg_read(CPU, &k, "cpu.cfs_quota_us"), -1);     /* not in the PATCH */
	assert_int_equal(cg_read(MEM, &k, "memory.limit_in_bytes"), 128ll << 20);
	assert_int_equal(kid_step_once(&k), '0');
	assert_int_equal(cg_read(CPU, &k, "cpu.shares"), 3072);          /* kept */
	assert_int_equal(cg_read(CPU, &k, "cpu.cfs_quota_us"), 100000);
	assert_int_equal(kid_step_once(&k), '0');
	assert_true(cg_read(MEM, &k, "memory.limit_in_bytes") >= UNLIMITED);
	kid_end(&k);
}

/* ---- leaving, and a VM without groups ---- */

static int release_steps(struct cg_state *st, unsigned step, char *err, size_t errlen)
{
	(void)step, (void)err, (void)errlen;
	cg_release(st);
	return 0;
}

static void test_release(void **state)
{
	struct kid k;
	struct stat sb;
	char dir[256];
	(void)state;

	kid_start(&k, true, false, release_steps);
	assert_int_equal(kid_step_once(&k), '0');
	assert_true(in_group(k.pid, "memory", NULL));
	snprintf(dir, sizeof(dir), CPU "/wafer/%s", k.name);
	assert_int_equal(stat(dir, &sb), -1);
	snprintf(dir, sizeof(dir), MEM "/wafer/%s", k.name);
	assert_int_equal(stat(dir, &sb), -1);
	kid_end(&k);
}

static void test_no_groups(void **state)
{
	struct cg_state st;
	struct cg_config cfg = { .weight = CG_WEIGHT_DEFAULT };
	char err[256];
	(void)state;

	/* No limits and not for updates: nothing joined, changes refused. */
	assert_int_equal(cg_apply(&st, "never-made", &cfg, false, err, sizeof(err)), 0);
	cfg.weight = 512;
	assert_int_equal(cg_update(&st, &cfg, CG_SET_WEIGHT, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "no CPU cgroup"));
	cfg.mem_limit = 64 << 20;
	assert_int_equal(cg_update(&st, &cfg, CG_SET_MEM, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "no memory cgroup"));
	cg_release(&st);
	struct stat sb;
	assert_int_equal(stat(CPU "/wafer/never-made", &sb), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_update),
		cmocka_unit_test(test_controller),
		cmocka_unit_test(test_release),
		cmocka_unit_test(test_no_groups),
	};
	struct stat sb;

	if (geteuid() != 0) {
		printf("SKIP: cgroups need root\n");
		return 77;
	}
	if (stat("/sys/fs/cgroup/cgroup.controllers", &sb) == 0 || access(CPU "/cgroup.procs", W_OK) ||
	    access(MEM "/cgroup.procs", W_OK)) {
		printf("SKIP: no writable cgroup v1 cpu and memory controllers at " CPU ", " MEM "\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
