/* The I/O thread's event loop: epoll over device fds (ioeventfds, tap, io_uring
 * completions, timers). Handlers run on the loop's thread, never on vCPUs. */
#ifndef WAFER_VMM_EVENTLOOP_H
#define WAFER_VMM_EVENTLOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef void (*eventloop_fn)(void *opaque, uint32_t events);

#define EVENTLOOP_MAX_REGS 256

struct eventloop_reg;

struct eventloop {
	int epfd;
	int wakefd;          /* eventfd to stop the loop */
	pthread_t thread;
	int running;
	pthread_mutex_t lock;
	struct eventloop_reg *regs[EVENTLOOP_MAX_REGS];
	/* Pause (snapshots): the thread parks between handlers while
	 * pause_count > 0. All under lock. */
	pthread_cond_t pause_cond;
	unsigned pause_count;
	bool parked, stopping, exited;
	/* Optional: runs first on the loop's thread (the VM confines it). */
	void (*thread_init)(void *arg);
	void *thread_init_arg;
};

int eventloop_init(struct eventloop *l);
/* Watch fd for events (EPOLLIN, ...); fn(opaque, revents) runs on the loop
 * thread. The registration lives until eventloop_del. 0 or -errno. */
int eventloop_add(struct eventloop *l, int fd, uint32_t events, eventloop_fn fn, void *opaque);
int eventloop_del(struct eventloop *l, int fd);
/* Start the loop thread / stop and join it. */
int eventloop_start(struct eventloop *l, const char *name);
void eventloop_stop(struct eventloop *l);
/* Park the loop thread at a safe point between handlers and return once it
 * is parked: no handler runs until the matching eventloop_resume. Nests.
 * Returns at once when the loop is not started or the caller is the loop
 * thread itself (it is between handlers already). */
void eventloop_pause(struct eventloop *l);
void eventloop_resume(struct eventloop *l);
void eventloop_destroy(struct eventloop *l);

#endif
