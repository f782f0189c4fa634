/* rules.c - evidence -> verdict rules and their sentences, shared by the
 * live commands and the capture analyzer (see rules.h). */
#include "src/diag/rules.h"

#include <stdio.h>
#include <string.h>

#include "src/base/lp_error.h"

/* What each lockdown error means when the device answers it to Pair,
 * StartSession or StartService, the verdict it leads to and, where the
 * verdict's remedy is not specific enough, the remedy for this error alone.
 * Meanings: doc/protocol.md 4.4 (from host implementations' handling; the
 * ones marked there as read from the name only are worded as what the device
 * said, not as a cause). PasswordProtected depends on the stage: see
 * lockdown_row_verdict. */
struct lkd_row {
	int err;
	enum diag_verdict v;
	const char *meaning;
	const char *remedy; /* NULL: the verdict's */
};

static const char rem_bug[] =
	"linkprobe sent a request the device considers incomplete: this is a linkprobe bug. "
	"Run again with --capture FILE and attach the capture to a bug report.";
static const char rem_reconnect[] =
	"The device's lockdown state does not match this connection: unplug and reconnect the "
	"device and run again; restart the device if it repeats.";

static const struct lkd_row lkd_rows[] = {
	{LP_ELKD_INVALID_RESPONSE, DIAG_V_DEVICE_REFUSED,
	 "the device did not accept the form of the request", rem_bug},
	{LP_ELKD_MISSING_KEY, DIAG_V_DEVICE_REFUSED, "the request lacked a key the device needs",
	 rem_bug},
	{LP_ELKD_MISSING_VALUE, DIAG_V_DEVICE_REFUSED, "the device has no value for what was asked",
	 rem_bug},
	{LP_ELKD_GET_PROHIBITED, DIAG_V_PAIRING_BLOCKED,
	 "the device will not give out its values on this connection, so it cannot pair here",
	 "The device refuses this connection (GetProhibited): connect it with a USB cable "
	 "directly, unlock it, and run again; if it is managed (MDM), ask its administrator."},
	{LP_ELKD_SET_PROHIBITED, DIAG_V_DEVICE_REFUSED, "the device refused to set a value",
	 rem_reconnect},
	{LP_ELKD_REMOVE_PROHIBITED, DIAG_V_DEVICE_REFUSED, "the device refused to remove a value",
	 rem_reconnect},
	{LP_ELKD_IMMUTABLE_VALUE, DIAG_V_DEVICE_REFUSED, "the value cannot be changed",
	 rem_reconnect},
	{LP_ELKD_PASSWORD_PROTECTED, DIAG_V_LOCKED,
	 "the device is locked with a passcode and refuses until it is unlocked", NULL},
	{LP_ELKD_USER_DENIED_PAIRING, DIAG_V_DENIED, "\"Don't Trust\" was tapped on the device",
	 NULL},
	{LP_ELKD_PAIRING_DIALOG_PENDING, DIAG_V_TRUST_PENDING,
	 "\"Trust This Computer?\" is up and not answered yet", NULL},
	{LP_ELKD_MISSING_HOST_ID, DIAG_V_STALE_TRUST,
	 "the request carried no HostID: the pair record has none", NULL},
	{LP_ELKD_INVALID_HOST_ID, DIAG_V_STALE_TRUST,
	 "the device does not know this host's HostID (not paired with it, or it forgot)", NULL},
	{LP_ELKD_SESSION_ACTIVE, DIAG_V_DEVICE_REFUSED,
	 "a session is already open on this lockdown connection", rem_reconnect},
	{LP_ELKD_SESSION_INACTIVE, DIAG_V_DEVICE_REFUSED,
	 "the request needs a session and the device has none open for this connection",
	 rem_reconnect},
	{LP_ELKD_MISSING_SESSION_ID, DIAG_V_DEVICE_REFUSED, "the request carried no SessionID",
	 rem_bug},
	{LP_ELKD_INVALID_SESSION_ID, DIAG_V_DEVICE_REFUSED,
	 "the device does not know the SessionID it was given", rem_reconnect},
	{LP_ELKD_MISSING_SERVICE, DIAG_V_DEVICE_REFUSED, "the request named no service", rem_bug},
	{LP_ELKD_INVALID_SERVICE, DIAG_V_DEVICE_REFUSED,
	 "the device does not offer the service that was asked for",
	 "The device does not offer this service: a restriction (Screen Time, MDM) may have "
	 "turned it off, or it needs a newer or older iOS. Check Settings > Screen Time > Content "
	 "& Privacy Restrictions and any device-management profile."},
	{LP_ELKD_SERVICE_LIMIT, DIAG_V_DEVICE_REFUSED,
	 "too many connections to this service are open on the device",
	 "Other programs hold the device's service (Finder/iTunes, a backup or sync tool, "
	 "another libimobiledevice client): close them, or unplug and reconnect the device, then "
	 "run again."},
	{LP_ELKD_MISSING_PAIR_RECORD, DIAG_V_STALE_TRUST,
	 "the device wants a pair record and was given none", NULL},
	{LP_ELKD_SAVE_PAIR_RECORD_FAILED, DIAG_V_DEVICE_REFUSED,
	 "the device could not store the pairing",
	 "The device could not save the pairing: free some storage on the device, restart it, "
	 "and pair again with `linkprobe trust --pair`."},
	{LP_ELKD_INVALID_PAIR_RECORD, DIAG_V_STALE_TRUST,
	 "the device rejected the pair record's certificates", NULL},
	{LP_ELKD_INVALID_ACTIVATION_RECORD, DIAG_V_DEVICE_REFUSED,
	 "the device's activation is not valid",
	 "The device is not (validly) activated: finish the setup on the device with a network "
	 "connection (or activate it with Finder/iTunes), then connect it again."},
	{LP_ELKD_MISSING_ACTIVATION_RECORD, DIAG_V_DEVICE_REFUSED, "the device is not activated",
	 "The device is not activated: finish the setup on the device with a network connection "
	 "(or activate it with Finder/iTunes), then connect it again."},
	{LP_ELKD_SERVICE_PROHIBITED, DIAG_V_PAIRING_BLOCKED,
	 "a policy on the device forbids this service on this connection", NULL},
	{LP_ELKD_ESCROW_LOCKED, DIAG_V_LOCKED_AFTER_RESTART,
	 "the device's keys are still sealed (EscrowLocked): not unlocked since it restarted",
	 NULL},
	{LP_ELKD_PAIRING_PROHIBITED, DIAG_V_PAIRING_BLOCKED,
	 "the device does not allow pairing over this kind of connection",
	 "The device allows pairing only over a direct USB connection: connect it with a cable "
	 "(not over the network or through a relay) and run `linkprobe trust --pair`."},
	{LP_ELKD_FMIP_PROTECTED, DIAG_V_PAIRING_BLOCKED, "Find My protects the device against this",
	 "Find My blocks the operation: sign in with the device's Apple Account or turn off Find "
	 "My (Settings > [your name] > Find My), then run again."},
	{LP_ELKD_MC_PROTECTED, DIAG_V_PAIRING_BLOCKED,
	 "a configuration profile (device management) forbids pairing with computers",
	 "A configuration profile on the device forbids pairing with computers: ask the device's "
	 "administrator to allow it (or remove the profile in Settings > General > VPN & Device "
	 "Management if it is yours)."},
	{LP_ELKD_MC_CHALLENGE_REQUIRED, DIAG_V_SUPERVISED,
	 "the device is supervised and asks for the supervisor's challenge instead of showing the "
	 "Trust dialog",
	 NULL},
	{LP_ELKD_INVALID_CONNECTION, DIAG_V_DEVICE_REFUSED,
	 "the device does not accept requests on this connection", rem_reconnect},
};

static const struct lkd_row *lkd_row(int err)
{
	for (size_t i = 0; i < sizeof(lkd_rows) / sizeof(lkd_rows[0]); i++)
		if (lkd_rows[i].err == err)
			return &lkd_rows[i];
	return NULL;
}

const char *diag_lockdown_meaning(int err)
{
	const struct lkd_row *w = lkd_row(err);

	return w ? w->meaning : NULL;
}

static bool is_stage(const char *stage, enum diag_stage_id id)
{
	return stage && strcmp(stage, diag_stage_name(id)) == 0;
}

/* PasswordProtected while pairing is a locked screen; answered to
 * StartSession by a device that knows this host, or to a StartService that
 * carried the EscrowBag (which unlocks the keybag of a locked device), it is
 * a device that restarted and was not unlocked since (its pairings stay
 * sealed until the first unlock: doc/protocol.md 4.8, failure catalogue).
 * A StartService without the bag gets it from any locked device. */
static enum diag_verdict lkd_verdict_at(const struct lkd_row *w, const struct diag_report *r,
					const char *stage)
{
	if (w->err == LP_ELKD_PASSWORD_PROTECTED &&
	    (is_stage(stage, DIAG_STAGE_START_SESSION) ||
	     (is_stage(stage, DIAG_STAGE_START_SERVICE) && r->escrow_sent)))
		return DIAG_V_LOCKED_AFTER_RESTART;
	return w->v;
}

static const char rem_locked_service[] =
	"The device is locked with a passcode and refuses to start services while it is. Unlock "
	"it (home screen visible), keep it unlocked, and run `linkprobe trust` again; the pairing "
	"itself is not in question.";

/* DEVICE_BUSY because a kernel driver holds an interface (the transport's
 * evidence reads "kernel driver NAME holds interface N ..."): the remedy is
 * about that driver, not usbmuxd. */
static void busy_driver(struct diag_report *r, const char *msg)
{
	const char *p = msg ? strstr(msg, "kernel driver ") : NULL;
	char name[32];
	size_t n;

	if (!p)
		return;
	p += strlen("kernel driver ");
	n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_-");
	if (!n || n >= sizeof(name))
		return;
	memcpy(name, p, n);
	name[n] = '\0';
	r->remedy_own =
		"A kernel driver holds an interface of the device (named in the evidence), so "
		"linkprobe cannot take it. ipheth, the iPhone USB Ethernet driver, binds while "
		"Personal Hotspot is on: turn Personal Hotspot off (Settings > Personal Hotspot) and "
		"reconnect, or unload the driver for now.";
	snprintf(r->remedy_extra, sizeof(r->remedy_extra),
		 "Here: %s (sudo modprobe -r %s unloads it until it is needed again).", name, name);
}

enum diag_verdict diag_verdict_for_err(int err)
{
	const struct lkd_row *w;

	switch (err) {
	case LP_ENODEV:
		return DIAG_V_DISCONNECTED;
	case LP_EACCES:
		return DIAG_V_ACCESS_DENIED;
	case LP_EBUSY:
		return DIAG_V_DEVICE_BUSY;
	case LP_ETLS:
		return DIAG_V_TLS_FAILED;
	case LP_EPROTO:
	case LP_EBADMSG:
	case LP_EPLIST:
	case LP_ETOOBIG:
	case LP_ETRUNC:
	case LP_ECONNREFUSED:
	case LP_ECONNRESET:
	case LP_ECLOSED:
		return DIAG_V_PROTOCOL_ERROR;
	case LP_ESTALL:
	case LP_EOVERFLOW:
	case LP_EUSB:
	case LP_EIO:
	case LP_ETIMEDOUT:
	case LP_ECANCELED:
		return DIAG_V_USB_ERROR;
	case LP_OK:
	case LP_ENOMEM:
	case LP_EINVAL:
	case LP_ECRYPTO:
	case LP_ENOENT:
	case LP_EUNSUPPORTED:
	case LP_EDIVERGED:
	case LP_EAGAIN:
	case LP_EFORMAT:
		return DIAG_V_NONE;
	default:
		if ((w = lkd_row(err)))
			return w->v;
		return lp_is_lockdown_error(err) ? DIAG_V_PROTOCOL_ERROR : DIAG_V_USB_ERROR;
	}
}

void diag_rule_err(struct diag_report *r, struct diag_stage *s, int err, const char *msg)
{
	const char *lkd = lp_lockdown_error_name(err);
	const struct lkd_row *w = lkd_row(err);

	if (lkd && w) {
		enum diag_verdict v = lkd_verdict_at(w, r, s->name);
		bool bagless = err == LP_ELKD_PASSWORD_PROTECTED && v == DIAG_V_LOCKED &&
			       is_stage(s->name, DIAG_STAGE_START_SERVICE);

		diag_end(r, s, DIAG_ST_FAIL, "lockdown error %s: %s%s", lkd,
			 v == DIAG_V_LOCKED_AFTER_RESTART && v != w->v
				 ? "the device knows this host but keeps its pairing sealed behind "
				   "the passcode: not unlocked since it restarted"
				 : w->meaning,
			 bagless ? " (no EscrowBag went with the request, so a locked screen "
				   "is enough; it says nothing of a restart)"
				 : "");
		diag_set_verdict(r, v, "stage %s: %s", s->name, s->detail);
		r->remedy_own = bagless ? rem_locked_service : w->remedy;
		return;
	}
	if (lkd)
		diag_end(r, s, DIAG_ST_FAIL, "lockdown error %s: %s", lkd, lp_strerror(err));
	else
		diag_end(r, s, DIAG_ST_FAIL, "%s (%s)", msg && msg[0] ? msg : lp_strerror(err),
			 lp_errname(err));
	diag_set_verdict(r, diag_verdict_for_err(err), "stage %s: %s", s->name, s->detail);
	if (err == LP_EBUSY)
		busy_driver(r, msg);
}

void diag_rule_err_link(struct diag_report *r, struct diag_stage *s, int err, const char *msg,
			uint64_t usb_errors, int last_usb_err)
{
	if (usb_errors == 0 || diag_verdict_for_err(err) != DIAG_V_PROTOCOL_ERROR ||
	    lp_lockdown_error_name(err)) {
		diag_rule_err(r, s, err, msg);
		return;
	}
	diag_end(r, s, DIAG_ST_FAIL, "%s (%s) after %llu USB transfer error(s)",
		 msg && msg[0] ? msg : lp_strerror(err), lp_errname(err),
		 (unsigned long long)usb_errors);
	diag_set_verdict(r, DIAG_V_USB_ERROR,
			 "stage %s: %llu USB transfer error(s) (last: %s) broke the exchange: %s",
			 s->name, (unsigned long long)usb_errors,
			 last_usb_err ? lp_strerror(last_usb_err) : "?", lp_strerror(err));
}

bool diag_usb_fault_suspected(int err, uint64_t usb_errors)
{
	enum diag_verdict v = diag_verdict_for_err(err);

	return v == DIAG_V_USB_ERROR ||
	       (usb_errors && v == DIAG_V_PROTOCOL_ERROR && !lp_lockdown_error_name(err));
}

bool diag_rule_mode(struct diag_report *r, struct diag_stage *s, uint16_t vid, uint16_t pid)
{
	const char *mode = diag_mode_for_pid(vid, pid);
	bool recovery = strcmp(mode, "recovery") == 0;

	if (!recovery && strcmp(mode, "dfu") != 0 && strcmp(mode, "wtf") != 0)
		return false;
	diag_end(r, s, DIAG_ST_FAIL, "%04x:%04x is in %s mode (no usbmux): it cannot pair or sync",
		 vid, pid, mode);
	diag_set_verdict(r, recovery ? DIAG_V_RECOVERY_MODE : DIAG_V_DFU_MODE,
			 "USB product ID %04x = %s mode", pid, mode);
	return true;
}

void diag_rule_camera_only(struct diag_report *r, struct diag_stage *s, size_t nconfigs)
{
	diag_end(
		r, s, DIAG_ST_FAIL,
		"no configuration offers the usbmux interface (ff/fe/02): %zu configuration(s) read",
		nconfigs);
	diag_set_verdict(r, DIAG_V_CAMERA_ONLY, "only a camera (PTP) interface is offered");
}

bool diag_rule_query_type(struct diag_report *r, struct diag_stage *s, const char *type)
{
	if (type && strcmp(type, "com.apple.mobile.lockdown") == 0)
		return true;
	diag_end(r, s, DIAG_ST_FAIL, "device answers as %s, not lockdownd",
		 type && type[0] ? type : "?");
	diag_set_verdict(
		r, type && strstr(type, "restore") ? DIAG_V_RECOVERY_MODE : DIAG_V_PROTOCOL_ERROR,
		"QueryType = %s", type ? type : "");
	return false;
}

void diag_rule_lockdown_down(struct diag_report *r, struct diag_stage *s, bool refused,
			     double waited_s)
{
	if (refused)
		diag_end(r, s, DIAG_ST_FAIL,
			 "the device reset the usbmux connection to port 62078: lockdownd is not "
			 "listening (usbmux itself works)");
	else
		diag_end(r, s, DIAG_ST_FAIL,
			 "lockdownd accepted the connection but never answered QueryType "
			 "(%.0f s; usbmux itself works)",
			 waited_s);
	diag_set_verdict(r, DIAG_V_LOCKDOWN_DOWN, "stage %s: %s", s->name, s->detail);
}

void diag_refused_key(struct diag_report *r, const char *key)
{
	char *k = r->dev.refused_keys;
	size_t n = strlen(k), kl = strlen(key);
	const char *p = k;

	while (*p) { /* once each */
		size_t w = strcspn(p, ",");
		if (w == kl && strncmp(p, key, kl) == 0)
			return;
		p += w;
		p += strspn(p, ", ");
	}
	if (n + kl + 3 < sizeof(r->dev.refused_keys))
		snprintf(k + n, sizeof(r->dev.refused_keys) - n, "%s%s", n ? ", " : "", key);
}

void diag_rule_device_info(struct diag_report *r, struct diag_stage *s, const char *extra)
{
	const struct diag_device *d = &r->dev;

	diag_end(r, s, DIAG_ST_OK, "%s %s, iOS %s, UDID %s%s%s%s%s", d->name[0] ? d->name : "?",
		 d->product_type[0] ? d->product_type : "?",
		 d->product_version[0] ? d->product_version : "?", d->udid[0] ? d->udid : "?",
		 d->refused_keys[0] ? "; the device refused to give " : "", d->refused_keys,
		 d->refused_keys[0] ? " (GetProhibited)" : "", extra ? extra : "");
}

void diag_rule_tls_failed(struct diag_report *r, struct diag_stage *s, int err, const char *msg,
			  bool device_answered)
{
	enum diag_verdict v = diag_verdict_for_err(err);

	if (v == DIAG_V_USB_ERROR || v == DIAG_V_DISCONNECTED) {
		diag_rule_err(r, s, err, msg);
		return;
	}
	if (device_answered) {
		diag_rule_err(r, s, LP_ETLS, msg);
		return;
	}
	if (err == LP_ECLOSED || err == LP_ECONNRESET) {
		diag_end(
			r, s, DIAG_ST_FAIL,
			"the device closed the connection during the TLS hello, before presenting "
			"its certificate (%s): a device whose trust was reset accepts StartSession "
			"and then does this with a pair record it no longer holds",
			msg && msg[0] ? msg : lp_strerror(err));
		diag_set_verdict(r, DIAG_V_TLS_FAILED, "stage %s: %s", s->name, s->detail);
		return;
	}
	diag_end(r, s, DIAG_ST_FAIL,
		 "the TLS hello exchange failed before the device presented its certificate: no "
		 "protocol or cipher in common with this host (%s)",
		 msg && msg[0] ? msg : "no detail");
	diag_set_verdict(r, DIAG_V_TLS_HOST_POLICY, "stage %s: %s", s->name, s->detail);
}

void diag_rule_pair_failed(struct diag_report *r, struct diag_stage *s,
			   const struct diag_pair_end *p)
{
	switch (p->err) {
	case LP_ELKD_PAIRING_DIALOG_PENDING:
		diag_end(r, s, DIAG_ST_FAIL,
			 "no answer to \"Trust This Computer?\" within %.0f s (%u Pair attempts, "
			 "device kept answering PairingDialogResponsePending)",
			 p->waited_s, p->tries);
		diag_set_verdict(r, DIAG_V_TRUST_PENDING,
				 "stage Pair: Trust dialog unanswered for %.0f s", p->waited_s);
		return;
	case LP_ELKD_PASSWORD_PROTECTED:
		diag_end(
			r, s, DIAG_ST_FAIL,
			"device stayed locked for %.0f s (%u Pair attempts answered PasswordProtected)",
			p->waited_s, p->tries);
		diag_set_verdict(r, DIAG_V_LOCKED, "stage Pair: PasswordProtected");
		return;
	case LP_ELKD_USER_DENIED_PAIRING:
		diag_end(r, s, DIAG_ST_FAIL,
			 "UserDeniedPairing after %u Pair attempt(s): \"Don't Trust\" was tapped",
			 p->tries);
		diag_set_verdict(r, DIAG_V_DENIED, "stage Pair: UserDeniedPairing");
		return;
	case LP_ENODEV:
		diag_rule_gone(r, s,
			       p->dialog_seen ? "while the Trust dialog was up"
					      : "while waiting to pair");
		return;
	default: /* a stream broken by lost transfers is the link's doing */
		diag_rule_err_link(r, s, p->err, p->msg, p->usb_errors, p->last_usb_err);
	}
}

void diag_rule_gone(struct diag_report *r, struct diag_stage *s, const char *what)
{
	diag_end(r, s, DIAG_ST_FAIL, "the device left the bus%s%s", what ? " " : "",
		 what ? what : "");
	diag_set_verdict(r, DIAG_V_DISCONNECTED, "stage %s: %s", s->name, s->detail);
}

unsigned diag_hubs(const char *port_path)
{
	const char *p = port_path ? strchr(port_path, '-') : NULL;
	unsigned n = 0;

	for (; p && *p; p++)
		n += *p == '.';
	return n;
}

const char *diag_hubs_phrase(const char *port_path)
{
	unsigned n = diag_hubs(port_path);

	return n == 0 ? "directly on a root port" : n == 1 ? "through 1 hub" : "through hubs";
}

void diag_note_hubs(struct diag_report *r, const char *port_path)
{
	unsigned n = diag_hubs(port_path);
	enum diag_verdict v = r->verdict;

	if (!n || (v != DIAG_V_FLAKY && v != DIAG_V_DEGRADED && v != DIAG_V_USB_ERROR &&
		   v != DIAG_V_DISCONNECTED))
		return;
	snprintf(r->remedy_extra, sizeof(r->remedy_extra),
		 "It is connected through %u hub%s (port path %s): plug it straight into a port "
		 "on the computer, not a hub, dock, monitor or front-panel port, and test again.",
		 n, n == 1 ? "" : "s", port_path);
}

/* Errors, control answered, and no usbmux or lockdown round trip at all. */
static bool only_control_moved(const struct diag_cable_facts *f)
{
	return f->errors && f->ctrl && !f->mux && !f->lockdown;
}

enum diag_verdict diag_cable_verdict(const struct diag_cable_facts *f)
{
	if (f->gone)
		return DIAG_V_DISCONNECTED;
	if (f->errors && !f->reenums && f->protocol_errors == f->errors)
		return DIAG_V_PROTOCOL_ERROR;
	if (!f->reenums && only_control_moved(f))
		return DIAG_V_USB_ERROR;
	if (!f->reenums && f->out_untaken_s * 1e9 >= (double)DIAG_OUT_UNTAKEN_NS)
		return DIAG_V_USB_ERROR; /* a capture may show no failed transfer: OUT just sat */
	if (f->errors || f->reenums)
		return DIAG_V_FLAKY;
	if (f->speed_mbps > 0 && f->speed_mbps < 480)
		return DIAG_V_DEGRADED;
	if (f->ss_capable && f->speed_mbps >= 480 && f->speed_mbps < 5000)
		return DIAG_V_DEGRADED;
	return DIAG_V_GOOD;
}

void diag_rule_cable(struct diag_report *r, struct diag_stage *s, const struct diag_cable_facts *f)
{
	enum diag_verdict v = diag_cable_verdict(f);
	char rounds[48] = "", sp[48];
	const char *fe = f->first_error && f->first_error[0] ? f->first_error : NULL;

	if (f->rounds)
		snprintf(rounds, sizeof(rounds), "%llu rounds: ", (unsigned long long)f->rounds);
	diag_end(
		r, s, v == DIAG_V_GOOD || v == DIAG_V_DEGRADED ? DIAG_ST_OK : DIAG_ST_FAIL,
		"%s%llu control, %llu usbmux, %llu lockdown round trips; %llu errors, %llu re-enumerations%s",
		rounds, (unsigned long long)f->ctrl, (unsigned long long)f->mux,
		(unsigned long long)f->lockdown, (unsigned long long)f->errors,
		(unsigned long long)f->reenums,
		f->gone ? "; the device left the bus and did not come back" : "");
	switch (v) {
	case DIAG_V_DISCONNECTED:
		diag_set_verdict(r, v,
				 "the device left the bus during the test and did not come back");
		break;
	case DIAG_V_PROTOCOL_ERROR:
		diag_set_verdict(
			r, v,
			"the device broke the usbmux/lockdown protocol %llu time(s) in %.1f s "
			"with no USB transfer lost: a device fault, not the cable's%s%s",
			(unsigned long long)f->errors, f->secs, fe ? "; first: " : "",
			fe ? fe : "");
		break;
	case DIAG_V_USB_ERROR:
		if (!only_control_moved(f)) { /* OUT sat there */
			diag_set_verdict(
				r, v,
				"after %llu usbmux and %llu lockdown round trips the device took none "
				"of the host's bulk OUT transfers for %.1f s: its bulk OUT endpoint "
				"stopped taking data while it stayed on the bus, which a cable does "
				"not do%s%s",
				(unsigned long long)f->mux, (unsigned long long)f->lockdown,
				f->out_untaken_s, fe ? "; first: " : "", fe ? fe : "");
			r->remedy_own =
				"The phone stayed on the bus and answered control requests but stopped "
				"taking the data sent to it: restart the iPhone and test again. If it "
				"happens again after a restart, try another USB port (another "
				"controller), then update iOS.";
			break;
		}
		diag_set_verdict(
			r, v,
			"control transfers were answered but no usbmux or lockdown round trip "
			"completed in %.1f s (%llu errors): the device's bulk endpoints do not "
			"move data%s%s",
			f->secs, (unsigned long long)f->errors, fe ? "; first: " : "",
			fe ? fe : "");
		break;
	case DIAG_V_FLAKY:
		diag_set_verdict(
			r, v,
			"%llu transfer/protocol errors and %llu re-enumerations in %.1f s%s%s",
			(unsigned long long)f->errors, (unsigned long long)f->reenums, f->secs,
			fe ? "; first: " : "", fe ? fe : "");
		break;
	case DIAG_V_DEGRADED:
		if (f->speed_mbps >= 480) {
			diag_set_verdict(
				r, v,
				"a device that can do %s (its BOS descriptor) is linked at %s: "
				"a USB 2 cable or port",
				f->ss_plus ? "SuperSpeedPlus (10 Gb/s or more)"
					   : "SuperSpeed (5 Gb/s)",
				diag_speed_text(f->speed_mbps, sp, sizeof(sp)));
			r->remedy_own =
				"The device can run at SuperSpeed (USB 3) but is linked at 480 Mb/s: "
				"the cable or the port is USB 2. Use a USB 3 data cable (the USB-C "
				"cable that comes with the iPhone carries only 480 Mb/s) and a USB 3 "
				"port directly on the computer (marked SS or blue, no USB 2 hub). It "
				"works as is, only slower.";
		} else {
			diag_set_verdict(r, v, "link runs at %s, not high speed (480 Mb/s)",
					 diag_speed_text(f->speed_mbps, sp, sizeof(sp)));
		}
		break;
	default:
		if (f->speed_mbps > 0)
			diag_set_verdict(r, v, "%s, no errors in %.1f s",
					 diag_speed_text(f->speed_mbps, sp, sizeof(sp)), f->secs);
		else
			diag_set_verdict(r, v, "no errors in %.1f s (link speed not recorded)",
					 f->secs);
	}
}

void diag_rule_usbmuxd(struct diag_report *r, struct diag_stage *s, const char *daemon,
		       const char *what)
{
	diag_end(r, s, DIAG_ST_FAIL, "%s: %s", daemon, what);
	diag_set_verdict(r, DIAG_V_USBMUXD_ERROR, "stage %s: %s holds the device but %s", s->name,
			 daemon, what);
}

double diag_practical_mbytes(double speed_mbps)
{
	if (speed_mbps <= 0)
		return 0;
	if (speed_mbps <= 1.5)
		return 0.1;
	if (speed_mbps <= 12)
		return 1.0;
	/* Above 480 Mb/s the phone's usbmux/AFC stack, not the link, is the
	 * limit: an iPad Pro at 10 Gb/s moved ~35 MB/s (libimobiledevice#1126).
	 * Whether it linked at its best speed is judged from its descriptors. */
	return 40.0;
}

void diag_rule_throughput(struct diag_report *r, struct diag_stage *s,
			  const struct diag_throughput_facts *f)
{
	double practical = diag_practical_mbytes(f->speed_mbps);
	double slow = f->write_mbytes < f->read_mbytes ? f->write_mbytes : f->read_mbytes;
	bool degraded = practical > 0 && slow < practical * DIAG_THROUGHPUT_MIN_FRACTION;
	char frac[192] = "", sp[48];

	diag_speed_text(f->speed_mbps, sp, sizeof(sp));
	if (practical > 0 && f->speed_mbps > 480)
		snprintf(frac, sizeof(frac),
			 "; %.0f%% / %.0f%% of the ~%g MB/s the device's usbmux moves at %s (the "
			 "USB 2.0 figure whatever the link speed)",
			 100 * f->write_mbytes / practical, 100 * f->read_mbytes / practical,
			 practical, sp);
	else if (practical > 0)
		snprintf(frac, sizeof(frac), "; %.0f%% / %.0f%% of the ~%g MB/s a link at %s moves",
			 100 * f->write_mbytes / practical, 100 * f->read_mbytes / practical,
			 practical, sp);
	diag_end(
		r, s, degraded ? DIAG_ST_FAIL : DIAG_ST_OK,
		"%.1f MiB each way through com.apple.afc%s: write %.1f MB/s (%.1f-%.1f), read %.1f "
		"MB/s (%.1f-%.1f), verified and removed%s",
		(double)f->bytes / (1 << 20), f->cut ? " (cut short by the time budget)" : "",
		f->write_mbytes, f->write_min, f->write_max, f->read_mbytes, f->read_min,
		f->read_max, frac);
	if (degraded && r->verdict == DIAG_V_GOOD)
		diag_set_verdict(
			r, DIAG_V_DEGRADED,
			"the link moves data at %.1f MB/s (write) / %.1f MB/s (read), under "
			"%.0f%% of the ~%g MB/s %s %s moves",
			f->write_mbytes, f->read_mbytes, 100 * DIAG_THROUGHPUT_MIN_FRACTION,
			practical, f->speed_mbps > 480 ? "the device's usbmux at" : "a link at",
			sp);
}

void diag_rule_throughput_failed(struct diag_report *r, struct diag_stage *s, int err,
				 const char *msg, bool refused)
{
	const char *m = msg && msg[0] ? msg : lp_strerror(err);

	if (refused) {
		diag_end(r, s, DIAG_ST_FAIL, "the device refused the test file: %s", m);
		return;
	}
	if (err == LP_ENODEV) {
		diag_rule_gone(r, s, "moving the test file");
		return;
	}
	if (diag_verdict_for_err(err) == DIAG_V_USB_ERROR || err == LP_ETIMEDOUT) {
		char before[DIAG_DETAIL];
		bool flaky = r->verdict == DIAG_V_FLAKY;

		snprintf(before, sizeof(before), "%s", r->evidence);
		diag_end(r, s, DIAG_ST_FAIL, "%s (%s)", m, lp_errname(err));
		if (flaky || r->verdict == DIAG_V_GOOD || r->verdict == DIAG_V_DEGRADED)
			diag_set_verdict(r, DIAG_V_FLAKY,
					 "%s%sthe link failed while moving the test file: %s",
					 flaky ? before : "", flaky ? "; then " : "", m);
		return;
	}
	diag_rule_err(r, s, err, msg);
}

/* --- the host's own faults ------------------------------------------------ */

enum diag_verdict diag_pair_store_verdict(int err)
{
	switch (err) {
	case LP_OK:
	case LP_ENOMEM:
		return DIAG_V_NONE;
	case LP_EPLIST:
	case LP_EBADMSG:
	case LP_ETOOBIG:
		return DIAG_V_PAIR_RECORD_CORRUPT;
	default:
		return DIAG_V_PAIR_RECORD_ACCESS;
	}
}

void diag_rule_pair_store(struct diag_report *r, struct diag_stage *s, int err, const char *msg)
{
	enum diag_verdict v = diag_pair_store_verdict(err);

	diag_end(r, s, DIAG_ST_FAIL, "%s", msg && msg[0] ? msg : lp_strerror(err));
	diag_set_verdict(r, v, "stage %s: %s %s", s->name,
			 v == DIAG_V_PAIR_RECORD_CORRUPT ? "a pair-record file is damaged:"
			 : v == DIAG_V_PAIR_RECORD_ACCESS
				 ? "this host cannot use its pair-record store:"
				 : "",
			 s->detail);
}

void diag_rule_nothing_found(struct diag_report *r, struct diag_stage *s, long controllers,
			     const char *msg, const struct usbk_findings *k, bool readable,
			     const char *source)
{
	char hc[48] = "";

	if (!msg || !msg[0])
		msg = "no Apple device";
	if (controllers == 0) {
		diag_end(r, s, DIAG_ST_FAIL,
			 "%s; the USB stack lists no host controller (no root hub on any bus)",
			 msg);
		diag_set_verdict(
			r, DIAG_V_NO_USB_HOST,
			"stage %s: no USB host controller is visible to linkprobe (no bus, "
			"no root hub), so no device could enumerate",
			s->name);
		return;
	}
	if (k && readable && k->errors) {
		diag_end(r, s, DIAG_ST_FAIL,
			 "%s; the kernel log (%s) has %u enumeration failure(s)%s%s, last: \"%s\"",
			 msg, source, k->errors, k->port[0] ? " on port " : "", k->port,
			 k->last_error);
		diag_set_verdict(
			r, DIAG_V_BAD_SIGNAL,
			"nothing enumerated; the kernel failed to enumerate a device%s%s: %s",
			k->port[0] ? " on port " : "", k->port, k->last_error);
		return;
	}
	if (k && readable)
		diag_end(
			r, s, DIAG_ST_FAIL,
			"%s; the kernel log (%s) shows no failed enumeration (%u record(s) read): no "
			"data connection at all",
			msg, source, k->records);
	else if (k)
		diag_end(r, s, DIAG_ST_FAIL,
			 "%s; the kernel log (%s) could not be read (as root it tells a bad signal "
			 "from a charge-only cable)",
			 msg, source);
	else
		diag_end(r, s, DIAG_ST_FAIL, "%s", msg);
	if (controllers > 0)
		snprintf(hc, sizeof(hc), " (%ld USB host controller(s) present)", controllers);
	diag_set_verdict(r, DIAG_V_NO_DEVICE, "%s%s", s->detail, hc);
}

void diag_rule_usb_unavailable(struct diag_report *r, struct diag_stage *s, const char *msg)
{
	diag_end(r, s, DIAG_ST_FAIL, "the USB stack did not start: %s", msg);
	diag_set_verdict(r, DIAG_V_NO_USB_HOST,
			 "stage %s: the USB stack did not start (%s), so no device can be seen "
			 "on this system",
			 s->name, msg);
}

void diag_rule_udid_not_found(struct diag_report *r, struct diag_stage *s, const char *udid,
			      size_t n, const char *connected, const char *where)
{
	diag_end(r, s, DIAG_ST_FAIL, "no device with UDID %s %s; connected: %s", udid, where,
		 n && connected && connected[0] ? connected : "none");
	diag_set_verdict(r, DIAG_V_UDID_NOT_FOUND,
			 "stage %s: --udid %s names none of the %zu device(s) %s: %s", s->name,
			 udid, n, where, n && connected && connected[0] ? connected : "none");
}

void diag_rule_usbmuxd_unreachable(struct diag_report *r, struct diag_stage *s, int err,
				   const char *msg)
{
	const char *why = err == LP_EACCES   ? "no permission on the usbmux daemon's socket"
			  : err == LP_EINVAL ? "the usbmux daemon's address does not parse"
					     : "the usbmux daemon is not running or not listening";

	diag_end(r, s, DIAG_ST_FAIL, "%s", msg && msg[0] ? msg : lp_strerror(err));
	diag_set_verdict(r, DIAG_V_USBMUXD_UNREACHABLE, "stage %s: %s: %s", s->name, why,
			 s->detail);
}

void diag_rule_replay_diverged(struct diag_report *r, const char *divergence)
{
	const struct diag_stage *failed = NULL;

	if (!divergence || !divergence[0])
		return;
	for (size_t i = r->nstages; i-- > 0;)
		if (r->stages[i].status == DIAG_ST_FAIL) {
			failed = &r->stages[i];
			break;
		}
	if (failed)
		diag_set_verdict(r, DIAG_V_REPLAY_DIVERGED, "stage %s: replay diverged: %s",
				 failed->name, divergence);
	else
		diag_set_verdict(r, DIAG_V_REPLAY_DIVERGED, "replay diverged: %s", divergence);
}

void diag_rule_capture_ends(struct diag_report *r, struct diag_stage *s, uint64_t pkt,
			    const char *what)
{
	diag_end(r, s, DIAG_ST_FAIL,
		 "the capture ends at packet %llu%s%s, before this stage finished",
		 (unsigned long long)pkt, what && what[0] ? ", " : "", what ? what : "");
	diag_set_verdict(r, DIAG_V_CAPTURE_TRUNCATED,
			 "the capture ends at packet %llu, during %s%s%s", (unsigned long long)pkt,
			 s->name, what && what[0] ? " (" : "", what && what[0] ? what : "");
	if (what && what[0])
		snprintf(r->evidence + strlen(r->evidence),
			 sizeof(r->evidence) - strlen(r->evidence), ")");
}

void diag_rule_capture_empty(struct diag_report *r, struct diag_stage *s)
{
	diag_end(r, s, DIAG_ST_FAIL, "the capture holds no packets");
	diag_set_verdict(r, DIAG_V_NO_DEVICE,
			 "the capture holds no packets: no device appeared on the captured bus "
			 "while it ran");
	snprintf(r->remedy_extra, sizeof(r->remedy_extra),
		 "(A capture started after the phone was plugged in holds nothing of it "
		 "either: usbmon shows a device's enumeration only when it happens during the "
		 "capture. Capture again while you plug the phone in - usbmon0 records every "
		 "bus - before judging the cable.)");
}

void diag_rule_protocol_violation(struct diag_report *r, struct diag_stage *s, const char *what,
				  uint64_t n, const char *first)
{
	diag_end(r, s, DIAG_ST_FAIL, "%s", what);
	diag_set_verdict(r, DIAG_V_PROTOCOL_ERROR,
			 "stage %s: %s; the device broke the protocol %llu time(s) (first: %s)",
			 s->name, what, (unsigned long long)n, first);
}

void diag_rule_out_untaken(struct diag_report *r, struct diag_stage *s, const char *what,
			   double secs, uint64_t pkt)
{
	char from[64] = "";

	if (pkt)
		snprintf(from, sizeof(from), " (from packet %llu, then cancelled untaken)",
			 (unsigned long long)pkt);
	diag_end(r, s, DIAG_ST_FAIL,
		 "%s: the device took none of the host's OUT transfers in %.1f s", what, secs);
	diag_set_verdict(r, DIAG_V_USB_ERROR,
			 "stage %s: the device took none of the host's bulk OUT transfers for "
			 "%.1f s%s: what the host sent never reached it",
			 s->name, secs, from);
}

void diag_rule_host_violation(struct diag_report *r, struct diag_stage *s, const char *what,
			      uint64_t n, const char *first)
{
	diag_end(r, s, DIAG_ST_FAIL, "%s", what);
	diag_set_verdict(
		r, DIAG_V_NONE,
		"stage %s: %s; the host's side broke the protocol %llu time(s) (first: %s)",
		s->name, what, (unsigned long long)n, first);
	snprintf(r->remedy_extra, sizeof(r->remedy_extra),
		 "The capture shows the host's side (the program driving the device, or "
		 "usbmuxd) sending malformed usbmux/lockdown data: nothing in it judges the "
		 "device or the cable. Capture again with another host tool, or report it to "
		 "that tool.");
}

void diag_rule_unconfigured(struct diag_report *r, struct diag_stage *s, unsigned mux_config)
{
	char cfg[48] = "";

	if (mux_config)
		snprintf(cfg, sizeof(cfg), " (usbmux is in configuration %u)", mux_config);
	diag_end(r, s, DIAG_ST_FAIL,
		 "the host set configuration 0 (unconfigured) and selected none after it%s: "
		 "no usbmux client claimed the device",
		 cfg);
	diag_set_verdict(r, DIAG_V_USBMUXD_UNREACHABLE,
			 "stage %s: the device was left unconfigured (SET_CONFIGURATION 0)%s; "
			 "usbmuxd not running, or not started by udev",
			 s->name, cfg);
}

void diag_rule_capture_clipped(struct diag_report *r, struct diag_stage *s, const char *what,
			       uint64_t n, uint64_t pkt, uint32_t kept, uint32_t len)
{
	diag_end(r, s, DIAG_ST_FAIL, "%s: %llu record(s) clipped by the capture's snap length",
		 what, (unsigned long long)n);
	diag_set_verdict(r, DIAG_V_CAPTURE_TRUNCATED,
			 "stage %s: %s; %llu record(s) of the device are clipped (the first at "
			 "packet %llu: %u of %u bytes kept), so usbmux and lockdown cannot be "
			 "followed past them",
			 s->name, what, (unsigned long long)n, (unsigned long long)pkt, kept, len);
	snprintf(r->remedy_extra, sizeof(r->remedy_extra),
		 "In Wireshark, clear \"Limit each packet\" in the capture options.");
}
