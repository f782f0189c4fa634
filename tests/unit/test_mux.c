/* test_mux.c - usbmux codec: a host codec and a device codec wired back to
 * back in memory. Host packets reach the device as one transfer each; device
 * packets reach the host through 16384-byte IN transfers (as the host link
 * reads them), with a zero-length transfer when a packet fills its last one.
 * Reference: doc/protocol.md section 2 (2.11 worked example). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/mux.h"
#include "src/base/lp_error.h"

#define IN_BUF 16384
#define MAX_ID 128

struct side {
	struct mux *m;
	const char *name;
	bool echo;
	/* callbacks seen */
	int versions;
	uint32_t ver_major;
	int connects, accepts, closes, controls, anomalies;
	uint32_t last_conn;
	uint16_t last_port;
	int last_result, last_reason, last_anomaly;
	uint8_t ctl_type;
	char ctl_text[64];
	/* data received per conn id */
	uint8_t *rx[MAX_ID];
	size_t rxlen[MAX_ID], rxcap[MAX_ID];
	/* last packet this side sent */
	uint8_t last_pkt[64];
	size_t last_pkt_len;
};

struct pair {
	struct side host, dev;
	uint64_t max_in_flight_host_to_dev;
};

static void on_version(void *ud, uint32_t major, uint32_t minor)
{
	struct side *s = ud;
	s->versions++;
	s->ver_major = major;
}

static void on_connect(void *ud, uint32_t conn, uint16_t port, int result)
{
	struct side *s = ud;
	s->connects++;
	s->last_conn = conn;
	s->last_port = port;
	s->last_result = result;
}

static void on_accept(void *ud, uint32_t conn, uint16_t port)
{
	struct side *s = ud;
	s->accepts++;
	s->last_conn = conn;
	s->last_port = port;
}

static void on_data(void *ud, uint32_t conn, const uint8_t *data, size_t len)
{
	struct side *s = ud;

	assert_true(conn < MAX_ID);
	if (s->rxlen[conn] + len > s->rxcap[conn]) {
		size_t n = s->rxcap[conn] ? s->rxcap[conn] : 1024;
		while (n < s->rxlen[conn] + len)
			n *= 2;
		s->rx[conn] = realloc(s->rx[conn], n);
		assert_non_null(s->rx[conn]);
		s->rxcap[conn] = n;
	}
	memcpy(s->rx[conn] + s->rxlen[conn], data, len);
	s->rxlen[conn] += len;
	if (s->echo)
		assert_int_equal(mux_send(s->m, conn, data, len), 0);
}

static void on_close(void *ud, uint32_t conn, int reason)
{
	struct side *s = ud;
	s->closes++;
	s->last_conn = conn;
	s->last_reason = reason;
}

static void on_control(void *ud, uint8_t type, const uint8_t *text, size_t len)
{
	struct side *s = ud;
	s->controls++;
	s->ctl_type = type;
	if (len >= sizeof(s->ctl_text))
		len = sizeof(s->ctl_text) - 1;
	memcpy(s->ctl_text, text, len);
	s->ctl_text[len] = 0;
}

static void on_anomaly(void *ud, int err, const char *what)
{
	struct side *s = ud;
	s->anomalies++;
	s->last_anomaly = err;
}

static const struct mux_cbs cbs = {
	.on_version = on_version,
	.on_connect = on_connect,
	.on_accept = on_accept,
	.on_data = on_data,
	.on_close = on_close,
	.on_control = on_control,
	.on_anomaly = on_anomaly,
};

static struct pair *pair_new(void)
{
	struct pair *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->host.name = "host";
	p->dev.name = "dev";
	p->host.m = mux_new(MUX_ROLE_HOST, &cbs, &p->host, NULL);
	p->dev.m = mux_new(MUX_ROLE_DEVICE, &cbs, &p->dev, NULL);
	assert_non_null(p->host.m);
	assert_non_null(p->dev.m);
	return p;
}

static void pair_free(struct pair *p)
{
	for (int i = 0; i < MAX_ID; i++) {
		free(p->host.rx[i]);
		free(p->dev.rx[i]);
	}
	mux_free(p->host.m);
	mux_free(p->dev.m);
	free(p);
}

/* Device packet -> host, through 16384-byte IN transfers. */
static void feed_host_in(struct mux *h, const uint8_t *pkt, size_t len)
{
	size_t off = 0;

	do {
		size_t n = len - off > IN_BUF ? IN_BUF : len - off;
		assert_int_equal(mux_feed(h, pkt + off, n, n < IN_BUF), 0);
		off += n;
	} while (off < len);
	/* the device's ZLP ends a packet that filled its last transfer */
	if (len && len % IN_BUF == 0)
		assert_int_equal(mux_feed(h, NULL, 0, true), 0);
}

static void keep_last(struct side *s, const uint8_t *pkt, size_t len)
{
	s->last_pkt_len = len < sizeof(s->last_pkt) ? len : sizeof(s->last_pkt);
	memcpy(s->last_pkt, pkt, s->last_pkt_len);
}

/* One direction: move everything pending. Returns packets moved. */
static int move_host_to_dev(struct pair *p)
{
	uint8_t *pkt;
	size_t len;
	int n = 0;

	while (mux_out_take(p->host.m, &pkt, &len) == 0) {
		keep_last(&p->host, pkt, len);
		assert_int_equal(mux_feed(p->dev.m, pkt, len, true), 0);
		free(pkt);
		n++;
	}
	return n;
}

static int move_dev_to_host(struct pair *p)
{
	uint8_t *pkt;
	size_t len;
	int n = 0;

	while (mux_out_take(p->dev.m, &pkt, &len) == 0) {
		keep_last(&p->dev, pkt, len);
		feed_host_in(p->host.m, pkt, len);
		free(pkt);
		n++;
	}
	return n;
}

/* Run until quiet; fails on a ping-pong that never ends. */
static void pump(struct pair *p)
{
	for (int rounds = 0; rounds < 10000; rounds++) {
		int n = move_host_to_dev(p) + move_dev_to_host(p);
		if (!n)
			return;
	}
	fail_msg("codecs never went quiet");
}

static void negotiate(struct pair *p)
{
	assert_int_equal(mux_start(p->host.m, 2), 0);
	pump(p);
	assert_true(mux_active(p->host.m));
	assert_true(mux_active(p->dev.m));
}

static uint32_t open_conn(struct pair *p, uint16_t port)
{
	uint32_t c = 0;
	int acc = p->dev.accepts;

	assert_int_equal(mux_connect(p->host.m, port, &c), 0);
	pump(p);
	assert_int_equal(p->host.last_result, 0);
	assert_int_equal(p->host.last_conn, c);
	assert_int_equal(p->dev.accepts, acc + 1);
	return p->dev.last_conn;
}

static size_t hex_bytes(const char *hex, uint8_t *out)
{
	size_t n = 0;
	int hi = -1;

	for (; *hex; hex++) {
		int v;
		if (*hex >= '0' && *hex <= '9')
			v = *hex - '0';
		else if (*hex >= 'A' && *hex <= 'F')
			v = *hex - 'A' + 10;
		else if (*hex >= 'a' && *hex <= 'f')
			v = *hex - 'a' + 10;
		else
			continue;
		if (hi < 0) {
			hi = v;
		} else {
			out[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	return n;
}

static void take_expect(struct mux *m, const char *hex)
{
	uint8_t want[128], *pkt;
	size_t wlen = hex_bytes(hex, want), len;

	assert_int_equal(mux_out_take(m, &pkt, &len), 0);
	assert_int_equal(len, wlen);
	assert_memory_equal(pkt, want, wlen);
	free(pkt);
}

static void feed_hex(struct mux *m, const char *hex)
{
	uint8_t b[256];
	size_t n = hex_bytes(hex, b);
	assert_int_equal(mux_feed(m, b, n, true), 0);
}

static uint8_t *pattern(size_t len, uint32_t seed)
{
	uint8_t *b = malloc(len);

	assert_non_null(b);
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (uint8_t)(seed >> 16);
	}
	return b;
}

/* --------------------------------------------------------------------------- */

/* 2.3, 2.4, 2.11: exact bytes of VERSION, SETUP, SYN, SYN|ACK, ACK. */
static void test_worked_example_bytes(void **state)
{
	struct mux *h = mux_new(MUX_ROLE_HOST, NULL, NULL, NULL);
	struct mux *d = mux_new(MUX_ROLE_DEVICE, NULL, NULL, NULL);
	uint32_t conn;

	assert_int_equal(mux_listen(d, MUX_PORT_LOCKDOWN), 0);
	assert_int_equal(mux_start(h, 2), 0);
	take_expect(h, "00000000 00000014 | 00000002 00000000 00000000");
	assert_false(mux_out_pending(h));

	feed_hex(d, "00000000 00000014 00000002 00000000 00000000");
	take_expect(d, "00000000 00000014 | 00000002 00000000 00000000");
	assert_false(mux_active(d)); /* waits for SETUP */

	feed_hex(h, "00000000 00000014 00000002 00000000 00000000");
	assert_int_equal(mux_version(h), 2);
	assert_true(mux_active(h));
	take_expect(h, "00000002 00000011 FEEDFACE 0000 FFFF 07");

	feed_hex(d, "00000002 00000011 FEEDFACE 0000 FFFF 07");
	assert_true(mux_active(d));
	assert_int_equal(mux_version(d), 2);

	assert_int_equal(mux_connect(h, MUX_PORT_LOCKDOWN, &conn), 0);
	take_expect(
		h,
		"00000006 00000024 FEEDFACE 0001 FFFF | 0001 F27E 00000000 00000000 50 02 0200 0000 0000");
	feed_hex(
		d,
		"00000006 00000024 FEEDFACE 0001 FFFF | 0001 F27E 00000000 00000000 50 02 0200 0000 0000");
	take_expect(
		d,
		"00000006 00000024 FEEDFACE 0000 0001 | F27E 0001 00000000 00000001 50 12 0200 0000 0000");
	feed_hex(
		h,
		"00000006 00000024 FEEDFACE 0000 0001 | F27E 0001 00000000 00000001 50 12 0200 0000 0000");
	/* ACK: seq 1, ack 1, flags 0x10; tx_seq 2, rx_seq = device's tx_seq 0 */
	take_expect(
		h,
		"00000006 00000024 FEEDFACE 0002 0000 | 0001 F27E 00000001 00000001 50 10 0200 0000 0000");
	assert_false(mux_out_pending(h));
	assert_int_equal(mux_conn_port(h, conn), MUX_PORT_LOCKDOWN);
	mux_free(h);
	mux_free(d);
}

static void test_v2_negotiation(void **state)
{
	struct pair *p = pair_new();

	assert_int_equal(mux_version(p->host.m), 0);
	assert_false(mux_active(p->host.m));
	negotiate(p);
	assert_int_equal(mux_version(p->host.m), 2);
	assert_int_equal(mux_version(p->dev.m), 2);
	assert_int_equal(p->host.versions, 1);
	assert_int_equal(p->host.ver_major, 2);
	assert_int_equal(p->dev.versions, 1);
	assert_int_equal(p->host.anomalies + p->dev.anomalies, 0);
	/* a second start is refused */
	assert_int_equal(mux_start(p->host.m, 2), LP_EINVAL);
	/* host cannot connect before negotiation: checked on a fresh codec */
	{
		struct mux *h = mux_new(MUX_ROLE_HOST, NULL, NULL, NULL);
		uint32_t c;
		assert_int_equal(mux_connect(h, 1, &c), LP_EINVAL);
		mux_free(h);
	}
	pair_free(p);
}

static void v1_session(struct pair *p)
{
	uint8_t *pkt;
	size_t len;
	uint32_t c;
	const char *msg = "hello over v1";

	assert_int_equal(mux_listen(p->dev.m, 7), 0);
	assert_int_equal(mux_connect(p->host.m, 7, &c), 0);
	assert_int_equal(mux_out_take(p->host.m, &pkt, &len), 0);
	assert_int_equal(len, MUX_V1_HDR + MUX_TCP_HDR); /* 8-byte header */
	assert_int_equal(mux_feed(p->dev.m, pkt, len, true), 0);
	free(pkt);
	pump(p);
	assert_int_equal(p->host.last_result, 0);
	p->dev.echo = true;
	assert_int_equal(mux_send(p->host.m, c, (const uint8_t *)msg, strlen(msg)), 0);
	pump(p);
	assert_int_equal(p->host.rxlen[c], strlen(msg));
	assert_memory_equal(p->host.rx[c], msg, strlen(msg));
	assert_int_equal(p->host.anomalies + p->dev.anomalies, 0);
}

/* Device answers major 1: no SETUP, 8-byte headers, TCP works. */
static void test_v1_fallback(void **state)
{
	struct pair *p = pair_new();
	uint8_t *pkt;
	size_t len;

	mux_set_device_version(p->dev.m, 1);
	assert_int_equal(mux_start(p->host.m, 2), 0);
	move_host_to_dev(p);
	assert_true(mux_active(p->dev.m));
	move_dev_to_host(p);
	assert_int_equal(mux_version(p->host.m), 1);
	assert_true(mux_active(p->host.m));
	assert_int_equal(mux_out_take(p->host.m, &pkt, &len), LP_EAGAIN); /* no SETUP */
	v1_session(p);
	pair_free(p);

	/* the host asks for 1: a v2-capable device answers 1 */
	p = pair_new();
	assert_int_equal(mux_start(p->host.m, 1), 0);
	pump(p);
	assert_int_equal(mux_version(p->host.m), 1);
	assert_int_equal(mux_version(p->dev.m), 1);
	v1_session(p);
	pair_free(p);
}

static void test_connect_refused(void **state)
{
	struct pair *p = pair_new();
	uint32_t c;
	struct mux_stats st;

	negotiate(p);
	assert_int_equal(mux_listen(p->dev.m, MUX_PORT_LOCKDOWN), 0);
	assert_int_equal(mux_connect(p->host.m, 1234, &c), 0);
	pump(p);
	assert_int_equal(p->host.connects, 1);
	assert_int_equal(p->host.last_conn, c);
	assert_int_equal(p->host.last_port, 1234);
	assert_int_equal(p->host.last_result, LP_ECONNREFUSED);
	assert_int_equal(p->dev.accepts, 0);
	/* the refused id is forgotten */
	assert_int_equal(mux_send(p->host.m, c, (const uint8_t *)"x", 1), LP_ENOENT);
	mux_get_stats(p->dev.m, &st);
	assert_int_equal(st.rst_out, 1);

	/* unlisten makes a port refuse again */
	open_conn(p, MUX_PORT_LOCKDOWN);
	mux_unlisten(p->dev.m, MUX_PORT_LOCKDOWN);
	assert_int_equal(mux_connect(p->host.m, MUX_PORT_LOCKDOWN, &c), 0);
	pump(p);
	assert_int_equal(p->host.last_result, LP_ECONNREFUSED);
	assert_int_equal(p->host.anomalies + p->dev.anomalies, 0);
	pair_free(p);
}

static void test_data_both_ways(void **state)
{
	struct pair *p = pair_new();
	uint32_t hc, dc;
	const char *a = "GetValue request", *b = "reply from the device";
	struct mux_stats hs;

	negotiate(p);
	mux_listen(p->dev.m, 100);
	dc = open_conn(p, 100);
	hc = p->host.last_conn;
	assert_int_equal(mux_send(p->host.m, hc, (const uint8_t *)a, strlen(a)), 0);
	assert_int_equal(mux_send(p->dev.m, dc, (const uint8_t *)b, strlen(b)), 0);
	pump(p);
	assert_int_equal(p->dev.rxlen[dc], strlen(a));
	assert_memory_equal(p->dev.rx[dc], a, strlen(a));
	assert_int_equal(p->host.rxlen[hc], strlen(b));
	assert_memory_equal(p->host.rx[hc], b, strlen(b));
	/* the host acknowledged the device's data with a pure ACK */
	mux_get_stats(p->host.m, &hs);
	assert_int_equal(p->host.anomalies + p->dev.anomalies, 0);
	/* device data after the ACK: seq/ack in the ACK are right, nothing pending */
	assert_false(mux_out_pending(p->host.m));
	assert_false(mux_out_pending(p->dev.m));
	pair_free(p);
}

/* 1 MiB each way: the sender stops at the peer's 128 KiB window and goes on
 * as ACKs come back; the bytes arrive exactly. */
static void test_megabyte_window(void **state)
{
	struct pair *p = pair_new();
	const size_t big = 1u << 20;
	uint8_t *up = pattern(big, 1), *down = pattern(big, 2);
	uint32_t hc, dc;

	negotiate(p);
	mux_listen(p->dev.m, 200);
	dc = open_conn(p, 200);
	hc = p->host.last_conn;

	assert_int_equal(mux_send(p->host.m, hc, up, big), 0);
	assert_int_equal(mux_unsent(p->host.m, hc), big - ((size_t)MUX_DEFAULT_WINDOW << 8));
	/* only acknowledgements release more */
	move_host_to_dev(p);
	assert_int_equal(mux_unsent(p->host.m, hc), big - ((size_t)MUX_DEFAULT_WINDOW << 8));
	move_dev_to_host(p);
	assert_true(mux_unsent(p->host.m, hc) < big - ((size_t)MUX_DEFAULT_WINDOW << 8));

	assert_int_equal(mux_send(p->dev.m, dc, down, big), 0);
	assert_int_equal(mux_unsent(p->dev.m, dc), big - ((size_t)MUX_DEFAULT_WINDOW << 8));
	pump(p);
	assert_int_equal(mux_unsent(p->host.m, hc), 0);
	assert_int_equal(mux_unsent(p->dev.m, dc), 0);
	assert_int_equal(p->dev.rxlen[dc], big);
	assert_memory_equal(p->dev.rx[dc], up, big);
	assert_int_equal(p->host.rxlen[hc], big);
	assert_memory_equal(p->host.rx[hc], down, big);
	assert_int_equal(p->host.anomalies + p->dev.anomalies, 0);

	/* the send queue cap */
	{
		uint8_t *huge = calloc(1, MUX_SENDQ_MAX + 1);
		assert_non_null(huge);
		assert_int_equal(mux_send(p->host.m, hc, huge, MUX_SENDQ_MAX + 1), LP_ETOOBIG);
		free(huge);
	}
	free(up);
	free(down);
	pair_free(p);
}

/* Packets never exceed the MTU: host 49152, device 16384 by default. */
static void test_segmentation_mtu(void **state)
{
	struct pair *p = pair_new();
	uint8_t *data = pattern(100000, 3), *pkt;
	size_t len, maxh = 0, maxd = 0;
	uint32_t hc, dc;

	negotiate(p);
	mux_listen(p->dev.m, 5);
	dc = open_conn(p, 5);
	hc = p->host.last_conn;
	assert_int_equal(mux_send(p->host.m, hc, data, 100000), 0);
	assert_int_equal(mux_send(p->dev.m, dc, data, 100000), 0);
	for (int round = 0; round < 1000; round++) {
		int n = 0;
		while (mux_out_take(p->host.m, &pkt, &len) == 0) {
			maxh = len > maxh ? len : maxh;
			mux_feed(p->dev.m, pkt, len, true);
			free(pkt);
			n++;
		}
		while (mux_out_take(p->dev.m, &pkt, &len) == 0) {
			maxd = len > maxd ? len : maxd;
			feed_host_in(p->host.m, pkt, len);
			free(pkt);
			n++;
		}
		if (!n)
			break;
	}
	assert_int_equal(maxh, MUX_HOST_MTU);
	assert_int_equal(maxd, MUX_DEVICE_MTU);
	assert_int_equal(p->host.rxlen[hc], 100000);
	assert_int_equal(p->dev.rxlen[dc], 100000);
	assert_memory_equal(p->host.rx[hc], data, 100000);
	free(data);
	pair_free(p);
}

static void test_several_connections(void **state)
{
	struct pair *p = pair_new();
	uint32_t hc[6], dc[6];
	uint16_t hp, dp;
	char msg[64];

	negotiate(p);
	mux_listen(p->dev.m, 10);
	mux_listen(p->dev.m, 11);
	p->dev.echo = true;
	for (int i = 0; i < 6; i++) {
		dc[i] = open_conn(p, (uint16_t)(10 + i % 2));
		hc[i] = p->host.last_conn;
		for (int j = 0; j < i; j++)
			assert_int_not_equal(hc[i], hc[j]);
		assert_int_equal(mux_conn_ports(p->host.m, hc[i], &hp, &dp), 0);
		assert_int_equal(hp, i + 1); /* local ports from 1 upward */
		assert_int_equal(dp, 10 + i % 2);
		assert_int_equal(mux_conn_ports(p->dev.m, dc[i], &hp, &dp), 0);
		assert_int_equal(hp, i + 1);
	}
	/* interleaved sends */
	for (int r = 0; r < 3; r++) {
		for (int i = 0; i < 6; i++) {
			snprintf(msg, sizeof(msg), "conn%d-round%d;", i, r);
			assert_int_equal(mux_send(p->host.m, hc[i], (uint8_t *)msg, strlen(msg)),
					 0);
		}
	}
	pump(p);
	for (int i = 0; i < 6; i++) {
		char want[256] = "";
		for (int r = 0; r < 3; r++) {
			snprintf(msg, sizeof(msg), "conn%d-round%d;", i, r);
			strcat(want, msg);
		}
		assert_int_equal(p->host.rxlen[hc[i]], strlen(want));
		assert_memory_equal(p->host.rx[hc[i]], want, strlen(want));
		assert_int_equal(p->dev.rxlen[dc[i]], strlen(want));
	}
	assert_int_equal(p->host.anomalies + p->dev.anomalies, 0);
	pair_free(p);
}

static void test_close_by_rst(void **state)
{
	struct pair *p = pair_new();
	uint32_t hc, dc;
	struct mux_stats hs, ds;

	negotiate(p);
	mux_listen(p->dev.m, 20);

	/* host closes */
	dc = open_conn(p, 20);
	hc = p->host.last_conn;
	assert_int_equal(mux_close(p->host.m, hc), 0);
	assert_int_equal(mux_close(p->host.m, hc), LP_ENOENT);
	pump(p);
	assert_int_equal(p->dev.closes, 1);
	assert_int_equal(p->dev.last_conn, dc);
	assert_int_equal(p->dev.last_reason, 0);
	assert_int_equal(mux_send(p->dev.m, dc, (const uint8_t *)"x", 1), LP_ENOENT);

	/* device closes */
	dc = open_conn(p, 20);
	hc = p->host.last_conn;
	assert_int_equal(mux_close(p->dev.m, dc), 0);
	pump(p);
	assert_int_equal(p->host.closes, 1);
	assert_int_equal(p->host.last_conn, hc);
	assert_int_equal(mux_send(p->host.m, hc, (const uint8_t *)"x", 1), LP_ENOENT);

	/* crossing: device data in flight when the host resets. The host answers
	 * the late data with RST, the device ignores RST for a closed port: no
	 * ping-pong (pump() would fail). */
	dc = open_conn(p, 20);
	hc = p->host.last_conn;
	mux_get_stats(p->host.m, &hs);
	assert_int_equal(mux_send(p->dev.m, dc, (const uint8_t *)"late", 4), 0);
	assert_int_equal(mux_close(p->host.m, hc), 0);
	move_dev_to_host(p);
	pump(p);
	mux_get_stats(p->host.m, &ds);
	assert_int_equal(ds.rst_out - hs.rst_out, 2);
	assert_int_equal(p->host.rxlen[hc], 0);
	assert_int_equal(p->host.anomalies + p->dev.anomalies, 0);
	pair_free(p);
}

/* A device that sends 60000-byte packets: each spans four 16384-byte IN
 * transfers and is reassembled. */
static void test_split_transfers(void **state)
{
	struct pair *p = pair_new();
	uint8_t *data = pattern(300000, 4);
	uint32_t hc, dc;
	struct mux_stats st;

	negotiate(p);
	assert_int_equal(mux_set_mtu(p->dev.m, 60000), 0);
	assert_int_equal(mux_set_mtu(p->dev.m, MUX_MAX_PACKET + 1), LP_EINVAL);
	assert_int_equal(mux_set_mtu(p->host.m, MUX_HOST_MTU + 1), LP_EINVAL);
	mux_listen(p->dev.m, 30);
	dc = open_conn(p, 30);
	hc = p->host.last_conn;
	assert_int_equal(mux_send(p->dev.m, dc, data, 300000), 0);
	pump(p);
	assert_int_equal(p->host.rxlen[hc], 300000);
	assert_memory_equal(p->host.rx[hc], data, 300000);
	mux_get_stats(p->host.m, &st);
	assert_true(st.reassembled >= 5);
	assert_int_equal(p->host.anomalies, 0);

	/* exactly 4 x 16384: four full transfers, then the ZLP */
	mux_set_mtu(p->dev.m, 4 * IN_BUF);
	assert_int_equal(mux_send(p->dev.m, dc, data, 4 * IN_BUF - MUX_V2_HDR - MUX_TCP_HDR), 0);
	pump(p);
	assert_int_equal(p->host.rxlen[hc], 300000 + 4 * IN_BUF - MUX_V2_HDR - MUX_TCP_HDR);
	assert_int_equal(p->host.anomalies, 0);

	/* a header split across transfers (3 bytes, then the rest) */
	{
		uint8_t *pkt;
		size_t len;
		assert_int_equal(mux_send(p->dev.m, dc, (const uint8_t *)"abc", 3), 0);
		assert_int_equal(mux_out_take(p->dev.m, &pkt, &len), 0);
		assert_int_equal(mux_feed(p->host.m, pkt, 3, false), 0);
		assert_int_equal(mux_feed(p->host.m, pkt + 3, len - 3, true), 0);
		free(pkt);
		assert_memory_equal(p->host.rx[hc] + p->host.rxlen[hc] - 3, "abc", 3);
	}
	free(data);
	pair_free(p);
}

/* A device that ends its IN transfers in the middle of a packet (short
 * transfers of odd sizes, even one byte): the packet is put together by its
 * header's length, nothing is lost or reported. One cut short by a new
 * packet starting the next transfer is an anomaly naming both lengths; the
 * codec carries on (a new connection works). */
static void test_partial_at_transfer_end(void **state)
{
	static const size_t cuts[] = {700, 1, 3000, 511, 513, 16384};
	struct pair *p = pair_new();
	uint8_t *data = pattern(40000, 5), *pkt;
	size_t len, off = 0, k = 0, announced = 0;
	uint32_t dc;

	negotiate(p);
	mux_set_mtu(p->dev.m, 50000);
	mux_listen(p->dev.m, 40);
	dc = open_conn(p, 40);
	assert_int_equal(mux_send(p->dev.m, dc, data, 40000), 0);
	assert_int_equal(mux_out_take(p->dev.m, &pkt, &len), 0);
	while (off < len) {
		size_t n = cuts[k++ % 6];
		if (n > len - off)
			n = len - off;
		assert_int_equal(mux_feed(p->host.m, pkt + off, n, true), 0);
		off += n;
		if (off < len) {
			assert_int_equal(mux_partial(p->host.m, &announced), off);
			assert_int_equal(announced, len);
		}
	}
	free(pkt);
	assert_int_equal(p->host.anomalies, 0);
	assert_int_equal(mux_partial(p->host.m, NULL), 0);
	assert_int_equal(p->host.rxlen[p->host.last_conn], 40000);
	assert_memory_equal(p->host.rx[p->host.last_conn], data, 40000);

	/* cut: 100 bytes, then the next transfer opens a packet of its own */
	assert_int_equal(mux_send(p->dev.m, dc, data, 20000), 0);
	assert_int_equal(mux_out_take(p->dev.m, &pkt, &len), 0);
	assert_int_equal(mux_feed(p->host.m, pkt, 100, true), 0);
	free(pkt);
	assert_int_equal(p->host.anomalies, 0);
	mux_close(p->dev.m, dc);
	pump(p);
	/* the cut packet, and the tx_seq it took leaves a gap before the RST */
	assert_int_equal(p->host.anomalies, 2);
	assert_int_equal(mux_partial(p->host.m, NULL), 0);

	p->dev.echo = true;
	dc = open_conn(p, 40);
	mux_send(p->host.m, p->host.last_conn, (const uint8_t *)"ok", 2);
	pump(p);
	assert_int_equal(p->host.rxlen[p->host.last_conn], 2);
	free(data);
	pair_free(p);
}

static void test_bad_input(void **state)
{
	struct pair *p = pair_new();
	struct mux_stats st;
	uint8_t junk[3000];
	uint32_t c;
	int a;

	negotiate(p);
	mux_listen(p->dev.m, 50);

	/* length field over the cap: no allocation, anomaly, rest of transfer skipped */
	feed_hex(p->host.m, "00000006 00100000 FEEDFACE 0000 0000");
	assert_int_equal(p->host.last_anomaly, LP_ETOOBIG);
	feed_hex(p->dev.m, "00000006 FFFFFFFF FEEDFACE 0000 0000");
	assert_int_equal(p->dev.last_anomaly, LP_ETOOBIG);
	/* oversize spanning transfers: the continuation is skipped too */
	assert_int_equal(mux_feed(p->host.m, (const uint8_t *)"\0\0\0\6\0\2\0\0", 8, false), 0);
	a = p->host.anomalies;
	memset(junk, 0x41, sizeof(junk));
	assert_int_equal(mux_feed(p->host.m, junk, sizeof(junk), true), 0);
	assert_int_equal(p->host.anomalies, a);
	/* length smaller than the header */
	feed_hex(p->host.m, "00000006 0000000C FEEDFACE 0000");
	assert_int_equal(p->host.last_anomaly, LP_EBADMSG);
	/* TCP packet too short for the TCP header */
	feed_hex(p->host.m, "00000006 00000014 FEEDFACE 0000 0000 00000000");
	assert_int_equal(p->host.last_anomaly, LP_EBADMSG);
	/* unknown protocol */
	feed_hex(p->host.m, "00000009 00000011 FEEDFACE 0000 0000 00");
	assert_int_equal(p->host.last_anomaly, LP_EBADMSG);
	/* truncated: 5 bytes then end of transfer - held for the next transfer,
	 * which starts a packet of its own (a CONTROL, itself refused by the
	 * device): the cut one is reported first */
	a = p->dev.anomalies;
	feed_hex(p->dev.m, "0000000600");
	assert_int_equal(p->dev.anomalies, a);
	feed_hex(p->dev.m, "00000001 00000012 FEEDFACE 0000 0000 0341");
	assert_true(p->dev.anomalies >= a + 2);
	assert_int_equal(mux_partial(p->dev.m, NULL), 0);
	/* SETUP sent to the host, CONTROL sent to the device */
	feed_hex(p->host.m, "00000002 00000011 FEEDFACE 0000 0000 07");
	assert_int_equal(p->host.last_anomaly, LP_EPROTO);
	feed_hex(p->dev.m, "00000001 00000012 FEEDFACE 0000 0000 0341");
	assert_int_equal(p->dev.last_anomaly, LP_EPROTO);
	/* garbage */
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	for (size_t off = 0; off < sizeof(junk); off += 97) {
		mux_feed(p->host.m, junk + off, sizeof(junk) - off < 97 ? sizeof(junk) - off : 97,
			 off % 2);
		mux_feed(p->dev.m, junk + off, sizeof(junk) - off < 97 ? sizeof(junk) - off : 97,
			 true);
	}
	mux_get_stats(p->host.m, &st);
	assert_true(st.anomalies >= 7);
	/* drain anything the garbage provoked (RSTs), then the codec still works */
	mux_feed(p->host.m, NULL, 0, true);
	while (mux_out_pending(p->host.m) || mux_out_pending(p->dev.m)) {
		uint8_t *pkt;
		size_t len;
		while (mux_out_take(p->host.m, &pkt, &len) == 0)
			free(pkt);
		while (mux_out_take(p->dev.m, &pkt, &len) == 0)
			free(pkt);
	}
	/* tx_seq continuity was broken by the drain: gaps are reported, not fatal */
	p->dev.echo = true;
	assert_int_equal(mux_connect(p->host.m, 50, &c), 0);
	pump(p);
	assert_int_equal(p->host.last_result, 0);
	assert_int_equal(mux_send(p->host.m, c, (const uint8_t *)"still alive", 11), 0);
	pump(p);
	assert_int_equal(p->host.rxlen[c], 11);
	assert_memory_equal(p->host.rx[c], "still alive", 11);
	pair_free(p);
}

/* Only flags 0x10 on an open connection: PSH|ACK makes the host reset it. */
static void test_bad_flags_teardown(void **state)
{
	struct pair *p = pair_new();
	uint8_t pkt[64];
	size_t n;
	uint32_t hc;
	uint16_t tx;

	negotiate(p);
	mux_listen(p->dev.m, 60);
	open_conn(p, 60);
	hc = p->host.last_conn;
	/* build the device's next packet by hand with the right tx_seq */
	tx = (uint16_t)((p->dev.last_pkt[12] << 8 | p->dev.last_pkt[13]) + 1);
	n = hex_bytes(
		"00000006 00000025 FEEDFACE 0000 0000 003C 0001 00000001 00000001 50 18 0200 0000 0000 41",
		pkt);
	pkt[12] = (uint8_t)(tx >> 8);
	pkt[13] = (uint8_t)tx;
	assert_int_equal(mux_feed(p->host.m, pkt, n, true), 0);
	assert_int_equal(p->host.closes, 1);
	assert_int_equal(p->host.last_conn, hc);
	assert_int_equal(p->host.last_reason, LP_EPROTO);
	assert_int_equal(p->host.last_anomaly, LP_EPROTO);
	assert_int_equal(p->host.rxlen[hc], 0);
	pump(p);
	assert_int_equal(p->dev.closes, 1); /* the host's RST reached the device */
	pair_free(p);
}

/* Never acknowledge a pure ACK; data to a closed port gets RST. */
static void test_ack_rules(void **state)
{
	struct pair *p = pair_new();
	uint8_t pkt[64];
	size_t n;
	struct mux_stats a, b;

	negotiate(p);
	mux_listen(p->dev.m, 70);
	open_conn(p, 70);
	assert_false(mux_out_pending(p->dev.m));
	/* the host's ACK of SYN|ACK (a pure ACK) produced nothing on the device */
	mux_get_stats(p->dev.m, &a);
	assert_int_equal(a.packets_out, 2); /* VERSION reply + SYN|ACK */

	/* data to a port with no connection: RST back */
	n = hex_bytes(
		"00000006 00000025 FEEDFACE 0000 0000 0063 0063 00000005 00000007 50 10 0200 0000 0000 41",
		pkt);
	pkt[12] = p->host.last_pkt[12];
	pkt[13] = (uint8_t)(p->host.last_pkt[13] + 1);
	mux_get_stats(p->dev.m, &a);
	assert_int_equal(mux_feed(p->dev.m, pkt, n, true), 0);
	mux_get_stats(p->dev.m, &b);
	assert_int_equal(b.rst_out - a.rst_out, 1);
	{
		uint8_t *o;
		size_t len;
		struct mux_packet mp;
		assert_int_equal(mux_out_take(p->dev.m, &o, &len), 0);
		assert_int_equal(mux_decode(o, len, 2, &mp), 0);
		assert_int_equal(mp.flags, MUX_TH_RST);
		assert_int_equal(mp.sport, 0x63);
		assert_int_equal(mp.seq, 7);
		assert_int_equal(mp.ack, 6);
		free(o);
	}
	pair_free(p);
}

static void test_control(void **state)
{
	struct pair *p = pair_new();

	assert_int_equal(mux_send_control(p->dev.m, 3, (const uint8_t *)"x", 1), LP_EINVAL);
	negotiate(p);
	assert_int_equal(mux_send_control(p->dev.m, 7, (const uint8_t *)"battery low", 11), 0);
	pump(p);
	assert_int_equal(p->host.controls, 1);
	assert_int_equal(p->host.ctl_type, 7);
	assert_string_equal(p->host.ctl_text, "battery low");
	/* empty CONTROL: anomaly */
	assert_int_equal(mux_send_control(p->dev.m, 3, NULL, 0), 0);
	{
		uint8_t *o;
		size_t len;
		mux_out_take(p->dev.m, &o, &len);
		mux_feed(p->host.m, o, len, true); /* type byte present: fine */
		assert_int_equal(p->host.controls, 2);
		o[7] = 0x10; /* length 16: no type byte */
		mux_feed(p->host.m, o, 16, true);
		assert_int_equal(p->host.last_anomaly, LP_EBADMSG);
		free(o);
	}
	pair_free(p);
}

static void test_decode(void **state)
{
	struct mux_packet mp;
	uint8_t b[128];
	size_t n;

	n = hex_bytes(
		"00000006 00000026 FEEDFACE 0102 0304 | 0001 F27E 00000001 00000002 50 10 0200 0000 0000 6869",
		b);
	assert_int_equal(mux_decode(b, n, 2, &mp), 0);
	assert_true(mp.v2);
	assert_int_equal(mp.protocol, MUX_PROTO_TCP);
	assert_int_equal(mp.length, 0x26);
	assert_int_equal(mp.magic, MUX_V2_MAGIC);
	assert_int_equal(mp.tx_seq, 0x0102);
	assert_int_equal(mp.rx_seq, 0x0304);
	assert_int_equal(mp.sport, 1);
	assert_int_equal(mp.dport, 62078);
	assert_int_equal(mp.seq, 1);
	assert_int_equal(mp.ack, 2);
	assert_int_equal(mp.flags, MUX_TH_ACK);
	assert_int_equal(mp.window, 0x200);
	assert_int_equal(mp.payload_len, 2);
	assert_memory_equal(mp.payload, "hi", 2);
	/* every strict prefix is truncated */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(mux_decode(b, i, 2, &mp), LP_ETRUNC);
	/* bad data offset */
	b[16 + 12] = 0x40;
	assert_int_equal(mux_decode(b, n, 2, &mp), LP_EBADMSG);
	b[16 + 12] = 0xF0;
	assert_int_equal(mux_decode(b, n, 2, &mp), LP_EBADMSG);
	/* VERSION uses 8 bytes even when asked for v2 */
	n = hex_bytes("00000000 00000014 00000002 00000000 00000000", b);
	assert_int_equal(mux_decode(b, n, 2, &mp), 0);
	assert_false(mp.v2);
	assert_int_equal(mp.payload_len, 12);
	/* v1 TCP */
	n = hex_bytes("00000006 0000001C 0001 F27E 00000000 00000000 50 02 0200 0000 0000", b);
	assert_int_equal(mux_decode(b, n, 1, &mp), 0);
	assert_int_equal(mp.flags, MUX_TH_SYN);
	/* the same bytes read as v2 are too short for a TCP header */
	assert_int_equal(mux_decode(b, n, 2, &mp), LP_EBADMSG);
}

/* --- struct mux_rx: the one bad-length policy ------------------------------ */

struct rxlog {
	size_t npkt, nprob;
	size_t pkt_len[8];
	uint8_t pkt_first[8]; /* first payload byte of each packet */
	int prob_err[8];
	uint32_t prob_len[8];
	size_t prob_dropped[8];
};

static void rx_pkt(void *ud, const uint8_t *pkt, size_t len, bool spanned)
{
	struct rxlog *l = ud;

	(void)spanned;
	if (l->npkt < 8) {
		l->pkt_len[l->npkt] = len;
		l->pkt_first[l->npkt] = len > 8 ? pkt[8] : 0;
	}
	l->npkt++;
}

static void rx_prob(void *ud, int err, uint32_t length, size_t dropped)
{
	struct rxlog *l = ud;

	if (l->nprob < 8) {
		l->prob_err[l->nprob] = err;
		l->prob_len[l->nprob] = length;
		l->prob_dropped[l->nprob] = dropped;
	}
	l->nprob++;
}

static const struct mux_rx_cbs rx_cbs = {.on_packet = rx_pkt, .on_problem = rx_prob};

/* A v1 CONTROL-protocol packet of `len` bytes whose length field says `claim`,
 * payload filled with `fill`. */
static size_t rx_packet(uint8_t *out, uint32_t claim, size_t len, uint8_t fill)
{
	out[0] = 0, out[1] = 0, out[2] = 0, out[3] = MUX_PROTO_CONTROL;
	out[4] = (uint8_t)(claim >> 24), out[5] = (uint8_t)(claim >> 16),
	out[6] = (uint8_t)(claim >> 8);
	out[7] = (uint8_t)claim;
	memset(out + 8, fill, len - 8);
	return len;
}

static void test_rx_lying_lengths(void **state)
{
	uint8_t t1[64], t2[64], t3[4096];
	struct mux_rx rx = {0};
	struct rxlog l = {0};
	size_t n;

	(void)state;
	/* oversize: length field 0x7ffffff0 over MUX_MAX_PACKET. Anomaly with the
	 * field and the bytes dropped; the rest of the transfer (a packet glued
	 * behind it) is not read; a full-size (not short) continuation transfer
	 * is skipped too; the transfer after the short end decodes again. */
	n = rx_packet(t1, 0x7ffffff0u, 20, 0xaa);
	n += rx_packet(t1 + n, 12, 12, 0xbb);
	assert_int_equal(mux_rx_feed(&rx, t1, n, false, &rx_cbs, &l), 0);
	assert_int_equal(l.nprob, 1);
	assert_int_equal(l.prob_err[0], LP_ETOOBIG);
	assert_int_equal(l.prob_len[0], 0x7ffffff0u);
	assert_int_equal(l.prob_dropped[0], 32);
	assert_int_equal(l.npkt, 0);
	memset(t2, 0xcc, sizeof(t2));
	assert_int_equal(mux_rx_feed(&rx, t2, sizeof(t2), false, &rx_cbs, &l), 0);
	assert_int_equal(mux_rx_feed(&rx, t2, 10, true, &rx_cbs, &l), 0); /* the short end */
	assert_int_equal(l.npkt, 0);
	assert_int_equal(l.nprob, 1);
	n = rx_packet(t1, 16, 16, 0x11);
	assert_int_equal(mux_rx_feed(&rx, t1, n, true, &rx_cbs, &l), 0);
	assert_int_equal(l.npkt, 1); /* resynchronised */
	assert_int_equal(l.pkt_len[0], 16);
	assert_int_equal(l.pkt_first[0], 0x11);

	/* short: a length field under the 8-byte header */
	n = rx_packet(t1, 3, 24, 0x22);
	assert_int_equal(mux_rx_feed(&rx, t1, n, true, &rx_cbs, &l), 0);
	assert_int_equal(l.nprob, 2);
	assert_int_equal(l.prob_err[1], LP_EBADMSG);
	assert_int_equal(l.prob_len[1], 3);
	assert_int_equal(l.prob_dropped[1], 24);
	assert_int_equal(l.npkt, 1);
	/* transfer_end was set: the very next transfer decodes */
	n = rx_packet(t1, 10, 10, 0x33);
	assert_int_equal(mux_rx_feed(&rx, t1, n, true, &rx_cbs, &l), 0);
	assert_int_equal(l.npkt, 2);
	assert_int_equal(l.pkt_first[1], 0x33);

	/* in range but too long: it swallows the rest of its transfer and waits
	 * (a device may end transfers inside a packet); the next transfer starts
	 * a packet of its own, so the held one is reported with its announced
	 * length and the bytes lost, and the new one decodes */
	n = rx_packet(t3, 3000, 40, 0x44);
	assert_int_equal(mux_rx_feed(&rx, t3, n, false, &rx_cbs, &l), 0);
	assert_int_equal(mux_rx_pending(&rx), 40);
	n = rx_packet(t3, 20, 20, 0x55); /* a real packet, eaten as body */
	assert_int_equal(mux_rx_feed(&rx, t3, n, true, &rx_cbs, &l), 0);
	assert_int_equal(l.nprob, 2);
	assert_int_equal(mux_rx_pending(&rx), 60);
	assert_int_equal(mux_rx_announced(&rx), 3000);
	n = rx_packet(t3, 9, 9, 0x66);
	assert_int_equal(mux_rx_feed(&rx, t3, n, true, &rx_cbs, &l), 0);
	assert_int_equal(l.nprob, 3);
	assert_int_equal(l.prob_err[2], LP_ETRUNC);
	assert_int_equal(l.prob_len[2], 3000);
	assert_int_equal(l.prob_dropped[2], 60);
	assert_int_equal(mux_rx_pending(&rx), 0);
	assert_int_equal(l.npkt, 3);
	assert_int_equal(l.pkt_first[2], 0x66);

	/* in range but too short: the packet is cut at the claimed length and
	 * the tail is read as the next header (here under the header size: the
	 * bad-length rule drops it) */
	n = rx_packet(t1, 9, 14, 0x77);
	assert_int_equal(mux_rx_feed(&rx, t1, n, true, &rx_cbs, &l), 0);
	assert_int_equal(l.npkt, 4);
	assert_int_equal(l.pkt_len[3], 9);
	assert_true(l.nprob >= 4);

	/* a header split across transfers with a bad length */
	struct rxlog l2 = {0};
	mux_rx_reset(&rx);
	n = rx_packet(t1, 0xfffffff0u, 16, 0x88);
	assert_int_equal(mux_rx_feed(&rx, t1, 5, false, &rx_cbs, &l2), 0);
	assert_int_equal(mux_rx_feed(&rx, t1 + 5, n - 5, true, &rx_cbs, &l2), 0);
	assert_int_equal(l2.nprob, 1);
	assert_int_equal(l2.prob_err[0], LP_ETOOBIG);
	assert_int_equal(l2.prob_dropped[0], 16);
	n = rx_packet(t1, 12, 12, 0x99);
	assert_int_equal(mux_rx_feed(&rx, t1, n, true, &rx_cbs, &l2), 0);
	assert_int_equal(l2.npkt, 1);
	mux_rx_reset(&rx);
}

/* Issue 10: every packet to a closed port is answered with RST, so one
 * 16 KiB IN transfer of 36-byte packets queues 455 answers. A device that
 * keeps sending while nobody takes the answers must hit a cap, not grow
 * host memory: LP_EPROTO, sticky, with the queue bounded. */
static size_t flood_transfer(uint8_t *buf, size_t cap, uint16_t *tx_seq)
{
	size_t off = 0;

	while (cap - off >= 36) {
		uint8_t *q = buf + off;

		memset(q, 0, 36);
		q[3] = MUX_PROTO_TCP;
		q[7] = 36;
		q[8] = 0xFE, q[9] = 0xED, q[10] = 0xFA, q[11] = 0xCE;
		q[12] = (uint8_t)(*tx_seq >> 8), q[13] = (uint8_t)*tx_seq;
		(*tx_seq)++;
		q[16] = 0xF2, q[17] = 0x7E; /* sport 62078 */
		q[18] = 0x11, q[19] = 0x5C; /* dport 4444: nothing open there */
		q[28] = 0x50;
		q[29] = MUX_TH_ACK;
		q[30] = 0x02;
		off += 36;
	}
	return off;
}

static void test_out_queue_cap(void **state)
{
	struct pair *p = pair_new();
	uint8_t *buf = malloc(IN_BUF), *pkt;
	uint16_t seq = 0x100;
	size_t len, n, bytes, queued_max = 0;
	int rc = 0, transfers = 0;
	uint32_t c;

	assert_non_null(buf);
	negotiate(p);
	n = flood_transfer(buf, IN_BUF, &seq);
	assert_int_equal(n / 36, 455);
	/* drained after every transfer: no limit reached however long it goes */
	for (int i = 0; i < 50; i++) {
		assert_int_equal(mux_feed(p->host.m, buf, n, true), 0);
		assert_int_equal(mux_out_queued(p->host.m, NULL), 455);
		while (mux_out_take(p->host.m, &pkt, &len) == 0)
			free(pkt);
		flood_transfer(buf, IN_BUF, &seq);
	}
	/* never drained: stops at the cap */
	while (transfers < 100 && (rc = mux_feed(p->host.m, buf, n, true)) == 0) {
		transfers++;
		if (mux_out_queued(p->host.m, NULL) > queued_max)
			queued_max = mux_out_queued(p->host.m, NULL);
		flood_transfer(buf, IN_BUF, &seq);
	}
	assert_int_equal(rc, LP_EPROTO);
	assert_int_equal(transfers, MUX_OUTQ_MAX_PACKETS / 455);
	assert_true(mux_out_queued(p->host.m, &bytes) <= MUX_OUTQ_MAX_PACKETS);
	assert_true(bytes <= MUX_OUTQ_MAX_BYTES);
	assert_int_equal(p->host.last_anomaly, LP_EPROTO);
	assert_int_equal(mux_error(p->host.m), LP_EPROTO);
	/* sticky: the codec is dead */
	assert_int_equal(mux_feed(p->host.m, buf, n, true), LP_EPROTO);
	assert_int_equal(mux_connect(p->host.m, 1234, &c), LP_EPROTO);
	free(buf);
	pair_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worked_example_bytes),
		cmocka_unit_test(test_v2_negotiation),
		cmocka_unit_test(test_v1_fallback),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_data_both_ways),
		cmocka_unit_test(test_megabyte_window),
		cmocka_unit_test(test_segmentation_mtu),
		cmocka_unit_test(test_several_connections),
		cmocka_unit_test(test_close_by_rst),
		cmocka_unit_test(test_split_transfers),
		cmocka_unit_test(test_partial_at_transfer_end),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_bad_flags_teardown),
		cmocka_unit_test(test_ack_rules),
		cmocka_unit_test(test_control),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_rx_lying_lengths),
		cmocka_unit_test(test_out_queue_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
