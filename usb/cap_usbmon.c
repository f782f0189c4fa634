/* cap_usbmon.c - transfer events <-> Linux usbmon records; see cap_usbmon.h.
 *
 * Reference: drivers/usb/mon/mon_bin.c (record contents), Documentation/
 * driver-api/usb/error-codes.rst (URB status values), libusb
 * os/linux_usbfs.c (how libusb's statuses arise from URB statuses).
 *
 * Transfer status -> URB status (what the kernel would have put in the C
 * record had libusb done the same thing through usbfs):
 *
 *   COMPLETED   0
 *   CANCELLED   -ECONNRESET (-104). libusb_cancel_transfer() is
 *               USBDEVFS_DISCARDURB, which is usb_unlink_urb(): an
 *               asynchronous unlink, reported as -ECONNRESET. -ENOENT (-2)
 *               is what usb_kill_urb() (synchronous) reports; usbfs uses it
 *               only when the file is closed or the interface released with
 *               URBs pending, which our transport never does (tr_close
 *               cancels and reaps first). The decoder accepts both.
 *   TIMED_OUT   -ECONNRESET (-104). libusb implements timeouts by
 *               cancelling, so on the wire a timeout is a cancellation; the
 *               distinction is lost in usbmon as it is in a real capture.
 *   STALL       -EPIPE (-32)
 *   NO_DEVICE   -ESHUTDOWN (-108): the host controller flushes the
 *               endpoints of a removed device with -ESHUTDOWN. (-ENODEV is
 *               what a *submit* to a removed device fails with: E record.)
 *   OVERFLOW    -EOVERFLOW (-75), babble
 *   ERROR       -EPROTO (-71), the usual bit-stuff/CRC/timeout-on-bus error
 *
 * Submit errors (E records) map lp_err to the errno usb_submit_urb() would
 * return: ENODEV -19, ENOMEM -12, EINVAL -22, EBUSY -16, ESTALL -32, EACCES
 * -1 (EPERM), anything else -EIO (-5).
 */
#include "usb/cap_usbmon.h"

#include <string.h>

#include "src/base/lp_error.h"

#if !defined(__BYTE_ORDER__) || !defined(__ORDER_BIG_ENDIAN__)
#error "need __BYTE_ORDER__ (gcc/clang)"
#endif
#define CAP_HOST_BE (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)

int32_t cap_usbmon_status_from_tr(enum tr_status s)
{
	switch (s) {
	case TR_STATUS_COMPLETED:
		return 0;
	case TR_STATUS_CANCELLED:
		return CAP_URB_ECONNRESET;
	case TR_STATUS_TIMED_OUT:
		return CAP_URB_ECONNRESET;
	case TR_STATUS_STALL:
		return CAP_URB_EPIPE;
	case TR_STATUS_NO_DEVICE:
		return CAP_URB_ESHUTDOWN;
	case TR_STATUS_OVERFLOW:
		return CAP_URB_EOVERFLOW;
	case TR_STATUS_ERROR:
		return CAP_URB_EPROTO;
	}
	return CAP_URB_EPROTO;
}

enum tr_status cap_usbmon_status_to_tr(int32_t status)
{
	switch (status) {
	case 0:
		return TR_STATUS_COMPLETED;
	case CAP_URB_ENOENT:
	case CAP_URB_ECONNRESET:
		return TR_STATUS_CANCELLED;
	case CAP_URB_EPIPE:
		return TR_STATUS_STALL;
	case CAP_URB_ESHUTDOWN:
	case CAP_URB_ENODEV:
		return TR_STATUS_NO_DEVICE;
	case CAP_URB_EOVERFLOW:
		return TR_STATUS_OVERFLOW;
	/* a short read with URB_SHORT_NOT_OK still delivered the data */
	case CAP_URB_EREMOTEIO:
		return TR_STATUS_COMPLETED;
	default:
		return TR_STATUS_ERROR;
	}
}

int32_t cap_usbmon_status_from_err(int err)
{
	switch (err) {
	case LP_ENODEV:
		return CAP_URB_ENODEV;
	case LP_ENOMEM:
		return CAP_URB_ENOMEM;
	case LP_EINVAL:
		return CAP_URB_EINVAL;
	case LP_EBUSY:
		return CAP_URB_EBUSY;
	case LP_ESTALL:
		return CAP_URB_EPIPE;
	case LP_EACCES:
		return CAP_URB_EPERM;
	default:
		return CAP_URB_EIO;
	}
}

void cap_usbmon_from_xfer(enum tr_event ev, const struct tr_xfer *x, int submit_err,
			  uint64_t wall_ns, size_t data_max, struct cap_usbmon_rec *r)
{
	bool in;
	size_t n;

	memset(r, 0, sizeof(*r));
	if (data_max == 0 || data_max > CAP_USBMON_DATA_MAX)
		data_max = CAP_USBMON_DATA_MAX;
	if (x->type == TR_XFER_CONTROL)
		in = (x->setup[0] & 0x80) != 0; /* direction is the setup packet's */
	else
		in = (x->endpoint & 0x80) != 0;

	r->id = x->id;
	r->xfer_type = (uint8_t)x->type;
	r->epnum = (uint8_t)((in ? 0x80 : 0) | (x->endpoint & 0x0f));
	if (x->dev) {
		r->devnum = x->dev->info.addr;
		r->busnum = x->dev->info.bus;
	}
	r->ts_sec = (int64_t)(wall_ns / LP_NS_PER_S);
	r->ts_usec = (int32_t)(wall_ns % LP_NS_PER_S / LP_NS_PER_US);
	r->flag_setup = '-';

	if (ev == TR_EV_SUBMIT_ERROR) {
		r->type = CAP_USBMON_ERROR;
		r->status = cap_usbmon_status_from_err(submit_err);
		r->flag_data = 'E';
		return;
	}
	r->xfer_flags = in ? CAP_USBMON_URB_DIR_IN : 0;
	if (ev == TR_EV_SUBMIT) {
		r->type = CAP_USBMON_SUBMIT;
		r->status = CAP_URB_EINPROGRESS;
		r->len_urb = (uint32_t)(x->len > UINT32_MAX ? UINT32_MAX : x->len);
		if (x->type == TR_XFER_CONTROL) {
			r->flag_setup = 0;
			memcpy(r->setup, x->setup, 8);
		}
		n = in ? 0 : x->len;
		if (in)
			r->flag_data = '<';
	} else {
		r->type = CAP_USBMON_COMPLETE;
		r->status = cap_usbmon_status_from_tr(x->status);
		r->len_urb = (uint32_t)(x->actual > UINT32_MAX ? UINT32_MAX : x->actual);
		n = in ? x->actual : 0;
		if (!in)
			r->flag_data = '>';
	}
	if (n > data_max) {
		n = data_max;
		r->clipped = true;
	}
	if (n && !x->buf)
		n = 0; /* kernel: 'Z', no buffer; cannot happen with our transports */
	r->data = n ? x->buf : NULL;
	r->data_len = n;
	r->len_cap = (uint32_t)n;
}

void cap_usbmon_encode(struct lp_wr *w, const struct cap_usbmon_rec *r)
{
	lp_wr_h64(w, r->id);
	lp_wr_u8(w, r->type);
	lp_wr_u8(w, r->xfer_type);
	lp_wr_u8(w, r->epnum);
	lp_wr_u8(w, r->devnum);
	lp_wr_h16(w, r->busnum);
	lp_wr_u8(w, r->flag_setup);
	lp_wr_u8(w, r->flag_data);
	lp_wr_h64(w, (uint64_t)r->ts_sec);
	lp_wr_h32(w, (uint32_t)r->ts_usec);
	lp_wr_h32(w, (uint32_t)r->status);
	lp_wr_h32(w, r->len_urb);
	lp_wr_h32(w, r->len_cap);
	lp_wr_bytes(w, r->setup, 8);
	lp_wr_h32(w, (uint32_t)r->interval);
	lp_wr_h32(w, (uint32_t)r->start_frame);
	lp_wr_h32(w, r->xfer_flags);
	lp_wr_h32(w, r->ndesc);
	if (r->data_len)
		lp_wr_bytes(w, r->data, r->data_len);
}

/* Readers in the capture's byte order: "swapped" means the other one. */
static inline uint16_t rd16(struct lp_rd *r, bool be)
{
	return be ? lp_rd_be16(r) : lp_rd_le16(r);
}

static inline uint32_t rd32(struct lp_rd *r, bool be)
{
	return be ? lp_rd_be32(r) : lp_rd_le32(r);
}

static inline uint64_t rd64(struct lp_rd *r, bool be)
{
	return be ? lp_rd_be64(r) : lp_rd_le64(r);
}

/* Inlined twice, once per byte order: with `be` a constant, and the header
 * read through cursors of a constant length, each field is a load (it was a
 * call and a check per field: 10 % of the instructions of analyzing a
 * lockdown-heavy capture). */
static inline __attribute__((always_inline)) int
decode(const uint8_t *buf, size_t len, int linktype, bool be, struct cap_usbmon_rec *out)
{
	struct lp_rd rd, h;
	const uint8_t *p, *data;
	bool legacy = linktype == CAP_LINKTYPE_USB_LINUX;
	uint64_t id, ts_sec;
	uint8_t type, xfer_type, epnum, devnum, flag_setup, flag_data, setup[8];
	uint16_t busnum;
	uint32_t ts_usec, status, len_urb, len_cap, interval = 0, start_frame = 0, xfer_flags = 0,
						    ndesc = 0;
	size_t avail, data_len;

	lp_rd_init(&rd, buf, len);
	/* the header through cursors of a constant length: the compiler folds
	 * their checks (each field was checked against the record) */
	if (!(p = lp_rd_ptr(&rd, CAP_USBMON_HDR_LEN_LEGACY)))
		return LP_ETRUNC;
	lp_rd_init(&h, p, CAP_USBMON_HDR_LEN_LEGACY);
	id = rd64(&h, be);
	type = lp_rd_u8(&h);
	xfer_type = lp_rd_u8(&h);
	epnum = lp_rd_u8(&h);
	devnum = lp_rd_u8(&h);
	busnum = rd16(&h, be);
	flag_setup = lp_rd_u8(&h);
	flag_data = lp_rd_u8(&h);
	ts_sec = rd64(&h, be);
	ts_usec = rd32(&h, be);
	status = rd32(&h, be);
	len_urb = rd32(&h, be);
	len_cap = rd32(&h, be);
	lp_rd_bytes(&h, setup, 8);
	if (!legacy) {
		if (!(p = lp_rd_ptr(&rd, CAP_USBMON_HDR_LEN - CAP_USBMON_HDR_LEN_LEGACY)))
			return LP_ETRUNC;
		lp_rd_init(&h, p, CAP_USBMON_HDR_LEN - CAP_USBMON_HDR_LEN_LEGACY);
		interval = rd32(&h, be);
		start_frame = rd32(&h, be);
		xfer_flags = rd32(&h, be);
		ndesc = rd32(&h, be);
	}
	if (!lp_rd_ok(&h))
		return LP_ETRUNC; /* not reached: the lengths above add up */

	if (type != CAP_USBMON_SUBMIT && type != CAP_USBMON_COMPLETE && type != CAP_USBMON_ERROR)
		return LP_EBADMSG;
	if (xfer_type > 3)
		return LP_EBADMSG;
	if (ndesc > CAP_USBMON_NDESC_MAX)
		return LP_EBADMSG;
	/* ISO descriptors (16 bytes each) are counted in len_cap */
	if ((uint64_t)ndesc * 16 > len_cap)
		return LP_EBADMSG;

	avail = lp_rd_left(&rd);
	data_len = len_cap < avail ? len_cap : avail;
	data = data_len ? lp_rd_ptr(&rd, data_len) : NULL;
	/* every field written in place: a struct zeroed and built on the
	 * stack, then copied out, stalled on store forwarding */
	out->id = id;
	out->type = type;
	out->xfer_type = xfer_type;
	out->epnum = epnum;
	out->devnum = devnum;
	out->busnum = busnum;
	out->flag_setup = flag_setup;
	out->flag_data = flag_data;
	out->ts_sec = (int64_t)ts_sec;
	out->ts_usec = (int32_t)ts_usec;
	out->status = (int32_t)status;
	out->len_urb = len_urb;
	out->len_cap = len_cap;
	out->interval = (int32_t)interval;
	out->start_frame = (int32_t)start_frame;
	out->xfer_flags = xfer_flags;
	out->ndesc = ndesc;
	out->data = data;
	out->data_len = data_len;
	out->clipped = data_len < len_cap;
	out->legacy = legacy;
	memcpy(out->setup, setup, 8);
	return 0;
}

int cap_usbmon_decode_lt(const uint8_t *buf, size_t len, int linktype, bool swapped,
			 struct cap_usbmon_rec *out)
{
	if (linktype != CAP_LINKTYPE_USB_LINUX && linktype != CAP_LINKTYPE_USB_LINUX_MMAPPED)
		return LP_EFORMAT;
	if (CAP_HOST_BE ? !swapped : swapped)
		return decode(buf, len, linktype, true, out);
	return decode(buf, len, linktype, false, out);
}

int cap_usbmon_decode(const uint8_t *buf, size_t len, bool swapped, struct cap_usbmon_rec *out)
{
	return cap_usbmon_decode_lt(buf, len, CAP_LINKTYPE_USB_LINUX_MMAPPED, swapped, out);
}
