/* tls.c - TLS engine over OpenSSL 3 memory BIOs, client and server roles.
 *
 * Reference: doc/protocol.md 4.9 (host = TLS client presenting its pairing
 * certificate, device = TLS server asking for one; nobody verifies the
 * server; TLS <= 1.2 framing on current devices; legacy-server-connect and
 * ignore-unexpected-EOF as libimobiledevice sets them on OpenSSL 3) and
 * section 0 (recorded ServerHello TLS 1.2, ECDHE-RSA-AES256-GCM-SHA384).
 *
 * No I/O here: the read BIO holds cipher bytes fed from the peer, the write
 * BIO collects cipher bytes for lp_tls_take(). Each engine has its own
 * SSL_CTX so a key-log callback set on one never leaks to another.
 */
#include "proto/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

/* Cipher suites, best first (pairing keys are RSA, so only RSA
 * authentication is listed):
 *  - ECDHE-RSA with AEAD: what current iOS picks (section 0 records
 *    ECDHE-RSA-AES256-GCM-SHA384 under TLS 1.2);
 *  - ECDHE-RSA with AES-CBC-SHA: TLS 1.0 has no AEAD, and lockdownd before
 *    iOS 10 is capped at TLS 1.0 (notes 4.9);
 *  - RSA key exchange with AES-GCM / AES-CBC-SHA: the oldest lockdownd and
 *    GnuTLS-era peers offer only RSA key exchange with AES-CBC (notes 4.9).
 * Nothing else: no RC4, 3DES, DES, NULL, anonymous, export, CAMELLIA, ARIA,
 * SEED, IDEA, PSK or SRP suites. */
#define LP_TLS_CIPHERS                                                                         \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:" \
	"ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA:"                                           \
	"AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA:AES128-SHA:@SECLEVEL=0"

struct lp_tls {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *rbio; /* owned by ssl */
	BIO *wbio; /* owned by ssl */
	bool server;
	lp_tls_keylog_fn keylog;
	void *keylog_ud;
};

int lp_openssl_err(struct lp_errinfo *e, int code, const char *what)
{
	char line[256];
	size_t off = 0;
	unsigned long err;
	int count = 0, n;

	if (code == 0)
		code = LP_ETLS;
	if (e) {
		n = snprintf(e->msg, sizeof(e->msg), "%s", what ? what : "OpenSSL");
		off = n > 0 ? (size_t)n : 0;
		e->code = code;
	}
	/* Always drain, so stale entries never leak into a later report. */
	while ((err = ERR_get_error()) != 0) {
		if (!e || off >= sizeof(e->msg) - 1)
			continue;
		ERR_error_string_n(err, line, sizeof(line));
		n = snprintf(e->msg + off, sizeof(e->msg) - off, "%s%s", count++ ? "; " : ": ",
			     line);
		if (n > 0)
			off += (size_t)n;
	}
	return code;
}

static void keylog_cb(const SSL *ssl, const char *line)
{
	struct lp_tls *t = SSL_get_app_data(ssl);

	if (t && t->keylog)
		t->keylog(t->keylog_ud, line);
}

/* The server asks for a client certificate but the pairing certificates do
 * not chain in OpenSSL's sense (empty DNs): the caller checks it later. */
static int accept_any_cert(int preverify_ok, X509_STORE_CTX *x)
{
	return 1;
}

static struct lp_tls *tls_new(bool server, X509 *cert, EVP_PKEY *key, struct lp_errinfo *e)
{
	struct lp_tls *t;

	ERR_clear_error();
	t = calloc(1, sizeof(*t));
	if (!t) {
		lp_err_set(e, LP_ENOMEM, "TLS: out of memory");
		return NULL;
	}
	t->server = server;
	t->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!t->ctx) {
		lp_openssl_err(e, LP_ETLS, "SSL_CTX_new");
		goto fail;
	}
	/* Pairing keys and old iOS need SHA-1 / TLS 1.0 era parameters:
	 * security level 0 (SHA-1 signatures, 1024-bit keys in old records),
	 * TLS 1.0 as the floor (lockdownd before iOS 10 speaks only TLS 1.0,
	 * notes 4.9). Renegotiation is never needed and only gives a hostile
	 * peer a second handshake to play with: refused. */
	SSL_CTX_set_security_level(t->ctx, 0);
	SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (!SSL_CTX_set_min_proto_version(t->ctx, TLS1_VERSION) ||
	    !SSL_CTX_set_max_proto_version(t->ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_cipher_list(t->ctx, LP_TLS_CIPHERS)) {
		lp_openssl_err(e, LP_ETLS, "TLS configuration");
		goto fail;
	}
	if (server) {
		/* as a real device answers (notes section 0): TLS 1.2 with
		 * ECDHE-RSA-AES256-GCM-SHA384 when the client offers it */
		SSL_CTX_set_options(t->ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
		if (!SSL_CTX_set_cipher_list(
			    t->ctx, "ECDHE-RSA-AES256-GCM-SHA384:ALL:!aNULL:!eNULL:@SECLEVEL=0")) {
			lp_openssl_err(e, LP_ETLS, "TLS configuration");
			goto fail;
		}
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, accept_any_cert);
	} else {
		SSL_CTX_set_options(t->ctx,
				    SSL_OP_LEGACY_SERVER_CONNECT | SSL_OP_IGNORE_UNEXPECTED_EOF);
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
	}
	if (cert && SSL_CTX_use_certificate(t->ctx, cert) != 1) {
		lp_openssl_err(e, LP_ECRYPTO, "TLS certificate");
		goto fail;
	}
	if (key && (SSL_CTX_use_PrivateKey(t->ctx, key) != 1 ||
		    (cert && SSL_CTX_check_private_key(t->ctx) != 1))) {
		lp_openssl_err(e, LP_ECRYPTO, "TLS private key");
		goto fail;
	}
	t->ssl = SSL_new(t->ctx);
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (!t->ssl || !t->rbio || !t->wbio) {
		BIO_free(t->rbio);
		BIO_free(t->wbio);
		t->rbio = t->wbio = NULL;
		lp_openssl_err(e, LP_ENOMEM, "TLS objects");
		goto fail;
	}
	/* An empty read BIO means "wait for more", not end of stream. */
	BIO_set_mem_eof_return(t->rbio, -1);
	BIO_set_mem_eof_return(t->wbio, -1);
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	SSL_set_app_data(t->ssl, t);
	if (server)
		SSL_set_accept_state(t->ssl);
	else
		SSL_set_connect_state(t->ssl);
	return t;
fail:
	lp_tls_free(t);
	return NULL;
}

struct lp_tls *lp_tls_new_client(X509 *cert, EVP_PKEY *key, struct lp_errinfo *e)
{
	return tls_new(false, cert, key, e);
}

struct lp_tls *lp_tls_new_server(X509 *cert, EVP_PKEY *key, struct lp_errinfo *e)
{
	if (!cert || !key) {
		lp_err_set(e, LP_EINVAL, "TLS server needs a certificate and key");
		return NULL;
	}
	return tls_new(true, cert, key, e);
}

void lp_tls_free(struct lp_tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	free(t);
}

void lp_tls_set_keylog(struct lp_tls *t, lp_tls_keylog_fn fn, void *ud)
{
	if (!t)
		return;
	t->keylog = fn;
	t->keylog_ud = ud;
	/* OpenSSL reads the callback from the context when it logs, so this
	 * also works after SSL_new. */
	SSL_CTX_set_keylog_callback(t->ctx, fn ? keylog_cb : NULL);
}

int lp_tls_feed(struct lp_tls *t, const uint8_t *buf, size_t len)
{
	size_t done = 0;

	if (!t || (!buf && len))
		return LP_EINVAL;
	while (done < len) {
		size_t w = 0;

		if (!BIO_write_ex(t->rbio, buf + done, len - done, &w) || w == 0) {
			ERR_clear_error();
			return LP_ENOMEM;
		}
		done += w;
	}
	return 0;
}

int lp_tls_take(struct lp_tls *t, uint8_t **out, size_t *len)
{
	size_t pend, got = 0;
	uint8_t *b;

	if (!t || !out || !len)
		return LP_EINVAL;
	pend = BIO_ctrl_pending(t->wbio);
	if (pend == 0) {
		*out = NULL;
		*len = 0;
		return 0;
	}
	b = malloc(pend);
	if (!b)
		return LP_ENOMEM;
	if (!BIO_read_ex(t->wbio, b, pend, &got)) {
		free(b);
		ERR_clear_error();
		return LP_EIO;
	}
	*out = b;
	*len = got;
	return 0;
}

/* Map SSL_get_error() after a failed call. */
static int ssl_fail(struct lp_tls *t, int ret, const char *what, struct lp_errinfo *e)
{
	int se = SSL_get_error(t->ssl, ret);

	switch (se) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return LP_EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		return lp_err_set(e, LP_ECLOSED, "%s: peer sent close_notify", what);
	default: {
		char w[128];
		long vr = SSL_get_verify_result(t->ssl);

		if (vr != X509_V_OK)
			snprintf(w, sizeof(w), "%s (SSL error %d, verify: %s)", what, se,
				 X509_verify_cert_error_string(vr));
		else
			snprintf(w, sizeof(w), "%s (SSL error %d)", what, se);
		return lp_openssl_err(e, LP_ETLS, w);
	}
	}
}

int lp_tls_handshake(struct lp_tls *t, struct lp_errinfo *e)
{
	int r;

	if (!t)
		return lp_err_set(e, LP_EINVAL, "TLS handshake: no engine");
	if (SSL_is_init_finished(t->ssl))
		return 0;
	ERR_clear_error();
	r = SSL_do_handshake(t->ssl);
	if (r == 1)
		return 0;
	return ssl_fail(t, r, "TLS handshake", e);
}

bool lp_tls_established(const struct lp_tls *t)
{
	return t && SSL_is_init_finished(t->ssl);
}

int lp_tls_write(struct lp_tls *t, const uint8_t *buf, size_t len, struct lp_errinfo *e)
{
	size_t done = 0;

	if (!t || (!buf && len))
		return lp_err_set(e, LP_EINVAL, "TLS write: bad argument");
	ERR_clear_error();
	while (done < len) {
		size_t w = 0;
		int r = SSL_write_ex(t->ssl, buf + done, len - done, &w);

		if (!r)
			return ssl_fail(t, r, "TLS write", e);
		done += w;
	}
	return 0;
}

int lp_tls_read(struct lp_tls *t, uint8_t *buf, size_t cap, size_t *got, struct lp_errinfo *e)
{
	size_t n = 0;
	int r;

	if (!t || !buf || !cap || !got)
		return lp_err_set(e, LP_EINVAL, "TLS read: bad argument");
	ERR_clear_error();
	r = SSL_read_ex(t->ssl, buf, cap, &n);
	if (r && n > 0) {
		*got = n;
		return 0;
	}
	return ssl_fail(t, r, "TLS read", e);
}

int lp_tls_shutdown(struct lp_tls *t)
{
	int r;

	if (!t)
		return LP_EINVAL;
	ERR_clear_error();
	r = SSL_shutdown(t->ssl);
	if (r >= 0)
		return 0;
	/* Only "would block" on a memory BIO: close_notify is already queued. */
	r = SSL_get_error(t->ssl, r);
	ERR_clear_error();
	return (r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE) ? 0 : LP_ETLS;
}

X509 *lp_tls_peer_cert(struct lp_tls *t)
{
	return t ? SSL_get0_peer_certificate(t->ssl) : NULL;
}

const char *lp_tls_version(const struct lp_tls *t)
{
	if (!t || !SSL_is_init_finished(t->ssl))
		return "";
	return SSL_get_version(t->ssl);
}

int lp_tls_server_legacy_only(struct lp_tls *t, struct lp_errinfo *e)
{
	if (!t || !t->server)
		return lp_err_set(e, LP_EINVAL, "lp_tls_server_legacy_only: not a server");
	if (!SSL_set_max_proto_version(t->ssl, TLS1_VERSION) ||
	    !SSL_set_cipher_list(t->ssl, "CAMELLIA256-SHA:CAMELLIA128-SHA:@SECLEVEL=0"))
		return lp_openssl_err(e, LP_ETLS, "legacy TLS configuration");
	return 0;
}

const char *lp_tls_cipher(const struct lp_tls *t)
{
	const SSL_CIPHER *c;

	if (!t || !SSL_is_init_finished(t->ssl))
		return "";
	c = SSL_get_current_cipher(t->ssl);
	return c ? SSL_CIPHER_get_name(c) : "";
}
