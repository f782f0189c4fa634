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
 * This file draws the page's frame (style, verdict header, device card,
 * stage timeline and table) and writes the file; report_charts.c draws the
 * latency, transfer, anomaly and metric sections, report_data.c collects
 * the transfer series, report_sb.c holds the string builder and escaper.
 * Everything is built in one growable buffer; allocation failure is sticky
 * and reported once at the end. No string reaches the page unescaped except
 * the fixed markup of these files. */
#include "src/cli/report_page.h"

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

static void section_header(struct sb *b, json_object *rep, const struct rep_data *d)
{
	const char *verdict = rep_jstr(rep, "verdict"), *remedy = rep_jstr(rep, "remedy");
	int code = (int)rep_jnum(rep, "exit_code", 3);
	const char *cls = code == 0			     ? "v-good"
			  : strcmp(verdict, "DEGRADED") == 0 ? "v-warn"
			  : strcmp(verdict, "NONE") == 0     ? "v-none"
							     : "v-bad";

	sb_printf(b, "<header class=\"verdict %s\"><div class=\"cmd\">linkprobe ", cls);
	sb_esc(b, rep_jstr(rep, "command"));
	if (d && d->source) {
		sb_puts(b, " &middot; ");
		sb_esc(b, d->source);
	}
	sb_puts(b, "</div><h1 id=\"verdict\">");
	sb_esc(b, verdict);
	sb_puts(b, "</h1><p id=\"evidence\">");
	sb_esc(b,
	       *rep_jstr(rep, "evidence") ? rep_jstr(rep, "evidence") : "(no evidence recorded)");
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
	json_object *dev = rep_jget(rep, "device");
	char buf[96];

	sb_puts(b, "<section id=\"device\"><h2>Device</h2>");
	if (!dev || !json_object_is_type(dev, json_type_object)) {
		sb_puts(b, "<p class=\"none\">No device was found.</p></section>\n");
		return;
	}
	sb_puts(b, "<dl class=\"dev\">");
	dev_row(b, "Name", rep_jstr(dev, "name"));
	if (rep_jnum(dev, "vid", 0) || rep_jnum(dev, "pid", 0))
		snprintf(buf, sizeof(buf), "%04x:%04x", (unsigned)rep_jnum(dev, "vid", 0),
			 (unsigned)rep_jnum(dev, "pid", 0));
	else /* analyze: descriptors not in the capture */
		snprintf(buf, sizeof(buf), "unknown (descriptors not in the capture)");
	dev_row(b, "USB ID", buf);
	dev_row(b, "Product", rep_jstr(dev, "product"));
	dev_row(b, "Model", rep_jstr(dev, "product_type"));
	dev_row(b, "iOS", rep_jstr(dev, "product_version"));
	dev_row(b, "Mode", rep_jstr(dev, "mode"));
	double mbps = rep_jnum(dev, "speed_mbps", 0);
	if (mbps > 0)
		snprintf(buf, sizeof(buf), "%g Mb/s", mbps);
	else
		snprintf(buf, sizeof(buf), "unknown");
	dev_row(b, "Speed", buf);
	snprintf(buf, sizeof(buf), "bus %u, address %u", (unsigned)rep_jnum(dev, "bus", 0),
		 (unsigned)rep_jnum(dev, "address", 0));
	dev_row(b, "Location", rep_jnum(dev, "bus", 0) > 0 ? buf : "");
	json_object *mux = rep_jget(dev, "has_usbmux");
	dev_row(b, "usbmux", mux ? (json_object_get_boolean(mux) ? "offered" : "not offered") : "");
	dev_row(b, "UDID", rep_jstr(dev, "udid"));
	sb_puts(b, "</dl></section>\n");
}

/* What the timeline needs to know about one stage. */
static size_t stages_of(json_object *rep, struct stage_view *out, size_t max)
{
	json_object *st = rep_jget(rep, "stages");
	size_t n = 0;

	if (!st || !json_object_is_type(st, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(st) && n < max; i++) {
		json_object *s = json_object_array_get_idx(st, i);
		out[n].name = rep_jstr(s, "name");
		out[n].status = rep_jstr(s, "status");
		out[n].detail = rep_jstr(s, "detail");
		out[n].start = rep_jnum(s, "start_ns", 0);
		out[n].dur = rep_jnum(s, "duration_ns", 0);
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
		    (rep_contains(d->m[i].text, "Trust") || rep_contains(d->m[i].text, "unlock"))) {
			*from = (double)d->m[i].t_ns;
			return *from < s->start + s->dur;
		}
	if (rep_contains(s->detail, "Trust") || rep_contains(s->detail, "dialog") ||
	    strcmp(rep_jstr(rep, "verdict"), "TRUST_PENDING") == 0 ||
	    strcmp(rep_jstr(rep, "verdict"), "DENIED") == 0) {
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
			   const struct rep_axis *a, const struct stage_view *sv, size_t n)
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
	rep_svg_axis(b, a, top - 8, height - 8);
	for (size_t i = 0; i < n; i++) {
		const struct stage_view *s = &sv[i];
		double y = top + (double)i * row, x = rep_ax_x(a, s->start),
		       w = rep_ax_x(a, s->start + s->dur) - x;
		const char *cls = strcmp(s->status, "ok") == 0	      ? "st-ok"
				  : strcmp(s->status, "fail") == 0    ? "st-fail"
				  : strcmp(s->status, "skipped") == 0 ? "st-skipped"
								      : "st-running";
		double wait_from;

		if (w < 2)
			w = 2;
		rep_fmt_dur(t0, sizeof(t0), s->start);
		rep_fmt_dur(dur, sizeof(dur), s->dur);
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
			double wx = rep_ax_x(a, wait_from),
			       ww = rep_ax_x(a, s->start + s->dur) - wx;
			char wd[32];
			rep_fmt_dur(wd, sizeof(wd), s->start + s->dur - wait_from);
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
			double mx = rep_ax_x(a, (double)d->m[k].t_ns);
			sb_printf(
				b,
				"<line class=\"mark\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"><title>",
				mx, y - 3, mx, y + bar_h + 3);
			rep_fmt_dur(t0, sizeof(t0), (double)d->m[k].t_ns);
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
		rep_fmt_dur(t0, sizeof(t0), sv[i].start);
		rep_fmt_dur(dur, sizeof(dur), sv[i].dur);
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
 * The page
 */

int rep_html_render(json_object *rep, const struct rep_data *d, char **out, size_t *len)
{
	struct sb b = {0};
	struct stage_view sv[DIAG_MAX_STAGES];
	size_t nst = stages_of(rep, sv, DIAG_MAX_STAGES);
	struct rep_axis a = {.left = 190, .width = 960 - 190 - 80};

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
	sb_esc(&b, rep_jstr(rep, "command"));
	sb_puts(&b, ": ");
	sb_esc(&b, rep_jstr(rep, "verdict"));
	sb_puts(&b, "</title>\n<style>");
	sb_puts(&b, css);
	sb_puts(&b, "</style></head>\n<body>");
	svg_defs(&b);
	sb_puts(&b, "<main>\n");
	section_header(&b, rep, d);
	section_device(&b, rep);
	section_stages(&b, rep, d, &a, sv, nst);
	rep_section_latency(&b, rep, d);
	rep_section_transfers(&b, rep, d, &a, sv, nst);
	rep_section_anomalies(&b, rep);
	rep_section_metrics(&b, rep);
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
