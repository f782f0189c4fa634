/* cap_redact.h - the payload redactor captures use (src/capture/cap_redact.c):
 * the capture tap and the synthetic TCP view feed it the bytes where secrets
 * can be. */
#ifndef LP_CAP_REDACT_H
#define LP_CAP_REDACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------
 * Redaction of secrets in captured payload bytes.
 *
 * Found and blanked:
 *   XML plist   <key>EscrowBag</key> <data>BASE64</data>   (every key of
 *               the one list, src/base/lp_secret.h), any whitespace
 *               between </key> and <data>
 *   PEM         -----BEGIN ...PRIVATE KEY----- BASE64 -----END ...
 * Every base64 character of the body is replaced by the next letter of a
 * repeating "REDACTED"; whitespace, newlines and every other byte stay, so
 * lengths, mux framing and the plist's shape are unchanged and the result is
 * still valid base64.
 *
 * Across transfers (a redactor per endpoint keeps state):
 *   - a body cut by a transfer boundary is continued in the next transfer on
 *     that endpoint (after skipping a leading usbmux TCP header if there is
 *     one) up to its closing '<' / '-';
 *   - an opening tag cut by the boundary is found by rescanning the last
 *     CAP_REDACT_CARRY bytes of the previous transfer together with the new
 *     one.
 * Limits: bytes already written stay as written (only the part of a secret in
 * the current transfer and later ones is blanked, which is all of the body,
 * since the body comes after the opening); an opening spread over more than
 * CAP_REDACT_CARRY bytes (absurd whitespace) is missed, and so is one
 * interleaved with another mux connection's packet when a redactor is fed
 * whole transfers (the tap feeds each lockdown connection its own payload,
 * so it is not); encrypted (TLS) payload is opaque anyway.
 */
#define CAP_REDACT_CARRY 160

#define CAP_REDACT_BPLIST_MAX (4u << 20) /* a binary plist body longer than this is not one */

struct cap_redactor {
	uint8_t mode;	  /* 0 outside, 1 in an XML <data> body, 2 in a PEM body */
	uint8_t phase;	  /* position in "REDACTED" */
	uint32_t bp_body; /* bytes of a binary plist body still to come (it ran
			   * past a transfer) */
	bool bp_armed;	  /* ... and it held a secret key: blank them all */
	size_t ncarry;
	uint8_t carry[CAP_REDACT_CARRY];
};

void cap_redactor_init(struct cap_redactor *r);
/* Redact buf[0..len) in place, continuing from earlier calls. Returns the
 * number of bytes replaced. */
size_t cap_redactor_feed(struct cap_redactor *r, uint8_t *buf, size_t len);
/* One-shot, no state: returns the number of bytes replaced. */
size_t cap_redact(uint8_t *buf, size_t len);
/* As cap_redactor_feed for the tap: `skip_hdr`: buf is a whole transfer that
 * may start with a mux TCP header (a continuation skips it); the joined view
 * of carried and new bytes lives in *scratch (grown, kept by the caller). */
size_t cap_redactor_feed_scratch(struct cap_redactor *r, uint8_t *buf, size_t len, bool skip_hdr,
				 uint8_t **scratch, size_t *scratch_cap);

#endif
