/* reader_tcp.c - captures of a relayed usbmuxd socket: IPv4/IPv6 TCP ->
 * per-direction byte streams -> usbmuxd messages -> relayed connections.
 *
 * Tools that relay /var/run/usbmuxd through TCP on loopback (socat style)
 * make the daemon's client protocol capturable (doc/protocol.md, usbmuxd):
 * 16-byte little-endian header, then a plist dict or a binary body, decoded
 * by the usbmuxd codec (proto/usbmuxd_codec.h umc_decode_message) into one
 * CAP_EV_UMX event each. A Connect opens a relayed connection (CAP_EV_CONN,
 * SYN); its Result opens it (the socket is a raw pipe to the device port from
 * then on: CAP_EV_DATA, and lockdown events when the port is 62078) or
 * refuses it.
 *
 * The usbmuxd flows are those on the configured port, or detected by the
 * shape of the first message the client sends (length, version 0/1, message
 * 2/3/8, plist body). TCP reassembly is deliberately simple: per direction,
 * in-order segments are delivered, retransmitted bytes trimmed, a jump
 * forward is a gap (anomaly; the message stream is abandoned). Link layers:
 * BSD loopback (0, 108), Ethernet (1, one VLAN tag), raw IP (12, 14, 101,
 * 228, 229), Linux cooked (113, 276).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/lp_cursor.h"
#include "src/capture/reader_int.h"
#include "proto/usbmuxd_codec.h"

#define UMX_HDR UMC_HEADER_LEN
#define UMX_GAPS_LISTED 8

struct rd_flow {
	uint8_t addr[2][16];
	uint16_t port[2];
	int client; /* side index of the usbmuxd client, -1 unknown */
	int syn_side;
	enum { CAP_FLOW_UNKNOWN, CAP_FLOW_UMX, CAP_FLOW_OTHER } kind;
	struct {
		bool have;
		uint32_t next;
		bool fin;
	} st[2];
	struct {
		uint8_t *buf;
		size_t len, cap;
	} ub[2];
	bool broken;
	bool closed;
	bool connect_pending, readpr_pending;
	bool pipe;
	struct rd_conn conn; /* the relayed connection (used from Connect on) */
};

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

void rd_flow_free(struct rd_flow *f)
{
	if (!f)
		return;
	rd_lkd_free(f->conn.lkd);
	free(f->ub[0].buf);
	free(f->ub[1].buf);
	free(f);
}

static void start_connect(struct cap_reader *r, struct rd_flow *f, plist_t msg)
{
	uint64_t port = lkd_dict_uint(msg, "PortNumber", 0);
	struct rd_conn *c = &f->conn;

	if (c->used) /* an earlier Connect never answered */
		rd_conn_event(r, c, c->pub.state, r->cur_t, true);
	memset(c, 0, sizeof(*c));
	c->used = true;
	c->pub.relay = true;
	c->pub.umx_device = (uint32_t)lkd_dict_uint(msg, "DeviceID", 0);
	/* PortNumber holds the port in network byte order */
	c->pub.dport = (uint16_t)(((port & 0xff) << 8) | ((port >> 8) & 0xff));
	c->pub.lockdown = c->pub.dport == MUX_PORT_LOCKDOWN;
	c->pub.t_syn = r->cur_t;
	f->connect_pending = true;
	rd_conn_event(r, c, CAP_CONN_SYN, r->cur_t, false);
}

static void connect_result(struct cap_reader *r, struct rd_flow *f, uint32_t result)
{
	struct rd_conn *c = &f->conn;

	f->connect_pending = false;
	if (result == 0) {
		f->pipe = true;
		c->pub.t_open = r->cur_t;
		if (c->pub.lockdown)
			c->lkd = rd_lkd_new(r);
		rd_conn_event(r, c, CAP_CONN_OPEN, r->cur_t, false);
		return;
	}
	c->pub.umx_result = result;
	rd_conn_event(r, c, CAP_CONN_REFUSED, r->cur_t, true);
}

static void umx_message(struct cap_reader *r, struct rd_flow *f, int side,
			const struct umc_header *h, const uint8_t *body)
{
	struct cap_event ev = {.type = CAP_EV_UMX};
	bool from_client = side == f->client;
	const char *type, *answers = NULL;
	plist_t msg = NULL;
	int rc;

	r->umx_messages++;
	rc = umc_decode_message(h, body, h->length - UMX_HDR, &msg, NULL);
	if (rc == LP_EPLIST) {
		rd_anomaly_of(r, CAP_AK_HOST, NULL, NULL,
			      "packet %llu: usbmuxd %s message is not a plist dictionary",
			      (unsigned long long)r->cur_pkt, from_client ? "client" : "daemon");
		return;
	}
	if (rc)
		return; /* a message the relay view does not need */
	type = lkd_dict_str(msg, "MessageType");
	if (!from_client && !plist_dict_get_item(msg, "DeviceList") &&
	    !(type && !strcmp(type, "Attached")) && !(type && !strcmp(type, "Detached"))) {
		bool result = type && !strcmp(type, "Result");
		if (plist_dict_get_item(msg, "PairRecordData") && f->readpr_pending) {
			answers = "ReadPairRecord";
			f->readpr_pending = false;
		} else if (result && f->connect_pending) {
			answers = "Connect";
		} else if (result && f->readpr_pending) {
			answers = "ReadPairRecord";
			f->readpr_pending = false;
		}
	}
	ev.from_client = from_client;
	ev.u.umx.msg = msg;
	ev.u.umx.answers = answers;
	ev.conn = f->conn.used ? &f->conn.pub : NULL;
	rd_emit(r, &ev);
	if (from_client && type && !strcmp(type, "Connect"))
		start_connect(r, f, msg);
	else if (from_client && type && !strcmp(type, "ReadPairRecord"))
		f->readpr_pending = true;
	else if (answers && !strcmp(answers, "Connect"))
		connect_result(r, f, (uint32_t)lkd_dict_uint(msg, "Number", 0));
	plist_free(msg);
}

static void pipe_data(struct cap_reader *r, struct rd_flow *f, int side, const uint8_t *p, size_t n)
{
	struct cap_event ev = {.type = CAP_EV_DATA, .conn = &f->conn.pub};
	int dir = side == f->client ? 0 : 1;

	f->conn.pub.bytes[dir] += n;
	f->conn.pub.packets[dir]++;
	ev.dir = dir;
	ev.u.mux.payload_len = n;
	rd_emit(r, &ev);
	if (f->conn.lkd)
		rd_lkd_feed(r, &f->conn, dir, p, n);
}

static void umx_feed(struct cap_reader *r, struct rd_flow *f, int side, const uint8_t *p, size_t n)
{
	struct umc_header h;
	size_t off = 0;
	__typeof__(f->ub[0]) *b = &f->ub[side];

	if (f->broken)
		return;
	if (f->pipe) {
		pipe_data(r, f, side, p, n);
		return;
	}
	if (b->len + n > CAP_RD_UMX_MSG_MAX + UMX_HDR) {
		rd_anomaly(r, "packet %llu: usbmuxd stream buffer over %u bytes; flow abandoned",
			   (unsigned long long)r->cur_pkt, CAP_RD_UMX_MSG_MAX);
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
		uint32_t len = (uint32_t)m[0] | (uint32_t)m[1] << 8 | (uint32_t)m[2] << 16 |
			       (uint32_t)m[3] << 24;
		int rc = umc_decode_header(m, b->len - off, &h, NULL);
		if (rc || h.length > CAP_RD_UMX_MSG_MAX) {
			rd_anomaly(
				r,
				"packet %llu: usbmuxd message length %u out of range; flow abandoned",
				(unsigned long long)r->cur_pkt, len);
			f->broken = true;
			return;
		}
		if (h.length > b->len - off)
			break;
		umx_message(r, f, side, &h, b->buf + off + UMX_HDR);
		off += h.length;
	}
	if (f->pipe && b->len > off) {
		/* bytes after the Connect result already belong to the device */
		pipe_data(r, f, side, b->buf + off, b->len - off);
		off = b->len;
	}
	memmove(b->buf, b->buf + off, b->len - off);
	b->len -= off;
}

static void flow_close(struct cap_reader *r, struct rd_flow *f, uint64_t t)
{
	if (f->closed)
		return;
	f->closed = true;
	if (f->conn.used)
		rd_conn_event(r, &f->conn, f->pipe ? CAP_CONN_RESET_HOST : f->conn.pub.state, t,
			      true);
}

static bool umx_shape(const uint8_t *p, size_t n)
{
	uint32_t len, ver, type;

	if (n < UMX_HDR)
		return false;
	len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	ver = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
	type = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
	if (len < UMX_HDR || len > CAP_RD_UMX_MSG_MAX)
		return false;
	if (ver == 1 && type == UMC_MSG_PLIST)
		return n < UMX_HDR + 6 || memcmp(p + UMX_HDR, "<?xml", 5) == 0 ||
		       memcmp(p + UMX_HDR, "bplist", 6) == 0;
	return ver == 0 && (type == UMC_MSG_CONNECT || type == UMC_MSG_LISTEN) && len <= 64;
}

static struct rd_flow *flow_get(struct cap_reader *r, const uint8_t *src, const uint8_t *dst,
				size_t alen, uint16_t sp, uint16_t dp, bool create, int *side)
{
	struct rd_flow *f;

	for (size_t i = 0; i < r->nflows; i++) {
		f = r->flows[i];
		if (f->port[0] == sp && f->port[1] == dp && !memcmp(f->addr[0], src, alen) &&
		    !memcmp(f->addr[1], dst, alen)) {
			*side = 0;
			return f;
		}
		if (f->port[1] == sp && f->port[0] == dp && !memcmp(f->addr[1], src, alen) &&
		    !memcmp(f->addr[0], dst, alen)) {
			*side = 1;
			return f;
		}
	}
	if (!create)
		return NULL;
	if (r->nflows == CAP_RD_MAX_FLOWS) {
		/* recycle a closed flow */
		size_t i;
		for (i = 0; i < r->nflows; i++)
			if (r->flows[i]->closed)
				break;
		if (i == r->nflows) {
			if (!r->flow_overflow_noted)
				rd_anomaly(
					r,
					"packet %llu: more than %d TCP flows open; later ones ignored",
					(unsigned long long)r->cur_pkt, CAP_RD_MAX_FLOWS);
			r->flow_overflow_noted = true;
			return NULL;
		}
		rd_flow_free(r->flows[i]);
		r->flows[i] = r->flows[--r->nflows];
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
	r->flows[r->nflows++] = f;
	*side = 0;
	return f;
}

static void tcp_segment(struct cap_reader *r, const uint8_t *src, const uint8_t *dst, size_t alen,
			const uint8_t *seg, size_t n)
{
	struct lp_rd rd;
	uint16_t sp, dp;
	uint32_t seq;
	uint8_t doff, flags;
	struct rd_flow *f;
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
		rd_anomaly(r, "packet %llu: TCP header truncated or invalid",
			   (unsigned long long)r->cur_pkt);
		return;
	}
	r->tcp_segments++;
	pay = seg + doff * 4;
	plen = n - doff * 4;
	f = flow_get(r, src, dst, alen, sp, dp, plen || (flags & 0x02), &side);
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
			if ((size_t) - (int64_t)diff >= plen)
				plen = 0; /* retransmission */
			else {
				pay += -(int64_t)diff;
				plen -= (size_t) - (int64_t)diff;
			}
		} else if (diff > 0) {
			if (r->tcp_gaps_listed++ < UMX_GAPS_LISTED || f->kind == CAP_FLOW_UMX)
				rd_anomaly(
					r,
					"packet %llu: TCP gap of %d bytes (port %u -> %u); segments missing from the capture",
					(unsigned long long)r->cur_pkt, diff, sp, dp);
			if (f->kind == CAP_FLOW_UMX && !f->pipe)
				f->broken = true;
		}
		if (plen)
			f->st[side].next = (diff < 0 ? f->st[side].next : seq) + (uint32_t)plen;
	}
	if (plen && f->kind == CAP_FLOW_UNKNOWN) {
		if (r->o.usbmuxd_port > 0) {
			if (f->port[0] == r->o.usbmuxd_port || f->port[1] == r->o.usbmuxd_port) {
				f->kind = CAP_FLOW_UMX;
				f->client = f->port[0] == r->o.usbmuxd_port ? 1 : 0;
			} else {
				f->kind = CAP_FLOW_OTHER;
			}
		} else if (umx_shape(pay, plen)) {
			f->kind = CAP_FLOW_UMX;
			f->client = side;
		} else {
			f->kind = CAP_FLOW_OTHER;
		}
		if (f->kind == CAP_FLOW_UMX)
			r->umx_flows++;
	}
	if (plen && f->kind == CAP_FLOW_UMX)
		umx_feed(r, f, side, pay, plen);
	if (flags & 0x04) {
		flow_close(r, f, r->cur_t);
	} else if (flags & 0x01) {
		f->st[side].fin = true;
		if (f->st[!side].fin)
			flow_close(r, f, r->cur_t);
	}
}

int rd_ip_packet(struct cap_reader *r, const uint8_t *buf, size_t caplen)
{
	size_t off = 0;
	uint8_t ver;

	switch (r->linktype) {
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
			rd_anomaly(r, "packet %llu: IPv4 header truncated",
				   (unsigned long long)r->cur_pkt);
			return LP_ETRUNC;
		}
		tot = be16(buf + 2);
		if (buf[9] != 6)
			return 0;
		if ((be16(buf + 6) & 0x3fff) != 0) {
			rd_anomaly(r, "packet %llu: fragmented IPv4 packet skipped",
				   (unsigned long long)r->cur_pkt);
			return 0;
		}
		if (tot < ihl) {
			rd_anomaly(r, "packet %llu: IPv4 total length %zu below its header",
				   (unsigned long long)r->cur_pkt, tot);
			return LP_EBADMSG;
		}
		if (tot > caplen) {
			rd_anomaly(r,
				   "packet %llu: IPv4 packet clipped (%zu of %zu bytes captured)",
				   (unsigned long long)r->cur_pkt, caplen, tot);
			tot = caplen;
		}
		tcp_segment(r, buf + 12, buf + 16, 4, buf + ihl, tot - ihl);
		return 0;
	}
	if (ver == 6) {
		size_t plen;
		if (caplen < 40) {
			rd_anomaly(r, "packet %llu: IPv6 header truncated",
				   (unsigned long long)r->cur_pkt);
			return LP_ETRUNC;
		}
		if (buf[6] != 6)
			return 0;
		plen = be16(buf + 4);
		if (plen > caplen - 40) {
			rd_anomaly(r, "packet %llu: IPv6 packet clipped",
				   (unsigned long long)r->cur_pkt);
			plen = caplen - 40;
		}
		tcp_segment(r, buf + 8, buf + 24, 16, buf + 40, plen);
		return 0;
	}
	return 0;
}

bool rd_tcp_mid_exchange(struct cap_reader *r, const char **request)
{
	bool mid = false;

	for (size_t i = 0; i < r->nflows; i++) {
		struct rd_flow *f = r->flows[i];
		if (f->closed)
			continue;
		if (f->connect_pending || f->readpr_pending)
			mid = true;
		if (f->conn.used && f->conn.lkd && f->conn.lkd->unanswered) {
			mid = true;
			*request = f->conn.lkd->last_request;
		}
	}
	return mid;
}

void rd_tcp_finish(struct cap_reader *r)
{
	for (size_t i = 0; i < r->nflows; i++) {
		struct rd_flow *f = r->flows[i];
		if (f->conn.used && !f->closed)
			rd_conn_event(r, &f->conn, f->conn.pub.state, r->t_last, true);
	}
}
