/* fuzz_pair_pubkey.c - libFuzzer harness: the device's public key in pairing
 * (proto/pair_cert.c). lockdown's DevicePublicKey comes from a device not yet
 * trusted; trust --pair parses it (PKCS#1 "RSA PUBLIC KEY" or SPKI "PUBLIC
 * KEY" PEM) and signs a device certificate over it with the new root key.
 *
 * Input: the DevicePublicKey bytes. The root and host keys are made once (RSA
 * generation per input would leave no time for fuzzing); the device
 * certificate is then made, encoded, loaded back and checked against the root,
 * as trust does before writing the record.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/err.h>

#include "proto/pair_cert.h"

static EVP_PKEY *g_root, *g_host;
static volatile size_t sink;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t *pem = NULL;
	size_t len = 0;

	if (pair_device_key_generate(&g_root, &pem, &len))
		abort();
	free(pem);
	if (pair_device_key_generate(&g_host, &pem, &len))
		abort();
	free(pem);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pair_creds c = {0};
	EVP_PKEY *pk = pair_load_pubkey(data, size);

	if (pk) {
		sink += (size_t)EVP_PKEY_get_bits(pk);
		EVP_PKEY_free(pk);
	}
	if (pair_creds_generate_keys(g_root, g_host, data, size, &c, NULL) == 0) {
		X509 *dev = pair_load_cert(c.device_cert.data, c.device_cert.len);
		X509 *root = pair_load_cert(c.root_cert.data, c.root_cert.len);

		if (!dev || !root || pair_cert_signed_by(dev, root) != 1)
			abort(); /* a certificate we made must load and verify */
		X509_free(dev);
		X509_free(root);
		pair_creds_clear(&c);
	}
	ERR_clear_error();
	return 0;
}
