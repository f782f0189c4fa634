/* cap_redact.c - the payload redactor: secret plist values (XML <data>
 * bodies, PEM private keys, binary plist data objects) blanked in place,
 * across transfer boundaries; see cap_redact.h. Moved out of cap_tap.c,
 * which decides where it looks. */
#include "src/capture/cap_redact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mux.h"
#include "src/base/lp_cursor.h"
#include "src/base/lp_secret.h"

/* ---- redaction ----------------------------------------------------------- */

static const char redact_marker[8] = {'R', 'E', 'D', 'A', 'C', 'T', 'E', 'D'};

enum { CAP_RD_NONE = 0, CAP_RD_XML = 1, CAP_RD_PEM = 2 };

static bool is_b64(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/' || c == '=';
}

static bool is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void cap_redactor_init(struct cap_redactor *r)
{
	memset(r, 0, sizeof(*r));
}

/* Blank the body from s[i]; positions below `mut` were written already and
 * are left alone. Returns the index of the byte that ends the body, or n if
 * the body runs past the end (r->mode stays set). */
static size_t redact_body(struct cap_redactor *r, uint8_t *s, size_t i, size_t n, size_t mut,
			  size_t *count)
{
	for (; i < n; i++) {
		uint8_t c = s[i];

		if (is_b64(c)) {
			if (i >= mut) {
				s[i] = (uint8_t)redact_marker[r->phase];
				(*count)++;
			}
			r->phase = (uint8_t)((r->phase + 1) % sizeof(redact_marker));
			continue;
		}
		/* PEM bodies may hold header lines ("Proc-Type: 4,ENCRYPTED"):
		 * only the dashes of -----END end them; XML bodies end at '<' */
		if (r->mode == CAP_RD_XML ? is_ws(c) : (c != '-' && c >= 0x09 && c < 0x7f))
			continue;
		return i;
	}
	return n;
}

static bool at(const uint8_t *s, size_t i, size_t n, const char *lit)
{
	size_t k = strlen(lit);

	return n - i >= k && memcmp(s + i, lit, k) == 0;
}

/* If a complete opening starts at s[i], return its length and set *mode. */
static size_t match_open(const uint8_t *s, size_t i, size_t n, uint8_t *mode)
{
	size_t j, k, lim;

	if (s[i] == '<') {
		if (!at(s, i, n, "<key>"))
			return 0;
		/* the key names come from the one list (src/base/lp_secret.h) */
		for (k = 0; lp_secret_keys[k]; k++) {
			j = i + 5;
			if (at(s, j, n, lp_secret_keys[k]) &&
			    at(s, j + strlen(lp_secret_keys[k]), n, "</key>"))
				break;
		}
		if (!lp_secret_keys[k])
			return 0;
		j = i + 5 + strlen(lp_secret_keys[k]) + 6;
		while (j < n && is_ws(s[j]))
			j++;
		if (!at(s, j, n, "<data>"))
			return 0;
		*mode = CAP_RD_XML;
		return j + 6 - i;
	}
	if (!at(s, i, n, "-----BEGIN "))
		return 0;
	j = i + 11;
	lim = n - j > 64 ? j + 64 : n;
	while (j < lim &&
	       ((s[j] >= 'A' && s[j] <= 'Z') || (s[j] >= '0' && s[j] <= '9') || s[j] == ' '))
		j++;
	if (j - i < 11 + 11 || memcmp(s + j - 11, "PRIVATE KEY", 11) != 0 || !at(s, j, n, "-----"))
		return 0;
	*mode = CAP_RD_PEM;
	return j + 5 - i;
}

/* ---- binary plists -----------------------------------------------------
 * A lockdown message may be a binary plist ("bplist00", layout in
 * proto/plist_depth.c) in which a secret's key is an ASCII string object
 * (marker 0x5n) and its value a data object (0x4n) elsewhere in the object
 * table. When the whole body (its length is the lockdown prefix just before
 * the magic) is in view, the data objects that are values of secret keys are
 * blanked exactly. When the body runs past the transfer, the bytes from the
 * first secret key name to the end of the body are blanked: the writers we
 * know (CoreFoundation, libplist) put a key's object before its value's. */

#define BP_TRAILER 32

static uint64_t bp_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Offset of object `idx` in b[0..len), 0 if out of bounds. */
static size_t bp_obj(const uint8_t *b, size_t len, size_t ot, unsigned osz, uint64_t n,
		     uint64_t idx)
{
	uint64_t off;

	if (idx >= n)
		return 0;
	off = bp_be(b + ot + idx * osz, osz);
	return off >= 8 && off < ot ? (size_t)off : 0;
}

/* Count field of the object at o (low nibble or a following int object):
 * *count and the offset of its payload; false if malformed. */
static bool bp_count(const uint8_t *b, size_t end, size_t o, uint64_t *count, size_t *payload)
{
	uint64_t c = b[o] & 0x0F;
	size_t p = o + 1;

	if (c == 0x0F) {
		unsigned nb;

		if (p >= end || (b[p] & 0xF0) != 0x10 || (b[p] & 0x0F) > 3)
			return false;
		nb = 1u << (b[p] & 0x0F);
		if (nb > end - p - 1)
			return false;
		c = bp_be(b + p + 1, nb);
		p += 1 + nb;
	}
	*count = c;
	*payload = p;
	return true;
}

static bool bp_is_secret_key(const uint8_t *b, size_t end, size_t o)
{
	uint64_t c;
	size_t p;

	if ((b[o] & 0xF0) != 0x50 || !bp_count(b, end, o, &c, &p) || c > end - p)
		return false;
	for (size_t k = 0; lp_secret_keys[k]; k++)
		if (strlen(lp_secret_keys[k]) == c && memcmp(b + p, lp_secret_keys[k], c) == 0)
			return true;
	return false;
}

/* Counts the bytes it changes: a data object that several dictionaries
 * name (a binary plist may share objects) is blanked, and counted, once. */
static void blank(uint8_t *b, size_t from, size_t to, size_t mut, size_t *count)
{
	for (size_t i = from < mut ? mut : from; i < to; i++) {
		uint8_t m = (uint8_t)redact_marker[(i - from) % sizeof(redact_marker)];

		if (b[i] != m) {
			b[i] = m;
			(*count)++;
		}
	}
}

/* Redact the data values of secret keys in the complete bplist b[0..len);
 * positions below mut (relative to b) are read-only. */
static void bp_redact_whole(uint8_t *b, size_t len, size_t mut, size_t *count)
{
	unsigned osz, rsz;
	uint64_t n, ot;

	if (len < 8 + BP_TRAILER)
		return;
	osz = b[len - BP_TRAILER + 6];
	rsz = b[len - BP_TRAILER + 7];
	n = bp_be(b + len - 24, 8);
	ot = bp_be(b + len - 8, 8);
	if (osz < 1 || osz > 8 || rsz < 1 || rsz > 8 || ot < 8 || ot >= len - BP_TRAILER ||
	    n > (len - BP_TRAILER - ot) / osz)
		return;
	for (uint64_t i = 0; i < n; i++) {
		size_t o = bp_obj(b, len, (size_t)ot, osz, n, i), p;
		uint64_t c;

		if (!o || (b[o] & 0xF0) != 0xD0 || !bp_count(b, (size_t)ot, o, &c, &p) ||
		    c > ((size_t)ot - p) / rsz / 2)
			continue;
		for (uint64_t k = 0; k < c; k++) {
			size_t ko = bp_obj(b, len, (size_t)ot, osz, n, bp_be(b + p + k * rsz, rsz));
			size_t vo = bp_obj(b, len, (size_t)ot, osz, n,
					   bp_be(b + p + (c + k) * rsz, rsz));
			uint64_t dl;
			size_t dp;

			if (!ko || !vo || !bp_is_secret_key(b, (size_t)ot, ko) ||
			    (b[vo] & 0xF0) != 0x40 || !bp_count(b, (size_t)ot, vo, &dl, &dp) ||
			    dl > (size_t)ot - dp)
				continue;
			blank(b, dp, dp + (size_t)dl, mut, count);
		}
	}
}

/* A "bplist00" at view[i]: redact it. Returns the offset in view where
 * scanning may go on (the end of the body, or n). */
static size_t bp_redact(struct cap_redactor *r, uint8_t *view, size_t i, size_t n, size_t mut,
			size_t *count)
{
	uint32_t body = 0;
	size_t end;

	if (i >= 4)
		body = (uint32_t)bp_be(view + i - 4, 4);
	if (body < 8 + BP_TRAILER || body > CAP_REDACT_BPLIST_MAX)
		body = 0; /* no lockdown prefix in view: assume it runs to the end */
	if (body && body <= n - i) {
		bp_redact_whole(view + i, body, mut > i ? mut - i : 0, count);
		return i + body;
	}
	end = n;
	r->bp_body = body ? (uint32_t)(i + body - n) : CAP_REDACT_BPLIST_MAX;
	r->bp_armed = false;
	for (size_t k = i + 8; k < n; k++) {
		if ((view[k] & 0xF0) == 0x50 && bp_is_secret_key(view, n, k)) {
			blank(view, k, n, mut, count);
			r->bp_armed = true;
			break;
		}
	}
	return end;
}

/* Length of a usbmux TCP header (mux header + 20-byte TCP header) at the
 * start of a transfer, 0 if it does not start with one. Text never holds NUL
 * bytes, so "00 00 00 06" cannot be the middle of a base64 body. */
static size_t mux_hdr_len(const uint8_t *b, size_t len)
{
	struct lp_rd r;
	uint32_t proto, plen, magic;

	lp_rd_init(&r, b, len);
	proto = lp_rd_be32(&r);
	plen = lp_rd_be32(&r);
	magic = lp_rd_be32(&r);
	if (len < 8 || proto != 6)
		return 0;
	if (len >= 16 && magic == 0xFEEDFACEu)
		return len < 36 ? len : 36;
	if (plen == len)
		return len < 28 ? len : 28;
	return 0;
}

/* A growable scratch buffer owned by the caller (NULL: malloc per call). */
struct redact_scratch {
	uint8_t **buf;
	size_t *cap;
};

static uint8_t *scratch_get(const struct redact_scratch *sc, size_t n)
{
	uint8_t *b;

	if (!sc)
		return malloc(n);
	if (*sc->cap < n) {
		size_t c = n < 65536 ? 65536 : n;

		b = realloc(*sc->buf, c);
		if (!b)
			return NULL;
		*sc->buf = b;
		*sc->cap = c;
	}
	return *sc->buf;
}

/* skip_hdr: buf is a whole transfer that may start with a mux TCP header
 * (continuations skip it); else buf is payload only. */
static size_t redactor_feed(struct cap_redactor *r, uint8_t *buf, size_t len, bool skip_hdr,
			    const struct redact_scratch *sc)
{
	size_t count = 0, p = 0, n, mut, resolved = 0, start, i;
	uint8_t *view;
	bool joined;

	if (!buf || !len)
		return 0;
	if (r->bp_body && r->bp_armed) {
		/* the rest of a binary plist that held a secret key */
		size_t h = skip_hdr ? mux_hdr_len(buf, len) : 0, m = len - h;

		if (m > r->bp_body)
			m = r->bp_body;
		blank(buf, h, h + m, 0, &count);
		r->bp_body -= (uint32_t)m;
		if (!r->bp_body)
			r->bp_armed = false;
		r->ncarry = 0;
		if (h + m == len)
			return count;
		p = h + m;
	} else if (r->mode != CAP_RD_NONE) {
		p = skip_hdr ? mux_hdr_len(buf, len) : 0;
		p = redact_body(r, buf, p, len, 0, &count);
		if (p == len)
			return count;
		r->mode = CAP_RD_NONE;
	} else if (r->ncarry && skip_hdr) {
		p = mux_hdr_len(buf, len);
	}

	/* Rescan the previous transfer's tail with this one so an opening cut
	 * by the boundary is found; the tail itself is read-only. */
	joined = r->ncarry > 0;
	view = joined ? scratch_get(sc, r->ncarry + (len - p)) : NULL;
	if (view) {
		memcpy(view, r->carry, r->ncarry);
		memcpy(view + r->ncarry, buf + p, len - p);
		n = r->ncarry + (len - p);
		mut = r->ncarry;
	} else {
		joined = false;
		view = buf + p;
		n = len - p;
		mut = 0;
	}
	i = 0;
	if (r->bp_body) {
		/* inside a binary plist that began earlier: look for a secret
		 * key name (the carry catches one cut by the boundary) */
		size_t portion = n - mut < r->bp_body ? n - mut : r->bp_body;

		for (size_t k = 0; k < mut + portion; k++) {
			if ((view[k] & 0xF0) == 0x50 && bp_is_secret_key(view, mut + portion, k)) {
				blank(view, k, mut + portion, mut, &count);
				r->bp_armed = true;
				break;
			}
		}
		r->bp_body -= (uint32_t)portion;
		if (!r->bp_body)
			r->bp_armed = false;
		i = mut + portion;
		if (r->bp_armed)
			resolved = n;
	}
	for (; i < n; i++) {
		uint8_t mode = CAP_RD_NONE;
		size_t ol, end;

		if (view[i] == 'b' && at(view, i, n, "bplist00")) {
			end = bp_redact(r, view, i, n, mut, &count);
			if (end >= n) {
				/* armed: nothing to carry; else keep the tail so a
				 * key name cut by the boundary is seen next time */
				if (r->bp_armed)
					resolved = n;
				break;
			}
			resolved = end;
			i = end - 1;
			continue;
		}
		if (view[i] != '<' && view[i] != '-')
			continue;
		ol = match_open(view, i, n, &mode);
		if (!ol)
			continue;
		r->mode = mode;
		r->phase = 0;
		end = redact_body(r, view, i + ol, n, mut, &count);
		if (end == n)
			break;
		r->mode = CAP_RD_NONE;
		resolved = end;
		i = end - 1;
	}
	if (r->mode != CAP_RD_NONE) {
		r->ncarry = 0;
	} else {
		start = n > CAP_REDACT_CARRY ? n - CAP_REDACT_CARRY : 0;
		if (start < resolved)
			start = resolved;
		r->ncarry = n - start;
		memmove(r->carry, view + start, r->ncarry);
	}
	if (joined) {
		memcpy(buf + p, view + mut, len - p);
		if (!sc)
			free(view);
	}
	return count;
}

size_t cap_redactor_feed(struct cap_redactor *r, uint8_t *buf, size_t len)
{
	return redactor_feed(r, buf, len, true, NULL);
}

size_t cap_redact(uint8_t *buf, size_t len)
{
	struct cap_redactor r;

	cap_redactor_init(&r);
	return cap_redactor_feed(&r, buf, len);
}

size_t cap_redactor_feed_scratch(struct cap_redactor *r, uint8_t *buf, size_t len, bool skip_hdr,
				 uint8_t **scratch, size_t *scratch_cap)
{
	struct redact_scratch sc = {scratch, scratch_cap};

	return redactor_feed(r, buf, len, skip_hdr, &sc);
}
