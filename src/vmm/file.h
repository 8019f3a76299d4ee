/* Whole-file reads of user-named inputs (kernels, initrds, CPU templates,
 * config files): regular files only, size bounded before anything is read. */
#ifndef WAFER_VMM_FILE_H
#define WAFER_VMM_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Read path (at most max bytes) into a malloc'd buffer with a NUL after the
 * data. 0, or -errno with why set to a reason without the path: strerror,
 * "is a directory", "not a regular file", "empty file", "larger than N bytes"
 * (-EFBIG), or "file shrank while reading". */
int file_read_all(const char *path, uint64_t max, uint8_t **out, size_t *len,
		  char *why, size_t whylen);

#endif
