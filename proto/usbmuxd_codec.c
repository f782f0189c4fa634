/* usbmuxd_codec.c - the usbmuxd client protocol's messages, no I/O
 * (usbmuxd_codec.h).
 *
 * Protocol and facts: doc/protocol.md section 3 (usbmuxd src/usbmuxd-proto.h,
 * src/client.c; libusbmuxd; go-ios). The one quirk worth repeating: Connect's
 * PortNumber is the port in network byte order read as a host integer
 * (htons(62078) on a little-endian host). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "src/base/lp_cursor.h"
#include "src/base/lp_str.h"
#include "proto/lockdown_frame.h"
#include "proto/usbmuxd_codec.h"

#define UMC_PROG_NAME "linkprobe"
#define UMC_LIBUSBMUX_VERSION 3 /* what libusbmuxd announces */

/* Wipe a PairRecordData value (a whole record, private keys included) and
 * the record's own secret keys if the dict is one, before plist_free. */
void umc_wipe_record_data(plist_t d)
{
	plist_t n = d ? plist_dict_get_item(d, "PairRecordData") : NULL;
	uint64_t len = 0;
	const char *p;

	if (n && plist_get_node_type(n) == PLIST_DATA && (p = plist_get_data_ptr(n, &len)) && len)
		OPENSSL_cleanse((void *)p, (size_t)len);
	pair_plist_wipe_secrets(d);
}

int umc_encode_request(const char *type, plist_t extra, uint32_t tag, uint8_t **out, size_t *len,
		       struct lp_errinfo *e)
{
	plist_t d = plist_new_dict();
	char *xml = NULL;
	uint32_t xlen = 0;
	struct lp_wr w;

	if (!d)
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	plist_dict_set_item(d, "MessageType", plist_new_string(type));
	plist_dict_set_item(d, "BundleID", plist_new_string("org.linkprobe"));
	plist_dict_set_item(d, "ClientVersionString", plist_new_string(UMC_PROG_NAME));
	plist_dict_set_item(d, "ProgName", plist_new_string(UMC_PROG_NAME));
	plist_dict_set_item(d, "kLibUSBMuxVersion", plist_new_uint(UMC_LIBUSBMUX_VERSION));
	if (extra)
		plist_dict_merge(&d, extra);
	plist_to_xml(d, &xml, &xlen);
	umc_wipe_record_data(d);
	plist_free(d);
	if (!xml || !xlen) {
		plist_to_xml_free(xml);
		return lp_err_set(e, LP_EPLIST, "cannot encode the %s request as XML", type);
	}
	if (xlen > UMC_MAX_MESSAGE - UMC_HEADER_LEN) {
		OPENSSL_cleanse(xml, xlen);
		plist_to_xml_free(xml);
		return lp_err_set(e, LP_ETOOBIG, "%s request of %u bytes is over the %u-byte cap",
				  type, xlen, UMC_MAX_MESSAGE);
	}
	lp_wr_init_dyn(&w, UMC_MAX_MESSAGE);
	lp_wr_le32(&w, UMC_HEADER_LEN + xlen);
	lp_wr_le32(&w, UMC_VERSION_PLIST);
	lp_wr_le32(&w, UMC_MSG_PLIST);
	lp_wr_le32(&w, tag);
	lp_wr_bytes(&w, xml, xlen);
	OPENSSL_cleanse(xml, xlen); /* SavePairRecord: the record, keys included */
	plist_to_xml_free(xml);
	if (!lp_wr_ok(&w)) {
		int err = w.err;
		if (w.buf)
			OPENSSL_cleanse(w.buf, w.cap);
		lp_wr_release(&w);
		return lp_err_set(e, err, "encoding the %s request: %s", type, lp_strerror(err));
	}
	*out = lp_wr_steal(&w, len);
	return 0;
}

int umc_decode_header(const uint8_t *buf, size_t len, struct umc_header *h, struct lp_errinfo *e)
{
	struct lp_rd r;
	struct umc_header t;

	lp_rd_init(&r, buf, len);
	t.length = lp_rd_le32(&r);
	t.version = lp_rd_le32(&r);
	t.message = lp_rd_le32(&r);
	t.tag = lp_rd_le32(&r);
	if (!lp_rd_ok(&r))
		return lp_err_set(e, LP_ETRUNC, "usbmuxd header: %zu of %d bytes", len,
				  UMC_HEADER_LEN);
	if (t.length < UMC_HEADER_LEN)
		return lp_err_set(e, LP_EBADMSG,
				  "usbmuxd header: length %u is shorter than the header", t.length);
	if (t.length > UMC_MAX_MESSAGE)
		return lp_err_set(e, LP_ETOOBIG,
				  "usbmuxd message of %u bytes is over the %u-byte cap", t.length,
				  UMC_MAX_MESSAGE);
	*h = t;
	return 0;
}

int umc_decode_body(const struct umc_header *h, const uint8_t *body, size_t len, plist_t *out,
		    struct lp_errinfo *e)
{
	plist_t d = NULL;

	if (len < h->length - UMC_HEADER_LEN)
		return lp_err_set(e, LP_ETRUNC, "usbmuxd message body: %zu of %u bytes", len,
				  h->length - UMC_HEADER_LEN);
	len = h->length - UMC_HEADER_LEN;
	if (h->message == UMC_MSG_RESULT) {
		struct lp_rd r;
		uint32_t num;

		lp_rd_init(&r, body, len);
		num = lp_rd_le32(&r);
		if (!lp_rd_ok(&r))
			return lp_err_set(e, LP_ETRUNC, "usbmuxd RESULT body: %zu of 4 bytes", len);
		d = plist_new_dict();
		if (!d)
			return lp_err_set(e, LP_ENOMEM, "out of memory");
		plist_dict_set_item(d, "MessageType", plist_new_string("Result"));
		plist_dict_set_item(d, "Number", plist_new_uint(num));
		*out = d;
		return 0;
	}
	if (h->version != UMC_VERSION_PLIST || h->message != UMC_MSG_PLIST)
		return lp_err_set(e, LP_EPROTO,
				  "usbmuxd sent version %u message %u, expected a plist (1/8)",
				  h->version, h->message);
	if (lkd_plist_decode(body, len, &d) || !d)
		return lp_err_set(e, LP_EPLIST, "usbmuxd reply of %zu bytes is not a plist", len);
	if (plist_get_node_type(d) != PLIST_DICT) {
		plist_free(d);
		return lp_err_set(e, LP_EPLIST, "usbmuxd reply is a plist but not a dictionary");
	}
	*out = d;
	return 0;
}

int umc_decode_message(const struct umc_header *h, const uint8_t *body, size_t len, plist_t *out,
		       struct lp_errinfo *e)
{
	struct lp_rd r;
	plist_t d, props;
	uint32_t id;

	if (h->message == UMC_MSG_RESULT ||
	    (h->version == UMC_VERSION_PLIST && h->message == UMC_MSG_PLIST))
		return umc_decode_body(h, body, len, out, e);
	if (len < h->length - UMC_HEADER_LEN)
		return lp_err_set(e, LP_ETRUNC, "usbmuxd message body: %zu of %u bytes", len,
				  h->length - UMC_HEADER_LEN);
	lp_rd_init(&r, body, h->length - UMC_HEADER_LEN);
	switch (h->message) {
	case UMC_MSG_CONNECT: {
		uint16_t port;
		id = lp_rd_le32(&r);
		port = lp_rd_le16(&r); /* network order on the wire: kept so, as plist PortNumber */
		if (!lp_rd_ok(&r))
			return lp_err_set(e, LP_ETRUNC, "usbmuxd CONNECT body too short");
		d = plist_new_dict();
		plist_dict_set_item(d, "MessageType", plist_new_string("Connect"));
		plist_dict_set_item(d, "DeviceID", plist_new_uint(id));
		plist_dict_set_item(d, "PortNumber", plist_new_uint(port));
		break;
	}
	case UMC_MSG_LISTEN:
		d = plist_new_dict();
		plist_dict_set_item(d, "MessageType", plist_new_string("Listen"));
		break;
	case UMC_MSG_DEVICE_ADD: {
		char serial[257];
		const uint8_t *sp;
		uint16_t pid;
		id = lp_rd_le32(&r);
		pid = lp_rd_le16(&r);
		sp = lp_rd_ptr(&r, 256);
		if (!lp_rd_ok(&r))
			return lp_err_set(e, LP_ETRUNC, "usbmuxd DEVICE_ADD body too short");
		memcpy(serial, sp, 256);
		serial[256] = '\0';
		d = plist_new_dict();
		props = plist_new_dict();
		plist_dict_set_item(props, "DeviceID", plist_new_uint(id));
		plist_dict_set_item(props, "ProductID", plist_new_uint(pid));
		plist_dict_set_item(props, "SerialNumber", plist_new_string(serial));
		plist_dict_set_item(d, "MessageType", plist_new_string("Attached"));
		plist_dict_set_item(d, "DeviceID", plist_new_uint(id));
		plist_dict_set_item(d, "Properties", props);
		break;
	}
	case UMC_MSG_DEVICE_REMOVE:
		id = lp_rd_le32(&r);
		if (!lp_rd_ok(&r))
			return lp_err_set(e, LP_ETRUNC, "usbmuxd DEVICE_REMOVE body too short");
		d = plist_new_dict();
		plist_dict_set_item(d, "MessageType", plist_new_string("Detached"));
		plist_dict_set_item(d, "DeviceID", plist_new_uint(id));
		break;
	default:
		return lp_err_set(e, LP_EPROTO, "usbmuxd version %u message %u is not decoded",
				  h->version, h->message);
	}
	if (!d)
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	*out = d;
	return 0;
}

static bool dict_uint(plist_t d, const char *key, uint64_t *v)
{
	plist_t n = plist_dict_get_item(d, key);

	if (!n || plist_get_node_type(n) != PLIST_UINT)
		return false;
	plist_get_uint_val(n, v);
	return true;
}

bool umc_reply_result(plist_t reply, uint32_t *num)
{
	const char *mt = lkd_dict_str(reply, "MessageType");
	uint64_t v;

	if (!mt || strcmp(mt, "Result") != 0 || !dict_uint(reply, "Number", &v) || v > UINT32_MAX)
		return false;
	*num = (uint32_t)v;
	return true;
}

int umc_result_to_err(uint32_t num, bool record)
{
	if (num == UMC_RESULT_OK)
		return 0;
	if (record)
		return num < 4096 ? lp_err_from_errno((int)num) : LP_EPROTO;
	switch (num) {
	case UMC_RESULT_BADCOMMAND:
		return LP_EPROTO;
	case UMC_RESULT_BADDEV:
		return LP_ENODEV;
	case UMC_RESULT_CONNREFUSED:
		return LP_ECONNREFUSED;
	case UMC_RESULT_BADVERSION:
		return LP_EUNSUPPORTED;
	default:
		return LP_EPROTO;
	}
}

const char *umc_result_name(uint32_t num)
{
	switch (num) {
	case UMC_RESULT_OK:
		return "OK";
	case UMC_RESULT_BADCOMMAND:
		return "BADCOMMAND";
	case UMC_RESULT_BADDEV:
		return "BADDEV";
	case UMC_RESULT_CONNREFUSED:
		return "CONNREFUSED";
	case UMC_RESULT_BADVERSION:
		return "BADVERSION";
	default:
		return "?";
	}
}

static void copy_sanitized(plist_t d, const char *key, char *dst, size_t n)
{
	plist_t v = plist_dict_get_item(d, key);
	uint64_t len = 0;
	const char *s;

	dst[0] = '\0';
	if (!v || plist_get_node_type(v) != PLIST_STRING)
		return;
	s = plist_get_string_ptr(v, &len);
	if (s)
		lp_sanitize(dst, n, s, (size_t)len);
}

/* One Attached dict: {DeviceID, Properties: {SerialNumber, ProductID, ...}}.
 * Older daemons put the properties at the top level: look in both. */
static bool parse_attached(plist_t ent, struct umc_device *d)
{
	plist_t props = plist_dict_get_item(ent, "Properties");
	plist_t sn;
	uint64_t v;

	if (plist_get_node_type(ent) != PLIST_DICT)
		return false;
	if (!props || plist_get_node_type(props) != PLIST_DICT)
		props = ent;
	memset(d, 0, sizeof(*d));
	if (!dict_uint(ent, "DeviceID", &v) && !dict_uint(props, "DeviceID", &v))
		return false;
	if (v == 0 || v > UINT32_MAX)
		return false;
	d->device_id = (uint32_t)v;
	sn = plist_dict_get_item(props, "SerialNumber");
	if (!sn || plist_get_node_type(sn) != PLIST_STRING)
		return false;
	{
		uint64_t len = 0;
		const char *s = plist_get_string_ptr(sn, &len);
		if (!s || len == 0 || len > PAIR_RECORD_MAX_UDID)
			return false;
	}
	copy_sanitized(props, "SerialNumber", d->udid, sizeof(d->udid));
	if (dict_uint(props, "ProductID", &v) && v <= UINT16_MAX)
		d->product_id = (uint16_t)v;
	if (dict_uint(props, "LocationID", &v) && v <= UINT32_MAX)
		d->location_id = (uint32_t)v;
	if (dict_uint(props, "ConnectionSpeed", &v))
		d->speed_bps = v;
	copy_sanitized(props, "ConnectionType", d->conn_type, sizeof(d->conn_type));
	return true;
}

int umc_parse_device_list(plist_t reply, struct umc_device *out, size_t max, size_t *n,
			  size_t *skipped, struct lp_errinfo *e)
{
	plist_t arr = reply ? plist_dict_get_item(reply, "DeviceList") : NULL;
	uint32_t cnt;
	size_t got = 0, bad = 0;

	if (!arr || plist_get_node_type(arr) != PLIST_ARRAY)
		return lp_err_set(e, LP_EBADMSG, "ListDevices reply has no DeviceList array");
	cnt = plist_array_get_size(arr);
	for (uint32_t i = 0; i < cnt && got < max; i++) {
		if (parse_attached(plist_array_get_item(arr, i), &out[got]))
			got++;
		else
			bad++;
	}
	*n = got;
	if (skipped)
		*skipped = bad;
	return 0;
}
