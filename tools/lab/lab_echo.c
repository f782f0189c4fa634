/* lab_echo.c - libusb host side of the lab's transfer test: finds the Apple
 * device, selects the configuration holding usbmux (ff/fe/02) as usbmuxd does
 * (the highest), and sends transfers of the given sizes through lp_gadget's
 * echo model, each terminated like usbmuxd terminates them (a ZLP after a
 * multiple of wMaxPacketSize). Every echo must come back byte-exact and end
 * where it should: a short packet, or a ZLP read as a 0-byte IN transfer.
 *
 *   lab_echo SIZE...      exit 0 if every size echoed, 1 otherwise
 *
 * A lab tool (runs inside the QEMU guest), not part of linkprobe.
 */
#include <libusb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ECHO_IN_BUF 16384 /* usbmuxd's IN transfer size */
#define ECHO_MAX (1024 * 1024)
#define ECHO_TIMEOUT_MS 5000

struct echo_dev {
	libusb_device_handle *h;
	int iface;
	unsigned char ep_in, ep_out;
	int mps;
};

static int find_usbmux(libusb_device *dev, struct echo_dev *e, int *cfg_value)
{
	struct libusb_device_descriptor dd;

	if (libusb_get_device_descriptor(dev, &dd) || dd.idVendor != 0x05ac)
		return -1;
	for (int c = dd.bNumConfigurations - 1; c >= 0; c--) {
		struct libusb_config_descriptor *cfg;

		if (libusb_get_config_descriptor(dev, (uint8_t)c, &cfg))
			continue;
		for (int i = 0; i < cfg->bNumInterfaces; i++) {
			const struct libusb_interface_descriptor *d =
				&cfg->interface[i].altsetting[0];

			if (d->bInterfaceClass != 0xff || d->bInterfaceSubClass != 0xfe ||
			    d->bInterfaceProtocol != 0x02 || d->bNumEndpoints != 2)
				continue;
			e->iface = d->bInterfaceNumber;
			for (int k = 0; k < 2; k++) {
				const struct libusb_endpoint_descriptor *ep = &d->endpoint[k];

				if (ep->bEndpointAddress & LIBUSB_ENDPOINT_IN)
					e->ep_in = ep->bEndpointAddress;
				else
					e->ep_out = ep->bEndpointAddress;
				e->mps = ep->wMaxPacketSize;
			}
			*cfg_value = cfg->bConfigurationValue;
			libusb_free_config_descriptor(cfg);
			return 0;
		}
		libusb_free_config_descriptor(cfg);
	}
	return -1;
}

static int echo_once(struct echo_dev *e, size_t len, unsigned seed)
{
	unsigned char *out = malloc(len ? len : 1), *in = malloc(len + ECHO_IN_BUF);
	size_t got = 0;
	int n, r, rc = 1;

	if (!out || !in)
		goto done;
	for (size_t i = 0; i < len; i++)
		out[i] = (unsigned char)(i * 131 + seed);
	r = libusb_bulk_transfer(e->h, e->ep_out, out, (int)len, &n, ECHO_TIMEOUT_MS);
	if (r || (size_t)n != len) {
		fprintf(stderr, "size %zu: OUT %s (%d sent)\n", len, libusb_error_name(r), n);
		goto done;
	}
	if (len % (size_t)e->mps == 0) {
		r = libusb_bulk_transfer(e->h, e->ep_out, out, 0, &n, ECHO_TIMEOUT_MS);
		if (r) {
			fprintf(stderr, "size %zu: OUT ZLP %s\n", len, libusb_error_name(r));
			goto done;
		}
	}
	/* read as usbmuxd does: 16 KiB at a time until the transfer ends short */
	for (;;) {
		r = libusb_bulk_transfer(e->h, e->ep_in, in + got, ECHO_IN_BUF, &n,
					 ECHO_TIMEOUT_MS);
		if (r) {
			fprintf(stderr, "size %zu: IN %s after %zu bytes\n", len,
				libusb_error_name(r), got);
			goto done;
		}
		got += (size_t)n;
		if (n < ECHO_IN_BUF || got > len)
			break;
	}
	if (got != len || memcmp(in, out, len)) {
		fprintf(stderr, "size %zu: echo came back as %zu bytes%s\n", len, got,
			got == len ? " with different content" : "");
		goto done;
	}
	rc = 0;
done:
	free(out);
	free(in);
	return rc;
}

int main(int argc, char **argv)
{
	libusb_context *ctx;
	libusb_device **list;
	struct echo_dev e = {0};
	int cfg = 0, cur = -1, fails = 0, r;
	ssize_t n;

	if (argc < 2) {
		fprintf(stderr, "usage: lab_echo SIZE...\n");
		return 2;
	}
	if ((r = libusb_init(&ctx))) {
		fprintf(stderr, "libusb_init: %s\n", libusb_error_name(r));
		return 1;
	}
	n = libusb_get_device_list(ctx, &list);
	for (ssize_t i = 0; i < n && !e.h; i++) {
		if (find_usbmux(list[i], &e, &cfg) == 0 && (r = libusb_open(list[i], &e.h)))
			fprintf(stderr, "open: %s\n", libusb_error_name(r));
	}
	if (n >= 0)
		libusb_free_device_list(list, 1);
	if (!e.h) {
		fprintf(stderr, "no Apple device with a usbmux interface\n");
		return 1;
	}
	libusb_get_configuration(e.h, &cur);
	if (cur != cfg) {
		libusb_set_auto_detach_kernel_driver(e.h, 1);
		if ((r = libusb_set_configuration(e.h, cfg))) {
			fprintf(stderr, "set configuration %d: %s\n", cfg, libusb_error_name(r));
			return 1;
		}
	}
	if ((r = libusb_claim_interface(e.h, e.iface))) {
		fprintf(stderr, "claim interface %d: %s\n", e.iface, libusb_error_name(r));
		return 1;
	}
	printf("configuration %d interface %d IN 0x%02x OUT 0x%02x wMaxPacketSize %d\n", cfg,
	       e.iface, e.ep_in, e.ep_out, e.mps);
	for (int i = 1; i < argc; i++) {
		long len = strtol(argv[i], NULL, 0);
		struct timespec a, b;

		if (len <= 0 || len > ECHO_MAX) {
			fprintf(stderr, "bad size %s\n", argv[i]);
			fails++;
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &a);
		r = echo_once(&e, (size_t)len, (unsigned)i);
		clock_gettime(CLOCK_MONOTONIC, &b);
		printf("size %ld: %s (%.2f ms)\n", len, r ? "FAILED" : "ok",
		       (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
		fails += r;
	}
	libusb_release_interface(e.h, e.iface);
	libusb_close(e.h);
	libusb_exit(ctx);
	return fails ? 1 : 0;
}
