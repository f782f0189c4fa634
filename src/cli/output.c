/* output.c - human (TTY-aware, live) and JSON rendering of a diag_report,
 * the log sink, verbose transfer logs, and the --report hook.
 *
 * Human output prints each stage when it ends, with its start time and
 * duration. Terminal rules:
 *  - A progress line (the Trust countdown; the cable test's running totals)
 *    is one line redrawn in place on a terminal, cut to the terminal's width
 *    (TIOCGWINSZ, else COLUMNS, else 80) so it never wraps: under 80 columns
 *    without the time column, and a trailing "(...)" (the seconds left)
 *    survives the cut. Off a terminal each change
 *    of a stage's progress is printed once on its own line; the cable test's
 *    totals are not printed at all.
 *  - Redrawing does not depend on colour: "\r" and erase-line; under
 *    TERM=dumb (or no TERM) no escape sequence at all: "\r", the text, and
 *    spaces over the rest of the previous text.
 *  - Colour only on a terminal whose TERM is not dumb, never under a
 *    non-empty NO_COLOR or --no-color.
 *  - --json: stdout holds only the JSON object; progress meant for a person
 *    ("tap Trust", "unlock it") goes to stderr. -q: stdout holds only the
 *    verdict line; those prompts still reach stderr when it is a terminal.
 *  - Log: at default verbosity a warning that repeats (same text, numbers
 *    aside) is printed once, and the rest are one line with a count before
 *    the verdict. -vv adds one line per USB transfer, -vvv its payload as a
 *    hex dump (secrets redacted unless --no-redact).
 * JSON output is one object on stdout, produced by json-c (no hand-rolled
 * escaping). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "src/cli/app.h"
#include "src/cli/report_html.h"
#include "src/diag/rules.h"
#include "src/base/lp_str.h"
#include "src/capture/cap_tap.h"
#include "usb/transport.h"

#define C_RESET "\033[0m"
#define C_GREEN "\033[32m"
#define C_RED "\033[31m"
#define C_YELLOW "\033[33m"
#define C_DIM "\033[2m"
#define C_BOLD "\033[1m"

static const char *col(const struct lp_app *app, const char *c)
{
	return app->color ? c : "";
}

static void fmt_dur(char *buf, size_t n, uint64_t ns)
{
	if (ns < 10 * LP_NS_PER_MS)
		snprintf(buf, n, "%.2f ms", (double)ns / LP_NS_PER_MS);
	else if (ns < LP_NS_PER_S)
		snprintf(buf, n, "%.0f ms", (double)ns / LP_NS_PER_MS);
	else
		snprintf(buf, n, "%.2f s", (double)ns / LP_NS_PER_S);
}

static bool term_dumb(void)
{
	const char *t = getenv("TERM");
	return !t || !*t || strcmp(t, "dumb") == 0;
}

static int term_cols(FILE *f)
{
	struct winsize ws;
	const char *c = getenv("COLUMNS");
	char *end;

	if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	if (c && *c) {
		long v = strtol(c, &end, 10);
		if (*end == '\0' && v >= 10 && v <= 1000)
			return (int)v;
	}
	return 80;
}

bool out_use_color(bool no_color_opt, bool json)
{
	const char *nc = getenv("NO_COLOR");
	return !no_color_opt && !(nc && *nc) && !json && isatty(STDOUT_FILENO) && !term_dumb();
}

/* columns of a UTF-8 string (one per code point: our text is ASCII or
 * sanitized; wide characters are not worth a wcwidth here) */
static size_t cols_of(const char *s, size_t n)
{
	size_t w = 0;
	for (size_t i = 0; i < n && s[i]; i++)
		w += ((unsigned char)s[i] & 0xc0) != 0x80;
	return w;
}

/* bytes of the first `cols` columns of s */
static size_t bytes_for(const char *s, size_t cols)
{
	size_t i = 0, w = 0;
	while (s[i]) {
		if (((unsigned char)s[i] & 0xc0) != 0x80) {
			if (w == cols)
				break;
			w++;
		}
		i++;
	}
	return i;
}

/* Fit `text` into `max` columns: cut with "...", keeping a trailing "(...)"
 * group (the countdown) when it is short enough. Returns columns used. */
static size_t fit(char *dst, size_t n, const char *text, size_t max)
{
	size_t w = cols_of(text, strlen(text)), len = strlen(text);
	const char *tail = NULL;

	if (w <= max) {
		snprintf(dst, n, "%s", text);
		return w;
	}
	if (max < 8) {
		snprintf(dst, n, "%.*s", (int)bytes_for(text, max), text);
		return max;
	}
	if (len && text[len - 1] == ')')
		tail = strrchr(text, '(');
	if (tail && cols_of(tail, strlen(tail)) * 2 <= max) {
		size_t tw = cols_of(tail, strlen(tail)), head = max - tw - 4;
		snprintf(dst, n, "%.*s... %s", (int)bytes_for(text, head), text, tail);
		return head + 4 + tw;
	}
	snprintf(dst, n, "%.*s...", (int)bytes_for(text, max - 3), text);
	return max;
}

struct live {
	struct lp_app *app;
	FILE *line_f;	 /* where a progress line is on screen without newline (NULL: none) */
	size_t line_len; /* its columns (TERM=dumb blanks them with spaces) */
	char last_progress[DIAG_DETAIL];
};

static struct live live_state;
/* --report: transfers and progress notes for the HTML report. Static because
 * the transport's observer list outlives out_finish() (the close cancels and
 * reports transfers); released it is frozen and ignores late events. */
static struct rep_data rep_state;

static void line_clear(struct live *lv)
{
	FILE *f = lv->line_f;

	if (!f)
		return;
	if (term_dumb()) {
		fputc('\r', f);
		for (size_t i = 0; i < lv->line_len; i++)
			fputc(' ', f);
		fputc('\r', f);
	} else {
		fputs("\r\033[K", f);
	}
	fflush(f);
	lv->line_f = NULL;
	lv->line_len = 0;
}

/* Draw a progress line (`name` and `detail` of the stage at `t_s`) as the one
 * live line on terminal f; under 80 columns without the time column. */
static void line_show(struct live *lv, FILE *f, double t_s, const char *name, const char *detail)
{
	char text[DIAG_DETAIL + 64], buf[DIAG_DETAIL + 128];
	int cols = term_cols(f);
	size_t w;

	if (cols >= 80)
		snprintf(text, sizeof(text), "  %8.3fs  %-16s %s", t_s, name, detail);
	else
		snprintf(text, sizeof(text), "%s  %s", name, detail);
	w = fit(buf, sizeof(buf), text, cols > 1 ? (size_t)cols - 1 : 1);
	bool dim = lv->app->color && f == lv->app->out;

	if (lv->line_f && lv->line_f != f)
		line_clear(lv);
	if (term_dumb()) {
		fputc('\r', f);
		fputs(buf, f);
		for (size_t i = w; i < lv->line_len; i++)
			fputc(' ', f);
	} else {
		fprintf(f, "\r\033[K%s%s%s", dim ? C_DIM : "", buf, dim ? C_RESET : "");
	}
	fflush(f);
	lv->line_f = f;
	lv->line_len = w; /* anything past it is blank now */
}

/* Where progress meant for a person goes: stdout normally, stderr under
 * --json, stderr under -q only if it is a terminal; NULL = nowhere. */
static FILE *prompt_stream(const struct lp_app *app)
{
	if (app->json)
		return stderr;
	if (app->quiet)
		return isatty(STDERR_FILENO) ? stderr : NULL;
	return app->out;
}

static void on_stage(void *ud, const struct diag_report *r, const struct diag_stage *s)
{
	struct live *lv = ud;
	struct lp_app *app = lv->app;
	char dur[32];
	const char *mark, *c;

	(void)r;
	if (app->report_path && s->status == DIAG_ST_RUNNING && s->detail[0])
		rep_add_mark(&rep_state, s->start_ns + s->duration_ns, s->name, s->detail);
	if (s->status == DIAG_ST_RUNNING) {
		FILE *f = prompt_stream(app);
		if (!s->detail[0] || !f)
			return;
		if (isatty(fileno(f))) {
			line_show(lv, f, (double)(s->start_ns + s->duration_ns) / LP_NS_PER_S,
				  s->name, s->detail);
		} else if (strcmp(lv->last_progress, s->detail) != 0) {
			fprintf(f, "  %8.3fs  %-16s .. %s\n",
				(double)(s->start_ns + s->duration_ns) / LP_NS_PER_S, s->name,
				s->detail);
			snprintf(lv->last_progress, sizeof(lv->last_progress), "%s", s->detail);
			fflush(f);
		}
		return;
	}
	line_clear(lv);
	lv->last_progress[0] = '\0';
	if (app->json || app->quiet)
		return;
	switch (s->status) {
	case DIAG_ST_OK:
		mark = "ok  ";
		c = C_GREEN;
		break;
	case DIAG_ST_FAIL:
		mark = "FAIL";
		c = C_RED;
		break;
	default:
		mark = "skip";
		c = C_DIM;
		break;
	}
	fmt_dur(dur, sizeof(dur), s->duration_ns);
	fprintf(app->out, "  %8.3fs  %-16s %s%s%s %9s  %s\n", (double)s->start_ns / LP_NS_PER_S,
		s->name, col(app, c), mark, col(app, C_RESET), dur, s->detail);
	fflush(app->out);
}

void out_progress(struct lp_app *app, double t_s, const char *stage, const char *fmt, ...)
{
	char detail[DIAG_DETAIL];
	va_list ap;

	if (app->json || app->quiet || !isatty(fileno(app->out)))
		return;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	live_state.app = app;
	line_show(&live_state, app->out, t_s, stage, detail);
}

/* ------------------------------------------------------------------------
 * Log sink: sanitized, warnings folded at default verbosity
 */

#define FOLD_MAX 64
#define FOLD_KEY 200

static struct fold {
	char key[FOLD_KEY]; /* the message with every number (decimal, 0x hex) as '#' */
	uint64_t more;	    /* repeats not printed */
} folds[FOLD_MAX];
static size_t nfolds;

static void fold_key(char *dst, size_t n, const char *msg)
{
	size_t o = 0;
	for (const char *p = msg; *p && o + 1 < n; p++) {
		if (p[0] == '0' && p[1] == 'x' && isxdigit((unsigned char)p[2]) && o + 3 < n) {
			dst[o++] = '0', dst[o++] = 'x', dst[o++] = '#';
			for (p += 2; isxdigit((unsigned char)p[1]); p++)
				;
		} else if (*p >= '0' && *p <= '9') {
			dst[o++] = '#';
			while (p[1] >= '0' && p[1] <= '9')
				p++;
		} else {
			dst[o++] = *p;
		}
	}
	dst[o] = '\0';
}

void out_log_sink(void *ud, enum lp_log_level level, const char *msg)
{
	static const char *names[] = {"error", "warn", "info", "debug", "trace"};
	struct lp_app *app = ud;
	char safe[1024], key[FOLD_KEY];

	/* log messages may quote device or host strings: one place keeps them safe */
	lp_sanitize_str(safe, sizeof(safe), msg);
	if (level == LP_LOG_WARN && app && app->verbose == 0) {
		fold_key(key, sizeof(key), safe);
		for (size_t i = 0; i < nfolds; i++)
			if (strcmp(folds[i].key, key) == 0) {
				folds[i].more++;
				return;
			}
		if (nfolds < FOLD_MAX)
			snprintf(folds[nfolds++].key, FOLD_KEY, "%s", key);
	}
	if (live_state.line_f && isatty(STDERR_FILENO))
		line_clear(&live_state); /* the progress line would swallow this one */
	fprintf(stderr, "linkprobe: %s: %s\n", names[level <= LP_LOG_TRACE ? level : LP_LOG_TRACE],
		safe);
}

void out_log_flush(void)
{
	for (size_t i = 0; i < nfolds; i++)
		if (folds[i].more) {
			fprintf(stderr, "linkprobe: warn: %llu more like \"%s\" (-v prints each)\n",
				(unsigned long long)folds[i].more, folds[i].key);
			folds[i].more = 0;
		}
	fflush(stderr);
}

/* ------------------------------------------------------------------------
 * -vv: one line per transfer; -vvv: payload hex dumps (redacted)
 */

#define XLOG_EPS 32
#define XLOG_DUMP_MAX 512 /* bytes dumped per transfer; the rest counted */

static struct xlog {
	struct lp_app *app;
	uint8_t ep[XLOG_EPS];
	struct cap_redactor red[XLOG_EPS];
	size_t n;
} xlog;

static struct cap_redactor *xlog_redactor(uint8_t ep)
{
	for (size_t i = 0; i < xlog.n; i++)
		if (xlog.ep[i] == ep)
			return &xlog.red[i];
	if (xlog.n == XLOG_EPS)
		return NULL;
	xlog.ep[xlog.n] = ep;
	cap_redactor_init(&xlog.red[xlog.n]);
	return &xlog.red[xlog.n++];
}

static void hexdump(struct lp_app *app, const struct tr_xfer *x, const uint8_t *data, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	size_t shown = len < XLOG_DUMP_MAX ? len : XLOG_DUMP_MAX;

	if (!copy)
		return;
	memcpy(copy, data, len);
	if (!app->no_redact) {
		struct cap_redactor *r = xlog_redactor(x->endpoint);
		if (r)
			cap_redactor_feed(r, copy, len);
		else
			cap_redact(copy, len);
	}
	for (size_t off = 0; off < shown; off += 16) {
		char hex[16 * 3 + 2] = "", asc[17] = "";
		size_t n = shown - off < 16 ? shown - off : 16, h = 0;
		for (size_t i = 0; i < n; i++) {
			uint8_t b = copy[off + i];
			h += (size_t)snprintf(hex + h, sizeof(hex) - h, "%02x%s", b,
					      i == 7 ? "  " : " ");
			asc[i] = b >= 0x20 && b < 0x7f ? (char)b : '.';
		}
		asc[n] = '\0';
		lp_logf(&app->log, LP_LOG_TRACE, "  %04zx  %-50s|%s|", off, hex, asc);
	}
	if (len > shown)
		lp_logf(&app->log, LP_LOG_TRACE, "  ... %zu more bytes", len - shown);
	free(copy);
}

static void xfer_log(void *ud, enum tr_event ev, const struct tr_xfer *x, int submit_err)
{
	struct lp_app *app = ud;
	bool in = x->endpoint & 0x80;
	const char *type = x->type == TR_XFER_CONTROL ? "control" : "bulk";

	if (ev == TR_EV_SUBMIT) {
		if (app->verbose < 3)
			return;
		if (x->type == TR_XFER_CONTROL)
			lp_logf(&app->log, LP_LOG_TRACE,
				"xfer %llu setup %02x %02x %02x%02x %02x%02x %02x%02x",
				(unsigned long long)x->id, x->setup[0], x->setup[1], x->setup[3],
				x->setup[2], x->setup[5], x->setup[4], x->setup[7], x->setup[6]);
		if (!in && x->buf && x->len) {
			lp_logf(&app->log, LP_LOG_TRACE, "xfer %llu ep 0x%02x %s OUT: %zu bytes",
				(unsigned long long)x->id, x->endpoint, type, x->len);
			hexdump(app, x, x->buf, x->len);
		}
		return;
	}
	if (ev == TR_EV_SUBMIT_ERROR) {
		lp_logf(&app->log, LP_LOG_DEBUG, "xfer ep 0x%02x %s %s: could not submit: %s",
			x->endpoint, type, in ? "IN" : "OUT", lp_strerror(submit_err));
		return;
	}
	lp_logf(&app->log, LP_LOG_DEBUG,
		"xfer %llu ep 0x%02x %s %s: %zu of %zu bytes in %.3f ms, %s",
		(unsigned long long)x->id, x->endpoint, type, in ? "IN" : "OUT", x->actual, x->len,
		(double)(x->done_ns - x->submit_ns) / LP_NS_PER_MS, tr_status_name(x->status));
	if (app->verbose >= 3 && in && x->buf && x->actual)
		hexdump(app, x, x->buf, x->actual);
}

void out_attach(struct lp_app *app, struct diag_report *r)
{
	memset(&live_state, 0, sizeof(live_state));
	live_state.app = app;
	r->on_stage = on_stage;
	r->on_stage_ud = &live_state;
	if (app->verbose >= 2 && app->tr && xlog.app != app) {
		xlog.app = app;
		if (tr_add_observer(app->tr, xfer_log, app))
			lp_logf(&app->log, LP_LOG_WARN, "no room for the transfer log observer");
	}
	if (app->report_path) {
		rep_data_init(&rep_state, r->t0,
			      app->file		 ? app->file
			      : app->device_spec ? app->device_spec
						 : "libusb");
		if (app->tr && tr_add_observer(app->tr, rep_observe, &rep_state))
			lp_logf(&app->log, LP_LOG_WARN,
				"report: no room for a transfer observer; "
				"the report will have no per-transfer timeline");
	}
	if (!app->json && !app->quiet) {
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
	json_object_object_foreach(m, k, v)
	{
		if (json_object_is_type(v, json_type_object)) {
			fprintf(app->out, "    %-22s", k);
			json_object_object_foreach(v, k2, v2)
			{
				if (json_object_is_type(v2, json_type_object) ||
				    json_object_is_type(v2, json_type_array))
					continue; /* latency histograms: in JSON and the HTML report */
				if (json_object_is_type(v2, json_type_double))
					fprintf(app->out, " %s=%.3f", k2,
						json_object_get_double(v2));
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
	line_clear(&live_state);
	out_log_flush();
	if (app->report_path) {
		json_object *o;
		struct lp_errinfo e = {0};
		if (app->file && !app->tr &&
		    rep_collect_capture(&rep_state, app->file, app->usbmuxd_port, &e))
			lp_logf(&app->log, LP_LOG_WARN, "report: no transfer timeline: %s", e.msg);
		o = diag_to_json(r);
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
			json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								  JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else if (app->quiet) {
		fprintf(app->out, "verdict: %s%s%s\n", diag_verdict_name(r->verdict),
			r->evidence[0] ? " - " : "", r->evidence);
	} else {
		const struct diag_device *d = &r->dev;
		const char *c = code == 0 ? C_GREEN : C_RED;
		if (d->present) {
			char speed[32];
			if (d->speed_mbps > 0)
				snprintf(speed, sizeof(speed), "%g Mb/s", d->speed_mbps);
			else
				snprintf(speed, sizeof(speed), "speed unknown");
			char ids[48];
			if (d->vid || d->pid)
				snprintf(ids, sizeof(ids), "%04x:%04x", d->vid, d->pid);
			else /* analyze: descriptors not in the capture */
				snprintf(ids, sizeof(ids), "bus %u address %u, ids unknown", d->bus,
					 d->addr);
			fprintf(app->out, "  device: %s%s%s%s%s, mode %s, %s%s%s\n", ids,
				d->vid || d->pid || d->product[0] ? " " : "",
				d->product[0]	   ? d->product
				: d->vid || d->pid ? "?"
						   : "",
				d->udid[0] ? " " : "", d->udid, d->mode, speed,
				d->name[0] ? ", name " : "", d->name);
		}
		print_metrics(app, r->metrics);
		fprintf(app->out, "%sverdict: %s%s", col(app, C_BOLD), col(app, c),
			diag_verdict_name(r->verdict));
		fprintf(app->out, "%s%s%s\n", col(app, C_RESET), r->evidence[0] ? " - " : "",
			r->evidence);
		if (*diag_remedy(r))
			fprintf(app->out, "remedy: %s%s%s\n", diag_remedy(r),
				r->remedy_extra[0] ? " " : "", r->remedy_extra);
	}
	fflush(app->out);
	return report_failed ? EXIT_RUNTIME : code;
}

static void out_verror(struct lp_app *app, int code, const char *fmt, va_list ap)
{
	char msg[1024], safe[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	lp_sanitize_str(safe, sizeof(safe), msg);
	line_clear(&live_state);
	out_log_flush();
	if (app->json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "error", json_object_new_string(safe));
		json_object_object_add(o, "exit_code", json_object_new_int(code));
		fprintf(app->out, "%s\n",
			json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								  JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	}
	fprintf(stderr, "linkprobe: %s\n", safe);
}

void out_error(struct lp_app *app, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	out_verror(app, EXIT_RUNTIME, fmt, ap);
	va_end(ap);
}

int out_usage_error(struct lp_app *app, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	out_verror(app, EXIT_USAGE, fmt, ap);
	va_end(ap);
	return EXIT_USAGE;
}

int out_open_failed(struct lp_app *app, const struct lp_errinfo *e, const char *command)
{
	const char *spec = app->device_spec ? app->device_spec : "libusb";
	struct diag_report r;
	struct diag_stage *s;
	int code;

	if (e->code == LP_EINVAL)
		return out_usage_error(app, "%s", e->msg);
	if (!command || e->code != LP_ENODEV || strcmp(spec, "libusb") != 0) {
		out_error(app, "%s", e->msg);
		return EXIT_RUNTIME;
	}
	/* the USB stack itself did not start (tr_libusb: LP_ENODEV): a
	 * diagnosis of this host, as when it lists no host controller */
	diag_init(&r, command, &app->clock);
	out_attach(app, &r);
	s = diag_stage_begin(&r, strcmp(command, "list") == 0 ? DIAG_STAGE_ENUMERATE
							      : DIAG_STAGE_FIND_DEVICE);
	diag_rule_usb_unavailable(&r, s, e->msg);
	code = out_finish(app, &r);
	diag_release(&r);
	return code;
}
