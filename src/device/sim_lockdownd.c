/* sim_lockdownd.c - the simulated iPhone's lockdownd on port 62078: the
 * requests (QueryType, GetValue, SetValue, RemoveValue, Pair, ValidatePair,
 * Unpair, StartSession, StopSession, StartService, Goodbye) as a handler of
 * the device's lockdown connection machine (src/device/lkd_server.c), and who
 * serves which accepted connection. Device side only; hosts live in
 * proto/lockdown*.c.
 *
 * Reference: doc/protocol.md 4.1-4.11 and section 0; libimobiledevice
 * lockdown.c and usbmuxd preflight.c (read for facts).
 *
 * A host certificate that is neither the stored Root/Host certificate nor
 * signed by the stored root's key ends the connection (RST) after the
 * session TLS handshake: the host sees its TLS session fail.
 *
 * Reply shapes as recorded from a real device (notes section 0): no Result
 * key, GetValue echoes Key (and Domain), a refused key is GetProhibited.
 *
 * Decisions where the notes say UNVERIFIED:
 *  - an unknown Request gets Error "InvalidResponse", a message without
 *    Request gets "MissingKey";
 *  - readable without a session: identity keys (sim_values.c); domains,
 *    the other keys and keys the phone does not know need a session
 *    (GetProhibited, as IDAMCapability on the recorded device);
 *  - a Pair from a host whose SystemBUID or HostID is already paired succeeds
 *    without a dialog (the phone already trusts that computer);
 *  - StartSession without HostID answers InvalidHostID (see there).
 */
#include "src/device/sim_lockdownd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <plist/plist.h>

#include "src/base/lp_str.h"
#include "proto/afc.h"
#include "proto/lockdown_frame.h"
#include "proto/mux.h"

static void rand_uuid(struct lp_rand *r, char out[37])
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (int i = 0; i < 32; i++) {
		if (i == 8 || i == 12 || i == 16 || i == 20)
			out[o++] = '-';
		out[o++] = hex[lp_rand_next(r) & 0xf];
	}
	out[o] = '\0';
}

/* --------------------------------------------------------------------------
 * Replies
 */

static plist_t reply_new(const char *req)
{
	plist_t r = plist_new_dict();

	if (req)
		plist_dict_set_item(r, "Request", plist_new_string(req));
	return r;
}

/* Success replies carry no Result key: the recorded QueryType, GetValue and
 * StartSession replies have none (notes section 0), nor has any reply of an
 * iOS since 5 (hosts check for Error instead). */
static plist_t reply_ok(const char *req)
{
	return reply_new(req);
}

static void send_error(struct slkd *l, struct lks_conn *c, const char *req, int err)
{
	plist_t r = reply_new(req);
	const char *name = lp_lockdown_error_name(err);

	plist_dict_set_item(r, "Error", plist_new_string(name ? name : "InvalidResponse"));
	lks_send(c, r, 0);
	plist_free(r);
}

static bool in_session(const struct lks_conn *c)
{
	const struct slkd_conn *sc = lks_priv(c);

	return sc->session && lks_in_tls(c);
}

/* `key` is in the policy's '+'-separated list of refused keys. */
static bool prohibited(const struct slkd_device *d, const char *key)
{
	const char *p = d->pol.prohibit;
	size_t n = key ? strlen(key) : 0;

	while (n && *p) {
		size_t k = strcspn(p, "+");
		if (k == n && strncmp(p, key, n) == 0)
			return true;
		p += k + (p[k] == '+');
	}
	return false;
}

static void handle_get_value(struct slkd *l, struct lks_conn *c, plist_t msg)
{
	const char *key = lkd_dict_str(msg, "Key");
	const char *domain = lkd_dict_str(msg, "Domain");
	plist_t r, v = NULL;
	int err = !domain && prohibited(l->d, key)
			  ? LP_ELKD_GET_PROHIBITED
			  : slkd_value(l->d, domain, key, in_session(c), l->now, &v);

	r = reply_new("GetValue");
	if (key)
		plist_dict_set_item(r, "Key", plist_new_string(key));
	if (domain)
		plist_dict_set_item(r, "Domain", plist_new_string(domain));
	if (err) {
		plist_dict_set_item(r, "Error", plist_new_string(lp_lockdown_error_name(err)));
	} else {
		plist_dict_set_item(r, "Value", v);
	}
	lks_send(c, r, 0);
	plist_free(r);
}

static void handle_set_value(struct slkd *l, struct lks_conn *c, plist_t msg)
{
	const char *key = lkd_dict_str(msg, "Key");
	const char *domain = lkd_dict_str(msg, "Domain");
	plist_t val = plist_dict_get_item(msg, "Value");

	if (!key)
		return send_error(l, c, "SetValue", LP_ELKD_MISSING_KEY);
	if (!val)
		return send_error(l, c, "SetValue", LP_ELKD_MISSING_VALUE);
	/* usbmuxd's preflight sets this without a session (doc/protocol.md 4.8) */
	if (!domain && !strcmp(key, "UntrustedHostBUID") &&
	    plist_get_node_type(val) == PLIST_STRING) {
		const char *s = plist_get_string_ptr(val, NULL);

		snprintf(l->d->untrusted_buid, sizeof(l->d->untrusted_buid), "%s", s ? s : "");
		plist_t r = reply_ok("SetValue");
		lks_send(c, r, 0);
		plist_free(r);
		return;
	}
	send_error(l, c, "SetValue", LP_ELKD_SET_PROHIBITED);
}

/* Validate a host's PairRecord against this device. Returns 0 and the three
 * certificates (owned), or an LP_ELKD_* code. */
static int check_record(struct slkd *l, plist_t rec, const char **host_id, const char **buid,
			X509 **root, X509 **host, X509 **dev)
{
	EVP_PKEY *rk;

	*root = *host = *dev = NULL;
	if (!rec || plist_get_node_type(rec) != PLIST_DICT)
		return LP_ELKD_MISSING_PAIR_RECORD;
	*host_id = lkd_dict_str(rec, "HostID");
	*buid = lkd_dict_str(rec, "SystemBUID");
	if (!*host_id || !**host_id)
		return LP_ELKD_MISSING_HOST_ID;
	if (strlen(*host_id) >= SLKD_ID_MAX || (*buid && strlen(*buid) >= SLKD_ID_MAX))
		return LP_ELKD_INVALID_PAIR_RECORD;
	*root = slkd_cert_from_node(rec, "RootCertificate");
	*host = slkd_cert_from_node(rec, "HostCertificate");
	*dev = slkd_cert_from_node(rec, "DeviceCertificate");
	if (!*root || !*host || !*dev)
		goto bad;
	rk = X509_get0_pubkey(*root);
	/* the device certificate must carry our key (the host read it with
	 * GetValue DevicePublicKey) and, like the host certificate, be signed
	 * by the root; OpenSSL's chain builder is useless here (empty DNs) */
	if (!rk || EVP_PKEY_eq(X509_get0_pubkey(*dev), l->d->key) != 1 ||
	    X509_verify(*host, rk) != 1 || X509_verify(*dev, rk) != 1)
		goto bad;
	return 0;
bad:
	ERR_clear_error();
	X509_free(*root);
	X509_free(*host);
	X509_free(*dev);
	*root = *host = *dev = NULL;
	return LP_ELKD_INVALID_PAIR_RECORD;
}

static void handle_pair(struct slkd *l, struct lks_conn *c, plist_t msg)
{
	struct slkd_device *d = l->d;
	const char *host_id = NULL, *buid = NULL;
	X509 *root, *host, *dev;
	struct slkd_pairing *p;
	bool known;
	int err;
	plist_t r;

	d->n.pair_requests++;
	err = check_record(l, plist_dict_get_item(msg, "PairRecord"), &host_id, &buid, &root, &host,
			   &dev);
	if (err)
		return send_error(l, c, "Pair", err);
	if (d->pol.locked) {
		err = LP_ELKD_PASSWORD_PROTECTED;
		goto fail;
	}
	if (d->pol.pair_error == LP_ELKD_MC_CHALLENGE_REQUIRED) {
		/* a supervised phone wants the supervisor's signature over a
		 * challenge instead of showing the dialog (doc/protocol.md 4.4) */
		uint8_t ch[32];
		plist_t ext = plist_new_dict();

		for (size_t i = 0; i < sizeof(ch); i++)
			ch[i] = (uint8_t)lp_rand_next(&d->rand);
		plist_dict_set_item(ext, "PairingChallenge",
				    plist_new_data((const char *)ch, sizeof(ch)));
		r = reply_new("Pair");
		plist_dict_set_item(r, "Error", plist_new_string("MCChallengeRequired"));
		plist_dict_set_item(r, "ExtendedResponse", ext);
		lks_send(c, r, 0);
		plist_free(r);
		X509_free(root);
		X509_free(host);
		X509_free(dev);
		return;
	}
	if (d->pol.pair_error) {
		err = d->pol.pair_error;
		goto fail;
	}
	known = slkd_find_pairing(d, host_id) || slkd_buid_paired(d, buid);
	if (!known) {
		if (slkd_dialog_update(d, l->now))
			slkd_notify(l, SLKD_NOTE_REQUEST_PAIR);
		switch (d->dialog) {
		case SLKD_DIALOG_NONE:
			d->dialog = SLKD_DIALOG_SHOWN;
			d->dialog_at = l->now;
			d->n.dialogs_shown++;
			lp_logf(d->log, LP_LOG_INFO, "simdev: Trust dialog shown");
			err = LP_ELKD_PAIRING_DIALOG_PENDING;
			goto fail;
		case SLKD_DIALOG_SHOWN:
			err = LP_ELKD_PAIRING_DIALOG_PENDING;
			goto fail;
		case SLKD_DIALOG_DENIED:
			d->dialog = SLKD_DIALOG_NONE;
			err = LP_ELKD_USER_DENIED_PAIRING;
			goto fail;
		case SLKD_DIALOG_TRUSTED:
			d->dialog = SLKD_DIALOG_NONE;
			d->trusted_pair_done = true;
			d->trusted_pair_at = l->now;
			break;
		}
	}
	p = slkd_add_pairing(d, host_id, buid, root, host, dev);
	p->this_process = true;
	for (size_t i = 0; i < sizeof(p->escrow); i++)
		p->escrow[i] = (uint8_t)lp_rand_next(&d->rand);
	d->n.pairs_ok++;
	slkd_state_save(d);
	lp_logf(d->log, LP_LOG_INFO, "simdev: paired with host %s", p->host_id);
	r = reply_ok("Pair");
	plist_dict_set_item(r, "EscrowBag", plist_new_data((char *)p->escrow, sizeof(p->escrow)));
	lks_send(c, r, 0);
	plist_free(r);
	return;
fail:
	X509_free(root);
	X509_free(host);
	X509_free(dev);
	send_error(l, c, "Pair", err);
}

static const char *record_host_id(plist_t msg)
{
	plist_t rec = plist_dict_get_item(msg, "PairRecord");
	const char *h = lkd_dict_str(rec, "HostID");

	return h ? h : lkd_dict_str(msg, "HostID");
}

static void handle_validate(struct slkd *l, struct lks_conn *c, plist_t msg)
{
	const char *hid = record_host_id(msg);
	plist_t r;

	if (!hid)
		return send_error(l, c, "ValidatePair", LP_ELKD_MISSING_HOST_ID);
	if (!slkd_find_pairing(l->d, hid))
		return send_error(l, c, "ValidatePair", LP_ELKD_INVALID_HOST_ID);
	r = reply_ok("ValidatePair");
	lks_send(c, r, 0);
	plist_free(r);
}

static void handle_unpair(struct slkd *l, struct lks_conn *c, plist_t msg)
{
	struct slkd_device *d = l->d;
	const char *hid = record_host_id(msg);
	plist_t r;

	if (!hid)
		return send_error(l, c, "Unpair", LP_ELKD_MISSING_HOST_ID);
	for (size_t i = 0; i < d->npair; i++) {
		if (strcmp(d->pair[i].host_id, hid) == 0) {
			lp_logf(d->log, LP_LOG_INFO, "simdev: unpaired host %s",
				d->pair[i].host_id);
			slkd_remove_pairing(d, i);
			slkd_state_save(d);
			r = reply_ok("Unpair");
			lks_send(c, r, 0);
			plist_free(r);
			return;
		}
	}
	send_error(l, c, "Unpair", LP_ELKD_INVALID_HOST_ID);
}

static void handle_start_session(struct slkd *l, struct lks_conn *c, plist_t msg)
{
	struct slkd_device *d = l->d;
	struct slkd_conn *sc = lks_priv(c);
	const char *hid = lkd_dict_str(msg, "HostID");
	const struct slkd_pairing *p;
	plist_t r;

	if (sc->session)
		return send_error(l, c, "StartSession", LP_ELKD_SESSION_ACTIVE);
	/* libimobiledevice sends no HostID when it has no pair record;
	 * usbmuxd's preflight only raises the Trust dialog if that gets
	 * InvalidHostID ("not paired with this host"), as it does on phones */
	if (!hid)
		return send_error(l, c, "StartSession", LP_ELKD_INVALID_HOST_ID);
	p = slkd_find_pairing(d, hid);
	if (!p || (d->pol.forget_hosts && !p->this_process))
		return send_error(l, c, "StartSession", LP_ELKD_INVALID_HOST_ID);
	if (d->pol.session_error)
		return send_error(l, c, "StartSession", d->pol.session_error);
	rand_uuid(&d->rand, sc->session_id);
	snprintf(sc->host_id, sizeof(sc->host_id), "%s", p->host_id);
	r = reply_ok("StartSession");
	plist_dict_set_item(r, "SessionID", plist_new_string(sc->session_id));
	plist_dict_set_item(r, "EnableSessionSSL", plist_new_bool(1));
	lks_send(c, r, 0);
	plist_free(r);
	if (lks_dead(c))
		return;
	/* the device serves the DeviceCertificate from the record with its own
	 * key (doc/protocol.md 4.9) and asks for the host's certificate */
	if (lks_start_tls(c, p->device, d->key, d->pol.tls_reset))
		return;
	sc->session = true;
	d->n.sessions_started++;
}

static void handle_stop_session(struct slkd *l, struct lks_conn *c, plist_t msg)
{
	struct slkd_conn *sc = lks_priv(c);
	const char *sid = lkd_dict_str(msg, "SessionID");
	plist_t r;

	if (!sid)
		return send_error(l, c, "StopSession", LP_ELKD_MISSING_SESSION_ID);
	if (!sc->session)
		return send_error(l, c, "StopSession", LP_ELKD_SESSION_INACTIVE);
	if (strcmp(sid, sc->session_id) != 0)
		return send_error(l, c, "StopSession", LP_ELKD_INVALID_SESSION_ID);
	r = reply_ok("StopSession");
	lks_send(c, r, 0);
	plist_free(r);
	sc->session = false;
	sc->session_id[0] = '\0';
	/* our close_notify goes out now; the host's (if it sends one) is
	 * skipped, then the stream is plaintext again */
	lks_stop_tls(c);
}

static void handle_start_service(struct slkd *l, struct lks_conn *c, plist_t msg)
{
	const char *name = lkd_dict_str(msg, "Service");
	enum slkd_kind kind;
	bool ssl;
	uint16_t port = 0;
	plist_t r;

	if (!name)
		return send_error(l, c, "StartService", LP_ELKD_MISSING_SERVICE);
	if (l->d->pol.service_error)
		return send_error(l, c, "StartService", l->d->pol.service_error);
	if (!strcmp(name, "com.apple.mobile.insecure_notification_proxy")) {
		kind = SLKD_NOTIFY;
		ssl = false;
	} else if (!strcmp(name, "com.apple.mobilebackup2")) {
		kind = SLKD_BACKUP;
		ssl = true;
	} else if (!strcmp(name, AFC_SERVICE)) {
		kind = SLKD_AFC; /* plain: real devices answer without EnableServiceSSL */
		ssl = false;
	} else {
		return send_error(l, c, "StartService", LP_ELKD_INVALID_SERVICE);
	}
	/* insecure_notification_proxy is what usbmuxd's preflight starts before
	 * the host is trusted (doc/protocol.md 4.3); everything else needs a session */
	if (kind != SLKD_NOTIFY && !in_session(c))
		return send_error(l, c, "StartService", LP_ELKD_SESSION_INACTIVE);
	if (slkd_service_open(l, kind, ((struct slkd_conn *)lks_priv(c))->host_id, &port))
		return send_error(l, c, "StartService", LP_ELKD_SERVICE_LIMIT);
	r = reply_ok("StartService");
	plist_dict_set_item(r, "Service", plist_new_string(name));
	plist_dict_set_item(r, "Port", plist_new_uint(port));
	if (ssl)
		plist_dict_set_item(r, "EnableServiceSSL", plist_new_bool(1));
	lks_send(c, r, 0);
	plist_free(r);
}

static void handle_lockdown(struct slkd *l, struct lks_conn *c, plist_t msg)
{
	const char *req = lkd_dict_str(msg, "Request");
	char safe[64];
	plist_t r;

	l->d->n.requests++;
	if (l->d->pol.down == SLKD_DOWN_SILENT)
		return; /* accepted, never answered */
	if (!req)
		return send_error(l, c, NULL, LP_ELKD_MISSING_KEY);
	lp_sanitize_str(safe, sizeof(safe), req);
	lp_logf(l->d->log, LP_LOG_DEBUG, "simdev: lockdownd conn %u: %s%s", lks_conn_id(c), safe,
		in_session(c) ? " (in session)" : "");
	if (l->intercept && l->intercept(l->intercept_ud, c, req))
		return;
	if (!strcmp(req, "QueryType")) {
		r = reply_ok(req);
		plist_dict_set_item(r, "Type", plist_new_string("com.apple.mobile.lockdown"));
		lks_send(c, r, 0);
		plist_free(r);
	} else if (!strcmp(req, "GetValue")) {
		handle_get_value(l, c, msg);
	} else if (!strcmp(req, "SetValue")) {
		handle_set_value(l, c, msg);
	} else if (!strcmp(req, "RemoveValue")) {
		send_error(l, c, req, LP_ELKD_REMOVE_PROHIBITED);
	} else if (!strcmp(req, "Pair")) {
		handle_pair(l, c, msg);
	} else if (!strcmp(req, "ValidatePair")) {
		handle_validate(l, c, msg);
	} else if (!strcmp(req, "Unpair")) {
		handle_unpair(l, c, msg);
	} else if (!strcmp(req, "StartSession")) {
		handle_start_session(l, c, msg);
	} else if (!strcmp(req, "StopSession")) {
		handle_stop_session(l, c, msg);
	} else if (!strcmp(req, "StartService")) {
		handle_start_service(l, c, msg);
	} else if (!strcmp(req, "Goodbye")) {
		r = reply_ok(req);
		lks_send(c, r, 0);
		plist_free(r);
	} else {
		send_error(l, c, req, LP_ELKD_INVALID_RESPONSE);
	}
}
/* --------------------------------------------------------------------------
 * The lockdown handler and the entry points
 */

static void lockdown_request(void *ud, struct lks_conn *c, plist_t msg, uint64_t now)
{
	struct slkd *l = ud;

	l->now = now;
	handle_lockdown(l, c, msg);
}

static void lockdown_bad(void *ud, struct lks_conn *c, int err, uint64_t now)
{
	struct slkd *l = ud;

	l->now = now;
	if (err == LP_EPLIST)
		send_error(l, c, NULL, LP_ELKD_INVALID_RESPONSE);
}

static bool peer_ok(const struct slkd_device *d, const char *host_id, X509 *peer)
{
	const struct slkd_pairing *p = slkd_find_pairing(d, host_id);
	EVP_PKEY *rk;
	bool ok;

	if (!p || !peer)
		return false;
	if (X509_cmp(peer, p->root) == 0 || X509_cmp(peer, p->host) == 0)
		return true;
	/* libimobiledevice presents the root, others the host certificate;
	 * accept anything the stored root signed (empty DNs: no chain build) */
	rk = X509_get0_pubkey(p->root);
	ok = rk && X509_verify(peer, rk) == 1;
	ERR_clear_error();
	return ok;
}

bool slkd_peer_ok(void *ud, struct lks_conn *c, X509 *peer)
{
	struct slkd *l = ud;
	struct slkd_conn *sc = lks_priv(c);

	if (!l->d->pol.refuse_host_certs && peer_ok(l->d, sc->host_id, peer)) {
		l->d->n.tls_sessions++;
		return true;
	}
	l->d->n.tls_rejected++;
	return false;
}

const struct lks_handler slkd_lockdown_handler = {
	.request = lockdown_request,
	.bad = lockdown_bad,
	.peer_ok = slkd_peer_ok,
	.closed = slkd_conn_closed,
};

static int afc_send(void *ud, uint32_t conn, const uint8_t *buf, size_t len)
{
	return devcore_send(ud, conn, buf, len, 0);
}

static void afc_reset(void *ud, uint32_t conn)
{
	devcore_close(ud, conn);
}

struct slkd *slkd_new(struct slkd_device *d, struct devcore *dc, const struct lp_log *log)
{
	struct slkd *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->d = d;
	l->dc = dc;
	l->srv = lks_new(dc, log);
	l->afc = sim_afc_new(&(struct sim_afc_io){afc_send, afc_reset, dc});
	if (!l->srv || !l->afc) {
		lks_free(l->srv);
		sim_afc_free(l->afc);
		free(l);
		return NULL;
	}
	return l;
}

void slkd_free(struct slkd *l)
{
	if (!l)
		return;
	lks_free(l->srv);
	sim_afc_free(l->afc);
	free(l);
}

void slkd_set_framing(struct slkd *l, enum lks_framing f)
{
	lks_set_framing(l->srv, f);
	lks_set_legacy_tls(l->srv, l->d->pol.legacy_tls);
}

void slkd_attach(struct slkd *l)
{
	if (l->d->pol.down == SLKD_DOWN_REFUSE)
		return; /* a hung lockdownd: the mux answers RST to 62078 */
	if (devcore_listen(l->dc, MUX_PORT_LOCKDOWN) != 0)
		lp_logf(l->d->log, LP_LOG_ERROR, "simdev: lockdownd cannot listen on %u",
			MUX_PORT_LOCKDOWN);
}

void slkd_reset(struct slkd *l)
{
	lks_reset(l->srv);
	sim_afc_reset(l->afc);
	slkd_service_reset(l);
}

void slkd_accept(struct slkd *l, uint32_t conn, uint16_t port, uint64_t now)
{
	struct slkd_conn *sc;
	struct lks_conn *c;

	l->now = now;
	if (port != MUX_PORT_LOCKDOWN) {
		if (!slkd_service_accept(l, conn, port))
			devcore_close(l->dc, conn);
		return;
	}
	sc = slkd_conn_new(l, SLKD_LOCKDOWN, NULL);
	c = sc ? lks_accept(l->srv, conn, port, LKS_FRAMED, &slkd_lockdown_handler, l) : NULL;
	if (!c) {
		free(sc);
		devcore_close(l->dc, conn);
		return;
	}
	lks_set_priv(c, sc);
}

void slkd_data(struct slkd *l, uint32_t conn, const uint8_t *buf, size_t len, uint64_t now)
{
	l->now = now;
	if (sim_afc_data(l->afc, conn, buf, len))
		return;
	lks_data(l->srv, conn, buf, len, now);
}

void slkd_closed(struct slkd *l, uint32_t conn)
{
	sim_afc_closed(l->afc, conn);
	lks_closed(l->srv, conn);
}
