/* bench_model.h - shared by the benchmarks and gen_capture: a small USB device
 * model behind the sim transport (usb/tr_sim.h) and the host stack driven
 * through it (hostlink -> transport core -> sim backend -> this model).
 *
 * The model is a personality on the device core (src/device/devcore.h: the
 * descriptors, chapter 9, the usbmux device role, the IN queue and its ZLP
 * rule are the simulated iPhone's own code), reduced to what a bulk
 * benchmark needs: 05ac:12a8,
 * one configuration with a PTP interface (0x02/0x81) and the usbmux interface
 * ff/fe/02 on bulk OUT 0x04 / IN 0x85 (wMaxPacketSize 512), and a device-role
 * mux codec (proto/mux.h, default device MTU) with two services:
 *   BM_PORT_DISCARD  counts and drops what the host sends;
 *   BM_PORT_SOURCE   sends `source_len` bytes on every accepted connection,
 *                    topped up from a pattern as the send queue drains (the
 *                    mux send queue is capped, MUX_SENDQ_MAX).
 * Every mux packet is one device transfer, with a ZLP when its length is a
 * multiple of 512 (as the simulated iPhone, src/device/simdev.h).
 *
 * Not a library: everything is static, one copy per tool. Tools in
 * tools/bench may print; the model never does (failures are counted in
 * bm_model.fail and reported by the caller). Wall time is CLOCK_MONOTONIC read
 * here directly; protocol time is the context's lp_clock (virtual or real). */
#ifndef LP_BENCH_MODEL_H
#define LP_BENCH_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/hostlink.h"
#include "proto/mux.h"
#include "src/base/lp_clock.h"
#include "src/base/lp_error.h"
#include "src/device/devcore.h"
#include "usb/tr_sim.h"
#include "usb/transport.h"
#include "usb/usb_desc.h"

#define BM_PORT_DISCARD 9
#define BM_PORT_SOURCE 19
#define BM_MPS 512
#define BM_EP_OUT 0x04
#define BM_EP_IN 0x85
#define BM_PATTERN_LEN (512u << 10) /* source top-up unit */
#define BM_CHUNK (1u << 20)	    /* host send/recv size per call */
#define BM_MAX_CONNS 16
#define BM_WAIT_MS 120000 /* bound on every stream call (context clock) */
#define BM_MiB (1024ull * 1024ull)
#define BM_USB2_BULK_MBPS 53.248 /* 13 x 512 B per 125 us microframe, 10^6 B/s */

struct bm_dconn {
	uint32_t id;
	uint16_t port;
	uint64_t left; /* source: bytes still to queue */
};

struct bm_model {
	struct devcore *dc; /* the USB device: descriptors, chapter 9, usbmux, IN queue */
	uint64_t source_len;
	uint64_t discarded;
	struct bm_dconn conns[BM_MAX_CONNS];
	size_t nconns;
	unsigned fail;	    /* model-side failures (mux errors, table full) */
	uint64_t anomalies; /* of codecs already replaced */
};

static uint8_t bm_pattern[BM_PATTERN_LEN];

static inline double bm_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 10^6 bytes per second */
static inline double bm_mbps(uint64_t bytes, double s)
{
	return s > 0 ? (double)bytes / s / 1e6 : 0.0;
}

static void bm_pattern_init(void)
{
	for (size_t i = 0; i < BM_PATTERN_LEN; i++)
		bm_pattern[i] = (uint8_t)(i * 7 + (i >> 11));
}

/* Keep each source connection's send queue between a quarter and a half MiB:
 * enough to fill the window, without copying 64 MiB into the queue at once. */
static void bm_topup(void *ud, uint64_t now)
{
	struct bm_model *m = ud;

	for (size_t i = 0; i < m->nconns; i++) {
		struct bm_dconn *c = &m->conns[i];
		size_t unsent, n;

		if (c->port != BM_PORT_SOURCE || !c->left)
			continue;
		unsent = devcore_unsent(m->dc, c->id);
		if (unsent >= BM_PATTERN_LEN / 2)
			continue;
		n = BM_PATTERN_LEN - unsent;
		if (n > c->left)
			n = (size_t)c->left;
		if (devcore_send(m->dc, c->id, bm_pattern, n, 0)) {
			m->fail++;
			c->left = 0;
			continue;
		}
		c->left -= n;
	}
}

static void bm_accept(void *ud, uint32_t conn, uint16_t port, uint64_t now)
{
	struct bm_model *m = ud;
	struct bm_dconn *c;

	if (m->nconns == BM_MAX_CONNS) {
		m->fail++;
		devcore_close(m->dc, conn);
		return;
	}
	c = &m->conns[m->nconns++];
	c->id = conn;
	c->port = port;
	c->left = port == BM_PORT_SOURCE ? m->source_len : 0;
	bm_topup(m, now);
}

static void bm_data(void *ud, uint32_t conn, const uint8_t *data, size_t len, uint64_t now)
{
	struct bm_model *m = ud;

	if (mux_conn_port(devcore_mux(m->dc), conn) == BM_PORT_DISCARD)
		m->discarded += len;
}

static void bm_close(void *ud, uint32_t conn, uint64_t now)
{
	struct bm_model *m = ud;

	for (size_t i = 0; i < m->nconns; i++) {
		if (m->conns[i].id == conn) {
			m->conns[i] = m->conns[--m->nconns];
			break;
		}
	}
}

/* The codec is about to go: keep its anomaly count. */
static void bm_reset(void *ud, bool bus, uint64_t now)
{
	struct bm_model *m = ud;
	struct mux *mx = devcore_mux(m->dc);

	if (mx) {
		struct mux_stats st;

		mux_get_stats(mx, &st);
		m->anomalies += st.anomalies;
	}
	m->nconns = 0;
}

static void bm_configured(void *ud, uint8_t config, uint64_t now)
{
	struct bm_model *m = ud;

	if (devcore_listen(m->dc, BM_PORT_DISCARD) || devcore_listen(m->dc, BM_PORT_SOURCE))
		m->fail++;
}

static const struct devcore_personality bm_personality = {
	.reset = bm_reset,
	.configured = bm_configured,
	.accept = bm_accept,
	.data = bm_data,
	.closed = bm_close,
	.in_poll = bm_topup,
};

/* The device: 05ac:12a8, one configuration (PTP + usbmux), three strings. */
static int bm_model_init(struct bm_model *m)
{
	static const char *const str[] = {NULL, "Apple Inc.", "iPhone", "00008030001A2B3C4D5E6F70"};
	struct usbd_device d = {
		.bcdUSB = 0x0200,
		.idVendor = 0x05ac,
		.idProduct = 0x12a8,
		.bcdDevice = 0x0804,
		.bMaxPacketSize0 = 64,
		.iManufacturer = 1,
		.iProduct = 2,
		.iSerialNumber = 3,
		.bNumConfigurations = 1,
	};
	struct usbd_config c;
	uint8_t buf[USBD_CONFIG_MAX_TOTAL];
	int n, rc;

	m->dc = devcore_new(&bm_personality, m, NULL);
	if (!m->dc)
		return LP_ENOMEM;
	n = usbd_encode_device(&d, buf, sizeof(buf));
	rc = n < 0 ? n : devcore_set_device(m->dc, buf, (size_t)n);
	memset(&c, 0, sizeof(c));
	c.bConfigurationValue = 1;
	c.bmAttributes = 0xC0;
	c.bMaxPower = 250;
	usbd_bulk_interface(&c.iface[0], 0, 6, 1, 1, 0x02, 0x81, BM_MPS);
	usbd_bulk_interface(&c.iface[1], 1, USBMUX_CLASS, USBMUX_SUBCLASS, USBMUX_PROTOCOL,
			    BM_EP_OUT, BM_EP_IN, BM_MPS);
	c.num_ifaces = 2;
	n = usbd_encode_config(&c, buf, sizeof(buf));
	if (!rc)
		rc = n < 0 ? n : devcore_add_config(m->dc, buf, (size_t)n, NULL, 0);
	for (uint8_t i = 1; i < 4 && !rc; i++)
		rc = devcore_set_string(m->dc, i, str[i]);
	return rc;
}

/* ---------------------------------------------------------------------------
 * Host side
 */

struct bm_fx {
	struct lp_clock clock;
	struct lp_rand rand;
	struct bm_model m;
	struct tr_sim_arg arg;
	struct tr_ctx *ctx;
	struct tr_devinfo info;
	struct hl_link *hl;
};

struct bm_result {
	uint64_t bytes; /* payload bytes through the streams */
	double wall_s;	/* CLOCK_MONOTONIC */
	double clock_s; /* the context's clock (virtual: modelled time) */
};

/* Create the context on the sim backend and find the device (the caller may
 * attach observers before bm_fx_open_link). link_off: no timing at all. */
static inline int bm_fx_init(struct bm_fx *f, bool link_off, bool virtual_clock)
{
	struct tr_env env;
	struct lp_errinfo e = {0};
	size_t n = 0;
	int rc;

	memset(f, 0, sizeof(*f));
	if (virtual_clock)
		lp_clock_init_virtual(&f->clock, 1700000000ull * LP_NS_PER_S);
	else
		lp_clock_init_real(&f->clock);
	lp_rand_seed(&f->rand, 7);
	rc = bm_model_init(&f->m);
	if (rc) {
		fprintf(stderr, "bench: device model: %s\n", lp_errname(rc));
		return rc;
	}
	f->arg.ops = &devcore_model_ops;
	f->arg.model = devcore_model(f->m.dc);
	f->arg.link.speed = TR_SPEED_HIGH;
	f->arg.link.link_off = link_off;
	f->arg.link.latency_ns = link_off ? 0 : 20 * LP_NS_PER_US;
	memset(&env, 0, sizeof(env));
	env.clock = &f->clock;
	env.rand = &f->rand;
	rc = tr_ctx_new(&tr_sim_ops, &env, &f->arg, &f->ctx, &e);
	if (!rc)
		rc = tr_list(f->ctx, &f->info, 1, &n, &e);
	if (!rc && n != 1)
		rc = LP_ENODEV;
	if (rc)
		fprintf(stderr, "bench: sim transport: %s %s\n", lp_errname(rc), e.msg);
	return rc;
}

static inline int bm_fx_open_link(struct bm_fx *f)
{
	struct lp_errinfo e = {0};
	int rc = hl_open(f->ctx, &f->info, NULL, &f->hl, &e);

	if (rc)
		fprintf(stderr, "bench: hl_open: %s: %s\n", lp_errname(rc), e.msg);
	return rc;
}

static inline void bm_fx_release(struct bm_fx *f)
{
	hl_close(f->hl);
	f->hl = NULL;
	tr_ctx_free(f->ctx);
	f->ctx = NULL;
	devcore_free(f->m.dc);
	f->m.dc = NULL;
}

static inline uint64_t bm_dl(struct bm_fx *f)
{
	return lp_clock_deadline_ms(&f->clock, BM_WAIT_MS);
}

static inline int bm_connect(struct bm_fx *f, uint16_t port, size_t nconns, struct lp_stream **s)
{
	for (size_t i = 0; i < nconns; i++) {
		struct lp_errinfo e = {0};
		int rc = hl_connect(f->hl, port, bm_dl(f), &s[i], &e);

		if (rc) {
			fprintf(stderr, "bench: connect to port %u: %s: %s\n", port, lp_errname(rc),
				e.msg);
			while (i)
				lp_stream_close(s[--i]);
			return rc;
		}
	}
	return 0;
}

static inline void bm_start(struct bm_fx *f, struct bm_result *r, double *w0, uint64_t *c0)
{
	memset(r, 0, sizeof(*r));
	*w0 = bm_mono();
	*c0 = lp_clock_now(&f->clock);
}

static inline void bm_stop(struct bm_fx *f, struct bm_result *r, double w0, uint64_t c0)
{
	r->wall_s = bm_mono() - w0;
	r->clock_s = (double)(lp_clock_now(&f->clock) - c0) / 1e9;
}

/* host->device: `total` bytes split over `nconns` connections to the discard
 * service, sent round robin in BM_CHUNK pieces; done when the device has
 * counted every byte. */
static inline int bm_upload(struct bm_fx *f, size_t nconns, uint64_t total, struct bm_result *r)
{
	struct lp_stream *s[BM_MAX_CONNS];
	uint64_t per = total / nconns, sent[BM_MAX_CONNS] = {0}, base = f->m.discarded;
	static uint8_t buf[BM_CHUNK];
	double w0;
	uint64_t c0;
	int rc;

	memcpy(buf, bm_pattern, BM_PATTERN_LEN);
	memcpy(buf + BM_PATTERN_LEN, bm_pattern, BM_CHUNK - BM_PATTERN_LEN);
	bm_start(f, r, &w0, &c0);
	rc = bm_connect(f, BM_PORT_DISCARD, nconns, s);
	if (rc)
		return rc;
	for (bool more = true; more && !rc;) {
		more = false;
		for (size_t i = 0; i < nconns && !rc; i++) {
			struct lp_errinfo e = {0};
			uint64_t n = per - sent[i] > BM_CHUNK ? BM_CHUNK : per - sent[i];

			if (!n)
				continue;
			rc = lp_stream_send(s[i], buf, (size_t)n, bm_dl(f), &e);
			if (rc)
				fprintf(stderr, "bench: send: %s: %s\n", lp_errname(rc), e.msg);
			sent[i] += n;
			more = true;
		}
	}
	/* sends return once the OUT transfers completed; the last ones are in
	 * the device by then, but wait (bounded) rather than assume it */
	if (!rc) {
		uint64_t dl = bm_dl(f);

		while (!rc && f->m.discarded - base < per * nconns) {
			if (lp_clock_now(&f->clock) >= dl)
				rc = LP_ETIMEDOUT;
			else
				rc = hl_pump(f->hl, dl);
		}
	}
	bm_stop(f, r, w0, c0);
	r->bytes = f->m.discarded - base;
	for (size_t i = 0; i < nconns; i++)
		lp_stream_close(s[i]);
	if (!rc && r->bytes != per * nconns) {
		fprintf(stderr, "bench: device counted %llu of %llu bytes\n",
			(unsigned long long)r->bytes, (unsigned long long)(per * nconns));
		rc = LP_EPROTO;
	}
	return rc;
}

/* device->host: `nconns` connections to the source service, each delivering
 * total/nconns bytes, read round robin until every one is complete. */
static inline int bm_download(struct bm_fx *f, size_t nconns, uint64_t total, struct bm_result *r)
{
	struct lp_stream *s[BM_MAX_CONNS];
	uint64_t per = total / nconns, got[BM_MAX_CONNS] = {0}, sum = 0;
	static uint8_t buf[BM_CHUNK];
	double w0;
	uint64_t c0;
	int rc;

	f->m.source_len = per;
	bm_start(f, r, &w0, &c0);
	rc = bm_connect(f, BM_PORT_SOURCE, nconns, s);
	if (rc)
		return rc;
	while (!rc && sum < per * nconns) {
		for (size_t i = 0; i < nconns && !rc; i++) {
			struct lp_errinfo e = {0};
			size_t n = 0;

			if (got[i] == per)
				continue;
			rc = lp_stream_recv(s[i], buf, sizeof(buf), &n, bm_dl(f), &e);
			if (rc) {
				fprintf(stderr, "bench: recv: %s: %s\n", lp_errname(rc), e.msg);
				break;
			}
			got[i] += n;
			sum += n;
			if (got[i] > per) {
				fprintf(stderr,
					"bench: connection %zu got %llu bytes, expected %llu\n", i,
					(unsigned long long)got[i], (unsigned long long)per);
				rc = LP_EPROTO;
			}
		}
	}
	bm_stop(f, r, w0, c0);
	r->bytes = sum;
	for (size_t i = 0; i < nconns; i++)
		lp_stream_close(s[i]);
	return rc;
}

/* Link health after a run: model failures, mux anomalies, transfer errors. */
static inline int bm_check(struct bm_fx *f, const char *what)
{
	struct hl_stats st;
	struct mux_stats ds = {0};

	hl_get_stats(f->hl, &st);
	if (devcore_mux(f->m.dc))
		mux_get_stats(devcore_mux(f->m.dc), &ds);
	if (f->m.fail || st.errors || st.mux.anomalies || ds.anomalies + f->m.anomalies) {
		fprintf(stderr,
			"bench: %s: model failures %u, transfer errors %llu, anomalies host %llu "
			"device %llu\n",
			what, f->m.fail, (unsigned long long)st.errors,
			(unsigned long long)st.mux.anomalies,
			(unsigned long long)(ds.anomalies + f->m.anomalies));
		return LP_EPROTO;
	}
	return 0;
}

#endif
