/* fuzz_lockdown.c - libFuzzer harness for the lockdown framer.
 *
 * Input: byte 0 picks the chunk size (1..256) the rest is fed in, so prefix
 * splits at every offset get exercised. Each decoded message goes through
 * the getters and an encode/decode round trip. The rest of the input is
 * also decoded as one body by lkd_plist_decode and by the analyzer's
 * lkd_plist_decode_top, which must agree: both fail, or both give a
 * dictionary with the same root keys, the same types, the same strings,
 * booleans and integers (abort otherwise). Also builds standalone:
 *   cc -DFUZZ_MAIN ... fuzz_lockdown.c && ./a.out FILE...
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/lockdown_frame.h"
#include "src/base/lp_error.h"

static volatile size_t sink; /* keeps the getters from being optimized out */

static void use_message(plist_t m)
{
	static const char *const keys[] = {"Request", "Error",	   "Result",  "Type",  "Key",
					   "Domain",  "SessionID", "Service", "HostID"};
	uint8_t *wire = NULL;
	size_t len = 0;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *s = lkd_dict_str(m, keys[i]);
		if (s)
			sink += strlen(s);
	}
	sink += (size_t)lkd_dict_bool(m, "EnableSessionSSL", 0);
	sink += (size_t)lkd_dict_bool(m, "EnableServiceSSL", 1);
	(void)lp_lockdown_error_code(lkd_dict_str(m, "Error"));
	if (lkd_frame_encode(m, &wire, &len) == 0) {
		plist_t again = NULL;

		if (len < 4 || lkd_plist_decode(wire + 4, len - 4, &again) != 0)
			abort(); /* what we encode we must be able to decode */
		plist_free(again);
		free(wire);
	}
}

/* The view's contract (lockdown_frame.h): through a framer, the same
 * success and, at each of its keys, the same presence, type and scalar value
 * as lkd_plist_decode_top's dictionary. */
static void view_vs_top(const uint8_t *b, size_t n, plist_t top, int rt)
{
	static const char *const keys[] = {
		"Request",	    "Error", "Key", "Value", "Port", "Type", "Label", "Flag",
		"EnableSessionSSL", NULL};
	struct lkd_view v = {0};
	struct lkd_framer *f;
	uint8_t *wire;
	int rv;

	if (n > LKD_MAX_MESSAGE || !(wire = malloc(n + 4)) || !(f = lkd_framer_new())) {
		if (n <= LKD_MAX_MESSAGE)
			free(wire);
		return;
	}
	wire[0] = (uint8_t)(n >> 24);
	wire[1] = (uint8_t)(n >> 16);
	wire[2] = (uint8_t)(n >> 8);
	wire[3] = (uint8_t)n;
	memcpy(wire + 4, b, n);
	if (lkd_framer_top_keys(f, keys) || lkd_framer_feed(f, wire, n + 4))
		abort();
	rv = lkd_framer_next_view(f, &v);
	/* the framer's own rule: the body must be a dictionary */
	if (rt == 0 && plist_get_node_type(top) != PLIST_DICT)
		rt = LP_EPLIST;
	if ((rv == 0) != (rt == 0))
		abort();
	for (size_t i = 0; rv == 0 && keys[i]; i++) {
		plist_t w = plist_dict_get_item(top, keys[i]);
		const char *s = lkd_view_str(&v, keys[i]);

		if (!w) {
			if (s || lkd_view_bool(&v, keys[i], 2) != 2 ||
			    lkd_view_uint(&v, keys[i], 7) != 7)
				abort();
		} else if (plist_get_node_type(w) == PLIST_STRING) {
			if (!s || strcmp(s, plist_get_string_ptr(w, NULL)) != 0)
				abort();
		} else if (plist_get_node_type(w) == PLIST_BOOLEAN) {
			uint8_t a = 0;

			plist_get_bool_val(w, &a);
			if (lkd_view_bool(&v, keys[i], 2) != (a != 0))
				abort();
		} else if (plist_get_node_type(w) == PLIST_UINT) {
			uint64_t a = 0;

			plist_get_uint_val(w, &a);
			if (lkd_view_uint(&v, keys[i], a + 1) != a)
				abort();
		} else if (s || lkd_view_bool(&v, keys[i], 2) != 2) {
			abort();
		}
	}
	lkd_view_release(&v);
	lkd_framer_free(f);
	free(wire);
}

/* lkd_plist_decode_top's contract (lockdown_frame.h) against the full
 * decoder on the same body; and the view's against it. */
static void top_vs_full(const uint8_t *b, size_t n)
{
	plist_t full = NULL, top = NULL;
	int rf = lkd_plist_decode(b, n, &full), rt = lkd_plist_decode_top(b, n, &top);

	if ((rf == 0) != (rt == 0))
		abort();
	if (rf == 0) {
		plist_dict_iter it = NULL;
		char *key = NULL;
		plist_t v = NULL;

		if (plist_get_node_type(full) != plist_get_node_type(top))
			abort();
		if (plist_get_node_type(full) == PLIST_DICT) {
			if (plist_dict_get_size(full) != plist_dict_get_size(top))
				abort();
			plist_dict_new_iter(full, &it);
			for (;;) {
				plist_t w;

				plist_dict_next_item(full, it, &key, &v);
				if (!key)
					break;
				w = plist_dict_get_item(top, key);
				if (!w || plist_get_node_type(w) != plist_get_node_type(v))
					abort();
				if (plist_get_node_type(v) == PLIST_STRING) {
					const char *a = plist_get_string_ptr(v, NULL);
					const char *c = plist_get_string_ptr(w, NULL);

					if (!a || !c || strcmp(a, c) != 0)
						abort();
				} else if (plist_get_node_type(v) == PLIST_BOOLEAN) {
					uint8_t a = 0, c = 0;

					plist_get_bool_val(v, &a);
					plist_get_bool_val(w, &c);
					if (a != c)
						abort();
				} else if (plist_get_node_type(v) == PLIST_UINT) {
					uint64_t a = 0, c = 0;

					plist_get_uint_val(v, &a);
					plist_get_uint_val(w, &c);
					if (a != c)
						abort();
				}
				free(key);
				key = NULL;
			}
			free(it);
		}
	}
	view_vs_top(b, n, top, rt);
	plist_free(full);
	plist_free(top);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lkd_framer *f;
	size_t chunk, off = 1;
	plist_t m = NULL;

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] + 1;
	f = lkd_framer_new();
	if (!f)
		return 0;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		int r = lkd_framer_feed(f, data + off, n);

		off += n;
		if (r)
			break;
		for (;;) {
			uint8_t *raw = NULL;
			size_t raw_len = 0;

			r = lkd_framer_next(f, &m, &raw, &raw_len);
			if (r == LP_EPLIST)
				continue;
			if (r)
				break;
			use_message(m);
			plist_free(m);
			free(raw);
		}
		if (r == LP_ETOOBIG)
			break;
	}
	lkd_framer_free(f);

	/* the body decoders on the raw input, too */
	top_vs_full(data + 1, size - 1);
	return 0;
}

#include "tests/fuzz/fuzz_main.h"
