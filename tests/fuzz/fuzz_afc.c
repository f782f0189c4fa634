/* fuzz_afc.c - libFuzzer harness for the AFC codec, the AFC client's reply
 * handling and the simulated iPhone's AFC service.
 *
 * Input: byte 0 picks the target (0 mod 3: the service, fed the rest in
 * chunks of byte 1 + 1 bytes; 1: the client, the rest being the "device's"
 * replies to a fixed sequence of requests; 2: the header parser and the
 * key/value list reader on the raw bytes). Also builds standalone:
 *   cc -DFUZZ_MAIN ... fuzz_afc.c && ./a.out FILE...
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/afc.h"
#include "src/device/sim_afc.h"

static volatile size_t sink;

static int io_send(void *ud, uint32_t conn, const uint8_t *buf, size_t len)
{
	struct afc_hdr h;

	/* what the service sends must itself be a valid packet start */
	if (len >= AFC_HDR_LEN && memcmp(buf, AFC_MAGIC, 8) == 0 &&
	    afc_parse_header(buf, len, &h) != 0)
		abort();
	sink += len;
	return 0;
}

static void io_reset(void *ud, uint32_t conn)
{
	sink++;
}

struct canned {
	const uint8_t *p;
	size_t len, off;
};

static int c_send(struct lp_stream *s, const uint8_t *b, size_t n, uint64_t dl,
		  struct lp_errinfo *e)
{
	return 0;
}

static int c_recv(struct lp_stream *s, uint8_t *b, size_t cap, size_t *got, uint64_t dl,
		  struct lp_errinfo *e)
{
	struct canned *c = s->impl;
	size_t n = c->len - c->off;

	if (n == 0)
		return lp_err_set(e, LP_ECLOSED, "end of input");
	if (n > cap)
		n = cap;
	memcpy(b, c->p + c->off, n);
	c->off += n;
	*got = n;
	return 0;
}

static void c_close(struct lp_stream *s)
{
}

static const struct lp_stream_ops canned_ops = {c_send, c_recv, c_close};

static void fuzz_client(const uint8_t *data, size_t size)
{
	struct canned cn = {data, size, 0};
	struct lp_clock clk;
	struct lp_stream st;
	struct lp_errinfo e = {0};
	struct afc_client *c;
	uint8_t buf[4096];
	uint64_t h = 0, sz = 0;
	size_t got = 0;

	lp_clock_init_virtual(&clk, 0);
	st = (struct lp_stream){&canned_ops, &clk, &cn};
	c = afc_client_new(&st);
	if (!c)
		return;
	/* the throughput sequence; each step runs whatever the one before did */
	afc_file_open(c, "/f", AFC_MODE_WRONLY, &h, 0, &e);
	afc_file_write(c, h, buf, 100, 0, &e);
	afc_file_close(c, h, 0, &e);
	if (afc_file_size(c, "/f", &sz, 0, &e) == 0)
		sink += sz;
	afc_file_open(c, "/f", AFC_MODE_RDONLY, &h, 0, &e);
	for (int i = 0; i < 4; i++)
		if (afc_file_read(c, h, buf, sizeof(buf), &got, 0, &e) == 0)
			sink += got;
	afc_remove_path(c, "/f", 0, &e);
	sink += afc_last_status(c);
	afc_client_free(c);
}

static void fuzz_service(const uint8_t *data, size_t size)
{
	struct sim_afc *a;
	size_t chunk, off = 1;

	if (size < 1)
		return;
	chunk = (size_t)data[0] + 1;
	a = sim_afc_new(&(struct sim_afc_io){io_send, io_reset, NULL});
	if (!a)
		return;
	sim_afc_accept(a, 1);
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		if (!sim_afc_data(a, 1, data + off, n))
			sim_afc_accept(a, 1); /* reset: a new connection takes the rest */
		off += n;
	}
	sim_afc_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct afc_hdr h;
	char v[64];

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		fuzz_service(data + 1, size - 1);
		break;
	case 1:
		fuzz_client(data + 1, size - 1);
		break;
	default:
		if (afc_parse_header(data + 1, size - 1, &h) == 0)
			sink += h.entire_len;
		if (afc_kv_get(data + 1, size - 1, "st_size", v, sizeof(v)))
			sink += strlen(v);
	}
	return 0;
}

#include "tests/fuzz/fuzz_main.h"
