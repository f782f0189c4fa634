/* test_transport.c - the transport core and the "sim" backend, driven with a
 * small echo device model: completion order, timestamps on a virtual clock,
 * USB ZLP semantics, observers, fault injection, sync timeouts,
 * disconnect/re-enumeration and charge-only cables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/device/devcore.h"
#include "usb/tr_sim.h"
#include "usb/usb_desc.h"

#define EP_OUT 0x04
#define EP_IN 0x85
#define MPS 512
#define QMAX 16

/* ---- echo model: every device transfer received is queued back ----------
 * A raw personality on the device core (src/device/devcore.h): the core does
 * descriptors, chapter 9 and the IN queue; this model decides what to queue. */

struct echo_model {
	struct devcore *dc;
	bool charge_only;
	bool echo;     /* queue each OUT device transfer back on EP_IN */
	bool echo_zlp; /* ... with a ZLP when its length is a multiple of MPS */
	int resets;
	/* device transfers seen on OUT */
	size_t out_len[QMAX];
	size_t nout;
	/* one timer: queue `timer_len` bytes at timer_at */
	uint64_t timer_at;
	size_t timer_len;
};

static void em_push(struct echo_model *m, const uint8_t *d, size_t len, bool zlp)
{
	assert_int_equal(devcore_in_queue(m->dc, EP_IN, d, len, zlp), 0);
}

static bool em_attached(void *vm, uint64_t now)
{
	struct echo_model *m = vm;
	return !m->charge_only;
}

static void em_reset(void *vm, bool bus, uint64_t now)
{
	struct echo_model *m = vm;

	if (bus)
		m->resets++;
}

static void em_bulk_out(void *vm, uint8_t ep, const uint8_t *d, size_t len, uint64_t now)
{
	struct echo_model *m = vm;

	if (m->nout < QMAX)
		m->out_len[m->nout++] = len;
	if (m->echo)
		em_push(m, d, len, m->echo_zlp);
}

static uint64_t em_next_timer(void *vm, uint64_t now)
{
	struct echo_model *m = vm;
	return m->timer_at ? m->timer_at : UINT64_MAX;
}

static void em_tick(void *vm, uint64_t now)
{
	struct echo_model *m = vm;
	uint8_t b[64];

	if (m->timer_at && now >= m->timer_at) {
		memset(b, 0x5a, sizeof(b));
		em_push(m, b, m->timer_len, false);
		m->timer_at = 0;
	}
}

static const struct devcore_personality em_pers = {
	.attached = em_attached,
	.reset = em_reset,
	.bulk_out = em_bulk_out,
	.next_timer = em_next_timer,
	.tick = em_tick,
	.raw = true,
};

/* 05ac:12a8 with one configuration: interface 1, ff/fe/02, bulk EP_OUT/EP_IN. */
static void em_init(struct echo_model *m)
{
	struct usbd_device d = {.bcdUSB = 0x0200,
				.idVendor = 0x05ac,
				.idProduct = 0x12a8,
				.bMaxPacketSize0 = 64,
				.bNumConfigurations = 1};
	struct usbd_config c = {.bConfigurationValue = 1, .bmAttributes = 0xc0, .num_ifaces = 1};
	uint8_t tmp[256];
	int n;

	m->dc = devcore_new(&em_pers, m, NULL);
	assert_non_null(m->dc);
	n = usbd_encode_device(&d, tmp, sizeof(tmp));
	assert_int_equal(devcore_set_device(m->dc, tmp, (size_t)n), 0);
	c.iface[0] = (struct usbd_interface){.bInterfaceNumber = 1,
					     .bInterfaceClass = 0xff,
					     .bInterfaceSubClass = 0xfe,
					     .bInterfaceProtocol = 2,
					     .num_eps = 2};
	c.iface[0].ep[0] = (struct usbd_endpoint){EP_OUT, 2, 0, MPS};
	c.iface[0].ep[1] = (struct usbd_endpoint){EP_IN, 2, 0, MPS};
	n = usbd_encode_config(&c, tmp, sizeof(tmp));
	assert_true(n > 0);
	assert_int_equal(devcore_add_config(m->dc, tmp, (size_t)n, NULL, 0), 0);
}

/* ---- fixture ------------------------------------------------------------ */

struct ev {
	enum tr_event ev;
	uint64_t id;
	uint8_t ep;
	enum tr_status st;
	int err;
};

struct fx {
	struct lp_clock clk;
	struct lp_rand rnd;
	struct echo_model m;
	struct tr_sim_arg arg;
	struct tr_ctx *ctx;
	struct tr_dev *dev;
	struct ev evs[256];
	size_t nev;
	uint64_t done_ids[64];
	size_t ndone;
};

static void observer(void *ud, enum tr_event ev, const struct tr_xfer *x, int err)
{
	struct fx *f = ud;
	if (f->nev < 256)
		f->evs[f->nev++] = (struct ev){ev, x->id, x->endpoint, x->status, err};
}

static void record_done(struct tr_xfer *x)
{
	struct fx *f = x->user;
	if (f->ndone < 64)
		f->done_ids[f->ndone++] = x->id;
}

/* Build a context on a virtual clock; open and configure unless `raw`. */
static struct fx *fx_new(const struct tr_sim_link *link, bool charge_only, bool raw)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct tr_devinfo di[2];
	size_t n = 0;
	struct tr_env env;

	assert_non_null(f);
	lp_clock_init_virtual(&f->clk, 1700000000ull * LP_NS_PER_S);
	lp_rand_seed(&f->rnd, 42);
	f->m.charge_only = charge_only;
	f->m.echo = true;
	em_init(&f->m);
	f->arg.ops = &devcore_model_ops;
	f->arg.model = devcore_model(f->m.dc);
	if (link)
		f->arg.link = *link;
	else
		f->arg.link = (struct tr_sim_link){.speed = TR_SPEED_HIGH, .link_off = true};
	env = (struct tr_env){.clock = &f->clk, .log = NULL, .rand = &f->rnd};
	assert_int_equal(tr_ctx_new(&tr_sim_ops, &env, &f->arg, &f->ctx, NULL), 0);
	assert_int_equal(tr_add_observer(f->ctx, observer, f), 0);
	if (raw)
		return f;
	assert_int_equal(tr_list(f->ctx, di, 2, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(tr_open(f->ctx, &di[0], &f->dev, NULL), 0);
	assert_int_equal(tr_set_configuration(f->dev, 1, NULL), 0);
	assert_int_equal(tr_claim_interface(f->dev, 1, NULL), 0);
	f->nev = 0; /* drop the synthetic SET_CONFIGURATION */
	return f;
}

static void fx_free(struct fx *f)
{
	if (f->dev)
		tr_close(f->dev);
	tr_ctx_free(f->ctx);
	devcore_free(f->m.dc);
	free(f);
}

static void xf_init(struct fx *f, struct tr_xfer *x, uint8_t ep, uint8_t *buf, size_t len)
{
	memset(x, 0, sizeof(*x));
	x->dev = f->dev;
	x->type = TR_XFER_BULK;
	x->endpoint = ep;
	x->buf = buf;
	x->len = len;
	x->done = record_done;
	x->user = f;
}

/* Run events until `n` transfers completed in total (bounded by virtual 60 s). */
static void run_until(struct fx *f, size_t n)
{
	uint64_t dl = lp_clock_now(&f->clk) + 60 * LP_NS_PER_S;
	while (f->ndone < n && lp_clock_now(&f->clk) < dl)
		assert_int_equal(tr_handle_events(f->ctx, dl), 0);
	assert_int_equal(f->ndone, n);
}

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * LP_NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* ---- tests -------------------------------------------------------------- */

static void test_list_open_configure(void **state)
{
	struct fx *f = fx_new(NULL, false, true);
	struct tr_devinfo di[2];
	struct lp_errinfo e = {0};
	size_t n = 0;
	int cfg = -1;

	assert_int_equal(tr_list(f->ctx, di, 2, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(di[0].vid, 0x05ac);
	assert_int_equal(di[0].pid, 0x12a8);
	assert_int_equal(di[0].bus, 1);
	assert_int_equal(di[0].addr, 2);
	assert_int_equal(di[0].speed, TR_SPEED_HIGH);
	assert_int_equal(di[0].active_config, 0);
	assert_int_equal(tr_open(f->ctx, &di[0], &f->dev, NULL), 0);
	assert_int_equal(tr_get_configuration(f->dev, &cfg), 0);
	assert_int_equal(cfg, 0);
	/* unconfigured: nothing to claim */
	assert_int_equal(tr_claim_interface(f->dev, 1, &e), LP_EINVAL);
	assert_int_equal(tr_set_configuration(f->dev, 5, &e), LP_ESTALL);
	assert_int_equal(tr_set_configuration(f->dev, 1, NULL), 0);
	/* both SET_CONFIGURATIONs shown as synthetic control transfers */
	assert_int_equal(f->nev, 4);
	assert_int_equal(f->evs[0].ev, TR_EV_SUBMIT);
	assert_int_equal(f->evs[1].ev, TR_EV_COMPLETE);
	assert_int_equal(f->evs[1].st, TR_STATUS_STALL);
	assert_int_equal(f->evs[3].st, TR_STATUS_COMPLETED);
	assert_int_equal(tr_get_configuration(f->dev, &cfg), 0);
	assert_int_equal(cfg, 1);
	assert_int_equal(tr_claim_interface(f->dev, 7, &e), LP_EINVAL);
	assert_int_equal(tr_claim_interface(f->dev, 1, NULL), 0);
	/* claimed interface: no configuration change under it */
	assert_int_equal(tr_set_configuration(f->dev, 1, &e), LP_EBUSY);
	assert_int_equal(tr_release_interface(f->dev, 1), 0);
	fx_free(f);
}

static void test_async_order(void **state)
{
	struct fx *f = fx_new(NULL, false, false);
	uint8_t out[100], in1[16384], in2[16384];
	struct tr_xfer xo, xi1, xi2;

	memset(out, 0xab, sizeof(out));
	xf_init(f, &xi1, EP_IN, in1, sizeof(in1));
	xf_init(f, &xi2, EP_IN, in2, sizeof(in2));
	xf_init(f, &xo, EP_OUT, out, sizeof(out));
	assert_int_equal(tr_submit(&xi1), 0);
	assert_int_equal(tr_submit(&xi2), 0);
	assert_int_equal(tr_submit(&xo), 0);
	assert_true(xi1.id < xi2.id && xi2.id < xo.id);
	run_until(f, 2);
	/* the OUT first, then the first IN with the echo; the second IN waits */
	assert_int_equal(f->done_ids[0], xo.id);
	assert_int_equal(f->done_ids[1], xi1.id);
	assert_int_equal(xi1.status, TR_STATUS_COMPLETED);
	assert_int_equal(xi1.actual, 100);
	assert_memory_equal(in1, out, 100);
	assert_true(xi2.in_flight);
	assert_int_equal(f->dev->in_flight, 1);
	/* a second echo lands in the second IN */
	assert_int_equal(tr_submit(&xo), 0);
	run_until(f, 4);
	assert_int_equal(f->done_ids[3], xi2.id);
	assert_int_equal(xi2.actual, 100);
	fx_free(f);
}

static void test_timestamps_high_and_full(void **state)
{
	struct tr_sim_link hs = {.speed = TR_SPEED_HIGH, .latency_ns = 50 * LP_NS_PER_US};
	struct tr_sim_link fs = {.speed = TR_SPEED_FULL, .latency_ns = 50 * LP_NS_PER_US};
	static uint8_t buf[16384];
	struct tr_xfer x, x2;
	uint64_t d_hs, d_fs;
	struct fx *f;

	f = fx_new(&hs, false, false);
	lp_clock_advance(&f->clk, 1000);
	xf_init(f, &x, EP_OUT, buf, sizeof(buf));
	xf_init(f, &x2, EP_OUT, buf, sizeof(buf));
	assert_int_equal(tr_submit(&x), 0);
	assert_int_equal(tr_submit(&x2), 0);
	assert_int_equal(x.submit_ns, 1000);
	run_until(f, 2);
	d_hs = x.done_ns - x.submit_ns;
	/* 32 packets at 13 per 125 us microframe = 307.7 us, plus latency */
	assert_true(d_hs >= 307000 + 50000 && d_hs <= 309000 + 50000);
	/* same endpoint: the second waits for the first one's packets */
	assert_true(x2.done_ns - x2.submit_ns >= 2 * 307000 + 50000);
	assert_true(x2.done_ns - x2.submit_ns <= 2 * 309000 + 50000);
	fx_free(f);

	f = fx_new(&fs, false, false);
	xf_init(f, &x, EP_OUT, buf, sizeof(buf));
	assert_int_equal(tr_submit(&x), 0);
	run_until(f, 1);
	d_fs = x.done_ns - x.submit_ns;
	/* 256 x 64 B packets at 19 per 1 ms frame = 13.47 ms */
	assert_true(d_fs >= 13400000 && d_fs <= 13600000);
	assert_true(d_fs > 30 * d_hs);
	fx_free(f);
}

static void test_in_out_overlap(void **state)
{
	struct tr_sim_link hs = {.speed = TR_SPEED_HIGH, .latency_ns = 0};
	static uint8_t ob[16384], ib[16384];
	struct fx *f = fx_new(&hs, false, false);
	struct tr_xfer xo, xi;
	uint8_t data[4096];

	f->m.echo = false;
	memset(data, 1, sizeof(data));
	em_push(&f->m, data, sizeof(data) - 1, false);
	xf_init(f, &xo, EP_OUT, ob, sizeof(ob));
	xf_init(f, &xi, EP_IN, ib, sizeof(ib));
	assert_int_equal(tr_submit(&xo), 0);
	assert_int_equal(tr_submit(&xi), 0);
	run_until(f, 2);
	/* the IN did not queue behind the OUT: it ended first */
	assert_int_equal(f->done_ids[0], xi.id);
	assert_true(xi.done_ns < xo.done_ns);
	assert_int_equal(xi.actual, 4095);
	fx_free(f);
}

static void test_zlp_in(void **state)
{
	struct fx *f = fx_new(NULL, false, false);
	uint8_t p512[512], p100[100], b[16384];
	struct tr_xfer x;

	f->m.echo = false;
	memset(p512, 7, sizeof(p512));
	memset(p100, 9, sizeof(p100));

	/* 512 bytes + ZLP into a big buffer: one transfer of 512, ZLP consumed */
	em_push(&f->m, p512, 512, true);
	em_push(&f->m, p100, 100, false);
	xf_init(f, &x, EP_IN, b, sizeof(b));
	assert_int_equal(tr_xfer_sync(&x, 1000), 0);
	assert_int_equal(x.actual, 512);
	assert_int_equal(tr_bulk_sync(f->dev, EP_IN, b, sizeof(b), 1000, &x.actual), 0);
	assert_int_equal(x.actual, 100);

	/* 512 bytes + ZLP into a 512-byte buffer: the ZLP completes the next IN */
	em_push(&f->m, p512, 512, true);
	em_push(&f->m, p100, 100, false);
	assert_int_equal(tr_bulk_sync(f->dev, EP_IN, b, 512, 1000, &x.actual), 0);
	assert_int_equal(x.actual, 512);
	assert_int_equal(tr_bulk_sync(f->dev, EP_IN, b, 512, 1000, &x.actual), 0);
	assert_int_equal(x.actual, 0);
	assert_int_equal(tr_bulk_sync(f->dev, EP_IN, b, 512, 1000, &x.actual), 0);
	assert_int_equal(x.actual, 100);

	/* 512 bytes without ZLP runs into the next device transfer */
	em_push(&f->m, p512, 512, false);
	em_push(&f->m, p100, 100, false);
	assert_int_equal(tr_bulk_sync(f->dev, EP_IN, b, sizeof(b), 1000, &x.actual), 0);
	assert_int_equal(x.actual, 612);
	assert_int_equal(b[511], 7);
	assert_int_equal(b[512], 9);

	/* a device transfer longer than the host buffer spans several */
	{
		static uint8_t big[40000];
		memset(big, 3, sizeof(big));
		em_push(&f->m, big, sizeof(big), false);
		assert_int_equal(tr_bulk_sync(f->dev, EP_IN, b, sizeof(b), 1000, &x.actual), 0);
		assert_int_equal(x.actual, 16384);
		assert_int_equal(tr_bulk_sync(f->dev, EP_IN, b, sizeof(b), 1000, &x.actual), 0);
		assert_int_equal(x.actual, 16384);
		assert_int_equal(tr_bulk_sync(f->dev, EP_IN, b, sizeof(b), 1000, &x.actual), 0);
		assert_int_equal(x.actual, 40000 - 2 * 16384);
	}
	/* a host buffer that is not a multiple of wMaxPacketSize overflows */
	em_push(&f->m, p512, 512, false);
	assert_int_equal(tr_bulk_sync(f->dev, EP_IN, b, 100, 1000, &x.actual), LP_EOVERFLOW);
	fx_free(f);
}

static void test_zlp_out(void **state)
{
	struct fx *f = fx_new(NULL, false, false);
	uint8_t b[1024];
	size_t act;

	f->m.echo = false;
	memset(b, 1, sizeof(b));
	/* 512 without ZLP + 100: the device sees one 612-byte transfer */
	assert_int_equal(tr_bulk_sync(f->dev, EP_OUT, b, 512, 1000, &act), 0);
	assert_int_equal(act, 512);
	assert_int_equal(f->m.nout, 0);
	assert_int_equal(tr_bulk_sync(f->dev, EP_OUT, b, 100, 1000, &act), 0);
	assert_int_equal(f->m.nout, 1);
	assert_int_equal(f->m.out_len[0], 612);
	/* 1024 + ZLP: the device sees 1024 */
	assert_int_equal(tr_bulk_sync(f->dev, EP_OUT, b, 1024, 1000, &act), 0);
	assert_int_equal(f->m.nout, 1);
	assert_int_equal(tr_bulk_sync(f->dev, EP_OUT, NULL, 0, 1000, &act), 0);
	assert_int_equal(f->m.nout, 2);
	assert_int_equal(f->m.out_len[1], 1024);
	fx_free(f);
}

static void test_observer_sees_every_transfer(void **state)
{
	struct fx *f = fx_new(NULL, false, false);
	struct tr_faults fl = {
		.fail_submit_nth = 3, .fail_submit_err = LP_EIO, .only_endpoint = 0xff};
	uint8_t b[64], in[512];
	size_t act;

	memset(b, 2, sizeof(b));
	assert_int_equal(tr_bulk_sync(f->dev, EP_OUT, b, sizeof(b), 1000, &act), 0);
	assert_int_equal(tr_bulk_sync(f->dev, EP_IN, in, sizeof(in), 1000, &act), 0);
	tr_set_faults(f->ctx, &fl);
	assert_int_equal(tr_bulk_sync(f->dev, EP_OUT, b, sizeof(b), 1000, &act), 0);
	assert_int_equal(tr_bulk_sync(f->dev, EP_IN, in, sizeof(in), 1000, &act), 0);
	assert_int_equal(tr_bulk_sync(f->dev, EP_OUT, b, sizeof(b), 1000, &act), LP_EIO);
	assert_int_equal(
		tr_control_sync(f->dev, 0x80, USBD_REQ_GET_CONFIGURATION, 0, 0, in, 1, 1000, &act),
		0);
	assert_int_equal(act, 1);
	assert_int_equal(in[0], 1);
	/* S,C x4, SUBMIT_ERROR, S,C for control */
	assert_int_equal(f->nev, 11);
	for (size_t i = 0; i < 8; i += 2) {
		assert_int_equal(f->evs[i].ev, TR_EV_SUBMIT);
		assert_int_equal(f->evs[i + 1].ev, TR_EV_COMPLETE);
		assert_int_equal(f->evs[i].id, f->evs[i + 1].id);
		assert_int_equal(f->evs[i + 1].st, TR_STATUS_COMPLETED);
	}
	assert_int_equal(f->evs[8].ev, TR_EV_SUBMIT_ERROR);
	assert_int_equal(f->evs[8].err, LP_EIO);
	assert_int_equal(f->evs[9].ev, TR_EV_SUBMIT);
	assert_int_equal(f->evs[9].ep, 0x80);
	assert_int_equal(f->evs[10].ev, TR_EV_COMPLETE);
	assert_int_equal(f->ctx->stats.submitted, 5);
	assert_int_equal(f->ctx->stats.completed, 5);
	assert_int_equal(f->ctx->stats.failed, 1);
	assert_int_equal(f->ctx->stats.bytes_out, 128);
	assert_int_equal(f->ctx->stats.bytes_in, 128 + 1);
	fx_free(f);
}

static void test_fail_nth_persist(void **state)
{
	struct fx *f = fx_new(NULL, false, false);
	struct tr_faults fl = {.fail_submit_nth = 2,
			       .fail_submit_persist = true,
			       .fail_submit_err = LP_ENOMEM,
			       .only_endpoint = EP_OUT};
	uint8_t b[10], in[512];
	size_t act;

	tr_set_faults(f->ctx, &fl);
	assert_int_equal(tr_bulk_sync(f->dev, EP_OUT, b, sizeof(b), 1000, &act), 0);
	/* an IN does not count: the plan is for EP_OUT only */
	assert_int_equal(tr_bulk_sync(f->dev, EP_IN, in, sizeof(in), 1000, &act), 0);
	assert_int_equal(tr_bulk_sync(f->dev, EP_OUT, b, sizeof(b), 1000, &act), LP_ENOMEM);
	assert_int_equal(tr_bulk_sync(f->dev, EP_OUT, b, sizeof(b), 1000, &act), LP_ENOMEM);
	tr_set_faults(f->ctx, NULL);
	assert_int_equal(tr_bulk_sync(f->dev, EP_OUT, b, sizeof(b), 1000, &act), 0);
	fx_free(f);
}

static void test_error_rate(void **state)
{
	struct tr_faults fl = {
		.error_rate = 1.0, .error_status = TR_STATUS_ERROR, .only_endpoint = 0xff};
	struct tr_sim_link lk = {
		.speed = TR_SPEED_HIGH, .link_off = true, .error_rate = 1.0, .seed = 7};
	struct fx *f = fx_new(NULL, false, false);
	struct tr_sim_stats st;
	uint8_t b[10];
	size_t act;

	tr_set_faults(f->ctx, &fl);
	for (int i = 0; i < 5; i++)
		assert_int_equal(tr_bulk_sync(f->dev, EP_OUT, b, sizeof(b), 1000, &act), LP_EUSB);
	for (size_t i = 1; i < f->nev; i += 2)
		assert_int_equal(f->evs[i].st, TR_STATUS_ERROR);
	assert_int_equal(f->nev, 10);
	fx_free(f);

	/* the link's own error rate, with its own PRNG */
	f = fx_new(&lk, false, false);
	for (int i = 0; i < 5; i++)
		assert_int_equal(tr_bulk_sync(f->dev, EP_OUT, b, sizeof(b), 1000, &act), LP_EUSB);
	tr_sim_get_stats(f->ctx, &st);
	assert_int_equal(st.errors_injected, 5);
	/* an errored OUT never reached the device */
	assert_int_equal(f->m.nout, 0);
	fx_free(f);
}

static void test_sync_timeout_virtual(void **state)
{
	struct fx *f = fx_new(NULL, false, false);
	uint8_t b[512];
	size_t act = 99;
	uint64_t w0 = wall_ns(), t0 = lp_clock_now(&f->clk);

	f->m.echo = false;
	assert_int_equal(tr_bulk_sync(f->dev, EP_IN, b, sizeof(b), 30000, &act), LP_ETIMEDOUT);
	assert_int_equal(act, 0);
	assert_true(lp_clock_now(&f->clk) - t0 >= 30 * LP_NS_PER_S);
	/* virtual time: far less than the 30 s a real wait takes, with room for
	 * a loaded machine */
	assert_true(wall_ns() - w0 < 10 * LP_NS_PER_S);
	/* the cancelled transfer was reaped */
	assert_int_equal(f->dev->in_flight, 0);
	assert_int_equal(f->evs[f->nev - 1].st, TR_STATUS_CANCELLED);
	fx_free(f);
}

static void test_model_timer_and_xfer_timeout(void **state)
{
	struct tr_sim_link lk = {.speed = TR_SPEED_HIGH, .latency_ns = 20 * LP_NS_PER_US};
	struct fx *f = fx_new(&lk, false, false);
	uint8_t b[512];
	struct tr_xfer x;
	size_t act;

	f->m.timer_at = 5 * LP_NS_PER_S;
	f->m.timer_len = 33;
	assert_int_equal(tr_bulk_sync(f->dev, EP_IN, b, sizeof(b), 10000, &act), 0);
	assert_int_equal(act, 33);
	assert_true(lp_clock_now(&f->clk) >= 5 * LP_NS_PER_S);
	assert_true(lp_clock_now(&f->clk) < 5 * LP_NS_PER_S + LP_NS_PER_MS);

	/* a per-transfer timeout ends it TIMED_OUT */
	xf_init(f, &x, EP_IN, b, sizeof(b));
	x.timeout_ms = 250;
	assert_int_equal(tr_submit(&x), 0);
	run_until(f, 1);
	assert_int_equal(x.status, TR_STATUS_TIMED_OUT);
	assert_int_equal(x.done_ns - x.submit_ns, 250 * LP_NS_PER_MS);
	fx_free(f);
}

static void test_cancel_and_close(void **state)
{
	struct fx *f = fx_new(NULL, false, false);
	uint8_t b1[512], b2[512];
	struct tr_xfer x1, x2;

	xf_init(f, &x1, EP_IN, b1, sizeof(b1));
	xf_init(f, &x2, EP_IN, b2, sizeof(b2));
	assert_int_equal(tr_submit(&x1), 0);
	assert_int_equal(tr_submit(&x2), 0);
	assert_int_equal(tr_cancel(&x1), 0);
	run_until(f, 1);
	assert_int_equal(x1.status, TR_STATUS_CANCELLED);
	assert_int_equal(tr_cancel(&x1), LP_ENOENT);
	/* closing cancels and reaps the rest */
	tr_close(f->dev);
	f->dev = NULL;
	assert_int_equal(f->ndone, 2);
	assert_int_equal(x2.status, TR_STATUS_CANCELLED);
	assert_int_equal(f->ctx->stats.cancelled, 2);
	fx_free(f);
}

static void test_disconnect_reenumerate(void **state)
{
	struct tr_sim_link lk = {.speed = TR_SPEED_HIGH,
				 .latency_ns = 10 * LP_NS_PER_US,
				 .disconnect_at_ns = 2 * LP_NS_PER_S,
				 .reenum_gap_ns = 500 * LP_NS_PER_MS};
	struct fx *f = fx_new(&lk, false, false);
	struct tr_sim_stats st;
	struct tr_devinfo di[2];
	uint8_t b[512];
	struct tr_xfer x;
	size_t n = 9;
	uint32_t session = f->dev->info.session;

	assert_int_equal(f->m.resets, 1);
	xf_init(f, &x, EP_IN, b, sizeof(b));
	assert_int_equal(tr_submit(&x), 0);
	run_until(f, 1);
	assert_int_equal(x.status, TR_STATUS_NO_DEVICE);
	assert_int_equal(x.done_ns, 2 * LP_NS_PER_S);
	assert_true(f->dev->gone);
	assert_int_equal(tr_list(f->ctx, di, 2, &n, NULL), 0);
	assert_int_equal(n, 0);
	assert_int_equal(tr_submit(&x), LP_ENODEV);
	/* wait for it to come back */
	assert_int_equal(tr_wait_hotplug(f->ctx, 10 * LP_NS_PER_S), 0);
	assert_int_equal(lp_clock_now(&f->clk), 2500 * LP_NS_PER_MS);
	assert_int_equal(tr_list(f->ctx, di, 2, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(di[0].addr, 3);
	assert_true(di[0].session != session);
	assert_int_equal(di[0].active_config, 0);
	assert_int_equal(f->m.resets, 2);
	tr_sim_get_stats(f->ctx, &st);
	assert_int_equal(st.disconnects, 1);
	assert_int_equal(st.enumerations, 2);
	/* the old handle stays dead; a new one works */
	f->dev->gone = false;
	assert_int_equal(tr_submit(&x), LP_ENODEV);
	tr_close(f->dev);
	assert_int_equal(tr_open(f->ctx, &di[0], &f->dev, NULL), 0);
	assert_int_equal(tr_set_configuration(f->dev, 1, NULL), 0);
	assert_int_equal(tr_bulk_sync(f->dev, EP_OUT, b, 10, 1000, &n), 0);
	fx_free(f);
}

static void test_charge_only(void **state)
{
	struct fx *f = fx_new(NULL, true, true);
	struct tr_devinfo di[2], fake = {.bus = 1, .addr = 2, .session = 1};
	struct lp_errinfo e = {0};
	struct tr_dev *d = NULL;
	size_t n = 5;

	assert_int_equal(tr_list(f->ctx, di, 2, &n, NULL), 0);
	assert_int_equal(n, 0);
	assert_int_equal(tr_open(f->ctx, &fake, &d, &e), LP_ENODEV);
	assert_null(d);
	assert_int_equal(e.code, LP_ENODEV);
	fx_free(f);
}

static void test_real_clock(void **state)
{
	struct tr_sim_link lk = {.speed = TR_SPEED_HIGH, .latency_ns = 3 * LP_NS_PER_MS};
	struct fx *f = fx_new(&lk, false, false);
	uint8_t b[100], in[512];
	uint64_t w0;
	size_t act;

	/* same fixture, but the sim now sleeps instead of jumping */
	lp_clock_init_real(&f->clk);
	w0 = wall_ns();
	memset(b, 4, sizeof(b));
	assert_int_equal(tr_bulk_sync(f->dev, EP_OUT, b, sizeof(b), 1000, &act), 0);
	assert_int_equal(tr_bulk_sync(f->dev, EP_IN, in, sizeof(in), 1000, &act), 0);
	assert_int_equal(act, 100);
	assert_true(wall_ns() - w0 >= 6 * LP_NS_PER_MS);
	/* upper bounds only catch "waited for the whole timeout or forever";
	 * a loaded machine may deschedule us for a while */
	assert_true(wall_ns() - w0 < 5 * LP_NS_PER_S);
	/* nothing to read: a real 50 ms timeout */
	w0 = wall_ns();
	assert_int_equal(tr_bulk_sync(f->dev, EP_IN, in, sizeof(in), 50, &act), LP_ETIMEDOUT);
	assert_true(wall_ns() - w0 >= 50 * LP_NS_PER_MS);
	assert_true(wall_ns() - w0 < 5 * LP_NS_PER_S);
	fx_free(f);
}

static void test_names(void **state)
{
	assert_int_equal(tr_speed_bps(TR_SPEED_HIGH), 480000000ull);
	assert_int_equal(tr_speed_bps(TR_SPEED_UNKNOWN), 0);
	assert_string_equal(tr_speed_name(TR_SPEED_FULL), "full");
	assert_string_equal(tr_status_name(TR_STATUS_NO_DEVICE), "NO_DEVICE");
	assert_int_equal(tr_status_to_err(TR_STATUS_COMPLETED), 0);
	assert_int_equal(tr_status_to_err(TR_STATUS_STALL), LP_ESTALL);
	assert_int_equal(tr_status_to_err(TR_STATUS_NO_DEVICE), LP_ENODEV);
	assert_int_equal(tr_status_to_err(TR_STATUS_TIMED_OUT), LP_ETIMEDOUT);
	assert_int_equal(tr_status_to_err(TR_STATUS_OVERFLOW), LP_EOVERFLOW);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_open_configure),
		cmocka_unit_test(test_async_order),
		cmocka_unit_test(test_timestamps_high_and_full),
		cmocka_unit_test(test_in_out_overlap),
		cmocka_unit_test(test_zlp_in),
		cmocka_unit_test(test_zlp_out),
		cmocka_unit_test(test_observer_sees_every_transfer),
		cmocka_unit_test(test_fail_nth_persist),
		cmocka_unit_test(test_error_rate),
		cmocka_unit_test(test_sync_timeout_virtual),
		cmocka_unit_test(test_model_timer_and_xfer_timeout),
		cmocka_unit_test(test_cancel_and_close),
		cmocka_unit_test(test_disconnect_reenumerate),
		cmocka_unit_test(test_charge_only),
		cmocka_unit_test(test_real_clock),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
