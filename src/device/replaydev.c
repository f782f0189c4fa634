/* replaydev.c - a recorded capture's device side as a tr_sim device model.
 *
 * Two halves: loading (pcap -> usbmon records -> the chosen device's control
 * replies, usbmux ports and lockdown exchanges) and playing (the model ops).
 * See replaydev.h for what is matched how; the limits, in one place:
 *  - session TLS is not replayed: it is re-done with a throwaway key, and
 *    what happened inside the recorded TLS is inferred (the service ports
 *    the host connected to afterwards); GetValue inside TLS is answered only
 *    from plaintext replies of the same key;
 *  - service connections other than lockdown are accepted and otherwise
 *    silent (their payload is not replayed);
 *  - lockdown traffic after a recorded StopSession on the same connection is
 *    not extracted (the recorded bytes are TLS until then);
 *  - one disconnect (the first) is replayed; transfer errors are replayed as
 *    a rate, not at their recorded positions;
 *  - USBPcap (link type 249) captures are refused.
 *
 * Reference: protocol-notes.md 2, 4 and 6.1; Linux usbmon.rst.
 */
#include "src/device/replaydev.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <pcap/pcap.h>

#include "src/base/lp_cursor.h"
#include "usb/cap_usbmon.h"
#include "usb/usb_desc.h"
#include "proto/lockdown_frame.h"
#include "proto/mux.h"
#include "proto/pair_cert.h"
#include "proto/tls.h"

#define RD_DEVS_MAX 32	     /* distinct (bus, address) seen while choosing */
#define RD_PENDING_CTRL 64   /* control submits awaiting their completion */
#define RD_PENDING_REQ 16    /* lockdown requests awaiting a reply per connection */
#define RD_STREAM_MAX (2u * MUX_MAX_PACKET)
#define RD_TLS_IN_MAX (LKD_MAX_MESSAGE + 4096)
#define RD_NEXT_SHOWN 3	     /* recorded alternatives named in a divergence */
#define RD_VALUE_SHOWN 60    /* characters of a Key/Service value in a meaning */

/* ---- recorded material --------------------------------------------------- */

struct rd_rec {
	uint64_t ts;
	struct cap_usbmon_rec h; /* h.data points to own copy (or NULL) */
};

struct rd_ctrl {
	uint8_t setup[8];
	bool stall;
	uint8_t *data;
	size_t len;
};

struct rd_xchg {
	char meaning[RDEV_MEANING_MAX];
	plist_t reply; /* owned */
	uint64_t delay_ns;
	bool used;
	bool tls_start;	 /* StartSession answered with EnableSessionSSL */
	bool tls_failed; /* ... and the device reset the TLS connection */
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

/* ---- playing ------------------------------------------------------------- */

enum rt_state { RT_PLAIN, RT_TLS_HS, RT_TLS, RT_CLOSING, RT_DEAD };

struct rt_conn {
	bool used;
	uint32_t id;
	uint16_t port;
	enum rt_state st;
	bool tls_fail;
	uint8_t *in;
	size_t in_len;
	uint8_t *pt;
	size_t pt_len;
	struct lp_tls *tls;
};

struct rt_out {
	struct rt_out *next;
	uint32_t conn;
	uint64_t at;
	size_t len;
	uint8_t buf[];
};

struct rdev {
	struct lp_clock *clock;
	const struct lp_log *log;
	bool timing;
	/* identity */
	struct usbd_device dd;
	uint8_t bus, addr;
	char serial[80];
	struct usbd_config cfg[USBD_MAX_CONFIGS];
	bool cfg_ok[USBD_MAX_CONFIGS];
	enum tr_speed speed;
	/* recorded */
	struct rd_ctrl ctrl[RDEV_MAX_CTRL];
	size_t nctrl;
	struct rd_xchg *x;
	size_t nx;
	uint16_t accepted[RDEV_MAX_PORTS], refused[RDEV_MAX_PORTS];
	size_t nacc, nref;
	uint16_t svc_ports[RDEV_MAX_PORTS]; /* non-lockdown ports accepted, in order */
	size_t nsvc, svc_next;
	uint32_t mux_major;
	uint64_t t_first, disc_at, back_at;
	size_t disconnects;
	uint64_t bulk, bulk_err;
	size_t replayed, reused;
	/* loading scratch */
	struct rd_recconn *rc;
	size_t nrc;
	struct rd_stream sh, sd;
	uint32_t ver;
	/* playing */
	uint64_t now;
	uint8_t config;
	struct mux *mux;
	uint8_t ep_in, ep_out;
	uint16_t mps;
	uint8_t *in_pkt;
	struct rt_conn conns[MUX_MAX_CONNS];
	struct rt_out *oq_head, *oq_tail;
	uint64_t oq_last;
	X509 *srv_cert;
	EVP_PKEY *srv_key;
	char divergence[RDEV_DIVERGENCE_MAX];
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

static struct rd_ctrl *ctrl_find(struct rdev *r, const uint8_t setup[8], bool any_index)
{
	for (size_t i = 0; i < r->nctrl; i++) {
		const uint8_t *s = r->ctrl[i].setup;
		if (s[0] == setup[0] && s[1] == setup[1] && s[2] == setup[2] && s[3] == setup[3] &&
		    (any_index || (s[4] == setup[4] && s[5] == setup[5])))
			return &r->ctrl[i];
	}
	return NULL;
}

static int ctrl_add(struct rdev *r, const uint8_t setup[8], bool stall, const uint8_t *d, size_t len)
{
	struct rd_ctrl *c = ctrl_find(r, setup, false);
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

static int choose_device(struct rdev *r, const struct rd_recs *rs, const char *udid, struct rd_cand *cands,
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
	r->dd = best->dd;
	r->bus = (uint8_t)best->bus;
	r->addr = best->dev;
	snprintf(r->serial, sizeof(r->serial), "%s", best->serial);
	return 0;
}

/* The same phone after re-enumeration: same bus, ids and serial. */
static bool followed(const struct rdev *r, const struct rd_cand *cands, size_t ncand, uint16_t bus, uint8_t dev)
{
	if (bus != r->bus)
		return false;
	if (dev == r->addr)
		return true;
	for (size_t i = 0; i < ncand; i++) {
		const struct rd_cand *c = &cands[i];
		if (c->bus == bus && c->dev == dev)
			return c->has_dd && c->dd.idVendor == r->dd.idVendor && c->dd.idProduct == r->dd.idProduct &&
			       (!c->serial[0] || !r->serial[0] || !strcmp(c->serial, r->serial));
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

static struct rd_recconn *rc_find(struct rdev *r, uint16_t hport, uint16_t dport, bool create)
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

static int add_exchange(struct rdev *r, struct rd_recconn *c, plist_t reply, uint64_t ts)
{
	struct rd_xchg *x;
	const char *err = lkd_dict_str(reply, "Error");

	if (!c->npend || r->nx >= RDEV_MAX_EXCHANGES) {
		plist_free(reply);
		return 0; /* unsolicited, or over the cap */
	}
	x = &r->x[r->nx];
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
		c->tls_xchg = r->nx;
	}
	r->nx++;
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

static void lockdown_bytes(struct rdev *r, struct rd_recconn *c, bool from_host, const uint8_t *p, size_t n,
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

static void mux_packet(struct rdev *r, bool from_host, const struct mux_packet *p, uint64_t ts)
{
	struct rd_recconn *c;

	if (p->protocol == MUX_PROTO_VERSION) {
		if (!from_host && p->payload_len >= 4) {
			struct lp_rd rd;
			lp_rd_init(&rd, p->payload, p->payload_len);
			uint32_t major = lp_rd_be32(&rd);
			if (major == 1 || major == 2) {
				r->ver = major;
				if (!r->mux_major)
					r->mux_major = major;
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
		add_port(r->accepted, &r->nacc, p->sport, false);
		if (p->sport != MUX_PORT_LOCKDOWN)
			add_port(r->svc_ports, &r->nsvc, p->sport, true);
		return;
	}
	if (p->flags & MUX_TH_RST) {
		if (!c->accepted)
			add_port(r->refused, &r->nref, p->sport, false);
		else if (c->tls && !c->tls_app && c->tls_xchg < r->nx)
			r->x[c->tls_xchg].tls_failed = true;
		rc_close(c);
		return;
	}
	if (p->payload_len)
		lockdown_bytes(r, c, false, p->payload, p->payload_len, ts);
}

static void stream_add(struct rdev *r, struct rd_stream *s, bool from_host, const uint8_t *d, size_t n,
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

static void attachment_reset(struct rdev *r)
{
	for (size_t i = 0; i < r->nrc; i++)
		if (r->rc[i].open)
			rc_close(&r->rc[i]);
	r->sh.len = r->sd.len = 0;
	r->ver = 0;
}

static int extract(struct rdev *r, const struct rd_recs *rs, const struct rd_cand *cands, size_t ncand)
{
	struct rd_pend pend[RD_PENDING_CTRL];
	uint8_t setup[8], cur = r->addr;
	bool gone = false, first = true;
	int ret = 0;

	memset(pend, 0, sizeof(pend));
	r->sh.buf = malloc(RD_STREAM_MAX);
	r->sd.buf = malloc(RD_STREAM_MAX);
	r->rc = calloc(RDEV_MAX_RECCONNS, sizeof(*r->rc));
	r->x = calloc(RDEV_MAX_EXCHANGES, sizeof(*r->x));
	if (!r->sh.buf || !r->sd.buf || !r->rc || !r->x)
		return LP_ENOMEM;
	for (size_t i = 0; i < rs->n && !ret; i++) {
		const struct cap_usbmon_rec *h = &rs->v[i].h;
		uint64_t ts = rs->v[i].ts;
		bool in = h->epnum & 0x80;

		if (!followed(r, cands, ncand, h->busnum, h->devnum))
			continue;
		if (first) {
			r->t_first = ts;
			first = false;
		}
		if (gone && h->devnum != cur && h->type == CAP_USBMON_SUBMIT) {
			if (r->disconnects == 1)
				r->back_at = ts;
			gone = false;
			cur = h->devnum;
			attachment_reset(r);
		}
		if (h->devnum != cur || gone)
			continue; /* other devices; the old address after the unplug */
		if (h->status == CAP_URB_ENODEV || h->status == CAP_URB_ESHUTDOWN) {
			if (!gone) {
				gone = true;
				if (!r->disconnects++)
					r->disc_at = ts;
			}
			continue;
		}
		if (h->xfer_type == 2) {
			if (ctrl_setup_of(pend, h, setup) && h->type == CAP_USBMON_COMPLETE)
				ret = ctrl_add(r, setup, h->status == CAP_URB_EPIPE, h->data,
					       (setup[0] & 0x80) && !h->status ? h->data_len : 0);
			continue;
		}
		/* bulk */
		if (h->type == CAP_USBMON_COMPLETE) {
			r->bulk++;
			if (h->status && h->status != CAP_URB_EREMOTEIO && h->status != CAP_URB_ENOENT &&
			    h->status != CAP_URB_ECONNRESET)
				r->bulk_err++;
		}
		if (h->clipped)
			continue;
		if (!in && h->type == CAP_USBMON_SUBMIT && h->data_len)
			stream_add(r, &r->sh, true, h->data, h->data_len, ts);
		else if (in && h->type == CAP_USBMON_COMPLETE && h->data_len &&
			 (h->status == 0 || h->status == CAP_URB_EREMOTEIO))
			stream_add(r, &r->sd, false, h->data, h->data_len, ts);
	}
	if (r->disconnects && !r->back_at)
		r->back_at = UINT64_MAX; /* never came back */
	attachment_reset(r);
	return ret;
}

static void load_identity(struct rdev *r)
{
	uint16_t mps = 0;

	for (unsigned i = 0; i < r->dd.bNumConfigurations && i < USBD_MAX_CONFIGS; i++) {
		const uint8_t setup[8] = {0x80, USBD_REQ_GET_DESCRIPTOR, (uint8_t)i, USBD_DT_CONFIG, 0, 0, 0, 0};
		struct rd_ctrl *c = ctrl_find(r, setup, true);
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

int rdev_load_file(FILE *f, const struct rdev_opts *o, struct lp_clock *clock, const struct lp_log *log,
		   struct rdev **out, struct lp_errinfo *e)
{
	struct rd_recs rs = {0};
	struct rd_cand cands[RD_DEVS_MAX];
	size_t ncand = 0;
	struct rdev *r;
	int ret;

	if (!f)
		return lp_err_set(e, LP_EINVAL, "replay: no capture");
	r = calloc(1, sizeof(*r));
	if (!r) {
		fclose(f);
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	}
	r->clock = clock;
	r->log = log;
	r->timing = !(o && o->no_timing);
	ret = read_records(f, &rs, e);
	if (!ret)
		ret = choose_device(r, &rs, o ? o->udid : NULL, cands, &ncand, e);
	if (!ret && (ret = extract(r, &rs, cands, ncand)))
		lp_err_set(e, ret, "replay: %s", lp_strerror(ret));
	recs_free(&rs);
	free(r->sh.buf);
	free(r->sd.buf);
	free(r->rc);
	r->sh.buf = r->sd.buf = NULL;
	r->rc = NULL;
	if (ret) {
		rdev_free(r);
		return ret;
	}
	load_identity(r);
	lp_logf(log, LP_LOG_INFO,
		"replay: device %04x:%04x %s at %u-%u: %zu control replies, usbmux v%u, %zu lockdown exchanges, "
		"%zu disconnect(s)", r->dd.idVendor, r->dd.idProduct, r->serial, r->bus, r->addr, r->nctrl,
		r->mux_major, r->nx, r->disconnects);
	*out = r;
	return 0;
}

int rdev_load_path(const char *path, const struct rdev_opts *o, struct lp_clock *clock, const struct lp_log *log,
		   struct rdev **out, struct lp_errinfo *e)
{
	FILE *f = fopen(path, "rb");

	if (!f)
		return lp_err_set(e, LP_ENOENT, "replay: cannot open %s", path);
	return rdev_load_file(f, o, clock, log, out, e);
}

/* ---- playing: output queue -------------------------------------------------- */

static void oq_flush(struct rdev *r)
{
	while (r->oq_head && r->oq_head->at <= r->now) {
		struct rt_out *o = r->oq_head;
		r->oq_head = o->next;
		if (!r->oq_head)
			r->oq_tail = NULL;
		if (r->mux && o->len)
			mux_send(r->mux, o->conn, o->buf, o->len);
		free(o);
	}
}

static void oq_clear(struct rdev *r)
{
	while (r->oq_head) {
		struct rt_out *o = r->oq_head;
		r->oq_head = o->next;
		free(o);
	}
	r->oq_tail = NULL;
}

/* Send bytes on conn after `delay`, in order with everything queued before. */
static void emit(struct rdev *r, uint32_t conn, const uint8_t *buf, size_t len, uint64_t delay)
{
	uint64_t at = r->now + (r->timing ? delay : 0);
	struct rt_out *o;

	if (!len)
		return;
	if (r->oq_head && at < r->oq_last)
		at = r->oq_last;
	if (at <= r->now && !r->oq_head) {
		mux_send(r->mux, conn, buf, len);
		return;
	}
	o = malloc(sizeof(*o) + len);
	if (!o)
		return;
	o->next = NULL;
	o->conn = conn;
	o->at = at;
	o->len = len;
	memcpy(o->buf, buf, len);
	if (r->oq_tail)
		r->oq_tail->next = o;
	else
		r->oq_head = o;
	r->oq_tail = o;
	r->oq_last = at;
}

/* ---- playing: lockdown ------------------------------------------------------ */

static struct rt_conn *conn_get(struct rdev *r, uint32_t id)
{
	for (size_t i = 0; i < MUX_MAX_CONNS; i++)
		if (r->conns[i].used && r->conns[i].id == id)
			return &r->conns[i];
	return NULL;
}

static void conn_release(struct rt_conn *c)
{
	free(c->in);
	free(c->pt);
	lp_tls_free(c->tls);
	memset(c, 0, sizeof(*c));
}

static void conn_kill(struct rdev *r, struct rt_conn *c)
{
	c->st = RT_DEAD;
	c->in_len = c->pt_len = 0;
	mux_close(r->mux, c->id);
}

static void tls_out(struct rdev *r, struct rt_conn *c, uint64_t delay)
{
	uint8_t *b = NULL;
	size_t n = 0;

	if (c->tls && lp_tls_take(c->tls, &b, &n) == 0 && n)
		emit(r, c->id, b, n, delay);
	free(b);
}

static void send_reply(struct rdev *r, struct rt_conn *c, plist_t reply, uint64_t delay)
{
	uint8_t *b = NULL;
	size_t n = 0;

	if (lkd_frame_encode(reply, &b, &n))
		return;
	if (c->st == RT_TLS) {
		if (lp_tls_write(c->tls, b + 0, n, NULL) == 0)
			tls_out(r, c, delay);
	} else {
		emit(r, c->id, b, n, delay);
	}
	free(b);
}

static void diverge(struct rdev *r, struct rt_conn *c, const char *meaning, bool in_tls, const char *why)
{
	char next[256] = "";
	size_t shown = 0, len = 0;

	for (size_t i = 0; i < r->nx && shown < RD_NEXT_SHOWN; i++) {
		size_t same = 1;
		if (r->x[i].used)
			continue;
		while (i + same < r->nx && !r->x[i + same].used && !strcmp(r->x[i + same].meaning, r->x[i].meaning))
			same++;
		len += (size_t)snprintf(next + len, len < sizeof(next) ? sizeof(next) - len : 0, "%s%s", shown ? ", " : "",
					r->x[i].meaning);
		if (same > 1 && len < sizeof(next))
			len += (size_t)snprintf(next + len, sizeof(next) - len, " (x%zu)", same);
		if (len >= sizeof(next))
			break;
		i += same - 1;
		shown++;
	}
	if (!r->divergence[0]) {
		if (why)
			snprintf(r->divergence, sizeof(r->divergence), "host sent %s%s; %s", meaning,
				 in_tls ? " inside session TLS" : "", why);
		else
			snprintf(r->divergence, sizeof(r->divergence), "host sent %s%s; recording has %s%s", meaning,
				 in_tls ? " inside session TLS" : "", next[0] ? "next: " : "no further lockdown request",
				 next);
		lp_logf(r->log, LP_LOG_WARN, "replay: diverged: %s", r->divergence);
	}
	conn_kill(r, c);
}

/* The next recorded exchange with this meaning (its last one again when all
 * were used), or NULL. */
static struct rd_xchg *match(struct rdev *r, const char *meaning)
{
	struct rd_xchg *last = NULL;

	for (size_t i = 0; i < r->nx; i++) {
		if (strcmp(r->x[i].meaning, meaning))
			continue;
		if (!r->x[i].used) {
			r->x[i].used = true;
			r->replayed++;
			return &r->x[i];
		}
		last = &r->x[i];
	}
	if (last) {
		r->replayed++;
		r->reused++;
	}
	return last;
}

static int server_creds(struct rdev *r)
{
	uint8_t *pem = NULL;
	size_t len = 0;
	X509 *x = NULL;
	X509_NAME *nm;

	if (r->srv_cert)
		return 0;
	if (pair_device_key_generate(&r->srv_key, &pem, &len))
		return LP_ECRYPTO;
	free(pem);
	x = X509_new();
	nm = x ? X509_get_subject_name(x) : NULL;
	if (!x || !X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365) || !X509_set_pubkey(x, r->srv_key) ||
	    !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"linkprobe replay", -1, -1, 0) ||
	    !X509_set_issuer_name(x, nm) || !X509_sign(x, r->srv_key, EVP_sha256())) {
		X509_free(x);
		EVP_PKEY_free(r->srv_key);
		r->srv_key = NULL;
		return LP_ECRYPTO;
	}
	r->srv_cert = x;
	return 0;
}

static plist_t reply_new(const char *request)
{
	plist_t d = plist_new_dict();
	plist_dict_set_item(d, "Request", plist_new_string(request));
	plist_dict_set_item(d, "Result", plist_new_string("Success"));
	return d;
}

static void handle_request(struct rdev *r, struct rt_conn *c, plist_t req)
{
	char meaning[RDEV_MEANING_MAX];
	const char *rq = lkd_dict_str(req, "Request");
	bool in_tls = c->st == RT_TLS;
	struct rd_xchg *x;

	rdev_meaning(req, meaning, sizeof(meaning));
	if (in_tls && rq && !strcmp(rq, "StopSession")) {
		plist_t rep = reply_new("StopSession");
		send_reply(r, c, rep, 0);
		plist_free(rep);
		/* our close_notify, then the host's TLS records are skipped */
		lp_tls_shutdown(c->tls);
		tls_out(r, c, 0);
		lp_tls_free(c->tls);
		c->tls = NULL;
		c->st = RT_CLOSING; /* tls_input drops what is left inside TLS */
		return;
	}
	x = match(r, meaning);
	if (x) {
		send_reply(r, c, x->reply, x->delay_ns);
		if (x->tls_start && !in_tls) {
			struct lp_errinfo e = {0};
			c->st = RT_TLS_HS;
			c->tls_fail = x->tls_failed;
			if (!c->tls_fail && (server_creds(r) ||
					     !(c->tls = lp_tls_new_server(r->srv_cert, r->srv_key, &e)))) {
				lp_logf(r->log, LP_LOG_WARN, "replay: no TLS server: %s", e.msg);
				conn_kill(r, c);
			}
		}
		return;
	}
	if (in_tls && rq && !strcmp(rq, "StartService") && lkd_dict_str(req, "Service")) {
		plist_t rep;
		uint16_t port;
		if (!r->nsvc)
			return diverge(r, c, meaning, true,
				       "the recording shows no service connection after its session");
		port = r->svc_ports[r->svc_next < r->nsvc ? r->svc_next++ : r->nsvc - 1];
		mux_listen(r->mux, port);
		rep = reply_new("StartService");
		plist_dict_set_item(rep, "Service", plist_new_string(lkd_dict_str(req, "Service")));
		plist_dict_set_item(rep, "Port", plist_new_uint(port));
		send_reply(r, c, rep, 0);
		plist_free(rep);
		r->replayed++;
		return;
	}
	diverge(r, c, meaning, in_tls, NULL);
}

/* Whole frames in buf[0..*len): handled and removed. */
static void frames(struct rdev *r, struct rt_conn *c, uint8_t *buf, size_t *len)
{
	size_t off = 0;

	while (c->st != RT_DEAD && *len - off >= 4) {
		struct lp_rd rd;
		uint32_t n;
		plist_t req = NULL;
		enum rt_state before = c->st;

		lp_rd_init(&rd, buf + off, *len - off);
		n = lp_rd_be32(&rd);
		if (n > LKD_MAX_MESSAGE) {
			diverge(r, c, "a lockdown message over the size cap", before == RT_TLS, "not replayable");
			return;
		}
		if (*len - off - 4 < n)
			break;
		if (lkd_plist_decode(buf + off + 4, n, &req) == 0 && plist_get_node_type(req) == PLIST_DICT)
			handle_request(r, c, req);
		else
			lp_logf(r->log, LP_LOG_WARN, "replay: host sent a lockdown message that is not a plist dictionary");
		plist_free(req);
		off += 4 + n;
		if (c->st != before)
			break; /* the rest belongs to the next layer */
	}
	if (c->st == RT_DEAD) {
		*len = 0;
		return;
	}
	memmove(buf, buf + off, *len - off);
	*len -= off;
}

static bool buf_add(uint8_t **buf, size_t *len, const uint8_t *d, size_t n, size_t cap)
{
	uint8_t *nb;

	if (n > cap - *len)
		return false;
	nb = realloc(*buf, *len + n ? *len + n : 1);
	if (!nb)
		return false;
	memcpy(nb + *len, d, n);
	*buf = nb;
	*len += n;
	return true;
}

static void conn_input(struct rdev *r, struct rt_conn *c, const uint8_t *d, size_t n);

static void tls_input(struct rdev *r, struct rt_conn *c, const uint8_t *d, size_t n)
{
	uint8_t tmp[16384];
	size_t got;
	int rc;

	if (c->tls_fail || !c->tls)
		return conn_kill(r, c); /* the recorded device reset the handshake */
	lp_tls_feed(c->tls, d, n);
	if (c->st == RT_TLS_HS) {
		rc = lp_tls_handshake(c->tls, NULL);
		tls_out(r, c, 0);
		if (rc == LP_EAGAIN)
			return;
		if (rc)
			return conn_kill(r, c);
		c->st = RT_TLS;
	}
	for (;;) {
		rc = lp_tls_read(c->tls, tmp, sizeof(tmp), &got, NULL);
		if (rc)
			break;
		if (!buf_add(&c->pt, &c->pt_len, tmp, got, LKD_MAX_MESSAGE + 4))
			return conn_kill(r, c);
		frames(r, c, c->pt, &c->pt_len);
		if (c->st != RT_TLS) {
			c->pt_len = 0;
			break;
		}
	}
	tls_out(r, c, 0);
	if (rc == LP_ETLS)
		conn_kill(r, c);
}

static void conn_input(struct rdev *r, struct rt_conn *c, const uint8_t *d, size_t n)
{
	if (c->st == RT_DEAD || c->port != MUX_PORT_LOCKDOWN)
		return; /* service connections: accepted, nothing replayed */
	if (c->st == RT_TLS_HS || c->st == RT_TLS)
		return tls_input(r, c, d, n);
	if (!buf_add(&c->in, &c->in_len, d, n, RD_TLS_IN_MAX))
		return conn_kill(r, c);
	for (;;) {
		if (c->st == RT_CLOSING) {
			/* skip the host's TLS records (close_notify) */
			while (c->in_len >= 5 && c->in[0] >= 20 && c->in[0] <= 23 && c->in[1] == 3) {
				size_t rl = 5 + ((size_t)c->in[3] << 8 | c->in[4]);
				if (c->in_len < rl)
					return;
				memmove(c->in, c->in + rl, c->in_len - rl);
				c->in_len -= rl;
			}
			if (c->in_len < 5 && c->in_len && c->in[0] >= 20 && c->in[0] <= 23)
				return;
			if (!c->in_len)
				return;
			c->st = RT_PLAIN;
		}
		if (c->st != RT_PLAIN)
			break;
		frames(r, c, c->in, &c->in_len);
		if (c->st == RT_PLAIN || c->st == RT_DEAD)
			return;
		if (c->st == RT_TLS_HS && c->in_len) {
			size_t k = c->in_len;
			uint8_t *rest = c->in;
			c->in = NULL;
			c->in_len = 0;
			tls_input(r, c, rest, k);
			free(rest);
			return;
		}
		if (c->st != RT_CLOSING)
			return;
	}
}

/* ---- playing: usbmux callbacks ---------------------------------------------- */

static void cb_accept(void *ud, uint32_t conn, uint16_t port)
{
	struct rdev *r = ud;

	for (size_t i = 0; i < MUX_MAX_CONNS; i++) {
		if (r->conns[i].used && r->conns[i].st == RT_DEAD)
			conn_release(&r->conns[i]); /* reset by us earlier */
		if (!r->conns[i].used) {
			r->conns[i].used = true;
			r->conns[i].id = conn;
			r->conns[i].port = port;
			r->conns[i].st = RT_PLAIN;
			return;
		}
	}
	mux_close(r->mux, conn);
}

static void cb_data(void *ud, uint32_t conn, const uint8_t *data, size_t len)
{
	struct rdev *r = ud;
	struct rt_conn *c = conn_get(r, conn);

	if (c)
		conn_input(r, c, data, len);
}

static void cb_close(void *ud, uint32_t conn, int reason)
{
	struct rdev *r = ud;
	struct rt_conn *c = conn_get(r, conn);

	(void)reason;
	if (c)
		conn_release(c);
}

static const struct mux_cbs rdev_mux_cbs = {
    .on_accept = cb_accept,
    .on_data = cb_data,
    .on_close = cb_close,
};

static void usb_teardown(struct rdev *r)
{
	for (size_t i = 0; i < MUX_MAX_CONNS; i++)
		if (r->conns[i].used)
			conn_release(&r->conns[i]);
	oq_clear(r);
	mux_free(r->mux);
	r->mux = NULL;
	free(r->in_pkt);
	r->in_pkt = NULL;
	r->config = 0;
}

static const struct usbd_config *active_cfg(const struct rdev *r)
{
	for (unsigned i = 0; i < USBD_MAX_CONFIGS; i++)
		if (r->cfg_ok[i] && r->config && r->cfg[i].bConfigurationValue == r->config)
			return &r->cfg[i];
	return NULL;
}

static int set_config(struct rdev *r, uint8_t v)
{
	const struct usbd_config *c;

	usb_teardown(r);
	if (!v)
		return 0;
	r->config = v;
	c = active_cfg(r);
	if (!c) {
		r->config = 0;
		return LP_ESTALL;
	}
	if (usbd_find_usbmux(c, &r->ep_in, &r->ep_out, &r->mps) && r->mps) {
		r->mux = mux_new(MUX_ROLE_DEVICE, &rdev_mux_cbs, r, r->log);
		if (!r->mux)
			return LP_ESTALL;
		mux_set_device_version(r->mux, r->mux_major ? r->mux_major : 2);
		for (size_t i = 0; i < r->nacc; i++)
			mux_listen(r->mux, r->accepted[i]);
		r->svc_next = 0;
	}
	return 0;
}

/* ---- model ops -------------------------------------------------------------- */

static bool op_attached(void *m, uint64_t now)
{
	(void)m;
	(void)now;
	return true; /* the recorded disconnect is the link's (rdev_link) */
}

static void op_identity(void *m, uint16_t *vid, uint16_t *pid, uint8_t *num_configs)
{
	struct rdev *r = m;

	*vid = r->dd.idVendor;
	*pid = r->dd.idProduct;
	*num_configs = r->dd.bNumConfigurations;
}

static void op_reset(void *m, uint64_t now)
{
	struct rdev *r = m;

	r->now = now;
	usb_teardown(r);
}

static int op_control(void *m, const uint8_t setup[8], uint8_t *data, size_t len, size_t *actual, uint64_t now)
{
	struct rdev *r = m;
	uint8_t rt = setup[0], req = setup[1];
	uint16_t wValue = (uint16_t)(setup[2] | setup[3] << 8);
	const struct rd_ctrl *c;

	r->now = now;
	*actual = 0;
	if (rt == 0x00 && req == USBD_REQ_SET_CONFIGURATION)
		return set_config(r, (uint8_t)wValue);
	if (rt == 0x80 && req == USBD_REQ_GET_CONFIGURATION) {
		if (len >= 1) {
			data[0] = r->config;
			*actual = 1;
		}
		return 0;
	}
	if ((rt == 0x01 && req == 11) || (rt == 0x02 && req == 1))
		return r->config ? 0 : LP_ESTALL; /* SET_INTERFACE, CLEAR_FEATURE(HALT) */
	c = ctrl_find(r, setup, false);
	if (!c && rt == 0x80 && req == USBD_REQ_GET_DESCRIPTOR && setup[3] == USBD_DT_STRING)
		c = ctrl_find(r, setup, true); /* another LANGID than recorded */
	if (!c || c->stall)
		return LP_ESTALL;
	if (rt & 0x80) {
		size_t n = c->len < len ? c->len : len;
		if (n)
			memcpy(data, c->data, n);
		*actual = n;
	}
	return 0;
}

static uint16_t op_max_packet(void *m, uint8_t ep)
{
	struct rdev *r = m;
	const struct usbd_config *c = active_cfg(r);

	if ((ep & 0x0f) == 0)
		return r->dd.bMaxPacketSize0;
	if (!c)
		return 0;
	for (unsigned i = 0; i < c->num_ifaces; i++)
		for (unsigned k = 0; k < c->iface[i].num_eps; k++)
			if (c->iface[i].ep[k].bEndpointAddress == ep)
				return c->iface[i].ep[k].wMaxPacketSize;
	return 0;
}

static void op_bulk_out(void *m, uint8_t ep, const uint8_t *data, size_t len, uint64_t now)
{
	struct rdev *r = m;

	r->now = now;
	if (!r->mux || ep != r->ep_out || !len)
		return;
	oq_flush(r);
	mux_feed(r->mux, data, len, true);
}

static int op_bulk_in_next(void *m, uint8_t ep, const uint8_t **data, size_t *len, bool *zlp, uint64_t now)
{
	struct rdev *r = m;
	uint8_t *pkt = NULL;
	size_t n = 0;

	r->now = now;
	if (!r->mux || ep != r->ep_in)
		return LP_EAGAIN;
	oq_flush(r);
	if (mux_out_take(r->mux, &pkt, &n) != 0)
		return LP_EAGAIN;
	free(r->in_pkt);
	r->in_pkt = pkt;
	*data = pkt;
	*len = n;
	*zlp = r->mps && n % r->mps == 0;
	return 0;
}

static uint64_t op_next_timer(void *m, uint64_t now)
{
	struct rdev *r = m;

	if (!r->oq_head)
		return UINT64_MAX;
	return r->oq_head->at > now ? r->oq_head->at : now + 1;
}

static void op_tick(void *m, uint64_t now)
{
	struct rdev *r = m;

	r->now = now;
	oq_flush(r);
}

const struct tr_sim_model_ops rdev_model_ops = {
    .attached = op_attached,
    .identity = op_identity,
    .reset = op_reset,
    .control = op_control,
    .max_packet = op_max_packet,
    .bulk_out = op_bulk_out,
    .bulk_in_next = op_bulk_in_next,
    .next_timer = op_next_timer,
    .tick = op_tick,
};

/* ---- public ------------------------------------------------------------------- */

int rdev_link(const struct rdev *r, uint64_t now, struct tr_sim_link *out)
{
	if (!r || !out)
		return LP_EINVAL;
	memset(out, 0, sizeof(*out));
	out->speed = r->speed;
	if (r->bulk)
		out->error_rate = (double)r->bulk_err / (double)r->bulk;
	if (r->disconnects) {
		out->disconnect_at_ns = now + (r->disc_at > r->t_first ? r->disc_at - r->t_first : 1);
		/* never came back: longer than any host waits */
		out->reenum_gap_ns = r->back_at == UINT64_MAX ? 3600ull * LP_NS_PER_S
				     : r->back_at > r->disc_at ? r->back_at - r->disc_at : 1;
	}
	out->seed = 1;
	return 0;
}

const char *rdev_divergence(const struct rdev *r)
{
	return r && r->divergence[0] ? r->divergence : NULL;
}

void rdev_get_summary(const struct rdev *r, struct rdev_summary *s)
{
	memset(s, 0, sizeof(*s));
	s->vid = r->dd.idVendor;
	s->pid = r->dd.idProduct;
	s->bus = r->bus;
	s->addr = r->addr;
	snprintf(s->udid, sizeof(s->udid), "%s", r->serial);
	s->mux_version = r->mux_major;
	s->control_replies = r->nctrl;
	s->exchanges = r->nx;
	s->accepted_ports = r->nacc;
	s->refused_ports = r->nref;
	s->disconnects = r->disconnects;
	s->bulk_transfers = r->bulk;
	s->bulk_errors = r->bulk_err;
	s->replayed = r->replayed;
	s->reused = r->reused;
}

void rdev_free(struct rdev *r)
{
	if (!r)
		return;
	usb_teardown(r);
	for (size_t i = 0; i < r->nctrl; i++)
		free(r->ctrl[i].data);
	for (size_t i = 0; r->x && i < r->nx; i++)
		plist_free(r->x[i].reply);
	free(r->x);
	free(r->rc);
	free(r->sh.buf);
	free(r->sd.buf);
	X509_free(r->srv_cert);
	EVP_PKEY_free(r->srv_key);
	free(r);
}
