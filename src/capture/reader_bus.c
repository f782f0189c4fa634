/* reader_bus.c - bus-level captures in the capture reader: link types 288
 * and 293-295 (every USB 2.0 packet on the wire, from a hardware analyzer or
 * linkprobe --capture-bus).
 *
 * src/capture/usbll.c turns the packets into transfers; each one enters the
 * reader's USB layers through cap_reader_transfer() as the submit and
 * completion usbmon would have recorded, so enumerations, control exchanges,
 * usbmux, connections and lockdown come out as from usbmon. Mapping:
 *   OK -> 0; STALL -> -EPIPE; the host giving up after failed transactions
 *   -> -EPROTO; a control transfer cut short (new SETUP, reset, end of the
 *   capture) -> -ENOENT (cancelled).
 *   A bulk IN transfer that ended with a short packet or ZLP is given a
 *   requested length one byte longer than what came, so it reads as short
 *   (the host's buffer size is not on the wire).
 *   A bus reset (usbll: no SOF for a while, then address 0) ends every
 *   enumeration at another address; SET_ADDRESS to an address in use ends the
 *   enumeration that held it: both as a -ENODEV completion, which the USB
 *   layer turns into CAP_EV_DISCONNECT.
 * The enumerations are on bus 1 (an analyzer sees one bus). What only the
 * wire shows stays in usbll's counters: cap_reader_bus_stats(). */
#include <string.h>

#include "src/capture/reader_int.h"
#include "usb/cap_usbmon.h"

#define BUS_NUMBER 1

static void xfer_pair(void *ud, const struct usbll_xfer *x)
{
	struct cap_reader *r = ud;
	struct cap_transfer s = {0}, c;
	bool in = x->ep & 0x80;
	uint64_t id = ++r->bus_id;

	s.type = 'S';
	s.xfer = (uint8_t)x->type;
	s.ep = x->ep;
	s.status = CAP_URB_EINPROGRESS;
	s.len_known = true;
	if (x->type == USBLL_XFER_CONTROL) {
		s.len = (uint32_t)(x->setup[6] | x->setup[7] << 8);
		if (!in) {
			s.data = x->data;
			s.data_len = x->len;
		}
	} else if (in) {
		s.len = (uint32_t)x->len + (x->short_end ? 1u : 0u);
	} else {
		s.len = (uint32_t)x->len;
		s.data = x->data;
		s.data_len = x->len;
	}
	c = s;
	c.type = 'C';
	switch (x->status) {
	case USBLL_ST_OK:
		c.status = 0;
		break;
	case USBLL_ST_STALL:
		c.status = CAP_URB_EPIPE;
		break;
	case USBLL_ST_ERROR:
		c.status = CAP_URB_EPROTO;
		break;
	default:
		c.status = CAP_URB_ENOENT;
		break;
	}
	c.len = (uint32_t)x->len;
	c.short_end = x->type == USBLL_XFER_BULK && in && x->short_end;
	c.data = in ? x->data : NULL;
	c.data_len = in ? x->len : 0;
	cap_reader_transfer(r, x->t0, x->pkt0, id, BUS_NUMBER, x->addr,
			    x->type == USBLL_XFER_CONTROL ? x->setup : NULL, &s);
	cap_reader_transfer(r, x->t1, x->pkt1, id, BUS_NUMBER, x->addr, NULL, &c);
}

/* End the enumerations at `addr` (or, with all_but, at every other address). */
static void gone(struct cap_reader *r, uint8_t addr, bool all_but, uint64_t t, uint64_t pkt)
{
	for (size_t i = 0; i < r->nusb; i++) {
		struct cap_usbdev *u = &r->usb[i]->pub;
		struct cap_transfer c = {.type = 'C',
					 .xfer = 3,
					 .ep = 0x80,
					 .status = CAP_URB_ENODEV,
					 .len_known = true};
		if (u->gone || (all_but ? u->addr == addr : u->addr != addr))
			continue;
		cap_reader_transfer(r, t, pkt, ++r->bus_id, u->bus, u->addr, NULL, &c);
	}
}

static void on_reset(void *ud, uint64_t t, uint64_t pkt)
{
	gone(ud, 0, true, t, pkt);
}

static void on_address(void *ud, uint8_t from, uint8_t to, uint64_t t, uint64_t pkt)
{
	(void)from;
	gone(ud, to, false, t, pkt);
}

static void on_anomaly(void *ud, const char *msg)
{
	rd_anomaly(ud, "%s", msg);
}

bool cap_linktype_is_bus(int lt)
{
	return usbll_linktype_speed(lt, NULL);
}

int rd_bus_begin(struct cap_reader *r)
{
	struct usbll_cb cb = {
		.xfer = xfer_pair, .address = on_address, .reset = on_reset, .anomaly = on_anomaly};
	enum tr_speed sp = TR_SPEED_UNKNOWN;

	usbll_linktype_speed(r->linktype, &sp);
	r->bus = usbll_new(sp, &cb, r);
	return r->bus ? 0 : LP_ENOMEM;
}

void rd_bus_record(struct cap_reader *r, const uint8_t *buf, size_t caplen, size_t wirelen)
{
	uint64_t t = r->cur_t, pkt = r->cur_pkt;

	usbll_feed(r->bus, t, pkt, buf, caplen, wirelen);
	r->cur_t = t; /* transfers handed over carry earlier times */
	r->cur_pkt = pkt;
}

void rd_bus_finish(struct cap_reader *r)
{
	if (r->bus)
		usbll_finish(r->bus);
}

const struct usbll_stats *cap_reader_bus_stats(const struct cap_reader *r, enum tr_speed *speed)
{
	if (!r->bus)
		return NULL;
	if (speed)
		*speed = usbll_speed(r->bus);
	return usbll_stats(r->bus);
}
