/* sim_lockdownd.c - the simulated iPhone's lockdownd (port 62078), its Trust
 * dialog and pairings, and two tiny services (insecure_notification_proxy,
 * mobilebackup2). Device side only; hosts live in proto/lockdown*.c.
 *
 * Reference: protocol-notes.md 4.1-4.11 and section 0; libimobiledevice
 * lockdown.c / notification_proxy.c and usbmuxd preflight.c (read for facts).
 *
 * Framing on every connection: 4-byte big-endian length + plist (replies are
 * XML). The splitting is done here rather than with struct lkd_framer
 * because lockdown switches the same byte stream to TLS right after the
 * StartSession reply and back to plaintext after StopSession: the bytes that
 * follow a message must be handed to whichever layer comes next, so we need
 * to see exactly where each frame ends. Bodies go through lkd_plist_decode.
 *
 * Per connection:  PLAIN --StartSession--> TLS_HS --handshake+cert ok--> TLS
 *                  TLS --StopSession (reply, our close_notify)--> CLOSING
 *                  CLOSING --host's TLS records skipped / plaintext--> PLAIN
 * A host certificate that is neither the stored Root/Host certificate nor
 * signed by the stored root's key ends the connection (RST).
 *
 * Decisions where the notes say UNVERIFIED (documented in simdev.h too):
 *  - every success reply carries Result "Success" (accepted by every host);
 *  - an unknown Request gets Error "InvalidResponse", a message without
 *    Request gets "MissingKey";
 *  - readable without a session: identity keys (see vals[]); domains and the
 *    rest need a session (GetProhibited);
 *  - a Pair from a host whose SystemBUID or HostID is already paired succeeds
 *    without a dialog (the phone already trusts that computer);
 *  - StartSession without HostID answers InvalidHostID (see there);
 *  - bytes after the host's close_notify in the same USB transfer are lost.
 */
#include "proto/pair_cert.h"
#include "proto/pair_record.h"
#include "src/device/sim_lockdownd.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
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

#include "src/base/lp_cursor.h"
#include "src/base/lp_str.h"
#include "proto/lockdown_frame.h"
#include "proto/tls.h"

#define SLKD_PREFIX 4
#define SLKD_IN_MAX (SLKD_PREFIX + (size_t)LKD_MAX_MESSAGE + MUX_MAX_PACKET)
#define SLKD_NOTIFY_NAME_MAX 256
#define SLKD_KEY_BITS 2048

#define PRODUCT_TYPE "iPhone10,6"
#define PRODUCT_VERSION "16.7.2"
#define BUILD_VERSION "20H115"

enum slkd_kind { SLKD_LOCKDOWN, SLKD_NOTIFY, SLKD_BACKUP };
enum slkd_st { ST_PLAIN, ST_TLS_HS, ST_TLS, ST_CLOSING };

struct slkd_conn {
	bool used;
	bool dead; /* close at the next sweep */
	bool gone; /* the peer/codec already forgot it: no RST */
	uint32_t id;
	uint16_t port;
	enum slkd_kind kind;
	enum slkd_st st;
	uint8_t *in; /* plaintext (or, CLOSING, raw) bytes not yet framed */
	size_t in_len, in_cap;
	struct lp_tls *tls;
	bool verify_peer;
	bool session;
	char session_id[40];
	char host_id[SLKD_ID_MAX];
	char *observe[SLKD_NOTIFY_NAMES];
	size_t nobserve;
};

struct slkd_service {
	bool used;
	uint16_t port;
	enum slkd_kind kind;
	char host_id[SLKD_ID_MAX];
	uint64_t seq;
};

struct slkd {
	struct slkd_device *d;
	struct mux *mux;
	uint64_t now;
	struct slkd_conn conn[MUX_MAX_CONNS];
	struct slkd_service svc[SLKD_MAX_SERVICES];
	uint64_t svc_seq;
};

/* --------------------------------------------------------------------------
 * Device state: key, identity, pairings, persistence
 */

static void rand_uuid(struct lp_rand *r, char out[37])
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (int i = 0; i < 32; i++) {
		if (i == 8 || i == 12 || i == 16 || i == 20)
			out[o++] = '-';
		out[o++] = hex[lp_rand_next(r) & 0xf];
	}
	out[o] = '\0';
}

/* A host's certificate: the device's own, tighter cap, then the shared PEM loader. */
static X509 *x509_from_pem(const uint8_t *pem, size_t len)
{
	if (len > SLKD_CERT_MAX)
		return NULL;
	return pair_load_cert(pem, len);
}

static X509 *x509_from_node(plist_t dict, const char *key)
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
 * the label libimobiledevice's GnuTLS path insists on (notes 4.5). */
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

static bool buid_paired(const struct slkd_device *d, const char *buid)
{
	if (!buid || !*buid)
		return false;
	for (size_t i = 0; i < d->npair; i++)
		if (strcmp(d->pair[i].system_buid, buid) == 0)
			return true;
	return false;
}

static void remove_pairing(struct slkd_device *d, size_t i)
{
	pairing_clear(&d->pair[i]);
	memmove(&d->pair[i], &d->pair[i + 1], (d->npair - i - 1) * sizeof(d->pair[0]));
	d->npair--;
	memset(&d->pair[d->npair], 0, sizeof(d->pair[0]));
}

/* Adopts root/host/device. Replaces a pairing with the same HostID; evicts
 * the oldest when full. */
static struct slkd_pairing *add_pairing(struct slkd_device *d, const char *host_id,
					const char *buid, X509 *root, X509 *host, X509 *device)
{
	struct slkd_pairing *p;

	for (size_t i = 0; i < d->npair; i++) {
		if (strcmp(d->pair[i].host_id, host_id) == 0) {
			remove_pairing(d, i);
			break;
		}
	}
	if (d->npair == SLKD_MAX_PAIRINGS) {
		size_t old = 0;
		for (size_t i = 1; i < d->npair; i++)
			if (d->pair[i].seq < d->pair[old].seq)
				old = i;
		remove_pairing(d, old);
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

static int state_save(struct slkd_device *d)
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
		if (pair_write_file_atomic(dir, slash ? slash + 1 : d->state_path, xml, xlen, false, NULL))
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
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf;
	size_t off = 0;

	if (fd < 0)
		return errno == ENOENT ? LP_ENOENT : lp_err_from_errno(errno);
	if (fstat(fd, &st) != 0 || st.st_size < 0 || (uint64_t)st.st_size > SLKD_STATE_MAX) {
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
			X509 *r = x509_from_node(pd, "RootCertificate");
			X509 *h = x509_from_node(pd, "HostCertificate");
			X509 *dv = x509_from_node(pd, "DeviceCertificate");
			plist_t eb = plist_dict_get_item(pd, "EscrowBag");
			struct slkd_pairing *p;

			if (!hid || !*hid || strlen(hid) >= SLKD_ID_MAX || !r || !h || !dv) {
				X509_free(r);
				X509_free(h);
				X509_free(dv);
				continue;
			}
			p = add_pairing(d, hid, buid, r, h, dv);
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
			state_save(d);
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
	d->dialog = SLKD_DIALOG_TRUSTED;
	lp_logf(d->log, LP_LOG_INFO, "simdev: user tapped Trust");
	return true;
}

/* --------------------------------------------------------------------------
 * Values (GetValue)
 */

/* Domain-less keys and whether they are readable without a session. */
static const struct {
	const char *key;
	bool pub;
} vals[] = {
    {"UniqueDeviceID", true},	  {"ProductType", true},
    {"ProductVersion", true},	  {"ProductName", true},
    {"BuildVersion", true},	  {"DeviceClass", true},
    {"DeviceName", true},	  {"DeviceColor", true},
    {"HardwareModel", true},	  {"CPUArchitecture", true},
    {"WiFiAddress", true},	  {"DevicePublicKey", true},
    {"SerialNumber", false},	  {"UniqueChipID", false},
    {"ActivationState", false},	  {"TimeIntervalSince1970", false},
    {"BluetoothAddress", false},  {"ModelNumber", false},
    {"RegionInfo", false},	  {"HardwarePlatform", false},
    {"PasswordProtected", false}, {"ChipID", false},
    {"FirmwareVersion", false},	  {"TimeZone", false},
};

static int val_index(const char *key)
{
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		if (strcmp(vals[i].key, key) == 0)
			return (int)i;
	return -1;
}

static plist_t val_make(const struct slkd_device *d, const char *key, uint64_t now)
{
	const struct slkd_identity *id = &d->id;

	if (!strcmp(key, "UniqueDeviceID"))
		return plist_new_string(id->udid);
	if (!strcmp(key, "ProductType"))
		return plist_new_string(PRODUCT_TYPE);
	if (!strcmp(key, "ProductVersion"))
		return plist_new_string(PRODUCT_VERSION);
	if (!strcmp(key, "ProductName"))
		return plist_new_string("iPhone OS");
	if (!strcmp(key, "BuildVersion"))
		return plist_new_string(BUILD_VERSION);
	if (!strcmp(key, "DeviceClass"))
		return plist_new_string("iPhone");
	if (!strcmp(key, "DeviceName"))
		return plist_new_string(id->name);
	if (!strcmp(key, "DeviceColor"))
		return plist_new_string("1");
	if (!strcmp(key, "HardwareModel"))
		return plist_new_string("D221AP");
	if (!strcmp(key, "CPUArchitecture"))
		return plist_new_string("arm64");
	if (!strcmp(key, "WiFiAddress"))
		return plist_new_string(id->wifi);
	if (!strcmp(key, "DevicePublicKey"))
		return plist_new_data(d->pubkey_pem, d->pubkey_pem_len);
	if (!strcmp(key, "SerialNumber"))
		return plist_new_string(id->serial);
	if (!strcmp(key, "UniqueChipID"))
		return plist_new_uint(id->ecid);
	if (!strcmp(key, "ActivationState"))
		return plist_new_string("Activated");
	if (!strcmp(key, "TimeIntervalSince1970"))
		return plist_new_real((double)lp_clock_wall(d->clock, now) / 1e9);
	if (!strcmp(key, "BluetoothAddress"))
		return plist_new_string(id->bt);
	if (!strcmp(key, "ModelNumber"))
		return plist_new_string("MQ8L2");
	if (!strcmp(key, "RegionInfo"))
		return plist_new_string("LL/A");
	if (!strcmp(key, "HardwarePlatform"))
		return plist_new_string("t8015");
	if (!strcmp(key, "PasswordProtected"))
		return plist_new_bool(d->pol.locked);
	if (!strcmp(key, "ChipID"))
		return plist_new_uint(0x8015);
	if (!strcmp(key, "FirmwareVersion"))
		return plist_new_string("iBoot-8422.142.2");
	if (!strcmp(key, "TimeZone"))
		return plist_new_string("Europe/Berlin");
	return NULL;
}

static plist_t domain_make(const struct slkd_device *d, const char *domain)
{
	plist_t v = plist_new_dict();

	if (!strcmp(domain, "com.apple.mobile.battery")) {
		plist_dict_set_item(v, "BatteryCurrentCapacity", plist_new_uint(87));
		plist_dict_set_item(v, "BatteryIsCharging", plist_new_bool(1));
		plist_dict_set_item(v, "ExternalChargeCapable", plist_new_bool(1));
		plist_dict_set_item(v, "ExternalConnected", plist_new_bool(1));
		plist_dict_set_item(v, "FullyCharged", plist_new_bool(0));
		plist_dict_set_item(v, "GasGaugeCapability", plist_new_bool(1));
		plist_dict_set_item(v, "HasBattery", plist_new_bool(1));
	} else if (!strcmp(domain, "com.apple.disk_usage")) {
		plist_dict_set_item(v, "TotalDiskCapacity", plist_new_uint(64000000000ull));
		plist_dict_set_item(v, "TotalDataCapacity", plist_new_uint(52000000000ull));
		plist_dict_set_item(v, "TotalDataAvailable", plist_new_uint(21000000000ull));
	} else if (!strcmp(domain, "com.apple.international")) {
		plist_dict_set_item(v, "Language", plist_new_string("en"));
		plist_dict_set_item(v, "Locale", plist_new_string("en_US"));
	} else if (!strcmp(domain, "com.apple.security.mac.amfi")) {
		plist_dict_set_item(v, "DeveloperModeStatus", plist_new_bool(0));
	} else if (!strcmp(domain, "com.apple.mobile.wireless_lockdown")) {
		plist_dict_set_item(v, "EnableWifiConnections", plist_new_bool(0));
	} else {
		plist_free(v);
		return NULL;
	}
	(void)d;
	return v;
}

/* --------------------------------------------------------------------------
 * Connections
 */

static struct slkd_conn *conn_find(struct slkd *l, uint32_t id)
{
	for (size_t i = 0; i < MUX_MAX_CONNS; i++)
		if (l->conn[i].used && l->conn[i].id == id)
			return &l->conn[i];
	return NULL;
}

static void conn_release(struct slkd_conn *c)
{
	lp_tls_free(c->tls);
	free(c->in);
	for (size_t i = 0; i < c->nobserve; i++)
		free(c->observe[i]);
	memset(c, 0, sizeof(*c));
}

static void conn_kill(struct slkd *l, struct slkd_conn *c, const char *why)
{
	if (!c->dead)
		lp_logf(l->d->log, LP_LOG_DEBUG, "simdev: lockdownd closes conn %u: %s", c->id,
			why);
	c->dead = true;
}

/* Close connections marked dead. Called at the end of every entry point. */
static void sweep(struct slkd *l)
{
	for (size_t i = 0; i < MUX_MAX_CONNS; i++) {
		struct slkd_conn *c = &l->conn[i];
		uint32_t id = c->id;
		bool rst = !c->gone;

		if (!c->used || !c->dead)
			continue;
		/* free first: mux_close may call back into slkd_closed */
		conn_release(c);
		if (rst)
			mux_close(l->mux, id);
	}
}

static void raw_send(struct slkd *l, struct slkd_conn *c, const uint8_t *buf, size_t len)
{
	int rc;

	if (c->dead || len == 0)
		return;
	rc = mux_send(l->mux, c->id, buf, len);
	if (rc)
		conn_kill(l, c, lp_strerror(rc));
}

static void tls_flush(struct slkd *l, struct slkd_conn *c)
{
	for (int guard = 0; c->tls && guard < 64; guard++) {
		uint8_t *out = NULL;
		size_t n = 0;

		if (lp_tls_take(c->tls, &out, &n) != 0 || n == 0) {
			free(out);
			return;
		}
		raw_send(l, c, out, n);
		free(out);
	}
}

static void send_msg(struct slkd *l, struct slkd_conn *c, plist_t msg)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	rc = lkd_frame_encode(msg, &buf, &len);
	if (rc) {
		conn_kill(l, c, "reply encoding failed");
		return;
	}
	if (c->tls && c->st == ST_TLS) {
		rc = lp_tls_write(c->tls, buf, len, NULL);
		if (rc)
			conn_kill(l, c, "TLS write failed");
		else
			tls_flush(l, c);
	} else {
		raw_send(l, c, buf, len);
	}
	free(buf);
}

static int in_append(struct slkd_conn *c, const uint8_t *buf, size_t len)
{
	if (len > SLKD_IN_MAX - c->in_len)
		return LP_ETOOBIG;
	if (c->in_len + len > c->in_cap) {
		size_t ncap = c->in_cap ? c->in_cap : 1024;
		uint8_t *nb;

		while (ncap < c->in_len + len)
			ncap *= 2;
		nb = realloc(c->in, ncap);
		if (!nb)
			return LP_ENOMEM;
		c->in = nb;
		c->in_cap = ncap;
	}
	memcpy(c->in + c->in_len, buf, len);
	c->in_len += len;
	return 0;
}

static void in_consume(struct slkd_conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
}

/* --------------------------------------------------------------------------
 * Replies
 */

static plist_t reply_new(const char *req)
{
	plist_t r = plist_new_dict();

	if (req)
		plist_dict_set_item(r, "Request", plist_new_string(req));
	return r;
}

static plist_t reply_ok(const char *req)
{
	plist_t r = reply_new(req);

	plist_dict_set_item(r, "Result", plist_new_string("Success"));
	return r;
}

static void send_error(struct slkd *l, struct slkd_conn *c, const char *req, int err)
{
	plist_t r = reply_new(req);
	const char *name = lp_lockdown_error_name(err);

	plist_dict_set_item(r, "Error", plist_new_string(name ? name : "InvalidResponse"));
	send_msg(l, c, r);
	plist_free(r);
}

static bool in_session(const struct slkd_conn *c) { return c->session && c->st == ST_TLS; }

static void handle_get_value(struct slkd *l, struct slkd_conn *c, plist_t msg)
{
	const char *key = lkd_dict_str(msg, "Key");
	const char *domain = lkd_dict_str(msg, "Domain");
	bool sess = in_session(c);
	plist_t r, v = NULL;
	int err = 0;

	if (domain) {
		plist_t all;

		if (!sess) {
			err = LP_ELKD_GET_PROHIBITED;
		} else if (!(all = domain_make(l->d, domain))) {
			err = LP_ELKD_MISSING_VALUE;
		} else if (key) {
			plist_t n = plist_dict_get_item(all, key);
			if (n)
				v = plist_copy(n);
			else
				err = LP_ELKD_MISSING_VALUE;
			plist_free(all);
		} else {
			v = all;
		}
	} else if (key) {
		int i = val_index(key);

		if (i < 0)
			err = LP_ELKD_MISSING_VALUE;
		else if (!vals[i].pub && !sess)
			err = LP_ELKD_GET_PROHIBITED;
		else
			v = val_make(l->d, key, l->now);
	} else {
		v = plist_new_dict();
		for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
			if (vals[i].pub || sess)
				plist_dict_set_item(v, vals[i].key,
						    val_make(l->d, vals[i].key, l->now));
	}
	r = reply_new("GetValue");
	if (key)
		plist_dict_set_item(r, "Key", plist_new_string(key));
	if (domain)
		plist_dict_set_item(r, "Domain", plist_new_string(domain));
	if (err) {
		plist_dict_set_item(r, "Error", plist_new_string(lp_lockdown_error_name(err)));
	} else {
		plist_dict_set_item(r, "Value", v);
		plist_dict_set_item(r, "Result", plist_new_string("Success"));
	}
	send_msg(l, c, r);
	plist_free(r);
}

static void handle_set_value(struct slkd *l, struct slkd_conn *c, plist_t msg)
{
	const char *key = lkd_dict_str(msg, "Key");
	const char *domain = lkd_dict_str(msg, "Domain");
	plist_t val = plist_dict_get_item(msg, "Value");

	if (!key)
		return send_error(l, c, "SetValue", LP_ELKD_MISSING_KEY);
	if (!val)
		return send_error(l, c, "SetValue", LP_ELKD_MISSING_VALUE);
	/* usbmuxd's preflight sets this without a session (notes 4.8) */
	if (!domain && !strcmp(key, "UntrustedHostBUID") &&
	    plist_get_node_type(val) == PLIST_STRING) {
		const char *s = plist_get_string_ptr(val, NULL);

		snprintf(l->d->untrusted_buid, sizeof(l->d->untrusted_buid), "%s", s ? s : "");
		plist_t r = reply_ok("SetValue");
		send_msg(l, c, r);
		plist_free(r);
		return;
	}
	send_error(l, c, "SetValue", LP_ELKD_SET_PROHIBITED);
}

/* Validate a host's PairRecord against this device. Returns 0 and the three
 * certificates (owned), or an LP_ELKD_* code. */
static int check_record(struct slkd *l, plist_t rec, const char **host_id, const char **buid,
			X509 **root, X509 **host, X509 **dev)
{
	EVP_PKEY *rk;

	*root = *host = *dev = NULL;
	if (!rec || plist_get_node_type(rec) != PLIST_DICT)
		return LP_ELKD_MISSING_PAIR_RECORD;
	*host_id = lkd_dict_str(rec, "HostID");
	*buid = lkd_dict_str(rec, "SystemBUID");
	if (!*host_id || !**host_id)
		return LP_ELKD_MISSING_HOST_ID;
	if (strlen(*host_id) >= SLKD_ID_MAX || (*buid && strlen(*buid) >= SLKD_ID_MAX))
		return LP_ELKD_INVALID_PAIR_RECORD;
	*root = x509_from_node(rec, "RootCertificate");
	*host = x509_from_node(rec, "HostCertificate");
	*dev = x509_from_node(rec, "DeviceCertificate");
	if (!*root || !*host || !*dev)
		goto bad;
	rk = X509_get0_pubkey(*root);
	/* the device certificate must carry our key (the host read it with
	 * GetValue DevicePublicKey) and, like the host certificate, be signed
	 * by the root; OpenSSL's chain builder is useless here (empty DNs) */
	if (!rk || EVP_PKEY_eq(X509_get0_pubkey(*dev), l->d->key) != 1 ||
	    X509_verify(*host, rk) != 1 || X509_verify(*dev, rk) != 1)
		goto bad;
	return 0;
bad:
	ERR_clear_error();
	X509_free(*root);
	X509_free(*host);
	X509_free(*dev);
	*root = *host = *dev = NULL;
	return LP_ELKD_INVALID_PAIR_RECORD;
}

static size_t notify_all(struct slkd *l, const char *name);

static void handle_pair(struct slkd *l, struct slkd_conn *c, plist_t msg)
{
	struct slkd_device *d = l->d;
	const char *host_id = NULL, *buid = NULL;
	X509 *root, *host, *dev;
	struct slkd_pairing *p;
	bool known;
	int err;
	plist_t r;

	d->n.pair_requests++;
	err = check_record(l, plist_dict_get_item(msg, "PairRecord"), &host_id, &buid, &root, &host,
			   &dev);
	if (err)
		return send_error(l, c, "Pair", err);
	if (d->pol.locked) {
		err = LP_ELKD_PASSWORD_PROTECTED;
		goto fail;
	}
	known = slkd_find_pairing(d, host_id) || buid_paired(d, buid);
	if (!known) {
		if (slkd_dialog_update(d, l->now))
			notify_all(l, SLKD_NOTE_REQUEST_PAIR);
		switch (d->dialog) {
		case SLKD_DIALOG_NONE:
			d->dialog = SLKD_DIALOG_SHOWN;
			d->dialog_at = l->now;
			d->n.dialogs_shown++;
			lp_logf(d->log, LP_LOG_INFO, "simdev: Trust dialog shown");
			err = LP_ELKD_PAIRING_DIALOG_PENDING;
			goto fail;
		case SLKD_DIALOG_SHOWN:
			err = LP_ELKD_PAIRING_DIALOG_PENDING;
			goto fail;
		case SLKD_DIALOG_DENIED:
			d->dialog = SLKD_DIALOG_NONE;
			err = LP_ELKD_USER_DENIED_PAIRING;
			goto fail;
		case SLKD_DIALOG_TRUSTED:
			d->dialog = SLKD_DIALOG_NONE;
			d->trusted_pair_done = true;
			d->trusted_pair_at = l->now;
			break;
		}
	}
	p = add_pairing(d, host_id, buid, root, host, dev);
	p->this_process = true;
	for (size_t i = 0; i < sizeof(p->escrow); i++)
		p->escrow[i] = (uint8_t)lp_rand_next(&d->rand);
	d->n.pairs_ok++;
	state_save(d);
	lp_logf(d->log, LP_LOG_INFO, "simdev: paired with host %s", p->host_id);
	r = reply_ok("Pair");
	plist_dict_set_item(r, "EscrowBag", plist_new_data((char *)p->escrow, sizeof(p->escrow)));
	send_msg(l, c, r);
	plist_free(r);
	return;
fail:
	X509_free(root);
	X509_free(host);
	X509_free(dev);
	send_error(l, c, "Pair", err);
}

static const char *record_host_id(plist_t msg)
{
	plist_t rec = plist_dict_get_item(msg, "PairRecord");
	const char *h = lkd_dict_str(rec, "HostID");

	return h ? h : lkd_dict_str(msg, "HostID");
}

static void handle_validate(struct slkd *l, struct slkd_conn *c, plist_t msg)
{
	const char *hid = record_host_id(msg);
	plist_t r;

	if (!hid)
		return send_error(l, c, "ValidatePair", LP_ELKD_MISSING_HOST_ID);
	if (!slkd_find_pairing(l->d, hid))
		return send_error(l, c, "ValidatePair", LP_ELKD_INVALID_HOST_ID);
	r = reply_ok("ValidatePair");
	send_msg(l, c, r);
	plist_free(r);
}

static void handle_unpair(struct slkd *l, struct slkd_conn *c, plist_t msg)
{
	struct slkd_device *d = l->d;
	const char *hid = record_host_id(msg);
	plist_t r;

	if (!hid)
		return send_error(l, c, "Unpair", LP_ELKD_MISSING_HOST_ID);
	for (size_t i = 0; i < d->npair; i++) {
		if (strcmp(d->pair[i].host_id, hid) == 0) {
			lp_logf(d->log, LP_LOG_INFO, "simdev: unpaired host %s",
				d->pair[i].host_id);
			remove_pairing(d, i);
			state_save(d);
			r = reply_ok("Unpair");
			send_msg(l, c, r);
			plist_free(r);
			return;
		}
	}
	send_error(l, c, "Unpair", LP_ELKD_INVALID_HOST_ID);
}

static void handle_start_session(struct slkd *l, struct slkd_conn *c, plist_t msg)
{
	struct slkd_device *d = l->d;
	const char *hid = lkd_dict_str(msg, "HostID");
	const struct slkd_pairing *p;
	struct lp_errinfo e = {0};
	plist_t r;

	if (c->session)
		return send_error(l, c, "StartSession", LP_ELKD_SESSION_ACTIVE);
	/* libimobiledevice sends no HostID when it has no pair record;
	 * usbmuxd's preflight only raises the Trust dialog if that gets
	 * InvalidHostID ("not paired with this host"), as it does on phones */
	if (!hid)
		return send_error(l, c, "StartSession", LP_ELKD_INVALID_HOST_ID);
	p = slkd_find_pairing(d, hid);
	if (!p || (d->pol.forget_hosts && !p->this_process))
		return send_error(l, c, "StartSession", LP_ELKD_INVALID_HOST_ID);
	rand_uuid(&d->rand, c->session_id);
	snprintf(c->host_id, sizeof(c->host_id), "%s", p->host_id);
	r = reply_ok("StartSession");
	plist_dict_set_item(r, "SessionID", plist_new_string(c->session_id));
	plist_dict_set_item(r, "EnableSessionSSL", plist_new_bool(1));
	send_msg(l, c, r);
	plist_free(r);
	if (c->dead)
		return;
	/* the device serves the DeviceCertificate from the record with its own
	 * key (notes 4.9) and asks for the host's certificate */
	c->tls = lp_tls_new_server(p->device, d->key, &e);
	if (!c->tls) {
		lp_logf(d->log, LP_LOG_WARN, "simdev: TLS server: %s", e.msg);
		conn_kill(l, c, "no TLS engine");
		return;
	}
	c->st = ST_TLS_HS;
	c->verify_peer = true;
	c->session = true;
	d->n.sessions_started++;
}

static void handle_stop_session(struct slkd *l, struct slkd_conn *c, plist_t msg)
{
	const char *sid = lkd_dict_str(msg, "SessionID");
	plist_t r;

	if (!sid)
		return send_error(l, c, "StopSession", LP_ELKD_MISSING_SESSION_ID);
	if (!c->session)
		return send_error(l, c, "StopSession", LP_ELKD_SESSION_INACTIVE);
	if (strcmp(sid, c->session_id) != 0)
		return send_error(l, c, "StopSession", LP_ELKD_INVALID_SESSION_ID);
	r = reply_ok("StopSession");
	send_msg(l, c, r);
	plist_free(r);
	c->session = false;
	c->session_id[0] = '\0';
	if (c->tls && c->st == ST_TLS) {
		/* our close_notify goes out now; the host's (if it sends one)
		 * is skipped in CLOSING, then the stream is plaintext again */
		lp_tls_shutdown(c->tls);
		tls_flush(l, c);
		c->st = ST_CLOSING;
		c->in_len = 0; /* anything after StopSession inside TLS is dropped */
	}
}

static struct slkd_service *service_add(struct slkd *l, enum slkd_kind kind, const char *hid)
{
	struct slkd_service *s = NULL;

	for (size_t i = 0; i < SLKD_MAX_SERVICES && !s; i++)
		if (!l->svc[i].used)
			s = &l->svc[i];
	if (!s) {
		s = &l->svc[0];
		for (size_t i = 1; i < SLKD_MAX_SERVICES; i++)
			if (l->svc[i].seq < s->seq)
				s = &l->svc[i];
		mux_unlisten(l->mux, s->port);
		s->used = false;
	}
	for (int tries = 0; tries < 64; tries++) {
		uint16_t port =
		    (uint16_t)(SLKD_SERVICE_PORT_BASE + lp_rand_next(&l->d->rand) % 16000);
		bool clash = port == MUX_PORT_LOCKDOWN;

		for (size_t i = 0; i < SLKD_MAX_SERVICES; i++)
			if (l->svc[i].used && l->svc[i].port == port)
				clash = true;
		if (clash)
			continue;
		if (mux_listen(l->mux, port) != 0)
			return NULL;
		memset(s, 0, sizeof(*s));
		s->used = true;
		s->port = port;
		s->kind = kind;
		s->seq = ++l->svc_seq;
		snprintf(s->host_id, sizeof(s->host_id), "%s", hid ? hid : "");
		return s;
	}
	return NULL;
}

static void handle_start_service(struct slkd *l, struct slkd_conn *c, plist_t msg)
{
	const char *name = lkd_dict_str(msg, "Service");
	enum slkd_kind kind;
	bool ssl;
	struct slkd_service *s;
	plist_t r;

	if (!name)
		return send_error(l, c, "StartService", LP_ELKD_MISSING_SERVICE);
	if (!strcmp(name, "com.apple.mobile.insecure_notification_proxy")) {
		kind = SLKD_NOTIFY;
		ssl = false;
	} else if (!strcmp(name, "com.apple.mobilebackup2")) {
		kind = SLKD_BACKUP;
		ssl = true;
	} else {
		return send_error(l, c, "StartService", LP_ELKD_INVALID_SERVICE);
	}
	/* insecure_notification_proxy is what usbmuxd's preflight starts before
	 * the host is trusted (notes 4.3); everything else needs a session */
	if (kind != SLKD_NOTIFY && !in_session(c))
		return send_error(l, c, "StartService", LP_ELKD_SESSION_INACTIVE);
	s = service_add(l, kind, c->host_id);
	if (!s)
		return send_error(l, c, "StartService", LP_ELKD_SERVICE_LIMIT);
	r = reply_ok("StartService");
	plist_dict_set_item(r, "Service", plist_new_string(name));
	plist_dict_set_item(r, "Port", plist_new_uint(s->port));
	if (ssl)
		plist_dict_set_item(r, "EnableServiceSSL", plist_new_bool(1));
	send_msg(l, c, r);
	plist_free(r);
}

static void handle_lockdown(struct slkd *l, struct slkd_conn *c, plist_t msg)
{
	const char *req = lkd_dict_str(msg, "Request");
	char safe[64];
	plist_t r;

	l->d->n.requests++;
	if (!req)
		return send_error(l, c, NULL, LP_ELKD_MISSING_KEY);
	lp_sanitize_str(safe, sizeof(safe), req);
	lp_logf(l->d->log, LP_LOG_DEBUG, "simdev: lockdownd conn %u: %s%s", c->id, safe,
		in_session(c) ? " (in session)" : "");
	if (!strcmp(req, "QueryType")) {
		r = reply_ok(req);
		plist_dict_set_item(r, "Type", plist_new_string("com.apple.mobile.lockdown"));
		send_msg(l, c, r);
		plist_free(r);
	} else if (!strcmp(req, "GetValue")) {
		handle_get_value(l, c, msg);
	} else if (!strcmp(req, "SetValue")) {
		handle_set_value(l, c, msg);
	} else if (!strcmp(req, "RemoveValue")) {
		send_error(l, c, req, LP_ELKD_REMOVE_PROHIBITED);
	} else if (!strcmp(req, "Pair")) {
		handle_pair(l, c, msg);
	} else if (!strcmp(req, "ValidatePair")) {
		handle_validate(l, c, msg);
	} else if (!strcmp(req, "Unpair")) {
		handle_unpair(l, c, msg);
	} else if (!strcmp(req, "StartSession")) {
		handle_start_session(l, c, msg);
	} else if (!strcmp(req, "StopSession")) {
		handle_stop_session(l, c, msg);
	} else if (!strcmp(req, "StartService")) {
		handle_start_service(l, c, msg);
	} else if (!strcmp(req, "Goodbye")) {
		r = reply_ok(req);
		send_msg(l, c, r);
		plist_free(r);
	} else {
		send_error(l, c, req, LP_ELKD_INVALID_RESPONSE);
	}
}

/* insecure_notification_proxy: {Command: ObserveNotification/PostNotification
 * /Shutdown, Name}; we send {Command: RelayNotification, Name} and answer
 * Shutdown with ProxyDeath (libimobiledevice notification_proxy.c). */
static void handle_notify(struct slkd *l, struct slkd_conn *c, plist_t msg)
{
	const char *cmd = lkd_dict_str(msg, "Command");
	const char *name = lkd_dict_str(msg, "Name");

	if (!cmd)
		return;
	if (!strcmp(cmd, "ObserveNotification") && name) {
		if (c->nobserve == SLKD_NOTIFY_NAMES || strlen(name) >= SLKD_NOTIFY_NAME_MAX)
			return;
		for (size_t i = 0; i < c->nobserve; i++)
			if (!strcmp(c->observe[i], name))
				return;
		c->observe[c->nobserve] = strdup(name);
		if (c->observe[c->nobserve])
			c->nobserve++;
	} else if (!strcmp(cmd, "PostNotification") && name &&
		   strlen(name) < SLKD_NOTIFY_NAME_MAX) {
		char copy[SLKD_NOTIFY_NAME_MAX];
		snprintf(copy, sizeof(copy), "%s", name);
		notify_all(l, copy);
	} else if (!strcmp(cmd, "Shutdown")) {
		plist_t r = plist_new_dict();
		plist_dict_set_item(r, "Command", plist_new_string("ProxyDeath"));
		send_msg(l, c, r);
		plist_free(r);
	}
}

/* Split c->in into frames and handle them, until the stream changes layer. */
static void process_frames(struct slkd *l, struct slkd_conn *c)
{
	while (!c->dead && c->in_len >= SLKD_PREFIX) {
		struct lp_rd rd;
		uint32_t n;
		plist_t msg = NULL;
		enum slkd_st before = c->st;

		lp_rd_init(&rd, c->in, c->in_len);
		n = lp_rd_be32(&rd);
		if (n > LKD_MAX_MESSAGE || n == 0) {
			conn_kill(l, c, "bad lockdown length prefix");
			return;
		}
		if (c->in_len - SLKD_PREFIX < n)
			return;
		if (lkd_plist_decode(c->in + SLKD_PREFIX, n, &msg) != 0 ||
		    plist_get_node_type(msg) != PLIST_DICT) {
			plist_free(msg);
			in_consume(c, SLKD_PREFIX + n);
			if (c->kind == SLKD_LOCKDOWN)
				send_error(l, c, NULL, LP_ELKD_INVALID_RESPONSE);
			continue;
		}
		in_consume(c, SLKD_PREFIX + n);
		if (c->kind == SLKD_LOCKDOWN)
			handle_lockdown(l, c, msg);
		else if (c->kind == SLKD_NOTIFY)
			handle_notify(l, c, msg);
		plist_free(msg);
		if (c->st != before)
			return;
	}
}

static bool peer_cert_ok(struct slkd *l, struct slkd_conn *c)
{
	const struct slkd_pairing *p = slkd_find_pairing(l->d, c->host_id);
	X509 *peer = lp_tls_peer_cert(c->tls);
	EVP_PKEY *rk;
	bool ok;

	if (!p || !peer)
		return false;
	if (X509_cmp(peer, p->root) == 0 || X509_cmp(peer, p->host) == 0)
		return true;
	/* libimobiledevice presents the root, others the host certificate;
	 * accept anything the stored root signed (empty DNs: no chain build) */
	rk = X509_get0_pubkey(p->root);
	ok = rk && X509_verify(peer, rk) == 1;
	ERR_clear_error();
	return ok;
}

static void tls_pump(struct slkd *l, struct slkd_conn *c)
{
	struct lp_errinfo e = {0};
	uint8_t buf[16384];
	int rc;

	if (c->st == ST_TLS_HS) {
		rc = lp_tls_handshake(c->tls, &e);
		tls_flush(l, c);
		if (rc == LP_EAGAIN)
			return;
		if (rc) {
			lp_logf(l->d->log, LP_LOG_INFO, "simdev: TLS handshake failed: %s", e.msg);
			conn_kill(l, c, "TLS handshake failed");
			return;
		}
		if (c->verify_peer && !peer_cert_ok(l, c)) {
			l->d->n.tls_rejected++;
			conn_kill(l, c, "host certificate not from this pairing");
			return;
		}
		c->st = ST_TLS;
		l->d->n.tls_sessions++;
		lp_logf(l->d->log, LP_LOG_DEBUG, "simdev: TLS up on conn %u (%s, %s)", c->id,
			lp_tls_version(c->tls), lp_tls_cipher(c->tls));
	}
	while (!c->dead && c->st == ST_TLS) {
		size_t got = 0;

		rc = lp_tls_read(c->tls, buf, sizeof(buf), &got, &e);
		if (rc == LP_EAGAIN)
			break;
		if (rc == LP_ECLOSED) {
			/* host ended TLS without StopSession: plaintext again */
			lp_tls_free(c->tls);
			c->tls = NULL;
			c->st = ST_PLAIN;
			c->session = false;
			c->in_len = 0;
			break;
		}
		if (rc) {
			conn_kill(l, c, "TLS read failed");
			break;
		}
		if (c->kind != SLKD_LOCKDOWN)
			continue; /* backup: the conversation is not simulated */
		if (in_append(c, buf, got)) {
			conn_kill(l, c, "lockdown message too big");
			break;
		}
		process_frames(l, c);
	}
	tls_flush(l, c);
}

/* After StopSession: skip whole TLS records the host still sends (its
 * close_notify); the first non-record byte starts plaintext. A lockdown
 * length prefix never starts with 0x14..0x17 (that would be > 4 MiB). */
static void closing_consume(struct slkd *l, struct slkd_conn *c)
{
	while (c->in_len > 0) {
		struct lp_rd rd;
		uint8_t type;
		uint16_t rlen;

		lp_rd_init(&rd, c->in, c->in_len);
		type = lp_rd_u8(&rd);
		if (type < 0x14 || type > 0x17) {
			lp_tls_free(c->tls);
			c->tls = NULL;
			c->st = ST_PLAIN;
			return;
		}
		lp_rd_skip(&rd, 2);
		rlen = lp_rd_be16(&rd);
		if (!lp_rd_ok(&rd) || c->in_len - 5 < rlen)
			return;
		in_consume(c, 5 + (size_t)rlen);
	}
	(void)l;
}

/* --------------------------------------------------------------------------
 * Entry points
 */

struct slkd *slkd_new(struct slkd_device *d, struct mux *mux)
{
	struct slkd *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->d = d;
	l->mux = mux;
	if (mux_listen(mux, MUX_PORT_LOCKDOWN) != 0) {
		free(l);
		return NULL;
	}
	return l;
}

void slkd_free(struct slkd *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < MUX_MAX_CONNS; i++)
		if (l->conn[i].used)
			conn_release(&l->conn[i]);
	free(l);
}

void slkd_accept(struct slkd *l, uint32_t conn, uint16_t port, uint64_t now)
{
	struct slkd_conn *c = NULL;
	enum slkd_kind kind = SLKD_LOCKDOWN;
	bool known = port == MUX_PORT_LOCKDOWN;

	l->now = now;
	for (size_t i = 0; i < SLKD_MAX_SERVICES && !known; i++) {
		if (l->svc[i].used && l->svc[i].port == port) {
			kind = l->svc[i].kind;
			known = true;
		}
	}
	for (size_t i = 0; i < MUX_MAX_CONNS && !c; i++)
		if (!l->conn[i].used)
			c = &l->conn[i];
	if (!known || !c) {
		mux_close(l->mux, conn);
		return;
	}
	memset(c, 0, sizeof(*c));
	c->used = true;
	c->id = conn;
	c->port = port;
	c->kind = kind;
	c->st = ST_PLAIN;
	for (size_t i = 0; i < SLKD_MAX_SERVICES; i++)
		if (kind == SLKD_BACKUP && l->svc[i].used && l->svc[i].port == port)
			snprintf(c->host_id, sizeof(c->host_id), "%s", l->svc[i].host_id);
}

static void backup_data(struct slkd *l, struct slkd_conn *c, const uint8_t *buf, size_t len)
{
	const struct slkd_pairing *p;
	struct lp_errinfo e = {0};

	/* EnableServiceSSL: the host starts TLS with a ClientHello; anything
	 * else is the (unsimulated) DeviceLink conversation and is dropped */
	if (!c->tls) {
		if (buf[0] != 0x16)
			return;
		p = slkd_find_pairing(l->d, c->host_id);
		if (!p) {
			conn_kill(l, c, "backup: no pairing");
			return;
		}
		c->tls = lp_tls_new_server(p->device, l->d->key, &e);
		if (!c->tls) {
			conn_kill(l, c, "backup: no TLS engine");
			return;
		}
		c->st = ST_TLS_HS;
		c->verify_peer = true;
	}
	if (lp_tls_feed(c->tls, buf, len) != 0) {
		conn_kill(l, c, "TLS feed failed");
		return;
	}
	tls_pump(l, c);
}

void slkd_data(struct slkd *l, uint32_t conn, const uint8_t *buf, size_t len, uint64_t now)
{
	struct slkd_conn *c = conn_find(l, conn);

	l->now = now;
	if (!c || c->dead || len == 0)
		return;
	if (c->kind == SLKD_BACKUP) {
		backup_data(l, c, buf, len);
		sweep(l);
		return;
	}
	switch (c->st) {
	case ST_TLS_HS:
	case ST_TLS:
		if (lp_tls_feed(c->tls, buf, len) != 0)
			conn_kill(l, c, "TLS feed failed");
		else
			tls_pump(l, c);
		break;
	case ST_CLOSING:
	case ST_PLAIN:
		if (in_append(c, buf, len)) {
			conn_kill(l, c, "too much unframed input");
			break;
		}
		if (c->st == ST_CLOSING)
			closing_consume(l, c);
		if (c->st != ST_PLAIN)
			break;
		process_frames(l, c);
		if (c->st == ST_TLS_HS && !c->dead) {
			/* bytes after StartSession already belong to TLS */
			if (c->in_len && lp_tls_feed(c->tls, c->in, c->in_len) != 0)
				conn_kill(l, c, "TLS feed failed");
			c->in_len = 0;
			if (!c->dead)
				tls_pump(l, c);
		}
		break;
	}
	sweep(l);
}

void slkd_closed(struct slkd *l, uint32_t conn)
{
	struct slkd_conn *c = conn_find(l, conn);

	if (c)
		conn_release(c);
}

size_t slkd_observers(const struct slkd *l, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < MUX_MAX_CONNS; i++) {
		const struct slkd_conn *c = &l->conn[i];
		if (!c->used || c->dead || c->kind != SLKD_NOTIFY)
			continue;
		for (size_t j = 0; j < c->nobserve; j++)
			if (!strcmp(c->observe[j], name))
				n++;
	}
	return n;
}

static size_t notify_all(struct slkd *l, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < MUX_MAX_CONNS; i++) {
		struct slkd_conn *c = &l->conn[i];
		bool want = false;

		if (!c->used || c->dead || c->kind != SLKD_NOTIFY)
			continue;
		for (size_t j = 0; j < c->nobserve; j++)
			if (!strcmp(c->observe[j], name))
				want = true;
		if (!want)
			continue;
		plist_t m = plist_new_dict();
		plist_dict_set_item(m, "Command", plist_new_string("RelayNotification"));
		plist_dict_set_item(m, "Name", plist_new_string(name));
		send_msg(l, c, m);
		plist_free(m);
		n++;
	}
	l->d->n.notifications_posted += (uint32_t)n;
	return n;
}

size_t slkd_notify(struct slkd *l, const char *name)
{
	size_t n = notify_all(l, name);

	sweep(l);
	return n;
}
