/* hostlink_conn.c - connections over a usbmux host link: the mux codec's
 * callbacks (connect results, data into per-connection buffers, closes,
 * CONTROL messages, anomalies), blocking deadline-bounded streams
 * (proto/stream.h) on them, hl_connect, and the stream observer.
 *
 * Memory: streams point at the link; hl_close() detaches them
 * (hl_conns_close_all), after which their calls return LP_ENODEV and
 * lp_stream_close() just frees them. Received lockdown plaintext (it may
 * hold the EscrowBag) is wiped before its buffer is freed or moved.
 */
#include "proto/hostlink.h"
#include "proto/hostlink_int.h"

#include <openssl/crypto.h>

#include <stdlib.h>
#include <string.h>

#include "src/base/lp_log.h"
#include "src/base/lp_str.h"

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

/* Counted in the mux stats and logged by mux.c; one that lost bytes is kept
 * as the evidence for a wait that then runs out (hl_wait). Several packets
 * in one transfer are all decoded: nothing lost. */
static void hl_cb_anomaly(void *ud, int err, const char *what)
{
	struct hl_link *hl = ud;

	if (err == LP_EPROTO && what && strncmp(what, "several packets", 15) == 0)
		return;
	if (err != LP_ETOOBIG && err != LP_EBADMSG && err != LP_ETRUNC && err != LP_EPROTO)
		return;
	hl->anomaly_err = err;
	lp_sanitize_str(hl->anomaly, sizeof(hl->anomaly), what ? what : "?");
	if (!hl->anomaly_first[0])
		snprintf(hl->anomaly_first, sizeof(hl->anomaly_first), "%s", hl->anomaly);
}

const char *hl_proto_evidence(struct hl_link *hl)
{
	if (!hl)
		return lp_strerror(LP_EPROTO);
	if (hl->why[0])
		return hl->why;
	if (!hl->anomaly_err)
		return lp_strerror(LP_EPROTO);
	if (strcmp(hl->anomaly_first, hl->anomaly) != 0)
		snprintf(hl->why, sizeof(hl->why), "the device broke usbmux framing: %s; then %s",
			 hl->anomaly_first, hl->anomaly);
	else
		snprintf(hl->why, sizeof(hl->why), "the device broke usbmux framing: %s",
			 hl->anomaly);
	return hl->why;
}

void hl_conns_init_cbs(struct mux_cbs *cbs)
{
	cbs->on_connect = hl_cb_connect;
	cbs->on_data = hl_cb_data;
	cbs->on_close = hl_cb_close;
	cbs->on_control = hl_cb_control;
	cbs->on_anomaly = hl_cb_anomaly;
}

void hl_conns_close_all(struct hl_link *hl)
{
	/* polite RSTs for connections still open */
	for (struct hl_conn *c = hl->conns; c; c = c->next) {
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
			  rc == LP_EPROTO ? hl_proto_evidence(hl) : lp_strerror(rc));
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
		return lp_err_set(e, rc, "receiving from port %u: %s", c->dport,
				  rc == LP_EPROTO ? hl_proto_evidence(c->hl) : lp_strerror(rc));
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
			lp_err_set(e, rc, "connecting to port %u: %s", port,
				   rc == LP_EPROTO ? hl_proto_evidence(hl) : lp_strerror(rc));
		hl_stream_close(&c->s);
		return rc;
	}
	*out = &c->s;
	return 0;
}

void hl_set_stream_observer(struct hl_link *hl, hl_stream_observer_fn fn, void *ud)
{
	hl->obs = fn;
	hl->obs_ud = ud;
}
