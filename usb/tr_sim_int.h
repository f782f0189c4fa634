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
struct sim_port;

struct sim_xfer {
	struct tr_xfer *x;
	struct sim_dev *sd;
	struct sim_xfer *next;		      /* endpoint queue, submit order */
	struct sim_xfer *all_prev, *all_next; /* every in-flight transfer, submit order */
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

/* An open handle on one attachment of a port. */
struct sim_dev {
	struct sim_ctx *sp;
	struct sim_port *port;
	struct tr_dev *dev;
	struct sim_dev *next;
	uint32_t session;
	uint32_t busy;	     /* bit i: ep[i] has transfers queued */
	uint8_t claimed[32]; /* bitmap of interface numbers */
	struct sim_ep ep[SIM_EPS];
};

/* One device on the bus: its model, link and plug state. */
struct sim_port {
	struct sim_ctx *sp;
	unsigned index;
	const struct devmodel_ops *ops;
	void *model;
	struct tr_sim_link link;
	struct lp_rand rng;
	struct tr_sim_stats stats;
	bool present;
	bool disconnect_done; /* the link's one-shot disconnect happened */
	uint64_t back_at;     /* absent: re-enumerates at this time */
	uint64_t churn_next;  /* next churn departure (UINT64_MAX: none) */
	uint8_t addr;
	uint32_t session;
	uint64_t timer_ref;    /* model timers are asked for relative to the last tick */
	uint64_t unplugged_at; /* removal_delay_ns: the model left the bus then (0: it did not) */
	bool model_away;       /* the model said it is not attached: back = a new attachment */
	char port_path[32];
};

struct sim_ctx {
	struct tr_ctx *ctx;
	uint8_t bus;
	struct sim_port *ports;
	size_t nports;
	uint32_t next_session;
	uint8_t next_addr;
	uint64_t seq;
	struct sim_dev *devs;		 /* open handles */
	struct sim_xfer *all, *all_tail; /* in flight, submit order */
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
/* Is port p's device listed now: attached, or (removal_delay_ns) unplugged
 * and not yet removed? Records when the model left. */
bool trs_port_attached(struct sim_port *p, uint64_t now);
/* removal_delay_ns: unplugged, not yet removed - transfers end ERROR (-71). */
bool trs_port_in_removal(const struct sim_port *p, uint64_t now);
/* Apply scheduled departures and re-enumerations due by `now` on every port
 * (state only; the transfers they kill complete later). */
void trs_advance(struct sim_ctx *sp, uint64_t now);
/* Earliest departure or re-enumeration to come on any port (UINT64_MAX: none). */
uint64_t trs_next_plug_event(const struct sim_ctx *sp);
/* Link and unlink an in-flight transfer (submit order). */
void trs_xfer_link(struct sim_ctx *sp, struct sim_xfer *sx);
void trs_xfer_unlink(struct sim_ctx *sp, struct sim_xfer *sx);
/* Decide every transfer that can be decided at `now`. */
void trs_pump(struct sim_ctx *sp, uint64_t now);
/* Complete every transfer due by `now` that existed when called, in (due
 * time, submit order). Returns how many. */
int trs_complete_due(struct sim_ctx *sp, uint64_t now);
/* Earliest time anything happens: a completion, a timeout, a model timer, a
 * disconnect or re-enumeration. */
uint64_t trs_next_event(struct sim_ctx *sp, uint64_t now);
/* Run the models' timers due by `now`. */
void trs_run_timers(struct sim_ctx *sp, uint64_t now);

#endif
