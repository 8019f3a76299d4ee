/* The versioned, checksummed state container (see format.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "state/format.h"

uint32_t snap_crc32_extend(uint32_t crc, const void *data, size_t len)
{
	uLong c = crc;
	const uint8_t *p = data;
	while (len) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
		c = crc32(c, p, n);
		p += n;
		len -= n;
	}
	return (uint32_t)c;
}

uint32_t snap_crc32(const void *data, size_t len)
{
	return snap_crc32_extend((uint32_t)crc32(0L, Z_NULL, 0), data, len);
}

#define CRC_CHUNK (1u << 20)

/* zero_crc[k]: the CRC-32 of 2^k zero bytes. */
static void crc_zero_table(uint32_t zero_crc[64])
{
	static const uint8_t zero;
	zero_crc[0] = (uint32_t)crc32(0L, &zero, 1);
	for (unsigned k = 1; k < 64; k++)
		zero_crc[k] = (uint32_t)crc32_combine(zero_crc[k - 1], zero_crc[k - 1],
						      (z_off_t)1 << (k - 1));
}

/* crc extended over len zero bytes, nothing read: one crc32_combine per
 * bit set in len (zeros in any order are the same zeros). */
static uint32_t crc_zeros(uint32_t crc, const uint32_t zero_crc[64], uint64_t len)
{
	for (unsigned k = 0; len; k++, len >>= 1)
		if (len & 1)
			crc = (uint32_t)crc32_combine(crc, zero_crc[k], (z_off_t)1 << k);
	return crc;
}

/* crc extended over [off, end) of fd, read in chunks into buf. */
static int crc_data(int fd, uint8_t *buf, uint64_t off, uint64_t end, uint32_t *crc)
{
	while (off < end) {
		size_t want = end - off < CRC_CHUNK ? (size_t)(end - off) : CRC_CHUNK;
		ssize_t n = pread(fd, buf, want, (off_t)off);
		if (n <= 0)
			return n < 0 ? -errno : -EBADMSG;
		*crc = snap_crc32_extend(*crc, buf, (size_t)n);
		off += (uint64_t)n;
	}
	return 0;
}

int snap_crc32_file(int fd, uint64_t size, uint32_t *crc)
{
	uint8_t *buf = malloc(CRC_CHUNK);
	uint32_t c = snap_crc32(NULL, 0), zero_crc[64];
	uint64_t off = 0;
	struct stat st;
	int rc = 0;

	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size < size) {
		rc = -EBADMSG;   /* past the end there are no zeros, only a short file */
		goto out;
	}
	crc_zero_table(zero_crc);
	while (!rc && off < size) {
		/* The next data extent; without SEEK_DATA (EINVAL) all is data,
		 * past the last extent (ENXIO) all is hole. */
		off_t d = lseek(fd, (off_t)off, SEEK_DATA);
		uint64_t data = d >= 0 ? (uint64_t)d : errno == ENXIO ? size : off;
		if (d < 0 && errno != ENXIO && errno != EINVAL) {
			rc = -errno;
			break;
		}
		data = data < size ? data : size;
		c = crc_zeros(c, zero_crc, data - off);
		off_t h = data < size ? lseek(fd, (off_t)data, SEEK_HOLE) : (off_t)size;
		uint64_t hole = h > (off_t)data && (uint64_t)h < size ? (uint64_t)h : size;
		rc = crc_data(fd, buf, data, hole, &c);
		off = hole;
	}
	*crc = c;
out:
	free(buf);
	return rc;
}

/* A section's CRC covers its header (name, instance, version, length) and
 * its payload, so a flipped name or instance is caught like a flipped byte. */
static uint32_t section_crc(const uint8_t *hdr, const uint8_t *payload, size_t len)
{
	return snap_crc32_extend(snap_crc32(hdr, 32), payload, len);
}

void snap_buf_init(struct snap_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void snap_buf_free(struct snap_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static bool snap_buf_reserve(struct snap_buf *b, size_t more)
{
	if (b->err)
		return false;
	if (more > SIZE_MAX / 2 - b->len) {
		b->err = -ENOMEM;
		return false;
	}
	if (b->len + more <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (!p) {
		b->err = -ENOMEM;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void snap_buf_put(struct snap_buf *b, const void *data, size_t len)
{
	if (!len || !snap_buf_reserve(b, len))
		return;
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

static void put_le(struct snap_buf *b, uint64_t v, unsigned n)
{
	uint8_t t[8];
	for (unsigned i = 0; i < n; i++)
		t[i] = (uint8_t)(v >> (8 * i));
	snap_buf_put(b, t, n);
}

void snap_buf_put_u8(struct snap_buf *b, uint8_t v) { put_le(b, v, 1); }
void snap_buf_put_u16(struct snap_buf *b, uint16_t v) { put_le(b, v, 2); }
void snap_buf_put_u32(struct snap_buf *b, uint32_t v) { put_le(b, v, 4); }
void snap_buf_put_u64(struct snap_buf *b, uint64_t v) { put_le(b, v, 8); }

void snap_buf_put_str(struct snap_buf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	snap_buf_put_u32(b, (uint32_t)n);
	snap_buf_put(b, s, n);
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void patch_le(struct snap_buf *b, size_t at, uint64_t v, unsigned n)
{
	if (b->err || at + n > b->len)
		return;
	for (unsigned i = 0; i < n; i++)
		b->p[at + i] = (uint8_t)(v >> (8 * i));
}

void snap_put_header(struct snap_buf *b)
{
	snap_buf_put(b, SNAP_MAGIC, 8);
	snap_buf_put_u32(b, SNAP_FORMAT_VERSION);
	snap_buf_put_u32(b, 0);   /* flags */
	snap_buf_put_u64(b, 0);   /* reserved */
}

/* Section header: name[16] instance:u32 version:u32 len:u64 crc:u32. */
size_t snap_section_begin(struct snap_buf *b, const char *name, uint32_t instance,
			  uint32_t version)
{
	char n[SNAP_NAME_MAX] = { 0 };
	size_t token = b->len;
	size_t nl = strnlen(name, sizeof(n));
	memcpy(n, name, nl);
	snap_buf_put(b, n, sizeof(n));
	snap_buf_put_u32(b, instance);
	snap_buf_put_u32(b, version);
	snap_buf_put_u64(b, 0);
	snap_buf_put_u32(b, 0);
	return token;
}

void snap_section_end(struct snap_buf *b, size_t token)
{
	if (b->err || token + SNAP_SECTION_HDR > b->len)
		return;
	size_t start = token + SNAP_SECTION_HDR, len = b->len - start;
	if (len > SNAP_SECTION_MAX) {
		b->err = -EFBIG;
		return;
	}
	patch_le(b, token + 24, len, 8);
	patch_le(b, token + 32, section_crc(b->p + token, b->p + start, len), 4);
}

void snap_put_end(struct snap_buf *b)
{
	snap_section_end(b, snap_section_begin(b, "end", 0, 1));
}

void snap_cur_init(struct snap_cur *c, const void *p, size_t len)
{
	c->p = p;
	c->len = len;
	c->off = 0;
	c->err = 0;
}

const void *snap_cur_take(struct snap_cur *c, size_t len)
{
	if (c->err || len > c->len - c->off) {
		c->err = -EINVAL;
		return NULL;
	}
	const void *p = c->p + c->off;
	c->off += len;
	return p;
}

void snap_cur_get(struct snap_cur *c, void *out, size_t len)
{
	const void *p = snap_cur_take(c, len);
	if (p)
		memcpy(out, p, len);
	else
		memset(out, 0, len);
}

void snap_cur_str(struct snap_cur *c, char *out, size_t size)
{
	uint32_t n = snap_cur_u32(c);
	const char *p = c->err || n >= size ? NULL : snap_cur_take(c, n);
	if (!p || memchr(p, 0, n)) {
		c->err = -EINVAL;
		if (size)
			out[0] = '\0';
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

static uint64_t cur_le(struct snap_cur *c, unsigned n)
{
	const uint8_t *p = snap_cur_take(c, n);
	return p ? get_le(p, n) : 0;
}

uint8_t snap_cur_u8(struct snap_cur *c) { return (uint8_t)cur_le(c, 1); }
uint16_t snap_cur_u16(struct snap_cur *c) { return (uint16_t)cur_le(c, 2); }
uint32_t snap_cur_u32(struct snap_cur *c) { return (uint32_t)cur_le(c, 4); }
uint64_t snap_cur_u64(struct snap_cur *c) { return cur_le(c, 8); }

int snap_cur_end(const struct snap_cur *c)
{
	return c->err || c->off != c->len ? -EINVAL : 0;
}

static bool name_valid(const uint8_t *n)
{
	size_t i = 0;
	while (i < SNAP_NAME_MAX && n[i]) {
		if (n[i] < 0x21 || n[i] > 0x7e)
			return false;
		i++;
	}
	if (i == 0)
		return false;
	for (; i < SNAP_NAME_MAX; i++)
		if (n[i])
			return false;
	return true;
}

long snap_section_parse(const uint8_t *data, size_t len, struct snap_section *s,
			char *err, size_t errlen)
{
	if (len < SNAP_SECTION_HDR)
		return 0;
	if (!name_valid(data)) {
		snprintf(err, errlen, "malformed section name");
		return -EINVAL;
	}
	uint64_t plen = get_le(data + 24, 8);
	uint32_t crc = (uint32_t)get_le(data + 32, 4);
	memset(s, 0, sizeof(*s));
	memcpy(s->name, data, SNAP_NAME_MAX);
	s->instance = (uint32_t)get_le(data + 16, 4);
	s->version = (uint32_t)get_le(data + 20, 4);
	if (plen > SNAP_SECTION_MAX) {
		snprintf(err, errlen, "section %s/%u: length %llu exceeds the %u-byte limit",
			 s->name, s->instance, (unsigned long long)plen, SNAP_SECTION_MAX);
		return -EINVAL;
	}
	if (plen > len - SNAP_SECTION_HDR)
		return 0;
	s->data = data + SNAP_SECTION_HDR;
	s->len = (size_t)plen;
	if (section_crc(data, s->data, s->len) != crc) {
		snprintf(err, errlen, "section %s/%u: checksum mismatch (corrupt)", s->name,
			 s->instance);
		return -EINVAL;
	}
	return (long)(SNAP_SECTION_HDR + plen);
}

int snap_reader_open(struct snap_reader *r, const void *data, size_t len,
		     char *err, size_t errlen)
{
	const uint8_t *p = data;
	struct snap_section s;
	size_t off = SNAP_HEADER_SIZE;

	memset(r, 0, sizeof(*r));
	if (len < SNAP_HEADER_SIZE || memcmp(p, SNAP_MAGIC, 8)) {
		snprintf(err, errlen, "not a wafer snapshot (bad magic)");
		return -EINVAL;
	}
	uint32_t ver = (uint32_t)get_le(p + 8, 4);
	if (ver != SNAP_FORMAT_VERSION) {
		snprintf(err, errlen, "snapshot format version %u; this wafer reads version %u",
			 ver, SNAP_FORMAT_VERSION);
		return -EPROTO;
	}
	for (;;) {
		if (off == len) {
			snprintf(err, errlen, "truncated: no end section after %u sections",
				 r->nsections);
			return -EINVAL;
		}
		long n = snap_section_parse(p + off, len - off, &s, err, errlen);
		if (n < 0)
			return (int)n;
		if (n == 0) {
			snprintf(err, errlen, "truncated inside section %u", r->nsections);
			return -EINVAL;
		}
		off += (size_t)n;
		r->nsections++;
		if (!strcmp(s.name, "end"))
			break;
	}
	if (off != len) {
		snprintf(err, errlen, "%zu bytes of trailing data after the end section", len - off);
		return -EINVAL;
	}
	r->p = p;
	r->len = len;
	return 0;
}

int snap_reader_next(const struct snap_reader *r, size_t *pos, struct snap_section *s)
{
	char err[8];
	size_t off = *pos ? *pos : SNAP_HEADER_SIZE;
	if (!r->p || off >= r->len)
		return 0;
	long n = snap_section_parse(r->p + off, r->len - off, s, err, sizeof(err));
	if (n <= 0 || !strcmp(s->name, "end"))
		return 0;
	*pos = off + (size_t)n;
	return 1;
}

int snap_reader_find(const struct snap_reader *r, const char *name, uint32_t instance,
		     struct snap_section *s)
{
	size_t pos = 0;
	while (snap_reader_next(r, &pos, s))
		if (s->instance == instance && !strcmp(s->name, name))
			return 0;
	return -ENOENT;
}

static bool block_zero(const uint8_t *p, size_t n)
{
	static const uint8_t zero[4096];
	return n <= sizeof(zero) && !memcmp(p, zero, n);
}

int snap_write_atomic(const char *dir, const char *name, const void *data, size_t len,
		      uint32_t *crc, char *err, size_t errlen)
{
	char tmp[4096], dst[4096];
	const uint8_t *p = data;
	int fd = -1, dfd = -1, rc = 0;
	uint32_t c = snap_crc32(NULL, 0);
	size_t crc_off = 0;   /* bytes the CRC covers so far */

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= sizeof(tmp) ||
	    (size_t)snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= sizeof(dst)) {
		snprintf(err, errlen, "%s: path too long", dir);
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	/* Sparse: all-zero 4 KiB blocks (most of an idle guest's RAM) stay holes. */
	if (ftruncate(fd, (off_t)len) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	for (size_t off = 0; off < len;) {
		size_t n = len - off < 4096 ? len - off : 4096;
		if (block_zero(p + off, n)) {
			off += n;
			goto advanced;
		}
		/* Coalesce a run of non-zero blocks into one write. */
		size_t end = off + n;
		while (end < len && end - off < (8u << 20)) {
			size_t m = len - end < 4096 ? len - end : 4096;
			if (block_zero(p + end, m))
				break;
			end += m;
		}
		ssize_t w = pwrite(fd, p + off, end - off, (off_t)off);
		if (w <= 0) {
			rc = w < 0 ? -errno : -EIO;
			snprintf(err, errlen, "%s: %s", tmp, w < 0 ? strerror(errno) : "short write");
			goto out;
		}
		off += (size_t)w;
advanced:
		/* The CRC rides along this pass instead of reading the data again. */
		if (crc) {
			c = snap_crc32_extend(c, p + crc_off, off - crc_off);
			crc_off = off;
		}
	}
	if (crc)
		*crc = c;
	if (fsync(fd) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: fsync: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, dst) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", dst, strerror(errno));
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		fsync(dfd);
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (rc)
		unlink(tmp);
	return rc;
}
