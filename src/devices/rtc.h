/* MC146818 CMOS real-time clock model (devices/rtc.c): the index register and
 * the 128 bytes of CMOS storage. Time of day comes from the host clock at
 * each read, so it is not state. KVM-independent. */
#ifndef WAFER_DEVICES_RTC_H
#define WAFER_DEVICES_RTC_H

#include <pthread.h>
#include <stdint.h>

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128];
};

void rtc_init(struct rtc *r);

/* Snapshot payload (section "rtc"): index, CMOS bytes. */
#define RTC_STATE_VERSION 1
struct snap_buf;
struct snap_cur;
int rtc_save(struct rtc *r, struct snap_buf *b);
/* All or nothing: -EINVAL leaves r unchanged. */
int rtc_load(struct rtc *r, struct snap_cur *c);

#endif
