/* epoll-based I/O thread. Registrations carry a heap record so handlers can
 * be removed safely from within a handler. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/eventloop.h"

struct eventloop_reg {
	int fd;
	eventloop_fn fn;
	void *opaque;
};


int eventloop_init(struct eventloop *l)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->pause_cond, NULL);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return -errno;
	l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wakefd < 0) {
		int rc = -errno;
		close(l->epfd);
		return rc;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) < 0) {
		int rc = -errno;
		close(l->wakefd);
		close(l->epfd);
		return rc;
	}
	return 0;
}

int eventloop_add(struct eventloop *l, int fd, uint32_t events, eventloop_fn fn, void *opaque)
{
	struct eventloop_reg *r = malloc(sizeof(*r));
	int rc = -ENOSPC;
	if (!r)
		return -ENOMEM;
	*r = (struct eventloop_reg){ fd, fn, opaque };
	pthread_mutex_lock(&l->lock);
	for (unsigned i = 0; i < EVENTLOOP_MAX_REGS; i++) {
		if (l->regs[i])
			continue;
		struct epoll_event ev = { .events = events, .data.ptr = r };
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			rc = -errno;
			break;
		}
		l->regs[i] = r;
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&l->lock);
	if (rc)
		free(r);
	return rc;
}

int eventloop_del(struct eventloop *l, int fd)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&l->lock);
	for (unsigned i = 0; i < EVENTLOOP_MAX_REGS; i++) {
		if (l->regs[i] && l->regs[i]->fd == fd) {
			epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
			/* Still referenced by events already returned in this round:
			 * neutralise instead of freeing until destroy. */
			l->regs[i]->fn = NULL;
			l->regs[i]->fd = -1;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&l->lock);
	return rc;
}

/* Loop thread, l->lock held, between two handlers: park while a pause is
 * requested. true: the loop is stopping. */
static bool eventloop_park_locked(struct eventloop *l)
{
	while (l->pause_count && !l->stopping) {
		if (!l->parked) {
			l->parked = true;
			pthread_cond_broadcast(&l->pause_cond);
		}
		pthread_cond_wait(&l->pause_cond, &l->lock);
	}
	l->parked = false;
	return l->stopping;
}

static void *eventloop_thread(void *arg)
{
	struct eventloop *l = arg;
	struct epoll_event evs[32];
	uint64_t cnt;

	if (l->thread_init)
		l->thread_init(l->thread_init_arg);
	for (;;) {
		int n = epoll_wait(l->epfd, evs, 32, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct eventloop_reg *r = evs[i].data.ptr;
			eventloop_fn fn;
			pthread_mutex_lock(&l->lock);
			bool stop = eventloop_park_locked(l);
			fn = r ? r->fn : NULL;
			pthread_mutex_unlock(&l->lock);
			if (stop)
				goto out;
			if (!r) {
				/* wakefd: a pause or stop request, handled above */
				if (read(l->wakefd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
					goto out;
				continue;
			}
			if (fn)
				fn(r->opaque, evs[i].events);
		}
	}
out:
	pthread_mutex_lock(&l->lock);
	l->exited = true;
	pthread_cond_broadcast(&l->pause_cond);
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

int eventloop_start(struct eventloop *l, const char *name)
{
	int r = pthread_create(&l->thread, NULL, eventloop_thread, l);
	if (r)
		return -r;
	if (name)
		pthread_setname_np(l->thread, name);
	l->running = 1;
	return 0;
}

static void eventloop_wake(struct eventloop *l)
{
	uint64_t one = 1;
	ssize_t w = write(l->wakefd, &one, sizeof(one));
	(void)w; /* a full counter is still readable */
}

void eventloop_stop(struct eventloop *l)
{
	if (!l->running)
		return;
	pthread_mutex_lock(&l->lock);
	l->stopping = true;
	pthread_cond_broadcast(&l->pause_cond);
	pthread_mutex_unlock(&l->lock);
	eventloop_wake(l);
	pthread_join(l->thread, NULL);
	l->running = 0;
	pthread_mutex_lock(&l->lock);
	l->stopping = l->exited = l->parked = false;
	pthread_mutex_unlock(&l->lock);
}

void eventloop_pause(struct eventloop *l)
{
	pthread_mutex_lock(&l->lock);
	l->pause_count++;
	bool wait = l->running && !pthread_equal(pthread_self(), l->thread);
	pthread_mutex_unlock(&l->lock);
	if (!wait)
		return;
	eventloop_wake(l);
	pthread_mutex_lock(&l->lock);
	while (!l->parked && !l->exited)
		pthread_cond_wait(&l->pause_cond, &l->lock);
	pthread_mutex_unlock(&l->lock);
}

void eventloop_resume(struct eventloop *l)
{
	pthread_mutex_lock(&l->lock);
	if (l->pause_count && --l->pause_count == 0)
		pthread_cond_broadcast(&l->pause_cond);
	pthread_mutex_unlock(&l->lock);
}

void eventloop_destroy(struct eventloop *l)
{
	eventloop_stop(l);
	pthread_mutex_lock(&l->lock);
	for (unsigned i = 0; i < EVENTLOOP_MAX_REGS; i++) {
		free(l->regs[i]);
		l->regs[i] = NULL;
	}
	pthread_mutex_unlock(&l->lock);
	pthread_cond_destroy(&l->pause_cond);
	if (l->wakefd >= 0)
		close(l->wakefd);
	if (l->epfd >= 0)
		close(l->epfd);
	l->wakefd = l->epfd = -1;
	pthread_mutex_destroy(&l->lock);
}
