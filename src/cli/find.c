/* find.c - finding the device to talk to, and the USB stages every direct
 * command runs first: find device -> descriptors -> usbmux. */
#include "src/cli/find.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/hostlink.h"
#include "src/diag/rules.h"
#include "src/diag/stages.h"

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

static bool is_phone(const struct tr_devinfo *d)
{
	return strcmp(diag_mode_for_pid(d->vid, d->pid), "normal") == 0;
}

/* Which device to take when no --udid says: 0 a phone in normal mode that
 * offers usbmux, 1 one that does not (camera-only: the same PID), 2 one
 * whose descriptors cannot be read (gone, or broken), 3 recovery, DFU and
 * the like, 4 any other Apple device (a keyboard, a display). Only called
 * with several devices: reading the descriptors costs control transfers
 * (which a --capture records, as it records every device's). */
enum { RANK_USBMUX, RANK_NO_USBMUX, RANK_UNREADABLE, RANK_RESTORE, RANK_OTHER };
static int rank(struct lp_app *app, const struct tr_devinfo *d)
{
	const char *mode = diag_mode_for_pid(d->vid, d->pid);
	struct usbd_probe p;

	if (strcmp(mode, "normal") != 0)
		return strcmp(mode, "unknown") == 0 ? RANK_OTHER : RANK_RESTORE;
	if (usbd_probe(app->tr, d, &p, NULL) != 0)
		return RANK_UNREADABLE;
	return p.has_usbmux ? RANK_USBMUX : RANK_NO_USBMUX;
}

/* The devices there are, for a --udid that names none of them:
 * "UDID (bus 1 address 2, normal mode), ..." */
static void list_connected(struct lp_app *app, const struct tr_devinfo *devs, size_t n, char *buf,
			   size_t cap)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && off < cap; i++) {
		struct usbd_probe p;
		const char *udid = usbd_probe(app->tr, &devs[i], &p, NULL) == 0 && p.udid[0]
					   ? p.udid
					   : "(UDID unreadable)";
		int k = snprintf(buf + off, cap - off, "%s%s (bus %u address %u, %s mode)",
				 i ? ", " : "", udid, devs[i].bus, devs[i].addr,
				 diag_mode_for_pid(devs[i].vid, devs[i].pid));
		if (k < 0)
			break;
		off += (size_t)k;
	}
}

int find_device(struct lp_app *app, struct diag_report *r, uint64_t wait_ns, struct tr_devinfo *out,
		size_t *listed, size_t *phones, int *chosen_rank, struct lp_errinfo *e)
{
	struct tr_devinfo devs[TR_LIST_MAX];
	uint64_t deadline = lp_clock_now(&app->clock) + wait_ns;
	size_t n = 0;
	int ret;

	for (;;) {
		ret = tr_list(app->tr, devs, TR_LIST_MAX, &n, e);
		if (ret)
			return ret;
		if (n > 0 || lp_clock_now(&app->clock) >= deadline)
			break;
		ret = tr_wait_hotplug(app->tr, deadline);
		if (ret)
			return lp_err_set(e, ret, "waiting for devices: %s", lp_strerror(ret));
	}
	if (listed)
		*listed = n;
	if (n == 0)
		return lp_err_set(e, LP_ENODEV, "no Apple device (VID 05ac) on USB after %.1f s",
				  (double)wait_ns / LP_NS_PER_S);
	size_t best = 0;
	if (app->udid) {
		/* the serial needs the device opened: probe each candidate */
		for (best = 0; best < n; best++) {
			struct usbd_probe p;
			if (usbd_probe(app->tr, &devs[best], &p, NULL) == 0 &&
			    strcmp(p.udid, app->udid) == 0)
				break;
		}
		if (best == n) {
			char list[LP_ERRINFO_MSG - 64];
			list_connected(app, devs, n, list, sizeof(list));
			return lp_err_set(e, LP_ENOENT, "%s", list);
		}
	} else if (n > 1) {
		int best_rank = rank(app, &devs[0]);
		size_t np = 0;

		for (size_t i = 1; i < n && best_rank > RANK_USBMUX; i++) {
			int k = rank(app, &devs[i]);
			if (k < best_rank) {
				best = i;
				best_rank = k;
			}
		}
		for (size_t i = 0; i < n; i++)
			np += is_phone(&devs[i]);
		if (phones)
			*phones = np;
		if (chosen_rank)
			*chosen_rank = best_rank;
	}
	*out = devs[best];
	find_fill_dev(r, out);
	return 0;
}

/* Nothing enumerated: NO_USB_HOST when the backend sees no host controller;
 * else ask the kernel log whether something tried to (usb/kmsg.h).
 * LINKPROBE_KMSG names a file of kmsg lines to read instead of /dev/kmsg
 * (the whole file counts); a simulated device has no kernel, so without it
 * only real devices consult /dev/kmsg, for the last FIND_KMSG_WINDOW_S
 * seconds. */
#define FIND_KMSG_WINDOW_S 120
static void nothing_found(struct lp_app *app, struct diag_report *r, struct diag_stage *s,
			  const char *msg)
{
	const char *path = getenv("LINKPROBE_KMSG");
	long controllers = tr_host_controllers(app->tr);
	uint64_t since = 0;
	struct usbk_findings k;
	struct timespec ts;
	int rc;

	if (controllers == 0 ||
	    ((!path || !path[0]) &&
	     (app->is_sim ||
	      strncmp(app->device_spec ? app->device_spec : "libusb", "libusb", 6) != 0))) {
		diag_rule_nothing_found(r, s, controllers, msg, NULL, false, NULL);
		return;
	}
	if (!path || !path[0]) {
		path = "/dev/kmsg";
		if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0 &&
		    (uint64_t)ts.tv_sec > FIND_KMSG_WINDOW_S)
			since = ((uint64_t)ts.tv_sec - FIND_KMSG_WINDOW_S) * 1000000ull;
	}
	rc = usbk_scan(path, since, &k, NULL);
	diag_rule_nothing_found(r, s, controllers, msg, &k, rc == 0, path);
}

/* The USB stages on `pin` (NULL: find the device); with `held`, a usbmux
 * interface that another process holds ends the usbmux stage as skipped
 * with the holder in held (the caller goes through usbmuxd). */
static int usb_stages(struct lp_app *app, struct diag_report *r, const struct tr_devinfo *pin,
		      struct tr_devinfo *info, struct usbd_probe *p, struct hl_link **link,
		      char *held, size_t heldsz)
{
	struct lp_errinfo e = {0};
	struct diag_stage *s;
	const struct usbd_probe *lp;
	size_t listed = 0, phones = 0;
	int ret, chosen = -1;

	/* find device: does anything enumerate at all (a charge-only cable shows nothing) */
	s = diag_stage_begin(r, DIAG_STAGE_FIND_DEVICE);
	if (pin) {
		*info = *pin;
		find_fill_dev(r, info);
		ret = 0;
	} else {
		ret = find_device(app, r, LP_NS_PER_S, info, &listed, &phones, &chosen, &e);
	}
	if (ret) {
		if (ret == LP_ENODEV)
			nothing_found(app, r, s, e.msg);
		else if (ret == LP_ENOENT && app->udid)
			diag_rule_udid_not_found(r, s, app->udid, listed, e.msg, "on USB");
		else
			diag_rule_err(r, s, ret, e.msg);
		return ret;
	}
	{
		char sp[48], via[96] = "", others[112] = "";

		if (info->port_path[0])
			snprintf(via, sizeof(via), ", port path %s (%s)", info->port_path,
				 diag_hubs_phrase(info->port_path));
		/* several phones and no --udid (chosen is set then): say that
		 * this is one of them */
		if (phones > 1 && chosen >= 0)
			snprintf(others, sizeof(others),
				 "; one of %zu phones on USB%s: --udid picks another", phones,
				 chosen == RANK_USBMUX ? " (the first that offers usbmux)"
						       : ", none of which offers usbmux");
		diag_end(r, s, DIAG_ST_OK, "%04x:%04x on bus %u address %u, %s%s%s", info->vid,
			 info->pid, info->bus, info->addr,
			 diag_speed_text(r->dev.speed_mbps, sp, sizeof(sp)), via, others);
	}

	/* descriptors: what the device offers, and in which mode it is */
	s = diag_stage_begin(r, DIAG_STAGE_DESCRIPTORS);
	ret = usbd_probe(app->tr, info, p, &e);
	if (ret) {
		diag_rule_err(r, s, ret, e.msg);
		return ret;
	}
	snprintf(r->dev.udid, sizeof(r->dev.udid), "%s", p->udid);
	snprintf(r->dev.product, sizeof(r->dev.product), "%s", p->product);
	r->dev.has_usbmux = p->has_usbmux;
	if (diag_rule_mode(r, s, info->vid, info->pid))
		return LP_EUNSUPPORTED;
	if (!p->has_usbmux && p->config_errors) {
		/* a configuration we could not read may be the usbmux one */
		diag_end(
			r, s, DIAG_ST_FAIL,
			"%zu of %zu configuration(s) could not be read, and none that could offers usbmux",
			p->config_errors, p->config_errors + p->num_configs);
		diag_set_verdict(r, DIAG_V_USB_ERROR, "stage descriptors: %s", s->detail);
		return LP_EIO;
	}
	if (!p->has_usbmux) {
		diag_rule_camera_only(r, s, p->num_configs);
		return LP_EUNSUPPORTED;
	}
	{
		char ss[160] = "", sp[48];

		if (p->have_bos && (p->bos.superspeed || p->bos.superspeed_plus))
			snprintf(ss, sizeof(ss), "; USB %x.%x device that can do %s, linked at %s",
				 p->dev.bcdUSB >> 8, (p->dev.bcdUSB >> 4) & 0xf,
				 p->bos.superspeed_plus ? "SuperSpeedPlus" : "SuperSpeed",
				 diag_speed_text(r->dev.speed_mbps, sp, sizeof(sp)));
		diag_end(r, s, DIAG_ST_OK,
			 "%zu configuration(s) read in %.2f ms (%zu control transfers), usbmux in "
			 "configuration %u%s",
			 p->num_configs, (double)p->desc_ns / LP_NS_PER_MS, p->num_rtt,
			 p->usbmux_config, ss);
	}

	/* usbmux: select the configuration, claim the interface, VERSION */
	s = diag_stage_begin(r, DIAG_STAGE_USBMUX);
	ret = hl_open(app->tr, info, NULL, link, &e);
	if (ret == LP_EUNSUPPORTED) {
		/* the configurations changed under us: report what hl_open saw */
		diag_rule_camera_only(r, s, p->num_configs);
		return ret;
	}
	/* a kernel driver (ipheth...) is no daemon to go through: named as is */
	if (ret == LP_EBUSY && held && !strstr(e.msg, "kernel driver ")) {
		snprintf(held, heldsz, "%s", e.msg);
		diag_end(r, s, DIAG_ST_SKIPPED, "the usbmux interface is held: %s", e.msg);
		return ret;
	}
	if (ret) {
		diag_rule_err(r, s, ret, e.msg);
		return ret;
	}
	app_capture_link(app, *link);
	lp = hl_info(*link);
	diag_end(
		r, s, DIAG_ST_OK,
		"usbmux v%u on configuration %u, interface %u, endpoints 0x%02x/0x%02x (%u-byte packets)",
		hl_mux_version(*link), lp->usbmux_config, lp->usbmux_iface, lp->ep_out, lp->ep_in,
		lp->mps);
	return 0;
}

int find_usb_stages(struct lp_app *app, struct diag_report *r, struct tr_devinfo *info,
		    struct usbd_probe *p, struct hl_link **link)
{
	return usb_stages(app, r, NULL, info, p, link, NULL, 0);
}

int find_usb_stages_at(struct lp_app *app, struct diag_report *r, const struct tr_devinfo *pin,
		       struct tr_devinfo *info, struct usbd_probe *p, struct hl_link **link)
{
	return usb_stages(app, r, pin, info, p, link, NULL, 0);
}

int find_usb_stages_held(struct lp_app *app, struct diag_report *r, struct tr_devinfo *info,
			 struct usbd_probe *p, struct hl_link **link, char *held, size_t heldsz)
{
	return usb_stages(app, r, NULL, info, p, link, held, heldsz);
}
