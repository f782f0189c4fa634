/* tr_sim.c - the "sim" transport backend: an in-process USB link to a
 * simulated device model (struct devmodel_ops), timed on the context's
 * clock. See tr_sim.h for the USB semantics modelled.
 *
 * Event loop (handle_events): every in-flight transfer has a due time once
 * it is "decided" (its bytes and status are known); OUT and control transfers
 * are decided as soon as everything submitted before them on the same
 * endpoint is, IN transfers when the model has supplied enough data. Due
 * transfers complete in (time, submit order). When nothing is due before the
 * deadline, a real clock sleeps until the next event (completion, timeout,
 * model timer, disconnect or re-enumeration) and a virtual clock jumps there,
 * so a 30 s wait in a test costs no wall time.
 *
 * Bus model: transfers on one endpoint are serialized in submit order (the
 * endpoint's bus time is reserved back to back); OUT and IN endpoints run in
 * parallel. Data time = ceil(packets * frame_ns / packets_per_frame) ns, i.e.
 * packets occupy 1/13 (high speed) or 1/19 (full speed) of a (micro)frame
 * each, which gives the 53.248 MB/s of tr_sim.h for back-to-back transfers;
 * every transfer then completes `latency_ns` after its last packet.
 *
 * Not modelled: bandwidth shared between endpoints, NAK retries, partial
 * delivery of a cancelled/timed-out OUT transfer (the device gets nothing),
 * control transfers' data-stage timing (each takes SIM_CONTROL_NS). */
#include "usb/tr_sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usb/usb_desc.h"

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

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static struct sim_ctx *sim_of(struct tr_ctx *ctx)
{
	return ctx->priv;
}

static uint64_t sim_now(const struct sim_ctx *sp)
{
	return lp_clock_now(sp->ctx->env.clock);
}

static unsigned ep_index(uint8_t ep)
{
	if ((ep & 0x0f) == 0)
		return 0; /* the control pipe is one queue for both directions */
	return (ep & 0x0f) | (ep & 0x80 ? 16u : 0u);
}

/* Bus time of `pkts` packets; at full speed a bulk packet carries at most 64
 * bytes whatever the model claims, so the packet count is redone for it. */
static uint64_t data_ns(const struct sim_ctx *sp, size_t bytes, uint16_t mps, bool zlp)
{
	uint64_t frame_ns = 125 * LP_NS_PER_US, per_frame = 13, pkts;
	uint16_t bus_mps = mps;

	if (sp->arg.link.speed == TR_SPEED_FULL || sp->arg.link.speed == TR_SPEED_LOW) {
		frame_ns = LP_NS_PER_MS;
		per_frame = 19;
		if (bus_mps > 64)
			bus_mps = 64;
	}
	if (!bus_mps)
		bus_mps = 64;
	pkts = (bytes + bus_mps - 1) / bus_mps + (zlp || !bytes ? 1 : 0);
	return (pkts * frame_ns + per_frame - 1) / per_frame;
}

static void ep_clear_data(struct sim_ep *e)
{
	e->acc_len = 0;
	e->have_cur = false;
	e->cur_len = e->cur_off = 0;
	e->zlp_pending = false;
}

static void dev_clear_data(struct sim_dev *sd)
{
	for (unsigned i = 0; i < SIM_EPS; i++)
		ep_clear_data(&sd->ep[i]);
}

static bool dev_live(const struct sim_dev *sd)
{
	const struct sim_ctx *sp = sd->sp;
	return sp->present && sd->session == sp->session &&
	       sp->arg.ops->attached(sp->arg.model, sim_now(sp));
}

static uint64_t due_time(const struct sim_xfer *sx)
{
	uint64_t t = sx->decided ? sx->done_at : UINT64_MAX;

	if (sx->dead)
		return t;
	t = min64(t, sx->timeout_at);
	if (sx->cancel_req)
		t = min64(t, sx->cancel_at);
	return t;
}

/* ---- disconnect and re-enumeration (pure state; completions come later) -- */

static void sim_advance(struct sim_ctx *sp, uint64_t now)
{
	const struct tr_sim_link *l = &sp->arg.link;

	if (l->disconnect_at_ns && !sp->disconnect_done && now >= l->disconnect_at_ns) {
		sp->disconnect_done = true;
		sp->present = false;
		sp->back_at = add_sat(l->disconnect_at_ns, l->reenum_gap_ns);
		sp->stats.disconnects++;
		for (struct sim_dev *sd = sp->devs; sd; sd = sd->next) {
			if (sd->session != sp->session)
				continue;
			for (unsigned i = 0; i < SIM_EPS; i++) {
				for (struct sim_xfer *sx = sd->ep[i].head; sx; sx = sx->next) {
					/* ended before the unplug: keeps its own outcome */
					if (due_time(sx) <= l->disconnect_at_ns)
						continue;
					sx->dead = true;
					sx->decided = true;
					sx->done_at = l->disconnect_at_ns;
					sx->st = TR_STATUS_NO_DEVICE;
				}
			}
			dev_clear_data(sd);
		}
		lp_logf(sp->ctx->env.log, LP_LOG_DEBUG, "sim: device unplugged at %llu ns",
			(unsigned long long)l->disconnect_at_ns);
	}
	if (!sp->present && sp->disconnect_done && now >= sp->back_at) {
		sp->present = true;
		sp->addr = sp->addr >= SIM_ADDR_LAST ? SIM_ADDR_FIRST : (uint8_t)(sp->addr + 1);
		sp->session++;
		sp->arg.ops->reset(sp->arg.model, now);
		sp->stats.enumerations++;
		lp_logf(sp->ctx->env.log, LP_LOG_DEBUG, "sim: device re-enumerated at address %u",
			sp->addr);
	}
}

/* ---- deciding transfers ------------------------------------------------- */

static bool sim_inject_error(struct sim_ctx *sp)
{
	double r = sp->arg.link.error_rate;

	if (r <= 0)
		return false;
	if (r < 1.0 && lp_rand_unit(&sp->rng) >= r)
		return false;
	sp->stats.errors_injected++;
	return true;
}

static void decide(struct sim_ctx *sp, struct sim_ep *e, struct sim_xfer *sx, uint64_t start,
		   uint64_t bus_ns, enum tr_status st)
{
	sx->decided = true;
	sx->st = st;
	if (sp->arg.link.link_off) {
		sx->done_at = start;
		return;
	}
	start = max64(start, e->bus_free);
	e->bus_free = add_sat(start, bus_ns);
	sx->done_at = add_sat(e->bus_free, sp->arg.link.latency_ns);
}

/* IN: take device data into the host buffer; decide when the host transfer
 * ends (buffer full, short packet, ZLP). Returns false if it must wait. */
static bool fill_in(struct sim_ctx *sp, struct sim_ep *e, struct sim_xfer *sx, uint64_t now)
{
	const struct devmodel_ops *mo = sp->arg.ops;
	struct tr_xfer *x = sx->x;
	uint16_t mps = mo->max_packet(sp->arg.model, x->endpoint);
	size_t bytes = 0;
	bool zlp = false, ended = false;
	enum tr_status st = TR_STATUS_COMPLETED;

	if (!mps) {
		/* the endpoint vanished with a configuration change */
		decide(sp, e, sx, now, 0, TR_STATUS_ERROR);
		return true;
	}
	for (;;) {
		size_t left, space, n;

		if (x->len && sx->got == x->len) {
			ended = true;
			break;
		}
		if (e->zlp_pending) {
			e->zlp_pending = false;
			zlp = true;
			ended = true;
			break;
		}
		if (!e->have_cur) {
			const uint8_t *d = NULL;
			size_t l = 0;
			bool z = false;
			int r = mo->bulk_in_next(sp->arg.model, x->endpoint, &d, &l, &z, now);

			if (r)
				break;
			if (l > SIM_IN_MAX || (l && !d)) {
				lp_logf(sp->ctx->env.log, LP_LOG_ERROR,
					"sim: model queued a %zu-byte IN transfer; dropped", l);
				continue;
			}
			if (l > e->cur_cap) {
				uint8_t *p = realloc(e->cur, l);
				if (!p) {
					decide(sp, e, sx, now, 0, TR_STATUS_ERROR);
					return true;
				}
				e->cur = p;
				e->cur_cap = l;
			}
			if (l)
				memcpy(e->cur, d, l);
			e->cur_len = l;
			e->cur_off = 0;
			e->cur_zlp = z;
			e->have_cur = true;
		}
		left = e->cur_len - e->cur_off;
		space = x->len - sx->got;
		if (!left) {
			e->have_cur = false;
			zlp = true;
			ended = true;
			break;
		}
		n = left < space ? left : space;
		if (n < left && space % mps) {
			/* the packet crossing the end of the buffer does not fit: babble */
			size_t whole = space - space % mps;
			memcpy(x->buf + sx->got, e->cur + e->cur_off, whole);
			sx->got += whole;
			bytes += space;
			e->cur_off += whole + mps < left ? whole + mps : left;
			if (e->cur_off == e->cur_len)
				e->have_cur = false;
			st = TR_STATUS_OVERFLOW;
			ended = true;
			break;
		}
		if (n)
			memcpy(x->buf + sx->got, e->cur + e->cur_off, n);
		sx->got += n;
		e->cur_off += n;
		bytes += n;
		if (e->cur_off < e->cur_len) {
			ended = true; /* host buffer full, device data left for the next one */
			break;
		}
		e->have_cur = false;
		if (e->cur_len % mps) {
			ended = true;
			break;
		}
		if (e->cur_zlp) {
			if (x->len && sx->got == x->len)
				e->zlp_pending = true;
			else
				zlp = true;
			ended = true;
			break;
		}
		/* a whole number of packets and no ZLP: runs into the next one */
	}
	if (!ended) {
		/* partial data occupies the bus now; the rest comes later */
		if (bytes && !sp->arg.link.link_off) {
			uint64_t start = max64(now, e->bus_free);
			e->bus_free = add_sat(start, data_ns(sp, bytes, mps, false));
		}
		return false;
	}
	if (st == TR_STATUS_COMPLETED && sim_inject_error(sp))
		st = TR_STATUS_ERROR;
	decide(sp, e, sx, max64(now, x->submit_ns), data_ns(sp, bytes, mps, zlp), st);
	return true;
}

static void pump(struct sim_ctx *sp, uint64_t now)
{
	for (struct sim_dev *sd = sp->devs; sd; sd = sd->next) {
		if (!dev_live(sd))
			continue;
		for (unsigned i = 0; i < SIM_EPS; i++) {
			struct sim_ep *e = &sd->ep[i];

			for (struct sim_xfer *sx = e->head; sx; sx = sx->next) {
				struct tr_xfer *x = sx->x;

				if (sx->decided || sx->dead || sx->cancel_req ||
				    sx->timeout_at <= now)
					continue;
				if (x->type == TR_XFER_CONTROL) {
					decide(sp, e, sx, x->submit_ns, SIM_CONTROL_NS,
					       TR_STATUS_COMPLETED);
				} else if (!(x->endpoint & 0x80)) {
					uint16_t mps = sp->arg.ops->max_packet(sp->arg.model,
									       x->endpoint);
					enum tr_status st = TR_STATUS_COMPLETED;
					if (!mps)
						st = TR_STATUS_ERROR;
					else if (sim_inject_error(sp))
						st = TR_STATUS_ERROR;
					decide(sp, e, sx, x->submit_ns,
					       data_ns(sp, x->len, mps, false), st);
				} else if (!fill_in(sp, e, sx, now)) {
					break; /* later IN transfers wait behind this one */
				}
			}
		}
	}
}

/* ---- completing --------------------------------------------------------- */

static void deliver_out(struct sim_ctx *sp, struct sim_ep *e, uint8_t ep, const uint8_t *d,
			size_t len, uint64_t now)
{
	const struct devmodel_ops *mo = sp->arg.ops;
	uint16_t mps = mo->max_packet(sp->arg.model, ep);
	bool ended = !len || !mps || len % mps;

	if (len && (e->acc_len || !ended)) {
		if (e->acc_len + len > SIM_OUT_ACCUM_MAX) {
			mo->bulk_out(sp->arg.model, ep, e->acc, e->acc_len, now);
			e->acc_len = 0;
		}
		if (e->acc_len + len > e->acc_cap) {
			size_t nc = e->acc_len + len;
			uint8_t *p = realloc(e->acc, nc < 4096 ? 4096 : nc);
			if (!p) {
				/* keep the device's view whole at least up to here */
				if (e->acc_len)
					mo->bulk_out(sp->arg.model, ep, e->acc, e->acc_len, now);
				e->acc_len = 0;
				mo->bulk_out(sp->arg.model, ep, d, len, now);
				return;
			}
			e->acc = p;
			e->acc_cap = nc < 4096 ? 4096 : nc;
		}
		memcpy(e->acc + e->acc_len, d, len);
		e->acc_len += len;
		if (ended) {
			mo->bulk_out(sp->arg.model, ep, e->acc, e->acc_len, now);
			e->acc_len = 0;
		}
		return;
	}
	if (len)
		mo->bulk_out(sp->arg.model, ep, d, len, now);
	else if (e->acc_len) {
		mo->bulk_out(sp->arg.model, ep, e->acc, e->acc_len, now);
		e->acc_len = 0;
	}
}

static void run_control(struct sim_ctx *sp, struct sim_dev *sd, struct tr_xfer *x, uint64_t now,
			enum tr_status *st, size_t *actual)
{
	uint16_t wlen = (uint16_t)(x->setup[6] | x->setup[7] << 8);
	size_t n = wlen < x->len ? wlen : x->len, got = 0;
	int r;

	r = sp->arg.ops->control(sp->arg.model, x->setup, x->buf, n, &got, now);
	if (r) {
		*st = r == LP_ESTALL ? TR_STATUS_STALL : TR_STATUS_ERROR;
		*actual = 0;
		return;
	}
	*st = TR_STATUS_COMPLETED;
	*actual = x->setup[0] & 0x80 ? (got < n ? got : n) : n;
	if (x->setup[0] == 0x00 && x->setup[1] == USBD_REQ_SET_CONFIGURATION)
		dev_clear_data(sd);
}

static void unlink_xfer(struct sim_ep *e, struct sim_xfer *sx)
{
	for (struct sim_xfer **pp = &e->head; *pp; pp = &(*pp)->next) {
		if (*pp == sx) {
			*pp = sx->next;
			return;
		}
	}
}

static void finish(struct sim_ctx *sp, struct sim_xfer *sx, uint64_t now)
{
	struct tr_xfer *x = sx->x;
	struct sim_dev *sd = sx->sd;
	struct sim_ep *e = &sd->ep[ep_index(x->endpoint)];
	uint64_t t = due_time(sx);
	enum tr_status st;
	size_t actual = 0;
	bool in = x->type == TR_XFER_BULK && (x->endpoint & 0x80);

	if (sx->dead) {
		st = TR_STATUS_NO_DEVICE;
	} else if (sx->decided && sx->done_at == t) {
		st = sx->st;
	} else if (sx->cancel_req && sx->cancel_at == t) {
		st = TR_STATUS_CANCELLED;
	} else {
		st = TR_STATUS_TIMED_OUT;
	}
	if (in)
		actual = sx->got;
	if (st == TR_STATUS_COMPLETED && !sx->dead && sd->session == sp->session) {
		if (x->type == TR_XFER_CONTROL)
			run_control(sp, sd, x, now, &st, &actual);
		else if (!in) {
			deliver_out(sp, e, x->endpoint, x->buf, x->len, now);
			actual = x->len;
		}
	}
	unlink_xfer(e, sx);
	x->priv = NULL;
	free(sx);
	tr_complete(x, st, actual);
}

/* Completes every transfer due by `now` that existed when called, in
 * (due time, submit order). Returns how many. */
static int complete_due(struct sim_ctx *sp, uint64_t now)
{
	uint64_t limit = sp->seq;
	int n = 0;

	for (;;) {
		struct sim_xfer *best = NULL;
		uint64_t bt = UINT64_MAX;

		for (struct sim_dev *sd = sp->devs; sd; sd = sd->next) {
			for (unsigned i = 0; i < SIM_EPS; i++) {
				for (struct sim_xfer *sx = sd->ep[i].head; sx; sx = sx->next) {
					uint64_t t = due_time(sx);
					if (sx->seq >= limit || t > now)
						continue;
					if (!best || t < bt || (t == bt && sx->seq < best->seq)) {
						best = sx;
						bt = t;
					}
				}
			}
		}
		if (!best)
			return n;
		finish(sp, best, now);
		n++;
	}
}

static uint64_t next_event(struct sim_ctx *sp, uint64_t now)
{
	const struct tr_sim_link *l = &sp->arg.link;
	uint64_t t = sp->arg.ops->next_timer(sp->arg.model, sp->timer_ref);

	if (l->disconnect_at_ns && !sp->disconnect_done)
		t = min64(t, l->disconnect_at_ns);
	if (!sp->present && sp->disconnect_done)
		t = min64(t, sp->back_at);
	for (struct sim_dev *sd = sp->devs; sd; sd = sd->next)
		for (unsigned i = 0; i < SIM_EPS; i++)
			for (struct sim_xfer *sx = sd->ep[i].head; sx; sx = sx->next)
				t = min64(t, due_time(sx));
	return t;
}

static void run_timers(struct sim_ctx *sp, uint64_t now)
{
	const struct devmodel_ops *mo = sp->arg.ops;

	for (int i = 0; i < SIM_TICKS_PER_LOOP; i++) {
		uint64_t t = mo->next_timer(sp->arg.model, sp->timer_ref);
		if (t > now)
			return;
		mo->tick(sp->arg.model, now);
		sp->timer_ref = now;
	}
}

/* ---- ops ---------------------------------------------------------------- */

static int sim_init(struct tr_ctx *ctx, const void *varg, struct lp_errinfo *e)
{
	const struct tr_sim_arg *arg = varg;
	struct sim_ctx *sp = sim_of(ctx);
	const struct devmodel_ops *mo;
	uint64_t now;

	if (!arg || !arg->ops)
		return lp_err_set(e, LP_EINVAL, "sim: no device model given");
	mo = arg->ops;
	if (!mo->attached || !mo->identity || !mo->reset || !mo->control || !mo->max_packet ||
	    !mo->bulk_out || !mo->bulk_in_next || !mo->next_timer || !mo->tick)
		return lp_err_set(e, LP_EINVAL, "sim: device model lacks a mandatory method");
	if (arg->link.error_rate < 0 || arg->link.error_rate > 1.0)
		return lp_err_set(e, LP_EINVAL, "sim: error rate %g outside [0,1]",
				  arg->link.error_rate);
	sp->ctx = ctx;
	sp->arg = *arg;
	if (sp->arg.link.speed == TR_SPEED_UNKNOWN)
		sp->arg.link.speed = TR_SPEED_HIGH;
	if (!sp->arg.bus)
		sp->arg.bus = 1;
	lp_rand_seed(&sp->rng, arg->link.seed);
	sp->addr = SIM_ADDR_FIRST;
	sp->session = 1;
	sp->present = true;
	now = sim_now(sp);
	sp->timer_ref = now;
	if (mo->attached(arg->model, now)) {
		mo->reset(arg->model, now);
		sp->stats.enumerations = 1;
	}
	return 0;
}

static void sim_exit(struct tr_ctx *ctx)
{
	(void)ctx;
}

static int get_config_value(struct sim_ctx *sp, int *cfg)
{
	const uint8_t setup[8] = {0x80, USBD_REQ_GET_CONFIGURATION, 0, 0, 0, 0, 1, 0};
	uint8_t v = 0;
	size_t got = 0;
	int r = sp->arg.ops->control(sp->arg.model, setup, &v, 1, &got, sim_now(sp));

	if (r)
		return r;
	*cfg = got ? v : 0;
	return 0;
}

static int sim_list(struct tr_ctx *ctx, struct tr_devinfo *out, size_t max, size_t *n,
		    struct lp_errinfo *e)
{
	struct sim_ctx *sp = sim_of(ctx);
	uint64_t now = sim_now(sp);
	struct tr_devinfo di;
	int cfg = 0;

	sim_advance(sp, now);
	if (!sp->present || !sp->arg.ops->attached(sp->arg.model, now) || !max) {
		*n = 0;
		return 0;
	}
	memset(&di, 0, sizeof(di));
	di.bus = sp->arg.bus;
	di.addr = sp->addr;
	sp->arg.ops->identity(sp->arg.model, &di.vid, &di.pid, &di.num_configs);
	di.speed = sp->arg.link.speed;
	if (get_config_value(sp, &cfg) == 0 && cfg > 0 && cfg < 256)
		di.active_config = (uint8_t)cfg;
	snprintf(di.port_path, sizeof(di.port_path), "%u-1", di.bus);
	di.session = sp->session;
	out[0] = di;
	*n = 1;
	return 0;
}

static int sim_open(struct tr_ctx *ctx, const struct tr_devinfo *info, struct tr_dev *dev,
		    struct lp_errinfo *e)
{
	struct sim_ctx *sp = sim_of(ctx);
	uint64_t now = sim_now(sp);
	struct sim_dev *sd;

	sim_advance(sp, now);
	if (!sp->present || !sp->arg.ops->attached(sp->arg.model, now) ||
	    info->session != sp->session)
		return lp_err_set(e, LP_ENODEV, "sim: device %u-%u is no longer attached",
				  info->bus, info->addr);
	sd = calloc(1, sizeof(*sd));
	if (!sd)
		return lp_err_set(e, LP_ENOMEM, "sim: out of memory");
	sd->sp = sp;
	sd->dev = dev;
	sd->session = sp->session;
	sd->next = sp->devs;
	sp->devs = sd;
	dev->priv = sd;
	return 0;
}

static void sim_close(struct tr_dev *dev)
{
	struct sim_dev *sd = dev->priv;
	struct sim_ctx *sp;

	if (!sd)
		return;
	sp = sd->sp;
	for (struct sim_dev **pp = &sp->devs; *pp; pp = &(*pp)->next) {
		if (*pp == sd) {
			*pp = sd->next;
			break;
		}
	}
	for (unsigned i = 0; i < SIM_EPS; i++) {
		struct sim_xfer *sx = sd->ep[i].head;
		while (sx) {
			struct sim_xfer *nx = sx->next;
			sx->x->priv = NULL;
			free(sx);
			sx = nx;
		}
		free(sd->ep[i].acc);
		free(sd->ep[i].cur);
	}
	free(sd);
	dev->priv = NULL;
}

static int sim_get_configuration(struct tr_dev *dev, int *cfg)
{
	struct sim_dev *sd = dev->priv;
	int v = 0, r;

	if (!dev_live(sd))
		return LP_ENODEV;
	r = get_config_value(sd->sp, &v);
	if (r)
		return r == LP_ESTALL ? LP_EIO : r;
	*cfg = v;
	return 0;
}

static bool any_claimed(const struct sim_dev *sd)
{
	for (size_t i = 0; i < sizeof(sd->claimed); i++)
		if (sd->claimed[i])
			return true;
	return false;
}

static int sim_set_configuration(struct tr_dev *dev, int cfg, struct lp_errinfo *e)
{
	struct sim_dev *sd = dev->priv;
	struct sim_ctx *sp = sd->sp;
	uint8_t setup[8] = {0x00, USBD_REQ_SET_CONFIGURATION, (uint8_t)cfg, 0, 0, 0, 0, 0};
	size_t got = 0;
	int r;

	if (!dev_live(sd))
		return lp_err_set(e, LP_ENODEV, "sim: device is gone");
	/* as usbfs: no configuration change under a claimed interface */
	if (any_claimed(sd))
		return lp_err_set(
			e, LP_EBUSY,
			"sim: an interface is claimed; release it before SET_CONFIGURATION");
	r = sp->arg.ops->control(sp->arg.model, setup, NULL, 0, &got, sim_now(sp));
	tr_notify_synthetic_control(dev, setup,
				    !r		     ? TR_STATUS_COMPLETED
				    : r == LP_ESTALL ? TR_STATUS_STALL
						     : TR_STATUS_ERROR);
	if (r)
		return lp_err_set(e, r, "sim: device refused SET_CONFIGURATION %d (%s)", cfg,
				  lp_errname(r));
	dev_clear_data(sd);
	return 0;
}

/* Does interface `ifnum` exist in configuration `cfg`? Asks the model for
 * its configuration descriptors; if it will not say, assume yes. */
static bool iface_exists(struct sim_ctx *sp, int cfg, int ifnum)
{
	uint8_t buf[USBD_CONFIG_MAX_TOTAL];
	uint16_t vid, pid;
	uint8_t ncfg = 0;
	bool answered = false;

	sp->arg.ops->identity(sp->arg.model, &vid, &pid, &ncfg);
	for (unsigned i = 0; i < ncfg; i++) {
		uint8_t setup[8] = {0x80,
				    USBD_REQ_GET_DESCRIPTOR,
				    (uint8_t)i,
				    USBD_DT_CONFIG,
				    0,
				    0,
				    (uint8_t)(sizeof(buf) & 0xff),
				    (uint8_t)(sizeof(buf) >> 8)};
		struct usbd_config c;
		size_t got = 0;

		if (sp->arg.ops->control(sp->arg.model, setup, buf, sizeof(buf), &got, sim_now(sp)))
			continue;
		if (usbd_parse_config(buf, got < sizeof(buf) ? got : sizeof(buf), &c))
			continue;
		answered = true;
		if (c.bConfigurationValue != cfg)
			continue;
		for (unsigned j = 0; j < c.num_ifaces; j++)
			if (c.iface[j].bInterfaceNumber == ifnum)
				return true;
		return false;
	}
	return !answered;
}

static int sim_claim_interface(struct tr_dev *dev, int ifnum, struct lp_errinfo *e)
{
	struct sim_dev *sd = dev->priv;
	struct sim_ctx *sp = sd->sp;
	int cfg = 0, r;

	if (!dev_live(sd))
		return lp_err_set(e, LP_ENODEV, "sim: device is gone");
	if (ifnum < 0 || ifnum > 255)
		return lp_err_set(e, LP_EINVAL, "sim: bad interface number %d", ifnum);
	r = get_config_value(sp, &cfg);
	if (r)
		return lp_err_set(e, LP_EIO, "sim: GET_CONFIGURATION failed (%s)", lp_errname(r));
	if (!cfg)
		return lp_err_set(e, LP_EINVAL, "sim: device is unconfigured; no interface %d",
				  ifnum);
	if (!iface_exists(sp, cfg, ifnum))
		return lp_err_set(e, LP_EINVAL, "sim: configuration %d has no interface %d", cfg,
				  ifnum);
	for (struct sim_dev *o = sp->devs; o; o = o->next) {
		if (o != sd && o->session == sd->session &&
		    (o->claimed[ifnum / 8] & 1u << ifnum % 8))
			return lp_err_set(e, LP_EBUSY,
					  "sim: interface %d is claimed by another handle", ifnum);
	}
	sd->claimed[ifnum / 8] |= (uint8_t)(1u << ifnum % 8);
	return 0;
}

static int sim_release_interface(struct tr_dev *dev, int ifnum)
{
	struct sim_dev *sd = dev->priv;

	if (ifnum < 0 || ifnum > 255)
		return LP_EINVAL;
	if (!(sd->claimed[ifnum / 8] & 1u << ifnum % 8))
		return LP_ENOENT;
	sd->claimed[ifnum / 8] &= (uint8_t) ~(1u << ifnum % 8);
	return 0;
}

static int sim_submit(struct tr_xfer *x)
{
	struct sim_dev *sd = x->dev->priv;
	struct sim_ctx *sp = sd->sp;
	struct sim_ep *e;
	struct sim_xfer *sx, **pp;

	sim_advance(sp, sim_now(sp));
	if (!dev_live(sd))
		return LP_ENODEV;
	if (x->type == TR_XFER_BULK &&
	    ((x->endpoint & 0x0f) == 0 || !sp->arg.ops->max_packet(sp->arg.model, x->endpoint)))
		return LP_EINVAL; /* no such endpoint in the active configuration */
	sx = calloc(1, sizeof(*sx));
	if (!sx)
		return LP_ENOMEM;
	sx->x = x;
	sx->sd = sd;
	sx->seq = sp->seq++;
	sx->timeout_at = x->timeout_ms ? add_sat(x->submit_ns, x->timeout_ms * LP_NS_PER_MS)
				       : UINT64_MAX;
	e = &sd->ep[ep_index(x->endpoint)];
	for (pp = &e->head; *pp; pp = &(*pp)->next)
		;
	*pp = sx;
	x->priv = sx;
	return 0;
}

static int sim_cancel(struct tr_xfer *x)
{
	struct sim_xfer *sx = x->priv;

	if (!sx)
		return LP_ENOENT;
	if (!sx->cancel_req) {
		sx->cancel_req = true;
		sx->cancel_at = sim_now(sx->sd->sp);
	}
	return 0;
}

static int sim_handle_events(struct tr_ctx *ctx, uint64_t deadline_ns)
{
	struct sim_ctx *sp = sim_of(ctx);
	struct lp_clock *clk = ctx->env.clock;

	for (;;) {
		uint64_t now = lp_clock_now(clk), wake;

		sim_advance(sp, now);
		run_timers(sp, now);
		pump(sp, now);
		if (complete_due(sp, now) > 0)
			return 0;
		if (now >= deadline_ns)
			return 0;
		wake = min64(next_event(sp, now), deadline_ns);
		if (wake <= now)
			wake = now + 1; /* a model timer that does not move: still progress */
		lp_clock_sleep_until(clk, wake);
	}
}

static int sim_wait_hotplug(struct tr_ctx *ctx, uint64_t deadline_ns)
{
	struct sim_ctx *sp = sim_of(ctx);
	const struct tr_sim_link *l = &sp->arg.link;
	uint64_t now = sim_now(sp), t = deadline_ns;

	sim_advance(sp, now);
	if (l->disconnect_at_ns && !sp->disconnect_done)
		t = min64(t, l->disconnect_at_ns);
	if (!sp->present && sp->disconnect_done)
		t = min64(t, sp->back_at);
	if (t > now)
		lp_clock_sleep_until(ctx->env.clock, t);
	sim_advance(sp, sim_now(sp));
	return 0;
}

void tr_sim_get_stats(struct tr_ctx *ctx, struct tr_sim_stats *st)
{
	if (!st)
		return;
	if (!ctx || ctx->ops != &tr_sim_ops) {
		memset(st, 0, sizeof(*st));
		return;
	}
	*st = sim_of(ctx)->stats;
}

const struct tr_ops tr_sim_ops = {
	.name = "sim",
	.ctx_priv_size = sizeof(struct sim_ctx),
	.init = sim_init,
	.exit = sim_exit,
	.list = sim_list,
	.open = sim_open,
	.close = sim_close,
	.get_configuration = sim_get_configuration,
	.set_configuration = sim_set_configuration,
	.claim_interface = sim_claim_interface,
	.release_interface = sim_release_interface,
	.submit = sim_submit,
	.cancel = sim_cancel,
	.handle_events = sim_handle_events,
	.wait_hotplug = sim_wait_hotplug,
};
