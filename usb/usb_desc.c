/* usb_desc.c - USB descriptor decoding (untrusted bytes) and encoding.
 *
 * Reference: USB 2.0 specification, chapter 9.6 (standard descriptors).
 * Every byte is read through struct lp_rd. Truncated input (the bytes are not
 * there) is LP_ETRUNC; bytes that contradict the spec (wrong bDescriptorType,
 * bLength too short or running past wTotalLength) are LP_EBADMSG.
 *
 *   device (18 B)   bLength bDescriptorType bcdUSB(LE16) bDeviceClass
 *                   bDeviceSubClass bDeviceProtocol bMaxPacketSize0
 *                   idVendor idProduct bcdDevice (LE16 each) iManufacturer
 *                   iProduct iSerialNumber bNumConfigurations
 *   config (9 B)    bLength bDescriptorType wTotalLength(LE16) bNumInterfaces
 *                   bConfigurationValue iConfiguration bmAttributes bMaxPower
 *     interface (9) bLength type bInterfaceNumber bAlternateSetting
 *                   bNumEndpoints class subclass protocol iInterface
 *     endpoint (7)  bLength type bEndpointAddress bmAttributes
 *                   wMaxPacketSize(LE16) bInterval
 *     (class-specific and other descriptors in between are skipped)
 *   string          bLength bDescriptorType UTF-16LE code units...
 *
 * Decoders write their output only on success, except usbd_parse_config on a
 * header-only fetch (see usb_desc.h). */
#include "usb/usb_desc.h"

#include <string.h>

#include "src/base/lp_cursor.h"
#include "src/base/lp_error.h"
#include "src/base/lp_str.h"

#define DEV_DESC_LEN 18
#define CFG_DESC_LEN 9
#define IF_DESC_LEN 9
#define EP_DESC_LEN 7
#define STR_DESC_MAX 255
#define EP_XFER_BULK 2

/* Reads bLength/bDescriptorType and checks them against the expected type and
 * minimum length before anything else: a wrong type is invalid even when the
 * buffer is short. */
static int desc_head(const uint8_t *buf, size_t len, uint8_t type, uint8_t minlen, uint8_t *blen)
{
	struct lp_rd r;
	uint8_t l, t;

	lp_rd_init(&r, buf, len);
	l = lp_rd_u8(&r);
	t = lp_rd_u8(&r);
	if (!lp_rd_ok(&r))
		return LP_ETRUNC;
	if (t != type || l < minlen)
		return LP_EBADMSG;
	*blen = l;
	return 0;
}

int usbd_parse_device(const uint8_t *buf, size_t len, struct usbd_device *out)
{
	struct usbd_device d;
	struct lp_rd r;
	uint8_t blen;
	int rc;

	if (!out)
		return LP_EINVAL;
	rc = desc_head(buf, len, USBD_DT_DEVICE, DEV_DESC_LEN, &blen);
	if (rc)
		return rc;
	/* The spec fixes bLength at 18; a longer one is a lie we refuse. */
	if (blen != DEV_DESC_LEN)
		return LP_EBADMSG;
	lp_rd_init(&r, buf, len);
	lp_rd_skip(&r, 2);
	d.bcdUSB = lp_rd_le16(&r);
	d.bDeviceClass = lp_rd_u8(&r);
	d.bDeviceSubClass = lp_rd_u8(&r);
	d.bDeviceProtocol = lp_rd_u8(&r);
	d.bMaxPacketSize0 = lp_rd_u8(&r);
	d.idVendor = lp_rd_le16(&r);
	d.idProduct = lp_rd_le16(&r);
	d.bcdDevice = lp_rd_le16(&r);
	d.iManufacturer = lp_rd_u8(&r);
	d.iProduct = lp_rd_u8(&r);
	d.iSerialNumber = lp_rd_u8(&r);
	d.bNumConfigurations = lp_rd_u8(&r);
	if (!lp_rd_ok(&r))
		return LP_ETRUNC;
	*out = d;
	return 0;
}

static int parse_interface(struct lp_rd *r, struct usbd_interface *i)
{
	memset(i, 0, sizeof(*i));
	i->bInterfaceNumber = lp_rd_u8(r);
	i->bAlternateSetting = lp_rd_u8(r);
	i->bNumEndpoints = lp_rd_u8(r);
	i->bInterfaceClass = lp_rd_u8(r);
	i->bInterfaceSubClass = lp_rd_u8(r);
	i->bInterfaceProtocol = lp_rd_u8(r);
	i->iInterface = lp_rd_u8(r);
	return lp_rd_ok(r) ? 0 : LP_ETRUNC;
}

static int parse_endpoint(struct lp_rd *r, struct usbd_endpoint *ep)
{
	ep->bEndpointAddress = lp_rd_u8(r);
	ep->bmAttributes = lp_rd_u8(r);
	ep->wMaxPacketSize = lp_rd_le16(r);
	ep->bInterval = lp_rd_u8(r);
	return lp_rd_ok(r) ? 0 : LP_ETRUNC;
}

int usbd_parse_config(const uint8_t *buf, size_t len, struct usbd_config *out)
{
	struct usbd_config c;
	struct usbd_interface *cur = NULL;
	struct lp_rd r, body;
	uint8_t blen;
	int rc;

	if (!out)
		return LP_EINVAL;
	rc = desc_head(buf, len, USBD_DT_CONFIG, CFG_DESC_LEN, &blen);
	if (rc)
		return rc;
	memset(&c, 0, sizeof(c));
	lp_rd_init(&r, buf, len);
	lp_rd_skip(&r, 2);
	c.wTotalLength = lp_rd_le16(&r);
	c.bNumInterfaces = lp_rd_u8(&r);
	c.bConfigurationValue = lp_rd_u8(&r);
	c.iConfiguration = lp_rd_u8(&r);
	c.bmAttributes = lp_rd_u8(&r);
	c.bMaxPower = lp_rd_u8(&r);
	if (!lp_rd_ok(&r))
		return LP_ETRUNC;
	if (c.wTotalLength < blen)
		return LP_EBADMSG;
	if (c.wTotalLength > USBD_CONFIG_MAX_TOTAL)
		return LP_ETOOBIG;
	if (len < c.wTotalLength) {
		/* header-only fetch: the caller learns wTotalLength from this */
		*out = c;
		return LP_ETRUNC;
	}

	/* Walk descriptors within wTotalLength; bytes after it are not ours. */
	lp_rd_init(&r, buf, c.wTotalLength);
	lp_rd_skip(&r, blen);
	while (lp_rd_left(&r) > 0) {
		struct lp_rd hd = r;
		uint8_t dl = lp_rd_u8(&hd);
		uint8_t dt = lp_rd_u8(&hd);

		if (!lp_rd_ok(&hd) || dl < 2 || dl > lp_rd_left(&r))
			return LP_EBADMSG;
		body = lp_rd_sub(&r, dl);
		lp_rd_skip(&body, 2);
		if (dt == USBD_DT_INTERFACE) {
			if (dl < IF_DESC_LEN)
				return LP_EBADMSG;
			if (c.num_ifaces >= USBD_MAX_IFACES) {
				/* over our cap: skip it and its endpoints */
				cur = NULL;
				continue;
			}
			cur = &c.iface[c.num_ifaces++];
			if (parse_interface(&body, cur))
				return LP_EBADMSG;
		} else if (dt == USBD_DT_ENDPOINT) {
			if (dl < EP_DESC_LEN)
				return LP_EBADMSG;
			if (!cur || cur->num_eps >= USBD_MAX_EPS)
				continue;
			if (parse_endpoint(&body, &cur->ep[cur->num_eps]))
				return LP_EBADMSG;
			cur->num_eps++;
		}
	}
	if (!lp_rd_ok(&r))
		return LP_EBADMSG;
	*out = c;
	return 0;
}

/* Append code point cp as UTF-8 (cp already validated as a scalar value). */
static size_t put_utf8(uint8_t *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (uint8_t)(0xC0 | cp >> 6);
		o[1] = (uint8_t)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (uint8_t)(0xE0 | cp >> 12);
		o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
		o[2] = (uint8_t)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (uint8_t)(0xF0 | cp >> 18);
	o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
	o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
	o[3] = (uint8_t)(0x80 | (cp & 0x3F));
	return 4;
}

/* SuperSpeedPlus sublink speed attribute: lane speed mantissa (bits 31..16)
 * scaled by the exponent (bits 5..4: 0 b/s, 1 Kb/s, 2 Mb/s, 3 Gb/s), in Mb/s. */
static uint32_t ssp_attr_mbps(uint32_t a)
{
	uint32_t m = a >> 16;

	switch ((a >> 4) & 3) {
	case 3:
		return m > UINT32_MAX / 1000 ? UINT32_MAX : m * 1000;
	case 2:
		return m;
	case 1:
		return m / 1000;
	default:
		return m / 1000000;
	}
}

int usbd_parse_bos(const uint8_t *buf, size_t len, struct usbd_bos *out)
{
	struct usbd_bos b;
	struct lp_rd r;
	uint8_t blen, ncaps;
	int rc;

	if (!out)
		return LP_EINVAL;
	memset(&b, 0, sizeof(b));
	rc = desc_head(buf, len, USBD_DT_BOS, 5, &blen);
	if (rc)
		return rc;
	if (blen != 5)
		return LP_EBADMSG;
	lp_rd_init(&r, buf, len);
	lp_rd_skip(&r, 2);
	b.wTotalLength = lp_rd_le16(&r);
	ncaps = lp_rd_u8(&r);
	if (!lp_rd_ok(&r))
		return LP_ETRUNC;
	if (b.wTotalLength < 5)
		return LP_EBADMSG;
	if (b.wTotalLength > USBD_BOS_MAX_TOTAL)
		return LP_ETOOBIG;
	if (len < b.wTotalLength) {
		*out = b; /* the 5-byte header fetch: the caller reads the rest */
		return LP_ETRUNC;
	}
	lp_rd_init(&r, buf, b.wTotalLength);
	lp_rd_skip(&r, 5);
	for (unsigned i = 0; i < ncaps && lp_rd_left(&r) > 0; i++) {
		uint8_t cl, ct, type;
		struct lp_rd c;

		if (lp_rd_left(&r) < 3)
			return LP_ETRUNC;
		cl = buf[b.wTotalLength - lp_rd_left(&r)];
		if (cl < 3)
			return LP_EBADMSG;
		if (cl > lp_rd_left(&r))
			return LP_ETRUNC;
		c = lp_rd_sub(&r, cl);
		lp_rd_skip(&c, 1);
		ct = lp_rd_u8(&c);
		type = lp_rd_u8(&c);
		if (ct != USBD_DT_DEVICE_CAPABILITY)
			return LP_EBADMSG;
		b.num_caps++;
		if (type == USBD_CAP_USB20_EXT && cl >= 7) {
			b.usb20_ext = true;
		} else if (type == USBD_CAP_SUPERSPEED && cl >= 10) {
			lp_rd_skip(&c, 1); /* bmAttributes */
			b.ss_speeds = lp_rd_le16(&c);
			b.superspeed = true;
		} else if (type == USBD_CAP_SUPERSPEED_PLUS && cl >= 12) {
			uint32_t attrs, n;

			lp_rd_skip(&c, 1); /* bReserved */
			attrs = lp_rd_le32(&c);
			lp_rd_skip(&c, 4);	/* wFunctionalitySupport, wReserved */
			n = (attrs & 0x1f) + 1; /* bits 4..0: attribute count - 1 */
			for (uint32_t k = 0; k < n && lp_rd_left(&c) >= 4; k++) {
				uint32_t mbps = ssp_attr_mbps(lp_rd_le32(&c));
				if (mbps > b.ssp_max_mbps)
					b.ssp_max_mbps = mbps;
			}
			b.superspeed_plus = true;
		}
	}
	*out = b;
	return 0;
}

static size_t put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	return 2;
}

static size_t put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
	return 4;
}

int usbd_encode_bos(unsigned plus_gbps, uint8_t *buf, size_t cap)
{
	uint8_t b[64];
	size_t o = 5;
	uint8_t ncaps = 2;

	/* USB 2.0 extension: LPM supported */
	b[o++] = 7, b[o++] = USBD_DT_DEVICE_CAPABILITY, b[o++] = USBD_CAP_USB20_EXT;
	o += put_le32(b + o, 0x00000002);
	/* SuperSpeed: full, high and 5 Gb/s speeds; fully functional at high speed */
	b[o++] = 10, b[o++] = USBD_DT_DEVICE_CAPABILITY, b[o++] = USBD_CAP_SUPERSPEED;
	b[o++] = 0x00;
	o += put_le16(b + o, 0x000e);
	b[o++] = 2;
	b[o++] = 0x0a;
	o += put_le16(b + o, 0x07ff);
	if (plus_gbps == 10 || plus_gbps == 20) {
		/* SuperSpeedPlus: two attributes (RX and TX of sublink 0), Gb/s units */
		uint32_t lane = plus_gbps == 20 ? 10 : plus_gbps;
		uint32_t rx = lane << 16 | 3u << 4, tx = rx | 1u << 7;

		b[o++] = 20, b[o++] = USBD_DT_DEVICE_CAPABILITY, b[o++] = USBD_CAP_SUPERSPEED_PLUS;
		b[o++] = 0;
		o += put_le32(b + o, 1); /* two attributes, one sublink speed ID */
		o += put_le16(b + o, 0x1100);
		o += put_le16(b + o, 0);
		o += put_le32(b + o, rx);
		o += put_le32(b + o, tx);
		ncaps++;
	}
	b[0] = 5, b[1] = USBD_DT_BOS;
	put_le16(b + 2, (uint16_t)o);
	b[4] = ncaps;
	if (o > cap)
		return LP_ETOOBIG;
	memcpy(buf, b, o);
	return (int)o;
}

int usbd_parse_string(const uint8_t *buf, size_t len, char *out, size_t outsz)
{
	/* 126 UTF-16 units -> at most 4 bytes each in UTF-8 */
	uint8_t utf8[STR_DESC_MAX * 2];
	uint16_t u[STR_DESC_MAX / 2];
	size_t n = 0, units;
	struct lp_rd r, s;
	uint8_t blen;
	int rc;

	if (!out || !outsz)
		return LP_EINVAL;
	rc = desc_head(buf, len, USBD_DT_STRING, 2, &blen);
	if (rc)
		return rc;
	lp_rd_init(&r, buf, len);
	s = lp_rd_sub(&r, blen);
	if (!lp_rd_ok(&s))
		return LP_ETRUNC;
	lp_rd_skip(&s, 2);
	/* An odd bLength leaves half a code unit: ignored, as Linux does. */
	units = lp_rd_left(&s) / 2;
	for (size_t i = 0; i < units; i++)
		u[i] = lp_rd_le16(&s);
	/* Some firmware pads strings with U+0000: trailing NULs are not text. */
	while (units > 0 && u[units - 1] == 0)
		units--;
	for (size_t i = 0; i < units; i++) {
		uint32_t cp = u[i];

		if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < units && u[i + 1] >= 0xDC00 &&
		    u[i + 1] <= 0xDFFF) {
			cp = 0x10000 + ((cp - 0xD800) << 10) + (uint32_t)(u[i + 1] - 0xDC00);
			i++;
		}
		if (cp >= 0xD800 && cp <= 0xDFFF)
			cp = '?'; /* unpaired surrogate */
		n += put_utf8(utf8 + n, cp);
	}
	lp_sanitize(out, outsz, utf8, n);
	return 0;
}

int usbd_parse_langid(const uint8_t *buf, size_t len, uint16_t *langid)
{
	struct lp_rd r;
	uint8_t blen;
	uint16_t id;
	int rc;

	if (!langid)
		return LP_EINVAL;
	rc = desc_head(buf, len, USBD_DT_STRING, 2, &blen);
	if (rc)
		return rc;
	if (blen < 4)
		return LP_EBADMSG; /* no LANGID at all */
	lp_rd_init(&r, buf, len);
	lp_rd_skip(&r, 2);
	id = lp_rd_le16(&r);
	if (!lp_rd_ok(&r))
		return LP_ETRUNC;
	*langid = id;
	return 0;
}

const struct usbd_interface *usbd_find_usbmux(const struct usbd_config *c, uint8_t *ep_in,
					      uint8_t *ep_out, uint16_t *mps)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < c->num_ifaces && i < USBD_MAX_IFACES; i++) {
		const struct usbd_interface *f = &c->iface[i];
		const struct usbd_endpoint *in = NULL, *out = NULL;
		int nin = 0, nout = 0;

		if (f->bInterfaceClass != USBMUX_CLASS ||
		    f->bInterfaceSubClass != USBMUX_SUBCLASS ||
		    f->bInterfaceProtocol != USBMUX_PROTOCOL || f->bAlternateSetting != 0)
			continue;
		for (size_t j = 0; j < f->num_eps && j < USBD_MAX_EPS; j++) {
			const struct usbd_endpoint *ep = &f->ep[j];
			if ((ep->bmAttributes & 3) != EP_XFER_BULK)
				continue;
			if (ep->bEndpointAddress & 0x80) {
				in = ep;
				nin++;
			} else {
				out = ep;
				nout++;
			}
		}
		/* a zero wMaxPacketSize would make ZLP decisions meaningless */
		if (nin != 1 || nout != 1 || !(out->wMaxPacketSize & 0x7FF) ||
		    !(in->wMaxPacketSize & 0x7FF))
			continue;
		if (ep_in)
			*ep_in = in->bEndpointAddress;
		if (ep_out)
			*ep_out = out->bEndpointAddress;
		if (mps)
			*mps = out->wMaxPacketSize & 0x7FF;
		return f;
	}
	return NULL;
}

void usbd_serial_to_udid(const char *serial, char *out, size_t outsz)
{
	size_t n, o = 0;

	if (!out || !outsz)
		return;
	n = serial ? strlen(serial) : 0;
	for (size_t i = 0; i < n && o + 1 < outsz; i++) {
		if (n == 24 && i == 8) {
			out[o++] = '-';
			if (o + 1 >= outsz)
				break;
		}
		out[o++] = serial[i];
	}
	out[o] = '\0';
}

int usbd_encode_string(const char *s, uint8_t *out, size_t cap)
{
	struct lp_wr w;
	size_t n;

	if (!s || !out)
		return LP_EINVAL;
	n = strlen(s);
	if (2 + 2 * n > STR_DESC_MAX)
		return LP_ETOOBIG;
	lp_wr_init_fixed(&w, out, cap);
	lp_wr_u8(&w, (uint8_t)(2 + 2 * n));
	lp_wr_u8(&w, USBD_DT_STRING);
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return LP_EINVAL;
		lp_wr_le16(&w, (uint8_t)s[i]);
	}
	return lp_wr_ok(&w) ? (int)w.len : LP_ETOOBIG;
}

int usbd_encode_langid(uint16_t langid, uint8_t *out, size_t cap)
{
	struct lp_wr w;

	if (!out)
		return LP_EINVAL;
	lp_wr_init_fixed(&w, out, cap);
	lp_wr_u8(&w, 4);
	lp_wr_u8(&w, USBD_DT_STRING);
	lp_wr_le16(&w, langid);
	return lp_wr_ok(&w) ? (int)w.len : LP_ETOOBIG;
}

int usbd_encode_device(const struct usbd_device *d, uint8_t *out, size_t cap)
{
	struct lp_wr w;

	if (!d || !out)
		return LP_EINVAL;
	lp_wr_init_fixed(&w, out, cap);
	lp_wr_u8(&w, DEV_DESC_LEN);
	lp_wr_u8(&w, USBD_DT_DEVICE);
	lp_wr_le16(&w, d->bcdUSB);
	lp_wr_u8(&w, d->bDeviceClass);
	lp_wr_u8(&w, d->bDeviceSubClass);
	lp_wr_u8(&w, d->bDeviceProtocol);
	lp_wr_u8(&w, d->bMaxPacketSize0);
	lp_wr_le16(&w, d->idVendor);
	lp_wr_le16(&w, d->idProduct);
	lp_wr_le16(&w, d->bcdDevice);
	lp_wr_u8(&w, d->iManufacturer);
	lp_wr_u8(&w, d->iProduct);
	lp_wr_u8(&w, d->iSerialNumber);
	lp_wr_u8(&w, d->bNumConfigurations);
	return lp_wr_ok(&w) ? (int)w.len : LP_ETOOBIG;
}

int usbd_encode_config(const struct usbd_config *c, uint8_t *out, size_t cap)
{
	uint32_t seen = 0; /* interface numbers 0..31 counted once */
	uint8_t nifs = 0;
	struct lp_wr w;
	size_t total = CFG_DESC_LEN;

	if (!c || !out || c->num_ifaces > USBD_MAX_IFACES)
		return LP_EINVAL;
	for (size_t i = 0; i < c->num_ifaces; i++) {
		const struct usbd_interface *f = &c->iface[i];
		if (f->num_eps > USBD_MAX_EPS)
			return LP_EINVAL;
		total += IF_DESC_LEN + (size_t)f->num_eps * EP_DESC_LEN;
		if (f->bInterfaceNumber >= 32 || !(seen & 1u << f->bInterfaceNumber)) {
			if (f->bInterfaceNumber < 32)
				seen |= 1u << f->bInterfaceNumber;
			nifs++;
		}
	}
	if (total > USBD_CONFIG_MAX_TOTAL)
		return LP_ETOOBIG;
	lp_wr_init_fixed(&w, out, cap);
	lp_wr_u8(&w, CFG_DESC_LEN);
	lp_wr_u8(&w, USBD_DT_CONFIG);
	lp_wr_le16(&w, (uint16_t)total);
	lp_wr_u8(&w, nifs);
	lp_wr_u8(&w, c->bConfigurationValue);
	lp_wr_u8(&w, c->iConfiguration);
	lp_wr_u8(&w, c->bmAttributes);
	lp_wr_u8(&w, c->bMaxPower);
	for (size_t i = 0; i < c->num_ifaces; i++) {
		const struct usbd_interface *f = &c->iface[i];
		lp_wr_u8(&w, IF_DESC_LEN);
		lp_wr_u8(&w, USBD_DT_INTERFACE);
		lp_wr_u8(&w, f->bInterfaceNumber);
		lp_wr_u8(&w, f->bAlternateSetting);
		lp_wr_u8(&w, f->num_eps);
		lp_wr_u8(&w, f->bInterfaceClass);
		lp_wr_u8(&w, f->bInterfaceSubClass);
		lp_wr_u8(&w, f->bInterfaceProtocol);
		lp_wr_u8(&w, f->iInterface);
		for (size_t j = 0; j < f->num_eps; j++) {
			const struct usbd_endpoint *ep = &f->ep[j];
			lp_wr_u8(&w, EP_DESC_LEN);
			lp_wr_u8(&w, USBD_DT_ENDPOINT);
			lp_wr_u8(&w, ep->bEndpointAddress);
			lp_wr_u8(&w, ep->bmAttributes);
			lp_wr_le16(&w, ep->wMaxPacketSize);
			lp_wr_u8(&w, ep->bInterval);
		}
	}
	return lp_wr_ok(&w) ? (int)w.len : LP_ETOOBIG;
}

void usbd_bulk_interface(struct usbd_interface *f, uint8_t num, uint8_t cls, uint8_t sub,
			 uint8_t proto, uint8_t ep_out, uint8_t ep_in, uint16_t mps)
{
	memset(f, 0, sizeof(*f));
	f->bInterfaceNumber = num;
	f->bInterfaceClass = cls;
	f->bInterfaceSubClass = sub;
	f->bInterfaceProtocol = proto;
	f->num_eps = 2;
	f->bNumEndpoints = 2;
	f->ep[0].bEndpointAddress = ep_out;
	f->ep[0].bmAttributes = EP_XFER_BULK;
	f->ep[0].wMaxPacketSize = mps;
	f->ep[1].bEndpointAddress = ep_in;
	f->ep[1].bmAttributes = EP_XFER_BULK;
	f->ep[1].wMaxPacketSize = mps;
}
