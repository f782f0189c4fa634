/* pair_store.h - this host's pair-record store on disk: `<dir>/<UDID>.plist`
 * and `<dir>/SystemConfiguration.plist` (proto/pair_record.h has the codec).
 *
 * Files are untrusted input: size capped before reading, then decoded by
 * pair_record_parse. Writes are atomic (temp file + fsync + rename +
 * directory fsync), mode 0600; a missing directory is created 0700.
 *
 * Errors tell the host's two faults apart (src/diag's diag_rule_pair_store):
 *   corrupt  the file is there and readable but does not decode:
 *            LP_EPLIST, LP_EBADMSG, LP_ETOOBIG (e->msg names the path and
 *            the key or cap);
 *   access   reading or writing failed: LP_EACCES (EACCES, EPERM, EROFS),
 *            LP_ENOENT (a missing file or directory), LP_EIO (ENOSPC, EIO,
 *            ENOTDIR, not a regular file, ...), LP_EINVAL (a path too long,
 *            a UDID that is no file name). e->msg names the path, the errno
 *            (text and name) and, for a permission error, the directory's
 *            owner and mode and the uid linkprobe runs as.
 */
#ifndef LP_PAIR_STORE_H
#define LP_PAIR_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "src/base/lp_error.h"
#include "proto/pair_record.h"

#define PAIR_RECORD_DEFAULT_DIR "/var/lib/lockdown"

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

/* Write `name` in `dir` (created 0700 if missing) atomically, mode 0600
 * (as root into a directory another user owns: that owner's and group's):
 * temp file in the same directory, fsync, rename (or link if `exclusive`:
 * LP_EBUSY when the file already exists), fsync the directory. The old file
 * is intact on any failure, and the temp file is removed - unless the
 * process is killed between creating and renaming it: then ".NAME.XXXXXX"
 * stays in `dir`, and the next write of NAME removes those older than 60 s. For every file that
 * holds key material (pair records, SystemConfiguration, the simulated
 * device's state). */
int pair_write_file_atomic(const char *dir, const char *name, const void *data, size_t len,
			   bool exclusive, struct lp_errinfo *e);

/* Can records be written in `dir`? Creates the directory (0700) if it is
 * missing, then writes, fsyncs and removes a small probe file - before a
 * Pair, so a store that cannot keep the new record is found before the user
 * taps Trust. 0, or the error as pair_write_file_atomic gives it. */
int pair_store_check_writable(const char *dir, struct lp_errinfo *e);

#endif
