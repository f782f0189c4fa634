/* lockdown_frame.c - lockdown message framing: length-prefixed plists.
 *
 * Reference: doc/protocol.md 4.1 (framing), section 0 (the device often
 * sends the 4-byte prefix in its own segment).
 *
 *   +----------------+----------------------------------------+
 *   | length (BE32)  | plist body: "<?xml..." or "bplist00..." |
 *   +----------------+----------------------------------------+
 *
 * The framer is sans-I/O: bytes go in with lkd_framer_feed(), whole messages
 * come out of lkd_framer_next(). Every length prefix is checked against
 * LKD_MAX_MESSAGE as soon as its four bytes are present, before any byte of
 * its body is buffered, so a hostile prefix never makes us allocate. Bodies
 * are parsed by libplist only; XML control bytes are blanked first.
 *
 * Buffer layout:  [consumed | complete frames ... | partial frame]
 *                  0        head                 scan            len
 */
#include "proto/lockdown_frame.h"

#include <openssl/crypto.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/plist_depth.h"
#include "src/base/lp_cursor.h"
#include "src/base/lp_error.h"

#define LKD_PREFIX 4
#define LKD_BPLIST_MAGIC "bplist00"

struct lkd_keyset {
	size_t n;
	const char *k[LKD_TOP_KEYS_MAX]; /* borrowed */
	size_t len[LKD_TOP_KEYS_MAX];
};

struct lkd_framer {
	uint8_t *buf;
	size_t cap;
	size_t len;		/* bytes buffered */
	size_t head;		/* start of the first undelivered frame */
	size_t scan;		/* start of the first frame not yet complete */
	int dead;		/* 0 or LP_ETOOBIG, sticky */
	int top_only;		/* decode with lkd_plist_decode_top */
	struct lkd_keyset keys; /* lkd_framer_next_view()'s */
};

struct lkd_framer *lkd_framer_new(void)
{
	return calloc(1, sizeof(struct lkd_framer));
}

void lkd_framer_free(struct lkd_framer *f)
{
	if (!f)
		return;
	/* Pair replies carry the EscrowBag */
	if (f->buf)
		OPENSSL_cleanse(f->buf, f->cap);
	free(f->buf);
	free(f);
}

static uint32_t prefix_at(const struct lkd_framer *f, size_t off)
{
	struct lp_rd r;

	lp_rd_init(&r, f->buf + off, f->len - off);
	return lp_rd_be32(&r);
}

/* Room for n more bytes; n is bounded by the current frame's checked length. */
static int reserve(struct lkd_framer *f, size_t n)
{
	size_t need, ncap;
	uint8_t *nb;

	if (f->head > 0 && f->head == f->len) {
		f->head = f->scan = f->len = 0;
	} else if (f->head > 0 && f->len + n > f->cap) {
		memmove(f->buf, f->buf + f->head, f->len - f->head);
		f->len -= f->head;
		f->scan -= f->head;
		f->head = 0;
	}
	need = f->len + n;
	if (need <= f->cap)
		return 0;
	ncap = f->cap ? f->cap : 256;
	while (ncap < need)
		ncap *= 2;
	/* not realloc: the old block may hold an EscrowBag and must be wiped */
	nb = malloc(ncap);
	if (!nb)
		return LP_ENOMEM;
	if (f->buf) {
		memcpy(nb, f->buf, f->len);
		OPENSSL_cleanse(f->buf, f->cap);
		free(f->buf);
	}
	f->buf = nb;
	f->cap = ncap;
	return 0;
}

/* Advance `scan` over every frame that is now complete; check each prefix. */
static int scan_frames(struct lkd_framer *f)
{
	while (f->len - f->scan >= LKD_PREFIX) {
		uint32_t body = prefix_at(f, f->scan);

		if (body > LKD_MAX_MESSAGE)
			return f->dead = LP_ETOOBIG;
		if (f->len - f->scan - LKD_PREFIX < body)
			break;
		f->scan += LKD_PREFIX + (size_t)body;
	}
	return 0;
}

/* Copy only up to the end of the current prefix or body, so a prefix is
 * judged before its body occupies memory; with `one`, stop as soon as a frame
 * is complete (the bytes after it may belong to another layer). */
static int feed(struct lkd_framer *f, const uint8_t *buf, size_t len, bool one, size_t *used)
{
	size_t start = len;

	if (!f || (!buf && len))
		return LP_EINVAL;
	if (f->dead)
		return f->dead;
	while (len > 0) {
		size_t have = f->len - f->scan, want, n, ready = f->scan - f->head;
		int r;

		if (have < LKD_PREFIX)
			want = LKD_PREFIX - have;
		else
			want = LKD_PREFIX + (size_t)prefix_at(f, f->scan) - have;
		n = len < want ? len : want;
		r = reserve(f, n);
		if (r)
			return r;
		memcpy(f->buf + f->len, buf, n);
		f->len += n;
		buf += n;
		len -= n;
		if (used)
			*used = start - len;
		r = scan_frames(f);
		if (r)
			return r;
		/* compaction moves head and scan together: compare their distance */
		if (one && f->scan - f->head != ready)
			break;
	}
	if (used)
		*used = start - len;
	return 0;
}

int lkd_framer_feed(struct lkd_framer *f, const uint8_t *buf, size_t len)
{
	return feed(f, buf, len, false, NULL);
}

int lkd_framer_feed_one(struct lkd_framer *f, const uint8_t *buf, size_t len, size_t *used)
{
	if (used)
		*used = 0;
	return feed(f, buf, len, true, used);
}

/* The next whole frame: its body at *p (borrowed until the next feed) and
 * *body bytes long, consumed. f->dead, or LP_EAGAIN when none is whole. */
static int take_frame(struct lkd_framer *f, const uint8_t **p, uint32_t *body)
{
	if (f->dead)
		return f->dead;
	if (f->scan == f->head)
		return LP_EAGAIN;
	*body = prefix_at(f, f->head);
	*p = f->buf + f->head + LKD_PREFIX;
	f->head += LKD_PREFIX + (size_t)*body;
	return 0;
}

/* A frame's body as a dictionary (top-level view only with `top`): else
 * LP_EPLIST, nothing returned. */
static int decode_dict(const uint8_t *p, uint32_t body, int top, plist_t *out)
{
	int r = top ? lkd_plist_decode_top(p, body, out) : lkd_plist_decode(p, body, out);

	if (r == 0 && plist_get_node_type(*out) != PLIST_DICT) {
		plist_free(*out);
		*out = NULL;
		r = LP_EPLIST;
	}
	return r;
}

int lkd_framer_next(struct lkd_framer *f, plist_t *out, uint8_t **raw, size_t *raw_len)
{
	uint32_t body = 0;
	const uint8_t *p = NULL;
	plist_t pl = NULL;
	uint8_t *copy = NULL;
	int r;

	if (!f || !out)
		return LP_EINVAL;
	r = take_frame(f, &p, &body);
	if (r == 0)
		r = decode_dict(p, body, f->top_only, &pl);
	if (r == 0 && raw) {
		copy = malloc(body ? body : 1);
		if (!copy) {
			plist_free(pl);
			return LP_ENOMEM;
		}
		memcpy(copy, p, body);
	}
	if (r)
		return r;
	*out = pl;
	if (raw)
		*raw = copy;
	if (raw_len)
		*raw_len = body;
	return 0;
}

void lkd_framer_top_only(struct lkd_framer *f, int on)
{
	if (f)
		f->top_only = on;
}

size_t lkd_framer_pending(const struct lkd_framer *f)
{
	return f ? f->len - f->scan : 0;
}

int lkd_frame_encode(plist_t msg, uint8_t **out, size_t *len)
{
	char *xml = NULL;
	uint32_t xlen = 0;
	uint8_t *buf;
	struct lp_wr w;

	if (!msg || !out || !len)
		return LP_EINVAL;
	plist_to_xml(msg, &xml, &xlen);
	if (!xml || xlen == 0) {
		free(xml);
		return LP_EPLIST;
	}
	if (xlen > LKD_MAX_MESSAGE) {
		OPENSSL_cleanse(xml, xlen);
		plist_to_xml_free(xml);
		return LP_ETOOBIG;
	}
	buf = malloc(LKD_PREFIX + (size_t)xlen);
	if (!buf) {
		OPENSSL_cleanse(xml, xlen);
		plist_to_xml_free(xml);
		return LP_ENOMEM;
	}
	lp_wr_init_fixed(&w, buf, LKD_PREFIX + (size_t)xlen);
	lp_wr_be32(&w, xlen);
	lp_wr_bytes(&w, xml, xlen);
	OPENSSL_cleanse(xml, xlen); /* StartService carries the EscrowBag */
	plist_to_xml_free(xml);
	*out = buf;
	*len = w.len;
	return 0;
}

/* Control bytes but tab, LF, CR become spaces. Eight bytes at a time: a
 * word with no byte below 0x20 (the usual case) is passed over whole (the
 * byte-by-byte loop was 11 % of analyzing a lockdown-heavy capture). */
static void blank_controls(uint8_t *x, size_t len)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, x + i, 8);
		/* some byte < 0x20: (w - 0x20..) borrows into its high bit */
		if (!((w - 0x20 * ones) & ~w & highs))
			continue;
		for (size_t k = i; k < i + 8; k++)
			if (x[k] < 0x20 && x[k] != '\t' && x[k] != '\n' && x[k] != '\r')
				x[k] = ' ';
	}
	for (; i < len; i++)
		if (x[i] < 0x20 && x[i] != '\t' && x[i] != '\n' && x[i] != '\r')
			x[i] = ' ';
}

/* Any byte below 0x20 but TAB and LF (CR included)? Sixteen bytes at a
 * time, exactly (GCC/clang vectors: SSE2, NEON or plain words): XML has a
 * TAB or LF in most words, and the test "some byte below 0x20" that sent
 * such a word to a byte loop cost 9 % of the instructions of analyzing a
 * lockdown-heavy capture. */
typedef uint8_t lkd_v16 __attribute__((vector_size(16)));

static bool has_controls(const uint8_t *b, size_t len)
{
	size_t i = 0;

	for (; i + 16 <= len; i += 16) {
		lkd_v16 v, bad;
		uint64_t w[2];

		memcpy(&v, b + i, 16);
		bad = (lkd_v16)((v < 0x20) & (v != '\t') & (v != '\n'));
		memcpy(w, &bad, 16);
		if (w[0] | w[1])
			return true;
	}
	for (; i < len; i++)
		if (b[i] < 0x20 && b[i] != '\t' && b[i] != '\n')
			return true;
	return false;
}

/* A binary plist may name one key twice in a dict: libplist keeps both pairs,
 * a lookup finds one value and an iteration both, so two readers of the same
 * message (the client and a capture's analyzer, say) could act on different
 * values. True if any dict in `n` does. (XML cannot: libplist's XML parser
 * replaces a repeated key, and lkd_plist_decode_top refuses one.) Depth is
 * bounded by lkd_plist_check_depth, which ran first. */
static bool repeated_keys(plist_t n)
{
	plist_type t = plist_get_node_type(n);
	plist_dict_iter it = NULL;
	bool bad = false;

	if (t == PLIST_ARRAY) {
		uint32_t k = plist_array_get_size(n);

		for (uint32_t i = 0; i < k && !bad; i++)
			bad = repeated_keys(plist_array_get_item(n, i));
		return bad;
	}
	if (t != PLIST_DICT)
		return false;
	plist_dict_new_iter(n, &it);
	if (!it)
		return true;
	while (!bad) {
		char *key = NULL;
		plist_t v = NULL;

		plist_dict_next_item(n, it, &key, &v);
		if (!key)
			break;
		bad = plist_dict_get_item(n, key) != v || repeated_keys(v);
		free(key);
	}
	free(it);
	return bad;
}

int lkd_plist_decode(const uint8_t *body, size_t len, plist_t *out)
{
	plist_t pl = NULL;

	if (!out || (!body && len))
		return LP_EINVAL;
	if (len > LKD_MAX_MESSAGE)
		return LP_ETOOBIG;
	if (len == 0)
		return LP_EPLIST;
	/* libplist recurses without a limit, parsing and freeing: refuse deep
	 * nesting before it sees the bytes (proto/plist_depth.h) */
	if (lkd_plist_check_depth(body, len, LKD_MAX_DEPTH) != 0)
		return LP_EPLIST;
	if (len >= sizeof(LKD_BPLIST_MAGIC) - 1 &&
	    memcmp(body, LKD_BPLIST_MAGIC, sizeof(LKD_BPLIST_MAGIC) - 1) == 0) {
		plist_from_bin((const char *)body, (uint32_t)len, &pl);
		if (pl && repeated_keys(pl)) {
			plist_free(pl);
			return LP_EPLIST;
		}
	} else {
		/* iOS 4.3+ may put raw control bytes into XML strings, which the
		 * XML parser refuses; blank them (a space is harmless even
		 * inside <data> base64). The NUL terminator is for parsers that
		 * look one past the end. */
		char *x = malloc(len + 1);

		if (!x)
			return LP_ENOMEM;
		memcpy(x, body, len);
		blank_controls((uint8_t *)x, len);
		x[len] = '\0';
		plist_from_xml(x, (uint32_t)len, &pl);
		/* the body may be a pair record or a Pair reply: keys, EscrowBag */
		OPENSSL_cleanse(x, len + 1);
		free(x);
	}
	if (!pl)
		return LP_EPLIST;
	*out = pl;
	return 0;
}

/* ---- the top-level view (lockdown_frame.h) ------------------------------
 * A cursor over the body; every step checks the end first. A "miss" means
 * the body is not in the shape read here: the caller falls back to libplist,
 * never to an error of its own. */

struct top_rd {
	const uint8_t *p, *end;
};

static void top_ws(struct top_rd *x)
{
	while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r'))
		x->p++;
}

static bool top_lit(struct top_rd *x, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(x->end - x->p) < n || memcmp(x->p, lit, n) != 0)
		return false;
	x->p += n;
	return true;
}

/* Text up to the next '<' (no entity, no second '<' needed): its span. */
static bool top_text(struct top_rd *x, const uint8_t **s, size_t *n)
{
	const uint8_t *lt = memchr(x->p, '<', (size_t)(x->end - x->p));

	if (!lt || memchr(x->p, '&', (size_t)(lt - x->p)))
		return false;
	*s = x->p;
	*n = (size_t)(lt - x->p);
	x->p = lt;
	return true;
}

/* Skip a leaf element's text and its closing tag: "...</name>". */
static bool top_leaf(struct top_rd *x, const char *close)
{
	const uint8_t *s;
	size_t n;

	return top_text(x, &s, &n) && top_lit(x, close);
}

/* A whole leaf element "<name>text</name>", or nothing read at all. */
static bool top_elem(struct top_rd *x, const char *open, const char *close)
{
	const uint8_t *at = x->p;

	if (top_lit(x, open) && top_leaf(x, close))
		return true;
	x->p = at;
	return false;
}

/* A nested <dict> or <array> whose opening tag was read: check its structure
 * (known tags, balanced, depth) without keeping anything. Iterative: the
 * open containers are a bit stack (1 = dict). */
static bool top_skip_container(struct top_rd *x, bool dict, unsigned depth)
{
	uint64_t stack = dict ? 1 : 0;
	unsigned n = 1;

	while (n) {
		top_ws(x);
		if (n + depth >= LKD_MAX_DEPTH)
			return false;
		if (top_lit(x, "</dict>") || top_lit(x, "</array>")) {
			if (((stack & 1) != 0) != (x->p[-2] == 't'))
				return false; /* </dict> closes a dict, </array> an array */
			stack >>= 1;
			n--;
			continue;
		}
		if ((stack & 1) && !top_elem(x, "<key>", "</key>"))
			return false; /* a dict holds key, value pairs */
		top_ws(x);
		if (top_lit(x, "<dict>") || top_lit(x, "<array>")) {
			stack = stack << 1 | (x->p[-2] == 't' ? 1 : 0);
			n++;
		} else if (!(top_lit(x, "<dict/>") || top_lit(x, "<array/>") ||
			     top_lit(x, "<string/>") || top_lit(x, "<data/>") ||
			     top_lit(x, "<true/>") || top_lit(x, "<false/>") ||
			     top_elem(x, "<string>", "</string>") ||
			     top_elem(x, "<data>", "</data>") ||
			     top_elem(x, "<integer>", "</integer>") ||
			     top_elem(x, "<real>", "</real>") ||
			     top_elem(x, "<date>", "</date>"))) {
			return false;
		}
	}
	return true;
}

/* The index of the key (s, n) in ks, or -1. */
static int top_wanted(const struct lkd_keyset *ks, const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < ks->n; i++)
		if (ks->len[i] == n && memcmp(ks->k[i], s, n) == 0)
			return (int)i;
	return -1;
}

#define TOP_KEYS_SEEN 64 /* a root dict with more keys goes to libplist */

/* Where top_xml() puts the values: a dictionary of every key (d), or the
 * view of the keys in ks (v). */
struct top_out {
	plist_t d;
	struct lkd_view *v;
	const struct lkd_keyset *ks;
	struct {
		const uint8_t *s;
		size_t n;
	} str[LKD_TOP_KEYS_MAX]; /* the view's string values, in the body */
};

/* A scalar value read: into the dictionary or the view. */
static bool top_put(struct top_out *o, const char *key, int want, plist_type type, const uint8_t *s,
		    size_t n, uint64_t u)
{
	plist_t v;

	if (o->v) {
		struct lkd_view_item *it = &o->v->item[o->v->n];

		it->key = o->ks->k[want];
		it->type = type;
		it->uint = u;
		it->boolean = (uint8_t)u;
		o->str[o->v->n].s = s;
		o->str[o->v->n].n = n;
		o->v->n++;
		return true;
	}
	switch (type) {
	case PLIST_STRING: {
		char buf[1024], *str = n < sizeof(buf) ? buf : malloc(n + 1);

		if (!str)
			return false;
		memcpy(str, s, n);
		str[n] = '\0';
		v = plist_new_string(str);
		if (str != buf)
			free(str);
		break;
	}
	case PLIST_BOOLEAN:
		v = plist_new_bool(u != 0);
		break;
	case PLIST_UINT:
		v = plist_new_uint(u);
		break;
	case PLIST_DATA:
		v = plist_new_data(NULL, 0);
		break;
	case PLIST_REAL:
		v = plist_new_real(0);
		break;
	case PLIST_DATE:
		v = plist_new_date(0, 0);
		break;
	case PLIST_DICT:
		v = plist_new_dict();
		break;
	default:
		v = plist_new_array();
		break;
	}
	if (!v)
		return false;
	plist_dict_set_item(o->d, key, v);
	return true;
}

/* The XML body in the shape described in lockdown_frame.h, or false (then
 * o->d or o->v holds what was read so far). */
static bool top_xml(const uint8_t *body, size_t len, struct top_out *o)
{
	struct top_rd x = {body, body + len};
	struct {
		const uint8_t *s;
		size_t n;
	} seen[TOP_KEYS_SEEN];
	size_t nseen = 0;
	const uint8_t *s;
	size_t n;

	/* a control byte is blanked by lkd_plist_decode, and XML turns CR LF
	 * into LF: leave those to libplist */
	if (has_controls(body, len))
		return false;
	/* the prolog exactly as libplist, CoreFoundation and plistlib write it */
	top_ws(&x);
	if (top_lit(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"))
		top_ws(&x);
	if (top_lit(&x, "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
			"\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">"))
		top_ws(&x);
	if (!top_lit(&x, "<plist version=\"1.0\">") && !top_lit(&x, "<plist>"))
		return false;
	top_ws(&x);
	if (!top_lit(&x, "<dict/>")) {
		if (!top_lit(&x, "<dict>"))
			return false;
		for (;;) {
			char key[256];
			const uint8_t *vs = NULL;
			size_t vn = 0;
			uint64_t u = 0;
			plist_type type;
			int want;

			top_ws(&x);
			if (top_lit(&x, "</dict>"))
				break;
			if (!top_lit(&x, "<key>") || !top_text(&x, &s, &n) || n >= sizeof(key) ||
			    memchr(s, 0, n) || !top_lit(&x, "</key>"))
				return false;
			/* a duplicate: libplist's rule, not ours */
			if (nseen == TOP_KEYS_SEEN)
				return false;
			for (size_t i = 0; i < nseen; i++)
				if (seen[i].n == n && memcmp(seen[i].s, s, n) == 0)
					return false;
			seen[nseen].s = s;
			seen[nseen].n = n;
			nseen++;
			want = o->v ? top_wanted(o->ks, s, n) : 0;
			if (want >= 0 && !o->v) {
				memcpy(key, s, n);
				key[n] = '\0';
			}
			top_ws(&x);
			if (top_lit(&x, "<string>")) {
				if (!top_text(&x, &vs, &vn) || memchr(vs, 0, vn) ||
				    !top_lit(&x, "</string>"))
					return false;
				type = PLIST_STRING;
			} else if (top_lit(&x, "<string/>")) {
				vs = (const uint8_t *)"";
				type = PLIST_STRING;
			} else if (top_lit(&x, "<true/>")) {
				u = 1;
				type = PLIST_BOOLEAN;
			} else if (top_lit(&x, "<false/>")) {
				type = PLIST_BOOLEAN;
			} else if (top_lit(&x, "<integer>")) {
				/* decimal only: libplist reads a leading 0 as octal */
				if (!top_text(&x, &s, &n) || n == 0 || n > 18 ||
				    (n > 1 && s[0] == '0') || !top_lit(&x, "</integer>"))
					return false;
				for (size_t i = 0; i < n; i++) {
					if (s[i] < '0' || s[i] > '9')
						return false;
					u = u * 10 + (uint64_t)(s[i] - '0');
				}
				type = PLIST_UINT;
			} else if (top_lit(&x, "<data>")) {
				if (!top_leaf(&x, "</data>"))
					return false;
				type = PLIST_DATA;
			} else if (top_lit(&x, "<data/>")) {
				type = PLIST_DATA;
			} else if (top_lit(&x, "<real>")) {
				if (!top_leaf(&x, "</real>"))
					return false;
				type = PLIST_REAL;
			} else if (top_lit(&x, "<date>")) {
				if (!top_leaf(&x, "</date>"))
					return false;
				type = PLIST_DATE;
			} else if (top_lit(&x, "<dict>")) {
				if (!top_skip_container(&x, true, 1))
					return false;
				type = PLIST_DICT;
			} else if (top_lit(&x, "<array>")) {
				if (!top_skip_container(&x, false, 1))
					return false;
				type = PLIST_ARRAY;
			} else if (top_lit(&x, "<dict/>")) {
				type = PLIST_DICT;
			} else if (top_lit(&x, "<array/>")) {
				type = PLIST_ARRAY;
			} else {
				return false;
			}
			if (want >= 0 && !top_put(o, key, want, type, vs, vn, u))
				return false;
		}
	}
	top_ws(&x);
	if (!top_lit(&x, "</plist>"))
		return false;
	top_ws(&x);
	return x.p == x.end;
}

int lkd_plist_decode_top(const uint8_t *body, size_t len, plist_t *out)
{
	struct top_out o = {0};

	if (!out || (!body && len))
		return LP_EINVAL;
	if (len && len <= LKD_MAX_MESSAGE && body[0] != 'b') {
		o.d = plist_new_dict();
		if (o.d && top_xml(body, len, &o)) {
			*out = o.d;
			return 0;
		}
		plist_free(o.d);
	}
	return lkd_plist_decode(body, len, out);
}

/* ---- the view ------------------------------------------------------------ */

int lkd_framer_top_keys(struct lkd_framer *f, const char *const *keys)
{
	size_t n = 0;

	if (!f)
		return LP_EINVAL;
	while (keys && keys[n])
		if (++n > LKD_TOP_KEYS_MAX)
			return LP_EINVAL;
	f->keys.n = n;
	for (size_t i = 0; i < n; i++) {
		f->keys.k[i] = keys[i];
		f->keys.len[i] = strlen(keys[i]);
	}
	return 0;
}

void lkd_view_clear(struct lkd_view *v)
{
	if (!v)
		return;
	if (v->used)
		OPENSSL_cleanse(v->text, v->used); /* a GetValue reply's Value */
	v->used = 0;
	v->n = 0;
	plist_free(v->pl);
	v->pl = NULL;
}

void lkd_view_release(struct lkd_view *v)
{
	if (!v)
		return;
	lkd_view_clear(v);
	free(v->text);
	v->text = NULL;
	v->cap = 0;
}

/* The direct read succeeded: copy the string values out of the body. */
static int view_strings(struct lkd_view *v, struct top_out *o)
{
	size_t need = 0;

	for (size_t i = 0; i < v->n; i++)
		if (v->item[i].type == PLIST_STRING)
			need += o->str[i].n + 1;
	if (need > v->cap) {
		char *t = malloc(need);
		if (!t)
			return LP_ENOMEM;
		free(v->text); /* wiped by lkd_view_clear */
		v->text = t;
		v->cap = need;
	}
	for (size_t i = 0; i < v->n; i++) {
		if (v->item[i].type != PLIST_STRING)
			continue;
		memcpy(v->text + v->used, o->str[i].s, o->str[i].n);
		v->text[v->used + o->str[i].n] = '\0';
		v->item[i].str = v->text + v->used;
		v->used += o->str[i].n + 1;
	}
	return 0;
}

/* libplist decoded the body: the view borrows from its dictionary. */
static void view_from_plist(struct lkd_view *v, const struct lkd_keyset *ks, plist_t pl)
{
	v->pl = pl;
	for (size_t i = 0; i < ks->n; i++) {
		plist_t n = plist_dict_get_item(pl, ks->k[i]);
		struct lkd_view_item *it;

		if (!n)
			continue;
		it = &v->item[v->n++];
		memset(it, 0, sizeof(*it));
		it->key = ks->k[i];
		it->type = plist_get_node_type(n);
		if (it->type == PLIST_STRING)
			it->str = plist_get_string_ptr(n, NULL);
		else if (it->type == PLIST_UINT)
			plist_get_uint_val(n, &it->uint);
		else if (it->type == PLIST_BOOLEAN)
			plist_get_bool_val(n, &it->boolean);
	}
}

int lkd_framer_next_view(struct lkd_framer *f, struct lkd_view *v)
{
	struct top_out o = {0};
	const uint8_t *p = NULL;
	uint32_t body = 0;
	plist_t pl = NULL;
	int r;

	if (!f || !v)
		return LP_EINVAL;
	lkd_view_clear(v);
	r = take_frame(f, &p, &body);
	if (r)
		return r;
	o.v = v;
	o.ks = &f->keys;
	if (body && body <= LKD_MAX_MESSAGE && p[0] != 'b' && top_xml(p, body, &o))
		return view_strings(v, &o);
	v->n = 0;
	r = decode_dict(p, body, 0, &pl);
	if (r)
		return r;
	view_from_plist(v, &f->keys, pl);
	return 0;
}

static const struct lkd_view_item *view_get(const struct lkd_view *v, const char *key)
{
	if (!v || !key)
		return NULL;
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->item[i].key, key) == 0)
			return &v->item[i];
	return NULL;
}

const char *lkd_view_str(const struct lkd_view *v, const char *key)
{
	const struct lkd_view_item *it = view_get(v, key);

	return it && it->type == PLIST_STRING ? it->str : NULL;
}

int lkd_view_bool(const struct lkd_view *v, const char *key, int dflt)
{
	const struct lkd_view_item *it = view_get(v, key);

	return it && it->type == PLIST_BOOLEAN ? it->boolean != 0 : dflt;
}

uint64_t lkd_view_uint(const struct lkd_view *v, const char *key, uint64_t dflt)
{
	const struct lkd_view_item *it = view_get(v, key);

	return it && it->type == PLIST_UINT ? it->uint : dflt;
}

const char *lkd_dict_str(plist_t dict, const char *key)
{
	plist_t n;

	if (!dict || !key || plist_get_node_type(dict) != PLIST_DICT)
		return NULL;
	n = plist_dict_get_item(dict, key);
	if (!n || plist_get_node_type(n) != PLIST_STRING)
		return NULL;
	return plist_get_string_ptr(n, NULL);
}

int lkd_dict_bool(plist_t dict, const char *key, int dflt)
{
	plist_t n;
	uint8_t v = 0;

	if (!dict || !key || plist_get_node_type(dict) != PLIST_DICT)
		return dflt;
	n = plist_dict_get_item(dict, key);
	if (!n || plist_get_node_type(n) != PLIST_BOOLEAN)
		return dflt;
	plist_get_bool_val(n, &v);
	return v ? 1 : 0;
}

uint64_t lkd_dict_uint(plist_t dict, const char *key, uint64_t dflt)
{
	plist_t n;
	uint64_t v = dflt;

	if (!dict || !key || plist_get_node_type(dict) != PLIST_DICT)
		return dflt;
	n = plist_dict_get_item(dict, key);
	if (!n || plist_get_node_type(n) != PLIST_UINT)
		return dflt;
	plist_get_uint_val(n, &v);
	return v;
}
