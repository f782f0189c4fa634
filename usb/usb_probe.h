/* usb_probe.h - what a device's descriptors say, read with timed control
 * transfers: identity, every configuration, the usbmux interface (class
 * ff/fe/02) and its bulk endpoints, strings (sanitized), and how long the
 * reads took. The "descriptors" stage of every command and hl_open() use it.
 * Reference: doc/protocol.md sections 1.1-1.7.
 */
#ifndef LP_USB_PROBE_H
#define LP_USB_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/base/lp_error.h"
#include "src/base/lp_log.h"
#include "usb/transport.h"
#include "usb/usb_desc.h"

#define USBD_PROBE_CTRL_TIMEOUT_MS 1000 /* every control transfer */
#define USBD_PROBE_STR_MAX 128
#define USBD_PROBE_MAX_RTT 32 /* control transfer round trips kept */

/* What the descriptors say, and how long reading them took. */
struct usbd_probe {
	struct usbd_device dev;
	struct usbd_config configs[USBD_MAX_CONFIGS];
	size_t num_configs;   /* configurations read and decoded */
	size_t config_errors; /* configurations that could not be read or decoded */
	char manufacturer[USBD_PROBE_STR_MAX], product[USBD_PROBE_STR_MAX],
		serial[USBD_PROBE_STR_MAX]; /* sanitized */
	char udid[64];
	enum tr_speed speed;
	int active_config; /* at probe time; 0 = unconfigured */
	bool has_usbmux;
	uint8_t usbmux_config; /* bConfigurationValue holding the usbmux interface */
	uint8_t usbmux_iface;  /* its bInterfaceNumber */
	uint8_t ep_in, ep_out;
	uint16_t mps;				  /* wMaxPacketSize of ep_out */
	uint64_t ctrl_rtt_ns[USBD_PROBE_MAX_RTT]; /* done_ns - submit_ns of each control transfer */
	size_t num_rtt;
	uint64_t desc_ns; /* first descriptor request to last completion */
	bool have_bos;	  /* bcdUSB 2.1+ and its BOS descriptor set read */
	struct usbd_bos bos;
};

/* Read descriptors of the device `info` (open, read, close). `out` written
 * only on success. LP_ENODEV if the device went away. */
int usbd_probe(struct tr_ctx *ctx, const struct tr_devinfo *info, struct usbd_probe *out,
	       struct lp_errinfo *e);
/* The same on a device already open (borrowed). */
int usbd_probe_dev(struct tr_dev *dev, struct usbd_probe *out, const struct lp_log *log,
		   struct lp_errinfo *e);

/* Apple's vendor request for the USB mode (doc/protocol.md 1.3: GET_MODE,
 * bmRequestType 0xC0, bRequest 0x45, wLength 4; usbmuxd asks it before
 * choosing a configuration): the reply bytes into out[0..3], *n how many.
 * Opens and closes `info`'s device. Only asked of normal-mode phones
 * (0x1290..0x12af); SET_MODE (0x52) is never sent. 0, LP_ESTALL (the device
 * does not know it), LP_EUNSUPPORTED (not a normal-mode Apple device), or
 * the transfer's error. */
#define USBD_APPLE_GET_MODE 0x45
#define USBD_APPLE_SET_MODE 0x52
int usbd_read_apple_mode(struct tr_ctx *ctx, const struct tr_devinfo *info, uint8_t out[4],
			 size_t *n, struct lp_errinfo *e);
/* The mode usbmuxd infers from the configurations (doc/protocol.md 1.3):
 * 1 initial (<= 4 configurations), 2 Valeria, 3 CDC-NCM (5 configurations,
 * by what the fifth holds), 4 USB Ethernet + CDC-NCM (6), 5 CDC-NCM direct
 * (1), 0 unknown. And its name. */
int usbd_guess_apple_mode(const struct usbd_probe *p);
const char *usbd_apple_mode_name(int mode);

#endif
