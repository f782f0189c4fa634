/* lp_clock.c - real and virtual clocks, deterministic PRNG. */
#define _POSIX_C_SOURCE 200809L
#include "src/base/lp_clock.h"

#include <errno.h>
#include <time.h>

static uint64_t ts_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * LP_NS_PER_S + (uint64_t)ts.tv_nsec;
}

void lp_clock_init_real(struct lp_clock *c)
{
	c->is_virtual = false;
	c->vnow = 0;
	c->mono0 = ts_ns(CLOCK_MONOTONIC);
	c->epoch_ns = ts_ns(CLOCK_REALTIME);
}

void lp_clock_init_virtual(struct lp_clock *c, uint64_t epoch_ns)
{
	c->is_virtual = true;
	c->vnow = 0;
	c->mono0 = 0;
	c->epoch_ns = epoch_ns;
}

uint64_t lp_clock_now(const struct lp_clock *c)
{
	if (c->is_virtual)
		return c->vnow;
	return ts_ns(CLOCK_MONOTONIC) - c->mono0;
}

void lp_clock_sleep_until(struct lp_clock *c, uint64_t t)
{
	if (c->is_virtual) {
		if (t > c->vnow)
			c->vnow = t;
		return;
	}
	uint64_t abs_ns = t + c->mono0;
	struct timespec ts = {.tv_sec = (time_t)(abs_ns / LP_NS_PER_S),
			      .tv_nsec = (long)(abs_ns % LP_NS_PER_S)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

void lp_clock_advance(struct lp_clock *c, uint64_t ns)
{
	if (c->is_virtual)
		c->vnow += ns;
}

uint64_t lp_clock_deadline_ms(const struct lp_clock *c, uint64_t ms)
{
	uint64_t now = lp_clock_now(c);
	uint64_t add = ms > UINT64_MAX / LP_NS_PER_MS ? UINT64_MAX : ms * LP_NS_PER_MS;
	return add > UINT64_MAX - now ? UINT64_MAX : now + add;
}

void lp_rand_seed(struct lp_rand *r, uint64_t seed)
{
	r->s = seed ? seed : 0x9E3779B97F4A7C15ull;
}

uint64_t lp_rand_next(struct lp_rand *r)
{
	uint64_t x = r->s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

double lp_rand_unit(struct lp_rand *r)
{
	return (double)(lp_rand_next(r) >> 11) * (1.0 / 9007199254740992.0);
}
