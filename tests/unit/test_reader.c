/* test_reader.c - the capture reader driven through cap_reader_transfer(),
 * the entry a non-usbmon source (a bus-level decoder) uses: enumeration,
 * descriptors, usbmux VERSION, a lockdown connection whose reply spans two
 * IN transfers, and the one bad-length policy (anomaly, then resync at the
 * end of the sender's transfer) seen as events. Plus the golden captures
 * read through cap_reader_run(): events come in capture order and end once.
 * Reference: src/capture/reader.h, proto/mux.h (struct mux_rx). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/lockdown_frame.h"
#include "proto/mux.h"
#include "src/base/lp_error.h"
#include "src/capture/reader.h"
#include "usb/cap_usbmon.h"

#define EP_OUT 0x04
#define EP_IN 0x85

struct evlog {
	size_t n[CAP_EV_END + 1];
	char anomalies[8][200];
	size_t nanom;
	char lkd[8][40]; /* "0:QueryType" */
	size_t nlkd;
	enum cap_conn_state conn_states[16];
	size_t nconn;
	uint32_t majors[4];
	size_t nmajor;
	uint64_t last_pkt;
	bool ordered;
	bool mid;
	char pending[32];
	struct cap_usbdev *usb;
};

static bool on_ev(void *ud, const struct cap_event *ev)
{
	struct evlog *l = ud;

	l->n[ev->type]++;
	if (ev->pkt < l->last_pkt)
		l->ordered = false;
	l->last_pkt = ev->pkt;
	switch (ev->type) {
	case CAP_EV_ANOMALY:
		if (l->nanom < 8)
			snprintf(l->anomalies[l->nanom], sizeof(l->anomalies[0]), "%s", ev->u.text);
		l->nanom++;
		break;
	case CAP_EV_USB_NEW:
		l->usb = ev->usb;
		break;
	case CAP_EV_END:
		l->mid = ev->u.end.mid_exchange;
		snprintf(l->pending, sizeof(l->pending), "%s",
			 ev->u.end.pending_request ? ev->u.end.pending_request : "");
		break;
	case CAP_EV_LOCKDOWN:
		if (l->nlkd < 8)
			snprintf(l->lkd[l->nlkd], sizeof(l->lkd[0]), "%d:%s", ev->dir,
				 lkd_dict_str(ev->u.msg, "Request")
					 ? lkd_dict_str(ev->u.msg, "Request")
					 : "?");
		l->nlkd++;
		break;
	case CAP_EV_CONN:
		if (l->nconn < 16)
			l->conn_states[l->nconn] = ev->conn->state;
		l->nconn++;
		break;
	case CAP_EV_MUX:
		if (ev->u.mux.protocol == MUX_PROTO_VERSION && ev->dir == 1 && l->nmajor < 4)
			l->majors[l->nmajor++] = ev->u.mux.major;
		break;
	default:
		break;
	}
	return true;
}

struct drv {
	struct cap_reader *r;
	uint64_t t, pkt, id;
};

static void xfer(struct drv *d, char type, uint8_t xt, uint8_t ep, int32_t status, uint32_t len,
		 const uint8_t *setup, const uint8_t *data, size_t dlen, uint64_t id)
{
	struct cap_transfer x = {.type = type,
				 .xfer = xt,
				 .ep = ep,
				 .status = status,
				 .len = len,
				 .len_known = true,
				 .data = data,
				 .data_len = dlen};

	d->t += 1000;
	cap_reader_transfer(d->r, d->t, ++d->pkt, id, 1, 7, setup, &x);
}

/* control IN: submit with setup, completion with data */
static void control_in(struct drv *d, uint8_t req, uint16_t wvalue, const uint8_t *data, size_t len)
{
	uint8_t setup[8] = {0x80, req, (uint8_t)wvalue, (uint8_t)(wvalue >> 8),
			    0,	  0,   (uint8_t)len,	(uint8_t)(len >> 8)};
	uint64_t id = ++d->id;

	xfer(d, 'S', 2, 0x80, CAP_URB_EINPROGRESS, (uint32_t)len, setup, NULL, 0, id);
	xfer(d, 'C', 2, 0x80, 0, (uint32_t)len, NULL, data, len, id);
}

static void bulk_out(struct drv *d, const uint8_t *p, size_t n)
{
	uint64_t id = ++d->id;

	xfer(d, 'S', 3, EP_OUT, CAP_URB_EINPROGRESS, (uint32_t)n, NULL, p, n, id);
	xfer(d, 'C', 3, EP_OUT, 0, (uint32_t)n, NULL, NULL, 0, id);
}

/* an IN transfer of `req` bytes requested, `n` delivered */
static void bulk_in(struct drv *d, const uint8_t *p, size_t n, uint32_t req)
{
	uint64_t id = ++d->id;

	xfer(d, 'S', 3, EP_IN, CAP_URB_EINPROGRESS, req, NULL, NULL, 0, id);
	xfer(d, 'C', 3, EP_IN, 0, (uint32_t)n, NULL, p, n, id);
}

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
	p[3] = (uint8_t)v;
}

static void be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v;
}

/* v2 TCP packet: 16-byte header + 20-byte tcp header + payload */
static size_t tcp_pkt(uint8_t *out, uint16_t sport, uint16_t dport, uint8_t flags,
		      const uint8_t *pay, size_t plen)
{
	size_t n = 16 + 20 + plen;

	memset(out, 0, 36);
	be32(out, MUX_PROTO_TCP);
	be32(out + 4, (uint32_t)n);
	be32(out + 8, MUX_V2_MAGIC);
	be16(out + 16, sport);
	be16(out + 18, dport);
	out[28] = 0x50;
	out[29] = flags;
	be16(out + 30, 0x200);
	if (plen)
		memcpy(out + 36, pay, plen);
	return n;
}

static size_t lockdown_frame(uint8_t *out, const char *request, size_t pad)
{
	plist_t d = plist_new_dict();
	uint8_t *b = NULL;
	size_t n = 0;

	plist_dict_set_item(d, "Request", plist_new_string(request));
	if (pad) {
		char *s = malloc(pad + 1);
		memset(s, 'x', pad);
		s[pad] = '\0';
		plist_dict_set_item(d, "Pad", plist_new_string(s));
		free(s);
	}
	assert_int_equal(lkd_frame_encode(d, &b, &n), 0);
	memcpy(out, b, n);
	free(b);
	plist_free(d);
	return n;
}

static const uint8_t dev_desc[18] = {18,   1,	 0x00, 0x02, 0,	   0, 0, 64, 0xac,
				     0x05, 0xa8, 0x12, 0x01, 0x00, 1, 2, 3,  1};
static const uint8_t cfg_desc[32] = {
	9, 2, 32,     0, 1,    1,    0,	   0xc0, 250, /* configuration 1 */
	9, 4, 0,      0, 2,    0xff, 0xfe, 0x02, 0,   /* usbmux interface */
	7, 5, EP_OUT, 2, 0x00, 0x02, 0,		      /* bulk OUT 512 */
	7, 5, EP_IN,  2, 0x00, 0x02, 0,		      /* bulk IN 512 */
};

static void test_transfer_entry(void **state)
{
	struct evlog l = {.ordered = true};
	struct drv d = {0};
	uint8_t p[4096], f[2048], ver[20];
	size_t n, fl;

	(void)state;
	d.r = cap_reader_new(NULL, on_ev, &l);
	assert_non_null(d.r);
	cap_reader_begin(d.r, CAP_LINKTYPE_USB_LINUX_MMAPPED);

	control_in(&d, USBD_REQ_GET_DESCRIPTOR, USBD_DT_DEVICE << 8, dev_desc, sizeof(dev_desc));
	control_in(&d, USBD_REQ_GET_DESCRIPTOR, USBD_DT_CONFIG << 8, cfg_desc, sizeof(cfg_desc));
	assert_int_equal(l.n[CAP_EV_USB_NEW], 1);
	assert_int_equal(l.n[CAP_EV_CONTROL], 2);
	assert_true(l.usb->have_dd);
	assert_int_equal(l.usb->dd.idProduct, 0x12a8);
	assert_true(l.usb->eps_known);
	assert_int_equal(l.usb->ep_in, EP_IN);
	assert_int_equal(l.usb->ep_out, EP_OUT);

	/* VERSION both ways (always the 8-byte header) */
	memset(ver, 0, sizeof(ver));
	be32(ver + 4, 20);
	be32(ver + 8, 2);
	bulk_out(&d, ver, 20);
	bulk_in(&d, ver, 20, 512);
	assert_int_equal(l.nmajor, 1);
	assert_int_equal(l.majors[0], 2);
	assert_int_equal(l.usb->mux_version, 2);

	/* lockdown: SYN, SYN|ACK, a request, a reply spanning two IN transfers */
	n = tcp_pkt(p, 1, MUX_PORT_LOCKDOWN, MUX_TH_SYN, NULL, 0);
	bulk_out(&d, p, n);
	n = tcp_pkt(p, MUX_PORT_LOCKDOWN, 1, MUX_TH_SYN | MUX_TH_ACK, NULL, 0);
	bulk_in(&d, p, n, 512);
	fl = lockdown_frame(f, "QueryType", 0);
	n = tcp_pkt(p, 1, MUX_PORT_LOCKDOWN, MUX_TH_ACK, f, fl);
	bulk_out(&d, p, n);
	fl = lockdown_frame(f, "QueryType", 700);
	n = tcp_pkt(p, MUX_PORT_LOCKDOWN, 1, MUX_TH_ACK, f, fl);
	assert_true(n > 512);
	bulk_in(&d, p, 512, 512);	    /* full: the packet goes on */
	bulk_in(&d, p + 512, n - 512, 512); /* short: its end */
	assert_int_equal(l.nlkd, 2);
	assert_string_equal(l.lkd[0], "0:QueryType");
	assert_string_equal(l.lkd[1], "1:QueryType");
	assert_int_equal(l.nconn, 2);
	assert_int_equal(l.conn_states[0], CAP_CONN_SYN);
	assert_int_equal(l.conn_states[1], CAP_CONN_OPEN);
	assert_int_equal(l.nanom, 0);

	/* a lying length from the device: anomaly naming it; the continuation
	 * (a full transfer) is not decoded as packets; after the short end the
	 * next packet (an RST) decodes and closes the connection */
	n = tcp_pkt(p, MUX_PORT_LOCKDOWN, 1, MUX_TH_ACK, f, 200);
	be32(p + 4, 0x00ffffff);
	bulk_in(&d, p, 512, 512);
	assert_int_equal(l.nanom, 1);
	assert_non_null(strstr(l.anomalies[0], "device usbmux length field 16777215 out of range"));
	n = tcp_pkt(p, MUX_PORT_LOCKDOWN, 1, MUX_TH_RST, NULL, 0);
	memset(p + n, 0, 512 - n);
	bulk_in(&d, p, 512, 512); /* would be an RST, but it is the lying packet's tail */
	assert_int_equal(l.nconn, 2);
	bulk_in(&d, p, 10, 512); /* short: the lying transfer ends */
	assert_int_equal(l.nconn, 2);
	assert_int_equal(l.nanom, 1);
	bulk_in(&d, p, n, 512); /* resynchronised */
	assert_int_equal(l.nconn, 3);
	assert_int_equal(l.conn_states[2], CAP_CONN_RESET_DEV);

	/* a short lying length from the host: under the header size */
	n = tcp_pkt(p, 1, MUX_PORT_LOCKDOWN, MUX_TH_SYN, NULL, 0);
	be32(p + 4, 4);
	bulk_out(&d, p, n);
	assert_int_equal(l.nanom, 2);
	assert_non_null(strstr(l.anomalies[1], "host usbmux length field 4 out of range"));
	n = tcp_pkt(p, 2, MUX_PORT_LOCKDOWN, MUX_TH_SYN, NULL, 0);
	bulk_out(&d, p, n); /* a host transfer is whole: the next one decodes */
	assert_int_equal(l.nconn, 4);
	assert_int_equal(l.conn_states[3], CAP_CONN_SYN);

	/* the device leaves: disconnect, open connections end reset */
	xfer(&d, 'C', 3, EP_IN, CAP_URB_ENODEV, 0, NULL, NULL, 0, 999);
	assert_int_equal(l.n[CAP_EV_DISCONNECT], 1);
	cap_reader_finish(d.r, false);
	assert_int_equal(l.n[CAP_EV_END], 1);
	assert_int_equal(l.conn_states[l.nconn - 1], CAP_CONN_RESET_DEV);
	assert_true(l.ordered);
	cap_reader_free(d.r);
}

/* A capture that stops after a request the device has not answered yet says
 * so at its end (issue 9: "the capture ends during Pair"). */
static void test_ends_mid_exchange(void **state)
{
	struct evlog l = {.ordered = true};
	struct drv d = {0};
	uint8_t p[2048], f[1024], ver[20];
	size_t n, fl;

	(void)state;
	d.r = cap_reader_new(NULL, on_ev, &l);
	cap_reader_begin(d.r, CAP_LINKTYPE_USB_LINUX_MMAPPED);
	control_in(&d, USBD_REQ_GET_DESCRIPTOR, USBD_DT_DEVICE << 8, dev_desc, sizeof(dev_desc));
	control_in(&d, USBD_REQ_GET_DESCRIPTOR, USBD_DT_CONFIG << 8, cfg_desc, sizeof(cfg_desc));
	memset(ver, 0, sizeof(ver));
	be32(ver + 4, 20);
	be32(ver + 8, 2);
	bulk_out(&d, ver, 20);
	bulk_in(&d, ver, 20, 512);
	n = tcp_pkt(p, 1, MUX_PORT_LOCKDOWN, MUX_TH_SYN, NULL, 0);
	bulk_out(&d, p, n);
	n = tcp_pkt(p, MUX_PORT_LOCKDOWN, 1, MUX_TH_SYN | MUX_TH_ACK, NULL, 0);
	bulk_in(&d, p, n, 512);
	fl = lockdown_frame(f, "Pair", 0);
	n = tcp_pkt(p, 1, MUX_PORT_LOCKDOWN, MUX_TH_ACK, f, fl);
	bulk_out(&d, p, n);
	cap_reader_finish(d.r, false);
	assert_true(l.mid);
	assert_string_equal(l.pending, "Pair");
	cap_reader_free(d.r);
}

/* A capture that starts mid-session: no descriptors, no VERSION. The
 * endpoints are recognised from a run of whole usbmux packets, and the run's
 * own packets (the SYN that opened the connection) are decoded too. */
static void test_shape_mid_session(void **state)
{
	struct evlog l = {.ordered = true};
	struct drv d = {0};
	uint8_t p[2048], f[1024];
	uint16_t seq = 7;
	size_t n, fl;

	(void)state;
	d.r = cap_reader_new(NULL, on_ev, &l);
	cap_reader_begin(d.r, CAP_LINKTYPE_USB_LINUX_MMAPPED);
	n = tcp_pkt(p, 3, MUX_PORT_LOCKDOWN, MUX_TH_SYN, NULL, 0);
	be16(p + 12, seq++);
	bulk_out(&d, p, n);
	assert_int_equal(l.usb->ep_out, 0); /* one packet is not a run */
	n = tcp_pkt(p, MUX_PORT_LOCKDOWN, 3, MUX_TH_SYN | MUX_TH_ACK, NULL, 0);
	bulk_in(&d, p, n, 16384);
	n = tcp_pkt(p, 3, MUX_PORT_LOCKDOWN, MUX_TH_ACK, NULL, 0);
	be16(p + 12, seq++);
	bulk_out(&d, p, n);
	fl = lockdown_frame(f, "QueryType", 0);
	n = tcp_pkt(p, 3, MUX_PORT_LOCKDOWN, MUX_TH_ACK, f, fl);
	be16(p + 12, seq++);
	assert_int_equal(l.n[CAP_EV_MUX], 0);
	bulk_out(&d, p, n);
	assert_int_equal(l.n[CAP_EV_MUX], 0); /* three host packets, one device packet */
	n = tcp_pkt(p, MUX_PORT_LOCKDOWN, 3, MUX_TH_ACK, f, fl);
	bulk_in(&d, p, n, 16384);
	/* recognised: every packet of the run decoded, with its own number */
	assert_true(l.usb->mux_by_shape);
	assert_false(l.usb->eps_known);
	assert_int_equal(l.usb->ep_out, EP_OUT);
	assert_int_equal(l.usb->ep_in, EP_IN);
	assert_int_equal(l.usb->mux_version, 2);
	assert_int_equal(l.n[CAP_EV_MUX], 5);
	assert_int_equal(l.nconn, 2);
	assert_int_equal(l.conn_states[0], CAP_CONN_SYN);
	assert_int_equal(l.conn_states[1], CAP_CONN_OPEN);
	assert_int_equal(l.nlkd, 2);
	assert_string_equal(l.lkd[0], "0:QueryType");
	assert_string_equal(l.lkd[1], "1:QueryType");
	assert_int_equal(l.nanom, 0); /* a missing VERSION is where the capture starts */
	/* from here on decoded as it comes */
	n = tcp_pkt(p, 3, MUX_PORT_LOCKDOWN, MUX_TH_RST, NULL, 0);
	be16(p + 12, seq++);
	bulk_out(&d, p, n);
	assert_int_equal(l.nconn, 3);
	assert_int_equal(l.conn_states[2], CAP_CONN_RESET_HOST);
	cap_reader_finish(d.r, false);
	cap_reader_free(d.r);
}

/* Mid-session, and the device's packets are longer than the host's IN
 * transfers (512 bytes here): each arrives in pieces, and the pieces adding
 * up to its length count as one whole packet of the run. A piece that does
 * not fit ends the run. */
static void test_shape_split_in(void **state)
{
	struct evlog l = {.ordered = true};
	struct drv d = {0};
	uint8_t p[4096], f[2048];
	uint16_t seq = 40;
	size_t n, fl;

	(void)state;
	d.r = cap_reader_new(NULL, on_ev, &l);
	cap_reader_begin(d.r, CAP_LINKTYPE_USB_LINUX_MMAPPED);
	fl = lockdown_frame(f, "GetValue", 1000);
	/* a broken split first: the second piece overshoots the packet */
	n = tcp_pkt(p, MUX_PORT_LOCKDOWN, 9, MUX_TH_ACK, f, fl);
	bulk_in(&d, p, 512, 512);
	bulk_in(&d, p + 512, 512, 512);
	bulk_in(&d, p, 512, 512); /* 1536 > its length: not its rest */
	for (int i = 0; i < 3; i++) {
		uint8_t a[64];
		size_t an = tcp_pkt(a, 9, MUX_PORT_LOCKDOWN, MUX_TH_ACK, NULL, 0);
		be16(a + 12, seq++);
		bulk_out(&d, a, an);
	}
	assert_int_equal(l.usb->ep_in, 0);
	/* two device packets, each in three pieces */
	for (int k = 0; k < 2; k++) {
		n = tcp_pkt(p, MUX_PORT_LOCKDOWN, 9, MUX_TH_ACK, f, fl);
		assert_true(n > 1024 && n < 1536);
		bulk_in(&d, p, 512, 512);
		bulk_in(&d, p + 512, 512, 512);
		if (k == 0)
			assert_int_equal(l.usb->ep_in, 0);
		bulk_in(&d, p + 1024, n - 1024, 512); /* short: the packet's end */
	}
	assert_true(l.usb->mux_by_shape);
	assert_int_equal(l.usb->ep_in, EP_IN);
	assert_int_equal(l.usb->ep_out, EP_OUT);
	/* both replies decoded from the kept pieces: an open connection's data */
	assert_int_equal(l.nlkd, 2);
	assert_string_equal(l.lkd[0], "1:GetValue");
	assert_string_equal(l.lkd[1], "1:GetValue");
	assert_int_equal(l.n[CAP_EV_MUX], 5);
	cap_reader_finish(d.r, false);
	cap_reader_free(d.r);

	/* the start of a long packet is told apart from garbage */
	n = tcp_pkt(p, MUX_PORT_LOCKDOWN, 9, MUX_TH_ACK, f, fl);
	uint32_t whole = 0;
	assert_int_equal(mux_shape_start(p, 512, true, &whole), 2);
	assert_int_equal(whole, n);
	assert_int_equal(mux_shape_start(p, n, true, NULL), 0); /* whole: not a start */
	be32(p + 4, MUX_MAX_PACKET + 1);
	assert_int_equal(mux_shape_start(p, 512, true, NULL), 0);
}

/* Bulk traffic that is not usbmux is never taken for it: random bytes, a
 * storage-like exchange, and near misses (a lying length, a host that
 * skips tx_seq numbers, a header version that changes, a protocol the
 * direction does not use). */
static void test_shape_not_usbmux(void **state)
{
	struct evlog l = {.ordered = true};
	struct drv d = {0};
	uint8_t p[2048];
	uint32_t x = 12345;
	size_t n;

	(void)state;
	d.r = cap_reader_new(NULL, on_ev, &l);
	cap_reader_begin(d.r, CAP_LINKTYPE_USB_LINUX_MMAPPED);
	for (int i = 0; i < 300; i++) {
		n = 1 + (size_t)(x % 1024);
		for (size_t k = 0; k < n; k++) {
			x = x * 1103515245u + 12345u;
			p[k] = (uint8_t)(x >> 16);
		}
		if (i % 2)
			bulk_in(&d, p, n, 1024);
		else
			bulk_out(&d, p, n);
	}
	/* mass storage: 31-byte CBWs out, data and 13-byte CSWs in */
	for (int i = 0; i < 20; i++) {
		memset(p, 0, 31);
		memcpy(p, "USBC", 4);
		p[4] = (uint8_t)i;
		bulk_out(&d, p, 31);
		memset(p, 0xa5, 512);
		bulk_in(&d, p, 512, 512);
		memset(p, 0, 13);
		memcpy(p, "USBS", 4);
		bulk_in(&d, p, 13, 13);
	}
	/* usbmux headers whose length field is not the transfer's */
	for (int i = 0; i < 10; i++) {
		n = tcp_pkt(p, 3, MUX_PORT_LOCKDOWN, MUX_TH_ACK, NULL, 0);
		be16(p + 12, (uint16_t)i);
		bulk_out(&d, p, n + 4);
		bulk_in(&d, p, n + 4, 512);
	}
	/* whole packets, but the host's tx_seq does not count up */
	for (int i = 0; i < 10; i++) {
		n = tcp_pkt(p, 3, MUX_PORT_LOCKDOWN, MUX_TH_ACK, NULL, 0);
		be16(p + 12, (uint16_t)(i * 2));
		bulk_out(&d, p, n);
		bulk_in(&d, p, n, 512);
	}
	/* whole packets, but each device packet broken by something else */
	for (int i = 0; i < 10; i++) {
		n = tcp_pkt(p, 3, MUX_PORT_LOCKDOWN, MUX_TH_ACK, NULL, 0);
		be16(p + 12, (uint16_t)(100 + i));
		bulk_out(&d, p, n);
		bulk_in(&d, p, n, 512);
		bulk_in(&d, (const uint8_t *)"not usbmux", 10, 512);
	}
	cap_reader_finish(d.r, false);
	assert_non_null(l.usb);
	assert_int_equal(l.usb->ep_out, 0);
	assert_int_equal(l.usb->ep_in, 0);
	assert_false(l.usb->mux_by_shape);
	assert_int_equal(l.n[CAP_EV_MUX], 0);
	assert_int_equal(l.nconn, 0);
	cap_reader_free(d.r);

	/* the shape itself */
	n = tcp_pkt(p, 3, MUX_PORT_LOCKDOWN, MUX_TH_SYN, NULL, 0);
	assert_int_equal(mux_shape(p, n, false, NULL), 2);
	assert_int_equal(mux_shape(p, n, true, NULL), 2);
	assert_int_equal(mux_shape(p, n - 1, false, NULL), 0); /* length field says n */
	p[28] = 0x60;					       /* data offset: options */
	assert_int_equal(mux_shape(p, n, false, NULL), 0);
	p[28] = 0x50;
	p[29] = 0x40; /* an unknown flag */
	assert_int_equal(mux_shape(p, n, false, NULL), 0);
	p[29] = MUX_TH_ACK;
	be32(p, MUX_PROTO_CONTROL); /* CONTROL comes from the device only */
	assert_int_equal(mux_shape(p, n, false, NULL), 0);
	assert_int_equal(mux_shape(p, n, true, NULL), 2);
	be32(p, 3); /* no such protocol */
	assert_int_equal(mux_shape(p, n, true, NULL), 0);
	/* version 1: 8-byte header, TCP right after it */
	memset(p, 0, 28);
	be32(p, MUX_PROTO_TCP);
	be32(p + 4, 28);
	be16(p + 8, 3);
	be16(p + 10, MUX_PORT_LOCKDOWN);
	p[20] = 0x50;
	p[21] = MUX_TH_SYN;
	assert_int_equal(mux_shape(p, 28, false, NULL), 1);
}

static void test_goldens(void **state)
{
	static const char *files[] = {
		"captures/sim-healthy-pair.pcapng", "captures/analyze-healthy-pair-usbpcap.pcap",
		"captures/usbmuxd-relay-trusted.pcap", "captures/lab-trust-usbmon.pcap"};

	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct evlog l = {.ordered = true};
		struct cap_reader *r = cap_reader_new(NULL, on_ev, &l);
		struct lp_errinfo e = {0};
		FILE *f = fopen(files[i], "rb");

		assert_non_null(f);
		assert_int_equal(cap_reader_run(r, f, &e), 0);
		assert_int_equal(l.n[CAP_EV_END], 1);
		assert_true(l.ordered);
		/* every one of them holds a pairing: QueryType both ways at least */
		assert_true(l.nlkd >= 2);
		assert_int_equal(l.nanom, 0);
		assert_false(l.mid); /* complete sessions */
		cap_reader_free(r);
	}
}

struct ifaces {
	size_t n;
	double speed;
	int bus, addr;
	bool before_packets;
	size_t others;
};

static bool on_iface(void *ud, const struct cap_event *ev)
{
	struct ifaces *i = ud;

	if (ev->type != CAP_EV_INTERFACE) {
		i->others++;
		return true;
	}
	i->before_packets = i->others == 0;
	i->n++;
	i->speed = ev->u.iface.speed_mbps;
	i->bus = ev->u.iface.bus;
	i->addr = ev->u.iface.addr;
	return true;
}

/* linkprobe's pcapng writer puts speed and bus/device in if_description;
 * the reader hands them over before the first packet. */
static void test_interface_description(void **state)
{
	struct ifaces i = {0};
	struct lp_errinfo e = {0};
	struct cap_reader *r = cap_reader_new(NULL, on_iface, &i);

	(void)state;
	assert_int_equal(cap_reader_run(r, fopen("captures/sim-full-speed-cable.pcapng", "rb"), &e),
			 0);
	assert_int_equal(i.n, 1);
	assert_true(i.before_packets);
	assert_true(i.speed == 12.0);
	assert_int_equal(i.bus, 1);
	assert_int_equal(i.addr, 2);
	cap_reader_free(r);
	memset(&i, 0, sizeof(i));
	r = cap_reader_new(NULL, on_iface, &i);
	assert_int_equal(cap_reader_run(r, fopen("captures/analyze-healthy-pair.pcap", "rb"), &e),
			 0);
	assert_int_equal(i.n, 0); /* classic pcap: no IDBs */
	cap_reader_free(r);
}

/* pcapng blocks, little-endian, for the tests below */
static void put32(FILE *f, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	fwrite(b, 1, 4, f);
}

static void put_idb(FILE *f, const char *desc)
{
	size_t n = strlen(desc), pad = (4 - n % 4) % 4;
	uint32_t len = (uint32_t)(12 + 8 + 4 + n + pad + 4);

	put32(f, 1);
	put32(f, len);
	put32(f, 220); /* LINUX_USB_MMAPPED, reserved 0 */
	put32(f, 65535);
	put32(f, 3 | (uint32_t)n << 16); /* if_description */
	fwrite(desc, 1, n, f);
	fwrite("\0\0\0", 1, pad, f);
	put32(f, 0); /* opt_endofopt */
	put32(f, len);
}

/* An EPB of `n` zero bytes (n % 4 == 0) claiming `caplen` captured. */
static void put_epb(FILE *f, uint32_t n, uint32_t caplen)
{
	static const uint8_t zero[1024];
	uint32_t len = 32 + n;

	put32(f, 6);
	put32(f, len);
	put32(f, 0);
	put32(f, 0);
	put32(f, 1000);
	put32(f, caplen);
	put32(f, caplen);
	for (uint32_t k = 0; k < n; k += sizeof(zero))
		fwrite(zero, 1, n - k < sizeof(zero) ? n - k : sizeof(zero), f);
	put32(f, len);
}

/* The interface descriptions are read from the bytes on their way to
 * libpcap: one after 3 MB of packets is found (the file is read in pieces
 * of CAP_RD_IOBUF), and so is one more than a piece past a block libpcap
 * refuses. */
static void test_interface_description_later(void **state)
{
	struct lp_errinfo e = {0};

	(void)state;
	for (int broken = 0; broken < 2; broken++) {
		struct ifaces i = {0};
		struct cap_reader *r = cap_reader_new(NULL, on_iface, &i);
		FILE *f = tmpfile();

		assert_non_null(f);
		put32(f, 0x0A0D0D0A); /* SHB */
		put32(f, 28);
		put32(f, 0x1A2B3C4D);
		put32(f, 1); /* version 1.0 */
		put32(f, 0xffffffff);
		put32(f, 0xffffffff);
		put32(f, 28);
		put_idb(f, "05ac:12a8, full speed (12 Mb/s), bus 1 device 2");
		for (int k = 0; k < 2000; k++)
			put_epb(f, 1000, 1000);
		if (broken) /* caplen past the block: libpcap stops there */
			put_epb(f, 64, 4096);
		for (int k = 0; k < 1200; k++) /* more than a piece further on */
			put_epb(f, 1000, 1000);
		put_idb(f, "05ac:12a8, high speed (480 Mb/s), bus 3 device 4");
		put_epb(f, 64, 64);
		rewind(f);
		assert_int_equal(cap_reader_run(r, f, &e), 0);
		assert_int_equal(i.n, 2);
		assert_true(i.speed == 480.0);
		assert_int_equal(i.bus, 3);
		assert_int_equal(i.addr, 4);
		cap_reader_free(r);
	}
}

static bool stop_early(void *ud, const struct cap_event *ev)
{
	size_t *n = ud;

	(void)ev;
	return ++*n < 5;
}

static void test_stop_and_errors(void **state)
{
	struct lp_errinfo e = {0};
	size_t n = 0;
	struct cap_reader *r = cap_reader_new(NULL, stop_early, &n);
	FILE *f = fopen("captures/sim-healthy-pair.pcapng", "rb");

	(void)state;
	assert_int_equal(cap_reader_run(r, f, &e), 0);
	assert_int_equal(n, 5);
	cap_reader_free(r);

	static const char junk[] = "not a capture at all, not at all, not at all";
	r = cap_reader_new(NULL, stop_early, &n);
	assert_int_equal(cap_reader_run(r, fmemopen((void *)junk, sizeof(junk), "rb"), &e), LP_EIO);
	cap_reader_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transfer_entry),
		cmocka_unit_test(test_ends_mid_exchange),
		cmocka_unit_test(test_shape_mid_session),
		cmocka_unit_test(test_shape_not_usbmux),
		cmocka_unit_test(test_shape_split_in),
		cmocka_unit_test(test_goldens),
		cmocka_unit_test(test_interface_description),
		cmocka_unit_test(test_interface_description_later),
		cmocka_unit_test(test_stop_and_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
