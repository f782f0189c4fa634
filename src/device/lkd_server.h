/* lkd_server.h - the device side of a lockdown-framed connection: one
 * connection machine for every device model, with the requests left to a
 * handler (the simulated lockdownd and its services, the replay device).
 *
 * Per connection (usbmux connection accepted by the device core):
 *
 *   PLAIN --handler: lks_start_tls--> TLS_HS --handshake, peer_ok--> TLS
 *   TLS   --handler: lks_stop_tls (after its reply; our close_notify)--> CLOSING
 *   CLOSING --the host's TLS records skipped; first other byte--> PLAIN
 *   TLS   --host's close_notify without StopSession--> PLAIN
 *
 * Framing is proto/lockdown_frame's framer, fed one frame at a time so the
 * bytes after a StartSession reply are handed to TLS, not swallowed. A body
 * that is not a plist dictionary reaches the handler's `bad` hook; so does a
 * length prefix over LKD_MAX_MESSAGE, which then resets the connection. A
 * host certificate the handler refuses (peer_ok) resets the connection before
 * the device's last handshake flight (its Finished) goes out, so the host's
 * handshake fails. LKS_TLS_SERVICE
 * connections (a service with EnableServiceSSL: the handler calls
 * lks_start_tls at once) frame nothing inside TLS and drop plaintext (their
 * conversation is not simulated).
 *
 * How replies go out (lks_set_framing): real devices send lockdown's 4-byte
 * length prefix in a usbmux packet of its own, before the body (doc/protocol.md
 * section 0); LKS_FRAMING_JOINED sends prefix and body in one packet. Inside
 * TLS both are one TLS record, as the device sends them.
 *
 * Reference: doc/protocol.md 4.1 (framing), 4.9-4.10 (session TLS,
 * StopSession and close_notify), section 0.
 */
#ifndef LP_LKD_SERVER_H
#define LP_LKD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <plist/plist.h>

#include "src/base/lp_log.h"
#include "src/device/devcore.h"

#define LKS_MAX_CONNS 64

enum lks_mode {
	LKS_FRAMED,	 /* lockdown framing, plain or inside session TLS */
	LKS_TLS_SERVICE, /* TLS only, nothing framed (a service's handshake) */
};

enum lks_framing {
	LKS_FRAMING_SPLIT,  /* length prefix in its own usbmux packet (real devices) */
	LKS_FRAMING_JOINED, /* prefix and body in one packet */
};

struct lks;
struct lks_conn;

/* What serves a connection. `ud` is lks_accept's. */
struct lks_handler {
	/* A whole message (borrowed dictionary) arrived, plain or inside TLS. */
	void (*request)(void *ud, struct lks_conn *c, plist_t msg, uint64_t now);
	/* Optional: a frame the machine could not deliver - LP_EPLIST: its body
	 * is not a plist dictionary (dropped, the connection goes on);
	 * LP_ETOOBIG: a length prefix over LKD_MAX_MESSAGE (the connection is
	 * reset after this call). */
	void (*bad)(void *ud, struct lks_conn *c, int err, uint64_t now);
	/* Optional: the TLS handshake finished; accept the host's certificate
	 * (NULL if it sent none)? false resets the connection. Default: accept. */
	bool (*peer_ok)(void *ud, struct lks_conn *c, X509 *peer);
	/* Optional: the connection is going away (either side); free priv. */
	void (*closed)(void *ud, struct lks_conn *c);
};

/* The server of one device: connections over `dc` (borrowed), replies framed
 * as real devices do (LKS_FRAMING_SPLIT). NULL on allocation failure. */
struct lks *lks_new(struct devcore *dc, const struct lp_log *log);
void lks_free(struct lks *s);
/* Forget every connection without sending anything (the attachment ended). */
void lks_reset(struct lks *s);
void lks_set_framing(struct lks *s, enum lks_framing f);
/* Session TLS offers only TLS 1.0 with Camellia (lp_tls_server_legacy_only): a
 * device whose TLS a host's crypto policy refuses. */
void lks_set_legacy_tls(struct lks *s, bool on);

/* Serve usbmux connection `conn` (accepted on `port`) with `h` (static) and
 * `ud` (borrowed). NULL when the table is full (the caller resets it). */
struct lks_conn *lks_accept(struct lks *s, uint32_t conn, uint16_t port, enum lks_mode mode,
			    const struct lks_handler *h, void *ud);
/* Device-core events for connections served here (others are ignored: the
 * return says whether conn was one of ours). */
bool lks_data(struct lks *s, uint32_t conn, const uint8_t *buf, size_t len, uint64_t now);
bool lks_closed(struct lks *s, uint32_t conn);

/* --- for handlers ------------------------------------------------------------ */

/* Encode and send `msg` (borrowed) `delay_ns` from now, inside TLS when the
 * connection is in TLS. */
void lks_send(struct lks_conn *c, plist_t msg, uint64_t delay_ns);
/* Send `len` bytes of `body` (borrowed; any bytes, a plist or not) framed as
 * one lockdown message, as lks_send would: a device that lies on request. */
void lks_send_body(struct lks_conn *c, const uint8_t *body, size_t len, uint64_t delay_ns);
/* After the StartSession reply: the next bytes are the host's TLS handshake;
 * the device presents `cert` with `key` (borrowed until the handshake ends)
 * and asks for the host's certificate. `fail`: reset the connection on the
 * first handshake byte instead (a recorded TLS failure). */
int lks_start_tls(struct lks_conn *c, X509 *cert, EVP_PKEY *key, bool fail);
/* After the StopSession reply: our close_notify goes out; plaintext again
 * once the host's close_notify (if any) is skipped. Plaintext still inside
 * TLS after the StopSession is dropped. */
void lks_stop_tls(struct lks_conn *c);
/* Reset the connection once the current event is handled. */
void lks_kill(struct lks_conn *c, const char *why);
bool lks_in_tls(const struct lks_conn *c); /* session TLS up */
bool lks_dead(const struct lks_conn *c);
uint32_t lks_conn_id(const struct lks_conn *c);
uint16_t lks_conn_port(const struct lks_conn *c);
const char *lks_tls_version(const struct lks_conn *c); /* NULL before TLS */
const char *lks_tls_cipher(const struct lks_conn *c);
/* The handler's per-connection object (owned by the handler; free it in
 * `closed`). */
void lks_set_priv(struct lks_conn *c, void *priv);
void *lks_priv(const struct lks_conn *c);

/* Every live connection served by `h`, for broadcasts (notifications). The
 * callback may lks_send/lks_kill; connections killed are reset afterwards. */
size_t lks_each(struct lks *s, const struct lks_handler *h,
		void (*fn)(void *arg, struct lks_conn *c), void *arg);
/* Reset the connections marked dead (called by the entry points; for a
 * handler acting outside them, e.g. on a timer). */
void lks_sweep(struct lks *s);

#endif
