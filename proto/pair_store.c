/* pair_store.c - pair records and SystemConfiguration.plist on this host's
 * disk: capped reads, atomic writes, the directory, and errors that name the
 * path, the errno and who may use the directory (a host fault is reported as
 * the host's, src/diag's diag_rule_pair_store).
 *
 * Reference: doc/protocol.md 5 (directory, file names, SystemBUID format).
 *
 * Differences from usbmuxd, on purpose: files are 0600 and written through a
 * temp file + rename (usbmuxd truncates in place with fopen "wb", so a crash
 * leaves a half record); a new directory is 0700. Written as root into a
 * directory another user owns (usbmuxd's: 02775, chowned to its --user, and
 * read as that user), a file gets that directory's owner and group.
 *
 * Error codes (pair_store.h): a file that is there but does not parse is
 * LP_EPLIST / LP_EBADMSG / LP_ETOOBIG (corrupt); every failure to read or
 * write it - errno from the system call, "not a regular file", "not a
 * directory" - is an errno conversion or LP_EIO (access), never LP_EBADMSG.
 */
#include "proto/pair_store.h"

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

#include "proto/lockdown_frame.h"

#define SYSCONF_NAME "SystemConfiguration.plist"
#define SYSCONF_MAX_FILE (64u * 1024)

/* Strings end up in diagnostics and in requests to the device. */
static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

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

/* The directory part of `path` (the whole path if it has no '/'). */
static void dir_of(const char *path, char *out, size_t n)
{
	const char *slash = strrchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : strlen(path);

	if (slash == path)
		len = 1;
	if (len >= n)
		len = n - 1;
	memcpy(out, path, len);
	out[len] = '\0';
}

/* "; DIR is owned by uid U, mode 0MMM; linkprobe runs as uid V" - who may
 * use the directory, for a permission error. "" when it cannot be told. */
static void who_may(const char *dir, char *out, size_t n)
{
	struct stat st;

	out[0] = '\0';
	if (stat(dir, &st) == 0)
		snprintf(out, n,
			 "; %s is owned by uid %u gid %u, mode %04o; linkprobe runs as uid %u", dir,
			 (unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777),
			 (unsigned)geteuid());
}

/* The failed system call's errno as an lp_err, with the path, the errno's
 * text and name, and for a permission error who may use the directory. An
 * errno that does not name a permission or a missing file is LP_EIO: the
 * host's storage failed (ENOSPC, EIO, ENOTDIR, ELOOP...). */
static int errno_err(struct lp_errinfo *e, const char *what, const char *path)
{
	int en = errno, code = lp_err_from_errno(en);
	const char *name = strerrorname_np(en);
	char who[PATH_MAX + 96] = "";

	if (code != LP_EACCES && code != LP_ENOENT && code != LP_ENOMEM)
		code = LP_EIO;
	if (en == EACCES || en == EPERM) {
		char dir[PATH_MAX];
		struct stat st;

		/* the directory if `path` is a file in it, else `path` itself */
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			snprintf(dir, sizeof(dir), "%s", path);
		else
			dir_of(path, dir, sizeof(dir));
		who_may(dir, who, sizeof(who));
	}
	return lp_err_set(e, code, "%s %s: %s (%s)%s", what, path, strerror(en), name ? name : "?",
			  who);
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
		return lp_err_set(e, LP_EIO, "%s is not a regular file (%s)", path,
				  S_ISDIR(st.st_mode)	 ? "a directory"
				  : S_ISFIFO(st.st_mode) ? "a FIFO"
				  : S_ISSOCK(st.st_mode) ? "a socket"
							 : "a device node");
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
			return lp_err_set(e, LP_EIO, "%s is not a directory (ENOTDIR)", dir);
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

/* Run as root into a directory another user owns - usbmuxd's
 * /var/lib/lockdown, chowned to its unprivileged user (02775) and read as
 * that user - the file gets the directory's owner and group, so the daemon
 * can read and replace it; 0600 stays. A root-owned directory keeps root's
 * files. Failing is an error: pair_store_check_writable finds it before a
 * Pair. */
static int give_to_dir_owner(int fd, const char *dir, const char *tmp, struct lp_errinfo *e)
{
	struct stat st;

	if (geteuid() != 0)
		return 0;
	if (stat(dir, &st) < 0)
		return errno_err(e, "cannot stat", dir);
	if (st.st_uid == 0)
		return 0;
	if (fchown(fd, st.st_uid, st.st_gid) < 0)
		return errno_err(e, "cannot give the directory's owner and group to", tmp);
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
	r = give_to_dir_owner(fd, dir, tmp, e);
	if (r)
		goto fail;
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

#define PAIR_PROBE_NAME ".linkprobe-write-check"
#define PAIR_PROBE_LEN 4096 /* a block: a full disk refuses it */

int pair_store_check_writable(const char *dir, struct lp_errinfo *e)
{
	static const uint8_t zero[PAIR_PROBE_LEN];
	char path[PATH_MAX];
	int r;

	dir = dir_or_default(dir);
	r = join(path, sizeof(path), dir, PAIR_PROBE_NAME, e);
	if (r)
		return r;
	r = pair_write_file_atomic(dir, PAIR_PROBE_NAME, zero, sizeof(zero), false, e);
	if (r)
		return r;
	if (unlink(path) < 0)
		return errno_err(e, "cannot remove", path);
	return 0;
}
