/* test_plist_depth.c - over-nested plists are refused before libplist parses
 * (or frees) them, at every entry point that decodes untrusted plists: the
 * lockdown framer (device replies, analyzer, replay device, simulated
 * lockdownd), lkd_plist_decode (usbmuxd replies, sim state), pair records and
 * the usbmuxd client's body decoder. The two inputs of issue 10 are built
 * here: a ~900 KB bplist of 100 000 nested arrays (segfaulted in libplist's
 * parser) and 200 000 nested XML <array>s (parsed, then segfaulted in
 * plist_free). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/lockdown_frame.h"
#include "proto/pair_record.h"
#include "proto/plist_depth.h"
#include "proto/usbmuxd_codec.h"
#include "src/base/lp_error.h"

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* A bplist of `depth` arrays, each holding the next; with `fanout` 2 every
 * array refers twice to the same child (a DAG libplist expands to 2^depth
 * nodes). With `cycle`, the innermost array refers back to the outermost. */
static uint8_t *gen_bplist(size_t depth, unsigned fanout, int cycle, size_t *len)
{
	const unsigned rsz = 4, osz = 4;
	size_t objsz = 1 + (size_t)fanout * rsz, n = depth;
	size_t ot = 8 + n * objsz, total = ot + n * osz + 32;
	uint8_t *b = calloc(1, total), *p;

	assert_non_null(b);
	memcpy(b, "bplist00", 8);
	p = b + 8;
	for (size_t i = 0; i < n; i++) {
		int last = i + 1 == n;

		if (last && !cycle) {
			*p = 0xA0; /* empty array; pad the rest of the slot */
		} else {
			*p = (uint8_t)(0xA0 | fanout);
			for (unsigned k = 0; k < fanout; k++)
				put_be(p + 1 + k * rsz, last ? 0 : i + 1, rsz);
		}
		put_be(b + ot + i * osz, 8 + i * objsz, osz);
		p += objsz;
	}
	p = b + ot + n * osz;
	p[6] = osz;
	p[7] = rsz;
	put_be(p + 8, n, 8);
	put_be(p + 16, 0, 8);
	put_be(p + 24, ot, 8);
	*len = total;
	return b;
}

static uint8_t *gen_xml(size_t depth, size_t *len)
{
	static const char head[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				   "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
				   "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
				   "<plist version=\"1.0\">";
	static const char tail[] = "</plist>\n";
	size_t total = strlen(head) + depth * (7 + 8) + strlen(tail);
	char *b = malloc(total + 1), *p = b;

	assert_non_null(b);
	p += sprintf(p, "%s", head);
	for (size_t i = 0; i < depth; i++)
		p += sprintf(p, "<array>");
	for (size_t i = 0; i < depth; i++)
		p += sprintf(p, "</array>");
	p += sprintf(p, "%s", tail);
	*len = (size_t)(p - b);
	return (uint8_t *)b;
}

static void test_issue_inputs_refused(void **state)
{
	size_t blen, xlen;
	uint8_t *bin = gen_bplist(100000, 1, 0, &blen);
	uint8_t *xml = gen_xml(200000, &xlen);
	plist_t pl = NULL;

	assert_in_range(blen, 850000, 950000);
	assert_true(blen <= LKD_MAX_MESSAGE && xlen <= LKD_MAX_MESSAGE);
	assert_int_equal(lkd_plist_check_depth(bin, blen, LKD_MAX_DEPTH), LP_ETOOBIG);
	assert_int_equal(lkd_plist_check_depth(xml, xlen, LKD_MAX_DEPTH), LP_ETOOBIG);
	assert_int_equal(lkd_plist_decode(bin, blen, &pl), LP_EPLIST);
	assert_null(pl);
	assert_int_equal(lkd_plist_decode(xml, xlen, &pl), LP_EPLIST);
	assert_null(pl);
	free(bin);
	free(xml);
}

/* The cap itself: LKD_MAX_DEPTH containers parse, one more does not. */
static void test_cap_boundary(void **state)
{
	for (size_t d = LKD_MAX_DEPTH; d <= LKD_MAX_DEPTH + 1; d++) {
		size_t blen, xlen;
		uint8_t *bin = gen_bplist(d, 1, 0, &blen), *xml = gen_xml(d, &xlen);
		plist_t a = NULL, b = NULL;
		int want = d == LKD_MAX_DEPTH ? 0 : LP_EPLIST;

		assert_int_equal(lkd_plist_decode(bin, blen, &a), want);
		assert_int_equal(lkd_plist_decode(xml, xlen, &b), want);
		if (want == 0) {
			assert_int_equal(plist_get_node_type(a), PLIST_ARRAY);
			assert_int_equal(plist_get_node_type(b), PLIST_ARRAY);
		}
		plist_free(a);
		plist_free(b);
		free(bin);
		free(xml);
	}
}

/* 30 levels, each referring twice to the next: 62 bytes a level on the wire,
 * 2^30 objects once libplist copies shared references. */
static void test_shared_reference_bomb(void **state)
{
	size_t len;
	uint8_t *bin = gen_bplist(30, 2, 0, &len);
	plist_t pl = NULL;

	assert_int_equal(lkd_plist_check_depth(bin, len, LKD_MAX_DEPTH), LP_ETOOBIG);
	assert_int_equal(lkd_plist_decode(bin, len, &pl), LP_EPLIST);
	free(bin);
	/* a small DAG is fine */
	bin = gen_bplist(8, 2, 0, &len);
	assert_int_equal(lkd_plist_check_depth(bin, len, LKD_MAX_DEPTH), 0);
	free(bin);
}

static void test_cycle_and_bad_offsets(void **state)
{
	size_t len;
	uint8_t *bin = gen_bplist(3, 1, 1, &len);

	assert_int_equal(lkd_plist_check_depth(bin, len, LKD_MAX_DEPTH), LP_EPLIST);
	free(bin);
	bin = gen_bplist(3, 1, 0, &len);
	bin[len - 32 + 6] = 0; /* offset size 0 */
	assert_int_equal(lkd_plist_check_depth(bin, len, LKD_MAX_DEPTH), LP_EPLIST);
	free(bin);
	bin = gen_bplist(3, 1, 0, &len);
	put_be(bin + len - 8, len, 8); /* offset table past the end */
	assert_int_equal(lkd_plist_check_depth(bin, len, LKD_MAX_DEPTH), LP_EPLIST);
	free(bin);
	/* XML comments, CDATA and quoted '>' do not confuse the count */
	static const char x[] =
		"<plist><!-- <array><array> --><dict a='>'><key>k</key>"
		"<string><![CDATA[<array><array>]]></string><array/></dict></plist>";
	assert_int_equal(lkd_plist_check_depth((const uint8_t *)x, strlen(x), 1), 0);
}

/* Real messages pass: a GetValue-shaped reply, binary and XML. */
static void test_real_shapes_pass(void **state)
{
	plist_t d = plist_new_dict(), v = plist_new_dict(), a = plist_new_array(), back = NULL;
	char *bin = NULL, *xml = NULL;
	uint32_t bl = 0, xl = 0;

	plist_array_append_item(a, plist_new_string("x"));
	plist_dict_set_item(v, "List", a);
	plist_dict_set_item(d, "Value", v);
	plist_dict_set_item(d, "Request", plist_new_string("GetValue"));
	plist_to_bin(d, &bin, &bl);
	plist_to_xml(d, &xml, &xl);
	assert_int_equal(lkd_plist_check_depth((uint8_t *)bin, bl, 3), 0);
	assert_int_equal(lkd_plist_check_depth((uint8_t *)bin, bl, 2), LP_ETOOBIG);
	assert_int_equal(lkd_plist_check_depth((uint8_t *)xml, xl, 3), 0);
	assert_int_equal(lkd_plist_decode((uint8_t *)bin, bl, &back), 0);
	plist_free(back);
	plist_to_bin_free(bin);
	plist_to_xml_free(xml);
	plist_free(d);
}

/* The framer (lockdown client, analyzer, replay, simulated lockdownd) drops
 * the deep message and still delivers the next one. */
static void test_framer_drops_deep_message(void **state)
{
	size_t blen, xlen, okl;
	uint8_t *bin = gen_bplist(100000, 1, 0, &blen), *xml = gen_xml(200000, &xlen);
	struct lkd_framer *f = lkd_framer_new();
	plist_t ok = plist_new_dict(), out = NULL;
	uint8_t *okf = NULL, pfx[4];

	assert_non_null(f);
	plist_dict_set_item(ok, "Request", plist_new_string("QueryType"));
	assert_int_equal(lkd_frame_encode(ok, &okf, &okl), 0);
	put_be(pfx, blen, 4);
	assert_int_equal(lkd_framer_feed(f, pfx, 4), 0);
	assert_int_equal(lkd_framer_feed(f, bin, blen), 0);
	put_be(pfx, xlen, 4);
	assert_int_equal(lkd_framer_feed(f, pfx, 4), 0);
	assert_int_equal(lkd_framer_feed(f, xml, xlen), 0);
	assert_int_equal(lkd_framer_feed(f, okf, okl), 0);
	assert_int_equal(lkd_framer_next(f, &out, NULL, NULL), LP_EPLIST);
	assert_int_equal(lkd_framer_next(f, &out, NULL, NULL), LP_EPLIST);
	assert_int_equal(lkd_framer_next(f, &out, NULL, NULL), 0);
	assert_string_equal(lkd_dict_str(out, "Request"), "QueryType");
	plist_free(out);
	plist_free(ok);
	free(okf);
	lkd_framer_free(f);
	free(bin);
	free(xml);
}

static void test_pair_record_and_usbmuxd_refuse(void **state)
{
	size_t blen, xlen;
	uint8_t *bin = gen_bplist(100000, 1, 0, &blen), *xml = gen_xml(200000, &xlen);
	struct pair_record *rec = NULL;
	struct umc_header h = {.length = 0, .version = 1, .message = 8, .tag = 1};
	plist_t out = NULL;

	/* a pair record file is capped at 1 MiB: the binary input fits, the XML
	 * one is cut to as many levels as fit */
	assert_true(blen <= PAIR_RECORD_MAX_FILE);
	assert_int_equal(pair_record_parse(bin, blen, &rec, NULL), LP_EPLIST);
	assert_null(rec);
	{
		size_t l;
		uint8_t *x = gen_xml((PAIR_RECORD_MAX_FILE - 300) / 15, &l);

		assert_true(l <= PAIR_RECORD_MAX_FILE);
		assert_int_equal(pair_record_parse(x, l, &rec, NULL), LP_EPLIST);
		assert_null(rec);
		free(x);
	}
	h.length = (uint32_t)(16 + blen);
	assert_int_not_equal(umc_decode_body(&h, bin, blen, &out, NULL), 0);
	assert_null(out);
	h.length = (uint32_t)(16 + xlen);
	assert_int_not_equal(umc_decode_body(&h, xml, xlen, &out, NULL), 0);
	assert_null(out);
	free(bin);
	free(xml);
}

/* A bplist of one dict {key: value}, each given as its object bytes (marker
 * included); one-byte offsets and refs. */
static uint8_t *bp_dict1(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, size_t *len)
{
	size_t ot = 8 + 3 + kl + vl, total = ot + 3 + 32;
	uint8_t *b = calloc(1, total), *t;

	assert_non_null(b);
	memcpy(b, "bplist00", 8);
	b[8] = 0xD1; /* dict, one pair: key ref 1, value ref 2 */
	b[9] = 1;
	b[10] = 2;
	memcpy(b + 11, k, kl);
	memcpy(b + 11 + kl, v, vl);
	b[ot] = 8;
	b[ot + 1] = (uint8_t)(11);
	b[ot + 2] = (uint8_t)(11 + kl);
	t = b + ot + 3;
	t[6] = 1;
	t[7] = 1;
	put_be(t + 8, 3, 8);
	put_be(t + 16, 0, 8);
	put_be(t + 24, ot, 8);
	*len = total;
	return b;
}

/* A binary string with a NUL character in it, as a key or as a value, ASCII
 * or UTF-16: libplist 2.2 parses it, keeps its length, and then aborts the
 * process on an assert (length == strlen) when the key or string is read -
 * found by the pair_record fuzzer. Refused before libplist sees it; the same
 * dicts without the NUL pass. */
static void test_nul_in_strings_refused(void **state)
{
	static const uint8_t k_ok[] = {0x54, 'K', 'e', 'e', 'y'},
			     k_nul[] = {0x54, 'K', 'e', 0, 'y'}, k16_ok[] = {0x62, 0, 'K', 0, 'y'},
			     k16_nul[] = {0x62, 0, 'K', 0, 0}, v_ok[] = {0x51, 'v'},
			     v_nul[] = {0x52, 'v', 0}, v16_nul[] = {0x62, 0x4E, 0x0A, 0, 0};
	const struct {
		const uint8_t *k, *v;
		size_t kl, vl;
		int want;
	} cases[] = {
		{k_ok, v_ok, sizeof(k_ok), sizeof(v_ok), 0},
		{k16_ok, v_ok, sizeof(k16_ok), sizeof(v_ok), 0},
		{k_nul, v_ok, sizeof(k_nul), sizeof(v_ok), LP_EPLIST},
		{k16_nul, v_ok, sizeof(k16_nul), sizeof(v_ok), LP_EPLIST},
		{k_ok, v_nul, sizeof(k_ok), sizeof(v_nul), LP_EPLIST},
		{k_ok, v16_nul, sizeof(k_ok), sizeof(v16_nul), LP_EPLIST},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		uint8_t *b = bp_dict1(cases[i].k, cases[i].kl, cases[i].v, cases[i].vl, &len);
		plist_t pl = NULL;
		struct pair_record *rec = NULL;

		assert_int_equal(lkd_plist_check_depth(b, len, LKD_MAX_DEPTH), cases[i].want);
		assert_int_equal(lkd_plist_decode(b, len, &pl), cases[i].want);
		if (pl) { /* what the callers do with a dict: read every key */
			plist_dict_iter it = NULL;
			char *key = NULL;
			plist_t val = NULL;

			plist_dict_new_iter(pl, &it);
			plist_dict_next_item(pl, it, &key, &val);
			assert_non_null(key);
			free(key);
			free(it);
			plist_free(pl);
		}
		/* a pair record file of that shape: refused (or incomplete), no abort */
		assert_int_not_equal(pair_record_parse(b, len, &rec, NULL), 0);
		assert_null(rec);
		free(b);
	}
	/* a string that claims more characters than the object area holds */
	{
		static const uint8_t k_long[] = {0x5F, 0x10, 0x40, 'K'};
		size_t len;
		uint8_t *b = bp_dict1(k_long, sizeof(k_long), v_ok, sizeof(v_ok), &len);

		assert_int_equal(lkd_plist_check_depth(b, len, LKD_MAX_DEPTH), LP_EPLIST);
		free(b);
	}
}

/* A binary dict that names one key twice (found by the lockdown fuzzer's
 * check that the fast top-level decoder and libplist agree): libplist keeps
 * both pairs, so a lookup and an iteration see different values. Refused,
 * also inside an array; the same dict with two keys passes. */
static void test_repeated_keys_refused(void **state)
{
	/* {k: a, k: b} or {k: a, j: b}; [that dict] */
	uint8_t b[] = {'b',  'p', 'l', 'i', 's', 't', '0', '0', 0xA1, 1, /* @8 array [ref 1] */
		       0xD2, 2,	  2,   4,   5,	     /* @10 dict: keys 2, 2 (or 3), values 4, 5 */
		       0x51, 'k',		     /* @15 */
		       0x51, 'j',		     /* @17 */
		       0x51, 'a',		     /* @19 */
		       0x51, 'b',		     /* @21 */
		       8,    10,  15,  17,  19,	 21, /* @23 offsets */
		       0,    0,	  0,   0,   0,	 0,   1,   1,	0,    0, 0, 0, 0, 0, 0, 6,
		       0,    0,	  0,   0,   0,	 0,   0,   1,	0,    0, 0, 0, 0, 0, 0, 23};
	size_t top = sizeof(b) - 16 + 7; /* the top object's last byte */
	plist_t pl = NULL;

	assert_int_equal(lkd_plist_decode(b, sizeof(b), &pl), LP_EPLIST); /* top: the dict */
	assert_null(pl);
	b[top] = 0; /* top: the array holding it */
	assert_int_equal(lkd_plist_decode(b, sizeof(b), &pl), LP_EPLIST);
	b[12] = 3; /* keys k and j */
	assert_int_equal(lkd_plist_decode(b, sizeof(b), &pl), 0);
	assert_int_equal(plist_get_node_type(pl), PLIST_ARRAY);
	plist_free(pl);
	pl = NULL;
	b[top] = 1;
	assert_int_equal(lkd_plist_decode(b, sizeof(b), &pl), 0);
	assert_int_equal(plist_dict_get_size(pl), 2);
	plist_free(pl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_issue_inputs_refused),
		cmocka_unit_test(test_cap_boundary),
		cmocka_unit_test(test_shared_reference_bomb),
		cmocka_unit_test(test_cycle_and_bad_offsets),
		cmocka_unit_test(test_real_shapes_pass),
		cmocka_unit_test(test_framer_drops_deep_message),
		cmocka_unit_test(test_pair_record_and_usbmuxd_refuse),
		cmocka_unit_test(test_nul_in_strings_refused),
		cmocka_unit_test(test_repeated_keys_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
