/* test_replaydev.c - the replay device model driven directly: a golden
 * capture is loaded, control requests are answered from it, and a host-role
 * usbmux codec wired to the model's bulk endpoints sends lockdown requests
 * that must be matched by meaning, in the recording's order, with the
 * recorded delays, and diverge with a message naming the alternative.
 * Reference: src/device/replaydev.h; captures/regen.sh made the inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/lockdown_frame.h"
#include "proto/mux.h"
#include "src/device/replaydev.h"
#include "src/base/lp_error.h"

#define CAP_PAIR "captures/sim-healthy-pair.pcapng"
#define CAP_CABLE "captures/sim-healthy-cable.pcapng"
#define CAP_LAB_USBMUXD "captures/lab-usbmuxd-usbmon.pcap"
#define EP_OUT 0x04
#define EP_IN 0x85

struct fx {
	struct lp_clock clock;
	struct lp_log log;
	struct rdev *rd;
	struct mux *host;
	uint64_t now;
	uint32_t conn;
	int connect_result, closes;
	bool connected;
	struct lkd_framer *fr;
	uint8_t ep_out, ep_in;
};

static void on_connect(void *ud, uint32_t conn, uint16_t port, int result)
{
	struct fx *f = ud;
	(void)port;
	f->conn = conn;
	f->connect_result = result;
	f->connected = true;
}

static void on_data(void *ud, uint32_t conn, const uint8_t *d, size_t n)
{
	struct fx *f = ud;
	(void)conn;
	assert_int_equal(lkd_framer_feed(f->fr, d, n), 0);
}

static void on_close(void *ud, uint32_t conn, int reason)
{
	struct fx *f = ud;
	(void)conn;
	(void)reason;
	f->closes++;
}

static const struct mux_cbs host_cbs = {
	.on_connect = on_connect, .on_data = on_data, .on_close = on_close};

static struct fx *fx_new(const char *path)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct lp_errinfo e = {0};

	assert_non_null(f);
	lp_clock_init_virtual(&f->clock, 0);
	f->log.max = LP_LOG_ERROR;
	assert_int_equal(rdev_load_path(path, NULL, &f->clock, &f->log, &f->rd, &e), 0);
	devcore_model_ops.reset(rdev_model(f->rd), 0);
	f->fr = lkd_framer_new();
	f->ep_out = EP_OUT;
	f->ep_in = EP_IN;
	return f;
}

static void fx_free(struct fx *f)
{
	mux_free(f->host);
	lkd_framer_free(f->fr);
	rdev_free(f->rd);
	free(f);
}

static int control(struct fx *f, uint8_t rt, uint8_t req, uint16_t val, uint16_t idx, uint8_t *buf,
		   uint16_t len, size_t *got)
{
	uint8_t setup[8] = {rt,		  req,
			    (uint8_t)val, (uint8_t)(val >> 8),
			    (uint8_t)idx, (uint8_t)(idx >> 8),
			    (uint8_t)len, (uint8_t)(len >> 8)};
	return devcore_model_ops.control(rdev_model(f->rd), setup, buf, len, got, f->now);
}

/* Move packets both ways; when nothing moves, run the model's next timer. */
static void pump(struct fx *f, uint64_t until)
{
	for (int i = 0; i < 10000; i++) {
		bool moved = false;
		const uint8_t *d;
		uint8_t *p;
		size_t n;
		bool zlp;

		while (mux_out_take(f->host, &p, &n) == 0) {
			devcore_model_ops.bulk_out(rdev_model(f->rd), f->ep_out, p, n, f->now);
			free(p);
			moved = true;
		}
		while (devcore_model_ops.bulk_in_next(rdev_model(f->rd), f->ep_in, &d, &n, &zlp,
						      f->now) == 0) {
			mux_feed(f->host, d, n, true);
			moved = true;
		}
		if (moved)
			continue;
		uint64_t t = devcore_model_ops.next_timer(rdev_model(f->rd), f->now);
		if (t == UINT64_MAX || t > until)
			return;
		f->now = t;
		devcore_model_ops.tick(rdev_model(f->rd), f->now);
	}
	fail_msg("pump did not settle");
}

static void open_lockdown(struct fx *f)
{
	size_t got;

	assert_int_equal(control(f, 0x00, 9, 4, 0, NULL, 0, &got), 0);
	f->host = mux_new(MUX_ROLE_HOST, &host_cbs, f, &f->log);
	assert_non_null(f->host);
	assert_int_equal(mux_start(f->host, 2), 0);
	pump(f, f->now);
	assert_int_equal(mux_version(f->host), 2);
	assert_int_equal(mux_connect(f->host, MUX_PORT_LOCKDOWN, &f->conn), 0);
	pump(f, f->now);
	assert_true(f->connected);
	assert_int_equal(f->connect_result, 0);
}

/* Send a request, pump until a reply is there (at most 1 s later), return it. */
static plist_t ask(struct fx *f, plist_t req)
{
	uint8_t *b;
	size_t n;
	plist_t reply = NULL;

	assert_int_equal(lkd_frame_encode(req, &b, &n), 0);
	plist_free(req);
	assert_int_equal(mux_send(f->host, f->conn, b, n), 0);
	free(b);
	pump(f, f->now + LP_NS_PER_S);
	if (lkd_framer_next(f->fr, &reply, NULL, NULL) != 0)
		return NULL;
	return reply;
}

static plist_t request(const char *name, const char *key)
{
	plist_t d = plist_new_dict();
	plist_dict_set_item(d, "Label", plist_new_string("test"));
	plist_dict_set_item(d, "Request", plist_new_string(name));
	if (key)
		plist_dict_set_item(d, "Key", plist_new_string(key));
	return d;
}

static void test_control_replies(void **state)
{
	struct fx *f = fx_new(CAP_PAIR);
	uint8_t buf[256];
	size_t got = 0;
	struct rdev_summary s;
	uint16_t vid, pid;
	uint8_t ncfg;

	(void)state;
	rdev_get_summary(f->rd, &s);
	assert_int_equal(s.vid, 0x05ac);
	assert_int_equal(strlen(s.udid), 40);
	devcore_model_ops.identity(rdev_model(f->rd), &vid, &pid, &ncfg);
	assert_int_equal(pid, 0x12a8);
	assert_int_equal(ncfg, 4);
	assert_int_equal(control(f, 0x80, 6, 0x0100, 0, buf, 18, &got), 0);
	assert_int_equal(got, 18);
	assert_int_equal(buf[8] | buf[9] << 8, 0x05ac);
	/* a shorter wLength truncates the recorded reply */
	assert_int_equal(control(f, 0x80, 6, 0x0100, 0, buf, 8, &got), 0);
	assert_int_equal(got, 8);
	/* the serial string asked for with another LANGID still comes back */
	assert_int_equal(control(f, 0x80, 6, 0x0303, 0x0407, buf, 255, &got), 0);
	assert_true(got > 2);
	/* never recorded: stall */
	assert_int_equal(control(f, 0xc0, 0x99, 0, 0, buf, 4, &got), LP_ESTALL);
	assert_int_equal(control(f, 0x80, 6, 0x0207, 0, buf, 255, &got), LP_ESTALL);
	/* configurations come from the recorded descriptors */
	assert_int_equal(control(f, 0x00, 9, 9, 0, NULL, 0, &got), LP_ESTALL);
	assert_int_equal(control(f, 0x00, 9, 4, 0, NULL, 0, &got), 0);
	assert_int_equal(control(f, 0x80, 8, 0, 0, buf, 1, &got), 0);
	assert_int_equal(buf[0], 4);
	assert_int_equal(devcore_model_ops.max_packet(rdev_model(f->rd), EP_IN), 512);
	fx_free(f);
}

static void test_pair_sequence_in_order(void **state)
{
	struct fx *f = fx_new(CAP_PAIR);
	plist_t rep;
	uint64_t t0;

	(void)state;
	open_lockdown(f);
	rep = ask(f, request("QueryType", NULL));
	assert_non_null(rep);
	assert_string_equal(lkd_dict_str(rep, "Type"), "com.apple.mobile.lockdown");
	plist_free(rep);
	/* matched by Key, not by position: ProductVersion before UniqueDeviceID */
	rep = ask(f, request("GetValue", "ProductVersion"));
	assert_non_null(rep);
	assert_string_equal(lkd_dict_str(rep, "Key"), "ProductVersion");
	plist_free(rep);
	/* the recording answered Pair pending, pending, then success */
	for (int i = 0; i < 3; i++) {
		t0 = f->now;
		rep = ask(f, request("Pair", NULL));
		assert_non_null(rep);
		if (i < 2)
			assert_string_equal(lkd_dict_str(rep, "Error"),
					    "PairingDialogResponsePending");
		else
			assert_null(lkd_dict_str(rep, "Error"));
		/* the reply is held back by the recorded delay */
		assert_true(f->now > t0);
		plist_free(rep);
	}
	/* used up: the last reply repeats */
	rep = ask(f, request("Pair", NULL));
	assert_non_null(rep);
	assert_null(lkd_dict_str(rep, "Error"));
	plist_free(rep);
	assert_null(rdev_divergence(f->rd));
	assert_int_equal(f->closes, 0);
	fx_free(f);
}

static void test_divergence(void **state)
{
	struct fx *f = fx_new(CAP_CABLE);
	plist_t rep;
	const char *d;

	(void)state;
	open_lockdown(f);
	rep = ask(f, request("QueryType", NULL));
	assert_non_null(rep);
	plist_free(rep);
	rep = ask(f, request("GetValue", "Foo"));
	assert_null(rep);
	assert_int_equal(f->closes, 1); /* the device reset the connection */
	d = rdev_divergence(f->rd);
	assert_non_null(d);
	assert_non_null(strstr(d, "host sent GetValue Key=Foo; recording has next: QueryType (x"));
	fx_free(f);
}

/* The lab's capture of Debian's usbmuxd + libimobiledevice (another host,
 * other GetValue keys): UniqueDeviceID is the recorded USB serial, a key it
 * never asked is MissingValue - the connection stays up, no divergence; the
 * EPROTO completions as the gadget re-enumerated are its disconnect, not a
 * link error rate. */
static void test_getvalue_keys_another_host_asked(void **state)
{
	struct fx *f = fx_new(CAP_LAB_USBMUXD);
	struct rdev_summary s;
	plist_t rep;

	(void)state;
	f->ep_out = 0x07;
	f->ep_in = 0x86;
	rdev_get_summary(f->rd, &s);
	assert_string_equal(s.udid, "228171a8a8e7ee4e3b257903b58b15de0a29d3f6");
	assert_int_equal(s.addr, 2); /* not the address-0 descriptor read */
	assert_int_equal(s.disconnects, 1);
	assert_int_equal(s.bulk_errors, 0);
	open_lockdown(f);
	rep = ask(f, request("GetValue", "UniqueDeviceID"));
	assert_non_null(rep);
	assert_string_equal(lkd_dict_str(rep, "Key"), "UniqueDeviceID");
	assert_string_equal(lkd_dict_str(rep, "Value"), "228171a8a8e7ee4e3b257903b58b15de0a29d3f6");
	assert_null(lkd_dict_str(rep, "Error"));
	assert_null(plist_dict_get_item(rep, "Result")); /* real reply shape */
	plist_free(rep);
	rep = ask(f, request("GetValue", "ProductType"));
	assert_non_null(rep);
	assert_string_equal(lkd_dict_str(rep, "Key"), "ProductType");
	assert_string_equal(lkd_dict_str(rep, "Error"), "MissingValue");
	plist_free(rep);
	/* recorded: answered as recorded */
	rep = ask(f, request("GetValue", "ProductVersion"));
	assert_non_null(rep);
	assert_string_equal(lkd_dict_str(rep, "Value"), "16.7.2");
	plist_free(rep);
	/* other requests the recording lacks still diverge */
	assert_int_equal(f->closes, 0);
	assert_null(rdev_divergence(f->rd));
	rdev_get_summary(f->rd, &s);
	assert_int_equal(s.unrecorded, 1);
	rep = ask(f, request("EnterRecovery", NULL));
	assert_null(rep);
	assert_int_equal(f->closes, 1);
	assert_non_null(rdev_divergence(f->rd));
	fx_free(f);
}

/* A recording without any GetValue (a cable test's) cannot say what the
 * device's UniqueDeviceID is asked over lockdown: a divergence. */
static void test_no_getvalue_recorded_diverges(void **state)
{
	struct fx *f = fx_new(CAP_CABLE);
	plist_t rep;

	(void)state;
	open_lockdown(f);
	rep = ask(f, request("GetValue", "UniqueDeviceID"));
	assert_null(rep);
	assert_int_equal(f->closes, 1);
	assert_non_null(strstr(rdev_divergence(f->rd), "host sent GetValue Key=UniqueDeviceID"));
	fx_free(f);
}

static void test_closed_port_refused(void **state)
{
	struct fx *f = fx_new(CAP_CABLE);
	uint32_t c;

	(void)state;
	open_lockdown(f);
	f->connected = false;
	assert_int_equal(mux_connect(f->host, 1, &c), 0);
	pump(f, f->now);
	assert_true(f->connected);
	assert_int_equal(f->connect_result, LP_ECONNREFUSED);
	fx_free(f);
}

static void test_meaning(void **state)
{
	char m[RDEV_MEANING_MAX];
	plist_t d = request("GetValue", "ProductVersion");

	(void)state;
	plist_dict_set_item(d, "Domain", plist_new_string("com.apple.x"));
	rdev_meaning(d, m, sizeof(m));
	assert_string_equal(m, "GetValue Key=ProductVersion Domain=com.apple.x");
	plist_free(d);
	d = request("StartService", NULL);
	plist_dict_set_item(d, "Service", plist_new_string("com.apple.mobilebackup2"));
	rdev_meaning(d, m, sizeof(m));
	assert_string_equal(m, "StartService Service=com.apple.mobilebackup2");
	plist_free(d);
	d = request("Pair", "Ignored");
	rdev_meaning(d, m, sizeof(m));
	assert_string_equal(m, "Pair");
	plist_free(d);
	d = plist_new_dict();
	plist_dict_set_item(d, "Request", plist_new_string("Evil\033[2J"));
	rdev_meaning(d, m, sizeof(m));
	assert_string_equal(m, "Evil?[2J");
	plist_free(d);
}

static void test_bad_input(void **state)
{
	struct lp_clock c;
	struct lp_log log = {.max = LP_LOG_ERROR};
	struct rdev *rd = NULL;
	struct lp_errinfo e = {0};
	static const char junk[] = "this is not a capture at all";

	(void)state;
	lp_clock_init_virtual(&c, 0);
	assert_int_equal(
		rdev_load_file(fmemopen((void *)junk, sizeof(junk), "rb"), NULL, &c, &log, &rd, &e),
		LP_EFORMAT);
	assert_null(rd);
	assert_int_equal(rdev_load_path("/nonexistent.pcapng", NULL, &c, &log, &rd, &e), LP_ENOENT);
	assert_int_equal(
		rdev_load_path(CAP_PAIR, &(struct rdev_opts){.udid = "nope"}, &c, &log, &rd, &e),
		LP_ENOENT);
	assert_non_null(strstr(e.msg, "nope"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_replies),
		cmocka_unit_test(test_pair_sequence_in_order),
		cmocka_unit_test(test_divergence),
		cmocka_unit_test(test_getvalue_keys_another_host_asked),
		cmocka_unit_test(test_no_getvalue_recorded_diverges),
		cmocka_unit_test(test_closed_port_refused),
		cmocka_unit_test(test_meaning),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
