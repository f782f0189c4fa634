/* afc.c - the AFC codec and client (see afc.h; doc/protocol.md section 6). */
#include "proto/afc.h"

#include <stdlib.h>
#include <string.h>

#include "src/base/lp_cursor.h"
#include "src/base/lp_num.h"

void afc_put_header(uint8_t out[AFC_HDR_LEN], uint64_t op, uint64_t packet_num, size_t data_len,
		    size_t payload_len)
{
	struct lp_wr w;

	lp_wr_init_fixed(&w, out, AFC_HDR_LEN);
	lp_wr_bytes(&w, AFC_MAGIC, 8);
	lp_wr_le64(&w, (uint64_t)AFC_HDR_LEN + data_len + payload_len);
	lp_wr_le64(&w, (uint64_t)AFC_HDR_LEN + data_len);
	lp_wr_le64(&w, packet_num);
	lp_wr_le64(&w, op);
}

int afc_parse_header(const uint8_t *buf, size_t len, struct afc_hdr *h)
{
	struct lp_rd r;
	const uint8_t *magic;

	lp_rd_init(&r, buf, len);
	magic = lp_rd_ptr(&r, 8);
	h->entire_len = lp_rd_le64(&r);
	h->this_len = lp_rd_le64(&r);
	h->packet_num = lp_rd_le64(&r);
	h->op = lp_rd_le64(&r);
	if (!lp_rd_ok(&r))
		return LP_ETRUNC;
	if (memcmp(magic, AFC_MAGIC, 8) != 0)
		return LP_EBADMSG;
	if (h->this_len < AFC_HDR_LEN || h->entire_len < h->this_len)
		return LP_EBADMSG;
	if (h->entire_len > AFC_MAX_PACKET)
		return LP_ETOOBIG;
	return 0;
}

static const char *const status_names[] = {
	[AFC_S_SUCCESS] = "success",
	[AFC_S_UNKNOWN_ERROR] = "unknown error",
	[AFC_S_OP_HEADER_INVALID] = "operation header invalid",
	[AFC_S_NO_RESOURCES] = "no resources",
	[AFC_S_READ_ERROR] = "read error",
	[AFC_S_WRITE_ERROR] = "write error",
	[AFC_S_UNKNOWN_PACKET_TYPE] = "unknown packet type",
	[AFC_S_INVALID_ARG] = "invalid argument",
	[AFC_S_OBJECT_NOT_FOUND] = "object not found",
	[AFC_S_OBJECT_IS_DIR] = "object is a directory",
	[AFC_S_PERM_DENIED] = "permission denied",
	[AFC_S_SERVICE_NOT_CONNECTED] = "service not connected",
	[AFC_S_OP_TIMEOUT] = "operation timed out",
	[AFC_S_TOO_MUCH_DATA] = "too much data",
	[AFC_S_END_OF_DATA] = "end of data",
	[AFC_S_OP_NOT_SUPPORTED] = "operation not supported",
	[AFC_S_OBJECT_EXISTS] = "object exists",
	[AFC_S_OBJECT_BUSY] = "object busy",
	[AFC_S_NO_SPACE_LEFT] = "no space left",
	[AFC_S_OP_WOULD_BLOCK] = "operation would block",
	[AFC_S_IO_ERROR] = "I/O error",
	[AFC_S_OP_INTERRUPTED] = "operation interrupted",
	[AFC_S_OP_IN_PROGRESS] = "operation in progress",
	[AFC_S_INTERNAL_ERROR] = "internal error",
};

const char *afc_status_name(uint64_t status)
{
	if (status < sizeof(status_names) / sizeof(status_names[0]) && status_names[status])
		return status_names[status];
	return "unknown status";
}

int afc_status_err(uint64_t status)
{
	switch (status) {
	case AFC_S_SUCCESS:
		return 0;
	case AFC_S_OBJECT_NOT_FOUND:
		return LP_ENOENT;
	case AFC_S_PERM_DENIED:
		return LP_EACCES;
	case AFC_S_NO_SPACE_LEFT:
		return LP_ETOOBIG;
	case AFC_S_OP_NOT_SUPPORTED:
	case AFC_S_UNKNOWN_PACKET_TYPE:
		return LP_EUNSUPPORTED;
	default:
		return LP_EPROTO;
	}
}

bool afc_kv_get(const uint8_t *list, size_t len, const char *key, char *out, size_t n)
{
	size_t off = 0;

	if (len == 0 || list[len - 1] != '\0')
		return false;
	while (off < len) {
		const char *k = (const char *)list + off;
		size_t kl = strlen(k);
		const char *v;

		if (off + kl + 1 >= len)
			return false; /* a key without a value */
		v = k + kl + 1;
		if (strcmp(k, key) == 0) {
			size_t vl = strlen(v);
			if (n == 0)
				return true;
			if (vl >= n)
				vl = n - 1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return true;
		}
		off += kl + 1 + strlen(v) + 1;
	}
	return false;
}

/* --------------------------------------------------------------------------
 * Client
 */

struct afc_client {
	struct lp_stream *s; /* borrowed */
	uint64_t packet_num; /* of the last request sent */
	uint8_t *rx;	     /* the last reply after its header */
	size_t rx_cap;
	size_t data_len, payload_len; /* of the last reply */
	uint64_t status;	      /* error status of the last reply */
	bool broken;		      /* out of step with the peer: every call fails */
};

struct afc_client *afc_client_new(struct lp_stream *stream)
{
	struct afc_client *c = calloc(1, sizeof(*c));

	if (c)
		c->s = stream;
	return c;
}

void afc_client_free(struct afc_client *c)
{
	if (!c)
		return;
	free(c->rx);
	free(c);
}

/* Send one request: header, operation data, payload. */
static int send_req(struct afc_client *c, uint64_t op, const uint8_t *data, size_t dlen,
		    const uint8_t *payload, size_t plen, uint64_t deadline, struct lp_errinfo *e)
{
	uint8_t head[AFC_HDR_LEN + 16 + AFC_PATH_MAX];
	int r;

	c->status = AFC_S_SUCCESS;
	if (c->broken)
		return lp_err_set(e, LP_EPROTO,
				  "the AFC connection is out of step after an earlier error");
	if (dlen > sizeof(head) - AFC_HDR_LEN)
		return lp_err_set(e, LP_EINVAL, "AFC request data too long");
	c->packet_num++;
	afc_put_header(head, op, c->packet_num, dlen, plen);
	if (dlen)
		memcpy(head + AFC_HDR_LEN, data, dlen);
	r = lp_stream_send(c->s, head, AFC_HDR_LEN + dlen, deadline, e);
	if (r == 0 && plen)
		r = lp_stream_send(c->s, payload, plen, deadline, e);
	if (r)
		c->broken = true;
	return r;
}

/* Read the reply to the last request. A STATUS reply with an error code ends
 * the call with that error; `want` is the operation a success must carry
 * (AFC_OP_STATUS for requests answered by status 0). */
static int recv_reply_inner(struct afc_client *c, uint64_t want, uint64_t deadline,
			    struct lp_errinfo *e)
{
	uint8_t hb[AFC_HDR_LEN];
	struct afc_hdr h;
	size_t body;
	int r;

	r = lp_stream_read_full(c->s, hb, sizeof(hb), deadline, e);
	if (r)
		return r;
	r = afc_parse_header(hb, sizeof(hb), &h);
	if (r == LP_ETOOBIG)
		return lp_err_set(e, LP_EPROTO, "AFC reply of %llu bytes is over the %u-byte cap",
				  (unsigned long long)h.entire_len, (unsigned)AFC_MAX_PACKET);
	if (r)
		return lp_err_set(e, LP_EPROTO, "AFC reply header is malformed (%s)",
				  lp_strerror(r));
	if (h.packet_num != c->packet_num)
		return lp_err_set(
			e, LP_EPROTO, "AFC reply carries packet number %llu, expected %llu",
			(unsigned long long)h.packet_num, (unsigned long long)c->packet_num);
	body = (size_t)(h.entire_len - AFC_HDR_LEN);
	if (body > c->rx_cap) {
		uint8_t *p = realloc(c->rx, body);
		if (!p)
			return lp_err_set(e, LP_ENOMEM, "out of memory for an AFC reply");
		c->rx = p;
		c->rx_cap = body;
	}
	if (body) {
		r = lp_stream_read_full(c->s, c->rx, body, deadline, e);
		if (r)
			return r;
	}
	c->data_len = (size_t)(h.this_len - AFC_HDR_LEN);
	c->payload_len = body - c->data_len;
	if (h.op == AFC_OP_STATUS) {
		struct lp_rd rd;
		uint64_t st;

		lp_rd_init(&rd, c->rx, c->data_len);
		st = lp_rd_le64(&rd);
		if (!lp_rd_ok(&rd))
			return lp_err_set(e, LP_EPROTO, "AFC status reply without a status code");
		c->status = st;
		if (st != AFC_S_SUCCESS)
			return lp_err_set(e, afc_status_err(st), "AFC: %s (status %llu)",
					  afc_status_name(st), (unsigned long long)st);
		if (want == AFC_OP_STATUS)
			return 0;
		return lp_err_set(e, LP_EPROTO,
				  "AFC answered success where operation 0x%llx was due",
				  (unsigned long long)want);
	}
	if (h.op != want)
		return lp_err_set(e, LP_EPROTO, "AFC answered operation 0x%llx, expected 0x%llx",
				  (unsigned long long)h.op, (unsigned long long)want);
	return 0;
}

static int recv_reply(struct afc_client *c, uint64_t want, uint64_t deadline, struct lp_errinfo *e)
{
	int r = recv_reply_inner(c, want, deadline, e);

	/* a refusal (an error status) leaves the exchange in step; anything
	 * else may have left bytes of this reply unread */
	if (r && c->status == AFC_S_SUCCESS)
		c->broken = true;
	return r;
}

static int path_data(const char *path, uint8_t *buf, size_t cap, size_t prefix, size_t *len,
		     struct lp_errinfo *e)
{
	size_t n = strlen(path);

	if (n == 0 || n >= AFC_PATH_MAX || prefix + n + 1 > cap)
		return lp_err_set(e, LP_EINVAL, "AFC path empty or too long");
	memcpy(buf + prefix, path, n + 1);
	*len = prefix + n + 1;
	return 0;
}

int afc_file_open(struct afc_client *c, const char *path, enum afc_mode mode, uint64_t *handle,
		  uint64_t deadline, struct lp_errinfo *e)
{
	uint8_t d[8 + AFC_PATH_MAX];
	struct lp_wr w;
	struct lp_rd rd;
	size_t len = 0;
	int r;

	lp_wr_init_fixed(&w, d, 8);
	lp_wr_le64(&w, (uint64_t)mode);
	r = path_data(path, d, sizeof(d), 8, &len, e);
	if (r == 0)
		r = send_req(c, AFC_OP_FILE_OPEN, d, len, NULL, 0, deadline, e);
	if (r == 0)
		r = recv_reply(c, AFC_OP_FILE_OPEN_RES, deadline, e);
	if (r)
		return r;
	lp_rd_init(&rd, c->rx, c->data_len);
	*handle = lp_rd_le64(&rd);
	if (!lp_rd_ok(&rd))
		return lp_err_set(e, LP_EPROTO, "AFC open reply without a file handle");
	return 0;
}

static int handle_req(struct afc_client *c, uint64_t op, uint64_t handle, uint64_t deadline,
		      struct lp_errinfo *e)
{
	uint8_t d[8];
	struct lp_wr w;
	int r;

	lp_wr_init_fixed(&w, d, sizeof(d));
	lp_wr_le64(&w, handle);
	r = send_req(c, op, d, sizeof(d), NULL, 0, deadline, e);
	return r ? r : recv_reply(c, AFC_OP_STATUS, deadline, e);
}

int afc_file_close(struct afc_client *c, uint64_t handle, uint64_t deadline, struct lp_errinfo *e)
{
	return handle_req(c, AFC_OP_FILE_CLOSE, handle, deadline, e);
}

int afc_file_write(struct afc_client *c, uint64_t handle, const uint8_t *data, size_t len,
		   uint64_t deadline, struct lp_errinfo *e)
{
	uint8_t d[8];
	struct lp_wr w;
	int r;

	if (len > AFC_MAX_IO)
		return lp_err_set(e, LP_EINVAL, "AFC write of %zu bytes is over %u", len,
				  (unsigned)AFC_MAX_IO);
	lp_wr_init_fixed(&w, d, sizeof(d));
	lp_wr_le64(&w, handle);
	r = send_req(c, AFC_OP_WRITE, d, sizeof(d), data, len, deadline, e);
	return r ? r : recv_reply(c, AFC_OP_STATUS, deadline, e);
}

int afc_file_read(struct afc_client *c, uint64_t handle, uint8_t *buf, size_t cap, size_t *got,
		  uint64_t deadline, struct lp_errinfo *e)
{
	uint8_t d[16];
	struct lp_wr w;
	size_t n;
	int r;

	*got = 0;
	if (cap > AFC_MAX_IO)
		cap = AFC_MAX_IO;
	lp_wr_init_fixed(&w, d, sizeof(d));
	lp_wr_le64(&w, handle);
	lp_wr_le64(&w, (uint64_t)cap);
	r = send_req(c, AFC_OP_READ, d, sizeof(d), NULL, 0, deadline, e);
	if (r == 0)
		r = recv_reply(c, AFC_OP_DATA, deadline, e);
	if (r)
		return r;
	/* the bytes read are everything after the header (some peers put
	 * them in the payload, none in operation data; take both in order) */
	n = c->data_len + c->payload_len;
	if (n > cap)
		return lp_err_set(e, LP_EPROTO, "AFC read returned %zu bytes for %zu asked", n,
				  cap);
	if (n)
		memcpy(buf, c->rx, n);
	*got = n;
	return 0;
}

int afc_file_size(struct afc_client *c, const char *path, uint64_t *size, uint64_t deadline,
		  struct lp_errinfo *e)
{
	uint8_t d[AFC_PATH_MAX];
	char v[32];
	size_t len = 0;
	int r;

	r = path_data(path, d, sizeof(d), 0, &len, e);
	if (r == 0)
		r = send_req(c, AFC_OP_GET_FILE_INFO, d, len, NULL, 0, deadline, e);
	if (r == 0)
		r = recv_reply(c, AFC_OP_DATA, deadline, e);
	if (r)
		return r;
	if (!afc_kv_get(c->rx, c->data_len + c->payload_len, "st_size", v, sizeof(v)) ||
	    lp_parse_uint(v, 0, UINT64_MAX, size) != 0)
		return lp_err_set(e, LP_EPROTO, "AFC file info without a valid st_size");
	return 0;
}

int afc_remove_path(struct afc_client *c, const char *path, uint64_t deadline, struct lp_errinfo *e)
{
	uint8_t d[AFC_PATH_MAX];
	size_t len = 0;
	int r;

	r = path_data(path, d, sizeof(d), 0, &len, e);
	if (r == 0)
		r = send_req(c, AFC_OP_REMOVE_PATH, d, len, NULL, 0, deadline, e);
	return r ? r : recv_reply(c, AFC_OP_STATUS, deadline, e);
}

uint64_t afc_last_status(const struct afc_client *c)
{
	return c->status;
}
