/* lp_clock.h - time source for everything below src/: real (CLOCK_MONOTONIC)
 * or virtual (a counter that only moves when told to).
 *
 * Layers never call clock_gettime() themselves: they ask the lp_clock they
 * were handed, so the simulated device and replay can run on virtual time and
 * tests are deterministic. "Sleeping" on a virtual clock jumps it forward.
 * All times are nanoseconds. */
#ifndef LP_CLOCK_H
#define LP_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#define LP_NS_PER_US 1000ull
#define LP_NS_PER_MS 1000000ull
#define LP_NS_PER_S 1000000000ull

struct lp_clock {
	bool is_virtual;
	uint64_t vnow;	   /* virtual: current time */
	uint64_t epoch_ns; /* wall-clock (UNIX epoch) ns that corresponds to t=0 */
	uint64_t mono0;	   /* real: CLOCK_MONOTONIC at init */
};

/* Real clock: now() starts near 0 at init and follows CLOCK_MONOTONIC;
 * epoch_ns is CLOCK_REALTIME at init. */
void lp_clock_init_real(struct lp_clock *c);
/* Virtual clock starting at 0; epoch_ns fixed (deterministic captures). */
void lp_clock_init_virtual(struct lp_clock *c, uint64_t epoch_ns);

/* Monotonic ns since init. */
uint64_t lp_clock_now(const struct lp_clock *c);
/* Wall-clock ns (UNIX epoch) of monotonic time t. */
static inline uint64_t lp_clock_wall(const struct lp_clock *c, uint64_t t)
{
	return c->epoch_ns + t;
}
/* Block until now() >= t (real), or set vnow = max(vnow, t) (virtual). */
void lp_clock_sleep_until(struct lp_clock *c, uint64_t t);
/* Virtual only: move forward by ns. No-op on a real clock. */
void lp_clock_advance(struct lp_clock *c, uint64_t ns);

/* Deadline helper: now + ms, saturating. */
uint64_t lp_clock_deadline_ms(const struct lp_clock *c, uint64_t ms);

/* Small deterministic PRNG (xorshift64*) for fault injection and the sim.
 * Not for cryptography. */
struct lp_rand {
	uint64_t s;
};
void lp_rand_seed(struct lp_rand *r, uint64_t seed);
uint64_t lp_rand_next(struct lp_rand *r);
/* Uniform double in [0,1). */
double lp_rand_unit(struct lp_rand *r);

#endif
