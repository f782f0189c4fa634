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

void trs_dev_clear_data(struct sim_dev *sd)
{
	for (unsigned i = 0; i < SIM_EPS; i++)
		ep_clear_data(&sd->ep[i]);
}

bool trs_dev_live(const struct sim_dev *sd)
{
	const struct sim_ctx *sp = sd->sp;
	return sp->present && sd->session == sp->session &&
	       sp->arg.ops->attached(sp->arg.model, sim_now(sp));
}

/* ---- disconnect and re-enumeration (pure state; completions come later) -- */

void trs_advance(struct sim_ctx *sp, uint64_t now)
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
			trs_dev_clear_data(sd);
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

void trs_pump(struct sim_ctx *sp, uint64_t now)
{
	for (struct sim_dev *sd = sp->devs; sd; sd = sd->next) {
		if (!trs_dev_live(sd))
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
int trs_complete_due(struct sim_ctx *sp, uint64_t now)
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

uint64_t trs_next_event(struct sim_ctx *sp, uint64_t now)
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

void trs_run_timers(struct sim_ctx *sp, uint64_t now)
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