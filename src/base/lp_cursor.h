/* lp_cursor.h - bounds-checked reads from untrusted bytes, and a matching writer.
 *
 * Reader: every getter checks `n > len - off` before touching memory. The first
 * overrun sets a sticky `err = LP_ETRUNC`; later reads return 0 and do nothing,
 * so a decoder can read a whole header and check `lp_rd_ok()` once. Decoders
 * report *truncated* (bytes not there, LP_ETRUNC) apart from *invalid* (bytes
 * contradict the spec, LP_EBADMSG) - the latter is the decoder's job.
 *
 * Writer: either fixed (caller's buffer) or growable (heap, capped). Overrun of
 * a fixed buffer or the cap sets a sticky LP_ETOOBIG; allocation failure
 * LP_ENOMEM. */
#ifndef LP_CURSOR_H
#define LP_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "src/base/lp_error.h"

struct lp_rd {
	const uint8_t *buf; /* borrowed */
	size_t len;
	size_t off;
	int err; /* 0 or LP_ETRUNC, sticky */
};

static inline void lp_rd_init(struct lp_rd *r, const void *buf, size_t len)
{
	r->buf = buf;
	r->len = buf ? len : 0;
	r->off = 0;
	r->err = 0;
}
static inline bool lp_rd_ok(const struct lp_rd *r)
{
	return r->err == 0;
}
static inline size_t lp_rd_left(const struct lp_rd *r)
{
	return r->err ? 0 : r->len - r->off;
}
/* true if n more bytes are available (does not set err) */
static inline bool lp_rd_has(const struct lp_rd *r, size_t n)
{
	return !r->err && n <= r->len - r->off;
}

/* The getters are inline: the capture reader calls them a few dozen times a
 * record (measured: 10 % of analyzing a lockdown-heavy capture went to the
 * calls). Each still checks the length first. */
/* Pointer to the next n bytes (borrowed from buf), advancing; NULL on overrun. */
static inline const uint8_t *lp_rd_ptr(struct lp_rd *r, size_t n)
{
	const uint8_t *p;

	if (r->err)
		return NULL;
	if (n > r->len - r->off) {
		r->err = LP_ETRUNC;
		return NULL;
	}
	p = r->buf + r->off;
	r->off += n;
	return p;
}

static inline uint8_t lp_rd_u8(struct lp_rd *r)
{
	const uint8_t *p = lp_rd_ptr(r, 1);
	return p ? p[0] : 0;
}

static inline uint16_t lp_rd_be16(struct lp_rd *r)
{
	const uint8_t *p = lp_rd_ptr(r, 2);
	return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

static inline uint32_t lp_rd_be32(struct lp_rd *r)
{
	const uint8_t *p = lp_rd_ptr(r, 4);
	return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

static inline uint64_t lp_rd_be64(struct lp_rd *r)
{
	uint64_t hi = lp_rd_be32(r);
	return hi << 32 | lp_rd_be32(r);
}

static inline uint16_t lp_rd_le16(struct lp_rd *r)
{
	const uint8_t *p = lp_rd_ptr(r, 2);
	return p ? (uint16_t)(p[1] << 8 | p[0]) : 0;
}

static inline uint32_t lp_rd_le32(struct lp_rd *r)
{
	const uint8_t *p = lp_rd_ptr(r, 4);
	return p ? (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0] : 0;
}

static inline uint64_t lp_rd_le64(struct lp_rd *r)
{
	uint64_t lo = lp_rd_le32(r);
	return lo | (uint64_t)lp_rd_le32(r) << 32;
}

/* Copy n bytes to dst (dst untouched on failure). */
static inline bool lp_rd_bytes(struct lp_rd *r, void *dst, size_t n)
{
	const uint8_t *p = lp_rd_ptr(r, n);
	if (!p)
		return false;
	if (n)
		memcpy(dst, p, n);
	return true;
}

static inline bool lp_rd_skip(struct lp_rd *r, size_t n)
{
	return lp_rd_ptr(r, n) != NULL;
}
/* A child cursor over the next n bytes; the parent advances past them. On
 * overrun both parent and child carry LP_ETRUNC. */
struct lp_rd lp_rd_sub(struct lp_rd *r, size_t n);

struct lp_wr {
	uint8_t *buf;
	size_t cap; /* bytes allocated (dyn) or available (fixed) */
	size_t len; /* bytes written */
	size_t max; /* dyn: hard cap on len */
	int err;    /* 0, LP_ETOOBIG or LP_ENOMEM, sticky */
	bool dyn;
};

/* Fixed writer over a caller buffer (borrowed). */
void lp_wr_init_fixed(struct lp_wr *w, void *buf, size_t cap);
/* Growable heap writer that refuses to grow past `max` bytes. */
void lp_wr_init_dyn(struct lp_wr *w, size_t max);
/* Frees a dyn writer's buffer; no-op for fixed. */
void lp_wr_release(struct lp_wr *w);
/* Hand the dyn buffer to the caller (owned; free()), writer becomes empty. */
uint8_t *lp_wr_steal(struct lp_wr *w, size_t *len);
static inline bool lp_wr_ok(const struct lp_wr *w)
{
	return w->err == 0;
}

void lp_wr_u8(struct lp_wr *w, uint8_t v);
void lp_wr_be16(struct lp_wr *w, uint16_t v);
void lp_wr_be32(struct lp_wr *w, uint32_t v);
void lp_wr_be64(struct lp_wr *w, uint64_t v);
void lp_wr_le16(struct lp_wr *w, uint16_t v);
void lp_wr_le32(struct lp_wr *w, uint32_t v);
void lp_wr_le64(struct lp_wr *w, uint64_t v);
/* Host byte order (capture formats are written in the capturing host's order). */
void lp_wr_h16(struct lp_wr *w, uint16_t v);
void lp_wr_h32(struct lp_wr *w, uint32_t v);
void lp_wr_h64(struct lp_wr *w, uint64_t v);
void lp_wr_bytes(struct lp_wr *w, const void *src, size_t n);
void lp_wr_zeros(struct lp_wr *w, size_t n);
/* Pad with zeros to a multiple of `align` (power of two). */
void lp_wr_pad(struct lp_wr *w, size_t align);
/* Reserve n bytes and return a pointer to them (valid until the next write);
 * NULL on failure. */
uint8_t *lp_wr_reserve(struct lp_wr *w, size_t n);
/* Overwrite 4 bytes already written at `off` (for back-patched lengths). */
void lp_wr_patch_be32(struct lp_wr *w, size_t off, uint32_t v);
void lp_wr_patch_le32(struct lp_wr *w, size_t off, uint32_t v);

#endif
