/* test_real_device_facts.c - the simulated iPhone against the traffic
 * recorded from real devices (doc/protocol.md section 0): one row per fact,
 * each checked through the host in tests/unit/simhost.h, and the framing
 * option that restores the joined length prefix for hosts that need it. */
#include "tests/unit/simhost.h"

/* --------------------------------------------------------------------------
 * The facts of doc/protocol.md section 0 (traffic recorded from real
 * devices), one row each, checked against the simulated iPhone. A row that
 * fails names the fact the simulator no longer reproduces.
 */

struct facts {
	struct host h;
	uint32_t c;
	struct record rec;
	struct usbd_device dd;
	struct usbd_config cfg[4];
	size_t chunks[16]; /* lengths of the device's data packets on c */
	size_t nchunks;
	plist_t query, value, refused, session; /* replies */
	const char *tls_version, *tls_cipher;
};

static bool iface_is(const struct usbd_interface *f, uint8_t num, uint8_t alt, uint8_t cls,
		     uint8_t sub, uint8_t proto)
{
	return f->bInterfaceNumber == num && f->bAlternateSetting == alt &&
	       f->bInterfaceClass == cls && f->bInterfaceSubClass == sub &&
	       f->bInterfaceProtocol == proto;
}

static const struct usbd_interface *iface_of(const struct usbd_config *c, uint8_t num, uint8_t alt)
{
	for (unsigned i = 0; i < c->num_ifaces; i++)
		if (c->iface[i].bInterfaceNumber == num && c->iface[i].bAlternateSetting == alt)
			return &c->iface[i];
	return NULL;
}

static bool has_ep(const struct usbd_interface *f, uint8_t addr, uint8_t type, uint16_t mps)
{
	for (unsigned k = 0; f && k < f->num_eps; k++)
		if (f->ep[k].bEndpointAddress == addr && (f->ep[k].bmAttributes & 3) == type &&
		    f->ep[k].wMaxPacketSize == mps)
			return true;
	return false;
}

static bool ptp_at(const struct usbd_config *c)
{
	const struct usbd_interface *f = iface_of(c, 0, 0);

	return f && iface_is(f, 0, 0, 0x06, 0x01, 0x01) && has_ep(f, 0x02, 2, 512) &&
	       has_ep(f, 0x81, 2, 512) && has_ep(f, 0x83, 3, 64);
}

static bool mux_at(const struct usbd_config *c)
{
	const struct usbd_interface *f = iface_of(c, 1, 0);

	return f && iface_is(f, 1, 0, 0xff, 0xfe, 0x02) && has_ep(f, 0x04, 2, 512) &&
	       has_ep(f, 0x85, 2, 512);
}

static bool keys_are(plist_t d, const char *const *keys, size_t n)
{
	if (!d || plist_get_node_type(d) != PLIST_DICT || plist_dict_get_size(d) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!plist_dict_get_item(d, keys[i]))
			return false;
	return true;
}

static bool f_device(struct facts *f)
{
	return f->dd.idVendor == 0x05ac && f->dd.idProduct == 0x12a8 && f->dd.bcdUSB == 0x0200 &&
	       f->dd.bcdDevice == 0x0804 && f->dd.bMaxPacketSize0 == 64 && f->dd.bDeviceClass == 0;
}

static bool f_strings(struct facts *f)
{
	uint8_t buf[255];
	char s[3][128];
	size_t n = 0;
	const uint8_t idx[3] = {f->dd.iManufacturer, f->dd.iProduct, f->dd.iSerialNumber};

	for (int i = 0; i < 3; i++)
		if (ctl(&f->h, 0x80, USBD_REQ_GET_DESCRIPTOR,
			(uint16_t)(USBD_DT_STRING << 8 | idx[i]), 0x0409, buf, sizeof(buf), &n) ||
		    usbd_parse_string(buf, n, s[i], sizeof(s[i])))
			return false;
	return !strcmp(s[0], "Apple Inc.") && !strcmp(s[1], "iPhone") && strlen(s[2]) == 40 &&
	       strspn(s[2], "0123456789abcdef") == 40;
}

static bool f_four_configs(struct facts *f)
{
	return f->dd.bNumConfigurations == 4;
}

static bool f_config1(struct facts *f)
{
	return f->cfg[0].bConfigurationValue == 1 && f->cfg[0].bNumInterfaces == 1 &&
	       ptp_at(&f->cfg[0]);
}

static bool f_config2(struct facts *f)
{
	const struct usbd_config *c = &f->cfg[1];
	const struct usbd_interface *ac = iface_of(c, 0, 0), *as = iface_of(c, 1, 1),
				    *hid = iface_of(c, 2, 0);

	return c->bConfigurationValue == 2 && ac && iface_is(ac, 0, 0, 0x01, 0x01, 0x00) && as &&
	       iface_is(as, 1, 1, 0x01, 0x02, 0x00) && has_ep(as, 0x81, 1, 192) && hid &&
	       iface_is(hid, 2, 0, 0x03, 0x00, 0x00) && has_ep(hid, 0x83, 3, 64);
}

static bool f_config3(struct facts *f)
{
	return f->cfg[2].bConfigurationValue == 3 && f->cfg[2].bNumInterfaces == 2 &&
	       ptp_at(&f->cfg[2]) && mux_at(&f->cfg[2]);
}

static bool f_config4(struct facts *f)
{
	const struct usbd_interface *eth = iface_of(&f->cfg[3], 2, 0);

	return f->cfg[3].bConfigurationValue == 4 && f->cfg[3].bNumInterfaces == 3 &&
	       ptp_at(&f->cfg[3]) && mux_at(&f->cfg[3]) && eth &&
	       iface_is(eth, 2, 0, 0xff, 0xfd, 0x01);
}

static bool f_query(struct facts *f)
{
	static const char *const k[] = {"Request", "Type"};
	const char *t = lkd_dict_str(f->query, "Type");

	return keys_are(f->query, k, 2) && t && !strcmp(t, "com.apple.mobile.lockdown");
}

static bool f_value(struct facts *f)
{
	static const char *const k[] = {"Request", "Key", "Value"};
	const char *key = lkd_dict_str(f->value, "Key");

	return keys_are(f->value, k, 3) && key && !strcmp(key, "ProductVersion");
}

static bool f_refused(struct facts *f)
{
	static const char *const k[] = {"Request", "Key", "Error"};
	const char *key = lkd_dict_str(f->refused, "Key"), *err = lkd_dict_str(f->refused, "Error");

	return keys_are(f->refused, k, 3) && key && !strcmp(key, "IDAMCapability") && err &&
	       !strcmp(err, "GetProhibited");
}

static bool f_session(struct facts *f)
{
	static const char *const k[] = {"Request", "SessionID", "EnableSessionSSL"};

	return keys_are(f->session, k, 3) && lkd_dict_str(f->session, "SessionID") &&
	       lkd_dict_bool(f->session, "EnableSessionSSL", 0) == 1;
}

/* the QueryType reply on a fresh connection: 4 bytes, then the body */
static bool f_split_prefix(struct facts *f)
{
	return f->nchunks >= 2 && f->chunks[0] == 4 && f->chunks[1] > 4;
}

static bool f_tls(struct facts *f)
{
	return f->tls_version && !strcmp(f->tls_version, "TLSv1.2") && f->tls_cipher &&
	       !strcmp(f->tls_cipher, "ECDHE-RSA-AES256-GCM-SHA384");
}

static const struct fact {
	const char *fact; /* as doc/protocol.md section 0 states it */
	bool (*holds)(struct facts *f);
} facts[] = {
	{"05ac:12a8, bcdUSB 0x0200, bcdDevice 0x0804, bMaxPacketSize0 64, device class 0",
	 f_device},
	{"iManufacturer \"Apple Inc.\", iProduct \"iPhone\", serial = 40 hex digits", f_strings},
	{"4 configurations", f_four_configs},
	{"configuration 1: PTP 06/01/01, bulk OUT 0x02 (512), bulk IN 0x81 (512), interrupt IN 0x83 (64)",
	 f_config1},
	{"configuration 2: audio control 01/01/00; audio streaming 01/02/00 (alt 1: iso IN 0x81, 192); "
	 "HID 03/00/00 (interrupt IN 0x83, 64)",
	 f_config2},
	{"configuration 3: PTP; usbmux ff/fe/02, bulk OUT 0x04 (512), bulk IN 0x85 (512)",
	 f_config3},
	{"configuration 4: as 3, plus Apple USB Ethernet ff/fd/01", f_config4},
	{"QueryType reply: {Request, Type: com.apple.mobile.lockdown}, no Result", f_query},
	{"GetValue reply: {Request, Key: <echoed>, Value}, no Result", f_value},
	{"a refused key: {Request, Key: <echoed>, Error: GetProhibited} (IDAMCapability before a session)",
	 f_refused},
	{"StartSession reply: {Request, SessionID, EnableSessionSSL: true}, no Result", f_session},
	{"the 4-byte length prefix in a segment of its own, before the plist body", f_split_prefix},
	{"TLS after StartSession: TLS 1.2, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", f_tls},
};

static void test_real_device_facts(void **state)
{
	struct facts f;
	struct simdev_opts o = quiet_opts();
	uint8_t buf[512];
	size_t n = 0;
	plist_t req;
	struct lp_tls *t;
	int failed = 0;

	memset(&f, 0, sizeof(f));
	host_open(&f.h, "healthy", &o);
	assert_int_equal(
		ctl(&f.h, 0x80, USBD_REQ_GET_DESCRIPTOR, USBD_DT_DEVICE << 8, 0, buf, 18, &n), 0);
	assert_int_equal(usbd_parse_device(buf, n, &f.dd), 0);
	for (uint8_t i = 0; i < 4; i++) {
		assert_int_equal(ctl(&f.h, 0x80, USBD_REQ_GET_DESCRIPTOR,
				     (uint16_t)(USBD_DT_CONFIG << 8 | i), 0, buf, sizeof(buf), &n),
				 0);
		assert_int_equal(usbd_parse_config(buf, n, &f.cfg[i]), 0);
	}
	host_mux_up(&f.h);
	f.c = connect_port(&f.h, SIMDEV_PORT_LOCKDOWN);
	f.h.chunk_log = f.chunks;
	f.h.chunk_cap = sizeof(f.chunks) / sizeof(f.chunks[0]);
	f.h.chunk_conn = f.c;
	f.query = request(&f.h, f.c, req_new("QueryType"));
	f.nchunks = f.h.chunk_n;
	f.h.chunk_log = NULL;
	req = req_new("GetValue");
	plist_dict_set_item(req, "Key", plist_new_string("ProductVersion"));
	f.value = request(&f.h, f.c, req);
	req = req_new("GetValue");
	plist_dict_set_item(req, "Key", plist_new_string("IDAMCapability"));
	f.refused = request(&f.h, f.c, req);
	record_make(&f.h, f.c, &f.rec, "12345678-FACT-3333-4444-555555555555");
	pair_via_dialog(&f.h, f.c, &f.rec);
	f.session = request(&f.h, f.c, start_session_req(f.rec.host_id));
	t = lp_tls_new_client(f.rec.host, host_key, NULL);
	assert_non_null(t);
	assert_int_equal(tls_connect(&f.h, f.c, t), 0);
	f.tls_version = lp_tls_version(t);
	f.tls_cipher = lp_tls_cipher(t);

	for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++) {
		bool ok = facts[i].holds(&f);

		print_message("%s fact %zu: %s\n", ok ? "ok  " : "FAIL", i + 1, facts[i].fact);
		failed += !ok;
	}
	lp_tls_free(t);
	plist_free(f.query);
	plist_free(f.value);
	plist_free(f.refused);
	plist_free(f.session);
	record_free(&f.rec);
	host_close(&f.h);
	assert_int_equal(failed, 0);
}

/* framing=joined: prefix and body in one usbmux packet, for hosts that need it */
static void test_framing_joined(void **state)
{
	struct host h;
	struct simdev_opts o = quiet_opts();
	size_t chunks[4];
	uint32_t c;
	plist_t r;

	o.framing_joined = true;
	host_open(&h, "healthy", &o);
	host_mux_up(&h);
	c = connect_port(&h, SIMDEV_PORT_LOCKDOWN);
	h.chunk_log = chunks;
	h.chunk_cap = 4;
	h.chunk_conn = c;
	r = request(&h, c, req_new("QueryType"));
	assert_success(r);
	plist_free(r);
	assert_int_equal(h.chunk_n, 1);
	assert_true(chunks[0] > 4);
	host_close(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_device_facts),
		cmocka_unit_test(test_framing_joined),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
