/* sim_afc.c - the simulated iPhone's AFC service (see sim_afc.h).
 *
 * Each connection reassembles the host's bytes into packets (header first;
 * the entire length is checked against AFC_MAX_PACKET before the body is
 * buffered) and answers each with one packet carrying the request's packet
 * number: STATUS (a u64 code), FILE_OPEN_RES (the handle) or DATA.
 * Decided here where the public sources are silent: a READ larger than
 * AFC_MAX_IO is answered with AFC_MAX_IO bytes; an unknown handle is
 * "invalid argument"; the open modes that read (r, r+) need the file to
 * exist. */
#include "src/device/sim_afc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/afc.h"
#include "src/base/lp_cursor.h"

struct afc_file {
	bool used;
	char path[AFC_PATH_MAX];
	uint8_t *data;
	size_t len, cap;
};

struct afc_handle {
	bool used;
	uint64_t id;
	size_t file;
	size_t pos;
	bool rd, wr, append;
};

struct afc_conn {
	bool used;
	uint32_t conn;
	uint8_t hdr[AFC_HDR_LEN];
	size_t hlen;
	struct afc_hdr h;
	uint8_t *body; /* entire_len - header, while a packet is being received */
	size_t blen, bneed;
	struct afc_handle hd[SIM_AFC_HANDLES];
};

struct sim_afc {
	struct sim_afc_io io;
	struct afc_file f[SIM_AFC_FILES];
	size_t used_bytes;
	struct afc_conn c[SIM_AFC_CONNS];
	uint64_t next_handle;
};

struct sim_afc *sim_afc_new(const struct sim_afc_io *io)
{
	struct sim_afc *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->io = *io;
	a->next_handle = 1;
	return a;
}

static void conn_drop(struct afc_conn *c)
{
	free(c->body);
	memset(c, 0, sizeof(*c));
}

void sim_afc_free(struct sim_afc *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < SIM_AFC_CONNS; i++)
		conn_drop(&a->c[i]);
	for (size_t i = 0; i < SIM_AFC_FILES; i++)
		free(a->f[i].data);
	free(a);
}

static struct afc_conn *conn_find(struct sim_afc *a, uint32_t conn)
{
	for (size_t i = 0; i < SIM_AFC_CONNS; i++)
		if (a->c[i].used && a->c[i].conn == conn)
			return &a->c[i];
	return NULL;
}

bool sim_afc_accept(struct sim_afc *a, uint32_t conn)
{
	for (size_t i = 0; i < SIM_AFC_CONNS; i++) {
		if (!a->c[i].used) {
			memset(&a->c[i], 0, sizeof(a->c[i]));
			a->c[i].used = true;
			a->c[i].conn = conn;
			return true;
		}
	}
	return false;
}

void sim_afc_closed(struct sim_afc *a, uint32_t conn)
{
	struct afc_conn *c = conn_find(a, conn);

	if (c)
		conn_drop(c);
}

void sim_afc_reset(struct sim_afc *a)
{
	for (size_t i = 0; i < SIM_AFC_CONNS; i++)
		conn_drop(&a->c[i]);
}

void sim_afc_usage(const struct sim_afc *a, size_t *files, size_t *bytes)
{
	size_t n = 0;

	for (size_t i = 0; i < SIM_AFC_FILES; i++)
		n += a->f[i].used;
	*files = n;
	*bytes = a->used_bytes;
}

/* --------------------------------------------------------------------------
 * Replies
 */

static void reply(struct sim_afc *a, struct afc_conn *c, uint64_t op, const uint8_t *data,
		  size_t dlen, const uint8_t *payload, size_t plen)
{
	uint8_t head[AFC_HDR_LEN + 16];

	afc_put_header(head, op, c->h.packet_num, dlen, plen);
	if (dlen)
		memcpy(head + AFC_HDR_LEN, data, dlen);
	if (a->io.send(a->io.ud, c->conn, head, AFC_HDR_LEN + dlen) == 0 && plen)
		a->io.send(a->io.ud, c->conn, payload, plen);
}

static void reply_u64(struct sim_afc *a, struct afc_conn *c, uint64_t op, uint64_t v)
{
	uint8_t d[8];
	struct lp_wr w;

	lp_wr_init_fixed(&w, d, sizeof(d));
	lp_wr_le64(&w, v);
	reply(a, c, op, d, sizeof(d), NULL, 0);
}

static void status(struct sim_afc *a, struct afc_conn *c, enum afc_status st)
{
	reply_u64(a, c, AFC_OP_STATUS, st);
}

/* Key/value strings as DATA payload. */
static void reply_kv(struct sim_afc *a, struct afc_conn *c, const char *const *kv, size_t n)
{
	uint8_t buf[512];
	size_t off = 0;

	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(kv[i]) + 1;
		if (off + l > sizeof(buf))
			break;
		memcpy(buf + off, kv[i], l);
		off += l;
	}
	reply(a, c, AFC_OP_DATA, NULL, 0, buf, off);
}

/* --------------------------------------------------------------------------
 * Paths and files
 */

/* The NUL-terminated path in `d` (len bytes), normalised to "/a/b"; false
 * if missing, unterminated, too long, or escaping the media area. */
static bool take_path(const uint8_t *d, size_t len, char *out, size_t n, bool *escapes)
{
	const char *p = (const char *)d;
	size_t pl = len ? strnlen(p, len) : 0;
	size_t o = 0;

	*escapes = false;
	if (pl == 0 || pl == len || pl >= n - 1)
		return false;
	while (*p) {
		const char *seg;
		size_t sl;

		while (*p == '/')
			p++;
		seg = p;
		while (*p && *p != '/')
			p++;
		sl = (size_t)(p - seg);
		if (sl == 0 || (sl == 1 && seg[0] == '.'))
			continue;
		if (sl == 2 && seg[0] == '.' && seg[1] == '.') {
			*escapes = true;
			return false;
		}
		if (o + 1 + sl >= n)
			return false;
		out[o++] = '/';
		memcpy(out + o, seg, sl);
		o += sl;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return true;
}

static long file_find(struct sim_afc *a, const char *path)
{
	for (size_t i = 0; i < SIM_AFC_FILES; i++)
		if (a->f[i].used && strcmp(a->f[i].path, path) == 0)
			return (long)i;
	return -1;
}

static void file_truncate(struct sim_afc *a, struct afc_file *f)
{
	a->used_bytes -= f->len;
	f->len = 0;
}

static void file_remove(struct sim_afc *a, size_t i)
{
	struct afc_file *f = &a->f[i];

	a->used_bytes -= f->len;
	free(f->data);
	memset(f, 0, sizeof(*f));
}

static struct afc_handle *handle_find(struct afc_conn *c, uint64_t id)
{
	for (size_t i = 0; i < SIM_AFC_HANDLES; i++)
		if (c->hd[i].used && c->hd[i].id == id)
			return &c->hd[i];
	return NULL;
}

/* --------------------------------------------------------------------------
 * Operations
 */

static void op_open(struct sim_afc *a, struct afc_conn *c, struct lp_rd *r)
{
	char path[AFC_PATH_MAX];
	struct afc_handle *h = NULL;
	uint64_t mode = lp_rd_le64(r);
	bool escapes = false, create;
	long fi;

	if (!lp_rd_ok(r) ||
	    !take_path(lp_rd_ptr(r, 0), lp_rd_left(r), path, sizeof(path), &escapes))
		return status(a, c, escapes ? AFC_S_PERM_DENIED : AFC_S_INVALID_ARG);
	if (mode < AFC_MODE_RDONLY || mode > AFC_MODE_RDAPPEND)
		return status(a, c, AFC_S_INVALID_ARG);
	if (strcmp(path, "/") == 0)
		return status(a, c, AFC_S_OBJECT_IS_DIR);
	for (size_t i = 0; i < SIM_AFC_HANDLES && !h; i++)
		if (!c->hd[i].used)
			h = &c->hd[i];
	if (!h)
		return status(a, c, AFC_S_NO_RESOURCES);
	create = mode != AFC_MODE_RDONLY && mode != AFC_MODE_RW;
	fi = file_find(a, path);
	if (fi < 0) {
		if (!create)
			return status(a, c, AFC_S_OBJECT_NOT_FOUND);
		for (size_t i = 0; i < SIM_AFC_FILES && fi < 0; i++)
			if (!a->f[i].used)
				fi = (long)i;
		if (fi < 0)
			return status(a, c, AFC_S_NO_RESOURCES);
		memset(&a->f[fi], 0, sizeof(a->f[fi]));
		a->f[fi].used = true;
		snprintf(a->f[fi].path, sizeof(a->f[fi].path), "%s", path);
	} else if (mode == AFC_MODE_WRONLY || mode == AFC_MODE_WR) {
		file_truncate(a, &a->f[fi]);
	}
	memset(h, 0, sizeof(*h));
	h->used = true;
	h->id = a->next_handle++;
	h->file = (size_t)fi;
	h->rd = mode == AFC_MODE_RDONLY || mode == AFC_MODE_RW || mode == AFC_MODE_WR ||
		mode == AFC_MODE_RDAPPEND;
	h->wr = mode != AFC_MODE_RDONLY;
	h->append = mode == AFC_MODE_APPEND || mode == AFC_MODE_RDAPPEND;
	h->pos = h->append ? a->f[fi].len : 0;
	reply_u64(a, c, AFC_OP_FILE_OPEN_RES, h->id);
}

static void op_write(struct sim_afc *a, struct afc_conn *c, struct lp_rd *r, const uint8_t *pay,
		     size_t plen)
{
	struct afc_handle *h = handle_find(c, lp_rd_le64(r));
	struct afc_file *f;
	size_t end, grow;

	if (!lp_rd_ok(r) || !h)
		return status(a, c, AFC_S_INVALID_ARG);
	if (!h->wr)
		return status(a, c, AFC_S_PERM_DENIED);
	f = &a->f[h->file];
	if (h->append)
		h->pos = f->len;
	end = h->pos + plen;
	grow = end > f->len ? end - f->len : 0;
	if (grow > SIM_AFC_SPACE - a->used_bytes)
		return status(a, c, AFC_S_NO_SPACE_LEFT);
	if (end > f->cap) {
		size_t cap = f->cap ? f->cap : 65536;
		uint8_t *p;
		while (cap < end)
			cap *= 2;
		p = realloc(f->data, cap);
		if (!p)
			return status(a, c, AFC_S_NO_RESOURCES);
		f->data = p;
		f->cap = cap;
	}
	if (h->pos > f->len) /* a hole reads as zeros */
		memset(f->data + f->len, 0, h->pos - f->len);
	if (plen)
		memcpy(f->data + h->pos, pay, plen);
	h->pos = end;
	if (end > f->len) {
		a->used_bytes += end - f->len;
		f->len = end;
	}
	status(a, c, AFC_S_SUCCESS);
}

static void op_read(struct sim_afc *a, struct afc_conn *c, struct lp_rd *r)
{
	struct afc_handle *h = handle_find(c, lp_rd_le64(r));
	uint64_t want = lp_rd_le64(r);
	struct afc_file *f;
	size_t n;

	if (!lp_rd_ok(r) || !h)
		return status(a, c, AFC_S_INVALID_ARG);
	if (!h->rd)
		return status(a, c, AFC_S_PERM_DENIED);
	f = &a->f[h->file];
	if (want > AFC_MAX_IO)
		want = AFC_MAX_IO;
	n = h->pos < f->len ? f->len - h->pos : 0;
	if (n > want)
		n = (size_t)want;
	reply(a, c, AFC_OP_DATA, NULL, 0, n ? f->data + h->pos : NULL, n);
	h->pos += n;
}

static void op_close(struct sim_afc *a, struct afc_conn *c, struct lp_rd *r)
{
	struct afc_handle *h = handle_find(c, lp_rd_le64(r));

	if (!lp_rd_ok(r) || !h)
		return status(a, c, AFC_S_INVALID_ARG);
	h->used = false;
	status(a, c, AFC_S_SUCCESS);
}

static void op_path(struct sim_afc *a, struct afc_conn *c, struct lp_rd *r, uint64_t op)
{
	char path[AFC_PATH_MAX], size[24];
	bool escapes;
	long fi;

	if (!take_path(lp_rd_ptr(r, 0), lp_rd_left(r), path, sizeof(path), &escapes))
		return status(a, c, escapes ? AFC_S_PERM_DENIED : AFC_S_INVALID_ARG);
	if (strcmp(path, "/") == 0) {
		if (op == AFC_OP_REMOVE_PATH)
			return status(a, c, AFC_S_PERM_DENIED);
		const char *const kv[] = {"st_size", "0", "st_nlink", "2", "st_ifmt", "S_IFDIR"};
		return reply_kv(a, c, kv, 6);
	}
	fi = file_find(a, path);
	if (fi < 0)
		return status(a, c, AFC_S_OBJECT_NOT_FOUND);
	if (op == AFC_OP_REMOVE_PATH) {
		/* handles on it (this or another connection) go stale */
		for (size_t k = 0; k < SIM_AFC_CONNS; k++)
			for (size_t i = 0; i < SIM_AFC_HANDLES; i++)
				if (a->c[k].hd[i].used && a->c[k].hd[i].file == (size_t)fi)
					a->c[k].hd[i].used = false;
		file_remove(a, (size_t)fi);
		return status(a, c, AFC_S_SUCCESS);
	}
	snprintf(size, sizeof(size), "%zu", a->f[fi].len);
	const char *const kv[] = {"st_size", size, "st_nlink", "1", "st_ifmt", "S_IFREG"};
	reply_kv(a, c, kv, 6);
}

static void op_devinfo(struct sim_afc *a, struct afc_conn *c)
{
	char total[24], free_b[24];

	snprintf(total, sizeof(total), "%u", (unsigned)SIM_AFC_SPACE);
	snprintf(free_b, sizeof(free_b), "%zu", SIM_AFC_SPACE - a->used_bytes);
	const char *const kv[] = {"Model",	 "iPhone12,1", "FSTotalBytes", total,
				  "FSFreeBytes", free_b,       "FSBlockSize",  "4096"};
	reply_kv(a, c, kv, 8);
}

static void dispatch(struct sim_afc *a, struct afc_conn *c)
{
	size_t dlen = (size_t)(c->h.this_len - AFC_HDR_LEN);
	struct lp_rd r;

	static const uint8_t none[1];

	lp_rd_init(&r, c->body ? c->body : none, dlen); /* a bodiless packet reads as empty */
	switch (c->h.op) {
	case AFC_OP_FILE_OPEN:
		return op_open(a, c, &r);
	case AFC_OP_WRITE:
		return op_write(a, c, &r, c->body ? c->body + dlen : NULL, c->bneed - dlen);
	case AFC_OP_READ:
		return op_read(a, c, &r);
	case AFC_OP_FILE_CLOSE:
		return op_close(a, c, &r);
	case AFC_OP_GET_FILE_INFO:
	case AFC_OP_REMOVE_PATH:
		return op_path(a, c, &r, c->h.op);
	case AFC_OP_GET_DEVINFO:
		return op_devinfo(a, c);
	default:
		return status(a, c,
			      c->h.op >= AFC_OP_STATUS && c->h.op <= AFC_OP_LAST_KNOWN
				      ? AFC_S_OP_NOT_SUPPORTED
				      : AFC_S_UNKNOWN_PACKET_TYPE);
	}
}

bool sim_afc_data(struct sim_afc *a, uint32_t conn, const uint8_t *buf, size_t len)
{
	struct afc_conn *c = conn_find(a, conn);

	if (!c)
		return false;
	while (len) {
		if (c->hlen < AFC_HDR_LEN) {
			size_t take = AFC_HDR_LEN - c->hlen;
			if (take > len)
				take = len;
			memcpy(c->hdr + c->hlen, buf, take);
			c->hlen += take;
			buf += take;
			len -= take;
			if (c->hlen < AFC_HDR_LEN)
				break;
			if (afc_parse_header(c->hdr, AFC_HDR_LEN, &c->h) != 0) {
				/* framing is lost: nothing after this can be read */
				conn_drop(c);
				a->io.reset(a->io.ud, conn);
				return true;
			}
			c->bneed = (size_t)(c->h.entire_len - AFC_HDR_LEN);
			c->blen = 0;
			free(c->body);
			c->body = c->bneed ? malloc(c->bneed) : NULL;
			if (c->bneed && !c->body) {
				conn_drop(c);
				a->io.reset(a->io.ud, conn);
				return true;
			}
		}
		size_t take = c->bneed - c->blen;
		if (take > len)
			take = len;
		if (take)
			memcpy(c->body + c->blen, buf, take);
		c->blen += take;
		buf += take;
		len -= take;
		if (c->blen == c->bneed) {
			dispatch(a, c);
			free(c->body);
			c->body = NULL;
			c->hlen = 0;
		}
	}
	return true;
}
