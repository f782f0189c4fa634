/* test_transport_orphan.c - a cancelled transfer that never comes back.
 *
 * Real host controllers can take longer than the core's bounded reap (1 s) to
 * give back a cancelled URB. The core must then sever the transfer through the
 * backend's detach op before the caller's memory (usually a stack frame) goes
 * away, and a late completion must reach nobody. A stub backend whose cancel
 * "hangs" plays that controller on a virtual clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "usb/transport.h"

struct stub {
	struct tr_xfer *pending; /* the one in-flight transfer */
	int detached;
	int cancels;
};

static struct stub g;

static int st_init(struct tr_ctx *ctx, const void *arg, struct lp_errinfo *e)
{
	return 0;
}
static void st_exit(struct tr_ctx *ctx)
{
}
static int st_list(struct tr_ctx *ctx, struct tr_devinfo *out, size_t max, size_t *n,
		   struct lp_errinfo *e)
{
	memset(out, 0, sizeof(*out));
	out->vid = 0x05ac;
	out->pid = 0x12a8;
	out->speed = TR_SPEED_HIGH;
	*n = 1;
	return 0;
}
static int st_open(struct tr_ctx *ctx, const struct tr_devinfo *info, struct tr_dev *dev,
		   struct lp_errinfo *e)
{
	return 0;
}
static void st_close(struct tr_dev *dev)
{
}
static int st_getcfg(struct tr_dev *dev, int *cfg)
{
	*cfg = 1;
	return 0;
}
static int st_setcfg(struct tr_dev *dev, int cfg, struct lp_errinfo *e)
{
	return 0;
}
static int st_claim(struct tr_dev *dev, int ifnum, struct lp_errinfo *e)
{
	return 0;
}
static int st_release(struct tr_dev *dev, int ifnum)
{
	return 0;
}
static int st_submit(struct tr_xfer *x)
{
	g.pending = x;
	return 0;
}
/* the controller never gives the URB back */
static int st_cancel(struct tr_xfer *x)
{
	g.cancels++;
	return 0;
}
static int st_events(struct tr_ctx *ctx, uint64_t deadline)
{
	lp_clock_sleep_until(ctx->env.clock, deadline); /* virtual: jumps */
	return 0;
}
static void st_detach(struct tr_xfer *x)
{
	g.detached++;
	g.pending = NULL; /* never touch x again */
}

static const struct tr_ops stub_ops = {
	.name = "stub",
	.init = st_init,
	.exit = st_exit,
	.list = st_list,
	.open = st_open,
	.close = st_close,
	.get_configuration = st_getcfg,
	.set_configuration = st_setcfg,
	.claim_interface = st_claim,
	.release_interface = st_release,
	.submit = st_submit,
	.cancel = st_cancel,
	.handle_events = st_events,
	.detach = st_detach,
};

static int called;
static void done_cb(struct tr_xfer *x)
{
	called++;
}

static void test_sync_timeout_detaches(void **state)
{
	struct lp_clock clk;
	struct tr_env env = {.clock = &clk};
	struct tr_ctx *ctx;
	struct tr_devinfo info;
	struct tr_dev *dev;
	size_t n;
	uint8_t buf[64];
	int r;

	memset(&g, 0, sizeof(g));
	lp_clock_init_virtual(&clk, 0);
	assert_int_equal(tr_ctx_new(&stub_ops, &env, NULL, &ctx, NULL), 0);
	assert_int_equal(tr_list(ctx, &info, 1, &n, NULL), 0);
	assert_int_equal(tr_open(ctx, &info, &dev, NULL), 0);
	{
		struct tr_xfer x = {.dev = dev,
				    .type = TR_XFER_BULK,
				    .endpoint = 0x81,
				    .buf = buf,
				    .len = sizeof(buf)};
		r = tr_xfer_sync(&x, 100);
		assert_int_equal(r, LP_ETIMEDOUT);
		assert_int_equal(g.cancels, 1);
		/* not reaped within the bound: severed, no longer in flight */
		assert_int_equal(g.detached, 1);
		assert_null(g.pending);
		assert_false(x.in_flight);
		assert_int_equal(dev->in_flight, 0);
	}
	/* the device closes without touching the abandoned transfer again */
	tr_close(dev);
	assert_int_equal(g.cancels, 1);
	tr_ctx_free(ctx);
}

static void test_close_detaches_hung_transfers(void **state)
{
	struct lp_clock clk;
	struct tr_env env = {.clock = &clk};
	struct tr_ctx *ctx;
	struct tr_devinfo info;
	struct tr_dev *dev;
	struct tr_xfer x;
	size_t n;
	uint8_t buf[64];

	memset(&g, 0, sizeof(g));
	called = 0;
	lp_clock_init_virtual(&clk, 0);
	assert_int_equal(tr_ctx_new(&stub_ops, &env, NULL, &ctx, NULL), 0);
	assert_int_equal(tr_list(ctx, &info, 1, &n, NULL), 0);
	assert_int_equal(tr_open(ctx, &info, &dev, NULL), 0);
	memset(&x, 0, sizeof(x));
	x.dev = dev;
	x.type = TR_XFER_BULK;
	x.endpoint = 0x81;
	x.buf = buf;
	x.len = sizeof(buf);
	x.done = done_cb;
	assert_int_equal(tr_submit(&x), 0);
	/* close: cancel, bounded reap (virtual 1 s), then detach what is left */
	tr_close(dev);
	assert_int_equal(g.cancels, 1);
	assert_int_equal(g.detached, 1);
	assert_int_equal(called, 0);
	assert_true(lp_clock_now(&clk) >= LP_NS_PER_S);
	tr_ctx_free(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sync_timeout_detaches),
		cmocka_unit_test(test_close_detaches_hung_transfers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
