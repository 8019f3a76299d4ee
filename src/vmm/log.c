/* Levelled logging to stderr, one line per message, prefixed "wafer: ". */
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vmm/log.h"

enum log_level log_threshold = LOG_WARN;
enum log_format log_format = LOG_FORMAT_TEXT;
static char log_vm[80];

void log_set_vm_name(const char *name)
{
	snprintf(log_vm, sizeof(log_vm), "%s", name ? name : "");
}

static __thread char last_error[1024];

const char *log_last_error(void)
{
	return last_error;
}

void log_clear_last_error(void)
{
	last_error[0] = '\0';
}

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int log_level_parse(const char *s, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (!strcmp(s, level_names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void log_json_line(enum log_level lvl, const char *msg)
{
	struct timespec ts;
	struct tm tm;
	char when[96];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ts", json_object_new_string(when));
	json_object_object_add(o, "level", json_object_new_string(level_names[lvl]));
	json_object_object_add(o, "vm", json_object_new_string(log_vm));
	json_object_object_add(o, "msg", json_object_new_string(msg));
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	/* One write per line so lines from several threads do not interleave. */
	fprintf(stderr, "%s\n", s);
	fflush(stderr);
	json_object_put(o);
}

static void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "wafer: %s%s",
			 lvl == LOG_ERROR ? "" : level_names[lvl], lvl == LOG_ERROR ? "" : ": ");
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (lvl == LOG_ERROR)
		snprintf(last_error, sizeof(last_error), "%s", line + n);
	if (log_format == LOG_FORMAT_JSON) {
		log_json_line(lvl, line + n);
		return;
	}
	size_t len = strlen(line);
	/* One write per line so lines from several threads do not interleave. */
	if (len == 0 || line[len - 1] != '\n')
		line[len++] = '\n';
	fwrite(line, 1, len, stderr);
	fflush(stderr);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	if (lvl > log_threshold)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;

void log_ratelimited(struct log_ratelimit *rl, enum log_level lvl, const char *fmt, ...)
{
	enum { BURST = 5 };
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	unsigned suppressed = 0;
	int print;

	pthread_mutex_lock(&rl_lock);
	if (now - rl->window_start_ns >= 1000000000ull) {
		rl->window_start_ns = now;
		rl->printed = 0;
	}
	print = rl->printed < BURST;
	if (print) {
		rl->printed++;
		suppressed = rl->suppressed;
		rl->suppressed = 0;
	} else {
		rl->suppressed++;
	}
	pthread_mutex_unlock(&rl_lock);

	if (!print || lvl > log_threshold)
		return;
	if (suppressed)
		log_msg(lvl, "(%u similar messages suppressed)", suppressed);
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}
