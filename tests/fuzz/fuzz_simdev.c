/* fuzz_simdev.c - libFuzzer harness for the simulated iPhone (src/device/simdev.c,
 * src/device/sim_lockdownd.c): the device-role usbmux codec, the lockdown
 * framing/plist handling, the Trust dialog, StartSession/TLS glue and the
 * notification proxy, all fed through the model ops as a host would.
 *
 * Setup (once): a device key and one pairing (HostID FUZZ-HOST, certificates
 * made here) are written to a state file, so every run loads the same phone
 * quickly and StartSession {HostID: FUZZ-HOST} reaches the TLS server.
 * Per input: a fresh simdev from that file, SET_CONFIGURATION, then
 *
 *   byte 0: bits 0-1 profile (healthy, locked, deny, never-answers);
 *           bit 2 raw mode: no host codec, records go straight to bulk OUT;
 *           bit 3 configuration 4 instead of 3
 *   records: [ctl u8][len u16 BE][len bytes] (a short last record takes the rest)
 *     ctl bit 0: raw bulk OUT transfer (else: bytes on the current lockdown
 *                connection through a HOST-role mux)
 *     ctl bit 1: afterwards advance the clock 1.5 s and run timers
 *     ctl bit 2: afterwards open another connection (to 62078, or with bit 5
 *                to the last service Port the device replied with)
 *     ctl bit 3: the record is a control transfer (8 setup bytes + data)
 *     ctl bit 4: afterwards reset the device and configure it again
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <plist/plist.h>

#include "proto/lockdown_frame.h"
#include "proto/mux.h"
#include "src/device/simdev.h"

static char state_path[64];
static const char *profiles[4] = {"healthy", "locked", "deny", "never-answers"};

#define RX_MAX 65536

struct fz {
	struct lp_clock clk;
	struct simdev *s;
	struct mux *h;
	uint32_t conn;
	bool have_conn;
	uint16_t svc_port; /* last Port the device handed out */
	uint8_t rx[RX_MAX];
	size_t rxlen;
};

static void fz_connect(void *ud, uint32_t conn, uint16_t port, int result)
{
	struct fz *f = ud;

	if (result == 0) {
		f->conn = conn;
		f->have_conn = true;
		f->rxlen = 0;
	}
}

/* Watch the current connection's plaintext replies for StartService's Port. */
static void fz_data(void *ud, uint32_t conn, const uint8_t *data, size_t len)
{
	struct fz *f = ud;

	if (conn != f->conn || len > RX_MAX - f->rxlen) {
		f->rxlen = 0;
		return;
	}
	memcpy(f->rx + f->rxlen, data, len);
	f->rxlen += len;
	while (f->rxlen >= 4) {
		uint32_t n = (uint32_t)f->rx[0] << 24 | (uint32_t)f->rx[1] << 16 |
			     (uint32_t)f->rx[2] << 8 | f->rx[3];
		plist_t p = NULL, port;
		uint64_t v = 0;

		if (n > RX_MAX - 4) {
			f->rxlen = 0;
			return;
		}
		if (f->rxlen - 4 < n)
			return;
		if (lkd_plist_decode(f->rx + 4, n, &p) == 0 &&
		    plist_get_node_type(p) == PLIST_DICT &&
		    (port = plist_dict_get_item(p, "Port")) &&
		    plist_get_node_type(port) == PLIST_UINT) {
			plist_get_uint_val(port, &v);
			f->svc_port = (uint16_t)v;
		}
		plist_free(p);
		memmove(f->rx, f->rx + 4 + n, f->rxlen - 4 - n);
		f->rxlen -= 4 + n;
	}
}

static const struct mux_cbs fz_cbs = {.on_connect = fz_connect, .on_data = fz_data};

static const struct devmodel_ops *ops = &devcore_model_ops;

static void pump(struct fz *f)
{
	for (int round = 0; round < 64; round++) {
		bool moved = false;
		uint8_t *pkt;
		size_t len;
		const uint8_t *d;
		bool zlp;

		while (f->h && mux_out_take(f->h, &pkt, &len) == 0) {
			ops->bulk_out(simdev_model(f->s), SIMDEV_EP_MUX_OUT, pkt, len, f->clk.vnow);
			free(pkt);
			moved = true;
		}
		while (ops->bulk_in_next(simdev_model(f->s), SIMDEV_EP_MUX_IN, &d, &len, &zlp,
					 f->clk.vnow) == 0) {
			if (f->h)
				mux_feed(f->h, d, len, true);
			moved = true;
		}
		if (!moved)
			return;
	}
}

static void configure(struct fz *f, uint8_t cfg, bool raw)
{
	uint8_t setup[8] = {0x00, 9, cfg, 0, 0, 0, 0, 0};
	size_t actual;
	uint32_t c;

	ops->reset(simdev_model(f->s), f->clk.vnow);
	ops->control(simdev_model(f->s), setup, NULL, 0, &actual, f->clk.vnow);
	mux_free(f->h);
	f->h = NULL;
	f->have_conn = false;
	if (raw)
		return;
	f->h = mux_new(MUX_ROLE_HOST, &fz_cbs, f, NULL);
	if (!f->h)
		return;
	mux_start(f->h, 2);
	pump(f);
	mux_connect(f->h, SIMDEV_PORT_LOCKDOWN, &c);
	pump(f);
}

/* ---------------------------------------------------------------- setup */

static X509 *cert(EVP_PKEY *pub, EVP_PKEY *signer)
{
	X509 *x = X509_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 60L * 60 * 24 * 3650);
	X509_set_pubkey(x, pub);
	X509_sign(x, signer, EVP_sha256());
	return x;
}

static void put_pem(plist_t d, const char *key, X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;

	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &p);
	plist_dict_set_item(d, key, plist_new_data(p, (uint64_t)n));
	BIO_free(b);
}

/* Add pairing FUZZ-HOST (root signs host and device cert) to the state file. */
static int add_pairing(void)
{
	FILE *fp = fopen(state_path, "rb");
	char *buf = malloc(1 << 20), *xml = NULL;
	size_t n;
	plist_t root = NULL, kn, arr, pd;
	const char *kp;
	uint64_t klen = 0;
	EVP_PKEY *dk, *rk;
	BIO *b;
	X509 *rc, *hc, *dc;
	uint32_t xlen = 0;

	if (!fp || !buf)
		return -1;
	n = fread(buf, 1, 1 << 20, fp);
	fclose(fp);
	plist_from_xml(buf, (uint32_t)n, &root);
	free(buf);
	kn = root ? plist_dict_get_item(root, "DevicePrivateKey") : NULL;
	if (!kn)
		return -1;
	kp = plist_get_data_ptr(kn, &klen);
	b = BIO_new_mem_buf(kp, (int)klen);
	dk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	rk = EVP_RSA_gen(1024);
	if (!dk || !rk)
		return -1;
	rc = cert(rk, rk);
	hc = cert(rk, rk);
	dc = cert(dk, rk);
	pd = plist_new_dict();
	plist_dict_set_item(pd, "HostID", plist_new_string("FUZZ-HOST"));
	plist_dict_set_item(pd, "SystemBUID", plist_new_string("FUZZ-BUID"));
	put_pem(pd, "RootCertificate", rc);
	put_pem(pd, "HostCertificate", hc);
	put_pem(pd, "DeviceCertificate", dc);
	arr = plist_new_array();
	plist_array_append_item(arr, pd);
	plist_dict_set_item(root, "Pairings", arr);
	plist_to_xml(root, &xml, &xlen);
	fp = fopen(state_path, "wb");
	if (!fp || fwrite(xml, 1, xlen, fp) != xlen)
		return -1;
	fclose(fp);
	plist_to_xml_free(xml);
	plist_free(root);
	X509_free(rc);
	X509_free(hc);
	X509_free(dc);
	EVP_PKEY_free(dk);
	EVP_PKEY_free(rk);
	return 0;
}

static void drop_state(void)
{
	unlink(state_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct lp_clock clk;
	struct simdev_opts o = {0};
	struct simdev *s;

	snprintf(state_path, sizeof(state_path), "/tmp/fuzz_simdev.%ld.plist", (long)getpid());
	unlink(state_path);
	lp_clock_init_virtual(&clk, 0);
	o.state_path = state_path;
	s = simdev_new("healthy", &o, &clk, NULL, NULL);
	if (!s || add_pairing() != 0)
		abort();
	simdev_free(s);
	atexit(drop_state);
	return 0;
}

/* ----------------------------------------------------------------- input */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz f;
	struct simdev_opts o = {0};
	uint8_t flags, cfg;
	bool raw;
	size_t off = 1;

	if (size < 1)
		return 0;
	memset(&f, 0, sizeof(f));
	lp_clock_init_virtual(&f.clk, 0);
	flags = data[0];
	raw = flags & 4;
	cfg = (flags & 8) ? 4 : 3;
	o.state_path = state_path;
	o.state_readonly = true; /* an Unpair must not change the next run */
	o.reenum_after_pair = SIMDEV_REENUM_AUTO;
	f.s = simdev_new(profiles[flags & 3], &o, &f.clk, NULL, NULL);
	if (!f.s)
		return 0;
	configure(&f, cfg, raw);
	while (off < size) {
		uint8_t ctl = data[off++];
		size_t len = 0;
		const uint8_t *rec;

		if (size - off >= 2) {
			len = (size_t)data[off] << 8 | data[off + 1];
			off += 2;
		}
		if (len > size - off)
			len = size - off;
		rec = data + off;
		off += len;

		if (ctl & 8) {
			uint8_t setup[8] = {0}, buf[512];
			size_t actual = 0, dl = len > 8 ? len - 8 : 0;

			memcpy(setup, rec, len < 8 ? len : 8);
			if (dl > sizeof(buf))
				dl = sizeof(buf);
			if (dl)
				memcpy(buf, rec + 8, dl);
			ops->control(simdev_model(f.s), setup, buf,
				     (setup[0] & 0x80) ? sizeof(buf) : dl, &actual, f.clk.vnow);
		} else if ((ctl & 1) || !f.h) {
			ops->bulk_out(simdev_model(f.s), SIMDEV_EP_MUX_OUT, rec, len, f.clk.vnow);
		} else if (f.have_conn && len) {
			mux_send(f.h, f.conn, rec, len);
		}
		pump(&f);
		if (ctl & 2) {
			f.clk.vnow += 1500 * LP_NS_PER_MS;
			ops->tick(simdev_model(f.s), f.clk.vnow);
			pump(&f);
		}
		if ((ctl & 4) && f.h) {
			uint32_t c;
			uint16_t port = SIMDEV_PORT_LOCKDOWN;

			if ((ctl & 0x20) && f.svc_port)
				port = f.svc_port;
			mux_connect(f.h, port, &c);
			pump(&f);
		}
		if (ctl & 0x10)
			configure(&f, cfg, raw);
	}
	mux_free(f.h);
	simdev_free(f.s);
	return 0;
}
