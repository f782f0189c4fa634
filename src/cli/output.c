/* output.c - human (TTY-aware, live) and JSON rendering of a diag_report.
 *
 * Human output prints each stage when it ends, with its start time and
 * duration; a running stage that reports progress (the Trust countdown) is
 * redrawn in place on a terminal and printed once per change otherwise.
 * Colour only on a terminal, never under NO_COLOR or --no-color. JSON output
 * is one object on stdout, produced by json-c (no hand-rolled escaping). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "src/cli/app.h"
#include "src/cli/report_html.h"
#include "src/base/lp_str.h"

#define C_RESET "\033[0m"
#define C_GREEN "\033[32m"
#define C_RED "\033[31m"
#define C_YELLOW "\033[33m"
#define C_DIM "\033[2m"
#define C_BOLD "\033[1m"

static const char *col(const struct lp_app *app, const char *c) { return app->color ? c : ""; }

static void fmt_dur(char *buf, size_t n, uint64_t ns)
{
	if (ns < 10 * LP_NS_PER_MS)
		snprintf(buf, n, "%.2f ms", (double)ns / LP_NS_PER_MS);
	else if (ns < LP_NS_PER_S)
		snprintf(buf, n, "%.0f ms", (double)ns / LP_NS_PER_MS);
	else
		snprintf(buf, n, "%.2f s", (double)ns / LP_NS_PER_S);
}

struct live {
	struct lp_app *app;
	bool redraw_pending; /* a progress line is on screen without newline */
	char last_progress[DIAG_DETAIL];
};

static struct live live_state;
/* --report: transfers and progress notes for the HTML report. Static because
 * the transport's observer list outlives out_finish() (the close cancels and
 * reports transfers); released it is frozen and ignores late events. */
static struct rep_data rep_state;

static void on_stage(void *ud, const struct diag_report *r, const struct diag_stage *s)
{
	struct live *lv = ud;
	struct lp_app *app = lv->app;
	char dur[32];
	const char *mark, *c;

	(void)r;
	if (app->report_path && s->status == ST_RUNNING && s->detail[0])
		rep_add_mark(&rep_state, s->start_ns + s->duration_ns, s->name, s->detail);
	if (app->json)
		return;
	if (s->status == ST_RUNNING) {
		if (!s->detail[0])
			return;
		if (app->color) {
			fprintf(app->out, "\r\033[K  %s%8.3fs  %-16s %s%s", col(app, C_DIM),
				(double)(s->start_ns + s->duration_ns) / LP_NS_PER_S, s->name, s->detail,
				col(app, C_RESET));
			lv->redraw_pending = true;
		} else if (strcmp(lv->last_progress, s->detail) != 0) {
			fprintf(app->out, "  %8.3fs  %-16s .. %s\n",
				(double)(s->start_ns + s->duration_ns) / LP_NS_PER_S, s->name, s->detail);
			snprintf(lv->last_progress, sizeof(lv->last_progress), "%s", s->detail);
		}
		fflush(app->out);
		return;
	}
	if (lv->redraw_pending) {
		fputs("\r\033[K", app->out);
		lv->redraw_pending = false;
	}
	lv->last_progress[0] = '\0';
	switch (s->status) {
	case ST_OK: mark = "ok  "; c = C_GREEN; break;
	case ST_FAIL: mark = "FAIL"; c = C_RED; break;
	default: mark = "skip"; c = C_DIM; break;
	}
	fmt_dur(dur, sizeof(dur), s->duration_ns);
	fprintf(app->out, "  %8.3fs  %-16s %s%s%s %9s  %s\n", (double)s->start_ns / LP_NS_PER_S,
		s->name, col(app, c), mark, col(app, C_RESET), dur, s->detail);
	fflush(app->out);
}

void out_attach(struct lp_app *app, struct diag_report *r)
{
	memset(&live_state, 0, sizeof(live_state));
	live_state.app = app;
	r->on_stage = on_stage;
	r->on_stage_ud = &live_state;
	if (app->report_path) {
		rep_data_init(&rep_state, r->t0, app->file ? app->file : app->device_spec ? app->device_spec : "libusb");
		if (app->tr && tr_add_observer(app->tr, rep_observe, &rep_state))
			lp_logf(&app->log, LP_LOG_WARN, "report: no room for a transfer observer; "
				"the report will have no per-transfer timeline");
	}
	if (!app->json) {
		char spec[256];
		lp_sanitize_str(spec, sizeof(spec), app->device_spec ? app->device_spec : "libusb");
		fprintf(app->out, "%slinkprobe %s%s  (device: %s)\n", col(app, C_BOLD), r->command,
			col(app, C_RESET), spec);
	}
	if (app->cap) {
		r->on_mark = app_capture_mark;
		r->on_mark_ud = app;
	}
}

static void print_metrics(struct lp_app *app, json_object *m)
{
	if (!m || json_object_object_length(m) == 0)
		return;
	fprintf(app->out, "  metrics:\n");
	json_object_object_foreach(m, k, v) {
		if (json_object_is_type(v, json_type_object)) {
			fprintf(app->out, "    %-22s", k);
			json_object_object_foreach(v, k2, v2) {
				if (json_object_is_type(v2, json_type_object) || json_object_is_type(v2, json_type_array))
					continue; /* latency histograms: in JSON and the HTML report */
				if (json_object_is_type(v2, json_type_double))
					fprintf(app->out, " %s=%.3f", k2, json_object_get_double(v2));
				else
					fprintf(app->out, " %s=%s", k2, json_object_get_string(v2));
			}
			fputc('\n', app->out);
		} else if (json_object_is_type(v, json_type_double)) {
			fprintf(app->out, "    %-22s %.3f\n", k, json_object_get_double(v));
		} else {
			fprintf(app->out, "    %-22s %s\n", k, json_object_get_string(v));
		}
	}
}

int out_finish(struct lp_app *app, struct diag_report *r)
{
	int code = diag_verdict_exit(r->verdict);
	bool report_failed = false;

	app_replay_note(app, r);
	if (app->report_path) {
		json_object *o = diag_to_json(r);
		struct lp_errinfo e = {0};
		if (rep_html_write(app->report_path, o, &rep_state, &e)) {
			char safe[600];
			lp_sanitize_str(safe, sizeof(safe), e.msg);
			fprintf(stderr, "linkprobe: report not written: %s\n", safe);
			report_failed = true;
		}
		json_object_put(o);
		rep_data_release(&rep_state);
	}
	if (app->json) {
		json_object *o = diag_to_json(r);
		fprintf(app->out, "%s\n",
			json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		const struct diag_device *d = &r->dev;
		const char *c = code == 0 ? C_GREEN : C_RED;
		if (d->present) {
			char speed[32];
			if (d->speed_mbps > 0)
				snprintf(speed, sizeof(speed), "%g Mb/s", d->speed_mbps);
			else
				snprintf(speed, sizeof(speed), "speed unknown");
			fprintf(app->out, "  device: %04x:%04x %s%s%s, mode %s, %s%s%s\n", d->vid, d->pid,
				d->product[0] ? d->product : "?", d->udid[0] ? " " : "", d->udid, d->mode,
				speed, d->name[0] ? ", name " : "", d->name);
		}
		print_metrics(app, r->metrics);
		fprintf(app->out, "%sverdict: %s%s", col(app, C_BOLD), col(app, c), diag_verdict_name(r->verdict));
		fprintf(app->out, "%s%s%s\n", col(app, C_RESET), r->evidence[0] ? " - " : "", r->evidence);
		if (*diag_verdict_remedy(r->verdict))
			fprintf(app->out, "remedy: %s%s%s\n", diag_verdict_remedy(r->verdict),
				r->remedy_extra[0] ? " " : "", r->remedy_extra);
	}
	fflush(app->out);
	return report_failed ? EXIT_RUNTIME : code;
}

void out_error(struct lp_app *app, const char *fmt, ...)
{
	char msg[1024], safe[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lp_sanitize_str(safe, sizeof(safe), msg);
	if (app->json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "error", json_object_new_string(safe));
		json_object_object_add(o, "exit_code", json_object_new_int(EXIT_RUNTIME));
		fprintf(app->out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
		json_object_put(o);
	}
	fprintf(stderr, "linkprobe: %s\n", safe);
}
