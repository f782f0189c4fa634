/* find.c - finding the device to talk to. */
#include "src/cli/find.h"

#include <string.h>

#include "proto/hostlink.h"

void find_fill_dev(struct diag_report *r, const struct tr_devinfo *d)
{
	r->dev.present = true;
	r->dev.vid = d->vid;
	r->dev.pid = d->pid;
	r->dev.bus = d->bus;
	r->dev.addr = d->addr;
	r->dev.speed_mbps = (double)tr_speed_bps(d->speed) / 1e6;
	r->dev.mode = diag_mode_for_pid(d->vid, d->pid);
}

static int rank(const struct tr_devinfo *d)
{
	return strcmp(diag_mode_for_pid(d->vid, d->pid), "normal") == 0 ? 0 : 1;
}

int find_device(struct lp_app *app, struct diag_report *r, uint64_t wait_ns, struct tr_devinfo *out,
		struct lp_errinfo *e)
{
	struct tr_devinfo devs[16];
	uint64_t deadline = lp_clock_now(&app->clock) + wait_ns;
	size_t n = 0;
	int ret;

	for (;;) {
		ret = tr_list(app->tr, devs, 16, &n, e);
		if (ret)
			return ret;
		if (n > 0 || lp_clock_now(&app->clock) >= deadline)
			break;
		ret = tr_wait_hotplug(app->tr, deadline);
		if (ret)
			return lp_err_set(e, ret, "waiting for devices: %s", lp_strerror(ret));
	}
	if (n == 0)
		return lp_err_set(e, LP_ENODEV, "no Apple device (VID 05ac) on USB after %.1f s",
				  (double)wait_ns / LP_NS_PER_S);
	size_t best = 0;
	if (app->udid) {
		/* the serial needs the device opened: probe each candidate */
		for (best = 0; best < n; best++) {
			struct hl_probe p;
			if (hl_probe(app->tr, &devs[best], &p, NULL) == 0 && strcmp(p.udid, app->udid) == 0)
				break;
		}
		if (best == n)
			return lp_err_set(e, LP_ENODEV, "no device with UDID %s among %zu Apple device(s)",
					  app->udid, n);
	} else {
		for (size_t i = 1; i < n; i++)
			if (rank(&devs[i]) < rank(&devs[best]))
				best = i;
	}
	*out = devs[best];
	find_fill_dev(r, out);
	return 0;
}
