/* lpg_ffs.c - lp_gadget's FunctionFS side of the function: the descriptors it
 * writes to ep0, and ep0's events. ENABLE resets the model and puts it in the
 * configuration the host chose (configfs answered the real SET_CONFIGURATION);
 * DISABLE/UNBIND reset it; of the SETUPs only usbmux's vendor requests 0x45
 * (GET_MODE) and 0x52 (SET_MODE) reach the model, everything else is stalled.
 *
 * Reference: Linux Documentation/usb/functionfs.rst, include/uapi/linux/usb/
 * functionfs.h; USB 2.0 ch. 9.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/usb/ch9.h>
#include <linux/usb/functionfs.h>

#include "src/base/lp_cursor.h"
#include "src/base/lp_error.h"
#include "usb/usb_desc.h"
#include "tools/gadget/lpg.h"

const struct lpg_iface_desc lpg_ifaces[LPG_AUDIO + 1] = {
	[LPG_USBMUX] = {"usbmux", 0xff, 0xfe, 0x02, true, false, "Apple USB Multiplexor"},
	[LPG_PTP] = {"ptp", 0x06, 0x01, 0x01, true, true, "PTP"},
	[LPG_DFU] = {"dfu", 0xfe, 0x01, 0x02, false, false, "Apple Mobile Device (DFU Mode)"},
	[LPG_RECOVERY] = {"recovery", 0xff, 0xff, 0x00, true, false,
			  "Apple Mobile Device (Recovery Mode)"},
	/* configuration 4's Apple USB Ethernet (ipheth's ff/fd/01); a real
	 * iPhone puts its bulk endpoints in alternate setting 1, here they are in
	 * alternate setting 0 (inert either way: every request is stalled) */
	[LPG_ETHERNET] = {"ethernet", 0xff, 0xfd, 0x01, true, false, "Apple USB Ethernet"},
	/* configuration 2's iPod audio: audio control 01/01/00 + audio streaming
	 * 01/02/00. A real iPhone streams on an isochronous IN endpoint in the
	 * streaming interface's alternate setting 1; dummy_hcd has no isochronous
	 * endpoints, so only the zero-bandwidth alternate setting 0 is here */
	[LPG_AUDIO] = {"audio", 0x01, 0x01, 0x00, false, false, "iPod Audio", 0x01, 0x02, 0x00},
};

/* --- FunctionFS descriptors ------------------------------------------------ */

static void put_endpoint(struct lp_wr *w, uint8_t addr, uint8_t attr, uint16_t mps,
			 uint8_t interval)
{
	lp_wr_u8(w, USB_DT_ENDPOINT_SIZE);
	lp_wr_u8(w, USB_DT_ENDPOINT);
	lp_wr_u8(w, addr);
	lp_wr_u8(w, attr);
	lp_wr_le16(w, mps);
	lp_wr_u8(w, interval);
}

/* One speed's descriptor list: interface, then its endpoints (IN first, so
 * FunctionFS names them ep1 = bulk IN, ep2 = bulk OUT, ep3 = interrupt IN). */
static unsigned put_speed(struct lp_wr *w, const struct lpg_iface_desc *d, bool hs)
{
	unsigned n = 1;
	uint8_t neps = (d->bulk ? 2 : 0) + (d->intr_in ? 1 : 0);

	lp_wr_u8(w, USB_DT_INTERFACE_SIZE);
	lp_wr_u8(w, USB_DT_INTERFACE);
	lp_wr_u8(w, 0); /* bInterfaceNumber: FunctionFS renumbers */
	lp_wr_u8(w, 0);
	lp_wr_u8(w, neps);
	lp_wr_u8(w, d->cls);
	lp_wr_u8(w, d->subcls);
	lp_wr_u8(w, d->proto);
	lp_wr_u8(w, 1); /* iInterface: our string 1 */
	if (d->bulk) {
		put_endpoint(w, 1 | USB_DIR_IN, USB_ENDPOINT_XFER_BULK, hs ? 512 : 64, 0);
		put_endpoint(w, 2 | USB_DIR_OUT, USB_ENDPOINT_XFER_BULK, hs ? 512 : 64, 0);
		n += 2;
	}
	if (d->intr_in) {
		/* 8 ms either way: 2^(4-1) microframes at high speed, 8 frames at full */
		put_endpoint(w, 3 | USB_DIR_IN, USB_ENDPOINT_XFER_INT, 64, hs ? 4 : 8);
		n++;
	}
	if (d->cls2) {
		lp_wr_u8(w, USB_DT_INTERFACE_SIZE);
		lp_wr_u8(w, USB_DT_INTERFACE);
		lp_wr_u8(w, 1); /* bInterfaceNumber: FunctionFS renumbers */
		lp_wr_u8(w, 0);
		lp_wr_u8(w, 0);
		lp_wr_u8(w, d->cls2);
		lp_wr_u8(w, d->subcls2);
		lp_wr_u8(w, d->proto2);
		lp_wr_u8(w, 1);
		n++;
	}
	return n;
}

int lpg_write_descriptors(struct lpg *g)
{
	const struct lpg_iface_desc *d = &lpg_ifaces[g->iface];
	uint8_t buf[256], sbuf[128];
	struct lp_wr w, s;
	size_t cnt_off;
	unsigned nfs, nhs;

	lp_wr_init_fixed(&w, buf, sizeof(buf));
	lp_wr_le32(&w, FUNCTIONFS_DESCRIPTORS_MAGIC_V2);
	lp_wr_le32(&w, 0); /* length, patched */
	/* ALL_CTRL_RECIP + CONFIG0_SETUP: usbmuxd sends its device-recipient
	 * vendor requests while the device is still unconfigured */
	lp_wr_le32(&w, FUNCTIONFS_HAS_FS_DESC | FUNCTIONFS_HAS_HS_DESC |
			       (g->iface == LPG_USBMUX
					? FUNCTIONFS_ALL_CTRL_RECIP | FUNCTIONFS_CONFIG0_SETUP
					: 0));
	cnt_off = w.len;
	lp_wr_le32(&w, 0);
	lp_wr_le32(&w, 0);
	nfs = put_speed(&w, d, false);
	nhs = put_speed(&w, d, true);
	lp_wr_patch_le32(&w, 4, (uint32_t)w.len);
	lp_wr_patch_le32(&w, cnt_off, nfs);
	lp_wr_patch_le32(&w, cnt_off + 4, nhs);

	lp_wr_init_fixed(&s, sbuf, sizeof(sbuf));
	lp_wr_le32(&s, FUNCTIONFS_STRINGS_MAGIC);
	lp_wr_le32(&s, 0);
	lp_wr_le32(&s, 1); /* str_count */
	lp_wr_le32(&s, 1); /* lang_count */
	lp_wr_le16(&s, 0x0409);
	lp_wr_bytes(&s, d->str, strlen(d->str) + 1);
	lp_wr_patch_le32(&s, 4, (uint32_t)s.len);
	if (!lp_wr_ok(&w) || !lp_wr_ok(&s))
		return LP_ETOOBIG;

	if (write(g->ep0, buf, w.len) != (ssize_t)w.len) {
		LOGE(g, "writing FunctionFS descriptors: %s", strerror(errno));
		return lp_err_from_errno(errno);
	}
	if (write(g->ep0, sbuf, s.len) != (ssize_t)s.len) {
		LOGE(g, "writing FunctionFS strings: %s", strerror(errno));
		return lp_err_from_errno(errno);
	}
	return 0;
}

/* --- ep0 ------------------------------------------------------------------ */

void lpg_setup_bytes(uint8_t out[LPG_SETUP_LEN], uint8_t type, uint8_t req, uint16_t value,
		     uint16_t index, uint16_t length)
{
	struct lp_wr w;

	lp_wr_init_fixed(&w, out, LPG_SETUP_LEN);
	lp_wr_u8(&w, type);
	lp_wr_u8(&w, req);
	lp_wr_le16(&w, value);
	lp_wr_le16(&w, index);
	lp_wr_le16(&w, length);
}

/* Find the model's usbmux endpoints in the configuration it was put in.
 * Called with lock held. */
static void lpg_model_endpoints(struct lpg *g, uint64_t now)
{
	uint8_t setup[LPG_SETUP_LEN], *buf;
	struct usbd_config c;
	size_t actual = 0;
	int rc;

	g->m_in = 0x81;
	g->m_out = 0x02;
	g->m_mps = 512;
	buf = malloc(USBD_CONFIG_MAX_TOTAL);
	if (!buf)
		return;
	/* configuration index = value - 1 for every configuration we model */
	lpg_setup_bytes(setup, 0x80, USBD_REQ_GET_DESCRIPTOR,
			(uint16_t)(USBD_DT_CONFIG << 8 | (g->config - 1)), 0,
			USBD_CONFIG_MAX_TOTAL);
	rc = g->ops->control(g->model, setup, buf, USBD_CONFIG_MAX_TOTAL, &actual, now);
	if (rc == 0)
		rc = usbd_parse_config(buf, actual, &c);
	if (rc == 0 && !usbd_find_usbmux(&c, &g->m_in, &g->m_out, &g->m_mps))
		rc = LP_ENOENT;
	if (rc)
		LOGW(g, "model's configuration %u: no usbmux interface found (%s); using 0x81/0x02",
		     g->config, lp_strerror(rc));
	else
		LOGI(g, "model: configuration %u, usbmux IN 0x%02x OUT 0x%02x mps %u", g->config,
		     g->m_in, g->m_out, g->m_mps);
	free(buf);
}

static uint16_t ep_file_mps(struct lpg *g, int fd)
{
	struct usb_endpoint_descriptor d;

	if (fd < 0 || ioctl(fd, FUNCTIONFS_ENDPOINT_DESC, &d) < 0)
		return 0;
	return (uint16_t)(((const uint8_t *)&d.wMaxPacketSize)[0] |
			  ((const uint8_t *)&d.wMaxPacketSize)[1] << 8);
}

static void lpg_enable(struct lpg *g)
{
	uint64_t now = lp_clock_now(&g->clock);
	uint8_t setup[LPG_SETUP_LEN];
	uint16_t vid, pid;
	uint8_t ncfg;
	size_t actual;
	int rc;

	pthread_mutex_lock(&g->lock);
	g->mps = ep_file_mps(g, g->ep_in);
	g->ops->reset(g->model, now);
	g->ops->identity(g->model, &vid, &pid, &ncfg);
	/* The host chose the configuration holding usbmux (the highest, as
	 * usbmuxd does); configfs answered it, the model has to hear it too. */
	g->config = ncfg ? ncfg : 1;
	lpg_setup_bytes(setup, 0x00, USBD_REQ_SET_CONFIGURATION, g->config, 0, 0);
	rc = g->ops->control(g->model, setup, NULL, 0, &actual, now);
	if (rc)
		LOGW(g, "model refused SET_CONFIGURATION %u: %s", g->config, lp_strerror(rc));
	lpg_model_endpoints(g, now);
	g->enabled = true;
	g->gen++;
	if (!g->first_enable_ns)
		g->first_enable_ns = now ? now : 1;
	LOGI(g, "enabled: wMaxPacketSize %u (%s speed)", g->mps, g->mps == 64 ? "full" : "high");
	pthread_cond_broadcast(&g->kick);
	pthread_mutex_unlock(&g->lock);
}

static void lpg_disable(struct lpg *g, const char *why)
{
	pthread_mutex_lock(&g->lock);
	if (g->enabled)
		LOGI(g, "%s: device unconfigured", why);
	g->enabled = false;
	g->gen++;
	g->ops->reset(g->model, lp_clock_now(&g->clock));
	pthread_cond_broadcast(&g->kick);
	pthread_mutex_unlock(&g->lock);
}

/* A stall is answered by moving data "the wrong way" (functionfs.rst). */
static void ep0_stall(struct lpg *g, const struct usb_ctrlrequest *s)
{
	ssize_t r;

	if (s->bRequestType & USB_DIR_IN)
		r = read(g->ep0, NULL, 0);
	else
		r = write(g->ep0, NULL, 0);
	(void)r;
}

static void lpg_setup(struct lpg *g, const struct usb_ctrlrequest *s)
{
	uint8_t setup[LPG_SETUP_LEN], data[LPG_EP0_MAX];
	uint16_t wlen = le16toh(s->wLength);
	size_t actual = 0;
	bool in = s->bRequestType & USB_DIR_IN;
	int rc = LP_ESTALL;
	ssize_t r;

	lpg_setup_bytes(setup, s->bRequestType, s->bRequest, le16toh(s->wValue), le16toh(s->wIndex),
			wlen);
	LOGD(g, "SETUP %02x %02x wValue %04x wIndex %04x wLength %u", s->bRequestType, s->bRequest,
	     le16toh(s->wValue), le16toh(s->wIndex), wlen);
	bool vendor = (s->bRequestType & USB_TYPE_MASK) == USB_TYPE_VENDOR;
	if (g->iface != LPG_USBMUX || !vendor || (s->bRequest != 0x45 && s->bRequest != 0x52) ||
	    wlen > sizeof(data)) {
		ep0_stall(g, s);
		return;
	}
	if (!in && wlen) {
		r = read(g->ep0, data, wlen);
		if (r != wlen) {
			LOGW(g, "control OUT data stage: %s", r < 0 ? strerror(errno) : "short");
			return;
		}
	}
	pthread_mutex_lock(&g->lock);
	rc = g->ops->control(g->model, setup, data, wlen, &actual, lp_clock_now(&g->clock));
	pthread_cond_broadcast(&g->kick);
	pthread_mutex_unlock(&g->lock);
	LOGI(g, "vendor request 0x%02x -> %s", s->bRequest, rc ? lp_strerror(rc) : "answered");
	if (rc) {
		ep0_stall(g, s);
		return;
	}
	if (in)
		r = write(g->ep0, data, actual < wlen ? actual : wlen);
	else
		r = read(g->ep0, NULL, 0); /* status stage */
	if (r < 0)
		LOGW(g, "control status stage: %s", strerror(errno));
}

void *lpg_ep0_thread(void *arg)
{
	static const char *names[] = {"BIND",  "UNBIND",  "ENABLE", "DISABLE",
				      "SETUP", "SUSPEND", "RESUME"};
	struct lpg *g = arg;
	struct usb_functionfs_event ev[4];

	while (!lpg_stop) {
		ssize_t n = read(g->ep0, ev, sizeof(ev));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			LOGE(g, "reading ep0 events: %s", strerror(errno));
			lpg_stop = 1;
			break;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(ev[0]); i++) {
			uint8_t t = ev[i].type;

			LOGD(g, "ep0 event %s", t < 7 ? names[t] : "?");
			if (g->iface != LPG_USBMUX) {
				if (t == FUNCTIONFS_SETUP)
					ep0_stall(g, &ev[i].u.setup);
				continue;
			}
			switch (t) {
			case FUNCTIONFS_ENABLE:
				lpg_enable(g);
				break;
			case FUNCTIONFS_DISABLE:
			case FUNCTIONFS_UNBIND:
				lpg_disable(g, t == FUNCTIONFS_DISABLE ? "DISABLE" : "UNBIND");
				break;
			case FUNCTIONFS_SETUP:
				lpg_setup(g, &ev[i].u.setup);
				break;
			default:
				break;
			}
		}
	}
	pthread_mutex_lock(&g->lock);
	pthread_cond_broadcast(&g->kick);
	pthread_mutex_unlock(&g->lock);
	return NULL;
}
