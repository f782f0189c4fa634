/* report_page.h - the pieces the HTML report's files share (internal to
 * src/cli/report_*.c; the public interface is report_html.h).
 *
 * A growable string buffer whose allocation failure is sticky (checked once
 * when the page is done), the HTML escaper every untrusted string goes
 * through, small readers of the report's JSON, number formatting, the time
 * axis shared by the stage timeline and the transfer lanes, and the chart
 * sections drawn by report_charts.c. */
#ifndef LP_REPORT_PAGE_H
#define LP_REPORT_PAGE_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "src/cli/report_html.h"

struct sb {
	char *p;
	size_t len, cap;
	bool oom;
};

void sb_put(struct sb *b, const char *s, size_t n);
void sb_puts(struct sb *b, const char *s);
void __attribute__((format(printf, 2, 3))) sb_printf(struct sb *b, const char *fmt, ...);
/* Appends `str` HTML-escaped: markup characters as entities, control, bidi
 * and invalid UTF-8 bytes as U+FFFD. */
void sb_esc(struct sb *b, const char *str);

/* Typed reads of the report JSON; a missing or mistyped member gives the
 * empty string / `dflt`. */
json_object *rep_jget(json_object *o, const char *k);
const char *rep_jstr(json_object *o, const char *k);
double rep_jnum(json_object *o, const char *k, double dflt);
bool rep_contains(const char *hay, const char *needle);

void rep_fmt_dur(char *buf, size_t n, double ns);
void rep_fmt_us(char *buf, size_t n, double us);
/* compact bucket edge: 500µs, 2ms, 1s */
void rep_fmt_edge(char *buf, size_t n, double us);
/* a 1-2-5 step near `x` (x > 0) */
double rep_nice_step(double x);
void rep_fmt_tick(char *buf, size_t n, double ns, double step);

/* Geometry shared by the stage timeline and the transfer lanes, so both are
 * on the same time axis. */
struct rep_axis {
	double total_ns;
	double left, width; /* plot area in SVG units */
};

double rep_ax_x(const struct rep_axis *a, double ns);
void rep_svg_axis(struct sb *b, const struct rep_axis *a, double y_top, double y_bottom);

/* One stage of the report JSON, times in ns from the report's start. */
struct stage_view {
	const char *name, *status, *detail;
	double start, dur;
};

/* The chart sections (report_charts.c). */
void rep_section_latency(struct sb *b, json_object *rep, const struct rep_data *d);
void rep_section_transfers(struct sb *b, json_object *rep, const struct rep_data *d,
			   const struct rep_axis *a, const struct stage_view *sv, size_t nst);
void rep_section_anomalies(struct sb *b, json_object *rep);
void rep_section_metrics(struct sb *b, json_object *rep);

#endif
