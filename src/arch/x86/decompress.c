/* Host-side bzImage payload decompression (boot.rst "payload_offset"): gzip,
 * xz/lzma, zstd via their libraries, lz4 legacy frames via liblz4; output
 * is bounded by the payload's (capped) size field, whatever the stream says. */
#include <errno.h>
#include <limits.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define ZLIB_CONST
#include <lz4.h>
#include <zlib.h>
#include <zstd.h>

#include "arch/x86/decompress.h"

/* Bound decoder state too, not only output: an xz/lzma header can ask for a
 * 4 GiB dictionary and a zstd frame for a 2 GiB window. 128 MiB covers the
 * kernel's own settings (xz dict=32MiB, zstd -22 --ultra window 2^27). */
#define LZMA_MEMLIMIT      (128u << 20)
#define ZSTD_WINDOWLOG_MAX 27

#define LZ4_LEGACY_MAGIC   0x184C2102u
#define LZ4_LEGACY_BLOCK   (8 << 20)   /* decompressed size of a legacy-frame block */

static const struct {
	enum decompress_format fmt;
	uint8_t magic[6];
	size_t magic_len;
} magics[] = {
	{ DECOMPRESS_GZIP,  { 0x1f, 0x8b }, 2 },
	{ DECOMPRESS_XZ,    { 0xfd, '7', 'z', 'X', 'Z', 0x00 }, 6 },
	{ DECOMPRESS_LZMA,  { 0x5d, 0x00, 0x00 }, 3 },
	{ DECOMPRESS_ZSTD,  { 0x28, 0xb5, 0x2f, 0xfd }, 4 },
	{ DECOMPRESS_LZ4,   { 0x02, 0x21, 0x4c, 0x18 }, 4 },
	{ DECOMPRESS_BZIP2, { 'B', 'Z', 'h' }, 3 },
	{ DECOMPRESS_LZO,   { 0x89, 'L', 'Z', 'O', 0x00 }, 5 },
};

enum decompress_format decompress_detect(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
		if (len >= magics[i].magic_len &&
		    !memcmp(buf, magics[i].magic, magics[i].magic_len))
			return magics[i].fmt;
	}
	return DECOMPRESS_UNKNOWN;
}

const char *decompress_format_name(enum decompress_format fmt)
{
	switch (fmt) {
	case DECOMPRESS_GZIP:  return "gzip";
	case DECOMPRESS_XZ:    return "xz";
	case DECOMPRESS_LZMA:  return "lzma";
	case DECOMPRESS_ZSTD:  return "zstd";
	case DECOMPRESS_LZ4:   return "lz4";
	case DECOMPRESS_BZIP2: return "bzip2";
	case DECOMPRESS_LZO:   return "lzo";
	case DECOMPRESS_UNKNOWN: break;
	}
	return "unknown";
}

/* Each decoder fills out[0, out_size) and reports *produced; it returns 0 at
 * the end of the stream, -E2BIG when out is full before the end, -EINVAL
 * (with err) for corrupt or truncated input, -ENOMEM. */

static int decode_gzip(const uint8_t *in, size_t len, uint8_t *out, size_t out_size,
		       size_t *produced, char *err, size_t errlen)
{
	z_stream zs;
	int r, rc;

	if (len > UINT_MAX || out_size > UINT_MAX)
		return -E2BIG;
	memset(&zs, 0, sizeof(zs));
	/* 16 + MAX_WBITS: gzip wrapper only, with its CRC and ISIZE checked. */
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	zs.next_in = in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)out_size;
	r = inflate(&zs, Z_FINISH);
	*produced = zs.total_out;
	if (r == Z_STREAM_END) {
		rc = 0;
	} else if (zs.avail_out == 0) {
		rc = -E2BIG;
	} else {
		snprintf(err, errlen, "gzip: %s", zs.msg ? zs.msg : "truncated stream");
		rc = -EINVAL;
	}
	inflateEnd(&zs);
	return rc;
}

static int decode_lzma(const uint8_t *in, size_t len, uint8_t *out, size_t out_size,
		       size_t *produced, int xz, char *err, size_t errlen)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret r;
	int rc;

	r = xz ? lzma_stream_decoder(&s, LZMA_MEMLIMIT, 0)
	       : lzma_alone_decoder(&s, LZMA_MEMLIMIT);
	if (r != LZMA_OK)
		return -ENOMEM;
	s.next_in = in;
	s.avail_in = len;
	s.next_out = out;
	s.avail_out = out_size;
	/* liblzma returns LZMA_BUF_ERROR rather than looping without progress. */
	do
		r = lzma_code(&s, LZMA_FINISH);
	while (r == LZMA_OK && s.avail_out > 0);
	*produced = out_size - s.avail_out;
	if (r == LZMA_STREAM_END) {
		rc = 0;
	} else if (s.avail_out == 0) {
		rc = -E2BIG;
	} else {
		const char *why = r == LZMA_MEMLIMIT_ERROR ? "needs more than 128 MiB of decoder memory"
				: r == LZMA_FORMAT_ERROR ? "bad header"
				: r == LZMA_OPTIONS_ERROR ? "unsupported options"
				: r == LZMA_DATA_ERROR ? "corrupt data"
				: r == LZMA_BUF_ERROR ? "truncated stream"
				: "decoder error";
		snprintf(err, errlen, "%s: %s", xz ? "xz" : "lzma", why);
		rc = -EINVAL;
	}
	lzma_end(&s);
	return rc;
}

static int decode_zstd(const uint8_t *in, size_t len, uint8_t *out, size_t out_size,
		       size_t *produced, char *err, size_t errlen)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer ib = { in, len, 0 };
	ZSTD_outBuffer ob = { out, out_size, 0 };
	int rc;

	if (!d)
		return -ENOMEM;
	if (ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, ZSTD_WINDOWLOG_MAX))) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		size_t in_before = ib.pos, out_before = ob.pos;
		size_t r = ZSTD_decompressStream(d, &ob, &ib);

		if (ZSTD_isError(r)) {
			snprintf(err, errlen, "zstd: %s", ZSTD_getErrorName(r));
			rc = -EINVAL;
			break;
		}
		if (r == 0) {          /* frame complete; the size field follows */
			rc = 0;
			break;
		}
		if (ob.pos == ob.size) {
			rc = -E2BIG;
			break;
		}
		if (ib.pos == ib.size || (ib.pos == in_before && ob.pos == out_before)) {
			snprintf(err, errlen, "zstd: truncated stream");
			rc = -EINVAL;
			break;
		}
	}
	*produced = ob.pos;
out:
	ZSTD_freeDCtx(d);
	return rc;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Legacy frame: magic, then (le32 compressed size, block)*. The kernel appends
 * its size field after the last block, so the caller passes len without it. */
static int decode_lz4(const uint8_t *in, size_t len, uint8_t *out, size_t out_size,
		      size_t *produced, char *err, size_t errlen)
{
	size_t pos = 4, o = 0;
	int rc = 0;
	uint8_t *scratch = malloc(LZ4_LEGACY_BLOCK);

	if (!scratch) {
		snprintf(err, errlen, "lz4: out of memory");
		return -ENOMEM;
	}

	while (pos < len) {
		uint32_t bsize;

		if (len - pos < 4) {
			snprintf(err, errlen, "lz4: truncated block header at offset %zu", pos);
			rc = -EINVAL;
			break;
		}
		bsize = le32(in + pos);
		pos += 4;
		if (bsize == LZ4_LEGACY_MAGIC)   /* concatenated legacy frames */
			continue;
		if (bsize == 0 || bsize > len - pos) {
			snprintf(err, errlen, "lz4: block of %u bytes at offset %zu runs past the payload",
				 bsize, pos - 4);
			rc = -EINVAL;
			break;
		}
		/* Legacy-frame blocks are independent LZ4 blocks of at most
		 * 8 MiB decompressed; decoding into a block-sized scratch buffer
		 * lets liblz4 bound every write and tells a corrupt block from
		 * output that exceeds what the caller allows. */
		if (bsize > LZ4_COMPRESSBOUND(LZ4_LEGACY_BLOCK)) {
			snprintf(err, errlen, "lz4: block of %u bytes is larger than a legacy block", bsize);
			rc = -EINVAL;
			break;
		}
		int n = LZ4_decompress_safe((const char *)in + pos, (char *)scratch, (int)bsize,
					    LZ4_LEGACY_BLOCK);
		if (n < 0) {
			snprintf(err, errlen, "lz4: corrupt block at offset %zu", pos - 4);
			rc = -EINVAL;
			break;
		}
		if ((size_t)n > out_size - o) {
			rc = -E2BIG;
			break;
		}
		memcpy(out + o, scratch, (size_t)n);
		o += (size_t)n;
		pos += bsize;
	}
	free(scratch);
	*produced = o;
	return rc;
}

int decompress_payload(const uint8_t *in, size_t len, size_t cap,
		       uint8_t **out, size_t *out_len, enum decompress_format *fmtp,
		       char *err, size_t errlen)
{
	enum decompress_format fmt = decompress_detect(in, len);
	const char *name = decompress_format_name(fmt);
	uint8_t *buf = NULL;
	size_t produced = 0;
	uint32_t expected;
	int rc;

	*out = NULL;
	*out_len = 0;
	if (fmtp)
		*fmtp = fmt;
	switch (fmt) {
	case DECOMPRESS_BZIP2:
	case DECOMPRESS_LZO:
	case DECOMPRESS_UNKNOWN:
		snprintf(err, errlen, "%s payload: no host decompressor", name);
		rc = -ENOTSUP;
		goto out;
	default:
		break;
	}
	if (len < 8) {
		snprintf(err, errlen, "%s payload of %zu bytes is too short", name, len);
		rc = -EINVAL;
		goto out;
	}
	if (cap > DECOMPRESS_CAP)
		cap = DECOMPRESS_CAP;
	/* gzip's ISIZE or the size the kernel build appends to other formats. */
	expected = le32(in + len - 4);
	if (expected == 0) {
		snprintf(err, errlen, "%s payload: size field is 0", name);
		rc = -EINVAL;
		goto out;
	}
	if (expected > cap) {
		snprintf(err, errlen, "%s payload: size field says %u bytes, limit is %zu",
			 name, expected, cap);
		rc = -E2BIG;
		goto out;
	}
	/* One spare byte tells "exactly the size field" from "more than it". */
	buf = malloc((size_t)expected + 1);
	if (!buf) {
		snprintf(err, errlen, "%s payload: cannot allocate %u bytes", name, expected);
		rc = -ENOMEM;
		goto out;
	}
	switch (fmt) {
	case DECOMPRESS_GZIP:
		rc = decode_gzip(in, len, buf, (size_t)expected + 1, &produced, err, errlen);
		break;
	case DECOMPRESS_XZ:
	case DECOMPRESS_LZMA:
		rc = decode_lzma(in, len, buf, (size_t)expected + 1, &produced,
				 fmt == DECOMPRESS_XZ, err, errlen);
		break;
	case DECOMPRESS_ZSTD:
		rc = decode_zstd(in, len, buf, (size_t)expected + 1, &produced, err, errlen);
		break;
	case DECOMPRESS_LZ4:
		rc = decode_lz4(in, len - 4, buf, (size_t)expected + 1, &produced, err, errlen);
		break;
	default:
		rc = -ENOTSUP;
		break;
	}
	if (rc == 0 && produced > expected)
		rc = -E2BIG;
	if (rc == -E2BIG) {
		snprintf(err, errlen, "%s payload decompresses to more than the %u bytes its size field gives",
			 name, expected);
	} else if (rc == -ENOMEM) {
		snprintf(err, errlen, "%s payload: out of memory for the decoder", name);
	} else if (rc == 0 && produced != expected) {
		snprintf(err, errlen, "%s payload decompressed to %zu bytes, size field says %u",
			 name, produced, expected);
		rc = -EINVAL;
	}
	if (rc)
		goto out;
	*out = buf;
	*out_len = produced;
	buf = NULL;
out:
	free(buf);
	return rc;
}
