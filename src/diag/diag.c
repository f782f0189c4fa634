/* diag.c - stages, verdicts and remedies; JSON form of a report.
 *
 * Remedies are written in the terms of the checklist people follow when
 * "Trust This Computer?" never appears or sync fails: cable, port, restart,
 * update, Reset Location & Privacy, drivers/services, camera-only mode,
 * locked device, DFU/recovery. They name what was measured, not a guess. */
#include "src/diag/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/lp_error.h"
#include "src/base/lp_str.h"

struct verdict_row {
	enum diag_verdict v;
	const char *name;
	int exit_code;
	const char *remedy;
	bool host; /* the fault is this host's (diag_verdict_is_host) */
};

static const struct verdict_row verdicts[] = {
	{DIAG_V_NONE, "NONE", 3, "linkprobe stopped before it could reach a verdict.", false},
	{DIAG_V_GOOD, "GOOD", 0, "", false},
	{DIAG_V_TRUSTED, "TRUSTED", 0, "", false},
	{DIAG_V_FOUND, "FOUND", 0, "", false},
	{DIAG_V_DEGRADED, "DEGRADED", 1,
	 "The link works but is slower than the device can go: it linked below the device's speed "
	 "(e.g. USB full speed, 12 Mb/s, instead of high speed, 480 Mb/s: ~40x slower) or moves data "
	 "far below what its speed allows (the evidence says which). Use a different cable (an Apple "
	 "or MFi-certified data cable) and plug it straight into a computer port, not a hub or "
	 "front-panel port; sync and backup will be slow until then.",
	 false},
	{DIAG_V_FLAKY, "FLAKY", 1,
	 "The link drops transfers or the device re-enumerated during the test. Try another cable "
	 "first, then another USB port (directly on the computer, no hub or extension), and check "
	 "the Lightning/USB-C connector for lint. Re-run the cable test to confirm.",
	 false},
	{DIAG_V_NO_DEVICE, "NO_DEVICE", 1,
	 "No Apple device enumerated on USB. If the phone charges, the cable is likely charge-only "
	 "or damaged, or the port supplies power without data: try a known data-capable cable and "
	 "another port. If it does not charge either, check the port and the device's connector.",
	 false},
	{DIAG_V_CAMERA_ONLY, "CAMERA_ONLY", 1,
	 "The device offers only its camera (PTP) interface, no usbmux: the computer sees it as a "
	 "camera. Unlock the device and tap Trust if asked, make sure no MDM/Restrictions setting "
	 "blocks USB accessories, and on Linux install/start usbmuxd so the right configuration is "
	 "selected; restart the device if it persists.",
	 false},
	{DIAG_V_RECOVERY_MODE, "RECOVERY_MODE", 1,
	 "The device is in recovery mode (iBoot); it cannot pair or sync. Restart it normally, or "
	 "update/restore it with Finder, iTunes or idevicerestore.",
	 false},
	{DIAG_V_DFU_MODE, "DFU_MODE", 1,
	 "The device is in DFU mode; it cannot pair or sync. Force-restart it to leave DFU, or "
	 "restore it with Finder, iTunes or idevicerestore.",
	 false},
	{DIAG_V_TRUST_PENDING, "TRUST_PENDING", 1,
	 "The device showed \"Trust This Computer?\" but nobody answered before the timeout. Unlock "
	 "the device, tap Trust and enter the passcode, then run `linkprobe trust --pair` again "
	 "(use --timeout for more time). If the dialog never appears, use Settings > General > "
	 "Transfer or Reset > Reset > Reset Location & Privacy and reconnect.",
	 false},
	{DIAG_V_DENIED, "DENIED", 1,
	 "The user tapped \"Don't Trust\". To be asked again: unplug and reconnect, or reset the "
	 "trust settings (Settings > General > Transfer or Reset > Reset > Reset Location & "
	 "Privacy), then run `linkprobe trust --pair` and tap Trust.",
	 false},
	{DIAG_V_LOCKED, "LOCKED", 1,
	 "The device is locked with a passcode, so it refuses to pair. Unlock it (home screen "
	 "visible), keep it unlocked, and run `linkprobe trust --pair` again.",
	 false},
	{DIAG_V_STALE_TRUST, "STALE_TRUST", 1,
	 "This computer has a pair record but the device no longer knows it (trust was reset on "
	 "the device, or the device was erased/restored). Pair again with `linkprobe trust --pair` "
	 "(it replaces the stale record) and tap Trust.",
	 false},
	{DIAG_V_TLS_FAILED, "TLS_FAILED", 1,
	 "The session TLS handshake failed: the pair record does not match what the device "
	 "stored. Re-pair with `linkprobe trust --pair`; if it keeps failing, Reset Location & "
	 "Privacy on the device and pair again.",
	 false},
	{DIAG_V_USB_ERROR, "USB_ERROR", 1,
	 "USB transfers failed. Try another cable and another port directly on the computer; "
	 "restart the device if it persists.",
	 false},
	{DIAG_V_DISCONNECTED, "DISCONNECTED", 1,
	 "The device disappeared from USB in the middle of the exchange (unplugged, a loose "
	 "connector, or a cable/port that drops the link). Reconnect firmly with a known-good "
	 "cable and run the command again; if it recurs, run `linkprobe --cable-test`.",
	 false},
	{DIAG_V_PROTOCOL_ERROR, "PROTOCOL_ERROR", 1,
	 "The device answered in a way that breaks the protocol. Restart the device; if it "
	 "persists, capture the session with --capture and attach it to a bug report.",
	 false},
	{DIAG_V_ACCESS_DENIED, "ACCESS_DENIED", 1,
	 "No permission to open the USB device. Install the udev rule (sudo install -m 644 "
	 "tools/udev/39-linkprobe.rules /etc/udev/rules.d/ && sudo udevadm control --reload && "
	 "sudo udevadm trigger), then reconnect the device; or run linkprobe as root.",
	 false},
	{DIAG_V_DEVICE_BUSY, "DEVICE_BUSY", 1,
	 "Another program holds the device's usbmux interface (the evidence names it). Without "
	 "--direct, linkprobe goes through usbmuxd when usbmuxd holds it; otherwise close that "
	 "program, or stop usbmuxd (sudo systemctl stop usbmuxd; udev starts it again at the next "
	 "plug-in) while linkprobe talks to the device directly.",
	 false},
	{DIAG_V_LOCKED_AFTER_RESTART, "LOCKED_AFTER_RESTART", 1,
	 "The device has restarted and has not been unlocked since: until the first unlock it keeps "
	 "its pairings sealed, so it refuses the session although this computer is paired. Unlock it "
	 "once with the passcode (home screen visible) and run `linkprobe trust` again. Do not pair "
	 "again: the pairing itself is fine.",
	 false},
	{DIAG_V_SUPERVISED, "SUPERVISED", 1,
	 "The device is supervised by an organisation (MDM): instead of showing \"Trust This "
	 "Computer?\" it asks the host to answer the supervisor's challenge, which only a host holding "
	 "the supervision identity can do. Pair it from the supervising Mac (Apple Configurator) or "
	 "ask the administrator to allow pairing with other computers.",
	 false},
	{DIAG_V_PAIRING_BLOCKED, "PAIRING_BLOCKED", 1,
	 "A policy on the device forbids this (the evidence names which: a configuration "
	 "profile/MDM restriction, Find My, or the kind of connection). The Trust dialog will not "
	 "appear until the policy allows it: ask the device's administrator, or lift the "
	 "restriction in Settings.",
	 false},
	{DIAG_V_DEVICE_REFUSED, "DEVICE_REFUSED", 1,
	 "The device refused a lockdown request (the evidence names its reason). Unplug and "
	 "reconnect the device and run again; if it repeats, restart the device and attach a "
	 "--capture of the run to a bug report.",
	 false},
	{DIAG_V_USBMUXD_ERROR, "USBMUXD_ERROR", 1,
	 "The usbmux daemon (usbmuxd) holds the device but does not serve it (the evidence says "
	 "how: it does not list the device, answers with an error code, or lockdown through it "
	 "fails); nothing points at the phone or its link. Restart the daemon (sudo "
	 "systemctl restart usbmuxd; on Windows restart the Apple Mobile Device Service or "
	 "reinstall the Apple device drivers) and reconnect the device; if it persists, stop it "
	 "(sudo systemctl stop usbmuxd) and run linkprobe with --direct.",
	 true},
	/* Host-side verdicts. Their remedies fix this computer: no cable, port
	 * or phone step (tests/t/27-host-faults.t greps for them). */
	{DIAG_V_PAIR_RECORD_ACCESS, "PAIR_RECORD_ACCESS", 1,
	 "This computer cannot read or write its pair records; the evidence names the file and "
	 "the system error. The phone and the USB link are not involved. Fix the directory: run "
	 "linkprobe as a user that may use it (/var/lib/lockdown belongs to root, mode 0700, on "
	 "Debian), free disk space or remount it read-write, or choose a directory you own with "
	 "--pair-dir or LINKPROBE_PAIR_DIR (records there are not shared with usbmuxd). With "
	 "usbmuxd running, --via-usbmuxd reads and saves records through the daemon.",
	 true},
	{DIAG_V_PAIR_RECORD_CORRUPT, "PAIR_RECORD_CORRUPT", 1,
	 "A pair-record file on this computer is damaged (the evidence names it and what is "
	 "wrong). The phone and the USB link are not involved. Move the file aside and pair "
	 "again with `linkprobe trust --pair`; if it is SystemConfiguration.plist, moving it "
	 "aside gives this computer a new SystemBUID, so pair again every device it knew.",
	 true},
	{DIAG_V_NO_USB_HOST, "NO_USB_HOST", 1,
	 "This system shows no USB host controller at all, so no phone can appear whatever is "
	 "plugged in: linkprobe runs where USB is not visible (a container, a virtual machine "
	 "or WSL). Run it on the machine the phone is plugged into, or give this environment "
	 "USB: pass /dev/bus/usb into the container (docker run --device /dev/bus/usb), "
	 "attach the USB controller or the phone to the VM (USB passthrough), or attach it to "
	 "WSL with usbipd-win.",
	 true},
	{DIAG_V_UDID_NOT_FOUND, "UDID_NOT_FOUND", 1,
	 "No connected device has the UDID given with --udid; the evidence lists the devices "
	 "that are connected. Use one of those UDIDs, or leave out --udid.",
	 true},
	{DIAG_V_USBMUXD_UNREACHABLE, "USBMUXD_UNREACHABLE", 1,
	 "The usbmux daemon (usbmuxd) is needed but not running or not reachable; the evidence "
	 "says how (its socket and the system error, or, in a capture, a phone left "
	 "unconfigured because no usbmux client claimed it): a fault of this computer, "
	 "not of the phone. Start or restart usbmuxd (Linux: sudo systemctl restart usbmuxd, "
	 "and install the usbmuxd package if it is missing; on macOS it is part of the system; on Windows restart the Apple Mobile Device "
	 "Service, or reinstall the Apple device drivers), check USBMUXD_SOCKET_ADDRESS, and "
	 "for a permission error run as a user that may open the socket. With --via-usbmuxd, "
	 "leaving it out talks to the phone directly.",
	 true},
	{DIAG_V_REPLAY_DIVERGED, "REPLAY_DIVERGED", 1,
	 "The replay left the recording: linkprobe asked for something the capture does not "
	 "hold (the evidence says what was asked and what the recording has). Nothing is wrong "
	 "with a phone or a link. Replay a capture of the same command (a `trust` capture for "
	 "`trust`), or record the session again with --capture.",
	 true},
	{DIAG_V_CAPTURE_TRUNCATED, "CAPTURE_TRUNCATED", 1,
	 "The capture cannot say how the session ended: it ends in the middle of an exchange, "
	 "or its records are clipped by a snap length (the evidence says which, with the packet "
	 "and the stage). Capture the whole session - stop the capture after linkprobe or the "
	 "other tool has exited, and keep whole records (dumpcap/tcpdump -s 0, or no -s) - and "
	 "analyze it again.",
	 true},
	{DIAG_V_LOCKDOWN_DOWN, "LOCKDOWN_DOWN", 1,
	 "The phone's lockdown service (lockdownd, port 62078) is not working although USB and "
	 "usbmux are fine: it reset the connection or never answered (see the evidence). That is "
	 "the phone's side, not the cable: restart the device (step 2 of the checklist), then "
	 "run again; if it persists after a restart, update iOS.",
	 false},
	{DIAG_V_TLS_HOST_POLICY, "TLS_HOST_POLICY", 1,
	 "The session TLS failed before the device presented its certificate: this computer's TLS "
	 "library and the device have no protocol version or cipher in common (OpenSSL's words "
	 "are in the evidence). The pair record and the device are not at fault. Allow the older "
	 "protocol on this host - for OpenSSL 3 an OPENSSL_CONF with MinProtocol = TLSv1 and "
	 "CipherString = DEFAULT:@SECLEVEL=0 and the legacy provider (Fedora: "
	 "update-crypto-policies --set LEGACY) - or pair from a host whose TLS library still "
	 "offers it.",
	 true},
	{DIAG_V_BAD_SIGNAL, "BAD_SIGNAL", 1,
	 "Nothing enumerated, but the kernel saw a device on the port and failed to read it "
	 "(the evidence quotes its log): the data lines connect but the signal is bad - this is "
	 "not a charge-only cable. Try another cable (no extension leads), clean the Lightning or "
	 "USB-C connector, and use another port directly on the computer.",
	 false},
};

static const struct verdict_row *vrow(enum diag_verdict v)
{
	for (size_t i = 0; i < sizeof(verdicts) / sizeof(verdicts[0]); i++)
		if (verdicts[i].v == v)
			return &verdicts[i];
	return &verdicts[0];
}

const char *diag_verdict_name(enum diag_verdict v)
{
	return vrow(v)->name;
}
const char *diag_verdict_remedy(enum diag_verdict v)
{
	return vrow(v)->remedy;
}
int diag_verdict_exit(enum diag_verdict v)
{
	return vrow(v)->exit_code;
}
bool diag_verdict_is_host(enum diag_verdict v)
{
	return vrow(v)->host;
}

void diag_init(struct diag_report *r, const char *command, struct lp_clock *clock)
{
	memset(r, 0, sizeof(*r));
	r->command = command;
	r->clock = clock;
	r->t0 = lp_clock_now(clock);
	r->dev.mode = "unknown";
}

void diag_release(struct diag_report *r)
{
	if (r->metrics)
		json_object_put(r->metrics);
	if (r->extra)
		json_object_put(r->extra);
	r->metrics = r->extra = NULL;
}

static void notify(struct diag_report *r, struct diag_stage *s)
{
	if (r->on_stage)
		r->on_stage(r->on_stage_ud, r, s);
}

struct diag_stage *diag_begin(struct diag_report *r, const char *name)
{
	static struct diag_stage overflow;
	struct diag_stage *s;

	if (r->nstages >= DIAG_MAX_STAGES) {
		memset(&overflow, 0, sizeof(overflow));
		return &overflow;
	}
	s = &r->stages[r->nstages++];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->status = DIAG_ST_RUNNING;
	s->start_ns = lp_clock_now(r->clock) - r->t0;
	if (r->on_mark) {
		char m[80];
		snprintf(m, sizeof(m), "stage %s", name);
		r->on_mark(r->on_mark_ud, m);
	}
	notify(r, s);
	return s;
}

static void vset(char *dst, size_t n, const char *fmt, va_list ap)
{
	char tmp[DIAG_DETAIL];
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	/* details quote device strings: keep the terminal safe */
	lp_sanitize_str(dst, n, tmp);
}

void diag_end(struct diag_report *r, struct diag_stage *s, enum diag_status st, const char *fmt,
	      ...)
{
	va_list ap;

	s->status = st;
	s->duration_ns = lp_clock_now(r->clock) - r->t0 - s->start_ns;
	if (fmt) {
		va_start(ap, fmt);
		vset(s->detail, sizeof(s->detail), fmt, ap);
		va_end(ap);
	}
	notify(r, s);
}

void diag_progress(struct diag_report *r, struct diag_stage *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset(s->detail, sizeof(s->detail), fmt, ap);
	va_end(ap);
	s->duration_ns = lp_clock_now(r->clock) - r->t0 - s->start_ns;
	notify(r, s);
}

void diag_skip(struct diag_report *r, const char *name, const char *why)
{
	struct diag_stage *s = diag_begin(r, name);
	diag_end(r, s, DIAG_ST_SKIPPED, "%s", why);
}

void diag_set_verdict(struct diag_report *r, enum diag_verdict v, const char *fmt, ...)
{
	va_list ap;

	r->verdict = v;
	r->remedy_own = NULL;
	r->evidence[0] = '\0';
	if (fmt) {
		va_start(ap, fmt);
		vset(r->evidence, sizeof(r->evidence), fmt, ap);
		va_end(ap);
	}
}

const char *diag_remedy(const struct diag_report *r)
{
	return r->remedy_own ? r->remedy_own : diag_verdict_remedy(r->verdict);
}

const char *diag_speed_text(double mbps, char *buf, size_t n)
{
	if (mbps <= 0)
		snprintf(buf, n, "speed not recorded");
	else if (mbps >= 5000)
		snprintf(buf, n, "%s (%g Gb/s)", mbps >= 10000 ? "SuperSpeedPlus" : "SuperSpeed",
			 mbps / 1000);
	else
		snprintf(buf, n, "%s speed (%g Mb/s)",
			 mbps >= 480  ? "high"
			 : mbps >= 12 ? "full"
				      : "low",
			 mbps);
	return buf;
}

const char *diag_mode_for_pid(uint16_t vid, uint16_t pid)
{
	if (vid != 0x05ac)
		return "unknown";
	if (pid >= 0x1290 && pid <= 0x12af)
		return "normal";
	if (pid >= 0x1280 && pid <= 0x1283)
		return "recovery";
	if (pid == 0x1227)
		return "dfu";
	if (pid == 0x1222)
		return "wtf";
	return "unknown";
}

static const char *status_name(enum diag_status s)
{
	switch (s) {
	case DIAG_ST_OK:
		return "ok";
	case DIAG_ST_FAIL:
		return "fail";
	case DIAG_ST_SKIPPED:
		return "skipped";
	default:
		return "running";
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Fixed 1-2-5 bucket edges in microseconds (upper bounds, inclusive), so
 * histograms of different runs line up; the last bucket takes the rest. */
static const double hist_le_us[] = {
	1,   2,	  5,   10,  20,	 50,  100, 200, 500, 1e3, 2e3, 5e3, 1e4,
	2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7, 2e7, 5e7, 1e8,
};
#define HIST_N (sizeof(hist_le_us) / sizeof(hist_le_us[0]))

/* {"le_us": [...], "counts": [...]} over the buckets from the first to the
 * last non-empty one; `s` sorted ascending, n > 0. */
static json_object *latency_histogram(const uint64_t *s, size_t n)
{
	uint64_t counts[HIST_N] = {0};
	size_t b = 0, lo = HIST_N, hi = 0;
	json_object *h = json_object_new_object(), *le = json_object_new_array(),
		    *cnt = json_object_new_array();

	for (size_t i = 0; i < n; i++) {
		double us = (double)s[i] / 1000.0;
		while (b < HIST_N - 1 && us > hist_le_us[b])
			b++;
		counts[b]++;
	}
	for (size_t i = 0; i < HIST_N; i++)
		if (counts[i]) {
			if (lo == HIST_N)
				lo = i;
			hi = i;
		}
	for (size_t i = lo; i <= hi && lo < HIST_N; i++) {
		json_object_array_add(le, json_object_new_double(hist_le_us[i]));
		json_object_array_add(cnt, json_object_new_int64((int64_t)counts[i]));
	}
	json_object_object_add(h, "le_us", le);
	json_object_object_add(h, "counts", cnt);
	return h;
}

/* index of the nearest-rank p-th percentile among n sorted samples */
static size_t rank_index(size_t n, unsigned p)
{
	size_t k = (n * p + 99) / 100; /* ceil(n * p / 100), 1-based */
	return k ? k - 1 : 0;
}

/* A sorted copy of v (NULL on allocation failure; n > 0). */
static uint64_t *sorted_copy(const uint64_t *v, size_t n)
{
	uint64_t *s;

	if (n > SIZE_MAX / sizeof(*s) || !(s = malloc(n * sizeof(*s))))
		return NULL;
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_u64);
	return s;
}

static void latency_of_sorted(const uint64_t *s, size_t n, struct diag_latency *out)
{
	out->count = n;
	out->p50_ns = s[rank_index(n, 50)];
	out->p99_ns = s[rank_index(n, 99)];
	out->max_ns = s[n - 1];
}

int diag_latency(const uint64_t *v, size_t n, struct diag_latency *out)
{
	uint64_t *s;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return 0;
	if (!(s = sorted_copy(v, n)))
		return LP_ENOMEM;
	latency_of_sorted(s, n, out);
	free(s);
	return 0;
}

json_object *diag_latency_json(const uint64_t *v, size_t n)
{
	json_object *o = json_object_new_object();
	struct diag_latency l;
	uint64_t *s;

	json_object_object_add(o, "count", json_object_new_int64((int64_t)n));
	if (n == 0 || !(s = sorted_copy(v, n)))
		return o;
	latency_of_sorted(s, n, &l);
	json_object_object_add(o, "p50_us", json_object_new_double((double)l.p50_ns / 1000.0));
	json_object_object_add(o, "p99_us", json_object_new_double((double)l.p99_ns / 1000.0));
	json_object_object_add(o, "max_us", json_object_new_double((double)l.max_ns / 1000.0));
	json_object_object_add(o, "histogram", latency_histogram(s, n));
	free(s);
	return o;
}

static json_object *jstr(const char *s)
{
	return json_object_new_string(s ? s : "");
}

json_object *diag_to_json(const struct diag_report *r)
{
	json_object *o = json_object_new_object(), *st = json_object_new_array();
	const struct diag_device *d = &r->dev;

	json_object_object_add(o, "command", jstr(r->command));
	json_object_object_add(o, "verdict", jstr(diag_verdict_name(r->verdict)));
	json_object_object_add(o, "exit_code", json_object_new_int(diag_verdict_exit(r->verdict)));
	{
		char rem[2 * DIAG_DETAIL + 1024];
		snprintf(rem, sizeof(rem), "%s%s%s", diag_remedy(r), r->remedy_extra[0] ? " " : "",
			 r->remedy_extra);
		json_object_object_add(o, "remedy", jstr(rem));
	}
	json_object_object_add(o, "evidence", jstr(r->evidence));
	if (d->present) {
		json_object *jd = json_object_new_object();
		/* 0 is no device's: not seen (analyze) */
		json_object_object_add(jd, "vid", d->vid ? json_object_new_int(d->vid) : NULL);
		json_object_object_add(jd, "pid", d->pid ? json_object_new_int(d->pid) : NULL);
		json_object_object_add(jd, "bus", json_object_new_int(d->bus));
		json_object_object_add(jd, "address", json_object_new_int(d->addr));
		json_object_object_add(jd, "udid", jstr(d->udid));
		json_object_object_add(jd, "speed_mbps",
				       d->speed_mbps > 0 ? json_object_new_double(d->speed_mbps)
							 : NULL);
		json_object_object_add(jd, "mode", jstr(d->mode));
		json_object_object_add(jd, "has_usbmux", json_object_new_boolean(d->has_usbmux));
		json_object_object_add(jd, "product", jstr(d->product));
		json_object_object_add(jd, "name", jstr(d->name));
		json_object_object_add(jd, "product_type", jstr(d->product_type));
		json_object_object_add(jd, "product_version", jstr(d->product_version));
		{
			json_object *rk = json_object_new_array();
			const char *p = d->refused_keys;
			while (*p) {
				size_t k = strcspn(p, ",");
				json_object_array_add(rk, json_object_new_string_len(p, (int)k));
				p += k;
				p += strspn(p, ", ");
			}
			json_object_object_add(jd, "refused_keys", rk);
		}
		json_object_object_add(o, "device", jd);
	} else {
		json_object_object_add(o, "device", NULL);
	}
	for (size_t i = 0; i < r->nstages; i++) {
		const struct diag_stage *s = &r->stages[i];
		json_object *js = json_object_new_object();
		json_object_object_add(js, "name", jstr(s->name));
		json_object_object_add(js, "status", jstr(status_name(s->status)));
		json_object_object_add(js, "start_ns", json_object_new_int64((int64_t)s->start_ns));
		json_object_object_add(js, "duration_ns",
				       json_object_new_int64((int64_t)s->duration_ns));
		json_object_object_add(js, "detail", jstr(s->detail));
		json_object_array_add(st, js);
	}
	json_object_object_add(o, "stages", st);
	if (r->metrics)
		json_object_object_add(o, "metrics", json_object_get(r->metrics));
	if (r->extra) {
		json_object_object_foreach(r->extra, k, v)
			json_object_object_add(o, k, json_object_get(v));
	}
	return o;
}
