/* mux.c - usbmux codec, host and device roles, sans-I/O (see mux.h).
 *
 * Reference: doc/protocol.md section 2, which summarises
 * libimobiledevice/usbmuxd src/cli/device.c, tihmstar/usbmuxd2 Devices/USBDevice.cpp
 * and TCP.cpp. What this file does not do: USB I/O, ZLPs (the caller adds one
 * when a packet's length is a multiple of wMaxPacketSize), retransmission
 * (USB is treated as reliable, as both hosts do), FIN (nobody uses it).
 *
 * Framing (all fields big-endian). One mux packet per USB transfer:
 *
 *   v1 header (8)          v2 header (16)
 *   +----------+--------+  +----------+--------+------------+--------+--------+
 *   | protocol | length |  | protocol | length | 0xFEEDFACE | tx_seq | rx_seq |
 *   +----------+--------+  +----------+--------+------------+--------+--------+
 *      u32        u32         u32        u32       u32         u16      u16
 *
 *   length covers the whole packet. protocol 0 VERSION, 1 CONTROL
 *   (device->host: type byte + text), 2 SETUP (v2, host->device: one byte
 *   0x07), 6 TCP (20-byte BSD tcphdr + payload):
 *
 *   +-------+-------+-----+-----+------+-------+--------+-------+-----+
 *   | sport | dport | seq | ack | 0x50 | flags | window | cksum | urg |
 *   +-------+-------+-----+-----+------+-------+--------+-------+-----+
 *      u16     u16    u32   u32   u8      u8     u16      u16    u16
 *
 * Negotiation (2.3, 2.4): the host sends VERSION with the 8-byte header
 * whatever it asks for (body: major, minor, padding - 12 bytes); the device
 * answers VERSION, also with the 8-byte header. The negotiated version is the
 * device's major; 1 means 8-byte headers for good. For 2 the host sends one
 * SETUP (tx_seq 0, rx_seq 0xFFFF, payload 0x07) and is active at once; the
 * device is active when SETUP arrives. VERSION packets always use 8 bytes.
 *
 * v2 sequence numbers (2.5): every packet after VERSION carries tx_seq,
 * incrementing by one per packet (16-bit wrap); the host's SETUP is 0, the
 * device's first packet after SETUP is 0. rx_seq: the host puts the tx_seq of
 * the last device packet it accepted (usbmuxd2's choice, 0xFFFF before any);
 * the device puts the last host tx_seq it received (the notes' recommendation).
 * A gap in the peer's tx_seq is reported as an anomaly and then followed.
 * The magic is not checked by real hosts; a wrong one is reported, not fatal.
 *
 * TCP (2.7-2.9): window field is in units of 256 bytes. The host opens with
 * SYN (seq 0, local ports from 1 upward); the device answers SYN|ACK with ISN
 * 0 and ack = seq+1 (so both host styles agree), or RST when nobody listens.
 * The host completes with ACK (seq 1, ack 1). After that every packet carries
 * flags exactly 0x10; anything else (but RST) tears the connection down with
 * RST, as usbmuxd does. Data is sent while (seq - peer ack) < peer window, in
 * packets of at most the role's MTU; the rest waits in a send queue. Both
 * roles acknowledge data (a pure ACK unless data went out carrying the ack);
 * neither acknowledges a pure ACK (usbmuxd would ping-pong). Closing is RST
 * (both hosts). Packets for unknown connections that are not RST are answered
 * with an anonymous RST (seq = their ack, ack = their seq).
 *
 * Reassembly (2.10): a device->host packet longer than the host's IN buffer
 * arrives as several transfers; struct mux_rx collects bytes until the
 * length field is reached, with the one bad-length policy written in mux.h
 * (the capture reader uses the same code).
 */
#include "proto/mux.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/lp_cursor.h"
#include "src/base/lp_error.h"

#define MUX_VERSION_BODY 12
#define MUX_SETUP_BYTE 0x07
#define MUX_MAX_LISTEN 32
#define MUX_FIRST_SPORT 1

enum mux_state {
	MUX_ST_IDLE,	     /* host: not started; device: waiting for VERSION */
	MUX_ST_VERSION_SENT, /* host: waiting for the VERSION reply */
	MUX_ST_WAIT_SETUP,   /* device: v2 answered, waiting for SETUP */
	MUX_ST_ACTIVE,
};

enum mux_conn_state { MUX_CONN_FREE = 0, MUX_CONN_SYN_SENT, MUX_CONN_OPEN };

struct mux_conn {
	enum mux_conn_state state;
	uint32_t id;
	uint16_t lport, rport; /* local / remote (peer) port */
	uint32_t snd_una, snd_nxt, rcv_nxt;
	uint32_t peer_win; /* bytes */
	bool ack_pending;
	uint8_t *q; /* send queue: q[qhead .. qhead+qlen) unsent */
	size_t qhead, qlen, qcap;
};

struct mux_out {
	struct mux_out *next;
	uint8_t *buf;
	size_t len;
};

struct mux {
	enum mux_role role;
	const struct mux_cbs *cbs;
	void *ud;
	const struct lp_log *log;
	enum mux_state state;
	uint32_t version;   /* negotiated major, 0 until done */
	uint32_t dev_major; /* device: what to answer */
	size_t mtu;
	/* v2 */
	uint16_t tx_seq;    /* next tx_seq to send */
	uint16_t rx_seq;    /* value for our rx_seq field */
	uint16_t peer_next; /* expected next peer tx_seq */
	bool peer_seen;
	struct mux_rx rx; /* reassembly of the peer's packets */
	/* connections */
	struct mux_conn conns[MUX_MAX_CONNS];
	uint32_t next_id;
	uint16_t next_sport;
	uint16_t listen[MUX_MAX_LISTEN];
	size_t nlisten;
	/* output */
	struct mux_out *out_head, *out_tail;
	size_t out_count, out_bytes;
	int fatal; /* sticky: LP_EPROTO once the output queue went over its cap */
	struct mux_stats st;
};

static const struct mux_cbs mux_no_cbs;

/* ---------------------------------------------------------------------------
 * Stateless decode
 */

/* mux_shape() and mux_shape_start(): `start` - the packet's length field is
 * over `len` (at most MUX_MAX_PACKET), a TCP packet whose headers are all
 * in `buf`; else it equals `len`. */
static int shape(const uint8_t *buf, size_t len, bool from_device, uint16_t *tx_seq, bool start,
		 uint32_t *announced)
{
	struct lp_rd r;
	uint32_t protocol, length;
	int ver;
	size_t body;

	lp_rd_init(&r, buf, len);
	protocol = lp_rd_be32(&r);
	length = lp_rd_be32(&r);
	if (!lp_rd_ok(&r))
		return 0;
	if (start ? length <= len || length > MUX_MAX_PACKET || protocol != MUX_PROTO_TCP
		  : length != len)
		return 0;
	if (protocol == MUX_PROTO_VERSION)
		return len == MUX_V1_HDR + 12 ? 1 : 0;
	if (protocol == MUX_PROTO_SETUP	    ? from_device
	    : protocol == MUX_PROTO_CONTROL ? !from_device
					    : protocol != MUX_PROTO_TCP)
		return 0;
	if (len >= MUX_V2_HDR && lp_rd_be32(&r) == MUX_V2_MAGIC) {
		uint16_t seq = lp_rd_be16(&r);
		ver = 2;
		if (tx_seq)
			*tx_seq = seq;
		lp_rd_skip(&r, 2); /* rx_seq */
	} else {
		ver = 1;
		lp_rd_init(&r, buf + MUX_V1_HDR, len - MUX_V1_HDR);
	}
	body = lp_rd_left(&r);
	switch (protocol) {
	case MUX_PROTO_SETUP:
		return ver == 2 && body == 1 ? 2 : 0;
	case MUX_PROTO_CONTROL:
		return body >= 1 ? ver : 0;
	default: {
		uint8_t off, flags;
		if (body < MUX_TCP_HDR)
			return 0;
		lp_rd_skip(&r, 12); /* ports, seq, ack */
		off = lp_rd_u8(&r);
		flags = lp_rd_u8(&r);
		if (!lp_rd_ok(&r) || off != 0x50 ||
		    (flags & ~(MUX_TH_FIN | MUX_TH_SYN | MUX_TH_RST | MUX_TH_PSH | MUX_TH_ACK)) ||
		    !flags)
			return 0;
		if (announced)
			*announced = length;
		return ver;
	}
	}
}

int mux_shape(const uint8_t *buf, size_t len, bool from_device, uint16_t *tx_seq)
{
	return shape(buf, len, from_device, tx_seq, false, NULL);
}

int mux_shape_start(const uint8_t *buf, size_t len, bool from_device, uint32_t *length)
{
	return shape(buf, len, from_device, NULL, true, length);
}

int mux_decode(const uint8_t *buf, size_t len, uint32_t hdr_version, struct mux_packet *out)
{
	struct lp_rd r;
	uint32_t protocol, length, magic = 0, seq = 0, ack = 0;
	uint16_t tx_seq = 0, rx_seq = 0, sport = 0, dport = 0, window = 0;
	uint8_t flags = 0;
	size_t hs;

	lp_rd_init(&r, buf, len);
	protocol = lp_rd_be32(&r);
	length = lp_rd_be32(&r);
	if (!lp_rd_ok(&r))
		return LP_ETRUNC;
	hs = protocol == MUX_PROTO_VERSION ? MUX_V1_HDR : mux_hdr_size(hdr_version);
	if (length < hs)
		return LP_EBADMSG;
	if (length > len)
		return LP_ETRUNC;
	/* from here on only the packet's own bytes */
	lp_rd_init(&r, buf, length);
	lp_rd_skip(&r, 8);
	if (hs == MUX_V2_HDR) {
		magic = lp_rd_be32(&r);
		tx_seq = lp_rd_be16(&r);
		rx_seq = lp_rd_be16(&r);
	}
	switch (protocol) {
	case MUX_PROTO_VERSION:
	case MUX_PROTO_CONTROL:
	case MUX_PROTO_SETUP:
		break;
	case MUX_PROTO_TCP: {
		uint8_t off;
		size_t doff;

		if (lp_rd_left(&r) < MUX_TCP_HDR)
			return LP_EBADMSG;
		sport = lp_rd_be16(&r);
		dport = lp_rd_be16(&r);
		seq = lp_rd_be32(&r);
		ack = lp_rd_be32(&r);
		off = lp_rd_u8(&r);
		flags = lp_rd_u8(&r);
		window = lp_rd_be16(&r);
		lp_rd_skip(&r, 4); /* checksum, urgent: always 0, never checked */
		doff = (size_t)(off >> 4) * 4;
		if (doff < MUX_TCP_HDR || doff - MUX_TCP_HDR > lp_rd_left(&r))
			return LP_EBADMSG;
		lp_rd_skip(&r, doff - MUX_TCP_HDR); /* options: none seen, skip */
		break;
	}
	default:
		return LP_EBADMSG;
	}
	if (!lp_rd_ok(&r))
		return LP_ETRUNC;
	/* every field written in place (a struct zeroed and built on the
	 * stack, then copied out, stalled on store forwarding) */
	out->protocol = protocol;
	out->length = length;
	out->v2 = hs == MUX_V2_HDR;
	out->tx_seq = tx_seq;
	out->rx_seq = rx_seq;
	out->magic = magic;
	out->sport = sport;
	out->dport = dport;
	out->seq = seq;
	out->ack = ack;
	out->flags = flags;
	out->window = window;
	out->payload_len = lp_rd_left(&r);
	out->payload = out->payload_len ? buf + r.off : NULL;
	return 0;
}

/* ---------------------------------------------------------------------------
 * Helpers
 */

static void mux_anomaly(struct mux *m, int err, const char *what)
{
	m->st.anomalies++;
	lp_logf(m->log, LP_LOG_WARN, "mux %s: %s (%s)",
		m->role == MUX_ROLE_HOST ? "host" : "device", what, lp_errname(err));
	if (m->cbs->on_anomaly)
		m->cbs->on_anomaly(m->ud, err, what);
}

static struct mux_conn *mux_conn_by_id(const struct mux *m, uint32_t id)
{
	for (size_t i = 0; i < MUX_MAX_CONNS; i++)
		if (m->conns[i].state != MUX_CONN_FREE && m->conns[i].id == id)
			return (struct mux_conn *)&m->conns[i];
	return NULL;
}

static struct mux_conn *mux_conn_by_ports(struct mux *m, uint16_t lport, uint16_t rport)
{
	for (size_t i = 0; i < MUX_MAX_CONNS; i++)
		if (m->conns[i].state != MUX_CONN_FREE && m->conns[i].lport == lport &&
		    m->conns[i].rport == rport)
			return &m->conns[i];
	return NULL;
}

static struct mux_conn *mux_conn_alloc(struct mux *m)
{
	for (size_t i = 0; i < MUX_MAX_CONNS; i++) {
		struct mux_conn *c = &m->conns[i];
		if (c->state == MUX_CONN_FREE) {
			memset(c, 0, sizeof(*c));
			c->id = m->next_id++;
			if (m->next_id == 0)
				m->next_id = 1;
			return c;
		}
	}
	return NULL;
}

static void mux_conn_release(struct mux_conn *c)
{
	free(c->q);
	memset(c, 0, sizeof(*c));
}

static bool mux_seq_after(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) > 0;
}

/* Queue one packet. `hdr_version` 0 = the negotiated one. Payload may come in
 * two parts (TCP header, data). */
static int mux_emit(struct mux *m, uint32_t proto, bool v1_hdr, const uint8_t *a, size_t alen,
		    const uint8_t *b, size_t blen)
{
	size_t hs = v1_hdr ? MUX_V1_HDR : mux_hdr_size(m->version);
	size_t len = hs + alen + blen;
	struct mux_out *o;
	struct lp_wr w;
	uint8_t *buf;

	if (len > MUX_MAX_PACKET)
		return LP_ETOOBIG;
	if (m->fatal)
		return m->fatal;
	if (m->out_count >= MUX_OUTQ_MAX_PACKETS || len > MUX_OUTQ_MAX_BYTES - m->out_bytes) {
		char what[128];

		snprintf(what, sizeof(what),
			 "output queue over its cap (%zu packets, %zu bytes waiting): "
			 "the peer sends faster than it takes our packets",
			 m->out_count, m->out_bytes);
		m->fatal = LP_EPROTO;
		mux_anomaly(m, LP_EPROTO, what);
		return m->fatal;
	}
	o = malloc(sizeof(*o));
	buf = malloc(len);
	if (!o || !buf) {
		free(o);
		free(buf);
		return LP_ENOMEM;
	}
	lp_wr_init_fixed(&w, buf, len);
	lp_wr_be32(&w, proto);
	lp_wr_be32(&w, (uint32_t)len);
	if (hs == MUX_V2_HDR) {
		lp_wr_be32(&w, MUX_V2_MAGIC);
		lp_wr_be16(&w, m->tx_seq++);
		lp_wr_be16(&w, m->rx_seq);
	}
	lp_wr_bytes(&w, a, alen);
	lp_wr_bytes(&w, b, blen);
	o->next = NULL;
	o->buf = buf;
	o->len = len;
	if (m->out_tail)
		m->out_tail->next = o;
	else
		m->out_head = o;
	m->out_tail = o;
	m->out_count++;
	m->out_bytes += len;
	m->st.packets_out++;
	m->st.bytes_out += len;
	return 0;
}

static int mux_emit_tcp(struct mux *m, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
			uint8_t flags, const uint8_t *data, size_t len)
{
	uint8_t th[MUX_TCP_HDR];
	struct lp_wr w;

	lp_wr_init_fixed(&w, th, sizeof(th));
	lp_wr_be16(&w, sport);
	lp_wr_be16(&w, dport);
	lp_wr_be32(&w, seq);
	lp_wr_be32(&w, ack);
	lp_wr_u8(&w, 0x50);
	lp_wr_u8(&w, flags);
	lp_wr_be16(&w, MUX_DEFAULT_WINDOW);
	lp_wr_be16(&w, 0);
	lp_wr_be16(&w, 0);
	if (flags & MUX_TH_RST)
		m->st.rst_out++;
	if (flags & MUX_TH_SYN) {
		if (flags & MUX_TH_ACK)
			m->st.synack++;
		else
			m->st.syn++;
	}
	return mux_emit(m, MUX_PROTO_TCP, false, th, sizeof(th), data, len);
}

static size_t mux_max_payload(const struct mux *m)
{
	return m->mtu - mux_hdr_size(m->version) - MUX_TCP_HDR;
}

/* Release queued bytes as the peer's window allows. */
static int mux_pump(struct mux *m, struct mux_conn *c)
{
	while (c->state == MUX_CONN_OPEN && c->qlen) {
		uint32_t outstanding = c->snd_nxt - c->snd_una;
		size_t n, avail;
		int r;

		/* the peer may shrink its window below what is in flight (usbmuxd 4c3d762) */
		avail = c->peer_win > outstanding ? c->peer_win - outstanding : 0;
		n = c->qlen;
		if (n > avail)
			n = avail;
		if (n > mux_max_payload(m))
			n = mux_max_payload(m);
		if (!n)
			break;
		r = mux_emit_tcp(m, c->lport, c->rport, c->snd_nxt, c->rcv_nxt, MUX_TH_ACK,
				 c->q + c->qhead, n);
		if (r)
			return r;
		c->ack_pending = false;
		c->snd_nxt += (uint32_t)n;
		c->qhead += n;
		c->qlen -= n;
		if (!c->qlen)
			c->qhead = 0;
	}
	return 0;
}

static void mux_rst_anon(struct mux *m, const struct mux_packet *p)
{
	uint32_t ack = p->seq + (uint32_t)p->payload_len + ((p->flags & MUX_TH_SYN) ? 1 : 0);

	mux_emit_tcp(m, p->dport, p->sport, p->ack, ack, MUX_TH_RST, NULL, 0);
}

/* Tear a connection down from our side because of what the peer sent. */
static void mux_conn_abort(struct mux *m, struct mux_conn *c, int reason)
{
	uint32_t id = c->id;

	mux_emit_tcp(m, c->lport, c->rport, c->snd_nxt, c->rcv_nxt, MUX_TH_RST, NULL, 0);
	mux_conn_release(c);
	if (m->cbs->on_close)
		m->cbs->on_close(m->ud, id, reason);
}

/* ---------------------------------------------------------------------------
 * Lifecycle
 */

struct mux *mux_new(enum mux_role role, const struct mux_cbs *cbs, void *ud,
		    const struct lp_log *log)
{
	struct mux *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->role = role;
	m->cbs = cbs ? cbs : &mux_no_cbs;
	m->ud = ud;
	m->log = log;
	m->dev_major = 2;
	m->mtu = role == MUX_ROLE_HOST ? MUX_HOST_MTU : MUX_DEVICE_MTU;
	m->next_id = 1;
	m->next_sport = MUX_FIRST_SPORT;
	m->rx_seq = 0xFFFF;
	return m;
}

void mux_free(struct mux *m)
{
	struct mux_out *o, *n;

	if (!m)
		return;
	for (size_t i = 0; i < MUX_MAX_CONNS; i++)
		free(m->conns[i].q);
	for (o = m->out_head; o; o = n) {
		n = o->next;
		free(o->buf);
		free(o);
	}
	mux_rx_reset(&m->rx);
	free(m);
}

int mux_start(struct mux *m, uint32_t want_major)
{
	uint8_t body[MUX_VERSION_BODY];
	struct lp_wr w;
	int r;

	if (m->role != MUX_ROLE_HOST || m->state != MUX_ST_IDLE || want_major < 1 || want_major > 2)
		return LP_EINVAL;
	lp_wr_init_fixed(&w, body, sizeof(body));
	lp_wr_be32(&w, want_major);
	lp_wr_be32(&w, 0);
	lp_wr_be32(&w, 0);
	r = mux_emit(m, MUX_PROTO_VERSION, true, body, sizeof(body), NULL, 0);
	if (r)
		return r;
	m->state = MUX_ST_VERSION_SENT;
	return 0;
}

void mux_set_device_version(struct mux *m, uint32_t major)
{
	if (major == 1 || major == 2)
		m->dev_major = major;
}

int mux_set_mtu(struct mux *m, size_t mtu)
{
	size_t max = m->role == MUX_ROLE_HOST ? MUX_HOST_MTU : MUX_MAX_PACKET;

	if (mtu < MUX_V2_HDR + MUX_TCP_HDR + 1 || mtu > max)
		return LP_EINVAL;
	m->mtu = mtu;
	return 0;
}

uint32_t mux_version(const struct mux *m)
{
	return m->version;
}

bool mux_active(const struct mux *m)
{
	return m->state == MUX_ST_ACTIVE;
}

/* ---------------------------------------------------------------------------
 * Input
 */

static void mux_in_version(struct mux *m, const struct mux_packet *p)
{
	struct lp_rd r;
	uint32_t major, minor;

	lp_rd_init(&r, p->payload, p->payload_len);
	major = lp_rd_be32(&r);
	minor = lp_rd_be32(&r);
	if (!lp_rd_ok(&r)) {
		mux_anomaly(m, LP_EBADMSG, "VERSION body shorter than major+minor");
		return;
	}
	if (m->role == MUX_ROLE_HOST) {
		if (m->state != MUX_ST_VERSION_SENT) {
			mux_anomaly(m, LP_EPROTO, "unexpected VERSION reply");
			return;
		}
		if (major != 1 && major != 2) {
			mux_anomaly(m, LP_EPROTO,
				    "device answered VERSION with a major other than 1 or 2");
			return;
		}
		m->version = major;
		if (major == 2) {
			uint8_t setup = MUX_SETUP_BYTE;

			m->tx_seq = 0;
			m->rx_seq = 0xFFFF;
			m->peer_next = 0;
			m->peer_seen = false;
			if (mux_emit(m, MUX_PROTO_SETUP, false, &setup, 1, NULL, 0)) {
				m->version = 0;
				mux_anomaly(m, LP_ENOMEM, "could not queue SETUP");
				return;
			}
		}
		m->state = MUX_ST_ACTIVE;
		lp_logf(m->log, LP_LOG_DEBUG, "mux host: version %u.%u negotiated", major, minor);
		if (m->cbs->on_version)
			m->cbs->on_version(m->ud, major, minor);
		return;
	}

	/* device */
	uint8_t body[MUX_VERSION_BODY];
	struct lp_wr w;
	uint32_t answer = major == 1 ? 1 : m->dev_major;

	if (m->state != MUX_ST_IDLE)
		mux_anomaly(m, LP_EPROTO, "VERSION again: renegotiating");
	/* a new VERSION starts the link over: no connection survives it */
	for (size_t i = 0; i < MUX_MAX_CONNS; i++) {
		if (m->conns[i].state != MUX_CONN_FREE) {
			uint32_t id = m->conns[i].id;

			mux_conn_release(&m->conns[i]);
			if (m->cbs->on_close)
				m->cbs->on_close(m->ud, id, LP_ECONNRESET);
		}
	}
	lp_wr_init_fixed(&w, body, sizeof(body));
	lp_wr_be32(&w, answer);
	lp_wr_be32(&w, 0);
	lp_wr_be32(&w, 0);
	if (mux_emit(m, MUX_PROTO_VERSION, true, body, sizeof(body), NULL, 0)) {
		mux_anomaly(m, LP_ENOMEM, "could not queue VERSION reply");
		return;
	}
	m->version = answer;
	m->state = answer == 2 ? MUX_ST_WAIT_SETUP : MUX_ST_ACTIVE;
	m->tx_seq = 0;
	m->rx_seq = 0xFFFF;
	m->peer_seen = false;
	if (m->cbs->on_version)
		m->cbs->on_version(m->ud, major, minor);
}

static void mux_in_setup(struct mux *m, const struct mux_packet *p)
{
	if (m->role != MUX_ROLE_DEVICE) {
		mux_anomaly(m, LP_EPROTO, "SETUP sent to the host");
		return;
	}
	if (m->state != MUX_ST_WAIT_SETUP) {
		mux_anomaly(m, LP_EPROTO,
			    m->version == 1 ? "SETUP in version 1" : "unexpected SETUP");
		return;
	}
	if (p->payload_len != 1 || p->payload[0] != MUX_SETUP_BYTE)
		mux_anomaly(m, LP_EBADMSG, "SETUP payload is not the single byte 0x07");
	m->state = MUX_ST_ACTIVE;
}

static void mux_in_control(struct mux *m, const struct mux_packet *p)
{
	if (m->role != MUX_ROLE_HOST) {
		mux_anomaly(m, LP_EPROTO, "CONTROL sent to the device");
		return;
	}
	if (!p->payload_len) {
		mux_anomaly(m, LP_EBADMSG, "CONTROL without a type byte");
		return;
	}
	lp_logf(m->log, LP_LOG_DEBUG, "mux host: CONTROL type %u, %zu bytes of text", p->payload[0],
		p->payload_len - 1);
	if (m->cbs->on_control)
		m->cbs->on_control(m->ud, p->payload[0], p->payload + 1, p->payload_len - 1);
}

static bool mux_listening(const struct mux *m, uint16_t port)
{
	for (size_t i = 0; i < m->nlisten; i++)
		if (m->listen[i] == port)
			return true;
	return false;
}

/* Device: SYN for no existing connection. */
static void mux_in_syn(struct mux *m, const struct mux_packet *p)
{
	struct mux_conn *c;
	uint32_t id;

	if (!mux_listening(m, p->dport) || !(c = mux_conn_alloc(m))) {
		if (mux_listening(m, p->dport))
			lp_logf(m->log, LP_LOG_WARN,
				"mux device: connection table full, refusing port %u", p->dport);
		m->st.syn++;
		mux_rst_anon(m, p);
		return;
	}
	m->st.syn++;
	c->state = MUX_CONN_OPEN;
	c->lport = p->dport;
	c->rport = p->sport;
	c->rcv_nxt = p->seq + 1;
	/* ISN 0: usbmuxd assumes it without reading our seq (2.8) */
	c->snd_una = 1;
	c->snd_nxt = 1;
	c->peer_win = (uint32_t)p->window << 8;
	id = c->id;
	if (mux_emit_tcp(m, c->lport, c->rport, 0, c->rcv_nxt, MUX_TH_SYN | MUX_TH_ACK, NULL, 0)) {
		mux_conn_release(c);
		mux_anomaly(m, LP_ENOMEM, "could not queue SYN|ACK");
		return;
	}
	if (m->cbs->on_accept)
		m->cbs->on_accept(m->ud, id, p->dport);
}

static void mux_in_tcp(struct mux *m, const struct mux_packet *p)
{
	struct mux_conn *c;
	uint32_t id;

	if (m->state != MUX_ST_ACTIVE) {
		mux_anomaly(m, LP_EPROTO, "TCP before the link is active");
		return;
	}
	c = mux_conn_by_ports(m, p->dport, p->sport);
	if (!c) {
		if (p->flags & MUX_TH_RST) {
			m->st.rst_in++;
			return;
		}
		if (m->role == MUX_ROLE_DEVICE && p->flags == MUX_TH_SYN) {
			mux_in_syn(m, p);
			return;
		}
		if (m->role == MUX_ROLE_HOST && (p->flags & MUX_TH_SYN))
			mux_anomaly(m, LP_EPROTO, "device tried to open a connection");
		lp_logf(m->log, LP_LOG_DEBUG,
			"mux: packet for closed port %u from %u, answering RST", p->dport,
			p->sport);
		mux_rst_anon(m, p);
		return;
	}
	id = c->id;
	if (p->flags & MUX_TH_RST) {
		bool connecting = c->state == MUX_CONN_SYN_SENT;
		uint16_t port = c->rport;

		m->st.rst_in++;
		mux_conn_release(c);
		if (connecting) {
			if (m->cbs->on_connect)
				m->cbs->on_connect(m->ud, id, port, LP_ECONNREFUSED);
		} else if (m->cbs->on_close) {
			m->cbs->on_close(m->ud, id, 0);
		}
		return;
	}
	if (c->state == MUX_CONN_SYN_SENT) {
		uint16_t port = c->rport;

		if (p->flags != (MUX_TH_SYN | MUX_TH_ACK)) {
			/* usbmuxd: any other answer to SYN is a refusal, answered with RST */
			mux_anomaly(m, LP_EPROTO, "answer to SYN is neither SYN|ACK nor RST");
			mux_emit_tcp(m, c->lport, c->rport, c->snd_nxt, p->seq, MUX_TH_RST, NULL,
				     0);
			mux_conn_release(c);
			if (m->cbs->on_connect)
				m->cbs->on_connect(m->ud, id, port, LP_ECONNREFUSED);
			return;
		}
		m->st.synack++;
		c->state = MUX_CONN_OPEN;
		c->snd_nxt = c->snd_una = 1;
		c->rcv_nxt = p->seq + 1;
		c->peer_win = (uint32_t)p->window << 8;
		mux_emit_tcp(m, c->lport, c->rport, c->snd_nxt, c->rcv_nxt, MUX_TH_ACK, NULL, 0);
		if (m->cbs->on_connect)
			m->cbs->on_connect(m->ud, id, port, 0);
		c = mux_conn_by_id(m, id);
		if (c)
			mux_pump(m, c);
		return;
	}
	if (p->flags != MUX_TH_ACK) {
		char what[64];

		snprintf(what, sizeof(what), "flags 0x%02x on an open connection", p->flags);
		mux_anomaly(m, LP_EPROTO, what);
		mux_conn_abort(m, c, LP_EPROTO);
		return;
	}
	c->peer_win = (uint32_t)p->window << 8;
	if (mux_seq_after(p->ack, c->snd_nxt))
		mux_anomaly(m, LP_EPROTO, "peer acknowledged bytes never sent");
	else if (mux_seq_after(p->ack, c->snd_una))
		c->snd_una = p->ack;
	if (p->payload_len) {
		if (p->seq != c->rcv_nxt) {
			/* USB does not lose or reorder: a gap means a broken peer, and
			 * there is no retransmission to wait for */
			mux_anomaly(m, LP_EPROTO, "data out of sequence");
			mux_conn_abort(m, c, LP_EPROTO);
			return;
		}
		c->rcv_nxt += (uint32_t)p->payload_len;
		c->ack_pending = true;
		if (m->cbs->on_data)
			m->cbs->on_data(m->ud, id, p->payload, p->payload_len);
		c = mux_conn_by_id(m, id);
		if (!c)
			return;
	}
	mux_pump(m, c);
	if (c->ack_pending) {
		c->ack_pending = false;
		mux_emit_tcp(m, c->lport, c->rport, c->snd_nxt, c->rcv_nxt, MUX_TH_ACK, NULL, 0);
	}
}

static void mux_in_packet(struct mux *m, const uint8_t *buf, size_t len)
{
	struct mux_packet p;
	uint32_t hv = m->version ? m->version : 1;
	int r;

	m->st.packets_in++;
	m->st.bytes_in += len;
	r = mux_decode(buf, len, hv, &p);
	if (r) {
		mux_anomaly(m, r, r == LP_ETRUNC ? "packet truncated" : "malformed packet");
		return;
	}
	if (p.v2) {
		if (p.magic != MUX_V2_MAGIC)
			mux_anomaly(m, LP_EBADMSG, "v2 header without magic 0xFEEDFACE");
		if (m->peer_seen && p.tx_seq != m->peer_next)
			mux_anomaly(m, LP_EPROTO, "gap in the peer's tx_seq");
		if (m->role == MUX_ROLE_DEVICE && !m->peer_seen && p.protocol == MUX_PROTO_SETUP &&
		    p.tx_seq != 0)
			mux_anomaly(m, LP_EPROTO, "SETUP with tx_seq other than 0");
		m->peer_seen = true;
		m->peer_next = (uint16_t)(p.tx_seq + 1);
		m->rx_seq = p.tx_seq;
	}
	switch (p.protocol) {
	case MUX_PROTO_VERSION:
		mux_in_version(m, &p);
		break;
	case MUX_PROTO_SETUP:
		mux_in_setup(m, &p);
		break;
	case MUX_PROTO_CONTROL:
		mux_in_control(m, &p);
		break;
	case MUX_PROTO_TCP:
		mux_in_tcp(m, &p);
		break;
	}
}

/* ---------------------------------------------------------------------------
 * Reassembly (one direction; shared with the capture reader)
 */

static uint32_t mux_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Length field check, before anything is allocated for the packet. */
static int mux_rx_length(const struct mux_rx *rx, const uint8_t hdr[8], size_t *plen)
{
	uint32_t length = mux_be32(hdr + 4);
	size_t hs = mux_be32(hdr) == MUX_PROTO_VERSION ? MUX_V1_HDR : mux_hdr_size(rx->hdr_version);

	if (length > MUX_MAX_PACKET)
		return LP_ETOOBIG;
	if (length < hs)
		return LP_EBADMSG;
	*plen = length;
	return 0;
}

static void mux_rx_bad(struct mux_rx *rx, const struct mux_rx_cbs *cb, void *ud, int err,
		       const uint8_t *hdr, size_t dropped, bool transfer_end)
{
	rx->skip = !transfer_end;
	if (cb->on_problem)
		cb->on_problem(ud, err, mux_be32(hdr + 4), dropped);
}

void mux_rx_reset(struct mux_rx *rx)
{
	free(rx->buf);
	rx->buf = NULL;
	rx->have = rx->len = rx->got = 0;
	rx->skip = rx->cut = false;
}

size_t mux_rx_pending(const struct mux_rx *rx)
{
	return rx->buf ? rx->got : rx->have;
}

size_t mux_rx_announced(const struct mux_rx *rx)
{
	return rx->buf ? rx->len : 0;
}

/* Do these bytes, the start of a new transfer, open a packet of their own?
 * A known protocol, a length in range and, with 16-byte headers, the magic:
 * payload that continues a packet (plist text, TLS records, TCP headers of
 * the packet's own body) does not look like that. Too few bytes to tell:
 * no (read as the continuation). */
static bool mux_rx_starts_packet(const struct mux_rx *rx, const uint8_t *buf, size_t len)
{
	uint32_t proto, length;
	size_t hs;

	if (len < MUX_V1_HDR)
		return false;
	proto = mux_be32(buf);
	length = mux_be32(buf + 4);
	if (proto != MUX_PROTO_VERSION && proto != MUX_PROTO_CONTROL && proto != MUX_PROTO_SETUP &&
	    proto != MUX_PROTO_TCP)
		return false;
	hs = proto == MUX_PROTO_VERSION ? MUX_V1_HDR : mux_hdr_size(rx->hdr_version);
	if (length < hs || length > MUX_MAX_PACKET)
		return false;
	if (hs == MUX_V2_HDR && (len < 12 || mux_be32(buf + 8) != MUX_V2_MAGIC))
		return false;
	return true;
}

int mux_rx_feed(struct mux_rx *rx, const uint8_t *buf, size_t len, bool transfer_end,
		const struct mux_rx_cbs *cb, void *ud)
{
	size_t off = 0;
	unsigned done = 0;
	bool reported = false;

	if (rx->skip) {
		if (transfer_end)
			rx->skip = false;
		return 0;
	}
	if (rx->cut) {
		/* the last transfer ended inside a packet: this one continues it,
		 * unless it plainly starts a packet of its own (then the held one
		 * was cut short by its sender) */
		rx->cut = false;
		if ((rx->buf || rx->have) && mux_rx_starts_packet(rx, buf, len)) {
			size_t lost = mux_rx_pending(rx);
			uint32_t claim = (uint32_t)mux_rx_announced(rx);

			mux_rx_reset(rx);
			if (cb->on_problem)
				cb->on_problem(ud, LP_ETRUNC, claim, lost);
		}
	}
	while (off < len) {
		size_t plen, n;

		if (done && !reported && !rx->buf && !rx->have) {
			if (cb->on_problem)
				cb->on_problem(ud, LP_EPROTO, 0, 0);
			reported = true;
		}
		if (!rx->buf && !rx->have && len - off >= 8) {
			int r = mux_rx_length(rx, buf + off, &plen);
			if (r) {
				mux_rx_bad(rx, cb, ud, r, buf + off, len - off, transfer_end);
				return 0;
			}
			if (plen <= len - off) {
				cb->on_packet(ud, buf + off, plen, false);
				off += plen;
				done++;
				continue;
			}
			rx->buf = malloc(plen);
			if (!rx->buf) {
				rx->skip = !transfer_end;
				return LP_ENOMEM;
			}
			rx->len = plen;
			rx->got = len - off;
			memcpy(rx->buf, buf + off, rx->got);
			off = len;
			break;
		}
		if (!rx->buf) {
			n = 8 - rx->have;
			if (n > len - off)
				n = len - off;
			memcpy(rx->hdr + rx->have, buf + off, n);
			rx->have += n;
			off += n;
			if (rx->have < 8)
				break;
			rx->have = 0;
			int r = mux_rx_length(rx, rx->hdr, &plen);
			if (r) {
				mux_rx_bad(rx, cb, ud, r, rx->hdr, 8 + len - off, transfer_end);
				return 0;
			}
			rx->buf = malloc(plen);
			if (!rx->buf) {
				rx->skip = !transfer_end;
				return LP_ENOMEM;
			}
			memcpy(rx->buf, rx->hdr, 8);
			rx->len = plen;
			rx->got = 8;
		} else {
			n = rx->len - rx->got;
			if (n > len - off)
				n = len - off;
			memcpy(rx->buf + rx->got, buf + off, n);
			rx->got += n;
			off += n;
		}
		if (rx->got == rx->len) {
			uint8_t *pb = rx->buf;

			rx->buf = NULL;
			cb->on_packet(ud, pb, rx->len, true);
			free(pb);
			done++;
		}
	}
	if (transfer_end && (rx->buf || rx->have))
		rx->cut = true; /* decided by the next transfer's first bytes */
	return 0;
}

static void mux_rx_packet_cb(void *ud, const uint8_t *pkt, size_t len, bool spanned)
{
	struct mux *m = ud;

	if (m->fatal) /* the output queue overflowed: the codec is dead */
		return;
	if (spanned)
		m->st.reassembled++;
	mux_in_packet(m, pkt, len);
}

static void mux_rx_problem_cb(void *ud, int err, uint32_t length, size_t dropped)
{
	struct mux *m = ud;
	char what[160];

	switch (err) {
	case LP_ETOOBIG:
		snprintf(
			what, sizeof(what),
			"length field %lu over the %u-byte cap (MUX_MAX_PACKET); %zu bytes dropped",
			(unsigned long)length, (unsigned)MUX_MAX_PACKET, dropped);
		mux_anomaly(m, err, what);
		break;
	case LP_EBADMSG:
		snprintf(what, sizeof(what),
			 "length field %lu smaller than the header; %zu bytes dropped",
			 (unsigned long)length, dropped);
		mux_anomaly(m, err, what);
		break;
	case LP_ETRUNC:
		snprintf(what, sizeof(what),
			 "a packet announced as %lu bytes was cut after %zu by a new packet",
			 (unsigned long)length, dropped);
		mux_anomaly(m, err, what);
		break;
	default:
		mux_anomaly(m, err, "several packets in one transfer (missing ZLP?)");
		break;
	}
}

static const struct mux_rx_cbs mux_rx_cbs = {.on_packet = mux_rx_packet_cb,
					     .on_problem = mux_rx_problem_cb};

size_t mux_partial(const struct mux *m, size_t *announced)
{
	if (announced)
		*announced = mux_rx_announced(&m->rx);
	return mux_rx_pending(&m->rx);
}

int mux_feed(struct mux *m, const uint8_t *buf, size_t len, bool transfer_end)
{
	int r;

	if (m->fatal)
		return m->fatal;
	if (!buf && !len && transfer_end) {
		/* the transfer was lost (an error status): a packet it cut
		 * cannot be completed by later bytes */
		mux_rx_reset(&m->rx);
		return 0;
	}
	m->rx.hdr_version = m->version;
	r = mux_rx_feed(&m->rx, buf, len, transfer_end, &mux_rx_cbs, m);
	return r ? r : m->fatal;
}

/* ---------------------------------------------------------------------------
 * Output and connections
 */

int mux_out_take(struct mux *m, uint8_t **pkt, size_t *len)
{
	struct mux_out *o = m->out_head;

	if (!o)
		return LP_EAGAIN;
	m->out_head = o->next;
	if (!m->out_head)
		m->out_tail = NULL;
	m->out_count--;
	m->out_bytes -= o->len;
	*pkt = o->buf;
	*len = o->len;
	free(o);
	return 0;
}

bool mux_out_pending(const struct mux *m)
{
	return m->out_head != NULL;
}

size_t mux_out_queued(const struct mux *m, size_t *bytes)
{
	if (bytes)
		*bytes = m->out_bytes;
	return m->out_count;
}

int mux_error(const struct mux *m)
{
	return m->fatal;
}

int mux_connect(struct mux *m, uint16_t port, uint32_t *conn)
{
	struct mux_conn *c;
	uint16_t sport = 0;
	int r;

	if (m->fatal)
		return m->fatal;
	if (m->role != MUX_ROLE_HOST || m->state != MUX_ST_ACTIVE)
		return LP_EINVAL;
	/* local ports from 1 upward, skipping ones in use (usbmuxd) */
	for (unsigned tries = 0; tries < 65535; tries++) {
		uint16_t cand = m->next_sport;

		m->next_sport = cand == 65535 ? MUX_FIRST_SPORT : (uint16_t)(cand + 1);
		if (!mux_conn_by_ports(m, cand, port)) {
			sport = cand;
			break;
		}
	}
	if (!sport)
		return LP_EBUSY;
	c = mux_conn_alloc(m);
	if (!c)
		return LP_EBUSY;
	c->state = MUX_CONN_SYN_SENT;
	c->lport = sport;
	c->rport = port;
	r = mux_emit_tcp(m, sport, port, 0, 0, MUX_TH_SYN, NULL, 0);
	if (r) {
		mux_conn_release(c);
		return r;
	}
	*conn = c->id;
	return 0;
}

int mux_listen(struct mux *m, uint16_t port)
{
	if (m->role != MUX_ROLE_DEVICE)
		return LP_EINVAL;
	if (mux_listening(m, port))
		return 0;
	if (m->nlisten == MUX_MAX_LISTEN)
		return LP_ETOOBIG;
	m->listen[m->nlisten++] = port;
	return 0;
}

void mux_unlisten(struct mux *m, uint16_t port)
{
	for (size_t i = 0; i < m->nlisten; i++) {
		if (m->listen[i] == port) {
			m->listen[i] = m->listen[--m->nlisten];
			return;
		}
	}
}

int mux_send(struct mux *m, uint32_t conn, const uint8_t *data, size_t len)
{
	struct mux_conn *c = mux_conn_by_id(m, conn);

	if (m->fatal)
		return m->fatal;
	if (!c)
		return LP_ENOENT;
	if (!len)
		return 0;
	if (len > MUX_SENDQ_MAX - c->qlen)
		return LP_ETOOBIG;
	if (c->qhead + c->qlen + len > c->qcap) {
		if (c->qhead) {
			memmove(c->q, c->q + c->qhead, c->qlen);
			c->qhead = 0;
		}
		if (c->qlen + len > c->qcap) {
			size_t ncap = c->qcap ? c->qcap : 4096;
			uint8_t *nq;

			while (ncap < c->qlen + len)
				ncap *= 2;
			if (ncap > MUX_SENDQ_MAX)
				ncap = MUX_SENDQ_MAX;
			nq = realloc(c->q, ncap);
			if (!nq)
				return LP_ENOMEM;
			c->q = nq;
			c->qcap = ncap;
		}
	}
	memcpy(c->q + c->qhead + c->qlen, data, len);
	c->qlen += len;
	return mux_pump(m, c);
}

size_t mux_unsent(const struct mux *m, uint32_t conn)
{
	const struct mux_conn *c = mux_conn_by_id(m, conn);

	return c ? c->qlen : 0;
}

int mux_close(struct mux *m, uint32_t conn)
{
	struct mux_conn *c = mux_conn_by_id(m, conn);
	int r;

	if (!c)
		return LP_ENOENT;
	r = mux_emit_tcp(m, c->lport, c->rport, c->snd_nxt, c->rcv_nxt, MUX_TH_RST, NULL, 0);
	mux_conn_release(c);
	return r;
}

uint16_t mux_conn_port(const struct mux *m, uint32_t conn)
{
	const struct mux_conn *c = mux_conn_by_id(m, conn);

	if (!c)
		return 0;
	return m->role == MUX_ROLE_HOST ? c->rport : c->lport;
}

int mux_conn_ports(const struct mux *m, uint32_t conn, uint16_t *host_port, uint16_t *dev_port)
{
	const struct mux_conn *c = mux_conn_by_id(m, conn);

	if (!c)
		return LP_ENOENT;
	*host_port = m->role == MUX_ROLE_HOST ? c->lport : c->rport;
	*dev_port = m->role == MUX_ROLE_HOST ? c->rport : c->lport;
	return 0;
}

int mux_send_control(struct mux *m, uint8_t type, const uint8_t *text, size_t len)
{
	if (m->role != MUX_ROLE_DEVICE || m->state != MUX_ST_ACTIVE)
		return LP_EINVAL;
	if (len > m->mtu - mux_hdr_size(m->version) - 1)
		return LP_ETOOBIG;
	return mux_emit(m, MUX_PROTO_CONTROL, false, &type, 1, text, len);
}

void mux_get_stats(const struct mux *m, struct mux_stats *st)
{
	*st = m->st;
}
