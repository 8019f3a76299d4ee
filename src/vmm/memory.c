/* Guest RAM allocation and the bounds-checked guest-physical accessor. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/memory.h"
#include "arch/x86/layout.h"

void gmem_init(struct guest_mem *m, void *host, uint64_t size)
{
	m->host = host;
	m->size = size;
	m->low_size = size < MEM_HOLE_START ? size : MEM_HOLE_START;
	m->high_size = size - m->low_size;
	m->owned = 0;
}

int gmem_alloc(struct guest_mem *m, uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* Guest RAM is never part of a core dump of the VMM and may use THP. */
	madvise(p, size, MADV_DONTDUMP);
	madvise(p, size, MADV_HUGEPAGE);
	gmem_init(m, p, size);
	m->owned = 1;
	return 0;
}

void gmem_free(struct guest_mem *m)
{
	if (m->owned && m->host)
		munmap(m->host, m->size);
	m->host = NULL;
	m->owned = 0;
}

void *gmem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	if (!m->host)
		return NULL;
	if (gpa < m->low_size) {
		if (len > m->low_size - gpa)
			return NULL;
		return m->host + gpa;
	}
	if (gpa >= MEM_HIGH_START && gpa - MEM_HIGH_START < m->high_size) {
		uint64_t off = gpa - MEM_HIGH_START;
		if (len > m->high_size - off)
			return NULL;
		return m->host + m->low_size + off;
	}
	return NULL;
}

int gmem_read(const struct guest_mem *m, uint64_t gpa, void *buf, uint64_t len)
{
	void *p = gmem_ptr(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(buf, p, len);
	return 0;
}

int gmem_write(const struct guest_mem *m, uint64_t gpa, const void *buf, uint64_t len)
{
	void *p = gmem_ptr(m, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, buf, len);
	return 0;
}
