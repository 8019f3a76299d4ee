/* One side of a live migration with the real engine and a simulated guest
 * (tests/unit/sim_guest.h), for tests/integration/migrate.sh:
 *   migrate_peer send URL MEM_MIB DIRTY_MBS [--auto-converge] [--downtime-ms N]
 *                [--timeout-ms N] [--max-bw-mbs N]
 *   migrate_peer recv URL [--accept-timeout-ms N] [--refuse TEXT]
 * Prints "name value" lines: one "round" line per pre-copy round, then
 * result, rounds, downtime_ms, bandwidth_mbs, checksum (CRC-32 of guest
 * memory: the source's once migrated -- it stays paused as it was at the
 * switch-over -- and the destination's after loading; computed outside the
 * downtime window). The source's state section carries the guest's write
 * count at pause; the destination prints "confirmed" once it loaded it.
 * Exit 0 on a completed migration, 1 on failure, 2 on usage errors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state/migrate.h"
#include "../unit/sim_guest.h"

#define MIB (1ull << 20)

static int usage(void)
{
	fprintf(stderr, "usage: migrate_peer send URL MEM_MIB DIRTY_MBS [--auto-converge] "
		"[--downtime-ms N] [--timeout-ms N] [--max-bw-mbs N]\n"
		"       migrate_peer recv URL [--accept-timeout-ms N] [--refuse TEXT]\n");
	return 2;
}

static void print_result(int rc, const char *err)
{
	if (rc)
		printf("result failed: %s\n", err);
	else
		printf("result completed\n");
}

static uint32_t mem_checksum(const struct guest_mem *m)
{
	return snap_crc32(m->host, m->size);
}

/* ---- source ---- */

static int src_save_state(void *o, struct snap_buf *b)
{
	struct sim_guest *g = o;
	size_t t = snap_section_begin(b, "peer-guest", 0, 1);
	snap_buf_put_u64(b, atomic_load(&g->writes));
	snap_section_end(b, t);
	return 0;
}

static void src_on_round(void *o, const struct migrate_status *st)
{
	(void)o;
	if (st->state != MIGRATE_ACTIVE)
		return;
	printf("round %u sent_kib %llu remaining_kib %llu dirty_mbs %.1f bandwidth_mbs %.1f "
	       "expected_downtime_ms %.2f throttle_pct %u\n", st->round,
	       (unsigned long long)st->bytes_transferred >> 10,
	       (unsigned long long)st->bytes_remaining >> 10, st->dirty_rate / 1e6,
	       st->bandwidth / 1e6, st->expected_downtime_ns / 1e6, st->throttle_pct);
	fflush(stdout);
}

static const struct migrate_source_ops src_ops = {
	.dirty_start = sim_dirty_start, .dirty_stop = sim_dirty_stop,
	.dirty_harvest = sim_dirty_harvest, .pause = sim_pause, .resume = sim_resume,
	.save_state = src_save_state, .throttle = sim_throttle, .on_round = src_on_round,
};

static int run_send(int argc, char **argv)
{
	struct migrate_params p = { 0 };
	struct migrate_progress prog;
	struct migrate_status st;
	struct sim_guest g;
	char err[512], hello[128];
	int fd = -1, rc;

	if (argc < 5)
		return usage();
	const char *url = argv[2];
	uint64_t mib = strtoull(argv[3], NULL, 0), mbs = strtoull(argv[4], NULL, 0);
	for (int i = 5; i < argc; i++) {
		if (!strcmp(argv[i], "--auto-converge"))
			p.auto_converge = true;
		else if (!strcmp(argv[i], "--downtime-ms") && i + 1 < argc)
			p.downtime_max_ns = strtoull(argv[++i], NULL, 0) * 1000000ull;
		else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
			p.timeout_ms = (unsigned)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--max-bw-mbs") && i + 1 < argc)
			p.max_bandwidth = strtoull(argv[++i], NULL, 0) * 1000000ull;
		else
			return usage();
	}
	if (!mib)
		return usage();
	rc = sim_guest_init(&g, mib * MIB, mbs * 1000000ull / GMEM_PAGE_SIZE, 0);
	if (rc) {
		fprintf(stderr, "migrate_peer: %llu MiB of guest memory: %s\n",
			(unsigned long long)mib, strerror(-rc));
		return 1;
	}
	/* The receiver may still be starting: retry for up to 10 s. */
	uint64_t until = sim_now_ns() + 10000000000ull;
	while ((rc = migrate_connect(url, 2000, &fd, err, sizeof(err))) &&
	       (rc == -ECONNREFUSED || rc == -ENOENT) && sim_now_ns() < until)
		sim_sleep_ns(50000000);
	if (rc) {
		fprintf(stderr, "migrate_peer: %s\n", err);
		sim_guest_fini(&g);
		return 1;
	}
	snprintf(hello, sizeof(hello), "migrate_peer mem_mib=%llu", (unsigned long long)mib);
	migrate_progress_init(&prog);
	rc = migrate_send(fd, &g.mem, hello, strlen(hello), &src_ops, &g, &p, &prog,
			  err, sizeof(err));
	migrate_progress_read(&prog, &st);
	migrate_progress_destroy(&prog);
	close(fd);
	print_result(rc, err);
	printf("rounds %u\ndowntime_ms %.3f\ntotal_ms %.1f\nbytes_sent %llu\npages_sent %llu\n"
	       "zero_pages %llu\nbandwidth_mbs %.1f\nmax_throttle_pct %u\nguest_writes %llu\n",
	       st.round, st.downtime_ns / 1e6, st.total_ns / 1e6,
	       (unsigned long long)st.bytes_transferred, (unsigned long long)st.pages_transferred,
	       (unsigned long long)st.zero_pages, st.bandwidth / 1e6, g.max_throttle,
	       (unsigned long long)atomic_load(&g.writes));
	if (!rc)
		printf("checksum %08x\n", mem_checksum(&g.mem));
	else
		printf("resumed %d\n", g.n_resume == g.n_pause && !g.paused);
	sim_guest_fini(&g);
	return rc ? 1 : 0;
}

/* ---- destination ---- */

struct peer_dst {
	struct guest_mem mem;
	bool have_mem;
	const char *refuse;
};

static int dst_prepare(void *o, const void *hello, size_t len, uint64_t size,
		       struct guest_mem **mem, char *err, size_t errlen)
{
	struct peer_dst *d = o;
	printf("hello %.*s\n", (int)len, (const char *)hello);
	if (d->refuse) {
		snprintf(err, errlen, "%s", d->refuse);
		return -EPROTO;
	}
	int rc = gmem_alloc(&d->mem, size);
	if (rc) {
		snprintf(err, errlen, "cannot allocate %llu bytes of guest memory",
			 (unsigned long long)size);
		return rc;
	}
	d->have_mem = true;
	*mem = &d->mem;
	return 0;
}

static int dst_load_state(void *o, const struct snap_reader *r, char *err, size_t errlen)
{
	struct snap_section s;
	struct snap_cur c;

	(void)o;
	if (snap_reader_find(r, "peer-guest", 0, &s)) {
		snprintf(err, errlen, "no peer-guest section");
		return -ENOENT;
	}
	snap_cur_init(&c, s.data, s.len);
	uint64_t writes = snap_cur_u64(&c);
	if (snap_cur_end(&c)) {
		snprintf(err, errlen, "malformed peer-guest section");
		return -EINVAL;
	}
	printf("confirmed guest_writes %llu\n", (unsigned long long)writes);
	return 0;
}

static const struct migrate_dest_ops dst_ops = { .prepare = dst_prepare,
						 .load_state = dst_load_state };

static int run_recv(int argc, char **argv)
{
	struct peer_dst d = { 0 };
	struct migrate_progress prog;
	struct migrate_status st;
	unsigned accept_ms = 30000;
	char err[512], url[256];
	int lfd = -1, fd = -1, rc;

	if (argc < 3)
		return usage();
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--accept-timeout-ms") && i + 1 < argc)
			accept_ms = (unsigned)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--refuse") && i + 1 < argc)
			d.refuse = argv[++i];
		else
			return usage();
	}
	rc = migrate_listen(argv[2], &lfd, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "migrate_peer: %s\n", err);
		return 1;
	}
	if (!migrate_listen_url(lfd, url, sizeof(url)))
		printf("listening %s\n", url);
	fflush(stdout);
	rc = migrate_accept(lfd, accept_ms, &fd, err, sizeof(err));
	close(lfd);
	if (!strncmp(argv[2], "unix:", 5))
		unlink(argv[2] + 5);
	if (rc) {
		fprintf(stderr, "migrate_peer: %s\n", err);
		return 1;
	}
	migrate_progress_init(&prog);
	rc = migrate_receive(fd, &dst_ops, &d, NULL, &prog, err, sizeof(err));
	migrate_progress_read(&prog, &st);
	migrate_progress_destroy(&prog);
	close(fd);
	print_result(rc, err);
	printf("bytes_received %llu\npages_received %llu\ntotal_ms %.1f\n",
	       (unsigned long long)st.bytes_transferred, (unsigned long long)st.pages_transferred,
	       st.total_ns / 1e6);
	if (!rc)
		printf("checksum %08x\n", mem_checksum(&d.mem));
	if (d.have_mem)
		gmem_free(&d.mem);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "send"))
		return run_send(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "recv"))
		return run_recv(argc, argv);
	return usage();
}
