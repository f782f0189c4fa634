/* analyze_report.c - facts -> report: the stages, verdict, remedy and
 * metrics a live `trust` or `--cable-test` run gives, built from what the
 * fact store (analyze_facts.h) holds. Reads facts only; never the capture.
 *
 * Stage names and verdict rules are src/diag's (stages.h, rules.h), the
 * same the live commands use: every capture gets find device, descriptors
 * (mode, camera-only) and usbmux as find.h runs them; one that looks like a
 * cable test (connects to a closed port, repeated QueryType, no pairing)
 * then gets round trips, any other trust's lockdown stages (lockdown
 * connect, QueryType, device info, pair record, Pair, StartSession, TLS,
 * StartService, StopSession). A usbmuxd relay has "usbmuxd connect" in
 * place of the USB stages, as --via-usbmuxd. The pair record lives on the
 * host's disk: its stage is skipped, unless a relay shows the daemon handing
 * it out (ReadPairRecord answered with PairRecordData: ok). Times are capture times relative to the first packet. The
 * first failing stage decides; a device that left the bus in it is
 * DISCONNECTED; tests/t/65-parity.t holds live and offline to the same
 * verdict and stages.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#include "src/analyze/analyze_facts.h"
#include "src/base/lp_str.h"
#include "src/diag/rules.h"
#include "src/diag/stages.h"

/* --- report ---------------------------------------------------------------- */

struct build {
	struct an *a;
	struct an_dev *d;
	struct diag_report *r;
	struct lp_clock *clk;
	bool stopped;
	bool cable; /* the capture is a cable test's (round trips, no pairing) */
};

static struct diag_stage *stage_at(struct build *b, enum diag_stage_id id, uint64_t t0)
{
	b->clk->vnow = t0;
	return diag_stage_begin(b->r, id);
}

static void stage_end(struct build *b, struct diag_stage *s, uint64_t t1, enum diag_status st,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void stage_end(struct build *b, struct diag_stage *s, uint64_t t1, enum diag_status st,
		      const char *fmt, ...)
{
	char tmp[DIAG_DETAIL];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	b->clk->vnow = t1 > s->start_ns ? t1 : s->start_ns;
	diag_end(b->r, s, st, "%s", tmp);
}

static void skip_stage(struct build *b, enum diag_stage_id id, uint64_t t, const char *why)
{
	struct diag_stage *s = stage_at(b, id, t);
	stage_end(b, s, t, DIAG_ST_SKIPPED, "%s", why);
}

static uint64_t span_end_t(const struct an_span *s)
{
	return s->done ? s->t1 : s->t0;
}

/* The capture stops inside the exchange - a request without its reply, a
 * transfer without its completion, a lockdown connection nobody closed -
 * so it cannot show how the session ended (a live run closes what it
 * opened, whatever its verdict). */
/* Used up to the session TLS: once the session is up the capture has shown
 * the device accept the pairing, and a daemon (usbmuxd) may hold its
 * connections open, with requests under way, for as long as the device
 * stays. */
static bool cut_short(const struct build *b)
{
	return b->a->end_mid_exchange || (b->d->lkd_open_at_end && !b->d->gone);
}

/* The capture ends inside stage `s`: CAPTURE_TRUNCATED, never a verdict
 * the capture does not show. */
static void ends_in(struct build *b, struct diag_stage *s, const char *what)
{
	b->stopped = true;
	b->clk->vnow = b->a->t_last > s->start_ns ? b->a->t_last : s->start_ns;
	diag_rule_capture_ends(b->r, s, b->a->packets, what);
}

/* Did the device break the protocol at or after `since`? Only then does a
 * violation explain an exchange that stopped there: one earlier in the
 * capture (a reader's doubt about another connection, say) does not. */
static bool violated_in(const struct an_dev *d, uint64_t since)
{
	return d->violations && d->last_violation_t >= since;
}

/* Did an OUT transfer of the host wait untaken until it was cancelled, at or
 * after `since`? Then the request never reached the device. */
static bool out_untaken_in(const struct an_dev *d, uint64_t since)
{
	return d->out_untaken && d->out_untaken_t1 >= since;
}

/* The exchange stopped at stage `s` (no reply / nothing more): the verdict
 * depends on why - the device left, the link broke, or the capture ends. */
static void stop_at(struct build *b, struct diag_stage *s, uint64_t t, const char *what,
		    bool pending)
{
	struct an_dev *d = b->d;

	b->stopped = true;
	if (d->gone && d->gone_t >= s->start_ns) {
		/* as live: the device leaving mid-stage is DISCONNECTED (whether it
		 * came back is the cable test's business) */
		b->clk->vnow = d->gone_t;
		diag_rule_gone(b->r, s, what);
		snprintf(s->detail + strlen(s->detail), sizeof(s->detail) - strlen(s->detail),
			 " (packet %llu)", (unsigned long long)d->gone_pkt);
	} else if (d->clipped) {
		/* records cut short by a snap length: what stopped may simply
		 * be invisible - no verdict on the device or the link */
		b->stopped = true;
		b->clk->vnow = t > s->start_ns ? t : s->start_ns;
		diag_rule_capture_clipped(b->r, s, what, d->clipped, d->first_clipped_pkt,
					  d->first_clipped_kept, d->first_clipped_len);
	} else if (d->errors) {
		/* as live: a transfer that failed ends the exchange with a USB error */
		stage_end(b, s, t, DIAG_ST_FAIL, "%s after %llu transfer error(s)", what,
			  (unsigned long long)d->errors);
		diag_set_verdict(b->r, diag_verdict_for_err(LP_EUSB),
				 "stage %s: %llu USB transfer error(s), first at packet %llu (%d)",
				 s->name, (unsigned long long)d->errors,
				 (unsigned long long)d->first_err_pkt, d->first_err_status);
	} else if (violated_in(d, s->start_ns) && !b->a->read_error) {
		/* the device broke the protocol in this stage (a reply that is
		 * not a plist, a usbmux length that lies): that, not the silence
		 * after it, is why the exchange stopped - as live,
		 * PROTOCOL_ERROR. Only the device's own violations: gaps, the
		 * host's side and the file's quirks are notes (an_kind) */
		b->clk->vnow = t > s->start_ns ? t : s->start_ns;
		diag_rule_protocol_violation(b->r, s, what, d->violations, d->first_violation);
	} else if (out_untaken_in(d, s->start_ns) && !b->a->read_error) {
		/* the host's request never left it: the device NAKed the OUT
		 * transfer until the host gave up - as live, USB_ERROR */
		b->clk->vnow = d->out_untaken_t1;
		diag_rule_out_untaken(b->r, s, what,
				      (double)(d->out_untaken_t1 - d->out_untaken_t0) / 1e9,
				      d->out_untaken_pkt);
	} else if ((cut_short(b) || (pending && !d->via_usbmuxd && !d->cancelled)) &&
		   !b->a->read_error) {
		/* the capture stops inside the exchange, or while the host still
		 * waited for the answer: a host that gives up cancels its
		 * transfers, and this capture shows none (a file cut inside a
		 * record is unreadable: NONE, below) */
		ends_in(b, s, what);
	} else if (pending) {
		stage_end(b, s, t, DIAG_ST_FAIL, "%s", what);
		diag_set_verdict(b->r, DIAG_V_PROTOCOL_ERROR, "stage %s: %s", s->name, what);
	} else if (b->a->read_error) {
		stage_end(b, s, t, DIAG_ST_FAIL, "%s: the file is cut short", what);
		diag_set_verdict(
			b->r, DIAG_V_NONE,
			"the capture file is unreadable after packet %llu, before stage %s",
			(unsigned long long)b->a->packets, s->name);
	} else if (d->violations) {
		/* violations earlier in the capture, before this stage */
		b->clk->vnow = t > s->start_ns ? t : s->start_ns;
		diag_rule_protocol_violation(b->r, s, what, d->violations, d->first_violation);
	} else if (d->host_violations) {
		b->clk->vnow = t > s->start_ns ? t : s->start_ns;
		diag_rule_host_violation(b->r, s, what, d->host_violations,
					 d->first_host_violation);
	} else {
		stage_end(b, s, t, DIAG_ST_SKIPPED, "%s", what);
		diag_set_verdict(b->r, DIAG_V_GOOD,
				 "USB and usbmux clean; the capture ends before %s", s->name);
	}
}

static bool cable_like(const struct an_dev *d)
{
	return d->closed_port_probes > 0 ||
	       (d->querytypes >= 3 && !d->pair.seen && !d->session.seen);
}

static void fill_device(struct build *b)
{
	struct an_dev *d = b->d;
	struct diag_device *o = &b->r->dev;

	o->present = true;
	o->vid = d->vid;
	o->pid = d->pid;
	o->bus = d->bus;
	o->addr = d->addr;
	snprintf(o->udid, sizeof(o->udid), "%s", d->udid);
	snprintf(o->product, sizeof(o->product), "%s", d->product);
	snprintf(o->name, sizeof(o->name), "%s", d->name);
	snprintf(o->product_type, sizeof(o->product_type), "%s", d->product_type);
	snprintf(o->product_version, sizeof(o->product_version), "%s", d->product_version);
	o->speed_mbps = d->speed_mbps;
	o->mode = d->have_ids ? diag_mode_for_pid(d->vid, d->pid) : "unknown";
	if (!d->have_ids && d->mux_seen)
		o->mode = "normal";
	o->has_usbmux = d->any_mux_config || d->mux_seen;
}

static const char *speed_text(const struct an_dev *d, char *buf, size_t n)
{
	return diag_speed_text(d->speed_mbps, buf, n);
}

/* find device: anything Apple on the bus (its mode is the descriptors
 * stage's business, as live). */
static void stage_find(struct build *b)
{
	struct an_dev *d = b->d;
	uint64_t t0 = d->via_usbmuxd && d->umx_find.seen ? d->umx_find.t0 : d->first_t;
	uint64_t t1 = d->via_usbmuxd && d->umx_find.done ? d->umx_find.t1
		      : d->desc.seen			 ? d->desc.t0
							 : t0;
	struct diag_stage *s = stage_at(b, DIAG_STAGE_FIND_DEVICE, t0);
	char sp[48];

	speed_text(d, sp, sizeof(sp));
	if (d->via_usbmuxd)
		stage_end(b, s, t1, DIAG_ST_OK, "usbmuxd device %u: %04x:%04x, serial %s, %s",
			  d->umx_id, d->vid, d->pid, d->serial[0] ? d->serial : "?", sp);
	else if (d->have_ids)
		stage_end(b, s, t1, DIAG_ST_OK, "%04x:%04x%s%s on bus %u address %u, %s%s", d->vid,
			  d->pid, d->product[0] ? " " : "", d->product, d->bus, d->addr, sp,
			  d->instances > 1 ? ", re-enumerated" : "");
	else
		stage_end(b, s, t1, DIAG_ST_OK,
			  "usbmux device on bus %u address %u, vendor, product and serial unknown: "
			  "descriptors not in the capture%s, %s",
			  d->bus, d->addr,
			  d->mux_seen && !d->version.seen
				  ? " (it started after the device was plugged in)"
				  : "",
			  sp);
}

/* The USB stages every direct run starts with (src/cli/find.h): descriptors
 * (mode, camera-only), then usbmux. Through usbmuxd the daemon runs them:
 * "usbmuxd connect" instead. false when the flow ends here. */
static bool build_usb(struct build *b)
{
	struct an_dev *d = b->d;
	struct diag_stage *s;
	uint64_t t;

	if (d->via_usbmuxd) {
		skip_stage(
			b, DIAG_STAGE_USBMUXD_CONNECT, span_end_t(&d->umx_find),
			"the client's own requests to the daemon (ReadBUID) are not decoded from a relay");
		return true;
	}

	/* descriptors */
	t = d->desc.seen ? d->desc.t0 : d->first_t;
	s = stage_at(b, DIAG_STAGE_DESCRIPTORS, t);
	b->clk->vnow = d->desc.seen ? d->desc.t1 : t;
	if (d->have_ids && diag_rule_mode(b->r, s, d->vid, d->pid))
		return false;
	if (!d->mux_seen && d->sel_config < 0 && !d->errors && d->configs_known &&
	    d->nconfigs < d->configs_expected && (cut_short(b) || !d->any_mux_config)) {
		/* every command reads every configuration before it judges */
		char what[96];
		snprintf(what, sizeof(what), "%u of %u configuration descriptors read", d->nconfigs,
			 d->configs_expected);
		ends_in(b, s, what);
		return false;
	}
	if (!d->mux_seen && d->configs_known && !d->any_mux_config) {
		diag_rule_camera_only(b->r, s, d->nconfigs);
		return false;
	}
	if (d->desc.seen)
		stage_end(b, s, d->desc.t1, DIAG_ST_OK, "%u configuration(s) read, usbmux %s",
			  d->nconfigs, d->any_mux_config ? "offered" : "not seen");
	else if (d->mux_seen && !d->version.seen)
		stage_end(b, s, t, DIAG_ST_SKIPPED,
			  "descriptors not in the capture (it started after the device was "
			  "plugged in)");
	else
		stage_end(b, s, t, DIAG_ST_SKIPPED, "descriptor requests not in the capture");

	/* usbmux */
	t = d->version.seen	 ? d->version.t0
	    : d->mux_seen	 ? d->mux_t0
	    : d->sel_config >= 0 ? d->sel_t
				 : d->last_t;
	s = stage_at(b, DIAG_STAGE_USBMUX, t);
	if (!d->mux_seen && d->sel_config == 0) {
		/* unconfigured, not a camera: what usbmuxd's udev rule does
		 * before usbmuxd picks the usbmux configuration */
		b->clk->vnow = d->sel_t > s->start_ns ? d->sel_t : s->start_ns;
		diag_rule_unconfigured(b->r, s, d->any_mux_config ? d->mux_config : 0);
		return false;
	}
	if (!d->mux_seen && d->sel_config >= 0 && !d->sel_has_mux) {
		stage_end(b, s, d->sel_t, DIAG_ST_FAIL,
			  "the host selected configuration %d, which has no usbmux interface "
			  "(usbmux is in configuration %u): recognized as a camera",
			  d->sel_config, d->mux_config);
		diag_set_verdict(b->r, DIAG_V_CAMERA_ONLY,
				 "host selected configuration %d (camera/PTP only)", d->sel_config);
		return false;
	}
	if (!d->version.seen && d->mux_seen) {
		/* the capture starts mid-session: the exchange was before it */
		char where[96] = "";
		if (d->mux_by_shape)
			snprintf(where, sizeof(where),
				 "endpoints 0x%02x/0x%02x recognised from the packets", d->ep_out,
				 d->ep_in);
		else
			snprintf(where, sizeof(where),
				 "configuration %u, interface %u, endpoints 0x%02x/0x%02x",
				 d->mux_config, d->mux_iface, d->ep_out, d->ep_in);
		if (d->sel_config >= 0 && d->sel_t <= d->mux_t0)
			/* the capture shows the host select the configuration: VERSION
			 * should have followed in it (the reader notes that too) */
			stage_end(b, s, d->mux_t0, DIAG_ST_SKIPPED,
				  "no VERSION exchange in the capture after SET_CONFIGURATION %d; "
				  "usbmux v%u traffic on %s",
				  d->sel_config, d->mux_major, where);
		else
			stage_end(b, s, d->mux_t0, DIAG_ST_SKIPPED,
				  "VERSION exchange before the capture; usbmux v%u traffic on %s",
				  d->mux_major, where);
		return true;
	}
	if (!d->version.done) {
		stop_at(b, s, d->last_t,
			d->version.seen ? "no answer to usbmux VERSION"
					: "no usbmux traffic in the capture",
			d->version.seen);
		return false;
	}
	stage_end(
		b, s, d->version.t1, DIAG_ST_OK,
		"usbmux v%u on configuration %u, interface %u, endpoints 0x%02x/0x%02x (%u-byte packets)",
		d->mux_major, d->mux_config, d->mux_iface, d->ep_out, d->ep_in, d->mps);
	return true;
}

static void build_cable(struct build *b)
{
	struct an *a = b->a;
	struct an_dev *d = b->d;
	struct diag_cable_facts f = {0};
	struct diag_stage *s = stage_at(b, DIAG_STAGE_ROUND_TRIPS, d->version.t1);

	f.ctrl = a->rtt_ctrl.n;
	f.mux = d->refused_conns;
	f.lockdown = d->querytype_replies; /* round trips, as live: a request NAKed away is none */
	f.errors = d->errors;
	f.reenums = d->reenum;
	f.gone = d->gone && !d->reenum;
	f.speed_mbps = d->speed_mbps;
	f.ss_capable = d->ss_capable;
	f.ss_plus = d->ss_plus;
	f.secs = (double)(d->last_t - d->version.t1) / 1e9;
	/* the latest OUT cancelled untaken, and none taken since: OUT had stopped */
	if (d->out_untaken && d->out_last_ok_t <= d->out_untaken_t0 &&
	    d->last_t > d->out_untaken_t0)
		f.out_untaken_s = (double)(d->last_t - d->out_untaken_t0) / 1e9;
	b->clk->vnow = d->last_t > s->start_ns ? d->last_t : s->start_ns;
	diag_rule_cable(b->r, s, &f);
}

/* The end of a lockdown stage that was refused with lockdown error `err`. */
static void refused(struct build *b, struct diag_stage *s, uint64_t t, int err)
{
	b->clk->vnow = t > s->start_ns ? t : s->start_ns;
	if (lp_lockdown_error_name(err)) {
		diag_rule_err(b->r, s, err, NULL);
	} else {
		/* an error string outside the table: name it as the device sent it */
		diag_end(b->r, s, DIAG_ST_FAIL, "lockdown error %s",
			 b->d->last_error[0] ? b->d->last_error : "?");
		diag_set_verdict(b->r, DIAG_V_PROTOCOL_ERROR, "stage %s: %s", s->name, s->detail);
	}
}

static void build_trust(struct build *b)
{
	struct an_dev *d = b->d;
	struct diag_stage *s;
	uint64_t qt1;

	/* lockdown connect: a capture that starts mid-session may find the
	 * connection already open */
	if (!d->lconnect.seen && d->lconnect_before) {
		skip_stage(b, DIAG_STAGE_LOCKDOWN_CONNECT, d->mux_t0,
			   "the connection to port 62078 was opened before the capture started");
	} else {
		s = stage_at(b, DIAG_STAGE_LOCKDOWN_CONNECT,
			     d->lconnect.seen ? d->lconnect.t0 : d->version.t1);
		if (!d->lconnect.done) {
			stop_at(b, s, d->last_t,
				d->lconnect.seen
					? "no answer to the connection request to port 62078"
					: "no connection to lockdownd (port 62078) in the capture",
				d->lconnect.seen);
			return;
		}
		if (d->lconnect_refused) {
			b->clk->vnow = d->lconnect.t1;
			if (d->via_usbmuxd)
				diag_rule_err(b->r, s, LP_ECONNREFUSED,
					      "lockdownd (port 62078) refused the connection");
			else
				diag_rule_lockdown_down(b->r, s, true, 0);
			return;
		}
		stage_end(b, s, d->lconnect.t1, DIAG_ST_OK,
			  "%s connection to port %u (lockdownd) open",
			  d->via_usbmuxd ? "usbmuxd" : "mux", MUX_PORT_LOCKDOWN);
	}

	/* QueryType: on such a connection, asked before the capture */
	if (!d->qtype.seen && d->lconnect_before &&
	    (d->info.seen || d->pair.seen || d->session.seen)) {
		skip_stage(b, DIAG_STAGE_QUERY_TYPE, d->mux_t0,
			   "before the capture (its connection was already open)");
	} else {
		s = stage_at(b, DIAG_STAGE_QUERY_TYPE,
			     d->qtype.seen ? d->qtype.t0 : d->lconnect.t1);
		if (d->qtype.seen && !d->qtype.done && !d->via_usbmuxd && !d->gone && !d->errors &&
		    !violated_in(d, d->qtype.t0) && !out_untaken_in(d, d->qtype.t0) &&
		    d->last_t > d->qtype.t0 && !cut_short(b)) {
			/* asked, the link fine, the device still there, nothing
			 * malformed from it, and the capture goes on until the host
			 * gave up: lockdownd hung */
			b->clk->vnow = d->last_t;
			diag_rule_lockdown_down(b->r, s, false,
						(double)(d->last_t - d->qtype.t0) / 1e9);
			return;
		}
		if (!d->qtype.done) {
			stop_at(b, s, d->last_t,
				!d->qtype.seen		      ? "no QueryType in the capture"
				: violated_in(d, d->qtype.t0) ? "no usable reply to QueryType"
							      : "no reply to QueryType",
				d->qtype.seen);
			return;
		}
		b->clk->vnow = d->qtype.t1;
		if (!diag_rule_query_type(b->r, s, d->qtype_str))
			return;
		stage_end(b, s, d->qtype.t1, DIAG_ST_OK, "%s", d->qtype_str);
	}

	/* QueryType done, or skipped: the stages after it start there */
	qt1 = d->qtype.done ? d->qtype.t1 : d->mux_t0;

	/* device info */
	if (!d->info.seen && cut_short(b) && !d->pair.seen && !d->session.seen) {
		ends_in(b, stage_at(b, DIAG_STAGE_DEVICE_INFO, qt1),
			"after QueryType: no GetValue in it");
		return;
	}
	if (d->info.seen && cut_short(b) && !d->pair.seen && !d->session.seen) {
		/* between two GetValue exchanges or after the last: what came
		 * next (another GetValue, Pair, StartSession) is not in it */
		ends_in(b, stage_at(b, DIAG_STAGE_DEVICE_INFO, d->info.t0),
			!strcmp(b->a->end_pending, "GetValue")
				? "a GetValue request unanswered"
				: "after a GetValue reply; the next request is not in it");
		return;
	}
	if (d->info.seen) {
		char n[64];
		s = stage_at(b, DIAG_STAGE_DEVICE_INFO, d->info.t0);
		snprintf(b->r->dev.refused_keys, sizeof(b->r->dev.refused_keys), "%s",
			 d->refused_keys);
		snprintf(n, sizeof(n), " (%u GetValue, %u refused)", d->getvalues,
			 d->getvalue_errors);
		b->clk->vnow = span_end_t(&d->info) > s->start_ns ? span_end_t(&d->info)
								  : s->start_ns;
		diag_rule_device_info(b->r, s, n);
	} else {
		skip_stage(b, DIAG_STAGE_DEVICE_INFO, qt1, "no GetValue in the capture");
	}

	/* read through the daemon, the relay shows it (as a live
	 * --via-usbmuxd run's stage is ok when the daemon hands out the record) */
	if (d->pair_record_found) {
		s = stage_at(b, DIAG_STAGE_PAIR_RECORD, qt1);
		stage_end(b, s, qt1, DIAG_ST_OK,
			  "usbmuxd returned a stored pair record (ReadPairRecord)");
	} else if (d->pair_record_read)
		skip_stage(b, DIAG_STAGE_PAIR_RECORD, qt1,
			   "usbmuxd has no pair record for this device (ReadPairRecord)");
	else
		skip_stage(b, DIAG_STAGE_PAIR_RECORD, qt1,
			   "not visible in a capture (read from the host's disk)");

	/* Pair */
	if (d->pair.seen) {
		s = stage_at(b, DIAG_STAGE_PAIR, d->pair.t0);
		if (!d->pair.done || (!d->pair_ok && d->gone && d->gone_t >= d->pair.t0)) {
			/* no reply, or the device left while the host kept asking */
			bool left = d->gone && d->gone_t >= d->pair.t0;
			stop_at(b, s, d->last_t,
				left ? (d->pair_pending ? "while the Trust dialog was up"
							: "while waiting to pair")
				     : "no reply to Pair",
				true);
			return;
		}
		if (!d->pair_ok && d->pair_err == LP_ELKD_PAIRING_DIALOG_PENDING && cut_short(b)) {
			ends_in(b, s, "the Trust dialog was up, not answered yet");
			return;
		}
		if (!d->pair_ok) {
			struct diag_pair_end pe = {
				.err = d->pair_err,
				.tries = d->pair_tries,
				.waited_s = (double)(d->pair.t1 - d->pair.t0) / 1e9,
				.dialog_seen = d->pair_pending > 0,
			};
			b->clk->vnow = d->pair.t1;
			if (lp_lockdown_error_name(d->pair_err))
				diag_rule_pair_failed(b->r, s, &pe);
			else
				refused(b, s, d->pair.t1, d->pair_err);
			return;
		}
		stage_end(b, s, d->pair.t1, DIAG_ST_OK, "paired after %u attempt(s)%s",
			  d->pair_tries, d->pair_pending ? ", Trust tapped on the device" : "");
	} else {
		skip_stage(
			b, DIAG_STAGE_PAIR, qt1,
			d->mux_seen && !d->version.seen && !d->via_usbmuxd
				? "no Pair request in the capture (it started mid-session: paired "
				  "before it, or an existing pair record was used)"
				: "no Pair request in the capture (an existing pair record was used)");
	}

	/* StartSession */
	s = stage_at(b, DIAG_STAGE_START_SESSION, d->session.seen ? d->session.t0 : d->last_t);
	if (!d->session.done) {
		stop_at(b, s, d->last_t,
			d->session.seen ? "no reply to StartSession"
					: "no StartSession in the capture",
			d->session.seen);
		return;
	}
	if (!d->session_ok) {
		refused(b, s, d->session.t1, d->session_err);
		return;
	}
	stage_end(b, s, d->session.t1, DIAG_ST_OK, "SessionID %s, EnableSessionSSL %s",
		  d->session_id, d->session_ssl ? "true" : "false");

	/* TLS */
	if (!d->session_ssl) {
		skip_stage(b, DIAG_STAGE_TLS, d->session.t1, "device did not ask for session TLS");
	} else {
		s = stage_at(b, DIAG_STAGE_TLS, d->tls.seen ? d->tls.t0 : d->session.t1);
		if (d->tls_state == AN_TLS_NONE) {
			stop_at(b, s, d->last_t, "no TLS handshake after StartSession", false);
			return;
		}
		if (d->tls_state == AN_TLS_STARTED && !d->gone && !d->errors && cut_short(b)) {
			ends_in(b, s, "the TLS handshake under way");
			return;
		}
		if (d->tls_state != AN_TLS_OK) {
			if (d->tls_state == AN_TLS_STARTED && (d->gone || d->errors)) {
				stop_at(b, s, d->last_t, "TLS handshake interrupted", true);
				return;
			}
			b->clk->vnow = span_end_t(&d->tls) > s->start_ns ? span_end_t(&d->tls)
									 : s->start_ns;
			diag_rule_tls_failed(
				b->r, s, d->tls_dev_reset && !d->gone ? LP_ECONNRESET : LP_ETLS,
				d->tls_state == AN_TLS_FAILED
					? d->tls_detail
					: "handshake never completed (no application data)",
				d->tls_device_hs);
			return;
		}
		stage_end(b, s, d->tls.t1, DIAG_ST_OK, "%s", d->tls_detail);
	}

	/* StartService */
	uint64_t after = d->session_ssl ? d->tls.t1 : d->session.t1;
	if (d->service.seen) {
		s = stage_at(b, DIAG_STAGE_START_SERVICE, d->service.t0);
		if (!d->service.done) {
			stop_at(b, s, d->last_t, "no reply to StartService", true);
			return;
		}
		if (!d->service_ok) {
			refused(b, s, d->service.t1, d->service_err);
			return;
		}
		if (d->service_inferred)
			stage_end(
				b, s, d->service.t1, DIAG_ST_OK,
				"service connection to port %u opened (the request itself is inside TLS)",
				d->service_port);
		else
			stage_end(b, s, d->service.t1, DIAG_ST_OK, "%s on port %u",
				  d->service_name[0] ? d->service_name : "service",
				  d->service_port);
		after = d->service.t1;
	} else {
		skip_stage(b, DIAG_STAGE_START_SERVICE, after,
			   "no service connection in the capture");
	}

	/* StopSession */
	if (d->stop.done) {
		s = stage_at(b, DIAG_STAGE_STOP_SESSION, d->stop.t0);
		stage_end(b, s, d->stop.t1, DIAG_ST_OK, "%s",
			  d->stop_inferred ? "inferred: the session's TLS/connection was closed"
					   : "session closed");
	} else {
		skip_stage(b, DIAG_STAGE_STOP_SESSION, after, "not in the capture");
	}
	diag_set_verdict(b->r, DIAG_V_TRUSTED,
			 "session TLS%s started with a pairing the device accepted",
			 d->service_ok ? " and a service" : "");
}

static void build_device(struct an *a, struct an_dev *d, struct diag_report *r,
			 struct lp_clock *clk)
{
	struct build b = {a, d, r, clk, false, false};

	fill_device(&b);
	stage_find(&b);
	if (!build_usb(&b))
		goto out;
	b.cable = !d->via_usbmuxd && cable_like(d);
	if (b.cable)
		build_cable(&b);
	else
		build_trust(&b);
out:
	if (r->verdict == DIAG_V_NONE && !r->evidence[0])
		diag_set_verdict(r, DIAG_V_PROTOCOL_ERROR, "stopped without a verdict");
	an_bus_verdict(a, r);
}

static int progress(const struct an_dev *d)
{
	return (d->have_ids && d->vid == 0x05ac) + (d->mux_seen || d->via_usbmuxd) +
	       d->lconnect.seen + d->qtype.seen + (d->pair.seen || d->session.seen) +
	       (d->tls_state != AN_TLS_NONE) + d->service.seen;
}

static bool candidate(const struct an_dev *d)
{
	return d->key[0] && (d->packets || d->via_usbmuxd) &&
	       ((d->have_ids && d->vid == 0x05ac) || d->mux_seen || d->via_usbmuxd);
}

/* The kernel reads the device descriptor at the default address 0 before
 * SET_ADDRESS: such reads belong to the enumeration that follows, not to a
 * device of their own - unless nothing on the bus ever got an address (an
 * enumeration that failed there is reported as the device). */
static bool default_address_only(const struct an *a, const struct an_dev *d)
{
	if (d->via_usbmuxd || d->addr != 0)
		return false;
	for (size_t i = 0; i < a->ndevs; i++) {
		const struct an_dev *e = a->devs[i];
		if (e != d && e->key[0] && !e->via_usbmuxd && e->addr != 0 && e->bus == d->bus &&
		    e->have_ids && e->vid == d->vid && e->pid == d->pid)
			return true;
	}
	return false;
}

static json_object *stats_json(const struct an_samples *s)
{
	return diag_latency_json(s->v, s->n);
}

static json_object *jint(uint64_t v)
{
	return json_object_new_int64((int64_t)v);
}

static void apply_idb(struct an *a)
{
	for (size_t i = 0; i < a->ndevs; i++) {
		struct an_dev *d = a->devs[i];
		if (d->via_usbmuxd)
			continue;
		for (size_t k = 0; k < a->nidb; k++) {
			const struct an_idb *x = &a->idb[k];
			if (x->speed_mbps <= 0)
				continue;
			if ((x->bus == d->bus && x->addr == d->addr) ||
			    (x->bus < 0 && a->nidb == 1))
				d->speed_mbps = x->speed_mbps;
		}
	}
}

static const char *lt_name(int lt)
{
	const char *n = pcap_datalink_val_to_name(lt);

	switch (lt) { /* newer than some libpcap versions' name tables */
	case USBLL_LINKTYPE:
		return "USB_2_0";
	case USBLL_LINKTYPE_LOW:
		return "USB_2_0_LOW_SPEED";
	case USBLL_LINKTYPE_FULL:
		return "USB_2_0_FULL_SPEED";
	case USBLL_LINKTYPE_HIGH:
		return "USB_2_0_HIGH_SPEED";
	default:
		return n ? n : "?";
	}
}

int an_capture_refusal(const struct an *a, const struct cap_reader *rd, struct lp_errinfo *e)
{
	int lt[CAP_RD_IFACES];
	size_t n = cap_reader_iface_linktypes(rd, lt, CAP_RD_IFACES), usb_if = n;

	for (size_t i = 0; i < a->ndevs; i++)
		if (candidate(a->devs[i]))
			return 0;
	if (a->read_error && a->packets == 0) {
		char ifs[320] = "";
		bool mixed = false;
		size_t len = 0;

		for (size_t i = 0; i < n && i < CAP_RD_IFACES; i++) {
			mixed |= lt[i] != lt[0];
			if (usb_if == n &&
			    (cap_linktype_is_usb(lt[i]) || cap_linktype_is_bus(lt[i])))
				usb_if = i;
			if (len < sizeof(ifs))
				len += (size_t)snprintf(ifs + len, sizeof(ifs) - len,
							"%s%zu: %s (%d)", i ? ", " : "", i,
							lt_name(lt[i]), lt[i]);
		}
		if (mixed)
			return lp_err_set(
				e, LP_EFORMAT,
				"the pcapng mixes interfaces of different link types (%s), which libpcap "
				"cannot read (%s). Keep one interface, e.g. tshark -r FILE -Y "
				"'frame.interface_id==%zu' -w usb.pcapng, and analyze that",
				ifs, cap_reader_read_error(rd), usb_if < n ? usb_if : 0);
		return lp_err_set(
			e, LP_EFORMAT,
			"libpcap cannot read the first packet (%s): no record of the capture "
			"could be read",
			cap_reader_read_error(rd));
	}
	if (cap_linktype_is_ip(a->linktype) && !a->umx_flows && a->packets) {
		char port[8];
		snprintf(port, sizeof(port), "%d", a->o.usbmuxd_port);
		return lp_err_set(
			e, LP_EFORMAT,
			"the file's link type is %s (%d): network traffic (%llu packets, %llu TCP "
			"segments), not USB and not a relayed usbmuxd socket: a trace of the phone's own network "
			"interface (rvictl rvi0, pcapd, the iOS 17 NCM interface) shows its IP traffic, "
			"not the USB link. Capture usbmon (Linux) or USBPcap (Windows) on the bus the "
			"phone is on, or the usbmuxd socket relayed over TCP%s%s",
			lt_name(a->linktype), a->linktype, (unsigned long long)a->packets,
			(unsigned long long)a->tcp_segments,
			a->o.usbmuxd_port
				? "; no usbmuxd messages on the port given with --usbmuxd-port, "
				: " (give its port with --usbmuxd-port if unusual)",
			a->o.usbmuxd_port ? port : "");
	}
	return 0;
}

void an_report(struct an *a, struct diag_report *r, struct lp_clock *clk)
{
	struct an_dev *best = NULL;
	size_t ncand = 0, nother = 0;
	json_object *m, *devs = NULL, *an, *viol, *notes;
	uint64_t errors = 0, stalls = 0, cancelled = 0, timeouts = 0, reenum = 0;

	apply_idb(a);
	for (size_t i = 0; i < a->ndevs; i++) {
		struct an_dev *d = a->devs[i];
		if (!d->key[0])
			continue;
		errors += d->errors;
		stalls += d->stalls;
		cancelled += d->cancelled;
		timeouts += d->timeouts;
		reenum += d->reenum;
		if (!candidate(d) || default_address_only(a, d)) {
			nother++;
			continue;
		}
		ncand++;
		if (!best || progress(d) > progress(best) ||
		    (progress(d) == progress(best) && d->packets > best->packets))
			best = d;
	}
	if (best) {
		build_device(a, best, r, clk);
		if (ncand > 1) {
			devs = json_object_new_array();
			for (size_t i = 0; i < a->ndevs; i++) {
				struct an_dev *d = a->devs[i];
				struct diag_report tmp;
				struct lp_clock c2;
				json_object *o;
				if (!candidate(d) || default_address_only(a, d))
					continue;
				lp_clock_init_virtual(&c2, 0);
				diag_init(&tmp, "analyze", &c2);
				build_device(a, d, &tmp, &c2);
				o = json_object_new_object();
				json_object_object_add(o, "key", json_object_new_string(d->key));
				json_object_object_add(o, "bus", json_object_new_int(d->bus));
				json_object_object_add(o, "address", json_object_new_int(d->addr));
				if (d->via_usbmuxd)
					json_object_object_add(o, "usbmuxd_id",
							       json_object_new_int64(d->umx_id));
				json_object_object_add(o, "vid",
						       d->vid ? json_object_new_int(d->vid) : NULL);
				json_object_object_add(o, "pid",
						       d->pid ? json_object_new_int(d->pid) : NULL);
				json_object_object_add(o, "udid", json_object_new_string(d->udid));
				json_object_object_add(o, "packets", jint(d->packets));
				json_object_object_add(
					o, "verdict",
					json_object_new_string(diag_verdict_name(tmp.verdict)));
				json_object_object_add(o, "stages_ok", jint(0));
				{
					size_t ok = 0;
					for (size_t k = 0; k < tmp.nstages; k++)
						ok += tmp.stages[k].status == DIAG_ST_OK;
					json_object_object_add(o, "stages_ok", jint(ok));
				}
				json_object_object_add(o, "primary",
						       json_object_new_boolean(d == best));
				json_object_array_add(devs, o);
				diag_release(&tmp);
			}
			snprintf(
				r->remedy_extra, sizeof(r->remedy_extra),
				"(%zu devices in the capture; this report is about %04x:%04x on bus %u address %u, the others are under \"devices\".)",
				ncand, best->vid, best->pid, best->bus, best->addr);
		}
	} else {
		struct diag_stage *s;
		clk->vnow = 0;
		s = diag_stage_begin(r, DIAG_STAGE_FIND_DEVICE);
		clk->vnow = a->t_last;
		if (!a->packets)
			diag_rule_capture_empty(r, s);
		else if ((cap_linktype_is_usb(a->linktype) || a->is_bus))
			diag_end(r, s, DIAG_ST_FAIL,
				 "no Apple device in %llu USB records (%zu other device(s))",
				 (unsigned long long)a->usb_records, nother);
		else
			diag_end(r, s, DIAG_ST_FAIL, "no usbmuxd traffic in %llu TCP segments%s",
				 (unsigned long long)a->tcp_segments,
				 a->o.usbmuxd_port
					 ? ""
					 : " (use --usbmuxd-port if the relay's port is unusual)");
		if (a->packets)
			diag_set_verdict(r, DIAG_V_NO_DEVICE, "%s", s->detail);
	}

	m = json_object_new_object();
	json_object_object_add(m, "link_type", json_object_new_string(lt_name(a->linktype)));
	json_object_object_add(m, "packets", jint(a->packets));
	json_object_object_add(m, "duration_s", json_object_new_double((double)a->t_last / 1e9));
	if (best && best->speed_mbps > 0)
		json_object_object_add(m, "speed_mbps", json_object_new_double(best->speed_mbps));
	json_object_object_add(m, "devices", jint(ncand));
	if ((cap_linktype_is_usb(a->linktype) || a->is_bus)) {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "control", jint(a->xfers_ctrl));
		json_object_object_add(x, "bulk_in", jint(a->xfers_bulk_in));
		json_object_object_add(x, "bulk_out", jint(a->xfers_bulk_out));
		json_object_object_add(x, "interrupt", jint(a->xfers_intr));
		json_object_object_add(x, "errors", jint(errors));
		json_object_object_add(x, "stalls", jint(stalls));
		json_object_object_add(x, "timeouts", jint(timeouts));
		json_object_object_add(x, "cancelled", jint(cancelled));
		json_object_object_add(m, "transfers", x);
		json_object_object_add(m, "errors", jint(errors));
		json_object_object_add(m, "reenumerations", jint(reenum));
		json_object_object_add(m, "control_rtt", stats_json(&a->rtt_ctrl));
	} else {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "tcp_segments", jint(a->tcp_segments));
		json_object_object_add(x, "usbmuxd_flows", jint(a->umx_flows));
		json_object_object_add(x, "usbmuxd_messages", jint(a->umx_messages));
		json_object_object_add(m, "usbmuxd", x);
	}
	{
		json_object *c = json_object_new_object();
		json_object_object_add(c, "total", jint(a->conns_total));
		json_object_object_add(c, "refused", jint(a->conns_refused));
		json_object_object_add(c, "reset", jint(a->conns_reset));
		json_object_object_add(c, "lockdown", jint(a->conns_lockdown));
		json_object_object_add(c, "bytes_out", jint(a->mux_bytes[0]));
		json_object_object_add(c, "bytes_in", jint(a->mux_bytes[1]));
		json_object_object_add(m, "connections", c);
	}
	json_object_object_add(m, "mux_connect_rtt", stats_json(&a->rtt_mux));
	json_object_object_add(m, "lockdown_rtt", stats_json(&a->rtt_lkd));
	if (best) {
		json_object *l = json_object_new_object();
		json_object_object_add(l, "requests", jint(best->lkd_requests));
		json_object_object_add(l, "replies", jint(best->lkd_replies));
		json_object_object_add(l, "pair_attempts", jint(best->pair_tries));
		json_object_object_add(l, "dialog_pending", jint(best->pair_pending));
		json_object_object_add(l, "last_error", json_object_new_string(best->last_error));
		json_object_object_add(m, "lockdown", l);
	}
	{
		json_object *g = json_object_new_object();
		json_object_object_add(g, "count", jint(a->gaps));
		json_object_object_add(g, "longest_s",
				       json_object_new_double((double)a->longest_gap / 1e9));
		json_object_object_add(m, "gaps", g);
	}
	if (a->is_bus)
		json_object_object_add(m, "bus", an_bus_json(a));
	json_object_object_add(m, "anomalies", jint(a->nanom));
	json_object_object_add(m, "protocol_violations", jint(a->nviol));
	json_object_object_add(m, "notes", jint(a->nanom - a->nviol));
	if (r->metrics)
		json_object_put(r->metrics);
	r->metrics = m;

	if (!r->extra)
		r->extra = json_object_new_object();
	/* every anomaly kept, then split: the device's protocol violations
	 * (the only ones a verdict may rest on) and notes (timing, the host's
	 * side, the capture file) */
	an = json_object_new_array();
	viol = json_object_new_array();
	notes = json_object_new_array();
	for (size_t i = 0; i < a->nanom_kept; i++) {
		json_object_array_add(an, json_object_new_string(a->anomalies[i]));
		json_object_array_add(a->anom_kind[i] == AN_K_PROTOCOL ? viol : notes,
				      json_object_new_string(a->anomalies[i]));
	}
	json_object_object_add(r->extra, "anomalies", an);
	json_object_object_add(r->extra, "protocol_violations", viol);
	json_object_object_add(r->extra, "notes", notes);
	json_object_object_add(r->extra, "connections", json_object_get(a->conn_list));
	if (devs)
		json_object_object_add(r->extra, "devices", devs);
}
