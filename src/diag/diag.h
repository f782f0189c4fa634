/* diag.h - the diagnosis engine: stages with timestamps, verdicts, remedies.
 *
 * Every command builds one struct diag_report: an ordered list of stages (each
 * with start time, duration, ok/fail/skipped and a detail sentence), the
 * device's identity, a verdict and the remedy for it in the terms of the
 * manual checklist people follow (cable, port, Trust, Reset Location &
 * Privacy, camera-only mode, DFU/recovery...). The same report is printed for
 * humans (live, stage by stage) or as one JSON object, and drives the exit
 * code. Live analyzers and the capture analyzer fill the same structure. */
#ifndef LP_DIAG_H
#define LP_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "src/base/lp_clock.h"

enum diag_verdict {
	DIAG_V_NONE = 0,
	DIAG_V_GOOD,	 /* cable test: data link healthy */
	DIAG_V_TRUSTED,	 /* trust: session + service started */
	DIAG_V_FOUND,	 /* list: at least one device */
	DIAG_V_DEGRADED, /* full speed link */
	DIAG_V_FLAKY,	 /* transfer errors / re-enumerations */
	DIAG_V_NO_DEVICE,
	DIAG_V_CAMERA_ONLY,
	DIAG_V_RECOVERY_MODE,
	DIAG_V_DFU_MODE,
	DIAG_V_TRUST_PENDING,
	DIAG_V_DENIED,
	DIAG_V_LOCKED,
	DIAG_V_STALE_TRUST,
	DIAG_V_TLS_FAILED,
	DIAG_V_USB_ERROR,
	DIAG_V_DISCONNECTED,
	DIAG_V_PROTOCOL_ERROR,
	DIAG_V_ACCESS_DENIED,
	DIAG_V_DEVICE_BUSY,
	DIAG_V_LOCKED_AFTER_RESTART, /* paired, not unlocked since the device restarted */
	DIAG_V_SUPERVISED,	     /* MCChallengeRequired: the supervisor's challenge */
	DIAG_V_PAIRING_BLOCKED,	     /* a policy (MDM, Find My, connection kind) forbids it */
	DIAG_V_DEVICE_REFUSED,	     /* any other lockdown refusal, named with its remedy */
	DIAG_V_USBMUXD_ERROR,	     /* the usbmux daemon holds the device but does not serve it */
	/* the host's own state: never the device's or the cable's doing */
	DIAG_V_PAIR_RECORD_ACCESS,  /* pair-record directory/file cannot be read or written */
	DIAG_V_PAIR_RECORD_CORRUPT, /* a pair record or SystemConfiguration.plist is damaged */
	DIAG_V_NO_USB_HOST,	    /* no USB host controller visible at all */
	DIAG_V_UDID_NOT_FOUND,	    /* --udid names no connected device */
	DIAG_V_USBMUXD_UNREACHABLE, /* the usbmux daemon is needed but not running/reachable */
	DIAG_V_REPLAY_DIVERGED,	    /* the host asked what the recording does not hold */
	DIAG_V_CAPTURE_TRUNCATED,   /* analyze: the capture ends mid-exchange */
	DIAG_V_LOCKDOWN_DOWN,	    /* lockdownd does not answer: RST to 62078, QueryType silent */
	DIAG_V_TLS_HOST_POLICY,	    /* session TLS: no protocol/cipher in common with this host */
	DIAG_V_BAD_SIGNAL,	    /* nothing enumerated; the kernel saw it fail to (-71) */
};

const char *diag_verdict_name(enum diag_verdict v);
/* The remedy sentence(s) for a verdict (never NULL; "" for good verdicts). */
const char *diag_verdict_remedy(enum diag_verdict v);
/* 0 for good verdicts (GOOD, TRUSTED, FOUND), 1 for problems found. */
int diag_verdict_exit(enum diag_verdict v);
/* true for the verdicts that place the fault on this host (its files, its
 * USB stack, its usbmux daemon, the user's --udid, a replay or capture
 * file): their remedies never send the user to the cable, the port or the
 * phone. */
bool diag_verdict_is_host(enum diag_verdict v);

enum diag_status { DIAG_ST_RUNNING, DIAG_ST_OK, DIAG_ST_FAIL, DIAG_ST_SKIPPED };

#define DIAG_MAX_STAGES 32
#define DIAG_DETAIL 512

struct diag_stage {
	char name[48];
	enum diag_status status;
	uint64_t start_ns; /* relative to report start */
	uint64_t duration_ns;
	char detail[DIAG_DETAIL];
};

struct diag_device {
	bool present;
	uint16_t vid, pid;
	uint8_t bus, addr;
	char udid[80];
	char product[64];      /* USB product string, sanitized */
	char name[128];	       /* DeviceName from lockdown, sanitized */
	char product_type[48]; /* iPhone10,6 */
	char product_version[32];
	double speed_mbps;
	const char *mode; /* "normal", "recovery", "dfu", "wtf", "unknown" */
	bool has_usbmux;
	char refused_keys[160]; /* GetValue keys the device refused, ", "-separated */
};

struct diag_report;
/* Called after each stage changes (for live human output). */
typedef void (*diag_stage_fn)(void *ud, const struct diag_report *r, const struct diag_stage *s);

struct diag_report {
	const char *command;
	struct lp_clock *clock;
	uint64_t t0;
	struct diag_device dev;
	struct diag_stage stages[DIAG_MAX_STAGES];
	size_t nstages;
	enum diag_verdict verdict;
	char evidence[DIAG_DETAIL]; /* the fact behind the verdict */
	char remedy_extra[DIAG_DETAIL];
	const char *remedy_own; /* static; replaces the verdict's remedy when set (a
				 * rule that knows better, e.g. one lockdown error) */
	json_object *metrics;	/* owned, may be NULL */
	json_object *extra;	/* owned, may be NULL: extra top-level keys */
	diag_stage_fn on_stage;
	void *on_stage_ud;
	void (*on_mark)(void *ud, const char *text); /* capture stage markers */
	void *on_mark_ud;
	/* the StartService request carried the pair record's EscrowBag: only
	 * then is PasswordProtected to it "not unlocked since a restart" */
	bool escrow_sent;
};

void diag_init(struct diag_report *r, const char *command, struct lp_clock *clock);
void diag_release(struct diag_report *r);
/* Open a stage (returns it; it is the current one until ended). */
struct diag_stage *diag_begin(struct diag_report *r, const char *name);
void diag_end(struct diag_report *r, struct diag_stage *s, enum diag_status st, const char *fmt,
	      ...) __attribute__((format(printf, 4, 5)));
/* Update a running stage's detail and re-notify (countdowns). */
void diag_progress(struct diag_report *r, struct diag_stage *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void diag_skip(struct diag_report *r, const char *name, const char *why);
/* Sets verdict and evidence; clears remedy_own. */
void diag_set_verdict(struct diag_report *r, enum diag_verdict v, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The remedy the report gives (remedy_own, else the verdict's), without
 * remedy_extra. Never NULL; "" for good verdicts. */
const char *diag_remedy(const struct diag_report *r);

/* A link speed in words: "high speed (480 Mb/s)", "full speed (12 Mb/s)",
 * "SuperSpeed (5 Gb/s)", "SuperSpeedPlus (10 Gb/s)", "SuperSpeedPlus
 * (20 Gb/s)", "speed not recorded" (mbps <= 0). Returns buf. */
const char *diag_speed_text(double mbps, char *buf, size_t n);

/* Device mode from USB IDs (Apple VID). */
const char *diag_mode_for_pid(uint16_t vid, uint16_t pid);

/* Latency statistics of n samples in ns (borrowed, not reordered):
 * percentiles by nearest rank (the smallest sample with at least p% of the
 * samples at or below it). All zero when n == 0. 0, or LP_ENOMEM. */
struct diag_latency {
	size_t count;
	uint64_t p50_ns, p99_ns, max_ns;
};
int diag_latency(const uint64_t *v, size_t n, struct diag_latency *out);

/* The same in the report's schema: {count, p50_us, p99_us, max_us,
 * histogram: {le_us: [bucket upper bounds, 1-2-5 steps], counts: [...]}}
 * (only count when n == 0). Owned by the caller. */
json_object *diag_latency_json(const uint64_t *v, size_t n);

/* Bus-level captures (diag_bus.c): `bad` of `total` packets corrupted on the
 * wire (crc_bad of them failed their CRC) makes the link FLAKY whatever the
 * device did; no-op when bad is 0. */
void diag_rule_bus_corruption(struct diag_report *r, uint64_t bad, uint64_t total, uint64_t crc_bad,
			      uint64_t first_pkt, uint64_t retries, uint64_t gave_up);

/* JSON object (owned by caller) for the report. */
json_object *diag_to_json(const struct diag_report *r);

#endif
