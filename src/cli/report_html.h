/* report_html.h - the self-contained HTML report (`--report FILE.html`).
 *
 * One file, inline CSS and SVG, no script, no external resource (a
 * Content-Security-Policy of default-src 'none' makes any slip an error the
 * browser reports). Rendered from the report's JSON object (diag_to_json: the
 * verdict, remedy, evidence, device, stages, metrics with latency histograms,
 * the analyzer's anomalies) plus series the JSON does not carry: every USB
 * transfer (live runs collect them through a transport observer; the
 * analyzer reads them from the capture) and the progress notes of running
 * stages (the Trust countdown). Live runs and `analyze` share it.
 *
 * Every string that came from a device, a capture or a file name goes
 * through rep_html_escape(). The file is written to a temporary file in the
 * same directory and renamed over the target: never half-written. */
#ifndef LP_REPORT_HTML_H
#define LP_REPORT_HTML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "src/base/lp_error.h"
#include "usb/transport.h"

/* How a transfer ended, as the report colours it. */
enum rep_xfer_kind {
	REP_X_OK = 0,
	REP_X_ERROR, /* bus/protocol error, overflow, could not submit */
	REP_X_STALL, /* endpoint stalled */
	REP_X_TIMEOUT,
	REP_X_CANCELLED, /* by the host (normal at close) */
	REP_X_GONE,	 /* the device left the bus */
};

struct rep_xfer {
	uint64_t start_ns, end_ns; /* relative to the report's start */
	uint32_t bytes;
	uint32_t packet;  /* capture packet number of the completion; 0 = live run */
	uint8_t endpoint; /* bit 7 = IN; control 0x00/0x80 */
	uint8_t type;	  /* enum tr_xfer_type (usbmon numbering) */
	uint8_t kind;	  /* enum rep_xfer_kind */
};

#define REP_MAX_XFERS 200000 /* beyond this transfers are counted, not kept */
#define REP_MAX_MARKS 256
#define REP_MARK_TEXT 256

struct rep_mark {
	uint64_t t_ns; /* relative to the report's start */
	char stage[48];
	char text[REP_MARK_TEXT];
};

struct rep_data {
	uint64_t t0_ns;	    /* clock value of the report's start (live runs) */
	const char *source; /* device spec or capture file name (borrowed) */
	struct rep_xfer *x; /* owned */
	size_t nx, capx;
	uint64_t dropped;   /* transfers over REP_MAX_XFERS */
	struct rep_mark *m; /* owned */
	size_t nm, capm;
	bool frozen;	       /* released: late observer calls are ignored */
	const char *xfer_note; /* why there are no transfers (static string), or NULL */
};

void rep_data_init(struct rep_data *d, uint64_t t0_ns, const char *source);
/* Frees the series; the struct stays valid (frozen) for a late observer call. */
void rep_data_release(struct rep_data *d);
/* 0 or LP_ENOMEM; over REP_MAX_XFERS the transfer is only counted. */
int rep_add_xfer(struct rep_data *d, const struct rep_xfer *x);
/* A progress note of a running stage; consecutive duplicates are dropped. */
int rep_add_mark(struct rep_data *d, uint64_t t_ns, const char *stage, const char *text);
/* Transport observer (ud = struct rep_data *): records every completion and
 * every failed submit, times relative to d->t0_ns. */
void rep_observe(void *ud, enum tr_event ev, const struct tr_xfer *x, int submit_err);

/* analyze: add the USB transfers of the capture `path` (read again with the
 * capture reader; times from its first packet, like the analyzer's stages).
 * "-" (a pipe) cannot be read twice: sets d->xfer_note and returns 0. */
int rep_collect_capture(struct rep_data *d, const char *path, int usbmuxd_port,
			struct lp_errinfo *e);

/* HTML-escape `src` (NUL-terminated, any bytes) for text and quoted
 * attribute contexts: & < > " ' become entities; control characters (C0
 * except tab and newline, DEL, C1), bidirectional overrides/isolates and
 * invalid UTF-8 become U+FFFD. Returns a malloc'd string (owned by the
 * caller) or NULL on allocation failure. */
char *rep_html_escape(const char *src);

/* Render the page. `report` borrowed (diag_to_json's object); `d` borrowed,
 * may be NULL. *out is malloc'd (owned by the caller), *len its length.
 * 0 or LP_ENOMEM. */
int rep_html_render(json_object *report, const struct rep_data *d, char **out, size_t *len);

/* Render and write `path` atomically (temp file, fsync, rename; mode 0666
 * less the umask). 0 or an lp_err with detail. */
int rep_html_write(const char *path, json_object *report, const struct rep_data *d,
		   struct lp_errinfo *e);

#endif
