/* tr_sim.c - the "sim" transport backend's ops table: an in-process USB link
 * to a simulated device model (struct devmodel_ops), timed on the context's
 * clock. See tr_sim.h for the USB semantics modelled and tr_sim_bus.c for the
 * bus model (timing, completion order, disconnects).
 *
 * Event loop (handle_events): after applying due disconnects, model timers
 * and deciding what can be decided, due transfers complete; when nothing is
 * due before the deadline, a real clock sleeps until the next event
 * (completion, timeout, model timer, disconnect or re-enumeration) and a
 * virtual clock jumps there, so a 30 s wait in a test costs no wall time. */
#include "usb/tr_sim_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usb/usb_desc.h"

/* ---- ops ---------------------------------------------------------------- */

static int check_port(const struct tr_sim_port *pa, size_t i, struct lp_errinfo *e)
{
	const struct devmodel_ops *mo = pa->ops;

	if (!mo || !pa->model)
		return lp_err_set(e, LP_EINVAL, "sim: no device model given for device %zu", i);
	if (!mo->attached || !mo->identity || !mo->reset || !mo->control || !mo->max_packet ||
	    !mo->bulk_out || !mo->bulk_in_next || !mo->next_timer || !mo->tick)
		return lp_err_set(e, LP_EINVAL, "sim: device model lacks a mandatory method");
	if (pa->link.error_rate < 0 || pa->link.error_rate > 1.0)
		return lp_err_set(e, LP_EINVAL, "sim: error rate %g outside [0,1]",
				  pa->link.error_rate);
	if (pa->link.churn_period_ns && pa->link.churn_gap_ns >= pa->link.churn_period_ns)
		return lp_err_set(e, LP_EINVAL,
				  "sim: churn gap must be shorter than the churn period");
	return 0;
}

static int sim_init(struct tr_ctx *ctx, const void *varg, struct lp_errinfo *e)
{
	const struct tr_sim_arg *arg = varg;
	struct sim_ctx *sp = sim_of(ctx);
	struct tr_sim_port one;
	const struct tr_sim_port *pa;
	size_t n;
	uint64_t now;
	int r;

	if (!arg || (!arg->ops && !arg->nports))
		return lp_err_set(e, LP_EINVAL, "sim: no device model given");
	if (arg->nports) {
		if (!arg->ports || arg->nports > TR_SIM_MAX_PORTS)
			return lp_err_set(e, LP_EINVAL, "sim: %zu devices (1 to %d on one bus)",
					  arg->nports, TR_SIM_MAX_PORTS);
		pa = arg->ports;
		n = arg->nports;
	} else {
		one.ops = arg->ops;
		one.model = arg->model;
		one.link = arg->link;
		pa = &one;
		n = 1;
	}
	for (size_t i = 0; i < n; i++)
		if ((r = check_port(&pa[i], i, e)))
			return r;
	sp->ports = calloc(n, sizeof(*sp->ports));
	if (!sp->ports)
		return lp_err_set(e, LP_ENOMEM, "sim: out of memory");
	sp->ctx = ctx;
	sp->nports = n;
	sp->bus = arg->bus ? arg->bus : 1;
	sp->next_session = 1;
	sp->next_addr = SIM_ADDR_FIRST;
	now = sim_now(sp);
	for (size_t i = 0; i < n; i++) {
		struct sim_port *p = &sp->ports[i];
		const struct tr_sim_link *l = &pa[i].link;

		p->sp = sp;
		p->index = (unsigned)i;
		p->ops = pa[i].ops;
		p->model = pa[i].model;
		p->link = *l;
		if (p->link.speed == TR_SPEED_UNKNOWN)
			p->link.speed = TR_SPEED_HIGH;
		lp_rand_seed(&p->rng, l->seed);
		p->churn_next = !l->churn_period_ns ? UINT64_MAX
				: l->churn_first_ns ? l->churn_first_ns
						    : l->churn_period_ns;
		p->present = true;
		p->addr = sp->next_addr++;
		p->session = sp->next_session++;
		p->timer_ref = now;
		/* one device: on the root port; several: behind hubs of 7 ports */
		if (n == 1)
			snprintf(p->port_path, sizeof(p->port_path), "%u-1", sp->bus);
		else
			snprintf(p->port_path, sizeof(p->port_path), "%u-%zu.%zu", sp->bus,
				 1 + i / 7, 1 + i % 7);
		for (uint8_t h = 0; h < l->hubs && h < 6; h++) /* 1-1.4.4...: behind hubs */
			snprintf(p->port_path + strlen(p->port_path),
				 sizeof(p->port_path) - strlen(p->port_path), ".4");
		if (p->ops->attached(p->model, now)) {
			p->ops->reset(p->model, now);
			p->stats.enumerations = 1;
		}
	}
	return 0;
}

static void sim_exit(struct tr_ctx *ctx)
{
	struct sim_ctx *sp = sim_of(ctx);

	free(sp->ports);
	sp->ports = NULL;
	sp->nports = 0;
}

static int get_config_value(struct sim_port *p, int *cfg)
{
	const uint8_t setup[8] = {0x80, USBD_REQ_GET_CONFIGURATION, 0, 0, 0, 0, 1, 0};
	uint8_t v = 0;
	size_t got = 0;
	int r = p->ops->control(p->model, setup, &v, 1, &got, sim_now(p->sp));

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
	size_t k = 0;

	trs_advance(sp, now);
	for (size_t i = 0; i < sp->nports && k < max; i++) {
		struct sim_port *p = &sp->ports[i];
		struct tr_devinfo di;
		int cfg = 0;

		if (!trs_port_attached(p, now))
			continue;
		memset(&di, 0, sizeof(di));
		di.bus = sp->bus;
		di.addr = p->addr;
		p->ops->identity(p->model, &di.vid, &di.pid, &di.num_configs);
		di.speed = p->link.speed;
		if (get_config_value(p, &cfg) == 0 && cfg > 0 && cfg < 256)
			di.active_config = (uint8_t)cfg;
		snprintf(di.port_path, sizeof(di.port_path), "%s", p->port_path);
		di.session = p->session;
		out[k++] = di;
	}
	*n = k;
	return 0;
}

static int sim_open(struct tr_ctx *ctx, const struct tr_devinfo *info, struct tr_dev *dev,
		    struct lp_errinfo *e)
{
	struct sim_ctx *sp = sim_of(ctx);
	uint64_t now = sim_now(sp);
	struct sim_port *p = NULL;
	struct sim_dev *sd;

	trs_advance(sp, now);
	for (size_t i = 0; i < sp->nports && !p; i++)
		if (sp->ports[i].session == info->session)
			p = &sp->ports[i];
	if (!p || !trs_port_attached(p, now))
		return lp_err_set(e, LP_ENODEV, "sim: device %u-%u is no longer attached",
				  info->bus, info->addr);
	sd = calloc(1, sizeof(*sd));
	if (!sd)
		return lp_err_set(e, LP_ENOMEM, "sim: out of memory");
	sd->sp = sp;
	sd->port = p;
	sd->dev = dev;
	sd->session = p->session;
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
			trs_xfer_unlink(sp, sx);
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

	if (!trs_dev_live(sd))
		return LP_ENODEV;
	r = get_config_value(sd->port, &v);
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
	struct sim_port *p = sd->port;
	uint8_t setup[8] = {0x00, USBD_REQ_SET_CONFIGURATION, (uint8_t)cfg, 0, 0, 0, 0, 0};
	size_t got = 0;
	int r;

	if (!trs_dev_live(sd))
		return lp_err_set(e, LP_ENODEV, "sim: device is gone");
	/* as usbfs: no configuration change under a claimed interface */
	if (any_claimed(sd))
		return lp_err_set(
			e, LP_EBUSY,
			"sim: an interface is claimed; release it before SET_CONFIGURATION");
	r = p->ops->control(p->model, setup, NULL, 0, &got, sim_now(sd->sp));
	tr_notify_synthetic_control(dev, setup,
				    !r		     ? TR_STATUS_COMPLETED
				    : r == LP_ESTALL ? TR_STATUS_STALL
						     : TR_STATUS_ERROR);
	if (r)
		return lp_err_set(e, r, "sim: device refused SET_CONFIGURATION %d (%s)", cfg,
				  lp_errname(r));
	trs_dev_clear_data(sd);
	return 0;
}

/* Does interface `ifnum` exist in configuration `cfg`? Asks the model for
 * its configuration descriptors; if it will not say, assume yes. */
static bool iface_exists(struct sim_port *p, int cfg, int ifnum)
{
	uint8_t buf[USBD_CONFIG_MAX_TOTAL];
	uint16_t vid, pid;
	uint8_t ncfg = 0;
	bool answered = false;

	p->ops->identity(p->model, &vid, &pid, &ncfg);
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

		if (p->ops->control(p->model, setup, buf, sizeof(buf), &got, sim_now(p->sp)))
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

	if (!trs_dev_live(sd))
		return lp_err_set(e, LP_ENODEV, "sim: device is gone");
	if (ifnum < 0 || ifnum > 255)
		return lp_err_set(e, LP_EINVAL, "sim: bad interface number %d", ifnum);
	r = get_config_value(sd->port, &cfg);
	if (r)
		return lp_err_set(e, LP_EIO, "sim: GET_CONFIGURATION failed (%s)", lp_errname(r));
	if (!cfg)
		return lp_err_set(e, LP_EINVAL, "sim: device is unconfigured; no interface %d",
				  ifnum);
	if (!iface_exists(sd->port, cfg, ifnum))
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

	trs_advance(sp, sim_now(sp));
	if (!trs_dev_live(sd))
		return LP_ENODEV;
	/* (an unplugged device keeps its endpoints until it is removed) */
	if (x->type == TR_XFER_BULK && !trs_port_in_removal(sd->port, sim_now(sp)) &&
	    ((x->endpoint & 0x0f) == 0 || !sd->port->ops->max_packet(sd->port->model, x->endpoint)))
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
	sd->busy |= 1u << ep_index(x->endpoint);
	trs_xfer_link(sp, sx);
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

		trs_advance(sp, now);
		trs_run_timers(sp, now);
		trs_pump(sp, now);
		if (trs_complete_due(sp, now) > 0)
			return 0;
		if (now >= deadline_ns)
			return 0;
		wake = min64(trs_next_event(sp, now), deadline_ns);
		if (wake <= now)
			wake = now + 1; /* a model timer that does not move: still progress */
		lp_clock_sleep_until(clk, wake);
	}
}

static int sim_wait_hotplug(struct tr_ctx *ctx, uint64_t deadline_ns)
{
	struct sim_ctx *sp = sim_of(ctx);
	uint64_t now = sim_now(sp), t;

	trs_advance(sp, now);
	t = min64(deadline_ns, trs_next_plug_event(sp));
	if (t > now)
		lp_clock_sleep_until(ctx->env.clock, t);
	trs_advance(sp, sim_now(sp));
	return 0;
}

void tr_sim_get_stats(struct tr_ctx *ctx, struct tr_sim_stats *st)
{
	struct sim_ctx *sp;

	if (!st)
		return;
	memset(st, 0, sizeof(*st));
	if (!ctx || ctx->ops != &tr_sim_ops)
		return;
	sp = sim_of(ctx);
	for (size_t i = 0; i < sp->nports; i++) {
		st->disconnects += sp->ports[i].stats.disconnects;
		st->enumerations += sp->ports[i].stats.enumerations;
		st->errors_injected += sp->ports[i].stats.errors_injected;
	}
}

int tr_sim_port_stats(struct tr_ctx *ctx, size_t i, struct tr_sim_stats *st)
{
	struct sim_ctx *sp;

	if (!st || !ctx || ctx->ops != &tr_sim_ops)
		return LP_EINVAL;
	sp = sim_of(ctx);
	if (i >= sp->nports)
		return LP_ENOENT;
	*st = sp->ports[i].stats;
	return 0;
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