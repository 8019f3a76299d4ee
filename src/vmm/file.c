/* Bounded whole-file reads (see file.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/file.h"

int file_read_all(const char *path, uint64_t max, uint8_t **out, size_t *len,
		  char *why, size_t whylen)
{
	uint8_t *buf = NULL;
	struct stat st;
	size_t done = 0;
	int fd, rc;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(why, whylen, "%s", strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(why, whylen, "%s", strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		snprintf(why, whylen, "is a directory");
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(why, whylen, "not a regular file");
		goto out;
	}
	if (st.st_size == 0) {
		rc = -EINVAL;
		snprintf(why, whylen, "empty file");
		goto out;
	}
	if ((uint64_t)st.st_size > max || (uint64_t)st.st_size >= SIZE_MAX) {
		rc = -EFBIG;
		snprintf(why, whylen, "larger than %llu bytes (%lld)", (unsigned long long)max,
			 (long long)st.st_size);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		snprintf(why, whylen, "cannot allocate %lld bytes", (long long)st.st_size);
		goto out;
	}
	/* Read no more than fstat promised: a file growing under us is cut. */
	while (done < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + done, (size_t)st.st_size - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			snprintf(why, whylen, "read: %s", strerror(errno));
			goto out;
		}
		if (r == 0) {
			rc = -EIO;
			snprintf(why, whylen, "file shrank while reading (%zu of %lld bytes)",
				 done, (long long)st.st_size);
			goto out;
		}
		done += (size_t)r;
	}
	buf[done] = '\0';
	*out = buf;
	*len = done;
	buf = NULL;
	rc = 0;
out:
	close(fd);
	free(buf);
	return rc;
}
