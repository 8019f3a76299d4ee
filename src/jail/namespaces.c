/* The jail (see namespaces.h), modelled on Firecracker's jailer: placeholders
 * and device nodes are made on the host, the files are bind-mounted over them
 * in the VMM's own mount namespace (so the host never sees the mounts and
 * removing the jail can never reach a host file), then pivot_root and setuid. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jail/namespaces.h"
#include "vmm/log.h"

#define JAIL_NOFILE 2048

/* One file the VMM needs: host path, flag it came from, name in the jail. */
struct jail_file {
	const char *host, *flag, *name;
	bool ro;
};

static int jail_fail(char *err, size_t errlen, int e, const char *what, const char *path)
{
	snprintf(err, errlen, "%s%s%s: %s", what, what[0] ? " " : "", path, strerror(e));
	return -e;
}

static int jail_rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* FTW_PHYS|FTW_MOUNT: never follow a link or cross into another file system,
 * so a stray mount can only make the removal incomplete, never wider. */
static void jail_remove(struct jail_state *st)
{
	if (!st->made_dir)
		return;
	nftw(st->dir, jail_rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (!access(st->dir, F_OK))
		log_warn("--jail: could not remove all of %s", st->dir);
	st->made_dir = false;
}

static int jail_mknod(const char *root, const char *name, unsigned maj, unsigned min, mode_t mode,
		      uid_t uid, gid_t gid, char *err, size_t errlen)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s%s", root, name);
	if (mknod(p, S_IFCHR | mode, makedev(maj, min)) || chown(p, uid, gid) || chmod(p, mode))
		return jail_fail(err, errlen, errno, "--jail: mknod", p);
	return 0;
}

/* The host side: <base>/<name>/root with placeholders and device nodes. */
static int jail_build(struct jail_state *st, const struct jail_config *jc, const struct vm_config *cfg,
		      const struct jail_file *files, unsigned nfiles, char *err, size_t errlen)
{
	char p[PATH_MAX];
	struct stat sb;

	if (mkdir(jc->base, 0755) && errno != EEXIST)
		return jail_fail(err, errlen, errno, "--chroot-base", jc->base);
	if (stat(jc->base, &sb))
		return jail_fail(err, errlen, errno, "--chroot-base", jc->base);
	if (!S_ISDIR(sb.st_mode))
		return jail_fail(err, errlen, ENOTDIR, "--chroot-base", jc->base);
	if ((size_t)snprintf(st->dir, sizeof(st->dir), "%s/%s", jc->base, cfg->name) >= sizeof(st->dir))
		return jail_fail(err, errlen, ENAMETOOLONG, "--chroot-base", jc->base);
	snprintf(st->root, sizeof(st->root), "%s/root", st->dir);
	if (mkdir(st->dir, 0755)) {
		int e = errno;
		if (e == EEXIST)
			snprintf(err, errlen, "--jail: %s exists (another VM named %s, or left by a "
				 "crash: remove it)", st->dir, cfg->name);
		else
			jail_fail(err, errlen, e, "--chroot-base", st->dir);
		return -e;
	}
	st->made_dir = true;
	if (mkdir(st->root, 0750) || chown(st->root, jc->uid, jc->gid) || chmod(st->root, 0750))
		return jail_fail(err, errlen, errno, "--jail:", st->root);
	for (unsigned i = 0; i < nfiles; i++) {
		int fd;
		if (stat(files[i].host, &sb))
			return jail_fail(err, errlen, errno, files[i].flag, files[i].host);
		if (S_ISDIR(sb.st_mode))
			return jail_fail(err, errlen, EISDIR, files[i].flag, files[i].host);
		snprintf(p, sizeof(p), "%s%s", st->root, files[i].name);
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
		if (fd < 0)
			return jail_fail(err, errlen, errno, "--jail:", p);
		close(fd);
	}
	snprintf(p, sizeof(p), "%s/dev", st->root);
	if (mkdir(p, 0755))
		return jail_fail(err, errlen, errno, "--jail:", p);
	int rc;
	/* /dev/kvm is made even where the host has none: opening it then fails
	 * inside the jail exactly as it would outside. */
	if ((rc = jail_mknod(st->root, "/dev/kvm", 10, 232, 0600, jc->uid, jc->gid, err, errlen)) ||
	    (rc = jail_mknod(st->root, "/dev/null", 1, 3, 0666, 0, 0, err, errlen)) ||
	    (rc = jail_mknod(st->root, "/dev/urandom", 1, 9, 0666, 0, 0, err, errlen)))
		return rc;
	if (cfg->nnets) {
		snprintf(p, sizeof(p), "%s/dev/net", st->root);
		if (mkdir(p, 0755))
			return jail_fail(err, errlen, errno, "--jail:", p);
		if ((rc = jail_mknod(st->root, "/dev/net/tun", 10, 200, 0600, jc->uid, jc->gid, err, errlen)))
			return rc;
	}
	return 0;
}

/* The child, still root: its own mount namespace, the binds, pivot_root,
 * then limits and the drop to uid/gid. Any failure ends the child. */
static int jail_confine(struct jail_state *st, const struct jail_config *jc,
			const struct jail_file *files, unsigned nfiles, char *err, size_t errlen)
{
	char p[PATH_MAX];

	if (jc->netns) {
		int fd = open(jc->netns, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return jail_fail(err, errlen, errno, "--netns", jc->netns);
		if (setns(fd, CLONE_NEWNET)) {
			int e = errno;
			close(fd);
			return jail_fail(err, errlen, e, "--netns", jc->netns);
		}
		close(fd);
	}
	if (unshare(CLONE_NEWNS))
		return jail_fail(err, errlen, errno, "--jail:", "unshare(CLONE_NEWNS)");
	/* Private before any bind: nothing we mount propagates to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return jail_fail(err, errlen, errno, "--jail: making mounts private under", "/");
	if (mount(st->root, st->root, NULL, MS_BIND | MS_REC, NULL))
		return jail_fail(err, errlen, errno, "--jail: bind", st->root);
	for (unsigned i = 0; i < nfiles; i++) {
		snprintf(p, sizeof(p), "%s%s", st->root, files[i].name);
		if (mount(files[i].host, p, NULL, MS_BIND, NULL))
			return jail_fail(err, errlen, errno, files[i].flag, files[i].host);
		if (files[i].ro && mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL))
			return jail_fail(err, errlen, errno, files[i].flag, files[i].host);
	}
	/* pivot_root(".", "."): the old root ends up stacked under the new one
	 * and is detached right away; no directory for it is needed. */
	if (chdir(st->root) || syscall(SYS_pivot_root, ".", "."))
		return jail_fail(err, errlen, errno, "--jail: pivot_root into", st->root);
	if (umount2(".", MNT_DETACH) || chdir("/"))
		return jail_fail(err, errlen, errno, "--jail: detaching the old root from", st->root);

	/* Guest RAM files and disks may be large: no RLIMIT_FSIZE. */
	struct rlimit nofile, core = { 0, 0 };
	if (!getrlimit(RLIMIT_NOFILE, &nofile)) {
		if (nofile.rlim_max > JAIL_NOFILE)
			nofile.rlim_max = JAIL_NOFILE;
		if (nofile.rlim_cur > nofile.rlim_max)
			nofile.rlim_cur = nofile.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &nofile))
			return jail_fail(err, errlen, errno, "--jail:", "setrlimit(RLIMIT_NOFILE)");
	}
	if (setrlimit(RLIMIT_CORE, &core))
		return jail_fail(err, errlen, errno, "--jail:", "setrlimit(RLIMIT_CORE)");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return jail_fail(err, errlen, errno, "--jail:", "PR_SET_NO_NEW_PRIVS");
	if (setgroups(0, NULL) || setresgid(jc->gid, jc->gid, jc->gid))
		return jail_fail(err, errlen, errno, "--gid", "setgid");
	if (setresuid(jc->uid, jc->uid, jc->uid))
		return jail_fail(err, errlen, errno, "--uid", "setuid");
	return 0;
}

/* The parent: forward termination signals, reap the child. */
static int jail_wait(pid_t child)
{
	sigset_t set;
	siginfo_t si;
	int wstatus;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	for (;;) {
		pid_t r = waitpid(child, &wstatus, WNOHANG);
		if (r == child)
			break;
		if (r < 0 && errno != EINTR)
			return WAFER_EXIT_ERROR;
		if (sigwaitinfo(&set, &si) > 0 && si.si_signo != SIGCHLD)
			kill(child, si.si_signo);
	}
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	log_error("--jail: the VMM was killed by signal %d", WTERMSIG(wstatus));
	return WAFER_EXIT_ERROR;
}

int jail_enter(struct jail_state *st, const struct jail_config *jc, struct vm_config *cfg,
	       int *status, char *err, size_t errlen)
{
	struct jail_file files[2 + VM_MAX_DISKS];
	unsigned nfiles = 0;
	sigset_t chld, old;
	char p[PATH_MAX + 8];
	int rc, pidns = -1;

	memset(st, 0, sizeof(*st));
	if (geteuid() != 0) {
		snprintf(err, errlen, "--jail: needs root (CAP_SYS_ADMIN) to set up namespaces");
		return -EPERM;
	}
	if (cfg->kernel)
		files[nfiles++] = (struct jail_file){ cfg->kernel, "--kernel", "/kernel", true };
	if (cfg->initrd)
		files[nfiles++] = (struct jail_file){ cfg->initrd, "--initrd", "/initrd", true };
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		snprintf(st->disk_names[i], sizeof(st->disk_names[i]), "/disk%u.img", i);
		files[nfiles++] = (struct jail_file){ cfg->disks[i].path, "--disk", st->disk_names[i],
						      cfg->disks[i].read_only };
	}
	if ((rc = jail_build(st, jc, cfg, files, nfiles, err, errlen)))
		goto out;

	/* The next child is PID 1 of a new PID namespace; ours is kept to come
	 * back to, since no process can be made in a namespace whose PID 1 is
	 * gone. SIGCHLD is blocked first so the child's exit cannot slip past
	 * jail_wait's sigwaitinfo. */
	pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	if (pidns < 0) {
		rc = jail_fail(err, errlen, errno, "--jail:", "/proc/self/ns/pid");
		goto out;
	}
	if (unshare(CLONE_NEWPID)) {
		rc = jail_fail(err, errlen, errno, "--jail:", "unshare(CLONE_NEWPID)");
		goto out;
	}
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, &old);
	st->child = fork();
	if (st->child < 0) {
		rc = jail_fail(err, errlen, errno, "--jail:", "fork");
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		goto out;
	}
	if (st->child == 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		close(pidns);
		if (jail_confine(st, jc, files, nfiles, err, errlen)) {
			log_error("%s", err);
			_exit(WAFER_EXIT_ERROR);
		}
		if (cfg->kernel)
			cfg->kernel = "/kernel";
		if (cfg->initrd)
			cfg->initrd = "/initrd";
		for (unsigned i = 0; i < cfg->ndisks; i++)
			cfg->disks[i].path = st->disk_names[i];
		snprintf(st->kvm_dev, sizeof(st->kvm_dev), "/dev/kvm");
		cfg->kvm_path = st->kvm_dev;
		return 0;
	}

	if (setns(pidns, CLONE_NEWPID))
		log_warn("--jail: back to the host PID namespace: %s", strerror(errno));
	/* For tools and tests: the VMM's pid as the host sees it. */
	snprintf(p, sizeof(p), "%s/pid", st->dir);
	FILE *f = fopen(p, "w");
	if (f) {
		fprintf(f, "%d\n", (int)st->child);
		fclose(f);
	}
	log_info("--jail: VMM pid %d in %s; API socket %s%s", (int)st->child, st->root, st->root, JAIL_SOCK);
	*status = jail_wait(st->child);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	rc = 1;
out:
	if (pidns >= 0)
		close(pidns);
	jail_remove(st);
	return rc;
}
