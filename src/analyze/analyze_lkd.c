/* analyze_lkd.c - facts from the capture reader's lockdown events.
 *
 * The reader (src/capture/reader_lkd.c) frames both directions of a
 * lockdown connection (a mux connection to port 62078 or a relayed usbmuxd
 * socket after Connect) and follows TLS record headers once session TLS
 * starts. Here: requests are matched to replies by the echoed "Request" key
 * (FIFO per connection) for latency; facts land in the device (struct
 * an_dev): QueryType, GetValue keys, the Trust-dialog pattern (Pair ->
 * PairingDialogResponsePending repeated -> success / UserDeniedPairing /
 * PasswordProtected), StartSession and EnableSessionSSL. The session is up
 * at the first TLS application data; an alert or a close before that is a
 * failed handshake. StartService and StopSession run inside TLS and are
 * inferred: a service connection opened after TLS, the connection closed
 * after it. Reference: doc/protocol.md (lockdown); RFC 5246 6.2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/analyze/analyze_facts.h"
#include "src/base/lp_str.h"

/* Every key looked up below: the reader hands a view of these (no libplist
 * dictionary: building and freeing one was a fifth of analyzing lockdown
 * traffic). */
const char *const an_lkd_keys[] = {"Request", "Error",	   "Service",	       "Type", "Key",
				   "Value",   "SessionID", "EnableSessionSSL", "Port", NULL};

struct an_lkd *an_lkd_new(struct an_dev *d)
{
	struct an_lkd *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->d = d;
	d->lkd_conns++;
	return l;
}

void an_lkd_free(struct an_lkd *l)
{
	free(l);
}

static void copy_value(const struct lkd_view *msg, char *dst, size_t n)
{
	const char *s = lkd_view_str(msg, "Value");

	if (s)
		lp_sanitize_str(dst, n, s);
}

static void on_request(struct an *a, struct an_lkd *l, const struct lkd_view *msg, uint64_t t)
{
	struct an_dev *d = l->d;
	uint64_t pkt = a->cur_pkt;
	const char *req = lkd_view_str(msg, "Request");
	size_t n;

	d->lkd_requests++;
	if (!req) {
		an_anomaly_add(a, AN_K_HOST, d,
			       "packet %llu: lockdown request without a Request key",
			       (unsigned long long)pkt);
		return;
	}
	if (l->nreq == AN_REQ_FIFO) {
		memmove(&l->req[0], &l->req[1], sizeof(l->req[0]) * (AN_REQ_FIFO - 1));
		l->nreq--;
	}
	n = strnlen(req, sizeof(l->req[0].name) - 1);
	memcpy(l->req[l->nreq].name, req, n); /* snprintf() cost 2 % */
	l->req[l->nreq].name[n] = '\0';
	l->req[l->nreq].t = t;
	l->nreq++;

	if (strcmp(req, "QueryType") == 0) {
		an_span_start(&d->qtype, t, pkt);
		d->querytypes++;
	} else if (strcmp(req, "GetValue") == 0) {
		an_span_start(&d->info, t, pkt);
	} else if (strcmp(req, "Pair") == 0) {
		an_span_start(&d->pair, t, pkt);
		d->pair_tries++;
	} else if (strcmp(req, "StartSession") == 0) {
		an_span_start(&d->session, t, pkt);
	} else if (strcmp(req, "StartService") == 0) {
		const char *svc = lkd_view_str(msg, "Service");
		an_span_start(&d->service, t, pkt);
		if (svc)
			lp_sanitize_str(d->service_name, sizeof(d->service_name), svc);
	} else if (strcmp(req, "StopSession") == 0) {
		an_span_start(&d->stop, t, pkt);
	}
}

static void on_reply(struct an *a, struct an_lkd *l, const struct lkd_view *msg, uint64_t t)
{
	struct an_dev *d = l->d;
	uint64_t pkt = a->cur_pkt;
	const char *req = lkd_view_str(msg, "Request");
	const char *err = lkd_view_str(msg, "Error");
	int code = err ? lp_lockdown_error_code(err) : 0;
	size_t i;

	d->lkd_replies++;
	if (err)
		lp_sanitize_str(d->last_error, sizeof(d->last_error), err);
	/* match the oldest outstanding request of that name (or the oldest) */
	for (i = 0; i < l->nreq; i++)
		if (req && strcmp(l->req[i].name, req) == 0)
			break;
	if (i == l->nreq && l->nreq)
		i = 0;
	if (i < l->nreq) {
		an_sample(&a->rtt_lkd, t >= l->req[i].t ? t - l->req[i].t : 0);
		memmove(&l->req[i], &l->req[i + 1], sizeof(l->req[0]) * (l->nreq - i - 1));
		l->nreq--;
	}
	if (!req)
		return;
	if (strcmp(req, "QueryType") == 0) {
		const char *type = lkd_view_str(msg, "Type");
		d->querytype_replies++;
		if (!d->qtype.done) {
			an_span_end(&d->qtype, t, pkt);
			if (type)
				lp_sanitize_str(d->qtype_str, sizeof(d->qtype_str), type);
		}
	} else if (strcmp(req, "GetValue") == 0) {
		const char *key = lkd_view_str(msg, "Key");
		d->getvalues++;
		if (err)
			d->getvalue_errors++;
		if (code == LP_ELKD_GET_PROHIBITED && key && !d->pair.seen && !d->session.seen) {
			char k[48];
			size_t n = strlen(d->refused_keys);
			lp_sanitize_str(k, sizeof(k), key);
			if (!strstr(d->refused_keys, k) &&
			    n + strlen(k) + 3 < sizeof(d->refused_keys))
				snprintf(d->refused_keys + n, sizeof(d->refused_keys) - n, "%s%s",
					 n ? ", " : "", k);
		}
		if (!d->pair.seen && !d->session.seen)
			an_span_end(&d->info, t, pkt);
		if (key && strcmp(key, "UniqueDeviceID") == 0)
			copy_value(msg, d->udid, sizeof(d->udid));
		else if (key && strcmp(key, "ProductType") == 0)
			copy_value(msg, d->product_type, sizeof(d->product_type));
		else if (key && strcmp(key, "ProductVersion") == 0)
			copy_value(msg, d->product_version, sizeof(d->product_version));
		else if (key && strcmp(key, "DeviceName") == 0)
			copy_value(msg, d->name, sizeof(d->name));
	} else if (strcmp(req, "Pair") == 0) {
		an_span_end(&d->pair, t, pkt);
		if (!err) {
			d->pair_ok = true;
			d->pair_err = 0;
		} else {
			d->pair_err = code;
			if (code == LP_ELKD_PAIRING_DIALOG_PENDING)
				d->pair_pending++;
			else if (code == LP_ELKD_PASSWORD_PROTECTED)
				d->pair_locked++;
		}
	} else if (strcmp(req, "StartSession") == 0) {
		an_span_end(&d->session, t, pkt);
		if (err) {
			d->session_err = code;
			d->session_ok = false;
		} else {
			const char *sid = lkd_view_str(msg, "SessionID");
			d->session_ok = true;
			d->session_err = 0;
			d->session_ssl = lkd_view_bool(msg, "EnableSessionSSL", 0) != 0;
			if (sid)
				lp_sanitize_str(d->session_id, sizeof(d->session_id), sid);
		}
	} else if (strcmp(req, "StartService") == 0) {
		an_span_end(&d->service, t, pkt);
		if (err) {
			d->service_err = code;
		} else {
			uint64_t port = lkd_view_uint(msg, "Port", 0);
			d->service_port = (unsigned)(port & 0xffff);
			d->service_ok = true;
		}
	} else if (strcmp(req, "StopSession") == 0) {
		an_span_end(&d->stop, t, pkt);
		d->stop_ok = !err;
	}
}

static void tls_record(struct an *a, struct an_lkd *l, int dir, uint8_t ctype, uint64_t t)
{
	struct an_dev *d = l->d;

	switch (ctype) {
	case 22:
		l->t[dir].hs = true;
		if (dir == 1 && d->tls_state == AN_TLS_STARTED)
			d->tls_device_hs = true;
		break;
	case 20:
		l->t[dir].ccs = true;
		break;
	case 23:
		l->t[dir].app = true;
		l->t[dir].last_app_t = t;
		if (d->tls_state == AN_TLS_STARTED) {
			d->tls_state = AN_TLS_OK;
			an_span_end(&d->tls, t, a->cur_pkt);
			snprintf(d->tls_detail, sizeof(d->tls_detail),
				 "handshake done, application data flowing (%s first)",
				 dir ? "device" : "host");
		}
		break;
	case 21:
		l->t[dir].alert = true;
		if (d->tls_state == AN_TLS_STARTED) {
			d->tls_state = AN_TLS_FAILED;
			an_span_end(&d->tls, t, a->cur_pkt);
			snprintf(d->tls_detail, sizeof(d->tls_detail),
				 "%s sent a TLS alert during the handshake",
				 dir ? "device" : "host");
		} else if (d->tls_state == AN_TLS_OK && dir == 0 && !d->stop.done) {
			/* close_notify after the session: StopSession was answered */
			an_span_start(&d->stop, l->t[0].last_app_t, a->cur_pkt);
			an_span_end(&d->stop, t, a->cur_pkt);
			d->stop_inferred = true;
			d->stop_ok = true;
		}
		break;
	}
}

void an_lkd_event(struct an *a, const struct cap_event *ev)
{
	struct an_lkd *l = ev->conn->user;

	if (!l)
		return;
	switch (ev->type) {
	case CAP_EV_LOCKDOWN:
		if (ev->dir == 0)
			on_request(a, l, ev->u.view, ev->t);
		else
			on_reply(a, l, ev->u.view, ev->t);
		break;
	case CAP_EV_TLS_START:
		if (l->d->tls_state == AN_TLS_OK)
			break; /* a session restarted after StopSession: the first
				* one already showed the device accept the pairing */
		l->d->tls_state = AN_TLS_STARTED;
		l->d->tls_device_hs = false;
		l->d->tls.seen = false;
		l->d->tls.done = false;
		an_span_start(&l->d->tls, ev->t, ev->pkt);
		break;
	case CAP_EV_TLS_RECORD:
		tls_record(a, l, ev->dir, ev->u.tls_type, ev->t);
		break;
	default:
		break;
	}
}

void an_lkd_close(struct an *a, struct an_lkd *l, const struct cap_conn *c, uint64_t t)
{
	struct an_dev *d = l->d;

	if (!c->tls)
		return;
	if (d->tls_state == AN_TLS_STARTED) {
		/* the device ending the hello: a device whose trust was reset */
		d->tls_dev_reset = !l->t[1].hs && c->state == CAP_CONN_RESET_DEV;
		d->tls_state = AN_TLS_FAILED;
		an_span_end(&d->tls, t, a->cur_pkt);
		snprintf(d->tls_detail, sizeof(d->tls_detail), "%s during the TLS handshake%s",
			 d->tls_dev_reset ? "the device reset the connection" : "connection closed",
			 l->t[1].hs || d->tls_dev_reset ? "" : " (no answer from the device)");
	} else if (d->tls_state == AN_TLS_OK && !d->stop.done && !d->service.seen &&
		   c->state == CAP_CONN_RESET_DEV && !d->gone) {
		/* the device, still on the bus, reset the session before anything
		 * was done in it: with TLS 1.3 the host's handshake ends before the
		 * device judges the host certificate, and this is how it refuses */
		d->tls_state = AN_TLS_FAILED;
		d->tls.t1 = t;
		snprintf(d->tls_detail, sizeof(d->tls_detail),
			 "the device ended the session right after the handshake: it "
			 "did not accept the host certificate of the pair record");
	} else if (d->tls_state == AN_TLS_OK && !d->stop.done) {
		an_span_start(&d->stop, l->t[0].last_app_t ? l->t[0].last_app_t : t, a->cur_pkt);
		an_span_end(&d->stop, t, a->cur_pkt);
		d->stop_inferred = true;
		d->stop_ok = true;
	}
}

void an_lkd_service_conn(struct an_dev *d, uint16_t port, uint64_t t_syn, uint64_t t_open,
			 uint64_t pkt)
{
	if (d->tls_state != AN_TLS_OK || d->service.done)
		return;
	an_span_start(&d->service, t_syn, pkt);
	an_span_end(&d->service, t_open, pkt);
	d->service_port = port;
	d->service_ok = true;
	d->service_inferred = true;
}
