/* pair_record.h - pair records on disk, in libimobiledevice/usbmuxd's format.
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

#define PAIR_RECORD_DEFAULT_DIR "/var/lib/lockdown"
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

/* `dir` NULL = PAIR_RECORD_DEFAULT_DIR. Load <dir>/<udid>.plist: LP_ENOENT if
 * absent, else as pair_record_parse; *out->udid set. */
int pair_record_load(const char *dir, const char *udid, struct pair_record **out,
		     struct lp_errinfo *e);
/* Atomically write <dir>/<rec->udid>.plist as XML, mode 0600. */
int pair_record_save(const char *dir, const struct pair_record *rec, struct lp_errinfo *e);
/* Remove <dir>/<udid>.plist: LP_ENOENT if there was none. */
int pair_record_delete(const char *dir, const char *udid, struct lp_errinfo *e);

/* This host's SystemBUID from <dir>/SystemConfiguration.plist, creating the
 * file with a fresh UUID on first use. */
int pair_system_buid(const char *dir, char out[37], struct lp_errinfo *e);

/* The PairRecord dictionary sent in a Pair / ValidatePair request (owned):
 * DeviceCertificate, HostCertificate, HostID, RootCertificate, SystemBUID -
 * never the private keys (doc/protocol.md 4.7). NULL if a field is missing. */
plist_t pair_record_to_pair_request(const struct pair_record *rec);

/* Consistency check of a loaded record: certificates and keys parse, each key
 * matches its certificate, host and device certificates are signed by the
 * root. 0 or LP_ECRYPTO / LP_EBADMSG with the reason in e. */
int pair_record_verify(const struct pair_record *rec, struct lp_errinfo *e);

/* Overwrite the data nodes of every secret key (src/base/lp_secret.h: the
 * private keys, the EscrowBag) in `dict` and the dictionaries nested in it,
 * before the caller frees it. NULL ok. */
void pair_plist_wipe_secrets(plist_t dict);

/* Replace the same nodes by the string "<redacted N bytes>" (their bytes
 * wiped first): for a copy of a message that is about to be logged. NULL ok. */
void pair_plist_redact_secrets(plist_t dict);

/* Write `name` in `dir` (created 0700 if missing) atomically, mode 0600:
 * temp file in the same directory, fsync, rename (or link if `exclusive`:
 * LP_EBUSY when the file already exists), fsync the directory. The old file
 * is intact on any failure, and the temp file is removed - unless the
 * process is killed between creating and renaming it: then ".NAME.XXXXXX"
 * stays in `dir`, and the next write of NAME removes those older than 60 s. For every file that
 * holds key material (pair records, SystemConfiguration, the simulated
 * device's state). */
int pair_write_file_atomic(const char *dir, const char *name, const void *data, size_t len,
			   bool exclusive, struct lp_errinfo *e);

#endif
