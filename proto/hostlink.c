/* hostlink.c - host side of a usbmux link over a transport device: descriptor
 * probe with timings, configuration/claim, bulk IN loops, VERSION/SETUP, and
 * blocking deadline-bounded streams over mux connections (see hostlink.h).
 *
 * Reference: doc/protocol.md. 1.4: the usbmux interface
 * is ff/fe/02 with one bulk IN and one bulk OUT; usbmuxd prefers the highest
 * configuration that has it (we keep the active one if it already has it, to
 * avoid a needless SET_CONFIGURATION). 1.6: three 16384-byte IN transfers in
 * flight, resubmitted from the callback; each OUT packet is one transfer,
 * followed by a zero-length transfer when its length is a multiple of
 * wMaxPacketSize. 1.7: string 0 for the LANGID, then the strings; 1000 ms per
 * control transfer. 1.9: NO_DEVICE ends the link (usbmuxd drops the device on
 * any error; we count other errors and keep going, so a cable test can measure
 * them, but give up on an IN loop after HL_MAX_RX_ERRORS failures in a row so a
 * stalled endpoint cannot spin). 2.3/2.4: VERSION then SETUP, done by mux.c.
 *
 * Memory: every OUT transfer is heap-allocated with its packet and kept on a
 * list until it completes, so hl_close() can free what the transport never
 * gave back. Streams point at the link; hl_close() detaches them, after which
 * their calls return LP_ENODEV and lp_stream_close() just frees them.
 */
#include "proto/hostlink.h"

#include <openssl/crypto.h>

#include <stdlib.h>
#include <string.h>

#include "src/base/lp_cursor.h"
#include "src/base/lp_log.h"
#include "src/base/lp_str.h"

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
	struct hl_conn *conns;
	bool dead, closing;
	int pending_err; /* transfer error to report once */
	int fatal_err;	 /* the IN loops gave up */
	struct hl_stats st;
	hl_stream_observer_fn obs;
	void *obs_ud;
};

static uint64_t hl_now(const struct hl_link *hl)
{
	return lp_clock_now(hl->ctx->env.clock);
}

/* ---------------------------------------------------------------------------
 * Transfers
 */

static void hl_note_error(struct hl_link *hl, const struct tr_xfer *x)
{
	int err = tr_status_to_err(x->status);

	if (x->status == TR_STATUS_NO_DEVICE) {
		if (!hl->dead)
			lp_logf(hl->log, LP_LOG_WARN, "hostlink: device gone (transfer %llu)",
				(unsigned long long)x->id);
		hl->dead = true;
		return;
	}
	if (x->status == TR_STATUS_CANCELLED)
		return;
	hl->st.errors++;
	hl->st.last_error = err;
	hl->pending_err = err;
	lp_logf(hl->log, LP_LOG_WARN, "hostlink: %s transfer %llu on ep 0x%02x ended %s",
		(x->endpoint & 0x80) ? "IN" : "OUT", (unsigned long long)x->id, x->endpoint,
		tr_status_name(x->status));
}

static void hl_tx_free(struct hl_link *hl, struct hl_tx *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		hl->tx_head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	if (t->pkt)
		OPENSSL_cleanse(t->pkt, t->x.len); /* plaintext lockdown requests */
	free(t->pkt);
	free(t);
}

static void hl_tx_done(struct tr_xfer *x)
{
	struct hl_tx *t = x->user;
	struct hl_link *hl = t->hl;

	hl->tx_inflight--;
	if (x->status == TR_STATUS_COMPLETED) {
		if (t->zlp)
			hl->st.zlps++;
		else
			hl->st.xfers_out++;
		hl->st.bytes_out += x->actual;
	} else {
		hl_note_error(hl, x);
	}
	hl_tx_free(hl, t);
}

/* Submit one OUT transfer; takes ownership of pkt. */
static int hl_tx_submit(struct hl_link *hl, uint8_t *pkt, size_t len, bool zlp)
{
	struct hl_tx *t = calloc(1, sizeof(*t));
	int rc;

	if (!t) {
		free(pkt);
		return LP_ENOMEM;
	}
	t->hl = hl;
	t->pkt = pkt;
	t->zlp = zlp;
	t->x.dev = hl->dev;
	t->x.type = TR_XFER_BULK;
	t->x.endpoint = hl->probe.ep_out;
	t->x.buf = pkt;
	t->x.len = len;
	t->x.timeout_ms = 0; /* as usbmuxd; our waits are bounded by deadlines instead */
	t->x.done = hl_tx_done;
	t->x.user = t;
	t->next = hl->tx_head;
	if (hl->tx_head)
		hl->tx_head->prev = t;
	hl->tx_head = t;
	rc = tr_submit(&t->x);
	if (rc) {
		hl_tx_free(hl, t);
		hl->st.submit_errors++;
		if (rc == LP_ENODEV)
			hl->dead = true;
		return rc;
	}
	hl->tx_inflight++;
	return 0;
}

/* Hand every queued mux packet to the transport. */
static int hl_flush(struct hl_link *hl)
{
	uint8_t *pkt;
	size_t len;
	int rc;

	while (!hl->dead && hl->tx_inflight + 2 <= HL_MAX_TX_INFLIGHT &&
	       mux_out_take(hl->mux, &pkt, &len) == 0) {
		bool zlp = hl->probe.mps && len % hl->probe.mps == 0;

		rc = hl_tx_submit(hl, pkt, len, false);
		if (!rc && zlp)
			rc = hl_tx_submit(hl, NULL, 0, true);
		if (rc) {
			hl->st.last_error = rc;
			return rc;
		}
	}
	return hl->dead ? LP_ENODEV : 0;
}

static void hl_rx_done(struct tr_xfer *x)
{
	struct hl_rx *r = x->user;
	struct hl_link *hl = r->hl;

	r->live = false;
	if (x->status == TR_STATUS_COMPLETED) {
		hl->rx_errors_in_row = 0;
		hl->st.xfers_in++;
		hl->st.bytes_in += x->actual;
		int frc = mux_feed(hl->mux, r->buf, x->actual, x->actual < x->len);

		if (frc == LP_EPROTO && !hl->fatal_err) {
			size_t bytes, n = mux_out_queued(hl->mux, &bytes);

			/* the device floods IN and does not take OUT: stop
			 * reading it rather than queue answers without end */
			hl->fatal_err = LP_EPROTO;
			lp_logf(hl->log, LP_LOG_ERROR,
				"hostlink: the device keeps sending while %zu OUT transfers are pending "
				"and %zu packets (%zu bytes) wait: giving up (protocol error)",
				hl->tx_inflight, n, bytes);
		} else if (frc) {
			hl->pending_err = frc;
		}
	} else {
		hl_note_error(hl, x);
		if (x->status != TR_STATUS_CANCELLED && x->status != TR_STATUS_NO_DEVICE) {
			/* a packet cut by the error cannot be completed by later bytes */
			mux_feed(hl->mux, NULL, 0, true);
			if (++hl->rx_errors_in_row >= HL_MAX_RX_ERRORS && !hl->fatal_err) {
				hl->fatal_err = tr_status_to_err(x->status);
				lp_logf(hl->log, LP_LOG_ERROR,
					"hostlink: %u IN transfers failed in a row, giving up",
					hl->rx_errors_in_row);
			}
		}
	}
	if (hl->closing || hl->dead || hl->fatal_err || x->status == TR_STATUS_CANCELLED)
		return;
	if (tr_submit(x) == 0) {
		r->live = true;
	} else {
		hl->st.submit_errors++;
		if (x->dev->gone)
			hl->dead = true;
	}
}

static int hl_rx_start(struct hl_link *hl)
{
	int started = 0, rc = 0;

	for (size_t i = 0; i < HL_NUM_RX; i++) {
		struct hl_rx *r = &hl->rx[i];

		r->hl = hl;
		r->x.dev = hl->dev;
		r->x.type = TR_XFER_BULK;
		r->x.endpoint = hl->probe.ep_in;
		r->x.buf = r->buf;
		r->x.len = sizeof(r->buf);
		r->x.done = hl_rx_done;
		r->x.user = r;
		rc = tr_submit(&r->x);
		if (rc) {
			hl->st.submit_errors++;
			continue;
		}
		r->live = true;
		started++;
	}
	if (!started)
		return rc ? rc : LP_EIO;
	if (started < HL_NUM_RX)
		lp_logf(hl->log, LP_LOG_WARN, "hostlink: only %d of %d IN transfers started",
			started, HL_NUM_RX);
	return 0;
}

/* The link's current failure, if any (reported once for transfer errors). */
static int hl_status(struct hl_link *hl)
{
	int rc;

	if (hl->dead)
		return LP_ENODEV;
	if (hl->fatal_err)
		return hl->fatal_err;
	rc = hl->pending_err;
	hl->pending_err = 0;
	return rc;
}

int hl_pump(struct hl_link *hl, uint64_t deadline)
{
	int rc;

	if (!hl)
		return LP_EINVAL;
	if (hl->dead)
		return LP_ENODEV;
	rc = hl_flush(hl);
	if (!rc)
		rc = tr_handle_events(hl->ctx, deadline);
	if (!rc)
		rc = hl_flush(hl);
	if (rc == LP_ENODEV || hl->dead)
		return LP_ENODEV;
	return rc ? rc : hl_status(hl);
}

/* Run events until cond(arg) holds, the link fails, or the deadline. */
static int hl_wait(struct hl_link *hl, uint64_t deadline, bool (*cond)(void *), void *arg)
{
	for (;;) {
		int rc = hl_flush(hl);

		if (rc)
			return rc;
		/* a failed transfer is reported to whoever is waiting, once */
		if (hl->pending_err)
			return hl_status(hl);
		if (cond(arg))
			return 0;
		if (hl->dead)
			return LP_ENODEV;
		if (hl->fatal_err)
			return hl->fatal_err;
		if (hl_now(hl) >= deadline)
			return LP_ETIMEDOUT;
		rc = tr_handle_events(hl->ctx, deadline);
		if (rc < 0)
			return rc;
	}
}

/* ---------------------------------------------------------------------------
 * Mux callbacks
 */

static struct hl_conn *hl_conn_find(struct hl_link *hl, uint32_t id)
{
	for (struct hl_conn *c = hl->conns; c; c = c->next)
		if (c->id == id && (c->state == HL_CONNECTING || c->state == HL_OPEN))
			return c;
	return NULL;
}

static void hl_observe(struct hl_link *hl, const struct hl_conn *c, int dir, const uint8_t *data,
		       size_t len, int event)
{
	if (hl->obs)
		hl->obs(hl->obs_ud, c->id, c->sport, c->dport, dir, data, len, event);
}

static void hl_cb_connect(void *ud, uint32_t conn, uint16_t port, int result)
{
	struct hl_link *hl = ud;
	struct hl_conn *c = hl_conn_find(hl, conn);

	if (!c)
		return;
	if (result) {
		c->state = HL_REFUSED;
		c->reason = result;
		return;
	}
	c->state = HL_OPEN;
	hl_observe(hl, c, 0, NULL, 0, 1);
}

static void hl_cb_data(void *ud, uint32_t conn, const uint8_t *data, size_t len)
{
	struct hl_link *hl = ud;
	struct hl_conn *c = hl_conn_find(hl, conn);

	if (!c)
		return;
	hl_observe(hl, c, 1, data, len, 0);
	if (c->rxhead + c->rxlen + len > c->rxcap) {
		if (c->rxhead) {
			memmove(c->rx, c->rx + c->rxhead, c->rxlen);
			c->rxhead = 0;
		}
		if (c->rxlen + len > HL_RXBUF_MAX) {
			lp_logf(hl->log, LP_LOG_WARN,
				"hostlink: connection %u: %zu unread bytes, over the cap; resetting",
				conn, c->rxlen);
			mux_close(hl->mux, conn);
			c->state = HL_CLOSED;
			c->reason = LP_ETOOBIG;
			hl_observe(hl, c, 1, NULL, 0, 2);
			return;
		}
		if (c->rxlen + len > c->rxcap) {
			size_t ncap = c->rxcap ? c->rxcap : 4096;
			uint8_t *nb;

			while (ncap < c->rxlen + len)
				ncap *= 2;
			/* not realloc: the old block may hold a Pair reply's
			 * EscrowBag and is wiped before it is freed */
			nb = malloc(ncap);
			if (!nb) {
				mux_close(hl->mux, conn);
				c->state = HL_CLOSED;
				c->reason = LP_ENOMEM;
				return;
			}
			if (c->rx) {
				memcpy(nb, c->rx + c->rxhead, c->rxlen);
				OPENSSL_cleanse(c->rx, c->rxcap);
				free(c->rx);
			}
			c->rxhead = 0;
			c->rx = nb;
			c->rxcap = ncap;
		}
	}
	memcpy(c->rx + c->rxhead + c->rxlen, data, len);
	c->rxlen += len;
}

static void hl_cb_close(void *ud, uint32_t conn, int reason)
{
	struct hl_link *hl = ud;
	struct hl_conn *c = hl_conn_find(hl, conn);

	if (!c)
		return;
	c->state = HL_CLOSED;
	c->reason = reason;
	hl_observe(hl, c, 1, NULL, 0, 2);
}

static void hl_cb_control(void *ud, uint8_t type, const uint8_t *text, size_t len)
{
	struct hl_link *hl = ud;
	char msg[256];

	lp_sanitize(msg, sizeof(msg), text, len);
	lp_logf(hl->log, type == 3 ? LP_LOG_WARN : LP_LOG_INFO, "hostlink: device CONTROL %u: %s",
		type, msg);
}

static void hl_cb_anomaly(void *ud, int err, const char *what)
{
	(void)ud;
	(void)err;
	(void)what; /* counted in the mux stats and logged by mux.c */
}

/* ---------------------------------------------------------------------------
 * Open / close
 */

static bool hl_cond_version(void *arg)
{
	struct hl_link *hl = arg;
	return mux_active(hl->mux);
}

static bool hl_cond_tx_idle(void *arg)
{
	struct hl_link *hl = arg;
	return !hl->tx_inflight;
}

int hl_open(struct tr_ctx *ctx, const struct tr_devinfo *info, const struct hl_opts *opts,
	    struct hl_link **out, struct lp_errinfo *e)
{
	struct hl_link *hl;
	uint32_t want = opts && opts->want_major ? opts->want_major : 2;
	uint32_t vto = opts && opts->version_timeout_ms ? opts->version_timeout_ms
							: HL_VERSION_TIMEOUT_MS;
	uint64_t dl;
	int rc, cfg = 0;

	if (!ctx || !info || !out)
		return lp_err_set(e, LP_EINVAL, "hl_open: bad arguments");
	hl = calloc(1, sizeof(*hl));
	if (!hl)
		return lp_err_set(e, LP_ENOMEM, "hostlink: out of memory");
	hl->ctx = ctx;
	hl->log = ctx->env.log;
	hl->cbs.on_connect = hl_cb_connect;
	hl->cbs.on_data = hl_cb_data;
	hl->cbs.on_close = hl_cb_close;
	hl->cbs.on_control = hl_cb_control;
	hl->cbs.on_anomaly = hl_cb_anomaly;
	hl->mux = mux_new(MUX_ROLE_HOST, &hl->cbs, hl, hl->log);
	if (!hl->mux) {
		free(hl);
		return lp_err_set(e, LP_ENOMEM, "hostlink: out of memory");
	}
	rc = tr_open(ctx, info, &hl->dev, e);
	if (rc) {
		mux_free(hl->mux);
		free(hl);
		return rc;
	}
	rc = usbd_probe_dev(hl->dev, &hl->probe, hl->log, e);
	if (rc)
		goto fail;
	if (!hl->probe.has_usbmux) {
		rc = lp_err_set(e, LP_EUNSUPPORTED,
				"no configuration of %04x:%04x has a usbmux interface (ff/fe/02) "
				"(%zu configurations read)",
				hl->probe.dev.idVendor, hl->probe.dev.idProduct,
				hl->probe.num_configs);
		goto fail;
	}
	if (tr_get_configuration(hl->dev, &cfg) || cfg != hl->probe.usbmux_config) {
		lp_logf(hl->log, LP_LOG_INFO, "hostlink: selecting configuration %u (was %d)",
			hl->probe.usbmux_config, cfg);
		rc = tr_set_configuration(hl->dev, hl->probe.usbmux_config, e);
		if (rc) {
			lp_err_prefix(e, "selecting configuration %u", hl->probe.usbmux_config);
			goto fail;
		}
	}
	rc = tr_claim_interface(hl->dev, hl->probe.usbmux_iface, e);
	if (rc) {
		lp_err_prefix(e, "claiming usbmux interface %u", hl->probe.usbmux_iface);
		goto fail;
	}
	hl->claimed = true;
	rc = hl_rx_start(hl);
	if (rc) {
		lp_err_set(e, rc, "could not start any bulk IN transfer on 0x%02x: %s",
			   hl->probe.ep_in, lp_strerror(rc));
		goto fail;
	}
	rc = mux_start(hl->mux, want);
	if (rc) {
		lp_err_set(e, rc, "mux_start(%u) failed", want);
		goto fail;
	}
	dl = lp_clock_deadline_ms(ctx->env.clock, vto);
	rc = hl_wait(hl, dl, hl_cond_version, hl);
	/* SETUP on the wire before anyone opens a connection */
	if (!rc)
		rc = hl_wait(hl, dl, hl_cond_tx_idle, hl);
	if (!rc)
		rc = hl_status(hl);
	if (rc) {
		struct mux_stats ms;

		mux_get_stats(hl->mux, &ms);
		if (rc == LP_ETIMEDOUT)
			lp_err_set(
				e, rc,
				"no usable VERSION reply within %u ms (%llu packets in, %llu anomalies)",
				vto, (unsigned long long)ms.packets_in,
				(unsigned long long)ms.anomalies);
		else
			lp_err_set(e, rc, "usbmux VERSION exchange failed: %s", lp_strerror(rc));
		goto fail;
	}
	lp_logf(hl->log, LP_LOG_DEBUG, "hostlink: usbmux version %u on %s", mux_version(hl->mux),
		hl->probe.udid);
	*out = hl;
	return 0;
fail:
	hl_close(hl);
	return rc;
}

static bool hl_cond_idle(void *arg)
{
	struct hl_link *hl = arg;
	bool rx_live = false;

	for (size_t i = 0; i < HL_NUM_RX; i++)
		rx_live |= hl->rx[i].live;
	return !rx_live && !hl->tx_inflight;
}

void hl_close(struct hl_link *hl)
{
	struct hl_conn *c;

	if (!hl)
		return;
	/* polite RSTs for connections still open */
	for (c = hl->conns; c; c = c->next) {
		if (c->state == HL_OPEN)
			hl_observe(hl, c, 0, NULL, 0, 2);
		if (!hl->dead && (c->state == HL_OPEN || c->state == HL_CONNECTING))
			mux_close(hl->mux, c->id);
		c->hl = NULL;
		if (c->state == HL_OPEN || c->state == HL_CONNECTING) {
			c->state = HL_CLOSED;
			c->reason = LP_ENODEV;
		}
	}
	hl->conns = NULL;
	if (hl->dev) {
		uint64_t dl = lp_clock_deadline_ms(hl->ctx->env.clock, HL_CLOSE_FLUSH_MS);

		if (!hl->dead)
			hl_flush(hl);
		hl->closing = true;
		for (size_t i = 0; i < HL_NUM_RX; i++)
			if (hl->rx[i].live)
				tr_cancel(&hl->rx[i].x);
		/* reap the cancellations; an earlier transfer error (pending or
		 * fatal) must not cut this wait short, as hl_wait would */
		while (!hl_cond_idle(hl) && !hl->dead && hl_now(hl) < dl)
			if (tr_handle_events(hl->ctx, dl) < 0)
				break;
		if (hl->claimed && !hl->dead)
			tr_release_interface(hl->dev, hl->probe.usbmux_iface);
		/* cancels and reaps whatever is still in flight (bounded) */
		tr_close(hl->dev);
	}
	while (hl->tx_head) {
		struct hl_tx *t = hl->tx_head;
		hl->tx_head = t->next;
		free(t->pkt);
		free(t);
	}
	mux_free(hl->mux);
	free(hl);
}

/* ---------------------------------------------------------------------------
 * Streams
 */

static void hl_conn_unlink(struct hl_conn *c)
{
	struct hl_link *hl = c->hl;

	if (!hl)
		return;
	for (struct hl_conn **pp = &hl->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			return;
		}
	}
}

static int hl_conn_err(const struct hl_conn *c)
{
	if (!c->hl || (c->hl && c->hl->dead))
		return LP_ENODEV;
	if (c->state == HL_CLOSED)
		return c->reason ? c->reason : LP_ECLOSED;
	if (c->state == HL_REFUSED)
		return LP_ECONNREFUSED;
	return 0;
}

static bool hl_cond_sent(void *arg)
{
	struct hl_conn *c = arg;

	return c->state != HL_OPEN || (!mux_unsent(c->hl->mux, c->id) && !c->hl->tx_inflight);
}

static bool hl_cond_room(void *arg)
{
	struct hl_conn *c = arg;

	return c->state != HL_OPEN || mux_unsent(c->hl->mux, c->id) < HL_SEND_CHUNK;
}

static int hl_stream_send(struct lp_stream *s, const uint8_t *buf, size_t len, uint64_t deadline,
			  struct lp_errinfo *e)
{
	struct hl_conn *c = s->impl;
	struct hl_link *hl = c->hl;
	size_t off = 0;
	int rc;

	rc = hl_conn_err(c);
	if (rc)
		return lp_err_set(e, rc, "mux connection to port %u: %s", c->dport,
				  lp_strerror(rc));
	while (off < len) {
		size_t n = len - off > HL_SEND_CHUNK ? HL_SEND_CHUNK : len - off;

		rc = hl_wait(hl, deadline, hl_cond_room, c);
		if (!rc)
			rc = hl_conn_err(c);
		if (rc)
			goto fail;
		rc = mux_send(hl->mux, c->id, buf + off, n);
		if (rc)
			goto fail;
		hl_observe(hl, c, 0, buf + off, n, 0);
		off += n;
	}
	rc = hl_wait(hl, deadline, hl_cond_sent, c);
	if (!rc)
		rc = hl_conn_err(c);
	if (!rc)
		rc = hl_status(hl);
	if (!rc)
		return 0;
fail:
	return lp_err_set(e, rc, "sending %zu bytes to port %u (%zu queued, %zu unsent): %s", len,
			  c->dport, off, hl && c->state == HL_OPEN ? mux_unsent(hl->mux, c->id) : 0,
			  lp_strerror(rc));
}

static bool hl_cond_readable(void *arg)
{
	struct hl_conn *c = arg;

	return c->rxlen || c->state != HL_OPEN;
}

static int hl_stream_recv(struct lp_stream *s, uint8_t *buf, size_t cap, size_t *got,
			  uint64_t deadline, struct lp_errinfo *e)
{
	struct hl_conn *c = s->impl;
	size_t n;
	int rc = 0;

	if (!cap)
		return lp_err_set(e, LP_EINVAL, "recv with a zero-size buffer");
	/* bytes already here are delivered even after the peer reset */
	if (!c->rxlen && c->hl) {
		rc = hl_conn_err(c);
		if (!rc)
			rc = hl_wait(c->hl, deadline, hl_cond_readable, c);
	}
	if (!c->rxlen) {
		if (!rc)
			rc = hl_conn_err(c);
		if (!rc)
			rc = LP_ETIMEDOUT;
		return lp_err_set(e, rc, "receiving from port %u: %s", c->dport, lp_strerror(rc));
	}
	n = c->rxlen < cap ? c->rxlen : cap;
	memcpy(buf, c->rx + c->rxhead, n);
	c->rxhead += n;
	c->rxlen -= n;
	if (!c->rxlen)
		c->rxhead = 0;
	*got = n;
	return 0;
}

static void hl_stream_close(struct lp_stream *s)
{
	struct hl_conn *c = s->impl;
	struct hl_link *hl = c->hl;

	if (hl) {
		if (c->state == HL_OPEN || c->state == HL_CONNECTING) {
			hl_observe(hl, c, 0, NULL, 0, 2);
			if (!hl->dead && mux_close(hl->mux, c->id) == 0)
				hl_flush(hl);
		}
		hl_conn_unlink(c);
	}
	if (c->rx)
		OPENSSL_cleanse(c->rx, c->rxcap); /* lockdown plaintext: EscrowBag */
	free(c->rx);
	free(c);
}

static const struct lp_stream_ops hl_stream_ops = {
	.send = hl_stream_send,
	.recv = hl_stream_recv,
	.close = hl_stream_close,
};

static bool hl_cond_connected(void *arg)
{
	struct hl_conn *c = arg;
	return c->state != HL_CONNECTING;
}

int hl_connect(struct hl_link *hl, uint16_t port, uint64_t deadline, struct lp_stream **out,
	       struct lp_errinfo *e)
{
	struct hl_conn *c;
	int rc;

	if (!hl || !out)
		return lp_err_set(e, LP_EINVAL, "hl_connect: bad arguments");
	rc = hl_status(hl);
	if (rc)
		return lp_err_set(e, rc, "usbmux link: %s", lp_strerror(rc));
	c = calloc(1, sizeof(*c));
	if (!c)
		return lp_err_set(e, LP_ENOMEM, "hostlink: out of memory");
	rc = mux_connect(hl->mux, port, &c->id);
	if (rc) {
		free(c);
		return lp_err_set(e, rc, "mux_connect(%u): %s", port, lp_strerror(rc));
	}
	mux_conn_ports(hl->mux, c->id, &c->sport, &c->dport);
	c->hl = hl;
	c->state = HL_CONNECTING;
	c->s.ops = &hl_stream_ops;
	c->s.clock = hl->ctx->env.clock;
	c->s.impl = c;
	c->next = hl->conns;
	hl->conns = c;
	rc = hl_wait(hl, deadline, hl_cond_connected, c);
	if (!rc && c->state != HL_OPEN)
		rc = c->state == HL_REFUSED ? LP_ECONNREFUSED : hl_conn_err(c);
	if (rc) {
		if (rc == LP_ECONNREFUSED)
			lp_err_set(e, rc, "device refused port %u (RST)", port);
		else
			lp_err_set(e, rc, "connecting to port %u: %s", port, lp_strerror(rc));
		hl_stream_close(&c->s);
		return rc;
	}
	*out = &c->s;
	return 0;
}

/* ---------------------------------------------------------------------------
 * Accessors
 */

const struct usbd_probe *hl_info(struct hl_link *hl)
{
	return hl ? &hl->probe : NULL;
}

struct mux *hl_mux(struct hl_link *hl)
{
	return hl ? hl->mux : NULL;
}

struct tr_dev *hl_dev(struct hl_link *hl)
{
	return hl ? hl->dev : NULL;
}

bool hl_dead(const struct hl_link *hl)
{
	return !hl || hl->dead;
}

void hl_get_stats(const struct hl_link *hl, struct hl_stats *st)
{
	*st = hl->st;
	mux_get_stats(hl->mux, &st->mux);
}

uint32_t hl_mux_version(const struct hl_link *hl)
{
	return hl ? mux_version(hl->mux) : 0;
}

void hl_set_stream_observer(struct hl_link *hl, hl_stream_observer_fn fn, void *ud)
{
	hl->obs = fn;
	hl->obs_ud = ud;
}
