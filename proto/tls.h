/* tls.h - TLS engine over memory BIOs (OpenSSL 3), both roles, sans-I/O.
 *
 * Lockdown switches its mux stream to TLS after StartSession; the host is the
 * TLS client presenting its certificate, the device the TLS server that asks
 * for it (doc/protocol.md 4.9). This engine never touches a socket: cipher
 * bytes received from the peer are fed in, cipher bytes to send are taken out.
 *
 * Versions: TLS 1.0 .. 1.2 offered (lockdownd frames records as TLS <= 1.2);
 * security level 0 (pairing certificates have empty names). Peer certificate
 * verification is done by the caller (lp_tls_peer_cert) because the pairing
 * certificates do not chain in OpenSSL's sense.
 */
#ifndef LP_TLS_H
#define LP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "src/base/lp_error.h"

struct lp_tls;

/* Called with one NSS key-log line (no newline) when OpenSSL produces
 * secrets. Only installed on request (--keylog / --tls-keys). */
typedef void (*lp_tls_keylog_fn)(void *ud, const char *line);

/* Client (host) / server (device). cert and key borrowed (up-refed inside).
 * Server: requests a client certificate but accepts any; check it afterwards. */
struct lp_tls *lp_tls_new_client(X509 *cert, EVP_PKEY *key, struct lp_errinfo *e);
struct lp_tls *lp_tls_new_server(X509 *cert, EVP_PKEY *key, struct lp_errinfo *e);
/* Server only, before the handshake: offer nothing newer than TLS 1.0 and
 * only Camellia-CBC suites (which linkprobe does not offer): a device whose TLS the host's
 * policy refuses. 0, or LP_ETLS. */
int lp_tls_server_legacy_only(struct lp_tls *t, struct lp_errinfo *e);
void lp_tls_free(struct lp_tls *t);
void lp_tls_set_keylog(struct lp_tls *t, lp_tls_keylog_fn fn, void *ud);

/* Cipher bytes from the peer. */
int lp_tls_feed(struct lp_tls *t, const uint8_t *buf, size_t len);
/* Cipher bytes to send to the peer: *out owned (free()), *len 0 if none. */
int lp_tls_take(struct lp_tls *t, uint8_t **out, size_t *len);
/* Advance the handshake: 0 done, LP_EAGAIN needs more peer bytes (take and
 * send output first), LP_ETLS failed (e->msg has OpenSSL's error queue). */
int lp_tls_handshake(struct lp_tls *t, struct lp_errinfo *e);
bool lp_tls_established(const struct lp_tls *t);
/* Encrypt application data (output appears in lp_tls_take). */
int lp_tls_write(struct lp_tls *t, const uint8_t *buf, size_t len, struct lp_errinfo *e);
/* Decrypted application data: 0 and *got > 0; LP_EAGAIN none yet;
 * LP_ECLOSED close_notify received; LP_ETLS error. */
int lp_tls_read(struct lp_tls *t, uint8_t *buf, size_t cap, size_t *got, struct lp_errinfo *e);
/* Send close_notify (output appears in lp_tls_take). */
int lp_tls_shutdown(struct lp_tls *t);
/* Peer certificate (owned by the engine) or NULL. */
X509 *lp_tls_peer_cert(struct lp_tls *t);
/* Negotiated protocol and cipher names (borrowed, "" before handshake). */
const char *lp_tls_version(const struct lp_tls *t);
const char *lp_tls_cipher(const struct lp_tls *t);

/* Drain OpenSSL's error queue into e (prefix "what: "), return LP_ETLS/code. */
int lp_openssl_err(struct lp_errinfo *e, int code, const char *what);

#endif
