/* Test guest: virtio-blk (virtio 1.2 section 5.2). Reports capacity, sector 0
 * (FNV-1a, first bytes) and the GET_ID serial; writes, flushes and reads back
 * a pattern in sector 1, which check-blk.sh then checks in the image. */
#include <stddef.h>
#include <stdint.h>

#include "pvh.h"
#include "serial.h"
#include "string.h"
#include "virtio.h"

#define VIRTIO_BLK_F_RO    5
#define VIRTIO_BLK_F_FLUSH 9

#define VIRTIO_BLK_T_IN     0
#define VIRTIO_BLK_T_OUT    1
#define VIRTIO_BLK_T_FLUSH  4
#define VIRTIO_BLK_T_GET_ID 8

#define VIRTIO_BLK_S_OK 0

#define SECTOR 512
#define BLK_ID_BYTES 20
#define PATTERN "WAFER-BLK-TEST"     /* 14 bytes + 2 hex digits = 16 */

struct blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

static struct virtio_dev blk;
static struct virtq vq;
static struct blk_req_hdr hdr;
static uint8_t status;
static uint8_t rbuf[SECTOR], wbuf[SECTOR];
static char id[BLK_ID_BYTES + 1];

/* One request: header, optional data (to or from the device), status byte.
 * 0 or -1 (message printed). */
static int blk_request(uint32_t type, uint64_t sector, void *data, uint32_t len)
{
	struct virtq_buf out[2] = { { &hdr, sizeof(hdr) } };
	struct virtq_buf in[2];
	unsigned n_out = 1, n_in = 0;
	int n;

	hdr = (struct blk_req_hdr){ .type = type, .sector = sector };
	status = 0xff;
	if (data && type == VIRTIO_BLK_T_OUT)
		out[n_out++] = (struct virtq_buf){ data, len };
	else if (data)
		in[n_in++] = (struct virtq_buf){ data, len };
	in[n_in++] = (struct virtq_buf){ &status, 1 };
	n = virtq_transfer(&vq, out, n_out, in, n_in);
	if (n < 0 || status != VIRTIO_BLK_S_OK) {
		printf("blk: FAIL: request type %u sector %lu: used len %d status %u\n",
		       type, (unsigned long)sector, n, status);
		return -1;
	}
	return 0;
}

static uint32_t fnv1a(const uint8_t *p, unsigned n)
{
	uint32_t h = 2166136261u;

	for (unsigned i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

int guest_main(struct hvm_start_info *si)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t capacity;

	(void)si;
	if (virtio_find(VIRTIO_ID_BLK, 0, &blk) ||
	    virtio_start(&blk, VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_RO)) ||
	    virtq_setup(&blk, &vq, 0))
		return 1;
	virtio_driver_ok(&blk);
	virtio_print(&blk, "blk");

	capacity = virtio_cfg_read64(&blk, 0);
	printf("blk capacity %lu sectors\n", (unsigned long)capacity);
	if (capacity < 2) {
		printf("blk: FAIL: need at least 2 sectors\n");
		return 1;
	}
	if (blk.features & VIRTIO_BIT(VIRTIO_BLK_F_RO)) {
		printf("blk: FAIL: device is read-only\n");
		return 1;
	}

	if (blk_request(VIRTIO_BLK_T_IN, 0, rbuf, SECTOR))
		return 1;
	printf("blk sector0 fnv1a=0x%08x first=", fnv1a(rbuf, SECTOR));
	for (unsigned i = 0; i < 16; i++)
		printf("%02x", rbuf[i]);
	printf("\n");

	for (unsigned r = 0; r < SECTOR / 16; r++) {
		memcpy(wbuf + 16 * r, PATTERN, 14);
		wbuf[16 * r + 14] = hex[r >> 4];
		wbuf[16 * r + 15] = hex[r & 15];
	}
	if (blk_request(VIRTIO_BLK_T_OUT, 1, wbuf, SECTOR))
		return 1;
	if (blk.features & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH)) {
		if (blk_request(VIRTIO_BLK_T_FLUSH, 0, NULL, 0))
			return 1;
		printf("blk flush ok\n");
	} else {
		printf("blk flush not offered\n");
	}
	memset(rbuf, 0, SECTOR);
	if (blk_request(VIRTIO_BLK_T_IN, 1, rbuf, SECTOR))
		return 1;
	if (memcmp(rbuf, wbuf, SECTOR)) {
		printf("blk: FAIL: sector 1 read back differs\n");
		return 1;
	}
	printf("blk write+readback ok\n");

	/* 5.2.6: the ID is up to 20 bytes, NUL-terminated only when shorter. */
	if (blk_request(VIRTIO_BLK_T_GET_ID, 0, id, BLK_ID_BYTES))
		return 1;
	id[BLK_ID_BYTES] = 0;
	printf("blk serial \"%s\"\n", id);
	printf("blk ok\n");
	return 0;
}
