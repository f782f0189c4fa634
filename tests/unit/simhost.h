/* simhost.h - a host for the simulated iPhone in unit tests, shared by
 * test_simdev.c and test_real_device_facts.c: drives the device through its
 * model ops as a host would see it (descriptors parsed with usb/usb_desc.h,
 * usbmux through a HOST-role codec, lockdown messages framed with
 * proto/lockdown_frame.h, a TLS session with host certificates made here
 * with OpenSSL), plus the RSA keys every test shares (group_setup).
 * Reference: doc/protocol.md section 0 (descriptor table), 2, 4.
 *
 * Everything is static: each test file uses the part it needs. */
#ifndef LP_TEST_SIMHOST_H
#define LP_TEST_SIMHOST_H

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/decoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <plist/plist.h>

#include "proto/lockdown_frame.h"
#include "proto/mux.h"
#include "src/device/simdev.h"
#include "proto/tls.h"
#include "src/base/lp_error.h"
#include "usb/usb_desc.h"

#define MAX_CONN 128

struct host {
	struct lp_clock clk;
	struct simdev *s;
	struct mux *m;
	int connects, closes;
	int last_result;
	bool closed[MAX_CONN];
	uint8_t *rx[MAX_CONN];
	size_t rxlen[MAX_CONN];
	/* lengths of the device's data packets on chunk_conn, while chunk_log is set */
	size_t *chunk_log, chunk_cap, chunk_n;
	uint32_t chunk_conn;
};

/* --- keys shared by all tests (RSA generation is slow) --- */
static EVP_PKEY *root_key, *host_key, *other_key;

static void h_connect(void *ud, uint32_t conn, uint16_t port, int result)
{
	struct host *h = ud;
	h->connects++;
	h->last_result = result;
}

static void h_data(void *ud, uint32_t conn, const uint8_t *data, size_t len)
{
	struct host *h = ud;

	assert_true(conn < MAX_CONN);
	if (h->chunk_log && conn == h->chunk_conn && h->chunk_n < h->chunk_cap)
		h->chunk_log[h->chunk_n++] = len;
	h->rx[conn] = realloc(h->rx[conn], h->rxlen[conn] + len);
	assert_non_null(h->rx[conn]);
	memcpy(h->rx[conn] + h->rxlen[conn], data, len);
	h->rxlen[conn] += len;
}

static void h_close(void *ud, uint32_t conn, int reason)
{
	struct host *h = ud;
	h->closes++;
	if (conn < MAX_CONN)
		h->closed[conn] = true;
}

static const struct mux_cbs host_cbs = {
	.on_connect = h_connect,
	.on_data = h_data,
	.on_close = h_close,
};

static const struct devmodel_ops *ops = &devcore_model_ops;

static uint64_t now(struct host *h)
{
	return lp_clock_now(&h->clk);
}

static int ctl(struct host *h, uint8_t bm, uint8_t req, uint16_t wv, uint16_t wi, uint8_t *buf,
	       uint16_t wl, size_t *actual)
{
	uint8_t setup[8] = {bm,		 req,
			    (uint8_t)wv, (uint8_t)(wv >> 8),
			    (uint8_t)wi, (uint8_t)(wi >> 8),
			    (uint8_t)wl, (uint8_t)(wl >> 8)};
	size_t dummy;

	return ops->control(simdev_model(h->s), setup, buf, wl, actual ? actual : &dummy, now(h));
}

/* Move packets both ways until both sides are quiet. Host packets are one
 * OUT transfer each; device transfers are checked for the ZLP rule. */
static void pump(struct host *h)
{
	for (int round = 0; round < 10000; round++) {
		bool moved = false;
		uint8_t *pkt;
		size_t len;
		const uint8_t *d;
		bool zlp;

		while (mux_out_take(h->m, &pkt, &len) == 0) {
			ops->bulk_out(simdev_model(h->s), SIMDEV_EP_MUX_OUT, pkt, len, now(h));
			free(pkt);
			moved = true;
		}
		while (ops->bulk_in_next(simdev_model(h->s), SIMDEV_EP_MUX_IN, &d, &len, &zlp,
					 now(h)) == 0) {
			uint16_t mps = ops->max_packet(simdev_model(h->s), SIMDEV_EP_MUX_IN);
			assert_true(len <= MUX_DEVICE_MTU);
			assert_int_equal(zlp, len % mps == 0);
			assert_int_equal(mux_feed(h->m, d, len, true), 0);
			moved = true;
		}
		if (!moved)
			return;
	}
	fail_msg("pump did not settle");
}

static void advance(struct host *h, uint64_t ms)
{
	uint64_t end = now(h) + ms * LP_NS_PER_MS;

	for (;;) {
		uint64_t t = ops->next_timer(simdev_model(h->s), now(h));
		if (t > end)
			break;
		h->clk.vnow = t;
		ops->tick(simdev_model(h->s), t);
		pump(h);
	}
	h->clk.vnow = end;
	ops->tick(simdev_model(h->s), end);
	pump(h);
}

static void host_open(struct host *h, const char *profile, const struct simdev_opts *o)
{
	struct lp_errinfo e = {0};

	memset(h, 0, sizeof(*h));
	lp_clock_init_virtual(&h->clk, 1700000000ull * LP_NS_PER_S);
	h->s = simdev_new(profile, o, &h->clk, NULL, &e);
	if (!h->s)
		fail_msg("simdev_new: %s", e.msg);
	assert_true(ops->attached(simdev_model(h->s), 0));
	ops->reset(simdev_model(h->s), 0);
	h->m = mux_new(MUX_ROLE_HOST, &host_cbs, h, NULL);
	assert_non_null(h->m);
}

static void host_mux_up(struct host *h)
{
	assert_int_equal(ctl(h, 0x00, USBD_REQ_SET_CONFIGURATION, 3, 0, NULL, 0, NULL), 0);
	assert_int_equal(mux_start(h->m, 2), 0);
	pump(h);
	assert_true(mux_active(h->m));
}

static void host_close(struct host *h)
{
	for (int i = 0; i < MAX_CONN; i++)
		free(h->rx[i]);
	mux_free(h->m);
	simdev_free(h->s);
}

static uint32_t connect_port(struct host *h, uint16_t port)
{
	uint32_t c;
	int before = h->connects;

	assert_int_equal(mux_connect(h->m, port, &c), 0);
	pump(h);
	assert_int_equal(h->connects, before + 1);
	assert_int_equal(h->last_result, 0);
	assert_true(c < MAX_CONN);
	return c;
}

/* Take one framed plist from a byte buffer, if whole. */
static plist_t take_frame(uint8_t **buf, size_t *len)
{
	uint32_t n;
	plist_t p = NULL;

	if (*len < 4)
		return NULL;
	n = (uint32_t)(*buf)[0] << 24 | (uint32_t)(*buf)[1] << 16 | (uint32_t)(*buf)[2] << 8 |
	    (*buf)[3];
	if (*len - 4 < n)
		return NULL;
	assert_int_equal(lkd_plist_decode(*buf + 4, n, &p), 0);
	memmove(*buf, *buf + 4 + n, *len - 4 - n);
	*len -= 4 + n;
	return p;
}

static plist_t request(struct host *h, uint32_t c, plist_t req)
{
	uint8_t *f;
	size_t fl;
	plist_t r;

	assert_int_equal(lkd_frame_encode(req, &f, &fl), 0);
	plist_free(req);
	assert_int_equal(mux_send(h->m, c, f, fl), 0);
	free(f);
	pump(h);
	r = take_frame(&h->rx[c], &h->rxlen[c]);
	assert_non_null(r);
	return r;
}

static plist_t req_new(const char *name)
{
	plist_t d = plist_new_dict();

	plist_dict_set_item(d, "Label", plist_new_string("test"));
	plist_dict_set_item(d, "ProtocolVersion", plist_new_string("2"));
	plist_dict_set_item(d, "Request", plist_new_string(name));
	return d;
}

static void assert_error(plist_t r, const char *err)
{
	const char *e = lkd_dict_str(r, "Error");

	if (!e || strcmp(e, err) != 0)
		fail_msg("expected Error %s, got %s", err, e ? e : "(none)");
	plist_free(r);
}

static void assert_success(plist_t r)
{
	const char *e = lkd_dict_str(r, "Error");

	if (e)
		fail_msg("unexpected Error %s", e);
	/* real devices put no Result key in their replies (notes section 0) */
	assert_null(plist_dict_get_item(r, "Result"));
}

/* ---------------------------------------------------------------- certs */

static X509 *make_cert(EVP_PKEY *pub, EVP_PKEY *signer, bool ca)
{
	X509 *x = X509_new();
	X509_EXTENSION *ext;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 60L * 60 * 24 * 3650);
	X509_set_pubkey(x, pub);
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints,
				  ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
	return x;
}

static void node_pem(plist_t d, const char *key, X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;

	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &p);
	plist_dict_set_item(d, key, plist_new_data(p, (uint64_t)n));
	BIO_free(b);
}

struct record {
	X509 *root, *host, *dev;
	char host_id[40];
	char buid[40];
};

static EVP_PKEY *device_key(struct host *h, uint32_t c)
{
	plist_t r, req = req_new("GetValue");
	const char *p;
	uint64_t len = 0;
	EVP_PKEY *k = NULL;
	OSSL_DECODER_CTX *dc;
	const unsigned char *pp;
	size_t pl;

	plist_dict_set_item(req, "Key", plist_new_string("DevicePublicKey"));
	r = request(h, c, req);
	assert_success(r);
	assert_string_equal(lkd_dict_str(r, "Key"), "DevicePublicKey");
	p = plist_get_data_ptr(plist_dict_get_item(r, "Value"), &len);
	assert_non_null(p);
	assert_true(len > 40 && memcmp(p, "-----BEGIN RSA PUBLIC KEY-----", 30) == 0);
	dc = OSSL_DECODER_CTX_new_for_pkey(&k, "PEM", NULL, "RSA", EVP_PKEY_PUBLIC_KEY, NULL, NULL);
	pp = (const unsigned char *)p;
	pl = len;
	assert_int_equal(OSSL_DECODER_from_data(dc, &pp, &pl), 1);
	OSSL_DECODER_CTX_free(dc);
	plist_free(r);
	assert_non_null(k);
	return k;
}

static void record_make(struct host *h, uint32_t c, struct record *rec, const char *host_id)
{
	EVP_PKEY *dk = device_key(h, c);

	rec->root = make_cert(root_key, root_key, true);
	rec->host = make_cert(host_key, root_key, false);
	rec->dev = make_cert(dk, root_key, false);
	EVP_PKEY_free(dk);
	snprintf(rec->host_id, sizeof(rec->host_id), "%s", host_id);
	snprintf(rec->buid, sizeof(rec->buid), "BUID-%s", host_id);
}

static void record_free(struct record *rec)
{
	X509_free(rec->root);
	X509_free(rec->host);
	X509_free(rec->dev);
}

static plist_t pair_req(const struct record *rec)
{
	plist_t req = req_new("Pair"), pr = plist_new_dict(), opt = plist_new_dict();

	node_pem(pr, "DeviceCertificate", rec->dev);
	node_pem(pr, "HostCertificate", rec->host);
	node_pem(pr, "RootCertificate", rec->root);
	plist_dict_set_item(pr, "HostID", plist_new_string(rec->host_id));
	plist_dict_set_item(pr, "SystemBUID", plist_new_string(rec->buid));
	plist_dict_set_item(req, "PairRecord", pr);
	plist_dict_set_item(opt, "ExtendedPairingErrors", plist_new_bool(1));
	plist_dict_set_item(req, "PairingOptions", opt);
	return req;
}

static plist_t start_session_req(const char *host_id)
{
	plist_t req = req_new("StartSession");

	plist_dict_set_item(req, "HostID", plist_new_string(host_id));
	plist_dict_set_item(req, "SystemBUID", plist_new_string("BUID"));
	return req;
}

static struct simdev_opts quiet_opts(void)
{
	struct simdev_opts o = {0};

	o.reenum_after_pair = SIMDEV_REENUM_NEVER;
	return o;
}

/* Pair through the dialog on a healthy device. */
static void pair_via_dialog(struct host *h, uint32_t c, struct record *rec)
{
	struct simdev_state st;

	assert_error(request(h, c, pair_req(rec)), "PairingDialogResponsePending");
	simdev_get_state(h->s, now(h), &st);
	assert_int_equal(st.dialog, SIMDEV_DIALOG_SHOWN);
	advance(h, 2100);
	simdev_get_state(h->s, now(h), &st);
	assert_int_equal(st.dialog, SIMDEV_DIALOG_TRUSTED);
	plist_t r = request(h, c, pair_req(rec));
	assert_success(r);
	plist_t eb = plist_dict_get_item(r, "EscrowBag");
	assert_non_null(eb);
	assert_int_equal(plist_get_node_type(eb), PLIST_DATA);
	plist_free(r);
}

/* Drive a TLS client over mux conn c until the handshake ends. */
static int tls_connect(struct host *h, uint32_t c, struct lp_tls *t)
{
	for (int i = 0; i < 50; i++) {
		struct lp_errinfo e = {0};
		int rc = lp_tls_handshake(t, &e);
		uint8_t *out = NULL;
		size_t n = 0;

		lp_tls_take(t, &out, &n);
		if (n)
			assert_int_equal(mux_send(h->m, c, out, n), 0);
		free(out);
		pump(h);
		if (h->rxlen[c]) {
			lp_tls_feed(t, h->rx[c], h->rxlen[c]);
			h->rxlen[c] = 0;
		}
		if (rc == 0)
			return 0;
		if (rc != LP_EAGAIN)
			return rc;
		if (h->closed[c])
			return LP_ECONNRESET;
	}
	return LP_ETIMEDOUT;
}

static int group_setup(void **state)
{
	root_key = EVP_RSA_gen(2048);
	host_key = EVP_RSA_gen(2048);
	other_key = EVP_RSA_gen(2048);
	return root_key && host_key && other_key ? 0 : -1;
}

static int group_teardown(void **state)
{
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(host_key);
	EVP_PKEY_free(other_key);
	return 0;
}

#pragma GCC diagnostic pop

#endif
