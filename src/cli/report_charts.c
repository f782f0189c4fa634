/* report_charts.c - the HTML report's chart sections: latency histograms per
 * probe kind, USB transfers per endpoint on the timeline's axis, the
 * analyzer's anomalies and the remaining metrics (see report_page.h). */
#include "src/cli/report_page.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/diag/diag.h"

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
	json_object *h = rep_jget(lat, "histogram"), *jle = rep_jget(h, "le_us"),
		    *jcnt = rep_jget(h, "counts");
	size_t nb = jle && jcnt && json_object_is_type(jle, json_type_array) &&
				    json_object_is_type(jcnt, json_type_array)
			    ? json_object_array_length(jle)
			    : 0;
	double count = rep_jnum(lat, "count", 0), maxc = 0, le[HIST_MAX_BARS], cnt[HIST_MAX_BARS];
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
			rep_fmt_edge(v1, sizeof(v1), up);
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
	rep_fmt_us(v1, sizeof(v1), rep_jnum(lat, "p50_us", 0));
	rep_fmt_us(v2, sizeof(v2), rep_jnum(lat, "p99_us", 0));
	rep_fmt_us(v3, sizeof(v3), rep_jnum(lat, "max_us", 0));
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

void rep_section_latency(struct sb *b, json_object *rep, const struct rep_data *d)
{
	json_object *m = rep_jget(rep, "metrics");
	bool any = false;

	sb_puts(b, "<section id=\"latency\"><h2>Latency</h2><div class=\"hists\">");
	if (m && json_object_is_type(m, json_type_object)) {
		json_object_object_foreach(m, k, v)
		{
			if (!json_object_is_type(v, json_type_object) || !rep_jget(v, "count") ||
			    !rep_jget(v, "histogram"))
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

void rep_section_transfers(struct sb *b, json_object *rep, const struct rep_data *d,
			   const struct rep_axis *a, const struct stage_view *sv, size_t nst)
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
			  : strcmp(rep_jstr(rep, "command"), "analyze") == 0
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
	rep_svg_axis(b, a, top - 8, height - 6);
	for (size_t i = 0; i < nst; i++) {
		double x = rep_ax_x(a, sv[i].start);
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
			rep_fmt_dur(t0, sizeof(t0), (double)k * a->total_ns / LANE_BINS);
			rep_fmt_dur(t1, sizeof(t1), (double)(k + 1) * a->total_ns / LANE_BINS);
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
				double gx = rep_ax_x(a, last),
				       gw = rep_ax_x(a, (double)x->start_ns) - gx;
				rep_fmt_dur(t0, sizeof(t0), (double)x->start_ns - last);
				rep_fmt_dur(t1, sizeof(t1), last);
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
			double tx = rep_ax_x(a, (double)x->end_ns);
			rep_fmt_dur(t0, sizeof(t0), (double)x->end_ns);
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
		double gx = rep_ax_x(a, last_gone);
		rep_fmt_dur(t0, sizeof(t0), last_gone);
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

void rep_section_anomalies(struct sb *b, json_object *rep)
{
	json_object *an = rep_jget(rep, "anomalies"), *devs = rep_jget(rep, "devices");
	size_t n = an && json_object_is_type(an, json_type_array) ? json_object_array_length(an)
								  : 0;

	if (strcmp(rep_jstr(rep, "command"), "analyze") != 0 && n == 0)
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
			json_object *p = rep_jget(dv, "primary");
			sb_puts(b, "<tr><td>");
			sb_esc(b, rep_jstr(dv, "key"));
			sb_puts(b, "</td><td>");
			sb_esc(b, rep_jstr(dv, "verdict"));
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

void rep_section_metrics(struct sb *b, json_object *rep)
{
	json_object *m = rep_jget(rep, "metrics");

	if (!m || !json_object_is_type(m, json_type_object) || json_object_object_length(m) == 0)
		return;
	sb_puts(b,
		"<section id=\"metrics\"><h2>Metrics</h2><table><tr><th>metric</th><th>value</th></tr>");
	json_object_object_foreach(m, k, v)
	{
		if (!v || json_object_is_type(v, json_type_array))
			continue;
		if (json_object_is_type(v, json_type_object)) {
			if (rep_jget(v, "histogram"))
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
