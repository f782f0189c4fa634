/* analyze_usb.c - facts from the capture reader's USB events: devices and
 * their re-enumerations, descriptors and the selected configuration,
 * transfer errors, stalls and disconnects, usbmux VERSION, and the
 * connections (mux and usbmuxd-relayed alike) with their latencies.
 * Decoding is the reader's (src/capture/reader_usb.c); this file only
 * records what the events say into the fact store (analyze_facts.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/analyze/analyze_facts.h"
#include "src/diag/rules.h"
#include "usb/cap_usbmon.h"

static const char *status_name(int32_t s)
{
	switch (s) {
	case CAP_URB_ENOENT:
		return "ENOENT (cancelled)";
	case CAP_URB_ECONNRESET:
		return "ECONNRESET (cancelled)";
	case CAP_URB_ENODEV:
		return "ENODEV (device gone)";
	case CAP_URB_ESHUTDOWN:
		return "ESHUTDOWN (device gone)";
	case CAP_URB_EPIPE:
		return "EPIPE (stall)";
	case CAP_URB_EPROTO:
		return "EPROTO (bit-stuff/CRC/no response)";
	case CAP_URB_EILSEQ:
		return "EILSEQ (CRC mismatch)";
	case CAP_URB_ETIME:
		return "ETIME (no response)";
	case -110:
		return "ETIMEDOUT";
	case CAP_URB_EOVERFLOW:
		return "EOVERFLOW (babble)";
	case CAP_URB_EIO:
		return "EIO";
	default:
		return "error";
	}
}

/* --- devices ---------------------------------------------------------------- */

static void usb_new(struct an *a, struct cap_usbdev *u)
{
	char key[96];
	struct an_dev *d;

	snprintf(key, sizeof(key), "usb:%u:%u:%u", u->bus, u->addr, u->index);
	d = an_dev_get(a, key, true);
	if (!d)
		return;
	d->bus = (uint8_t)u->bus;
	d->addr = u->addr;
	d->instances = 1;
	d->sel_config = -1;
	u->user = d;
	if (a->nusb < AN_MAX_USB)
		a->usb[a->nusb++] = u;
}

/* Fold the facts of `from` (an enumeration's provisional device) into `to`. */
static void dev_merge(struct an_dev *to, struct an_dev *from)
{
	to->packets += from->packets;
	to->errors += from->errors;
	to->stalls += from->stalls;
	to->cancelled += from->cancelled;
	to->timeouts += from->timeouts;
	/* the OUT state is the latest enumeration's: what `to` had pending
	 * left the bus with it */
	to->out_done_seen |= from->out_done_seen;
	to->out_pending = from->out_pending;
	to->out_wait_t0 = from->out_wait_t0;
	to->out_wait_pkt = from->out_wait_pkt;
	to->in_while_waiting = from->in_while_waiting;
	if (from->out_last_ok_t > to->out_last_ok_t)
		to->out_last_ok_t = from->out_last_ok_t;
	if (from->out_untaken && (!to->out_untaken || from->out_untaken_t1 > to->out_untaken_t1)) {
		to->out_untaken = true;
		to->out_untaken_t0 = from->out_untaken_t0;
		to->out_untaken_t1 = from->out_untaken_t1;
		to->out_untaken_pkt = from->out_untaken_pkt;
	}
	if (!to->first_err_pkt) {
		to->first_err_pkt = from->first_err_pkt;
		to->first_err_status = from->first_err_status;
	}
	if (from->last_t > to->last_t)
		to->last_t = from->last_t;
	to->bus = from->bus;
	to->addr = from->addr;
	if (from->sel_config >= 0) {
		to->sel_config = from->sel_config;
		to->sel_t = from->sel_t;
	}
	from->packets = 0;
	from->key[0] = '\0'; /* merged: not reported */
}

/* `u` carries the serial number of `o` on the same bus at another (non-zero)
 * address: a phone's serial is unique and one bus cannot hold it twice, so
 * `o` left and came back as `u` - however quickly (the lab's usbmuxd
 * capture: the old address ends in EPROTO, 0.8 s later the same UDID is
 * enumerated at the next address), and whether or not usbmon showed its
 * transfers ending with "device gone". */
static bool same_phone(const struct an_dev *o, const struct cap_usbdev *u)
{
	return o->serial[0] && !o->via_usbmuxd && o->bus == u->bus && o->addr != u->addr &&
	       o->addr != 0 && u->addr != 0;
}

/* The device descriptor (and maybe the serial string) is known: give the
 * enumeration its identity; an identity seen before on an enumeration that
 * is gone is the same phone coming back (re-enumeration). */
static void identify(struct an *a, struct cap_usbdev *u)
{
	char key[96];
	const char *serial = "";
	struct an_dev *d = u->user, *o;

	if (!u->have_dd)
		return;
	if (u->dd.iSerialNumber && u->dd.iSerialNumber < AN_STRINGS)
		serial = u->str[u->dd.iSerialNumber];
	snprintf(key, sizeof(key), "%04x:%04x:%s", u->dd.idVendor, u->dd.idProduct, serial);
	if (strcmp(key, d->key) == 0)
		return;
	o = an_dev_get(a, key, false);
	if (o && o != d && (o->gone || u->first_t > o->last_t + LP_NS_PER_S || same_phone(o, u))) {
		dev_merge(o, d);
		o->instances++;
		o->reenum++;
		o->gone = false;
		u->user = d = o;
	} else if (!o) {
		snprintf(d->key, sizeof(d->key), "%s", key);
	} else if (o != d) {
		snprintf(d->key, sizeof(d->key), "%s@%u.%u", key, u->bus, u->addr);
	}
	d->vid = u->dd.idVendor;
	d->pid = u->dd.idProduct;
	d->have_ids = true;
	if (serial[0]) {
		snprintf(d->serial, sizeof(d->serial), "%s", serial);
		if (!d->udid[0])
			usbd_serial_to_udid(serial, d->udid, sizeof(d->udid));
	}
	if (u->dd.iProduct && u->dd.iProduct < AN_STRINGS && u->str[u->dd.iProduct][0])
		snprintf(d->product, sizeof(d->product), "%s", u->str[u->dd.iProduct]);
	if (u->dd.iManufacturer && u->dd.iManufacturer < AN_STRINGS &&
	    u->str[u->dd.iManufacturer][0])
		snprintf(d->manufacturer, sizeof(d->manufacturer), "%s",
			 u->str[u->dd.iManufacturer]);
}

static void update_mux_facts(struct cap_usbdev *u)
{
	struct an_dev *d = u->user;

	d->configs_known = u->ncfg > 0;
	d->nconfigs = u->ncfg;
	d->configs_expected = u->have_dd ? u->dd.bNumConfigurations : 0;
	d->sel_has_mux = false;
	for (unsigned i = 0; i < u->ncfg; i++) {
		uint8_t in, out;
		uint16_t mps;
		if (!usbd_find_usbmux(&u->cfg[i], &in, &out, &mps))
			continue;
		if (d->sel_config >= 0 && u->cfg[i].bConfigurationValue == d->sel_config)
			d->sel_has_mux = true;
		d->any_mux_config = true;
	}
	if (u->eps_known) {
		d->mux_config = u->mux_config;
		d->mux_iface = u->mux_iface;
		d->ep_in = u->ep_in;
		d->ep_out = u->ep_out;
		d->mps = u->mps;
	}
}

static void control_done(struct an *a, const struct cap_event *ev)
{
	struct cap_usbdev *u = ev->usb;
	struct an_dev *d = u->user;
	const struct cap_control *c = &ev->u.ctrl;
	uint8_t rt = c->setup[0], req = c->setup[1];
	uint16_t wvalue = (uint16_t)(c->setup[2] | c->setup[3] << 8);

	an_sample(&a->rtt_ctrl, ev->t >= c->t_submit ? ev->t - c->t_submit : 0);
	if (c->status != 0)
		return;
	if (rt == 0x80 && req == USBD_REQ_GET_DESCRIPTOR) {
		uint8_t type = wvalue >> 8;
		if (!d->desc.seen) {
			d->desc.seen = true;
			d->desc.t0 = c->t_submit;
			d->desc.pkt0 = ev->pkt;
		}
		d->desc.done = true;
		d->desc.t1 = ev->t;
		d->desc.pkt1 = ev->pkt;
		if (type == USBD_DT_DEVICE && c->parsed) {
			d->have_desc = true;
			identify(a, u);
		} else if (type == USBD_DT_CONFIG && c->parsed) {
			update_mux_facts(u);
		} else if (type == USBD_DT_STRING && c->parsed) {
			identify(a, u);
		} else if (type == USBD_DT_BOS && c->parsed) {
			d->ss_capable = u->bos.superspeed || u->bos.superspeed_plus;
			d->ss_plus = u->bos.superspeed_plus;
		}
	} else if (rt == 0x00 && req == USBD_REQ_SET_CONFIGURATION) {
		d->sel_config = wvalue & 0xff;
		d->sel_t = ev->t;
		update_mux_facts(u);
	}
}

/* --- transfers --------------------------------------------------------------- */

static void judge_status(struct an *a, const struct cap_event *ev)
{
	struct cap_usbdev *u = ev->usb;
	struct an_dev *d = u->user;
	const struct cap_transfer *x = &ev->u.x;
	int32_t s = x->status;

	switch (x->outcome) {
	case CAP_XO_OK:
		return;
	case CAP_XO_CANCELLED:
		d->cancelled++;
		return;
	case CAP_XO_GONE:
		if (!d->gone) {
			d->gone = true;
			d->gone_t = ev->t;
			d->gone_pkt = ev->pkt;
		}
		return;
	case CAP_XO_STALL:
		d->stalls++;
		if (x->xfer == 2)
			return; /* a control request the device does not support */
		break;
	case CAP_XO_TIMEOUT:
		d->timeouts++;
		break;
	case CAP_XO_ERROR:
		break;
	}
	d->errors++;
	if (!d->first_err_pkt) {
		d->first_err_pkt = ev->pkt;
		d->first_err_status = s;
	}
	if (d->errors <= 8)
		an_anomaly_add(a, AN_K_LINK, d, "packet %llu: %s %s 0x%02x on %u.%u ended %s (%d)",
			       (unsigned long long)ev->pkt,
			       x->type == 'E' ? "submit of" : "transfer",
			       x->xfer == 2   ? "control"
			       : x->xfer == 3 ? "bulk"
					      : "interrupt",
			       x->ep, u->bus, u->addr, status_name(s), s);
}

/* Bulk OUT: is the device taking what the host sends? */
static void out_progress(struct an_dev *d, const struct cap_event *ev)
{
	d->out_wait_t0 = ev->t;
	d->out_wait_pkt = ev->pkt;
	d->in_while_waiting = 0;
}

static void bulk_out(struct an_dev *d, const struct cap_event *ev)
{
	const struct cap_transfer *x = &ev->u.x;

	if (x->type == 'S') {
		if (d->out_pending++ == 0)
			out_progress(d, ev);
		return;
	}
	if (!d->out_pending)
		return; /* submitted before the capture started */
	d->out_pending--;
	if (x->type != 'C')
		return;
	d->out_done_seen = true;
	if (x->outcome == CAP_XO_OK) {
		out_progress(d, ev);
		d->out_last_ok_t = ev->t;
	} else if (x->outcome == CAP_XO_CANCELLED && x->len == 0 &&
		   ev->t - d->out_wait_t0 >= DIAG_OUT_UNTAKEN_NS) {
		/* the latest: the stage that stopped, and the end of a cable
		 * test, are judged on what happened last */
		d->out_untaken = true;
		d->out_untaken_t0 = d->out_wait_t0;
		d->out_untaken_t1 = ev->t;
		d->out_untaken_pkt = d->out_wait_pkt;
	}
}

static void transfer(struct an *a, const struct cap_event *ev)
{
	const struct cap_transfer *x = &ev->u.x;

	if (x->xfer == 3 && !(x->ep & 0x80) && ev->usb->user)
		bulk_out(ev->usb->user, ev);
	if (ev->usb->speed_mbps > 0 && ev->usb->user) /* the latest enumeration's */
		((struct an_dev *)ev->usb->user)->speed_mbps = ev->usb->speed_mbps;

	an_dev_touch(a, ev->usb->user, ev->t);
	if (x->clipped) {
		struct an_dev *d = ev->usb->user;
		if (d && !d->clipped++) {
			d->first_clipped_pkt = ev->pkt;
			d->first_clipped_kept = (uint32_t)x->data_len;
			d->first_clipped_len = x->len;
		}
	}
	if (x->type != 'S') {
		judge_status(a, ev);
		return;
	}
	switch (x->xfer) {
	case 0:
		a->xfers_iso++;
		break;
	case 1:
		a->xfers_intr++;
		break;
	case 2:
		a->xfers_ctrl++;
		break;
	default:
		x->ep & 0x80 ? a->xfers_bulk_in++ : a->xfers_bulk_out++;
		break;
	}
}

static void mux_packet(struct an *a, const struct cap_event *ev)
{
	struct an_dev *d = ev->usb->user;

	/* Every device packet may need an answer (an ACK, a RST to a port never
	 * opened). One that keeps sending while it takes none of the host's OUT
	 * transfers makes any host queue answers without end: linkprobe stops
	 * at its usbmux queue cap, and so does this rule. Only in a capture
	 * that logs OUT completions: USBPcap logs an OUT at its submit alone, so
	 * every OUT would look pending for ever. */
	if (ev->dir == 1 && d->out_pending && d->out_done_seen &&
	    ++d->in_while_waiting > MUX_OUTQ_MAX_PACKETS && !d->flood_noted) {
		d->flood_noted = true;
		an_anomaly_add(a, AN_K_PROTOCOL, d,
			       "packet %llu: device sent over %u usbmux packets while taking "
			       "none of the host's OUT transfers (waiting since packet %llu)",
			       (unsigned long long)ev->pkt, MUX_OUTQ_MAX_PACKETS,
			       (unsigned long long)d->out_wait_pkt);
		if (ev->t > d->last_violation_t)
			d->last_violation_t = ev->t;
	}

	if (!d->mux_seen)
		d->mux_t0 = ev->t;
	d->mux_seen = true;
	d->mux_packets++;
	if (ev->usb->mux_by_shape && !d->mux_by_shape) {
		d->mux_by_shape = true;
		d->ep_in = ev->usb->ep_in;
		d->ep_out = ev->usb->ep_out;
	}
	if (ev->u.mux.protocol == MUX_PROTO_VERSION) {
		if (!ev->u.mux.ok)
			return;
		if (ev->dir == 0) {
			if (!d->version.seen) {
				d->version.seen = true;
				d->version.t0 = ev->t;
				d->version.pkt0 = ev->pkt;
			}
		} else {
			if (!d->version.seen) {
				d->version.seen = true;
				d->version.t0 = ev->t;
			}
			if (d->version.done)
				return; /* the stage is the first exchange (a re-enumerated
					 * device asks again) */
			d->version.done = true;
			d->version.t1 = ev->t;
			d->version.pkt1 = ev->pkt;
			d->mux_major = ev->u.mux.major;
		}
		return;
	}
	if (ev->u.mux.guessed)
		d->mux_major = ev->usb->mux_version;
}

void an_usb_event(struct an *a, const struct cap_event *ev)
{
	if (ev->type == CAP_EV_USB_NEW) {
		usb_new(a, ev->usb);
		return;
	}
	if (!ev->usb->user)
		return; /* over the device cap */
	switch (ev->type) {
	case CAP_EV_TRANSFER:
		transfer(a, ev);
		break;
	case CAP_EV_DISCONNECT:
		an_anomaly_add(a, AN_K_LINK, ev->usb->user, "packet %llu: device %u.%u gone (%s)",
			       (unsigned long long)ev->pkt, ev->usb->bus, ev->usb->addr,
			       status_name(ev->u.x.status));
		break;
	case CAP_EV_CONTROL:
		control_done(a, ev);
		break;
	case CAP_EV_MUX:
		mux_packet(a, ev);
		break;
	default:
		break;
	}
}

/* --- connections (mux and usbmuxd relay) ------------------------------------- */

static const char *conn_state_name(int s)
{
	switch (s) {
	case CAP_CONN_SYN:
		return "syn-unanswered";
	case CAP_CONN_OPEN:
		return "open";
	case CAP_CONN_REFUSED:
		return "refused";
	case CAP_CONN_RESET_HOST:
		return "closed-by-host";
	case CAP_CONN_RESET_DEV:
		return "reset-by-device";
	default:
		return "open-before-capture";
	}
}

static void conn_list_add(struct an *a, const struct cap_conn *c, const char *state)
{
	json_object *o;

	if (!a->conn_list || json_object_array_length(a->conn_list) >= AN_CONN_LIST_MAX)
		return;
	o = json_object_new_object();
	if (c->relay) {
		json_object_object_add(o, "via", json_object_new_string("usbmuxd"));
		json_object_object_add(o, "device_id", json_object_new_int64(c->umx_device));
	} else {
		json_object_object_add(o, "host_port", json_object_new_int(c->hport));
	}
	json_object_object_add(o, "device_port", json_object_new_int(c->dport));
	if (c->dport == MUX_PORT_LOCKDOWN && (!c->relay || c->state != CAP_CONN_REFUSED))
		json_object_object_add(o, "service", json_object_new_string("lockdown"));
	json_object_object_add(o, "state", json_object_new_string(state));
	if (c->relay && c->state == CAP_CONN_REFUSED) {
		json_object_object_add(o, "result", json_object_new_int64(c->umx_result));
	} else {
		json_object_object_add(o, "bytes_out", json_object_new_int64((int64_t)c->bytes[0]));
		json_object_object_add(o, "bytes_in", json_object_new_int64((int64_t)c->bytes[1]));
	}
	if (!c->relay) {
		json_object_object_add(o, "packets_out",
				       json_object_new_int64((int64_t)c->packets[0]));
		json_object_object_add(o, "packets_in",
				       json_object_new_int64((int64_t)c->packets[1]));
		json_object_object_add(o, "start_s",
				       json_object_new_double((double)c->t_syn / 1e9));
	}
	json_object_array_add(a->conn_list, o);
}

/* The connection's lockdown conversation, if any, ends with it. */
static void conn_end(struct an *a, struct cap_conn *c, uint64_t t)
{
	struct an_lkd *l = c->user;
	enum cap_conn_state how = c->state;

	if (c->lockdown && (how == CAP_CONN_OPEN || how == CAP_CONN_SYN)) {
		struct an_dev *d = c->relay ? an_relay_dev(a, c->umx_device)
				   : c->usb ? c->usb->user
					    : NULL;
		if (d)
			d->lkd_open_at_end = true;
	}
	if (l) {
		/* still open when the capture ends: nothing was closed */
		if (how == CAP_CONN_REFUSED || how == CAP_CONN_RESET_HOST ||
		    how == CAP_CONN_RESET_DEV)
			an_lkd_close(a, l, c, t);
		an_lkd_free(l);
		c->user = NULL;
	}
	if (c->relay) {
		if (how == CAP_CONN_REFUSED)
			conn_list_add(a, c, "refused");
		else if (how == CAP_CONN_RESET_HOST)
			conn_list_add(a, c, "closed");
		return;
	}
	if (how == CAP_CONN_RESET_DEV || how == CAP_CONN_RESET_HOST)
		a->conns_reset++;
	conn_list_add(a, c, conn_state_name(how));
}

static void lconnect_done(struct an_dev *d, const struct cap_event *ev, bool refused)
{
	if (!d->lconnect.done) {
		d->lconnect.done = true;
		d->lconnect.t1 = ev->t;
		d->lconnect.pkt1 = ev->pkt;
		d->lconnect_refused = refused;
	}
}

void an_conn_event(struct an *a, const struct cap_event *ev)
{
	struct cap_conn *c = ev->conn;
	struct an_dev *d = c->relay ? an_relay_dev(a, c->umx_device) : c->usb ? c->usb->user : NULL;

	if (!d)
		return;
	if (ev->type == CAP_EV_DATA) {
		a->mux_bytes[ev->dir] += ev->u.mux.payload_len;
		if (c->relay)
			an_dev_touch(a, d, ev->t);
		return;
	}
	if (c->relay &&
	    (c->state == CAP_CONN_SYN || c->state == CAP_CONN_OPEN ||
	     c->state == CAP_CONN_REFUSED) &&
	    (!c->ended || c->state == CAP_CONN_REFUSED))
		an_dev_touch(a, d, ev->t);
	switch (c->state) {
	case CAP_CONN_SYN:
		if (c->ended)
			break;
		if (c->relay) {
			if (c->lockdown && !d->lconnect.seen) {
				d->lconnect.seen = true;
				d->lconnect.t0 = ev->t;
				d->lconnect.pkt0 = ev->pkt;
			}
		} else {
			a->conns_total++;
			if (c->lockdown && !d->lconnect.done) {
				d->lconnect.seen = true;
				d->lconnect.t0 = ev->t;
				d->lconnect.pkt0 = ev->pkt;
			}
		}
		return;
	case CAP_CONN_ORPHAN:
		if (c->ended)
			break;
		a->conns_total++;
		if (c->lockdown) {
			c->user = an_lkd_new(d);
			a->conns_lockdown++;
			d->lconnect_before = true;
		}
		return;
	case CAP_CONN_OPEN:
		if (c->ended)
			break;
		if (c->relay)
			a->conns_total++;
		an_sample(&a->rtt_mux, ev->t - c->t_syn);
		if (c->lockdown) {
			lconnect_done(d, ev, false);
			c->user = an_lkd_new(d);
			a->conns_lockdown++;
		} else {
			an_lkd_service_conn(d, c->dport, c->t_syn, ev->t, ev->pkt);
		}
		return;
	case CAP_CONN_REFUSED:
		if (c->relay)
			a->conns_total++;
		else
			an_sample(&a->rtt_mux, ev->t - c->t_syn);
		a->conns_refused++;
		d->refused_conns++;
		if (c->dport == 1)
			d->closed_port_probes++;
		if (c->lockdown)
			lconnect_done(d, ev, true);
		break;
	default:
		break;
	}
	if (c->ended)
		conn_end(a, c, ev->t);
}
