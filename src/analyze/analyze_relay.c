/* analyze_relay.c - facts from usbmuxd relay messages (the capture reader
 * decodes them, src/capture/reader_tcp.c, with the usbmuxd codec): the device
 * list (the "find device" stage of a relayed session), detaches, and whether
 * the daemon handed out a pair record. Connections through the relay are
 * connection events (analyze_usb.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/analyze/analyze_facts.h"
#include "src/base/lp_str.h"

static void attached(struct an *a, plist_t msg, uint64_t t, uint64_t pkt)
{
	plist_t props = plist_dict_get_item(msg, "Properties");
	struct an_dev *d;
	const char *serial;

	if (!props || plist_get_node_type(props) != PLIST_DICT)
		props = msg;
	d = an_relay_dev(
		a, (uint32_t)lkd_dict_uint(props, "DeviceID", lkd_dict_uint(msg, "DeviceID", 0)));
	if (!d)
		return;
	an_dev_touch(a, d, t);
	d->vid = 0x05ac;
	d->pid = (uint16_t)lkd_dict_uint(props, "ProductID", 0);
	d->have_ids = d->pid != 0;
	d->speed_mbps = (double)lkd_dict_uint(props, "ConnectionSpeed", 0) / 1e6;
	serial = lkd_dict_str(props, "SerialNumber");
	if (serial) {
		lp_sanitize_str(d->serial, sizeof(d->serial), serial);
		if (!d->udid[0])
			usbd_serial_to_udid(d->serial, d->udid, sizeof(d->udid));
	}
	if (!d->umx_find.seen) {
		d->umx_find.seen = true;
		d->umx_find.t0 = a->umx_list_seen ? a->umx_list_t : t;
		d->umx_find.pkt0 = a->umx_list_seen ? a->umx_list_pkt : pkt;
	}
	if (!d->umx_find.done) {
		d->umx_find.done = true;
		d->umx_find.t1 = t;
		d->umx_find.pkt1 = pkt;
	}
}

void an_relay_event(struct an *a, const struct cap_event *ev)
{
	plist_t msg = ev->u.umx.msg;
	const char *type = lkd_dict_str(msg, "MessageType");
	uint64_t t = ev->t;

	if (ev->from_client) {
		if (type && (strcmp(type, "ListDevices") == 0 || strcmp(type, "Listen") == 0) &&
		    !a->umx_list_seen) {
			a->umx_list_seen = true;
			a->umx_list_t = t;
			a->umx_list_pkt = ev->pkt;
		}
		return;
	}
	if (type && strcmp(type, "Attached") == 0) {
		attached(a, msg, t, ev->pkt);
	} else if (type && strcmp(type, "Detached") == 0) {
		struct an_dev *d = an_relay_dev(a, (uint32_t)lkd_dict_uint(msg, "DeviceID", 0));
		if (d && !d->gone) {
			d->gone = true;
			d->gone_t = t;
			d->gone_pkt = ev->pkt;
			an_anomaly_add(a, AN_K_LINK, d,
				       "packet %llu: usbmuxd reports device %u detached",
				       (unsigned long long)ev->pkt, d->umx_id);
		}
	} else if (plist_dict_get_item(msg, "DeviceList")) {
		plist_t list = plist_dict_get_item(msg, "DeviceList");
		if (plist_get_node_type(list) == PLIST_ARRAY)
			for (uint32_t i = 0; i < plist_array_get_size(list) && i < AN_MAX_DEVS;
			     i++) {
				plist_t it = plist_array_get_item(list, i);
				if (plist_get_node_type(it) == PLIST_DICT)
					attached(a, it, t, ev->pkt);
			}
	} else if (ev->u.umx.answers && strcmp(ev->u.umx.answers, "ReadPairRecord") == 0) {
		bool found = plist_dict_get_item(msg, "PairRecordData") != NULL;
		for (size_t i = 0; i < a->ndevs; i++)
			if (a->devs[i]->via_usbmuxd) {
				a->devs[i]->pair_record_read = true;
				if (found)
					a->devs[i]->pair_record_found = true;
			}
	}
}
