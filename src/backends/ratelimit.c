/* Token-bucket rate limiter (Firecracker's TokenBucket semantics): continuous
 * refill of size tokens per refill_time, a one-time burst spent first, and
 * over-sized requests let through into debt instead of starving. */
#include <stdint.h>
#include <time.h>

#include "backends/ratelimit.h"

#define NS_PER_MS 1000000ull
#define RATELIMIT_MAX_REFILL_MS (1ull << 40)

typedef unsigned __int128 u128;
typedef __int128 s128;

static bool tbucket_unlimited(const struct tbucket *b)
{
	return b->cfg.size == 0 || b->cfg.refill_time_ms == 0;
}

static u128 tbucket_refill_ns(const struct tbucket *b)
{
	return (u128)b->cfg.refill_time_ms * NS_PER_MS;
}

/* Credit the tokens earned since last_ns. last_ns only moves by the time the
 * credited whole tokens took, so slow rates (less than a token per call) still
 * accumulate. */
static void tbucket_refill(struct tbucket *b, uint64_t now_ns)
{
	if (tbucket_unlimited(b) || now_ns <= b->last_ns)
		return;   /* a clock that went backwards earns nothing */
	if (b->budget >= (int64_t)b->cfg.size) {
		b->last_ns = now_ns;
		return;
	}
	u128 refill = tbucket_refill_ns(b);
	u128 elapsed = now_ns - b->last_ns;
	u128 add = elapsed * b->cfg.size / refill;
	u128 room = (u128)((s128)b->cfg.size - b->budget);
	if (add >= room) {
		b->budget = (int64_t)b->cfg.size;
		b->last_ns = now_ns;
		return;
	}
	b->budget += (int64_t)add;
	b->last_ns += (uint64_t)((add * refill + b->cfg.size - 1) / b->cfg.size);
}

static bool tbucket_allows(const struct tbucket *b, uint64_t req)
{
	if (tbucket_unlimited(b))
		return true;
	return (s128)b->burst + b->budget >= (s128)req || b->budget >= (int64_t)b->cfg.size;
}

static void tbucket_take(struct tbucket *b, uint64_t req)
{
	if (tbucket_unlimited(b))
		return;
	uint64_t from_burst = req < b->burst ? req : b->burst;
	b->burst -= from_burst;
	s128 left = (s128)b->budget - (s128)(req - from_burst);
	b->budget = left < INT64_MIN ? INT64_MIN : (int64_t)left;
}

/* Call after tbucket_refill(b, now_ns). */
static uint64_t tbucket_wait(const struct tbucket *b, uint64_t req, uint64_t now_ns)
{
	if (tbucket_allows(b, req))
		return 0;
	/* The budget must reach what the burst does not cover, but never more
	 * than a full bucket (the over-size rule), and debt is paid first. */
	s128 target = req > b->burst ? (s128)(req - b->burst) : 0;
	if (target > (s128)b->cfg.size)
		target = b->cfg.size;
	u128 deficit = (u128)(target - b->budget);
	u128 need = (deficit * tbucket_refill_ns(b) + b->cfg.size - 1) / b->cfg.size;
	u128 have = now_ns > b->last_ns ? now_ns - b->last_ns : 0;
	if (need <= have)
		return 1;
	need -= have;
	return need > UINT64_MAX ? UINT64_MAX : (uint64_t)need;
}

static void tbucket_init(struct tbucket *b, const struct tbucket_config *cfg, uint64_t now_ns)
{
	b->cfg = *cfg;
	/* ~35 years: keeps deficit * refill_ns inside 128 bits. */
	if (b->cfg.refill_time_ms > RATELIMIT_MAX_REFILL_MS)
		b->cfg.refill_time_ms = RATELIMIT_MAX_REFILL_MS;
	b->budget = cfg->size > INT64_MAX ? INT64_MAX : (int64_t)cfg->size;
	b->cfg.size = (uint64_t)b->budget;
	b->burst = cfg->one_time_burst;
	b->last_ns = now_ns;
}

static void tbucket_update(struct tbucket *b, const struct tbucket_config *cfg, uint64_t now_ns)
{
	if (b->cfg.size == cfg->size && b->cfg.one_time_burst == cfg->one_time_burst &&
	    b->cfg.refill_time_ms == cfg->refill_time_ms)
		return;
	bool was_unlimited = tbucket_unlimited(b);
	tbucket_refill(b, now_ns);
	int64_t budget = b->budget;
	tbucket_init(b, cfg, now_ns);
	if (!was_unlimited && budget < b->budget)
		b->budget = budget;
}

void ratelimit_init(struct ratelimit *rl, const struct ratelimit_config *cfg, uint64_t now_ns)
{
	tbucket_init(&rl->bytes, &cfg->bytes, now_ns);
	tbucket_init(&rl->ops, &cfg->ops, now_ns);
}

void ratelimit_update(struct ratelimit *rl, const struct ratelimit_config *cfg, uint64_t now_ns)
{
	tbucket_update(&rl->bytes, &cfg->bytes, now_ns);
	tbucket_update(&rl->ops, &cfg->ops, now_ns);
}

bool ratelimit_enabled(const struct ratelimit *rl)
{
	return !tbucket_unlimited(&rl->bytes) || !tbucket_unlimited(&rl->ops);
}

bool ratelimit_consume(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns)
{
	tbucket_refill(&rl->bytes, now_ns);
	tbucket_refill(&rl->ops, now_ns);
	/* All or nothing: a request refused by one bucket must not drain the other. */
	if (!tbucket_allows(&rl->bytes, bytes) || !tbucket_allows(&rl->ops, ops))
		return false;
	tbucket_take(&rl->bytes, bytes);
	tbucket_take(&rl->ops, ops);
	return true;
}

uint64_t ratelimit_wait_ns(struct ratelimit *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns)
{
	tbucket_refill(&rl->bytes, now_ns);
	tbucket_refill(&rl->ops, now_ns);
	uint64_t a = tbucket_wait(&rl->bytes, bytes, now_ns);
	uint64_t b = tbucket_wait(&rl->ops, ops, now_ns);
	return a > b ? a : b;
}

uint64_t ratelimit_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
