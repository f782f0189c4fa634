/* fuzz_usb_desc.c - libFuzzer harness for the USB descriptor decoders
 * (usb/usb_desc.c). The whole input goes to every decoder (device,
 * configuration, string, LANGID, BOS); a configuration
 * that decodes is re-encoded and decoded again (must round-trip), and a
 * decoded string must contain no control characters.
 * Also runs under gcc with a main() when built with -DFUZZ_USB_DESC_MAIN. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/lp_error.h"
#include "usb/usb_desc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct usbd_device d;
	struct usbd_config c, c2;
	uint8_t enc[USBD_CONFIG_MAX_TOTAL], in, out;
	uint16_t mps, lang;
	char s[256], udid[64];
	int rc;

	if (usbd_parse_device(data, size, &d) == 0) {
		uint8_t b[18];
		if (usbd_encode_device(&d, b, sizeof(b)) != 18 || memcmp(b, data, 18) != 0)
			abort();
	}

	rc = usbd_parse_config(data, size, &c);
	if (rc == 0) {
		if (c.num_ifaces > USBD_MAX_IFACES)
			abort();
		usbd_find_usbmux(&c, &in, &out, &mps);
		int n = usbd_encode_config(&c, enc, sizeof(enc));
		if (n < 0)
			abort();
		/* the encoder writes the endpoints it has: bNumEndpoints = num_eps */
		for (size_t i = 0; i < c.num_ifaces; i++)
			c.iface[i].bNumEndpoints = c.iface[i].num_eps;
		if (usbd_parse_config(enc, (size_t)n, &c2) != 0 || c2.num_ifaces != c.num_ifaces ||
		    memcmp(c2.iface, c.iface, sizeof(c.iface)) != 0)
			abort();
	} else if (rc != LP_ETRUNC && rc != LP_EBADMSG && rc != LP_ETOOBIG) {
		abort();
	}

	if (usbd_parse_string(data, size, s, sizeof(s)) == 0) {
		for (const unsigned char *p = (const unsigned char *)s; *p; p++)
			if (*p < 0x20 || *p == 0x7f)
				abort();
		usbd_serial_to_udid(s, udid, sizeof(udid));
		if (strlen(udid) >= sizeof(udid))
			abort();
	}
	usbd_parse_langid(data, size, &lang);

	{
		struct usbd_bos b;
		rc = usbd_parse_bos(data, size, &b);
		if (rc == 0 && (b.wTotalLength > size || b.wTotalLength < 5))
			abort();
		if (rc && rc != LP_ETRUNC && rc != LP_EBADMSG && rc != LP_ETOOBIG)
			abort();
	}
	return 0;
}

#ifdef FUZZ_USB_DESC_MAIN
#include <stdio.h>
int main(int argc, char **argv)
{
	static uint8_t buf[1 << 16];
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		size_t n;
		if (!f)
			return 1;
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, n);
	}
	return 0;
}
#endif
