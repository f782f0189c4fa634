/* analyze_tcp.c - captures of a relayed usbmuxd socket: IPv4/IPv6 TCP ->
 * per-direction byte streams -> usbmuxd client protocol -> lockdown.
 *
 * Tools that relay /var/run/usbmuxd through TCP on loopback (socat style)
 * make the daemon's client protocol capturable (protocol-notes.md section 3):
 * every message has a 16-byte little-endian header (length incl. header,
 * version 0 binary / 1 plist, message type, tag), plist messages carry an
 * XML dictionary with MessageType. After a Connect answered with Result 0
 * the socket is a raw pipe to the device port: lockdown when 62078.
 *
 * The usbmuxd flows are those on --usbmuxd-port, or detected by the shape of
 * the first message the client sends (length, version 0/1, message 2/3/8,
 * plist body). TCP reassembly is deliberately simple: per direction,
 * in-order segments are delivered, retransmitted bytes trimmed, a jump
 * forward is a gap (anomaly; the message stream is abandoned). Link layers:
 * BSD loopback (0, 108), Ethernet (1, one VLAN tag), raw IP (12, 14, 101,
 * 228, 229), Linux cooked (113, 276). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/analyze/analyze_int.h"
#include "src/base/lp_cursor.h"
#include "src/base/lp_str.h"

#define UMX_HDR 16
#define UMX_RESULT 1
#define UMX_CONNECT 2
#define UMX_LISTEN 3
#define UMX_DEVICE_ADD 4
#define UMX_DEVICE_REMOVE 5
#define UMX_PLIST 8
#define UMX_GAPS_LISTED 8

struct an_flow {
	uint8_t addr[2][16];
	uint16_t port[2];
	bool v6;
	int client; /* side index of the usbmuxd client, -1 unknown */
	int syn_side;
	enum { F_UNKNOWN, F_UMX, F_OTHER } kind;
	struct {
		bool have;
		uint32_t next;
		bool fin;
	} st[2];
	struct an_ubuf {
		uint8_t *buf;
		size_t len, cap;
	} ub[2];
	bool broken;
	bool closed;
	/* after Connect */
	bool connect_pending, readpr_pending;
	uint32_t pend_dev;
	uint16_t pend_port;
	uint64_t pend_t;
	bool pipe;
	uint16_t pipe_port;
	struct an_dev *d;
	struct an_lkd *lkd;
	uint64_t bytes[2];
};

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

void an_flow_free(struct an_flow *f)
{
	if (!f)
		return;
	an_lkd_free(f->lkd);
	free(f->ub[0].buf);
	free(f->ub[1].buf);
	free(f);
}

static struct an_dev *umx_dev(struct an *a, uint32_t id)
{
	char key[32];
	struct an_dev *d;

	snprintf(key, sizeof(key), "umx:%u", id);
	d = an_dev_get(a, key, true);
	if (d && !d->via_usbmuxd) {
		d->via_usbmuxd = true;
		d->umx_id = id;
		d->sel_config = -1;
		d->instances = 1;
	}
	return d;
}

static uint64_t dict_uint(plist_t dict, const char *key, uint64_t dflt)
{
	plist_t v = plist_dict_get_item(dict, key);
	uint64_t x = dflt;

	if (v && plist_get_node_type(v) == PLIST_UINT)
		plist_get_uint_val(v, &x);
	return x;
}

static void attached(struct an *a, plist_t msg, uint64_t t)
{
	plist_t props = plist_dict_get_item(msg, "Properties");
	struct an_dev *d;
	const char *serial;

	if (!props || plist_get_node_type(props) != PLIST_DICT)
		props = msg;
	d = umx_dev(a, (uint32_t)dict_uint(props, "DeviceID", dict_uint(msg, "DeviceID", 0)));
	if (!d)
		return;
	an_dev_touch(a, d, t);
	d->vid = 0x05ac;
	d->pid = (uint16_t)dict_uint(props, "ProductID", 0);
	d->have_ids = d->pid != 0;
	d->speed_mbps = (double)dict_uint(props, "ConnectionSpeed", 0) / 1e6;
	serial = lkd_dict_str(props, "SerialNumber");
	if (serial) {
		lp_sanitize_str(d->serial, sizeof(d->serial), serial);
		if (!d->udid[0])
			usbd_serial_to_udid(d->serial, d->udid, sizeof(d->udid));
	}
	if (!d->umx_find.seen) {
		d->umx_find.seen = true;
		d->umx_find.t0 = a->umx_list_seen ? a->umx_list_t : t;
		d->umx_find.pkt0 = a->umx_list_seen ? a->umx_list_pkt : a->cur_pkt;
	}
	if (!d->umx_find.done) {
		d->umx_find.done = true;
		d->umx_find.t1 = t;
		d->umx_find.pkt1 = a->cur_pkt;
	}
}

static void connect_result(struct an *a, struct an_flow *f, uint32_t result, uint64_t t)
{
	struct an_dev *d = umx_dev(a, f->pend_dev);

	f->connect_pending = false;
	if (!d)
		return;
	an_dev_touch(a, d, t);
	a->conns_total++;
	if (result == 0) {
		f->pipe = true;
		f->pipe_port = f->pend_port;
		f->d = d;
		an_sample(&a->rtt_mux, t - f->pend_t);
		if (f->pend_port == MUX_PORT_LOCKDOWN) {
			if (!d->lconnect.done) {
				d->lconnect.done = true;
				d->lconnect.t1 = t;
				d->lconnect.pkt1 = a->cur_pkt;
				d->lconnect_refused = false;
			}
			f->lkd = an_lkd_new(a, d);
			a->conns_lockdown++;
		} else {
			an_lkd_service_conn(d, f->pend_port, f->pend_t, t, a->cur_pkt);
		}
		return;
	}
	a->conns_refused++;
	d->refused_conns++;
	if (f->pend_port == 1)
		d->closed_port_probes++;
	if (f->pend_port == MUX_PORT_LOCKDOWN && !d->lconnect.done) {
		d->lconnect.done = true;
		d->lconnect.t1 = t;
		d->lconnect.pkt1 = a->cur_pkt;
		d->lconnect_refused = true;
	}
	if (a->conn_list && json_object_array_length(a->conn_list) < AN_CONN_LIST_MAX) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "via", json_object_new_string("usbmuxd"));
		json_object_object_add(o, "device_id", json_object_new_int64(f->pend_dev));
		json_object_object_add(o, "device_port", json_object_new_int(f->pend_port));
		json_object_object_add(o, "state", json_object_new_string("refused"));
		json_object_object_add(o, "result", json_object_new_int64(result));
		json_object_array_add(a->conn_list, o);
	}
}

static void start_connect(struct an *a, struct an_flow *f, uint32_t dev, uint16_t port, uint64_t t)
{
	struct an_dev *d = umx_dev(a, dev);

	f->connect_pending = true;
	f->pend_dev = dev;
	f->pend_port = port;
	f->pend_t = t;
	if (d) {
		an_dev_touch(a, d, t);
		if (port == MUX_PORT_LOCKDOWN && !d->lconnect.seen) {
			d->lconnect.seen = true;
			d->lconnect.t0 = t;
			d->lconnect.pkt0 = a->cur_pkt;
		}
	}
}

static void plist_msg(struct an *a, struct an_flow *f, bool from_client, plist_t msg, uint64_t t)
{
	const char *type = lkd_dict_str(msg, "MessageType");

	if (from_client) {
		if (!type)
			return;
		if (strcmp(type, "ListDevices") == 0 || strcmp(type, "Listen") == 0) {
			if (!a->umx_list_seen) {
				a->umx_list_seen = true;
				a->umx_list_t = t;
				a->umx_list_pkt = a->cur_pkt;
			}
		} else if (strcmp(type, "Connect") == 0) {
			uint64_t port = dict_uint(msg, "PortNumber", 0);
			/* PortNumber holds the port in network byte order */
			uint16_t p = (uint16_t)(((port & 0xff) << 8) | ((port >> 8) & 0xff));
			start_connect(a, f, (uint32_t)dict_uint(msg, "DeviceID", 0), p, t);
		} else if (strcmp(type, "ReadPairRecord") == 0) {
			f->readpr_pending = true;
		}
		return;
	}
	if (type && strcmp(type, "Attached") == 0) {
		attached(a, msg, t);
	} else if (type && strcmp(type, "Detached") == 0) {
		struct an_dev *d = umx_dev(a, (uint32_t)dict_uint(msg, "DeviceID", 0));
		if (d && !d->gone) {
			d->gone = true;
			d->gone_t = t;
			d->gone_pkt = a->cur_pkt;
			an_anomaly_add(a, "packet %llu: usbmuxd reports device %u detached", (unsigned long long)a->cur_pkt,
				       d->umx_id);
		}
	} else if (plist_dict_get_item(msg, "DeviceList")) {
		plist_t list = plist_dict_get_item(msg, "DeviceList");
		if (plist_get_node_type(list) == PLIST_ARRAY)
			for (uint32_t i = 0; i < plist_array_get_size(list) && i < AN_MAX_DEVS; i++) {
				plist_t it = plist_array_get_item(list, i);
				if (plist_get_node_type(it) == PLIST_DICT)
					attached(a, it, t);
			}
	} else if (plist_dict_get_item(msg, "PairRecordData") && f->readpr_pending) {
		f->readpr_pending = false;
		for (size_t i = 0; i < a->ndevs; i++)
			if (a->devs[i]->via_usbmuxd) {
				a->devs[i]->pair_record_read = true;
				a->devs[i]->pair_record_found = true;
			}
	} else if (type && strcmp(type, "Result") == 0) {
		uint32_t n = (uint32_t)dict_uint(msg, "Number", 0);
		if (f->connect_pending) {
			connect_result(a, f, n, t);
		} else if (f->readpr_pending) {
			f->readpr_pending = false;
			for (size_t i = 0; i < a->ndevs; i++)
				if (a->devs[i]->via_usbmuxd)
					a->devs[i]->pair_record_read = true;
		}
	}
}

static void umx_message(struct an *a, struct an_flow *f, int side, const uint8_t *m, size_t len, uint64_t t)
{
	struct lp_rd rd;
	uint32_t ver, type, tag;
	bool from_client = side == f->client;
	const uint8_t *body = m + UMX_HDR;
	size_t blen = len - UMX_HDR;

	lp_rd_init(&rd, m, len);
	lp_rd_le32(&rd);
	ver = lp_rd_le32(&rd);
	type = lp_rd_le32(&rd);
	tag = lp_rd_le32(&rd);
	(void)tag;
	a->umx_messages++;
	if (ver == 1 && type == UMX_PLIST) {
		plist_t msg = NULL;
		if (lkd_plist_decode(body, blen, &msg) != 0 || plist_get_node_type(msg) != PLIST_DICT) {
			an_anomaly_add(a, "packet %llu: usbmuxd %s message is not a plist dictionary",
				       (unsigned long long)a->cur_pkt, from_client ? "client" : "daemon");
			plist_free(msg);
			return;
		}
		plist_msg(a, f, from_client, msg, t);
		plist_free(msg);
		return;
	}
	lp_rd_init(&rd, body, blen);
	if (from_client && type == UMX_CONNECT) {
		uint32_t dev = lp_rd_le32(&rd);
		uint16_t port = lp_rd_be16(&rd);
		if (lp_rd_ok(&rd))
			start_connect(a, f, dev, port, t);
	} else if (from_client && type == UMX_LISTEN) {
		if (!a->umx_list_seen) {
			a->umx_list_seen = true;
			a->umx_list_t = t;
			a->umx_list_pkt = a->cur_pkt;
		}
	} else if (!from_client && type == UMX_RESULT) {
		uint32_t n = lp_rd_le32(&rd);
		if (lp_rd_ok(&rd) && f->connect_pending)
			connect_result(a, f, n, t);
	} else if (!from_client && type == UMX_DEVICE_ADD) {
		uint32_t id = lp_rd_le32(&rd);
		uint16_t pid = lp_rd_le16(&rd);
		const uint8_t *serial = lp_rd_ptr(&rd, 256);
		struct an_dev *d = lp_rd_ok(&rd) ? umx_dev(a, id) : NULL;
		if (d) {
			an_dev_touch(a, d, t);
			d->vid = 0x05ac;
			d->pid = pid;
			d->have_ids = true;
			lp_sanitize(d->serial, sizeof(d->serial), serial, strnlen((const char *)serial, 256));
			if (!d->udid[0])
				usbd_serial_to_udid(d->serial, d->udid, sizeof(d->udid));
			if (!d->umx_find.seen) {
				d->umx_find.seen = d->umx_find.done = true;
				d->umx_find.t0 = a->umx_list_seen ? a->umx_list_t : t;
				d->umx_find.t1 = t;
			}
		}
	} else if (!from_client && type == UMX_DEVICE_REMOVE) {
		uint32_t id = lp_rd_le32(&rd);
		struct an_dev *d = lp_rd_ok(&rd) ? umx_dev(a, id) : NULL;
		if (d && !d->gone) {
			d->gone = true;
			d->gone_t = t;
			d->gone_pkt = a->cur_pkt;
		}
	}
}

static void pipe_data(struct an *a, struct an_flow *f, int side, const uint8_t *p, size_t n, uint64_t t)
{
	int dir = side == f->client ? 0 : 1;

	f->bytes[dir] += n;
	a->mux_bytes[dir] += n;
	if (f->d)
		an_dev_touch(a, f->d, t);
	if (f->lkd)
		an_lkd_feed(f->lkd, dir, p, n, t);
}

static void umx_feed(struct an *a, struct an_flow *f, int side, const uint8_t *p, size_t n, uint64_t t)
{
	struct an_ubuf *b = &f->ub[side];
	size_t off = 0;

	if (f->broken)
		return;
	if (f->pipe) {
		pipe_data(a, f, side, p, n, t);
		return;
	}
	if (b->len + n > AN_UMX_MSG_MAX + UMX_HDR) {
		an_anomaly_add(a, "packet %llu: usbmuxd stream buffer over %u bytes; flow abandoned",
			       (unsigned long long)a->cur_pkt, AN_UMX_MSG_MAX);
		f->broken = true;
		return;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *nb = realloc(b->buf, cap);
		if (!nb) {
			f->broken = true;
			return;
		}
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, p, n);
	b->len += n;
	while (b->len - off >= UMX_HDR && !f->pipe) {
		const uint8_t *m = b->buf + off;
		uint32_t len = (uint32_t)m[0] | (uint32_t)m[1] << 8 | (uint32_t)m[2] << 16 | (uint32_t)m[3] << 24;
		if (len < UMX_HDR || len > AN_UMX_MSG_MAX) {
			an_anomaly_add(a, "packet %llu: usbmuxd message length %u out of range; flow abandoned",
				       (unsigned long long)a->cur_pkt, len);
			f->broken = true;
			return;
		}
		if (len > b->len - off)
			break;
		umx_message(a, f, side, m, len, t);
		off += len;
	}
	if (f->pipe && b->len > off) {
		/* bytes after the Connect result already belong to the device */
		pipe_data(a, f, side, b->buf + off, b->len - off, t);
		off = b->len;
	}
	memmove(b->buf, b->buf + off, b->len - off);
	b->len -= off;
}

static bool umx_shape(const uint8_t *p, size_t n)
{
	uint32_t len, ver, type;

	if (n < UMX_HDR)
		return false;
	len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	ver = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
	type = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
	if (len < UMX_HDR || len > AN_UMX_MSG_MAX)
		return false;
	if (ver == 1 && type == UMX_PLIST)
		return n < UMX_HDR + 6 || memcmp(p + UMX_HDR, "<?xml", 5) == 0 || memcmp(p + UMX_HDR, "bplist", 6) == 0;
	return ver == 0 && (type == UMX_CONNECT || type == UMX_LISTEN) && len <= 64;
}

static void flow_close(struct an *a, struct an_flow *f, uint64_t t)
{
	if (f->closed)
		return;
	f->closed = true;
	if (f->lkd) {
		an_lkd_close(f->lkd, t);
		an_lkd_free(f->lkd);
		f->lkd = NULL;
	}
	if (f->pipe && a->conn_list && json_object_array_length(a->conn_list) < AN_CONN_LIST_MAX) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "via", json_object_new_string("usbmuxd"));
		json_object_object_add(o, "device_id", json_object_new_int64(f->pend_dev));
		json_object_object_add(o, "device_port", json_object_new_int(f->pipe_port));
		if (f->pipe_port == MUX_PORT_LOCKDOWN)
			json_object_object_add(o, "service", json_object_new_string("lockdown"));
		json_object_object_add(o, "state", json_object_new_string("closed"));
		json_object_object_add(o, "bytes_out", json_object_new_int64((int64_t)f->bytes[0]));
		json_object_object_add(o, "bytes_in", json_object_new_int64((int64_t)f->bytes[1]));
		json_object_array_add(a->conn_list, o);
	}
}

static struct an_flow *flow_get(struct an *a, const uint8_t *src, const uint8_t *dst, size_t alen, uint16_t sp,
				uint16_t dp, bool create, int *side)
{
	struct an_flow *f;

	for (size_t i = 0; i < a->nflows; i++) {
		f = a->flows[i];
		if (f->port[0] == sp && f->port[1] == dp && !memcmp(f->addr[0], src, alen) && !memcmp(f->addr[1], dst, alen)) {
			*side = 0;
			return f;
		}
		if (f->port[1] == sp && f->port[0] == dp && !memcmp(f->addr[1], src, alen) && !memcmp(f->addr[0], dst, alen)) {
			*side = 1;
			return f;
		}
	}
	if (!create)
		return NULL;
	if (a->nflows == AN_MAX_FLOWS) {
		/* recycle a closed flow */
		size_t i;
		for (i = 0; i < a->nflows; i++)
			if (a->flows[i]->closed)
				break;
		if (i == a->nflows) {
			if (!a->flow_overflow_noted)
				an_anomaly_add(a, "packet %llu: more than %d TCP flows open; later ones ignored",
					       (unsigned long long)a->cur_pkt, AN_MAX_FLOWS);
			a->flow_overflow_noted = true;
			return NULL;
		}
		an_flow_free(a->flows[i]);
		a->flows[i] = a->flows[--a->nflows];
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	memcpy(f->addr[0], src, alen);
	memcpy(f->addr[1], dst, alen);
	f->port[0] = sp;
	f->port[1] = dp;
	f->client = -1;
	f->syn_side = -1;
	a->flows[a->nflows++] = f;
	*side = 0;
	return f;
}

static void tcp_segment(struct an *a, uint64_t t, const uint8_t *src, const uint8_t *dst, size_t alen,
			const uint8_t *seg, size_t n)
{
	struct lp_rd rd;
	uint16_t sp, dp;
	uint32_t seq;
	uint8_t doff, flags;
	struct an_flow *f;
	const uint8_t *pay;
	size_t plen;
	int side;

	lp_rd_init(&rd, seg, n);
	sp = lp_rd_be16(&rd);
	dp = lp_rd_be16(&rd);
	seq = lp_rd_be32(&rd);
	lp_rd_be32(&rd);
	doff = (uint8_t)(lp_rd_u8(&rd) >> 4);
	flags = lp_rd_u8(&rd);
	if (!lp_rd_ok(&rd) || doff < 5 || (size_t)doff * 4 > n) {
		an_anomaly_add(a, "packet %llu: TCP header truncated or invalid", (unsigned long long)a->cur_pkt);
		return;
	}
	a->tcp_segments++;
	pay = seg + doff * 4;
	plen = n - doff * 4;
	f = flow_get(a, src, dst, alen, sp, dp, plen || (flags & 0x02), &side);
	if (!f || f->closed)
		return;
	if ((flags & 0x02) && !(flags & 0x10))
		f->syn_side = side;
	if (flags & 0x02) {
		f->st[side].have = true;
		f->st[side].next = seq + 1;
	}
	if (plen) {
		int32_t diff;
		if (!f->st[side].have) {
			f->st[side].have = true;
			f->st[side].next = seq;
		}
		diff = (int32_t)(seq - f->st[side].next);
		if (diff < 0) {
			if ((size_t)-(int64_t)diff >= plen)
				plen = 0; /* retransmission */
			else {
				pay += -(int64_t)diff;
				plen -= (size_t)-(int64_t)diff;
			}
		} else if (diff > 0) {
			if (a->tcp_gaps_listed++ < UMX_GAPS_LISTED || f->kind == F_UMX)
				an_anomaly_add(a, "packet %llu: TCP gap of %d bytes (port %u -> %u); segments missing from the capture",
					       (unsigned long long)a->cur_pkt, diff, sp, dp);
			if (f->kind == F_UMX && !f->pipe)
				f->broken = true;
		}
		if (plen)
			f->st[side].next = (diff < 0 ? f->st[side].next : seq) + (uint32_t)plen;
	}
	if (plen && f->kind == F_UNKNOWN) {
		if (a->o.usbmuxd_port > 0) {
			if (f->port[0] == a->o.usbmuxd_port || f->port[1] == a->o.usbmuxd_port) {
				f->kind = F_UMX;
				f->client = f->port[0] == a->o.usbmuxd_port ? 1 : 0;
			} else {
				f->kind = F_OTHER;
			}
		} else if (umx_shape(pay, plen)) {
			f->kind = F_UMX;
			f->client = side;
		} else {
			f->kind = F_OTHER;
		}
		if (f->kind == F_UMX)
			a->umx_flows++;
	}
	if (plen && f->kind == F_UMX)
		umx_feed(a, f, side, pay, plen, t);
	if (flags & 0x04) {
		flow_close(a, f, t);
	} else if (flags & 0x01) {
		f->st[side].fin = true;
		if (f->st[!side].fin)
			flow_close(a, f, t);
	}
}

int an_ip_packet(struct an *a, uint64_t t, const uint8_t *buf, size_t caplen, size_t wirelen)
{
	size_t off = 0;
	uint8_t ver;

	switch (a->linktype) {
	case 0: /* BSD loopback: 4-byte family in the writer's byte order */
	case 108:
		off = 4;
		break;
	case 1: {
		uint16_t et;
		off = 14;
		if (caplen < 14)
			return LP_ETRUNC;
		et = be16(buf + 12);
		if (et == 0x8100) {
			if (caplen < 18)
				return LP_ETRUNC;
			et = be16(buf + 16);
			off = 18;
		}
		if (et != 0x0800 && et != 0x86dd)
			return 0;
		break;
	}
	case 113:
		off = 16;
		break;
	case 276:
		off = 20;
		break;
	default: /* raw IP */
		break;
	}
	if (caplen <= off)
		return LP_ETRUNC;
	buf += off;
	caplen -= off;
	ver = buf[0] >> 4;
	if (ver == 4) {
		size_t ihl = (size_t)(buf[0] & 0x0f) * 4, tot;
		if (caplen < 20 || ihl < 20 || ihl > caplen) {
			an_anomaly_add(a, "packet %llu: IPv4 header truncated", (unsigned long long)a->cur_pkt);
			return LP_ETRUNC;
		}
		tot = be16(buf + 2);
		if (buf[9] != 6)
			return 0;
		if ((be16(buf + 6) & 0x3fff) != 0) {
			an_anomaly_add(a, "packet %llu: fragmented IPv4 packet skipped", (unsigned long long)a->cur_pkt);
			return 0;
		}
		if (tot < ihl) {
			an_anomaly_add(a, "packet %llu: IPv4 total length %zu below its header", (unsigned long long)a->cur_pkt, tot);
			return LP_EBADMSG;
		}
		if (tot > caplen) {
			an_anomaly_add(a, "packet %llu: IPv4 packet clipped (%zu of %zu bytes captured)",
				       (unsigned long long)a->cur_pkt, caplen, tot);
			tot = caplen;
		}
		tcp_segment(a, t, buf + 12, buf + 16, 4, buf + ihl, tot - ihl);
		return 0;
	}
	if (ver == 6) {
		size_t plen;
		if (caplen < 40) {
			an_anomaly_add(a, "packet %llu: IPv6 header truncated", (unsigned long long)a->cur_pkt);
			return LP_ETRUNC;
		}
		if (buf[6] != 6)
			return 0;
		plen = be16(buf + 4);
		if (plen > caplen - 40) {
			an_anomaly_add(a, "packet %llu: IPv6 packet clipped", (unsigned long long)a->cur_pkt);
			plen = caplen - 40;
		}
		tcp_segment(a, t, buf + 8, buf + 24, 16, buf + 40, plen);
		return 0;
	}
	(void)wirelen;
	return 0;
}

void an_tcp_finish(struct an *a)
{
	for (size_t i = 0; i < a->nflows; i++) {
		struct an_flow *f = a->flows[i];
		if (f->lkd && !f->closed) {
			an_lkd_free(f->lkd);
			f->lkd = NULL;
		}
	}
}
