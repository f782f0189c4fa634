/* usb_probe.c - descriptor probing; see usb_probe.h. */
#include "usb/usb_probe.h"

#include <stdlib.h>
#include <string.h>

#include "src/base/lp_cursor.h"
#include "src/base/lp_log.h"
#include "src/base/lp_str.h"

#define PROBE_DESC_BUF 255	  /* string and device descriptors */
#define PROBE_LANGID_EN_US 0x0409 /* when string 0 cannot be read */

/* ---------------------------------------------------------------------------
 * Descriptor probe
 */

/* One GET_DESCRIPTOR, timed. */
static int probe_get_desc(struct tr_dev *dev, struct usbd_probe *p, uint8_t type, uint8_t idx,
			  uint16_t langid, uint8_t *buf, uint16_t len, size_t *actual)
{
	struct tr_xfer x;
	int rc;

	memset(&x, 0, sizeof(x));
	x.dev = dev;
	x.type = TR_XFER_CONTROL;
	x.setup[0] = 0x80;
	x.setup[1] = USBD_REQ_GET_DESCRIPTOR;
	x.setup[2] = idx;
	x.setup[3] = type;
	x.setup[4] = (uint8_t)(langid & 0xff);
	x.setup[5] = (uint8_t)(langid >> 8);
	x.setup[6] = (uint8_t)(len & 0xff);
	x.setup[7] = (uint8_t)(len >> 8);
	x.endpoint = 0x80;
	x.buf = buf;
	x.len = len;
	x.timeout_ms = USBD_PROBE_CTRL_TIMEOUT_MS;
	rc = tr_xfer_sync(&x, USBD_PROBE_CTRL_TIMEOUT_MS);
	if (x.done_ns >= x.submit_ns && x.done_ns && p->num_rtt < USBD_PROBE_MAX_RTT)
		p->ctrl_rtt_ns[p->num_rtt++] = x.done_ns - x.submit_ns;
	*actual = x.actual;
	return rc;
}

static void probe_read_string(struct tr_dev *dev, struct usbd_probe *p, uint8_t idx,
			      uint16_t langid, char *out, size_t outsz, const struct lp_log *log,
			      int *nodev)
{
	uint8_t buf[PROBE_DESC_BUF];
	size_t n = 0;
	int rc;

	out[0] = 0;
	if (!idx || *nodev)
		return;
	rc = probe_get_desc(dev, p, USBD_DT_STRING, idx, langid, buf, sizeof(buf), &n);
	if (rc == LP_ENODEV)
		*nodev = 1;
	if (rc || usbd_parse_string(buf, n, out, outsz)) {
		out[0] = 0;
		lp_logf(log, LP_LOG_WARN, "probe: string descriptor %u unreadable (%s)", idx,
			rc ? lp_strerror(rc) : "malformed");
	}
}

/* Prefer the active configuration if it has usbmux, else the highest one. */
static void probe_pick_usbmux(struct usbd_probe *p)
{
	const struct usbd_config *best = NULL;
	uint8_t in = 0, out = 0;
	uint16_t mps = 0;

	for (size_t i = 0; i < p->num_configs; i++) {
		const struct usbd_config *c = &p->configs[i];
		const struct usbd_interface *f = usbd_find_usbmux(c, NULL, NULL, NULL);

		if (!f)
			continue;
		if (c->bConfigurationValue == p->active_config) {
			best = c;
			break;
		}
		if (!best || c->bConfigurationValue > best->bConfigurationValue)
			best = c;
	}
	if (!best)
		return;
	{
		const struct usbd_interface *f = usbd_find_usbmux(best, &in, &out, &mps);

		p->has_usbmux = true;
		p->usbmux_config = best->bConfigurationValue;
		p->usbmux_iface = f->bInterfaceNumber;
		p->ep_in = in;
		p->ep_out = out;
		p->mps = mps;
	}
}

int usbd_probe_dev(struct tr_dev *dev, struct usbd_probe *out, const struct lp_log *log,
		   struct lp_errinfo *e)
{
	struct usbd_probe *p;
	uint8_t buf[PROBE_DESC_BUF];
	uint8_t *cbuf = NULL;
	uint16_t langid = PROBE_LANGID_EN_US;
	uint64_t t0, t1;
	size_t n = 0;
	int rc, nodev = 0, cfg = 0;

	p = calloc(1, sizeof(*p));
	cbuf = malloc(USBD_CONFIG_MAX_TOTAL);
	if (!p || !cbuf) {
		rc = lp_err_set(e, LP_ENOMEM, "probe: out of memory");
		goto out;
	}
	p->speed = dev->info.speed;
	if (tr_get_configuration(dev, &cfg) == 0)
		p->active_config = cfg;
	t0 = lp_clock_now(dev->ctx->env.clock);

	rc = probe_get_desc(dev, p, USBD_DT_DEVICE, 0, 0, buf, 18, &n);
	if (rc) {
		lp_err_set(e, rc, "GET_DESCRIPTOR(device) failed: %s", lp_strerror(rc));
		goto out;
	}
	rc = usbd_parse_device(buf, n, &p->dev);
	if (rc) {
		lp_err_set(e, rc, "device descriptor (%zu bytes) does not decode: %s", n,
			   lp_strerror(rc));
		goto out;
	}

	for (unsigned i = 0; i < p->dev.bNumConfigurations && i < USBD_MAX_CONFIGS; i++) {
		struct lp_rd r;
		uint16_t total;

		rc = probe_get_desc(dev, p, USBD_DT_CONFIG, (uint8_t)i, 0, cbuf, 9, &n);
		if (rc == LP_ENODEV)
			goto nodev;
		lp_rd_init(&r, cbuf, n);
		lp_rd_skip(&r, 2);
		total = lp_rd_le16(&r);
		if (rc || !lp_rd_ok(&r)) {
			lp_logf(log, LP_LOG_WARN, "probe: configuration %u header unreadable (%s)",
				i, rc ? lp_strerror(rc) : "short");
			p->config_errors++;
			continue;
		}
		if (total > USBD_CONFIG_MAX_TOTAL)
			total = USBD_CONFIG_MAX_TOTAL;
		if (total > 9) {
			rc = probe_get_desc(dev, p, USBD_DT_CONFIG, (uint8_t)i, 0, cbuf, total, &n);
			if (rc == LP_ENODEV)
				goto nodev;
		}
		if (rc || usbd_parse_config(cbuf, n, &p->configs[p->num_configs])) {
			lp_logf(log, LP_LOG_WARN,
				"probe: configuration %u unreadable or malformed (%s)", i,
				rc ? lp_strerror(rc) : "decode");
			memset(&p->configs[p->num_configs], 0, sizeof(p->configs[0]));
			p->config_errors++;
			continue;
		}
		p->num_configs++;
	}

	/* USB 2.1 and later have a BOS: what speeds the device can do (a USB 3
	 * device linked at high speed is on a USB 2 cable or port) */
	if (p->dev.bcdUSB >= 0x0210) {
		rc = probe_get_desc(dev, p, USBD_DT_BOS, 0, 0, buf, 5, &n);
		if (rc == LP_ENODEV)
			goto nodev;
		if (rc == 0 && usbd_parse_bos(buf, n, &p->bos) == LP_ETRUNC &&
		    p->bos.wTotalLength <= sizeof(buf)) {
			rc = probe_get_desc(dev, p, USBD_DT_BOS, 0, 0, buf, p->bos.wTotalLength,
					    &n);
			if (rc == LP_ENODEV)
				goto nodev;
			p->have_bos = rc == 0 && usbd_parse_bos(buf, n, &p->bos) == 0;
		}
		if (!p->have_bos)
			lp_logf(log, LP_LOG_WARN,
				"probe: USB %x.%02x device without a readable BOS",
				p->dev.bcdUSB >> 8, p->dev.bcdUSB & 0xff);
	}

	if (p->dev.iManufacturer || p->dev.iProduct || p->dev.iSerialNumber) {
		rc = probe_get_desc(dev, p, USBD_DT_STRING, 0, 0, buf, sizeof(buf), &n);
		if (rc == LP_ENODEV)
			goto nodev;
		if (rc || usbd_parse_langid(buf, n, &langid))
			lp_logf(log, LP_LOG_WARN, "probe: no LANGID (string 0), trying 0x0409");
		probe_read_string(dev, p, p->dev.iManufacturer, langid, p->manufacturer,
				  sizeof(p->manufacturer), log, &nodev);
		probe_read_string(dev, p, p->dev.iProduct, langid, p->product, sizeof(p->product),
				  log, &nodev);
		probe_read_string(dev, p, p->dev.iSerialNumber, langid, p->serial,
				  sizeof(p->serial), log, &nodev);
		if (nodev)
			goto nodev;
	}
	usbd_serial_to_udid(p->serial, p->udid, sizeof(p->udid));
	t1 = lp_clock_now(dev->ctx->env.clock);
	p->desc_ns = t1 - t0;
	probe_pick_usbmux(p);
	*out = *p;
	rc = 0;
	goto out;
nodev:
	rc = lp_err_set(e, LP_ENODEV, "device disconnected while reading descriptors");
out:
	free(cbuf);
	free(p);
	return rc;
}

int usbd_probe(struct tr_ctx *ctx, const struct tr_devinfo *info, struct usbd_probe *out,
	       struct lp_errinfo *e)
{
	struct tr_dev *dev;
	int rc;

	if (!ctx || !info || !out)
		return lp_err_set(e, LP_EINVAL, "usbd_probe: bad arguments");
	rc = tr_open(ctx, info, &dev, e);
	if (rc)
		return rc;
	rc = usbd_probe_dev(dev, out, ctx->env.log, e);
	tr_close(dev);
	return rc;
}

int usbd_read_apple_mode(struct tr_ctx *ctx, const struct tr_devinfo *info, uint8_t out[4],
			 size_t *n, struct lp_errinfo *e)
{
	struct tr_dev *dev;
	uint8_t buf[4] = {0};
	size_t got = 0;
	int rc;

	if (!ctx || !info || !out || !n)
		return lp_err_set(e, LP_EINVAL, "usbd_read_apple_mode: bad arguments");
	if (info->vid != 0x05ac || info->pid < 0x1290 || info->pid > 0x12af)
		return lp_err_set(e, LP_EUNSUPPORTED, "not a normal-mode Apple device");
	rc = tr_open(ctx, info, &dev, e);
	if (rc)
		return rc;
	rc = tr_control_sync(dev, 0xc0, USBD_APPLE_GET_MODE, 0, 0, buf, sizeof(buf),
			     USBD_PROBE_CTRL_TIMEOUT_MS, &got);
	tr_close(dev);
	if (rc)
		return lp_err_set(e, rc, "GET_MODE (vendor request 0x45): %s", lp_strerror(rc));
	memcpy(out, buf, sizeof(buf));
	*n = got;
	return 0;
}

int usbd_guess_apple_mode(const struct usbd_probe *p)
{
	size_t n = p->dev.bNumConfigurations;

	if (n == 1)
		return 5;
	if (n <= 4)
		return 1;
	if (n == 6)
		return 4;
	if (n == 5) {
		for (size_t i = 0; i < p->num_configs; i++) {
			const struct usbd_config *c = &p->configs[i];
			if (c->bConfigurationValue != 5)
				continue;
			for (size_t k = 0; k < c->num_ifaces; k++) {
				const struct usbd_interface *f = &c->iface[k];
				if (f->bInterfaceClass == 0xff && f->bInterfaceSubClass == 0x2a)
					return 2;
				if (f->bInterfaceClass == 0x02 && f->bInterfaceSubClass == 0x0d)
					return 3;
			}
		}
	}
	return 0;
}

const char *usbd_apple_mode_name(int mode)
{
	switch (mode) {
	case 1:
		return "initial";
	case 2:
		return "valeria (screen capture)";
	case 3:
		return "cdc-ncm";
	case 4:
		return "usb-ethernet + cdc-ncm";
	case 5:
		return "cdc-ncm direct";
	default:
		return "unknown";
	}
}
