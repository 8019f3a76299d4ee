/* Diagnostics to stderr: levelled messages and a rate-limited variant for
 * guest-caused errors (a hostile guest must not be able to flood the log). */
#ifndef WAFER_VMM_LOG_H
#define WAFER_VMM_LOG_H

#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_threshold;

enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };
/* JSON lines: {"ts":"<UTC ISO 8601 ms>","level":"...","vm":"<name>","msg":"..."} */
extern enum log_format log_format;
void log_set_vm_name(const char *name);

int log_level_parse(const char *s, enum log_level *out);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last error line logged by this thread (without the "wafer: " prefix),
 * so an API request can return the same message the CLI would print. */
const char *log_last_error(void);
void log_clear_last_error(void);

/* At most `burst` messages per second per call site; the rest are counted and
 * reported with the next message that gets through. */
struct log_ratelimit {
	uint64_t window_start_ns;
	unsigned printed, suppressed;
};
void log_ratelimited(struct log_ratelimit *rl, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
