/* report_sb.c - the HTML report's string builder, escaper, JSON readers,
 * number formatting and time axis (see report_page.h). */
#include "src/cli/report_page.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * String builder and escaping
 */

void sb_put(struct sb *b, const char *s, size_t n)
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

void sb_puts(struct sb *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

void __attribute__((format(printf, 2, 3))) sb_printf(struct sb *b, const char *fmt, ...)
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

void sb_esc(struct sb *b, const char *str)
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

json_object *rep_jget(json_object *o, const char *k)
{
	json_object *v = NULL;
	return o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v)
		       ? v
		       : NULL;
}

const char *rep_jstr(json_object *o, const char *k)
{
	json_object *v = rep_jget(o, k);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
}

double rep_jnum(json_object *o, const char *k, double dflt)
{
	json_object *v = rep_jget(o, k);
	if (v &&
	    (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
		return json_object_get_double(v);
	return dflt;
}

void rep_fmt_dur(char *buf, size_t n, double ns)
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

void rep_fmt_us(char *buf, size_t n, double us)
{
	rep_fmt_dur(buf, n, us * 1e3);
}

/* compact bucket edge: 500µs, 2ms, 1s */
void rep_fmt_edge(char *buf, size_t n, double us)
{
	if (us < 1e3)
		snprintf(buf, n, "%g\xc2\xb5s", us);
	else if (us < 1e6)
		snprintf(buf, n, "%gms", us / 1e3);
	else
		snprintf(buf, n, "%gs", us / 1e6);
}

/* a 1-2-5 step near `x` (x > 0) */
double rep_nice_step(double x)
{
	double p = pow(10, floor(log10(x))), m = x / p;
	return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

void rep_fmt_tick(char *buf, size_t n, double ns, double step)
{
	if (step >= 1e8)
		snprintf(buf, n, "%g s", ns / 1e9);
	else if (step >= 1e6)
		snprintf(buf, n, "%g ms", ns / 1e6);
	else
		snprintf(buf, n, "%g \xc2\xb5s", ns / 1e3);
}

bool rep_contains(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle) != NULL;
}

double rep_ax_x(const struct rep_axis *a, double ns)
{
	if (ns < 0)
		ns = 0;
	if (ns > a->total_ns)
		ns = a->total_ns;
	return a->left + ns / a->total_ns * a->width;
}

void rep_svg_axis(struct sb *b, const struct rep_axis *a, double y_top, double y_bottom)
{
	double step = rep_nice_step(a->total_ns / 8);
	char lbl[32];

	sb_puts(b, "<g class=\"axis\">");
	for (double t = 0; t <= a->total_ns * 1.0001; t += step) {
		double x = rep_ax_x(a, t);
		rep_fmt_tick(lbl, sizeof(lbl), t, step);
		sb_printf(b,
			  "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
			  x, y_top, x, y_bottom);
		sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>", x,
			  y_top - 5, lbl);
	}
	sb_puts(b, "</g>");
}
