/* reader_lkd.c - lockdown on a connection to port 62078 (a mux connection or
 * a relayed usbmuxd socket after Connect), as the capture reader sees it.
 *
 * Both directions go through their own lkd_framer (4-byte BE length + plist);
 * each dictionary is a CAP_EV_LOCKDOWN event. After a device reply to
 * StartSession with EnableSessionSSL the next host byte must be a TLS
 * handshake record (0x16): then CAP_EV_TLS_START, and from then on only TLS
 * record headers are followed (content type, length; RFC 5246 6.2), one
 * CAP_EV_TLS_RECORD each. Nothing is decrypted.
 *
 * Session TLS can end without ending the connection (doc/protocol.md 4.10):
 * after StopSession each side sends close_notify and lockdown goes on in
 * plaintext - a plaintext StartSession may even start a second session. So a
 * direction goes back to framing where, at a record boundary, after an alert
 * or application data, the next byte is 0x00: no TLS record starts so (the
 * content types are 20-23), and every lockdown message does (its length
 * prefix is under the 4 MiB cap). With TLS 1.3 the alerts are encrypted,
 * hence application data counts too. Any other byte that starts no TLS record
 * is a protocol violation, as before.
 */
#include <stdio.h>
#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "src/capture/reader_int.h"

struct rd_lkd *rd_lkd_new(const struct cap_reader *r)
{
	struct rd_lkd *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->fr[0] = lkd_framer_new();
	l->fr[1] = lkd_framer_new();
	if (!l->fr[0] || !l->fr[1]) {
		rd_lkd_free(l);
		return NULL;
	}
	for (int d = 0; d < 2; d++)
		lkd_framer_top_keys(l->fr[d], r->lkd_keys);
	return l;
}

void rd_lkd_free(struct rd_lkd *l)
{
	if (!l)
		return;
	lkd_framer_free(l->fr[0]);
	lkd_framer_free(l->fr[1]);
	lkd_view_release(&l->view[0]);
	lkd_view_release(&l->view[1]);
	free(l);
}

static_assert(offsetof(struct rd_usb, pub) == 0, "rd_usb starts with its cap_usbdev");

/* Whose doing a broken message in direction `dir` is: on a connection whose
 * start the capture does not show, the framing may have begun mid-message. */
static enum cap_anomaly_kind lkd_kind(const struct rd_conn *c, int dir)
{
	/* an enumeration's public part is the first member of its rd_usb */
	if (c->orphan || (c->pub.usb && ((const struct rd_usb *)c->pub.usb)->clipped))
		return CAP_AK_CAPTURE;
	return dir ? CAP_AK_DEVICE : CAP_AK_HOST;
}

/* Follow TLS records in direction `dir`; returns how many of the n bytes
 * were TLS (fewer than n where the direction went back to plaintext). */
static size_t tls_feed(struct cap_reader *r, struct rd_conn *c, int dir, const uint8_t *p, size_t n)
{
	struct rd_lkd *l = c->lkd;
	struct rd_tls_dir *s = &l->t[dir];
	size_t n0 = n;

	while (n && !s->broken) {
		if (s->left == 0) {
			struct cap_event ev = {.type = CAP_EV_TLS_RECORD,
					       .conn = &c->pub,
					       .usb = c->pub.usb,
					       .dir = dir};
			size_t take;

			if (s->have == 0 && p[0] == 0x00 && (l->alerted || s->app)) {
				s->on = false; /* plaintext lockdown again */
				return n0 - n;
			}
			take = 5 - s->have;
			if (take > n)
				take = n;
			memcpy(s->hdr + s->have, p, take);
			s->have += take;
			p += take;
			n -= take;
			if (s->have < 5)
				return n0;
			s->have = 0;
			s->left = (size_t)s->hdr[3] << 8 | s->hdr[4];
			if (s->hdr[0] < 20 || s->hdr[0] > 23 || s->hdr[1] != 3 ||
			    s->left > CAP_RD_TLS_RECORD_MAX) {
				rd_anomaly_of(
					r, lkd_kind(c, dir), c->pub.usb, &c->pub,
					"packet %llu: %s bytes are not a TLS record (type %u, length %zu)",
					(unsigned long long)r->cur_pkt, dir ? "device" : "host",
					s->hdr[0], s->left);
				s->broken = true;
				return n0;
			}
			if (dir == 1 && s->hdr[0] == 22)
				c->pub.tls_dev_hs = true;
			if (s->hdr[0] == 21)
				l->alerted = true;
			else if (s->hdr[0] == 23)
				s->app = true;
			ev.u.tls_type = s->hdr[0];
			rd_emit(r, &ev);
			if (s->left == 0)
				continue;
		}
		size_t take = s->left < n ? s->left : n;
		p += take;
		n -= take;
		s->left -= take;
	}
	return n0;
}

/* One message, whole (plist) or viewed. */
struct rd_msg {
	plist_t pl;
	const struct lkd_view *v;
};

static const char *msg_str(const struct rd_msg *m, const char *key)
{
	return m->v ? lkd_view_str(m->v, key) : lkd_dict_str(m->pl, key);
}

/* A device reply that switches the connection to TLS. */
static bool starts_tls(const struct rd_msg *m)
{
	const char *req = msg_str(m, "Request");

	return req && !strcmp(req, "StartSession") && !msg_str(m, "Error") &&
	       (m->v ? lkd_view_bool(m->v, "EnableSessionSSL", 0)
		     : lkd_dict_bool(m->pl, "EnableSessionSSL", 0)) != 0;
}

static void framer_feed(struct cap_reader *r, struct rd_conn *c, int dir, const uint8_t *buf,
			size_t len)
{
	struct rd_lkd *l = c->lkd;
	bool view = r->lkd_keys[0] != NULL;
	int rc;

	if (l->dead[dir])
		return;
	rc = lkd_framer_feed(l->fr[dir], buf, len);
	for (;;) {
		struct cap_event ev = {
			.type = CAP_EV_LOCKDOWN, .conn = &c->pub, .usb = c->pub.usb, .dir = dir};
		struct rd_msg m = {NULL, view ? &l->view[dir] : NULL};
		if (rc == 0)
			rc = view ? lkd_framer_next_view(l->fr[dir], &l->view[dir])
				  : lkd_framer_next(l->fr[dir], &m.pl, NULL, NULL);
		if (rc == LP_EAGAIN)
			return;
		if (rc == LP_EPLIST) {
			rd_anomaly_of(r, lkd_kind(c, dir), c->pub.usb, &c->pub,
				      "packet %llu: %s lockdown message is not a plist dictionary",
				      (unsigned long long)r->cur_pkt, dir ? "device" : "host");
			rc = 0;
			continue;
		}
		if (rc) {
			rd_anomaly_of(
				r, lkd_kind(c, dir), c->pub.usb, &c->pub,
				"packet %llu: %s lockdown stream unusable (%s): length prefix over %u bytes?",
				(unsigned long long)r->cur_pkt, dir ? "device" : "host",
				lp_errname(rc), LKD_MAX_MESSAGE);
			l->dead[dir] = true;
			return;
		}
		if (view || plist_get_node_type(m.pl) == PLIST_DICT) {
			const char *req = msg_str(&m, "Request");
			if (dir == 0) {
				const char *q = req ? req : "?";
				size_t n = strnlen(q, sizeof(l->last_request) - 1);

				l->unanswered++;
				memcpy(l->last_request, q, n); /* snprintf() cost 2 % */
				l->last_request[n] = '\0';
			} else if (l->unanswered) {
				l->unanswered--;
			}
			if (view)
				ev.u.view = m.v;
			else
				ev.u.msg = m.pl;
			rd_emit(r, &ev);
			if (dir == 1 && starts_tls(&m))
				l->ssl_expected = true;
		}
		plist_free(m.pl);
		if (!c->lkd)
			return; /* the consumer's handler cannot close it, but be safe */
	}
}

void rd_lkd_feed(struct cap_reader *r, struct rd_conn *c, int dir, const uint8_t *buf, size_t len)
{
	struct rd_lkd *l = c->lkd;

	if (!len || !l)
		return;
	if (!l->t[0].on && l->ssl_expected && dir == 0) {
		l->ssl_expected = false;
		if (buf[0] == 0x16) {
			struct cap_event ev = {
				.type = CAP_EV_TLS_START, .conn = &c->pub, .usb = c->pub.usb};
			/* both ways: the device's reply was its last plaintext */
			memset(l->t, 0, sizeof(l->t));
			l->t[0].on = l->t[1].on = true;
			l->alerted = false;
			c->pub.tls = true;
			rd_emit(r, &ev);
		} else {
			rd_anomaly_of(
				r, CAP_AK_HOST, c->pub.usb, &c->pub,
				"packet %llu: EnableSessionSSL was true but the host went on in plaintext",
				(unsigned long long)r->cur_pkt);
		}
	}
	if (l->t[dir].on) {
		size_t n = tls_feed(r, c, dir, buf, len);

		if (!c->lkd || n == len)
			return;
		buf += n;
		len -= n;
	}
	framer_feed(r, c, dir, buf, len);
}
