/* lp_error.c - project error table, lockdown error-string table, errinfo. */
#include "src/base/lp_error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct err_row {
	int code;
	const char *name;
	const char *text;
	const char *lockdown; /* device's error string, lockdown codes only */
};

static const struct err_row rows[] = {
	{LP_OK, "LP_OK", "success", NULL},
	{LP_ENOMEM, "LP_ENOMEM", "out of memory", NULL},
	{LP_EINVAL, "LP_EINVAL", "invalid argument", NULL},
	{LP_EIO, "LP_EIO", "input/output error", NULL},
	{LP_ETIMEDOUT, "LP_ETIMEDOUT", "timed out", NULL},
	{LP_ETRUNC, "LP_ETRUNC", "truncated input", NULL},
	{LP_EBADMSG, "LP_EBADMSG", "malformed input", NULL},
	{LP_ETOOBIG, "LP_ETOOBIG", "length over limit", NULL},
	{LP_ENODEV, "LP_ENODEV", "device not present", NULL},
	{LP_EACCES, "LP_EACCES", "permission denied", NULL},
	{LP_EBUSY, "LP_EBUSY", "resource busy", NULL},
	{LP_ESTALL, "LP_ESTALL", "endpoint stalled", NULL},
	{LP_EOVERFLOW, "LP_EOVERFLOW", "device sent more data than requested", NULL},
	{LP_ECANCELED, "LP_ECANCELED", "transfer cancelled", NULL},
	{LP_EPROTO, "LP_EPROTO", "protocol error", NULL},
	{LP_ECONNREFUSED, "LP_ECONNREFUSED", "connection refused", NULL},
	{LP_ECONNRESET, "LP_ECONNRESET", "connection reset by peer", NULL},
	{LP_ETLS, "LP_ETLS", "TLS failure", NULL},
	{LP_ECRYPTO, "LP_ECRYPTO", "cryptographic operation failed", NULL},
	{LP_EPLIST, "LP_EPLIST", "invalid property list", NULL},
	{LP_ENOENT, "LP_ENOENT", "not found", NULL},
	{LP_EUNSUPPORTED, "LP_EUNSUPPORTED", "not supported", NULL},
	{LP_EDIVERGED, "LP_EDIVERGED", "request differs from the recording", NULL},
	{LP_EAGAIN, "LP_EAGAIN", "try again", NULL},
	{LP_ECLOSED, "LP_ECLOSED", "stream closed", NULL},
	{LP_EUSB, "LP_EUSB", "USB transfer error", NULL},
	{LP_EFORMAT, "LP_EFORMAT", "unsupported file format", NULL},
	{LP_ELKD_INVALID_RESPONSE, "LP_ELKD_INVALID_RESPONSE", "lockdown: invalid response",
	 "InvalidResponse"},
	{LP_ELKD_MISSING_KEY, "LP_ELKD_MISSING_KEY", "lockdown: request lacks a required key",
	 "MissingKey"},
	{LP_ELKD_MISSING_VALUE, "LP_ELKD_MISSING_VALUE", "lockdown: no value for key",
	 "MissingValue"},
	{LP_ELKD_GET_PROHIBITED, "LP_ELKD_GET_PROHIBITED", "lockdown: value not readable now",
	 "GetProhibited"},
	{LP_ELKD_SET_PROHIBITED, "LP_ELKD_SET_PROHIBITED", "lockdown: value not writable",
	 "SetProhibited"},
	{LP_ELKD_REMOVE_PROHIBITED, "LP_ELKD_REMOVE_PROHIBITED", "lockdown: value not removable",
	 "RemoveProhibited"},
	{LP_ELKD_IMMUTABLE_VALUE, "LP_ELKD_IMMUTABLE_VALUE", "lockdown: value is immutable",
	 "ImmutableValue"},
	{LP_ELKD_PASSWORD_PROTECTED, "LP_ELKD_PASSWORD_PROTECTED",
	 "lockdown: device is locked with a passcode", "PasswordProtected"},
	{LP_ELKD_USER_DENIED_PAIRING, "LP_ELKD_USER_DENIED_PAIRING",
	 "lockdown: user denied pairing", "UserDeniedPairing"},
	{LP_ELKD_PAIRING_DIALOG_PENDING, "LP_ELKD_PAIRING_DIALOG_PENDING",
	 "lockdown: Trust dialog not answered yet", "PairingDialogResponsePending"},
	{LP_ELKD_MISSING_HOST_ID, "LP_ELKD_MISSING_HOST_ID", "lockdown: HostID missing",
	 "MissingHostID"},
	{LP_ELKD_INVALID_HOST_ID, "LP_ELKD_INVALID_HOST_ID",
	 "lockdown: device does not know this host", "InvalidHostID"},
	{LP_ELKD_SESSION_ACTIVE, "LP_ELKD_SESSION_ACTIVE", "lockdown: session already active",
	 "SessionActive"},
	{LP_ELKD_SESSION_INACTIVE, "LP_ELKD_SESSION_INACTIVE", "lockdown: request needs a session",
	 "SessionInactive"},
	{LP_ELKD_MISSING_SESSION_ID, "LP_ELKD_MISSING_SESSION_ID", "lockdown: SessionID missing",
	 "MissingSessionID"},
	{LP_ELKD_INVALID_SESSION_ID, "LP_ELKD_INVALID_SESSION_ID", "lockdown: unknown SessionID",
	 "InvalidSessionID"},
	{LP_ELKD_MISSING_SERVICE, "LP_ELKD_MISSING_SERVICE", "lockdown: Service missing",
	 "MissingService"},
	{LP_ELKD_INVALID_SERVICE, "LP_ELKD_INVALID_SERVICE",
	 "lockdown: unknown or unavailable service", "InvalidService"},
	{LP_ELKD_SERVICE_LIMIT, "LP_ELKD_SERVICE_LIMIT",
	 "lockdown: too many instances of the service", "ServiceLimit"},
	{LP_ELKD_MISSING_PAIR_RECORD, "LP_ELKD_MISSING_PAIR_RECORD",
	 "lockdown: pair record missing", "MissingPairRecord"},
	{LP_ELKD_SAVE_PAIR_RECORD_FAILED, "LP_ELKD_SAVE_PAIR_RECORD_FAILED",
	 "lockdown: device could not store the pairing", "SavePairRecordFailed"},
	{LP_ELKD_INVALID_PAIR_RECORD, "LP_ELKD_INVALID_PAIR_RECORD",
	 "lockdown: pair record rejected", "InvalidPairRecord"},
	{LP_ELKD_INVALID_ACTIVATION_RECORD, "LP_ELKD_INVALID_ACTIVATION_RECORD",
	 "lockdown: invalid activation record", "InvalidActivationRecord"},
	{LP_ELKD_MISSING_ACTIVATION_RECORD, "LP_ELKD_MISSING_ACTIVATION_RECORD",
	 "lockdown: activation record missing", "MissingActivationRecord"},
	{LP_ELKD_SERVICE_PROHIBITED, "LP_ELKD_SERVICE_PROHIBITED", "lockdown: service not allowed",
	 "ServiceProhibited"},
	{LP_ELKD_ESCROW_LOCKED, "LP_ELKD_ESCROW_LOCKED", "lockdown: escrow bag locked",
	 "EscrowLocked"},
	{LP_ELKD_PAIRING_PROHIBITED, "LP_ELKD_PAIRING_PROHIBITED",
	 "lockdown: pairing not allowed over this connection",
	 "PairingProhibitedOverThisConnection"},
	{LP_ELKD_FMIP_PROTECTED, "LP_ELKD_FMIP_PROTECTED", "lockdown: blocked by Find My",
	 "FMiPProtected"},
	{LP_ELKD_MC_PROTECTED, "LP_ELKD_MC_PROTECTED",
	 "lockdown: blocked by a configuration profile", "MCProtected"},
	{LP_ELKD_MC_CHALLENGE_REQUIRED, "LP_ELKD_MC_CHALLENGE_REQUIRED",
	 "lockdown: supervised pairing challenge required", "MCChallengeRequired"},
	{LP_ELKD_INVALID_CONNECTION, "LP_ELKD_INVALID_CONNECTION", "lockdown: invalid connection",
	 "InvalidConnection"},
	{LP_ELKD_UNKNOWN, "LP_ELKD_UNKNOWN", "lockdown: unknown error", NULL},
};

static const struct err_row *find(int code)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (rows[i].code == code)
			return &rows[i];
	return NULL;
}

const char *lp_strerror(int err)
{
	const struct err_row *r = find(err);
	return r ? r->text : "unknown error";
}

const char *lp_errname(int err)
{
	const struct err_row *r = find(err);
	return r ? r->name : "LP_E?";
}

int lp_lockdown_error_code(const char *s)
{
	if (!s)
		return LP_ELKD_UNKNOWN;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (rows[i].lockdown && strcmp(rows[i].lockdown, s) == 0)
			return rows[i].code;
	return LP_ELKD_UNKNOWN;
}

const char *lp_lockdown_error_name(int err)
{
	const struct err_row *r = find(err);
	return r ? r->lockdown : NULL;
}

int lp_err_set(struct lp_errinfo *e, int code, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		e->code = code;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

int lp_err_prefix(struct lp_errinfo *e, const char *fmt, ...)
{
	char pre[LP_ERRINFO_MSG], old[LP_ERRINFO_MSG];
	va_list ap;

	if (!e)
		return 0;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	snprintf(e->msg, sizeof(e->msg), "%s: %s", pre, old);
	return e->code;
}

int lp_err_from_errno(int errnum)
{
	switch (errnum) {
	case 0:
		return LP_OK;
	case ENOMEM:
		return LP_ENOMEM;
	case EINVAL:
		return LP_EINVAL;
	case ETIMEDOUT:
		return LP_ETIMEDOUT;
	case ENODEV:
	case ENXIO:
	case ESHUTDOWN:
		return LP_ENODEV;
	case EACCES:
	case EPERM:
	case EROFS:
		return LP_EACCES;
	case EBUSY:
		return LP_EBUSY;
	case EPIPE:
		return LP_ESTALL;
	case EOVERFLOW:
		return LP_EOVERFLOW;
	case ENOENT:
		return LP_ENOENT;
	case ECONNREFUSED:
		return LP_ECONNREFUSED;
	case ECONNRESET:
		return LP_ECONNRESET;
	case EAGAIN:
		return LP_EAGAIN;
	case EPROTO:
		return LP_EPROTO;
	default:
		return LP_EIO;
	}
}
