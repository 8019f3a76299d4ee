/* Live migration engine: pre-copy of guest memory over a stream socket
 * (tcp:HOST:PORT or unix:PATH) in the state container of format.h, with the
 * VM kept behind two ops tables so the engine runs, and is tested, without
 * KVM. The protocol is described at the top of migrate.c; the endpoints
 * (URLs, connect, listen, accept) are in migrate_net.c. */
#ifndef WAFER_STATE_MIGRATE_H
#define WAFER_STATE_MIGRATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state/format.h"
#include "vmm/memory.h"

#define MIGRATE_PROTO_VERSION       1u
#define MIGRATE_DOWNTIME_DEFAULT_NS (20ull * 1000 * 1000)
#define MIGRATE_TIMEOUT_DEFAULT_MS  (10u * 60 * 1000)
#define MIGRATE_IO_TIMEOUT_DEFAULT_MS (10u * 1000)

struct migrate_status;

/* The source VM. Page indexes in bitmaps are host offset / 4096 into the
 * guest_mem mapping (gmem_bitmap_words words). Called from the thread that
 * runs migrate_send. */
struct migrate_source_ops {
	int (*dirty_start)(void *opaque);                      /* 0 or -errno */
	/* Also called while the guest runs (failure before the pause): with
	 * gmem's VMM-side bitmap, nothing may be marking while it is freed. */
	void (*dirty_stop)(void *opaque);
	/* OR the pages written since the previous call (or dirty_start) into
	 * bitmap and reset tracking: 0 or -errno. */
	int (*dirty_harvest)(void *opaque, uint64_t *bitmap);
	int (*pause)(void *opaque);            /* vCPUs stopped, devices quiesced */
	/* Failure after pause() was called (even if it failed): the source
	 * goes on. Never called otherwise. */
	int (*resume)(void *opaque);
	/* Append the non-memory state as snap sections (no header, no "end",
	 * no names starting with "mig-"): 0 or -errno. Called while paused. */
	int (*save_state)(void *opaque, struct snap_buf *b);
	/* Auto-converge: let the vCPUs run only (100 - pct)% of the time;
	 * 0 = full speed. Optional (no auto-converge without it). */
	void (*throttle)(void *opaque, unsigned pct);
	/* Optional: called after every pre-copy round and at the end. */
	void (*on_round)(void *opaque, const struct migrate_status *st);
};

/* The destination VM. */
struct migrate_dest_ops {
	/* The sender's hello (opaque bytes from migrate_send: versions, CPU
	 * template, config) and its memory size: build the VM and return its
	 * guest memory, which must read as zero (a fresh mapping) and be exactly
	 * mem_size bytes; or refuse with -errno and a one-line reason in err,
	 * which the sender reports. The memory stays the caller's. */
	int (*prepare)(void *opaque, const void *hello, size_t hello_len, uint64_t mem_size,
		       struct guest_mem **mem, char *err, size_t errlen);
	/* Every non-memory section save_state produced, as a validated state. */
	int (*load_state)(void *opaque, const struct snap_reader *r, char *err, size_t errlen);
};

struct migrate_params {
	uint64_t downtime_max_ns;  /* switch over when the rest fits; 0 = 20 ms */
	unsigned timeout_ms;       /* pre-copy gives up after this; 0 = 10 min */
	unsigned io_timeout_ms;    /* a silent peer fails after this; 0 = 10 s */
	bool auto_converge;        /* throttle vCPUs when the guest outruns the link */
	uint64_t max_bandwidth;    /* bytes/s; 0 = unlimited */
};

enum migrate_state {
	MIGRATE_NONE,
	MIGRATE_SETUP,       /* connecting, hello, destination preparing */
	MIGRATE_ACTIVE,      /* pre-copy rounds */
	MIGRATE_SWITCHOVER,  /* source paused, last pages + state in flight */
	MIGRATE_COMPLETED,
	MIGRATE_FAILED,
};

/* A consistent picture of one migration. On the receiver, bytes and pages
 * count what arrived and the rates stay 0. */
struct migrate_status {
	enum migrate_state state;
	unsigned round;                 /* pre-copy round in progress (0 = full pass) */
	uint64_t bytes_transferred;     /* stream bytes so far */
	uint64_t bytes_remaining;       /* dirty pages not yet sent, in bytes */
	uint64_t pages_transferred;     /* page records (data + zero) */
	uint64_t zero_pages;            /* of which zero records */
	uint64_t dirty_rate;            /* bytes/s the guest dirtied, last round */
	uint64_t bandwidth;             /* bytes/s measured on the link */
	uint64_t expected_downtime_ns;  /* bytes_remaining / bandwidth */
	unsigned throttle_pct;
	uint64_t downtime_ns;           /* pause -> destination's confirmation */
	uint64_t total_ns;
	char error[256];
};

/* Shared with other threads while a migration runs: read it with
 * migrate_progress_read, stop it with migrate_cancel. */
struct migrate_progress {
	pthread_mutex_t lock;
	struct migrate_status st;
	atomic_bool cancel;
};

void migrate_progress_init(struct migrate_progress *p);
void migrate_progress_destroy(struct migrate_progress *p);
void migrate_progress_read(struct migrate_progress *p, struct migrate_status *out);
/* The running migrate_send fails with -ECANCELED and resumes the source. */
void migrate_cancel(struct migrate_progress *p);
const char *migrate_state_name(enum migrate_state s);

/* Migrate mem and the ops' state over fd. 0 once the destination loaded
 * everything and was told to run: the source is left paused, its dirty
 * tracking stopped, for the caller to stop. Any failure (timeout, refusal,
 * hang-up, corrupt reply, cancel) stops tracking, turns throttling off,
 * calls resume() if (and only if) it called pause() -- a VM the user had
 * paused before stays paused -- and returns -errno with err set.
 * p and prog may be NULL. */
int migrate_send(int fd, struct guest_mem *mem, const void *hello, size_t hello_len,
		 const struct migrate_source_ops *ops, void *opaque,
		 const struct migrate_params *p, struct migrate_progress *prog,
		 char *err, size_t errlen);

/* Receive one migration from fd into the memory prepare() returns. 0 when
 * the VM is complete and the source has handed over: run it. -ENOTCONN when
 * everything was loaded and confirmed but the source's go-ahead never came:
 * the source may or may not have stopped, so keep the VM paused. Any other
 * -errno: discard the VM (the source resumes). Only p->io_timeout_ms is used;
 * p and prog may be NULL. */
int migrate_receive(int fd, const struct migrate_dest_ops *ops, void *opaque,
		    const struct migrate_params *p, struct migrate_progress *prog,
		    char *err, size_t errlen);

/* "tcp:HOST:PORT" (HOST a name, an IPv4 address or [IPv6]) or "unix:PATH".
 * connect: 0 and *fd, or -errno with err naming the URL. */
int migrate_connect(const char *url, unsigned timeout_ms, int *fd, char *err, size_t errlen);
/* Listen on the URL (an empty HOST or port 0 is allowed). */
int migrate_listen(const char *url, int *listen_fd, char *err, size_t errlen);
/* Accept one connection within timeout_ms (0 = wait forever). */
int migrate_accept(int listen_fd, unsigned timeout_ms, int *fd, char *err, size_t errlen);
/* The URL a listening socket is bound to (the real port for port 0). */
int migrate_listen_url(int listen_fd, char *buf, size_t len);

#endif
