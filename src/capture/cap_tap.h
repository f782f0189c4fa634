/* cap_tap.h - record every USB transfer of a transport context as usbmon
 * records in a capture file, with stage markers and secret redaction.
 *
 * The tap is a tr observer: each submit, completion and submit error becomes
 * one LINKTYPE_USB_LINUX_MMAPPED record (cap_usbmon.h) with the transfer's own
 * timestamps (env.clock wall time of submit_ns / done_ns), on a USB interface
 * of the writer. Interfaces are created lazily, one per device (bus, address,
 * attachment) the first time it shows a transfer, named "usbmon<bus>" like
 * the kernel's monitor and described with ids, speed and location, unless the
 * options fix one name/description for all.
 *
 * Stage markers: cap_tap_mark() text is attached as the pcapng comment of the
 * *next* record the tap writes (several pending markers are joined with a
 * newline). Chosen over an extra record because every record in the file then
 * stays a real usbmon event that Wireshark and the analyzer decode as such; a
 * marker with no transfer after it is dropped at cap_tap_free(). Classic pcap
 * has no comments: markers are lost there.
 *
 * Redaction (default on): before a record is written its data is passed
 * through a cap_redactor (see below) - only where secrets can be: each bulk
 * endpoint's transfers are followed as usbmux packets (length field, v1/v2
 * header from the device's VERSION reply or the v2 magic, packets spanning
 * transfers, several in one); the payload of a lockdown connection (TCP port
 * 62078 at either end) goes through that connection's own redactor, the
 * payload of any other connection is not read. Bytes the tracker cannot
 * place (control transfers, anything that is not usbmux, what follows a bad
 * length field, non-TCP packets) are scanned as a whole, as before. The
 * record is built in the writer's buffer (cap_packet_begin) and redacted
 * there: no copy and no allocation per record.
 *
 * Layering: src/capture, above proto (proto/mux.h's header sizes and ports). */
#ifndef LP_CAP_TAP_H
#define LP_CAP_TAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_error.h"
#include "src/capture/cap_redact.h"
#include "src/capture/cap_writer.h"
#include "usb/transport.h"

#define CAP_TAP_DEVS_MAX 16   /* devices (interfaces) per tap; later ones share the last */
#define CAP_TAP_EPS_MAX 32    /* endpoints with redaction state */
#define CAP_TAP_MARK_MAX 4096 /* pending marker text */

struct cap_tap_opts {
	bool no_redact;		    /* keep EscrowBag / private keys (--no-redact) */
	const char *if_name;	    /* NULL = "usbmon<bus>" per device */
	const char *if_description; /* NULL = built from the device */
	size_t data_max;	    /* bytes of data per record; 0 = CAP_USBMON_DATA_MAX */
};

struct cap_tap;

/* A tap not attached to any context (tests, replay): feed it events with
 * cap_tap_observe(). `clock` (borrowed, may be NULL: timestamps are then
 * taken as wall-clock ns already) converts submit_ns/done_ns to wall time.
 * `w` borrowed, must outlive the tap. opts may be NULL (defaults). */
int cap_tap_new(struct cap_writer *w, const struct lp_clock *clock, const struct cap_tap_opts *o,
		struct cap_tap **out);

/* The observer (a tr_observer_fn; ud = the tap). */
void cap_tap_observe(void *ud, enum tr_event ev, const struct tr_xfer *x, int submit_err);

/* cap_tap_new() on ctx->env.clock plus tr_add_observer(). The tap must stay
 * alive while ctx can still report transfers: call cap_tap_detach() or free
 * the context before cap_tap_free(). */
int cap_tap_attach(struct tr_ctx *ctx, struct cap_writer *w, const struct cap_tap_opts *o,
		   struct cap_tap **out, struct lp_errinfo *e);
/* Remove the tap's observer from its context (no-op if not attached). */
void cap_tap_detach(struct cap_tap *t);

/* Stage marker ("stage StartSession"), attached to the next record. `text`
 * borrowed (copied). LP_ETOOBIG if pending markers would exceed
 * CAP_TAP_MARK_MAX. */
int cap_tap_mark(struct cap_tap *t, const char *text);

/* First write error the observer met (observers cannot return errors), 0 if
 * none; records after it are not written. */
int cap_tap_error(const struct cap_tap *t);
/* Records written and bytes redacted so far. */
uint64_t cap_tap_records(const struct cap_tap *t);
uint64_t cap_tap_redacted(const struct cap_tap *t);

/* NULL ok. Does not detach (the context may already be gone). */
void cap_tap_free(struct cap_tap *t);

#endif
