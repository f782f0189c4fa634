/* usbmuxd_client.c - the blocking usbmuxd client (usbmuxd_client.h): one
 * request per socket (usbmuxd_sock.h), messages by usbmuxd_codec.h.
 * Protocol: doc/protocol.md section 3. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "src/base/lp_str.h"
#include "proto/lockdown_frame.h"
#include "proto/usbmuxd_client.h"

struct umc {
	struct umc_endpoint ep;
	struct lp_clock *clock;
	const struct lp_log *log;
	uint32_t tag;
};

int umc_new(const char *addr, struct lp_clock *clock, const struct lp_log *log, struct umc **out,
	    struct lp_errinfo *e)
{
	struct umc *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	rc = umc_endpoint_parse(addr, &c->ep, e);
	if (rc) {
		free(c);
		return rc;
	}
	c->clock = clock;
	c->log = log;
	c->tag = 1;
	*out = c;
	return 0;
}

void umc_free(struct umc *c)
{
	free(c);
}

const char *umc_addr(const struct umc *c)
{
	return c->ep.addr;
}

long umc_peer_pid(const struct umc *c)
{
	return umc_sock_peer_pid(&c->ep);
}

int umc_probe(struct umc *c, uint64_t deadline, struct lp_errinfo *e)
{
	struct lp_stream *s = NULL;
	int rc = umc_sock_open(&c->ep, c->clock, deadline, &s, e);

	lp_stream_close(s);
	return rc;
}

/* Send one request and read its reply on an open socket. */
static int exchange(struct umc *c, struct lp_stream *s, const char *type, plist_t extra,
		    plist_t *reply, uint64_t deadline, struct lp_errinfo *e)
{
	uint8_t hdr[UMC_HEADER_LEN], *msg = NULL, *body = NULL;
	struct umc_header h;
	uint32_t tag = c->tag++;
	size_t len = 0;
	int rc;

	if (!c->tag)
		c->tag = 1;
	rc = umc_encode_request(type, extra, tag, &msg, &len, e);
	if (rc)
		return rc;
	lp_logf(c->log, LP_LOG_DEBUG, "usbmuxd %s: -> %s (tag %u, %zu bytes)", c->ep.addr, type,
		tag, len);
	rc = lp_stream_send(s, msg, len, deadline, e);
	/* a SavePairRecord request carries the record, private keys included */
	OPENSSL_cleanse(msg, len);
	free(msg);
	if (rc) {
		lp_err_prefix(e, "usbmuxd %s request", type);
		return rc;
	}
	rc = lp_stream_read_full(s, hdr, sizeof(hdr), deadline, e);
	if (!rc)
		rc = umc_decode_header(hdr, sizeof(hdr), &h, e);
	if (rc) {
		lp_err_prefix(e, "usbmuxd %s reply", type);
		return rc;
	}
	if (h.length > UMC_HEADER_LEN) {
		body = malloc(h.length - UMC_HEADER_LEN);
		if (!body)
			return lp_err_set(e, LP_ENOMEM, "out of memory");
		rc = lp_stream_read_full(s, body, h.length - UMC_HEADER_LEN, deadline, e);
		if (rc) {
			OPENSSL_cleanse(body, h.length - UMC_HEADER_LEN);
			free(body);
			lp_err_prefix(e, "usbmuxd %s reply body", type);
			return rc;
		}
	}
	rc = umc_decode_body(&h, body, h.length - UMC_HEADER_LEN, reply, e);
	if (body) /* a ReadPairRecord reply holds the record, keys included */
		OPENSSL_cleanse(body, h.length - UMC_HEADER_LEN);
	free(body);
	if (rc) {
		lp_err_prefix(e, "usbmuxd %s reply", type);
		return rc;
	}
	if (h.tag != tag) {
		plist_free(*reply);
		*reply = NULL;
		return lp_err_set(e, LP_EPROTO, "usbmuxd answered %s with tag %u, expected %u",
				  type, h.tag, tag);
	}
	lp_logf(c->log, LP_LOG_DEBUG, "usbmuxd %s: <- %u bytes for %s", c->ep.addr, h.length, type);
	return 0;
}

int umc_request(struct umc *c, const char *type, plist_t extra, plist_t *reply, uint64_t deadline,
		struct lp_errinfo *e)
{
	struct lp_stream *s = NULL;
	int rc = umc_sock_open(&c->ep, c->clock, deadline, &s, e);

	if (rc)
		return rc;
	rc = exchange(c, s, type, extra, reply, deadline, e);
	lp_stream_close(s);
	return rc;
}

/* A Result reply to a command that has another reply on success. */
static int result_err(plist_t reply, const char *type, bool record, struct lp_errinfo *e)
{
	uint32_t num;
	int rc;

	if (!umc_reply_result(reply, &num))
		return lp_err_set(e, LP_EPROTO,
				  "usbmuxd %s reply has neither the data nor a Result", type);
	rc = umc_result_to_err(num, record);
	if (!rc)
		return lp_err_set(e, LP_EPROTO, "usbmuxd answered %s with Result 0 but no data",
				  type);
	if (record)
		return lp_err_set(e, rc, "usbmuxd %s: %s (result %u)", type,
				  rc == LP_ENOENT ? "no such record" : lp_strerror(rc), num);
	return lp_err_set(e, rc, "usbmuxd %s: result %u %s", type, num, umc_result_name(num));
}

int umc_list_devices(struct umc *c, struct umc_device *out, size_t max, size_t *n,
		     uint64_t deadline, struct lp_errinfo *e)
{
	plist_t reply = NULL;
	size_t skipped = 0;
	int rc = umc_request(c, "ListDevices", NULL, &reply, deadline, e);

	if (rc)
		return rc;
	if (!plist_dict_get_item(reply, "DeviceList")) {
		rc = result_err(reply, "ListDevices", false, e);
		plist_free(reply);
		return rc;
	}
	rc = umc_parse_device_list(reply, out, max, n, &skipped, e);
	plist_free(reply);
	if (!rc && skipped)
		lp_logf(c->log, LP_LOG_WARN, "usbmuxd DeviceList: %zu malformed entries ignored",
			skipped);
	return rc;
}

int umc_connect(struct umc *c, uint32_t device_id, uint16_t port, uint64_t deadline,
		struct lp_stream **out, struct lp_errinfo *e)
{
	struct lp_stream *s = NULL;
	plist_t extra = plist_new_dict(), reply = NULL;
	uint16_t nport = htons(port); /* the daemon ntohs()es the integer */
	uint32_t num;
	int rc;

	if (!extra)
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	plist_dict_set_item(extra, "DeviceID", plist_new_uint(device_id));
	plist_dict_set_item(extra, "PortNumber", plist_new_uint(nport));
	rc = umc_sock_open(&c->ep, c->clock, deadline, &s, e);
	if (!rc)
		rc = exchange(c, s, "Connect", extra, &reply, deadline, e);
	plist_free(extra);
	if (rc) {
		lp_stream_close(s);
		return rc;
	}
	if (!umc_reply_result(reply, &num)) {
		rc = lp_err_set(e, LP_EPROTO, "usbmuxd answered Connect without a Result");
	} else if ((rc = umc_result_to_err(num, false)) != 0) {
		if (rc == LP_ECONNREFUSED)
			lp_err_set(e, rc,
				   "device %u refused port %u (usbmuxd result 3 CONNREFUSED)",
				   device_id, port);
		else
			lp_err_set(e, rc, "usbmuxd Connect to device %u port %u: result %u %s",
				   device_id, port, num, umc_result_name(num));
	}
	plist_free(reply);
	if (rc) {
		lp_stream_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

int umc_read_buid(struct umc *c, char out[UMC_BUID_LEN + 1], uint64_t deadline,
		  struct lp_errinfo *e)
{
	plist_t reply = NULL, v;
	const char *s;
	uint64_t len = 0;
	int rc = umc_request(c, "ReadBUID", NULL, &reply, deadline, e);

	if (rc)
		return rc;
	v = plist_dict_get_item(reply, "BUID");
	if (!v) {
		rc = result_err(reply, "ReadBUID", false, e);
	} else if (plist_get_node_type(v) != PLIST_STRING || !(s = plist_get_string_ptr(v, &len)) ||
		   len == 0 || len > UMC_BUID_LEN) {
		rc = lp_err_set(e, LP_EBADMSG, "usbmuxd BUID is not a string of 1..%d characters",
				UMC_BUID_LEN);
	} else {
		lp_sanitize(out, UMC_BUID_LEN + 1, s, (size_t)len);
	}
	plist_free(reply);
	return rc;
}

int umc_read_pair_record(struct umc *c, const char *udid, struct pair_record **out,
			 uint64_t deadline, struct lp_errinfo *e)
{
	plist_t extra, reply = NULL, v;
	struct pair_record *rec = NULL;
	const char *data;
	uint64_t len = 0;
	int rc;

	if (!pair_record_udid_ok(udid))
		return lp_err_set(e, LP_EINVAL, "'%.80s' is not a UDID", udid ? udid : "");
	extra = plist_new_dict();
	if (!extra)
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	plist_dict_set_item(extra, "PairRecordID", plist_new_string(udid));
	rc = umc_request(c, "ReadPairRecord", extra, &reply, deadline, e);
	plist_free(extra);
	if (rc)
		return rc;
	v = plist_dict_get_item(reply, "PairRecordData");
	if (!v) {
		rc = result_err(reply, "ReadPairRecord", true, e);
		plist_free(reply);
		return rc;
	}
	if (plist_get_node_type(v) != PLIST_DATA || !(data = plist_get_data_ptr(v, &len))) {
		plist_free(reply);
		return lp_err_set(e, LP_EBADMSG, "usbmuxd PairRecordData is not data");
	}
	rc = pair_record_parse((const uint8_t *)data, (size_t)len, &rec, e);
	OPENSSL_cleanse((void *)data, (size_t)len); /* the record's bytes, keys included */
	plist_free(reply);
	if (rc) {
		lp_err_prefix(e, "usbmuxd record for %s", udid);
		return rc;
	}
	rc = pair_record_set_str(&rec->udid, udid);
	if (rc) {
		pair_record_free(rec);
		return lp_err_set(e, rc, "out of memory");
	}
	*out = rec;
	return 0;
}

int umc_save_pair_record(struct umc *c, const struct pair_record *rec, uint32_t device_id,
			 uint64_t deadline, struct lp_errinfo *e)
{
	plist_t p, extra, reply = NULL;
	char *bin = NULL;
	uint32_t blen = 0, num;
	int rc;

	if (!rec || !pair_record_udid_ok(rec->udid))
		return lp_err_set(e, LP_EINVAL, "pair record without a valid UDID");
	p = pair_record_to_plist(rec);
	if (!p)
		return lp_err_set(e, LP_EINVAL, "pair record is missing a required field");
	plist_to_bin(p, &bin, &blen);
	pair_plist_wipe_secrets(p);
	plist_free(p);
	if (!bin || !blen) {
		plist_to_bin_free(bin);
		return lp_err_set(e, LP_EPLIST, "cannot encode the pair record");
	}
	extra = plist_new_dict();
	if (!extra) {
		OPENSSL_cleanse(bin, blen);
		plist_to_bin_free(bin);
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	}
	plist_dict_set_item(extra, "PairRecordID", plist_new_string(rec->udid));
	plist_dict_set_item(extra, "PairRecordData", plist_new_data(bin, blen));
	if (device_id)
		plist_dict_set_item(extra, "DeviceID", plist_new_uint(device_id));
	/* the private keys were in `bin`: wipe before freeing */
	OPENSSL_cleanse(bin, blen);
	plist_to_bin_free(bin);
	rc = umc_request(c, "SavePairRecord", extra, &reply, deadline, e);
	umc_wipe_record_data(extra);
	plist_free(extra);
	if (rc)
		return rc;
	if (!umc_reply_result(reply, &num))
		rc = lp_err_set(e, LP_EPROTO, "usbmuxd answered SavePairRecord without a Result");
	else if ((rc = umc_result_to_err(num, true)) != 0)
		lp_err_set(e, rc, "usbmuxd SavePairRecord for %s: %s (result %u)", rec->udid,
			   lp_strerror(rc), num);
	plist_free(reply);
	return rc;
}
