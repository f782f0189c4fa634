/* rules.h - the rules that turn evidence into a verdict, and the sentence
 * a stage ends with when a rule decides it, written once for every command
 * and for the capture analyzer.
 *
 * A live run and `analyze` on its capture must reach the same verdict from
 * the same facts, so neither side decides a verdict on its own: both hand
 * their facts to these functions (tests/t/65-parity.t holds them to it).
 * Each diag_rule_* function ends the stage it is given (status, detail) and
 * sets the report's verdict and evidence ("stage NAME: ..."). */
#ifndef LP_DIAG_RULES_H
#define LP_DIAG_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/diag/diag.h"
#include "src/diag/stages.h"
#include "usb/kmsg.h"

/* The verdict an lp_err implies when it ends a stage after the device was
 * found: USB transfer errors, the device leaving the bus, permissions, a
 * held interface, TLS, and each lockdown refusal by the lockdown error table
 * in rules.c (without a stage: PasswordProtected is LOCKED here;
 * diag_rule_err makes it LOCKED_AFTER_RESTART in StartSession/StartService). Errors that are this host's own
 * (out of memory, a bad argument, a key that does not load) are
 * DIAG_V_NONE: linkprobe could not finish, and nothing is blamed on the
 * device or the cable. */
enum diag_verdict diag_verdict_for_err(int err);

/* What lockdown error `err` means, in a sentence (NULL: not a lockdown
 * error the table knows). Every error string of doc/protocol.md 4.4 has one. */
const char *diag_lockdown_meaning(int err);

/* Stage `s` failed with `err`; `msg` (may be NULL or "") is the evidence
 * in words. Lockdown errors are named as the device sent them. */
void diag_rule_err(struct diag_report *r, struct diag_stage *s, int err, const char *msg);

/* As diag_rule_err, for a stage that ran over a USB link which has counted
 * `usb_errors` failed transfers (the last ending `last_usb_err`). A broken
 * stream (a protocol error, a closed or reset connection) on a link that
 * lost transfers is the lost transfers' doing, not the device's: USB_ERROR
 * with the count as evidence - the analyzer reads the same capture so. */
void diag_rule_err_link(struct diag_report *r, struct diag_stage *s, int err, const char *msg,
			uint64_t usb_errors, int last_usb_err);

/* Would `err`, on a link that has lost `usb_errors` transfers, be judged
 * a USB fault (USB_ERROR)? Then the device's presence must be checked
 * first (hl_check_present): an unplugged device's transfers fail before the
 * kernel removes it, and that is DISCONNECTED, not a cable to replace. */
bool diag_usb_fault_suspected(int err, uint64_t usb_errors);

/* USB mode: a device in DFU/WTF or recovery mode (by its product ID)
 * cannot pair or sync. Ends `s` FAIL with DFU_MODE/RECOVERY_MODE and
 * returns true; returns false (s untouched) for any other mode. */
bool diag_rule_mode(struct diag_report *r, struct diag_stage *s, uint16_t vid, uint16_t pid);

/* No configuration offers the usbmux interface: CAMERA_ONLY. `nconfigs`
 * configurations were read. */
void diag_rule_camera_only(struct diag_report *r, struct diag_stage *s, size_t nconfigs);

/* QueryType answered `type`: true (stage left open for the caller's
 * sentence) when it is lockdownd; else ends `s` FAIL (a restore-mode
 * service: RECOVERY_MODE; anything else: PROTOCOL_ERROR). */
bool diag_rule_query_type(struct diag_report *r, struct diag_stage *s, const char *type);

/* device info: the identity in r->dev and the keys the device refused to
 * give (GetProhibited), each added with diag_refused_key: ends `s` OK with
 * the identity, naming every refused key - the run carries on. `extra`
 * (may be NULL) is appended. */
void diag_refused_key(struct diag_report *r, const char *key);
void diag_rule_device_info(struct diag_report *r, struct diag_stage *s, const char *extra);

/* lockdownd is not working while usbmux is: `refused` - the device reset
 * the connection to port 62078 (nothing listens); else QueryType was never
 * answered within `waited_s`. Ends `s` FAIL with LOCKDOWN_DOWN. */
void diag_rule_lockdown_down(struct diag_report *r, struct diag_stage *s, bool refused,
			     double waited_s);

/* The session TLS handshake failed with `err`: a transfer error or the
 * device leaving the bus is the link's fault (USB_ERROR, DISCONNECTED).
 * Otherwise who refused whom: `device_answered` - the device got as far as
 * its certificate, then refused ours (TLS_FAILED: a stale record); the
 * device closing the connection (LP_ECLOSED: EOF or close_notify,
 * LP_ECONNRESET: a mux reset) before its certificate - TLS_FAILED too: a
 * device whose trust was reset accepts StartSession and then ends the hello
 * (failure catalogue 10); otherwise an OpenSSL error in the hello exchange
 * (a local "no protocols available", a handshake or protocol-version
 * alert): no protocol or cipher in common (TLS_HOST_POLICY: this host's TLS
 * settings, never the record or phone). */
void diag_rule_tls_failed(struct diag_report *r, struct diag_stage *s, int err, const char *msg,
			  bool device_answered);

/* How a Pair that did not succeed ended. */
struct diag_pair_end {
	int err;	     /* last answer: an LP_ELKD_* code, LP_ENODEV when the device
			   * left the bus, another lp_err */
	unsigned tries;	     /* Pair requests sent */
	double waited_s;     /* from the first request to the end */
	bool dialog_seen;    /* PairingDialogResponsePending was answered */
	const char *msg;     /* evidence for other errors; may be NULL */
	uint64_t usb_errors; /* failed transfers on the link so far (live; 0 offline) */
	int last_usb_err;    /* the last one's lp_err */
};
void diag_rule_pair_failed(struct diag_report *r, struct diag_stage *s,
			   const struct diag_pair_end *p);

/* The usbmux daemon `daemon` ("usbmuxd (pid 812)") holds the device but
 * does not serve it: `what` says how (it does not list the device on the
 * bus, it answered a request with an error code, lockdown through it
 * failed). Ends s FAIL; USBMUXD_ERROR with `daemon` and `what` as
 * evidence - never a phone or cable verdict. */
void diag_rule_usbmuxd(struct diag_report *r, struct diag_stage *s, const char *daemon,
		       const char *what);

/* The device left the bus during stage `s` (live: LP_ENODEV; capture: a
 * disconnect inside the stage). DISCONNECTED. `what` says what was under
 * way ("waiting for the Trust dialog"), may be NULL. */
void diag_rule_gone(struct diag_report *r, struct diag_stage *s, const char *what);

/* --- the host's own faults (never a phone, cable or port verdict) ------- */

/* A file of this host's pair-record store (a record, SystemConfiguration.plist
 * or their directory) could not be used: `err` and `msg` (the path and the
 * system error) as proto/pair_store.h reports them. A file that does not
 * parse (LP_EPLIST, LP_EBADMSG, LP_ETOOBIG) is PAIR_RECORD_CORRUPT; any
 * other failure to read or write it (EACCES, EROFS, ENOSPC, ENOTDIR, EIO,
 * not a regular file, a directory that cannot be made) PAIR_RECORD_ACCESS;
 * out of memory stays NONE. Ends `s` FAIL. */
void diag_rule_pair_store(struct diag_report *r, struct diag_stage *s, int err, const char *msg);
/* The class diag_rule_pair_store gives `err` (without a report). */
enum diag_verdict diag_pair_store_verdict(int err);

/* No Apple device was listed (stage `s`, evidence `msg`) and the USB
 * backend sees `controllers` host controllers (root hubs); -1 when it cannot
 * tell. None at all is NO_USB_HOST (no cable could help). Otherwise `k` is
 * what the kernel log says (NULL: not consulted, e.g. a simulated device;
 * `readable` false: the log could not be read as this user, named by
 * `source`): enumeration failures there are BAD_SIGNAL (the data lines
 * connect, the signal is bad); anything else is NO_DEVICE, "no data
 * connection at all" when a readable log shows no attempt (a charge-only
 * cable or a dead port). */
void diag_rule_nothing_found(struct diag_report *r, struct diag_stage *s, long controllers,
			     const char *msg, const struct usbk_findings *k, bool readable,
			     const char *source);

/* The USB backend would not start at all (`msg`: libusb_init's error - no
 * usbfs, sysfs or hotplug socket, as in a locked-down container):
 * NO_USB_HOST, with libusb's words in the evidence. */
void diag_rule_usb_unavailable(struct diag_report *r, struct diag_stage *s, const char *msg);

/* --udid `udid` names no connected device. `n` devices are connected;
 * `connected` lists them ("UDID (bus 1 address 2), ..."); `where` says
 * whose list it is ("on USB", "listed by usbmuxd at /var/run/usbmuxd").
 * UDID_NOT_FOUND. */
void diag_rule_udid_not_found(struct diag_report *r, struct diag_stage *s, const char *udid,
			      size_t n, const char *connected, const char *where);

/* The usbmux daemon is needed but cannot be reached: `err` LP_ENOENT (not
 * running: no socket, or nothing listening), LP_EACCES (no permission on
 * its socket), LP_EINVAL (an address that does not parse); `msg` names the
 * address and the system error. USBMUXD_UNREACHABLE. */
void diag_rule_usbmuxd_unreachable(struct diag_report *r, struct diag_stage *s, int err,
				   const char *msg);

/* The replay device reports `divergence` (what the host asked, what the
 * recording has): whatever stage then failed, the replay was driven off
 * the recording - REPLAY_DIVERGED, the failing stage named in the evidence.
 * No-op when divergence is NULL or "". */
void diag_rule_replay_diverged(struct diag_report *r, const char *divergence);

/* analyze: the capture ends at packet `pkt` inside stage `s`, before the
 * exchange under way (`what`, may be NULL) finished: the capture cannot say
 * how the session ended. Ends `s` FAIL; CAPTURE_TRUNCATED. */
void diag_rule_capture_ends(struct diag_report *r, struct diag_stage *s, uint64_t pkt,
			    const char *what);

/* analyze: the capture holds no packets at all: no device appeared on the
 * captured bus while it ran - what linkprobe's own capture of a run that
 * found no device holds, so NO_DEVICE as that run said. A capture started
 * after the phone was plugged in holds nothing of it either (usbmon shows an
 * enumeration only when it happens), so the remedy adds how to capture
 * again. Ends `s` FAIL. */
void diag_rule_capture_empty(struct diag_report *r, struct diag_stage *s);

/* analyze: the exchange stopped in stage `s` (`what` says how) and the
 * capture shows the device breaking usbmux or lockdown `n` times, `first`
 * the first of them. Ends `s` FAIL; PROTOCOL_ERROR with that as evidence.
 * Only the device's own violations count: silences, the host's side and
 * the capture file's quirks are notes, never this verdict. */
void diag_rule_protocol_violation(struct diag_report *r, struct diag_stage *s, const char *what,
				  uint64_t n, const char *first);

/* The exchange stopped in stage `s` (`what` says how) while the host's bulk
 * OUT transfers waited `secs` seconds untaken: the device refused (NAKed)
 * what the host sent, so the request never reached it - not an unanswered
 * request. Ends `s` FAIL; USB_ERROR. A live run: its wait ran out with OUT
 * stalled that long (pkt 0); analyze: the transfer submitted at packet `pkt`
 * was cancelled untaken. Either counts once OUT made no progress for
 * DIAG_OUT_UNTAKEN_NS: a healthy device takes an OUT transfer within
 * milliseconds, and a host that gives up sooner (^C) says nothing of it. */
#define DIAG_OUT_UNTAKEN_NS 1000000000ull
void diag_rule_out_untaken(struct diag_report *r, struct diag_stage *s, const char *what,
			   double secs, uint64_t pkt);

/* analyze: as diag_rule_protocol_violation, when it is the host's side
 * (the program driving the device, or usbmuxd) that sent malformed
 * usbmux/lockdown data: NONE - the capture cannot judge the device or the
 * cable - with that as evidence and a remedy about the host tool. */
void diag_rule_host_violation(struct diag_report *r, struct diag_stage *s, const char *what,
			      uint64_t n, const char *first);

/* The host left the device unconfigured (SET_CONFIGURATION 0: Debian's
 * usbmuxd udev rule sends it, then usbmuxd selects the usbmux configuration)
 * and nothing selected another: no usbmux client claimed the device -
 * usbmuxd not running, or not started by udev. `mux_config` is the
 * configuration that offers usbmux (0: unknown). Ends `s` FAIL;
 * USBMUXD_UNREACHABLE, a host fault: never the phone's or the cable's. */
void diag_rule_unconfigured(struct diag_report *r, struct diag_stage *s, unsigned mux_config);

/* analyze: the exchange stopped in stage `s` (`what`) in a capture whose
 * records of the device were clipped - `n` of them, the first at packet
 * `pkt` with `kept` of `len` bytes: by the file's snap length or usbmon's
 * own (dumpcap/tcpdump -s), so what happened next may be in the bytes cut
 * off. Ends `s` FAIL; CAPTURE_TRUNCATED, with the advice to capture without
 * a snap length - never a verdict on the device or the link. */
void diag_rule_capture_clipped(struct diag_report *r, struct diag_stage *s, const char *what,
			       uint64_t n, uint64_t pkt, uint32_t kept, uint32_t len);

/* The cable test's facts after its round trips. */
struct diag_cable_facts {
	uint64_t rounds;	      /* probe rounds (0: unknown, e.g. from a capture) */
	uint64_t ctrl, mux, lockdown; /* successful round trips of each kind */
	uint64_t errors;	      /* failed transfers and protocol errors */
	uint64_t protocol_errors; /* of those, the device broke usbmux/lockdown (0: not known) */
	uint64_t reenums;	  /* times the device left the bus and came back */
	bool gone;		  /* it left the bus and did not come back */
	double speed_mbps;	  /* link speed; 0 = not known */
	bool ss_capable, ss_plus; /* the device's BOS offers SuperSpeed (Plus) */
	double secs;		  /* how long the test ran */
	double out_untaken_s;	  /* at the end, OUT took nothing for this long */
	const char *first_error;  /* may be NULL */
};

/* The verdict alone: DISCONNECTED if the device did not come back; else,
 * with errors and no re-enumeration, PROTOCOL_ERROR when every error was the
 * device breaking usbmux/lockdown (a device fault no cable causes), USB_ERROR
 * when control transfers were answered but no usbmux or lockdown round trip
 * ever completed (halted or NAKing bulk endpoints: the device, not the
 * cable), or when, with no re-enumeration, bulk OUT had taken nothing for
 * DIAG_OUT_UNTAKEN_NS or more when the test ended, errors counted or not (a
 * cable that loses transfers fails them; it does not leave OUT NAKed); else
 * FLAKY on any error or re-enumeration (FLAKY wins over DEGRADED:
 * fix the link before judging its speed), else DEGRADED below high speed
 * (480 Mb/s) when the speed is known, or below SuperSpeed for a device whose
 * BOS says it can do SuperSpeed (a USB 2 cable or port), else GOOD. */
enum diag_verdict diag_cable_verdict(const struct diag_cable_facts *f);

/* Hubs between the device and the root port, from a port path ("1-2.3":
 * root port 2, then port 3 of a hub: 1 hub; "" unknown: 0). */
unsigned diag_hubs(const char *port_path);
/* Where the port path puts the device, for a sentence: "directly on a root
 * port", "through 1 hub", "through hubs". */
const char *diag_hubs_phrase(const char *port_path);
/* A link verdict (FLAKY, DEGRADED, USB_ERROR, DISCONNECTED) on a device
 * plugged in through a hub: the remedy adds "plug it straight into the
 * computer" with the port path. No-op otherwise. */
void diag_note_hubs(struct diag_report *r, const char *port_path);

/* End the "round trips" stage `s` with the facts' sentence (FAIL when the
 * verdict is not GOOD/DEGRADED) and set the verdict. */
void diag_rule_cable(struct diag_report *r, struct diag_stage *s, const struct diag_cable_facts *f);

/* What a link of `speed_mbps` moves in practice, in MB/s (10^6 bytes/s):
 * what real tools measure through usbmux, not the signalling rate - 480 Mb/s
 * ~40 MB/s, 12 Mb/s ~1 MB/s. Above 480 Mb/s also ~40 MB/s: the device's
 * usbmux/AFC stack stays near the USB 2.0 figure whatever the link speed (AFC
 * 22-35 MB/s, an iPad Pro at 10 Gb/s ~35 MB/s: libimobiledevice#1126); a
 * SuperSpeed link is judged by its negotiated speed (descriptors), not by
 * its data rate. 0 when the speed is unknown. */
double diag_practical_mbytes(double speed_mbps);

/* Below this fraction of diag_practical_mbytes a link is DEGRADED. */
#define DIAG_THROUGHPUT_MIN_FRACTION 0.25

/* The throughput stage's facts: a file written to the device and read back. */
struct diag_throughput_facts {
	uint64_t bytes;					 /* each way */
	double write_mbytes;				 /* MB/s over the whole write */
	double read_mbytes;				 /* MB/s over the whole read */
	double write_min, write_max, read_min, read_max; /* per-chunk MB/s */
	double speed_mbps;				 /* link speed; 0 = unknown */
	double secs;					 /* the whole measurement */
	bool cut; /* the default size was cut short by its time budget */
};

/* End the throughput stage `s` with the figures; when the verdict so far is
 * GOOD and the slower direction is under DIAG_THROUGHPUT_MIN_FRACTION of the
 * link's practical rate, the verdict becomes DEGRADED with the numbers
 * (FLAKY, DEGRADED by speed and worse verdicts stand). */
void diag_rule_throughput(struct diag_report *r, struct diag_stage *s,
			  const struct diag_throughput_facts *f);

/* The throughput stage failed with `err` (msg: the evidence). `refused`:
 * the device's file service answered with an error status (full, a path
 * it does not allow): the stage fails and the round trips' verdict stands.
 * A failed or timed-out transfer on a link judged GOOD or DEGRADED makes it
 * FLAKY (the cable test's rule: any error); the device leaving is
 * DISCONNECTED; anything else is diag_rule_err's (a locked device, a stale
 * pairing, TLS...). */
void diag_rule_throughput_failed(struct diag_report *r, struct diag_stage *s, int err,
				 const char *msg, bool refused);

#endif
