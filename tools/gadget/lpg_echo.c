/* lpg_echo.c - the echo model: a stand-in device for testing lp_gadget's
 * transfer machinery. Every OUT transfer comes back as one IN transfer
 * (ZLP-terminated when its length is a multiple of 512), so a host
 * (tools/lab/lab_echo.c) can check that the gadget reassembles and terminates
 * transfers of every size correctly.
 */
#include <stdlib.h>
#include <string.h>

#include "src/base/lp_error.h"
#include "src/device/devcore.h"
#include "usb/usb_desc.h"
#include "tools/gadget/lpg.h"

#define ECHO_MPS 512
#define ECHO_EP_IN 0x85
#define ECHO_EP_OUT 0x04
#define ECHO_CONFIGS 4 /* as an iPhone: the host picks the highest */

/* A personality on the device core: raw (no usbmux codec), every OUT
 * transfer queued back on IN with the core's ZLP rule. */
struct echo {
	struct devcore *dc;
};

static void echo_bulk_out(void *p, uint8_t ep, const uint8_t *data, size_t len, uint64_t now)
{
	struct echo *e = p;

	if (ep == ECHO_EP_OUT)
		devcore_in_queue(e->dc, ECHO_EP_IN, data, len, true);
}

static int echo_control(void *p, const uint8_t setup[8], uint8_t *data, size_t len, size_t *actual,
			uint64_t now)
{
	if (setup[0] == 0xc0 && setup[1] == 0x45 && len >= 4) {
		memcpy(data, "\x03\x03\x03\x00", 4);
		*actual = 4;
		return 0;
	}
	if (setup[0] == 0xc0 && setup[1] == 0x52 && len >= 1) {
		data[0] = 1; /* refuse mode changes: stay in the initial mode */
		*actual = 1;
		return 0;
	}
	return LP_ESTALL;
}

static const struct devcore_personality echo_personality = {
	.control = echo_control,
	.bulk_out = echo_bulk_out,
	.raw = true,
};

static void echo_free(void *owner)
{
	struct echo *e = owner;

	if (e)
		devcore_free(e->dc);
	free(e);
}

static struct echo *echo_new(const struct lp_log *log)
{
	struct echo *e = calloc(1, sizeof(*e));
	struct devcore *dc = e ? devcore_new(&echo_personality, e, log) : NULL;
	struct usbd_device d = {.bcdUSB = 0x0200,
				.idVendor = 0x05ac,
				.idProduct = 0x12a8,
				.bMaxPacketSize0 = 64,
				.bNumConfigurations = ECHO_CONFIGS};
	uint8_t buf[64];
	int n, rc;

	if (!dc) {
		free(e);
		return NULL;
	}
	e->dc = dc;
	n = usbd_encode_device(&d, buf, sizeof(buf));
	rc = n < 0 ? n : devcore_set_device(dc, buf, (size_t)n);
	for (uint8_t v = 1; v <= ECHO_CONFIGS && !rc; v++) {
		struct usbd_config c = {.bConfigurationValue = v,
					.bmAttributes = 0x80,
					.bMaxPower = 250,
					.num_ifaces = 1};

		c.iface[0] = (struct usbd_interface){.bInterfaceClass = 0xff,
						     .bInterfaceSubClass = 0xfe,
						     .bInterfaceProtocol = 0x02,
						     .bNumEndpoints = 2,
						     .num_eps = 2};
		c.iface[0].ep[0] = (struct usbd_endpoint){ECHO_EP_OUT, 2, 0, ECHO_MPS};
		c.iface[0].ep[1] = (struct usbd_endpoint){ECHO_EP_IN, 2, 0, ECHO_MPS};
		n = usbd_encode_config(&c, buf, sizeof(buf));
		rc = n < 0 ? n : devcore_add_config(dc, buf, (size_t)n, NULL, 0);
	}
	if (rc) {
		echo_free(e);
		return NULL;
	}
	return e;
}

int lpg_make_echo(struct lpg *g)
{
	struct echo *e = echo_new(&g->log);

	if (!e)
		return LP_ENOMEM;
	g->ops = &devcore_model_ops;
	g->model = devcore_model(e->dc);
	g->owner = e;
	g->model_free = echo_free;
	return 0;
}
