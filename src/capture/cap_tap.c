/* cap_tap.c - transport observer that writes usbmon records and stage
 * markers, and decides which payload bytes go through a redactor
 * (cap_redact.c); see cap_tap.h.
 *
 * Where redaction looks: each bulk endpoint's transfers are followed as
 * usbmux packets (length field at bytes 4..7, doc/protocol.md 2.2), the way
 * the host's codec reads them (several packets in one transfer, a packet
 * spanning transfers until a short one ends it). The payload of a TCP packet
 * whose ports hold 62078 (lockdown; host->device dport, device->host sport)
 * goes through that connection's redactor; the payload of any other TCP
 * connection is not read at all. Everything the tracker cannot place - a
 * control transfer, a transfer that is not usbmux, a bad length, the rest of
 * a transfer after one, non-TCP packets - is scanned byte by byte as before
 * (the endpoint's redactor), so only bytes known to belong to a non-lockdown
 * connection are skipped.
 *
 * Reference: doc/protocol.md 6.1 (records), 2.2/2.7 (mux and TCP headers),
 * 2.10 (packets spanning transfers), 4 and 5 (which plist keys hold secrets:
 * EscrowBag in the Pair reply, *PrivateKey in pair records). */
#include "src/capture/cap_tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mux.h"
#include "usb/cap_usbmon.h"

struct tap_dev {
	uint8_t bus, addr;
	uint32_t session;
	int iface;
};

/* Where the bytes of the current mux packet go. */
enum tap_route {
	ROUTE_SCAN = 0, /* not placed: the endpoint's redactor */
	ROUTE_SKIP,	/* payload of a non-lockdown TCP connection */
	ROUTE_CONN,	/* payload of a lockdown connection: its redactor */
	ROUTE_STATELESS /* payload of a non-TCP packet (VERSION, CONTROL, SETUP) */
};

#define TAP_HDR_MAX (MUX_V2_HDR + MUX_TCP_HDR)
#define TAP_CONNS_MAX 16 /* lockdown connections with redaction state */

struct tap_ep {
	uint8_t bus, addr, ep;
	struct cap_redactor r; /* bytes the tracker could not place */
	/* mux framing of this endpoint's byte stream */
	bool skip;    /* lost: scan to the end of the transfer */
	uint8_t nhdr; /* header bytes collected of the next packet */
	uint8_t hdr[TAP_HDR_MAX];
	uint32_t left;	   /* payload bytes of the current packet still to come */
	uint8_t route;	   /* enum tap_route of those bytes */
	uint32_t conn_key; /* ROUTE_CONN: the connection's ports */
};

struct tap_conn {
	bool used;
	uint8_t bus, addr, ep;
	uint32_t key; /* sport << 16 | dport as on the wire */
	uint64_t last;
	struct cap_redactor r;
};

/* usbmux version per device, from the device's VERSION reply (0 unknown:
 * then a packet with the v2 magic is read as v2). */
struct tap_ver {
	uint8_t bus, addr, ver;
};

struct cap_tap {
	struct cap_writer *w;	      /* borrowed */
	const struct lp_clock *clock; /* borrowed, may be NULL */
	struct tr_ctx *ctx;	      /* borrowed; NULL when not attached */
	bool redact;
	size_t data_max;
	char *if_name, *if_desc; /* owned, may be NULL */
	int err;
	uint64_t records, redacted;
	struct tap_dev devs[CAP_TAP_DEVS_MAX];
	size_t ndevs;
	struct tap_ep eps[CAP_TAP_EPS_MAX];
	size_t neps;
	char *mark; /* owned pending marker text, NULL if none */
	struct tap_conn conns[TAP_CONNS_MAX];
	uint64_t conn_clock;
	struct tap_ver vers[CAP_TAP_DEVS_MAX];
	size_t nvers;
	uint8_t *scratch; /* the redactor's joined view, grown, never per record */
	size_t scratch_cap;
};

/* ---- tap ----------------------------------------------------------------- */

int cap_tap_new(struct cap_writer *w, const struct lp_clock *clock, const struct cap_tap_opts *o,
		struct cap_tap **out)
{
	struct cap_tap *t;

	if (!w || !out)
		return LP_EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return LP_ENOMEM;
	t->w = w;
	t->clock = clock;
	t->redact = !(o && o->no_redact);
	t->data_max = o && o->data_max ? o->data_max : CAP_USBMON_DATA_MAX;
	if (t->data_max > CAP_USBMON_DATA_MAX)
		t->data_max = CAP_USBMON_DATA_MAX;
	if (o && o->if_name && !(t->if_name = strdup(o->if_name)))
		goto nomem;
	if (o && o->if_description && !(t->if_desc = strdup(o->if_description)))
		goto nomem;
	*out = t;
	return 0;
nomem:
	free(t->if_name);
	free(t);
	return LP_ENOMEM;
}

int cap_tap_attach(struct tr_ctx *ctx, struct cap_writer *w, const struct cap_tap_opts *o,
		   struct cap_tap **out, struct lp_errinfo *e)
{
	struct cap_tap *t;
	int rc;

	if (!ctx)
		return lp_err_set(e, LP_EINVAL, "capture tap: no transport context");
	rc = cap_tap_new(w, ctx->env.clock, o, &t);
	if (rc)
		return lp_err_set(e, rc, "capture tap: %s", lp_strerror(rc));
	rc = tr_add_observer(ctx, cap_tap_observe, t);
	if (rc) {
		cap_tap_free(t);
		return lp_err_set(e, rc, "capture tap: cannot add observer: %s", lp_strerror(rc));
	}
	t->ctx = ctx;
	*out = t;
	return 0;
}

void cap_tap_detach(struct cap_tap *t)
{
	struct tr_ctx *ctx;
	size_t i, j;

	if (!t || !t->ctx)
		return;
	ctx = t->ctx;
	for (i = j = 0; i < ctx->nobs; i++)
		if (!(ctx->obs[i].fn == cap_tap_observe && ctx->obs[i].ud == t))
			ctx->obs[j++] = ctx->obs[i];
	for (i = j; i < ctx->nobs; i++)
		memset(&ctx->obs[i], 0, sizeof(ctx->obs[i]));
	ctx->nobs = j;
	t->ctx = NULL;
}

void cap_tap_free(struct cap_tap *t)
{
	if (!t)
		return;
	free(t->scratch);
	free(t->mark);
	free(t->if_name);
	free(t->if_desc);
	free(t);
}

int cap_tap_mark(struct cap_tap *t, const char *text)
{
	size_t old, add;
	char *m;

	if (!t || !text)
		return LP_EINVAL;
	old = t->mark ? strlen(t->mark) : 0;
	add = strlen(text);
	if (old + 1 + add + 1 > CAP_TAP_MARK_MAX)
		return LP_ETOOBIG;
	m = realloc(t->mark, old + 1 + add + 1);
	if (!m)
		return LP_ENOMEM;
	if (old)
		m[old++] = '\n';
	memcpy(m + old, text, add + 1);
	t->mark = m;
	return 0;
}

int cap_tap_error(const struct cap_tap *t)
{
	return t->err;
}

uint64_t cap_tap_records(const struct cap_tap *t)
{
	return t->records;
}

uint64_t cap_tap_redacted(const struct cap_tap *t)
{
	return t->redacted;
}

static int tap_iface(struct cap_tap *t, const struct tr_dev *dev)
{
	const struct tr_devinfo *di = dev ? &dev->info : NULL;
	uint8_t bus = di ? di->bus : 0, addr = di ? di->addr : 0;
	uint32_t session = di ? di->session : 0;
	char name[32], desc[256];
	size_t i;
	int id;

	for (i = 0; i < t->ndevs; i++)
		if (t->devs[i].bus == bus && t->devs[i].addr == addr &&
		    t->devs[i].session == session)
			return t->devs[i].iface;
	if (t->ndevs && (t->if_name || t->ndevs == CAP_TAP_DEVS_MAX))
		return t->devs[t->ndevs - 1].iface;

	snprintf(name, sizeof(name), "usbmon%u", bus);
	if (di)
		snprintf(desc, sizeof(desc),
			 "%04x:%04x, %s speed (%llu Mb/s), bus %u device %u%s%s", di->vid, di->pid,
			 tr_speed_name(di->speed),
			 (unsigned long long)(tr_speed_bps(di->speed) / 1000000), bus, addr,
			 di->port_path[0] ? ", port " : "", di->port_path[0] ? di->port_path : "");
	else
		snprintf(desc, sizeof(desc), "unknown device");
	id = cap_add_usb_interface(t->w, t->if_name ? t->if_name : name,
				   t->if_desc ? t->if_desc : desc);
	if (id < 0)
		return id;
	t->devs[t->ndevs].bus = bus;
	t->devs[t->ndevs].addr = addr;
	t->devs[t->ndevs].session = session;
	t->devs[t->ndevs].iface = id;
	t->ndevs++;
	return id;
}

static struct tap_ep *tap_endpoint(struct cap_tap *t, uint8_t bus, uint8_t addr, uint8_t ep)
{
	struct tap_ep *e;
	size_t i;

	for (i = 0; i < t->neps; i++)
		if (t->eps[i].bus == bus && t->eps[i].addr == addr && t->eps[i].ep == ep)
			return &t->eps[i];
	if (t->neps == CAP_TAP_EPS_MAX)
		return NULL; /* stateless fallback */
	e = &t->eps[t->neps++];
	memset(e, 0, sizeof(*e));
	e->bus = bus;
	e->addr = addr;
	e->ep = ep;
	cap_redactor_init(&e->r);
	return e;
}

/* ---- where the secrets can be: the mux framing of each endpoint ---------- */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint8_t *tap_ver(struct cap_tap *t, uint8_t bus, uint8_t addr)
{
	for (size_t i = 0; i < t->nvers; i++)
		if (t->vers[i].bus == bus && t->vers[i].addr == addr)
			return &t->vers[i].ver;
	if (t->nvers == CAP_TAP_DEVS_MAX)
		return NULL;
	t->vers[t->nvers] = (struct tap_ver){bus, addr, 0};
	return &t->vers[t->nvers++].ver;
}

/* The redactor of a lockdown connection; a new one (the least recently used
 * slot) when it has none, or when `fresh` (SYN: a new connection on the
 * same ports). */
static struct cap_redactor *tap_conn(struct cap_tap *t, const struct tap_ep *e, uint32_t key,
				     bool fresh)
{
	struct tap_conn *c, *old = &t->conns[0];

	for (size_t i = 0; i < TAP_CONNS_MAX; i++) {
		c = &t->conns[i];
		if (c->used && c->bus == e->bus && c->addr == e->addr && c->ep == e->ep &&
		    c->key == key) {
			c->last = ++t->conn_clock;
			if (fresh)
				cap_redactor_init(&c->r);
			return &c->r;
		}
		if (!c->used || (old->used && c->last < old->last))
			old = c;
	}
	*old = (struct tap_conn){.used = true,
				 .bus = e->bus,
				 .addr = e->addr,
				 .ep = e->ep,
				 .key = key,
				 .last = ++t->conn_clock};
	cap_redactor_init(&old->r);
	return &old->r;
}

static size_t tap_scan_feed(struct cap_tap *t, struct cap_redactor *r, uint8_t *b, size_t n,
			    bool skip_hdr)
{
	return cap_redactor_feed_scratch(r, b, n, skip_hdr, &t->scratch, &t->scratch_cap);
}

/* Payload bytes b[0..n) of the current packet, by its route. */
static void tap_route(struct cap_tap *t, struct tap_ep *e, uint8_t *b, size_t n)
{
	if (!n)
		return;
	switch (e->route) {
	case ROUTE_SKIP:
		break;
	case ROUTE_CONN:
		t->redacted += tap_scan_feed(t, tap_conn(t, e, e->conn_key, false), b, n, false);
		break;
	case ROUTE_STATELESS:
		t->redacted += cap_redact(b, n);
		break;
	default:
		t->redacted += tap_scan_feed(t, &e->r, b, n, true);
		break;
	}
}

/* The header of the next packet is e->hdr[0..nhdr): how many bytes it has
 * (0 = need the 12 that tell v1 from v2 first), the mux part in *mh. */
static size_t tap_hdr_len(const struct tap_ep *e, uint8_t ver, size_t *mh)
{
	uint32_t proto = be32(e->hdr), length = be32(e->hdr + 4);
	size_t hl;

	if (proto == MUX_PROTO_VERSION)
		hl = MUX_V1_HDR;
	else if (ver)
		hl = mux_hdr_size(ver);
	else if (length < 12 || e->nhdr < 12)
		hl = length < 12 ? MUX_V1_HDR : 0;
	else
		hl = be32(e->hdr + 8) == MUX_V2_MAGIC ? MUX_V2_HDR : MUX_V1_HDR;
	if (!hl)
		return 0;
	*mh = hl;
	if (proto == MUX_PROTO_TCP)
		hl += MUX_TCP_HDR;
	return hl > length ? length : hl;
}

static void tap_classify(struct cap_tap *t, struct tap_ep *e, size_t hl, size_t th)
{
	uint32_t proto = be32(e->hdr), ports;

	if (proto != MUX_PROTO_TCP) {
		e->route = ROUTE_STATELESS;
		return;
	}
	if (hl < th + MUX_TCP_HDR) {
		e->route = ROUTE_STATELESS; /* too short for a TCP header */
		return;
	}
	ports = be32(e->hdr + th);
	if ((ports >> 16) == MUX_PORT_LOCKDOWN || (ports & 0xFFFF) == MUX_PORT_LOCKDOWN) {
		e->route = ROUTE_CONN;
		e->conn_key = ports;
		/* SYN: a new connection, whatever an old one on these ports left */
		tap_conn(t, e, ports, (e->hdr[th + 13] & MUX_TH_SYN) != 0);
	} else {
		e->route = ROUTE_SKIP;
	}
}

/* One transfer's captured bytes d[0..n) of `full` (the rest was not
 * captured); `end`: a short transfer, no packet continues past it. */
static void tap_follow(struct cap_tap *t, struct tap_ep *e, uint8_t *d, size_t n, size_t full,
		       bool end, bool in)
{
	size_t off = 0, hstart = 0;

	while (off < n && !e->skip) {
		size_t k, hl, mh = MUX_V1_HDR;
		uint32_t length;

		if (e->left) {
			k = n - off < e->left ? n - off : e->left;
			tap_route(t, e, d + off, k);
			e->left -= (uint32_t)k;
			off += k;
			continue;
		}
		/* a packet's header: collect it, maybe across transfers */
		if (!e->nhdr)
			hstart = off;
		if (e->nhdr < MUX_V1_HDR) {
			k = MUX_V1_HDR - e->nhdr;
			k = k > n - off ? n - off : k;
			memcpy(e->hdr + e->nhdr, d + off, k);
			e->nhdr += (uint8_t)k;
			off += k;
			if (e->nhdr < MUX_V1_HDR)
				break;
			length = be32(e->hdr + 4);
			if (be32(e->hdr) > MUX_PROTO_TCP || length < MUX_V1_HDR ||
			    length > MUX_MAX_PACKET) {
				/* not usbmux, or a length the codec drops: scan
				 * from where this "header" began */
				e->skip = true;
				e->nhdr = 0;
				off = hstart;
				break;
			}
		}
		length = be32(e->hdr + 4);
		{
			uint8_t *ver = tap_ver(t, e->bus, e->addr);

			for (;;) {
				hl = tap_hdr_len(e, ver ? *ver : 0, &mh);
				if (hl && e->nhdr >= hl)
					break;
				k = (hl ? hl : 12) - e->nhdr;
				k = k > n - off ? n - off : k;
				if (!k)
					break;
				memcpy(e->hdr + e->nhdr, d + off, k);
				e->nhdr += (uint8_t)k;
				off += k;
			}
			if (!hl || e->nhdr < hl)
				break; /* the header goes on in the next transfer */
			tap_classify(t, e, hl, mh);
			e->left = length - (uint32_t)hl;
			e->nhdr = 0;
			/* the device's VERSION reply fixes the header size */
			if (in && ver && be32(e->hdr) == MUX_PROTO_VERSION && e->left >= 4 &&
			    n - off >= 4) {
				uint32_t major = be32(d + off);

				*ver = major == 1 || major == 2 ? (uint8_t)major : *ver;
			}
		}
	}
	if (e->skip && off < n)
		t->redacted += tap_scan_feed(t, &e->r, d + off, n - off, true);
	if (full > n) {
		/* bytes not captured: the packet boundaries after them are lost */
		if (e->left >= full - n && !end) {
			e->left -= (uint32_t)(full - n);
		} else if (!end) {
			e->skip = true;
		}
	}
	if (end) {
		/* a short transfer ends whatever packet it was in (the codec drops a
		 * cut one) */
		e->skip = false;
		e->left = 0;
		e->nhdr = 0;
	}
}

static void tap_redact(struct cap_tap *t, const struct tr_xfer *x, enum tr_event ev,
		       const struct cap_usbmon_rec *rec, uint8_t *d)
{
	struct tap_ep *e = tap_endpoint(t, rec->busnum, rec->devnum, rec->epnum);
	bool in = (rec->epnum & 0x80) != 0;
	size_t full;

	if (!rec->data_len && !(in && ev == TR_EV_COMPLETE))
		return;
	if (!e) {
		t->redacted += cap_redact(d, rec->data_len);
		return;
	}
	if (x->type != TR_XFER_BULK) {
		t->redacted += tap_scan_feed(t, &e->r, d, rec->data_len, true);
		return;
	}
	if (in && (ev != TR_EV_COMPLETE || x->status != TR_STATUS_COMPLETED)) {
		/* the codec drops a failed transfer's bytes and starts over */
		t->redacted += tap_scan_feed(t, &e->r, d, rec->data_len, true);
		e->skip = false;
		e->left = 0;
		e->nhdr = 0;
		return;
	}
	full = in ? x->actual : x->len;
	if (full < rec->data_len)
		full = rec->data_len;
	/* OUT: one packet per transfer (the host's codec) but followed all the
	 * same; IN: a transfer shorter than its buffer ends the packet */
	tap_follow(t, e, d, rec->data_len, full, in ? x->actual < x->len : true, in);
}

void cap_tap_observe(void *ud, enum tr_event ev, const struct tr_xfer *x, int submit_err)
{
	struct cap_tap *t = ud;
	struct cap_usbmon_rec rec;
	struct lp_wr wr;
	uint64_t ns, wall;
	size_t origlen, caplen;
	uint8_t *p;
	int iface, rc;

	if (!t || !x || t->err)
		return;
	ns = ev == TR_EV_COMPLETE ? x->done_ns : x->submit_ns;
	wall = t->clock ? lp_clock_wall(t->clock, ns) : ns;
	cap_usbmon_from_xfer(ev, x, submit_err, wall, t->data_max, &rec);
	iface = tap_iface(t, x->dev);
	if (iface < 0) {
		t->err = iface;
		return;
	}
	/* libpcap's rule: the original length counts the URB's data when the
	 * record carries data, else only what was captured */
	caplen = CAP_USBMON_HDR_LEN + rec.data_len;
	origlen = CAP_USBMON_HDR_LEN + (rec.flag_data == 0 ? rec.len_urb : rec.len_cap);
	/* the record is built, and redacted, in the writer's buffer */
	rc = cap_packet_begin(t->w, iface, wall, caplen, origlen, t->mark, &p);
	if (rc) {
		t->err = rc;
		return;
	}
	lp_wr_init_fixed(&wr, p, caplen);
	cap_usbmon_encode(&wr, &rec);
	if (!lp_wr_ok(&wr) || wr.len != caplen) {
		cap_packet_abort(t->w);
		t->err = wr.err ? wr.err : LP_EIO;
		return;
	}
	if (t->redact)
		tap_redact(t, x, ev, &rec, p + CAP_USBMON_HDR_LEN);
	rc = cap_packet_commit(t->w);
	if (rc) {
		t->err = rc;
		return;
	}
	free(t->mark);
	t->mark = NULL;
	t->records++;
}
