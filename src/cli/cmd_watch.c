/* cmd_watch.c - `linkprobe watch`: every Apple device, until stopped, as JSON
 * lines on stdout (one event per line) and, with --metrics FILE, a
 * Prometheus text file for node_exporter's textfile collector. The event
 * loop and the registry are src/fleet/watch.c; the file is src/fleet/prom.c;
 * this file prints, handles SIGINT/SIGTERM and the summary.
 *
 * Lines (every one has "event", "time" (UTC, ms) and "t" (s since start)):
 *   start        device spec, probe interval, metrics file
 *   arrived      a phone not seen before: udid, port_path, bus, address,
 *                speed_mbps, mode, vid, pid
 *   reenumerated the same, for a phone back after leaving: + gap_s, count
 *   left         udid, port_path, departures
 *   speed        old_speed_mbps -> speed_mbps (a phone back at another speed)
 *   probe        control/usbmux/lockdown round trips in ms (null: failed or
 *                not probed), errors so far, product_type once known
 *   error        probe (control|usbmux|lockdown), message
 *   summary      at the end: totals, devices present, max RSS */
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "src/cli/app.h"
#include "src/fleet/prom.h"
#include "src/fleet/watch.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

struct wctx {
	struct lp_app *app;
	uint64_t t0;
	bool metrics_failed;
};

/* a number with `dec` decimals, printed as such (not 0.0051999999999999998) */
static json_object *num(double v, int dec)
{
	char b[48];

	snprintf(b, sizeof(b), "%.*f", dec, v);
	return json_object_new_double_s(v, b);
}

static json_object *line(const struct wctx *w, const char *event, uint64_t t_ns)
{
	json_object *o = json_object_new_object();
	uint64_t wall = lp_clock_wall(&w->app->clock, t_ns);
	time_t secs = (time_t)(wall / LP_NS_PER_S);
	struct tm tm;
	char ts[40];

	gmtime_r(&secs, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(wall % LP_NS_PER_S / LP_NS_PER_MS));
	json_object_object_add(o, "event", json_object_new_string(event));
	json_object_object_add(o, "time", json_object_new_string(ts));
	json_object_object_add(o, "t", num((double)(t_ns - w->t0) / LP_NS_PER_S, 3));
	return o;
}

static void emit(const struct wctx *w, json_object *o)
{
	fprintf(w->app->out, "%s\n",
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							  JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(w->app->out);
	json_object_put(o);
}

static void add_dev(json_object *o, const struct watch_dev *d)
{
	json_object_object_add(o, "udid", json_object_new_string(d->udid));
	json_object_object_add(o, "port_path", json_object_new_string(d->port_path));
	json_object_object_add(o, "bus", json_object_new_int(d->bus));
	json_object_object_add(o, "address", json_object_new_int(d->addr));
	json_object_object_add(o, "speed_mbps", num((double)tr_speed_bps(d->speed) / 1e6, 1));
	if (d->product_type[0])
		json_object_object_add(o, "product_type", json_object_new_string(d->product_type));
}

static json_object *ms_or_null(double s)
{
	return s < 0 ? NULL : num(s * 1e3, 3);
}

static void on_event(void *ud, const struct watch_event *ev)
{
	struct wctx *w = ud;
	const struct watch_dev *d = ev->dev;
	json_object *o = line(w, watch_ev_name(ev->kind), ev->t_ns);
	uint64_t errs = 0;

	add_dev(o, d);
	switch (ev->kind) {
	case WATCH_EV_ARRIVED:
	case WATCH_EV_REENUMERATED:
		json_object_object_add(o, "mode", json_object_new_string(d->mode ? d->mode : "?"));
		json_object_object_add(o, "vid", json_object_new_int(d->vid));
		json_object_object_add(o, "pid", json_object_new_int(d->pid));
		if (ev->kind == WATCH_EV_REENUMERATED) {
			json_object_object_add(o, "gap_s", num(ev->gap_s, 3));
			json_object_object_add(o, "reenumerations",
					       json_object_new_int64((int64_t)d->reenumerations));
		}
		break;
	case WATCH_EV_LEFT:
		json_object_object_add(o, "departures",
				       json_object_new_int64((int64_t)d->departures));
		break;
	case WATCH_EV_SPEED:
		json_object_object_add(o, "old_speed_mbps",
				       num((double)tr_speed_bps(ev->old_speed) / 1e6, 1));
		break;
	case WATCH_EV_PROBE:
		json_object_object_add(o, "control_ms", ms_or_null(ev->rtt_s[WATCH_PROBE_CONTROL]));
		json_object_object_add(o, "usbmux_ms", ms_or_null(ev->rtt_s[WATCH_PROBE_USBMUX]));
		json_object_object_add(o, "lockdown_ms",
				       ms_or_null(ev->rtt_s[WATCH_PROBE_LOCKDOWN]));
		for (int k = 0; k < WATCH_NPROBE; k++)
			errs += d->probe_errors[k];
		json_object_object_add(o, "probe_errors", json_object_new_int64((int64_t)errs));
		json_object_object_add(o, "transfer_errors",
				       json_object_new_int64((int64_t)d->transfer_errors));
		if (d->held)
			json_object_object_add(o, "usbmux_held", json_object_new_boolean(true));
		break;
	case WATCH_EV_ERROR:
		json_object_object_add(o, "probe",
				       json_object_new_string(watch_probe_name(ev->failed)));
		json_object_object_add(o, "message",
				       json_object_new_string(ev->msg ? ev->msg : ""));
		break;
	}
	emit(w, o);
}

static void write_metrics(struct wctx *w, const struct watch *wt, bool running)
{
	struct lp_errinfo e = {0};

	if (!w->app->metrics_path)
		return;
	if (prom_write(wt, w->app->metrics_path, running, &e)) {
		if (!w->metrics_failed) /* once, not every second */
			lp_logf(&w->app->log, LP_LOG_ERROR, "%s", e.msg);
		w->metrics_failed = true;
	} else {
		w->metrics_failed = false;
	}
}

static void on_tick(void *ud, const struct watch *wt)
{
	write_metrics(ud, wt, true);
}

int cmd_watch(struct lp_app *app)
{
	struct lp_errinfo e = {0};
	struct watch_opts o;
	struct watch *wt = NULL;
	struct watch_totals t;
	struct sigaction sa;
	struct rusage ru;
	struct wctx w = {.app = app};
	json_object *j;
	int r, code = EXIT_GOOD;

	if (app_open_device(app, &e)) {
		code = out_open_failed(app, &e, NULL);
		app_close_device(app);
		return code;
	}
	/* no SA_RESTART: a sleep or poll ends at once and the loop sees the flag */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	w.t0 = lp_clock_now(&app->clock);
	j = line(&w, "start", w.t0);
	json_object_object_add(
		j, "device",
		json_object_new_string(app->device_spec ? app->device_spec : "libusb"));
	json_object_object_add(j, "probe_interval_s", json_object_new_double(app->interval_s));
	if (app->metrics_path)
		json_object_object_add(j, "metrics", json_object_new_string(app->metrics_path));
	if (app->watch_duration_s > 0)
		json_object_object_add(j, "duration_s",
				       json_object_new_double(app->watch_duration_s));
	emit(&w, j);

	memset(&o, 0, sizeof(o));
	o.probe_ns = (uint64_t)(app->interval_s * LP_NS_PER_S);
	o.duration_ns = (uint64_t)(app->watch_duration_s * LP_NS_PER_S);
	o.stop = &stop_signal;
	o.tick = on_tick;
	o.on_event = on_event;
	o.ud = &w;
	r = watch_run(app->tr, &o, &wt, &e);
	write_metrics(&w, wt, false);

	watch_get_totals(wt, &t);
	getrusage(RUSAGE_SELF, &ru);
	j = line(&w, "summary", lp_clock_now(&app->clock));
	json_object_object_add(j, "reason",
			       json_object_new_string(r			       ? "error"
						      : stop_signal == SIGINT  ? "SIGINT"
						      : stop_signal == SIGTERM ? "SIGTERM"
									       : "duration"));
	json_object_object_add(j, "seconds", num(t.seconds, 3));
	json_object_object_add(j, "devices_seen", json_object_new_int64((int64_t)t.devices_seen));
	json_object_object_add(j, "devices_present",
			       json_object_new_int64((int64_t)t.devices_present));
	json_object_object_add(j, "arrivals", json_object_new_int64((int64_t)t.arrivals));
	json_object_object_add(j, "departures", json_object_new_int64((int64_t)t.departures));
	json_object_object_add(j, "reenumerations",
			       json_object_new_int64((int64_t)t.reenumerations));
	json_object_object_add(j, "probes", json_object_new_int64((int64_t)t.probes));
	json_object_object_add(j, "probe_errors", json_object_new_int64((int64_t)t.probe_errors));
	json_object_object_add(j, "transfer_errors",
			       json_object_new_int64((int64_t)t.transfer_errors));
	json_object_object_add(j, "max_rss_kb", json_object_new_int64((int64_t)ru.ru_maxrss));
	if (r)
		json_object_object_add(j, "error", json_object_new_string(e.msg));
	emit(&w, j);
	if (!app->quiet)
		fprintf(stderr,
			"linkprobe watch: %.1f s, %zu device(s) seen, %zu present at the end; "
			"%llu arrivals, %llu departures, %llu re-enumerations, %llu probes, "
			"%llu probe errors%s%s\n",
			t.seconds, t.devices_seen, t.devices_present,
			(unsigned long long)t.arrivals, (unsigned long long)t.departures,
			(unsigned long long)t.reenumerations, (unsigned long long)t.probes,
			(unsigned long long)t.probe_errors, r ? "; stopped by an error: " : "",
			r ? e.msg : "");
	if (r)
		code = EXIT_RUNTIME;
	else if (w.metrics_failed)
		code = EXIT_RUNTIME;
	watch_free(wt);
	app_close_device(app);
	return code;
}
