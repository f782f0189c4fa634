/* test_pairing.c - pairing credentials and the TLS engine running on them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/x509v3.h>

#include "proto/pair_cert.h"
#include "proto/tls.h"
#include "src/base/lp_error.h"

struct fixture {
	EVP_PKEY *dev_key;
	uint8_t *dev_pub;
	size_t dev_pub_len;
	struct pair_creds creds;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct lp_errinfo e = {0};

	if (!fx || pair_device_key_generate(&fx->dev_key, &fx->dev_pub, &fx->dev_pub_len))
		return -1;
	if (pair_creds_generate(fx->dev_pub, fx->dev_pub_len, &fx->creds, &e))
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	pair_creds_clear(&fx->creds);
	EVP_PKEY_free(fx->dev_key);
	free(fx->dev_pub);
	free(fx);
	return 0;
}

static X509 *blob_cert(const struct pair_blob *b)
{
	X509 *x = pair_load_cert(b->data, b->len);

	assert_non_null(x);
	return x;
}

/* Asserts BasicConstraints (critical) has the expected CA flag. */
static void check_bc(X509 *x, int ca)
{
	int crit = -1;
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);

	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_int_equal(bc->ca ? 1 : 0, ca);
	BASIC_CONSTRAINTS_free(bc);
}

static void check_ku(X509 *x)
{
	int idx = X509_get_ext_by_NID(x, NID_key_usage, -1);

	assert_true(idx >= 0);
	assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(x, idx)), 1);
	assert_int_equal(X509_get_key_usage(x) & (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT),
			 KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	assert_int_equal(X509_get_key_usage(x) & KU_KEY_CERT_SIGN, 0);
}

static void check_common(X509 *x)
{
	int days = 0, secs = 0;

	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	assert_int_equal(ASN1_INTEGER_get(X509_get0_serialNumber(x)), 1);
	assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(x)), 0);
	assert_int_equal(X509_NAME_entry_count(X509_get_issuer_name(x)), 0);
	assert_int_equal(X509_get_signature_nid(x), NID_sha256WithRSAEncryption);
	assert_int_equal(
		ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)), 1);
	assert_int_equal(days, PAIR_CERT_DAYS);
	assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(x)), 2048);
}

static void test_device_pubkey_pem(void **state)
{
	struct fixture *fx = *state;
	EVP_PKEY *pk;

	assert_true(fx->dev_pub_len > 30);
	assert_memory_equal(fx->dev_pub, "-----BEGIN RSA PUBLIC KEY-----", 30);
	pk = pair_load_pubkey(fx->dev_pub, fx->dev_pub_len);
	assert_non_null(pk);
	assert_int_equal(EVP_PKEY_eq(pk, fx->dev_key), 1);
	EVP_PKEY_free(pk);
}

static void test_cert_profile(void **state)
{
	struct fixture *fx = *state;
	X509 *root = blob_cert(&fx->creds.root_cert);
	X509 *host = blob_cert(&fx->creds.host_cert);
	X509 *dev = blob_cert(&fx->creds.device_cert);

	check_common(root);
	check_common(host);
	check_common(dev);
	check_bc(root, 1);
	check_bc(host, 0);
	check_bc(dev, 0);
	check_ku(host);
	check_ku(dev);
	assert_non_null(X509_get0_subject_key_id(dev));
	/* the device certificate certifies the device's own key */
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(dev), fx->dev_key), 1);
	X509_free(root);
	X509_free(host);
	X509_free(dev);
}

static void test_private_keys(void **state)
{
	struct fixture *fx = *state;
	static const char p8[] = "-----BEGIN PRIVATE KEY-----";
	X509 *root = blob_cert(&fx->creds.root_cert);
	X509 *host = blob_cert(&fx->creds.host_cert);
	EVP_PKEY *rk, *hk;

	assert_memory_equal(fx->creds.root_key.data, p8, sizeof(p8) - 1);
	assert_memory_equal(fx->creds.host_key.data, p8, sizeof(p8) - 1);
	rk = pair_load_key(fx->creds.root_key.data, fx->creds.root_key.len);
	hk = pair_load_key(fx->creds.host_key.data, fx->creds.host_key.len);
	assert_non_null(rk);
	assert_non_null(hk);
	assert_int_equal(X509_check_private_key(root, rk), 1);
	assert_int_equal(X509_check_private_key(host, hk), 1);
	assert_int_equal(X509_check_private_key(host, rk), 0);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(hk);
	X509_free(root);
	X509_free(host);
}

static void test_signed_by_root(void **state)
{
	struct fixture *fx = *state;
	struct pair_creds other = {0};
	X509 *root = blob_cert(&fx->creds.root_cert);
	X509 *host = blob_cert(&fx->creds.host_cert);
	X509 *dev = blob_cert(&fx->creds.device_cert);
	X509 *froot, *fhost;

	assert_int_equal(pair_cert_signed_by(host, root), 1);
	assert_int_equal(pair_cert_signed_by(dev, root), 1);
	assert_int_equal(pair_cert_signed_by(root, root), 1);
	assert_int_equal(pair_cert_signed_by(root, host), 0);

	assert_int_equal(pair_creds_generate(fx->dev_pub, fx->dev_pub_len, &other, NULL), 0);
	froot = blob_cert(&other.root_cert);
	fhost = blob_cert(&other.host_cert);
	assert_int_equal(pair_cert_signed_by(fhost, root), 0);
	assert_int_equal(pair_cert_signed_by(host, froot), 0);
	assert_int_equal(pair_cert_signed_by(fhost, froot), 1);
	X509_free(froot);
	X509_free(fhost);
	pair_creds_clear(&other);
	assert_null(other.root_key.data);
	X509_free(root);
	X509_free(host);
	X509_free(dev);
}

static void test_bad_inputs(void **state)
{
	struct pair_creds c = {0};
	struct lp_errinfo e = {0};
	static const char junk[] =
		"-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n";

	assert_int_equal(pair_creds_generate((const uint8_t *)junk, sizeof(junk) - 1, &c, &e),
			 LP_EBADMSG);
	assert_non_null(strstr(e.msg, "DevicePublicKey"));
	assert_null(c.root_cert.data);
	assert_int_equal(pair_creds_generate((const uint8_t *)junk, PAIR_MAX_PEM + 1, &c, &e),
			 LP_ETOOBIG);
	assert_null(pair_load_cert((const uint8_t *)junk, sizeof(junk) - 1));
	assert_null(pair_load_key((const uint8_t *)junk, sizeof(junk) - 1));
	assert_null(pair_load_key(NULL, 0));
}

/* Keys generated ahead of Pair (trust --pair starts them before the device
 * walk): the credentials made from them chain like synchronous ones, the
 * root and host keys differ, and the keys serve one pairing only. */
static void test_keygen_ahead(void **state)
{
	struct fixture *fx = *state;
	struct pair_keygen *kg = NULL, *unused = NULL;
	struct pair_creds c = {0}, again = {0};
	struct lp_errinfo e = {0};
	X509 *root, *host, *dev;

	assert_int_equal(pair_keygen_start(&kg, &e), 0);
	assert_int_equal(pair_creds_generate_with(kg, fx->dev_pub, fx->dev_pub_len, &c, &e), 0);
	root = blob_cert(&c.root_cert);
	host = blob_cert(&c.host_cert);
	dev = blob_cert(&c.device_cert);
	assert_int_equal(pair_cert_signed_by(host, root), 1);
	assert_int_equal(pair_cert_signed_by(dev, root), 1);
	assert_true(c.root_key.len > 0 && c.host_key.len > 0);
	assert_false(c.root_key.len == c.host_key.len &&
		     memcmp(c.root_key.data, c.host_key.data, c.root_key.len) == 0);
	assert_int_equal(pair_creds_generate_with(kg, fx->dev_pub, fx->dev_pub_len, &again, &e),
			 LP_EINVAL);
	assert_null(again.root_key.data);
	assert_int_equal(pair_creds_generate_with(NULL, fx->dev_pub, fx->dev_pub_len, &again, &e),
			 LP_EINVAL);
	X509_free(root);
	X509_free(host);
	X509_free(dev);
	pair_creds_clear(&c);
	pair_keygen_free(kg);
	/* started and never used: freed without a leak (ASan/valgrind) */
	assert_int_equal(pair_keygen_start(&unused, &e), 0);
	pair_keygen_free(unused);
	pair_keygen_free(NULL);
}

static void test_uuid(void **state)
{
	char a[37], b[37];

	assert_int_equal(pair_new_uuid(a), 0);
	assert_int_equal(pair_new_uuid(b), 0);
	assert_int_equal(strlen(a), 36);
	assert_string_not_equal(a, b);
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(a[i], '-');
		else
			assert_non_null(strchr("0123456789ABCDEF", a[i]));
	}
}

/* --- TLS between host (client) and device (server) in memory ------------- */

struct keylog {
	int lines;
	int client_random;
};

static void on_keylog(void *ud, const char *line)
{
	struct keylog *k = ud;

	k->lines++;
	if (strncmp(line, "CLIENT_RANDOM ", 14) == 0 && strlen(line) == 14 + 64 + 1 + 96)
		k->client_random++;
}

static void pump(struct lp_tls *from, struct lp_tls *to)
{
	uint8_t *b = NULL;
	size_t n = 0;

	assert_int_equal(lp_tls_take(from, &b, &n), 0);
	if (n)
		assert_int_equal(lp_tls_feed(to, b, n), 0);
	free(b);
}

static void handshake(struct lp_tls *cli, struct lp_tls *srv)
{
	struct lp_errinfo e = {0};
	int rc = LP_EAGAIN, rs = LP_EAGAIN;

	for (int i = 0; i < 20 && (rc || rs); i++) {
		rc = lp_tls_handshake(cli, &e);
		assert_true(rc == 0 || rc == LP_EAGAIN);
		pump(cli, srv);
		rs = lp_tls_handshake(srv, &e);
		assert_true(rs == 0 || rs == LP_EAGAIN);
		pump(srv, cli);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(rs, 0);
}

static void send_recv(struct lp_tls *from, struct lp_tls *to, const char *msg)
{
	uint8_t buf[256];
	size_t got = 0;

	assert_int_equal(lp_tls_write(from, (const uint8_t *)msg, strlen(msg), NULL), 0);
	pump(from, to);
	assert_int_equal(lp_tls_read(to, buf, sizeof(buf), &got, NULL), 0);
	assert_int_equal(got, strlen(msg));
	assert_memory_equal(buf, msg, got);
	assert_int_equal(lp_tls_read(to, buf, sizeof(buf), &got, NULL), LP_EAGAIN);
}

static void run_tls(struct fixture *fx, const struct pair_blob *ccert, const struct pair_blob *ckey)
{
	X509 *hc = blob_cert(ccert), *dc = blob_cert(&fx->creds.device_cert);
	X509 *root = blob_cert(&fx->creds.root_cert);
	EVP_PKEY *hk = pair_load_key(ckey->data, ckey->len);
	struct lp_errinfo e = {0};
	struct lp_tls *cli, *srv;
	struct keylog kl = {0};
	uint8_t buf[16];
	size_t got;

	cli = lp_tls_new_client(hc, hk, &e);
	srv = lp_tls_new_server(dc, fx->dev_key, &e);
	assert_non_null(cli);
	assert_non_null(srv);
	lp_tls_set_keylog(cli, on_keylog, &kl);
	assert_false(lp_tls_established(cli));
	assert_string_equal(lp_tls_version(cli), "");
	handshake(cli, srv);
	assert_true(lp_tls_established(cli));
	assert_true(lp_tls_established(srv));
	assert_string_equal(lp_tls_version(cli), "TLSv1.2");
	assert_string_not_equal(lp_tls_cipher(cli), "");
	assert_true(kl.client_random >= 1);
	/* the device sees the host's certificate and checks it against root */
	assert_non_null(lp_tls_peer_cert(srv));
	assert_int_equal(X509_cmp(lp_tls_peer_cert(srv), hc), 0);
	assert_int_equal(pair_cert_signed_by(lp_tls_peer_cert(srv), root), 1);
	assert_int_equal(X509_cmp(lp_tls_peer_cert(cli), dc), 0);

	send_recv(cli, srv, "<plist>host to device</plist>");
	send_recv(srv, cli, "<plist>device to host</plist>");

	assert_int_equal(lp_tls_shutdown(cli), 0);
	pump(cli, srv);
	assert_int_equal(lp_tls_read(srv, buf, sizeof(buf), &got, &e), LP_ECLOSED);
	lp_tls_free(cli);
	lp_tls_free(srv);
	EVP_PKEY_free(hk);
	X509_free(hc);
	X509_free(dc);
	X509_free(root);
}

static void test_tls_host_cert(void **state)
{
	struct fixture *fx = *state;

	run_tls(fx, &fx->creds.host_cert, &fx->creds.host_key);
}

/* libimobiledevice's OpenSSL path presents the root certificate (doc/protocol.md 0). */
static void test_tls_root_cert(void **state)
{
	struct fixture *fx = *state;

	run_tls(fx, &fx->creds.root_cert, &fx->creds.root_key);
}

static void test_tls_no_keylog_unless_asked(void **state)
{
	struct fixture *fx = *state;
	X509 *dc = blob_cert(&fx->creds.device_cert);
	struct lp_tls *cli = lp_tls_new_client(NULL, NULL, NULL);
	struct lp_tls *srv = lp_tls_new_server(dc, fx->dev_key, NULL);
	struct keylog kl = {0};

	assert_non_null(cli);
	assert_non_null(srv);
	lp_tls_set_keylog(srv, on_keylog, &kl);
	lp_tls_set_keylog(srv, NULL, NULL);
	handshake(cli, srv);
	assert_int_equal(kl.lines, 0);
	/* no client certificate: the server accepts, the caller must notice */
	assert_null(lp_tls_peer_cert(srv));
	lp_tls_free(cli);
	lp_tls_free(srv);
	X509_free(dc);
}

static void test_tls_garbage_fails(void **state)
{
	struct fixture *fx = *state;
	X509 *dc = blob_cert(&fx->creds.device_cert);
	struct lp_tls *srv = lp_tls_new_server(dc, fx->dev_key, NULL);
	struct lp_errinfo e = {0};
	static const uint8_t junk[] = "GET / HTTP/1.0\r\n\r\n";

	assert_int_equal(lp_tls_feed(srv, junk, sizeof(junk) - 1), 0);
	assert_int_equal(lp_tls_handshake(srv, &e), LP_ETLS);
	assert_int_equal(e.code, LP_ETLS);
	assert_non_null(strstr(e.msg, "TLS handshake"));
	assert_true(strlen(e.msg) > strlen("TLS handshake (SSL error 1)")); /* queue drained in */
	assert_null(lp_tls_new_server(NULL, NULL, &e));
	lp_tls_free(srv);
	X509_free(dc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_device_pubkey_pem),
		cmocka_unit_test(test_cert_profile),
		cmocka_unit_test(test_private_keys),
		cmocka_unit_test(test_signed_by_root),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_keygen_ahead),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_tls_host_cert),
		cmocka_unit_test(test_tls_root_cert),
		cmocka_unit_test(test_tls_no_keylog_unless_asked),
		cmocka_unit_test(test_tls_garbage_fails),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
