/* device.c - turn --device into an open transport context.
 *
 *   libusb                        real devices (default)
 *   sim[:PROFILE][,k=v...]        the simulated iPhone in-process
 *   sim:P*N+Q*M...[,k=v...]       several simulated iPhones on one bus; k=v:
 *                                 clock=virtual|real  (virtual: no wall time
 *                                 passes; env LINKPROBE_SIM_CLOCK=virtual),
 *                                 seed=N, link=off (no link timing),
 *                                 hostile=MODE (a device misbehaving on
 *                                 request: src/device/sim_hostile.h),
 *                                 reenum=trust|pair|session[+MS|+USus]
 *                                 (drops off the bus that long after that
 *                                 point of a pairing made through the
 *                                 Trust dialog) or never,
 *                                 reenum-gap=MS (how long it stays away)
 *   replay:FILE                   device side played from a capture
 *                                 (src/device/replaydev.h; --udid picks the
 *                                 device; clock as for sim, from env)
 */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "src/cli/app.h"
#include "src/base/lp_num.h"
#include "src/device/replaydev.h"
#include "src/diag/rules.h"
#include "src/device/simdev.h"
#include "usb/tr_sim.h"
#include "usb/transport.h"

/* Fixed epoch for virtual-clock runs: 2026-01-01T00:00:00Z, so captures made
 * on a virtual clock are byte-for-byte reproducible. */
#define VIRTUAL_EPOCH_NS 1767225600000000000ull

/* Run a device model (the simulated iPhone or the replay device) on the sim
 * backend. `arg` is adopted by the app. */
static int start_sim_backend(struct lp_app *app, struct tr_sim_arg *arg, struct lp_errinfo *e)
{
	struct tr_env env = {.clock = &app->clock, .log = &app->log, .rand = &app->rand};
	int r;

	arg->bus = 1;
	app->sim_arg = arg;
	r = tr_ctx_new(&tr_sim_ops, &env, arg, &app->tr, e);
	if (r)
		return r;
	app->is_sim = true;
	return 0;
}

/* The simulated iPhone remembers its key and pairings like a real one, so a
 * second run reuses the pair record. State lives beside the pair records when
 * --pair-dir is given (tests stay isolated), else in the XDG state dir. */
const char *app_home(void)
{
	const char *h = getenv("HOME");
	const struct passwd *pw;

	if (h && h[0] == '/')
		return h;
	pw = getpwuid(getuid());
	return pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
}

static int sim_state_default(struct lp_app *app, char *out, size_t n)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = app_home();
	char dir[400];

	if (app->pair_dir) {
		if (mkdir(app->pair_dir, 0700) && errno != EEXIST)
			return -1;
		snprintf(out, n, "%s/.linkprobe-sim-device", app->pair_dir);
		return 0;
	}
	/* never a shared directory such as /tmp: the state holds the
	 * simulated device's private key and pairings */
	if (xdg && xdg[0] == '/')
		snprintf(dir, sizeof(dir), "%s/linkprobe", xdg);
	else if (home)
		snprintf(dir, sizeof(dir), "%s/.local/state/linkprobe", home);
	else
		return -1;
	for (char *p = dir + 1; *p; p++) { /* mkdir -p */
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -1;
	snprintf(out, n, "%s/sim-device", dir);
	return 0;
}

#define SIM_FAULTS                                                                       \
	"open-eacces, open-ebusy, claim-ebusy, driver-NAME (a kernel driver holds the "  \
	"interface), submit-N: the Nth transfer and every later one fail, no-usb-host: " \
	"no USB host controller is visible"

/* --device sim:PROFILE,fault=F: the transport core's fault plan, so the
 * host-side failures a real bus can produce (no permission, an interface
 * held by usbmuxd, transfers failing) are reachable without one. */
static int parse_fault(const char *f, struct tr_faults *out)
{
	char *end;

	if (strcmp(f, "open-eacces") == 0)
		out->fail_open_err = LP_EACCES;
	else if (strcmp(f, "open-ebusy") == 0)
		out->fail_open_err = LP_EBUSY;
	else if (strcmp(f, "claim-ebusy") == 0)
		out->fail_claim_err = LP_EBUSY;
	else if (strcmp(f, "no-usb-host") == 0)
		out->no_host = true;
	else if (strncmp(f, "driver-", 7) == 0 && f[7] &&
		 strlen(f + 7) < sizeof(out->claim_driver) &&
		 f[7 + strspn(f + 7, "abcdefghijklmnopqrstuvwxyz0123456789_")] == '\0') {
		out->fail_claim_err = LP_EBUSY; /* a kernel driver (e.g. ipheth) holds it */
		snprintf(out->claim_driver, sizeof(out->claim_driver), "%s", f + 7);
	} else if (strncmp(f, "submit-", 7) == 0) {
		unsigned long long n = strtoull(f + 7, &end, 10);
		if (end == f + 7 || *end || n == 0)
			return -1;
		out->fail_submit_nth = n;
		out->fail_submit_persist = true;
		out->fail_submit_err = LP_EUSB;
	} else {
		return -1;
	}
	return 0;
}

/* pair-error=E, session-error=E, service-error=E (a lockdown error string
 * the simulated lockdownd answers instead of success), prohibit=KEY+KEY
 * (GetValue keys it refuses) and lockdown=refuse|silent: true when `tok` is one of them (value stored,
 * borrowed from tok). */
static bool sim_lkd_opt(const char *tok, const char *const keys[5], const char *vals[5])
{
	for (size_t k = 0; k < 5; k++)
		if (strncmp(tok, keys[k], strlen(keys[k])) == 0) {
			vals[k] = tok + strlen(keys[k]);
			return true;
		}
	return false;
}

/* PROFILE*N terms joined by '+': how many devices of each profile. */
struct sim_term {
	char profile[64];
	size_t count;
};

static bool known_profile(const char *name)
{
	for (size_t i = 0; i < simdev_profile_count(); i++) {
		const char *pn, *sum;
		if (simdev_profile_at(i, &pn, &sum) == 0 && strcmp(pn, name) == 0)
			return true;
	}
	return false;
}

static int parse_terms(const char *spec, struct sim_term *terms, size_t max, size_t *nterms,
		       size_t *ndev, struct lp_errinfo *e)
{
	char buf[256], *save = NULL, *tok;
	size_t n = 0, total = 0;

	snprintf(buf, sizeof(buf), "%s", spec);
	for (tok = strtok_r(buf, "+", &save); tok; tok = strtok_r(NULL, "+", &save)) {
		char *star = strchr(tok, '*');
		uint64_t count = 1;

		if (star) {
			*star = '\0';
			if (lp_parse_uint(star + 1, 1, TR_SIM_MAX_PORTS, &count))
				return lp_err_set(e, LP_EINVAL,
						  "sim: '%s*%s': N in PROFILE*N is 1 to %d", tok,
						  star + 1, TR_SIM_MAX_PORTS);
		}
		if (!known_profile(tok))
			return lp_err_set(e, LP_EINVAL,
					  "unknown sim profile '%s' (see `linkprobe sim --list`)",
					  tok);
		if (n == max)
			return lp_err_set(e, LP_EINVAL, "sim: more than %zu PROFILE*N terms", max);
		total += count;
		if (total > TR_SIM_MAX_PORTS)
			return lp_err_set(e, LP_EINVAL,
					  "sim: %zu devices; one simulated bus carries at most %d",
					  total, TR_SIM_MAX_PORTS);
		snprintf(terms[n].profile, sizeof(terms[n].profile), "%s", tok);
		terms[n++].count = (size_t)count;
	}
	if (!n)
		return lp_err_set(e, LP_EINVAL, "sim: no profile in '%s'", spec);
	*nterms = n;
	*ndev = total;
	return 0;
}

/* churn=PERIOD[/GAP] (seconds): every device leaves the bus for GAP (default
 * PERIOD/4) every PERIOD, the devices' first departures spread over the
 * first period. */
/* reenum=FROM[+MS|+USus] | never: a device that re-enumerates after every
 * pairing made through the Trust dialog, MS milliseconds (or US
 * microseconds: the host's next request is that close) after FROM
 * (simdev_reenum_from). */
static int parse_reenum(const char *v, struct simdev_opts *o)
{
	static const struct {
		const char *name;
		enum simdev_reenum_from from;
	} from[] = {{"trust", SIMDEV_REENUM_FROM_TRUST},
		    {"pair", SIMDEV_REENUM_FROM_PAIR},
		    {"session", SIMDEV_REENUM_FROM_SESSION}};
	const char *plus = strchr(v, '+');
	size_t n = plus ? (size_t)(plus - v) : strlen(v);
	uint64_t us = 0;
	char num[16];

	if (strcmp(v, "never") == 0) {
		o->reenum_after_pair = SIMDEV_REENUM_NEVER;
		return 0;
	}
	if (plus) {
		size_t k = strlen(plus + 1);
		bool micro = k > 2 && strcmp(plus + 1 + k - 2, "us") == 0;

		if (micro)
			k -= 2;
		if (k == 0 || k >= sizeof(num))
			return LP_EINVAL;
		memcpy(num, plus + 1, k);
		num[k] = '\0';
		if (lp_parse_uint(num, 0, micro ? 600000000 : 600000, &us))
			return LP_EINVAL;
		if (!micro)
			us *= 1000;
	}
	for (size_t i = 0; i < sizeof(from) / sizeof(from[0]); i++) {
		if (strlen(from[i].name) == n && strncmp(v, from[i].name, n) == 0) {
			o->reenum_after_pair = SIMDEV_REENUM_ALWAYS;
			o->reenum_from = from[i].from;
			o->set_reenum_delay = true;
			o->reenum_delay_us = us;
			return 0;
		}
	}
	return LP_EINVAL;
}

static int parse_churn(const char *v, uint64_t *period, uint64_t *gap, struct lp_errinfo *e)
{
	char buf[64], *slash;
	double p, g;

	snprintf(buf, sizeof(buf), "%s", v);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (lp_parse_decimal(buf, 0.01, 86400, &p) ||
	    (slash && (lp_parse_decimal(slash + 1, 0.001, 86400, &g) || g >= p)))
		return lp_err_set(e, LP_EINVAL,
				  "sim option churn wants PERIOD[/GAP] in seconds (GAP < PERIOD), "
				  "got '%s'",
				  v);
	if (!slash)
		g = p / 4;
	*period = (uint64_t)(p * LP_NS_PER_S);
	*gap = (uint64_t)(g * LP_NS_PER_S);
	return 0;
}

static int open_sim(struct lp_app *app, const char *rest, struct lp_errinfo *e)
{
	int r;
	char spec[256], terms_spec[256] = "healthy", state[512] = "", name[128] = "",
			hostile[64] = "";
	bool virt = false, link_off = false, joined = false, faulty = false, keep = false,
	     tls_legacy = false, tls_reset = false;
	uint64_t seed = 1, churn_period = 0, churn_gap = 0, insplit = 0, unplug_at = 0, removal = 0,
		 hubs = 0, reenum_gap = 0;
	struct simdev_opts reenum = {0}; /* reenum= and reenum-gap= */
	struct tr_faults faults;
	struct simdev_opts so;
	struct tr_sim_arg *arg;
	struct tr_sim_port *ports;
	struct sim_term terms[16];
	size_t nterms = 0, ndev = 0, k = 0;
	const char *ev = getenv("LINKPROBE_SIM_CLOCK");
	char *save = NULL, *tok;
	const char *lkd_opt[5] = {NULL}; /* pair, session, service, prohibit, lockdown */
	static const char *const lkd_keys[5] = {
		"pair-error=", "session-error=", "service-error=", "prohibit=", "lockdown="};

	if (ev && strcmp(ev, "virtual") == 0)
		virt = true;
	memset(&faults, 0, sizeof(faults));
	faults.only_endpoint = 0xff;
	snprintf(spec, sizeof(spec), "%s", rest);
	for (tok = strtok_r(spec, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strchr(tok, '=') && tok == spec)
			snprintf(terms_spec, sizeof(terms_spec), "%s", tok);
		else if (strcmp(tok, "clock=virtual") == 0)
			virt = true;
		else if (strcmp(tok, "clock=real") == 0)
			virt = false;
		else if (strncmp(tok, "seed=", 5) == 0) {
			if (lp_parse_uint(tok + 5, 0, UINT64_MAX - TR_SIM_MAX_PORTS, &seed))
				return lp_err_set(
					e, LP_EINVAL,
					"sim option seed wants a decimal number, got '%s'",
					tok + 5);
		} else if (strcmp(tok, "link=off") == 0)
			link_off = true;
		else if (strncmp(tok, "name=", 5) == 0)
			snprintf(name, sizeof(name), "%s", tok + 5);
		else if (strncmp(tok, "state=", 6) == 0)
			snprintf(state, sizeof(state), "%s", tok + 6);
		else if (strcmp(tok, "keep") == 0)
			keep = true;
		else if (strncmp(tok, "hostile=", 8) == 0)
			snprintf(hostile, sizeof(hostile), "%s", tok + 8);
		else if (strcmp(tok, "framing=joined") == 0)
			joined = true;
		else if (strcmp(tok, "framing=split") == 0)
			joined = false;
		else if (strcmp(tok, "tls=legacy") == 0)
			tls_legacy = true;
		else if (strcmp(tok, "tls=reset") == 0)
			tls_reset = true;
		else if (sim_lkd_opt(tok, lkd_keys, lkd_opt))
			;
		else if (strncmp(tok, "churn=", 6) == 0) {
			if (parse_churn(tok + 6, &churn_period, &churn_gap, e))
				return LP_EINVAL;
		} else if (strncmp(tok, "unplug-at=", 10) == 0) {
			if (lp_parse_uint(tok + 10, 1, 3600000, &unplug_at))
				return lp_err_set(
					e, LP_EINVAL,
					"sim option unplug-at wants milliseconds, got '%s'",
					tok + 10);
		} else if (strncmp(tok, "removal-delay=", 14) == 0) {
			if (lp_parse_uint(tok + 14, 1, 60000, &removal))
				return lp_err_set(
					e, LP_EINVAL,
					"sim option removal-delay wants 1..60000 ms, got '%s'",
					tok + 14);
		} else if (strncmp(tok, "reenum=", 7) == 0) {
			if (parse_reenum(tok + 7, &reenum))
				return lp_err_set(
					e, LP_EINVAL,
					"sim option reenum wants trust, pair or session, with +MS "
					"(0..600000) or +USus after it, or never; got '%s'",
					tok + 7);
		} else if (strncmp(tok, "reenum-gap=", 11) == 0) {
			if (lp_parse_uint(tok + 11, 1, 3600000, &reenum_gap))
				return lp_err_set(
					e, LP_EINVAL,
					"sim option reenum-gap wants 1..3600000 ms, got '%s'",
					tok + 11);
		} else if (strncmp(tok, "hubs=", 5) == 0) {
			if (lp_parse_uint(tok + 5, 0, 5, &hubs))
				return lp_err_set(e, LP_EINVAL,
						  "sim option hubs wants 0..5, got '%s'", tok + 5);
		} else if (strncmp(tok, "insplit=", 8) == 0) {
			if (lp_parse_uint(tok + 8, 1, 1u << 20, &insplit))
				return lp_err_set(
					e, LP_EINVAL,
					"sim option insplit wants 1..1048576 bytes, got '%s'",
					tok + 8);
		} else if (strncmp(tok, "fault=", 6) == 0) {
			if (parse_fault(tok + 6, &faults))
				return lp_err_set(e, LP_EINVAL, "unknown sim fault '%s' (%s)",
						  tok + 6, SIM_FAULTS);
			faulty = true;
		} else
			return lp_err_set(
				e, LP_EINVAL,
				"unknown sim option '%s' (clock=virtual|real, seed=N, link=off, keep, state=FILE, name=DEVICENAME, "
				"framing=split|joined, churn=PERIOD[/GAP], fault=F, pair-error=E, "
				"session-error=E, service-error=E, prohibit=KEY[+KEY], lockdown=refuse|silent, "
				"tls=legacy|reset, hubs=N, insplit=N, unplug-at=MS, removal-delay=MS, hostile=MODE, "
				"reenum=trust|pair|session[+MS|+USus]|never, reenum-gap=MS)",
				tok);
	}
	if (parse_terms(terms_spec, terms, sizeof(terms) / sizeof(terms[0]), &nterms, &ndev, e))
		return LP_EINVAL;
	if (virt)
		lp_clock_init_virtual(&app->clock, VIRTUAL_EPOCH_NS);
	lp_rand_seed(&app->rand, seed);

	/* fresh unless asked: a profile's verdict must not depend on what ran
	 * before it (keep, state=FILE: the device remembers) */
	if (keep && !state[0] && sim_state_default(app, state, sizeof(state)))
		return lp_err_set(e, LP_EIO,
				  "cannot create a directory for the simulated device's state");
	app->sims = calloc(ndev, sizeof(*app->sims));
	arg = calloc(1, sizeof(*arg) + ndev * sizeof(*ports));
	if (!app->sims || !arg) {
		free(arg);
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	}
	app->sim_arg = arg; /* adopted now: app_close_device frees what was made */
	ports = (struct tr_sim_port *)(arg + 1);
	for (size_t t = 0; t < nterms; t++) {
		for (size_t i = 0; i < terms[t].count; i++, k++) {
			char st[600];

			memset(&so, 0, sizeof(so));
			/* device k: its own seed (so its own UDID, key and faults)
			 * and its own state file; device 0 is the single device */
			so.seed = seed + k;
			if (k)
				snprintf(st, sizeof(st), "%s-%zu", state, k);
			else
				snprintf(st, sizeof(st), "%s", state);
			so.state_path = state[0] ? st : NULL;
			so.framing_joined = joined;
			if (name[0])
				so.device_name = name;
			so.pair_error = lkd_opt[0];
			so.session_error = lkd_opt[1];
			so.service_error = lkd_opt[2];
			so.prohibit = lkd_opt[3];
			so.lockdown = lkd_opt[4];
			so.tls_legacy = tls_legacy;
			so.tls_reset = tls_reset;
			so.in_split = (size_t)insplit;
			so.unplug_after_dialog_ms = unplug_at;
			so.removal_delay_ms = removal;
			so.reenum_after_pair = reenum.reenum_after_pair;
			so.reenum_from = reenum.reenum_from;
			so.set_reenum_delay = reenum.set_reenum_delay;
			so.reenum_delay_us = reenum.reenum_delay_us;
			so.reenum_gap_ms = reenum_gap;
			if (hostile[0])
				so.hostile = hostile;
			app->sims[k] = simdev_new(terms[t].profile, &so, &app->clock, &app->log, e);
			if (!app->sims[k])
				return e && e->code ? e->code : LP_EINVAL;
			app->nsims = k + 1;
			ports[k].ops = &devcore_model_ops;
			ports[k].model = simdev_model(app->sims[k]);
			simdev_link(app->sims[k], &ports[k].link);
			if (link_off)
				ports[k].link.link_off = true;
			ports[k].link.seed = seed + k;
			ports[k].link.hubs = (uint8_t)hubs;
			if (churn_period) {
				ports[k].link.churn_period_ns = churn_period;
				ports[k].link.churn_gap_ns = churn_gap;
				ports[k].link.churn_first_ns = churn_period * (k + 1) / (ndev + 1);
			}
		}
	}
	/* the profiles' schedules (drop 0.7 s in, churn) count from now, when
	 * the bus starts, not from before the devices' keys were loaded */
	for (size_t i = 0, now = lp_clock_now(&app->clock); i < ndev; i++) {
		if (ports[i].link.disconnect_at_ns)
			ports[i].link.disconnect_at_ns += now;
		if (ports[i].link.churn_period_ns)
			ports[i].link.churn_first_ns += now;
	}
	app->sim = app->sims[0];
	/* the first device's as the single one (what --capture-bus models) */
	arg->ops = ports[0].ops;
	arg->model = ports[0].model;
	arg->link = ports[0].link;
	if (ndev > 1 || churn_period) {
		arg->ports = ports;
		arg->nports = ndev;
	}
	r = start_sim_backend(app, arg, e);
	if (!r && faulty)
		tr_set_faults(app->tr, &faults);
	return r;
}

/* The device side of a capture on the sim backend (app->sim stays NULL; the
 * model hangs off app->sim_arg, told apart by its ops table). */
static int open_replay(struct lp_app *app, const char *path, struct lp_errinfo *e)
{
	const char *ev = getenv("LINKPROBE_SIM_CLOCK");
	struct rdev_opts ro = {.udid = app->udid};
	struct tr_sim_arg *arg;
	struct rdev *rd = NULL;
	int r;

	if (!*path)
		return lp_err_set(e, LP_EINVAL,
				  "--device replay: needs a capture file (replay:FILE)");
	if (ev && strcmp(ev, "virtual") == 0)
		lp_clock_init_virtual(&app->clock, VIRTUAL_EPOCH_NS);
	r = rdev_load_path(path, &ro, &app->clock, &app->log, &rd, e);
	if (r)
		return r;
	arg = calloc(1, sizeof(*arg));
	if (!arg) {
		rdev_free(rd);
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	}
	arg->ops = &devcore_model_ops;
	arg->model = rdev_model(rd);
	rdev_link(rd, lp_clock_now(&app->clock), &arg->link);
	return start_sim_backend(app, arg, e);
}

static struct rdev *replay_model(const struct lp_app *app)
{
	const struct tr_sim_arg *arg = app->sim_arg;

	return arg ? rdev_of_model(arg->model) : NULL;
}

void app_replay_note(struct lp_app *app, struct diag_report *r)
{
	struct rdev *rd = replay_model(app);

	/* whatever failed after the host left the recording failed because of
	 * it: say what was asked and what the recording has, not "restart the
	 * device" */
	diag_rule_replay_diverged(r, rd ? rdev_divergence(rd) : NULL);
}

int app_open_device(struct lp_app *app, struct lp_errinfo *e)
{
	const char *spec = app->device_spec ? app->device_spec : "libusb";
	struct tr_env env;
	int r;

	lp_clock_init_real(&app->clock);
	lp_rand_seed(&app->rand, 1);
	if (strcmp(spec, "sim") == 0)
		r = open_sim(app, "", e);
	else if (strncmp(spec, "sim:", 4) == 0)
		r = open_sim(app, spec + 4, e);
	else if (strcmp(spec, "libusb") == 0) {
		env.clock = &app->clock;
		env.log = &app->log;
		env.rand = &app->rand;
		r = tr_ctx_new(&tr_libusb_ops, &env, NULL, &app->tr, e);
	} else if (strncmp(spec, "replay:", 7) == 0) {
		r = open_replay(app, spec + 7, e);
	} else {
		return lp_err_set(e, LP_EINVAL,
				  "unknown --device '%s' (libusb, sim[:PROFILE], replay:FILE)",
				  spec);
	}
	if (r)
		return r;
	if (app->capture_path || app->capture_streams_path || app->capture_bus_path ||
	    app->keylog_path)
		return app_capture_open(app, e);
	return 0;
}

void app_close_device(struct lp_app *app)
{
	/* asked before the simulated devices go: replay_model looks into the
	 * model, which is a simdev's when the backend runs the simulator */
	struct rdev *rd = app->nsims ? NULL : replay_model(app);

	app_capture_close(app);
	tr_ctx_free(app->tr);
	app->tr = NULL;
	for (size_t i = 0; i < app->nsims; i++)
		simdev_free(app->sims[i]);
	free(app->sims);
	app->sims = NULL;
	app->nsims = 0;
	app->sim = NULL;
	rdev_free(rd);
	free(app->sim_arg);
	app->sim_arg = NULL;
}
