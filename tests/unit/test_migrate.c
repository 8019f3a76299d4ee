/* The live-migration engine end to end over socketpairs: real guest memory
 * (gmem_alloc), a simulated guest thread that dirties it (and obeys the
 * throttle by sleeping), the real sender and receiver in two threads; plus
 * relays that cut or corrupt the stream, hand-made hostile streams, silent
 * peers, refusals and URL handling. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "state/migrate.h"
#include "sim_guest.h"

#define MIB (1ull << 20)
#define PAGE GMEM_PAGE_SIZE
#define HELLO "wafer-test hello cpu-template=baseline"

/* ---- the simulated source VM ------------------------------------------------ */

/* The guest (first member: the sim_ callbacks take the same pointer). */
struct src_vm {
	struct sim_guest g;
	int n_save, rounds, save_rc;
	unsigned last_round;
};

static void src_init(struct src_vm *vm, uint64_t size, uint64_t rate, uint64_t span)
{
	memset(vm, 0, sizeof(*vm));
	assert_int_equal(sim_guest_init(&vm->g, size, rate, span), 0);
}

/* Two device sections: "cpu" carries the guest's write count at pause. */
static int src_save_state(void *o, struct snap_buf *b)
{
	struct src_vm *vm = o;
	vm->n_save++;
	if (vm->save_rc)
		return vm->save_rc;
	size_t t = snap_section_begin(b, "cpu", 0, 3);
	snap_buf_put_u64(b, atomic_load(&vm->g.writes));
	snap_buf_put_u64(b, 0x1122334455667788ull);
	snap_section_end(b, t);
	t = snap_section_begin(b, "serial", 1, 1);
	snap_buf_put(b, "uart-state", 10);
	snap_section_end(b, t);
	return 0;
}

static void src_on_round(void *o, const struct migrate_status *st)
{
	struct src_vm *vm = o;
	vm->rounds++;
	vm->last_round = st->round;
	if (getenv("MIGRATE_TEST_VERBOSE"))
		fprintf(stderr, "  %-10s round %u sent %llu KiB left %llu KiB dirty %.1f MB/s "
			"link %.1f MB/s expect %.2f ms throttle %u%%\n", migrate_state_name(st->state),
			st->round, (unsigned long long)st->bytes_transferred >> 10,
			(unsigned long long)st->bytes_remaining >> 10, st->dirty_rate / 1e6,
			st->bandwidth / 1e6, st->expected_downtime_ns / 1e6, st->throttle_pct);
}

static const struct migrate_source_ops src_ops = {
	.dirty_start = sim_dirty_start, .dirty_stop = sim_dirty_stop,
	.dirty_harvest = sim_dirty_harvest, .pause = sim_pause, .resume = sim_resume,
	.save_state = src_save_state, .throttle = sim_throttle, .on_round = src_on_round,
};

/* ---- the destination VM ------------------------------------------------------ */

struct dst_vm {
	struct guest_mem mem;
	bool have_mem;
	const char *refuse;     /* prepare() refuses with this */
	const char *load_fail;  /* load_state() fails with this */
	uint64_t cpu_writes;    /* from the "cpu" section */
	bool got_serial;
};

static int dst_prepare(void *o, const void *hello, size_t len, uint64_t size,
		       struct guest_mem **mem, char *err, size_t errlen)
{
	struct dst_vm *d = o;
	if (d->refuse) {
		snprintf(err, errlen, "%s", d->refuse);
		return -EPROTO;
	}
	if (len != strlen(HELLO) || memcmp(hello, HELLO, len)) {
		snprintf(err, errlen, "unexpected hello");
		return -EINVAL;
	}
	int rc = gmem_alloc(&d->mem, size);
	if (rc)
		return rc;
	d->have_mem = true;
	*mem = &d->mem;
	return 0;
}

static int dst_load_state(void *o, const struct snap_reader *r, char *err, size_t errlen)
{
	struct dst_vm *d = o;
	struct snap_section s;
	struct snap_cur c;

	if (d->load_fail) {
		snprintf(err, errlen, "%s", d->load_fail);
		return -EINVAL;
	}
	if (snap_reader_find(r, "cpu", 0, &s) || s.version != 3)
		return -ENOENT;
	snap_cur_init(&c, s.data, s.len);
	d->cpu_writes = snap_cur_u64(&c);
	if (snap_cur_u64(&c) != 0x1122334455667788ull || snap_cur_end(&c))
		return -EINVAL;
	d->got_serial = !snap_reader_find(r, "serial", 1, &s) && s.len == 10 &&
			!memcmp(s.data, "uart-state", 10);
	return 0;
}

static const struct migrate_dest_ops dst_ops = { .prepare = dst_prepare,
						 .load_state = dst_load_state };

static void dst_fini(struct dst_vm *d)
{
	if (d->have_mem)
		gmem_free(&d->mem);
}

/* ---- running both sides -------------------------------------------------------- */

struct sender {
	pthread_t thread;
	int fd;
	struct src_vm *vm;
	struct migrate_params p;
	struct migrate_progress prog;
	struct migrate_status st;   /* at the end */
	int rc;
	char err[512];
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	s->rc = migrate_send(s->fd, &s->vm->g.mem, HELLO, strlen(HELLO), &src_ops, s->vm, &s->p,
			     &s->prog, s->err, sizeof(s->err));
	close(s->fd);
	return NULL;
}

static void sender_start(struct sender *s, int fd, struct src_vm *vm, const struct migrate_params *p)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->vm = vm;
	if (p)
		s->p = *p;
	migrate_progress_init(&s->prog);
	assert_int_equal(pthread_create(&s->thread, NULL, sender_main, s), 0);
}

static void sender_join(struct sender *s)
{
	pthread_join(s->thread, NULL);
	migrate_progress_read(&s->prog, &s->st);
	if (getenv("MIGRATE_TEST_VERBOSE"))
		fprintf(stderr, "  sender: %d %s (downtime %.3f ms, total %.1f ms)\n", s->rc, s->err,
			s->st.downtime_ns / 1e6, s->st.total_ns / 1e6);
	migrate_progress_destroy(&s->prog);
}

struct receiver {
	int rc;
	char err[512];
	struct migrate_status st;
};

static void receive(int fd, struct dst_vm *d, unsigned io_ms, struct receiver *r)
{
	struct migrate_params p = { .io_timeout_ms = io_ms };
	struct migrate_progress prog;
	migrate_progress_init(&prog);
	r->rc = migrate_receive(fd, &dst_ops, d, &p, &prog, r->err, sizeof(r->err));
	migrate_progress_read(&prog, &r->st);
	migrate_progress_destroy(&prog);
	if (getenv("MIGRATE_TEST_VERBOSE"))
		fprintf(stderr, "  receiver: %d %s\n", r->rc, r->err);
	close(fd);
}

/* Relay between sender (a) and receiver (b): flips the byte at forward
 * offset flip_at, or closes everything after cut_at forward bytes. */
struct relay {
	pthread_t thread;
	int a, b;
	uint64_t flip_at, cut_at;   /* 0 = off */
};

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	static _Thread_local uint8_t buf[1 << 16];
	uint64_t fwd = 0;
	bool a_open = true, b_open = true;

	while (a_open || b_open) {
		struct pollfd pf[2] = { { r->a, a_open ? POLLIN : 0, 0 }, { r->b, b_open ? POLLIN : 0, 0 } };
		if (poll(pf, 2, 5000) <= 0)
			break;
		for (int i = 0; i < 2; i++) {
			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			int from = i ? r->b : r->a, to = i ? r->a : r->b;
			size_t want = sizeof(buf);
			if (!i && r->cut_at && r->cut_at - fwd < want)
				want = r->cut_at - fwd;
			ssize_t n = read(from, buf, want);
			if (n <= 0) {
				shutdown(to, SHUT_WR);
				*(i ? &b_open : &a_open) = false;
				continue;
			}
			if (!i && r->flip_at && r->flip_at >= fwd && r->flip_at < fwd + (uint64_t)n)
				buf[r->flip_at - fwd] ^= 0x20;
			if (!i)
				fwd += (uint64_t)n;
			for (ssize_t off = 0, w; off < n; off += w) {
				w = write(to, buf + off, (size_t)(n - off));
				if (w <= 0)
					goto out;
			}
			if (!i && r->cut_at && fwd >= r->cut_at)
				goto out;
		}
	}
out:
	close(r->a);
	close(r->b);
	return NULL;
}

/* Migrate vm into d (directly, or through a relay when r is given). */
static void migrate(struct src_vm *vm, struct dst_vm *d, const struct migrate_params *p,
		    struct relay *r, struct sender *s, struct receiver *rcv)
{
	int sp[2], rp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	if (r) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, rp), 0);
		r->a = sp[1];
		r->b = rp[0];
		assert_int_equal(pthread_create(&r->thread, NULL, relay_main, r), 0);
	} else {
		rp[1] = sp[1];
	}
	sender_start(s, sp[0], vm, p);
	receive(rp[1], d, p ? p->io_timeout_ms : 0, rcv);
	sender_join(s);
	if (r)
		pthread_join(r->thread, NULL);
}

/* After a failure the source runs on: tracking off, not throttled, not
 * left paused, and its guest still writes. */
static void assert_source_runs_on(struct src_vm *vm)
{
	assert_int_equal(vm->g.n_dirty_stop, vm->g.n_dirty_start);
	assert_false(atomic_load(&vm->g.mem.dirty_on));
	assert_int_equal(atomic_load(&vm->g.throttle), 0);
	assert_int_equal(vm->g.n_resume, vm->g.n_pause);
	assert_false(vm->g.paused);
	if (vm->g.rate) {
		unsigned long long w = atomic_load(&vm->g.writes);
		sim_sleep_ns(50000000);
		assert_true(atomic_load(&vm->g.writes) > w);
	}
}

/* After success: destination memory is the source's at pause, byte for
 * byte; the device sections arrived; the source stays paused. */
static void assert_migrated(struct src_vm *vm, struct dst_vm *d, struct sender *s,
			    struct receiver *r)
{
	assert_int_equal(s->rc, 0);
	assert_int_equal(r->rc, 0);
	assert_int_equal(vm->g.n_pause, 1);
	assert_int_equal(vm->g.n_resume, 0);
	assert_true(vm->g.paused);
	assert_int_equal(vm->g.n_dirty_stop, 1);
	assert_int_equal(atomic_load(&vm->g.throttle), 0);
	assert_int_equal(d->mem.size, vm->g.mem.size);
	assert_true(memcmp(d->mem.host, vm->g.mem.host, vm->g.mem.size) == 0);
	assert_int_equal(d->cpu_writes, atomic_load(&vm->g.writes));
	assert_true(d->got_serial);
	assert_int_equal(r->st.state, MIGRATE_COMPLETED);
	assert_int_equal(s->st.state, MIGRATE_COMPLETED);
	assert_int_equal(s->st.bytes_remaining, 0);
	assert_true(s->st.downtime_ns > 0 && s->st.downtime_ns < s->st.total_ns);
	assert_int_equal(s->st.error[0], 0);
	/* Every page record the source sent arrived. */
	assert_int_equal(r->st.pages_transferred, s->st.pages_transferred);
	assert_int_equal(r->st.zero_pages, s->st.zero_pages);
}

/* A migration of a size-byte guest dirtying rate pages/s that must
 * succeed; the caller checks the rest, then calls finish(). */
static void migrate_ok(struct src_vm *vm, struct dst_vm *d, uint64_t size, uint64_t rate,
		       const struct migrate_params *p, struct sender *s, struct receiver *r)
{
	memset(d, 0, sizeof(*d));
	src_init(vm, size, rate, 0);
	migrate(vm, d, p, NULL, s, r);
	assert_migrated(vm, d, s, r);
}

static void finish(struct src_vm *vm, struct dst_vm *d)
{
	sim_guest_fini(&vm->g);
	dst_fini(d);
}

/* ---- cases ------------------------------------------------------------------------ */

static void test_idle_converges(void **state)
{
	(void)state;
	struct src_vm vm;
	struct dst_vm d;
	struct sender s;
	struct receiver r;
	migrate_ok(&vm, &d, 64 * MIB, 0, NULL, &s, &r);
	/* Nothing was dirtied: round 0, then the (empty) final pass as round 1. */
	assert_int_equal(vm.last_round, 1);
	assert_int_equal(vm.rounds, 2);
	/* Zero pages were not sent: a third of the pages hold data. */
	assert_true(r.st.pages_transferred <= gmem_pages(&vm.g.mem) / 3 + 1);
	assert_true(r.st.pages_transferred >= gmem_pages(&vm.g.mem) / 3);
	finish(&vm, &d);
}

/* A guest dirtying ~80 MB/s over all of its 64 MiB while the link (a
 * socketpair) is much faster: converges in a few rounds without help. */
static void test_busy_converges(void **state)
{
	(void)state;
	struct src_vm vm;
	struct dst_vm d;
	struct sender s;
	struct receiver r;
	migrate_ok(&vm, &d, 64 * MIB, 20000, NULL, &s, &r);
	assert_true(atomic_load(&vm.g.writes) > 0);
	assert_int_equal(vm.g.max_throttle, 0);
	finish(&vm, &d);
}

/* 1029 pages: the last bitmap word is partly outside memory. */
static void test_odd_size(void **state)
{
	(void)state;
	struct src_vm vm;
	struct dst_vm d;
	struct sender s;
	struct receiver r;
	migrate_ok(&vm, &d, 4 * MIB + 5 * PAGE, 20000, NULL, &s, &r);
	finish(&vm, &d);
}

/* Guest dirties ~200 MB/s over 16 MiB, the link is held to 100 MB/s: only
 * auto-converge's throttle lets it finish. */
static void test_auto_converge(void **state)
{
	(void)state;
	struct src_vm vm;
	struct dst_vm d;
	struct sender s;
	struct receiver r;
	struct migrate_params p = { .auto_converge = true, .max_bandwidth = 100 * 1000 * 1000,
				    .timeout_ms = 30000 };
	migrate_ok(&vm, &d, 16 * MIB, 50000, &p, &s, &r);
	assert_true(vm.g.max_throttle >= 20);
	assert_true(vm.last_round >= 2);
	/* The link limit held (the sync waits only lower the average). */
	assert_true(s.st.bandwidth <= 110 * 1000 * 1000);
	finish(&vm, &d);
}

/* Failures between two real engines: each row is one cmocka test. Every
 * one ends within seconds, the source runs on (resumed iff it was paused),
 * and both sides say why. */
struct failure_case {
	const char *name;
	uint64_t mib, rate;         /* guest size, pages/s dirtied */
	struct migrate_params p;
	const char *refuse;         /* the destination's prepare() refuses */
	const char *load_fail;      /* its load_state() fails */
	int save_rc;                /* the source's save_state() fails */
	uint64_t flip_at, cut_at;   /* a relay corrupts / cuts the stream */
	int src_rc, dst_rc;         /* 0: any error */
	const char *src_err, *dst_err;
	int pauses;                 /* pause() calls (each resumed) */
	bool tracked;               /* dirty tracking was started */
};

static const struct failure_case failures[] = {
	/* A guest dirtying ~200 MB/s against a 100 MB/s link, no auto-converge. */
	{ .name = "fail_no_converge_times_out", .mib = 16, .rate = 50000,
	  .p = { .max_bandwidth = 100 * 1000 * 1000, .timeout_ms = 1000 },
	  .src_rc = -ETIMEDOUT, .dst_rc = -ETIMEDOUT, .tracked = true,
	  .src_err = "did not converge within 1000 ms (round",
	  .dst_err = "source aborted: pre-copy did not converge" },
	/* After the pause: the destination cannot load the state. */
	{ .name = "fail_load_state_resumes", .mib = 8, .rate = 5000,
	  .load_fail = "unknown device 'frob' in the state",
	  .src_rc = -EINVAL, .dst_rc = -EINVAL, .pauses = 1, .tracked = true,
	  .src_err = "destination: loading the device state: unknown device 'frob'",
	  .dst_err = "loading the device state: unknown device 'frob'" },
	/* After the pause: the source cannot save its state. */
	{ .name = "fail_save_state_resumes", .mib = 4, .save_rc = -EIO,
	  .src_rc = -EIO, .dst_rc = -EIO, .pauses = 1, .tracked = true,
	  .src_err = "saving the device state",
	  .dst_err = "source aborted: saving the device state" },
	/* prepare() refuses (CPU template): before any tracking or pause. */
	{ .name = "fail_refused_by_prepare", .mib = 4, .rate = 10000,
	  .refuse = "CPU template 'baseline' differs: source has avx512f, this host does not",
	  .src_rc = -EPROTO, .dst_rc = -EPROTO,
	  .src_err = "destination refused: CPU template 'baseline' differs",
	  .dst_err = "CPU template 'baseline' differs" },
	/* A byte flipped in transit: the destination's CRC check catches it. */
	{ .name = "fail_corrupt_stream", .mib = 32, .rate = 10000, .flip_at = 5 * MIB + 123,
	  .dst_rc = -EINVAL, .tracked = true,
	  .src_err = "destination: section mig-pages/0: checksum mismatch",
	  .dst_err = "checksum mismatch" },
	/* The link dies mid-stream. */
	{ .name = "fail_cut_mid_stream", .mib = 32, .rate = 10000, .cut_at = 3 * MIB + 17,
	  .dst_rc = -ECONNRESET, .tracked = true,
	  .src_err = "closed", .dst_err = "source closed the connection mid-stream" },
};

static void test_failure(void **state)
{
	const struct failure_case *f = *state;
	struct src_vm vm;
	struct dst_vm d = { .refuse = f->refuse, .load_fail = f->load_fail };
	struct relay rl = { .flip_at = f->flip_at, .cut_at = f->cut_at };
	struct sender s;
	struct receiver r;

	src_init(&vm, f->mib * MIB, f->rate, 0);
	vm.save_rc = f->save_rc;
	uint64_t t0 = sim_now_ns();
	migrate(&vm, &d, &f->p, f->flip_at || f->cut_at ? &rl : NULL, &s, &r);
	assert_true(sim_now_ns() - t0 < 5000000000ull);
	if (f->src_rc)
		assert_int_equal(s.rc, f->src_rc);
	assert_true(s.rc < 0);
	assert_non_null(strstr(s.err, f->src_err));
	assert_int_equal(s.st.state, MIGRATE_FAILED);
	assert_string_equal(s.st.error, s.err);
	if (f->dst_rc)
		assert_int_equal(r.rc, f->dst_rc);
	assert_true(r.rc < 0);
	assert_non_null(strstr(r.err, f->dst_err));
	assert_int_equal(vm.g.n_pause, f->pauses);
	assert_int_equal(vm.g.n_dirty_start, f->tracked);
	assert_source_runs_on(&vm);
	finish(&vm, &d);
}

/* ---- hand-made peers ----------------------------------------------------------------- */

static void raw_write(int fd, const struct snap_buf *b)
{
	for (size_t off = 0; off < b->len;) {
		ssize_t n = write(fd, b->p + off, b->len - off);
		assert_true(n > 0);
		off += (size_t)n;
	}
}

static void put_hello(struct snap_buf *b, uint32_t proto, uint64_t size)
{
	snap_put_header(b);
	size_t t = snap_section_begin(b, "mig-hello", 0, 1);
	snap_buf_put_u32(b, proto);
	snap_buf_put_u32(b, PAGE);
	snap_buf_put_u64(b, size);
	snap_buf_put_u16(b, 5);
	snap_buf_put(b, "9.9.9", 5);
	snap_buf_put_u32(b, (uint32_t)strlen(HELLO));
	snap_buf_put(b, HELLO, strlen(HELLO));
	snap_section_end(b, t);
}

/* Read the peer's replies until EOF (bounded) into buf; returns length. */
static size_t raw_read_all(int fd, uint8_t *buf, size_t cap)
{
	size_t len = 0;
	struct pollfd pf = { fd, POLLIN, 0 };
	while (len < cap && poll(&pf, 1, 3000) > 0) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	return len;
}

/* The reply stream's sections by name, and a message payload's text. */
static bool reply_has(const uint8_t *buf, size_t len, const char *name, const char *text)
{
	struct snap_section s;
	char e[128];
	size_t off = SNAP_HEADER_SIZE;
	if (len < SNAP_HEADER_SIZE || memcmp(buf, SNAP_MAGIC, 8))
		return false;
	while (off < len) {
		long n = snap_section_parse(buf + off, len - off, &s, e, sizeof(e));
		if (n <= 0)
			return false;
		off += (size_t)n;
		if (!strcmp(s.name, name) && (!text || (s.len > 6 && memmem(s.data + 6, s.len - 6,
									     text, strlen(text)))))
			return true;
	}
	return false;
}

struct raw_recv_ctx {
	pthread_t thread;
	int fd;
	struct dst_vm *d;
	unsigned io_ms;
	struct receiver r;
};

static void *raw_recv_main(void *arg)
{
	struct raw_recv_ctx *c = arg;
	receive(c->fd, c->d, c->io_ms, &c->r);
	return NULL;
}

/* Run the real receiver on one end; return the other for a hand-made source. */
static int raw_source(struct raw_recv_ctx *c, struct dst_vm *d, unsigned io_ms)
{
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	memset(c, 0, sizeof(*c));
	c->fd = sp[1];
	c->d = d;
	c->io_ms = io_ms;
	assert_int_equal(pthread_create(&c->thread, NULL, raw_recv_main, c), 0);
	return sp[0];
}

/* A hand-made source against the real receiver: the stream, what came
 * back, the receiver's result. */
struct raw {
	struct dst_vm d;
	struct snap_buf b;
	struct receiver r;
	uint8_t reply[4096];
	size_t n;
};

/* The stream starts with a hello for protocol proto and a 1 MiB guest. */
static void raw_begin(struct raw *x, uint32_t proto)
{
	memset(x, 0, sizeof(*x));
	snap_buf_init(&x->b);
	put_hello(&x->b, proto, 1 * MIB);
}

/* Send it (then shut our writing side if shut) and collect the replies
 * until the receiver hangs up. */
static void raw_run(struct raw *x, unsigned io_ms, bool shut)
{
	struct raw_recv_ctx c;
	int fd = raw_source(&c, &x->d, io_ms);
	raw_write(fd, &x->b);
	if (shut)
		shutdown(fd, SHUT_WR);
	x->n = raw_read_all(fd, x->reply, sizeof(x->reply));
	close(fd);
	pthread_join(c.thread, NULL);
	x->r = c.r;
	if (getenv("MIGRATE_TEST_VERBOSE"))
		fprintf(stderr, "  receiver: %d %s\n", x->r.rc, x->r.err);
}

static void raw_end(struct raw *x)
{
	snap_buf_free(&x->b);
	dst_fini(&x->d);
}

static void test_page_out_of_range(void **state)
{
	(void)state;
	struct raw x;
	raw_begin(&x, MIGRATE_PROTO_VERSION);
	size_t t = snap_section_begin(&x.b, "mig-pages", 0, 1);
	snap_buf_put_u32(&x.b, 0);
	snap_buf_put_u32(&x.b, 2);
	snap_buf_put_u64(&x.b, 3);                 /* fine */
	for (int i = 0; i < 4096; i++)
		snap_buf_put_u8(&x.b, 0xab);
	snap_buf_put_u64(&x.b, 256 + 5);           /* one past a 1 MiB guest's pages + 4 */
	for (int i = 0; i < 4096; i++)
		snap_buf_put_u8(&x.b, 0xcd);
	snap_section_end(&x.b, t);
	raw_run(&x, 2000, false);
	assert_int_equal(x.r.rc, -EINVAL);
	assert_non_null(strstr(x.r.err, "page 261 out of range (guest memory has 256 pages)"));
	assert_true(reply_has(x.reply, x.n, "mig-ready", NULL));
	assert_true(reply_has(x.reply, x.n, "mig-error", "page 261 out of range"));
	assert_int_equal(x.d.mem.host[3 * PAGE], 0xab);
	raw_end(&x);
}

static void test_protocol_version_refused(void **state)
{
	(void)state;
	struct raw x;
	raw_begin(&x, 99);
	raw_run(&x, 2000, false);
	assert_int_equal(x.r.rc, -EPROTO);
	assert_non_null(strstr(x.r.err, "source wafer 9.9.9 speaks migration protocol 99; this wafer"));
	assert_true(reply_has(x.reply, x.n, "mig-refuse", "speaks migration protocol 99"));
	assert_false(x.d.have_mem);
	raw_end(&x);
}

/* Everything loaded and confirmed, but the source vanishes before its
 * go-ahead: the destination must not run the VM (-ENOTCONN, keep paused). */
static void test_no_go_ahead(void **state)
{
	(void)state;
	struct raw x;
	struct src_vm idle = { 0 };
	raw_begin(&x, MIGRATE_PROTO_VERSION);
	src_save_state(&idle, &x.b);              /* the state a real source sends */
	snap_put_end(&x.b);
	raw_run(&x, 2000, true);
	assert_true(reply_has(x.reply, x.n, "mig-done", NULL));
	assert_true(x.d.got_serial);
	assert_int_equal(x.r.rc, -ENOTCONN);
	assert_non_null(strstr(x.r.err, "keep the VM paused"));
	raw_end(&x);
}

/* Hostile headers: bad magic, an oversized mig-pages announced (refused
 * before 32 MiB are buffered), too many pages, trailing junk in a record,
 * an unknown mig- section, a truncated stream. */
static void test_hostile_streams(void **state)
{
	(void)state;
	for (int k = 0; k < 6; k++) {
		struct raw x;
		const char *want;
		size_t t;

		raw_begin(&x, MIGRATE_PROTO_VERSION);
		if (k == 0) {
			x.b.len = 0;
			snap_buf_put(&x.b, "NOTWAFER", 8);
			for (int i = 0; i < 16; i++)
				snap_buf_put_u8(&x.b, 0);
			want = "bad magic";
		}
		if (k == 1) {   /* header announcing 32 MiB of pages, then silence */
			t = snap_section_begin(&x.b, "mig-pages", 0, 1);
			for (int i = 0; i < 8; i++)
				snap_buf_put_u8(&x.b, 0);
			snap_section_end(&x.b, t);
			uint64_t len = 32 * MIB;
			memcpy(x.b.p + t + 24, &len, 8);
			x.b.len = t + SNAP_SECTION_HDR;
			want = "more than the";
		} else if (k == 2) {
			t = snap_section_begin(&x.b, "mig-pages", 0, 1);
			snap_buf_put_u32(&x.b, 0);
			snap_buf_put_u32(&x.b, 100000);
			snap_section_end(&x.b, t);
			want = "mig-pages with 100000 pages";
		} else if (k == 3) {
			t = snap_section_begin(&x.b, "mig-pages", 0, 1);
			snap_buf_put_u32(&x.b, 0);
			snap_buf_put_u32(&x.b, 1);
			snap_buf_put_u64(&x.b, 1);
			snap_buf_put(&x.b, "short", 5);
			snap_section_end(&x.b, t);
			want = "malformed mig-pages";
		} else if (k == 4) {
			snap_section_end(&x.b, snap_section_begin(&x.b, "mig-bogus", 0, 1));
			want = "unexpected mig-bogus";
		} else if (k == 5) {
			t = snap_section_begin(&x.b, "mig-pages", 0, 1);
			snap_buf_put_u32(&x.b, 0);
			snap_buf_put_u32(&x.b, 0);
			snap_section_end(&x.b, t);
			x.b.len -= 3;     /* then hang up */
			want = "closed the connection mid-stream";
		}
		uint64_t t0 = sim_now_ns();
		raw_run(&x, 1000, k == 5);
		assert_true(x.r.rc < 0);
		assert_non_null(strstr(x.r.err, want));
		assert_true(sim_now_ns() - t0 < 4000000000ull);
		raw_end(&x);
	}
}

/* A destination that says ready, reads a little and hangs up. */
static void *hangup_dest(void *arg)
{
	int fd = *(int *)arg;
	static uint8_t buf[1 << 16];
	struct snap_buf b;
	size_t got = 0;
	snap_buf_init(&b);
	snap_put_header(&b);
	size_t t = snap_section_begin(&b, "mig-ready", 0, 1);
	snap_buf_put_u32(&b, 0);
	snap_section_end(&b, t);
	t = snap_section_begin(&b, "mig-synced", 0, 1);   /* answers the latency probe */
	snap_buf_put_u32(&b, 0);
	snap_section_end(&b, t);
	raw_write(fd, &b);
	while (got < 2 * MIB) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	snap_buf_free(&b);
	return NULL;
}

/* A destination that reads everything and never answers. */
static void *silent_dest(void *arg)
{
	int fd = *(int *)arg;
	static uint8_t buf[1 << 16];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	return NULL;
}

static void run_against(void *(*dest)(void *), struct src_vm *vm, unsigned io_ms,
			struct sender *s)
{
	int sp[2];
	pthread_t t;
	struct migrate_params p = { .io_timeout_ms = io_ms };
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(pthread_create(&t, NULL, dest, &sp[1]), 0);
	sender_start(s, sp[0], vm, &p);
	sender_join(s);
	pthread_join(t, NULL);
}

static void test_dest_hangs_up(void **state)
{
	(void)state;
	struct src_vm vm;
	struct sender s;
	src_init(&vm, 32 * MIB, 10000, 0);
	run_against(hangup_dest, &vm, 2000, &s);
	assert_true(s.rc == -ECONNRESET || s.rc == -EPIPE);
	assert_non_null(strstr(s.err, "closed"));
	assert_int_equal(vm.g.n_dirty_start, 1);
	assert_source_runs_on(&vm);
	sim_guest_fini(&vm.g);
}

static void test_silent_peers_time_out(void **state)
{
	(void)state;
	struct src_vm vm;
	struct sender s;
	src_init(&vm, 4 * MIB, 0, 0);
	uint64_t t0 = sim_now_ns();
	run_against(silent_dest, &vm, 300, &s);
	assert_int_equal(s.rc, -ETIMEDOUT);
	assert_non_null(strstr(s.err, "destination did not answer the hello: no progress"));
	assert_true(sim_now_ns() - t0 < 3000000000ull);
	assert_source_runs_on(&vm);
	sim_guest_fini(&vm.g);

	/* A source that sends the hello and then nothing. */
	struct raw x;
	raw_begin(&x, MIGRATE_PROTO_VERSION);
	t0 = sim_now_ns();
	raw_run(&x, 300, false);
	assert_true(sim_now_ns() - t0 < 3000000000ull);
	assert_int_equal(x.r.rc, -ETIMEDOUT);
	assert_non_null(strstr(x.r.err, "no progress on the connection for 300 ms"));
	raw_end(&x);
}

static void *cancel_main(void *arg)
{
	struct sender *s = arg;
	struct migrate_status st;
	/* Wait until pre-copy is running, then cancel. */
	for (int i = 0; i < 2500; i++) {   /* up to 5 s on a loaded machine */
		migrate_progress_read(&s->prog, &st);
		if (st.state == MIGRATE_ACTIVE && st.bytes_transferred > MIB)
			break;
		sim_sleep_ns(2000000);
	}
	assert_int_equal(st.state, MIGRATE_ACTIVE);
	migrate_cancel(&s->prog);
	return NULL;
}

/* Progress is readable while running; cancel stops the migration. */
static void test_progress_and_cancel(void **state)
{
	(void)state;
	struct src_vm vm;
	struct dst_vm d = { 0 };
	struct receiver r;
	struct sender s;
	pthread_t t;
	int sp[2];
	struct migrate_params p = { .max_bandwidth = 50 * 1000 * 1000, .timeout_ms = 30000 };
	src_init(&vm, 32 * MIB, 50000, 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	sender_start(&s, sp[0], &vm, &p);
	assert_int_equal(pthread_create(&t, NULL, cancel_main, &s), 0);
	receive(sp[1], &d, 0, &r);
	pthread_join(t, NULL);
	sender_join(&s);
	assert_int_equal(s.rc, -ECANCELED);
	assert_int_equal(s.st.state, MIGRATE_FAILED);
	assert_string_equal(s.st.error, "cancelled");
	assert_true(s.st.bytes_transferred > MIB);
	assert_int_equal(r.rc, -ECANCELED);
	assert_non_null(strstr(r.err, "source aborted: cancelled"));
	assert_source_runs_on(&vm);
	finish(&vm, &d);
}

static void test_urls(void **state)
{
	(void)state;
	char err[256], url[256];
	int fd = -1, lfd = -1, afd = -1;
	static const struct { const char *url; const char *want; } bad[] = {
		{ "foo", "expected tcp:HOST:PORT or unix:PATH" },
		{ "tcp:", "expected tcp:HOST:PORT" },
		{ "tcp:host", "expected tcp:HOST:PORT" },
		{ "tcp::80", "missing host" },
		{ "tcp:h:99999", "port '99999' is not a number in 1..65535" },
		{ "tcp:h:-1", "port '-1'" },
		{ "tcp:h:0", "in 1..65535" },
		{ "tcp:::1:80", "brackets" },
		{ "unix:", "expected unix:PATH" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		assert_int_equal(migrate_connect(bad[i].url, 100, &fd, err, sizeof(err)), -EINVAL);
		if (!strstr(err, bad[i].want))
			fail_msg("%s: got '%s'", bad[i].url, err);
	}
	assert_int_equal(migrate_listen("tcp:h:99999", &lfd, err, sizeof(err)), -EINVAL);

	/* tcp loopback, port 0 */
	assert_int_equal(migrate_listen("tcp:127.0.0.1:0", &lfd, err, sizeof(err)), 0);
	assert_int_equal(migrate_listen_url(lfd, url, sizeof(url)), 0);
	assert_true(!strncmp(url, "tcp:127.0.0.1:", 14) && strcmp(url, "tcp:127.0.0.1:0"));
	assert_int_equal(migrate_connect(url, 1000, &fd, err, sizeof(err)), 0);
	assert_int_equal(migrate_accept(lfd, 1000, &afd, err, sizeof(err)), 0);
	assert_int_equal(write(fd, "x", 1), 1);
	char ch;
	assert_int_equal(read(afd, &ch, 1), 1);
	close(fd), close(afd);
	/* no second connection: accept times out */
	assert_int_equal(migrate_accept(lfd, 100, &afd, err, sizeof(err)), -ETIMEDOUT);
	assert_non_null(strstr(err, "no incoming migration within 100 ms"));
	close(lfd);
	/* now nobody listens there */
	assert_true(migrate_connect(url, 1000, &fd, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, url));

	/* unix; a stale socket file is reused, a live one is not taken */
	char path[64];
	snprintf(path, sizeof(path), "unix:/tmp/wafer-migtest-%d.sock", getpid());
	assert_int_equal(migrate_listen(path, &lfd, err, sizeof(err)), 0);
	assert_int_equal(migrate_listen(path, &afd, err, sizeof(err)), -EADDRINUSE);
	assert_int_equal(migrate_listen_url(lfd, url, sizeof(url)), 0);
	assert_string_equal(url, path);
	assert_int_equal(migrate_connect(path, 1000, &fd, err, sizeof(err)), 0);
	assert_int_equal(migrate_accept(lfd, 1000, &afd, err, sizeof(err)), 0);
	close(fd), close(afd), close(lfd);
	assert_int_equal(migrate_listen(path, &lfd, err, sizeof(err)), 0);
	close(lfd);
	unlink(path + 5);
	assert_int_equal(migrate_connect(path, 1000, &fd, err, sizeof(err)), -ENOENT);
}

/* A real migration over tcp loopback through the URL functions. */
struct tcp_ctx {
	int lfd;
	struct dst_vm *d;
	struct receiver r;
};

static void *tcp_recv_main(void *arg)
{
	struct tcp_ctx *c = arg;
	char err[256];
	int fd;
	c->r.rc = migrate_accept(c->lfd, 5000, &fd, err, sizeof(err));
	if (!c->r.rc)
		receive(fd, c->d, 0, &c->r);
	return NULL;
}

static void test_tcp_loopback(void **state)
{
	(void)state;
	struct src_vm vm;
	struct dst_vm d = { 0 };
	struct tcp_ctx c = { .d = &d };
	struct sender s;
	char err[256], url[128];
	pthread_t t;
	int fd;
	src_init(&vm, 64 * MIB, 20000, 0);
	assert_int_equal(migrate_listen("tcp:127.0.0.1:0", &c.lfd, err, sizeof(err)), 0);
	assert_int_equal(migrate_listen_url(c.lfd, url, sizeof(url)), 0);
	assert_int_equal(pthread_create(&t, NULL, tcp_recv_main, &c), 0);
	assert_int_equal(migrate_connect(url, 2000, &fd, err, sizeof(err)), 0);
	sender_start(&s, fd, &vm, NULL);
	sender_join(&s);
	pthread_join(t, NULL);
	close(c.lfd);
	assert_migrated(&vm, &d, &s, &c.r);
	finish(&vm, &d);
}

int main(void)
{
	static const struct CMUnitTest base[] = {
		cmocka_unit_test(test_idle_converges),
		cmocka_unit_test(test_busy_converges),
		cmocka_unit_test(test_odd_size),
		cmocka_unit_test(test_auto_converge),
		cmocka_unit_test(test_page_out_of_range),
		cmocka_unit_test(test_protocol_version_refused),
		cmocka_unit_test(test_no_go_ahead),
		cmocka_unit_test(test_hostile_streams),
		cmocka_unit_test(test_dest_hangs_up),
		cmocka_unit_test(test_silent_peers_time_out),
		cmocka_unit_test(test_progress_and_cancel),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_tcp_loopback),
	};
	enum { NB = sizeof(base) / sizeof(base[0]), NF = sizeof(failures) / sizeof(failures[0]) };
	struct CMUnitTest tests[NB + NF];

	memcpy(tests, base, sizeof(base));
	for (size_t i = 0; i < NF; i++)
		tests[NB + i] = (struct CMUnitTest){ .name = failures[i].name, .test_func = test_failure,
						     .initial_state = (void *)&failures[i] };
	return _cmocka_run_group_tests("test_migrate", tests, NB + NF, NULL, NULL);
}
