/* analyze.h - passive analysis of a capture: the same stages, verdict and
 * remedy a live `trust` or `--cable-test` run gives, read from the wire.
 *
 * Input: a pcap or pcapng file read through libpcap. Link types:
 *   220 / 189  Linux usbmon (64- / 48-byte header)        -> USB decoding
 *   249        USBPcap (Windows)                          -> USB decoding
 *   0, 1, 12/101/14, 108, 113, 228, 229, 276  (loopback, Ethernet, raw IP,
 *              Linux cooked): IPv4/IPv6 TCP carrying a relayed usbmuxd socket
 *              (socat style) -> usbmuxd client protocol decoding
 * USB: devices by (bus, address), descriptors, the configuration the host
 * selected, usbmux (VERSION, connections, refusals, RSTs; packets
 * reassembled across transfers), lockdown plaintext and the start of TLS,
 * transfer errors, stalls, disconnects, gaps. usbmuxd relays: device list,
 * Connect results, the lockdown exchange behind them.
 *
 * Malformed input is data: every problem becomes an anomaly string in the
 * report (with the packet number); only a file libpcap cannot open or an
 * unsupported link type is an error. Nothing here prints or exits.
 *
 * The file is read by the capture reader (src/capture/reader.h); the
 * analyzer keeps facts (analyze_facts.h) and reports (analyze_report.c).
 *
 * Reference: doc/protocol.md; Linux usbmon.rst; USBPcap capture format
 * (desowin.org/usbpcap/captureformat.html). */
#ifndef LP_ANALYZE_H
#define LP_ANALYZE_H

#include <stdio.h>

#include "src/base/lp_error.h"
#include "src/base/lp_log.h"
#include "src/diag/diag.h"

struct an_opts {
	int usbmuxd_port;	  /* TCP port of a relayed usbmuxd socket; 0 = detect */
	const struct lp_log *log; /* borrowed, may be NULL */
};

struct an;

/* New analyzer (NULL on allocation failure). opts borrowed, may be NULL. */
struct an *an_new(const struct an_opts *opts);
void an_free(struct an *a);

/* Fill `r` (after an_analyze_fp's reading; diag_init'ed by the caller on `clock`, which must be a virtual
 * clock: it is moved to each stage's capture time so stage start/duration
 * are relative to the first packet). Sets stages, device, verdict, metrics
 * (owned by r) and r->extra (connections, anomalies, devices). */
void an_report(struct an *a, struct diag_report *r, struct lp_clock *clock);

/* Anomalies recorded so far (for callers that print them). */
size_t an_anomaly_count(const struct an *a);
const char *an_anomaly(const struct an *a, size_t i);

/* Convenience: open `f` (adopted: closed in every case) with libpcap at
 * nanosecond precision, scan pcapng IDBs, read, report. 0, LP_EIO (libpcap cannot open it: detail says why), LP_EFORMAT
 * (unsupported link type) or LP_ENOMEM. */
int an_analyze_fp(FILE *f, const struct an_opts *opts, struct diag_report *r,
		  struct lp_clock *clock, struct lp_errinfo *e);

#endif
