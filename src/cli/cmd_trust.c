/* cmd_trust.c - `linkprobe trust`: walk the stages from USB to a running
 * lockdown service and say exactly where it stalls, with the remedy.
 *
 *   find device -> descriptors -> usbmux -> lockdown connect -> QueryType ->
 *   device info -> pair record -> [Pair, waiting on the Trust dialog] ->
 *   StartSession -> TLS -> StartService (backup) -> StopSession
 *
 * Stage names and the rules that pick a verdict are src/diag's (stages.h,
 * rules.h). With --via-usbmuxd the USB stages are "find device"
 * (ListDevices) and "usbmuxd connect", connections go through the daemon and
 * the pair record is the daemon's; everything after is the same code
 * (devlink.h).
 *
 * Pair runs when --pair is given or no record exists. While the device shows
 * "Trust This Computer?" it answers PairingDialogResponsePending; we retry
 * once a second with a visible countdown until --timeout (doc/protocol.md 4.8).
 *
 * An iPhone drops off USB and re-enumerates at a new address when the user
 * taps Trust (libusbmuxd#26; libimobiledevice#1354: the pair
 * finished and the device reset the connection ~1 s later). A departure
 * within TRUST_REENUM_WINDOW_S of the last PairingDialogResponsePending or of
 * the Pair that succeeded is taken for that: we wait up to
 * TRUST_REENUM_WAIT_S for the same UDID to come back (devlink reattach),
 * reconnect to lockdown, and send the same Pair again (the device knows
 * whether Trust was tapped, and a pairing it already stored succeeds without
 * a dialog) or start again at StartSession. Only a device that does not
 * come back is DISCONNECTED. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/cli/app.h"
#include "src/cli/devlink.h"
#include "src/cli/find.h"
#include "src/base/lp_num.h"
#include "src/base/lp_str.h"
#include "src/diag/rules.h"
#include "src/diag/stages.h"
#include "proto/hostlink.h"
#include "proto/lockdown_client.h"
#include "proto/pair_cert.h"
#include "proto/pair_store.h"

#define REQ_TIMEOUT_MS 10000 /* any single lockdown request */
/* How long a phone that left right after Trust may take to be back: its
 * re-enumeration is a USB reset and enumeration (~1 s, failure catalogue
 * "Pairing handshake"), udev's rules, and through usbmuxd the daemon's own
 * preflight before it lists the device again (whose failures are logged
 * ~10 s after it starts). 10 s covers all of them; a user who really pulled
 * the cable waits that much longer for DISCONNECTED. */
#define TRUST_REENUM_WAIT_S 10
/* A departure this soon after the device last spoke of Trust
 * (PairingDialogResponsePending, or the Pair that succeeded) is taken for a
 * re-enumeration; later ones are plain disconnects. */
#define TRUST_REENUM_WINDOW_S 10
#define TRUST_REENUM_MAX 3	    /* followed in one run; one is what a phone does */
#define TRUST_RECONNECT_POLL_MS 200 /* lockdown refused right after coming back */
#define TRUST_AGAIN 1		    /* session_stages: start again at StartSession */
#define BACKUP_SERVICE "com.apple.mobilebackup2"

struct trust_run {
	struct lp_app *app;
	struct diag_report *r;
	struct hl_link *link; /* direct path only; owned by dl */
	struct devlink *dl;
	struct lp_stream *stream;
	struct lkd_client *lkd;
	struct pair_record *rec;
	const char *pair_dir;
	char *session_id;
	bool in_session;
	struct pair_keygen *keygen; /* root and host keys, generated ahead of Pair */
	uint64_t trust_at;	    /* last PairingDialogResponsePending or Pair success; 0 none */
	unsigned reenums;	    /* re-enumerations followed */
	bool left;		    /* the device left the bus at least once */
	char reenum_note[256];	    /* what the Pair stage's detail adds about them */
	bool dialog_up;		    /* the last Pair answer was PairingDialogResponsePending */
};

static uint64_t req_deadline(struct trust_run *t)
{
	return lp_clock_deadline_ms(&t->app->clock, REQ_TIMEOUT_MS);
}

/* An error that would blame the USB link: first make sure the device is
 * still on the bus (an unplug fails transfers before the kernel removes
 * the device). LP_ENODEV when it left, else err. */
static int settle(struct trust_run *t, int err, uint64_t usb_errors)
{
	if (t->link && diag_usb_fault_suspected(err, usb_errors) &&
	    hl_check_present(t->link, HL_PRESENCE_WAIT_MS) == LP_ENODEV)
		return LP_ENODEV;
	return err;
}

/* Fail the stage with the error's evidence and set the verdict it implies. */
static int fail(struct trust_run *t, struct diag_stage *s, int err, const struct lp_errinfo *e)
{
	struct hl_stats st = {0};

	if (t->link)
		hl_get_stats(t->link, &st);
	if (settle(t, err, st.errors) == LP_ENODEV) {
		char what[96];
		snprintf(what, sizeof(what), "(%llu transfer error(s) first, then it was removed)",
			 (unsigned long long)st.errors);
		diag_rule_gone(t->r, s, what);
		return LP_ENODEV;
	}
	if (err == LP_ETIMEDOUT && st.out_stalled_ns >= DIAG_OUT_UNTAKEN_NS) {
		/* the request never left: the device NAKs what the host sends */
		diag_rule_out_untaken(t->r, s, e && e->msg[0] ? e->msg : lp_strerror(err),
				      (double)st.out_stalled_ns / LP_NS_PER_S, 0);
		return err;
	}
	diag_rule_err_link(t->r, s, err, e ? e->msg : NULL, st.errors, st.last_error);
	return err;
}

/* Whether the device left the bus now, right after Trust: `err` ended a
 * request within TRUST_REENUM_WINDOW_S of the last word about Trust. */
static bool left_after_trust(struct trust_run *t, int err)
{
	uint64_t now = lp_clock_now(&t->app->clock);
	struct hl_stats st = {0};

	if (!t->trust_at || now - t->trust_at > (uint64_t)TRUST_REENUM_WINDOW_S * LP_NS_PER_S ||
	    t->reenums >= TRUST_REENUM_MAX || lp_is_lockdown_error(err))
		return false;
	if (err == LP_ENODEV)
		return true;
	if (t->link) {
		hl_get_stats(t->link, &st);
		return settle(t, err, st.errors) == LP_ENODEV;
	}
	/* through usbmuxd: the daemon closes our connections when the device
	 * detaches, and stops listing it */
	if (err == LP_ECLOSED || err == LP_ECONNRESET || err == LP_ETIMEDOUT || err == LP_EIO)
		return devlink_idle(t->dl, now + TRUST_RECONNECT_POLL_MS * LP_NS_PER_MS) ==
		       LP_ENODEV;
	return false;
}

/* The device left right after Trust: wait (bounded) for it to come back,
 * reopen it and connect to lockdown again. `what` says what was under way
 * ("during TLS"). 0: back, t->lkd is a new lockdown client and `note` says
 * so; LP_ENODEV: it did not come back (`note` says that); another lp_err:
 * it came back but could not be used (e filled). */
static int follow_reenum(struct trust_run *t, struct diag_stage *s, const char *what, char *note,
			 size_t n, struct lp_errinfo *e)
{
	struct lp_clock *clk = &t->app->clock;
	uint64_t t0 = lp_clock_now(clk), deadline = t0 + TRUST_REENUM_WAIT_S * LP_NS_PER_S;
	char where[128] = "";
	int r;

	t->left = true;
	diag_progress(t->r, s,
		      "the device left the bus %s: waiting up to %d s for it to come back (an "
		      "iPhone re-enumerates when Trust is tapped)",
		      what, TRUST_REENUM_WAIT_S);
	lkd_client_free(t->lkd);
	t->lkd = NULL;
	lp_stream_close(t->stream);
	t->stream = NULL;
	free(t->session_id);
	t->session_id = NULL;
	t->in_session = false;
	r = devlink_reattach(t->dl, deadline, where, sizeof(where), e);
	t->link = t->dl->link;
	if (r == LP_ENODEV) {
		snprintf(note, n, "%s%s and did not come back within %d s", what,
			 t->dialog_up ? " (the Trust dialog was up)" : ", right after pairing",
			 TRUST_REENUM_WAIT_S);
		return r;
	}
	if (r)
		return r;
	if (t->dl->info)
		find_fill_dev(t->r, t->dl->info);
	/* lockdownd may not listen yet on a device that just came back */
	for (;;) {
		r = devlink_connect(t->dl, MUX_PORT_LOCKDOWN, req_deadline(t), &t->stream, e);
		if (r != LP_ECONNREFUSED || lp_clock_now(clk) >= deadline)
			break;
		lp_clock_sleep_until(clk,
				     lp_clock_now(clk) + TRUST_RECONNECT_POLL_MS * LP_NS_PER_MS);
	}
	if (r)
		return r;
	t->lkd = lkd_client_new(t->stream, "linkprobe");
	if (!t->lkd)
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	if (t->app->cap)
		lkd_set_keylog(t->lkd, app_capture_keylog, t->app);
	t->reenums++;
	snprintf(
		note, n,
		"the device re-enumerated after Trust (as iPhones do) %s and came back at %s after "
		"%.2f s; continued",
		what, where, (double)(lp_clock_now(clk) - t0) / LP_NS_PER_S);
	return 0;
}

/* Stage s, after a Pair made now, failed with err: did the device leave to
 * re-enumerate? 1: it did and is back - s is ended as the re-enumeration
 * and the caller starts again at StartSession; -1: it left and is not back,
 * or came back unusable (s failed with the verdict); 0: it did not leave,
 * err is reported as usual. */
static int gone_after_trust(struct trust_run *t, struct diag_stage *s, int err,
			    struct lp_errinfo *e)
{
	char note[sizeof(t->reenum_note)], what[80];
	int r;

	if (!left_after_trust(t, err))
		return 0;
	snprintf(what, sizeof(what), "during %s", s->name);
	r = follow_reenum(t, s, what, note, sizeof(note), e);
	if (r == 0) {
		/* not the stage's failure: its row becomes the re-enumeration */
		snprintf(s->name, sizeof(s->name), "%s", diag_stage_name(DIAG_STAGE_REENUMERATION));
		diag_end(t->r, s, DIAG_ST_OK, "%s from StartSession", note);
		return 1;
	}
	if (r == LP_ENODEV)
		diag_rule_gone(t->r, s, note);
	else
		fail(t, s, r, e);
	return -1;
}

/* A failure of the pair-record store. This host's files are the host's
 * fault, never the device's (diag_rule_pair_store); a daemon's store
 * (--via-usbmuxd) fails as the daemon does. */
static int fail_store(struct trust_run *t, struct diag_stage *s, int err,
		      const struct lp_errinfo *e)
{
	if (!t->dl->local_records)
		return fail(t, s, err, e);
	diag_rule_pair_store(t->r, s, err, e ? e->msg : NULL);
	return err;
}

/* A string value into dst; a key the device refuses is named in the
 * device-info stage (GetProhibited). */
static void copy_str_value(struct trust_run *t, const char *key, char *dst, size_t n, uint64_t dl)
{
	plist_t v = NULL;
	int r = lkd_get_value(t->lkd, NULL, key, &v, dl, NULL);

	if (r == LP_ELKD_GET_PROHIBITED)
		diag_refused_key(t->r, key);
	if (r == 0 && v && plist_get_node_type(v) == PLIST_STRING) {
		char *s = NULL;
		plist_get_string_val(v, &s);
		lp_sanitize_str(dst, n, s);
		free(s);
	}
	plist_free(v);
}

static int stage_device_info(struct trust_run *t, plist_t *pubkey, char **wifi)
{
	struct diag_stage *s = diag_stage_begin(t->r, DIAG_STAGE_DEVICE_INFO);
	struct lp_errinfo e = {0};
	struct diag_device *d = &t->r->dev;
	char udid[80] = "";
	plist_t v = NULL;
	int r;

	copy_str_value(t, "UniqueDeviceID", udid, sizeof(udid), req_deadline(t));
	copy_str_value(t, "ProductType", d->product_type, sizeof(d->product_type), req_deadline(t));
	copy_str_value(t, "ProductVersion", d->product_version, sizeof(d->product_version),
		       req_deadline(t));
	copy_str_value(t, "DeviceName", d->name, sizeof(d->name), req_deadline(t));
	if (udid[0] && strcmp(udid, d->udid) != 0) {
		if (d->udid[0])
			lp_logf(&t->app->log, LP_LOG_WARN,
				"USB serial %s differs from UniqueDeviceID %s", d->udid, udid);
		snprintf(d->udid, sizeof(d->udid), "%s", udid);
	}
	r = lkd_get_value(t->lkd, NULL, "DevicePublicKey", &v, req_deadline(t), &e);
	if (r == LP_ELKD_GET_PROHIBITED) {
		/* only pairing needs it: Pair fails with this evidence if it runs */
		diag_refused_key(t->r, "DevicePublicKey");
	} else if (r) {
		return fail(t, s, r, &e);
	} else if (plist_get_node_type(v) != PLIST_DATA) {
		plist_free(v);
		return fail(t, s, LP_EBADMSG,
			    &(struct lp_errinfo){LP_EBADMSG, "DevicePublicKey is not data"});
	} else {
		*pubkey = v;
	}
	v = NULL;
	if (lkd_get_value(t->lkd, NULL, "WiFiAddress", &v, req_deadline(t), NULL) == 0 && v &&
	    plist_get_node_type(v) == PLIST_STRING) {
		/* stored in the record, which refuses odd strings on load: keep
		 * only what looks like a MAC address (hex digits and ':') */
		const char *p = plist_get_string_ptr(v, NULL);
		if (p && strlen(p) <= 32 && p[strspn(p, "0123456789abcdefABCDEF:")] == '\0')
			*wifi = strdup(p);
		else
			lp_logf(&t->app->log, LP_LOG_WARN,
				"ignoring a malformed WiFiAddress from the device");
	}
	plist_free(v);
	diag_rule_device_info(t->r, s, NULL);
	return 0;
}

/* Which certificate the device presented as TLS server. Like every host we do
 * not refuse a mismatch (which one a real iPhone presents is unverified), but
 * it is evidence: a device that presents its DeviceCertificate from the record
 * holds the key the pairing was made for. */
static const char *device_cert_evidence(struct trust_run *t)
{
	X509 *peer = lkd_tls_peer_cert(t->lkd), *mine;
	const char *what;

	if (!peer)
		return "the device presented no certificate";
	mine = pair_load_cert(t->rec->device_certificate.data, t->rec->device_certificate.len);
	if (mine && X509_cmp(peer, mine) == 0)
		what = "the device presented the DeviceCertificate of the pair record";
	else
		what = "the device presented a certificate other than the record's DeviceCertificate";
	X509_free(mine);
	return what;
}

static int stage_pair(struct trust_run *t, plist_t pubkey, const char *wifi)
{
	struct lp_app *app = t->app;
	struct diag_stage *s = diag_stage_begin(t->r, DIAG_STAGE_PAIR);
	struct lp_errinfo e = {0};
	struct pair_creds creds;
	struct pair_record *rec;
	char buid[37], hostid[37], where[256], lost[sizeof(t->reenum_note)] = "";
	const char *pem;
	uint64_t pem_len = 0, start, deadline;
	int r, tries = 0;
	bool dialog_seen = false, locked_seen = false;

	if (!pubkey) {
		diag_rule_err(t->r, s, LP_ELKD_GET_PROHIBITED, NULL);
		snprintf(t->r->evidence + strlen(t->r->evidence),
			 sizeof(t->r->evidence) - strlen(t->r->evidence),
			 " (GetValue DevicePublicKey was refused, and Pair needs it)");
		return LP_ELKD_GET_PROHIBITED;
	}
	pem = plist_get_data_ptr(pubkey, &pem_len);
	diag_progress(t->r, s, "generating RSA-2048 root and host keys and certificates");
	if (!t->keygen && pair_keygen_start(&t->keygen, NULL))
		t->keygen = NULL; /* no threads: generated one after the other below */
	if (t->keygen)
		r = pair_creds_generate_with(t->keygen, (const uint8_t *)pem, (size_t)pem_len,
					     &creds, &e);
	else
		r = pair_creds_generate((const uint8_t *)pem, (size_t)pem_len, &creds, &e);
	if (r)
		return fail(t, s, r, &e);
	{ /* test hook: a slow host, whose key generation eats clock time */
		const char *slow = getenv("LINKPROBE_TEST_SLOW_KEYGEN_MS");
		uint64_t ms = 0;
		if (slow && lp_parse_uint(slow, 1, 600000, &ms) == 0)
			lp_clock_sleep_until(&app->clock,
					     lp_clock_now(&app->clock) + ms * LP_NS_PER_MS);
	}
	/* --timeout is the user's window for the Trust dialog: it starts when the
	 * first Pair request (which puts the dialog up) goes out, not before the
	 * keys were made. */
	start = lp_clock_now(&app->clock);
	deadline = start + (uint64_t)(app->timeout_s * LP_NS_PER_S);
	rec = pair_record_new();
	if (!rec) {
		pair_creds_clear(&creds);
		return fail(t, s, LP_ENOMEM, NULL);
	}
	pair_record_adopt_creds(rec, &creds);
	r = devlink_system_buid(t->dl, buid, &e);
	if (!r)
		r = pair_new_uuid(hostid);
	if (!r)
		r = pair_record_set_str(&rec->system_buid, buid);
	if (!r)
		r = pair_record_set_str(&rec->host_id, hostid);
	if (!r)
		r = pair_record_set_str(&rec->udid, t->r->dev.udid);
	if (!r && wifi)
		r = pair_record_set_str(&rec->wifi_mac_address, wifi);
	if (r) {
		pair_record_free(rec);
		return fail_store(t, s, r, &e);
	}

	for (;;) {
		plist_t escrow = NULL;
		uint64_t now, next;
		char note[sizeof(t->reenum_note)];
		int fr;

		tries++;
		r = lkd_pair(t->lkd, rec, &escrow, req_deadline(t), &e);
		if (r == 0) {
			t->trust_at = lp_clock_now(&app->clock);
			t->dialog_up = false; /* a departure from now on is after pairing */
			if (escrow) {
				uint64_t n = 0;
				const char *p = plist_get_data_ptr(escrow, &n);
				r = pair_record_set_blob(&rec->escrow_bag, p, (size_t)n);
				plist_free(escrow);
			}
			break;
		}
		if (r == LP_ELKD_PAIRING_DIALOG_PENDING) {
			t->trust_at = lp_clock_now(&app->clock);
			t->dialog_up = true;
		}
		if (r != LP_ELKD_PAIRING_DIALOG_PENDING && r != LP_ELKD_PASSWORD_PROTECTED) {
			if (!left_after_trust(t, r))
				break;
			goto reenum;
		}
		now = lp_clock_now(&app->clock);
		if (now >= deadline)
			break;
		if (r == LP_ELKD_PAIRING_DIALOG_PENDING) {
			dialog_seen = true;
			diag_progress(
				t->r, s,
				"tap Trust on the device when \"Trust This Computer?\" shows (it can "
				"take up to ~30 s to appear), then enter the passcode "
				"(%.0f s left, attempt %d)",
				(double)(deadline - now) / LP_NS_PER_S, tries);
		} else {
			locked_seen = true;
			diag_progress(t->r, s,
				      "unlock the device to see the Trust dialog "
				      "(%.0f s left, attempt %d)",
				      (double)(deadline - now) / LP_NS_PER_S, tries);
		}
		next = now + LP_NS_PER_S < deadline ? now + LP_NS_PER_S : deadline;
		if (devlink_idle(t->dl, next) != LP_ENODEV)
			continue;
		r = LP_ENODEV;
		if (!left_after_trust(t, r))
			break;
	reenum:
		/* the same record again: the device knows whether Trust was
		 * tapped, and one it already stored pairs without a dialog */
		fr = follow_reenum(t, s, "during Pair", note, sizeof(note), &e);
		if (fr) {
			r = fr;
			if (fr == LP_ENODEV)
				snprintf(lost, sizeof(lost), "%s", note);
			break;
		}
		snprintf(t->reenum_note, sizeof(t->reenum_note), "; %s", note);
	}
	if (r) {
		struct hl_stats st = {0};
		struct diag_pair_end pe;

		if (t->link)
			hl_get_stats(t->link, &st);
		pe = (struct diag_pair_end){
			.err = r,
			.tries = (unsigned)tries,
			.waited_s = (double)(lp_clock_now(&app->clock) - start) / LP_NS_PER_S,
			.dialog_seen = dialog_seen,
			.msg = e.msg,
			.usb_errors = st.errors,
			.last_usb_err = st.last_error,
		};
		pair_record_free(rec);
		(void)locked_seen;
		pe.err = settle(t, pe.err, pe.usb_errors);
		if (pe.err == LP_ENODEV && lost[0]) {
			/* followed, and it did not come back */
			diag_rule_gone(t->r, s, lost);
			return r;
		}
		diag_rule_pair_failed(t->r, s, &pe);
		return r;
	}
	r = devlink_record_save(t->dl, rec, &e);
	if (r) {
		pair_record_free(rec);
		return fail_store(t, s, r, &e);
	}
	pair_record_free(t->rec);
	t->rec = rec;
	devlink_record_name(t->dl, rec->udid, where, sizeof(where));
	diag_end(t->r, s, DIAG_ST_OK, "paired after %d attempt(s)%s%s; record saved to %s%s", tries,
		 dialog_seen ? ", Trust tapped on the device" : "", t->reenum_note, where,
		 t->dl->save_note);
	return 0;
}

/* StartSession, TLS, StartService, StopSession; the verdict TRUSTED. 0, an
 * lp_err (verdict set), or TRUST_AGAIN: the device re-enumerated right after
 * Trust and is back, start again here. */
static int session_stages(struct trust_run *t, bool need_pair, const char *where)
{
	struct diag_report *r = t->r;
	struct diag_stage *s;
	struct lp_errinfo e = {0};
	bool ssl = false;
	uint16_t port = 0;
	int ret, g;

	/* StartSession */
	s = diag_stage_begin(r, DIAG_STAGE_START_SESSION);
	ret = lkd_start_session(t->lkd, t->rec->host_id, t->rec->system_buid, &t->session_id, &ssl,
				req_deadline(t), &e);
	if (ret && (g = gone_after_trust(t, s, ret, &e)) != 0)
		return g > 0 ? TRUST_AGAIN : ret;
	if (ret) {
		fail(t, s, ret, &e);
		if (ret == LP_ELKD_INVALID_HOST_ID)
			snprintf(r->remedy_extra, sizeof(r->remedy_extra),
				 "Stale record: %s (HostID %s).", where, t->rec->host_id);
		return ret;
	}
	t->in_session = true;
	diag_end(r, s, DIAG_ST_OK, "SessionID %s, EnableSessionSSL %s", t->session_id,
		 ssl ? "true" : "false");

	/* TLS */
	s = diag_stage_begin(r, DIAG_STAGE_TLS);
	if (!ssl) {
		diag_end(r, s, DIAG_ST_SKIPPED, "device did not ask for session TLS");
	} else {
		X509 *cert;
		EVP_PKEY *key;
		const char *ver = "", *cipher = "", *bad;
		if (!pair_record_host_identity(t->rec, &cert, &key, &bad)) {
			ret = LP_EBADMSG;
			snprintf(e.msg, sizeof(e.msg),
				 "%s: HostCertificate or HostPrivateKey is not a usable PEM %s",
				 where, bad);
			fail_store(t, s, ret, &e);
			return ret;
		}
		ret = lkd_start_tls(t->lkd, cert, key, req_deadline(t), &e);
		X509_free(cert);
		EVP_PKEY_free(key);
		if (ret && (g = gone_after_trust(t, s, ret, &e)) != 0)
			return g > 0 ? TRUST_AGAIN : ret;
		if (ret) {
			diag_rule_tls_failed(r, s, ret, e.msg, lkd_tls_device_answered(t->lkd));
			return ret;
		}
		/* With TLS 1.3 our side of the handshake ends before the device has
		 * judged the host certificate: one request inside TLS shows whether
		 * it accepted the session (a device that refuses ends it). A
		 * lockdown refusal of the request itself still proves the session. */
		{
			plist_t v = NULL;
			ret = lkd_get_value(t->lkd, NULL, "ProductVersion", &v, req_deadline(t),
					    &e);
			plist_free(v);
			if (ret && (g = gone_after_trust(t, s, ret, &e)) != 0)
				return g > 0 ? TRUST_AGAIN : ret;
			if (ret && !lp_is_lockdown_error(ret)) {
				char why[sizeof(e.msg) + 128];
				snprintf(
					why, sizeof(why),
					"the device ended the session right after the handshake: it did "
					"not accept the host certificate of the pair record (%s)",
					e.msg);
				diag_rule_tls_failed(r, s, ret, why, true);
				return ret;
			}
			ret = 0;
		}
		lkd_tls_info(t->lkd, &ver, &cipher);
		diag_end(r, s, DIAG_ST_OK, "%s %s, host certificate accepted; %s", ver, cipher,
			 device_cert_evidence(t));
	}

	/* StartService */
	s = diag_stage_begin(r, DIAG_STAGE_START_SERVICE);
	{
		plist_t escrow = NULL;
		bool svc_ssl = false;
		const char *why = "the pair record has no EscrowBag";
		bool escrow_sent;
		/* the bag unlocks the device's keybag: only for the device that
		 * proved it holds the paired key, and only encrypted */
		if (t->rec->escrow_bag.len &&
		    lkd_escrow_allowed(t->lkd, t->rec->device_certificate.data,
				       t->rec->device_certificate.len, &why))
			escrow = plist_new_data((const char *)t->rec->escrow_bag.data,
						t->rec->escrow_bag.len);
		escrow_sent = escrow != NULL;
		r->escrow_sent = escrow_sent; /* PasswordProtected means more with it */
		ret = lkd_start_service(t->lkd, BACKUP_SERVICE, escrow, &port, &svc_ssl,
					req_deadline(t), &e);
		plist_free(escrow);
		if (ret && (g = gone_after_trust(t, s, ret, &e)) != 0)
			return g > 0 ? TRUST_AGAIN : ret;
		if (ret) {
			fail(t, s, ret, &e);
			return ret;
		}
		struct lp_stream *svc = NULL;
		ret = devlink_connect(t->dl, port, req_deadline(t), &svc, &e);
		if (ret && (g = gone_after_trust(t, s, ret, &e)) != 0)
			return g > 0 ? TRUST_AGAIN : ret;
		if (ret) {
			fail(t, s, ret, &e);
			return ret;
		}
		lp_stream_close(svc);
		diag_end(r, s, DIAG_ST_OK, "%s on port %u%s, connection opened; EscrowBag %s%s",
			 BACKUP_SERVICE, port, svc_ssl ? " (service TLS)" : "",
			 escrow_sent ? "sent" : "withheld: ", escrow_sent ? "" : why);
	}

	/* StopSession */
	s = diag_stage_begin(r, DIAG_STAGE_STOP_SESSION);
	ret = lkd_stop_session(t->lkd, t->session_id, req_deadline(t), &e);
	if (ret && (g = gone_after_trust(t, s, ret, &e)) != 0)
		return g > 0 ? TRUST_AGAIN : ret;
	if (ret) {
		fail(t, s, ret, &e);
		return ret;
	}
	t->in_session = false;
	diag_end(r, s, DIAG_ST_OK, "session %s closed", t->session_id);
	diag_set_verdict(r, DIAG_V_TRUSTED, "session TLS and %s started with %s", BACKUP_SERVICE,
			 need_pair ? "the pairing made now" : "the stored pairing");
	return ret;
}

/* The direct path's first stages: find the device on USB, read its
 * descriptors, bring usbmux up (find.h). */
static int open_direct(struct trust_run *t)
{
	struct tr_devinfo info;
	struct usbd_probe p;
	char held[LP_ERRINFO_MSG] = "";
	int ret;

	if (t->app->direct) {
		ret = find_usb_stages(t->app, t->r, &info, &p, &t->link);
		if (ret == LP_EBUSY)
			snprintf(
				t->r->remedy_extra, sizeof(t->r->remedy_extra),
				"--direct keeps linkprobe off usbmuxd: stop it while probing (sudo "
				"systemctl stop usbmuxd; udev starts it again when a device is "
				"plugged in), or leave out --direct to go through it.");
	} else {
		/* usbmuxd holds the interface on a desktop: go through it */
		ret = find_usb_stages_held(t->app, t->r, &info, &p, &t->link, held, sizeof(held));
		if (ret == LP_EBUSY && held[0]) /* (held stays empty for a kernel driver) */
			return via_usbmuxd_held(t->app, t->r, held, "pairing", &t->dl);
	}
	if (ret)
		return ret;
	t->dl = devlink_direct_new(t->app, t->link, &info, t->pair_dir);
	if (!t->dl) {
		t->link = NULL;
		diag_set_verdict(t->r, DIAG_V_NONE, "out of memory");
		return LP_ENOMEM;
	}
	return 0;
}

static int run(struct trust_run *t)
{
	struct lp_app *app = t->app;
	struct diag_report *r = t->r;
	struct diag_stage *s;
	struct lp_errinfo e = {0};
	plist_t pubkey = NULL;
	char *wifi = NULL, *type = NULL, where[256];
	bool need_pair;
	int ret;

	ret = app->via_usbmuxd ? via_usbmuxd_open(app, r, &t->dl) : open_direct(t);
	if (ret)
		return ret;

	/* lockdown connect */
	s = diag_stage_begin(r, DIAG_STAGE_LOCKDOWN_CONNECT);
	ret = devlink_connect(t->dl, MUX_PORT_LOCKDOWN, req_deadline(t), &t->stream, &e);
	if (ret && t->dl->daemon && via_usbmuxd_fault(ret)) {
		/* the daemon lists the device but its Connect did not get through */
		char what[DIAG_DETAIL];
		snprintf(what, sizeof(what),
			 "lists the device, but lockdown (port %u) through it failed: %s",
			 MUX_PORT_LOCKDOWN, e.msg);
		diag_rule_usbmuxd(r, s, t->dl->daemon, what);
		return ret;
	}
	if (ret == LP_ECONNREFUSED && t->link) {
		diag_rule_lockdown_down(r, s, true, 0);
		return ret;
	}
	if (ret)
		return fail(t, s, ret, &e);
	t->lkd = lkd_client_new(t->stream, "linkprobe");
	if (!t->lkd)
		return fail(t, s, LP_ENOMEM, NULL);
	if (app->cap)
		lkd_set_keylog(t->lkd, app_capture_keylog, app);
	diag_end(r, s, DIAG_ST_OK, "%s to port %u (lockdownd) open", t->dl->conn_kind,
		 MUX_PORT_LOCKDOWN);

	/* QueryType */
	s = diag_stage_begin(r, DIAG_STAGE_QUERY_TYPE);
	{
		uint64_t q0 = lp_clock_now(&app->clock);
		struct hl_stats st = {0};

		ret = lkd_query_type(t->lkd, &type, req_deadline(t), &e);
		if (t->link)
			hl_get_stats(t->link, &st);
		/* no answer, on a link that lost nothing and a device still on
		 * the bus: lockdownd itself is hung */
		if (ret == LP_ETIMEDOUT && t->link && !st.errors &&
		    st.out_stalled_ns < DIAG_OUT_UNTAKEN_NS &&
		    hl_check_present(t->link, HL_PRESENCE_WAIT_MS) == 0) {
			diag_rule_lockdown_down(r, s, false,
						(double)(lp_clock_now(&app->clock) - q0) /
							LP_NS_PER_S);
			return ret;
		}
	}
	if (ret)
		return fail(t, s, ret, &e);
	if (!diag_rule_query_type(r, s, type)) {
		free(type);
		return LP_EPROTO;
	}
	diag_end(r, s, DIAG_ST_OK, "%s", type);
	free(type);

	/* device info */
	ret = stage_device_info(t, &pubkey, &wifi);
	if (ret)
		goto out;

	/* pair record */
	s = diag_stage_begin(r, DIAG_STAGE_PAIR_RECORD);
	ret = devlink_record_load(t->dl, r->dev.udid, &t->rec, &e);
	/* after the load: a directory that refused us sends it to usbmuxd */
	devlink_record_name(t->dl, r->dev.udid, where, sizeof(where));
	if (ret == 0 && !app->pair) {
		diag_end(r, s, DIAG_ST_OK, "%s, HostID %s", where, t->rec->host_id);
		need_pair = false;
	} else if (ret == 0 || ret == LP_ENOENT) {
		need_pair = true;
	} else if (app->pair && (!t->dl->local_records ||
				 diag_pair_store_verdict(ret) == DIAG_V_PAIR_RECORD_CORRUPT)) {
		need_pair = true; /* a damaged record is replaced */
	} else if (t->dl->local_records) {
		/* the host's own file: unreadable or damaged, never the device's
		 * doing (a record the device refuses is InvalidHostID later) */
		fail_store(t, s, ret, &e);
		snprintf(r->remedy_extra, sizeof(r->remedy_extra), "%s %s was left as it is.",
			 diag_pair_store_verdict(ret) == DIAG_V_PAIR_RECORD_CORRUPT
				 ? "`linkprobe trust --pair` replaces it;"
				 : "Nothing was written:",
			 where);
		goto out;
	} else {
		diag_end(r, s, DIAG_ST_FAIL, "%s", e.msg);
		diag_set_verdict(r, DIAG_V_STALE_TRUST, "the pair record is unreadable");
		snprintf(
			r->remedy_extra, sizeof(r->remedy_extra),
			"The record %s could not be used: move it away or run with --pair to replace it.",
			where);
		goto out;
	}
	if (need_pair) {
		/* a record that cannot be saved must be found before the user
		 * taps Trust, not after */
		struct lp_errinfo we = {0};
		int wr = devlink_record_check(t->dl, &we);
		if (wr) {
			ret = fail_store(t, s, wr, &we);
			goto out;
		}
		if (ret == 0)
			diag_end(r, s, DIAG_ST_OK, "record exists; --pair given: pairing again%s",
				 t->dl->local_records ? " (directory writable)" : "");
		else if (ret == LP_ENOENT)
			diag_end(r, s, DIAG_ST_OK, "no record for this device (%s): pairing%s",
				 where, t->dl->local_records ? " (directory writable)" : "");
		else
			diag_end(r, s, DIAG_ST_OK,
				 "existing record unreadable (%s); --pair given: replacing it",
				 e.msg);
	}
	ret = 0;
	if (need_pair) {
		ret = stage_pair(t, pubkey, wifi);
		if (ret)
			goto out;
	} else {
		diag_stage_skip(r, DIAG_STAGE_PAIR,
				"a pair record exists (use --pair to pair again)");
	}

	do
		ret = session_stages(t, need_pair, where);
	while (ret == TRUST_AGAIN);
out:
	plist_free(pubkey);
	free(wifi);
	return ret;
}

int cmd_trust(struct lp_app *app)
{
	struct diag_report r;
	struct trust_run t;
	struct lp_errinfo e = {0};
	int code;

	memset(&t, 0, sizeof(t));
	if (app->via_usbmuxd) {
		lp_clock_init_real(&app->clock); /* the daemon owns the device: nothing to open */
	} else if (app_open_device(app, &e)) {
		code = out_open_failed(app, &e, "trust");
		app_close_device(app);
		return code;
	}
	diag_init(&r, "trust", &app->clock);
	out_attach(app, &r);
	t.app = app;
	t.r = &r;
	t.pair_dir = app->pair_dir ? app->pair_dir : PAIR_RECORD_DEFAULT_DIR;
	/* --pair: a pairing is certain, so the two RSA keys are made while the
	 * device walk runs (they dominate the Pair stage otherwise) */
	if (app->pair && pair_keygen_start(&t.keygen, NULL))
		t.keygen = NULL;
	run(&t);
	if (t.left) {
		/* re-enumerations followed after Trust (the text is in the stages) */
		if (!r.metrics)
			r.metrics = json_object_new_object();
		if (r.metrics)
			json_object_object_add(r.metrics, "reenumerations",
					       json_object_new_int64((int64_t)t.reenums));
	}
	if (r.verdict == DIAG_V_NONE && !r.evidence[0])
		diag_set_verdict(&r, DIAG_V_PROTOCOL_ERROR, "stopped without a verdict");
	lkd_client_free(t.lkd);
	lp_stream_close(t.stream);
	devlink_free(t.dl);
	pair_record_free(t.rec);
	pair_keygen_free(t.keygen);
	free(t.session_id);
	code = out_finish(app, &r);
	diag_release(&r);
	app_close_device(app);
	return code;
}
