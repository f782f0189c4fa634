/* analyze.c - the capture analyzer's entry: the capture reader
 * (src/capture/reader.h) reads the file and emits events; each goes to the
 * ingest file that turns it into facts (analyze_usb.c, analyze_lkd.c,
 * analyze_relay.c); analyze_report.c builds the report from the facts.
 *
 * Reference: see analyze.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/analyze/analyze_facts.h"
#include "src/base/lp_str.h"

#define AN_GAPS_LISTED 4

/* --- events -> facts --------------------------------------------------------- */

static enum an_kind kind_of(enum cap_anomaly_kind k)
{
	switch (k) {
	case CAP_AK_DEVICE:
		return AN_K_PROTOCOL;
	case CAP_AK_HOST:
		return AN_K_HOST;
	case CAP_AK_INFO:
		return AN_K_INFO;
	case CAP_AK_CAPTURE:
		break;
	}
	return AN_K_CAPTURE;
}

/* The report device an anomaly is about (NULL: none, or not known yet). */
static struct an_dev *anomaly_dev(struct an *a, const struct cap_event *ev)
{
	if (ev->conn && ev->conn->relay)
		return an_relay_dev(a, ev->conn->umx_device);
	return ev->usb ? ev->usb->user : NULL;
}

static bool on_event(void *ud, const struct cap_event *ev)
{
	struct an *a = ud;

	a->cur_pkt = ev->pkt;
	switch (ev->type) {
	case CAP_EV_GAP:
		a->gaps++;
		if (ev->u.gap_ns > a->longest_gap)
			a->longest_gap = ev->u.gap_ns;
		if (a->gaps <= AN_GAPS_LISTED)
			an_anomaly_add(a, AN_K_TIMING, NULL,
				       "packet %llu: %.1f s of silence before it",
				       (unsigned long long)ev->pkt, (double)ev->u.gap_ns / 1e9);
		break;
	case CAP_EV_ANOMALY: {
		struct an_dev *d = anomaly_dev(a, ev);

		an_anomaly_add(a, kind_of(ev->anomaly_kind), d, "%s", ev->u.text);
		if (d && kind_of(ev->anomaly_kind) == AN_K_PROTOCOL && ev->t > d->last_violation_t)
			d->last_violation_t = ev->t;
		break;
	}
	case CAP_EV_INTERFACE:
		if (a->nidb < AN_IDB_MAX) {
			a->idb[a->nidb].speed_mbps = ev->u.iface.speed_mbps;
			a->idb[a->nidb].bus = ev->u.iface.bus;
			a->idb[a->nidb].addr = ev->u.iface.addr;
			a->nidb++;
		}
		break;
	case CAP_EV_USB_NEW:
	case CAP_EV_TRANSFER:
	case CAP_EV_CONTROL:
	case CAP_EV_DISCONNECT:
	case CAP_EV_MUX:
		an_usb_event(a, ev);
		break;
	case CAP_EV_CONN:
	case CAP_EV_DATA:
		an_conn_event(a, ev);
		break;
	case CAP_EV_LOCKDOWN:
	case CAP_EV_TLS_START:
	case CAP_EV_TLS_RECORD:
		an_lkd_event(a, ev);
		break;
	case CAP_EV_UMX:
		an_relay_event(a, ev);
		break;
	case CAP_EV_END:
		a->packets = ev->u.end.packets;
		a->read_error = ev->u.end.read_error;
		a->end_mid_exchange = ev->u.end.mid_exchange;
		if (ev->u.end.pending_request)
			snprintf(a->end_pending, sizeof(a->end_pending), "%s",
				 ev->u.end.pending_request);
		a->t_last = ev->t;
		a->tcp_segments = ev->u.end.tcp_segments;
		a->umx_flows = ev->u.end.umx_flows;
		a->umx_messages = ev->u.end.umx_messages;
		for (size_t i = 0; i < a->nusb; i++) {
			struct an_dev *d = a->usb[i]->user;
			if (d && d->mux_seen && !d->ep_out) {
				d->ep_out = a->usb[i]->ep_out;
				d->ep_in = a->usb[i]->ep_in;
			}
		}
		break;
	}
	return true;
}

int an_analyze_fp(FILE *f, const struct an_opts *opts, struct diag_report *r,
		  struct lp_clock *clock, struct lp_errinfo *e)
{
	struct cap_reader_opts ro = {0};
	struct cap_reader *rd;
	struct an *a = an_new(opts);
	int ret;

	if (opts)
		ro.usbmuxd_port = opts->usbmuxd_port;
	/* the analyzer reads only these root keys of lockdown messages
	 * (analyze_lkd.c) */
	ro.lockdown_keys = an_lkd_keys;
	rd = a ? cap_reader_new(&ro, on_event, a) : NULL;
	if (!rd) {
		fclose(f);
		an_free(a);
		lp_err_set(e, LP_ENOMEM, "out of memory");
		return LP_ENOMEM;
	}
	ret = cap_reader_run(rd, f, e);
	a->linktype = cap_reader_linktype(rd);
	an_bus_take(a, rd);
	if (cap_linktype_is_usb(a->linktype) || a->is_bus)
		a->usb_records = a->packets;
	if (ret == 0)
		ret = an_capture_refusal(a, rd, e);
	if (ret == 0)
		an_report(a, r, clock);
	cap_reader_free(rd);
	an_free(a);
	return ret;
}
