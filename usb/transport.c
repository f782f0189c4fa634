/* transport.c - the backend-independent core of the USB transport: contexts,
 * devices, transfer ids and timestamps, observers, the fault plan, stats, and
 * the one blocking helper (tr_xfer_sync) written on top of async.
 *
 * Model: libusb's async API (libusb/io.c): "could not submit" is the return
 * of tr_submit(), "how it ended" is xfer->status at completion. The fault
 * plan follows sqlite's test_vfs: fail the Nth call, once or persistently.
 *
 * Bookkeeping the header does not show: every device is allocated inside a
 * struct core_dev that also keeps the list of its in-flight transfers, so
 * tr_close() can cancel and reap them. */
#include "usb/transport.h"

#include <stdlib.h>
#include <string.h>

#include "usb/tr_task.h"

#define REAP_NS LP_NS_PER_S /* bounded wait for cancellations to come back */

struct core_dev {
	struct tr_dev pub;
	struct tr_xfer **live; /* in-flight transfers, submit order */
	size_t nlive, caplive;
	bool closing;
};

static struct core_dev *core_of(struct tr_dev *d)
{
	return (struct core_dev *)((char *)d - offsetof(struct core_dev, pub));
}

static uint64_t now_ns(const struct tr_ctx *ctx)
{
	return lp_clock_now(ctx->env.clock);
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

uint64_t tr_speed_bps(enum tr_speed s)
{
	switch (s) {
	case TR_SPEED_LOW:
		return 1500000ull;
	case TR_SPEED_FULL:
		return 12000000ull;
	case TR_SPEED_HIGH:
		return 480000000ull;
	case TR_SPEED_SUPER:
		return 5000000000ull;
	case TR_SPEED_SUPER_PLUS:
		return 10000000000ull;
	case TR_SPEED_SUPER_PLUS_X2:
		return 20000000000ull;
	case TR_SPEED_UNKNOWN:
		break;
	}
	return 0;
}

const char *tr_speed_name(enum tr_speed s)
{
	switch (s) {
	case TR_SPEED_LOW:
		return "low";
	case TR_SPEED_FULL:
		return "full";
	case TR_SPEED_HIGH:
		return "high";
	case TR_SPEED_SUPER:
		return "super";
	case TR_SPEED_SUPER_PLUS:
		return "super+";
	case TR_SPEED_SUPER_PLUS_X2:
		return "super+ 2x2";
	case TR_SPEED_UNKNOWN:
		break;
	}
	return "unknown";
}

const char *tr_status_name(enum tr_status s)
{
	switch (s) {
	case TR_STATUS_COMPLETED:
		return "COMPLETED";
	case TR_STATUS_ERROR:
		return "ERROR";
	case TR_STATUS_TIMED_OUT:
		return "TIMED_OUT";
	case TR_STATUS_CANCELLED:
		return "CANCELLED";
	case TR_STATUS_STALL:
		return "STALL";
	case TR_STATUS_NO_DEVICE:
		return "NO_DEVICE";
	case TR_STATUS_OVERFLOW:
		return "OVERFLOW";
	}
	return "UNKNOWN";
}

int tr_status_to_err(enum tr_status s)
{
	switch (s) {
	case TR_STATUS_COMPLETED:
		return 0;
	case TR_STATUS_ERROR:
		return LP_EUSB;
	case TR_STATUS_TIMED_OUT:
		return LP_ETIMEDOUT;
	case TR_STATUS_CANCELLED:
		return LP_ECANCELED;
	case TR_STATUS_STALL:
		return LP_ESTALL;
	case TR_STATUS_NO_DEVICE:
		return LP_ENODEV;
	case TR_STATUS_OVERFLOW:
		return LP_EOVERFLOW;
	}
	return LP_EUSB;
}

static void notify(struct tr_ctx *ctx, enum tr_event ev, const struct tr_xfer *x, int err)
{
	for (size_t i = 0; i < ctx->nobs; i++)
		ctx->obs[i].fn(ctx->obs[i].ud, ev, x, err);
}

static void faults_clear(struct tr_faults *f)
{
	memset(f, 0, sizeof(*f));
	f->only_endpoint = 0xff;
	f->error_status = TR_STATUS_ERROR;
}

int tr_ctx_new(const struct tr_ops *ops, const struct tr_env *env, const void *arg,
	       struct tr_ctx **out, struct lp_errinfo *e)
{
	struct tr_ctx *ctx;
	int rc;

	if (!ops || !env || !env->clock || !out)
		return lp_err_set(e, LP_EINVAL, "transport: missing backend, clock or output");
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return lp_err_set(e, LP_ENOMEM, "transport: out of memory");
	if (ops->ctx_priv_size) {
		ctx->priv = calloc(1, ops->ctx_priv_size);
		if (!ctx->priv) {
			free(ctx);
			return lp_err_set(e, LP_ENOMEM, "transport: out of memory");
		}
	}
	ctx->ops = ops;
	ctx->env = *env;
	ctx->next_id = 1;
	faults_clear(&ctx->faults);
	rc = ops->init(ctx, arg, e);
	if (rc) {
		free(ctx->priv);
		free(ctx);
		return rc;
	}
	*out = ctx;
	return 0;
}

void tr_ctx_free(struct tr_ctx *ctx)
{
	void (*fini)(struct tr_ctx *);

	if (!ctx)
		return;
	fini = ctx->ops->exit;
	fini(ctx);
	free(ctx->priv);
	free(ctx);
}

int tr_add_observer(struct tr_ctx *ctx, tr_observer_fn fn, void *ud)
{
	if (!ctx || !fn)
		return LP_EINVAL;
	if (ctx->nobs >= TR_MAX_OBSERVERS)
		return LP_ETOOBIG;
	ctx->obs[ctx->nobs].fn = fn;
	ctx->obs[ctx->nobs].ud = ud;
	ctx->nobs++;
	return 0;
}

/* Setting a plan restarts the submit count, so "the Nth submit" means the Nth
 * one (on a matching endpoint) after the plan was set. */
void tr_set_faults(struct tr_ctx *ctx, const struct tr_faults *f)
{
	if (!ctx)
		return;
	if (f) {
		ctx->faults = *f;
		if (ctx->faults.error_status == TR_STATUS_COMPLETED)
			ctx->faults.error_status = TR_STATUS_ERROR;
		if (ctx->faults.fail_submit_nth && !ctx->faults.fail_submit_err)
			ctx->faults.fail_submit_err = LP_EIO;
	} else {
		faults_clear(&ctx->faults);
	}
	ctx->submits = 0;
}

static bool fault_ep_match(const struct tr_faults *f, const struct tr_xfer *x)
{
	return f->only_endpoint == 0xff || f->only_endpoint == x->endpoint;
}

int tr_list(struct tr_ctx *ctx, struct tr_devinfo *out, size_t max, size_t *n, struct lp_errinfo *e)
{
	if (!ctx || !n || (max && !out))
		return lp_err_set(e, LP_EINVAL, "tr_list: bad arguments");
	if (ctx->faults.no_host) {
		*n = 0;
		return 0;
	}
	return ctx->ops->list(ctx, out, max, n, e);
}

long tr_host_controllers(struct tr_ctx *ctx)
{
	size_t n = 0;

	if (!ctx)
		return -1;
	if (ctx->faults.no_host)
		return 0;
	if (!ctx->ops->host_controllers || ctx->ops->host_controllers(ctx, &n, NULL))
		return -1;
	return (long)n;
}

int tr_open(struct tr_ctx *ctx, const struct tr_devinfo *info, struct tr_dev **out,
	    struct lp_errinfo *e)
{
	struct core_dev *cd;
	int rc;

	if (!ctx || !info || !out)
		return lp_err_set(e, LP_EINVAL, "tr_open: bad arguments");
	if (ctx->faults.fail_open_err)
		return lp_err_set(e, ctx->faults.fail_open_err,
				  "opening %03u/%03u: %s (injected fault)", info->bus, info->addr,
				  lp_strerror(ctx->faults.fail_open_err));
	cd = calloc(1, sizeof(*cd));
	if (!cd)
		return lp_err_set(e, LP_ENOMEM, "tr_open: out of memory");
	cd->pub.ctx = ctx;
	cd->pub.info = *info;
	rc = ctx->ops->open(ctx, info, &cd->pub, e);
	if (rc) {
		free(cd);
		return rc;
	}
	tr_task_adopt_dev(&cd->pub);
	*out = &cd->pub;
	return 0;
}

static int live_add(struct core_dev *cd, struct tr_xfer *x)
{
	if (cd->nlive == cd->caplive) {
		size_t nc = cd->caplive ? cd->caplive * 2 : 16;
		struct tr_xfer **p = realloc(cd->live, nc * sizeof(*p));
		if (!p)
			return LP_ENOMEM;
		cd->live = p;
		cd->caplive = nc;
	}
	cd->live[cd->nlive++] = x;
	return 0;
}

static void live_del(struct core_dev *cd, struct tr_xfer *x)
{
	for (size_t i = 0; i < cd->nlive; i++) {
		if (cd->live[i] == x) {
			memmove(&cd->live[i], &cd->live[i + 1],
				(cd->nlive - i - 1) * sizeof(*cd->live));
			cd->nlive--;
			return;
		}
	}
}

/* The one place the core waits for the backend: inside a task, the task
 * yields to the scheduler, which waits for every task at once. */
static int core_wait(struct tr_ctx *ctx, uint64_t deadline_ns)
{
	if (tr_task_yield(ctx, deadline_ns))
		return 0;
	return ctx->ops->handle_events(ctx, deadline_ns);
}

/* A cancelled transfer that did not come back in time and whose memory the
 * caller is about to release: the backend severs it (it never touches x or
 * its buffer again), the core forgets it and nobody is called back. */
static void orphan(struct core_dev *cd, struct tr_xfer *x)
{
	struct tr_ctx *ctx = x->dev->ctx;

	if (ctx->ops->detach)
		ctx->ops->detach(x);
	live_del(cd, x);
	x->done = NULL;
	x->in_flight = false;
	if (x->dev->in_flight)
		x->dev->in_flight--;
}

/* Drive events until the device has nothing in flight or `deadline` passed. */
static void reap(struct tr_dev *dev, uint64_t deadline)
{
	struct tr_ctx *ctx = dev->ctx;

	while (core_of(dev)->nlive > 0 && now_ns(ctx) < deadline) {
		if (core_wait(ctx, deadline) < 0)
			break;
	}
}

void tr_close(struct tr_dev *dev)
{
	struct core_dev *cd;
	struct tr_ctx *ctx;

	if (!dev)
		return;
	cd = core_of(dev);
	ctx = dev->ctx;
	/* Callbacks that resubmit on completion must not keep the device busy. */
	cd->closing = true;
	for (size_t i = 0; i < cd->nlive; i++)
		ctx->ops->cancel(cd->live[i]);
	reap(dev, add_sat(now_ns(ctx), REAP_NS));
	if (cd->nlive) {
		lp_logf(ctx->env.log, LP_LOG_WARN,
			"transport: %zu transfer(s) did not come back within 1 s of cancelling; "
			"their callbacks are dropped",
			cd->nlive);
		while (cd->nlive)
			orphan(cd, cd->live[0]);
	}
	ctx->ops->close(dev);
	free(cd->live);
	free(cd);
}

int tr_get_configuration(struct tr_dev *dev, int *cfg)
{
	int v, rc;

	if (!dev || !cfg)
		return LP_EINVAL;
	rc = dev->ctx->ops->get_configuration(dev, &v);
	if (rc)
		return rc;
	*cfg = v;
	return 0;
}

int tr_set_configuration(struct tr_dev *dev, int cfg, struct lp_errinfo *e)
{
	if (!dev || cfg < 0 || cfg > 255)
		return lp_err_set(e, LP_EINVAL, "tr_set_configuration: bad arguments");
	return dev->ctx->ops->set_configuration(dev, cfg, e);
}

int tr_claim_interface(struct tr_dev *dev, int ifnum, struct lp_errinfo *e)
{
	if (!dev || ifnum < 0 || ifnum > 255)
		return lp_err_set(e, LP_EINVAL, "tr_claim_interface: bad arguments");
	if (dev->ctx->faults.fail_claim_err && dev->ctx->faults.claim_driver[0]) {
		int cfg = 0;
		tr_get_configuration(dev, &cfg);
		/* worded as the libusb backend names a kernel driver it found */
		return lp_err_set(
			e, dev->ctx->faults.fail_claim_err,
			"cannot claim interface %d: kernel driver %s holds interface %d of "
			"configuration %d (injected fault)",
			ifnum, dev->ctx->faults.claim_driver, ifnum, cfg);
	}
	if (dev->ctx->faults.fail_claim_err)
		return lp_err_set(e, dev->ctx->faults.fail_claim_err,
				  "claiming interface %d: %s (injected fault)", ifnum,
				  lp_strerror(dev->ctx->faults.fail_claim_err));
	return dev->ctx->ops->claim_interface(dev, ifnum, e);
}

int tr_release_interface(struct tr_dev *dev, int ifnum)
{
	if (!dev || ifnum < 0 || ifnum > 255)
		return LP_EINVAL;
	return dev->ctx->ops->release_interface(dev, ifnum);
}

static int submit_fault(struct tr_ctx *ctx, const struct tr_xfer *x)
{
	const struct tr_faults *f = &ctx->faults;

	if (!fault_ep_match(f, x))
		return 0;
	ctx->submits++;
	if (!f->fail_submit_nth)
		return 0;
	if (ctx->submits == f->fail_submit_nth ||
	    (f->fail_submit_persist && ctx->submits > f->fail_submit_nth))
		return f->fail_submit_err ? f->fail_submit_err : LP_EIO;
	return 0;
}

int tr_submit(struct tr_xfer *x)
{
	struct tr_ctx *ctx;
	struct core_dev *cd;
	int rc;

	if (!x || !x->dev || x->in_flight || (x->len && !x->buf) ||
	    (x->type != TR_XFER_CONTROL && x->type != TR_XFER_BULK))
		return LP_EINVAL;
	ctx = x->dev->ctx;
	cd = core_of(x->dev);
	x->id = ctx->next_id++;
	x->submit_ns = now_ns(ctx);
	x->done_ns = 0;
	x->status = TR_STATUS_COMPLETED;
	x->actual = 0;
	if (x->type == TR_XFER_CONTROL)
		x->endpoint = x->setup[0] & 0x80;

	rc = submit_fault(ctx, x);
	if (!rc && (x->dev->gone || cd->closing))
		rc = LP_ENODEV;
	if (!rc)
		rc = live_add(cd, x);
	if (!rc) {
		x->in_flight = true;
		x->dev->in_flight++;
		rc = ctx->ops->submit(x);
		if (rc) {
			x->in_flight = false;
			x->dev->in_flight--;
			live_del(cd, x);
		}
	}
	if (rc) {
		ctx->stats.failed++;
		notify(ctx, TR_EV_SUBMIT_ERROR, x, rc);
		return rc;
	}
	ctx->stats.submitted++;
	notify(ctx, TR_EV_SUBMIT, x, 0);
	return 0;
}

int tr_cancel(struct tr_xfer *x)
{
	if (!x || !x->dev)
		return LP_EINVAL;
	if (!x->in_flight)
		return LP_ENOENT;
	return x->dev->ctx->ops->cancel(x);
}

int tr_handle_events(struct tr_ctx *ctx, uint64_t deadline_ns)
{
	if (!ctx)
		return LP_EINVAL;
	return core_wait(ctx, deadline_ns);
}

int tr_wait_hotplug(struct tr_ctx *ctx, uint64_t deadline_ns)
{
	uint64_t t;

	if (!ctx)
		return LP_EINVAL;
	if (tr_in_task(ctx)) {
		/* one wait for all tasks: look again soon */
		t = add_sat(now_ns(ctx), TR_TASK_HOTPLUG_POLL_NS);
		tr_task_yield(ctx, t < deadline_ns ? t : deadline_ns);
		return 0;
	}
	if (ctx->ops->wait_hotplug)
		return ctx->ops->wait_hotplug(ctx, deadline_ns);
	/* No notification: the caller polls tr_list(); pace it. */
	t = add_sat(now_ns(ctx), 250 * LP_NS_PER_MS);
	lp_clock_sleep_until(ctx->env.clock, t < deadline_ns ? t : deadline_ns);
	return 0;
}

void tr_complete(struct tr_xfer *x, enum tr_status status, size_t actual)
{
	struct tr_dev *dev = x->dev;
	struct tr_ctx *ctx = dev->ctx;
	const struct tr_faults *f = &ctx->faults;
	tr_done_fn done;

	x->done_ns = now_ns(ctx);
	if (status == TR_STATUS_COMPLETED && f->error_rate > 0 && fault_ep_match(f, x) &&
	    (f->error_rate >= 1.0 ||
	     (ctx->env.rand && lp_rand_unit(ctx->env.rand) < f->error_rate)))
		status = f->error_status;
	x->status = status;
	x->actual = actual > x->len ? x->len : actual;
	x->in_flight = false;
	if (dev->in_flight)
		dev->in_flight--;
	live_del(core_of(dev), x);
	if (status == TR_STATUS_NO_DEVICE)
		dev->gone = true;

	ctx->stats.completed++;
	if (status == TR_STATUS_CANCELLED)
		ctx->stats.cancelled++;
	else if (status != TR_STATUS_COMPLETED)
		ctx->stats.failed++;
	if (x->endpoint & 0x80)
		ctx->stats.bytes_in += x->actual;
	else
		ctx->stats.bytes_out += x->actual;

	notify(ctx, TR_EV_COMPLETE, x, 0);
	tr_task_wake_dev(dev);
	done = x->done;
	if (done)
		done(x);
}

void tr_notify_synthetic_control(struct tr_dev *dev, const uint8_t setup[8], enum tr_status st)
{
	struct tr_ctx *ctx;
	struct tr_xfer x;

	if (!dev || !setup)
		return;
	ctx = dev->ctx;
	memset(&x, 0, sizeof(x));
	x.dev = dev;
	x.type = TR_XFER_CONTROL;
	memcpy(x.setup, setup, 8);
	x.endpoint = setup[0] & 0x80;
	x.id = ctx->next_id++;
	x.submit_ns = now_ns(ctx);
	notify(ctx, TR_EV_SUBMIT, &x, 0);
	x.status = st;
	x.done_ns = now_ns(ctx);
	notify(ctx, TR_EV_COMPLETE, &x, 0);
}

struct sync_state {
	bool done;
};

static void sync_done(struct tr_xfer *x)
{
	struct sync_state *s = x->user;
	s->done = true;
}

int tr_xfer_sync(struct tr_xfer *x, uint32_t timeout_ms)
{
	struct sync_state st = {false};
	struct tr_ctx *ctx;
	uint64_t deadline;
	bool timed_out = false;
	int rc;

	if (!x || !x->dev)
		return LP_EINVAL;
	ctx = x->dev->ctx;
	x->done = sync_done;
	x->user = &st;
	rc = tr_submit(x);
	if (rc)
		return rc;
	/* 0 = no deadline: the caller chose to rely on x->timeout_ms or on the bus */
	deadline = timeout_ms ? lp_clock_deadline_ms(ctx->env.clock, timeout_ms) : UINT64_MAX;
	while (!st.done) {
		if (now_ns(ctx) >= deadline) {
			timed_out = true;
			break;
		}
		rc = core_wait(ctx, deadline);
		if (rc < 0)
			break;
	}
	if (!st.done) {
		uint64_t reap_dl;

		tr_cancel(x);
		reap_dl = add_sat(now_ns(ctx), REAP_NS);
		while (!st.done && now_ns(ctx) < reap_dl) {
			if (core_wait(ctx, reap_dl) < 0)
				break;
		}
		if (!st.done) {
			/* Our stack frame is going away: the late completion must not
			 * reach it. */
			lp_logf(ctx->env.log, LP_LOG_WARN,
				"transport: transfer %llu not reaped within 1 s of cancelling",
				(unsigned long long)x->id);
			orphan(core_of(x->dev), x);
			x->user = NULL;
			return timed_out ? LP_ETIMEDOUT : (rc < 0 ? rc : LP_EIO);
		}
		if (x->status == TR_STATUS_CANCELLED)
			return timed_out ? LP_ETIMEDOUT : (rc < 0 ? rc : LP_ECANCELED);
	}
	x->user = NULL;
	return tr_status_to_err(x->status);
}

int tr_control_sync(struct tr_dev *dev, uint8_t bmRequestType, uint8_t bRequest, uint16_t wValue,
		    uint16_t wIndex, uint8_t *data, uint16_t wLength, uint32_t timeout_ms,
		    size_t *actual)
{
	struct tr_xfer x;
	int rc;

	if (!dev || (wLength && !data))
		return LP_EINVAL;
	memset(&x, 0, sizeof(x));
	x.dev = dev;
	x.type = TR_XFER_CONTROL;
	x.setup[0] = bmRequestType;
	x.setup[1] = bRequest;
	x.setup[2] = (uint8_t)(wValue & 0xff);
	x.setup[3] = (uint8_t)(wValue >> 8);
	x.setup[4] = (uint8_t)(wIndex & 0xff);
	x.setup[5] = (uint8_t)(wIndex >> 8);
	x.setup[6] = (uint8_t)(wLength & 0xff);
	x.setup[7] = (uint8_t)(wLength >> 8);
	x.endpoint = bmRequestType & 0x80;
	x.buf = data;
	x.len = wLength;
	rc = tr_xfer_sync(&x, timeout_ms);
	/* partial data before an error or timeout is worth knowing */
	if (actual)
		*actual = x.actual;
	return rc;
}

int tr_bulk_sync(struct tr_dev *dev, uint8_t endpoint, uint8_t *data, size_t len,
		 uint32_t timeout_ms, size_t *actual)
{
	struct tr_xfer x;
	int rc;

	if (!dev || (len && !data))
		return LP_EINVAL;
	memset(&x, 0, sizeof(x));
	x.dev = dev;
	x.type = TR_XFER_BULK;
	x.endpoint = endpoint;
	x.buf = data;
	x.len = len;
	rc = tr_xfer_sync(&x, timeout_ms);
	if (actual)
		*actual = x.actual;
	return rc;
}
