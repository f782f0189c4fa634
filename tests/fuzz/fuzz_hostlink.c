/* fuzz_hostlink.c - libFuzzer harness: the host link end to end, from IN
 * completions through the usbmux codec to a lockdown stream (proto/hostlink.c,
 * proto/mux.c, proto/stream.c), over the sim transport on a virtual clock.
 *
 * The device is a raw personality on the device core (usbmux interface
 * ff/fe/02, bulk 0x04/0x85): it answers chapter 9 itself and sends, as IN
 * transfers, what the input says. Input: chunks [u8 gate][u16 BE length]
 * [bytes]; a chunk goes out as one IN transfer once the host has sent `gate`
 * OUT transfers (so a seed can hold a conversation: VERSION reply after the
 * host's VERSION, SYN|ACK after its SYN, a lockdown reply after its request).
 * The host opens the link, connects to 62078, sends a QueryType request and
 * reads what comes back until the stream fails or the virtual deadline.
 * Seeds: tests/fuzz/mkseeds.py.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/hostlink.h"
#include "proto/mux.h"
#include "src/base/lp_clock.h"
#include "src/device/devcore.h"
#include "usb/tr_sim.h"
#include "usb/transport.h"
#include "usb/usb_desc.h"

struct fx {
	struct devcore *dc;
	const uint8_t *data;
	size_t size, off;
	unsigned outs;
};

static volatile size_t sink;

static void p_bulk_out(void *p, uint8_t ep, const uint8_t *data, size_t len, uint64_t now)
{
	struct fx *f = p;

	f->outs++;
	sink += len;
}

/* the next chunk, once its gate is passed */
static void p_in_poll(void *p, uint64_t now)
{
	struct fx *f = p;
	size_t len;

	if (f->size - f->off < 3 || f->outs < f->data[f->off])
		return;
	len = (size_t)f->data[f->off + 1] << 8 | f->data[f->off + 2];
	f->off += 3;
	if (len > f->size - f->off)
		len = f->size - f->off;
	devcore_in_queue(f->dc, 0x85, f->data + f->off, len, true);
	f->off += len;
}

static const struct devcore_personality pers = {
	.bulk_out = p_bulk_out,
	.in_poll = p_in_poll,
	.raw = true,
};

static int setup_device(struct fx *f)
{
	struct usbd_device d = {.bcdUSB = 0x0200,
				.idVendor = 0x05ac,
				.idProduct = 0x12a8,
				.bMaxPacketSize0 = 64,
				.bNumConfigurations = 1};
	struct usbd_config c = {.bConfigurationValue = 1, .bmAttributes = 0x80, .num_ifaces = 1};
	uint8_t buf[128];
	int n;

	c.iface[0] = (struct usbd_interface){.bInterfaceClass = 0xff,
					     .bInterfaceSubClass = 0xfe,
					     .bInterfaceProtocol = 0x02,
					     .bNumEndpoints = 2,
					     .num_eps = 2};
	c.iface[0].ep[0] = (struct usbd_endpoint){0x04, 2, 0, 512};
	c.iface[0].ep[1] = (struct usbd_endpoint){0x85, 2, 0, 512};
	n = usbd_encode_device(&d, buf, sizeof(buf));
	if (n < 0 || devcore_set_device(f->dc, buf, (size_t)n))
		return -1;
	n = usbd_encode_config(&c, buf, sizeof(buf));
	if (n < 0 || devcore_add_config(f->dc, buf, (size_t)n, NULL, 0))
		return -1;
	return 0;
}

/* a QueryType request as linkprobe frames it: 4-byte length, XML plist */
static const char query[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<plist version=\"1.0\"><dict><key>Label</key><string>linkprobe</string>"
	"<key>Request</key><string>QueryType</string></dict></plist>\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fx f = {.data = data, .size = size};
	struct lp_clock clock;
	struct lp_rand rand;
	struct tr_sim_arg arg = {0};
	struct tr_env env = {.clock = &clock, .rand = &rand};
	struct tr_ctx *ctx = NULL;
	struct tr_devinfo info;
	struct hl_link *hl = NULL;
	struct hl_opts o = {.version_timeout_ms = 200};
	struct lp_stream *s = NULL;
	uint8_t req[4 + sizeof(query) - 1], buf[4096];
	size_t n = 0;

	lp_clock_init_virtual(&clock, 0);
	lp_rand_seed(&rand, 1);
	f.dc = devcore_new(&pers, &f, NULL);
	if (!f.dc || setup_device(&f))
		goto out;
	arg.ops = &devcore_model_ops;
	arg.model = devcore_model(f.dc);
	arg.link.speed = TR_SPEED_HIGH;
	arg.link.link_off = true;
	if (tr_ctx_new(&tr_sim_ops, &env, &arg, &ctx, NULL) || tr_list(ctx, &info, 1, &n, NULL) ||
	    n != 1)
		goto out;
	if (hl_open(ctx, &info, &o, &hl, NULL))
		goto out;
	if (hl_connect(hl, MUX_PORT_LOCKDOWN, lp_clock_deadline_ms(&clock, 500), &s, NULL) == 0) {
		uint64_t dl = lp_clock_deadline_ms(&clock, 1000);

		req[0] = req[1] = 0;
		req[2] = (uint8_t)((sizeof(query) - 1) >> 8);
		req[3] = (uint8_t)(sizeof(query) - 1);
		memcpy(req + 4, query, sizeof(query) - 1);
		if (lp_stream_send(s, req, sizeof(req), dl, NULL) == 0) {
			for (int i = 0; i < 64; i++) {
				size_t got = 0;

				if (lp_stream_recv(s, buf, sizeof(buf), &got, dl, NULL))
					break;
				sink += got;
			}
		}
	}
	hl_pump(hl, lp_clock_deadline_ms(&clock, 10));
out:
	lp_stream_close(s);
	hl_close(hl);
	tr_ctx_free(ctx);
	devcore_free(f.dc);
	return 0;
}
