/* Token-bucket rate limiter for device I/O (bytes and operations), with
 * Firecracker's TokenBucket semantics (swagger definition TokenBucket). */
#ifndef WAFER_BACKENDS_RATELIMIT_H
#define WAFER_BACKENDS_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* size tokens refilled over refill_time_ms; one_time_burst extra tokens are
 * spent first and never refilled. size 0 or refill_time_ms 0: unlimited. */
struct tbucket_config {
	uint64_t size, one_time_burst, refill_time_ms;
};

struct ratelimit_config {
	struct tbucket_config bytes, ops;
};

struct tbucket {
	struct tbucket_config cfg;
	/* Refilled tokens. Negative after a request larger than the bucket was
	 * let through: the debt is paid back by refill before anything else
	 * passes, so the average rate holds for any request size. */
	int64_t budget;
	uint64_t burst;        /* what is left of one_time_burst */
	uint64_t last_ns;      /* refill accounted up to here */
};

struct ratelimit {
	struct tbucket bytes, ops;
};

/* Both buckets start full (budget = size, burst = one_time_burst). */
void ratelimit_init(struct ratelimit *rl, const struct ratelimit_config *cfg, uint64_t now_ns);
/* Replace the configuration at run time. A bucket whose config is unchanged
 * keeps its state; a changed one keeps its current budget (at most the new
 * size, and any debt), is full if it was unlimited before, and gets the new
 * one_time_burst. */
void ratelimit_update(struct ratelimit *rl, const struct ratelimit_config *cfg, uint64_t now_ns);
/* Does either bucket limit anything? */
bool ratelimit_enabled(const struct ratelimit *rl);
/* Take bytes and ops tokens if both buckets allow it now: true (consumed) or
 * false (nothing consumed). A request larger than a bucket's size passes
 * once that bucket is full, leaving it in debt. */
bool ratelimit_consume(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns);
/* Nanoseconds until ratelimit_consume(rl, bytes, ops, ...) would succeed; 0
 * if it would now. */
uint64_t ratelimit_wait_ns(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns);
/* CLOCK_MONOTONIC in nanoseconds, the clock devices pass in. */
uint64_t ratelimit_now_ns(void);

#endif
