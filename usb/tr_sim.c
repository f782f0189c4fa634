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

	trs_advance(sp, now);
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

	trs_advance(sp, now);
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

	if (!trs_dev_live(sd))
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

	if (!trs_dev_live(sd))
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
	trs_dev_clear_data(sd);
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

	if (!trs_dev_live(sd))
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

	trs_advance(sp, sim_now(sp));
	if (!trs_dev_live(sd))
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
	const struct tr_sim_link *l = &sp->arg.link;
	uint64_t now = sim_now(sp), t = deadline_ns;

	trs_advance(sp, now);
	if (l->disconnect_at_ns && !sp->disconnect_done)
		t = min64(t, l->disconnect_at_ns);
	if (!sp->present && sp->disconnect_done)
		t = min64(t, sp->back_at);
	if (t > now)
		lp_clock_sleep_until(ctx->env.clock, t);
	trs_advance(sp, sim_now(sp));
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