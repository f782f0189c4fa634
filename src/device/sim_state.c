/* sim_state.c - what the simulated iPhone remembers across re-enumeration:
 * its RSA key, the hosts it is paired with, the state file they persist in,
 * and the Trust dialog on the device clock.
 *
 * State file (0600, written like a pair record: pair_write_file_atomic): an
 * XML plist {DevicePrivateKey: PEM data, Pairings: [{HostID, SystemBUID,
 * RootCertificate, HostCertificate, DeviceCertificate, EscrowBag}]}. Loaded
 * through lkd_plist_decode, capped at SLKD_STATE_MAX before reading.
 *
 * Reference: doc/protocol.md 4.5 (DevicePublicKey), 4.6-4.7 (pairing).
 */
#include "proto/pair_cert.h"
#include "proto/pair_store.h"
#include "src/device/sim_lockdownd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <plist/plist.h>

#include "proto/lockdown_frame.h"
#include "proto/tls.h"

#define SLKD_KEY_BITS 2048

/* A host's certificate: the device's own, tighter cap, then the shared PEM loader. */
static X509 *x509_from_pem(const uint8_t *pem, size_t len)
{
	if (len > SLKD_CERT_MAX)
		return NULL;
	return pair_load_cert(pem, len);
}

X509 *slkd_cert_from_node(plist_t dict, const char *key)
{
	plist_t n = dict ? plist_dict_get_item(dict, key) : NULL;
	const char *p;
	uint64_t len = 0;

	if (!n || plist_get_node_type(n) != PLIST_DATA)
		return NULL;
	p = plist_get_data_ptr(n, &len);
	return x509_from_pem((const uint8_t *)p, (size_t)len);
}

/* PEM text of a BIO-writable object into an owned buffer. */
static char *bio_take(BIO *b, size_t *len)
{
	char *p = NULL, *out;
	long n = BIO_get_mem_data(b, &p);

	if (n <= 0 || !p)
		return NULL;
	out = malloc((size_t)n + 1);
	if (!out)
		return NULL;
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	*len = (size_t)n;
	return out;
}

static char *x509_to_pem(X509 *x, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL;

	if (b && PEM_write_bio_X509(b, x) == 1)
		out = bio_take(b, len);
	BIO_free(b);
	return out;
}

static void node_set_pem(plist_t dict, const char *key, X509 *x)
{
	size_t len = 0;
	char *pem = x509_to_pem(x, &len);

	if (pem)
		plist_dict_set_item(dict, key, plist_new_data(pem, len));
	free(pem);
}

/* DevicePublicKey: PKCS#1 RSAPublicKey in PEM ("BEGIN RSA PUBLIC KEY"),
 * the label libimobiledevice's GnuTLS path insists on (doc/protocol.md 4.5). */
static int make_pubkey_pem(struct slkd_device *d, struct lp_errinfo *e)
{
	OSSL_ENCODER_CTX *ec;
	unsigned char *buf = NULL;
	size_t len = 0;

	ec = OSSL_ENCODER_CTX_new_for_pkey(d->key, EVP_PKEY_PUBLIC_KEY, "PEM", "type-specific",
					   NULL);
	if (!ec || OSSL_ENCODER_to_data(ec, &buf, &len) != 1 || !buf) {
		OSSL_ENCODER_CTX_free(ec);
		return lp_openssl_err(e, LP_ECRYPTO, "encode device public key");
	}
	OSSL_ENCODER_CTX_free(ec);
	d->pubkey_pem = malloc(len + 1);
	if (!d->pubkey_pem) {
		OPENSSL_free(buf);
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	}
	memcpy(d->pubkey_pem, buf, len);
	d->pubkey_pem[len] = '\0';
	d->pubkey_pem_len = len;
	OPENSSL_free(buf);
	return 0;
}

static void pairing_clear(struct slkd_pairing *p)
{
	X509_free(p->root);
	X509_free(p->host);
	X509_free(p->device);
	memset(p, 0, sizeof(*p));
}

const struct slkd_pairing *slkd_find_pairing(const struct slkd_device *d, const char *host_id)
{
	if (!host_id)
		return NULL;
	for (size_t i = 0; i < d->npair; i++)
		if (strcmp(d->pair[i].host_id, host_id) == 0)
			return &d->pair[i];
	return NULL;
}

bool slkd_buid_paired(const struct slkd_device *d, const char *buid)
{
	if (!buid || !*buid)
		return false;
	for (size_t i = 0; i < d->npair; i++)
		if (strcmp(d->pair[i].system_buid, buid) == 0)
			return true;
	return false;
}

void slkd_remove_pairing(struct slkd_device *d, size_t i)
{
	pairing_clear(&d->pair[i]);
	memmove(&d->pair[i], &d->pair[i + 1], (d->npair - i - 1) * sizeof(d->pair[0]));
	d->npair--;
	memset(&d->pair[d->npair], 0, sizeof(d->pair[0]));
}

/* Adopts root/host/device. Replaces a pairing with the same HostID; evicts
 * the oldest when full. */
struct slkd_pairing *slkd_add_pairing(struct slkd_device *d, const char *host_id, const char *buid,
				      X509 *root, X509 *host, X509 *device)
{
	struct slkd_pairing *p;

	for (size_t i = 0; i < d->npair; i++) {
		if (strcmp(d->pair[i].host_id, host_id) == 0) {
			slkd_remove_pairing(d, i);
			break;
		}
	}
	if (d->npair == SLKD_MAX_PAIRINGS) {
		size_t old = 0;
		for (size_t i = 1; i < d->npair; i++)
			if (d->pair[i].seq < d->pair[old].seq)
				old = i;
		slkd_remove_pairing(d, old);
	}
	p = &d->pair[d->npair++];
	snprintf(p->host_id, sizeof(p->host_id), "%s", host_id);
	snprintf(p->system_buid, sizeof(p->system_buid), "%s", buid ? buid : "");
	p->root = root;
	p->host = host;
	p->device = device;
	p->seq = ++d->pair_seq;
	return p;
}

int slkd_state_save(struct slkd_device *d)
{
	plist_t root, arr;
	char *xml = NULL;
	uint32_t xlen = 0;
	BIO *b;
	size_t klen = 0;
	char *kpem = NULL;
	int rc = LP_EIO;

	if (!d->state_path || d->state_readonly)
		return 0;
	root = plist_new_dict();
	b = BIO_new(BIO_s_mem());
	if (b && PEM_write_bio_PrivateKey(b, d->key, NULL, NULL, 0, NULL, NULL) == 1)
		kpem = bio_take(b, &klen);
	BIO_free(b);
	if (!kpem)
		goto out;
	plist_dict_set_item(root, "DevicePrivateKey", plist_new_data(kpem, klen));
	OPENSSL_cleanse(kpem, klen);
	arr = plist_new_array();
	for (size_t i = 0; i < d->npair; i++) {
		struct slkd_pairing *p = &d->pair[i];
		plist_t pd = plist_new_dict();

		plist_dict_set_item(pd, "HostID", plist_new_string(p->host_id));
		plist_dict_set_item(pd, "SystemBUID", plist_new_string(p->system_buid));
		node_set_pem(pd, "RootCertificate", p->root);
		node_set_pem(pd, "HostCertificate", p->host);
		node_set_pem(pd, "DeviceCertificate", p->device);
		plist_dict_set_item(pd, "EscrowBag",
				    plist_new_data((char *)p->escrow, sizeof(p->escrow)));
		plist_array_append_item(arr, pd);
	}
	plist_dict_set_item(root, "Pairings", arr);
	plist_to_xml(root, &xml, &xlen);
	if (!xml)
		goto out;
	{
		/* the file holds the simulated phone's private key: written like a
		 * pair record (temp + fsync + rename + directory fsync, 0600) */
		char dir[PATH_MAX];
		const char *slash = strrchr(d->state_path, '/');
		size_t dl = slash ? (size_t)(slash - d->state_path) : 0;

		if (dl >= sizeof(dir))
			goto out;
		if (slash) {
			memcpy(dir, d->state_path, dl ? dl : 1);
			dir[dl ? dl : 1] = '\0';
		} else {
			strcpy(dir, ".");
		}
		if (pair_write_file_atomic(dir, slash ? slash + 1 : d->state_path, xml, xlen, false,
					   NULL))
			goto out;
	}
	rc = 0;
out:
	if (rc)
		lp_logf(d->log, LP_LOG_WARN, "simdev: could not save state to %s", d->state_path);
	free(kpem);
	if (xml) {
		OPENSSL_cleanse(xml, xlen);
		plist_to_xml_free(xml);
	}
	plist_free(root);
	return rc;
}

static int read_file_capped(const char *path, uint8_t **out, size_t *len)
{
	/* O_NONBLOCK and the regular-file check: a FIFO at the state path must
	 * not block the open or the reads */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	uint8_t *buf;
	size_t off = 0;

	if (fd < 0)
		return errno == ENOENT ? LP_ENOENT : lp_err_from_errno(errno);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return LP_EINVAL;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size > SLKD_STATE_MAX) {
		close(fd);
		return LP_ETOOBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return LP_ENOMEM;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	*out = buf;
	*len = off;
	return 0;
}

static int state_load(struct slkd_device *d, struct lp_errinfo *e)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	plist_t root = NULL, kn, arr;
	const char *kp;
	uint64_t klen = 0;
	BIO *b;
	int rc;

	rc = read_file_capped(d->state_path, &buf, &len);
	if (rc == LP_ENOENT)
		return LP_ENOENT;
	if (rc)
		return lp_err_set(e, rc, "simdev state %s: %s", d->state_path, lp_strerror(rc));
	rc = lkd_plist_decode(buf, len, &root);
	OPENSSL_cleanse(buf, len); /* the device's private key */
	free(buf);
	if (rc || plist_get_node_type(root) != PLIST_DICT) {
		plist_free(root);
		return lp_err_set(e, LP_EPLIST, "simdev state %s: not a plist dictionary",
				  d->state_path);
	}
	kn = plist_dict_get_item(root, "DevicePrivateKey");
	if (!kn || plist_get_node_type(kn) != PLIST_DATA) {
		plist_free(root);
		return lp_err_set(e, LP_EBADMSG, "simdev state %s: no DevicePrivateKey",
				  d->state_path);
	}
	kp = plist_get_data_ptr(kn, &klen);
	b = BIO_new_mem_buf(kp, (int)klen);
	d->key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (!d->key || EVP_PKEY_get_base_id(d->key) != EVP_PKEY_RSA) {
		plist_free(root);
		return lp_openssl_err(e, LP_ECRYPTO, "simdev state: DevicePrivateKey");
	}
	arr = plist_dict_get_item(root, "Pairings");
	if (!d->pol.forget_hosts && arr && plist_get_node_type(arr) == PLIST_ARRAY) {
		uint32_t n = plist_array_get_size(arr);
		for (uint32_t i = 0; i < n && i < SLKD_MAX_PAIRINGS; i++) {
			plist_t pd = plist_array_get_item(arr, i);
			const char *hid = lkd_dict_str(pd, "HostID");
			const char *buid = lkd_dict_str(pd, "SystemBUID");
			X509 *r = slkd_cert_from_node(pd, "RootCertificate");
			X509 *h = slkd_cert_from_node(pd, "HostCertificate");
			X509 *dv = slkd_cert_from_node(pd, "DeviceCertificate");
			plist_t eb = plist_dict_get_item(pd, "EscrowBag");
			struct slkd_pairing *p;

			if (!hid || !*hid || strlen(hid) >= SLKD_ID_MAX || !r || !h || !dv) {
				X509_free(r);
				X509_free(h);
				X509_free(dv);
				continue;
			}
			p = slkd_add_pairing(d, hid, buid, r, h, dv);
			if (eb && plist_get_node_type(eb) == PLIST_DATA) {
				uint64_t el = 0;
				const char *ep = plist_get_data_ptr(eb, &el);
				memcpy(p->escrow, ep,
				       el < sizeof(p->escrow) ? el : sizeof(p->escrow));
			}
		}
	}
	plist_free(root);
	return 0;
}

int slkd_device_init(struct slkd_device *d, struct lp_clock *clock, const struct lp_log *log,
		     const struct slkd_policy *pol, const struct slkd_identity *id, uint64_t seed,
		     const char *state_path, bool readonly, struct lp_errinfo *e)
{
	int rc;

	memset(d, 0, sizeof(*d));
	d->clock = clock;
	d->log = log;
	d->pol = *pol;
	d->id = *id;
	lp_rand_seed(&d->rand, seed ^ 0x6c6f636b646f776eull);
	d->state_readonly = readonly;
	if (state_path) {
		d->state_path = strdup(state_path);
		if (!d->state_path)
			return lp_err_set(e, LP_ENOMEM, "out of memory");
		rc = state_load(d, e);
		if (rc && rc != LP_ENOENT)
			goto fail;
	}
	if (!d->key) {
		d->key = EVP_RSA_gen(SLKD_KEY_BITS);
		if (!d->key) {
			rc = lp_openssl_err(e, LP_ECRYPTO, "device RSA key generation");
			goto fail;
		}
		if (d->state_path)
			slkd_state_save(d);
	}
	rc = make_pubkey_pem(d, e);
	if (rc)
		goto fail;
	return 0;
fail:
	slkd_device_release(d);
	return rc;
}

void slkd_device_release(struct slkd_device *d)
{
	for (size_t i = 0; i < d->npair; i++)
		pairing_clear(&d->pair[i]);
	d->npair = 0;
	EVP_PKEY_free(d->key);
	d->key = NULL;
	free(d->pubkey_pem);
	d->pubkey_pem = NULL;
	free(d->state_path);
	d->state_path = NULL;
}

uint64_t slkd_dialog_deadline(const struct slkd_device *d)
{
	if (d->dialog != SLKD_DIALOG_SHOWN || d->pol.answer == SLKD_ANSWER_NEVER)
		return UINT64_MAX;
	if (d->dialog_at > UINT64_MAX - d->pol.trust_delay_ns)
		return UINT64_MAX;
	return d->dialog_at + d->pol.trust_delay_ns;
}

bool slkd_dialog_update(struct slkd_device *d, uint64_t now)
{
	if (d->dialog != SLKD_DIALOG_SHOWN || now < slkd_dialog_deadline(d))
		return false;
	if (d->pol.answer == SLKD_ANSWER_DENY) {
		d->dialog = SLKD_DIALOG_DENIED;
		lp_logf(d->log, LP_LOG_INFO, "simdev: user tapped Don't Trust");
		return false;
	}
	d->trusted_at = slkd_dialog_deadline(d);
	d->dialog = SLKD_DIALOG_TRUSTED;
	lp_logf(d->log, LP_LOG_INFO, "simdev: user tapped Trust");
	return true;
}
