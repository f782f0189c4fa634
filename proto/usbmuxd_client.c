/* usbmuxd_client.c - usbmuxd client protocol: codec and blocking client.
 *
 * Protocol and facts: usbmuxd_client.h and doc/protocol.md section 3
 * (usbmuxd src/usbmuxd-proto.h, src/client.c; libusbmuxd; go-ios). The one
 * quirk worth repeating: Connect's PortNumber is the port in network byte
 * order read as a host integer (htons(62078) on a little-endian host). */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "src/base/lp_cursor.h"
#include "src/base/lp_str.h"
#include "proto/lockdown_frame.h"
#include "proto/usbmuxd_client.h"

#include <openssl/crypto.h>

#define UMC_PROG_NAME "linkprobe"
#define UMC_LIBUSBMUX_VERSION 3 /* what libusbmuxd announces */

/* ---------------------------------------------------------------------------
 * Codec
 */

/* Wipe a PairRecordData value (a whole record, private keys included) and
 * the record's own secret keys if the dict is one, before plist_free. */
static void wipe_record_data(plist_t d)
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
	wipe_record_data(d);
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

/* ---------------------------------------------------------------------------
 * Socket stream (the pipe after Connect, and request/reply I/O)
 */

struct umc {
	char addr[UMC_MAX_ADDR + 1]; /* path, or host:port */
	bool tcp;
	char host[UMC_MAX_ADDR + 1];
	char port[8];
	struct lp_clock *clock;
	const struct lp_log *log;
	uint32_t tag;
};

struct umc_sock {
	struct lp_stream s;
	int fd;
};

/* Milliseconds until `deadline` for poll(), rounded up; 0 if it passed. */
static int ms_left(struct lp_clock *clock, uint64_t deadline)
{
	uint64_t now = lp_clock_now(clock), ms;

	if (now >= deadline)
		return 0;
	ms = (deadline - now + LP_NS_PER_MS - 1) / LP_NS_PER_MS;
	return ms > 60000 ? 60000 : (int)ms;
}

/* Wait for `events` on fd: 0, LP_ETIMEDOUT or an errno conversion. */
static int wait_fd(struct lp_clock *clock, int fd, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int ms = ms_left(clock, deadline), r;

		r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return lp_err_from_errno(errno);
		if (r == 0 && clock->is_virtual) {
			/* nothing moves a virtual clock here: jump to the deadline */
			lp_clock_sleep_until(clock, deadline);
			return LP_ETIMEDOUT;
		}
		if (lp_clock_now(clock) >= deadline)
			return LP_ETIMEDOUT;
	}
}

static int sock_send(struct lp_stream *s, const uint8_t *buf, size_t len, uint64_t deadline,
		     struct lp_errinfo *e)
{
	struct umc_sock *k = s->impl;
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(k->fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		int r;

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			r = errno == EPIPE || errno == ECONNRESET ? LP_ECONNRESET
								  : lp_err_from_errno(errno);
			return lp_err_set(e, r, "usbmuxd socket: send: %s", strerror(errno));
		}
		r = wait_fd(s->clock, k->fd, POLLOUT, deadline);
		if (r)
			return lp_err_set(e, r, "usbmuxd socket: sending %zu bytes (%zu sent): %s",
					  len, off, lp_strerror(r));
	}
	return 0;
}

static int sock_recv(struct lp_stream *s, uint8_t *buf, size_t cap, size_t *got, uint64_t deadline,
		     struct lp_errinfo *e)
{
	struct umc_sock *k = s->impl;

	if (!cap)
		return lp_err_set(e, LP_EINVAL, "recv with a zero-size buffer");
	for (;;) {
		ssize_t n = recv(k->fd, buf, cap, MSG_DONTWAIT);
		int r;

		if (n > 0) {
			*got = (size_t)n;
			return 0;
		}
		if (n == 0)
			return lp_err_set(e, LP_ECLOSED, "usbmuxd socket closed by the peer");
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			r = errno == ECONNRESET ? LP_ECONNRESET : lp_err_from_errno(errno);
			return lp_err_set(e, r, "usbmuxd socket: recv: %s", strerror(errno));
		}
		r = wait_fd(s->clock, k->fd, POLLIN, deadline);
		if (r)
			return lp_err_set(e, r, "usbmuxd socket: receiving: %s", lp_strerror(r));
	}
}

static void sock_close(struct lp_stream *s)
{
	struct umc_sock *k = s->impl;

	if (k->fd >= 0)
		close(k->fd);
	free(k);
}

static const struct lp_stream_ops umc_sock_ops = {
	.send = sock_send,
	.recv = sock_recv,
	.close = sock_close,
};

/* The daemon is absent or unreachable: say so in the words a user needs. */
static int absent(struct umc *c, int errnum, struct lp_errinfo *e)
{
	if (errnum == EACCES || errnum == EPERM)
		return lp_err_set(e, LP_EACCES, "permission denied on the usbmuxd socket %s (%s)",
				  c->addr, strerror(errnum));
	return lp_err_set(e, LP_ENOENT, "usbmuxd is not running at %s (%s)", c->addr,
			  strerror(errnum));
}

static int open_tcp(struct umc *c, uint64_t deadline, int *fdout, struct lp_errinfo *e)
{
	struct addrinfo hints, *res = NULL, *ai;
	int rc, last = ECONNREFUSED;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(c->host, c->port, &hints, &res);
	if (rc)
		return lp_err_set(e, LP_ENOENT, "usbmuxd address %s: %s", c->addr,
				  gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
				ai->ai_protocol);
		int err = 0;
		socklen_t el = sizeof(err);

		if (fd < 0) {
			last = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			*fdout = fd;
			freeaddrinfo(res);
			return 0;
		}
		if (errno != EINPROGRESS) {
			last = errno;
			close(fd);
			continue;
		}
		rc = wait_fd(c->clock, fd, POLLOUT, deadline);
		if (rc) {
			close(fd);
			freeaddrinfo(res);
			return lp_err_set(e, rc, "connecting to usbmuxd at %s: %s", c->addr,
					  lp_strerror(rc));
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0) {
			*fdout = fd;
			freeaddrinfo(res);
			return 0;
		}
		last = err ? err : errno;
		close(fd);
	}
	freeaddrinfo(res);
	return absent(c, last, e);
}

static int open_socket(struct umc *c, uint64_t deadline, struct lp_stream **out,
		       struct lp_errinfo *e)
{
	struct umc_sock *k;
	int fd = -1, rc;

	if (c->tcp) {
		rc = open_tcp(c, deadline, &fd, e);
		if (rc)
			return rc;
	} else {
		struct sockaddr_un sa;

		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		memcpy(sa.sun_path, c->addr, strlen(c->addr));
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return lp_err_set(e, lp_err_from_errno(errno), "socket: %s",
					  strerror(errno));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			int err = errno;
			close(fd);
			return absent(c, err, e);
		}
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		close(fd);
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	}
	k->fd = fd;
	k->s.ops = &umc_sock_ops;
	k->s.clock = c->clock;
	k->s.impl = k;
	*out = &k->s;
	return 0;
}

/* ---------------------------------------------------------------------------
 * Client
 */

int umc_new(const char *addr, struct lp_clock *clock, const struct lp_log *log, struct umc **out,
	    struct lp_errinfo *e)
{
	struct umc *c;
	const char *colon;

	if (!addr || !*addr)
		addr = getenv(UMC_ENV_ADDRESS);
	if (!addr || !*addr)
		addr = UMC_DEFAULT_SOCKET;
	c = calloc(1, sizeof(*c));
	if (!c)
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	c->clock = clock;
	c->log = log;
	c->tag = 1;
	if (strncmp(addr, "UNIX:", 5) == 0)
		addr += 5;
	else if (strncmp(addr, "unix://", 7) == 0)
		addr += 7;
	else if (strncmp(addr, "tcp://", 6) == 0) {
		addr += 6;
		c->tcp = true;
	} else if (addr[0] != '/')
		c->tcp = true;
	if (!*addr || strlen(addr) >= UMC_MAX_ADDR) {
		free(c);
		return lp_err_set(e, LP_EINVAL, "usbmuxd address '%.120s' is empty or too long",
				  addr);
	}
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	if (c->tcp) {
		char *end;
		long port;

		colon = strrchr(c->addr, ':');
		if (!colon || colon == c->addr) {
			free(c);
			return lp_err_set(
				e, LP_EINVAL,
				"usbmuxd address '%s' is neither UNIX:/path nor host:port", addr);
		}
		port = strtol(colon + 1, &end, 10);
		if (end == colon + 1 || *end || port < 1 || port > 65535) {
			free(c);
			return lp_err_set(e, LP_EINVAL, "usbmuxd address '%s': bad port", addr);
		}
		snprintf(c->host, sizeof(c->host), "%.*s", (int)(colon - c->addr), c->addr);
		/* [::1]:27015 */
		if (c->host[0] == '[' && c->host[strlen(c->host) - 1] == ']') {
			memmove(c->host, c->host + 1, strlen(c->host));
			c->host[strlen(c->host) - 1] = '\0';
		}
		snprintf(c->port, sizeof(c->port), "%ld", port);
	}
	*out = c;
	return 0;
}

void umc_free(struct umc *c)
{
	free(c);
}

const char *umc_addr(const struct umc *c)
{
	return c->addr;
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
	lp_logf(c->log, LP_LOG_DEBUG, "usbmuxd %s: -> %s (tag %u, %zu bytes)", c->addr, type, tag,
		len);
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
	lp_logf(c->log, LP_LOG_DEBUG, "usbmuxd %s: <- %u bytes for %s", c->addr, h.length, type);
	return 0;
}

int umc_request(struct umc *c, const char *type, plist_t extra, plist_t *reply, uint64_t deadline,
		struct lp_errinfo *e)
{
	struct lp_stream *s = NULL;
	int rc = open_socket(c, deadline, &s, e);

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
	rc = open_socket(c, deadline, &s, e);
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
	wipe_record_data(extra);
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
