/* usbll.h - USB 2.0 packets as a hardware bus analyzer records them
 * (LINKTYPE_USB_2_0 288; 293/294/295 for low/full/high speed), decoded and
 * grouped into transactions and transfers. Sans-I/O: records are fed in,
 * transfers, address changes and anomalies come out through callbacks, and
 * counters accumulate in struct usbll_stats. Nothing here allocates per
 * packet, prints or does I/O.
 *
 * A record is one packet as it was between SYNC and EOP: the PID byte first,
 * then the fields of its type, CRC included (tcpdump-group linktypes:
 * "USB 2.0, 1.1 or 1.0 packet, beginning with a PID, as described by
 * Chapter 8 Protocol Layer of the USB 2.0 specification"; Wireshark's usbll
 * dissector reads them so). Layouts (bit 0 of each byte first on the wire,
 * multi-byte fields little-endian):
 *
 *   PID byte      bits 0-3 PID, bits 4-7 its one's complement (check)
 *   token         PID | ADDR:7 ENDP:4 CRC5:5          (OUT IN SETUP PING;
 *                                                      3 bytes; EXT too)
 *   SOF           PID | FRAME:11 CRC5:5                (3 bytes)
 *   data          PID | payload (0..1024) | CRC16 LE   (DATA0/1/2, MDATA)
 *   handshake     PID                                  (ACK NAK STALL NYET)
 *   SPLIT         PID | HUB:7 SC:1 PORT:7 S:1 E/U:1 ET:2 CRC5:5 (4 bytes)
 *   PRE/ERR       PID (PRE on a full-speed bus, ERR in a high-speed split)
 *
 *   CRC5:  x^5 + x^2 + 1 over the 11 (19 for SPLIT) field bits, register
 *          preset to all ones, result inverted.
 *   CRC16: x^16 + x^15 + x^2 + 1 over the payload, preset to all ones,
 *          result inverted, sent low byte first.
 *
 * Transactions (the bus is half-duplex and host-scheduled, so one at a time,
 * split transactions aside): token, then data from the host (SETUP, OUT) or
 * from the device (IN), then a handshake from the receiver; PING is answered
 * by a handshake alone. A response that is not there (the next packet is a
 * new token or a SOF, or it comes later than USBLL_RESP_TIMEOUT_NS) is a
 * timeout; a packet whose CRC fails is ignored by its receiver, as the
 * hardware does, and the transaction fails. A failed transaction is retried by
 * the host; after USBLL_ERR_LIMIT failures in a row on one endpoint the host
 * controller gives up and the transfer ends in error (EHCI/xHCI's error
 * counter of 3). DATA0/DATA1 toggles decide whether a data packet is new or a
 * retransmission (its handshake was lost), exactly as the receiver decides.
 *
 * Transfers: control = SETUP (8 bytes, DATA0) + optional data stage up to
 * wLength or a short packet + status stage (a zero-length packet the other
 * way, DATA1); other endpoints are treated as bulk: a transfer ends at a
 * short packet (shorter than the endpoint's wMaxPacketSize, from the
 * configuration descriptor when the capture holds it, else 512 at high speed
 * and 64 at full/low speed) or a zero-length packet. A bulk transfer longer
 * than USBLL_CHUNK_MAX is handed over in pieces (more = true).
 *
 * Address changes: a SET_ADDRESS that completes moves the device at address 0
 * to the new address; the callback is told, and a reset (no SOF for at least
 * USBLL_RESET_GAP_NS, then traffic to address 0) is counted and reported.
 *
 * Malformed input is data: a record that is empty, whose PID check nibble is
 * wrong (bit-level garbage), whose length does not fit its PID, or that came
 * in a place no transaction allows, is counted and reported as an anomaly
 * with its packet number; decoding carries on with the next record.
 *
 * References: USB 2.0 specification chapter 8 (packets, CRCs, transactions,
 * data toggle, split transactions), 5.12.4 / 7.1.12 (SOF every 1 ms, every
 * 125 us at high speed), 11.18-11.21 (split); Wireshark packet-usbll.c and
 * the tcpdump-group linktypes list, read for the record format only. */
#ifndef LP_USBLL_H
#define LP_USBLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usb/transport.h"

#define USBLL_LINKTYPE 288	/* LINKTYPE_USB_2_0: speed unknown */
#define USBLL_LINKTYPE_LOW 293	/* LINKTYPE_USB_2_0_LOW_SPEED */
#define USBLL_LINKTYPE_FULL 294 /* LINKTYPE_USB_2_0_FULL_SPEED */
#define USBLL_LINKTYPE_HIGH 295 /* LINKTYPE_USB_2_0_HIGH_SPEED */

#define USBLL_DATA_MAX 1024 /* largest payload (high-speed isochronous) */
#define USBLL_PKT_MAX (USBLL_DATA_MAX + 3)
#define USBLL_CHUNK_MAX (64u * 1024u)  /* bulk bytes buffered before a piece is handed over */
#define USBLL_BUFS_MAX 64	       /* endpoints buffering a transfer at once */
#define USBLL_ERR_LIMIT 3	       /* failed transactions in a row: the host gives up */
#define USBLL_RESP_TIMEOUT_NS 20000ull /* a response later than this is a timeout */
#define USBLL_RESET_GAP_NS 3000000ull  /* no SOF this long, then address 0: a reset */
#define USBLL_EPSTAT_MAX 64	       /* endpoints with their own counters */

/* The 4-bit PIDs (USB 2.0 table 8-1). */
enum usbll_pid {
	USBLL_PID_EXT = 0x0,
	USBLL_PID_OUT = 0x1,
	USBLL_PID_ACK = 0x2,
	USBLL_PID_DATA0 = 0x3,
	USBLL_PID_PING = 0x4,
	USBLL_PID_SOF = 0x5,
	USBLL_PID_NYET = 0x6,
	USBLL_PID_DATA2 = 0x7,
	USBLL_PID_SPLIT = 0x8,
	USBLL_PID_IN = 0x9,
	USBLL_PID_NAK = 0xA,
	USBLL_PID_DATA1 = 0xB,
	USBLL_PID_PRE_ERR = 0xC,
	USBLL_PID_SETUP = 0xD,
	USBLL_PID_STALL = 0xE,
	USBLL_PID_MDATA = 0xF,
};

/* The PID byte on the wire for a 4-bit PID (complement in the high nibble). */
static inline uint8_t usbll_pid_byte(unsigned pid)
{
	return (uint8_t)((pid & 0x0f) | ((~pid & 0x0f) << 4));
}

/* "IN", "DATA1", ... ("?" for none). */
const char *usbll_pid_name(unsigned pid);

enum usbll_kind {
	USBLL_K_TOKEN, /* OUT IN SETUP PING EXT */
	USBLL_K_SOF,
	USBLL_K_DATA,
	USBLL_K_HANDSHAKE, /* ACK NAK STALL NYET */
	USBLL_K_SPLIT,
	USBLL_K_PRE_ERR,
};

/* One decoded packet. Fields not belonging to the kind are 0. */
struct usbll_pkt {
	uint8_t pid; /* 4-bit PID */
	enum usbll_kind kind;
	uint8_t addr, ep;    /* token */
	uint16_t frame;	     /* SOF */
	const uint8_t *data; /* data payload, borrowed from the record */
	size_t data_len;
	bool crc_ok; /* CRC5 / CRC16 (true for kinds without a CRC) */
	/* SPLIT */
	uint8_t hub, port, et;
	bool complete, s, eu;
};

/* Decode one record (buf[0..len), borrowed). Returns 0 and fills *p (a CRC
 * failure is 0 with crc_ok false: the packet is there, its bits are not
 * trustworthy); LP_ETRUNC for an empty record or one shorter than its PID
 * needs; LP_EBADMSG when the PID check nibble is wrong (garbage) or the
 * record is longer than its PID allows. */
int usbll_decode(const uint8_t *buf, size_t len, struct usbll_pkt *p);

/* CRC5 of the low `nbits` bits of `bits` (11 for tokens/SOF, 19 for SPLIT). */
uint8_t usbll_crc5(uint32_t bits, unsigned nbits);
/* CRC16 of a data payload, as sent (low byte first). */
uint16_t usbll_crc16(const uint8_t *d, size_t n);

/* ---- the stream decoder --------------------------------------------------- */

enum usbll_xfer_type { USBLL_XFER_CONTROL = 2, USBLL_XFER_BULK = 3 }; /* usbmon's values */

enum usbll_status {
	USBLL_ST_OK = 0,
	USBLL_ST_STALL, /* the device answered STALL */
	USBLL_ST_ERROR, /* USBLL_ERR_LIMIT failed transactions in a row: the host gave up */
	USBLL_ST_ABORTED, /* a control transfer cut short by a new SETUP, a reset or the end of the capture */
};

/* A transfer, handed to the callback (valid during the call only). */
struct usbll_xfer {
	uint64_t t0, t1;     /* ns: first and last packet */
	uint64_t pkt0, pkt1; /* packet numbers of the first and last packet */
	uint8_t addr;
	uint8_t ep; /* bit 7 = IN; control: 0x80 when the data stage is IN */
	enum usbll_xfer_type type;
	enum usbll_status status;
	bool have_setup;
	uint8_t setup[8];
	const uint8_t *data; /* borrowed */
	size_t len;
	bool short_end;		/* bulk: ended by a short packet or ZLP */
	bool more;		/* bulk: a piece of a longer transfer; more follows */
	unsigned retries, naks; /* failed attempts retried, NAKs while it ran */
};

struct usbll_cb {
	/* Mandatory. A transfer ended (or a piece of a long bulk one). */
	void (*xfer)(void *ud, const struct usbll_xfer *x);
	/* Optional. SET_ADDRESS completed: the device at `from` (0) is now at
	 * `to`. `reset`: a bus reset came before it. */
	void (*address)(void *ud, uint8_t from, uint8_t to, uint64_t t, uint64_t pkt);
	/* Optional. A bus reset was inferred at t (no SOF for a while, then
	 * address 0); devices at other addresses are gone. */
	void (*reset)(void *ud, uint64_t t, uint64_t pkt);
	/* Optional. One sentence, with the packet number in it. */
	void (*anomaly)(void *ud, const char *msg);
};

/* Per-endpoint counters (the first USBLL_EPSTAT_MAX endpoints seen). */
struct usbll_epstat {
	uint8_t addr, ep; /* bit 7 = IN */
	uint64_t tokens, naks, stalls, nyets, data, bytes, failures;
};

struct usbll_stats {
	uint64_t records, bytes;
	uint64_t by_pid[16];
	uint64_t garbage;   /* PID check nibble wrong */
	uint64_t malformed; /* empty, or a length that does not fit the PID */
	uint64_t clipped;   /* captured shorter than on the wire */
	uint64_t crc5_bad, crc16_bad;
	uint64_t unexpected; /* a packet no transaction in progress allows */
	uint64_t transactions, timeouts, retries, gave_up;
	uint64_t naks, stalls, nyets, acks;
	uint64_t duplicates; /* data with the toggle of the previous one: a retransmission */
	uint64_t sofs, sof_missing, sof_late, sof_jumps;
	uint64_t resets, addresses;
	uint64_t splits, pings, pre_err, ext;
	uint64_t xfers_ctrl, xfers_bulk;
	uint64_t first_bad_pkt; /* first corrupted/garbage/malformed packet, 0 none */
	struct usbll_epstat ep[USBLL_EPSTAT_MAX];
	size_t nep;
};

struct usbll;

/* New decoder for a bus at `speed` (TR_SPEED_UNKNOWN for link type 288: it
 * is then inferred: 125 us SOF spacing or 512-byte packets mean high
 * speed). cb borrowed (copied), ud passed back. NULL on allocation failure. */
struct usbll *usbll_new(enum tr_speed speed, const struct usbll_cb *cb, void *ud);
void usbll_free(struct usbll *u);

/* Link type -> speed (TR_SPEED_UNKNOWN for 288); false if not a USB 2.0
 * packet link type. */
bool usbll_linktype_speed(int linktype, enum tr_speed *speed);

/* One record: t in ns (monotonic within the capture), pkt its packet number
 * (for anomalies), buf[0..caplen) borrowed, wirelen the length on the wire. */
void usbll_feed(struct usbll *u, uint64_t t, uint64_t pkt, const uint8_t *buf, size_t caplen,
		size_t wirelen);

/* End of capture: a transaction waiting for its response times out, control
 * transfers still open end ABORTED, buffered bulk data is handed over. */
void usbll_finish(struct usbll *u);

const struct usbll_stats *usbll_stats(const struct usbll *u);
/* Speed given or inferred so far. */
enum tr_speed usbll_speed(const struct usbll *u);

#endif
