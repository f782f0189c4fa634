/* test_secrets.c - the one list of secret plist keys (src/base/lp_secret.h)
 * and its three users agree: for every key in the list, a capture's payload
 * is redacted (cap_redact), a decoded plist is wiped
 * (pair_plist_wipe_secrets) and a logged copy is redacted
 * (pair_plist_redact_secrets) - and for keys that are not secrets, none of
 * the three touches the value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <plist/plist.h>

#include "proto/pair_record.h"
#include "src/base/lp_secret.h"
#include "src/capture/cap_tap.h"

static const char secret_bytes[] = "0123456789abcdef-secret-material";
static const char public_bytes[] = "-----BEGIN CERTIFICATE-----public";
/* keys that look like secrets but are not on the list: nobody may touch them */
static const char *const not_secret[] = {"HostCertificate", "RootCertificate", "EscrowBagX",
					 "HostID", NULL};

static plist_t data_node(const char *s)
{
	return plist_new_data(s, strlen(s));
}

/* {K: secret, <each not_secret>: public, Nested: {K: secret}} */
static plist_t build(const char *key)
{
	plist_t d = plist_new_dict(), n = plist_new_dict();

	plist_dict_set_item(d, key, data_node(secret_bytes));
	for (size_t i = 0; not_secret[i]; i++)
		plist_dict_set_item(d, not_secret[i], data_node(public_bytes));
	plist_dict_set_item(n, key, data_node(secret_bytes));
	plist_dict_set_item(d, "PairRecord", n);
	return d;
}

static bool data_is(plist_t d, const char *key, const void *want, size_t len)
{
	plist_t v = plist_dict_get_item(d, key);
	uint64_t n = 0;
	const char *p;

	if (!v || plist_get_node_type(v) != PLIST_DATA)
		return false;
	p = plist_get_data_ptr(v, &n);
	return n == len && memcmp(p, want, len) == 0;
}

static void assert_public_untouched(plist_t d)
{
	for (size_t i = 0; not_secret[i]; i++)
		assert_true(data_is(d, not_secret[i], public_bytes, strlen(public_bytes)));
}

static void test_list_shape(void **state)
{
	(void)state;
	assert_int_equal(lp_secret_key_count(), 4);
	for (size_t i = 0; i < lp_secret_key_count(); i++)
		assert_true(lp_secret_key_match(lp_secret_keys[i], strlen(lp_secret_keys[i])));
	assert_null(lp_secret_keys[lp_secret_key_count()]);
	assert_true(lp_secret_key_match("EscrowBag", 9));
	assert_false(lp_secret_key_match("EscrowBa", 8));
	assert_false(lp_secret_key_match("EscrowBagX", 10));
	assert_false(lp_secret_key_match("HostCertificate", 15));
}

static void test_wipe_every_key(void **state)
{
	char zero[sizeof(secret_bytes) - 1] = {0};

	(void)state;
	for (size_t k = 0; lp_secret_keys[k]; k++) {
		plist_t d = build(lp_secret_keys[k]);

		pair_plist_wipe_secrets(d);
		assert_true(data_is(d, lp_secret_keys[k], zero, sizeof(zero)));
		assert_true(data_is(plist_dict_get_item(d, "PairRecord"), lp_secret_keys[k], zero,
				    sizeof(zero)));
		assert_public_untouched(d);
		plist_free(d);
	}
}

static void test_log_redact_every_key(void **state)
{
	char want[48];

	(void)state;
	snprintf(want, sizeof(want), "<redacted %zu bytes>", strlen(secret_bytes));
	for (size_t k = 0; lp_secret_keys[k]; k++) {
		plist_t d = build(lp_secret_keys[k]);
		plist_t v, nv;

		pair_plist_redact_secrets(d);
		v = plist_dict_get_item(d, lp_secret_keys[k]);
		nv = plist_dict_get_item(plist_dict_get_item(d, "PairRecord"), lp_secret_keys[k]);
		assert_int_equal(plist_get_node_type(v), PLIST_STRING);
		assert_string_equal(plist_get_string_ptr(v, NULL), want);
		assert_int_equal(plist_get_node_type(nv), PLIST_STRING);
		assert_string_equal(plist_get_string_ptr(nv, NULL), want);
		assert_public_untouched(d);
		plist_free(d);
	}
}

/* The capture redactor sees the XML that libplist writes (what lockdown puts
 * on the wire): parse its output back and compare values. */
static void test_capture_redact_every_key(void **state)
{
	(void)state;
	for (size_t k = 0; lp_secret_keys[k]; k++) {
		plist_t d = build(lp_secret_keys[k]), back = NULL;
		char *xml = NULL;
		uint32_t len = 0;
		size_t n;

		plist_to_xml(d, &xml, &len);
		assert_non_null(xml);
		n = cap_redact((uint8_t *)xml, len);
		assert_true(n > 0);
		assert_non_null(strstr(xml, "REDACTED"));
		plist_from_xml(xml, len, &back);
		assert_non_null(back);
		/* same shape, same length, the secret bytes gone at both depths */
		assert_false(data_is(back, lp_secret_keys[k], secret_bytes, strlen(secret_bytes)));
		assert_false(data_is(plist_dict_get_item(back, "PairRecord"), lp_secret_keys[k],
				     secret_bytes, strlen(secret_bytes)));
		assert_int_equal(plist_get_node_type(plist_dict_get_item(back, lp_secret_keys[k])),
				 PLIST_DATA);
		assert_public_untouched(back);
		plist_free(back);
		free(xml);
		plist_free(d);
	}
}

/* A plist with no secret key passes all three unchanged. */
static void test_nothing_else_touched(void **state)
{
	plist_t d = build("HostID"), copy;
	char *xml = NULL, *xml2 = NULL;
	uint32_t len = 0, len2 = 0;

	(void)state;
	copy = plist_copy(d);
	pair_plist_wipe_secrets(d);
	pair_plist_redact_secrets(d);
	plist_to_xml(d, &xml, &len);
	plist_to_xml(copy, &xml2, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(xml, xml2, len);
	assert_int_equal(cap_redact((uint8_t *)xml, len), 0);
	assert_memory_equal(xml, xml2, len);
	free(xml);
	free(xml2);
	plist_free(copy);
	plist_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_shape),
		cmocka_unit_test(test_wipe_every_key),
		cmocka_unit_test(test_log_redact_every_key),
		cmocka_unit_test(test_capture_redact_every_key),
		cmocka_unit_test(test_nothing_else_touched),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
