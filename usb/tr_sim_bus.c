/* tr_sim_bus.c - the sim backend's bus model: how long a transfer takes on
 * the link, when it is decided, what bytes it carries, and the order in
 * which transfers complete; scheduled disconnects and re-enumeration. The
 * ops table that drives it is in tr_sim.c; the USB semantics are described
 * in tr_sim.h.
 *
 * Every in-flight transfer has a due time once it is "decided" (its bytes
 * and status are known); OUT and control transfers are decided as soon as
 * everything submitted before them on the same endpoint is, IN transfers
 * when the model has supplied enough data. Due transfers complete in (time,
 * submit order).
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
#include "usb/tr_sim_int.h"

#include <stdlib.h>
#include <string.h>

#include "usb/usb_desc.h"

/* Bus time of `pkts` packets; at full speed a bulk packet carries at most 64
 * bytes whatever the model claims, so the packet count is redone for it. */
static uint64_t data_ns(const struct sim_port *p, size_t bytes, uint16_t mps, bool zlp)
{
	uint64_t frame_ns = 125 * LP_NS_PER_US, per_frame = 13, pkts;
	uint16_t bus_mps = mps;

	if (p->link.speed == TR_SPEED_FULL || p->link.speed == TR_SPEED_LOW) {
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

void trs_dev_clear_data(struct sim_dev *sd)
{
	for (unsigned i = 0; i < SIM_EPS; i++)
		ep_clear_data(&sd->ep[i]);
}

bool trs_port_in_removal(const struct sim_port *p, uint64_t now)
{
	return p->unplugged_at && now < add_sat(p->unplugged_at, p->link.removal_delay_ns);
}

static uint8_t alloc_addr(struct sim_ctx *sp);

bool trs_port_attached(struct sim_port *p, uint64_t now)
{
	if (!p->present)
		return false;
	if (p->ops->attached(p->model, now)) {
		if (p->model_away) {
			/* the model left the bus by itself (a phone re-enumerating
			 * after Trust, a replug) and is back: a new attachment,
			 * at a new address, as the kernel enumerates it */
			p->model_away = false;
			p->addr = alloc_addr(p->sp);
			p->session = p->sp->next_session++;
			p->stats.enumerations++;
			lp_logf(p->sp->ctx->env.log, LP_LOG_DEBUG,
				"sim: device %s came back at address %u", p->port_path, p->addr);
		}
		p->unplugged_at = 0;
		return true;
	}
	p->model_away = true;
	if (!p->link.removal_delay_ns)
		return false;
	if (!p->unplugged_at)
		p->unplugged_at = now ? now : 1;
	return trs_port_in_removal(p, now);
}

bool trs_dev_live(const struct sim_dev *sd)
{
	struct sim_port *p = sd->port;
	return sd->session == p->session && trs_port_attached(p, sim_now(sd->sp));
}

void trs_xfer_link(struct sim_ctx *sp, struct sim_xfer *sx)
{
	sx->all_next = NULL;
	sx->all_prev = sp->all_tail;
	if (sp->all_tail)
		sp->all_tail->all_next = sx;
	else
		sp->all = sx;
	sp->all_tail = sx;
}

void trs_xfer_unlink(struct sim_ctx *sp, struct sim_xfer *sx)
{
	if (sx->all_prev)
		sx->all_prev->all_next = sx->all_next;
	else
		sp->all = sx->all_next;
	if (sx->all_next)
		sx->all_next->all_prev = sx->all_prev;
	else
		sp->all_tail = sx->all_prev;
	sx->all_prev = sx->all_next = NULL;
}

/* ---- departures and re-enumeration (pure state; completions come later) - */

/* The next departure of a present port: its one-shot disconnect or churn. */
static uint64_t next_leave(const struct sim_port *p, bool *churn)
{
	const struct tr_sim_link *l = &p->link;
	uint64_t t = UINT64_MAX;

	*churn = false;
	if (!p->present)
		return UINT64_MAX;
	if (l->disconnect_at_ns && !p->disconnect_done)
		t = l->disconnect_at_ns;
	if (p->churn_next < t) {
		t = p->churn_next;
		*churn = true;
	}
	return t;
}

static uint8_t alloc_addr(struct sim_ctx *sp)
{
	/* round robin over the bus's addresses, skipping those in use, as the
	 * kernel hands out device numbers */
	for (unsigned k = 0; k <= SIM_ADDR_LAST - SIM_ADDR_FIRST; k++) {
		uint8_t a = sp->next_addr;
		bool used = false;

		sp->next_addr = a >= SIM_ADDR_LAST ? SIM_ADDR_FIRST : (uint8_t)(a + 1);
		for (size_t i = 0; i < sp->nports && !used; i++)
			used = sp->ports[i].present && sp->ports[i].addr == a;
		if (!used)
			return a;
	}
	return SIM_ADDR_FIRST;
}

static void port_leave(struct sim_ctx *sp, struct sim_port *p, uint64_t at, bool churn)
{
	const struct tr_sim_link *l = &p->link;

	p->present = false;
	if (churn) {
		p->back_at = add_sat(at, l->churn_gap_ns);
		p->churn_next = add_sat(at, l->churn_period_ns);
	} else {
		p->disconnect_done = true;
		p->back_at = add_sat(at, l->reenum_gap_ns);
	}
	p->stats.disconnects++;
	for (struct sim_dev *sd = sp->devs; sd; sd = sd->next) {
		if (sd->port != p || sd->session != p->session)
			continue;
		for (unsigned i = 0; i < SIM_EPS; i++) {
			for (struct sim_xfer *sx = sd->ep[i].head; sx; sx = sx->next) {
				/* ended before the unplug: keeps its own outcome */
				if (due_time(sx) <= at)
					continue;
				sx->dead = true;
				sx->decided = true;
				sx->done_at = at;
				sx->st = TR_STATUS_NO_DEVICE;
			}
		}
		trs_dev_clear_data(sd);
	}
	lp_logf(sp->ctx->env.log, LP_LOG_DEBUG, "sim: device %s unplugged at %llu ns", p->port_path,
		(unsigned long long)at);
}

static void port_back(struct sim_ctx *sp, struct sim_port *p, uint64_t now)
{
	p->present = true;
	p->addr = alloc_addr(sp);
	p->session = sp->next_session++;
	p->ops->reset(p->model, now);
	p->stats.enumerations++;
	lp_logf(sp->ctx->env.log, LP_LOG_DEBUG, "sim: device %s re-enumerated at address %u",
		p->port_path, p->addr);
}

void trs_advance(struct sim_ctx *sp, uint64_t now)
{
	for (size_t i = 0; i < sp->nports; i++) {
		struct sim_port *p = &sp->ports[i];

		/* a long sleep may span several churn cycles: play them in order */
		for (int guard = 0; guard < 64; guard++) {
			bool churn;
			uint64_t t = next_leave(p, &churn);

			if (p->present && now >= t)
				port_leave(sp, p, t, churn);
			else if (!p->present && now >= p->back_at)
				port_back(sp, p, now);
			else
				break;
		}
	}
}

uint64_t trs_next_plug_event(const struct sim_ctx *sp)
{
	uint64_t t = UINT64_MAX;

	for (size_t i = 0; i < sp->nports; i++) {
		const struct sim_port *p = &sp->ports[i];
		bool churn;

		t = min64(t, p->present ? next_leave(p, &churn) : p->back_at);
	}
	return t;
}

/* ---- deciding transfers ------------------------------------------------- */

static bool sim_inject_error(struct sim_port *p)
{
	double r = p->link.error_rate;

	if (r <= 0)
		return false;
	if (r < 1.0 && lp_rand_unit(&p->rng) >= r)
		return false;
	p->stats.errors_injected++;
	return true;
}

static void decide(const struct sim_port *p, struct sim_ep *e, struct sim_xfer *sx, uint64_t start,
		   uint64_t bus_ns, enum tr_status st)
{
	sx->decided = true;
	sx->st = st;
	if (p->link.link_off) {
		sx->done_at = start;
		return;
	}
	start = max64(start, e->bus_free);
	e->bus_free = add_sat(start, bus_ns);
	sx->done_at = add_sat(e->bus_free, p->link.latency_ns);
}

/* IN: take device data into the host buffer; decide when the host transfer
 * ends (buffer full, short packet, ZLP). Returns false if it must wait. */
static bool fill_in(struct sim_ctx *sp, struct sim_ep *e, struct sim_xfer *sx, uint64_t now)
{
	struct sim_port *p = sx->sd->port;
	const struct devmodel_ops *mo = p->ops;
	struct tr_xfer *x = sx->x;
	uint16_t mps = mo->max_packet(p->model, x->endpoint);
	size_t bytes = 0;
	bool zlp = false, ended = false;
	enum tr_status st = TR_STATUS_COMPLETED;

	if (!mps) {
		/* the endpoint vanished with a configuration change */
		decide(p, e, sx, now, 0, TR_STATUS_ERROR);
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
			int r = mo->bulk_in_next(p->model, x->endpoint, &d, &l, &z, now);

			if (r)
				break;
			if (l > SIM_IN_MAX || (l && !d)) {
				lp_logf(sp->ctx->env.log, LP_LOG_ERROR,
					"sim: model queued a %zu-byte IN transfer; dropped", l);
				continue;
			}
			if (l > e->cur_cap) {
				uint8_t *nb = realloc(e->cur, l);
				if (!nb) {
					decide(p, e, sx, now, 0, TR_STATUS_ERROR);
					return true;
				}
				e->cur = nb;
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
		if (bytes && !p->link.link_off) {
			uint64_t start = max64(now, e->bus_free);
			e->bus_free = add_sat(start, data_ns(p, bytes, mps, false));
		}
		return false;
	}
	if (st == TR_STATUS_COMPLETED && sim_inject_error(p))
		st = TR_STATUS_ERROR;
	decide(p, e, sx, max64(now, x->submit_ns), data_ns(p, bytes, mps, zlp), st);
	return true;
}

/* The device left (the model stopped being attached, or this handle belongs
 * to an earlier attachment): whatever is still in flight ends NO_DEVICE now,
 * as on a real bus - not at its timeout. */
static void end_gone(struct sim_dev *sd, uint64_t now)
{
	for (unsigned i = 0; i < SIM_EPS; i++) {
		for (struct sim_xfer *sx = sd->ep[i].head; sx; sx = sx->next) {
			if (sx->dead || due_time(sx) <= now)
				continue;
			sx->dead = true;
			sx->decided = true;
			sx->done_at = now;
			sx->st = TR_STATUS_NO_DEVICE;
		}
	}
}

void trs_pump(struct sim_ctx *sp, uint64_t now)
{
	for (struct sim_dev *sd = sp->devs; sd; sd = sd->next) {
		struct sim_port *p = sd->port;

		if (!sd->busy)
			continue;
		if (!trs_dev_live(sd)) {
			end_gone(sd, now);
			continue;
		}
		for (uint32_t bits = sd->busy; bits; bits &= bits - 1) {
			unsigned i = (unsigned)__builtin_ctz(bits);
			struct sim_ep *e = &sd->ep[i];

			if (!e->head) {
				sd->busy &= ~(1u << i);
				continue;
			}
			for (struct sim_xfer *sx = e->head; sx; sx = sx->next) {
				struct tr_xfer *x = sx->x;
				enum devmodel_ep es;

				if (sx->decided || sx->dead || sx->cancel_req ||
				    sx->timeout_at <= now)
					continue;
				if (trs_port_in_removal(
					    p, now)) { /* -71 until the device is removed */
					decide(p, e, sx, max64(now, x->submit_ns),
					       p->link.latency_ns, TR_STATUS_ERROR);
					continue;
				}
				if (x->type == TR_XFER_CONTROL) {
					decide(p, e, sx, x->submit_ns, SIM_CONTROL_NS,
					       TR_STATUS_COMPLETED);
					continue;
				}
				es = p->ops->bulk_state
					     ? p->ops->bulk_state(p->model, x->endpoint, now)
					     : DEVMODEL_EP_READY;
				if (es == DEVMODEL_EP_NAK)
					break; /* nothing moves; later transfers wait behind it */
				if (es == DEVMODEL_EP_STALL) {
					decide(p, e, sx, max64(now, x->submit_ns), 0,
					       TR_STATUS_STALL);
				} else if (!(x->endpoint & 0x80)) {
					uint16_t mps = p->ops->max_packet(p->model, x->endpoint);
					enum tr_status st = TR_STATUS_COMPLETED;
					if (!mps)
						st = TR_STATUS_ERROR;
					else if (sim_inject_error(p))
						st = TR_STATUS_ERROR;
					decide(p, e, sx, x->submit_ns,
					       data_ns(p, x->len, mps, false), st);
				} else if (!fill_in(sp, e, sx, now)) {
					break; /* later IN transfers wait behind this one */
				}
			}
		}
	}
}

/* ---- completing --------------------------------------------------------- */

static void deliver_out(struct sim_port *p, struct sim_ep *e, uint8_t ep, const uint8_t *d,
			size_t len, uint64_t now)
{
	const struct devmodel_ops *mo = p->ops;
	uint16_t mps = mo->max_packet(p->model, ep);
	bool ended = !len || !mps || len % mps;

	if (len && (e->acc_len || !ended)) {
		if (e->acc_len + len > SIM_OUT_ACCUM_MAX) {
			mo->bulk_out(p->model, ep, e->acc, e->acc_len, now);
			e->acc_len = 0;
		}
		if (e->acc_len + len > e->acc_cap) {
			size_t nc = e->acc_len + len;
			uint8_t *nb = realloc(e->acc, nc < 4096 ? 4096 : nc);
			if (!nb) {
				/* keep the device's view whole at least up to here */
				if (e->acc_len)
					mo->bulk_out(p->model, ep, e->acc, e->acc_len, now);
				e->acc_len = 0;
				mo->bulk_out(p->model, ep, d, len, now);
				return;
			}
			e->acc = nb;
			e->acc_cap = nc < 4096 ? 4096 : nc;
		}
		memcpy(e->acc + e->acc_len, d, len);
		e->acc_len += len;
		if (ended) {
			mo->bulk_out(p->model, ep, e->acc, e->acc_len, now);
			e->acc_len = 0;
		}
		return;
	}
	if (len)
		mo->bulk_out(p->model, ep, d, len, now);
	else if (e->acc_len) {
		mo->bulk_out(p->model, ep, e->acc, e->acc_len, now);
		e->acc_len = 0;
	}
}

static void run_control(struct sim_dev *sd, struct tr_xfer *x, uint64_t now, enum tr_status *st,
			size_t *actual)
{
	uint16_t wlen = (uint16_t)(x->setup[6] | x->setup[7] << 8);
	size_t n = wlen < x->len ? wlen : x->len, got = 0;
	int r;

	r = sd->port->ops->control(sd->port->model, x->setup, x->buf, n, &got, now);
	if (r) {
		*st = r == LP_ESTALL ? TR_STATUS_STALL : TR_STATUS_ERROR;
		*actual = 0;
		return;
	}
	*st = TR_STATUS_COMPLETED;
	*actual = x->setup[0] & 0x80 ? (got < n ? got : n) : n;
	if (x->setup[0] == 0x00 && x->setup[1] == USBD_REQ_SET_CONFIGURATION)
		trs_dev_clear_data(sd);
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
	if (st == TR_STATUS_COMPLETED && !sx->dead && sd->session == sd->port->session) {
		if (x->type == TR_XFER_CONTROL)
			run_control(sd, x, now, &st, &actual);
		else if (!in) {
			deliver_out(sd->port, e, x->endpoint, x->buf, x->len, now);
			actual = x->len;
		}
	}
	unlink_xfer(e, sx);
	trs_xfer_unlink(sp, sx);
	x->priv = NULL;
	free(sx);
	tr_complete(x, st, actual);
}

/* Completes every transfer due by `now` that existed when called, in
 * (due time, submit order). Returns how many. */
int trs_complete_due(struct sim_ctx *sp, uint64_t now)
{
	uint64_t limit = sp->seq;
	int n = 0;

	for (;;) {
		struct sim_xfer *best = NULL;
		uint64_t bt = UINT64_MAX;

		/* the list is in submit order: the first of the earliest wins */
		for (struct sim_xfer *sx = sp->all; sx; sx = sx->all_next) {
			uint64_t t = due_time(sx);
			if (sx->seq >= limit || t > now)
				continue;
			if (!best || t < bt) {
				best = sx;
				bt = t;
			}
		}
		if (!best)
			return n;
		finish(sp, best, now);
		n++;
	}
}

uint64_t trs_next_event(struct sim_ctx *sp, uint64_t now)
{
	uint64_t t = trs_next_plug_event(sp);

	for (size_t i = 0; i < sp->nports; i++) {
		struct sim_port *p = &sp->ports[i];
		t = min64(t, p->ops->next_timer(p->model, p->timer_ref));
		if (trs_port_in_removal(p, now))
			t = min64(t, add_sat(p->unplugged_at, p->link.removal_delay_ns));
	}
	for (struct sim_xfer *sx = sp->all; sx; sx = sx->all_next)
		t = min64(t, due_time(sx));
	return t;
}

void trs_run_timers(struct sim_ctx *sp, uint64_t now)
{
	for (size_t k = 0; k < sp->nports; k++) {
		struct sim_port *p = &sp->ports[k];
		const struct devmodel_ops *mo = p->ops;

		for (int i = 0; i < SIM_TICKS_PER_LOOP; i++) {
			uint64_t t = mo->next_timer(p->model, p->timer_ref);
			if (t > now)
				break;
			mo->tick(p->model, now);
			p->timer_ref = now;
		}
	}
}
