/* plist_depth.c - nesting depth of a plist, read from its encoding.
 *
 * Binary ("bplist00", Apple's CFBinaryPList.c layout as documented in
 * doc/protocol.md 4.1 and libplist's bplist.c header comment):
 *
 *   +----------+----------------------+--------------+-------------------+
 *   | bplist00 | objects ...          | offset table | trailer (32 bytes)|
 *   +----------+----------------------+--------------+-------------------+
 *   trailer: 6 unused, offset_int_size(1), object_ref_size(1),
 *            num_objects(BE64), top_object(BE64), offset_table_offset(BE64)
 *   object:  marker byte, type in the high nibble; 0xA array, 0xC set,
 *            0xD dict carry a count (low nibble, or 0xF then an int object
 *            0x1n of 2^n bytes) followed by count object refs (dicts: count
 *            key refs then count value refs).
 *
 * The walk is an explicit stack at most max_depth frames tall; each object's
 * height and expanded size are memoised so a shared sub-tree is walked once
 * and the whole scan is linear in the number of references.
 *
 * XML: element nesting counted tag by tag (comments, CDATA, processing
 * instructions, DOCTYPE and quoted attribute values skipped).
 */
#include "proto/plist_depth.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/lp_cursor.h"
#include "src/base/lp_error.h"

#define BPLIST_MAGIC "bplist00"
#define BPLIST_HDR 8
#define BPLIST_TRAILER 32

enum { ST_NEW = 0, ST_OPEN, ST_DONE };

struct bp {
	const uint8_t *buf;
	size_t len;
	size_t ot;   /* offset table offset == end of the object area */
	uint8_t osz; /* offset int size */
	uint8_t rsz; /* object ref size */
	uint64_t n;  /* objects */
	uint8_t *state;
	uint32_t *nodes; /* expanded size, saturating at LKD_MAX_NODES + 1 */
};

struct frame {
	uint64_t obj;
	size_t refs; /* offset of the first ref */
	uint64_t nrefs;
	uint64_t i;
	uint32_t nodes;
};

static uint64_t be_n(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Object offset of index `obj`, or 0 if it lies outside the object area. */
static size_t obj_off(const struct bp *b, uint64_t obj)
{
	uint64_t off = be_n(b->buf + b->ot + obj * b->osz, b->osz);

	return (off >= BPLIST_HDR && off < b->ot) ? (size_t)off : 0;
}

/* The count in marker byte m of the object at off (its low nibble, or the
 * int that follows when that is 0xF); *p is set past it. LP_EPLIST if the int
 * is malformed or runs past the object area. */
static int obj_count(const struct bp *b, size_t off, uint8_t m, size_t *p, uint64_t *count)
{
	*p = off + 1;
	*count = m & 0x0F;
	if (*count == 0x0F) {
		uint8_t im;
		unsigned nb;

		if (*p >= b->ot)
			return LP_EPLIST;
		im = b->buf[(*p)++];
		if ((im & 0xF0) != 0x10 || (im & 0x0F) > 3)
			return LP_EPLIST;
		nb = 1u << (im & 0x0F);
		if (nb > b->ot - *p)
			return LP_EPLIST;
		*count = be_n(b->buf + *p, nb);
		*p += nb;
	}
	return 0;
}

/* A string object (ASCII 0x5, UTF-16 0x6, UTF-8 0x7) holding a NUL
 * character. libplist 2.2 converts a UTF-16 one to UTF-8 and keeps the
 * converted length, but reads keys and strings back with strlen() and asserts
 * the two agree (plist_get_key_val(), plist_get_string_val(),
 * plist_dict_next_item()): one such key in a pair record or a device's reply
 * aborts the process. It cuts an ASCII one at the NUL, silently changing the
 * key. No lockdown, usbmuxd or pair record string holds a NUL: LP_EPLIST for
 * any of them, and for a string that runs past the object area; else 0. */
static int string_ok(const struct bp *b, size_t off, uint8_t m)
{
	uint8_t type = m >> 4;
	unsigned unit = type == 0x6 ? 2 : 1;
	uint64_t count;
	size_t p;

	if (type != 0x5 && type != 0x6 && type != 0x7)
		return 0;
	if (obj_count(b, off, m, &p, &count) != 0 || count > (b->ot - p) / unit)
		return LP_EPLIST;
	for (size_t i = 0; i < (size_t)count; i++) {
		const uint8_t *c = b->buf + p + i * unit;

		if (c[0] == 0 && (unit == 1 || c[1] == 0))
			return LP_EPLIST;
	}
	return 0;
}

/* Container? Fills refs/nrefs. 1 container, 0 leaf, LP_EPLIST malformed
 * (or a string libplist would abort on: string_ok()). */
static int container(const struct bp *b, uint64_t obj, size_t *refs, uint64_t *nrefs)
{
	size_t off = obj_off(b, obj), p;
	uint8_t m, type;
	uint64_t count;

	if (!off)
		return LP_EPLIST;
	m = b->buf[off];
	type = m >> 4;
	if (type != 0xA && type != 0xC && type != 0xD)
		return string_ok(b, off, m);
	if (obj_count(b, off, m, &p, &count) != 0)
		return LP_EPLIST;
	if (type == 0xD) {
		if (count > UINT64_MAX / 2)
			return LP_EPLIST;
		count *= 2;
	}
	if (count > (b->ot - p) / b->rsz)
		return LP_EPLIST;
	*refs = p;
	*nrefs = count;
	return 1;
}

static void add_nodes(uint32_t *acc, uint32_t n)
{
	uint64_t s = (uint64_t)*acc + n;

	*acc = s > LKD_MAX_NODES ? LKD_MAX_NODES + 1 : (uint32_t)s;
}

static int bplist_depth(const uint8_t *buf, size_t len, unsigned max_depth)
{
	struct bp b = {.buf = buf, .len = len};
	struct frame *st = NULL;
	size_t depth = 0, refs;
	uint64_t top, nrefs;
	struct lp_rd r;
	int rc, k;

	if (len < BPLIST_HDR + BPLIST_TRAILER || max_depth == 0)
		return LP_EPLIST;
	lp_rd_init(&r, buf + len - BPLIST_TRAILER, BPLIST_TRAILER);
	lp_rd_skip(&r, 6);
	b.osz = lp_rd_u8(&r);
	b.rsz = lp_rd_u8(&r);
	b.n = lp_rd_be64(&r);
	top = lp_rd_be64(&r);
	{
		uint64_t ot = lp_rd_be64(&r);

		if (!lp_rd_ok(&r) || b.osz < 1 || b.osz > 8 || b.rsz < 1 || b.rsz > 8 || b.n == 0 ||
		    top >= b.n || ot < BPLIST_HDR || ot >= len - BPLIST_TRAILER ||
		    b.n > (len - BPLIST_TRAILER - ot) / b.osz)
			return LP_EPLIST;
		b.ot = (size_t)ot;
	}
	/* b.n <= len, so these are bounded by the message cap */
	b.state = calloc((size_t)b.n, 1);
	b.nodes = calloc((size_t)b.n, sizeof(*b.nodes));
	st = calloc(max_depth, sizeof(*st));
	if (!b.state || !b.nodes || !st) {
		rc = LP_ENOMEM;
		goto out;
	}

	k = container(&b, top, &refs, &nrefs);
	if (k <= 0) {
		rc = k;
		goto out;
	}
	st[depth++] = (struct frame){.obj = top, .refs = refs, .nrefs = nrefs, .nodes = 1};
	b.state[top] = ST_OPEN;
	while (depth > 0) {
		struct frame *f = &st[depth - 1];
		uint64_t child;

		if (f->i == f->nrefs) {
			b.state[f->obj] = ST_DONE;
			b.nodes[f->obj] = f->nodes;
			depth--;
			if (depth > 0)
				add_nodes(&st[depth - 1].nodes, f->nodes);
			if (f->nodes > LKD_MAX_NODES) {
				rc = LP_ETOOBIG;
				goto out;
			}
			continue;
		}
		child = be_n(buf + f->refs + f->i * b.rsz, b.rsz);
		f->i++;
		if (child >= b.n) {
			rc = LP_EPLIST;
			goto out;
		}
		if (b.state[child] == ST_DONE) {
			add_nodes(&f->nodes, b.nodes[child]);
			continue;
		}
		if (b.state[child] == ST_OPEN) { /* a reference cycle */
			rc = LP_EPLIST;
			goto out;
		}
		k = container(&b, child, &refs, &nrefs);
		if (k < 0) {
			rc = k;
			goto out;
		}
		if (k == 0) {
			b.state[child] = ST_DONE;
			b.nodes[child] = 1;
			add_nodes(&f->nodes, 1);
			continue;
		}
		if (depth == max_depth) {
			rc = LP_ETOOBIG;
			goto out;
		}
		b.state[child] = ST_OPEN;
		st[depth++] = (struct frame){
			.obj = child, .refs = refs, .nrefs = nrefs, .nodes = 1};
	}
	rc = 0;
out:
	free(st);
	free(b.state);
	free(b.nodes);
	return rc;
}

/* Offset just past the first `pat` at or after i, or len. */
static size_t past(const uint8_t *buf, size_t len, size_t i, const char *pat)
{
	size_t pl = strlen(pat);

	while (i < len && len - i >= pl) {
		const uint8_t *q = memchr(buf + i, (uint8_t)pat[0], len - i);

		if (!q)
			return len;
		i = (size_t)(q - buf);
		if (len - i >= pl && memcmp(q, pat, pl) == 0)
			return i + pl;
		i++;
	}
	return len;
}

static bool starts(const uint8_t *buf, size_t len, size_t i, const char *pat)
{
	size_t pl = strlen(pat);

	return len - i >= pl && memcmp(buf + i, pat, pl) == 0;
}

/* Is the element starting at buf[i] ('<' then name) a container? */
static bool xml_container(const uint8_t *buf, size_t len, size_t i)
{
	static const char *const names[] = {"array", "dict"};

	for (size_t k = 0; k < 2; k++) {
		size_t nl = strlen(names[k]);

		if (len - i - 1 > nl && memcmp(buf + i + 1, names[k], nl) == 0) {
			uint8_t c = buf[i + 1 + nl];

			if (c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\n' || c == '\r')
				return true;
		}
	}
	return false;
}

static int xml_depth(const uint8_t *buf, size_t len, unsigned max_depth)
{
	/* open elements, and which of them are containers; any element may
	 * wrap at most a leaf, hence the +2 (plist wrapper, leaf) */
	size_t depth = 0, containers = 0, i = 0, limit = (size_t)max_depth + 2;
	bool *is_cont = calloc(limit + 1, sizeof(bool));
	int rc = 0;

	if (!is_cont)
		return LP_ENOMEM;
	while (i < len) {
		const uint8_t *lt = memchr(buf + i, '<', len - i);
		bool closing, empty;
		char quote = 0;
		size_t j;

		if (!lt)
			break;
		i = (size_t)(lt - buf);
		if (starts(buf, len, i, "<!--")) {
			i = past(buf, len, i + 4, "-->");
			continue;
		}
		if (starts(buf, len, i, "<![CDATA[")) {
			i = past(buf, len, i + 9, "]]>");
			continue;
		}
		if (starts(buf, len, i, "<?")) {
			i = past(buf, len, i + 2, "?>");
			continue;
		}
		if (starts(buf, len, i, "<!")) { /* DOCTYPE, maybe with [ internal subset ] */
			int br = 0;

			for (j = i + 2; j < len; j++) {
				if (buf[j] == '[')
					br++;
				else if (buf[j] == ']' && br > 0)
					br--;
				else if (buf[j] == '>' && br == 0)
					break;
			}
			i = j < len ? j + 1 : len;
			continue;
		}
		closing = i + 1 < len && buf[i + 1] == '/';
		for (j = i + 1; j < len; j++) {
			if (quote) {
				if (buf[j] == (uint8_t)quote)
					quote = 0;
			} else if (buf[j] == '"' || buf[j] == '\'') {
				quote = (char)buf[j];
			} else if (buf[j] == '>') {
				break;
			}
		}
		if (j >= len)
			break; /* unterminated tag: libplist refuses it */
		empty = buf[j - 1] == '/';
		if (closing) {
			if (depth > 0 && is_cont[--depth])
				containers--;
		} else if (!empty) {
			bool c = xml_container(buf, len, i);

			if (depth == limit || (c && containers == max_depth)) {
				rc = LP_ETOOBIG;
				break;
			}
			is_cont[depth++] = c;
			containers += c;
		}
		i = j + 1;
	}
	free(is_cont);
	return rc;
}

int lkd_plist_check_depth(const uint8_t *body, size_t len, unsigned max_depth)
{
	if (!body && len)
		return LP_EINVAL;
	if (len >= BPLIST_HDR && memcmp(body, BPLIST_MAGIC, BPLIST_HDR) == 0)
		return bplist_depth(body, len, max_depth);
	return xml_depth(body, len, max_depth);
}
