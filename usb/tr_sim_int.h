/* tr_sim_int.h - private to the "sim" transport backend (tr_sim.c: the ops
 * table; tr_sim_bus.c: the bus model that decides, times and completes
 * transfers). Not for use outside those files; the public face is tr_sim.h. */
#ifndef LP_TR_SIM_INT_H
#define LP_TR_SIM_INT_H

#include "usb/tr_sim.h"

#define SIM_EPS 32			    /* 16 OUT + 16 IN endpoint numbers */
#define SIM_CONTROL_NS (300 * LP_NS_PER_US) /* modeled duration of a control transfer */
#define SIM_OUT_ACCUM_MAX (1u << 20)	    /* device-transfer bytes held before forcing delivery */
#define SIM_IN_MAX (16u << 20)		    /* cap on one device transfer taken from the model */
#define SIM_ADDR_FIRST 2		    /* address 1 is usually the root hub */
#define SIM_ADDR_LAST 127
#define SIM_TICKS_PER_LOOP 1000 /* guard against a model whose timers never advance */

struct sim_ctx;
struct sim_dev;

struct sim_xfer {
	struct tr_xfer *x;
	struct sim_dev *sd;
	struct sim_xfer *next; /* endpoint queue, submit order */
	uint64_t seq;
	bool decided; /* done_at and st are final */
	bool dead;    /* the device went away: ends NO_DEVICE */
	bool cancel_req;
	uint64_t cancel_at;
	uint64_t timeout_at; /* UINT64_MAX: none */
	uint64_t done_at;
	enum tr_status st;
	size_t got; /* IN: bytes placed in x->buf so far */
};

struct sim_ep {
	struct sim_xfer *head;
	uint64_t bus_free; /* end of the last bus time reserved on this endpoint */
	/* OUT: bytes of a device transfer not yet ended by a short packet/ZLP */
	uint8_t *acc;
	size_t acc_len, acc_cap;
	/* IN: the device transfer being delivered (copied from the model) */
	uint8_t *cur;
	size_t cur_len, cur_off, cur_cap;
	bool have_cur, cur_zlp;
	bool zlp_pending; /* ZLP left after a transfer that filled the host buffer */
};

struct sim_dev {
	struct sim_ctx *sp;
	struct tr_dev *dev;
	struct sim_dev *next;
	uint32_t session;
	uint8_t claimed[32]; /* bitmap of interface numbers */
	struct sim_ep ep[SIM_EPS];
};

struct sim_ctx {
	struct tr_ctx *ctx;
	struct tr_sim_arg arg;
	struct lp_rand rng;
	struct tr_sim_stats stats;
	bool present;
	bool disconnect_done;
	uint64_t back_at;
	uint8_t addr;
	uint32_t session;
	uint64_t timer_ref; /* model timers are asked for relative to the last tick */
	uint64_t seq;
	struct sim_dev *devs;
};

static inline uint64_t add_sat(uint64_t a, uint64_t b)
{
	return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

static inline uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static inline uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static inline struct sim_ctx *sim_of(struct tr_ctx *ctx)
{
	return ctx->priv;
}

static inline uint64_t sim_now(const struct sim_ctx *sp)
{
	return lp_clock_now(sp->ctx->env.clock);
}

static inline unsigned ep_index(uint8_t ep)
{
	if ((ep & 0x0f) == 0)
		return 0; /* the control pipe is one queue for both directions */
	return (ep & 0x0f) | (ep & 0x80 ? 16u : 0u);
}

static inline uint64_t due_time(const struct sim_xfer *sx)
{
	uint64_t t = sx->decided ? sx->done_at : UINT64_MAX;

	if (sx->dead)
		return t;
	t = min64(t, sx->timeout_at);
	if (sx->cancel_req)
		t = min64(t, sx->cancel_at);
	return t;
}
/* ---- tr_sim_bus.c ------------------------------------------------------- */

/* Forget the bytes half-delivered on every endpoint of an open handle (a
 * configuration change, an unplug). */
void trs_dev_clear_data(struct sim_dev *sd);
/* Is the attachment this handle was opened on still on the bus? */
bool trs_dev_live(const struct sim_dev *sd);
/* Apply a scheduled disconnect or re-enumeration due by `now` (state only;
 * the transfers it kills complete later). */
void trs_advance(struct sim_ctx *sp, uint64_t now);
/* Decide every transfer that can be decided at `now`. */
void trs_pump(struct sim_ctx *sp, uint64_t now);
/* Complete every transfer due by `now` that existed when called, in (due
 * time, submit order). Returns how many. */
int trs_complete_due(struct sim_ctx *sp, uint64_t now);
/* Earliest time anything happens: a completion, a timeout, a model timer, a
 * disconnect or re-enumeration. */
uint64_t trs_next_event(struct sim_ctx *sp, uint64_t now);
/* Run the model's timers due by `now`. */
void trs_run_timers(struct sim_ctx *sp, uint64_t now);

#endif
