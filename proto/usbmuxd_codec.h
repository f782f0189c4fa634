/* usbmuxd_codec.h - the messages of the usbmuxd daemon's client socket
 * protocol, both directions, sans I/O (the client is usbmuxd_client.h; the
 * capture reader decodes relayed traffic with the same codec).
 * Reference: doc/protocol.md section 3.
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
 */
#ifndef LP_USBMUXD_CODEC_H
#define LP_USBMUXD_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <plist/plist.h>

#include "src/base/lp_error.h"
#include "proto/pair_record.h"

#define UMC_HEADER_LEN 16
#define UMC_MAX_MESSAGE \
	(4u << 20)	   /* one message incl. header: a 1 MiB pair record
				      as XML base64 is ~1.4 MiB */
#define UMC_MAX_DEVICES 64 /* DeviceList entries decoded */
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

/* Wipe a PairRecordData value (a whole record, private keys included) and
 * the record's own secret keys if `d` is one, before plist_free. */
void umc_wipe_record_data(plist_t d);

#endif
