/* Host-side decompression of a bzImage payload (boot.rst "payload_offset":
 * format by magic number, decompressed size in the payload's last 4 bytes). */
#ifndef WAFER_ARCH_X86_DECOMPRESS_H
#define WAFER_ARCH_X86_DECOMPRESS_H

#include <stddef.h>
#include <stdint.h>

/* Upper bound on anything we inflate, whatever the image claims. */
#define DECOMPRESS_CAP (512u << 20)

enum decompress_format {
	DECOMPRESS_UNKNOWN,
	DECOMPRESS_GZIP,
	DECOMPRESS_XZ,
	DECOMPRESS_LZMA,
	DECOMPRESS_ZSTD,
	DECOMPRESS_LZ4,    /* lz4 legacy frame, as the kernel's "lz4 -l" writes it */
	DECOMPRESS_BZIP2,  /* recognised, not supported */
	DECOMPRESS_LZO,    /* recognised, not supported */
};

enum decompress_format decompress_detect(const uint8_t *buf, size_t len);
const char *decompress_format_name(enum decompress_format fmt);

/* Decompress a whole bzImage payload into a malloc'd buffer of exactly the
 * size its trailing 4-byte little-endian size field gives; that size must be
 * at most cap (and DECOMPRESS_CAP). Returns 0, -ENOTSUP (bzip2, lzo, unknown:
 * the caller falls back), -E2BIG (size field over the cap, or the stream
 * produces more than it), -EINVAL (corrupt or truncated stream) or -ENOMEM.
 * err gets one sentence on failure; *fmt is set whenever the magic was read. */
int decompress_payload(const uint8_t *in, size_t len, size_t cap,
		       uint8_t **out, size_t *out_len, enum decompress_format *fmt,
		       char *err, size_t errlen);

#endif
