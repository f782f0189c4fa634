/* watch.c - `linkprobe watch`'s event loop and registry (see watch.h).
 *
 * Tasks (usb/tr_task.h) on the one transport context:
 *   supervise   lists the bus every poll_ns: an attachment (the transport's
 *               session) not seen before is identified (descriptors: UDID)
 *               and gets a probe task; a present phone whose attachment is
 *               no longer listed has left. Calls opts->tick every tick_ns.
 *   probe_task  one per attachment: opens usbmux (or only the device, when
 *               usbmuxd holds the interface or there is no usbmux), probes
 *               every probe_ns, and ends when its attachment is gone or the
 *               watch stops, closing what it opened.
 * Every sleep is cut into slices of at most poll_ns, so a stop request or a
 * departure is noticed within one slice. */
#include "src/fleet/watch.h"

#include <stdlib.h>
#include <string.h>

#include <plist/plist.h>

#include "src/base/lp_str.h"
#include "usb/tr_task.h"
#include "usb/usb_probe.h"
#include "proto/hostlink.h"
#include "proto/lockdown_client.h"
#include "src/diag/diag.h"

#define WATCH_CLOSED_PORT 1   /* nothing listens there: the device answers RST */
#define WATCH_BAD_SESSIONS 16 /* attachments that could not be identified, not retried */

struct watch {
	struct tr_ctx *ctx;
	struct watch_opts o;
	struct tr_tasks *ts;
	struct watch_dev *dev[WATCH_MAX_DEVICES];
	size_t ndev;
	uint32_t bad[WATCH_BAD_SESSIONS];
	size_t nbad;
	uint64_t t0, end;
	bool stopping;
	int err; /* a transport failure that ended the watch */
};

struct prober {
	struct watch *w;
	struct watch_dev *d;
	struct tr_devinfo info;
	struct hl_link *link;
	struct tr_dev *raw;
	struct lp_stream *lkd_stream;
	struct lkd_client *lkd;
};

const char *watch_probe_name(enum watch_probe_kind k)
{
	static const char *const n[WATCH_NPROBE] = {"control", "usbmux", "lockdown"};
	return k < WATCH_NPROBE ? n[k] : "?";
}

const char *watch_ev_name(enum watch_ev_kind k)
{
	switch (k) {
	case WATCH_EV_ARRIVED:
		return "arrived";
	case WATCH_EV_REENUMERATED:
		return "reenumerated";
	case WATCH_EV_LEFT:
		return "left";
	case WATCH_EV_SPEED:
		return "speed";
	case WATCH_EV_PROBE:
		return "probe";
	case WATCH_EV_ERROR:
		return "error";
	}
	return "?";
}

static uint64_t now_ns(const struct watch *w)
{
	return lp_clock_now(w->ctx->env.clock);
}

static bool stop_asked(const struct watch *w)
{
	return w->stopping || (w->o.stop && *w->o.stop) || (w->end && now_ns(w) >= w->end);
}

static void emit(struct watch *w, struct watch_event *ev)
{
	ev->t_ns = now_ns(w);
	if (w->o.on_event)
		w->o.on_event(w->o.ud, ev);
}

/* Let time pass until t, in slices, ending early on stop or when `until`
 * says so. */
static void nap(struct watch *w, uint64_t t)
{
	uint64_t now = now_ns(w), slice = now + w->o.poll_ns;

	if (w->end && t > w->end)
		t = w->end;
	tr_sleep_until(w->ctx, slice < t ? slice : t);
}

/* ---- registry ----------------------------------------------------------- */

static struct watch_dev *find_udid(struct watch *w, const char *udid)
{
	for (size_t i = 0; i < w->ndev; i++)
		if (strcmp(w->dev[i]->udid, udid) == 0)
			return w->dev[i];
	return NULL;
}

/* A slot for a new phone: forget the longest gone one when full. */
static struct watch_dev *new_dev(struct watch *w)
{
	struct watch_dev *d;

	if (w->ndev == WATCH_MAX_DEVICES) {
		size_t old = WATCH_MAX_DEVICES;
		for (size_t i = 0; i < w->ndev; i++) {
			const struct watch_dev *c = w->dev[i];
			if (!c->present && !c->tasks &&
			    (old == WATCH_MAX_DEVICES || c->left_ns < w->dev[old]->left_ns))
				old = i;
		}
		if (old == WATCH_MAX_DEVICES)
			return NULL;
		free(w->dev[old]);
		w->dev[old] = w->dev[--w->ndev];
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	for (size_t k = 0; k < WATCH_NPROBE; k++)
		d->rtt_s[k] = -1;
	w->dev[w->ndev++] = d;
	return d;
}

static void depart(struct watch *w, struct watch_dev *d)
{
	struct watch_event ev = {.kind = WATCH_EV_LEFT, .dev = d};

	d->present = false;
	d->departures++;
	d->left_ns = now_ns(w);
	emit(w, &ev);
}

/* ---- probing ------------------------------------------------------------ */

static void drop_lockdown(struct prober *pr)
{
	lkd_client_free(pr->lkd);
	pr->lkd = NULL;
	lp_stream_close(pr->lkd_stream);
	pr->lkd_stream = NULL;
}

static void drop_all(struct prober *pr)
{
	drop_lockdown(pr);
	hl_close(pr->link);
	pr->link = NULL;
	tr_close(pr->raw);
	pr->raw = NULL;
}

static void fail(struct prober *pr, enum watch_probe_kind k, int err, const struct lp_errinfo *e)
{
	struct watch_event ev = {.kind = WATCH_EV_ERROR, .dev = pr->d, .failed = k};
	char msg[sizeof(e->msg)];

	pr->d->probe_errors[k]++;
	lp_sanitize_str(msg, sizeof(msg), e && e->msg[0] ? e->msg : lp_strerror(err));
	ev.msg = msg;
	emit(pr->w, &ev);
}

static uint64_t deadline(const struct watch *w)
{
	return lp_clock_deadline_ms(w->ctx->env.clock, WATCH_REQ_MS);
}

/* usbmux up, unless someone else holds it or the device has none. LP_ENODEV
 * when the attachment is gone. */
static int open_link(struct prober *pr)
{
	struct watch_dev *d = pr->d;
	struct lp_errinfo e = {0};
	int r;

	if (pr->link || d->held || d->no_usbmux)
		return 0;
	r = hl_open(pr->w->ctx, &pr->info, NULL, &pr->link, &e);
	if (r == LP_EBUSY) {
		d->held = true; /* usbmuxd or another program: control probes only */
		return 0;
	}
	if (r == LP_EUNSUPPORTED) {
		d->no_usbmux = true;
		return 0;
	}
	if (r == LP_ENODEV)
		return r;
	if (r)
		fail(pr, WATCH_PROBE_USBMUX, r, &e);
	return 0;
}

static void product_type(struct prober *pr)
{
	plist_t v = NULL;
	char *s = NULL;

	if (pr->d->product_type[0] || !pr->lkd)
		return;
	if (lkd_get_value(pr->lkd, NULL, "ProductType", &v, deadline(pr->w), NULL) == 0 && v &&
	    plist_get_node_type(v) == PLIST_STRING) {
		plist_get_string_val(v, &s);
		if (s)
			lp_sanitize_str(pr->d->product_type, sizeof(pr->d->product_type), s);
	}
	free(s);
	plist_free(v);
}

/* One probe round. LP_ENODEV when the attachment is gone. */
static int probe_once(struct prober *pr)
{
	struct watch *w = pr->w;
	struct watch_dev *d = pr->d;
	struct watch_event ev = {.kind = WATCH_EV_PROBE, .dev = d, .rtt_s = {-1, -1, -1}};
	struct lp_errinfo e = {0};
	struct tr_dev *dev;
	uint8_t desc[18];
	size_t got = 0;
	uint64_t t0, errs0 = 0;
	int r;

	if ((r = open_link(pr)))
		return r;
	if (!pr->link && !pr->raw) {
		r = tr_open(w->ctx, &pr->info, &pr->raw, &e);
		if (r == LP_ENODEV)
			return r;
		if (r) {
			fail(pr, WATCH_PROBE_CONTROL, r, &e);
			return 0;
		}
	}
	if (pr->link) {
		struct hl_stats hs;
		hl_get_stats(pr->link, &hs);
		errs0 = hs.errors;
	}
	dev = pr->link ? hl_dev(pr->link) : pr->raw;

	/* control: GET_DESCRIPTOR(device) */
	t0 = now_ns(w);
	r = tr_control_sync(dev, 0x80, 6, 0x0100, 0, desc, sizeof(desc), WATCH_REQ_MS, &got);
	if (r == LP_ENODEV)
		return r;
	if (r || got != sizeof(desc))
		fail(pr, WATCH_PROBE_CONTROL, r ? r : LP_ETRUNC, NULL);
	else
		ev.rtt_s[WATCH_PROBE_CONTROL] = (double)(now_ns(w) - t0) / LP_NS_PER_S;

	if (pr->link) {
		struct lp_stream *st = NULL;
		struct hl_stats hs;
		char *type = NULL;

		/* usbmux: a connection to a closed port is refused (RST) */
		t0 = now_ns(w);
		r = hl_connect(pr->link, WATCH_CLOSED_PORT, deadline(w), &st, &e);
		if (r == LP_ENODEV)
			return r;
		if (r == LP_ECONNREFUSED) {
			ev.rtt_s[WATCH_PROBE_USBMUX] = (double)(now_ns(w) - t0) / LP_NS_PER_S;
		} else {
			lp_stream_close(st);
			fail(pr, WATCH_PROBE_USBMUX, r ? r : LP_EPROTO,
			     r ? &e
			       : &(struct lp_errinfo){LP_EPROTO,
						      "a closed port accepted the connection"});
		}
		/* lockdown: QueryType over a kept connection */
		if (!pr->lkd) {
			r = hl_connect(pr->link, MUX_PORT_LOCKDOWN, deadline(w), &pr->lkd_stream,
				       &e);
			if (r == LP_ENODEV)
				return r;
			if (r == 0 && !(pr->lkd = lkd_client_new(pr->lkd_stream, "linkprobe")))
				r = LP_ENOMEM;
			if (r) {
				fail(pr, WATCH_PROBE_LOCKDOWN, r, &e);
				drop_lockdown(pr);
			}
		}
		if (pr->lkd) {
			t0 = now_ns(w);
			r = lkd_query_type(pr->lkd, &type, deadline(w), &e);
			free(type);
			if (r == LP_ENODEV)
				return r;
			if (r) {
				fail(pr, WATCH_PROBE_LOCKDOWN, r, &e);
				drop_lockdown(pr);
			} else {
				ev.rtt_s[WATCH_PROBE_LOCKDOWN] = (double)(now_ns(w) - t0) /
								 LP_NS_PER_S;
				product_type(pr);
			}
		}
		hl_get_stats(pr->link, &hs);
		d->transfer_errors += hs.errors - errs0;
		if (hl_dead(pr->link))
			return LP_ENODEV;
	}
	for (size_t k = 0; k < WATCH_NPROBE; k++)
		if (ev.rtt_s[k] >= 0)
			d->rtt_s[k] = ev.rtt_s[k];
	d->probes++;
	d->last_seen_ns = now_ns(w);
	emit(w, &ev);
	return 0;
}

static void probe_task(void *arg)
{
	struct prober *pr = arg;
	struct watch *w = pr->w;
	struct watch_dev *d = pr->d;
	uint32_t session = pr->info.session;
	uint64_t next = now_ns(w);

	while (!stop_asked(w) && d->present && d->session == session) {
		if (now_ns(w) >= next) {
			if (probe_once(pr) == LP_ENODEV) {
				/* the supervisor sees it gone at its next look */
				drop_all(pr);
				break;
			}
			next = now_ns(w) + w->o.probe_ns;
		}
		nap(w, next);
	}
	drop_all(pr);
	d->tasks--;
	free(pr);
}

/* ---- the bus ------------------------------------------------------------ */

static bool bad_session(const struct watch *w, uint32_t s)
{
	for (size_t i = 0; i < w->nbad; i++)
		if (w->bad[i] == s)
			return true;
	return false;
}

static void arrive(struct watch *w, const struct tr_devinfo *info)
{
	struct usbd_probe *p = calloc(1, sizeof(*p));
	struct watch_event ev = {.dev = NULL};
	struct lp_errinfo e = {0};
	struct watch_dev *d;
	struct prober *pr;
	bool known;
	int r;

	if (!p)
		return;
	r = usbd_probe(w->ctx, info, p, &e);
	if (r) {
		if (r != LP_ENODEV) {
			lp_logf(w->ctx->env.log, LP_LOG_WARN,
				"watch: device on %s (bus %u address %u) could not be identified: %s",
				info->port_path, info->bus, info->addr, e.msg);
			w->bad[w->nbad++ % WATCH_BAD_SESSIONS] = info->session;
			if (w->nbad > WATCH_BAD_SESSIONS)
				w->nbad = WATCH_BAD_SESSIONS;
		}
		free(p);
		return;
	}
	if (!p->udid[0])
		snprintf(p->udid, sizeof(p->udid), "port-%s", info->port_path);
	d = find_udid(w, p->udid);
	known = d != NULL;
	if (d && d->present) /* its old attachment was not seen to leave */
		depart(w, d);
	if (!d && !(d = new_dev(w))) {
		lp_logf(w->ctx->env.log, LP_LOG_WARN, "watch: %d phones present; not following %s",
			WATCH_MAX_DEVICES, p->udid);
		free(p);
		return;
	}
	if (!known) {
		snprintf(d->udid, sizeof(d->udid), "%s", p->udid);
		d->first_seen_ns = now_ns(w);
	}
	ev.kind = known ? WATCH_EV_REENUMERATED : WATCH_EV_ARRIVED;
	ev.gap_s = known ? (double)(now_ns(w) - d->left_ns) / LP_NS_PER_S : 0;
	ev.old_speed = d->speed;
	d->speed = info->speed;
	if (known) {
		d->reenumerations++;
		d->held = false; /* a new attachment: look again */
	}
	d->arrivals++;
	d->present = true;
	d->session = info->session;
	d->bus = info->bus;
	d->addr = info->addr;
	d->vid = info->vid;
	d->pid = info->pid;
	snprintf(d->port_path, sizeof(d->port_path), "%s", info->port_path);
	d->mode = diag_mode_for_pid(info->vid, info->pid);
	d->no_usbmux = !p->has_usbmux;
	d->last_seen_ns = now_ns(w);
	free(p);
	ev.dev = d;
	emit(w, &ev);
	if (known && ev.old_speed != info->speed) {
		struct watch_event sp = {
			.kind = WATCH_EV_SPEED, .dev = d, .old_speed = ev.old_speed};
		d->speed_changes++;
		emit(w, &sp);
	}

	pr = calloc(1, sizeof(*pr));
	if (!pr)
		return;
	pr->w = w;
	pr->d = d;
	pr->info = *info;
	d->tasks++;
	if (tr_task_spawn(w->ts, probe_task, pr, &e)) {
		lp_logf(w->ctx->env.log, LP_LOG_WARN, "watch: %s", e.msg);
		d->tasks--;
		free(pr);
	}
}

static void supervise(void *arg)
{
	struct watch *w = arg;
	struct tr_devinfo *list = calloc(TR_LIST_MAX, sizeof(*list));
	uint64_t next_tick = now_ns(w);

	if (!list) {
		w->err = LP_ENOMEM;
		w->stopping = true;
		return;
	}
	while (!stop_asked(w)) {
		struct lp_errinfo e = {0};
		size_t n = 0;
		int r = tr_list(w->ctx, list, TR_LIST_MAX, &n, &e);

		if (r) {
			lp_logf(w->ctx->env.log, LP_LOG_WARN, "watch: listing devices: %s", e.msg);
			if (r == LP_ENOMEM || r == LP_EACCES) {
				w->err = r;
				break;
			}
			n = 0;
		}
		/* who left: a present phone whose attachment is not listed */
		for (size_t i = 0; i < w->ndev; i++) {
			struct watch_dev *d = w->dev[i];
			bool listed = false;
			if (!d->present)
				continue;
			for (size_t k = 0; k < n && !listed; k++)
				listed = list[k].session == d->session;
			if (!listed)
				depart(w, d);
		}
		/* who came: an attachment nobody follows */
		for (size_t k = 0; k < n && !stop_asked(w); k++) {
			bool known = bad_session(w, list[k].session);
			for (size_t i = 0; i < w->ndev && !known; i++)
				known = w->dev[i]->present && w->dev[i]->session == list[k].session;
			if (!known)
				arrive(w, &list[k]);
		}
		if (w->o.tick && now_ns(w) >= next_tick) {
			w->o.tick(w->o.ud, w);
			next_tick = now_ns(w) + w->o.tick_ns;
		}
		nap(w, now_ns(w) + w->o.poll_ns);
	}
	w->stopping = true;
	free(list);
}

int watch_run(struct tr_ctx *ctx, const struct watch_opts *opts, struct watch **out,
	      struct lp_errinfo *e)
{
	struct watch *w;
	int r;

	if (!ctx || !opts || !out)
		return lp_err_set(e, LP_EINVAL, "watch: bad arguments");
	w = calloc(1, sizeof(*w));
	if (!w)
		return lp_err_set(e, LP_ENOMEM, "watch: out of memory");
	w->ctx = ctx;
	w->o = *opts;
	if (!w->o.probe_ns)
		w->o.probe_ns = WATCH_PROBE_NS_DEFAULT;
	if (!w->o.poll_ns)
		w->o.poll_ns = WATCH_POLL_NS_DEFAULT;
	if (!w->o.tick_ns)
		w->o.tick_ns = LP_NS_PER_S;
	w->t0 = now_ns(w);
	w->end = w->o.duration_ns ? w->t0 + w->o.duration_ns : 0;
	r = tr_tasks_new(ctx, &w->ts, e);
	if (!r)
		r = tr_task_spawn(w->ts, supervise, w, e);
	if (!r)
		r = tr_tasks_run(w->ts);
	if (!r && w->err)
		r = lp_err_set(e, w->err, "watch: %s", lp_strerror(w->err));
	else if (r && e && !e->code)
		lp_err_set(e, r, "watch: event loop: %s", lp_strerror(r));
	/* the stop: every phone still present is counted as such, not as gone */
	if (w->o.tick)
		w->o.tick(w->o.ud, w);
	tr_tasks_free(w->ts);
	w->ts = NULL;
	*out = w;
	return r;
}

void watch_free(struct watch *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->ndev; i++)
		free(w->dev[i]);
	free(w);
}

size_t watch_device_count(const struct watch *w)
{
	return w ? w->ndev : 0;
}

const struct watch_dev *watch_device_at(const struct watch *w, size_t i)
{
	return w && i < w->ndev ? w->dev[i] : NULL;
}

const struct lp_clock *watch_clock(const struct watch *w)
{
	return w->ctx->env.clock;
}

void watch_get_totals(const struct watch *w, struct watch_totals *t)
{
	memset(t, 0, sizeof(*t));
	if (!w)
		return;
	for (size_t i = 0; i < w->ndev; i++) {
		const struct watch_dev *d = w->dev[i];
		t->arrivals += d->arrivals;
		t->departures += d->departures;
		t->reenumerations += d->reenumerations;
		t->probes += d->probes;
		for (size_t k = 0; k < WATCH_NPROBE; k++)
			t->probe_errors += d->probe_errors[k];
		t->transfer_errors += d->transfer_errors;
		if (d->present)
			t->devices_present++;
	}
	t->devices_seen = w->ndev;
	t->seconds = (double)(now_ns(w) - w->t0) / LP_NS_PER_S;
}
