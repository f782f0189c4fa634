/* devcore.c - the standard USB device every device model is built on:
 * descriptors, chapter-9 requests, endpoints, the usbmux device role and the
 * IN queue. See devcore.h for what belongs to the core and what to the
 * personality.
 *
 * State that survives a bus reset: descriptors, strings, speed, the usbmux
 * version. What a reset (or a new SET_CONFIGURATION) clears: the active
 * configuration and alternate settings, the usbmux codec with its
 * connections, the delayed sends and the raw IN queue.
 *
 * Reference: USB 2.0 chapter 9 (9.4 standard requests); doc/protocol.md
 * 2.10 (each usbmux packet is one transfer, ZLP when len % mps == 0).
 */
#include "src/device/devcore.h"

#include <stdlib.h>
#include <string.h>

#include "src/base/lp_cursor.h"
#include "src/base/lp_error.h"
#include "usb/usb_desc.h"

#define DC_REQ_GET_STATUS 0
#define DC_REQ_CLEAR_FEATURE 1
#define DC_REQ_GET_INTERFACE 10
#define DC_REQ_SET_INTERFACE 11
#define DC_DT_QUALIFIER 6
#define DC_FEATURE_HALT 0
#define DC_LANGID_EN_US 0x0409

struct dc_config {
	uint8_t *bytes[2]; /* [0] full speed, [1] high speed (owned) */
	size_t len[2];
	struct usbd_config parsed[2];
};

struct dc_raw {
	uint8_t ep;
	bool zlp;
	size_t len;
	uint8_t *buf; /* owned */
};

struct dc_send {
	struct dc_send *next;
	uint32_t conn;
	uint64_t at;
	size_t len;
	uint8_t buf[];
};

struct devcore {
	const struct devcore_personality *pers;
	void *ud;
	const struct lp_log *log;
	/* descriptors (survive resets) */
	uint8_t devdesc[18];
	struct usbd_device dd;
	bool have_dev;
	struct dc_config cfg[DEVCORE_MAX_CONFIGS];
	uint8_t ncfg;
	char *strings[DEVCORE_MAX_STRINGS];
	enum tr_speed speed;
	uint32_t mux_major;
	/* attachment state (reset clears) */
	uint64_t now;
	uint8_t config;
	uint8_t alt[USBD_MAX_IFACES];
	struct mux *mux;
	uint8_t mux_in, mux_out;
	struct dc_raw inq[DEVCORE_INQ_MAX];
	size_t inq_head, inq_n;
	struct dc_send *sq_head, *sq_tail;
	uint64_t sq_last;
	size_t sq_bytes;
	uint8_t *cur;	    /* the IN transfer last handed out */
	size_t in_split;    /* 0, or usbmux IN packets go out in transfers of this size */
	uint8_t *split_pkt; /* the usbmux packet being handed out in pieces (owned) */
	size_t split_len, split_off;
};

static int hs_index(enum tr_speed s)
{
	return s == TR_SPEED_FULL ? 0 : 1;
}

/* --------------------------------------------------------------------------
 * Creation and descriptors
 */

struct devcore *devcore_new(const struct devcore_personality *pers, void *ud,
			    const struct lp_log *log)
{
	struct devcore *dc;

	if (!pers)
		return NULL;
	dc = calloc(1, sizeof(*dc));
	if (!dc)
		return NULL;
	dc->pers = pers;
	dc->ud = ud;
	dc->log = log;
	dc->speed = TR_SPEED_HIGH;
	dc->mux_major = 2;
	return dc;
}

static void attachment_clear(struct devcore *dc, bool bus, uint64_t now);

void devcore_free(struct devcore *dc)
{
	if (!dc)
		return;
	attachment_clear(dc, true, dc->now);
	for (size_t i = 0; i < dc->ncfg; i++) {
		free(dc->cfg[i].bytes[0]);
		if (dc->cfg[i].bytes[1] != dc->cfg[i].bytes[0])
			free(dc->cfg[i].bytes[1]);
	}
	for (size_t i = 0; i < DEVCORE_MAX_STRINGS; i++)
		free(dc->strings[i]);
	free(dc);
}

void *devcore_owner(void *model, const struct devcore_personality *pers)
{
	struct devcore *dc = model;

	return dc && dc->pers == pers ? dc->ud : NULL;
}

int devcore_set_device(struct devcore *dc, const uint8_t *desc, size_t len)
{
	struct usbd_device d;

	if (len != sizeof(dc->devdesc) || usbd_parse_device(desc, len, &d) != 0)
		return LP_EBADMSG;
	memcpy(dc->devdesc, desc, len);
	dc->dd = d;
	dc->have_dev = true;
	return 0;
}

static uint8_t *dup_bytes(const uint8_t *b, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);

	if (c && n)
		memcpy(c, b, n);
	return c;
}

int devcore_add_config(struct devcore *dc, const uint8_t *fs, size_t fs_len, const uint8_t *hs,
		       size_t hs_len)
{
	struct dc_config *c;
	int r;

	if (dc->ncfg == DEVCORE_MAX_CONFIGS)
		return LP_ETOOBIG;
	c = &dc->cfg[dc->ncfg];
	memset(c, 0, sizeof(*c));
	if (!hs) {
		hs = fs;
		hs_len = fs_len;
	}
	r = usbd_parse_config(fs, fs_len, &c->parsed[0]);
	if (!r)
		r = usbd_parse_config(hs, hs_len, &c->parsed[1]);
	if (r)
		return r;
	c->bytes[0] = dup_bytes(fs, fs_len);
	c->bytes[1] = hs == fs ? c->bytes[0] : dup_bytes(hs, hs_len);
	if (!c->bytes[0] || !c->bytes[1]) {
		free(c->bytes[0]);
		if (c->bytes[1] != c->bytes[0])
			free(c->bytes[1]);
		return LP_ENOMEM;
	}
	c->len[0] = fs_len;
	c->len[1] = hs_len;
	dc->ncfg++;
	return 0;
}

int devcore_set_string(struct devcore *dc, uint8_t index, const char *ascii)
{
	char *copy;

	if (index == 0 || index >= DEVCORE_MAX_STRINGS || !ascii)
		return LP_EINVAL;
	copy = strdup(ascii);
	if (!copy)
		return LP_ENOMEM;
	if (strlen(copy) > DEVCORE_STRING_MAX)
		copy[DEVCORE_STRING_MAX] = '\0';
	free(dc->strings[index]);
	dc->strings[index] = copy;
	return 0;
}

void devcore_set_speed(struct devcore *dc, enum tr_speed speed)
{
	dc->speed = speed == TR_SPEED_FULL ? TR_SPEED_FULL : TR_SPEED_HIGH;
}

enum tr_speed devcore_speed(const struct devcore *dc)
{
	return dc->speed;
}

void devcore_identity(const struct devcore *dc, uint16_t *vid, uint16_t *pid, uint8_t *ncfg)
{
	*vid = dc->dd.idVendor;
	*pid = dc->dd.idProduct;
	*ncfg = dc->have_dev ? dc->dd.bNumConfigurations : dc->ncfg;
}

int devcore_descriptor(const struct devcore *dc, enum tr_speed speed, uint8_t type, uint8_t index,
		       uint8_t *out, size_t cap, size_t *len)
{
	uint8_t tmp[256];
	const uint8_t *src = NULL;
	size_t n = 0;
	int r;

	switch (type) {
	case USBD_DT_DEVICE:
		if (dc->have_dev) {
			src = dc->devdesc;
			n = sizeof(dc->devdesc);
		}
		break;
	case USBD_DT_CONFIG:
		if (index < dc->ncfg) {
			src = dc->cfg[index].bytes[hs_index(speed)];
			n = dc->cfg[index].len[hs_index(speed)];
		}
		break;
	case USBD_DT_STRING:
		if (index == 0 && dc->strings[1]) {
			r = usbd_encode_langid(DC_LANGID_EN_US, tmp, sizeof(tmp));
			src = r > 0 ? tmp : NULL;
			n = r > 0 ? (size_t)r : 0;
		} else if (index > 0 && index < DEVCORE_MAX_STRINGS && dc->strings[index]) {
			r = usbd_encode_string(dc->strings[index], tmp, sizeof(tmp));
			src = r > 0 ? tmp : NULL;
			n = r > 0 ? (size_t)r : 0;
		}
		break;
	case DC_DT_QUALIFIER: /* the same device at the other speed */
		if (dc->have_dev) {
			memcpy(tmp, dc->devdesc, 8);
			tmp[0] = 10;
			tmp[1] = DC_DT_QUALIFIER;
			tmp[8] = dc->ncfg;
			tmp[9] = 0;
			n = 10;
			src = tmp;
		}
		break;
	}
	if (!src)
		return LP_ESTALL;
	if (n > cap)
		n = cap;
	memcpy(out, src, n);
	*len = n;
	return 0;
}

/* --------------------------------------------------------------------------
 * Configuration, interfaces, endpoints
 */

static const struct usbd_config *active(const struct devcore *dc)
{
	if (!dc->config || dc->config > dc->ncfg)
		return NULL;
	return &dc->cfg[dc->config - 1].parsed[hs_index(dc->speed)];
}

static bool has_alt(const struct devcore *dc, uint16_t ifn, uint16_t alt)
{
	const struct usbd_config *c = active(dc);

	for (unsigned i = 0; c && i < c->num_ifaces; i++)
		if (c->iface[i].bInterfaceNumber == ifn && c->iface[i].bAlternateSetting == alt)
			return true;
	return false;
}

static uint16_t ep_mps(const struct devcore *dc, uint8_t ep)
{
	const struct usbd_config *c;

	if ((ep & 0x7f) == 0)
		return dc->have_dev ? dc->dd.bMaxPacketSize0 : 64;
	c = active(dc);
	for (unsigned i = 0; c && i < c->num_ifaces; i++) {
		const struct usbd_interface *f = &c->iface[i];

		if (f->bInterfaceNumber >= USBD_MAX_IFACES ||
		    dc->alt[f->bInterfaceNumber] != f->bAlternateSetting)
			continue;
		for (unsigned k = 0; k < f->num_eps; k++)
			if (f->ep[k].bEndpointAddress == ep)
				return f->ep[k].wMaxPacketSize;
	}
	return 0;
}

static void send_queue_clear(struct devcore *dc)
{
	while (dc->sq_head) {
		struct dc_send *s = dc->sq_head;

		dc->sq_head = s->next;
		free(s);
	}
	dc->sq_tail = NULL;
	dc->sq_bytes = 0;
}

static void attachment_clear(struct devcore *dc, bool bus, uint64_t now)
{
	if (dc->pers->reset)
		dc->pers->reset(dc->ud, bus, now);
	send_queue_clear(dc);
	mux_free(dc->mux);
	dc->mux = NULL;
	while (dc->inq_n) {
		free(dc->inq[dc->inq_head].buf);
		dc->inq_head = (dc->inq_head + 1) % DEVCORE_INQ_MAX;
		dc->inq_n--;
	}
	dc->inq_head = 0;
	free(dc->cur);
	dc->cur = NULL;
	free(dc->split_pkt);
	dc->split_pkt = NULL;
	dc->config = 0;
	memset(dc->alt, 0, sizeof(dc->alt));
}

static void cb_accept(void *ud, uint32_t conn, uint16_t port)
{
	struct devcore *dc = ud;

	if (dc->pers->accept)
		dc->pers->accept(dc->ud, conn, port, dc->now);
	else
		mux_close(dc->mux, conn);
}

static void cb_data(void *ud, uint32_t conn, const uint8_t *data, size_t len)
{
	struct devcore *dc = ud;

	if (dc->pers->data)
		dc->pers->data(dc->ud, conn, data, len, dc->now);
}

static void cb_close(void *ud, uint32_t conn, int reason)
{
	struct devcore *dc = ud;

	(void)reason;
	if (dc->pers->closed)
		dc->pers->closed(dc->ud, conn, dc->now);
}

static void cb_anomaly(void *ud, int err, const char *what)
{
	struct devcore *dc = ud;

	lp_logf(dc->log, LP_LOG_DEBUG, "device: usbmux anomaly: %s (%s)", what, lp_errname(err));
}

static const struct mux_cbs dc_mux_cbs = {
	.on_accept = cb_accept,
	.on_data = cb_data,
	.on_close = cb_close,
	.on_anomaly = cb_anomaly,
};

static int set_config(struct devcore *dc, uint8_t value)
{
	const struct usbd_config *c;
	uint16_t mps = 0;

	if (value > dc->ncfg)
		return LP_ESTALL;
	attachment_clear(dc, false, dc->now);
	dc->config = value;
	if (!value)
		return 0;
	c = active(dc);
	if (!dc->pers->raw && usbd_find_usbmux(c, &dc->mux_in, &dc->mux_out, &mps) && mps) {
		dc->mux = mux_new(MUX_ROLE_DEVICE, &dc_mux_cbs, dc, dc->log);
		if (!dc->mux)
			lp_logf(dc->log, LP_LOG_ERROR,
				"device: out of memory setting configuration %u", value);
		else
			mux_set_device_version(dc->mux, dc->mux_major);
	}
	if (dc->pers->configured)
		dc->pers->configured(dc->ud, value, dc->now);
	return 0;
}

uint8_t devcore_config(const struct devcore *dc)
{
	return dc->config;
}

uint64_t devcore_now(const struct devcore *dc)
{
	return dc->now;
}

void devcore_detach(struct devcore *dc, uint64_t now)
{
	dc->now = now;
	attachment_clear(dc, true, now);
}

/* --------------------------------------------------------------------------
 * Chapter 9
 */

static int reply(uint8_t *data, size_t cap, size_t *actual, const uint8_t *src, size_t n)
{
	if (cap < n)
		return LP_ESTALL;
	memcpy(data, src, n);
	*actual = n;
	return 0;
}

/* 0 / LP_ESTALL when the core answered, 1 when the request is not its own. */
static int standard(struct devcore *dc, uint8_t bm, uint8_t req, uint16_t wValue, uint16_t wIndex,
		    uint8_t *data, size_t cap, size_t *actual)
{
	uint8_t b[2] = {0, 0};

	if ((bm & 0x60) != 0) /* class or vendor */
		return 1;
	switch (req) {
	case USBD_REQ_GET_DESCRIPTOR:
		if (bm != 0x80)
			return LP_ESTALL;
		if (devcore_descriptor(dc, dc->speed, (uint8_t)(wValue >> 8), (uint8_t)wValue, data,
				       cap, actual) == 0)
			return 0;
		return 1; /* a descriptor the personality may hold */
	case USBD_REQ_GET_CONFIGURATION:
		return bm == 0x80 ? reply(data, cap, actual, &dc->config, 1) : LP_ESTALL;
	case USBD_REQ_SET_CONFIGURATION:
		if (bm != 0x00 || wValue > 0xff)
			return LP_ESTALL;
		return set_config(dc, (uint8_t)wValue);
	case DC_REQ_GET_STATUS:
		if (bm == 0x80) { /* device: self-powered as the first configuration says */
			b[0] = dc->ncfg && (dc->cfg[0].parsed[0].bmAttributes & 0x40) ? 1 : 0;
			return reply(data, cap, actual, b, 2);
		}
		if ((bm == 0x81 && has_alt(dc, wIndex, 0)) ||
		    (bm == 0x82 && dc->config && ep_mps(dc, (uint8_t)wIndex)))
			return reply(data, cap, actual, b, 2); /* nothing halted */
		return LP_ESTALL;
	case DC_REQ_GET_INTERFACE:
		if (bm != 0x81 || wIndex >= USBD_MAX_IFACES || !has_alt(dc, wIndex, 0))
			return LP_ESTALL;
		return reply(data, cap, actual, &dc->alt[wIndex], 1);
	case DC_REQ_SET_INTERFACE:
		if (bm != 0x01 || wIndex >= USBD_MAX_IFACES || wValue > 0xff ||
		    !has_alt(dc, wIndex, wValue))
			return LP_ESTALL;
		dc->alt[wIndex] = (uint8_t)wValue;
		return 0;
	case DC_REQ_CLEAR_FEATURE:
		if (bm == 0x02 && wValue == DC_FEATURE_HALT && dc->config &&
		    ep_mps(dc, (uint8_t)wIndex))
			return 0;
		return LP_ESTALL;
	default:
		return LP_ESTALL;
	}
}

/* --------------------------------------------------------------------------
 * Sending and the IN queue
 */

static void send_flush(struct devcore *dc)
{
	while (dc->sq_head && dc->sq_head->at <= dc->now) {
		struct dc_send *s = dc->sq_head;

		dc->sq_head = s->next;
		if (!dc->sq_head)
			dc->sq_tail = NULL;
		dc->sq_bytes -= s->len;
		if (dc->mux && s->len)
			mux_send(dc->mux, s->conn, s->buf, s->len);
		free(s);
	}
}

int devcore_send(struct devcore *dc, uint32_t conn, const uint8_t *buf, size_t len,
		 uint64_t delay_ns)
{
	uint64_t at = delay_ns > UINT64_MAX - dc->now ? UINT64_MAX : dc->now + delay_ns;
	struct dc_send *s;

	if (!dc->mux)
		return LP_ENODEV;
	if (!len)
		return 0;
	if (dc->sq_head && at < dc->sq_last)
		at = dc->sq_last;
	if (at <= dc->now && !dc->sq_head)
		return mux_send(dc->mux, conn, buf, len);
	if (len > DEVCORE_SEND_MAX - dc->sq_bytes)
		return LP_ETOOBIG;
	s = malloc(sizeof(*s) + len);
	if (!s)
		return LP_ENOMEM;
	s->next = NULL;
	s->conn = conn;
	s->at = at;
	s->len = len;
	memcpy(s->buf, buf, len);
	if (dc->sq_tail)
		dc->sq_tail->next = s;
	else
		dc->sq_head = s;
	dc->sq_tail = s;
	dc->sq_last = at;
	dc->sq_bytes += len;
	return 0;
}

void devcore_close(struct devcore *dc, uint32_t conn)
{
	if (dc->mux)
		mux_close(dc->mux, conn);
}

size_t devcore_unsent(const struct devcore *dc, uint32_t conn)
{
	return dc->mux ? mux_unsent(dc->mux, conn) : 0;
}

void devcore_set_mux_version(struct devcore *dc, uint32_t major)
{
	dc->mux_major = major ? major : 2;
	if (dc->mux)
		mux_set_device_version(dc->mux, dc->mux_major);
}

struct mux *devcore_mux(const struct devcore *dc)
{
	return dc->mux;
}

int devcore_listen(struct devcore *dc, uint16_t port)
{
	return dc->mux ? mux_listen(dc->mux, port) : LP_ENODEV;
}

void devcore_unlisten(struct devcore *dc, uint16_t port)
{
	if (dc->mux)
		mux_unlisten(dc->mux, port);
}

int devcore_in_queue(struct devcore *dc, uint8_t ep, const uint8_t *data, size_t len,
		     bool allow_zlp)
{
	struct dc_raw *q;

	if (dc->inq_n == DEVCORE_INQ_MAX)
		return LP_EAGAIN;
	q = &dc->inq[(dc->inq_head + dc->inq_n) % DEVCORE_INQ_MAX];
	q->buf = dup_bytes(data, len);
	if (!q->buf)
		return LP_ENOMEM;
	q->ep = ep;
	q->len = len;
	q->zlp = allow_zlp;
	dc->inq_n++;
	return 0;
}

/* --------------------------------------------------------------------------
 * The model (usb/devmodel.h)
 */

static bool is_attached(struct devcore *dc, uint64_t now)
{
	return !dc->pers->attached || dc->pers->attached(dc->ud, now);
}

static bool op_attached(void *m, uint64_t now)
{
	return is_attached(m, now);
}

static void op_identity(void *m, uint16_t *vid, uint16_t *pid, uint8_t *num_configs)
{
	devcore_identity(m, vid, pid, num_configs);
}

static void op_reset(void *m, uint64_t now)
{
	devcore_detach(m, now);
}

static int op_control(void *m, const uint8_t setup[8], uint8_t *data, size_t len, size_t *actual,
		      uint64_t now)
{
	struct devcore *dc = m;
	struct lp_rd r;
	uint8_t bm, req;
	uint16_t wValue, wIndex, wLength;
	int rc;

	dc->now = now;
	*actual = 0;
	if (dc->pers->control_seen)
		dc->pers->control_seen(dc->ud, setup, now);
	lp_rd_init(&r, setup, 8);
	bm = lp_rd_u8(&r);
	req = lp_rd_u8(&r);
	wValue = lp_rd_le16(&r);
	wIndex = lp_rd_le16(&r);
	wLength = lp_rd_le16(&r);
	rc = standard(dc, bm, req, wValue, wIndex, data, len < wLength ? len : wLength, actual);
	if (rc <= 0)
		return rc;
	if (!dc->pers->control)
		return LP_ESTALL;
	return dc->pers->control(dc->ud, setup, data, len < wLength ? len : wLength, actual, now);
}

static uint16_t op_max_packet(void *m, uint8_t ep)
{
	return ep_mps(m, ep);
}

static void op_bulk_out(void *m, uint8_t ep, const uint8_t *data, size_t len, uint64_t now)
{
	struct devcore *dc = m;

	dc->now = now;
	if (!is_attached(dc, now) || !dc->config)
		return;
	send_flush(dc);
	if (dc->mux && ep == dc->mux_out) {
		/* an empty transfer carries no mux packet */
		if (len && dc->pers->filter_out && !dc->pers->filter_out(dc->ud, data, len, now))
			len = 0;
		if (len && mux_feed(dc->mux, data, len, true) != 0)
			lp_logf(dc->log, LP_LOG_WARN, "device: usbmux feed failed");
	} else if (dc->pers->bulk_out) {
		dc->pers->bulk_out(dc->ud, ep, data, len, now);
	}
	if (dc->pers->tick)
		dc->pers->tick(dc->ud, now);
}

/* The next piece of a usbmux packet sent in transfers of in_split bytes:
 * each ends the host's transfer (a short packet, or a ZLP after a piece
 * that fills its last packet), so the host sees the packet cut mid-way. */
static int split_next(struct devcore *dc, uint16_t mps, const uint8_t **data, size_t *len,
		      bool *zlp)
{
	size_t k = dc->split_len - dc->split_off;

	if (k > dc->in_split)
		k = dc->in_split;
	*data = dc->split_pkt + dc->split_off;
	*len = k;
	*zlp = mps && k % mps == 0;
	dc->split_off += k;
	if (dc->split_off == dc->split_len) { /* freed with the next transfer */
		dc->cur = dc->split_pkt;
		dc->split_pkt = NULL;
	}
	return 0;
}

void devcore_set_in_split(struct devcore *dc, size_t n)
{
	dc->in_split = n;
}

static int op_bulk_in_next(void *m, uint8_t ep, const uint8_t **data, size_t *len, bool *zlp,
			   uint64_t now)
{
	struct devcore *dc = m;
	uint16_t mps = ep_mps(dc, ep);
	uint8_t *pkt = NULL;
	size_t n = 0;

	dc->now = now;
	free(dc->cur);
	dc->cur = NULL;
	if (!is_attached(dc, now) || !dc->config)
		return LP_EAGAIN;
	/* the personality may top up a stream or queue a raw transfer now */
	if (!(dc->inq_n && dc->inq[dc->inq_head].ep == ep) && dc->pers->in_poll)
		dc->pers->in_poll(dc->ud, now);
	if (dc->inq_n && dc->inq[dc->inq_head].ep == ep) {
		struct dc_raw *q = &dc->inq[dc->inq_head];

		dc->cur = q->buf;
		*data = q->buf;
		*len = q->len;
		*zlp = q->zlp && mps && q->len % mps == 0;
		dc->inq_head = (dc->inq_head + 1) % DEVCORE_INQ_MAX;
		dc->inq_n--;
		return 0;
	}
	if (dc->split_pkt && dc->mux && ep == dc->mux_in)
		return split_next(dc, mps, data, len, zlp);
	if (dc->pers->in_poll)
		dc->pers->in_poll(dc->ud, now);
	send_flush(dc);
	if (!dc->mux || ep != dc->mux_in || mux_out_take(dc->mux, &pkt, &n) != 0)
		return LP_EAGAIN;
	if (dc->pers->in_edit)
		dc->pers->in_edit(dc->ud, pkt, n, now);
	if (dc->in_split && n > dc->in_split) {
		dc->split_pkt = pkt;
		dc->split_len = n;
		dc->split_off = 0;
		return split_next(dc, mps, data, len, zlp);
	}
	dc->cur = pkt;
	*data = pkt;
	*len = n;
	/* each mux packet is its own transfer (doc/protocol.md 2.10) */
	*zlp = mps && n % mps == 0;
	return 0;
}

static uint64_t op_next_timer(void *m, uint64_t now)
{
	struct devcore *dc = m;
	uint64_t t = dc->pers->next_timer ? dc->pers->next_timer(dc->ud, now) : UINT64_MAX;

	if (dc->sq_head) {
		uint64_t s = dc->sq_head->at > now ? dc->sq_head->at : now + 1;
		if (s < t)
			t = s;
	}
	return t;
}

static void op_tick(void *m, uint64_t now)
{
	struct devcore *dc = m;

	dc->now = now;
	send_flush(dc);
	if (dc->pers->tick)
		dc->pers->tick(dc->ud, now);
}

static enum devmodel_ep op_bulk_state(void *m, uint8_t ep, uint64_t now)
{
	struct devcore *dc = m;

	if (!dc->pers->bulk_state)
		return DEVMODEL_EP_READY;
	dc->now = now;
	return dc->pers->bulk_state(dc->ud, ep, now);
}

const struct devmodel_ops devcore_model_ops = {
	.attached = op_attached,
	.identity = op_identity,
	.reset = op_reset,
	.control = op_control,
	.max_packet = op_max_packet,
	.bulk_out = op_bulk_out,
	.bulk_in_next = op_bulk_in_next,
	.next_timer = op_next_timer,
	.tick = op_tick,
	.bulk_state = op_bulk_state,
};
