/* sim_hostile.c - the simulated iPhone misbehaving on request (see
 * sim_hostile.h for the modes). Everything here is what a device may do to a
 * host, not what a real iPhone does: the host's answer to each is tested in
 * tests/t/93-hostile-device.t and, through the gadget, tests/lab/95-hostile.sh.
 *
 * Reference: doc/protocol.md 2.1-2.10 (usbmux framing the lies are told in),
 * 4.1 (lockdown framing the garbage travels in).
 */
#include "src/device/sim_hostile.h"

#include <stdlib.h>
#include <string.h>

#include "src/base/lp_error.h"
#include "proto/mux.h"

#define SHOST_DEEP_BIN 100000	    /* nested arrays of plist-deep */
#define SHOST_DEEP_XML 200000	    /* nested <array>s of plist-deep-xml */
#define SHOST_GARBAGE_LEN 256	    /* noise after "bplist00" */
#define SHOST_FLOOD_PKT 36	    /* v2 header + TCP header, no payload */
#define SHOST_FLOOD_PER_XFER 455    /* 16 380 bytes: one short transfer */
#define SHOST_FLOOD_PORT 0x8000	    /* host ports from here: never opened by a host */
#define SHOST_LIE_LONG 0x10000000u  /* 256 MiB */
#define SHOST_LIE_OVER 64	    /* bytes promised beyond the transfer */
#define SHOST_LIE_SHORT 2	    /* bytes the length leaves out */
#define SHOST_GET_DESCRIPTOR_AT 3   /* disconnect-descriptors: at this request */
#define SHOST_MUX_MAGIC 0xFEEDFACEu /* v2 header magic */

static const char *const modes[] = {
	[SHOST_MUX_SHORT] = "mux-short",   [SHOST_MUX_OVER] = "mux-over",
	[SHOST_MUX_LONG] = "mux-long",	   [SHOST_PLIST_GARBAGE] = "plist-garbage",
	[SHOST_PLIST_DEEP] = "plist-deep", [SHOST_PLIST_DEEP_XML] = "plist-deep-xml",
	[SHOST_PLIST_NUL] = "plist-nul",   [SHOST_NAME_ESCAPE] = "name-escape",
	[SHOST_STALL] = "stall",	   [SHOST_NAK_OUT] = "nak-out",
	[SHOST_IN_FLOOD] = "in-flood",	   [SHOST_NAK_OUT_QUERYTYPE] = "nak-out-querytype",
};

/* disconnect-NAME; the lockdown request each one is, where it is one */
static const struct {
	const char *name, *request;
} stages[SHOST_AT_COUNT] = {
	[SHOST_AT_DESCRIPTORS] = {"descriptors", NULL},
	[SHOST_AT_USBMUX] = {"usbmux", NULL},
	[SHOST_AT_LOCKDOWN] = {"lockdown", NULL},
	[SHOST_AT_QUERYTYPE] = {"querytype", "QueryType"},
	[SHOST_AT_GETVALUE] = {"getvalue", "GetValue"},
	[SHOST_AT_PAIR] = {"pair", "Pair"},
	[SHOST_AT_STARTSESSION] = {"startsession", "StartSession"},
	[SHOST_AT_TLS] = {"tls", NULL},
	[SHOST_AT_STARTSERVICE] = {"startservice", "StartService"},
	[SHOST_AT_STOPSESSION] = {"stopsession", "StopSession"},
};

/* ESC [ (CSI) colour, ESC ] (OSC) window title ended by BEL, C1 CSI (U+009B)
 * clear screen, RIGHT-TO-LEFT OVERRIDE, ZERO WIDTH SPACE, a lone 0xff byte and
 * a newline followed by a fake verdict line: 59 bytes (DeviceName < 64). */
static const char evil_name[] = "\x1b[31mEvil\x1b[0m\xe2\x80\xae"
				"enohPi\xe2\x80\x8b\x1b]0;pwned\x07\xc2\x9b"
				"2J\xff\nverdict: GOOD";

int shost_parse(const char *name, struct shost *h)
{
	memset(h, 0, sizeof(*h));
	if (!name || !*name)
		return LP_EINVAL;
	for (size_t i = 1; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (modes[i] && strcmp(name, modes[i]) == 0) {
			h->mode = (enum shost_mode)i;
			return 0;
		}
	}
	if (strncmp(name, "disconnect-", 11) == 0) {
		for (size_t i = 0; i < SHOST_AT_COUNT; i++) {
			if (strcmp(name + 11, stages[i].name) == 0) {
				h->mode = SHOST_DISCONNECT;
				h->at = (enum shost_stage)i;
				return 0;
			}
		}
	}
	return LP_EINVAL;
}

const char *shost_names(void)
{
	return "mux-short, mux-over, mux-long, plist-garbage, plist-deep, plist-deep-xml, plist-nul, "
	       "name-escape, stall, nak-out, nak-out-querytype, in-flood, disconnect-{descriptors, usbmux, lockdown, "
	       "querytype, getvalue, pair, startsession, tls, startservice, stopsession}";
}

const char *shost_device_name(const struct shost *h)
{
	return h->mode == SHOST_NAME_ESCAPE ? evil_name : NULL;
}

static void unplug(struct shost *h)
{
	h->unplug = true;
}

bool shost_detach_due(const struct shost *h)
{
	return h->unplug && !h->detached;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* usbmux is up on the device side (VERSION answered, SETUP seen) */
static bool mux_up(const struct shost *h)
{
	const struct mux *m = devcore_mux(h->dc);

	return m && mux_active(m);
}

void shost_control_seen(struct shost *h, const uint8_t setup[8])
{
	if (h->mode != SHOST_DISCONNECT || h->at != SHOST_AT_DESCRIPTORS || h->unplug)
		return;
	if (setup[0] == 0x80 && setup[1] == 0x06 && ++h->descriptors == SHOST_GET_DESCRIPTOR_AT)
		unplug(h);
}

bool shost_filter_out(struct shost *h, const uint8_t *data, size_t len)
{
	if (h->unplug)
		return false;
	if (h->unplug_next_out || (h->mode == SHOST_DISCONNECT && h->at == SHOST_AT_USBMUX &&
				   len >= 8 && be32(data) == MUX_PROTO_VERSION)) {
		unplug(h);
		return false;
	}
	return true;
}

bool shost_accept(struct shost *h, uint16_t port)
{
	if (h->unplug)
		return true;
	if (h->mode == SHOST_NAK_OUT_QUERYTYPE && port == MUX_PORT_LOCKDOWN)
		h->lockdown_open = true;
	if (h->mode == SHOST_DISCONNECT && h->at == SHOST_AT_LOCKDOWN &&
	    port == MUX_PORT_LOCKDOWN) {
		unplug(h);
		return true;
	}
	return false;
}

enum devmodel_ep shost_bulk_state(struct shost *h, uint8_t ep)
{
	bool in = ep & 0x80;

	if (!mux_up(h))
		return DEVMODEL_EP_READY;
	switch (h->mode) {
	case SHOST_STALL:
		return DEVMODEL_EP_STALL;
	case SHOST_NAK_OUT:
	case SHOST_IN_FLOOD:
		return in ? DEVMODEL_EP_READY : DEVMODEL_EP_NAK;
	case SHOST_NAK_OUT_QUERYTYPE:
		return in || !h->lockdown_open ? DEVMODEL_EP_READY : DEVMODEL_EP_NAK;
	default:
		return DEVMODEL_EP_READY;
	}
}

/* The first device packet carrying lockdown bytes gets a length that lies. */
void shost_in_edit(struct shost *h, uint8_t *pkt, size_t len)
{
	size_t hs;

	if (h->fired ||
	    (h->mode != SHOST_MUX_SHORT && h->mode != SHOST_MUX_OVER && h->mode != SHOST_MUX_LONG))
		return;
	if (len < MUX_V1_HDR || be32(pkt) != MUX_PROTO_TCP)
		return;
	hs = len >= MUX_V2_HDR && be32(pkt + 8) == SHOST_MUX_MAGIC ? MUX_V2_HDR : MUX_V1_HDR;
	if (len <= hs + 20 || (pkt[hs] << 8 | pkt[hs + 1]) != MUX_PORT_LOCKDOWN)
		return;
	h->fired = true;
	if (h->mode == SHOST_MUX_SHORT)
		put_be32(pkt + 4, (uint32_t)(len - SHOST_LIE_SHORT));
	else if (h->mode == SHOST_MUX_OVER)
		put_be32(pkt + 4, (uint32_t)(len + SHOST_LIE_OVER));
	else
		put_be32(pkt + 4, SHOST_LIE_LONG);
}

/* One 16 KiB IN transfer of 455 empty ACKs to ports the host never opened:
 * each one makes a host answer with a RST. */
void shost_in_poll(struct shost *h, uint8_t ep_in)
{
	uint8_t buf[SHOST_FLOOD_PKT * SHOST_FLOOD_PER_XFER];

	if (h->mode != SHOST_IN_FLOOD || !mux_up(h) || mux_version(devcore_mux(h->dc)) < 2)
		return;
	memset(buf, 0, sizeof(buf));
	for (size_t i = 0; i < SHOST_FLOOD_PER_XFER; i++) {
		uint8_t *p = buf + i * SHOST_FLOOD_PKT;

		put_be32(p, MUX_PROTO_TCP);
		put_be32(p + 4, SHOST_FLOOD_PKT);
		put_be32(p + 8, SHOST_MUX_MAGIC);
		put_be16(p + 12, h->flood_seq++);
		put_be16(p + 14, 0xffff);
		put_be16(p + 16, MUX_PORT_LOCKDOWN);
		put_be16(p + 18, (uint16_t)(SHOST_FLOOD_PORT + i));
		put_be32(p + 20, (uint32_t)i);
		put_be32(p + 24, 1);
		p[28] = 0x50;
		p[29] = 0x10; /* ACK */
		put_be16(p + 30, 0x0200);
	}
	if (devcore_in_queue(h->dc, ep_in, buf, sizeof(buf), true) == 0)
		h->flood_queued++;
}

/* "bplist00" and 100 000 arrays, each holding the next; 3-byte references
 * and offsets. */
static uint8_t *deep_bplist(size_t depth, size_t *out_len)
{
	size_t obj = 8, table = 8 + (depth - 1) * 4 + 1, len = table + depth * 3 + 32;
	uint8_t *b = calloc(1, len), *t;

	if (!b)
		return NULL;
	memcpy(b, "bplist00", 8);
	for (size_t i = 0; i < depth; i++) {
		t = b + table + i * 3;
		t[0] = (uint8_t)(obj >> 16);
		t[1] = (uint8_t)(obj >> 8);
		t[2] = (uint8_t)obj;
		if (i + 1 == depth) {
			b[obj++] = 0xa0; /* the innermost array is empty */
			break;
		}
		b[obj] = 0xa1;
		b[obj + 1] = (uint8_t)((i + 1) >> 16);
		b[obj + 2] = (uint8_t)((i + 1) >> 8);
		b[obj + 3] = (uint8_t)(i + 1);
		obj += 4;
	}
	t = b + table + depth * 3; /* trailer: 6 unused bytes first */
	t[6] = 3;		   /* offset size */
	t[7] = 3;		   /* reference size */
	put_be32(t + 12, (uint32_t)depth);
	put_be32(t + 28, (uint32_t)table);
	*out_len = len;
	return b;
}

static uint8_t *deep_xml(size_t depth, size_t *out_len)
{
	static const char head[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				   "<plist version=\"1.0\">",
			  tail[] = "</plist>\n";
	size_t len = sizeof(head) - 1 + depth * 15 + sizeof(tail) - 1, o = 0;
	uint8_t *b = malloc(len);

	if (!b)
		return NULL;
	memcpy(b, head, sizeof(head) - 1);
	o = sizeof(head) - 1;
	for (size_t i = 0; i < depth; i++, o += 7)
		memcpy(b + o, "<array>", 7);
	for (size_t i = 0; i < depth; i++, o += 8)
		memcpy(b + o, "</array>", 8);
	memcpy(b + o, tail, sizeof(tail) - 1);
	*out_len = len;
	return b;
}

/* {Request: QueryType, "Type\0" (a UTF-16 key with a NUL): lockdown}:
 * one-byte offsets and references, objects in the order dict, keys, values. */
static const uint8_t nul_bplist[] = {
	'b',  'p', 'l', 'i', 's', 't', '0', '0', 0xD2, 1,   2, 3, 4, /* @8 dict */
	0x57, 'R', 'e', 'q', 'u', 'e', 's', 't',		     /* @13 */
	0x65, 0,   'T', 0,   'y', 0,   'p', 0,	 'e',  0,   0,	     /* @21 */
	0x59, 'Q', 'u', 'e', 'r', 'y', 'T', 'y', 'p',  'e',	     /* @32 */
	0x58, 'l', 'o', 'c', 'k', 'd', 'o', 'w', 'n',		     /* @42 */
	8,    13,  21,	32,  42,				     /* @51 offsets */
	0,    0,   0,	0,   0,	  0,   1,   1,	 0,    0,   0, 0, 0, 0, 0, 5,
	0,    0,   0,	0,   0,	  0,   0,   0,	 0,    0,   0, 0, 0, 0, 0, 51,
};

static void send_bad_reply(struct shost *h, struct lks_conn *c)
{
	uint8_t garbage[8 + SHOST_GARBAGE_LEN], *b = NULL;
	size_t len = 0;
	uint32_t x = 0x9e3779b9u;

	if (h->mode == SHOST_PLIST_GARBAGE) {
		memcpy(garbage, "bplist00", 8);
		for (size_t i = 8; i < sizeof(garbage); i++) {
			x ^= x << 13; /* xorshift: the same noise every run */
			x ^= x >> 17;
			x ^= x << 5;
			garbage[i] = (uint8_t)x;
		}
		lks_send_body(c, garbage, sizeof(garbage), 0);
		return;
	}
	if (h->mode == SHOST_PLIST_NUL) {
		lks_send_body(c, nul_bplist, sizeof(nul_bplist), 0);
		return;
	}
	b = h->mode == SHOST_PLIST_DEEP ? deep_bplist(SHOST_DEEP_BIN, &len)
					: deep_xml(SHOST_DEEP_XML, &len);
	if (b)
		lks_send_body(c, b, len, 0);
	else
		lks_kill(c, "out of memory");
	free(b);
}

bool shost_intercept(struct shost *h, struct lks_conn *c, const char *request)
{
	if (h->unplug)
		return true;
	if ((h->mode == SHOST_PLIST_GARBAGE || h->mode == SHOST_PLIST_DEEP ||
	     h->mode == SHOST_PLIST_DEEP_XML || h->mode == SHOST_PLIST_NUL) &&
	    !h->fired && strcmp(request, "QueryType") == 0) {
		h->fired = true;
		send_bad_reply(h, c);
		return true;
	}
	if (h->mode != SHOST_DISCONNECT)
		return false;
	if (h->at == SHOST_AT_TLS && strcmp(request, "StartSession") == 0) {
		h->unplug_next_out = true; /* the reply goes out; the handshake is cut */
		return false;
	}
	if (stages[h->at].request && strcmp(request, stages[h->at].request) == 0) {
		unplug(h);
		return true;
	}
	return false;
}
