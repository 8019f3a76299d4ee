/* Split virtqueue device side (virtio 1.2 section 2.7): ring validation, the
 * descriptor chain walker with indirect tables (2.7.5.3), used ring updates
 * and notification suppression (2.7.7, 2.7.10). The driver writes the rings
 * concurrently from other CPUs: every guest field is read once into a local
 * and only the local copy is validated and used. */
#include <errno.h>
#include <string.h>

#include "devices/virtio/queue.h"
#include "state/format.h"

#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

/* Chains the device accepts in total: used.len is 32 bits and no request
 * should ever need more. */
#define VIRTQ_MAX_CHAIN_BYTES 0xffffffffull

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Ring layout sizes (2.7): desc table, avail ring incl. used_event, used ring
 * incl. avail_event. */
static uint64_t desc_bytes(uint16_t size) { return 16ull * size; }
static uint64_t avail_bytes(uint16_t size) { return 6ull + 2ull * size; }
static uint64_t used_bytes(uint16_t size) { return 6ull + 8ull * size; }

/* Host views of the rings; virtq_init proved these ranges are RAM, and
 * guest RAM never moves, so NULL here only means "queue not initialised". */
static uint16_t *avail_field(const struct virtq *q, uint64_t off)
{
	return gmem_ptr(q->mem, q->avail_gpa + off, 2);
}

static uint8_t *used_base(const struct virtq *q)
{
	return gmem_ptr(q->mem, q->used_gpa, used_bytes(q->size));
}

static uint16_t *avail_event_field(const struct virtq *q)
{
	return gmem_ptr(q->mem, q->used_gpa + 4 + 8ull * q->size, 2);
}

/* The used ring is written by the VMM, not the vCPUs: migration must hear
 * of every store (after it is made) through the dirty log. */
static void used_mark_dirty(const struct virtq *q, uint64_t off, uint64_t len)
{
	gmem_mark_dirty(q->mem, q->used_gpa + off, len);
}

static void avail_event_publish(const struct virtq *q, uint16_t *ev)
{
	__atomic_store_n(ev, q->last_avail, __ATOMIC_RELEASE);
	used_mark_dirty(q, 4 + 8ull * q->size, 2);
}

int virtq_init(struct virtq *q, const struct guest_mem *mem)
{
	q->mem = mem;
	if (q->size == 0 || q->size > VIRTQ_MAX_SIZE || (q->size & (q->size - 1)))
		return -EINVAL;
	if ((q->desc_gpa & 15) || (q->avail_gpa & 1) || (q->used_gpa & 3))
		return -EINVAL;
	if (!gmem_ptr(mem, q->desc_gpa, desc_bytes(q->size)) ||
	    !gmem_ptr(mem, q->avail_gpa, avail_bytes(q->size)) ||
	    !gmem_ptr(mem, q->used_gpa, used_bytes(q->size)))
		return -EINVAL;
	return 0;
}

void virtq_reset(struct virtq *q)
{
	const struct guest_mem *mem = q->mem;
	memset(q, 0, sizeof(*q));
	q->mem = mem;
}

static uint16_t load_acquire16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static uint16_t load_relaxed16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* One copy of a descriptor out of guest memory; all checks use the copy. */
static void desc_fetch(const uint8_t *table, unsigned i, struct virtq_desc *d)
{
	memcpy(d, table + 16u * i, sizeof(*d));
	__atomic_signal_fence(__ATOMIC_SEQ_CST); /* keep the compiler from re-reading */
}

/* Add one buffer to the element. 0 or -EINVAL with *why set. */
static int elem_add(const struct virtq *q, struct virtq_elem *e, const struct virtq_desc *d,
		    uint64_t *total, const char **why)
{
	bool writable = d->flags & VIRTQ_DESC_F_WRITE;

	if (!writable && e->in_num) {
		*why = "device-readable buffer after a device-writable one";
		return -EINVAL;
	}
	if (d->len == 0)
		return 0; /* nothing to transfer; not worth a segment */
	void *p = gmem_ptr(q->mem, d->addr, d->len);
	if (!p) {
		*why = "buffer outside guest RAM";
		return -EINVAL;
	}
	if (e->out_num + e->in_num >= VIRTQ_MAX_SEGS) {
		*why = "too many segments in one chain";
		return -EINVAL;
	}
	*total += d->len;
	if (*total > VIRTQ_MAX_CHAIN_BYTES) {
		*why = "chain larger than 4 GiB";
		return -EINVAL;
	}
	struct iovec *iov = &e->iov[e->out_num + e->in_num];
	iov->iov_base = p;
	iov->iov_len = d->len;
	if (writable) {
		e->in_num++;
		e->in_len += d->len;
	} else {
		e->out_num++;
		e->out_len += d->len;
	}
	return 0;
}

/* Walk the chain starting at head. Main-table descriptors may be followed by
 * one indirect descriptor (2.7.5.3.2); the chain ends with the indirect
 * table because that descriptor must not have NEXT. */
static int chain_walk(struct virtq *q, uint16_t head, struct virtq_elem *e, const char **why)
{
	const uint8_t *table = gmem_ptr(q->mem, q->desc_gpa, desc_bytes(q->size));
	unsigned table_size = q->size, idx = head, visited = 0;
	bool in_indirect = false;
	uint64_t total = 0;
	struct virtq_desc d;

	if (!table) {
		*why = "descriptor table not in guest RAM";
		return -EINVAL;
	}
	e->head = head;
	e->out_num = e->in_num = 0;
	e->out_len = e->in_len = 0;

	for (;;) {
		/* A chain can visit each table entry at most once; more visits
		 * mean a loop. */
		if (++visited > table_size) {
			*why = in_indirect ? "loop in indirect descriptor table"
					   : "descriptor loop or chain longer than the queue";
			return -EINVAL;
		}
		desc_fetch(table, idx, &d);

		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!q->indirect) {
				*why = "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
				return -EINVAL;
			}
			if (in_indirect) {
				*why = "nested indirect descriptor";
				return -EINVAL;
			}
			if (d.flags & VIRTQ_DESC_F_NEXT) {
				*why = "indirect descriptor with NEXT set";
				return -EINVAL;
			}
			if (d.len == 0 || d.len % 16 || d.len / 16 > VIRTQ_MAX_SEGS) {
				*why = "bad indirect table length";
				return -EINVAL;
			}
			/* The WRITE flag on this descriptor is ignored (2.7.5.3.2). */
			table = gmem_ptr(q->mem, d.addr, d.len);
			if (!table) {
				*why = "indirect table outside guest RAM";
				return -EINVAL;
			}
			table_size = d.len / 16;
			idx = 0;
			visited = 0;
			in_indirect = true;
			continue;
		}

		int rc = elem_add(q, e, &d, &total, why);
		if (rc)
			return rc;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= table_size) {
			*why = "descriptor next index out of range";
			return -EINVAL;
		}
		idx = d.next;
	}
}

int virtq_pop(struct virtq *q, struct virtq_elem *e, const char **why)
{
	static const char *dummy;
	if (!why)
		why = &dummy;
	if (!q->ready || !q->size || !q->mem)
		return 0;

	uint16_t *avail_idx = avail_field(q, 2);
	if (!avail_idx) {
		*why = "avail ring not in guest RAM";
		return -EINVAL;
	}
	/* Acquire pairs with the driver's write barrier before it bumps idx:
	 * ring entries and descriptors below are read after this load. */
	uint16_t idx = load_acquire16(avail_idx);
	uint16_t pending = (uint16_t)(idx - q->last_avail);
	if (pending == 0)
		return 0;
	if (pending > q->size) {
		*why = "avail index jumped";
		return -EINVAL;
	}

	uint16_t *slot = avail_field(q, 4 + 2ull * (q->last_avail & (q->size - 1)));
	if (!slot) {
		*why = "avail ring not in guest RAM";
		return -EINVAL;
	}
	uint16_t head = load_relaxed16(slot);
	if (head >= q->size) {
		*why = "avail ring head out of range";
		return -EINVAL;
	}
	int rc = chain_walk(q, head, e, why);
	if (rc)
		return rc;

	q->last_avail++;
	if (q->event_idx) {
		/* avail_event: "kick me when you publish past what I consumed". */
		uint16_t *ev = avail_event_field(q);
		if (ev)
			avail_event_publish(q, ev);
	}
	return 1;
}

int virtq_fill(struct virtq *q, unsigned offset, uint16_t head, uint32_t len)
{
	uint8_t *used = q->mem && q->size ? used_base(q) : NULL;
	if (!used || head >= q->size || offset >= q->size)
		return -EINVAL;
	uint64_t off = 4 + 8ull * ((uint16_t)(q->used_idx + offset) & (q->size - 1));
	uint32_t id32 = head;
	memcpy(used + off, &id32, 4);
	memcpy(used + off + 4, &len, 4);
	used_mark_dirty(q, off, 8);
	return 0;
}

void virtq_flush(struct virtq *q, unsigned count)
{
	uint8_t *used = q->mem && q->size ? used_base(q) : NULL;
	if (!used)
		return;
	q->used_idx = (uint16_t)(q->used_idx + count);
	/* Release: the elements (and the data written into the buffers) become
	 * visible before the driver can see the new index. */
	__atomic_store_n((uint16_t *)(used + 2), q->used_idx, __ATOMIC_RELEASE);
	used_mark_dirty(q, 2, 2);
}

int virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	int rc = virtq_fill(q, 0, head, len);
	if (rc == 0)
		virtq_flush(q, 1);
	return rc;
}

/* vring_need_event from 2.7.10: did used_idx move past event since old? */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool virtq_need_notify(struct virtq *q)
{
	if (!q->size || !q->mem)
		return false;
	/* Order our used idx store before reading the driver's suppression
	 * state, or both sides can miss each other (store-load). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	uint16_t old = q->signalled_used, now = q->used_idx;
	bool valid = q->signalled_valid;
	q->signalled_used = now;
	q->signalled_valid = true;

	if (q->event_idx) {
		uint16_t *ev = avail_field(q, 4 + 2ull * q->size);
		if (!ev)
			return false;
		if (!valid)
			return true;
		return need_event(load_relaxed16(ev), now, old);
	}
	uint16_t *flags = avail_field(q, 0);
	if (!flags)
		return false;
	return !(load_relaxed16(flags) & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

bool virtq_has_work(struct virtq *q)
{
	if (!q->ready || !q->size || !q->mem)
		return false;
	uint16_t *avail_idx = avail_field(q, 2);
	if (!avail_idx)
		return false;
	if (q->event_idx) {
		uint16_t *ev = avail_event_field(q);
		if (!ev)
			return false;
		avail_event_publish(q, ev);
		/* The driver may have added buffers just before it saw the new
		 * avail_event; re-read idx after publishing it. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	return load_acquire16(avail_idx) != q->last_avail;
}

void virtq_unpop(struct virtq *q, unsigned n)
{
	q->last_avail = (uint16_t)(q->last_avail - n);
}

void virtq_save(const struct virtq *q, struct snap_buf *b)
{
	snap_buf_put_u16(b, q->size);
	snap_buf_put_u8(b, q->ready);
	snap_buf_put_u16(b, __atomic_load_n(&q->msix_vector, __ATOMIC_SEQ_CST));
	snap_buf_put_u64(b, q->desc_gpa);
	snap_buf_put_u64(b, q->avail_gpa);
	snap_buf_put_u64(b, q->used_gpa);
	snap_buf_put_u16(b, q->last_avail);
	snap_buf_put_u16(b, q->used_idx);
	snap_buf_put_u16(b, q->signalled_used);
	snap_buf_put_u8(b, q->signalled_valid);
}

int virtq_load(struct virtq *q, struct snap_cur *c, const struct guest_mem *mem)
{
	q->size = snap_cur_u16(c);
	uint8_t ready = snap_cur_u8(c);
	q->msix_vector = snap_cur_u16(c);
	q->desc_gpa = snap_cur_u64(c);
	q->avail_gpa = snap_cur_u64(c);
	q->used_gpa = snap_cur_u64(c);
	q->last_avail = snap_cur_u16(c);
	q->used_idx = snap_cur_u16(c);
	q->signalled_used = snap_cur_u16(c);
	uint8_t valid = snap_cur_u8(c);
	q->ready = ready;
	q->signalled_valid = valid;
	q->mem = mem;
	return c->err || ready > 1 || valid > 1 ? -EINVAL : 0;
}

void virtq_iov_mark_dirty(const struct guest_mem *m, const struct iovec *iov, unsigned n,
			  size_t len)
{
	for (unsigned i = 0; i < n && len; i++) {
		size_t seg = iov[i].iov_len < len ? iov[i].iov_len : len;
		gmem_mark_dirty_host(m, iov[i].iov_base, seg);
		len -= seg;
	}
}

/* Copy between a flat buffer and a chain's segments, from byte skip of the
 * segments on; bounded by both. */
static size_t virtq_iov_copy(const struct iovec *iov, unsigned n, size_t skip, uint8_t *buf,
			     size_t len, bool to_iov)
{
	size_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		size_t seg = iov[i].iov_len;
		if (skip >= seg) {
			skip -= seg;
			continue;
		}
		size_t chunk = seg - skip;
		if (chunk > len - done)
			chunk = len - done;
		uint8_t *g = (uint8_t *)iov[i].iov_base + skip;
		if (to_iov)
			memcpy(g, buf + done, chunk);
		else
			memcpy(buf + done, g, chunk);
		done += chunk;
		skip = 0;
	}
	return done;
}

size_t virtq_iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len)
{
	return virtq_iov_copy(iov, n, skip, buf, len, false);
}

size_t virtq_buf_to_iov(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len)
{
	/* The buffer is only read in this direction. */
	return virtq_iov_copy(iov, n, skip, (uint8_t *)(uintptr_t)buf, len, true);
}
