/* Guest RAM allocation and the bounds-checked guest-physical accessor. */
#include <errno.h>
#include <stdlib.h>
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
	m->dirty = NULL;   /* callers pass uninitialised structs */
	atomic_store(&m->dirty_on, false);
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

int gmem_map_file(struct guest_mem *m, int fd, uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	madvise(p, size, MADV_DONTDUMP);
	gmem_init(m, p, size);
	m->owned = 1;
	return 0;
}

int gmem_dirty_start(struct guest_mem *m)
{
	size_t n = gmem_bitmap_words(m) ? gmem_bitmap_words(m) : 1;
	if (!m->dirty) {
		m->dirty = calloc(n, sizeof(*m->dirty));
		if (!m->dirty)
			return -ENOMEM;
	} else {
		for (size_t i = 0; i < n; i++)
			atomic_store_explicit(&m->dirty[i], 0, memory_order_relaxed);
	}
	atomic_store(&m->dirty_on, true);
	return 0;
}

void gmem_dirty_stop(struct guest_mem *m)
{
	atomic_store(&m->dirty_on, false);
}

static void gmem_mark_offset(const struct guest_mem *m, uint64_t off, uint64_t len)
{
	if (!atomic_load_explicit(&m->dirty_on, memory_order_relaxed) || !len || off >= m->size)
		return;
	if (len > m->size - off)
		len = m->size - off;
	uint64_t first = off >> GMEM_PAGE_SHIFT, last = (off + len - 1) >> GMEM_PAGE_SHIFT;
	for (uint64_t pg = first; pg <= last; pg++)
		atomic_fetch_or_explicit(&m->dirty[pg / 64], 1ull << (pg % 64), memory_order_relaxed);
}

void gmem_mark_dirty(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	const uint8_t *p = atomic_load_explicit(&m->dirty_on, memory_order_relaxed) ?
			   gmem_ptr(m, gpa, len) : NULL;
	if (p)
		gmem_mark_offset(m, (uint64_t)(p - m->host), len);
}

void gmem_mark_dirty_host(const struct guest_mem *m, const void *p, size_t len)
{
	const uint8_t *b = p;
	if (!atomic_load_explicit(&m->dirty_on, memory_order_relaxed) || !m->host ||
	    b < m->host || b >= m->host + m->size)
		return;
	gmem_mark_offset(m, (uint64_t)(b - m->host), len);
}

void gmem_dirty_harvest(struct guest_mem *m, uint64_t *out)
{
	size_t n = gmem_bitmap_words(m);
	for (size_t i = 0; m->dirty && i < n; i++)
		out[i] |= atomic_exchange_explicit(&m->dirty[i], 0, memory_order_relaxed);
}

void gmem_free(struct guest_mem *m)
{
	gmem_dirty_stop(m);
	free((void *)m->dirty);
	m->dirty = NULL;
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
