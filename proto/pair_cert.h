/* pair_cert.h - pairing credentials (root, host and device certificates).
 *
 * Pairing a host with a device means minting a private CA (root), a host
 * certificate and a certificate for the device's own public key, all signed
 * by that root (doc/protocol.md 4.6). The profile used here is the "safe
 * choice" of 4.6: RSA-2048 e=65537, X.509 v3, serial 1, empty subject and
 * issuer, 10-year validity, SHA-256; root BasicConstraints critical CA:TRUE;
 * host and device BasicConstraints critical CA:FALSE + KeyUsage critical
 * digitalSignature,keyEncipherment; the device certificate also has a
 * SubjectKeyIdentifier.
 *
 * Because every name is empty, OpenSSL's chain builder sees each certificate
 * as self-signed (doc/protocol.md section 0): check signatures with pair_cert_signed_by.
 */
#ifndef LP_PAIR_CERT_H
#define LP_PAIR_CERT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "src/base/lp_error.h"

/* Largest PEM blob (certificate, key, device public key) accepted as input. */
#define PAIR_MAX_PEM (64u * 1024)
#define PAIR_KEY_BITS 2048
#define PAIR_CERT_DAYS 3650

/* PEM text, no trailing NUL counted in len (a NUL follows data[len]). */
struct pair_blob {
	uint8_t *data; /* owned */
	size_t len;
};

struct pair_creds {
	struct pair_blob root_cert;
	struct pair_blob root_key; /* PKCS#8 "PRIVATE KEY" */
	struct pair_blob host_cert;
	struct pair_blob host_key; /* PKCS#8 "PRIVATE KEY" */
	struct pair_blob device_cert;
};

/* Generate root and host keys and the three certificates for the device
 * public key in `device_pubkey_pem` (borrowed; "RSA PUBLIC KEY" PKCS#1 PEM as
 * lockdown's DevicePublicKey, "PUBLIC KEY" SPKI also accepted). On success
 * *out is filled (release with pair_creds_clear). LP_EBADMSG if the device
 * key cannot be parsed, LP_ETOOBIG over PAIR_MAX_PEM, LP_ECRYPTO otherwise. */
int pair_creds_generate(const uint8_t *device_pubkey_pem, size_t len, struct pair_creds *out,
			struct lp_errinfo *e);
/* The two RSA keys of a new pairing (root and host), generated in the
 * background, each on its own thread, so that key generation overlaps the
 * device walk and the two keys cost the time of one (on two cores).
 * pair_keygen_start returns at once; the threads only touch the struct. */
struct pair_keygen;
/* 0 and *out (owned: pair_keygen_free), or LP_ENOMEM / LP_ECRYPTO when a
 * thread could not be started (the caller may then generate synchronously). */
int pair_keygen_start(struct pair_keygen **out, struct lp_errinfo *e);
/* As pair_creds_generate, with the keys of `kg` (borrowed; waits for its
 * threads, and its keys are consumed: a second call fails with LP_EINVAL). */
int pair_creds_generate_with(struct pair_keygen *kg, const uint8_t *device_pubkey_pem, size_t len,
			     struct pair_creds *out, struct lp_errinfo *e);
/* As pair_creds_generate, with the root and host keys given (borrowed): for
 * tests and fuzzing, where generating two RSA keys per call is too slow. */
int pair_creds_generate_keys(EVP_PKEY *root_key, EVP_PKEY *host_key,
			     const uint8_t *device_pubkey_pem, size_t len, struct pair_creds *out,
			     struct lp_errinfo *e);
/* Wait for the threads (bounded by RSA generation itself) and free any
 * unconsumed keys. NULL ok. */
void pair_keygen_free(struct pair_keygen *kg);

/* Free all blobs, wiping the private keys first. Safe on a zeroed struct. */
void pair_creds_clear(struct pair_creds *c);
/* Free one blob, wiping its bytes (for key material). */
void pair_blob_wipe(struct pair_blob *b);

/* Parse PEM (borrowed, untrusted): owned results (X509_free / EVP_PKEY_free),
 * NULL if unparsable or over PAIR_MAX_PEM. pair_load_key reads PKCS#8 and
 * PKCS#1 private keys; pair_load_pubkey PKCS#1 "RSA PUBLIC KEY" and SPKI. */
X509 *pair_load_cert(const uint8_t *pem, size_t len);
EVP_PKEY *pair_load_key(const uint8_t *pem, size_t len);
EVP_PKEY *pair_load_pubkey(const uint8_t *pem, size_t len);

/* 1 if `cert`'s signature verifies with `root`'s public key, else 0. Both
 * borrowed. Does not look at names or validity dates. */
int pair_cert_signed_by(X509 *cert, X509 *root);

/* Device side: new RSA-2048 key (*key owned) and its public half as PKCS#1
 * "RSA PUBLIC KEY" PEM (*pem owned, free()), as lockdown's DevicePublicKey. */
int pair_device_key_generate(EVP_PKEY **key, uint8_t **pubkey_pkcs1_pem, size_t *len);

/* Fresh identifier: 36 chars uppercase hex 8-4-4-4-12 (RFC 4122 v4 bits),
 * from RAND_bytes. 0 or LP_ECRYPTO. */
int pair_new_uuid(char out[37]);

#endif
