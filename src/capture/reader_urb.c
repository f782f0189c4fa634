/* reader_urb.c - the capture reader's record decoders: a usbmon (link types
 * 220, 189) or USBPcap (249) record -> one URB record in usbmon's view
 * (struct rd_urb), and the table that pairs a submit with its completion
 * by URB id (usbmon) / IRP id (USBPcap).
 *
 * usbmon records are decoded by cap_usbmon_decode_lt(). libpcap has already
 * put their headers in this host's byte order when the file came from a host
 * of the other order (pcap-util.c swap_linux_usb_header, for pcap and pcapng
 * alike), so they are decoded as native; a record whose header is swapped
 * anyway (a broken writer: len_cap only makes sense byte-swapped) is decoded
 * swapped and reported as an anomaly.
 *
 * USBPcap (desowin.org/usbpcap/captureformat.html), all fields LE:
 *
 *    0        2              10       14       16   17     19     21  22  23       27
 *   +--------+--------------+--------+--------+----+------+------+---+---+--------+
 *   |hdrLen  | irpId (u64)  | status |function|info| bus  |device|ep |xfr|dataLen |
 *   +--------+--------------+--------+--------+----+------+------+---+---+--------+
 *   control transfers add one byte, the stage (0 setup, 1 data, 2 status,
 *   3 complete); isochronous ones add packet descriptors. hdrLen covers all
 *   of it; dataLen bytes of data follow. info bit 0: 1 = completion (PDO to
 *   FDO). status is a USBD_STATUS, mapped here to the Linux errno usbmon
 *   would show so one code path judges both.
 *
 * USB_DARWIN (macOS; tcpdump.org LINKTYPE_USB_DARWIN), all fields LE:
 *
 *    0      2     3     4        8        12       16           24       28  29  30  31
 *   +------+-----+-----+--------+--------+--------+------------+--------+---+---+---+---+
 *   |bcdVer|hlen |req  |ioLength|ioStatus|frames  | ioID (u64) |location|spd|adr|ep |typ|
 *   +------+-----+-----+--------+--------+--------+------------+--------+---+---+---+---+
 *   req 0 submit, 1 complete (paired by ioID); the payload starts at hlen
 *   (32 today, more for later versions). A control submit carries the 8-byte
 *   setup packet; every other byte that moved - OUT data too - is in the
 *   completion. ioLength: requested (submit), transferred (complete).
 *   location: the bus in its top byte, the port path in the nibbles below.
 *   speed 0 low, 1 full, 2 high, 3 super, 4 super+; type 0 control, 1 iso,
 *   2 bulk, 3 interrupt. ioStatus is an IOReturn, mapped to Linux errno.
 */
#include <stdlib.h>
#include <string.h>

#include "src/base/lp_cursor.h"
#include "src/capture/reader_int.h"
#include "usb/cap_usbmon.h"

#define USBPCAP_HDR_MIN 27
#define USBD_STATUS_STALL_PID 0xC0000004u
#define USBD_STATUS_ENDPOINT_HALTED 0xC0000030u
#define USBD_STATUS_DEV_NOT_RESPONDING 0xC0000005u
#define USBD_STATUS_CANCELED 0xC0010000u
#define USBD_STATUS_DEVICE_GONE 0xC0007000u
#define USBD_STATUS_TIMEOUT 0xC0006000u

#define DARWIN_HDR_MIN 32
#define KIO_RETURN_NO_DEVICE 0xe00002c0u
#define KIO_RETURN_TIMEOUT 0xe00002d6u
#define KIO_RETURN_UNDERRUN 0xe00002e7u
#define KIO_RETURN_OVERRUN 0xe00002e8u
#define KIO_RETURN_ABORTED 0xe00002ebu
#define KIO_RETURN_NOT_RESPONDING 0xe00002edu
#define KIO_RETURN_NOT_ATTACHED 0xe00002d9u
#define KIO_USBHOST_PIPE_STALLED 0xe0005000u /* the XHCI stack */
#define KIO_USB_PIPE_STALLED 0xe000404fu     /* the older IOUSBFamily */
#define KIO_USB_TRANSACTION_TIMEOUT 0xe0004051u

static uint16_t rd_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static int32_t usbd_to_linux(uint32_t s)
{
	if (s == 0)
		return 0;
	switch (s) {
	case USBD_STATUS_STALL_PID:
	case USBD_STATUS_ENDPOINT_HALTED:
		return CAP_URB_EPIPE;
	case USBD_STATUS_CANCELED:
		return CAP_URB_ENOENT;
	case USBD_STATUS_DEVICE_GONE:
		return CAP_URB_ENODEV;
	case USBD_STATUS_TIMEOUT:
	case USBD_STATUS_DEV_NOT_RESPONDING:
		return CAP_URB_ETIME;
	default:
		return (s & 0xC0000000u) == 0xC0000000u ? CAP_URB_EPROTO : 0;
	}
}

static int32_t ioreturn_to_linux(uint32_t s)
{
	switch (s) {
	case 0:
	case KIO_RETURN_UNDERRUN: /* fewer bytes than asked: a short transfer */
		return 0;
	case KIO_USBHOST_PIPE_STALLED:
	case KIO_USB_PIPE_STALLED:
		return CAP_URB_EPIPE;
	case KIO_RETURN_ABORTED:
		return CAP_URB_ENOENT;
	case KIO_RETURN_NO_DEVICE:
	case KIO_RETURN_NOT_ATTACHED:
		return CAP_URB_ENODEV;
	case KIO_RETURN_TIMEOUT:
	case KIO_USB_TRANSACTION_TIMEOUT:
	case KIO_RETURN_NOT_RESPONDING:
		return CAP_URB_ETIME;
	case KIO_RETURN_OVERRUN:
		return CAP_URB_EOVERFLOW;
	default:
		return CAP_URB_EPROTO;
	}
}

/* --- pending URBs (hash on id, bounded probing) --------------------------- */

#define PEND_PROBE 64

void rd_pend_put(struct cap_reader *r, const struct rd_urb *u)
{
	size_t h = rd_pend_home(u->id, u->bus, u->addr), slot = h;
	struct rd_pending *p;

	for (size_t i = 0; i < PEND_PROBE; i++) {
		p = &r->pend[(h + i) % CAP_RD_PENDING];
		if (!p->used || (p->id == u->id && p->bus == u->bus && p->addr == u->addr)) {
			slot = (h + i) % CAP_RD_PENDING;
			break;
		}
	}
	/* no free slot nearby: evict the home slot (a submit whose completion
	 * was never captured) */
	p = &r->pend[slot];
	p->used = true; /* every field set: no memset (its rep stos stalled) */
	p->id = u->id;
	p->bus = u->bus;
	p->addr = u->addr;
	p->xfer = u->xfer;
	p->ep = u->ep;
	p->t = u->t;
	p->len = u->len_known ? u->len : 0;
	p->have_setup = u->have_setup;
	memcpy(p->setup, u->setup, 8);
	if (!u->len_known)
		p->len = UINT32_MAX;
}

bool rd_pend_take(struct cap_reader *r, const struct rd_urb *u, struct rd_pending *out)
{
	size_t h = rd_pend_home(u->id, u->bus, u->addr);

	for (size_t i = 0; i < PEND_PROBE; i++) {
		struct rd_pending *p = &r->pend[(h + i) % CAP_RD_PENDING];
		if (p->used && p->id == u->id && p->bus == u->bus && p->addr == u->addr) {
			*out = *p;
			p->used = false;
			return true;
		}
	}
	return false;
}

static uint32_t bswap32(uint32_t v)
{
	return __builtin_bswap32(v);
}

int rd_usbmon_record(struct cap_reader *r, uint64_t t, const uint8_t *buf, size_t caplen,
		     struct rd_urb *x)
{
	struct cap_usbmon_rec rec;
	size_t hl = r->linktype == CAP_LINKTYPE_USB_LINUX ? CAP_USBMON_HDR_LEN_LEGACY
							  : CAP_USBMON_HDR_LEN;
	int rc = cap_usbmon_decode_lt(buf, caplen, r->linktype, false, &rec);

	if (caplen >= hl && (r->usbmon_swapped || rc != 0 ||
			     (rec.len_cap != caplen - hl && bswap32(rec.len_cap) == caplen - hl) ||
			     (rec.busnum > 127 && __builtin_bswap16(rec.busnum) <= 127))) {
		struct cap_usbmon_rec sw;
		if (cap_usbmon_decode_lt(buf, caplen, r->linktype, true, &sw) == 0 &&
		    sw.len_cap == caplen - hl) {
			if (!r->swapped_noted)
				rd_anomaly(
					r,
					"packet %llu: usbmon headers are in the other byte order than the "
					"file says; decoded byte-swapped",
					(unsigned long long)r->cur_pkt);
			r->swapped_noted = true;
			r->usbmon_swapped = true;
			rec = sw;
			rc = 0;
		}
	}
	if (rc) {
		rd_anomaly(r, "packet %llu: usbmon record %s (%zu bytes)",
			   (unsigned long long)r->cur_pkt,
			   rc == LP_ETRUNC ? "truncated" : "invalid", caplen);
		return rc;
	}
	x->t = t; /* every field set */
	x->pkt = r->cur_pkt;
	x->id = rec.id;
	x->type = (char)rec.type;
	x->xfer = rec.xfer_type;
	x->ep = rec.epnum;
	x->bus = rec.busnum;
	x->addr = rec.devnum;
	x->status = rec.status;
	x->len = rec.len_urb;
	x->len_known = true;
	x->have_setup = rec.type == 'S' && rec.xfer_type == 2 && rec.flag_setup == 0;
	memcpy(x->setup, rec.setup, 8);
	x->data = rec.data;
	x->data_len = rec.data_len;
	x->speed_mbps = 0; /* usbmon records do not say */
	/* clipped by the file's snap length (fewer bytes than len_cap, or than
	 * the record's length on the wire), or by usbmon itself: a small -s
	 * makes the kernel keep len_cap < len_urb bytes of a record that
	 * carries data (an OUT submit, an IN completion) */
	x->clipped = rec.clipped || r->cur_wire_len > caplen ||
		     (rec.xfer_type != 0 && rec.len_cap < rec.len_urb &&
		      (rec.type == 'S' ? !(rec.epnum & 0x80)
				       : rec.type == 'C' && (rec.epnum & 0x80)));
	return 0;
}

int rd_usbpcap_record(struct cap_reader *r, uint64_t t, const uint8_t *buf, size_t caplen,
		      struct rd_urb *x)
{
	struct lp_rd rd;
	uint16_t hlen, bus, dev;
	uint32_t status, dlen;
	uint8_t info, ep, xfer, stage = 0xff;

	lp_rd_init(&rd, buf, caplen);
	hlen = lp_rd_le16(&rd);
	memset(x, 0, sizeof(*x));
	x->id = lp_rd_le64(&rd);
	status = lp_rd_le32(&rd);
	lp_rd_le16(&rd); /* URB function */
	info = lp_rd_u8(&rd);
	bus = lp_rd_le16(&rd);
	dev = lp_rd_le16(&rd);
	ep = lp_rd_u8(&rd);
	xfer = lp_rd_u8(&rd);
	dlen = lp_rd_le32(&rd);
	if (!lp_rd_ok(&rd) || hlen < USBPCAP_HDR_MIN || hlen > caplen) {
		rd_anomaly(r, "packet %llu: USBPcap header %s (%zu bytes, headerLen %u)",
			   (unsigned long long)r->cur_pkt,
			   lp_rd_ok(&rd) && hlen >= USBPCAP_HDR_MIN ? "longer than the record"
								    : "truncated",
			   caplen, hlen);
		return LP_ETRUNC;
	}
	/* USBPcap logs URB functions it has no transfer type for (ABORT_PIPE,
	 * RESET_PIPE, ...) as 0xFE / 0xFF (IRP_INFO / UNKNOWN): the host's
	 * bookkeeping, no transfer - skipped quietly */
	if (xfer == 0xFE || xfer == 0xFF)
		return LP_EBADMSG;
	if (xfer > 3 || dev > 255) {
		rd_anomaly(r,
			   "packet %llu: USBPcap record with transfer type %u / device %u skipped",
			   (unsigned long long)r->cur_pkt, xfer, dev);
		return LP_EBADMSG;
	}
	if (xfer == 2 && hlen >= USBPCAP_HDR_MIN + 1)
		stage = lp_rd_u8(&rd);
	x->t = t;
	x->pkt = r->cur_pkt;
	x->type = info & 1 ? 'C' : 'S';
	x->xfer = xfer;
	x->ep = ep;
	x->bus = bus;
	x->addr = (uint8_t)dev;
	x->status = x->type == 'C' ? usbd_to_linux(status) : CAP_URB_EINPROGRESS;
	x->data = buf + hlen;
	x->data_len = caplen - hlen;
	if (x->data_len > dlen)
		x->data_len = dlen;
	x->clipped = x->data_len < dlen || r->cur_wire_len > caplen;
	x->len = dlen;
	x->len_known = !(x->type == 'S' && (ep & 0x80));
	if (xfer == 2) {
		if (x->type == 'S' && stage == 0) {
			if (x->data_len < 8) {
				rd_anomaly(
					r,
					"packet %llu: USBPcap control setup stage without 8 setup bytes",
					(unsigned long long)r->cur_pkt);
				return LP_ETRUNC;
			}
			memcpy(x->setup, x->data, 8);
			x->have_setup = true;
			x->len = rd_le16(x->setup + 6);
			x->data += 8;
			x->data_len -= 8;
		} else if (x->type == 'S') {
			return LP_EAGAIN; /* OUT data stage: the setup record was the submit */
		}
	}
	return 0;
}

int rd_darwin_record(struct cap_reader *r, uint64_t t, const uint8_t *buf, size_t caplen,
		     struct rd_urb *x)
{
	static const uint8_t xfer_of[4] = {2, 0, 3, 1}; /* Darwin type -> usbmon's */
	static const double mbps[5] = {1.5, 12, 480, 5000, 10000};
	struct lp_rd rd;
	uint8_t hlen, req, speed, addr, ep, type;
	uint32_t io_len, status, loc;

	lp_rd_init(&rd, buf, caplen);
	lp_rd_le16(&rd); /* bcdVersion */
	hlen = lp_rd_u8(&rd);
	req = lp_rd_u8(&rd);
	io_len = lp_rd_le32(&rd);
	status = lp_rd_le32(&rd);
	lp_rd_le32(&rd); /* isochronous frames */
	memset(x, 0, sizeof(*x));
	x->id = lp_rd_le64(&rd);
	loc = lp_rd_le32(&rd);
	speed = lp_rd_u8(&rd);
	addr = lp_rd_u8(&rd);
	ep = lp_rd_u8(&rd);
	type = lp_rd_u8(&rd);
	if (!lp_rd_ok(&rd) || hlen < DARWIN_HDR_MIN || hlen > caplen) {
		rd_anomaly(r, "packet %llu: macOS USB header %s (%zu bytes, header length %u)",
			   (unsigned long long)r->cur_pkt,
			   lp_rd_ok(&rd) && hlen >= DARWIN_HDR_MIN ? "longer than the record"
								   : "truncated",
			   caplen, hlen);
		return LP_ETRUNC;
	}
	if (req > 1 || type > 3 || addr > 127) {
		rd_anomaly(
			r,
			"packet %llu: macOS USB record with request type %u / endpoint type %u / "
			"address %u skipped",
			(unsigned long long)r->cur_pkt, req, type, addr);
		return LP_EBADMSG;
	}
	x->t = t;
	x->pkt = r->cur_pkt;
	x->type = req ? 'C' : 'S';
	x->xfer = xfer_of[type];
	x->ep = ep;
	x->bus = (uint16_t)(loc >> 24);
	x->addr = addr;
	x->status = req ? ioreturn_to_linux(status) : CAP_URB_EINPROGRESS;
	x->len = io_len;
	x->len_known = true;
	x->data = buf + hlen;
	x->data_len = caplen - hlen;
	x->speed_mbps = speed < 5 ? mbps[speed] : 0;
	if (x->xfer == 0)
		x->data_len = 0; /* frame descriptors, not data: isochronous is not followed */
	if (x->type == 'S' && x->xfer == 2) {
		if (x->data_len < 8) {
			rd_anomaly(r, "packet %llu: macOS USB control submit without 8 setup bytes",
				   (unsigned long long)r->cur_pkt);
			return LP_ETRUNC;
		}
		memcpy(x->setup, x->data, 8);
		x->have_setup = true;
		x->len = rd_le16(x->setup + 6);
	}
	if (x->type == 'S')
		x->data_len = 0; /* the bytes come with the completion */
	else if (x->data_len > io_len)
		x->data_len = io_len;
	/* fewer bytes than ioLength says moved: only judged on bulk and
	 * interrupt records (what ioLength counts on control ones is not
	 * documented) */
	x->clipped = r->cur_wire_len > caplen ||
		     (x->type == 'C' && (x->xfer == 1 || x->xfer == 3) && x->data_len < io_len);
	return 0;
}
