/* test_usbmuxd_client.c - the usbmuxd client codec, and the blocking client
 * against a scripted daemon served from a thread on a UNIX socket (and on
 * TCP) in a temp dir: ListDevices, ReadBUID, Read/SavePairRecord, Connect to
 * 62078 answered by a scripted lockdown QueryType reply, refusals, a daemon
 * that never answers, an oversize reply, a wrong tag, and no daemon. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto/lockdown_client.h"
#include "proto/lockdown_frame.h"
#include "proto/pair_record.h"
#include "proto/usbmuxd_client.h"
#include "src/base/lp_clock.h"

#define SERIAL "00008030001A2B3C4D5E6F70"
#define BUID "11111111-2222-3333-4444-555555555555"

enum mode { M_NORMAL, M_MUTE, M_HUGE, M_BADTAG };

struct daemon {
	int lfd;
	pthread_t th;
	enum mode mode;
	char path[96];
	char dir[64];
	uint8_t *record; /* saved PairRecordData */
	size_t record_len;
	uint64_t saved_device_id;
	int requests;
};

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int read_full(int fd, void *buf, size_t n)
{
	uint8_t *b = buf;
	while (n) {
		ssize_t r = read(fd, b, n);
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static void send_dict(int fd, uint32_t tag, plist_t d)
{
	char *xml = NULL;
	uint32_t xlen = 0;
	uint8_t h[16];

	plist_to_xml(d, &xml, &xlen);
	put_le32(h, 16 + xlen);
	put_le32(h + 4, 1);
	put_le32(h + 8, 8);
	put_le32(h + 12, tag);
	assert_int_equal(write(fd, h, 16), 16);
	assert_int_equal(write(fd, xml, xlen), (ssize_t)xlen);
	plist_to_xml_free(xml);
	plist_free(d);
}

static void send_result(int fd, uint32_t tag, uint64_t n)
{
	plist_t d = plist_new_dict();
	plist_dict_set_item(d, "MessageType", plist_new_string("Result"));
	plist_dict_set_item(d, "Number", plist_new_uint(n));
	send_dict(fd, tag, d);
}

static plist_t attached(uint64_t id, const char *serial)
{
	plist_t ent = plist_new_dict(), props = plist_new_dict();
	plist_dict_set_item(props, "ConnectionSpeed", plist_new_uint(480000000));
	plist_dict_set_item(props, "ConnectionType", plist_new_string("USB"));
	plist_dict_set_item(props, "DeviceID", plist_new_uint(id));
	plist_dict_set_item(props, "LocationID", plist_new_uint(0x00030007));
	plist_dict_set_item(props, "ProductID", plist_new_uint(0x12a8));
	if (serial)
		plist_dict_set_item(props, "SerialNumber", plist_new_string(serial));
	plist_dict_set_item(ent, "MessageType", plist_new_string("Attached"));
	plist_dict_set_item(ent, "DeviceID", plist_new_uint(id));
	plist_dict_set_item(ent, "Properties", props);
	return ent;
}

/* After Connect to 62078: act as lockdownd for one QueryType. */
static void serve_lockdown(int fd)
{
	uint8_t len4[4], *body;
	uint32_t n;
	plist_t req = NULL, rep;
	uint8_t *out = NULL;
	size_t olen = 0;

	if (read_full(fd, len4, 4))
		return;
	n = (uint32_t)len4[0] << 24 | (uint32_t)len4[1] << 16 | (uint32_t)len4[2] << 8 | len4[3];
	body = malloc(n);
	if (!body || read_full(fd, body, n) || lkd_plist_decode(body, n, &req)) {
		free(body);
		return;
	}
	free(body);
	rep = plist_new_dict();
	plist_dict_set_item(rep, "Request", plist_new_string(lkd_dict_str(req, "Request")));
	plist_dict_set_item(rep, "Type", plist_new_string("com.apple.mobile.lockdown"));
	plist_free(req);
	lkd_frame_encode(rep, &out, &olen);
	plist_free(rep);
	assert_int_equal(write(fd, out, olen), (ssize_t)olen);
	free(out);
}

static void serve_one(struct daemon *d, int fd)
{
	uint8_t h[16], *body;
	struct umc_header hdr;
	plist_t req = NULL;
	const char *type;

	if (read_full(fd, h, 16) || umc_decode_header(h, 16, &hdr, NULL))
		return;
	body = malloc(hdr.length - 16);
	if (read_full(fd, body, hdr.length - 16) ||
	    umc_decode_body(&hdr, body, hdr.length - 16, &req, NULL)) {
		free(body);
		return;
	}
	free(body);
	d->requests++;
	type = lkd_dict_str(req, "MessageType");
	if (d->mode == M_MUTE) {
		uint8_t b;
		(void)!read(fd, &b, 1); /* until the client gives up */
	} else if (d->mode == M_HUGE) {
		put_le32(h, UMC_MAX_MESSAGE + 1);
		put_le32(h + 4, 1);
		put_le32(h + 8, 8);
		put_le32(h + 12, hdr.tag);
		assert_int_equal(write(fd, h, 16), 16);
	} else if (d->mode == M_BADTAG) {
		send_result(fd, hdr.tag + 5, 0);
	} else if (strcmp(type, "ListDevices") == 0) {
		plist_t r = plist_new_dict(), arr = plist_new_array();
		plist_array_append_item(arr, attached(7, SERIAL));
		plist_array_append_item(arr, attached(8, NULL)); /* malformed: no serial */
		plist_array_append_item(arr, plist_new_string("junk"));
		plist_dict_set_item(r, "DeviceList", arr);
		send_dict(fd, hdr.tag, r);
	} else if (strcmp(type, "ReadBUID") == 0) {
		plist_t r = plist_new_dict();
		plist_dict_set_item(r, "BUID", plist_new_string(BUID));
		send_dict(fd, hdr.tag, r);
	} else if (strcmp(type, "ReadPairRecord") == 0) {
		const char *id = lkd_dict_str(req, "PairRecordID");
		if (!d->record || !id || strcmp(id, SERIAL) != 0) {
			send_result(fd, hdr.tag, ENOENT);
		} else {
			plist_t r = plist_new_dict();
			plist_dict_set_item(r, "PairRecordData",
					    plist_new_data((const char *)d->record, d->record_len));
			send_dict(fd, hdr.tag, r);
		}
	} else if (strcmp(type, "SavePairRecord") == 0) {
		plist_t data = plist_dict_get_item(req, "PairRecordData");
		plist_t id = plist_dict_get_item(req, "DeviceID");
		uint64_t n = 0;
		const char *p = plist_get_data_ptr(data, &n);
		free(d->record);
		d->record = malloc(n);
		memcpy(d->record, p, n);
		d->record_len = n;
		if (id)
			plist_get_uint_val(id, &d->saved_device_id);
		send_result(fd, hdr.tag, 0);
	} else if (strcmp(type, "Connect") == 0) {
		uint64_t id = 0, port = 0;
		plist_get_uint_val(plist_dict_get_item(req, "DeviceID"), &id);
		plist_get_uint_val(plist_dict_get_item(req, "PortNumber"), &port);
		if (id != 7) {
			send_result(fd, hdr.tag, UMC_RESULT_BADDEV);
		} else if (port != htons(62078)) { /* network byte order, read as an integer */
			send_result(fd, hdr.tag, UMC_RESULT_CONNREFUSED);
		} else {
			send_result(fd, hdr.tag, 0);
			serve_lockdown(fd);
		}
	} else {
		send_result(fd, hdr.tag, UMC_RESULT_BADCOMMAND);
	}
	plist_free(req);
}

static void *daemon_main(void *arg)
{
	struct daemon *d = arg;
	int fd;

	while ((fd = accept(d->lfd, NULL, NULL)) >= 0) {
		serve_one(d, fd);
		close(fd);
	}
	return NULL;
}

static struct daemon *daemon_start(enum mode mode, bool tcp, char *addr, size_t an)
{
	struct daemon *d = calloc(1, sizeof(*d));

	d->mode = mode;
	snprintf(d->dir, sizeof(d->dir), "/tmp/umc-test.XXXXXX");
	assert_non_null(mkdtemp(d->dir));
	if (tcp) {
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t sl = sizeof(sa);
		d->lfd = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(bind(d->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_int_equal(getsockname(d->lfd, (struct sockaddr *)&sa, &sl), 0);
		snprintf(addr, an, "127.0.0.1:%u", ntohs(sa.sin_port));
	} else {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		snprintf(d->path, sizeof(d->path), "%s/usbmuxd", d->dir);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->path);
		d->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
		assert_int_equal(bind(d->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		snprintf(addr, an, "UNIX:%s", d->path);
	}
	assert_int_equal(listen(d->lfd, 8), 0);
	assert_int_equal(pthread_create(&d->th, NULL, daemon_main, d), 0);
	return d;
}

static void daemon_stop(struct daemon *d)
{
	shutdown(d->lfd, SHUT_RDWR); /* accept() returns */
	pthread_join(d->th, NULL);
	close(d->lfd);
	if (d->path[0])
		unlink(d->path);
	rmdir(d->dir);
	free(d->record);
	free(d);
}

struct fx {
	struct lp_clock clk;
	struct daemon *d;
	struct umc *c;
};

static struct fx *fx_new(enum mode mode, bool tcp)
{
	struct fx *f = calloc(1, sizeof(*f));
	char addr[160];
	struct lp_errinfo e = {0};

	lp_clock_init_real(&f->clk);
	f->d = daemon_start(mode, tcp, addr, sizeof(addr));
	assert_int_equal(umc_new(addr, &f->clk, NULL, &f->c, &e), 0);
	return f;
}

static void fx_free(struct fx *f)
{
	umc_free(f->c);
	daemon_stop(f->d);
	free(f);
}

static uint64_t dl(struct fx *f, uint64_t ms)
{
	return lp_clock_deadline_ms(&f->clk, ms);
}

/* --- codec ----------------------------------------------------------------- */

static void test_encode_request(void **state)
{
	plist_t extra = plist_new_dict(), body = NULL;
	uint8_t *msg = NULL;
	size_t len = 0;
	struct umc_header h;

	plist_dict_set_item(extra, "PairRecordID", plist_new_string(SERIAL));
	assert_int_equal(umc_encode_request("ReadPairRecord", extra, 42, &msg, &len, NULL), 0);
	plist_free(extra);
	assert_int_equal(umc_decode_header(msg, len, &h, NULL), 0);
	assert_int_equal(h.length, len);
	assert_int_equal(h.version, 1);
	assert_int_equal(h.message, 8);
	assert_int_equal(h.tag, 42);
	assert_memory_equal(msg + 16, "<?xml", 5); /* the daemon parses XML only */
	assert_int_equal(umc_decode_body(&h, msg + 16, len - 16, &body, NULL), 0);
	assert_string_equal(lkd_dict_str(body, "MessageType"), "ReadPairRecord");
	assert_string_equal(lkd_dict_str(body, "PairRecordID"), SERIAL);
	assert_non_null(lkd_dict_str(body, "ProgName"));
	plist_free(body);
	free(msg);
}

static void test_decode_header_errors(void **state)
{
	uint8_t h[16] = {0};
	struct umc_header out = {.length = 99};
	struct lp_errinfo e = {0};

	assert_int_equal(umc_decode_header(h, 15, &out, NULL), LP_ETRUNC);
	put_le32(h, 15);
	assert_int_equal(umc_decode_header(h, 16, &out, NULL), LP_EBADMSG);
	put_le32(h, UMC_MAX_MESSAGE + 1);
	assert_int_equal(umc_decode_header(h, 16, &out, &e), LP_ETOOBIG);
	assert_non_null(strstr(e.msg, "cap"));
	assert_int_equal(out.length, 99); /* untouched on failure */
	put_le32(h, UMC_MAX_MESSAGE);
	assert_int_equal(umc_decode_header(h, 16, &out, NULL), 0);
}

static void test_decode_body(void **state)
{
	struct umc_header h = {.length = 20, .version = 0, .message = UMC_MSG_RESULT, .tag = 1};
	uint8_t b[4] = {6, 0, 0, 0};
	plist_t d = NULL;
	uint32_t num = 0;

	assert_int_equal(umc_decode_body(&h, b, 3, &d, NULL), LP_ETRUNC);
	assert_int_equal(umc_decode_body(&h, b, 4, &d, NULL), 0); /* binary RESULT (BADVERSION) */
	assert_true(umc_reply_result(d, &num));
	assert_int_equal(num, UMC_RESULT_BADVERSION);
	assert_int_equal(umc_result_to_err(num, false), LP_EUNSUPPORTED);
	plist_free(d);
	h.message = UMC_MSG_DEVICE_ADD;
	assert_int_equal(umc_decode_body(&h, b, 4, &d, NULL), LP_EPROTO);
	h.version = 1;
	h.message = 8;
	assert_int_equal(umc_decode_body(&h, (const uint8_t *)"nope", 4, &d, NULL), LP_EPLIST);
	assert_int_equal(umc_result_to_err(3, false), LP_ECONNREFUSED);
	assert_int_equal(umc_result_to_err(2, false), LP_ENODEV);
	assert_int_equal(umc_result_to_err(2, true), LP_ENOENT);
	assert_int_equal(umc_result_to_err(0, true), 0);
}

static void test_addresses(void **state)
{
	struct lp_clock clk;
	struct umc *c = NULL;

	lp_clock_init_real(&clk);
	assert_int_equal(umc_new("UNIX:/run/x", &clk, NULL, &c, NULL), 0);
	assert_string_equal(umc_addr(c), "/run/x");
	umc_free(c);
	assert_int_equal(umc_new("localhost:27015", &clk, NULL, &c, NULL), 0);
	assert_string_equal(umc_addr(c), "localhost:27015");
	umc_free(c);
	assert_int_equal(umc_new("localhost:99999", &clk, NULL, &c, NULL), LP_EINVAL);
	assert_int_equal(umc_new("UNIX:", &clk, NULL, &c, NULL), LP_EINVAL);
	assert_int_equal(umc_new("nocolon", &clk, NULL, &c, NULL), LP_EINVAL);
	setenv(UMC_ENV_ADDRESS, "UNIX:/from/env", 1);
	assert_int_equal(umc_new(NULL, &clk, NULL, &c, NULL), 0);
	assert_string_equal(umc_addr(c), "/from/env");
	umc_free(c);
	unsetenv(UMC_ENV_ADDRESS);
	assert_int_equal(umc_new(NULL, &clk, NULL, &c, NULL), 0);
	assert_string_equal(umc_addr(c), UMC_DEFAULT_SOCKET);
	umc_free(c);
}

/* --- client against the scripted daemon -------------------------------------- */

static void check_list(struct fx *f)
{
	struct umc_device devs[4];
	size_t n = 0;

	assert_int_equal(umc_list_devices(f->c, devs, 4, &n, dl(f, 2000), NULL), 0);
	assert_int_equal(n, 1); /* the malformed entries are skipped */
	assert_int_equal(devs[0].device_id, 7);
	assert_string_equal(devs[0].udid, SERIAL);
	assert_int_equal(devs[0].product_id, 0x12a8);
	assert_int_equal(devs[0].location_id, 0x00030007);
	assert_int_equal(devs[0].speed_bps, 480000000);
	assert_string_equal(devs[0].conn_type, "USB");
}

static void test_list_devices(void **state)
{
	struct fx *f = fx_new(M_NORMAL, false);
	check_list(f);
	fx_free(f);
}

static void test_list_devices_tcp(void **state)
{
	struct fx *f = fx_new(M_NORMAL, true);
	check_list(f);
	fx_free(f);
}

static void test_connect_lockdown(void **state)
{
	struct fx *f = fx_new(M_NORMAL, false);
	struct lp_stream *s = NULL;
	struct lkd_client *lkd;
	struct lp_errinfo e = {0};
	char *type = NULL;

	assert_int_equal(umc_connect(f->c, 7, 62078, dl(f, 2000), &s, &e), 0);
	lkd = lkd_client_new(s, "test");
	assert_int_equal(lkd_query_type(lkd, &type, dl(f, 2000), &e), 0);
	assert_string_equal(type, "com.apple.mobile.lockdown");
	free(type);
	lkd_client_free(lkd);
	lp_stream_close(s);

	s = NULL;
	assert_int_equal(umc_connect(f->c, 7, 1234, dl(f, 2000), &s, &e), LP_ECONNREFUSED);
	assert_non_null(strstr(e.msg, "refused port 1234"));
	assert_null(s);
	assert_int_equal(umc_connect(f->c, 9, 62078, dl(f, 2000), &s, &e), LP_ENODEV);
	assert_null(s);
	fx_free(f);
}

static struct pair_record *fake_record(void)
{
	struct pair_record *r = pair_record_new();
	const char pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

	assert_int_equal(pair_record_set_blob(&r->device_certificate, pem, sizeof(pem) - 1), 0);
	assert_int_equal(pair_record_set_blob(&r->host_certificate, pem, sizeof(pem) - 1), 0);
	assert_int_equal(pair_record_set_blob(&r->host_private_key, "k1", 2), 0);
	assert_int_equal(pair_record_set_blob(&r->root_certificate, pem, sizeof(pem) - 1), 0);
	assert_int_equal(pair_record_set_blob(&r->root_private_key, "k2", 2), 0);
	assert_int_equal(pair_record_set_str(&r->host_id, "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"),
			 0);
	assert_int_equal(pair_record_set_str(&r->system_buid, BUID), 0);
	assert_int_equal(pair_record_set_str(&r->udid, SERIAL), 0);
	return r;
}

static void test_buid_and_records(void **state)
{
	struct fx *f = fx_new(M_NORMAL, false);
	struct pair_record *rec = NULL, *got = NULL;
	struct lp_errinfo e = {0};
	char buid[UMC_BUID_LEN + 1];

	assert_int_equal(umc_read_buid(f->c, buid, dl(f, 2000), NULL), 0);
	assert_string_equal(buid, BUID);
	assert_int_equal(umc_read_pair_record(f->c, SERIAL, &got, dl(f, 2000), &e), LP_ENOENT);
	assert_null(got);
	assert_int_equal(umc_read_pair_record(f->c, "../etc", &got, dl(f, 2000), NULL), LP_EINVAL);

	rec = fake_record();
	assert_int_equal(umc_save_pair_record(f->c, rec, 7, dl(f, 2000), &e), 0);
	assert_int_equal(f->d->saved_device_id, 7);
	assert_memory_equal(f->d->record, "bplist00", 8);
	assert_int_equal(umc_read_pair_record(f->c, SERIAL, &got, dl(f, 2000), &e), 0);
	assert_string_equal(got->udid, SERIAL);
	assert_string_equal(got->host_id, rec->host_id);
	assert_string_equal(got->system_buid, BUID);
	assert_int_equal(got->host_private_key.len, 2);
	assert_memory_equal(got->host_private_key.data, "k1", 2);
	pair_record_free(got);
	pair_record_free(rec);
	fx_free(f);
}

static void test_mute_daemon_times_out(void **state)
{
	struct fx *f = fx_new(M_MUTE, false);
	struct umc_device devs[2];
	size_t n = 0;
	uint64_t t0 = lp_clock_now(&f->clk), took;

	assert_int_equal(umc_list_devices(f->c, devs, 2, &n, dl(f, 200), NULL), LP_ETIMEDOUT);
	took = lp_clock_now(&f->clk) - t0;
	assert_true(took >= 190 * LP_NS_PER_MS);
	assert_true(took < 2 * LP_NS_PER_S);
	fx_free(f);
}

static void test_oversize_and_bad_tag(void **state)
{
	struct fx *f = fx_new(M_HUGE, false);
	struct lp_errinfo e = {0};
	char buid[UMC_BUID_LEN + 1];

	assert_int_equal(umc_read_buid(f->c, buid, dl(f, 2000), &e), LP_ETOOBIG);
	fx_free(f);
	f = fx_new(M_BADTAG, false);
	assert_int_equal(umc_read_buid(f->c, buid, dl(f, 2000), &e), LP_EPROTO);
	assert_non_null(strstr(e.msg, "tag"));
	fx_free(f);
}

/* Who serves the socket: SO_PEERCRED names this process (the scripted
 * daemon is a thread of it); TCP and an absent daemon say nothing. */
static void test_peer_pid(void **state)
{
	struct fx *f = fx_new(M_NORMAL, false);
	struct lp_clock clk;
	struct umc *c = NULL;

	assert_int_equal(umc_peer_pid(f->c), (long)getpid());
	fx_free(f);
	f = fx_new(M_NORMAL, true);
	assert_int_equal(umc_peer_pid(f->c), 0);
	fx_free(f);
	lp_clock_init_real(&clk);
	assert_int_equal(umc_new("UNIX:/nonexistent/usbmuxd", &clk, NULL, &c, NULL), 0);
	assert_int_equal(umc_peer_pid(c), 0);
	umc_free(c);
}

static void test_no_daemon(void **state)
{
	struct lp_clock clk;
	struct umc *c = NULL;
	struct umc_device devs[2];
	struct lp_errinfo e = {0};
	size_t n = 0;

	lp_clock_init_real(&clk);
	assert_int_equal(umc_new("UNIX:/nonexistent/usbmuxd", &clk, NULL, &c, NULL), 0);
	assert_int_equal(umc_list_devices(c, devs, 2, &n, lp_clock_deadline_ms(&clk, 1000), &e),
			 LP_ENOENT);
	assert_non_null(strstr(e.msg, "usbmuxd is not running at /nonexistent/usbmuxd"));
	umc_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_request),
		cmocka_unit_test(test_decode_header_errors),
		cmocka_unit_test(test_decode_body),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_list_devices),
		cmocka_unit_test(test_list_devices_tcp),
		cmocka_unit_test(test_connect_lockdown),
		cmocka_unit_test(test_buid_and_records),
		cmocka_unit_test(test_mute_daemon_times_out),
		cmocka_unit_test(test_oversize_and_bad_tag),
		cmocka_unit_test(test_peer_pid),
		cmocka_unit_test(test_no_daemon),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
