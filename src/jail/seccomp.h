/* Per-thread-role system call allowlists (seccomp-BPF through libseccomp):
 * vCPU threads, the I/O thread, the API (HTTP) thread and the main thread
 * each get only the calls their code paths make; anything else traps, logs
 * one line naming the role and the call, and ends the process. */
#ifndef WAFER_JAIL_SECCOMP_H
#define WAFER_JAIL_SECCOMP_H

#include <stddef.h>
#include <stdio.h>

/* --seccomp=on|log|off */
enum seccomp_mode {
	SECCOMP_OFF,
	SECCOMP_ON,     /* a forbidden call: log line on stderr, exit WAFER_EXIT_SECCOMP */
	SECCOMP_LOG,    /* a forbidden call is allowed and logged by the kernel (audit) */
};

enum seccomp_role {
	SECCOMP_ROLE_VCPU,
	SECCOMP_ROLE_IO,
	SECCOMP_ROLE_API,
	SECCOMP_ROLE_MAIN,
	/* The main thread when a restart policy makes it build VMs again:
	 * main plus what building needs plus what the vCPU and I/O threads it
	 * then creates need (they inherit its filter under their own). */
	SECCOMP_ROLE_MAIN_REBUILD,
	/* The state thread: snapshots and outgoing live migrations. */
	SECCOMP_ROLE_STATE,
	SECCOMP_ROLE__COUNT
};

/* Exit status after a forbidden call in mode on (README "Exit status"). */
#define WAFER_EXIT_SECCOMP 5

int seccomp_mode_parse(const char *s, enum seccomp_mode *out);
const char *seccomp_role_name(enum seccomp_role role);

/* Once per process, on the main thread, before any thread is confined:
 * sets the mode, installs the SIGSYS handler (mode on) and fills what the
 * handler and confined threads must not compute later (the syscall name
 * table, libc's time zone). Mode off: nothing. 0 or -errno. */
int seccomp_prepare(enum seccomp_mode mode);
enum seccomp_mode seccomp_current_mode(void);

/* Confine the calling thread (and threads it creates from now on) to role.
 * Nothing in mode off or when the thread already has this role. 0, or
 * -errno with err saying what failed. */
int seccomp_install(enum seccomp_role role, char *err, size_t errlen);
/* The same, for a thread that is about to create threads which run no
 * code of ours before they serve (libmicrohttpd's): a forbidden call on
 * such a thread is reported as this role. */
int seccomp_install_inherited(enum seccomp_role role, char *err, size_t errlen);

/* Name the calling thread's role for the SIGSYS line before it installs its
 * filter (a thread created under another thread's filter). */
void seccomp_name_thread(enum seccomp_role role);

/* The allowlists as Markdown (README "System call filters"). */
void seccomp_describe(FILE *f);

#endif
