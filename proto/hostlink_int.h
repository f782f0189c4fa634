/* hostlink_int.h - private to proto/hostlink*.c: the link, its transfers
 * and its connections, and what hostlink.c (transfers, waits, open/close)
 * and hostlink_conn.c (mux callbacks, connections, streams) call of each
 * other. Not an API: see hostlink.h. */
#ifndef LP_HOSTLINK_INT_H
#define LP_HOSTLINK_INT_H

#include "proto/hostlink.h"
#include "src/base/lp_log.h"

#define HL_SEND_CHUNK (256u << 10)
#define HL_CLOSE_FLUSH_MS 100

enum hl_conn_state { HL_CONNECTING, HL_OPEN, HL_REFUSED, HL_CLOSED };

struct hl_conn {
	struct lp_stream s;
	struct hl_link *hl; /* NULL once the link is gone */
	struct hl_conn *next;
	uint32_t id;
	uint16_t sport, dport;
	enum hl_conn_state state;
	int reason; /* why closed: 0 = peer RST */
	uint8_t *rx;
	size_t rxhead, rxlen, rxcap;
};

struct hl_tx {
	struct tr_xfer x;
	struct hl_link *hl;
	struct hl_tx *prev, *next;
	uint8_t *pkt;
	bool zlp;
};

struct hl_rx {
	struct tr_xfer x;
	struct hl_link *hl;
	uint8_t buf[HL_RX_SIZE];
	bool live;
};

struct hl_link {
	struct tr_ctx *ctx;
	struct tr_dev *dev;
	const struct lp_log *log;
	struct usbd_probe probe;
	bool claimed;
	struct mux *mux;
	struct mux_cbs cbs;
	struct hl_rx rx[HL_NUM_RX];
	unsigned rx_errors_in_row;
	struct hl_tx *tx_head;
	size_t tx_inflight;
	uint64_t
		tx_wait_since; /* the last OUT completion, or the submit that ended an idle spell */
	struct hl_conn *conns;
	bool dead, closing;
	int pending_err; /* transfer error to report once */
	int fatal_err;	 /* the IN loops gave up */
	struct hl_stats st;
	hl_stream_observer_fn obs;
	void *obs_ud;
	/* the last usbmux anomaly that lost bytes (a bad length, a packet cut
	 * short, a sequence gap): evidence when a wait then runs out; and the
	 * first one, usually the cause of those after it */
	int anomaly_err;
	char anomaly[160], anomaly_first[160];
	char why[LP_ERRINFO_MSG]; /* the evidence of the last LP_EPROTO hl_wait returned */
};

/* The evidence for an LP_EPROTO a connection or wait returned: hl->why
 * when the wait set it, else the usbmux anomalies that broke the stream (a
 * connection aborted for data out of sequence after a lying length),
 * written into hl->why; lp_strerror's words when there were none. */
const char *hl_proto_evidence(struct hl_link *hl);

static inline uint64_t hl_now(const struct hl_link *hl)
{
	return lp_clock_now(hl->ctx->env.clock);
}

/* hostlink.c */
/* Hand every queued mux packet to the transport. */
int hl_flush(struct hl_link *hl);
/* The link's current failure, if any (transfer errors reported once). */
int hl_status(struct hl_link *hl);
/* Run events until cond(arg) holds, the link fails, or the deadline. A
 * deadline reached while a usbmux packet is held in part, or after the
 * device broke usbmux framing, is LP_EPROTO (hl->why says what), not a
 * timeout: the device broke the stream; the cable is not to blame. */
int hl_wait(struct hl_link *hl, uint64_t deadline, bool (*cond)(void *), void *arg);

/* hostlink_conn.c */
/* The mux callbacks of the host role (connections, data, CONTROL, anomalies). */
void hl_conns_init_cbs(struct mux_cbs *cbs);
/* Close every connection (polite RST unless the device is gone) and detach
 * their streams: their calls return LP_ENODEV from now on. */
void hl_conns_close_all(struct hl_link *hl);

#endif
