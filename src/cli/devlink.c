/* devlink.c - the direct devlink: connections are our own usbmux streams
 * (hostlink), waiting drives the transport, records live in --pair-dir.
 * The usbmuxd devlink is in via_usbmuxd.c. */
#include <stdio.h>
#include <stdlib.h>

#include "src/cli/devlink.h"
#include "proto/hostlink.h"

struct direct {
	struct devlink l;
	struct hl_link *link;	/* owned */
	const char *pair_dir;	/* borrowed */
	struct lp_clock *clock; /* borrowed */
};

static int direct_connect(struct devlink *l, uint16_t port, uint64_t deadline,
			  struct lp_stream **out, struct lp_errinfo *e)
{
	struct direct *d = l->impl;
	return hl_connect(d->link, port, deadline, out, e);
}

static int direct_idle(struct devlink *l, uint64_t until)
{
	struct direct *d = l->impl;

	/* hl_pump returns at each completion: loop so the device's timers run */
	while (lp_clock_now(d->clock) < until) {
		if (hl_pump(d->link, until) == LP_ENODEV)
			return LP_ENODEV;
	}
	return 0;
}

static int direct_load(struct devlink *l, const char *udid, struct pair_record **out,
		       struct lp_errinfo *e)
{
	struct direct *d = l->impl;
	return pair_record_load(d->pair_dir, udid, out, e);
}

static int direct_save(struct devlink *l, const struct pair_record *rec, struct lp_errinfo *e)
{
	struct direct *d = l->impl;
	return pair_record_save(d->pair_dir, rec, e);
}

static int direct_buid(struct devlink *l, char out[37], struct lp_errinfo *e)
{
	struct direct *d = l->impl;
	return pair_system_buid(d->pair_dir, out, e);
}

static void direct_name(struct devlink *l, const char *udid, char *buf, size_t n)
{
	struct direct *d = l->impl;
	snprintf(buf, n, "%s/%s.plist", d->pair_dir, udid);
}

static void direct_free(struct devlink *l)
{
	struct direct *d = l->impl;
	hl_close(d->link);
	free(d);
}

static const struct devlink_ops direct_ops = {
	.connect = direct_connect,
	.idle = direct_idle,
	.record_load = direct_load,
	.record_save = direct_save,
	.system_buid = direct_buid,
	.record_name = direct_name,
	.free = direct_free,
};

struct devlink *devlink_direct_new(struct hl_link *link, const char *pair_dir,
				   struct lp_clock *clock)
{
	struct direct *d = calloc(1, sizeof(*d));

	if (!d) {
		hl_close(link);
		return NULL;
	}
	d->link = link;
	d->pair_dir = pair_dir;
	d->clock = clock;
	d->l.ops = &direct_ops;
	d->l.conn_kind = "mux connection";
	d->l.save_note = " (mode 0600)";
	d->l.impl = d;
	return &d->l;
}
