/* hostlink.c - host side of a usbmux link over a transport device: open
 * (descriptors, configuration, claim, VERSION/SETUP), the bulk transfers (IN
 * loops, OUT queue, ZLPs), the bounded wait every call runs on, and close.
 * Connections and streams over the link are hostlink_conn.c's; the private
 * structures both share are in hostlink_int.h (see hostlink.h for the API).
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
#include "proto/hostlink_int.h"

#include <openssl/crypto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/lp_cursor.h"
#include "src/base/lp_log.h"
#include "src/base/lp_str.h"

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
		hl->tx_wait_since = hl_now(hl);
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
	if (hl->tx_inflight++ == 0)
		hl->tx_wait_since = hl_now(hl);
	return 0;
}

/* Hand every queued mux packet to the transport. */
int hl_flush(struct hl_link *hl)
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
			snprintf(hl->why, sizeof(hl->why),
				 "the device kept sending while %zu OUT transfers were pending and "
				 "%zu packets (%zu bytes) waited: the host stopped reading it",
				 hl->tx_inflight, n, bytes);
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
int hl_status(struct hl_link *hl)
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

/* The wait ran out: a timeout, unless the device left the stream broken -
 * a packet announced and never finished, or bytes it lost by breaking the
 * framing - which no amount of waiting or cable will mend. */
static int hl_timeout(struct hl_link *hl)
{
	size_t announced = 0, have = mux_partial(hl->mux, &announced);

	if (have) {
		snprintf(hl->why, sizeof(hl->why),
			 "usbmux stream cannot be reassembled: a packet announced as %zu bytes "
			 "stopped after %zu and the device sent nothing more",
			 announced, have);
		if (!announced)
			snprintf(
				hl->why, sizeof(hl->why),
				"usbmux stream cannot be reassembled: %zu bytes of a packet header "
				"and nothing more",
				have);
		return LP_EPROTO;
	}
	if (hl->anomaly_err) {
		snprintf(hl->why, sizeof(hl->why),
			 "the device broke usbmux framing (%s), then no answer came", hl->anomaly);
		return LP_EPROTO;
	}
	return LP_ETIMEDOUT;
}

int hl_wait(struct hl_link *hl, uint64_t deadline, bool (*cond)(void *), void *arg)
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
			return hl_timeout(hl);
		rc = tr_handle_events(hl->ctx, deadline);
		if (rc < 0)
			return rc;
	}
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
	hl_conns_init_cbs(&hl->cbs);
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
	if (!hl)
		return;
	hl_conns_close_all(hl);
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
 * Accessors
 */

int hl_check_present(struct hl_link *hl, uint32_t wait_ms)
{
	struct lp_clock *clk = hl->ctx->env.clock;
	uint64_t deadline = lp_clock_deadline_ms(clk, wait_ms);
	uint8_t desc[18];

	for (;;) {
		struct tr_devinfo devs[TR_LIST_MAX];
		size_t n = 0, got = 0;
		bool listed = false;
		uint64_t now;
		int r;

		if (hl->dead)
			return LP_ENODEV;
		/* a fresh device list: the kernel removed it */
		if (tr_list(hl->ctx, devs, TR_LIST_MAX, &n, NULL) == 0) {
			for (size_t i = 0; i < n; i++)
				listed |= devs[i].session == hl->dev->info.session;
			if (!listed) {
				lp_logf(hl->log, LP_LOG_INFO,
					"hostlink: the device is no longer on the bus");
				/* one request to the removed device: its refusal (ENODEV)
				 * is what a capture of this run shows of the removal */
				tr_control_sync(hl->dev, 0x80, USBD_REQ_GET_DESCRIPTOR,
						USBD_DT_DEVICE << 8, 0, desc, sizeof(desc),
						HL_PRESENCE_REQ_MS, &got);
				hl->dead = true;
				return LP_ENODEV;
			}
		}
		/* a status request: answered, the device is there */
		r = tr_control_sync(hl->dev, 0x80, USBD_REQ_GET_DESCRIPTOR, USBD_DT_DEVICE << 8, 0,
				    desc, sizeof(desc), HL_PRESENCE_REQ_MS, &got);
		if (r == LP_ENODEV) {
			hl->dead = true;
			return LP_ENODEV;
		}
		if (r == 0 && got == sizeof(desc))
			return 0;
		now = lp_clock_now(clk);
		if (now >= deadline)
			return 0; /* still listed: the errors were the link's */
		if (hl_pump(hl, now + HL_PRESENCE_REQ_MS * LP_NS_PER_MS < deadline
					? now + HL_PRESENCE_REQ_MS * LP_NS_PER_MS
					: deadline) == LP_ENODEV)
			return LP_ENODEV;
	}
}

const char *hl_why(const struct hl_link *hl)
{
	return hl ? hl->why : "";
}

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
	st->out_stalled_ns = hl->tx_inflight ? hl_now(hl) - hl->tx_wait_since : 0;
	mux_get_stats(hl->mux, &st->mux);
}

uint32_t hl_mux_version(const struct hl_link *hl)
{
	return hl ? mux_version(hl->mux) : 0;
}
