/* via_usbmuxd.c - --via-usbmuxd: `trust` and `list` through the usbmuxd
 * daemon when it owns the device (the direct path then finds the interface
 * BUSY). The devlink connects through the daemon's Connect, and pair records
 * and the SystemBUID are the daemon's (ReadPairRecord / SavePairRecord /
 * ReadBUID), so a pairing made here is the one every libimobiledevice tool
 * on this machine uses. Protocol: proto/usbmuxd_client.h, doc/protocol.md section 3.
 *
 * What the daemon hides: USB descriptors, the usbmux version and every USB
 * transfer - so no captures and no cable metrics on this path. A device
 * shows up in ListDevices only after the daemon's own lockdown preflight
 * (doc/protocol.md 3), so "no device" here can also mean "preflight still running". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/cli/devlink.h"
#include "src/cli/find.h"
#include "src/base/lp_str.h"
#include "src/diag/rules.h"
#include "src/diag/stages.h"
#include "proto/usbmuxd_client.h"

#define VIA_REQ_TIMEOUT_MS 10000 /* any single daemon request */
#define VIA_FIND_WAIT_MS 1000	 /* for a device to appear in ListDevices */
#define VIA_FIND_POLL_MS 200
#define VIA_HELD_WAIT_MS 5000	 /* a daemon holding the device lists it after its preflight */
#define VIA_REATTACH_POLL_MS 200 /* ListDevices while a device that left is awaited */
#define APPLE_VID 0x05ac

struct via {
	struct devlink l;
	struct lp_app *app;
	struct umc *umc; /* owned */
	uint32_t device_id;
	char udid[sizeof(((struct umc_device *)0)->udid)]; /* to know it again after it left */
	char buid[UMC_BUID_LEN + 1];
	char daemon[96]; /* "usbmuxd (pid 812)" */
};

static uint64_t req_deadline(struct via *v)
{
	return lp_clock_deadline_ms(&v->app->clock, VIA_REQ_TIMEOUT_MS);
}

static int via_connect(struct devlink *l, uint16_t port, uint64_t deadline, struct lp_stream **out,
		       struct lp_errinfo *e)
{
	struct via *v = l->impl;
	return umc_connect(v->umc, v->device_id, port, deadline, out, e);
}

/* The daemon drives the device; we only wait, then check it is still
 * listed so an unplug is reported as such rather than as a dead socket. */
static int via_idle(struct devlink *l, uint64_t until)
{
	struct via *v = l->impl;
	struct umc_device devs[UMC_MAX_DEVICES];
	size_t n = 0;

	lp_clock_sleep_until(&v->app->clock, until);
	if (umc_list_devices(v->umc, devs, UMC_MAX_DEVICES, &n, req_deadline(v), NULL) != 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (devs[i].device_id == v->device_id)
			return 0;
	return LP_ENODEV;
}

static int via_load(struct devlink *l, const char *udid, struct pair_record **out,
		    struct lp_errinfo *e)
{
	struct via *v = l->impl;
	return umc_read_pair_record(v->umc, udid, out, req_deadline(v), e);
}

static int via_save(struct devlink *l, const struct pair_record *rec, struct lp_errinfo *e)
{
	struct via *v = l->impl;
	return umc_save_pair_record(v->umc, rec, v->device_id, req_deadline(v), e);
}

static int via_buid(struct devlink *l, char out[37], struct lp_errinfo *e)
{
	struct via *v = l->impl;

	if (!v->buid[0]) {
		int r = umc_read_buid(v->umc, v->buid, req_deadline(v), e);
		if (r)
			return r;
	}
	snprintf(out, 37, "%s", v->buid);
	return 0;
}

static void via_name(struct devlink *l, const char *udid, char *buf, size_t n)
{
	struct via *v = l->impl;
	snprintf(buf, n, "usbmuxd at %s, PairRecordID %s", umc_addr(v->umc), udid);
}

static bool is_usb(const struct umc_device *d);

/* The daemon saw the device leave (Detached) and, if it comes back, lists it
 * again under a new DeviceID once its own preflight is done: the same UDID
 * over USB is ours. */
static int via_reattach(struct devlink *l, uint64_t deadline, char *where, size_t n,
			struct lp_errinfo *e)
{
	struct via *v = l->impl;
	struct umc_device devs[UMC_MAX_DEVICES];
	struct lp_clock *clk = &v->app->clock;

	for (;;) {
		uint64_t now, next;
		size_t nd = 0;
		int r = umc_list_devices(v->umc, devs, UMC_MAX_DEVICES, &nd, req_deadline(v), e);

		if (r)
			return r;
		for (size_t i = 0; i < nd; i++) {
			if (strcmp(devs[i].udid, v->udid) != 0 || !is_usb(&devs[i]))
				continue;
			if (devs[i].device_id == v->device_id)
				continue; /* the daemon has not seen it leave yet */
			v->device_id = devs[i].device_id;
			snprintf(where, n, "usbmuxd DeviceID %u, location 0x%08x",
				 devs[i].device_id, devs[i].location_id);
			return 0;
		}
		now = lp_clock_now(clk);
		if (now >= deadline)
			return lp_err_set(e, LP_ENODEV, "usbmuxd does not list it again");
		next = now + VIA_REATTACH_POLL_MS * LP_NS_PER_MS;
		lp_clock_sleep_until(clk, next < deadline ? next : deadline);
	}
}

static void via_free(struct devlink *l)
{
	struct via *v = l->impl;
	umc_free(v->umc);
	free(v);
}

static const struct devlink_ops via_ops = {
	.connect = via_connect,
	.idle = via_idle,
	.record_load = via_load,
	.record_save = via_save,
	.system_buid = via_buid,
	.record_name = via_name,
	.reattach = via_reattach,
	.free = via_free,
};

bool via_usbmuxd_fault(int err)
{
	switch (err) {
	case LP_EPROTO:
	case LP_EBADMSG:
	case LP_EPLIST:
	case LP_ETOOBIG:
	case LP_ETRUNC:
	case LP_ECLOSED:
	case LP_ECONNRESET:
	case LP_ETIMEDOUT:
	case LP_EUNSUPPORTED:
		return true;
	default:
		return false;
	}
}

/* "usbmuxd (pid 812)": the process serving the daemon's socket
 * (SO_PEERCRED - usbmuxd runs as its own user, whose /proc/PID/fd nobody
 * else may read - then /proc/PID/comm), else "usbmuxd at PATH". */
static void daemon_name(struct umc *umc, char *buf, size_t n)
{
	long pid = umc_peer_pid(umc);
	char path[64], comm[64] = "", clean[64];
	FILE *f;

	if (pid <= 0) {
		snprintf(buf, n, "usbmuxd at %s", umc_addr(umc));
		return;
	}
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	f = fopen(path, "re");
	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	lp_sanitize_str(clean, sizeof(clean), comm[0] ? comm : "usbmuxd");
	snprintf(buf, n, "%s (pid %ld)", clean, pid);
}

/* The usbmuxd devlink for `dev` (copied) over `umc` (adopted), served by
 * `daemon` (its name for messages, copied). NULL on allocation failure (umc
 * is then the caller's). */
static struct via *via_new(struct lp_app *app, struct umc *umc, const struct umc_device *dev,
			   const char *daemon)
{
	struct via *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->app = app;
	v->umc = umc;
	v->device_id = dev->device_id;
	snprintf(v->udid, sizeof(v->udid), "%s", dev->udid);
	v->l.ops = &via_ops;
	v->l.conn_kind = "usbmuxd connection";
	v->l.save_note = " (SavePairRecord)";
	v->l.impl = v;
	snprintf(v->daemon, sizeof(v->daemon), "%s", daemon);
	v->l.daemon = v->daemon;
	return v;
}

/* A daemon-level failure (absent, denied, malformed) as stage + verdict. */
static int daemon_fail(struct diag_report *r, struct diag_stage *s, struct umc *umc, int err,
		       const struct lp_errinfo *e)
{
	if (err == LP_ENOENT || err == LP_EACCES || err == LP_EINVAL) {
		/* not running, no permission on its socket, a bad address: the
		 * host's daemon, never the phone or the cable */
		diag_rule_usbmuxd_unreachable(r, s, err, e->msg);
		if (err == LP_EINVAL)
			snprintf(r->remedy_extra, sizeof(r->remedy_extra),
				 "Set %s to UNIX:/path or host:port.", UMC_ENV_ADDRESS);
		return err;
	}
	diag_end(r, s, DIAG_ST_FAIL, "%s", e->msg[0] ? e->msg : lp_strerror(err));
	if (umc && via_usbmuxd_fault(err)) {
		char name[96];
		daemon_name(umc, name, sizeof(name));
		diag_set_verdict(r, DIAG_V_USBMUXD_ERROR, "%s does not serve the request: %s", name,
				 e->msg);
	} else {
		diag_set_verdict(r, diag_verdict_for_err(err), "usbmuxd at %s: %s",
				 umc ? umc_addr(umc) : "?", e->msg);
	}
	return err;
}

static void fill_dev(struct diag_report *r, const struct umc_device *d)
{
	r->dev.present = true;
	r->dev.vid = APPLE_VID;
	r->dev.pid = d->product_id;
	/* Linux usbmuxd: LocationID = bus << 16 | address */
	r->dev.bus = (uint8_t)(d->location_id >> 16);
	r->dev.addr = (uint8_t)(d->location_id & 0xff);
	r->dev.speed_mbps = (double)d->speed_bps / 1e6;
	r->dev.mode = diag_mode_for_pid(APPLE_VID, d->product_id);
	r->dev.has_usbmux = true;
	snprintf(r->dev.udid, sizeof(r->dev.udid), "%s", d->udid);
}

static bool is_usb(const struct umc_device *d)
{
	return !d->conn_type[0] || strcmp(d->conn_type, "USB") == 0;
}

/* ListDevices, waiting up to VIA_FIND_WAIT_MS for a first entry. */
static int list_wait(struct lp_app *app, struct umc *umc, struct umc_device *devs, size_t *n,
		     struct lp_errinfo *e)
{
	uint64_t until = lp_clock_deadline_ms(&app->clock, VIA_FIND_WAIT_MS);

	for (;;) {
		int r = umc_list_devices(umc, devs, UMC_MAX_DEVICES, n,
					 lp_clock_deadline_ms(&app->clock, VIA_REQ_TIMEOUT_MS), e);
		uint64_t now;

		if (r || *n)
			return r;
		now = lp_clock_now(&app->clock);
		if (now >= until)
			return 0;
		lp_clock_sleep_until(&app->clock, now + VIA_FIND_POLL_MS * LP_NS_PER_MS < until
							  ? now + VIA_FIND_POLL_MS * LP_NS_PER_MS
							  : until);
	}
}

int via_usbmuxd_open(struct lp_app *app, struct diag_report *r, struct devlink **out)
{
	struct umc_device devs[UMC_MAX_DEVICES];
	struct lp_errinfo e = {0};
	struct diag_stage *s;
	struct umc *umc = NULL;
	struct via *v;
	char name[sizeof(v->daemon)];
	size_t n = 0, best;
	int ret;

	/* find device */
	s = diag_stage_begin(r, DIAG_STAGE_FIND_DEVICE);
	ret = umc_new(NULL, &app->clock, &app->log, &umc, &e);
	if (!ret)
		ret = list_wait(app, umc, devs, &n, &e);
	if (ret) {
		daemon_fail(r, s, umc, ret, &e);
		umc_free(umc);
		return ret;
	}
	if (n == 0) {
		diag_end(r, s, DIAG_ST_FAIL, "usbmuxd at %s lists no device after %.1f s",
			 umc_addr(umc), VIA_FIND_WAIT_MS / 1000.0);
		diag_set_verdict(r, DIAG_V_NO_DEVICE, "usbmuxd at %s lists no device",
				 umc_addr(umc));
		snprintf(
			r->remedy_extra, sizeof(r->remedy_extra),
			"usbmuxd lists a phone only after its own lockdown check: if one is plugged in, "
			"unlock it and watch for \"Trust This Computer?\", or run without --via-usbmuxd.");
		umc_free(umc);
		return LP_ENODEV;
	}
	for (best = 0; best < n; best++) {
		if (app->udid ? strcmp(devs[best].udid, app->udid) == 0 : is_usb(&devs[best]))
			break;
	}
	if (best == n && app->udid) {
		char list[LP_ERRINFO_MSG - 64], where[UMC_MAX_ADDR + 32];
		size_t off = 0;

		list[0] = '\0';
		for (size_t i = 0; i < n && off < sizeof(list); i++) {
			int k = snprintf(list + off, sizeof(list) - off,
					 "%s%s (usbmuxd device %u, %s)", i ? ", " : "",
					 devs[i].udid, devs[i].device_id,
					 devs[i].conn_type[0] ? devs[i].conn_type : "USB");
			if (k < 0)
				break;
			off += (size_t)k;
		}
		snprintf(where, sizeof(where), "listed by usbmuxd at %s", umc_addr(umc));
		diag_rule_udid_not_found(r, s, app->udid, n, list, where);
		umc_free(umc);
		return LP_ENODEV;
	}
	if (best == n)
		best = 0;
	fill_dev(r, &devs[best]);
	{
		char others[96] = "";
		size_t nusb = 0;

		for (size_t i = 0; i < n; i++)
			nusb += is_usb(&devs[i]);
		/* several phones and no --udid: say that this is one of them */
		if (!app->udid && nusb > 1)
			snprintf(others, sizeof(others),
				 "; one of %zu phones usbmuxd lists on USB: --udid picks another",
				 nusb);
		diag_end(
			r, s, DIAG_ST_OK,
			"usbmuxd device %u: %04x:%04x over %s, location 0x%08x, %g Mb/s, UDID %s%s",
			devs[best].device_id, APPLE_VID, devs[best].product_id,
			devs[best].conn_type[0] ? devs[best].conn_type : "USB",
			devs[best].location_id, r->dev.speed_mbps, devs[best].udid, others);
	}

	daemon_name(umc, name, sizeof(name));
	v = via_new(app, umc, &devs[best], name);
	if (!v) {
		umc_free(umc);
		diag_end(r, diag_stage_begin(r, DIAG_STAGE_USBMUXD_CONNECT), DIAG_ST_FAIL,
			 "out of memory");
		diag_set_verdict(r, DIAG_V_NONE, "out of memory");
		return LP_ENOMEM;
	}

	/* usbmuxd connect: the daemon answers a second request and gives the
	 * SystemBUID a Pair needs */
	s = diag_stage_begin(r, DIAG_STAGE_USBMUXD_CONNECT);
	ret = umc_read_buid(umc, v->buid, lp_clock_deadline_ms(&app->clock, VIA_REQ_TIMEOUT_MS),
			    &e);
	if (ret) {
		daemon_fail(r, s, umc, ret, &e);
		via_free(&v->l);
		return ret;
	}
	diag_end(r, s, DIAG_ST_OK, "usbmuxd at %s (plist protocol), device %u, SystemBUID %s",
		 umc_addr(umc), v->device_id, v->buid);
	*out = &v->l;
	return 0;
}

/* UDIDs compare without case and hyphens: usbmuxd may list the 24-digit
 * serial of a newer device with or without the hyphen after 8. */
static bool udid_same(const char *a, const char *b)
{
	for (;;) {
		while (*a == '-')
			a++;
		while (*b == '-')
			b++;
		if (!*a || !*b)
			return !*a && !*b;
		if ((*a | 0x20) != (*b | 0x20))
			return false;
		a++;
		b++;
	}
}

/* ListDevices until the device with `udid` is listed or `wait_ms` passed:
 * *found its index, or n. */
static int list_find(struct lp_app *app, struct umc *umc, const char *udid, unsigned wait_ms,
		     struct umc_device *devs, size_t *n, size_t *found, struct lp_errinfo *e)
{
	uint64_t until = lp_clock_deadline_ms(&app->clock, wait_ms);

	for (;;) {
		uint64_t now;
		int r = umc_list_devices(umc, devs, UMC_MAX_DEVICES, n,
					 lp_clock_deadline_ms(&app->clock, VIA_REQ_TIMEOUT_MS), e);
		if (r)
			return r;
		for (*found = 0; *found < *n; (*found)++)
			if (udid_same(devs[*found].udid, udid))
				return 0;
		now = lp_clock_now(&app->clock);
		if (now >= until)
			return 0;
		lp_clock_sleep_until(&app->clock, now + VIA_FIND_POLL_MS * LP_NS_PER_MS < until
							  ? now + VIA_FIND_POLL_MS * LP_NS_PER_MS
							  : until);
	}
}

int via_usbmuxd_held(struct lp_app *app, struct diag_report *r, const char *held, const char *doing,
		     struct devlink **out)
{
	struct umc_device devs[UMC_MAX_DEVICES];
	struct diag_stage *s = diag_stage_begin(r, DIAG_STAGE_USBMUXD_CONNECT);
	struct lp_errinfo e = {0};
	struct umc *umc = NULL;
	struct via *v = NULL;
	char name[96] = "", what[DIAG_DETAIL];
	size_t n = 0, found = 0;
	int ret;

	ret = umc_new(NULL, &app->clock, &app->log, &umc, &e);
	if (!ret) {
		daemon_name(umc, name, sizeof(name));
		ret = list_find(app, umc, r->dev.udid, VIA_HELD_WAIT_MS, devs, &n, &found, &e);
	}
	if (ret == LP_ENOENT || ret == LP_EACCES || ret == LP_EINVAL) {
		/* no daemon to go through: whoever holds the interface, it is
		 * not a usbmuxd linkprobe can use */
		diag_end(r, s, DIAG_ST_FAIL, "no usbmuxd to go through: %s", e.msg);
		diag_set_verdict(r, DIAG_V_DEVICE_BUSY, "%s; and no usbmuxd to go through (%s)",
				 held, e.msg);
		umc_free(umc);
		return LP_EBUSY;
	}
	if (ret) {
		snprintf(what, sizeof(what), "answered ListDevices with an error: %s", e.msg);
		diag_rule_usbmuxd(r, s, name, what);
		umc_free(umc);
		return ret;
	}
	if (found == n) {
		snprintf(what, sizeof(what),
			 "does not list the device on bus %u address %u (UDID %s) after %.0f s of "
			 "waiting for it; it lists %zu device(s)",
			 r->dev.bus, r->dev.addr, r->dev.udid, VIA_HELD_WAIT_MS / 1000.0, n);
		diag_rule_usbmuxd(r, s, name, what);
		umc_free(umc);
		return LP_ENODEV;
	}
	v = via_new(app, umc, &devs[found], name);
	if (!v) {
		umc_free(umc);
		diag_end(r, s, DIAG_ST_FAIL, "out of memory");
		diag_set_verdict(r, DIAG_V_NONE, "out of memory");
		return LP_ENOMEM;
	}
	ret = umc_read_buid(umc, v->buid, lp_clock_deadline_ms(&app->clock, VIA_REQ_TIMEOUT_MS),
			    &e);
	if (ret) {
		snprintf(what, sizeof(what), "answered ReadBUID with an error: %s", e.msg);
		diag_rule_usbmuxd(r, s, name, what);
		via_free(&v->l);
		return ret;
	}
	diag_end(r, s, DIAG_ST_OK,
		 "%s holds the device: %s through it (usbmuxd at %s, device %u, SystemBUID %s)",
		 name, doing, umc_addr(umc), v->device_id, v->buid);
	*out = &v->l;
	return 0;
}

int cmd_list_usbmuxd(struct lp_app *app)
{
	struct umc_device devs[UMC_MAX_DEVICES];
	struct diag_report r;
	struct lp_errinfo e = {0};
	struct diag_stage *s;
	struct umc *umc = NULL;
	json_object *jdevs;
	size_t n = 0;
	int code, ret;

	lp_clock_init_real(&app->clock);
	diag_init(&r, "list", &app->clock);
	out_attach(app, &r);
	jdevs = json_object_new_array();

	s = diag_stage_begin(&r, DIAG_STAGE_ENUMERATE);
	ret = umc_new(NULL, &app->clock, &app->log, &umc, &e);
	if (!ret)
		ret = umc_list_devices(umc, devs, UMC_MAX_DEVICES, &n,
				       lp_clock_deadline_ms(&app->clock, VIA_REQ_TIMEOUT_MS), &e);
	if (ret) {
		daemon_fail(&r, s, umc, ret, &e);
		goto done;
	}
	diag_end(&r, s, DIAG_ST_OK, "%zu device(s) listed by usbmuxd at %s", n, umc_addr(umc));
	for (size_t i = 0; i < n; i++) {
		const struct umc_device *d = &devs[i];
		const char *mode = diag_mode_for_pid(APPLE_VID, d->product_id);
		json_object *jd = json_object_new_object();

		if (i == 0)
			fill_dev(&r, d);
		json_object_object_add(jd, "device_id", json_object_new_int64(d->device_id));
		json_object_object_add(jd, "udid", json_object_new_string(d->udid));
		json_object_object_add(jd, "vid", json_object_new_int(APPLE_VID));
		json_object_object_add(jd, "pid", json_object_new_int(d->product_id));
		json_object_object_add(jd, "mode", json_object_new_string(mode));
		json_object_object_add(jd, "location_id", json_object_new_int64(d->location_id));
		json_object_object_add(jd, "bus", json_object_new_int((int)(d->location_id >> 16)));
		json_object_object_add(jd, "address",
				       json_object_new_int((int)(d->location_id & 0xffff)));
		json_object_object_add(jd, "speed_mbps",
				       json_object_new_double((double)d->speed_bps / 1e6));
		json_object_object_add(
			jd, "connection_type",
			json_object_new_string(d->conn_type[0] ? d->conn_type : "USB"));
		json_object_object_add(jd, "has_usbmux", json_object_new_boolean(1));
		json_object_array_add(jdevs, jd);
		s = diag_stage_begin(&r, DIAG_STAGE_DEVICE);
		diag_end(
			&r, s, DIAG_ST_OK,
			"usbmuxd device %u: %04x:%04x over %s, %s mode, location 0x%08x, %g Mb/s, UDID %s",
			d->device_id, APPLE_VID, d->product_id,
			d->conn_type[0] ? d->conn_type : "USB", mode, d->location_id,
			(double)d->speed_bps / 1e6, d->udid);
	}
	if (n == 0)
		diag_set_verdict(&r, DIAG_V_NO_DEVICE, "usbmuxd at %s lists no device",
				 umc_addr(umc));
	else
		diag_set_verdict(&r, DIAG_V_FOUND, "%zu device(s) via usbmuxd", n);
done:
	r.extra = json_object_new_object();
	json_object_object_add(r.extra, "devices", jdevs);
	code = out_finish(app, &r);
	diag_release(&r);
	umc_free(umc);
	return code;
}
