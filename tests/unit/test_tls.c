/* test_tls.c - the TLS engine as a client against a hostile server written
 * here with raw OpenSSL (issue 10): weak suites are never offered, the best
 * suite wins when the server lets the client choose, and a server that asks
 * for renegotiation is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proto/pair_cert.h"
#include "proto/pair_record.h"
#include "proto/tls.h"
#include "src/base/lp_error.h"

static X509 *g_dev_cert, *g_host_cert;
static EVP_PKEY *g_dev_key, *g_host_key;

static int setup(void **state)
{
	uint8_t *pub = NULL;
	size_t len = 0;
	struct pair_creds c = {0};

	if (pair_device_key_generate(&g_dev_key, &pub, &len) ||
	    pair_creds_generate(pub, len, &c, NULL))
		return -1;
	free(pub);
	g_dev_cert = pair_load_cert(c.device_cert.data, c.device_cert.len);
	g_host_cert = pair_load_cert(c.host_cert.data, c.host_cert.len);
	g_host_key = pair_load_key(c.host_key.data, c.host_key.len);
	pair_creds_clear(&c);
	return g_dev_cert && g_host_cert && g_host_key ? 0 : -1;
}

static int teardown(void **state)
{
	X509_free(g_dev_cert);
	X509_free(g_host_cert);
	EVP_PKEY_free(g_dev_key);
	EVP_PKEY_free(g_host_key);
	return 0;
}

struct srv {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *rbio, *wbio;
};

/* false if this OpenSSL build has none of `ciphers` */
static bool srv_init(struct srv *s, const char *ciphers, bool server_pref)
{
	s->ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(s->ctx);
	SSL_CTX_set_security_level(s->ctx, 0);
	SSL_CTX_set_min_proto_version(s->ctx, TLS1_VERSION);
	SSL_CTX_set_max_proto_version(s->ctx, TLS1_2_VERSION);
	if (SSL_CTX_set_cipher_list(s->ctx, ciphers) != 1) {
		ERR_clear_error();
		SSL_CTX_free(s->ctx);
		return false;
	}
	if (server_pref)
		SSL_CTX_set_options(s->ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	assert_int_equal(SSL_CTX_use_certificate(s->ctx, g_dev_cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, g_dev_key), 1);
	s->ssl = SSL_new(s->ctx);
	s->rbio = BIO_new(BIO_s_mem());
	s->wbio = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(s->rbio, -1);
	SSL_set_bio(s->ssl, s->rbio, s->wbio);
	SSL_set_accept_state(s->ssl);
	return true;
}

static void srv_free(struct srv *s)
{
	SSL_free(s->ssl);
	SSL_CTX_free(s->ctx);
}

/* Move bytes both ways; returns the first byte (record type) of the last
 * chunk the client sent, 0 if none. */
static uint8_t shuttle(struct lp_tls *c, struct srv *s)
{
	uint8_t *out, buf[16384], last = 0;
	size_t len;
	int n;

	for (int round = 0; round < 20; round++) {
		bool moved = false;

		lp_tls_handshake(c, NULL);
		assert_int_equal(lp_tls_take(c, &out, &len), 0);
		if (len) {
			last = out[0];
			BIO_write(s->rbio, out, (int)len);
			moved = true;
		}
		free(out);
		SSL_do_handshake(s->ssl);
		while ((n = BIO_read(s->wbio, buf, sizeof(buf))) > 0) {
			assert_int_equal(lp_tls_feed(c, buf, (size_t)n), 0);
			moved = true;
		}
		lp_tls_handshake(c, NULL);
		if (!moved)
			break;
	}
	ERR_clear_error();
	return last;
}

static struct lp_tls *client(void)
{
	struct lp_tls *c = lp_tls_new_client(g_host_cert, g_host_key, NULL);

	assert_non_null(c);
	return c;
}

/* A server that accepts only weak or exotic suites finds none in common. */
static void test_no_weak_suites(void **state)
{
	static const char *const weak[] = {
		"DES-CBC3-SHA:ECDHE-RSA-DES-CBC3-SHA:@SECLEVEL=0",
		"CAMELLIA128-SHA:CAMELLIA256-SHA:@SECLEVEL=0",
		"ARIA128-GCM-SHA256:ECDHE-ARIA128-GCM-SHA256:@SECLEVEL=0",
		"SEED-SHA:IDEA-CBC-SHA:@SECLEVEL=0",
		"AES128-SHA256:AES256-SHA256:ECDHE-RSA-AES128-SHA256:@SECLEVEL=0",
		"DHE-RSA-AES128-SHA:@SECLEVEL=0",
		NULL,
	};

	for (size_t i = 0; weak[i]; i++) {
		struct srv s;
		struct lp_tls *c;

		if (!srv_init(&s, weak[i], true)) {
			print_message("not in this OpenSSL: %s\n", weak[i]);
			continue;
		}
		c = client();
		shuttle(c, &s);
		if (lp_tls_established(c))
			fail_msg("handshake succeeded with %s (server offered %s)",
				 lp_tls_cipher(c), weak[i]);
		lp_tls_free(c);
		srv_free(&s);
	}
}

/* A server that lets the client choose gets ECDHE with AEAD. */
static void test_best_suite_first(void **state)
{
	struct srv s;
	struct lp_tls *c = client();

	assert_true(srv_init(&s, "ALL:COMPLEMENTOFALL:@SECLEVEL=0", false));
	shuttle(c, &s);
	assert_true(lp_tls_established(c));
	assert_string_equal(lp_tls_version(c), "TLSv1.2");
	assert_string_equal(lp_tls_cipher(c), "ECDHE-RSA-AES256-GCM-SHA384");
	lp_tls_free(c);
	srv_free(&s);
	/* an old device that has only RSA key exchange with AES-CBC still works */
	c = client();
	assert_true(srv_init(&s, "AES128-SHA:@SECLEVEL=0", true));
	SSL_set_max_proto_version(s.ssl, TLS1_VERSION);
	shuttle(c, &s);
	assert_true(lp_tls_established(c));
	assert_string_equal(lp_tls_version(c), "TLSv1");
	lp_tls_free(c);
	srv_free(&s);
}

/* The server asks for a second handshake: the client answers with an
 * alert (no_renegotiation), never a new ClientHello. */
static void test_no_renegotiation(void **state)
{
	struct srv s;
	struct lp_tls *c = client();
	uint8_t buf[64];
	size_t got = 0;
	uint8_t *out;
	size_t len;

	assert_true(srv_init(&s, "ALL:@SECLEVEL=0", false));
	SSL_set_options(s.ssl, SSL_OP_LEGACY_SERVER_CONNECT);
	shuttle(c, &s);
	assert_true(lp_tls_established(c));
	assert_int_equal(SSL_renegotiate(s.ssl), 1);
	SSL_do_handshake(s.ssl); /* sends HelloRequest */
	{
		int n = BIO_read(s.wbio, buf, sizeof(buf));

		assert_true(n > 0);
		assert_int_equal(buf[0], 0x16); /* handshake record */
		assert_int_equal(lp_tls_feed(c, buf, (size_t)n), 0);
	}
	lp_tls_read(c, buf, sizeof(buf), &got, NULL);
	assert_int_equal(lp_tls_take(c, &out, &len), 0);
	assert_true(len > 0);
	assert_int_equal(out[0], 0x15); /* alert, not a handshake record */
	free(out);
	ERR_clear_error();
	lp_tls_free(c);
	srv_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_weak_suites),
		cmocka_unit_test(test_best_suite_first),
		cmocka_unit_test(test_no_renegotiation),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
