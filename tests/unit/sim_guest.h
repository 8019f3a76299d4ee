/* A simulated guest for the migration tests (test_migrate, migrate_peer):
 * real guest memory and a thread that writes counters into random pages at
 * a set rate, marking each one in the VMM-side dirty bitmap after the
 * write (the order KVM's dirty log gives), and that obeys the vCPU throttle
 * by sleeping. The migrate_source_ops callbacks that only touch the guest
 * are here; state saving stays with each test. */
#ifndef WAFER_TESTS_SIM_GUEST_H
#define WAFER_TESTS_SIM_GUEST_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "vmm/memory.h"

struct sim_guest {
	struct guest_mem mem;
	pthread_t thread;
	/* Held while the guest writes a burst; pause and dirty_stop take it,
	 * so no write is half-done when they return. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool paused, stop;
	uint64_t rate;          /* pages/s dirtied when unthrottled; 0 = idle */
	uint64_t span;          /* pages [0, span) are written */
	atomic_uint throttle;
	atomic_ullong writes;
	unsigned max_throttle;
	int n_dirty_start, n_dirty_stop, n_pause, n_resume;
};

static inline uint64_t sim_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void sim_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	nanosleep(&ts, NULL);
}

static inline void *sim_guest_main(void *arg)
{
	struct sim_guest *g = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ull, seq = 0, due = sim_now_ns();

	for (;;) {
		pthread_mutex_lock(&g->lock);
		while (g->paused && !g->stop)
			pthread_cond_wait(&g->cond, &g->lock);
		if (g->stop) {
			pthread_mutex_unlock(&g->lock);
			break;
		}
		for (int i = 0; i < 16; i++) {
			seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
			uint64_t pg = seed % g->span;
			uint64_t *w = (uint64_t *)(g->mem.host + (pg << GMEM_PAGE_SHIFT)) +
				      seq % (GMEM_PAGE_SIZE / 8);
			*w = ++seq;
			gmem_mark_dirty_host(&g->mem, w, sizeof(*w));
		}
		atomic_fetch_add(&g->writes, 16);
		pthread_mutex_unlock(&g->lock);
		/* 16 pages cost 16/rate s of vCPU time; a throttled vCPU runs
		 * only (100 - t)% of the wall clock. */
		unsigned t = atomic_load(&g->throttle);
		due += 16ull * 1000000000ull / g->rate * 100 / (100 - t);
		uint64_t n = sim_now_ns();
		if (due > n + 50000)
			sim_sleep_ns(due - n);
		else if (n > due + 10000000)
			due = n;   /* descheduled: no catch-up burst */
	}
	return NULL;
}

/* size bytes of RAM, every third page filled with a pattern (the others
 * stay zero); rate pages/s over span pages (0 = all). 0 or -errno. */
static inline int sim_guest_init(struct sim_guest *g, uint64_t size, uint64_t rate, uint64_t span)
{
	memset(g, 0, sizeof(*g));
	int rc = gmem_alloc(&g->mem, size);
	if (rc)
		return rc;
	for (uint64_t pg = 0; pg < gmem_pages(&g->mem); pg += 3)
		for (uint64_t i = 0; i < GMEM_PAGE_SIZE / 8; i += 64)
			((uint64_t *)(g->mem.host + (pg << GMEM_PAGE_SHIFT)))[i] = pg * 1000003 + i + 1;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->rate = rate;
	g->span = span && span < gmem_pages(&g->mem) ? span : gmem_pages(&g->mem);
	if (rate && pthread_create(&g->thread, NULL, sim_guest_main, g)) {
		g->rate = 0;
		return -EAGAIN;
	}
	return 0;
}

static inline void sim_guest_fini(struct sim_guest *g)
{
	pthread_mutex_lock(&g->lock);
	g->stop = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	if (g->rate)
		pthread_join(g->thread, NULL);
	gmem_free(&g->mem);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cond);
}

/* ---- migrate_source_ops callbacks (opaque = struct sim_guest *) ---- */

static inline int sim_dirty_start(void *o)
{
	struct sim_guest *g = o;
	pthread_mutex_lock(&g->lock);
	int rc = gmem_dirty_start(&g->mem);
	g->n_dirty_start++;
	pthread_mutex_unlock(&g->lock);
	return rc;
}

static inline void sim_dirty_stop(void *o)
{
	struct sim_guest *g = o;
	pthread_mutex_lock(&g->lock);
	gmem_dirty_stop(&g->mem);
	g->n_dirty_stop++;
	pthread_mutex_unlock(&g->lock);
}

static inline int sim_dirty_harvest(void *o, uint64_t *bitmap)
{
	gmem_dirty_harvest(&((struct sim_guest *)o)->mem, bitmap);
	return 0;
}

static inline int sim_pause(void *o)
{
	struct sim_guest *g = o;
	pthread_mutex_lock(&g->lock);
	g->paused = true;
	g->n_pause++;
	pthread_mutex_unlock(&g->lock);
	return 0;
}

static inline int sim_resume(void *o)
{
	struct sim_guest *g = o;
	pthread_mutex_lock(&g->lock);
	g->paused = false;
	g->n_resume++;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

static inline void sim_throttle(void *o, unsigned pct)
{
	struct sim_guest *g = o;
	atomic_store(&g->throttle, pct);
	if (pct > g->max_throttle)
		g->max_throttle = pct;
}

#endif
