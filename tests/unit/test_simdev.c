/* test_simdev.c - the simulated iPhone driven through its model ops, as a
 * host would see it: descriptors parsed with usb/usb_desc.h, usbmux through a
 * HOST-role codec, lockdown messages framed with proto/lockdown_frame.h, and
 * a TLS session with host certificates made here with OpenSSL.
 * Reference: doc/protocol.md section 0 (descriptor table), 2, 4. */
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

/* ----------------------------------------------------------------- tests */

static void test_descriptors(void **state)
{
	struct host h;
	uint8_t buf[1024];
	size_t n;
	struct usbd_device dd;
	struct usbd_config cfg;
	char str[256];
	uint16_t lang;
	uint8_t ein, eout;
	uint16_t mps;

	host_open(&h, "healthy", NULL);
	assert_int_equal(ctl(&h, 0x80, 6, 0x0100, 0, buf, 64, &n), 0);
	assert_int_equal(n, 18);
	assert_int_equal(usbd_parse_device(buf, n, &dd), 0);
	assert_int_equal(dd.idVendor, 0x05ac);
	assert_int_equal(dd.idProduct, 0x12a8);
	assert_int_equal(dd.bcdUSB, 0x0200);
	assert_int_equal(dd.bcdDevice, 0x0804);
	assert_int_equal(dd.bMaxPacketSize0, 64);
	assert_int_equal(dd.bDeviceClass, 0);
	assert_int_equal(dd.bNumConfigurations, 4);

	assert_int_equal(ctl(&h, 0x80, 6, 0x0300, 0, buf, 255, &n), 0);
	assert_int_equal(usbd_parse_langid(buf, n, &lang), 0);
	assert_int_equal(lang, 0x0409);
	assert_int_equal(ctl(&h, 0x80, 6, 0x0300 | dd.iManufacturer, 0x409, buf, 255, &n), 0);
	assert_int_equal(usbd_parse_string(buf, n, str, sizeof(str)), 0);
	assert_string_equal(str, "Apple Inc.");
	assert_int_equal(ctl(&h, 0x80, 6, 0x0300 | dd.iProduct, 0x409, buf, 255, &n), 0);
	usbd_parse_string(buf, n, str, sizeof(str));
	assert_string_equal(str, "iPhone");
	assert_int_equal(ctl(&h, 0x80, 6, 0x0300 | dd.iSerialNumber, 0x409, buf, 255, &n), 0);
	usbd_parse_string(buf, n, str, sizeof(str));
	assert_int_equal(strlen(str), 40);
	assert_string_equal(str, simdev_udid(h.s));
	assert_int_equal(strspn(str, "0123456789abcdef"), 40);

	/* wLength 9: only the header, wTotalLength tells the rest */
	assert_int_equal(ctl(&h, 0x80, 6, 0x0200, 0, buf, 9, &n), 0);
	assert_int_equal(n, 9);
	for (int i = 0; i < 4; i++) {
		uint16_t total;

		assert_int_equal(ctl(&h, 0x80, 6, 0x0200 | i, 0, buf, 9, &n), 0);
		total = (uint16_t)(buf[2] | buf[3] << 8);
		assert_int_equal(ctl(&h, 0x80, 6, 0x0200 | i, 0, buf, sizeof(buf), &n), 0);
		assert_int_equal(n, total);
		assert_int_equal(usbd_parse_config(buf, n, &cfg), 0);
		assert_int_equal(cfg.bConfigurationValue, i + 1);
		const struct usbd_interface *mux = usbd_find_usbmux(&cfg, &ein, &eout, &mps);
		if (i == 2 || i == 3) {
			assert_non_null(mux);
			assert_int_equal(ein, 0x85);
			assert_int_equal(eout, 0x04);
			assert_int_equal(mps, 512);
		} else {
			assert_null(mux);
		}
		assert_int_equal(cfg.iface[0].bInterfaceClass, i == 1 ? 0x01 : 0x06);
		if (i == 0)
			assert_int_equal(cfg.bNumInterfaces, 1);
		if (i == 3) {
			assert_int_equal(cfg.bNumInterfaces, 3);
			assert_int_equal(cfg.iface[2].bInterfaceClass, 0xff);
			assert_int_equal(cfg.iface[2].bInterfaceSubClass, 0xfd);
		}
	}
	assert_int_equal(ctl(&h, 0x80, 6, 0x0204, 0, buf, 255, &n), LP_ESTALL);
	/* the gadget asks for the full-speed set of the same device */
	assert_int_equal(simdev_descriptor(h.s, TR_SPEED_FULL, 2, 3, buf, sizeof(buf), &n), 0);
	assert_int_equal(usbd_parse_config(buf, n, &cfg), 0);
	assert_non_null(usbd_find_usbmux(&cfg, &ein, &eout, &mps));
	assert_int_equal(mps, 64);
	/* usbmuxd's mode requests, and something nobody answers */
	assert_int_equal(ctl(&h, 0xc0, 0x45, 0, 0, buf, 4, &n), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "\x03\x03\x03\x00", 4);
	assert_int_equal(ctl(&h, 0xc0, 0x52, 0, 1, buf, 1, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(buf[0], 0);
	assert_int_equal(ctl(&h, 0x40, 0x40, 0, 0, NULL, 0, &n), LP_ESTALL);
	assert_int_equal(ctl(&h, 0x80, 0x33, 0, 0, buf, 4, &n), LP_ESTALL);
	host_close(&h);

	/* full speed: 64-byte bulk packets */
	host_open(&h, "full-speed", NULL);
	assert_int_equal(ctl(&h, 0x80, 6, 0x0202, 0, buf, sizeof(buf), &n), 0);
	assert_int_equal(usbd_parse_config(buf, n, &cfg), 0);
	assert_non_null(usbd_find_usbmux(&cfg, &ein, &eout, &mps));
	assert_int_equal(mps, 64);
	struct tr_sim_link link;
	assert_int_equal(simdev_link(h.s, &link), 0);
	assert_int_equal(link.speed, TR_SPEED_FULL);
	assert_false(link.link_off);
	host_close(&h);
}

static void test_other_modes(void **state)
{
	struct host h;
	uint8_t buf[512];
	size_t n;
	struct usbd_device dd;
	char str[256];

	host_open(&h, "dfu", NULL);
	ctl(&h, 0x80, 6, 0x0100, 0, buf, 18, &n);
	usbd_parse_device(buf, n, &dd);
	assert_int_equal(dd.idProduct, 0x1227);
	assert_int_equal(dd.bNumConfigurations, 1);
	assert_int_equal(ctl(&h, 0x80, 6, 0x0300 | dd.iSerialNumber, 0x409, buf, 255, &n), 0);
	usbd_parse_string(buf, n, str, sizeof(str));
	assert_non_null(strstr(str, "CPID:8010"));
	assert_non_null(strstr(str, "SRTG:[iBoot-"));
	assert_int_equal(ctl(&h, 0xc0, 0x45, 0, 0, buf, 4, &n), LP_ESTALL);
	assert_int_equal(ctl(&h, 0x00, 9, 3, 0, NULL, 0, NULL), LP_ESTALL);
	host_close(&h);

	host_open(&h, "recovery", NULL);
	ctl(&h, 0x80, 6, 0x0100, 0, buf, 18, &n);
	usbd_parse_device(buf, n, &dd);
	assert_int_equal(dd.idProduct, 0x1281);
	host_close(&h);

	host_open(&h, "camera-only", NULL);
	ctl(&h, 0x80, 6, 0x0100, 0, buf, 18, &n);
	usbd_parse_device(buf, n, &dd);
	assert_int_equal(dd.bNumConfigurations, 1);
	assert_int_equal(ctl(&h, 0x00, 9, 3, 0, NULL, 0, NULL), LP_ESTALL);
	assert_int_equal(ctl(&h, 0x00, 9, 1, 0, NULL, 0, NULL), 0);
	assert_int_equal(ops->max_packet(simdev_model(h.s), SIMDEV_EP_MUX_IN), 0);
	host_close(&h);

	struct lp_clock clk;
	struct simdev *s;
	lp_clock_init_virtual(&clk, 0);
	s = simdev_new("charge-only", NULL, &clk, NULL, NULL);
	assert_non_null(s);
	assert_false(ops->attached(simdev_model(s), 0));
	assert_false(ops->attached(simdev_model(s), 10 * LP_NS_PER_S));
	simdev_free(s);
	struct lp_errinfo e = {0};
	assert_null(simdev_new("no-such-profile", NULL, &clk, NULL, &e));
	assert_int_equal(e.code, LP_EINVAL);

	/* flaky: lossy link and one re-enumeration */
	struct tr_sim_link link;
	s = simdev_new("flaky", NULL, &clk, NULL, NULL);
	assert_non_null(s);
	assert_int_equal(simdev_link(s, &link), 0);
	assert_true(link.error_rate > 0.02 && link.error_rate < 0.04);
	assert_int_equal(link.disconnect_at_ns, 700 * LP_NS_PER_MS);
	assert_int_equal(link.reenum_gap_ns, 300 * LP_NS_PER_MS);
	assert_int_equal(link.speed, TR_SPEED_HIGH);
	simdev_free(s);

	/* the profile table lists every profile the brief names */
	const char *want[] = {"healthy",     "charge-only",   "full-speed",  "flaky",
			      "camera-only", "dfu",	      "recovery",    "locked",
			      "deny",	     "never-answers", "forgot-host", "unplug-during-pair",
			      "tls-reject"};
	assert_int_equal(simdev_profile_count(), 13);
	for (size_t i = 0; i < 13; i++) {
		const char *name, *sum;
		assert_int_equal(simdev_profile_at(i, &name, &sum), 0);
		assert_string_equal(name, want[i]);
		assert_true(strlen(sum) > 10);
	}
	assert_int_equal(simdev_profile_at(13, NULL, NULL), LP_EINVAL);
}

static void test_udid24(void **state)
{
	struct host h;
	struct simdev_opts o = {0};
	uint8_t buf[512];
	size_t n;
	char str[256], udid[64];

	o.udid24 = true;
	host_open(&h, "healthy", &o);
	assert_int_equal(ctl(&h, 0x80, 6, 0x0303, 0x409, buf, 255, &n), 0);
	usbd_parse_string(buf, n, str, sizeof(str));
	assert_int_equal(strlen(str), 24);
	usbd_serial_to_udid(str, udid, sizeof(udid));
	assert_string_equal(udid, simdev_udid(h.s));
	host_close(&h);
}

static void test_usbmux_needs_config(void **state)
{
	struct host h;
	uint8_t buf[8];
	size_t n;
	const uint8_t *d;
	bool zlp;
	uint8_t *pkt;

	host_open(&h, "healthy", NULL);
	/* unconfigured: the VERSION request goes nowhere, nothing comes back */
	assert_int_equal(mux_start(h.m, 2), 0);
	assert_int_equal(mux_out_take(h.m, &pkt, &n), 0);
	ops->bulk_out(simdev_model(h.s), SIMDEV_EP_MUX_OUT, pkt, n, 0);
	free(pkt);
	assert_int_equal(ops->bulk_in_next(simdev_model(h.s), SIMDEV_EP_MUX_IN, &d, &n, &zlp, 0),
			 LP_EAGAIN);
	assert_int_equal(ops->max_packet(simdev_model(h.s), SIMDEV_EP_MUX_IN), 0);
	mux_free(h.m);
	h.m = mux_new(MUX_ROLE_HOST, &host_cbs, &h, NULL);

	assert_int_equal(ctl(&h, 0x00, 9, 3, 0, NULL, 0, NULL), 0);
	assert_int_equal(ctl(&h, 0x80, 8, 0, 0, buf, 1, &n), 0);
	assert_int_equal(buf[0], 3);
	assert_int_equal(ops->max_packet(simdev_model(h.s), SIMDEV_EP_MUX_IN), 512);
	host_mux_up(&h);
	struct simdev_state st;
	simdev_get_state(h.s, now(&h), &st);
	assert_true(st.mux_active);
	assert_int_equal(st.config, 3);

	/* a closed port is refused */
	uint32_t c;
	assert_int_equal(mux_connect(h.m, 1234, &c), 0);
	pump(&h);
	assert_int_equal(h.last_result, LP_ECONNREFUSED);

	/* back to PTP: usbmux is gone */
	assert_int_equal(ctl(&h, 0x00, 9, 1, 0, NULL, 0, NULL), 0);
	assert_int_equal(ops->max_packet(simdev_model(h.s), SIMDEV_EP_MUX_IN), 0);
	simdev_get_state(h.s, now(&h), &st);
	assert_false(st.mux_active);
	host_close(&h);
}

static void test_query_and_values(void **state)
{
	struct host h;
	struct simdev_opts o = quiet_opts();
	uint32_t c;
	plist_t r, req;

	o.device_name = "Test Phone";
	host_open(&h, "healthy", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);

	r = request(&h, c, req_new("QueryType"));
	assert_success(r);
	assert_string_equal(lkd_dict_str(r, "Request"), "QueryType");
	assert_string_equal(lkd_dict_str(r, "Type"), "com.apple.mobile.lockdown");
	plist_free(r);

	req = req_new("GetValue");
	plist_dict_set_item(req, "Key", plist_new_string("ProductVersion"));
	r = request(&h, c, req);
	assert_success(r);
	assert_string_equal(lkd_dict_str(r, "Value"), "16.7.2");
	plist_free(r);

	req = req_new("GetValue");
	plist_dict_set_item(req, "Key", plist_new_string("DeviceName"));
	r = request(&h, c, req);
	assert_string_equal(lkd_dict_str(r, "Value"), "Test Phone");
	plist_free(r);

	/* the whole set without a session: public keys only */
	r = request(&h, c, req_new("GetValue"));
	plist_t v = plist_dict_get_item(r, "Value");
	assert_non_null(v);
	assert_string_equal(lkd_dict_str(v, "UniqueDeviceID"), simdev_udid(h.s));
	assert_string_equal(lkd_dict_str(v, "ProductType"), "iPhone10,6");
	assert_string_equal(lkd_dict_str(v, "DeviceClass"), "iPhone");
	assert_null(plist_dict_get_item(v, "SerialNumber"));
	plist_free(r);

	req = req_new("GetValue");
	plist_dict_set_item(req, "Key", plist_new_string("SerialNumber"));
	r = request(&h, c, req);
	assert_string_equal(lkd_dict_str(r, "Key"), "SerialNumber");
	assert_error(r, "GetProhibited");

	req = req_new("GetValue");
	plist_dict_set_item(req, "Domain", plist_new_string("com.apple.mobile.battery"));
	assert_error(request(&h, c, req), "GetProhibited");

	/* a key the phone does not publish is refused before a session, not
	 * reported missing (IDAMCapability on the recorded device) */
	req = req_new("GetValue");
	plist_dict_set_item(req, "Key", plist_new_string("NoSuchKey"));
	assert_error(request(&h, c, req), "GetProhibited");

	req = req_new("SetValue");
	plist_dict_set_item(req, "Key", plist_new_string("UntrustedHostBUID"));
	plist_dict_set_item(req, "Value", plist_new_string("ABC"));
	r = request(&h, c, req);
	assert_success(r);
	plist_free(r);
	req = req_new("SetValue");
	plist_dict_set_item(req, "Key", plist_new_string("DeviceName"));
	plist_dict_set_item(req, "Value", plist_new_string("x"));
	assert_error(request(&h, c, req), "SetProhibited");

	assert_error(request(&h, c, req_new("FlyToTheMoon")), "InvalidResponse");
	assert_error(request(&h, c, start_session_req("00000000-0000-0000-0000-000000000000")),
		     "InvalidHostID");
	/* libimobiledevice without a pair record sends no HostID; usbmuxd's
	 * preflight needs InvalidHostID to go on and raise the dialog */
	assert_error(request(&h, c, req_new("StartSession")), "InvalidHostID");
	req = req_new("StartService");
	plist_dict_set_item(req, "Service", plist_new_string("com.apple.mobilebackup2"));
	assert_error(request(&h, c, req), "SessionInactive");
	req = req_new("StartService");
	plist_dict_set_item(req, "Service", plist_new_string("com.apple.nope"));
	assert_error(request(&h, c, req), "InvalidService");
	r = request(&h, c, req_new("Goodbye"));
	assert_success(r);
	plist_free(r);
	host_close(&h);
}

static void test_pair_trust(void **state)
{
	struct host h;
	struct simdev_opts o = quiet_opts();
	struct record rec, rec2;
	struct simdev_state st;
	uint32_t c;

	host_open(&h, "healthy", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "11111111-2222-3333-4444-555555555555");

	assert_error(request(&h, c, pair_req(&rec)), "PairingDialogResponsePending");
	advance(&h, 1000);
	assert_error(request(&h, c, pair_req(&rec)), "PairingDialogResponsePending");
	simdev_get_state(h.s, now(&h), &st);
	assert_int_equal(st.dialogs_shown, 1);
	assert_int_equal(st.dialog, SIMDEV_DIALOG_SHOWN);
	advance(&h, 1100);
	/* a retry with a fresh record (usbmuxd's preflight) is accepted too */
	record_make(&h, c, &rec2, "66666666-2222-3333-4444-555555555555");
	plist_t r = request(&h, c, pair_req(&rec2));
	assert_success(r);
	assert_non_null(plist_dict_get_item(r, "EscrowBag"));
	plist_free(r);
	simdev_get_state(h.s, now(&h), &st);
	assert_int_equal(st.pairs_ok, 1);
	assert_int_equal(st.pair_requests, 3);
	assert_int_equal(st.paired_hosts, 1);
	assert_string_equal(simdev_paired_host(h.s, 0), rec2.host_id);
	assert_null(simdev_paired_host(h.s, 1));
	assert_error(request(&h, c, start_session_req(rec.host_id)), "InvalidHostID");

	/* a device certificate for some other key is refused */
	struct record bad = rec;
	bad.dev = make_cert(other_key, root_key, false);
	assert_error(request(&h, c, pair_req(&bad)), "InvalidPairRecord");
	X509_free(bad.dev);
	/* a host certificate the root did not sign is refused */
	bad = rec;
	bad.host = make_cert(host_key, other_key, false);
	assert_error(request(&h, c, pair_req(&bad)), "InvalidPairRecord");
	X509_free(bad.host);

	/* ValidatePair / Unpair */
	plist_t req = req_new("ValidatePair"), pr = plist_new_dict();
	plist_dict_set_item(pr, "HostID", plist_new_string(rec2.host_id));
	plist_dict_set_item(req, "PairRecord", pr);
	r = request(&h, c, req);
	assert_success(r);
	plist_free(r);
	req = req_new("Unpair");
	pr = plist_new_dict();
	plist_dict_set_item(pr, "HostID", plist_new_string(rec2.host_id));
	plist_dict_set_item(req, "PairRecord", pr);
	r = request(&h, c, req);
	assert_success(r);
	plist_free(r);
	assert_error(request(&h, c, start_session_req(rec2.host_id)), "InvalidHostID");
	record_free(&rec);
	record_free(&rec2);
	host_close(&h);
}

static void np_send(struct host *h, uint32_t c, const char *cmd, const char *name)
{
	plist_t d = plist_new_dict();
	uint8_t *f;
	size_t fl;

	plist_dict_set_item(d, "Command", plist_new_string(cmd));
	if (name)
		plist_dict_set_item(d, "Name", plist_new_string(name));
	assert_int_equal(lkd_frame_encode(d, &f, &fl), 0);
	plist_free(d);
	assert_int_equal(mux_send(h->m, c, f, fl), 0);
	free(f);
	pump(h);
}

/* usbmuxd's preflight: Pair (dialog), notification proxy without a session,
 * observe request_pair; Trust posts it; the paired phone re-enumerates. */
static void test_preflight_notification(void **state)
{
	struct host h;
	struct record rec;
	struct simdev_state st;
	uint32_t c, np;
	plist_t r, req;

	host_open(&h, "healthy", NULL);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "AAAAAAAA-2222-3333-4444-555555555555");
	assert_error(request(&h, c, pair_req(&rec)), "PairingDialogResponsePending");
	req = req_new("StartService");
	plist_dict_set_item(req, "Service",
			    plist_new_string("com.apple.mobile.insecure_notification_proxy"));
	r = request(&h, c, req);
	assert_success(r);
	uint64_t port = 0;
	plist_get_uint_val(plist_dict_get_item(r, "Port"), &port);
	assert_true(port > 0 && port < 65536 && port != SIMDEV_PORT_LOCKDOWN);
	assert_int_equal(lkd_dict_bool(r, "EnableServiceSSL", 0), 0);
	plist_free(r);
	np = connect_port(&h, (uint16_t)port);
	np_send(&h, np, "ObserveNotification", "com.apple.mobile.lockdown.request_pair");
	np_send(&h, np, "ObserveNotification", "com.apple.mobile.lockdown.request_host_buid");
	assert_int_equal(h.rxlen[np], 0);

	advance(&h, 2100);
	r = take_frame(&h.rx[np], &h.rxlen[np]);
	assert_non_null(r);
	assert_string_equal(lkd_dict_str(r, "Command"), "RelayNotification");
	assert_string_equal(lkd_dict_str(r, "Name"), "com.apple.mobile.lockdown.request_pair");
	plist_free(r);
	simdev_get_state(h.s, now(&h), &st);
	assert_int_equal(st.notifications_posted, 1);

	/* preflight pairs again with a new record on a new connection */
	uint32_t c2 = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	struct record rec2;
	record_make(&h, c2, &rec2, "BBBBBBBB-2222-3333-4444-555555555555");
	r = request(&h, c2, pair_req(&rec2));
	assert_success(r);
	plist_free(r);
	simdev_get_state(h.s, now(&h), &st);
	assert_true(st.attached);
	advance(&h, 400);
	simdev_get_state(h.s, now(&h), &st);
	assert_false(st.attached);
	assert_int_equal(st.self_reenumerations, 1);
	advance(&h, 500);
	assert_true(ops->attached(simdev_model(h.s), now(&h)));

	np_send(&h, np, "Shutdown", NULL); /* old conn is gone: ignored, no crash */
	record_free(&rec);
	record_free(&rec2);
	host_close(&h);
}

static void test_pair_refusals(void **state)
{
	struct host h;
	struct simdev_opts o = quiet_opts();
	struct record rec;
	struct simdev_state st;
	uint32_t c;

	host_open(&h, "deny", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "DDDDDDDD-2222-3333-4444-555555555555");
	assert_error(request(&h, c, pair_req(&rec)), "PairingDialogResponsePending");
	advance(&h, 2100);
	simdev_get_state(h.s, now(&h), &st);
	assert_int_equal(st.dialog, SIMDEV_DIALOG_DENIED);
	assert_error(request(&h, c, pair_req(&rec)), "UserDeniedPairing");
	assert_int_equal(simdev_paired_host(h.s, 0), NULL);
	record_free(&rec);
	host_close(&h);

	host_open(&h, "locked", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "EEEEEEEE-2222-3333-4444-555555555555");
	for (int i = 0; i < 3; i++) {
		assert_error(request(&h, c, pair_req(&rec)), "PasswordProtected");
		advance(&h, 5000);
	}
	record_free(&rec);
	host_close(&h);

	host_open(&h, "never-answers", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "FFFFFFFF-2222-3333-4444-555555555555");
	for (int i = 0; i < 4; i++) {
		assert_error(request(&h, c, pair_req(&rec)), "PairingDialogResponsePending");
		advance(&h, 20000);
	}
	simdev_get_state(h.s, now(&h), &st);
	assert_int_equal(st.dialogs_shown, 1);
	assert_int_equal(st.pairs_ok, 0);
	record_free(&rec);
	host_close(&h);

	host_open(&h, "unplug-during-pair", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "99999999-2222-3333-4444-555555555555");
	assert_error(request(&h, c, pair_req(&rec)), "PairingDialogResponsePending");
	advance(&h, 900);
	assert_true(ops->attached(simdev_model(h.s), now(&h)));
	advance(&h, 200);
	assert_false(ops->attached(simdev_model(h.s), now(&h)));
	assert_false(ops->attached(simdev_model(h.s), now(&h) + 60 * LP_NS_PER_S));
	record_free(&rec);
	host_close(&h);
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

static plist_t tls_request(struct host *h, uint32_t c, struct lp_tls *t, plist_t req)
{
	uint8_t *f, *out = NULL;
	size_t fl, n = 0;
	static uint8_t plain[65536];
	size_t plen = 0;

	assert_int_equal(lkd_frame_encode(req, &f, &fl), 0);
	plist_free(req);
	assert_int_equal(lp_tls_write(t, f, fl, NULL), 0);
	free(f);
	lp_tls_take(t, &out, &n);
	assert_int_equal(mux_send(h->m, c, out, n), 0);
	free(out);
	pump(h);
	assert_true(h->rxlen[c] > 0);
	lp_tls_feed(t, h->rx[c], h->rxlen[c]);
	h->rxlen[c] = 0;
	for (;;) {
		size_t got = 0;
		int rc = lp_tls_read(t, plain + plen, sizeof(plain) - plen, &got, NULL);
		if (rc)
			break;
		plen += got;
	}
	uint8_t *p = plain;
	plist_t r = take_frame(&p, &plen);
	assert_non_null(r);
	return r;
}

static void test_session_tls(void **state)
{
	struct host h;
	struct simdev_opts o = quiet_opts();
	struct record rec;
	struct simdev_state st;
	uint32_t c;
	plist_t r, req;
	const char *sid;
	char sidbuf[64];
	struct lp_tls *t;

	host_open(&h, "healthy", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "12345678-2222-3333-4444-555555555555");
	pair_via_dialog(&h, c, &rec);

	r = request(&h, c, start_session_req(rec.host_id));
	assert_success(r);
	sid = lkd_dict_str(r, "SessionID");
	assert_non_null(sid);
	assert_int_equal(strlen(sid), 36);
	assert_int_equal(strspn(sid, "0123456789ABCDEF-"), 36);
	snprintf(sidbuf, sizeof(sidbuf), "%s", sid);
	assert_int_equal(lkd_dict_bool(r, "EnableSessionSSL", 0), 1);
	plist_free(r);

	/* libimobiledevice's OpenSSL backend presents the host certificate
	 * signed by the root it sent in Pair */
	t = lp_tls_new_client(rec.host, host_key, NULL);
	assert_non_null(t);
	assert_int_equal(tls_connect(&h, c, t), 0);
	simdev_get_state(h.s, now(&h), &st);
	assert_int_equal(st.tls_sessions, 1);
	req = req_new("GetValue");
	plist_dict_set_item(req, "Key", plist_new_string("SerialNumber"));
	r = tls_request(&h, c, t, req);
	assert_success(r);
	assert_non_null(lkd_dict_str(r, "Value"));
	plist_free(r);
	req = req_new("GetValue");
	plist_dict_set_item(req, "Domain", plist_new_string("com.apple.mobile.battery"));
	plist_dict_set_item(req, "Key", plist_new_string("BatteryCurrentCapacity"));
	r = tls_request(&h, c, t, req);
	assert_success(r);
	plist_free(r);
	req = req_new("StartService");
	plist_dict_set_item(req, "Service", plist_new_string("com.apple.mobilebackup2"));
	r = tls_request(&h, c, t, req);
	assert_success(r);
	assert_int_equal(lkd_dict_bool(r, "EnableServiceSSL", 0), 1);
	uint64_t bport = 0;
	plist_get_uint_val(plist_dict_get_item(r, "Port"), &bport);
	plist_free(r);
	/* the service port speaks TLS with the same host identity */
	uint32_t bc = connect_port(&h, (uint16_t)bport);
	struct lp_tls *bt = lp_tls_new_client(rec.host, host_key, NULL);
	assert_int_equal(tls_connect(&h, bc, bt), 0);
	assert_false(h.closed[bc]);
	lp_tls_free(bt);
	req = req_new("StopSession");
	plist_dict_set_item(req, "SessionID", plist_new_string(sidbuf));
	r = tls_request(&h, c, t, req);
	assert_success(r);
	plist_free(r);
	/* host's close_notify, then plaintext again */
	lp_tls_shutdown(t);
	uint8_t *out = NULL;
	size_t n = 0;
	lp_tls_take(t, &out, &n);
	if (n)
		mux_send(h.m, c, out, n);
	free(out);
	lp_tls_free(t);
	h.rxlen[c] = 0;
	r = request(&h, c, req_new("QueryType"));
	assert_success(r);
	plist_free(r);

	/* the root certificate itself is accepted as client certificate too */
	uint32_t c2 = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	r = request(&h, c2, start_session_req(rec.host_id));
	assert_success(r);
	plist_free(r);
	t = lp_tls_new_client(rec.root, root_key, NULL);
	assert_int_equal(tls_connect(&h, c2, t), 0);
	lp_tls_free(t);
	assert_false(h.closed[c2]);

	/* a certificate from some other root is not */
	uint32_t c3 = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	r = request(&h, c3, start_session_req(rec.host_id));
	assert_success(r);
	plist_free(r);
	X509 *foreign = make_cert(host_key, other_key, false);
	t = lp_tls_new_client(foreign, host_key, NULL);
	tls_connect(&h, c3, t);
	pump(&h);
	assert_true(h.closed[c3]);
	simdev_get_state(h.s, now(&h), &st);
	assert_int_equal(st.tls_rejected, 1);
	assert_int_equal(st.tls_sessions, 3);
	lp_tls_free(t);
	X509_free(foreign);
	record_free(&rec);
	host_close(&h);
}

static void test_persistence_forgot_host(void **state)
{
	struct host h;
	struct simdev_opts o = quiet_opts();
	struct record rec;
	char path[] = "/tmp/test_simdev_XXXXXX";
	char file[64];
	int fd = mkstemp(path);
	uint32_t c;
	plist_t r;
	char udid[64];

	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	snprintf(file, sizeof(file), "%s.plist", path);
	o.state_path = file;
	host_open(&h, "healthy", &o);
	snprintf(udid, sizeof(udid), "%s", simdev_udid(h.s));
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "77777777-2222-3333-4444-555555555555");
	pair_via_dialog(&h, c, &rec);
	host_close(&h);

	/* same state file: same key, the pairing is remembered */
	host_open(&h, "healthy", &o);
	assert_string_equal(simdev_udid(h.s), udid);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	r = request(&h, c, start_session_req(rec.host_id));
	assert_success(r);
	plist_free(r);
	host_close(&h);

	/* forgot-host: the stored record is no longer known */
	host_open(&h, "forgot-host", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	assert_error(request(&h, c, start_session_req(rec.host_id)), "InvalidHostID");
	host_close(&h);
	record_free(&rec);
	unlink(file);
}

/* Garbage on the lockdown port ends that connection, not the device. */
static void test_garbage(void **state)
{
	struct host h;
	struct simdev_opts o = quiet_opts();
	uint32_t c, c2;
	plist_t r;
	static const uint8_t junk[] = {0x16, 0x03, 0x01, 0x00, 0x10, 1, 2, 3};
	static const uint8_t notplist[] = {0, 0, 0, 4, 'a', 'b', 'c', 'd'};

	host_open(&h, "healthy", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	assert_int_equal(mux_send(h.m, c, notplist, sizeof(notplist)), 0);
	pump(&h);
	r = take_frame(&h.rx[c], &h.rxlen[c]);
	assert_non_null(r);
	assert_error(r, "InvalidResponse");
	assert_int_equal(mux_send(h.m, c, junk, sizeof(junk)), 0);
	pump(&h);
	assert_true(h.closed[c]);
	c2 = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	r = request(&h, c2, req_new("QueryType"));
	assert_success(r);
	plist_free(r);
	host_close(&h);
}

/* --------------------------------------------------------------------------
 * The facts of doc/protocol.md section 0 (traffic recorded from real
 * devices), one row each, checked against the simulated iPhone. A row that
 * fails names the fact the simulator no longer reproduces.
 */

struct facts {
	struct host h;
	uint32_t c;
	struct record rec;
	struct usbd_device dd;
	struct usbd_config cfg[4];
	size_t chunks[16]; /* lengths of the device's data packets on c */
	size_t nchunks;
	plist_t query, value, refused, session; /* replies */
	const char *tls_version, *tls_cipher;
};

static bool iface_is(const struct usbd_interface *f, uint8_t num, uint8_t alt, uint8_t cls,
		     uint8_t sub, uint8_t proto)
{
	return f->bInterfaceNumber == num && f->bAlternateSetting == alt &&
	       f->bInterfaceClass == cls && f->bInterfaceSubClass == sub &&
	       f->bInterfaceProtocol == proto;
}

static const struct usbd_interface *iface_of(const struct usbd_config *c, uint8_t num, uint8_t alt)
{
	for (unsigned i = 0; i < c->num_ifaces; i++)
		if (c->iface[i].bInterfaceNumber == num && c->iface[i].bAlternateSetting == alt)
			return &c->iface[i];
	return NULL;
}

static bool has_ep(const struct usbd_interface *f, uint8_t addr, uint8_t type, uint16_t mps)
{
	for (unsigned k = 0; f && k < f->num_eps; k++)
		if (f->ep[k].bEndpointAddress == addr && (f->ep[k].bmAttributes & 3) == type &&
		    f->ep[k].wMaxPacketSize == mps)
			return true;
	return false;
}

static bool ptp_at(const struct usbd_config *c)
{
	const struct usbd_interface *f = iface_of(c, 0, 0);

	return f && iface_is(f, 0, 0, 0x06, 0x01, 0x01) && has_ep(f, 0x02, 2, 512) &&
	       has_ep(f, 0x81, 2, 512) && has_ep(f, 0x83, 3, 64);
}

static bool mux_at(const struct usbd_config *c)
{
	const struct usbd_interface *f = iface_of(c, 1, 0);

	return f && iface_is(f, 1, 0, 0xff, 0xfe, 0x02) && has_ep(f, 0x04, 2, 512) &&
	       has_ep(f, 0x85, 2, 512);
}

static bool keys_are(plist_t d, const char *const *keys, size_t n)
{
	if (!d || plist_get_node_type(d) != PLIST_DICT || plist_dict_get_size(d) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!plist_dict_get_item(d, keys[i]))
			return false;
	return true;
}

static bool f_device(struct facts *f)
{
	return f->dd.idVendor == 0x05ac && f->dd.idProduct == 0x12a8 && f->dd.bcdUSB == 0x0200 &&
	       f->dd.bcdDevice == 0x0804 && f->dd.bMaxPacketSize0 == 64 && f->dd.bDeviceClass == 0;
}

static bool f_strings(struct facts *f)
{
	uint8_t buf[255];
	char s[3][128];
	size_t n = 0;
	const uint8_t idx[3] = {f->dd.iManufacturer, f->dd.iProduct, f->dd.iSerialNumber};

	for (int i = 0; i < 3; i++)
		if (ctl(&f->h, 0x80, USBD_REQ_GET_DESCRIPTOR,
			(uint16_t)(USBD_DT_STRING << 8 | idx[i]), 0x0409, buf, sizeof(buf), &n) ||
		    usbd_parse_string(buf, n, s[i], sizeof(s[i])))
			return false;
	return !strcmp(s[0], "Apple Inc.") && !strcmp(s[1], "iPhone") && strlen(s[2]) == 40 &&
	       strspn(s[2], "0123456789abcdef") == 40;
}

static bool f_four_configs(struct facts *f)
{
	return f->dd.bNumConfigurations == 4;
}

static bool f_config1(struct facts *f)
{
	return f->cfg[0].bConfigurationValue == 1 && f->cfg[0].bNumInterfaces == 1 &&
	       ptp_at(&f->cfg[0]);
}

static bool f_config2(struct facts *f)
{
	const struct usbd_config *c = &f->cfg[1];
	const struct usbd_interface *ac = iface_of(c, 0, 0), *as = iface_of(c, 1, 1),
				    *hid = iface_of(c, 2, 0);

	return c->bConfigurationValue == 2 && ac && iface_is(ac, 0, 0, 0x01, 0x01, 0x00) && as &&
	       iface_is(as, 1, 1, 0x01, 0x02, 0x00) && has_ep(as, 0x81, 1, 192) && hid &&
	       iface_is(hid, 2, 0, 0x03, 0x00, 0x00) && has_ep(hid, 0x83, 3, 64);
}

static bool f_config3(struct facts *f)
{
	return f->cfg[2].bConfigurationValue == 3 && f->cfg[2].bNumInterfaces == 2 &&
	       ptp_at(&f->cfg[2]) && mux_at(&f->cfg[2]);
}

static bool f_config4(struct facts *f)
{
	const struct usbd_interface *eth = iface_of(&f->cfg[3], 2, 0);

	return f->cfg[3].bConfigurationValue == 4 && f->cfg[3].bNumInterfaces == 3 &&
	       ptp_at(&f->cfg[3]) && mux_at(&f->cfg[3]) && eth &&
	       iface_is(eth, 2, 0, 0xff, 0xfd, 0x01);
}

static bool f_query(struct facts *f)
{
	static const char *const k[] = {"Request", "Type"};
	const char *t = lkd_dict_str(f->query, "Type");

	return keys_are(f->query, k, 2) && t && !strcmp(t, "com.apple.mobile.lockdown");
}

static bool f_value(struct facts *f)
{
	static const char *const k[] = {"Request", "Key", "Value"};
	const char *key = lkd_dict_str(f->value, "Key");

	return keys_are(f->value, k, 3) && key && !strcmp(key, "ProductVersion");
}

static bool f_refused(struct facts *f)
{
	static const char *const k[] = {"Request", "Key", "Error"};
	const char *key = lkd_dict_str(f->refused, "Key"), *err = lkd_dict_str(f->refused, "Error");

	return keys_are(f->refused, k, 3) && key && !strcmp(key, "IDAMCapability") && err &&
	       !strcmp(err, "GetProhibited");
}

static bool f_session(struct facts *f)
{
	static const char *const k[] = {"Request", "SessionID", "EnableSessionSSL"};

	return keys_are(f->session, k, 3) && lkd_dict_str(f->session, "SessionID") &&
	       lkd_dict_bool(f->session, "EnableSessionSSL", 0) == 1;
}

/* the QueryType reply on a fresh connection: 4 bytes, then the body */
static bool f_split_prefix(struct facts *f)
{
	return f->nchunks >= 2 && f->chunks[0] == 4 && f->chunks[1] > 4;
}

static bool f_tls(struct facts *f)
{
	return f->tls_version && !strcmp(f->tls_version, "TLSv1.2") && f->tls_cipher &&
	       !strcmp(f->tls_cipher, "ECDHE-RSA-AES256-GCM-SHA384");
}

static const struct fact {
	const char *fact; /* as doc/protocol.md section 0 states it */
	bool (*holds)(struct facts *f);
} facts[] = {
	{"05ac:12a8, bcdUSB 0x0200, bcdDevice 0x0804, bMaxPacketSize0 64, device class 0",
	 f_device},
	{"iManufacturer \"Apple Inc.\", iProduct \"iPhone\", serial = 40 hex digits", f_strings},
	{"4 configurations", f_four_configs},
	{"configuration 1: PTP 06/01/01, bulk OUT 0x02 (512), bulk IN 0x81 (512), interrupt IN 0x83 (64)",
	 f_config1},
	{"configuration 2: audio control 01/01/00; audio streaming 01/02/00 (alt 1: iso IN 0x81, 192); "
	 "HID 03/00/00 (interrupt IN 0x83, 64)",
	 f_config2},
	{"configuration 3: PTP; usbmux ff/fe/02, bulk OUT 0x04 (512), bulk IN 0x85 (512)",
	 f_config3},
	{"configuration 4: as 3, plus Apple USB Ethernet ff/fd/01", f_config4},
	{"QueryType reply: {Request, Type: com.apple.mobile.lockdown}, no Result", f_query},
	{"GetValue reply: {Request, Key: <echoed>, Value}, no Result", f_value},
	{"a refused key: {Request, Key: <echoed>, Error: GetProhibited} (IDAMCapability before a session)",
	 f_refused},
	{"StartSession reply: {Request, SessionID, EnableSessionSSL: true}, no Result", f_session},
	{"the 4-byte length prefix in a segment of its own, before the plist body", f_split_prefix},
	{"TLS after StartSession: TLS 1.2, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", f_tls},
};

static void test_real_device_facts(void **state)
{
	struct facts f;
	struct simdev_opts o = quiet_opts();
	uint8_t buf[512];
	size_t n = 0;
	plist_t req;
	struct lp_tls *t;
	int failed = 0;

	memset(&f, 0, sizeof(f));
	host_open(&f.h, "healthy", &o);
	assert_int_equal(
		ctl(&f.h, 0x80, USBD_REQ_GET_DESCRIPTOR, USBD_DT_DEVICE << 8, 0, buf, 18, &n), 0);
	assert_int_equal(usbd_parse_device(buf, n, &f.dd), 0);
	for (uint8_t i = 0; i < 4; i++) {
		assert_int_equal(ctl(&f.h, 0x80, USBD_REQ_GET_DESCRIPTOR,
				     (uint16_t)(USBD_DT_CONFIG << 8 | i), 0, buf, sizeof(buf), &n),
				 0);
		assert_int_equal(usbd_parse_config(buf, n, &f.cfg[i]), 0);
	}
	host_mux_up(&f.h);
	f.c = connect_port(&f.h, SIMDEV_PORT_LOCKDOWN);
	f.h.chunk_log = f.chunks;
	f.h.chunk_cap = sizeof(f.chunks) / sizeof(f.chunks[0]);
	f.h.chunk_conn = f.c;
	f.query = request(&f.h, f.c, req_new("QueryType"));
	f.nchunks = f.h.chunk_n;
	f.h.chunk_log = NULL;
	req = req_new("GetValue");
	plist_dict_set_item(req, "Key", plist_new_string("ProductVersion"));
	f.value = request(&f.h, f.c, req);
	req = req_new("GetValue");
	plist_dict_set_item(req, "Key", plist_new_string("IDAMCapability"));
	f.refused = request(&f.h, f.c, req);
	record_make(&f.h, f.c, &f.rec, "12345678-FACT-3333-4444-555555555555");
	pair_via_dialog(&f.h, f.c, &f.rec);
	f.session = request(&f.h, f.c, start_session_req(f.rec.host_id));
	t = lp_tls_new_client(f.rec.host, host_key, NULL);
	assert_non_null(t);
	assert_int_equal(tls_connect(&f.h, f.c, t), 0);
	f.tls_version = lp_tls_version(t);
	f.tls_cipher = lp_tls_cipher(t);

	for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++) {
		bool ok = facts[i].holds(&f);

		print_message("%s fact %zu: %s\n", ok ? "ok  " : "FAIL", i + 1, facts[i].fact);
		failed += !ok;
	}
	lp_tls_free(t);
	plist_free(f.query);
	plist_free(f.value);
	plist_free(f.refused);
	plist_free(f.session);
	record_free(&f.rec);
	host_close(&f.h);
	assert_int_equal(failed, 0);
}

/* framing=joined: prefix and body in one usbmux packet, for hosts that need it */
static void test_framing_joined(void **state)
{
	struct host h;
	struct simdev_opts o = quiet_opts();
	size_t chunks[4];
	uint32_t c;
	plist_t r;

	o.framing_joined = true;
	host_open(&h, "healthy", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	h.chunk_log = chunks;
	h.chunk_cap = 4;
	h.chunk_conn = c;
	r = request(&h, c, req_new("QueryType"));
	assert_success(r);
	plist_free(r);
	assert_int_equal(h.chunk_n, 1);
	assert_true(chunks[0] > 4);
	host_close(&h);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_descriptors),
		cmocka_unit_test(test_other_modes),
		cmocka_unit_test(test_udid24),
		cmocka_unit_test(test_usbmux_needs_config),
		cmocka_unit_test(test_query_and_values),
		cmocka_unit_test(test_pair_trust),
		cmocka_unit_test(test_preflight_notification),
		cmocka_unit_test(test_pair_refusals),
		cmocka_unit_test(test_session_tls),
		cmocka_unit_test(test_persistence_forgot_host),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_real_device_facts),
		cmocka_unit_test(test_framing_joined),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
