/* cg_apply_at against fake cgroup trees in a temporary directory (regular
 * files standing for the kernel's; runs anywhere, no root): the v2 layouts
 * -- a root that already hands cpu and memory down (systemd), one that does
 * not (a fresh cgroup2 mount), a controller the root lacks (held by v1),
 * both already enabled -- and the v1 layout. cgroup.subtree_control is
 * written in append mode, so each fake file keeps every change wafer asked
 * for. test_cgroups.c drives real v1 groups as root. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "jail/cgroups.h"

static char base[256];

/* Create base/rel (and its directories) holding text. */
static void mkfile(const char *rel, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", base, rel);
	for (char *s = strchr(path + strlen(base) + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		mkdir(path, 0755);
		*s = '/';
	}
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* base/rel's contents ("<missing>" when it does not exist). */
static const char *slurp(const char *rel)
{
	static char buf[4][256];
	static unsigned k;
	char path[512], *b = buf[k++ % 4];
	snprintf(path, sizeof(path), "%s/%s", base, rel);
	FILE *f = fopen(path, "r");
	if (!f)
		return "<missing>";
	size_t n = fread(b, 1, sizeof(buf[0]) - 1, f);
	b[n] = '\0';
	fclose(f);
	return b;
}

static bool exists(const char *rel)
{
	char path[512];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/%s", base, rel);
	return stat(path, &sb) == 0;
}

static const char *mypid(void)
{
	static char pid[32];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	return pid;
}

static int setup(void **state)
{
	(void)state;
	snprintf(base, sizeof(base), "%s/wafer-cgtree.XXXXXX", getenv("TMPDIR") ?: "/tmp");
	return mkdtemp(base) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	return system(cmd) == 0 ? 0 : -1;
}

/* A v2 tree: the root with these controllers and subtree_control, wafer/
 * with what the root hands down, and wafer/vm1 with its interface files
 * (the kernel makes them when a directory is made and the parent enables
 * the controller; here they exist from the start, empty, so that each
 * holds exactly what wafer wrote). */
static void v2_tree(const char *root_ctrl, const char *root_sub, const char *wafer_sub)
{
	mkfile("cgroup.controllers", root_ctrl);
	mkfile("cgroup.subtree_control", root_sub);
	mkfile("cgroup.procs", "");
	mkfile("wafer/cgroup.controllers", "cpu memory\n");
	mkfile("wafer/cgroup.subtree_control", wafer_sub);
	mkfile("wafer/cgroup.procs", "");
	mkfile("wafer/vm1/cgroup.procs", "");
	mkfile("wafer/vm1/cpu.weight", "");
	mkfile("wafer/vm1/cpu.max", "");
	mkfile("wafer/vm1/memory.max", "");
}

static const struct cg_config limits = { .weight = 512, .cap_pct = 50, .mem_limit = 256ull << 20 };

/* The values of --cpu-weight 512 --cpu-cap 50 --memory-limit 256M in vm1. */
static void assert_v2_limits(void)
{
	assert_string_equal(slurp("wafer/vm1/cgroup.procs"), mypid());
	assert_string_equal(slurp("wafer/vm1/cpu.weight"), "200");
	assert_string_equal(slurp("wafer/vm1/cpu.max"), "50000 100000");
	assert_string_equal(slurp("wafer/vm1/memory.max"), "268435456");
}

/* systemd: the root hands cpu and memory down already; wafer/ must. */
static void test_v2_root_delegates(void **state)
{
	struct cg_state st;
	char err[512];
	(void)state;

	v2_tree("cpuset cpu io memory pids\n", "cpu memory pids\n", "");
	assert_int_equal(cg_apply_at(&st, base, "vm1", &limits, false, err, sizeof(err)), 0);
	assert_true(st.v2);
	assert_string_equal(slurp("cgroup.subtree_control"), "cpu memory pids\n");
	assert_string_equal(slurp("wafer/cgroup.subtree_control"), "+cpu\n+memory\n");
	assert_v2_limits();
	/* Changes go to the same files; leaving goes back to the root group. */
	struct cg_config c = limits;
	c.weight = 1024;
	assert_int_equal(cg_update(&st, &c, CG_SET_WEIGHT, err, sizeof(err)), 0);
	assert_string_equal(slurp("wafer/vm1/cpu.weight"), "400");
	cg_release(&st);
	assert_string_equal(slurp("cgroup.procs"), mypid());
}

/* A fresh cgroup2 mount: nothing handed down anywhere. */
static void test_v2_root_not_delegating(void **state)
{
	struct cg_state st;
	char err[512];
	(void)state;

	v2_tree("cpuset cpu io memory hugetlb pids\n", "", "");
	assert_int_equal(cg_apply_at(&st, base, "vm1", &limits, false, err, sizeof(err)), 0);
	assert_string_equal(slurp("cgroup.subtree_control"), "+cpu\n+memory\n");
	assert_string_equal(slurp("wafer/cgroup.subtree_control"), "+cpu\n+memory\n");
	assert_v2_limits();
	cg_release(&st);
}

/* Everything enabled already (a second VM): nothing written. */
static void test_v2_already_enabled(void **state)
{
	struct cg_state st;
	char err[512];
	(void)state;

	v2_tree("cpu memory\n", "memory cpu\n", "cpu memory\n");
	assert_int_equal(cg_apply_at(&st, base, "vm1", &limits, false, err, sizeof(err)), 0);
	assert_string_equal(slurp("cgroup.subtree_control"), "memory cpu\n");
	assert_string_equal(slurp("wafer/cgroup.subtree_control"), "cpu memory\n");
	assert_v2_limits();
	cg_release(&st);
}

/* The root lacks cpu (a v1 hierarchy holds it): refused naming the root's
 * cgroup.controllers, before any directory is made. */
static void test_v2_cpu_unavailable(void **state)
{
	struct cg_state st;
	char err[512], want[400];
	(void)state;

	mkfile("cgroup.controllers", "cpuset io memory pids\n");
	mkfile("cgroup.subtree_control", "memory\n");
	mkfile("cgroup.procs", "");
	assert_int_equal(cg_apply_at(&st, base, "vm1", &limits, false, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s/cgroup.controllers: no cpu controller", base);
	assert_non_null(strstr(err, want));
	assert_false(exists("wafer"));
	assert_string_equal(slurp("cgroup.subtree_control"), "memory\n");
	cg_release(&st);
}

/* As root with the API and no limits: the memory group is made although cpu
 * cannot be; a CPU change is then refused with the reason. */
static void test_v2_for_updates_without_cpu(void **state)
{
	struct cg_state st;
	struct cg_config none = { .weight = CG_WEIGHT_DEFAULT };
	char err[512];
	(void)state;

	v2_tree("io memory pids\n", "", "");
	assert_int_equal(cg_apply_at(&st, base, "vm1", &none, true, err, sizeof(err)), 0);
	assert_true(st.fd_weight < 0);
	assert_true(st.fd_mem >= 0);
	assert_string_equal(slurp("cgroup.subtree_control"), "+memory\n");
	assert_string_equal(slurp("wafer/cgroup.subtree_control"), "+memory\n");
	assert_string_equal(slurp("wafer/vm1/memory.max"), "max");
	assert_string_equal(slurp("wafer/vm1/cgroup.procs"), mypid());
	none.weight = 512;
	assert_int_equal(cg_update(&st, &none, CG_SET_WEIGHT, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "no CPU cgroup"));
	assert_non_null(strstr(err, "cgroup.controllers: no cpu controller"));
	cg_release(&st);
}

/* wafer/ cannot take the change (here: its subtree_control is no file):
 * the error names that file. */
static void test_v2_wafer_refuses(void **state)
{
	struct cg_state st;
	char err[512], want[400], path[400];
	(void)state;

	v2_tree("cpu memory\n", "cpu memory\n", "");
	snprintf(path, sizeof(path), "%s/wafer/cgroup.subtree_control", base);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_true(cg_apply_at(&st, base, "vm1", &limits, false, err, sizeof(err)) < 0);
	snprintf(want, sizeof(want), "%s/wafer/cgroup.subtree_control: ", base);
	assert_non_null(strstr(err, want));
	assert_string_equal(slurp("wafer/vm1/cgroup.procs"), "");   /* never joined */
	cg_release(&st);
}

/* v1: one hierarchy per controller, no subtree_control anywhere. */
static void test_v1(void **state)
{
	struct cg_state st;
	char err[512];
	(void)state;

	mkfile("cpu/cgroup.procs", "");
	mkfile("cpu/wafer/vm1/cgroup.procs", "");
	mkfile("cpu/wafer/vm1/cpu.shares", "");
	mkfile("cpu/wafer/vm1/cpu.cfs_period_us", "");
	mkfile("cpu/wafer/vm1/cpu.cfs_quota_us", "");
	mkfile("memory/cgroup.procs", "");
	mkfile("memory/wafer/vm1/cgroup.procs", "");
	mkfile("memory/wafer/vm1/memory.limit_in_bytes", "");
	assert_int_equal(cg_apply_at(&st, base, "vm1", &limits, false, err, sizeof(err)), 0);
	assert_false(st.v2);
	assert_string_equal(slurp("cpu/wafer/vm1/cgroup.procs"), mypid());
	assert_string_equal(slurp("memory/wafer/vm1/cgroup.procs"), mypid());
	assert_string_equal(slurp("cpu/wafer/vm1/cpu.shares"), "2048");
	assert_string_equal(slurp("cpu/wafer/vm1/cpu.cfs_period_us"), "100000");
	assert_string_equal(slurp("cpu/wafer/vm1/cpu.cfs_quota_us"), "50000");
	assert_string_equal(slurp("memory/wafer/vm1/memory.limit_in_bytes"), "268435456");
	assert_false(exists("cgroup.subtree_control"));
	assert_false(exists("cpu/wafer/cgroup.subtree_control"));
	cg_release(&st);
	assert_string_equal(slurp("cpu/cgroup.procs"), mypid());
	assert_string_equal(slurp("memory/cgroup.procs"), mypid());
}

/* v1 without a memory hierarchy: --memory-limit names the path at fault. */
static void test_v1_no_memory(void **state)
{
	struct cg_state st;
	struct cg_config mem = { .weight = CG_WEIGHT_DEFAULT, .mem_limit = 64ull << 20 };
	char err[512], want[400];
	(void)state;

	mkfile("cpu/cgroup.procs", "");
	assert_int_equal(cg_apply_at(&st, base, "vm1", &mem, false, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s/memory/wafer: No such file", base);
	assert_non_null(strstr(err, want));
	cg_release(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_v2_root_delegates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_root_not_delegating, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_already_enabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_cpu_unavailable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_for_updates_without_cpu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_wafer_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v1_no_memory, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
