/* cmd_list.c - `linkprobe list`: every Apple device on USB with its mode
 * (normal/recovery/DFU/WTF), speed, UDID, configurations and whether a usbmux
 * interface exists. Descriptors are read with control transfers (so they are
 * timed and captured); recovery/DFU devices are never driven with usbmux. */
#include <stdio.h>
#include <string.h>

#include "src/cli/app.h"
#include "src/cli/devlink.h"
#include "src/cli/find.h"
#include "src/diag/rules.h"
#include "src/diag/stages.h"
#include "proto/hostlink.h"

static const char *class_name(uint8_t cls, uint8_t sub, uint8_t proto)
{
	if (cls == USBMUX_CLASS && sub == USBMUX_SUBCLASS && proto == USBMUX_PROTOCOL)
		return "usbmux";
	if (cls == 0xff && sub == 0xfd)
		return "apple-ethernet";
	if (cls == 0xff && sub == 0x2a)
		return "valeria";
	if (cls == 0x06)
		return "ptp";
	if (cls == 0x01)
		return "audio";
	if (cls == 0x03)
		return "hid";
	if (cls == 0x02 && sub == 0x0d)
		return "cdc-ncm";
	if (cls == 0xff)
		return "vendor";
	return "other";
}

static json_object *configs_json(const struct usbd_probe *p, char *human, size_t hn)
{
	json_object *arr = json_object_new_array();
	size_t off = 0;

	human[0] = '\0';
	for (size_t i = 0; i < p->num_configs; i++) {
		const struct usbd_config *c = &p->configs[i];
		json_object *jc = json_object_new_object(), *ji = json_object_new_array();
		json_object_object_add(jc, "value", json_object_new_int(c->bConfigurationValue));
		if (off < hn)
			off += (size_t)snprintf(human + off, hn - off, "%s%u:", i ? " " : "",
						c->bConfigurationValue);
		for (size_t k = 0; k < c->num_ifaces; k++) {
			const struct usbd_interface *f = &c->iface[k];
			const char *nm;
			char cls[12];
			json_object *jf;
			if (f->bAlternateSetting != 0)
				continue;
			nm = class_name(f->bInterfaceClass, f->bInterfaceSubClass,
					f->bInterfaceProtocol);
			snprintf(cls, sizeof(cls), "%02x/%02x/%02x", f->bInterfaceClass,
				 f->bInterfaceSubClass, f->bInterfaceProtocol);
			jf = json_object_new_object();
			json_object_object_add(jf, "number",
					       json_object_new_int(f->bInterfaceNumber));
			json_object_object_add(jf, "class", json_object_new_string(cls));
			json_object_object_add(jf, "kind", json_object_new_string(nm));
			json_object_array_add(ji, jf);
			if (off < hn)
				off += (size_t)snprintf(human + off, hn - off, "%s%s", k ? "+" : "",
							nm);
		}
		json_object_object_add(jc, "interfaces", ji);
		json_object_array_add(arr, jc);
	}
	return arr;
}

/* Apple's USB mode of a normal-mode phone: what GET_MODE answers (as
 * usbmuxd asks it) and what the configurations imply (doc/protocol.md 1.3). */
static void usb_mode(struct lp_app *app, const struct tr_devinfo *d, const struct usbd_probe *p,
		     json_object *jd, char *txt, size_t n)
{
	uint8_t m[4];
	size_t got = 0;
	int guess, rc;
	json_object *jm;

	txt[0] = '\0';
	if (strcmp(diag_mode_for_pid(d->vid, d->pid), "normal") != 0)
		return;
	guess = usbd_guess_apple_mode(p);
	jm = json_object_new_object();
	json_object_object_add(jm, "guess", json_object_new_int(guess));
	json_object_object_add(jm, "name", json_object_new_string(usbd_apple_mode_name(guess)));
	rc = usbd_read_apple_mode(app->tr, d, m, &got, NULL);
	if (rc == 0 && got == 4) {
		char raw[16];
		snprintf(raw, sizeof(raw), "%u:%u:%u:%u", m[0], m[1], m[2], m[3]);
		json_object_object_add(jm, "get_mode", json_object_new_string(raw));
		snprintf(txt, n, "; USB mode %s (GET_MODE %s)", usbd_apple_mode_name(guess), raw);
	} else {
		json_object_object_add(jm, "get_mode", NULL);
		snprintf(txt, n, "; USB mode %s (GET_MODE %s)", usbd_apple_mode_name(guess),
			 rc == LP_ESTALL ? "not supported" : "unanswered");
	}
	json_object_object_add(jd, "usb_mode", jm);
}

int cmd_list(struct lp_app *app)
{
	struct diag_report r;
	struct lp_errinfo e = {0};
	struct tr_devinfo devs[TR_LIST_MAX];
	struct diag_stage *s;
	size_t n = 0, ok = 0;
	int first_err = 0;
	char first_msg[sizeof(e.msg)] = "";
	json_object *jdevs;
	int code, ret;

	if (app->via_usbmuxd)
		return cmd_list_usbmuxd(app);
	if (app_open_device(app, &e)) {
		code = out_open_failed(app, &e, "list");
		app_close_device(app);
		return code;
	}
	diag_init(&r, "list", &app->clock);
	out_attach(app, &r);
	jdevs = json_object_new_array();

	s = diag_stage_begin(&r, DIAG_STAGE_ENUMERATE);
	ret = tr_list(app->tr, devs, TR_LIST_MAX, &n, &e);
	if (ret) {
		diag_end(&r, s, DIAG_ST_FAIL, "%s", e.msg);
		diag_set_verdict(&r, diag_verdict_for_err(ret), "%s", e.msg);
		goto done;
	}
	if (n == 0 && tr_host_controllers(app->tr) == 0) {
		diag_rule_nothing_found(&r, s, 0, "no Apple device (VID 05ac) enumerated", NULL,
					false, NULL);
		goto done;
	}
	diag_end(&r, s, DIAG_ST_OK, "%zu Apple device(s) on USB", n);

	for (size_t i = 0; i < n; i++) {
		const struct tr_devinfo *d = &devs[i];
		const char *mode = diag_mode_for_pid(d->vid, d->pid);
		struct usbd_probe p;
		char cfgs[256], mode_txt[96] = "";
		json_object *jd = json_object_new_object();

		s = diag_stage_begin(&r, DIAG_STAGE_DESCRIPTORS);
		ret = usbd_probe(app->tr, d, &p, &e);
		json_object_object_add(jd, "vid", json_object_new_int(d->vid));
		json_object_object_add(jd, "pid", json_object_new_int(d->pid));
		json_object_object_add(jd, "bus", json_object_new_int(d->bus));
		json_object_object_add(jd, "address", json_object_new_int(d->addr));
		json_object_object_add(jd, "port_path", json_object_new_string(d->port_path));
		json_object_object_add(jd, "mode", json_object_new_string(mode));
		json_object_object_add(
			jd, "speed_mbps",
			json_object_new_double((double)tr_speed_bps(d->speed) / 1e6));
		if (ret) {
			diag_end(&r, s, DIAG_ST_FAIL, "bus %u address %u: %04x:%04x (%s mode): %s",
				 d->bus, d->addr, d->vid, d->pid, mode, e.msg);
			json_object_object_add(jd, "error", json_object_new_string(e.msg));
			if (!first_err) {
				first_err = ret;
				snprintf(first_msg, sizeof(first_msg), "%s", e.msg);
			}
			json_object_array_add(jdevs, jd);
			continue;
		}
		ok++;
		if (ok == 1) {
			find_fill_dev(&r, d);
			snprintf(r.dev.udid, sizeof(r.dev.udid), "%s", p.udid);
			snprintf(r.dev.product, sizeof(r.dev.product), "%s", p.product);
			r.dev.has_usbmux = p.has_usbmux;
		}
		json_object_object_add(jd, "udid", json_object_new_string(p.udid));
		json_object_object_add(jd, "manufacturer", json_object_new_string(p.manufacturer));
		json_object_object_add(jd, "product", json_object_new_string(p.product));
		json_object_object_add(jd, "active_config", json_object_new_int(p.active_config));
		json_object_object_add(jd, "configurations", configs_json(&p, cfgs, sizeof(cfgs)));
		json_object_object_add(jd, "has_usbmux", json_object_new_boolean(p.has_usbmux));
		if (p.has_usbmux)
			json_object_object_add(jd, "usbmux_config",
					       json_object_new_int(p.usbmux_config));
		json_object_object_add(jd, "descriptor_ms",
				       json_object_new_double((double)p.desc_ns / LP_NS_PER_MS));
		json_object_object_add(jd, "port_path", json_object_new_string(d->port_path));
		json_object_object_add(jd, "hubs",
				       json_object_new_int((int)diag_hubs(d->port_path)));
		json_object_object_add(jd, "bcd_usb", json_object_new_int(p.dev.bcdUSB));
		json_object_object_add(
			jd, "superspeed_capable",
			json_object_new_boolean(p.have_bos &&
						(p.bos.superspeed || p.bos.superspeed_plus)));
		usb_mode(app, d, &p, jd, mode_txt, sizeof(mode_txt));
		json_object_array_add(jdevs, jd);
		{
			char sp[48], where[80] = "";
			bool hubs = diag_hubs(d->port_path) > 0;

			if (d->port_path[0])
				snprintf(where, sizeof(where), " (port %s)%s%s", d->port_path,
					 hubs ? " " : "",
					 hubs ? diag_hubs_phrase(d->port_path) : "");
			diag_end(&r, s, DIAG_ST_OK,
				 "bus %u address %u%s: %04x:%04x %s %s, %s mode, %s%s, UDID %s, "
				 "configs [%s], usbmux %s%s",
				 d->bus, d->addr, where, d->vid, d->pid, p.manufacturer, p.product,
				 mode,
				 diag_speed_text((double)tr_speed_bps(d->speed) / 1e6, sp,
						 sizeof(sp)),
				 p.have_bos && (p.bos.superspeed || p.bos.superspeed_plus)
					 ? (tr_speed_bps(d->speed) < 5000000000ull
						    ? " (SuperSpeed-capable: USB 2 cable or port)"
						    : " (SuperSpeed-capable)")
					 : "",
				 p.udid[0] ? p.udid : "?", cfgs,
				 p.has_usbmux		       ? "yes"
				 : strcmp(mode, "normal") == 0 ? "NO (camera only)"
							       : "no",
				 mode_txt);
		}
	}
	if (n == 0)
		diag_set_verdict(&r, DIAG_V_NO_DEVICE, "no Apple device (VID 05ac) enumerated");
	else if (ok == 0)
		diag_set_verdict(&r, diag_verdict_for_err(first_err),
				 "%zu device(s) found, none could be read: %s", n, first_msg);
	else
		diag_set_verdict(&r, DIAG_V_FOUND, "%zu Apple device(s)", n);
done:
	r.extra = json_object_new_object();
	json_object_object_add(r.extra, "devices", jdevs);
	code = out_finish(app, &r);
	diag_release(&r);
	app_close_device(app);
	return code;
}
