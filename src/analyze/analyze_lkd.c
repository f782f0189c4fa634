/* analyze_lkd.c - passive lockdown decoding for the capture analyzer.
 *
 * Both directions of one lockdown connection (a mux connection to port
 * 62078 or a relayed usbmuxd socket after Connect) go through their own
 * lkd_framer (4-byte BE length + plist). Requests are matched to replies by
 * the echoed "Request" key (FIFO per connection) for latency; facts land in
 * the device (struct an_dev): QueryType, GetValue keys, the Trust-dialog
 * pattern (Pair -> PairingDialogResponsePending repeated -> success /
 * UserDeniedPairing / PasswordProtected), StartSession and EnableSessionSSL.
 *
 * After a StartSession reply with EnableSessionSSL the next host byte must
 * be a TLS handshake record (0x16): from then on only TLS record headers are
 * followed (content type, length): handshake, alert, application data. The
 * session is up at the first application data; an alert or a close before
 * that is a failed handshake. StartService and StopSession run inside TLS
 * and are inferred: a service connection opened after TLS, the connection
 * closed after it. Reference: protocol-notes.md 4.1-4.10; RFC 5246 6.2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/analyze/analyze_int.h"
#include "src/base/lp_str.h"

struct an_lkd *an_lkd_new(struct an *a, struct an_dev *d)
{
	struct an_lkd *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->a = a;
	l->d = d;
	l->fr[0] = lkd_framer_new();
	l->fr[1] = lkd_framer_new();
	if (!l->fr[0] || !l->fr[1]) {
		an_lkd_free(l);
		return NULL;
	}
	d->lkd_conns++;
	return l;
}

void an_lkd_free(struct an_lkd *l)
{
	if (!l)
		return;
	lkd_framer_free(l->fr[0]);
	lkd_framer_free(l->fr[1]);
	free(l);
}

static void span_start(struct an_span *s, uint64_t t, uint64_t pkt)
{
	if (!s->seen) {
		s->seen = true;
		s->t0 = t;
		s->pkt0 = pkt;
	}
}

static void span_end(struct an_span *s, uint64_t t, uint64_t pkt)
{
	if (!s->seen)
		span_start(s, t, pkt);
	s->done = true;
	s->t1 = t;
	s->pkt1 = pkt;
}

static void copy_value(plist_t msg, char *dst, size_t n)
{
	plist_t v = plist_dict_get_item(msg, "Value");
	char *s = NULL;

	if (!v || plist_get_node_type(v) != PLIST_STRING)
		return;
	plist_get_string_val(v, &s);
	if (s)
		lp_sanitize_str(dst, n, s);
	free(s);
}

static void on_request(struct an_lkd *l, plist_t msg, uint64_t t)
{
	struct an_dev *d = l->d;
	uint64_t pkt = l->a->cur_pkt;
	const char *req = lkd_dict_str(msg, "Request");

	d->lkd_requests++;
	if (!req) {
		an_anomaly_add(l->a, "packet %llu: lockdown request without a Request key",
			       (unsigned long long)pkt);
		return;
	}
	if (l->nreq == AN_REQ_FIFO) {
		memmove(&l->req[0], &l->req[1], sizeof(l->req[0]) * (AN_REQ_FIFO - 1));
		l->nreq--;
	}
	snprintf(l->req[l->nreq].name, sizeof(l->req[0].name), "%s", req);
	l->req[l->nreq].t = t;
	l->nreq++;

	if (strcmp(req, "QueryType") == 0) {
		span_start(&d->qtype, t, pkt);
		d->querytypes++;
	} else if (strcmp(req, "GetValue") == 0) {
		span_start(&d->info, t, pkt);
	} else if (strcmp(req, "Pair") == 0) {
		span_start(&d->pair, t, pkt);
		d->pair_tries++;
	} else if (strcmp(req, "StartSession") == 0) {
		span_start(&d->session, t, pkt);
	} else if (strcmp(req, "StartService") == 0) {
		const char *svc = lkd_dict_str(msg, "Service");
		span_start(&d->service, t, pkt);
		if (svc)
			lp_sanitize_str(d->service_name, sizeof(d->service_name), svc);
	} else if (strcmp(req, "StopSession") == 0) {
		span_start(&d->stop, t, pkt);
	}
}

static void on_reply(struct an_lkd *l, plist_t msg, uint64_t t)
{
	struct an_dev *d = l->d;
	uint64_t pkt = l->a->cur_pkt;
	const char *req = lkd_dict_str(msg, "Request");
	const char *err = lkd_dict_str(msg, "Error");
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
		an_sample(&l->a->rtt_lkd, t >= l->req[i].t ? t - l->req[i].t : 0);
		memmove(&l->req[i], &l->req[i + 1], sizeof(l->req[0]) * (l->nreq - i - 1));
		l->nreq--;
	}
	if (!req)
		return;
	if (strcmp(req, "QueryType") == 0) {
		const char *type = lkd_dict_str(msg, "Type");
		if (!d->qtype.done) {
			span_end(&d->qtype, t, pkt);
			if (type)
				lp_sanitize_str(d->qtype_str, sizeof(d->qtype_str), type);
		}
	} else if (strcmp(req, "GetValue") == 0) {
		const char *key = lkd_dict_str(msg, "Key");
		d->getvalues++;
		if (err)
			d->getvalue_errors++;
		if (!d->pair.seen && !d->session.seen)
			span_end(&d->info, t, pkt);
		if (key && strcmp(key, "UniqueDeviceID") == 0)
			copy_value(msg, d->udid, sizeof(d->udid));
		else if (key && strcmp(key, "ProductType") == 0)
			copy_value(msg, d->product_type, sizeof(d->product_type));
		else if (key && strcmp(key, "ProductVersion") == 0)
			copy_value(msg, d->product_version, sizeof(d->product_version));
		else if (key && strcmp(key, "DeviceName") == 0)
			copy_value(msg, d->name, sizeof(d->name));
	} else if (strcmp(req, "Pair") == 0) {
		span_end(&d->pair, t, pkt);
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
		span_end(&d->session, t, pkt);
		if (err) {
			d->session_err = code;
			d->session_ok = false;
		} else {
			const char *sid = lkd_dict_str(msg, "SessionID");
			d->session_ok = true;
			d->session_err = 0;
			d->session_ssl = lkd_dict_bool(msg, "EnableSessionSSL", 0) != 0;
			if (sid)
				lp_sanitize_str(d->session_id, sizeof(d->session_id), sid);
			if (d->session_ssl)
				l->ssl_expected = true;
		}
	} else if (strcmp(req, "StartService") == 0) {
		span_end(&d->service, t, pkt);
		if (err) {
			d->service_err = code;
		} else {
			plist_t p = plist_dict_get_item(msg, "Port");
			uint64_t port = 0;
			if (p && plist_get_node_type(p) == PLIST_UINT)
				plist_get_uint_val(p, &port);
			d->service_port = (unsigned)(port & 0xffff);
			d->service_ok = true;
		}
	} else if (strcmp(req, "StopSession") == 0) {
		span_end(&d->stop, t, pkt);
		d->stop_ok = !err;
	}
}

static void tls_record(struct an_lkd *l, int dir, uint8_t ctype, uint64_t t)
{
	struct an_dev *d = l->d;

	switch (ctype) {
	case 22:
		l->t[dir].hs = true;
		break;
	case 20:
		l->t[dir].ccs = true;
		break;
	case 23:
		l->t[dir].app = true;
		l->t[dir].last_app_t = t;
		if (d->tls_state == TLS_STARTED) {
			d->tls_state = TLS_OK;
			span_end(&d->tls, t, l->a->cur_pkt);
			snprintf(d->tls_detail, sizeof(d->tls_detail),
				 "handshake done, application data flowing (%s first)",
				 dir ? "device" : "host");
		}
		break;
	case 21:
		l->t[dir].alert = true;
		if (d->tls_state == TLS_STARTED) {
			d->tls_state = TLS_FAILED;
			span_end(&d->tls, t, l->a->cur_pkt);
			snprintf(d->tls_detail, sizeof(d->tls_detail), "%s sent a TLS alert during the handshake",
				 dir ? "device" : "host");
		} else if (d->tls_state == TLS_OK && dir == 0 && !d->stop.done) {
			/* close_notify after the session: StopSession was answered */
			span_start(&d->stop, l->t[0].last_app_t, l->a->cur_pkt);
			span_end(&d->stop, t, l->a->cur_pkt);
			d->stop_inferred = true;
			d->stop_ok = true;
		}
		break;
	}
}

/* Follow TLS record headers in one direction. */
static void tls_feed(struct an_lkd *l, int dir, const uint8_t *p, size_t n, uint64_t t)
{
	struct an_tls_dir *s = &l->t[dir];

	while (n && !s->broken) {
		if (s->left == 0) {
			size_t take = 5 - s->have;
			if (take > n)
				take = n;
			memcpy(s->hdr + s->have, p, take);
			s->have += take;
			p += take;
			n -= take;
			if (s->have < 5)
				return;
			s->have = 0;
			s->ctype = s->hdr[0];
			s->left = (size_t)s->hdr[3] << 8 | s->hdr[4];
			if (s->ctype < 20 || s->ctype > 23 || s->hdr[1] != 3 || s->left > AN_TLS_RECORD_MAX) {
				an_anomaly_add(l->a, "packet %llu: %s bytes are not a TLS record (type %u, length %zu)",
					       (unsigned long long)l->a->cur_pkt, dir ? "device" : "host",
					       s->ctype, s->left);
				s->broken = true;
				return;
			}
			tls_record(l, dir, s->ctype, t);
			if (s->left == 0)
				continue;
		}
		size_t take = s->left < n ? s->left : n;
		p += take;
		n -= take;
		s->left -= take;
	}
}

static void framer_feed(struct an_lkd *l, int dir, const uint8_t *buf, size_t len, uint64_t t)
{
	int r;

	if (l->dead[dir])
		return;
	r = lkd_framer_feed(l->fr[dir], buf, len);
	for (;;) {
		plist_t msg = NULL;
		if (r == 0)
			r = lkd_framer_next(l->fr[dir], &msg, NULL, NULL);
		if (r == LP_EAGAIN)
			return;
		if (r == LP_EPLIST) {
			an_anomaly_add(l->a, "packet %llu: %s lockdown message is not a plist dictionary",
				       (unsigned long long)l->a->cur_pkt, dir ? "device" : "host");
			r = 0;
			continue;
		}
		if (r) {
			an_anomaly_add(l->a, "packet %llu: %s lockdown stream unusable (%s): length prefix over %u bytes?",
				       (unsigned long long)l->a->cur_pkt, dir ? "device" : "host", lp_errname(r),
				       LKD_MAX_MESSAGE);
			l->dead[dir] = true;
			return;
		}
		if (plist_get_node_type(msg) == PLIST_DICT) {
			if (dir == 0)
				on_request(l, msg, t);
			else
				on_reply(l, msg, t);
		}
		plist_free(msg);
	}
}

void an_lkd_feed(struct an_lkd *l, int dir, const uint8_t *buf, size_t len, uint64_t t)
{
	if (!len)
		return;
	if (!l->tls && l->ssl_expected && dir == 0) {
		if (buf[0] == 0x16) {
			l->tls = true;
			l->d->tls_state = TLS_STARTED;
			l->d->tls.seen = false;
			l->d->tls.done = false;
			span_start(&l->d->tls, t, l->a->cur_pkt);
		} else {
			an_anomaly_add(l->a, "packet %llu: EnableSessionSSL was true but the host went on in plaintext",
				       (unsigned long long)l->a->cur_pkt);
			l->ssl_expected = false;
		}
	}
	if (l->tls)
		tls_feed(l, dir, buf, len, t);
	else
		framer_feed(l, dir, buf, len, t);
}

void an_lkd_close(struct an_lkd *l, uint64_t t)
{
	struct an_dev *d = l->d;

	if (!l->tls)
		return;
	if (d->tls_state == TLS_STARTED) {
		d->tls_state = TLS_FAILED;
		span_end(&d->tls, t, l->a->cur_pkt);
		snprintf(d->tls_detail, sizeof(d->tls_detail), "connection closed during the TLS handshake%s",
			 l->t[1].hs ? "" : " (no answer from the device)");
	} else if (d->tls_state == TLS_OK && !d->stop.done) {
		span_start(&d->stop, l->t[0].last_app_t ? l->t[0].last_app_t : t, l->a->cur_pkt);
		span_end(&d->stop, t, l->a->cur_pkt);
		d->stop_inferred = true;
		d->stop_ok = true;
	}
}

void an_lkd_service_conn(struct an_dev *d, uint16_t port, uint64_t t_syn, uint64_t t_open, uint64_t pkt)
{
	if (d->tls_state != TLS_OK || d->service.done)
		return;
	span_start(&d->service, t_syn, pkt);
	span_end(&d->service, t_open, pkt);
	d->service_port = port;
	d->service_ok = true;
	d->service_inferred = true;
}
