/* test_lockdown_frame.c - lockdown framer: round trips, splits, caps, garbage;
 * the analyzer's top-level view (lkd_plist_decode_top). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/lockdown_frame.h"
#include "src/base/lp_error.h"

static plist_t sample_msg(void)
{
	plist_t d = plist_new_dict();

	plist_dict_set_item(d, "Request", plist_new_string("QueryType"));
	plist_dict_set_item(d, "Label", plist_new_string("linkprobe"));
	plist_dict_set_item(d, "Flag", plist_new_bool(1));
	plist_dict_set_item(d, "Blob", plist_new_data("\x00\x01\xff", 3));
	return d;
}

/* libplist 2.2's plist_compare_node_value does not descend into dicts. */
static int same_plist(plist_t a, plist_t b)
{
	char *xa = NULL, *xb = NULL;
	uint32_t la = 0, lb = 0;
	int same;

	plist_to_xml(a, &xa, &la);
	plist_to_xml(b, &xb, &lb);
	same = xa && xb && la == lb && memcmp(xa, xb, la) == 0;
	plist_to_xml_free(xa);
	plist_to_xml_free(xb);
	return same;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

/* A framed message from a raw body. */
static uint8_t *frame_body(const void *body, size_t len, size_t *out_len)
{
	uint8_t *b = malloc(len + 4);

	assert_non_null(b);
	put_be32(b, (uint32_t)len);
	memcpy(b + 4, body, len);
	*out_len = len + 4;
	return b;
}

static void test_xml_round_trip(void **state)
{
	plist_t m = sample_msg(), got = NULL;
	uint8_t *wire, *raw = NULL;
	size_t len, raw_len = 0;
	struct lkd_framer *f = lkd_framer_new();

	assert_int_equal(lkd_frame_encode(m, &wire, &len), 0);
	assert_true(len > 4);
	assert_int_equal(((size_t)wire[0] << 24 | wire[1] << 16 | wire[2] << 8 | wire[3]), len - 4);
	assert_memory_equal(wire + 4, "<?xml", 5);
	assert_int_equal(lkd_framer_feed(f, wire, len), 0);
	assert_int_equal(lkd_framer_next(f, &got, &raw, &raw_len), 0);
	assert_int_equal(raw_len, len - 4);
	assert_memory_equal(raw, wire + 4, raw_len);
	assert_true(same_plist(m, got));
	assert_string_equal(lkd_dict_str(got, "Request"), "QueryType");
	assert_int_equal(lkd_dict_bool(got, "Flag", 0), 1);
	assert_int_equal(lkd_dict_bool(got, "Request", 7), 7); /* wrong type -> default */
	assert_null(lkd_dict_str(got, "Flag"));
	assert_null(lkd_dict_str(got, "Missing"));
	assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), LP_EAGAIN);
	assert_int_equal(lkd_framer_pending(f), 0);
	free(raw);
	free(wire);
	plist_free(got);
	plist_free(m);
	lkd_framer_free(f);
}

static void test_binary_accepted(void **state)
{
	plist_t m = sample_msg(), got = NULL;
	char *bin = NULL;
	uint32_t blen = 0;
	uint8_t *wire;
	size_t len;
	struct lkd_framer *f = lkd_framer_new();

	plist_to_bin(m, &bin, &blen);
	assert_non_null(bin);
	wire = frame_body(bin, blen, &len);
	assert_int_equal(lkd_framer_feed(f, wire, len), 0);
	assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), 0);
	assert_true(same_plist(m, got));
	plist_free(got);
	plist_to_bin_free(bin);
	free(wire);
	plist_free(m);
	lkd_framer_free(f);
}

/* Section 0: the device sends the prefix in its own segment; feed one byte
 * at a time and two messages back to back. */
static void test_split_feeds(void **state)
{
	plist_t m = sample_msg(), got = NULL;
	uint8_t *wire, *two;
	size_t len;
	struct lkd_framer *f = lkd_framer_new();

	assert_int_equal(lkd_frame_encode(m, &wire, &len), 0);
	two = malloc(2 * len);
	memcpy(two, wire, len);
	memcpy(two + len, wire, len);
	for (size_t i = 0; i < 2 * len; i++) {
		assert_int_equal(lkd_framer_feed(f, two + i, 1), 0);
		if (i == 1)
			assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), LP_EAGAIN);
		if (i == len - 2) {
			assert_int_equal(lkd_framer_pending(f), len - 1);
			assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), LP_EAGAIN);
		}
	}
	for (int k = 0; k < 2; k++) {
		assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), 0);
		assert_true(same_plist(m, got));
		plist_free(got);
	}
	assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), LP_EAGAIN);
	free(two);
	free(wire);
	plist_free(m);
	lkd_framer_free(f);
}

static void test_truncated(void **state)
{
	plist_t m = sample_msg(), got = NULL;
	uint8_t *wire;
	size_t len;
	struct lkd_framer *f = lkd_framer_new();

	assert_int_equal(lkd_frame_encode(m, &wire, &len), 0);
	assert_int_equal(lkd_framer_feed(f, wire, len - 10), 0);
	assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), LP_EAGAIN);
	assert_int_equal(lkd_framer_pending(f), len - 10);
	assert_int_equal(lkd_framer_feed(f, wire + len - 10, 10), 0);
	assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), 0);
	plist_free(got);
	free(wire);
	plist_free(m);
	lkd_framer_free(f);
}

static void test_oversize_refused_before_body(void **state)
{
	uint8_t hdr[4];
	plist_t got = NULL;
	struct lkd_framer *f = lkd_framer_new();
	static uint8_t junk[64];

	put_be32(hdr, LKD_MAX_MESSAGE + 1);
	assert_int_equal(lkd_framer_feed(f, hdr, 3), 0);
	assert_int_equal(lkd_framer_feed(f, hdr + 3, 1), LP_ETOOBIG);
	/* dead from now on, and the body was never buffered */
	assert_int_equal(lkd_framer_feed(f, junk, sizeof(junk)), LP_ETOOBIG);
	assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), LP_ETOOBIG);
	assert_true(lkd_framer_pending(f) <= 4);
	lkd_framer_free(f);

	/* exactly the cap passes the check */
	f = lkd_framer_new();
	put_be32(hdr, LKD_MAX_MESSAGE);
	assert_int_equal(lkd_framer_feed(f, hdr, 4), 0);
	lkd_framer_free(f);

	/* 0xffffffff in one feed with trailing bytes */
	f = lkd_framer_new();
	uint8_t big[8] = {0xff, 0xff, 0xff, 0xff, 'a', 'b', 'c', 'd'};
	assert_int_equal(lkd_framer_feed(f, big, sizeof(big)), LP_ETOOBIG);
	lkd_framer_free(f);
	assert_int_equal(lkd_plist_decode((const uint8_t *)"x", LKD_MAX_MESSAGE + 1u, &got),
			 LP_ETOOBIG);
}

static void test_garbage_then_continue(void **state)
{
	static const char garbage[] = "this is not a plist at all";
	static const char array[] =
		"<?xml version=\"1.0\"?><plist version=\"1.0\"><array/></plist>";
	plist_t m = sample_msg(), got = NULL;
	uint8_t *g, *a, *wire, *raw = (uint8_t *)"sentinel";
	size_t glen, alen, len, raw_len = 99;
	struct lkd_framer *f = lkd_framer_new();

	g = frame_body(garbage, sizeof(garbage) - 1, &glen);
	a = frame_body(array, sizeof(array) - 1, &alen);
	assert_int_equal(lkd_frame_encode(m, &wire, &len), 0);
	assert_int_equal(lkd_framer_feed(f, g, glen), 0);
	assert_int_equal(lkd_framer_feed(f, a, alen), 0);
	assert_int_equal(lkd_framer_feed(f, (const uint8_t *)"\0\0\0\0", 4), 0); /* empty body */
	assert_int_equal(lkd_framer_feed(f, wire, len), 0);
	assert_int_equal(lkd_framer_next(f, &got, &raw, &raw_len), LP_EPLIST);
	assert_string_equal((char *)raw, "sentinel"); /* untouched on failure */
	assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), LP_EPLIST); /* not a dict */
	assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), LP_EPLIST); /* empty */
	assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), 0);
	assert_string_equal(lkd_dict_str(got, "Request"), "QueryType");
	plist_free(got);
	free(g);
	free(a);
	free(wire);
	plist_free(m);
	lkd_framer_free(f);
}

static void test_control_bytes_sanitized(void **state)
{
	static const char xml[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<plist version=\"1.0\"><dict><key>Request</key><string>Get\x01Value\x1f</string>"
		"<key>Tab</key><string>a\tb</string></dict></plist>";
	plist_t got = NULL;
	uint8_t *w;
	size_t len;
	struct lkd_framer *f = lkd_framer_new();

	w = frame_body(xml, sizeof(xml) - 1, &len);
	assert_int_equal(lkd_framer_feed(f, w, len), 0);
	assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), 0);
	assert_string_equal(lkd_dict_str(got, "Request"), "Get Value ");
	assert_string_equal(lkd_dict_str(got, "Tab"), "a\tb");
	plist_free(got);
	free(w);
	lkd_framer_free(f);
}

/* A StartSession reply followed at once by TLS bytes: feeding one frame at a
 * time leaves the TLS record with the caller instead of framing it. */
static void test_stop_at_frame_boundary(void **state)
{
	plist_t m = sample_msg(), got = NULL;
	static const uint8_t tls[] = {0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5};
	uint8_t *wire, *buf;
	size_t len, used = 0, total;
	struct lkd_framer *f = lkd_framer_new();

	assert_int_equal(lkd_frame_encode(m, &wire, &len), 0);
	total = len + sizeof(tls);
	buf = malloc(total);
	assert_non_null(buf);
	memcpy(buf, wire, len);
	memcpy(buf + len, tls, sizeof(tls));
	/* byte by byte through the prefix, then the rest in one go */
	assert_int_equal(lkd_framer_feed_one(f, buf, 3, &used), 0);
	assert_int_equal(used, 3);
	assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), LP_EAGAIN);
	assert_int_equal(lkd_framer_feed_one(f, buf + 3, total - 3, &used), 0);
	assert_int_equal(used, len - 3); /* stopped where the frame ends */
	assert_int_equal(lkd_framer_pending(f), 0);
	assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), 0);
	assert_true(same_plist(m, got));
	plist_free(got);
	/* two frames in one buffer: one at a time */
	memcpy(buf, wire, len);
	assert_int_equal(lkd_framer_feed_one(f, buf, len, &used), 0);
	assert_int_equal(used, len);
	assert_int_equal(lkd_framer_feed_one(f, buf, 0, &used), 0);
	assert_int_equal(used, 0);
	assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), 0);
	plist_free(got);
	assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), LP_EAGAIN);
	free(buf);
	free(wire);
	plist_free(m);
	lkd_framer_free(f);
}

/* The top-level view of what libplist writes: root scalars as the full
 * decode has them, nested containers and data present but empty (so it was
 * read directly, not through libplist); the framer decodes with it when
 * asked. An entity sends the body to libplist, which decodes it. */
static void test_top_view(void **state)
{
	plist_t d = sample_msg(), rec = plist_new_dict(), top = NULL, full = NULL, got = NULL;
	struct lkd_framer *f = lkd_framer_new();
	uint8_t *wire = NULL;
	size_t len = 0;

	plist_dict_set_item(rec, "HostID", plist_new_string("5F5B"));
	plist_dict_set_item(d, "PairRecord", rec);
	plist_dict_set_item(d, "Port", plist_new_uint(49152));
	plist_dict_set_item(d, "Error", plist_new_string("A & B <x>"));
	assert_int_equal(lkd_frame_encode(d, &wire, &len), 0);
	assert_int_equal(lkd_plist_decode(wire + 4, len - 4, &full), 0);
	/* the entity in Error: the whole body goes through libplist */
	assert_int_equal(lkd_plist_decode_top(wire + 4, len - 4, &top), 0);
	assert_true(same_plist(top, full));
	plist_free(top);
	free(wire);

	plist_dict_set_item(d, "Error", plist_new_string("InvalidHostID"));
	assert_int_equal(lkd_frame_encode(d, &wire, &len), 0);
	assert_int_equal(lkd_plist_decode_top(wire + 4, len - 4, &top), 0);
	assert_string_equal(lkd_dict_str(top, "Request"), "QueryType");
	assert_string_equal(lkd_dict_str(top, "Error"), "InvalidHostID");
	assert_int_equal(lkd_dict_bool(top, "Flag", 0), 1);
	assert_int_equal(lkd_dict_uint(top, "Port", 0), 49152);
	assert_int_equal(plist_get_node_type(plist_dict_get_item(top, "PairRecord")), PLIST_DICT);
	assert_int_equal(plist_dict_get_size(plist_dict_get_item(top, "PairRecord")), 0);
	assert_int_equal(plist_get_node_type(plist_dict_get_item(top, "Blob")), PLIST_DATA);
	assert_int_equal(plist_dict_get_size(top), 7);

	/* through the framer */
	assert_non_null(f);
	lkd_framer_top_only(f, 1);
	assert_int_equal(lkd_framer_feed(f, wire, len), 0);
	assert_int_equal(lkd_framer_next(f, &got, NULL, NULL), 0);
	assert_int_equal(plist_dict_get_size(plist_dict_get_item(got, "PairRecord")), 0);
	assert_string_equal(lkd_dict_str(got, "Label"), "linkprobe");

	/* a body cut short is no dictionary either way */
	plist_free(top);
	top = NULL;
	assert_int_equal(lkd_plist_decode_top(wire + 4, len - 20, &top), LP_EPLIST);
	plist_free(got);
	plist_free(full);
	plist_free(d);
	lkd_framer_free(f);
	free(wire);
}

/* The view: the framer's keys only, the same values as the top-level
 * dictionary, whether the body was read directly or by libplist (an
 * entity); a view is reused from message to message. */
static void test_view(void **state)
{
	static const char *const keys[] = {"Request", "Error", "Port", "Flag", "Missing", NULL};
	plist_t d = sample_msg();
	struct lkd_framer *f = lkd_framer_new();
	struct lkd_view v = {0};
	uint8_t *wire = NULL;
	size_t len = 0;

	(void)state;
	assert_non_null(f);
	assert_int_equal(lkd_framer_top_keys(f, keys), 0);
	plist_dict_set_item(d, "Port", plist_new_uint(49152));
	for (int entity = 0; entity < 2; entity++) {
		plist_dict_set_item(d, "Error",
				    plist_new_string(entity ? "A & B" : "InvalidHostID"));
		assert_int_equal(lkd_frame_encode(d, &wire, &len), 0);
		assert_int_equal(lkd_framer_feed(f, wire, len), 0);
		assert_int_equal(lkd_framer_next_view(f, &v), 0);
		assert_int_equal(v.n, 4);
		assert_true((v.pl != NULL) == (entity == 1)); /* libplist read it */
		assert_string_equal(lkd_view_str(&v, "Request"), "QueryType");
		assert_string_equal(lkd_view_str(&v, "Error"), entity ? "A & B" : "InvalidHostID");
		assert_int_equal(lkd_view_uint(&v, "Port", 0), 49152);
		assert_null(lkd_view_str(&v, "Port")); /* another type */
		assert_int_equal(lkd_view_bool(&v, "Flag", 0), 1);
		assert_null(lkd_view_str(&v, "Label")); /* not a key of the view */
		assert_int_equal(lkd_view_uint(&v, "Missing", 7), 7);
		assert_int_equal(lkd_framer_next_view(f, &v), LP_EAGAIN);
		assert_int_equal(v.n, 0);
		free(wire);
	}
	static const char *const many[LKD_TOP_KEYS_MAX + 2] = {"a", "b", "c", "d", "e", "f",
							       "g", "h", "i", "j", "k", "l",
							       "m", "n", "o", "p", "q"};
	assert_int_equal(lkd_framer_top_keys(f, many), LP_EINVAL);
	lkd_view_release(&v);
	lkd_framer_free(f);
	plist_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xml_round_trip),
		cmocka_unit_test(test_binary_accepted),
		cmocka_unit_test(test_split_feeds),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_oversize_refused_before_body),
		cmocka_unit_test(test_garbage_then_continue),
		cmocka_unit_test(test_control_bytes_sanitized),
		cmocka_unit_test(test_stop_at_frame_boundary),
		cmocka_unit_test(test_top_view),
		cmocka_unit_test(test_view),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
