/* simdev.c - the simulated iPhone at USB level: profiles, identity, its
 * descriptors, and a personality on the device core (src/device/devcore.c:
 * chapter 9, usbmux, the IN queue) - usbmuxd's vendor mode requests, timers
 * (Trust dialog, re-enumeration, unplug), lockdownd (sim_lockdownd.c) on the
 * usbmux connections.
 *
 * Reference: doc/protocol.md section 0 (descriptor table of a real iPhone,
 * which this follows), 1.3 (GET_MODE/SET_MODE), 1.10, 2.10 (one mux packet
 * per IN transfer, ZLP when the length is a multiple of wMaxPacketSize), 2.12;
 * libirecovery for the DFU / recovery product IDs and serial strings.
 *
 * The descriptors themselves are in sim_desc.c.
 *
 * What a device does that lives in struct simdev (survives re-enumeration):
 * key, identity, pairings, Trust dialog. What reset() clears: configuration,
 * alternate settings, the mux codec and lockdownd connections.
 */
#include "src/device/simdev.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/lp_cursor.h"
#include "usb/usb_desc.h"
#include "proto/mux.h"
#include "src/device/devcore.h"
#include "src/device/sim_desc.h"
#include "src/device/sim_hostile.h"
#include "src/device/sim_lockdownd.h"

#define SD_SERIAL_MAX 126 /* string descriptor: (255 - 2) / 2 characters */

struct sd_profile {
	const char *name, *summary;
	enum sim_mode kind;
	bool full_speed;
	uint64_t latency_ns;
	double error_rate;
	uint64_t disconnect_at_ns, reenum_gap_ns;
	bool charge_only;
	enum slkd_answer answer;
	bool locked, forget_hosts, refuse_host_certs;
	int pair_error, session_error;	 /* LP_ELKD_* answered instead of success */
	uint64_t unplug_after_dialog_ns; /* 0 = never */
	uint64_t removal_delay_ns;	 /* an unplug: transfers fail (-71) this long first */
	unsigned superspeed; /* a USB-C phone: 5 or 10 (Gb/s it can do; bcdUSB 3.2 + BOS) */
	enum tr_speed link;  /* the speed it runs at (0: high, or full with full_speed) */
	/* drops off the bus after every pairing made through the Trust dialog,
	 * this long after `reenum_from`, for reenum_back_ns */
	bool reenum_always;
	enum simdev_reenum_from reenum_from;
	uint64_t trust_delay_ns; /* 0: SD_TRUST_DELAY */
	uint64_t reenum_after_ns, reenum_back_ns;
};

#define MS LP_NS_PER_MS
#define US LP_NS_PER_US

/* Zero fields mean: normal mode, high speed, 100 us latency, no faults, the
 * user taps Trust SD_TRUST_DELAY after the dialog appears. */
#define SD_TRUST_DELAY (2000 * MS)
#define SD_LATENCY_DEFAULT (100 * US)

static const struct sd_profile profiles[] = {
	{.name = "healthy",
	 .summary = "high speed; the user taps Trust 2 s after the dialog appears"},
	{.name = "charge-only",
	 .summary = "charge-only cable: no data lines, the phone never enumerates",
	 .charge_only = true},
	{.name = "full-speed",
	 .summary = "as healthy but at full speed (12 Mb/s, 64-byte bulk packets)",
	 .full_speed = true,
	 .latency_ns = 1000 * US},
	{.name = "flaky",
	 .summary = "3% of bulk transfers fail; drops off the bus 0.7 s in, back 300 ms later",
	 .latency_ns = 200 * US,
	 .error_rate = 0.03,
	 .disconnect_at_ns = 700 * MS,
	 .reenum_gap_ns = 300 * MS},
	{.name = "camera-only",
	 .summary = "only configuration 1 (PTP): no usbmux, the host sees a camera",
	 .kind = SIM_CAMERA},
	{.name = "dfu",
	 .summary = "DFU mode (05ac:1227): one DFU configuration, iBoot-style serial, no usbmux",
	 .kind = SIM_DFU},
	{.name = "recovery",
	 .summary = "recovery mode (05ac:1281): one vendor configuration, no usbmux",
	 .kind = SIM_RECOVERY},
	{.name = "locked",
	 .summary = "passcode-locked: Pair answers PasswordProtected forever",
	 .locked = true},
	{.name = "deny",
	 .summary = "the user taps Don't Trust 2 s after the dialog: UserDeniedPairing",
	 .answer = SLKD_ANSWER_DENY},
	{.name = "never-answers",
	 .summary = "nobody answers the Trust dialog: PairingDialogResponsePending forever",
	 .answer = SLKD_ANSWER_NEVER},
	{.name = "forgot-host",
	 .summary = "knows only hosts paired in this run: stored records get InvalidHostID",
	 .forget_hosts = true},
	{.name = "unplug-during-pair",
	 .summary = "unplugged 1 s after the Trust dialog appears; transfers fail (-71) for 1.5 s "
		    "before the device is removed, as on a real kernel",
	 .answer = SLKD_ANSWER_NEVER,
	 .unplug_after_dialog_ns = 1000 * MS,
	 .removal_delay_ns = 1500 * MS},
	{.name = "slow-link",
	 .summary = "high speed, but every transfer takes 8 ms (the bus retrying a bad signal "
		    "unseen): data moves far below 480 Mb/s",
	 .latency_ns = 8000 * US},
	{.name = "tls-reject",
	 .summary = "pairs, then refuses this computer's certificate at session TLS: TLS_FAILED",
	 .refuse_host_certs = true},
	{.name = "usbc-on-usb2",
	 .summary = "a USB-C iPhone that can do 10 Gb/s (bcdUSB 3.2, BOS SuperSpeedPlus) linked "
		    "at 480 Mb/s: a USB 2 cable or port",
	 .superspeed = 10},
	{.name = "usbc-superspeed",
	 .summary = "a USB-C iPhone linked at SuperSpeedPlus (10 Gb/s), as it can",
	 .superspeed = 10,
	 .link = TR_SPEED_SUPER_PLUS},
	{.name = "supervised",
	 .summary = "supervised (MDM): Pair answers MCChallengeRequired instead of the dialog",
	 .pair_error = LP_ELKD_MC_CHALLENGE_REQUIRED},
	{.name = "locked-after-restart",
	 .summary = "restarted, never unlocked: Pair and a paired host's StartSession get "
		    "PasswordProtected",
	 .locked = true,
	 .session_error = LP_ELKD_PASSWORD_PROTECTED},
	{.name = "reenum-after-trust",
	 .summary = "the user taps Trust 2.5 s after the dialog appears; 300 ms later the phone "
		    "drops off the bus and re-enumerates 1 s later at a new address, as iPhones do",
	 .trust_delay_ns = 2500 * MS,
	 .reenum_always = true,
	 .reenum_from = SIMDEV_REENUM_FROM_TRUST,
	 .reenum_after_ns = 300 * MS,
	 .reenum_back_ns = 1000 * MS},
};

#define NPROFILES (sizeof(profiles) / sizeof(profiles[0]))

struct simdev {
	const struct sd_profile *prof;
	struct lp_clock *clock;
	const struct lp_log *log;
	uint64_t seed;
	enum tr_speed speed;
	char serial[SD_SERIAL_MAX + 1]; /* iSerialNumber text */
	struct slkd_device dev;
	struct devcore *dc; /* the USB device (owned) */
	struct slkd *lkd;   /* lockdownd and services over it (owned) */
	struct shost host;  /* misbehaving on request (sim_hostile.h) */
	/* plug state */
	bool unplugged;
	uint64_t unplug_after_ns, removal_delay_ns; /* opts over the profile's (0: the profile's) */
	enum simdev_reenum reenum;
	enum simdev_reenum_from reenum_from;
	uint64_t reenum_delay_ns, reenum_gap_ns;
	uint64_t absent_from, absent_until; /* self re-enumeration window */
	bool absent_torn;
	uint64_t reenum_trust_seen;   /* FROM_TRUST: the tap already scheduled */
	bool reenum_session_wait;     /* FROM_SESSION: waiting for StartSession... */
	uint32_t reenum_session_base; /* ... beyond this many */
	/* counters */
	uint32_t resets, self_reenums;
};

/* --------------------------------------------------------------------------
 * Timers and plug state
 */

static uint64_t unplug_time(const struct simdev *s)
{
	const struct sd_profile *p = s->prof;

	uint64_t after = s->unplug_after_ns ? s->unplug_after_ns : p->unplug_after_dialog_ns;

	if (!after || !s->dev.n.dialogs_shown)
		return UINT64_MAX;
	return s->dev.dialog_at + after;
}

static bool is_attached(const struct simdev *s, uint64_t now)
{
	if (s->prof->charge_only || s->unplugged || s->host.unplug || now >= unplug_time(s))
		return false;
	return !(now >= s->absent_from && now < s->absent_until);
}

/* Off the bus from `at` for the re-enumeration gap. */
static void reenum_schedule(struct simdev *s, uint64_t at)
{
	s->absent_from = at;
	s->absent_until = at + s->reenum_gap_ns;
	s->absent_torn = false;
}

/* Whether the pairing just accepted makes the device re-enumerate. */
static bool reenum_go(struct simdev *s)
{
	return s->reenum == SIMDEV_REENUM_ALWAYS ||
	       (s->reenum == SIMDEV_REENUM_AUTO &&
		slkd_observers(s->lkd, SLKD_NOTE_REQUEST_PAIR) > 0);
}

/* Consequences of what lockdownd just did (and of the clock): the Trust
 * dialog's answer, re-enumeration after pairing, the unplug. The core calls
 * it as the personality's tick, after every bulk OUT and on timers. */
static void post_events(struct simdev *s, uint64_t now)
{
	struct slkd_device *d = &s->dev;

	if (slkd_dialog_update(d, now))
		slkd_notify(s->lkd, SLKD_NOTE_REQUEST_PAIR);
	if (s->reenum_from == SIMDEV_REENUM_FROM_TRUST && d->trusted_at &&
	    d->trusted_at != s->reenum_trust_seen) {
		/* the tap, not the host's next Pair: the device may be gone
		 * before the host hears that Trust was tapped */
		s->reenum_trust_seen = d->trusted_at;
		if (reenum_go(s))
			reenum_schedule(s, d->trusted_at + s->reenum_delay_ns);
	}
	if (d->trusted_pair_done) {
		d->trusted_pair_done = false;
		if (s->reenum_from == SIMDEV_REENUM_FROM_PAIR && reenum_go(s)) {
			/* usbmuxd's preflight waits for the phone to drop off the
			 * bus after pairing ("device will reconnect by itself") */
			reenum_schedule(s, d->trusted_pair_at + s->reenum_delay_ns);
		} else if (s->reenum_from == SIMDEV_REENUM_FROM_SESSION && reenum_go(s)) {
			s->reenum_session_wait = true;
			s->reenum_session_base = d->n.sessions_started;
		}
	}
	if (s->reenum_session_wait && d->n.sessions_started > s->reenum_session_base) {
		s->reenum_session_wait = false;
		reenum_schedule(s, now + s->reenum_delay_ns);
	}
	if (!s->absent_torn && s->absent_until && now >= s->absent_from) {
		lp_logf(s->log, LP_LOG_INFO, "simdev: re-enumerating after pairing");
		devcore_detach(s->dc, now);
		s->absent_torn = true;
		s->self_reenums++;
	}
	if (shost_detach_due(&s->host)) {
		lp_logf(s->log, LP_LOG_INFO, "simdev: hostile: off the bus");
		s->host.detached = true;
		devcore_detach(s->dc, now);
	}
	if (now >= unplug_time(s) && devcore_config(s->dc)) {
		lp_logf(s->log, LP_LOG_INFO, "simdev: unplugged during pairing");
		devcore_detach(s->dc, now);
	}
}

/* --------------------------------------------------------------------------
 * The personality on the device core
 */

static bool p_attached(void *m, uint64_t now)
{
	return is_attached(m, now);
}

static void p_reset(void *m, bool bus, uint64_t now)
{
	struct simdev *s = m;

	(void)now;
	if (s->lkd)
		slkd_reset(s->lkd);
	if (bus)
		s->resets++;
}

static void p_configured(void *m, uint8_t config, uint64_t now)
{
	struct simdev *s = m;

	(void)config;
	(void)now;
	if (devcore_mux(s->dc))
		slkd_attach(s->lkd);
}

/* usbmuxd's mode requests (doc/protocol.md 1.3); only a phone in normal mode knows them */
static int p_control(void *m, const uint8_t setup[8], uint8_t *data, size_t len, size_t *actual,
		     uint64_t now)
{
	struct simdev *s = m;
	static const uint8_t mode[4] = {3, 3, 3, 0};

	(void)now;
	if (s->prof->kind != SIM_NORMAL && s->prof->kind != SIM_CAMERA)
		return LP_ESTALL;
	/* a USB 3 device's BOS (GET_DESCRIPTOR type 15): its SuperSpeed capabilities */
	if (s->prof->superspeed && setup[0] == 0x80 && setup[1] == USBD_REQ_GET_DESCRIPTOR &&
	    setup[3] == USBD_DT_BOS) {
		uint8_t bos[64];
		int n = usbd_encode_bos(s->prof->superspeed, bos, sizeof(bos));
		if (n < 0)
			return LP_ESTALL;
		*actual = (size_t)n < len ? (size_t)n : len;
		memcpy(data, bos, *actual);
		return 0;
	}
	if (setup[0] == 0xc0 && setup[1] == 0x45 && len >= 4) {
		memcpy(data, mode, 4);
		*actual = 4;
		return 0;
	}
	if (setup[0] == 0xc0 && setup[1] == 0x52 && len >= 1) {
		data[0] = 0;
		*actual = 1;
		return 0;
	}
	return LP_ESTALL;
}

static void p_accept(void *m, uint32_t conn, uint16_t port, uint64_t now)
{
	struct simdev *s = m;

	if (!shost_accept(&s->host, port))
		slkd_accept(s->lkd, conn, port, now);
}

static void p_control_seen(void *m, const uint8_t setup[8], uint64_t now)
{
	struct simdev *s = m;

	shost_control_seen(&s->host, setup);
}

static bool p_filter_out(void *m, const uint8_t *data, size_t len, uint64_t now)
{
	struct simdev *s = m;

	return shost_filter_out(&s->host, data, len);
}

static enum devmodel_ep p_bulk_state(void *m, uint8_t ep, uint64_t now)
{
	struct simdev *s = m;

	return shost_bulk_state(&s->host, ep);
}

static void p_in_edit(void *m, uint8_t *pkt, size_t len, uint64_t now)
{
	struct simdev *s = m;

	shost_in_edit(&s->host, pkt, len);
}

static void p_in_poll(void *m, uint64_t now)
{
	struct simdev *s = m;

	shost_in_poll(&s->host, SIMDEV_EP_MUX_IN);
}

static bool p_intercept(void *ud, struct lks_conn *c, const char *request)
{
	struct simdev *s = ud;

	return shost_intercept(&s->host, c, request);
}

static void p_data(void *m, uint32_t conn, const uint8_t *data, size_t len, uint64_t now)
{
	struct simdev *s = m;

	slkd_data(s->lkd, conn, data, len, now);
}

static void p_closed(void *m, uint32_t conn, uint64_t now)
{
	struct simdev *s = m;

	(void)now;
	slkd_closed(s->lkd, conn);
}

static uint64_t p_next_timer(void *m, uint64_t now)
{
	struct simdev *s = m;
	uint64_t t[4] = {slkd_dialog_deadline(&s->dev), unplug_time(s), UINT64_MAX, UINT64_MAX};
	uint64_t best = UINT64_MAX;

	if (s->absent_until && !s->absent_torn)
		t[2] = s->absent_from;
	if (s->absent_until)
		t[3] = s->absent_until;
	if (shost_detach_due(&s->host))
		return now + 1;
	for (size_t i = 0; i < 4; i++)
		if (t[i] > now && t[i] < best)
			best = t[i];
	return best;
}

static void p_tick(void *m, uint64_t now)
{
	post_events(m, now);
}

static const struct devcore_personality simdev_personality = {
	.attached = p_attached,
	.reset = p_reset,
	.configured = p_configured,
	.control = p_control,
	.accept = p_accept,
	.data = p_data,
	.closed = p_closed,
	.next_timer = p_next_timer,
	.tick = p_tick,
	.control_seen = p_control_seen,
	.filter_out = p_filter_out,
	.bulk_state = p_bulk_state,
	.in_edit = p_in_edit,
	.in_poll = p_in_poll,
};

void *simdev_model(struct simdev *s)
{
	return devcore_model(s->dc);
}

/* --------------------------------------------------------------------------
 * Creation, identity, accessors
 */

static const struct sd_profile *find_profile(const char *name)
{
	if (!name)
		return &profiles[0];
	for (size_t i = 0; i < NPROFILES; i++)
		if (strcmp(profiles[i].name, name) == 0)
			return &profiles[i];
	return NULL;
}

static void hex_rand(struct lp_rand *r, char *out, size_t n, bool upper)
{
	const char *hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";

	for (size_t i = 0; i < n; i++)
		out[i] = hex[lp_rand_next(r) & 0xf];
	out[n] = '\0';
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x21 || *s > 0x7e)
			return false;
	return true;
}

static int make_identity(struct simdev *s, const struct simdev_opts *o, struct slkd_identity *id,
			 struct lp_errinfo *e)
{
	struct lp_rand r;
	char ecid[17];
	uint8_t mac[6];

	memset(id, 0, sizeof(*id));
	lp_rand_seed(&r, s->seed);
	hex_rand(&r, ecid, 16, true);
	id->ecid = strtoull(ecid, NULL, 16) & 0x000fffffffffffffull;
	snprintf(ecid, sizeof(ecid), "%016llX", (unsigned long long)id->ecid);
	if (o && o->udid) {
		size_t n = strlen(o->udid);

		if (n == 0 || n >= SLKD_ID_MAX || !printable(o->udid))
			return lp_err_set(e, LP_EINVAL, "simdev: bad UDID override");
		snprintf(id->udid, sizeof(id->udid), "%s", o->udid);
		/* a hyphenated new-style UDID goes on the bus without the '-' */
		if (n == 25 && o->udid[8] == '-')
			snprintf(s->serial, sizeof(s->serial), "%.8s%s", o->udid, o->udid + 9);
		else
			snprintf(s->serial, sizeof(s->serial), "%s", o->udid);
	} else if (o && o->udid24) {
		snprintf(id->udid, sizeof(id->udid), "00008015-%s", ecid);
		snprintf(s->serial, sizeof(s->serial), "00008015%s", ecid);
	} else {
		hex_rand(&r, id->udid, 40, false);
		snprintf(s->serial, sizeof(s->serial), "%s", id->udid);
	}
	for (size_t i = 0; i < sizeof(mac); i++)
		mac[i] = (uint8_t)lp_rand_next(&r);
	mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x00); /* unicast, global */
	snprintf(id->wifi, sizeof(id->wifi), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1],
		 mac[2], mac[3], mac[4], mac[5]);
	snprintf(id->bt, sizeof(id->bt), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
		 mac[3], mac[4], (uint8_t)(mac[5] + 1));
	{
		static const char a[] = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
		memcpy(id->serial, "F2L", 3);
		for (size_t i = 3; i < 12; i++)
			id->serial[i] = a[lp_rand_next(&r) % (sizeof(a) - 1)];
		id->serial[12] = '\0';
	}
	if (shost_device_name(&s->host))
		snprintf(id->name, sizeof(id->name), "%s", shost_device_name(&s->host));
	else if (o && o->device_name && *o->device_name && strlen(o->device_name) < SLKD_NAME_MAX)
		snprintf(id->name, sizeof(id->name), "%s", o->device_name);
	else
		snprintf(id->name, sizeof(id->name), "iPhone");
	/* DFU and iBoot put their identity in the serial string (libirecovery) */
	if (s->prof->kind == SIM_DFU)
		snprintf(s->serial, sizeof(s->serial),
			 "CPID:8010 CPRV:11 CPFM:03 SCEP:01 BDID:0C ECID:%s IBFL:3C "
			 "SRTG:[iBoot-2696.0.0.1.33]",
			 ecid);
	else if (s->prof->kind == SIM_RECOVERY)
		snprintf(s->serial, sizeof(s->serial),
			 "CPID:8010 CPRV:11 CPFM:03 SCEP:01 BDID:0C ECID:%s IBFL:3C SRNM:[%s]",
			 ecid, id->serial);
	return 0;
}

/* A lockdown error string given as an option, else the profile's code. */
static int lkd_error_opt(const char *name, int dflt, int *out, struct lp_errinfo *e)
{
	if (!name) {
		*out = dflt;
		return 0;
	}
	*out = lp_lockdown_error_code(name);
	if (!lp_lockdown_error_name(*out))
		return lp_err_set(e, LP_EINVAL, "'%s' is not a lockdown error string", name);
	return 0;
}

struct simdev *simdev_new(const char *profile, const struct simdev_opts *o, struct lp_clock *clock,
			  const struct lp_log *log, struct lp_errinfo *e)
{
	const struct sd_profile *p = find_profile(profile);
	struct simdev *s;
	struct slkd_identity id;
	struct slkd_policy pol;

	if (!p) {
		lp_err_set(e, LP_EINVAL, "unknown simulator profile '%s'", profile);
		return NULL;
	}
	if (!clock) {
		lp_err_set(e, LP_EINVAL, "simdev: no clock");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		lp_err_set(e, LP_ENOMEM, "out of memory");
		return NULL;
	}
	if (o && o->hostile && shost_parse(o->hostile, &s->host)) {
		lp_err_set(e, LP_EINVAL, "unknown hostile mode '%s' (%s)", o->hostile,
			   shost_names());
		free(s);
		return NULL;
	}
	s->prof = p;
	s->clock = clock;
	s->log = log;
	s->seed = o && o->seed ? o->seed : 1;
	s->speed = p->link ? p->link : p->full_speed ? TR_SPEED_FULL : TR_SPEED_HIGH;
	s->reenum = o ? o->reenum_after_pair : SIMDEV_REENUM_AUTO;
	if (s->reenum == SIMDEV_REENUM_AUTO && p->reenum_always)
		s->reenum = SIMDEV_REENUM_ALWAYS;
	s->reenum_from = p->reenum_from;
	s->reenum_delay_ns = p->reenum_after_ns ? p->reenum_after_ns : 300 * MS;
	if (o && o->set_reenum_delay) {
		s->reenum_from = o->reenum_from;
		s->reenum_delay_ns = o->reenum_delay_us * LP_NS_PER_US;
	}
	s->reenum_gap_ns = o && o->reenum_gap_ms ? o->reenum_gap_ms * LP_NS_PER_MS
			   : p->reenum_back_ns	 ? p->reenum_back_ns
						 : 500 * MS;
	if (make_identity(s, o, &id, e)) {
		free(s);
		return NULL;
	}
	s->dc = devcore_new(&simdev_personality, s, log);
	s->host.dc = s->dc;
	if (!s->dc || sim_descriptors(s->dc, p->kind, s->serial, p->superspeed ? 0x0320 : 0x0200)) {
		devcore_free(s->dc);
		free(s);
		lp_err_set(e, LP_ENOMEM, "out of memory");
		return NULL;
	}
	devcore_set_speed(s->dc, s->speed);
	if (o && o->in_split)
		devcore_set_in_split(s->dc, o->in_split);
	if (o && o->unplug_after_dialog_ms)
		s->unplug_after_ns = o->unplug_after_dialog_ms * LP_NS_PER_MS;
	if (o && o->removal_delay_ms)
		s->removal_delay_ns = o->removal_delay_ms * LP_NS_PER_MS;
	memset(&pol, 0, sizeof(pol));
	if (lkd_error_opt(o ? o->pair_error : NULL, p->pair_error, &pol.pair_error, e) ||
	    lkd_error_opt(o ? o->session_error : NULL, p->session_error, &pol.session_error, e) ||
	    lkd_error_opt(o ? o->service_error : NULL, 0, &pol.service_error, e)) {
		devcore_free(s->dc);
		free(s);
		return NULL;
	}
	if (o && o->prohibit)
		snprintf(pol.prohibit, sizeof(pol.prohibit), "%s", o->prohibit);
	pol.legacy_tls = o && o->tls_legacy;
	pol.tls_reset = o && o->tls_reset;
	if (o && o->lockdown && strcmp(o->lockdown, "up") != 0) {
		if (strcmp(o->lockdown, "refuse") == 0)
			pol.down = SLKD_DOWN_REFUSE;
		else if (strcmp(o->lockdown, "silent") == 0)
			pol.down = SLKD_DOWN_SILENT;
		else {
			devcore_free(s->dc);
			free(s);
			lp_err_set(e, LP_EINVAL, "simdev: lockdown=%s (up, refuse or silent)",
				   o->lockdown);
			return NULL;
		}
	}
	pol.answer = p->answer;
	pol.trust_delay_ns = o && o->set_trust_delay ? o->trust_delay_ms * LP_NS_PER_MS
			     : p->trust_delay_ns     ? p->trust_delay_ns
						     : SD_TRUST_DELAY;
	pol.locked = p->locked;
	pol.forget_hosts = p->forget_hosts;
	pol.refuse_host_certs = p->refuse_host_certs;
	if (slkd_device_init(&s->dev, clock, log, &pol, &id, s->seed, o ? o->state_path : NULL,
			     o && o->state_readonly, e)) {
		devcore_free(s->dc);
		free(s);
		return NULL;
	}
	s->lkd = slkd_new(&s->dev, s->dc, log);
	if (!s->lkd) {
		simdev_free(s);
		lp_err_set(e, LP_ENOMEM, "out of memory");
		return NULL;
	}
	slkd_set_framing(s->lkd, o && o->framing_joined ? LKS_FRAMING_JOINED : LKS_FRAMING_SPLIT);
	if (s->host.mode) {
		s->lkd->intercept = p_intercept;
		s->lkd->intercept_ud = s;
	}
	lp_logf(log, LP_LOG_DEBUG, "simdev: profile %s, UDID %s", p->name, id.udid);
	return s;
}

void simdev_free(struct simdev *s)
{
	if (!s)
		return;
	devcore_free(s->dc); /* first: its reset hook drops lockdownd's connections */
	slkd_free(s->lkd);
	slkd_device_release(&s->dev);
	free(s);
}

int simdev_link(const struct simdev *s, struct tr_sim_link *out)
{
	const struct sd_profile *p;

	if (!s || !out)
		return LP_EINVAL;
	p = s->prof;
	memset(out, 0, sizeof(*out));
	out->speed = s->speed;
	out->latency_ns = p->latency_ns ? p->latency_ns : SD_LATENCY_DEFAULT;
	out->link_off = false;
	out->error_rate = p->error_rate;
	out->disconnect_at_ns = p->disconnect_at_ns;
	out->reenum_gap_ns = p->reenum_gap_ns;
	out->removal_delay_ns = s->removal_delay_ns ? s->removal_delay_ns : p->removal_delay_ns;
	out->seed = s->seed;
	return 0;
}

const char *simdev_hostile_names(void)
{
	return shost_names();
}

size_t simdev_profile_count(void)
{
	return NPROFILES;
}

int simdev_profile_at(size_t i, const char **name, const char **summary)
{
	if (i >= NPROFILES)
		return LP_EINVAL;
	if (name)
		*name = profiles[i].name;
	if (summary)
		*summary = profiles[i].summary;
	return 0;
}

const char *simdev_udid(const struct simdev *s)
{
	return s->dev.id.udid;
}

void simdev_get_state(const struct simdev *s, uint64_t now, struct simdev_state *st)
{
	const struct slkd_device *d = &s->dev;
	enum slkd_dialog dlg = d->dialog;

	memset(st, 0, sizeof(*st));
	/* show the dialog as the user would see it at `now` */
	if (dlg == SLKD_DIALOG_SHOWN && now >= slkd_dialog_deadline(d))
		dlg = d->pol.answer == SLKD_ANSWER_DENY ? SLKD_DIALOG_DENIED : SLKD_DIALOG_TRUSTED;
	st->attached = is_attached(s, now);
	st->config = devcore_config(s->dc);
	st->mux_active = devcore_mux(s->dc) && mux_active(devcore_mux(s->dc));
	st->dialog = (enum simdev_dialog)dlg;
	st->dialogs_shown = d->n.dialogs_shown;
	st->pair_requests = d->n.pair_requests;
	st->pairs_ok = d->n.pairs_ok;
	st->sessions_started = d->n.sessions_started;
	st->tls_sessions = d->n.tls_sessions;
	st->tls_rejected = d->n.tls_rejected;
	st->notifications_posted = d->n.notifications_posted;
	st->lockdown_requests = d->n.requests;
	st->resets = s->resets;
	st->self_reenumerations = s->self_reenums;
	st->paired_hosts = d->npair;
}

const char *simdev_paired_host(const struct simdev *s, size_t i)
{
	return i < s->dev.npair ? s->dev.pair[i].host_id : NULL;
}

void simdev_set_unplugged(struct simdev *s, bool unplugged)
{
	s->unplugged = unplugged;
	if (unplugged)
		devcore_detach(s->dc, devcore_now(s->dc));
}

void simdev_set_speed(struct simdev *s, enum tr_speed speed)
{
	s->speed = speed == TR_SPEED_FULL ? TR_SPEED_FULL : TR_SPEED_HIGH;
	devcore_set_speed(s->dc, s->speed);
}

int simdev_descriptor(const struct simdev *s, enum tr_speed speed, uint8_t type, uint8_t index,
		      uint8_t *out, size_t cap, size_t *len)
{
	return devcore_descriptor(s->dc, speed, type, index, out, cap, len);
}
