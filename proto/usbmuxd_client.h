/* usbmuxd_client.h - the client side of the usbmuxd daemon's socket
 * protocol: a sans-I/O codec and a small blocking client.
 *
 * For machines where usbmuxd owns the device (the interface is claimed, so
 * the direct libusb path gets BUSY): list devices, open a connection to a
 * device port through the daemon, and read/save pair records the daemon
 * keeps. Reference: doc/protocol.md section 3.
 *
 * Every message, both directions (all fields little-endian):
 *
 *    0               4               8               12              16
 *   +---------------+---------------+---------------+---------------+----
 *   | length (incl. |  version      |  message      |  tag          | body
 *   | this header)  |  1 = plist    |  8 = PLIST    |  echoed       | ...
 *   +---------------+---------------+---------------+---------------+----
 *
 * Requests are version 1 / message 8 with an XML plist dict carrying
 * MessageType (ListDevices, Connect, ReadBUID, ReadPairRecord,
 * SavePairRecord). Replies are plist dicts; {MessageType: Result, Number: n}
 * carries a result code (0 OK, 1 BADCOMMAND, 2 BADDEV, 3 CONNREFUSED,
 * 6 BADVERSION; pair-record commands put errno numbers there, ENOENT 2). A
 * version-0 RESULT (binary u32 body) is accepted too and decoded into the
 * same dict. Reply lengths over UMC_MAX_MESSAGE are refused before any
 * allocation. After a Connect answered 0 the socket is a raw byte pipe to
 * the device port; the daemon expects one request per socket otherwise.
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

#define UMC_HEADER_LEN 16
#define UMC_MAX_MESSAGE \
	(4u << 20)	   /* one message incl. header: a 1 MiB pair record
				      as XML base64 is ~1.4 MiB */
#define UMC_MAX_DEVICES 64 /* DeviceList entries decoded */
#define UMC_DEFAULT_SOCKET "/var/run/usbmuxd"
#define UMC_ENV_ADDRESS "USBMUXD_SOCKET_ADDRESS" /* "UNIX:/path" or "host:port" */
#define UMC_MAX_ADDR 108			 /* sun_path size */
#define UMC_VERSION_PLIST 1
#define UMC_BUID_LEN 36 /* a UUID */

enum umc_msg {
	UMC_MSG_RESULT = 1,
	UMC_MSG_CONNECT = 2,
	UMC_MSG_LISTEN = 3,
	UMC_MSG_DEVICE_ADD = 4,
	UMC_MSG_DEVICE_REMOVE = 5,
	UMC_MSG_DEVICE_PAIRED = 6,
	UMC_MSG_PLIST = 8,
};

enum umc_result {
	UMC_RESULT_OK = 0,
	UMC_RESULT_BADCOMMAND = 1,
	UMC_RESULT_BADDEV = 2,
	UMC_RESULT_CONNREFUSED = 3,
	UMC_RESULT_BADVERSION = 6,
};

struct umc_header {
	uint32_t length; /* whole message */
	uint32_t version;
	uint32_t message;
	uint32_t tag;
};

/* One entry of a DeviceList (Attached dict), validated. */
struct umc_device {
	uint32_t device_id;
	char udid[PAIR_RECORD_MAX_UDID + 1]; /* SerialNumber, sanitized */
	uint16_t product_id;
	uint32_t location_id; /* Linux usbmuxd: bus << 16 | address */
	uint64_t speed_bps;   /* ConnectionSpeed; 0 if absent */
	char conn_type[16];   /* "USB", "Network", sanitized */
};

/* --- codec (no I/O) ------------------------------------------------------ */

/* Encode a plist request: {MessageType: type, client info..., plus every
 * entry of `extra` (a dict, borrowed, may be NULL)} as XML, version 1,
 * message 8, `tag`. *out owned (free()). LP_EPLIST, LP_ETOOBIG, LP_ENOMEM. */
int umc_encode_request(const char *type, plist_t extra, uint32_t tag, uint8_t **out, size_t *len,
		       struct lp_errinfo *e);

/* Decode the 16-byte header at buf (untrusted). LP_ETRUNC if len < 16,
 * LP_EBADMSG if length < 16, LP_ETOOBIG if length > UMC_MAX_MESSAGE. */
int umc_decode_header(const uint8_t *buf, size_t len, struct umc_header *h, struct lp_errinfo *e);

/* Decode a body of h->length - 16 bytes (borrowed, untrusted) into a dict
 * (*out owned): version 1 message 8 -> the plist (XML or binary), which must
 * be a dict; message 1 (RESULT, any version) with a 4-byte body ->
 * {MessageType: "Result", Number: n}. LP_ETRUNC, LP_EPLIST, LP_EPROTO for
 * any other message or version. */
int umc_decode_body(const struct umc_header *h, const uint8_t *body, size_t len, plist_t *out,
		    struct lp_errinfo *e);

/* Decode-only, either direction (for readers of captured traffic): what
 * umc_decode_body decodes, plus the binary (version 0) messages as dicts in
 * the plist protocol's shape: CONNECT -> {MessageType: Connect, DeviceID,
 * PortNumber (network byte order, as in the plist form)}, LISTEN ->
 * {MessageType: Listen}, DEVICE_ADD -> {MessageType: Attached, DeviceID,
 * Properties: {DeviceID, ProductID, SerialNumber}}, DEVICE_REMOVE ->
 * {MessageType: Detached, DeviceID}. *out owned. LP_ETRUNC, LP_EPLIST,
 * LP_EPROTO (a message this does not decode), LP_ENOMEM. */
int umc_decode_message(const struct umc_header *h, const uint8_t *body, size_t len, plist_t *out,
		       struct lp_errinfo *e);
/* true and *num if `reply` is {MessageType: "Result", Number: n}. */
bool umc_reply_result(plist_t reply, uint32_t *num);

/* A result number as an lp_err: 0 -> 0; for device commands 1 LP_EPROTO,
 * 2 LP_ENODEV, 3 LP_ECONNREFUSED, 6 LP_EUNSUPPORTED; for pair-record
 * commands (record = true) the number is an errno (2 -> LP_ENOENT). Other
 * numbers LP_EPROTO. */
int umc_result_to_err(uint32_t num, bool record);
/* "OK", "BADDEV", ... or "?" (device commands). */
const char *umc_result_name(uint32_t num);

/* Decode a ListDevices reply {DeviceList: [...]}: up to `max` entries into
 * out (entries with a missing/mistyped DeviceID or SerialNumber are
 * skipped and counted in *skipped, which may be NULL). LP_EBADMSG if there
 * is no DeviceList array. */
int umc_parse_device_list(plist_t reply, struct umc_device *out, size_t max, size_t *n,
			  size_t *skipped, struct lp_errinfo *e);

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
