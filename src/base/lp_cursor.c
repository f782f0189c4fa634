/* lp_cursor.c - bounds-checked reader and writer; see lp_cursor.h. */
#include "src/base/lp_cursor.h"
#include "src/base/lp_error.h"

#include <stdlib.h>
#include <string.h>

struct lp_rd lp_rd_sub(struct lp_rd *r, size_t n)
{
	struct lp_rd c;
	const uint8_t *p = lp_rd_ptr(r, n);

	lp_rd_init(&c, p, p ? n : 0);
	if (!p)
		c.err = LP_ETRUNC;
	return c;
}

void lp_wr_init_fixed(struct lp_wr *w, void *buf, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap;
	w->max = cap;
}

void lp_wr_init_dyn(struct lp_wr *w, size_t max)
{
	memset(w, 0, sizeof(*w));
	w->dyn = true;
	w->max = max;
}

void lp_wr_release(struct lp_wr *w)
{
	if (w->dyn)
		free(w->buf);
	w->buf = NULL;
	w->cap = w->len = 0;
}

uint8_t *lp_wr_steal(struct lp_wr *w, size_t *len)
{
	uint8_t *b = w->buf;

	if (len)
		*len = w->len;
	w->buf = NULL;
	w->cap = w->len = 0;
	return b;
}

uint8_t *lp_wr_reserve(struct lp_wr *w, size_t n)
{
	uint8_t *p;

	if (w->err)
		return NULL;
	if (n > w->max - w->len) {
		w->err = LP_ETOOBIG;
		return NULL;
	}
	if (n > w->cap - w->len) {
		size_t ncap = w->cap ? w->cap : 256;
		uint8_t *nb;
		if (!w->dyn) {
			w->err = LP_ETOOBIG;
			return NULL;
		}
		while (ncap - w->len < n)
			ncap = ncap > w->max / 2 ? w->max : ncap * 2;
		nb = realloc(w->buf, ncap);
		if (!nb) {
			w->err = LP_ENOMEM;
			return NULL;
		}
		w->buf = nb;
		w->cap = ncap;
	}
	p = w->buf + w->len;
	w->len += n;
	return p;
}

void lp_wr_u8(struct lp_wr *w, uint8_t v)
{
	uint8_t *p = lp_wr_reserve(w, 1);
	if (p)
		p[0] = v;
}

void lp_wr_be16(struct lp_wr *w, uint16_t v)
{
	uint8_t *p = lp_wr_reserve(w, 2);
	if (p) {
		p[0] = (uint8_t)(v >> 8);
		p[1] = (uint8_t)v;
	}
}

void lp_wr_be32(struct lp_wr *w, uint32_t v)
{
	uint8_t *p = lp_wr_reserve(w, 4);
	if (p) {
		p[0] = (uint8_t)(v >> 24);
		p[1] = (uint8_t)(v >> 16);
		p[2] = (uint8_t)(v >> 8);
		p[3] = (uint8_t)v;
	}
}

void lp_wr_be64(struct lp_wr *w, uint64_t v)
{
	lp_wr_be32(w, (uint32_t)(v >> 32));
	lp_wr_be32(w, (uint32_t)v);
}

void lp_wr_le16(struct lp_wr *w, uint16_t v)
{
	uint8_t *p = lp_wr_reserve(w, 2);
	if (p) {
		p[0] = (uint8_t)v;
		p[1] = (uint8_t)(v >> 8);
	}
}

void lp_wr_le32(struct lp_wr *w, uint32_t v)
{
	uint8_t *p = lp_wr_reserve(w, 4);
	if (p) {
		p[0] = (uint8_t)v;
		p[1] = (uint8_t)(v >> 8);
		p[2] = (uint8_t)(v >> 16);
		p[3] = (uint8_t)(v >> 24);
	}
}

void lp_wr_le64(struct lp_wr *w, uint64_t v)
{
	lp_wr_le32(w, (uint32_t)v);
	lp_wr_le32(w, (uint32_t)(v >> 32));
}

void lp_wr_bytes(struct lp_wr *w, const void *src, size_t n)
{
	uint8_t *p = lp_wr_reserve(w, n);
	if (p && n)
		memcpy(p, src, n);
}

void lp_wr_zeros(struct lp_wr *w, size_t n)
{
	uint8_t *p = lp_wr_reserve(w, n);
	if (p && n)
		memset(p, 0, n);
}

void lp_wr_pad(struct lp_wr *w, size_t align)
{
	size_t rem = w->len & (align - 1);
	if (rem)
		lp_wr_zeros(w, align - rem);
}

void lp_wr_patch_be32(struct lp_wr *w, size_t off, uint32_t v)
{
	if (w->err || off > w->len || 4 > w->len - off)
		return;
	w->buf[off] = (uint8_t)(v >> 24);
	w->buf[off + 1] = (uint8_t)(v >> 16);
	w->buf[off + 2] = (uint8_t)(v >> 8);
	w->buf[off + 3] = (uint8_t)v;
}

void lp_wr_patch_le32(struct lp_wr *w, size_t off, uint32_t v)
{
	if (w->err || off > w->len || 4 > w->len - off)
		return;
	w->buf[off] = (uint8_t)v;
	w->buf[off + 1] = (uint8_t)(v >> 8);
	w->buf[off + 2] = (uint8_t)(v >> 16);
	w->buf[off + 3] = (uint8_t)(v >> 24);
}

#define LP_HOST_BE (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)

void lp_wr_h16(struct lp_wr *w, uint16_t v)
{
	if (LP_HOST_BE)
		lp_wr_be16(w, v);
	else
		lp_wr_le16(w, v);
}

void lp_wr_h32(struct lp_wr *w, uint32_t v)
{
	if (LP_HOST_BE)
		lp_wr_be32(w, v);
	else
		lp_wr_le32(w, v);
}

void lp_wr_h64(struct lp_wr *w, uint64_t v)
{
	if (LP_HOST_BE)
		lp_wr_be64(w, v);
	else
		lp_wr_le64(w, v);
}
