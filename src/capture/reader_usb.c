/* reader_usb.c - the capture reader's USB layers: usbmon (link types 220,
 * 189) and USBPcap (249) records -> transfers -> enumerations, control
 * exchanges, usbmux packets and connections.
 *
 * Records are decoded into URB records by reader_urb.c, or come from another
 * source through cap_reader_transfer(). usbmux runs on the bulk endpoints of
 * the ff/fe/02 interface: from the configuration descriptor; else found by a
 * bulk OUT whose first bytes are a VERSION packet; else (a capture started
 * mid-session: neither in it) recognised from the packets' shape (below,
 * "usbmux recognised by its shape"). Each direction goes through
 * struct mux_rx (proto/mux.h), with its one bad-length policy: every host
 * OUT transfer is a whole transfer; a device IN transfer ends the sender's
 * transfer when it is shorter than requested. "Several packets in one
 * transfer" is not reported here (captures of real hosts show it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/capture/reader_int.h"
#include "usb/cap_usbmon.h"

#define MUX_VERSION_PKT_LEN 20 /* 8-byte header + major, minor, padding */

static uint32_t rd_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint16_t rd_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static const char *dir_name(int dir)
{
	return dir ? "device" : "host";
}

/* Whose doing a malformed usbmux packet in direction `dir` of `u` is: after
 * a clipped record its packets may start mid-stream. */
static enum cap_anomaly_kind dir_kind(const struct rd_usb *u, int dir)
{
	if (u->clipped)
		return CAP_AK_CAPTURE;
	return dir ? CAP_AK_DEVICE : CAP_AK_HOST;
}

/* --- enumerations -------------------------------------------------------------- */

static struct rd_usb *usb_get(struct cap_reader *r, uint16_t bus, uint8_t addr, uint64_t t)
{
	struct cap_event ev = {.type = CAP_EV_USB_NEW};
	struct rd_usb *u;

	/* the latest enumeration at this address: an address reused after a
	 * disconnect is a new enumeration */
	for (size_t i = r->nusb; i-- > 0;) {
		u = r->usb[i];
		if (u->pub.bus == bus && u->pub.addr == addr) {
			/* usbmon: completions of a gone device trail in for a while; a bus
			 * capture says exactly when the address was given again */
			if (!u->pub.gone || (!r->bus && t <= u->pub.last_t + LP_NS_PER_S))
				return u;
			break;
		}
	}
	if (r->nusb == CAP_RD_MAX_USB) {
		if (!r->usb_overflow_noted)
			rd_anomaly(r,
				   "packet %llu: more than %d USB enumerations; later ones ignored",
				   (unsigned long long)r->cur_pkt, CAP_RD_MAX_USB);
		r->usb_overflow_noted = true;
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->pub.index = (unsigned)r->nusb;
	u->pub.bus = bus;
	u->pub.addr = addr;
	u->pub.first_t = t;
	u->pub.sel_config = -1;
	r->usb[r->nusb++] = u;
	ev.usb = &u->pub;
	rd_emit(r, &ev);
	return u;
}

static void shape_free(struct rd_usb *u);

void rd_usb_free(struct rd_usb *u)
{
	if (!u)
		return;
	shape_free(u);
	for (size_t i = 0; i < CAP_RD_MAX_CONNS; i++)
		if (u->conns[i].used)
			rd_lkd_free(u->conns[i].lkd);
	mux_rx_reset(&u->rx[0]);
	mux_rx_reset(&u->rx[1]);
	free(u);
}

/* The usbmux endpoints: of the selected configuration, else the first
 * configuration that offers the interface. */
static void update_mux_eps(struct rd_usb *u)
{
	struct cap_usbdev *p = &u->pub;

	for (unsigned i = 0; i < p->ncfg; i++) {
		uint8_t in, out;
		uint16_t mps;
		const struct usbd_interface *itf = usbd_find_usbmux(&p->cfg[i], &in, &out, &mps);
		if (!itf)
			continue;
		if (!u->eps_from_desc ||
		    (p->sel_config >= 0 && p->cfg[i].bConfigurationValue == p->sel_config)) {
			p->ep_in = in;
			p->ep_out = out;
			p->mps = mps;
			p->mux_config = p->cfg[i].bConfigurationValue;
			p->mux_iface = itf->bInterfaceNumber;
			p->eps_known = true;
			p->mux_by_shape = false;
			u->eps_from_desc = true;
			shape_free(u);
		}
	}
}

/* Decode what a control exchange tells about the device; true when a
 * descriptor was stored. */
static bool control_parse(struct cap_reader *r, struct rd_usb *u, const uint8_t setup[8],
			  const struct rd_urb *c)
{
	struct cap_usbdev *p = &u->pub;
	uint8_t rt = setup[0], req = setup[1];
	uint16_t wvalue = rd_le16(setup + 2);
	int rc;

	if (c->status != 0)
		return false;
	if (rt == 0x80 && req == USBD_REQ_GET_DESCRIPTOR) {
		uint8_t type = wvalue >> 8, idx = wvalue & 0xff;
		if (type == USBD_DT_DEVICE) {
			rc = usbd_parse_device(c->data, c->data_len, &p->dd);
			if (rc == 0) {
				p->have_dd = true;
				return true;
			} else if (c->data_len >= 8 && rc == LP_ETRUNC) {
				/* the 8-byte first read of enumeration: nothing to learn */
			} else {
				rd_anomaly_of(r, CAP_AK_DEVICE, &u->pub, NULL,
					      "packet %llu: device descriptor undecodable (%s)",
					      (unsigned long long)c->pkt, lp_errname(rc));
			}
		} else if (type == USBD_DT_CONFIG) {
			struct usbd_config cfg;
			rc = usbd_parse_config(c->data, c->data_len, &cfg);
			if (rc == 0) {
				unsigned i;
				for (i = 0; i < p->ncfg; i++)
					if (p->cfg[i].bConfigurationValue ==
					    cfg.bConfigurationValue)
						break;
				if (i < USBD_MAX_CONFIGS) {
					p->cfg[i] = cfg;
					if (i == p->ncfg)
						p->ncfg++;
				}
				update_mux_eps(u);
				return true;
			} else if (rc != LP_ETRUNC) {
				rd_anomaly_of(
					r, CAP_AK_DEVICE, &u->pub, NULL,
					"packet %llu: configuration descriptor undecodable (%s)",
					(unsigned long long)c->pkt, lp_errname(rc));
			}
		} else if (type == USBD_DT_BOS) {
			if (usbd_parse_bos(c->data, c->data_len, &p->bos) == 0) {
				p->have_bos = true;
				return true;
			}
		} else if (type == USBD_DT_STRING && idx > 0 && idx < CAP_RD_STRINGS) {
			return usbd_parse_string(c->data, c->data_len, p->str[idx],
						 sizeof(p->str[idx])) == 0;
		}
	} else if (rt == 0x00 && req == USBD_REQ_SET_CONFIGURATION) {
		p->sel_config = wvalue & 0xff;
		update_mux_eps(u);
	}
	return false;
}

/* --- usbmux ---------------------------------------------------------------- */

static struct rd_conn *conn_find(struct rd_usb *u, uint16_t hport, uint16_t dport)
{
	for (size_t i = 0; i < CAP_RD_MAX_CONNS; i++)
		if (u->conns[i].used && u->conns[i].pub.hport == hport &&
		    u->conns[i].pub.dport == dport)
			return &u->conns[i];
	return NULL;
}

static struct rd_conn *conn_new(struct cap_reader *r, struct rd_usb *u, uint16_t hport,
				uint16_t dport)
{
	for (size_t i = 0; i < CAP_RD_MAX_CONNS; i++) {
		struct rd_conn *c = &u->conns[i];
		if (!c->used) {
			memset(c, 0, sizeof(*c));
			c->used = true;
			c->pub.usb = &u->pub;
			c->pub.hport = hport;
			c->pub.dport = dport;
			c->pub.lockdown = dport == MUX_PORT_LOCKDOWN;
			return c;
		}
	}
	if (!u->conn_overflow_noted)
		rd_anomaly(r, "packet %llu: more than %d open mux connections; later ones ignored",
			   (unsigned long long)r->cur_pkt, CAP_RD_MAX_CONNS);
	u->conn_overflow_noted = true;
	return NULL;
}

static void lockdown_start(const struct cap_reader *r, struct rd_conn *c)
{
	if (c->pub.lockdown && !c->lkd)
		c->lkd = rd_lkd_new(r);
}

static void mux_tcp(struct cap_reader *r, struct rd_usb *u, int dir, const struct mux_packet *mp)
{
	uint16_t hport = dir ? mp->dport : mp->sport, dport = dir ? mp->sport : mp->dport;
	struct rd_conn *c = conn_find(u, hport, dport);
	uint64_t t = r->cur_t;
	uint8_t f = mp->flags;

	if (dir == 0 && (f & MUX_TH_SYN) && !(f & MUX_TH_ACK)) {
		if (c)
			rd_conn_event(r, c, c->pub.state, t, true);
		c = conn_new(r, u, hport, dport);
		if (!c)
			return;
		c->pub.t_syn = t;
		rd_conn_event(r, c, CAP_CONN_SYN, t, false);
		return;
	}
	if (!c) {
		/* a reset, or a bare ACK (the device acknowledging what the host
		 * sent before its RST crossed): nothing opened here. A connection
		 * open before the capture started shows with its first data. */
		if ((f & MUX_TH_RST) || (!mp->payload_len && !(f & MUX_TH_SYN)))
			return;
		if (dir == 1 && (f & MUX_TH_SYN)) {
			/* a SYN+ACK answers a SYN the capture does not show (it
			 * started later, or the host's packet was unreadable) */
			rd_anomaly_of(r, (f & MUX_TH_ACK) ? CAP_AK_CAPTURE : CAP_AK_DEVICE, &u->pub,
				      NULL,
				      "packet %llu: device opened a connection (SYN from port %u)",
				      (unsigned long long)r->cur_pkt, mp->sport);
			return;
		}
		c = conn_new(r, u, hport, dport);
		if (!c)
			return;
		c->pub.t_syn = t;
		c->orphan = true;
		lockdown_start(r, c);
		rd_conn_event(r, c, CAP_CONN_ORPHAN, t, false);
	}
	if (dir == 1 && (f & MUX_TH_SYN) && (f & MUX_TH_ACK) && c->pub.state == CAP_CONN_SYN) {
		c->pub.t_open = t;
		lockdown_start(r, c);
		rd_conn_event(r, c, CAP_CONN_OPEN, t, false);
		return;
	}
	if (f & MUX_TH_RST) {
		if (dir == 1 && c->pub.state == CAP_CONN_SYN)
			rd_conn_event(r, c, CAP_CONN_REFUSED, t, true);
		else
			rd_conn_event(r, c, dir ? CAP_CONN_RESET_DEV : CAP_CONN_RESET_HOST, t,
				      true);
		return;
	}
	if (mp->payload_len) {
		struct cap_event ev = {
			.type = CAP_EV_DATA, .usb = &u->pub, .conn = &c->pub, .dir = dir};
		c->pub.bytes[dir] += mp->payload_len;
		c->pub.packets[dir]++;
		ev.u.mux.payload_len = mp->payload_len;
		rd_emit(r, &ev);
		if (c->lkd)
			rd_lkd_feed(r, c, dir, mp->payload, mp->payload_len);
	}
}

struct rd_rxctx {
	struct cap_reader *r;
	struct rd_usb *u;
	int dir;
};

static void mux_packet(void *ud, const uint8_t *p, size_t n, bool spanned)
{
	struct rd_rxctx *x = ud;
	struct cap_reader *r = x->r;
	struct rd_usb *u = x->u;
	struct cap_event ev = {.type = CAP_EV_MUX, .usb = &u->pub, .dir = x->dir};
	struct mux_packet mp;
	uint32_t proto = rd_be32(p), ver;
	int rc;

	(void)spanned;
	ev.u.mux.protocol = proto;
	if (proto == MUX_PROTO_VERSION) {
		rc = mux_decode(p, n, 1, &mp);
		ev.u.mux.ok = !rc && mp.payload_len >= 8;
		if (ev.u.mux.ok && x->dir == 1)
			ev.u.mux.major = rd_be32(mp.payload);
		rd_emit(r, &ev);
		if (!ev.u.mux.ok) {
			rd_anomaly_of(r, dir_kind(u, x->dir), &u->pub, NULL,
				      "packet %llu: %s usbmux VERSION packet malformed",
				      (unsigned long long)r->cur_pkt, dir_name(x->dir));
		} else if (x->dir == 1) {
			if (ev.u.mux.major == 1 || ev.u.mux.major == 2)
				u->pub.mux_version = ev.u.mux.major;
			else
				rd_anomaly_of(r, CAP_AK_DEVICE, &u->pub, NULL,
					      "packet %llu: device answered usbmux VERSION %u",
					      (unsigned long long)r->cur_pkt, ev.u.mux.major);
		}
		return;
	}
	ver = u->pub.mux_version;
	if (!ver) {
		ver = n >= 12 && rd_be32(p + 8) == MUX_V2_MAGIC ? 2 : 1;
		/* a capture that starts mid-session has no VERSION: no anomaly,
		 * unless it shows the host selecting the configuration (then
		 * VERSION must follow in it) */
		if (!u->ver_guess_noted && u->pub.sel_config >= 0 && !u->pub.mux_by_shape)
			rd_anomaly(
				r,
				"packet %llu: usbmux VERSION exchange not in the capture; header v%u assumed",
				(unsigned long long)r->cur_pkt, ver);
		u->ver_guess_noted = true;
		u->pub.mux_version = ver;
		ev.u.mux.guessed = true;
	}
	rc = mux_decode(p, n, ver, &mp);
	ev.u.mux.ok = rc == 0;
	ev.u.mux.payload_len = rc ? 0 : mp.payload_len;
	rd_emit(r, &ev);
	if (rc) {
		rd_anomaly_of(r, dir_kind(u, x->dir), &u->pub, NULL,
			      "packet %llu: %s usbmux packet undecodable (%s)",
			      (unsigned long long)r->cur_pkt, dir_name(x->dir), lp_errname(rc));
		return;
	}
	if (proto == MUX_PROTO_TCP)
		mux_tcp(r, u, x->dir, &mp);
	else if (proto == MUX_PROTO_CONTROL)
		rd_anomaly_of(r, CAP_AK_INFO, &u->pub, NULL,
			      "packet %llu: device sent a usbmux CONTROL message (%zu bytes)",
			      (unsigned long long)r->cur_pkt, mp.payload_len);
}

static void mux_problem(void *ud, int err, uint32_t length, size_t dropped)
{
	struct rd_rxctx *x = ud;
	struct cap_reader *r = x->r;

	if (err == LP_ETOOBIG || err == LP_EBADMSG)
		rd_anomaly_of(
			r, dir_kind(x->u, x->dir), &x->u->pub, NULL,
			"packet %llu: %s usbmux length field %u out of range; %zu bytes dropped",
			(unsigned long long)r->cur_pkt, dir_name(x->dir), length, dropped);
	else if (err == LP_ETRUNC)
		rd_anomaly_of(
			r, dir_kind(x->u, x->dir), &x->u->pub, NULL,
			"packet %llu: %s usbmux packet announced as %u bytes cut after %zu by a "
			"new packet",
			(unsigned long long)r->cur_pkt, dir_name(x->dir), length, dropped);
}

static const struct mux_rx_cbs rd_rx_cbs = {.on_packet = mux_packet, .on_problem = mux_problem};

static void mux_bytes(struct cap_reader *r, struct rd_usb *u, int dir, const struct rd_urb *x,
		      bool end)
{
	struct rd_rxctx ctx = {r, u, dir};

	u->rx[dir].hdr_version = u->pub.mux_version;
	mux_rx_feed(&u->rx[dir], x->data, x->data_len, end, &rd_rx_cbs, &ctx);
	if (x->clipped)
		mux_rx_reset(&u->rx[dir]);
}

static bool looks_like_version(const uint8_t *p, size_t n)
{
	return n >= MUX_VERSION_PKT_LEN && rd_be32(p) == MUX_PROTO_VERSION &&
	       rd_be32(p + 4) == MUX_VERSION_PKT_LEN;
}

/* --- usbmux recognised by its shape ------------------------------------------
 *
 * A capture started after the device was plugged in has no descriptors
 * (usbmon shows them only at enumeration: libusb reads them from sysfs), and
 * one started after the host's usbmux came up no VERSION: the endpoints are
 * recognised from the packets. A candidate is a bulk transfer that holds
 * exactly one whole usbmux packet (mux_shape(): a protocol legal in its
 * direction, the length field equal to the transfer's length, one header
 * version, a sane TCP header). The endpoints are taken once one OUT endpoint
 * gave RD_SHAPE_OUT candidates in a row and one IN endpoint RD_SHAPE_IN, all
 * of one header version, the host's version-2 tx_seq counting up by one;
 * anything else on a candidate endpoint ends its run, so other bulk traffic
 * (storage, audio, a modem) is not taken for usbmux. The run's transfers are
 * kept (RD_SHAPE_KEEP, RD_SHAPE_KEEP_BYTES) and decoded when the endpoints
 * are known, with their own packet numbers and times: the connection the run
 * opened is not lost (its events come a few packets late). */

/* Drop the kept candidates of direction `dir` (-1: both). */
static void shape_drop(struct rd_shape *s, int dir)
{
	size_t k = 0;

	for (size_t i = 0; i < s->nq; i++) {
		if (dir < 0 || s->q[i].dir == dir) {
			s->bytes -= s->q[i].len;
			free(s->q[i].data);
		} else {
			s->q[k++] = s->q[i];
		}
	}
	s->nq = k;
}

static void shape_free(struct rd_usb *u)
{
	if (!u->shape)
		return;
	shape_drop(u->shape, -1);
	free(u->shape);
	u->shape = NULL;
}

static void shape_restart(struct rd_shape *s, int dir, uint8_t ep)
{
	shape_drop(s, dir);
	s->run[dir] = 0;
	s->lost[dir] = 0;
	s->ep[dir] = ep;
	if (dir == 1)
		s->cont = 0;
}

static void mux_bytes(struct cap_reader *r, struct rd_usb *u, int dir, const struct rd_urb *x,
		      bool end);

static void shape_recognised(struct cap_reader *r, struct rd_usb *u)
{
	struct rd_shape *s = u->shape;
	uint64_t pkt = r->cur_pkt, t = r->cur_t;

	u->pub.ep_out = s->ep[0];
	u->pub.ep_in = s->ep[1];
	u->pub.mux_by_shape = true;
	if (s->lost[0] + s->lost[1])
		rd_anomaly(r,
			   "packet %llu: usbmux recognised on %u.%u (endpoints 0x%02x/0x%02x); "
			   "%llu earlier packet(s) on them not kept, not decoded",
			   (unsigned long long)pkt, u->pub.bus, u->pub.addr, s->ep[0], s->ep[1],
			   (unsigned long long)(s->lost[0] + s->lost[1]));
	for (size_t i = 0; i < s->nq; i++) {
		const struct rd_shape_rec *q = &s->q[i];
		struct rd_urb x = {.data = q->data, .data_len = q->len};
		r->cur_pkt = q->pkt;
		r->cur_t = q->t;
		mux_bytes(r, u, q->dir, &x, q->end);
	}
	r->cur_pkt = pkt;
	r->cur_t = t;
	shape_free(u);
}

/* Keep a candidate transfer for decoding once recognised (or count it lost). */
static void shape_keep(struct cap_reader *r, struct rd_shape *s, int dir, const struct rd_urb *x,
		       bool end)
{
	struct rd_shape_rec *q = &s->q[s->nq];

	if (s->nq == RD_SHAPE_KEEP || x->data_len > RD_SHAPE_KEEP_BYTES - s->bytes ||
	    !(q->data = malloc(x->data_len))) {
		s->lost[dir]++;
		return;
	}
	memcpy(q->data, x->data, x->data_len);
	q->len = x->data_len;
	q->t = r->cur_t;
	q->pkt = r->cur_pkt;
	q->dir = dir;
	q->end = end;
	s->bytes += q->len;
	s->nq++;
}

/* A bulk transfer with data (OUT submit, IN completion) of an enumeration
 * whose usbmux endpoints are unknown. A device packet longer than the host's
 * IN transfer (doc/protocol.md 2.10) counts once its last piece came: a
 * full transfer that starts it (mux_shape_start), then transfers adding up
 * to exactly its length. */
static void shape_feed(struct cap_reader *r, struct rd_usb *u, int dir, const struct rd_urb *x,
		       bool end)
{
	struct rd_shape *s = u->shape;
	uint16_t seq = 0;
	uint32_t whole = 0;
	int ver = 0;

	if (dir == 1 && s && s->cont && x->ep == s->ep[1]) {
		if (x->clipped || x->data_len > s->cont || (end && x->data_len < s->cont)) {
			shape_restart(s, 1, x->ep); /* not the rest of that packet */
			return;
		}
		s->cont -= (uint32_t)x->data_len;
		shape_keep(r, s, 1, x, end);
		if (s->cont)
			return;
		s->run[1]++;
		if (s->run[0] >= RD_SHAPE_OUT && s->run[1] >= RD_SHAPE_IN)
			shape_recognised(r, u);
		return;
	}
	if (x->data_len >= 4 && rd_be32(x->data) == MUX_PROTO_VERSION)
		return; /* VERSION has its own way in (looks_like_version) */
	if (!x->clipped) {
		ver = mux_shape(x->data, x->data_len, dir == 1, &seq);
		if (!ver && dir == 1 && !end)
			ver = mux_shape_start(x->data, x->data_len, true, &whole);
	}
	if (!ver) {
		if (s && s->run[dir] && s->ep[dir] == x->ep)
			shape_restart(s, dir, x->ep);
		return;
	}
	if (!s) {
		s = u->shape = calloc(1, sizeof(*s));
		if (!s)
			return;
	}
	if (s->ver != ver) { /* the other header version: start again */
		shape_restart(s, 0, 0);
		shape_restart(s, 1, 0);
		s->ver = ver;
	}
	if (s->ep[dir] != x->ep)
		shape_restart(s, dir, x->ep);
	if (dir == 0 && ver == 2) {
		if (s->run[0] && seq != s->next_seq)
			shape_restart(s, 0, x->ep);
		s->next_seq = (uint16_t)(seq + 1);
	}
	shape_keep(r, s, dir, x, end);
	if (whole) {
		s->cont = whole - (uint32_t)x->data_len;
		return;
	}
	s->run[dir]++;
	if (s->run[0] >= RD_SHAPE_OUT && s->run[1] >= RD_SHAPE_IN)
		shape_recognised(r, u);
}

/* --- transfers --------------------------------------------------------------- */

/* The bytes of a host bulk OUT transfer: whole, at its submit (usbmon,
 * USBPcap) or at its completion (macOS logs them there). */
static void host_out(struct cap_reader *r, struct rd_usb *u, const struct rd_urb *x)
{
	if (!u->pub.ep_out && looks_like_version(x->data, x->data_len)) {
		u->pub.ep_out = x->ep;
		shape_free(u);
	} else if (!u->pub.ep_out && !u->pub.ep_in) {
		shape_feed(r, u, 0, x, true); /* decodes it once recognised */
		return;
	}
	if (u->pub.ep_out && x->ep == u->pub.ep_out)
		mux_bytes(r, u, 0, x, true); /* a host OUT transfer is whole */
}

static void urb_event(struct cap_reader *r, const struct rd_urb *x)
{
	struct rd_usb *u = usb_get(r, x->bus, x->addr, x->t);
	struct cap_event ev = {.type = CAP_EV_TRANSFER};
	struct rd_pending p;
	bool in = x->ep & 0x80, skip = false;

	rd_pend_prefetch(r, x);
	if (!u)
		return;
	u->pub.last_t = x->t;
	if (x->speed_mbps > 0)
		u->pub.speed_mbps = x->speed_mbps;
	if (x->clipped)
		u->clipped = true;
	if (x->clipped && x->xfer == 3)
		rd_anomaly(
			r,
			"packet %llu: record clipped by the capture's snap length (%zu of %u bytes)",
			(unsigned long long)x->pkt, x->data_len, x->len);
	ev.usb = &u->pub;
	ev.u.x.type = x->type;
	ev.u.x.xfer = x->xfer;
	ev.u.x.ep = x->ep;
	ev.u.x.status = x->status;
	ev.u.x.outcome = cap_outcome_of(x->status);
	ev.u.x.len = x->len;
	ev.u.x.len_known = x->len_known;
	ev.u.x.data = x->data;
	ev.u.x.data_len = x->data_len;
	ev.u.x.clipped = x->clipped;
	if (x->type == 'S') {
		rd_emit(r, &ev);
		rd_pend_put(r, x);
		if (x->xfer == 3 && !in && x->data_len)
			host_out(r, u, x);
		return;
	}
	if (!rd_pend_take(r, x, &p)) {
		memset(&p, 0, sizeof(p));
		p.t = x->t;
		p.len = UINT32_MAX;
		/* USBPcap: a second completion record (status stage) */
		skip = r->linktype == CAP_LINKTYPE_USBPCAP && x->xfer == 2 && x->type == 'C';
	}
	ev.u.x.short_end = x->type == 'C' && p.len != UINT32_MAX && x->len < p.len;
	rd_emit(r, &ev);
	if ((x->status == CAP_URB_ENODEV || x->status == CAP_URB_ESHUTDOWN) && !u->pub.gone) {
		struct cap_event d = {.type = CAP_EV_DISCONNECT, .usb = &u->pub};
		d.u.x = ev.u.x;
		u->pub.gone = true;
		rd_emit(r, &d);
	}
	if (x->type == 'E' || skip)
		return;
	if (x->xfer == 2) {
		if (p.have_setup) {
			struct cap_event c = {.type = CAP_EV_CONTROL, .usb = &u->pub};
			memcpy(c.u.ctrl.setup, p.setup, 8);
			c.u.ctrl.parsed = control_parse(r, u, p.setup, x);
			c.u.ctrl.t_submit = p.t;
			c.u.ctrl.status = x->status;
			c.u.ctrl.data = x->data;
			c.u.ctrl.data_len = x->data_len;
			rd_emit(r, &c);
		}
		return;
	}
	if (x->xfer == 3 && !in && x->data_len && r->linktype == CAP_LINKTYPE_USB_DARWIN &&
	    (x->status == 0 || x->status == CAP_URB_ENOENT)) {
		host_out(r, u, x); /* what of it the device took */
		return;
	}
	if (x->xfer == 3 && in && u->pub.ep_in && x->ep == u->pub.ep_in)
		u->in_unlinked = x->status == CAP_URB_ENOENT || x->status == CAP_URB_ECONNRESET;
	if (x->xfer == 3 && in && x->data_len &&
	    (x->status == 0 || x->status == CAP_URB_ENOENT || x->status == CAP_URB_ECONNRESET)) {
		if (!u->pub.ep_in && u->pub.ep_out && looks_like_version(x->data, x->data_len)) {
			u->pub.ep_in = x->ep;
		} else if (!u->pub.ep_in && !u->pub.ep_out) {
			shape_feed(r, u, 1, x, ev.u.x.short_end);
			return;
		}
		if (u->pub.ep_in && x->ep == u->pub.ep_in)
			mux_bytes(r, u, 1, x, ev.u.x.short_end);
	}
}

int rd_usb_record(struct cap_reader *r, const uint8_t *buf, size_t caplen)
{
	struct rd_urb x;
	int rc;

	if (r->linktype == CAP_LINKTYPE_USBPCAP)
		rc = rd_usbpcap_record(r, r->cur_t, buf, caplen, &x);
	else if (r->linktype == CAP_LINKTYPE_USB_DARWIN)
		rc = rd_darwin_record(r, r->cur_t, buf, caplen, &x);
	else
		rc = rd_usbmon_record(r, r->cur_t, buf, caplen, &x);
	if (rc == LP_EAGAIN)
		return 0;
	if (rc)
		return rc;
	if (x.type != 'S' && x.type != 'C' && x.type != 'E')
		return LP_EBADMSG;
	urb_event(r, &x);
	return 0;
}

void cap_reader_transfer(struct cap_reader *r, uint64_t t, uint64_t pkt, uint64_t id, uint16_t bus,
			 uint8_t addr, const uint8_t *setup, const struct cap_transfer *t_in)
{
	struct rd_urb x = {0};

	if (pkt > r->packets)
		r->packets = pkt;
	r->cur_pkt = pkt;
	r->cur_t = t;
	if (t > r->t_last)
		r->t_last = t;
	x.t = t;
	x.pkt = pkt;
	x.id = id;
	x.type = t_in->type;
	x.xfer = t_in->xfer;
	x.ep = t_in->ep;
	x.bus = bus;
	x.addr = addr;
	x.status = t_in->status;
	x.len = t_in->len;
	x.len_known = t_in->len_known;
	x.data = t_in->data;
	x.data_len = t_in->data_len;
	x.clipped = t_in->clipped;
	if (setup && x.type == 'S' && x.xfer == 2) {
		memcpy(x.setup, setup, 8);
		x.have_setup = true;
	}
	urb_event(r, &x);
}

enum cap_outcome cap_outcome_of(int32_t s)
{
	switch (s) {
	case 0:
	case CAP_URB_EREMOTEIO:
	case CAP_URB_EINPROGRESS:
		return CAP_XO_OK;
	case CAP_URB_ENOENT:
	case CAP_URB_ECONNRESET:
		return CAP_XO_CANCELLED;
	case CAP_URB_ENODEV:
	case CAP_URB_ESHUTDOWN:
		return CAP_XO_GONE;
	case CAP_URB_EPIPE:
		return CAP_XO_STALL;
	case CAP_URB_ETIME:
	case -110:
		return CAP_XO_TIMEOUT; /* -ETIMEDOUT */
	default:
		return CAP_XO_ERROR;
	}
}

/* Before the connections are closed: does the capture stop mid-exchange? */
bool rd_usb_mid_exchange(struct cap_reader *r, const char **request)
{
	bool mid = false;

	for (size_t i = 0; i < CAP_RD_PENDING; i++)
		if (r->pend[i].used && r->pend[i].xfer == 2)
			mid = true; /* a control transfer without its completion */
	for (size_t i = 0; i < r->nusb; i++) {
		struct rd_usb *u = r->usb[i];
		if (u->pub.gone)
			continue;
		if (mux_rx_pending(&u->rx[0]) || mux_rx_pending(&u->rx[1]))
			mid = true;
		for (size_t k = 0; k < CAP_RD_MAX_CONNS; k++) {
			struct rd_conn *c = &u->conns[k];
			if (!c->used)
				continue;
			if (c->pub.state == CAP_CONN_SYN)
				mid = true;
			if (c->lkd && c->lkd->unanswered) {
				mid = true;
				*request = c->lkd->last_request;
			}
		}
	}
	return mid;
}

void rd_usb_finish(struct cap_reader *r)
{
	for (size_t i = 0; i < r->nusb; i++) {
		struct rd_usb *u = r->usb[i];
		for (size_t k = 0; k < CAP_RD_MAX_CONNS; k++) {
			struct rd_conn *c = &u->conns[k];
			if (c->used)
				rd_conn_event(r, c, u->pub.gone ? CAP_CONN_RESET_DEV : c->pub.state,
					      u->pub.gone ? u->pub.last_t : r->t_last, true);
		}
		/* a device packet whose rest the host never asked for (it
		 * cancelled its IN transfers: the run was over) is no anomaly */
		for (int dir = 0; dir < 2; dir++)
			if (mux_rx_pending(&u->rx[dir]) && !u->pub.gone &&
			    !(dir == 1 && u->in_unlinked))
				rd_anomaly(
					r,
					"capture ends inside a %s usbmux packet (%zu bytes) on %u.%u",
					dir_name(dir), mux_rx_pending(&u->rx[dir]), u->pub.bus,
					u->pub.addr);
	}
}
