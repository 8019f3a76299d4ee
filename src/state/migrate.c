/* Live migration (issue 5): pre-copy of guest RAM under dirty logging,
 * switch-over when the rest fits the downtime target at the measured link
 * bandwidth, auto-converge, then the device state -- one stream in the
 * state container of format.h, every section with its own CRC-32.
 *
 * Source -> destination: snap header, "mig-hello"; after the destination's
 * "mig-ready", pre-copy rounds of "mig-pages", each closed by "mig-sync";
 * at switch-over (source paused) the last "mig-pages", the save_state
 * sections and "end". Destination -> source: snap header, "mig-ready" or
 * "mig-refuse", a "mig-synced" for every "mig-sync", "mig-done" once
 * everything is loaded, or "mig-error" at any time. The source answers
 * "mig-done" with "mig-go" and stops; the destination runs only after
 * "mig-go". "mig-abort" tells the destination the source gave up.
 *
 * The sync round trip empties the pipeline at the end of every round: the
 * round's time then includes what socket buffers held, so the bandwidth
 * is what the destination really absorbed, and the switch-over starts
 * with nothing in flight -- the downtime is the last pages, not a backlog.
 *
 *   mig-hello  proto u32, page size u32, memory bytes u64,
 *              wafer version (u16 len + bytes), caller's hello (u32 len + bytes)
 *   mig-pages  round u32, count u32 (<= MIG_BATCH), then count records:
 *              u64 page index (| MIG_ZERO), 4096 bytes unless MIG_ZERO
 *   mig-refuse, mig-error, mig-abort   errno u32, message (u16 len + bytes)
 *   mig-ready, mig-sync, mig-synced, mig-done, mig-go   u32 (the round, or 0)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "state/migrate.h"

#ifndef WAFER_VERSION
#define WAFER_VERSION "unknown"
#endif

#define MIG_BATCH          256u   /* pages per mig-pages section (~1 MiB) */
#define MIG_PAGES_MAX      (8u + MIG_BATCH * (8u + (unsigned)GMEM_PAGE_SIZE))
#define MIG_ZERO           (1ull << 63)
#define MIG_MSG_MAX        512u   /* message text in refuse/error/abort */
#define MIG_REPLY_MAX      (8u + MIG_MSG_MAX)
#define MIG_STATE_MAX      SNAP_SECTION_MAX   /* all save_state sections */
#define MIG_RX_CAP         (4u << 20)
#define MIG_THROTTLE_FIRST 20u
#define MIG_THROTTLE_STEP  10u
#define MIG_THROTTLE_MAX   99u
#define MIG_POLL_SLICE_MS  100
#define MIG_DRAIN_MS       2000u  /* after an error: let the reply reach the peer */
#define NS_PER_MS          1000000ull
#define NS_PER_S           1000000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static uint64_t le_get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void le_patch32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	uint64_t acc = 0;
	for (size_t i = 0; i < GMEM_PAGE_SIZE / 8; i += 8)
		acc |= w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7];
	return !acc;
}

/* ---- progress ------------------------------------------------------------ */

void migrate_progress_init(struct migrate_progress *p)
{
	memset(&p->st, 0, sizeof(p->st));
	pthread_mutex_init(&p->lock, NULL);
	atomic_init(&p->cancel, false);
}

void migrate_progress_destroy(struct migrate_progress *p)
{
	pthread_mutex_destroy(&p->lock);
}

void migrate_progress_read(struct migrate_progress *p, struct migrate_status *out)
{
	pthread_mutex_lock(&p->lock);
	*out = p->st;
	pthread_mutex_unlock(&p->lock);
}

void migrate_cancel(struct migrate_progress *p)
{
	atomic_store(&p->cancel, true);
}

const char *migrate_state_name(enum migrate_state s)
{
	static const char *const names[] = {
		[MIGRATE_NONE] = "none", [MIGRATE_SETUP] = "setup", [MIGRATE_ACTIVE] = "active",
		[MIGRATE_SWITCHOVER] = "switchover", [MIGRATE_COMPLETED] = "completed",
		[MIGRATE_FAILED] = "failed",
	};
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

#define PROG(prog, stmt) do { pthread_mutex_lock(&(prog)->lock); stmt; \
			      pthread_mutex_unlock(&(prog)->lock); } while (0)

/* ---- one connection: bounded receive buffer, timed I/O ------------------ */

struct mig_conn {
	int fd;
	uint64_t io_timeout_ns;
	atomic_bool *cancel;
	uint8_t *rx;                 /* unparsed bytes are rx[rx_off, rx_len) */
	size_t rx_off, rx_len, rx_cap, rx_limit;
	uint64_t rx_total, tx_total;
	bool eof;                    /* the peer shut down its side */
	bool watch_rx;               /* read the peer while writing (source) */
	bool tx_torn;                /* a write failed inside a section */
	int outq;                    /* bytes in our send queue at the last look */
};

static int conn_init(struct mig_conn *c, int fd, unsigned io_timeout_ms, size_t cap,
		     size_t limit, atomic_bool *cancel)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->io_timeout_ns = (io_timeout_ms ? io_timeout_ms : MIGRATE_IO_TIMEOUT_DEFAULT_MS) * NS_PER_MS;
	c->cancel = cancel;
	c->rx_cap = cap;
	c->rx_limit = limit;
	c->rx = malloc(cap);
	return c->rx ? 0 : -ENOMEM;
}

/* Wait for events until *deadline: revents, or -ETIMEDOUT / -ECANCELED
 * (cancel is only honoured where the stream is between sections). While
 * our own bytes still drain into a slow link (the send queue shrinks), the
 * peer is not silent: the deadline moves. */
static int conn_poll(struct mig_conn *c, short events, uint64_t *deadline, bool cancellable)
{
	for (;;) {
		if (cancellable && c->cancel && atomic_load(c->cancel))
			return -ECANCELED;
		uint64_t t = now_ns();
		if (t >= *deadline)
			return -ETIMEDOUT;
		uint64_t left = (*deadline - t + NS_PER_MS - 1) / NS_PER_MS;
		struct pollfd pfd = { .fd = c->fd, .events = events };
		int r = poll(&pfd, 1, left > MIG_POLL_SLICE_MS ? MIG_POLL_SLICE_MS : (int)left);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0)
			return pfd.revents;
		int q;
		if (r == 0 && !ioctl(c->fd, SIOCOUTQ, &q)) {
			if (q < c->outq)
				*deadline = now_ns() + c->io_timeout_ns;
			c->outq = q;
		}
	}
}

/* Read what is there without blocking: 1 bytes read, 0 EOF, -EAGAIN none,
 * -EMSGSIZE no room, -errno. */
static int conn_recv(struct mig_conn *c)
{
	if (c->rx_len == c->rx_cap && c->rx_off) {
		memmove(c->rx, c->rx + c->rx_off, c->rx_len - c->rx_off);
		c->rx_len -= c->rx_off;
		c->rx_off = 0;
	}
	if (c->rx_len == c->rx_cap)
		return -EMSGSIZE;
	ssize_t r = recv(c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len, MSG_DONTWAIT);
	if (r > 0) {
		c->rx_len += (size_t)r;
		c->rx_total += (uint64_t)r;
		return 1;
	}
	if (r == 0) {
		c->eof = true;
		return 0;
	}
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -EAGAIN : -errno;
}

static void conn_io_error(int rc, const struct mig_conn *c, char *err, size_t errlen)
{
	if (rc == -ETIMEDOUT)
		snprintf(err, errlen, "no progress on the connection for %llu ms",
			 (unsigned long long)(c->io_timeout_ns / NS_PER_MS));
	else if (rc == -ECANCELED)
		snprintf(err, errlen, "cancelled");
	else if (rc == -ECONNRESET || rc == -EPIPE)
		snprintf(err, errlen, "connection closed by the peer");
	else if (rc == -EMSGSIZE)
		snprintf(err, errlen, "the peer sent more than it may");
	else
		snprintf(err, errlen, "connection: %s", strerror(-rc));
}

/* Wait until n unparsed bytes are buffered (n <= rx_limit). */
static int conn_need(struct mig_conn *c, size_t n, char *err, size_t errlen)
{
	int rc;

	if (c->rx_off + n > c->rx_cap) {
		memmove(c->rx, c->rx + c->rx_off, c->rx_len - c->rx_off);
		c->rx_len -= c->rx_off;
		c->rx_off = 0;
		if (n > c->rx_cap) {
			size_t cap = c->rx_cap * 2 > n ? c->rx_cap * 2 : n;
			if (cap > c->rx_limit)
				cap = c->rx_limit;
			uint8_t *p = realloc(c->rx, cap);
			if (!p) {
				snprintf(err, errlen, "out of memory for a %zu-byte section", n);
				return -ENOMEM;
			}
			c->rx = p;
			c->rx_cap = cap;
		}
	}
	uint64_t deadline = now_ns() + c->io_timeout_ns;
	while (c->rx_len - c->rx_off < n) {
		if (c->eof) {
			rc = -ECONNRESET;
			goto out;
		}
		rc = conn_poll(c, POLLIN, &deadline, true);
		if (rc < 0)
			goto out;
		rc = conn_recv(c);
		if (rc == 1)
			deadline = now_ns() + c->io_timeout_ns;
		else if (rc < 0 && rc != -EAGAIN)
			goto out;
	}
	return 0;
out:
	conn_io_error(rc, c, err, errlen);
	return rc;
}

/* The next section (its data valid until the next read): 0, or -errno with
 * err set. Sections over the connection's limit are refused before they are
 * buffered. */
static int conn_read(struct mig_conn *c, struct snap_section *s, char *err, size_t errlen)
{
	for (;;) {
		size_t avail = c->rx_len - c->rx_off;
		long n = snap_section_parse(c->rx + c->rx_off, avail, s, err, errlen);
		if (n < 0)
			return -EINVAL;
		if (n > 0) {
			c->rx_off += (size_t)n;
			return 0;
		}
		size_t need = SNAP_SECTION_HDR, limit = c->rx_limit;
		if (avail >= SNAP_SECTION_HDR) {
			need += (size_t)le_get(c->rx + c->rx_off + 24, 8);  /* <= SNAP_SECTION_MAX */
			if (!strncmp((const char *)c->rx + c->rx_off, "mig-pages", SNAP_NAME_MAX))
				limit = SNAP_SECTION_HDR + MIG_PAGES_MAX;
		}
		if (need > limit) {
			snprintf(err, errlen, "section %.16s: %zu bytes, more than the %zu allowed",
				 (const char *)(c->rx + c->rx_off), need - SNAP_SECTION_HDR,
				 limit - SNAP_SECTION_HDR);
			return -EMSGSIZE;
		}
		int rc = conn_need(c, need, err, errlen);
		if (rc)
			return rc;
	}
}

/* The peer's stream header. */
static int conn_read_header(struct mig_conn *c, char *err, size_t errlen)
{
	int rc = conn_need(c, SNAP_HEADER_SIZE, err, errlen);
	if (rc)
		return rc;
	const uint8_t *h = c->rx + c->rx_off;
	c->rx_off += SNAP_HEADER_SIZE;
	if (memcmp(h, SNAP_MAGIC, 8)) {
		snprintf(err, errlen, "the peer is not speaking wafer's migration protocol (bad magic)");
		return -EPROTO;
	}
	uint32_t ver = (uint32_t)le_get(h + 8, 4);
	if (ver != SNAP_FORMAT_VERSION) {
		snprintf(err, errlen, "the peer uses state format version %u; this wafer uses %u",
			 ver, SNAP_FORMAT_VERSION);
		return -EPROTO;
	}
	return 0;
}

/* Write all of data, reading the peer meanwhile if watch_rx (so neither
 * side blocks on a full socket while the other writes). */
static int conn_write(struct mig_conn *c, const void *data, size_t len, char *err, size_t errlen)
{
	const uint8_t *p = data;
	size_t done = 0;
	int rc = 0;
	uint64_t deadline = now_ns() + c->io_timeout_ns;

	while (done < len) {
		short ev = POLLOUT | (c->watch_rx && !c->eof ? POLLIN : 0);
		rc = conn_poll(c, ev, &deadline, done == 0);
		if (rc < 0)
			goto out;
		if ((rc & POLLIN) && c->watch_rx) {
			rc = conn_recv(c);
			if (rc < 0 && rc != -EAGAIN)
				goto out;
		}
		ssize_t r = send(c->fd, p + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		done += (size_t)r;
		c->tx_total += (uint64_t)r;
		deadline = now_ns() + c->io_timeout_ns;
	}
	return 0;
out:
	c->tx_torn = done > 0;
	conn_io_error(rc, c, err, errlen);
	return rc;
}

/* refuse/error/abort: errno and a line of text. */
static void put_msg(struct snap_buf *b, const char *name, int rc, const char *msg)
{
	size_t n = strnlen(msg, MIG_MSG_MAX);
	size_t tok = snap_section_begin(b, name, 0, 1);
	snap_buf_put_u32(b, (uint32_t)(rc < 0 ? -rc : rc));
	snap_buf_put_u16(b, (uint16_t)n);
	snap_buf_put(b, msg, n);
	snap_section_end(b, tok);
}

/* -errno from the message (-EPROTO if the peer sent nonsense), text in msg. */
static int parse_msg(const struct snap_section *s, char *msg, size_t msglen)
{
	struct snap_cur c;
	snap_cur_init(&c, s->data, s->len);
	uint32_t code = snap_cur_u32(&c);
	uint16_t n = snap_cur_u16(&c);
	const char *t = snap_cur_take(&c, n);
	if (snap_cur_end(&c) || n > MIG_MSG_MAX) {
		snprintf(msg, msglen, "(malformed %s message)", s->name);
		return -EPROTO;
	}
	/* The peer's text is printed on our terminal: printable ASCII only. */
	size_t k = 0;
	for (size_t i = 0; i < n && k + 1 < msglen; i++)
		msg[k++] = t[i] >= 0x20 && t[i] < 0x7f ? t[i] : '?';
	if (msglen)
		msg[k] = 0;
	return code >= 1 && code < 4096 ? -(int)code : -EPROTO;
}

/* A control section (ready, sync, synced, done, go), after a stream header
 * if header. */
static int conn_send_ctl(struct mig_conn *c, bool header, const char *name, uint32_t value,
			 char *err, size_t errlen)
{
	struct snap_buf b;
	snap_buf_init(&b);
	if (header)
		snap_put_header(&b);
	size_t tok = snap_section_begin(&b, name, 0, 1);
	snap_buf_put_u32(&b, value);
	snap_section_end(&b, tok);
	int rc = b.err ? b.err : conn_write(c, b.p, b.len, err, errlen);
	snap_buf_free(&b);
	return rc;
}

/* ---- source --------------------------------------------------------------- */

struct mig_send {
	struct mig_conn c;
	struct guest_mem *mem;
	const struct migrate_source_ops *ops;
	void *opaque;
	struct migrate_params p;
	struct migrate_progress *prog;
	struct snap_buf out;        /* the mig-pages section being filled */
	size_t token;               /* its snap_section_begin token */
	unsigned batch;             /* pages in it */
	uint64_t batch_t0;
	uint64_t *bm;               /* pages still to send this round */
	uint64_t left_pages;        /* of this round, not yet looked at */
	uint64_t send_ns;           /* this round: time spent filling and writing batches */
	uint64_t round_bytes;       /* this round: bytes written */
	uint64_t rtt_ns;            /* shortest sync round trip: the link's latency */
	uint64_t pages, zero_pages;
	uint64_t deadline;          /* pre-copy timeout; 0 once paused */
	uint64_t t0, pace_t0, pace_bytes;
	bool remote_failed;         /* the destination reported an error */
	char *err;
	size_t errlen;
};

static void send_timeout_msg(struct mig_send *s)
{
	struct migrate_status st;
	migrate_progress_read(s->prog, &st);
	snprintf(s->err, s->errlen,
		 "pre-copy did not converge within %u ms (round %u, %llu KiB still dirty, guest dirtying "
		 "%.1f MB/s, link %.1f MB/s, throttle %u%%)%s", s->p.timeout_ms, st.round,
		 (unsigned long long)(st.bytes_remaining >> 10), st.dirty_rate / 1e6,
		 st.bandwidth / 1e6, st.throttle_pct,
		 s->p.auto_converge ? "" : "; try auto-converge or a larger downtime");
}

/* sec is the destination's mig-error or mig-refuse: its errno, its words. */
static int send_remote_failed(struct mig_send *s, const struct snap_section *sec,
			      const char *prefix)
{
	char msg[MIG_MSG_MAX + 1];
	int rc = parse_msg(sec, msg, sizeof(msg));
	s->remote_failed = true;
	snprintf(s->err, s->errlen, "%s: %s", prefix, msg);
	return rc;
}

static bool is_failure(const struct snap_section *sec)
{
	return !strcmp(sec->name, "mig-error") || !strcmp(sec->name, "mig-refuse");
}

/* Wait for the destination's next control section, which must be want
 * (its u32 in *value): 0, or -errno with err saying what we were waiting
 * for, or the destination's own reason after remote. */
static int send_expect(struct mig_send *s, const char *want, uint32_t *value,
		       const char *waiting, const char *remote)
{
	struct snap_section sec;
	char msg[MIG_MSG_MAX + 1];
	int rc = conn_read(&s->c, &sec, s->err, s->errlen);
	if (rc) {
		snprintf(msg, sizeof(msg), "%s", s->err);
		snprintf(s->err, s->errlen, "%s: %s", waiting, msg);
		return rc;
	}
	if (is_failure(&sec))
		return send_remote_failed(s, &sec, remote);
	if (strcmp(sec.name, want) || sec.len != 4) {
		snprintf(s->err, s->errlen, "unexpected %s from the destination (expected %s)",
			 sec.name, want);
		return -EPROTO;
	}
	*value = (uint32_t)le_get(sec.data, 4);
	return 0;
}

/* Handle whatever the destination sent meanwhile (only "mig-error" may
 * come unasked). Does not block. */
static int send_check_replies(struct mig_send *s)
{
	struct snap_section sec;
	char msg[MIG_MSG_MAX + 1];
	int rc;

	while ((rc = conn_recv(&s->c)) == 1)
		;
	if (rc < 0 && rc != -EAGAIN && rc != -EMSGSIZE && rc != -ECONNRESET) {
		conn_io_error(rc, &s->c, s->err, s->errlen);
		return rc;
	}
	long n = snap_section_parse(s->c.rx + s->c.rx_off, s->c.rx_len - s->c.rx_off, &sec,
				    msg, sizeof(msg));
	if (n < 0) {
		snprintf(s->err, s->errlen, "corrupt reply from the destination: %s", msg);
		return -EPROTO;
	}
	if (n > 0) {
		s->c.rx_off += (size_t)n;
		if (is_failure(&sec))
			return send_remote_failed(s, &sec, "destination");
		snprintf(s->err, s->errlen, "unexpected %s from the destination", sec.name);
		return -EPROTO;
	}
	if (rc == -EMSGSIZE) {
		snprintf(s->err, s->errlen, "the destination sent more than it may");
		return -EPROTO;
	}
	if (s->c.eof || rc == -ECONNRESET) {
		snprintf(s->err, s->errlen, "destination closed the connection");
		return -ECONNRESET;
	}
	return 0;
}

/* An I/O error while writing: the destination's own reason if it sent one. */
static int send_write_failed(struct mig_send *s, int rc)
{
	int r = send_check_replies(s);
	return r && s->remote_failed ? r : rc;
}

static int send_flush(struct mig_send *s, unsigned round)
{
	int rc;

	if (!s->batch)
		return 0;
	if (s->out.err) {
		snprintf(s->err, s->errlen, "out of memory building round %u", round);
		return s->out.err;
	}
	le_patch32(s->out.p + s->token + SNAP_SECTION_HDR + 4, s->batch);
	snap_section_end(&s->out, s->token);
	rc = conn_write(&s->c, s->out.p, s->out.len, s->err, s->errlen);
	if (rc)
		return send_write_failed(s, rc);
	/* The link limit: after this batch, wait until the round so far has
	 * taken as long as its bytes may take. */
	if (s->p.max_bandwidth) {
		if (!s->pace_t0)
			s->pace_t0 = s->batch_t0;
		s->pace_bytes += s->out.len;
		uint64_t due = s->pace_t0 + (uint64_t)((double)s->pace_bytes * NS_PER_S / s->p.max_bandwidth);
		uint64_t t = now_ns();
		if (due > t) {
			struct timespec ts = { (time_t)((due - t) / NS_PER_S), (long)((due - t) % NS_PER_S) };
			nanosleep(&ts, NULL);
		}
	}
	s->send_ns += now_ns() - s->batch_t0;
	s->round_bytes += s->out.len;
	s->pages += s->batch;
	s->out.len = 0;
	s->batch = 0;
	PROG(s->prog, s->prog->st.bytes_transferred = s->c.tx_total;
	     s->prog->st.pages_transferred = s->pages; s->prog->st.zero_pages = s->zero_pages;
	     s->prog->st.bytes_remaining = s->left_pages * GMEM_PAGE_SIZE);
	rc = send_check_replies(s);
	if (rc)
		return rc;
	if (s->deadline && now_ns() >= s->deadline) {
		send_timeout_msg(s);
		return -ETIMEDOUT;
	}
	return 0;
}

static int send_page(struct mig_send *s, unsigned round, uint64_t idx, bool skip_zero)
{
	const uint8_t *pg = s->mem->host + (idx << GMEM_PAGE_SHIFT);
	bool zero = page_is_zero(pg);

	if (zero && skip_zero)
		return 0;
	if (!s->batch) {
		s->batch_t0 = now_ns();
		s->token = snap_section_begin(&s->out, "mig-pages", 0, 1);
		snap_buf_put_u32(&s->out, round);
		snap_buf_put_u32(&s->out, 0);   /* count, patched in send_flush */
	}
	snap_buf_put_u64(&s->out, idx | (zero ? MIG_ZERO : 0));
	if (zero)
		s->zero_pages++;
	else
		snap_buf_put(&s->out, pg, GMEM_PAGE_SIZE);
	return ++s->batch == MIG_BATCH ? send_flush(s, round) : 0;
}

static uint64_t bitmap_count(const uint64_t *bm, size_t words)
{
	uint64_t n = 0;
	for (size_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(bm[i]);
	return n;
}

/* Send (and clear) every page set in s->bm. Round 0 skips zero pages: the
 * destination's fresh memory already reads as zero. */
static int send_round(struct mig_send *s, unsigned round)
{
	uint64_t npages = gmem_pages(s->mem);
	size_t words = gmem_bitmap_words(s->mem);
	int rc;

	s->left_pages = bitmap_count(s->bm, words);
	s->pace_t0 = 0;   /* the link limit holds within a round: no catch-up burst */
	s->pace_bytes = 0;
	for (size_t i = 0; i < words; i++) {
		uint64_t w = s->bm[i];
		s->bm[i] = 0;
		while (w) {
			uint64_t idx = i * 64 + (unsigned)__builtin_ctzll(w);
			w &= w - 1;
			if (idx >= npages)
				break;
			s->left_pages--;
			rc = send_page(s, round, idx, round == 0);
			if (rc)
				return rc;
		}
	}
	return send_flush(s, round);
}

/* Header + mig-hello, then the destination's verdict. */
static int send_hello(struct mig_send *s, const void *hello, size_t hello_len)
{
	struct snap_buf b;
	size_t vlen = strlen(WAFER_VERSION);
	uint32_t v;
	int rc;

	snap_buf_init(&b);
	snap_put_header(&b);
	size_t tok = snap_section_begin(&b, "mig-hello", 0, 1);
	snap_buf_put_u32(&b, MIGRATE_PROTO_VERSION);
	snap_buf_put_u32(&b, (uint32_t)GMEM_PAGE_SIZE);
	snap_buf_put_u64(&b, s->mem->size);
	snap_buf_put_u16(&b, (uint16_t)vlen);
	snap_buf_put(&b, WAFER_VERSION, vlen);
	snap_buf_put_u32(&b, (uint32_t)hello_len);
	snap_buf_put(&b, hello, hello_len);
	snap_section_end(&b, tok);
	if (b.err) {
		rc = b.err;
		snprintf(s->err, s->errlen, "hello of %zu bytes is too large", hello_len);
		goto out;
	}
	rc = conn_write(&s->c, b.p, b.len, s->err, s->errlen);
	if (rc)
		goto out;
	rc = conn_read_header(&s->c, s->err, s->errlen);
	if (rc) {
		char msg[MIG_MSG_MAX + 1];
		snprintf(msg, sizeof(msg), "%s", s->err);
		snprintf(s->err, s->errlen, "destination did not answer the hello: %s", msg);
		goto out;
	}
	rc = send_expect(s, "mig-ready", &v, "destination did not answer the hello",
			 "destination refused");
out:
	snap_buf_free(&b);
	return rc;
}

/* save_state's output must be whole sections with names of its own. */
static int send_check_state(const struct snap_buf *st, char *err, size_t errlen)
{
	struct snap_section sec;
	size_t off = 0;

	if (st->len > MIG_STATE_MAX) {
		snprintf(err, errlen, "device state of %zu bytes exceeds the %u-byte limit",
			 st->len, MIG_STATE_MAX);
		return -EFBIG;
	}
	while (off < st->len) {
		long n = snap_section_parse(st->p + off, st->len - off, &sec, err, errlen);
		if (n <= 0 || !strcmp(sec.name, "end") || !strncmp(sec.name, "mig-", 4)) {
			if (n >= 0)
				snprintf(err, errlen, "save_state produced a bad section at byte %zu", off);
			return -EINVAL;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Paused: last pages, device state, "end", then the destination's
 * "mig-done" and our "mig-go". */
static int send_switchover(struct mig_send *s, unsigned round)
{
	struct snap_buf st;
	uint32_t v;
	int rc;

	snap_buf_init(&st);
	rc = s->ops->dirty_harvest(s->opaque, s->bm);
	if (rc) {
		snprintf(s->err, s->errlen, "final dirty harvest: %s", strerror(-rc));
		goto out;
	}
	PROG(s->prog, s->prog->st.round = round);
	rc = send_round(s, round);
	if (rc)
		goto out;
	rc = s->ops->save_state(s->opaque, &st);
	if (!rc && st.err)
		rc = st.err;
	if (rc) {
		snprintf(s->err, s->errlen, "saving the device state: %s", strerror(-rc));
		goto out;
	}
	rc = send_check_state(&st, s->err, s->errlen);
	if (rc)
		goto out;
	snap_put_end(&st);
	rc = conn_write(&s->c, st.p, st.len, s->err, s->errlen);
	if (rc) {
		rc = send_write_failed(s, rc);
		goto out;
	}
	rc = send_expect(s, "mig-done", &v, "no confirmation from the destination", "destination");
	if (!rc)
		rc = conn_send_ctl(&s->c, false, "mig-go", round, s->err, s->errlen);
out:
	snap_buf_free(&st);
	return rc;
}

/* Close a round: mig-sync, and wait until the destination has taken in
 * everything before it. The wait counts as sending time. */
static int send_sync(struct mig_send *s, unsigned round)
{
	uint64_t t = now_ns();
	uint32_t v;
	int rc = conn_send_ctl(&s->c, false, "mig-sync", round, s->err, s->errlen);
	if (rc)
		return send_write_failed(s, rc);
	rc = send_expect(s, "mig-synced", &v, "destination stopped answering", "destination");
	if (rc)
		return rc;
	if (v != round) {
		snprintf(s->err, s->errlen, "destination synced round %u, expected %u", v, round);
		return -EPROTO;
	}
	uint64_t wait = now_ns() - t;
	s->send_ns += wait;
	if (!s->rtt_ns || wait < s->rtt_ns)
		s->rtt_ns = wait;
	return 0;
}

/* After a round: rates, expected downtime, progress. True to switch over. */
static bool send_assess(struct mig_send *s, unsigned round, uint64_t dirty_pages,
			uint64_t interval_ns, uint64_t *bw_bytes, uint64_t *bw_ns)
{
	uint64_t dirty = dirty_pages * GMEM_PAGE_SIZE;
	/* A decaying, bytes-weighted average over rounds. */
	*bw_bytes = *bw_bytes / 2 + s->round_bytes;
	*bw_ns = *bw_ns / 2 + s->send_ns;
	s->round_bytes = 0;
	s->send_ns = 0;
	double bw = *bw_ns ? (double)*bw_bytes * NS_PER_S / *bw_ns : 0;
	double rate = interval_ns ? (double)dirty * NS_PER_S / interval_ns : 0;
	uint64_t expected = bw > 0 ? (uint64_t)(dirty * (double)NS_PER_S / bw) + s->rtt_ns : UINT64_MAX;

	PROG(s->prog, s->prog->st.round = round; s->prog->st.bytes_remaining = dirty;
	     s->prog->st.bandwidth = (uint64_t)bw; s->prog->st.dirty_rate = (uint64_t)rate;
	     s->prog->st.expected_downtime_ns = expected);
	if (expected <= s->p.downtime_max_ns || !dirty_pages)
		return true;
	/* The guest dirties more than half of what the link carries: rounds
	 * shrink too slowly or grow; slow the vCPUs down in steps. */
	if (s->p.auto_converge && s->ops->throttle && rate > bw / 2) {
		unsigned t;
		pthread_mutex_lock(&s->prog->lock);
		t = s->prog->st.throttle_pct;
		t = !t ? MIG_THROTTLE_FIRST : t + MIG_THROTTLE_STEP > MIG_THROTTLE_MAX ?
			MIG_THROTTLE_MAX : t + MIG_THROTTLE_STEP;
		s->prog->st.throttle_pct = t;
		pthread_mutex_unlock(&s->prog->lock);
		s->ops->throttle(s->opaque, t);
	}
	return false;
}

static void send_report(struct mig_send *s)
{
	struct migrate_status st;
	if (!s->ops->on_round)
		return;
	migrate_progress_read(s->prog, &st);
	s->ops->on_round(s->opaque, &st);
}

int migrate_send(int fd, struct guest_mem *mem, const void *hello, size_t hello_len,
		 const struct migrate_source_ops *ops, void *opaque,
		 const struct migrate_params *p, struct migrate_progress *prog,
		 char *err, size_t errlen)
{
	struct migrate_progress local;
	struct mig_send s = { .mem = mem, .ops = ops, .opaque = opaque, .err = err,
			      .errlen = errlen, .t0 = now_ns() };
	bool tracking = false, paused = false;
	uint64_t t_pause = 0, bw_bytes = 0, bw_ns = 0;
	unsigned round = 0;
	int rc;

	if (p)
		s.p = *p;
	if (!s.p.downtime_max_ns)
		s.p.downtime_max_ns = MIGRATE_DOWNTIME_DEFAULT_NS;
	if (!s.p.timeout_ms)
		s.p.timeout_ms = MIGRATE_TIMEOUT_DEFAULT_MS;
	if (!prog) {
		migrate_progress_init(&local);
		prog = &local;
	}
	s.prog = prog;
	snap_buf_init(&s.out);
	PROG(prog, memset(&prog->st, 0, sizeof(prog->st)); prog->st.state = MIGRATE_SETUP);

	rc = conn_init(&s.c, fd, s.p.io_timeout_ms, 2 * (SNAP_SECTION_HDR + MIG_REPLY_MAX),
		       2 * (SNAP_SECTION_HDR + MIG_REPLY_MAX), &prog->cancel);
	s.c.watch_rx = true;
	if (!mem || !mem->host || !mem->size || mem->size % GMEM_PAGE_SIZE) {
		rc = -EINVAL;
		snprintf(err, errlen, "guest memory of %llu bytes is not a whole number of pages",
			 mem ? (unsigned long long)mem->size : 0ull);
		goto out;
	}
	s.bm = calloc(gmem_bitmap_words(mem), sizeof(*s.bm));
	if (rc || !s.bm) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = send_hello(&s, hello, hello_len);
	if (!rc)
		rc = send_sync(&s, 0);   /* the round trip with nothing in flight */
	if (rc)
		goto out;
	s.send_ns = 0;

	rc = ops->dirty_start(opaque);
	if (rc) {
		snprintf(err, errlen, "cannot start dirty logging: %s", strerror(-rc));
		goto out;
	}
	tracking = true;
	s.deadline = s.t0 + (uint64_t)s.p.timeout_ms * NS_PER_MS;
	for (uint64_t i = 0, n = gmem_pages(mem); i < n; i += 64)   /* round 0: every page */
		s.bm[i / 64] = n - i >= 64 ? ~0ull : (1ull << (n - i)) - 1;
	PROG(prog, prog->st.state = MIGRATE_ACTIVE);
	uint64_t harvested = now_ns();
	for (;; round++) {
		PROG(prog, prog->st.round = round);
		rc = send_round(&s, round);
		if (!rc)
			rc = send_sync(&s, round);
		if (rc)
			goto out;
		rc = ops->dirty_harvest(opaque, s.bm);
		if (rc) {
			snprintf(err, errlen, "dirty harvest: %s", strerror(-rc));
			goto out;
		}
		uint64_t t = now_ns();
		bool done = send_assess(&s, round, bitmap_count(s.bm, gmem_bitmap_words(mem)),
					t - harvested, &bw_bytes, &bw_ns);
		harvested = t;
		send_report(&s);
		if (done)
			break;
		if (t >= s.deadline) {
			send_timeout_msg(&s);
			rc = -ETIMEDOUT;
			goto out;
		}
	}

	PROG(prog, prog->st.state = MIGRATE_SWITCHOVER);
	rc = ops->pause(opaque);
	paused = true;   /* even a failed pause may have stopped some vCPUs */
	if (rc) {
		snprintf(err, errlen, "cannot pause the source: %s", strerror(-rc));
		goto out;
	}
	t_pause = now_ns();
	s.deadline = 0;
	rc = send_switchover(&s, round + 1);
	if (rc)
		goto out;
	PROG(prog, prog->st.downtime_ns = now_ns() - t_pause);
out:
	if (tracking)
		ops->dirty_stop(opaque);
	if (prog->st.throttle_pct)
		ops->throttle(opaque, 0);
	if (rc && paused) {
		int r = ops->resume(opaque);
		if (r) {
			size_t l = strlen(err);
			snprintf(err + l, errlen - l, "; resuming the source failed too: %s",
				 strerror(-r));
		}
	}
	/* Tell the destination why, unless it told us or the stream is torn. */
	if (rc && s.c.rx && !s.remote_failed && !s.c.tx_torn && rc != -ECONNRESET &&
	    rc != -EPIPE) {
		struct snap_buf b;
		char ignore[64];
		snap_buf_init(&b);
		put_msg(&b, "mig-abort", rc, err);
		s.c.io_timeout_ns = 500 * NS_PER_MS;
		s.c.cancel = NULL;
		if (!b.err)
			conn_write(&s.c, b.p, b.len, ignore, sizeof(ignore));
		snap_buf_free(&b);
	}
	PROG(prog, prog->st.state = rc ? MIGRATE_FAILED : MIGRATE_COMPLETED;
	     prog->st.total_ns = now_ns() - s.t0; prog->st.throttle_pct = 0;
	     if (rc) snprintf(prog->st.error, sizeof(prog->st.error), "%s", err);
	     if (!rc) prog->st.bytes_remaining = 0);
	send_report(&s);
	free(s.bm);
	free(s.c.rx);
	snap_buf_free(&s.out);
	if (prog == &local)
		migrate_progress_destroy(&local);
	return rc;
}

/* ---- destination ------------------------------------------------------------ */

struct mig_recv {
	struct mig_conn c;
	const struct migrate_dest_ops *ops;
	void *opaque;
	struct migrate_progress *prog;
	struct guest_mem *mem;
	uint64_t pages, zero_pages;
	bool quiet;                 /* the source aborted or is gone: no reply */
	char *err;
	size_t errlen;
};

static int recv_pages(struct mig_recv *r, const struct snap_section *s)
{
	struct snap_cur c;
	uint64_t npages = gmem_pages(r->mem);

	if (s->len > MIG_PAGES_MAX) {
		snprintf(r->err, r->errlen, "mig-pages section of %zu bytes (at most %u)", s->len,
			 MIG_PAGES_MAX);
		return -EINVAL;
	}
	snap_cur_init(&c, s->data, s->len);
	uint32_t round = snap_cur_u32(&c), count = snap_cur_u32(&c);
	if (count > MIG_BATCH) {
		snprintf(r->err, r->errlen, "mig-pages with %u pages (at most %u)", count, MIG_BATCH);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < count && !c.err; i++) {
		uint64_t rec = snap_cur_u64(&c), idx = rec & ~MIG_ZERO;
		if (c.err)
			break;
		if (idx >= npages) {
			snprintf(r->err, r->errlen,
				 "page %llu out of range (guest memory has %llu pages)",
				 (unsigned long long)idx, (unsigned long long)npages);
			return -EINVAL;
		}
		uint8_t *dst = r->mem->host + (idx << GMEM_PAGE_SHIFT);
		if (rec & MIG_ZERO) {
			if (!page_is_zero(dst))
				memset(dst, 0, GMEM_PAGE_SIZE);
			r->zero_pages++;
		} else {
			const void *src = snap_cur_take(&c, GMEM_PAGE_SIZE);
			if (src)
				memcpy(dst, src, GMEM_PAGE_SIZE);
		}
		r->pages++;
	}
	if (snap_cur_end(&c)) {
		snprintf(r->err, r->errlen, "malformed mig-pages section in round %u", round);
		return -EINVAL;
	}
	PROG(r->prog, r->prog->st.round = round; r->prog->st.bytes_transferred = r->c.rx_total;
	     r->prog->st.pages_transferred = r->pages; r->prog->st.zero_pages = r->zero_pages);
	return 0;
}

/* mig-hello: check what the engine itself needs, then ask prepare(). */
static int recv_hello(struct mig_recv *r, const struct snap_section *s)
{
	struct snap_cur c;
	char ver[64], why[MIG_MSG_MAX];
	int rc;

	if (strcmp(s->name, "mig-hello")) {
		snprintf(r->err, r->errlen, "expected mig-hello, got %s", s->name);
		return -EPROTO;
	}
	snap_cur_init(&c, s->data, s->len);
	uint32_t proto = snap_cur_u32(&c), psize = snap_cur_u32(&c);
	uint64_t size = snap_cur_u64(&c);
	uint16_t vlen = snap_cur_u16(&c);
	const char *v = snap_cur_take(&c, vlen);
	uint32_t hlen = snap_cur_u32(&c);
	const void *hello = snap_cur_take(&c, hlen);
	if (snap_cur_end(&c)) {
		snprintf(r->err, r->errlen, "malformed mig-hello");
		return -EPROTO;
	}
	snprintf(ver, sizeof(ver), "%.*s", vlen < sizeof(ver) ? (int)vlen : (int)sizeof(ver) - 1, v);
	for (char *q = ver; *q; q++)
		if (*q < 0x20 || *q >= 0x7f)
			*q = '?';
	if (proto != MIGRATE_PROTO_VERSION) {
		snprintf(r->err, r->errlen, "source wafer %s speaks migration protocol %u; "
			 "this wafer %s speaks %u", ver, proto, WAFER_VERSION, MIGRATE_PROTO_VERSION);
		return -EPROTO;
	}
	if (psize != GMEM_PAGE_SIZE || !size || size % GMEM_PAGE_SIZE) {
		snprintf(r->err, r->errlen, "page size %u / memory size %llu not supported", psize,
			 (unsigned long long)size);
		return -EINVAL;
	}
	why[0] = 0;
	rc = r->ops->prepare(r->opaque, hello, hlen, size, &r->mem, why, sizeof(why));
	if (rc) {
		snprintf(r->err, r->errlen, "%s", why[0] ? why : strerror(-rc));
		return rc;
	}
	if (!r->mem || !r->mem->host || r->mem->size != size) {
		snprintf(r->err, r->errlen, "destination memory is %llu bytes, the source has %llu",
			 r->mem ? (unsigned long long)r->mem->size : 0ull, (unsigned long long)size);
		return -EINVAL;
	}
	return 0;
}

/* Pages, state sections and "end"; the state is collected into st. */
static int recv_stream(struct mig_recv *r, struct snap_buf *st)
{
	struct snap_section s;
	char msg[MIG_MSG_MAX + 1];
	int rc;

	for (;;) {
		rc = conn_read(&r->c, &s, r->err, r->errlen);
		if (rc) {
			r->quiet = rc == -ECONNRESET || rc == -ETIMEDOUT || rc == -EPIPE;
			if (rc == -ECONNRESET)
				snprintf(r->err, r->errlen, "source closed the connection mid-stream");
			return rc;
		}
		if (!strcmp(s.name, "mig-pages")) {
			rc = recv_pages(r, &s);
			if (rc)
				return rc;
		} else if (!strcmp(s.name, "mig-abort")) {
			rc = parse_msg(&s, msg, sizeof(msg));
			snprintf(r->err, r->errlen, "source aborted: %s", msg);
			r->quiet = true;
			return rc == -EPROTO ? -ECANCELED : rc;
		} else if (!strcmp(s.name, "mig-sync") && s.len == 4) {
			rc = conn_send_ctl(&r->c, false, "mig-synced", (uint32_t)le_get(s.data, 4),
					   r->err, r->errlen);
			if (rc) {
				r->quiet = true;
				return rc;
			}
		} else if (!strcmp(s.name, "end")) {
			return 0;
		} else if (!strncmp(s.name, "mig-", 4)) {
			snprintf(r->err, r->errlen, "unexpected %s in the stream", s.name);
			return -EPROTO;
		} else {
			if (st->len + SNAP_SECTION_HDR + s.len > MIG_STATE_MAX + SNAP_HEADER_SIZE) {
				snprintf(r->err, r->errlen, "device state exceeds %u bytes", MIG_STATE_MAX);
				return -EFBIG;
			}
			snap_buf_put(st, s.data - SNAP_SECTION_HDR, SNAP_SECTION_HDR + s.len);
			if (st->err) {
				snprintf(r->err, r->errlen, "out of memory for the device state");
				return st->err;
			}
		}
	}
}

/* After a failure: send our reason, then read until the source hangs up
 * (bounded), so closing does not reset the connection before it arrives. */
static void recv_reply_error(struct mig_recv *r, bool header, const char *name, int rc)
{
	struct snap_buf b;
	char ignore[64];
	uint8_t sink[65536];

	snap_buf_init(&b);
	if (header)
		snap_put_header(&b);
	put_msg(&b, name, rc, r->err);
	r->c.cancel = NULL;
	if (!b.err && !conn_write(&r->c, b.p, b.len, ignore, sizeof(ignore))) {
		shutdown(r->c.fd, SHUT_WR);
		uint64_t deadline = now_ns() + MIG_DRAIN_MS * NS_PER_MS;
		while (conn_poll(&r->c, POLLIN, &deadline, false) > 0 &&
		       recv(r->c.fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
	}
	snap_buf_free(&b);
}

int migrate_receive(int fd, const struct migrate_dest_ops *ops, void *opaque,
		    const struct migrate_params *p, struct migrate_progress *prog,
		    char *err, size_t errlen)
{
	struct migrate_progress local;
	struct mig_recv r = { .ops = ops, .opaque = opaque, .err = err, .errlen = errlen };
	struct snap_buf st;
	struct snap_section s;
	struct snap_reader rd;
	bool ready = false, reply = true;
	uint64_t t0 = now_ns();
	int rc;

	if (!prog) {
		migrate_progress_init(&local);
		prog = &local;
	}
	r.prog = prog;
	snap_buf_init(&st);
	PROG(prog, memset(&prog->st, 0, sizeof(prog->st)); prog->st.state = MIGRATE_SETUP);
	rc = conn_init(&r.c, fd, p ? p->io_timeout_ms : 0, MIG_RX_CAP,
		       SNAP_SECTION_HDR + SNAP_SECTION_MAX, &prog->cancel);
	if (rc) {
		snprintf(err, errlen, "out of memory");
		reply = false;
		goto out;
	}
	rc = conn_read_header(&r.c, err, errlen);
	if (!rc)
		rc = conn_read(&r.c, &s, err, errlen);
	if (rc) {
		reply = rc == -EPROTO || rc == -EINVAL || rc == -EMSGSIZE;
		goto out;
	}
	rc = recv_hello(&r, &s);
	if (rc)
		goto out;
	rc = conn_send_ctl(&r.c, true, "mig-ready", 0, err, errlen);
	if (rc) {
		reply = false;
		goto out;
	}
	ready = true;
	PROG(prog, prog->st.state = MIGRATE_ACTIVE);

	snap_put_header(&st);
	rc = recv_stream(&r, &st);
	if (rc) {
		reply = !r.quiet;
		goto out;
	}
	PROG(prog, prog->st.state = MIGRATE_SWITCHOVER);
	snap_put_end(&st);
	char why[MIG_MSG_MAX];
	snprintf(why, sizeof(why), "out of memory");
	rc = st.err ? st.err : snap_reader_open(&rd, st.p, st.len, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "device state: %s", why);
		goto out;
	}
	why[0] = 0;
	rc = ops->load_state(opaque, &rd, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "loading the device state: %s", why[0] ? why : strerror(-rc));
		goto out;
	}
	reply = false;
	rc = conn_send_ctl(&r.c, false, "mig-done", 0, err, errlen);
	if (rc)
		goto out;
	rc = conn_read(&r.c, &s, err, errlen);
	if (!rc && strcmp(s.name, "mig-go"))
		rc = -EPROTO;
	if (rc) {
		rc = -ENOTCONN;
		snprintf(err, errlen, "state loaded, but the source never handed over: keep the VM "
			 "paused (the source may still be running)");
	}
out:
	if (rc && reply)
		recv_reply_error(&r, !ready, ready ? "mig-error" : "mig-refuse", rc);
	PROG(prog, prog->st.state = rc ? MIGRATE_FAILED : MIGRATE_COMPLETED;
	     prog->st.bytes_transferred = r.c.rx_total; prog->st.total_ns = now_ns() - t0;
	     if (rc) snprintf(prog->st.error, sizeof(prog->st.error), "%s", err));
	free(r.c.rx);
	snap_buf_free(&st);
	if (prog == &local)
		migrate_progress_destroy(&local);
	return rc;
}
