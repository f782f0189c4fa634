/* pair_record.h - pair records in libimobiledevice/usbmuxd's format: the
 * codec (this header, pair_record.c); on disk: proto/pair_store.h.
 *
 * A pair record is what a host keeps after pairing with a device
 * (doc/protocol.md 5): `<dir>/<UDID>.plist`, an XML dictionary with
 * DeviceCertificate, HostCertificate, HostPrivateKey, RootCertificate,
 * RootPrivateKey (PEM as data), HostID, SystemBUID (strings), EscrowBag
 * (data) and WiFiMACAddress (string); and `<dir>/SystemConfiguration.plist`
 * holding this host's {SystemBUID}. Records written by usbmuxd or
 * idevicepair load here and vice versa.
 *
 * Files are untrusted input: size capped before reading, every key
 * type-checked. Writes are atomic (temp file + fsync + rename + directory
 * fsync), mode 0600; a missing directory is created 0700.
 */
#ifndef LP_PAIR_RECORD_H
#define LP_PAIR_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <plist/plist.h>

#include "src/base/lp_error.h"
#include "proto/pair_cert.h"

#define PAIR_RECORD_MAX_FILE (1u << 20)	     /* 1 MiB: real records are ~10 KiB */
#define PAIR_RECORD_MAX_ESCROW (256u * 1024) /* EscrowBag data */
#define PAIR_RECORD_MAX_STR 255		     /* HostID, SystemBUID, WiFiMACAddress */
#define PAIR_RECORD_MAX_UDID 64

struct pair_record {
	struct pair_blob device_certificate; /* PEM */
	struct pair_blob host_certificate;   /* PEM */
	struct pair_blob host_private_key;   /* PEM, wiped on free */
	struct pair_blob root_certificate;   /* PEM */
	struct pair_blob root_private_key;   /* PEM, wiped on free */
	char *host_id;			     /* owned */
	char *system_buid;		     /* owned */
	struct pair_blob escrow_bag;	     /* optional (data.len 0), wiped on free */
	char *wifi_mac_address;		     /* optional (NULL) */
	char *udid;			     /* file name stem; not stored inside the file */
};

/* Empty record (NULL on allocation failure). */
struct pair_record *pair_record_new(void);
/* Free, wiping private keys and EscrowBag. NULL ok. */
void pair_record_free(struct pair_record *rec);
/* Move the five PEM blobs out of `creds` into `rec` (creds left empty;
 * existing blobs in rec are wiped first). */
void pair_record_adopt_creds(struct pair_record *rec, struct pair_creds *creds);
/* Replace a string field (copies `s`, NULL clears). 0 or LP_ENOMEM. */
int pair_record_set_str(char **field, const char *s);
/* Replace a blob field with a copy of buf. 0 or LP_ENOMEM. */
int pair_record_set_blob(struct pair_blob *field, const void *buf, size_t len);

/* true if `udid` is a safe file name stem: 1..PAIR_RECORD_MAX_UDID chars of
 * hex digits and '-'. */
bool pair_record_udid_ok(const char *udid);

/* Parse a record file's bytes (borrowed, untrusted; XML or binary plist).
 * *out owned; its udid is NULL. LP_ETOOBIG over PAIR_RECORD_MAX_FILE or a
 * per-field cap, LP_EPLIST not a plist dict, LP_EBADMSG a key missing or of
 * the wrong type (the key is named in e->msg). */
int pair_record_parse(const uint8_t *buf, size_t len, struct pair_record **out,
		      struct lp_errinfo *e);
/* The full record as a plist dict (owned), private keys included; NULL if a
 * required field is missing. */
plist_t pair_record_to_plist(const struct pair_record *rec);

/* The PairRecord dictionary sent in a Pair / ValidatePair request (owned):
 * DeviceCertificate, HostCertificate, HostID, RootCertificate, SystemBUID -
 * never the private keys (doc/protocol.md 4.7). NULL if a field is missing. */
plist_t pair_record_to_pair_request(const struct pair_record *rec);

/* Consistency check of a loaded record: certificates and keys parse, each key
 * matches its certificate, host and device certificates are signed by the
 * root. 0 or LP_ECRYPTO / LP_EBADMSG with the reason in e. */
int pair_record_verify(const struct pair_record *rec, struct lp_errinfo *e);
/* The host's TLS identity from the record: *cert and *key loaded (owned by
 * the caller) and true; or false with both NULL and *bad naming what does
 * not load ("certificate" or "private key"). */
bool pair_record_host_identity(const struct pair_record *rec, X509 **cert, EVP_PKEY **key,
			       const char **bad);

/* Overwrite the data nodes of every secret key (src/base/lp_secret.h: the
 * private keys, the EscrowBag) in `dict` and the dictionaries nested in it,
 * before the caller frees it. NULL ok. */
void pair_plist_wipe_secrets(plist_t dict);

/* Replace the same nodes by the string "<redacted N bytes>" (their bytes
 * wiped first): for a copy of a message that is about to be logged. NULL ok. */
void pair_plist_redact_secrets(plist_t dict);

#endif
