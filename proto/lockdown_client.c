/* lockdown_client.c - host lockdown client over a struct lp_stream.
 *
 * Reference: doc/protocol.md section 0 (Label + ProtocolVersion "2" in
 * every request; QueryType reply without Result; prefix in its own segment),
 * 4.2 (Request echo, Error, Result "Failure"), 4.3 (request keys), 4.7 (Pair
 * body, PairingOptions), 4.9 (TLS right after the plaintext StartSession
 * reply, host = client), 4.10 (StopSession inside TLS, then close_notify and
 * plaintext again; the device's own close_notify arrives afterwards and is
 * skipped here rather than waited for).
 *
 * Not done here: retries (PairingDialogResponsePending is returned to the
 * caller), Unpair, service connections.
 */
#include "proto/lockdown_client.h"

#include <openssl/crypto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/lp_str.h"
#include "proto/lockdown_frame.h"
#include "proto/pair_cert.h"

#define LKD_RECV_CHUNK 16384
#define TLS_ALERT 0x15
#define TLS_RECORD_HDR 5

struct lkd_client {
	struct lp_stream *stream; /* borrowed */
	char *label;
	struct lkd_framer *framer;
	struct lp_tls *tls; /* non-NULL while the session is encrypted */
	lp_tls_keylog_fn keylog;
	void *keylog_ud;
	lkd_observer_fn obs;
	void *obs_ud;
	/* After StopSession: skip TLS alert records still coming in plaintext. */
	bool post_tls;
	uint8_t rec_hdr[TLS_RECORD_HDR];
	size_t rec_hdr_len;
	size_t rec_skip;
	char tls_version[32];
	char tls_cipher[64];
	bool tls_done;
	/* close_notify arrived; messages decrypted before it are still delivered */
	bool tls_peer_closed;
	X509 *peer_cert;	  /* the device's certificate of the last handshake (owned) */
	bool tls_device_answered; /* the last handshake got the device's certificate */
};

struct lkd_client *lkd_client_new(struct lp_stream *stream, const char *label)
{
	struct lkd_client *c;

	if (!stream)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->stream = stream;
	c->label = strdup(label ? label : LKD_DEFAULT_LABEL);
	c->framer = lkd_framer_new();
	if (!c->label || !c->framer) {
		lkd_client_free(c);
		return NULL;
	}
	return c;
}

void lkd_client_free(struct lkd_client *c)
{
	if (!c)
		return;
	X509_free(c->peer_cert);
	lp_tls_free(c->tls);
	lkd_framer_free(c->framer);
	free(c->label);
	free(c);
}

void lkd_set_observer(struct lkd_client *c, lkd_observer_fn fn, void *ud)
{
	c->obs = fn;
	c->obs_ud = ud;
}

void lkd_set_keylog(struct lkd_client *c, lp_tls_keylog_fn fn, void *ud)
{
	c->keylog = fn;
	c->keylog_ud = ud;
	if (c->tls)
		lp_tls_set_keylog(c->tls, fn, ud);
}

bool lkd_escrow_allowed(const struct lkd_client *c, const uint8_t *device_cert_pem, size_t len,
			const char **why)
{
	X509 *mine;
	bool same;

	*why = "";
	if (!c || !c->tls) {
		*why = "the session is not encrypted";
		return false;
	}
	if (!c->peer_cert) {
		*why = "the device presented no TLS certificate";
		return false;
	}
	mine = device_cert_pem && len ? pair_load_cert(device_cert_pem, len) : NULL;
	if (!mine) {
		*why = "the pair record's DeviceCertificate does not load";
		return false;
	}
	same = X509_cmp(c->peer_cert, mine) == 0;
	X509_free(mine);
	if (!same)
		*why = "the device's TLS certificate is not the pair record's DeviceCertificate";
	return same;
}

bool lkd_in_tls(const struct lkd_client *c)
{
	return c && c->tls;
}

int lkd_tls_info(const struct lkd_client *c, const char **version, const char **cipher)
{
	if (version)
		*version = c && c->tls_done ? c->tls_version : "";
	if (cipher)
		*cipher = c && c->tls_done ? c->tls_cipher : "";
	return c && c->tls_done ? 0 : LP_ENOENT;
}

/* --- observer, secrets replaced (pair_plist_redact_secrets) ------------- */

static void observe(struct lkd_client *c, int dir, plist_t msg)
{
	plist_t copy;

	if (!c->obs || !msg)
		return;
	copy = plist_copy(msg);
	if (!copy)
		return;
	pair_plist_redact_secrets(copy);
	c->obs(c->obs_ud, dir, copy);
	plist_free(copy);
}

/* --- byte transport: plaintext or TLS ------------------------------------ */

static int flush_tls(struct lkd_client *c, uint64_t dl, struct lp_errinfo *e)
{
	uint8_t *out = NULL;
	size_t n = 0;
	int r;

	if (!c->tls)
		return 0;
	r = lp_tls_take(c->tls, &out, &n);
	if (r)
		return lp_err_set(e, r, "TLS: %s", lp_strerror(r));
	r = n ? lp_stream_send(c->stream, out, n, dl, e) : 0;
	free(out); /* ciphertext */
	return r;
}

static int send_bytes(struct lkd_client *c, const uint8_t *buf, size_t len, uint64_t dl,
		      struct lp_errinfo *e)
{
	int r;

	if (!c->tls)
		return lp_stream_send(c->stream, buf, len, dl, e);
	r = lp_tls_write(c->tls, buf, len, e);
	if (r)
		return r;
	return flush_tls(c, dl, e);
}

/* Plaintext bytes after a TLS session: a TLS alert record (close_notify)
 * may still come first; lockdown frames start with 0x00 (length < 16 MiB),
 * alerts with 0x15, so the two cannot be confused. */
static int feed_plain(struct lkd_client *c, const uint8_t *p, size_t n)
{
	while (n > 0 && c->post_tls) {
		size_t k;

		if (c->rec_skip) {
			k = n < c->rec_skip ? n : c->rec_skip;
			c->rec_skip -= k;
			p += k;
			n -= k;
			continue;
		}
		if (c->rec_hdr_len == 0 && p[0] != TLS_ALERT) {
			c->post_tls = false;
			break;
		}
		k = TLS_RECORD_HDR - c->rec_hdr_len;
		k = n < k ? n : k;
		memcpy(c->rec_hdr + c->rec_hdr_len, p, k);
		c->rec_hdr_len += k;
		p += k;
		n -= k;
		if (c->rec_hdr_len == TLS_RECORD_HDR) {
			c->rec_skip = (size_t)c->rec_hdr[3] << 8 | c->rec_hdr[4];
			c->rec_hdr_len = 0;
		}
	}
	return n ? lkd_framer_feed(c->framer, p, n) : 0;
}

/* Wait for more bytes and hand them to the framer. */
static int recv_more(struct lkd_client *c, uint64_t dl, struct lp_errinfo *e)
{
	uint8_t buf[LKD_RECV_CHUNK];
	size_t got = 0;
	int r;

	r = lp_stream_recv(c->stream, buf, sizeof(buf), &got, dl, e);
	if (r)
		return r;
	if (!c->tls) {
		r = feed_plain(c, buf, got);
		if (r)
			return lp_err_set(e, r, "lockdown framing: %s", lp_strerror(r));
		return 0;
	}
	r = lp_tls_feed(c->tls, buf, got);
	if (r)
		return lp_err_set(e, r, "TLS: %s", lp_strerror(r));
	for (;;) {
		size_t n = 0;

		r = lp_tls_read(c->tls, buf, sizeof(buf), &n, e);
		if (r == LP_EAGAIN)
			break;
		if (r == LP_ECLOSED) {
			/* the device may send its reply and close_notify in one go
			 * (StopSession): keep what came before the alert */
			c->tls_peer_closed = true;
			break;
		}
		if (r)
			return r;
		r = lkd_framer_feed(c->framer, buf, n);
		if (r)
			return lp_err_set(e, r, "lockdown framing: %s", lp_strerror(r));
	}
	return flush_tls(c, dl, e);
}

static int recv_msg(struct lkd_client *c, plist_t *out, uint64_t dl, struct lp_errinfo *e)
{
	for (;;) {
		int r = lkd_framer_next(c->framer, out, NULL, NULL);

		if (r == 0)
			return 0;
		if (r == LP_EPLIST)
			return lp_err_set(e, r, "lockdown reply is not a plist dictionary");
		if (r != LP_EAGAIN)
			return lp_err_set(e, r, "lockdown framing: %s", lp_strerror(r));
		if (c->tls && c->tls_peer_closed)
			return lp_err_set(e, LP_ECLOSED, "TLS read: peer sent close_notify");
		if (lp_clock_now(c->stream->clock) >= dl)
			return lp_err_set(e, LP_ETIMEDOUT, "no lockdown reply before the deadline");
		r = recv_more(c, dl, e);
		if (r)
			return r;
	}
}

/* --- requests ------------------------------------------------------------ */

static int check_reply(plist_t reply, const char *request, struct lp_errinfo *e)
{
	const char *got = lkd_dict_str(reply, "Request");
	const char *err = lkd_dict_str(reply, "Error");
	const char *result = lkd_dict_str(reply, "Result");
	char a[64], b[64];

	if (err) {
		char s[LP_ERRINFO_MSG];

		lp_sanitize_str(s, sizeof(s), err);
		return lp_err_set(e, lp_lockdown_error_code(err), "%s", s);
	}
	if (!got)
		return lp_err_set(e, LP_EPROTO, "%s reply has no Request key", request);
	if (strcmp(got, request) != 0) {
		lp_sanitize_str(a, sizeof(a), got);
		lp_sanitize_str(b, sizeof(b), request);
		return lp_err_set(e, LP_EPROTO, "reply to \"%s\" while waiting for %s", a, b);
	}
	if (result && strcmp(result, "Failure") == 0)
		return lp_err_set(e, LP_ELKD_UNKNOWN, "%s failed (Result: Failure, no Error)",
				  request);
	return 0;
}

/* `req` is adopted. */
static int transact(struct lkd_client *c, const char *request, plist_t req, plist_t *reply,
		    uint64_t dl, struct lp_errinfo *e)
{
	uint8_t *wire = NULL;
	size_t len = 0;
	plist_t rep = NULL;
	int r;

	plist_dict_set_item(req, "Label", plist_new_string(c->label));
	plist_dict_set_item(req, "ProtocolVersion", plist_new_string(LKD_PROTOCOL_VERSION));
	plist_dict_set_item(req, "Request", plist_new_string(request));
	r = lkd_frame_encode(req, &wire, &len);
	if (r) {
		plist_free(req);
		return lp_err_set(e, r, "cannot encode %s request", request);
	}
	observe(c, LKD_DIR_SEND, req);
	pair_plist_wipe_secrets(req); /* StartService's EscrowBag */
	plist_free(req);
	r = send_bytes(c, wire, len, dl, e);
	OPENSSL_cleanse(wire, len);
	free(wire);
	if (r) {
		lp_err_prefix(e, "sending %s", request);
		return r;
	}
	r = recv_msg(c, &rep, dl, e);
	if (r) {
		lp_err_prefix(e, "waiting for %s reply", request);
		return r;
	}
	observe(c, LKD_DIR_RECV, rep);
	r = check_reply(rep, request, e);
	if (r) {
		plist_free(rep);
		return r;
	}
	if (reply)
		*reply = rep;
	else
		plist_free(rep);
	return 0;
}

int lkd_request(struct lkd_client *c, const char *request, plist_t extra, plist_t *reply,
		uint64_t deadline, struct lp_errinfo *e)
{
	plist_t req;

	if (!c || !request)
		return lp_err_set(e, LP_EINVAL, "lkd_request: bad argument");
	if (extra && plist_get_node_type(extra) == PLIST_DICT)
		req = plist_copy(extra);
	else
		req = plist_new_dict();
	return transact(c, request, req, reply, deadline, e);
}

int lkd_query_type(struct lkd_client *c, char **type, uint64_t dl, struct lp_errinfo *e)
{
	plist_t rep = NULL;
	const char *t;
	int r;

	if (!c || !type)
		return lp_err_set(e, LP_EINVAL, "lkd_query_type: bad argument");
	r = transact(c, "QueryType", plist_new_dict(), &rep, dl, e);
	if (r)
		return r;
	t = lkd_dict_str(rep, "Type");
	if (!t) {
		plist_free(rep);
		return lp_err_set(e, LP_EPROTO, "QueryType reply has no Type");
	}
	*type = strdup(t);
	plist_free(rep);
	return *type ? 0 : lp_err_set(e, LP_ENOMEM, "out of memory");
}

int lkd_get_value(struct lkd_client *c, const char *domain, const char *key, plist_t *value,
		  uint64_t dl, struct lp_errinfo *e)
{
	plist_t req, rep = NULL, v;
	int r;

	if (!c || !value)
		return lp_err_set(e, LP_EINVAL, "lkd_get_value: bad argument");
	req = plist_new_dict();
	if (domain)
		plist_dict_set_item(req, "Domain", plist_new_string(domain));
	if (key)
		plist_dict_set_item(req, "Key", plist_new_string(key));
	r = transact(c, "GetValue", req, &rep, dl, e);
	if (r)
		return r;
	v = plist_dict_get_item(rep, "Value");
	if (!v) {
		plist_free(rep);
		return lp_err_set(e, LP_EPROTO, "GetValue %s reply has no Value",
				  key ? key : "(all)");
	}
	*value = plist_copy(v);
	plist_free(rep);
	return 0;
}

static plist_t pair_body(const struct pair_record *rec, bool options)
{
	plist_t pr = pair_record_to_pair_request(rec), req, opt;

	if (!pr)
		return NULL;
	req = plist_new_dict();
	plist_dict_set_item(req, "PairRecord", pr);
	if (options) {
		opt = plist_new_dict();
		plist_dict_set_item(opt, "ExtendedPairingErrors", plist_new_bool(1));
		plist_dict_set_item(req, "PairingOptions", opt);
	}
	return req;
}

int lkd_pair(struct lkd_client *c, const struct pair_record *rec, plist_t *escrow_bag_out,
	     uint64_t dl, struct lp_errinfo *e)
{
	plist_t req, rep = NULL, bag;
	int r;

	if (!c || !rec)
		return lp_err_set(e, LP_EINVAL, "lkd_pair: bad argument");
	req = pair_body(rec, true);
	if (!req)
		return lp_err_set(e, LP_EINVAL, "pair record incomplete: cannot pair");
	r = transact(c, "Pair", req, &rep, dl, e);
	if (r)
		return r;
	if (escrow_bag_out) {
		bag = plist_dict_get_item(rep, "EscrowBag");
		*escrow_bag_out = bag && plist_get_node_type(bag) == PLIST_DATA ? plist_copy(bag)
										: NULL;
	}
	plist_free(rep);
	return 0;
}

int lkd_validate_pair(struct lkd_client *c, const struct pair_record *rec, uint64_t dl,
		      struct lp_errinfo *e)
{
	plist_t req;

	if (!c || !rec)
		return lp_err_set(e, LP_EINVAL, "lkd_validate_pair: bad argument");
	req = pair_body(rec, false);
	if (!req)
		return lp_err_set(e, LP_EINVAL, "pair record incomplete: cannot validate");
	return transact(c, "ValidatePair", req, NULL, dl, e);
}

int lkd_start_session(struct lkd_client *c, const char *host_id, const char *system_buid,
		      char **session_id, bool *ssl, uint64_t dl, struct lp_errinfo *e)
{
	plist_t req, rep = NULL;
	const char *sid;
	int r;

	if (!c || !host_id || !system_buid || !session_id)
		return lp_err_set(e, LP_EINVAL, "lkd_start_session: bad argument");
	if (c->tls)
		return lp_err_set(e, LP_EINVAL, "a TLS session is already active");
	req = plist_new_dict();
	plist_dict_set_item(req, "HostID", plist_new_string(host_id));
	plist_dict_set_item(req, "SystemBUID", plist_new_string(system_buid));
	r = transact(c, "StartSession", req, &rep, dl, e);
	if (r)
		return r;
	sid = lkd_dict_str(rep, "SessionID");
	if (!sid) {
		plist_free(rep);
		return lp_err_set(e, LP_EPROTO, "StartSession reply has no SessionID");
	}
	*session_id = strdup(sid);
	if (ssl)
		*ssl = lkd_dict_bool(rep, "EnableSessionSSL", 0);
	plist_free(rep);
	return *session_id ? 0 : lp_err_set(e, LP_ENOMEM, "out of memory");
}

int lkd_start_tls(struct lkd_client *c, X509 *cert, EVP_PKEY *key, uint64_t dl,
		  struct lp_errinfo *e)
{
	uint8_t buf[LKD_RECV_CHUNK];
	struct lp_tls *t;
	int r;

	if (!c)
		return lp_err_set(e, LP_EINVAL, "lkd_start_tls: bad argument");
	if (c->tls)
		return lp_err_set(e, LP_EINVAL, "TLS already active");
	if (lkd_framer_pending(c->framer))
		return lp_err_set(e, LP_EPROTO, "plaintext bytes pending when TLS should start");
	t = lp_tls_new_client(cert, key, e);
	if (!t)
		return e ? e->code : LP_ETLS;
	if (c->keylog)
		lp_tls_set_keylog(t, c->keylog, c->keylog_ud);
	c->tls = t;
	c->tls_peer_closed = false;
	c->post_tls = false;
	for (;;) {
		size_t got = 0;

		r = lp_tls_handshake(t, e);
		if (r != 0 && r != LP_EAGAIN)
			break;
		/* Send what the handshake produced, even the last flight. */
		int f = flush_tls(c, dl, e);
		if (f) {
			r = f;
			break;
		}
		if (r == 0)
			break;
		if (lp_clock_now(c->stream->clock) >= dl) {
			r = lp_err_set(e, LP_ETIMEDOUT,
				       "TLS handshake did not finish before the deadline");
			break;
		}
		r = lp_stream_recv(c->stream, buf, sizeof(buf), &got, dl, e);
		if (r) {
			lp_err_prefix(e, "during TLS handshake");
			break;
		}
		r = lp_tls_feed(t, buf, got);
		if (r) {
			lp_err_set(e, r, "TLS: %s", lp_strerror(r));
			break;
		}
	}
	c->tls_device_answered = lp_tls_peer_cert(t) != NULL;
	if (r) {
		lp_tls_free(t);
		c->tls = NULL;
		return r;
	}
	snprintf(c->tls_version, sizeof(c->tls_version), "%s", lp_tls_version(t));
	snprintf(c->tls_cipher, sizeof(c->tls_cipher), "%s", lp_tls_cipher(t));
	c->tls_done = true;
	X509_free(c->peer_cert);
	c->peer_cert = lp_tls_peer_cert(t);
	if (c->peer_cert)
		X509_up_ref(c->peer_cert);
	return 0;
}

int lkd_stop_session(struct lkd_client *c, const char *session_id, uint64_t dl,
		     struct lp_errinfo *e)
{
	plist_t req;
	int r, s = 0;

	if (!c || !session_id)
		return lp_err_set(e, LP_EINVAL, "lkd_stop_session: bad argument");
	req = plist_new_dict();
	plist_dict_set_item(req, "SessionID", plist_new_string(session_id));
	r = transact(c, "StopSession", req, NULL, dl, e);
	if (c->tls) {
		struct lp_errinfo e2;

		/* Tear TLS down whatever the reply said: the device ends its
		 * side after StopSession as well. */
		lp_tls_shutdown(c->tls);
		s = flush_tls(c, dl, r ? &e2 : e);
		lp_tls_free(c->tls);
		c->tls = NULL;
		c->post_tls = true;
		c->rec_hdr_len = 0;
		c->rec_skip = 0;
	}
	return r ? r : s;
}

int lkd_start_service(struct lkd_client *c, const char *name, plist_t escrow_bag, uint16_t *port,
		      bool *ssl, uint64_t dl, struct lp_errinfo *e)
{
	plist_t req, rep = NULL, p;
	uint64_t v = 0;
	int r;

	if (!c || !name || !port)
		return lp_err_set(e, LP_EINVAL, "lkd_start_service: bad argument");
	if (escrow_bag && !c->tls)
		return lp_err_set(e, LP_EINVAL,
				  "StartService: the EscrowBag goes only inside session TLS");
	req = plist_new_dict();
	plist_dict_set_item(req, "Service", plist_new_string(name));
	if (escrow_bag && plist_get_node_type(escrow_bag) == PLIST_DATA)
		plist_dict_set_item(req, "EscrowBag", plist_copy(escrow_bag));
	r = transact(c, "StartService", req, &rep, dl, e);
	if (r)
		return r;
	p = plist_dict_get_item(rep, "Port");
	if (p && plist_get_node_type(p) == PLIST_UINT)
		plist_get_uint_val(p, &v);
	if (v == 0 || v > 65535) {
		plist_free(rep);
		return lp_err_set(e, LP_EPROTO, "StartService reply has no valid Port");
	}
	*port = (uint16_t)v;
	if (ssl)
		*ssl = lkd_dict_bool(rep, "EnableServiceSSL", 0);
	plist_free(rep);
	return 0;
}

int lkd_goodbye(struct lkd_client *c, uint64_t dl, struct lp_errinfo *e)
{
	if (!c)
		return lp_err_set(e, LP_EINVAL, "lkd_goodbye: bad argument");
	return transact(c, "Goodbye", plist_new_dict(), NULL, dl, e);
}

bool lkd_tls_device_answered(const struct lkd_client *c)
{
	return c && c->tls_device_answered;
}

X509 *lkd_tls_peer_cert(const struct lkd_client *c)
{
	return c ? c->peer_cert : NULL;
}
