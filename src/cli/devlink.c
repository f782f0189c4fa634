/* devlink.c - the direct devlink: connections are our own usbmux streams
 * (hostlink), waiting drives the transport, records live in --pair-dir.
 * The usbmuxd devlink is in via_usbmuxd.c.
 *
 * A record directory this user may not read or write (on a desktop
 * /var/lib/lockdown belongs to root or to usbmuxd's user) is not the end
 * when usbmuxd runs: the record, the SystemBUID and a new pairing go through
 * the daemon (ReadPairRecord, ReadBUID, SavePairRecord), as libimobiledevice
 * does - the USB path stays ours.
 *
 * A device that left is followed (reattach) as the cable test follows one:
 * the attachment that left can stay listed for a while after its transfers
 * failed, so it is skipped by its session; a new attachment is ours only if
 * its USB serial is the UDID we had; one that vanishes again before it is
 * open, or whose usbmux does not come up at once, is tried again until the
 * deadline. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/cli/devlink.h"
#include "usb/usb_probe.h"
#include "proto/hostlink.h"
#include "proto/usbmuxd_client.h"

#define DIRECT_DAEMON_MS 5000	    /* any one request to usbmuxd for the records */
#define DIRECT_REATTACH_POLL_MS 200 /* a fresh look at the bus at least this often */

struct direct {
	struct devlink l;
	struct lp_app *app;	/* borrowed: transport, clock, capture */
	struct hl_link *link;	/* owned */
	struct tr_devinfo info; /* the attachment `link` is open on */
	char udid[64];		/* its USB serial, which a returning device must show */
	const char *pair_dir;	/* borrowed */
	struct lp_clock *clock; /* borrowed */
	struct umc *umc;	/* owned: usbmuxd, once the directory refused us */
	bool umc_tried;
	bool records_from_daemon; /* the directory refused; the daemon answered */
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

static uint64_t daemon_deadline(struct direct *d)
{
	return lp_clock_deadline_ms(d->clock, DIRECT_DAEMON_MS);
}

/* usbmuxd, when the directory said no (NULL when no daemon can be asked). */
static struct umc *daemon_for_records(struct direct *d, int err)
{
	if (err != LP_EACCES)
		return NULL;
	if (!d->umc_tried) {
		d->umc_tried = true;
		/* only a daemon that answers: "not running" must not read as
		 * "it has no record" (both are LP_ENOENT) */
		if (umc_new(NULL, d->clock, NULL, &d->umc, NULL) ||
		    umc_probe(d->umc, daemon_deadline(d), NULL)) {
			umc_free(d->umc);
			d->umc = NULL;
		}
	}
	return d->umc;
}

static int direct_load(struct devlink *l, const char *udid, struct pair_record **out,
		       struct lp_errinfo *e)
{
	struct direct *d = l->impl;
	struct lp_errinfo de = {0};
	struct umc *u;
	int r = d->records_from_daemon ? LP_EACCES : pair_record_load(d->pair_dir, udid, out, e);
	int r2;

	if (!(u = daemon_for_records(d, r)))
		return r;
	r2 = umc_read_pair_record(u, udid, out, daemon_deadline(d), &de);
	if (r2 == 0 || r2 == LP_ENOENT) {
		d->records_from_daemon = true;
		d->l.local_records = false;
		if (r2)
			lp_err_set(e, r2, "%s", de.msg);
		return r2;
	}
	return r; /* no daemon either: the directory's refusal is the evidence */
}

static int direct_save(struct devlink *l, const struct pair_record *rec, struct lp_errinfo *e)
{
	struct direct *d = l->impl;
	struct umc *u;
	int r = d->records_from_daemon ? LP_EACCES : pair_record_save(d->pair_dir, rec, e);

	if (!(u = daemon_for_records(d, r)))
		return r;
	r = umc_save_pair_record(u, rec, 0, daemon_deadline(d), e);
	if (!r) {
		d->records_from_daemon = true;
		d->l.local_records = false;
		d->l.save_note = " (SavePairRecord)";
	}
	return r;
}

/* Before a Pair: a directory that cannot keep the new record is the host's
 * fault - unless usbmuxd answers and keeps it instead. */
static int direct_check(struct devlink *l, struct lp_errinfo *e)
{
	struct direct *d = l->impl;
	int r;

	if (d->records_from_daemon)
		return 0;
	r = pair_store_check_writable(d->pair_dir, e);
	if (r && daemon_for_records(d, r)) {
		d->records_from_daemon = true;
		d->l.local_records = false;
		return 0;
	}
	return r;
}

static int direct_buid(struct devlink *l, char out[37], struct lp_errinfo *e)
{
	struct direct *d = l->impl;
	struct umc *u;
	int r = d->records_from_daemon ? LP_EACCES : pair_system_buid(d->pair_dir, out, e);

	if (!(u = daemon_for_records(d, r)))
		return r;
	return umc_read_buid(u, out, daemon_deadline(d), e);
}

static void direct_name(struct devlink *l, const char *udid, char *buf, size_t n)
{
	struct direct *d = l->impl;

	if (d->records_from_daemon)
		snprintf(buf, n, "usbmuxd at %s, PairRecordID %s (%s is not this user's to read)",
			 umc_addr(d->umc), udid, d->pair_dir);
	else
		snprintf(buf, n, "%s/%s.plist", d->pair_dir, udid);
}

static int direct_reattach(struct devlink *l, uint64_t deadline, char *where, size_t n,
			   struct lp_errinfo *e)
{
	struct direct *d = l->impl;
	struct tr_ctx *tr = d->app->tr;
	struct tr_devinfo *devs = calloc(TR_LIST_MAX, sizeof(*devs));
	struct lp_errinfo last = {0};
	int r;

	if (!devs)
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	hl_close(d->link);
	d->link = NULL;
	d->l.link = NULL;
	for (;;) {
		uint64_t now, next;
		size_t nd = 0;

		r = tr_list(tr, devs, TR_LIST_MAX, &nd, e);
		if (r)
			goto out;
		for (size_t i = 0; i < nd; i++) {
			struct usbd_probe *p;
			struct hl_link *hl = NULL;
			struct lp_errinfo oe = {0};
			bool same;

			if (devs[i].session == d->info.session || devs[i].vid != d->info.vid)
				continue;
			p = calloc(1, sizeof(*p));
			if (!p) {
				r = lp_err_set(e, LP_ENOMEM, "out of memory");
				goto out;
			}
			same = usbd_probe(tr, &devs[i], p, NULL) == 0 &&
			       strcmp(p->udid, d->udid) == 0;
			free(p);
			if (!same)
				continue;
			r = hl_open(tr, &devs[i], NULL, &hl, &oe);
			if (r == 0) {
				d->link = hl;
				d->l.link = hl;
				d->info = devs[i];
				app_capture_link(d->app, hl);
				snprintf(where, n, "address %u", devs[i].addr);
				goto out;
			}
			/* gone again before it was open, or usbmux not up yet: the
			 * next look decides; the error stays if time runs out */
			last = oe;
			last.code = r;
		}
		now = lp_clock_now(d->clock);
		if (now >= deadline) {
			if (last.code && last.code != LP_ENODEV) {
				r = lp_err_set(e, last.code, "it came back, but usbmux did not: %s",
					       last.msg);
			} else {
				r = lp_err_set(e, LP_ENODEV, "not back on the bus");
			}
			goto out;
		}
		next = now + DIRECT_REATTACH_POLL_MS * LP_NS_PER_MS;
		r = tr_wait_hotplug(tr, next < deadline ? next : deadline);
		if (r) {
			lp_err_set(e, r, "waiting for the device to come back: %s", lp_strerror(r));
			goto out;
		}
	}
out:
	free(devs);
	return r;
}

static void direct_free(struct devlink *l)
{
	struct direct *d = l->impl;
	hl_close(d->link);
	umc_free(d->umc);
	free(d);
}
static const struct devlink_ops direct_ops = {
	.connect = direct_connect,
	.idle = direct_idle,
	.record_load = direct_load,
	.record_save = direct_save,
	.record_check = direct_check,
	.system_buid = direct_buid,
	.record_name = direct_name,
	.reattach = direct_reattach,
	.free = direct_free,
};

struct devlink *devlink_direct_new(struct lp_app *app, struct hl_link *link,
				   const struct tr_devinfo *info, const char *pair_dir)
{
	struct direct *d = calloc(1, sizeof(*d));

	if (!d) {
		hl_close(link);
		return NULL;
	}
	d->app = app;
	d->link = link;
	d->l.link = link;
	d->info = *info;
	d->l.info = &d->info;
	snprintf(d->udid, sizeof(d->udid), "%s", hl_info(link)->udid);
	d->pair_dir = pair_dir;
	d->clock = &app->clock;
	d->l.ops = &direct_ops;
	d->l.conn_kind = "mux connection";
	d->l.save_note = " (mode 0600)";
	d->l.local_records = true;
	d->l.impl = d;
	return &d->l;
}
