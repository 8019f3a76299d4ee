/* The state container shared by snapshots (a file) and live migration (a
 * stream): a versioned header and named sections, each with its own version,
 * length and CRC-32 (header + payload). Values are little-endian and written field by field --
 * never a raw struct -- so the format does not depend on compiler layout.
 *
 * Writers append to a growing buffer; readers get a bounds-checked cursor
 * whose errors are sticky, so a loader reads every field and checks once at
 * the end (snap_cur_end). Nothing read from a snapshot is trusted. */
#ifndef WAFER_STATE_FORMAT_H
#define WAFER_STATE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_MAGIC          "WAFERSNP"   /* 8 bytes, no NUL */
#define SNAP_FORMAT_VERSION 1u
#define SNAP_NAME_MAX       16           /* section names, NUL-padded */
#define SNAP_SECTION_MAX    (64u << 20)  /* one section's payload */
#define SNAP_HEADER_SIZE    24           /* magic, version, flags, reserved */
#define SNAP_SECTION_HDR    36           /* name, instance, version, len, crc */

/* A growing byte buffer. Allocation failure is sticky (err = -ENOMEM). */
struct snap_buf {
	uint8_t *p;
	size_t len, cap;
	int err;
};

void snap_buf_init(struct snap_buf *b);
void snap_buf_free(struct snap_buf *b);
void snap_buf_put(struct snap_buf *b, const void *data, size_t len);
void snap_buf_put_u8(struct snap_buf *b, uint8_t v);
void snap_buf_put_u16(struct snap_buf *b, uint16_t v);
void snap_buf_put_u32(struct snap_buf *b, uint32_t v);
void snap_buf_put_u64(struct snap_buf *b, uint64_t v);
/* A string: u32 length + bytes (no NUL). NULL is stored as "". */
void snap_buf_put_str(struct snap_buf *b, const char *s);

/* The file/stream header (magic + SNAP_FORMAT_VERSION). */
void snap_put_header(struct snap_buf *b);
/* Open a section; returns a token for snap_section_end, which fills in the
 * payload length and CRC. Sections do not nest. */
size_t snap_section_begin(struct snap_buf *b, const char *name, uint32_t instance,
			  uint32_t version);
void snap_section_end(struct snap_buf *b, size_t token);
/* The closing "end" section; a state without it is truncated. */
void snap_put_end(struct snap_buf *b);

/* A cursor over one section's payload. Reads past the end set err and
 * return zeros. */
struct snap_cur {
	const uint8_t *p;
	size_t len, off;
	int err;
};

void snap_cur_init(struct snap_cur *c, const void *p, size_t len);
uint8_t snap_cur_u8(struct snap_cur *c);
uint16_t snap_cur_u16(struct snap_cur *c);
uint32_t snap_cur_u32(struct snap_cur *c);
uint64_t snap_cur_u64(struct snap_cur *c);
void snap_cur_get(struct snap_cur *c, void *out, size_t len);
/* A string into out (NUL-terminated); longer than size - 1 or containing a
 * NUL sets err. */
void snap_cur_str(struct snap_cur *c, char *out, size_t size);
/* Pointer to the next len bytes (NULL and err set if they are not there). */
const void *snap_cur_take(struct snap_cur *c, size_t len);
/* 0 if every byte was consumed without error, else -EINVAL. */
int snap_cur_end(const struct snap_cur *c);
/* Bytes left. */
static inline size_t snap_cur_left(const struct snap_cur *c) { return c->len - c->off; }

/* One parsed section. */
struct snap_section {
	char name[SNAP_NAME_MAX + 1];
	uint32_t instance, version;
	const uint8_t *data;
	size_t len;
};

/* A whole state (file contents or a received stream), validated when
 * opened: magic, format version, every section header in bounds, every CRC,
 * names printable and NUL-padded, the "end" section last. */
struct snap_reader {
	const uint8_t *p;
	size_t len;
	unsigned nsections;
};

/* 0, or -EINVAL / -EPROTO (other version) with a one-line reason in err. */
int snap_reader_open(struct snap_reader *r, const void *data, size_t len,
		     char *err, size_t errlen);
/* Find a section by name and instance: 0 and *s filled, or -ENOENT. */
int snap_reader_find(const struct snap_reader *r, const char *name, uint32_t instance,
		     struct snap_section *s);
/* Iterate: *pos starts at 0; 1 and *s filled, 0 at the end. */
int snap_reader_next(const struct snap_reader *r, size_t *pos, struct snap_section *s);

/* Parse one section header + payload at data[0..len) (stream use): bytes
 * consumed, 0 if more bytes are needed, -EINVAL (err filled) if malformed or
 * the CRC does not match. */
long snap_section_parse(const uint8_t *data, size_t len, struct snap_section *s,
			char *err, size_t errlen);

/* Write len bytes to dir/name atomically: dir/.name.tmp, fsync, rename,
 * fsync(dir); all-zero 4 KiB blocks stay holes. crc (may be NULL) gets the
 * CRC-32 of all len bytes, computed in the same pass. 0 or -errno with err
 * naming the file. */
int snap_write_atomic(const char *dir, const char *name, const void *data, size_t len,
		      uint32_t *crc, char *err, size_t errlen);

uint32_t snap_crc32(const void *data, size_t len);
/* Continue a CRC-32 over more data (start from snap_crc32(NULL, 0)). */
uint32_t snap_crc32_extend(uint32_t crc, const void *data, size_t len);
/* The CRC-32 of the first size bytes of the file fd (the same value as
 * snap_crc32 over them): only the data the file holds is read; its holes
 * are zeros, added arithmetically (zlib's crc32_combine). 0, -errno, or
 * -EBADMSG when the file is shorter than size. */
int snap_crc32_file(int fd, uint64_t size, uint32_t *crc);

#endif
