/* replay_load.c - loads a recorded capture's device side into the data model
 * of replay_rec.h: pcap -> usbmon records -> the chosen device's control
 * replies, usbmux ports and lockdown exchanges. Records are parsed through the
 * usbmon decoder, mux_decode, the lockdown framer and libplist only.
 *
 * Limits: lockdown traffic after a recorded StartSession with session TLS is
 * not extracted (the recorded bytes are TLS until StopSession; only whether
 * the device sent application data is noted); one disconnect (the first) is
 * timed; USBPcap (link type 249) captures are refused.
 *
 * Reference: doc/protocol.md (usbmux, lockdown, usbmon); Linux usbmon.rst.
 */
#include "src/device/replay_rec.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pcap/pcap.h>

#include "src/base/lp_cursor.h"
#include "usb/cap_usbmon.h"
#include "usb/usb_desc.h"
#include "proto/lockdown_frame.h"
#include "proto/mux.h"

#define RD_DEVS_MAX 32	     /* distinct (bus, address) seen while choosing */
#define RD_PENDING_CTRL 64   /* control submits awaiting their completion */
#define RD_PENDING_REQ 16    /* lockdown requests awaiting a reply per connection */
#define RD_STREAM_MAX (2u * MUX_MAX_PACKET)
#define RD_VALUE_SHOWN 60    /* characters of a Key/Service value in a meaning */

struct rd_rec {
	uint64_t ts;
	struct cap_usbmon_rec h; /* h.data points to own copy (or NULL) */
};

struct rd_pendreq {
	char meaning[RDEV_MEANING_MAX];
	uint64_t ts;
};

struct rd_recconn {
	uint16_t hport, dport;
	bool open, accepted;
	struct lkd_framer *fh, *fd; /* host->device, device->host (lockdown only) */
	struct rd_pendreq pend[RD_PENDING_REQ];
	size_t npend;
	bool tls;
	size_t tls_xchg;
	bool tls_app; /* device sent TLS application data */
	uint8_t tls_hdr[5];
	size_t tls_hdr_n, tls_skip;
};

struct rd_stream {
	uint8_t *buf;
	size_t len;
};

/* loading scratch around the recording being filled */
struct rd_ld {
	struct rdev_rec *rec;
	struct rd_recconn *rc;
	size_t nrc;
	struct rd_stream sh, sd;
	uint32_t ver;
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
	/* 0x1220-0x1283: DFU, WTF and recovery modes (notes 1.2) */
	return !(pid >= 0x1220 && pid <= 0x1283);
}

const struct rdev_ctrl *rdev_rec_ctrl(const struct rdev_rec *r, const uint8_t setup[8], bool any_index)
{
	for (size_t i = 0; i < r->nctrl; i++) {
		const uint8_t *s = r->ctrl[i].setup;
		if (s[0] == setup[0] && s[1] == setup[1] && s[2] == setup[2] && s[3] == setup[3] &&
		    (any_index || (s[4] == setup[4] && s[5] == setup[5])))
			return &r->ctrl[i];
	}
	return NULL;
}

static int ctrl_add(struct rdev_rec *r, const uint8_t setup[8], bool stall, const uint8_t *d, size_t len)
{
	struct rdev_ctrl *c = (struct rdev_ctrl *)rdev_rec_ctrl(r, setup, false);
	uint8_t *copy = NULL;

	if (c && (stall || (!c->stall && c->len >= len)))
		return 0; /* keep the longest successful answer */
	if (!c) {
		if (r->nctrl >= RDEV_MAX_CTRL)
			return 0;
		c = &r->ctrl[r->nctrl++];
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

/* ---- loading: reading the records ----------------------------------------- */

struct rd_recs {
	struct rd_rec *v;
	size_t n, cap, bytes;
};

static void recs_free(struct rd_recs *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		free((void *)rs->v[i].h.data);
	free(rs->v);
}

static int read_records(FILE *f, struct rd_recs *rs, struct lp_errinfo *e)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	struct pcap_pkthdr *ph;
	const u_char *pkt;
	pcap_t *p;
	int lt, rc, ret = 0;
	bool swapped;

	p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (!p) {
		fclose(f);
		return lp_err_set(e, LP_EFORMAT, "replay: not a pcap/pcapng capture (%s)", errbuf);
	}
	lt = pcap_datalink(p);
	if (lt != CAP_LINKTYPE_USB_LINUX && lt != CAP_LINKTYPE_USB_LINUX_MMAPPED) {
		pcap_close(p);
		return lp_err_set(e, LP_EFORMAT,
				  "replay: link type %d is not Linux usbmon (189/220); USBPcap is not supported", lt);
	}
	swapped = pcap_is_swapped(p) == 1;
	while ((rc = pcap_next_ex(p, &ph, &pkt)) == 1) {
		struct cap_usbmon_rec h;
		struct rd_rec *rr;

		if (cap_usbmon_decode_lt(pkt, ph->caplen, lt, swapped, &h))
			continue; /* malformed record: the rest may still replay */
		if (h.xfer_type != 2 && h.xfer_type != 3)
			continue;
		if (rs->n >= RDEV_MAX_RECORDS || rs->bytes + h.data_len > RDEV_MAX_BYTES) {
			ret = lp_err_set(e, LP_ETOOBIG, "replay: capture over %u records / %u bytes",
					 RDEV_MAX_RECORDS, RDEV_MAX_BYTES);
			break;
		}
		if (rs->n == rs->cap) {
			size_t nc = rs->cap ? rs->cap * 2 : 1024;
			struct rd_rec *nv = realloc(rs->v, nc * sizeof(*nv));
			if (!nv) {
				ret = lp_err_set(e, LP_ENOMEM, "out of memory");
				break;
			}
			rs->v = nv;
			rs->cap = nc;
		}
		rr = &rs->v[rs->n];
		rr->ts = (uint64_t)ph->ts.tv_sec * LP_NS_PER_S + (uint64_t)ph->ts.tv_usec;
		rr->h = h;
		rr->h.data = NULL;
		if (h.data_len) {
			uint8_t *d = malloc(h.data_len);
			if (!d) {
				ret = lp_err_set(e, LP_ENOMEM, "out of memory");
				break;
			}
			memcpy(d, h.data, h.data_len);
			rr->h.data = d;
		}
		rs->bytes += h.data_len;
		rs->n++;
	}
	pcap_close(p);
	return ret;
}

/* ---- loading: choosing the device ------------------------------------------ */

struct rd_cand {
	uint16_t bus;
	uint8_t dev;
	bool has_dd;
	struct usbd_device dd;
	char serial[80];
};

struct rd_pend {
	bool used;
	uint64_t id;
	uint16_t bus;
	uint8_t dev;
	uint8_t setup[8];
};

/* Pair control completions with their submits (the setup is in the S record). */
static bool ctrl_setup_of(struct rd_pend *pend, const struct cap_usbmon_rec *h, uint8_t setup[8])
{
	if (h->type == CAP_USBMON_SUBMIT) {
		if (h->flag_setup != 0)
			return false;
		size_t slot = RD_PENDING_CTRL;
		for (size_t i = 0; i < RD_PENDING_CTRL; i++) {
			if (!pend[i].used) {
				slot = i;
				break;
			}
		}
		if (slot == RD_PENDING_CTRL)
			slot = (size_t)(h->id % RD_PENDING_CTRL); /* forget an old one */
		pend[slot].used = true;
		pend[slot].id = h->id;
		pend[slot].bus = h->busnum;
		pend[slot].dev = h->devnum;
		memcpy(pend[slot].setup, h->setup, 8);
		return false;
	}
	for (size_t i = 0; i < RD_PENDING_CTRL; i++) {
		if (pend[i].used && pend[i].id == h->id && pend[i].bus == h->busnum &&
		    pend[i].dev == h->devnum) {
			pend[i].used = false;
			memcpy(setup, pend[i].setup, 8);
			return true;
		}
	}
	return false;
}

static struct rd_cand *cand_get(struct rd_cand *c, size_t *n, uint16_t bus, uint8_t dev)
{
	for (size_t i = 0; i < *n; i++)
		if (c[i].bus == bus && c[i].dev == dev)
			return &c[i];
	if (*n >= RD_DEVS_MAX)
		return NULL;
	memset(&c[*n], 0, sizeof(c[0]));
	c[*n].bus = bus;
	c[*n].dev = dev;
	return &c[(*n)++];
}

static int choose_device(struct rd_ld *r, const struct rd_recs *rs, const char *udid, struct rd_cand *cands,
			 size_t *ncand, struct lp_errinfo *e)
{
	struct rd_pend pend[RD_PENDING_CTRL];
	struct rd_cand *best = NULL;
	uint8_t setup[8];

	memset(pend, 0, sizeof(pend));
	for (size_t i = 0; i < rs->n; i++) {
		const struct cap_usbmon_rec *h = &rs->v[i].h;
		struct rd_cand *c;

		if (h->xfer_type != 2 || !ctrl_setup_of(pend, h, setup) || h->status != 0)
			continue;
		if (setup[0] != 0x80 || setup[1] != USBD_REQ_GET_DESCRIPTOR)
			continue;
		c = cand_get(cands, ncand, h->busnum, h->devnum);
		if (!c)
			continue;
		if (setup[3] == USBD_DT_DEVICE && !c->has_dd &&
		    usbd_parse_device(h->data, h->data_len, &c->dd) == 0)
			c->has_dd = true;
		else if (setup[3] == USBD_DT_STRING && c->has_dd && setup[2] && setup[2] == c->dd.iSerialNumber &&
			 !c->serial[0])
			usbd_parse_string(h->data, h->data_len, c->serial, sizeof(c->serial));
	}
	for (size_t i = 0; i < *ncand && !best; i++) {
		struct rd_cand *c = &cands[i];
		char u[80];
		if (!c->has_dd || !udid)
			continue;
		usbd_serial_to_udid(c->serial, u, sizeof(u));
		if (!strcasecmp(c->serial, udid) || !strcasecmp(u, udid))
			best = c;
	}
	if (udid && !best)
		return lp_err_set(e, LP_ENOENT, "replay: no device with UDID %s in the capture", udid);
	for (size_t i = 0; i < *ncand && !best; i++)
		if (cands[i].has_dd && cands[i].dd.idVendor == 0x05ac && is_normal_pid(cands[i].dd.idProduct))
			best = &cands[i];
	for (size_t i = 0; i < *ncand && !best; i++)
		if (cands[i].has_dd && cands[i].dd.idVendor == 0x05ac)
			best = &cands[i];
	for (size_t i = 0; i < *ncand && !best; i++)
		if (cands[i].has_dd)
			best = &cands[i];
	if (!best)
		return lp_err_set(e, *ncand ? LP_EBADMSG : LP_ENOENT,
				  "replay: no device answered GET_DESCRIPTOR(device) in the capture");
	r->rec->dd = best->dd;
	r->rec->bus = (uint8_t)best->bus;
	r->rec->addr = best->dev;
	snprintf(r->rec->serial, sizeof(r->rec->serial), "%s", best->serial);
	return 0;
}

/* The same phone after re-enumeration: same bus, ids and serial. */
static bool followed(const struct rd_ld *r, const struct rd_cand *cands, size_t ncand, uint16_t bus, uint8_t dev)
{
	if (bus != r->rec->bus)
		return false;
	if (dev == r->rec->addr)
		return true;
	for (size_t i = 0; i < ncand; i++) {
		const struct rd_cand *c = &cands[i];
		if (c->bus == bus && c->dev == dev)
			return c->has_dd && c->dd.idVendor == r->rec->dd.idVendor && c->dd.idProduct == r->rec->dd.idProduct &&
			       (!c->serial[0] || !r->rec->serial[0] || !strcmp(c->serial, r->rec->serial));
	}
	return false;
}

/* ---- loading: the usbmux conversation -------------------------------------- */

static void add_port(uint16_t *v, size_t *n, uint16_t port, bool dup)
{
	if (!dup)
		for (size_t i = 0; i < *n; i++)
			if (v[i] == port)
				return;
	if (*n < RDEV_MAX_PORTS)
		v[(*n)++] = port;
}

static struct rd_recconn *rc_find(struct rd_ld *r, uint16_t hport, uint16_t dport, bool create)
{
	for (size_t i = r->nrc; i-- > 0;)
		if (r->rc[i].open && r->rc[i].hport == hport && r->rc[i].dport == dport)
			return &r->rc[i];
	if (!create || r->nrc >= RDEV_MAX_RECCONNS)
		return NULL;
	struct rd_recconn *c = &r->rc[r->nrc++];
	memset(c, 0, sizeof(*c));
	c->hport = hport;
	c->dport = dport;
	c->open = true;
	if (dport == MUX_PORT_LOCKDOWN) {
		c->fh = lkd_framer_new();
		c->fd = lkd_framer_new();
	}
	return c;
}

static void rc_close(struct rd_recconn *c)
{
	c->open = false;
	lkd_framer_free(c->fh);
	lkd_framer_free(c->fd);
	c->fh = c->fd = NULL;
}

static int add_exchange(struct rd_ld *r, struct rd_recconn *c, plist_t reply, uint64_t ts)
{
	struct rdev_xchg *x;
	const char *err = lkd_dict_str(reply, "Error");

	if (!c->npend || r->rec->nx >= RDEV_MAX_EXCHANGES) {
		plist_free(reply);
		return 0; /* unsolicited, or over the cap */
	}
	x = &r->rec->x[r->rec->nx];
	memset(x, 0, sizeof(*x));
	snprintf(x->meaning, sizeof(x->meaning), "%s", c->pend[0].meaning);
	x->reply = reply;
	x->delay_ns = ts > c->pend[0].ts ? ts - c->pend[0].ts : 0;
	if (x->delay_ns > RDEV_MAX_DELAY_NS)
		x->delay_ns = RDEV_MAX_DELAY_NS;
	memmove(&c->pend[0], &c->pend[1], (c->npend - 1) * sizeof(c->pend[0]));
	c->npend--;
	if (!strcmp(x->meaning, "StartSession") && !err && lkd_dict_bool(reply, "EnableSessionSSL", 0)) {
		x->tls_start = true;
		c->tls = true;
		c->tls_xchg = r->rec->nx;
	}
	r->rec->nx++;
	return 0;
}

/* Device->host bytes of a TLS connection: does any application data record
 * (content type 23) go by? */
static void tls_scan(struct rd_recconn *c, const uint8_t *p, size_t n)
{
	while (n) {
		if (c->tls_skip) {
			size_t k = c->tls_skip < n ? c->tls_skip : n;
			c->tls_skip -= k;
			p += k;
			n -= k;
			continue;
		}
		c->tls_hdr[c->tls_hdr_n++] = *p++;
		n--;
		if (c->tls_hdr_n == 5) {
			if (c->tls_hdr[0] == 23)
				c->tls_app = true;
			c->tls_skip = (size_t)c->tls_hdr[3] << 8 | c->tls_hdr[4];
			c->tls_hdr_n = 0;
		}
	}
}

static void lockdown_bytes(struct rd_ld *r, struct rd_recconn *c, bool from_host, const uint8_t *p, size_t n,
			   uint64_t ts)
{
	struct lkd_framer *f = from_host ? c->fh : c->fd;
	plist_t msg;
	int rc;

	if (c->tls) {
		if (!from_host)
			tls_scan(c, p, n);
		return;
	}
	if (!f || lkd_framer_feed(f, p, n))
		return;
	while ((rc = lkd_framer_next(f, &msg, NULL, NULL)) != LP_EAGAIN) {
		if (rc == LP_ETOOBIG)
			return;
		if (rc)
			continue;
		if (from_host) {
			if (c->npend < RD_PENDING_REQ) {
				rdev_meaning(msg, c->pend[c->npend].meaning, RDEV_MEANING_MAX);
				c->pend[c->npend++].ts = ts;
			}
			plist_free(msg);
		} else {
			add_exchange(r, c, msg, ts);
		}
		if (c->tls)
			return; /* what follows the StartSession reply is TLS */
	}
}

static void mux_packet(struct rd_ld *r, bool from_host, const struct mux_packet *p, uint64_t ts)
{
	struct rd_recconn *c;

	if (p->protocol == MUX_PROTO_VERSION) {
		if (!from_host && p->payload_len >= 4) {
			struct lp_rd rd;
			lp_rd_init(&rd, p->payload, p->payload_len);
			uint32_t major = lp_rd_be32(&rd);
			if (major == 1 || major == 2) {
				r->ver = major;
				if (!r->rec->mux_major)
					r->rec->mux_major = major;
			}
		}
		return;
	}
	if (p->protocol != MUX_PROTO_TCP)
		return;
	if (from_host) {
		if ((p->flags & (MUX_TH_SYN | MUX_TH_ACK)) == MUX_TH_SYN) {
			c = rc_find(r, p->sport, p->dport, false);
			if (c)
				rc_close(c);
			rc_find(r, p->sport, p->dport, true);
			return;
		}
		c = rc_find(r, p->sport, p->dport, false);
		if (!c)
			return;
		if (p->flags & MUX_TH_RST) {
			rc_close(c);
			return;
		}
		if (p->payload_len)
			lockdown_bytes(r, c, true, p->payload, p->payload_len, ts);
		return;
	}
	c = rc_find(r, p->dport, p->sport, false);
	if (!c)
		return;
	if ((p->flags & (MUX_TH_SYN | MUX_TH_ACK)) == (MUX_TH_SYN | MUX_TH_ACK)) {
		c->accepted = true;
		add_port(r->rec->accepted, &r->rec->nacc, p->sport, false);
		if (p->sport != MUX_PORT_LOCKDOWN)
			add_port(r->rec->svc_ports, &r->rec->nsvc, p->sport, true);
		return;
	}
	if (p->flags & MUX_TH_RST) {
		if (!c->accepted)
			add_port(r->rec->refused, &r->rec->nref, p->sport, false);
		else if (c->tls && !c->tls_app && c->tls_xchg < r->rec->nx)
			r->rec->x[c->tls_xchg].tls_failed = true;
		rc_close(c);
		return;
	}
	if (p->payload_len)
		lockdown_bytes(r, c, false, p->payload, p->payload_len, ts);
}

static void stream_add(struct rd_ld *r, struct rd_stream *s, bool from_host, const uint8_t *d, size_t n,
		       uint64_t ts)
{
	struct mux_packet p;
	size_t off = 0;

	if (s->len + n > RD_STREAM_MAX) {
		s->len = 0; /* lost sync: start over at the next transfer */
		if (n > RD_STREAM_MAX)
			return;
	}
	memcpy(s->buf + s->len, d, n);
	s->len += n;
	while (s->len - off >= MUX_V1_HDR) {
		int rc = mux_decode(s->buf + off, s->len - off, r->ver ? r->ver : 1, &p);
		if (rc == LP_ETRUNC)
			break;
		if (rc) {
			off = s->len;
			break;
		}
		mux_packet(r, from_host, &p, ts);
		off += p.length;
	}
	memmove(s->buf, s->buf + off, s->len - off);
	s->len -= off;
}

static void attachment_reset(struct rd_ld *r)
{
	for (size_t i = 0; i < r->nrc; i++)
		if (r->rc[i].open)
			rc_close(&r->rc[i]);
	r->sh.len = r->sd.len = 0;
	r->ver = 0;
}

static int extract(struct rd_ld *r, const struct rd_recs *rs, const struct rd_cand *cands, size_t ncand)
{
	struct rd_pend pend[RD_PENDING_CTRL];
	uint8_t setup[8], cur = r->rec->addr;
	bool gone = false, first = true;
	int ret = 0;

	memset(pend, 0, sizeof(pend));
	r->sh.buf = malloc(RD_STREAM_MAX);
	r->sd.buf = malloc(RD_STREAM_MAX);
	r->rc = calloc(RDEV_MAX_RECCONNS, sizeof(*r->rc));
	r->rec->x = calloc(RDEV_MAX_EXCHANGES, sizeof(*r->rec->x));
	if (!r->sh.buf || !r->sd.buf || !r->rc || !r->rec->x)
		return LP_ENOMEM;
	for (size_t i = 0; i < rs->n && !ret; i++) {
		const struct cap_usbmon_rec *h = &rs->v[i].h;
		uint64_t ts = rs->v[i].ts;
		bool in = h->epnum & 0x80;

		if (!followed(r, cands, ncand, h->busnum, h->devnum))
			continue;
		if (first) {
			r->rec->t_first = ts;
			first = false;
		}
		if (gone && h->devnum != cur && h->type == CAP_USBMON_SUBMIT) {
			if (r->rec->disconnects == 1)
				r->rec->back_at = ts;
			gone = false;
			cur = h->devnum;
			attachment_reset(r);
		}
		if (h->devnum != cur || gone)
			continue; /* other devices; the old address after the unplug */
		if (h->status == CAP_URB_ENODEV || h->status == CAP_URB_ESHUTDOWN) {
			if (!gone) {
				gone = true;
				if (!r->rec->disconnects++)
					r->rec->disc_at = ts;
			}
			continue;
		}
		if (h->xfer_type == 2) {
			if (ctrl_setup_of(pend, h, setup) && h->type == CAP_USBMON_COMPLETE)
				ret = ctrl_add(r->rec, setup, h->status == CAP_URB_EPIPE, h->data,
					       (setup[0] & 0x80) && !h->status ? h->data_len : 0);
			continue;
		}
		/* bulk */
		if (h->type == CAP_USBMON_COMPLETE) {
			r->rec->bulk++;
			if (h->status && h->status != CAP_URB_EREMOTEIO && h->status != CAP_URB_ENOENT &&
			    h->status != CAP_URB_ECONNRESET)
				r->rec->bulk_err++;
		}
		if (h->clipped)
			continue;
		if (!in && h->type == CAP_USBMON_SUBMIT && h->data_len)
			stream_add(r, &r->sh, true, h->data, h->data_len, ts);
		else if (in && h->type == CAP_USBMON_COMPLETE && h->data_len &&
			 (h->status == 0 || h->status == CAP_URB_EREMOTEIO))
			stream_add(r, &r->sd, false, h->data, h->data_len, ts);
	}
	if (r->rec->disconnects && !r->rec->back_at)
		r->rec->back_at = UINT64_MAX; /* never came back */
	attachment_reset(r);
	return ret;
}

static void load_identity(struct rd_ld *r)
{
	uint16_t mps = 0;

	for (unsigned i = 0; i < r->rec->dd.bNumConfigurations && i < USBD_MAX_CONFIGS; i++) {
		const uint8_t setup[8] = {0x80, USBD_REQ_GET_DESCRIPTOR, (uint8_t)i, USBD_DT_CONFIG, 0, 0, 0, 0};
		const struct rdev_ctrl *c = rdev_rec_ctrl(r->rec, setup, true);
		uint8_t ei, eo;
		uint16_t m;

		if (!c || c->stall || usbd_parse_config(c->data, c->len, &r->rec->cfg[i]))
			continue;
		r->rec->cfg_ok[i] = true;
		if (usbd_find_usbmux(&r->rec->cfg[i], &ei, &eo, &m) && !mps)
			mps = m;
		for (unsigned j = 0; j < r->rec->cfg[i].num_ifaces && !mps; j++)
			for (unsigned k = 0; k < r->rec->cfg[i].iface[j].num_eps; k++)
				if ((r->rec->cfg[i].iface[j].ep[k].bmAttributes & 3) == 2)
					mps = r->rec->cfg[i].iface[j].ep[k].wMaxPacketSize;
	}
	if (r->rec->dd.bcdUSB >= 0x0300 && mps >= 1024)
		r->rec->speed = TR_SPEED_SUPER;
	else if (mps && mps <= 64)
		r->rec->speed = TR_SPEED_FULL;
	else
		r->rec->speed = TR_SPEED_HIGH;
}

int rdev_rec_load(FILE *f, const char *udid, const struct lp_log *log, struct rdev_rec **out,
		  struct lp_errinfo *e)
{
	struct rd_recs rs = {0};
	struct rd_cand cands[RD_DEVS_MAX];
	size_t ncand = 0;
	struct rd_ld ld = {0}, *r = &ld;
	int ret;

	if (!f)
		return lp_err_set(e, LP_EINVAL, "replay: no capture");
	r->rec = calloc(1, sizeof(*r->rec));
	if (!r->rec) {
		fclose(f);
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	}
	ret = read_records(f, &rs, e);
	if (!ret)
		ret = choose_device(r, &rs, udid, cands, &ncand, e);
	if (!ret && (ret = extract(r, &rs, cands, ncand)))
		lp_err_set(e, ret, "replay: %s", lp_strerror(ret));
	recs_free(&rs);
	free(r->sh.buf);
	free(r->sd.buf);
	free(r->rc);
	if (ret) {
		rdev_rec_free(r->rec);
		return ret;
	}
	load_identity(r);
	lp_logf(log, LP_LOG_INFO,
		"replay: device %04x:%04x %s at %u-%u: %zu control replies, usbmux v%u, %zu lockdown exchanges, "
		"%zu disconnect(s)", r->rec->dd.idVendor, r->rec->dd.idProduct, r->rec->serial, r->rec->bus,
		r->rec->addr, r->rec->nctrl, r->rec->mux_major, r->rec->nx, r->rec->disconnects);
	*out = r->rec;
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
