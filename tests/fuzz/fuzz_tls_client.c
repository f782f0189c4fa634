/* fuzz_tls_client.c - libFuzzer harness: the TLS engine (proto/tls.c) as the
 * host's session-TLS client against a hostile device-side server.
 *
 * Input: what the server sends, as chunks [u16 BE length][bytes] (a short
 * last chunk takes the rest). The client starts its handshake (ClientHello,
 * thrown away), then every chunk is fed, the handshake advanced and the
 * client's answer taken; once established, application data is read until
 * the engine has none. Certificates, key exchange, alerts, renegotiation and
 * close_notify all arrive from the input.
 *
 * Seeds: FUZZ_SEEDGEN_DIR=DIR ./fuzz_tls_client -runs=0 writes DIR/server-*:
 * a real server's flights (ServerHello .. Finished, a lockdown reply record,
 * close_notify) recorded against this client. Replayed, the signature of the
 * key exchange no longer matches the client's new random, so the handshake
 * fails there - after certificate parsing, which is the point.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "proto/pair_cert.h"
#include "proto/tls.h"

static X509 *g_dev_cert, *g_host_cert;
static EVP_PKEY *g_dev_key, *g_host_key;
static volatile size_t sink;

static void drain(struct lp_tls *t)
{
	uint8_t *out = NULL;
	size_t n = 0;

	if (lp_tls_take(t, &out, &n) == 0)
		sink += n;
	free(out);
}

/* Record a real server's flights against our client as chunks. */
static void seedgen(const char *dir)
{
	struct lp_tls *c = lp_tls_new_client(g_host_cert, g_host_key, NULL);
	struct lp_tls *s = lp_tls_new_server(g_dev_cert, g_dev_key, NULL);
	static const uint8_t reply[] =
		"\0\0\0\x50<?xml version=\"1.0\"?><plist version=\"1.0\">"
		"<dict><key>Request</key><string>GetValue</string></dict></plist>";
	char path[512];
	FILE *f;
	int rc_c = LP_EAGAIN, rc_s = LP_EAGAIN;

	snprintf(path, sizeof(path), "%s/server-handshake", dir);
	f = fopen(path, "wb");
	if (!c || !s || !f)
		goto out;
	for (int round = 0; round < 16 && (rc_c || rc_s); round++) {
		uint8_t *out = NULL;
		size_t n = 0;

		rc_c = lp_tls_handshake(c, NULL);
		if (lp_tls_take(c, &out, &n) == 0 && n)
			lp_tls_feed(s, out, n);
		free(out);
		out = NULL;
		rc_s = lp_tls_handshake(s, NULL);
		if (round == 8) { /* after the handshake: a reply and close_notify */
			lp_tls_write(s, reply, sizeof(reply) - 1, NULL);
			lp_tls_shutdown(s);
		}
		if (lp_tls_take(s, &out, &n) == 0 && n) {
			uint8_t hdr[2] = {(uint8_t)(n >> 8), (uint8_t)n};

			fwrite(hdr, 1, 2, f);
			fwrite(out, 1, n, f);
			lp_tls_feed(c, out, n);
		}
		free(out);
		if (round >= 8 && !rc_c && !rc_s)
			break;
	}
out:
	if (f)
		fclose(f);
	lp_tls_free(c);
	lp_tls_free(s);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t *pub = NULL;
	size_t len = 0;
	struct pair_creds c = {0};
	const char *dir = getenv("FUZZ_SEEDGEN_DIR");

	if (pair_device_key_generate(&g_dev_key, &pub, &len) ||
	    pair_creds_generate(pub, len, &c, NULL))
		abort();
	free(pub);
	g_dev_cert = pair_load_cert(c.device_cert.data, c.device_cert.len);
	g_host_cert = pair_load_cert(c.host_cert.data, c.host_cert.len);
	g_host_key = pair_load_key(c.host_key.data, c.host_key.len);
	pair_creds_clear(&c);
	if (!g_dev_cert || !g_host_cert || !g_host_key)
		abort();
	if (dir)
		seedgen(dir);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lp_tls *t = lp_tls_new_client(g_host_cert, g_host_key, NULL);
	size_t off = 0;
	bool failed = false;

	if (!t)
		return 0;
	lp_tls_handshake(t, NULL);
	drain(t);
	while (off < size && !failed) {
		size_t n = size - off;

		if (n >= 2) {
			size_t want = (size_t)data[off] << 8 | data[off + 1];

			off += 2;
			n = size - off;
			if (want < n)
				n = want;
		} else {
			off = size; /* a lone byte: nothing to feed */
			break;
		}
		if (lp_tls_feed(t, data + off, n))
			break;
		off += n;
		if (!lp_tls_established(t)) {
			int r = lp_tls_handshake(t, NULL);

			drain(t);
			if (r && r != LP_EAGAIN)
				failed = true;
		}
		while (!failed && lp_tls_established(t)) {
			uint8_t buf[4096];
			size_t got = 0;
			int r = lp_tls_read(t, buf, sizeof(buf), &got, NULL);

			drain(t);
			if (r)
				break;
			sink += got;
		}
	}
	lp_tls_free(t);
	ERR_clear_error();
	return 0;
}
