/* lp_secret.c - the one list of secret plist keys; see lp_secret.h. */
#include "src/base/lp_secret.h"

#include <string.h>

const char *const lp_secret_keys[] = {
	"EscrowBag",	    /* Pair reply, pair record, StartService */
	"HostPrivateKey",   /* pair record */
	"RootPrivateKey",   /* pair record (some hosts even send it in Pair) */
	"DevicePrivateKey", /* the simulated iPhone's state file */
	NULL,
};

size_t lp_secret_key_count(void)
{
	return sizeof(lp_secret_keys) / sizeof(lp_secret_keys[0]) - 1;
}

bool lp_secret_key_match(const char *name, size_t len)
{
	for (size_t i = 0; lp_secret_keys[i]; i++)
		if (strlen(lp_secret_keys[i]) == len && memcmp(lp_secret_keys[i], name, len) == 0)
			return true;
	return false;
}
