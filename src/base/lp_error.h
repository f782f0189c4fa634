/* lp_error.h - the one project-wide error enum, its messages, and an optional
 * error context that carries detail.
 *
 * Every function in linkprobe that can fail returns 0 (LP_OK) or a negative
 * enum lp_err. Errors from libusb, errno, OpenSSL and libplist are converted
 * where they occur. Lockdown error strings sent by the device ("InvalidHostID",
 * ...) each map to one LP_ELKD_* code (see lp_lockdown_error_code()).
 *
 * Functions that want to report detail take a `struct lp_errinfo *` that may be
 * NULL; it is written only on failure (lp_err_set). */
#ifndef LP_ERROR_H
#define LP_ERROR_H

#include <stddef.h>

enum lp_err {
	LP_OK = 0,
	LP_ENOMEM = -1,	       /* out of memory */
	LP_EINVAL = -2,	       /* bad argument (caller bug or bad option) */
	LP_EIO = -3,	       /* generic I/O failure */
	LP_ETIMEDOUT = -4,     /* a bounded wait ran out */
	LP_ETRUNC = -5,	       /* input ended before the structure did */
	LP_EBADMSG = -6,       /* input contradicts the format */
	LP_ETOOBIG = -7,       /* a length is over a named cap */
	LP_ENODEV = -8,	       /* device gone / not present */
	LP_EACCES = -9,	       /* permission denied */
	LP_EBUSY = -10,	       /* resource held by someone else */
	LP_ESTALL = -11,       /* endpoint stalled */
	LP_EOVERFLOW = -12,    /* device sent more than asked for */
	LP_ECANCELED = -13,    /* transfer cancelled */
	LP_EPROTO = -14,       /* protocol violation by the peer */
	LP_ECONNREFUSED = -15, /* mux connection refused (RST to SYN) */
	LP_ECONNRESET = -16,   /* mux connection reset by peer */
	LP_ETLS = -17,	       /* TLS handshake or record failure */
	LP_ECRYPTO = -18,      /* key / certificate operation failed */
	LP_EPLIST = -19,       /* plist could not be parsed or built */
	LP_ENOENT = -20,       /* file or record not found */
	LP_EUNSUPPORTED = -21, /* operation not supported by this backend */
	LP_EDIVERGED = -22,    /* replay: host request differs from recording */
	LP_EAGAIN = -23,       /* nothing yet; try again (non-blocking APIs) */
	LP_ECLOSED = -24,      /* stream closed in an orderly way */
	LP_EUSB = -25,	       /* other USB transfer error */
	LP_EFORMAT = -26,      /* unsupported file format / link type */

	/* Lockdown errors: one per error string lockdownd sends. */
	LP_ELKD_FIRST = -100,
	LP_ELKD_INVALID_RESPONSE = -100,
	LP_ELKD_MISSING_KEY = -101,
	LP_ELKD_MISSING_VALUE = -102,
	LP_ELKD_GET_PROHIBITED = -103,
	LP_ELKD_SET_PROHIBITED = -104,
	LP_ELKD_REMOVE_PROHIBITED = -105,
	LP_ELKD_IMMUTABLE_VALUE = -106,
	LP_ELKD_PASSWORD_PROTECTED = -107,
	LP_ELKD_USER_DENIED_PAIRING = -108,
	LP_ELKD_PAIRING_DIALOG_PENDING = -109,
	LP_ELKD_MISSING_HOST_ID = -110,
	LP_ELKD_INVALID_HOST_ID = -111,
	LP_ELKD_SESSION_ACTIVE = -112,
	LP_ELKD_SESSION_INACTIVE = -113,
	LP_ELKD_MISSING_SESSION_ID = -114,
	LP_ELKD_INVALID_SESSION_ID = -115,
	LP_ELKD_MISSING_SERVICE = -116,
	LP_ELKD_INVALID_SERVICE = -117,
	LP_ELKD_SERVICE_LIMIT = -118,
	LP_ELKD_MISSING_PAIR_RECORD = -119,
	LP_ELKD_SAVE_PAIR_RECORD_FAILED = -120,
	LP_ELKD_INVALID_PAIR_RECORD = -121,
	LP_ELKD_INVALID_ACTIVATION_RECORD = -122,
	LP_ELKD_MISSING_ACTIVATION_RECORD = -123,
	LP_ELKD_SERVICE_PROHIBITED = -124,
	LP_ELKD_ESCROW_LOCKED = -125,
	LP_ELKD_PAIRING_PROHIBITED = -126,
	LP_ELKD_FMIP_PROTECTED = -127,
	LP_ELKD_MC_PROTECTED = -128,
	LP_ELKD_MC_CHALLENGE_REQUIRED = -129,
	LP_ELKD_INVALID_CONNECTION = -130,
	LP_ELKD_UNKNOWN = -131, /* an error string not in the table */
	LP_ELKD_LAST = -131,
};

/* Short English description of an lp_err ("device not present"). Never NULL. */
const char *lp_strerror(int err);

/* Symbolic name of an lp_err ("LP_ENODEV"). Never NULL. */
const char *lp_errname(int err);

/* Lockdown error string -> LP_ELKD_* code (LP_ELKD_UNKNOWN if not in the table).
 * `s` borrowed, may be NULL (-> LP_ELKD_UNKNOWN). */
int lp_lockdown_error_code(const char *s);

/* LP_ELKD_* code -> the device's error string ("InvalidHostID"), NULL if
 * `err` is not a lockdown code or is LP_ELKD_UNKNOWN. */
const char *lp_lockdown_error_name(int err);

static inline int lp_is_lockdown_error(int err)
{
	return err <= LP_ELKD_FIRST && err >= LP_ELKD_LAST;
}

#define LP_ERRINFO_MSG 512

/* Optional detail. `code` is the lp_err; `msg` a sentence of evidence. */
struct lp_errinfo {
	int code;
	char msg[LP_ERRINFO_MSG];
};

/* Write `code` and a formatted message into `e` (if non-NULL); returns `code`
 * so callers can `return lp_err_set(e, LP_EPROTO, "...")`. */
int lp_err_set(struct lp_errinfo *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix an existing message: "ctx: old message". Returns e ? e->code : 0. */
int lp_err_prefix(struct lp_errinfo *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Convert a positive errno value to an lp_err. */
int lp_err_from_errno(int errnum);

#endif
