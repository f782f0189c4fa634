/* reader.h - the one capture reader: a pcap/pcapng file in, protocol events
 * out, for the analyzer and the replay loader (and any later consumer).
 *
 * Input, read through libpcap at nanosecond precision. Link types:
 *   220 / 189  Linux usbmon (64- / 48-byte header)
 *   249        USBPcap (Windows)
 *   288, 293-295  USB 2.0 packets from a bus analyzer: src/capture/usbll.c
 *              makes them transfers, which enter the USB layers below
 *              (reader_bus.c)
 *   0, 1, 12/101/14, 108, 113, 228, 229, 276  (loopback, Ethernet, raw IP,
 *              Linux cooked): IPv4/IPv6 TCP carrying a relayed usbmuxd
 *              socket (socat style)
 *
 * Layers, each feeding the next:
 *   records -> transfers (submit paired with completion by URB/IRP id)
 *     -> enumerations (bus, address: descriptors, selected configuration,
 *        the usbmux endpoints - from the descriptors, a VERSION packet, or
 *        the packets' shape when the capture started mid-session:
 *        doc/protocol.md 6.4) -> control exchanges
 *     -> usbmux packets per direction (proto/mux.h struct mux_rx: the one
 *        reassembly and bad-length policy) -> mux connections
 *   TCP segments -> flows -> usbmuxd messages (proto/usbmuxd_codec.h
 *     codec) -> relayed connections (after a Connect answered 0)
 *   connections to port 62078 -> lockdown messages per direction
 *     (proto/lockdown_frame.h), the switch to session TLS and TLS record
 *     headers (the reader never decrypts).
 *
 * Sans-I/O above libpcap: cap_reader_run() reads the file and calls one
 * callback per event, in capture order (one exception: the usbmux events of
 * the few transfers that let the reader recognise usbmux by its shape come
 * when it is recognised, a few packets late, each with its own packet number
 * and time); cap_reader_transfer() lets any other
 * source of completed transfers (a bus-level wire decoder, a test) drive the
 * same layers. Nothing is kept per packet: per enumeration, per connection
 * and per direction state only, all under named caps.
 *
 * Malformed input is data: every problem is a CAP_EV_ANOMALY event naming the
 * packet number; only a file libpcap cannot open or an unsupported link type
 * is an error.
 *
 * Reference: doc/protocol.md (usbmux, lockdown, usbmuxd, usbmon); Linux
 * usbmon.rst; USBPcap capture format (desowin.org/usbpcap/captureformat.html).
 */
#ifndef LP_CAP_READER_H
#define LP_CAP_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <plist/plist.h>

struct lkd_view;

#include "src/base/lp_error.h"
#include "src/capture/usbll.h"
#include "usb/usb_desc.h"

/* Named caps (checked before allocation / on insertion). */
#define CAP_RD_MAX_USB 64		     /* enumerations (bus, address) */
#define CAP_RD_PENDING 2048		     /* outstanding URBs tracked (hash slots) */
#define CAP_RD_MAX_CONNS 64		     /* open mux connections per enumeration */
#define CAP_RD_STRINGS 16		     /* string descriptors kept per enumeration */
#define CAP_RD_GAP_NS (5ull * 1000000000ull) /* a silence this long is a gap */
#define CAP_RD_TLS_RECORD_MAX 18432u	     /* 2^14 + 2048: largest TLS ciphertext record */
#define CAP_RD_MAX_FLOWS 64		     /* TCP flows tracked */
#define CAP_RD_IOBUF (256u << 10)	     /* stdio buffer of the capture file */
#define CAP_RD_UMX_MSG_MAX (1u << 20)	     /* largest usbmuxd message followed */

#define CAP_RD_IFACES 16 /* pcapng interface link types kept */

#define CAP_LINKTYPE_USBPCAP 249
#define CAP_LINKTYPE_USB_DARWIN 266 /* macOS (Wireshark on an XHCnn interface) */

/* One enumeration: a device at (bus, address) until it leaves the bus (an
 * address reused after that is a new enumeration). Read-only for consumers,
 * except `user`. */
struct cap_usbdev {
	unsigned index; /* 0-based, in order of appearance */
	uint16_t bus;
	uint8_t addr;
	uint64_t first_t, last_t;
	bool gone; /* a transfer ended -19/-108 */
	struct usbd_device dd;
	bool have_dd;
	struct usbd_config cfg[USBD_MAX_CONFIGS];
	unsigned ncfg;
	bool have_bos; /* the BOS descriptor set was read (USB 2.1+, 3.x) */
	struct usbd_bos bos;
	char str[CAP_RD_STRINGS][80]; /* string descriptors (sanitized), "" unread */
	int sel_config;		      /* SET_CONFIGURATION value, -1 none seen */
	uint8_t ep_in, ep_out;	      /* usbmux bulk endpoints, 0 unknown */
	uint16_t mps;
	bool eps_known;		       /* ... taken from a configuration descriptor: */
	uint8_t mux_config, mux_iface; /* its bConfigurationValue, interface number */
	uint32_t mux_version;	       /* header version in use: 0 until VERSION (or guessed) */
	/* ep_in/ep_out recognised from the usbmux packets themselves: no
	 * descriptors and no VERSION in the capture (it started after the
	 * device was plugged in and the host's usbmux was up) */
	bool mux_by_shape;
	double speed_mbps; /* when the records themselves name it (USB_DARWIN), else 0 */
	void *user;	   /* the consumer's */
};

enum cap_conn_state {
	CAP_CONN_SYN,	     /* host asked, no answer yet */
	CAP_CONN_OPEN,	     /* accepted */
	CAP_CONN_REFUSED,    /* device answered the SYN with RST / usbmuxd Connect failed */
	CAP_CONN_RESET_HOST, /* closed by the host (RST, relay: FIN/RST of the socket) */
	CAP_CONN_RESET_DEV,  /* reset by the device, or the device left */
	CAP_CONN_ORPHAN,     /* open before the capture started */
};

/* A mux connection, or a relayed usbmuxd socket after Connect. Read-only for
 * consumers, except `user`. Dir 0 is host -> device, 1 device -> host. */
struct cap_conn {
	bool relay;		/* through usbmuxd (TCP capture) */
	uint32_t umx_device;	/* relay: usbmuxd DeviceID */
	struct cap_usbdev *usb; /* USB: its enumeration */
	uint16_t hport, dport;	/* USB: host and device port; relay: 0 and the device port */
	enum cap_conn_state state;
	uint64_t t_syn, t_open, t_close;
	uint64_t bytes[2], packets[2];
	bool lockdown;	 /* to port 62078: lockdown events follow */
	bool tls;	 /* lockdown: session TLS started (it may have ended since: plaintext
			  * lockdown can follow StopSession on the same connection) */
	bool tls_dev_hs; /* lockdown: the device sent a TLS handshake record */
	bool ended;	 /* this CAP_EV_CONN is its last (closed, replaced, or the capture ends) */
	uint32_t umx_result; /* relay, REFUSED: the usbmuxd result number */
	void *user;
};

enum cap_ev_type {
	CAP_EV_INTERFACE,  /* a pcapng interface description: before the packets after it
			    * (the file is read ahead, up to CAP_RD_IOBUF: maybe before some
			    * packets ahead of it too) */
	CAP_EV_GAP,	   /* gap_ns of silence before this packet (>= CAP_RD_GAP_NS) */
	CAP_EV_ANOMALY,	   /* text: what is wrong with the input, "packet N: ...";
			    * anomaly_kind: whose doing (usb / conn: whose device) */
	CAP_EV_USB_NEW,	   /* usb: a new enumeration */
	CAP_EV_TRANSFER,   /* usb: a URB record (submit, completion, submit error) */
	CAP_EV_CONTROL,	   /* usb: a control exchange completed (setup, data, status) */
	CAP_EV_DISCONNECT, /* usb: the enumeration left the bus (first -19/-108; x: that transfer) */
	CAP_EV_MUX,	   /* usb: one whole usbmux packet, dir */
	CAP_EV_CONN,	   /* conn: changed state (conn->state; also when first seen) */
	CAP_EV_DATA,	   /* conn: payload bytes, dir */
	CAP_EV_LOCKDOWN,   /* conn: one lockdown message (a plist dict), dir */
	CAP_EV_TLS_START,  /* conn: the host's first TLS record after EnableSessionSSL */
	CAP_EV_TLS_RECORD, /* conn: a TLS record header, dir, tls_type */
	CAP_EV_UMX,	   /* relay: one usbmuxd message decoded into a dict, from_client */
	CAP_EV_END,	   /* the capture ends (conns still open got CAP_EV_CONN first) */
};

/* Whose doing an anomaly is. Only CAP_AK_DEVICE says the device broke
 * usbmux or lockdown; the others are notes about the host's side or the
 * file, which no verdict about the device or the cable may rest on. */
enum cap_anomaly_kind {
	CAP_AK_CAPTURE = 0, /* the file: records clipped or cut, timestamps going back,
			     * records skipped, a cap reached, an exchange not in it */
	CAP_AK_HOST,	    /* the host (or usbmuxd) broke the protocol */
	CAP_AK_DEVICE,	    /* the device broke the protocol: ev.usb or ev.conn names it */
	CAP_AK_INFO,	    /* allowed but worth a note (a usbmux CONTROL message) */
};

/* How a transfer ended, from its status (usbmon's Linux errno form). */
enum cap_outcome {
	CAP_XO_OK,	  /* 0, -EREMOTEIO (short), -EINPROGRESS (a submit) */
	CAP_XO_CANCELLED, /* -ENOENT, -ECONNRESET: the host cancelled it */
	CAP_XO_GONE,	  /* -ENODEV, -ESHUTDOWN: the device left the bus */
	CAP_XO_STALL,	  /* -EPIPE */
	CAP_XO_TIMEOUT,	  /* -ETIME, -ETIMEDOUT: no response */
	CAP_XO_ERROR,	  /* anything else: -EPROTO, -EILSEQ, -EOVERFLOW, ... */
};
enum cap_outcome cap_outcome_of(int32_t status);

struct cap_transfer {
	char type;		  /* 'S' submit, 'C' completion, 'E' submit error */
	enum cap_outcome outcome; /* set by the reader */
	uint8_t xfer;		  /* 0 iso, 1 interrupt, 2 control, 3 bulk */
	uint8_t ep;		  /* bit 7 = IN */
	int32_t status;		  /* Linux errno form (USBPcap USBD_STATUS mapped) */
	uint32_t len;		  /* S: requested; C: actual */
	bool len_known;		  /* USBPcap IN submits carry no length */
	bool short_end;		  /* C: actual < requested (the sender's transfer ended) */
	const uint8_t *data;	  /* borrowed for the event */
	size_t data_len;
	bool clipped; /* fewer bytes captured than transferred */
};

struct cap_control {
	uint8_t setup[8];
	uint64_t t_submit;
	int32_t status;
	const uint8_t *data; /* IN data stage, borrowed */
	size_t data_len;
	bool parsed; /* a GET_DESCRIPTOR reply decoded into usb (dd, cfg, str) */
};

struct cap_event {
	enum cap_ev_type type;
	uint64_t t;   /* ns since the first packet */
	uint64_t pkt; /* 1-based record number */
	struct cap_usbdev *usb;
	struct cap_conn *conn;
	int dir;
	union {
		uint64_t gap_ns;
		struct {
			const char *description; /* sanitized, borrowed for the event */
			double speed_mbps;	 /* from "(480 Mb/s)", 0 unknown */
			int bus, addr;		 /* from "bus B device D", -1 unknown */
		} iface;
		const char *text;
		struct cap_transfer x;
		struct cap_control ctrl;
		struct {
			uint32_t protocol; /* enum mux_proto */
			bool ok;	   /* decoded (else an anomaly follows/preceded) */
			bool guessed;	   /* header version guessed (no VERSION seen) */
			uint32_t major;	   /* VERSION: the major in it (0 malformed) */
			size_t payload_len;
		} mux;
		plist_t msg; /* LOCKDOWN: borrowed for the event */
		/* LOCKDOWN with opts.lockdown_keys: the view of those keys
		 * (proto/lockdown_frame.h), borrowed for the event */
		const struct lkd_view *view;
		struct {
			plist_t msg;	     /* borrowed for the event */
			const char *answers; /* daemon: the client request it answers
						("Connect", "ReadPairRecord"), or NULL */
		} umx;
		uint8_t tls_type;
		struct {
			bool read_error; /* libpcap gave up before the end of the file */
			/* the capture stops inside an exchange: a control transfer or a
			 * mux SYN unanswered, a usbmux packet incomplete, or a lockdown
			 * request unanswered (pending_request names the last such) */
			bool mid_exchange;
			const char *pending_request; /* borrowed for the event, or NULL */
			uint64_t packets;
			uint64_t tcp_segments, umx_flows, umx_messages; /* IP captures */
		} end;
	} u;
	bool from_client;		    /* UMX */
	enum cap_anomaly_kind anomaly_kind; /* ANOMALY */
};

/* Return false to stop reading (cap_reader_run then returns 0). */
typedef bool (*cap_event_fn)(void *ud, const struct cap_event *ev);

struct cap_reader_opts {
	int usbmuxd_port; /* TCP port of a relayed usbmuxd socket; 0 = detect by shape */
	/* the root keys the consumer looks up in lockdown messages
	 * (NULL-terminated, borrowed for the reader's life): CAP_EV_LOCKDOWN
	 * then carries u.view, a view of those keys without a libplist
	 * dictionary (lkd_framer_next_view), instead of u.msg. NULL: u.msg */
	const char *const *lockdown_keys;
};

struct cap_reader;

/* New reader; opts borrowed (may be NULL); fn/ud receive every event.
 * NULL on allocation failure. */
struct cap_reader *cap_reader_new(const struct cap_reader_opts *opts, cap_event_fn fn, void *ud);
void cap_reader_free(struct cap_reader *r);

/* Read all of `f` (adopted: closed in every case). 0; LP_EIO (libpcap cannot
 * open it: detail says why); LP_EFORMAT (a link type not listed above:
 * detail names it). A read error in the middle of the file is an anomaly
 * and CAP_EV_END says so. */
int cap_reader_run(struct cap_reader *r, FILE *f, struct lp_errinfo *e);

/* pcapng: the link type of each Interface Description Block seen, in order
 * (up to `max` written to `lt`); returns how many IDBs there were. libpcap
 * refuses a file whose interfaces differ in link type. */
size_t cap_reader_iface_linktypes(const struct cap_reader *r, int *lt, size_t max);
/* Why libpcap gave up reading (after a CAP_EV_END with read_error), "" if
 * it did not. Borrowed until cap_reader_free. */
const char *cap_reader_read_error(const struct cap_reader *r);

/* Link type of the file read (after cap_reader_run), and whether it is USB. */
int cap_reader_linktype(const struct cap_reader *r);
bool cap_linktype_is_usb(int lt);
bool cap_linktype_is_ip(int lt);
/* USB 2.0 packets (288, 293-295). */
bool cap_linktype_is_bus(int lt);
/* Bus-level captures: what only the wire shows (CRC failures, garbage,
 * retries, timeouts, NAKs per endpoint, SOFs, resets; valid until
 * cap_reader_free) and the bus speed; NULL for other link types. */
const struct usbll_stats *cap_reader_bus_stats(const struct cap_reader *r, enum tr_speed *speed);

/* Another source of transfers (a bus-level decoder, a test): set the time
 * base once, then feed records as usbmon would have shown them, in capture
 * order, then cap_reader_finish(). `x` borrowed. `id` pairs a submit with its
 * completion (any value unique while outstanding); `setup` for a control
 * submit (else NULL). */
void cap_reader_begin(struct cap_reader *r, int linktype);
void cap_reader_transfer(struct cap_reader *r, uint64_t t, uint64_t pkt, uint64_t id, uint16_t bus,
			 uint8_t addr, const uint8_t *setup, const struct cap_transfer *x);
void cap_reader_finish(struct cap_reader *r, bool read_error);

#endif
