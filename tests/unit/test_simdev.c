/* test_simdev.c - the simulated iPhone driven through its model ops, as a
 * host would see it (the host is tests/unit/simhost.h): descriptors and
 * modes, usbmux, lockdown values, pairing and its refusals, session TLS,
 * persistence, garbage. The real-device facts are test_real_device_facts.c.
 * Reference: doc/protocol.md section 0 (descriptor table), 2, 4. */
#include "tests/unit/simhost.h"

/* ----------------------------------------------------------------- tests */

static void test_descriptors(void **state)
{
	struct host h;
	uint8_t buf[1024];
	size_t n;
	struct usbd_device dd;
	struct usbd_config cfg;
	char str[256];
	uint16_t lang;
	uint8_t ein, eout;
	uint16_t mps;

	host_open(&h, "healthy", NULL);
	assert_int_equal(ctl(&h, 0x80, 6, 0x0100, 0, buf, 64, &n), 0);
	assert_int_equal(n, 18);
	assert_int_equal(usbd_parse_device(buf, n, &dd), 0);
	assert_int_equal(dd.idVendor, 0x05ac);
	assert_int_equal(dd.idProduct, 0x12a8);
	assert_int_equal(dd.bcdUSB, 0x0200);
	assert_int_equal(dd.bcdDevice, 0x0804);
	assert_int_equal(dd.bMaxPacketSize0, 64);
	assert_int_equal(dd.bDeviceClass, 0);
	assert_int_equal(dd.bNumConfigurations, 4);

	assert_int_equal(ctl(&h, 0x80, 6, 0x0300, 0, buf, 255, &n), 0);
	assert_int_equal(usbd_parse_langid(buf, n, &lang), 0);
	assert_int_equal(lang, 0x0409);
	assert_int_equal(ctl(&h, 0x80, 6, 0x0300 | dd.iManufacturer, 0x409, buf, 255, &n), 0);
	assert_int_equal(usbd_parse_string(buf, n, str, sizeof(str)), 0);
	assert_string_equal(str, "Apple Inc.");
	assert_int_equal(ctl(&h, 0x80, 6, 0x0300 | dd.iProduct, 0x409, buf, 255, &n), 0);
	usbd_parse_string(buf, n, str, sizeof(str));
	assert_string_equal(str, "iPhone");
	assert_int_equal(ctl(&h, 0x80, 6, 0x0300 | dd.iSerialNumber, 0x409, buf, 255, &n), 0);
	usbd_parse_string(buf, n, str, sizeof(str));
	assert_int_equal(strlen(str), 40);
	assert_string_equal(str, simdev_udid(h.s));
	assert_int_equal(strspn(str, "0123456789abcdef"), 40);

	/* wLength 9: only the header, wTotalLength tells the rest */
	assert_int_equal(ctl(&h, 0x80, 6, 0x0200, 0, buf, 9, &n), 0);
	assert_int_equal(n, 9);
	for (int i = 0; i < 4; i++) {
		uint16_t total;

		assert_int_equal(ctl(&h, 0x80, 6, 0x0200 | i, 0, buf, 9, &n), 0);
		total = (uint16_t)(buf[2] | buf[3] << 8);
		assert_int_equal(ctl(&h, 0x80, 6, 0x0200 | i, 0, buf, sizeof(buf), &n), 0);
		assert_int_equal(n, total);
		assert_int_equal(usbd_parse_config(buf, n, &cfg), 0);
		assert_int_equal(cfg.bConfigurationValue, i + 1);
		const struct usbd_interface *mux = usbd_find_usbmux(&cfg, &ein, &eout, &mps);
		if (i == 2 || i == 3) {
			assert_non_null(mux);
			assert_int_equal(ein, 0x85);
			assert_int_equal(eout, 0x04);
			assert_int_equal(mps, 512);
		} else {
			assert_null(mux);
		}
		assert_int_equal(cfg.iface[0].bInterfaceClass, i == 1 ? 0x01 : 0x06);
		if (i == 0)
			assert_int_equal(cfg.bNumInterfaces, 1);
		if (i == 3) {
			assert_int_equal(cfg.bNumInterfaces, 3);
			assert_int_equal(cfg.iface[2].bInterfaceClass, 0xff);
			assert_int_equal(cfg.iface[2].bInterfaceSubClass, 0xfd);
		}
	}
	assert_int_equal(ctl(&h, 0x80, 6, 0x0204, 0, buf, 255, &n), LP_ESTALL);
	/* the gadget asks for the full-speed set of the same device */
	assert_int_equal(simdev_descriptor(h.s, TR_SPEED_FULL, 2, 3, buf, sizeof(buf), &n), 0);
	assert_int_equal(usbd_parse_config(buf, n, &cfg), 0);
	assert_non_null(usbd_find_usbmux(&cfg, &ein, &eout, &mps));
	assert_int_equal(mps, 64);
	/* usbmuxd's mode requests, and something nobody answers */
	assert_int_equal(ctl(&h, 0xc0, 0x45, 0, 0, buf, 4, &n), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "\x03\x03\x03\x00", 4);
	assert_int_equal(ctl(&h, 0xc0, 0x52, 0, 1, buf, 1, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(buf[0], 0);
	assert_int_equal(ctl(&h, 0x40, 0x40, 0, 0, NULL, 0, &n), LP_ESTALL);
	assert_int_equal(ctl(&h, 0x80, 0x33, 0, 0, buf, 4, &n), LP_ESTALL);
	host_close(&h);

	/* full speed: 64-byte bulk packets */
	host_open(&h, "full-speed", NULL);
	assert_int_equal(ctl(&h, 0x80, 6, 0x0202, 0, buf, sizeof(buf), &n), 0);
	assert_int_equal(usbd_parse_config(buf, n, &cfg), 0);
	assert_non_null(usbd_find_usbmux(&cfg, &ein, &eout, &mps));
	assert_int_equal(mps, 64);
	struct tr_sim_link link;
	assert_int_equal(simdev_link(h.s, &link), 0);
	assert_int_equal(link.speed, TR_SPEED_FULL);
	assert_false(link.link_off);
	host_close(&h);
}

static void test_other_modes(void **state)
{
	struct host h;
	uint8_t buf[512];
	size_t n;
	struct usbd_device dd;
	char str[256];

	host_open(&h, "dfu", NULL);
	ctl(&h, 0x80, 6, 0x0100, 0, buf, 18, &n);
	usbd_parse_device(buf, n, &dd);
	assert_int_equal(dd.idProduct, 0x1227);
	assert_int_equal(dd.bNumConfigurations, 1);
	assert_int_equal(ctl(&h, 0x80, 6, 0x0300 | dd.iSerialNumber, 0x409, buf, 255, &n), 0);
	usbd_parse_string(buf, n, str, sizeof(str));
	assert_non_null(strstr(str, "CPID:8010"));
	assert_non_null(strstr(str, "SRTG:[iBoot-"));
	assert_int_equal(ctl(&h, 0xc0, 0x45, 0, 0, buf, 4, &n), LP_ESTALL);
	assert_int_equal(ctl(&h, 0x00, 9, 3, 0, NULL, 0, NULL), LP_ESTALL);
	host_close(&h);

	host_open(&h, "recovery", NULL);
	ctl(&h, 0x80, 6, 0x0100, 0, buf, 18, &n);
	usbd_parse_device(buf, n, &dd);
	assert_int_equal(dd.idProduct, 0x1281);
	host_close(&h);

	host_open(&h, "camera-only", NULL);
	ctl(&h, 0x80, 6, 0x0100, 0, buf, 18, &n);
	usbd_parse_device(buf, n, &dd);
	assert_int_equal(dd.bNumConfigurations, 1);
	assert_int_equal(ctl(&h, 0x00, 9, 3, 0, NULL, 0, NULL), LP_ESTALL);
	assert_int_equal(ctl(&h, 0x00, 9, 1, 0, NULL, 0, NULL), 0);
	assert_int_equal(ops->max_packet(simdev_model(h.s), SIMDEV_EP_MUX_IN), 0);
	host_close(&h);

	struct lp_clock clk;
	struct simdev *s;
	lp_clock_init_virtual(&clk, 0);
	s = simdev_new("charge-only", NULL, &clk, NULL, NULL);
	assert_non_null(s);
	assert_false(ops->attached(simdev_model(s), 0));
	assert_false(ops->attached(simdev_model(s), 10 * LP_NS_PER_S));
	simdev_free(s);
	struct lp_errinfo e = {0};
	assert_null(simdev_new("no-such-profile", NULL, &clk, NULL, &e));
	assert_int_equal(e.code, LP_EINVAL);

	/* flaky: lossy link and one re-enumeration */
	struct tr_sim_link link;
	s = simdev_new("flaky", NULL, &clk, NULL, NULL);
	assert_non_null(s);
	assert_int_equal(simdev_link(s, &link), 0);
	assert_true(link.error_rate > 0.02 && link.error_rate < 0.04);
	assert_int_equal(link.disconnect_at_ns, 700 * LP_NS_PER_MS);
	assert_int_equal(link.reenum_gap_ns, 300 * LP_NS_PER_MS);
	assert_int_equal(link.speed, TR_SPEED_HIGH);
	simdev_free(s);

	/* the profile table lists every profile the brief names */
	const char *want[] = {"healthy",
			      "charge-only",
			      "full-speed",
			      "flaky",
			      "camera-only",
			      "dfu",
			      "recovery",
			      "locked",
			      "deny",
			      "never-answers",
			      "forgot-host",
			      "unplug-during-pair",
			      "slow-link",
			      "tls-reject",
			      "usbc-on-usb2",
			      "usbc-superspeed",
			      "supervised",
			      "locked-after-restart",
			      "reenum-after-trust"};
	assert_int_equal(simdev_profile_count(), 19);
	for (size_t i = 0; i < 19; i++) {
		const char *name, *sum;
		assert_int_equal(simdev_profile_at(i, &name, &sum), 0);
		assert_string_equal(name, want[i]);
		assert_true(strlen(sum) > 10);
	}
	assert_int_equal(simdev_profile_at(19, NULL, NULL), LP_EINVAL);
}

static void test_udid24(void **state)
{
	struct host h;
	struct simdev_opts o = {0};
	uint8_t buf[512];
	size_t n;
	char str[256], udid[64];

	o.udid24 = true;
	host_open(&h, "healthy", &o);
	assert_int_equal(ctl(&h, 0x80, 6, 0x0303, 0x409, buf, 255, &n), 0);
	usbd_parse_string(buf, n, str, sizeof(str));
	assert_int_equal(strlen(str), 24);
	usbd_serial_to_udid(str, udid, sizeof(udid));
	assert_string_equal(udid, simdev_udid(h.s));
	host_close(&h);
}

static void test_usbmux_needs_config(void **state)
{
	struct host h;
	uint8_t buf[8];
	size_t n;
	const uint8_t *d;
	bool zlp;
	uint8_t *pkt;

	host_open(&h, "healthy", NULL);
	/* unconfigured: the VERSION request goes nowhere, nothing comes back */
	assert_int_equal(mux_start(h.m, 2), 0);
	assert_int_equal(mux_out_take(h.m, &pkt, &n), 0);
	ops->bulk_out(simdev_model(h.s), SIMDEV_EP_MUX_OUT, pkt, n, 0);
	free(pkt);
	assert_int_equal(ops->bulk_in_next(simdev_model(h.s), SIMDEV_EP_MUX_IN, &d, &n, &zlp, 0),
			 LP_EAGAIN);
	assert_int_equal(ops->max_packet(simdev_model(h.s), SIMDEV_EP_MUX_IN), 0);
	mux_free(h.m);
	h.m = mux_new(MUX_ROLE_HOST, &host_cbs, &h, NULL);

	assert_int_equal(ctl(&h, 0x00, 9, 3, 0, NULL, 0, NULL), 0);
	assert_int_equal(ctl(&h, 0x80, 8, 0, 0, buf, 1, &n), 0);
	assert_int_equal(buf[0], 3);
	assert_int_equal(ops->max_packet(simdev_model(h.s), SIMDEV_EP_MUX_IN), 512);
	host_mux_up(&h);
	struct simdev_state st;
	simdev_get_state(h.s, now(&h), &st);
	assert_true(st.mux_active);
	assert_int_equal(st.config, 3);

	/* a closed port is refused */
	uint32_t c;
	assert_int_equal(mux_connect(h.m, 1234, &c), 0);
	pump(&h);
	assert_int_equal(h.last_result, LP_ECONNREFUSED);

	/* back to PTP: usbmux is gone */
	assert_int_equal(ctl(&h, 0x00, 9, 1, 0, NULL, 0, NULL), 0);
	assert_int_equal(ops->max_packet(simdev_model(h.s), SIMDEV_EP_MUX_IN), 0);
	simdev_get_state(h.s, now(&h), &st);
	assert_false(st.mux_active);
	host_close(&h);
}

static void test_query_and_values(void **state)
{
	struct host h;
	struct simdev_opts o = quiet_opts();
	uint32_t c;
	plist_t r, req;

	o.device_name = "Test Phone";
	host_open(&h, "healthy", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);

	r = request(&h, c, req_new("QueryType"));
	assert_success(r);
	assert_string_equal(lkd_dict_str(r, "Request"), "QueryType");
	assert_string_equal(lkd_dict_str(r, "Type"), "com.apple.mobile.lockdown");
	plist_free(r);

	req = req_new("GetValue");
	plist_dict_set_item(req, "Key", plist_new_string("ProductVersion"));
	r = request(&h, c, req);
	assert_success(r);
	assert_string_equal(lkd_dict_str(r, "Value"), "16.7.2");
	plist_free(r);

	req = req_new("GetValue");
	plist_dict_set_item(req, "Key", plist_new_string("DeviceName"));
	r = request(&h, c, req);
	assert_string_equal(lkd_dict_str(r, "Value"), "Test Phone");
	plist_free(r);

	/* the whole set without a session: public keys only */
	r = request(&h, c, req_new("GetValue"));
	plist_t v = plist_dict_get_item(r, "Value");
	assert_non_null(v);
	assert_string_equal(lkd_dict_str(v, "UniqueDeviceID"), simdev_udid(h.s));
	assert_string_equal(lkd_dict_str(v, "ProductType"), "iPhone10,6");
	assert_string_equal(lkd_dict_str(v, "DeviceClass"), "iPhone");
	assert_null(plist_dict_get_item(v, "SerialNumber"));
	plist_free(r);

	req = req_new("GetValue");
	plist_dict_set_item(req, "Key", plist_new_string("SerialNumber"));
	r = request(&h, c, req);
	assert_string_equal(lkd_dict_str(r, "Key"), "SerialNumber");
	assert_error(r, "GetProhibited");

	req = req_new("GetValue");
	plist_dict_set_item(req, "Domain", plist_new_string("com.apple.mobile.battery"));
	assert_error(request(&h, c, req), "GetProhibited");

	/* a key the phone does not publish is refused before a session, not
	 * reported missing (IDAMCapability on the recorded device) */
	req = req_new("GetValue");
	plist_dict_set_item(req, "Key", plist_new_string("NoSuchKey"));
	assert_error(request(&h, c, req), "GetProhibited");

	req = req_new("SetValue");
	plist_dict_set_item(req, "Key", plist_new_string("UntrustedHostBUID"));
	plist_dict_set_item(req, "Value", plist_new_string("ABC"));
	r = request(&h, c, req);
	assert_success(r);
	plist_free(r);
	req = req_new("SetValue");
	plist_dict_set_item(req, "Key", plist_new_string("DeviceName"));
	plist_dict_set_item(req, "Value", plist_new_string("x"));
	assert_error(request(&h, c, req), "SetProhibited");

	assert_error(request(&h, c, req_new("FlyToTheMoon")), "InvalidResponse");
	assert_error(request(&h, c, start_session_req("00000000-0000-0000-0000-000000000000")),
		     "InvalidHostID");
	/* libimobiledevice without a pair record sends no HostID; usbmuxd's
	 * preflight needs InvalidHostID to go on and raise the dialog */
	assert_error(request(&h, c, req_new("StartSession")), "InvalidHostID");
	req = req_new("StartService");
	plist_dict_set_item(req, "Service", plist_new_string("com.apple.mobilebackup2"));
	assert_error(request(&h, c, req), "SessionInactive");
	req = req_new("StartService");
	plist_dict_set_item(req, "Service", plist_new_string("com.apple.nope"));
	assert_error(request(&h, c, req), "InvalidService");
	r = request(&h, c, req_new("Goodbye"));
	assert_success(r);
	plist_free(r);
	host_close(&h);
}

static void test_pair_trust(void **state)
{
	struct host h;
	struct simdev_opts o = quiet_opts();
	struct record rec, rec2;
	struct simdev_state st;
	uint32_t c;

	host_open(&h, "healthy", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "11111111-2222-3333-4444-555555555555");

	assert_error(request(&h, c, pair_req(&rec)), "PairingDialogResponsePending");
	advance(&h, 1000);
	assert_error(request(&h, c, pair_req(&rec)), "PairingDialogResponsePending");
	simdev_get_state(h.s, now(&h), &st);
	assert_int_equal(st.dialogs_shown, 1);
	assert_int_equal(st.dialog, SIMDEV_DIALOG_SHOWN);
	advance(&h, 1100);
	/* a retry with a fresh record (usbmuxd's preflight) is accepted too */
	record_make(&h, c, &rec2, "66666666-2222-3333-4444-555555555555");
	plist_t r = request(&h, c, pair_req(&rec2));
	assert_success(r);
	assert_non_null(plist_dict_get_item(r, "EscrowBag"));
	plist_free(r);
	simdev_get_state(h.s, now(&h), &st);
	assert_int_equal(st.pairs_ok, 1);
	assert_int_equal(st.pair_requests, 3);
	assert_int_equal(st.paired_hosts, 1);
	assert_string_equal(simdev_paired_host(h.s, 0), rec2.host_id);
	assert_null(simdev_paired_host(h.s, 1));
	assert_error(request(&h, c, start_session_req(rec.host_id)), "InvalidHostID");

	/* a device certificate for some other key is refused */
	struct record bad = rec;
	bad.dev = make_cert(other_key, root_key, false);
	assert_error(request(&h, c, pair_req(&bad)), "InvalidPairRecord");
	X509_free(bad.dev);
	/* a host certificate the root did not sign is refused */
	bad = rec;
	bad.host = make_cert(host_key, other_key, false);
	assert_error(request(&h, c, pair_req(&bad)), "InvalidPairRecord");
	X509_free(bad.host);

	/* ValidatePair / Unpair */
	plist_t req = req_new("ValidatePair"), pr = plist_new_dict();
	plist_dict_set_item(pr, "HostID", plist_new_string(rec2.host_id));
	plist_dict_set_item(req, "PairRecord", pr);
	r = request(&h, c, req);
	assert_success(r);
	plist_free(r);
	req = req_new("Unpair");
	pr = plist_new_dict();
	plist_dict_set_item(pr, "HostID", plist_new_string(rec2.host_id));
	plist_dict_set_item(req, "PairRecord", pr);
	r = request(&h, c, req);
	assert_success(r);
	plist_free(r);
	assert_error(request(&h, c, start_session_req(rec2.host_id)), "InvalidHostID");
	record_free(&rec);
	record_free(&rec2);
	host_close(&h);
}

static void np_send(struct host *h, uint32_t c, const char *cmd, const char *name)
{
	plist_t d = plist_new_dict();
	uint8_t *f;
	size_t fl;

	plist_dict_set_item(d, "Command", plist_new_string(cmd));
	if (name)
		plist_dict_set_item(d, "Name", plist_new_string(name));
	assert_int_equal(lkd_frame_encode(d, &f, &fl), 0);
	plist_free(d);
	assert_int_equal(mux_send(h->m, c, f, fl), 0);
	free(f);
	pump(h);
}

/* usbmuxd's preflight: Pair (dialog), notification proxy without a session,
 * observe request_pair; Trust posts it; the paired phone re-enumerates. */
static void test_preflight_notification(void **state)
{
	struct host h;
	struct record rec;
	struct simdev_state st;
	uint32_t c, np;
	plist_t r, req;

	host_open(&h, "healthy", NULL);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "AAAAAAAA-2222-3333-4444-555555555555");
	assert_error(request(&h, c, pair_req(&rec)), "PairingDialogResponsePending");
	req = req_new("StartService");
	plist_dict_set_item(req, "Service",
			    plist_new_string("com.apple.mobile.insecure_notification_proxy"));
	r = request(&h, c, req);
	assert_success(r);
	uint64_t port = 0;
	plist_get_uint_val(plist_dict_get_item(r, "Port"), &port);
	assert_true(port > 0 && port < 65536 && port != SIMDEV_PORT_LOCKDOWN);
	assert_int_equal(lkd_dict_bool(r, "EnableServiceSSL", 0), 0);
	plist_free(r);
	np = connect_port(&h, (uint16_t)port);
	np_send(&h, np, "ObserveNotification", "com.apple.mobile.lockdown.request_pair");
	np_send(&h, np, "ObserveNotification", "com.apple.mobile.lockdown.request_host_buid");
	assert_int_equal(h.rxlen[np], 0);

	advance(&h, 2100);
	r = take_frame(&h.rx[np], &h.rxlen[np]);
	assert_non_null(r);
	assert_string_equal(lkd_dict_str(r, "Command"), "RelayNotification");
	assert_string_equal(lkd_dict_str(r, "Name"), "com.apple.mobile.lockdown.request_pair");
	plist_free(r);
	simdev_get_state(h.s, now(&h), &st);
	assert_int_equal(st.notifications_posted, 1);

	/* preflight pairs again with a new record on a new connection */
	uint32_t c2 = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	struct record rec2;
	record_make(&h, c2, &rec2, "BBBBBBBB-2222-3333-4444-555555555555");
	r = request(&h, c2, pair_req(&rec2));
	assert_success(r);
	plist_free(r);
	simdev_get_state(h.s, now(&h), &st);
	assert_true(st.attached);
	advance(&h, 400);
	simdev_get_state(h.s, now(&h), &st);
	assert_false(st.attached);
	assert_int_equal(st.self_reenumerations, 1);
	advance(&h, 500);
	assert_true(ops->attached(simdev_model(h.s), now(&h)));

	np_send(&h, np, "Shutdown", NULL); /* old conn is gone: ignored, no crash */
	record_free(&rec);
	record_free(&rec2);
	host_close(&h);
}

static void test_pair_refusals(void **state)
{
	struct host h;
	struct simdev_opts o = quiet_opts();
	struct record rec;
	struct simdev_state st;
	uint32_t c;

	host_open(&h, "deny", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "DDDDDDDD-2222-3333-4444-555555555555");
	assert_error(request(&h, c, pair_req(&rec)), "PairingDialogResponsePending");
	advance(&h, 2100);
	simdev_get_state(h.s, now(&h), &st);
	assert_int_equal(st.dialog, SIMDEV_DIALOG_DENIED);
	assert_error(request(&h, c, pair_req(&rec)), "UserDeniedPairing");
	assert_int_equal(simdev_paired_host(h.s, 0), NULL);
	record_free(&rec);
	host_close(&h);

	host_open(&h, "locked", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "EEEEEEEE-2222-3333-4444-555555555555");
	for (int i = 0; i < 3; i++) {
		assert_error(request(&h, c, pair_req(&rec)), "PasswordProtected");
		advance(&h, 5000);
	}
	record_free(&rec);
	host_close(&h);

	host_open(&h, "never-answers", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "FFFFFFFF-2222-3333-4444-555555555555");
	for (int i = 0; i < 4; i++) {
		assert_error(request(&h, c, pair_req(&rec)), "PairingDialogResponsePending");
		advance(&h, 20000);
	}
	simdev_get_state(h.s, now(&h), &st);
	assert_int_equal(st.dialogs_shown, 1);
	assert_int_equal(st.pairs_ok, 0);
	record_free(&rec);
	host_close(&h);

	host_open(&h, "unplug-during-pair", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "99999999-2222-3333-4444-555555555555");
	assert_error(request(&h, c, pair_req(&rec)), "PairingDialogResponsePending");
	advance(&h, 900);
	assert_true(ops->attached(simdev_model(h.s), now(&h)));
	advance(&h, 200);
	assert_false(ops->attached(simdev_model(h.s), now(&h)));
	assert_false(ops->attached(simdev_model(h.s), now(&h) + 60 * LP_NS_PER_S));
	record_free(&rec);
	host_close(&h);
}

static plist_t tls_request(struct host *h, uint32_t c, struct lp_tls *t, plist_t req)
{
	uint8_t *f, *out = NULL;
	size_t fl, n = 0;
	static uint8_t plain[65536];
	size_t plen = 0;

	assert_int_equal(lkd_frame_encode(req, &f, &fl), 0);
	plist_free(req);
	assert_int_equal(lp_tls_write(t, f, fl, NULL), 0);
	free(f);
	lp_tls_take(t, &out, &n);
	assert_int_equal(mux_send(h->m, c, out, n), 0);
	free(out);
	pump(h);
	assert_true(h->rxlen[c] > 0);
	lp_tls_feed(t, h->rx[c], h->rxlen[c]);
	h->rxlen[c] = 0;
	for (;;) {
		size_t got = 0;
		int rc = lp_tls_read(t, plain + plen, sizeof(plain) - plen, &got, NULL);
		if (rc)
			break;
		plen += got;
	}
	uint8_t *p = plain;
	plist_t r = take_frame(&p, &plen);
	assert_non_null(r);
	return r;
}

static void test_session_tls(void **state)
{
	struct host h;
	struct simdev_opts o = quiet_opts();
	struct record rec;
	struct simdev_state st;
	uint32_t c;
	plist_t r, req;
	const char *sid;
	char sidbuf[64];
	struct lp_tls *t;

	host_open(&h, "healthy", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "12345678-2222-3333-4444-555555555555");
	pair_via_dialog(&h, c, &rec);

	r = request(&h, c, start_session_req(rec.host_id));
	assert_success(r);
	sid = lkd_dict_str(r, "SessionID");
	assert_non_null(sid);
	assert_int_equal(strlen(sid), 36);
	assert_int_equal(strspn(sid, "0123456789ABCDEF-"), 36);
	snprintf(sidbuf, sizeof(sidbuf), "%s", sid);
	assert_int_equal(lkd_dict_bool(r, "EnableSessionSSL", 0), 1);
	plist_free(r);

	/* libimobiledevice's OpenSSL backend presents the host certificate
	 * signed by the root it sent in Pair */
	t = lp_tls_new_client(rec.host, host_key, NULL);
	assert_non_null(t);
	assert_int_equal(tls_connect(&h, c, t), 0);
	simdev_get_state(h.s, now(&h), &st);
	assert_int_equal(st.tls_sessions, 1);
	req = req_new("GetValue");
	plist_dict_set_item(req, "Key", plist_new_string("SerialNumber"));
	r = tls_request(&h, c, t, req);
	assert_success(r);
	assert_non_null(lkd_dict_str(r, "Value"));
	plist_free(r);
	req = req_new("GetValue");
	plist_dict_set_item(req, "Domain", plist_new_string("com.apple.mobile.battery"));
	plist_dict_set_item(req, "Key", plist_new_string("BatteryCurrentCapacity"));
	r = tls_request(&h, c, t, req);
	assert_success(r);
	plist_free(r);
	req = req_new("StartService");
	plist_dict_set_item(req, "Service", plist_new_string("com.apple.mobilebackup2"));
	r = tls_request(&h, c, t, req);
	assert_success(r);
	assert_int_equal(lkd_dict_bool(r, "EnableServiceSSL", 0), 1);
	uint64_t bport = 0;
	plist_get_uint_val(plist_dict_get_item(r, "Port"), &bport);
	plist_free(r);
	/* the service port speaks TLS with the same host identity */
	uint32_t bc = connect_port(&h, (uint16_t)bport);
	struct lp_tls *bt = lp_tls_new_client(rec.host, host_key, NULL);
	assert_int_equal(tls_connect(&h, bc, bt), 0);
	assert_false(h.closed[bc]);
	lp_tls_free(bt);
	req = req_new("StopSession");
	plist_dict_set_item(req, "SessionID", plist_new_string(sidbuf));
	r = tls_request(&h, c, t, req);
	assert_success(r);
	plist_free(r);
	/* host's close_notify, then plaintext again */
	lp_tls_shutdown(t);
	uint8_t *out = NULL;
	size_t n = 0;
	lp_tls_take(t, &out, &n);
	if (n)
		mux_send(h.m, c, out, n);
	free(out);
	lp_tls_free(t);
	h.rxlen[c] = 0;
	r = request(&h, c, req_new("QueryType"));
	assert_success(r);
	plist_free(r);

	/* the root certificate itself is accepted as client certificate too */
	uint32_t c2 = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	r = request(&h, c2, start_session_req(rec.host_id));
	assert_success(r);
	plist_free(r);
	t = lp_tls_new_client(rec.root, root_key, NULL);
	assert_int_equal(tls_connect(&h, c2, t), 0);
	lp_tls_free(t);
	assert_false(h.closed[c2]);

	/* a certificate from some other root is not */
	uint32_t c3 = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	r = request(&h, c3, start_session_req(rec.host_id));
	assert_success(r);
	plist_free(r);
	X509 *foreign = make_cert(host_key, other_key, false);
	t = lp_tls_new_client(foreign, host_key, NULL);
	tls_connect(&h, c3, t);
	pump(&h);
	assert_true(h.closed[c3]);
	simdev_get_state(h.s, now(&h), &st);
	assert_int_equal(st.tls_rejected, 1);
	assert_int_equal(st.tls_sessions, 3);
	lp_tls_free(t);
	X509_free(foreign);
	record_free(&rec);
	host_close(&h);
}

static void test_persistence_forgot_host(void **state)
{
	struct host h;
	struct simdev_opts o = quiet_opts();
	struct record rec;
	char path[] = "/tmp/test_simdev_XXXXXX";
	char file[64];
	int fd = mkstemp(path);
	uint32_t c;
	plist_t r;
	char udid[64];

	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	snprintf(file, sizeof(file), "%s.plist", path);
	o.state_path = file;
	host_open(&h, "healthy", &o);
	snprintf(udid, sizeof(udid), "%s", simdev_udid(h.s));
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "77777777-2222-3333-4444-555555555555");
	pair_via_dialog(&h, c, &rec);
	host_close(&h);

	/* same state file: same key, the pairing is remembered */
	host_open(&h, "healthy", &o);
	assert_string_equal(simdev_udid(h.s), udid);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	r = request(&h, c, start_session_req(rec.host_id));
	assert_success(r);
	plist_free(r);
	host_close(&h);

	/* forgot-host: the stored record is no longer known */
	host_open(&h, "forgot-host", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	assert_error(request(&h, c, start_session_req(rec.host_id)), "InvalidHostID");
	host_close(&h);
	record_free(&rec);
	unlink(file);
}

/* Garbage on the lockdown port ends that connection, not the device. */
static void test_garbage(void **state)
{
	struct host h;
	struct simdev_opts o = quiet_opts();
	uint32_t c, c2;
	plist_t r;
	static const uint8_t junk[] = {0x16, 0x03, 0x01, 0x00, 0x10, 1, 2, 3};
	static const uint8_t notplist[] = {0, 0, 0, 4, 'a', 'b', 'c', 'd'};

	host_open(&h, "healthy", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	assert_int_equal(mux_send(h.m, c, notplist, sizeof(notplist)), 0);
	pump(&h);
	r = take_frame(&h.rx[c], &h.rxlen[c]);
	assert_non_null(r);
	assert_error(r, "InvalidResponse");
	assert_int_equal(mux_send(h.m, c, junk, sizeof(junk)), 0);
	pump(&h);
	assert_true(h.closed[c]);
	c2 = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	r = request(&h, c2, req_new("QueryType"));
	assert_success(r);
	plist_free(r);
	host_close(&h);
}

/* A real phone re-enumerates after Trust whether or not anyone observes
 * request_pair (SIMDEV_REENUM_ALWAYS), from the point chosen: the tap, the
 * Pair it allowed, or the first StartSession after it. */
static void test_reenum_after_trust(void **state)
{
	struct host h;
	struct simdev_opts o = {0};
	struct record rec;
	struct simdev_state st;
	uint32_t c;
	plist_t r;

	/* from the tap: gone before the host's next Pair, Trust remembered */
	o.reenum_after_pair = SIMDEV_REENUM_ALWAYS;
	o.reenum_from = SIMDEV_REENUM_FROM_TRUST;
	o.set_reenum_delay = true;
	o.reenum_delay_us = 300000;
	o.reenum_gap_ms = 1000;
	host_open(&h, "healthy", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "12121212-2222-3333-4444-555555555555");
	assert_error(request(&h, c, pair_req(&rec)), "PairingDialogResponsePending");
	advance(&h, 2100); /* tapped at 2 s */
	simdev_get_state(h.s, now(&h), &st);
	assert_true(st.attached);
	assert_int_equal(st.dialog, SIMDEV_DIALOG_TRUSTED);
	advance(&h, 300);
	simdev_get_state(h.s, now(&h), &st);
	assert_false(st.attached);
	assert_int_equal(st.self_reenumerations, 1);
	assert_int_equal(st.pairs_ok, 0);
	advance(&h, 1000);
	simdev_get_state(h.s, now(&h), &st);
	assert_true(st.attached);
	assert_int_equal(st.config, 0); /* a new attachment: configure again */
	assert_int_equal(st.dialog, SIMDEV_DIALOG_TRUSTED);
	advance(&h, 5000);
	simdev_get_state(h.s, now(&h), &st);
	assert_true(st.attached);
	assert_int_equal(st.self_reenumerations, 1);
	record_free(&rec);
	host_close(&h);

	/* the profile: Trust 2.5 s after the dialog, gone 300 ms later with
	 * nobody observing request_pair, back 1 s after that */
	host_open(&h, "reenum-after-trust", NULL);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "13131313-2222-3333-4444-555555555555");
	assert_error(request(&h, c, pair_req(&rec)), "PairingDialogResponsePending");
	advance(&h, 2400);
	simdev_get_state(h.s, now(&h), &st);
	assert_int_equal(st.dialog, SIMDEV_DIALOG_SHOWN);
	advance(&h, 350);
	simdev_get_state(h.s, now(&h), &st);
	assert_true(st.attached);
	advance(&h, 100);
	simdev_get_state(h.s, now(&h), &st);
	assert_false(st.attached);
	advance(&h, 1000);
	simdev_get_state(h.s, now(&h), &st);
	assert_true(st.attached);
	assert_int_equal(st.self_reenumerations, 1);
	record_free(&rec);
	host_close(&h);

	/* ... unless told never to */
	o = (struct simdev_opts){.reenum_after_pair = SIMDEV_REENUM_NEVER};
	host_open(&h, "reenum-after-trust", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "14141414-2222-3333-4444-555555555555");
	assert_error(request(&h, c, pair_req(&rec)), "PairingDialogResponsePending");
	advance(&h, 5000);
	simdev_get_state(h.s, now(&h), &st);
	assert_true(st.attached);
	assert_int_equal(st.self_reenumerations, 0);
	record_free(&rec);
	host_close(&h);

	/* from the first StartSession after the pairing: its reply goes out,
	 * the device leaves 5 ms later */
	o = (struct simdev_opts){.reenum_after_pair = SIMDEV_REENUM_ALWAYS,
				 .reenum_from = SIMDEV_REENUM_FROM_SESSION,
				 .set_reenum_delay = true,
				 .reenum_delay_us = 5000};
	host_open(&h, "healthy", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	record_make(&h, c, &rec, "15151515-2222-3333-4444-555555555555");
	pair_via_dialog(&h, c, &rec);
	advance(&h, 1000);
	simdev_get_state(h.s, now(&h), &st);
	assert_true(st.attached); /* not at the Pair */
	r = request(&h, c, start_session_req(rec.host_id));
	assert_non_null(r);
	assert_non_null(plist_dict_get_item(r, "SessionID"));
	plist_free(r);
	simdev_get_state(h.s, now(&h), &st);
	assert_true(st.attached);
	advance(&h, 10);
	simdev_get_state(h.s, now(&h), &st);
	assert_false(st.attached);
	assert_int_equal(st.self_reenumerations, 1);
	record_free(&rec);
	host_close(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_descriptors),
		cmocka_unit_test(test_other_modes),
		cmocka_unit_test(test_udid24),
		cmocka_unit_test(test_usbmux_needs_config),
		cmocka_unit_test(test_query_and_values),
		cmocka_unit_test(test_pair_trust),
		cmocka_unit_test(test_preflight_notification),
		cmocka_unit_test(test_reenum_after_trust),
		cmocka_unit_test(test_pair_refusals),
		cmocka_unit_test(test_session_tls),
		cmocka_unit_test(test_persistence_forgot_host),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
