/* test_diag.c - the diagnosis module with known inputs: the error -> verdict
 * map for every lp_err, every cable-test boundary (0 vs 1 error, a
 * re-enumeration without errors, FLAKY over DEGRADED, full and low speed,
 * a device that does not come back), the latency statistics (exact
 * nearest-rank percentiles), the mode / Pair / TLS / QueryType rules, the
 * stage vocabulary and the JSON form of a report; the host's own faults
 * (pair-record store, no USB host, --udid, usbmux daemon, replay, a capture
 * cut short) with remedies that never send the user to the cable or phone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_error.h"
#include "src/diag/diag.h"
#include "src/diag/rules.h"
#include "src/diag/stages.h"

struct fixture {
	struct lp_clock clk;
	struct diag_report r;
};

static int setup(void **state)
{
	static struct fixture f;
	memset(&f, 0, sizeof(f));
	lp_clock_init_virtual(&f.clk, 0);
	diag_init(&f.r, "test", &f.clk);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	diag_release(&f->r);
	return 0;
}

/* --- error -> verdict --------------------------------------------------- */

static void test_err_map(void **state)
{
	static const struct {
		int err;
		enum diag_verdict v;
	} rows[] = {
		{LP_ENODEV, DIAG_V_DISCONNECTED},
		{LP_EACCES, DIAG_V_ACCESS_DENIED},
		{LP_EBUSY, DIAG_V_DEVICE_BUSY},
		{LP_ETLS, DIAG_V_TLS_FAILED},
		{LP_ELKD_PASSWORD_PROTECTED, DIAG_V_LOCKED},
		{LP_ELKD_USER_DENIED_PAIRING, DIAG_V_DENIED},
		{LP_ELKD_PAIRING_DIALOG_PENDING, DIAG_V_TRUST_PENDING},
		{LP_ELKD_INVALID_HOST_ID, DIAG_V_STALE_TRUST},
		{LP_EPROTO, DIAG_V_PROTOCOL_ERROR},
		{LP_EBADMSG, DIAG_V_PROTOCOL_ERROR},
		{LP_EPLIST, DIAG_V_PROTOCOL_ERROR},
		{LP_ETOOBIG, DIAG_V_PROTOCOL_ERROR},
		{LP_ETRUNC, DIAG_V_PROTOCOL_ERROR},
		{LP_ECONNREFUSED, DIAG_V_PROTOCOL_ERROR},
		{LP_ECONNRESET, DIAG_V_PROTOCOL_ERROR},
		{LP_ECLOSED, DIAG_V_PROTOCOL_ERROR},
		{LP_ESTALL, DIAG_V_USB_ERROR},
		{LP_EOVERFLOW, DIAG_V_USB_ERROR},
		{LP_EUSB, DIAG_V_USB_ERROR},
		{LP_EIO, DIAG_V_USB_ERROR},
		{LP_ETIMEDOUT, DIAG_V_USB_ERROR},
		{LP_ECANCELED, DIAG_V_USB_ERROR},
		/* this host's own faults blame neither the device nor the cable */
		{LP_OK, DIAG_V_NONE},
		{LP_ENOMEM, DIAG_V_NONE},
		{LP_EINVAL, DIAG_V_NONE},
		{LP_ECRYPTO, DIAG_V_NONE},
		{LP_ENOENT, DIAG_V_NONE},
		{LP_EUNSUPPORTED, DIAG_V_NONE},
		{LP_EDIVERGED, DIAG_V_NONE},
		{LP_EAGAIN, DIAG_V_NONE},
		{LP_EFORMAT, DIAG_V_NONE},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		enum diag_verdict got = diag_verdict_for_err(rows[i].err);
		if (got != rows[i].v)
			fail_msg("%s: got %s, want %s", lp_errname(rows[i].err),
				 diag_verdict_name(got), diag_verdict_name(rows[i].v));
	}
	/* every lockdown refusal the device can send has its own meaning and a
	 * verdict that is not the generic protocol error; only a string outside
	 * the table is PROTOCOL_ERROR (it is named as sent). None is a USB or
	 * cable verdict. */
	for (int err = LP_ELKD_FIRST; err >= LP_ELKD_LAST; err--) {
		enum diag_verdict v = diag_verdict_for_err(err);
		if (err == LP_ELKD_UNKNOWN) {
			assert_int_equal(v, DIAG_V_PROTOCOL_ERROR);
			assert_null(diag_lockdown_meaning(err));
			continue;
		}
		if (!diag_lockdown_meaning(err) || strlen(diag_lockdown_meaning(err)) < 20)
			fail_msg("%s has no sentence", lp_lockdown_error_name(err));
		if (v == DIAG_V_PROTOCOL_ERROR || v == DIAG_V_USB_ERROR || v == DIAG_V_NONE ||
		    v == DIAG_V_FLAKY || v == DIAG_V_DISCONNECTED)
			fail_msg("%s: %s", lp_lockdown_error_name(err), diag_verdict_name(v));
	}
	assert_int_equal(diag_verdict_for_err(LP_ELKD_MC_CHALLENGE_REQUIRED), DIAG_V_SUPERVISED);
	assert_int_equal(diag_verdict_for_err(LP_ELKD_MC_PROTECTED), DIAG_V_PAIRING_BLOCKED);
	assert_int_equal(diag_verdict_for_err(LP_ELKD_ESCROW_LOCKED), DIAG_V_LOCKED_AFTER_RESTART);
}

/* Each lockdown error, answered to Pair, StartSession and StartService: the
 * stage names the error string and its meaning, the evidence names the
 * stage, and the remedy is specific (never the protocol error's "restart the
 * device" text for a refusal the device explained). */
static void test_lockdown_errors_each_stage(void **state)
{
	static const enum diag_stage_id at[] = {DIAG_STAGE_PAIR, DIAG_STAGE_START_SESSION,
						DIAG_STAGE_START_SERVICE};
	struct fixture *f = *state;

	for (int err = LP_ELKD_FIRST; err > LP_ELKD_UNKNOWN; err--)
		for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
			struct diag_stage *s = diag_stage_begin(&f->r, at[i]);
			const char *rem;
			diag_rule_err(&f->r, s, err, NULL);
			assert_int_equal(s->status, DIAG_ST_FAIL);
			assert_non_null(strstr(s->detail, lp_lockdown_error_name(err)));
			assert_non_null(strstr(f->r.evidence, s->name));
			rem = diag_remedy(&f->r);
			assert_true(strlen(rem) > 40);
			assert_string_not_equal(rem, diag_verdict_remedy(DIAG_V_PROTOCOL_ERROR));
			f->r.nstages = 0;
		}
}

static void test_locked_after_restart(void **state)
{
	struct fixture *f = *state;
	struct diag_stage *s = diag_stage_begin(&f->r, DIAG_STAGE_START_SESSION);

	/* paired, but the session is refused with the passcode error: restarted
	 * and not unlocked since - a different remedy from a locked screen
	 * while pairing */
	diag_rule_err(&f->r, s, LP_ELKD_PASSWORD_PROTECTED, NULL);
	assert_int_equal(f->r.verdict, DIAG_V_LOCKED_AFTER_RESTART);
	assert_non_null(strstr(diag_remedy(&f->r), "Do not pair again"));
	/* StartService: only when the EscrowBag went with it; without the bag
	 * any locked device answers so */
	f->r.escrow_sent = true;
	s = diag_stage_begin(&f->r, DIAG_STAGE_START_SERVICE);
	diag_rule_err(&f->r, s, LP_ELKD_PASSWORD_PROTECTED, NULL);
	assert_int_equal(f->r.verdict, DIAG_V_LOCKED_AFTER_RESTART);
	f->r.escrow_sent = false;
	s = diag_stage_begin(&f->r, DIAG_STAGE_START_SERVICE);
	diag_rule_err(&f->r, s, LP_ELKD_PASSWORD_PROTECTED, NULL);
	assert_int_equal(f->r.verdict, DIAG_V_LOCKED);
	assert_non_null(strstr(s->detail, "no EscrowBag"));
	assert_null(strstr(diag_remedy(&f->r), "Do not pair again"));
	assert_null(strstr(diag_remedy(&f->r), "trust --pair"));
	s = diag_stage_begin(&f->r, DIAG_STAGE_PAIR);
	diag_rule_err(&f->r, s, LP_ELKD_PASSWORD_PROTECTED, NULL);
	assert_int_equal(f->r.verdict, DIAG_V_LOCKED);
	assert_null(strstr(diag_remedy(&f->r), "Do not pair again"));
}

static void test_refused_keys(void **state)
{
	struct fixture *f = *state;
	struct diag_stage *s = diag_stage_begin(&f->r, DIAG_STAGE_DEVICE_INFO);
	json_object *j, *d, *k;

	snprintf(f->r.dev.udid, sizeof(f->r.dev.udid), "abc");
	f->r.dev.present = true;
	diag_refused_key(&f->r, "ProductType");
	diag_refused_key(&f->r, "ProductVersion");
	diag_refused_key(&f->r, "ProductType"); /* once */
	diag_rule_device_info(&f->r, s, NULL);
	assert_int_equal(s->status, DIAG_ST_OK);
	assert_non_null(strstr(s->detail, "refused to give ProductType, ProductVersion"));
	j = diag_to_json(&f->r);
	assert_true(json_object_object_get_ex(j, "device", &d));
	assert_true(json_object_object_get_ex(d, "refused_keys", &k));
	assert_int_equal(json_object_array_length(k), 2);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(k, 1)),
			    "ProductVersion");
	json_object_put(j);
}

static void test_rule_err_names_stage(void **state)
{
	struct fixture *f = *state;
	struct diag_stage *s = diag_stage_begin(&f->r, DIAG_STAGE_START_SESSION);

	/* one rule, live and offline: PasswordProtected in StartSession is a
	 * device not unlocked since it restarted (it was PROTOCOL_ERROR when
	 * read from a capture once) */
	diag_rule_err(&f->r, s, LP_ELKD_PASSWORD_PROTECTED, NULL);
	assert_int_equal(s->status, DIAG_ST_FAIL);
	assert_int_equal(f->r.verdict, DIAG_V_LOCKED_AFTER_RESTART);
	assert_non_null(strstr(s->detail, "PasswordProtected"));
	assert_non_null(strstr(f->r.evidence, "stage StartSession:"));
}

/* --- cable test ---------------------------------------------------------- */

static const struct diag_cable_facts clean = {
	.rounds = 100,
	.ctrl = 100,
	.mux = 100,
	.lockdown = 100,
	.speed_mbps = 480,
	.secs = 2,
};

static void test_cable_boundaries(void **state)
{
	struct diag_cable_facts f;
	(void)state;

	f = clean;
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_GOOD);
	f.errors = 1; /* one error is enough */
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_FLAKY);
	f = clean;
	f.reenums = 1; /* a re-enumeration without any transfer error */
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_FLAKY);
	/* every error the device breaking the protocol: its fault, not the cable's */
	f = clean;
	f.errors = f.protocol_errors = 3;
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_PROTOCOL_ERROR);
	f.errors = 4; /* one transfer error among them: the link may have caused the rest */
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_FLAKY);
	f.errors = 3;
	f.reenums = 1;
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_FLAKY);
	/* control answered, no usbmux round trip ever: halted or NAKing bulk endpoints */
	f = clean;
	f.mux = f.lockdown = 0;
	f.errors = 10;
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_USB_ERROR);
	f.ctrl = 0; /* nothing got through at all: the link */
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_FLAKY);
	f.ctrl = 100;
	f.gone = true; /* ... unless the device left */
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_DISCONNECTED);
	/* round trips, then bulk OUT stopped moving for good (NAKs): the device's
	 * endpoints, not a cable that loses transfers now and then */
	f = clean;
	f.errors = 5;
	f.out_untaken_s = 1.5;
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_USB_ERROR);
	f.errors = 0; /* a capture shows no failed transfer: the OUT just sat there */
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_USB_ERROR);
	f.errors = 5;
	f.out_untaken_s = 0.9; /* under DIAG_OUT_UNTAKEN_NS: a slow moment */
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_FLAKY);
	f.out_untaken_s = 1.5;
	f.reenums = 1; /* it also left the bus and came back: the link */
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_FLAKY);
	f = clean;
	f.speed_mbps = 12; /* full speed, clean */
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_DEGRADED);
	f.speed_mbps = 1.5; /* low speed */
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_DEGRADED);
	f.speed_mbps = 12;
	f.errors = 1; /* errors at full speed: FLAKY wins */
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_FLAKY);
	f.errors = 0;
	f.reenums = 1;
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_FLAKY);
	f = clean;
	f.speed_mbps = 479.9;
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_DEGRADED);
	f.speed_mbps = 5000; /* super speed */
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_GOOD);
	f.speed_mbps = 0; /* speed not recorded (a capture without it): not DEGRADED */
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_GOOD);
	f = clean;
	f.gone = true; /* left and did not come back, whatever else */
	f.errors = 5;
	f.speed_mbps = 12;
	assert_int_equal(diag_cable_verdict(&f), DIAG_V_DISCONNECTED);
}

static void test_cable_rule_stage(void **state)
{
	struct fixture *f = *state;
	struct diag_cable_facts c = clean;
	struct diag_stage *s;

	s = diag_stage_begin(&f->r, DIAG_STAGE_ROUND_TRIPS);
	diag_rule_cable(&f->r, s, &c);
	assert_int_equal(s->status, DIAG_ST_OK);
	assert_int_equal(f->r.verdict, DIAG_V_GOOD);
	assert_string_equal(
		s->detail,
		"100 rounds: 100 control, 100 usbmux, 100 lockdown round trips; 0 errors, 0 re-enumerations");

	c.speed_mbps = 12; /* DEGRADED: the round trips themselves were fine */
	s = diag_stage_begin(&f->r, DIAG_STAGE_ROUND_TRIPS);
	diag_rule_cable(&f->r, s, &c);
	assert_int_equal(s->status, DIAG_ST_OK);
	assert_int_equal(f->r.verdict, DIAG_V_DEGRADED);
	assert_non_null(strstr(f->r.evidence, "full speed (12 Mb/s)"));

	c.errors = 1;
	c.first_error = "control transfer: stall";
	s = diag_stage_begin(&f->r, DIAG_STAGE_ROUND_TRIPS);
	diag_rule_cable(&f->r, s, &c);
	assert_int_equal(s->status, DIAG_ST_FAIL);
	assert_int_equal(f->r.verdict, DIAG_V_FLAKY);
	assert_non_null(strstr(f->r.evidence, "1 transfer/protocol errors and 0 re-enumerations"));
	assert_non_null(strstr(f->r.evidence, "first: control transfer: stall"));

	c.gone = true;
	s = diag_stage_begin(&f->r, DIAG_STAGE_ROUND_TRIPS);
	diag_rule_cable(&f->r, s, &c);
	assert_int_equal(s->status, DIAG_ST_FAIL);
	assert_int_equal(f->r.verdict, DIAG_V_DISCONNECTED);
	assert_int_equal(diag_verdict_exit(f->r.verdict), 1);

	/* OUT stopped moving after some round trips: the evidence says so */
	c = clean;
	c.mux = 1;
	c.lockdown = 0;
	c.errors = 5;
	c.out_untaken_s = 2.34;
	c.first_error = "lockdown QueryType: timed out";
	s = diag_stage_begin(&f->r, DIAG_STAGE_ROUND_TRIPS);
	diag_rule_cable(&f->r, s, &c);
	assert_int_equal(s->status, DIAG_ST_FAIL);
	assert_int_equal(f->r.verdict, DIAG_V_USB_ERROR);
	assert_non_null(strstr(f->r.evidence,
			       "after 1 usbmux and 0 lockdown round trips the device "
			       "took none of the host's bulk OUT transfers for 2.3 s"));
	assert_non_null(strstr(f->r.evidence, "first: lockdown QueryType: timed out"));
	assert_non_null(strstr(diag_remedy(&f->r), "restart the iPhone"));
}

/* --- latency ------------------------------------------------------------- */

static void test_latency_exact(void **state)
{
	uint64_t v[100], copy[100];
	struct diag_latency l;
	(void)state;

	/* 1..100 us, scrambled: nearest rank gives the 50th and 99th values */
	for (size_t i = 0; i < 100; i++)
		v[i] = ((i * 37) % 100 + 1) * 1000;
	memcpy(copy, v, sizeof(v));
	assert_int_equal(diag_latency(v, 100, &l), 0);
	assert_int_equal(l.count, 100);
	assert_int_equal(l.p50_ns, 50000);
	assert_int_equal(l.p99_ns, 99000);
	assert_int_equal(l.max_ns, 100000);
	assert_memory_equal(v, copy, sizeof(v)); /* borrowed, not reordered */

	/* three samples: p50 is the 2nd, p99 the 3rd */
	uint64_t three[] = {30, 10, 20};
	assert_int_equal(diag_latency(three, 3, &l), 0);
	assert_int_equal(l.p50_ns, 20);
	assert_int_equal(l.p99_ns, 30);
	assert_int_equal(l.max_ns, 30);

	/* one sample is every percentile */
	uint64_t one[] = {7};
	assert_int_equal(diag_latency(one, 1, &l), 0);
	assert_int_equal(l.p50_ns, 7);
	assert_int_equal(l.p99_ns, 7);
	assert_int_equal(l.max_ns, 7);

	/* 200 samples: a single outlier at the top is max but not p99 */
	uint64_t many[200];
	for (size_t i = 0; i < 200; i++)
		many[i] = 1000;
	many[123] = 900000;
	assert_int_equal(diag_latency(many, 200, &l), 0);
	assert_int_equal(l.p50_ns, 1000);
	assert_int_equal(l.p99_ns, 1000);
	assert_int_equal(l.max_ns, 900000);

	assert_int_equal(diag_latency(NULL, 0, &l), 0);
	assert_int_equal(l.count, 0);
	assert_int_equal(l.max_ns, 0);
}

static void test_latency_json(void **state)
{
	uint64_t v[] = {4000, 1000, 3000, 2000};
	json_object *o, *x;
	(void)state;

	o = diag_latency_json(v, 4);
	assert_int_equal(json_object_get_int(json_object_object_get(o, "count")), 4);
	assert_true(json_object_object_get_ex(o, "p50_us", &x));
	assert_true(json_object_get_double(x) == 2.0);
	assert_true(json_object_object_get_ex(o, "p99_us", &x));
	assert_true(json_object_get_double(x) == 4.0);
	assert_true(json_object_object_get_ex(o, "max_us", &x));
	assert_true(json_object_get_double(x) == 4.0);
	json_object_put(o);

	o = diag_latency_json(NULL, 0);
	assert_int_equal(json_object_get_int(json_object_object_get(o, "count")), 0);
	assert_false(json_object_object_get_ex(o, "p50_us", NULL));
	json_object_put(o);
}

/* --- other rules --------------------------------------------------------- */

static void test_mode_rule(void **state)
{
	struct fixture *f = *state;
	struct diag_stage *s;

	s = diag_stage_begin(&f->r, DIAG_STAGE_DESCRIPTORS);
	assert_false(diag_rule_mode(&f->r, s, 0x05ac, 0x12a8)); /* normal iPhone */
	assert_int_equal(s->status, DIAG_ST_RUNNING);
	assert_int_equal(f->r.verdict, DIAG_V_NONE);
	assert_true(diag_rule_mode(&f->r, s, 0x05ac, 0x1227));
	assert_int_equal(s->status, DIAG_ST_FAIL);
	assert_int_equal(f->r.verdict, DIAG_V_DFU_MODE);
	s = diag_stage_begin(&f->r, DIAG_STAGE_DESCRIPTORS);
	assert_true(diag_rule_mode(&f->r, s, 0x05ac, 0x1222)); /* WTF is DFU's first stage */
	assert_int_equal(f->r.verdict, DIAG_V_DFU_MODE);
	s = diag_stage_begin(&f->r, DIAG_STAGE_DESCRIPTORS);
	assert_true(diag_rule_mode(&f->r, s, 0x05ac, 0x1281));
	assert_int_equal(f->r.verdict, DIAG_V_RECOVERY_MODE);
	s = diag_stage_begin(&f->r, DIAG_STAGE_DESCRIPTORS);
	assert_false(diag_rule_mode(&f->r, s, 0x1234, 0x1227)); /* not Apple */
}

static void test_pair_rule(void **state)
{
	static const struct {
		int err;
		enum diag_verdict v;
	} rows[] = {
		{LP_ELKD_PAIRING_DIALOG_PENDING, DIAG_V_TRUST_PENDING},
		{LP_ELKD_PASSWORD_PROTECTED, DIAG_V_LOCKED},
		{LP_ELKD_USER_DENIED_PAIRING, DIAG_V_DENIED},
		{LP_ENODEV, DIAG_V_DISCONNECTED},
		{LP_ELKD_PAIRING_PROHIBITED, DIAG_V_PAIRING_BLOCKED},
		{LP_ELKD_MC_CHALLENGE_REQUIRED, DIAG_V_SUPERVISED},
		{LP_EUSB, DIAG_V_USB_ERROR},
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct diag_pair_end p = {
			.err = rows[i].err, .tries = 3, .waited_s = 30, .dialog_seen = true};
		struct diag_stage *s = diag_stage_begin(&f->r, DIAG_STAGE_PAIR);
		diag_rule_pair_failed(&f->r, s, &p);
		assert_int_equal(s->status, DIAG_ST_FAIL);
		assert_int_equal(f->r.verdict, rows[i].v);
		assert_non_null(strstr(f->r.evidence, "stage Pair"));
	}
}

static void test_tls_and_query_type(void **state)
{
	struct fixture *f = *state;
	struct diag_stage *s;

	s = diag_stage_begin(&f->r, DIAG_STAGE_TLS);
	diag_rule_tls_failed(&f->r, s, LP_ETLS, "handshake failure alert", true);
	assert_int_equal(f->r.verdict, DIAG_V_TLS_FAILED);
	s = diag_stage_begin(&f->r, DIAG_STAGE_TLS);
	diag_rule_tls_failed(&f->r, s, LP_EPROTO, NULL, true); /* a bad record is TLS's */
	assert_int_equal(f->r.verdict, DIAG_V_TLS_FAILED);
	s = diag_stage_begin(&f->r, DIAG_STAGE_TLS);
	diag_rule_tls_failed(&f->r, s, LP_EUSB, "USB transfer error", false); /* the link's */
	assert_int_equal(f->r.verdict, DIAG_V_USB_ERROR);
	s = diag_stage_begin(&f->r, DIAG_STAGE_TLS);
	diag_rule_tls_failed(&f->r, s, LP_ENODEV, NULL, true);
	assert_int_equal(f->r.verdict, DIAG_V_DISCONNECTED);
	/* the hello exchange failed: this host's TLS policy, never the record */
	s = diag_stage_begin(&f->r, DIAG_STAGE_TLS);
	diag_rule_tls_failed(&f->r, s, LP_ETLS, "sslv3 alert handshake failure", false);
	assert_int_equal(f->r.verdict, DIAG_V_TLS_HOST_POLICY);
	assert_non_null(strstr(s->detail, "no protocol or cipher in common"));
	assert_null(strstr(diag_remedy(&f->r), "Re-pair"));
	/* the device closing or resetting the hello before its certificate:
	 * a stale record (trust reset on the device), never the host's policy */
	s = diag_stage_begin(&f->r, DIAG_STAGE_TLS);
	diag_rule_tls_failed(&f->r, s, LP_ECLOSED, "peer sent close_notify", false);
	assert_int_equal(f->r.verdict, DIAG_V_TLS_FAILED);
	assert_non_null(strstr(s->detail, "the device closed the connection during the TLS hello"));
	assert_non_null(strstr(diag_remedy(&f->r), "Re-pair"));
	s = diag_stage_begin(&f->r, DIAG_STAGE_TLS);
	diag_rule_tls_failed(&f->r, s, LP_ECONNRESET, NULL, false);
	assert_int_equal(f->r.verdict, DIAG_V_TLS_FAILED);
	/* lockdownd not listening / not answering */
	s = diag_stage_begin(&f->r, DIAG_STAGE_LOCKDOWN_CONNECT);
	diag_rule_lockdown_down(&f->r, s, true, 0);
	assert_int_equal(f->r.verdict, DIAG_V_LOCKDOWN_DOWN);
	assert_non_null(strstr(diag_remedy(&f->r), "restart the device"));
	s = diag_stage_begin(&f->r, DIAG_STAGE_QUERY_TYPE);
	diag_rule_lockdown_down(&f->r, s, false, 10);
	assert_non_null(strstr(f->r.evidence, "never answered QueryType"));

	s = diag_stage_begin(&f->r, DIAG_STAGE_QUERY_TYPE);
	assert_true(diag_rule_query_type(&f->r, s, "com.apple.mobile.lockdown"));
	assert_int_equal(s->status, DIAG_ST_RUNNING);
	assert_false(diag_rule_query_type(&f->r, s, "com.apple.mobile.restored"));
	assert_int_equal(f->r.verdict, DIAG_V_RECOVERY_MODE);
	s = diag_stage_begin(&f->r, DIAG_STAGE_QUERY_TYPE);
	assert_false(diag_rule_query_type(&f->r, s, "something else"));
	assert_int_equal(f->r.verdict, DIAG_V_PROTOCOL_ERROR);
}

/* --throughput above 480 Mb/s: the phone's usbmux moves about the USB 2.0
 * figure whatever the link speed (an iPad Pro at 10 Gb/s ~35 MB/s), so a real
 * 30 MB/s is GOOD; a crawl is still DEGRADED. */
static void test_throughput_superspeed(void **state)
{
	struct fixture *f = *state;
	struct diag_throughput_facts t = {.bytes = 40 << 20,
					  .write_mbytes = 22,
					  .read_mbytes = 32,
					  .speed_mbps = 10000,
					  .secs = 3};
	struct diag_stage *s;

	assert_true(diag_practical_mbytes(5000) == 40.0);
	assert_true(diag_practical_mbytes(10000) == 40.0);
	assert_true(diag_practical_mbytes(20000) == 40.0);
	assert_true(diag_practical_mbytes(480) == 40.0);
	diag_set_verdict(&f->r, DIAG_V_GOOD, "round trips fine"); /* as the cable rule leaves it */
	s = diag_stage_begin(&f->r, DIAG_STAGE_THROUGHPUT);
	diag_rule_throughput(&f->r, s, &t);
	assert_int_equal(s->status, DIAG_ST_OK);
	assert_int_equal(f->r.verdict, DIAG_V_GOOD);
	assert_non_null(strstr(s->detail, "USB 2.0 figure whatever the link speed"));
	t.write_mbytes = 3;
	s = diag_stage_begin(&f->r, DIAG_STAGE_THROUGHPUT);
	diag_rule_throughput(&f->r, s, &t);
	assert_int_equal(s->status, DIAG_ST_FAIL);
	assert_int_equal(f->r.verdict, DIAG_V_DEGRADED);
	assert_non_null(strstr(f->r.evidence, "under 25% of the ~40 MB/s"));
}

/* --- vocabulary and report ----------------------------------------------- */

static void test_stage_names(void **state)
{
	(void)state;
	for (int i = 0; i < DIAG_STAGE_COUNT; i++) {
		const char *n = diag_stage_name((enum diag_stage_id)i);
		assert_string_not_equal(n, "?");
		for (const char *p = n; *p; p++) /* names carry no data */
			assert_false(isdigit((unsigned char)*p));
		for (int k = 0; k < i; k++)
			assert_string_not_equal(n, diag_stage_name((enum diag_stage_id)k));
	}
	assert_string_equal(diag_stage_name(DIAG_STAGE_COUNT), "?");
	assert_string_equal(diag_stage_name(DIAG_STAGE_USBMUX), "usbmux");
}

static void test_verdict_table(void **state)
{
	(void)state;
	for (int v = DIAG_V_NONE; v <= DIAG_V_DEVICE_BUSY; v++) {
		const char *n = diag_verdict_name((enum diag_verdict)v);
		int code = diag_verdict_exit((enum diag_verdict)v);
		assert_true(strlen(n) > 0);
		if (v == DIAG_V_GOOD || v == DIAG_V_TRUSTED || v == DIAG_V_FOUND) {
			assert_int_equal(code, 0);
			assert_string_equal(diag_verdict_remedy((enum diag_verdict)v), "");
		} else {
			assert_int_equal(code, v == DIAG_V_NONE ? 3 : 1);
			assert_true(strlen(diag_verdict_remedy((enum diag_verdict)v)) > 20);
		}
	}
}

static void test_report_json(void **state)
{
	struct fixture *f = *state;
	struct diag_stage *s;
	json_object *o, *st;

	s = diag_stage_begin(&f->r, DIAG_STAGE_FIND_DEVICE);
	f->clk.vnow += 5000;
	diag_end(&f->r, s, DIAG_ST_OK, "found \x1b[31mred\x1b[0m");
	diag_stage_skip(&f->r, DIAG_STAGE_PAIR, "a record exists");
	diag_set_verdict(&f->r, DIAG_V_STALE_TRUST, "stage StartSession: InvalidHostID");
	o = diag_to_json(&f->r);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "verdict")),
			    "STALE_TRUST");
	assert_int_equal(json_object_get_int(json_object_object_get(o, "exit_code")), 1);
	st = json_object_object_get(o, "stages");
	assert_int_equal(json_object_array_length(st), 2);
	assert_string_equal(json_object_get_string(json_object_object_get(
				    json_object_array_get_idx(st, 0), "status")),
			    "ok");
	assert_int_equal(json_object_get_int64(json_object_object_get(
				 json_object_array_get_idx(st, 0), "duration_ns")),
			 5000);
	assert_null(strchr(json_object_get_string(json_object_object_get(
				   json_object_array_get_idx(st, 0), "detail")),
			   0x1b));
	assert_string_equal(json_object_get_string(json_object_object_get(
				    json_object_array_get_idx(st, 1), "status")),
			    "skipped");
	assert_string_equal(json_object_get_string(json_object_object_get(
				    json_object_array_get_idx(st, 1), "name")),
			    "Pair");
	json_object_put(o);
}

/* Phrases of a cable, port or phone remedy: never in a host verdict's. */
static const char *const not_host[] = {
	"cable",
	"another port",
	"USB port",
	"charge-only",
	"restart the device",
	"Restart the device",
	"udev",
	"tap Trust",
	"Reset Location",
	"unlock",
	NULL,
};

static void test_host_verdicts(void **state)
{
	static const enum diag_verdict host[] = {
		DIAG_V_PAIR_RECORD_ACCESS, DIAG_V_PAIR_RECORD_CORRUPT, DIAG_V_NO_USB_HOST,
		DIAG_V_UDID_NOT_FOUND,	   DIAG_V_USBMUXD_UNREACHABLE, DIAG_V_REPLAY_DIVERGED,
		DIAG_V_CAPTURE_TRUNCATED,
	};
	(void)state;
	for (size_t i = 0; i < sizeof(host) / sizeof(host[0]); i++) {
		const char *rem = diag_verdict_remedy(host[i]);
		assert_true(diag_verdict_is_host(host[i]));
		assert_int_equal(diag_verdict_exit(host[i]), 1);
		assert_string_not_equal(diag_verdict_name(host[i]), "NONE");
		assert_true(strlen(rem) > 40);
		for (size_t k = 0; not_host[k]; k++)
			if (strstr(rem, not_host[k]))
				fail_msg("%s's remedy says \"%s\"", diag_verdict_name(host[i]),
					 not_host[k]);
	}
	assert_false(diag_verdict_is_host(DIAG_V_NO_DEVICE));
	assert_false(diag_verdict_is_host(DIAG_V_STALE_TRUST));
	assert_false(diag_verdict_is_host(DIAG_V_ACCESS_DENIED));
	assert_string_equal(diag_verdict_name(DIAG_V_USBMUXD_UNREACHABLE), "USBMUXD_UNREACHABLE");
	/* the daemon's remedy is the checklist's step: restart it / the service */
	assert_non_null(strstr(diag_verdict_remedy(DIAG_V_USBMUXD_UNREACHABLE),
			       "Apple Mobile Device Service"));
}

static void test_pair_store_rule(void **state)
{
	struct fixture *f = *state;
	struct diag_stage *s;
	static const struct {
		int err;
		enum diag_verdict v;
	} map[] = {
		{LP_EACCES, DIAG_V_PAIR_RECORD_ACCESS},
		{LP_EIO, DIAG_V_PAIR_RECORD_ACCESS},
		{LP_ENOENT, DIAG_V_PAIR_RECORD_ACCESS},
		{LP_EINVAL, DIAG_V_PAIR_RECORD_ACCESS},
		{LP_EBUSY, DIAG_V_PAIR_RECORD_ACCESS},
		{LP_EPLIST, DIAG_V_PAIR_RECORD_CORRUPT},
		{LP_EBADMSG, DIAG_V_PAIR_RECORD_CORRUPT},
		{LP_ETOOBIG, DIAG_V_PAIR_RECORD_CORRUPT},
		{LP_ENOMEM, DIAG_V_NONE},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		assert_int_equal(diag_pair_store_verdict(map[i].err), map[i].v);
	s = diag_stage_begin(&f->r, DIAG_STAGE_PAIR_RECORD);
	diag_rule_pair_store(&f->r, s, LP_EACCES,
			     "cannot open /var/lib/lockdown/x.plist: Permission denied (EACCES)");
	assert_int_equal(s->status, DIAG_ST_FAIL);
	assert_int_equal(f->r.verdict, DIAG_V_PAIR_RECORD_ACCESS);
	assert_non_null(strstr(f->r.evidence, "stage pair record: "));
	assert_non_null(
		strstr(f->r.evidence, "/var/lib/lockdown/x.plist: Permission denied (EACCES)"));
	s = diag_stage_begin(&f->r, DIAG_STAGE_PAIR);
	diag_rule_pair_store(&f->r, s, LP_EPLIST,
			     "/d/SystemConfiguration.plist is not a property list");
	assert_int_equal(f->r.verdict, DIAG_V_PAIR_RECORD_CORRUPT);
	assert_non_null(strstr(f->r.evidence, "stage Pair: a pair-record file is damaged: /d/Sys"));
}

static void test_nothing_found(void **state)
{
	struct fixture *f = *state;
	struct diag_stage *s = diag_stage_begin(&f->r, DIAG_STAGE_FIND_DEVICE);

	struct usbk_findings k = {.records = 9,
				  .errors = 2,
				  .last_error = "usb 1-2: device "
						"descriptor read/64, error -71",
				  .port = "1-2"};

	/* no host controller wins over anything the kernel log says */
	diag_rule_nothing_found(&f->r, s, 0, "no Apple device (VID 05ac) on USB after 1.0 s", &k,
				true, "/dev/kmsg");
	assert_int_equal(f->r.verdict, DIAG_V_NO_USB_HOST);
	assert_int_equal(s->status, DIAG_ST_FAIL);
	assert_non_null(strstr(s->detail, "no host controller"));
	/* a host controller exists: the phone or cable side (NO_DEVICE) */
	s = diag_stage_begin(&f->r, DIAG_STAGE_FIND_DEVICE);
	diag_rule_nothing_found(&f->r, s, 2, "no Apple device", NULL, false, NULL);
	assert_int_equal(f->r.verdict, DIAG_V_NO_DEVICE);
	assert_non_null(strstr(f->r.evidence, "2 USB host controller(s) present"));
	/* the kernel failed to enumerate something: a bad signal, not charge-only */
	s = diag_stage_begin(&f->r, DIAG_STAGE_FIND_DEVICE);
	diag_rule_nothing_found(&f->r, s, 2, "no Apple device", &k, true, "/dev/kmsg");
	assert_int_equal(f->r.verdict, DIAG_V_BAD_SIGNAL);
	assert_non_null(strstr(f->r.evidence, "on port 1-2: usb 1-2: device descriptor read/64"));
	/* a readable log with no attempt: no data connection at all */
	k.errors = 0;
	s = diag_stage_begin(&f->r, DIAG_STAGE_FIND_DEVICE);
	diag_rule_nothing_found(&f->r, s, 2, "no Apple device", &k, true, "/dev/kmsg");
	assert_int_equal(f->r.verdict, DIAG_V_NO_DEVICE);
	assert_non_null(strstr(s->detail, "no data connection at all"));
	/* an unreadable log says so */
	s = diag_stage_begin(&f->r, DIAG_STAGE_FIND_DEVICE);
	diag_rule_nothing_found(&f->r, s, 2, "no Apple device", &k, false, "/dev/kmsg");
	assert_int_equal(f->r.verdict, DIAG_V_NO_DEVICE);
	assert_non_null(strstr(s->detail, "could not be read"));
	/* the backend cannot tell: NO_DEVICE, as before */
	s = diag_stage_begin(&f->r, DIAG_STAGE_FIND_DEVICE);
	diag_rule_nothing_found(&f->r, s, -1, "no Apple device", NULL, false, NULL);
	assert_int_equal(f->r.verdict, DIAG_V_NO_DEVICE);
	assert_string_equal(f->r.evidence, "no Apple device");
}

static void test_usb_unavailable(void **state)
{
	struct fixture *f = *state;
	struct diag_stage *s = diag_stage_begin(&f->r, DIAG_STAGE_FIND_DEVICE);

	diag_rule_usb_unavailable(&f->r, s, "libusb_init failed: Other error");
	assert_int_equal(f->r.verdict, DIAG_V_NO_USB_HOST);
	assert_true(diag_verdict_is_host(f->r.verdict));
	assert_int_equal(s->status, DIAG_ST_FAIL);
	assert_non_null(strstr(f->r.evidence, "stage find device: the USB stack did not start "
					      "(libusb_init failed: Other error)"));
}

static void test_udid_and_daemon(void **state)
{
	struct fixture *f = *state;
	struct diag_stage *s = diag_stage_begin(&f->r, DIAG_STAGE_FIND_DEVICE);

	diag_rule_udid_not_found(&f->r, s, "abc", 2, "111 (bus 1 address 2), 222 (bus 1 address 3)",
				 "on USB");
	assert_int_equal(f->r.verdict, DIAG_V_UDID_NOT_FOUND);
	assert_non_null(
		strstr(f->r.evidence, "--udid abc names none of the 2 device(s) on USB: 111"));
	assert_non_null(strstr(f->r.evidence, "222 (bus 1 address 3)"));

	s = diag_stage_begin(&f->r, DIAG_STAGE_FIND_DEVICE);
	diag_rule_usbmuxd_unreachable(
		&f->r, s, LP_ENOENT,
		"usbmuxd is not running at /run/x (Connection refused, ECONNREFUSED)");
	assert_int_equal(f->r.verdict, DIAG_V_USBMUXD_UNREACHABLE);
	assert_non_null(strstr(f->r.evidence, "not running or not listening"));
	assert_non_null(strstr(f->r.evidence, "ECONNREFUSED"));
	s = diag_stage_begin(&f->r, DIAG_STAGE_ENUMERATE);
	diag_rule_usbmuxd_unreachable(&f->r, s, LP_EACCES, "permission denied on /run/x");
	assert_int_equal(f->r.verdict, DIAG_V_USBMUXD_UNREACHABLE);
	assert_non_null(strstr(f->r.evidence, "stage enumerate: no permission"));
}

static void test_replay_and_capture(void **state)
{
	struct fixture *f = *state;
	struct diag_stage *s = diag_stage_begin(&f->r, DIAG_STAGE_DEVICE_INFO);

	diag_rule_err(&f->r, s, LP_ECONNRESET, "connection reset");
	assert_int_equal(f->r.verdict, DIAG_V_PROTOCOL_ERROR);
	diag_rule_replay_diverged(&f->r, NULL);
	assert_int_equal(f->r.verdict, DIAG_V_PROTOCOL_ERROR);
	diag_rule_replay_diverged(&f->r, "host sent GetValue Key=X; recording has next: QueryType");
	assert_int_equal(f->r.verdict, DIAG_V_REPLAY_DIVERGED);
	assert_string_equal(f->r.evidence, "stage device info: replay diverged: host sent GetValue "
					   "Key=X; recording has next: QueryType");

	s = diag_stage_begin(&f->r, DIAG_STAGE_PAIR);
	diag_rule_capture_ends(&f->r, s, 118, "Pair request unanswered");
	assert_int_equal(f->r.verdict, DIAG_V_CAPTURE_TRUNCATED);
	assert_int_equal(s->status, DIAG_ST_FAIL);
	assert_string_equal(
		f->r.evidence,
		"the capture ends at packet 118, during Pair (Pair request unanswered)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_map),
		cmocka_unit_test_setup_teardown(test_rule_err_names_stage, setup, teardown),
		cmocka_unit_test(test_cable_boundaries),
		cmocka_unit_test_setup_teardown(test_cable_rule_stage, setup, teardown),
		cmocka_unit_test(test_latency_exact),
		cmocka_unit_test(test_latency_json),
		cmocka_unit_test_setup_teardown(test_mode_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pair_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lockdown_errors_each_stage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locked_after_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_and_query_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_throughput_superspeed, setup, teardown),
		cmocka_unit_test(test_stage_names),
		cmocka_unit_test(test_verdict_table),
		cmocka_unit_test_setup_teardown(test_report_json, setup, teardown),
		cmocka_unit_test(test_host_verdicts),
		cmocka_unit_test_setup_teardown(test_pair_store_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usb_unavailable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udid_and_daemon, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_and_capture, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
