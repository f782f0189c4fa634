/* test_hostlink.c - the host link over the sim transport against a tiny
 * device model written here as a personality on the device core: two configurations (1: PTP only, 2: PTP +
 * usbmux ff/fe/02 on 0x04/0x85), strings, a device-role mux codec with an
 * echo service, a service that sends 1 MiB on accept, and one that answers
 * once and resets. Virtual clock, so timeouts cost no wall time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/hostlink.h"
#include "proto/mux.h"
#include "src/base/lp_clock.h"
#include "src/base/lp_error.h"
#include "src/device/devcore.h"
#include "usb/tr_sim.h"
#include "usb/transport.h"
#include "usb/usb_desc.h"

#define PORT_ECHO 1234
#define PORT_BIG 5000
#define PORT_ONCE 7777
#define BIG_LEN (1u << 20)
#define SERIAL "00008030001A2B3C4D5E6F70"

/* A personality on the device core (src/device/devcore.h): the core does the
 * descriptors, chapter 9, the usbmux device role and the IN queue. */
struct model {
	struct devcore *dc;
	bool attached;
	bool mute;  /* never answer VERSION */
	bool flood; /* once usbmux is up: IN floods tiny packets, OUT NAKs */
	uint16_t flood_seq;
	unsigned flood_xfers;
	bool usbmux; /* offer configuration 2 */
	uint32_t major;
	uint8_t *big;
	int accepts, closes, set_configs;
	uint64_t anomalies; /* of codecs already replaced */
};

static void m_accept(void *ud, uint32_t conn, uint16_t port, uint64_t now)
{
	struct model *m = ud;

	m->accepts++;
	if (port == PORT_BIG)
		assert_int_equal(devcore_send(m->dc, conn, m->big, BIG_LEN, 0), 0);
}

static void m_data(void *ud, uint32_t conn, const uint8_t *data, size_t len, uint64_t now)
{
	struct model *m = ud;
	uint16_t port = mux_conn_port(devcore_mux(m->dc), conn);

	if (port == PORT_ECHO) {
		assert_int_equal(devcore_send(m->dc, conn, data, len, 0), 0);
	} else if (port == PORT_ONCE) {
		assert_int_equal(devcore_send(m->dc, conn, (const uint8_t *)"bye", 3, 0), 0);
		devcore_close(m->dc, conn);
	}
}

static void m_close(void *ud, uint32_t conn, uint64_t now)
{
	struct model *m = ud;
	m->closes++;
}

static void m_reset(void *ud, bool bus, uint64_t now)
{
	struct model *m = ud;
	struct mux *mx = devcore_mux(m->dc);

	if (mx) {
		struct mux_stats st;
		mux_get_stats(mx, &st);
		m->anomalies += st.anomalies;
	}
}

static void m_configured(void *ud, uint8_t config, uint64_t now)
{
	struct model *m = ud;

	m->set_configs++;
	devcore_set_mux_version(m->dc, m->major ? m->major : 2);
	devcore_listen(m->dc, PORT_ECHO);
	devcore_listen(m->dc, PORT_BIG);
	devcore_listen(m->dc, PORT_ONCE);
}

static bool m_attached(void *ud, uint64_t now)
{
	struct model *m = ud;
	return m->attached;
}

static bool m_filter(void *ud, const uint8_t *data, size_t len, uint64_t now)
{
	struct model *m = ud;

	return !(m->mute && len >= 4 && data[3] == MUX_PROTO_VERSION);
}

/* 455 empty ACKs to host ports nobody opened in one 16 380-byte transfer:
 * a host answers each with a RST, and the device takes none of them. */
#define FLOOD_PKTS 455
static void m_in_poll(void *ud, uint64_t now)
{
	struct model *m = ud;
	struct mux *mx = devcore_mux(m->dc);
	uint8_t buf[FLOOD_PKTS * 36];

	if (!m->flood || !mx || !mux_active(mx))
		return;
	memset(buf, 0, sizeof(buf));
	for (unsigned i = 0; i < FLOOD_PKTS; i++) {
		uint8_t *p = buf + i * 36;
		uint16_t seq = m->flood_seq++;

		p[3] = MUX_PROTO_TCP;
		p[7] = 36;
		memcpy(p + 8, "\xfe\xed\xfa\xce", 4);
		p[12] = (uint8_t)(seq >> 8);
		p[13] = (uint8_t)seq;
		p[14] = p[15] = 0xff;
		p[16] = 0x12; /* sport 4660 */
		p[17] = 0x34;
		p[18] = (uint8_t)(0x80 | i >> 8); /* dport 0x8000 + i: never opened */
		p[19] = (uint8_t)i;
		p[28] = 0x50;
		p[29] = 0x10; /* ACK */
		p[30] = 0x02;
	}
	if (devcore_in_queue(m->dc, 0x85, buf, sizeof(buf), true) == 0)
		m->flood_xfers++;
}

static enum devmodel_ep m_bulk_state(void *ud, uint8_t ep, uint64_t now)
{
	struct model *m = ud;
	struct mux *mx = devcore_mux(m->dc);

	if (m->flood && mx && mux_active(mx) && !(ep & 0x80))
		return DEVMODEL_EP_NAK;
	return DEVMODEL_EP_READY;
}

static const struct devcore_personality model_pers = {
	.in_poll = m_in_poll,
	.bulk_state = m_bulk_state,
	.attached = m_attached,
	.reset = m_reset,
	.configured = m_configured,
	.filter_out = m_filter,
	.accept = m_accept,
	.data = m_data,
	.closed = m_close,
};

/* Two configurations (1: PTP only, 2: PTP + usbmux ff/fe/02 on 0x04/0x85) or
 * only the first, and three strings. */
static void m_init(struct model *m)
{
	static const char *const s[] = {NULL, "Apple Inc.", "iPhone", SERIAL};
	struct usbd_device d = {
		.bcdUSB = 0x0200,
		.idVendor = 0x05ac,
		.idProduct = 0x12a8,
		.bcdDevice = 0x0804,
		.bMaxPacketSize0 = 64,
		.iManufacturer = 1,
		.iProduct = 2,
		.iSerialNumber = 3,
		.bNumConfigurations = (uint8_t)(m->usbmux ? 2 : 1),
	};
	uint8_t buf[USBD_CONFIG_MAX_TOTAL];
	int n;

	m->dc = devcore_new(&model_pers, m, NULL);
	assert_non_null(m->dc);
	n = usbd_encode_device(&d, buf, sizeof(buf));
	assert_int_equal(devcore_set_device(m->dc, buf, (size_t)n), 0);
	for (int idx = 0; idx < (m->usbmux ? 2 : 1); idx++) {
		struct usbd_config c;

		memset(&c, 0, sizeof(c));
		c.bConfigurationValue = (uint8_t)(idx + 1);
		c.bmAttributes = 0xC0;
		c.bMaxPower = 250;
		usbd_bulk_interface(&c.iface[0], 0, 6, 1, 1, 0x02, 0x81, 512);
		c.num_ifaces = 1;
		if (idx == 1) {
			usbd_bulk_interface(&c.iface[1], 1, USBMUX_CLASS, USBMUX_SUBCLASS,
					    USBMUX_PROTOCOL, 0x04, 0x85, 512);
			c.num_ifaces = 2;
		}
		n = usbd_encode_config(&c, buf, sizeof(buf));
		assert_true(n > 0);
		assert_int_equal(devcore_add_config(m->dc, buf, (size_t)n, NULL, 0), 0);
	}
	for (uint8_t i = 1; i < 4; i++)
		assert_int_equal(devcore_set_string(m->dc, i, s[i]), 0);
}

struct fx {
	struct lp_clock clock;
	struct lp_rand rand;
	struct model m;
	struct tr_sim_arg arg;
	struct tr_ctx *ctx;
	struct tr_devinfo info;
	struct hl_link *hl;
};

static struct fx *fx_new(bool usbmux, uint32_t major, uint64_t disconnect_at)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct tr_env env;
	size_t n = 0;

	assert_non_null(f);
	lp_clock_init_virtual(&f->clock, 1700000000ull * LP_NS_PER_S);
	lp_rand_seed(&f->rand, 7);
	f->m.attached = true;
	f->m.usbmux = usbmux;
	f->m.major = major;
	f->m.big = malloc(BIG_LEN);
	assert_non_null(f->m.big);
	for (size_t i = 0; i < BIG_LEN; i++)
		f->m.big[i] = (uint8_t)(i * 7 + (i >> 11));
	m_init(&f->m);
	f->arg.ops = &devcore_model_ops;
	f->arg.model = devcore_model(f->m.dc);
	f->arg.link.speed = TR_SPEED_HIGH;
	f->arg.link.latency_ns = 50 * LP_NS_PER_US;
	f->arg.link.disconnect_at_ns = disconnect_at;
	f->arg.link.reenum_gap_ns = LP_NS_PER_S;
	memset(&env, 0, sizeof(env));
	env.clock = &f->clock;
	env.rand = &f->rand;
	assert_int_equal(tr_ctx_new(&tr_sim_ops, &env, &f->arg, &f->ctx, NULL), 0);
	assert_int_equal(tr_list(f->ctx, &f->info, 1, &n, NULL), 0);
	assert_int_equal(n, 1);
	return f;
}

static void fx_free(struct fx *f)
{
	hl_close(f->hl);
	tr_ctx_free(f->ctx);
	devcore_free(f->m.dc);
	free(f->m.big);
	free(f);
}

static uint64_t dl(struct fx *f, uint64_t ms)
{
	return lp_clock_deadline_ms(&f->clock, ms);
}

static void open_link(struct fx *f)
{
	struct lp_errinfo e = {0};
	int rc = hl_open(f->ctx, &f->info, NULL, &f->hl, &e);

	if (rc)
		fail_msg("hl_open: %s: %s", lp_errname(rc), e.msg);
}

/* --------------------------------------------------------------------------- */

static void test_probe(void **state)
{
	struct fx *f = fx_new(true, 2, 0);
	struct usbd_probe p;
	struct lp_errinfo e = {0};

	assert_int_equal(usbd_probe(f->ctx, &f->info, &p, &e), 0);
	assert_string_equal(p.manufacturer, "Apple Inc.");
	assert_string_equal(p.product, "iPhone");
	assert_string_equal(p.serial, SERIAL);
	assert_string_equal(p.udid, "00008030-001A2B3C4D5E6F70");
	assert_int_equal(p.dev.idVendor, 0x05ac);
	assert_int_equal(p.num_configs, 2);
	assert_int_equal(p.config_errors, 0);
	assert_true(p.has_usbmux);
	assert_int_equal(p.usbmux_config, 2);
	assert_int_equal(p.usbmux_iface, 1);
	assert_int_equal(p.ep_in, 0x85);
	assert_int_equal(p.ep_out, 0x04);
	assert_int_equal(p.mps, 512);
	assert_int_equal(p.speed, TR_SPEED_HIGH);
	/* device, 2 x (header + full), string 0, 3 strings */
	assert_int_equal(p.num_rtt, 9);
	for (size_t i = 0; i < p.num_rtt; i++)
		assert_true(p.ctrl_rtt_ns[i] > 0);
	assert_true(p.desc_ns >= p.ctrl_rtt_ns[0] * 9 / 2);
	/* probing does not configure the device */
	assert_int_equal(f->m.set_configs, 0);
	fx_free(f);
}

static void test_no_usbmux(void **state)
{
	struct fx *f = fx_new(false, 2, 0);
	struct usbd_probe p;
	struct lp_errinfo e = {0};

	assert_int_equal(usbd_probe(f->ctx, &f->info, &p, NULL), 0);
	assert_false(p.has_usbmux);
	assert_int_equal(p.num_configs, 1);
	assert_int_equal(hl_open(f->ctx, &f->info, NULL, &f->hl, &e), LP_EUNSUPPORTED);
	assert_null(f->hl);
	assert_non_null(strstr(e.msg, "usbmux"));
	fx_free(f);
}

static void test_open_echo(void **state)
{
	struct fx *f = fx_new(true, 2, 0);
	struct lp_stream *s;
	struct lp_errinfo e = {0};
	uint8_t buf[64], *big, *back;
	size_t got = 0;
	struct hl_stats st;

	open_link(f);
	assert_int_equal(devcore_config(f->m.dc),
			 2); /* the link selected the usbmux configuration */
	assert_int_equal(hl_mux_version(f->hl), 2);
	assert_true(mux_active(devcore_mux(f->m.dc))); /* the device saw SETUP */
	assert_int_equal(hl_info(f->hl)->ep_out, 0x04);

	assert_int_equal(hl_connect(f->hl, PORT_ECHO, dl(f, 1000), &s, &e), 0);
	assert_int_equal(lp_stream_send(s, (const uint8_t *)"hello", 5, dl(f, 1000), &e), 0);
	assert_int_equal(lp_stream_read_full(s, buf, 5, dl(f, 1000), &e), 0);
	assert_memory_equal(buf, "hello", 5);

	/* 1 MiB through the echo, byte-exact, windowed both ways */
	big = malloc(BIG_LEN);
	back = malloc(BIG_LEN);
	for (size_t i = 0; i < BIG_LEN; i++)
		big[i] = (uint8_t)(i ^ (i >> 9));
	assert_int_equal(lp_stream_send(s, big, BIG_LEN, dl(f, 10000), &e), 0);
	assert_int_equal(lp_stream_read_full(s, back, BIG_LEN, dl(f, 10000), &e), 0);
	assert_memory_equal(back, big, BIG_LEN);
	free(big);
	free(back);

	/* nothing more to read: the deadline bounds the wait */
	assert_int_equal(lp_stream_recv(s, buf, sizeof(buf), &got, dl(f, 50), &e), LP_ETIMEDOUT);

	hl_get_stats(f->hl, &st);
	assert_true(st.zlps > 0); /* 49152-byte packets are multiples of 512 */
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.mux.anomalies, 0);
	assert_true(st.bytes_in > BIG_LEN && st.bytes_out > BIG_LEN);
	{
		struct mux_stats ds;
		mux_get_stats(devcore_mux(f->m.dc), &ds);
		/* every host packet reached the device as its own transfer */
		assert_int_equal(ds.anomalies + f->m.anomalies, 0);
	}
	lp_stream_close(s);
	assert_int_equal(hl_pump(f->hl, dl(f, 10)), 0);
	assert_int_equal(f->m.closes, 1); /* stream close sent RST */
	fx_free(f);
}

static void test_refused(void **state)
{
	struct fx *f = fx_new(true, 2, 0);
	struct lp_stream *s = NULL;
	struct lp_errinfo e = {0};

	open_link(f);
	assert_int_equal(hl_connect(f->hl, 9, dl(f, 1000), &s, &e), LP_ECONNREFUSED);
	assert_null(s);
	assert_int_equal(e.code, LP_ECONNREFUSED);
	/* the link is still fine */
	assert_int_equal(hl_connect(f->hl, PORT_ECHO, dl(f, 1000), &s, &e), 0);
	lp_stream_close(s);
	fx_free(f);
}

static void test_v1_device(void **state)
{
	struct fx *f = fx_new(true, 1, 0);
	struct lp_stream *s;
	uint8_t buf[8];

	open_link(f);
	assert_int_equal(hl_mux_version(f->hl), 1);
	assert_int_equal(hl_connect(f->hl, PORT_ECHO, dl(f, 1000), &s, NULL), 0);
	assert_int_equal(lp_stream_send(s, (const uint8_t *)"v1!", 3, dl(f, 1000), NULL), 0);
	assert_int_equal(lp_stream_read_full(s, buf, 3, dl(f, 1000), NULL), 0);
	assert_memory_equal(buf, "v1!", 3);
	lp_stream_close(s);
	fx_free(f);
}

static void test_device_sends_big(void **state)
{
	struct fx *f = fx_new(true, 2, 0);
	struct lp_stream *s;
	uint8_t *buf = malloc(BIG_LEN);

	open_link(f);
	assert_int_equal(hl_connect(f->hl, PORT_BIG, dl(f, 1000), &s, NULL), 0);
	assert_int_equal(lp_stream_read_full(s, buf, BIG_LEN, dl(f, 10000), NULL), 0);
	assert_memory_equal(buf, f->m.big, BIG_LEN);
	free(buf);
	lp_stream_close(s);
	fx_free(f);
}

/* A device that ends its IN transfers in the middle of usbmux packets, at
 * odd sizes and at multiples of the packet size (then with a ZLP): every
 * packet is put together by its header's length, byte-exact, with no
 * anomaly - in both directions of an echo, and for 1 MiB sent by the device. */
static void test_in_split(void **state)
{
	static const size_t splits[] = {7, 333, 512, 700, 4096, 16383};

	for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
		struct fx *f = fx_new(true, 2, 0);
		struct lp_stream *s;
		struct lp_errinfo e = {0};
		struct hl_stats st;
		uint8_t buf[64], *big = malloc(BIG_LEN);

		devcore_set_in_split(f->m.dc, splits[i]);
		open_link(f);
		assert_int_equal(hl_connect(f->hl, PORT_ECHO, dl(f, 1000), &s, &e), 0);
		assert_int_equal(
			lp_stream_send(s, (const uint8_t *)"hello, split", 12, dl(f, 1000), &e), 0);
		assert_int_equal(lp_stream_read_full(s, buf, 12, dl(f, 1000), &e), 0);
		assert_memory_equal(buf, "hello, split", 12);
		lp_stream_close(s);
		if (splits[i] >= 333) {
			assert_int_equal(hl_connect(f->hl, PORT_BIG, dl(f, 1000), &s, NULL), 0);
			assert_int_equal(lp_stream_read_full(s, big, BIG_LEN, dl(f, 60000), &e), 0);
			assert_memory_equal(big, f->m.big, BIG_LEN);
			lp_stream_close(s);
		}
		hl_get_stats(f->hl, &st);
		assert_int_equal(st.mux.anomalies, 0);
		if (!st.mux.reassembled)
			fail_msg("split %zu: nothing reassembled", splits[i]);
		free(big);
		fx_free(f);
	}
}

/* A packet whose header announces more than the device ever sends: the
 * wait ends in a protocol error whose evidence names both lengths - not a
 * timeout, which would read as a USB/cable fault. */
static void test_unfinished_packet(void **state)
{
	struct fx *f = fx_new(true, 2, 0);
	struct lp_stream *s;
	struct lp_errinfo e = {0};
	uint8_t pkt[100] = {0, 0, 0, MUX_PROTO_TCP, 0, 0, 0x03, 0xe8, 0xFE, 0xED, 0xFA, 0xCE};
	uint8_t buf[8];
	size_t got = 0;

	open_link(f);
	assert_int_equal(hl_connect(f->hl, PORT_ECHO, dl(f, 1000), &s, &e), 0);
	memset(pkt + 16, 0x41, sizeof(pkt) - 16);
	assert_int_equal(devcore_in_queue(f->m.dc, 0x85, pkt, sizeof(pkt), true), 0);
	assert_int_equal(lp_stream_recv(s, buf, sizeof(buf), &got, dl(f, 500), &e), LP_EPROTO);
	assert_non_null(strstr(e.msg, "announced as 1000 bytes stopped after 100"));
	assert_non_null(strstr(hl_why(f->hl), "cannot be reassembled"));
	lp_stream_close(s);
	fx_free(f);
}

static void test_device_resets(void **state)
{
	struct fx *f = fx_new(true, 2, 0);
	struct lp_stream *s;
	uint8_t buf[8];
	size_t got = 0;

	open_link(f);
	assert_int_equal(hl_connect(f->hl, PORT_ONCE, dl(f, 1000), &s, NULL), 0);
	assert_int_equal(lp_stream_send(s, (const uint8_t *)"hi", 2, dl(f, 1000), NULL), 0);
	/* the reply that came before the RST is still delivered */
	assert_int_equal(lp_stream_read_full(s, buf, 3, dl(f, 1000), NULL), 0);
	assert_memory_equal(buf, "bye", 3);
	assert_int_equal(lp_stream_recv(s, buf, sizeof(buf), &got, dl(f, 1000), NULL), LP_ECLOSED);
	assert_int_equal(lp_stream_send(s, (const uint8_t *)"x", 1, dl(f, 1000), NULL), LP_ECLOSED);
	lp_stream_close(s);
	fx_free(f);
}

static void test_version_timeout(void **state)
{
	struct fx *f = fx_new(true, 2, 0);
	struct lp_errinfo e = {0};
	uint64_t t0 = lp_clock_now(&f->clock);
	struct hl_opts o = {.version_timeout_ms = 500};

	f->m.mute = true;
	assert_int_equal(hl_open(f->ctx, &f->info, &o, &f->hl, &e), LP_ETIMEDOUT);
	assert_null(f->hl);
	assert_non_null(strstr(e.msg, "VERSION"));
	assert_true(lp_clock_now(&f->clock) - t0 >= 500 * LP_NS_PER_MS);
	assert_true(lp_clock_now(&f->clock) - t0 < 3 * LP_NS_PER_S);
	/* the device is free again afterwards: a normal open works */
	f->m.mute = false;
	open_link(f);
	fx_free(f);
}

static void test_disconnect(void **state)
{
	/* unplugged 2 s into the session */
	struct fx *f = fx_new(true, 2, 2 * LP_NS_PER_S);
	struct lp_stream *s;
	struct lp_errinfo e = {0};
	uint8_t buf[8];
	size_t got = 0;

	open_link(f);
	assert_int_equal(hl_connect(f->hl, PORT_ECHO, dl(f, 1000), &s, NULL), 0);
	assert_int_equal(lp_stream_recv(s, buf, sizeof(buf), &got, dl(f, 5000), &e), LP_ENODEV);
	assert_true(hl_dead(f->hl));
	assert_int_equal(hl_pump(f->hl, dl(f, 10)), LP_ENODEV);
	assert_int_equal(lp_stream_send(s, (const uint8_t *)"x", 1, dl(f, 100), NULL), LP_ENODEV);
	{
		struct lp_stream *s2;
		assert_int_equal(hl_connect(f->hl, PORT_ECHO, dl(f, 100), &s2, NULL), LP_ENODEV);
	}
	lp_stream_close(s);
	fx_free(f);
}

/* Failed transfers are counted and returned once; the link carries on. */
static void test_transfer_errors(void **state)
{
	struct fx *f = fx_new(true, 2, 0);
	struct tr_faults fa = {
		.error_rate = 1.0, .error_status = TR_STATUS_ERROR, .only_endpoint = 0x85};
	struct lp_stream *s, *s2;
	struct hl_stats st;
	uint8_t buf[8];
	size_t got = 0;

	open_link(f);
	assert_int_equal(hl_connect(f->hl, PORT_ECHO, dl(f, 1000), &s, NULL), 0);
	tr_set_faults(f->ctx, &fa);
	assert_int_equal(lp_stream_send(s, (const uint8_t *)"abc", 3, dl(f, 1000), NULL), 0);
	assert_int_equal(lp_stream_recv(s, buf, sizeof(buf), &got, dl(f, 1000), NULL), LP_EUSB);
	hl_get_stats(f->hl, &st);
	assert_int_equal(st.errors, 1);
	assert_int_equal(st.last_error, LP_EUSB);
	tr_set_faults(f->ctx, NULL);
	/* reported once: the link is usable, a new connection works */
	assert_false(hl_dead(f->hl));
	assert_int_equal(hl_connect(f->hl, PORT_ECHO, dl(f, 1000), &s2, NULL), 0);
	assert_int_equal(lp_stream_send(s2, (const uint8_t *)"ok", 2, dl(f, 1000), NULL), 0);
	assert_int_equal(lp_stream_read_full(s2, buf, 2, dl(f, 1000), NULL), 0);
	assert_memory_equal(buf, "ok", 2);
	/* the first connection lost the echo: its next bytes are out of
	 * sequence and the host resets it rather than deliver a gap */
	assert_int_equal(lp_stream_send(s, (const uint8_t *)"d", 1, dl(f, 1000), NULL), 0);
	assert_int_equal(lp_stream_recv(s, buf, sizeof(buf), &got, dl(f, 1000), NULL), LP_EPROTO);
	lp_stream_close(s);
	lp_stream_close(s2);

	/* an OUT stall is returned by the send that hit it */
	assert_int_equal(hl_connect(f->hl, PORT_ECHO, dl(f, 1000), &s, NULL), 0);
	fa.only_endpoint = 0x04;
	fa.error_status = TR_STATUS_STALL;
	tr_set_faults(f->ctx, &fa);
	assert_int_equal(lp_stream_send(s, (const uint8_t *)"abc", 3, dl(f, 1000), NULL),
			 LP_ESTALL);
	tr_set_faults(f->ctx, NULL);
	hl_get_stats(f->hl, &st);
	assert_int_equal(st.last_error, LP_ESTALL);
	lp_stream_close(s);
	fx_free(f);
}

struct obs_log {
	int opens, closes;
	size_t up, down;
	uint16_t sport, dport;
};

static void obs(void *ud, uint32_t conn, uint16_t sport, uint16_t dport, int dir,
		const uint8_t *data, size_t len, int event)
{
	struct obs_log *o = ud;

	o->sport = sport;
	o->dport = dport;
	if (event == 1)
		o->opens++;
	else if (event == 2)
		o->closes++;
	else if (dir == 0)
		o->up += len;
	else
		o->down += len;
}

static void test_observer_and_close(void **state)
{
	struct fx *f = fx_new(true, 2, 0);
	struct obs_log o = {0};
	struct lp_stream *s;
	uint8_t buf[16];

	open_link(f);
	hl_set_stream_observer(f->hl, obs, &o);
	assert_int_equal(hl_connect(f->hl, PORT_ECHO, dl(f, 1000), &s, NULL), 0);
	assert_int_equal(lp_stream_send(s, (const uint8_t *)"0123456789", 10, dl(f, 1000), NULL),
			 0);
	assert_int_equal(lp_stream_read_full(s, buf, 10, dl(f, 1000), NULL), 0);
	assert_int_equal(o.opens, 1);
	assert_int_equal(o.up, 10);
	assert_int_equal(o.down, 10);
	assert_int_equal(o.sport, 1);
	assert_int_equal(o.dport, PORT_ECHO);
	/* the link closes under an open stream: the stream stays safe to use */
	hl_close(f->hl);
	f->hl = NULL;
	assert_int_equal(o.closes, 1);
	assert_int_equal(lp_stream_send(s, (const uint8_t *)"x", 1, dl(f, 100), NULL), LP_ENODEV);
	lp_stream_close(s);
	fx_free(f);
}

/* A device that floods IN with packets each needing an answer, and takes
 * none of our OUT transfers: the host's queue stays under its cap and the
 * link ends LP_EPROTO long before the deadline - not memory growing until
 * the deadline (issue 10; a regression test for the usbmux queue cap). */
static void test_in_flood(void **state)
{
	struct fx *f = fx_new(true, 2, 0);
	uint64_t t0, deadline;
	struct hl_stats st;
	size_t bytes = 0, queued;
	int rc = 0;

	open_link(f);
	f->m.flood = true;
	t0 = lp_clock_now(&f->clock);
	deadline = dl(f, 60000);
	while (lp_clock_now(&f->clock) < deadline) {
		rc = hl_pump(f->hl, dl(f, 100));
		queued = mux_out_queued(hl_mux(f->hl), &bytes);
		assert_true(queued <= MUX_OUTQ_MAX_PACKETS);
		if (rc)
			break;
	}
	assert_int_equal(rc, LP_EPROTO);
	/* a second or so of virtual time, not the minute of the deadline */
	assert_true(lp_clock_now(&f->clock) - t0 < 5 * LP_NS_PER_S);
	hl_get_stats(f->hl, &st);
	assert_true(st.mux.anomalies > 0);
	/* it read a few flood transfers and then stopped reading */
	assert_true(f->m.flood_xfers >= 4);
	assert_true(st.xfers_in < 64);
	/* the link stays failed: nothing more is read or queued */
	queued = mux_out_queued(hl_mux(f->hl), &bytes);
	assert_int_equal(hl_pump(f->hl, dl(f, 1000)), LP_EPROTO);
	assert_int_equal(mux_out_queued(hl_mux(f->hl), NULL), queued);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_no_usbmux),
		cmocka_unit_test(test_open_echo),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_v1_device),
		cmocka_unit_test(test_device_sends_big),
		cmocka_unit_test(test_in_split),
		cmocka_unit_test(test_unfinished_packet),
		cmocka_unit_test(test_device_resets),
		cmocka_unit_test(test_version_timeout),
		cmocka_unit_test(test_disconnect),
		cmocka_unit_test(test_transfer_errors),
		cmocka_unit_test(test_observer_and_close),
		cmocka_unit_test(test_in_flood),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
