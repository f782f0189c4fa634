/* simdev.h - the simulated iPhone: USB device, usbmux (device role) and
 * lockdownd, a personality on the device core (src/device/devcore.h) behind
 * the device-model contract (usb/devmodel.h).
 *
 * The same model runs in-process under the "sim" transport and on a real USB
 * controller through FunctionFS (tools/gadget), where Debian's usbmuxd and
 * libimobiledevice must accept it. Reference: doc/protocol.md section 0
 * (real-device facts), 1.10, 2.12, 4.
 *
 * What it looks like (normal-mode profiles):
 *  - 05ac:12a8, bcdUSB 0x0200, bcdDevice 0x0804, EP0 64, "Apple Inc." /
 *    "iPhone" / serial = UDID (40 hex; 24 chars with udid24), 4 configurations
 *    as the notes' section 0 table (usbmux ff/fe/02 in 3 and 4 on bulk OUT 0x04
 *    / IN 0x85, wMaxPacketSize 512 high speed, 64 full speed).
 *  - control: GET_DESCRIPTOR device/config (truncated to wLength)/string (0 =
 *    LANGID 0x0409), SET/GET_CONFIGURATION, GET_STATUS, SET_INTERFACE to an
 *    existing alternate setting, CLEAR_FEATURE(ENDPOINT_HALT), vendor 0x45
 *    GET_MODE (3:3:3:0) and 0x52 SET_MODE (0); anything else stalls.
 *  - usbmux on the bulk pair only while configuration 3 or 4 is active; every
 *    mux packet is one device transfer (zlp when len % wMaxPacketSize == 0).
 *  - lockdownd on 62078 (QueryType, GetValue, SetValue, Pair, ValidatePair,
 *    Unpair, StartSession + TLS, StopSession, StartService, Goodbye; unknown
 *    requests get Error "InvalidResponse"), insecure_notification_proxy and
 *    a mobilebackup2 port that only does the TLS handshake.
 *  - Trust dialog on the device clock: the first Pair of an unknown host
 *    shows it (PairingDialogResponsePending); after the profile's delay the
 *    user answers; on Trust, observers of com.apple.mobile.lockdown.request_pair
 *    are notified and the next Pair (same or fresh record) succeeds. A host
 *    whose HostID or SystemBUID is already paired pairs without a dialog.
 *  - After a Pair accepted through the dialog a real phone re-enumerates
 *    ("device will reconnect by itself", usbmuxd preflight.c); see
 *    simdev_opts.reenum_after_pair.
 *
 * Profiles (simdev_profile_at): healthy, charge-only, full-speed, flaky,
 * camera-only, dfu, recovery, locked, deny, never-answers, forgot-host,
 * tls-reject, unplug-during-pair, supervised, locked-after-restart,
 * reenum-after-trust - summaries
 * in the table in simdev.c.
 */
#ifndef LP_SIMDEV_H
#define LP_SIMDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_error.h"
#include "src/base/lp_log.h"
#include "src/device/devcore.h"
#include "usb/tr_sim.h"

#define SIMDEV_PORT_LOCKDOWN 62078
#define SIMDEV_EP_MUX_OUT 0x04
#define SIMDEV_EP_MUX_IN 0x85

enum simdev_reenum {
	SIMDEV_REENUM_AUTO = 0, /* the profile's choice; for most profiles only if a
				   notification-proxy client waits for request_pair
				   (usbmuxd's preflight needs it) */
	SIMDEV_REENUM_ALWAYS,	/* after every pairing accepted through the dialog,
				   as a real phone (it does not look for observers) */
	SIMDEV_REENUM_NEVER,
};

/* What the re-enumeration delay counts from. A real phone drops off the bus
 * around the tap on Trust (libusbmuxd#26: "the device will reconnect via USB
 * when you tap Trust"; libimobiledevice#1354: the pair finished and the
 * device reset the connection ~1 s later): where exactly relative to the
 * host's requests is not known, so each point can be chosen. */
enum simdev_reenum_from {
	SIMDEV_REENUM_FROM_PAIR = 0, /* the Pair answered thanks to the Trust tap */
	SIMDEV_REENUM_FROM_TRUST,    /* the tap itself, whatever the host is doing */
	SIMDEV_REENUM_FROM_SESSION,  /* the first StartSession accepted after that Pair */
};

/* All fields optional (zero = default). Strings borrowed for simdev_new only. */
struct simdev_opts {
	const char *udid;	 /* serial / UniqueDeviceID; default derived from seed */
	const char *device_name; /* DeviceName; default "iPhone" */
	bool set_trust_delay;	 /* use trust_delay_ms instead of the profile's */
	uint64_t trust_delay_ms;
	uint64_t seed;		/* identity, escrow bags, session IDs; 0 = 1 */
	bool udid24;		/* new-style 24-character UDID (8-16 with '-') */
	const char *state_path; /* persist device key + pairings here (0600) */
	bool state_readonly;	/* load state_path but never write it */
	enum simdev_reenum reenum_after_pair;
	enum simdev_reenum_from reenum_from; /* with set_reenum_delay; else the profile's */
	bool set_reenum_delay;		     /* use reenum_delay_us (0 allowed) */
	uint64_t reenum_delay_us; /* reenum_from -> drop; unset: the profile's, else 300 ms */
	uint64_t reenum_gap_ms;	  /* absent for; 0 = the profile's, else 500 ms */
	bool framing_joined;	  /* lockdown's length prefix in the same usbmux packet
				     as the body (for hosts that need it); default:
				     a packet of its own, as real devices send it */
	/* lockdown error strings ("MCProtected") lockdownd answers to every
	 * Pair / StartSession of a paired host / StartService instead of
	 * succeeding; NULL = the profile's. LP_EINVAL for a string that is not
	 * a lockdown error. */
	const char *pair_error, *session_error, *service_error;
	const char *prohibit; /* GetValue keys refused with GetProhibited, '+'-separated */
	const char *hostile;  /* misbehave on request: a mode of sim_hostile.h
				     ("mux-short", "disconnect-pair", ...); NULL = none */
	size_t in_split;      /* usbmux IN packets in transfers of this size (devcore) */
	uint64_t unplug_after_dialog_ms; /* unplug this long after the Trust dialog appears */
	uint64_t removal_delay_ms;	 /* after an unplug, transfers fail this long before the
					    device is removed (tr_sim_link.removal_delay_ns) */
	const char *lockdown; /* NULL/"up", "refuse" (RST to 62078), "silent" (never answers) */
	bool tls_legacy; /* session TLS only TLS 1.0 with Camellia: no cipher in common with hosts */
	bool tls_reset;	 /* a paired host's StartSession succeeds, then the device resets the
			    connection at its TLS hello: trust was reset on the device */
};

struct simdev;

/* Create the device for `profile` (NULL = "healthy"). clock and log borrowed
 * (must outlive it); opts may be NULL. Generates (or loads) the device's RSA
 * key. NULL on failure with e filled (LP_EINVAL: unknown profile). */
struct simdev *simdev_new(const char *profile, const struct simdev_opts *opts,
			  struct lp_clock *clock, const struct lp_log *log, struct lp_errinfo *e);
void simdev_free(struct simdev *s);

/* The device model to hand a driver (usb/devmodel.h): ops devcore_model_ops
 * (src/device/devcore.h), model simdev_model(s). Borrowed, lives as long as s. */
void *simdev_model(struct simdev *s);

/* The profile's link parameters (speed, latency, error rate, disconnect,
 * re-enumeration gap; link_off false; seed from opts). */
int simdev_link(const struct simdev *s, struct tr_sim_link *out);

/* Profile table for `linkprobe sim --list`. Borrowed static strings. */
/* The hostile modes simdev_opts.hostile takes, ", "-separated. Static. */
const char *simdev_hostile_names(void);

size_t simdev_profile_count(void);
int simdev_profile_at(size_t i, const char **name, const char **summary);

/* The UDID as lockdown reports it (24-char UDIDs with the '-'). Borrowed. */
const char *simdev_udid(const struct simdev *s);

enum simdev_dialog {
	SIMDEV_DIALOG_NONE,
	SIMDEV_DIALOG_SHOWN,
	SIMDEV_DIALOG_TRUSTED,
	SIMDEV_DIALOG_DENIED,
};

/* Observable state, for tests and the lab. */
struct simdev_state {
	bool attached;	 /* as attached() would answer now */
	uint8_t config;	 /* active configuration, 0 = unconfigured */
	bool mux_active; /* usbmux VERSION (and SETUP) done */
	enum simdev_dialog dialog;
	uint32_t dialogs_shown;
	uint32_t pair_requests, pairs_ok;
	uint32_t sessions_started; /* StartSession accepted */
	uint32_t tls_sessions;	   /* handshakes whose host certificate was accepted */
	uint32_t tls_rejected;	   /* handshakes refused for a foreign certificate */
	uint32_t notifications_posted;
	uint32_t lockdown_requests;
	uint32_t resets; /* ops->reset calls */
	uint32_t self_reenumerations;
	size_t paired_hosts;
};
void simdev_get_state(const struct simdev *s, uint64_t now, struct simdev_state *st);
/* HostID of pairing i (< paired_hosts), borrowed; NULL past the end. */
const char *simdev_paired_host(const struct simdev *s, size_t i);

/* Unplug (attached() false from now on) or plug back in. For the lab. */
void simdev_set_unplugged(struct simdev *s, bool unplugged);

/* For tools/gadget: the speed the bus actually runs at (FULL or HIGH;
 * selects wMaxPacketSize and the ZLP rule), and any descriptor as GET_DESCRIPTOR
 * would return it at `speed` (type 1 device, 2 configuration `index`
 * (0-based), 3 string `index`). 0, or LP_ESTALL if there is no such
 * descriptor; truncated to cap. */
void simdev_set_speed(struct simdev *s, enum tr_speed speed);
int simdev_descriptor(const struct simdev *s, enum tr_speed speed, uint8_t type, uint8_t index,
		      uint8_t *out, size_t cap, size_t *len);

#endif
