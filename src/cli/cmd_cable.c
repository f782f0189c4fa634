/* cmd_cable.c - `linkprobe --cable-test`: is this cable data-capable, at what
 * speed, and is the port flaky - measured, not guessed.
 *
 * Stages (src/diag/stages.h; the first three are find.h's, shared with
 * trust): find device (does anything enumerate at all: a charge-only cable
 * shows nothing) -> descriptors (enumeration/descriptor time, mode,
 * configurations) -> usbmux (open, VERSION) -> round trips for --duration
 * seconds: control transfers (GET_DESCRIPTOR), usbmux connects to a closed
 * port (answered by RST) and lockdown QueryType over one connection, with
 * latency p50/p99/max, transfer errors and re-enumerations. The verdict is
 * diag_rule_cable's (GOOD, DEGRADED, FLAKY, DISCONNECTED; PROTOCOL_ERROR and
 * USB_ERROR for a device that breaks usbmux or whose bulk endpoints never move
 * data) or the USB stages' (NO_DEVICE, CAMERA_ONLY, RECOVERY_MODE, DFU_MODE,
 * ...).
 *
 * When usbmuxd holds the usbmux interface (and --direct is not given), the
 * test measures what it can without claiming it: the control round trips on
 * the device node, and the usbmux (a Connect to the closed port, refused)
 * and lockdown (QueryType) round trips through the daemon - the "usbmuxd
 * connect" stage and the round trips' detail and metrics.via say so. A
 * device that leaves the bus is then DISCONNECTED (no re-enumeration is
 * followed through the daemon). */
#include <stdlib.h>
#include <string.h>

#include "src/cli/app.h"
#include "src/cli/cable.h"
#include "src/cli/devlink.h"
#include "src/cli/find.h"
#include "proto/hostlink.h"
#include "proto/lockdown_client.h"
#include "src/diag/rules.h"
#include "src/diag/stages.h"
#include "src/base/lp_str.h"
#include "usb/tr_task.h"

#define CABLE_MAX_SAMPLES 4096
#define CABLE_MAX_ITER 20000
#define CABLE_REQ_MS 500      /* one probe round trip may take this long */
#define CABLE_CLOSED_PORT 1   /* nothing listens there: the device answers RST */
#define CABLE_REENUM_WAIT_S 5 /* how long a vanished device may take to return */
#define CABLE_GONE_WAIT_S \
	3 /* how long the kernel may take to remove a device whose transfers fail */

struct samples {
	uint64_t v[CABLE_MAX_SAMPLES];
	size_t n;
};

static void add(struct samples *s, uint64_t ns)
{
	if (s->n < CABLE_MAX_SAMPLES)
		s->v[s->n++] = ns;
}

struct cable {
	struct lp_app *app;
	struct diag_report *r;
	const struct tr_devinfo *pin; /* --all: this device (else find one) */
	bool multi;		      /* --all: one of many tasks; no progress line */
	uint64_t elapsed_ns;	      /* --all: from start to verdict */
	struct tr_devinfo info;
	struct hl_link *link;
	struct tr_dev *dev;  /* usbmuxd holds the interface: the node, unclaimed */
	struct devlink *via; /* ... and the daemon, for the mux and lockdown probes */
	struct lp_stream *lkd_stream;
	struct lkd_client *lkd;
	struct samples ctrl, mux, lkd_rtt;
	uint64_t errors, proto_errors, reenums, iterations;
	char first_error[256];
};

static void note_error(struct cable *c, const char *what, int err, const struct lp_errinfo *e)
{
	c->errors++;
	if (diag_verdict_for_err(err) == DIAG_V_PROTOCOL_ERROR)
		c->proto_errors++;
	if (!c->first_error[0])
		snprintf(c->first_error, sizeof(c->first_error), "%s: %s", what,
			 e && e->msg[0] ? e->msg : lp_strerror(err));
}

static void drop_lockdown(struct cable *c)
{
	lkd_client_free(c->lkd);
	c->lkd = NULL;
	lp_stream_close(c->lkd_stream);
	c->lkd_stream = NULL;
}

static void drop_link(struct cable *c)
{
	drop_lockdown(c);
	hl_close(c->link);
	c->link = NULL;
	tr_close(c->dev);
	c->dev = NULL;
	devlink_free(c->via);
	c->via = NULL;
}

/* A connection to `port`: our own usbmux, or the daemon's Connect. */
static int probe_connect(struct cable *c, uint16_t port, uint64_t deadline, struct lp_stream **out,
			 struct lp_errinfo *e)
{
	if (c->via)
		return devlink_connect(c->via, port, deadline, out, e);
	return hl_connect(c->link, port, deadline, out, e);
}

/* The device vanished: wait for it to re-enumerate and bring usbmux up again.
 * On a real host the attachment that left can stay listed for a while after
 * its transfers failed (libusb hears of the removal through udev, once udev's
 * rules for it have run), and a new attachment can vanish again before it is
 * opened: the old one (same session) is skipped, and an open that finds the
 * device gone is retried, until CABLE_REENUM_WAIT_S have passed. */
static int reconnect(struct cable *c)
{
	struct lp_clock *clk = &c->app->clock;
	uint64_t deadline = lp_clock_now(clk) + CABLE_REENUM_WAIT_S * LP_NS_PER_S;
	uint32_t gone = c->info.session;
	struct lp_errinfo e = {0};
	/* the same phone (--all: which comes back on the same port); without
	 * --udid, the one the test started on, not whichever comes first */
	const char *udid = c->app->udid && !c->multi ? c->app->udid : c->r->dev.udid;
	char port[sizeof(c->info.port_path)];
	int r;

	snprintf(port, sizeof(port), "%s", c->info.port_path);
	drop_link(c);
	c->reenums++;
	for (;;) {
		struct tr_devinfo devs[TR_LIST_MAX];
		struct usbd_probe p;
		uint64_t now, next;
		size_t n = 0;

		r = tr_list(c->app->tr, devs, TR_LIST_MAX, &n, &e);
		if (r) {
			lp_logf(&c->app->log, LP_LOG_WARN, "cable test: listing devices: %s",
				e.msg);
			return r;
		}
		for (size_t i = 0; i < n; i++) {
			if (devs[i].session == gone)
				continue;
			if (c->multi && port[0] && strcmp(devs[i].port_path, port) != 0)
				continue;
			if (udid && udid[0] &&
			    (usbd_probe(c->app->tr, &devs[i], &p, NULL) ||
			     strcmp(p.udid, udid) != 0))
				continue;
			r = hl_open(c->app->tr, &devs[i], NULL, &c->link, &e);
			if (r == 0) {
				c->info = devs[i];
				find_fill_dev(c->r, &c->info);
				return 0;
			}
			if (r == LP_EUSB || r == LP_ETIMEDOUT || r == LP_EPROTO) {
				/* a flaky link can lose a transfer of the VERSION
				 * exchange too: one more error, try again */
				note_error(c, "usbmux after re-enumeration", r, &e);
				continue;
			}
			if (r != LP_ENODEV) {
				lp_logf(&c->app->log, LP_LOG_WARN,
					"cable test: the device came back on %s but usbmux did not: %s",
					devs[i].port_path, e.msg);
				return r;
			}
		}
		now = lp_clock_now(clk);
		if (now >= deadline)
			return LP_ENODEV;
		/* a hotplug event, or a fresh look every 200 ms (an event can come
		 * between the list above and this wait) */
		next = now + 200 * LP_NS_PER_MS;
		r = tr_wait_hotplug(c->app->tr, next < deadline ? next : deadline);
		if (r)
			return r;
	}
}

/* The last round ended in errors: is that the start of an unplug? The kernel
 * fails the in-flight transfers first (EPROTO: a transfer error) and removes
 * the device up to seconds later, so errors at the end of the test are not a
 * flaky link until the device has been seen to stay. A descriptor request
 * every 200 ms tells: ENODEV = gone, an answer = still there. */
static bool gone_after_errors(struct cable *c)
{
	return hl_check_present(c->link, CABLE_GONE_WAIT_S * 1000) == LP_ENODEV;
}

static int one_round(struct cable *c)
{
	struct lp_clock *clk = &c->app->clock;
	struct lp_errinfo e = {0};
	struct lp_stream *st = NULL;
	uint8_t desc[18];
	size_t got = 0;
	uint64_t t0;
	int r;

	/* control: GET_DESCRIPTOR(device) */
	t0 = lp_clock_now(clk);
	r = tr_control_sync(c->link ? hl_dev(c->link) : c->dev, 0x80, 6, 0x0100, 0, desc,
			    sizeof(desc), CABLE_REQ_MS, &got);
	if (r == LP_ENODEV)
		return r;
	if (r || got != sizeof(desc))
		note_error(c, "control transfer", r ? r : LP_ETRUNC, NULL);
	else
		add(&c->ctrl, lp_clock_now(clk) - t0);

	/* usbmux: SYN to a closed port must be answered by RST */
	t0 = lp_clock_now(clk);
	r = probe_connect(c, CABLE_CLOSED_PORT, lp_clock_deadline_ms(clk, CABLE_REQ_MS), &st, &e);
	if (r == LP_ECONNREFUSED) {
		add(&c->mux, lp_clock_now(clk) - t0);
	} else if (r == LP_ENODEV) {
		return r;
	} else {
		lp_stream_close(st);
		note_error(c, "usbmux connect to a closed port", r ? r : LP_EPROTO,
			   r ? &e
			     : &(struct lp_errinfo){LP_EPROTO,
						    "a closed port accepted the connection"});
	}

	/* lockdown: QueryType over a kept connection */
	if (!c->lkd) {
		r = probe_connect(c, MUX_PORT_LOCKDOWN, lp_clock_deadline_ms(clk, CABLE_REQ_MS),
				  &c->lkd_stream, &e);
		if (r == LP_ENODEV)
			return r;
		if (r) {
			note_error(c, "lockdown connect", r, &e);
			return 0;
		}
		c->lkd = lkd_client_new(c->lkd_stream, "linkprobe");
		if (!c->lkd)
			return LP_ENOMEM;
	}
	char *type = NULL;
	t0 = lp_clock_now(clk);
	r = lkd_query_type(c->lkd, &type, lp_clock_deadline_ms(clk, CABLE_REQ_MS), &e);
	free(type);
	if (r == LP_ENODEV)
		return r;
	if (r) {
		note_error(c, "lockdown QueryType", r, &e);
		drop_lockdown(c);
	} else {
		add(&c->lkd_rtt, lp_clock_now(clk) - t0);
	}
	/* errors the link saw on its own transfers (bulk IN loop) */
	if (c->link && hl_pump(c->link, lp_clock_now(clk)) == LP_ENODEV)
		return LP_ENODEV;
	return 0;
}

static void run(struct cable *c)
{
	struct lp_app *app = c->app;
	struct diag_report *r = c->r;
	struct diag_cable_facts f = {0};
	struct diag_stage *s;
	struct usbd_probe p;
	struct hl_stats hs;
	uint64_t end, t_start, link_errors = 0, next_progress = 0;
	char held[LP_ERRINFO_MSG] = "";
	int ret;

	memset(&p, 0, sizeof(p));
	if (c->pin) /* --all: that device, directly */
		ret = find_usb_stages_at(app, r, c->pin, &c->info, &p, &c->link);
	else if (app->direct)
		ret = find_usb_stages(app, r, &c->info, &p, &c->link);
	else
		ret = find_usb_stages_held(app, r, &c->info, &p, &c->link, held, sizeof(held));
	if (p.desc_ns)
		json_object_object_add(r->metrics, "enumeration_ms",
				       json_object_new_double((double)p.desc_ns / LP_NS_PER_MS));
	if (ret == LP_EBUSY && app->direct)
		snprintf(r->remedy_extra, sizeof(r->remedy_extra),
			 "--direct keeps linkprobe off usbmuxd: stop it while measuring (sudo "
			 "systemctl stop usbmuxd; udev starts it again when a device is plugged "
			 "in), or leave out --direct to measure through it.");
	if (ret == LP_EBUSY && !app->direct && held[0]) { /* not for a kernel driver */
		struct lp_errinfo e = {0};
		if (via_usbmuxd_held(app, r, held, "measuring", &c->via))
			return;
		/* control transfers to the device need no claimed interface */
		if (tr_open(app->tr, &c->info, &c->dev, &e)) {
			diag_rule_err(r, diag_stage_begin(r, DIAG_STAGE_ROUND_TRIPS),
				      e.code ? e.code : LP_EIO, e.msg);
			return;
		}
		ret = 0;
	}
	if (ret)
		return;

	s = diag_stage_begin(r, DIAG_STAGE_ROUND_TRIPS);
	t_start = lp_clock_now(&app->clock);
	end = t_start + (uint64_t)(app->duration_s * LP_NS_PER_S);
	for (;;) {
		uint64_t now = lp_clock_now(&app->clock), errs_before = c->errors;
		struct hl_stats before = {0};

		if (now >= end || c->iterations >= CABLE_MAX_ITER)
			break;
		if (!c->multi && now >= next_progress) { /* for a person at a terminal */
			struct hl_stats st = {0};
			if (c->link)
				hl_get_stats(c->link, &st);
			out_progress(app, (double)(now - r->t0) / LP_NS_PER_S, s->name,
				     "%.1f of %.1f s, %llu rounds, %llu errors so far",
				     (double)(now - r->t0 - s->start_ns) / LP_NS_PER_S,
				     app->duration_s, (unsigned long long)c->iterations,
				     (unsigned long long)(c->errors + link_errors + st.errors));
			next_progress = now + LP_NS_PER_S / 10;
		}
		if (c->link)
			hl_get_stats(c->link, &before);
		c->iterations++;
		ret = one_round(c);
		if (ret == 0 && lp_clock_now(&app->clock) >= end) {
			/* the test is over: errors in its last round may be an unplug
			 * the kernel has not finished yet */
			struct hl_stats after = {0};
			if (c->link)
				hl_get_stats(c->link, &after);
			if (c->link &&
			    (c->errors != errs_before || after.errors != before.errors) &&
			    gone_after_errors(c))
				ret = LP_ENODEV;
		}
		if (ret == LP_ENODEV && c->via) {
			f.gone = true; /* through the daemon: no re-enumeration followed */
			break;
		}
		if (ret == LP_ENODEV) {
			struct hl_stats st;
			hl_get_stats(c->link, &st);
			link_errors += st.errors;
			diag_progress(
				r, s,
				"device vanished from USB after %.2f s; waiting for it to re-enumerate",
				(double)(lp_clock_now(&app->clock) - r->t0) / LP_NS_PER_S);
			if (reconnect(c)) {
				f.gone = true;
				break;
			}
		} else if (ret) {
			note_error(c, "probe", ret, NULL);
			break;
		}
	}
	if (c->link) {
		hl_get_stats(c->link, &hs);
		link_errors += hs.errors;
	}
	f.rounds = c->iterations;
	f.ctrl = c->ctrl.n;
	f.mux = c->mux.n;
	f.lockdown = c->lkd_rtt.n;
	f.errors = c->errors + link_errors;
	f.protocol_errors = c->proto_errors;
	f.reenums = c->reenums - (f.gone ? 1 : 0); /* the last departure did not come back */
	f.speed_mbps = (double)tr_speed_bps(c->info.speed) / 1e6;
	f.ss_capable = p.have_bos && (p.bos.superspeed || p.bos.superspeed_plus);
	f.ss_plus = p.have_bos && p.bos.superspeed_plus;
	f.secs = (double)(lp_clock_now(&app->clock) - t_start) / LP_NS_PER_S;
	f.first_error = c->first_error;
	if (c->link)
		f.out_untaken_s = (double)hs.out_stalled_ns / LP_NS_PER_S;
	diag_rule_cable(r, s, &f);
	if (c->via) {
		size_t n = strlen(s->detail);
		json_object *via = json_object_new_object();
		snprintf(
			s->detail + n, sizeof(s->detail) - n,
			" (control round trips on the device node; usbmux and lockdown round trips "
			"through %s, which holds the interface)",
			c->via->daemon);
		json_object_object_add(via, "control_rtt", json_object_new_string("device node"));
		json_object_object_add(via, "mux_rtt", json_object_new_string("usbmuxd"));
		json_object_object_add(via, "lockdown_rtt", json_object_new_string("usbmuxd"));
		json_object_object_add(r->metrics, "via", via);
	}
	diag_note_hubs(r, c->info.port_path);

	json_object_object_add(r->metrics, "speed_mbps", json_object_new_double(f.speed_mbps));
	json_object_object_add(r->metrics, "duration_s", json_object_new_double(app->duration_s));
	json_object_object_add(r->metrics, "rounds", json_object_new_int64((int64_t)c->iterations));
	json_object_object_add(r->metrics, "control_rtt", diag_latency_json(c->ctrl.v, c->ctrl.n));
	json_object_object_add(r->metrics, "mux_rtt", diag_latency_json(c->mux.v, c->mux.n));
	json_object_object_add(r->metrics, "lockdown_rtt",
			       diag_latency_json(c->lkd_rtt.v, c->lkd_rtt.n));
	json_object_object_add(r->metrics, "errors", json_object_new_int64((int64_t)f.errors));
	json_object_object_add(r->metrics, "reenumerations",
			       json_object_new_int64((int64_t)f.reenums));
	if (app->throughput && !f.gone) {
		if (c->link)
			cable_throughput(app, r, c->link, c->info.speed);
		else
			diag_stage_skip(
				r, DIAG_STAGE_THROUGHPUT,
				"the usbmux interface is held by the daemon: --throughput runs on "
				"the direct path only (stop the daemon, or use --direct)");
	}
}

/* --all: one task per device on one event loop (usb/tr_task.h) */
struct cable_job {
	struct cable c;
	struct diag_report r;
	struct tr_devinfo dev;
};

static void job_run(void *arg)
{
	struct cable_job *j = arg;
	uint64_t t0 = lp_clock_now(&j->c.app->clock);

	run(&j->c);
	drop_link(&j->c);
	j->c.elapsed_ns = lp_clock_now(&j->c.app->clock) - t0;
}

static json_object *job_json(const struct cable_job *j)
{
	json_object *o = diag_to_json(&j->r);

	json_object_object_add(o, "port_path", json_object_new_string(j->dev.port_path));
	json_object_object_add(o, "elapsed_s",
			       json_object_new_double((double)j->c.elapsed_ns / LP_NS_PER_S));
	return o;
}

static int64_t metric_int(const struct diag_report *r, const char *k)
{
	json_object *v;

	return r->metrics && json_object_object_get_ex(r->metrics, k, &v) ? json_object_get_int64(v)
									  : 0;
}

static double p50_ms(const struct diag_report *r, const char *k)
{
	json_object *v, *p;

	if (!r->metrics || !json_object_object_get_ex(r->metrics, k, &v) ||
	    !json_object_object_get_ex(v, "p50_us", &p))
		return 0;
	return json_object_get_double(p) / 1000.0;
}

/* One verdict for the fleet: GOOD when every device is, else the first
 * device's (in port order) that is not, with the count as evidence. */
static int finish_all(struct lp_app *app, struct cable_job *jobs, size_t n)
{
	size_t bad = 0, first_bad = n;
	enum diag_verdict v = n ? DIAG_V_GOOD : DIAG_V_NO_DEVICE;
	char evidence[DIAG_DETAIL];
	int code;

	for (size_t i = 0; i < n; i++) {
		if (diag_verdict_exit(jobs[i].r.verdict) != 0) {
			if (!bad++)
				first_bad = i;
		}
	}
	if (!n)
		snprintf(evidence, sizeof(evidence), "no Apple device (VID 05ac) enumerated");
	else if (!bad)
		snprintf(evidence, sizeof(evidence), "all %zu device(s) GOOD", n);
	else {
		v = jobs[first_bad].r.verdict;
		snprintf(evidence, sizeof(evidence),
			 "%zu of %zu device(s) not GOOD; first: port %s %s - %s", bad, n,
			 jobs[first_bad].dev.port_path, diag_verdict_name(v),
			 jobs[first_bad].r.evidence);
	}
	code = diag_verdict_exit(v);
	if (app->json) {
		json_object *o = json_object_new_object(), *arr = json_object_new_array();

		json_object_object_add(o, "command", json_object_new_string("cable-test"));
		json_object_object_add(o, "verdict", json_object_new_string(diag_verdict_name(v)));
		json_object_object_add(o, "exit_code", json_object_new_int(code));
		json_object_object_add(o, "evidence", json_object_new_string(evidence));
		json_object_object_add(o, "device_count", json_object_new_int64((int64_t)n));
		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, job_json(&jobs[i]));
		json_object_object_add(o, "devices", arr);
		fprintf(app->out, "%s\n",
			json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								  JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		if (!app->quiet) {
			fprintf(app->out, "  %-9s %4s  %-40s %6s %7s %6s %6s %9s  %s\n", "port",
				"addr", "UDID", "Mb/s", "rounds", "errors", "reenum", "ctrl p50",
				"verdict");
			for (size_t i = 0; i < n; i++) {
				const struct cable_job *j = &jobs[i];
				fprintf(app->out,
					"  %-9s %4u  %-40s %6g %7lld %6lld %6lld %6.3f ms  %s%s%s\n",
					j->dev.port_path, j->dev.addr,
					j->r.dev.udid[0] ? j->r.dev.udid : "?",
					(double)tr_speed_bps(j->dev.speed) / 1e6,
					(long long)metric_int(&j->r, "rounds"),
					(long long)metric_int(&j->r, "errors"),
					(long long)metric_int(&j->r, "reenumerations"),
					p50_ms(&j->r, "control_rtt"),
					diag_verdict_name(j->r.verdict),
					diag_verdict_exit(j->r.verdict) ? " - " : "",
					diag_verdict_exit(j->r.verdict) ? j->r.evidence : "");
			}
		}
		fprintf(app->out, "verdict: %s - %s\n", diag_verdict_name(v), evidence);
	}
	fflush(app->out);
	return code;
}

static int cable_all(struct lp_app *app)
{
	struct lp_errinfo e = {0};
	struct tr_devinfo *devs = NULL;
	struct cable_job *jobs = NULL;
	struct tr_tasks *ts = NULL;
	size_t n = 0;
	int code = EXIT_RUNTIME, r;

	if (app_open_device(app, &e)) {
		code = out_open_failed(app, &e, "cable-test");
		app_close_device(app);
		return code;
	}
	devs = calloc(TR_LIST_MAX, sizeof(*devs));
	if (!devs)
		goto out;
	if ((r = tr_list(app->tr, devs, TR_LIST_MAX, &n, &e))) {
		out_error(app, "listing devices: %s", e.msg[0] ? e.msg : lp_strerror(r));
		goto out;
	}
	if (!app->json && !app->quiet) {
		char spec[256];
		lp_sanitize_str(spec, sizeof(spec), app->device_spec ? app->device_spec : "libusb");
		fprintf(app->out,
			"linkprobe cable-test --all  (device: %s): %zu device(s), %.1f s each, concurrently\n",
			spec, n, app->duration_s);
		fflush(app->out);
	}
	jobs = calloc(n ? n : 1, sizeof(*jobs));
	if (!jobs || tr_tasks_new(app->tr, &ts, &e))
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct cable_job *j = &jobs[i];

		j->dev = devs[i];
		diag_init(&j->r, "cable-test", &app->clock);
		j->r.metrics = json_object_new_object();
		j->c.app = app;
		j->c.r = &j->r;
		j->c.pin = &j->dev;
		j->c.multi = true;
		if (tr_task_spawn(ts, job_run, j, &e)) {
			out_error(app, "%s", e.msg);
			n = i; /* the ones spawned still run, then are reported */
			break;
		}
	}
	if ((r = tr_tasks_run(ts))) {
		out_error(app, "event loop: %s", lp_strerror(r));
		goto out;
	}
	code = finish_all(app, jobs, n);
out:
	tr_tasks_free(ts);
	if (jobs)
		for (size_t i = 0; i < n; i++)
			diag_release(&jobs[i].r);
	free(jobs);
	free(devs);
	app_close_device(app);
	return code;
}

int cmd_cable_test(struct lp_app *app)
{
	struct diag_report r;
	struct lp_errinfo e = {0};
	struct cable *c;
	int code;

	if (app->all)
		return cable_all(app);
	if (app_open_device(app, &e)) {
		code = out_open_failed(app, &e, "cable-test");
		app_close_device(app);
		return code;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		app_close_device(app);
		return EXIT_RUNTIME;
	}
	diag_init(&r, "cable-test", &app->clock);
	r.metrics = json_object_new_object();
	out_attach(app, &r);
	c->app = app;
	c->r = &r;
	run(c);
	drop_link(c);
	code = out_finish(app, &r);
	diag_release(&r);
	free(c);
	app_close_device(app);
	return code;
}
