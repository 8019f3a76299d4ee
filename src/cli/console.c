/* The guest serial console on the terminal: stdin -> COM1 receive FIFO (with
 * back-pressure), raw mode while stdin is a tty, and the escape sequence
 * Ctrl-A x (quit), Ctrl-A Ctrl-A (send Ctrl-A), Ctrl-A h (help). Runs on the
 * main thread until the VM stops; SIGINT/SIGTERM/SIGHUP stop the VM. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "devices/serial.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#define CONSOLE_ESCAPE 0x01 /* Ctrl-A */

static struct termios console_saved;
static int console_raw;

static void console_restore(void)
{
	if (console_raw) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &console_saved);
		console_raw = 0;
	}
}

static void console_make_raw(void)
{
	struct termios t;
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &console_saved) < 0)
		return;
	t = console_saved;
	cfmakeraw(&t);
	/* Keep output post-processing off (the guest sends CR LF itself). */
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0) {
		console_raw = 1;
		atexit(console_restore);
	}
}

/* One console client on the API socket at a time (GET /console). */
static struct {
	pthread_mutex_t lock;
	int fd;                    /* -1: none */
	void (*done)(void *);
	void *arg;
} console_client = { PTHREAD_MUTEX_INITIALIZER, -1, NULL, NULL };

int console_attach(struct vm *vm, int fd, void (*done)(void *), void *arg)
{
	int rc = 0;

	pthread_mutex_lock(&console_client.lock);
	if (console_client.fd >= 0) {
		rc = -EBUSY;
	} else if (!vm->console) {
		rc = -ENODEV;
	} else {
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		console_client.fd = fd;
		console_client.done = done;
		console_client.arg = arg;
		atomic_store(&vm->console->mirror_fd, fd);
		/* console_run is blocked in poll without the client: wake it. */
		uint64_t one = 1;
		(void)!write(vm->console_wake_fd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&console_client.lock);
	return rc;
}

bool console_attached(void)
{
	pthread_mutex_lock(&console_client.lock);
	bool a = console_client.fd >= 0;
	pthread_mutex_unlock(&console_client.lock);
	return a;
}

static void console_detach(struct vm *vm)
{
	pthread_mutex_lock(&console_client.lock);
	if (console_client.fd >= 0) {
		if (vm->console)
			atomic_store(&vm->console->mirror_fd, -1);
		console_client.fd = -1;
		if (console_client.done)
			console_client.done(console_client.arg);
		console_client.done = NULL;
	}
	pthread_mutex_unlock(&console_client.lock);
}

struct console_in {
	uint8_t buf[4096];
	size_t len;      /* bytes waiting for FIFO space */
	int escape;      /* previous byte was the escape key */
	int eof;
};

/* Apply the escape sequence to freshly read bytes, appending guest-bound bytes
 * to in->buf; returns 1 if the user asked to quit. */
static int console_filter(struct vm *vm, struct console_in *in, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (console_raw && in->escape) {
			in->escape = 0;
			if (c == 'x' || c == 'X') {
				vm_request_stop(vm, VM_STOP_USER, 0, "stopped from the console (Ctrl-A x)");
				return 1;
			}
			if (c == 'h' || c == 'H' || c == '?') {
				static const char help[] =
					"\r\n[wafer] Ctrl-A x: quit   Ctrl-A Ctrl-A: send Ctrl-A   Ctrl-A h: this help\r\n";
				ssize_t r = write(STDOUT_FILENO, help, sizeof(help) - 1);
				(void)r;
				continue;
			}
			if (c != CONSOLE_ESCAPE)
				continue; /* unknown sequences are swallowed */
		} else if (console_raw && c == CONSOLE_ESCAPE) {
			in->escape = 1;
			continue;
		}
		if (in->len < sizeof(in->buf))
			in->buf[in->len++] = c;
	}
	return 0;
}

int console_run(struct vm *vm)
{
	struct console_in in = { .len = 0 };
	sigset_t sigs;
	int sfd;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	console_make_raw();

	for (;;) {
		pthread_mutex_lock(&console_client.lock);
		int client = console_client.fd, wake = vm->console_wake_fd;
		pthread_mutex_unlock(&console_client.lock);
		struct pollfd pfd[5] = {
			{ .fd = vm->stop_eventfd, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			/* Read input only when there is room to hold what we read. */
			{ .fd = (in.eof || in.len) ? -1 : STDIN_FILENO, .events = POLLIN },
			{ .fd = in.len ? -1 : client, .events = POLLIN },
			{ .fd = wake, .events = POLLIN },
		};
		/* With bytes waiting for FIFO space, poll the FIFO every 2 ms. */
		int r = poll(pfd, 5, in.len ? 2 : -1);
		if (r < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		if (sfd >= 0 && (pfd[1].revents & POLLIN)) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				char what[64];
				snprintf(what, sizeof(what), "stopped by signal %s", strsignal((int)si.ssi_signo));
				vm_request_stop(vm, VM_STOP_USER, 0, what);
			}
			continue;
		}
		if (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)) {
			uint8_t tmp[sizeof(in.buf)];
			ssize_t n = read(STDIN_FILENO, tmp, sizeof(tmp));
			if (n <= 0) {
				if (n == 0 || (errno != EINTR && errno != EAGAIN))
					in.eof = 1; /* the guest keeps running without input */
			} else if (console_filter(vm, &in, tmp, (size_t)n)) {
				continue;
			}
		}
		if (pfd[4].revents & POLLIN) {
			uint64_t v;
			(void)!read(wake, &v, sizeof(v));
		}
		if (pfd[3].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(client, in.buf, sizeof(in.buf));
			if (n > 0)
				in.len = (size_t)n;  /* raw: the client handles its own detach key */
			else if (n == 0 || (errno != EINTR && errno != EAGAIN))
				console_detach(vm);
		}
		if (in.len && vm->console) {
			size_t took = serial_receive(vm->console, in.buf, in.len);
			memmove(in.buf, in.buf + took, in.len - took);
			in.len -= took;
		}
	}
	console_detach(vm);  /* the VM is gone: end the client's session */
	console_restore();
	if (sfd >= 0)
		close(sfd);
	return 0;
}
