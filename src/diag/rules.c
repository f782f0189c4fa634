/* rules.c - evidence -> verdict rules shared by live commands and the
 * capture analyzer (see rules.h). */
#include "src/diag/rules.h"

#include "src/base/lp_error.h"

enum diag_verdict diag_verdict_for_err(int err)
{
	switch (err) {
	case LP_ENODEV: return DIAG_V_DISCONNECTED;
	case LP_EACCES: return DIAG_V_ACCESS_DENIED;
	case LP_EBUSY: return DIAG_V_DEVICE_BUSY;
	case LP_ETLS: return DIAG_V_TLS_FAILED;
	case LP_ELKD_PASSWORD_PROTECTED: return DIAG_V_LOCKED;
	case LP_ELKD_USER_DENIED_PAIRING: return DIAG_V_DENIED;
	case LP_ELKD_PAIRING_DIALOG_PENDING: return DIAG_V_TRUST_PENDING;
	case LP_ELKD_INVALID_HOST_ID: return DIAG_V_STALE_TRUST;
	case LP_EPROTO: case LP_EBADMSG: case LP_EPLIST: case LP_ETOOBIG: case LP_ETRUNC:
	case LP_ECONNREFUSED: case LP_ECONNRESET: case LP_ECLOSED:
		return DIAG_V_PROTOCOL_ERROR;
	case LP_ESTALL: case LP_EOVERFLOW: case LP_EUSB: case LP_EIO: case LP_ETIMEDOUT:
	case LP_ECANCELED:
		return DIAG_V_USB_ERROR;
	case LP_OK: case LP_ENOMEM: case LP_EINVAL: case LP_ECRYPTO: case LP_ENOENT:
	case LP_EUNSUPPORTED: case LP_EDIVERGED: case LP_EAGAIN: case LP_EFORMAT:
		return DIAG_V_NONE;
	default:
		return lp_is_lockdown_error(err) ? DIAG_V_PROTOCOL_ERROR : DIAG_V_USB_ERROR;
	}
}
