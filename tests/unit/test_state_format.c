/* The state container: sections round-trip, every corruption and every
 * truncation is refused, the cursor never reads past a section, and atomic
 * writes leave either the old file or the complete new one (sparse), and a
 * file's CRC skips its holes without changing the value. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "state/format.h"

static void build(struct snap_buf *b)
{
	snap_buf_init(b);
	snap_put_header(b);
	size_t t = snap_section_begin(b, "serial", 0, 1);
	snap_buf_put_u8(b, 0xab);
	snap_buf_put_u16(b, 0x1234);
	snap_buf_put_u32(b, 0xdeadbeef);
	snap_buf_put_u64(b, 0x0102030405060708ull);
	snap_section_end(b, t);
	t = snap_section_begin(b, "vcpu", 3, 7);
	snap_buf_put(b, "hello", 5);
	snap_section_end(b, t);
	snap_put_end(b);
	assert_int_equal(b->err, 0);
}

static void test_roundtrip(void **state)
{
	(void)state;
	struct snap_buf b;
	struct snap_reader r;
	struct snap_section s;
	struct snap_cur c;
	char err[128];

	build(&b);
	assert_int_equal(snap_reader_open(&r, b.p, b.len, err, sizeof(err)), 0);
	assert_int_equal(r.nsections, 3);
	assert_int_equal(snap_reader_find(&r, "serial", 0, &s), 0);
	assert_int_equal(s.version, 1);
	snap_cur_init(&c, s.data, s.len);
	assert_int_equal(snap_cur_u8(&c), 0xab);
	assert_int_equal(snap_cur_u16(&c), 0x1234);
	assert_int_equal(snap_cur_u32(&c), 0xdeadbeef);
	assert_int_equal(snap_cur_u64(&c), 0x0102030405060708ull);
	assert_int_equal(snap_cur_end(&c), 0);
	/* Reading past the end is sticky and yields zeros. */
	assert_int_equal(snap_cur_u32(&c), 0);
	assert_int_equal(snap_cur_end(&c), -EINVAL);
	assert_int_equal(snap_reader_find(&r, "vcpu", 3, &s), 0);
	assert_int_equal(s.version, 7);
	assert_int_equal(s.len, 5);
	assert_memory_equal(s.data, "hello", 5);
	assert_int_equal(snap_reader_find(&r, "vcpu", 2, &s), -ENOENT);
	assert_int_equal(snap_reader_find(&r, "end", 0, &s), -ENOENT);
	/* Little-endian on the wire, whatever the host. */
	assert_memory_equal(b.p + 8, "\x01\x00\x00\x00", 4);
	snap_buf_free(&b);
}

static void test_every_corruption_refused(void **state)
{
	(void)state;
	struct snap_buf b;
	struct snap_reader r;
	char err[128];

	build(&b);
	/* Flip each bit of each byte after the header: CRC, bounds or name
	 * checks must catch every single one. */
	for (size_t i = 0; i < b.len; i++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			b.p[i] ^= (uint8_t)(1u << bit);
			int rc = snap_reader_open(&r, b.p, b.len, err, sizeof(err));
			b.p[i] ^= (uint8_t)(1u << bit);
			/* The header's flags/reserved words are not checked. */
			if (i >= 12 && i < 24)
				continue;
			if (rc == 0)
				fail_msg("bit %u of byte %zu flipped, still accepted", bit, i);
		}
	}
	snap_buf_free(&b);
}

static void test_every_truncation_refused(void **state)
{
	(void)state;
	struct snap_buf b;
	struct snap_reader r;
	char err[128];

	build(&b);
	for (size_t n = 0; n < b.len; n++)
		assert_true(snap_reader_open(&r, b.p, n, err, sizeof(err)) < 0);
	assert_int_equal(snap_reader_open(&r, b.p, b.len, err, sizeof(err)), 0);
	snap_buf_free(&b);
}

static void test_header_checks(void **state)
{
	(void)state;
	struct snap_buf b;
	struct snap_reader r;
	char err[128];

	build(&b);
	b.p[0] = 'X';
	assert_int_equal(snap_reader_open(&r, b.p, b.len, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "not a wafer snapshot (bad magic)");
	b.p[0] = 'W';
	b.p[8] = 9;
	assert_int_equal(snap_reader_open(&r, b.p, b.len, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "format version 9"));
	b.p[8] = 1;
	/* Trailing garbage after "end". */
	snap_buf_put_u8(&b, 0);
	assert_int_equal(snap_reader_open(&r, b.p, b.len, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "trailing"));
	snap_buf_free(&b);
}

static void test_section_length_bounded(void **state)
{
	(void)state;
	uint8_t hdr[SNAP_SECTION_HDR] = "big";
	struct snap_section s;
	char err[128];
	/* A length field of 2^40 must be refused without waiting for data. */
	uint64_t len = 1ull << 40;
	memcpy(hdr + 24, &len, 8);
	assert_int_equal(snap_section_parse(hdr, sizeof(hdr), &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "exceeds"));
	/* A short one just needs more bytes. */
	len = 10;
	memcpy(hdr + 24, &len, 8);
	assert_int_equal(snap_section_parse(hdr, sizeof(hdr), &s, err, sizeof(err)), 0);
}

static void test_atomic_write(void **state)
{
	(void)state;
	char dir[] = "/tmp/wafer-state-XXXXXX", path[256], err[256];
	struct stat sb;
	size_t len = 64 << 20;
	uint8_t *data = calloc(1, len);

	assert_non_null(mkdtemp(dir));
	memset(data + 4096 * 10, 0x5a, 4096 * 3);
	data[len - 1] = 1;
	uint32_t crc = 0;
	assert_int_equal(snap_write_atomic(dir, "memory", data, len, &crc, err, sizeof(err)), 0);
	/* The CRC from the write pass is the CRC of every byte, holes included. */
	assert_int_equal(crc, snap_crc32(data, len));
	snprintf(path, sizeof(path), "%s/memory", dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal((size_t)sb.st_size, len);
	/* Zero pages stay holes: far less than 64 MiB allocated. */
	assert_true((uint64_t)sb.st_blocks * 512 < (1u << 20));
	int fd = open(path, O_RDONLY);
	uint8_t *back = malloc(len);
	assert_int_equal(read(fd, back, len), (ssize_t)len);
	close(fd);
	assert_memory_equal(back, data, len);
	/* No temporary left behind. */
	snprintf(path, sizeof(path), "%s/.memory.tmp", dir);
	assert_int_equal(stat(path, &sb), -1);
	/* A failing write leaves the old file untouched. */
	assert_int_equal(snap_write_atomic("/nonexistent-dir", "memory", data, 16, NULL, err,
					   sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent-dir/.memory.tmp"));
	snprintf(path, sizeof(path), "%s/memory", dir);
	unlink(path);
	rmdir(dir);
	free(back);
	free(data);
}

/* snap_crc32_file over sparse files: the CRC of every byte, holes read as
 * zeros without being read, whatever the layout of data and holes. */
static void test_crc32_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/wafer-state-XXXXXX", path[256], err[256];
	size_t len = (5u << 20) + 123;      /* more than one 1 MiB chunk, unaligned end */
	uint8_t *data = calloc(1, len);
	uint32_t crc, wrote;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/memory", dir);
	/* layout 0: all holes; 1: data at the start and a trailing hole; 2:
	 * holes at both ends, data straddling chunk boundaries; 3: no holes. */
	for (unsigned layout = 0; layout < 4; layout++) {
		if (layout == 1)
			memset(data, 0x11, 8192);
		if (layout == 2) {
			memset(data, 0, len);
			memset(data + (1u << 20) - 100, 0x22, 3 << 20);
			data[len - 5000] = 0x33;
		}
		if (layout == 3)
			memset(data, 0x44, len);
		assert_int_equal(snap_write_atomic(dir, "memory", data, len, &wrote, err,
						   sizeof(err)), 0);
		int fd = open(path, O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(snap_crc32_file(fd, len, &crc), 0);
		assert_int_equal(crc, snap_crc32(data, len));
		assert_int_equal(crc, wrote);
		/* A prefix, and a file shorter than asked for. */
		assert_int_equal(snap_crc32_file(fd, len - 4096, &crc), 0);
		assert_int_equal(crc, snap_crc32(data, len - 4096));
		assert_int_equal(snap_crc32_file(fd, len + 1, &crc), -EBADMSG);
		close(fd);
	}
	/* A page of data turned into a hole (zeros) is a different CRC. */
	int fd = open(path, O_RDWR);
	assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1 << 20, 4096), 0);
	assert_int_equal(snap_crc32_file(fd, len, &crc), 0);
	assert_int_not_equal(crc, snap_crc32(data, len));
	memset(data + (1 << 20), 0, 4096);
	assert_int_equal(crc, snap_crc32(data, len));
	close(fd);
	unlink(path);
	rmdir(dir);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_every_corruption_refused),
		cmocka_unit_test(test_every_truncation_refused),
		cmocka_unit_test(test_header_checks),
		cmocka_unit_test(test_section_length_bounded),
		cmocka_unit_test(test_atomic_write),
		cmocka_unit_test(test_crc32_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
