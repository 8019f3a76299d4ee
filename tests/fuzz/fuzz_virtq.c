/* libFuzzer target: the split-virtqueue walker (virtio 1.2 section 2.7) over
 * guest RAM the fuzzer writes -- descriptor table, avail ring, indirect tables
 * and buffers -- popping until empty or malformed and returning every chain.
 * RAM is an exact-size malloc so ASan catches any access outside it.
 * Input: size_log2 u8, flags u8, last_avail u16, used_idx u16,
 * [desc u16, avail u16, used u16 if flags & 4], then the RAM image. */
#include <stdint.h>
#include <stdlib.h>

#include "devices/virtio/queue.h"
#include "fuzz.h"

#define RAM_SIZE (64u << 10)

static struct virtq_elem elem;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct guest_mem mem;
	struct virtq q = { 0 };
	uint8_t scratch[512];

	q.size = (uint16_t)(1u << (fuzz_u8(&in) % 11));
	uint8_t flags = fuzz_u8(&in);
	q.event_idx = flags & 1;
	q.indirect = flags & 2;
	q.last_avail = fuzz_u16(&in);
	q.used_idx = fuzz_u16(&in);
	q.signalled_used = q.used_idx;
	q.signalled_valid = flags & 16;
	if (flags & 4) {
		q.desc_gpa = fuzz_u16(&in);
		q.avail_gpa = fuzz_u16(&in);
		q.used_gpa = fuzz_u16(&in);
	} else {
		fuzz_ring_layout(0, q.size, &q.desc_gpa, &q.avail_gpa, &q.used_gpa);
	}

	uint8_t *ram = malloc(RAM_SIZE);
	if (!ram)
		return 0;
	fuzz_fill(&in, ram, RAM_SIZE);
	gmem_init(&mem, ram, RAM_SIZE);
	if (virtq_init(&q, &mem))
		goto out;
	q.ready = true;

	virtq_has_work(&q);
	unsigned popped = 0;
	for (unsigned i = 0; i < 2u * VIRTQ_MAX_SIZE; i++) {
		const char *why = NULL;
		int rc = virtq_pop(&q, &elem, &why);
		if (rc <= 0)
			break;
		/* Touch every segment the walker handed out: both directions. */
		size_t got = virtq_iov_to_buf(elem.iov, elem.out_num, 0, scratch, sizeof(scratch));
		size_t put = virtq_buf_to_iov(elem.iov + elem.out_num, elem.in_num, got / 2,
					      scratch, sizeof(scratch));
		if (flags & 8) {
			virtq_fill(&q, popped % 4, elem.head, (uint32_t)put);
			if (++popped % 4 == 0)
				virtq_flush(&q, 4);
		} else {
			virtq_push(&q, elem.head, (uint32_t)(elem.in_len < put ? put : elem.in_len));
		}
		virtq_need_notify(&q);
	}
	if ((flags & 8) && popped % 4)
		virtq_flush(&q, popped % 4);
	virtq_need_notify(&q);
	virtq_has_work(&q);
out:
	free(ram);
	return 0;
}
