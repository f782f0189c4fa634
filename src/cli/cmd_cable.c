/* cmd_cable.c - `linkprobe --cable-test`: is this cable data-capable, at what
 * speed, and is the port flaky - measured, not guessed.
 *
 * Stages: find device (does anything enumerate at all: a charge-only cable
 * shows nothing) -> descriptors (enumeration/descriptor time, mode,
 * configurations) -> usbmux (open, VERSION) -> round trips for --duration
 * seconds: control transfers (GET_DESCRIPTOR), usbmux connects to a closed
 * port (answered by RST) and lockdown QueryType over one connection, with
 * latency p50/p99/max, transfer errors and re-enumerations. Verdict: GOOD,
 * DEGRADED (full speed), FLAKY (errors or re-enumeration), NO_DEVICE,
 * CAMERA_ONLY, RECOVERY_MODE, DFU_MODE. */
#include <stdlib.h>
#include <string.h>

#include "src/cli/app.h"
#include "src/cli/find.h"
#include "proto/hostlink.h"
#include "proto/lockdown_client.h"

#define CABLE_MAX_SAMPLES 4096
#define CABLE_MAX_ITER 20000
#define CABLE_REQ_MS 500       /* one probe round trip may take this long */
#define CABLE_CLOSED_PORT 1    /* nothing listens there: the device answers RST */
#define CABLE_REENUM_WAIT_S 5  /* how long a vanished device may take to return */

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
	struct tr_devinfo info;
	struct hl_link *link;
	struct lp_stream *lkd_stream;
	struct lkd_client *lkd;
	struct samples ctrl, mux, lkd_rtt;
	uint64_t errors, reenums, iterations;
	char first_error[256];
};

static void note_error(struct cable *c, const char *what, int err, const struct lp_errinfo *e)
{
	c->errors++;
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
}

/* The device vanished: wait for it to re-enumerate and bring usbmux up again. */
static int reconnect(struct cable *c)
{
	struct lp_errinfo e = {0};
	int r;

	drop_link(c);
	c->reenums++;
	r = find_device(c->app, c->r, CABLE_REENUM_WAIT_S * LP_NS_PER_S, &c->info, &e);
	if (r)
		return r;
	return hl_open(c->app->tr, &c->info, NULL, &c->link, &e);
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
	r = tr_control_sync(hl_dev(c->link), 0x80, 6, 0x0100, 0, desc, sizeof(desc), CABLE_REQ_MS, &got);
	if (r == LP_ENODEV)
		return r;
	if (r || got != sizeof(desc))
		note_error(c, "control transfer", r ? r : LP_ETRUNC, NULL);
	else
		add(&c->ctrl, lp_clock_now(clk) - t0);

	/* usbmux: SYN to a closed port must be answered by RST */
	t0 = lp_clock_now(clk);
	r = hl_connect(c->link, CABLE_CLOSED_PORT, lp_clock_deadline_ms(clk, CABLE_REQ_MS), &st, &e);
	if (r == LP_ECONNREFUSED) {
		add(&c->mux, lp_clock_now(clk) - t0);
	} else if (r == LP_ENODEV) {
		return r;
	} else {
		lp_stream_close(st);
		note_error(c, "usbmux connect to a closed port", r ? r : LP_EPROTO,
			   r ? &e : &(struct lp_errinfo){LP_EPROTO, "a closed port accepted the connection"});
	}

	/* lockdown: QueryType over a kept connection */
	if (!c->lkd) {
		r = hl_connect(c->link, MUX_PORT_LOCKDOWN, lp_clock_deadline_ms(clk, CABLE_REQ_MS), &c->lkd_stream, &e);
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
	if (hl_pump(c->link, lp_clock_now(clk)) == LP_ENODEV)
		return LP_ENODEV;
	return 0;
}

static void run(struct cable *c)
{
	struct lp_app *app = c->app;
	struct diag_report *r = c->r;
	struct diag_stage *s;
	struct lp_errinfo e = {0};
	struct hl_probe p;
	struct hl_stats hs;
	uint64_t end, link_errors = 0;
	int ret;

	s = diag_begin(r, "find device");
	ret = find_device(app, r, LP_NS_PER_S, &c->info, &e);
	if (ret) {
		diag_end(r, s, DIAG_ST_FAIL, "%s", e.msg);
		diag_set_verdict(r, ret == LP_ENODEV ? DIAG_V_NO_DEVICE : diag_verdict_for_err(ret), "%s", e.msg);
		return;
	}
	diag_end(r, s, DIAG_ST_OK, "%04x:%04x on bus %u address %u, %s speed (%g Mb/s)", c->info.vid, c->info.pid,
		 c->info.bus, c->info.addr, tr_speed_name(c->info.speed), r->dev.speed_mbps);

	s = diag_begin(r, "descriptors");
	ret = hl_probe(app->tr, &c->info, &p, &e);
	if (ret) {
		diag_end(r, s, DIAG_ST_FAIL, "%s", e.msg);
		diag_set_verdict(r, diag_verdict_for_err(ret), "descriptor requests failed: %s", e.msg);
		return;
	}
	snprintf(r->dev.udid, sizeof(r->dev.udid), "%s", p.udid);
	snprintf(r->dev.product, sizeof(r->dev.product), "%s", p.product);
	r->dev.has_usbmux = p.has_usbmux;
	json_object_object_add(r->metrics, "enumeration_ms", json_object_new_double((double)p.desc_ns / LP_NS_PER_MS));
	diag_end(r, s, DIAG_ST_OK, "%zu configuration(s) read in %.2f ms (%zu control transfers), usbmux %s",
		 p.num_configs, (double)p.desc_ns / LP_NS_PER_MS, p.num_rtt,
		 p.has_usbmux ? "present" : "absent");
	if (strcmp(r->dev.mode, "dfu") == 0 || strcmp(r->dev.mode, "wtf") == 0) {
		diag_set_verdict(r, DIAG_V_DFU_MODE, "USB product ID %04x = %s mode", c->info.pid, r->dev.mode);
		return;
	}
	if (strcmp(r->dev.mode, "recovery") == 0) {
		diag_set_verdict(r, DIAG_V_RECOVERY_MODE, "USB product ID %04x = recovery mode", c->info.pid);
		return;
	}
	if (!p.has_usbmux) {
		diag_set_verdict(r, DIAG_V_CAMERA_ONLY, "%zu configuration(s), none with the usbmux interface (ff/fe/02)",
				 p.num_configs);
		return;
	}

	s = diag_begin(r, "usbmux");
	ret = hl_open(app->tr, &c->info, NULL, &c->link, &e);
	if (ret) {
		diag_end(r, s, DIAG_ST_FAIL, "%s", e.msg);
		diag_set_verdict(r, diag_verdict_for_err(ret), "usbmux did not come up: %s", e.msg);
		return;
	}
	app_capture_link(app, c->link);
	diag_end(r, s, DIAG_ST_OK, "usbmux v%u on configuration %u", hl_mux_version(c->link), hl_info(c->link)->usbmux_config);

	s = diag_begin(r, "round trips");
	end = lp_clock_now(&app->clock) + (uint64_t)(app->duration_s * LP_NS_PER_S);
	uint64_t next_progress = 0;
	while (lp_clock_now(&app->clock) < end && c->iterations < CABLE_MAX_ITER) {
		uint64_t now = lp_clock_now(&app->clock);
		if (now >= next_progress) { /* for a person at a terminal: not report data */
			struct hl_stats st = {0};
			if (c->link)
				hl_get_stats(c->link, &st);
			out_progress(app, (double)(now - r->t0) / LP_NS_PER_S, s->name,
				     "%.1f of %.1f s, %llu rounds, %llu errors so far",
				     (double)(now - r->t0 - s->start_ns) / LP_NS_PER_S, app->duration_s,
				     (unsigned long long)c->iterations,
				     (unsigned long long)(c->errors + link_errors + st.errors));
			next_progress = now + LP_NS_PER_S / 10;
		}
		c->iterations++;
		ret = one_round(c);
		if (ret == LP_ENODEV) {
			struct hl_stats st;
			hl_get_stats(c->link, &st);
			link_errors += st.errors;
			diag_progress(r, s, "device vanished from USB after %.2f s; waiting for it to re-enumerate",
				      (double)(lp_clock_now(&app->clock) - r->t0) / LP_NS_PER_S);
			if (reconnect(c)) {
				diag_end(r, s, DIAG_ST_FAIL, "device disconnected and did not come back within %d s",
					 CABLE_REENUM_WAIT_S);
				diag_set_verdict(r, DIAG_V_DISCONNECTED, "device left the bus during the test");
				c->link = c->link; /* closed by reconnect on failure paths below */
				goto metrics;
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
	diag_end(r, s, c->errors || c->reenums || link_errors ? DIAG_ST_FAIL : DIAG_ST_OK,
		 "%llu rounds: %zu control, %zu usbmux, %zu lockdown round trips; %llu errors, %llu re-enumerations",
		 (unsigned long long)c->iterations, c->ctrl.n, c->mux.n, c->lkd_rtt.n,
		 (unsigned long long)(c->errors + link_errors), (unsigned long long)c->reenums);
	if (c->errors || c->reenums || link_errors)
		diag_set_verdict(r, DIAG_V_FLAKY, "%llu transfer/protocol errors and %llu re-enumerations in %.1f s%s%s",
				 (unsigned long long)(c->errors + link_errors), (unsigned long long)c->reenums,
				 app->duration_s, c->first_error[0] ? "; first: " : "", c->first_error);
	else if (c->info.speed < TR_SPEED_HIGH)
		diag_set_verdict(r, DIAG_V_DEGRADED, "link runs at %s speed (%g Mb/s), not high speed (480 Mb/s)",
				 tr_speed_name(c->info.speed), (double)tr_speed_bps(c->info.speed) / 1e6);
	else
		diag_set_verdict(r, DIAG_V_GOOD, "%s speed, no errors in %llu rounds", tr_speed_name(c->info.speed),
				 (unsigned long long)c->iterations);
metrics:
	json_object_object_add(r->metrics, "speed_mbps", json_object_new_double((double)tr_speed_bps(c->info.speed) / 1e6));
	json_object_object_add(r->metrics, "duration_s", json_object_new_double(app->duration_s));
	json_object_object_add(r->metrics, "rounds", json_object_new_int64((int64_t)c->iterations));
	json_object_object_add(r->metrics, "control_rtt", diag_latency_json(c->ctrl.v, c->ctrl.n));
	json_object_object_add(r->metrics, "mux_rtt", diag_latency_json(c->mux.v, c->mux.n));
	json_object_object_add(r->metrics, "lockdown_rtt", diag_latency_json(c->lkd_rtt.v, c->lkd_rtt.n));
	json_object_object_add(r->metrics, "errors", json_object_new_int64((int64_t)(c->errors + link_errors)));
	json_object_object_add(r->metrics, "reenumerations", json_object_new_int64((int64_t)c->reenums));
}

int cmd_cable_test(struct lp_app *app)
{
	struct diag_report r;
	struct lp_errinfo e = {0};
	struct cable *c;
	int code;

	if (app_open_device(app, &e)) {
		out_error(app, "%s", e.msg);
		app_close_device(app);
		return e.code == LP_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
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
