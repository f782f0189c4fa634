/* pair_record.c - load/save pair records and SystemConfiguration.plist.
 *
 * Reference: doc/protocol.md 5 (directory, file names, the nine keys and
 * their plist types, PEM stored without a trailing NUL, SystemBUID format),
 * 4.7 (what of the record is sent in Pair).
 *
 * Differences from usbmuxd, on purpose: files are 0600 and written through a
 * temp file + rename (usbmuxd truncates in place with fopen "wb", so a crash
 * leaves a half record); a new directory is 0700. EscrowBag and
 * WiFiMACAddress are optional when loading (pairing can succeed without an
 * EscrowBag, doc/protocol.md 4.7); the other seven keys are required.
 */
#include "proto/pair_record.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "src/base/lp_secret.h"
#include "proto/lockdown_frame.h"

#define SYSCONF_NAME "SystemConfiguration.plist"
#define SYSCONF_MAX_FILE (64u * 1024)

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

/* --- files ------------------------------------------------------------- */

static const char *dir_or_default(const char *dir)
{
	return dir && *dir ? dir : PAIR_RECORD_DEFAULT_DIR;
}

static int join(char *out, size_t cap, const char *dir, const char *name, struct lp_errinfo *e)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= cap)
		return lp_err_set(e, LP_EINVAL, "path too long: %s/%s", dir, name);
	return 0;
}

static int errno_err(struct lp_errinfo *e, const char *what, const char *path)
{
	int en = errno;

	return lp_err_set(e, lp_err_from_errno(en), "%s %s: %s", what, path, strerror(en));
}

/* Read a whole file of at most `cap` bytes; *buf owned (NUL-terminated). */
static int read_capped(const char *path, size_t cap, uint8_t **buf, size_t *len,
		       struct lp_errinfo *e)
{
	struct stat st;
	uint8_t *b;
	size_t got = 0;
	/* O_NONBLOCK: a FIFO planted where a record should be must not block
	 * the open; it is then refused as not a regular file */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return errno_err(e, "cannot open", path);
	if (fstat(fd, &st) < 0) {
		errno_err(e, "cannot stat", path);
		close(fd);
		return e ? e->code : LP_EIO;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return lp_err_set(e, LP_EBADMSG, "%s is not a regular file", path);
	}
	if (st.st_size < 0 || (uint64_t)st.st_size > cap) {
		close(fd);
		return lp_err_set(e, LP_ETOOBIG, "%s is %lld bytes (cap %zu)", path,
				  (long long)st.st_size, cap);
	}
	b = malloc(cap + 1);
	if (!b) {
		close(fd);
		return lp_err_set(e, LP_ENOMEM, "out of memory reading %s", path);
	}
	/* The file may grow between fstat and read: read to EOF, up to cap+1. */
	for (;;) {
		ssize_t n = read(fd, b + got, cap + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = errno_err(e, "cannot read", path);
			OPENSSL_cleanse(b, cap + 1);
			free(b);
			close(fd);
			return r;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > cap) {
			OPENSSL_cleanse(b, cap + 1);
			free(b);
			close(fd);
			return lp_err_set(e, LP_ETOOBIG, "%s grew over %zu bytes", path, cap);
		}
	}
	close(fd);
	b[got] = '\0';
	*buf = b;
	*len = got;
	return 0;
}

/* mkdir -p, new components 0700. */
static int ensure_dir(const char *dir, struct lp_errinfo *e)
{
	char p[PATH_MAX];
	struct stat st;
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(p))
		return lp_err_set(e, LP_EINVAL, "bad directory name");
	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return lp_err_set(e, LP_EINVAL, "%s is not a directory", dir);
		return 0;
	}
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i < n; i++) {
		if (p[i] != '/')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return errno_err(e, "cannot create directory", p);
		p[i] = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return errno_err(e, "cannot create directory", p);
	return 0;
}

static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
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

/* Test hook (tests/t/92-kill.t): LINKPROBE_TEST_WRITE_STOP=N[:SUFFIX] makes
 * the Nth step of the atomic writers in this process (each syscall, and each
 * chunk of at most WRITE_STOP_CHUNK bytes), counting only files whose name
 * ends in SUFFIX if given, stop the process with SIGSTOP, so a test can
 * SIGKILL it at a chosen point. Unset: no effect. */
#define WRITE_STOP_CHUNK 64

static long write_stop_at(const char **suffix)
{
	static long at = -1;
	static const char *suf;

	if (at < 0) {
		const char *v = getenv("LINKPROBE_TEST_WRITE_STOP");
		char *end = NULL;

		at = v && *v ? strtol(v, &end, 10) : 0;
		if (at < 0)
			at = 0;
		suf = end && *end == ':' ? end + 1 : NULL;
	}
	if (suffix)
		*suffix = suf;
	return at;
}

static void write_point(const char *name)
{
	static long n;
	const char *suf;
	long at = write_stop_at(&suf);

	if (!at || (suf && (strlen(name) < strlen(suf) ||
			    strcmp(name + strlen(name) - strlen(suf), suf) != 0)))
		return;
	if (++n == at)
		raise(SIGSTOP);
}

/* A write killed between mkostemp and rename leaves ".NAME.XXXXXX" behind;
 * the next write of NAME removes those older than PAIR_TEMP_STALE_S (younger
 * ones may belong to a writer running now). */
#define PAIR_TEMP_STALE_S 60

static void remove_stale_temps(const char *dir, const char *name)
{
	size_t nl = strlen(name);
	time_t now = time(NULL);
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		const char *f = de->d_name;
		char p[PATH_MAX];
		struct stat st;

		if (f[0] != '.' || strlen(f) != 1 + nl + 7 || memcmp(f + 1, name, nl) != 0 ||
		    f[1 + nl] != '.')
			continue;
		if (snprintf(p, sizeof(p), "%s/%s", dir, f) >= (int)sizeof(p))
			continue;
		if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) &&
		    now - st.st_mtime > PAIR_TEMP_STALE_S)
			unlink(p);
	}
	closedir(d);
}

int pair_write_file_atomic(const char *dir, const char *name, const void *data, size_t len,
			   bool exclusive, struct lp_errinfo *e)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	const uint8_t *p = data;
	size_t off = 0;
	int fd, r, n;

	r = ensure_dir(dir, e);
	if (r)
		return r;
	r = join(path, sizeof(path), dir, name, e);
	if (r)
		return r;
	n = snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return lp_err_set(e, LP_EINVAL, "path too long: %s", path);
	remove_stale_temps(dir, name);
	write_point(name);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return errno_err(e, "cannot create temporary file in", dir);
	while (off < len) {
		size_t chunk = write_stop_at(NULL) && len - off > WRITE_STOP_CHUNK
				       ? WRITE_STOP_CHUNK
				       : len - off;
		ssize_t w;

		write_point(name);
		w = write(fd, p + off, chunk);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			r = errno_err(e, "cannot write", tmp);
			goto fail;
		}
		off += (size_t)w;
	}
	write_point(name);
	if (fsync(fd) < 0) {
		r = errno_err(e, "cannot fsync", tmp);
		goto fail;
	}
	write_point(name);
	if (fchmod(fd, 0600) < 0) {
		r = errno_err(e, "cannot chmod", tmp);
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = errno_err(e, "cannot close", tmp);
		goto fail;
	}
	fd = -1;
	write_point(name);
	if (exclusive) {
		if (link(tmp, path) < 0) {
			r = errno == EEXIST ? lp_err_set(e, LP_EBUSY, "%s appeared meanwhile", path)
					    : errno_err(e, "cannot create", path);
			goto fail;
		}
		unlink(tmp);
	} else if (rename(tmp, path) < 0) {
		r = errno_err(e, "cannot rename to", path);
		goto fail;
	}
	write_point(name);
	fsync_dir(dir);
	write_point(name);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return r;
}

static int record_name(const char *udid, char *name, size_t cap, struct lp_errinfo *e)
{
	if (!pair_record_udid_ok(udid))
		return lp_err_set(e, LP_EINVAL, "invalid UDID for a pair record file name");
	snprintf(name, cap, "%s.plist", udid);
	return 0;
}

int pair_record_load(const char *dir, const char *udid, struct pair_record **out,
		     struct lp_errinfo *e)
{
	char name[PAIR_RECORD_MAX_UDID + 8], path[PATH_MAX];
	uint8_t *buf = NULL;
	size_t len = 0;
	struct pair_record *rec = NULL;
	int r;

	if (!out)
		return lp_err_set(e, LP_EINVAL, "pair_record_load: bad argument");
	dir = dir_or_default(dir);
	if ((r = record_name(udid, name, sizeof(name), e)) ||
	    (r = join(path, sizeof(path), dir, name, e)))
		return r;
	r = read_capped(path, PAIR_RECORD_MAX_FILE, &buf, &len, e);
	if (r)
		return r;
	r = pair_record_parse(buf, len, &rec, e);
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (r) {
		lp_err_prefix(e, "%s", path);
		return r;
	}
	if (pair_record_set_str(&rec->udid, udid)) {
		pair_record_free(rec);
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	}
	*out = rec;
	return 0;
}

int pair_record_save(const char *dir, const struct pair_record *rec, struct lp_errinfo *e)
{
	char name[PAIR_RECORD_MAX_UDID + 8];
	plist_t d;
	char *xml = NULL;
	uint32_t xlen = 0;
	int r;

	if (!rec)
		return lp_err_set(e, LP_EINVAL, "pair_record_save: no record");
	r = record_name(rec->udid, name, sizeof(name), e);
	if (r)
		return r;
	d = pair_record_to_plist(rec);
	if (!d)
		return lp_err_set(e, LP_EINVAL, "pair record incomplete: cannot save");
	plist_to_xml(d, &xml, &xlen);
	pair_plist_wipe_secrets(d);
	plist_free(d);
	if (!xml)
		return lp_err_set(e, LP_EPLIST, "cannot serialize pair record");
	r = pair_write_file_atomic(dir_or_default(dir), name, xml, xlen, false, e);
	OPENSSL_cleanse(xml, xlen);
	plist_to_xml_free(xml);
	return r;
}

int pair_record_delete(const char *dir, const char *udid, struct lp_errinfo *e)
{
	char name[PAIR_RECORD_MAX_UDID + 8], path[PATH_MAX];
	int r;

	dir = dir_or_default(dir);
	if ((r = record_name(udid, name, sizeof(name), e)) ||
	    (r = join(path, sizeof(path), dir, name, e)))
		return r;
	if (unlink(path) < 0)
		return errno_err(e, "cannot remove", path);
	fsync_dir(dir);
	return 0;
}

static int read_buid(const char *path, char out[37], struct lp_errinfo *e)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	plist_t d = NULL;
	const char *s;
	int r;

	r = read_capped(path, SYSCONF_MAX_FILE, &buf, &len, e);
	if (r)
		return r;
	r = lkd_plist_decode(buf, len, &d);
	free(buf);
	if (r)
		return lp_err_set(e, LP_EPLIST, "%s is not a property list", path);
	s = lkd_dict_str(d, "SystemBUID");
	if (!s || !*s || strlen(s) > 36 || !printable(s, strlen(s))) {
		plist_free(d);
		return lp_err_set(e, LP_EBADMSG, "%s: SystemBUID missing or malformed", path);
	}
	memcpy(out, s, strlen(s) + 1);
	plist_free(d);
	return 0;
}

int pair_system_buid(const char *dir, char out[37], struct lp_errinfo *e)
{
	char path[PATH_MAX], buid[37];
	plist_t d;
	char *xml = NULL;
	uint32_t xlen = 0;
	int r;

	if (!out)
		return lp_err_set(e, LP_EINVAL, "pair_system_buid: bad argument");
	dir = dir_or_default(dir);
	r = join(path, sizeof(path), dir, SYSCONF_NAME, e);
	if (r)
		return r;
	r = read_buid(path, out, e);
	if (r != LP_ENOENT)
		return r;
	if (pair_new_uuid(buid))
		return lp_err_set(e, LP_ECRYPTO, "no randomness for a SystemBUID");
	d = plist_new_dict();
	plist_dict_set_item(d, "SystemBUID", plist_new_string(buid));
	plist_to_xml(d, &xml, &xlen);
	pair_plist_wipe_secrets(d);
	plist_free(d);
	if (!xml)
		return lp_err_set(e, LP_EPLIST, "cannot serialize %s", SYSCONF_NAME);
	/* Two processes may race on first use: the first link wins and the
	 * loser adopts the winner's BUID. */
	r = pair_write_file_atomic(dir, SYSCONF_NAME, xml, xlen, true, e);
	plist_to_xml_free(xml);
	if (r == LP_EBUSY)
		return read_buid(path, out, e);
	if (r)
		return r;
	memcpy(out, buid, sizeof(buid));
	return 0;
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
