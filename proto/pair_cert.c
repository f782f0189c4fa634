/* pair_cert.c - pairing credentials with OpenSSL 3; see pair_cert.h.
 *
 * Reference: doc/protocol.md 4.5a (DevicePublicKey is PKCS#1 PEM), 4.6
 * (certificate profile), section 0 (empty DNs defeat the chain builder).
 * Private keys leave this file only as PEM in buffers that are wiped on free;
 * intermediate BIOs holding key PEM use the secure-memory BIO.
 */
#include "proto/pair_cert.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "proto/tls.h"

void pair_blob_wipe(struct pair_blob *b)
{
	if (!b)
		return;
	if (b->data) {
		OPENSSL_cleanse(b->data, b->len);
		free(b->data);
	}
	b->data = NULL;
	b->len = 0;
}

void pair_creds_clear(struct pair_creds *c)
{
	if (!c)
		return;
	pair_blob_wipe(&c->root_cert);
	pair_blob_wipe(&c->root_key);
	pair_blob_wipe(&c->host_cert);
	pair_blob_wipe(&c->host_key);
	pair_blob_wipe(&c->device_cert);
}

static EVP_PKEY *rsa_generate(void)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *key = NULL;
	BIGNUM *e = BN_new();

	if (!ctx || !e || !BN_set_word(e, RSA_F4) || EVP_PKEY_keygen_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, PAIR_KEY_BITS) <= 0 ||
	    EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e) <= 0 || EVP_PKEY_keygen(ctx, &key) <= 0)
		key = NULL;
	BN_free(e);
	EVP_PKEY_CTX_free(ctx);
	return key;
}

/* Copy a memory BIO's contents into a NUL-terminated blob. */
static int bio_to_blob(BIO *b, struct pair_blob *out)
{
	char *p = NULL;
	long n = BIO_get_mem_data(b, &p);

	if (n <= 0 || !p)
		return LP_ECRYPTO;
	out->data = malloc((size_t)n + 1);
	if (!out->data)
		return LP_ENOMEM;
	memcpy(out->data, p, (size_t)n);
	out->data[n] = '\0';
	out->len = (size_t)n;
	return 0;
}

static int cert_to_pem(X509 *x, struct pair_blob *out)
{
	BIO *b = BIO_new(BIO_s_mem());
	int r = LP_ECRYPTO;

	if (b && PEM_write_bio_X509(b, x))
		r = bio_to_blob(b, out);
	BIO_free(b);
	return r;
}

static int key_to_pem(EVP_PKEY *k, struct pair_blob *out)
{
	BIO *b = BIO_new(BIO_s_secmem());
	int r = LP_ECRYPTO;

	/* PEM_write_bio_PrivateKey writes unencrypted PKCS#8 "PRIVATE KEY". */
	if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
		r = bio_to_blob(b, out);
	BIO_free(b);
	return r;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!ext)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

enum cert_kind { PAIR_CERT_ROOT, PAIR_CERT_HOST, PAIR_CERT_DEVICE };

/* One certificate for `pub`, signed by `sign_key`; issuer NULL = self. */
static X509 *make_cert(enum cert_kind kind, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *sign_key)
{
	X509 *x = X509_new();

	if (!x)
		return NULL;
	/* X509_new() leaves subject and issuer as empty names: that is the
	 * profile every host uses. */
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), PAIR_CERT_DAYS, 0, NULL) ||
	    !X509_set_pubkey(x, pub))
		goto fail;
	if (kind == PAIR_CERT_ROOT) {
		if (!add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE"))
			goto fail;
	} else {
		if (!add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
		    !add_ext(x, issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment"))
			goto fail;
		if (kind == PAIR_CERT_DEVICE &&
		    !add_ext(x, issuer, NID_subject_key_identifier, "hash"))
			goto fail;
	}
	if (X509_sign(x, sign_key, EVP_sha256()) <= 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

static EVP_PKEY *decode_pubkey(const uint8_t *pem, size_t len, const char *structure)
{
	EVP_PKEY *pk = NULL;
	OSSL_DECODER_CTX *dctx;
	const unsigned char *p = pem;
	size_t left = len;

	dctx = OSSL_DECODER_CTX_new_for_pkey(&pk, "PEM", structure, "RSA",
					     OSSL_KEYMGMT_SELECT_PUBLIC_KEY, NULL, NULL);
	if (!dctx)
		return NULL;
	if (!OSSL_DECODER_from_data(dctx, &p, &left))
		pk = NULL;
	OSSL_DECODER_CTX_free(dctx);
	return pk;
}

EVP_PKEY *pair_load_pubkey(const uint8_t *pem, size_t len)
{
	EVP_PKEY *pk;

	if (!pem || len == 0 || len > PAIR_MAX_PEM)
		return NULL;
	pk = decode_pubkey(pem, len, "type-specific");
	if (!pk)
		pk = decode_pubkey(pem, len, "SubjectPublicKeyInfo");
	ERR_clear_error();
	return pk;
}

X509 *pair_load_cert(const uint8_t *pem, size_t len)
{
	BIO *b;
	X509 *x;

	if (!pem || len == 0 || len > PAIR_MAX_PEM)
		return NULL;
	b = BIO_new_mem_buf(pem, (int)len);
	if (!b)
		return NULL;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	ERR_clear_error();
	return x;
}

/* Never prompt for a pass phrase: encrypted keys are simply unusable. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

EVP_PKEY *pair_load_key(const uint8_t *pem, size_t len)
{
	BIO *b;
	EVP_PKEY *k;

	if (!pem || len == 0 || len > PAIR_MAX_PEM)
		return NULL;
	b = BIO_new_mem_buf(pem, (int)len);
	if (!b)
		return NULL;
	k = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL);
	BIO_free(b);
	ERR_clear_error();
	return k;
}

int pair_cert_signed_by(X509 *cert, X509 *root)
{
	EVP_PKEY *pk;
	int ok;

	if (!cert || !root)
		return 0;
	pk = X509_get0_pubkey(root);
	if (!pk)
		return 0;
	ok = X509_verify(cert, pk) == 1;
	ERR_clear_error();
	return ok;
}

/* --- background key generation ------------------------------------------ */

struct pair_keygen {
	pthread_t th[2];
	bool started[2];
	bool joined;
	bool used;	  /* the keys went into credentials */
	EVP_PKEY *key[2]; /* [0] root, [1] host: written by thread i only */
};

static void *keygen_thread(void *arg)
{
	EVP_PKEY **slot = arg;

	*slot = rsa_generate();
	return NULL;
}

static void keygen_join(struct pair_keygen *kg)
{
	if (kg->joined)
		return;
	for (int i = 0; i < 2; i++)
		if (kg->started[i])
			pthread_join(kg->th[i], NULL);
	kg->joined = true;
}

int pair_keygen_start(struct pair_keygen **out, struct lp_errinfo *e)
{
	struct pair_keygen *kg = calloc(1, sizeof(*kg));

	if (!kg)
		return lp_err_set(e, LP_ENOMEM, "key generation state");
	for (int i = 0; i < 2; i++) {
		if (pthread_create(&kg->th[i], NULL, keygen_thread, &kg->key[i]) != 0) {
			pair_keygen_free(kg);
			return lp_err_set(e, LP_ECRYPTO, "could not start a key-generation thread");
		}
		kg->started[i] = true;
	}
	*out = kg;
	return 0;
}

void pair_keygen_free(struct pair_keygen *kg)
{
	if (!kg)
		return;
	keygen_join(kg);
	EVP_PKEY_free(kg->key[0]);
	EVP_PKEY_free(kg->key[1]);
	free(kg);
}

/* Take the two keys (owned by the caller from now on). */
static int keygen_take(struct pair_keygen *kg, EVP_PKEY **root, EVP_PKEY **host)
{
	keygen_join(kg);
	*root = kg->key[0];
	*host = kg->key[1];
	kg->key[0] = kg->key[1] = NULL;
	return *root && *host ? 0 : LP_ECRYPTO;
}

static int creds_generate(struct pair_keygen *kg, EVP_PKEY *given_root, EVP_PKEY *given_host,
			  const uint8_t *device_pubkey_pem, size_t len, struct pair_creds *out,
			  struct lp_errinfo *e)
{
	struct pair_creds c = {0};
	EVP_PKEY *dev = NULL, *root_key = NULL, *host_key = NULL;
	X509 *root = NULL, *host = NULL, *device = NULL;
	int r;

	if (!out || (!device_pubkey_pem && len))
		return lp_err_set(e, LP_EINVAL, "pair_creds_generate: bad argument");
	if (len > PAIR_MAX_PEM)
		return lp_err_set(e, LP_ETOOBIG, "DevicePublicKey is %zu bytes (cap %u)", len,
				  PAIR_MAX_PEM);
	ERR_clear_error();
	dev = pair_load_pubkey(device_pubkey_pem, len);
	if (!dev || EVP_PKEY_get_base_id(dev) != EVP_PKEY_RSA) {
		r = lp_err_set(e, LP_EBADMSG, "DevicePublicKey is not an RSA public key in PEM");
		goto out;
	}
	if (given_root && given_host) {
		if (EVP_PKEY_up_ref(given_root) == 1)
			root_key = given_root;
		if (EVP_PKEY_up_ref(given_host) == 1)
			host_key = given_host;
	} else if (kg) {
		if (kg->used) {
			r = lp_err_set(e, LP_EINVAL, "these pairing keys were already used");
			goto out;
		}
		kg->used = true;
		keygen_take(kg, &root_key, &host_key);
	} else {
		root_key = rsa_generate();
		host_key = rsa_generate();
	}
	if (!root_key || !host_key) {
		r = lp_openssl_err(e, LP_ECRYPTO, "RSA key generation");
		goto out;
	}
	root = make_cert(PAIR_CERT_ROOT, root_key, NULL, root_key);
	host = root ? make_cert(PAIR_CERT_HOST, host_key, root, root_key) : NULL;
	device = host ? make_cert(PAIR_CERT_DEVICE, dev, root, root_key) : NULL;
	if (!device) {
		r = lp_openssl_err(e, LP_ECRYPTO, "certificate generation");
		goto out;
	}
	if ((r = cert_to_pem(root, &c.root_cert)) || (r = key_to_pem(root_key, &c.root_key)) ||
	    (r = cert_to_pem(host, &c.host_cert)) || (r = key_to_pem(host_key, &c.host_key)) ||
	    (r = cert_to_pem(device, &c.device_cert))) {
		lp_openssl_err(e, r, "PEM encoding");
		goto out;
	}
	*out = c;
	memset(&c, 0, sizeof(c));
	r = 0;
out:
	pair_creds_clear(&c);
	X509_free(root);
	X509_free(host);
	X509_free(device);
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(host_key);
	EVP_PKEY_free(dev);
	return r;
}

int pair_creds_generate(const uint8_t *device_pubkey_pem, size_t len, struct pair_creds *out,
			struct lp_errinfo *e)
{
	struct pair_keygen *kg = NULL;
	int r;

	/* two threads when we can have them; one after the other otherwise */
	if (pair_keygen_start(&kg, NULL))
		kg = NULL;
	r = creds_generate(kg, NULL, NULL, device_pubkey_pem, len, out, e);
	pair_keygen_free(kg);
	return r;
}

int pair_creds_generate_with(struct pair_keygen *kg, const uint8_t *device_pubkey_pem, size_t len,
			     struct pair_creds *out, struct lp_errinfo *e)
{
	if (!kg)
		return lp_err_set(e, LP_EINVAL, "pair_creds_generate_with: no key generation");
	return creds_generate(kg, NULL, NULL, device_pubkey_pem, len, out, e);
}

int pair_device_key_generate(EVP_PKEY **key, uint8_t **pubkey_pkcs1_pem, size_t *len)
{
	EVP_PKEY *k;
	OSSL_ENCODER_CTX *ectx;
	unsigned char *data = NULL;
	size_t dlen = 0;
	uint8_t *pem;

	if (!key || !pubkey_pkcs1_pem || !len)
		return LP_EINVAL;
	k = rsa_generate();
	if (!k)
		goto fail;
	/* "type-specific" is PKCS#1 RSAPublicKey: "-----BEGIN RSA PUBLIC KEY-----". */
	ectx = OSSL_ENCODER_CTX_new_for_pkey(k, OSSL_KEYMGMT_SELECT_PUBLIC_KEY, "PEM",
					     "type-specific", NULL);
	if (!ectx || !OSSL_ENCODER_to_data(ectx, &data, &dlen)) {
		OSSL_ENCODER_CTX_free(ectx);
		goto fail;
	}
	OSSL_ENCODER_CTX_free(ectx);
	pem = malloc(dlen + 1);
	if (!pem) {
		OPENSSL_free(data);
		EVP_PKEY_free(k);
		return LP_ENOMEM;
	}
	memcpy(pem, data, dlen);
	pem[dlen] = '\0';
	OPENSSL_free(data);
	*key = k;
	*pubkey_pkcs1_pem = pem;
	*len = dlen;
	return 0;
fail:
	EVP_PKEY_free(k);
	ERR_clear_error();
	return LP_ECRYPTO;
}

int pair_new_uuid(char out[37])
{
	static const char hex[] = "0123456789ABCDEF";
	uint8_t b[16];
	size_t o = 0;

	if (RAND_bytes(b, sizeof(b)) != 1) {
		ERR_clear_error();
		return LP_ECRYPTO;
	}
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	for (size_t i = 0; i < sizeof(b); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
	return 0;
}

int pair_creds_generate_keys(EVP_PKEY *root_key, EVP_PKEY *host_key,
			     const uint8_t *device_pubkey_pem, size_t len, struct pair_creds *out,
			     struct lp_errinfo *e)
{
	if (!root_key || !host_key)
		return lp_err_set(e, LP_EINVAL, "pair_creds_generate_keys: no keys");
	return creds_generate(NULL, root_key, host_key, device_pubkey_pem, len, out, e);
}
