/* mux.h - usbmux codec, host and device roles, sans-I/O.
 *
 * One codec for both ends of the usbmux protocol that runs over an iPhone's
 * bulk endpoints (reference: doc/protocol.md section 2).
 * Bytes go in with mux_feed() (one call per completed USB transfer), events come
 * out through callbacks, and packets to send are taken with mux_out_take() -
 * each one is exactly one USB transfer (the caller adds a ZLP when its length
 * is a multiple of wMaxPacketSize). The codec never does I/O and never blocks.
 *
 * Role flag: the host sends VERSION/SETUP and opens connections (SYN); the
 * device answers VERSION, accepts SETUP, listens on ports and answers SYN with
 * SYN|ACK or RST. Messages illegal for the receiving role are anomalies.
 *
 * Connections are TCP-like: ports, seq/ack, window scaled by 256, RST to close.
 * Data beyond the peer's window is kept in the connection's send queue and
 * released as ACKs arrive. The host ACKs every data packet; neither side ACKs
 * a pure ACK.
 */
#ifndef LP_MUX_H
#define LP_MUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/base/lp_log.h"

#define MUX_PORT_LOCKDOWN 62078
#define MUX_V1_HDR 8
#define MUX_V2_HDR 16
#define MUX_TCP_HDR 20
#define MUX_V2_MAGIC 0xFEEDFACEu
/* Named caps, checked before allocation. */
#define MUX_MAX_PACKET 65536 /* largest packet accepted from the wire (either role) */
#define MUX_HOST_MTU 49152   /* largest packet the host sends */
#define MUX_DEVICE_MTU 16384 /* largest packet the simulated device sends */
#define MUX_MAX_CONNS 64
#define MUX_SENDQ_MAX (4u << 20)  /* per-connection unsent bytes cap */
#define MUX_DEFAULT_WINDOW 0x0200 /* th_win value: 0x200 << 8 = 128 KiB */
/* Packets waiting in the output queue (mux_out_take not yet called). Every
 * packet to a closed port is answered by RST and every data packet by an ACK,
 * so one 16 KiB IN transfer of 36-byte packets queues 455 answers; a peer
 * that floods us and does not take our packets would grow it without end.
 * Real traffic keeps a few packets queued (the data pump is bounded by the
 * peer's window). Over either cap the codec stops with LP_EPROTO. */
#define MUX_OUTQ_MAX_PACKETS 2048
#define MUX_OUTQ_MAX_BYTES (16u << 20)

enum mux_role { MUX_ROLE_HOST, MUX_ROLE_DEVICE };

enum mux_proto {
	MUX_PROTO_VERSION = 0,
	MUX_PROTO_CONTROL = 1,
	MUX_PROTO_SETUP = 2,
	MUX_PROTO_TCP = 6,
};

enum mux_tcp_flags {
	MUX_TH_FIN = 0x01,
	MUX_TH_SYN = 0x02,
	MUX_TH_RST = 0x04,
	MUX_TH_PSH = 0x08,
	MUX_TH_ACK = 0x10
};

/* Header size for a version (1 -> 8, 2 -> 16). */
static inline size_t mux_hdr_size(uint32_t version)
{
	return version >= 2 ? MUX_V2_HDR : MUX_V1_HDR;
}

/* A decoded packet, for the analyzer and tests (mux_decode). Borrowed pointers. */
struct mux_packet {
	uint32_t protocol;
	uint32_t length;
	bool v2;
	uint16_t tx_seq, rx_seq;
	uint32_t magic;
	/* TCP only */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t window;
	const uint8_t *payload;
	size_t payload_len;
};

/* Stateless decode of one whole packet. `hdr_version` 1 or 2 selects the
 * header; VERSION packets always use the 8-byte header. Returns 0, LP_ETRUNC
 * (buffer shorter than the header or the length field), LP_EBADMSG (length
 * field smaller than the header, unknown protocol, bad TCP data offset). */
int mux_decode(const uint8_t *buf, size_t len, uint32_t hdr_version, struct mux_packet *out);

/* Does one whole USB transfer hold exactly one whole usbmux packet, as a
 * sender makes them (doc/protocol.md 2.10)? For recognising the bulk
 * endpoints in a capture that holds neither descriptors nor the VERSION
 * exchange. `from_device`: the protocols legal that way (host: VERSION,
 * SETUP, TCP; device: VERSION, CONTROL, TCP). Checked: the length field
 * equals `len`; VERSION has the 8-byte header and its 12-byte body; other
 * packets the 16-byte header with 0xFEEDFACE at offset 8 (version 2) or the
 * 8-byte header without it (version 1); SETUP is version 2 with one byte;
 * TCP carries a 20-byte header with data offset 0x50 and only the flags
 * FIN, SYN, RST, PSH, ACK. Returns the header version (1 or 2; 1 for
 * VERSION), 0 when the bytes are not such a packet. *tx_seq (may be NULL)
 * gets a version-2 header's tx_seq. */
int mux_shape(const uint8_t *buf, size_t len, bool from_device, uint16_t *tx_seq);
/* The same for the first transfer of a TCP packet longer than it (a device
 * packet over the host's IN buffer, 2.10): the length field over `len`, at
 * most MUX_MAX_PACKET, the headers whole in `buf`. Returns the header
 * version and *length (may be NULL) the packet's length, or 0. */
int mux_shape_start(const uint8_t *buf, size_t len, bool from_device, uint32_t *length);

struct mux;

struct mux_cbs {
	/* host: VERSION reply accepted (major 1 or 2); device: VERSION request seen */
	void (*on_version)(void *ud, uint32_t major, uint32_t minor);
	/* host: connection `conn` to `port` is open (result 0) or refused
	 * (LP_ECONNREFUSED); on refusal the conn id is already forgotten */
	void (*on_connect)(void *ud, uint32_t conn, uint16_t port, int result);
	/* device: a SYN to a listening port was accepted as `conn` */
	void (*on_accept)(void *ud, uint32_t conn, uint16_t port);
	/* in-order payload bytes on `conn` (borrowed for the call) */
	void (*on_data)(void *ud, uint32_t conn, const uint8_t *data, size_t len);
	/* peer reset `conn` (or the codec tore it down: reason != 0); conn forgotten after */
	void (*on_close)(void *ud, uint32_t conn, int reason);
	/* CONTROL message from the device (host role) */
	void (*on_control)(void *ud, uint8_t type, const uint8_t *text, size_t len);
	/* something on the wire broke the protocol; the codec carried on */
	void (*on_anomaly)(void *ud, int err, const char *what);
};

struct mux_stats {
	uint64_t packets_in, packets_out, bytes_in, bytes_out;
	uint64_t syn, synack, rst_in, rst_out, anomalies, reassembled;
};

/* Create a codec. cbs and log borrowed (must outlive it); any callback may be
 * NULL. Returns NULL on allocation failure. */
struct mux *mux_new(enum mux_role role, const struct mux_cbs *cbs, void *ud,
		    const struct lp_log *log);
void mux_free(struct mux *m);

/* host: queue VERSION asking for `want_major` (2 normally; 1 to force v1). */
int mux_start(struct mux *m, uint32_t want_major);
/* device: which major to answer (default 2; 1 simulates an old device). */
void mux_set_device_version(struct mux *m, uint32_t major);
/* Negotiated major version (0 until VERSION completed). */
uint32_t mux_version(const struct mux *m);
bool mux_active(const struct mux *m); /* version done (and SETUP sent/seen for v2) */

/* Feed bytes of one completed USB transfer. `transfer_end` true when the
 * transfer was short (the device ended its transfer). Packets span calls
 * and transfers of any size, by the header's length (see struct mux_rx).
 * Returns 0, LP_ENOMEM, or LP_EPROTO once the output queue went over
 * MUX_OUTQ_MAX_PACKETS/BYTES (sticky: the codec is dead, mux_error() says so,
 * and every later feed, send or connect returns it). Malformed input is
 * reported through on_anomaly. */
int mux_feed(struct mux *m, const uint8_t *buf, size_t len, bool transfer_end);

/* Output: take the next packet to send (owned by the caller, free()). Returns
 * 0 with a packet, LP_EAGAIN if none is pending. */
int mux_out_take(struct mux *m, uint8_t **pkt, size_t *len);
bool mux_out_pending(const struct mux *m);
/* Packets and bytes waiting in the output queue. */
size_t mux_out_queued(const struct mux *m, size_t *bytes);
/* 0, or the sticky error that stopped the codec (LP_EPROTO: queue cap). */
int mux_error(const struct mux *m);
/* Bytes of an incoming packet held while its rest is awaited (0: none);
 * *announced (may be NULL) gets its header's length (0 while the header
 * itself is incomplete). */
size_t mux_partial(const struct mux *m, size_t *announced);

/* host: open a connection to device `port`; *conn receives its id. */
int mux_connect(struct mux *m, uint16_t port, uint32_t *conn);
/* device: accept SYNs to `port`. */
int mux_listen(struct mux *m, uint16_t port);
void mux_unlisten(struct mux *m, uint16_t port);
/* Queue payload on an open connection; it is sent as the peer's window
 * allows, in packets of at most the role's MTU. LP_ETOOBIG if the send queue
 * cap would be exceeded, LP_ENOENT for an unknown conn. */
int mux_send(struct mux *m, uint32_t conn, const uint8_t *data, size_t len);
/* Bytes queued but not yet sent (waiting for window). */
size_t mux_unsent(const struct mux *m, uint32_t conn);
/* Reset (close) a connection; sends RST. */
int mux_close(struct mux *m, uint32_t conn);
/* The connection's service port - the device's port: the peer port on the
 * host, the local (listening) port on the device (0 if unknown). */
uint16_t mux_conn_port(const struct mux *m, uint32_t conn);

void mux_get_stats(const struct mux *m, struct mux_stats *st);

/* Additions (compatible):
 * Largest packet this codec sends, header included (default: the role's MTU).
 * Host: up to MUX_HOST_MTU; device: up to MUX_MAX_PACKET (a device that sends
 * packets larger than the host's 16384-byte IN buffers). LP_EINVAL otherwise. */
int mux_set_mtu(struct mux *m, size_t mtu);
/* Both ports of a connection whatever the role: the host's (local on the host)
 * and the device's (service) port. LP_ENOENT for an unknown conn. */
int mux_conn_ports(const struct mux *m, uint32_t conn, uint16_t *host_port, uint16_t *dev_port);
/* device: queue a CONTROL message (type byte + text, borrowed). LP_EINVAL
 * unless device role and active. */
int mux_send_control(struct mux *m, uint8_t type, const uint8_t *text, size_t len);

/* --- Reassembly of one direction (used by the codec and the capture reader) ---
 *
 * Bytes of completed USB transfers go in; whole packets come out. A packet
 * spans transfers by its header's length, whatever their sizes: longer than
 * the host's IN buffer, or a sender that ends its transfers in the middle of
 * a packet (short transfers of any size - real devices were seen doing it);
 * a transfer may hold several packets (a sender that forgot a ZLP:
 * reported). The length field is checked before anything is allocated.
 *
 * A transfer that ends inside a packet is decided by the next one: if its
 * first bytes plainly start a packet of their own (a known protocol, a length
 * in range, and the magic with 16-byte headers) the held packet was cut
 * short by its sender: reported (LP_ETRUNC, the announced length and the
 * bytes dropped) and the new packet read; otherwise they continue it.
 *
 * Bad length policy (one for every reader of usbmux bytes): a length field
 * over MUX_MAX_PACKET (LP_ETOOBIG) or under the header size (LP_EBADMSG) is
 * reported through on_problem with the field's value and the bytes dropped
 * (from that header to the end of the bytes fed); then nothing more is taken
 * from the sender's current transfer: bytes are skipped up to and including
 * the next call with transfer_end, and the byte after that transfer's end is
 * read as the start of a packet (a sender starts each packet at a transfer
 * boundary, so this is where the stream resynchronises). A lying length that
 * is in range but wrong: too short cuts the packet (what follows in the
 * transfer is read as the next header, usually caught by this check or by
 * mux_decode); too long takes the rest of its transfer as body and waits
 * for the next transfer: one that starts a packet ends it as above
 * (LP_ETRUNC); a sender that sends nothing more leaves it held
 * (mux_rx_pending; the host link reports that as a protocol error when its
 * wait runs out). */
struct mux_rx {
	uint32_t hdr_version; /* set by the owner: 0/1 -> 8-byte header, 2 -> 16 */
	/* private */
	uint8_t hdr[8];
	size_t have;
	uint8_t *buf;
	size_t len, got;
	bool skip;
	bool cut; /* a transfer ended inside the held packet */
};

struct mux_rx_cbs {
	/* a whole packet (borrowed for the call); spanned: it came in pieces */
	void (*on_packet)(void *ud, const uint8_t *pkt, size_t len, bool spanned);
	/* LP_ETOOBIG / LP_EBADMSG: bad length field `length`, `dropped` bytes
	 * skipped; LP_ETRUNC: a packet announced as `length` bytes (0: its
	 * header was incomplete) was cut after `dropped` bytes by the next
	 * transfer starting a new packet; LP_EPROTO: several packets in one transfer (all decoded).
	 * May be NULL. */
	void (*on_problem)(void *ud, int err, uint32_t length, size_t dropped);
};

/* `rx` zeroed by the caller before the first call. transfer_end: this is the
 * end of the sender's transfer (a short transfer, or any host OUT transfer).
 * 0 or LP_ENOMEM (the packet is lost, the rest of the transfer skipped). */
int mux_rx_feed(struct mux_rx *rx, const uint8_t *buf, size_t len, bool transfer_end,
		const struct mux_rx_cbs *cb, void *ud);
/* Bytes of an incomplete packet held, and its header's length (0 while
 * the header is incomplete). */
size_t mux_rx_pending(const struct mux_rx *rx);
size_t mux_rx_announced(const struct mux_rx *rx);
/* Drop what is held and any skip (a capture record was clipped); frees. */
void mux_rx_reset(struct mux_rx *rx);

#endif
