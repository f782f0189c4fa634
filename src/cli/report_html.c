/* report_html.c - the self-contained HTML report (see report_html.h).
 *
 * Layout, top to bottom: verdict, evidence and remedy; the device card; the
 * stage timeline (an SVG drawn to scale: one bar per stage, failures red,
 * the Trust wait and stalls hatched, progress notes as ticks, <title> on
 * everything for hover detail) with the stage table under it; latency
 * histograms and percentiles per probe kind; the USB transfers per endpoint
 * on the same time axis (activity, errors, gaps, disconnects); the
 * analyzer's anomalies with packet numbers; the remaining metrics.
 *
 * Everything is built in one growable buffer; allocation failure is sticky
 * and reported once at the end. No string reaches the page unescaped except
 * the fixed markup in this file. */
#include "src/cli/report_html.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/capture/reader.h"
#include "src/cli/app.h"
#include "src/diag/diag.h"

/* ------------------------------------------------------------------------
 * Series
 */

void rep_data_init(struct rep_data *d, uint64_t t0_ns, const char *source)
{
	memset(d, 0, sizeof(*d));
	d->t0_ns = t0_ns;
	d->source = source;
}

void rep_data_release(struct rep_data *d)
{
	free(d->x);
	free(d->m);
	d->x = NULL;
	d->m = NULL;
	d->nx = d->capx = d->nm = d->capm = 0;
	d->frozen = true;
}

int rep_add_xfer(struct rep_data *d, const struct rep_xfer *x)
{
	if (d->frozen)
		return 0;
	if (d->nx >= REP_MAX_XFERS) {
		d->dropped++;
		return 0;
	}
	if (d->nx == d->capx) {
		size_t cap = d->capx ? d->capx * 2 : 1024;
		struct rep_xfer *p;
		if (cap > REP_MAX_XFERS)
			cap = REP_MAX_XFERS;
		p = realloc(d->x, cap * sizeof(*p));
		if (!p) {
			d->dropped++;
			return LP_ENOMEM;
		}
		d->x = p;
		d->capx = cap;
	}
	d->x[d->nx++] = *x;
	return 0;
}

int rep_add_mark(struct rep_data *d, uint64_t t_ns, const char *stage, const char *text)
{
	struct rep_mark *m;

	if (d->frozen || d->nm >= REP_MAX_MARKS)
		return 0;
	if (d->nm && strcmp(d->m[d->nm - 1].text, text) == 0 &&
	    strcmp(d->m[d->nm - 1].stage, stage) == 0)
		return 0;
	if (d->nm == d->capm) {
		size_t cap = d->capm ? d->capm * 2 : 16;
		struct rep_mark *p = realloc(d->m, cap * sizeof(*p));
		if (!p)
			return LP_ENOMEM;
		d->m = p;
		d->capm = cap;
	}
	m = &d->m[d->nm++];
	m->t_ns = t_ns;
	snprintf(m->stage, sizeof(m->stage), "%s", stage);
	snprintf(m->text, sizeof(m->text), "%s", text);
	return 0;
}

static uint64_t rel(const struct rep_data *d, uint64_t t)
{
	return t > d->t0_ns ? t - d->t0_ns : 0;
}

void rep_observe(void *ud, enum tr_event ev, const struct tr_xfer *x, int submit_err)
{
	struct rep_data *d = ud;
	struct rep_xfer r = {0};

	if (d->frozen || ev == TR_EV_SUBMIT)
		return;
	r.endpoint = x->endpoint;
	r.type = (uint8_t)x->type;
	r.start_ns = rel(d, x->submit_ns);
	if (ev == TR_EV_SUBMIT_ERROR) {
		r.end_ns = r.start_ns;
		r.kind = submit_err == LP_ENODEV ? REP_X_GONE : REP_X_ERROR;
	} else {
		r.end_ns = rel(d, x->done_ns);
		r.bytes = x->actual > UINT32_MAX ? UINT32_MAX : (uint32_t)x->actual;
		switch (x->status) {
		case TR_STATUS_COMPLETED:
			r.kind = REP_X_OK;
			break;
		case TR_STATUS_STALL:
			r.kind = REP_X_STALL;
			break;
		case TR_STATUS_TIMED_OUT:
			r.kind = REP_X_TIMEOUT;
			break;
		case TR_STATUS_CANCELLED:
			r.kind = REP_X_CANCELLED;
			break;
		case TR_STATUS_NO_DEVICE:
			r.kind = REP_X_GONE;
			break;
		default:
			r.kind = REP_X_ERROR;
			break;
		}
	}
	if (r.end_ns < r.start_ns)
		r.end_ns = r.start_ns;
	rep_add_xfer(d, &r);
}

/* ------------------------------------------------------------------------
 * analyze --report: the transfers of a capture, read with the reader the
 * analyzer uses (a second pass, only when a report is asked for)
 */

#define REP_CAP_QUEUES 128 /* (enumeration, endpoint) pairs followed */
#define REP_CAP_FIFO 64	   /* outstanding submits per endpoint */

struct cap_collect {
	struct rep_data *d;
	struct {
		unsigned usb;
		uint8_t ep;
		uint64_t t[REP_CAP_FIFO];
		unsigned head, n;
	} q[REP_CAP_QUEUES];
	size_t nq;
};

/* Linux URB status (usbmon's form; USBPcap's is mapped by the reader) */
static uint8_t kind_of_status(int32_t st)
{
	switch (st) {
	case 0:
		return REP_X_OK;
	case -32:
		return REP_X_STALL; /* EPIPE */
	case -110:
	case -62:
		return REP_X_TIMEOUT; /* ETIMEDOUT, ETIME */
	case -2:
	case -104:
		return REP_X_CANCELLED; /* ENOENT, ECONNRESET: unlinked */
	case -19:
	case -108:
		return REP_X_GONE; /* ENODEV, ESHUTDOWN */
	default:
		return REP_X_ERROR;
	}
}

static bool collect_event(void *ud, const struct cap_event *ev)
{
	struct cap_collect *c = ud;
	const struct cap_transfer *x = &ev->u.x;
	struct rep_xfer r = {0};
	size_t i;

	if (ev->type != CAP_EV_TRANSFER || !ev->usb)
		return true;
	for (i = 0; i < c->nq; i++)
		if (c->q[i].usb == ev->usb->index && c->q[i].ep == x->ep)
			break;
	if (i == c->nq && c->nq < REP_CAP_QUEUES) {
		c->q[i].usb = ev->usb->index;
		c->q[i].ep = x->ep;
		c->q[i].head = c->q[i].n = 0;
		c->nq++;
	}
	if (x->type == 'S') {
		/* an endpoint's URBs complete in the order they were submitted */
		if (i < c->nq && c->q[i].n < REP_CAP_FIFO)
			c->q[i].t[(c->q[i].head + c->q[i].n++) % REP_CAP_FIFO] = ev->t;
		return true;
	}
	r.end_ns = ev->t;
	r.start_ns = ev->t;
	if (x->type == 'C' && i < c->nq && c->q[i].n) {
		r.start_ns = c->q[i].t[c->q[i].head];
		c->q[i].head = (c->q[i].head + 1) % REP_CAP_FIFO;
		c->q[i].n--;
	}
	if (r.start_ns > r.end_ns)
		r.start_ns = r.end_ns;
	r.endpoint = x->ep;
	r.type = x->xfer == 2 ? TR_XFER_CONTROL : TR_XFER_BULK;
	r.bytes = x->type == 'C' ? x->len : 0;
	r.packet = ev->pkt > UINT32_MAX ? UINT32_MAX : (uint32_t)ev->pkt;
	r.kind = kind_of_status(x->status);
	if (x->type == 'E' && r.kind == REP_X_OK)
		r.kind = REP_X_ERROR;
	rep_add_xfer(c->d, &r);
	return true;
}

int rep_collect_capture(struct rep_data *d, const char *path, int usbmuxd_port,
			struct lp_errinfo *e)
{
	struct cap_reader_opts o = {.usbmuxd_port = usbmuxd_port};
	struct cap_collect *c;
	struct cap_reader *rd;
	FILE *f;
	int r;

	if (strcmp(path, "-") == 0) {
		d->xfer_note =
			"The capture was read from a pipe, which cannot be read a second time for the "
			"transfer timeline.";
		return 0;
	}
	f = fopen(path, "rb");
	if (!f)
		return lp_err_set(e, LP_EIO, "cannot reopen %s: %s", path, strerror(errno));
	c = calloc(1, sizeof(*c));
	rd = c ? cap_reader_new(&o, collect_event, c) : NULL;
	if (!rd) {
		fclose(f);
		free(c);
		return lp_err_set(e, LP_ENOMEM, "out of memory reading the transfers");
	}
	c->d = d;
	r = cap_reader_run(rd, f, e);
	cap_reader_free(rd);
	free(c);
	return r;
}

/* ------------------------------------------------------------------------
 * String builder and escaping
 */

struct sb {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_put(struct sb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (n >= b->cap - b->len || !b->p) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;
		while (n >= cap - b->len)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_puts(struct sb *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3))) sb_printf(struct sb *b, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(buf)) {
		sb_put(b, buf, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		b->oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb_put(b, big, (size_t)n);
	free(big);
}

#define REPL "\xef\xbf\xbd" /* U+FFFD */

static bool is_bidi_control(uint32_t cp)
{
	return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

static void sb_esc(struct sb *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");

	while (*s) {
		unsigned c = *s;
		uint32_t cp, min;
		size_t n, i;

		if (c < 0x80) {
			switch (c) {
			case '&':
				sb_puts(b, "&amp;");
				break;
			case '<':
				sb_puts(b, "&lt;");
				break;
			case '>':
				sb_puts(b, "&gt;");
				break;
			case '"':
				sb_puts(b, "&quot;");
				break;
			case '\'':
				sb_puts(b, "&#39;");
				break;
			case '\t':
			case '\n':
				sb_put(b, (const char *)s, 1);
				break;
			default:
				if (c < 0x20 || c == 0x7f)
					sb_puts(b, REPL);
				else
					sb_put(b, (const char *)s, 1);
			}
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 2, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 3, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 4, cp = c & 0x07, min = 0x10000;
		} else {
			sb_puts(b, REPL);
			s++;
			continue;
		}
		/* a NUL ends the loop here too: it is not a continuation byte */
		for (i = 1; i < n && (s[i] & 0xc0) == 0x80; i++)
			cp = cp << 6 | (s[i] & 0x3f);
		if (i < n || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
			sb_puts(b, REPL);
			s++;
			continue;
		}
		if (cp <= 0x9f || is_bidi_control(cp))
			sb_puts(b, REPL); /* C1 controls (U+0080..U+009F) and bidi overrides */
		else
			sb_put(b, (const char *)s, n);
		s += n;
	}
}

char *rep_html_escape(const char *src)
{
	struct sb b = {0};

	sb_put(&b, "", 0);
	sb_esc(&b, src);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* ------------------------------------------------------------------------
 * JSON helpers and formatting
 */

static json_object *jget(json_object *o, const char *k)
{
	json_object *v = NULL;
	return o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v)
		       ? v
		       : NULL;
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v = jget(o, k);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
}

static double jnum(json_object *o, const char *k, double dflt)
{
	json_object *v = jget(o, k);
	if (v &&
	    (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
		return json_object_get_double(v);
	return dflt;
}

static void fmt_dur(char *buf, size_t n, double ns)
{
	if (ns < 1e3)
		snprintf(buf, n, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, n, "%.0f \xc2\xb5s", ns / 1e3);
	else if (ns < 10e6)
		snprintf(buf, n, "%.2f ms", ns / 1e6);
	else if (ns < 1e9)
		snprintf(buf, n, "%.0f ms", ns / 1e6);
	else
		snprintf(buf, n, "%.2f s", ns / 1e9);
}

static void fmt_us(char *buf, size_t n, double us)
{
	fmt_dur(buf, n, us * 1e3);
}

/* compact bucket edge: 500µs, 2ms, 1s */
static void fmt_edge(char *buf, size_t n, double us)
{
	if (us < 1e3)
		snprintf(buf, n, "%g\xc2\xb5s", us);
	else if (us < 1e6)
		snprintf(buf, n, "%gms", us / 1e3);
	else
		snprintf(buf, n, "%gs", us / 1e6);
}

/* a 1-2-5 step near `x` (x > 0) */
static double nice_step(double x)
{
	double p = pow(10, floor(log10(x))), m = x / p;
	return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static void fmt_tick(char *buf, size_t n, double ns, double step)
{
	if (step >= 1e8)
		snprintf(buf, n, "%g s", ns / 1e9);
	else if (step >= 1e6)
		snprintf(buf, n, "%g ms", ns / 1e6);
	else
		snprintf(buf, n, "%g \xc2\xb5s", ns / 1e3);
}

static bool contains(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle) != NULL;
}

/* ------------------------------------------------------------------------
 * Page pieces
 */

static const char css[] =
	":root{--ok:#2e7d32;--fail:#c62828;--skip:#9e9e9e;--wait:#f9a825;--ink:#1d2329;--mute:#5f6b76;"
	"--line:#d9dee3;--bg:#f6f7f9}"
	"*{box-sizing:border-box}"
	"body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
	"color:var(--ink);background:var(--bg)}"
	"main{max-width:1020px;margin:0 auto;padding:20px}"
	"header.verdict{border-radius:10px;padding:18px 22px;color:#fff;margin-bottom:16px}"
	".v-good{background:var(--ok)}.v-bad{background:var(--fail)}.v-warn{background:#b26a00}"
	".v-none{background:#455a64}"
	"header .cmd{opacity:.85;font-size:13px}"
	"header h1{margin:2px 0 6px;font-size:30px;letter-spacing:.5px}"
	"header p{margin:6px 0}"
	".remedy{background:rgba(255,255,255,.14);border-radius:6px;padding:8px 12px}"
	"section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:14px 18px;"
	"margin-bottom:16px}"
	"h2{font-size:16px;margin:0 0 10px}"
	"dl.dev{display:grid;grid-template-columns:max-content 1fr max-content 1fr;gap:4px 14px;margin:0}"
	"dl.dev dt{color:var(--mute)}dl.dev dd{margin:0;font-family:ui-monospace,'DejaVu Sans Mono',monospace;"
	"overflow-wrap:anywhere}"
	"svg{display:block;max-width:100%;height:auto;font:12px system-ui,'DejaVu Sans',sans-serif}"
	"svg text{fill:var(--ink)}svg .axis text,svg text.dur,svg text.mute{fill:var(--mute)}"
	"svg .grid{stroke:var(--line);stroke-width:1}"
	"svg text.over{paint-order:stroke;stroke:#fff;stroke-width:3px;font-weight:600}"
	".st-ok{fill:var(--ok)}.st-fail{fill:var(--fail)}.st-skipped{fill:none;stroke:var(--skip);"
	"stroke-dasharray:3 2}.st-running{fill:#1565c0}"
	"rect.trust-wait{fill:url(#hatch-wait);stroke:var(--wait);stroke-width:.5}"
	"rect.stall{fill:url(#hatch-stall);stroke:#e65100;stroke-width:.5}"
	"line.mark{stroke:#1565c0;stroke-width:2}"
	"rect.act{fill:#546e7a}rect.act.err{fill:var(--fail)}"
	"rect.x-error,rect.x-stall,rect.x-timeout{fill:var(--fail)}rect.x-cancelled{fill:#8d6e63}"
	"rect.gap{fill:url(#hatch-gap);stroke:#90a4ae}line.gone{stroke:var(--fail);stroke-width:2;"
	"stroke-dasharray:5 3}"
	"table{border-collapse:collapse;width:100%;font-size:13px}"
	"th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}"
	"th{color:var(--mute);font-weight:600}td.num{text-align:right;white-space:nowrap}"
	"td.s-ok{color:var(--ok)}td.s-fail{color:var(--fail);font-weight:700}td.s-skipped{color:var(--skip)}"
	".hists{display:flex;flex-wrap:wrap;gap:14px}"
	".hist{border:1px solid var(--line);border-radius:8px;padding:10px;width:312px}"
	".hist h3{font-size:13px;margin:0 0 6px}.hist table{font-size:12px;margin-top:6px}"
	"rect.hbar{fill:#1565c0}"
	".legend{color:var(--mute);font-size:12px;margin:6px 0 0}"
	".sw{display:inline-block;width:12px;height:10px;border-radius:2px;vertical-align:middle;"
	"margin:0 4px 0 10px}"
	"ol.anomalies{margin:0;padding-left:0;list-style:none;font-size:13px}"
	"ol.anomalies li{padding:3px 0;border-bottom:1px solid var(--line)}"
	".pkt{display:inline-block;min-width:92px;font-family:ui-monospace,'DejaVu Sans Mono',monospace;"
	"color:var(--mute)}"
	"footer{color:var(--mute);font-size:12px;text-align:center;padding:6px}"
	"p.none{color:var(--mute);margin:0}";

/* Patterns shared by every SVG of the page (defined once: ids are unique). */
static void svg_defs(struct sb *b)
{
	sb_puts(b,
		"<svg width=\"0\" height=\"0\" style=\"position:absolute\" aria-hidden=\"true\"><defs>"
		"<pattern id=\"hatch-wait\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
		"patternTransform=\"rotate(45)\"><rect width=\"3\" height=\"6\" fill=\"#f9a825\"/></pattern>"
		"<pattern id=\"hatch-stall\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
		"patternTransform=\"rotate(45)\"><rect width=\"3\" height=\"6\" fill=\"#e65100\"/></pattern>"
		"<pattern id=\"hatch-gap\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
		"patternTransform=\"rotate(-45)\"><rect width=\"6\" height=\"6\" fill=\"#eceff1\"/>"
		"<rect width=\"2\" height=\"6\" fill=\"#b0bec5\"/></pattern>"
		"</defs></svg>\n");
}

/* Geometry shared by the stage timeline and the transfer lanes, so both are
 * on the same time axis. */
struct axis {
	double total_ns;
	double left, width; /* plot area in SVG units */
};

static double ax_x(const struct axis *a, double ns)
{
	if (ns < 0)
		ns = 0;
	if (ns > a->total_ns)
		ns = a->total_ns;
	return a->left + ns / a->total_ns * a->width;
}

static void svg_axis(struct sb *b, const struct axis *a, double y_top, double y_bottom)
{
	double step = nice_step(a->total_ns / 8);
	char lbl[32];

	sb_puts(b, "<g class=\"axis\">");
	for (double t = 0; t <= a->total_ns * 1.0001; t += step) {
		double x = ax_x(a, t);
		fmt_tick(lbl, sizeof(lbl), t, step);
		sb_printf(b,
			  "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
			  x, y_top, x, y_bottom);
		sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>", x,
			  y_top - 5, lbl);
	}
	sb_puts(b, "</g>");
}

static void section_header(struct sb *b, json_object *rep, const struct rep_data *d)
{
	const char *verdict = jstr(rep, "verdict"), *remedy = jstr(rep, "remedy");
	int code = (int)jnum(rep, "exit_code", 3);
	const char *cls = code == 0			     ? "v-good"
			  : strcmp(verdict, "DEGRADED") == 0 ? "v-warn"
			  : strcmp(verdict, "NONE") == 0     ? "v-none"
							     : "v-bad";

	sb_printf(b, "<header class=\"verdict %s\"><div class=\"cmd\">linkprobe ", cls);
	sb_esc(b, jstr(rep, "command"));
	if (d && d->source) {
		sb_puts(b, " &middot; ");
		sb_esc(b, d->source);
	}
	sb_puts(b, "</div><h1 id=\"verdict\">");
	sb_esc(b, verdict);
	sb_puts(b, "</h1><p id=\"evidence\">");
	sb_esc(b, *jstr(rep, "evidence") ? jstr(rep, "evidence") : "(no evidence recorded)");
	sb_puts(b, "</p>");
	if (*remedy) {
		sb_puts(b, "<p id=\"remedy\" class=\"remedy\"><b>Remedy:</b> ");
		sb_esc(b, remedy);
		sb_puts(b, "</p>");
	}
	sb_puts(b, "</header>\n");
}

static void dev_row(struct sb *b, const char *k, const char *v)
{
	sb_puts(b, "<dt>");
	sb_esc(b, k);
	sb_puts(b, "</dt><dd>");
	sb_esc(b, v && *v ? v : "\xe2\x80\x94"); /* em dash */
	sb_puts(b, "</dd>");
}

static void section_device(struct sb *b, json_object *rep)
{
	json_object *dev = jget(rep, "device");
	char buf[96];

	sb_puts(b, "<section id=\"device\"><h2>Device</h2>");
	if (!dev || !json_object_is_type(dev, json_type_object)) {
		sb_puts(b, "<p class=\"none\">No device was found.</p></section>\n");
		return;
	}
	sb_puts(b, "<dl class=\"dev\">");
	dev_row(b, "Name", jstr(dev, "name"));
	snprintf(buf, sizeof(buf), "%04x:%04x", (unsigned)jnum(dev, "vid", 0),
		 (unsigned)jnum(dev, "pid", 0));
	dev_row(b, "USB ID", buf);
	dev_row(b, "Product", jstr(dev, "product"));
	dev_row(b, "Model", jstr(dev, "product_type"));
	dev_row(b, "iOS", jstr(dev, "product_version"));
	dev_row(b, "Mode", jstr(dev, "mode"));
	double mbps = jnum(dev, "speed_mbps", 0);
	if (mbps > 0)
		snprintf(buf, sizeof(buf), "%g Mb/s", mbps);
	else
		snprintf(buf, sizeof(buf), "unknown");
	dev_row(b, "Speed", buf);
	snprintf(buf, sizeof(buf), "bus %u, address %u", (unsigned)jnum(dev, "bus", 0),
		 (unsigned)jnum(dev, "address", 0));
	dev_row(b, "Location", jnum(dev, "bus", 0) > 0 ? buf : "");
	json_object *mux = jget(dev, "has_usbmux");
	dev_row(b, "usbmux", mux ? (json_object_get_boolean(mux) ? "offered" : "not offered") : "");
	dev_row(b, "UDID", jstr(dev, "udid"));
	sb_puts(b, "</dl></section>\n");
}

/* What the timeline needs to know about one stage. */
struct stage_view {
	const char *name, *status, *detail;
	double start, dur;
};

static size_t stages_of(json_object *rep, struct stage_view *out, size_t max)
{
	json_object *st = jget(rep, "stages");
	size_t n = 0;

	if (!st || !json_object_is_type(st, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(st) && n < max; i++) {
		json_object *s = json_object_array_get_idx(st, i);
		out[n].name = jstr(s, "name");
		out[n].status = jstr(s, "status");
		out[n].detail = jstr(s, "detail");
		out[n].start = jnum(s, "start_ns", 0);
		out[n].dur = jnum(s, "duration_ns", 0);
		if (out[n].start < 0)
			out[n].start = 0;
		if (out[n].dur < 0)
			out[n].dur = 0;
		n++;
	}
	return n;
}

#define STALL_NS 1e9 /* a stage this long (not a wait or a measurement) stalled */

/* The Trust wait inside the Pair stage: from the first progress note that
 * asks for a tap (or an unlock) to the stage's end; without notes (an
 * analyzed capture) the whole stage when the stage or the verdict says the
 * dialog was up. Returns false when there was no wait. */
static bool trust_wait(const struct stage_view *s, json_object *rep, const struct rep_data *d,
		       double *from)
{
	if (strcmp(s->name, "Pair") != 0 || strcmp(s->status, "skipped") == 0)
		return false;
	for (size_t i = 0; d && i < d->nm; i++)
		if (strcmp(d->m[i].stage, "Pair") == 0 &&
		    (contains(d->m[i].text, "Trust") || contains(d->m[i].text, "unlock"))) {
			*from = (double)d->m[i].t_ns;
			return *from < s->start + s->dur;
		}
	if (contains(s->detail, "Trust") || contains(s->detail, "dialog") ||
	    strcmp(jstr(rep, "verdict"), "TRUST_PENDING") == 0 ||
	    strcmp(jstr(rep, "verdict"), "DENIED") == 0) {
		*from = s->start;
		return s->dur > 0;
	}
	return false;
}

static bool is_measurement(const struct stage_view *s)
{
	return strcmp(s->name, "round trips") == 0;
}

static void section_stages(struct sb *b, json_object *rep, const struct rep_data *d,
			   const struct axis *a, const struct stage_view *sv, size_t n)
{
	const double row = 28, top = 30, bar_h = 14;
	double height = top + (double)n * row + 12;
	char t0[32], dur[32];

	sb_puts(b, "<section id=\"stages\"><h2>Stages</h2>");
	if (n == 0) {
		sb_puts(b, "<p class=\"none\">No stage was reached.</p></section>\n");
		return;
	}
	sb_printf(b,
		  "<svg class=\"timeline\" viewBox=\"0 0 960 %.0f\" width=\"960\" height=\"%.0f\" "
		  "role=\"img\" aria-label=\"stage timeline\">",
		  height, height);
	svg_axis(b, a, top - 8, height - 8);
	for (size_t i = 0; i < n; i++) {
		const struct stage_view *s = &sv[i];
		double y = top + (double)i * row, x = ax_x(a, s->start),
		       w = ax_x(a, s->start + s->dur) - x;
		const char *cls = strcmp(s->status, "ok") == 0	      ? "st-ok"
				  : strcmp(s->status, "fail") == 0    ? "st-fail"
				  : strcmp(s->status, "skipped") == 0 ? "st-skipped"
								      : "st-running";
		double wait_from;

		if (w < 2)
			w = 2;
		fmt_dur(t0, sizeof(t0), s->start);
		fmt_dur(dur, sizeof(dur), s->dur);
		sb_puts(b, "<g class=\"stage\" data-stage=\"");
		sb_esc(b, s->name);
		sb_printf(b, "\" data-status=\"%s\"><title>", s->status);
		sb_esc(b, s->name);
		sb_printf(b, " \xe2\x80\x94 %s, starts at %s, takes %s\n", s->status, t0, dur);
		sb_esc(b, s->detail);
		sb_printf(b, "</title><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">",
			  a->left - 10, y + bar_h - 2);
		sb_esc(b, s->name);
		sb_printf(
			b,
			"</text><rect class=\"stage-bar %s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.0f\" "
			"rx=\"2\"/>",
			cls, x, y, w, bar_h);
		if (trust_wait(s, rep, d, &wait_from)) {
			double wx = ax_x(a, wait_from), ww = ax_x(a, s->start + s->dur) - wx;
			char wd[32];
			fmt_dur(wd, sizeof(wd), s->start + s->dur - wait_from);
			/* a band under the bar: the bar keeps its status colour */
			sb_printf(
				b,
				"<rect class=\"trust-wait\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"6\">"
				"<title>waiting for \"Trust This Computer?\" to be answered: %s</title></rect>",
				wx, y + bar_h + 1, ww < 2 ? 2 : ww, wd);
			if (ww > 80)
				sb_printf(
					b,
					"<text class=\"over\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">Trust wait %s</text>",
					wx + ww / 2, y + bar_h - 3, wd);
		} else if (s->dur >= STALL_NS && !is_measurement(s) &&
			   strcmp(s->status, "skipped") != 0) {
			sb_printf(
				b,
				"<rect class=\"stall\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"6\">"
				"<title>stall: %s in one stage</title></rect>",
				x, y + bar_h + 1, w, dur);
			if (w > 60)
				sb_printf(
					b,
					"<text class=\"over\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">stall %s</text>",
					x + w / 2, y + bar_h - 3, dur);
		}
		for (size_t k = 0; d && k < d->nm; k++) {
			if (strcmp(d->m[k].stage, s->name) != 0)
				continue;
			double mx = ax_x(a, (double)d->m[k].t_ns);
			sb_printf(
				b,
				"<line class=\"mark\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"><title>",
				mx, y - 3, mx, y + bar_h + 3);
			fmt_dur(t0, sizeof(t0), (double)d->m[k].t_ns);
			sb_printf(b, "%s: ", t0);
			sb_esc(b, d->m[k].text);
			sb_puts(b, "</title></line>");
		}
		sb_printf(b, "<text class=\"dur\" x=\"%.1f\" y=\"%.1f\">%s</text></g>", x + w + 4,
			  y + bar_h - 2, dur);
	}
	sb_puts(b,
		"</svg><p class=\"legend\"><span class=\"sw\" style=\"background:var(--ok)\"></span>ok"
		"<span class=\"sw\" style=\"background:var(--fail)\"></span>failed"
		"<span class=\"sw\" style=\"border:1px dashed var(--skip)\"></span>skipped"
		"<span class=\"sw\" style=\"background:var(--wait)\"></span>Trust wait"
		"<span class=\"sw\" style=\"background:#e65100\"></span>stall (&ge; 1 s)"
		"<span class=\"sw\" style=\"background:#1565c0\"></span>progress note"
		" &middot; hover a bar for its detail</p>");
	sb_puts(b,
		"<table class=\"stage-table\"><tr><th>#</th><th>stage</th><th>status</th><th>start</th>"
		"<th>duration</th><th>detail</th></tr>");
	for (size_t i = 0; i < n; i++) {
		fmt_dur(t0, sizeof(t0), sv[i].start);
		fmt_dur(dur, sizeof(dur), sv[i].dur);
		sb_printf(b, "<tr><td class=\"num\">%zu</td><td>", i + 1);
		sb_esc(b, sv[i].name);
		sb_puts(b, "</td><td class=\"s-");
		sb_esc(b, sv[i].status);
		sb_puts(b, "\">");
		sb_esc(b, sv[i].status);
		sb_printf(b, "</td><td class=\"num\">%s</td><td class=\"num\">%s</td><td>", t0,
			  dur);
		sb_esc(b, sv[i].detail);
		sb_puts(b, "</td></tr>");
	}
	sb_puts(b, "</table></section>\n");
}

/* ------------------------------------------------------------------------
 * Latency
 */

static const char *probe_title(const char *key)
{
	static const struct {
		const char *k, *t;
	} names[] = {
		{"control_rtt", "USB control round trip (GET_DESCRIPTOR)"},
		{"mux_rtt", "usbmux connect to a closed port (answered by RST)"},
		{"mux_connect_rtt", "usbmux connect"},
		{"lockdown_rtt", "lockdown request (QueryType)"},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i].k, key) == 0)
			return names[i].t;
	return key;
}

/* the 1-2-5 neighbours of a bucket edge */
static double edge_down(double v)
{
	double p = pow(10, floor(log10(v) + 1e-9)), m = v / p;
	return m < 1.5 ? p / 2 : m < 3 ? p : 2 * p;
}

static double edge_up(double v)
{
	double p = pow(10, floor(log10(v) + 1e-9)), m = v / p;
	return m < 1.5 ? 2 * p : m < 3 ? 5 * p : 10 * p;
}

#define HIST_MIN_BARS 5
#define HIST_MAX_BARS 32

/* One card: histogram (SVG) and percentile table from a diag_latency_json
 * object. The JSON keeps only the non-empty range; the card widens it with
 * empty neighbour buckets to at least HIST_MIN_BARS so one full bucket still
 * reads as a distribution. */
static void hist_card(struct sb *b, const char *id, const char *title, json_object *lat)
{
	json_object *h = jget(lat, "histogram"), *jle = jget(h, "le_us"), *jcnt = jget(h, "counts");
	size_t nb = jle && jcnt && json_object_is_type(jle, json_type_array) &&
				    json_object_is_type(jcnt, json_type_array)
			    ? json_object_array_length(jle)
			    : 0;
	double count = jnum(lat, "count", 0), maxc = 0, le[HIST_MAX_BARS], cnt[HIST_MAX_BARS];
	const double W = 292, H = 150, pl = 34, pb = 34, pt = 8;
	char v1[32], v2[32], v3[32];

	if (nb != (jcnt ? json_object_array_length(jcnt) : 0) || nb > HIST_MAX_BARS - HIST_MIN_BARS)
		nb = 0;
	for (size_t i = 0; i < nb; i++) {
		le[i] = json_object_get_double(json_object_array_get_idx(jle, i));
		cnt[i] = json_object_get_double(json_object_array_get_idx(jcnt, i));
		if (!(le[i] > 0))
			nb = 0;
	}
	for (bool after = true; nb && nb < HIST_MIN_BARS; after = !after) {
		if (after || le[0] <= 1) {
			le[nb] = edge_up(le[nb - 1]);
			cnt[nb++] = 0;
		} else {
			memmove(le + 1, le, nb * sizeof(le[0]));
			memmove(cnt + 1, cnt, nb * sizeof(cnt[0]));
			le[0] = edge_down(le[1]);
			cnt[0] = 0;
			nb++;
		}
	}
	sb_puts(b, "<div class=\"hist\"><h3>");
	sb_esc(b, title);
	sb_puts(b, "</h3>");
	for (size_t i = 0; i < nb; i++)
		if (cnt[i] > maxc)
			maxc = cnt[i];
	if (nb && maxc > 0) {
		double bw = (W - pl - 18) / (double)nb, ph = H - pb - pt;
		sb_puts(b, "<svg class=\"histogram\" data-probe=\"");
		sb_esc(b, id);
		sb_printf(
			b,
			"\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" role=\"img\" "
			"aria-label=\"latency histogram\">",
			W, H, W, H);
		sb_printf(
			b,
			"<g class=\"axis\"><line class=\"grid\" x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\"/>"
			"<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%.0f</text>"
			"<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">0</text></g>",
			pl, pt + ph, W - 4, pt + ph, pl - 4, pt + 10, maxc, pl - 4, pt + ph);
		for (size_t i = 0; i < nb; i++) {
			double c = cnt[i], up = le[i];
			double hgt = c / maxc * ph, x = pl + 2 + (double)i * bw;
			if (c > 0 && hgt < 1)
				hgt = 1;
			fmt_edge(v1, sizeof(v1), up);
			sb_printf(
				b,
				"<rect class=\"hbar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
				"<title>&le; %s: %.0f sample(s), %.1f%%</title></rect>",
				x + 1, pt + ph - hgt, bw - 2 > 1 ? bw - 2 : 1, hgt, v1, c,
				count > 0 ? 100.0 * c / count : 0.0);
			if (nb <= 6 || i % ((nb + 5) / 6) == 0)
				sb_printf(
					b,
					"<text class=\"mute\" x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\" "
					"font-size=\"10\">&le;%s</text>",
					x + bw / 2, pt + ph + 13, v1);
		}
		sb_printf(
			b,
			"<text class=\"mute\" x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\" font-size=\"10\">"
			"latency (bucket upper bound)</text></svg>",
			pl + (W - pl) / 2, H - 4);
	}
	fmt_us(v1, sizeof(v1), jnum(lat, "p50_us", 0));
	fmt_us(v2, sizeof(v2), jnum(lat, "p99_us", 0));
	fmt_us(v3, sizeof(v3), jnum(lat, "max_us", 0));
	if (count > 0)
		sb_printf(
			b,
			"<table class=\"pct\"><tr><th>samples</th><th>p50</th><th>p99</th><th>max</th></tr>"
			"<tr><td class=\"num\">%.0f</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
			"<td class=\"num\">%s</td></tr></table>",
			count, v1, v2, v3);
	else
		sb_puts(b, "<p class=\"none\">no samples</p>");
	sb_puts(b, "</div>");
}

static const char *ep_kind(uint8_t ep, uint8_t type)
{
	if ((ep & 0x7f) == 0 || type == TR_XFER_CONTROL)
		return "control";
	return ep & 0x80 ? "bulk IN" : "bulk OUT";
}

/* lane key: control transfers share one lane whatever their direction */
static int lane_of(const struct rep_xfer *x)
{
	return (x->endpoint & 0x7f) == 0 ? 0 : x->endpoint;
}

static void section_latency(struct sb *b, json_object *rep, const struct rep_data *d)
{
	json_object *m = jget(rep, "metrics");
	bool any = false;

	sb_puts(b, "<section id=\"latency\"><h2>Latency</h2><div class=\"hists\">");
	if (m && json_object_is_type(m, json_type_object)) {
		json_object_object_foreach(m, k, v)
		{
			if (!json_object_is_type(v, json_type_object) || !jget(v, "count") ||
			    !jget(v, "histogram"))
				continue;
			hist_card(b, k, probe_title(k), v);
			any = true;
		}
	}
	/* Completion time of the host's own transfers, per endpoint: control and
	 * bulk OUT only (a bulk IN read waits for the device to have something
	 * to say, so its duration is not a latency). */
	for (int lane = 0; d && d->nx && lane < 256; lane++) {
		uint64_t *v;
		size_t n = 0;
		uint8_t type = 0;
		if (lane != 0 && (lane & 0x80))
			continue;
		for (size_t i = 0; i < d->nx; i++)
			if (lane_of(&d->x[i]) == lane && d->x[i].kind == REP_X_OK)
				n++;
		if (!n || !(v = malloc(n * sizeof(*v))))
			continue;
		n = 0;
		for (size_t i = 0; i < d->nx; i++)
			if (lane_of(&d->x[i]) == lane && d->x[i].kind == REP_X_OK) {
				v[n++] = d->x[i].end_ns - d->x[i].start_ns;
				type = d->x[i].type;
			}
		json_object *lat = diag_latency_json(v, n);
		char id[32], title[96];
		snprintf(id, sizeof(id), "ep_0x%02x", lane);
		snprintf(title, sizeof(title),
			 "USB %s transfers, endpoint 0x%02x (submit to completion)",
			 ep_kind((uint8_t)lane, type), lane);
		hist_card(b, id, title, lat);
		json_object_put(lat);
		free(v);
		any = true;
	}
	if (!any)
		sb_puts(b, "<p class=\"none\">No round trips were measured.</p>");
	sb_puts(b, "</div></section>\n");
}

/* ------------------------------------------------------------------------
 * Transfers per endpoint
 */

#define LANE_BINS 180
#define LANE_TICKS 400 /* error/cancel ticks drawn per lane; the rest counted */

static const char *kind_name(uint8_t k)
{
	switch (k) {
	case REP_X_OK:
		return "completed";
	case REP_X_ERROR:
		return "error";
	case REP_X_STALL:
		return "stall";
	case REP_X_TIMEOUT:
		return "timeout";
	case REP_X_CANCELLED:
		return "cancelled";
	case REP_X_GONE:
		return "device gone";
	default:
		return "?";
	}
}

static const char *kind_class(uint8_t k)
{
	switch (k) {
	case REP_X_STALL:
		return "x-stall";
	case REP_X_TIMEOUT:
		return "x-timeout";
	case REP_X_CANCELLED:
		return "x-cancelled";
	default:
		return "x-error";
	}
}

static void section_transfers(struct sb *b, json_object *rep, const struct rep_data *d,
			      const struct axis *a, const struct stage_view *sv, size_t nst)
{
	int lanes[256];
	size_t nl = 0;
	bool seen[256] = {false};
	const double top = 30, row = 40, lane_h = 26;
	double gap_ns = a->total_ns / 20 > 2e8 ? a->total_ns / 20 : 2e8;
	char t0[32], t1[32];

	sb_puts(b, "<section id=\"transfers\"><h2>USB transfers by endpoint</h2>");
	if (!d || d->nx == 0) {
		sb_puts(b, "<p class=\"none\">");
		sb_esc(b, d && d->xfer_note ? d->xfer_note
			  : strcmp(jstr(rep, "command"), "analyze") == 0
				  ? "No USB transfer in this capture."
				  : "No USB transfer was made.");
		sb_puts(b, "</p></section>\n");
		return;
	}
	for (size_t i = 0; i < d->nx; i++) {
		int l = lane_of(&d->x[i]);
		if (!seen[l]) {
			seen[l] = true;
			nl++;
		}
	}
	nl = 0;
	for (int l = 0; l < 256; l++)
		if (seen[l])
			lanes[nl++] = l;
	double height = top + (double)nl * row + 10;
	sb_printf(
		b,
		"<svg class=\"lanes\" viewBox=\"0 0 960 %.0f\" width=\"960\" height=\"%.0f\" role=\"img\" "
		"aria-label=\"transfers per endpoint\">",
		height, height);
	svg_axis(b, a, top - 8, height - 6);
	for (size_t i = 0; i < nst; i++) {
		double x = ax_x(a, sv[i].start);
		sb_printf(b,
			  "<line class=\"grid\" x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" "
			  "stroke-dasharray=\"2 3\"><title>stage ",
			  x, top - 4, x, height - 6);
		sb_esc(b, sv[i].name);
		sb_puts(b, " starts</title></line>");
	}
	for (size_t li = 0; li < nl; li++) {
		int l = lanes[li];
		double y = top + (double)li * row;
		uint32_t cnt[LANE_BINS] = {0}, errs[LANE_BINS] = {0};
		uint64_t bytes[LANE_BINS] = {0}, nerr = 0, ncan = 0, total = 0, drawn = 0;
		uint32_t maxc = 0;
		uint8_t type = 0;

		for (size_t i = 0; i < d->nx; i++) {
			const struct rep_xfer *x = &d->x[i];
			if (lane_of(x) != l)
				continue;
			size_t bin = (size_t)((double)x->end_ns / a->total_ns * LANE_BINS);
			if (bin >= LANE_BINS)
				bin = LANE_BINS - 1;
			cnt[bin]++;
			bytes[bin] += x->bytes;
			total++;
			type = x->type;
			if (x->kind != REP_X_OK && x->kind != REP_X_CANCELLED) {
				errs[bin]++;
				nerr++;
			}
			if (x->kind == REP_X_CANCELLED)
				ncan++;
		}
		for (size_t k = 0; k < LANE_BINS; k++)
			if (cnt[k] > maxc)
				maxc = cnt[k];
		sb_printf(
			b,
			"<g class=\"lane\" data-ep=\"0x%02x\"><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">"
			"ep 0x%02x %s</text><text class=\"mute\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
			"font-size=\"10\">%llu xfers, %llu errors</text>",
			l, a->left - 10, y + 11, l, ep_kind((uint8_t)l, type), a->left - 10, y + 24,
			(unsigned long long)total, (unsigned long long)nerr);
		sb_printf(b,
			  "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
			  a->left, y + lane_h, a->left + a->width, y + lane_h);
		double bw = a->width / LANE_BINS;
		for (size_t k = 0; k < LANE_BINS; k++) {
			if (!cnt[k])
				continue;
			double h = (double)cnt[k] / maxc * (lane_h - 2);
			if (h < 2)
				h = 2;
			fmt_dur(t0, sizeof(t0), (double)k * a->total_ns / LANE_BINS);
			fmt_dur(t1, sizeof(t1), (double)(k + 1) * a->total_ns / LANE_BINS);
			sb_printf(
				b,
				"<rect class=\"act%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
				"<title>%s \xe2\x80\x93 %s: %u transfer(s), %llu bytes%s</title></rect>",
				errs[k] ? " err" : "", a->left + (double)k * bw, y + lane_h - h, bw,
				h, t0, t1, cnt[k], (unsigned long long)bytes[k],
				errs[k] ? ", with errors" : "");
		}
		/* gaps: nothing in flight or completing on this endpoint */
		double last = -1;
		for (size_t i = 0; i < d->nx; i++) {
			const struct rep_xfer *x = &d->x[i];
			if (lane_of(x) != l)
				continue;
			if (last >= 0 && (double)x->start_ns - last >= gap_ns) {
				double gx = ax_x(a, last), gw = ax_x(a, (double)x->start_ns) - gx;
				fmt_dur(t0, sizeof(t0), (double)x->start_ns - last);
				fmt_dur(t1, sizeof(t1), last);
				sb_printf(
					b,
					"<rect class=\"gap\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
					"<title>gap: nothing on endpoint 0x%02x for %s (from %s)</title></rect>",
					gx, y + 2, gw, lane_h - 4, l, t0, t1);
			}
			if ((double)x->end_ns > last)
				last = (double)x->end_ns;
		}
		/* error and cancel ticks, each with its detail */
		for (size_t i = 0; i < d->nx && drawn < LANE_TICKS; i++) {
			const struct rep_xfer *x = &d->x[i];
			if (lane_of(x) != l || x->kind == REP_X_OK || x->kind == REP_X_GONE)
				continue;
			double tx = ax_x(a, (double)x->end_ns);
			fmt_dur(t0, sizeof(t0), (double)x->end_ns);
			sb_printf(
				b,
				"<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"2\" height=\"%.1f\"><title>%s: "
				"%s transfer on 0x%02x ended: %s",
				kind_class(x->kind), tx - 1, y,
				x->kind == REP_X_CANCELLED ? lane_h / 3 : lane_h, t0,
				ep_kind(x->endpoint, x->type), x->endpoint, kind_name(x->kind));
			if (x->packet)
				sb_printf(b, " (packet %u)", x->packet);
			sb_puts(b, "</title></rect>");
			drawn++;
		}
		if (nerr + ncan > drawn)
			sb_printf(
				b,
				"<text class=\"mute\" x=\"%.1f\" y=\"%.1f\" font-size=\"10\">+%llu not drawn</text>",
				a->left + a->width + 4, y + 11,
				(unsigned long long)(nerr + ncan - drawn));
		sb_puts(b, "</g>");
	}
	/* disconnects: the first "device gone" in each 1%-of-the-axis window */
	double last_gone = -1;
	for (size_t i = 0; i < d->nx; i++) {
		const struct rep_xfer *x = &d->x[i];
		if (x->kind != REP_X_GONE ||
		    (last_gone >= 0 && (double)x->end_ns - last_gone < a->total_ns / 100))
			continue;
		last_gone = (double)x->end_ns;
		double gx = ax_x(a, last_gone);
		fmt_dur(t0, sizeof(t0), last_gone);
		sb_printf(
			b,
			"<line class=\"gone\" x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\"><title>%s: the device "
			"left the bus (a transfer on 0x%02x ended with no device)",
			gx, top - 4, gx, height - 6, t0, x->endpoint);
		if (x->packet)
			sb_printf(b, ", packet %u", x->packet);
		sb_puts(b, "</title></line>");
	}
	sb_puts(b,
		"</svg><p class=\"legend\"><span class=\"sw\" style=\"background:#546e7a\"></span>transfers "
		"completed (bar height: count)"
		"<span class=\"sw\" style=\"background:var(--fail)\"></span>error / stall / timeout"
		"<span class=\"sw\" style=\"background:#8d6e63\"></span>cancelled by the host"
		"<span class=\"sw\" style=\"background:#b0bec5\"></span>gap"
		"<span class=\"sw\" style=\"border-left:2px dashed var(--fail)\"></span>device left the bus");
	if (d->dropped)
		sb_printf(b, " &middot; %llu transfers beyond the first %d not drawn",
			  (unsigned long long)d->dropped, REP_MAX_XFERS);
	sb_puts(b, "</p></section>\n");
}

/* ------------------------------------------------------------------------
 * Anomalies, other devices, metrics
 */

static void section_anomalies(struct sb *b, json_object *rep)
{
	json_object *an = jget(rep, "anomalies"), *devs = jget(rep, "devices");
	size_t n = an && json_object_is_type(an, json_type_array) ? json_object_array_length(an)
								  : 0;

	if (strcmp(jstr(rep, "command"), "analyze") != 0 && n == 0)
		return;
	sb_printf(b, "<section id=\"anomalies\"><h2>Anomalies in the capture (%zu)</h2>", n);
	if (n == 0)
		sb_puts(b, "<p class=\"none\">None: every packet decoded as expected.</p>");
	else
		sb_puts(b, "<ol class=\"anomalies\">");
	for (size_t i = 0; i < n; i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(an, i));
		unsigned long pkt = 0;
		int used = 0;
		if (!s)
			continue;
		sb_puts(b, "<li>");
		if (sscanf(s, "packet %lu: %n", &pkt, &used) == 1 && used > 0) {
			sb_printf(b, "<span class=\"pkt\">packet %lu</span>", pkt);
			s += used;
		} else {
			sb_puts(b, "<span class=\"pkt\">\xe2\x80\x94</span>");
		}
		sb_esc(b, s);
		sb_puts(b, "</li>");
	}
	if (n)
		sb_puts(b, "</ol>");
	if (devs && json_object_is_type(devs, json_type_array) &&
	    json_object_array_length(devs) > 1) {
		sb_puts(b,
			"<h2 style=\"margin-top:12px\">Devices in the capture</h2><table><tr><th>device</th>"
			"<th>verdict</th><th></th></tr>");
		for (size_t i = 0; i < json_object_array_length(devs); i++) {
			json_object *dv = json_object_array_get_idx(devs, i);
			json_object *p = jget(dv, "primary");
			sb_puts(b, "<tr><td>");
			sb_esc(b, jstr(dv, "key"));
			sb_puts(b, "</td><td>");
			sb_esc(b, jstr(dv, "verdict"));
			sb_printf(b, "</td><td>%s</td></tr>",
				  p && json_object_get_boolean(p) ? "this report" : "");
		}
		sb_puts(b, "</table>");
	}
	sb_puts(b, "</section>\n");
}

static void metric_row(struct sb *b, const char *k1, const char *k2, json_object *v)
{
	sb_puts(b, "<tr><td>");
	sb_esc(b, k1);
	if (k2) {
		sb_puts(b, ".");
		sb_esc(b, k2);
	}
	sb_puts(b, "</td><td class=\"num\">");
	if (json_object_is_type(v, json_type_double))
		sb_printf(b, "%.6g", json_object_get_double(v));
	else
		sb_esc(b, json_object_get_string(v));
	sb_puts(b, "</td></tr>");
}

static void section_metrics(struct sb *b, json_object *rep)
{
	json_object *m = jget(rep, "metrics");

	if (!m || !json_object_is_type(m, json_type_object) || json_object_object_length(m) == 0)
		return;
	sb_puts(b,
		"<section id=\"metrics\"><h2>Metrics</h2><table><tr><th>metric</th><th>value</th></tr>");
	json_object_object_foreach(m, k, v)
	{
		if (!v || json_object_is_type(v, json_type_array))
			continue;
		if (json_object_is_type(v, json_type_object)) {
			if (jget(v, "histogram"))
				continue; /* drawn in the latency section */
			json_object_object_foreach(
				v, k2, v2) if (v2 && !json_object_is_type(v2, json_type_object) &&
					       !json_object_is_type(v2, json_type_array))
				metric_row(b, k, k2, v2);
		} else {
			metric_row(b, k, NULL, v);
		}
	}
	sb_puts(b, "</table></section>\n");
}

/* ------------------------------------------------------------------------
 * The page
 */

int rep_html_render(json_object *rep, const struct rep_data *d, char **out, size_t *len)
{
	struct sb b = {0};
	struct stage_view sv[DIAG_MAX_STAGES];
	size_t nst = stages_of(rep, sv, DIAG_MAX_STAGES);
	struct axis a = {.left = 190, .width = 960 - 190 - 80};

	for (size_t i = 0; i < nst; i++)
		if (sv[i].start + sv[i].dur > a.total_ns)
			a.total_ns = sv[i].start + sv[i].dur;
	for (size_t i = 0; d && i < d->nx; i++)
		if ((double)d->x[i].end_ns > a.total_ns)
			a.total_ns = (double)d->x[i].end_ns;
	if (a.total_ns < 1e6)
		a.total_ns = 1e6;

	sb_puts(&b,
		"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
		"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
		"style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">\n"
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		"<meta name=\"generator\" content=\"linkprobe " LP_VERSION
		"\">\n<title>linkprobe ");
	sb_esc(&b, jstr(rep, "command"));
	sb_puts(&b, ": ");
	sb_esc(&b, jstr(rep, "verdict"));
	sb_puts(&b, "</title>\n<style>");
	sb_puts(&b, css);
	sb_puts(&b, "</style></head>\n<body>");
	svg_defs(&b);
	sb_puts(&b, "<main>\n");
	section_header(&b, rep, d);
	section_device(&b, rep);
	section_stages(&b, rep, d, &a, sv, nst);
	section_latency(&b, rep, d);
	section_transfers(&b, rep, d, &a, sv, nst);
	section_anomalies(&b, rep);
	section_metrics(&b, rep);
	sb_puts(&b, "<footer>linkprobe " LP_VERSION
		    " &middot; one self-contained file: no script, no network"
		    "</footer>\n</main></body></html>\n");
	if (b.oom) {
		free(b.p);
		return LP_ENOMEM;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

int rep_html_write(const char *path, json_object *report, const struct rep_data *d,
		   struct lp_errinfo *e)
{
	char tmp[PATH_MAX];
	char *html = NULL;
	size_t len = 0, off = 0;
	mode_t um;
	int fd, r;

	r = rep_html_render(report, d, &html, &len);
	if (r)
		return lp_err_set(e, r, "out of memory rendering the report");
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp)) {
		free(html);
		return lp_err_set(e, LP_EINVAL, "report path too long");
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		r = errno;
		free(html);
		return lp_err_set(e,
				  r == EACCES || r == EPERM ? LP_EACCES
				  : r == ENOENT		    ? LP_ENOENT
							    : LP_EIO,
				  "cannot create %s: %s", tmp, strerror(r));
	}
	um = umask(022);
	umask(um);
	if (fchmod(fd, 0666 & ~um) != 0)
		goto fail;
	while (off < len) {
		ssize_t n = write(fd, html + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		off += (size_t)n;
	}
	if (fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	free(html);
	return 0;
fail:
	r = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(html);
	return lp_err_set(e, r == EACCES || r == EPERM ? LP_EACCES : LP_EIO, "cannot write %s: %s",
			  path, strerror(r));
}
