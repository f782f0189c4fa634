/* lockdown_client.h - host side of lockdownd (port 62078) over a stream.
 *
 * Strictly one request, one reply (doc/protocol.md 4.1-4.3). Every request
 * carries Label and ProtocolVersion "2" as Apple's host software does (notes
 * section 0). Each call is bounded by an absolute deadline on stream->clock.
 * A reply's `Error` string becomes the matching LP_ELKD_* code with the raw
 * string in e->msg; a reply whose `Request` differs from the one sent is
 * LP_EPROTO. After lkd_start_tls() frames travel inside TLS until
 * lkd_stop_session().
 */
#ifndef LP_LOCKDOWN_CLIENT_H
#define LP_LOCKDOWN_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <plist/plist.h>

#include "src/base/lp_error.h"
#include "proto/pair_record.h"
#include "proto/stream.h"
#include "proto/tls.h"

#define LKD_DEFAULT_LABEL "linkprobe"
#define LKD_PROTOCOL_VERSION "2"

enum lkd_dir {
	LKD_DIR_SEND = 0, /* host -> device */
	LKD_DIR_RECV = 1, /* device -> host */
};

/* Sees every request and reply (msg borrowed for the call). Private keys and
 * EscrowBag are replaced by "<redacted N bytes>" strings in what it sees. */
typedef void (*lkd_observer_fn)(void *ud, int dir, plist_t msg);

struct lkd_client;

/* stream borrowed (must outlive the client); label NULL = "linkprobe". */
struct lkd_client *lkd_client_new(struct lp_stream *stream, const char *label);
/* Frees the client and its TLS state; sends nothing, leaves the stream open. */
void lkd_client_free(struct lkd_client *c);

void lkd_set_observer(struct lkd_client *c, lkd_observer_fn fn, void *ud);
/* Key-log callback for session TLS (installed only when fn != NULL). */
void lkd_set_keylog(struct lkd_client *c, lp_tls_keylog_fn fn, void *ud);

/* Any request: `extra` (borrowed, dict or NULL) keys are copied into the
 * request. *reply owned (plist_free) on success. Checks Request and Error. */
int lkd_request(struct lkd_client *c, const char *request, plist_t extra, plist_t *reply,
		uint64_t deadline, struct lp_errinfo *e);

/* QueryType: *type owned (free()), e.g. "com.apple.mobile.lockdown". */
int lkd_query_type(struct lkd_client *c, char **type, uint64_t deadline, struct lp_errinfo *e);
/* GetValue [Domain] [Key]: *value owned. NULL key = all values (a dict). */
int lkd_get_value(struct lkd_client *c, const char *domain, const char *key, plist_t *value,
		  uint64_t deadline, struct lp_errinfo *e);
/* Pair with rec's public half (doc/protocol.md 4.7). *escrow_bag_out (if non-NULL)
 * receives the reply's EscrowBag data node (owned) or NULL if absent. */
int lkd_pair(struct lkd_client *c, const struct pair_record *rec, plist_t *escrow_bag_out,
	     uint64_t deadline, struct lp_errinfo *e);
int lkd_validate_pair(struct lkd_client *c, const struct pair_record *rec, uint64_t deadline,
		      struct lp_errinfo *e);
/* StartSession: *session_id owned (free()); *ssl = EnableSessionSSL. */
int lkd_start_session(struct lkd_client *c, const char *host_id, const char *system_buid,
		      char **session_id, bool *ssl, uint64_t deadline, struct lp_errinfo *e);
/* TLS handshake as client over the stream (cert/key borrowed); afterwards all
 * frames go through TLS. */
int lkd_start_tls(struct lkd_client *c, X509 *cert, EVP_PKEY *key, uint64_t deadline,
		  struct lp_errinfo *e);
/* StopSession inside TLS; then close_notify is sent and the stream is back to
 * plaintext (a close_notify from the device is skipped when it arrives). */
int lkd_stop_session(struct lkd_client *c, const char *session_id, uint64_t deadline,
		     struct lp_errinfo *e);
/* StartService: escrow_bag (borrowed data node) or NULL. The EscrowBag
 * unlocks the device's keybag for backups: it is sent only inside session TLS
 * (outside it the call fails with LP_EINVAL and sends nothing); the caller
 * decides with lkd_escrow_allowed() whether this device may have it. */
int lkd_start_service(struct lkd_client *c, const char *name, plist_t escrow_bag, uint16_t *port,
		      bool *ssl, uint64_t deadline, struct lp_errinfo *e);
int lkd_goodbye(struct lkd_client *c, uint64_t deadline, struct lp_errinfo *e);

/* Negotiated TLS protocol and cipher of the current or last session
 * (borrowed; "" if none). 0 if a handshake completed, else LP_ENOENT. */
int lkd_tls_info(const struct lkd_client *c, const char **version, const char **cipher);
/* The certificate the device presented in the last session handshake
 * (borrowed, NULL if none). Hosts do not verify it (doc/protocol.md 4.9); the
 * diagnosis compares it with the record's DeviceCertificate as evidence. */
X509 *lkd_tls_peer_cert(const struct lkd_client *c);
/* Whether the last session TLS handshake, even a failed one, got as far as
 * the device's certificate (the device answered the ClientHello with its
 * side of the handshake). false: it failed in the hello exchange - no
 * protocol version or cipher in common. */
bool lkd_tls_device_answered(const struct lkd_client *c);
/* May the record's EscrowBag go to this device? Only inside session TLS and
 * only when the device's TLS certificate is the record's DeviceCertificate
 * (device_cert_pem, borrowed): a fake device that knows the victim's UDID
 * (public) cannot present it without the device key. true, or false with
 * *why (static) saying why the bag is withheld. */
bool lkd_escrow_allowed(const struct lkd_client *c, const uint8_t *device_cert_pem, size_t len,
			const char **why);
/* true while frames travel inside TLS. */
bool lkd_in_tls(const struct lkd_client *c);

#endif
