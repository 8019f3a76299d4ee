/* Parsing of command-line values into typed config (sizes, counts). Strings are
 * parsed here once, at the edge; nothing below re-parses them. */
#ifndef WAFER_VMM_PARSE_H
#define WAFER_VMM_PARSE_H

#include <stdint.h>

/* "512M", "2G", "1048576", "64k": bytes (K/M/G/T are binary, optional "iB"/"B").
 * 0 or -EINVAL (syntax) / -ERANGE (overflow). */
int parse_size(const char *s, uint64_t *out);
/* Decimal unsigned integer within [min, max]: 0, -EINVAL or -ERANGE. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Format bytes as "512 MiB" / "1.5 GiB" into buf. */
const char *format_size(uint64_t bytes, char *buf, unsigned len);

#endif
