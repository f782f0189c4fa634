/* reader_int.h - private state of the capture reader (reader*.c only).
 *
 * struct cap_reader owns everything: enumerations (struct rd_usb, which
 * embeds the public struct cap_usbdev), their mux connections (struct
 * rd_conn embedding struct cap_conn), TCP flows, and the outstanding-URB
 * table. Lockdown framing (struct rd_lkd) hangs off a connection to port
 * 62078, USB or relayed alike.
 */
#ifndef LP_CAP_READER_INT_H
#define LP_CAP_READER_INT_H

#include "src/capture/reader.h"
#include "proto/lockdown_frame.h"
#include "proto/mux.h"
#include "src/capture/usbll.h"

struct rd_tls_dir {
	bool on; /* this direction is in TLS now */
	uint8_t hdr[5];
	size_t have, left;
	bool app; /* application data went this way */
	bool broken;
};

/* Lockdown on one connection: framing per direction outside session TLS. */
struct rd_lkd {
	struct lkd_framer *fr[2]; /* 0 host->device, 1 device->host */
	bool dead[2];
	bool ssl_expected;     /* StartSession answered with EnableSessionSSL */
	bool alerted;	       /* a TLS alert (close_notify) went either way */
	unsigned unanswered;   /* host messages not yet answered (plaintext) */
	char last_request[32]; /* Request of the last host message */
	struct rd_tls_dir t[2];
	struct lkd_view view[2]; /* with opts.lockdown_keys: the last message each way */
};

struct rd_conn {
	struct cap_conn pub;
	bool used;
	bool orphan; /* its start is not in the capture: framing may begin mid-message */
	struct rd_lkd *lkd;
};

/* usbmux recognised by the packets' shape (reader_usb.c): the run so far
 * and the candidates kept until the endpoints are known. */
#define RD_SHAPE_OUT 3		   /* host packets in a row on one OUT endpoint */
#define RD_SHAPE_IN 2		   /* device packets in a row on one IN endpoint */
#define RD_SHAPE_KEEP 16	   /* candidate transfers kept */
#define RD_SHAPE_KEEP_BYTES 65536u /* ... and their bytes */
struct rd_shape_rec {
	uint64_t t, pkt;
	int dir;
	bool end;
	uint8_t *data;
	size_t len;
};
struct rd_shape {
	uint8_t ep[2];	   /* candidate endpoint per direction (0 OUT, 1 IN) */
	unsigned run[2];   /* whole usbmux packets in a row on it */
	int ver;	   /* their header version */
	uint16_t next_seq; /* v2: the host's next tx_seq */
	uint32_t cont;	   /* bytes of a device packet still to come on ep[1] */
	struct rd_shape_rec q[RD_SHAPE_KEEP];
	size_t nq, bytes;
	uint64_t lost[2]; /* candidates of the run not kept (over the caps) */
};

struct rd_usb {
	struct cap_usbdev pub;
	bool eps_from_desc;
	struct rd_shape *shape; /* while the endpoints are unknown and candidates seen */
	bool ver_guess_noted;
	bool conn_overflow_noted;
	bool clipped;	     /* a record of it was clipped: its streams may have lost bytes */
	struct mux_rx rx[2]; /* 0 host->device (OUT), 1 device->host (IN) */
	bool in_unlinked; /* the last usbmux IN transfer was cancelled: the host stopped reading */
	struct rd_conn conns[CAP_RD_MAX_CONNS];
};

struct rd_pending {
	bool used;
	uint64_t id;
	uint16_t bus;
	uint8_t addr, xfer, ep;
	uint64_t t;
	uint32_t len; /* UINT32_MAX unknown */
	uint8_t setup[8];
	bool have_setup;
};

/* One URB record from any USB link type, normalized to usbmon's view. */
struct rd_urb {
	uint64_t t, pkt;
	uint64_t id;
	char type;    /* 'S', 'C', 'E' */
	uint8_t xfer; /* 0 iso, 1 interrupt, 2 control, 3 bulk */
	uint8_t ep;   /* bit 7 = IN */
	uint16_t bus;
	uint8_t addr;
	int32_t status; /* Linux errno form */
	uint32_t len;	/* S: requested; C: actual */
	bool len_known; /* USBPcap IN submits carry no length */
	bool have_setup;
	uint8_t setup[8];
	const uint8_t *data;
	size_t data_len;
	bool clipped;
	double speed_mbps; /* named by the record (USB_DARWIN), 0 unknown */
};

struct rd_flow;

struct cap_reader {
	struct cap_reader_opts o;
	/* the lockdown root keys viewed: the consumer's and the reader's own
	 * (lkd_keys[0] NULL: no view, whole dictionaries) */
	const char *lkd_keys[LKD_TOP_KEYS_MAX + 1];
	cap_event_fn fn;
	void *ud;
	bool stop;
	int linktype;
	uint64_t packets, cur_pkt, cur_t;
	uint64_t t_first_abs, t_last;
	bool have_first, backwards_noted;
	/* USB */
	struct rd_usb *usb[CAP_RD_MAX_USB];
	size_t nusb;
	bool usb_overflow_noted;
	struct rd_pending pend[CAP_RD_PENDING];
	bool swapped_noted, usbmon_swapped;
	/* TCP */
	struct rd_flow *flows[CAP_RD_MAX_FLOWS];
	size_t nflows;
	bool flow_overflow_noted;
	unsigned tcp_gaps_listed;
	uint64_t tcp_segments, umx_flows, umx_messages;
	/* bus-level captures (reader_bus.c) */
	struct usbll *bus;
	uint64_t bus_id;
	/* pcapng IDBs (reader_idb.c): the stream libpcap reads, while open */
	struct rd_idb_scan *idb;
	int iface_lt[CAP_RD_IFACES]; /* link type of each IDB, in order */
	size_t nifaces;		     /* IDBs seen (may exceed CAP_RD_IFACES) */
	char read_err[160];	     /* libpcap's words when it gave up, "" none */
	size_t cur_wire_len;	     /* the current record's length on the wire (pcap len) */
};

/* reader.c */
void rd_emit(struct cap_reader *r, struct cap_event *ev);
void rd_anomaly(struct cap_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An anomaly of kind `k` about enumeration `u` / connection `c` (either
 * may be NULL); rd_anomaly is CAP_AK_CAPTURE about nothing in particular. */
void rd_anomaly_of(struct cap_reader *r, enum cap_anomaly_kind k, struct cap_usbdev *u,
		   struct cap_conn *c, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* A connection's state changed: emit CAP_EV_CONN; `ended` frees its lockdown. */
void rd_conn_event(struct cap_reader *r, struct rd_conn *c, enum cap_conn_state st, uint64_t t,
		   bool ended);

/* reader_urb.c: records -> URB records (0; LP_EAGAIN: nothing to do; else an
 * anomaly was reported), and the submit/completion pairing */
int rd_usbmon_record(struct cap_reader *r, uint64_t t, const uint8_t *buf, size_t caplen,
		     struct rd_urb *x);
int rd_usbpcap_record(struct cap_reader *r, uint64_t t, const uint8_t *buf, size_t caplen,
		      struct rd_urb *x);
int rd_darwin_record(struct cap_reader *r, uint64_t t, const uint8_t *buf, size_t caplen,
		     struct rd_urb *x);
void rd_pend_put(struct cap_reader *r, const struct rd_urb *u);
bool rd_pend_take(struct cap_reader *r, const struct rd_urb *u, struct rd_pending *out);
/* The table's slot for an URB (hashed, probed from there). */
static inline size_t rd_pend_home(uint64_t id, uint16_t bus, uint8_t addr)
{
	uint64_t h = id ^ ((uint64_t)bus << 48) ^ ((uint64_t)addr << 56);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (size_t)(h % CAP_RD_PENDING);
}
/* The slots are a cache miss each (5 % of analyzing a lockdown-heavy
 * capture): start loading u's home slot early. */
static inline void rd_pend_prefetch(const struct cap_reader *r, const struct rd_urb *u)
{
	__builtin_prefetch(&r->pend[rd_pend_home(u->id, u->bus, u->addr)]);
}

/* reader_idb.c: pcapng IDB descriptions -> CAP_EV_INTERFACE, as the bytes
 * pass. rd_idb_stream(): a stream reading f (adopted: fclose() of the stream
 * closes it) that reports the IDBs it passes; NULL when out of memory.
 * rd_idb_drain(): libpcap stopped early (a read error): walk the rest of the
 * file for IDBs too, as a scan of the whole file did. */
struct rd_idb_scan;
FILE *rd_idb_stream(struct cap_reader *r, FILE *f);
void rd_idb_drain(struct cap_reader *r);

/* reader_usb.c */
int rd_usb_record(struct cap_reader *r, const uint8_t *buf, size_t caplen);
void rd_usb_finish(struct cap_reader *r);
bool rd_usb_mid_exchange(struct cap_reader *r, const char **request);
void rd_usb_free(struct rd_usb *u);

/* reader_lkd.c */
struct rd_lkd *rd_lkd_new(const struct cap_reader *r);
void rd_lkd_free(struct rd_lkd *l);
/* Payload bytes of a lockdown connection, dir 0 host -> device. */
void rd_lkd_feed(struct cap_reader *r, struct rd_conn *c, int dir, const uint8_t *buf, size_t len);

/* reader_bus.c: link types 288, 293-295 (r->linktype set) */
int rd_bus_begin(struct cap_reader *r);
void rd_bus_record(struct cap_reader *r, const uint8_t *buf, size_t caplen, size_t wirelen);
void rd_bus_finish(struct cap_reader *r);

/* reader_tcp.c */
int rd_ip_packet(struct cap_reader *r, const uint8_t *buf, size_t caplen);
void rd_tcp_finish(struct cap_reader *r);
bool rd_tcp_mid_exchange(struct cap_reader *r, const char **request);
void rd_flow_free(struct rd_flow *f);

#endif
