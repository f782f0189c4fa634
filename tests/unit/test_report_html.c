/* test_report_html.c - the HTML report: escaping of hostile strings, what the
 * page contains for a report with hostile device strings, and the atomic
 * write (the target is replaced whole or not at all). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "src/cli/report_html.h"
#include "src/diag/diag.h"

#define R "\xef\xbf\xbd" /* U+FFFD */

static void esc_is(const char *in, const char *want)
{
	char *got = rep_html_escape(in);
	assert_non_null(got);
	if (strcmp(got, want) != 0)
		fail_msg("escape(%s): got '%s', want '%s'", in, got, want);
	free(got);
}

static void test_escape_markup(void **state)
{
	(void)state;
	esc_is("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;");
	esc_is("\"><img src=x onerror=alert(1)>", "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
	esc_is("a\"b'c&d", "a&quot;b&#39;c&amp;d");
	esc_is("&amp;", "&amp;amp;");
	esc_is("", "");
	esc_is(NULL, "");
	esc_is("iPhone 15 Pro", "iPhone 15 Pro");
}

static void test_escape_controls(void **state)
{
	(void)state;
	esc_is("a\x01"
	       "b\x1b[31mc\x7f",
	       "a" R "b" R "[31mc" R);
	esc_is("line1\nline2\ttab\r", "line1\nline2\ttab" R);
	esc_is("x\xc2\x85y", "x" R "y"); /* C1 NEL */
	esc_is("x\xc2\x9b"
	       "31m",
	       "x" R "31m");				       /* C1 CSI */
	esc_is("evil\xe2\x80\xaetxt.exe", "evil" R "txt.exe"); /* U+202E RLO */
	esc_is("\xe2\x81\xa6"
	       "abc\xe2\x81\xa9",
	       R "abc" R);	   /* U+2066 .. U+2069 */
	esc_is("\xe2\x80\x8f", R); /* U+200F RLM */
	esc_is("\xd8\x9c", R);	   /* U+061C ALM */
}

static void test_escape_utf8(void **state)
{
	(void)state;
	esc_is("caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x98\x80",
	       "caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x98\x80");
	esc_is("\xff", R);
	esc_is("\xc0\xaf", R R);	     /* overlong '/' */
	esc_is("\xe0\x80\xbc", R R R);	     /* overlong '<' */
	esc_is("\xed\xa0\x80", R R R);	     /* UTF-16 surrogate */
	esc_is("ab\xe2\x82", "ab" R R);	     /* truncated at the end */
	esc_is("\xe2<b", R "&lt;b");	     /* a lead byte does not swallow markup */
	esc_is("\xf4\x90\x80\x80", R R R R); /* above U+10FFFF */
}

/* A report as diag_to_json makes it, with hostile strings where a device or a
 * capture controls the text. */
static json_object *hostile_report(void)
{
	struct lp_clock clk;
	struct diag_report r;
	json_object *o;
	uint64_t samples[] = {400000, 410000, 900000, 2500000};

	lp_clock_init_virtual(&clk, 1000);
	diag_init(&r, "trust", &clk);
	r.dev.present = true;
	r.dev.vid = 0x05ac;
	r.dev.pid = 0x12a8;
	r.dev.mode = "normal";
	snprintf(r.dev.name, sizeof(r.dev.name), "<script>alert('name')</script>");
	snprintf(r.dev.product, sizeof(r.dev.product), "\"onmouseover=\"x");
	snprintf(r.dev.udid, sizeof(r.dev.udid),
		 "abc\xe2\x80\xae"
		 "def");
	struct diag_stage *s = diag_begin(&r, "find device");
	lp_clock_advance(&clk, 1000000);
	diag_end(&r, s, DIAG_ST_OK, "found <b>it</b>");
	s = diag_begin(&r, "Pair");
	lp_clock_advance(&clk, 2000000000);
	diag_end(&r, s, DIAG_ST_FAIL, "lockdown error UserDeniedPairing");
	diag_skip(&r, "StartSession", "after a failure");
	diag_set_verdict(&r, DIAG_V_DENIED, "device said <img src=x onerror=alert(2)>");
	r.metrics = json_object_new_object();
	json_object_object_add(r.metrics, "control_rtt", diag_latency_json(samples, 4));
	r.extra = json_object_new_object();
	json_object *an = json_object_new_array();
	json_object_array_add(
		an, json_object_new_string("packet 17: device string </li><script>x</script>"));
	json_object_object_add(r.extra, "anomalies", an);
	o = diag_to_json(&r);
	diag_release(&r);
	return o;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void test_render_hostile(void **state)
{
	json_object *rep = hostile_report();
	struct rep_data d;
	struct rep_xfer x = {.start_ns = 1000,
			     .end_ns = 500000,
			     .endpoint = 0x04,
			     .type = TR_XFER_BULK,
			     .kind = REP_X_ERROR,
			     .packet = 42};
	char *html = NULL;
	size_t len = 0;

	(void)state;
	rep_data_init(&d, 0, "sim:<deny>");
	assert_int_equal(rep_add_xfer(&d, &x), 0);
	x.kind = REP_X_GONE;
	x.start_ns = x.end_ns = 1500000000;
	assert_int_equal(rep_add_xfer(&d, &x), 0);
	assert_int_equal(rep_add_mark(&d, 1000000, "Pair", "\"Trust This Computer?\" <tap>"), 0);
	assert_int_equal(rep_html_render(rep, &d, &html, &len), 0);
	assert_int_equal(strlen(html), len);

	assert_int_equal(count(html, "<script"), 0);
	assert_int_equal(count(html, "<img"), 0);
	assert_int_equal(count(html, "onmouseover=\""), 0);
	assert_non_null(strstr(html, "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;"));
	assert_non_null(strstr(html, "device said &lt;img src=x onerror=alert(2)&gt;"));
	assert_non_null(strstr(html, "abc" R "def"));
	assert_non_null(strstr(html, "sim:&lt;deny&gt;"));
	assert_non_null(
		strstr(html, "<span class=\"pkt\">packet 17</span>device string &lt;/li&gt;"));
	assert_null(strstr(html, "://")); /* nothing external */
	assert_non_null(strstr(html, "Content-Security-Policy\" content=\"default-src 'none'"));
	assert_non_null(strstr(html, "<h1 id=\"verdict\">DENIED</h1>"));
	assert_int_equal(count(html, "class=\"stage-bar "), 3);
	assert_int_equal(count(html, "class=\"stage-bar st-fail\""), 1);
	assert_int_equal(count(html, "class=\"stage-bar st-skipped\""), 1);
	assert_int_equal(count(html, "<rect class=\"trust-wait\""), 1);
	assert_int_equal(count(html, "<svg class=\"histogram\" data-probe=\"control_rtt\""), 1);
	assert_non_null(strstr(html, "(packet 42)"));
	assert_int_equal(count(html, "<line class=\"gone\""), 1);
	free(html);
	rep_data_release(&d);
	json_object_put(rep);
}

static void test_latency_histogram(void **state)
{
	uint64_t v[] = {900, 1500, 150000, 160000, 170000, 3000000};
	json_object *o = diag_latency_json(v, 6), *h, *le, *c;

	(void)state;
	assert_true(json_object_object_get_ex(o, "histogram", &h));
	assert_true(json_object_object_get_ex(h, "le_us", &le));
	assert_true(json_object_object_get_ex(h, "counts", &c));
	/* buckets 1 us .. 5 ms: 1,2,5,10,20,50,100,200,500,1000,2000,5000 */
	assert_int_equal(json_object_array_length(le), 12);
	assert_int_equal(json_object_array_length(c), 12);
	assert_int_equal(json_object_get_int(json_object_array_get_idx(c, 0)), 1); /* 0.9 us */
	assert_int_equal(json_object_get_int(json_object_array_get_idx(c, 1)), 1); /* 1.5 us */
	assert_int_equal(json_object_get_int(json_object_array_get_idx(c, 7)),
			 3); /* 150..170 us <= 200 */
	assert_int_equal(json_object_get_int(json_object_array_get_idx(c, 11)),
			 1); /* 3 ms <= 5 ms */
	assert_true(json_object_get_double(json_object_array_get_idx(le, 11)) == 5000.0);
	json_object_put(o);
}

static int files_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	if (d)
		closedir(d);
	return n;
}

static void test_write_atomic(void **state)
{
	char dir[] = "/tmp/lp-report-XXXXXX", path[256], bad[256];
	json_object *rep = hostile_report();
	struct lp_errinfo e = {0};
	struct stat st;
	FILE *f;
	char buf[32] = "";
	mode_t um = umask(022);

	umask(um);

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/r.html", dir);
	f = fopen(path, "w");
	fputs("old", f);
	fclose(f);
	assert_int_equal(rep_html_write(path, rep, NULL, &e), 0);
	f = fopen(path, "r");
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "<!DOCTYPE html>\n");
	assert_int_equal(files_in(dir), 1); /* no temporary file left */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777,
			 0666 & ~um); /* like any file the user creates, not mkstemp's 0600 */

	snprintf(bad, sizeof(bad), "%s/no/such/dir/r.html", dir);
	assert_true(rep_html_write(bad, rep, NULL, &e) < 0);
	assert_non_null(strstr(e.msg, "cannot create"));
	assert_int_equal(files_in(dir), 1);

	unlink(path);
	rmdir(dir);
	json_object_put(rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_markup),	  cmocka_unit_test(test_escape_controls),
		cmocka_unit_test(test_escape_utf8),	  cmocka_unit_test(test_render_hostile),
		cmocka_unit_test(test_latency_histogram), cmocka_unit_test(test_write_atomic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
