/* version.c - `linkprobe --version` / `-V`: linkprobe's version and the
 * versions of the libraries it runs with.
 *
 * Run-time versions where the library reports one (libusb_get_version,
 * pcap_lib_version, OpenSSL_version, json_c_version): that is what is loaded,
 * which may differ from what we were built against. libplist 2.x (Debian 12)
 * has no run-time version call, so its line is the pkg-config version at
 * build time, and says so. */
#include <stdio.h>

#include <json-c/json.h>
#include <libusb.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <pcap/pcap.h>

#include "src/cli/app.h"

#ifndef LP_LIBPLIST_BUILD_VERSION
#define LP_LIBPLIST_BUILD_VERSION "unknown"
#endif

void out_version(FILE *f)
{
	const struct libusb_version *u = libusb_get_version();

	fprintf(f, "linkprobe %s\n", LP_VERSION);
	fprintf(f, "  libusb    %u.%u.%u.%u%s\n", u->major, u->minor, u->micro, u->nano,
		u->rc ? u->rc : "");
	fprintf(f, "  libpcap   %s\n", pcap_lib_version());
	fprintf(f, "  libplist  %s (built against; libplist has no run-time version call)\n",
		LP_LIBPLIST_BUILD_VERSION);
	fprintf(f, "  OpenSSL   %s (built against %s)\n", OpenSSL_version(OPENSSL_VERSION),
		OPENSSL_VERSION_TEXT);
	fprintf(f, "  json-c    %s (built against %s)\n", json_c_version(), JSON_C_VERSION);
}
