/* replay_load.c - loads a recorded capture's device side into the data model
 * of replay_rec.h. The file is read by the one capture reader
 * (src/capture/reader.h); this file keeps, per enumeration, what the device
 * said - control replies, the usbmux VERSION it answered, ports it accepted
 * or refused, each lockdown request's meaning with the reply it got and the
 * delay, its disconnect and bulk error count - then picks the device and
 * joins the enumerations that are that device (it re-enumerated).
 *
 * Streaming: nothing is kept per record; the caps of replay_rec.h bound
 * what is kept (a recording over a cap is cut there, the rest still loads).
 *
 * Limits: lockdown traffic inside session TLS is not read (only whether the
 * device sent TLS application data is noted: a reset before that is a failed
 * handshake); IP captures of a usbmuxd relay are refused (no USB device in
 * them).
 *
 * Reference: doc/protocol.md (usbmux, lockdown, usbmon).
 */
#include "src/device/replay_rec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "src/capture/reader.h"
#include "proto/lockdown_frame.h"
#include "proto/mux.h"
#include "usb/cap_usbmon.h"

#define RD_PENDING_REQ 16 /* lockdown requests awaiting a reply per connection */
#define RD_VALUE_SHOWN 60 /* characters of a Key/Service value in a meaning */
#define RD_MAX_PORT_EVENTS 4096

/* What one enumeration showed (cap_usbdev.index). */
struct ld_enum {
	struct cap_usbdev *usb; /* borrowed from the reader */
	bool any_desc;		/* some GET_DESCRIPTOR answered */
	struct rdev_ctrl *ctrl;
	size_t nctrl;
	uint32_t mux_major;
	bool gone;
	uint64_t disc_t;
	uint64_t bulk, bulk_err;
	uint64_t bulk_err_tail; /* errors since the last bulk transfer that went through */
};

enum ld_port_kind { LD_ACCEPTED, LD_REFUSED };

struct ld_port {
	unsigned tag;
	enum ld_port_kind kind;
	uint16_t port;
};

struct ld_xchg {
	unsigned tag;
	struct rdev_xchg x;
};

struct ld_conn {
	struct {
		char meaning[RDEV_MEANING_MAX];
		uint64_t ts;
	} pend[RD_PENDING_REQ];
	size_t npend;
	bool accepted, tls, tls_app;
	size_t tls_xchg;
};

struct ld {
	struct cap_reader *reader;
	struct ld_enum e[CAP_RD_MAX_USB];
	size_t ne;
	struct ld_xchg *x;
	size_t nx;
	struct ld_port *ports;
	size_t nports;
	int err;
	bool not_usb;
};

/* ---- helpers -------------------------------------------------------------- */

static void put_value(char *out, size_t n, const char *v)
{
	size_t i;

	for (i = 0; v[i] && i < RD_VALUE_SHOWN && i + 1 < n; i++)
		out[i] = (v[i] >= 0x20 && v[i] < 0x7f) ? v[i] : '?';
	out[i] = '\0';
}

void rdev_meaning(plist_t req, char *out, size_t n)
{
	const char *rq = req ? lkd_dict_str(req, "Request") : NULL;
	char a[RD_VALUE_SHOWN + 1], b[RD_VALUE_SHOWN + 1];
	const char *k, *d;

	if (!n)
		return;
	if (!rq) {
		snprintf(out, n, "(no Request)");
		return;
	}
	put_value(a, sizeof(a), rq);
	if (!strcmp(rq, "GetValue") || !strcmp(rq, "SetValue") || !strcmp(rq, "RemoveValue")) {
		k = lkd_dict_str(req, "Key");
		d = lkd_dict_str(req, "Domain");
		char kk[RD_VALUE_SHOWN + 16] = "", dd[RD_VALUE_SHOWN + 16] = "";
		if (k) {
			put_value(b, sizeof(b), k);
			snprintf(kk, sizeof(kk), " Key=%s", b);
		}
		if (d) {
			put_value(b, sizeof(b), d);
			snprintf(dd, sizeof(dd), " Domain=%s", b);
		}
		snprintf(out, n, "%s%s%s", a, kk, dd);
	} else if (!strcmp(rq, "StartService") && (k = lkd_dict_str(req, "Service"))) {
		put_value(b, sizeof(b), k);
		snprintf(out, n, "%s Service=%s", a, b);
	} else {
		snprintf(out, n, "%s", a);
	}
}

static bool is_normal_pid(uint16_t pid)
{
	/* 0x1220-0x1283: DFU, WTF and recovery modes (doc/protocol.md 1.1) */
	return !(pid >= 0x1220 && pid <= 0x1283);
}

static const struct rdev_ctrl *ctrl_in(const struct rdev_ctrl *v, size_t n, const uint8_t setup[8],
				       bool any_index)
{
	for (size_t i = 0; i < n; i++) {
		const uint8_t *s = v[i].setup;
		if (s[0] == setup[0] && s[1] == setup[1] && s[2] == setup[2] && s[3] == setup[3] &&
		    (any_index || (s[4] == setup[4] && s[5] == setup[5])))
			return &v[i];
	}
	return NULL;
}

const struct rdev_ctrl *rdev_rec_ctrl(const struct rdev_rec *r, const uint8_t setup[8],
				      bool any_index)
{
	return ctrl_in(r->ctrl, r->nctrl, setup, any_index);
}

/* Keep the longest successful answer per request. v has room for RDEV_MAX_CTRL. */
static int ctrl_add(struct rdev_ctrl *v, size_t *n, const uint8_t setup[8], bool stall,
		    const uint8_t *d, size_t len)
{
	struct rdev_ctrl *c = (struct rdev_ctrl *)ctrl_in(v, *n, setup, false);
	uint8_t *copy = NULL;

	if (c && (stall || (!c->stall && c->len >= len)))
		return 0;
	if (!c) {
		if (*n >= RDEV_MAX_CTRL)
			return 0;
		c = &v[(*n)++];
		memset(c, 0, sizeof(*c));
		memcpy(c->setup, setup, 8);
	}
	if (len) {
		copy = malloc(len);
		if (!copy)
			return LP_ENOMEM;
		memcpy(copy, d, len);
	}
	free(c->data);
	c->data = copy;
	c->len = len;
	c->stall = stall;
	return 0;
}

/* ---- events ----------------------------------------------------------------- */

static struct ld_enum *enum_of(struct ld *l, const struct cap_usbdev *u)
{
	if (!u || u->index >= l->ne || l->e[u->index].gone)
		return NULL; /* unknown, or after its disconnect */
	return &l->e[u->index];
}

static void port_add(struct ld *l, unsigned tag, enum ld_port_kind kind, uint16_t port)
{
	if (l->nports < RD_MAX_PORT_EVENTS)
		l->ports[l->nports++] = (struct ld_port){tag, kind, port};
}

static void on_control(struct ld *l, struct ld_enum *e, const struct cap_event *ev)
{
	const struct cap_control *c = &ev->u.ctrl;
	int rc;

	if (!e->ctrl && !(e->ctrl = calloc(RDEV_MAX_CTRL, sizeof(*e->ctrl)))) {
		l->err = LP_ENOMEM;
		return;
	}
	if (!c->status && c->setup[0] == 0x80 && c->setup[1] == USBD_REQ_GET_DESCRIPTOR)
		e->any_desc = true;
	rc = ctrl_add(e->ctrl, &e->nctrl, c->setup, c->status == CAP_URB_EPIPE, c->data,
		      (c->setup[0] & 0x80) && !c->status ? c->data_len : 0);
	if (rc)
		l->err = rc;
}

static void on_conn(struct ld *l, struct ld_enum *e, struct cap_conn *c)
{
	struct ld_conn *lc = c->user;

	switch (c->state) {
	case CAP_CONN_SYN:
		if (!c->ended && !lc && !(c->user = calloc(1, sizeof(struct ld_conn))))
			l->err = LP_ENOMEM;
		break;
	case CAP_CONN_OPEN:
		if (!lc)
			break;
		lc->accepted = true;
		port_add(l, c->usb->index, LD_ACCEPTED, c->dport);
		break;
	case CAP_CONN_REFUSED:
		if (lc)
			port_add(l, c->usb->index, LD_REFUSED, c->dport);
		break;
	case CAP_CONN_RESET_DEV:
		if (lc && lc->accepted && lc->tls && !lc->tls_app && lc->tls_xchg < l->nx)
			l->x[lc->tls_xchg].x.tls_failed = true;
		break;
	default:
		break;
	}
	(void)e;
	if (c->ended) {
		free(c->user);
		c->user = NULL;
	}
}

static void on_lockdown(struct ld *l, struct cap_conn *c, const struct cap_event *ev)
{
	struct ld_conn *lc = c->user;
	struct rdev_xchg *x;

	if (!lc || lc->tls)
		return;
	if (ev->dir == 0) {
		if (lc->npend < RD_PENDING_REQ) {
			rdev_meaning(ev->u.msg, lc->pend[lc->npend].meaning, RDEV_MEANING_MAX);
			lc->pend[lc->npend++].ts = ev->t;
		}
		return;
	}
	if (!lc->npend || l->nx >= RDEV_MAX_EXCHANGES)
		return; /* unsolicited, or over the cap */
	l->x[l->nx].tag = c->usb->index;
	x = &l->x[l->nx].x;
	memset(x, 0, sizeof(*x));
	snprintf(x->meaning, sizeof(x->meaning), "%s", lc->pend[0].meaning);
	x->reply = plist_copy(ev->u.msg);
	if (!x->reply) {
		l->err = LP_ENOMEM;
		return;
	}
	x->delay_ns = ev->t > lc->pend[0].ts ? ev->t - lc->pend[0].ts : 0;
	if (x->delay_ns > RDEV_MAX_DELAY_NS)
		x->delay_ns = RDEV_MAX_DELAY_NS;
	memmove(&lc->pend[0], &lc->pend[1], (lc->npend - 1) * sizeof(lc->pend[0]));
	lc->npend--;
	if (!strcmp(x->meaning, "StartSession") && !lkd_dict_str(ev->u.msg, "Error") &&
	    lkd_dict_bool(ev->u.msg, "EnableSessionSSL", 0)) {
		x->tls_start = true;
		lc->tls = true; /* what follows is TLS */
		lc->tls_xchg = l->nx;
	}
	l->nx++;
}

static bool on_event(void *ud, const struct cap_event *ev)
{
	struct ld *l = ud;
	struct ld_enum *e;

	if (ev->type == CAP_EV_USB_NEW) {
		if (ev->usb->index < CAP_RD_MAX_USB) {
			l->e[ev->usb->index].usb = ev->usb;
			l->ne = ev->usb->index + 1;
		}
		return true;
	}
	if (ev->type == CAP_EV_END || ev->type == CAP_EV_ANOMALY || ev->type == CAP_EV_GAP)
		return true;
	if (ev->type == CAP_EV_UMX || (ev->conn && ev->conn->relay)) {
		l->not_usb = true;
		return false;
	}
	e = enum_of(l, ev->usb ? ev->usb : ev->conn ? ev->conn->usb : NULL);
	if (!e) {
		if (ev->type == CAP_EV_CONN && ev->conn->ended) {
			free(ev->conn->user);
			ev->conn->user = NULL;
		}
		return true;
	}
	switch (ev->type) {
	case CAP_EV_TRANSFER:
		if (ev->u.x.type == 'C' && ev->u.x.xfer == 3 && ev->u.x.outcome != CAP_XO_GONE) {
			e->bulk++;
			if (ev->u.x.outcome == CAP_XO_OK) {
				e->bulk_err_tail = 0;
			} else if (ev->u.x.outcome != CAP_XO_CANCELLED) {
				e->bulk_err++;
				e->bulk_err_tail++;
			}
		}
		break;
	case CAP_EV_DISCONNECT:
		e->gone = true;
		e->disc_t = ev->t;
		break;
	case CAP_EV_CONTROL:
		on_control(l, e, ev);
		break;
	case CAP_EV_MUX:
		if (ev->u.mux.protocol == MUX_PROTO_VERSION && ev->dir == 1 && ev->u.mux.ok &&
		    !e->mux_major && (ev->u.mux.major == 1 || ev->u.mux.major == 2))
			e->mux_major = ev->u.mux.major;
		break;
	case CAP_EV_CONN:
		on_conn(l, e, ev->conn);
		break;
	case CAP_EV_LOCKDOWN:
		on_lockdown(l, ev->conn, ev);
		break;
	case CAP_EV_TLS_RECORD:
		if (ev->dir == 1 && ev->u.tls_type == 23 && ev->conn->user)
			((struct ld_conn *)ev->conn->user)->tls_app = true;
		break;
	default:
		break;
	}
	return l->err == 0;
}

/* ---- choosing the device and joining its enumerations ----------------------- */

static const char *serial_of(const struct cap_usbdev *u)
{
	uint8_t i = u->dd.iSerialNumber;

	return i && i < CAP_RD_STRINGS ? u->str[i] : "";
}

static const struct cap_usbdev *choose(const struct ld *l, const char *udid, struct lp_errinfo *e,
				       int *rc)
{
	const struct cap_usbdev *best = NULL;
	size_t nany = 0;

	for (size_t i = 0; i < l->ne; i++)
		nany += l->e[i].usb && (l->e[i].any_desc || l->e[i].usb->have_dd);
	for (size_t i = 0; i < l->ne && udid && !best; i++) {
		const struct cap_usbdev *u = l->e[i].usb;
		char x[80];
		if (!u || !u->have_dd)
			continue;
		usbd_serial_to_udid(serial_of(u), x, sizeof(x));
		if (!strcasecmp(serial_of(u), udid) || !strcasecmp(x, udid))
			best = u;
	}
	if (udid && !best) {
		*rc = lp_err_set(e, LP_ENOENT, "replay: no device with UDID %s in the capture",
				 udid);
		return NULL;
	}
	/* an enumeration with an address first: the kernel's read of the device
	 * descriptor at the default address 0 precedes SET_ADDRESS and carries
	 * no serial (the device is the enumeration that follows) */
	for (size_t i = 0; i < l->ne && !best; i++)
		if (l->e[i].usb && l->e[i].usb->have_dd && l->e[i].usb->addr != 0 &&
		    l->e[i].usb->dd.idVendor == 0x05ac && is_normal_pid(l->e[i].usb->dd.idProduct))
			best = l->e[i].usb;
	for (size_t i = 0; i < l->ne && !best; i++)
		if (l->e[i].usb && l->e[i].usb->have_dd && l->e[i].usb->dd.idVendor == 0x05ac &&
		    is_normal_pid(l->e[i].usb->dd.idProduct))
			best = l->e[i].usb;
	for (size_t i = 0; i < l->ne && !best; i++)
		if (l->e[i].usb && l->e[i].usb->have_dd && l->e[i].usb->dd.idVendor == 0x05ac)
			best = l->e[i].usb;
	for (size_t i = 0; i < l->ne && !best; i++)
		if (l->e[i].usb && l->e[i].usb->have_dd)
			best = l->e[i].usb;
	if (best)
		return best;
	/* a capture that starts mid-session: usbmux is there (recognised from
	 * the packets), but the device's descriptors, which replay must present
	 * to the host, are not */
	for (size_t i = 0; i < l->ne; i++) {
		const struct cap_usbdev *u = l->e[i].usb;
		if (u && u->mux_by_shape) {
			*rc = lp_err_set(
				e, LP_EBADMSG,
				"replay: the capture started after the device was plugged in: its "
				"usbmux traffic (bus %u address %u) is there, but not the descriptors "
				"replay needs to present the device; `linkprobe analyze` reads such a "
				"capture, replay needs one started before the phone was plugged in",
				u->bus, u->addr);
			return NULL;
		}
	}
	*rc = lp_err_set(e, nany ? LP_EBADMSG : LP_ENOENT,
			 "replay: no device answered GET_DESCRIPTOR(device) in the capture");
	return NULL;
}

/* The chosen device, or the same phone after re-enumeration: same bus, and
 * the same address or the same ids and serial. */
static bool followed(const struct cap_usbdev *best, const struct cap_usbdev *u)
{
	if (!u || u->index < best->index || u->bus != best->bus)
		return false;
	if (u->addr == best->addr)
		return true;
	return u->have_dd && u->dd.idVendor == best->dd.idVendor &&
	       u->dd.idProduct == best->dd.idProduct &&
	       (!serial_of(u)[0] || !serial_of(best)[0] || !strcmp(serial_of(u), serial_of(best)));
}

static void add_port(uint16_t *v, size_t *n, uint16_t port, bool dup)
{
	if (!dup)
		for (size_t i = 0; i < *n; i++)
			if (v[i] == port)
				return;
	if (*n < RDEV_MAX_PORTS)
		v[(*n)++] = port;
}

/* Which of the followed enumerations the phone left: usbmon showed it gone
 * (-19/-108), or it came back at another address (the kernel may complete
 * the last in-flight transfers with EPROTO and never say "gone" - the lab's
 * usbmuxd capture). */
static void mark_left(const struct ld *l, const bool *follow, bool *left)
{
	size_t prev = SIZE_MAX;

	for (size_t i = 0; i < l->ne; i++) {
		if (!follow[i])
			continue;
		left[i] = l->e[i].gone;
		if (l->e[i].usb->addr == 0)
			continue; /* the default address, before SET_ADDRESS */
		if (prev != SIZE_MAX && l->e[prev].usb->addr != l->e[i].usb->addr)
			left[prev] = true;
		prev = i;
	}
}

static int join(struct ld *l, const struct cap_usbdev *best, struct rdev_rec *r)
{
	bool follow[CAP_RD_MAX_USB] = {false}, left[CAP_RD_MAX_USB] = {false};
	bool first = true, disc_seen = false;
	int rc = 0;

	r->dd = best->dd;
	r->bus = (uint8_t)best->bus;
	r->addr = best->addr;
	snprintf(r->serial, sizeof(r->serial), "%s", serial_of(best));
	for (size_t i = 0; i < l->ne; i++)
		follow[i] = followed(best, l->e[i].usb);
	mark_left(l, follow, left);
	for (size_t i = 0; i < l->ne; i++) {
		struct ld_enum *e = &l->e[i];
		if (!follow[i])
			continue;
		if (first) {
			r->t_first = e->usb->first_t;
			first = false;
		}
		if (disc_seen && !r->back_at)
			r->back_at = e->usb->first_t;
		for (size_t k = 0; k < e->nctrl && !rc; k++)
			rc = ctrl_add(r->ctrl, &r->nctrl, e->ctrl[k].setup, e->ctrl[k].stall,
				      e->ctrl[k].data, e->ctrl[k].len);
		if (!r->mux_major)
			r->mux_major = e->mux_major;
		if (left[i] && !r->disconnects++) {
			r->disc_at = e->gone ? e->disc_t : e->usb->last_t;
			disc_seen = true;
		}
		r->bulk += e->bulk;
		/* the errors after its last good transfer were the device leaving,
		 * replayed as the disconnect, not as the link's error rate */
		r->bulk_err += e->bulk_err - (left[i] ? e->bulk_err_tail : 0);
	}
	if (r->disconnects && !r->back_at)
		r->back_at = UINT64_MAX; /* never came back */
	r->x = calloc(l->nx ? l->nx : 1, sizeof(*r->x));
	if (!r->x)
		return LP_ENOMEM;
	for (size_t i = 0; i < l->nx; i++) {
		if (l->x[i].tag < CAP_RD_MAX_USB && follow[l->x[i].tag]) {
			r->x[r->nx++] = l->x[i].x;
			l->x[i].x.reply = NULL; /* moved */
		}
	}
	for (size_t i = 0; i < l->nports; i++) {
		const struct ld_port *p = &l->ports[i];
		if (p->tag >= CAP_RD_MAX_USB || !follow[p->tag])
			continue;
		if (p->kind == LD_REFUSED) {
			add_port(r->refused, &r->nref, p->port, false);
			continue;
		}
		add_port(r->accepted, &r->nacc, p->port, false);
		if (p->port != MUX_PORT_LOCKDOWN)
			add_port(r->svc_ports, &r->nsvc, p->port, true);
	}
	return rc;
}

static void load_identity(struct rdev_rec *r)
{
	uint16_t mps = 0;

	for (unsigned i = 0; i < r->dd.bNumConfigurations && i < USBD_MAX_CONFIGS; i++) {
		const uint8_t setup[8] = {
			0x80, USBD_REQ_GET_DESCRIPTOR, (uint8_t)i, USBD_DT_CONFIG, 0, 0, 0, 0};
		const struct rdev_ctrl *c = rdev_rec_ctrl(r, setup, true);
		uint8_t ei, eo;
		uint16_t m;

		if (!c || c->stall || usbd_parse_config(c->data, c->len, &r->cfg[i]))
			continue;
		r->cfg_ok[i] = true;
		if (usbd_find_usbmux(&r->cfg[i], &ei, &eo, &m) && !mps)
			mps = m;
		for (unsigned j = 0; j < r->cfg[i].num_ifaces && !mps; j++)
			for (unsigned k = 0; k < r->cfg[i].iface[j].num_eps; k++)
				if ((r->cfg[i].iface[j].ep[k].bmAttributes & 3) == 2)
					mps = r->cfg[i].iface[j].ep[k].wMaxPacketSize;
	}
	if (r->dd.bcdUSB >= 0x0300 && mps >= 1024)
		r->speed = TR_SPEED_SUPER;
	else if (mps && mps <= 64)
		r->speed = TR_SPEED_FULL;
	else
		r->speed = TR_SPEED_HIGH;
}

static void ld_release(struct ld *l)
{
	for (size_t i = 0; i < l->ne; i++) {
		for (size_t k = 0; k < l->e[i].nctrl; k++)
			free(l->e[i].ctrl[k].data);
		free(l->e[i].ctrl);
	}
	for (size_t i = 0; l->x && i < l->nx; i++)
		plist_free(l->x[i].x.reply);
	free(l->x);
	free(l->ports);
	cap_reader_free(l->reader);
}

int rdev_rec_load(FILE *f, const char *udid, const struct lp_log *log, struct rdev_rec **out,
		  struct lp_errinfo *e)
{
	struct ld *l;
	struct rdev_rec *r = NULL;
	int rc;

	if (!f)
		return lp_err_set(e, LP_EINVAL, "replay: no capture");
	l = calloc(1, sizeof(*l));
	if (l) {
		l->x = calloc(RDEV_MAX_EXCHANGES, sizeof(*l->x));
		l->ports = calloc(RD_MAX_PORT_EVENTS, sizeof(*l->ports));
		l->reader = cap_reader_new(NULL, on_event, l);
	}
	if (!l || !l->x || !l->ports || !l->reader) {
		fclose(f);
		if (l)
			ld_release(l);
		free(l);
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	}
	rc = cap_reader_run(l->reader, f, e);
	if (rc == LP_EIO) {
		static const char pre[] = "not a capture libpcap can read: ";
		char why[LP_ERRINFO_MSG];
		const char *m = e ? e->msg : "";
		snprintf(why, sizeof(why), "%s",
			 strncmp(m, pre, sizeof(pre) - 1) ? m : m + sizeof(pre) - 1);
		rc = lp_err_set(e, LP_EFORMAT, "replay: not a pcap/pcapng capture (%s)", why);
	} else if (rc == LP_EFORMAT ||
		   (!rc && (l->not_usb || !cap_linktype_is_usb(cap_reader_linktype(l->reader))))) {
		rc = lp_err_set(
			e, LP_EFORMAT,
			"replay: link type %d is not USB (usbmon 189/220, USBPcap 249, macOS 266)",
			cap_reader_linktype(l->reader));
	} else if (!rc && l->err) {
		rc = lp_err_set(e, l->err, "replay: %s", lp_strerror(l->err));
	}
	if (!rc) {
		const struct cap_usbdev *best = choose(l, udid, e, &rc);
		if (best && !(r = calloc(1, sizeof(*r))))
			rc = lp_err_set(e, LP_ENOMEM, "out of memory");
		else if (best && (rc = join(l, best, r)))
			lp_err_set(e, rc, "replay: %s", lp_strerror(rc));
	}
	ld_release(l);
	free(l);
	if (rc) {
		rdev_rec_free(r);
		return rc;
	}
	load_identity(r);
	lp_logf(log, LP_LOG_INFO,
		"replay: device %04x:%04x %s at %u-%u: %zu control replies, usbmux v%u, %zu lockdown exchanges, "
		"%zu disconnect(s)",
		r->dd.idVendor, r->dd.idProduct, r->serial, r->bus, r->addr, r->nctrl, r->mux_major,
		r->nx, r->disconnects);
	*out = r;
	return 0;
}

void rdev_rec_free(struct rdev_rec *rec)
{
	if (!rec)
		return;
	for (size_t i = 0; i < rec->nctrl; i++)
		free(rec->ctrl[i].data);
	for (size_t i = 0; rec->x && i < rec->nx; i++)
		plist_free(rec->x[i].reply);
	free(rec->x);
	free(rec);
}
