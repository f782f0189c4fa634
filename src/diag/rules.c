/* rules.c - evidence -> verdict rules and their sentences, shared by the
 * live commands and the capture analyzer (see rules.h). */
#include "src/diag/rules.h"

#include <stdio.h>
#include <string.h>

#include "src/base/lp_error.h"

enum diag_verdict diag_verdict_for_err(int err)
{
	switch (err) {
	case LP_ENODEV:
		return DIAG_V_DISCONNECTED;
	case LP_EACCES:
		return DIAG_V_ACCESS_DENIED;
	case LP_EBUSY:
		return DIAG_V_DEVICE_BUSY;
	case LP_ETLS:
		return DIAG_V_TLS_FAILED;
	case LP_ELKD_PASSWORD_PROTECTED:
		return DIAG_V_LOCKED;
	case LP_ELKD_USER_DENIED_PAIRING:
		return DIAG_V_DENIED;
	case LP_ELKD_PAIRING_DIALOG_PENDING:
		return DIAG_V_TRUST_PENDING;
	case LP_ELKD_INVALID_HOST_ID:
		return DIAG_V_STALE_TRUST;
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
		return lp_is_lockdown_error(err) ? DIAG_V_PROTOCOL_ERROR : DIAG_V_USB_ERROR;
	}
}

void diag_rule_err(struct diag_report *r, struct diag_stage *s, int err, const char *msg)
{
	const char *lkd = lp_lockdown_error_name(err);

	if (lkd)
		diag_end(r, s, DIAG_ST_FAIL, "lockdown error %s: %s", lkd, lp_strerror(err));
	else
		diag_end(r, s, DIAG_ST_FAIL, "%s (%s)", msg && msg[0] ? msg : lp_strerror(err),
			 lp_errname(err));
	diag_set_verdict(r, diag_verdict_for_err(err), "stage %s: %s", s->name, s->detail);
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

void diag_rule_tls_failed(struct diag_report *r, struct diag_stage *s, int err, const char *msg)
{
	enum diag_verdict v = diag_verdict_for_err(err);

	diag_rule_err(r, s, v == DIAG_V_USB_ERROR || v == DIAG_V_DISCONNECTED ? err : LP_ETLS, msg);
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

enum diag_verdict diag_cable_verdict(const struct diag_cable_facts *f)
{
	if (f->gone)
		return DIAG_V_DISCONNECTED;
	if (f->errors || f->reenums)
		return DIAG_V_FLAKY;
	if (f->speed_mbps > 0 && f->speed_mbps < 480)
		return DIAG_V_DEGRADED;
	return DIAG_V_GOOD;
}

static const char *speed_name(double mbps)
{
	return mbps >= 5000  ? "super"
	       : mbps >= 480 ? "high"
	       : mbps >= 12  ? "full"
	       : mbps > 0    ? "low"
			     : "unknown";
}

void diag_rule_cable(struct diag_report *r, struct diag_stage *s, const struct diag_cable_facts *f)
{
	enum diag_verdict v = diag_cable_verdict(f);
	char rounds[48] = "";
	const char *fe = f->first_error && f->first_error[0] ? f->first_error : NULL;

	if (f->rounds)
		snprintf(rounds, sizeof(rounds), "%llu rounds: ", (unsigned long long)f->rounds);
	diag_end(
		r, s, v == DIAG_V_FLAKY || v == DIAG_V_DISCONNECTED ? DIAG_ST_FAIL : DIAG_ST_OK,
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
	case DIAG_V_FLAKY:
		diag_set_verdict(
			r, v,
			"%llu transfer/protocol errors and %llu re-enumerations in %.1f s%s%s",
			(unsigned long long)f->errors, (unsigned long long)f->reenums, f->secs,
			fe ? "; first: " : "", fe ? fe : "");
		break;
	case DIAG_V_DEGRADED:
		diag_set_verdict(r, v, "link runs at %s speed (%g Mb/s), not high speed (480 Mb/s)",
				 speed_name(f->speed_mbps), f->speed_mbps);
		break;
	default:
		if (f->speed_mbps > 0)
			diag_set_verdict(r, v, "%s speed, no errors in %.1f s",
					 speed_name(f->speed_mbps), f->secs);
		else
			diag_set_verdict(r, v, "no errors in %.1f s (link speed not recorded)",
					 f->secs);
	}
}
