/* pair_record.c - the pair record codec: the nine keys in and out of a
 * plist, what of it goes into a Pair request, its consistency check, and
 * wiping/redacting the secret keys. No file I/O (proto/pair_store.c).
 *
 * Reference: doc/protocol.md 5 (the nine keys and their plist types, PEM
 * stored without a trailing NUL), 4.7 (what of the record is sent in Pair).
 *
 * EscrowBag and WiFiMACAddress are optional when loading (pairing can
 * succeed without an EscrowBag, doc/protocol.md 4.7); the other seven keys
 * are required.
 */
#include "proto/pair_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "src/base/lp_secret.h"
#include "proto/lockdown_frame.h"

enum field_kind { PAIR_F_BLOB, PAIR_F_STR };

struct field {
	const char *key;
	enum field_kind kind;
	bool required;
	size_t off;
	size_t cap;
};

#define BLOB(k, m, req, cap)                                              \
	{                                                                 \
		k, PAIR_F_BLOB, req, offsetof(struct pair_record, m), cap \
	}
#define STR(k, m, req)                                                                   \
	{                                                                                \
		k, PAIR_F_STR, req, offsetof(struct pair_record, m), PAIR_RECORD_MAX_STR \
	}

static const struct field fields[] = {
	BLOB("DeviceCertificate", device_certificate, true, PAIR_MAX_PEM),
	BLOB("HostCertificate", host_certificate, true, PAIR_MAX_PEM),
	BLOB("HostPrivateKey", host_private_key, true, PAIR_MAX_PEM),
	BLOB("RootCertificate", root_certificate, true, PAIR_MAX_PEM),
	BLOB("RootPrivateKey", root_private_key, true, PAIR_MAX_PEM),
	STR("HostID", host_id, true),
	STR("SystemBUID", system_buid, true),
	BLOB("EscrowBag", escrow_bag, false, PAIR_RECORD_MAX_ESCROW),
	STR("WiFiMACAddress", wifi_mac_address, false),
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static struct pair_blob *blob_at(const struct pair_record *rec, const struct field *f)
{
	return (struct pair_blob *)((char *)rec + f->off);
}

static char **str_at(const struct pair_record *rec, const struct field *f)
{
	return (char **)((char *)rec + f->off);
}

struct pair_record *pair_record_new(void)
{
	return calloc(1, sizeof(struct pair_record));
}

void pair_record_free(struct pair_record *rec)
{
	if (!rec)
		return;
	/* Every blob is wiped: cheap, and covers keys and EscrowBag. */
	for (size_t i = 0; i < NFIELDS; i++) {
		if (fields[i].kind == PAIR_F_BLOB)
			pair_blob_wipe(blob_at(rec, &fields[i]));
		else
			free(*str_at(rec, &fields[i]));
	}
	free(rec->udid);
	free(rec);
}

int pair_record_set_str(char **field, const char *s)
{
	char *c = NULL;

	if (s && !(c = strdup(s)))
		return LP_ENOMEM;
	free(*field);
	*field = c;
	return 0;
}

int pair_record_set_blob(struct pair_blob *field, const void *buf, size_t len)
{
	uint8_t *c = malloc(len + 1);

	if (!c)
		return LP_ENOMEM;
	if (len)
		memcpy(c, buf, len);
	c[len] = '\0';
	pair_blob_wipe(field);
	field->data = c;
	field->len = len;
	return 0;
}

static void move_blob(struct pair_blob *dst, struct pair_blob *src)
{
	pair_blob_wipe(dst);
	*dst = *src;
	src->data = NULL;
	src->len = 0;
}

void pair_record_adopt_creds(struct pair_record *rec, struct pair_creds *creds)
{
	move_blob(&rec->device_certificate, &creds->device_cert);
	move_blob(&rec->host_certificate, &creds->host_cert);
	move_blob(&rec->host_private_key, &creds->host_key);
	move_blob(&rec->root_certificate, &creds->root_cert);
	move_blob(&rec->root_private_key, &creds->root_key);
}

bool pair_record_udid_ok(const char *udid)
{
	size_t n;

	if (!udid)
		return false;
	n = strlen(udid);
	if (n == 0 || n > PAIR_RECORD_MAX_UDID)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = udid[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
		      c == '-'))
			return false;
	}
	return true;
}

static const char *type_name(plist_t n)
{
	switch (plist_get_node_type(n)) {
	case PLIST_BOOLEAN:
		return "boolean";
	case PLIST_UINT:
		return "integer";
	case PLIST_REAL:
		return "real";
	case PLIST_STRING:
		return "string";
	case PLIST_ARRAY:
		return "array";
	case PLIST_DICT:
		return "dictionary";
	case PLIST_DATE:
		return "date";
	case PLIST_DATA:
		return "data";
	case PLIST_KEY:
		return "key";
	case PLIST_UID:
		return "uid";
	default:
		return "unknown";
	}
}

/* Strings end up in diagnostics and in requests to the device. */
static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static int get_field(plist_t dict, const struct field *f, struct pair_record *rec,
		     struct lp_errinfo *e)
{
	plist_t n = plist_dict_get_item(dict, f->key);
	uint64_t len = 0;
	const char *p;

	if (!n) {
		if (f->required)
			return lp_err_set(e, LP_EBADMSG, "pair record: %s missing", f->key);
		return 0;
	}
	if (f->kind == PAIR_F_BLOB) {
		if (plist_get_node_type(n) != PLIST_DATA)
			return lp_err_set(e, LP_EBADMSG, "pair record: %s is %s, expected data",
					  f->key, type_name(n));
		p = plist_get_data_ptr(n, &len);
		if (len > f->cap)
			return lp_err_set(e, LP_ETOOBIG, "pair record: %s is %llu bytes (cap %zu)",
					  f->key, (unsigned long long)len, f->cap);
		if (f->required && (len == 0 || !p))
			return lp_err_set(e, LP_EBADMSG, "pair record: %s is empty", f->key);
		if (len && pair_record_set_blob(blob_at(rec, f), p, (size_t)len))
			return lp_err_set(e, LP_ENOMEM, "pair record: out of memory");
		return 0;
	}
	if (plist_get_node_type(n) != PLIST_STRING)
		return lp_err_set(e, LP_EBADMSG, "pair record: %s is %s, expected string", f->key,
				  type_name(n));
	p = plist_get_string_ptr(n, &len);
	if (!p || len > f->cap)
		return lp_err_set(e, LP_ETOOBIG, "pair record: %s longer than %zu characters",
				  f->key, f->cap);
	if (f->required && len == 0)
		return lp_err_set(e, LP_EBADMSG, "pair record: %s is empty", f->key);
	if (!printable(p, (size_t)len) || strlen(p) != len)
		return lp_err_set(e, LP_EBADMSG, "pair record: %s has non-printable characters",
				  f->key);
	if (pair_record_set_str(str_at(rec, f), p))
		return lp_err_set(e, LP_ENOMEM, "pair record: out of memory");
	return 0;
}

int pair_record_parse(const uint8_t *buf, size_t len, struct pair_record **out,
		      struct lp_errinfo *e)
{
	struct pair_record *rec;
	plist_t dict = NULL;
	int r;

	if (!out || (!buf && len))
		return lp_err_set(e, LP_EINVAL, "pair record: bad argument");
	if (len > PAIR_RECORD_MAX_FILE)
		return lp_err_set(e, LP_ETOOBIG, "pair record is %zu bytes (cap %u)", len,
				  PAIR_RECORD_MAX_FILE);
	r = lkd_plist_decode(buf, len, &dict);
	if (r)
		return lp_err_set(e, r == LP_ENOMEM ? r : LP_EPLIST,
				  "pair record is not a property list");
	if (plist_get_node_type(dict) != PLIST_DICT) {
		plist_free(dict);
		return lp_err_set(e, LP_EPLIST, "pair record is not a dictionary");
	}
	rec = pair_record_new();
	if (!rec) {
		plist_free(dict);
		return lp_err_set(e, LP_ENOMEM, "pair record: out of memory");
	}
	for (size_t i = 0; i < NFIELDS; i++) {
		r = get_field(dict, &fields[i], rec, e);
		if (r)
			break;
	}
	pair_plist_wipe_secrets(dict);
	plist_free(dict);
	if (r) {
		pair_record_free(rec);
		return r;
	}
	*out = rec;
	return 0;
}

plist_t pair_record_to_plist(const struct pair_record *rec)
{
	plist_t d;

	if (!rec)
		return NULL;
	d = plist_new_dict();
	for (size_t i = 0; d && i < NFIELDS; i++) {
		const struct field *f = &fields[i];

		if (f->kind == PAIR_F_BLOB) {
			const struct pair_blob *b = blob_at(rec, f);
			if (b->data && b->len)
				plist_dict_set_item(d, f->key,
						    plist_new_data((const char *)b->data, b->len));
			else if (f->required)
				goto missing;
		} else {
			const char *s = *str_at(rec, f);
			if (s)
				plist_dict_set_item(d, f->key, plist_new_string(s));
			else if (f->required)
				goto missing;
		}
	}
	return d;
missing:
	plist_free(d);
	return NULL;
}

plist_t pair_record_to_pair_request(const struct pair_record *rec)
{
	static const char *const sent[] = {"DeviceCertificate", "HostCertificate", "HostID",
					   "RootCertificate", "SystemBUID"};
	plist_t d;

	if (!rec)
		return NULL;
	d = plist_new_dict();
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct field *f = &fields[i];
		bool want = false;

		for (size_t k = 0; k < sizeof(sent) / sizeof(sent[0]); k++)
			want |= strcmp(sent[k], f->key) == 0;
		if (!want)
			continue;
		if (f->kind == PAIR_F_BLOB) {
			const struct pair_blob *b = blob_at(rec, f);
			if (!b->data || !b->len)
				goto missing;
			plist_dict_set_item(d, f->key,
					    plist_new_data((const char *)b->data, b->len));
		} else {
			const char *s = *str_at(rec, f);
			if (!s)
				goto missing;
			plist_dict_set_item(d, f->key, plist_new_string(s));
		}
	}
	return d;
missing:
	plist_free(d);
	return NULL;
}

/* Visit every secret data node (src/base/lp_secret.h) of `dict` and of the
 * dictionaries nested in it, down to PAIR_SECRET_DEPTH levels (a Pair request
 * nests the record one level down). `fn` may replace the node. */
#define PAIR_SECRET_DEPTH 4
static void walk_secrets(plist_t dict, int depth,
			 void (*fn)(plist_t dict, const char *key, plist_t v))
{
	plist_dict_iter it = NULL;
	char *key = NULL;
	plist_t val = NULL;

	if (!dict || depth > PAIR_SECRET_DEPTH || plist_get_node_type(dict) != PLIST_DICT)
		return;
	for (size_t i = 0; lp_secret_keys[i]; i++) {
		plist_t v = plist_dict_get_item(dict, lp_secret_keys[i]);

		if (v && plist_get_node_type(v) == PLIST_DATA)
			fn(dict, lp_secret_keys[i], v);
	}
	plist_dict_new_iter(dict, &it);
	if (!it)
		return;
	for (;;) {
		plist_dict_next_item(dict, it, &key, &val);
		if (!key)
			break;
		if (plist_get_node_type(val) == PLIST_DICT)
			walk_secrets(val, depth + 1, fn);
		free(key);
		key = NULL;
	}
	free(it);
}

static void wipe_node(plist_t dict, const char *key, plist_t v)
{
	uint64_t len = 0;
	const char *p = plist_get_data_ptr(v, &len);

	(void)dict;
	(void)key;
	if (p && len)
		OPENSSL_cleanse((void *)p, (size_t)len);
}

static void redact_node(plist_t dict, const char *key, plist_t v)
{
	uint64_t len = 0;
	char s[48];

	plist_get_data_ptr(v, &len);
	snprintf(s, sizeof(s), "<redacted %llu bytes>", (unsigned long long)len);
	wipe_node(dict, key, v);
	plist_dict_set_item(dict, key, plist_new_string(s));
}

void pair_plist_wipe_secrets(plist_t dict)
{
	walk_secrets(dict, 0, wipe_node);
}

void pair_plist_redact_secrets(plist_t dict)
{
	walk_secrets(dict, 0, redact_node);
}

int pair_record_verify(const struct pair_record *rec, struct lp_errinfo *e)
{
	X509 *root = NULL, *host = NULL, *dev = NULL;
	EVP_PKEY *rk = NULL, *hk = NULL;
	int r = 0;

	if (!rec)
		return lp_err_set(e, LP_EINVAL, "no pair record");
	root = pair_load_cert(rec->root_certificate.data, rec->root_certificate.len);
	host = pair_load_cert(rec->host_certificate.data, rec->host_certificate.len);
	dev = pair_load_cert(rec->device_certificate.data, rec->device_certificate.len);
	rk = pair_load_key(rec->root_private_key.data, rec->root_private_key.len);
	hk = pair_load_key(rec->host_private_key.data, rec->host_private_key.len);
	if (!root)
		r = lp_err_set(e, LP_EBADMSG, "RootCertificate is not a PEM certificate");
	else if (!host)
		r = lp_err_set(e, LP_EBADMSG, "HostCertificate is not a PEM certificate");
	else if (!dev)
		r = lp_err_set(e, LP_EBADMSG, "DeviceCertificate is not a PEM certificate");
	else if (!rk)
		r = lp_err_set(e, LP_EBADMSG, "RootPrivateKey is not a PEM private key");
	else if (!hk)
		r = lp_err_set(e, LP_EBADMSG, "HostPrivateKey is not a PEM private key");
	else if (X509_check_private_key(root, rk) != 1)
		r = lp_err_set(e, LP_ECRYPTO, "RootPrivateKey does not match RootCertificate");
	else if (X509_check_private_key(host, hk) != 1)
		r = lp_err_set(e, LP_ECRYPTO, "HostPrivateKey does not match HostCertificate");
	else if (!pair_cert_signed_by(host, root))
		r = lp_err_set(e, LP_ECRYPTO, "HostCertificate is not signed by RootCertificate");
	else if (!pair_cert_signed_by(dev, root))
		r = lp_err_set(e, LP_ECRYPTO, "DeviceCertificate is not signed by RootCertificate");
	ERR_clear_error();
	X509_free(root);
	X509_free(host);
	X509_free(dev);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(hk);
	return r;
}

bool pair_record_host_identity(const struct pair_record *rec, X509 **cert, EVP_PKEY **key,
			       const char **bad)
{
	*cert = pair_load_cert(rec->host_certificate.data, rec->host_certificate.len);
	*key = pair_load_key(rec->host_private_key.data, rec->host_private_key.len);
	if (*cert && *key)
		return true;
	*bad = *cert ? "private key" : "certificate";
	X509_free(*cert);
	EVP_PKEY_free(*key);
	*cert = NULL;
	*key = NULL;
	return false;
}
