/* test_afc.c - the AFC codec, the client (proto/afc.c) against the
 * simulated iPhone's file service (src/device/sim_afc.c) over an in-memory
 * stream, and both against packets that break the protocol. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/afc.h"
#include "src/base/lp_cursor.h"
#include "src/device/sim_afc.h"

/* --- an in-memory stream: the client's sends go to the service, the
 * service's replies (or canned bytes) come back --------------------------- */

struct loop {
	struct lp_stream st;
	struct lp_clock clk;
	struct sim_afc *afc; /* NULL: only canned replies */
	uint8_t *rx;	     /* bytes for the client to read */
	size_t rx_len, rx_off;
	int resets;
};

static void rx_append(struct loop *l, const uint8_t *b, size_t n)
{
	l->rx = realloc(l->rx, l->rx_len + n);
	assert_non_null(l->rx);
	memcpy(l->rx + l->rx_len, b, n);
	l->rx_len += n;
}

static int io_send(void *ud, uint32_t conn, const uint8_t *buf, size_t len)
{
	assert_int_equal(conn, 7);
	rx_append(ud, buf, len);
	return 0;
}

static void io_reset(void *ud, uint32_t conn)
{
	struct loop *l = ud;
	l->resets++;
}

static int st_send(struct lp_stream *s, const uint8_t *buf, size_t len, uint64_t dl,
		   struct lp_errinfo *e)
{
	struct loop *l = s->impl;

	if (l->afc)
		assert_true(sim_afc_data(l->afc, 7, buf, len));
	return 0;
}

static int st_recv(struct lp_stream *s, uint8_t *buf, size_t cap, size_t *got, uint64_t dl,
		   struct lp_errinfo *e)
{
	struct loop *l = s->impl;
	size_t n = l->rx_len - l->rx_off;

	if (n == 0)
		return lp_err_set(e, LP_ETIMEDOUT, "nothing to read");
	if (n > cap)
		n = cap;
	memcpy(buf, l->rx + l->rx_off, n);
	l->rx_off += n;
	*got = n;
	return 0;
}

static void st_close(struct lp_stream *s)
{
}

static const struct lp_stream_ops loop_ops = {st_send, st_recv, st_close};

static void loop_init(struct loop *l, bool with_service)
{
	memset(l, 0, sizeof(*l));
	lp_clock_init_virtual(&l->clk, 0);
	l->st = (struct lp_stream){&loop_ops, &l->clk, l};
	if (with_service) {
		l->afc = sim_afc_new(&(struct sim_afc_io){io_send, io_reset, l});
		assert_non_null(l->afc);
		assert_true(sim_afc_accept(l->afc, 7));
	}
}

static void loop_free(struct loop *l)
{
	sim_afc_free(l->afc);
	free(l->rx);
}

/* --- codec ---------------------------------------------------------------- */

static void test_header(void **state)
{
	uint8_t h[AFC_HDR_LEN];
	struct afc_hdr p;

	afc_put_header(h, AFC_OP_WRITE, 9, 8, 1000);
	assert_memory_equal(h, "CFA6LPAA", 8);
	assert_int_equal(afc_parse_header(h, sizeof(h), &p), 0);
	assert_int_equal(p.entire_len, 40 + 8 + 1000);
	assert_int_equal(p.this_len, 48);
	assert_int_equal(p.packet_num, 9);
	assert_int_equal(p.op, AFC_OP_WRITE);
	/* little-endian on the wire */
	assert_int_equal(h[8], (40 + 8 + 1000) & 0xff);
	assert_int_equal(h[9], (40 + 8 + 1000) >> 8);

	assert_int_equal(afc_parse_header(h, 39, &p), LP_ETRUNC);
	h[0] = 'X';
	assert_int_equal(afc_parse_header(h, sizeof(h), &p), LP_EBADMSG);
	afc_put_header(h, AFC_OP_STATUS, 1, 0, 0);
	h[16] = 39; /* header length under 40 */
	assert_int_equal(afc_parse_header(h, sizeof(h), &p), LP_EBADMSG);
	afc_put_header(h, AFC_OP_STATUS, 1, 8, 0);
	h[8] = 41; /* entire length under header length */
	assert_int_equal(afc_parse_header(h, sizeof(h), &p), LP_EBADMSG);
	afc_put_header(h, AFC_OP_DATA, 1, 0, AFC_MAX_PACKET); /* one past the cap */
	assert_int_equal(afc_parse_header(h, sizeof(h), &p), LP_ETOOBIG);
	memset(h + 8, 0xff, 16); /* 2^64 - 1 */
	assert_int_equal(afc_parse_header(h, sizeof(h), &p), LP_ETOOBIG);
}

static void test_kv(void **state)
{
	static const uint8_t list[] = "st_size\0"
				      "42\0"
				      "st_ifmt\0"
				      "S_IFREG";
	static const uint8_t odd[] = "st_size\0"
				     "42\0"
				     "st_ifmt";
	char v[8];

	assert_true(afc_kv_get(list, sizeof(list), "st_size", v, sizeof(v)));
	assert_string_equal(v, "42");
	assert_true(afc_kv_get(list, sizeof(list), "st_ifmt", v, 4));
	assert_string_equal(v, "S_I"); /* cut to fit */
	assert_false(afc_kv_get(list, sizeof(list), "st_blocks", v, sizeof(v)));
	assert_false(afc_kv_get(odd, sizeof(odd), "st_ifmt", v, sizeof(v)));	   /* no value */
	assert_false(afc_kv_get(list, sizeof(list) - 1, "st_size", v, sizeof(v))); /* no NUL */
	assert_false(afc_kv_get(list, 0, "st_size", v, sizeof(v)));
	assert_string_equal(afc_status_name(AFC_S_OBJECT_NOT_FOUND), "object not found");
	assert_string_equal(afc_status_name(999), "unknown status");
	assert_int_equal(afc_status_err(AFC_S_PERM_DENIED), LP_EACCES);
	assert_int_equal(afc_status_err(AFC_S_OP_NOT_SUPPORTED), LP_EUNSUPPORTED);
}

/* --- client and service ----------------------------------------------------- */

static void pattern(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 131 + seed + (i >> 9));
}

static void test_round_trip(void **state)
{
	struct loop l;
	struct afc_client *c;
	struct lp_errinfo e = {0};
	const size_t total = 3 * (1u << 20) + 12345;
	uint8_t *out = malloc(total), *in = malloc(total);
	uint64_t h = 0, size = 0;
	size_t have = 0, got = 0, files, bytes;

	assert_non_null(out);
	assert_non_null(in);
	pattern(out, total, 3);
	loop_init(&l, true);
	c = afc_client_new(&l.st);
	assert_non_null(c);

	assert_int_equal(afc_file_open(c, "/lp-test.tmp", AFC_MODE_WRONLY, &h, 0, &e), 0);
	for (size_t off = 0; off < total; off += 1u << 20) {
		size_t n = total - off < (1u << 20) ? total - off : 1u << 20;
		assert_int_equal(afc_file_write(c, h, out + off, n, 0, &e), 0);
	}
	assert_int_equal(afc_file_close(c, h, 0, &e), 0);
	assert_int_equal(afc_file_size(c, "lp-test.tmp", &size, 0, &e), 0); /* same path */
	assert_int_equal(size, total);
	sim_afc_usage(l.afc, &files, &bytes);
	assert_int_equal(files, 1);
	assert_int_equal(bytes, total);

	assert_int_equal(afc_file_open(c, "//lp-test.tmp", AFC_MODE_RDONLY, &h, 0, &e), 0);
	while (have < total) {
		assert_int_equal(afc_file_read(c, h, in + have, 1u << 20, &got, 0, &e), 0);
		assert_true(got > 0);
		have += got;
	}
	assert_int_equal(afc_file_read(c, h, in, 100, &got, 0, &e), 0);
	assert_int_equal(got, 0); /* end of file */
	assert_memory_equal(in, out, total);
	/* a read-only handle cannot write */
	assert_int_equal(afc_file_write(c, h, out, 10, 0, &e), LP_EACCES);
	assert_int_equal(afc_last_status(c), AFC_S_PERM_DENIED);
	assert_int_equal(afc_file_close(c, h, 0, &e), 0);
	assert_int_equal(afc_last_status(c), AFC_S_SUCCESS);

	assert_int_equal(afc_remove_path(c, "/lp-test.tmp", 0, &e), 0);
	assert_int_equal(afc_file_size(c, "/lp-test.tmp", &size, 0, &e), LP_ENOENT);
	assert_int_equal(afc_last_status(c), AFC_S_OBJECT_NOT_FOUND);
	sim_afc_usage(l.afc, &files, &bytes);
	assert_int_equal(files, 0); /* nothing left on the device */
	assert_int_equal(bytes, 0);
	assert_int_equal(l.rx_off, l.rx_len); /* one reply per request, nothing extra */

	afc_client_free(c);
	loop_free(&l);
	free(out);
	free(in);
}

static void test_refusals(void **state)
{
	struct loop l;
	struct afc_client *c;
	struct lp_errinfo e = {0};
	uint64_t h = 0;

	loop_init(&l, true);
	c = afc_client_new(&l.st);
	assert_non_null(c);
	/* the media area is a jail */
	assert_int_equal(afc_file_open(c, "/DCIM/../../etc/passwd", AFC_MODE_RDONLY, &h, 0, &e),
			 LP_EACCES);
	assert_non_null(strstr(e.msg, "permission denied"));
	assert_int_equal(afc_file_open(c, "/missing", AFC_MODE_RDONLY, &h, 0, &e), LP_ENOENT);
	assert_int_equal(afc_file_open(c, "/", AFC_MODE_WRONLY, &h, 0, &e), LP_EPROTO);
	assert_int_equal(afc_last_status(c), AFC_S_OBJECT_IS_DIR);
	assert_int_equal(afc_file_open(c, "/x", (enum afc_mode)9, &h, 0, &e), LP_EPROTO);
	assert_int_equal(afc_last_status(c), AFC_S_INVALID_ARG);
	assert_int_equal(afc_file_close(c, 12345, 0, &e), LP_EPROTO); /* no such handle */
	assert_int_equal(afc_last_status(c), AFC_S_INVALID_ARG);
	assert_int_equal(afc_remove_path(c, "/", 0, &e), LP_EACCES);
	assert_int_equal(l.resets, 0);
	afc_client_free(c);
	loop_free(&l);
}

/* Raw packets to the service: operations it does not serve are answered
 * with a status; a packet that breaks the framing resets the connection. */
static uint64_t raw_status(struct loop *l, uint64_t op)
{
	uint8_t h[AFC_HDR_LEN];
	struct afc_hdr p;
	struct lp_rd r;
	uint64_t st;

	afc_put_header(h, op, 5, 0, 0);
	l->rx_len = l->rx_off = 0;
	assert_true(sim_afc_data(l->afc, 7, h, sizeof(h)));
	assert_int_equal(l->rx_len, AFC_HDR_LEN + 8);
	assert_int_equal(afc_parse_header(l->rx, l->rx_len, &p), 0);
	assert_int_equal(p.op, AFC_OP_STATUS);
	assert_int_equal(p.packet_num, 5); /* the request's number comes back */
	lp_rd_init(&r, l->rx + AFC_HDR_LEN, 8);
	st = lp_rd_le64(&r);
	return st;
}

static void test_service_framing(void **state)
{
	struct loop l;
	uint8_t h[AFC_HDR_LEN];

	loop_init(&l, true);
	assert_int_equal(raw_status(&l, AFC_OP_READ_DIR), AFC_S_OP_NOT_SUPPORTED);
	assert_int_equal(raw_status(&l, 0x1234), AFC_S_UNKNOWN_PACKET_TYPE);
	assert_false(sim_afc_data(l.afc, 8, h, 1)); /* not an AFC connection */

	/* a header split at every byte still makes one request */
	afc_put_header(h, AFC_OP_GET_DEVINFO, 6, 0, 0);
	l.rx_len = l.rx_off = 0;
	for (size_t i = 0; i < sizeof(h); i++)
		assert_true(sim_afc_data(l.afc, 7, h + i, 1));
	assert_true(l.rx_len > AFC_HDR_LEN);

	/* lengths over the cap: reset before anything is buffered */
	afc_put_header(h, AFC_OP_WRITE, 7, 8, AFC_MAX_PACKET);
	assert_true(sim_afc_data(l.afc, 7, h, sizeof(h)));
	assert_int_equal(l.resets, 1);
	assert_false(sim_afc_data(l.afc, 7, h, 1)); /* the connection is gone */

	/* bad magic on a new connection */
	assert_true(sim_afc_accept(l.afc, 7));
	memcpy(h, "XXXXXXXX", 8);
	assert_true(sim_afc_data(l.afc, 7, h, sizeof(h)));
	assert_int_equal(l.resets, 2);
	loop_free(&l);
}

/* The client against replies that break the protocol: each case on a fresh
 * client, and a client that saw one is out of step for good. */
static struct afc_client *fresh(struct loop *l, struct afc_client *old)
{
	afc_client_free(old);
	l->rx_len = l->rx_off = 0;
	return afc_client_new(&l->st);
}

static void test_client_hostile(void **state)
{
	struct loop l;
	struct afc_client *c = NULL;
	struct lp_errinfo e = {0};
	uint8_t r[AFC_HDR_LEN + 32];
	uint64_t h = 0;
	size_t got;
	uint8_t buf[16];
	char longp[AFC_PATH_MAX + 8];

	loop_init(&l, false);

	/* wrong packet number */
	c = fresh(&l, c);
	afc_put_header(r, AFC_OP_FILE_OPEN_RES, 99, 8, 0);
	memset(r + AFC_HDR_LEN, 0, 8);
	rx_append(&l, r, AFC_HDR_LEN + 8);
	assert_int_equal(afc_file_open(c, "/x", AFC_MODE_WRONLY, &h, 0, &e), LP_EPROTO);
	assert_non_null(strstr(e.msg, "packet number 99"));
	/* and the client stays out of step */
	assert_int_equal(afc_file_close(c, 1, 0, &e), LP_EPROTO);
	assert_non_null(strstr(e.msg, "out of step"));

	/* a reply over the cap is refused before allocation */
	c = fresh(&l, c);
	afc_put_header(r, AFC_OP_DATA, 1, 0, AFC_MAX_PACKET);
	rx_append(&l, r, AFC_HDR_LEN);
	assert_int_equal(afc_file_read(c, 1, buf, sizeof(buf), &got, 0, &e), LP_EPROTO);
	assert_non_null(strstr(e.msg, "cap"));

	/* more bytes than asked for */
	c = fresh(&l, c);
	afc_put_header(r, AFC_OP_DATA, 1, 0, 32);
	memset(r + AFC_HDR_LEN, 'a', 32);
	rx_append(&l, r, AFC_HDR_LEN + 32);
	assert_int_equal(afc_file_read(c, 1, buf, sizeof(buf), &got, 0, &e), LP_EPROTO);
	assert_int_equal(got, 0);

	/* an open answered with DATA */
	c = fresh(&l, c);
	afc_put_header(r, AFC_OP_DATA, 1, 0, 0);
	rx_append(&l, r, AFC_HDR_LEN);
	assert_int_equal(afc_file_open(c, "/x", AFC_MODE_WRONLY, &h, 0, &e), LP_EPROTO);

	/* a status reply without its code */
	c = fresh(&l, c);
	afc_put_header(r, AFC_OP_STATUS, 1, 0, 0);
	rx_append(&l, r, AFC_HDR_LEN);
	assert_int_equal(afc_file_close(c, 1, 0, &e), LP_EPROTO);

	/* a truncated reply ends at the deadline (the stream's error) */
	c = fresh(&l, c);
	afc_put_header(r, AFC_OP_STATUS, 1, 8, 0);
	rx_append(&l, r, AFC_HDR_LEN + 3);
	assert_int_equal(afc_file_close(c, 1, 0, &e), LP_ETIMEDOUT);

	/* a path that does not fit is refused before anything is sent */
	c = fresh(&l, c);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(afc_remove_path(c, longp, 0, &e), LP_EINVAL);
	assert_int_equal(l.rx_off, 0);
	afc_client_free(c);
	loop_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),		cmocka_unit_test(test_kv),
		cmocka_unit_test(test_round_trip),	cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_service_framing), cmocka_unit_test(test_client_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
