/* usbmuxd_client.h - a small blocking client of the usbmuxd daemon.
 *
 * For machines where usbmuxd owns the device (the interface is claimed, so
 * the direct libusb path gets BUSY): list devices, open a connection to a
 * device port through the daemon, and read/save pair records the daemon
 * keeps. Messages: usbmuxd_codec.h; the socket: usbmuxd_sock.h. Reference:
 * doc/protocol.md section 3.
 *
 * The client opens one socket per request, on a UNIX path or a TCP
 * host:port, and bounds every wait with an absolute deadline on the clock
 * it was given (poll). It never prints; it logs through the lp_log handed in.
 */
#ifndef LP_USBMUXD_CLIENT_H
#define LP_USBMUXD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <plist/plist.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_error.h"
#include "src/base/lp_log.h"
#include "proto/pair_record.h"
#include "proto/stream.h"
#include "proto/usbmuxd_codec.h"
#include "proto/usbmuxd_sock.h"

/* --- blocking client ----------------------------------------------------- */

struct umc;

/* Client for the daemon at `addr` ("UNIX:/path", "/path", "host:port";
 * NULL = $USBMUXD_SOCKET_ADDRESS, else UMC_DEFAULT_SOCKET). Only parses; no
 * socket is opened yet. clock and log borrowed (log may be NULL). LP_EINVAL
 * for an address that does not parse. *out owned (umc_free). */
int umc_new(const char *addr, struct lp_clock *clock, const struct lp_log *log, struct umc **out,
	    struct lp_errinfo *e);
void umc_free(struct umc *c);
/* The address for messages: "/var/run/usbmuxd" or "host:port". Borrowed. */
const char *umc_addr(const struct umc *c);

/* The pid of the process serving the daemon's UNIX socket, or 0 (see
 * umc_sock_peer_pid). */
long umc_peer_pid(const struct umc *c);

/* Is a daemon listening? Opens a socket and closes it: 0, or the socket
 * errors of umc_request (LP_ENOENT: not running). */
int umc_probe(struct umc *c, uint64_t deadline, struct lp_errinfo *e);

/* One request on a fresh socket; *reply owned. Socket errors: LP_ENOENT
 * when no daemon listens at the address ("usbmuxd is not running at ..."),
 * LP_EACCES, LP_ETIMEDOUT at the deadline, LP_ECLOSED if the daemon hung up.
 * Reply errors as umc_decode_*; LP_EPROTO if the tag is not echoed. */
int umc_request(struct umc *c, const char *type, plist_t extra, plist_t *reply, uint64_t deadline,
		struct lp_errinfo *e);

/* ListDevices: up to max entries (see umc_parse_device_list). */
int umc_list_devices(struct umc *c, struct umc_device *out, size_t max, size_t *n,
		     uint64_t deadline, struct lp_errinfo *e);

/* Connect to `port` (host order) of device `device_id`. On success *out
 * (owned; lp_stream_close closes the socket) is the raw pipe to the device
 * port, its clock the client's. LP_ECONNREFUSED (result 3), LP_ENODEV (2). */
int umc_connect(struct umc *c, uint32_t device_id, uint16_t port, uint64_t deadline,
		struct lp_stream **out, struct lp_errinfo *e);

/* ReadBUID: the daemon's SystemBUID (1..UMC_BUID_LEN chars, sanitized). */
int umc_read_buid(struct umc *c, char out[UMC_BUID_LEN + 1], uint64_t deadline,
		  struct lp_errinfo *e);

/* ReadPairRecord for `udid`, decoded by pair_record_parse; *out owned with
 * its udid set. LP_ENOENT when the daemon has no record. */
int umc_read_pair_record(struct umc *c, const char *udid, struct pair_record **out,
			 uint64_t deadline, struct lp_errinfo *e);

/* SavePairRecord: rec (borrowed) as a binary plist under rec->udid, with
 * DeviceID `device_id` (0 = omit) so the daemon can tell its listeners. */
int umc_save_pair_record(struct umc *c, const struct pair_record *rec, uint32_t device_id,
			 uint64_t deadline, struct lp_errinfo *e);

#endif
