/* kmsg.h - what the kernel log says about USB enumeration, for the case
 * where nothing enumerated at all: a device whose data lines connect but
 * whose signal is bad leaves "device descriptor read/64, error -71" or
 * "unable to enumerate USB device" behind; a charge-only cable leaves no
 * trace at all.
 *
 * Source: /dev/kmsg when readable (one record per read: "PRI,SEQ,USEC,FLAGS;
 * TEXT", continuation lines start with a space), or a file of such lines
 * (LINKPROBE_KMSG, for tests and for a log copied off another machine). Both
 * go through the same reader and the same line parser. Records are
 * untrusted text: parsed with bounds, never more than USBK_MAX_BYTES read,
 * and what is kept is sanitized. */
#ifndef LP_USB_KMSG_H
#define LP_USB_KMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/base/lp_error.h"

#define USBK_MAX_BYTES (4u << 20) /* read at most this much of the log */
#define USBK_LINE_MAX 1024	  /* a record longer than this is skipped */

/* One kmsg record line ("6,1234,5678901,-;usb 1-2: ..."), parsed. */
struct usbk_record {
	unsigned prio;	  /* syslog priority (facility bits dropped) */
	uint64_t seq;	  /* sequence number */
	uint64_t ts_usec; /* monotonic time of the record, us since boot */
	const char *text; /* borrowed: the message (points into the line) */
	size_t text_len;
};

/* 0, LP_EBADMSG (not a kmsg record: no "PRI,SEQ,USEC,FLAGS;" prefix). */
int usbk_parse_line(const char *line, size_t len, struct usbk_record *out);

/* What the records say about enumeration. */
struct usbk_findings {
	unsigned records;     /* records looked at (in the time window) */
	unsigned attempts;    /* "new ... USB device number N": the hub saw something */
	unsigned errors;      /* enumeration failures (descriptor read, address, enumerate) */
	unsigned enumerated;  /* "New USB device found": something did enumerate */
	char last_error[160]; /* the last failure line, sanitized ("usb 1-2: device ...") */
	char port[32];	      /* its port ("1-2"), "" unknown */
};

/* Feed one record line; it counts if its time is >= since_usec. */
void usbk_feed_line(struct usbk_findings *f, const char *line, size_t len, uint64_t since_usec);

/* Read every record of `path` ("/dev/kmsg" or a file of kmsg lines),
 * non-blocking, up to USBK_MAX_BYTES, keeping those at or after
 * since_usec. 0 (even with no records), LP_EACCES (not readable as this
 * user), LP_ENOENT, LP_EIO. */
int usbk_scan(const char *path, uint64_t since_usec, struct usbk_findings *out,
	      struct lp_errinfo *e);

#endif
