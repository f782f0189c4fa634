/* analyze_usb.c - USB side of the capture analyzer: usbmon (link types 220,
 * 189) and USBPcap (249) records -> transfers -> descriptors, the selected
 * configuration, usbmux packets and connections.
 *
 * usbmon records are decoded by cap_usbmon_decode_lt(). libpcap has already
 * put their headers in this host's byte order when the file came from a host
 * of the other order (pcap-util.c swap_linux_usb_header, for pcap and pcapng
 * alike), so they are decoded as native; a record whose header is swapped
 * anyway (a broken writer: len_cap only makes sense byte-swapped) is decoded
 * swapped and reported as an anomaly.
 *
 * USBPcap (desowin.org/usbpcap/captureformat.html), all fields LE:
 *
 *    0        2              10       14       16   17     19     21  22  23       27
 *   +--------+--------------+--------+--------+----+------+------+---+---+--------+
 *   |hdrLen  | irpId (u64)  | status |function|info| bus  |device|ep |xfr|dataLen |
 *   +--------+--------------+--------+--------+----+------+------+---+---+--------+
 *   control transfers add one byte, the stage (0 setup, 1 data, 2 status,
 *   3 complete); isochronous ones add packet descriptors. hdrLen covers all
 *   of it; dataLen bytes of data follow. info bit 0: 1 = completion (PDO to
 *   FDO). status is a USBD_STATUS, mapped here to the Linux errno usbmon
 *   would show so one code path judges both.
 *
 * Transfers are paired by URB id (usbmon) / IRP id (USBPcap). usbmux runs
 * on the bulk endpoints of the ff/fe/02 interface (from the configuration
 * descriptor, or found by a bulk OUT whose first bytes are a VERSION packet
 * when the descriptors were not captured). Device packets are reassembled
 * across IN transfers; a transfer shorter than requested ends a packet
 * (protocol-notes.md 2.10). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/analyze/analyze_int.h"
#include "src/base/lp_cursor.h"
#include "src/base/lp_str.h"
#include "usb/cap_usbmon.h"

#define LINKTYPE_USBPCAP 249
#define USBPCAP_HDR_MIN 27
#define USBD_STATUS_STALL_PID 0xC0000004u
#define USBD_STATUS_ENDPOINT_HALTED 0xC0000030u
#define USBD_STATUS_DEV_NOT_RESPONDING 0xC0000005u
#define USBD_STATUS_CANCELED 0xC0010000u
#define USBD_STATUS_DEVICE_GONE 0xC0007000u
#define USBD_STATUS_TIMEOUT 0xC0006000u
#define MUX_VERSION_PKT_LEN 20 /* 8-byte header + major, minor, padding */

static uint32_t rd_be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint16_t rd_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static const char *dir_name(int dir) { return dir ? "device" : "host"; }

static const char *status_name(int32_t s)
{
	switch (s) {
	case CAP_URB_ENOENT: return "ENOENT (cancelled)";
	case CAP_URB_ECONNRESET: return "ECONNRESET (cancelled)";
	case CAP_URB_ENODEV: return "ENODEV (device gone)";
	case CAP_URB_ESHUTDOWN: return "ESHUTDOWN (device gone)";
	case CAP_URB_EPIPE: return "EPIPE (stall)";
	case CAP_URB_EPROTO: return "EPROTO (bit-stuff/CRC/no response)";
	case CAP_URB_EILSEQ: return "EILSEQ (CRC mismatch)";
	case CAP_URB_ETIME: return "ETIME (no response)";
	case -110: return "ETIMEDOUT";
	case CAP_URB_EOVERFLOW: return "EOVERFLOW (babble)";
	case CAP_URB_EIO: return "EIO";
	default: return "error";
	}
}

static int32_t usbd_to_linux(uint32_t s)
{
	if (s == 0)
		return 0;
	switch (s) {
	case USBD_STATUS_STALL_PID:
	case USBD_STATUS_ENDPOINT_HALTED: return CAP_URB_EPIPE;
	case USBD_STATUS_CANCELED: return CAP_URB_ENOENT;
	case USBD_STATUS_DEVICE_GONE: return CAP_URB_ENODEV;
	case USBD_STATUS_TIMEOUT:
	case USBD_STATUS_DEV_NOT_RESPONDING: return CAP_URB_ETIME;
	default: return (s & 0xC0000000u) == 0xC0000000u ? CAP_URB_EPROTO : 0;
	}
}

/* --- pending URBs (hash on id, bounded probing) --------------------------- */

static size_t pend_home(uint64_t id, uint16_t bus, uint8_t addr)
{
	uint64_t h = id ^ ((uint64_t)bus << 48) ^ ((uint64_t)addr << 56);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (size_t)(h % AN_PENDING_SLOTS);
}

#define PEND_PROBE 64

static void pend_put(struct an *a, const struct an_urb *u)
{
	size_t h = pend_home(u->id, u->bus, u->addr), slot = h;
	struct an_pending *p;

	for (size_t i = 0; i < PEND_PROBE; i++) {
		p = &a->pend[(h + i) % AN_PENDING_SLOTS];
		if (!p->used || (p->id == u->id && p->bus == u->bus && p->addr == u->addr)) {
			slot = (h + i) % AN_PENDING_SLOTS;
			break;
		}
	}
	/* no free slot nearby: evict the home slot (a submit whose completion
	 * was never captured) */
	p = &a->pend[slot];
	memset(p, 0, sizeof(*p));
	p->used = true;
	p->id = u->id;
	p->bus = u->bus;
	p->addr = u->addr;
	p->xfer = u->xfer;
	p->ep = u->ep;
	p->t = u->t;
	p->len = u->len_known ? u->len : 0;
	p->have_setup = u->have_setup;
	memcpy(p->setup, u->setup, 8);
	if (!u->len_known)
		p->len = UINT32_MAX;
}

static bool pend_take(struct an *a, const struct an_urb *u, struct an_pending *out)
{
	size_t h = pend_home(u->id, u->bus, u->addr);

	for (size_t i = 0; i < PEND_PROBE; i++) {
		struct an_pending *p = &a->pend[(h + i) % AN_PENDING_SLOTS];
		if (p->used && p->id == u->id && p->bus == u->bus && p->addr == u->addr) {
			*out = *p;
			p->used = false;
			return true;
		}
	}
	return false;
}

/* --- devices ---------------------------------------------------------------- */

static struct an_usb *usb_get(struct an *a, uint16_t bus, uint8_t addr, uint64_t t)
{
	char key[96];
	struct an_usb *u;

	/* the latest enumeration at this address: an address reused after a
	 * disconnect is a new enumeration */
	for (size_t i = a->nusb; i-- > 0;) {
		u = a->usb[i];
		if (u->bus == bus && u->addr == addr) {
			if (!u->gone || t <= u->last_t + LP_NS_PER_S)
				return u;
			break;
		}
	}
	if (a->nusb == AN_MAX_USB) {
		if (!a->usb_overflow_noted)
			an_anomaly_add(a, "packet %llu: more than %d USB enumerations; later ones ignored",
				       (unsigned long long)a->cur_pkt, AN_MAX_USB);
		a->usb_overflow_noted = true;
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	snprintf(key, sizeof(key), "usb:%u:%u:%zu", bus, addr, a->nusb);
	u->d = an_dev_get(a, key, true);
	if (!u->d) {
		free(u);
		return NULL;
	}
	u->bus = bus;
	u->addr = addr;
	u->first_t = t;
	u->d->bus = (uint8_t)bus;
	u->d->addr = addr;
	u->d->instances = 1;
	u->d->sel_config = -1;
	a->usb[a->nusb++] = u;
	return u;
}

void an_usb_free(struct an_usb *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < AN_MAX_CONNS; i++)
		if (u->conns[i].used)
			an_lkd_free(u->conns[i].lkd);
	free(u->mb[0].buf);
	free(u->mb[1].buf);
	free(u);
}

/* Fold the facts of `from` (an enumeration's provisional device) into `to`. */
static void dev_merge(struct an_dev *to, struct an_dev *from)
{
	to->packets += from->packets;
	to->errors += from->errors;
	to->stalls += from->stalls;
	to->cancelled += from->cancelled;
	to->timeouts += from->timeouts;
	if (!to->first_err_pkt) {
		to->first_err_pkt = from->first_err_pkt;
		to->first_err_status = from->first_err_status;
	}
	if (from->last_t > to->last_t)
		to->last_t = from->last_t;
	to->bus = from->bus;
	to->addr = from->addr;
	if (from->sel_config >= 0) {
		to->sel_config = from->sel_config;
		to->sel_t = from->sel_t;
	}
	from->packets = 0;
	from->key[0] = '\0'; /* merged: not reported */
}

/* The device descriptor (and maybe the serial string) is known: give the
 * enumeration its identity; an identity seen before on an enumeration that
 * is gone is the same phone coming back (re-enumeration). */
static void identify(struct an *a, struct an_usb *u)
{
	char key[96];
	const char *serial = "";
	struct an_dev *d = u->d, *o;

	if (!u->have_dd)
		return;
	if (u->dd.iSerialNumber && u->dd.iSerialNumber < AN_STRINGS)
		serial = u->str[u->dd.iSerialNumber];
	snprintf(key, sizeof(key), "%04x:%04x:%s", u->dd.idVendor, u->dd.idProduct, serial);
	if (strcmp(key, d->key) == 0)
		return;
	o = an_dev_get(a, key, false);
	if (o && o != d && (o->gone || u->first_t > o->last_t + LP_NS_PER_S)) {
		dev_merge(o, d);
		o->instances++;
		o->reenum++;
		o->gone = false;
		u->d = d = o;
	} else if (!o) {
		snprintf(d->key, sizeof(d->key), "%s", key);
	} else if (o != d) {
		snprintf(d->key, sizeof(d->key), "%s@%u.%u", key, u->bus, u->addr);
	}
	d->vid = u->dd.idVendor;
	d->pid = u->dd.idProduct;
	d->have_ids = true;
	if (serial[0]) {
		snprintf(d->serial, sizeof(d->serial), "%s", serial);
		if (!d->udid[0])
			usbd_serial_to_udid(serial, d->udid, sizeof(d->udid));
	}
	if (u->dd.iProduct && u->dd.iProduct < AN_STRINGS && u->str[u->dd.iProduct][0])
		snprintf(d->product, sizeof(d->product), "%s", u->str[u->dd.iProduct]);
	if (u->dd.iManufacturer && u->dd.iManufacturer < AN_STRINGS && u->str[u->dd.iManufacturer][0])
		snprintf(d->manufacturer, sizeof(d->manufacturer), "%s", u->str[u->dd.iManufacturer]);
}

static void update_mux_eps(struct an_usb *u)
{
	struct an_dev *d = u->d;

	d->configs_known = u->ncfg > 0;
	d->nconfigs = u->ncfg;
	d->sel_has_mux = false;
	for (unsigned i = 0; i < u->ncfg; i++) {
		uint8_t in, out;
		uint16_t mps;
		const struct usbd_interface *itf = usbd_find_usbmux(&u->cfg[i], &in, &out, &mps);
		if (!itf)
			continue;
		if (d->sel_config >= 0 && u->cfg[i].bConfigurationValue == d->sel_config)
			d->sel_has_mux = true;
		d->any_mux_config = true;
		/* the selected configuration wins over others offering usbmux */
		if (!u->eps_from_desc || (d->sel_config >= 0 && u->cfg[i].bConfigurationValue == d->sel_config)) {
			u->ep_in = in;
			u->ep_out = out;
			u->mps = mps;
			u->eps_from_desc = true;
			d->mux_config = u->cfg[i].bConfigurationValue;
			d->mux_iface = itf->bInterfaceNumber;
			d->ep_in = in;
			d->ep_out = out;
			d->mps = mps;
		}
	}
}

static void control_done(struct an *a, struct an_usb *u, const struct an_pending *p, const struct an_urb *c)
{
	struct an_dev *d = u->d;
	uint8_t rt = p->setup[0], req = p->setup[1];
	uint16_t wvalue = rd_le16(p->setup + 2);
	int r;

	if (c->status != 0)
		return;
	if (rt == 0x80 && req == USBD_REQ_GET_DESCRIPTOR) {
		uint8_t type = wvalue >> 8, idx = wvalue & 0xff;
		if (!d->desc.seen) {
			d->desc.seen = true;
			d->desc.t0 = p->t;
			d->desc.pkt0 = c->pkt;
		}
		d->desc.done = true;
		d->desc.t1 = c->t;
		d->desc.pkt1 = c->pkt;
		if (type == USBD_DT_DEVICE) {
			r = usbd_parse_device(c->data, c->data_len, &u->dd);
			if (r == 0) {
				u->have_dd = true;
				d->have_desc = true;
				identify(a, u);
			} else if (c->data_len >= 8 && r == LP_ETRUNC) {
				/* the 8-byte first read of enumeration: nothing to learn */
			} else {
				an_anomaly_add(a, "packet %llu: device descriptor undecodable (%s)",
					       (unsigned long long)c->pkt, lp_errname(r));
			}
		} else if (type == USBD_DT_CONFIG) {
			struct usbd_config cfg;
			r = usbd_parse_config(c->data, c->data_len, &cfg);
			if (r == 0) {
				unsigned i;
				for (i = 0; i < u->ncfg; i++)
					if (u->cfg[i].bConfigurationValue == cfg.bConfigurationValue)
						break;
				if (i < USBD_MAX_CONFIGS) {
					u->cfg[i] = cfg;
					if (i == u->ncfg)
						u->ncfg++;
				}
				update_mux_eps(u);
			} else if (r != LP_ETRUNC) {
				an_anomaly_add(a, "packet %llu: configuration descriptor undecodable (%s)",
					       (unsigned long long)c->pkt, lp_errname(r));
			}
		} else if (type == USBD_DT_STRING && idx > 0 && idx < AN_STRINGS) {
			if (usbd_parse_string(c->data, c->data_len, u->str[idx], sizeof(u->str[idx])) == 0)
				identify(a, u);
		}
	} else if (rt == 0x00 && req == USBD_REQ_SET_CONFIGURATION) {
		d->sel_config = wvalue & 0xff;
		d->sel_t = c->t;
		update_mux_eps(u);
	}
}

/* --- usbmux ---------------------------------------------------------------- */

static struct an_conn *conn_find(struct an_usb *u, uint16_t hport, uint16_t dport)
{
	for (size_t i = 0; i < AN_MAX_CONNS; i++)
		if (u->conns[i].used && u->conns[i].hport == hport && u->conns[i].dport == dport)
			return &u->conns[i];
	return NULL;
}

static struct an_conn *conn_new(struct an *a, struct an_usb *u, uint16_t hport, uint16_t dport)
{
	for (size_t i = 0; i < AN_MAX_CONNS; i++) {
		struct an_conn *c = &u->conns[i];
		if (!c->used) {
			memset(c, 0, sizeof(*c));
			c->used = true;
			c->hport = hport;
			c->dport = dport;
			a->conns_total++;
			return c;
		}
	}
	if (!u->conn_overflow_noted)
		an_anomaly_add(a, "packet %llu: more than %d open mux connections; later ones ignored",
			       (unsigned long long)a->cur_pkt, AN_MAX_CONNS);
	u->conn_overflow_noted = true;
	return NULL;
}

static const char *conn_state_name(int s)
{
	switch (s) {
	case C_SYN: return "syn-unanswered";
	case C_OPEN: return "open";
	case C_REFUSED: return "refused";
	case C_RESET_HOST: return "closed-by-host";
	case C_RESET_DEV: return "reset-by-device";
	default: return "open-before-capture";
	}
}

/* how: final state (C_OPEN/C_SYN/C_ORPHAN = still so at the end). */
void an_conn_close(struct an *a, struct an_conn *c, uint64_t t, int how)
{
	c->state = how;
	c->t_close = t;
	if (c->lkd) {
		/* still open when the capture ends: nothing was closed */
		if (how == C_REFUSED || how == C_RESET_HOST || how == C_RESET_DEV)
			an_lkd_close(c->lkd, t);
		an_lkd_free(c->lkd);
		c->lkd = NULL;
	}
	if (how == C_RESET_DEV || how == C_RESET_HOST)
		a->conns_reset++;
	if (a->conn_list && json_object_array_length(a->conn_list) < AN_CONN_LIST_MAX) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "host_port", json_object_new_int(c->hport));
		json_object_object_add(o, "device_port", json_object_new_int(c->dport));
		if (c->dport == MUX_PORT_LOCKDOWN)
			json_object_object_add(o, "service", json_object_new_string("lockdown"));
		json_object_object_add(o, "state", json_object_new_string(conn_state_name(how)));
		json_object_object_add(o, "bytes_out", json_object_new_int64((int64_t)c->bytes[0]));
		json_object_object_add(o, "bytes_in", json_object_new_int64((int64_t)c->bytes[1]));
		json_object_object_add(o, "packets_out", json_object_new_int64((int64_t)c->packets[0]));
		json_object_object_add(o, "packets_in", json_object_new_int64((int64_t)c->packets[1]));
		json_object_object_add(o, "start_s", json_object_new_double((double)c->t_syn / 1e9));
		json_object_array_add(a->conn_list, o);
	}
	c->used = false;
}

static void mux_tcp(struct an *a, struct an_usb *u, int dir, const struct mux_packet *mp, uint64_t t)
{
	struct an_dev *d = u->d;
	uint16_t hport = dir ? mp->dport : mp->sport, dport = dir ? mp->sport : mp->dport;
	struct an_conn *c = conn_find(u, hport, dport);
	uint8_t f = mp->flags;

	if (dir == 0 && (f & MUX_TH_SYN) && !(f & MUX_TH_ACK)) {
		if (c)
			an_conn_close(a, c, t, c->state);
		c = conn_new(a, u, hport, dport);
		if (!c)
			return;
		c->state = C_SYN;
		c->t_syn = t;
		if (dport == MUX_PORT_LOCKDOWN && !d->lconnect.done) {
			d->lconnect.seen = false;
			d->lconnect.seen = true;
			d->lconnect.t0 = t;
			d->lconnect.pkt0 = a->cur_pkt;
		}
		return;
	}
	if (!c) {
		if (f & MUX_TH_RST)
			return;
		if (dir == 1 && (f & MUX_TH_SYN)) {
			an_anomaly_add(a, "packet %llu: device opened a connection (SYN from port %u)",
				       (unsigned long long)a->cur_pkt, mp->sport);
			return;
		}
		c = conn_new(a, u, hport, dport);
		if (!c)
			return;
		c->state = C_ORPHAN;
		c->t_syn = t;
		if (dport == MUX_PORT_LOCKDOWN) {
			c->lkd = an_lkd_new(a, d);
			a->conns_lockdown++;
		}
	}
	if (dir == 1 && (f & MUX_TH_SYN) && (f & MUX_TH_ACK) && c->state == C_SYN) {
		c->state = C_OPEN;
		c->t_open = t;
		an_sample(&a->rtt_mux, t - c->t_syn);
		if (dport == MUX_PORT_LOCKDOWN) {
			if (!d->lconnect.done) {
				d->lconnect.done = true;
				d->lconnect.t1 = t;
				d->lconnect.pkt1 = a->cur_pkt;
				d->lconnect_refused = false;
			}
			c->lkd = an_lkd_new(a, d);
			a->conns_lockdown++;
		} else {
			an_lkd_service_conn(d, dport, c->t_syn, t, a->cur_pkt);
		}
		return;
	}
	if (f & MUX_TH_RST) {
		if (dir == 1 && c->state == C_SYN) {
			an_sample(&a->rtt_mux, t - c->t_syn);
			a->conns_refused++;
			d->refused_conns++;
			if (dport == 1)
				d->closed_port_probes++;
			if (dport == MUX_PORT_LOCKDOWN && !d->lconnect.done) {
				d->lconnect.done = true;
				d->lconnect.t1 = t;
				d->lconnect.pkt1 = a->cur_pkt;
				d->lconnect_refused = true;
			}
			an_conn_close(a, c, t, C_REFUSED);
		} else {
			an_conn_close(a, c, t, dir ? C_RESET_DEV : C_RESET_HOST);
		}
		return;
	}
	if (mp->payload_len) {
		c->bytes[dir] += mp->payload_len;
		c->packets[dir]++;
		a->mux_bytes[dir] += mp->payload_len;
		if (c->lkd)
			an_lkd_feed(c->lkd, dir, mp->payload, mp->payload_len, t);
	}
}

static void mux_packet(struct an *a, struct an_usb *u, int dir, const uint8_t *p, size_t n, uint64_t t)
{
	struct an_dev *d = u->d;
	struct mux_packet mp;
	uint32_t proto = rd_be32(p), ver;
	int r;

	d->mux_seen = true;
	d->mux_packets++;
	if (proto == MUX_PROTO_VERSION) {
		r = mux_decode(p, n, 1, &mp);
		if (r || mp.payload_len < 8) {
			an_anomaly_add(a, "packet %llu: %s usbmux VERSION packet malformed",
				       (unsigned long long)a->cur_pkt, dir_name(dir));
			return;
		}
		if (dir == 0) {
			if (!d->version.seen) {
				d->version.seen = true;
				d->version.t0 = t;
				d->version.pkt0 = a->cur_pkt;
			}
		} else {
			uint32_t major = rd_be32(mp.payload);
			if (!d->version.seen) {
				d->version.seen = true;
				d->version.t0 = t;
			}
			d->version.done = true;
			d->version.t1 = t;
			d->version.pkt1 = a->cur_pkt;
			d->mux_major = major;
			if (major == 1 || major == 2) {
				u->hdr_ver = major;
			} else {
				an_anomaly_add(a, "packet %llu: device answered usbmux VERSION %u",
					       (unsigned long long)a->cur_pkt, major);
			}
		}
		return;
	}
	ver = u->hdr_ver;
	if (!ver) {
		ver = n >= 12 && rd_be32(p + 8) == MUX_V2_MAGIC ? 2 : 1;
		if (!u->ver_guess_noted)
			an_anomaly_add(a, "packet %llu: usbmux VERSION exchange not in the capture; header v%u assumed",
				       (unsigned long long)a->cur_pkt, ver);
		u->ver_guess_noted = true;
		u->hdr_ver = ver;
		d->mux_major = ver;
	}
	r = mux_decode(p, n, ver, &mp);
	if (r) {
		an_anomaly_add(a, "packet %llu: %s usbmux packet undecodable (%s)", (unsigned long long)a->cur_pkt,
			       dir_name(dir), lp_errname(r));
		return;
	}
	if (proto == MUX_PROTO_TCP)
		mux_tcp(a, u, dir, &mp, t);
	else if (proto == MUX_PROTO_CONTROL)
		an_anomaly_add(a, "packet %llu: device sent a usbmux CONTROL message (%zu bytes)",
			       (unsigned long long)a->cur_pkt, mp.payload_len);
}

/* Append one transfer's bytes to a direction's buffer and take whole mux
 * packets out of it. `end`: the transfer was short, nothing may span it. */
static void mbuf_feed(struct an *a, struct an_usb *u, int dir, const uint8_t *p, size_t n, bool end, uint64_t t)
{
	struct an_mbuf *m = &u->mb[dir];

	if (!m->buf) {
		m->buf = malloc(AN_MBUF_MAX);
		if (!m->buf)
			return;
	}
	while (n || m->len >= MUX_V1_HDR) {
		size_t take = AN_MBUF_MAX - m->len;
		size_t off = 0;
		if (take > n)
			take = n;
		memcpy(m->buf + m->len, p, take);
		m->len += take;
		p += take;
		n -= take;
		while (m->len - off >= MUX_V1_HDR) {
			uint32_t plen = rd_be32(m->buf + off + 4);
			if (plen < MUX_V1_HDR || plen > MUX_MAX_PACKET) {
				an_anomaly_add(a, "packet %llu: %s usbmux length field %u out of range; %zu bytes dropped",
					       (unsigned long long)a->cur_pkt, dir_name(dir), plen, m->len - off);
				off = m->len;
				break;
			}
			if (plen > m->len - off)
				break;
			mux_packet(a, u, dir, m->buf + off, plen, t);
			off += plen;
		}
		memmove(m->buf, m->buf + off, m->len - off);
		m->len -= off;
		if (!n)
			break;
	}
	if (end && m->len) {
		an_anomaly_add(a, "packet %llu: %s transfer ended inside a usbmux packet (%zu bytes dropped)",
			       (unsigned long long)a->cur_pkt, dir_name(dir), m->len);
		m->len = 0;
	}
}

static bool looks_like_version(const uint8_t *p, size_t n)
{
	return n >= MUX_VERSION_PKT_LEN && rd_be32(p) == MUX_PROTO_VERSION && rd_be32(p + 4) == MUX_VERSION_PKT_LEN;
}

/* --- transfers --------------------------------------------------------------- */

static void judge_status(struct an *a, struct an_usb *u, const struct an_urb *x)
{
	struct an_dev *d = u->d;
	int32_t s = x->status;

	if (s == 0 || s == CAP_URB_EREMOTEIO || s == CAP_URB_EINPROGRESS)
		return;
	if (s == CAP_URB_ENOENT || s == CAP_URB_ECONNRESET) {
		d->cancelled++;
		return;
	}
	if (s == CAP_URB_ENODEV || s == CAP_URB_ESHUTDOWN) {
		if (!u->gone)
			an_anomaly_add(a, "packet %llu: device %u.%u gone (%s)", (unsigned long long)x->pkt, u->bus,
				       u->addr, status_name(s));
		u->gone = true;
		if (!d->gone) {
			d->gone = true;
			d->gone_t = x->t;
			d->gone_pkt = x->pkt;
		}
		return;
	}
	if (s == CAP_URB_EPIPE && x->xfer == 2) {
		d->stalls++; /* a control request the device does not support */
		return;
	}
	if (s == CAP_URB_EPIPE)
		d->stalls++;
	if (s == CAP_URB_ETIME || s == -110)
		d->timeouts++;
	d->errors++;
	if (!d->first_err_pkt) {
		d->first_err_pkt = x->pkt;
		d->first_err_status = s;
	}
	if (d->errors <= 8)
		an_anomaly_add(a, "packet %llu: %s %s 0x%02x on %u.%u ended %s (%d)", (unsigned long long)x->pkt,
			       x->type == 'E' ? "submit of" : "transfer", x->xfer == 2 ? "control" : x->xfer == 3 ? "bulk" : "interrupt",
			       x->ep, u->bus, u->addr, status_name(s), s);
}

static void urb_event(struct an *a, struct an_urb *x)
{
	struct an_usb *u = usb_get(a, x->bus, x->addr, x->t);
	struct an_pending p;
	bool in = x->ep & 0x80;

	if (!u)
		return;
	u->last_t = x->t;
	an_dev_touch(a, u->d, x->t);
	if (x->clipped && x->xfer == 3)
		an_anomaly_add(a, "packet %llu: record clipped by the capture's snap length (%zu of %u bytes)",
			       (unsigned long long)x->pkt, x->data_len, x->len);

	if (x->type == 'S') {
		switch (x->xfer) {
		case 0: a->xfers_iso++; break;
		case 1: a->xfers_intr++; break;
		case 2: a->xfers_ctrl++; break;
		default: in ? a->xfers_bulk_in++ : a->xfers_bulk_out++; break;
		}
		pend_put(a, x);
		if (x->xfer == 3 && !in && x->data_len) {
			if (!u->ep_out && looks_like_version(x->data, x->data_len))
				u->ep_out = x->ep;
			if (u->ep_out && x->ep == u->ep_out) {
				mbuf_feed(a, u, 0, x->data, x->data_len, false, x->t);
				if (x->clipped)
					u->mb[0].len = 0;
			}
		}
		return;
	}
	if (x->type == 'E') {
		judge_status(a, u, x);
		pend_take(a, x, &p);
		return;
	}
	/* completion */
	judge_status(a, u, x);
	if (!pend_take(a, x, &p)) {
		if (a->linktype == 249 && x->xfer == 2)
			return; /* USBPcap: a second completion record (status stage) */
		memset(&p, 0, sizeof(p));
		p.t = x->t;
		p.len = UINT32_MAX;
	}
	if (x->xfer == 2) {
		if (p.have_setup) {
			an_sample(&a->rtt_ctrl, x->t >= p.t ? x->t - p.t : 0);
			control_done(a, u, &p, x);
		}
		return;
	}
	if (x->xfer == 3 && in && x->data_len && (x->status == 0 || x->status == CAP_URB_ENOENT ||
						 x->status == CAP_URB_ECONNRESET)) {
		if (!u->ep_in && u->ep_out && looks_like_version(x->data, x->data_len))
			u->ep_in = x->ep;
		if (u->ep_in && x->ep == u->ep_in) {
			bool end = p.len != UINT32_MAX && x->len < p.len;
			mbuf_feed(a, u, 1, x->data, x->data_len, end, x->t);
			if (x->clipped)
				u->mb[1].len = 0;
		}
	}
}

static uint32_t bswap32(uint32_t v) { return __builtin_bswap32(v); }

static int usbmon_record(struct an *a, uint64_t t, const uint8_t *buf, size_t caplen, struct an_urb *x)
{
	struct cap_usbmon_rec rec;
	size_t hl = a->linktype == CAP_LINKTYPE_USB_LINUX ? CAP_USBMON_HDR_LEN_LEGACY : CAP_USBMON_HDR_LEN;
	int r = cap_usbmon_decode_lt(buf, caplen, a->linktype, false, &rec);

	if (caplen >= hl && (a->usbmon_swapped || r != 0 || (rec.len_cap != caplen - hl && bswap32(rec.len_cap) == caplen - hl) ||
			     (rec.busnum > 127 && __builtin_bswap16(rec.busnum) <= 127))) {
		struct cap_usbmon_rec sw;
		if (cap_usbmon_decode_lt(buf, caplen, a->linktype, true, &sw) == 0 &&
		    sw.len_cap == caplen - hl) {
			if (!a->swapped_noted)
				an_anomaly_add(a, "packet %llu: usbmon headers are in the other byte order than the "
					       "file says; decoded byte-swapped", (unsigned long long)a->cur_pkt);
			a->swapped_noted = true;
			a->usbmon_swapped = true;
			rec = sw;
			r = 0;
		}
	}
	if (r) {
		an_anomaly_add(a, "packet %llu: usbmon record %s (%zu bytes)", (unsigned long long)a->cur_pkt,
			       r == LP_ETRUNC ? "truncated" : "invalid", caplen);
		return r;
	}
	memset(x, 0, sizeof(*x));
	x->t = t;
	x->pkt = a->cur_pkt;
	x->id = rec.id;
	x->type = (char)rec.type;
	x->xfer = rec.xfer_type;
	x->ep = rec.epnum;
	x->bus = rec.busnum;
	x->addr = rec.devnum;
	x->status = rec.status;
	x->len = rec.len_urb;
	x->len_known = true;
	x->have_setup = rec.type == 'S' && rec.xfer_type == 2 && rec.flag_setup == 0;
	memcpy(x->setup, rec.setup, 8);
	x->data = rec.data;
	x->data_len = rec.data_len;
	x->clipped = rec.clipped;
	return 0;
}

static int usbpcap_record(struct an *a, uint64_t t, const uint8_t *buf, size_t caplen, struct an_urb *x)
{
	struct lp_rd rd;
	uint16_t hlen, bus, dev;
	uint32_t status, dlen;
	uint8_t info, ep, xfer, stage = 0xff;

	lp_rd_init(&rd, buf, caplen);
	hlen = lp_rd_le16(&rd);
	memset(x, 0, sizeof(*x));
	x->id = lp_rd_le64(&rd);
	status = lp_rd_le32(&rd);
	lp_rd_le16(&rd); /* URB function */
	info = lp_rd_u8(&rd);
	bus = lp_rd_le16(&rd);
	dev = lp_rd_le16(&rd);
	ep = lp_rd_u8(&rd);
	xfer = lp_rd_u8(&rd);
	dlen = lp_rd_le32(&rd);
	if (!lp_rd_ok(&rd) || hlen < USBPCAP_HDR_MIN || hlen > caplen) {
		an_anomaly_add(a, "packet %llu: USBPcap header %s (%zu bytes, headerLen %u)",
			       (unsigned long long)a->cur_pkt, lp_rd_ok(&rd) && hlen >= USBPCAP_HDR_MIN ? "longer than the record" : "truncated",
			       caplen, hlen);
		return LP_ETRUNC;
	}
	if (xfer > 3 || dev > 255) {
		an_anomaly_add(a, "packet %llu: USBPcap record with transfer type %u / device %u skipped",
			       (unsigned long long)a->cur_pkt, xfer, dev);
		return LP_EBADMSG;
	}
	if (xfer == 2 && hlen >= USBPCAP_HDR_MIN + 1)
		stage = lp_rd_u8(&rd);
	x->t = t;
	x->pkt = a->cur_pkt;
	x->type = info & 1 ? 'C' : 'S';
	x->xfer = xfer;
	x->ep = ep;
	x->bus = bus;
	x->addr = (uint8_t)dev;
	x->status = x->type == 'C' ? usbd_to_linux(status) : CAP_URB_EINPROGRESS;
	x->data = buf + hlen;
	x->data_len = caplen - hlen;
	if (x->data_len > dlen)
		x->data_len = dlen;
	x->clipped = x->data_len < dlen;
	x->len = dlen;
	x->len_known = !(x->type == 'S' && (ep & 0x80));
	if (xfer == 2) {
		if (x->type == 'S' && stage == 0) {
			if (x->data_len < 8) {
				an_anomaly_add(a, "packet %llu: USBPcap control setup stage without 8 setup bytes",
					       (unsigned long long)a->cur_pkt);
				return LP_ETRUNC;
			}
			memcpy(x->setup, x->data, 8);
			x->have_setup = true;
			x->len = rd_le16(x->setup + 6);
			x->data += 8;
			x->data_len -= 8;
		} else if (x->type == 'S') {
			return LP_EAGAIN; /* OUT data stage: the setup record was the submit */
		}
	}
	return 0;
}

int an_usb_record(struct an *a, uint64_t t, const uint8_t *buf, size_t caplen, size_t wirelen)
{
	struct an_urb x;
	int r;

	a->usb_records++;
	if (a->linktype == 249)
		r = usbpcap_record(a, t, buf, caplen, &x);
	else
		r = usbmon_record(a, t, buf, caplen, &x);
	if (r == LP_EAGAIN)
		return 0;
	if (r) {
		a->bad_records++;
		return r;
	}
	if (x.type != 'S' && x.type != 'C' && x.type != 'E') {
		a->bad_records++;
		return LP_EBADMSG;
	}
	urb_event(a, &x);
	return 0;
}

void an_usb_finish(struct an *a)
{
	for (size_t i = 0; i < a->nusb; i++) {
		struct an_usb *u = a->usb[i];
		for (size_t k = 0; k < AN_MAX_CONNS; k++) {
			struct an_conn *c = &u->conns[k];
			if (c->used)
				an_conn_close(a, c, u->gone ? u->last_t : a->t_last, u->gone ? C_RESET_DEV : c->state);
		}
		for (int dir = 0; dir < 2; dir++)
			if (u->mb[dir].len && !u->gone)
				an_anomaly_add(a, "capture ends inside a %s usbmux packet (%zu bytes) on %u.%u",
					       dir_name(dir), u->mb[dir].len, u->bus, u->addr);
		if (u->d && u->d->mux_seen && !u->d->ep_out) {
			u->d->ep_out = u->ep_out;
			u->d->ep_in = u->ep_in;
		}
	}
}
