/* MC146818 CMOS real-time clock at ports 0x70/0x71: time of day from the host
 * clock (UTC, BCD, 24-hour) read at each access, status registers A-D, and
 * 128 bytes of CMOS storage. No alarm or periodic interrupt. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arch/x86/layout.h"
#include "devices/rtc.h"
#include "state/devices.h"
#include "vmm/vm.h"

static uint8_t rtc_bcd(int v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t rtc_time_reg(uint8_t index)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	switch (index) {
	case 0x00: return rtc_bcd(tm.tm_sec);
	case 0x02: return rtc_bcd(tm.tm_min);
	case 0x04: return rtc_bcd(tm.tm_hour);
	case 0x06: return rtc_bcd(tm.tm_wday + 1);
	case 0x07: return rtc_bcd(tm.tm_mday);
	case 0x08: return rtc_bcd(tm.tm_mon + 1);
	case 0x09: return rtc_bcd(tm.tm_year % 100);
	case 0x32: return rtc_bcd((1900 + tm.tm_year) / 100);
	default: return 0;
	}
}

static void rtc_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
	struct rtc *r = opaque;
	(void)size;
	if (offset == 0) {
		data[0] = 0xff; /* index port is write-only */
		return;
	}
	pthread_mutex_lock(&r->lock);
	switch (r->index) {
	case 0x00: case 0x02: case 0x04: case 0x06: case 0x07: case 0x08: case 0x09: case 0x32:
		data[0] = rtc_time_reg(r->index);
		break;
	case 0x0a:
		data[0] = 0x26; /* 32.768 kHz divider, 1024 Hz rate, update never in progress */
		break;
	case 0x0b:
		data[0] = 0x02; /* 24-hour mode, BCD, no interrupts */
		break;
	case 0x0c:
		data[0] = 0x00; /* no interrupt flags */
		break;
	case 0x0d:
		data[0] = 0x80; /* valid RAM and time */
		break;
	default:
		data[0] = r->cmos[r->index];
		break;
	}
	pthread_mutex_unlock(&r->lock);
}

static void rtc_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
	struct rtc *r = opaque;
	(void)size;
	pthread_mutex_lock(&r->lock);
	if (offset == 0) {
		r->index = data[0] & 0x7f; /* bit 7 is the NMI mask */
	} else if (r->index > 0x0d && r->index != 0x32) {
		/* Time writes are ignored: the guest clock follows the host. */
		r->cmos[r->index] = data[0];
	}
	pthread_mutex_unlock(&r->lock);
}

static const struct bus_ops rtc_ops = { .read = rtc_read, .write = rtc_write };
static struct rtc *rtc_dev;

void rtc_init(struct rtc *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
}

int rtc_save(struct rtc *r, struct snap_buf *b)
{
	pthread_mutex_lock(&r->lock);
	snap_buf_put_u8(b, r->index);
	snap_buf_put(b, r->cmos, sizeof(r->cmos));
	pthread_mutex_unlock(&r->lock);
	return b->err;
}

int rtc_load(struct rtc *r, struct snap_cur *c)
{
	uint8_t index = snap_cur_u8(c), cmos[sizeof(r->cmos)];

	snap_cur_get(c, cmos, sizeof(cmos));
	if (snap_cur_end(c) || index >= sizeof(cmos))
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	r->index = index;
	memcpy(r->cmos, cmos, sizeof(cmos));
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static int rtc_create(struct vm *vm)
{
	struct rtc *r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	rtc_init(r);
	int rc = bus_register(&vm->pio, PORT_RTC_INDEX, 2, &rtc_ops, r, "rtc");
	if (rc) {
		free(r);
		return rc;
	}
	rtc_dev = r;
	return 0;
}

static void rtc_destroy(struct vm *vm)
{
	(void)vm;
	if (rtc_dev)
		pthread_mutex_destroy(&rtc_dev->lock);
	free(rtc_dev);
	rtc_dev = NULL;
}

STATE_SECTION_HOOKS(rtc, "rtc", RTC_STATE_VERSION, rtc_dev)

static const struct device_desc rtc_device = {
	.name = "rtc",
	.create = rtc_create,
	.destroy = rtc_destroy,
	.save = rtc_state_save,
	.load = rtc_state_load,
};
DEVICE_REGISTER(rtc_device);
