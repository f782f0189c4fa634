/* sim_values.c - the simulated iPhone's lockdown values: the domain-less keys
 * GetValue answers (which of them before a session), and the domains it
 * knows. Identity comes from struct slkd_identity; the rest describes an
 * iPhone 8 Plus on iOS 16.7.2.
 *
 * Reference: doc/protocol.md 4.4 (GetValue keys and domains) and section 0
 * (a refused key answers GetProhibited, e.g. IDAMCapability before a session).
 */
#include "src/device/sim_lockdownd.h"

#include <string.h>

#include <plist/plist.h>

#define PRODUCT_TYPE "iPhone10,6"
#define PRODUCT_VERSION "16.7.2"
#define BUILD_VERSION "20H115"

/* Domain-less keys and whether they are readable without a session. */
static const struct {
	const char *key;
	bool pub;
} vals[] = {
	{"UniqueDeviceID", true},     {"ProductType", true},
	{"ProductVersion", true},     {"ProductName", true},
	{"BuildVersion", true},	      {"DeviceClass", true},
	{"DeviceName", true},	      {"DeviceColor", true},
	{"HardwareModel", true},      {"CPUArchitecture", true},
	{"WiFiAddress", true},	      {"DevicePublicKey", true},
	{"SerialNumber", false},      {"UniqueChipID", false},
	{"ActivationState", false},   {"TimeIntervalSince1970", false},
	{"BluetoothAddress", false},  {"ModelNumber", false},
	{"RegionInfo", false},	      {"HardwarePlatform", false},
	{"PasswordProtected", false}, {"ChipID", false},
	{"FirmwareVersion", false},   {"TimeZone", false},
};

static int val_index(const char *key)
{
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		if (strcmp(vals[i].key, key) == 0)
			return (int)i;
	return -1;
}

static plist_t val_make(const struct slkd_device *d, const char *key, uint64_t now)
{
	const struct slkd_identity *id = &d->id;

	if (!strcmp(key, "UniqueDeviceID"))
		return plist_new_string(id->udid);
	if (!strcmp(key, "ProductType"))
		return plist_new_string(PRODUCT_TYPE);
	if (!strcmp(key, "ProductVersion"))
		return plist_new_string(PRODUCT_VERSION);
	if (!strcmp(key, "ProductName"))
		return plist_new_string("iPhone OS");
	if (!strcmp(key, "BuildVersion"))
		return plist_new_string(BUILD_VERSION);
	if (!strcmp(key, "DeviceClass"))
		return plist_new_string("iPhone");
	if (!strcmp(key, "DeviceName"))
		return plist_new_string(id->name);
	if (!strcmp(key, "DeviceColor"))
		return plist_new_string("1");
	if (!strcmp(key, "HardwareModel"))
		return plist_new_string("D221AP");
	if (!strcmp(key, "CPUArchitecture"))
		return plist_new_string("arm64");
	if (!strcmp(key, "WiFiAddress"))
		return plist_new_string(id->wifi);
	if (!strcmp(key, "DevicePublicKey"))
		return plist_new_data(d->pubkey_pem, d->pubkey_pem_len);
	if (!strcmp(key, "SerialNumber"))
		return plist_new_string(id->serial);
	if (!strcmp(key, "UniqueChipID"))
		return plist_new_uint(id->ecid);
	if (!strcmp(key, "ActivationState"))
		return plist_new_string("Activated");
	if (!strcmp(key, "TimeIntervalSince1970"))
		return plist_new_real((double)lp_clock_wall(d->clock, now) / 1e9);
	if (!strcmp(key, "BluetoothAddress"))
		return plist_new_string(id->bt);
	if (!strcmp(key, "ModelNumber"))
		return plist_new_string("MQ8L2");
	if (!strcmp(key, "RegionInfo"))
		return plist_new_string("LL/A");
	if (!strcmp(key, "HardwarePlatform"))
		return plist_new_string("t8015");
	if (!strcmp(key, "PasswordProtected"))
		return plist_new_bool(d->pol.locked);
	if (!strcmp(key, "ChipID"))
		return plist_new_uint(0x8015);
	if (!strcmp(key, "FirmwareVersion"))
		return plist_new_string("iBoot-8422.142.2");
	if (!strcmp(key, "TimeZone"))
		return plist_new_string("Europe/Berlin");
	return NULL;
}

static plist_t domain_make(const struct slkd_device *d, const char *domain)
{
	plist_t v = plist_new_dict();

	if (!strcmp(domain, "com.apple.mobile.battery")) {
		plist_dict_set_item(v, "BatteryCurrentCapacity", plist_new_uint(87));
		plist_dict_set_item(v, "BatteryIsCharging", plist_new_bool(1));
		plist_dict_set_item(v, "ExternalChargeCapable", plist_new_bool(1));
		plist_dict_set_item(v, "ExternalConnected", plist_new_bool(1));
		plist_dict_set_item(v, "FullyCharged", plist_new_bool(0));
		plist_dict_set_item(v, "GasGaugeCapability", plist_new_bool(1));
		plist_dict_set_item(v, "HasBattery", plist_new_bool(1));
	} else if (!strcmp(domain, "com.apple.disk_usage")) {
		plist_dict_set_item(v, "TotalDiskCapacity", plist_new_uint(64000000000ull));
		plist_dict_set_item(v, "TotalDataCapacity", plist_new_uint(52000000000ull));
		plist_dict_set_item(v, "TotalDataAvailable", plist_new_uint(21000000000ull));
	} else if (!strcmp(domain, "com.apple.international")) {
		plist_dict_set_item(v, "Language", plist_new_string("en"));
		plist_dict_set_item(v, "Locale", plist_new_string("en_US"));
	} else if (!strcmp(domain, "com.apple.security.mac.amfi")) {
		plist_dict_set_item(v, "DeveloperModeStatus", plist_new_bool(0));
	} else if (!strcmp(domain, "com.apple.mobile.wireless_lockdown")) {
		plist_dict_set_item(v, "EnableWifiConnections", plist_new_bool(0));
	} else {
		plist_free(v);
		return NULL;
	}
	(void)d;
	return v;
}

int slkd_value(const struct slkd_device *d, const char *domain, const char *key, bool session,
	       uint64_t now, plist_t *out)
{
	*out = NULL;
	if (domain) {
		plist_t all, n;

		if (!session)
			return LP_ELKD_GET_PROHIBITED;
		all = domain_make(d, domain);
		if (!all)
			return LP_ELKD_MISSING_VALUE;
		if (!key) {
			*out = all;
			return 0;
		}
		n = plist_dict_get_item(all, key);
		*out = n ? plist_copy(n) : NULL;
		plist_free(all);
		return *out ? 0 : LP_ELKD_MISSING_VALUE;
	}
	if (key) {
		int i = val_index(key);

		/* before a session a key is refused whether or not it exists
		 * (IDAMCapability on the recorded device: GetProhibited) */
		if (i < 0)
			return session ? LP_ELKD_MISSING_VALUE : LP_ELKD_GET_PROHIBITED;
		if (!vals[i].pub && !session)
			return LP_ELKD_GET_PROHIBITED;
		*out = val_make(d, key, now);
		return *out ? 0 : LP_ELKD_MISSING_VALUE;
	}
	*out = plist_new_dict();
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		if (vals[i].pub || session)
			plist_dict_set_item(*out, vals[i].key, val_make(d, vals[i].key, now));
	return 0;
}
