/* fuzz_lkd_client.c - libFuzzer harness: the lockdown client
 * (proto/lockdown_client.c) against a hostile lockdownd: reply checking of
 * every request trust makes, session TLS with a live device-side TLS server,
 * and the plaintext after StopSession where the device's TLS alert records
 * are skipped.
 *
 * The client runs over a stream whose far end is scripted by the input:
 * chunks [u8 kind][u16 BE length][bytes]:
 *   0  bytes the device sends in plaintext (after TLS: where alerts are skipped)
 *   1  bytes the device writes inside TLS (encrypted by the harness's live
 *      TLS server; plaintext until the handshake is done)
 *   2  the device starts its TLS server (taken as soon as it is next, so it
 *      is ready for the client's ClientHello)
 *   3  the device sends close_notify
 * The client then runs QueryType, GetValue, Pair, StartSession, the TLS
 * handshake (if EnableSessionSSL and a server was started), GetValue and
 * StartService in the session, StopSession, QueryType after TLS, Goodbye -
 * each whatever the one before returned. The script running out closes the
 * stream. Seeds: tests/fuzz/mkseeds.py.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "proto/lockdown_client.h"
#include "proto/pair_cert.h"
#include "proto/pair_record.h"
#include "proto/tls.h"
#include "src/base/lp_clock.h"

struct dev {
	struct lp_stream st;
	const uint8_t *data;
	size_t size, off;
	struct lp_tls *srv;
	uint8_t *pend; /* bytes for the client */
	size_t plen, poff;
};

static X509 *g_dev_cert, *g_host_cert;
static EVP_PKEY *g_dev_key, *g_host_key;
static struct pair_record *g_rec;
static volatile size_t sink;

static void pend_add(struct dev *d, const uint8_t *b, size_t n)
{
	uint8_t *p;

	if (!n)
		return;
	p = realloc(d->pend, d->plen + n);
	if (!p)
		return;
	memcpy(p + d->plen, b, n);
	d->pend = p;
	d->plen += n;
}

static void srv_flush(struct dev *d)
{
	uint8_t *out = NULL;
	size_t n = 0;

	if (d->srv && lp_tls_take(d->srv, &out, &n) == 0)
		pend_add(d, out, n);
	free(out);
}

/* a kind-2 chunk next: start the server now, before the ClientHello */
static void take_starts(struct dev *d)
{
	while (d->size - d->off >= 3 && d->data[d->off] == 2) {
		size_t len = (size_t)d->data[d->off + 1] << 8 | d->data[d->off + 2];

		d->off += 3;
		d->off += len < d->size - d->off ? len : d->size - d->off;
		if (!d->srv)
			d->srv = lp_tls_new_server(g_dev_cert, g_dev_key, NULL);
	}
}

static int d_send(struct lp_stream *s, const uint8_t *buf, size_t len, uint64_t dl,
		  struct lp_errinfo *e)
{
	struct dev *d = s->impl;

	take_starts(d);
	if (!d->srv)
		return 0; /* a request: lockdownd would parse it; the script answers */
	lp_tls_feed(d->srv, buf, len);
	if (!lp_tls_established(d->srv))
		lp_tls_handshake(d->srv, NULL);
	while (lp_tls_established(d->srv)) {
		uint8_t tmp[4096];
		size_t got = 0;

		if (lp_tls_read(d->srv, tmp, sizeof(tmp), &got, NULL))
			break;
		sink += got;
	}
	srv_flush(d);
	return 0;
}

static int d_recv(struct lp_stream *s, uint8_t *buf, size_t cap, size_t *got, uint64_t dl,
		  struct lp_errinfo *e)
{
	struct dev *d = s->impl;

	while (d->poff == d->plen) {
		size_t len;
		uint8_t kind;

		free(d->pend);
		d->pend = NULL;
		d->plen = d->poff = 0;
		if (d->size - d->off < 3)
			return lp_err_set(e, LP_ECLOSED, "script over");
		kind = d->data[d->off];
		len = (size_t)d->data[d->off + 1] << 8 | d->data[d->off + 2];
		d->off += 3;
		if (len > d->size - d->off)
			len = d->size - d->off;
		if (kind == 1 && d->srv && lp_tls_established(d->srv)) {
			lp_tls_write(d->srv, d->data + d->off, len, NULL);
			srv_flush(d);
		} else if (kind == 3 && d->srv) {
			lp_tls_shutdown(d->srv);
			srv_flush(d);
		} else if (kind != 2) {
			pend_add(d, d->data + d->off, len);
		} else if (!d->srv) {
			d->srv = lp_tls_new_server(g_dev_cert, g_dev_key, NULL);
		}
		d->off += len;
		take_starts(d);
	}
	*got = d->plen - d->poff < cap ? d->plen - d->poff : cap;
	memcpy(buf, d->pend + d->poff, *got);
	d->poff += *got;
	return 0;
}

static void d_close(struct lp_stream *s)
{
}

static const struct lp_stream_ops d_ops = {.send = d_send, .recv = d_recv, .close = d_close};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t *pub = NULL;
	size_t len = 0;
	struct pair_creds c = {0};

	if (pair_device_key_generate(&g_dev_key, &pub, &len) ||
	    pair_creds_generate(pub, len, &c, NULL))
		abort();
	free(pub);
	g_dev_cert = pair_load_cert(c.device_cert.data, c.device_cert.len);
	g_host_cert = pair_load_cert(c.host_cert.data, c.host_cert.len);
	g_host_key = pair_load_key(c.host_key.data, c.host_key.len);
	g_rec = pair_record_new();
	if (!g_dev_cert || !g_host_cert || !g_host_key || !g_rec)
		abort();
	pair_record_adopt_creds(g_rec, &c);
	pair_record_set_str(&g_rec->host_id, "5A6B7C8D-0000-4000-8000-0123456789AB");
	pair_record_set_str(&g_rec->system_buid, "A1B2C3D4-0000-4000-8000-0123456789AB");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dev d = {.data = data, .size = size};
	struct lp_clock clock;
	struct lkd_client *c;
	char *type = NULL, *sid = NULL;
	plist_t v = NULL, escrow = NULL;
	bool ssl = false, sssl = false;
	uint16_t port = 0;
	uint64_t dl;

	lp_clock_init_virtual(&clock, 0);
	dl = lp_clock_deadline_ms(&clock, 1000);
	d.st.ops = &d_ops;
	d.st.clock = &clock;
	d.st.impl = &d;
	take_starts(&d);
	c = lkd_client_new(&d.st, "fuzz");
	if (!c)
		return 0;
	lkd_query_type(c, &type, dl, NULL);
	free(type);
	type = NULL;
	lkd_get_value(c, NULL, NULL, &v, dl, NULL);
	plist_free(v);
	v = NULL;
	lkd_pair(c, g_rec, &escrow, dl, NULL);
	if (lkd_start_session(c, g_rec->host_id, g_rec->system_buid, &sid, &ssl, dl, NULL) == 0 &&
	    ssl && d.srv && lkd_start_tls(c, g_host_cert, g_host_key, dl, NULL) == 0)
		sink++;
	if (getenv("FUZZ_DEBUG"))
		fprintf(stderr, "session %s, TLS %s\n", sid ? sid : "-",
			lkd_in_tls(c) ? "up" : "no");
	lkd_get_value(c, NULL, "DeviceName", &v, dl, NULL);
	plist_free(v);
	lkd_start_service(c, "com.apple.mobilebackup2", escrow, &port, &sssl, dl, NULL);
	if (sid)
		lkd_stop_session(c, sid, dl, NULL);
	lkd_query_type(c, &type, dl, NULL);
	free(type);
	lkd_goodbye(c, dl, NULL);
	lkd_client_free(c);
	free(sid);
	plist_free(escrow);
	lp_tls_free(d.srv);
	free(d.pend);
	ERR_clear_error();
	return 0;
}
