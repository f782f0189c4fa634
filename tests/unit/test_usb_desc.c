/* test_usb_desc.c - descriptor decoding of untrusted bytes and encoding:
 * an iPhone-like device and configuration 3 (PTP + usbmux) as hand-written
 * bytes, truncation kept apart from invalid input, lying bLength and
 * wTotalLength, string decoding and sanitizing, UDID hyphenation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "src/base/lp_error.h"
#include "usb/usb_desc.h"

/* iPhone 05ac:12a8, bcdUSB 2.00, bcdDevice 0x0804, 4 configurations */
static const uint8_t iphone_dev[18] = {
	18, 1, 0x00, 0x02, 0, 0, 0, 64, 0xac, 0x05, 0xa8, 0x12, 0x04, 0x08, 1, 2, 3, 4,
};

/* Configuration 3: interface 0 PTP (bulk OUT 0x02, bulk IN 0x81, interrupt IN
 * 0x83) with a class-specific descriptor in between; interface 1 usbmux
 * ff/fe/02 with bulk OUT 0x04 and bulk IN 0x85, 512 bytes. */
static const uint8_t iphone_cfg3[] = {
	9,
	2,
	67,
	0,
	2,
	3,
	5,
	0xc0,
	250,
	9,
	4,
	0,
	0,
	3,
	0x06,
	0x01,
	0x01,
	0,
	5,
	0x24,
	0x01,
	0x02,
	0x03, /* class-specific, skipped */
	7,
	5,
	0x02,
	2,
	0x00,
	0x02,
	0,
	7,
	5,
	0x81,
	2,
	0x00,
	0x02,
	0,
	7,
	5,
	0x83,
	3,
	0x40,
	0x00,
	10,
	9,
	4,
	1,
	0,
	2,
	0xff,
	0xfe,
	0x02,
	0,
	7,
	5,
	0x04,
	2,
	0x00,
	0x02,
	0,
	7,
	5,
	0x85,
	2,
	0x00,
	0x02,
	0,
	/* bytes after wTotalLength are not part of the set */
	0xde,
	0xad,
};

static void test_device(void **state)
{
	struct usbd_device d;
	uint8_t b[18], out[32];

	assert_int_equal(usbd_parse_device(iphone_dev, sizeof(iphone_dev), &d), 0);
	assert_int_equal(d.idVendor, 0x05ac);
	assert_int_equal(d.idProduct, 0x12a8);
	assert_int_equal(d.bcdUSB, 0x0200);
	assert_int_equal(d.bcdDevice, 0x0804);
	assert_int_equal(d.bMaxPacketSize0, 64);
	assert_int_equal(d.iSerialNumber, 3);
	assert_int_equal(d.bNumConfigurations, 4);
	/* round trip through the encoder */
	assert_int_equal(usbd_encode_device(&d, out, sizeof(out)), 18);
	assert_memory_equal(out, iphone_dev, 18);
	assert_int_equal(usbd_encode_device(&d, out, 17), LP_ETOOBIG);

	/* truncated: an 8-byte GET_DESCRIPTOR answer, 1 byte, nothing */
	memset(&d, 0x55, sizeof(d));
	assert_int_equal(usbd_parse_device(iphone_dev, 8, &d), LP_ETRUNC);
	assert_int_equal(d.idVendor, 0x5555); /* untouched on failure */
	assert_int_equal(usbd_parse_device(iphone_dev, 1, &d), LP_ETRUNC);
	assert_int_equal(usbd_parse_device(NULL, 0, &d), LP_ETRUNC);
	/* invalid: wrong type, lying bLength */
	memcpy(b, iphone_dev, 18);
	b[1] = 2;
	assert_int_equal(usbd_parse_device(b, 18, &d), LP_EBADMSG);
	b[1] = 1;
	b[0] = 17;
	assert_int_equal(usbd_parse_device(b, 18, &d), LP_EBADMSG);
	b[0] = 0;
	assert_int_equal(usbd_parse_device(b, 18, &d), LP_EBADMSG);
	/* wrong type is reported even when short */
	b[1] = 4;
	assert_int_equal(usbd_parse_device(b, 4, &d), LP_EBADMSG);
}

static void test_config_and_usbmux(void **state)
{
	struct usbd_config c, c2;
	const struct usbd_interface *mux;
	uint8_t in = 0, out = 0, enc[128];
	uint16_t mps = 0;

	assert_int_equal(usbd_parse_config(iphone_cfg3, sizeof(iphone_cfg3), &c), 0);
	assert_int_equal(c.wTotalLength, 67);
	assert_int_equal(c.bConfigurationValue, 3);
	assert_int_equal(c.bNumInterfaces, 2);
	assert_int_equal(c.num_ifaces, 2);
	assert_int_equal(c.iface[0].num_eps, 3);
	assert_int_equal(c.iface[0].ep[2].bEndpointAddress, 0x83);
	assert_int_equal(c.iface[0].ep[2].bInterval, 10);
	assert_int_equal(c.iface[1].num_eps, 2);
	mux = usbd_find_usbmux(&c, &in, &out, &mps);
	assert_ptr_equal(mux, &c.iface[1]);
	assert_int_equal(in, 0x85);
	assert_int_equal(out, 0x04);
	assert_int_equal(mps, 512);

	/* the encoder writes the same set (minus the class-specific bytes) */
	int n = usbd_encode_config(&c, enc, sizeof(enc));
	assert_int_equal(n, 67 - 5);
	assert_int_equal(usbd_parse_config(enc, (size_t)n, &c2), 0);
	assert_int_equal(c2.num_ifaces, 2);
	assert_int_equal(c2.bNumInterfaces, 2);
	assert_memory_equal(&c2.iface, &c.iface, sizeof(c.iface));
	assert_int_equal(usbd_encode_config(&c, enc, 20), LP_ETOOBIG);
}

static void test_usbmux_needs_all_three(void **state)
{
	struct usbd_config c;
	uint8_t b[sizeof(iphone_cfg3)];

	memcpy(b, iphone_cfg3, sizeof(b));
	/* usbmuxd's OR test would accept ff/fe/00; a clean one must not */
	b[51] = 0x00; /* interface 1 bInterfaceProtocol */
	assert_int_equal(usbd_parse_config(b, sizeof(b), &c), 0);
	assert_null(usbd_find_usbmux(&c, NULL, NULL, NULL));
	memcpy(b, iphone_cfg3, sizeof(b));
	b[50] = 0xfd; /* subclass */
	assert_int_equal(usbd_parse_config(b, sizeof(b), &c), 0);
	assert_null(usbd_find_usbmux(&c, NULL, NULL, NULL));
	/* two bulk OUT endpoints: not exactly one of each */
	memcpy(b, iphone_cfg3, sizeof(b));
	b[62] = 0x05; /* 0x85 -> 0x05 */
	assert_int_equal(usbd_parse_config(b, sizeof(b), &c), 0);
	assert_null(usbd_find_usbmux(&c, NULL, NULL, NULL));
	/* an interrupt endpoint instead of bulk */
	memcpy(b, iphone_cfg3, sizeof(b));
	b[63] = 3;
	assert_int_equal(usbd_parse_config(b, sizeof(b), &c), 0);
	assert_null(usbd_find_usbmux(&c, NULL, NULL, NULL));
	/* alternate setting 1 does not count */
	memcpy(b, iphone_cfg3, sizeof(b));
	b[47] = 1;
	assert_int_equal(usbd_parse_config(b, sizeof(b), &c), 0);
	assert_null(usbd_find_usbmux(&c, NULL, NULL, NULL));
}

static void test_config_truncated_and_lying(void **state)
{
	struct usbd_config c;
	uint8_t b[sizeof(iphone_cfg3)];

	/* header-only fetch: wTotalLength learnt, LP_ETRUNC, no interfaces */
	memset(&c, 0x55, sizeof(c));
	assert_int_equal(usbd_parse_config(iphone_cfg3, 9, &c), LP_ETRUNC);
	assert_int_equal(c.wTotalLength, 67);
	assert_int_equal(c.num_ifaces, 0);
	assert_int_equal(usbd_parse_config(iphone_cfg3, 60, &c), LP_ETRUNC);
	assert_int_equal(usbd_parse_config(iphone_cfg3, 5, &c), LP_ETRUNC);

	/* wTotalLength smaller than the header */
	memcpy(b, iphone_cfg3, sizeof(b));
	b[2] = 8;
	assert_int_equal(usbd_parse_config(b, sizeof(b), &c), LP_EBADMSG);
	/* wTotalLength over the cap */
	b[2] = 0x01;
	b[3] = 0x10;
	assert_int_equal(usbd_parse_config(b, sizeof(b), &c), LP_ETOOBIG);
	/* wTotalLength cuts an endpoint in half: bLength runs past it */
	memcpy(b, iphone_cfg3, sizeof(b));
	b[2] = 64;
	assert_int_equal(usbd_parse_config(b, sizeof(b), &c), LP_EBADMSG);
	/* an inner bLength of 0 or 1 */
	memcpy(b, iphone_cfg3, sizeof(b));
	b[18] = 0;
	assert_int_equal(usbd_parse_config(b, sizeof(b), &c), LP_EBADMSG);
	b[18] = 1;
	assert_int_equal(usbd_parse_config(b, sizeof(b), &c), LP_EBADMSG);
	/* an inner bLength that runs past wTotalLength */
	memcpy(b, iphone_cfg3, sizeof(b));
	b[60] = 200;
	assert_int_equal(usbd_parse_config(b, sizeof(b), &c), LP_EBADMSG);
	/* an interface descriptor too short to be one */
	memcpy(b, iphone_cfg3, sizeof(b));
	b[9] = 5;
	assert_int_equal(usbd_parse_config(b, sizeof(b), &c), LP_EBADMSG);
	/* header bLength < 9 */
	memcpy(b, iphone_cfg3, sizeof(b));
	b[0] = 7;
	assert_int_equal(usbd_parse_config(b, sizeof(b), &c), LP_EBADMSG);
	b[0] = 9;
	b[1] = 1;
	assert_int_equal(usbd_parse_config(b, sizeof(b), &c), LP_EBADMSG);
}

static void test_config_caps(void **state)
{
	uint8_t b[9 + 10 * 9 + 6 * 7];
	struct usbd_config c;
	size_t o = 9;

	/* 10 interfaces (cap 8), the first with 6 endpoints (cap 4) */
	for (int i = 0; i < 10; i++) {
		const uint8_t itf[9] = {9, 4, (uint8_t)i, 0, i ? 0 : 6, 0xff, 0, 0, 0};
		memcpy(b + o, itf, 9);
		o += 9;
		if (i == 0) {
			for (int j = 0; j < 6; j++) {
				const uint8_t ep[7] = {7, 5, (uint8_t)(0x81 + j), 2, 0, 2, 0};
				memcpy(b + o, ep, 7);
				o += 7;
			}
		}
	}
	const uint8_t hdr[9] = {9, 2, (uint8_t)o, (uint8_t)(o >> 8), 10, 1, 0, 0x80, 50};
	memcpy(b, hdr, 9);
	assert_int_equal(usbd_parse_config(b, o, &c), 0);
	assert_int_equal(c.num_ifaces, USBD_MAX_IFACES);
	assert_int_equal(c.iface[0].num_eps, USBD_MAX_EPS);
	assert_int_equal(c.iface[0].bNumEndpoints, 6);
}

static void test_strings(void **state)
{
	const uint8_t apple[] = {22, 3,	  'A', 0,   'p', 0,   'p', 0,	'l', 0,	  'e',
				 0,  ' ', 0,   'I', 0,	 'n', 0,   'c', 0,   '.', 0};
	/* "é€😀" + trailing U+0000 padding */
	const uint8_t uni[] = {14, 3, 0xe9, 0x00, 0xac, 0x20, 0x3d, 0xd8, 0x00, 0xde, 0, 0, 0, 0};
	/* ESC [ 2 J BEL, an unpaired surrogate, then 'x' */
	const uint8_t evil[] = {16,  3, 0x1b, 0, '[',  0,    '2', 0,
				'J', 0, 0x07, 0, 0x00, 0xdc, 'x', 0};
	const uint8_t odd[] = {7, 3, 'a', 0, 'b', 0, 'c'};
	char s[64];
	uint16_t lang = 0;

	assert_int_equal(usbd_parse_string(apple, sizeof(apple), s, sizeof(s)), 0);
	assert_string_equal(s, "Apple Inc.");
	assert_int_equal(usbd_parse_string(uni, sizeof(uni), s, sizeof(s)), 0);
	assert_string_equal(s, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	assert_int_equal(usbd_parse_string(evil, sizeof(evil), s, sizeof(s)), 0);
	assert_string_equal(s, "?[2J??x");
	/* odd bLength: the half code unit is dropped */
	assert_int_equal(usbd_parse_string(odd, sizeof(odd), s, sizeof(s)), 0);
	assert_string_equal(s, "ab");
	/* output buffer smaller than the string: truncated, terminated */
	assert_int_equal(usbd_parse_string(apple, sizeof(apple), s, 6), 0);
	assert_string_equal(s, "Apple");
	/* truncated vs invalid */
	assert_int_equal(usbd_parse_string(apple, 10, s, sizeof(s)), LP_ETRUNC);
	assert_int_equal(usbd_parse_string(apple, 1, s, sizeof(s)), LP_ETRUNC);
	const uint8_t wrongtype[] = {4, 2, 'a', 0};
	assert_int_equal(usbd_parse_string(wrongtype, 4, s, sizeof(s)), LP_EBADMSG);
	const uint8_t tiny[] = {1, 3};
	assert_int_equal(usbd_parse_string(tiny, 2, s, sizeof(s)), LP_EBADMSG);
	const uint8_t empty[] = {2, 3};
	assert_int_equal(usbd_parse_string(empty, 2, s, sizeof(s)), 0);
	assert_string_equal(s, "");

	/* LANGID */
	const uint8_t l0[] = {4, 3, 0x09, 0x04};
	assert_int_equal(usbd_parse_langid(l0, 4, &lang), 0);
	assert_int_equal(lang, 0x0409);
	assert_int_equal(usbd_parse_langid(l0, 3, &lang), LP_ETRUNC);
	assert_int_equal(usbd_parse_langid(empty, 2, &lang), LP_EBADMSG);
}

static void test_encode_string(void **state)
{
	uint8_t b[300];
	char s[200], big[200];
	int n;

	n = usbd_encode_string("iPhone", b, sizeof(b));
	assert_int_equal(n, 14);
	assert_int_equal(b[0], 14);
	assert_int_equal(b[1], 3);
	assert_int_equal(b[2], 'i');
	assert_int_equal(b[3], 0);
	assert_int_equal(usbd_parse_string(b, (size_t)n, s, sizeof(s)), 0);
	assert_string_equal(s, "iPhone");
	assert_int_equal(usbd_encode_string("iPhone", b, 13), LP_ETOOBIG);
	/* 126 characters fit in bLength 254; 127 do not */
	memset(big, 'A', 126);
	big[126] = '\0';
	assert_int_equal(usbd_encode_string(big, b, sizeof(b)), 254);
	big[126] = 'A';
	big[127] = '\0';
	assert_int_equal(usbd_encode_string(big, b, sizeof(b)), LP_ETOOBIG);
	assert_int_equal(usbd_encode_string("caf\xc3\xa9", b, sizeof(b)), LP_EINVAL);
	assert_int_equal(usbd_encode_langid(0x0409, b, sizeof(b)), 4);
	assert_int_equal(b[2], 0x09);
	assert_int_equal(b[3], 0x04);
}

static void test_udid(void **state)
{
	char u[64];

	usbd_serial_to_udid("00008030001A2D3E0C01402E", u, sizeof(u));
	assert_string_equal(u, "00008030-001A2D3E0C01402E");
	usbd_serial_to_udid("0123456789abcdef0123456789abcdef01234567", u, sizeof(u));
	assert_string_equal(u, "0123456789abcdef0123456789abcdef01234567");
	usbd_serial_to_udid("0000803", u, sizeof(u));
	assert_string_equal(u, "0000803");
	usbd_serial_to_udid(NULL, u, sizeof(u));
	assert_string_equal(u, "");
	/* small output: truncated, terminated */
	usbd_serial_to_udid("00008030001A2D3E0C01402E", u, 10);
	assert_string_equal(u, "00008030-");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_device),
		cmocka_unit_test(test_config_and_usbmux),
		cmocka_unit_test(test_usbmux_needs_all_three),
		cmocka_unit_test(test_config_truncated_and_lying),
		cmocka_unit_test(test_config_caps),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_encode_string),
		cmocka_unit_test(test_udid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
