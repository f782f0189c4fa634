/* test_wipe.c - private keys and the EscrowBag never stay in freed memory
 * (issue 10): free() and realloc() are interposed here and every block
 * released while a code path under test runs is searched for the secret,
 * raw and base64-encoded. Paths: the lockdown framer (a Pair reply with the
 * EscrowBag, fed in pieces so the buffer grows), lockdown encoding
 * (StartService with the EscrowBag) and the usbmuxd client's
 * SavePairRecord request and ReadPairRecord reply. Skipped under ASan,
 * whose allocator cannot be interposed this way. */
#include <dlfcn.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>

#include "proto/lockdown_frame.h"
#include "proto/pair_record.h"
#include "proto/usbmuxd_codec.h"
#include "src/base/lp_error.h"

#if defined(__SANITIZE_ADDRESS__)
#define NO_INTERPOSE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_INTERPOSE 1
#endif
#endif

/* 48 bytes: base64 without padding, so the encoded text is one string */
static const char secret[] = "ESCROW-BAG-SECRET-0123456789abcdefghijklmnopqrs!";
static char secret_b64[80];
static int scanning, leaks;
static char where[128];

#ifndef NO_INTERPOSE
static void (*real_free)(void *);
static void *(*real_realloc)(void *, size_t);

static void check_block(const void *p)
{
	size_t n = malloc_usable_size((void *)p);

	if (memmem(p, n, secret, 47) || memmem(p, n, secret_b64, strlen(secret_b64))) {
		leaks++;
		fprintf(stderr, "# secret in a freed block of %zu bytes (%s)\n", n, where);
	}
}

void free(void *p)
{
	if (!real_free)
		real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	if (p && scanning) {
		scanning = 0;
		check_block(p);
		scanning = 1;
	}
	real_free(p);
}

void *realloc(void *p, size_t n)
{
	void *q;
	int found = 0;

	if (!real_realloc)
		real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	if (p && scanning) {
		size_t u = malloc_usable_size(p);

		found = memmem(p, u, secret, 47) || memmem(p, u, secret_b64, strlen(secret_b64));
	}
	q = real_realloc(p, n);
	if (found && q && q != p) {
		leaks++;
		fprintf(stderr, "# secret left behind by realloc (%s)\n", where);
	}
	return q;
}
#endif

static int setup(void **state)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t *s = (const uint8_t *)secret;
	size_t o = 0;

	for (size_t i = 0; i + 3 <= 48; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		secret_b64[o++] = tbl[v >> 18];
		secret_b64[o++] = tbl[(v >> 12) & 63];
		secret_b64[o++] = tbl[(v >> 6) & 63];
		secret_b64[o++] = tbl[v & 63];
	}
	secret_b64[o] = '\0';
	return 0;
}

static void begin(const char *what)
{
	snprintf(where, sizeof(where), "%s", what);
	leaks = 0;
	scanning = 1;
}

static void end(void)
{
	scanning = 0;
	assert_int_equal(leaks, 0);
}

static plist_t escrow_dict(const char *request)
{
	plist_t d = plist_new_dict();

	plist_dict_set_item(d, "Request", plist_new_string(request));
	plist_dict_set_item(d, "EscrowBag", plist_new_data(secret, 48));
	return d;
}

static void test_framer(void **state)
{
	plist_t d, out = NULL;
	uint8_t *wire = NULL;
	size_t len = 0;
	struct lkd_framer *f;

#ifdef NO_INTERPOSE
	skip(); /* before anything is allocated: skip() does not return */
#endif
	d = escrow_dict("Pair");
	assert_int_equal(lkd_frame_encode(d, &wire, &len), 0);
	plist_free(d);
	f = lkd_framer_new();
	begin("lockdown framer");
	/* small pieces: the buffer grows several times while the bag is in it */
	for (size_t off = 0; off < len; off += 37)
		assert_int_equal(lkd_framer_feed(f, wire + off, len - off < 37 ? len - off : 37),
				 0);
	assert_int_equal(lkd_framer_next(f, &out, NULL, NULL), 0);
	pair_plist_wipe_secrets(out);
	plist_free(out);
	lkd_framer_free(f);
	end();
	OPENSSL_cleanse(wire, len);
	free(wire);
}

static void test_encode(void **state)
{
	plist_t d;
	uint8_t *wire = NULL;
	size_t len = 0;

#ifdef NO_INTERPOSE
	skip();
#endif
	d = escrow_dict("StartService");
	begin("lockdown encode");
	assert_int_equal(lkd_frame_encode(d, &wire, &len), 0);
	end();
	pair_plist_wipe_secrets(d);
	plist_free(d);
	OPENSSL_cleanse(wire, len);
	free(wire);
}

static void test_usbmuxd_save_and_read(void **state)
{
	plist_t extra, rec, reply = NULL;
	char *bin = NULL;
	uint32_t blen = 0;
	uint8_t *msg = NULL;
	size_t len = 0;
	struct umc_header h;

#ifdef NO_INTERPOSE
	skip();
#endif
	extra = plist_new_dict();
	rec = escrow_dict("x");
	plist_to_bin(rec, &bin, &blen);
	pair_plist_wipe_secrets(rec);
	plist_free(rec);
	plist_dict_set_item(extra, "PairRecordData", plist_new_data(bin, blen));
	OPENSSL_cleanse(bin, blen);
	plist_to_bin_free(bin);
	begin("usbmuxd SavePairRecord request");
	assert_int_equal(umc_encode_request("SavePairRecord", extra, 7, &msg, &len, NULL), 0);
	end();
	/* the reply to ReadPairRecord has the same shape: decode the body */
	assert_int_equal(umc_decode_header(msg, len, &h, NULL), 0);
	begin("usbmuxd ReadPairRecord reply");
	assert_int_equal(umc_decode_body(&h, msg + 16, len - 16, &reply, NULL), 0);
	end();
	{
		plist_t n = plist_dict_get_item(reply, "PairRecordData");
		uint64_t dl = 0;
		const char *p = plist_get_data_ptr(n, &dl);

		OPENSSL_cleanse((void *)p, dl);
	}
	plist_free(reply);
	OPENSSL_cleanse(msg, len);
	free(msg);
	{
		plist_t n = plist_dict_get_item(extra, "PairRecordData");
		uint64_t dl = 0;
		const char *p = plist_get_data_ptr(n, &dl);

		OPENSSL_cleanse((void *)p, dl);
	}
	plist_free(extra);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framer),
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_usbmuxd_save_and_read),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
